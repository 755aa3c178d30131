//! CIDEr-D (Vedantam et al. 2015) exactly as coco-caption computes it: TF-IDF vectors of 1..4-grams,
//! document frequencies from the references of the scored set, the candidate's vector clipped by each
//! reference's, a Gaussian penalty (sigma 6) on the length difference, averaged over orders and
//! references, times 10. As in coco-caption, the "length" in the penalty counts bigrams.
//!
//! `CiderD` holds the references' vectors, built once: the metric over a scored set, and the reward
//! of self-critical training (the training references, each sampled caption scored against its
//! image's).

use super::{words, Sample};
use rayon::prelude::*;
use std::collections::HashMap;

const SIGMA: f64 = 6.0;

/// An n-gram of word ids, orders 1-4; unused places hold `NONE`.
type Gram = [u32; 4];
const NONE: u32 = u32::MAX;

/// 0 for a unigram .. 3 for a 4-gram.
fn order(gram: &Gram) -> usize {
    gram.iter().filter(|&&w| w != NONE).count() - 1
}

/// Every 1..4-gram of `ids` with its count, sorted by gram.
fn gram_counts(ids: &[u32]) -> Vec<(Gram, usize)> {
    let mut grams: Vec<Gram> = Vec::with_capacity(ids.len() * 4);
    for n in 1..=4 {
        for window in ids.windows(n) {
            let mut gram = [NONE; 4];
            gram[..n].copy_from_slice(window);
            grams.push(gram);
        }
    }
    grams.sort_unstable();
    let mut counts: Vec<(Gram, usize)> = Vec::with_capacity(grams.len());
    for gram in grams {
        match counts.last_mut() {
            Some((last, count)) if *last == gram => *count += 1,
            _ => counts.push((gram, 1)),
        }
    }
    counts
}

/// TF-IDF weights sorted by gram (so that sums run in one order: a score does not depend on hash
/// order in its last bit), their norm per order, and the length (bigram count).
struct Vector {
    weights: Vec<(Gram, f64)>,
    norm: [f64; 4],
    length: f64,
}

/// The references of a set of images: their vocabulary, document frequencies and TF-IDF vectors.
pub struct CiderD {
    ids: HashMap<String, u32>,
    df: HashMap<Gram, f64>,
    log_docs: f64,
    references: Vec<Vec<Vector>>,
}

impl CiderD {
    /// `references[i]`: image i's reference captions (tokens joined by spaces). Document frequencies
    /// count the images whose references hold an n-gram.
    pub fn new(references: &[Vec<String>]) -> Self {
        let mut ids: HashMap<String, u32> = HashMap::new();
        let counts: Vec<Vec<Vec<(Gram, usize)>>> = references
            .iter()
            .map(|image| {
                image
                    .iter()
                    .map(|text| {
                        let tokens: Vec<u32> = words(text)
                            .into_iter()
                            .map(|w| {
                                let next = ids.len() as u32;
                                *ids.entry(w.to_owned()).or_insert(next)
                            })
                            .collect();
                        gram_counts(&tokens)
                    })
                    .collect()
            })
            .collect();
        let mut df: HashMap<Gram, f64> = HashMap::new();
        for image in &counts {
            let mut seen: Vec<Gram> = image.iter().flatten().map(|(g, _)| *g).collect();
            seen.sort_unstable();
            seen.dedup();
            for gram in seen {
                *df.entry(gram).or_default() += 1.0;
            }
        }
        let mut cider = CiderD {
            ids,
            df,
            log_docs: (references.len() as f64).ln(),
            references: Vec::new(),
        };
        cider.references = counts
            .iter()
            .map(|image| image.iter().map(|c| cider.vector(c)).collect())
            .collect();
        cider
    }

    fn vector(&self, counts: &[(Gram, usize)]) -> Vector {
        let mut norm = [0.0; 4];
        let mut length = 0.0;
        let weights = counts
            .iter()
            .map(|&(gram, tf)| {
                let n = order(&gram);
                let idf = self.log_docs - self.df.get(&gram).copied().unwrap_or(0.0).max(1.0).ln();
                let w = tf as f64 * idf;
                norm[n] += w * w;
                if n == 1 {
                    length += tf as f64;
                }
                (gram, w)
            })
            .collect();
        Vector {
            weights,
            norm: norm.map(f64::sqrt),
            length,
        }
    }

    /// CIDEr-D of a candidate (its tokens) for image `image` of the set.
    pub fn score(&self, image: usize, candidate: &[&str]) -> f64 {
        // Words no reference holds get ids of their own, past the references' ones.
        let mut unseen: HashMap<&str, u32> = HashMap::new();
        let tokens: Vec<u32> = candidate
            .iter()
            .map(|&w| match self.ids.get(w) {
                Some(&id) => id,
                None => {
                    let next = (self.ids.len() + unseen.len()) as u32;
                    *unseen.entry(w).or_insert(next)
                }
            })
            .collect();
        let hyp = self.vector(&gram_counts(&tokens));
        let references = &self.references[image];
        let mut total = [0.0; 4];
        for reference in references {
            let sim = similarity(&hyp, reference);
            total.iter_mut().zip(sim).for_each(|(t, s)| *t += s);
        }
        total.iter().sum::<f64>() / 4.0 / references.len() as f64 * 10.0
    }
}

fn similarity(hyp: &Vector, reference: &Vector) -> [f64; 4] {
    let delta = hyp.length - reference.length;
    let mut value = [0.0; 4];
    for (gram, w) in &hyp.weights {
        if let Ok(at) = reference.weights.binary_search_by(|(g, _)| g.cmp(gram)) {
            let r = reference.weights[at].1;
            value[order(gram)] += w.min(r) * r;
        }
    }
    std::array::from_fn(|n| {
        let mut value = value[n];
        if hyp.norm[n] != 0.0 && reference.norm[n] != 0.0 {
            value /= hyp.norm[n] * reference.norm[n];
        }
        value * (-(delta * delta) / (2.0 * SIGMA * SIGMA)).exp()
    })
}

/// Corpus CIDEr-D (the mean) and the per-image scores.
pub fn cider_d(samples: &[Sample]) -> (f64, Vec<f64>) {
    let references: Vec<Vec<String>> = samples.iter().map(|s| s.references.clone()).collect();
    let cider = CiderD::new(&references);
    let scores: Vec<f64> = samples
        .par_iter()
        .enumerate()
        .map(|(image, sample)| cider.score(image, &words(&sample.candidate)))
        .collect();
    let mean = scores.iter().sum::<f64>() / scores.len().max(1) as f64;
    (mean, scores)
}
