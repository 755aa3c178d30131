//! The compute engine: matrix products from the `gemm` crate, the thread setting, and small helpers.
//! Everything else (convolutions, LSTM, losses) is plain loops in the layers that need them.

pub mod math;
mod matmul;
pub mod params;
pub mod rng;
pub mod simd;

pub use matmul::{matmul, transpose, Transpose};

use std::sync::atomic::{AtomicUsize, Ordering};

static THREADS: AtomicUsize = AtomicUsize::new(0);

/// Sets the number of threads for matrix products and parallel loops (0 = all cores).
/// The rayon pool can be sized only once per process; later calls change the GEMM setting only.
pub fn set_threads(threads: usize) {
    let threads = if threads == 0 {
        available_cores()
    } else {
        threads
    };
    THREADS.store(threads, Ordering::Relaxed);
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global();
}

pub fn threads() -> usize {
    match THREADS.load(Ordering::Relaxed) {
        0 => available_cores(),
        n => n,
    }
}

fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The float types the layers run in: f32 for work, f64 for gradient checks.
pub trait Real:
    num_traits::Float
    + num_traits::FromPrimitive
    + std::iter::Sum
    + std::ops::AddAssign
    + std::fmt::Debug
    + Default
    + Send
    + Sync
    + 'static
{
    fn from_f64_lossy(v: f64) -> Self;
}

impl Real for f32 {
    fn from_f64_lossy(v: f64) -> Self {
        v as f32
    }
}

impl Real for f64 {
    fn from_f64_lossy(v: f64) -> Self {
        v
    }
}
