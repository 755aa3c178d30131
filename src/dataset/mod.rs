//! Caption datasets in the three forms people have, read into one [`Dataset`]:
//! the original Flickr8k release (token file + split files), the Karpathy split JSON
//! (Flickr8k/30k, COCO) and the Kaggle `captions.txt` CSV.

mod csv;
mod flickr8k;
mod kaggle;
mod karpathy;

use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

pub const TOKEN_FILE: &str = "Flickr8k.token.txt";
pub const KAGGLE_FILE: &str = "captions.txt";
const SPLIT_FILES: [(Split, &str); 3] = [
    (Split::Train, "Flickr_8k.trainImages.txt"),
    (Split::Dev, "Flickr_8k.devImages.txt"),
    (Split::Test, "Flickr_8k.testImages.txt"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Flickr8k,
    Karpathy,
    Kaggle,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Split {
    Train,
    Dev,
    Test,
}

impl Split {
    pub const ALL: [Split; 3] = [Split::Train, Split::Dev, Split::Test];

    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Dev => "dev",
            Split::Test => "test",
        }
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One image and its raw captions, in source order.
#[derive(Debug, Clone)]
pub struct ImageCaptions {
    /// The file name without its image extension (`1000268201_693b08cb0e`).
    pub id: String,
    pub file_name: String,
    pub captions: Vec<String>,
}

/// Image ids per split, each in source order.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Splits {
    pub train: Vec<String>,
    pub dev: Vec<String>,
    pub test: Vec<String>,
    /// Where the split came from (official files, the Karpathy JSON, or the rule of a generated split).
    pub source: String,
}

impl Splits {
    pub fn ids(&self, split: Split) -> &[String] {
        match split {
            Split::Train => &self.train,
            Split::Dev => &self.dev,
            Split::Test => &self.test,
        }
    }

    fn ids_mut(&mut self, split: Split) -> &mut Vec<String> {
        match split {
            Split::Train => &mut self.train,
            Split::Dev => &mut self.dev,
            Split::Test => &mut self.test,
        }
    }

    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        for split in Split::ALL {
            self.ids_mut(split).retain(|id| keep(id));
        }
    }
}

#[derive(Debug, Clone)]
pub struct Dataset {
    pub format: Format,
    /// Every image with captions, in order of first appearance in the caption file.
    pub images: Vec<ImageCaptions>,
    pub splits: Splits,
}

/// Sizes of a generated split, for caption files that come without one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SplitSizes {
    pub train: usize,
    pub dev: usize,
    pub test: usize,
}

impl std::str::FromStr for SplitSizes {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let parts: Vec<usize> = s
            .split(',')
            .map(|p| p.trim().parse::<usize>())
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| {
                format!("{s:?}: expected three counts TRAIN,DEV,TEST such as 6000,1000,1000")
            })?;
        match parts[..] {
            [train, dev, test] => Ok(SplitSizes { train, dev, test }),
            _ => Err(format!(
                "{s:?}: expected three counts TRAIN,DEV,TEST such as 6000,1000,1000"
            )),
        }
    }
}

/// What the user named: a folder holding one of the forms, or one caption file.
pub fn load(
    data: &Path,
    format: Option<Format>,
    split_sizes: Option<SplitSizes>,
) -> Result<Dataset> {
    if !data.exists() {
        bail!(
            "{} does not exist: pass a caption file or the folder holding it",
            data.display()
        );
    }
    let (format, file) = match format {
        Some(format) => (format, locate(data, format)?),
        None => detect(data)?,
    };
    let mut dataset = match format {
        Format::Flickr8k => flickr8k::load(&file)?,
        Format::Karpathy => karpathy::load(&file)?,
        Format::Kaggle => kaggle::load(&file)?,
    };
    if dataset.splits.source.is_empty() {
        dataset.splits = match official_splits_beside(&file, &dataset.images)? {
            Some(splits) => splits,
            None => generated_split(&dataset.images, split_sizes)?,
        };
    }
    Ok(dataset)
}

/// The caption file of `format` inside `data`, or `data` itself when it is a file.
fn locate(data: &Path, format: Format) -> Result<PathBuf> {
    if data.is_file() {
        return Ok(data.to_owned());
    }
    let found = match format {
        Format::Flickr8k => Some(data.join(TOKEN_FILE)).filter(|p| p.is_file()),
        Format::Kaggle => Some(data.join(KAGGLE_FILE)).filter(|p| p.is_file()),
        Format::Karpathy => karpathy_file_in(data)?,
    };
    found.with_context(|| {
        format!(
            "{} holds no {format:?} caption file ({})",
            data.display(),
            expected_file(format)
        )
    })
}

fn expected_file(format: Format) -> &'static str {
    match format {
        Format::Flickr8k => TOKEN_FILE,
        Format::Karpathy => "dataset_*.json",
        Format::Kaggle => KAGGLE_FILE,
    }
}

fn karpathy_file_in(dir: &Path) -> Result<Option<PathBuf>> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?;
    let mut found: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            name.starts_with("dataset_") && name.ends_with(".json")
        })
        .collect();
    found.sort();
    Ok(found.into_iter().next())
}

/// Picks the form: in a folder the original release first, then Karpathy's JSON, then Kaggle's CSV;
/// a file by its content.
fn detect(data: &Path) -> Result<(Format, PathBuf)> {
    if data.is_dir() {
        for format in [Format::Flickr8k, Format::Karpathy, Format::Kaggle] {
            if let Ok(file) = locate(data, format) {
                return Ok((format, file));
            }
        }
        bail!(
            "{} holds no caption file: expected {TOKEN_FILE}, dataset_*.json (Karpathy split) or {KAGGLE_FILE} (Kaggle CSV)",
            data.display()
        );
    }
    let head = std::fs::read(data).with_context(|| format!("cannot read {}", data.display()))?;
    let head = String::from_utf8_lossy(&head[..head.len().min(4096)]).into_owned();
    let head = head.trim_start_matches('\u{feff}').trim_start();
    let format = if head.starts_with('{') {
        Format::Karpathy
    } else if head.to_ascii_lowercase().starts_with("image,caption") {
        Format::Kaggle
    } else {
        Format::Flickr8k
    };
    Ok((format, data.to_owned()))
}

