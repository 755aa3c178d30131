//! y = x W for a few rows and the same W many times over: the attention decoder's recurrence
//! multiplies its weights by the batch's 32 rows at every step. `matmul` (the `gemm` crate) packs W
//! into panels on every call, a quarter of a training step; here W is packed once per training step
//! and every step's product reads the panels.
//!
//! The sums are `matmul`'s bit for bit, so that a model trains to the same weights either way: the
//! crate's AVX-512 kernel sums each output over k in blocks of the depth its own `kernel_params`
//! picks, each block as one chain of fused multiply-adds from zero, added to the output after it
//! (or stored, for the first block of an overwrite). With one row the crate runs a matrix-vector
//! product instead, one chain over all of k that starts from the output itself (or from the first
//! term's product). Both are done the same way below, and `tests` holds them to `matmul`'s bits.

use super::Transpose;

/// Output columns per panel: four AVX-512 registers, as the crate's kernel (its MR).
const PANEL: usize = 64;
/// Rows per pass over a panel: six, as the crate's kernel (its NR), so that 24 sums stay in registers.
#[cfg(target_arch = "x86_64")]
const TILE: usize = 6;
/// Depths per pass over the rows: a 16 KB slice of a panel, which stays in L1 while every tile of
/// rows reads it (the sums wait in memory between slices; they are the same chains).
#[cfg(target_arch = "x86_64")]
const SLICE: usize = 64;

/// W [k, n] as panels of 64 columns, each [k, 64] in one piece (the last padded with zeros).
#[derive(Default)]
pub struct PackedWeights {
    panels: Vec<f32>,
    k: usize,
    n: usize,
}

