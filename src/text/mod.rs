//! Caption text: the cleaning rules and the vocabulary (tokenizer).

mod clean;
mod vocab;

pub use clean::{clean_caption, wrap_caption, END_TOKEN, START_TOKEN};
pub use vocab::{Vocabulary, PAD_ID, UNK_ID, UNK_TOKEN};
