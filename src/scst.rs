//! Self-critical sequence training (Rennie et al. 2017), the `scst` stage: a cross-entropy model
//! samples `samples` captions per training image, each is rewarded by its CIDEr-D against that
//! image's references (document frequencies from all training references, computed once), and the
//! policy gradient moves the weights toward the captions that beat their baseline, the mean reward
//! of the image's other samples (the "new self-critical" baseline of Luo 2020). As in Luo's
//! self-critical.pytorch, the end marker counts as a word of the sample and of the references in the
//! reward: without it, stopping before a noun one might get wrong pays ("running in the" scores
//! above "running in the grass" for a snow photo), and the captions lose their endings.
//!
//!   loss = sum over samples s of A_s * sum_t -log p(w_t | w_<t, image) / T,   A_s = r_s - mean_{j!=s} r_j
//!
//! with T the predicted tokens of the step's samples. Its gradient is cross-entropy's with every
//! position weighted by its caption's advantage, so the step is the decoder's training step on the
//! sampled captions (dropout off: the captions were sampled without it). The dev split is captioned
//! greedily after every epoch; the checkpoint with the best dev CIDEr-D is kept (the starting model
//! is epoch 0). Sampling draws from one generator per image, seeded from the run's RNG, so a run is
//! the same for a seed and thread count, and `--resume` continues it exactly.

use crate::dataset::Split;
use crate::decoder::{Batch, DecoderConfig, Workspace};
use crate::engine::rng::Rng;
use crate::fsio::write_atomic;
use crate::generate::{banned, sample_many, search, words, Generated, SearchOptions};
use crate::metrics::cider::CiderD;
use crate::metrics::meteor_exact;
use crate::model::{weights_bytes, Model};
use crate::nn::adam::AdamConfig;
use crate::run::{append_log, load_last, save_last, Checkpoint, Optimizer};
use crate::text::{Vocabulary, END_TOKEN, START_TOKEN};
use crate::work_folder::{model_images, split_images, ImageRows, SplitImages};
use anyhow::{bail, Context, Result};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

