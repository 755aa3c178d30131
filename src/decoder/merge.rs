//! The seed's "merge" decoder (Tanti et al. 2017; the Keras tutorial model): the image joins the
//! language model after the LSTM, by addition.
//!
//!   image feature -> Dropout(0.5) -> Dense(H, relu) ------------------------.
//!   caption prefix -> Embedding(V, E) -> Dropout(0.5) -> LSTM(H) -> h_t -> add -> Dense(H, relu) -> Dense(V) -> softmax
//!
//! Trained with full-sequence teacher forcing: every next-word position of every caption is one loss
//! term, and only real (non-padding) positions are ever computed (see `nn::lstm::Packing`).
//! Parameters use PyTorch names and layouts (weights [out, in], LSTM gates i, f, g, o).

use crate::engine::math::FastMath;
use crate::engine::params::{grow, split, split_mut, Parameters, Shape};
use crate::engine::rng::Rng;
use crate::engine::Real;
use crate::engine::{matmul, Transpose};
use crate::engine::{matmul_panels, PanelWeights};
use crate::nn::activation::{relu_backward, relu_forward};
use crate::nn::dropout::{dropout_backward, dropout_forward};
use crate::nn::embedding::{embedding_backward, embedding_forward};
use crate::nn::linear::{linear_backward, linear_forward};
use crate::nn::lstm::{
    lstm_backward, lstm_cell, lstm_forward, LstmGrads, LstmParams, LstmScratch, LstmState,
};
use crate::nn::softmax_xent::{
    log_softmax, softmax_xent_forward_backward, BiasGrad, BIAS_BLOCK_ROWS,
};
use serde::{Deserialize, Serialize};

pub use super::Batch;
use super::Generator;

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct MergeConfig {
    pub vocab: usize,
    pub feature_dim: usize,
    pub embed_dim: usize,
    pub hidden: usize,
    pub dropout: f64,
}

/// Parameter names in storage order.
pub const PARAMETERS: [&str; 10] = [
    "fe.weight",
    "fe.bias",
    "emb.weight",
    "lstm.weight_ih",
    "lstm.weight_hh",
    "lstm.bias",
    "dec.weight",
    "dec.bias",
    "out.weight",
    "out.bias",
];

