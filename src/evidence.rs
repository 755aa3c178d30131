//! What a photo backs. A decoder trained on Flickr8k puts people, dogs, grass and water into every
//! scene it does not know ("a group of people are sitting on a crocodile"). Here a caption may say
//! a person, a dog, a garment, one of Flickr8k's props or a setting only with evidence for it:
//!
//! - concept detectors (Fang et al. 2015, "From captions to visual concepts and back"): for each
//!   concept a logistic regression over the encoder's pooled feature, trained on the model's
//!   training photos with the share of each photo's captions that mention the concept as its target
//!   (`concepts.safetensors` in the model folder, written beside `familiar.safetensors`);
//! - the ImageNet classifier: its dog breeds back "dog", its few person classes "person", and the
//!   classes that are scenes or live in one back settings (a seashore: sand and water; a fish:
//!   water; an alp: snow and rocks);
//! - familiarity (`familiar.rs`): a detector trained on Flickr8k speaks for photos like Flickr8k's.
//!   The less familiar a photo, the surer the detector must be (`EvidenceOptions`).
//!
//! A concept without support is masked: no search may emit any of its words. The words a caption
//! keeps are reported with where their support came from.

use crate::engine::{matmul, Transpose};
use crate::fsio::write_atomic;
use crate::tensor_file::{read_safetensors, safetensors_bytes};
use crate::text::class_words::class_words;
use crate::text::{Vocabulary, UNK_ID};
use anyhow::{bail, Context, Result};
use safetensors::tensor::TensorView;
use std::collections::HashMap;
use std::path::Path;

/// The file in a model folder.
pub const FILE: &str = "concepts.safetensors";

/// The things the decoder says most that a photo may not show.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Concept {
    Person,
    Dog,
    /// Clothing: it needs a wearer as well (a person backed).
    Clothing,
    /// Flickr8k's favourite toys: balls, frisbees, sticks.
    Prop,
    Water,
    Snow,
    Grass,
    Sand,
    Street,
    Indoors,
    Trees,
    Rocks,
    Sky,
}

/// Every concept, in the order of the detectors' rows.
pub const CONCEPTS: [Concept; 13] = [
    Concept::Person,
    Concept::Dog,
    Concept::Clothing,
    Concept::Prop,
    Concept::Water,
    Concept::Snow,
    Concept::Grass,
    Concept::Sand,
    Concept::Street,
    Concept::Indoors,
    Concept::Trees,
    Concept::Rocks,
    Concept::Sky,
];

