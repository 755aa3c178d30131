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

use crate::decoder::{Batch, Generator, Group};
use crate::engine::math::FastMath;
use crate::engine::params::{grow, sizes, split, split_mut, Layout, Shape};
use crate::engine::rng::Rng;
use crate::engine::{matmul, matmul_packed, transpose, PackedWeights, Transpose};
use crate::nn::attention::{
    attention_backward, attention_forward, context_backward, context_forward, gate_backward,
    gate_forward,
};
use crate::nn::dropout::{dropout_backward, dropout_forward};
use crate::nn::embedding::{embedding_backward, embedding_forward};
use crate::nn::linear::{
    column_sums, linear_backward, linear_forward, linear_forward_few_rows, PanelWeights,
};
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

    /// Parameter shapes in storage order: (rows, columns), no columns for a vector.
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

    pub fn sizes(&self) -> [usize; 19] {
        sizes(self.shapes())
    }

    pub fn layout(&self) -> Layout {
        Layout::from_shapes(&PARAMETERS, &self.shapes())
    }

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

/// Activations and scratch of one training step, grown to the largest batch seen and then reused.
/// Per caption: `mean`, `h0`, `c0` and the regions' projection `p`; per position: everything else.
#[derive(Default)]
pub struct Workspace<T> {
    mean: Vec<T>,
    h0: Vec<T>,
    c0: Vec<T>,
    p: Vec<T>,
    x_word: Vec<T>,
    gates: Vec<T>,
    h_prev: Vec<T>,
    q: Vec<T>,
    s: Vec<T>,
    /// The attention weights of every position, [P, R].
    pub alpha: Vec<T>,
    z: Vec<T>,
    beta: Vec<T>,
    xz: Vec<T>,
    c: Vec<T>,
    h: Vec<T>,
    h_drop: Vec<T>,
    mask: Vec<T>,
    /// Logits, then (after the loss) their gradient.
    pub logits: Vec<T>,
    bias_partials: Vec<T>,
    dh_out: Vec<T>,
    dgates: Vec<T>,
    dq: Vec<T>,
    dg: Vec<T>,
    dx_word: Vec<T>,
    dp: Vec<T>,
    dh0: Vec<T>,
    dc0: Vec<T>,
    dh_rec: Vec<T>,
    dc_rec: Vec<T>,
    dw_full: Vec<T>,
    dec_t: Vec<T>,
    beta_t: Vec<T>,
    ctx_t: Vec<T>,
    hh_t: Vec<T>,
    /// Where `matmul_packed` runs (f32 on AVX-512), the per-step products' weights packed once per
    /// step; the four transposes above are then left empty.
    packed: Option<PackedStepWeights>,
    lstm_b: Vec<T>,
}

/// The recurrence's weights as its per-step products read them, packed once per training step (each
/// thread's `matmul` packed them again at every position: a quarter of a training step).
#[derive(Default)]
struct PackedStepWeights {
    /// Forward: dec_att^T [H, A], f_beta^T [H, C], the LSTM's context and recurrent parts
    /// transposed, [C, 4H] and [H, 4H].
    query: PackedWeights,
    gate: PackedWeights,
    context: PackedWeights,
    recurrent: PackedWeights,
    /// Backward: the same matrices as stored, [A, H], [C, H], [4H, C], [4H, H].
    query_back: PackedWeights,
    gate_back: PackedWeights,
    context_back: PackedWeights,
    recurrent_back: PackedWeights,
}

impl<T: FastMath> Workspace<T> {
    fn reserve(&mut self, config: &AttentionConfig, b: usize, p: usize, groups: usize) {
        let v = config.vocab;
        let (c, r, e, h, a) = config.dims();
        for (buffer, len) in [
            (&mut self.mean, b * c),
            (&mut self.h0, b * h),
            (&mut self.c0, b * h),
            (&mut self.p, b * r * a),
            (&mut self.x_word, p * e),
            (&mut self.gates, p * 4 * h),
            (&mut self.h_prev, p * h),
            (&mut self.q, p * a),
            (&mut self.s, p * r * a),
            (&mut self.alpha, p * r),
            (&mut self.z, p * c),
            (&mut self.beta, p * c),
            (&mut self.xz, p * c),
            (&mut self.c, p * h),
            (&mut self.h, p * h),
            (&mut self.h_drop, p * h),
            (&mut self.mask, p * h),
            (&mut self.logits, p * v),
            (&mut self.bias_partials, p.div_ceil(BIAS_BLOCK_ROWS) * v),
            (&mut self.dh_out, p * h),
            (&mut self.dgates, p * 4 * h),
            (&mut self.dq, p * a),
            (&mut self.dg, p * c),
            (&mut self.dx_word, p * e),
            (&mut self.dp, b * r * a),
            (&mut self.dh0, b * h),
            (&mut self.dc0, b * h),
            (&mut self.dh_rec, b * h),
            (&mut self.dc_rec, b * h),
            (&mut self.dw_full, groups * a),
            (&mut self.lstm_b, 4 * h),
        ] {
            grow(buffer, len);
        }
    }
}

/// y [rows, n] = x [rows, k] W [k, n] (+ y when `accumulate`), on the calling thread: the small
/// per-step products of one group, from W packed when there is a packed copy (the same bits).
#[allow(clippy::too_many_arguments)]
fn product<T: FastMath>(
    y: &mut [T],
    x: &[T],
    w: &[T],
    packed: Option<&PackedWeights>,
    rows: usize,
    k: usize,
    n: usize,
    accumulate: bool,
) {
    if let (Some(packed), Some(x)) = (packed, T::f32s(x)) {
        if let Some(y) = T::f32s_mut(y) {
            return matmul_packed(y, x, packed, rows, accumulate);
        }
    }
    let beta = if accumulate { T::one() } else { T::zero() };
    matmul(
        rows,
        n,
        k,
        T::one(),
        x,
        Transpose::No,
        w,
        Transpose::No,
        beta,
        y,
        1,
    );
}

/// Cuts a buffer of `width`-wide rows into the groups' parts (rows given by `range` of each group).
fn cut<'a, T>(
    buffer: &'a mut [T],
    width: usize,
    groups: &[Group],
    range: impl Fn(&Group) -> std::ops::Range<usize>,
) -> Vec<&'a mut [T]> {
    let mut rest = buffer;
    let mut start = 0;
    groups
        .iter()
        .map(|group| {
            let rows = range(group);
            debug_assert_eq!(rows.start, start, "groups are contiguous");
            start = rows.end;
            let (mine, tail) = std::mem::take(&mut rest).split_at_mut(rows.len() * width);
            rest = tail;
            mine
        })
        .collect()
}

