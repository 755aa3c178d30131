//! The original Flickr8k release: `Flickr8k.token.txt`, one `<image>.jpg#<n><TAB><caption>` per line.
//! Its split files are read by the caller (they serve the Kaggle form too).

use super::{group_captions, Dataset, Format, Splits};
use anyhow::{bail, Result};
use std::path::Path;

pub fn load(path: &Path) -> Result<Dataset> {
    let text = crate::fsio::read_text(path)?;
    let mut pairs = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line_no = n + 1;
        if line.trim().is_empty() {
            continue;
        }
        let Some((caption_id, caption)) = line.split_once('\t') else {
            bail!(
                "{}:{line_no}: no TAB between the caption id and the caption (expected `<image>.jpg#<n><TAB><caption>`)",
                path.display()
            );
        };
        let file_name = caption_id
            .rsplit_once('#')
            .map_or(caption_id, |(f, _)| f)
            .trim();
        if file_name.is_empty() {
            bail!(
                "{}:{line_no}: the caption id names no image",
                path.display()
            );
        }
        let caption = caption.trim();
        if caption.is_empty() {
            bail!(
                "{}:{line_no}: empty caption for {file_name}",
                path.display()
            );
        }
        pairs.push((file_name.to_owned(), caption.to_owned()));
    }
    if pairs.is_empty() {
        bail!("{}: no captions in the file", path.display());
    }
    Ok(Dataset {
        format: Format::Flickr8k,
        images: group_captions(pairs),
        splits: Splits::default(),
    })
}
