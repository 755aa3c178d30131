//! LSTM over packed sequences (no padding is ever computed), PyTorch layout and gate order (i, f, g, o).
//!
//! Packing: sequences sorted by length, longest first; positions stored time-major. Step t holds the
//! first `active[t]` sequences in rows `offset[t] .. offset[t] + active[t]`, and since lengths only
//! shrink, the sequences active at t are a prefix of those active at t - 1.
//!
//!   forward:  a_t = x_t W_ih^T + h_{t-1} W_hh^T + b                 (one GEMM for all x, one per step)
//!             i = sig(a_i), f = sig(a_f), g = tanh(a_g), o = sig(a_o)
//!             c_t = f c_{t-1} + i g,   h_t = o tanh(c_t),           h_{-1} = c_{-1} = 0
//!   backward: dh = dh_out + dh_rec,    dc = dh o (1 - tanh^2 c_t) + dc_rec
//!             da_i = dc g i (1-i),  da_f = dc c_{t-1} f (1-f),  da_g = dc i (1-g^2),  da_o = dh tanh(c_t) o (1-o)
//!             dc_rec <- dc f,  dh_rec <- da W_hh
//!             dW_ih += da^T x,  dW_hh += da^T h_prev,  db += sum da,  dx = da W_ih

use crate::engine::math::FastMath;
use crate::engine::{matmul, transpose, Transpose};
use crate::nn::linear::column_sums;
use crate::with_avx2;
use rayon::prelude::*;
use std::ops::Range;

/// Where each time step lives in the packed layout.
#[derive(Clone, Debug, Default)]
pub struct Packing {
    pub offset: Vec<usize>,
    pub active: Vec<usize>,
}

impl Packing {
    /// From sequence lengths sorted longest first.
    pub fn from_sorted_lengths(lengths: &[usize]) -> Self {
        let mut packing = Packing::default();
        packing.refill(lengths);
        packing
    }

    /// The same, reusing this packing's buffers.
    pub fn refill(&mut self, lengths: &[usize]) {
        self.offset.clear();
        self.active.clear();
        let steps = lengths.first().copied().unwrap_or(0);
        let mut offset = 0;
        for t in 0..steps {
            let active = lengths.iter().take_while(|&&l| l > t).count();
            self.offset.push(offset);
            self.active.push(active);
            offset += active;
        }
    }

    pub fn positions(&self) -> usize {
        self.offset
            .last()
            .map_or(0, |o| o + self.active.last().copied().unwrap_or(0))
    }
}

pub struct LstmParams<'a, T> {
    pub w_ih: &'a [T],
    pub w_hh: &'a [T],
    pub bias: &'a [T],
}

/// Activations kept for the backward pass: gates [P, 4H] after their nonlinearities, c and h [P, H].
/// `w_hh_t` [H, 4H] is scratch for the forward: W_hh transposed once, because the per-step products
/// with few rows spend most of their time packing a transposed operand.
pub struct LstmState<'a, T> {
    pub gates: &'a mut [T],
    pub c: &'a mut [T],
    pub h: &'a mut [T],
    pub w_hh_t: &'a mut [T],
}

/// One cell update for `rows` sequences: `gates` holds the pre-activations on entry and the activated
/// gates on exit; `c_prev` is None at t = 0.
pub fn lstm_cell<T: FastMath>(
    gates: &mut [T],
    c_prev: Option<&[T]>,
    c: &mut [T],
    h: &mut [T],
    rows: usize,
    hidden: usize,
) {
    with_avx2!(for r in 0..rows {
        let a = &mut gates[r * 4 * hidden..][..4 * hidden];
        let (a_i, rest) = a.split_at_mut(hidden);
        let (a_f, rest) = rest.split_at_mut(hidden);
        let (a_g, a_o) = rest.split_at_mut(hidden);
        let units = a_i
            .iter_mut()
            .zip(a_f)
            .zip(a_g)
            .zip(a_o)
            .zip(&mut c[r * hidden..][..hidden])
            .zip(&mut h[r * hidden..][..hidden]);
        // Two loops rather than a branch per unit, so that each vectorises.
        match c_prev {
            Some(c_prev) => units
                .zip(&c_prev[r * hidden..][..hidden])
                .for_each(|((((((i, f), g), o), c), h), &cp)| cell(i, f, g, o, cp, c, h)),
            None => units.for_each(|(((((i, f), g), o), c), h)| cell(i, f, g, o, T::zero(), c, h)),
        }
    })
}

