//! Training-step speed of a decoder on the Flickr8k training split, measured the way the PyTorch
//! baselines measure theirs: batch 64, 5 warm-up steps, then the median of 60 timed steps (forward,
//! backward and Adam; batch assembly excluded). The merge decoder (bench/pytorch_merge_train.py)
//! reads random 1280-d features; the attention decoder (bench/pytorch_attention.py: embedding and
//! hidden 512, attention 256, as `train --decoder attention --hidden 512` makes it) reads random 7x7x1280 grids, 512 of them shared by the images as the PyTorch side
//! does (the values do not change the speed). The captions and vocabulary come from a `captioner
//! prepare` work folder (`--work`), or from `prepare`'s defaults run on `--data` (PTB tokens, min
//! count 5).
//!
//!   cargo bench --bench train_step -- --work work/flickr8k [--threads 2] [--steps 60] [--decoder attention]
//! Prints one line: captions_per_s=<float> step_s=<median> vocab=<V> threads=<n> gflops=<float> peak_rss_mb=<n>

use captioner::decoder::attention::AttentionConfig;
use captioner::decoder::merge::MergeConfig;
use captioner::decoder::{Batch, DecoderConfig};
use captioner::engine::rng::Rng;
use captioner::features_file::Features;
use captioner::nn::adam::AdamConfig;
use captioner::prepare::{prepare, PrepareOptions};
use captioner::run::Optimizer;
use captioner::train::{fill_batch, length_batches};
use captioner::work_folder::{image_rows, load_training_data, ImageRows};
use std::time::Instant;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() -> anyhow::Result<()> {
    let data = arg("--data").unwrap_or_else(|| "../shared/data/flickr8k".to_owned());
    let threads: usize = arg("--threads").map_or(Ok(2), |t| t.parse())?;
    let steps: usize = arg("--steps").map_or(Ok(60), |t| t.parse())?;
    let batch_size = 64;
    captioner::engine::set_threads(threads);

    let scratch = std::env::temp_dir().join(format!("captioner-bench-{}", std::process::id()));
    let work = match arg("--work") {
        Some(work) => work.into(),
        None => {
            let work = scratch.join("work");
            prepare(&PrepareOptions {
                data: data.into(),
                out: work.clone(),
                format: None,
                tokenize: Default::default(),
                min_count: None,
                images: None,
                split_sizes: None,
                force: false,
            })?;
            work
        }
    };
    // Random features, as the PyTorch baseline uses: throughput does not depend on their values.
    let ids: Vec<String> = std::fs::read_to_string(work.join("descriptions.txt"))?
        .lines()
        .filter_map(|l| l.split(' ').next().map(str::to_owned))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut rng = Rng::new(0);
    let dim = 1280;
    let features = Features {
        data: (0..ids.len() * dim).map(|_| rng.uniform() as f32).collect(),
        ids,
        encoder: "random".into(),
        preprocessing: "none".into(),
        dim,
        grid: None,
        classes: None,
    };
    std::fs::create_dir_all(&scratch)?;
    let features_path = scratch.join("features.safetensors");
    features.save(&features_path)?;
    let mut data = load_training_data(&work, &features_path, None)?;
    let vocab = data.vocab.len();
    let (config, images) = match arg("--decoder").as_deref() {
        None | Some("merge") => {
            let config = DecoderConfig::Merge(MergeConfig {
                vocab,
                feature_dim: dim,
                embed_dim: 256,
                hidden: 256,
                dropout: 0.5,
            });
            let images = image_rows(&data.features, config.image_input(), &features_path)?;
            (config, images)
        }
        Some("attention") => {
            const POOL: usize = 512;
            let (regions, width) = (49, 49 * dim);
            let images = ImageRows {
                width,
                data: (0..POOL * width).map(|_| rng.uniform() as f32).collect(),
            };
            data.train
                .items
                .iter_mut()
                .for_each(|(row, _)| *row %= POOL);
            let config = DecoderConfig::Attention(AttentionConfig {
                vocab,
                feature_dim: dim,
                regions,
                embed_dim: 512,
                hidden: 512,
                attention_dim: 256,
                dropout: 0.5,
                alpha_c: 1.0,
            });
            (config, images)
        }
        Some(other) => anyhow::bail!("--decoder {other}: merge or attention"),
    };
    let total = config.layout().total;
    let mut params = config.init(&mut rng);
    let adam = AdamConfig::default();
    let mut optimizer = Optimizer::new(vec![0.0; total], vec![0.0; total], 0, adam, threads);
    let mut ws = config.workspace();
    let mut batch = Batch::default();
    let lengths: Vec<usize> = data.train.items.iter().map(|(_, t)| t.len()).collect();
    let batches = length_batches(&lengths, batch_size, &mut rng);
    let (mut times, mut positions) = (Vec::new(), 0usize);
    for (step, indices) in batches.iter().take(5 + steps).enumerate() {
        fill_batch(
            &mut batch,
            &data.train,
            indices,
            &images,
            config.groups(threads),
        );
        let start = Instant::now();
        optimizer.step(
            &mut params,
            &config,
            &batch,
            &mut ws,
            Some(&mut rng),
            adam.lr,
        );
        if step >= 5 {
            times.push(start.elapsed().as_secs_f64());
            positions += batch.positions();
        }
    }
    let mean_positions = positions as f64 / times.len() as f64;
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let (f, v, n) = (dim as f64, vocab as f64, batch_size as f64);
    let multiply_adds = match config {
        // Per position: output layer 3 x H x V, dense 3 x H x H, LSTM 3 x 4H x (E + H); per caption:
        // image dense 2 x F x H (no input gradient).
        DecoderConfig::Merge(c) => {
            let (e, h) = (c.embed_dim as f64, c.hidden as f64);
            mean_positions * (3.0 * h * v + 3.0 * h * h + 3.0 * 4.0 * h * (e + h)) + n * 2.0 * f * h
        }
        // Per position, three times each (forward, input and weight gradients): output H x V, LSTM
        // 4H x (E + C + H), query H x A, gate H x C; the attention itself (R x A scores, R x C
        // context) twice. Per caption: the regions' projection R x C x A and the initial state
        // 2 x C x H, forward and weight gradient.
        DecoderConfig::Attention(c) => {
            let (e, h, a, r) = (
                c.embed_dim as f64,
                c.hidden as f64,
                c.attention_dim as f64,
                c.regions as f64,
            );
            mean_positions
                * (3.0 * (h * v + 4.0 * h * (e + f + h) + h * a + h * f) + 2.0 * (r * a + r * f))
                + n * 2.0 * (r * f * a + 2.0 * f * h)
        }
    };
    let flops = 2.0 * multiply_adds;
    let rss = std::fs::read_to_string("/proc/self/status")?
        .lines()
        .find(|l| l.starts_with("VmHWM"))
        .and_then(|l| {
            l.split_whitespace()
                .nth(1)
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .unwrap_or(0.0);
    println!(
        "captions_per_s={:.1} step_s={median:.4} vocab={} threads={threads} gflops={:.1} positions_per_step={mean_positions:.0} peak_rss_mb={:.0}",
        batch_size as f64 / median,
        vocab,
        flops / median / 1e9,
        rss / 1024.0
    );
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(())
}
