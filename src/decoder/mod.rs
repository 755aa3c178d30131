//! Caption decoders: language models conditioned on an image, and the batches they train on.

pub mod attention;
pub mod merge;

use crate::engine::params::{Layout, Parameters};
use crate::engine::rng::Rng;
use crate::engine::Real;
use crate::nn::lstm::{balanced_ranges, Packing};
use attention::AttentionConfig;
use merge::MergeConfig;
use serde::{Deserialize, Serialize};
use std::ops::Range;

/// Captions of a batch that one thread runs through the whole recurrence: its captions, its positions
/// and how they are packed.
#[derive(Clone, Debug, Default)]
pub struct Group {
    pub captions: Range<usize>,
    pub positions: Range<usize>,
    pub packing: Packing,
}

/// A batch of captions in packed order (longest first): one image input per caption (a feature vector
/// or a grid), the input tokens (caption without its last token) and targets (caption without its
/// first). The captions are cut into groups of about the same number of positions; each group's
/// positions are contiguous and time-major, so that a group's recurrence can run on its own thread.
#[derive(Clone, Debug, Default)]
pub struct Batch<T> {
    pub features: Vec<T>,
    pub groups: Vec<Group>,
    pub inputs: Vec<u32>,
    pub targets: Vec<u32>,
    /// Each position's weight in the loss; empty (as `fill` leaves it): every position 1/positions,
    /// the mean cross-entropy.
    pub weights: Vec<T>,
    /// Words left out of the loss's softmax (self-critical training: those never sampled); kept by
    /// `fill`.
    pub excluded: Vec<u32>,
    /// Packed row of each position's caption (index into `features` rows).
    pub caption: Vec<usize>,
    /// `order[k]` is the caller's index of packed caption k.
    pub order: Vec<usize>,
    /// Input positions of each packed caption (its token count - 1).
    lengths: Vec<usize>,
}

impl<T: Real> Batch<T> {
    /// Caption k of `count` is `caption(k)` = (its image input, its token ids with startseq/endseq);
    /// at most `groups` groups. Reuses the batch's buffers, so refilling a batch of the same size
    /// allocates little.
    pub fn fill<'a>(
        &mut self,
        count: usize,
        groups: usize,
        caption: impl Fn(usize) -> (&'a [T], &'a [u32]),
    ) where
        T: 'a,
    {
        self.order.clear();
        self.order.extend(0..count);
        self.order
            .sort_by_key(|&k| std::cmp::Reverse(caption(k).1.len()));
        self.lengths.clear();
        self.lengths.extend(
            self.order
                .iter()
                .map(|&k| caption(k).1.len().saturating_sub(1)),
        );
        self.features.clear();
        for &k in &self.order {
            self.features.extend_from_slice(caption(k).0);
        }
        self.inputs.clear();
        self.targets.clear();
        self.weights.clear();
        self.caption.clear();
        self.groups.clear();
        for captions in balanced_ranges(&self.lengths, groups) {
            let packing = Packing::from_sorted_lengths(&self.lengths[captions.clone()]);
            let first = self.inputs.len();
            for (t, &active) in packing.active.iter().enumerate() {
                for row in captions.start..captions.start + active {
                    let tokens = caption(self.order[row]).1;
                    self.inputs.push(tokens[t]);
                    self.targets.push(tokens[t + 1]);
                    self.caption.push(row);
                }
            }
            let positions = first..self.inputs.len();
            self.groups.push(Group {
                captions,
                positions,
                packing,
            });
        }
    }

    /// Weighs every position of caller's caption k by `weight(k)` (a policy gradient's advantage).
    pub fn weigh_captions(&mut self, weight: impl Fn(usize) -> T) {
        self.weights.clear();
        let order = &self.order;
        self.weights
            .extend(self.caption.iter().map(|&row| weight(order[row])));
    }

    pub fn captions(&self) -> usize {
        self.order.len()
    }

    pub fn positions(&self) -> usize {
        self.inputs.len()
    }

    /// The packing of a batch filled as one group.
    pub fn packing(&self) -> &Packing {
        assert_eq!(self.groups.len(), 1, "a batch of one group");
        &self.groups[0].packing
    }
}