impl Parameters<10> for MergeConfig {
    const NAMES: [&'static str; 10] = PARAMETERS;

    fn shapes(&self) -> [Shape; 10] {
        let (v, f, e, h) = (self.vocab, self.feature_dim, self.embed_dim, self.hidden);
        [
            (h, Some(f)),
            (h, None),
            (v, Some(e)),
            (4 * h, Some(e)),
            (4 * h, Some(h)),
            (4 * h, None),
            (h, Some(h)),
            (h, None),
            (v, Some(h)),
            (v, None),
        ]
    }
}

impl MergeConfig {
    /// Keras's initialisation (the seed's): glorot-uniform kernels, orthogonal recurrent kernel,
    /// uniform(-0.05, 0.05) embedding, zero biases except the LSTM forget gate's, which is 1.
    pub fn init(&self, rng: &mut Rng) -> Vec<f32> {
        let layout = self.layout();
        let mut params = vec![0.0f32; layout.total];
        for slot in &layout.slots {
            let values = &mut params[slot.offset..slot.offset + slot.len];
            match slot.name.as_str() {
                "emb.weight" => values
                    .iter_mut()
                    .for_each(|v| *v = (rng.uniform() * 0.1 - 0.05) as f32),
                "lstm.weight_hh" => {
                    values.copy_from_slice(&orthogonal(slot.shape[0], slot.shape[1], rng))
                }
                "lstm.bias" => values[self.hidden..2 * self.hidden].fill(1.0),
                name if name.ends_with("weight") => {
                    let (fan_out, fan_in) = (slot.shape[0], slot.shape[1]);
                    let limit = (6.0 / (fan_in + fan_out) as f64).sqrt();
                    values
                        .iter_mut()
                        .for_each(|v| *v = ((rng.uniform() * 2.0 - 1.0) * limit) as f32);
                }
                _ => {}
            }
        }
        params
    }
}

/// A rows x cols matrix (rows >= cols) with orthonormal columns: Gram-Schmidt on Gaussian columns.
fn orthogonal(rows: usize, cols: usize, rng: &mut Rng) -> Vec<f32> {
    let mut columns: Vec<Vec<f64>> = (0..cols)
        .map(|_| (0..rows).map(|_| rng.normal()).collect())
        .collect();
    for j in 0..cols {
        for k in 0..j {
            let dot: f64 = columns[j].iter().zip(&columns[k]).map(|(a, b)| a * b).sum();
            let (done, current) = columns.split_at_mut(j);
            current[0]
                .iter_mut()
                .zip(&done[k])
                .for_each(|(a, b)| *a -= dot * b);
        }
        let norm = columns[j].iter().map(|a| a * a).sum::<f64>().sqrt();
        columns[j].iter_mut().for_each(|a| *a /= norm);
    }
    let mut out = vec![0.0; rows * cols];
    for (j, column) in columns.iter().enumerate() {
        for (i, v) in column.iter().enumerate() {
            out[i * cols + j] = *v as f32;
        }
    }
    out
}

/// The ten parameter tensors of a flat buffer, by role.
pub struct Parts<S> {
    pub fe_w: S,
    pub fe_b: S,
    pub emb: S,
    pub w_ih: S,
    pub w_hh: S,
    pub lstm_b: S,
    pub dec_w: S,
    pub dec_b: S,
    pub out_w: S,
    pub out_b: S,
}

impl<S> Parts<S> {
    fn from_iter(mut it: impl Iterator<Item = S>) -> Self {
        let mut next = || it.next().expect("the layout has ten tensors");
        Parts {
            fe_w: next(),
            fe_b: next(),
            emb: next(),
            w_ih: next(),
            w_hh: next(),
            lstm_b: next(),
            dec_w: next(),
            dec_b: next(),
            out_w: next(),
            out_b: next(),
        }
    }
}

pub fn parts<'a, T>(buffer: &'a [T], config: &MergeConfig) -> Parts<&'a [T]> {
    Parts::from_iter(split(buffer, config.sizes()))
}

pub fn parts_mut<'a, T>(buffer: &'a mut [T], config: &MergeConfig) -> Parts<&'a mut [T]> {
    Parts::from_iter(split_mut(buffer, config.sizes()))
}

/// Activations and scratch of one training step, grown to the largest batch seen and then reused,
/// so steady-state steps allocate nothing.
#[derive(Default)]
pub struct Workspace<T> {
    x: Vec<T>,
    x_mask: Vec<T>,
    feat: Vec<T>,
    feat_mask: Vec<T>,
    fe: Vec<T>,
    gates: Vec<T>,
    w_hh_t: Vec<T>,
    c: Vec<T>,
    h: Vec<T>,
    m: Vec<T>,
    d: Vec<T>,
    /// Logits, then (after the loss) their gradient.
    pub logits: Vec<T>,
    bias_partials: Vec<T>,
    dd: Vec<T>,
    dm: Vec<T>,
    dfe: Vec<T>,
    dx: Vec<T>,
    dgates: Vec<T>,
    h_prev: Vec<T>,
    dh_rec: Vec<T>,
    dc_rec: Vec<T>,
}

impl<T: Real> Workspace<T> {
    fn reserve(&mut self, config: &MergeConfig, captions: usize, positions: usize) {
        let (v, f, e, h) = (
            config.vocab,
            config.feature_dim,
            config.embed_dim,
            config.hidden,
        );
        let (b, p) = (captions, positions);
        for (buffer, len) in [
            (&mut self.x, p * e),
            (&mut self.x_mask, p * e),
            (&mut self.feat, b * f),
            (&mut self.feat_mask, b * f),
            (&mut self.fe, b * h),
            (&mut self.gates, p * 4 * h),
            (&mut self.w_hh_t, 4 * h * h),
            (&mut self.c, p * h),
            (&mut self.h, p * h),
            (&mut self.m, p * h),
            (&mut self.d, p * h),
            (&mut self.logits, p * v),
            (&mut self.bias_partials, p.div_ceil(BIAS_BLOCK_ROWS) * v),
            (&mut self.dd, p * h),
            (&mut self.dm, p * h),
            (&mut self.dfe, b * h),
            (&mut self.dx, p * e),
            (&mut self.dgates, p * 4 * h),
            (&mut self.h_prev, p * h),
            (&mut self.dh_rec, b * h),
            (&mut self.dc_rec, b * h),
        ] {
            grow(buffer, len);
        }
    }

