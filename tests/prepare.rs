//! `captioner prepare` end to end on the tiny fixture dataset, and its errors on bad input.

mod common;

use common::{captioner, read_json, repo_path, scratch, stderr};
use std::fs;
use std::path::Path;

fn prepare(data: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "prepare",
        "--data",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    captioner(&args)
}

fn descriptions(out: &Path) -> Vec<String> {
    let mut lines: Vec<String> = fs::read_to_string(out.join("descriptions.txt"))
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    lines.sort();
    lines
}

#[test]
fn three_forms_of_the_fixture_agree() {
    let tiny = repo_path("fixtures/tiny");
    let scratch = scratch("forms");
    let mut outputs = Vec::new();
    for (name, data) in [
        ("token", tiny.clone()),
        ("kaggle", tiny.join("captions.txt")),
        ("karpathy", tiny.join("dataset_tiny.json")),
    ] {
        let out = scratch.join(name);
        let run = prepare(&data, &out, &[]);
        assert!(run.status.success(), "{name}: {}", stderr(&run));
        outputs.push(out);
    }
    let summary = read_json(&outputs[0].join("summary.json"));
    assert_eq!(summary["images"], 8);
    assert_eq!(summary["captions"], 40);
    assert_eq!(summary["images_per_split"]["train"], 4);
    assert_eq!(summary["ignored"]["count"], 0);
    for out in &outputs[1..] {
        assert_eq!(descriptions(out), descriptions(&outputs[0]));
        assert_eq!(
            fs::read(out.join("vocab.json")).unwrap(),
            fs::read(outputs[0].join("vocab.json")).unwrap()
        );
        let splits = read_json(&out.join("splits.json"));
        assert_eq!(
            splits["test"],
            read_json(&outputs[0].join("splits.json"))["test"]
        );
    }
    // The default is coco-caption's protocol: PTB tokens, "a" kept, punctuation gone, min count 5.
    let first = &descriptions(&outputs[0]);
    assert!(first.contains(&"1001_ball_grass a ball red and round sits on the lawn".to_owned()));
    assert_eq!(summary["tokenize"], "ptb");
    assert_eq!(summary["min_count"], 5);
    let vocab = read_json(&outputs[0].join("vocab.json"));
    assert_eq!(vocab["tokens"][0], "<pad>");
    assert_eq!(vocab["tokens"][2], "startseq");
    // "a" is the most frequent training token (16 times in the 4 training images' captions).
    assert_eq!(vocab["tokens"][4], "a");

    // The seed's cleaning is one flag away, with the seed's vocabulary threshold (every word).
    let seed = scratch.join("seed");
    let run = prepare(&tiny, &seed, &["--tokenize", "seed"]);
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(descriptions(&seed)
        .contains(&"1001_ball_grass ball red and round sits on the lawn".to_owned()));
    let summary = read_json(&seed.join("summary.json"));
    assert_eq!(summary["tokenize"], "seed");
    assert_eq!(summary["min_count"], 1);
    // "the" is the most frequent training word once "a" is deleted (15 times).
    assert_eq!(read_json(&seed.join("vocab.json"))["tokens"][4], "the");
}

#[test]
fn captions_that_tokenise_to_nothing_are_counted_and_not_trained_on() {
    let scratch = scratch("empty-caption");
    let data = scratch.join("data");
    fs::create_dir_all(&data).unwrap();
    let tiny = repo_path("fixtures/tiny");
    for entry in fs::read_dir(&tiny).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() && path.file_name().unwrap() != "captions.txt" {
            fs::copy(&path, data.join(path.file_name().unwrap())).unwrap();
        }
    }
    let mut tokens = fs::read_to_string(tiny.join("Flickr8k.token.txt")).unwrap();
    tokens.push_str("1001_ball_grass.png#5\t... !\n");
    fs::write(data.join("Flickr8k.token.txt"), tokens).unwrap();
    let out = scratch.join("work");
    let run = prepare(&data, &out, &["--min-count", "1"]);
    assert!(run.status.success(), "{}", stderr(&run));
    let summary = read_json(&out.join("summary.json"));
    assert_eq!(summary["captions"], 41);
    assert_eq!(summary["empty_after_cleaning"], 1);
    // The vocabulary counts 20 training captions' startseq, not 21: the empty one is left out.
    let vocab = read_json(&out.join("vocab.json"));
    assert_eq!(vocab["tokens"][2], "startseq");
    assert_eq!(vocab["counts"][2], 20);
}