impl Concept {
    pub fn name(self) -> &'static str {
        match self {
            Concept::Person => "person",
            Concept::Dog => "dog",
            Concept::Clothing => "clothing",
            Concept::Prop => "prop",
            Concept::Water => "water",
            Concept::Snow => "snow",
            Concept::Grass => "grass",
            Concept::Sand => "sand",
            Concept::Street => "street",
            Concept::Indoors => "indoors",
            Concept::Trees => "trees",
            Concept::Rocks => "rocks",
            Concept::Sky => "sky",
        }
    }

    /// The words that claim it (PTB tokens, lower case): nouns, their plurals, the pronouns of
    /// people and the verbs that put a thing in a setting ("swimming": water).
    pub fn words(self) -> impl Iterator<Item = &'static str> {
        self.word_list().split_whitespace()
    }

    /// Whether `word` claims it.
    pub fn claimed_by(self, word: &str) -> bool {
        self.words().any(|w| w == word)
    }

    fn word_list(self) -> &'static str {
        match self {
            Concept::Person => {
                "man men woman women person people persons boy boys girl girls child children \
                 kid kids baby babies toddler toddlers infant lady ladies guy guys gentleman \
                 player players crowd family couple adult adults teenager teenagers teen teens \
                 youth student students soldier soldiers worker workers skier skiers surfer \
                 surfers rider riders biker bikers cyclist cyclists bicyclist bicyclists \
                 motorcyclist motorcyclists swimmer swimmers climber climbers hiker hikers \
                 dancer dancers runner runners skateboarder skateboarders snowboarder \
                 snowboarders skater skaters athlete athletes someone he she they his her him \
                 them performer performers musician musicians spectators audience onlookers \
                 bride groom cowboy goalie wrestler wrestlers mother father officer policeman \
                 referee clown photographer friend friends owner team jockey fisherman diver dj \
                 singer guitarist drummer pedestrian pedestrians"
            }
            Concept::Dog => {
                "dog dogs puppy puppies greyhound greyhounds retriever retrievers poodle poodles \
                 terrier terriers collie collies doberman beagle beagles husky huskies \
                 dachshund hound hounds labrador pug spaniel dalmatian shepherd chihuahua"
            }
            Concept::Clothing => {
                "shirt shirts t-shirt t-shirts jacket jackets hat hats dress dresses helmet \
                 helmets uniform uniforms coat coats jersey jerseys costume costumes pants \
                 shorts sweater sweaters sweatshirt swimsuit swimsuits skirt skirts jeans cap \
                 caps vest vests suit suits scarf sunglasses glasses boots shoes outfit clothes \
                 clothing bikini trunks apron hood overalls gear"
            }
            Concept::Prop => "ball balls frisbee frisbees stick sticks toy toys rope leash",
            Concept::Water => {
                "water pool lake ocean sea river stream waves wave pond fountain surf underwater \
                 puddle creek waterfall swimming swims swim splashes splashing splash surfing \
                 surfs wading wades"
            }
            Concept::Snow => {
                "snow snowy ice icy skiing skis ski snowboard snowboarding sled sledding"
            }
            Concept::Grass => "grass grassy field fields lawn meadow yard",
            Concept::Sand => "beach sand sandy desert shore",
            Concept::Street => {
                "street streets road sidewalk city town parking crosswalk highway alley"
            }
            Concept::Indoors => {
                "room kitchen couch sofa bed bedroom bathroom restaurant store shop classroom \
                 office indoors inside living"
            }
            Concept::Trees => "forest woods trees tree",
            Concept::Rocks => "rock rocks rocky cliff cliffs mountain mountains boulder",
            Concept::Sky => "sky",
        }
    }

    /// Where a photo was taken, rather than what is in it.
    pub fn is_setting(self) -> bool {
        !matches!(
            self,
            Concept::Person | Concept::Dog | Concept::Clothing | Concept::Prop
        )
    }

    /// How a short caption puts a thing in this setting ("in the water").
    pub fn phrase(self) -> &'static str {
        match self {
            Concept::Water => "in the water",
            Concept::Snow => "in the snow",
            Concept::Grass => "on the grass",
            Concept::Sand => "on the sand",
            Concept::Street => "on the street",
            Concept::Indoors => "indoors",
            Concept::Trees => "in the trees",
            Concept::Rocks => "on the rocks",
            Concept::Sky => "in the sky",
            Concept::Person | Concept::Dog | Concept::Clothing | Concept::Prop => "",
        }
    }

    /// The concept a word claims, if any.
    pub fn of_word(word: &str) -> Option<Concept> {
        CONCEPTS.into_iter().find(|c| c.claimed_by(word))
    }

    /// The ImageNet classes that back it, by name or by an ancestor's name ("fish": every fish
    /// backs water). None for concepts only the detectors speak for.
    fn class_names(self) -> impl Iterator<Item = &'static str> {
        self.class_list()
            .split(", ")
            .filter(|name| !name.is_empty())
    }

    fn class_list(self) -> &'static str {
        match self {
            Concept::Person => "person",
            Concept::Dog => "dog",
            Concept::Water => {
                "fish, aquatic mammal, coelenterate, ship, sailing vessel, boat, lakeside, \
                 seashore, coral reef, sandbar, geyser, snorkel, scuba diver, breakwater, dock, \
                 boathouse, fountain, paddle, water ski, swimming trunks, canoe, sea snake, \
                 sea slug, sea cucumber, sea urchin, starfish, sea anemone, \
                 jellyfish, dugong, platypus, otter, beaver, pelican, albatross, goose, drake, \
                 crane, flamingo, spoonbill, heron, seabird, crayfish, crab, lobster, \
                 hippopotamus, turtle, newt"
            }
            Concept::Snow => "alp, ski, dogsled, snowmobile, snowplow, bobsled, ice bear",
            Concept::Sand => "seashore, sandbar, dune",
            Concept::Rocks => "cliff, alp, volcano, promontory, cliff dwelling",
            Concept::Sky => {
                "airliner, airship, warplane, parachute, balloon, space shuttle, missile, \
                 projectile, kite"
            }
            Concept::Street => {
                "motor vehicle, streetcar, trolleybus, traffic light, street sign, \
                 parking meter, bicycle, motorcycle, bus"
            }
            Concept::Indoors => {
                "furniture, home appliance, library, restaurant, barbershop, shoe shop, toyshop, \
                 bakery, butcher shop, confectionery, grocery store, tobacco shop, bookshop, \
                 home theater, dining table, desk"
            }
            Concept::Clothing | Concept::Prop | Concept::Grass | Concept::Trees => "",
        }
    }
}

