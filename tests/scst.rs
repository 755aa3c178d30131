//! `captioner scst` on the fixture dataset with small synthetic features: self-critical training
//! from a cross-entropy model raises the sampled captions' CIDEr-D, writes a model folder with its
//! log, resumes exactly, leaves the starting model alone, and refuses bad input clearly.

mod common;

use common::{captioner, run_ok, scratch, stderr, tiny_work};
use std::fs;
use std::path::Path;

/// A cross-entropy merge model trained on the fixture, in `dir/xe`.
fn cross_entropy_model(dir: &Path) {
    tiny_work(dir, 16, &[]);
    let (work, features, out) = (
        dir.join("work"),
        dir.join("features.safetensors"),
        dir.join("xe"),
    );
    run_ok(&[
        "train",
        "--work",
        work.to_str().unwrap(),
        "--features",
        features.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--hidden",
        "16",
        "--batch",
        "8",
        "--epochs",
        "8",
        "--lr",
        "1e-2",
        "--threads",
        "2",
        "--quiet",
    ]);
}

fn scst(dir: &Path, out: &str, extra: &[&str]) -> std::process::Output {
    let (from, work, features, out) = (
        dir.join("xe"),
        dir.join("work"),
        dir.join("features.safetensors"),
        dir.join(out),
    );
    let mut args = vec![
        "scst",
        "--from",
        from.to_str().unwrap(),
        "--work",
        work.to_str().unwrap(),
        "--features",
        features.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--batch",
        "2",
        "--samples",
        "8",
        "--lr",
        "3e-3",
        "--threads",
        "2",
        "--quiet",
    ];
    args.extend_from_slice(extra);
    captioner(&args)
}

fn log(path: &Path) -> Vec<serde_json::Value> {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn self_critical_training_raises_the_reward_and_resumes_exactly() {
    let dir = scratch("scst");
    cross_entropy_model(&dir);
    let start = fs::read(dir.join("xe/weights.safetensors")).unwrap();
    let full = scst(&dir, "full", &["--epochs", "10"]);
    assert!(full.status.success(), "{}", stderr(&full));
    let summary = String::from_utf8_lossy(&full.stdout);
    assert!(
        summary.contains("best dev selection score (CIDEr-D + ")
            && summary.contains("x exact METEOR)"),
        "{summary}"
    );
    for file in [
        "config.json",
        "weights.safetensors",
        "vocab.json",
        "log.jsonl",
        "last.safetensors",
    ] {
        assert!(dir.join("full").join(file).is_file(), "{file}");
    }
    let epochs = log(&dir.join("full/log.jsonl"));
    assert_eq!(epochs.len(), 10);
    // Four training images make a noisy reward: the first epoch against the mean of the last five.
    let reward = |e: &serde_json::Value| e["reward"].as_f64().unwrap();
    let late = epochs[5..].iter().map(reward).sum::<f64>() / 5.0;
    assert!(
        late > reward(&epochs[0]) + 0.03,
        "the sampled captions' CIDEr-D should rise: {} -> {late}",
        reward(&epochs[0])
    );
    assert!(epochs
        .iter()
        .all(|e| e["dev_cider"].as_f64().unwrap().is_finite()));
    assert_eq!(
        fs::read(dir.join("xe/weights.safetensors")).unwrap(),
        start,
        "the starting model is never changed"
    );
    // The kept model is a model folder like any other.
    run_ok(&[
        "evaluate",
        "--model",
        dir.join("full").to_str().unwrap(),
        "--work",
        dir.join("work").to_str().unwrap(),
        "--features",
        dir.join("features.safetensors").to_str().unwrap(),
        "--split",
        "dev",
        "--meteor-jar",
        "/nonexistent/meteor.jar",
    ]);

    let half = scst(&dir, "resumed", &["--epochs", "5"]);
    assert!(half.status.success(), "{}", stderr(&half));
    let rest = scst(&dir, "resumed", &["--epochs", "10", "--resume"]);
    assert!(rest.status.success(), "{}", stderr(&rest));
    assert_eq!(
        fs::read(dir.join("full/last.safetensors")).unwrap(),
        fs::read(dir.join("resumed/last.safetensors")).unwrap(),
        "a resumed run must end with exactly the weights of an uninterrupted one"
    );
    assert_eq!(log(&dir.join("resumed/log.jsonl")).len(), 10);

    // With exact-match METEOR in the reward, the best epoch is the one with the best dev CIDEr-D
    // plus the weight times dev exact METEOR, both logged.
    let weighted = scst(&dir, "weighted", &["--epochs", "3", "--meteor-weight", "2"]);
    assert!(weighted.status.success(), "{}", stderr(&weighted));
    let epochs = log(&dir.join("weighted/log.jsonl"));
    let score = |e: &serde_json::Value| {
        e["dev_cider"].as_f64().unwrap() + 2.0 * e["dev_meteor_exact"].as_f64().unwrap()
    };
    for e in &epochs {
        let meteor = e["dev_meteor_exact"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&meteor) && meteor > 0.0, "{e}");
    }
    for (i, e) in epochs.iter().enumerate() {
        if e["best"].as_bool().unwrap() {
            assert!(epochs[..i].iter().all(|before| score(before) < score(e)));
        }
    }
    assert_ne!(
        fs::read(dir.join("weighted/last.safetensors")).unwrap(),
        fs::read(dir.join("resumed/last.safetensors")).unwrap(),
        "the METEOR term changes the rewards"
    );
}

#[test]
fn bad_scst_inputs_are_clear_errors() {
    let dir = scratch("scst-bad");
    cross_entropy_model(&dir);
    let expect = |output: std::process::Output, message: &str| {
        assert!(!output.status.success());
        assert!(stderr(&output).contains(message), "{}", stderr(&output));
    };
    let one_sample = captioner(&[
        "scst",
        "--from",
        dir.join("xe").to_str().unwrap(),
        "--work",
        dir.join("work").to_str().unwrap(),
        "--features",
        dir.join("features.safetensors").to_str().unwrap(),
        "--out",
        dir.join("m").to_str().unwrap(),
        "--samples",
        "1",
    ]);
    expect(one_sample, "--samples must be at least 2");
    expect(
        scst(&dir, "m", &["--meteor-weight=-1"]),
        "--meteor-weight must be",
    );
    expect(
        scst(&dir, "xe", &["--force"]),
        "--out must differ from --from",
    );
    expect(
        scst(&dir, "m", &["--resume"]),
        "holds no self-critical run to continue",
    );
    assert!(scst(&dir, "m", &["--epochs", "1"]).status.success());
    expect(
        scst(&dir, "m", &["--epochs", "1"]),
        "already holds a model: pass --resume",
    );
    // A work folder with another vocabulary (every word kept, not only those seen twice).
    run_ok(&[
        "prepare",
        "--data",
        common::repo_path("fixtures/tiny").to_str().unwrap(),
        "--out",
        dir.join("work").to_str().unwrap(),
        "--min-count",
        "2",
        "--force",
    ]);
    expect(
        scst(&dir, "other", &["--epochs", "1"]),
        "was trained on another vocabulary",
    );
}
