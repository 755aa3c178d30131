//! Caption generation with any decoder (through `decoder::Generator`): beam search over the language
//! model, with greedy decoding as beam width 1 (the seed's). Each step feeds the hypotheses' last
//! words and scores the whole vocabulary. Padding, `<unk>` and `startseq` can never be chosen (the
//! next best word is taken instead); a caption ends at `endseq` or at the model's maximum length.

use crate::decoder::Generator;
use crate::engine::rng::Rng;
use crate::model::Model;
use crate::text::{END_TOKEN, PAD_ID, START_TOKEN, UNK_ID};
use anyhow::{bail, Result};
use std::sync::atomic::{AtomicBool, Ordering};

/// The widest beam any command or request may ask for: a search's cost grows with its beam, and
/// wider beams score no better on the dev split.
pub const MAX_BEAM: usize = 10;

/// Why `beam` is not a width a search takes, if it is not: the same words for every door.
pub fn check_beam(beam: usize) -> Result<(), String> {
    if (1..=MAX_BEAM).contains(&beam) {
        Ok(())
    } else {
        Err(format!("beam {beam}: choose 1 (greedy) to {MAX_BEAM}"))
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SearchOptions {
    /// Beam width; 1 is greedy decoding.
    pub beam: usize,
    /// Finished captions are ranked by log p / length^alpha (0 = plain log-probability).
    pub length_penalty: f64,
    /// Never emit a word pair that the caption already holds ("a man in blue shirt and blue shirt").
    pub block_repeats: bool,
}

impl Default for SearchOptions {
    /// Beam 3 and length penalty 1.5: the shipped model's best CIDEr-D on the Flickr8k dev split.
    fn default() -> Self {
        SearchOptions {
            beam: 3,
            length_penalty: 1.5,
            block_repeats: true,
        }
    }
}

#[derive(Clone)]
struct Hypothesis {
    tokens: Vec<u32>,
    log_prob: f64,
    state: Vec<f32>,
    /// The attention weights behind each token, for a decoder with attention.
    attention: Vec<Vec<f32>>,
    /// Each token's log-probability as it was chosen.
    token_log_probs: Vec<f32>,
}

/// Word ids a search or a sample may never emit.
pub fn banned(model: &Model) -> [u32; 3] {
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

/// Words that would repeat something if they came next: the last word again ("is is"), the word
/// before "and" ("a yellow and yellow shirt"), a word pair already in `tokens` ("a man in blue
/// shirt and blue shirt"), or a word of `once` already there.
fn repeats(tokens: &[u32], and: u32, once: &[u32]) -> Vec<u32> {
    let mut out = repeated_bigram_ends(tokens);
    out.extend(tokens.last());
    if let [.., before, last] = tokens {
        if *last == and {
            out.push(*before);
        }
    }
    out.extend(tokens.iter().filter(|t| once.contains(t)));
    out
}

/// log p(tokens, endseq | image) under teacher forcing: how likely the model finds a given caption
/// for a given image input (its pooled feature or grid, as the decoder reads).
fn caption_log_prob(model: &Model, input: &[f32], tokens: &[u32], ended: bool) -> f64 {
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

/// The mean log-probability per token that a caption gains from the photo, against the same
/// caption for an all-zero input (pointwise mutual information, nats): near 0 when the caption is
/// the language model's guess (a blank photo, or one unlike anything in training), 1-2 for a
/// caption drawn from the photo.
pub fn photo_gain(model: &Model, input: &[f32], caption: &Generated) -> f64 {
    let blind = caption_log_prob(
        model,
        &vec![0.0; input.len()],
        &caption.tokens,
        caption.ended,
    );
    (caption.log_prob - blind) / caption.predicted() as f64
}

/// A searched caption.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Generated {
    /// Word ids, without startseq and endseq.
    pub tokens: Vec<u32>,
    /// Whether the caption ended with endseq (otherwise it stopped at the maximum length).
    pub ended: bool,
    /// Summed log-probability of the words and of endseq when it ended.
    pub log_prob: f64,
    /// For a decoder with attention: the weights over the image's regions behind each word.
    pub attention: Vec<Vec<f32>>,
    /// Each word's probability as the search chose it (empty for samples).
    pub token_probabilities: Vec<f32>,
}

impl Generated {
    /// No caption: what a search returns when every continuation was blocked from the start.
    fn empty() -> Self {
        Generated {
            tokens: Vec::new(),
            ended: false,
            log_prob: 0.0,
            attention: Vec::new(),
            token_probabilities: Vec::new(),
        }
    }

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

/// Words a finished caption must hold one of (a word and its plural, say): a constraint of
/// constrained beam search (Anderson et al. 2017).
#[derive(Clone, Debug, PartialEq)]
pub struct Constraint {
    ids: Vec<u32>,
    /// For each of `ids`, when not empty: the words after which it may be placed (an article
    /// before a noun, a number before a plural), so that the search cannot meet the constraint by
    /// putting a noun where a verb goes.
    after: Vec<Vec<u32>>,
}

/// Most constraints one search takes: its hypotheses are grouped by which constraints they have
/// met, 2^n groups of `beam` each.
pub const MAX_CONSTRAINTS: usize = 3;

impl Constraint {
    /// A constraint on `words`, each a word the model's vocabulary holds and the search may emit.
    pub fn new(model: &Model, words: &[&str]) -> Result<Self> {
        if words.is_empty() {
            bail!("a constraint needs at least one word");
        }
        let never = [banned(model).as_slice(), &[model.vocab.id(END_TOKEN)]].concat();
        let mut ids: Vec<u32> = Vec::new();
        for word in words {
            let id = model.vocab.id(word);
            if id == UNK_ID {
                bail!("the model's vocabulary has no word \"{word}\": no caption can hold it");
            }
            if never.contains(&id) {
                bail!(
                    "\"{word}\" is a marker the search never emits, not a word a caption can hold"
                );
            }
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        let after = vec![Vec::new(); ids.len()];
        Ok(Constraint { ids, after })
    }

    /// The same constraint, each of its words placed only right after one of `before(word)` (those
    /// the vocabulary lacks are left out).
    pub fn after<'w>(self, model: &Model, before: impl Fn(&str) -> &'w [&'w str]) -> Self {
        let after = self
            .ids
            .iter()
            .map(|&id| {
                before(model.vocab.token(id).unwrap_or_default())
                    .iter()
                    .map(|w| model.vocab.id(w))
                    .filter(|&id| id != UNK_ID)
                    .collect()
            })
            .collect();
        Constraint { after, ..self }
    }
}

/// The best caption for one image input (its pooled feature or grid, as the decoder reads).
/// Single-threaded (see `matmul_panels`); batches caption one image per thread.
pub fn search(model: &Model, input: &[f32], options: &SearchOptions) -> Generated {
    search_avoiding(model, input, options, Avoid::default())
}

/// `search`, never emitting the words `avoid` rules out.
pub fn search_avoiding(
    model: &Model,
    input: &[f32],
    options: &SearchOptions,
    avoid: Avoid,
) -> Generated {
    beam_search(model, input, options, &[], Beside::default(), avoid)
        .unwrap_or_else(Generated::empty)
}

/// Words a search must not emit for one photo, chosen above the search (`evidence.rs`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Avoid<'a> {
    /// Never: words of what the photo does not back.
    pub masked: &'a [u32],
    /// At most once in a caption: words of a setting ("in a tree in the tree").
    pub once: &'a [u32],
}

/// How a constrained search may use a second thread, for one photo's latency.
#[derive(Clone, Copy, Debug, Default)]
pub struct Beside<'a> {
    /// Share each step's hypotheses between two threads of the rayon pool when one is free (a
    /// constrained search steps twice the plain search's hypotheses or more). Every row is computed
    /// alone, so the caption is the same either way.
    pub split_steps: bool,
    /// Once this is set, stop at the next step and return `None`: the caption is no longer wanted
    /// (the plain caption, searched beside it, turned out to hold the word).
    pub cancel: Option<&'a AtomicBool>,
}

/// The best caption that holds a word of every constraint, or `None` when no caption within the
/// maximum length does (or `beside.cancel` was set). With no constraint it is `search`.
pub fn search_constrained(
    model: &Model,
    input: &[f32],
    options: &SearchOptions,
    constraints: &[Constraint],
    beside: Beside,
    avoid: Avoid,
) -> Result<Option<Generated>> {
    if constraints.len() > MAX_CONSTRAINTS {
        bail!(
            "{} constraints given; a search takes at most {MAX_CONSTRAINTS}",
            constraints.len()
        );
    }
    Ok(beam_search(
        model,
        input,
        options,
        constraints,
        beside,
        avoid,
    ))
}

/// `generator.step` for all rows, or its first and second halves side by side with `split`. Never
/// a half of one row: a decoder may step a single row another way (the merge decoder's
/// matrix-vector product), and the caption must not depend on the split.
fn step_rows(
    generator: &dyn Generator,
    image: &[f32],
    tokens: &[u32],
    states: &mut [f32],
    log_probs: &mut Vec<f32>,
    split: bool,
) {
    if !split || tokens.len() < 4 {
        generator.step(image, tokens, states, log_probs);
        return;
    }
    let half = tokens.len().div_ceil(2);
    let (first_tokens, second_tokens) = tokens.split_at(half);
    let (first_states, second_states) = states.split_at_mut(half * generator.state_size());
    let mut second = Vec::new();
    rayon::join(
        || generator.step(image, first_tokens, first_states, log_probs),
        || generator.step(image, second_tokens, second_states, &mut second),
    );
    log_probs.extend_from_slice(&second);
}

/// What a search may emit, worked out once per caption: the masked and special words, the words a
/// caption cannot end on, the repetition rules and each constraint word with the constraints it
/// meets.
struct Rules<'a> {
    /// Never emitted, by id: the specials and the masked words (a mask, not a list: every step
    /// looks up every word of the vocabulary).
    never: Vec<bool>,
    dangling: Vec<u32>,
    constraints: &'a [Constraint],
    /// Each constraint word with the set of constraints it meets (a bit mask).
    meeting: Vec<(u32, usize)>,
    all_met: usize,
    end: u32,
    and: u32,
    once: &'a [u32],
    block_repeats: bool,
    width: usize,
}

/// A continuation of hypothesis `b` of a step: (log-probability of the whole caption, b, word).
type Candidate = (f64, usize, u32);

impl<'a> Rules<'a> {
    fn new(
        model: &Model,
        options: &SearchOptions,
        constraints: &'a [Constraint],
        avoid: Avoid<'a>,
    ) -> Self {
        let v = model.config.decoder.vocab();
        let mut never = vec![false; v];
        for &id in banned(model).iter().chain(avoid.masked) {
            if let Some(slot) = never.get_mut(id as usize) {
                *slot = true;
            }
        }
        let dangling: Vec<u32> = DANGLING
            .iter()
            .map(|w| model.vocab.id(w))
            .filter(|&id| id != UNK_ID)
            .collect();
        let mut meeting: Vec<(u32, usize)> = Vec::new();
        for (bit, constraint) in constraints.iter().enumerate() {
            for &id in &constraint.ids {
                match meeting.iter_mut().find(|(word, _)| *word == id) {
                    Some((_, mask)) => *mask |= 1 << bit,
                    None => meeting.push((id, 1 << bit)),
                }
            }
        }
        Rules {
            never,
            dangling,
            constraints,
            meeting,
            all_met: (1usize << constraints.len()) - 1,
            end: model.vocab.id(END_TOKEN),
            and: model.vocab.id("and"),
            once: avoid.once,
            block_repeats: options.block_repeats,
            width: options.beam.max(1),
        }
    }

    /// The constraints that word `id` meets when it follows `last`.
    fn placeable(&self, id: u32, last: Option<&u32>) -> usize {
        self.constraints
            .iter()
            .enumerate()
            .filter(|(_, c)| {
                c.ids.iter().zip(&c.after).any(|(&word, after)| {
                    word == id && (after.is_empty() || last.is_some_and(|l| after.contains(l)))
                })
            })
            .fold(0, |mask, (bit, _)| mask | 1 << bit)
    }

    /// Hypothesis `b` (in `group`, next words scored by `row`): the best `width` continuations
    /// that stay in its group, and every continuation that moves it into a fuller group by
    /// meeting a constraint, each pushed onto its group's candidates.
    fn continuations(
        &self,
        group: usize,
        hypothesis: &Hypothesis,
        b: usize,
        row: &[f32],
        candidates: &mut [Vec<Candidate>],
    ) {
        let repeats = if self.block_repeats {
            repeats(&hypothesis.tokens, self.and, self.once)
        } else {
            Vec::new()
        };
        // Words that would meet a constraint not met yet move the hypothesis to a fuller group,
        // where they may be placed; elsewhere they are not emitted at all.
        let unmet: Vec<(u32, usize)> = self
            .meeting
            .iter()
            .filter(|&&(_, mask)| mask & !group != 0)
            .copied()
            .collect();
        let moving: Vec<(u32, usize)> = unmet
            .iter()
            .filter(|&&(id, mask)| {
                mask & !group & !self.placeable(id, hypothesis.tokens.last()) == 0
                    && !repeats.contains(&id)
            })
            .map(|&(id, mask)| (id, group | mask))
            .collect();
        let mut blocked = repeats;
        if group != self.all_met
            || hypothesis
                .tokens
                .last()
                .is_some_and(|t| self.dangling.contains(t))
        {
            blocked.push(self.end);
        }
        blocked.extend(unmet.iter().map(|&(id, _)| id));
        for (lp, id) in best_words(row, self.width, &self.never, &blocked) {
            candidates[group].push((hypothesis.log_prob + f64::from(lp), b, id));
        }
        for (id, to) in moving {
            let lp = f64::from(row[id as usize]);
            candidates[to].push((hypothesis.log_prob + lp, b, id));
        }
    }
}

/// `parent` continued by word `id`, its state after the step being `state`.
fn extend(
    generator: &dyn Generator,
    parent: &Hypothesis,
    (log_prob, id): (f64, u32),
    state: Vec<f32>,
) -> Hypothesis {
    let mut tokens = parent.tokens.clone();
    tokens.push(id);
    let mut attention = parent.attention.clone();
    attention.extend(generator.attention(&state).map(<[f32]>::to_vec));
    let mut token_log_probs = parent.token_log_probs.clone();
    token_log_probs.push((log_prob - parent.log_prob) as f32);
    Hypothesis {
        tokens,
        log_prob,
        state,
        attention,
        token_log_probs,
    }
}

/// Beam search with hypotheses grouped by the set of constraints they have met (a bit mask); each
/// group keeps `beam` hypotheses, a word that meets a constraint moves its hypothesis to a fuller
/// group, and only the group that met every constraint may finish.
fn beam_search(
    model: &Model,
    input: &[f32],
    options: &SearchOptions,
    constraints: &[Constraint],
    beside: Beside,
    avoid: Avoid,
) -> Option<Generated> {
    let generator = model.generator();
    let image = generator.image(input);
    let initial = generator.initial_state(&image);
    let mut beam = Beam::new(model, initial, options, constraints, avoid);
    let (mut tokens, mut states, mut log_probs) = (Vec::new(), Vec::new(), Vec::new());
    loop {
        if beside
            .cancel
            .is_some_and(|cancel| cancel.load(Ordering::Relaxed))
        {
            return None;
        }
        tokens.clear();
        states.clear();
        beam.feed(&mut tokens, &mut states);
        step_rows(
            generator,
            &image,
            &tokens,
            &mut states,
            &mut log_probs,
            beside.split_steps,
        );
        if !beam.advance(generator, &log_probs, &states) {
            return beam.best();
        }
    }
}

/// One search of a batch (`search_many`): the photo it is for (an index into the inputs), its
/// options, constraints and words to avoid.
#[derive(Clone, Copy, Debug)]
pub struct SearchRequest<'a> {
    pub input: usize,
    pub options: SearchOptions,
    pub constraints: &'a [Constraint],
    pub avoid: Avoid<'a>,
}

/// The best caption of each request (as `search_constrained` gives it), the searches stepped
/// together: every step feeds the live hypotheses of up to `batch` searches through the decoder at
/// once (`Generator::step_many`), so that each layer's weights are read once per step for all of
/// them; a search that finishes leaves and the next request takes its place. Every row is computed
/// as the one-photo search computes it, so each caption is the one it would have alone.
/// Single-threaded; callers split their photos between threads.
pub fn search_many(
    model: &Model,
    inputs: &[&[f32]],
    requests: &[SearchRequest],
    batch: usize,
) -> Vec<Option<Generated>> {
    let generator = model.generator();
    let (size, v) = (generator.state_size(), model.config.decoder.vocab());
    // Each input prepared when its first search joins: only the inputs asked for, once.
    let mut images: Vec<Option<Vec<f32>>> = vec![None; inputs.len()];
    let mut results = vec![None; requests.len()];
    let mut waiting = requests.iter().enumerate();
    let mut active: Vec<(usize, Beam)> = Vec::new();
    let (mut tokens, mut states, mut log_probs) = (Vec::new(), Vec::new(), Vec::new());
    loop {
        while active.len() < batch.max(1) {
            let Some((k, request)) = waiting.next() else {
                break;
            };
            let image =
                images[request.input].get_or_insert_with(|| generator.image(inputs[request.input]));
            let initial = generator.initial_state(image);
            let beam = Beam::new(
                model,
                initial,
                &request.options,
                request.constraints,
                request.avoid,
            );
            active.push((k, beam));
        }
        if active.is_empty() {
            return results;
        }
        tokens.clear();
        states.clear();
        let runs: Vec<(&[f32], usize)> = active
            .iter()
            .map(|(k, beam)| {
                let image = images[requests[*k].input]
                    .as_deref()
                    .expect("prepared when its search joined");
                (image, beam.feed(&mut tokens, &mut states))
            })
            .collect();
        generator.step_many(&runs, &tokens, &mut states, &mut log_probs);
        let mut first = 0;
        let mut still = Vec::with_capacity(active.len());
        for ((k, mut beam), (_, rows)) in active.into_iter().zip(runs) {
            let log_probs = &log_probs[first * v..][..rows * v];
            let states = &states[first * size..][..rows * size];
            first += rows;
            if beam.advance(generator, log_probs, states) {
                still.push((k, beam));
            } else {
                results[k] = beam.best();
            }
        }
        active = still;
    }
}

/// One caption's beam search as it goes: its rules, its live hypotheses by group, and the
/// captions that finished.
struct Beam<'a> {
    rules: Rules<'a>,
    live: Vec<Vec<Hypothesis>>,
    finished: Vec<Hypothesis>,
    /// Cut by the maximum length on a word a sentence cannot end on.
    cut_dangling: Vec<Hypothesis>,
    start: u32,
    vocab: usize,
    /// The length penalty that ranks the finished captions.
    alpha: f64,
    /// Steps taken, and the most there may be.
    t: usize,
    max_new: usize,
}

