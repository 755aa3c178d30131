//! The library's front door: `Captioner::load` a model, then `caption` photo bytes, a file, decoded
//! pixels or many photos at once. The pipeline: decode -> resize as the model's features were ->
//! encoder -> decoder search (grounded and held to evidence) -> words -> a sentence. The CLI,
//! `serve` and the other front ends stand on this module alone.

use crate::decoder::ImageInput;
use crate::evidence::{Concept, Evidence, Source};
use crate::generate::{photo_gain, SearchOptions};
use crate::ground::{GroundOptions, GroundedCaption, Grounding, Seen};
use crate::image::{decode_for_input, to_network_input, Resize, RgbImage};
use crate::model::Model;
use crate::text::class_words::Word;
use crate::text::Vocabulary;
use crate::vision::{Encoder, EncoderKind};
use anyhow::{bail, Context, Result};
use std::path::Path;
// The browser has no std clock: web_time reads performance.now() there and is std's elsewhere.
use web_time::{Duration, Instant};

/// One photo's caption.
pub struct Captioned {
    /// What a person reads: "A man's dog runs through the grass."
    pub sentence: String,
    /// The model's tokens joined by spaces (with the grounded class's name): what `evaluate` scores.
    pub tokens: String,
    /// One entry per generated token (a grounded name may be two words: "sea lion").
    pub words: Vec<String>,
    /// Mean log-probability per token: how fluent the model finds its caption (near 0: sure).
    pub score: f64,
    /// Mean log-probability per token gained from the photo, against the same caption with no image
    /// (pointwise mutual information, nats): near 0 when the caption is the language model's guess
    /// (a blank photo, or one unlike anything in training), 1-2 for a well-grounded caption.
    /// `None` unless asked for: it costs a second pass of the decoder.
    pub grounding: Option<f64>,
    /// With `details` or grounding: how like the model's training photos this one is (cosine
    /// similarity to the nearest of their centroids, `familiar.rs`); `None` for a model without
    /// them.
    pub familiarity: Option<f32>,
    /// With `details`: the encoder's three most probable ImageNet classes (class index, probability),
    /// most probable first; empty when its weights carry no classifier.
    pub classes: Vec<(usize, f32)>,
    /// What the caption was made to name, if anything, and the word of it the caption holds.
    pub grounded: Option<(Grounding, Word)>,
    /// The decoder's probability of each generated token as it chose it.
    pub token_probabilities: Vec<f32>,
    /// What the photo backs, when the caption was held to evidence.
    pub evidence: Option<Evidence>,
    /// With an attention decoder: where it looked for each word.
    pub attention: Option<AttentionMap>,
    /// The photo as the encoder saw it (network size), for drawing the attention over it.
    pub photo: RgbImage,
    pub timings: Timings,
}

/// Where one photo's time went.
#[derive(Clone, Copy, Debug, Default)]
pub struct Timings {
    /// Bytes to pixels, and resizing to the encoder's input.
    pub decode: Duration,
    /// The encoder, with its class probabilities.
    pub encode: Duration,
    /// The decoder's search (and grounding), to the sentence.
    pub generate: Duration,
}

impl Timings {
    /// A duration in milliseconds to a tenth, as answers report them.
    pub fn milliseconds(duration: Duration) -> f64 {
        (duration.as_secs_f64() * 1e4).round() / 10.0
    }
}

/// Each word's attention weights over the photo's grid of `height` x `width` regions (row-major,
/// summing to 1).
#[derive(Clone, Debug, PartialEq)]
pub struct AttentionMap {
    pub height: usize,
    pub width: usize,
    pub words: Vec<Vec<f32>>,
}

impl AttentionMap {
    /// `{"height", "width", "words"}` with four decimals: how `caption --json` and `serve` report it.
    pub fn to_json(&self) -> serde_json::Value {
        let words: Vec<Vec<f64>> = self
            .words
            .iter()
            .map(|w| {
                w.iter()
                    .map(|v| (f64::from(*v) * 1e4).round() / 1e4)
                    .collect()
            })
            .collect();
        serde_json::json!({ "height": self.height, "width": self.width, "words": words })
    }
}

