//! CIDEr-D (Vedantam et al. 2015) exactly as coco-caption computes it: TF-IDF vectors of 1..4-grams,
//! document frequencies from the references of the scored set, the candidate's vector clipped by each
//! reference's, a Gaussian penalty (sigma 6) on the length difference, averaged over orders and
//! references, times 10. As in coco-caption, the "length" in the penalty counts bigrams.

use super::{ngram_counts, words, Sample};
use std::collections::{BTreeMap, HashMap};

const SIGMA: f64 = 6.0;

/// Ordered maps and sorted sums, so that a score does not depend on hash order in its last bit.
struct Vector<'a> {
    weights: [BTreeMap<Vec<&'a str>, f64>; 4],
    norm: [f64; 4],
    length: f64,
}

fn vector<'a>(
    counts: &HashMap<Vec<&'a str>, usize>,
    df: &HashMap<Vec<&'a str>, f64>,
    log_docs: f64,
) -> Vector<'a> {
    let mut weights: [BTreeMap<Vec<&str>, f64>; 4] = Default::default();
    let mut norm = [0.0; 4];
    let mut length = 0.0;
    let mut grams: Vec<_> = counts.iter().collect();
    grams.sort();
    for (gram, &tf) in grams {
        let n = gram.len() - 1;
        let idf = log_docs - df.get(gram).copied().unwrap_or(0.0).max(1.0).ln();
        let w = tf as f64 * idf;
        weights[n].insert(gram.clone(), w);
        norm[n] += w * w;
        if n == 1 {
            length += tf as f64;
        }
    }
    Vector {
        weights,
        norm: norm.map(f64::sqrt),
        length,
    }
}

fn similarity(hyp: &Vector, reference: &Vector) -> [f64; 4] {
    let delta = hyp.length - reference.length;
    std::array::from_fn(|n| {
        let mut value: f64 = hyp.weights[n]
            .iter()
            .map(|(gram, &w)| {
                let r = reference.weights[n].get(gram).copied().unwrap_or(0.0);
                w.min(r) * r
            })
            .sum();
        if hyp.norm[n] != 0.0 && reference.norm[n] != 0.0 {
            value /= hyp.norm[n] * reference.norm[n];
        }
        value * (-(delta * delta) / (2.0 * SIGMA * SIGMA)).exp()
    })
}

/// Corpus CIDEr-D (the mean) and the per-image scores.
pub fn cider_d(samples: &[Sample]) -> (f64, Vec<f64>) {
    let refs: Vec<Vec<HashMap<Vec<&str>, usize>>> = samples
        .iter()
        .map(|s| {
            s.references
                .iter()
                .map(|r| ngram_counts(&words(r), 4))
                .collect()
        })
        .collect();
    let mut df: HashMap<Vec<&str>, f64> = HashMap::new();
    for image_refs in &refs {
        let mut seen: Vec<&Vec<&str>> = image_refs.iter().flat_map(|r| r.keys()).collect();
        seen.sort();
        seen.dedup();
        for gram in seen {
            *df.entry(gram.clone()).or_default() += 1.0;
        }
    }
    let log_docs = (samples.len() as f64).ln();
    let scores: Vec<f64> = samples
        .iter()
        .zip(&refs)
        .map(|(sample, image_refs)| {
            let hyp = vector(&ngram_counts(&words(&sample.candidate), 4), &df, log_docs);
            let mut total = [0.0; 4];
            for r in image_refs {
                let sim = similarity(&hyp, &vector(r, &df, log_docs));
                total.iter_mut().zip(sim).for_each(|(t, s)| *t += s);
            }
            total.iter().sum::<f64>() / 4.0 / image_refs.len() as f64 * 10.0
        })
        .collect();
    let mean = scores.iter().sum::<f64>() / scores.len().max(1) as f64;
    (mean, scores)
}