    /// The LSTM output of every position (packed order), after the last forward pass.
    pub fn lstm_h(&self) -> &[T] {
        &self.h
    }
}

/// Forward pass up to the logits (in `ws.logits`). With `dropout` = Some(rng), training mode.
pub fn forward<T: FastMath>(
    params: &[T],
    config: &MergeConfig,
    batch: &Batch<T>,
    ws: &mut Workspace<T>,
    dropout: Option<&mut Rng>,
    threads: usize,
) {
    let w = parts(params, config);
    let (v, f, e, h) = (
        config.vocab,
        config.feature_dim,
        config.embed_dim,
        config.hidden,
    );
    let (b, p) = (batch.captions(), batch.positions());
    ws.reserve(config, b, p);

    embedding_forward(&mut ws.x[..p * e], w.emb, &batch.inputs, e);
    ws.feat[..b * f].copy_from_slice(&batch.features);
    if let Some(rng) = dropout {
        dropout_forward(
            &mut ws.x[..p * e],
            &mut ws.x_mask[..p * e],
            config.dropout,
            rng,
        );
        dropout_forward(
            &mut ws.feat[..b * f],
            &mut ws.feat_mask[..b * f],
            config.dropout,
            rng,
        );
    }
    let state = LstmState {
        gates: &mut ws.gates,
        c: &mut ws.c,
        h: &mut ws.h,
        w_hh_t: &mut ws.w_hh_t,
    };
    let lstm = LstmParams {
        w_ih: w.w_ih,
        w_hh: w.w_hh,
        bias: w.lstm_b,
    };
    lstm_forward(state, &ws.x, &lstm, batch.packing(), e, h, threads);

    linear_forward(&mut ws.fe, &ws.feat, w.fe_w, w.fe_b, b, f, h, threads);
    relu_forward(&mut ws.fe[..b * h]);
    for (pos, &cap) in batch.caption.iter().enumerate() {
        let (m, hv, fe) = (
            &mut ws.m[pos * h..][..h],
            &ws.h[pos * h..][..h],
            &ws.fe[cap * h..][..h],
        );
        m.iter_mut()
            .zip(hv)
            .zip(fe)
            .for_each(|((m, a), b)| *m = *a + *b);
    }
    linear_forward(&mut ws.d, &ws.m, w.dec_w, w.dec_b, p, h, h, threads);
    relu_forward(&mut ws.d[..p * h]);
    linear_forward(&mut ws.logits, &ws.d, w.out_w, w.out_b, p, h, v, threads);
}

/// Mean cross-entropy of the batch without gradients (evaluation: dropout off).
pub fn loss<T: FastMath>(
    params: &[T],
    config: &MergeConfig,
    batch: &Batch<T>,
    ws: &mut Workspace<T>,
    threads: usize,
) -> f64 {
    forward(params, config, batch, ws, None, threads);
    super::mean_loss(&mut ws.logits, batch, config.vocab)
}

/// One training step's forward and backward: returns the mean loss and adds the gradients to `grads`.
/// The image branch backward, from the gradient `ws.dm` of the merge's sum: each caption's
/// positions summed into its image's gradient, the ReLU, the image layer's weights.
fn image_backward<T: FastMath>(
    ws: &mut Workspace<T>,
    (fe_w_grad, fe_b_grad): (&mut [T], &mut [T]),
    fe_w: &[T],
    batch: &Batch<T>,
    (f, h): (usize, usize),
    threads: usize,
) {
    let b = batch.captions();
    ws.dfe[..b * h].fill(T::zero());
    for (pos, &cap) in batch.caption.iter().enumerate() {
        let (dst, src) = (&mut ws.dfe[cap * h..][..h], &ws.dm[pos * h..][..h]);
        dst.iter_mut().zip(src).for_each(|(d, s)| *d += *s);
    }
    relu_backward(&mut ws.dfe[..b * h], &ws.fe[..b * h]);
    linear_backward(
        None,
        fe_w_grad,
        Some(fe_b_grad),
        &ws.dfe,
        &ws.feat,
        fe_w,
        b,
        f,
        h,
        threads,
    );
}

