//! Naming what the encoder recognises. Flickr8k's decoder knows people, dogs and beaches; the
//! encoder's ImageNet classifier knows 1,000 things. When the classifier is confident, the caption
//! must say what it saw:
//!
//! 1. the class's nearest word in the decoder's vocabulary (what people call it, its name, or its
//!    nearest hypernym: "great grey owl" -> "bird") is required by constrained beam search
//!    (Anderson et al. 2017), so the decoder writes the sentence around it;
//! 2. when the class itself is confident, its name then takes that word's place (the slot filling
//!    of Neural Baby Talk, Lu et al. 2018) with article and number made to agree: "a bird" -> "an
//!    owl", "two birds" -> "two owls".
//!
//! Only a photo unlike the decoder's training photos is grounded (`familiar.rs`): on a Flickr8k
//! photo the classifier's top class is often a thing in the scene (a tricycle, a cliff) that the
//! references do not talk about, and the decoder's own caption is the better one.
//!
//! A class whose nearest word is a vague one ("instrument" for an hourglass) borrows that word's
//! place in the sentence, as Deep Compositional Captioning lends a new object the output of its
//! nearest known word, and is always named by filling. When no single class is confident, the
//! nearest specific word that the probable classes share is required alone ("dog" for a photo the
//! classifier splits between three breeds).

use crate::evidence::{Evidence, EvidenceOptions};
use crate::generate::{
    search_avoiding, search_constrained, search_many, Avoid, Beside, Constraint, Generated,
    SearchOptions, SearchRequest,
};
use crate::model::Model;
use crate::text::class_words::{class_words, Word};
use crate::text::{Vocabulary, UNK_ID};
use anyhow::Result;
use std::sync::atomic::{AtomicBool, Ordering};

/// Confidence thresholds, tuned on `imagenet-sample` and Flickr8k's dev split (docs/RESULTS.md).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GroundOptions {
    /// The decoder's words for the most probable class are required when its probability reaches
    /// this.
    pub class_threshold: f32,
    /// Its own name (when the decoder has no word for it) takes the place of a word that already
    /// names it ("owl" for "bird") when its probability reaches this; a vague word ("animal" for a
    /// snail) always gives way to the name.
    pub name_threshold: f32,
    /// Otherwise a word shared by its probable classes is required when their summed probability
    /// reaches this.
    pub word_threshold: f32,
    /// A photo is grounded when `need` (the top class's probability plus `NOVELTY_WEIGHT` x how
    /// unlike the model's training photos it is, 1 - its familiarity) reaches this: the classifier
    /// is sure and the photo is not one of the scenes the decoder learnt to describe.
    pub need_threshold: f32,
    /// The grounded caption is searched with this many hypotheses per constraint group (or the
    /// caption's own beam when wider): a word made to fit into a sentence needs more candidates
    /// than a free sentence to find one that carries it well.
    pub beam: usize,
    /// What a caption may say without evidence (`evidence.rs`); `None`: anything the decoder says.
    pub evidence: Option<EvidenceOptions>,
}

impl Default for GroundOptions {
    fn default() -> Self {
        GroundOptions {
            class_threshold: 0.3,
            // A wrong breed or species costs more than the right kind gains: Flickr8k's people
            // say "dog" and "bird" (docs/RESULTS.md).
            name_threshold: 0.9,
            word_threshold: 0.3,
            need_threshold: 2.4,
            beam: 4,
            evidence: Some(EvidenceOptions::default()),
        }
    }
}

/// The weight of a photo's novelty in `need`, fitted with `need_threshold` on the tuning sets
/// (docs/RESULTS.md).
pub const NOVELTY_WEIGHT: f64 = 5.0;

/// How much a photo needs grounding (see `GroundOptions::need_threshold`), from the top class's
/// probability and the photo's familiarity to the model (`familiar.rs`).
pub fn need(class_probability: f32, familiarity: f32) -> f64 {
    f64::from(class_probability) + NOVELTY_WEIGHT * (1.0 - f64::from(familiarity))
}