/// One word of a caption that claims something of the photo, and what backs it.
#[derive(Clone, Debug, PartialEq)]
pub struct Claim {
    pub word: String,
    pub source: Source,
    /// How sure its source is: the detector's or the classes' probability for its concept, the
    /// grounded class's probability, or the decoder's probability of the word where nothing else
    /// was asked.
    pub support: f32,
}

/// Words that claim nothing of the photo on their own: articles, pronouns of things,
/// prepositions, conjunctions, auxiliaries and numbers.
const FUNCTION_WORDS: [&str; 49] = [
    "photo", "a", "an", "the", "this", "that", "these", "those", "its", "it", "of", "in", "on",
    "at", "to", "with", "for", "from", "by", "into", "onto", "through", "near", "under", "over",
    "behind", "across", "along", "around", "up", "down", "out", "off", "and", "or", "while", "as",
    "is", "are", "was", "were", "be", "has", "have", "some", "one", "two", "three", "another",
];

impl Captioned {
    /// The caption's claims, one per word that is not a function word, in order.
    pub fn claims(&self) -> Vec<Claim> {
        let grounded: Vec<&str> = self
            .grounded
            .iter()
            .flat_map(|(g, word)| {
                let name = g.name.iter().flat_map(|n| [n.singular, n.plural]);
                [word.singular, word.plural].into_iter().chain(name)
            })
            .collect();
        let grounded_support = self.grounded.as_ref().map_or(0.0, |(g, _)| g.support);
        self.words
            .iter()
            .enumerate()
            .filter(|(_, w)| !FUNCTION_WORDS.contains(&w.as_str()))
            .map(|(at, word)| {
                let decoder = self.token_probabilities.get(at).copied().unwrap_or(0.0);
                let concept = Concept::of_word(word)
                    .and_then(|c| self.evidence.as_ref().map(|e| e.support(c)));
                let (source, support) = if grounded.contains(&word.as_str()) {
                    (Source::Classifier, grounded_support)
                } else {
                    match concept {
                        Some(s) if s.backed == Some(Source::Classifier) => {
                            (Source::Classifier, s.classifier)
                        }
                        Some(s) if s.backed == Some(Source::Detector) => {
                            (Source::Detector, s.detector)
                        }
                        _ => (Source::Decoder, decoder),
                    }
                };
                Claim {
                    word: word.clone(),
                    source,
                    support,
                }
            })
            .collect()
    }

    /// How far the caption can be trusted: the weakest support among its claims (1 with none).
    pub fn confidence(claims: &[Claim]) -> f32 {
        claims.iter().map(|c| c.support).fold(1.0, f32::min)
    }

    /// The fields every JSON form of a caption shares: `"caption"` (the sentence), `"tokens"` (what
    /// `evaluate` scores), `"confidence"` and `"claims": [{"word", "source", "support"}]` (four
    /// decimals). `caption --json` and `serve` build on it.
    pub fn json(&self) -> serde_json::Value {
        let mut line = serde_json::json!({
            "caption": self.sentence,
            "tokens": self.tokens,
        });
        self.add_claims(&mut line);
        line
    }

    /// What a page shows (`serve`'s answers, the browser's page): `json`'s fields, then `"words"`
    /// (one per token), `"model"`, `"timings_ms"` (decode, encode, generate; a tenth of a ms) and,
    /// with `attention` and an attention model, `"attention"` (where it looked for each word).
    pub fn answer_json(&self, model: &str, attention: bool) -> serde_json::Value {
        let ms = Timings::milliseconds;
        let mut answer = self.json();
        answer["words"] = serde_json::json!(self.words);
        answer["model"] = serde_json::json!(model);
        answer["timings_ms"] = serde_json::json!({
            "decode": ms(self.timings.decode),
            "encode": ms(self.timings.encode),
            "generate": ms(self.timings.generate),
        });
        if let (true, Some(map)) = (attention, &self.attention) {
            answer["attention"] = map.to_json();
        }
        answer
    }

