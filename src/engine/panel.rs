//! Products of a handful of rows (a generation step: one row per hypothesis) with weights packed
//! once per model into panels of 16 output columns, the f16 copy read where the CPU converts f16.
//!
//!   y[n, o] = b[o] + sum_i x[n, i] w[o, i]      (PyTorch's linear layer, x W^T + b)

use crate::engine::simd::multiply_add;
use crate::with_avx2;

/// Columns per panel of `PanelWeights`: two 8-lane vectors per row, so that four rows' sums, the
/// panel's weights and a broadcast input fit in the 16 AVX2 registers.
const PANEL: usize = 16;

/// A weight matrix laid out for `matmul_panels`: panel after panel of 16 output columns,
/// each panel [in, 16] in one piece so that it streams from memory in order; the last panel is padded
/// with zero columns.
pub struct PanelWeights {
    data: Vec<f32>,
    /// The same weights as f16 bits when every one of them is exactly an f16 (a model stored in f16,
    /// like the shipped one) and the CPU converts f16 in hardware: a generation step is bound by
    /// reading the weights, and this reads half the bytes for the same products, bit for bit.
    half: Option<Vec<u16>>,
    din: usize,
    dout: usize,
}

impl PanelWeights {
    /// From `weight(o, i)`, the weight from input i to output o.
    pub fn new(dout: usize, din: usize, weight: impl Fn(usize, usize) -> f32) -> Self {
        let panels = dout.div_ceil(PANEL);
        let mut data = vec![0.0; panels * din * PANEL];
        for (p, panel) in data.chunks_exact_mut(din * PANEL).enumerate() {
            for (i, row) in panel.chunks_exact_mut(PANEL).enumerate() {
                for (j, value) in row.iter_mut().enumerate() {
                    let o = p * PANEL + j;
                    if o < dout {
                        *value = weight(o, i);
                    }
                }
            }
        }
        let exact = data
            .iter()
            .all(|&v| half::f16::from_f32(v).to_f32().to_bits() == v.to_bits());
        let half = (exact && has_f16c()).then(|| {
            data.iter()
                .map(|&v| half::f16::from_f32(v).to_bits())
                .collect()
        });
        PanelWeights {
            data,
            half,
            din,
            dout,
        }
    }

    /// Whether products read the f16 copy.
    pub fn reads_f16(&self) -> bool {
        self.half.is_some()
    }
}

fn has_f16c() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        crate::engine::simd::has_avx2() && std::is_x86_feature_detected!("f16c")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `y = x W + b` for the handful of rows of a generation step (one per beam). A matrix product with
/// so few rows spends most of its time packing W; here W comes packed once per model, and is read
/// once for every group of up to four rows (twelve with AVX-512 and f16 weights): each group's sums
/// for a panel stay in registers while all the inputs go by. Single-threaded: a generation step is
/// too short to gain from waking another thread (beam 3 on the shipped model: 1.25 ms per caption
/// on one thread, 1.6-1.8 on two). Each output is b + x_0 W_0 + x_1 W_1 + ... in that order with
/// fused multiply-adds, whatever the grouping (and on a CPU without FMA the library's exact `fma`
/// gives the same bits, slowly; WebAssembly multiplies and adds apart: `multiply_add`).
pub fn matmul_panels(y: &mut [f32], x: &[f32], w: &PanelWeights, b: &[f32], rows: usize) {
    let (din, dout) = (w.din, w.dout);
    let mut groups = y[..rows * dout].chunks_exact_mut(dout).collect::<Vec<_>>();
    #[cfg(target_arch = "x86_64")]
    if let Some(half) = &w.half {
        if has_avx512() {
            for (g, group) in groups.chunks_mut(WIDE_GROUP).enumerate() {
                // SAFETY: `half` exists only where the CPU has F16C, and this CPU has AVX-512F.
                unsafe { wide_half_panels(group, &x[WIDE_GROUP * g * din..], half, b, din) };
            }
            return;
        }
        for (g, group) in groups.chunks_mut(4).enumerate() {
            // SAFETY: `half` exists only where the CPU has AVX2, FMA and F16C.
            unsafe { half_panels(group, &x[4 * g * din..], half, b, din) };
        }
        return;
    }
    with_avx2!({
        let mut first_row = 0;
        for group in groups.chunks_mut(4) {
            let x = &x[first_row * din..];
            match group {
                [y0, y1, y2, y3] => panels([y0, y1, y2, y3], x, &w.data, b, din),
                [y0, y1, y2] => panels([y0, y1, y2], x, &w.data, b, din),
                [y0, y1] => panels([y0, y1], x, &w.data, b, din),
                [y0] => panels([y0], x, &w.data, b, din),
                _ => unreachable!("groups hold one to four rows"),
            }
            first_row += group.len();
        }
    })
}

