//! Caption decoders: language models conditioned on an image feature.

pub mod merge;