/// The classes that back each concept: for every concept, the indices of the classes whose name
/// or an ancestor's is one of `Concept::class_names`.
fn backing_classes() -> &'static [Vec<usize>] {
    static TABLE: std::sync::OnceLock<Vec<Vec<usize>>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        CONCEPTS
            .iter()
            .map(|concept| {
                let names: Vec<&str> = concept.class_names().collect();
                class_words()
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| {
                        names.contains(&c.name)
                            || c.ancestors.iter().any(|a| names.contains(&a.singular))
                    })
                    .map(|(index, _)| index)
                    .collect()
            })
            .collect()
    })
}

/// Where a word's support came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The decoder alone: a word of no checked concept.
    Decoder,
    /// A concept detector, on a photo familiar enough for it to be believed.
    Detector,
    /// The ImageNet classifier (a class that backs the concept, or the grounded class).
    Classifier,
}

impl Source {
    pub fn name(self) -> &'static str {
        match self {
            Source::Decoder => "decoder",
            Source::Detector => "detector",
            Source::Classifier => "classifier",
        }
    }
}

/// What one concept has for it in one photo.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Support {
    pub concept: Concept,
    /// The detector's probability that a caption of this photo mentions the concept.
    pub detector: f32,
    /// The summed probability of the classes that back it.
    pub classifier: f32,
    /// Whether a caption may say it, and on whose word.
    pub backed: Option<Source>,
}

/// How sure the evidence must be, fitted on Flickr8k's dev split and the first half of
/// imagenet-sample (docs/RESULTS.md, "Saying only what the photo shows").
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EvidenceOptions {
    /// A concept's detector backs it on a photo at least `familiar_threshold` familiar when its
    /// probability reaches this...
    pub detector_threshold: f32,
    /// ...and on a less familiar photo when it reaches `detector_threshold + unfamiliar_weight x
    /// (familiar_threshold - familiarity)`.
    pub unfamiliar_weight: f32,
    /// The classes that back a concept do when their summed probability reaches this.
    pub class_threshold: f32,
    /// A photo less familiar than this (`familiar.rs`) with no person or dog backed is not the
    /// decoder's to describe: its caption is composed of backed words alone ("a photo of a
    /// goldfish in the water").
    pub familiar_threshold: f32,
}

impl Default for EvidenceOptions {
    fn default() -> Self {
        EvidenceOptions {
            detector_threshold: 0.2,
            unfamiliar_weight: 8.0,
            class_threshold: 0.3,
            familiar_threshold: 0.65,
        }
    }
}

/// One photo's evidence for every concept.
#[derive(Clone, Debug, PartialEq)]
pub struct Evidence {
    pub supports: Vec<Support>,
    /// Whether the photo is at least `familiar_threshold` familiar.
    pub familiar: bool,
}

impl Evidence {
    /// The evidence from the detectors' probabilities (one per concept), the class probabilities
    /// (empty when the encoder has no classifier) and the photo's familiarity.
    pub fn weigh(
        detected: &[f32],
        class_probabilities: &[f32],
        familiarity: f32,
        options: &EvidenceOptions,
    ) -> Evidence {
        let need = options.detector_threshold
            + options.unfamiliar_weight * (options.familiar_threshold - familiarity).max(0.0);
        let mut supports: Vec<Support> = CONCEPTS
            .iter()
            .zip(backing_classes())
            .zip(detected)
            .map(|((&concept, classes), &detector)| {
                let classifier: f32 = classes
                    .iter()
                    .filter_map(|&i| class_probabilities.get(i))
                    .sum();
                let backed = if classifier >= options.class_threshold {
                    Some(Source::Classifier)
                } else if detector >= need {
                    Some(Source::Detector)
                } else {
                    None
                };
                Support {
                    concept,
                    detector,
                    classifier,
                    backed,
                }
            })
            .collect();
        // A garment needs a wearer.
        let person = supports
            .iter()
            .any(|s| s.concept == Concept::Person && s.backed.is_some());
        for support in &mut supports {
            if support.concept == Concept::Clothing && !person {
                support.backed = None;
            }
        }
        Evidence {
            supports,
            familiar: familiarity >= options.familiar_threshold,
        }
    }

