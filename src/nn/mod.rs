//! Layers with explicit forward and backward passes over flat row-major buffers (llm.c style).
//! Each `*_backward` accumulates parameter gradients (`+=`) and writes input gradients (`=`).
//! Generic over f32 (training) and f64 (gradient checks against finite differences).

pub mod activation;
pub mod adam;
pub mod attention;
pub mod dropout;
pub mod embedding;
pub mod linear;
pub mod lstm;
pub mod softmax_xent;

#[cfg(test)]
pub(crate) mod gradcheck;
