//! A model folder: `config.json` (what the decoder is and what it was trained on), `weights.safetensors`
//! (parameters by name, PyTorch layout), `vocab.json` and `familiar.safetensors` (what its training
//! photos were like). Written by `train`, read by `evaluate` and `caption`.

use crate::decoder::DecoderConfig;
use crate::decoder::Generator;
use crate::engine::params::Layout;
use crate::evidence::{self, Detectors};
use crate::familiar::{self, Familiar};
use crate::fsio::{read_text, write_atomic};
use crate::tensor_file::{float_safetensors, read_safetensors};
use crate::text::{Tokenization, Vocabulary};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;
use std::sync::OnceLock;

const FORMAT: &str = "captioner-model/1";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    pub format: String,
    /// `"decoder": "merge"` or `"attention"` and that decoder's sizes.
    #[serde(flatten)]
    pub decoder: DecoderConfig,
    pub encoder: String,
    pub preprocessing: String,
    /// Longest training caption in tokens (startseq/endseq included): generation stops there.
    pub max_length: usize,
    /// How the training captions were tokenised; `evaluate` scores by the same protocol.
    /// Models written before PTB tokens existed carry none and were trained on the seed's cleaning.
    #[serde(default = "seed_tokenization")]
    pub tokenize: Tokenization,
    pub min_count: u64,
}

fn seed_tokenization() -> Tokenization {
    Tokenization::Seed
}

/// The longest caption a config may declare, in tokens (the shipped model's is 38).
const MAX_LENGTH: usize = 1024;

impl ModelConfig {
    /// The parameter layout, once the sizes are known to be possible: a caption length within
    /// `MAX_LENGTH`, and no more parameters than a weights file of `weights_len` bytes holds at two
    /// bytes each (f16), so that a config from elsewhere cannot ask for any amount of memory.
    pub fn checked_layout(&self, weights_len: usize) -> Result<Layout> {
        if !(1..=MAX_LENGTH).contains(&self.max_length) {
            bail!(
                "max_length {} is outside 1..={MAX_LENGTH} tokens",
                self.max_length
            );
        }
        let layout = self.decoder.layout();
        if layout.total > weights_len / 2 {
            // `Layout` saturates a count past `usize`.
            let count = match layout.total {
                usize::MAX => "more than 2^64".to_owned(),
                total => total.to_string(),
            };
            bail!("the decoder's sizes make {count} parameters, more than weights.safetensors ({weights_len} bytes) holds");
        }
        Ok(layout)
    }

    pub fn new(
        decoder: DecoderConfig,
        encoder: &str,
        preprocessing: &str,
        max_length: usize,
        tokenize: Tokenization,
        min_count: u64,
    ) -> Self {
        ModelConfig {
            format: FORMAT.to_owned(),
            decoder,
            encoder: encoder.to_owned(),
            preprocessing: preprocessing.to_owned(),
            max_length,
            tokenize,
            min_count,
        }
    }
}

pub struct Model {
    pub config: ModelConfig,
    pub params: Vec<f32>,
    pub vocab: Vocabulary,
    /// The decoder ready to generate, made from `params` on first use.
    pub generation: OnceLock<Box<dyn Generator>>,
    /// What its training photos were like (`familiar.safetensors`), which grounding needs; models
    /// written before it existed have none until `captioner familiar` adds it.
    pub familiar: Option<Familiar>,
    /// Its concept detectors (`concepts.safetensors`, trained on the same photos), which the
    /// evidence for a caption's words needs; added with `familiar.safetensors`.
    pub concepts: Option<Detectors>,
}

/// Named f32 tensors of a flat parameter buffer, as safetensors bytes (f16 when asked, for shipping).
pub fn weights_bytes(
    layout: &Layout,
    params: &[f32],
    metadata: HashMap<String, String>,
    f16: bool,
) -> Result<Vec<u8>> {
    let tensors: Vec<(&str, &[usize], &[f32])> = layout
        .slots
        .iter()
        .map(|slot| {
            let values = &params[slot.offset..slot.offset + slot.len];
            (slot.name.as_str(), slot.shape.as_slice(), values)
        })
        .collect();
    float_safetensors(&tensors, metadata, f16)
}

/// Parameters in layout order from named tensors (f32, f16 or bf16).
pub fn params_from_weights(layout: &Layout, bytes: &[u8], source: &Path) -> Result<Vec<f32>> {
    let tensors =
        read_safetensors(bytes).with_context(|| format!("cannot read {}", source.display()))?;
    let mut params = Vec::with_capacity(layout.total);
    for slot in &layout.slots {
        let tensor = tensors
            .get(&slot.name)
            .with_context(|| format!("{}: no tensor {}", source.display(), slot.name))?;
        if tensor.shape != slot.shape {
            bail!(
                "{}: {} has shape {:?}, config.json says {:?}",
                source.display(),
                slot.name,
                tensor.shape,
                slot.shape
            );
        }
        params.extend_from_slice(&tensor.data);
    }
    Ok(params)
}

