//! Adam (Kingma & Ba), bias-corrected, no weight decay, as Keras and PyTorch implement it.
//!
//!   m = b1 m + (1 - b1) g,   v = b2 v + (1 - b2) g^2
//!   p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)

use crate::engine::Real;
use crate::with_avx2;
use rayon::prelude::*;

/// Parameters per parallel task: large enough that scheduling is negligible.
const CHUNK: usize = 1 << 16;

#[derive(Clone, Copy, Debug)]
pub struct AdamConfig {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
}

impl Default for AdamConfig {
    /// Keras defaults (the seed's optimiser): eps 1e-7.
    fn default() -> Self {
        AdamConfig {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-7,
        }
    }
}

/// One update at step `t` (1-based) over flat parameter, gradient and moment buffers. The gradients
/// are left zeroed, ready for the next step to accumulate into: that saves the trainer a pass over
/// every parameter.
pub fn adam_update<T: Real>(
    params: &mut [T],
    grads: &mut [T],
    m: &mut [T],
    v: &mut [T],
    config: &AdamConfig,
    lr: f64,
    t: u64,
) {
    let (b1, b2) = (config.beta1, config.beta2);
    let correction1 = T::from_f64_lossy(1.0 - b1.powi(t as i32));
    let correction2 = T::from_f64_lossy(1.0 - b2.powi(t as i32));
    let (b1, b2) = (T::from_f64_lossy(b1), T::from_f64_lossy(b2));
    let (lr, eps) = (T::from_f64_lossy(lr), T::from_f64_lossy(config.eps));
    params
        .par_chunks_mut(CHUNK)
        .zip(grads.par_chunks_mut(CHUNK))
        .zip(m.par_chunks_mut(CHUNK))
        .zip(v.par_chunks_mut(CHUNK))
        .for_each(|(((p, g), m), v)| {
            with_avx2!(for (((p, g), m), v) in
                p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut())
            {
                *m = b1 * *m + (T::one() - b1) * *g;
                *v = b2 * *v + (T::one() - b2) * *g * *g;
                *p = *p - lr * (*m / correction1) / ((*v / correction2).sqrt() + eps);
                *g = T::zero();
            })
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_steps_follow_the_formula_and_leave_the_gradients_zeroed() {
        let config = AdamConfig::default();
        let mut params = vec![0.5f64, -1.0, 2.0];
        let (mut m, mut v) = (vec![0.0; 3], vec![0.0; 3]);
        let (mut want, mut want_m, mut want_v) = (params.clone(), m.clone(), v.clone());
        for (t, g) in [[0.1, -0.2, 0.0], [0.3, 0.05, -1.0]].iter().enumerate() {
            let mut grads = g.to_vec();
            let step = t as i32 + 1;
            adam_update(
                &mut params,
                &mut grads,
                &mut m,
                &mut v,
                &config,
                1e-3,
                step as u64,
            );
            assert_eq!(grads, [0.0; 3]);
            for i in 0..3 {
                want_m[i] = 0.9 * want_m[i] + 0.1 * g[i];
                want_v[i] = 0.999 * want_v[i] + 0.001 * g[i] * g[i];
                let m_hat = want_m[i] / (1.0 - 0.9f64.powi(step));
                let v_hat = want_v[i] / (1.0 - 0.999f64.powi(step));
                want[i] -= 1e-3 * m_hat / (v_hat.sqrt() + 1e-7);
            }
        }
        for (got, want) in params.iter().zip(&want) {
            assert!((got - want).abs() < 1e-15, "{got} vs {want}");
        }
    }
}
