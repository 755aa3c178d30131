//! The `train` stage: a decoder (merge or attention) on the training split's captions, with the dev-split loss
//! after every epoch, the best checkpoint kept by dev loss (as the seed does) and the last one kept
//! for resuming, early stopping after `patience` epochs without improvement.
//!
//! Batches hold captions of similar length (shuffled pools sorted by length, batches shuffled), and
//! every next-word position is one loss term. One RNG drives shuffling and dropout; its state is saved
//! with the last checkpoint, so a resumed run gives exactly the weights of an uninterrupted one (same
//! seed and thread count).

use crate::decoder::attention::AttentionConfig;
use crate::decoder::merge::MergeConfig;
use crate::decoder::{Batch, DecoderConfig, Workspace};
use crate::engine::rng::Rng;
use crate::fsio::{read_text, write_atomic};
use crate::model::{weights_bytes, ModelConfig};
use crate::nn::adam::AdamConfig;
use crate::run::{append_log, load_last, save_last, Checkpoint, Optimizer};
use crate::work_folder::{image_rows, load_training_data, CaptionSet, ImageRows, TrainingData};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The decoders `train` can make.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DecoderKind {
    /// The seed's merge model: LSTM over the words, the pooled photo feature added after it
    Merge,
    /// Soft attention (Show, Attend and Tell): the LSTM attends over the 7x7 grid at every word
    Attention,
}

pub struct TrainOptions {
    pub decoder: DecoderKind,
    pub work: PathBuf,
    pub features: PathBuf,
    pub out: PathBuf,
    pub epochs: usize,
    pub batch: usize,
    pub lr: f64,
    /// Multiply the learning rate by this after every epoch (1 = constant, the seed's).
    pub lr_decay: f64,
    pub dropout: f64,
    pub hidden: usize,
    /// Attention decoder: width of the attention layer, weight of the doubly stochastic term.
    pub attention_dim: usize,
    pub alpha_c: f64,
    pub seed: u64,
    pub patience: usize,
    pub resume: bool,
    /// Replace a model already in `out` (without it, that is an error: a model is never lost).
    pub force: bool,
    pub progress: bool,
    /// Stop after this many steps in total (for tests and benchmarks; None = no limit).
    pub max_steps: Option<u64>,
    /// Only the first this many images of the train and dev splits (a quick run; each epoch's
    /// log line records it).
    pub limit: Option<usize>,
}

/// Batches of similar length: shuffle, sort pools of 32 batches by length, cut, shuffle the batches.
pub fn length_batches(lengths: &[usize], batch: usize, rng: &mut Rng) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    rng.shuffle(&mut order);
    let mut batches: Vec<Vec<usize>> = Vec::new();
    for pool in order.chunks_mut(batch * 32) {
        pool.sort_by_key(|&i| lengths[i]);
        batches.extend(pool.chunks(batch).map(<[usize]>::to_vec));
    }
    rng.shuffle(&mut batches);
    batches
}

/// Fills `batch` with the captions `indices` of `set`, cut into `groups` groups.
pub fn fill_batch(
    batch: &mut Batch<f32>,
    set: &CaptionSet,
    indices: &[usize],
    images: &ImageRows,
    groups: usize,
) {
    batch.fill(indices.len(), groups, |k| {
        let (row, tokens) = &set.items[indices[k]];
        (images.row(*row), tokens.as_slice())
    });
}