    /// `caption --json`'s line for the photo named `image`: `json`'s fields, then how fluent the
    /// caption is and how much it gains from the photo, the photo's familiarity, the encoder's top
    /// classes (with the word `vocab` has for each), what the caption was made to name, the
    /// evidence per concept and, with `maps` and an attention model, where it looked for each word.
    pub fn detailed_json(&self, image: &str, vocab: &Vocabulary, maps: bool) -> serde_json::Value {
        let round4 = |value: f64| (value * 1e4).round() / 1e4;
        let mut line = self.json();
        line["image"] = serde_json::json!(image);
        line["score"] = serde_json::json!(round4(self.score));
        line["photo_gain"] = serde_json::json!(self.grounding.map(round4));
        line["familiarity"] = serde_json::json!(self.familiarity.map(|f| round4(f64::from(f))));
        let class_words = crate::text::class_words::class_words();
        let classes: Vec<serde_json::Value> = self
            .classes
            .iter()
            .map(|&(index, probability)| {
                let words = &class_words[index];
                serde_json::json!({
                    "class": words.name,
                    "probability": round4(f64::from(probability)),
                    "word": words.in_vocabulary(vocab).map(|w| w.singular),
                })
            })
            .collect();
        line["classes"] = serde_json::json!(classes);
        line["named"] = match &self.grounded {
            Some((g, word)) => serde_json::json!({
                "class": class_words[g.class].name,
                "probability": round4(f64::from(g.probability)),
                "word": word.singular,
                "name": g.name.map(|name| name.singular),
            }),
            None => serde_json::Value::Null,
        };
        if let Some(evidence) = &self.evidence {
            line["evidence"] = evidence.to_json();
        }
        if let (true, Some(map)) = (maps, &self.attention) {
            line["attention"] = map.to_json();
        }
        line
    }

    /// Adds `"confidence"` and `"claims": [{"word", "source", "support"}]` (four decimals) to a
    /// JSON object.
    fn add_claims(&self, line: &mut serde_json::Value) {
        let claims = self.claims();
        let round = |v: f32| (f64::from(v) * 1e4).round() / 1e4;
        let list: Vec<serde_json::Value> = claims
            .iter()
            .map(|c| {
                serde_json::json!({
                    "word": c.word,
                    "source": c.source.name(),
                    "support": round(c.support),
                })
            })
            .collect();
        line["confidence"] = serde_json::json!(round(Self::confidence(&claims)));
        line["claims"] = serde_json::json!(list);
    }
}

/// How a photo is captioned.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CaptionOptions {
    pub search: SearchOptions,
    /// Grounding and evidence (`ground.rs`, `evidence.rs`); `None`: the decoder's caption as it is.
    pub ground: Option<GroundOptions>,
    /// Also what `caption --json` reports: the caption's gain from the photo (a second decoder
    /// pass), the photo's familiarity and the encoder's top classes.
    pub details: bool,
}

impl Default for CaptionOptions {
    /// What `captioner caption` does: beam 3, grounded and held to evidence, no details.
    fn default() -> Self {
        CaptionOptions {
            search: SearchOptions::default(),
            ground: Some(GroundOptions::default()),
            details: false,
        }
    }
}

/// A model with its encoder, ready to caption photos (`Sync`: one may serve many threads).
pub struct Captioner {
    pub model: Model,
    /// What records and answers call the model: its folder's name, or "default" for the shipped one.
    pub name: String,
    encoder: Encoder,
    resize: Resize,
}

