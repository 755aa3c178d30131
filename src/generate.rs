//! Caption generation with any decoder (through `decoder::Generator`): beam search over the language
//! model, with greedy decoding as beam width 1 (the seed's). Each step feeds the hypotheses' last
//! words and scores the whole vocabulary. Padding, `<unk>` and `startseq` can never be chosen (the
//! next best word is taken instead); a caption ends at `endseq` or at the model's maximum length.

use crate::model::Model;
use crate::text::{END_TOKEN, PAD_ID, START_TOKEN, UNK_ID};
use rayon::prelude::*;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SearchOptions {
    /// Beam width; 1 is greedy decoding.
    pub beam: usize,
    /// Finished captions are ranked by log p / length^alpha (0 = plain log-probability).
    pub length_penalty: f64,
    /// Never emit a word pair that the caption already holds ("a man in blue shirt and blue shirt").
    pub block_repeats: bool,
}

#[derive(Clone)]
struct Hypothesis {
    tokens: Vec<u32>,
    log_prob: f64,
    state: Vec<f32>,
    /// The attention weights behind each token, for a decoder with attention.
    attention: Vec<Vec<f32>>,
}

/// Word ids the search may never emit.
fn banned(model: &Model) -> [u32; 3] {
    [PAD_ID, UNK_ID, model.vocab.id(START_TOKEN)]
}

/// Words a sentence cannot end on: articles, possessives, prepositions and conjunctions ("a man
/// sitting on the edge of"). After one of them the search may not emit endseq; a caption cut there
/// by the maximum length loses to any that finished.
const DANGLING: [&str; 36] = [
    "a", "an", "the", "his", "her", "their", "its", "my", "your", "our", "this", "that", "these",
    "those", "some", "of", "in", "on", "at", "to", "with", "for", "from", "by", "into", "onto",
    "through", "near", "under", "over", "behind", "across", "along", "around", "and", "or",
];

/// Words that would repeat a word pair already in `tokens` if they came next.
fn repeated_bigram_ends(tokens: &[u32]) -> Vec<u32> {
    let Some(&last) = tokens.last() else {
        return Vec::new();
    };
    tokens
        .windows(2)
        .filter(|pair| pair[0] == last)
        .map(|pair| pair[1])
        .collect()
}

/// log p(tokens, endseq | image) under teacher forcing: how likely the model finds a given caption
/// for a given image input (its pooled feature or grid, as the decoder reads).
pub fn caption_log_prob(model: &Model, input: &[f32], tokens: &[u32], ended: bool) -> f64 {
    let generator = model.generator();
    let image = generator.image(input);
    let mut state = generator.initial_state(&image);
    let (start, end) = (model.vocab.id(START_TOKEN), model.vocab.id(END_TOKEN));
    let mut log_probs = Vec::new();
    let targets = tokens.iter().copied().chain(ended.then_some(end));
    let mut previous = start;
    let mut total = 0.0;
    for target in targets {
        generator.step(&image, &[previous], &mut state, &mut log_probs);
        total += f64::from(log_probs[target as usize]);
        previous = target;
    }
    total
}

/// A searched caption.
#[derive(Clone, Debug, PartialEq)]
pub struct Generated {
    /// Word ids, without startseq and endseq.
    pub tokens: Vec<u32>,
    /// Whether the caption ended with endseq (otherwise it stopped at the maximum length).
    pub ended: bool,
    /// Summed log-probability of the words and of endseq when it ended.
    pub log_prob: f64,
    /// For a decoder with attention: the weights over the image's regions behind each word.
    pub attention: Vec<Vec<f32>>,
}

impl Generated {
    /// Mean log-probability per predicted token (endseq included): how sure the model was.
    pub fn mean_log_prob(&self) -> f64 {
        self.log_prob / self.predicted() as f64
    }

    /// Tokens the model predicted: the words, and endseq when it ended (at least 1).
    pub fn predicted(&self) -> usize {
        (self.tokens.len() + usize::from(self.ended)).max(1)
    }
}

fn score(h: &Hypothesis, alpha: f64) -> f64 {
    if alpha == 0.0 {
        h.log_prob
    } else {
        h.log_prob / (h.tokens.len() as f64).powf(alpha)
    }
}

