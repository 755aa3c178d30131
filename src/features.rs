//! The `features` stage: photos -> a features file (features_file.rs): a feature vector per image,
//! with `--grid` also its last feature map before pooling, with `--classes` the encoder's 1,000
//! ImageNet class probabilities.
//!
//! Images are decoded, resized and encoded in parallel, one image per thread (each network runs
//! single-threaded, which keeps both cores busy without synchronisation). Progress is saved to
//! `<out>.partial` every half minute, so an interrupted run resumes without recomputing; the final file
//! is written atomically. Unreadable images are reported with their reason and the rest still finish.

use crate::features_file::{to_f16_bits, Features, Grid, CLASSES};
use crate::fsio::read_text;
use crate::image::{decode_for_input, to_network_input, Resize};
use crate::vision::{Encoder, EncoderKind};
use anyhow::{bail, Context, Result};
use rayon::prelude::*;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const CHECKPOINT_EVERY: Duration = Duration::from_secs(30);

/// The preprocessing description stored in the file; a later stage compares it verbatim.
pub fn preprocessing_description(kind: EncoderKind, resize: Resize) -> String {
    let size = kind.input_size();
    format!(
        "{} to {size}x{size} (PIL-style antialiased bilinear), x = {}",
        resize.name(),
        kind.normalisation()
    )
}

/// Which images to encode.
pub enum Selection {
    /// Every photo in the folder (by extension), sorted by name, or every photo member of the tar
    /// shard, in order.
    All,
    /// File names or ids, one per line (as in Flickr_8k.testImages.txt).
    SplitFile(PathBuf),
    Ids(Vec<String>),
    /// Photo paths, one per line (`images` is not read); each photo's id is its file name without
    /// the extension.
    List(PathBuf),
}

pub struct FeaturesOptions {
    /// A folder of photos or a WebDataset tar shard (members `<id>.jpg|png|...`, read as a stream).
    pub images: PathBuf,
    pub selection: Selection,
    pub out: PathBuf,
    pub encoder: EncoderKind,
    pub weights: Option<PathBuf>,
    pub resize: Resize,
    /// Also store each image's grid (the feature map before pooling).
    pub grid: bool,
    /// Also store each image's ImageNet class probabilities.
    pub classes: bool,
    /// Images handed to the thread pool at a time (also the progress granularity).
    pub batch: usize,
    pub progress: bool,
    /// Only the selected images this part of a job holds (by image id).
    pub shard: Option<crate::photos::Shard>,
}

#[derive(Debug)]
pub struct FeaturesReport {
    pub images: usize,
    pub computed: usize,
    pub reused: usize,
    /// Rows of earlier runs that this run did not select, kept in the file.
    pub kept: usize,
    /// (image, reason) for every image that could not be encoded.
    pub failed: Vec<(String, String)>,
    pub seconds: f64,
}

/// Where a selected image's bytes are.
#[derive(Clone)]
enum Input {
    File(PathBuf),
    /// A member of the tar shard `options.images`.
    Member,
}