impl<'a> Beam<'a> {
    fn new(
        model: &Model,
        initial: Vec<f32>,
        options: &SearchOptions,
        constraints: &'a [Constraint],
        avoid: Avoid<'a>,
    ) -> Self {
        let rules = Rules::new(model, options, constraints, avoid);
        let mut live: Vec<Vec<Hypothesis>> = vec![Vec::new(); rules.all_met + 1];
        live[0].push(Hypothesis {
            tokens: Vec::new(),
            log_prob: 0.0,
            state: initial,
            attention: Vec::new(),
            token_log_probs: Vec::new(),
        });
        Beam {
            rules,
            live,
            finished: Vec::new(),
            cut_dangling: Vec::new(),
            start: model.vocab.id(START_TOKEN),
            vocab: model.config.decoder.vocab(),
            alpha: options.length_penalty,
            t: 0,
            max_new: model.config.max_length.saturating_sub(1).max(1),
        }
    }

    /// The live hypotheses in the order they are stepped, each with its group.
    fn flat(live: &[Vec<Hypothesis>]) -> Vec<(usize, &Hypothesis)> {
        live.iter()
            .enumerate()
            .flat_map(|(group, hypotheses)| hypotheses.iter().map(move |h| (group, h)))
            .collect()
    }

    /// Appends each live hypothesis's last word and state, as the next step's rows; their number.
    fn feed(&self, tokens: &mut Vec<u32>, states: &mut Vec<f32>) -> usize {
        let flat = Self::flat(&self.live);
        for (_, h) in &flat {
            tokens.push(h.tokens.last().copied().unwrap_or(self.start));
            states.extend_from_slice(&h.state);
        }
        flat.len()
    }

