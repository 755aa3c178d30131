//! Batch jobs at scale: list files, WebDataset tar shards, `--shard I/N` and the engines' variables,
//! resumable `--out` records and `merge` (synthetic encoder weights: the captions are nonsense but
//! exactly reproducible).

mod common;

use common::{captioner, fixture_setup, repo_path, stderr};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A WebDataset shard of `count` photos (fixture photos under new keys), each with a `.txt` member.
fn write_tar(path: &Path, count: usize) -> Vec<String> {
    let photos = ["baseline.jpg", "palette.bmp", "lossy.webp"];
    let mut builder = tar::Builder::new(std::fs::File::create(path).unwrap());
    let mut keys = Vec::new();
    for i in 0..count {
        let name = photos[i % photos.len()];
        let extension = name.rsplit('.').next().unwrap();
        let key = format!("sample{i:04}");
        let bytes = std::fs::read(repo_path("fixtures/formats").join(name)).unwrap();
        for (member, data) in [
            (format!("{key}.{extension}"), bytes.as_slice()),
            (format!("{key}.txt"), b"a caption from the crawl".as_slice()),
        ] {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder.append_data(&mut header, member, data).unwrap();
        }
        keys.push(key);
    }
    builder.finish().unwrap();
    keys
}

fn caption_to(weights: &Path, out: &Path, inputs: &[&str], env: &[(&str, &str)]) -> String {
    let mut command = Command::new(env!("CARGO_BIN_EXE_captioner"));
    command
        .args(["caption", "--weights", weights.to_str().unwrap(), "--out"])
        .arg(out)
        .args(inputs)
        .env_remove("SLURM_ARRAY_TASK_ID")
        .env_remove("JOB_COMPLETION_INDEX");
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    stderr(&output)
}

fn keys(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| common::json(l)["key"].as_str().unwrap().to_owned())
        .collect()
}

fn merge(inputs: &[PathBuf], out: &Path) {
    let mut args = vec!["merge", "--out", out.to_str().unwrap()];
    args.extend(inputs.iter().map(|p| p.to_str().unwrap()));
    let output = captioner(&args);
    assert!(output.status.success(), "{}", stderr(&output));
}

#[test]
fn shards_of_a_job_merge_to_the_single_run() {
    let (dir, weights, _) = fixture_setup("scale-out-shards");
    let tar = dir.join("shard-000000.tar");
    let tar_keys = write_tar(&tar, 12);
    let list = dir.join("photos.txt");
    let listed: Vec<String> = ["baseline.jpg", "gray16.png", "cmyk.jpg"]
        .iter()
        .map(|n| repo_path("fixtures/formats").join(n).display().to_string())
        .collect();
    std::fs::write(&list, format!("# photos\n{}\n\n", listed.join("\n"))).unwrap();
    let inputs = [tar.to_str().unwrap(), "--list", list.to_str().unwrap()];

    let single = dir.join("single.jsonl");
    caption_to(&weights, &single, &inputs, &[]);
    let all_keys: Vec<String> = tar_keys.iter().chain(&listed).cloned().collect();
    assert_eq!(keys(&single), all_keys, "every photo once, in input order");
    let first = common::json(
        std::fs::read_to_string(&single)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    );
    assert_eq!(first["model"], "default");
    assert!(first["caption"].as_str().unwrap().ends_with('.'));
    assert!(!first["tokens"].as_str().unwrap().is_empty());

    // Three shards by flag, and shard 1 again as a Slurm array task says it.
    let shards: Vec<PathBuf> = (0..3).map(|i| dir.join(format!("part{i}.jsonl"))).collect();
    for (i, out) in shards.iter().enumerate() {
        let flag = format!("{i}/3");
        let mut args = inputs.to_vec();
        args.extend(["--shard", &flag]);
        caption_to(&weights, out, &args, &[]);
    }
    let sizes: Vec<usize> = shards.iter().map(|s| keys(s).len()).collect();
    assert_eq!(sizes.iter().sum::<usize>(), all_keys.len(), "{sizes:?}");
    let slurm = dir.join("slurm1.jsonl");
    let said = caption_to(
        &weights,
        &slurm,
        &inputs,
        &[
            ("SLURM_ARRAY_TASK_ID", "1"),
            ("SLURM_ARRAY_TASK_COUNT", "3"),
        ],
    );
    assert!(said.contains("shard 1/3 from Slurm"), "{said}");
    assert_eq!(
        std::fs::read(&slurm).unwrap(),
        std::fs::read(&shards[1]).unwrap()
    );

    let (merged, merged_single) = (dir.join("merged.jsonl"), dir.join("merged-single.jsonl"));
    merge(&shards, &merged);
    merge(std::slice::from_ref(&single), &merged_single);
    assert_eq!(
        std::fs::read(&merged).unwrap(),
        std::fs::read(&merged_single).unwrap(),
        "the shards merge to the single run's bytes"
    );

    // A key in two files, and a shard left out.
    let twice = captioner(&[
        "merge",
        "--out",
        dir.join("x.jsonl").to_str().unwrap(),
        shards[0].to_str().unwrap(),
        single.to_str().unwrap(),
    ]);
    assert!(!twice.status.success());
    assert!(stderr(&twice).contains("were the shards made with the same --shard count"));
    let expect = dir.join("expected.txt");
    std::fs::write(&expect, all_keys.join("\n")).unwrap();
    let missing = captioner(&[
        "merge",
        "--out",
        dir.join("y.jsonl").to_str().unwrap(),
        "--expect",
        expect.to_str().unwrap(),
        shards[0].to_str().unwrap(),
        shards[2].to_str().unwrap(),
    ]);
    assert!(!missing.status.success());
    assert!(
        stderr(&missing).contains(&format!("{} expected keys are in no file", sizes[1])),
        "{}",
        stderr(&missing)
    );
}

