//! PIL's bilinear resize (Pillow `Resample.c`), reproduced bit for bit: a triangle filter whose support
//! widens with the downscale factor (antialiasing), coefficients normalised per output pixel and turned
//! into 22-bit fixed point, a horizontal pass into an 8-bit image, then a vertical pass.

use super::RgbImage;
use crate::with_avx2;

const PRECISION_BITS: u32 = 32 - 8 - 2;

/// For each output pixel: the first input index, and the fixed-point weights of the inputs it reads.
struct Coefficients {
    bounds: Vec<(usize, usize)>,
    weights: Vec<Vec<i32>>,
}

fn triangle(x: f64) -> f64 {
    let x = x.abs();
    if x < 1.0 {
        1.0 - x
    } else {
        0.0
    }
}

fn coefficients(in_size: usize, out_size: usize) -> Coefficients {
    let scale = in_size as f64 / out_size as f64;
    let filter_scale = scale.max(1.0);
    let support = filter_scale; // the triangle's support is 1
    let mut bounds = Vec::with_capacity(out_size);
    let mut weights = Vec::with_capacity(out_size);
    for xx in 0..out_size {
        let center = (xx as f64 + 0.5) * scale;
        // C's (int) cast truncates toward zero.
        let xmin = ((center - support + 0.5) as i64).max(0) as usize;
        let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
        let count = xmax.saturating_sub(xmin);
        let raw: Vec<f64> = (0..count)
            .map(|x| triangle((x as f64 + xmin as f64 - center + 0.5) / filter_scale))
            .collect();
        let total: f64 = raw.iter().sum();
        let fixed = raw
            .iter()
            .map(|&w| {
                let w = if total != 0.0 { w / total } else { w };
                let scaled = w * f64::from(1u32 << PRECISION_BITS);
                if w < 0.0 {
                    (scaled - 0.5) as i32
                } else {
                    (scaled + 0.5) as i32
                }
            })
            .collect();
        bounds.push((xmin, count));
        weights.push(fixed);
    }
    Coefficients { bounds, weights }
}

