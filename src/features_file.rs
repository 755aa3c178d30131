//! The features file: one safetensors file of feature vectors (`features` [N, D] f32) with the image
//! ids, encoder, preprocessing and feature size in its metadata; optionally each image's last feature
//! map before pooling (`grid` [N, R, C] f16) and the encoder's 1,000 ImageNet class probabilities
//! (`classes` [N, 1000] f32). Written by the `features` stage (features.rs), read by `train`,
//! `evaluate` and `scst`, joined by `merge`.

use crate::fsio::write_atomic;
use crate::tensor_file::safetensors_bytes;
use anyhow::{bail, Context, Result};
use safetensors::tensor::TensorView;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

const FORMAT: &str = "captioner-features/1";

/// A features file in memory: row i of `data` is the feature of `ids[i]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Features {
    pub ids: Vec<String>,
    pub encoder: String,
    pub preprocessing: String,
    pub dim: usize,
    pub data: Vec<f32>,
    pub grid: Option<Grid>,
    /// [N, 1000] ImageNet class probabilities, when extracted with `--classes`.
    pub classes: Option<Vec<f32>>,
}

/// ImageNet classes of the encoders' classifiers.
pub const CLASSES: usize = 1000;

/// Every image's grid: `regions` = `height` x `width` positions (row-major) of `channels` values,
/// stored as f16 bits. The encoders' maps end in ReLU6 (EfficientNet-Lite0, values in [0, 6]) or
/// ReLU (VGG16), where f16 keeps three significant digits at half the size (Flickr8k: 1 GB).
#[derive(Clone, Debug, PartialEq)]
pub struct Grid {
    pub height: usize,
    pub width: usize,
    pub channels: usize,
    pub data: Vec<u16>,
}

impl Grid {
    pub fn regions(&self) -> usize {
        self.height * self.width
    }

    /// Image `index`'s grid, [regions, channels] as f16 bits.
    pub fn image(&self, index: usize) -> &[u16] {
        let size = self.regions() * self.channels;
        &self.data[index * size..][..size]
    }
}

/// f32 -> f16 bits, rounding to nearest.
pub fn to_f16_bits(values: &[f32]) -> Vec<u16> {
    values
        .iter()
        .map(|&v| half::f16::from_f32(v).to_bits())
        .collect()
}

impl Features {
    pub fn row(&self, index: usize) -> &[f32] {
        &self.data[index * self.dim..][..self.dim]
    }