impl Captioner {
    /// The model in folder `model` (`None`: the shipped one, embedded in the binary) and the
    /// encoder it was trained on (its weights fetched when needed, or read from `weights`).
    pub fn load(model: Option<&Path>, weights: Option<&Path>) -> Result<Self> {
        let (loaded, name) = match model {
            Some(dir) => {
                let name = dir.file_name().unwrap_or(dir.as_os_str());
                (Model::load(dir)?, name.to_string_lossy().into_owned())
            }
            None => (Model::shipped()?, "default".to_owned()),
        };
        let mut captioner = Captioner::new(loaded, weights)?;
        captioner.name = name;
        Ok(captioner)
    }

    /// A note for the user when `options` ask for grounding that the model cannot give: it has no
    /// record of its training photos.
    pub fn grounding_note(&self, options: &CaptionOptions) -> Option<String> {
        (options.ground.is_some() && self.model.familiar.is_none()).then(|| {
            format!(
                "the model has no {} (made before grounding needed it), so captions are not grounded; add it with `captioner familiar --model <its folder> --work <its work folder> --features <its features file>`",
                crate::familiar::FILE
            )
        })
    }

    /// The encoder the model was trained on (its weights fetched when needed, or `weights`).
    pub fn new(model: Model, weights: Option<&Path>) -> Result<Self> {
        let encoder = Encoder::load(Self::encoder_kind(&model)?, weights)?;
        Self::with_encoder(model, encoder)
    }

    /// The model with its encoder's weights given as safetensors bytes (a browser fetches them);
    /// `source` names them in errors.
    pub fn from_encoder_bytes(model: Model, weights: &[u8], source: &str) -> Result<Self> {
        let weights = crate::vision::weights::Weights::from_safetensors(weights, source)?;
        let encoder = Encoder::from_weights(Self::encoder_kind(&model)?, &weights)?;
        Self::with_encoder(model, encoder)
    }

    fn encoder_kind(model: &Model) -> Result<EncoderKind> {
        EncoderKind::parse(&model.config.encoder)
            .with_context(|| "the model was trained on features this version cannot compute")
    }

    /// The model with an encoder, which must give what the model reads.
    fn with_encoder(model: Model, encoder: Encoder) -> Result<Self> {
        let kind = encoder.kind();
        let resize = if model.config.preprocessing.starts_with("center-crop") {
            Resize::CenterCrop
        } else {
            Resize::Squash
        };
        let (height, width, channels) = kind.grid_shape();
        let computes = match model.config.decoder.image_input() {
            ImageInput::Pooled { .. } => ImageInput::Pooled {
                dim: kind.feature_dim(),
            },
            ImageInput::Grid { .. } => ImageInput::Grid {
                regions: height * width,
                channels,
            },
        };
        if computes != model.config.decoder.image_input() {
            bail!(
                "the model reads {} but its encoder {} gives {}: its config.json does not match its encoder",
                model.config.decoder.image_input(),
                kind.name(),
                computes
            );
        }
        Ok(Captioner {
            model,
            name: "model".to_owned(),
            encoder,
            resize,
        })
    }

    /// The caption of one photo's bytes (any format `image` decodes).
    pub fn caption(&self, bytes: &[u8], options: &CaptionOptions) -> Result<Captioned> {
        let start = Instant::now();
        let image = decode_for_input(bytes, self.encoder.kind().input_size())?;
        self.caption_from(&image, start, options)
    }

    /// The caption of a photo file; an error names the file.
    pub fn caption_file(&self, path: &Path, options: &CaptionOptions) -> Result<Captioned> {
        std::fs::read(path)
            .context("cannot read the file")
            .and_then(|bytes| self.caption(&bytes, options))
            .with_context(|| path.display().to_string())
    }

    /// The caption of a photo already decoded (RGB, 8 bits a channel, row-major): an array from
    /// Python, a canvas in a browser.
    pub fn caption_image(&self, image: &RgbImage, options: &CaptionOptions) -> Result<Captioned> {
        if image.width == 0 || image.height == 0 {
            bail!("an empty image ({} x {})", image.width, image.height);
        }
        if image.pixels.len() != image.width * image.height * 3 {
            bail!(
                "{} bytes for an RGB image of {} x {}: it needs {}",
                image.pixels.len(),
                image.width,
                image.height,
                image.width * image.height * 3
            );
        }
        self.caption_from(image, Instant::now(), options)
    }

