//! The concept detectors (Fang et al. 2015): one logistic regression per concept over the pooled
//! feature, fitted on the training photos' captions, and their file (`concepts.safetensors`).

use super::{Concept, CONCEPTS, FILE};
use crate::engine::{matmul, Transpose};
use crate::fsio::write_atomic;
use crate::tensor_file::{read_safetensors, safetensors_bytes};
use anyhow::{bail, Context, Result};
use safetensors::tensor::TensorView;
use std::collections::HashMap;
use std::path::Path;

/// The concept detectors: `[concepts, dim]` weights over the pooled feature and a bias each.
#[derive(Clone, Debug, PartialEq)]
pub struct Detectors {
    weights: Vec<f32>,
    bias: Vec<f32>,
    dim: usize,
}

/// Full-batch gradient steps of the logistic regressions, their rate and the L2 weight (on the
/// standardised feature): enough for the loss to settle on Flickr8k (docs/RESULTS.md).
const STEPS: usize = 300;
const RATE: f32 = 0.05;
const L2: f32 = 1e-3;

impl Detectors {
    /// One logistic regression per concept over `rows` (pooled features, `dim` each), each row's
    /// target the share of its captions (`captions[i]`, tokens) that hold a word of the concept.
    /// Features are standardised for the fit and the scaling folded into the weights. Adam, full
    /// batch, from zero: the same data give the same file.
    pub fn fit(rows: &[&[f32]], captions: &[Vec<Vec<&str>>], dim: usize) -> Result<Self> {
        if rows.is_empty() || rows.len() != captions.len() {
            bail!("no training photos with captions to learn the concept detectors from");
        }
        crate::familiar::check_widths(rows, dim)?;
        let n = rows.len();
        let k = CONCEPTS.len();
        let targets = targets(captions);
        let (mean, scale) = standardise(rows, dim);
        let x: Vec<f32> = rows
            .iter()
            .flat_map(|r| {
                let (mean, scale) = (&mean, &scale);
                (0..dim).map(move |j| (r[j] - mean[j]) * scale[j])
            })
            .collect();
        let mut w = vec![0.0f32; k * dim];
        let mut b = vec![0.0f32; k];
        let (mut m, mut v) = (vec![0.0f32; k * dim + k], vec![0.0f32; k * dim + k]);
        let mut logits = vec![0.0f32; n * k];
        let mut grad_w = vec![0.0f32; k * dim];
        for step in 1..=STEPS {
            // logits [n, k] = x [n, dim] . w^T
            let threads = crate::engine::threads();
            matmul(
                n,
                k,
                dim,
                1.0,
                &x,
                Transpose::No,
                &w,
                Transpose::Yes,
                0.0,
                &mut logits,
                threads,
            );
            let mut error = vec![0.0f32; n * k];
            for (i, e) in error.iter_mut().enumerate() {
                let p = 1.0 / (1.0 + (-(logits[i] + b[i % k])).exp());
                *e = (p - targets[i]) / n as f32;
            }
            // grad_w [k, dim] = error^T . x
            matmul(
                k,
                dim,
                n,
                1.0,
                &error,
                Transpose::Yes,
                &x,
                Transpose::No,
                0.0,
                &mut grad_w,
                threads,
            );
            let grad_b: Vec<f32> = (0..k)
                .map(|c| error.iter().skip(c).step_by(k).sum())
                .collect();
            let grads: Vec<f32> = grad_w
                .iter()
                .zip(&w)
                .map(|(g, w)| g + L2 * w)
                .chain(grad_b)
                .collect();
            let correction =
                (1.0 - 0.999f32.powi(step as i32)).sqrt() / (1.0 - 0.9f32.powi(step as i32));
            let params = w.iter_mut().chain(b.iter_mut());
            for (((p, g), m), v) in params.zip(grads).zip(&mut m).zip(&mut v) {
                *m = 0.9 * *m + 0.1 * g;
                *v = 0.999 * *v + 0.001 * g * g;
                *p -= RATE * correction * *m / (v.sqrt() + 1e-8);
            }
        }
        // Fold the standardisation in: w . ((x - mean) * scale) = (w * scale) . x - (w * scale) . mean.
        for c in 0..k {
            let row = &mut w[c * dim..][..dim];
            let mut shift = 0.0f32;
            for j in 0..dim {
                row[j] *= scale[j];
                shift += row[j] * mean[j];
            }
            b[c] -= shift;
        }
        Ok(Detectors {
            weights: w,
            bias: b,
            dim,
        })
    }

    /// Each concept's probability for a photo's pooled feature, in `CONCEPTS` order.
    pub fn detect(&self, pooled: &[f32]) -> Result<Vec<f32>> {
        if pooled.len() != self.dim {
            bail!(
                "a pooled feature of {} values, but the model's concept detectors read {}",
                pooled.len(),
                self.dim
            );
        }
        Ok(self
            .weights
            .chunks_exact(self.dim)
            .zip(&self.bias)
            .map(|(w, b)| {
                let z: f32 = w.iter().zip(pooled).map(|(a, x)| a * x).sum::<f32>() + b;
                1.0 / (1.0 + (-z).exp())
            })
            .collect())
    }

