//! What a new user meets first: messages that name the fix for the usual mistakes.

mod common;

use common::{captioner, scratch, stderr, synthetic_efficientnet_weights};

#[test]
fn usual_mistakes_get_messages_that_name_the_fix() {
    let dir = scratch("first-hour");
    let weights = dir.join("lite0.safetensors");
    synthetic_efficientnet_weights(&weights);
    let weights = weights.to_str().unwrap();

    // A photo's address instead of the photo.
    let url = captioner(&[
        "caption",
        "--weights",
        weights,
        "https://example.com/dog.jpg",
    ]);
    assert!(!url.status.success());
    assert!(
        stderr(&url).contains("URLs are not read; download it or pipe it: curl"),
        "{}",
        stderr(&url)
    );

    // A phone's HEIC photo, which no pure-Rust decoder reads: the error says how to convert it.
    let heic = dir.join("IMG_0001.HEIC");
    std::fs::write(&heic, b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic").unwrap();
    let run = captioner(&["caption", "--weights", weights, heic.to_str().unwrap()]);
    assert!(!run.status.success());
    assert!(
        stderr(&run).contains("HEIC photos need a decoder")
            && stderr(&run).contains("heif-convert photo.heic photo.jpg"),
        "{}",
        stderr(&run)
    );

    // A model folder that is not there.
    let missing = dir.join("nosuchdir");
    let run = captioner(&[
        "caption",
        "--model",
        missing.to_str().unwrap(),
        heic.to_str().unwrap(),
    ]);
    assert!(!run.status.success());
    assert!(
        stderr(&run).contains("no model folder at") && stderr(&run).contains("captioner train"),
        "{}",
        stderr(&run)
    );

    // A features run on a folder that is not there says so.
    let nowhere = dir.join("no-such-folder");
    let out = dir.join("f.safetensors");
    let run = captioner(&[
        "features",
        "--images",
        nowhere.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!run.status.success());
    assert!(
        stderr(&run).contains("no-such-folder: no such file or folder"),
        "{}",
        stderr(&run)
    );

    // A beam of width 0 or over 10 is refused by the argument parser with the words serve uses.
    for flag in ["--beam", "--ground-beam"] {
        for width in ["0", "100"] {
            let run = captioner(&["caption", flag, width, heic.to_str().unwrap()]);
            assert!(!run.status.success());
            let expected = format!("beam {width}: choose 1 (greedy) to 10");
            assert!(stderr(&run).contains(&expected), "{flag}: {}", stderr(&run));
        }
    }

    // Subfolders are searched on request; hidden files never.
    let album = dir.join("album");
    std::fs::create_dir_all(album.join("2024")).unwrap();
    let photo = common::repo_path("fixtures/tiny/images/1004_snow_dog.png");
    std::fs::copy(&photo, album.join("2024/dog.png")).unwrap();
    std::fs::copy(&photo, album.join("2024/.thumb.png")).unwrap();
    let flat = captioner(&["caption", "--weights", weights, album.to_str().unwrap()]);
    assert!(!flat.status.success());
    assert!(
        stderr(&flat).contains("pass --recursive to search its subfolders"),
        "{}",
        stderr(&flat)
    );
    let deep = captioner(&[
        "caption",
        "--weights",
        weights,
        "-r",
        album.to_str().unwrap(),
    ]);
    assert!(deep.status.success(), "{}", stderr(&deep));
    let stdout = String::from_utf8_lossy(&deep.stdout);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.contains("2024/dog.png\t"), "{stdout}");
}

/// The real-data tests are compiled as ignored exactly when CAPTIONER_DATA is unset, so a run without
/// the data lists them as ignored (with the reason) instead of counting them as passed.
#[test]
fn real_data_tests_are_ignored_exactly_without_the_data() {
    assert_eq!(
        cfg!(captioner_data),
        std::env::var_os("CAPTIONER_DATA").is_some(),
        "build.rs decides from CAPTIONER_DATA at build time; it must match the test run's"
    );
}