    /// `{concept: {"detector", "classifier", "backed": source or null}}` with four decimals.
    pub fn to_json(&self) -> serde_json::Value {
        let round = |v: f32| (f64::from(v) * 1e4).round() / 1e4;
        let map: serde_json::Map<String, serde_json::Value> = self
            .supports
            .iter()
            .map(|s| {
                let value = serde_json::json!({
                    "detector": round(s.detector),
                    "classifier": round(s.classifier),
                    "backed": s.backed.map(Source::name),
                });
                (s.concept.name().to_owned(), value)
            })
            .collect();
        serde_json::Value::Object(map)
    }

    /// The backed setting with the strongest evidence: the classifier's before a detector's,
    /// then by probability, then in `CONCEPTS` order.
    pub fn strongest_setting(&self) -> Option<Concept> {
        let strength = |s: &Support| match s.backed {
            Some(Source::Classifier) => 1.0 + s.classifier,
            _ => s.detector,
        };
        self.supports
            .iter()
            .filter(|s| s.concept.is_setting() && s.backed.is_some())
            // The first of equals, in `CONCEPTS` order.
            .rev()
            .max_by(|a, b| strength(a).total_cmp(&strength(b)))
            .map(|s| s.concept)
    }

    /// Whether a person or a dog is backed: what the decoder's training captions are about.
    pub fn has_subject(&self) -> bool {
        [Concept::Person, Concept::Dog]
            .iter()
            .any(|&c| self.support(c).backed.is_some())
    }

    /// Whether the decoder may describe the photo (with the unbacked words masked): it is familiar
    /// enough, or it shows a person or a dog. Otherwise its caption is composed of backed words.
    pub fn leaves_it_to_the_decoder(&self) -> bool {
        self.familiar || self.has_subject()
    }

    pub fn support(&self, concept: Concept) -> &Support {
        // `weigh` makes one support per concept, in `CONCEPTS` order.
        &self.supports[CONCEPTS.iter().position(|&c| c == concept).unwrap_or(0)]
    }

    /// The ids of every word of an unbacked concept that the vocabulary holds, but `keep`
    /// (the words a caption is made to say: the grounded class's).
    pub fn masked(&self, vocab: &Vocabulary, keep: &[&str]) -> Vec<u32> {
        let mut ids: Vec<u32> = self
            .supports
            .iter()
            .filter(|s| s.backed.is_none())
            .flat_map(|s| s.concept.words())
            .filter(|w| !keep.contains(w))
            .map(|w| vocab.id(w))
            .filter(|&id| id != UNK_ID)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }
}

/// The concept detectors: `[concepts, dim]` weights over the pooled feature and a bias each.
#[derive(Clone, Debug, PartialEq)]
pub struct Detectors {
    weights: Vec<f32>,
    bias: Vec<f32>,
    dim: usize,
}

/// Full-batch gradient steps of the logistic regressions, their rate and the L2 weight (on the
/// standardised feature): enough for the loss to settle on Flickr8k (docs/RESULTS.md).
const STEPS: usize = 300;
const RATE: f32 = 0.05;
const L2: f32 = 1e-3;