/// One group's per-position forward buffers (the group's rows only).
struct GroupForward<'a, T> {
    group: &'a Group,
    h_prev: &'a mut [T],
    q: &'a mut [T],
    s: &'a mut [T],
    alpha: &'a mut [T],
    z: &'a mut [T],
    beta: &'a mut [T],
    xz: &'a mut [T],
    gates: &'a mut [T],
    c: &'a mut [T],
    h: &'a mut [T],
}

/// Forward pass up to the logits (in `ws.logits`). With `dropout` = Some(rng), training mode.
pub fn forward<T: FastMath>(
    params: &[T],
    config: &AttentionConfig,
    batch: &Batch<T>,
    ws: &mut Workspace<T>,
    dropout: Option<&mut Rng>,
    threads: usize,
) {
    let w = parts(params, config);
    let (v, h) = (config.vocab, config.hidden);
    let p = batch.positions();
    ws.reserve(config, batch.captions(), p, batch.groups.len());
    before_recurrence(&w, config, batch, ws, threads);
    recurrence_forward(&w, config, batch, ws);
    ws.h_drop[..p * h].copy_from_slice(&ws.h[..p * h]);
    if let Some(rng) = dropout {
        let (h_drop, mask) = (&mut ws.h_drop[..p * h], &mut ws.mask[..p * h]);
        dropout_forward(h_drop, mask, config.dropout, rng);
    }
    linear_forward(
        &mut ws.logits,
        &ws.h_drop,
        w.out_w,
        w.out_b,
        p,
        h,
        v,
        threads,
    );
}

/// Everything that does not wait on the recurrence: per caption the mean region, the initial state
/// and the regions' projection; per position the word part of the gates (with the biases); and the
/// per-step products' weights, transposed once so that those products read them in order.
fn before_recurrence<T: FastMath>(
    w: &Parts<&[T]>,
    config: &AttentionConfig,
    batch: &Batch<T>,
    ws: &mut Workspace<T>,
    threads: usize,
) {
    let (c, r, e, h, a) = config.dims();
    let (b, p) = (batch.captions(), batch.positions());
    let grid = &batch.features[..b * r * c];
    let n = T::from_usize(r).unwrap_or(T::one());
    for (mean, regions) in ws.mean[..b * c]
        .chunks_exact_mut(c)
        .zip(grid.chunks_exact(r * c))
    {
        mean.fill(T::zero());
        for region in regions.chunks_exact(c) {
            mean.iter_mut().zip(region).for_each(|(m, &x)| *m += x);
        }
        mean.iter_mut().for_each(|m| *m = *m / n);
    }
    linear_forward(
        &mut ws.h0, &ws.mean, w.init_h_w, w.init_h_b, b, c, h, threads,
    );
    linear_forward(
        &mut ws.c0, &ws.mean, w.init_c_w, w.init_c_b, b, c, h, threads,
    );
    linear_forward(&mut ws.p, grid, w.enc_w, w.enc_b, b * r, c, a, threads);
    embedding_forward(&mut ws.x_word[..p * e], w.emb, &batch.inputs, e);
    for ((sum, &b_ih), &b_hh) in ws.lstm_b.iter_mut().zip(w.lstm_b_ih).zip(w.lstm_b_hh) {
        *sum = b_ih + b_hh;
    }
    linear_forward(
        &mut ws.gates,
        &ws.x_word,
        w.w_word,
        &ws.lstm_b,
        p,
        e,
        4 * h,
        threads,
    );
    // Every per-step product's [k, n], forward and backward.
    let shapes = [
        (h, a),
        (h, c),
        (c, 4 * h),
        (h, 4 * h),
        (a, h),
        (c, h),
        (4 * h, c),
    ];
    let packable = shapes
        .iter()
        .all(|&(k, n)| PackedWeights::available_for(k, n));
    match recurrent_f32s(w) {
        Some([dec_w, beta_w, w_ctx, w_hh]) if packable => {
            let packed = ws.packed.get_or_insert_default();
            packed.query.pack(dec_w, h, a, Transpose::Yes);
            packed.gate.pack(beta_w, h, c, Transpose::Yes);
            packed.context.pack(w_ctx, c, 4 * h, Transpose::Yes);
            packed.recurrent.pack(w_hh, h, 4 * h, Transpose::Yes);
        }
        _ => {
            ws.packed = None;
            for (buffer, len) in [
                (&mut ws.dec_t, h * a),
                (&mut ws.beta_t, h * c),
                (&mut ws.ctx_t, c * 4 * h),
                (&mut ws.hh_t, h * 4 * h),
            ] {
                grow(buffer, len);
            }
            transpose(&mut ws.dec_t, w.dec_w, a, h);
            transpose(&mut ws.beta_t, w.beta_w, c, h);
            transpose(&mut ws.ctx_t, w.w_ctx, 4 * h, c);
            transpose(&mut ws.hh_t, w.w_hh, 4 * h, h);
        }
    }
}

/// The weights the per-step products read (dec_att, f_beta, the LSTM's context and recurrent
/// parts) as f32, which `matmul_packed` takes; None in f64.
fn recurrent_f32s<'a, T: FastMath>(w: &Parts<&'a [T]>) -> Option<[&'a [f32]; 4]> {
    Some([
        T::f32s(w.dec_w)?,
        T::f32s(w.beta_w)?,
        T::f32s(w.w_ctx)?,
        T::f32s(w.w_hh)?,
    ])
}