#[test]
fn missing_images_are_listed_and_excluded() {
    let scratch = scratch("missing");
    let images = scratch.join("images");
    fs::create_dir_all(&images).unwrap();
    for entry in fs::read_dir(repo_path("fixtures/tiny/images")).unwrap() {
        let path = entry.unwrap().path();
        if !path.ends_with("1002_sun_sky.png") && !path.ends_with("1007_dog_grass.png") {
            fs::copy(&path, images.join(path.file_name().unwrap())).unwrap();
        }
    }
    let out = scratch.join("work");
    let run = prepare(
        &repo_path("fixtures/tiny"),
        &out,
        &["--images", images.to_str().unwrap()],
    );
    assert!(run.status.success(), "{}", stderr(&run));
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        stdout.contains("image file missing (excluded): 2 images"),
        "{stdout}"
    );
    let summary = read_json(&out.join("summary.json"));
    assert_eq!(
        summary["missing_images"]["ids"],
        serde_json::json!(["1002_sun_sky", "1007_dog_grass"])
    );
    assert_eq!(summary["images"], 6);
    assert_eq!(summary["images_per_split"]["train"], 3);
    assert_eq!(summary["images_per_split"]["test"], 1);
    assert!(!descriptions(&out)
        .iter()
        .any(|l| l.starts_with("1002_sun_sky ")));
}

#[test]
fn kaggle_without_split_files_gets_a_recorded_deterministic_split() {
    let scratch = scratch("kaggle-split");
    let csv = scratch.join("captions.txt");
    fs::copy(repo_path("fixtures/tiny/captions.txt"), &csv).unwrap();
    let run = prepare(&csv, &scratch.join("a"), &["--split-sizes", "6,1,1"]);
    assert!(run.status.success(), "{}", stderr(&run));
    let again = prepare(&csv, &scratch.join("b"), &["--split-sizes", "6,1,1"]);
    assert!(again.status.success());
    let splits = read_json(&scratch.join("a/splits.json"));
    assert_eq!(splits, read_json(&scratch.join("b/splits.json")));
    assert_eq!(splits["train"].as_array().unwrap().len(), 6);
    assert!(splits["source"].as_str().unwrap().starts_with("generated"));
    let too_many = prepare(&csv, &scratch.join("c"), &["--split-sizes", "6,2,2"]);
    assert!(stderr(&too_many).contains("asks for 10 images but the captions cover only 8"));
}

/// Writes `content` as `name` in a fresh folder (with the fixture's split files when asked), runs
/// prepare on it, and returns stderr; the run must fail and leave the output folder empty.
fn failing_prepare(test: &str, name: &str, content: &[u8], with_splits: bool) -> String {
    let dir = scratch(test);
    let data = dir.join("data");
    fs::create_dir_all(&data).unwrap();
    fs::write(data.join(name), content).unwrap();
    if with_splits {
        for split in ["train", "dev", "test"] {
            let file = format!("Flickr_8k.{split}Images.txt");
            fs::copy(repo_path("fixtures/tiny").join(&file), data.join(&file)).unwrap();
        }
    }
    let out = dir.join("out");
    let run = prepare(&data.join(name), &out, &[]);
    assert!(!run.status.success(), "{test}: should fail");
    let written: Vec<_> = fs::read_dir(&out).map(|d| d.count()).into_iter().collect();
    assert!(
        written.iter().all(|&n| n == 0),
        "{test}: a failed run wrote files"
    );
    stderr(&run)
}