pub struct ScstOptions {
    /// The cross-entropy model to start from (`train`'s output folder).
    pub from: PathBuf,
    pub work: PathBuf,
    pub features: PathBuf,
    pub out: PathBuf,
    pub epochs: usize,
    /// Images per step (each gives `samples` captions).
    pub batch: usize,
    pub samples: usize,
    pub lr: f64,
    /// Multiply the learning rate by this after every epoch.
    pub lr_decay: f64,
    /// The reward is CIDEr-D plus this times the caption's exact-match METEOR (0: CIDEr-D alone).
    pub meteor_weight: f64,
    /// The search behind the dev CIDEr-D of every epoch (greedy by default).
    pub dev_search: SearchOptions,
    pub seed: u64,
    pub resume: bool,
    pub force: bool,
    pub progress: bool,
    /// Stop after this many steps in total (tests and benchmarks).
    pub max_steps: Option<u64>,
    /// Only the first this many images of the train and dev splits (a quick run).
    pub limit: Option<usize>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
struct ScstState {
    /// Epochs completed.
    epoch: usize,
    /// Steps taken (a step whose samples all tie with their baselines changes nothing).
    steps: u64,
    adam_step: u64,
    rng: u64,
    lr: f64,
    /// The best dev score so far: CIDEr-D plus the METEOR weight times exact-match METEOR.
    #[serde(alias = "best_dev_cider")]
    best_dev_score: f64,
    best_epoch: usize,
}

#[derive(Debug, Serialize)]
pub struct ScstEpochLog {
    pub epoch: usize,
    /// Mean CIDEr-D of the epoch's sampled captions (x1, as coco-caption reports it).
    pub reward: f64,
    pub dev_cider: f64,
    /// Mean exact-match METEOR of the dev captions (`metrics::meteor_exact`).
    pub dev_meteor_exact: f64,
    pub lr: f64,
    pub seconds: f64,
    pub images_per_s: f64,
    pub best: bool,
}

pub struct ScstReport {
    /// Dev scores of the starting model.
    pub start_dev: DevScores,
    pub epochs: Vec<ScstEpochLog>,
    pub best_epoch: usize,
    /// The best epoch's dev score (CIDEr-D plus the METEOR weight times exact-match METEOR).
    pub best_dev_score: f64,
}

/// The dev captions' mean CIDEr-D and exact-match METEOR.
#[derive(Clone, Copy, Debug)]
pub struct DevScores {
    pub cider: f64,
    pub meteor_exact: f64,
}

/// The advantage of each of one image's sampled captions: its reward minus the mean of the others'.
pub fn advantages(rewards: &[f64]) -> Vec<f64> {
    let (total, k) = (rewards.iter().sum::<f64>(), rewards.len() as f64);
    rewards
        .iter()
        .map(|&r| r - (total - r) / (k - 1.0))
        .collect()
}

/// What a caption earns against one split's references: CIDEr-D, and its exact-match METEOR (the
/// recall that CIDEr-D does not ask for: captions finished on CIDEr-D alone grow short).
struct Reward {
    cider: CiderD,
    /// Each image's references, word by word.
    references: Vec<Vec<Vec<String>>>,
}

impl Reward {
    /// With `ended`, CIDEr-D counts the end marker as the last word of every reference (the
    /// training reward, `sample_reward`).
    fn new(references: &[Vec<String>], ended: bool) -> Self {
        let cider = if ended {
            let ended_references: Vec<Vec<String>> = references
                .iter()
                .map(|refs| refs.iter().map(|r| format!("{r} {END_TOKEN}")).collect())
                .collect();
            CiderD::new(&ended_references)
        } else {
            CiderD::new(references)
        };
        Reward {
            cider,
            references: references
                .iter()
                .map(|refs| {
                    refs.iter()
                        .map(|r| r.split_whitespace().map(str::to_owned).collect())
                        .collect()
                })
                .collect(),
        }
    }

