//! Mutation fuzzing on stable Rust for the parsers that read user input: seed files are mutated
//! (bit flips, byte changes, interesting values, cuts, repeats, splices with another seed) and fed
//! to a parser; a panic is a crash (its input is kept), a slow input is reported. `tools/fuzz.rs`
//! runs it for a budget; `tests/fuzz.rs` runs a short pass in CI. The targets (`TARGETS`) are every
//! parser of user input: photos, encoder weights, features files, vocabularies, model configs and the
//! three caption-dataset forms. `http` sends mutated requests to a running `serve`.

pub mod http;

use crate::engine::rng::Rng;
use std::time::{Duration, Instant};

/// A parser under test: it may refuse any input (false), never panic.
pub type Target = fn(&[u8]) -> bool;

/// The image decoder, then the resize a decoded photo goes through.
pub fn decode_image(bytes: &[u8]) -> bool {
    match crate::image::decode(bytes) {
        Ok(img) => {
            crate::image::to_network_input(&img, crate::image::Resize::CenterCrop, 17);
            true
        }
        Err(_) => false,
    }
}

/// `read` on `bytes` written to a file named `name` in a folder of this process's own.
fn through_file(bytes: &[u8], name: &str, read: impl Fn(&std::path::Path) -> bool) -> bool {
    let dir = std::env::temp_dir().join(format!("captioner-fuzz-{}", std::process::id()));
    let path = dir.join(name);
    if std::fs::create_dir_all(&dir).is_err() || std::fs::write(&path, bytes).is_err() {
        return false;
    }
    read(&path)
}

/// Encoder weights: a PyTorch checkpoint (zip or legacy pickle) or safetensors, by file name.
pub fn pth_weights(bytes: &[u8]) -> bool {
    through_file(bytes, "w.pth", |p| {
        crate::vision::weights::Weights::load(p).is_ok()
    })
}

pub fn safetensors_weights(bytes: &[u8]) -> bool {
    crate::tensor_file::read_safetensors(bytes).is_ok()
}

/// A features file (safetensors with captioner's metadata).
pub fn features_file(bytes: &[u8]) -> bool {
    through_file(bytes, "f.safetensors", |p| {
        crate::features_file::Features::load(p).is_ok()
    })
}

/// A model folder's familiar.safetensors, and a familiarity read from what it accepts.
pub fn familiar_file(bytes: &[u8]) -> bool {
    let path = std::path::Path::new("familiar.safetensors");
    match crate::familiar::Familiar::from_bytes(bytes, path) {
        Ok(familiar) => {
            let _ = familiar.familiarity(&[1.0; 1280]);
            true
        }
        Err(_) => false,
    }
}

pub fn vocab_json(bytes: &[u8]) -> bool {
    crate::text::Vocabulary::from_json(&String::from_utf8_lossy(bytes)).is_ok()
}

/// A model folder's config.json, and the parameter layout it declares, as checked against a
/// weights file of the shipped model's size.
pub fn model_config(bytes: &[u8]) -> bool {
    const SHIPPED_WEIGHTS_BYTES: usize = 20 << 20;
    serde_json::from_str::<crate::model::ModelConfig>(&String::from_utf8_lossy(bytes))
        .is_ok_and(|config| config.checked_layout(SHIPPED_WEIGHTS_BYTES).is_ok())
}

fn dataset(bytes: &[u8], name: &str, format: crate::dataset::Format) -> bool {
    through_file(bytes, name, |p| {
        crate::dataset::load(p, Some(format), None).is_ok()
    })
}

pub fn flickr8k_tokens(bytes: &[u8]) -> bool {
    dataset(
        bytes,
        "Flickr8k.token.txt",
        crate::dataset::Format::Flickr8k,
    )
}

pub fn karpathy_json(bytes: &[u8]) -> bool {
    dataset(
        bytes,
        "dataset_flickr8k.json",
        crate::dataset::Format::Karpathy,
    )
}

pub fn kaggle_csv(bytes: &[u8]) -> bool {
    dataset(bytes, "captions.txt", crate::dataset::Format::Kaggle)
}

