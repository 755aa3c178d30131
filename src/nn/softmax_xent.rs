//! Softmax cross-entropy over the vocabulary, fused with its gradient (as llm.c's classifier):
//! the logits buffer is overwritten with d loss / d logits.
//!
//!   loss = (1/N) sum_p -log softmax(z_p)[y_p]
//!   dz_p = (softmax(z_p) - onehot(y_p)) / N

use crate::engine::math::FastMath;
use crate::engine::Real;
use crate::with_avx2;
use rayon::prelude::*;

const LANES: usize = 8;

/// Max of a row, eight lanes at a time so it vectorises.
#[inline(always)]
fn row_max<T: Real>(row: &[T]) -> T {
    let mut lanes = [T::neg_infinity(); LANES];
    let mut chunks = row.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (m, &v) in lanes.iter_mut().zip(chunk) {
            *m = if v > *m { v } else { *m };
        }
    }
    let tail = chunks
        .remainder()
        .iter()
        .fold(T::neg_infinity(), |m, &v| m.max(v));
    lanes.iter().fold(tail, |m, &v| m.max(v))
}

/// Replaces each value by exp(value - max) and returns their sum.
#[inline(always)]
fn exp_shifted_sum<T: FastMath>(row: &mut [T], max: T) -> T {
    let mut lanes = [T::zero(); LANES];
    let mut chunks = row.chunks_exact_mut(LANES);
    for chunk in &mut chunks {
        for (s, v) in lanes.iter_mut().zip(chunk.iter_mut()) {
            *v = (*v - max).fast_exp();
            *s += *v;
        }
    }
    let mut sum = lanes.iter().fold(T::zero(), |a, &b| a + b);
    for v in chunks.into_remainder() {
        *v = (*v - max).fast_exp();
        sum += *v;
    }
    sum
}

/// Returns the mean loss over the `targets.len()` rows and leaves the gradient in `logits`.
pub fn softmax_xent_forward_backward<T: FastMath>(
    logits: &mut [T],
    targets: &[u32],
    vocab: usize,
) -> f64 {
    let scale = T::one() / T::from_usize(targets.len()).unwrap_or(T::one());
    let total: f64 = logits[..targets.len() * vocab]
        .par_chunks_mut(vocab)
        .zip(targets.par_iter())
        .with_min_len(16)
        .map(|(row, &target)| {
            with_avx2!({
                let max = row_max(row);
                let sum = exp_shifted_sum(row, max);
                let p_target = row[target as usize] / sum;
                let inv = scale / sum;
                row.iter_mut().for_each(|v| *v = *v * inv);
                row[target as usize] = row[target as usize] - scale;
                -p_target.ln().to_f64().unwrap_or(f64::NAN)
            })
        })
        .sum();
    total / targets.len() as f64
}

/// Log-probabilities of a row, in place (for evaluation and generation).
pub fn log_softmax<T: FastMath>(row: &mut [T]) {
    with_avx2!({
        let max = row_max(row);
        let mut lanes = [T::zero(); LANES];
        let mut chunks = row.chunks_exact(LANES);
        for chunk in &mut chunks {
            for (s, &v) in lanes.iter_mut().zip(chunk) {
                *s += (v - max).fast_exp();
            }
        }
        let tail = chunks
            .remainder()
            .iter()
            .fold(T::zero(), |s, &v| s + (v - max).fast_exp());
        let log_sum = (lanes.iter().fold(tail, |a, &b| a + b)).ln() + max;
        row.iter_mut().for_each(|v| *v = *v - log_sum);
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::gradcheck::{check, random};

    #[test]
    fn gradient_matches_finite_differences() {
        let vocab = 6;
        let targets = [2u32, 5, 0];
        let z = random(targets.len() * vocab, 31);
        let loss = |z: &[f64]| {
            let mut total = 0.0;
            for (row, &t) in z.chunks(vocab).zip(&targets) {
                let mut row = row.to_vec();
                log_softmax(&mut row);
                total -= row[t as usize];
            }
            total / targets.len() as f64
        };
        let mut grad = z.clone();
        let value = softmax_xent_forward_backward(&mut grad, &targets, vocab);
        assert!((value - loss(&z)).abs() < 1e-12);
        check("dz", &grad, &z, loss);
    }
}
