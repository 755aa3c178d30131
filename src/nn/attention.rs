//! Soft attention over an image's regions, as in Show, Attend and Tell (Xu et al. 2015): additive
//! scoring of each region against the decoder state, a softmax over the regions, and the gated
//! context vector that the LSTM reads. Functions work on one sequence at one step (flat slices);
//! the decoder runs them row by row.
//!
//!   scores:  s_i = relu(p_i + q),   e_i = w . s_i          p [R, A]: the regions' projection,
//!                                                          q [A]: the state's projection
//!   weights: alpha = softmax(e) over the R regions
//!   context: z = sum_i alpha_i a_i                         a [R, C]: the regions' features
//!   gate:    beta = sigmoid(g),   x = beta * z             g [C]: the state's gate pre-activation
//!
//!   backward: dz = dx * beta,   dg = dx * z * beta (1 - beta)
//!             dalpha_i = dz . a_i,   de_i = alpha_i (dalpha_i - sum_j alpha_j dalpha_j)
//!             ds_i = de_i w [s_i > 0],   dp_i = ds_i,   dq = sum_i ds_i,   dw += sum_i de_i s_i

use crate::engine::math::FastMath;

const LANES: usize = 8;

/// a . b in eight lanes, so that it vectorises (a plain fold is one multiply-add at a time).
#[inline(always)]
fn dot<T: FastMath>(a: &[T], b: &[T]) -> T {
    let mut lanes = [T::zero(); LANES];
    let (a_chunks, b_chunks) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail = a_chunks
        .remainder()
        .iter()
        .zip(b_chunks.remainder())
        .fold(T::zero(), |acc, (&x, &y)| acc + x * y);
    for (x, y) in a_chunks.zip(b_chunks) {
        for ((l, &x), &y) in lanes.iter_mut().zip(x).zip(y) {
            *l += x * y;
        }
    }
    lanes.iter().fold(tail, |acc, &l| acc + l)
}

/// Scores and weights: `s` [R, A] receives relu(p_i + q), `alpha` [R] the softmax of w . s_i.
/// (These functions are inlined into their callers' `with_avx2!` loops.)
#[inline(always)]
pub fn attention_forward<T: FastMath>(s: &mut [T], alpha: &mut [T], p: &[T], q: &[T], w: &[T]) {
    let dim = q.len();
    for ((s, p), e) in s
        .chunks_exact_mut(dim)
        .zip(p.chunks_exact(dim))
        .zip(alpha.iter_mut())
    {
        for ((s, &p), &q) in s.iter_mut().zip(p).zip(q) {
            *s = (p + q).max(T::zero());
        }
        *e = dot(s, w);
    }
    let max = alpha.iter().copied().fold(T::neg_infinity(), T::max);
    let mut sum = T::zero();
    for a in alpha.iter_mut() {
        *a = (*a - max).fast_exp();
        sum += *a;
    }
    alpha.iter_mut().for_each(|a| *a = *a / sum);
}

/// From `dalpha` [R], the gradient w.r.t. the weights: `dp` [R, A] (overwritten), `dq` [A]
/// (overwritten) and `dw` [A] (added to).
#[inline(always)]
pub fn attention_backward<T: FastMath>(
    dp: &mut [T],
    dq: &mut [T],
    dw: &mut [T],
    dalpha: &[T],
    alpha: &[T],
    s: &[T],
    w: &[T],
) {
    let dim = dq.len();
    let mean: T = alpha
        .iter()
        .zip(dalpha)
        .fold(T::zero(), |acc, (&a, &d)| acc + a * d);
    dq.fill(T::zero());
    for (((dp, s), &a), &da) in dp
        .chunks_exact_mut(dim)
        .zip(s.chunks_exact(dim))
        .zip(alpha)
        .zip(dalpha)
    {
        let de = a * (da - mean);
        for ((((dp, dq), dw), &s), &w) in dp
            .iter_mut()
            .zip(dq.iter_mut())
            .zip(dw.iter_mut())
            .zip(s)
            .zip(w)
        {
            *dw += de * s;
            *dp = if s > T::zero() { de * w } else { T::zero() };
            *dq += *dp;
        }
    }
}