/// Words too vague to name what is in a photo on their own (WordNet's upper categories, and the
/// kinds of thing a Flickr8k caption names more precisely: "clothing", "vehicle"); a confident class
/// may still borrow their place in a sentence.
const VAGUE: [&str; 42] = [
    "entity",
    "object",
    "whole",
    "thing",
    "artifact",
    "organism",
    "animal",
    "creature",
    "being",
    "person",
    "individual",
    "device",
    "structure",
    "construction",
    "equipment",
    "instrument",
    "instrumentality",
    "covering",
    "container",
    "matter",
    "substance",
    "material",
    "item",
    "part",
    "unit",
    "commodity",
    "article",
    "implement",
    "vehicle",
    "conveyance",
    "clothing",
    "garment",
    "attire",
    "wear",
    "apparel",
    "furniture",
    "furnishing",
    "food",
    "solid",
    "formation",
    "region",
    "area",
];

/// The words a required noun may follow, besides the articles and numbers of its number (`ONE`,
/// `MANY`): "the", possessives and the adjectives of colour, size and age that Flickr8k's captions
/// put before their nouns (`ADJECTIVES`). A weak language model made to say "insect" otherwise
/// puts it where a verb goes ("a man insect on a ramp").
const EITHER_NUMBER: [&str; 5] = ["the", "his", "her", "their", "its"];
const ADJECTIVES: [&str; 21] = [
    "small", "large", "big", "little", "young", "old", "baby", "white", "black", "brown", "red",
    "blue", "green", "yellow", "pink", "orange", "purple", "gray", "grey", "tan", "wet",
];

/// What a caption is made to say about a photo.
#[derive(Clone, Debug, PartialEq)]
pub struct Grounding {
    /// The most probable ImageNet class and its probability.
    pub class: usize,
    pub probability: f32,
    /// How probable the classifier finds what the caption's word names: the class's probability
    /// when the word is the class's own, else the summed probability of the classes under the word
    /// ("bird" for an owl the classifier also half takes for a hawk).
    pub support: f32,
    /// Words the decoder knows for it, nearest first ("retriever", "dog"): the caption must hold
    /// one of them (or its plural).
    pub words: Vec<Word>,
    /// A confident class's name when the decoder has no word for it: it takes the place of the
    /// word the caption holds.
    pub name: Option<Word>,
}