/// The file name without its image extension: the id every stage uses.
pub fn image_id(file_name: &str) -> &str {
    for ext in [".jpg", ".jpeg", ".png", ".JPG", ".JPEG", ".PNG"] {
        if let Some(stem) = file_name.strip_suffix(ext) {
            return stem;
        }
    }
    file_name
}

/// Groups (file name, caption) pairs by image, keeping the order of first appearance.
fn group_captions(pairs: impl IntoIterator<Item = (String, String)>) -> Vec<ImageCaptions> {
    let mut images: Vec<ImageCaptions> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for (file_name, caption) in pairs {
        let id = image_id(&file_name).to_owned();
        let slot = *index.entry(id.clone()).or_insert_with(|| {
            images.push(ImageCaptions {
                id,
                file_name,
                captions: Vec::new(),
            });
            images.len() - 1
        });
        images[slot].captions.push(caption);
    }
    images
}

/// The official Flickr8k split files, when all three sit beside the caption file.
fn official_splits_beside(caption_file: &Path, images: &[ImageCaptions]) -> Result<Option<Splits>> {
    let dir = caption_file.parent().unwrap_or(Path::new("."));
    let paths = SPLIT_FILES.map(|(split, name)| (split, dir.join(name)));
    if !paths.iter().all(|(_, p)| p.is_file()) {
        return Ok(None);
    }
    let known: HashSet<&str> = images.iter().map(|i| i.id.as_str()).collect();
    let mut splits = Splits {
        source: format!("official split files in {}", dir.display()),
        ..Splits::default()
    };
    let mut seen: HashMap<String, (Split, PathBuf)> = HashMap::new();
    for (split, path) in paths {
        let text = crate::fsio::read_text(&path)?;
        for (n, line) in text.lines().enumerate() {
            let name = line.trim();
            if name.is_empty() {
                continue;
            }
            let id = image_id(name);
            if !known.contains(id) {
                bail!(
                    "{}:{}: image {name} has no captions in {}",
                    path.display(),
                    n + 1,
                    caption_file.display()
                );
            }
            if let Some((other, other_path)) = seen.get(id) {
                if *other == split {
                    continue;
                }
                bail!(
                    "{}:{}: image {name} is already in the {other} split ({})",
                    path.display(),
                    n + 1,
                    other_path.display()
                );
            }
            seen.insert(id.to_owned(), (split, path.clone()));
            splits.ids_mut(split).push(id.to_owned());
        }
    }
    Ok(Some(splits))
}

/// A deterministic split for caption files without one: images ordered by the FNV-1a hash of their id
/// (stable when images are added or removed), then dev, test and train taken in that order.
/// Without sizes: 10% dev, 10% test, the rest train.
fn generated_split(images: &[ImageCaptions], sizes: Option<SplitSizes>) -> Result<Splits> {
    let n = images.len();
    let sizes = sizes.unwrap_or(SplitSizes {
        train: n - 2 * (n / 10),
        dev: n / 10,
        test: n / 10,
    });
    if sizes.train + sizes.dev + sizes.test > n {
        bail!(
            "--split-sizes {},{},{} asks for {} images but the captions cover only {n}",
            sizes.train,
            sizes.dev,
            sizes.test,
            sizes.train + sizes.dev + sizes.test
        );
    }
    let mut order: Vec<&str> = images.iter().map(|i| i.id.as_str()).collect();
    order.sort_by_key(|id| (fnv1a(id), *id));
    let mut rest = order.into_iter().map(str::to_owned);
    let dev: Vec<String> = rest.by_ref().take(sizes.dev).collect();
    let test: Vec<String> = rest.by_ref().take(sizes.test).collect();
    let train: Vec<String> = rest.take(sizes.train).collect();
    Ok(Splits {
        source: format!(
            "generated: images ordered by FNV-1a hash of the id, {} dev, {} test, {} train",
            sizes.dev, sizes.test, sizes.train
        ),
        train,
        dev,
        test,
    })
}

fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_drop_only_an_image_extension() {
        assert_eq!(
            image_id("1000268201_693b08cb0e.jpg"),
            "1000268201_693b08cb0e"
        );
        assert_eq!(
            image_id("2258277193_586949ec62.jpg.1"),
            "2258277193_586949ec62.jpg.1"
        );
    }

    #[test]
    fn generated_split_is_deterministic_and_disjoint() {
        let images: Vec<ImageCaptions> = (0..50)
            .map(|i| ImageCaptions {
                id: format!("img{i}"),
                file_name: format!("img{i}.jpg"),
                captions: vec!["a dog".into()],
            })
            .collect();
        let a = generated_split(&images, None).unwrap();
        let b = generated_split(&images, None).unwrap();
        assert_eq!((a.train.len(), a.dev.len(), a.test.len()), (40, 5, 5));
        assert_eq!(a.train, b.train);
        let all: HashSet<_> = a.train.iter().chain(&a.dev).chain(&a.test).collect();
        assert_eq!(all.len(), 50);
        let sizes = "30,5,5".parse().unwrap();
        assert_eq!(
            generated_split(&images, Some(sizes)).unwrap().train.len(),
            30
        );
        assert!(generated_split(&images, Some("40,6,5".parse().unwrap())).is_err());
    }
}