/// One unit: activates its four gates in place and sets c and h.
#[inline(always)]
fn cell<T: FastMath>(i: &mut T, f: &mut T, g: &mut T, o: &mut T, c_prev: T, c: &mut T, h: &mut T) {
    *i = i.fast_sigmoid();
    *f = f.fast_sigmoid();
    *g = g.fast_tanh();
    *o = o.fast_sigmoid();
    *c = *f * c_prev + *i * *g;
    *h = *o * c.fast_tanh();
}

#[allow(clippy::too_many_arguments)]
pub fn lstm_forward<T: FastMath>(
    state: LstmState<T>,
    x: &[T],
    p: &LstmParams<T>,
    packing: &Packing,
    din: usize,
    hidden: usize,
    threads: usize,
) {
    let positions = packing.positions();
    let g4 = 4 * hidden;
    for row in state.gates[..positions * g4].chunks_exact_mut(g4) {
        row.copy_from_slice(p.bias);
    }
    matmul(
        positions,
        g4,
        din,
        T::one(),
        x,
        Transpose::No,
        p.w_ih,
        Transpose::Yes,
        T::one(),
        state.gates,
        threads,
    );
    transpose(state.w_hh_t, p.w_hh, g4, hidden);
    let w_hh_t = &*state.w_hh_t;
    let tasks = sequence_tasks(packing, threads);
    let gates = task_rows(state.gates, g4, packing, &tasks);
    let cs = task_rows(state.c, hidden, packing, &tasks);
    let hs = task_rows(state.h, hidden, packing, &tasks);
    let run = |((gates, mut c), mut h): TaskRows<T>| {
        for (t, gates) in gates.into_iter().enumerate() {
            let count = gates.len() / g4;
            let (c_done, c_now) = c.split_at_mut(t);
            let (h_done, h_now) = h.split_at_mut(t);
            let c_prev = c_done.last().map(|c_prev| {
                let h_prev = h_done.last().expect("h is cut like c");
                matmul(
                    count,
                    g4,
                    hidden,
                    T::one(),
                    h_prev,
                    Transpose::No,
                    w_hh_t,
                    Transpose::No,
                    T::one(),
                    gates,
                    1,
                );
                &**c_prev
            });
            lstm_cell(gates, c_prev, c_now[0], h_now[0], count, hidden);
        }
    };
    let rows = gates.into_iter().zip(cs).zip(hs);
    if tasks.len() > 1 {
        rows.collect::<Vec<_>>().into_par_iter().for_each(run);
    } else {
        rows.for_each(run);
    }
}

/// One task's gates, c and h rows, step by step.
type TaskRows<'a, T> = ((Vec<&'a mut [T]>, Vec<&'a mut [T]>), Vec<&'a mut [T]>);

/// Sequences per parallel task: contiguous ranges of the batch (sorted longest first) with about the
/// same number of positions each. A sequence's recurrence never leaves its task, so a pass over all
/// the time steps is one parallel section, not one per step (each costs a wake-up of the pool);
/// each step's small products run single-threaded side by side.
fn sequence_tasks(packing: &Packing, threads: usize) -> Vec<Range<usize>> {
    let sequences = packing.active.first().copied().unwrap_or(0);
    let lengths: Vec<usize> = (0..sequences)
        .map(|s| packing.active.iter().take_while(|&&a| a > s).count())
        .collect();
    balanced_ranges(&lengths, threads)
}

