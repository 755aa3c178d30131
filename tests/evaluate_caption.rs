//! The whole pipeline on the fixture dataset with synthetic encoder weights: prepare -> features ->
//! train -> evaluate (files and table) -> caption (files, stdin, a broken file, JSON lines).

mod common;

use common::{captioner, fixture_setup, read_json, run_ok, stderr};
use std::io::Write;
use std::process::{Command, Stdio};

#[test]
fn fixture_pipeline_end_to_end() {
    let (dir, weights, tiny) = fixture_setup("pipeline");
    let path = |name: &str| dir.join(name).to_str().unwrap().to_owned();
    let images = tiny.join("images");
    let run = run_ok;
    run(&[
        "prepare",
        "--data",
        tiny.to_str().unwrap(),
        "--out",
        &path("work"),
    ]);
    run(&[
        "features",
        "--images",
        images.to_str().unwrap(),
        "--out",
        &path("f.safetensors"),
        "--weights",
        weights.to_str().unwrap(),
        "--quiet",
    ]);
    run(&[
        "train",
        "--work",
        &path("work"),
        "--features",
        &path("f.safetensors"),
        "--out",
        &path("model"),
        "--hidden",
        "16",
        "--batch",
        "8",
        "--epochs",
        "30",
        "--lr",
        "0.01",
        "--patience",
        "30",
        "--quiet",
    ]);

    let eval = run(&[
        "evaluate",
        "--model",
        &path("model"),
        "--work",
        &path("work"),
        "--features",
        &path("f.safetensors"),
        "--beam",
        "2",
        "--out",
        &path("eval"),
        "--quiet",
    ]);
    let table = String::from_utf8_lossy(&eval.stdout);
    assert!(
        table.contains("greedy") && table.contains("beam2") && table.contains("CIDEr-D"),
        "{table}"
    );
    let scores = read_json(&dir.join("eval/scores.json"));
    for key in [
        "nltk_bleu1",
        "nltk_bleu4",
        "bleu1",
        "bleu4",
        "meteor",
        "rouge_l",
        "cider",
    ] {
        assert!(
            scores["greedy"].get(key).is_some() && scores["beam2"].get(key).is_some(),
            "{key}"
        );
    }
    let results = read_json(&dir.join("eval/results_beam2.json"));
    let results = results.as_array().unwrap();
    assert_eq!(results.len(), 2, "the fixture's test split has two images");
    for result in results {
        let caption = result["caption"].as_str().unwrap();
        for banned in ["startseq", "endseq", "<unk>", "<pad>"] {
            assert!(!caption.split(' ').any(|w| w == banned), "{caption}");
        }
    }

    // An evaluation is never replaced by accident.
    let again = captioner(&[
        "evaluate",
        "--model",
        &path("model"),
        "--work",
        &path("work"),
        "--features",
        &path("f.safetensors"),
        "--out",
        &path("eval"),
        "--quiet",
    ]);
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("already holds an evaluation (scores.json): pass --force"),
        "{}",
        stderr(&again)
    );

    // A merge model has no attention to draw.
    let figures = dir.join("figures");
    let merge = captioner(&[
        "caption",
        "--model",
        &path("model"),
        "--weights",
        weights.to_str().unwrap(),
        "--attention",
        figures.to_str().unwrap(),
        images.join("1001_ball_grass.png").to_str().unwrap(),
    ]);
    assert!(!merge.status.success());
    assert!(
        stderr(&merge).contains("this model's decoder is merge"),
        "{}",
        stderr(&merge)
    );

    let broken = dir.join("broken.jpg");
    std::fs::write(&broken, b"\xff\xd8\xff\xe0 not really a jpeg").unwrap();
    let photo = images.join("1001_ball_grass.png");
    let mut child = Command::new(env!("CARGO_BIN_EXE_captioner"))
        .args([
            "caption",
            "--model",
            &path("model"),
            "--weights",
            weights.to_str().unwrap(),
            "--json",
        ])
        .args([
            photo.to_str().unwrap(),
            broken.to_str().unwrap(),
            "-",
            images.to_str().unwrap(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&std::fs::read(&photo).unwrap())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        !out.status.success(),
        "one photo was broken: the exit code says so"
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1 + 1 + 1 + 8);
    assert!(
        lines[1]["error"]
            .as_str()
            .unwrap()
            .contains("truncated JPEG"),
        "{}",
        lines[1]
    );
    let classes = lines[0]["classes"].as_array().unwrap();
    assert_eq!(
        classes.len(),
        3,
        "the encoder's top three classes: {}",
        lines[0]
    );
    let probability = |i: usize| classes[i]["probability"].as_f64().unwrap();
    assert!(probability(0) >= probability(1) && probability(1) >= probability(2));
    assert!(classes[0]["class"].as_str().is_some_and(|c| !c.is_empty()));
    assert_eq!(lines[2]["image"], "-");
    assert_eq!(
        lines[0]["caption"], lines[2]["caption"],
        "same photo from a file and from stdin"
    );
    assert!(lines.iter().filter(|l| l.get("caption").is_some()).count() == 10);
}
