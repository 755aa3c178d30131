//! VGG16 (Simonyan & Zisserman 2014), the seed's encoder, in torchvision's layout
//! (`features.N`, `classifier.N`). The feature is `fc2`: the second 4096-d fully connected layer after
//! its ReLU (the Keras `fc2` layer the seed uses).
//!
//! image 224x224x3, x = (p/255 - mean) / std
//!   -> 13 conv 3x3 (pad 1) + ReLU in 5 groups (64, 64 | 128, 128 | 256 x3 | 512 x3 | 512 x3), each
//!      group followed by 2x2 max pooling -> pool5 7x7x512
//!   -> fc1 4096 + ReLU -> fc2 4096 + ReLU (the feature) -> logits 1000.

use super::conv::{linear, max_pool_2x2, Activation, Conv2d, FeatureMap, Padding};
use super::weights::Weights;
use crate::tensor_file::Tensor;
use anyhow::Result;

/// Output channels of each conv, `None` for a max pool; the index in torchvision's `features`
/// advances by 2 per conv (conv + ReLU) and by 1 per pool.
const LAYERS: [Option<usize>; 18] = [
    Some(64),
    Some(64),
    None,
    Some(128),
    Some(128),
    None,
    Some(256),
    Some(256),
    Some(256),
    None,
    Some(512),
    Some(512),
    Some(512),
    None,
    Some(512),
    Some(512),
    Some(512),
    None,
];
pub const FEATURE_DIM: usize = 4096;
pub const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
pub const STD: [f32; 3] = [0.229, 0.224, 0.225];

enum Layer {
    Conv(Conv2d),
    Pool,
}

pub struct Vgg16 {
    layers: Vec<Layer>,
    /// fc1 weight with its input columns permuted from NCHW to NHWC flattening.
    fc1: (Tensor, Vec<f32>),
    fc2: (Tensor, Vec<f32>),
    fc3: (Tensor, Vec<f32>),
}

/// The intermediate outputs the golden file checks.
pub struct VggOutputs {
    pub pool5: FeatureMap,
    pub fc1: Vec<f32>,
    pub fc2: Vec<f32>,
    pub logits: Vec<f32>,
}

impl Vgg16 {
    pub fn load(weights: &Weights) -> Result<Self> {
        let mut layers = Vec::new();
        let mut index = 0;
        let mut cin = 3;
        for layer in LAYERS {
            match layer {
                Some(cout) => {
                    let w = weights.get(&format!("features.{index}.weight"), &[cout, cin, 3, 3])?;
                    let b = weights.get(&format!("features.{index}.bias"), &[cout])?;
                    layers.push(Layer::Conv(Conv2d::from_torch(
                        w,
                        None,
                        &b.data,
                        1,
                        Padding::Symmetric(1),
                    )));
                    cin = cout;
                    index += 2;
                }
                None => {
                    layers.push(Layer::Pool);
                    index += 1;
                }
            }
        }
        let dense = |name: &str, out: usize, inp: usize| -> Result<(Tensor, Vec<f32>)> {
            let w = weights.get(&format!("{name}.weight"), &[out, inp])?.clone();
            let b = weights.get(&format!("{name}.bias"), &[out])?.data.clone();
            Ok((w, b))
        };
        let (fc1_nchw, fc1_bias) = dense("classifier.0", FEATURE_DIM, 512 * 49)?;
        let mut fc1 = fc1_nchw.clone();
        for o in 0..FEATURE_DIM {
            let row_in = &fc1_nchw.data[o * 512 * 49..][..512 * 49];
            let row_out = &mut fc1.data[o * 512 * 49..][..512 * 49];
            for c in 0..512 {
                for p in 0..49 {
                    row_out[p * 512 + c] = row_in[c * 49 + p];
                }
            }
        }
        Ok(Vgg16 {
            layers,
            fc1: (fc1, fc1_bias),
            fc2: dense("classifier.3", FEATURE_DIM, FEATURE_DIM)?,
            fc3: dense("classifier.6", 1000, FEATURE_DIM)?,
        })
    }

    /// ImageNet logits from the fc2 feature.
    pub fn logits(&self, fc2: &[f32]) -> Vec<f32> {
        linear(fc2, &self.fc3.0, &self.fc3.1, Activation::Linear, 1)
    }

    /// `threads` > 1 splits each layer over the rayon pool.
    pub fn forward(&self, image: FeatureMap, threads: usize) -> VggOutputs {
        let mut x = image;
        for layer in &self.layers {
            x = match layer {
                Layer::Conv(conv) => conv.forward(&x, Activation::Relu, threads),
                Layer::Pool => max_pool_2x2(&x),
            };
        }
        let fc1 = linear(&x.data, &self.fc1.0, &self.fc1.1, Activation::Relu, threads);
        let fc2 = linear(&fc1, &self.fc2.0, &self.fc2.1, Activation::Relu, threads);
        let logits = linear(&fc2, &self.fc3.0, &self.fc3.1, Activation::Linear, threads);
        VggOutputs {
            pool5: x,
            fc1,
            fc2,
            logits,
        }
    }
}
