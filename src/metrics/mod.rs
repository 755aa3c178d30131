//! Caption metrics, reproducing the reference implementations number for number:
//! BLEU as NLTK `corpus_bleu` (the seed's) and as coco-caption, CIDEr-D and ROUGE-L as coco-caption,
//! METEOR through coco-caption's `meteor-1.5.jar` (Java) when it is available.
//! Text is pre-tokenised: lowercase words joined by single spaces.

pub mod bleu;
pub mod cider;
pub mod meteor;
pub mod meteor_exact;
pub mod rouge;

use std::collections::HashMap;

/// One image: the generated caption and its reference captions.
#[derive(Clone, Debug)]
pub struct Sample {
    pub candidate: String,
    pub references: Vec<String>,
}

/// Counts of every n-gram of orders 1..=max_n.
pub(crate) fn ngram_counts<'a>(words: &[&'a str], max_n: usize) -> HashMap<Vec<&'a str>, usize> {
    let mut counts = HashMap::new();
    for n in 1..=max_n {
        for gram in words.windows(n) {
            *counts.entry(gram.to_vec()).or_default() += 1;
        }
    }
    counts
}

pub(crate) fn words(text: &str) -> Vec<&str> {
    text.split_whitespace().collect()
}