/// The recurrence, each group on its own thread.
fn recurrence_forward<T: FastMath>(
    w: &Parts<&[T]>,
    config: &AttentionConfig,
    batch: &Batch<T>,
    ws: &mut Workspace<T>,
) {
    let (c, r, _, h, a) = config.dims();
    let Workspace {
        h0,
        c0,
        p,
        dec_t,
        beta_t,
        ctx_t,
        hh_t,
        packed,
        h_prev,
        q,
        s,
        alpha,
        z,
        beta,
        xz,
        gates,
        c: cell,
        h: hidden,
        ..
    } = ws;
    let groups = &batch.groups;
    let rows = |g: &Group| g.positions.clone();
    let parts: Vec<GroupForward<T>> = cut(h_prev, h, groups, rows)
        .into_iter()
        .zip(cut(q, a, groups, rows))
        .zip(cut(s, r * a, groups, rows))
        .zip(cut(alpha, r, groups, rows))
        .zip(cut(z, c, groups, rows))
        .zip(cut(beta, c, groups, rows))
        .zip(cut(xz, c, groups, rows))
        .zip(cut(gates, 4 * h, groups, rows))
        .zip(cut(cell, h, groups, rows))
        .zip(cut(hidden, h, groups, rows))
        .zip(groups)
        .map(
            |((((((((((h_prev, q), s), alpha), z), beta), xz), gates), c), h), group)| {
                GroupForward {
                    group,
                    h_prev,
                    q,
                    s,
                    alpha,
                    z,
                    beta,
                    xz,
                    gates,
                    c,
                    h,
                }
            },
        )
        .collect();
    let shared = Shared {
        config,
        w,
        grid: &batch.features,
        h0,
        c0,
        p,
        dec_t,
        beta_t,
        ctx_t,
        hh_t,
        packed: packed.as_ref(),
    };
    parts
        .into_par_iter()
        .for_each(|part| group_forward(part, &shared));
}

/// What every group reads in the forward pass.
struct Shared<'a, T> {
    config: &'a AttentionConfig,
    w: &'a Parts<&'a [T]>,
    grid: &'a [T],
    h0: &'a [T],
    c0: &'a [T],
    p: &'a [T],
    dec_t: &'a [T],
    beta_t: &'a [T],
    ctx_t: &'a [T],
    hh_t: &'a [T],
    packed: Option<&'a PackedStepWeights>,
}

/// One group's recurrence, step by step (positions are the group's own, time-major).
fn group_forward<T: FastMath>(part: GroupForward<T>, shared: &Shared<T>) {
    let config = shared.config;
    let (c, r, _, h, a) = config.dims();
    let packing = &part.group.packing;
    let first_caption = part.group.captions.start;
    for (t, (&off, &rows)) in packing.offset.iter().zip(&packing.active).enumerate() {
        let caption = |row: usize| first_caption + row;
        // h_{t-1} and c_{t-1} of each row: the initial state at t = 0.
        let (h_done, h_now) = part.h.split_at_mut(off * h);
        let (c_done, c_now) = part.c.split_at_mut(off * h);
        let (c_prev, h_prev_src): (&[T], &[T]) = match t.checked_sub(1) {
            None => (
                &shared.c0[first_caption * h..][..rows * h],
                &shared.h0[first_caption * h..][..rows * h],
            ),
            Some(prev) => {
                let prev = packing.offset[prev];
                (
                    &c_done[prev * h..][..rows * h],
                    &h_done[prev * h..][..rows * h],
                )
            }
        };
        let h_prev = &mut part.h_prev[off * h..][..rows * h];
        h_prev.copy_from_slice(h_prev_src);
        let h_prev = &*h_prev;

        let q = &mut part.q[off * a..][..rows * a];
        let packed = shared.packed;
        product(
            q,
            h_prev,
            shared.dec_t,
            packed.map(|p| &p.query),
            rows,
            h,
            a,
            false,
        );
        let beta = &mut part.beta[off * c..][..rows * c];
        let gate = packed.map(|p| &p.gate);
        product(beta, h_prev, shared.beta_t, gate, rows, h, c, false);
        with_avx2!(for row in 0..rows {
            let pos = off + row;
            let k = caption(row);
            let q = &mut part.q[pos * a..][..a];
            q.iter_mut().zip(shared.w.dec_b).for_each(|(q, &b)| *q += b);
            let alpha = &mut part.alpha[pos * r..][..r];
            attention_forward(
                &mut part.s[pos * r * a..][..r * a],
                alpha,
                &shared.p[k * r * a..][..r * a],
                q,
                shared.w.full_w,
            );
            let z = &mut part.z[pos * c..][..c];
            context_forward(z, alpha, &shared.grid[k * r * c..][..r * c]);
            let beta = &mut part.beta[pos * c..][..c];
            beta.iter_mut()
                .zip(shared.w.beta_b)
                .for_each(|(g, &b)| *g += b);
            gate_forward(&mut part.xz[pos * c..][..c], beta, z);
        });
        let gates = &mut part.gates[off * 4 * h..][..rows * 4 * h];
        product(
            gates,
            &part.xz[off * c..][..rows * c],
            shared.ctx_t,
            packed.map(|p| &p.context),
            rows,
            c,
            4 * h,
            true,
        );
        let recurrent = packed.map(|p| &p.recurrent);
        product(gates, h_prev, shared.hh_t, recurrent, rows, h, 4 * h, true);
        lstm_cell(
            gates,
            Some(c_prev),
            &mut c_now[..rows * h],
            &mut h_now[..rows * h],
            rows,
            h,
        );
    }
}

/// Mean cross-entropy of the batch without gradients (evaluation: dropout off).
pub fn loss<T: FastMath>(
    params: &[T],
    config: &AttentionConfig,
    batch: &Batch<T>,
    ws: &mut Workspace<T>,
    threads: usize,
) -> f64 {
    forward(params, config, batch, ws, None, threads);
    softmax_xent_forward_backward(
        &mut ws.logits,
        &batch.targets,
        &batch.weights,
        &batch.excluded,
        config.vocab,
        None,
    )
}

/// One group's per-position backward buffers and its per-caption recurrent gradients.
struct GroupBackward<'a, T> {
    group: &'a Group,
    dgates: &'a mut [T],
    dq: &'a mut [T],
    dg: &'a mut [T],
    dp: &'a mut [T],
    dh0: &'a mut [T],
    dc0: &'a mut [T],
    dh_rec: &'a mut [T],
    dc_rec: &'a mut [T],
    dw_full: &'a mut [T],
}

/// What every group reads in the backward pass: the forward activations and the coverage gradient.
struct SharedBackward<'a, T> {
    config: &'a AttentionConfig,
    w: &'a Parts<&'a [T]>,
    grid: &'a [T],
    c0: &'a [T],
    gates: &'a [T],
    c: &'a [T],
    dh_out: &'a [T],
    beta: &'a [T],
    z: &'a [T],
    alpha: &'a [T],
    s: &'a [T],
    /// The doubly stochastic term's gradient w.r.t. each caption's attention on each region.
    coverage: &'a [T],
    packed: Option<&'a PackedStepWeights>,
}