impl Detectors {
    /// One logistic regression per concept over `rows` (pooled features, `dim` each), each row's
    /// target the share of its captions (`captions[i]`, tokens) that hold a word of the concept.
    /// Features are standardised for the fit and the scaling folded into the weights. Adam, full
    /// batch, from zero: the same data give the same file.
    pub fn fit(rows: &[&[f32]], captions: &[Vec<Vec<&str>>], dim: usize) -> Result<Self> {
        if rows.is_empty() || rows.len() != captions.len() {
            bail!("no training photos with captions to learn the concept detectors from");
        }
        crate::familiar::check_widths(rows, dim)?;
        let n = rows.len();
        let k = CONCEPTS.len();
        let words: Vec<std::collections::HashSet<&str>> =
            CONCEPTS.iter().map(|c| c.words().collect()).collect();
        let targets: Vec<f32> = captions
            .iter()
            .flat_map(|photo| {
                words.iter().map(move |words| {
                    let said = photo
                        .iter()
                        .filter(|c| c.iter().any(|w| words.contains(w)))
                        .count();
                    said as f32 / photo.len().max(1) as f32
                })
            })
            .collect();
        let (mean, scale) = standardise(rows, dim);
        let x: Vec<f32> = rows
            .iter()
            .flat_map(|r| {
                let (mean, scale) = (&mean, &scale);
                (0..dim).map(move |j| (r[j] - mean[j]) * scale[j])
            })
            .collect();
        let mut w = vec![0.0f32; k * dim];
        let mut b = vec![0.0f32; k];
        let (mut m, mut v) = (vec![0.0f32; k * dim + k], vec![0.0f32; k * dim + k]);
        let mut logits = vec![0.0f32; n * k];
        let mut grad_w = vec![0.0f32; k * dim];
        for step in 1..=STEPS {
            // logits [n, k] = x [n, dim] . w^T
            let threads = crate::engine::threads();
            matmul(
                n,
                k,
                dim,
                1.0,
                &x,
                Transpose::No,
                &w,
                Transpose::Yes,
                0.0,
                &mut logits,
                threads,
            );
            let mut error = vec![0.0f32; n * k];
            for (i, e) in error.iter_mut().enumerate() {
                let p = 1.0 / (1.0 + (-(logits[i] + b[i % k])).exp());
                *e = (p - targets[i]) / n as f32;
            }
            // grad_w [k, dim] = error^T . x
            matmul(
                k,
                dim,
                n,
                1.0,
                &error,
                Transpose::Yes,
                &x,
                Transpose::No,
                0.0,
                &mut grad_w,
                threads,
            );
            let grad_b: Vec<f32> = (0..k)
                .map(|c| error.iter().skip(c).step_by(k).sum())
                .collect();
            let grads: Vec<f32> = grad_w
                .iter()
                .zip(&w)
                .map(|(g, w)| g + L2 * w)
                .chain(grad_b)
                .collect();
            let correction =
                (1.0 - 0.999f32.powi(step as i32)).sqrt() / (1.0 - 0.9f32.powi(step as i32));
            let params = w.iter_mut().chain(b.iter_mut());
            for (((p, g), m), v) in params.zip(grads).zip(&mut m).zip(&mut v) {
                *m = 0.9 * *m + 0.1 * g;
                *v = 0.999 * *v + 0.001 * g * g;
                *p -= RATE * correction * *m / (v.sqrt() + 1e-8);
            }
        }
        // Fold the standardisation in: w . ((x - mean) * scale) = (w * scale) . x - (w * scale) . mean.
        for c in 0..k {
            let row = &mut w[c * dim..][..dim];
            let mut shift = 0.0f32;
            for j in 0..dim {
                row[j] *= scale[j];
                shift += row[j] * mean[j];
            }
            b[c] -= shift;
        }
        Ok(Detectors {
            weights: w,
            bias: b,
            dim,
        })
    }

    /// Each concept's probability for a photo's pooled feature, in `CONCEPTS` order.
    pub fn detect(&self, pooled: &[f32]) -> Result<Vec<f32>> {
        if pooled.len() != self.dim {
            bail!(
                "a pooled feature of {} values, but the model's concept detectors read {}",
                pooled.len(),
                self.dim
            );
        }
        Ok(self
            .weights
            .chunks_exact(self.dim)
            .zip(&self.bias)
            .map(|(w, b)| {
                let z: f32 = w.iter().zip(pooled).map(|(a, x)| a * x).sum::<f32>() + b;
                1.0 / (1.0 + (-z).exp())
            })
            .collect())
    }

