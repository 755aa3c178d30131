//! The search's rules on a toy decoder and on the shipped model: greedy against beam, masks,
//! constraints, repetition and the second thread.

use super::*;
use crate::decoder::merge::MergeConfig;
use crate::decoder::DecoderConfig;
use crate::engine::rng::Rng;
use crate::model::ModelConfig;
use crate::text::{wrap_caption, Tokenization, Vocabulary};

/// The words of a generated caption, joined by spaces.
fn caption_text(model: &Model, feature: &[f32], options: &SearchOptions) -> String {
    words(model, &search(model, feature, options).tokens).join(" ")
}

fn tiny_model(max_length: usize) -> Model {
    let words: Vec<String> = ["dog", "runs", "fast", "the"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let captions = [wrap_caption(&words)];
    let vocab = Vocabulary::build(captions.iter().map(Vec::as_slice), 1);
    let merge = MergeConfig {
        vocab: vocab.len(),
        feature_dim: 4,
        embed_dim: 8,
        hidden: 8,
        dropout: 0.0,
    };
    let params = merge.init(&mut Rng::new(5));
    let decoder = DecoderConfig::Merge(merge);
    Model {
        config: ModelConfig::new(decoder, "test", "test", max_length, Tokenization::Ptb, 1),
        params,
        vocab,
        generation: std::sync::OnceLock::new(),
        familiar: None,
        concepts: None,
    }
}

fn set_out_bias(model: &mut Model, token: &str, value: f32) {
    let range = model.config.decoder.layout().range("out.bias");
    let id = model.vocab.id(token) as usize;
    model.params[range][id] = value;
}

#[test]
fn never_emits_unknown_padding_or_start_and_stops_at_max_length() {
    let mut model = tiny_model(6);
    for (token, bias) in [
        ("<unk>", 100.0),
        ("<pad>", 90.0),
        ("startseq", 80.0),
        ("dog", 50.0),
    ] {
        set_out_bias(&mut model, token, bias);
    }
    let feature = [0.5, -0.2, 0.1, 0.3];
    for beam in [1, 3] {
        let options = SearchOptions {
            beam,
            length_penalty: 0.0,
            block_repeats: false,
        };
        // The best allowed word is always "dog", and endseq never wins: max_length - 1 tokens.
        assert_eq!(
            caption_text(&model, &feature, &options),
            "dog dog dog dog dog",
            "beam {beam}"
        );
        let options = SearchOptions {
            block_repeats: true,
            ..options
        };
        let text = caption_text(&model, &feature, &options);
        assert!(!text.contains("dog dog dog"), "no word pair twice: {text}");
    }
}

#[test]
fn endseq_ends_the_caption_and_is_not_printed() {
    let mut model = tiny_model(10);
    set_out_bias(&mut model, "endseq", 100.0);
    for beam in [1, 2] {
        let options = SearchOptions {
            beam,
            length_penalty: 0.7,
            block_repeats: true,
        };
        assert_eq!(caption_text(&model, &[0.0; 4], &options), "");
    }
}

#[test]
fn beam_returns_a_finished_caption() {
    // Random small models and features: with a length penalty an unfinished beam often
    // outscores the finished ones (the old final pick returned it), and must never be returned.
    let max_length = 8;
    let max_new = max_length - 1;
    let mut rng = Rng::new(11);
    for model_seed in 0..20 {
        let mut model = tiny_model(max_length);
        model.params = model.config.decoder.init(&mut Rng::new(model_seed));
        set_out_bias(&mut model, "endseq", 0.5);
        for _ in 0..20 {
            let feature: Vec<f32> = (0..4).map(|_| rng.normal() as f32 * 3.0).collect();
            for length_penalty in [0.0, 0.7, 2.0] {
                let options = SearchOptions {
                    beam: 3,
                    length_penalty,
                    block_repeats: false,
                };
                let caption = search(&model, &feature, &options);
                assert!(
                    caption.ended || caption.tokens.len() == max_new,
                    "model {model_seed}, penalty {length_penalty}: {:?} neither ended nor reached the maximum length",
                    caption.tokens
                );
                let last = caption.tokens.last().map(|&t| model.vocab.token(t));
                assert!(
                    !(caption.ended && last == Some(Some("the"))),
                    "model {model_seed}: a caption ended on \"the\": {:?}",
                    words(&model, &caption.tokens)
                );
            }
        }
    }
}

fn options(beam: usize) -> SearchOptions {
    SearchOptions {
        beam,
        length_penalty: 0.7,
        block_repeats: true,
    }
}

fn random_cases(count: usize) -> Vec<(Model, Vec<f32>)> {
    let mut rng = Rng::new(23);
    (0..count as u64)
        .map(|seed| {
            let mut model = tiny_model(8);
            model.params = model.config.decoder.init(&mut Rng::new(seed));
            set_out_bias(&mut model, "endseq", 1.0);
            let feature: Vec<f32> = (0..4).map(|_| rng.normal() as f32 * 3.0).collect();
            (model, feature)
        })
        .collect()
}

#[test]
fn every_caption_of_a_constrained_search_meets_its_constraints() {
    let sets: [&[&[&str]]; 4] = [
        &[&["fast"]],
        &[&["runs", "fast"]],
        &[&["the"], &["runs"]],
        &[&["fast"], &["dog"], &["runs"]],
    ];
    for (model, feature) in random_cases(30) {
        for set in sets {
            let constraints: Vec<Constraint> = set
                .iter()
                .map(|words| Constraint::new(&model, words).unwrap())
                .collect();
            for beam in [1, 2, 3] {
                let caption = search_constrained(
                    &model,
                    &feature,
                    &options(beam),
                    &constraints,
                    Beside::default(),
                    Avoid::default(),
                )
                .unwrap()
                .expect("eight tokens leave room for every constraint");
                // Each step's hypotheses shared between two threads: the same caption.
                let split = Beside {
                    split_steps: true,
                    cancel: None,
                };
                let split = search_constrained(
                    &model,
                    &feature,
                    &options(beam),
                    &constraints,
                    split,
                    Avoid::default(),
                );
                assert_eq!(split.unwrap().as_ref(), Some(&caption));
                // A cancelled search gives up.
                let cancelled = Beside {
                    split_steps: false,
                    cancel: Some(&AtomicBool::new(true)),
                };
                let cancelled = search_constrained(
                    &model,
                    &feature,
                    &options(beam),
                    &constraints,
                    cancelled,
                    Avoid::default(),
                );
                assert_eq!(cancelled.unwrap(), None);
                let words = words(&model, &caption.tokens);
                for required in set {
                    assert!(
                        words.iter().any(|w| required.contains(w)),
                        "beam {beam}: {words:?} holds none of {required:?}"
                    );
                }
            }
        }
    }
}

#[test]
fn a_masked_word_is_never_emitted_by_any_search() {
    for (model, feature) in random_cases(30) {
        let ids =
            |words: &[&str]| -> Vec<u32> { words.iter().map(|w| model.vocab.id(w)).collect() };
        for masked_words in [&["dog"][..], &["fast", "the"], &["runs", "dog", "fast"]] {
            let masked = ids(masked_words);
            let avoid = Avoid {
                masked: &masked,
                once: &[],
            };
            let allowed = ["dog", "runs", "fast", "the"]
                .into_iter()
                .find(|w| !masked_words.contains(w))
                .unwrap();
            let constraint = [Constraint::new(&model, &[allowed]).unwrap()];
            for beam in [1, 2, 3] {
                let plain = search_avoiding(&model, &feature, &options(beam), avoid);
                let constrained = search_constrained(
                    &model,
                    &feature,
                    &options(beam),
                    &constraint,
                    Beside::default(),
                    avoid,
                )
                .unwrap();
                for caption in std::iter::once(plain).chain(constrained) {
                    assert!(
                        caption.tokens.iter().all(|t| !masked.contains(t)),
                        "beam {beam}: {:?} holds a word of {masked_words:?}",
                        words(&model, &caption.tokens)
                    );
                }
            }
        }
    }
}

#[test]
fn no_search_repeats_a_word_or_a_word_around_and() {
    let words_list = ["dog", "and", "the", "runs"];
    let model_words: Vec<String> = words_list.iter().map(|s| s.to_string()).collect();
    let vocab = Vocabulary::build([wrap_caption(&model_words).as_slice()], 1);
    let id = |w: &str| vocab.id(w);
    let and = id("and");
    // The last word again, the word before "and", a pair already held, a once-word again.
    let tokens = [id("the"), id("dog"), id("and")];
    let blocked = repeats(&tokens, and, &[]);
    assert!(blocked.contains(&id("dog")) && blocked.contains(&id("and")));
    let tokens = [id("the"), id("dog"), id("runs"), id("the")];
    assert!(repeats(&tokens, and, &[]).contains(&id("dog")));
    let tokens = [id("runs"), id("the")];
    assert!(repeats(&tokens, and, &[id("runs")]).contains(&id("runs")));
    assert!(!repeats(&tokens, and, &[]).contains(&id("runs")));
    // Every search of random models: no word twice in a row, none on both sides of "and".
    for (model, feature) in random_cases(30) {
        let and = model.vocab.id("and");
        for beam in [1, 3] {
            let caption = search(&model, &feature, &options(beam));
            for pair in caption.tokens.windows(2) {
                assert_ne!(pair[0], pair[1], "{:?}", words(&model, &caption.tokens));
            }
            for triple in caption.tokens.windows(3) {
                assert!(triple[1] != and || triple[0] != triple[2]);
            }
        }
    }
}

#[test]
fn a_placed_constraint_word_follows_one_of_its_words() {
    for (model, feature) in random_cases(30) {
        let constraint = Constraint::new(&model, &["fast"])
            .unwrap()
            .after(&model, |_| &["the"]);
        // Each word its own places, as a noun's singular and plural have.
        let either = Constraint::new(&model, &["fast", "runs"])
            .unwrap()
            .after(&model, |word| match word {
                "fast" => &["the"],
                _ => &["dog"],
            });
        for beam in [1, 3] {
            let caption = search_constrained(
                &model,
                &feature,
                &options(beam),
                std::slice::from_ref(&constraint),
                Beside::default(),
                Avoid::default(),
            )
            .unwrap()
            .expect("room for \"the fast\"");
            let words = words(&model, &caption.tokens);
            let first = words.iter().position(|w| *w == "fast").unwrap();
            assert!(first > 0 && words[first - 1] == "the", "{words:?}");

            let caption = search_constrained(
                &model,
                &feature,
                &options(beam),
                std::slice::from_ref(&either),
                Beside::default(),
                Avoid::default(),
            )
            .unwrap()
            .expect("room for \"the fast\" or \"dog runs\"");
            let either_words = super::words(&model, &caption.tokens);
            // The word that met it (the first of either) follows its own word.
            let met = either_words
                .iter()
                .position(|w| *w == "fast" || *w == "runs")
                .unwrap();
            let pair = (either_words[met.saturating_sub(1)], either_words[met]);
            assert!(
                met > 0 && matches!(pair, ("the", "fast") | ("dog", "runs")),
                "{either_words:?}"
            );
        }
    }
}

#[test]
fn a_constraint_every_caption_meets_changes_nothing() {
    // Every word but the markers: a hypothesis meets it with its first word, so the search is
    // plain beam search except that it may not end before that word.
    let mut compared = 0;
    for (model, feature) in random_cases(80) {
        let words: Vec<&str> = (0..model.vocab.len() as u32)
            .filter_map(|id| model.vocab.token(id))
            .filter(|w| Constraint::new(&model, &[w]).is_ok())
            .collect();
        let every_word = [Constraint::new(&model, &words).unwrap()];
        for beam in [1, 3] {
            let plain = search(&model, &feature, &options(beam));
            assert_eq!(
                search_constrained(
                    &model,
                    &feature,
                    &options(beam),
                    &[],
                    Beside::default(),
                    Avoid::default()
                )
                .unwrap(),
                Some(plain.clone()),
                "no constraint is plain beam search"
            );
            if !plain.tokens.is_empty() {
                let constrained = search_constrained(
                    &model,
                    &feature,
                    &options(beam),
                    &every_word,
                    Beside::default(),
                    Avoid::default(),
                );
                assert_eq!(constrained.unwrap(), Some(plain));
                compared += 1;
            }
        }
    }
    assert!(compared > 30, "only {compared} non-empty captions compared");
}

#[test]
fn constraints_the_model_cannot_express_are_refused() {
    let model = tiny_model(8);
    let err = |words: &[&str]| format!("{:#}", Constraint::new(&model, words).unwrap_err());
    assert!(
        err(&["zebra"]).contains("no word \"zebra\""),
        "{}",
        err(&["zebra"])
    );
    assert!(err(&["endseq"]).contains("never emits"));
    assert!(err(&["<unk>"]).contains("no word"));
    assert!(err(&[]).contains("at least one word"));
    let four = vec![Constraint::new(&model, &["dog"]).unwrap(); MAX_CONSTRAINTS + 1];
    let too_many = search_constrained(
        &model,
        &[0.0; 4],
        &options(3),
        &four,
        Beside::default(),
        Avoid::default(),
    );
    assert!(format!("{:#}", too_many.unwrap_err()).contains("at most"));
}

/// `search_many`'s captions against one search per request, for every batch size.
fn check_searched_together(model: &Model, inputs: &[&[f32]], requests: &[SearchRequest]) {
    let alone: Vec<Option<Generated>> = requests
        .iter()
        .map(|r| {
            let (input, beside) = (inputs[r.input], Beside::default());
            search_constrained(model, input, &r.options, r.constraints, beside, r.avoid).unwrap()
        })
        .collect();
    for batch in [1, 2, 3, 5, requests.len()] {
        let together = search_many(model, inputs, requests, batch);
        for (k, (t, a)) in together.iter().zip(&alone).enumerate() {
            assert_eq!(t, a, "batch {batch}, request {k}");
        }
    }
}

/// Requests of every kind over `inputs`: greedy and beam, with and without a constraint and a mask,
/// several on one input.
fn mixed_requests<'a>(
    inputs: usize,
    constraints: &'a [Constraint],
    masked: &'a [u32],
) -> Vec<SearchRequest<'a>> {
    (0..inputs)
        .flat_map(|input| {
            [1, 3, 6].into_iter().enumerate().map(move |(j, beam)| {
                let constraints = if (input + j) % 2 == 0 {
                    constraints
                } else {
                    &[]
                };
                let masked = if (input + j) % 3 == 0 { masked } else { &[] };
                SearchRequest {
                    input,
                    options: options(beam),
                    constraints,
                    avoid: Avoid { masked, once: &[] },
                }
            })
        })
        .collect()
}