/// Every target by name, with the fixture files (relative to the repository) that seed it.
pub const TARGETS: [(&str, Target, &[&str]); 10] = [
    ("image", decode_image, &["fixtures/formats"]),
    (
        "pth",
        pth_weights,
        &[
            "fixtures/fuzz/zip.pth",
            "fixtures/fuzz/legacy.pth",
            "fixtures/hostile/pth",
        ],
    ),
    (
        "safetensors",
        safetensors_weights,
        &["fixtures/attention_golden_f32.safetensors"],
    ),
    (
        "features",
        features_file,
        &["fixtures/fuzz/features.safetensors"],
    ),
    (
        "familiar",
        familiar_file,
        &["models/default/familiar.safetensors"],
    ),
    ("vocab", vocab_json, &["fixtures/fuzz/vocab.json"]),
    (
        "config",
        model_config,
        &["models/default/config.json", "fixtures/hostile/config"],
    ),
    (
        "flickr8k",
        flickr8k_tokens,
        &["fixtures/tiny/Flickr8k.token.txt"],
    ),
    (
        "karpathy",
        karpathy_json,
        &["fixtures/tiny/dataset_tiny.json"],
    ),
    ("kaggle", kaggle_csv, &["fixtures/tiny/captions.txt"]),
];

/// What a run found.
#[derive(Debug, Default)]
pub struct Report {
    pub inputs: u64,
    /// Inputs the parser accepted (the rest it refused with an error).
    pub accepted: u64,
    /// Inputs that made the parser panic, with the panic's message.
    pub crashes: Vec<(Vec<u8>, String)>,
    /// The slowest input's time.
    pub slowest: Duration,
}

/// One mutation of `seed` (another seed may be spliced in).
pub fn mutate(rng: &mut Rng, seed: &[u8], seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut data = seed.to_vec();
    let rounds = 1 + rng.below(4);
    for _ in 0..rounds {
        let len = data.len().max(1);
        match rng.below(8) {
            0 if !data.is_empty() => {
                let at = rng.below(data.len());
                data[at] ^= 1 << rng.below(8);
            }
            1 if !data.is_empty() => {
                let at = rng.below(data.len());
                data[at] = rng.next_u64() as u8;
            }
            2 if data.len() >= 4 => {
                // Values that break size arithmetic: 0, all ones, sign bits, large powers of two.
                let values: [u32; 6] = [0, u32::MAX, 0x7fff_ffff, 0x8000_0000, 0xffff, 1 << 20];
                let value = values[rng.below(values.len())].to_le_bytes();
                let at = rng.below(data.len() - 3);
                let width = [1, 2, 4][rng.below(3)];
                data[at..at + width].copy_from_slice(&value[..width]);
            }
            3 => data.truncate(rng.below(len)),
            4 if !data.is_empty() => {
                let start = rng.below(data.len());
                let end = (start + 1 + rng.below(64)).min(data.len());
                let copy = data[start..end].to_vec();
                let at = rng.below(data.len());
                data.splice(at..at, copy);
            }
            5 if !data.is_empty() => {
                let start = rng.below(data.len());
                let end = (start + 1 + rng.below(64)).min(data.len());
                data.drain(start..end);
            }
            6 => {
                let other = &seeds[rng.below(seeds.len())];
                let cut = rng.below(len).min(data.len());
                let from = rng.below(other.len().max(1)).min(other.len());
                data.truncate(cut);
                data.extend_from_slice(&other[from..]);
            }
            _ => {
                let at = rng.below(len).min(data.len());
                let byte = rng.next_u64() as u8;
                data.insert(at, byte);
            }
        }
    }
    data
}

/// The `i`-th input of a run: each seed as it is, then mutations of seeds drawn at random.
pub fn nth_input(rng: &mut Rng, seeds: &[Vec<u8>], i: u64) -> Vec<u8> {
    let base = &seeds[rng.below(seeds.len())];
    match usize::try_from(i).ok().and_then(|i| seeds.get(i)) {
        Some(seed) => seed.clone(),
        None => mutate(rng, base, seeds),
    }
}

/// Feeds `inputs` mutations of `seeds` to `target`; `progress` is called every 10,000 inputs.
pub fn run(
    target: Target,
    seeds: &[Vec<u8>],
    inputs: u64,
    seed: u64,
    mut progress: impl FnMut(&Report),
) -> Report {
    let mut rng = Rng::new(seed);
    let mut report = Report::default();
    // Panics are expected here and reported as crashes, not printed.
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    for i in 0..inputs {
        let input = nth_input(&mut rng, seeds, i);
        let start = Instant::now();
        let outcome = std::panic::catch_unwind(|| target(&input));
        report.slowest = report.slowest.max(start.elapsed());
        report.inputs += 1;
        match outcome {
            Ok(accepted) => report.accepted += u64::from(accepted),
            Err(panic) => {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                report.crashes.push((input, message));
            }
        }
        if (i + 1) % 10_000 == 0 {
            progress(&report);
        }
    }
    std::panic::set_hook(previous);
    report
}
