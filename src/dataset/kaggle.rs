//! The Kaggle form of Flickr8k: `captions.txt`, a CSV with the header `image,caption`.
//! It has no split: the caller uses the official split files when they sit beside it.

use super::{csv, group_captions, Dataset, Format, Splits};
use anyhow::{bail, Result};
use std::path::Path;

pub fn load(path: &Path) -> Result<Dataset> {
    let text = crate::fsio::read_text(path)?;
    let records = csv::parse(&text).map_err(|e| anyhow::anyhow!("{}:{e}", path.display()))?;
    let mut records = records.into_iter();
    match records.next() {
        Some(header)
            if header.fields.len() == 2
                && header.fields[0].trim() == "image"
                && header.fields[1].trim() == "caption" => {}
        _ => bail!("{}:1: expected the header `image,caption`", path.display()),
    }
    let mut pairs = Vec::new();
    for record in records {
        let line = record.line;
        let [file_name, caption] = &record.fields[..] else {
            bail!(
                "{}:{line}: expected 2 fields (image,caption), found {}; quote captions that contain commas",
                path.display(),
                record.fields.len()
            );
        };
        if file_name.trim().is_empty() {
            bail!("{}:{line}: the image name is empty", path.display());
        }
        if caption.trim().is_empty() {
            bail!("{}:{line}: empty caption for {file_name}", path.display());
        }
        pairs.push((file_name.trim().to_owned(), caption.trim().to_owned()));
    }
    if pairs.is_empty() {
        bail!("{}: no captions in the file", path.display());
    }
    Ok(Dataset {
        format: Format::Kaggle,
        images: group_captions(pairs),
        splits: Splits::default(),
    })
}
