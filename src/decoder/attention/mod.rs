//! Soft-attention decoder: Show, Attend and Tell (Xu et al. 2015, the soft variant), in the form of
//! its most used PyTorch implementation (the LSTM reads the gated context beside the word; the
//! initial state comes from the mean region). The decoder looks at the image's grid of regions anew
//! for every word:
//!
//!   regions a [R, C] ── mean ──> init_h, init_c ──> (h_0, c_0)        p_i = enc_att(a_i)  (once per image)
//!   at word t:  q = dec_att(h_{t-1}),  alpha = softmax_i(full_att . relu(p_i + q))
//!               z = sum_i alpha_i a_i,  beta = sigmoid(f_beta(h_{t-1})),  x_t = [emb(w_t), beta * z]
//!               (h_t, c_t) = LSTM(x_t, (h_{t-1}, c_{t-1})),  logits_t = out(dropout(h_t))
//!   loss = mean cross-entropy + alpha_c * mean over captions and regions of (1 - sum_t alpha_ti)^2
//!
//! The last term is the paper's doubly stochastic regularisation: over a caption, every region should
//! be looked at about once. The LSTM's input weights are stored as two tensors, the word part and the
//! context part, since they enter at different times: the word part is one product over all positions
//! before the recurrence, the context part one small product per step.
//!
//! Training runs each group of a batch (`Batch::groups`) through the whole recurrence on one thread:
//! a caption's steps never wait for another thread. Everything that does not feed the recurrence (the
//! word inputs, the output layer, every weight gradient) is one large product over all positions.

mod backward;
mod forward;
mod generator;
#[cfg(test)]
mod tests;

pub use backward::forward_backward;
pub use forward::{forward, loss, Workspace};
pub use generator::AttentionGenerator;

use crate::decoder::{step_each, Batch, Generator, Group};
use crate::engine::math::FastMath;
use crate::engine::params::{grow, split, split_mut, Parameters, Shape};
use crate::engine::rng::Rng;
use crate::engine::{
    matmul, matmul_packed, matmul_panels, transpose, PackedWeights, PanelWeights, Transpose,
};
use crate::nn::attention::{
    attention_backward, attention_forward, context_backward, context_forward, gate_backward,
    gate_forward,
};
use crate::nn::dropout::{dropout_backward, dropout_forward};
use crate::nn::embedding::{embedding_backward, embedding_forward};
use crate::nn::linear::{column_sums, linear_backward, linear_forward};
use crate::nn::lstm::{cell_backward, lstm_cell, CellRows};
use crate::nn::softmax_xent::{
    log_softmax, softmax_xent_forward_backward, BiasGrad, BIAS_BLOCK_ROWS,
};
use crate::with_avx2;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttentionConfig {
    pub vocab: usize,
    /// C: channels of a grid region.
    pub feature_dim: usize,
    /// R: regions of a grid.
    pub regions: usize,
    pub embed_dim: usize,
    pub hidden: usize,
    pub attention_dim: usize,
    /// Dropout on h before the output layer.
    pub dropout: f64,
    /// Weight of the doubly stochastic regularisation.
    pub alpha_c: f64,
}

/// Parameter names in storage order.
pub const PARAMETERS: [&str; 19] = [
    "init_h.weight",
    "init_h.bias",
    "init_c.weight",
    "init_c.bias",
    "enc_att.weight",
    "enc_att.bias",
    "dec_att.weight",
    "dec_att.bias",
    "full_att.weight",
    "f_beta.weight",
    "f_beta.bias",
    "emb.weight",
    "lstm.weight_ih_word",
    "lstm.weight_ih_context",
    "lstm.weight_hh",
    "lstm.bias_ih",
    "lstm.bias_hh",
    "out.weight",
    "out.bias",
];

impl AttentionConfig {
    /// (C, R, E, H, A): the sizes the passes read.
    fn dims(&self) -> (usize, usize, usize, usize, usize) {
        (
            self.feature_dim,
            self.regions,
            self.embed_dim,
            self.hidden,
            self.attention_dim,
        )
    }
}

