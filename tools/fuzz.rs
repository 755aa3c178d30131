//! Mutation fuzzing of one parser (src/fuzz/) for a budget of inputs:
//!
//!   cargo run --release --example fuzz -- [--target image] [--inputs 1000000] [--seed 1]
//!       [--crashes DIR] [SEED_FILE_OR_DIR ...]
//!   cargo run --release --example fuzz -- --target http --addr 127.0.0.1:8080 [--inputs N]
//!       [--seed 1] [--crashes DIR] [PHOTO]
//!
//! Targets: image, pth, safetensors, features, vocab, config, flickr8k, karpathy, kaggle, and http
//! (requests to a `captioner serve` already listening at --addr, built around PHOTO, by default
//! fixtures/formats/gray16.png). Seeds default to the target's fixtures. Prints progress on stderr
//! and one JSON line at the end; each crashing input (for http: each answered with a 5xx other than
//! 503) is written to --crashes (default fuzz-crashes/).

use std::path::PathBuf;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (mut inputs, mut seed, mut crashes, mut paths) = (
        1_000_000u64,
        1u64,
        PathBuf::from("fuzz-crashes"),
        Vec::new(),
    );
    let mut target = "image".to_owned();
    let mut addr = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--inputs" => inputs = args.next().unwrap_or_default().parse()?,
            "--seed" => seed = args.next().unwrap_or_default().parse()?,
            "--crashes" => crashes = PathBuf::from(args.next().unwrap_or_default()),
            "--target" => target = args.next().unwrap_or_default(),
            "--addr" => addr = args.next(),
            _ => paths.push(PathBuf::from(arg)),
        }
    }
    if target == "http" {
        let addr = addr.ok_or_else(|| anyhow::anyhow!("--target http needs --addr HOST:PORT"))?;
        let photo = paths
            .first()
            .cloned()
            .unwrap_or_else(|| PathBuf::from("fixtures/formats/gray16.png"));
        return fuzz_http(&addr, &std::fs::read(&photo)?, inputs, seed, &crashes);
    }
    let Some(&(name, parse, fixtures)) = captioner::fuzz::TARGETS.iter().find(|t| t.0 == target)
    else {
        anyhow::bail!("no target {target:?}: image, pth, safetensors, features, familiar, vocab, config, flickr8k, karpathy, kaggle or http");
    };
    if paths.is_empty() {
        paths = fixtures.iter().map(PathBuf::from).collect();
    }
    let mut seeds = Vec::new();
    for path in &paths {
        let files = if path.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(path)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e != "rgb" && e != "py"))
                .collect();
            files.sort();
            files
        } else {
            vec![path.clone()]
        };
        for file in files {
            seeds.push(std::fs::read(&file)?);
        }
    }
    anyhow::ensure!(!seeds.is_empty(), "no seed files");
    let start = std::time::Instant::now();
    let report = captioner::fuzz::run(parse, &seeds, inputs, seed, |r| {
        progress(start, r.inputs, inputs, r.crashes.len(), "crashes")
    });
    eprintln!();
    if !report.crashes.is_empty() {
        std::fs::create_dir_all(&crashes)?;
        for (i, (input, _)) in report.crashes.iter().enumerate() {
            std::fs::write(crashes.join(format!("crash-{i}.bin")), input)?;
        }
    }
    let messages: Vec<&str> = report.crashes.iter().map(|(_, m)| m.as_str()).collect();
    println!(
        "{}",
        serde_json::json!({
            "target": name,
            "seeds": seeds.len(),
            "inputs": report.inputs,
            "accepted": report.accepted,
            "crashes": report.crashes.len(),
            "crash_messages": messages,
            "slowest_ms": report.slowest.as_secs_f64() * 1e3,
            "seconds": start.elapsed().as_secs_f64(),
        })
    );
    Ok(())
}

fn fuzz_http(
    addr: &str,
    photo: &[u8],
    inputs: u64,
    seed: u64,
    crashes: &std::path::Path,
) -> anyhow::Result<()> {
    let seeds = captioner::fuzz::http::seed_requests(addr, photo);
    let start = std::time::Instant::now();
    let report = captioner::fuzz::http::run(addr, &seeds, inputs, seed, |r| {
        progress(
            start,
            r.inputs,
            inputs,
            r.server_errors.len(),
            "server errors",
        )
    })?;
    eprintln!();
    if !report.server_errors.is_empty() {
        std::fs::create_dir_all(crashes)?;
        for (i, (input, status)) in report.server_errors.iter().enumerate() {
            std::fs::write(crashes.join(format!("status-{status}-{i}.http")), input)?;
        }
    }
    println!(
        "{}",
        serde_json::json!({
            "target": "http",
            "seeds": seeds.len(),
            "inputs": report.inputs,
            "statuses": report.statuses,
            "unanswered": report.unanswered,
            "server_errors": report.server_errors.len(),
            "slowest_ms": report.slowest.as_secs_f64() * 1e3,
            "seconds": start.elapsed().as_secs_f64(),
        })
    );
    Ok(())
}

/// One line of progress on stderr, over the last.
fn progress(start: std::time::Instant, done: u64, inputs: u64, found: usize, what: &str) {
    let rate = done as f64 / start.elapsed().as_secs_f64();
    eprint!(
        "\r{done} / {inputs} inputs, {found} {what}, {rate:.0}/s, ETA {:.0} s   ",
        (inputs - done) as f64 / rate
    );
}
