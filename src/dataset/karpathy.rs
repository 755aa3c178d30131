//! Karpathy's split JSON (`dataset_flickr8k.json`, same schema for Flickr30k and COCO):
//! `images[].filename`, `.split` (train, val, test, restval), `.sentences[].raw` (and `.tokens`).
//! `val` is our dev split; `restval` joins train, as in Karpathy's own training code.

use super::{group_captions, Dataset, Format, Splits};
use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::path::Path;

#[derive(Deserialize)]
struct KarpathyFile {
    images: Vec<KarpathyImage>,
}

#[derive(Deserialize)]
struct KarpathyImage {
    filename: String,
    split: String,
    sentences: Vec<KarpathySentence>,
}

#[derive(Deserialize)]
struct KarpathySentence {
    raw: Option<String>,
    tokens: Option<Vec<String>>,
}

pub fn load(path: &Path) -> Result<Dataset> {
    let text = crate::fsio::read_text(path)?;
    let file: KarpathyFile = serde_json::from_str(&text).with_context(|| {
        format!(
            "{}: not a Karpathy split file (expected {{\"images\": [{{\"filename\", \"split\", \"sentences\": [{{\"raw\"}}]}}]}})",
            path.display()
        )
    })?;
    let mut pairs = Vec::new();
    let mut splits = Splits {
        source: format!("the split field of {}", path.display()),
        ..Splits::default()
    };
    for (index, image) in file.images.iter().enumerate() {
        let id = super::image_id(&image.filename).to_owned();
        let where_ = || format!("{}: images[{index}] ({})", path.display(), image.filename);
        match image.split.as_str() {
            "train" | "restval" => splits.train.push(id),
            "val" => splits.dev.push(id),
            "test" => splits.test.push(id),
            other => bail!(
                "{}: unknown split {other:?} (expected train, val, test or restval)",
                where_()
            ),
        }
        if image.sentences.is_empty() {
            bail!("{}: no sentences", where_());
        }
        for (s, sentence) in image.sentences.iter().enumerate() {
            let caption = match (&sentence.raw, &sentence.tokens) {
                (Some(raw), _) => raw.trim().to_owned(),
                (None, Some(tokens)) => tokens.join(" "),
                (None, None) => String::new(),
            };
            if caption.is_empty() {
                bail!("{}: sentences[{s}] is empty", where_());
            }
            pairs.push((image.filename.clone(), caption));
        }
    }
    if pairs.is_empty() {
        bail!("{}: `images` is empty", path.display());
    }
    Ok(Dataset {
        format: Format::Karpathy,
        images: group_captions(pairs),
        splits,
    })
}
