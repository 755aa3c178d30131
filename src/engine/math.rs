//! Branch-free exp, sigmoid and tanh that the compiler vectorises (the C library's `expf` is a call
//! per element). exp follows Cephes: e^x = 2^n e^r with n = round(x / ln 2), |r| <= ln(2)/2, and a
//! degree-6 polynomial for e^r; relative error about 2e-7 in f32. f64 uses the standard library.

use super::Real;

pub trait FastMath: Real {
    fn fast_exp(self) -> Self;

    #[inline(always)]
    fn fast_sigmoid(self) -> Self {
        Self::one() / (Self::one() + (-self).fast_exp())
    }

    #[inline(always)]
    fn fast_tanh(self) -> Self {
        let two = Self::one() + Self::one();
        two / (Self::one() + (-two * self).fast_exp()) - Self::one()
    }
}

impl FastMath for f32 {
    #[inline(always)]
    fn fast_exp(self) -> f32 {
        let x = self.clamp(-87.3, 88.3);
        // Round to nearest by the 1.5 * 2^23 trick: `round()` is a library call that blocks vectorising.
        // The sum's low mantissa bits then hold n itself.
        let shifted = x * std::f32::consts::LOG2_E + 12_582_912.0;
        let n = shifted - 12_582_912.0;
        // r = x - n ln2, with ln2 split in two parts to keep the low bits.
        let r = x - n * 0.693_359_4 + n * 2.121_944_4e-4;
        let p = 1.987_569_1e-4;
        let p = p * r + 1.398_199_9e-3;
        let p = p * r + 8.333_452e-3;
        let p = p * r + 4.166_579_6e-2;
        let p = p * r + 1.666_666_5e-1;
        let p = p * r + 0.5;
        let er = p * r * r + r + 1.0;
        // 2^n from the integer bits of `shifted`: `n as i32` would be a saturating conversion that
        // the compiler does one lane at a time.
        let scale = f32::from_bits(
            (shifted
                .to_bits()
                .wrapping_sub(0x4B40_0000)
                .wrapping_add(127))
                << 23,
        );
        er * scale
    }
}

impl FastMath for f64 {
    fn fast_exp(self) -> f64 {
        self.exp()
    }

    fn fast_sigmoid(self) -> f64 {
        1.0 / (1.0 + (-self).exp())
    }

    fn fast_tanh(self) -> f64 {
        self.tanh()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f32_exp_sigmoid_tanh_are_accurate() {
        let mut worst: f64 = 0.0;
        for i in -8000..=8000 {
            let x = i as f32 * 0.01;
            let exact = f64::from(x).exp();
            worst = worst.max(((f64::from(x.fast_exp()) - exact) / exact).abs());
            assert!(
                (f64::from(x.fast_sigmoid()) - 1.0 / (1.0 + (-f64::from(x)).exp())).abs() < 1e-6
            );
            assert!((f64::from(x.fast_tanh()) - f64::from(x).tanh()).abs() < 1e-6);
        }
        assert!(worst < 5e-7, "relative error {worst}");
        assert_eq!((-1000.0f32).fast_exp(), (-87.3f32).fast_exp());
        assert!((1000.0f32).fast_exp().is_finite());
    }
}
