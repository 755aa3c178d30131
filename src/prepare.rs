//! The `prepare` stage: a caption dataset -> tokenised captions, vocabulary, splits and a summary in a
//! work folder (`descriptions.txt`, `vocab.json`, `splits.json`, `summary.json`).

use crate::dataset::{self, Dataset, Format, Split, SplitSizes};
use crate::fsio::{create_output_dir, write_atomic};
use crate::text::{wrap_caption, Tokenization, Vocabulary};
use anyhow::{bail, Result};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};

/// How many ids a list in the summary shows before it gives only the count.
const SHOWN_IDS: usize = 10;

pub struct PrepareOptions {
    pub data: PathBuf,
    pub out: PathBuf,
    /// `None` detects the form.
    pub format: Option<Format>,
    pub tokenize: Tokenization,
    /// `None`: the tokenisation's usual threshold (5 for PTB tokens, 1 for the seed's cleaning).
    pub min_count: Option<u64>,
    /// When given, ids without an image file here are reported and excluded.
    pub images: Option<PathBuf>,
    /// Sizes of the generated split for caption files without one.
    pub split_sizes: Option<SplitSizes>,
    /// Replace a work folder already in `out` (otherwise it is an error, as for the other stages).
    pub force: bool,
}

#[derive(Debug, Serialize)]
pub struct IdList {
    pub count: usize,
    /// Every id, in source order (the printed summary shows the first few).
    pub ids: Vec<String>,
    /// Captions belonging to these ids.
    pub captions: usize,
}

#[derive(Debug, Serialize)]
pub struct Summary {
    pub format: Format,
    /// How captions became tokens (`ptb` or `seed`); `train` copies it into the model.
    pub tokenize: Tokenization,
    /// Images with captions (after excluding missing image files).
    pub images: usize,
    pub captions: usize,
    /// Distinct tokens over all captions, startseq/endseq not counted.
    pub words_all: usize,
    /// Ids of the vocabulary: padding, `<unk>`, startseq, endseq and the training words.
    pub vocab_size: usize,
    /// Distinct training tokens with their own id, startseq/endseq included (the seed's Keras
    /// `word_index` size; the seed's vocabulary size is this + 1 for padding).
    pub vocab_words: usize,
    pub min_count: u64,
    /// Longest training caption in tokens, startseq/endseq included.
    pub max_length: usize,
    pub images_per_split: BTreeMap<&'static str, usize>,
    pub split_source: String,
    /// Images with captions that are in no split: kept in descriptions.txt, not trained on.
    pub ignored: IdList,
    /// Images whose file is missing from `--images` (null without `--images`): excluded everywhere.
    pub missing_images: Option<IdList>,
    /// Captions with no token left after tokenising. The seed's cleaning trains on them as
    /// `startseq endseq`, as the seed does; with PTB tokens they are kept out of training.
    pub empty_after_cleaning: usize,
}

fn id_list<'a>(ids: impl IntoIterator<Item = &'a str>, dataset: &Dataset) -> IdList {
    let ids: HashSet<&str> = ids.into_iter().collect();
    let in_order: Vec<&str> = dataset
        .images
        .iter()
        .map(|i| i.id.as_str())
        .filter(|id| ids.contains(id))
        .collect();
    IdList {
        count: in_order.len(),
        ids: in_order.iter().map(|s| s.to_string()).collect(),
        captions: dataset
            .images
            .iter()
            .filter(|i| ids.contains(i.id.as_str()))
            .map(|i| i.captions.len())
            .sum(),
    }
}

/// Whether a tokenised caption is a training example: the seed trains on empty ones (as
/// `startseq endseq`), the PTB protocol leaves them out.
pub fn trains_on(tokenize: Tokenization, tokens: &[String]) -> bool {
    tokenize == Tokenization::Seed || !tokens.is_empty()
}

/// Leaves out of `dataset` the images whose files are not in `dir`; their ids, as summary.json
/// lists them.
fn drop_missing_images(dataset: &mut Dataset, dir: &Path) -> IdList {
    let missing: Vec<String> = dataset
        .images
        .iter()
        .filter(|i| !dir.join(&i.file_name).is_file())
        .map(|i| i.id.clone())
        .collect();
    let list = id_list(missing.iter().map(String::as_str), dataset);
    let missing: HashSet<String> = missing.into_iter().collect();
    dataset.images.retain(|i| !missing.contains(&i.id));
    dataset.splits.retain(|id| !missing.contains(id));
    list
}

