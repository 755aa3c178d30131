//! Runtime CPU dispatch for the plain loops of the layers (the `gemm` crate dispatches its own).
//! The crate is built for baseline x86-64 (SSE2) so that the binary runs anywhere; a loop wrapped in
//! `with_avx2!` is compiled a second time with AVX2 and FMA enabled and that copy runs when the CPU
//! has them. The results are identical: wider registers do the same operations per element, and Rust
//! never fuses a multiply and an add unless asked to.

/// Evaluates `$body` through a copy compiled with AVX2 + FMA when the CPU supports them. Everything
/// the body calls must be `#[inline(always)]` (or generic and small) to be compiled into that copy.
#[macro_export]
macro_rules! with_avx2 {
    ($body:expr) => {{
        #[cfg(target_arch = "x86_64")]
        {
            #[target_feature(enable = "avx2,fma")]
            #[inline]
            unsafe fn avx2<R>(body: impl FnOnce() -> R) -> R {
                body()
            }
            if $crate::engine::simd::has_avx2() {
                // SAFETY: the CPU supports the features the copy is compiled for.
                unsafe { avx2(|| $body) }
            } else {
                $body
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            $body
        }
    }};
}

#[cfg(target_arch = "x86_64")]
pub fn has_avx2() -> bool {
    std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
}

/// `a * b + c` with one rounding (fused) where the hardware fuses it. WebAssembly has no fused
/// multiply-add: there `mul_add` is a software routine (a generation step ran 40x slower than
/// native), so the browser multiplies and adds, rounding twice; its sums then differ from native
/// ones in the last bits (docs/BENCHMARKS.md counts the captions that change).
#[inline(always)]
pub fn multiply_add(a: f32, b: f32, c: f32) -> f32 {
    #[cfg(target_arch = "wasm32")]
    {
        a * b + c
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        a.mul_add(b, c)
    }
}