#[test]
fn bad_token_files_name_the_file_and_line() {
    let err = failing_prepare(
        "notab",
        "Flickr8k.token.txt",
        b"a.jpg#0\tA dog .\nb.jpg#0 A cat .\n",
        false,
    );
    assert!(err.contains("Flickr8k.token.txt:2: no TAB"), "{err}");
    let err = failing_prepare(
        "empty",
        "Flickr8k.token.txt",
        b"a.jpg#0\tA dog .\nb.jpg#0\t  \n",
        false,
    );
    assert!(
        err.contains("Flickr8k.token.txt:2: empty caption for b.jpg"),
        "{err}"
    );
    let err = failing_prepare(
        "utf8",
        "Flickr8k.token.txt",
        b"a.jpg#0\tA dog .\n\nb.jpg#0\tA \xff cat\n",
        false,
    );
    assert!(err.contains("Flickr8k.token.txt:3: invalid UTF-8"), "{err}");
}

#[test]
fn split_file_naming_an_image_without_captions_is_an_error() {
    let tokens = fs::read(repo_path("fixtures/tiny/Flickr8k.token.txt")).unwrap();
    let text = String::from_utf8(tokens).unwrap();
    let without_one: String = text
        .lines()
        .filter(|l| !l.starts_with("1006_box_grass"))
        .map(|l| format!("{l}\n"))
        .collect();
    let err = failing_prepare("nocaps", "Flickr8k.token.txt", without_one.as_bytes(), true);
    assert!(
        err.contains("Flickr_8k.devImages.txt:2: image 1006_box_grass.png has no captions"),
        "{err}"
    );
}

#[test]
fn bad_json_and_csv_name_the_file_and_line() {
    let err = failing_prepare(
        "json",
        "dataset_x.json",
        b"{\"images\": [\n {\"filename\": \"a.jpg\",,}\n]}",
        false,
    );
    assert!(
        err.contains("dataset_x.json: not a Karpathy split file") && err.contains("line 2"),
        "{err}"
    );
    let err = failing_prepare("noimages", "dataset_x.json", b"{\"sentences\": []}", false);
    assert!(err.contains("missing field `images`"), "{err}");
    let err = failing_prepare(
        "csv",
        "captions.txt",
        b"image,caption\na.jpg,A dog .\nb.jpg,\"A cat\nc.jpg,x\n",
        false,
    );
    assert!(err.contains("captions.txt:3: unterminated quote"), "{err}");
    let err = failing_prepare(
        "csvfields",
        "captions.txt",
        b"image,caption\na.jpg,A dog .,extra\n",
        false,
    );
    assert!(err.contains("captions.txt:2: expected 2 fields"), "{err}");
}

#[test]
fn unwritable_output_folder_is_a_clear_error() {
    let dir = scratch("unwritable");
    let blocker = dir.join("a-file");
    fs::write(&blocker, b"not a folder").unwrap();
    let run = prepare(&repo_path("fixtures/tiny"), &blocker.join("work"), &[]);
    assert!(!run.status.success());
    assert!(
        stderr(&run).contains("cannot create the output folder"),
        "{}",
        stderr(&run)
    );
}

#[test]
fn a_work_folder_is_replaced_only_with_force() {
    let tiny = repo_path("fixtures/tiny");
    let out = scratch("prepare-again").join("work");
    assert!(prepare(&tiny, &out, &[]).status.success());
    let again = prepare(&tiny, &out, &["--min-count", "1"]);
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("already holds a work folder (summary.json): pass --force"),
        "{}",
        stderr(&again)
    );
    let forced = prepare(&tiny, &out, &["--min-count", "1", "--force"]);
    assert!(forced.status.success(), "{}", stderr(&forced));
    assert_eq!(read_json(&out.join("summary.json"))["min_count"], 1);
}