/// Contiguous ranges of `lengths` (sorted longest first) with about the same total length each: at
/// most `parts` ranges, each of at least 8 items unless there are fewer in all.
pub fn balanced_ranges(lengths: &[usize], parts: usize) -> Vec<Range<usize>> {
    const MIN_ITEMS: usize = 8;
    let parts = parts.min(lengths.len().div_ceil(MIN_ITEMS)).max(1);
    let total: usize = lengths.iter().sum();
    let (mut ranges, mut start, mut sum) = (Vec::with_capacity(parts), 0, 0);
    for (i, &length) in lengths.iter().enumerate() {
        sum += length;
        if ranges.len() + 1 < parts && sum * parts >= total * (ranges.len() + 1) {
            ranges.push(start..i + 1);
            start = i + 1;
        }
    }
    ranges.push(start..lengths.len());
    ranges
}

/// Each task's rows of a packed [P, width] buffer, step by step: `rows[task][t]` holds the rows of
/// the task's sequences still active at t (a task's list ends with its longest sequence).
fn task_rows<'a, T>(
    buffer: &'a mut [T],
    width: usize,
    packing: &Packing,
    tasks: &[Range<usize>],
) -> Vec<Vec<&'a mut [T]>> {
    let mut rows: Vec<Vec<&mut [T]>> = tasks.iter().map(|_| Vec::new()).collect();
    let mut rest = &mut buffer[..packing.positions() * width];
    for &active in &packing.active {
        let (mut step, tail) = std::mem::take(&mut rest).split_at_mut(active * width);
        rest = tail;
        for (task, range) in rows.iter_mut().zip(tasks) {
            let count = range.end.min(active).saturating_sub(range.start);
            if count == 0 {
                break;
            }
            let (mine, tail) = std::mem::take(&mut step).split_at_mut(count * width);
            step = tail;
            task.push(mine);
        }
    }
    rows
}

pub struct LstmGrads<'a, T> {
    pub w_ih: &'a mut [T],
    pub w_hh: &'a mut [T],
    pub bias: &'a mut [T],
}

/// Scratch for the backward pass: `dgates` [P, 4H], `h_prev` [P, H], `dh_rec` and `dc_rec` [B, H].
pub struct LstmScratch<'a, T> {
    pub dgates: &'a mut [T],
    pub h_prev: &'a mut [T],
    pub dh_rec: &'a mut [T],
    pub dc_rec: &'a mut [T],
}

