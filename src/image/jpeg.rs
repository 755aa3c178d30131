//! A JPEG far larger than the network's input, decoded at a reduced DCT scale: a block's 8 x 8
//! coefficients inverse-transformed to 4 x 4, 2 x 2 or 1 x 1 pixels (jpeg-decoder), which is the
//! block's low frequencies, a smooth average of its pixels. A 12-megapixel phone photo then costs
//! the time and output memory of a 3-megapixel one, and the antialiased resize after it still
//! averages at least `MARGIN` x `MARGIN` decoded pixels per input pixel, so the network input stays
//! within the resize's rounding of the full decode's (tested below and in tests/real_data.rs).

use super::RgbImage;
use anyhow::{Context, Result};
use std::io::Cursor;

/// How many times the input side the reduced photo keeps, at least, on each side. At 2, photos
/// enlarged to 2,000 x 1,500 and decoded at 1/2 changed 11 captions of 40 (network inputs 0.31
/// levels apart on average); at 4, photos of 4,000 x 3,000 at 1/2 changed 1 of 20, as many as
/// re-encoding them as JPEG at quality 95 does.
pub const MARGIN: usize = 4;

/// The largest reduction (1, 2, 4 or 8) that leaves a `width` x `height` photo at least
/// `MARGIN * side` pixels on each side.
pub fn reduction(width: usize, height: usize, side: usize) -> usize {
    let want = MARGIN * side;
    let mut factor = 1;
    while factor < 8 && width / (2 * factor) >= want && height / (2 * factor) >= want {
        factor *= 2;
    }
    factor
}

/// The photo decoded at 1/`factor` of its `width` x `height` (sides rounded up), as RGB; `None`
/// for what this path does not convert (CMYK, 16-bit grey), which the full decode then takes. EXIF
/// orientation is the caller's, as for the full decode.
pub fn decode_reduced(
    bytes: &[u8],
    width: usize,
    height: usize,
    factor: usize,
    max_bytes: usize,
) -> Result<Option<RgbImage>> {
    let mut decoder = jpeg_decoder::Decoder::new(Cursor::new(bytes));
    decoder.set_max_decoding_buffer_size(max_bytes);
    let request = |side: usize| u16::try_from(side.div_ceil(factor)).unwrap_or(u16::MAX);
    let (w, h) = decoder
        .scale(request(width), request(height))
        .context("cannot decode: bad JPEG header")?;
    let pixels = decoder.decode().context("cannot decode the JPEG")?;
    let info = decoder.info().context("cannot decode: no JPEG frame")?;
    let (w, h) = (usize::from(w), usize::from(h));
    let pixels = match info.pixel_format {
        jpeg_decoder::PixelFormat::RGB24 => pixels,
        jpeg_decoder::PixelFormat::L8 => pixels.iter().flat_map(|&l| [l, l, l]).collect(),
        jpeg_decoder::PixelFormat::L16 | jpeg_decoder::PixelFormat::CMYK32 => return Ok(None),
    };
    if pixels.len() != w * h * 3 {
        return Ok(None);
    }
    Ok(Some(RgbImage {
        width: w,
        height: h,
        pixels,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::{decode, decode_for_input, to_network_input, Resize};

    #[test]
    fn the_reduction_keeps_four_times_the_input_on_each_side() {
        assert_eq!(reduction(500, 375, 224), 1);
        assert_eq!(reduction(2000, 1500, 224), 1);
        assert_eq!(reduction(4032, 3024, 224), 2);
        assert_eq!(reduction(8000, 6000, 224), 4);
        assert_eq!(reduction(16384, 16384, 224), 8);
        assert_eq!(reduction(16000, 800, 224), 1);
    }

    /// A smooth 3,800 x 1,900 photo-like picture (gradients and soft shapes), as a JPEG.
    fn large_jpeg(grey: bool) -> Vec<u8> {
        let (w, h) = (3800u32, 1900u32);
        let img = image::RgbImage::from_fn(w, h, |x, y| {
            let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
            let ring = ((fx - 0.4).powi(2) + (fy - 0.6).powi(2)).sqrt();
            let r = (255.0 * fx) as u8;
            let g = (255.0 * (1.0 - ring).clamp(0.0, 1.0)) as u8;
            let b = (127.0 + 120.0 * (fx * 9.0 + fy * 5.0).sin()) as u8;
            if grey {
                image::Rgb([g, g, g])
            } else {
                image::Rgb([r, g, b])
            }
        });
        let mut out = Vec::new();
        let dynamic = if grey {
            image::DynamicImage::ImageLuma8(image::DynamicImage::ImageRgb8(img).to_luma8())
        } else {
            image::DynamicImage::ImageRgb8(img)
        };
        dynamic
            .write_to(&mut Cursor::new(&mut out), image::ImageFormat::Jpeg)
            .unwrap();
        out
    }

    #[test]
    fn a_reduced_decode_gives_the_full_decodes_network_input_within_rounding() {
        for grey in [false, true] {
            let jpeg = large_jpeg(grey);
            let reduced = decode_for_input(&jpeg, 224).unwrap();
            assert_eq!(
                (reduced.width, reduced.height),
                (1900, 950),
                "decoded at 1/2"
            );
            let full = decode(&jpeg).unwrap();
            assert_eq!((full.width, full.height), (3800, 1900));
            for resize in [Resize::Squash, Resize::CenterCrop] {
                let a = to_network_input(&full, resize, 224);
                let b = to_network_input(&reduced, resize, 224);
                let diffs: Vec<i32> = a
                    .pixels
                    .iter()
                    .zip(&b.pixels)
                    .map(|(&x, &y)| (i32::from(x) - i32::from(y)).abs())
                    .collect();
                let mean = diffs.iter().sum::<i32>() as f64 / diffs.len() as f64;
                let max = diffs.iter().copied().max().unwrap_or(0);
                assert!(
                    mean < 1.0 && max <= 8,
                    "grey {grey} {resize:?}: mean {mean}, max {max}"
                );
            }
        }
    }
}
