//! Where the photos of a `caption` run come from: files, folders, list files, WebDataset tar shards
//! (read as a stream, never unpacked) and standard input; and which of them a worker takes when a job
//! is split into shards (`Shard`: by a hash of each photo's key, the same on every machine).

use anyhow::{bail, Context, Result};
use std::io::Read;
use std::path::{Path, PathBuf};

/// What is done with each photo: its key and its bytes, or why they could not be read.
pub type EachPhoto<'a> = dyn FnMut(&str, Result<Vec<u8>>) -> Result<()> + 'a;

/// Where a photo, or a stream of them, comes from.
pub enum Source {
    File(PathBuf),
    Stdin,
    /// An address given where a photo was expected: reported, never fetched.
    Url(String),
    /// A WebDataset shard: members `<key>.<ext>`, the photos among them captioned in order.
    Tar(PathBuf),
}

/// Photo extensions of WebDataset members (other members, `.txt` and `.json`, are not photos).
const TAR_PHOTO_EXTENSIONS: [&str; 6] = ["jpg", "jpeg", "png", "webp", "bmp", "gif"];

/// Command-line arguments and list files -> sources: files as given, folders as their photo files
/// sorted by path (subfolders too with `recursive`), `.tar` files as WebDataset shards, `-` as
/// standard input; each list file gives one path per line (blank lines and lines starting with `#`
/// left out; relative paths are taken from the working folder). A path that does not exist is
/// kept, so its error is reported in order.
pub fn expand(
    args: &[PathBuf],
    lists: &[PathBuf],
    recursive: bool,
) -> Result<Vec<(String, Source)>> {
    let mut out = Vec::new();
    let mut listed = Vec::new();
    for list in lists {
        listed.extend(read_list(list)?.into_iter().map(PathBuf::from));
    }
    for arg in args.iter().chain(&listed) {
        let text = arg.to_string_lossy();
        if arg.as_os_str() == "-" {
            out.push(("-".to_owned(), Source::Stdin));
        } else if text.starts_with("http://") || text.starts_with("https://") {
            out.push((text.clone().into_owned(), Source::Url(text.into_owned())));
        } else if arg.is_dir() {
            let (files, others) = crate::image::image_files(arg, recursive)?;
            crate::image::report_others(arg, &others);
            if files.is_empty() {
                bail!(
                    "{} holds no photos (JPEG, PNG, WebP, GIF, BMP, TIFF, PNM, QOI, ICO){}",
                    arg.display(),
                    if recursive {
                        ""
                    } else {
                        " (pass --recursive to search its subfolders)"
                    }
                );
            }
            out.extend(
                files
                    .into_iter()
                    .map(|p| (p.display().to_string(), Source::File(p))),
            );
        } else if is_tar(arg) {
            out.push((arg.display().to_string(), Source::Tar(arg.clone())));
        } else {
            out.push((arg.display().to_string(), Source::File(arg.clone())));
        }
    }
    Ok(out)
}

/// A list file's entries: one per line, trimmed; blank lines and lines starting with `#` left out.
pub fn read_list(path: &Path) -> Result<Vec<String>> {
    Ok(crate::fsio::read_text(path)?
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(String::from)
        .collect())
}

pub fn read_source(source: &Source) -> Result<Vec<u8>> {
    match source {
        Source::File(path) => std::fs::read(path).context("cannot read the file"),
        Source::Url(url) => {
            bail!(
                "URLs are not read; download it or pipe it: curl -sL '{url}' | captioner caption -"
            )
        }
        Source::Stdin => {
            let mut bytes = Vec::new();
            std::io::stdin()
                .read_to_end(&mut bytes)
                .context("cannot read standard input")?;
            Ok(bytes)
        }
        Source::Tar(path) => bail!("{} is a tar shard, not one photo", path.display()),
    }
}

