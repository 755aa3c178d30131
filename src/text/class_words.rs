//! What to call each of the encoders' 1,000 ImageNet classes in a sentence: `data/imagenet_class_words.tsv`,
//! generated from WordNet 3.0 by `tools/make_class_words.py` and embedded in the binary.

use super::{Vocabulary, UNK_ID};
use std::sync::OnceLock;

const TABLE: &str = include_str!("../../data/imagenet_class_words.tsv");

/// One class: its WordNet name ("great grey owl"), what people call it ("owl"), each with its
/// article and plural, and the first lemmas of its hypernyms up to the root, nearest first, each
/// with its plural and article.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClassWords {
    pub wnid: &'static str,
    pub name: &'static str,
    pub name_article: &'static str,
    pub name_plural: &'static str,
    pub short: &'static str,
    pub short_article: &'static str,
    pub short_plural: &'static str,
    pub ancestors: Vec<Word>,
}

/// A word or phrase, its plural and its article ("owl", "owls", "an").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Word {
    pub singular: &'static str,
    pub plural: &'static str,
    pub article: &'static str,
}

/// The table, in class order (the classifiers' logit order).
pub fn class_words() -> &'static [ClassWords] {
    static PARSED: OnceLock<Vec<ClassWords>> = OnceLock::new();
    PARSED.get_or_init(|| {
        TABLE
            .lines()
            .enumerate()
            .map(|(index, line)| {
                let fields: Vec<&'static str> = line.split('\t').collect();
                // The file is generated and embedded at build time; tests/class_words.rs reads every line.
                assert!(
                    fields.len() == 11 && fields[0] == index.to_string(),
                    "data/imagenet_class_words.tsv line {}: malformed",
                    index + 1
                );
                ClassWords {
                    wnid: fields[1],
                    name: fields[2],
                    name_article: fields[3],
                    name_plural: fields[4],
                    short: fields[5],
                    short_article: fields[6],
                    short_plural: fields[7],
                    ancestors: fields[8]
                        .split('|')
                        .zip(fields[9].split('|'))
                        .zip(fields[10].split('|'))
                        .filter(|((singular, _), _)| !singular.is_empty())
                        .map(|((singular, plural), article)| Word {
                            singular,
                            plural,
                            article,
                        })
                        .collect(),
                }
            })
            .collect()
    })
}

impl ClassWords {
    /// The nearest word for this class that a decoder's vocabulary holds: what people call it, its
    /// name, then its ancestors nearest first ("tench": "fish"; "great grey owl": "owl" or "bird").
    /// Only one-word candidates count: a caption names it with one token.
    pub fn in_vocabulary(&self, vocab: &Vocabulary) -> Option<Word> {
        self.words_up()
            .filter(|word| !word.singular.contains(' '))
            .find(|word| vocab.id(word.singular) != UNK_ID)
    }

    /// What people call it, its name, then its ancestors, nearest first.
    pub fn words_up(&self) -> impl Iterator<Item = Word> + '_ {
        let short = Word {
            singular: self.short,
            plural: self.short_plural,
            article: self.short_article,
        };
        let name = Word {
            singular: self.name,
            plural: self.name_plural,
            article: self.name_article,
        };
        [short, name]
            .into_iter()
            .chain(self.ancestors.iter().copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_table_has_every_class_in_order() {
        let table = class_words();
        assert_eq!(table.len(), 1000);
        assert_eq!(table[0].wnid, "n01440764");
        let mut wnids: Vec<&str> = table.iter().map(|c| c.wnid).collect();
        wnids.sort();
        assert_eq!(
            wnids,
            table.iter().map(|c| c.wnid).collect::<Vec<_>>(),
            "sorted wnids"
        );
        let find = |name: &str| table.iter().find(|c| c.name == name).unwrap();
        assert_eq!(
            (find("tabby").short, find("tabby").short_plural),
            ("cat", "cats")
        );
        let owl = find("great grey owl");
        assert_eq!((owl.short, owl.short_article), ("owl", "an"));
        assert_eq!(find("tench").short, "fish");
        assert_eq!(find("goldfish").name_plural, "goldfish");
        assert!(owl.ancestors.contains(&Word {
            singular: "bird",
            plural: "birds",
            article: "a"
        }));
    }

    #[test]
    fn each_class_gets_the_nearest_word_the_vocabulary_has() {
        let words = |list: &[&str]| vec![list.iter().map(|w| w.to_string()).collect::<Vec<_>>()];
        let vocab = Vocabulary::build(
            words(&["a", "bird", "fish", "dog"])
                .iter()
                .map(Vec::as_slice),
            1,
        );
        let table = class_words();
        let find = |name: &str| table.iter().find(|c| c.name == name).unwrap();
        let singular = |name: &str| find(name).in_vocabulary(&vocab).map(|w| w.singular);
        assert_eq!(singular("great grey owl"), Some("bird"));
        assert_eq!(singular("tench"), Some("fish"));
        assert_eq!(
            singular("tabby"),
            None,
            "no cat, no feline in this vocabulary"
        );
        let with_owl = Vocabulary::build(words(&["owl", "bird"]).iter().map(Vec::as_slice), 1);
        assert_eq!(
            find("great grey owl").in_vocabulary(&with_owl),
            Some(Word {
                singular: "owl",
                plural: "owls",
                article: "an"
            })
        );
    }
}