/// `R` consecutive rows' outputs (inputs `x` [R, din]), one panel at a time.
#[inline(always)]
fn panels<const R: usize>(
    mut y: [&mut &mut [f32]; R],
    x: &[f32],
    weights: &[f32],
    b: &[f32],
    din: usize,
) {
    let len = y[0].len();
    for (start, panel) in (0..len)
        .step_by(PANEL)
        .zip(weights.chunks_exact(din * PANEL))
    {
        // Sums of fixed size throughout, so that they live in registers; the padded last panel is
        // computed in full and only its real columns are kept.
        let width = PANEL.min(len - start);
        let mut bias = [0.0f32; PANEL];
        bias[..width].copy_from_slice(&b[start..][..width]);
        let mut sums = [bias; R];
        for (i, w) in panel.as_chunks::<PANEL>().0.iter().enumerate() {
            for (r, sum) in sums.iter_mut().enumerate() {
                let x_ri = x[r * din + i];
                for (s, &w) in sum.iter_mut().zip(w) {
                    *s = multiply_add(x_ri, w, *s);
                }
            }
        }
        for (y_r, sum) in y.iter_mut().zip(sums) {
            if width == PANEL {
                y_r[start..][..PANEL].copy_from_slice(&sum);
            } else {
                y_r[start..][..width].copy_from_slice(&sum[..width]);
            }
        }
    }
}

/// `panels` over f16 weights for one group of up to four rows: each panel row's 16 weights are
/// converted to f32 in registers (exactly) and enter the same fused multiply-adds in the same order,
/// so the outputs equal the f32 path's bit for bit.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn half_panels(y: &mut [&mut [f32]], x: &[f32], weights: &[u16], b: &[f32], din: usize) {
    use std::arch::x86_64::*;
    let rows = y.len();
    let len = y[0].len();
    for (start, panel) in (0..len)
        .step_by(PANEL)
        .zip(weights.chunks_exact(din * PANEL))
    {
        let width = PANEL.min(len - start);
        let mut bias = [0.0f32; PANEL];
        bias[..width].copy_from_slice(&b[start..][..width]);
        let (b0, b1) = (
            _mm256_loadu_ps(bias.as_ptr()),
            _mm256_loadu_ps(bias.as_ptr().add(8)),
        );
        let mut sums = [[b0, b1]; 4];
        for (i, w) in panel.chunks_exact(PANEL).enumerate() {
            let w0 = _mm256_cvtph_ps(_mm_loadu_si128(w.as_ptr().cast()));
            let w1 = _mm256_cvtph_ps(_mm_loadu_si128(w.as_ptr().add(8).cast()));
            for (r, sum) in sums.iter_mut().enumerate().take(rows) {
                let x_ri = _mm256_set1_ps(x[r * din + i]);
                sum[0] = _mm256_fmadd_ps(x_ri, w0, sum[0]);
                sum[1] = _mm256_fmadd_ps(x_ri, w1, sum[1]);
            }
        }
        for (y_r, sum) in y.iter_mut().zip(sums) {
            let mut out = [0.0f32; PANEL];
            _mm256_storeu_ps(out.as_mut_ptr(), sum[0]);
            _mm256_storeu_ps(out.as_mut_ptr().add(8), sum[1]);
            y_r[start..][..width].copy_from_slice(&out[..width]);
        }
    }
}

