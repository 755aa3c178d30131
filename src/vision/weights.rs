//! Named f32 tensors loaded from a PyTorch `.pth` or a safetensors file, with shape-checked access.

use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use std::path::Path;

#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    pub shape: Vec<usize>,
    /// Row-major, contiguous.
    pub data: Vec<f32>,
}

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

/// Every floating-point tensor of a safetensors buffer, as f32.
pub fn read_safetensors(bytes: &[u8]) -> Result<HashMap<String, Tensor>> {
    use safetensors::Dtype;
    let file = safetensors::SafeTensors::deserialize(bytes).context("not a safetensors file")?;
    let mut out = HashMap::new();
    for (name, view) in file.tensors() {
        let raw = view.data();
        let data: Vec<f32> = match view.dtype() {
            Dtype::F32 => raw
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            Dtype::F16 => raw
                .chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            Dtype::BF16 => raw
                .chunks_exact(2)
                .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            Dtype::F64 => raw
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as f32)
                .collect(),
            _ => continue,
        };
        out.insert(
            name.to_string(),
            Tensor {
                shape: view.shape().to_vec(),
                data,
            },
        );
    }
    Ok(out)
}
