//! File input and output shared by every stage: text that must be UTF-8 (with the line of the first bad
//! byte in the error) and atomic writes (temp file + rename), so a failed run never leaves a half-written
//! output behind.

use anyhow::{bail, Context, Result};
use std::fs;
use std::io::Write;
use std::path::Path;

/// Reads a whole text file; invalid UTF-8 is an error that names the file and the line.
pub fn read_text(path: &Path) -> Result<String> {
    let bytes = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    match String::from_utf8(bytes) {
        Ok(text) => Ok(text
            .strip_prefix('\u{feff}')
            .map(str::to_owned)
            .unwrap_or(text)),
        Err(err) => {
            let valid = err.utf8_error().valid_up_to();
            let bytes = err.as_bytes();
            let line = bytes[..valid].iter().filter(|&&b| b == b'\n').count() + 1;
            bail!(
                "{}:{line}: invalid UTF-8 (byte 0x{:02x} at offset {valid}); captions must be UTF-8 text",
                path.display(),
                bytes[valid]
            )
        }
    }
}

/// Writes `bytes` to `path` through a temp file in the same folder and a rename: readers see either the
/// old file or the complete new one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .with_context(|| format!("{} is not a file path", path.display()))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let written = (|| -> std::io::Result<()> {
        let mut file = fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(err) = written {
        let _ = fs::remove_file(&tmp);
        bail!("cannot write {}: {err}", path.display());
    }
    Ok(())
}

/// Creates `dir` (and its parents) or says why it cannot be an output folder.
pub fn create_output_dir(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| {
        format!(
            "cannot create the output folder {}: choose a folder you can write to",
            dir.display()
        )
    })?;
    if !dir.is_dir() {
        bail!("{} exists and is not a folder", dir.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_utf8_names_the_line() {
        let dir = std::env::temp_dir().join(format!("captioner-fsio-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bad.txt");
        fs::write(&path, b"good line\nsecond \xff line\n").unwrap();
        let err = read_text(&path).unwrap_err().to_string();
        assert!(err.contains("bad.txt:2: invalid UTF-8"), "{err}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp_file() {
        let dir = std::env::temp_dir().join(format!("captioner-atomic-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("out.json");
        write_atomic(&path, b"first").unwrap();
        write_atomic(&path, b"second").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second");
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