/// `dh_out` [P, H] is the loss gradient w.r.t. every h; `dx` [P, din] receives the input gradient.
#[allow(clippy::too_many_arguments)]
pub fn lstm_backward<T: FastMath>(
    dx: &mut [T],
    grads: LstmGrads<T>,
    scratch: LstmScratch<T>,
    dh_out: &[T],
    x: &[T],
    state: &LstmState<T>,
    p: &LstmParams<T>,
    packing: &Packing,
    din: usize,
    hidden: usize,
    threads: usize,
) {
    let positions = packing.positions();
    let g4 = 4 * hidden;
    let steps = packing.offset.len();
    if steps == 0 {
        return;
    }
    let LstmScratch {
        dgates,
        h_prev,
        dh_rec,
        dc_rec,
    } = scratch;
    let (c, gates, h) = (&*state.c, &*state.gates, &*state.h);
    let first = packing.active[0];
    let tasks = sequence_tasks(packing, threads);
    let dgates_rows = task_rows(dgates, g4, packing, &tasks);
    let h_prev_rows = task_rows(h_prev, hidden, packing, &tasks);
    let run = |(range, ((mut dgates, mut h_prev), (dh_rec, dc_rec))): BackwardTask<T>| {
        let steps = dgates.len();
        for t in (0..steps).rev() {
            let (off, count) = (packing.offset[t] + range.start, dgates[t].len() / g4);
            // Sequences that end at t get no gradient from a later step.
            let later = dgates.get(t + 1).map_or(0, |d| d.len() / g4);
            dh_rec[later * hidden..count * hidden].fill(T::zero());
            dc_rec[later * hidden..count * hidden].fill(T::zero());
            let prev = t.checked_sub(1).map(|p| packing.offset[p] + range.start);
            let dgates = &mut *dgates[t];
            with_avx2!(for r in 0..count {
                let pos = off + r;
                let saved = CellRows {
                    a: &gates[pos * g4..][..g4],
                    c: &c[pos * hidden..][..hidden],
                    dh_out: &dh_out[pos * hidden..][..hidden],
                };
                let (da, dh_rec, dc_rec) = (
                    &mut dgates[r * g4..][..g4],
                    &mut dh_rec[r * hidden..][..hidden],
                    &mut dc_rec[r * hidden..][..hidden],
                );
                match prev {
                    Some(prev) => {
                        let c_prev = &c[(prev + r) * hidden..][..hidden];
                        cell_backward(da, dc_rec, saved, dh_rec, |j| c_prev[j]);
                    }
                    None => cell_backward(da, dc_rec, saved, dh_rec, |_| T::zero()),
                }
            });
            if let Some(prev) = prev {
                matmul(
                    count,
                    hidden,
                    g4,
                    T::one(),
                    dgates,
                    Transpose::No,
                    p.w_hh,
                    Transpose::No,
                    T::zero(),
                    dh_rec,
                    1,
                );
                // h_{t-1} of the sequences active at t, in the same rows as their gate gradients.
                h_prev[t].copy_from_slice(&h[prev * hidden..][..count * hidden]);
            }
        }
    };
    let work = tasks
        .iter()
        .cloned()
        .zip(dgates_rows.into_iter().zip(h_prev_rows))
        .zip(sequence_rows(dh_rec, hidden, &tasks).zip(sequence_rows(dc_rec, hidden, &tasks)))
        .map(|(a, b)| (a.0, (a.1, b)));
    if tasks.len() > 1 {
        work.collect::<Vec<_>>().into_par_iter().for_each(run);
    } else {
        work.for_each(run);
    }
    let dgates = &*dgates;
    let saved = (dgates, &*h_prev, x);
    weight_and_input_gradients(
        dx,
        grads,
        saved,
        p,
        (first, positions),
        (din, hidden),
        threads,
    );
}

/// After the recurrence: dW_hh += dgates^T h_{t-1} (over the positions after the first step),
/// dW_ih += dgates^T x, db += the column sums of dgates, dx = dgates W_ih.
fn weight_and_input_gradients<T: FastMath>(
    dx: &mut [T],
    grads: LstmGrads<T>,
    (dgates, h_prev, x): (&[T], &[T], &[T]),
    p: &LstmParams<T>,
    (first, positions): (usize, usize),
    (din, hidden): (usize, usize),
    threads: usize,
) {
    let g4 = 4 * hidden;
    let rest = positions - first;
    matmul(
        g4,
        hidden,
        rest,
        T::one(),
        &dgates[first * g4..],
        Transpose::Yes,
        &h_prev[first * hidden..],
        Transpose::No,
        T::one(),
        grads.w_hh,
        threads,
    );
    matmul(
        g4,
        din,
        positions,
        T::one(),
        dgates,
        Transpose::Yes,
        x,
        Transpose::No,
        T::one(),
        grads.w_ih,
        threads,
    );
    column_sums(grads.bias, &dgates[..positions * g4], g4, threads);
    matmul(
        positions,
        din,
        g4,
        T::one(),
        dgates,
        Transpose::No,
        p.w_ih,
        Transpose::No,
        T::zero(),
        dx,
        threads,
    );
}