/// One training step's forward and backward: returns the loss (cross-entropy plus the doubly stochastic
/// term) and adds the gradients to `grads`.
pub fn forward_backward<T: FastMath>(
    params: &[T],
    grads: &mut [T],
    config: &AttentionConfig,
    batch: &Batch<T>,
    ws: &mut Workspace<T>,
    dropout: Option<&mut Rng>,
    threads: usize,
) -> f64 {
    let training = dropout.is_some();
    forward(params, config, batch, ws, dropout, threads);
    let w = parts(params, config);
    let mut g = parts_mut(grads, config);
    let (v, h) = (config.vocab, config.hidden);
    let p = batch.positions();
    let bias = BiasGrad {
        grad: &mut *g.out_b,
        partials: &mut ws.bias_partials,
    };
    let cross_entropy = softmax_xent_forward_backward(
        &mut ws.logits,
        &batch.targets,
        &batch.weights,
        &batch.excluded,
        v,
        Some(bias),
    );
    let (dh_out, logits, h_drop) = (&mut ws.dh_out, &ws.logits, &ws.h_drop);
    linear_backward(
        Some(dh_out),
        g.out_w,
        None,
        logits,
        h_drop,
        w.out_w,
        p,
        h,
        v,
        threads,
    );
    if training {
        dropout_backward(&mut ws.dh_out[..p * h], &ws.mask[..p * h]);
    }
    let (coverage, regulariser) = coverage_gradient(config, batch, &ws.alpha);
    recurrence_backward(&w, config, batch, ws, &coverage);
    weight_gradients(&w, &mut g, config, batch, ws, threads);
    cross_entropy + regulariser
}

/// The doubly stochastic term, alpha_c / (B R) sum over captions and regions of (1 - sum_t alpha)^2,
/// and its gradient w.r.t. every alpha of a caption's region, [B, R].
fn coverage_gradient<T: FastMath>(
    config: &AttentionConfig,
    batch: &Batch<T>,
    alpha: &[T],
) -> (Vec<T>, f64) {
    let (b, r) = (batch.captions(), config.regions);
    let mut coverage = vec![T::zero(); b * r];
    for (pos, &k) in batch.caption.iter().enumerate() {
        let alpha = &alpha[pos * r..][..r];
        coverage[k * r..][..r]
            .iter_mut()
            .zip(alpha)
            .for_each(|(s, &x)| *s += x);
    }
    let scale = config.alpha_c / (b * r) as f64;
    let regulariser = scale
        * coverage
            .iter()
            .map(|&s| (1.0 - s.to_f64().unwrap_or(f64::NAN)).powi(2))
            .sum::<f64>();
    for s in coverage.iter_mut() {
        *s = T::from_f64_lossy(-2.0 * scale) * (T::one() - *s);
    }
    (coverage, regulariser)
}

/// The backward through the recurrence, each group on its own thread: every position's gate,
/// attention-query and gate-input gradients, each caption's gradients of the regions' projection
/// and of the initial state, and each group's part of the attention vector's gradient.
fn recurrence_backward<T: FastMath>(
    w: &Parts<&[T]>,
    config: &AttentionConfig,
    batch: &Batch<T>,
    ws: &mut Workspace<T>,
    coverage: &[T],
) {
    let (c, r, _, h, a) = config.dims();
    let Workspace {
        c0,
        gates,
        c: cell,
        dh_out,
        beta,
        z,
        alpha,
        s,
        dgates,
        dq,
        dg,
        dp,
        dh0,
        dc0,
        dh_rec,
        dc_rec,
        dw_full,
        packed,
        ..
    } = ws;
    if let (Some(packed), Some([dec_w, beta_w, w_ctx, w_hh])) = (&mut *packed, recurrent_f32s(w)) {
        packed.query_back.pack(dec_w, a, h, Transpose::No);
        packed.gate_back.pack(beta_w, c, h, Transpose::No);
        packed.context_back.pack(w_ctx, 4 * h, c, Transpose::No);
        packed.recurrent_back.pack(w_hh, 4 * h, h, Transpose::No);
    }
    let groups = &batch.groups;
    let (rows, captions) = (
        |g: &Group| g.positions.clone(),
        |g: &Group| g.captions.clone(),
    );
    dw_full[..groups.len() * a].fill(T::zero());
    let parts: Vec<GroupBackward<T>> = cut(dgates, 4 * h, groups, rows)
        .into_iter()
        .zip(cut(dq, a, groups, rows))
        .zip(cut(dg, c, groups, rows))
        .zip(cut(dp, r * a, groups, captions))
        .zip(cut(dh0, h, groups, captions))
        .zip(cut(dc0, h, groups, captions))
        .zip(cut(dh_rec, h, groups, captions))
        .zip(cut(dc_rec, h, groups, captions))
        .zip(dw_full[..groups.len() * a].chunks_exact_mut(a))
        .zip(groups)
        .map(
            |(((((((((dgates, dq), dg), dp), dh0), dc0), dh_rec), dc_rec), dw_full), group)| {
                GroupBackward {
                    group,
                    dgates,
                    dq,
                    dg,
                    dp,
                    dh0,
                    dc0,
                    dh_rec,
                    dc_rec,
                    dw_full,
                }
            },
        )
        .collect();
    let shared = SharedBackward {
        config,
        w,
        grid: &batch.features,
        c0,
        gates,
        c: cell,
        dh_out,
        beta,
        z,
        alpha,
        s,
        coverage,
        packed: packed.as_ref(),
    };
    parts
        .into_par_iter()
        .for_each(|part| group_backward(part, &shared));
}

/// A weight gradient as one product: (weight gradient, bias gradient, output gradient, input, rows,
/// inputs, outputs).
type WeightProduct<'a, T> = (
    &'a mut [T],
    Option<&'a mut [T]>,
    &'a [T],
    &'a [T],
    usize,
    usize,
    usize,
);