#[test]
fn searches_stepped_together_give_each_its_caption_alone() {
    // The merge decoder (each image's rows stepped on their own).
    let cases = random_cases(6);
    let model = &cases[0].0;
    let inputs: Vec<&[f32]> = cases
        .iter()
        .map(|(_, feature)| feature.as_slice())
        .collect();
    let constraints = [Constraint::new(model, &["fast"]).unwrap()];
    let masked = [model.vocab.id("the")];
    check_searched_together(model, &inputs, &mixed_requests(6, &constraints, &masked));
    // The shipped attention decoder (all rows in one product per layer), on grids like an
    // encoder's (values in [0, 6]) and on a blank one (stepped apart: `AttentionGenerator::image`).
    let model = Model::shipped().unwrap();
    let mut rng = Rng::new(7);
    let size = 49 * 1280;
    let mut grids: Vec<Vec<f32>> = (0..4)
        .map(|_| {
            (0..size)
                .map(|_| (rng.uniform() as f32 * 6.0).powi(2) / 6.0)
                .collect()
        })
        .collect();
    grids.push(vec![0.0; size]);
    let inputs: Vec<&[f32]> = grids.iter().map(Vec::as_slice).collect();
    let constraints = [Constraint::new(&model, &["dog", "dogs"]).unwrap()];
    let masked = [model.vocab.id("man"), model.vocab.id("grass")];
    check_searched_together(&model, &inputs, &mixed_requests(5, &constraints, &masked));
}

