//! Fully connected layer, PyTorch layout (weight [out, in]).
//!
//!   forward:  y[n, o] = sum_i x[n, i] w[o, i] + b[o]          y = x W^T + b
//!   backward: dx = dy W,  dW += dy^T x,  db += sum_n dy[n, :]

use crate::engine::{matmul, Real, Transpose};
use crate::with_avx2;
use rayon::prelude::*;

#[allow(clippy::too_many_arguments)]
pub fn linear_forward<T: Real>(
    y: &mut [T],
    x: &[T],
    w: &[T],
    b: &[T],
    n: usize,
    din: usize,
    dout: usize,
    threads: usize,
) {
    matmul(
        n,
        dout,
        din,
        T::one(),
        x,
        Transpose::No,
        w,
        Transpose::Yes,
        T::zero(),
        y,
        threads,
    );
    // After the product rather than before it (as its initial value): this pass can use every thread.
    let add_bias = |row: &mut [T]| with_avx2!(row.iter_mut().zip(b).for_each(|(y, b)| *y += *b));
    if threads > 1 && n * dout >= 1 << 16 {
        y[..n * dout].par_chunks_mut(dout).for_each(add_bias);
    } else {
        y[..n * dout].chunks_exact_mut(dout).for_each(add_bias);
    }
}

/// `dx` may be `None` when the input needs no gradient, `db` when the bias gradient is summed
/// elsewhere (the output layer's, in the softmax pass).
#[allow(clippy::too_many_arguments)]
pub fn linear_backward<T: Real>(
    dx: Option<&mut [T]>,
    dw: &mut [T],
    db: Option<&mut [T]>,
    dy: &[T],
    x: &[T],
    w: &[T],
    n: usize,
    din: usize,
    dout: usize,
    threads: usize,
) {
    if let Some(dx) = dx {
        matmul(
            n,
            din,
            dout,
            T::one(),
            dy,
            Transpose::No,
            w,
            Transpose::No,
            T::zero(),
            dx,
            threads,
        );
    }
    matmul(
        dout,
        din,
        n,
        T::one(),
        dy,
        Transpose::Yes,
        x,
        Transpose::No,
        T::one(),
        dw,
        threads,
    );
    if let Some(db) = db {
        column_sums(db, &dy[..n * dout], dout, threads);
    }
}

/// `sums[j] += sum_r rows[r, j]`; wide matrices (the vocabulary projection) split their columns
/// over the rayon pool.
pub fn column_sums<T: Real>(sums: &mut [T], rows: &[T], width: usize, threads: usize) {
    const BLOCK: usize = 512;
    let add = |(block, sums): (usize, &mut [T])| {
        with_avx2!(for row in rows.chunks_exact(width) {
            let part = &row[block * BLOCK..][..sums.len()];
            sums.iter_mut().zip(part).for_each(|(g, v)| *g += *v);
        })
    };
    if threads > 1 && width > 2 * BLOCK {
        sums.par_chunks_mut(BLOCK).enumerate().for_each(add);
    } else {
        sums.chunks_mut(BLOCK).enumerate().for_each(add);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::gradcheck::{check, random};

    #[test]
    fn gradients_match_finite_differences() {
        let (n, din, dout) = (3, 4, 5);
        let x = random(n * din, 1);
        let w = random(dout * din, 2);
        let b = random(dout, 3);
        let r = random(n * dout, 4); // loss = sum(y * r), so dy = r
        let loss = |x: &[f64], w: &[f64], b: &[f64]| {
            let mut y = vec![0.0; n * dout];
            linear_forward(&mut y, x, w, b, n, din, dout, 1);
            y.iter().zip(&r).map(|(a, b)| a * b).sum::<f64>()
        };
        let (mut dx, mut dw, mut db) = (vec![0.0; n * din], vec![0.0; dout * din], vec![0.0; dout]);
        linear_backward(
            Some(&mut dx),
            &mut dw,
            Some(&mut db),
            &r,
            &x,
            &w,
            n,
            din,
            dout,
            1,
        );
        check("dx", &dx, &x, |v| loss(v, &w, &b));
        check("dw", &dw, &w, |v| loss(&x, v, &b));
        check("db", &db, &b, |v| loss(&x, &w, v));
    }
}