/// (id, input) of every selected image; a selected name with no photo is returned with `None`.
fn select(options: &FeaturesOptions) -> Result<Vec<(String, Option<Input>)>> {
    let dir = &options.images;
    if let Selection::List(list) = &options.selection {
        return Ok(crate::photos::read_list(list)?
            .into_iter()
            .map(|line| {
                let path = PathBuf::from(line);
                let name = path.file_name().unwrap_or_default().to_string_lossy();
                let id = crate::dataset::image_id(&name).to_owned();
                (id, path.is_file().then_some(Input::File(path)))
            })
            .collect());
    }
    if crate::photos::is_tar(dir) {
        let members = crate::photos::tar_keys(dir)?;
        let present: HashSet<&str> = members.iter().map(String::as_str).collect();
        let resolve = |name: &str| {
            let id = crate::dataset::image_id(name).to_owned();
            let input = present.contains(id.as_str()).then_some(Input::Member);
            (id, input)
        };
        return Ok(match &options.selection {
            Selection::All => members
                .iter()
                .map(|id| (id.clone(), Some(Input::Member)))
                .collect(),
            Selection::SplitFile(path) => read_list_ids(path)?.iter().map(|n| resolve(n)).collect(),
            Selection::Ids(ids) => ids.iter().map(|id| resolve(id)).collect(),
            Selection::List(_) => unreachable!("returned above"),
        });
    }
    if !dir.exists() {
        bail!("{}: no such file or folder", dir.display());
    }
    if !dir.is_dir() {
        bail!(
            "{} is neither a folder of images nor a .tar shard",
            dir.display()
        );
    }
    let resolve = |name: &str| -> (String, Option<Input>) {
        let id = crate::dataset::image_id(name).to_owned();
        let direct = dir.join(name);
        if direct.is_file() {
            return (id, Some(Input::File(direct)));
        }
        let found = crate::image::EXTENSIONS
            .iter()
            .map(|ext| dir.join(format!("{id}.{ext}")))
            .find(|p| p.is_file());
        (id, found.map(Input::File))
    };
    Ok(match &options.selection {
        Selection::All => {
            let (files, others) = crate::image::image_files(dir, false)?;
            crate::image::report_others(dir, &others);
            files
                .into_iter()
                .map(|p| {
                    let name = p
                        .file_name()
                        .unwrap_or_default()
                        .to_string_lossy()
                        .into_owned();
                    (
                        crate::dataset::image_id(&name).to_owned(),
                        Some(Input::File(p)),
                    )
                })
                .collect()
        }
        Selection::SplitFile(path) => read_list_ids(path)?.iter().map(|n| resolve(n)).collect(),
        Selection::Ids(ids) => ids.iter().map(|id| resolve(id)).collect(),
        Selection::List(_) => unreachable!("returned above"),
    })
}

/// A split file's names, one per line.
fn read_list_ids(path: &Path) -> Result<Vec<String>> {
    Ok(read_text(path)?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect())
}

/// One image's encoding: its feature and, with `--grid`, its grid as f16 bits, with `--classes` its
/// class probabilities (else empty).
struct Row {
    feature: Vec<f32>,
    grid: Vec<u16>,
    classes: Vec<f32>,
}

/// The shape of the grids a run stores: (height, width, channels).
type GridShape = (usize, usize, usize);

/// What a file holds beside the features.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Extras {
    grid: Option<GridShape>,
    classes: bool,
}

impl Extras {
    fn of(features: &Features) -> Self {
        Extras {
            grid: features
                .grid
                .as_ref()
                .map(|g| (g.height, g.width, g.channels)),
            classes: features.classes.is_some(),
        }
    }

    fn describe(self) -> String {
        let with =
            |yes: bool, what: &str| format!("{} {what}", if yes { "with" } else { "without" });
        format!(
            "{} and {}",
            with(self.grid.is_some(), "grids"),
            with(self.classes, "classes")
        )
    }
}

/// Rows already computed by an earlier run with the same encoder, preprocessing and extras (the
/// finished output and the partial checkpoint), by id.
fn reusable_rows(
    out: &Path,
    partial: &Path,
    encoder: &str,
    preprocessing: &str,
    extras: Extras,
) -> Result<HashMap<String, Row>> {
    let mut rows = HashMap::new();
    for path in [out, partial] {
        if !path.exists() {
            continue;
        }
        let previous = match Features::load(path) {
            Ok(previous) => previous,
            Err(err) if path == partial => {
                eprintln!(
                    "ignoring an unreadable checkpoint {}: {err:#}",
                    partial.display()
                );
                continue;
            }
            Err(err) => {
                return Err(err.context(format!(
                    "{} exists: delete it or choose another --out",
                    out.display()
                )))
            }
        };
        if previous.encoder != encoder || previous.preprocessing != preprocessing {
            if path == partial {
                continue;
            }
            bail!(
                "{} holds features from {} ({}); this run asks for {encoder} ({preprocessing}): delete it or choose another --out",
                out.display(),
                previous.encoder,
                previous.preprocessing
            );
        }
        if Extras::of(&previous) != extras {
            if path == partial {
                continue;
            }
            bail!(
                "{} holds features {}; this run asks for features {} (`--grid`, `--classes`): delete it or choose another --out",
                out.display(),
                Extras::of(&previous).describe(),
                extras.describe()
            );
        }
        for (i, id) in previous.ids.iter().enumerate() {
            let grid = previous
                .grid
                .as_ref()
                .map_or(Vec::new(), |g| g.image(i).to_vec());
            let classes = previous
                .classes
                .as_ref()
                .map_or(Vec::new(), |c| c[i * CLASSES..][..CLASSES].to_vec());
            let feature = previous.row(i).to_vec();
            rows.insert(
                id.clone(),
                Row {
                    feature,
                    grid,
                    classes,
                },
            );
        }
    }
    Ok(rows)
}

