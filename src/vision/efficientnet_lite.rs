//! EfficientNet-Lite0/1/2 (Tan & Le 2019, the "Lite" variant for mobile CPUs); Lite0 is the
//! default encoder. Lite0 below; Lite1 and Lite2 are deeper (and Lite2 wider) at 240 and 260 pixels.
//!
//! image 224x224x3, x = (p - 127) / 128
//!   -> stem conv 3x3 s2 (32) + BN + ReLU6
//!   -> 16 MBConv blocks: [expand 1x1 + BN + ReLU6] -> depthwise kxk + BN + ReLU6 -> project 1x1 + BN
//!      (+ input when stride 1 and channels match); no squeeze-excite
//!   -> head conv 1x1 (1280) + BN + ReLU6 -> global average = the 1280-d feature
//!   -> classifier (1000 ImageNet classes), used only to check the weights.
//! Convolutions use TensorFlow "SAME" padding; BN eps 1e-3. Weight names follow the PyPI package
//! `efficientnet-lite-pytorch` (`_conv_stem`, `_blocks.N._expand_conv`, `_bn0`..., `_fc`).

use super::conv::{
    batch_norm_affine, global_average, linear, recycle, Activation, Conv2d, DepthwiseConv2d,
    FeatureMap, Padding,
};
use super::weights::Weights;
use crate::tensor_file::Tensor;
use anyhow::Result;

pub struct Config {
    pub image_size: usize,
    pub stem_channels: usize,
    pub head_channels: usize,
    /// Per stage: (repeats, kernel, stride of the first block, expansion ratio, output channels).
    pub stages: Vec<(usize, usize, usize, usize, usize)>,
    pub bn_eps: f32,
    pub classes: usize,
}

impl Config {
    pub fn lite0() -> Self {
        Config::scaled(224, 1.0, 1.0)
    }

    /// Lite1: Lite0 with 10% more blocks per middle stage, at 240x240 (grid 8x8).
    pub fn lite1() -> Self {
        Config::scaled(240, 1.0, 1.1)
    }

    /// Lite2: 10% wider and 20% deeper than Lite0, at 260x260 (grid 9x9).
    pub fn lite2() -> Self {
        Config::scaled(260, 1.1, 1.2)
    }

    /// Lite0's stages scaled as the EfficientNet-Lite builder does: every stage's channels times
    /// `width` (rounded to a multiple of 8, never down by more than 10%), the middle stages'
    /// repeats times `depth` (rounded up); the stem, the head and the first and last stages' repeats
    /// are not scaled ("fix_head_stem").
    fn scaled(image_size: usize, width: f64, depth: f64) -> Self {
        const LITE0_STAGES: [(usize, usize, usize, usize, usize); 7] = [
            (1, 3, 1, 1, 16),
            (2, 3, 2, 6, 24),
            (2, 5, 2, 6, 40),
            (3, 3, 2, 6, 80),
            (3, 5, 1, 6, 112),
            (4, 5, 2, 6, 192),
            (1, 3, 1, 6, 320),
        ];
        let channels = |c: usize| {
            let wide = c as f64 * width;
            let rounded = ((wide + 4.0) as usize / 8 * 8).max(8);
            if (rounded as f64) < 0.9 * wide {
                rounded + 8
            } else {
                rounded
            }
        };
        let last = LITE0_STAGES.len() - 1;
        let stages = LITE0_STAGES
            .iter()
            .enumerate()
            .map(|(i, &(repeats, k, stride, expand, cout))| {
                let repeats = if i == 0 || i == last {
                    repeats
                } else {
                    (repeats as f64 * depth).ceil() as usize
                };
                (repeats, k, stride, expand, channels(cout))
            })
            .collect();
        Config {
            image_size,
            stem_channels: 32,
            head_channels: 1280,
            stages,
            bn_eps: 1e-3,
            classes: 1000,
        }
    }
}

struct MbConv {
    expand: Option<Conv2d>,
    depthwise: DepthwiseConv2d,
    project: Conv2d,
    residual: bool,
}

pub struct EfficientNetLite {
    stem: Conv2d,
    blocks: Vec<MbConv>,
    head: Conv2d,
    classifier: Option<(Tensor, Vec<f32>)>,
    pub feature_dim: usize,
}

fn batch_norm(
    weights: &Weights,
    prefix: &str,
    channels: usize,
    eps: f32,
) -> Result<(Vec<f32>, Vec<f32>)> {
    let get = |name: &str| {
        weights
            .get(&format!("{prefix}.{name}"), &[channels])
            .map(|t| t.data.clone())
    };
    Ok(batch_norm_affine(
        &get("weight")?,
        &get("bias")?,
        &get("running_mean")?,
        &get("running_var")?,
        eps,
    ))
}

