//! `captioner features` end to end on the fixture photos with synthetic EfficientNet-Lite0 weights:
//! the file format, skipping unreadable images, and resuming without recomputing.

mod common;

use captioner::features_file::Features;
use common::{captioner, repo_path, scratch, stderr, synthetic_efficientnet_weights};
use std::fs;

fn features_args<'a>(
    images: &'a std::path::Path,
    out: &'a std::path::Path,
    weights: &'a std::path::Path,
) -> Vec<&'a str> {
    vec![
        "features",
        "--images",
        images.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--weights",
        weights.to_str().unwrap(),
        "--threads",
        "2",
    ]
}

fn features(
    images: &std::path::Path,
    out: &std::path::Path,
    weights: &std::path::Path,
    extra: &[&str],
) -> std::process::Output {
    let mut args = features_args(images, out, weights);
    args.push("--quiet");
    args.extend_from_slice(extra);
    captioner(&args)
}

#[test]
fn unreadable_images_are_reported_and_the_rest_are_written() {
    let dir = scratch("features-bad");
    let weights = dir.join("lite0.safetensors");
    synthetic_efficientnet_weights(&weights);
    let images = dir.join("images");
    fs::create_dir_all(&images).unwrap();
    for entry in fs::read_dir(repo_path("fixtures/tiny/images")).unwrap() {
        let path = entry.unwrap().path();
        fs::copy(&path, images.join(path.file_name().unwrap())).unwrap();
    }
    let good = fs::read(images.join("1001_ball_grass.png")).unwrap();
    fs::write(images.join("2001_truncated.png"), &good[..good.len() / 3]).unwrap();
    fs::write(images.join("2002_empty.jpg"), b"").unwrap();
    fs::write(images.join("2003_text.jpg"), b"this is not a photo").unwrap();
    let photo =
        image::RgbImage::from_fn(64, 48, |x, y| image::Rgb([x as u8 * 4, y as u8 * 5, 120]));
    let mut jpeg = Vec::new();
    image::DynamicImage::ImageRgb8(photo)
        .write_to(
            &mut std::io::Cursor::new(&mut jpeg),
            image::ImageFormat::Jpeg,
        )
        .unwrap();
    fs::write(
        images.join("2004_truncated.jpg"),
        &jpeg[..jpeg.len() * 2 / 3],
    )
    .unwrap();

    let out = dir.join("features.safetensors");
    let run = features(&images, &out, &weights, &[]);
    assert_eq!(run.status.code(), Some(2), "{}", stderr(&run));
    let err = stderr(&run);
    assert!(err.contains("4 images failed"), "{err}");
    assert!(err.contains("2004_truncated.jpg: truncated JPEG"), "{err}");
    assert!(err.contains("2002_empty.jpg: empty file"), "{err}");
    assert!(
        err.contains("2003_text.jpg: not an image captioner reads"),
        "{err}"
    );
    assert!(err.contains("2001_truncated.png: cannot decode"), "{err}");

    let file = Features::load(&out).unwrap();
    assert_eq!(file.ids.len(), 8);
    assert_eq!(file.ids[0], "1001_ball_grass");
    assert_eq!(
        (file.encoder.as_str(), file.dim),
        ("efficientnet-lite0", 1280)
    );
    assert!(
        file.preprocessing.starts_with("squash to 224x224"),
        "{}",
        file.preprocessing
    );
    assert!(file.data.iter().all(|v| v.is_finite()));
    assert_ne!(
        file.row(0),
        file.row(1),
        "different photos, different features"
    );
}

#[test]
fn a_second_run_reuses_rows_already_computed() {
    let dir = scratch("features-resume");
    let weights = dir.join("lite0.safetensors");
    synthetic_efficientnet_weights(&weights);
    let images = repo_path("fixtures/tiny/images");
    let out = dir.join("f.safetensors");
    let first = features(
        &images,
        &out,
        &weights,
        &["--ids", "1003_box_sand", "1001_ball_grass.png"],
    );
    assert!(first.status.success(), "{}", stderr(&first));
    let subset = Features::load(&out).unwrap();
    assert_eq!(subset.ids, ["1003_box_sand", "1001_ball_grass"]);

    // An interrupted run leaves only the checkpoint: the next run starts from it.
    fs::rename(&out, dir.join("f.safetensors.partial")).unwrap();
    let second = features(&images, &out, &weights, &[]);
    assert!(second.status.success(), "{}", stderr(&second));
    let stdout = String::from_utf8_lossy(&second.stdout);
    assert!(
        stdout.contains("8 images") && stdout.contains("(6 computed, 2 reused)"),
        "{stdout}"
    );
    assert!(!dir.join("f.safetensors.partial").exists());
    let all = Features::load(&out).unwrap();
    let index = all.index();
    assert_eq!(all.row(index["1003_box_sand"]), subset.row(0));

    // A later run on a subset keeps the other rows: features are never lost.
    let again = features(&images, &out, &weights, &["--ids", "1002_sun_sky"]);
    assert!(again.status.success(), "{}", stderr(&again));
    let stdout = String::from_utf8_lossy(&again.stdout);
    assert!(stdout.contains("7 kept from earlier runs"), "{stdout}");
    let kept = Features::load(&out).unwrap();
    assert_eq!(kept.ids.len(), 8);
    assert_eq!(kept.row(kept.index()["1003_box_sand"]), subset.row(0));

    // A file from another preprocessing is never mixed in.
    let mixed = features(&images, &out, &weights, &["--resize", "center-crop"]);
    assert!(!mixed.status.success());
    assert!(
        stderr(&mixed).contains("holds features from efficientnet-lite0"),
        "{}",
        stderr(&mixed)
    );
}

