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

/// `y = x W + b` for the handful of rows of a generation step (one per beam), with W stored
/// transposed, [in, out]. A matrix product with so few rows spends most of its time packing W; here
/// W is streamed once, row by row, for all rows, in column tiles whose sums stay in the L1 cache.
/// `threads` > 1 splits the columns over the rayon pool. Each output is b + x_0 W_0 + x_1 W_1 + ...
/// in that order with fused multiply-adds, whatever the tiling (and on a CPU without FMA the library's
/// exact `fma` gives the same bits, slowly).
#[allow(clippy::too_many_arguments)]
pub fn linear_forward_few_rows(
    y: &mut [f32],
    x: &[f32],
    w_t: &[f32],
    b: &[f32],
    rows: usize,
    din: usize,
    dout: usize,
    threads: usize,
) {
    const TILE: usize = 256;
    let block = dout.div_ceil(threads.max(1)).next_multiple_of(TILE);
    // Task k owns columns k * block .. of every row.
    let mut tasks: Vec<Vec<&mut [f32]>> = (0..dout.div_ceil(block)).map(|_| Vec::new()).collect();
    for y_r in y[..rows * dout].chunks_exact_mut(dout) {
        for (task, part) in tasks.iter_mut().zip(y_r.chunks_mut(block)) {
            task.push(part);
        }
    }
    let run = |(index, mut y_rows): (usize, Vec<&mut [f32]>)| {
        with_avx2!({
            let len = y_rows.first().map_or(0, |y_r| y_r.len());
            for start in (0..len).step_by(TILE) {
                let (first, width) = (index * block + start, TILE.min(len - start));
                for y_r in y_rows.iter_mut() {
                    y_r[start..][..width].copy_from_slice(&b[first..][..width]);
                }
                // Four inputs per pass over the tile: a sum is loaded and stored once per four
                // terms (added one at a time, so the order is unchanged).
                let mut i = 0;
                while i + 4 <= din {
                    let w = |k: usize| &w_t[(i + k) * dout + first..][..width];
                    let (w0, w1, w2, w3) = (w(0), w(1), w(2), w(3));
                    for (r, y_r) in y_rows.iter_mut().enumerate() {
                        let x_r = &x[r * din + i..][..4];
                        for (o, sum) in y_r[start..][..width].iter_mut().enumerate() {
                            let s = x_r[0].mul_add(w0[o], *sum);
                            let s = x_r[1].mul_add(w1[o], s);
                            let s = x_r[2].mul_add(w2[o], s);
                            *sum = x_r[3].mul_add(w3[o], s);
                        }
                    }
                    i += 4;
                }
                for i in i..din {
                    let w = &w_t[i * dout + first..][..width];
                    for (r, y_r) in y_rows.iter_mut().enumerate() {
                        let x_ri = x[r * din + i];
                        for (sum, &w) in y_r[start..][..width].iter_mut().zip(w) {
                            *sum = x_ri.mul_add(w, *sum);
                        }
                    }
                }
            }
        })
    };
    if threads > 1 {
        tasks.into_par_iter().enumerate().for_each(run);
    } else {
        tasks.into_iter().enumerate().for_each(run);
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

    #[test]
    fn few_rows_match_the_matrix_product() {
        // 600 outputs = two full tiles of 256 and a partial one, split into 1, 2 or 3 tasks;
        // 37 inputs = nine passes of four and one single input.
        let (din, dout) = (37, 600);
        let x: Vec<f32> = (0..7 * din).map(|i| (i as f32 * 0.31).sin()).collect();
        let w: Vec<f32> = (0..dout * din).map(|i| (i as f32 * 0.17).cos()).collect();
        let b: Vec<f32> = (0..dout).map(|i| i as f32 * 0.01).collect();
        let mut w_t = vec![0.0; din * dout];
        for o in 0..dout {
            for i in 0..din {
                w_t[i * dout + o] = w[o * din + i];
            }
        }
        for rows in 1..=7 {
            let mut expected = vec![0.0; rows * dout];
            linear_forward(&mut expected, &x, &w, &b, rows, din, dout, 1);
            for threads in [1, 2, 3] {
                let mut y = vec![f32::NAN; rows * dout];
                linear_forward_few_rows(&mut y, &x, &w_t, &b, rows, din, dout, threads);
                for (got, want) in y.iter().zip(&expected) {
                    assert!((got - want).abs() < 1e-4, "rows {rows} threads {threads}");
                }
            }
        }
    }
}