impl Grounding {
    /// The grounding for a photo's class probabilities, or `None` when nothing is confident enough
    /// or the vocabulary has no word for it.
    pub fn choose(
        probabilities: &[f32],
        vocab: &Vocabulary,
        options: &GroundOptions,
    ) -> Option<Grounding> {
        let table = class_words();
        let (class, &probability) = probabilities
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))?;
        let class_words = table.get(class)?;
        // People are what the decoder knows best; ImageNet's few person classes (a ballplayer, a
        // groom, a scuba diver) are read from people it already describes.
        if class_words.words_up().any(|w| w.singular == "person") {
            return None;
        }
        let known = |word: &str| !word.contains(' ') && vocab.id(word) != UNK_ID;
        // The words the decoder knows for the class, up to the first vague one.
        let specific: Vec<Word> = class_words
            .words_up()
            .filter(|w| known(w.singular))
            .take_while(|w| !VAGUE.contains(&w.singular))
            .collect();
        if probability >= options.class_threshold {
            let name = Word {
                singular: class_words.short,
                plural: class_words.short_plural,
                article: class_words.short_article,
            };
            let nameable = !known(name.singular) && !VAGUE.contains(&name.singular);
            let (words, name) = if specific.is_empty() {
                // Only a vague word: the name must take its place.
                if !nameable {
                    return None;
                }
                (vec![class_words.in_vocabulary(vocab)?], Some(name))
            } else {
                // A word that already names it ("bird"): the finer name only when the class is
                // sure, since a wrong breed or species is worse than the right kind.
                let sure = probability >= options.name_threshold;
                (specific, Some(name).filter(|_| nameable && sure))
            };
            return Some(Grounding {
                class,
                probability,
                support: probability,
                words,
                name,
            });
        }
        let shared = |word: &str| shared_probability(probabilities, word);
        let first = specific
            .iter()
            .position(|w| shared(w.singular) >= options.word_threshold)?;
        Some(Grounding {
            class,
            probability,
            support: shared(specific[first].singular),
            words: specific[first..].to_vec(),
            name: None,
        })
    }

    /// The constraint for the search: one of the words, singular or plural, where a noun of its
    /// number goes ("a dog", "two dogs", never "a dogs": the sentence goes on in that number).
    pub fn constraint(&self, model: &Model) -> Result<Constraint> {
        let forms: Vec<&str> = self
            .words
            .iter()
            .flat_map(|w| [w.singular, w.plural])
            .filter(|w| model.vocab.id(w) != UNK_ID)
            .collect();
        let any = [&EITHER_NUMBER[..], &ADJECTIVES[..]].concat();
        let singular = [&any[..], &ONE[..]].concat();
        let plural = [&any[..], &MANY[..]].concat();
        let either = [&singular[..], &MANY[..]].concat();
        let before = |form: &str| -> &[&str] {
            let is_singular = self.words.iter().any(|w| w.singular == form);
            let is_plural = self.words.iter().any(|w| w.plural == form);
            match (is_singular, is_plural) {
                (true, false) => &singular,
                (false, true) => &plural,
                _ => &either,
            }
        };
        Ok(Constraint::new(model, &forms)?.after(model, before))
    }

    /// Where a caption holds one of the words first: its position, the word, and whether it is
    /// the plural.
    pub fn held(&self, words: &[&str]) -> Option<(usize, Word, bool)> {
        words.iter().enumerate().find_map(|(at, token)| {
            self.words.iter().find_map(|w| {
                if *token == w.singular {
                    Some((at, *w, false))
                } else if *token == w.plural {
                    Some((at, *w, true))
                } else {
                    None
                }
            })
        })
    }

    /// A caption's words with the class's name (when it has one) in the held word's place, one
    /// entry per word (a name may be two words: "sea lion"), its number agreeing with the word
    /// before it ("two owls", "an owl") and an article before it agreeing with it.
    pub fn fill(&self, words: &[&str]) -> Vec<String> {
        let mut out: Vec<String> = words.iter().map(|w| w.to_string()).collect();
        let Some((at, held, plural)) = self.held(words) else {
            return out;
        };
        let before = |back: usize| at.checked_sub(back).map(|b| words[b]);
        // The number is the determiner's, found back over the adjectives ("a white and brown").
        let adjectives = words[..at]
            .iter()
            .rev()
            .take_while(|w| **w == "and" || ADJECTIVES.contains(w))
            .count();
        let plural = match (before(adjectives + 2), before(adjectives + 1)) {
            (_, Some(w)) if MANY.contains(&w) => true,
            (Some(group), Some("of")) if GROUPS.contains(&group) => true,
            (_, Some(w)) if ONE.contains(&w) => false,
            _ => plural,
        };
        let word = self.name.unwrap_or(held);
        out[at] = if plural { word.plural } else { word.singular }.to_owned();
        if matches!(before(1), Some("a" | "an")) {
            out[at - 1] = word.article.to_owned();
        }
        // The verb right after the noun agrees with it: the decoder wrote it for the word it was
        // made to say, and a rare word's number is what it knows least ("a snake are playing").
        // Not after a coordination: "a man and a dog are" has a plural subject.
        let coordinated = before(adjectives + 2) == Some("and");
        if let Some(next) = out.get_mut(at + 1).filter(|_| !coordinated) {
            if let Some(&(one, many)) = AGREEING_VERBS
                .iter()
                .find(|(one, many)| next == one || next == many)
            {
                *next = if plural { many } else { one }.to_owned();
            }
        }
        out
    }
}

