//! C = alpha * op(A) @ op(B) + beta * C over row-major f32 or f64 buffers, through the `gemm` crate
//! (pure Rust, runtime SIMD dispatch, its own threading). Transposes are free: they only swap strides.

use super::Real;
use std::sync::Once;

/// `gemm` computes a row-major C as the column-major product C^T = op(B)^T op(A)^T, so our B (the
/// weights, in the layers) is the operand it calls the left-hand side. On one thread it packs that
/// operand into contiguous panels only when C has more than 48 rows; with fewer its kernel reads the
/// weights in place, one k-row after another 8 KB apart (2,048 floats). The attention decoder's
/// recurrence is made of such products (32 rows, the batch's share of one thread): a 32 x 1,280 x
/// 2,048 product ran at 21-25 GFLOP/s in place against 38-61 packed (`cargo bench --bench
/// gemm_packing`), and the training step gained a quarter (docs/BENCHMARKS.md). Packing is a copy
/// and never changes a sum, so results are bit for bit the same.
static ALWAYS_PACK_WEIGHTS: Once = Once::new();

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Transpose {
    No,
    Yes,
}

/// `op(A)` is m x k, `op(B)` is k x n, C is m x n with row stride `n`. `A` is stored row-major as
/// m x k (or k x m when transposed), likewise `B`. `threads` > 1 lets the product use the rayon pool.
#[allow(clippy::too_many_arguments)]
pub fn matmul<T: Real>(
    m: usize,
    n: usize,
    k: usize,
    alpha: T,
    a: &[T],
    ta: Transpose,
    b: &[T],
    tb: Transpose,
    beta: T,
    c: &mut [T],
    threads: usize,
) {
    assert!(
        a.len() >= m * k && b.len() >= k * n && c.len() >= m * n,
        "matmul shapes"
    );
    if m == 0 || n == 0 {
        return;
    }
    ALWAYS_PACK_WEIGHTS.call_once(|| gemm::set_lhs_packing_threshold_single_thread(0));
    if k == 0 {
        c[..m * n].iter_mut().for_each(|v| *v = *v * beta);
        return;
    }
    // (row stride, column stride) of op(A) and op(B).
    let (a_rs, a_cs) = match ta {
        Transpose::No => (k as isize, 1),
        Transpose::Yes => (1, m as isize),
    };
    let (b_rs, b_cs) = match tb {
        Transpose::No => (n as isize, 1),
        Transpose::Yes => (1, k as isize),
    };
    let parallelism = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the asserts above keep every index the strides produce inside the three slices, and
    // `c` does not alias `a` or `b` (it is a unique borrow).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            beta != T::zero(),
            a.as_ptr(),
            a_cs,
            a_rs,
            b.as_ptr(),
            b_cs,
            b_rs,
            beta,
            alpha,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// `dst` [cols, rows] = `src` [rows, cols] transposed, in square tiles so that both sides stay in cache.
pub fn transpose<T: Copy>(dst: &mut [T], src: &[T], rows: usize, cols: usize) {
    const TILE: usize = 32;
    for r0 in (0..rows).step_by(TILE) {
        for c0 in (0..cols).step_by(TILE) {
            for r in r0..(r0 + TILE).min(rows) {
                for c in c0..(c0 + TILE).min(cols) {
                    dst[c * rows + r] = src[r * cols + c];
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(
        m: usize,
        n: usize,
        k: usize,
        a: &[f32],
        ta: Transpose,
        b: &[f32],
        tb: Transpose,
    ) -> Vec<f32> {
        let at = |i: usize, p: usize| {
            if ta == Transpose::No {
                a[i * k + p]
            } else {
                a[p * m + i]
            }
        };
        let bt = |p: usize, j: usize| {
            if tb == Transpose::No {
                b[p * n + j]
            } else {
                b[j * k + p]
            }
        };
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|p| at(i, p) * bt(p, j)).sum();
            }
        }
        c
    }

    #[test]
    fn transpose_swaps_rows_and_columns() {
        let (rows, cols) = (37, 70);
        let src: Vec<usize> = (0..rows * cols).collect();
        let mut dst = vec![0; rows * cols];
        transpose(&mut dst, &src, rows, cols);
        for r in 0..rows {
            for c in 0..cols {
                assert_eq!(dst[c * rows + r], src[r * cols + c]);
            }
        }
    }

    #[test]
    fn all_transposes_match_naive_products() {
        let (m, n, k) = (7, 5, 9);
        let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.11).cos()).collect();
        for ta in [Transpose::No, Transpose::Yes] {
            for tb in [Transpose::No, Transpose::Yes] {
                let expected = naive(m, n, k, &a, ta, &b, tb);
                let mut c = vec![1.0; m * n];
                matmul(m, n, k, 2.0, &a, ta, &b, tb, 0.5, &mut c, 2);
                for (got, want) in c.iter().zip(&expected) {
                    assert!((got - (2.0 * want + 0.5)).abs() < 1e-4, "{ta:?} {tb:?}");
                }
            }
        }
    }
}
