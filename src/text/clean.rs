//! The seed's caption cleaning (the Keras tutorial's `clean_descriptions`):
//! split on whitespace, lowercase, delete ASCII punctuation (Python's `string.punctuation`),
//! drop tokens of one character, drop tokens that are not purely alphabetic.

pub const START_TOKEN: &str = "startseq";
pub const END_TOKEN: &str = "endseq";

/// Cleans one raw caption into its words. May return no words (a caption made only of punctuation
/// and single letters); the seed keeps such captions, and so do we.
pub fn clean_caption(raw: &str) -> Vec<String> {
    raw.split_whitespace()
        .map(|token| {
            token
                .to_lowercase()
                .chars()
                .filter(|c| !c.is_ascii_punctuation())
                .collect::<String>()
        })
        .filter(|word| word.chars().count() > 1 && word.chars().all(char::is_alphabetic))
        .collect()
}

/// `startseq w1 ... wn endseq`: the form the decoder is trained on.
pub fn wrap_caption(words: &[String]) -> Vec<String> {
    let mut tokens = Vec::with_capacity(words.len() + 2);
    tokens.push(START_TOKEN.to_owned());
    tokens.extend(words.iter().cloned());
    tokens.push(END_TOKEN.to_owned());
    tokens
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_rules() {
        assert_eq!(
            clean_caption("A child's  3 dogs, in a \"pink\" dress-up . I x2 Café"),
            vec!["childs", "dogs", "in", "pink", "dressup", "café"]
        );
        assert!(clean_caption(" . a , ").is_empty());
    }

    #[test]
    fn wrap_adds_start_and_end() {
        let words = clean_caption("Two dogs");
        assert_eq!(wrap_caption(&words), ["startseq", "two", "dogs", "endseq"]);
    }
}
