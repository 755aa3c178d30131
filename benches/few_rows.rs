//! The generation step's matrix product alone: `matmul_panels` over the shipped attention
//! decoder's largest matrix (the LSTM's [word, context, h] -> gates, 2304 x 2048, f16) for the row
//! counts a search gives it (1: greedy and teacher forcing; 3: beam 3; 8 and 12: the grounded search
//! at --ground-beam 4 and 6, two constraint groups each). One thread, as in generation.
//!
//!   cargo bench --bench few_rows
//! Prints one line per row count: the median of 200 products in ms, and the multiply-adds per second.

use captioner::engine::{matmul_panels, PanelWeights};
use std::time::Instant;

fn main() {
    let (din, dout) = (512 + 1280 + 512, 4 * 512);
    let weights = PanelWeights::new(dout, din, |o, i| {
        half::f16::from_f32(((o * din + i) as f32 * 0.37).sin() * 0.05).to_f32()
    });
    println!("f16 weights read in hardware: {}", weights.reads_f16());
    let bias = vec![0.01f32; dout];
    for rows in [1, 2, 3, 4, 6, 8, 12] {
        let x: Vec<f32> = (0..rows * din).map(|i| (i as f32 * 0.11).cos()).collect();
        let mut y = vec![0.0f32; rows * dout];
        let mut times = Vec::new();
        for _ in 0..200 {
            let start = Instant::now();
            matmul_panels(&mut y, &x, &weights, &bias, rows);
            times.push(start.elapsed().as_secs_f64());
            std::hint::black_box(&y);
        }
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        let madds = (rows * din * dout) as f64 / median / 1e9;
        println!(
            "rows={rows} median_ms={:.3} gmadds_per_s={madds:.1}",
            median * 1e3
        );
    }
}