    fn meteor_exact(&self, image: usize, words: &[&str]) -> f64 {
        meteor_exact::best_score(words, &self.references[image])
    }
}

/// The training reward: CIDEr-D with the end marker as a word of the sample (when it ended) and of
/// every reference, so that n-grams ending a sentence count ("the snow endseq") and a sample cut
/// before its noun ("running in the") earns no credit for stopping there; plus `meteor_weight`
/// times the exact-match METEOR of its words.
fn sample_reward(
    model: &Model,
    reward: &Reward,
    meteor_weight: f64,
    image: usize,
    caption: &Generated,
) -> f64 {
    let mut words = words(model, &caption.tokens);
    let meteor = if meteor_weight > 0.0 {
        meteor_weight * reward.meteor_exact(image, &words)
    } else {
        0.0
    };
    if caption.ended {
        words.push(END_TOKEN);
    }
    reward.cider.score(image, &words) + meteor
}

/// Dev scores of the model's captions (the search of `options.dev_search`).
fn dev_scores(
    model: &Model,
    dev: &SplitImages,
    reward: &Reward,
    images: &ImageRows,
    search_options: &SearchOptions,
) -> DevScores {
    let scores: Vec<(f64, f64)> = dev
        .rows
        .par_iter()
        .enumerate()
        .map(|(i, &row)| {
            let caption = search(model, images.row(row), search_options);
            let words = words(model, &caption.tokens);
            (
                reward.cider.score(i, &words),
                reward.meteor_exact(i, &words),
            )
        })
        .collect();
    let mean = |f: fn(&(f64, f64)) -> f64| scores.iter().map(f).sum::<f64>() / scores.len() as f64;
    DevScores {
        cider: mean(|s| s.0),
        meteor_exact: mean(|s| s.1),
    }
}

impl DevScores {
    /// What the best checkpoint is chosen by.
    fn score(&self, meteor_weight: f64) -> f64 {
        self.cider + meteor_weight * self.meteor_exact
    }
}

/// `count` sampled captions for each training image of `chunk` (inputs in the same order), each
/// image with its own generator seeded from `seed` and the image, and their rewards. Each thread
/// takes an equal share of the images and samples them together (`sample_many`: the decoder's
/// weights read once per step for all of them); the captions are those of one image at a time.
fn sample_and_reward(
    model: &Model,
    reward: &Reward,
    meteor_weight: f64,
    chunk: &[usize],
    inputs: &[&[f32]],
    count: usize,
    seed: u64,
) -> (Vec<Vec<Generated>>, Vec<Vec<f64>>) {
    let share = chunk.len().div_ceil(rayon::current_num_threads()).max(1);
    chunk
        .par_chunks(share)
        .zip(inputs.par_chunks(share))
        .flat_map_iter(|(images, inputs)| {
            let mut rngs: Vec<Rng> = images
                .iter()
                .map(|&image| Rng::new(seed ^ (image as u64).wrapping_mul(PHI)))
                .collect();
            let captions = sample_many(model, inputs, count, &mut rngs);
            images.iter().zip(captions).map(|(&image, captions)| {
                let rewards = captions
                    .iter()
                    .map(|c| sample_reward(model, reward, meteor_weight, image, c))
                    .collect();
                (captions, rewards)
            })
        })
        .unzip()
}

/// The policy-gradient batch of one step: every sampled caption with a non-zero advantage, its
/// positions weighted by advantage / (predicted tokens of all the step's samples).
fn policy_batch(
    batch: &mut Batch<f32>,
    model: &Model,
    inputs: &[&[f32]],
    samples: &[Vec<Generated>],
    advantages: &[Vec<f64>],
    groups: usize,
) {
    let (start, end) = (model.vocab.id(START_TOKEN), model.vocab.id(END_TOKEN));
    let mut captions: Vec<(usize, Vec<u32>, f64)> = Vec::new();
    let mut predicted = 0;
    for (image, (image_samples, image_advantages)) in samples.iter().zip(advantages).enumerate() {
        for (caption, &advantage) in image_samples.iter().zip(image_advantages) {
            predicted += caption.predicted();
            if advantage != 0.0 {
                let tokens: Vec<u32> = std::iter::once(start)
                    .chain(caption.tokens.iter().copied())
                    .chain(caption.ended.then_some(end))
                    .collect();
                captions.push((image, tokens, advantage));
            }
        }
    }
    batch.fill(captions.len(), groups, |k| {
        (inputs[captions[k].0], captions[k].1.as_slice())
    });
    let scale = 1.0 / predicted.max(1) as f64;
    batch.weigh_captions(|k| (captions[k].2 * scale) as f32);
}

/// Everything a run reads: the model to train, the features' decoder inputs, both splits' images
/// and the reward's references.
/// What a run reads besides the model: the training and dev images, their features, and the
/// rewards against their references.
struct ScstData {
    images: ImageRows,
    train: SplitImages,
    dev: SplitImages,
    train_reward: Reward,
    dev_reward: Reward,
}

fn load_data(options: &ScstOptions, model: &Model) -> Result<ScstData> {
    let vocab = Vocabulary::load(&options.work.join("vocab.json"))?;
    if vocab.to_json() != model.vocab.to_json() {
        bail!(
            "{} was trained on another vocabulary than {}'s: pass the work folder the model was trained with",
            options.from.display(),
            options.work.display()
        );
    }
    let (features, images) = model_images(model, &options.features)?;
    let train = split_images(
        &options.work,
        Split::Train,
        &features,
        &options.features,
        options.limit,
    )?;
    let dev = split_images(
        &options.work,
        Split::Dev,
        &features,
        &options.features,
        options.limit,
    )?;
    let train_reward = Reward::new(&train.references, true);
    let dev_reward = Reward::new(&dev.references, false);
    Ok(ScstData {
        images,
        train,
        dev,
        train_reward,
        dev_reward,
    })
}

fn write_best(out: &Path, model: &Model, epoch: usize, dev: DevScores) -> Result<()> {
    let metadata = HashMap::from([
        ("epoch".to_owned(), epoch.to_string()),
        ("dev_cider".to_owned(), dev.cider.to_string()),
        ("dev_meteor_exact".to_owned(), dev.meteor_exact.to_string()),
    ]);
    write_atomic(
        &out.join("weights.safetensors"),
        &weights_bytes(
            &model.config.decoder.layout(),
            &model.params,
            metadata,
            false,
        )?,
    )
}

/// Checks the options and the output folder, and loads the model to train: the starting model, or
/// the interrupted run's last epoch with its optimiser and loop state.
fn start(options: &ScstOptions) -> Result<(Model, Checkpoint<Option<ScstState>>)> {
    if options.samples < 2 {
        bail!(
            "--samples must be at least 2: each sample's baseline is the mean reward of the others"
        );
    }
    if !(options.meteor_weight >= 0.0 && options.meteor_weight.is_finite()) {
        bail!(
            "--meteor-weight must be a number of 0 or more (0: CIDEr-D alone), not {}",
            options.meteor_weight
        );
    }
    if options.batch == 0 {
        bail!("--batch must be at least 1 image");
    }
    let out = &options.out;
    let last_path = out.join("last.safetensors");
    if options.resume {
        if !last_path.is_file() {
            bail!(
                "--resume: {} holds no self-critical run to continue (no last.safetensors): drop --resume to start one there",
                out.display()
            );
        }
        let mut model = Model::load(out)?;
        let Checkpoint {
            params,
            m,
            v,
            state,
        } = load_last::<ScstState>(&last_path, model.config.decoder.layout().total)?;
        model.params = params;
        let state = Some(state);
        let params = Vec::new();
        return Ok((
            model,
            Checkpoint {
                params,
                m,
                v,
                state,
            },
        ));
    }
    let model_files = ["config.json", "weights.safetensors", "last.safetensors"];
    if !options.force && model_files.iter().any(|f| out.join(f).exists()) {
        bail!(
            "{} already holds a model: pass --resume to continue its training, --force to replace it, or choose another --out",
            out.display()
        );
    }
    if options.from == *out {
        bail!("--out must differ from --from: the cross-entropy model is kept as it is");
    }
    let model =
        Model::load(&options.from).with_context(|| format!("--from {}", options.from.display()))?;
    let total = model.params.len();
    Ok((
        model,
        Checkpoint {
            params: Vec::new(),
            m: vec![0.0; total],
            v: vec![0.0; total],
            state: None,
        },
    ))
}

/// A self-critical run between its steps: the model being trained, the optimiser, the random
/// stream, the scratch buffers and the state a checkpoint keeps.
struct ScstRun {
    model: Model,
    /// The model's decoder without its regulariser: the policy gradient alone.
    config: DecoderConfig,
    optimizer: Optimizer,
    rng: Rng,
    ws: Workspace,
    batch: Batch<f32>,
    groups: usize,
    state: ScstState,
}

/// One epoch's sums: the rewards of its samples, and the images it took.
struct EpochSums {
    reward: f64,
    samples: usize,
    images: usize,
    started: Instant,
    train_seconds: f64,
}

impl ScstRun {
    /// One epoch over the training images in a fresh order, `--batch` images a step (stopping
    /// early at `--max-steps`).
    fn epoch(&mut self, options: &ScstOptions, data: &ScstData) -> Result<EpochSums> {
        let epoch = self.state.epoch + 1;
        let started = Instant::now();
        let mut order: Vec<usize> = (0..data.train.rows.len()).collect();
        self.rng.shuffle(&mut order);
        let bar = crate::progress::bar(order.len() as u64, "images", options.progress);
        bar.set_prefix(format!("scst {epoch}"));
        let (mut reward_sum, mut sampled, mut seen) = (0.0, 0usize, 0usize);
        for chunk in order.chunks(options.batch) {
            if options.max_steps.is_some_and(|max| self.state.steps >= max) {
                break;
            }
            let rewards = self.step(options, data, chunk)?;
            reward_sum += rewards.iter().flatten().sum::<f64>();
            sampled += rewards.iter().map(Vec::len).sum::<usize>();
            seen += chunk.len();
            bar.inc(chunk.len() as u64);
            bar.set_message(format!("reward {:.3}", reward_sum / sampled as f64));
        }
        bar.finish_and_clear();
        Ok(EpochSums {
            reward: reward_sum,
            samples: sampled,
            images: seen,
            started,
            train_seconds: started.elapsed().as_secs_f64(),
        })
    }