/// Verbs that change with their subject's number: (singular, plural).
const AGREEING_VERBS: [(&str, &str); 3] = [("is", "are"), ("was", "were"), ("has", "have")];

/// Words before a noun that make it plural ("two", "a group of"), or singular.
const MANY: [&str; 10] = [
    "two", "three", "four", "five", "six", "several", "many", "some", "these", "those",
];
const GROUPS: [&str; 9] = [
    "group", "herd", "flock", "pack", "pair", "couple", "crowd", "team", "bunch",
];
const ONE: [&str; 6] = ["a", "an", "one", "this", "that", "another"];

/// What the encoder saw in a photo besides the decoder's input.
#[derive(Clone, Copy, Debug, Default)]
pub struct Seen<'a> {
    /// The ImageNet class probabilities (empty without a classifier).
    pub probabilities: &'a [f32],
    /// How like the model's training photos it is; `None` for a model that does not know them.
    pub familiarity: Option<f32>,
    /// What it backs; `None` leaves every word to the decoder.
    pub evidence: Option<&'a Evidence>,
}

/// What a photo backs (`evidence.rs`), when `ground` asks for evidence and the model has its
/// concept detectors and familiar photos.
pub fn evidence(
    model: &Model,
    ground: Option<&GroundOptions>,
    pooled: &[f32],
    probabilities: &[f32],
    familiarity: Option<f32>,
) -> Result<Option<Evidence>> {
    let options = ground.and_then(|g| g.evidence);
    match (options, &model.concepts, familiarity) {
        (Some(options), Some(detectors), Some(familiarity)) => Ok(Some(Evidence::weigh(
            &detectors.detect(pooled)?,
            probabilities,
            familiarity,
            &options,
        ))),
        _ => Ok(None),
    }
}

/// A caption and what grounded it.
pub struct GroundedCaption {
    pub generated: Generated,
    /// One entry per generated token, with the grounded class named ("an", "owl").
    pub words: Vec<String>,
    /// The grounding the caption holds and the word of it that the caption holds; `None` when
    /// there was none or no caption within the maximum length could hold it.
    pub grounding: Option<(Grounding, Word)>,
    /// Composed from the evidence alone (`compose`), not written by the decoder:
    /// `generated` is then empty.
    pub composed: bool,
}

/// The decoder's plain caption when grounding is off, nothing is confident enough, the photo does
/// not need it (see `GroundOptions::need_threshold`; `familiarity` is `None` for a model that
/// does not know its training photos, which is then never grounded), or the caption already holds
/// one of the grounded words; else the best caption that holds one (constrained beam search), or
/// the plain one when none within the maximum length can. A novel name is then filled in.
///
/// With `seen.evidence`, no search emits a word of a concept the photo does not back, and a photo
/// below the evidence's familiarity threshold with no person or dog backed is not searched at
/// all: its caption is composed of backed words (`compose`).
///
/// With `beside`, the constrained search of a photo that needs grounding runs on a second thread
/// beside the plain search, before it is known whether the plain caption holds the word, and takes
/// both threads once the plain search is done (or stops, when the plain caption holds the word):
/// one photo's latency instead of a batch's throughput.
pub fn caption(
    model: &Model,
    input: &[f32],
    search_options: &SearchOptions,
    ground: Option<&GroundOptions>,
    seen: &Seen,
    beside: bool,
) -> Result<GroundedCaption> {
    let plan = match plan(model, search_options, ground, seen)? {
        Plan::Composed(caption) => return Ok(caption),
        Plan::Search(plan) => plan,
    };
    let (plain, constrained) = match &plan.grounded {
        Some((_, constraint, options)) => searches(
            model,
            input,
            search_options,
            options,
            constraint,
            &plan,
            beside,
        )?,
        None => (
            search_avoiding(model, input, search_options, plan.avoid()),
            None,
        ),
    };
    Ok(plan.finish(model, plain, constrained))
}

