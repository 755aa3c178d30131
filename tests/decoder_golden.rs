//! The decoders against PyTorch: logits, LSTM outputs (merge) or attention weights (attention), loss,
//! every gradient, and the parameters after one Adam step, in f64 and in f32. The merge decoder's
//! golden files come with the data (CAPTIONER_DATA/decoder-golden); the attention decoder's are
//! written by its twin, bench/pytorch_attention.py, into fixtures/.

mod common;

use captioner::decoder::attention::{self, AttentionConfig};
use captioner::decoder::merge::{forward_backward, Batch, MergeConfig, Workspace, PARAMETERS};
use captioner::engine::math::FastMath;
use captioner::engine::params::Layout;
use captioner::engine::params::Parameters;
use captioner::nn::adam::{adam_update, AdamConfig};
use std::collections::HashMap;

struct Golden {
    tensors: HashMap<String, (Vec<usize>, Vec<f64>)>,
    metadata: HashMap<String, String>,
}

fn read_golden(path: &std::path::Path) -> Golden {
    let bytes = std::fs::read(path).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let mut tensors = HashMap::new();
    for (name, view) in file.tensors() {
        let data: Vec<f64> = match view.dtype() {
            safetensors::Dtype::F64 => view
                .data()
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
                .collect(),
            safetensors::Dtype::F32 => view
                .data()
                .chunks_exact(4)
                .map(|b| f64::from(f32::from_le_bytes(b.try_into().unwrap())))
                .collect(),
            safetensors::Dtype::I64 => view
                .data()
                .chunks_exact(8)
                .map(|b| i64::from_le_bytes(b.try_into().unwrap()) as f64)
                .collect(),
            other => panic!("unexpected dtype {other:?}"),
        };
        tensors.insert(name.to_string(), (view.shape().to_vec(), data));
    }
    Golden {
        tensors,
        metadata: header.metadata().clone().unwrap(),
    }
}

fn assert_close(name: &str, got: &[f64], want: &[f64], tolerance: f64) {
    assert_eq!(got.len(), want.len(), "{name}: length");
    let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-3);
    let worst = got
        .iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(
        worst <= tolerance * scale,
        "{name}: max diff {worst:e} (scale {scale:e})"
    );
}

/// Every gradient, then the parameters after one Adam step from `params` with those gradients.
fn assert_gradients_and_adam_step<T: FastMath>(
    golden: &Golden,
    layout: &Layout,
    names: &[&str],
    params: &[T],
    mut grads: Vec<T>,
    lr: f64,
    tolerance: f64,
) {
    let back = |xs: &[T]| xs.iter().map(|x| x.to_f64().unwrap()).collect::<Vec<f64>>();
    let tensor = |name: &str| &golden.tensors[name].1;
    let grads64 = back(&grads);
    for name in names {
        assert_close(
            &format!("grad.{name}"),
            &grads64[layout.range(name)],
            tensor(&format!("grad.{name}")),
            tolerance,
        );
    }
    let mut stepped = params.to_vec();
    let (mut m, mut s) = (vec![T::zero(); params.len()], vec![T::zero(); params.len()]);
    adam_update(
        &mut stepped,
        &mut grads,
        &mut m,
        &mut s,
        &AdamConfig::default(),
        lr,
        1,
    );
    let stepped = back(&stepped);
    for name in names {
        assert_close(
            &format!("adam1.{name}"),
            &stepped[layout.range(name)],
            tensor(&format!("adam1.{name}")),
            tolerance,
        );
    }
}

fn check<T: FastMath>(file: &str, tolerance: f64) {
    let data = common::real_data();
    let golden = read_golden(&data.join("decoder-golden").join(file));
    let sizes: HashMap<String, usize> = serde_json::from_str(&golden.metadata["sizes"]).unwrap();
    let captions: Vec<Vec<u32>> = serde_json::from_str(&golden.metadata["captions"]).unwrap();
    let config = MergeConfig {
        vocab: sizes["V"],
        feature_dim: sizes["F"],
        embed_dim: sizes["E"],
        hidden: sizes["H"],
        dropout: 0.0,
    };
    let (f, h, v, t_max) = (sizes["F"], sizes["H"], sizes["V"], sizes["T"]);
    let cast = |xs: &[f64]| xs.iter().map(|&x| T::from_f64_lossy(x)).collect::<Vec<T>>();
    let back = |xs: &[T]| xs.iter().map(|x| x.to_f64().unwrap()).collect::<Vec<f64>>();
    let tensor = |name: &str| &golden.tensors[name].1;

    let params: Vec<T> = PARAMETERS
        .iter()
        .flat_map(|name| cast(tensor(name)))
        .collect();
    assert_eq!(params.len(), config.layout().total);
    let features = cast(tensor("features"));
    let mut batch = Batch::default();
    batch.fill(captions.len(), 1, |b| {
        (&features[b * f..][..f], captions[b].as_slice())
    });
    let mut ws = Workspace::default();
    let mut grads = vec![T::zero(); params.len()];
    let loss = forward_backward(&params, &mut grads, &config, &batch, &mut ws, None, 1);
    assert!(
        (loss - tensor("loss")[0]).abs() <= tolerance * 10.0,
        "loss {loss} vs {}",
        tensor("loss")[0]
    );

    let lstm_h = back(ws.lstm_h());
    for t in 0..batch.packing().offset.len() {
        for row in 0..batch.packing().active[t] {
            let (pos, b) = (batch.packing().offset[t] + row, batch.order[row]);
            let want = &tensor("lstm_h")[(b * t_max + t) * h..][..h];
            assert_close(
                &format!("lstm_h[{b},{t}]"),
                &lstm_h[pos * h..][..h],
                want,
                tolerance,
            );
        }
    }
    // The logits were overwritten by their gradient; run the forward pass again to compare them.
    captioner::decoder::merge::forward(&params, &config, &batch, &mut ws, None, 1);
    let logits = back(&ws.logits);
    for t in 0..batch.packing().offset.len() {
        for row in 0..batch.packing().active[t] {
            let (pos, b) = (batch.packing().offset[t] + row, batch.order[row]);
            assert_close(
                &format!("logits[{b},{t}]"),
                &logits[pos * v..][..v],
                &tensor("logits")[(b * t_max + t) * v..][..v],
                tolerance,
            );
        }
    }
    let adam = AdamConfig::default();
    assert_gradients_and_adam_step(
        &golden,
        &config.layout(),
        &PARAMETERS,
        &params,
        grads,
        adam.lr,
        tolerance,
    );
}

