//! The attention decoder end to end on the fixture dataset with synthetic encoder weights: grid
//! features -> train (and an exact resume) -> evaluate -> caption with its attention weights; and
//! the errors that name the command making the right features.

mod common;

use common::{captioner, fixture_setup, read_json, run_ok, stderr};

#[test]
fn attention_decoder_trains_resumes_evaluates_and_captions() {
    let (dir, weights, tiny) = fixture_setup("attention");
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
    for (out, grid) in [("pooled.safetensors", false), ("grid.safetensors", true)] {
        let mut args = vec![
            "features",
            "--images",
            images.to_str().unwrap(),
            "--weights",
            weights.to_str().unwrap(),
            "--quiet",
        ];
        let out = path(out);
        args.extend(["--out", &out]);
        if grid {
            args.push("--grid");
        }
        run(&args);
    }
    let train = |out: &str, features: &str, extra: &[&str]| {
        let (out, features, work) = (path(out), path(features), path("work"));
        let mut args = vec![
            "train",
            "--decoder",
            "attention",
            "--work",
            &work,
            "--features",
            &features,
            "--out",
            &out,
            "--hidden",
            "12",
            "--attention-dim",
            "6",
            "--batch",
            "8",
            "--lr",
            "0.01",
            "--threads",
            "2",
            "--quiet",
        ];
        args.extend_from_slice(extra);
        captioner(&args)
    };

    // Pooled features cannot feed the attention decoder: the error says which command makes grids.
    let pooled = train("wrong", "pooled.safetensors", &["--epochs", "1"]);
    assert!(!pooled.status.success());
    assert!(
        stderr(&pooled).contains("features --grid"),
        "{}",
        stderr(&pooled)
    );

    let whole = train(
        "whole",
        "grid.safetensors",
        &["--epochs", "20", "--patience", "99"],
    );
    assert!(whole.status.success(), "{}", stderr(&whole));
    let config = read_json(&dir.join("whole/config.json"));
    assert_eq!(config["decoder"], "attention");
    assert_eq!(config["regions"], 49);
    // Interrupted after one epoch and resumed: the same weights, byte for byte.
    let first = train(
        "resumed",
        "grid.safetensors",
        &["--epochs", "7", "--patience", "99"],
    );
    assert!(first.status.success(), "{}", stderr(&first));
    let rest = train(
        "resumed",
        "grid.safetensors",
        &["--epochs", "20", "--patience", "99", "--resume"],
    );
    assert!(rest.status.success(), "{}", stderr(&rest));
    for file in ["weights.safetensors", "last.safetensors"] {
        assert!(
            std::fs::read(dir.join("whole").join(file)).unwrap()
                == std::fs::read(dir.join("resumed").join(file)).unwrap(),
            "{file} differs after resuming"
        );
    }

    let evaluate = |features: &str, extra: &[&str]| {
        let (model, work, features) = (path("whole"), path("work"), path(features));
        let mut args = vec!["evaluate", "--model", &model, "--work", &work, "--quiet"];
        args.extend(["--features", &features]);
        args.extend_from_slice(extra);
        captioner(&args)
    };
    let eval = evaluate("grid.safetensors", &["--beam", "2", "--out", &path("eval")]);
    assert!(eval.status.success(), "{}", stderr(&eval));
    assert!(String::from_utf8_lossy(&eval.stdout).contains("CIDEr-D"));
    let results = read_json(&dir.join("eval/results_beam2.json"));
    assert_eq!(results.as_array().unwrap().len(), 2);
    let wrong = evaluate("pooled.safetensors", &[]);
    assert!(!wrong.status.success());
    assert!(
        stderr(&wrong).contains("features --grid"),
        "{}",
        stderr(&wrong)
    );

    let photo = images.join("1001_ball_grass.png");
    // `caption` with the trained model on the photo, with `extra` flags.
    let caption_whole = |extra: &[&str]| {
        let model = path("whole");
        let mut args = vec!["caption", "--model", &model];
        args.extend(["--weights", weights.to_str().unwrap()]);
        args.extend_from_slice(extra);
        args.push(photo.to_str().unwrap());
        captioner(&args)
    };
    // The maps only on request: a lean line by default.
    let lean = caption_whole(&["--json"]);
    assert!(lean.status.success(), "{}", stderr(&lean));
    let lean: serde_json::Value = serde_json::from_slice(&lean.stdout).unwrap();
    assert!(lean.get("attention").is_none(), "{lean}");
    assert!(lean["photo_gain"].is_number(), "{lean}");
    let out = caption_whole(&["--json", "--maps"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let line: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let tokens = line["tokens"].as_str().unwrap().split_whitespace().count();
    let attention = &line["attention"];
    assert_eq!(
        (attention["height"].as_u64(), attention["width"].as_u64()),
        (Some(7), Some(7))
    );
    let words = attention["words"].as_array().unwrap();
    assert!(tokens > 0, "a trained model says something: {line}");
    assert_eq!(words.len(), tokens, "one map per word: {line}");
    let figures = dir.join("figures");
    let drawn = caption_whole(&["--attention", figures.to_str().unwrap()]);
    assert!(drawn.status.success(), "{}", stderr(&drawn));
    let figure = image::open(figures.join("1001_ball_grass.png")).unwrap();
    assert!(
        figure.width() > 224 && figure.height() > 224,
        "photo + one panel per word"
    );
    for map in words {
        let map: Vec<f64> = map
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w.as_f64().unwrap())
            .collect();
        assert_eq!(map.len(), 49);
        assert!(
            (map.iter().sum::<f64>() - 1.0).abs() < 1e-2,
            "weights sum to 1: {map:?}"
        );
    }

    // The model knows its training photos (familiar.safetensors, the same after a resume), and a
    // photo's familiarity to them is a cosine.
    let familiar = |model: &str| std::fs::read(dir.join(model).join("familiar.safetensors"));
    let made = familiar("whole").unwrap();
    assert_eq!(made, familiar("resumed").unwrap());
    let familiarity = line["familiarity"].as_f64().unwrap();
    assert!((-1.0..=1.001).contains(&familiarity), "{line}");
    // A model made before the file existed still captions, not grounded, with a note saying how to
    // add it; `evaluate --ground` refuses it; `captioner familiar` adds the same file.
    std::fs::remove_file(dir.join("whole/familiar.safetensors")).unwrap();
    let unfamiliar = caption_whole(&[]);
    assert!(unfamiliar.status.success(), "{}", stderr(&unfamiliar));
    assert!(
        stderr(&unfamiliar).contains("not grounded")
            && stderr(&unfamiliar).contains("familiar --model"),
        "{}",
        stderr(&unfamiliar)
    );
    let refused = evaluate("grid.safetensors", &["--ground"]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("captioner familiar"),
        "{}",
        stderr(&refused)
    );
    run(&[
        "familiar",
        "--model",
        &path("whole"),
        "--work",
        &path("work"),
        "--features",
        &path("grid.safetensors"),
    ]);
    assert_eq!(familiar("whole").unwrap(), made);

    // A config.json edited to another grid than its encoder gives is refused, not a crash.
    let config_path = dir.join("whole/config.json");
    let edited = std::fs::read_to_string(&config_path)
        .unwrap()
        .replace("\"regions\": 49", "\"regions\": 64");
    std::fs::write(&config_path, edited).unwrap();
    let wrong = caption_whole(&[]);
    assert!(!wrong.status.success());
    assert!(
        stderr(&wrong).contains("does not match its encoder"),
        "{}",
        stderr(&wrong)
    );
}