/// One task of the backward pass: its sequences, its gate-gradient and h_{t-1} rows step by step, and
/// its rows of the recurrent gradients dh_rec and dc_rec.
type BackwardTask<'a, T> = (
    Range<usize>,
    (
        (Vec<&'a mut [T]>, Vec<&'a mut [T]>),
        (&'a mut [T], &'a mut [T]),
    ),
);

/// Each task's rows of a per-sequence [B, width] buffer.
fn sequence_rows<'a, T>(
    buffer: &'a mut [T],
    width: usize,
    tasks: &'a [Range<usize>],
) -> impl Iterator<Item = &'a mut [T]> + 'a {
    let mut rest = buffer;
    tasks.iter().map(move |range| {
        let (mine, tail) = std::mem::take(&mut rest).split_at_mut(range.len() * width);
        rest = tail;
        mine
    })
}

/// One sequence's forward rows at one step: activated gates [4H], c and the output gradient [H].
pub struct CellRows<'a, T> {
    pub a: &'a [T],
    pub c: &'a [T],
    pub dh_out: &'a [T],
}

/// The cell's backward for one sequence at one step (formulas at the top): gate gradients into `da`,
/// the cell gradient carried to t - 1 into `dc_rec`. Every slice is cut to its length first so that
/// the loop has no bounds checks and vectorises.
#[inline(always)]
pub fn cell_backward<T: FastMath>(
    da: &mut [T],
    dc_rec: &mut [T],
    saved: CellRows<T>,
    dh_rec: &[T],
    c_prev: impl Fn(usize) -> T,
) {
    let hidden = dc_rec.len();
    let (a, c, dh_out, dh_rec) = (
        &saved.a[..4 * hidden],
        &saved.c[..hidden],
        &saved.dh_out[..hidden],
        &dh_rec[..hidden],
    );
    let (da_i, rest) = da[..4 * hidden].split_at_mut(hidden);
    let (da_f, rest) = rest.split_at_mut(hidden);
    let (da_g, da_o) = rest.split_at_mut(hidden);
    for j in 0..hidden {
        let (i, f, g, o) = (a[j], a[hidden + j], a[2 * hidden + j], a[3 * hidden + j]);
        let tc = c[j].fast_tanh();
        let dh = dh_out[j] + dh_rec[j];
        let dc = dh * o * (T::one() - tc * tc) + dc_rec[j];
        da_i[j] = dc * g * i * (T::one() - i);
        da_f[j] = dc * c_prev(j) * f * (T::one() - f);
        da_g[j] = dc * i * (T::one() - g * g);
        da_o[j] = dh * tc * o * (T::one() - o);
        dc_rec[j] = dc * f;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::gradcheck::{check, random};

    #[test]
    fn packing_is_time_major_over_active_prefixes() {
        let p = Packing::from_sorted_lengths(&[4, 2, 2, 1]);
        assert_eq!(p.active, [4, 3, 1, 1]);
        assert_eq!(p.offset, [0, 4, 7, 8]);
        assert_eq!(p.positions(), 9);
    }

    struct Case {
        packing: Packing,
        din: usize,
        hidden: usize,
        x: Vec<f64>,
        w_ih: Vec<f64>,
        w_hh: Vec<f64>,
        bias: Vec<f64>,
        /// The loss is sum(h * dh_out), so dh_out is its gradient w.r.t. h.
        dh_out: Vec<f64>,
    }

    impl Case {
        fn new(lengths: &[usize], din: usize, hidden: usize, seed: u64) -> Self {
            let packing = Packing::from_sorted_lengths(lengths);
            let positions = packing.positions();
            Case {
                x: random(positions * din, seed),
                w_ih: random(4 * hidden * din, seed + 1),
                w_hh: random(4 * hidden * hidden, seed + 2),
                bias: random(4 * hidden, seed + 3),
                dh_out: random(positions * hidden, seed + 4),
                packing,
                din,
                hidden,
            }
        }

        /// (gates, c, h) of a forward pass with the given inputs.
        fn forward(
            &self,
            x: &[f64],
            p: &LstmParams<f64>,
            threads: usize,
        ) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
            let (positions, hidden) = (self.packing.positions(), self.hidden);
            let (mut gates, mut c, mut h) = (
                vec![0.0; positions * 4 * hidden],
                vec![0.0; positions * hidden],
                vec![0.0; positions * hidden],
            );
            let state = LstmState {
                gates: &mut gates,
                c: &mut c,
                h: &mut h,
                w_hh_t: &mut vec![0.0; 4 * hidden * hidden],
            };
            lstm_forward(state, x, p, &self.packing, self.din, hidden, threads);
            (gates, c, h)
        }

        fn loss(&self, x: &[f64], w_ih: &[f64], w_hh: &[f64], bias: &[f64]) -> f64 {
            let (_, _, h) = self.forward(x, &LstmParams { w_ih, w_hh, bias }, 1);
            h.iter().zip(&self.dh_out).map(|(a, b)| a * b).sum()
        }

        /// [h, dx, dw_ih, dw_hh, dbias] of a forward and backward pass.
        fn run(&self, threads: usize) -> [Vec<f64>; 5] {
            let p = LstmParams {
                w_ih: &self.w_ih,
                w_hh: &self.w_hh,
                bias: &self.bias,
            };
            let (mut gates, mut c, mut h) = self.forward(&self.x, &p, threads);
            let (positions, hidden) = (self.packing.positions(), self.hidden);
            let sequences = self.packing.active.first().copied().unwrap_or(0);
            let (mut dw_ih, mut dw_hh, mut db, mut dx) = (
                vec![0.0; self.w_ih.len()],
                vec![0.0; self.w_hh.len()],
                vec![0.0; self.bias.len()],
                vec![0.0; self.x.len()],
            );
            let (mut dgates, mut h_prev, mut dh_rec, mut dc_rec) = (
                vec![0.0; positions * 4 * hidden],
                vec![0.0; positions * hidden],
                vec![0.0; sequences * hidden],
                vec![0.0; sequences * hidden],
            );
            lstm_backward(
                &mut dx,
                LstmGrads {
                    w_ih: &mut dw_ih,
                    w_hh: &mut dw_hh,
                    bias: &mut db,
                },
                LstmScratch {
                    dgates: &mut dgates,
                    h_prev: &mut h_prev,
                    dh_rec: &mut dh_rec,
                    dc_rec: &mut dc_rec,
                },
                &self.dh_out,
                &self.x,
                &LstmState {
                    gates: &mut gates,
                    c: &mut c,
                    h: &mut h,
                    w_hh_t: &mut [],
                },
                &p,
                &self.packing,
                self.din,
                hidden,
                threads,
            );
            [h, dx, dw_ih, dw_hh, db]
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        let case = Case::new(&[4, 3, 1], 3, 2, 21);
        let [_, dx, dw_ih, dw_hh, db] = case.run(1);
        let (x, w_ih, w_hh, bias) = (&case.x, &case.w_ih, &case.w_hh, &case.bias);
        check("dx", &dx, x, |v| case.loss(v, w_ih, w_hh, bias));
        check("dw_ih", &dw_ih, w_ih, |v| case.loss(x, v, w_hh, bias));
        check("dw_hh", &dw_hh, w_hh, |v| case.loss(x, w_ih, v, bias));
        check("dbias", &db, bias, |v| case.loss(x, w_ih, w_hh, v));
    }

    #[test]
    fn steps_split_over_threads_give_the_same_result() {
        // 40 sequences of lengths 9 down to 2, split into tasks of at least 8 sequences each.
        let lengths: Vec<usize> = (0..40).map(|i| 9 - i / 5).collect();
        let case = Case::new(&lengths, 5, 4, 31);
        let (one, three) = (case.run(1), case.run(3));
        for (a, b) in one.iter().flatten().zip(three.iter().flatten()) {
            assert!((a - b).abs() < 1e-12, "{a} vs {b}");
        }
    }
}
