//! Photos in: decode a photo by its content (JPEG, PNG, WebP, GIF, BMP, TIFF, PNM, QOI, ICO; any
//! colour type, EXIF orientation applied, alpha dropped as PIL's `convert("RGB")` does) to 8-bit RGB,
//! then resize exactly like PIL's `Image.resize(..., Image.BILINEAR)` (antialiased triangle filter,
//! 8-bit fixed point), either the whole frame ("squash", the seed's Keras `load_img`) or a centre crop.
//! A JPEG far larger than the network input is decoded at a reduced DCT scale (jpeg.rs).

mod jpeg;
mod resize;

pub use resize::resize_bilinear;

use anyhow::{bail, Context, Result};
use image::{ImageDecoder, ImageFormat};
use std::io::Cursor;
use std::path::{Path, PathBuf};

/// File extensions (any case) taken as photos when a folder is given. AVIF and HEIC are listed so
/// that their files get an error that says how to convert them instead of being passed over.
pub const EXTENSIONS: [&str; 19] = [
    "jpg", "jpeg", "jpe", "jfif", "png", "webp", "gif", "bmp", "dib", "tif", "tiff", "pbm", "pgm",
    "ppm", "pnm", "qoi", "ico", "avif", "heic",
];

/// The formats decoded, recognised by their first bytes.
const FORMATS: [ImageFormat; 9] = [
    ImageFormat::Jpeg,
    ImageFormat::Png,
    ImageFormat::WebP,
    ImageFormat::Gif,
    ImageFormat::Bmp,
    ImageFormat::Tiff,
    ImageFormat::Pnm,
    ImageFormat::Qoi,
    ImageFormat::Ico,
];

/// A folder's photos (by extension), sorted by path, and its other files, which callers report;
/// with `recursive`, its subfolders' too. Hidden files and folders (names starting with ".") are
/// left out.
pub fn image_files(dir: &Path, recursive: bool) -> Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let (mut photos, mut others) = (Vec::new(), Vec::new());
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
                photos.push(path);
            } else {
                others.push(path);
            }
        }
    }
    photos.sort();
    others.sort();
    Ok((photos, others))
}

/// Says on stderr which files of a folder were left out for not being photos.
pub fn report_others(dir: &Path, others: &[PathBuf]) {
    if others.is_empty() {
        return;
    }
    let names: Vec<String> = others
        .iter()
        .take(5)
        .map(|p| p.strip_prefix(dir).unwrap_or(p).display().to_string())
        .collect();
    let more = others.len().saturating_sub(names.len());
    eprintln!(
        "note: {}: {} file{} left out, not photos by their extension: {}{}",
        dir.display(),
        others.len(),
        if others.len() == 1 { "" } else { "s" },
        names.join(", "),
        if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        }
    );
}

/// Largest accepted side in pixels; beyond it an image is treated as a decompression bomb.
pub const MAX_SIDE: u32 = 16_384;
const MAX_DECODE_BYTES: u64 = 1 << 30;

/// How many pixels decoding may hold: one photo at most `photo` (refused from its header beyond),
/// all photos being decoded at once, across threads and requests, at most `total` (a decode waits
/// for others to finish). Decoding holds up to about 10 bytes a pixel (the decoder's buffer, the
/// RGB copy, a rotation), so the defaults, 100 and 150 megapixels, fit a 2 GB service with its model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeLimits {
    pub photo: u64,
    pub total: u64,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits {
            photo: 100_000_000,
            total: 150_000_000,
        }
    }
}

/// The pixels being decoded now, against a total: `take` waits until a photo's pixels fit.
pub struct PixelBudget {
    total: u64,
    used: std::sync::Mutex<u64>,
    freed: std::sync::Condvar,
}

/// Pixels taken from a `PixelBudget`, given back when dropped.
pub struct Pixels<'a> {
    budget: &'a PixelBudget,
    count: u64,
}