fn encode_photo(encoder: &Encoder, bytes: &[u8], resize: Resize, extras: Extras) -> Result<Row> {
    let side = encoder.kind().input_size();
    let image = decode_for_input(bytes, side)?;
    let input = to_network_input(&image, resize, side);
    let (feature, grid) = if extras.grid.is_some() {
        let (feature, map) = encoder.features_and_grid(&input, 1);
        (feature, to_f16_bits(&map.data))
    } else {
        (encoder.features(&input, 1), Vec::new())
    };
    let classes = if extras.classes {
        // Checked when the encoder is loaded: its weights carry the classifier.
        encoder.class_probabilities(&feature).unwrap_or_default()
    } else {
        Vec::new()
    };
    Ok(Row {
        feature,
        grid,
        classes,
    })
}

/// A photo's id, where it was read (for messages) and its bytes.
type ReadPhoto = (String, String, Result<Vec<u8>>);

/// Reads the photos to encode and hands them to `each` in chunks of `batch`: the files first, then
/// the members of the tar shard `images` in one pass over it.
fn read_in_chunks(
    todo: &[(String, Input)],
    images: &Path,
    batch: usize,
    mut each: impl FnMut(Vec<ReadPhoto>) -> Result<()>,
) -> Result<()> {
    let files: Vec<(&String, &PathBuf)> = todo
        .iter()
        .filter_map(|(id, input)| match input {
            Input::File(path) => Some((id, path)),
            Input::Member => None,
        })
        .collect();
    for chunk in files.chunks(batch) {
        each(
            chunk
                .iter()
                .map(|(id, path)| {
                    let bytes = std::fs::read(path).context("cannot read the file");
                    ((*id).clone(), path.display().to_string(), bytes)
                })
                .collect(),
        )?;
    }
    let members: HashSet<&str> = todo
        .iter()
        .filter(|(_, input)| matches!(input, Input::Member))
        .map(|(id, _)| id.as_str())
        .collect();
    if members.is_empty() {
        return Ok(());
    }
    let mut chunk = Vec::with_capacity(batch);
    crate::photos::for_each_member(images, &|key| members.contains(key), &mut |key, bytes| {
        chunk.push((key.to_owned(), format!("{}:{key}", images.display()), bytes));
        if chunk.len() == batch {
            each(std::mem::take(&mut chunk))?;
        }
        Ok(())
    })?;
    each(chunk)
}

fn partial_path(out: &Path) -> PathBuf {
    let mut name = out.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    out.with_file_name(name)
}

/// The selected photos that have no row yet, each with where to read it; a selected id without a
/// photo is entered in `failed`.
fn still_to_encode(
    options: &FeaturesOptions,
    selected: &[(String, Option<Input>)],
    done: &HashMap<String, Row>,
    failed: &mut BTreeMap<String, String>,
) -> Vec<(String, Input)> {
    let mut todo = Vec::new();
    for (id, input) in selected {
        match input {
            _ if done.contains_key(id) => {}
            Some(input) => todo.push((id.clone(), input.clone())),
            None if matches!(options.selection, Selection::List(_)) => {
                failed.insert(id.clone(), format!("no photo file for {id} in the list"));
            }
            None => {
                failed.insert(
                    id.clone(),
                    format!("no image file for {id} in {}", options.images.display()),
                );
            }
        }
    }
    todo
}

/// How the rows encoded so far become a features file: the selected ids in their order (those
/// done), then the kept rows of earlier runs.
struct Assembly<'a> {
    order: Vec<String>,
    kept: &'a [String],
    encoder: EncoderKind,
    preprocessing: &'a str,
    grid: Option<(usize, usize, usize)>,
    classes: bool,
}