/// The decoder of a model and its sizes, as `config.json` stores them (`"decoder": "merge"` or
/// `"attention"` beside the fields of that decoder's config).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "decoder", rename_all = "lowercase")]
pub enum DecoderConfig {
    Merge(MergeConfig),
    Attention(AttentionConfig),
}

/// What a decoder reads of each image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageInput {
    /// The pooled feature vector, `dim` values.
    Pooled { dim: usize },
    /// The grid before pooling: `regions` positions of `channels` values.
    Grid { regions: usize, channels: usize },
}

/// The batch's mean cross-entropy from a forward pass's `logits` (over a vocabulary of `vocab`),
/// without gradients: the dev loss.
fn mean_loss<T: crate::engine::math::FastMath>(
    logits: &mut [T],
    batch: &Batch<T>,
    vocab: usize,
) -> f64 {
    crate::nn::softmax_xent::softmax_xent_forward_backward(
        logits,
        &batch.targets,
        &batch.weights,
        &batch.excluded,
        vocab,
        None,
    )
}

impl std::fmt::Display for ImageInput {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            ImageInput::Pooled { dim } => write!(f, "{dim}-d features"),
            ImageInput::Grid { regions, channels } => {
                write!(f, "grids of {regions} regions x {channels} channels")
            }
        }
    }
}

/// A training step's activations and scratch, for the decoder that made it.
pub enum Workspace {
    Merge(Box<merge::Workspace<f32>>),
    Attention(Box<attention::Workspace<f32>>),
}

impl DecoderConfig {
    pub fn name(&self) -> &'static str {
        match self {
            DecoderConfig::Merge(_) => "merge",
            DecoderConfig::Attention(_) => "attention",
        }
    }

    pub fn vocab(&self) -> usize {
        match self {
            DecoderConfig::Merge(c) => c.vocab,
            DecoderConfig::Attention(c) => c.vocab,
        }
    }

    pub fn image_input(&self) -> ImageInput {
        match self {
            DecoderConfig::Merge(c) => ImageInput::Pooled { dim: c.feature_dim },
            DecoderConfig::Attention(c) => ImageInput::Grid {
                regions: c.regions,
                channels: c.feature_dim,
            },
        }
    }

    pub fn layout(&self) -> Layout {
        match self {
            DecoderConfig::Merge(c) => c.layout(),
            DecoderConfig::Attention(c) => c.layout(),
        }
    }

    pub fn init(&self, rng: &mut Rng) -> Vec<f32> {
        match self {
            DecoderConfig::Merge(c) => c.init(rng),
            DecoderConfig::Attention(c) => c.init(rng),
        }
    }

    /// Groups to cut a batch into for `threads` threads: the attention decoder runs each group's
    /// recurrence on its own thread; the merge decoder's LSTM splits its one group itself.
    pub fn groups(&self, threads: usize) -> usize {
        match self {
            DecoderConfig::Merge(_) => 1,
            DecoderConfig::Attention(_) => threads.max(1),
        }
    }

    /// The same decoder without its cross-entropy regulariser (the attention decoder's doubly
    /// stochastic term): self-critical training follows the policy gradient alone.
    pub fn without_regulariser(&self) -> DecoderConfig {
        match *self {
            DecoderConfig::Merge(c) => DecoderConfig::Merge(c),
            DecoderConfig::Attention(c) => {
                DecoderConfig::Attention(AttentionConfig { alpha_c: 0.0, ..c })
            }
        }
    }

    /// The decoder with these parameters, ready to generate.
    pub fn generator(&self, params: &[f32]) -> Box<dyn Generator> {
        match self {
            DecoderConfig::Merge(c) => Box::new(merge::MergeGenerator::new(c, params)),
            DecoderConfig::Attention(c) => Box::new(attention::AttentionGenerator::new(c, params)),
        }
    }

    pub fn workspace(&self) -> Workspace {
        match self {
            DecoderConfig::Merge(_) => Workspace::Merge(Default::default()),
            DecoderConfig::Attention(_) => Workspace::Attention(Default::default()),
        }
    }

    /// One training step's forward and backward (dropout on with `rng`): the loss, and the gradients
    /// added to `grads`.
    pub fn forward_backward(
        &self,
        params: &[f32],
        grads: &mut [f32],
        batch: &Batch<f32>,
        ws: &mut Workspace,
        rng: Option<&mut Rng>,
        threads: usize,
    ) -> f64 {
        match (self, ws) {
            (DecoderConfig::Merge(c), Workspace::Merge(ws)) => {
                merge::forward_backward(params, grads, c, batch, ws, rng, threads)
            }
            (DecoderConfig::Attention(c), Workspace::Attention(ws)) => {
                attention::forward_backward(params, grads, c, batch, ws, rng, threads)
            }
            _ => panic!("a workspace of another decoder"),
        }
    }

    /// The mean cross-entropy of a batch, dropout off.
    pub fn loss(
        &self,
        params: &[f32],
        batch: &Batch<f32>,
        ws: &mut Workspace,
        threads: usize,
    ) -> f64 {
        match (self, ws) {
            (DecoderConfig::Merge(c), Workspace::Merge(ws)) => {
                merge::loss(params, c, batch, ws, threads)
            }
            (DecoderConfig::Attention(c), Workspace::Attention(ws)) => {
                attention::loss(params, c, batch, ws, threads)
            }
            _ => panic!("a workspace of another decoder"),
        }
    }
}