/// Every weight gradient: one product over every position (or every caption) each.
fn weight_gradients<T: FastMath>(
    w: &Parts<&[T]>,
    g: &mut Parts<&mut [T]>,
    config: &AttentionConfig,
    batch: &Batch<T>,
    ws: &mut Workspace<T>,
    threads: usize,
) {
    let (c, r, e, h, a) = config.dims();
    let (b, p) = (batch.captions(), batch.positions());
    let grid = &batch.features[..b * r * c];
    let dgates = &ws.dgates[..p * 4 * h];
    let (h_prev, mean) = (&ws.h_prev[..], &ws.mean[..]);
    let products: [WeightProduct<T>; 8] = [
        (g.w_word, None, dgates, &ws.x_word, p, e, 4 * h),
        (g.w_ctx, None, dgates, &ws.xz, p, c, 4 * h),
        (g.w_hh, Some(g.lstm_b_ih), dgates, h_prev, p, h, 4 * h),
        (g.dec_w, Some(g.dec_b), &ws.dq[..p * a], h_prev, p, h, a),
        (g.beta_w, Some(g.beta_b), &ws.dg[..p * c], h_prev, p, h, c),
        (
            g.enc_w,
            Some(g.enc_b),
            &ws.dp[..b * r * a],
            grid,
            b * r,
            c,
            a,
        ),
        (
            g.init_h_w,
            Some(g.init_h_b),
            &ws.dh0[..b * h],
            mean,
            b,
            c,
            h,
        ),
        (
            g.init_c_w,
            Some(g.init_c_b),
            &ws.dc0[..b * h],
            mean,
            b,
            c,
            h,
        ),
    ];
    for (dw, db, dy, x, n, din, dout) in products {
        linear_backward(None, dw, db, dy, x, &[], n, din, dout, threads);
    }
    column_sums(g.lstm_b_hh, dgates, 4 * h, threads);
    for part in ws.dw_full[..batch.groups.len() * a].chunks_exact(a) {
        g.full_w.iter_mut().zip(part).for_each(|(g, &d)| *g += d);
    }
    let dx_word = &mut ws.dx_word;
    matmul(
        p,
        e,
        4 * h,
        T::one(),
        dgates,
        Transpose::No,
        w.w_word,
        Transpose::No,
        T::zero(),
        dx_word,
        threads,
    );
    embedding_backward(g.emb, &ws.dx_word[..p * e], &batch.inputs, e);
}

/// One group's backward through its recurrence, last step first.
fn group_backward<T: FastMath>(mut part: GroupBackward<T>, shared: &SharedBackward<T>) {
    let config = shared.config;
    let (c, r, _, h, a) = config.dims();
    let packing = &part.group.packing;
    let mut scratch = RowScratch {
        dz: vec![T::zero(); c],
        dalpha: vec![T::zero(); r],
        dp: vec![T::zero(); r * a],
    };
    let (mut dxz, mut dh_prev) = (Vec::new(), Vec::new());
    part.dp.fill(T::zero());
    for t in (0..packing.offset.len()).rev() {
        let (off, rows) = (packing.offset[t], packing.active[t]);
        let later = packing.active.get(t + 1).copied().unwrap_or(0);
        // Sequences that end at t get no gradient from a later step.
        part.dh_rec[later * h..rows * h].fill(T::zero());
        part.dc_rec[later * h..rows * h].fill(T::zero());
        part.cell_backward(shared, t);
        let dgates = &part.dgates[off * 4 * h..][..rows * 4 * h];
        dxz.resize(rows * c, T::zero());
        let packed = shared.packed;
        let context = packed.map(|p| &p.context_back);
        product(
            &mut dxz,
            dgates,
            shared.w.w_ctx,
            context,
            rows,
            4 * h,
            c,
            false,
        );
        part.context_backward(shared, t, &dxz, &mut scratch);
        // The gradient w.r.t. h_{t-1}: through the attention query, the gate and the recurrence.
        let (dq, dg) = (
            &part.dq[off * a..][..rows * a],
            &part.dg[off * c..][..rows * c],
        );
        let dgates = &part.dgates[off * 4 * h..][..rows * 4 * h];
        dh_prev.resize(rows * h, T::zero());
        let (query, gate) = (packed.map(|p| &p.query_back), packed.map(|p| &p.gate_back));
        let recurrent = packed.map(|p| &p.recurrent_back);
        product(&mut dh_prev, dq, shared.w.dec_w, query, rows, a, h, false);
        product(&mut dh_prev, dg, shared.w.beta_w, gate, rows, c, h, true);
        product(
            &mut dh_prev,
            dgates,
            shared.w.w_hh,
            recurrent,
            rows,
            4 * h,
            h,
            true,
        );
        if t == 0 {
            part.dh0[..rows * h].copy_from_slice(&dh_prev);
            part.dc0[..rows * h].copy_from_slice(&part.dc_rec[..rows * h]);
        } else {
            part.dh_rec[..rows * h].copy_from_slice(&dh_prev);
        }
    }
}

/// One row's scratch for the backward through the attention.
struct RowScratch<T> {
    dz: Vec<T>,
    dalpha: Vec<T>,
    dp: Vec<T>,
}

