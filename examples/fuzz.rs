//! Mutation fuzzing of one parser (src/fuzz.rs) for a budget of inputs:
//!
//!   cargo run --release --example fuzz -- [--target image] [--inputs 1000000] [--seed 1]
//!       [--crashes DIR] [SEED_FILE_OR_DIR ...]
//!
//! Targets: image, pth, safetensors, features, vocab, config, flickr8k, karpathy, kaggle. Seeds
//! default to the target's fixtures. Prints progress on stderr and one JSON line at the end; each
//! crashing input is written to --crashes (default fuzz-crashes/).

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
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--inputs" => inputs = args.next().unwrap_or_default().parse()?,
            "--seed" => seed = args.next().unwrap_or_default().parse()?,
            "--crashes" => crashes = PathBuf::from(args.next().unwrap_or_default()),
            "--target" => target = args.next().unwrap_or_default(),
            _ => paths.push(PathBuf::from(arg)),
        }
    }
    let Some(&(name, parse, fixtures)) = captioner::fuzz::TARGETS.iter().find(|t| t.0 == target)
    else {
        anyhow::bail!("no target {target:?}: image, pth, safetensors, features, vocab, config, flickr8k, karpathy or kaggle");
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
        let rate = r.inputs as f64 / start.elapsed().as_secs_f64();
        eprint!(
            "\r{} / {inputs} inputs, {} crashes, {:.0}/s, ETA {:.0} s   ",
            r.inputs,
            r.crashes.len(),
            rate,
            (inputs - r.inputs) as f64 / rate
        );
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
