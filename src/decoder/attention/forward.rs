//! The attention decoder's training forward pass: each group's recurrence on its own thread, the
//! products that do not feed it over all positions at once.

use super::*;

/// Activations and scratch of one training step, grown to the largest batch seen and then reused.
/// Per caption: `mean`, `h0`, `c0` and the regions' projection `p`; per position: everything else.
#[derive(Default)]
pub struct Workspace<T> {
    pub(super) mean: Vec<T>,
    h0: Vec<T>,
    pub(super) c0: Vec<T>,
    pub(super) p: Vec<T>,
    pub(super) x_word: Vec<T>,
    pub(super) gates: Vec<T>,
    pub(super) h_prev: Vec<T>,
    pub(super) q: Vec<T>,
    pub(super) s: Vec<T>,
    /// The attention weights of every position, [P, R].
    pub alpha: Vec<T>,
    pub(super) z: Vec<T>,
    pub(super) beta: Vec<T>,
    pub(super) xz: Vec<T>,
    pub(super) c: Vec<T>,
    pub(super) h: Vec<T>,
    pub(super) h_drop: Vec<T>,
    pub(super) mask: Vec<T>,
    /// Logits, then (after the loss) their gradient.
    pub logits: Vec<T>,
    pub(super) bias_partials: Vec<T>,
    pub(super) dh_out: Vec<T>,
    pub(super) dgates: Vec<T>,
    pub(super) dq: Vec<T>,
    pub(super) dg: Vec<T>,
    pub(super) dx_word: Vec<T>,
    pub(super) dp: Vec<T>,
    pub(super) dh0: Vec<T>,
    pub(super) dc0: Vec<T>,
    pub(super) dh_rec: Vec<T>,
    pub(super) dc_rec: Vec<T>,
    pub(super) dw_full: Vec<T>,
    dec_t: Vec<T>,
    beta_t: Vec<T>,
    ctx_t: Vec<T>,
    hh_t: Vec<T>,
    /// Where `matmul_packed` runs (f32 on AVX-512), the per-step products' weights packed once per
    /// step; the four transposes above are then left empty.
    pub(super) packed: Option<PackedStepWeights>,
    pub(super) lstm_b: Vec<T>,
}

/// The recurrence's weights as its per-step products read them, packed once per training step (each
/// thread's `matmul` packed them again at every position: a quarter of a training step).
#[derive(Default)]
pub(super) struct PackedStepWeights {
    /// Forward: dec_att^T [H, A], f_beta^T [H, C], the LSTM's context and recurrent parts
    /// transposed, [C, 4H] and [H, 4H].
    pub(super) query: PackedWeights,
    pub(super) gate: PackedWeights,
    pub(super) context: PackedWeights,
    pub(super) recurrent: PackedWeights,
    /// Backward: the same matrices as stored, [A, H], [C, H], [4H, C], [4H, H].
    pub(super) query_back: PackedWeights,
    pub(super) gate_back: PackedWeights,
    pub(super) context_back: PackedWeights,
    pub(super) recurrent_back: PackedWeights,
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
pub(super) fn product<T: FastMath>(
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
pub(super) fn cut<'a, T>(
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
    pub(super) group: &'a Group,
    pub(super) h_prev: &'a mut [T],
    pub(super) q: &'a mut [T],
    pub(super) s: &'a mut [T],
    pub(super) alpha: &'a mut [T],
    pub(super) z: &'a mut [T],
    pub(super) beta: &'a mut [T],
    pub(super) xz: &'a mut [T],
    pub(super) gates: &'a mut [T],
    pub(super) c: &'a mut [T],
    pub(super) h: &'a mut [T],
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
pub(super) fn recurrent_f32s<'a, T: FastMath>(w: &Parts<&'a [T]>) -> Option<[&'a [f32]; 4]> {
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
    pub(super) config: &'a AttentionConfig,
    pub(super) w: &'a Parts<&'a [T]>,
    pub(super) grid: &'a [T],
    h0: &'a [T],
    pub(super) c0: &'a [T],
    pub(super) p: &'a [T],
    dec_t: &'a [T],
    beta_t: &'a [T],
    ctx_t: &'a [T],
    hh_t: &'a [T],
    pub(super) packed: Option<&'a PackedStepWeights>,
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
    crate::decoder::mean_loss(&mut ws.logits, batch, config.vocab)
}