/// Pillow's sums are C ints: 255 times the weights (about 2^22 in all) plus a half stays under
/// 2^31, and integer sums do not depend on their order, so the passes below may sum in any order.
#[inline(always)]
fn clip8(acc: i32) -> u8 {
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Resizes to `width x height` as `PIL.Image.resize((width, height), Image.BILINEAR)` does.
pub fn resize_bilinear(img: &RgbImage, width: usize, height: usize) -> RgbImage {
    if img.width == width && img.height == height {
        return img.clone();
    }
    let horizontal = coefficients(img.width, width);
    let vertical = coefficients(img.height, height);
    let half = 1i32 << (PRECISION_BITS - 1);

    // Only the input rows the vertical pass reads are resized horizontally, as Pillow does.
    let first_row = vertical.bounds[0].0;
    let last_row = vertical.bounds[height - 1].0 + vertical.bounds[height - 1].1;
    let (mid_pixels, mid_width, row_offset) = if img.width != width {
        let mut mid = vec![0u8; (last_row - first_row) * width * 3];
        for y in first_row..last_row {
            let src = &img.pixels[y * img.width * 3..][..img.width * 3];
            let dst = &mut mid[(y - first_row) * width * 3..][..width * 3];
            with_avx2!(horizontal_row(src, dst, &horizontal, half));
        }
        (mid, width, first_row)
    } else {
        (img.pixels.clone(), img.width, 0)
    };
    if img.height == height {
        return RgbImage {
            width,
            height,
            pixels: mid_pixels,
        };
    }
    let mut out = vec![0u8; width * height * 3];
    let row = mid_width * 3;
    let mut sums = vec![0i32; row];
    for (yy, ((ymin, count), w)) in vertical.bounds.iter().zip(&vertical.weights).enumerate() {
        let window = &mid_pixels[(ymin - row_offset) * row..][..count * row];
        let dst = &mut out[yy * row..][..row];
        with_avx2!(vertical_row(window, w, &mut sums, dst, half));
    }
    RgbImage {
        width,
        height,
        pixels: out,
    }
}

/// One row of the horizontal pass: each output pixel's three channels summed over its inputs.
#[inline(always)]
fn horizontal_row(src: &[u8], dst: &mut [u8], coefficients: &Coefficients, half: i32) {
    let taps = coefficients.bounds.iter().zip(&coefficients.weights);
    for (out, (&(xmin, count), w)) in dst.chunks_exact_mut(3).zip(taps) {
        let window = &src[xmin * 3..][..count * 3];
        let mut sums = [half; 3];
        for (pixel, &weight) in window.chunks_exact(3).zip(w) {
            for c in 0..3 {
                sums[c] += i32::from(pixel[c]) * weight;
            }
        }
        for c in 0..3 {
            out[c] = clip8(sums[c]);
        }
    }
}

/// One output row of the vertical pass from the `weights.len()` input rows of `window`, summed
/// row by row across the whole width (`sums` is scratch of one row's length).
#[inline(always)]
fn vertical_row(window: &[u8], weights: &[i32], sums: &mut [i32], dst: &mut [u8], half: i32) {
    sums.fill(half);
    for (input_row, &weight) in window.chunks_exact(dst.len()).zip(weights) {
        for (sum, &value) in sums.iter_mut().zip(input_row) {
            *sum += i32::from(value) * weight;
        }
    }
    for (out, &sum) in dst.iter_mut().zip(sums.iter()) {
        *out = clip8(sum);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pillow's two passes written as plainly as possible: each 8-bit output of a pass is its
    /// inputs' weighted sum from a half, shifted and clipped.
    fn plain_resize(img: &RgbImage, width: usize, height: usize) -> Vec<u8> {
        let (h, v) = (
            coefficients(img.width, width),
            coefficients(img.height, height),
        );
        let half = 1i64 << (PRECISION_BITS - 1);
        let pass = |get: &dyn Fn(usize) -> u8, (first, count): (usize, usize), w: &[i32]| {
            let sum = (0..count).fold(half, |acc, i| {
                acc + i64::from(get(first + i)) * i64::from(w[i])
            });
            (sum >> PRECISION_BITS).clamp(0, 255) as u8
        };
        let mid: Vec<u8> = (0..img.height * width * 3)
            .map(|i| {
                let (y, xx, c) = (i / (width * 3), i / 3 % width, i % 3);
                let get = |x: usize| img.pixels[(y * img.width + x) * 3 + c];
                pass(&get, h.bounds[xx], &h.weights[xx])
            })
            .collect();
        (0..height * width * 3)
            .map(|i| {
                let (yy, x) = (i / (width * 3), i % (width * 3));
                let get = |y: usize| mid[y * width * 3 + x];
                pass(&get, v.bounds[yy], &v.weights[yy])
            })
            .collect()
    }

    #[test]
    fn the_passes_give_the_plain_sums() {
        for (w, h, ow, oh) in [
            (37, 23, 11, 9),
            (20, 30, 31, 17),
            (64, 48, 64, 20),
            (9, 9, 4, 9),
        ] {
            let img = RgbImage {
                width: w,
                height: h,
                pixels: (0..w * h * 3).map(|i| (i * 97 % 251) as u8).collect(),
            };
            assert_eq!(
                resize_bilinear(&img, ow, oh).pixels,
                plain_resize(&img, ow, oh),
                "{w}x{h} -> {ow}x{oh}"
            );
        }
    }

    #[test]
    fn halving_averages_pairs_and_constant_stays_constant() {
        let flat = RgbImage {
            width: 7,
            height: 5,
            pixels: vec![200; 7 * 5 * 3],
        };
        assert!(resize_bilinear(&flat, 3, 4)
            .pixels
            .iter()
            .all(|&p| p == 200));
        // 4 -> 2 wide: support 2, each output reads 3 inputs with weights (3, 3, 1) / 7 or (1, 3, 3) / 7.
        let row = RgbImage {
            width: 4,
            height: 1,
            pixels: [0u8, 80, 160, 240].iter().flat_map(|&v| [v; 3]).collect(),
        };
        let out = resize_bilinear(&row, 2, 1);
        // left: (0*3 + 80*3 + 160*1) / 7 = 57.1; right: (80*1 + 160*3 + 240*3) / 7 = 182.9
        assert_eq!((out.pixels[0], out.pixels[3]), (57, 183));
    }
}
