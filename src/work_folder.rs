//! A work folder (written by `prepare`: descriptions.txt, splits.json, summary.json, vocab.json)
//! and the rows of a features file it is trained or scored with: the splits' images and captions,
//! each image's decoder input, the tokenisation. Read by `train`, `evaluate`, `scst` and `familiar`.

use crate::dataset::Split;
use crate::decoder::ImageInput;
use crate::features_file::Features;
use crate::fsio::read_text;
use crate::model::Model;
use crate::prepare::trains_on;
use crate::text::{wrap_caption, Tokenization, Vocabulary};
use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Captions of one split as (feature row, token ids with startseq/endseq).
pub struct CaptionSet {
    pub items: Vec<(usize, Vec<u32>)>,
}

/// Each image's input to a decoder (its pooled feature or its grid), one row per image of the
/// features file.
pub struct ImageRows {
    pub width: usize,
    pub data: Vec<f32>,
}

impl ImageRows {
    pub fn row(&self, index: usize) -> &[f32] {
        &self.data[index * self.width..][..self.width]
    }
}

/// The rows a decoder reading `input` needs from a features file (grids widened from f16 to f32),
/// or an error that says how to make the right features.
pub fn image_rows(features: &Features, input: ImageInput, path: &Path) -> Result<ImageRows> {
    match input {
        ImageInput::Pooled { dim } => {
            if features.dim != dim {
                bail!(
                    "{} holds {}-d features; the model reads {dim}-d ones: make them with `captioner features` and the model's encoder",
                    path.display(),
                    features.dim
                );
            }
            Ok(ImageRows {
                width: dim,
                data: features.data.clone(),
            })
        }
        ImageInput::Grid { regions, channels } => {
            let Some(grid) = &features.grid else {
                bail!(
                    "{} has no grids: the attention decoder reads each photo's grid of regions; make them with `captioner features --grid --images <photos> --out <file>`",
                    path.display()
                );
            };
            if (grid.regions(), grid.channels) != (regions, channels) {
                bail!(
                    "{} holds grids of {} regions x {} channels; the model reads {regions} x {channels}: make them with `captioner features --grid` and the model's encoder",
                    path.display(),
                    grid.regions(),
                    grid.channels
                );
            }
            Ok(ImageRows {
                width: regions * channels,
                data: grid
                    .data
                    .iter()
                    .map(|&bits| half::f16::from_bits(bits).to_f32())
                    .collect(),
            })
        }
    }
}

/// A features file and the rows that `model`'s decoder reads of it, or an error that says how to
/// make the right features.
pub fn model_images(model: &Model, path: &Path) -> Result<(Features, ImageRows)> {
    let features = Features::load(path)?;
    if features.encoder != model.config.encoder {
        bail!(
            "{} holds {} features but the model was trained on {}: make them with `captioner features --encoder {}`",
            path.display(),
            features.encoder,
            model.config.encoder,
            model.config.encoder
        );
    }
    let images = image_rows(&features, model.config.decoder.image_input(), path)?;
    Ok((features, images))
}

pub struct TrainingData {
    pub vocab: Vocabulary,
    pub tokenize: Tokenization,
    pub features: Features,
    pub train: CaptionSet,
    pub dev: CaptionSet,
    pub max_length: usize,
}

/// image id -> cleaned captions (words), from a work folder's descriptions.txt.
pub fn read_descriptions(path: &Path) -> Result<HashMap<String, Vec<Vec<String>>>> {
    let mut captions: HashMap<String, Vec<Vec<String>>> = HashMap::new();
    for (n, line) in read_text(path)?.lines().enumerate() {
        let mut words = line.split_whitespace().map(str::to_owned);
        let Some(id) = words.next() else {
            bail!(
                "{}:{}: empty line (expected `<image_id> <caption>`)",
                path.display(),
                n + 1
            );
        };
        captions.entry(id).or_default().push(words.collect());
    }
    Ok(captions)
}

/// One of the JSON files `prepare` wrote into a work folder, with its path for messages.
fn read_work_json(work: &Path, name: &str) -> Result<(PathBuf, serde_json::Value)> {
    let path = work.join(name);
    let value = serde_json::from_str(&read_text(&path)?).with_context(|| {
        format!(
            "{} is not valid JSON: rerun `captioner prepare`",
            path.display()
        )
    })?;
    Ok((path, value))
}

/// The split's image ids from a work folder's splits.json.
pub fn read_split(work: &Path, split: Split) -> Result<Vec<String>> {
    let (path, splits) = read_work_json(work, "splits.json")?;
    serde_json::from_value(splits[split.name()].clone()).with_context(|| {
        format!(
            "{}: no `{}` list of image ids",
            path.display(),
            split.name()
        )
    })
}

