//! ROUGE-L (Lin 2004) as coco-caption computes it: the longest common subsequence with each reference,
//! the best precision and the best recall (possibly from different references), F-measure with
//! beta 1.2; the corpus score is the mean over images.

use super::Sample;

const BETA: f64 = 1.2;

fn lcs(a: &[&str], b: &[&str]) -> usize {
    let mut previous = vec![0usize; b.len() + 1];
    let mut current = vec![0usize; b.len() + 1];
    for x in a {
        for (j, y) in b.iter().enumerate() {
            current[j + 1] = if x == y {
                previous[j] + 1
            } else {
                previous[j + 1].max(current[j])
            };
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

pub fn rouge_l_one(sample: &Sample) -> f64 {
    // coco-caption splits on single spaces.
    let candidate: Vec<&str> = sample.candidate.split(' ').collect();
    let (mut precision, mut recall) = (0.0f64, 0.0f64);
    for reference in &sample.references {
        let reference: Vec<&str> = reference.split(' ').collect();
        let common = lcs(&reference, &candidate) as f64;
        precision = precision.max(common / candidate.len() as f64);
        recall = recall.max(common / reference.len() as f64);
    }
    if precision != 0.0 && recall != 0.0 {
        (1.0 + BETA * BETA) * precision * recall / (recall + BETA * BETA * precision)
    } else {
        0.0
    }
}

/// Corpus ROUGE-L (the mean) and the per-image scores.
pub fn rouge_l(samples: &[Sample]) -> (f64, Vec<f64>) {
    let scores: Vec<f64> = samples.iter().map(rouge_l_one).collect();
    let mean = scores.iter().sum::<f64>() / scores.len().max(1) as f64;
    (mean, scores)
}
