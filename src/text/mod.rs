//! Caption text: the two tokenisations (coco-caption's PTB tokens and the seed's cleaning), the
//! sentence a person reads, and the vocabulary.

pub mod class_words;
mod clean;
mod ptb;
mod sentence;
mod vocab;

pub use clean::{clean_caption, wrap_caption, END_TOKEN, START_TOKEN};
pub use ptb::{ptb_tokenize, ptb_tokens, PUNCTUATION};
pub use sentence::sentence;
pub use vocab::{Vocabulary, PAD_ID, UNK_ID, UNK_TOKEN};

use serde::{Deserialize, Serialize};

/// How raw captions become tokens. A work folder and every model trained on it record theirs, and
/// `evaluate` scores by the model's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Tokenization {
    /// coco-caption's protocol: Stanford PTB tokens, lower-cased, punctuation removed (every
    /// published Flickr8k/COCO number uses it).
    #[default]
    #[value(
        help = "coco-caption's PTBTokenizer: all words kept (\"a\", \"3\", \"t-shirt\"), punctuation removed"
    )]
    Ptb,
    /// The Keras tutorial's cleaning: lowercase, no punctuation, no one-letter or non-alphabetic
    /// words ("a" and "3" are deleted).
    #[value(
        help = "The Keras tutorial's cleaning: no punctuation, no one-letter or non-alphabetic words"
    )]
    Seed,
}

impl Tokenization {
    pub fn tokenize(self, raw: &str) -> Vec<String> {
        match self {
            Tokenization::Ptb => ptb_tokenize(raw),
            Tokenization::Seed => clean_caption(raw),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Tokenization::Ptb => "ptb",
            Tokenization::Seed => "seed",
        }
    }

    /// The vocabulary threshold each protocol is usually run with: 5 for PTB tokens (the standard
    /// setting), 1 (every training word) for the seed's.
    pub fn default_min_count(self) -> u64 {
        match self {
            Tokenization::Ptb => 5,
            Tokenization::Seed => 1,
        }
    }
}