#[test]
fn an_interrupted_shard_resumes_without_duplicates() {
    let (dir, weights, _) = fixture_setup("scale-out-resume");
    let tar = dir.join("shard.tar");
    write_tar(&tar, 40);
    let tar = tar.to_str().unwrap();
    let whole = dir.join("whole.jsonl");
    caption_to(&weights, &whole, &[tar], &[]);
    let whole_bytes = std::fs::read(&whole).unwrap();

    // Cut after the third line, in the middle of the fourth, as a kill while writing leaves it.
    let cut = dir.join("cut.jsonl");
    let third_end = whole_bytes
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .nth(2)
        .unwrap()
        .0;
    std::fs::write(&cut, &whole_bytes[..third_end + 20]).unwrap();
    let said = caption_to(&weights, &cut, &[tar], &[]);
    assert!(said.contains("37 new, 3 already there"), "{said}");
    assert_eq!(std::fs::read(&cut).unwrap(), whole_bytes);

    // The process killed at some point of its run, then run again.
    let killed = dir.join("killed.jsonl");
    let mut child = Command::new(env!("CARGO_BIN_EXE_captioner"))
        .args(["caption", "--weights", weights.to_str().unwrap(), "--out"])
        .arg(&killed)
        .arg(tar)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    while std::fs::read(&killed).map_or(0, |b| b.len()) < 200 && child.try_wait().unwrap().is_none()
    {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    caption_to(&weights, &killed, &[tar], &[]);
    assert_eq!(std::fs::read(&killed).unwrap(), whole_bytes);
}

#[test]
fn photos_side_by_side_give_the_same_lines_in_the_same_order() {
    let (dir, weights, _) = fixture_setup("batch-side-by-side");
    let broken = dir.join("broken.jpg");
    std::fs::write(&broken, b"not a photo").unwrap();
    let formats = repo_path("fixtures/formats");
    let mut photos: Vec<PathBuf> = ["baseline.jpg", "palette.bmp", "lossy.webp", "gray16.png"]
        .iter()
        .map(|name| formats.join(name))
        .collect();
    photos.insert(2, broken);
    let run = |batch: &str, extra: &[&str]| {
        let mut args = vec!["caption", "--weights", weights.to_str().unwrap()];
        args.extend(["--batch", batch]);
        args.extend_from_slice(extra);
        args.extend(photos.iter().map(|p| p.to_str().unwrap()));
        let out = captioner(&args);
        assert!(
            !out.status.success(),
            "a photo failed: the exit code says so"
        );
        (String::from_utf8(out.stdout.clone()).unwrap(), stderr(&out))
    };
    for extra in [&[][..], &["--json"][..]] {
        let (one, one_errors) = run("1", extra);
        assert_eq!(one.lines().count(), if extra.is_empty() { 4 } else { 5 });
        for batch in ["2", "3", "64"] {
            assert_eq!(
                run(batch, extra),
                (one.clone(), one_errors.clone()),
                "--batch {batch}"
            );
        }
    }
}
