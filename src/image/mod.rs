//! Photos in: decode any JPEG or PNG (any colour type, EXIF orientation applied) to 8-bit RGB, then
//! resize exactly like PIL's `Image.resize(..., Image.BILINEAR)` (antialiased triangle filter, 8-bit
//! fixed point), either the whole frame ("squash", the seed's Keras `load_img`) or a centre crop.

mod resize;

pub use resize::resize_bilinear;

use anyhow::{bail, Context, Result};
use image::ImageDecoder;
use std::io::Cursor;

/// File extensions (any case) read as photos when a folder is given.
pub const EXTENSIONS: [&str; 3] = ["jpg", "jpeg", "png"];

/// The JPEG and PNG files of a folder, sorted by path; with `recursive`, of its subfolders too.
/// Hidden files and folders (names starting with ".") are left out.
pub fn image_files(dir: &std::path::Path, recursive: bool) -> Result<Vec<std::path::PathBuf>> {
    let mut files = Vec::new();
    let mut folders = vec![dir.to_owned()];
    while let Some(folder) = folders.pop() {
        let entries = std::fs::read_dir(&folder)
            .with_context(|| format!("cannot list {}", folder.display()))?;
        for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
            let hidden = path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            if hidden {
                continue;
            }
            if path.is_dir() {
                if recursive {
                    folders.push(path);
                }
            } else if path
                .extension()
                .is_some_and(|e| EXTENSIONS.contains(&e.to_string_lossy().to_lowercase().as_str()))
            {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Largest accepted side in pixels; beyond it an image is treated as a decompression bomb.
pub const MAX_SIDE: u32 = 16_384;
const MAX_DECODE_BYTES: u64 = 1 << 30;

/// 8-bit RGB, row-major, `pixels[(y * width + x) * 3 + channel]`.
#[derive(Clone, Debug, PartialEq)]
pub struct RgbImage {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<u8>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resize {
    /// The whole frame to size x size, aspect ratio not kept (the seed's preprocessing).
    Squash,
    /// A centre square of side floor(0.875 * min(w, h)), then resized (the ImageNet evaluation crop).
    CenterCrop,
}

impl Resize {
    pub fn name(self) -> &'static str {
        match self {
            Resize::Squash => "squash",
            Resize::CenterCrop => "center-crop",
        }
    }
}

/// Decodes a JPEG or PNG to RGB; the error says why the bytes are not a usable image.
pub fn decode(bytes: &[u8]) -> Result<RgbImage> {
    if bytes.is_empty() {
        bail!("empty file");
    }
    let mut reader = image::ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .context("cannot read the image header")?;
    match reader.format() {
        None => bail!("not a JPEG or PNG image (captioner reads JPEG and PNG photos)"),
        Some(image::ImageFormat::Jpeg) if !jpeg_is_complete(bytes) => {
            bail!("truncated JPEG: no end-of-image marker after its last scan")
        }
        Some(image::ImageFormat::Jpeg | image::ImageFormat::Png) => {}
        Some(other) => bail!(
            "{} images are not supported yet: captioner reads JPEG and PNG (convert it, e.g. `convert photo.{} photo.png`)",
            format!("{other:?}").to_uppercase(),
            other.extensions_str().first().unwrap_or(&"img")
        ),
    }
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(describe)?;
    let (w, h) = decoder.dimensions();
    if w == 0 || h == 0 {
        bail!("image has no pixels ({w}x{h})");
    }
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = image::DynamicImage::from_decoder(decoder).map_err(describe)?;
    img.apply_orientation(orientation);
    let rgb = img.to_rgb8();
    Ok(RgbImage {
        width: rgb.width() as usize,
        height: rgb.height() as usize,
        pixels: rgb.into_raw(),
    })
}

/// A JPEG's last scan (FF DA) must be followed by the end-of-image marker (FF D9). The decoder
/// accepts a truncated file and fills the missing rows with grey, so this is where truncation is
/// caught. Scan data cannot contain either marker (0xFF is stuffed there), and an EXIF thumbnail's
/// markers come before the main image's last scan.
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let last_scan = bytes.windows(2).rposition(|w| w == [0xFF, 0xDA]);
    last_scan.is_some_and(|at| bytes[at..].windows(2).any(|w| w == [0xFF, 0xD9]))
}

fn describe(err: image::ImageError) -> anyhow::Error {
    match err {
        image::ImageError::Limits(_) => anyhow::anyhow!(
            "image is larger than {MAX_SIDE}x{MAX_SIDE} pixels or needs over 1 GiB to decode (refused as a possible decompression bomb)"
        ),
        other => anyhow::anyhow!("cannot decode: {other}"),
    }
}

/// The square centre crop of side floor(0.875 * min(w, h)), placed like the golden preprocessing:
/// left = ((w - c) + 1) / 2, top = ((h - c) + 1) / 2.
pub fn center_crop(img: &RgbImage) -> RgbImage {
    let side = (0.875 * img.width.min(img.height) as f64).floor().max(1.0) as usize;
    let left = (img.width - side).div_ceil(2);
    let top = (img.height - side).div_ceil(2);
    let mut pixels = Vec::with_capacity(side * side * 3);
    for y in top..top + side {
        pixels.extend_from_slice(&img.pixels[(y * img.width + left) * 3..][..side * 3]);
    }
    RgbImage {
        width: side,
        height: side,
        pixels,
    }
}

/// The network input: `size x size` RGB after the chosen resize.
pub fn to_network_input(img: &RgbImage, resize: Resize, size: usize) -> RgbImage {
    match resize {
        Resize::Squash => resize_bilinear(img, size, size),
        Resize::CenterCrop => resize_bilinear(&center_crop(img), size, size),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode_png(img: image::DynamicImage) -> Vec<u8> {
        let mut bytes = Vec::new();
        img.write_to(&mut Cursor::new(&mut bytes), image::ImageFormat::Png)
            .unwrap();
        bytes
    }

    #[test]
    fn grayscale_alpha_and_16_bit_become_rgb() {
        let gray =
            image::DynamicImage::ImageLuma8(image::GrayImage::from_pixel(5, 4, image::Luma([77])));
        let decoded = decode(&encode_png(gray)).unwrap();
        assert_eq!((decoded.width, decoded.height), (5, 4));
        assert!(decoded.pixels.iter().all(|&p| p == 77));
        let rgba = image::RgbaImage::from_pixel(3, 3, image::Rgba([10, 20, 30, 0]));
        let decoded = decode(&encode_png(image::DynamicImage::ImageRgba8(rgba))).unwrap();
        assert_eq!(&decoded.pixels[..3], &[10, 20, 30]);
        let deep = image::ImageBuffer::<image::Rgb<u16>, _>::from_pixel(
            2,
            2,
            image::Rgb([65535u16, 0, 32896]),
        );
        let decoded = decode(&encode_png(image::DynamicImage::ImageRgb16(deep))).unwrap();
        assert_eq!(&decoded.pixels[..3], &[255, 0, 128]);
    }

    #[test]
    fn unusable_bytes_get_a_reason() {
        assert_eq!(decode(b"").unwrap_err().to_string(), "empty file");
        assert!(decode(b"hello, not an image")
            .unwrap_err()
            .to_string()
            .contains("not a JPEG or PNG"));
        let png = encode_png(image::DynamicImage::ImageRgb8(image::RgbImage::new(20, 20)));
        assert!(decode(&png[..png.len() / 2]).is_err());
    }

    #[test]
    fn truncated_jpeg_is_refused() {
        let img =
            image::RgbImage::from_fn(32, 32, |x, y| image::Rgb([x as u8 * 8, y as u8 * 8, 90]));
        let mut jpeg = Vec::new();
        image::DynamicImage::ImageRgb8(img)
            .write_to(&mut Cursor::new(&mut jpeg), image::ImageFormat::Jpeg)
            .unwrap();
        assert!(decode(&jpeg).is_ok());
        let err = decode(&jpeg[..jpeg.len() - 200]).unwrap_err().to_string();
        assert!(err.contains("truncated JPEG"), "{err}");
    }

    #[test]
    fn oversized_images_are_refused() {
        // A valid PNG header claiming 20000 x 20000 pixels: refused before any pixel is decoded.
        let mut png = encode_png(image::DynamicImage::ImageRgb8(image::RgbImage::new(1, 1)));
        png[16..20].copy_from_slice(&20_000u32.to_be_bytes());
        png[20..24].copy_from_slice(&20_000u32.to_be_bytes());
        let crc = crc32(&png[12..29]);
        png[29..33].copy_from_slice(&crc.to_be_bytes());
        let err = decode(&png).unwrap_err().to_string();
        assert!(err.contains("decompression bomb"), "{err}");
    }

    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xedb8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    #[test]
    fn centre_crop_follows_the_golden_rule() {
        let img = RgbImage {
            width: 10,
            height: 7,
            pixels: (0..210).map(|i| i as u8).collect(),
        };
        let crop = center_crop(&img);
        // side = floor(0.875 * 7) = 6, left = (4 + 1) / 2 = 2, top = (1 + 1) / 2 = 1
        assert_eq!((crop.width, crop.height), (6, 6));
        assert_eq!(&crop.pixels[..3], &img.pixels[(10 + 2) * 3..][..3]);
    }
}