    /// One policy-gradient step on the training images `chunk`: captions sampled for each, their
    /// rewards, each caption weighted by its advantage. Returns the rewards.
    fn step(
        &mut self,
        options: &ScstOptions,
        data: &ScstData,
        chunk: &[usize],
    ) -> Result<Vec<Vec<f64>>> {
        let step_seed = self.rng.next_u64();
        let inputs: Vec<&[f32]> = chunk
            .iter()
            .map(|&i| data.images.row(data.train.rows[i]))
            .collect();
        let (samples, rewards) = sample_and_reward(
            &self.model,
            &data.train_reward,
            options.meteor_weight,
            chunk,
            &inputs,
            options.samples,
            step_seed,
        );
        let image_advantages: Vec<Vec<f64>> = rewards.iter().map(|r| advantages(r)).collect();
        policy_batch(
            &mut self.batch,
            &self.model,
            &inputs,
            &samples,
            &image_advantages,
            self.groups,
        );
        if self.batch.captions() > 0 {
            let loss = self.optimizer.step(
                &mut self.model.params,
                &self.config,
                &self.batch,
                &mut self.ws,
                None,
                self.state.lr,
            );
            if !loss.is_finite() {
                bail!(
                    "the policy-gradient loss became {loss} at epoch {}: stopped; {} holds the last good checkpoint (epoch {}). Try a lower --lr",
                    self.state.epoch + 1,
                    options.out.display(),
                    self.state.epoch
                );
            }
            self.model.params_changed();
        }
        self.state.steps += 1;
        self.state.adam_step = self.optimizer.step;
        Ok(rewards)
    }