/// `caption` for many photos (`inputs[k]` seen as `seens[k]`), their searches stepped together
/// `batch` at a time (`generate::search_many`): first every photo's plain caption, then the
/// constrained captions of the photos whose plain caption lacks the grounded word. The captions
/// are `caption`'s. Single-threaded: callers give each thread its share of the photos.
pub fn caption_many(
    model: &Model,
    inputs: &[&[f32]],
    search_options: &SearchOptions,
    ground: Option<&GroundOptions>,
    seens: &[Seen],
    batch: usize,
) -> Vec<Result<GroundedCaption>> {
    let plans: Vec<Result<Plan>> = seens
        .iter()
        .map(|seen| plan(model, search_options, ground, seen))
        .collect();
    let searched: Vec<(usize, &SearchPlan)> = plans
        .iter()
        .enumerate()
        .filter_map(|(k, plan)| match plan {
            Ok(Plan::Search(plan)) => Some((k, plan)),
            _ => None,
        })
        .collect();
    let plain_requests: Vec<SearchRequest> = searched
        .iter()
        .map(|&(k, plan)| SearchRequest {
            input: k,
            options: *search_options,
            constraints: &[],
            avoid: plan.avoid(),
        })
        .collect();
    let plain = search_many(model, inputs, &plain_requests, batch);
    let plain: Vec<Generated> = plain.into_iter().map(Option::unwrap_or_default).collect();
    // The photos whose plain caption lacks the grounded word, and their constrained searches.
    let wanting: Vec<usize> = searched
        .iter()
        .zip(&plain)
        .enumerate()
        .filter(|(_, ((_, plan), plain))| plan.wants_constrained(model, plain))
        .map(|(j, _)| j)
        .collect();
    let constrained_requests: Vec<SearchRequest> = wanting
        .iter()
        .filter_map(|&j| {
            let (k, plan) = searched[j];
            let (_, constraint, options) = plan.grounded.as_ref()?;
            Some(SearchRequest {
                input: k,
                options: *options,
                constraints: std::slice::from_ref(constraint),
                avoid: plan.avoid(),
            })
        })
        .collect();
    let mut constrained = vec![None; searched.len()];
    for (j, generated) in
        wanting
            .into_iter()
            .zip(search_many(model, inputs, &constrained_requests, batch))
    {
        constrained[j] = generated;
    }
    let mut by_photo: Vec<Option<GroundedCaption>> = (0..plans.len()).map(|_| None).collect();
    for (((k, plan), plain), constrained) in searched.iter().zip(plain).zip(constrained) {
        by_photo[*k] = Some(plan.finish(model, plain, constrained));
    }
    plans
        .into_iter()
        .zip(by_photo)
        .map(|(plan, searched)| match (plan?, searched) {
            (Plan::Composed(caption), _) => Ok(caption),
            (Plan::Search(_), Some(caption)) => Ok(caption),
            (Plan::Search(_), None) => unreachable!("every searched photo's caption is finished"),
        })
        .collect()
}

/// What a photo's caption takes once its evidence is in.
enum Plan {
    /// Said from the evidence alone (`compose`).
    Composed(GroundedCaption),
    /// The decoder's searches.
    Search(SearchPlan),
}

/// A photo's searches: the words no search may emit (or may emit once), and the grounding with its
/// constraint and search options when the photo needs one.
struct SearchPlan {
    grounded: Option<(Grounding, Constraint, SearchOptions)>,
    masked: Vec<u32>,
    once: Vec<u32>,
}

