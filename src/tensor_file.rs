//! Tensor files: the `Tensor` type (shape and row-major f32), every floating-point tensor of a
//! safetensors buffer read as f32, and safetensors bytes written the same for the same contents.
//! Model weights, features files, familiarity and concept files, checkpoints and encoder weights
//! all go through here; PyTorch checkpoints are vision/torch_pth.rs's.

use anyhow::{Context, Result};
use std::collections::HashMap;

#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    pub shape: Vec<usize>,
    /// Row-major, contiguous.
    pub data: Vec<f32>,
}

/// `safetensors::serialize` with the header's keys in sorted order. The crate writes the metadata map
/// in hash order, which changes from run to run, so the same tensors and metadata gave different
/// bytes (a rerun could not be checked with `cmp`).
pub fn safetensors_bytes<S, V, I>(tensors: I, metadata: HashMap<String, String>) -> Result<Vec<u8>>
where
    S: AsRef<str> + Ord + std::fmt::Display,
    V: safetensors::View,
    I: IntoIterator<Item = (S, V)>,
{
    let bytes = safetensors::serialize(tensors, Some(metadata))?;
    let header_len = u64::from_le_bytes(bytes[..8].try_into()?) as usize;
    // serde_json's map is ordered by key, so parsing and printing sorts every level of the header.
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + header_len])?;
    let mut text = serde_json::to_string(&header)?;
    // The format pads the header with spaces so that the data starts 8-byte aligned.
    while text.len() % 8 != 0 {
        text.push(' ');
    }
    let data = &bytes[8 + header_len..];
    let mut out = Vec::with_capacity(8 + text.len() + data.len());
    out.extend((text.len() as u64).to_le_bytes());
    out.extend(text.as_bytes());
    out.extend(data);
    Ok(out)
}

/// Named f32 tensors (name, shape, values) as safetensors bytes, stored in f16 when `f16` (half the
/// size, for shipping) or else in f32.
pub fn float_safetensors(
    tensors: &[(&str, &[usize], &[f32])],
    metadata: HashMap<String, String>,
    f16: bool,
) -> Result<Vec<u8>> {
    let dtype = if f16 {
        safetensors::Dtype::F16
    } else {
        safetensors::Dtype::F32
    };
    let encode = |values: &[f32]| -> Vec<u8> {
        if f16 {
            values
                .iter()
                .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
                .collect()
        } else {
            values.iter().flat_map(|v| v.to_le_bytes()).collect()
        }
    };
    let bytes: Vec<Vec<u8>> = tensors.iter().map(|t| encode(t.2)).collect();
    let views = tensors
        .iter()
        .zip(&bytes)
        .map(|(&(name, shape, _), bytes)| {
            let view = safetensors::tensor::TensorView::new(dtype, shape.to_vec(), bytes)?;
            Ok((name, view))
        })
        .collect::<Result<Vec<_>>>()?;
    safetensors_bytes(views, metadata)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safetensors_bytes_do_not_depend_on_the_metadata_order() {
        let values: Vec<u8> = [1.5f32, -2.0, 0.25]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let bytes = |keys: &[&str]| {
            let metadata = keys
                .iter()
                .map(|k| (k.to_string(), format!("value of {k}")));
            let view =
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![3], &values)
                    .unwrap();
            safetensors_bytes([("w", view)], metadata.collect()).unwrap()
        };
        let keys = [
            "epoch",
            "dev_loss",
            "format",
            "ids",
            "encoder",
            "preprocessing",
        ];
        let first = bytes(&keys);
        for _ in 0..10 {
            assert_eq!(bytes(&keys), first);
        }
        let read = safetensors::SafeTensors::deserialize(&first).unwrap();
        assert_eq!(read.tensor("w").unwrap().data(), &values[..]);
        let (header_len, header) = safetensors::SafeTensors::read_metadata(&first).unwrap();
        assert_eq!((8 + header_len) % 8, 0);
        assert_eq!(header.metadata().as_ref().unwrap()["ids"], "value of ids");
    }
}