#[cfg_attr(
    not(captioner_data),
    ignore = "needs CAPTIONER_DATA: the real data and golden files"
)]
#[test]
fn merge_decoder_matches_pytorch_in_f64() {
    check::<f64>("merge_tiny_golden_f64.safetensors", 1e-9);
}

#[cfg_attr(
    not(captioner_data),
    ignore = "needs CAPTIONER_DATA: the real data and golden files"
)]
#[test]
fn merge_decoder_matches_pytorch_in_f32() {
    check::<f32>("merge_tiny_golden_f32.safetensors", 2e-5);
}

/// Compares packed rows (`width` values per position) with the golden [B, T, width] tensor.
fn assert_rows_close<T: FastMath>(
    name: &str,
    got: &[f64],
    want: &[f64],
    batch: &Batch<T>,
    t_max: usize,
    width: usize,
    tolerance: f64,
) {
    let packing = batch.packing();
    for t in 0..packing.offset.len() {
        for row in 0..packing.active[t] {
            let (pos, b) = (packing.offset[t] + row, batch.order[row]);
            assert_close(
                &format!("{name}[{b},{t}]"),
                &got[pos * width..][..width],
                &want[(b * t_max + t) * width..][..width],
                tolerance,
            );
        }
    }
}

fn check_attention<T: FastMath>(file: &str, tolerance: f64) {
    let golden = read_golden(&common::repo_path("fixtures").join(file));
    let sizes: HashMap<String, usize> = serde_json::from_str(&golden.metadata["sizes"]).unwrap();
    let captions: Vec<Vec<u32>> = serde_json::from_str(&golden.metadata["captions"]).unwrap();
    let config = AttentionConfig {
        vocab: sizes["V"],
        feature_dim: sizes["C"],
        regions: sizes["R"],
        embed_dim: sizes["E"],
        hidden: sizes["H"],
        attention_dim: sizes["A"],
        dropout: 0.0,
        alpha_c: golden.metadata["alpha_c"].parse().unwrap(),
    };
    let lr: f64 = golden.metadata["lr"].parse().unwrap();
    let (r, c, v, t_max) = (sizes["R"], sizes["C"], sizes["V"], sizes["T"]);
    let cast = |xs: &[f64]| xs.iter().map(|&x| T::from_f64_lossy(x)).collect::<Vec<T>>();
    let back = |xs: &[T]| xs.iter().map(|x| x.to_f64().unwrap()).collect::<Vec<f64>>();
    let tensor = |name: &str| &golden.tensors[name].1;

    let params: Vec<T> = attention::PARAMETERS
        .iter()
        .flat_map(|name| cast(tensor(name)))
        .collect();
    assert_eq!(params.len(), config.layout().total);
    let grid = cast(tensor("grid"));
    let mut batch = Batch::default();
    batch.fill(captions.len(), 1, |b| {
        (&grid[b * r * c..][..r * c], captions[b].as_slice())
    });
    let mut ws = attention::Workspace::default();
    let mut grads = vec![T::zero(); params.len()];
    let loss = attention::forward_backward(&params, &mut grads, &config, &batch, &mut ws, None, 2);
    let alphas = back(&ws.alpha);
    assert_rows_close(
        "alpha",
        &alphas,
        tensor("alphas"),
        &batch,
        t_max,
        r,
        tolerance,
    );
    // The logits were overwritten by their gradient; run the forward pass again to compare them.
    attention::forward(&params, &config, &batch, &mut ws, None, 2);
    let logits = back(&ws.logits);
    assert_rows_close(
        "logits",
        &logits,
        tensor("logits"),
        &batch,
        t_max,
        v,
        tolerance,
    );
    assert!(
        (loss - tensor("loss")[0]).abs() <= tolerance * 10.0,
        "loss {loss} vs {}",
        tensor("loss")[0]
    );

    let layout = config.layout();
    assert_gradients_and_adam_step(
        &golden,
        &layout,
        &attention::PARAMETERS,
        &params,
        grads,
        lr,
        tolerance,
    );
}

#[test]
fn attention_decoder_matches_its_pytorch_twin_in_f64() {
    check_attention::<f64>("attention_golden_f64.safetensors", 1e-9);
}

#[test]
fn attention_decoder_matches_its_pytorch_twin_in_f32() {
    check_attention::<f32>("attention_golden_f32.safetensors", 2e-5);
}
