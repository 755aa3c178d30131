//! BLEU-1..4 (Papineni et al. 2002) in the two flavours people report on Flickr8k:
//!
//! - NLTK `corpus_bleu` without smoothing (the seed's evaluation): clipped n-gram counts summed over
//!   the corpus, brevity penalty from the closest reference length (ties to the shorter), and
//!   p_n = 0 replaced by the smallest float (so a zero-weight order contributes nothing).
//! - coco-caption `Bleu(4)`: the same counts with 1e-15 / 1e-9 guards and the "closest" reference
//!   length; also a per-image score.

use super::{ngram_counts, words, Sample};
use std::collections::HashMap;

/// Clipped matches and totals per order, hypothesis length, closest reference length.
struct Counts {
    correct: [usize; 4],
    guess: [usize; 4],
    hyp_len: usize,
    ref_len: usize,
}

fn counts(sample: &Sample) -> Counts {
    let hyp = words(&sample.candidate);
    let refs: Vec<Vec<&str>> = sample.references.iter().map(|r| words(r)).collect();
    let hyp_counts = ngram_counts(&hyp, 4);
    let mut max_ref: HashMap<Vec<&str>, usize> = HashMap::new();
    for r in &refs {
        for (gram, count) in ngram_counts(r, 4) {
            let slot = max_ref.entry(gram).or_default();
            *slot = (*slot).max(count);
        }
    }
    let mut correct = [0; 4];
    for (gram, count) in &hyp_counts {
        correct[gram.len() - 1] += (*count).min(max_ref.get(gram).copied().unwrap_or(0));
    }
    let guess = std::array::from_fn(|k| hyp.len().saturating_sub(k));
    let ref_len = refs
        .iter()
        .map(|r| ((r.len() as isize - hyp.len() as isize).abs(), r.len()))
        .min()
        .map_or(0, |(_, len)| len);
    Counts {
        correct,
        guess,
        hyp_len: hyp.len(),
        ref_len,
    }
}

/// NLTK `corpus_bleu` for BLEU-1..4 (weights uniform over the first n orders).
pub fn nltk_corpus_bleu(samples: &[Sample]) -> [f64; 4] {
    let (mut num, mut den, mut hyp_len, mut ref_len) = ([0usize; 4], [0usize; 4], 0, 0);
    for sample in samples {
        let c = counts(sample);
        for k in 0..4 {
            num[k] += c.correct[k];
            den[k] += c.guess[k].max(1);
        }
        hyp_len += c.hyp_len;
        ref_len += c.ref_len;
    }
    if num[0] == 0 {
        return [0.0; 4];
    }
    let bp = if hyp_len > ref_len {
        1.0
    } else if hyp_len == 0 {
        0.0
    } else {
        (1.0 - ref_len as f64 / hyp_len as f64).exp()
    };
    let log_p: Vec<f64> = (0..4)
        .map(|k| {
            if num[k] == 0 {
                f64::MIN_POSITIVE.ln()
            } else {
                (num[k] as f64 / den[k] as f64).ln()
            }
        })
        .collect();
    std::array::from_fn(|n| {
        let weight = 1.0 / (n + 1) as f64;
        let sum: f64 = log_p.iter().take(n + 1).map(|l| weight * l).sum();
        bp * sum.exp()
    })
}

const TINY: f64 = 1e-15;
const SMALL: f64 = 1e-9;

fn coco_bleu(
    correct: &[usize; 4],
    guess: &[usize; 4],
    test_len: usize,
    ref_len: usize,
) -> [f64; 4] {
    let mut product = 1.0;
    let mut bleus: [f64; 4] = std::array::from_fn(|k| {
        product *= (correct[k] as f64 + TINY) / (guess[k] as f64 + SMALL);
        product.powf(1.0 / (k + 1) as f64)
    });
    let ratio = (test_len as f64 + TINY) / (ref_len as f64 + SMALL);
    if ratio < 1.0 {
        bleus
            .iter_mut()
            .for_each(|b| *b *= (1.0 - 1.0 / ratio).exp());
    }
    bleus
}

/// coco-caption BLEU-1..4 over the corpus, and per image.
pub fn coco_bleu_scores(samples: &[Sample]) -> ([f64; 4], Vec<[f64; 4]>) {
    let (mut correct, mut guess, mut test_len, mut ref_len) = ([0usize; 4], [0usize; 4], 0, 0);
    let mut per_image = Vec::with_capacity(samples.len());
    for sample in samples {
        let c = counts(sample);
        for k in 0..4 {
            correct[k] += c.correct[k];
            guess[k] += c.guess[k];
        }
        test_len += c.hyp_len;
        ref_len += c.ref_len;
        per_image.push(coco_bleu(&c.correct, &c.guess, c.hyp_len, c.ref_len));
    }
    (coco_bleu(&correct, &guess, test_len, ref_len), per_image)
}