impl Parameters<19> for AttentionConfig {
    const NAMES: [&'static str; 19] = PARAMETERS;

    fn shapes(&self) -> [Shape; 19] {
        let v = self.vocab;
        let (c, _, e, h, a) = self.dims();
        [
            (h, Some(c)),
            (h, None),
            (h, Some(c)),
            (h, None),
            (a, Some(c)),
            (a, None),
            (a, Some(h)),
            (a, None),
            (1, Some(a)),
            (c, Some(h)),
            (c, None),
            (v, Some(e)),
            (4 * h, Some(e)),
            (4 * h, Some(c)),
            (4 * h, Some(h)),
            (4 * h, None),
            (4 * h, None),
            (v, Some(h)),
            (v, None),
        ]
    }
}

impl AttentionConfig {
    /// PyTorch's default initialisation (uniform(-k, k), k = 1/sqrt(fan in), biases included; the
    /// LSTM's k = 1/sqrt(H)) except for the embedding and the output layer, uniform(-0.1, 0.1) with a
    /// zero bias, as the reference implementation does.
    pub fn init(&self, rng: &mut Rng) -> Vec<f32> {
        let layout = self.layout();
        let mut params = vec![0.0f32; layout.total];
        let mut uniform = |values: &mut [f32], k: f64| {
            values
                .iter_mut()
                .for_each(|v| *v = ((rng.uniform() * 2.0 - 1.0) * k) as f32)
        };
        let shapes = self.shapes();
        for (i, slot) in layout.slots.iter().enumerate() {
            let values = &mut params[slot.offset..slot.offset + slot.len];
            // A bias takes its layer's fan in from the weight stored just before it.
            let fan_in = shapes[if slot.shape.len() == 1 { i - 1 } else { i }]
                .1
                .unwrap_or(1);
            match slot.name.as_str() {
                "emb.weight" | "out.weight" => uniform(values, 0.1),
                "out.bias" => {}
                name if name.starts_with("lstm.") => {
                    uniform(values, 1.0 / (self.hidden as f64).sqrt())
                }
                _ => uniform(values, 1.0 / (fan_in as f64).sqrt()),
            }
        }
        params
    }
}

/// The parameter tensors of a flat buffer, by role.
pub struct Parts<S> {
    pub init_h_w: S,
    pub init_h_b: S,
    pub init_c_w: S,
    pub init_c_b: S,
    pub enc_w: S,
    pub enc_b: S,
    pub dec_w: S,
    pub dec_b: S,
    pub full_w: S,
    pub beta_w: S,
    pub beta_b: S,
    pub emb: S,
    pub w_word: S,
    pub w_ctx: S,
    pub w_hh: S,
    /// The LSTM's two biases, PyTorch's `bias_ih` and `bias_hh`: they enter as their sum, but Adam
    /// moves each on its own, so the pair trains as PyTorch's LSTMCell does.
    pub lstm_b_ih: S,
    pub lstm_b_hh: S,
    pub out_w: S,
    pub out_b: S,
}

impl<S> Parts<S> {
    fn from_iter(mut it: impl Iterator<Item = S>) -> Self {
        let mut next = || it.next().expect("the layout has nineteen tensors");
        Parts {
            init_h_w: next(),
            init_h_b: next(),
            init_c_w: next(),
            init_c_b: next(),
            enc_w: next(),
            enc_b: next(),
            dec_w: next(),
            dec_b: next(),
            full_w: next(),
            beta_w: next(),
            beta_b: next(),
            emb: next(),
            w_word: next(),
            w_ctx: next(),
            w_hh: next(),
            lstm_b_ih: next(),
            lstm_b_hh: next(),
            out_w: next(),
            out_b: next(),
        }
    }
}

pub fn parts<'a, T>(buffer: &'a [T], config: &AttentionConfig) -> Parts<&'a [T]> {
    Parts::from_iter(split(buffer, config.sizes()))
}

pub fn parts_mut<'a, T>(buffer: &'a mut [T], config: &AttentionConfig) -> Parts<&'a mut [T]> {
    Parts::from_iter(split_mut(buffer, config.sizes()))
}