    pub fn index(&self) -> HashMap<&str, usize> {
        self.ids
            .iter()
            .enumerate()
            .map(|(i, id)| (id.as_str(), i))
            .collect()
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        let bytes: Vec<u8> = self.data.iter().flat_map(|v| v.to_le_bytes()).collect();
        let mut tensors = vec![(
            "features",
            TensorView::new(
                safetensors::Dtype::F32,
                vec![self.ids.len(), self.dim],
                &bytes,
            )?,
        )];
        let mut metadata: HashMap<String, String> = [
            ("format", FORMAT.to_owned()),
            ("ids", serde_json::to_string(&self.ids)?),
            ("encoder", self.encoder.clone()),
            ("preprocessing", self.preprocessing.clone()),
            ("feature_dim", self.dim.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let (grid_bytes, class_bytes): (Vec<u8>, Vec<u8>);
        if let Some(classes) = &self.classes {
            class_bytes = classes.iter().flat_map(|v| v.to_le_bytes()).collect();
            let shape = vec![self.ids.len(), CLASSES];
            tensors.push((
                "classes",
                TensorView::new(safetensors::Dtype::F32, shape, &class_bytes)?,
            ));
        }
        if let Some(grid) = &self.grid {
            grid_bytes = grid.data.iter().flat_map(|v| v.to_le_bytes()).collect();
            let shape = vec![self.ids.len(), grid.regions(), grid.channels];
            tensors.push((
                "grid",
                TensorView::new(safetensors::Dtype::F16, shape, &grid_bytes)?,
            ));
            metadata.insert("grid_height".into(), grid.height.to_string());
            metadata.insert("grid_width".into(), grid.width.to_string());
        }
        write_atomic(path, &safetensors_bytes(tensors, metadata)?)
    }

    /// The rows of several files (the parts of a sharded job) in one, sorted by image id. The files
    /// must come from the same encoder and preprocessing and hold the same tensors; an image in two
    /// of them is an error naming both.
    pub fn merge(paths: &[PathBuf]) -> Result<Features> {
        let parts: Vec<Features> = paths
            .iter()
            .map(|p| Features::load(p))
            .collect::<Result<_>>()?;
        let Some(first) = parts.first() else {
            bail!("no features files to merge");
        };
        let shape = |f: &Features| {
            (
                f.encoder.clone(),
                f.preprocessing.clone(),
                f.dim,
                f.grid.as_ref().map(|g| (g.height, g.width, g.channels)),
                f.classes.is_some(),
            )
        };
        let mut rows: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
        for (file, part) in parts.iter().enumerate() {
            if shape(part) != shape(first) {
                bail!(
                    "{} and {} hold different features (encoder, preprocessing, size, --grid or --classes): they are not parts of one job",
                    paths[0].display(),
                    paths[file].display()
                );
            }
            for (row, id) in part.ids.iter().enumerate() {
                if let Some((other, _)) = rows.insert(id, (file, row)) {
                    bail!(
                        "image {id} is in {} and in {}: were the parts made with the same --shard count?",
                        paths[other].display(),
                        paths[file].display()
                    );
                }
            }
        }
        let mut merged = Features {
            ids: Vec::with_capacity(rows.len()),
            data: Vec::with_capacity(rows.len() * first.dim),
            grid: first.grid.as_ref().map(|g| Grid {
                data: Vec::new(),
                ..g.clone()
            }),
            classes: first.classes.as_ref().map(|_| Vec::new()),
            ..first.clone()
        };
        for (id, &(file, row)) in &rows {
            let part = &parts[file];
            merged.ids.push((*id).to_owned());
            merged.data.extend_from_slice(part.row(row));
            if let (Some(grid), Some(from)) = (&mut merged.grid, &part.grid) {
                grid.data.extend_from_slice(from.image(row));
            }
            if let (Some(classes), Some(from)) = (&mut merged.classes, &part.classes) {
                classes.extend_from_slice(&from[row * CLASSES..][..CLASSES]);
            }
        }
        Ok(merged)
    }

    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read features file {}", path.display()))?;
        let what = || format!("{} is not a captioner features file", path.display());
        let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).with_context(what)?;
        let metadata = header.metadata().clone().with_context(what)?;
        let field = |name: &str| {
            metadata
                .get(name)
                .cloned()
                .with_context(|| format!("{}: metadata has no `{name}`", what()))
        };
        let ids: Vec<String> = serde_json::from_str(&field("ids")?).with_context(what)?;
        let dim: usize = field("feature_dim")?.parse().with_context(what)?;
        let file = safetensors::SafeTensors::deserialize(&bytes).with_context(what)?;
        let tensor = file.tensor("features").with_context(what)?;
        if tensor.dtype() != safetensors::Dtype::F32 || tensor.shape() != [ids.len(), dim] {
            bail!(
                "{}: `features` is {:?} {:?}, expected F32 [{}, {dim}] (one row per id)",
                path.display(),
                tensor.dtype(),
                tensor.shape(),
                ids.len()
            );
        }
        let data = tensor
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let grid = match file.tensor("grid") {
            Err(_) => None,
            Ok(tensor) => {
                let height: usize = field("grid_height")?.parse().with_context(what)?;
                let width: usize = field("grid_width")?.parse().with_context(what)?;
                let shape = tensor.shape();
                if tensor.dtype() != safetensors::Dtype::F16
                    || shape.len() != 3
                    || Some(shape[..2].to_vec())
                        != height
                            .checked_mul(width)
                            .map(|regions| vec![ids.len(), regions])
                {
                    bail!(
                        "{}: `grid` is {:?} {shape:?}, expected F16 [{}, {}, channels]",
                        path.display(),
                        tensor.dtype(),
                        ids.len(),
                        height.saturating_mul(width)
                    );
                }
                let data = tensor
                    .data()
                    .chunks_exact(2)
                    .map(|b| u16::from_le_bytes([b[0], b[1]]))
                    .collect();
                Some(Grid {
                    height,
                    width,
                    channels: shape[2],
                    data,
                })
            }
        };
        let classes = match file.tensor("classes") {
            Err(_) => None,
            Ok(tensor) => {
                if tensor.dtype() != safetensors::Dtype::F32
                    || tensor.shape() != [ids.len(), CLASSES]
                {
                    bail!(
                        "{}: `classes` is {:?} {:?}, expected F32 [{}, {CLASSES}]",
                        path.display(),
                        tensor.dtype(),
                        tensor.shape(),
                        ids.len()
                    );
                }
                Some(
                    tensor
                        .data()
                        .chunks_exact(4)
                        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                        .collect(),
                )
            }
        };
        Ok(Features {
            ids,
            encoder: field("encoder")?,
            preprocessing: field("preprocessing")?,
            dim,
            data,
            grid,
            classes,
        })
    }
}