/// The first `limit` images of `split` (all of them without a limit), in splits.json's order: a
/// quick run's subset.
pub fn read_split_limited(work: &Path, split: Split, limit: Option<usize>) -> Result<Vec<String>> {
    let mut ids = read_split(work, split)?;
    if let Some(limit) = limit {
        ids.truncate(limit);
    }
    Ok(ids)
}

/// Fails with the first few missing ids and the count when `features` lacks images of `ids`.
pub fn require_features(
    features: &Features,
    ids: &[String],
    path: &Path,
    split: Split,
) -> Result<()> {
    let index = features.index();
    let missing: Vec<&String> = ids
        .iter()
        .filter(|id| !index.contains_key(id.as_str()))
        .collect();
    if !missing.is_empty() {
        let shown: Vec<&str> = missing.iter().take(5).map(|s| s.as_str()).collect();
        bail!(
            "{} lacks the features of {} {split} images ({}{}): run `captioner features` for them, or pass --limit N to use the first N images of each split",
            path.display(),
            missing.len(),
            shown.join(", "),
            if missing.len() > shown.len() {
                ", ..."
            } else {
                ""
            }
        );
    }
    Ok(())
}

/// A split's images: their ids, rows in the features file and reference captions (tokens joined
/// by spaces), in the order of splits.json.
pub struct SplitImages {
    pub ids: Vec<String>,
    pub rows: Vec<usize>,
    pub references: Vec<Vec<String>>,
}

/// The images of `split`, which must be non-empty and covered by `features`.
pub fn split_images(
    work: &Path,
    split: Split,
    features: &Features,
    features_path: &Path,
    limit: Option<usize>,
) -> Result<SplitImages> {
    let ids = read_split_limited(work, split, limit)?;
    if ids.is_empty() {
        bail!("{}: the {split} split is empty", work.display());
    }
    require_features(features, &ids, features_path, split)?;
    let descriptions = read_descriptions(&work.join("descriptions.txt"))?;
    let index = features.index();
    let rows = ids.iter().map(|id| index[id.as_str()]).collect();
    let references = ids
        .iter()
        .map(|id| {
            descriptions
                .get(id)
                .map(|caps| caps.iter().map(|words| words.join(" ")).collect())
                .with_context(|| format!("{id} has no captions in descriptions.txt"))
        })
        .collect::<Result<_>>()?;
    Ok(SplitImages {
        ids,
        rows,
        references,
    })
}

/// The tokenisation a work folder was prepared with (folders from before PTB tokens: the seed's).
pub fn work_tokenization(work: &Path) -> Result<Tokenization> {
    let (path, summary) = read_work_json(work, "summary.json")?;
    match summary.get("tokenize") {
        None => Ok(Tokenization::Seed),
        Some(value) => serde_json::from_value(value.clone()).with_context(|| {
            format!(
                "{}: unknown tokenize {value} (expected \"ptb\" or \"seed\")",
                path.display()
            )
        }),
    }
}

/// The training and dev captions (the first `limit` images of each split, with a limit) and the
/// features they go with.
pub fn load_training_data(
    work: &Path,
    features_path: &Path,
    limit: Option<usize>,
) -> Result<TrainingData> {
    let vocab = Vocabulary::load(&work.join("vocab.json"))?;
    let tokenize = work_tokenization(work)?;
    let descriptions = read_descriptions(&work.join("descriptions.txt"))?;
    let features = Features::load(features_path)?;
    let index = features.index();
    let mut sets = Vec::new();
    for split in [Split::Train, Split::Dev] {
        let ids = read_split_limited(work, split, limit)?;
        require_features(&features, &ids, features_path, split)?;
        let mut items = Vec::new();
        for id in &ids {
            let captions = descriptions.get(id).with_context(|| {
                format!(
                    "{}: {split} image {id} has no captions in descriptions.txt",
                    work.display()
                )
            })?;
            for words in captions.iter().filter(|w| trains_on(tokenize, w)) {
                items.push((index[id.as_str()], vocab.encode(&wrap_caption(words))));
            }
        }
        sets.push(CaptionSet { items });
    }
    let dev = sets.pop().unwrap_or(CaptionSet { items: Vec::new() });
    let train = sets.pop().unwrap_or(CaptionSet { items: Vec::new() });
    if train.items.is_empty() {
        bail!("{}: the training split has no captions", work.display());
    }
    let max_length = train.items.iter().map(|(_, t)| t.len()).max().unwrap_or(0);
    Ok(TrainingData {
        vocab,
        tokenize,
        features,
        train,
        dev,
        max_length,
    })
}