#[test]
fn grids_are_stored_beside_the_features_and_resume_like_them() {
    let dir = scratch("features-grid");
    let weights = dir.join("lite0.safetensors");
    synthetic_efficientnet_weights(&weights);
    let images = repo_path("fixtures/tiny/images");
    let out = dir.join("g.safetensors");
    let first = features(
        &images,
        &out,
        &weights,
        &["--grid", "--ids", "1002_sun_sky"],
    );
    assert!(first.status.success(), "{}", stderr(&first));
    fs::rename(&out, dir.join("g.safetensors.partial")).unwrap();
    let run = features(&images, &out, &weights, &["--grid"]);
    assert!(run.status.success(), "{}", stderr(&run));
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(stdout.contains("(7 computed, 1 reused)"), "{stdout}");

    let file = Features::load(&out).unwrap();
    let grid = file.grid.as_ref().expect("a grid");
    assert_eq!((grid.height, grid.width, grid.channels), (7, 7, 1280));
    assert_eq!(grid.data.len(), 8 * 49 * 1280);
    // The pooled feature is the mean of the grid's positions (the grid is stored in f16).
    for image in 0..file.ids.len() {
        let cells = grid.image(image);
        for channel in (0..1280).step_by(97) {
            let mean = (0..49)
                .map(|r| half::f16::from_bits(cells[r * 1280 + channel]).to_f32())
                .sum::<f32>()
                / 49.0;
            let pooled = file.row(image)[channel];
            assert!(
                (mean - pooled).abs() <= 2e-3 * pooled.abs().max(1.0),
                "image {image} channel {channel}: {mean} vs {pooled}"
            );
        }
    }
    // Features without grids are not mixed into a file with them, nor the other way round.
    let plain = features(&images, &out, &weights, &[]);
    assert!(!plain.status.success());
    assert!(
        stderr(&plain)
            .contains("holds features with grids and without classes; this run asks for features without grids and without classes"),
        "{}",
        stderr(&plain)
    );
}

#[test]
fn class_probabilities_are_stored_beside_the_features() {
    let dir = scratch("features-classes");
    let weights = dir.join("lite0.safetensors");
    synthetic_efficientnet_weights(&weights);
    let images = repo_path("fixtures/tiny/images");
    let out = dir.join("c.safetensors");
    let run = features(&images, &out, &weights, &["--classes"]);
    assert!(run.status.success(), "{}", stderr(&run));
    let file = Features::load(&out).unwrap();
    assert!(file.grid.is_none());
    let classes = file.classes.as_ref().expect("classes");
    assert_eq!(classes.len(), file.ids.len() * 1000);
    for row in classes.chunks_exact(1000) {
        assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-4);
        assert!(row.iter().all(|&p| (0.0..=1.0).contains(&p)));
    }
    // Rerunning reuses every row; asking for grids too is refused rather than mixed.
    let again = features(&images, &out, &weights, &["--classes"]);
    assert!(String::from_utf8_lossy(&again.stdout).contains("(0 computed, 8 reused)"));
    let mixed = features(&images, &out, &weights, &["--classes", "--grid"]);
    assert!(!mixed.status.success());
    assert!(
        stderr(&mixed).contains("without grids and with classes"),
        "{}",
        stderr(&mixed)
    );
}

