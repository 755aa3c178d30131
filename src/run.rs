//! A training run's state (`train` and `scst`): the optimiser (gradient buffer, Adam's moments and
//! step), the last epoch's checkpoint for resuming, and the model folder's log.jsonl.

use crate::decoder::{Batch, DecoderConfig, Workspace};
use crate::engine::rng::Rng;
use crate::fsio::write_atomic;
use crate::nn::adam::{adam_update, AdamConfig};
use crate::tensor_file::{read_safetensors, safetensors_bytes};
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

/// The optimiser side of training: the gradient buffer, Adam's moments and its step count.
pub struct Optimizer {
    grads: Vec<f32>,
    pub m: Vec<f32>,
    pub v: Vec<f32>,
    /// Updates made so far (Adam's t).
    pub step: u64,
    pub adam: AdamConfig,
    pub threads: usize,
}

impl Optimizer {
    pub fn new(m: Vec<f32>, v: Vec<f32>, step: u64, adam: AdamConfig, threads: usize) -> Self {
        Optimizer {
            grads: vec![0.0; m.len()],
            m,
            v,
            step,
            adam,
            threads,
        }
    }

    /// The batch's gradients (dropout on with `dropout`), then one Adam update with learning rate
    /// `lr`. Returns the batch loss; a non-finite loss leaves the parameters untouched.
    pub fn step(
        &mut self,
        params: &mut [f32],
        config: &DecoderConfig,
        batch: &Batch<f32>,
        ws: &mut Workspace,
        dropout: Option<&mut Rng>,
        lr: f64,
    ) -> f64 {
        // The gradients are zero here: `Optimizer::new` makes them so, and each step leaves them so.
        let loss =
            config.forward_backward(params, &mut self.grads, batch, ws, dropout, self.threads);
        if loss.is_finite() {
            self.step += 1;
            adam_update(
                params,
                &mut self.grads,
                &mut self.m,
                &mut self.v,
                &self.adam,
                lr,
                self.step,
            );
        } else {
            self.grads.fill(0.0);
        }
        loss
    }
}

/// Everything a resumed run needs: parameters, Adam moments and the loop state.
pub(crate) struct Checkpoint<S> {
    pub params: Vec<f32>,
    pub m: Vec<f32>,
    pub v: Vec<f32>,
    pub state: S,
}

/// Writes the last epoch's checkpoint (parameters, Adam moments, the loop state as JSON).
pub(crate) fn save_last<S: Serialize>(
    path: &Path,
    params: &[f32],
    optimizer: &Optimizer,
    state: &S,
) -> Result<()> {
    let metadata = HashMap::from([("state".to_owned(), serde_json::to_string(state)?)]);
    let named: Vec<(&str, Vec<u8>)> = [
        ("params", params),
        ("adam.m", &optimizer.m),
        ("adam.v", &optimizer.v),
    ]
    .into_iter()
    .map(|(name, values)| (name, values.iter().flat_map(|x| x.to_le_bytes()).collect()))
    .collect();
    let views = named
        .iter()
        .map(|(name, bytes)| {
            let view = safetensors::tensor::TensorView::new(
                safetensors::Dtype::F32,
                vec![params.len()],
                bytes,
            )?;
            Ok((*name, view))
        })
        .collect::<Result<Vec<_>>>()?;
    write_atomic(path, &safetensors_bytes(views, metadata)?)
}

pub(crate) fn load_last<S: serde::de::DeserializeOwned>(
    path: &Path,
    total: usize,
) -> Result<Checkpoint<S>> {
    let bytes =
        std::fs::read(path).with_context(|| format!("--resume: cannot read {}", path.display()))?;
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes)
        .with_context(|| format!("{} is corrupt", path.display()))?;
    let state: S = serde_json::from_str(
        header
            .metadata()
            .as_ref()
            .and_then(|m| m.get("state"))
            .map_or("", |s| s.as_str()),
    )
    .with_context(|| format!("{}: no training state", path.display()))?;
    let tensors = read_safetensors(&bytes)?;
    let take = |name: &str| -> Result<Vec<f32>> {
        let data = tensors
            .get(name)
            .map(|t| t.data.clone())
            .unwrap_or_default();
        if data.len() != total {
            bail!(
                "{}: {name} has {} values but this model has {total} parameters (different vocabulary or feature size?)",
                path.display(),
                data.len()
            );
        }
        Ok(data)
    };
    Ok(Checkpoint {
        params: take("params")?,
        m: take("adam.m")?,
        v: take("adam.v")?,
        state,
    })
}

/// Appends one epoch's line to a model folder's log.jsonl.
pub(crate) fn append_log<T: Serialize>(out: &Path, entry: &T) -> Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(out.join("log.jsonl"))?;
    writeln!(file, "{}", serde_json::to_string(entry)?)?;
    Ok(())
}