fn plan(
    model: &Model,
    search_options: &SearchOptions,
    ground: Option<&GroundOptions>,
    seen: &Seen,
) -> Result<Plan> {
    // Held to evidence, a photo unlike the decoder's training photos with no person and no dog
    // backed is said in a few words that are all backed: what the classifier saw and where, not a
    // Flickr8k scene (people and dogs doing things) around it.
    if let (Some(evidence), Some(options)) = (seen.evidence, ground) {
        if !evidence.leaves_it_to_the_decoder() {
            return Ok(Plan::Composed(compose(
                seen.probabilities,
                evidence,
                options,
            )));
        }
    }
    let grounding = ground
        .zip(seen.familiarity)
        .and_then(|(options, familiarity)| {
            Grounding::choose(seen.probabilities, &model.vocab, options)
                .filter(|g| need(g.probability, familiarity) >= f64::from(options.need_threshold))
        });
    // The grounded class's words stay sayable: the classifier backs them.
    let keep: Vec<&str> = grounding
        .iter()
        .flat_map(|g| g.words.iter().flat_map(|w| [w.singular, w.plural]))
        .collect();
    let masked = match seen.evidence {
        Some(evidence) => evidence.masked(&model.vocab, &keep),
        None => Vec::new(),
    };
    let grounded = match (grounding, ground) {
        (Some(g), Some(options)) => {
            let constraint = g.constraint(model)?;
            // Searched `options.beam` wide, or the caption's beam when wider.
            let constrained_options = SearchOptions {
                beam: search_options.beam.max(options.beam),
                ..*search_options
            };
            Some((g, constraint, constrained_options))
        }
        _ => None,
    };
    Ok(Plan::Search(SearchPlan {
        grounded,
        masked,
        once: crate::evidence::setting_words(&model.vocab),
    }))
}

impl SearchPlan {
    fn avoid(&self) -> Avoid<'_> {
        Avoid {
            masked: &self.masked,
            once: &self.once,
        }
    }

    /// Whether the plain caption lacks the grounded word (then the constrained one is searched).
    fn wants_constrained(&self, model: &Model, plain: &Generated) -> bool {
        self.grounded.as_ref().is_some_and(|(g, _, _)| {
            g.held(&crate::generate::words(model, &plain.tokens))
                .is_none()
        })
    }

    /// The caption from the searches: the constrained one when there is one, the grounded class's
    /// name filled in.
    fn finish(
        &self,
        model: &Model,
        plain: Generated,
        constrained: Option<Generated>,
    ) -> GroundedCaption {
        let generated = constrained.unwrap_or(plain);
        let tokens = crate::generate::words(model, &generated.tokens);
        let grounding = self
            .grounded
            .as_ref()
            .and_then(|(g, _, _)| g.held(&tokens).map(|(_, word, _)| (g.clone(), word)));
        let words = match &grounding {
            Some((g, _)) => g.fill(&tokens),
            None => tokens.iter().map(|w| w.to_string()).collect(),
        };
        GroundedCaption {
            generated,
            words,
            grounding,
            composed: false,
        }
    }
}

/// The summed probability of the classes that a word names ("dog": every breed).
fn shared_probability(probabilities: &[f32], word: &str) -> f32 {
    class_words()
        .iter()
        .zip(probabilities)
        .filter(|(other, _)| other.words_up().any(|w| w.singular == word))
        .map(|(_, &p)| p)
        .sum()
}

/// Words too general to say what a photo shows even in a short caption ("a photo of an
/// object"), or that only WordNet says ("instrumentality": a means to an end).
const EMPTY: [&str; 11] = [
    "entity",
    "instrumentality",
    "instrumentation",
    "physical entity",
    "object",
    "whole",
    "thing",
    "artifact",
    "organism",
    "living thing",
    "matter",
];

