//! PIL's bilinear resize (Pillow `Resample.c`), reproduced bit for bit: a triangle filter whose support
//! widens with the downscale factor (antialiasing), coefficients normalised per output pixel and turned
//! into 22-bit fixed point, a horizontal pass into an 8-bit image, then a vertical pass.

use super::RgbImage;

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

fn clip8(acc: i64) -> u8 {
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Resizes to `width x height` as `PIL.Image.resize((width, height), Image.BILINEAR)` does.
pub fn resize_bilinear(img: &RgbImage, width: usize, height: usize) -> RgbImage {
    if img.width == width && img.height == height {
        return img.clone();
    }
    let horizontal = coefficients(img.width, width);
    let vertical = coefficients(img.height, height);
    let half = 1i64 << (PRECISION_BITS - 1);

    // Only the input rows the vertical pass reads are resized horizontally, as Pillow does.
    let first_row = vertical.bounds[0].0;
    let last_row = vertical.bounds[height - 1].0 + vertical.bounds[height - 1].1;
    let (mid_pixels, mid_width, row_offset) = if img.width != width {
        let mut mid = vec![0u8; (last_row - first_row) * width * 3];
        for y in first_row..last_row {
            let src = &img.pixels[y * img.width * 3..][..img.width * 3];
            let dst = &mut mid[(y - first_row) * width * 3..][..width * 3];
            for (xx, ((xmin, count), w)) in horizontal
                .bounds
                .iter()
                .zip(&horizontal.weights)
                .enumerate()
            {
                for c in 0..3 {
                    let acc = (0..*count).fold(half, |acc, i| {
                        acc + i64::from(src[(xmin + i) * 3 + c]) * i64::from(w[i])
                    });
                    dst[xx * 3 + c] = clip8(acc);
                }
            }
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
    for (yy, ((ymin, count), w)) in vertical.bounds.iter().zip(&vertical.weights).enumerate() {
        let ymin = ymin - row_offset;
        for x in 0..row {
            let acc = (0..*count).fold(half, |acc, i| {
                acc + i64::from(mid_pixels[(ymin + i) * row + x]) * i64::from(w[i])
            });
            out[yy * row + x] = clip8(acc);
        }
    }
    RgbImage {
        width,
        height,
        pixels: out,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