    /// The step's log-probabilities and states for the rows `feed` gave: each group's best
    /// continuations live on, those that end are finished. Whether the search goes on.
    fn advance(&mut self, generator: &dyn Generator, log_probs: &[f32], states: &[f32]) -> bool {
        let (size, v, rules) = (generator.state_size(), self.vocab, &self.rules);
        let live = std::mem::take(&mut self.live);
        let flat = Self::flat(&live);
        let mut candidates: Vec<Vec<Candidate>> = vec![Vec::new(); rules.all_met + 1];
        for (b, row) in log_probs.chunks_exact(v).enumerate() {
            let (group, hypothesis) = flat[b];
            rules.continuations(group, hypothesis, b, row, &mut candidates);
        }
        let last_step = self.t + 1 == self.max_new;
        let mut next: Vec<Vec<Hypothesis>> = vec![Vec::new(); rules.all_met + 1];
        for (group, mut group_candidates) in candidates.into_iter().enumerate() {
            group_candidates.sort_by(|a, b| b.0.total_cmp(&a.0));
            for (log_prob, b, id) in group_candidates {
                let state = states[b * size..][..size].to_vec();
                let hypothesis = extend(generator, flat[b].1, (log_prob, id), state);
                if id == rules.end {
                    self.finished.push(hypothesis);
                } else if last_step {
                    if group != rules.all_met {
                        continue;
                    } else if rules.dangling.contains(&id) {
                        self.cut_dangling.push(hypothesis);
                    } else {
                        self.finished.push(hypothesis);
                    }
                } else {
                    next[group].push(hypothesis);
                }
                if next[group].len() == rules.width {
                    break;
                }
            }
        }
        self.live = next;
        self.t += 1;
        !(last_step || self.finished.len() >= rules.width || self.live.iter().all(Vec::is_empty))
    }

