//! Every photo format end to end: the same pixels as PNG, BMP, TIFF, lossless WebP and GIF give the
//! same features and the same caption; a folder's other files are reported, not passed over in
//! silence. The shipped model with synthetic encoder weights (no download).

mod common;

use common::{fixture_setup, run_ok, stderr};
use std::io::Cursor;

#[test]
fn the_same_pixels_in_five_formats_give_one_caption_and_one_feature() {
    let (dir, weights, _) = fixture_setup("formats");
    let photos = dir.join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    // 64 x 48 pixels of 48 colours: a GIF palette holds them all.
    let pixels = image::RgbImage::from_fn(64, 48, |x, y| {
        let k = (x / 8 + 8 * (y / 8)) % 48;
        image::Rgb([(k * 5) as u8, (200 - k * 4) as u8, ((k * 53) % 256) as u8])
    });
    let rgb = image::DynamicImage::ImageRgb8(pixels.clone());
    let rgba = image::DynamicImage::ImageRgba8(rgb.to_rgba8());
    let formats = [
        ("a.png", &rgb, image::ImageFormat::Png),
        ("b.BMP", &rgb, image::ImageFormat::Bmp),
        ("c.tiff", &rgb, image::ImageFormat::Tiff),
        ("d.webp", &rgba, image::ImageFormat::WebP),
        ("e.gif", &rgba, image::ImageFormat::Gif),
    ];
    for (name, img, format) in formats {
        let mut bytes = Vec::new();
        img.write_to(&mut Cursor::new(&mut bytes), format).unwrap();
        std::fs::write(photos.join(name), bytes).unwrap();
    }
    std::fs::write(photos.join("notes.txt"), "not a photo").unwrap();
    let weights = weights.to_str().unwrap();
    let folder = photos.to_str().unwrap();

    let out = run_ok(&["caption", "--json", "--weights", weights, folder]);
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5, "five photos, the text file left out");
    for line in &lines {
        assert!(line.get("error").is_none(), "{line}");
        assert_eq!(line["tokens"], lines[0]["tokens"], "{line}");
    }
    assert!(stderr(&out).contains("notes.txt"), "{}", stderr(&out));

    let features = dir.join("f.safetensors");
    let run = run_ok(&[
        "features",
        "--images",
        folder,
        "--out",
        features.to_str().unwrap(),
        "--weights",
        weights,
        "--quiet",
    ]);
    assert!(stderr(&run).contains("notes.txt"));
    let file = captioner::features_file::Features::load(&features).unwrap();
    assert_eq!(file.ids.len(), 5);
    for i in 1..5 {
        assert!(
            file.row(i) == file.row(0),
            "{} has other features than {}",
            file.ids[i],
            file.ids[0]
        );
    }
}

/// (largest difference, mean difference) over the channels, or why the file was refused.
type Difference = Result<(u8, f64), String>;

/// Pillow's `convert("RGB")` pixels (fixtures/formats/make_formats.py) against ours, per file.
fn differences_from_pillow() -> Vec<(String, Difference)> {
    let dir = common::repo_path("fixtures/formats");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".rgb") && !n.ends_with(".py"))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let bytes = std::fs::read(dir.join(&name)).unwrap();
            let want = std::fs::read(dir.join(format!("{name}.rgb"))).unwrap();
            let got = captioner::image::decode(&bytes).map(|img| {
                assert_eq!((img.width, img.height), (32, 24), "{name}");
                let diffs: Vec<u8> = img
                    .pixels
                    .iter()
                    .zip(&want)
                    .map(|(a, b)| a.abs_diff(*b))
                    .collect();
                let mean = diffs.iter().map(|&d| f64::from(d)).sum::<f64>() / diffs.len() as f64;
                (diffs.into_iter().max().unwrap_or(0), mean)
            });
            (name, got.map_err(|e| format!("{e:#}")))
        })
        .collect()
}

#[test]
fn every_encoding_decodes_to_pillows_pixels() {
    let gray = std::fs::read(common::repo_path("fixtures/formats/gray.pgm.rgb")).unwrap();
    for (name, result) in differences_from_pillow() {
        match name.as_str() {
            // Pillow's libjpeg and the pure-Rust decoder round the inverse DCT and upsample the
            // subsampled colour differently: close, not equal.
            "progressive.jpg" | "baseline.jpg" => {
                let (largest, mean) = result.unwrap();
                assert!(largest <= 10 && mean < 1.0, "{name}: {largest} {mean}");
            }
            // Full-range 16-bit grey: Pillow clips it to white, we scale it to 8 bits.
            "gray16.png" => {
                let bytes =
                    std::fs::read(common::repo_path("fixtures/formats/gray16.png")).unwrap();
                let ours = captioner::image::decode(&bytes).unwrap();
                assert!(
                    ours.pixels == gray,
                    "{name}: the 8-bit values it was made from"
                );
            }
            // An icon holding an RGB (not RGBA) PNG, which the ICO decoder refuses: a clear error.
            "icon.ico" => {
                let err = result.unwrap_err();
                assert!(err.contains("Ico") && err.contains("RGBA"), "{name}: {err}");
            }
            _ => assert_eq!(result, Ok((0, 0.0)), "{name}: other pixels than Pillow's"),
        }
    }
}