impl Assembly<'_> {
    fn features(&self, done: &HashMap<String, Row>) -> Features {
        let ids: Vec<String> = self
            .order
            .iter()
            .filter(|id| done.contains_key(*id))
            .chain(self.kept)
            .cloned()
            .collect();
        let data = ids
            .iter()
            .flat_map(|id| done[id].feature.iter().copied())
            .collect();
        let grid = self.grid.map(|(height, width, channels)| Grid {
            height,
            width,
            channels,
            data: ids
                .iter()
                .flat_map(|id| done[id].grid.iter().copied())
                .collect(),
        });
        let classes = self.classes.then(|| {
            ids.iter()
                .flat_map(|id| done[id].classes.iter().copied())
                .collect()
        });
        Features {
            ids,
            encoder: self.encoder.name().to_owned(),
            preprocessing: self.preprocessing.to_owned(),
            dim: self.encoder.feature_dim(),
            data,
            grid,
            classes,
        }
    }
}

pub fn extract(options: &FeaturesOptions) -> Result<FeaturesReport> {
    let start = Instant::now();
    let mut selected = select(options)?;
    if let Some(shard) = &options.shard {
        selected.retain(|(id, _)| shard.holds(id));
    }
    if selected.is_empty() {
        bail!("no images selected in {}", options.images.display());
    }
    let kind = options.encoder;
    let preprocessing = preprocessing_description(kind, options.resize);
    let partial = partial_path(&options.out);
    let grid_shape = options.grid.then(|| kind.grid_shape());
    let extras = Extras {
        grid: grid_shape,
        classes: options.classes,
    };
    let mut done = reusable_rows(&options.out, &partial, kind.name(), &preprocessing, extras)?;
    let reused = selected
        .iter()
        .filter(|(id, _)| done.contains_key(id))
        .count();

    let mut failed: BTreeMap<String, String> = BTreeMap::new();
    let todo = still_to_encode(options, &selected, &done, &mut failed);

    // Rows of earlier runs that this run did not select stay in the file (after the selected ones,
    // by id): rerunning on a subset never loses features.
    let selected_ids: HashSet<&str> = selected.iter().map(|(id, _)| id.as_str()).collect();
    let mut kept: Vec<String> = done
        .keys()
        .filter(|id| !selected_ids.contains(id.as_str()))
        .cloned()
        .collect();
    kept.sort();
    let assembly = Assembly {
        order: selected.iter().map(|(id, _)| id.clone()).collect(),
        kept: &kept,
        encoder: kind,
        preprocessing: &preprocessing,
        grid: grid_shape,
        classes: options.classes,
    };
    let snapshot = |done: &HashMap<String, Row>| assembly.features(done);

    if !todo.is_empty() {
        let encoder = Encoder::load(kind, options.weights.as_deref())?;
        if options.classes && !encoder.has_classifier() {
            bail!(
                "--classes: these {} weights carry no ImageNet classifier; use weights with one (the fetched EfficientNet-Lite0 weights have it)",
                kind.name()
            );
        }
        let bar = crate::progress::bar(todo.len() as u64, "images", options.progress);
        let mut last_checkpoint = Instant::now();
        // Each chunk: (id, where it was read, its bytes), encoded in parallel.
        let encode_chunk = |chunk: Vec<ReadPhoto>| -> Result<()> {
            let results: Vec<Result<Row>> = chunk
                .par_iter()
                .map(|(_, _, bytes)| match bytes {
                    Ok(bytes) => encode_photo(&encoder, bytes, options.resize, extras),
                    Err(err) => Err(anyhow::anyhow!("{err:#}")),
                })
                .collect();
            bar.inc(chunk.len() as u64);
            for ((id, place, _), result) in chunk.into_iter().zip(results) {
                match result {
                    Ok(row) => {
                        done.insert(id, row);
                    }
                    Err(err) => {
                        failed.insert(id, format!("{place}: {err:#}"));
                    }
                }
            }
            if last_checkpoint.elapsed() >= CHECKPOINT_EVERY {
                snapshot(&done).save(&partial)?;
                last_checkpoint = Instant::now();
            }
            Ok(())
        };
        read_in_chunks(&todo, &options.images, options.batch.max(1), encode_chunk)?;
        bar.finish_and_clear();
    }

    let features = snapshot(&done);
    if features.ids.is_empty() {
        bail!(
            "no image could be encoded; first failure: {}",
            failed.values().next().map_or("", |s| s.as_str())
        );
    }
    features.save(&options.out)?;
    let _ = std::fs::remove_file(&partial);
    Ok(FeaturesReport {
        images: features.ids.len(),
        computed: features.ids.len() - kept.len() - reused,
        reused,
        kept: kept.len(),
        failed: failed.into_iter().collect(),
        seconds: start.elapsed().as_secs_f64(),
    })
}