/// The best caption for one image input (its pooled feature or grid, as the decoder reads).
/// Single-threaded (see `linear_forward_few_rows`); batches caption one image per thread.
pub fn search(model: &Model, input: &[f32], options: &SearchOptions) -> Generated {
    let generator = model.generator();
    let (size, v) = (generator.state_size(), model.config.decoder.vocab());
    let image = generator.image(input);

    let (start, end) = (model.vocab.id(START_TOKEN), model.vocab.id(END_TOKEN));
    let banned = banned(model);
    let dangling: Vec<u32> = DANGLING
        .iter()
        .map(|w| model.vocab.id(w))
        .filter(|&id| id != UNK_ID)
        .collect();
    let width = options.beam.max(1);
    let max_new = model.config.max_length.saturating_sub(1).max(1);
    let mut live = vec![Hypothesis {
        tokens: Vec::new(),
        log_prob: 0.0,
        state: generator.initial_state(&image),
        attention: Vec::new(),
    }];
    let (mut finished, mut cut_dangling): (Vec<Hypothesis>, Vec<Hypothesis>) = Default::default();
    let mut log_probs = Vec::new();
    for t in 0..max_new {
        let tokens: Vec<u32> = live
            .iter()
            .map(|b| b.tokens.last().copied().unwrap_or(start))
            .collect();
        let mut states: Vec<f32> = live.iter().flat_map(|b| b.state.iter().copied()).collect();
        generator.step(&image, &tokens, &mut states, &mut log_probs);
        // The best `width` continuations of each live hypothesis, then the best `width` overall.
        let mut candidates: Vec<(f64, usize, u32)> = Vec::new();
        for (b, row) in log_probs.chunks_exact(v).enumerate() {
            let mut repeats = if options.block_repeats {
                repeated_bigram_ends(&live[b].tokens)
            } else {
                Vec::new()
            };
            if live[b].tokens.last().is_some_and(|t| dangling.contains(t)) {
                repeats.push(end);
            }
            let mut best: Vec<(f32, u32)> = Vec::with_capacity(width + 1);
            for (id, &lp) in row.iter().enumerate() {
                let id = id as u32;
                if banned.contains(&id)
                    || repeats.contains(&id)
                    || (best.len() == width && lp <= best[width - 1].0)
                {
                    continue;
                }
                let at = best.partition_point(|&(p, _)| p >= lp);
                best.insert(at, (lp, id));
                best.truncate(width);
            }
            candidates.extend(
                best.into_iter()
                    .map(|(lp, id)| (live[b].log_prob + f64::from(lp), b, id)),
            );
        }
        candidates.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut next = Vec::with_capacity(width);
        for (log_prob, b, id) in candidates {
            let mut tokens = live[b].tokens.clone();
            tokens.push(id);
            let state = states[b * size..][..size].to_vec();
            let mut attention = live[b].attention.clone();
            attention.extend(generator.attention(&state).map(<[f32]>::to_vec));
            let hypothesis = Hypothesis {
                tokens,
                log_prob,
                state,
                attention,
            };
            if id == end {
                finished.push(hypothesis);
            } else if t + 1 == max_new {
                if dangling.contains(&id) {
                    cut_dangling.push(hypothesis);
                } else {
                    finished.push(hypothesis);
                }
            } else {
                next.push(hypothesis);
            }
            if next.len() == width {
                break;
            }
        }
        live = next;
        if finished.len() >= width || live.is_empty() {
            break;
        }
    }
    // Only a finished caption may win: with a length penalty an unfinished prefix can outscore
    // every finished one ("dog is playing with ball in the"). A caption cut by the maximum length
    // on a dangling word comes next, and the live ones (when every continuation was blocked) last.
    let alpha = options.length_penalty;
    let pool = [finished, cut_dangling, live]
        .into_iter()
        .find(|pool| !pool.is_empty())
        .unwrap_or_default();
    let best = pool
        .into_iter()
        .max_by(|a, b| score(a, alpha).total_cmp(&score(b, alpha)));
    let Some(Hypothesis {
        mut tokens,
        log_prob,
        mut attention,
        ..
    }) = best
    else {
        return Generated {
            tokens: Vec::new(),
            ended: false,
            log_prob: 0.0,
            attention: Vec::new(),
        };
    };
    let ended = tokens.last() == Some(&end);
    if ended {
        tokens.pop();
        attention.truncate(tokens.len());
    }
    Generated {
        tokens,
        ended,
        log_prob,
        attention,
    }
}

/// The words of token ids.
pub fn words<'a>(model: &'a Model, tokens: &[u32]) -> Vec<&'a str> {
    tokens
        .iter()
        .filter_map(|&t| model.vocab.token(t))
        .collect()
}

/// The words of a generated caption, joined by spaces: the token string that is scored.
pub fn caption_text(model: &Model, feature: &[f32], options: &SearchOptions) -> String {
    words(model, &search(model, feature, options).tokens).join(" ")
}

/// Captions for many image inputs, in parallel, one image per thread; `progress` advances per image.
pub fn caption_all(
    model: &Model,
    features: &[&[f32]],
    options: &SearchOptions,
    progress: &indicatif::ProgressBar,
) -> Vec<String> {
    features
        .par_iter()
        .map(|feature| {
            let text = caption_text(model, feature, options);
            progress.inc(1);
            text
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decoder::merge::MergeConfig;
    use crate::decoder::DecoderConfig;
    use crate::engine::rng::Rng;
    use crate::model::ModelConfig;
    use crate::text::{wrap_caption, Tokenization, Vocabulary};

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
}