    /// The captions of many photo files, in their order, each its own result: one that fails
    /// stops none of the others. Photos are encoded side by side on the compute pool and their
    /// searches stepped together (`caption_encoded`).
    pub fn caption_many(
        &self,
        paths: &[std::path::PathBuf],
        options: &CaptionOptions,
    ) -> Vec<Result<Captioned>> {
        use rayon::prelude::*;
        if let [path] = paths {
            // One photo: its searches side by side on both threads (`caption`'s latency).
            return vec![self.caption_file(path, options)];
        }
        let encoded = paths
            .par_iter()
            .map(|path| {
                std::fs::read(path)
                    .context("cannot read the file")
                    .and_then(|bytes| self.encode_bytes(&bytes, options))
                    .with_context(|| path.display().to_string())
            })
            .collect();
        self.caption_encoded(encoded, options)
    }

    /// The captions of many photos' bytes, in their order (what a batch job does with each chunk
    /// of its photos), as `caption_many`.
    pub fn caption_many_bytes(
        &self,
        photos: &[&[u8]],
        options: &CaptionOptions,
    ) -> Vec<Result<Captioned>> {
        use rayon::prelude::*;
        if let [bytes] = photos {
            return vec![self.caption(bytes, options)];
        }
        let encoded = photos
            .par_iter()
            .map(|bytes| self.encode_bytes(bytes, options))
            .collect();
        self.caption_encoded(encoded, options)
    }

    /// Captions of encoded photos: each thread of the compute pool takes an equal share and
    /// steps its photos' searches together (`ground::caption_many`), reading the decoder's weights
    /// once per step for all of them. The captions are those of one photo at a time.
    fn caption_encoded(
        &self,
        encoded: Vec<Result<Encoded>>,
        options: &CaptionOptions,
    ) -> Vec<Result<Captioned>> {
        use rayon::prelude::*;
        let ready: Vec<&Encoded> = encoded.iter().filter_map(|e| e.as_ref().ok()).collect();
        let share = ready.len().div_ceil(rayon::current_num_threads()).max(1);
        let grounded: Vec<Result<GroundedCaption>> = ready
            .par_chunks(share)
            .flat_map_iter(|photos| {
                let inputs: Vec<&[f32]> = photos.iter().map(|e| e.feature.as_slice()).collect();
                let seens: Vec<Seen> = photos.iter().map(|e| e.seen()).collect();
                let (search, ground) = (&options.search, options.ground.as_ref());
                crate::ground::caption_many(
                    &self.model,
                    &inputs,
                    search,
                    ground,
                    &seens,
                    photos.len(),
                )
            })
            .collect();
        let mut grounded = grounded.into_iter();
        encoded
            .into_iter()
            .map(|encoded| {
                let encoded = encoded?;
                let grounded = grounded.next().expect("a caption for each encoded photo")?;
                Ok(self.finish(encoded, grounded, options))
            })
            .collect()
    }

    fn caption_from(
        &self,
        image: &RgbImage,
        start: Instant,
        options: &CaptionOptions,
    ) -> Result<Captioned> {
        let encoded = self.encode(image, start, options)?;
        let grounded = crate::ground::caption(
            &self.model,
            &encoded.feature,
            &options.search,
            options.ground.as_ref(),
            &encoded.seen(),
            true,
        )?;
        Ok(self.finish(encoded, grounded, options))
    }

    /// `encode` from a photo's bytes, decoding timed from here.
    fn encode_bytes(&self, bytes: &[u8], options: &CaptionOptions) -> Result<Encoded> {
        let start = Instant::now();
        let image = decode_for_input(bytes, self.encoder.kind().input_size())?;
        self.encode(&image, start, options)
    }

