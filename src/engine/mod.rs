//! The compute engine: matrix products from the `gemm` crate, from weights packed once for the
//! few-row products of a training recurrence (`packed.rs`) and of a generation step (`panel.rs`),
//! the thread setting, and small helpers.
//! Everything else (convolutions, LSTM, losses) is plain loops in the layers that need them.

pub mod math;
mod matmul;
mod packed;
mod panel;
pub mod params;
pub mod rng;
pub mod simd;

pub use matmul::{matmul, transpose, Transpose};
pub use packed::{matmul_packed, PackedWeights};
pub use panel::{matmul_panels, PanelWeights};

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
    keep_freed_memory();
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global();
}

/// glibc hands freed memory back to the system eagerly: every large scratch buffer that the matrix
/// products allocate and free then costs fresh page faults, and TLB shootdowns on the other threads
/// (4% of an attention training step). Large blocks are kept for reuse instead (32 MB is the most
/// glibc allows before it maps a block on its own).
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator thresholds (glibc takes its own locks).
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
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

    /// The buffer as f32s, for kernels written for f32 only (`matmul_packed`); None for f64.
    fn f32s(values: &[Self]) -> Option<&[f32]>;

    fn f32s_mut(values: &mut [Self]) -> Option<&mut [f32]>;
}

impl Real for f32 {
    fn from_f64_lossy(v: f64) -> Self {
        v as f32
    }

    fn f32s(values: &[Self]) -> Option<&[f32]> {
        Some(values)
    }

    fn f32s_mut(values: &mut [Self]) -> Option<&mut [f32]> {
        Some(values)
    }
}

impl Real for f64 {
    fn from_f64_lossy(v: f64) -> Self {
        v
    }

    fn f32s(_: &[Self]) -> Option<&[f32]> {
        None
    }

    fn f32s_mut(_: &mut [Self]) -> Option<&mut [f32]> {
        None
    }
}
