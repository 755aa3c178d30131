//! The pieces of one photo's caption, timed in one process: decode + resize, the encoder, and the
//! decoder search (greedy and beam 3) over test-split features, so that the warm latency of
//! bench/latency.sh can be taken apart. Minimum and median of repeated runs (2 threads by default).
//!
//!   cargo bench --bench caption_pieces -- --features work/flickr8k-lite0.safetensors \
//!       [--photo ../shared/data/flickr8k/Images/1000268201_693b08cb0e.jpg] [--threads 2] [--images 200]
//! The features file is any `captioner features --grid` output for EfficientNet-Lite0 (the shipped
//! model's).
//! Prints key=value lines: decode_ms and encoder_ms (min and median of 60), search_beam1_ms (greedy)
//! and search_beam3_ms (mean per image over --images features, median of 3 passes), and
//! search_many_beam3_ms: the same beam-3 searches stepped `batch` images at a time (their captions
//! checked equal to the one-image search's).

use captioner::generate::{search, search_many, Avoid, SearchOptions, SearchRequest};
use captioner::image::{decode, to_network_input, Resize};
use captioner::model::Model;
use captioner::vision::{Encoder, EncoderKind};
use captioner::work_folder::model_images;
use std::time::Instant;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// (minimum, median) in milliseconds.
fn summary(mut times: Vec<f64>) -> (f64, f64) {
    times.sort_by(f64::total_cmp);
    (times[0] * 1e3, times[times.len() / 2] * 1e3)
}

fn main() -> anyhow::Result<()> {
    let photo = arg("--photo")
        .unwrap_or_else(|| "../shared/data/flickr8k/Images/1000268201_693b08cb0e.jpg".into());
    let features = arg("--features").unwrap_or_else(|| "work/flickr8k-lite0.safetensors".into());
    let threads: usize = arg("--threads").map_or(Ok(2), |t| t.parse())?;
    let images: usize = arg("--images").map_or(Ok(200), |t| t.parse())?;
    captioner::engine::set_threads(threads);

    let bytes = std::fs::read(&photo)?;
    let encoder = Encoder::load(EncoderKind::parse("efficientnet-lite0")?, None)?;
    let (mut decode_times, mut encoder_times) = (Vec::new(), Vec::new());
    for _ in 0..60 {
        let start = Instant::now();
        let image = decode(&bytes)?;
        let input = to_network_input(&image, Resize::CenterCrop, 224);
        decode_times.push(start.elapsed().as_secs_f64());
        let start = Instant::now();
        std::hint::black_box(encoder.features(&input, threads));
        encoder_times.push(start.elapsed().as_secs_f64());
    }
    let (decode_min, decode_median) = summary(decode_times);
    let (encoder_min, encoder_median) = summary(encoder_times);
    println!("decode_ms min={decode_min:.2} median={decode_median:.2}");
    println!("encoder_ms min={encoder_min:.2} median={encoder_median:.2}");

    let model = Model::shipped()?;
    // The rows the shipped decoder reads: each image's grid (made with `captioner features --grid`).
    let (features, rows) = model_images(&model, std::path::Path::new(&features))?;
    let count = images.min(features.ids.len());
    for beam in [1, 3] {
        let options = SearchOptions {
            beam,
            length_penalty: 0.0,
            block_repeats: true,
        };
        let mut passes = Vec::new();
        for _ in 0..3 {
            let start = Instant::now();
            for i in 0..count {
                std::hint::black_box(search(&model, rows.row(i), &options));
            }
            passes.push(start.elapsed().as_secs_f64() / count as f64);
        }
        let (_, median) = summary(passes);
        println!("search_beam{beam}_ms median={median:.3} images={count}");
    }
    // Beam 3 again with the searches stepped together, `batch` images at a time (one thread, as
    // above): the captions must be the same, the time per image is what batching saves.
    let options = SearchOptions {
        beam: 3,
        length_penalty: 0.0,
        block_repeats: true,
    };
    let inputs: Vec<&[f32]> = (0..count).map(|i| rows.row(i)).collect();
    let alone: Vec<_> = inputs
        .iter()
        .map(|input| search(&model, input, &options))
        .collect();
    for batch in [1, 4, 16, 64] {
        let requests: Vec<SearchRequest> = (0..count)
            .map(|input| SearchRequest {
                input,
                options,
                constraints: &[],
                avoid: Avoid::default(),
            })
            .collect();
        let mut passes = Vec::new();
        for _ in 0..3 {
            let start = Instant::now();
            let together = search_many(&model, &inputs, &requests, batch);
            passes.push(start.elapsed().as_secs_f64() / count as f64);
            let same = together
                .iter()
                .zip(&alone)
                .all(|(t, a)| t.as_ref() == Some(a));
            assert!(
                same,
                "batch {batch}: a caption differs from the one-image search's"
            );
        }
        let (_, median) = summary(passes);
        println!("search_many_beam3_ms batch={batch} median={median:.3} images={count}");
    }
    Ok(())
}
