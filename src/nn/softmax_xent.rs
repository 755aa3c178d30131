//! Softmax cross-entropy over the vocabulary, fused with its gradient (as llm.c's classifier):
//! the logits buffer is overwritten with d loss / d logits.
//!
//!   loss = sum_p w_p * -log softmax(z_p)[y_p]      (w_p = 1/N: the mean, as cross-entropy training)
//!   dz_p = w_p * (softmax(z_p) - onehot(y_p))
//!   db  += sum_p dz_p          (optional: the bias gradient of the layer that produced z)
//!
//! Other weights make a policy gradient of it: self-critical training gives each position of a
//! sampled caption that caption's advantage (negative for a caption worse than its baseline).
//! `excluded` words are left out of the softmax (probability 0, no gradient): the distribution is
//! then the one the captions were sampled from, which never draws them. Without that, the score
//! function of the sampled words, E_q[grad log p], is not zero but -grad p_excluded / (1 -
//! p_excluded), and the baseline's share of every advantage pushes the excluded words up.

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

/// Rows per block of the bias-gradient partial sums. Fixed, so that the order of the sums (and their
/// last bit) does not depend on the number of threads.
pub const BIAS_BLOCK_ROWS: usize = 32;

/// The bias gradient of the layer that produced the logits, `grad[j] += sum_p dz[p, j]`, summed while
/// each row of dz is still in cache instead of in another pass over all of them. `partials` is scratch,
/// [ceil(rows / BIAS_BLOCK_ROWS), vocab].
pub struct BiasGrad<'a, T> {
    pub grad: &'a mut [T],
    pub partials: &'a mut [T],
}

/// Returns the weighted loss over the `targets.len()` rows (`weights` per row; empty: the mean) and
/// leaves the gradient in `logits`.
pub fn softmax_xent_forward_backward<T: FastMath>(
    logits: &mut [T],
    targets: &[u32],
    weights: &[T],
    excluded: &[u32],
    vocab: usize,
    bias: Option<BiasGrad<T>>,
) -> f64 {
    let rows = targets.len();
    let mean;
    let weights = if weights.is_empty() {
        mean = vec![T::one() / T::from_usize(rows).unwrap_or(T::one()); rows];
        &mean[..]
    } else {
        assert_eq!(weights.len(), rows, "one weight per target");
        weights
    };
    let row_loss = |row: &mut [T], (target, scale): (u32, T)| {
        with_avx2!({
            let max = row_max(row);
            let mut sum = exp_shifted_sum(row, max);
            for &id in excluded {
                sum = sum - row[id as usize];
                row[id as usize] = T::zero();
            }
            let p_target = row[target as usize] / sum;
            let inv = scale / sum;
            row.iter_mut().for_each(|v| *v = *v * inv);
            row[target as usize] = row[target as usize] - scale;
            -p_target.ln().to_f64().unwrap_or(f64::NAN) * scale.to_f64().unwrap_or(f64::NAN)
        })
    };
    let logits = &mut logits[..rows * vocab];
    let Some(bias) = bias else {
        let total: f64 = logits
            .par_chunks_mut(vocab)
            .zip(targets.par_iter().zip(weights))
            .with_min_len(16)
            .map(|(row, (&target, &scale))| row_loss(row, (target, scale)))
            .sum();
        return total;
    };
    let blocks = rows.div_ceil(BIAS_BLOCK_ROWS);
    let partials = &mut bias.partials[..blocks * vocab];
    let total: f64 = logits
        .par_chunks_mut(BIAS_BLOCK_ROWS * vocab)
        .zip(targets.par_chunks(BIAS_BLOCK_ROWS))
        .zip(weights.par_chunks(BIAS_BLOCK_ROWS))
        .zip(partials.par_chunks_mut(vocab))
        .map(|(((block, targets), weights), partial)| {
            partial.fill(T::zero());
            let mut loss = 0.0;
            for ((row, &target), &scale) in block.chunks_exact_mut(vocab).zip(targets).zip(weights)
            {
                loss += row_loss(row, (target, scale));
                with_avx2!(partial.iter_mut().zip(&*row).for_each(|(s, v)| *s += *v));
            }
            loss
        })
        .sum();
    // Each column adds its blocks' partial sums in block order.
    let partials = &*partials;
    bias.grad
        .par_chunks_mut(BIAS_SUM_COLUMNS)
        .enumerate()
        .for_each(|(chunk, grad)| {
            for partial in partials.chunks_exact(vocab) {
                let part = &partial[chunk * BIAS_SUM_COLUMNS..][..grad.len()];
                with_avx2!(grad.iter_mut().zip(part).for_each(|(g, v)| *g += *v));
            }
        });
    total
}

