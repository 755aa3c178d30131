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
//! `detectors.rs` fits and reads the detectors.
//!
//! A concept without support is masked: no search may emit any of its words. The words a caption
//! keeps are reported with where their support came from.

use crate::text::class_words::class_words;
use crate::text::{Vocabulary, UNK_ID};

mod detectors;
pub use detectors::Detectors;

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
            detector_threshold: 0.08,
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