/// Mean loss over every next-word position of `set` (dropout off).
pub fn dataset_loss(
    params: &[f32],
    config: &DecoderConfig,
    set: &CaptionSet,
    images: &ImageRows,
    ws: &mut Workspace,
) -> f64 {
    let threads = crate::engine::threads();
    let mut batch = Batch::default();
    let (mut total, mut positions) = (0.0, 0usize);
    let all: Vec<usize> = (0..set.items.len()).collect();
    for chunk in all.chunks(256) {
        fill_batch(&mut batch, set, chunk, images, config.groups(threads));
        total += config.loss(params, &batch, ws, threads) * batch.positions() as f64;
        positions += batch.positions();
    }
    total / positions.max(1) as f64
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
struct TrainState {
    /// Epochs completed.
    epoch: usize,
    adam_step: u64,
    rng: u64,
    lr: f64,
    best_dev_loss: f64,
    best_epoch: usize,
    bad_epochs: usize,
}

#[derive(Debug, Serialize)]
pub struct EpochLog {
    pub epoch: usize,
    pub train_loss: f64,
    pub dev_loss: f64,
    pub lr: f64,
    pub seconds: f64,
    pub captions_per_s: f64,
    pub best: bool,
    /// A quick run's --limit: the first this many images of each split.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}

pub struct TrainReport {
    pub epochs: Vec<EpochLog>,
    pub best_epoch: usize,
    pub best_dev_loss: f64,
    pub stopped_early: bool,
}

/// What the training photos are like (`familiar.rs`), from their pooled features.
pub fn training_photos_familiar(data: &TrainingData) -> Result<crate::familiar::Familiar> {
    let mut rows: Vec<usize> = data.train.items.iter().map(|(row, _)| *row).collect();
    rows.sort_unstable();
    rows.dedup();
    let features: Vec<&[f32]> = rows.iter().map(|&row| data.features.row(row)).collect();
    crate::familiar::Familiar::fit(&features, data.features.dim)
}

/// Concept detectors (`evidence.rs`) fitted on the training photos' pooled features and captions.
pub fn training_photos_concepts(data: &TrainingData) -> Result<crate::evidence::Detectors> {
    let mut by_row: std::collections::BTreeMap<usize, Vec<Vec<&str>>> = Default::default();
    for (row, ids) in &data.train.items {
        let words = ids.iter().filter_map(|&id| data.vocab.token(id)).collect();
        by_row.entry(*row).or_default().push(words);
    }
    let features: Vec<&[f32]> = by_row.keys().map(|&row| data.features.row(row)).collect();
    let captions: Vec<Vec<Vec<&str>>> = by_row.into_values().collect();
    crate::evidence::Detectors::fit(&features, &captions, data.features.dim)
}

/// The configuration of a new decoder of `options.decoder` for this data.
fn decoder_config(options: &TrainOptions, data: &TrainingData) -> Result<DecoderConfig> {
    let vocab = data.vocab.len();
    Ok(match options.decoder {
        DecoderKind::Merge => DecoderConfig::Merge(MergeConfig {
            vocab,
            feature_dim: data.features.dim,
            embed_dim: options.hidden,
            hidden: options.hidden,
            dropout: options.dropout,
        }),
        DecoderKind::Attention => {
            let Some(grid) = &data.features.grid else {
                bail!(
                    "{} has no grids: the attention decoder reads each photo's grid of regions; make them with `captioner features --grid --images <photos> --out <file>`",
                    options.features.display()
                );
            };
            DecoderConfig::Attention(AttentionConfig {
                vocab,
                feature_dim: grid.channels,
                regions: grid.regions(),
                embed_dim: options.hidden,
                hidden: options.hidden,
                attention_dim: options.attention_dim,
                dropout: options.dropout,
                alpha_c: options.alpha_c,
            })
        }
    })
}

/// Refuses to start over a model unless asked to (`--force`), and to resume where there is no run.
fn check_out_folder(options: &TrainOptions, last_path: &Path) -> Result<()> {
    let out = &options.out;
    let model_files = ["config.json", "weights.safetensors", "last.safetensors"];
    if options.resume {
        if !last_path.is_file() {
            bail!(
                "--resume: {} holds no training run to continue (no last.safetensors): drop --resume to start one there",
                out.display()
            );
        }
    } else if !options.force && model_files.iter().any(|f| out.join(f).exists()) {
        bail!(
            "{} already holds a model: pass --resume to continue its training, --force to replace it, or choose another --out",
            out.display()
        );
    }
    Ok(())
}

/// With `--resume`, the last epoch's checkpoint, once the model folder is shown to hold a run of
/// the same data, decoder and options; otherwise fresh parameters and optimiser state.
fn starting_point(
    options: &TrainOptions,
    model_config: &ModelConfig,
    data: &TrainingData,
    last_path: &Path,
) -> Result<Checkpoint<TrainState>> {
    let out = &options.out;
    let config = &model_config.decoder;
    let total = config.layout().total;
    if !options.resume {
        let mut rng = Rng::new(options.seed);
        let params = config.init(&mut rng);
        let state = TrainState {
            epoch: 0,
            adam_step: 0,
            rng: rng.state,
            lr: options.lr,
            best_dev_loss: f64::INFINITY,
            best_epoch: 0,
            bad_epochs: 0,
        };
        let _ = std::fs::remove_file(out.join("log.jsonl"));
        return Ok(Checkpoint {
            params,
            m: vec![0.0; total],
            v: vec![0.0; total],
            state,
        });
    }
    let saved: ModelConfig = serde_json::from_str(&read_text(&out.join("config.json"))?)
        .with_context(|| format!("--resume: {} has no valid config.json", out.display()))?;
    if saved.encoder != model_config.encoder || saved.decoder.image_input() != config.image_input()
    {
        bail!(
            "--resume: {} was trained on {} {}; {} holds {} {}",
            out.display(),
            saved.encoder,
            saved.decoder.image_input(),
            options.features.display(),
            model_config.encoder,
            config.image_input()
        );
    }
    if saved.tokenize != data.tokenize {
        bail!(
            "--resume: {} was trained on {} tokens but {} holds {} tokens: resume with the work folder it was trained on, or start a new model folder",
            out.display(),
            saved.tokenize.name(),
            options.work.display(),
            data.tokenize.name()
        );
    }
    if saved.decoder != *config {
        bail!(
            "--resume: {} holds {:?}, this run asks for {:?}: the same work folder, decoder and options are needed",
            out.display(),
            saved.decoder,
            config
        );
    }
    load_last(last_path, total)
}

/// A training run between its steps: the parameters, the optimiser, the random stream, the
/// scratch buffers and the state a checkpoint keeps.
struct Run<'a> {
    config: &'a DecoderConfig,
    params: Vec<f32>,
    optimizer: Optimizer,
    rng: Rng,
    ws: Workspace,
    batch: Batch<f32>,
    groups: usize,
    state: TrainState,
}

/// One epoch's sums: the loss over its positions, and its captions.
struct EpochSums {
    loss: f64,
    positions: usize,
    captions: usize,
}

impl Run<'_> {
    /// One epoch of length-bucketed batches (stopping early at `--max-steps`).
    fn epoch(
        &mut self,
        options: &TrainOptions,
        train: &CaptionSet,
        images: &ImageRows,
    ) -> Result<EpochSums> {
        let epoch = self.state.epoch + 1;
        let lengths: Vec<usize> = train.items.iter().map(|(_, t)| t.len()).collect();
        let batches = length_batches(&lengths, options.batch, &mut self.rng);
        let bar = crate::progress::bar(train.items.len() as u64, "captions", options.progress);
        bar.set_prefix(format!("epoch {epoch}"));
        let mut sums = EpochSums {
            loss: 0.0,
            positions: 0,
            captions: 0,
        };
        for (step, indices) in batches.iter().enumerate() {
            if options
                .max_steps
                .is_some_and(|max| self.state.adam_step >= max)
            {
                break;
            }
            fill_batch(&mut self.batch, train, indices, images, self.groups);
            let step_loss = self.optimizer.step(
                &mut self.params,
                self.config,
                &self.batch,
                &mut self.ws,
                Some(&mut self.rng),
                self.state.lr,
            );
            if !step_loss.is_finite() {
                bail!(
                    "the training loss became {step_loss} at epoch {epoch}, step {}: stopped; {} holds the last good checkpoint (epoch {}). Try a lower --lr",
                    step + 1,
                    options.out.display(),
                    self.state.epoch
                );
            }
            self.state.adam_step = self.optimizer.step;
            sums.loss += step_loss * self.batch.positions() as f64;
            sums.positions += self.batch.positions();
            sums.captions += indices.len();
            bar.inc(indices.len() as u64);
            bar.set_message(format!("loss {:.3}", sums.loss / sums.positions as f64));
        }
        bar.finish_and_clear();
        Ok(sums)
    }

    /// After an epoch: its dev loss, the best weights kept when it is the best so far, the
    /// checkpoint and log written.
    fn end_epoch(
        &mut self,
        options: &TrainOptions,
        data: &TrainingData,
        images: &ImageRows,
        (sums, started, train_seconds): (EpochSums, Instant, f64),
    ) -> Result<EpochLog> {
        let out = &options.out;
        let epoch = self.state.epoch + 1;
        let dev_loss = dataset_loss(&self.params, self.config, &data.dev, images, &mut self.ws);
        let best = dev_loss < self.state.best_dev_loss;
        let log = EpochLog {
            epoch,
            train_loss: sums.loss / sums.positions.max(1) as f64,
            dev_loss,
            lr: self.state.lr,
            seconds: started.elapsed().as_secs_f64(),
            captions_per_s: sums.captions as f64 / train_seconds,
            best,
            limit: options.limit,
        };
        if best {
            self.state.best_dev_loss = dev_loss;
            self.state.best_epoch = epoch;
            self.state.bad_epochs = 0;
            let metadata = HashMap::from([
                ("epoch".to_owned(), epoch.to_string()),
                ("dev_loss".to_owned(), dev_loss.to_string()),
            ]);
            write_atomic(
                &out.join("weights.safetensors"),
                &weights_bytes(&self.config.layout(), &self.params, metadata, false)?,
            )?;
        } else {
            self.state.bad_epochs += 1;
        }
        self.state.epoch = epoch;
        self.state.rng = self.rng.state;
        self.state.lr *= options.lr_decay;
        save_last(
            &out.join("last.safetensors"),
            &self.params,
            &self.optimizer,
            &self.state,
        )?;
        append_log(out, &log)?;
        if options.progress {
            eprintln!(
                "epoch {epoch}: train loss {:.4}, dev loss {dev_loss:.4}{}, {:.0} captions/s",
                log.train_loss,
                if best { " (best)" } else { "" },
                log.captions_per_s
            );
        }
        Ok(log)
    }
}