/// Columns per parallel task when the partial sums are added up.
const BIAS_SUM_COLUMNS: usize = 1024;

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
        let value = softmax_xent_forward_backward(&mut grad, &targets, &[], &[], vocab, None);
        assert!((value - loss(&z)).abs() < 1e-12);
        check("dz", &grad, &z, loss);
    }

    #[test]
    fn weighted_gradient_matches_finite_differences() {
        // A policy gradient's weights: per row, of either sign.
        let vocab = 5;
        let targets = [1u32, 4, 3, 0];
        let weights = [0.5, -0.25, 1.5, -2.0];
        let z = random(targets.len() * vocab, 17);
        let loss = |z: &[f64]| {
            let mut total = 0.0;
            for ((row, &t), &w) in z.chunks(vocab).zip(&targets).zip(&weights) {
                let mut row = row.to_vec();
                log_softmax(&mut row);
                total -= w * row[t as usize];
            }
            total
        };
        let mut grad = z.clone();
        let value = softmax_xent_forward_backward(&mut grad, &targets, &weights, &[], vocab, None);
        assert!((value - loss(&z)).abs() < 1e-12);
        check("dz", &grad, &z, loss);
    }

    #[test]
    fn excluded_words_get_no_probability_and_no_gradient() {
        // The softmax over the other words: log q_t = z_t - log sum_{j not excluded} exp z_j.
        let vocab = 6;
        let targets = [2u32, 5, 3];
        let weights = [0.7, -0.4, 1.1];
        let excluded = [0u32, 1];
        let z = random(targets.len() * vocab, 23);
        let loss = |z: &[f64]| {
            let mut total = 0.0;
            for ((row, &t), &w) in z.chunks(vocab).zip(&targets).zip(&weights) {
                let kept: f64 = (0..vocab)
                    .filter(|j| !excluded.contains(&(*j as u32)))
                    .map(|j| row[j].exp())
                    .sum();
                total -= w * (row[t as usize] - kept.ln());
            }
            total
        };
        let mut grad = z.clone();
        let value =
            softmax_xent_forward_backward(&mut grad, &targets, &weights, &excluded, vocab, None);
        assert!((value - loss(&z)).abs() < 1e-12);
        check("dz", &grad, &z, loss);
        for row in grad.chunks(vocab) {
            assert_eq!((row[0], row[1]), (0.0, 0.0));
        }
    }

    #[test]
    fn bias_gradient_is_the_column_sum_of_the_logit_gradient() {
        // Rows over several blocks, the last one partial; the bias gradient starts non-zero.
        let (rows, vocab) = (2 * BIAS_BLOCK_ROWS + 5, 1500);
        let targets: Vec<u32> = (0..rows).map(|r| (r * 37 % vocab) as u32).collect();
        let z = random(rows * vocab, 5);
        let mut plain = z.clone();
        let plain_loss = softmax_xent_forward_backward(&mut plain, &targets, &[], &[], vocab, None);
        let start = random(vocab, 6);
        let (mut grad, mut partials) = (start.clone(), vec![0.0; 3 * vocab]);
        let mut fused = z.clone();
        let bias = BiasGrad {
            grad: &mut grad,
            partials: &mut partials,
        };
        let fused_loss =
            softmax_xent_forward_backward(&mut fused, &targets, &[], &[], vocab, Some(bias));
        assert!((fused_loss - plain_loss).abs() < 1e-12);
        assert_eq!(fused, plain);
        for j in 0..vocab {
            let column: f64 = (0..rows).map(|r| plain[r * vocab + j]).sum();
            assert!((grad[j] - start[j] - column).abs() < 1e-12, "column {j}");
        }
    }
}
