//! Encoder weights: named f32 tensors loaded from a PyTorch `.pth` or a safetensors file, with
//! shape-checked access.

use crate::tensor_file::{read_safetensors, Tensor};
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

    pub fn from_tensors(tensors: HashMap<String, Tensor>, source: &str) -> Self {
        Weights {
            tensors,
            source: source.to_owned(),
        }
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