/// Rows per pass over the weights on a CPU with AVX-512, whose 32 registers hold a sum for each
/// row and panel: twelve rows (a grounded search of width 6, two constraint groups of six) by two
/// panels, or up to six rows by four panels.
#[cfg(target_arch = "x86_64")]
const WIDE_GROUP: usize = 12;

#[cfg(target_arch = "x86_64")]
fn has_avx512() -> bool {
    std::is_x86_feature_detected!("avx512f")
}

/// `half_panels` for up to `WIDE_GROUP` rows with AVX-512, through a copy compiled for the number
/// of rows so that every sum stays in a register.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn wide_half_panels(
    y: &mut [&mut [f32]],
    x: &[f32],
    weights: &[u16],
    b: &[f32],
    din: usize,
) {
    match y.len() {
        1 => wide_half_rows::<1>(y, x, weights, b, din),
        2 => wide_half_rows::<2>(y, x, weights, b, din),
        3 => wide_half_rows::<3>(y, x, weights, b, din),
        4 => wide_half_rows::<4>(y, x, weights, b, din),
        5 => wide_half_rows::<5>(y, x, weights, b, din),
        6 => wide_half_rows::<6>(y, x, weights, b, din),
        7 => wide_half_rows::<7>(y, x, weights, b, din),
        8 => wide_half_rows::<8>(y, x, weights, b, din),
        9 => wide_half_rows::<9>(y, x, weights, b, din),
        10 => wide_half_rows::<10>(y, x, weights, b, din),
        11 => wide_half_rows::<11>(y, x, weights, b, din),
        12 => wide_half_rows::<12>(y, x, weights, b, din),
        rows => unreachable!("a group holds one to {WIDE_GROUP} rows, not {rows}"),
    }
}

/// `R` rows, several panels at a time: one broadcast input then meets several panels' weights,
/// and the panels stream from memory side by side (a few rows are bound by reading the weights).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn wide_half_rows<const R: usize>(
    y: &mut [&mut [f32]],
    x: &[f32],
    weights: &[u16],
    b: &[f32],
    din: usize,
) {
    // The rows' inputs interleaved, [din, R], so that the R values each weight row meets lie side
    // by side (from separate rows they cost a cache line each).
    let mut interleaved = vec![0.0f32; din * R];
    for (r, row) in x[..R * din].chunks_exact(din).enumerate() {
        for (i, &value) in row.iter().enumerate() {
            interleaved[i * R + r] = value;
        }
    }
    let panels: Vec<&[u16]> = weights.chunks_exact(din * PANEL).collect();
    let side_by_side = if R <= 6 { 4 } else { 2 };
    let mut groups = panels.chunks_exact(side_by_side);
    for (g, group) in groups.by_ref().enumerate() {
        let start = g * side_by_side * PANEL;
        match *group {
            [p0, p1, p2, p3] => wide_panels::<R, 4>(y, &interleaved, [p0, p1, p2, p3], start, b),
            [p0, p1] => wide_panels::<R, 2>(y, &interleaved, [p0, p1], start, b),
            _ => unreachable!("groups of four or two panels"),
        }
    }
    let first = panels.len() - groups.remainder().len();
    for (p, &panel) in groups.remainder().iter().enumerate() {
        wide_panels::<R, 1>(y, &interleaved, [panel], (first + p) * PANEL, b);
    }
}