    /// The caption the search returns. Only a finished caption may win: with a length penalty an
    /// unfinished prefix can outscore every finished one ("dog is playing with ball in the"). A
    /// caption cut by the maximum length on a dangling word comes next, and the live ones (when
    /// every continuation was blocked) last.
    fn best(mut self) -> Option<Generated> {
        let all_met = std::mem::take(&mut self.live[self.rules.all_met]);
        let pool = [self.finished, self.cut_dangling, all_met]
            .into_iter()
            .find(|pool| !pool.is_empty())?;
        Some(best_of(pool, self.alpha, self.rules.end))
    }
}

/// The best of `pool` by length-penalised score, as the caption the search returns.
fn best_of(pool: Vec<Hypothesis>, alpha: f64, end: u32) -> Generated {
    let best = pool
        .into_iter()
        .max_by(|a, b| score(a, alpha).total_cmp(&score(b, alpha)));
    let Some(Hypothesis {
        mut tokens,
        log_prob,
        mut attention,
        token_log_probs,
        ..
    }) = best
    else {
        return Generated::empty();
    };
    let ended = tokens.last() == Some(&end);
    if ended {
        tokens.pop();
        attention.truncate(tokens.len());
    }
    let token_probabilities = token_log_probs[..tokens.len()]
        .iter()
        .map(|lp| lp.exp())
        .collect();
    Generated {
        tokens,
        ended,
        log_prob,
        attention,
        token_probabilities,
    }
}