impl EfficientNetLite {
    pub fn load(weights: &Weights, config: &Config) -> Result<Self> {
        let eps = config.bn_eps;
        let conv = |name: &str,
                    bn: &str,
                    cout: usize,
                    cin: usize,
                    k: usize,
                    stride: usize|
         -> Result<Conv2d> {
            let w = weights.get(&format!("{name}.weight"), &[cout, cin, k, k])?;
            let (scale, shift) = batch_norm(weights, bn, cout, eps)?;
            Ok(Conv2d::from_torch(
                w,
                Some(&scale),
                &shift,
                stride,
                Padding::Same,
            ))
        };
        let stem = conv("_conv_stem", "_bn0", config.stem_channels, 3, 3, 2)?;
        let mut blocks = Vec::new();
        let mut cin = config.stem_channels;
        for &(repeats, k, first_stride, expand_ratio, cout) in &config.stages {
            for r in 0..repeats {
                let stride = if r == 0 { first_stride } else { 1 };
                let p = format!("_blocks.{}", blocks.len());
                let hidden = cin * expand_ratio;
                let expand = if expand_ratio != 1 {
                    Some(conv(
                        &format!("{p}._expand_conv"),
                        &format!("{p}._bn0"),
                        hidden,
                        cin,
                        1,
                        1,
                    )?)
                } else {
                    None
                };
                let dw = weights.get(&format!("{p}._depthwise_conv.weight"), &[hidden, 1, k, k])?;
                let (scale, shift) = batch_norm(weights, &format!("{p}._bn1"), hidden, eps)?;
                let depthwise =
                    DepthwiseConv2d::from_torch(dw, &scale, &shift, stride, Padding::Same);
                let project = conv(
                    &format!("{p}._project_conv"),
                    &format!("{p}._bn2"),
                    cout,
                    hidden,
                    1,
                    1,
                )?;
                blocks.push(MbConv {
                    expand,
                    depthwise,
                    project,
                    residual: stride == 1 && cin == cout,
                });
                cin = cout;
            }
        }
        let head = conv("_conv_head", "_bn1", config.head_channels, cin, 1, 1)?;
        let classifier = match weights.get("_fc.weight", &[config.classes, config.head_channels]) {
            Ok(w) => Some((
                w.clone(),
                weights.get("_fc.bias", &[config.classes])?.data.clone(),
            )),
            Err(_) => None,
        };
        Ok(EfficientNetLite {
            stem,
            blocks,
            head,
            classifier,
            feature_dim: config.head_channels,
        })
    }

    /// The 1280-d feature of one normalised image (NHWC, `size x size x 3`); `threads` > 1 splits
    /// each layer over the rayon pool.
    pub fn features(&self, image: FeatureMap, threads: usize) -> Vec<f32> {
        let head = self.head_map(image, threads);
        let features = global_average(&head);
        recycle(head.data);
        features
    }

    /// The head's feature map before pooling (7x7x1280 at 224x224), whose mean over the positions
    /// is the feature.
    pub fn head_map(&self, image: FeatureMap, threads: usize) -> FeatureMap {
        let mut x = self.stem.forward(&image, Activation::Relu6, threads);
        recycle(image.data);
        for block in &self.blocks {
            let expanded = block
                .expand
                .as_ref()
                .map(|e| e.forward(&x, Activation::Relu6, threads));
            let hidden = block.depthwise.forward(
                expanded.as_ref().unwrap_or(&x),
                Activation::Relu6,
                threads,
            );
            if let Some(expanded) = expanded {
                recycle(expanded.data);
            }
            let mut out = block.project.forward(&hidden, Activation::Linear, threads);
            recycle(hidden.data);
            if block.residual {
                out.data.iter_mut().zip(&x.data).for_each(|(o, i)| *o += i);
            }
            recycle(std::mem::replace(&mut x, out).data);
        }
        let head = self.head.forward(&x, Activation::Relu6, threads);
        recycle(x.data);
        head
    }

    pub fn has_classifier(&self) -> bool {
        self.classifier.is_some()
    }

    /// ImageNet logits from a feature (None when the weights have no classifier).
    pub fn logits(&self, features: &[f32]) -> Option<Vec<f32>> {
        let (w, b) = self.classifier.as_ref()?;
        Some(linear(features, w, b, Activation::Linear, 1))
    }
}