/// Calls `each` with every photo's key and bytes (or why they could not be read), in order, for
/// the photos `shard` holds. A file's key is its path as given; a tar member's is its WebDataset
/// key, the member's path without its extension. A tar shard that cannot be read on is one error
/// under its own name, and the sources after it are still read. An error of `each` ends the run.
pub fn for_each_photo(
    sources: &[(String, Source)],
    shard: Option<&Shard>,
    mut each: impl FnMut(&str, Result<Vec<u8>>) -> Result<()>,
) -> Result<()> {
    let held = |key: &str| shard.is_none_or(|s| s.holds(key));
    for (name, source) in sources {
        match source {
            Source::Tar(path) => for_each_member(path, &held, &mut each)?,
            _ if held(name) => each(name, read_source(source))?,
            _ => {}
        }
    }
    Ok(())
}

/// Whether a path names a tar shard (by its extension).
pub fn is_tar(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("tar"))
}

/// A tar member's WebDataset key when it is a photo (a regular file with a photo extension).
fn photo_key<R: Read>(entry: &tar::Entry<R>) -> Option<String> {
    let member = entry.path().ok()?;
    let photo = member
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| TAR_PHOTO_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()));
    (entry.header().entry_type().is_file() && photo)
        .then(|| member.with_extension("").to_string_lossy().into_owned())
}

/// The keys of a tar shard's photos, in order (one pass over the shard, reading headers only).
pub fn tar_keys(path: &Path) -> Result<Vec<String>> {
    let what = || format!("{} is not a readable tar shard", path.display());
    let file = std::fs::File::open(path).with_context(what)?;
    let mut archive = tar::Archive::new(std::io::BufReader::new(file));
    let mut keys = Vec::new();
    for entry in archive.entries().with_context(what)? {
        if let Some(key) = photo_key(&entry.with_context(what)?) {
            keys.push(key);
        }
    }
    Ok(keys)
}

/// Calls `each` with the key and bytes of every photo member of the tar shard at `path` that `held`
/// takes, in order. A shard that cannot be read on is one error under its own name; an error of
/// `each` ends the run.
pub fn for_each_member(
    path: &Path,
    held: &dyn Fn(&str) -> bool,
    each: &mut EachPhoto,
) -> Result<()> {
    let name = path.display().to_string();
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(err) => {
            return each(
                &name,
                Err(anyhow::Error::new(err).context("cannot open the tar shard")),
            )
        }
    };
    let mut archive = tar::Archive::new(std::io::BufReader::new(file));
    let entries = match archive.entries() {
        Ok(entries) => entries,
        Err(err) => {
            return each(
                &name,
                Err(anyhow::Error::new(err).context("not a tar file")),
            )
        }
    };
    for entry in entries {
        let mut entry = match entry {
            Ok(entry) => entry,
            Err(err) => {
                let err = anyhow::Error::new(err)
                    .context("a damaged tar member: the rest of the shard is skipped");
                return each(&name, Err(err));
            }
        };
        let Some(key) = photo_key(&entry).filter(|key| held(key)) else {
            continue;
        };
        let mut bytes = Vec::new();
        let read = entry
            .read_to_end(&mut bytes)
            .map(|_| bytes)
            .with_context(|| format!("cannot read the member {key} of {name}"));
        each(&key, read)?;
    }
    Ok(())
}