    /// The file's bytes: `weights` [concepts, dim] and `bias` [concepts], f32, and the concepts'
    /// names in the metadata (a file for other concepts is refused).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let as_bytes = |v: &[f32]| -> Vec<u8> { v.iter().flat_map(|x| x.to_le_bytes()).collect() };
        let (weights, bias) = (as_bytes(&self.weights), as_bytes(&self.bias));
        let k = self.bias.len();
        let tensors = [
            (
                "weights",
                TensorView::new(safetensors::Dtype::F32, vec![k, self.dim], &weights)?,
            ),
            (
                "bias",
                TensorView::new(safetensors::Dtype::F32, vec![k], &bias)?,
            ),
        ];
        let metadata = HashMap::from([("concepts".to_owned(), concept_names())]);
        safetensors_bytes(tensors, metadata)
    }

    pub fn from_bytes(bytes: &[u8], source: &Path) -> Result<Self> {
        let (_, metadata) = safetensors::SafeTensors::read_metadata(bytes)
            .with_context(|| format!("cannot read {}", source.display()))?;
        let names = metadata.metadata().as_ref().and_then(|m| m.get("concepts"));
        if names.map(String::as_str) != Some(concept_names().as_str()) {
            bail!(
                "{}: detectors for concepts {:?}, but this version checks {}: rewrite it with `captioner familiar`",
                source.display(),
                names.map(String::as_str).unwrap_or("(none)"),
                concept_names()
            );
        }
        let tensors =
            read_safetensors(bytes).with_context(|| format!("cannot read {}", source.display()))?;
        let get = |name: &str| {
            tensors
                .get(name)
                .with_context(|| format!("{}: no tensor {name}", source.display()))
        };
        let (weights, bias) = (get("weights")?, get("bias")?);
        let k = CONCEPTS.len();
        match (&weights.shape[..], &bias.shape[..]) {
            ([rows, dim], [b]) if *rows == k && *b == k && *dim > 0 => Ok(Detectors {
                weights: weights.data.clone(),
                bias: bias.data.clone(),
                dim: *dim,
            }),
            _ => bail!(
                "{}: weights {:?} and bias {:?}, not [{k}, dim] and [{k}]",
                source.display(),
                weights.shape,
                bias.shape
            ),
        }
    }

    pub fn save(&self, dir: &Path) -> Result<()> {
        write_atomic(&dir.join(FILE), &self.to_bytes()?)
    }
}

/// The ids of the settings' words that the vocabulary holds: a caption names each at most once.
pub fn setting_words(vocab: &Vocabulary) -> Vec<u32> {
    CONCEPTS
        .iter()
        .filter(|c| c.is_setting())
        .flat_map(|c| c.words())
        .map(|w| vocab.id(w))
        .filter(|&id| id != UNK_ID)
        .collect()
}

fn concept_names() -> String {
    CONCEPTS.map(Concept::name).join(",")
}