/// A model folder's files (`Model::save` writes them), read already.
pub struct ModelFiles<'a> {
    pub config: &'a str,
    pub vocab: &'a str,
    pub weights: &'a [u8],
    /// familiar.safetensors, when the model has it (`familiar.rs`).
    pub familiar: Option<&'a [u8]>,
    /// concepts.safetensors, when the model has it (`evidence.rs`).
    pub concepts: Option<&'a [u8]>,
}

impl Model {
    /// The decoder ready to generate (its weights packed on the first call).
    pub fn generator(&self) -> &dyn Generator {
        self.generation
            .get_or_init(|| self.config.decoder.generator(&self.params))
            .as_ref()
    }

    /// Forgets the packed decoder after `params` changed (in training), so that the next
    /// `generator()` packs the new weights.
    pub fn params_changed(&mut self) {
        self.generation = OnceLock::new();
    }

    /// Writes the model folder; `f16` halves the weights file (for shipping).
    pub fn save(&self, dir: &Path, f16: bool) -> Result<()> {
        crate::fsio::create_output_dir(dir)?;
        write_atomic(
            &dir.join("config.json"),
            serde_json::to_string_pretty(&self.config)?.as_bytes(),
        )?;
        write_atomic(&dir.join("vocab.json"), self.vocab.to_json().as_bytes())?;
        let bytes = weights_bytes(
            &self.config.decoder.layout(),
            &self.params,
            HashMap::new(),
            f16,
        )?;
        write_atomic(&dir.join("weights.safetensors"), &bytes)?;
        if let Some(familiar) = &self.familiar {
            familiar.save(dir)?;
        }
        match &self.concepts {
            Some(concepts) => concepts.save(dir),
            None => Ok(()),
        }
    }

    pub fn load(dir: &Path) -> Result<Self> {
        if !dir.is_dir() {
            bail!(
                "no model folder at {}: pass a folder written by `captioner train`, or leave --model out for the model shipped in the binary",
                dir.display()
            );
        }
        if !dir.join("config.json").is_file() {
            bail!(
                "{} is not a model folder (no config.json): pass a folder written by `captioner train`",
                dir.display()
            );
        }
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))
        };
        let optional = |name: &str| dir.join(name).is_file().then(|| read(name)).transpose();
        let (familiar, concepts) = (optional(familiar::FILE)?, optional(evidence::FILE)?);
        Self::from_files(
            &ModelFiles {
                config: &read_text(&dir.join("config.json"))?,
                vocab: &read_text(&dir.join("vocab.json"))?,
                weights: &read("weights.safetensors")?,
                familiar: familiar.as_deref(),
                concepts: concepts.as_deref(),
            },
            dir,
        )
    }

    /// The model in `dir`, or the shipped one when there is none.
    pub fn load_or_shipped(dir: Option<&Path>) -> Result<Self> {
        match dir {
            Some(dir) => Model::load(dir),
            None => Model::shipped(),
        }
    }

    /// The default model shipped inside the binary (models/default, see its MODEL_CARD.md).
    pub fn shipped() -> Result<Self> {
        Self::from_files(
            &ModelFiles {
                config: include_str!("../models/default/config.json"),
                vocab: include_str!("../models/default/vocab.json"),
                weights: include_bytes!("../models/default/weights.safetensors"),
                familiar: Some(include_bytes!("../models/default/familiar.safetensors")),
                concepts: Some(include_bytes!("../models/default/concepts.safetensors")),
            },
            Path::new("<shipped model>"),
        )
    }

    /// The model from its folder's files already read (a browser fetches them); `dir` names them
    /// in errors.
    pub fn from_files(files: &ModelFiles, dir: &Path) -> Result<Self> {
        let vocab = Vocabulary::from_json(files.vocab).with_context(|| {
            let path = dir.join("vocab.json");
            format!("{} is not a usable captioner vocabulary", path.display())
        })?;
        let mut model = Self::from_parts(files.config, vocab, files.weights, dir)?;
        if let Some(bytes) = files.familiar {
            model.familiar = Some(Familiar::from_bytes(bytes, &dir.join(familiar::FILE))?);
        }
        if let Some(bytes) = files.concepts {
            model.concepts = Some(Detectors::from_bytes(bytes, &dir.join(evidence::FILE))?);
        }
        Ok(model)
    }

    fn from_parts(
        config_json: &str,
        vocab: Vocabulary,
        weights: &[u8],
        dir: &Path,
    ) -> Result<Self> {
        let config_path = dir.join("config.json");
        let config: ModelConfig = serde_json::from_str(config_json).with_context(|| {
            format!("{} is not a captioner model config", config_path.display())
        })?;
        if config.format != FORMAT {
            bail!(
                "{}: unsupported model format {}",
                config_path.display(),
                config.format
            );
        }
        if vocab.len() != config.decoder.vocab() {
            bail!(
                "{}: vocab.json has {} ids but config.json says {}",
                dir.display(),
                vocab.len(),
                config.decoder.vocab()
            );
        }
        let layout = config
            .checked_layout(weights.len())
            .with_context(|| format!("{} is not a usable model config", config_path.display()))?;
        let params = params_from_weights(&layout, weights, &dir.join("weights.safetensors"))?;
        Ok(Model {
            config,
            params,
            vocab,
            generation: OnceLock::new(),
            familiar: None,
            concepts: None,
        })
    }
}
