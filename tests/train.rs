//! `captioner train` on the fixture dataset with small synthetic features: the model folder, the
//! per-epoch log, exact resumption, and the errors on bad input.

mod common;

use common::{captioner, json, repo_path, scratch, stderr, tiny_work};
use std::fs;
use std::path::Path;

fn train(dir: &Path, out: &str, extra: &[&str]) -> std::process::Output {
    let (work, features, out) = (
        dir.join("work"),
        dir.join("features.safetensors"),
        dir.join(out),
    );
    let mut args = vec![
        "train",
        "--work",
        work.to_str().unwrap(),
        "--features",
        features.to_str().unwrap(),
    ];
    args.extend([
        "--out",
        out.to_str().unwrap(),
        "--hidden",
        "16",
        "--batch",
        "8",
        "--threads",
        "2",
        "--quiet",
        "--patience",
        "100",
    ]);
    args.extend_from_slice(extra);
    captioner(&args)
}

#[test]
fn training_writes_a_model_folder_and_resumes_exactly() {
    let dir = scratch("train");
    tiny_work(&dir, 16, &[]);
    let full = train(&dir, "full", &["--epochs", "4"]);
    assert!(full.status.success(), "{}", stderr(&full));
    for file in [
        "config.json",
        "weights.safetensors",
        "vocab.json",
        "log.jsonl",
        "last.safetensors",
    ] {
        assert!(dir.join("full").join(file).is_file(), "{file}");
    }
    let log = fs::read_to_string(dir.join("full/log.jsonl")).unwrap();
    let epochs: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(epochs.len(), 4);
    let first = epochs[0]["train_loss"].as_f64().unwrap();
    let last = epochs[3]["train_loss"].as_f64().unwrap();
    assert!(last < first, "training loss should fall: {first} -> {last}");
    assert!(epochs
        .iter()
        .all(|e| e["dev_loss"].as_f64().unwrap().is_finite()));
    let config = common::read_json(&dir.join("full/config.json"));
    assert_eq!(config["feature_dim"], 16);
    assert_eq!(config["vocab"], 43);
    assert_eq!(config["tokenize"], "ptb");
    assert_eq!(config["encoder"], "efficientnet-lite0");

    let half = train(&dir, "resumed", &["--epochs", "2"]);
    assert!(half.status.success(), "{}", stderr(&half));
    let rest = train(&dir, "resumed", &["--epochs", "4", "--resume"]);
    assert!(rest.status.success(), "{}", stderr(&rest));
    assert_eq!(
        fs::read(dir.join("full/last.safetensors")).unwrap(),
        fs::read(dir.join("resumed/last.safetensors")).unwrap(),
        "a resumed run must end with exactly the weights of an uninterrupted one"
    );
    assert_eq!(
        fs::read_to_string(dir.join("resumed/log.jsonl"))
            .unwrap()
            .lines()
            .count(),
        4
    );
}

#[test]
fn bad_inputs_are_clear_errors() {
    let dir = scratch("train-bad");
    tiny_work(&dir, 16, &["1002_sun_sky", "1005_ball_sand"]);
    let run = train(&dir, "m", &["--epochs", "1"]);
    assert!(!run.status.success());
    let err = stderr(&run);
    assert!(
        err.contains("lacks the features of 1 train images (1002_sun_sky)"),
        "{err}"
    );

    tiny_work(&dir, 16, &[]);
    let nan = train(&dir, "nan", &["--epochs", "3", "--lr", "1e30"]);
    assert!(!nan.status.success());
    assert!(
        stderr(&nan).contains("the training loss became"),
        "{}",
        stderr(&nan)
    );

    assert!(train(&dir, "m", &["--epochs", "1"]).status.success());
    // A model is never replaced by accident.
    let again = train(&dir, "m", &["--epochs", "1"]);
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("already holds a model: pass --resume")
            && stderr(&again).contains("--force"),
        "{}",
        stderr(&again)
    );
    assert!(train(&dir, "m", &["--epochs", "1", "--force"])
        .status
        .success());
    let nothing = train(&dir, "empty", &["--epochs", "1", "--resume"]);
    assert!(!nothing.status.success());
    assert!(
        stderr(&nothing).contains("holds no training run to continue"),
        "{}",
        stderr(&nothing)
    );
    tiny_work(&dir, 24, &[]);
    let resumed = train(&dir, "m", &["--epochs", "2", "--resume"]);
    assert!(!resumed.status.success());
    assert!(
        stderr(&resumed).contains("was trained on efficientnet-lite0 16-d features"),
        "{}",
        stderr(&resumed)
    );

    // A model trained on PTB tokens does not resume on a work folder of the seed's cleaning.
    tiny_work(&dir, 16, &[]);
    let seed_work = dir.join("work-seed");
    let prepared = captioner(&[
        "prepare",
        "--data",
        repo_path("fixtures/tiny").to_str().unwrap(),
        "--out",
        seed_work.to_str().unwrap(),
        "--tokenize",
        "seed",
    ]);
    assert!(prepared.status.success(), "{}", stderr(&prepared));
    let resumed = captioner(&[
        "train",
        "--work",
        seed_work.to_str().unwrap(),
        "--features",
        dir.join("features.safetensors").to_str().unwrap(),
        "--out",
        dir.join("m").to_str().unwrap(),
        "--hidden",
        "16",
        "--epochs",
        "2",
        "--resume",
        "--quiet",
    ]);
    assert!(!resumed.status.success());
    assert!(
        stderr(&resumed).contains("was trained on ptb tokens but"),
        "{}",
        stderr(&resumed)
    );
}

#[test]
fn limit_trains_and_evaluates_on_the_first_images_of_each_split() {
    let dir = scratch("train-limit");
    // Features for only part of each split: the first image of train, dev and test.
    tiny_work(
        &dir,
        16,
        &[
            "1003_box_sand",
            "1004_snow_dog",
            "1006_box_grass",
            "1008_sun_snow",
        ],
    );
    let whole = train(&dir, "whole", &["--epochs", "1"]);
    assert!(!whole.status.success());
    assert!(
        stderr(&whole).contains("or pass --limit N"),
        "{}",
        stderr(&whole)
    );

    let quick = train(&dir, "quick", &["--epochs", "2", "--limit", "2"]);
    assert!(
        !quick.status.success(),
        "the second dev image has no features"
    );
    let quick = train(&dir, "quick", &["--epochs", "2", "--limit", "1", "--force"]);
    assert!(quick.status.success(), "{}", stderr(&quick));
    let log = std::fs::read_to_string(dir.join("quick/log.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 2);
    assert!(log.lines().all(|l| json(l)["limit"] == 1), "{log}");

    let evaluate = |extra: &[&str]| {
        let (model, work, features) = (
            dir.join("quick"),
            dir.join("work"),
            dir.join("features.safetensors"),
        );
        let mut args = vec!["evaluate", "--model", model.to_str().unwrap()];
        args.extend(["--work", work.to_str().unwrap()]);
        args.extend(["--features", features.to_str().unwrap(), "--split", "test"]);
        args.extend_from_slice(extra);
        captioner(&args)
    };
    assert!(!evaluate(&[]).status.success());
    let limited = evaluate(&["--limit", "1"]);
    assert!(limited.status.success(), "{}", stderr(&limited));
    let table = String::from_utf8(limited.stdout).unwrap();
    assert!(
        table.starts_with("(--limit: the split's first 1 images only)\n1 images"),
        "{table}"
    );
}
