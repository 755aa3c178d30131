//! One photo's caption in one process, without grounding and with it at chosen widths of the
//! grounded search, runs interleaved (off, width a, width b, off, ...): the decode, encoder and
//! search times that `Captioner::caption` records, so that bench/ground_latency.sh's ratio can be
//! taken apart without process start-up or the noise of separate runs.
//!
//!   cargo bench --bench ground_pieces -- [--photo P] [--widths 4,6] [--rounds 30] [--threads 2]
//! Prints one line per setting: median decode, encode and generate ms, the median total, and the
//! total's ratio to the ungrounded caption's. Then the searches that `generate` runs, each alone:
//! the plain beam search and the photo gain of its caption (`--json`'s "grounding") on one
//! thread, and the constrained search at each width on one thread and with its steps split over
//! two (grounding runs it beside the plain search, and it takes the second thread once that is
//! done).

use captioner::caption::{CaptionOptions, Captioner};
use captioner::generate::{photo_gain, search, search_constrained, Avoid, Beside, SearchOptions};
use captioner::ground::{GroundOptions, Grounding};
use captioner::image::{decode, to_network_input, Resize};
use captioner::vision::{Encoder, EncoderKind};
use std::time::Instant;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() -> anyhow::Result<()> {
    let photo = arg("--photo")
        .unwrap_or_else(|| "../shared/data/imagenet-sample/n01558993_robin.JPEG".into());
    let widths: Vec<usize> = arg("--widths")
        .unwrap_or_else(|| "4,6".into())
        .split(',')
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    let rounds: usize = arg("--rounds").map_or(Ok(30), |t| t.parse())?;
    let threads: usize = arg("--threads").map_or(Ok(2), |t| t.parse())?;
    captioner::engine::set_threads(threads);

    let bytes = std::fs::read(&photo)?;
    let captioner = Captioner::load(None, None)?;
    // The `caption` command's defaults.
    let options = SearchOptions::default();
    let asked = |ground| CaptionOptions {
        search: options,
        ground,
        details: false,
    };
    let settings: Vec<(String, CaptionOptions)> = std::iter::once(("off".to_owned(), asked(None)))
        .chain(widths.iter().map(|&beam| {
            let ground = GroundOptions {
                beam,
                ..GroundOptions::default()
            };
            (format!("ground-beam {beam}"), asked(Some(ground)))
        }))
        .collect();
    // [setting][round] = (decode, encode, generate) in ms.
    let mut times = vec![Vec::new(); settings.len()];
    for _ in 0..rounds {
        for ((_, asked), times) in settings.iter().zip(&mut times) {
            let captioned = captioner.caption(&bytes, asked)?;
            let t = &captioned.timings;
            let millis = |d: std::time::Duration| d.as_secs_f64() * 1e3;
            times.push((millis(t.decode), millis(t.encode), millis(t.generate)));
        }
    }
    let total = |times: &[(f64, f64, f64)]| median(times.iter().map(|t| t.0 + t.1 + t.2).collect());
    let off_total = total(&times[0]);
    for ((name, asked), times) in settings.iter().zip(&times) {
        let caption = captioner.caption(&bytes, asked)?;
        println!(
            "{name}: decode {:.1} ms, encode {:.1} ms, generate {:.1} ms, total {:.1} ms (ratio {:.2}) \"{}\"",
            median(times.iter().map(|t| t.0).collect()),
            median(times.iter().map(|t| t.1).collect()),
            median(times.iter().map(|t| t.2).collect()),
            total(times),
            total(times) / off_total,
            caption.sentence
        );
    }

    let model = &captioner.model;
    let encoder = Encoder::load(EncoderKind::parse(&model.config.encoder)?, None)?;
    // The shipped model's preprocessing.
    let input = to_network_input(&decode(&bytes)?, Resize::Squash, 224);
    let (pooled, grid) = encoder.features_and_grid(&input, threads);
    let probabilities = encoder.class_probabilities(&pooled).unwrap_or_default();
    let Some(grounding) =
        Grounding::choose(&probabilities, &model.vocab, &GroundOptions::default())
    else {
        println!("no class is confident enough to ground this photo");
        return Ok(());
    };
    let constraints = [grounding.constraint(model)?];
    let ms = |run: &mut dyn FnMut()| {
        median(
            (0..rounds)
                .map(|_| {
                    let start = Instant::now();
                    run();
                    start.elapsed().as_secs_f64() * 1e3
                })
                .collect(),
        )
    };
    let plain = search(model, &grid.data, &options);
    let plain_ms = ms(&mut || {
        std::hint::black_box(search(model, &grid.data, &options));
    });
    let gain_ms = ms(&mut || {
        std::hint::black_box(photo_gain(model, &grid.data, &plain));
    });
    println!(
        "one thread: plain search {plain_ms:.1} ms ({} words), its photo gain {gain_ms:.1} ms",
        plain.tokens.len()
    );
    for &beam in &widths {
        let options = SearchOptions { beam, ..options };
        // A constraint the model cannot express fails here, before the timing.
        search_constrained(
            model,
            &grid.data,
            &options,
            &constraints,
            Beside::default(),
            Avoid::default(),
        )?;
        for (split_steps, threads) in [
            (false, "one thread"),
            (true, "steps split over two threads"),
        ] {
            let beside = Beside {
                split_steps,
                cancel: None,
            };
            let mut run = || {
                std::hint::black_box(
                    search_constrained(
                        model,
                        &grid.data,
                        &options,
                        &constraints,
                        beside,
                        Avoid::default(),
                    )
                    .ok(),
                );
            };
            println!(
                "{threads}: constrained search, width {beam}: {:.1} ms",
                ms(&mut run)
            );
        }
    }
    Ok(())
}
