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
    let file = captioner::features::Features::load(&features).unwrap();
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