/// descriptions.txt: one line per caption, `<image id> <tokens>`.
fn descriptions_text(dataset: &Dataset, cleaned: &[Vec<Vec<String>>]) -> String {
    let mut descriptions = String::new();
    for (image, captions) in dataset.images.iter().zip(cleaned) {
        for words in captions {
            descriptions.push_str(&image.id);
            descriptions.push(' ');
            descriptions.push_str(&words.join(" "));
            descriptions.push('\n');
        }
    }
    descriptions
}

pub fn prepare(options: &PrepareOptions) -> Result<Summary> {
    if !options.force && options.out.join("summary.json").exists() {
        bail!(
            "{} already holds a work folder (summary.json): pass --force to replace it, or choose another --out",
            options.out.display()
        );
    }
    create_output_dir(&options.out)?;
    let mut dataset = dataset::load(&options.data, options.format, options.split_sizes)?;

    let missing_images = options
        .images
        .as_ref()
        .map(|dir| drop_missing_images(&mut dataset, dir));

    let tokenize = options.tokenize;
    let min_count = options
        .min_count
        .unwrap_or_else(|| tokenize.default_min_count());
    let cleaned: Vec<Vec<Vec<String>>> = dataset
        .images
        .iter()
        .map(|image| {
            image
                .captions
                .iter()
                .map(|c| tokenize.tokenize(c))
                .collect()
        })
        .collect();

    let in_split: HashSet<&str> = Split::ALL
        .iter()
        .flat_map(|&s| dataset.splits.ids(s))
        .map(String::as_str)
        .collect();
    let ignored = id_list(
        dataset
            .images
            .iter()
            .map(|i| i.id.as_str())
            .filter(|id| !in_split.contains(id)),
        &dataset,
    );

    let train: HashSet<&str> = dataset.splits.train.iter().map(String::as_str).collect();
    let train_captions: Vec<Vec<String>> = dataset
        .images
        .iter()
        .zip(&cleaned)
        .filter(|(image, _)| train.contains(image.id.as_str()))
        .flat_map(|(_, captions)| captions.iter())
        .filter(|words| trains_on(tokenize, words))
        .map(|words| wrap_caption(words))
        .collect();
    let vocab = Vocabulary::build(train_captions.iter().map(Vec::as_slice), min_count);

    let descriptions = descriptions_text(&dataset, &cleaned);

    let all_captions = || cleaned.iter().flatten();
    let words_all: BTreeSet<&str> = all_captions().flatten().map(String::as_str).collect();
    let summary = Summary {
        format: dataset.format,
        tokenize,
        images: dataset.images.len(),
        captions: all_captions().count(),
        words_all: words_all.len(),
        vocab_size: vocab.len(),
        vocab_words: vocab.word_count(),
        min_count,
        max_length: train_captions.iter().map(Vec::len).max().unwrap_or(0),
        images_per_split: Split::ALL
            .iter()
            .map(|&s| (s.name(), dataset.splits.ids(s).len()))
            .collect(),
        split_source: dataset.splits.source.clone(),
        ignored,
        missing_images,
        empty_after_cleaning: all_captions().filter(|words| words.is_empty()).count(),
    };

    let out = &options.out;
    write_atomic(&out.join("descriptions.txt"), descriptions.as_bytes())?;
    write_atomic(&out.join("vocab.json"), vocab.to_json().as_bytes())?;
    write_atomic(
        &out.join("splits.json"),
        serde_json::to_string(&dataset.splits)?.as_bytes(),
    )?;
    write_atomic(
        &out.join("summary.json"),
        serde_json::to_string_pretty(&summary)?.as_bytes(),
    )?;
    Ok(summary)
}

/// A few lines for a person; the same facts are in summary.json for programs.
pub fn describe(summary: &Summary) -> String {
    let splits = &summary.images_per_split;
    let mut text = format!(
        "{} images, {} captions ({:?} format, {} tokens); {} distinct words\n\
         splits: {} train / {} dev / {} test ({})\n\
         vocabulary: {} ids ({} training words incl. startseq/endseq, min count {}); longest training caption {} tokens\n",
        summary.images,
        summary.captions,
        summary.format,
        summary.tokenize.name(),
        summary.words_all,
        splits["train"],
        splits["dev"],
        splits["test"],
        summary.split_source,
        summary.vocab_size,
        summary.vocab_words,
        summary.min_count,
        summary.max_length,
    );
    let mut list = |what: &str, list: &IdList| {
        if list.count > 0 {
            let shown = &list.ids[..list.ids.len().min(SHOWN_IDS)];
            let more = list.count - shown.len();
            let more = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            text.push_str(&format!(
                "{what}: {} images ({} captions): {}{more}\n",
                list.count,
                list.captions,
                shown.join(", ")
            ));
        }
    };
    list("in no split (ignored)", &summary.ignored);
    if let Some(missing) = &summary.missing_images {
        list("image file missing (excluded)", missing);
    }
    text
}
