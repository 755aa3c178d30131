//! Caption text: the two tokenisations (the seed's cleaning and coco-caption's PTB tokens), the
//! sentence a person reads, and the vocabulary.

mod clean;
mod ptb;
mod vocab;

pub use clean::{clean_caption, wrap_caption, END_TOKEN, START_TOKEN};
pub use ptb::{ptb_tokenize, ptb_tokens, PUNCTUATION};
pub use vocab::{Vocabulary, PAD_ID, UNK_ID, UNK_TOKEN};
