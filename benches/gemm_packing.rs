//! The attention decoder's per-step training products, [rows, k] x [k, n] on one thread, three ways:
//! `engine::matmul_packed` over weights packed once (what training does on a CPU with AVX-512), the
//! `gemm` crate packing the weights into panels at every call (what `engine::matmul` asks for), and
//! the crate's own default, which reads them in place when the product has 48 rows or fewer. Shapes:
//! the context's and the recurrent state's share of the gates (1,280 and 512 -> 2,048) and the
//! state's gate (512 -> 1,280), at the row counts a 64-caption batch gives each of two threads.
//! The three are timed alternately, product by product, and give the same sums bit for bit.
//!
//!   cargo bench --bench gemm_packing
//! Prints, per shape, how long packing once takes (from [k, n] and from its transpose), then one
//! line per row count: the median time of each way and its GFLOP/s.

use captioner::engine::{matmul, matmul_packed, PackedWeights, Transpose};
use std::time::Instant;

fn median(times: &mut [f64]) -> f64 {
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn main() {
    // gemm's default for one thread: pack the weights only above 8 x 6 rows.
    const CRATE_DEFAULT: usize = 8;
    for (k, n) in [(1280, 2048), (512, 2048), (512, 1280)] {
        let w: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.37).sin() * 0.05).collect();
        let mut packing = PackedWeights::default();
        for tw in [Transpose::No, Transpose::Yes] {
            let mut times: Vec<f64> = (0..11)
                .map(|_| {
                    let start = Instant::now();
                    packing.pack(&w, k, n, tw);
                    start.elapsed().as_secs_f64()
                })
                .collect();
            println!(
                "{k} x {n}: packed once ({tw:?} transposed) in {:.2} ms",
                median(&mut times) * 1e3
            );
        }
        for rows in [8, 16, 32, 48, 64] {
            let x: Vec<f32> = (0..rows * k).map(|i| (i as f32 * 0.11).cos()).collect();
            let (mut packed, mut in_place) = (vec![0.0f32; rows * n], vec![0.0f32; rows * n]);
            let (mut packed_times, mut in_place_times) = (Vec::new(), Vec::new());
            let mut once = PackedWeights::default();
            once.pack(&w, k, n, Transpose::No);
            let (mut once_y, mut once_times) = (vec![0.0f32; rows * n], Vec::new());
            for _ in 0..41 {
                let start = Instant::now();
                matmul_packed(&mut once_y, &x, &once, rows, false);
                once_times.push(start.elapsed().as_secs_f64());
                for (threshold, y, times) in [
                    (0, &mut packed, &mut packed_times),
                    (CRATE_DEFAULT, &mut in_place, &mut in_place_times),
                ] {
                    // After its first call `matmul` leaves the threshold to whoever sets it.
                    gemm::set_lhs_packing_threshold_single_thread(threshold);
                    let start = Instant::now();
                    matmul(
                        rows,
                        n,
                        k,
                        1.0,
                        &x,
                        Transpose::No,
                        &w,
                        Transpose::No,
                        0.0,
                        y,
                        1,
                    );
                    times.push(start.elapsed().as_secs_f64());
                }
            }
            assert_eq!(packed, in_place, "packing must not change a sum");
            assert_eq!(packed, once_y, "packing once must not change a sum");
            let flops = 2.0 * (rows * k * n) as f64;
            let rate = |seconds: f64| {
                format!(
                    "{:.2} ms ({:.0} GFLOP/s)",
                    seconds * 1e3,
                    flops / seconds / 1e9
                )
            };
            println!(
                "{rows:2} x {k} x {n}: packed once {}, packed per call {}, in place {}",
                rate(median(&mut once_times)),
                rate(median(&mut packed_times)),
                rate(median(&mut in_place_times))
            );
        }
    }
}