/// `P` panels side by side for `R` interleaved rows: each broadcast input meets P panels' weights.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn wide_panels<const R: usize, const P: usize>(
    y: &mut [&mut [f32]],
    interleaved: &[f32],
    panels: [&[u16]; P],
    start: usize,
    b: &[f32],
) {
    use std::arch::x86_64::*;
    let len = y[0].len();
    let mut sums = [[_mm512_setzero_ps(); R]; P];
    for (p, sums) in sums.iter_mut().enumerate() {
        let from = start + p * PANEL;
        let width = PANEL.min(len - from);
        let mut bias = [0.0f32; PANEL];
        bias[..width].copy_from_slice(&b[from..][..width]);
        *sums = [_mm512_loadu_ps(bias.as_ptr()); R];
    }
    for (i, x) in interleaved.chunks_exact(R).enumerate() {
        let w = panels
            .map(|panel| _mm512_cvtph_ps(_mm256_loadu_si256(panel.as_ptr().add(i * PANEL).cast())));
        for (r, &x_ri) in x.iter().enumerate() {
            let x_ri = _mm512_set1_ps(x_ri);
            for p in 0..P {
                sums[p][r] = _mm512_fmadd_ps(x_ri, w[p], sums[p][r]);
            }
        }
    }
    for (p, sums) in sums.iter().enumerate() {
        let from = start + p * PANEL;
        let width = PANEL.min(len - from);
        for (y_r, &sum) in y.iter_mut().zip(sums) {
            let mut out = [0.0f32; PANEL];
            _mm512_storeu_ps(out.as_mut_ptr(), sum);
            y_r[from..][..width].copy_from_slice(&out[..width]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::linear::linear_forward;

    #[test]
    fn few_rows_match_the_matrix_product() {
        // 600 outputs = 37 full panels of 16 and a padded one; 1 to 7 rows = groups of four, three,
        // two and one.
        let (din, dout) = (37, 600);
        let x: Vec<f32> = (0..7 * din).map(|i| (i as f32 * 0.31).sin()).collect();
        let w: Vec<f32> = (0..dout * din).map(|i| (i as f32 * 0.17).cos()).collect();
        let b: Vec<f32> = (0..dout).map(|i| i as f32 * 0.01).collect();
        let packed = PanelWeights::new(dout, din, |o, i| w[o * din + i]);
        assert!(!packed.reads_f16(), "these weights are not all f16 values");
        for rows in 1..=7 {
            let mut expected = vec![0.0; rows * dout];
            linear_forward(&mut expected, &x, &w, &b, rows, din, dout, 1);
            let mut y = vec![f32::NAN; rows * dout];
            matmul_panels(&mut y, &x, &packed, &b, rows);
            for (got, want) in y.iter().zip(&expected) {
                assert!((got - want).abs() < 1e-4, "rows {rows}");
            }
        }
    }

    #[test]
    fn f16_weights_give_the_f32_products_bit_for_bit() {
        // 1 to 25 rows: every group size of both f16 kernels (up to four with AVX2, up to twelve
        // with AVX-512) and more than one group; 37 panels of 16 outputs, the last one padded, so
        // that panels taken four or two at a time leave one over.
        let (din, dout) = (37, 584);
        let x: Vec<f32> = (0..25 * din).map(|i| (i as f32 * 0.31).sin()).collect();
        let w: Vec<f32> = (0..dout * din)
            .map(|i| half::f16::from_f32((i as f32 * 0.17).cos()).to_f32())
            .collect();
        let b: Vec<f32> = (0..dout).map(|i| i as f32 * 0.01).collect();
        let packed = PanelWeights::new(dout, din, |o, i| w[o * din + i]);
        let mut as_f32 = PanelWeights::new(dout, din, |o, i| w[o * din + i]);
        as_f32.half = None;
        if !packed.reads_f16() {
            eprintln!("this CPU converts no f16 in hardware: only the f32 path is checked");
        }
        for rows in 1..=25 {
            let mut want = vec![f32::NAN; rows * dout];
            matmul_panels(&mut want, &x, &as_f32, &b, rows);
            let mut got = vec![f32::NAN; rows * dout];
            matmul_panels(&mut got, &x, &packed, &b, rows);
            assert!(
                got.iter()
                    .zip(&want)
                    .all(|(g, w)| g.to_bits() == w.to_bits()),
                "rows {rows}"
            );
        }
    }
}