/// A short caption of backed words only: "a photo of a goldfish in the water". The top class by
/// its name when the classifier is sure of it, by what people call it ("owl", "fish") when it is
/// fairly sure, else the nearest word of its chain that the probable classes share ("a bird", "an
/// animal"); then the setting with the strongest evidence, if one is backed. With neither: "a
/// photo".
fn compose(probabilities: &[f32], evidence: &Evidence, options: &GroundOptions) -> GroundedCaption {
    let table = class_words();
    let top = probabilities
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .and_then(|(class, &p)| Some((table.get(class)?, class, p)));
    let shared = |word: &str| shared_probability(probabilities, word);
    let subject = top.and_then(|(class_words, class, probability)| {
        let name = Word {
            singular: class_words.name,
            plural: class_words.name_plural,
            article: class_words.name_article,
        };
        let (word, support) = if probability >= options.name_threshold {
            Some((name, probability))
        } else if probability >= options.class_threshold {
            class_words.words_up().next().map(|w| (w, probability))
        } else {
            class_words
                .words_up()
                .take_while(|w| !EMPTY.contains(&w.singular))
                .map(|w| (w, shared(w.singular)))
                .find(|&(_, p)| p >= options.word_threshold)
        }?;
        let grounding = Grounding {
            class,
            probability,
            support,
            words: vec![word],
            name: None,
        };
        Some((grounding, word))
    });
    let mut words: Vec<String> = vec!["a".into(), "photo".into()];
    if let Some((_, word)) = &subject {
        words.extend(["of", word.article, word.singular].map(str::to_owned));
    }
    if let Some(setting) = evidence.strongest_setting() {
        words.extend(setting.phrase().split(' ').map(str::to_owned));
    }
    GroundedCaption {
        generated: Generated::default(),
        words,
        grounding: subject,
        composed: true,
    }
}