impl PixelBudget {
    pub fn new(total: u64) -> Self {
        PixelBudget {
            total,
            used: std::sync::Mutex::new(0),
            freed: std::sync::Condvar::new(),
        }
    }

    /// `count` pixels (at most the total), once the photos being decoded leave room for them.
    pub fn take(&self, count: u64) -> Pixels<'_> {
        let count = count.min(self.total);
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        while *used + count > self.total {
            used = self.freed.wait(used).unwrap_or_else(|e| e.into_inner());
        }
        *used += count;
        Pixels {
            budget: self,
            count,
        }
    }
}

impl Drop for Pixels<'_> {
    fn drop(&mut self) {
        let mut used = self.budget.used.lock().unwrap_or_else(|e| e.into_inner());
        *used -= self.count;
        self.budget.freed.notify_all();
    }
}

static LIMITS: std::sync::OnceLock<(DecodeLimits, PixelBudget)> = std::sync::OnceLock::new();

/// Sets the process's decode limits (the first call wins; `decode` uses the defaults without one).
pub fn set_decode_limits(limits: DecodeLimits) {
    let _ = LIMITS.set((limits, PixelBudget::new(limits.total.max(limits.photo))));
}

fn decode_limits() -> &'static (DecodeLimits, PixelBudget) {
    LIMITS.get_or_init(|| {
        let limits = DecodeLimits::default();
        (limits, PixelBudget::new(limits.total))
    })
}

/// 8-bit RGB, row-major, `pixels[(y * width + x) * 3 + channel]`.
#[derive(Clone, Debug, PartialEq)]
pub struct RgbImage {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<u8>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Resize {
    /// The whole frame to size x size, aspect ratio not kept (the seed's preprocessing).
    #[value(
        help = "The whole frame to 224x224, aspect ratio not kept (the Keras tutorial's load_img)"
    )]
    Squash,
    /// A centre square of side floor(0.875 * min(w, h)), then resized (the ImageNet evaluation crop).
    #[value(help = "The centre square of side 0.875 * the short side, then 224x224")]
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

/// Decodes a photo to RGB, whole, its format found from its content; the error says why the bytes
/// are not a usable image.
pub fn decode(bytes: &[u8]) -> Result<RgbImage> {
    decode_with(bytes, None)
}

/// Decodes a photo for a network input of `side` x `side` pixels: as `decode`, but a JPEG at least
/// eight times as large on each side comes out at 1/2, 1/4 or 1/8 of its size, still at least four
/// times the input (the network input then differs from the full decode's by the resize's
/// rounding).
pub fn decode_for_input(bytes: &[u8], side: usize) -> Result<RgbImage> {
    decode_with(bytes, Some(side))
}