/// `count` captions for each image of `inputs`, drawn from the model's distribution word by word
/// (multinomial, temperature 1), as self-critical training samples them: padding, `<unk>` and
/// startseq are never drawn (the other words keep their relative probabilities); a caption ends at
/// endseq or at the maximum length. `log_prob` is under the model's full distribution. Every
/// image's unfinished captions are stepped together (`Generator::step_many`) and image `i` draws
/// from `rngs[i]` in the order of its own captions, so its captions do not depend on the other
/// images. Single-threaded, like `search`.
pub fn sample_many(
    model: &Model,
    inputs: &[&[f32]],
    count: usize,
    rngs: &mut [Rng],
) -> Vec<Vec<Generated>> {
    let generator = model.generator();
    let (size, v) = (generator.state_size(), model.config.decoder.vocab());
    let images: Vec<Vec<f32>> = inputs.iter().map(|input| generator.image(input)).collect();
    let (start, end) = (model.vocab.id(START_TOKEN), model.vocab.id(END_TOKEN));
    let banned = banned(model);
    let max_new = model.config.max_length.saturating_sub(1).max(1);
    let mut captions = vec![vec![Generated::empty(); count]; inputs.len()];
    // The captions still being written (image, caption), image by image, and their states in the
    // same order.
    let mut active: Vec<(usize, usize)> = (0..inputs.len())
        .flat_map(|i| (0..count).map(move |k| (i, k)))
        .collect();
    let mut states: Vec<f32> = images
        .iter()
        .flat_map(|image| generator.initial_state(image).repeat(count))
        .collect();
    let mut log_probs = Vec::new();
    for t in 0..max_new {
        let tokens: Vec<u32> = active
            .iter()
            .map(|&(i, k)| captions[i][k].tokens.last().copied().unwrap_or(start))
            .collect();
        let rows: Vec<(&[f32], usize)> = active
            .chunk_by(|a, b| a.0 == b.0)
            .map(|group| (images[group[0].0].as_slice(), group.len()))
            .collect();
        generator.step_many(&rows, &tokens, &mut states, &mut log_probs);
        let mut still = Vec::with_capacity(active.len());
        for (row, &(i, k)) in active.iter().enumerate() {
            let log_probs = &log_probs[row * v..][..v];
            let id = draw(log_probs, &banned, &mut rngs[i]);
            let caption = &mut captions[i][k];
            caption.log_prob += f64::from(log_probs[id as usize]);
            if id == end {
                caption.ended = true;
            } else {
                caption.tokens.push(id);
                if t + 1 < max_new {
                    states.copy_within(row * size..(row + 1) * size, still.len() * size);
                    still.push((i, k));
                }
            }
        }
        states.truncate(still.len() * size);
        active = still;
        if active.is_empty() {
            break;
        }
    }
    captions
}

