//! `captioner`: a pure-Rust image-caption generator. See docs/ARCHITECTURE.md for the pipeline and
//! which module owns what.

pub mod caption;
pub mod dataset;
pub mod decoder;
pub mod engine;
pub mod evaluate;
pub mod evidence;
pub mod familiar;
pub mod features;
pub mod features_file;
pub mod fetch;
pub mod figure;
pub mod fsio;
pub mod fuzz;
pub mod generate;
pub mod ground;
pub mod image;
pub mod metrics;
pub mod model;
pub mod nn;
pub mod photos;
pub mod prepare;
pub mod progress;
pub mod records;
pub mod run;
pub mod scst;
#[cfg(feature = "serve")]
pub mod serve;
pub mod tensor_file;
pub mod text;
pub mod train;
pub mod vision;
pub mod work_folder;