/// A trained decoder ready to generate, for any number of images: its weights, packed for the
/// few-row products of a search where that pays. A search keeps one state per hypothesis.
pub trait Generator: Send + Sync {
    /// Values of one hypothesis's state.
    fn state_size(&self) -> usize;
    /// What every step of one image's search reads, from the image's input row (its pooled feature
    /// or its grid).
    fn image(&self, input: &[f32]) -> Vec<f32>;
    /// The state before the first word.
    fn initial_state(&self, image: &[f32]) -> Vec<f32>;
    /// One step for `tokens.len()` hypotheses (their last tokens): `states` [rows, state_size] are
    /// advanced in place and `log_probs` receives [rows, V] log-probabilities of the next token.
    fn step(&self, image: &[f32], tokens: &[u32], states: &mut [f32], log_probs: &mut Vec<f32>);
    /// `step` for the hypotheses of several images at once (a batched search): `images` holds each
    /// image with its number of rows, in the rows' order. Each row's numbers must equal what `step`
    /// gives it, so that a caption does not depend on its batch; by default each image's rows are
    /// stepped on their own.
    fn step_many(
        &self,
        images: &[(&[f32], usize)],
        tokens: &[u32],
        states: &mut [f32],
        log_probs: &mut Vec<f32>,
    ) {
        step_each(self, images, tokens, states, log_probs);
    }
    /// The attention weights over the image's regions of the step that made `state`, for a decoder
    /// that has them.
    fn attention<'a>(&self, _state: &'a [f32]) -> Option<&'a [f32]> {
        None
    }
}

/// `Generator::step_many` as one `step` per image.
pub fn step_each<G: Generator + ?Sized>(
    generator: &G,
    images: &[(&[f32], usize)],
    tokens: &[u32],
    states: &mut [f32],
    log_probs: &mut Vec<f32>,
) {
    let size = generator.state_size();
    let (mut first, mut rows_out) = (0, Vec::new());
    log_probs.clear();
    for &(image, rows) in images {
        let rows_states = &mut states[first * size..][..rows * size];
        generator.step(image, &tokens[first..][..rows], rows_states, &mut rows_out);
        log_probs.extend_from_slice(&rows_out);
        first += rows;
    }
}
