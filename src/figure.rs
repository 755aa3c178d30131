//! The attention figure of Show, Attend and Tell: the photo, then under each generated word the photo
//! lit where the decoder looked for that word. The 7x7 weights are upsampled bilinearly to the
//! photo's size (a smooth map), scaled to their maximum, and the photo is darkened where they are low.

use crate::caption::AttentionMap;
use crate::image::RgbImage;
use font8x8::UnicodeFonts;

/// Panels per row of the figure.
const COLUMNS: usize = 5;
/// Height of the label under each panel, and the text's scale (8x8 glyphs drawn 2x).
const LABEL: usize = 28;
const TEXT_SCALE: usize = 2;
const GAP: usize = 6;

/// The figure for one photo (the network-size input the encoder saw) and its caption's words.
pub fn attention_figure<S: AsRef<str>>(
    photo: &RgbImage,
    map: &AttentionMap,
    words: &[S],
) -> image::RgbImage {
    let (w, h) = (photo.width, photo.height);
    let panels = 1 + words.len();
    let rows = panels.div_ceil(COLUMNS);
    let columns = panels.min(COLUMNS);
    let width = columns * (w + GAP) + GAP;
    let height = rows * (h + LABEL + GAP) + GAP;
    let mut figure = image::RgbImage::from_pixel(width as u32, height as u32, image::Rgb([255; 3]));
    let weights = std::iter::once(None).chain(map.words.iter().map(Some));
    let labels = std::iter::once("(photo)").chain(words.iter().map(AsRef::as_ref));
    for (panel, (weights, label)) in weights.zip(labels).enumerate() {
        let (x0, y0) = (
            GAP + (panel % COLUMNS) * (w + GAP),
            GAP + (panel / COLUMNS) * (h + LABEL + GAP),
        );
        let light = weights.map(|weights| smooth_map(weights, map.height, map.width, w, h));
        for y in 0..h {
            for x in 0..w {
                let factor = light.as_ref().map_or(1.0, |l| 0.2 + 0.8 * l[y * w + x]);
                let rgb = &photo.pixels[(y * w + x) * 3..][..3];
                let pixel = image::Rgb([0, 1, 2].map(|c| (f32::from(rgb[c]) * factor) as u8));
                figure.put_pixel((x0 + x) as u32, (y0 + y) as u32, pixel);
            }
        }
        draw_text(
            &mut figure,
            label,
            x0,
            y0 + h + (LABEL - 8 * TEXT_SCALE) / 2,
            w,
        );
    }
    figure
}

/// The grid's weights upsampled to `width` x `height` (bilinear between region centres), divided by
/// their maximum.
fn smooth_map(
    weights: &[f32],
    rows: usize,
    columns: usize,
    width: usize,
    height: usize,
) -> Vec<f32> {
    let at = |r: usize, c: usize| weights[r.min(rows - 1) * columns + c.min(columns - 1)];
    let mut map = Vec::with_capacity(width * height);
    for y in 0..height {
        // The position in region units, region centres at integer + 0.5.
        let fy = ((y as f32 + 0.5) * rows as f32 / height as f32 - 0.5).max(0.0);
        let (r, ty) = (fy as usize, fy.fract());
        for x in 0..width {
            let fx = ((x as f32 + 0.5) * columns as f32 / width as f32 - 0.5).max(0.0);
            let (c, tx) = (fx as usize, fx.fract());
            let top = at(r, c) * (1.0 - tx) + at(r, c + 1) * tx;
            let bottom = at(r + 1, c) * (1.0 - tx) + at(r + 1, c + 1) * tx;
            map.push(top * (1.0 - ty) + bottom * ty);
        }
    }
    let max = map.iter().copied().fold(f32::MIN_POSITIVE, f32::max);
    map.iter_mut().for_each(|v| *v /= max);
    map
}

/// Black text from the 8x8 public-domain font, centred in `width` pixels from `x0`; characters the
/// font lacks are drawn as '?', and text too long for the panel is cut.
fn draw_text(figure: &mut image::RgbImage, text: &str, x0: usize, y0: usize, width: usize) {
    let glyph = 8 * TEXT_SCALE;
    let fits = width / glyph;
    let chars: Vec<char> = text.chars().take(fits).collect();
    let start = x0 + (width - chars.len() * glyph) / 2;
    for (i, ch) in chars.iter().enumerate() {
        let Some(rows) = font8x8::BASIC_FONTS
            .get(*ch)
            .or_else(|| font8x8::BASIC_FONTS.get('?'))
        else {
            continue;
        };
        for (gy, bits) in rows.iter().enumerate() {
            for gx in 0..8 {
                if bits & (1 << gx) == 0 {
                    continue;
                }
                for (dy, dx) in
                    (0..TEXT_SCALE).flat_map(|dy| (0..TEXT_SCALE).map(move |dx| (dy, dx)))
                {
                    let x = start + i * glyph + gx * TEXT_SCALE + dx;
                    let y = y0 + gy * TEXT_SCALE + dy;
                    figure.put_pixel(x as u32, y as u32, image::Rgb([0; 3]));
                }
            }
        }
    }
}

/// The figure as PNG bytes.
/// Writes a captioned photo's attention figure to `dir`, named after the photo's `key` (its file
/// stem; "stdin" for standard input). Nothing for a decoder without attention.
pub fn save_attention_figure(
    dir: &std::path::Path,
    key: &str,
    caption: &crate::caption::Captioned,
) -> anyhow::Result<()> {
    if let Some(map) = &caption.attention {
        let figure = attention_figure(&caption.photo, map, &caption.words);
        let stem = std::path::Path::new(key)
            .file_stem()
            .map_or("stdin".into(), |s| s.to_string_lossy());
        let path = dir.join(format!("{stem}.png"));
        crate::fsio::write_atomic(&path, &png_bytes(&figure)?)?;
    }
    Ok(())
}

pub fn png_bytes(figure: &image::RgbImage) -> anyhow::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    figure.write_to(
        &mut std::io::Cursor::new(&mut bytes),
        image::ImageFormat::Png,
    )?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_looked_at_region_stays_bright_and_the_rest_darkens() {
        let photo = RgbImage {
            width: 70,
            height: 70,
            pixels: vec![200; 70 * 70 * 3],
        };
        // All the weight on the top-left region.
        let mut weights = vec![0.0; 49];
        weights[0] = 1.0;
        let map = AttentionMap {
            height: 7,
            width: 7,
            words: vec![weights],
        };
        let figure = attention_figure(&photo, &map, &["dog"]);
        assert_eq!(figure.width() as usize, 2 * (70 + GAP) + GAP);
        assert_eq!(figure.height() as usize, 70 + LABEL + 2 * GAP);
        let panel_x = (GAP + 70 + GAP) as u32;
        let (corner, far) = (
            figure.get_pixel(panel_x + 2, GAP as u32 + 2)[0],
            figure.get_pixel(panel_x + 65, GAP as u32 + 65)[0],
        );
        assert!(corner > 190 && far < 50, "corner {corner}, far {far}");
        // The photo panel is the photo itself; the label row holds some black text.
        assert_eq!(figure.get_pixel(GAP as u32 + 30, GAP as u32 + 30)[0], 200);
        let label_y = (GAP + 70) as u32..(GAP + 70 + LABEL) as u32;
        assert!(label_y
            .flat_map(|y| (panel_x..panel_x + 70).map(move |x| (x, y)))
            .any(|(x, y)| figure.get_pixel(x, y)[0] == 0));
        assert!(png_bytes(&figure).unwrap().starts_with(b"\x89PNG"));
    }
}
