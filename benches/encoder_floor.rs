//! How fast EfficientNet-Lite0's 1x1 convolutions could be in f32 on this CPU: each distinct shape
//! of its pointwise products ([pixels, cin] x [cin, cout], what `vision::conv` hands the gemm crate)
//! timed alone on one thread with warm caches, and the layers' multiply-adds counted from the
//! network's stages. The floor is the pointwise multiply-adds at the best rate seen: no f32 encoder
//! built on these products runs faster (docs/BENCHMARKS.md, "Where a photo's time goes").
//!
//!   cargo bench --bench encoder_floor
//! Prints one line per shape (median ms, GFLOP/s), then the multiply-adds of the stem, the
//! depthwise and the pointwise layers, the pointwise products' time with each at its shape's rate,
//! and the floor at the best rate, in ms.

use captioner::engine::{matmul, Transpose};
use captioner::vision::efficientnet_lite::Config;
use std::time::Instant;

/// Every pointwise product as (pixels, cin, cout), and the stem's and depthwise multiply-adds.
fn layers() -> (Vec<(usize, usize, usize)>, usize, usize) {
    let config = Config::lite0();
    let (mut side, mut cin) = (config.image_size / 2, config.stem_channels);
    let stem = side * side * cin * 3 * 3 * 3;
    let (mut pointwise, mut depthwise) = (Vec::new(), 0);
    for &(repeats, k, first_stride, expand, cout) in &config.stages {
        for r in 0..repeats {
            let hidden = cin * expand;
            if expand != 1 {
                pointwise.push((side * side, cin, hidden));
            }
            side = side.div_ceil(if r == 0 { first_stride } else { 1 });
            depthwise += side * side * hidden * k * k;
            pointwise.push((side * side, hidden, cout));
            cin = cout;
        }
    }
    pointwise.push((side * side, cin, config.head_channels));
    (pointwise, stem, depthwise)
}

fn main() {
    captioner::engine::set_threads(1);
    let (pointwise, stem, depthwise) = layers();
    let mut shapes = pointwise.clone();
    shapes.sort();
    shapes.dedup();
    let mut best = 0.0f64;
    let mut median_ms = std::collections::HashMap::new();
    for (m, k, n) in shapes {
        let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.11).cos() * 0.05).collect();
        let mut c = vec![0.0f32; m * n];
        let flops = 2.0 * (m * k * n) as f64;
        let reps = (2e8 / flops).ceil().max(3.0) as usize;
        let mut times: Vec<f64> = (0..7)
            .map(|_| {
                let start = Instant::now();
                for _ in 0..reps {
                    matmul(
                        m,
                        n,
                        k,
                        1.0,
                        &a,
                        Transpose::No,
                        &b,
                        Transpose::No,
                        0.0,
                        &mut c,
                        1,
                    );
                    std::hint::black_box(&c);
                }
                start.elapsed().as_secs_f64() / reps as f64
            })
            .collect();
        times.sort_by(f64::total_cmp);
        let rate = flops / times[3] / 1e9;
        best = best.max(rate);
        median_ms.insert((m, k, n), times[3] * 1e3);
        println!(
            "{m} x {k} x {n}: {:.3} ms, {rate:.1} GFLOP/s",
            times[3] * 1e3
        );
    }
    let macs: usize = pointwise.iter().map(|&(m, k, n)| m * k * n).sum();
    println!(
        "multiply-adds: stem {:.1}M, depthwise {:.1}M, pointwise {:.1}M",
        stem as f64 / 1e6,
        depthwise as f64 / 1e6,
        macs as f64 / 1e6
    );
    let alone: f64 = pointwise.iter().map(|shape| median_ms[shape]).sum();
    println!("pointwise products each at its shape's rate: {alone:.2} ms an image on one thread");
    println!(
        "pointwise floor at the best rate ({best:.1} GFLOP/s): {:.2} ms an image on one thread",
        2.0 * macs as f64 / (best * 1e9) * 1e3
    );
}