/// z [C] = sum_i alpha_i a_i over the regions `a` [R, C].
#[inline(always)]
pub fn context_forward<T: FastMath>(z: &mut [T], alpha: &[T], a: &[T]) {
    z.fill(T::zero());
    for (&weight, region) in alpha.iter().zip(a.chunks_exact(z.len())) {
        z.iter_mut()
            .zip(region)
            .for_each(|(z, &v)| *z += weight * v);
    }
}

/// dalpha [R] = dz . a_i (the regions are inputs, not learned: no gradient for them).
#[inline(always)]
pub fn context_backward<T: FastMath>(dalpha: &mut [T], dz: &[T], a: &[T]) {
    for (d, region) in dalpha.iter_mut().zip(a.chunks_exact(dz.len())) {
        *d = dot(dz, region);
    }
}

/// `beta` holds the gate's pre-activation g on entry and sigmoid(g) on exit; x = beta * z.
#[inline(always)]
pub fn gate_forward<T: FastMath>(x: &mut [T], beta: &mut [T], z: &[T]) {
    for ((x, b), &z) in x.iter_mut().zip(beta.iter_mut()).zip(z) {
        *b = b.fast_sigmoid();
        *x = *b * z;
    }
}

/// dz and dg (the gradient w.r.t. the gate's pre-activation), both overwritten, from dx.
#[inline(always)]
pub fn gate_backward<T: FastMath>(dz: &mut [T], dg: &mut [T], dx: &[T], beta: &[T], z: &[T]) {
    for ((((dz, dg), &dx), &b), &z) in dz.iter_mut().zip(dg.iter_mut()).zip(dx).zip(beta).zip(z) {
        *dz = dx * b;
        *dg = dx * z * b * (T::one() - b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::gradcheck::{check, random};

    const R: usize = 5;
    const A: usize = 3;
    const C: usize = 4;

    /// loss = sum(x * r): the whole attention step from (p, q, w, g) with fixed regions `a`.
    fn step(p: &[f64], q: &[f64], w: &[f64], g: &[f64], a: &[f64], r: &[f64]) -> f64 {
        let (mut s, mut alpha, mut z) = (vec![0.0; R * A], vec![0.0; R], vec![0.0; C]);
        attention_forward(&mut s, &mut alpha, p, q, w);
        context_forward(&mut z, &alpha, a);
        let (mut x, mut beta) = (vec![0.0; C], g.to_vec());
        gate_forward(&mut x, &mut beta, &z);
        x.iter().zip(r).map(|(x, r)| x * r).sum()
    }

    #[test]
    fn gradients_match_finite_differences() {
        let (p, q, w, g) = (random(R * A, 1), random(A, 2), random(A, 3), random(C, 4));
        let (a, r) = (random(R * C, 5), random(C, 6));
        // Forward, keeping what the backward reads.
        let (mut s, mut alpha, mut z) = (vec![0.0; R * A], vec![0.0; R], vec![0.0; C]);
        attention_forward(&mut s, &mut alpha, &p, &q, &w);
        assert!((alpha.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!(
            s.contains(&0.0),
            "some scores pass through relu's flat side"
        );
        context_forward(&mut z, &alpha, &a);
        let (mut x, mut beta) = (vec![0.0; C], g.clone());
        gate_forward(&mut x, &mut beta, &z);
        // Backward from dx = r.
        let (mut dz, mut dg) = (vec![0.0; C], vec![0.0; C]);
        gate_backward(&mut dz, &mut dg, &r, &beta, &z);
        let mut dalpha = vec![0.0; R];
        context_backward(&mut dalpha, &dz, &a);
        let (mut dp, mut dq, mut dw) = (vec![0.0; R * A], vec![0.0; A], vec![0.0; A]);
        attention_backward(&mut dp, &mut dq, &mut dw, &dalpha, &alpha, &s, &w);
        check("dp", &dp, &p, |v| step(v, &q, &w, &g, &a, &r));
        check("dq", &dq, &q, |v| step(&p, v, &w, &g, &a, &r));
        check("dw", &dw, &w, |v| step(&p, &q, v, &g, &a, &r));
        check("dg", &dg, &g, |v| step(&p, &q, &w, v, &a, &r));
    }
}