pub fn forward_backward<T: FastMath>(
    params: &[T],
    grads: &mut [T],
    config: &MergeConfig,
    batch: &Batch<T>,
    ws: &mut Workspace<T>,
    dropout: Option<&mut Rng>,
    threads: usize,
) -> f64 {
    let training = dropout.is_some();
    forward(params, config, batch, ws, dropout, threads);
    let w = parts(params, config);
    let g = parts_mut(grads, config);
    let (v, f, e, h) = (
        config.vocab,
        config.feature_dim,
        config.embed_dim,
        config.hidden,
    );
    let p = batch.positions();

    let bias = BiasGrad {
        grad: g.out_b,
        partials: &mut ws.bias_partials,
    };
    let loss = softmax_xent_forward_backward(
        &mut ws.logits,
        &batch.targets,
        &batch.weights,
        &batch.excluded,
        v,
        Some(bias),
    );
    linear_backward(
        Some(&mut ws.dd),
        g.out_w,
        None,
        &ws.logits,
        &ws.d,
        w.out_w,
        p,
        h,
        v,
        threads,
    );
    relu_backward(&mut ws.dd[..p * h], &ws.d[..p * h]);
    linear_backward(
        Some(&mut ws.dm),
        g.dec_w,
        Some(g.dec_b),
        &ws.dd,
        &ws.m,
        w.dec_w,
        p,
        h,
        h,
        threads,
    );

    image_backward(ws, (g.fe_w, g.fe_b), w.fe_w, batch, (f, h), threads);

    let state = LstmState {
        gates: &mut ws.gates,
        c: &mut ws.c,
        h: &mut ws.h,
        w_hh_t: &mut ws.w_hh_t,
    };
    lstm_backward(
        &mut ws.dx,
        LstmGrads {
            w_ih: g.w_ih,
            w_hh: g.w_hh,
            bias: g.lstm_b,
        },
        LstmScratch {
            dgates: &mut ws.dgates,
            h_prev: &mut ws.h_prev,
            dh_rec: &mut ws.dh_rec,
            dc_rec: &mut ws.dc_rec,
        },
        &ws.dm,
        &ws.x,
        &state,
        &LstmParams {
            w_ih: w.w_ih,
            w_hh: w.w_hh,
            bias: w.lstm_b,
        },
        batch.packing(),
        e,
        h,
        threads,
    );
    if training {
        dropout_backward(&mut ws.dx[..p * e], &ws.x_mask[..p * e]);
    }
    embedding_backward(g.emb, &ws.dx[..p * e], &batch.inputs, e);
    loss
}

/// The merge decoder ready to generate: its parameters, with the weights of a step also packed for
/// `matmul_panels` (the LSTM's input and recurrent matrices side by side, so that [x, h]
/// enters in one product). A hypothesis's state is [h, c]; an image's context is relu(W_fe x + b_fe).
pub struct MergeGenerator {
    config: MergeConfig,
    params: Vec<f32>,
    /// [4H, E + H]
    gates: PanelWeights,
    /// [H, H]
    dec: PanelWeights,
    /// [V, H]
    out: PanelWeights,
}

impl MergeGenerator {
    pub fn new(config: &MergeConfig, params: &[f32]) -> Self {
        let w = parts(params, config);
        let (e, h, v) = (config.embed_dim, config.hidden, config.vocab);
        let gate = |o: usize, i: usize| {
            if i < e {
                w.w_ih[o * e + i]
            } else {
                w.w_hh[o * h + i - e]
            }
        };
        MergeGenerator {
            config: *config,
            params: params.to_vec(),
            gates: PanelWeights::new(4 * h, e + h, gate),
            dec: PanelWeights::new(h, h, |o, i| w.dec_w[o * h + i]),
            out: PanelWeights::new(v, h, |o, i| w.out_w[o * h + i]),
        }
    }
}