/// Each feature's mean and 1 / standard deviation over `rows` (1 where it does not vary).
fn standardise(rows: &[&[f32]], dim: usize) -> (Vec<f32>, Vec<f32>) {
    let n = rows.len() as f64;
    let mut mean = vec![0.0f64; dim];
    let mut square = vec![0.0f64; dim];
    for row in rows {
        for j in 0..dim {
            mean[j] += f64::from(row[j]);
            square[j] += f64::from(row[j]).powi(2);
        }
    }
    let scale = (0..dim)
        .map(|j| {
            let m = mean[j] / n;
            let variance = square[j] / n - m * m;
            if variance > 1e-12 {
                (1.0 / variance.sqrt()) as f32
            } else {
                1.0
            }
        })
        .collect();
    (mean.iter().map(|m| (m / n) as f32).collect(), scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> EvidenceOptions {
        EvidenceOptions {
            detector_threshold: 0.5,
            unfamiliar_weight: 2.0,
            class_threshold: 0.3,
            familiar_threshold: 0.6,
        }
    }

    fn class(name: &str) -> usize {
        class_words().iter().position(|c| c.name == name).unwrap()
    }

    #[test]
    fn the_classifier_or_a_believed_detector_backs_a_concept() {
        let mut detected = vec![0.0; CONCEPTS.len()];
        detected[0] = 0.75; // person
        detected[4] = 0.55; // water
        let mut probabilities = vec![0.0; 1000];
        probabilities[class("beagle")] = 0.2;
        probabilities[class("basset")] = 0.2;
        probabilities[class("seashore")] = 0.5;
        // Familiar: the detectors are believed at their threshold.
        let familiar = Evidence::weigh(&detected, &probabilities, 0.7, &options());
        let backed = |e: &Evidence, c: Concept| e.support(c).backed;
        assert_eq!(backed(&familiar, Concept::Person), Some(Source::Detector));
        assert_eq!(backed(&familiar, Concept::Dog), Some(Source::Classifier));
        assert_eq!(backed(&familiar, Concept::Sand), Some(Source::Classifier));
        assert_eq!(backed(&familiar, Concept::Water), Some(Source::Classifier));
        assert_eq!(backed(&familiar, Concept::Snow), None);
        assert_eq!(familiar.strongest_setting(), Some(Concept::Water));
        // 0.1 less familiar than the threshold: a detector needs 0.5 + 2 x 0.1.
        let strange = Evidence::weigh(&detected, &[], 0.5, &options());
        assert_eq!(backed(&strange, Concept::Person), Some(Source::Detector));
        assert_eq!(backed(&strange, Concept::Water), None);
        assert!(strange.has_subject());
        let stranger = Evidence::weigh(&detected, &[], 0.45, &options());
        assert_eq!(backed(&stranger, Concept::Person), None);
        assert!(!stranger.has_subject());
        // A garment needs a wearer.
        detected[2] = 0.9;
        let worn = Evidence::weigh(&detected, &[], 0.7, &options());
        assert_eq!(backed(&worn, Concept::Clothing), Some(Source::Detector));
        let unworn = Evidence::weigh(&detected, &[], 0.4, &options());
        assert_eq!(backed(&unworn, Concept::Clothing), None);
    }

    #[test]
    fn the_masked_words_are_the_unbacked_concepts_but_those_kept() {
        let words = ["a", "man", "dog", "in", "water", "shirt", "ball"];
        let caption: Vec<String> = words.iter().map(|w| w.to_string()).collect();
        let vocab = Vocabulary::build([caption.as_slice()], 1);
        let mut detected = vec![0.0; CONCEPTS.len()];
        detected[0] = 0.9; // person
        let evidence = Evidence::weigh(&detected, &[], 0.7, &options());
        let masked: Vec<&str> = evidence
            .masked(&vocab, &["ball"])
            .iter()
            .filter_map(|&id| vocab.token(id))
            .collect();
        let mut masked = masked;
        masked.sort_unstable();
        assert_eq!(masked, ["dog", "shirt", "water"]);
    }

    #[test]
    fn detectors_learn_a_concept_and_survive_their_file() {
        // Photo features: the first value high where the captions mention a dog.
        let rows: Vec<Vec<f32>> = (0..40)
            .map(|i| vec![if i % 2 == 0 { 3.0 } else { -1.0 }, (i % 7) as f32])
            .collect();
        let captions: Vec<Vec<Vec<&str>>> = (0..40)
            .map(|i| {
                let caption = if i % 2 == 0 {
                    vec!["a", "dog", "runs"]
                } else {
                    vec!["a", "cat", "sleeps"]
                };
                vec![caption; 5]
            })
            .collect();
        let refs: Vec<&[f32]> = rows.iter().map(Vec::as_slice).collect();
        let detectors = Detectors::fit(&refs, &captions, 2).unwrap();
        let dog = CONCEPTS.iter().position(|&c| c == Concept::Dog).unwrap();
        assert!(detectors.detect(&[3.0, 1.0]).unwrap()[dog] > 0.9);
        assert!(detectors.detect(&[-1.0, 1.0]).unwrap()[dog] < 0.1);
        let bytes = detectors.to_bytes().unwrap();
        let back = Detectors::from_bytes(&bytes, Path::new("m/concepts.safetensors")).unwrap();
        assert_eq!(back, detectors);
        assert!(back.detect(&[1.0]).is_err(), "a feature of the wrong size");
        assert!(Detectors::from_bytes(b"junk", Path::new("c")).is_err());
        // A file for other concepts is refused, with what to do.
        let other = safetensors_bytes(
            [(
                "bias",
                TensorView::new(safetensors::Dtype::F32, vec![1], &[0u8; 4]).unwrap(),
            )],
            HashMap::from([("concepts".to_owned(), "cat".to_owned())]),
        )
        .unwrap();
        let error = Detectors::from_bytes(&other, Path::new("m/concepts.safetensors"));
        assert!(format!("{:#}", error.unwrap_err()).contains("captioner familiar"));
    }

    #[test]
    fn every_concept_word_names_one_concept() {
        for concept in CONCEPTS {
            for word in concept.words() {
                assert_eq!(Concept::of_word(word), Some(concept), "{word}");
            }
            if concept.is_setting() {
                assert!(!concept.phrase().is_empty());
            }
        }
        // Every concept the classifier speaks for has classes behind it.
        for (concept, classes) in CONCEPTS.iter().zip(backing_classes()) {
            assert_eq!(
                classes.is_empty(),
                concept.class_names().next().is_none(),
                "{concept:?}"
            );
        }
    }
}