/// A word drawn with probability proportional to exp(log-probability), leaving out `banned`.
fn draw(log_probs: &[f32], banned: &[u32], rng: &mut Rng) -> u32 {
    let allowed = |id: usize| !banned.contains(&(id as u32));
    let total: f64 = log_probs
        .iter()
        .enumerate()
        .filter(|&(id, _)| allowed(id))
        .map(|(_, &lp)| f64::from(lp).exp())
        .sum();
    let mut left = rng.uniform() * total;
    let mut last = 0;
    for (id, &lp) in log_probs.iter().enumerate().filter(|&(id, _)| allowed(id)) {
        left -= f64::from(lp).exp();
        last = id;
        if left < 0.0 {
            break;
        }
    }
    last as u32
}

/// The `width` most probable words of a row of log-probabilities, most probable first, leaving out
/// the ids `never` marks and `blocked`.
fn best_words(row: &[f32], width: usize, never: &[bool], blocked: &[u32]) -> Vec<(f32, u32)> {
    let mut best: Vec<(f32, u32)> = Vec::with_capacity(width + 1);
    for (id, &lp) in row.iter().enumerate() {
        if (best.len() == width && lp <= best[width - 1].0)
            || never[id]
            || blocked.contains(&(id as u32))
        {
            continue;
        }
        let id = id as u32;
        let at = best.partition_point(|&(p, _)| p >= lp);
        best.insert(at, (lp, id));
        best.truncate(width);
    }
    best
}

/// The words of token ids.
pub fn words<'a>(model: &'a Model, tokens: &[u32]) -> Vec<&'a str> {
    tokens
        .iter()
        .filter_map(|&t| model.vocab.token(t))
        .collect()
}

#[cfg(test)]
mod tests;