/// The plain caption, and the constrained one (`constrained_options`) when the plain caption does
/// not hold a word of the grounding (see `caption` for `beside`).
fn searches(
    model: &Model,
    input: &[f32],
    search_options: &SearchOptions,
    constrained_options: &SearchOptions,
    constraint: &Constraint,
    plan: &SearchPlan,
    beside: bool,
) -> Result<(Generated, Option<Generated>)> {
    // Set once the plain caption is known to hold the word: the constrained search, beside the
    // plain one or after it, then stops at its next step.
    let not_needed = AtomicBool::new(false);
    let plain = || {
        let plain = search_avoiding(model, input, search_options, plan.avoid());
        not_needed.store(!plan.wants_constrained(model, &plain), Ordering::Relaxed);
        plain
    };
    let constrained = || {
        let beside = Beside {
            split_steps: beside,
            cancel: Some(&not_needed),
        };
        let constraints = std::slice::from_ref(constraint);
        search_constrained(
            model,
            input,
            constrained_options,
            constraints,
            beside,
            plan.avoid(),
        )
    };
    let (plain, constrained) = if beside {
        rayon::join(plain, constrained)
    } else {
        let plain = plain();
        (plain, constrained())
    };
    let constrained = if not_needed.into_inner() {
        None
    } else {
        constrained?
    };
    Ok((plain, constrained))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(singular: &'static str, plural: &'static str, article: &'static str) -> Word {
        Word {
            singular,
            plural,
            article,
        }
    }

    fn grounding(held: Word, name: Option<Word>) -> Grounding {
        Grounding {
            class: 0,
            probability: 0.9,
            support: 0.9,
            words: vec![held],
            name,
        }
    }

    #[test]
    fn the_name_takes_the_word_s_place_with_article_and_number_agreeing() {
        let owl = grounding(word("bird", "birds", "a"), Some(word("owl", "owls", "an")));
        let cases = [
            (
                "a bird is sitting on a branch",
                "an owl is sitting on a branch",
            ),
            (
                "two birds fly over the water",
                "two owls fly over the water",
            ),
            ("two bird fly over the water", "two owls fly over the water"),
            ("a group of bird", "a group of owls"),
            ("the bird looks at a man", "the owl looks at a man"),
            ("a man holds a bird", "a man holds an owl"),
            ("a man holds a birds", "a man holds an owl"),
            ("birds in a tree", "owls in a tree"),
            ("a bird and a bird", "an owl and a bird"),
            ("a dog runs", "a dog runs"),
            (
                "a bird are sitting on a branch",
                "an owl is sitting on a branch",
            ),
            ("two birds is flying", "two owls are flying"),
            ("a birds have a nest", "an owl has a nest"),
            ("a white and brown birds", "a white and brown owl"),
            ("two small bird sit", "two small owls sit"),
            (
                "a man and a bird are playing",
                "a man and an owl are playing",
            ),
            ("a man and two birds is", "a man and two owls is"),
        ];
        for (caption, expected) in cases {
            let words: Vec<&str> = caption.split(' ').collect();
            assert_eq!(owl.fill(&words).join(" "), expected, "{caption}");
        }
        let parrot = grounding(
            word("animal", "animals", "an"),
            Some(word("parrot", "parrots", "a")),
        );
        assert_eq!(
            parrot.fill(&["an", "animal", "on", "a", "perch"]).join(" "),
            "a parrot on a perch"
        );
        let sea_lion = grounding(
            word("animal", "animals", "an"),
            Some(word("sea lion", "sea lions", "a")),
        );
        let filled = sea_lion.fill(&["three", "animals", "swim"]);
        assert_eq!(
            filled,
            ["three", "sea lions", "swim"],
            "one entry per token"
        );
        let fish = grounding(
            word("fish", "fish", "a"),
            Some(word("goldfish", "goldfish", "a")),
        );
        assert_eq!(
            fish.fill(&["a", "fish", "swims"]).join(" "),
            "a goldfish swims"
        );
        // Without a name the held word itself agrees.
        let insect = grounding(word("insect", "insects", "an"), None);
        assert_eq!(
            insect.fill(&["a", "insect", "sits"]).join(" "),
            "an insect sits"
        );
        assert_eq!(
            insect.fill(&["two", "insect", "sit"]).join(" "),
            "two insects sit"
        );
    }

    fn vocab(words: &[&str]) -> Vocabulary {
        let caption: Vec<String> = words.iter().map(|w| w.to_string()).collect();
        Vocabulary::build([caption.as_slice()], 1)
    }

    fn probabilities(pairs: &[(&str, f32)]) -> Vec<f32> {
        let table = class_words();
        let mut p = vec![0.0; table.len()];
        for &(name, probability) in pairs {
            let class = table.iter().position(|c| c.name == name).unwrap();
            p[class] = probability;
        }
        p
    }

    #[test]
    fn a_confident_class_is_named_and_shared_words_ground_the_rest() {
        let vocab = vocab(&["a", "bird", "dog", "animal"]);
        let options = GroundOptions {
            class_threshold: 0.5,
            name_threshold: 0.5,
            word_threshold: 0.5,
            need_threshold: 0.0,
            beam: 3,
            evidence: None,
        };
        let owl = Grounding::choose(&probabilities(&[("great grey owl", 0.8)]), &vocab, &options)
            .unwrap();
        assert_eq!(
            owl.words.iter().map(|w| w.singular).collect::<Vec<_>>(),
            ["bird"]
        );
        assert_eq!(
            owl.name.map(|w| (w.singular, w.article)),
            Some(("owl", "an"))
        );
        // No breed is sure, but they are all dogs.
        let breeds = probabilities(&[("beagle", 0.3), ("basset", 0.25), ("bloodhound", 0.2)]);
        let dog = Grounding::choose(&breeds, &vocab, &options).unwrap();
        assert_eq!((dog.words[0].singular, dog.name), ("dog", None));
        // The claim "dog" rests on all three breeds, not on the beagle alone.
        assert!((dog.probability - 0.3).abs() < 1e-6 && (dog.support - 0.75).abs() < 1e-6);
        assert!((owl.support - owl.probability).abs() < 1e-6);
        // An owl at 0.3 and a beagle at 0.3: they share only "animal", which is too vague alone.
        let split = probabilities(&[("great grey owl", 0.3), ("beagle", 0.3), ("tabby", 0.2)]);
        assert_eq!(Grounding::choose(&split, &vocab, &options), None);
        // A confident class may borrow a vague word's place: it is named by filling.
        let snail = Grounding::choose(&probabilities(&[("snail", 0.9)]), &vocab, &options).unwrap();
        assert_eq!(
            (snail.words[0].singular, snail.name.map(|w| w.singular)),
            ("animal", Some("snail"))
        );
    }
}
