//! How like its training photos a photo is, for the model that was trained on them. A decoder
//! trained on Flickr8k describes people, dogs and beaches well and everything else as one of
//! those; grounding (`ground.rs`) should step in for the everything else. The photos a model was
//! trained on are summed up as `CENTROIDS` directions of the encoder's pooled feature (spherical
//! k-means), stored beside the weights in `familiar.safetensors`; a photo's familiarity is the
//! cosine similarity of its pooled feature to the nearest of them.

use crate::engine::rng::Rng;
use crate::engine::{matmul, Transpose};
use crate::fsio::write_atomic;
use crate::tensor_file::{read_safetensors, safetensors_bytes};
use anyhow::{bail, Context, Result};
use safetensors::tensor::TensorView;
use std::collections::HashMap;
use std::path::Path;

/// The file in a model folder.
pub const FILE: &str = "familiar.safetensors";
/// Directions kept: enough for Flickr8k's kinds of scene (fewer blur them into one), few enough to
/// ship (256 x 1,280 in f16: 655 KB). Tuned with the grounding rule (docs/RESULTS.md).
pub const CENTROIDS: usize = 256;
const ITERATIONS: usize = 20;
const SEED: u64 = 0x5EED_FA31;

#[derive(Clone, Debug, PartialEq)]
pub struct Familiar {
    /// [count, dim], each row of unit length.
    centroids: Vec<f32>,
    dim: usize,
}

/// `v` scaled to unit length (left as it is when it is zero).
fn normalise(v: &mut [f32]) {
    let norm = v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    if norm > 0.0 {
        v.iter_mut()
            .for_each(|x| *x = (f64::from(*x) / norm) as f32);
    }
}

impl Familiar {
    /// Spherical k-means over the training photos' pooled features (`rows`, each `dim` long):
    /// `CENTROIDS` photos drawn by a fixed seed start it, then each centroid becomes the direction
    /// of the mean of the photos nearest to it, `ITERATIONS` times (one with no photo keeps its
    /// place). The same features give the same file.
    pub fn fit(rows: &[&[f32]], dim: usize) -> Result<Self> {
        if rows.is_empty() {
            bail!("no training photos to learn what is familiar from");
        }
        check_widths(rows, dim)?;
        let n = rows.len();
        let count = CENTROIDS.min(n);
        let mut photos: Vec<f32> = rows.iter().flat_map(|r| r.iter().copied()).collect();
        photos.chunks_exact_mut(dim).for_each(normalise);
        let mut order: Vec<usize> = (0..n).collect();
        Rng::new(SEED).shuffle(&mut order);
        let mut centroids: Vec<f32> = order[..count]
            .iter()
            .flat_map(|&i| photos[i * dim..][..dim].iter().copied())
            .collect();
        let threads = crate::engine::threads();
        let mut similarities = vec![0.0f32; n * count];
        for _ in 0..ITERATIONS {
            matmul(
                n,
                count,
                dim,
                1.0,
                &photos,
                Transpose::No,
                &centroids,
                Transpose::Yes,
                0.0,
                &mut similarities,
                threads,
            );
            let mut sums = vec![0.0f64; count * dim];
            let mut members = vec![0usize; count];
            for (photo, row) in photos
                .chunks_exact(dim)
                .zip(similarities.chunks_exact(count))
            {
                let nearest = argmax(row);
                members[nearest] += 1;
                for (s, &x) in sums[nearest * dim..][..dim].iter_mut().zip(photo) {
                    *s += f64::from(x);
                }
            }
            for (c, centroid) in centroids.chunks_exact_mut(dim).enumerate() {
                if members[c] > 0 {
                    for (value, &s) in centroid.iter_mut().zip(&sums[c * dim..][..dim]) {
                        *value = s as f32;
                    }
                    normalise(centroid);
                }
            }
        }
        Ok(Familiar { centroids, dim })
    }

    /// Cosine similarity of a photo's pooled feature to the nearest centroid: near 1 for a photo
    /// like the training photos, lower the less it is.
    pub fn familiarity(&self, pooled: &[f32]) -> Result<f32> {
        if pooled.len() != self.dim {
            bail!(
                "a pooled feature of {} values, but the model's familiar photos have {}",
                pooled.len(),
                self.dim
            );
        }
        let mut photo = pooled.to_vec();
        normalise(&mut photo);
        let nearest = self
            .centroids
            .chunks_exact(self.dim)
            .map(|c| c.iter().zip(&photo).map(|(a, b)| a * b).sum::<f32>())
            .fold(f32::NEG_INFINITY, f32::max);
        Ok(nearest)
    }

