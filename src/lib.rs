//! `captioner`: a pure-Rust image-caption generator. See docs/ARCHITECTURE.md for the pipeline and
//! which module owns what.

pub mod dataset;
pub mod fsio;
pub mod prepare;
pub mod text;
