//! Finite-difference gradient checks in f64 for the layer tests.

use crate::engine::rng::Rng;

pub fn random(n: usize, seed: u64) -> Vec<f64> {
    let mut rng = Rng::new(seed);
    (0..n).map(|_| rng.uniform() * 2.0 - 1.0).collect()
}

/// Compares `analytic` with central differences of `loss` around `at`, element by element.
pub fn check(name: &str, analytic: &[f64], at: &[f64], loss: impl Fn(&[f64]) -> f64) {
    let h = 1e-6;
    let mut probe = at.to_vec();
    for i in 0..at.len() {
        probe[i] = at[i] + h;
        let up = loss(&probe);
        probe[i] = at[i] - h;
        let down = loss(&probe);
        probe[i] = at[i];
        let numeric = (up - down) / (2.0 * h);
        let tolerance = 1e-6 * (1.0 + numeric.abs());
        assert!(
            (analytic[i] - numeric).abs() < tolerance,
            "{name}[{i}]: analytic {} vs numeric {numeric}",
            analytic[i]
        );
    }
}
