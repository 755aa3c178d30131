//! ReLU, applied in place.
//!
//!   forward:  y = max(x, 0)
//!   backward: dx = dy * [y > 0]

use crate::engine::Real;

pub fn relu_forward<T: Real>(x: &mut [T]) {
    x.iter_mut().for_each(|v| *v = v.max(T::zero()));
}

/// `dy` becomes dx, using the forward output `y`.
pub fn relu_backward<T: Real>(dy: &mut [T], y: &[T]) {
    dy.iter_mut().zip(y).for_each(|(d, y)| {
        if *y <= T::zero() {
            *d = T::zero();
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::gradcheck::{check, random};

    #[test]
    fn gradient_matches_finite_differences() {
        let x = random(20, 7);
        let r = random(20, 8);
        let loss = |x: &[f64]| {
            let mut y = x.to_vec();
            relu_forward(&mut y);
            y.iter().zip(&r).map(|(a, b)| a * b).sum::<f64>()
        };
        let mut y = x.clone();
        relu_forward(&mut y);
        let mut d = r.clone();
        relu_backward(&mut d, &y);
        check("dx", &d, &x, loss);
    }
}