    /// After an epoch: its dev scores, the best weights kept when its selection score is the best
    /// so far, the checkpoint and log written.
    fn end_epoch(
        &mut self,
        options: &ScstOptions,
        data: &ScstData,
        sums: EpochSums,
    ) -> Result<ScstEpochLog> {
        let (out, weight) = (&options.out, options.meteor_weight);
        let epoch = self.state.epoch + 1;
        let dev = dev_scores(
            &self.model,
            &data.dev,
            &data.dev_reward,
            &data.images,
            &options.dev_search,
        );
        let best = dev.score(weight) > self.state.best_dev_score;
        if best {
            self.state.best_dev_score = dev.score(weight);
            self.state.best_epoch = epoch;
            write_best(out, &self.model, epoch, dev)?;
        }
        let log = ScstEpochLog {
            epoch,
            reward: sums.reward / sums.samples.max(1) as f64,
            dev_cider: dev.cider,
            dev_meteor_exact: dev.meteor_exact,
            lr: self.state.lr,
            seconds: sums.started.elapsed().as_secs_f64(),
            images_per_s: sums.images as f64 / sums.train_seconds,
            best,
        };
        self.state.epoch = epoch;
        self.state.rng = self.rng.state;
        self.state.lr *= options.lr_decay;
        save_last(
            &out.join("last.safetensors"),
            &self.model.params,
            &self.optimizer,
            &self.state,
        )?;
        append_log(out, &log)?;
        if options.progress {
            // The selection score named with its formula: "(best)" may mark an epoch whose
            // CIDEr-D fell while its METEOR rose more.
            eprintln!(
                "scst epoch {epoch}: mean reward {:.3}, dev CIDEr-D {:.2}, exact METEOR {:.2}, selection score (CIDEr-D + {} x METEOR) {:.2}{}, {:.0} images/s",
                log.reward,
                dev.cider * 100.0,
                dev.meteor_exact * 100.0,
                weight,
                dev.score(weight) * 100.0,
                if best { " (best)" } else { "" },
                log.images_per_s
            );
        }
        Ok(log)
    }
}

/// The state a new run starts from (the shipped or given model's scores on dev as the best so
/// far), its folder made and written.
fn fresh_state(options: &ScstOptions, model: &Model, start_dev: DevScores) -> Result<ScstState> {
    let out = &options.out;
    crate::fsio::create_output_dir(out)?;
    let _ = std::fs::remove_file(out.join("log.jsonl"));
    let _ = std::fs::remove_file(out.join("last.safetensors"));
    model.save(out, false)?;
    write_best(out, model, 0, start_dev)?;
    Ok(ScstState {
        epoch: 0,
        steps: 0,
        adam_step: 0,
        rng: Rng::new(options.seed).state,
        lr: options.lr,
        best_dev_score: start_dev.score(options.meteor_weight),
        best_epoch: 0,
    })
}

pub fn train_scst(options: &ScstOptions) -> Result<ScstReport> {
    let (model, checkpoint) = start(options)?;
    let data = load_data(options, &model)?;
    let threads = crate::engine::threads();
    let start_dev = dev_scores(
        &model,
        &data.dev,
        &data.dev_reward,
        &data.images,
        &options.dev_search,
    );
    let state = match checkpoint.state {
        Some(state) => state,
        None => fresh_state(options, &model, start_dev)?,
    };
    if options.progress {
        eprintln!(
            "starting from dev CIDEr-D {:.2}, exact METEOR {:.2} ({})",
            start_dev.cider * 100.0,
            start_dev.meteor_exact * 100.0,
            if state.epoch == 0 {
                "the cross-entropy model".to_owned()
            } else {
                format!("epoch {} of this run", state.epoch)
            }
        );
    }
    let adam = AdamConfig {
        lr: options.lr,
        ..AdamConfig::default()
    };
    let config: DecoderConfig = model.config.decoder.without_regulariser();
    let mut batch = Batch::default();
    // The policy is the distribution the captions are sampled from, without these words.
    batch.excluded = banned(&model).to_vec();
    let mut run = ScstRun {
        optimizer: Optimizer::new(checkpoint.m, checkpoint.v, state.adam_step, adam, threads),
        ws: config.workspace(),
        groups: config.groups(threads),
        config,
        batch,
        rng: Rng::new(state.rng),
        model,
        state,
    };
    let mut report = ScstReport {
        start_dev,
        epochs: Vec::new(),
        best_epoch: run.state.best_epoch,
        best_dev_score: run.state.best_dev_score,
    };
    while run.state.epoch < options.epochs {
        if options.max_steps.is_some_and(|max| run.state.steps >= max) {
            break;
        }
        let sums = run.epoch(options, &data)?;
        report.epochs.push(run.end_epoch(options, &data, sums)?);
    }
    report.best_epoch = run.state.best_epoch;
    report.best_dev_score = run.state.best_dev_score;
    Ok(report)
}

/// Spreads image indices over the seed space (the golden ratio in 64 bits).
const PHI: u64 = 0x9E37_79B9_7F4A_7C15;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advantages_sum_to_zero_and_vanish_for_a_constant_reward() {
        // The leave-one-out baseline: sum_s (r_s - mean_{j!=s} r_j) = 0 for any rewards, so the
        // samples of an image pull up and down by the same total.
        let rewards = [0.3, 1.2, 0.0, 0.7, 2.5];
        let a = advantages(&rewards);
        assert!(a.iter().sum::<f64>().abs() < 1e-12);
        assert!((a[1] - (1.2 - (0.3 + 0.0 + 0.7 + 2.5) / 4.0)).abs() < 1e-12);
        // A reward that does not depend on the caption gives no advantage at all, hence no
        // gradient: the weights stay where they are.
        assert!(advantages(&[0.8; 5]).iter().all(|&x| x == 0.0));
    }
}
