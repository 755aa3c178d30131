//! The library's front door (`captioner::caption::Captioner`), as the browser and Python front
//! ends use it: the shipped model over synthetic encoder weights, its captions equal to the CLI's
//! whichever way the photo arrives.

mod common;

use captioner::caption::{CaptionOptions, Captioner};
use common::{caption_json_lines, fixture_setup, repo_path};
use std::path::PathBuf;

fn photos() -> Vec<PathBuf> {
    ["baseline.jpg", "palette.bmp", "lossy.webp", "gray16.png"]
        .iter()
        .map(|name| repo_path("fixtures/formats").join(name))
        .collect()
}

#[test]
fn a_photo_gets_the_cli_caption_from_a_path_bytes_pixels_or_a_batch() {
    let (_, weights, _) = fixture_setup("library_doors");
    let photos = photos();
    let lines = caption_json_lines(&weights, &photos);

    let captioner = Captioner::load(None, Some(&weights)).unwrap();
    assert_eq!(captioner.name, "default");
    let options = CaptionOptions {
        details: true,
        ..CaptionOptions::default()
    };
    let many = captioner.caption_many(&photos, &options);
    for ((photo, line), batched) in photos.iter().zip(&lines).zip(many) {
        let name = photo.to_str().unwrap();
        let from_path = captioner.caption_file(photo, &options).unwrap();
        // The same JSON line as `caption --json`, field for field.
        assert_eq!(
            &from_path.detailed_json(name, &captioner.model.vocab, false),
            line,
            "{name}"
        );
        let bytes = std::fs::read(photo).unwrap();
        let pixels = captioner::image::decode(&bytes).unwrap();
        for other in [
            captioner.caption(&bytes, &options).unwrap(),
            captioner.caption_image(&pixels, &options).unwrap(),
            batched.unwrap(),
        ] {
            assert_eq!(other.sentence, from_path.sentence, "{name}");
            assert_eq!(other.tokens, from_path.tokens, "{name}");
            assert_eq!(other.json(), from_path.json(), "{name}");
        }
    }
}

#[test]
fn a_bad_photo_in_a_batch_is_its_own_error_and_names_itself() {
    let (dir, weights, _) = fixture_setup("library_errors");
    let captioner = Captioner::load(None, Some(&weights)).unwrap();
    let options = CaptionOptions::default();
    let missing = dir.join("no such photo.jpg");
    let text = dir.join("notes.jpg");
    std::fs::write(&text, "not a photo").unwrap();
    let paths = vec![photos()[0].clone(), missing.clone(), text.clone()];
    let results = captioner.caption_many(&paths, &options);
    assert_eq!(results.len(), 3);
    assert!(results[0].is_ok());
    for (result, path) in results[1..].iter().zip([&missing, &text]) {
        let message = format!("{:#}", result.as_ref().err().unwrap());
        assert!(message.contains(path.to_str().unwrap()), "{message}");
    }
    let short = captioner::image::RgbImage {
        width: 4,
        height: 4,
        pixels: vec![0; 10],
    };
    let message = format!(
        "{:#}",
        captioner.caption_image(&short, &options).err().unwrap()
    );
    assert!(
        message.contains("10 bytes for an RGB image of 4 x 4"),
        "{message}"
    );
}

#[test]
fn a_model_folder_that_is_not_there_is_named() {
    let message = format!(
        "{:#}",
        Captioner::load(Some(std::path::Path::new("no/such/model")), None)
            .err()
            .unwrap()
    );
    assert!(message.contains("no/such/model"), "{message}");
}
