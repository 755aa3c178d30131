//! Inverted dropout: at training time each value is kept with probability 1 - p and scaled by
//! 1 / (1 - p), so evaluation needs no change.
//!
//!   forward:  y = x * mask,  mask[i] = (u_i >= p) / (1 - p)
//!   backward: dx = dy * mask

use crate::engine::rng::Rng;
use crate::engine::Real;

/// Draws a fresh mask and applies it to `x` in place.
pub fn dropout_forward<T: Real>(x: &mut [T], mask: &mut [T], p: f64, rng: &mut Rng) {
    let keep = T::from_f64_lossy(1.0 / (1.0 - p));
    for (v, m) in x.iter_mut().zip(mask.iter_mut()) {
        *m = if rng.uniform() >= p { keep } else { T::zero() };
        *v = *v * *m;
    }
}

pub fn dropout_backward<T: Real>(dy: &mut [T], mask: &[T]) {
    dy.iter_mut().zip(mask).for_each(|(d, m)| *d = *d * *m);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_about_half_and_preserves_the_mean() {
        let mut x = vec![1.0f64; 10_000];
        let mut mask = vec![0.0; 10_000];
        dropout_forward(&mut x, &mut mask, 0.5, &mut Rng::new(3));
        let kept = mask.iter().filter(|&&m| m > 0.0).count();
        assert!((4_800..5_200).contains(&kept), "{kept}");
        let mean = x.iter().sum::<f64>() / x.len() as f64;
        assert!((mean - 1.0).abs() < 0.05);
        let mut dy = vec![1.0; 10_000];
        dropout_backward(&mut dy, &mask);
        assert_eq!(dy, x);
    }
}
