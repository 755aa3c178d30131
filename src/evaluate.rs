//! The `evaluate` stage: caption every image of a split (greedy and beam search), score the captions
//! against the split's references with every metric, and write COCO-style results.
//!
//! The protocol is the model's tokenisation. PTB (coco-caption's): the references are the raw
//! captions through the PTB tokenizer (descriptions.txt holds exactly that) and each candidate goes
//! through it too, as pycocoevalcap's `PTBTokenizer` does before its scorers. Seed: the candidates
//! against the seed-cleaned references, as the Keras tutorial scores.

use crate::dataset::Split;
use crate::evidence::Evidence;
use crate::features_file::Features;
use crate::fsio::{create_output_dir, write_atomic};
use crate::generate::SearchOptions;
use crate::ground::GroundOptions;
use crate::metrics::{bleu, cider, meteor, rouge, Sample};
use crate::model::Model;
use crate::text::{ptb_tokenize, Tokenization};
use crate::vision::{Encoder, EncoderKind};
use crate::work_folder::{model_images, split_images, work_tokenization, SplitImages};
use anyhow::{bail, Context, Result};
use rayon::prelude::*;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub struct EvaluateOptions {
    pub work: PathBuf,
    pub features: PathBuf,
    pub split: Split,
    /// The beam search of the second run (the first is greedy, with the same repeat rule).
    pub search: SearchOptions,
    pub out: Option<PathBuf>,
    /// Replace the results already in `out` (without it, that is an error).
    pub force: bool,
    pub meteor_jar: Option<PathBuf>,
    /// Score grounded captions (as `caption` writes them by default): the encoder's classes, from
    /// the stored pooled features through its classifier (`weights`, default fetched), name what
    /// it recognises.
    pub ground: Option<GroundOptions>,
    pub weights: Option<PathBuf>,
    pub progress: bool,
    /// Only the first this many images of the split (a quick run; the table says so).
    pub limit: Option<usize>,
}

/// Raw metric values as pycocoevalcap and NLTK return them (not x100).
#[derive(Clone, Debug, Serialize)]
pub struct Scores {
    pub nltk_bleu1: f64,
    pub nltk_bleu2: f64,
    pub nltk_bleu3: f64,
    pub nltk_bleu4: f64,
    pub bleu1: f64,
    pub bleu2: f64,
    pub bleu3: f64,
    pub bleu4: f64,
    pub meteor: Option<f64>,
    pub rouge_l: f64,
    pub cider: f64,
}

/// One search over the split: its name ("greedy", "beam<K>"), scores and (image id, caption) pairs.
pub struct Run {
    pub name: String,
    pub scores: Scores,
    pub captions: Vec<(String, String)>,
}

pub struct Evaluation {
    /// Greedy, then beam search.
    pub runs: Vec<Run>,
    /// Why METEOR is missing, when it is.
    pub meteor_unavailable: Option<String>,
    pub images: usize,
    /// Whether `images` are the first of the split only (--limit).
    pub limited: bool,
}

/// Every metric on `samples`; METEOR with `meteor_jar` (from `meteor::locate`), or the reason it
/// is missing.
pub fn score(
    samples: &[Sample],
    meteor_jar: &std::result::Result<PathBuf, String>,
) -> (Scores, Option<String>) {
    let nltk = bleu::nltk_corpus_bleu(samples);
    let (coco, _) = bleu::coco_bleu_scores(samples);
    let (cider, _) = cider::cider_d(samples);
    let (rouge_l, _) = rouge::rouge_l(samples);
    let (meteor, unavailable) = match meteor_jar {
        Ok(jar) => match meteor::meteor(samples, jar) {
            Ok((value, _)) => (Some(value), None),
            Err(err) => (None, Some(format!("{err:#}"))),
        },
        Err(why) => (None, Some(why.clone())),
    };
    let scores = Scores {
        nltk_bleu1: nltk[0],
        nltk_bleu2: nltk[1],
        nltk_bleu3: nltk[2],
        nltk_bleu4: nltk[3],
        bleu1: coco[0],
        bleu2: coco[1],
        bleu3: coco[2],
        bleu4: coco[3],
        meteor,
        rouge_l,
        cider,
    };
    (scores, unavailable)
}

#[derive(Serialize)]
struct CocoResult<'a> {
    image_id: &'a str,
    caption: &'a str,
}

/// What grounding sees of each image of the split (empty, and `None`s, without `--ground`).
struct Sight {
    probabilities: Vec<Vec<f32>>,
    familiarity: Vec<Option<f32>>,
    evidence: Vec<Option<Evidence>>,
}

