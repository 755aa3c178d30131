//! The vocabulary: a word <-> id mapping built from the training captions only, saved as JSON.
//!
//! Ids are stable: 0 `<pad>`, 1 `<unk>`, 2 `startseq`, 3 `endseq`, then the words by descending count,
//! ties in alphabetical (byte) order. Words seen fewer than `min_count` times map to `<unk>`.
//! When no training word did (`min_count` 1, the seed's setting), the model never learns `<unk>`, so
//! unknown words of other captions are dropped instead, as the seed's Keras tokenizer drops them.
//! Compared with the seed's Keras tokenizer (padding + every training token, startseq/endseq included:
//! 7,579 ids on Flickr8k), the only extra id is `<unk>`, so the size is the seed's + 1.

use super::{END_TOKEN, START_TOKEN};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

pub const PAD_ID: u32 = 0;
pub const UNK_ID: u32 = 1;
pub const PAD_TOKEN: &str = "<pad>";
pub const UNK_TOKEN: &str = "<unk>";
const SPECIALS: [&str; 4] = [PAD_TOKEN, UNK_TOKEN, START_TOKEN, END_TOKEN];
const FORMAT: &str = "captioner-vocab/1";

#[derive(Debug, Clone, PartialEq)]
pub struct Vocabulary {
    tokens: Vec<String>,
    /// Training-split count of each token (0 for `<pad>` and `<unk>`).
    counts: Vec<u64>,
    min_count: u64,
    ids: HashMap<String, u32>,
}

#[derive(Serialize, Deserialize)]
struct VocabFile {
    format: String,
    min_count: u64,
    tokens: Vec<String>,
    counts: Vec<u64>,
}

impl Vocabulary {
    /// Builds the vocabulary from tokenised training captions (already wrapped in startseq/endseq).
    pub fn build<'a>(captions: impl IntoIterator<Item = &'a [String]>, min_count: u64) -> Self {
        let mut counts: HashMap<&str, u64> = HashMap::new();
        for caption in captions {
            for token in caption {
                *counts.entry(token.as_str()).or_default() += 1;
            }
        }
        let mut words: Vec<(&str, u64)> = counts
            .iter()
            .filter(|(word, &count)| !SPECIALS.contains(word) && count >= min_count.max(1))
            .map(|(&word, &count)| (word, count))
            .collect();
        words.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        let mut special_counts = SPECIALS.map(|s| counts.get(s).copied().unwrap_or(0));
        special_counts[UNK_ID as usize] = counts
            .iter()
            .filter(|(word, &count)| !SPECIALS.contains(word) && count < min_count.max(1))
            .map(|(_, &count)| count)
            .sum();
        let tokens = SPECIALS
            .iter()
            .map(|s| s.to_string())
            .chain(words.iter().map(|(w, _)| w.to_string()))
            .collect();
        let counts = special_counts
            .into_iter()
            .chain(words.iter().map(|(_, c)| *c))
            .collect();
        Self::from_parts(tokens, counts, min_count)
    }

    fn from_parts(tokens: Vec<String>, counts: Vec<u64>, min_count: u64) -> Self {
        let ids = tokens
            .iter()
            .enumerate()
            .map(|(id, token)| (token.clone(), id as u32))
            .collect();
        Vocabulary {
            tokens,
            counts,
            min_count,
            ids,
        }
    }

    /// Number of ids, padding and specials included (the decoder's output size).
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Distinct training tokens with an id of their own, startseq/endseq included: the size of the
    /// seed's Keras `word_index` when `min_count` is 1.
    pub fn word_count(&self) -> usize {
        self.tokens.len() - 2
    }

    pub fn min_count(&self) -> u64 {
        self.min_count
    }

    pub fn id(&self, token: &str) -> u32 {
        self.ids.get(token).copied().unwrap_or(UNK_ID)
    }

    pub fn token(&self, id: u32) -> Option<&str> {
        self.tokens.get(id as usize).map(String::as_str)
    }

    /// Token ids; unknown words become `<unk>` if training captions had any, else they are dropped.
    pub fn encode(&self, tokens: &[String]) -> Vec<u32> {
        let keep_unknown = self.counts[UNK_ID as usize] > 0;
        tokens
            .iter()
            .map(|t| self.id(t))
            .filter(|&id| id != UNK_ID || keep_unknown)
            .collect()
    }

    pub fn to_json(&self) -> String {
        let file = VocabFile {
            format: FORMAT.to_owned(),
            min_count: self.min_count,
            tokens: self.tokens.clone(),
            counts: self.counts.clone(),
        };
        serde_json::to_string(&file).expect("vocabulary serialises")
    }

    pub fn load(path: &Path) -> Result<Self> {
        let text = crate::fsio::read_text(path)?;
        Self::from_json(&text)
            .with_context(|| format!("{} is not a usable captioner vocabulary", path.display()))
    }

    pub fn from_json(text: &str) -> Result<Self> {
        let file: VocabFile = serde_json::from_str(text)?;
        if file.format != FORMAT {
            bail!("vocabulary format {:?}, expected {FORMAT:?}", file.format);
        }
        let specials_ok = file.tokens.len() >= SPECIALS.len()
            && SPECIALS.iter().zip(&file.tokens).all(|(s, t)| s == t);
        if !specials_ok || file.counts.len() != file.tokens.len() {
            bail!("the vocabulary must start with {SPECIALS:?} and have one count per token");
        }
        Ok(Self::from_parts(file.tokens, file.counts, file.min_count))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::wrap_caption;

    fn captions(texts: &[&str]) -> Vec<Vec<String>> {
        texts
            .iter()
            .map(|t| wrap_caption(&t.split(' ').map(str::to_owned).collect::<Vec<_>>()))
            .collect()
    }

    #[test]
    fn ids_are_specials_then_count_then_alphabet() {
        let caps = captions(&["dog runs", "cat runs", "dog sits", "ant"]);
        let vocab = Vocabulary::build(caps.iter().map(Vec::as_slice), 1);
        let tokens: Vec<_> = (0..vocab.len() as u32)
            .map(|i| vocab.token(i).unwrap())
            .collect();
        assert_eq!(
            tokens,
            ["<pad>", "<unk>", "startseq", "endseq", "dog", "runs", "ant", "cat", "sits"]
        );
        assert_eq!(vocab.word_count(), 7);
        assert_eq!(vocab.id("zebra"), UNK_ID);
        let unseen = wrap_caption(&["zebra".to_owned(), "runs".to_owned()]);
        assert_eq!(
            vocab.encode(&unseen),
            [2, 5, 3],
            "unknown words are dropped when <unk> was never trained"
        );
    }

    #[test]
    fn min_count_maps_rare_words_to_unk() {
        let caps = captions(&["dog runs", "cat runs", "dog sits"]);
        let vocab = Vocabulary::build(caps.iter().map(Vec::as_slice), 2);
        assert_eq!(vocab.len(), 6);
        assert_eq!(vocab.encode(&caps[1]), [2, UNK_ID, 5, 3]);
    }

    #[test]
    fn json_round_trip() {
        let caps = captions(&["dog runs", "cat runs"]);
        let vocab = Vocabulary::build(caps.iter().map(Vec::as_slice), 1);
        let path =
            std::env::temp_dir().join(format!("captioner-vocab-{}.json", std::process::id()));
        std::fs::write(&path, vocab.to_json()).unwrap();
        assert_eq!(Vocabulary::load(&path).unwrap(), vocab);
        std::fs::remove_file(&path).unwrap();
    }
}