impl<T: FastMath> GroupBackward<'_, T> {
    /// Step t's cell backward for each row: its gate gradients, and the cell gradient carried back.
    fn cell_backward(&mut self, shared: &SharedBackward<T>, t: usize) {
        let h = shared.config.hidden;
        let packing = &self.group.packing;
        let (off, rows) = (packing.offset[t], packing.active[t]);
        let (first_caption, base) = (self.group.captions.start, self.group.positions.start);
        let dgates = &mut self.dgates[off * 4 * h..][..rows * 4 * h];
        with_avx2!(for row in 0..rows {
            let pos = base + off + row;
            let saved = CellRows {
                a: &shared.gates[pos * 4 * h..][..4 * h],
                c: &shared.c[pos * h..][..h],
                dh_out: &shared.dh_out[pos * h..][..h],
            };
            let c_prev = match t.checked_sub(1) {
                None => &shared.c0[(first_caption + row) * h..][..h],
                Some(prev) => &shared.c[(base + packing.offset[prev] + row) * h..][..h],
            };
            cell_backward(
                &mut dgates[row * 4 * h..][..4 * h],
                &mut self.dc_rec[row * h..][..h],
                saved,
                &self.dh_rec[row * h..][..h],
                |j| c_prev[j],
            );
        })
    }

    /// Step t's rows back through the gated context and the attention that made it, from the
    /// gradient of the gated context `dxz` [rows, C] (the coverage term's gradient joins here).
    fn context_backward(
        &mut self,
        shared: &SharedBackward<T>,
        t: usize,
        dxz: &[T],
        scratch: &mut RowScratch<T>,
    ) {
        let config = shared.config;
        let (c, r, a) = (config.feature_dim, config.regions, config.attention_dim);
        let (off, rows) = (self.group.packing.offset[t], self.group.packing.active[t]);
        let (first_caption, base) = (self.group.captions.start, self.group.positions.start);
        let RowScratch { dz, dalpha, dp } = scratch;
        with_avx2!(for row in 0..rows {
            let (pos, local, k) = (base + off + row, off + row, first_caption + row);
            let (beta, z) = (&shared.beta[pos * c..][..c], &shared.z[pos * c..][..c]);
            gate_backward(
                dz,
                &mut self.dg[local * c..][..c],
                &dxz[row * c..][..c],
                beta,
                z,
            );
            context_backward(dalpha, dz, &shared.grid[k * r * c..][..r * c]);
            let coverage = &shared.coverage[k * r..][..r];
            dalpha.iter_mut().zip(coverage).for_each(|(d, &s)| *d += s);
            attention_backward(
                dp,
                &mut self.dq[local * a..][..a],
                self.dw_full,
                dalpha,
                &shared.alpha[pos * r..][..r],
                &shared.s[pos * r * a..][..r * a],
                shared.w.full_w,
            );
            let dp_row = &mut self.dp[row * r * a..][..r * a];
            dp_row.iter_mut().zip(dp.iter()).for_each(|(d, &x)| *d += x);
        })
    }
}

/// The attention decoder ready to generate. An image's context is [its grid a (R x C), the regions'
/// projection p (R x A)]; a hypothesis's state is [h (H), c (H), the last step's attention (R)].
/// Every step's products read weights packed once (`PanelWeights`), the LSTM's three input matrices
/// side by side so that [word, context, h] enters in one product.
pub struct AttentionGenerator {
    config: AttentionConfig,
    params: Vec<f32>,
    /// [A, H]
    query: PanelWeights,
    /// [C, H]
    gate: PanelWeights,
    /// [4H, E + C + H]
    gates: PanelWeights,
    /// [4H, E + H]: the word and recurrent columns alone, for a blank image (see `image`); packed
    /// when first needed (self-critical training repacks at every step and never needs it).
    blank_gates: OnceLock<PanelWeights>,
    /// [V, H]
    out: PanelWeights,
    /// b_ih + b_hh
    lstm_b: Vec<f32>,
}

/// Row `o`, column `i` of the LSTM's input weights over [word, context, h].
fn lstm_input_weight(w: &Parts<&[f32]>, config: &AttentionConfig, o: usize, i: usize) -> f32 {
    let (c, _, e, h, _) = config.dims();
    match i {
        i if i < e => w.w_word[o * e + i],
        i if i < e + c => w.w_ctx[o * c + i - e],
        i => w.w_hh[o * h + i - e - c],
    }
}

impl AttentionGenerator {
    pub fn new(config: &AttentionConfig, params: &[f32]) -> Self {
        let w = parts(params, config);
        let v = config.vocab;
        let (c, _, e, h, a) = config.dims();
        let gate_input = |o: usize, i: usize| lstm_input_weight(&w, config, o, i);
        AttentionGenerator {
            config: *config,
            params: params.to_vec(),
            query: PanelWeights::new(a, h, |o, i| w.dec_w[o * h + i]),
            gate: PanelWeights::new(c, h, |o, i| w.beta_w[o * h + i]),
            gates: PanelWeights::new(4 * h, e + c + h, gate_input),
            blank_gates: OnceLock::new(),
            out: PanelWeights::new(v, h, |o, i| w.out_w[o * h + i]),
            lstm_b: w
                .lstm_b_ih
                .iter()
                .zip(w.lstm_b_hh)
                .map(|(a, b)| a + b)
                .collect(),
        }
    }
}

impl AttentionGenerator {
    /// The grid and its regions' projections [R, A], as every step reads them.
    fn prepared(&self, grid: &[f32]) -> Vec<f32> {
        let (w, config) = (parts(&self.params, &self.config), &self.config);
        let (r, c, a) = (config.regions, config.feature_dim, config.attention_dim);
        let mut image = grid[..r * c].to_vec();
        image.resize(r * c + r * a, 0.0);
        let (grid, p) = image.split_at_mut(r * c);
        linear_forward(p, grid, w.enc_w, w.enc_b, r, c, a, 1);
        image
    }

    /// Each row's LSTM input [word, gated context, h], its attention weights left in its state.
    fn lstm_inputs(&self, image: &[f32], tokens: &[u32], states: &mut [f32]) -> Vec<f32> {
        let (w, config) = (parts(&self.params, &self.config), &self.config);
        let (c, r, e, h, a) = config.dims();
        let (rows, size) = (tokens.len(), self.state_size());
        let (grid, p) = image.split_at(r * c);
        let h_prev: Vec<f32> = states
            .chunks_exact(size)
            .flat_map(|state| state[..h].iter().copied())
            .collect();
        let mut q = vec![0.0f32; rows * a];
        linear_forward_few_rows(&mut q, &h_prev, &self.query, w.dec_b, rows);
        let mut beta = vec![0.0f32; rows * c];
        linear_forward_few_rows(&mut beta, &h_prev, &self.gate, w.beta_b, rows);
        let din = e + c + h;
        let (mut x, mut s, mut z) = (
            vec![0.0f32; rows * din],
            vec![0.0f32; r * a],
            vec![0.0f32; c],
        );
        with_avx2!(for (row, ((x, state), &token)) in x
            .chunks_exact_mut(din)
            .zip(states.chunks_exact_mut(size))
            .zip(tokens)
            .enumerate()
        {
            let alpha = &mut state[2 * h..];
            attention_forward(&mut s, alpha, p, &q[row * a..][..a], w.full_w);
            context_forward(&mut z, alpha, grid);
            let (word, rest) = x.split_at_mut(e);
            let (context, hidden) = rest.split_at_mut(c);
            word.copy_from_slice(&w.emb[token as usize * e..][..e]);
            gate_forward(context, &mut beta[row * c..][..c], &z);
            hidden.copy_from_slice(&state[..h]);
        });
        x
    }

