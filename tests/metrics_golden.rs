//! Every metric against NLTK and pycocoevalcap 1.2 (CAPTIONER_DATA/metrics-golden): corpus scores and
//! per-image scores on 303 candidate/reference sets and on a 5-image subset (whose CIDEr idf differs).
//! METEOR runs when CAPTIONER_METEOR_JAR names meteor-1.5.jar (and Java is installed).

mod common;

use captioner::metrics::{bleu, cider, meteor, meteor_exact, rouge, Sample};
use serde_json::Value;

const TOLERANCE: f64 = 1e-6;

fn samples(items: &Value) -> (Vec<String>, Vec<Sample>) {
    let items = items.as_array().unwrap();
    let names = items
        .iter()
        .map(|i| i["image"].as_str().unwrap().to_owned())
        .collect();
    let samples = items
        .iter()
        .map(|i| Sample {
            candidate: i["candidate"].as_str().unwrap().to_owned(),
            references: i["references"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_str().unwrap().to_owned())
                .collect(),
        })
        .collect();
    (names, samples)
}

fn close(what: &str, got: f64, want: &Value) {
    let want = want
        .as_f64()
        .unwrap_or_else(|| panic!("{what}: no golden value"));
    assert!((got - want).abs() <= TOLERANCE, "{what}: {got} vs {want}");
}

fn check_set(name: &str, set: &Value) {
    let (names, samples) = samples(&set["items"]);
    let scores = &set["scores"];
    let nltk = bleu::nltk_corpus_bleu(&samples);
    let (coco, coco_per_image) = bleu::coco_bleu_scores(&samples);
    for k in 0..4 {
        close(
            &format!("{name} nltk bleu{}", k + 1),
            nltk[k],
            &scores["nltk"][format!("bleu{}", k + 1)],
        );
        close(
            &format!("{name} coco bleu{}", k + 1),
            coco[k],
            &scores["coco"][format!("bleu{}", k + 1)],
        );
    }
    let (cider, cider_per_image) = cider::cider_d(&samples);
    close(&format!("{name} cider"), cider, &scores["coco"]["cider"]);
    // Self-critical training's reward: the same references built once, candidates scored one at a
    // time in any order (here last to first), as sampled captions are.
    let references: Vec<Vec<String>> = samples.iter().map(|s| s.references.clone()).collect();
    let reward = cider::CiderD::new(&references);
    for (i, sample) in samples.iter().enumerate().rev() {
        let words: Vec<&str> = sample.candidate.split_whitespace().collect();
        close(
            &format!("{name} {} reward", names[i]),
            reward.score(i, &words),
            &scores["coco_per_image"][&names[i]]["cider"],
        );
    }
    let (rouge, rouge_per_image) = rouge::rouge_l(&samples);
    close(
        &format!("{name} rouge_l"),
        rouge,
        &scores["coco"]["rouge_l"],
    );
    let per_image = &scores["coco_per_image"];
    for (i, image) in names.iter().enumerate() {
        close(
            &format!("{name} {image} bleu4"),
            coco_per_image[i][3],
            &per_image[image]["bleu4"],
        );
        close(
            &format!("{name} {image} cider"),
            cider_per_image[i],
            &per_image[image]["cider"],
        );
        close(
            &format!("{name} {image} rouge_l"),
            rouge_per_image[i],
            &per_image[image]["rouge_l"],
        );
    }
    // METEOR is part of the protocol: the jar is fetched when missing, and Java must be there
    // (.ci/run installs it).
    let jar = meteor::locate(None).unwrap_or_else(|err| panic!("{name}: {err:#}"));
    let (corpus, per) = meteor::meteor(&samples, &jar).unwrap();
    close(&format!("{name} meteor"), corpus, &scores["coco"]["meteor"]);
    for (i, image) in names.iter().enumerate() {
        close(
            &format!("{name} {image} meteor"),
            per[i],
            &per_image[image]["meteor"],
        );
    }
    // The training reward's METEOR (exact matches only, every word weighing the same) is the jar
    // run with those options, image by image, except where the jar's aligner (a beam search) keeps
    // more chunks than the fewest: there ours is higher, never lower.
    let exact_options = ["-m", "exact", "-p", "0.85 0.2 0.6 0.5"];
    let (_, exact) = meteor::meteor_with(&samples, &jar, &exact_options).unwrap();
    let mut equal = 0;
    for (i, sample) in samples.iter().enumerate() {
        let references: Vec<Vec<&str>> = sample
            .references
            .iter()
            .map(|r| r.split_whitespace().collect())
            .collect();
        let caption: Vec<&str> = sample.candidate.split_whitespace().collect();
        let ours = meteor_exact::best_score(&caption, &references);
        assert!(
            ours > exact[i] - 1e-9,
            "{name} {}: exact METEOR {ours} below the jar's {}",
            names[i],
            exact[i]
        );
        equal += usize::from((ours - exact[i]).abs() < 1e-9);
    }
    assert!(
        equal * 100 >= samples.len() * 99,
        "{name}: exact METEOR equals the jar's on only {equal} of {} images",
        samples.len()
    );
}

#[cfg_attr(
    not(captioner_data),
    ignore = "needs CAPTIONER_DATA: the real data and golden files"
)]
#[test]
fn metrics_match_nltk_and_coco_caption() {
    let data = common::real_data();
    let golden: Value = common::read_json(&data.join("metrics-golden/caption_metrics_golden.json"));
    check_set("all", &golden);
    check_set("small", &golden["small"]);
}