/// Part `index` of `count` of a job: the items whose key hashes to `index` (FNV-1a, 64 bits, of the
/// key's UTF-8 bytes, modulo `count`). Every machine computes the same split.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// "I/N", 0-based.
    pub fn parse(text: &str) -> Result<Shard> {
        let parsed = text
            .split_once('/')
            .and_then(|(i, n)| Some((i.trim().parse().ok()?, n.trim().parse().ok()?)));
        match parsed {
            Some((index, count)) if index < count => Ok(Shard { index, count }),
            _ => bail!("--shard {text:?}: give I/N with 0 <= I < N, as in --shard 3/8"),
        }
    }

    /// The shard the cluster engine assigned to this process, and where it was read: a Slurm
    /// array task (`SLURM_ARRAY_TASK_ID` of `SLURM_ARRAY_TASK_COUNT`), or a Kubernetes Indexed
    /// Job's `JOB_COMPLETION_INDEX` of `count` (its pod count is not in its environment).
    pub fn from_env(
        var: impl Fn(&str) -> Option<String>,
        count: Option<usize>,
    ) -> Result<Option<(Shard, String)>> {
        let number = |name: &str| -> Result<Option<usize>> {
            var(name)
                .map(|v| {
                    v.trim()
                        .parse()
                        .with_context(|| format!("{name}={v:?} is not a whole number"))
                })
                .transpose()
        };
        let (index, count, source) = if let Some(index) = number("SLURM_ARRAY_TASK_ID")? {
            let count = match number("SLURM_ARRAY_TASK_COUNT")? {
                Some(count) => count,
                None => bail!(
                    "SLURM_ARRAY_TASK_ID is set without SLURM_ARRAY_TASK_COUNT: pass --shard I/N"
                ),
            };
            (
                index,
                count,
                "Slurm (SLURM_ARRAY_TASK_ID / SLURM_ARRAY_TASK_COUNT)",
            )
        } else if let Some(index) = number("JOB_COMPLETION_INDEX")? {
            let Some(count) = count else {
                bail!("JOB_COMPLETION_INDEX is set (a Kubernetes Indexed Job): give the job's completions with --shard-count N")
            };
            (
                index,
                count,
                "Kubernetes (JOB_COMPLETION_INDEX, --shard-count)",
            )
        } else {
            return Ok(None);
        };
        if index >= count {
            bail!("{source}: shard {index} of {count} does not exist");
        }
        Ok(Some((Shard { index, count }, source.to_owned())))
    }

    pub fn holds(&self, key: &str) -> bool {
        let hash = key.bytes().fold(0xcbf29ce484222325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
        });
        (hash % self.count as u64) as usize == self.index
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_split_keys_deterministically_and_completely() {
        let keys: Vec<String> = (0..1000).map(|i| format!("photo_{i:05}")).collect();
        let shards: Vec<Shard> = (0..8).map(|index| Shard { index, count: 8 }).collect();
        for key in &keys {
            assert_eq!(shards.iter().filter(|s| s.holds(key)).count(), 1, "{key}");
        }
        let sizes: Vec<usize> = shards
            .iter()
            .map(|s| keys.iter().filter(|k| s.holds(k)).count())
            .collect();
        assert!(sizes.iter().all(|&n| (90..=160).contains(&n)), "{sizes:?}");
        // FNV-1a's published value for "a" (0xaf63dc4c8601ec8c) modulo 8 is 4.
        assert!(Shard { index: 4, count: 8 }.holds("a"));
    }

    #[test]
    fn shards_come_from_the_flag_or_the_engines_variables() {
        assert_eq!(Shard::parse("3/8").unwrap(), Shard { index: 3, count: 8 });
        for bad in ["8/8", "3", "a/b", "-1/4"] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        let slurm = Shard::from_env(
            env(&[
                ("SLURM_ARRAY_TASK_ID", "2"),
                ("SLURM_ARRAY_TASK_COUNT", "5"),
            ]),
            None,
        )
        .unwrap()
        .unwrap();
        assert_eq!(slurm.0, Shard { index: 2, count: 5 });
        assert!(slurm.1.contains("Slurm"));
        let k8s = Shard::from_env(env(&[("JOB_COMPLETION_INDEX", "1")]), Some(4))
            .unwrap()
            .unwrap();
        assert_eq!(k8s.0, Shard { index: 1, count: 4 });
        let no_count = Shard::from_env(env(&[("JOB_COMPLETION_INDEX", "1")]), None);
        assert!(no_count.unwrap_err().to_string().contains("--shard-count"));
        assert!(Shard::from_env(env(&[]), None).unwrap().is_none());
        let out_of_range = Shard::from_env(
            env(&[
                ("SLURM_ARRAY_TASK_ID", "5"),
                ("SLURM_ARRAY_TASK_COUNT", "5"),
            ]),
            None,
        );
        assert!(out_of_range.is_err());
    }
}