impl PackedWeights {
    /// Whether this CPU runs the packed product (AVX-512); without it the caller uses `matmul`.
    pub fn available() -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            std::is_x86_feature_detected!("avx512f")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    }

    /// Whether `matmul_packed` takes W [k, n] on this CPU (with k <= 2 or n < 2 the crate takes
    /// other paths, whose sums are not replayed here).
    pub fn available_for(k: usize, n: usize) -> bool {
        Self::available() && k > 2 && n > 1
    }

    /// Packs W [k, n] from `w`: row-major [k, n] (`Transpose::No`), or [n, k] holding W's
    /// transpose (`Transpose::Yes`: a layer's [out, in] weights). Reuses this buffer.
    pub fn pack(&mut self, w: &[f32], k: usize, n: usize, tw: Transpose) {
        assert!(w.len() >= k * n, "packed weights: shape");
        let panels = n.div_ceil(PANEL);
        self.panels.clear();
        self.panels.resize(panels * k * PANEL, 0.0);
        (self.k, self.n) = (k, n);
        for (p, panel) in self.panels.chunks_exact_mut(k * PANEL).enumerate() {
            let (first, width) = (p * PANEL, PANEL.min(n - p * PANEL));
            match tw {
                Transpose::No => {
                    for (i, row) in panel.chunks_exact_mut(PANEL).enumerate() {
                        row[..width].copy_from_slice(&w[i * n + first..][..width]);
                    }
                }
                Transpose::Yes => {
                    // 16 of W's rows at a time, so that the 4 KB they fill stay in cache while the
                    // panel's 64 columns of `w` are read into them.
                    for start in (0..k).step_by(16) {
                        let rows = 16.min(k - start);
                        for j in 0..width {
                            let column = &w[(first + j) * k + start..][..rows];
                            for (i, &value) in column.iter().enumerate() {
                                panel[(start + i) * PANEL + j] = value;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// y [rows, n] = x [rows, k] W (+ y when `accumulate`), on the calling thread, with the bits of
/// `matmul(rows, n, k, 1, x, No, W, No, accumulate as 0/1, y, 1)`. Needs
/// `PackedWeights::available_for(k, n)`.
pub fn matmul_packed(y: &mut [f32], x: &[f32], w: &PackedWeights, rows: usize, accumulate: bool) {
    let (k, n) = (w.k, w.n);
    assert!(
        PackedWeights::available_for(k, n) && x.len() >= rows * k && y.len() >= rows * n,
        "matmul_packed: shapes or CPU"
    );
    // (Elsewhere `available_for` is false: the assertion stops it.)
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (y, accumulate);
    #[cfg(target_arch = "x86_64")]
    // SAFETY: the CPU has AVX-512F (asserted) and the asserted lengths bound every index.
    unsafe {
        if rows == 1 {
            for (p, panel) in w.panels.chunks_exact(k * PANEL).enumerate() {
                vector_panel(
                    y,
                    x,
                    panel,
                    k,
                    p * PANEL,
                    PANEL.min(n - p * PANEL),
                    accumulate,
                );
            }
            return;
        }
        let depth = depth_block(n, rows, k);
        // Each tile's rows of x over the block, interleaved [len, TILE] (as the crate packs them):
        // the six values that meet one row of weights then share a cache line.
        let tiles = rows.div_ceil(TILE);
        let mut interleaved = vec![0.0f32; tiles * TILE * depth];
        // One panel's sums for every row, [rows (to whole tiles), 64], kept between slices.
        let mut partial = vec![0.0f32; tiles * TILE * PANEL];
        for start in (0..k).step_by(depth) {
            let len = depth.min(k - start);
            for (r, row) in x[..rows * k].chunks_exact(k).enumerate() {
                let tile = &mut interleaved[r / TILE * TILE * len..][..TILE * len];
                for (i, &value) in row[start..][..len].iter().enumerate() {
                    tile[i * TILE + r % TILE] = value;
                }
            }
            let overwrite = start == 0 && !accumulate;
            for (p, panel) in w.panels.chunks_exact(k * PANEL).enumerate() {
                let panel = &panel[start * PANEL..][..len * PANEL];
                partial.fill(0.0);
                for from in (0..len).step_by(SLICE) {
                    let slice = SLICE.min(len - from);
                    let panel = &panel[from * PANEL..][..slice * PANEL];
                    for (t, sums) in partial.chunks_exact_mut(TILE * PANEL).enumerate() {
                        let x = &interleaved[(t * len + from) * TILE..][..slice * TILE];
                        let tile_rows = (rows - t * TILE).min(TILE);
                        if t == 0 {
                            tile_of::<true>(tile_rows, sums, x, panel);
                        } else {
                            tile_of::<false>(tile_rows, sums, x, panel);
                        }
                    }
                }
                let (first, width) = (p * PANEL, PANEL.min(n - p * PANEL));
                for (y, sums) in y[..rows * n]
                    .chunks_exact_mut(n)
                    .zip(partial.chunks_exact(PANEL))
                {
                    let (y, sums) = (&mut y[first..][..width], &sums[..width]);
                    if overwrite {
                        y.copy_from_slice(sums);
                    } else {
                        y.iter_mut().zip(sums).for_each(|(y, &s)| *y += s);
                    }
                }
            }
        }
    }
}

/// The depth of the crate's blocks over k for this product, as `gemm_basic_generic` picks it (its
/// matrices are W^T [n, k] times x^T [k, rows]; MR 64 and NR 6 with AVX-512, 4-byte floats).
#[cfg(target_arch = "x86_64")]
fn depth_block(n: usize, rows: usize, k: usize) -> usize {
    if n <= 64 && rows <= 64 {
        k.min(512)
    } else {
        gemm_common::cache::kernel_params(n, rows, k, PANEL, TILE, 4).kc
    }
}

/// `tile` for `rows` (1 to 6) rows; the first tile of a slice also fetches the next slice.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn tile_of<const PREFETCH: bool>(rows: usize, sums: &mut [f32], x: &[f32], panel: &[f32]) {
    match rows {
        1 => tile::<1, PREFETCH>(sums, x, panel),
        2 => tile::<2, PREFETCH>(sums, x, panel),
        3 => tile::<3, PREFETCH>(sums, x, panel),
        4 => tile::<4, PREFETCH>(sums, x, panel),
        5 => tile::<5, PREFETCH>(sums, x, panel),
        _ => tile::<TILE, PREFETCH>(sums, x, panel),
    }
}

/// R rows of x (interleaved over a slice of k) by the panel's slice, added to the rows' sums
/// `sums` [TILE, 64]: a chain of fused multiply-adds per sum, which the slices continue in order.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn tile<const R: usize, const PREFETCH: bool>(sums: &mut [f32], x: &[f32], panel: &[f32]) {
    use std::arch::x86_64::*;
    let held = sums.as_mut_ptr();
    let mut row_sums = [[_mm512_setzero_ps(); 4]; R];
    for (r, row) in row_sums.iter_mut().enumerate() {
        *row = [0, 16, 32, 48].map(|o| _mm512_loadu_ps(held.add(r * PANEL + o)));
    }
    let (x, weights) = (x.as_ptr(), panel.as_ptr());
    for i in 0..panel.len() / PANEL {
        let w = weights.add(i * PANEL);
        if PREFETCH {
            // The next slice, while this one is summed (a prefetch never faults).
            for o in [0, 16, 32, 48] {
                _mm_prefetch::<_MM_HINT_T0>(w.wrapping_add(SLICE * PANEL + o).cast());
            }
        }
        let w = [0, 16, 32, 48].map(|o| _mm512_loadu_ps(w.add(o)));
        for (r, row) in row_sums.iter_mut().enumerate() {
            let x_ri = _mm512_set1_ps(*x.add(i * TILE + r));
            for (sum, &w) in row.iter_mut().zip(&w) {
                *sum = _mm512_fmadd_ps(w, x_ri, *sum);
            }
        }
    }
    for (r, row) in row_sums.iter().enumerate() {
        for (o, &sum) in [0, 16, 32, 48].into_iter().zip(row) {
            _mm512_storeu_ps(held.add(r * PANEL + o), sum);
        }
    }
}

/// The lanes of a panel's `i`-th register that are real columns.
#[cfg(target_arch = "x86_64")]
fn lanes(width: usize, i: usize) -> u16 {
    match width.saturating_sub(16 * i) {
        0 => 0,
        w if w >= 16 => u16::MAX,
        w => (1u16 << w) - 1,
    }
}

/// One row by one panel as the crate's matrix-vector product: one chain over all of k, from y
/// (accumulate) or from the first term's product.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn vector_panel(
    y: &mut [f32],
    x: &[f32],
    panel: &[f32],
    k: usize,
    first: usize,
    width: usize,
    accumulate: bool,
) {
    use std::arch::x86_64::*;
    let masks = [0, 1, 2, 3].map(|i| lanes(width, i));
    // A narrow last panel's later lanes lie past `y`'s end: the masked loads and stores never touch
    // them, and `wrapping_add` keeps even forming such a pointer defined.
    let out = [0, 1, 2, 3].map(|i| y.as_mut_ptr().wrapping_add(first + 16 * i));
    let weights =
        |i: usize| [0, 16, 32, 48].map(|o| _mm512_loadu_ps(panel.as_ptr().add(i * PANEL + o)));
    let mut sums = if accumulate {
        [0, 1, 2, 3].map(|i| _mm512_maskz_loadu_ps(masks[i], out[i]))
    } else {
        let x_0 = _mm512_set1_ps(x[0]);
        weights(0).map(|w| _mm512_mul_ps(w, x_0))
    };
    for (i, &x_i) in x[..k].iter().enumerate().skip(usize::from(!accumulate)) {
        let x_i = _mm512_set1_ps(x_i);
        for (sum, w) in sums.iter_mut().zip(weights(i)) {
            *sum = _mm512_fmadd_ps(w, x_i, *sum);
        }
    }
    for ((out, mask), sum) in out.into_iter().zip(masks).zip(sums) {
        _mm512_mask_storeu_ps(out, mask, sum);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::matmul;

    /// Every row count a group of 32 captions steps through, at the recurrence's shapes and at odd
    /// ones (a last panel and a last tile part full), stored and accumulated: `matmul`'s bits.
    #[test]
    fn packed_products_give_the_crate_s_bits() {
        if !PackedWeights::available() {
            return;
        }
        let shapes = [
            (1280, 2048),
            (512, 1280),
            (2048, 512),
            (512, 512),
            (700, 100),
            (37, 70),
        ];
        for (k, n) in shapes {
            let w: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.37).sin() * 0.05).collect();
            let w_t = {
                let mut w_t = vec![0.0; k * n];
                crate::engine::transpose(&mut w_t, &w, k, n);
                w_t
            };
            let (mut packed, mut from_transpose) = Default::default();
            PackedWeights::pack(&mut packed, &w, k, n, Transpose::No);
            PackedWeights::pack(&mut from_transpose, &w_t, k, n, Transpose::Yes);
            assert_eq!(packed.panels, from_transpose.panels, "{k} x {n}");
            for rows in [1, 2, 5, 6, 7, 13, 32] {
                let x: Vec<f32> = (0..rows * k).map(|i| (i as f32 * 0.11).cos()).collect();
                let start: Vec<f32> = (0..rows * n).map(|i| (i as f32 * 0.7).sin()).collect();
                for accumulate in [false, true] {
                    let (mut want, mut got) = (start.clone(), start.clone());
                    let beta = if accumulate { 1.0 } else { 0.0 };
                    matmul(
                        rows,
                        n,
                        k,
                        1.0,
                        &x,
                        Transpose::No,
                        &w,
                        Transpose::No,
                        beta,
                        &mut want,
                        1,
                    );
                    matmul_packed(&mut got, &x, &packed, rows, accumulate);
                    let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&got), bits(&want), "{rows} x {k} x {n}, {accumulate}");
                }
            }
        }
    }
}