    /// The LSTM's weights for `blank_lstm_inputs`, packed on first use.
    fn blank_gates(&self) -> &PanelWeights {
        self.blank_gates.get_or_init(|| {
            let (w, config) = (parts(&self.params, &self.config), &self.config);
            let (c, _, e, h, _) = config.dims();
            PanelWeights::new(4 * h, e + h, |o, i| {
                lstm_input_weight(&w, config, o, if i < e { i } else { i + c })
            })
        })
    }

    /// `lstm_inputs` for a blank image: [word, h], the context being zero; the attention weights
    /// are uniform, as the attention over identical regions gives.
    fn blank_lstm_inputs(&self, tokens: &[u32], states: &mut [f32]) -> Vec<f32> {
        let (w, config) = (parts(&self.params, &self.config), &self.config);
        let (e, h, r) = (config.embed_dim, config.hidden, config.regions);
        let size = self.state_size();
        let mut x = vec![0.0f32; tokens.len() * (e + h)];
        for ((x, state), &token) in x
            .chunks_exact_mut(e + h)
            .zip(states.chunks_exact_mut(size))
            .zip(tokens)
        {
            let (word, hidden) = x.split_at_mut(e);
            word.copy_from_slice(&w.emb[token as usize * e..][..e]);
            hidden.copy_from_slice(&state[..h]);
            state[2 * h..].fill(1.0 / r as f32);
        }
        x
    }
}

impl Generator for AttentionGenerator {
    fn state_size(&self) -> usize {
        2 * self.config.hidden + self.config.regions
    }

    /// A blank grid (the photo gain's baseline: `generate::photo_gain`) is prepared as nothing. Its
    /// context is zero whatever the attention, so its steps skip the attention and the LSTM's
    /// context columns (half of the weights a step reads) and give the same numbers.
    fn image(&self, grid: &[f32]) -> Vec<f32> {
        let (r, c) = (self.config.regions, self.config.feature_dim);
        if grid[..r * c].iter().all(|&v| v == 0.0) {
            return Vec::new();
        }
        self.prepared(grid)
    }

    fn initial_state(&self, image: &[f32]) -> Vec<f32> {
        let (w, config) = (parts(&self.params, &self.config), &self.config);
        let (r, c, h) = (config.regions, config.feature_dim, config.hidden);
        let mut mean = vec![0.0f32; c];
        // (Nothing for a blank image: the mean is zero.)
        for region in image.chunks_exact(c).take(r) {
            mean.iter_mut().zip(region).for_each(|(m, &x)| *m += x);
        }
        mean.iter_mut().for_each(|m| *m /= r as f32);
        let mut state = vec![0.0f32; self.state_size()];
        linear_forward(&mut state[..h], &mean, w.init_h_w, w.init_h_b, 1, c, h, 1);
        linear_forward(
            &mut state[h..2 * h],
            &mean,
            w.init_c_w,
            w.init_c_b,
            1,
            c,
            h,
            1,
        );
        state
    }

    fn step(&self, image: &[f32], tokens: &[u32], states: &mut [f32], log_probs: &mut Vec<f32>) {
        let (w, config) = (parts(&self.params, &self.config), &self.config);
        let v = config.vocab;
        let h = config.hidden;
        let (rows, size) = (tokens.len(), self.state_size());
        let (x, gates_w) = if image.is_empty() {
            (self.blank_lstm_inputs(tokens, states), self.blank_gates())
        } else {
            (self.lstm_inputs(image, tokens, states), &self.gates)
        };
        let mut gates = vec![0.0f32; rows * 4 * h];
        linear_forward_few_rows(&mut gates, &x, gates_w, &self.lstm_b, rows);
        let c_prev: Vec<f32> = states
            .chunks_exact(size)
            .flat_map(|state| state[h..2 * h].iter().copied())
            .collect();
        let (mut c_new, mut h_new) = (vec![0.0f32; rows * h], vec![0.0f32; rows * h]);
        lstm_cell(&mut gates, Some(&c_prev), &mut c_new, &mut h_new, rows, h);
        for ((state, h_row), c_row) in states
            .chunks_exact_mut(size)
            .zip(h_new.chunks_exact(h))
            .zip(c_new.chunks_exact(h))
        {
            state[..h].copy_from_slice(h_row);
            state[h..2 * h].copy_from_slice(c_row);
        }
        log_probs.resize(rows * v, 0.0);
        linear_forward_few_rows(log_probs, &h_new, &self.out, w.out_b, rows);
        for row in log_probs.chunks_exact_mut(v) {
            log_softmax(row);
        }
    }

