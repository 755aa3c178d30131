//! File input and output shared by every stage: text that must be UTF-8 (with the line of the first bad
//! byte in the error), atomic writes (temp file + rename), so a failed run never leaves a half-written
//! output behind, and zip members read whole only up to a limit (an archive from elsewhere may say
//! anything of its members' sizes). Tensor files are tensor_file.rs's.

use anyhow::{bail, Context, Result};
use std::fs;
use std::io::{Read, Seek, Write};
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

/// The member `name` of a zip archive, whole, refused when it holds more than `limit` bytes: its
/// declared size is checked first, then the read stops one byte past the limit (a member may hold
/// more than its header says). The caller names the archive in the error.
pub fn read_zip_member<R: Read + Seek>(
    archive: &mut zip::ZipArchive<R>,
    name: &str,
    limit: u64,
) -> Result<Vec<u8>> {
    let member = archive
        .by_name(name)
        .with_context(|| format!("{name} is missing from the archive"))?;
    if member.size() > limit {
        bail!(
            "{name} is {} bytes, more than the {limit} this archive may hold",
            member.size()
        );
    }
    let mut bytes = Vec::new();
    member
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {name} from the archive"))?;
    if bytes.len() as u64 > limit {
        bail!("{name} holds more than the {limit} bytes this archive may hold");
    }
    Ok(bytes)
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
