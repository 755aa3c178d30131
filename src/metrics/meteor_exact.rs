//! METEOR's score over exact word matches only, in Rust, fast enough to reward every sampled caption
//! of self-critical training. METEOR 1.5 (Denkowski & Lavie 2014) aligns the caption's words with a
//! reference's (exact, then stem, synonym and paraphrase matches), then
//!
//!   P = m / |caption|,   R = m / |reference|,   Fmean = P R / (alpha P + (1 - alpha) R)
//!   score = Fmean (1 - gamma (chunks / m)^beta)
//!
//! with m the aligned words and chunks the fewest runs of them that are contiguous in both, and
//! takes the best reference. Here only exact matches count and every word weighs the same: the jar
//! run with `-m exact -p "0.85 0.2 0.6 0.5"`, image by image (tests/metrics_golden.rs), except where
//! the jar's aligner, a beam search, settles for more chunks than the fewest (1 image in 308 there).
//! Like METEOR it rewards recall far more than precision (alpha 0.85), which CIDEr-D does not.

/// METEOR 1.5's English parameters (alpha, beta, gamma); its delta, the weight of content against
/// function words, is left out: all words count the same.
const ALPHA: f64 = 0.85;
const BETA: f64 = 0.2;
const GAMMA: f64 = 0.6;

/// The caption's score against one reference.
pub fn score<S: AsRef<str>>(caption: &[&str], reference: &[S]) -> f64 {
    let (matches, chunks) = align(caption, reference);
    if matches == 0 {
        return 0.0;
    }
    let m = matches as f64;
    let (precision, recall) = (m / caption.len() as f64, m / reference.len() as f64);
    let fmean = precision * recall / (ALPHA * precision + (1.0 - ALPHA) * recall);
    // As the jar: a caption equal to the reference has no fragmentation at all.
    if chunks == 1 && matches == caption.len() && matches == reference.len() {
        return fmean;
    }
    fmean * (1.0 - GAMMA * (chunks as f64 / m).powf(BETA))
}

/// The caption's score against the best of the references.
pub fn best_score<S: AsRef<str>>(caption: &[&str], references: &[Vec<S>]) -> f64 {
    references
        .iter()
        .map(|r| score(caption, r))
        .fold(0.0, f64::max)
}

/// (aligned words, chunks). Every word the two share is aligned (as many times as both hold it);
/// the chunks come from tiling: the longest run of words unaligned in both and equal in both is
/// aligned first (the earliest in the caption on ties), then the next, down to single words.
fn align<S: AsRef<str>>(caption: &[&str], reference: &[S]) -> (usize, usize) {
    let (mut used_caption, mut used_reference) =
        (vec![false; caption.len()], vec![false; reference.len()]);
    let (mut matches, mut chunks) = (0, 0);
    loop {
        let mut longest = (0, 0, 0);
        for i in 0..caption.len() {
            for j in 0..reference.len() {
                let run = (0..)
                    .take_while(|&k| {
                        i + k < caption.len()
                            && j + k < reference.len()
                            && !used_caption[i + k]
                            && !used_reference[j + k]
                            && caption[i + k] == reference[j + k].as_ref()
                    })
                    .count();
                if run > longest.0 {
                    longest = (run, i, j);
                }
            }
        }
        let (run, i, j) = longest;
        if run == 0 {
            return (matches, chunks);
        }
        used_caption[i..i + run].iter_mut().for_each(|u| *u = true);
        used_reference[j..j + run]
            .iter_mut()
            .for_each(|u| *u = true);
        matches += run;
        chunks += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<&str> {
        text.split(' ').collect()
    }

    #[test]
    fn scores_by_hand() {
        // All six words aligned in three chunks ("the cat", "sat", "on the mat"): Fmean 1,
        // penalty 0.6 x 0.5^0.2; the METEOR jar (-m exact) prints 0.4776696620223255.
        let s = score(
            &words("the cat sat on the mat"),
            &words("on the mat sat the cat"),
        );
        assert!((s - 0.4776696620223255).abs() < 1e-12, "{s}");
        // Identical: 1 (the jar's special case; one chunk would otherwise cost 0.6 x (1/4)^0.2).
        let same = score(&words("a dog runs fast"), &words("a dog runs fast"));
        assert_eq!(same, 1.0);
        // One chunk short of the reference: P 1, R 3/4, penalty 0.6 x (1/3)^0.2.
        let most = score(&words("a dog runs"), &words("a dog runs fast"));
        let fmean = 0.75 / (0.85 * 1.0 + 0.15 * 0.75);
        assert!((most - fmean * (1.0 - 0.6 * (1.0f64 / 3.0).powf(0.2))).abs() < 1e-12);
        // Half the reference recalled in one chunk: P 1, R 0.5.
        let short = score(&words("a dog"), &words("a dog runs fast"));
        let fmean = 0.5 / (0.85 + 0.15 * 0.5);
        assert!((short - fmean * (1.0 - 0.6 * 0.5f64.powf(0.2))).abs() < 1e-12);
        assert_eq!(score(&words("a cat"), &words("the dog")), 0.0);
        // The best reference counts; recall matters more than precision.
        let refs = [words("the dog"), words("a dog runs fast")];
        assert_eq!(best_score(&words("a dog runs fast"), &refs), same);
        let long = score(
            &words("a dog runs fast in the park"),
            &words("a dog runs fast"),
        );
        assert!(long > short, "{long} {short}");
    }
}