/// `decode`, or with the network input's `side`, `decode_for_input`.
fn decode_with(bytes: &[u8], side: Option<usize>) -> Result<RgbImage> {
    if bytes.is_empty() {
        bail!("empty file");
    }
    if let Some(brand) = heif_brand(bytes) {
        bail!(
            "{brand} photos need a decoder that no pure-Rust library provides yet; convert it first, e.g. `{}`",
            if brand == "AVIF" {
                "avifdec photo.avif photo.png"
            } else {
                "heif-convert photo.heic photo.jpg"
            }
        );
    }
    let mut reader = image::ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .context("cannot read the image header")?;
    let format = reader.format();
    match format {
        None => bail!(
            "not an image captioner reads (JPEG, PNG, WebP, GIF, BMP, TIFF, PNM, QOI or ICO, recognised by content)"
        ),
        Some(ImageFormat::Jpeg) if !jpeg_is_complete(bytes) => {
            bail!("truncated JPEG: no end-of-image marker after its last scan")
        }
        Some(format) if FORMATS.contains(&format) => {}
        Some(other) => bail!(
            "{} images are not supported: convert it to PNG or JPEG first (e.g. `convert photo.{} photo.png`)",
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
    let (limits, budget) = decode_limits();
    let pixels = u64::from(w) * u64::from(h);
    if pixels > limits.photo {
        bail!(
            "image is {w}x{h}, {:.1} megapixels, over the {:.1} this run decodes (--max-megapixels)",
            pixels as f64 / 1e6,
            limits.photo as f64 / 1e6
        );
    }
    let _pixels = budget.take(pixels);
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let factor = match (format, side) {
        (Some(ImageFormat::Jpeg), Some(side)) => jpeg::reduction(w as usize, h as usize, side),
        _ => 1,
    };
    if factor > 1 {
        let reduced = jpeg::decode_reduced(
            bytes,
            w as usize,
            h as usize,
            factor,
            MAX_DECODE_BYTES as usize,
        )?;
        if let Some(reduced) = reduced {
            return Ok(oriented(reduced, orientation));
        }
    }
    let mut img = image::DynamicImage::from_decoder(decoder).map_err(describe)?;
    img.apply_orientation(orientation);
    // No copy when the decoder gave 8-bit RGB already.
    Ok(from_rgb8(img.into_rgb8()))
}

fn from_rgb8(rgb: image::RgbImage) -> RgbImage {
    RgbImage {
        width: rgb.width() as usize,
        height: rgb.height() as usize,
        pixels: rgb.into_raw(),
    }
}

/// `img` turned as EXIF `orientation` says.
fn oriented(img: RgbImage, orientation: image::metadata::Orientation) -> RgbImage {
    if orientation == image::metadata::Orientation::NoTransforms {
        return img;
    }
    let (w, h) = (img.width as u32, img.height as u32);
    match image::RgbImage::from_raw(w, h, img.pixels) {
        Some(rgb) => {
            let mut dynamic = image::DynamicImage::ImageRgb8(rgb);
            dynamic.apply_orientation(orientation);
            from_rgb8(dynamic.into_rgb8())
        }
        // `decode_reduced` checked the length: unreachable, but an empty image is no panic.
        None => RgbImage {
            width: 0,
            height: 0,
            pixels: Vec::new(),
        },
    }
}

/// "HEIC" or "AVIF" for an ISO base media file whose brand says it holds such an image.
fn heif_brand(bytes: &[u8]) -> Option<&'static str> {
    let brand = bytes.get(4..12)?;
    match brand {
        b"ftypavif" | b"ftypavis" => Some("AVIF"),
        b"ftypheic" | b"ftypheix" | b"ftyphevc" | b"ftypheim" | b"ftypheis" | b"ftypmif1"
        | b"ftypmsf1" => Some("HEIC"),
        _ => None,
    }
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

    #[test]
    fn a_photo_over_the_pixel_limit_is_refused_from_its_header() {
        // A 1 x 1 PNG whose header declares 12,000 x 10,000 (120 megapixels; each side within
        // MAX_SIDE, so the pixel limit is what refuses it, before any row is decoded).
        let one = image::DynamicImage::ImageRgb8(image::RgbImage::new(1, 1));
        let mut png = encode(&one, ImageFormat::Png);
        png[16..20].copy_from_slice(&12_000u32.to_be_bytes());
        png[20..24].copy_from_slice(&10_000u32.to_be_bytes());
        let crc = crc32(&png[12..29]);
        png[29..33].copy_from_slice(&crc.to_be_bytes());
        let err = decode(&png).unwrap_err().to_string();
        assert!(
            err.contains("120.0 megapixels") && err.contains("--max-megapixels"),
            "{err}"
        );
    }

    #[test]
    fn the_pixel_budget_makes_a_decode_wait_for_room() {
        let budget = PixelBudget::new(100);
        let first = budget.take(60);
        let waited = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|scope| {
            let second = scope.spawn(|| {
                let _pixels = budget.take(60);
                waited.load(std::sync::atomic::Ordering::SeqCst)
            });
            std::thread::sleep(std::time::Duration::from_millis(100));
            waited.store(true, std::sync::atomic::Ordering::SeqCst);
            drop(first);
            assert!(
                second.join().unwrap(),
                "the second took its pixels before the first gave them back"
            );
        });
        // A photo larger than the total still runs, alone.
        let _all = budget.take(1_000);
    }

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
            .contains("not an image captioner reads"));
        let mut heic = vec![0, 0, 0, 24];
        heic.extend_from_slice(b"ftypheic\0\0\0\0mif1heic");
        let err = decode(&heic).unwrap_err().to_string();
        assert!(
            err.contains("HEIC") && err.contains("heif-convert"),
            "{err}"
        );
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

    fn encode(img: &image::DynamicImage, format: ImageFormat) -> Vec<u8> {
        let mut bytes = Vec::new();
        img.write_to(&mut Cursor::new(&mut bytes), format)
            .unwrap_or_else(|e| panic!("{format:?}: {e}"));
        bytes
    }

    /// 37 x 23 pixels of 60 colours: few enough for a GIF palette, odd sizes for row padding.
    fn test_photo() -> image::RgbImage {
        image::RgbImage::from_fn(37, 23, |x, y| {
            let k = ((x / 3) + 7 * (y / 4)) % 60;
            image::Rgb([(k * 4) as u8, (255 - k * 3) as u8, ((k * 37) % 256) as u8])
        })
    }

    #[test]
    fn the_same_pixels_in_every_lossless_format_decode_identically() {
        let photo = test_photo();
        let rgb = image::DynamicImage::ImageRgb8(photo.clone());
        let rgba = image::DynamicImage::ImageRgba8(
            image::DynamicImage::ImageRgb8(photo.clone()).to_rgba8(),
        );
        let cases = [
            (&rgb, ImageFormat::Png),
            (&rgb, ImageFormat::Bmp),
            (&rgb, ImageFormat::Tiff),
            (&rgba, ImageFormat::WebP),
            (&rgba, ImageFormat::Gif),
            (&rgb, ImageFormat::Pnm),
            (&rgb, ImageFormat::Qoi),
            (&rgba, ImageFormat::Ico),
        ];
        for (img, format) in cases {
            let decoded =
                decode(&encode(img, format)).unwrap_or_else(|e| panic!("{format:?}: {e}"));
            assert_eq!((decoded.width, decoded.height), (37, 23), "{format:?}");
            assert!(
                decoded.pixels == photo.as_raw().as_slice(),
                "{format:?}: other pixels"
            );
        }
    }

    #[test]
    fn alpha_is_dropped_as_pil_convert_rgb_does() {
        // PIL's convert("RGB") keeps the colour channels of a transparent pixel as they are.
        let rgba =
            image::RgbaImage::from_fn(4, 4, |x, _| image::Rgba([200, 100, 50, (x * 60) as u8]));
        let decoded = decode(&encode(
            &image::DynamicImage::ImageRgba8(rgba),
            ImageFormat::WebP,
        ))
        .unwrap();
        assert!(decoded.pixels.chunks(3).all(|p| p == [200, 100, 50]));
    }

    /// Refused as a bomb, before any pixel buffer is allocated.
    fn assert_bomb(bytes: &[u8], format: &str) {
        let err = format!("{:#}", decode(bytes).unwrap_err());
        assert!(err.contains("decompression bomb"), "{format}: {err}");
    }

    #[test]
    fn every_format_refuses_a_tiny_file_that_declares_a_huge_image() {
        let one = image::DynamicImage::ImageRgb8(image::RgbImage::new(1, 1));
        let huge = 40_000u32;
        // PNG: IHDR's width and height, then its CRC.
        let mut png = encode(&one, ImageFormat::Png);
        png[16..20].copy_from_slice(&huge.to_be_bytes());
        png[20..24].copy_from_slice(&huge.to_be_bytes());
        let crc = crc32(&png[12..29]);
        png[29..33].copy_from_slice(&crc.to_be_bytes());
        assert_bomb(&png, "PNG");
        // BMP: the info header's width and height.
        let mut bmp = encode(&one, ImageFormat::Bmp);
        bmp[18..22].copy_from_slice(&(huge as i32).to_le_bytes());
        bmp[22..26].copy_from_slice(&(huge as i32).to_le_bytes());
        assert_bomb(&bmp, "BMP");
        // GIF: the logical screen and the frame.
        let mut gif = encode(
            &image::DynamicImage::ImageRgba8(one.to_rgba8()),
            ImageFormat::Gif,
        );
        gif[6..8].copy_from_slice(&60_000u16.to_le_bytes());
        gif[8..10].copy_from_slice(&60_000u16.to_le_bytes());
        let frame = gif.iter().position(|&b| b == 0x2C).unwrap();
        gif[frame + 5..frame + 7].copy_from_slice(&60_000u16.to_le_bytes());
        gif[frame + 7..frame + 9].copy_from_slice(&60_000u16.to_le_bytes());
        assert_bomb(&gif, "GIF");
        // JPEG: the frame header's height and width.
        let mut jpeg = encode(&one, ImageFormat::Jpeg);
        let sof = jpeg.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
        jpeg[sof + 5..sof + 7].copy_from_slice(&60_000u16.to_be_bytes());
        jpeg[sof + 7..sof + 9].copy_from_slice(&60_000u16.to_be_bytes());
        assert_bomb(&jpeg, "JPEG");
        // TIFF: the ImageWidth and ImageLength entries (tags 256 and 257) of the first directory.
        let mut tiff = encode(&one, ImageFormat::Tiff);
        let ifd = u32::from_le_bytes(tiff[4..8].try_into().unwrap()) as usize;
        let entries = u16::from_le_bytes(tiff[ifd..ifd + 2].try_into().unwrap()) as usize;
        for e in 0..entries {
            let at = ifd + 2 + 12 * e;
            let tag = u16::from_le_bytes(tiff[at..at + 2].try_into().unwrap());
            let kind = u16::from_le_bytes(tiff[at + 2..at + 4].try_into().unwrap());
            if tag == 256 || tag == 257 {
                match kind {
                    3 => tiff[at + 8..at + 10].copy_from_slice(&60_000u16.to_le_bytes()),
                    _ => tiff[at + 8..at + 12].copy_from_slice(&huge.to_le_bytes()),
                }
            }
        }
        assert_bomb(&tiff, "TIFF");
        // PNM and QOI: their plain headers.
        assert_bomb(b"P6\n40000 40000\n255\n\0\0\0", "PNM");
        let mut qoi = encode(&one, ImageFormat::Qoi);
        // (Within QOI's own 400-megapixel limit, so that ours is what refuses it.)
        qoi[4..8].copy_from_slice(&18_000u32.to_be_bytes());
        qoi[8..12].copy_from_slice(&18_000u32.to_be_bytes());
        assert_bomb(&qoi, "QOI");
        // WebP: an extended header's canvas (24 bits a side) over a 1 x 1 lossless image.
        let webp = encode(
            &image::DynamicImage::ImageRgba8(one.to_rgba8()),
            ImageFormat::WebP,
        );
        let body = &webp[12..];
        let mut vp8x = b"VP8X".to_vec();
        vp8x.extend_from_slice(&10u32.to_le_bytes());
        vp8x.extend_from_slice(&[0x10, 0, 0, 0]);
        let side = (huge - 1).to_le_bytes();
        vp8x.extend_from_slice(&side[..3]);
        vp8x.extend_from_slice(&side[..3]);
        let mut extended = b"RIFF".to_vec();
        extended.extend_from_slice(&((4 + vp8x.len() + body.len()) as u32).to_le_bytes());
        extended.extend_from_slice(b"WEBP");
        extended.extend_from_slice(&vp8x);
        extended.extend_from_slice(body);
        assert_bomb(&extended, "WebP");
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
