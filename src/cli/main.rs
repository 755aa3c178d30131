//! The `captioner` command line: one subcommand per pipeline stage, each a thin layer over the library
//! (the flags in `args.rs`).

mod args;

use captioner::caption::{CaptionOptions, Captioner};
use captioner::dataset::Format;
use captioner::features::{extract, FeaturesOptions, Selection};
use captioner::prepare::{describe, prepare, PrepareOptions};
use captioner::train::{train, TrainOptions};
use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;

use args::*;

fn main() -> ExitCode {
    // Output piped into `head` ends quietly, as other command-line tools do, instead of a panic
    // on the failed print (Rust ignores SIGPIPE by default).
    #[cfg(unix)]
    // SAFETY: restores the default action of one signal before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Prepare(args) => run_prepare(args).map(|()| ExitCode::SUCCESS),
        Command::Features(args) => run_features(args),
        Command::Train(args) => run_train(args).map(|()| ExitCode::SUCCESS),
        Command::Scst(args) => run_scst(args).map(|()| ExitCode::SUCCESS),
        Command::Evaluate(args) => run_evaluate(args).map(|()| ExitCode::SUCCESS),
        Command::Caption(args) => run_caption(args),
        Command::Serve(args) => run_serve(args).map(|()| ExitCode::SUCCESS),
        Command::Merge(args) => run_merge(args),
        Command::Export(args) => run_export(args).map(|()| ExitCode::SUCCESS),
        Command::Familiar(args) => run_familiar(args).map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_export(args: ExportArgs) -> anyhow::Result<()> {
    let model = captioner::model::Model::load(&args.model)?;
    model.save(&args.out, true)?;
    let weights = std::fs::metadata(args.out.join("weights.safetensors"))?.len();
    println!(
        "wrote {}: config.json, vocab.json, weights.safetensors ({:.1} MB, f16)",
        args.out.display(),
        weights as f64 / 1e6
    );
    Ok(())
}

fn run_familiar(args: FamiliarArgs) -> anyhow::Result<()> {
    let model = captioner::model::Model::load(&args.model)?;
    let data = captioner::work_folder::load_training_data(&args.work, &args.features, None)?;
    if data.features.encoder != model.config.encoder {
        anyhow::bail!(
            "{} holds {} features but the model reads {}'s",
            args.features.display(),
            data.features.encoder,
            model.config.encoder
        );
    }
    captioner::train::training_photos_familiar(&data)?.save(&args.model)?;
    captioner::train::training_photos_concepts(&data)?.save(&args.model)?;
    println!(
        "wrote {} and {}",
        args.model.join(captioner::familiar::FILE).display(),
        args.model.join(captioner::evidence::FILE).display()
    );
    Ok(())
}

fn run_prepare(args: PrepareArgs) -> anyhow::Result<()> {
    let format = match args.format {
        FormatArg::Auto => None,
        FormatArg::Flickr8k => Some(Format::Flickr8k),
        FormatArg::Karpathy => Some(Format::Karpathy),
        FormatArg::Kaggle => Some(Format::Kaggle),
    };
    let options = PrepareOptions {
        data: args.data,
        out: args.out,
        format,
        tokenize: args.tokenize,
        min_count: args.min_count,
        images: args.images,
        split_sizes: args.split_sizes,
        force: args.force,
    };
    let summary = prepare(&options)?;
    print!("{}", describe(&summary));
    println!("wrote {}", options.out.display());
    Ok(())
}

fn run_features(args: FeaturesArgs) -> anyhow::Result<ExitCode> {
    args.decode.apply();
    captioner::engine::set_threads(args.threads);
    let selection = match (args.list, args.split_file, args.ids.is_empty()) {
        (Some(list), _, _) => Selection::List(list),
        (None, Some(file), _) => Selection::SplitFile(file),
        (None, None, false) => Selection::Ids(args.ids),
        (None, None, true) => Selection::All,
    };
    let options = FeaturesOptions {
        images: args.images.unwrap_or_default(),
        selection,
        out: args.out,
        encoder: args.encoder,
        weights: args.weights,
        resize: args.resize,
        grid: args.grid,
        classes: args.classes,
        batch: args.batch,
        progress: !args.quiet,
        shard: args.shard.shard()?,
    };
    let report = extract(&options)?;
    let kept = if report.kept > 0 {
        format!(", {} kept from earlier runs", report.kept)
    } else {
        String::new()
    };
    println!(
        "{} images in {} ({} computed, {} reused{kept}) in {:.1} s, {:.0} images/s computed",
        report.images,
        options.out.display(),
        report.computed,
        report.reused,
        report.seconds,
        report.computed as f64 / report.seconds.max(1e-9)
    );
    if report.failed.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!("{} images failed and were skipped:", report.failed.len());
    for (_, reason) in &report.failed {
        eprintln!("  {reason}");
    }
    Ok(ExitCode::from(2))
}

fn run_train(args: TrainArgs) -> anyhow::Result<()> {
    captioner::engine::set_threads(args.run.threads);
    let options = TrainOptions {
        decoder: args.decoder,
        work: args.work,
        features: args.features,
        out: args.out,
        epochs: args.epochs,
        batch: args.batch,
        lr: args.lr,
        lr_decay: args.lr_decay,
        dropout: args.dropout,
        hidden: args.hidden,
        attention_dim: args.attention_dim,
        alpha_c: args.alpha_c,
        seed: args.run.seed,
        patience: args.patience,
        resume: args.run.resume,
        force: args.run.force,
        progress: !args.run.quiet,
        max_steps: args.run.max_steps,
        limit: args.run.limit.map(|n| n as usize),
    };
    let report = train(&options)?;
    println!(
        "best dev loss {:.4} at epoch {} ({} epoch{} run{}); model in {}",
        report.best_dev_loss,
        report.best_epoch,
        report.epochs.len(),
        if report.epochs.len() == 1 { "" } else { "s" },
        if report.stopped_early {
            ", stopped early"
        } else {
            ""
        },
        options.out.display()
    );
    Ok(())
}

fn run_scst(args: ScstArgs) -> anyhow::Result<()> {
    captioner::engine::set_threads(args.run.threads);
    let options = captioner::scst::ScstOptions {
        from: args.from,
        work: args.work,
        features: args.features,
        out: args.out,
        epochs: args.epochs,
        batch: args.batch,
        samples: args.samples,
        lr: args.lr,
        lr_decay: args.lr_decay,
        meteor_weight: args.meteor_weight,
        dev_search: captioner::generate::SearchOptions {
            beam: 1,
            length_penalty: 0.0,
            block_repeats: true,
        },
        seed: args.run.seed,
        resume: args.run.resume,
        force: args.run.force,
        progress: !args.run.quiet,
        max_steps: args.run.max_steps,
        limit: args.run.limit.map(|n| n as usize),
    };
    let report = captioner::scst::train_scst(&options)?;
    println!(
        "best dev selection score (CIDEr-D + {} x exact METEOR) {:.2} at epoch {} (start: CIDEr-D {:.2}, exact METEOR {:.2}; {} epoch{} run); model in {}",
        options.meteor_weight,
        report.best_dev_score * 100.0,
        report.best_epoch,
        report.start_dev.cider * 100.0,
        report.start_dev.meteor_exact * 100.0,
        report.epochs.len(),
        if report.epochs.len() == 1 { "" } else { "s" },
        options.out.display()
    );
    Ok(())
}

fn run_evaluate(args: EvaluateArgs) -> anyhow::Result<()> {
    captioner::engine::set_threads(args.threads);
    let model = captioner::model::Model::load_or_shipped(args.model.as_deref())?;
    let options = captioner::evaluate::EvaluateOptions {
        work: args.work,
        features: args.features,
        split: args.split,
        search: args.search.options(),
        out: args.out,
        force: args.force,
        meteor_jar: args.meteor_jar,
        ground: args.ground.then(|| args.ground_thresholds.options()),
        weights: args.weights,
        progress: !args.quiet,
        limit: args.limit.map(|n| n as usize),
    };
    let evaluation = captioner::evaluate::evaluate(&model, &options)?;
    print!("{}", captioner::evaluate::table(&evaluation));
    if let Some(out) = &options.out {
        println!("wrote {}", out.display());
    }
    Ok(())
}

/// Four decimals: what a JSON line reports of a probability or score.
fn run_merge(args: MergeArgs) -> anyhow::Result<ExitCode> {
    let expected = match &args.expect {
        Some(list) => Some(captioner::photos::read_list(list)?),
        None => None,
    };
    let features = |p: &PathBuf| p.extension().is_some_and(|e| e == "safetensors");
    let missing = if args.inputs.iter().all(features) {
        let merged = captioner::features_file::Features::merge(&args.inputs)?;
        merged.save(&args.out)?;
        println!(
            "{}: features of {} images from {} files",
            args.out.display(),
            merged.ids.len(),
            args.inputs.len()
        );
        // Expected entries are image ids or photo file names.
        let held: std::collections::HashSet<&str> = merged.ids.iter().map(String::as_str).collect();
        expected
            .unwrap_or_default()
            .into_iter()
            .filter(|key| !held.contains(captioner::dataset::image_id(key)))
            .collect()
    } else {
        let merged = captioner::records::merge(&args.inputs, &args.out, expected.as_deref())?;
        println!(
            "{}: {} captions from {} files",
            args.out.display(),
            merged.records,
            args.inputs.len()
        );
        merged.missing
    };
    if missing.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!(
        "{} expected keys are in no file: {}{}",
        missing.len(),
        missing[..missing.len().min(10)].join(", "),
        if missing.len() > 10 { " and more" } else { "" }
    );
    Ok(ExitCode::FAILURE)
}

fn run_serve(args: ServeArgs) -> anyhow::Result<()> {
    args.decode.apply();
    captioner::engine::set_threads(args.threads);
    let options = captioner::serve::ServeOptions {
        addr: args.addr,
        search: args.search.options(),
        ground: args.ground_thresholds.when(args.ground),
        max_batch: usize::from(args.max_batch),
        max_wait: std::time::Duration::from_millis(args.max_wait_ms),
        max_body_bytes: usize::from(args.max_body_mb) * 1024 * 1024,
        queue: args.queue,
        header_timeout: std::time::Duration::from_secs(args.header_timeout_s),
        body_timeout: std::time::Duration::from_secs(args.body_timeout_s),
        max_connections: args.max_connections as usize,
        upload_budget_bytes: args.upload_budget_mb as usize * 1024 * 1024,
    };
    let (model, weights, ground) = (args.model, args.weights, options.ground);
    captioner::serve::serve(
        move || {
            let captioner = Captioner::load(model.as_deref(), weights.as_deref())?;
            let asked = CaptionOptions {
                ground,
                ..CaptionOptions::default()
            };
            if let Some(note) = captioner.grounding_note(&asked) {
                eprintln!("note: {note}");
            }
            Ok(captioner)
        },
        options,
    )
}

/// One photo's caption (or why it has none) where `caption` was asked to put it: a record with
/// --out, a JSON line with --json, else `<photo><TAB><caption>` (errors to stderr).
fn report(
    args: &CaptionArgs,
    captioner: &Captioner,
    name: &str,
    caption: anyhow::Result<captioner::caption::Captioned>,
    records: &mut Option<captioner::records::RecordWriter>,
) -> anyhow::Result<()> {
    match (caption, records) {
        (Ok(caption), Some(records)) => records.write(&captioner::records::Record::new(
            name,
            &captioner.name,
            &caption,
        ))?,
        (Ok(caption), None) if args.json => {
            println!(
                "{}",
                caption.detailed_json(name, &captioner.model.vocab, args.maps)
            )
        }
        (Ok(caption), None) => println!("{name}\t{}", caption.sentence),
        (Err(err), records) => {
            if args.json && records.is_none() {
                println!(
                    "{}",
                    serde_json::json!({"image": name, "error": format!("{err:#}")})
                );
            } else {
                eprintln!("error: {name}: {err:#}");
            }
        }
    }
    Ok(())
}

fn run_caption(args: CaptionArgs) -> anyhow::Result<ExitCode> {
    use captioner::photos::{expand, for_each_photo};
    use captioner::records::RecordWriter;
    args.decode.apply();
    captioner::engine::set_threads(args.threads);
    let captioner = Captioner::load(args.model.as_deref(), args.weights.as_deref())?;
    if let Some(dir) = &args.attention {
        if !matches!(
            captioner.model.config.decoder,
            captioner::decoder::DecoderConfig::Attention(_)
        ) {
            anyhow::bail!(
                "--attention draws where an attention decoder looked; this model's decoder is {} (train one with `captioner train --decoder attention`)",
                captioner.model.config.decoder.name()
            );
        }
        captioner::fsio::create_output_dir(dir)?;
    }
    let sources = expand(&args.images, &args.list, args.recursive)?;
    if sources.is_empty() {
        anyhow::bail!("nothing to caption: give photos, folders, tar shards, - or --list <file>");
    }
    let shard = args.shard.shard()?;
    let mut records = args.out.as_deref().map(RecordWriter::open).transpose()?;
    let resumed = records.as_ref().map_or(0, RecordWriter::len);
    let options = CaptionOptions {
        search: args.search.options(),
        ground: args.ground_thresholds.when(args.ground),
        // What only --json's lines report (the photo's share in the caption costs a decoder pass).
        details: args.json && records.is_none(),
    };
    if let Some(note) = captioner.grounding_note(&options) {
        eprintln!("note: {note}");
    }
    let (mut failed, mut done_before) = (0, 0);
    // Photos are read in order and captioned `--batch` at a time side by side; their lines come
    // out in order.
    type Chunk = Vec<(String, anyhow::Result<Vec<u8>>)>;
    let mut chunk: Chunk = Vec::new();
    let output = |chunk: &mut Chunk,
                  records: &mut Option<RecordWriter>,
                  failed: &mut usize|
     -> anyhow::Result<()> {
        let read: Vec<&[u8]> = chunk
            .iter()
            .filter_map(|(_, bytes)| bytes.as_deref().ok())
            .collect();
        let mut captioned = captioner.caption_many_bytes(&read, &options).into_iter();
        for (name, bytes) in chunk.drain(..) {
            let caption = bytes.and_then(|_| captioned.next().expect("one caption per photo read"));
            let caption = caption.and_then(|caption| {
                if let Some(dir) = &args.attention {
                    captioner::figure::save_attention_figure(dir, &name, &caption)?;
                }
                Ok(caption)
            });
            *failed += usize::from(caption.is_err());
            report(&args, &captioner, &name, caption, records)?;
        }
        Ok(())
    };
    for_each_photo(&sources, shard.as_ref(), |name, bytes| {
        if records.as_ref().is_some_and(|r| r.holds(name)) {
            done_before += 1;
            return Ok(());
        }
        chunk.push((name.to_owned(), bytes));
        if chunk.len() >= usize::from(args.batch) {
            output(&mut chunk, &mut records, &mut failed)?;
        }
        Ok(())
    })?;
    output(&mut chunk, &mut records, &mut failed)?;
    if let (Some(records), Some(out)) = (&records, &args.out) {
        eprintln!(
            "{}: {} captions ({} new, {done_before} already there from an earlier run), {failed} photos failed",
            out.display(),
            records.len(),
            records.len() - resumed,
        );
    }
    Ok(if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