impl Generator for MergeGenerator {
    fn state_size(&self) -> usize {
        2 * self.config.hidden
    }

    fn image(&self, feature: &[f32]) -> Vec<f32> {
        let (w, config) = (parts(&self.params, &self.config), &self.config);
        let mut fe = vec![0.0f32; config.hidden];
        linear_forward(
            &mut fe,
            feature,
            w.fe_w,
            w.fe_b,
            1,
            config.feature_dim,
            config.hidden,
            1,
        );
        relu_forward(&mut fe);
        fe
    }

    fn initial_state(&self, _image: &[f32]) -> Vec<f32> {
        vec![0.0; self.state_size()]
    }

    fn step(&self, fe: &[f32], tokens: &[u32], states: &mut [f32], log_probs: &mut Vec<f32>) {
        let (w, config) = (parts(&self.params, &self.config), &self.config);
        let (rows, e, hd, v) = (tokens.len(), config.embed_dim, config.hidden, config.vocab);
        let mut xh = vec![0.0f32; rows * (e + hd)];
        let mut c = vec![0.0f32; rows * hd];
        for (((row, &t), state), c) in xh
            .chunks_exact_mut(e + hd)
            .zip(tokens)
            .zip(states.chunks_exact(2 * hd))
            .zip(c.chunks_exact_mut(hd))
        {
            row[..e].copy_from_slice(&w.emb[t as usize * e..][..e]);
            row[e..].copy_from_slice(&state[..hd]);
            c.copy_from_slice(&state[hd..]);
        }
        // One row (greedy) goes through gemm's matrix-vector product on the weights as stored, which
        // streams f32 weights fastest (0.65-0.75 ms per caption at hidden 256; `matmul_panels`
        // with its two sums per panel waits on each multiply-add: 0.86 ms), unless the packed weights
        // have an f16 copy: then reading half the bytes wins. A few rows (beams) always go through
        // `matmul_panels`, which reads the packed weights once for all rows.
        let project =
            |y: &mut [f32], x: &[f32], w: &[f32], packed: &PanelWeights, b: &[f32], din, dout| {
                if rows == 1 && !packed.reads_f16() {
                    linear_forward(y, x, w, b, 1, din, dout, 1);
                } else {
                    matmul_panels(y, x, packed, b, rows);
                }
            };
        let mut gates = vec![0.0f32; rows * 4 * hd];
        if rows == 1 && !self.gates.reads_f16() {
            linear_forward(&mut gates, &xh[..e], w.w_ih, w.lstm_b, 1, e, 4 * hd, 1);
            matmul(
                1,
                4 * hd,
                hd,
                1.0,
                &xh[e..],
                Transpose::No,
                w.w_hh,
                Transpose::Yes,
                1.0,
                &mut gates,
                1,
            );
        } else {
            matmul_panels(&mut gates, &xh, &self.gates, w.lstm_b, rows);
        }
        let c_prev = c.clone();
        let mut h = vec![0.0f32; rows * hd];
        lstm_cell(&mut gates, Some(&c_prev), &mut c, &mut h, rows, hd);
        for ((state, h), c) in states
            .chunks_exact_mut(2 * hd)
            .zip(h.chunks_exact(hd))
            .zip(c.chunks_exact(hd))
        {
            state[..hd].copy_from_slice(h);
            state[hd..].copy_from_slice(c);
        }
        for row in h.chunks_exact_mut(hd) {
            row.iter_mut().zip(fe).for_each(|(a, b)| *a += b);
        }
        let mut d = vec![0.0f32; rows * hd];
        project(&mut d, &h, w.dec_w, &self.dec, w.dec_b, hd, hd);
        relu_forward(&mut d);
        log_probs.resize(rows * v, 0.0);
        project(log_probs, &d, w.out_w, &self.out, w.out_b, hd, v);
        for row in log_probs.chunks_exact_mut(v) {
            log_softmax(row);
        }
    }
}
