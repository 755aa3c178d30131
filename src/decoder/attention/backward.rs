//! The attention decoder's backward pass: the recurrence back through time per group, then every
//! weight gradient as one product over all positions.

use super::forward::*;
use super::*;

/// One group's per-position backward buffers and its per-caption recurrent gradients.
struct GroupBackward<'a, T> {
    pub(super) group: &'a Group,
    pub(super) dgates: &'a mut [T],
    pub(super) dq: &'a mut [T],
    pub(super) dg: &'a mut [T],
    pub(super) dp: &'a mut [T],
    pub(super) dh0: &'a mut [T],
    pub(super) dc0: &'a mut [T],
    pub(super) dh_rec: &'a mut [T],
    pub(super) dc_rec: &'a mut [T],
    pub(super) dw_full: &'a mut [T],
}

/// What every group reads in the backward pass: the forward activations and the coverage gradient.
struct SharedBackward<'a, T> {
    pub(super) config: &'a AttentionConfig,
    pub(super) w: &'a Parts<&'a [T]>,
    pub(super) grid: &'a [T],
    pub(super) c0: &'a [T],
    pub(super) gates: &'a [T],
    pub(super) c: &'a [T],
    pub(super) dh_out: &'a [T],
    pub(super) beta: &'a [T],
    pub(super) z: &'a [T],
    pub(super) alpha: &'a [T],
    pub(super) s: &'a [T],
    /// The doubly stochastic term's gradient w.r.t. each caption's attention on each region.
    coverage: &'a [T],
    pub(super) packed: Option<&'a PackedStepWeights>,
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
    pub(super) dp: Vec<T>,
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