    fn attention<'a>(&self, state: &'a [f32]) -> Option<&'a [f32]> {
        Some(&state[2 * self.config.hidden..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::gradcheck::{check, random};

    const CONFIG: AttentionConfig = AttentionConfig {
        vocab: 7,
        feature_dim: 3,
        regions: 4,
        embed_dim: 3,
        hidden: 3,
        attention_dim: 2,
        dropout: 0.5,
        alpha_c: 1.0,
    };

    /// 18 captions of 2 to 6 tokens over 6 images (each image's grid repeated for its captions).
    fn batch(groups: usize) -> Batch<f64> {
        let (r, c) = (CONFIG.regions, CONFIG.feature_dim);
        let grids: Vec<Vec<f64>> = (0..6)
            .map(|i| {
                random(r * c, 40 + i)
                    .iter()
                    .map(|v| v.abs() * 2.0)
                    .collect()
            })
            .collect();
        let captions: Vec<Vec<u32>> = (0..18)
            .map(|k| {
                (0..2 + k % 5)
                    .map(|t| 1 + ((k * 3 + t * 5) % 6) as u32)
                    .collect()
            })
            .collect();
        let mut batch = Batch::default();
        batch.fill(captions.len(), groups, |k| {
            (grids[k % 6].as_slice(), captions[k].as_slice())
        });
        batch
    }

    fn run(params: &[f64], batch: &Batch<f64>) -> (f64, Vec<f64>) {
        let mut grads = vec![0.0; params.len()];
        let mut ws = Workspace::default();
        let loss = forward_backward(params, &mut grads, &CONFIG, batch, &mut ws, None, 2);
        (loss, grads)
    }

    #[test]
    fn gradients_match_finite_differences() {
        let params: Vec<f64> = CONFIG
            .init(&mut Rng::new(5))
            .iter()
            .map(|&v| f64::from(v))
            .collect();
        let batch = batch(2);
        assert_eq!(batch.groups.len(), 2);
        let (_, grads) = run(&params, &batch);
        let layout = CONFIG.layout();
        for slot in &layout.slots {
            let range = slot.offset..slot.offset + slot.len;
            check(
                &slot.name,
                &grads[range.clone()],
                &params[range.clone()],
                |v| {
                    let mut probe = params.clone();
                    probe[range.clone()].copy_from_slice(v);
                    run(&probe, &batch).0
                },
            );
        }
    }

    #[test]
    fn policy_gradient_matches_finite_differences() {
        // Self-critical training's step: every position weighted by its caption's advantage (of
        // either sign), no doubly stochastic term, dropout off.
        let config = crate::decoder::DecoderConfig::Attention(CONFIG).without_regulariser();
        let crate::decoder::DecoderConfig::Attention(config) = config else {
            unreachable!()
        };
        let params: Vec<f64> = config
            .init(&mut Rng::new(9))
            .iter()
            .map(|&v| f64::from(v))
            .collect();
        let mut batch = batch(2);
        batch.weigh_captions(|k| (k as f64 - 8.5) / 40.0);
        let mut grads = vec![0.0; params.len()];
        let mut ws = Workspace::default();
        let value = forward_backward(&params, &mut grads, &config, &batch, &mut ws, None, 2);
        let policy_loss = |v: &[f64]| loss(v, &config, &batch, &mut Workspace::default(), 2);
        assert!((value - policy_loss(&params)).abs() < 1e-12);
        check("all parameters", &grads, &params, policy_loss);
        // No advantage, no gradient.
        batch.weigh_captions(|_| 0.0);
        let mut grads = vec![0.0; params.len()];
        forward_backward(&params, &mut grads, &config, &batch, &mut ws, None, 2);
        assert!(grads.iter().all(|&g| g == 0.0));
    }

    #[test]
    fn generation_steps_give_the_training_forward_pass_log_probabilities() {
        let params = CONFIG.init(&mut Rng::new(7));
        let reference = batch(1);
        let (r, c, v) = (CONFIG.regions, CONFIG.feature_dim, CONFIG.vocab);
        // The first (longest) packed caption, through the training forward pass in f32.
        let grid: Vec<f32> = reference.features[..r * c]
            .iter()
            .map(|&x| x as f32)
            .collect();
        let caption: Vec<u32> = (0..reference.packing().offset.len())
            .map(|t| reference.inputs[reference.packing().offset[t]])
            .collect();
        let mut one = Batch::<f32>::default();
        let tokens: Vec<u32> = caption.iter().copied().chain([3]).collect();
        one.fill(1, 1, |_| (grid.as_slice(), tokens.as_slice()));
        let mut ws = Workspace::default();
        forward(&params, &CONFIG, &one, &mut ws, None, 1);
        let generator = AttentionGenerator::new(&CONFIG, &params);
        let image = generator.image(&grid);
        let mut state = generator.initial_state(&image);
        let mut log_probs = Vec::new();
        for (t, &token) in caption.iter().enumerate() {
            generator.step(&image, &[token], &mut state, &mut log_probs);
            let mut want = ws.logits[t * v..][..v].to_vec();
            log_softmax(&mut want);
            for (got, want) in log_probs.iter().zip(&want) {
                assert!((got - want).abs() < 1e-4, "step {t}: {got} vs {want}");
            }
            let alpha = generator.attention(&state).unwrap();
            for (got, want) in alpha.iter().zip(&ws.alpha[t * r..][..r]) {
                assert!(
                    (got - want).abs() < 1e-5,
                    "step {t}: attention {got} vs {want}"
                );
            }
        }
    }

    #[test]
    fn a_blank_image_skips_the_attention_with_the_same_numbers() {
        let params = CONFIG.init(&mut Rng::new(8));
        let generator = AttentionGenerator::new(&CONFIG, &params);
        let blank_grid = vec![0.0f32; CONFIG.regions * CONFIG.feature_dim];
        let blank = generator.image(&blank_grid);
        assert!(blank.is_empty(), "a blank grid is prepared as nothing");
        let full = generator.prepared(&blank_grid);
        let h = CONFIG.hidden;
        // Two hypotheses, each with its own words.
        let mut blank_states = [
            generator.initial_state(&blank),
            generator.initial_state(&blank),
        ]
        .concat();
        let mut full_states = [
            generator.initial_state(&full),
            generator.initial_state(&full),
        ]
        .concat();
        assert_eq!(blank_states, full_states);
        let (mut blank_log_probs, mut full_log_probs) = (Vec::new(), Vec::new());
        for tokens in [[1, 2], [4, 4], [6, 3], [2, 5]] {
            generator.step(&blank, &tokens, &mut blank_states, &mut blank_log_probs);
            generator.step(&full, &tokens, &mut full_states, &mut full_log_probs);
            let bits = |values: &[f32]| values.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&blank_log_probs), bits(&full_log_probs));
            for (blank, full) in blank_states
                .chunks_exact(generator.state_size())
                .zip(full_states.chunks_exact(generator.state_size()))
            {
                assert_eq!(bits(&blank[..2 * h]), bits(&full[..2 * h]));
                for (got, want) in blank[2 * h..].iter().zip(&full[2 * h..]) {
                    assert!((got - want).abs() < 1e-6, "attention {got} vs {want}");
                }
            }
        }
    }

    #[test]
    fn groups_run_on_their_own_threads_with_the_same_result() {
        let params: Vec<f64> = CONFIG
            .init(&mut Rng::new(6))
            .iter()
            .map(|&v| f64::from(v))
            .collect();
        let (one, three) = (batch(1), batch(3));
        assert_eq!((one.groups.len(), three.groups.len()), (1, 3));
        let ((loss_one, grads_one), (loss_three, grads_three)) =
            (run(&params, &one), run(&params, &three));
        assert!((loss_one - loss_three).abs() < 1e-12);
        for (a, b) in grads_one.iter().zip(&grads_three) {
            assert!((a - b).abs() < 1e-12, "{a} vs {b}");
        }
    }
}