    /// The file's bytes: `weights` [concepts, dim] and `bias` [concepts], f32, and the concepts'
    /// names in the metadata (a file for other concepts is refused).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let as_bytes = |v: &[f32]| -> Vec<u8> { v.iter().flat_map(|x| x.to_le_bytes()).collect() };
        let (weights, bias) = (as_bytes(&self.weights), as_bytes(&self.bias));
        let k = self.bias.len();
        let tensors = [
            (
                "weights",
                TensorView::new(safetensors::Dtype::F32, vec![k, self.dim], &weights)?,
            ),
            (
                "bias",
                TensorView::new(safetensors::Dtype::F32, vec![k], &bias)?,
            ),
        ];
        let metadata = HashMap::from([("concepts".to_owned(), concept_names())]);
        safetensors_bytes(tensors, metadata)
    }

    pub fn from_bytes(bytes: &[u8], source: &Path) -> Result<Self> {
        let (_, metadata) = safetensors::SafeTensors::read_metadata(bytes)
            .with_context(|| format!("cannot read {}", source.display()))?;
        let names = metadata.metadata().as_ref().and_then(|m| m.get("concepts"));
        if names.map(String::as_str) != Some(concept_names().as_str()) {
            bail!(
                "{}: detectors for concepts {:?}, but this version checks {}: rewrite it with `captioner familiar`",
                source.display(),
                names.map(String::as_str).unwrap_or("(none)"),
                concept_names()
            );
        }
        let tensors =
            read_safetensors(bytes).with_context(|| format!("cannot read {}", source.display()))?;
        let get = |name: &str| {
            tensors
                .get(name)
                .with_context(|| format!("{}: no tensor {name}", source.display()))
        };
        let (weights, bias) = (get("weights")?, get("bias")?);
        let k = CONCEPTS.len();
        match (&weights.shape[..], &bias.shape[..]) {
            ([rows, dim], [b]) if *rows == k && *b == k && *dim > 0 => Ok(Detectors {
                weights: weights.data.clone(),
                bias: bias.data.clone(),
                dim: *dim,
            }),
            _ => bail!(
                "{}: weights {:?} and bias {:?}, not [{k}, dim] and [{k}]",
                source.display(),
                weights.shape,
                bias.shape
            ),
        }
    }

    pub fn save(&self, dir: &Path) -> Result<()> {
        write_atomic(&dir.join(FILE), &self.to_bytes()?)
    }
}

fn concept_names() -> String {
    CONCEPTS.map(Concept::name).join(",")
}

/// Each photo's target for each concept (`[photos, concepts]`): the share of its captions that hold
/// a word of the concept.
fn targets(captions: &[Vec<Vec<&str>>]) -> Vec<f32> {
    let words: Vec<std::collections::HashSet<&str>> =
        CONCEPTS.iter().map(|c| c.words().collect()).collect();
    captions
        .iter()
        .flat_map(|photo| {
            words.iter().map(move |words| {
                let said = photo
                    .iter()
                    .filter(|c| c.iter().any(|w| words.contains(w)))
                    .count();
                said as f32 / photo.len().max(1) as f32
            })
        })
        .collect()
}

/// Each feature's mean and 1 / standard deviation over `rows` (1 where it does not vary).
fn standardise(rows: &[&[f32]], dim: usize) -> (Vec<f32>, Vec<f32>) {
    let n = rows.len() as f64;
    let mut mean = vec![0.0f64; dim];
    let mut square = vec![0.0f64; dim];
    for row in rows {
        for j in 0..dim {
            mean[j] += f64::from(row[j]);
            square[j] += f64::from(row[j]).powi(2);
        }
    }
    let scale = (0..dim)
        .map(|j| {
            let m = mean[j] / n;
            let variance = square[j] / n - m * m;
            if variance > 1e-12 {
                (1.0 / variance.sqrt()) as f32
            } else {
                1.0
            }
        })
        .collect();
    (mean.iter().map(|m| (m / n) as f32).collect(), scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detectors_learn_a_concept_and_survive_their_file() {
        // Photo features: the first value high where the captions mention a dog.
        let rows: Vec<Vec<f32>> = (0..40)
            .map(|i| vec![if i % 2 == 0 { 3.0 } else { -1.0 }, (i % 7) as f32])
            .collect();
        let captions: Vec<Vec<Vec<&str>>> = (0..40)
            .map(|i| {
                let caption = if i % 2 == 0 {
                    vec!["a", "dog", "runs"]
                } else {
                    vec!["a", "cat", "sleeps"]
                };
                vec![caption; 5]
            })
            .collect();
        let refs: Vec<&[f32]> = rows.iter().map(Vec::as_slice).collect();
        let detectors = Detectors::fit(&refs, &captions, 2).unwrap();
        let dog = CONCEPTS.iter().position(|&c| c == Concept::Dog).unwrap();
        assert!(detectors.detect(&[3.0, 1.0]).unwrap()[dog] > 0.9);
        assert!(detectors.detect(&[-1.0, 1.0]).unwrap()[dog] < 0.1);
        let bytes = detectors.to_bytes().unwrap();
        let back = Detectors::from_bytes(&bytes, Path::new("m/concepts.safetensors")).unwrap();
        assert_eq!(back, detectors);
        assert!(back.detect(&[1.0]).is_err(), "a feature of the wrong size");
        assert!(Detectors::from_bytes(b"junk", Path::new("c")).is_err());
        // A file for other concepts is refused, with what to do.
        let other = safetensors_bytes(
            [(
                "bias",
                TensorView::new(safetensors::Dtype::F32, vec![1], &[0u8; 4]).unwrap(),
            )],
            HashMap::from([("concepts".to_owned(), "cat".to_owned())]),
        )
        .unwrap();
        let error = Detectors::from_bytes(&other, Path::new("m/concepts.safetensors"));
        assert!(format!("{:#}", error.unwrap_err()).contains("captioner familiar"));
    }
}