    /// A photo through the encoder, the classifier, the familiarity and the evidence, as far as
    /// `options` ask for them.
    fn encode(
        &self,
        image: &RgbImage,
        start: Instant,
        options: &CaptionOptions,
    ) -> Result<Encoded> {
        let (ground, details) = (options.ground.as_ref(), options.details);
        let side = self.encoder.kind().input_size();
        let photo = to_network_input(image, self.resize, side);
        let decoded = Instant::now();
        let threads = crate::engine::threads();
        let (pooled, feature) = match self.model.config.decoder.image_input() {
            ImageInput::Pooled { .. } => {
                let pooled = self.encoder.features(&photo, threads);
                (pooled.clone(), pooled)
            }
            // The exact f32 grid (a features file stores it in f16: docs/RESULTS.md measures that
            // this changes no score).
            ImageInput::Grid { .. } => {
                let (pooled, grid) = self.encoder.features_and_grid(&photo, threads);
                (pooled, grid.data)
            }
        };
        let probabilities = if details || ground.is_some() {
            self.encoder
                .class_probabilities(&pooled)
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        let familiarity = match &self.model.familiar {
            Some(familiar) if details || ground.is_some() => Some(familiar.familiarity(&pooled)?),
            _ => None,
        };
        let evidence =
            crate::ground::evidence(&self.model, ground, &pooled, &probabilities, familiarity)?;
        Ok(Encoded {
            photo,
            feature,
            probabilities,
            familiarity,
            evidence,
            decode: decoded - start,
            encode: decoded.elapsed(),
            encoded: Instant::now(),
        })
    }

    /// The caption from the search: the sentence, and what `options.details` asks for.
    fn finish(
        &self,
        encoded: Encoded,
        grounded: GroundedCaption,
        options: &CaptionOptions,
    ) -> Captioned {
        let details = options.details;
        let generated = &grounded.generated;
        // A composed caption is not the decoder's: it gains nothing from the photo to measure.
        let grounding = (details && !grounded.composed)
            .then(|| photo_gain(&self.model, &encoded.feature, generated));
        let probabilities = &encoded.probabilities;
        let classes = if details {
            let mut order: Vec<usize> = (0..probabilities.len()).collect();
            order.sort_by(|&a, &b| probabilities[b].total_cmp(&probabilities[a]));
            order
                .into_iter()
                .take(3)
                .map(|i| (i, probabilities[i]))
                .collect()
        } else {
            Vec::new()
        };
        Captioned {
            sentence: crate::text::sentence(&grounded.words),
            tokens: grounded.words.join(" "),
            score: generated.mean_log_prob(),
            grounding,
            familiarity: encoded.familiarity.filter(|_| details),
            classes,
            grounded: grounded.grounding,
            token_probabilities: grounded.generated.token_probabilities.clone(),
            evidence: encoded.evidence,
            attention: matches!(
                self.model.config.decoder.image_input(),
                ImageInput::Grid { .. }
            )
            .then(|| {
                let (height, width, _) = self.encoder.kind().grid_shape();
                AttentionMap {
                    height,
                    width,
                    words: grounded.generated.attention,
                }
            }),
            words: grounded.words,
            photo: encoded.photo,
            timings: Timings {
                decode: encoded.decode,
                encode: encoded.encode,
                generate: encoded.encoded.elapsed(),
            },
        }
    }
}

/// A photo through the encoder (`Captioner::encode`), waiting for its search.
struct Encoded {
    /// The photo as the encoder saw it.
    photo: RgbImage,
    /// What the decoder reads: the pooled feature or the grid.
    feature: Vec<f32>,
    probabilities: Vec<f32>,
    familiarity: Option<f32>,
    evidence: Option<Evidence>,
    decode: Duration,
    encode: Duration,
    /// When the encoder was done: a caption's generate time runs from here.
    encoded: Instant,
}

impl Encoded {
    fn seen(&self) -> Seen<'_> {
        Seen {
            probabilities: &self.probabilities,
            familiarity: self.familiarity,
            evidence: self.evidence.as_ref(),
        }
    }
}
