//! The `captioner` command line: one subcommand per pipeline stage, each a thin layer over the library.

use captioner::dataset::{Format, SplitSizes};
use captioner::prepare::{describe, prepare, PrepareOptions};
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

/// A pure-Rust image-caption generator: a CNN reads a photo, an LSTM writes a sentence about it.
///
/// Every stage is a command; each reads only what the previous one wrote:
///
///   prepare   caption dataset -> work folder (descriptions.txt, vocab.json, splits.json, summary.json)
#[derive(Parser)]
#[command(name = "captioner", version, verbatim_doc_comment)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Prepare(PrepareArgs),
}

#[derive(Clone, Copy, ValueEnum)]
enum FormatArg {
    Auto,
    Flickr8k,
    Karpathy,
    Kaggle,
}

/// Turn a caption dataset into cleaned captions, a vocabulary and splits.
///
/// Reads the original Flickr8k release (Flickr8k.token.txt + Flickr_8k.{train,dev,test}Images.txt),
/// Karpathy's split JSON (dataset_flickr8k.json; Flickr30k and COCO have the same schema) or the
/// Kaggle captions.txt CSV. Cleaning follows the seed: lowercase, delete punctuation, drop one-letter
/// and non-alphabetic tokens. The vocabulary comes from the training split only.
///
/// Writes into --out: descriptions.txt (`<image_id> <cleaned caption>` per caption),
/// vocab.json, splits.json and summary.json.
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
struct PrepareArgs {
    /// A caption file, or the folder holding one.
    #[arg(long)]
    data: PathBuf,
    /// Work folder to write into (created if missing).
    #[arg(long)]
    out: PathBuf,
    /// Which form the captions are in.
    #[arg(long, value_enum, default_value = "auto")]
    format: FormatArg,
    /// Words seen fewer times than this in the training split map to <unk>.
    #[arg(long, default_value_t = 1)]
    min_count: u64,
    /// Folder of the image files: ids whose image is missing are reported and excluded.
    #[arg(long)]
    images: Option<PathBuf>,
    /// TRAIN,DEV,TEST image counts of the split made for caption files that come without one
    /// (default: 10% dev, 10% test, the rest train).
    #[arg(long)]
    split_sizes: Option<SplitSizes>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Prepare(args) => run_prepare(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
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
        min_count: args.min_count,
        images: args.images,
        split_sizes: args.split_sizes,
    };
    let summary = prepare(&options)?;
    print!("{}", describe(&summary));
    println!("wrote {}", options.out.display());
    Ok(())
}
