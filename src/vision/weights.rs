//! Encoder weights: named f32 tensors loaded from a PyTorch `.pth` or a safetensors file, with
//! shape-checked access.

use crate::tensor_file::{float_safetensors, read_safetensors, Tensor};
use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use std::path::Path;

pub struct Weights {
    tensors: HashMap<String, Tensor>,
    source: String,
}

impl Weights {
    /// Reads `.safetensors` by its header, anything else as a PyTorch checkpoint.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read weights {}", path.display()))?;
        let is_safetensors = path.extension().is_some_and(|e| e == "safetensors");
        let tensors = if is_safetensors {
            read_safetensors(&bytes)
        } else {
            super::torch_pth::load(&bytes)
        }
        .with_context(|| format!("cannot load weights from {}", path.display()))?;
        Ok(Weights {
            tensors,
            source: path.display().to_string(),
        })
    }

    /// Safetensors bytes already read (a browser fetches them); `source` names them in errors.
    pub fn from_safetensors(bytes: &[u8], source: &str) -> Result<Self> {
        let tensors = read_safetensors(bytes)
            .with_context(|| format!("cannot load weights from {source}"))?;
        Ok(Self::from_tensors(tensors, source))
    }

    pub fn from_tensors(tensors: HashMap<String, Tensor>, source: &str) -> Self {
        Weights {
            tensors,
            source: source.to_owned(),
        }
    }

    /// Every tensor in f16, as safetensors bytes: half the size, for a browser to fetch (the
    /// captions it gives are measured in docs/BENCHMARKS.md).
    pub fn to_f16_safetensors(&self) -> Result<Vec<u8>> {
        let tensors: Vec<(&str, &[usize], &[f32])> = self
            .tensors
            .iter()
            .map(|(name, t)| (name.as_str(), t.shape.as_slice(), t.data.as_slice()))
            .collect();
        float_safetensors(&tensors, HashMap::new(), true)
    }

    /// The tensor `name`, which must have `shape`.
    pub fn get(&self, name: &str, shape: &[usize]) -> Result<&Tensor> {
        let tensor = self.tensors.get(name).with_context(|| {
            format!(
                "{}: no tensor named {name} (is this the right encoder?)",
                self.source
            )
        })?;
        if tensor.shape != shape {
            bail!(
                "{}: tensor {name} has shape {:?}, expected {shape:?}",
                self.source,
                tensor.shape
            );
        }
        Ok(tensor)
    }
}
