//! Caption records of a batch job: JSON lines `{"key", "model"}` and the fields every JSON form of a
//! caption shares (`Captioned::json`: "caption", "tokens", "confidence", "claims"), appended and
//! flushed one at a time, so that a killed or preempted run loses at most the line it was writing
//! and a rerun resumes after the last whole line without duplicates; and `merge`, which joins the
//! shards' files into one, every key once, sorted by key.

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::io::{Seek, Write};
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The photo's key: its path, or its member's path in a tar shard without the extension.
    pub key: String,
    /// The model's name (`Captioner::name`).
    pub model: String,
    /// `Captioned::json`'s fields, named there once.
    #[serde(flatten)]
    pub caption: serde_json::Map<String, serde_json::Value>,
}

impl Record {
    pub fn new(key: &str, model: &str, caption: &crate::caption::Captioned) -> Self {
        let serde_json::Value::Object(fields) = caption.json() else {
            unreachable!("Captioned::json is an object");
        };
        Record {
            key: key.to_owned(),
            model: model.to_owned(),
            caption: fields,
        }
    }
}

/// A records file open for appending.
pub struct RecordWriter {
    file: std::fs::File,
    path: PathBuf,
    done: HashSet<String>,
}

impl RecordWriter {
    /// Opens (or creates) `path`: the keys of its whole lines are done; a last line cut short by an
    /// interruption is removed. A whole line that is not a record is an error naming it.
    pub fn open(path: &Path) -> Result<Self> {
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .with_context(|| format!("cannot open {} for appending", path.display()))?;
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        if whole < bytes.len() {
            file.set_len(whole as u64).with_context(|| {
                format!("cannot cut the unfinished last line of {}", path.display())
            })?;
            file.seek(std::io::SeekFrom::End(0))?;
        }
        let mut done = HashSet::new();
        for (number, line) in parse_lines(path, &bytes[..whole])? {
            if !done.insert(line.key.clone()) {
                bail!(
                    "{}:{number}: the key {:?} is there twice",
                    path.display(),
                    line.key
                );
            }
        }
        Ok(RecordWriter {
            file,
            path: path.to_owned(),
            done,
        })
    }

    /// How many records the file held when opened, plus those written since.
    pub fn len(&self) -> usize {
        self.done.len()
    }

    pub fn is_empty(&self) -> bool {
        self.done.is_empty()
    }

    pub fn holds(&self, key: &str) -> bool {
        self.done.contains(key)
    }

    /// Appends one record as a line and hands it to the operating system at once.
    pub fn write(&mut self, record: &Record) -> Result<()> {
        let mut line = serde_json::to_vec(record)?;
        line.push(b'\n');
        self.file
            .write_all(&line)
            .and_then(|()| self.file.flush())
            .with_context(|| format!("cannot append to {}", self.path.display()))?;
        self.done.insert(record.key.clone());
        Ok(())
    }
}

fn parse_lines(path: &Path, bytes: &[u8]) -> Result<Vec<(usize, Record)>> {
    let text = std::str::from_utf8(bytes)
        .with_context(|| format!("{} is not UTF-8 text", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            serde_json::from_str::<Record>(line)
                .map_err(anyhow::Error::from)
                .and_then(|record| match record.caption.get("caption") {
                    Some(serde_json::Value::String(_)) => Ok((i + 1, record)),
                    _ => bail!("no \"caption\" string"),
                })
                .with_context(|| {
                    format!(
                        "{}:{}: not a caption record {{\"key\", \"model\", \"caption\", ...}}",
                        path.display(),
                        i + 1
                    )
                })
        })
        .collect()
}

/// What `merge` found.
pub struct Merged {
    pub records: usize,
    /// Keys of `expected` that no input holds.
    pub missing: Vec<String>,
}