/// `sample_many` over all `inputs` against one image at a time, each image drawing from a generator
/// seeded by its index; returns the captions.
fn check_sampled_together(model: &Model, inputs: &[&[f32]]) -> Vec<Vec<Generated>> {
    let rngs = || (0..inputs.len() as u64).map(|i| Rng::new(100 + i));
    let together = sample_many(model, inputs, 4, &mut rngs().collect::<Vec<_>>());
    for ((input, mut rng), together) in inputs.iter().zip(rngs()).zip(&together) {
        let alone = sample_many(model, &[input], 4, std::slice::from_mut(&mut rng));
        assert_eq!(&alone[0], together);
    }
    together
}

#[test]
fn captions_sampled_together_are_each_image_s_alone() {
    let cases = random_cases(5);
    let inputs: Vec<&[f32]> = cases.iter().map(|(_, f)| f.as_slice()).collect();
    let merge = check_sampled_together(&cases[0].0, &inputs);
    let model = Model::shipped().unwrap();
    let mut rng = Rng::new(9);
    let grids: Vec<Vec<f32>> = (0..3)
        .map(|_| (0..49 * 1280).map(|_| rng.uniform() as f32 * 3.0).collect())
        .collect();
    let inputs: Vec<&[f32]> = grids.iter().map(Vec::as_slice).collect();
    let attention = check_sampled_together(&model, &inputs);
    // Draws, not one caption repeated: the samples of an image differ.
    for captions in merge.iter().chain(&attention) {
        assert!(captions.iter().any(|c| c.tokens != captions[0].tokens));
    }
}