#[test]
fn the_parts_of_a_sharded_run_merge_to_the_whole() {
    let (dir, weights, _) = common::fixture_setup("features-shards");
    let images = repo_path("fixtures/tiny/images");
    let whole = dir.join("whole.safetensors");
    let run = features(&images, &whole, &weights, &["--grid", "--classes"]);
    assert!(run.status.success(), "{}", stderr(&run));
    let parts: Vec<std::path::PathBuf> = (0..3)
        .map(|i| dir.join(format!("part{i}.safetensors")))
        .collect();
    for (i, part) in parts.iter().enumerate() {
        let shard = format!("{i}/3");
        let run = features(
            &images,
            part,
            &weights,
            &["--grid", "--classes", "--shard", &shard],
        );
        assert!(run.status.success(), "{}", stderr(&run));
    }
    let sizes: Vec<usize> = parts
        .iter()
        .map(|p| Features::load(p).unwrap().ids.len())
        .collect();
    assert_eq!(sizes.iter().sum::<usize>(), 8, "{sizes:?}");
    let merged = dir.join("merged.safetensors");
    let mut args = vec!["merge", "--out", merged.to_str().unwrap()];
    args.extend(parts.iter().map(|p| p.to_str().unwrap()));
    let run = captioner(&args);
    assert!(run.status.success(), "{}", stderr(&run));
    let expected = Features::load(&whole).unwrap();
    assert!(
        expected.ids.windows(2).all(|w| w[0] < w[1]),
        "the whole run is in id order"
    );
    assert_eq!(Features::load(&merged).unwrap(), expected);

    // A part left out: the expected ids it held are named.
    let expect = dir.join("ids.txt");
    fs::write(&expect, expected.ids.join("\n")).unwrap();
    let partial = captioner(&[
        "merge",
        "--out",
        dir.join("partial.safetensors").to_str().unwrap(),
        "--expect",
        expect.to_str().unwrap(),
        parts[0].to_str().unwrap(),
        parts[2].to_str().unwrap(),
    ]);
    assert!(!partial.status.success());
    assert!(
        stderr(&partial).contains(&format!("{} expected keys are in no file", sizes[1])),
        "{}",
        stderr(&partial)
    );

    // Parts of different jobs do not merge.
    let plain = dir.join("plain.safetensors");
    assert!(features(&images, &plain, &weights, &["--shard", "0/3"])
        .status
        .success());
    let mixed = captioner(&[
        "merge",
        "--out",
        merged.to_str().unwrap(),
        plain.to_str().unwrap(),
        parts[1].to_str().unwrap(),
    ]);
    assert!(!mixed.status.success());
    assert!(
        stderr(&mixed).contains("not parts of one job"),
        "{}",
        stderr(&mixed)
    );
    let twice = captioner(&[
        "merge",
        "--out",
        merged.to_str().unwrap(),
        parts[1].to_str().unwrap(),
        parts[1].to_str().unwrap(),
    ]);
    assert!(
        stderr(&twice).contains("same --shard count"),
        "{}",
        stderr(&twice)
    );
}

#[test]
fn a_tar_shard_or_a_list_gives_the_folder_s_features() {
    let (dir, weights, _) = common::fixture_setup("features-tar-list");
    let images = repo_path("fixtures/tiny/images");
    let mut names: Vec<std::path::PathBuf> = fs::read_dir(&images)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    let tar_path = dir.join("shard-000000.tar");
    let mut tar = tar::Builder::new(fs::File::create(&tar_path).unwrap());
    for path in &names {
        tar.append_path_with_name(path, path.file_name().unwrap())
            .unwrap();
        // WebDataset's text members are not photos.
        let mut header = tar::Header::new_gnu();
        header.set_size(4);
        header.set_cksum();
        let text = path.with_extension("txt");
        tar.append_data(&mut header, text.file_name().unwrap(), &b"text"[..])
            .unwrap();
    }
    tar.finish().unwrap();
    let list = dir.join("photos.txt");
    let listed: Vec<String> = names.iter().map(|p| p.display().to_string()).collect();
    fs::write(
        &list,
        format!("# the fixture photos\n{}\n", listed.join("\n")),
    )
    .unwrap();

    let folder = dir.join("folder.safetensors");
    assert!(features(&images, &folder, &weights, &["--grid"])
        .status
        .success());
    let from_tar = dir.join("tar.safetensors");
    let run = features(&tar_path, &from_tar, &weights, &["--grid", "--batch", "3"]);
    assert!(run.status.success(), "{}", stderr(&run));
    let from_list = dir.join("list.safetensors");
    let run = captioner(&[
        "features",
        "--list",
        list.to_str().unwrap(),
        "--out",
        from_list.to_str().unwrap(),
        "--weights",
        weights.to_str().unwrap(),
        "--grid",
        "--quiet",
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    let expected = Features::load(&folder).unwrap();
    assert_eq!(expected.ids.len(), 8);
    assert_eq!(Features::load(&from_tar).unwrap(), expected);
    assert_eq!(Features::load(&from_list).unwrap(), expected);
}

#[test]
fn without_a_terminal_progress_comes_as_plain_lines() {
    let dir = scratch("features-log");
    let weights = dir.join("lite0.safetensors");
    synthetic_efficientnet_weights(&weights);
    let out = dir.join("f.safetensors");
    let images = repo_path("fixtures/tiny/images");
    let args = features_args(&images, &out, &weights);
    // Captured, stderr is a pipe: the bar's text arrives as a line, without cursor movement.
    let run = captioner(&args);
    assert!(run.status.success(), "{}", stderr(&run));
    let log = stderr(&run);
    let line = log
        .lines()
        .find(|l| l.contains("/8 images"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(line.contains("ETA") && !line.contains('\u{1b}'), "{line:?}");
    // --quiet keeps it silent.
    let quiet = captioner(&[&args[..], &["--quiet"]].concat());
    assert!(!stderr(&quiet).contains("/8 images"), "{}", stderr(&quiet));
}