/// The class probabilities, familiarity and evidence of the split's images (`rows` of `features`)
/// when `--ground` asks for them.
fn sight(
    model: &Model,
    options: &EvaluateOptions,
    features: &Features,
    rows: &[usize],
) -> Result<Sight> {
    if options.ground.is_none() {
        return Ok(Sight {
            probabilities: vec![Vec::new(); rows.len()],
            familiarity: vec![None; rows.len()],
            evidence: vec![None; rows.len()],
        });
    }
    let Some(familiar) = &model.familiar else {
        bail!(
            "--ground: the model has no {} (what its training photos are like): add it with `captioner familiar --model M --work W --features F`",
            crate::familiar::FILE
        );
    };
    let pooled: Vec<&[f32]> = rows.iter().map(|&row| features.row(row)).collect();
    let familiarity = pooled
        .iter()
        .map(|p| familiar.familiarity(p).map(Some))
        .collect::<Result<Vec<_>>>()?;
    let probabilities = class_probabilities(model, &pooled, options.weights.as_deref())?;
    let evidence = pooled
        .iter()
        .zip(&probabilities)
        .zip(&familiarity)
        .map(|((pooled, probabilities), &familiarity)| {
            let ground = options.ground.as_ref();
            crate::ground::evidence(model, ground, pooled, probabilities, familiarity)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Sight {
        probabilities,
        familiarity,
        evidence,
    })
}

/// Photos whose searches `captions` steps together: past 16 a batch gains little (bench/
/// caption_pieces.rs).
const SEARCHED_TOGETHER: usize = 16;

/// The model's caption of each image (`rows`: each image's decoder input) with `search`, as
/// `caption` would give it (grounded with `--ground`).
fn captions(
    model: &Model,
    options: &EvaluateOptions,
    (name, search): (&str, SearchOptions),
    rows: &[&[f32]],
    sight: &Sight,
) -> Result<Vec<String>> {
    let bar = crate::progress::bar(rows.len() as u64, "images", options.progress);
    bar.set_prefix(name.to_owned());
    // Chunks of photos whose searches are stepped together (`ground::caption_many`), one chunk
    // per thread at a time.
    let seens: Vec<crate::ground::Seen> = sight
        .probabilities
        .iter()
        .zip(&sight.familiarity)
        .zip(&sight.evidence)
        .map(
            |((probabilities, &familiarity), evidence)| crate::ground::Seen {
                probabilities,
                familiarity,
                evidence: evidence.as_ref(),
            },
        )
        .collect();
    let captions = rows
        .par_chunks(SEARCHED_TOGETHER)
        .zip(seens.par_chunks(SEARCHED_TOGETHER))
        .flat_map_iter(|(rows, seens)| {
            let ground = options.ground.as_ref();
            let captions =
                crate::ground::caption_many(model, rows, &search, ground, seens, rows.len());
            bar.inc(rows.len() as u64);
            captions
                .into_iter()
                .map(|caption| caption.map(|caption| caption.words.join(" ")))
        })
        .collect::<Result<_>>()?;
    bar.finish_and_clear();
    Ok(captions)
}

/// `out`/results_<run>.json (COCO's results format) for each run, and their scores.json.
fn write_results(out: &Path, runs: &[Run]) -> Result<()> {
    create_output_dir(out)?;
    let mut all_scores = BTreeMap::new();
    for Run {
        name,
        scores,
        captions,
    } in runs
    {
        let results: Vec<CocoResult> = captions
            .iter()
            .map(|(id, caption)| CocoResult {
                image_id: id,
                caption,
            })
            .collect();
        write_atomic(
            &out.join(format!("results_{name}.json")),
            serde_json::to_string_pretty(&results)?.as_bytes(),
        )?;
        all_scores.insert(name.clone(), scores.clone());
    }
    write_atomic(
        &out.join("scores.json"),
        serde_json::to_string_pretty(&all_scores)?.as_bytes(),
    )
}

pub fn evaluate(model: &Model, options: &EvaluateOptions) -> Result<Evaluation> {
    let (features, images) = model_images(model, &options.features)?;
    if let Some(out) = options.out.as_ref().filter(|_| !options.force) {
        if out.join("scores.json").exists() {
            bail!(
                "{} already holds an evaluation (scores.json): pass --force to replace it, or choose another --out",
                out.display()
            );
        }
    }
    let tokenize = model.config.tokenize;
    let work_tokenize = work_tokenization(&options.work)?;
    if work_tokenize != tokenize {
        bail!(
            "the model was trained on {} tokens but {} holds {} tokens: prepare a work folder with `captioner prepare --tokenize {}`",
            tokenize.name(),
            options.work.display(),
            work_tokenize.name(),
            tokenize.name()
        );
    }
    let SplitImages {
        ids,
        rows: feature_rows,
        references,
    } = split_images(
        &options.work,
        options.split,
        &features,
        &options.features,
        options.limit,
    )?;
    let rows: Vec<&[f32]> = feature_rows.iter().map(|&row| images.row(row)).collect();
    let sight = sight(model, options, &features, &feature_rows)?;
    // Located (and fetched, if need be) once for both runs.
    let meteor_jar = meteor::locate(options.meteor_jar.as_deref()).map_err(|e| format!("{e:#}"));
    let mut runs = Vec::new();
    let mut meteor_unavailable = None;
    let greedy = SearchOptions {
        beam: 1,
        length_penalty: 0.0,
        ..options.search
    };
    let searches = [
        ("greedy".to_owned(), greedy),
        (format!("beam{}", options.search.beam), options.search),
    ];
    for (name, search) in searches {
        let captions = captions(model, options, (&name, search), &rows, &sight)?;
        let samples: Vec<Sample> = captions
            .iter()
            .zip(&references)
            .map(|(candidate, refs)| Sample {
                candidate: match tokenize {
                    Tokenization::Ptb => ptb_tokenize(candidate).join(" "),
                    Tokenization::Seed => candidate.clone(),
                },
                references: refs.clone(),
            })
            .collect();
        let (scores, unavailable) = score(&samples, &meteor_jar);
        meteor_unavailable = unavailable;
        let captions = ids.iter().cloned().zip(captions).collect();
        runs.push(Run {
            name,
            scores,
            captions,
        });
    }
    if let Some(out) = &options.out {
        write_results(out, &runs)?;
    }
    Ok(Evaluation {
        runs,
        meteor_unavailable,
        images: ids.len(),
        limited: options.limit.is_some(),
    })
}

/// Each image's ImageNet class probabilities, from its pooled feature through the model's
/// encoder's classifier.
fn class_probabilities(
    model: &Model,
    pooled: &[&[f32]],
    weights: Option<&std::path::Path>,
) -> Result<Vec<Vec<f32>>> {
    let kind = EncoderKind::parse(&model.config.encoder)
        .context("--ground needs the model's encoder, which this version cannot load")?;
    let encoder = Encoder::load(kind, weights)?;
    if !encoder.has_classifier() {
        bail!(
            "--ground: these {} weights carry no ImageNet classifier; use weights with one (the fetched EfficientNet-Lite0 weights have it)",
            kind.name()
        );
    }
    Ok(pooled
        .par_iter()
        .map(|feature| encoder.class_probabilities(feature).unwrap_or_default())
        .collect())
}

/// The metrics table for a person: one row per metric, one column per search, values x100.
pub fn table(evaluation: &Evaluation) -> String {
    let mut text = if evaluation.limited {
        format!(
            "(--limit: the split's first {} images only)\n",
            evaluation.images
        )
    } else {
        String::new()
    };
    text.push_str(&format!("{:<16}", format!("{} images", evaluation.images)));
    for run in &evaluation.runs {
        text.push_str(&format!("{:>10}", run.name));
    }
    text.push('\n');
    type Row = (&'static str, fn(&Scores) -> Option<f64>);
    let rows: [Row; 11] = [
        ("BLEU-1 (NLTK)", |s| Some(s.nltk_bleu1)),
        ("BLEU-2 (NLTK)", |s| Some(s.nltk_bleu2)),
        ("BLEU-3 (NLTK)", |s| Some(s.nltk_bleu3)),
        ("BLEU-4 (NLTK)", |s| Some(s.nltk_bleu4)),
        ("BLEU-1", |s| Some(s.bleu1)),
        ("BLEU-2", |s| Some(s.bleu2)),
        ("BLEU-3", |s| Some(s.bleu3)),
        ("BLEU-4", |s| Some(s.bleu4)),
        ("METEOR", |s| s.meteor),
        ("ROUGE-L", |s| Some(s.rouge_l)),
        ("CIDEr-D", |s| Some(s.cider)),
    ];
    for (label, value) in rows {
        text.push_str(&format!("{label:<16}"));
        for run in &evaluation.runs {
            match value(&run.scores) {
                Some(v) => text.push_str(&format!("{:>10.2}", v * 100.0)),
                None => text.push_str(&format!("{:>10}", "n/a")),
            }
        }
        text.push('\n');
    }
    if let Some(why) = &evaluation.meteor_unavailable {
        text.push_str(&format!("METEOR unavailable: {why}\n"));
    }
    text
}