pub fn train(options: &TrainOptions) -> Result<TrainReport> {
    let data = load_training_data(&options.work, &options.features, options.limit)?;
    let config = decoder_config(options, &data)?;
    let images = image_rows(&data.features, config.image_input(), &options.features)?;
    let model_config = ModelConfig::new(
        config,
        &data.features.encoder,
        &data.features.preprocessing,
        data.max_length,
        data.tokenize,
        data.vocab.min_count(),
    );
    let out = &options.out;
    let last_path = out.join("last.safetensors");
    check_out_folder(options, &last_path)?;
    crate::fsio::create_output_dir(out)?;
    let Checkpoint {
        params,
        m,
        v,
        state,
    } = starting_point(options, &model_config, &data, &last_path)?;
    write_atomic(
        &out.join("config.json"),
        serde_json::to_string_pretty(&model_config)?.as_bytes(),
    )?;
    write_atomic(&out.join("vocab.json"), data.vocab.to_json().as_bytes())?;
    training_photos_familiar(&data)?.save(out)?;
    training_photos_concepts(&data)?.save(out)?;

    let config = &model_config.decoder;
    let threads = crate::engine::threads();
    let adam = AdamConfig {
        lr: options.lr,
        ..AdamConfig::default()
    };
    let mut run = Run {
        config,
        params,
        optimizer: Optimizer::new(m, v, state.adam_step, adam, threads),
        rng: Rng::new(state.rng),
        ws: config.workspace(),
        batch: Batch::default(),
        groups: config.groups(threads),
        state,
    };
    let mut report = TrainReport {
        epochs: Vec::new(),
        best_epoch: run.state.best_epoch,
        best_dev_loss: run.state.best_dev_loss,
        stopped_early: false,
    };
    while run.state.epoch < options.epochs {
        if options
            .max_steps
            .is_some_and(|max| run.state.adam_step >= max)
        {
            break;
        }
        let started = Instant::now();
        let sums = run.epoch(options, &data.train, &images)?;
        let train_seconds = started.elapsed().as_secs_f64();
        let log = run.end_epoch(options, &data, &images, (sums, started, train_seconds))?;
        report.epochs.push(log);
        if run.state.bad_epochs >= options.patience {
            report.stopped_early = true;
            break;
        }
    }
    report.best_epoch = run.state.best_epoch;
    report.best_dev_loss = run.state.best_dev_loss;
    Ok(report)
}