/// Joins record files into `out` (written whole, then renamed into place): every key once, sorted
/// by key, so that any split of a job merges to the same bytes. A key in two inputs is an error
/// that names both; with `expected`, the keys no input holds are reported.
pub fn merge(inputs: &[PathBuf], out: &Path, expected: Option<&[String]>) -> Result<Merged> {
    let mut records: BTreeMap<String, (Record, PathBuf, usize)> = BTreeMap::new();
    for input in inputs {
        let bytes =
            std::fs::read(input).with_context(|| format!("cannot read {}", input.display()))?;
        if !bytes.is_empty() && !bytes.ends_with(b"\n") {
            bail!(
                "{} ends in an unfinished line: its run was interrupted; rerun it to finish the file, then merge",
                input.display()
            );
        }
        for (number, record) in parse_lines(input, &bytes)? {
            if let Some((_, first, first_line)) = records.get(&record.key) {
                bail!(
                    "the key {:?} is in {}:{first_line} and in {}:{number}: were the shards made with the same --shard count?",
                    record.key,
                    first.display(),
                    input.display()
                );
            }
            records.insert(record.key.clone(), (record, input.clone(), number));
        }
    }
    let missing = expected
        .unwrap_or_default()
        .iter()
        .filter(|key| !records.contains_key(*key))
        .cloned()
        .collect();
    let mut text = Vec::new();
    for (record, _, _) in records.values() {
        serde_json::to_writer(&mut text, record)?;
        text.push(b'\n');
    }
    crate::fsio::write_atomic(out, &text)?;
    Ok(Merged {
        records: records.len(),
        missing,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(key: &str) -> Record {
        let caption = serde_json::json!({
            "caption": format!("A photo of {key}."),
            "tokens": format!("a photo of {key}"),
        });
        let serde_json::Value::Object(caption) = caption else {
            unreachable!()
        };
        Record {
            key: key.into(),
            model: "default".into(),
            caption,
        }
    }

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("captioner-records-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_rerun_resumes_after_the_last_whole_line() {
        let dir = scratch("resume");
        let path = dir.join("out.jsonl");
        let mut writer = RecordWriter::open(&path).unwrap();
        writer.write(&record("a")).unwrap();
        writer.write(&record("b")).unwrap();
        drop(writer);
        // Killed while writing the third line.
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        file.write_all(br#"{"key":"c","capt"#).unwrap();
        drop(file);
        let mut writer = RecordWriter::open(&path).unwrap();
        assert_eq!(writer.len(), 2);
        assert!(writer.holds("a") && writer.holds("b") && !writer.holds("c"));
        writer.write(&record("c")).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let keys: Vec<String> = text
            .lines()
            .map(|l| serde_json::from_str::<Record>(l).unwrap().key)
            .collect();
        assert_eq!(keys, ["a", "b", "c"]);

        std::fs::write(&path, "{\"key\":\"a\"}\n").unwrap();
        let err = RecordWriter::open(&path).err().unwrap().to_string();
        assert!(err.contains("out.jsonl:1: not a caption record"), "{err}");
    }

    #[test]
    fn merge_sorts_every_key_once_and_names_duplicates() {
        let dir = scratch("merge");
        let (one, two, out) = (
            dir.join("0.jsonl"),
            dir.join("1.jsonl"),
            dir.join("all.jsonl"),
        );
        for (path, keys) in [(&one, ["c", "a"]), (&two, ["b", "d"])] {
            let mut writer = RecordWriter::open(path).unwrap();
            for key in keys {
                writer.write(&record(key)).unwrap();
            }
        }
        let expected: Vec<String> = ["a", "b", "c", "d", "e"].map(String::from).to_vec();
        let merged = merge(&[one.clone(), two.clone()], &out, Some(&expected)).unwrap();
        assert_eq!((merged.records, merged.missing), (4, vec!["e".to_owned()]));
        let text = std::fs::read_to_string(&out).unwrap();
        let keys: Vec<&str> = text.lines().map(|l| &l[8..9]).collect();
        assert_eq!(keys, ["a", "b", "c", "d"]);
        // Merging in the other order, or the merged file alone, gives the same bytes.
        merge(&[two.clone(), one.clone()], &dir.join("again.jsonl"), None).unwrap();
        assert_eq!(
            std::fs::read(dir.join("again.jsonl")).unwrap(),
            text.as_bytes()
        );

        let err = merge(&[one.clone(), one.clone()], &out, None)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("\"c\" is in") && err.contains("0.jsonl:1"),
            "{err}"
        );
        std::fs::write(&two, "{\"key\":\"b\",\"cap").unwrap();
        let err = merge(&[one, two], &out, None).err().unwrap().to_string();
        assert!(err.contains("unfinished line"), "{err}");
    }
}
