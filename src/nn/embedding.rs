//! Embedding lookup. Id 0 is padding: it never receives a gradient (Keras `mask_zero`, PyTorch
//! `padding_idx=0`).
//!
//!   forward:  y[p, :] = table[ids[p], :]
//!   backward: dtable[ids[p], :] += dy[p, :]   for ids[p] != 0

use crate::engine::Real;

pub fn embedding_forward<T: Real>(y: &mut [T], table: &[T], ids: &[u32], dim: usize) {
    for (row, &id) in y.chunks_exact_mut(dim).zip(ids) {
        row.copy_from_slice(&table[id as usize * dim..][..dim]);
    }
}

pub fn embedding_backward<T: Real>(dtable: &mut [T], dy: &[T], ids: &[u32], dim: usize) {
    for (row, &id) in dy.chunks_exact(dim).zip(ids) {
        if id != 0 {
            let dst = &mut dtable[id as usize * dim..][..dim];
            dst.iter_mut().zip(row).for_each(|(d, v)| *d += *v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::gradcheck::{check, random};

    #[test]
    fn gradient_matches_finite_differences() {
        let (vocab, dim) = (5, 3);
        let ids = [2u32, 1, 4, 2];
        let table = random(vocab * dim, 11);
        let r = random(ids.len() * dim, 12);
        let loss = |t: &[f64]| {
            let mut y = vec![0.0; ids.len() * dim];
            embedding_forward(&mut y, t, &ids, dim);
            y.iter().zip(&r).map(|(a, b)| a * b).sum::<f64>()
        };
        let mut dtable = vec![0.0; vocab * dim];
        embedding_backward(&mut dtable, &r, &ids, dim);
        check("dtable", &dtable, &table, loss);
    }

    #[test]
    fn padding_gets_no_gradient() {
        let mut dtable = vec![0.0f64; 2 * 2];
        embedding_backward(&mut dtable, &[1.0, 1.0, 1.0, 1.0], &[0, 1], 2);
        assert_eq!(dtable, [0.0, 0.0, 1.0, 1.0]);
    }
}