    /// The file's bytes: `centroids` [count, dim] in f16 (three digits are plenty for a cosine).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let bytes: Vec<u8> = self
            .centroids
            .iter()
            .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
            .collect();
        let shape = vec![self.centroids.len() / self.dim, self.dim];
        let view = TensorView::new(safetensors::Dtype::F16, shape, &bytes)?;
        safetensors_bytes([("centroids", view)], HashMap::new())
    }

    pub fn from_bytes(bytes: &[u8], source: &Path) -> Result<Self> {
        let tensors =
            read_safetensors(bytes).with_context(|| format!("cannot read {}", source.display()))?;
        let tensor = tensors
            .get("centroids")
            .with_context(|| format!("{}: no tensor centroids", source.display()))?;
        let [count, dim] = tensor.shape[..] else {
            bail!(
                "{}: centroids has shape {:?}, not [count, dim]",
                source.display(),
                tensor.shape
            );
        };
        if count == 0 || dim == 0 {
            bail!("{}: no centroids", source.display());
        }
        Ok(Familiar {
            centroids: tensor.data.clone(),
            dim,
        })
    }

    pub fn save(&self, dir: &Path) -> Result<()> {
        write_atomic(&dir.join(FILE), &self.to_bytes()?)
    }
}

/// That every training photo's pooled feature has `dim` values.
pub fn check_widths(rows: &[&[f32]], dim: usize) -> Result<()> {
    match rows.iter().find(|r| r.len() != dim) {
        Some(row) => bail!(
            "a feature of {} values where {dim} were expected",
            row.len()
        ),
        None => Ok(()),
    }
}

/// The index of the largest value (the first of equals).
fn argmax(values: &[f32]) -> usize {
    values
        .iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (i, &v)| {
            if v > best.1 {
                (i, v)
            } else {
                best
            }
        })
        .0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Photos around two directions: each is familiar, a photo between them less, one at right
    /// angles to both least.
    #[test]
    fn photos_like_the_training_photos_are_the_most_familiar() {
        let mut rng = Rng::new(7);
        let dim = 8;
        let mut rows = Vec::new();
        for i in 0..300 {
            let mut row = vec![0.0f32; dim];
            row[i % 2] = 1.0;
            for v in row.iter_mut() {
                *v += 0.05 * rng.normal() as f32;
            }
            rows.push(row);
        }
        let refs: Vec<&[f32]> = rows.iter().map(Vec::as_slice).collect();
        let familiar = Familiar::fit(&refs, dim).unwrap();
        let at = |v: &[f32]| familiar.familiarity(v).unwrap();
        let mut axis = vec![0.0f32; dim];
        axis[1] = 3.0;
        let mut between = vec![0.0f32; dim];
        between[..2].copy_from_slice(&[1.0, 1.0]);
        let mut away = vec![0.0f32; dim];
        away[5] = 1.0;
        assert!(at(&axis) > 0.98, "{}", at(&axis));
        assert!(at(&between) < at(&axis) && at(&away) < at(&between));
        assert!(at(&away) < 0.3, "{}", at(&away));
        // The same photos give the same file, and the file gives the same familiarity.
        let bytes = familiar.to_bytes().unwrap();
        assert_eq!(
            Familiar::fit(&refs, dim).unwrap().to_bytes().unwrap(),
            bytes
        );
        let back = Familiar::from_bytes(&bytes, Path::new("f")).unwrap();
        assert!((back.familiarity(&axis).unwrap() - at(&axis)).abs() < 1e-3);
        assert!(back.familiarity(&axis[..3]).is_err());
    }

    #[test]
    fn a_file_without_centroids_is_refused() {
        let view = TensorView::new(safetensors::Dtype::F32, vec![2], &[0u8; 8]).unwrap();
        let bytes = safetensors_bytes([("other", view)], HashMap::new()).unwrap();
        let error = Familiar::from_bytes(&bytes, Path::new("m/familiar.safetensors"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("no tensor centroids"), "{error}");
        assert!(Familiar::from_bytes(b"junk", Path::new("f")).is_err());
        assert!(Familiar::fit(&[], 4).is_err());
    }
}
