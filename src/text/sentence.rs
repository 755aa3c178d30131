//! The sentence a person reads, from the tokens a model writes: PTB's splits undone ("man 's" ->
//! "man's", "do n't" -> "don't", "gon na" -> "gonna", "-lrb- x -rrb-" -> "(x)", "$ 5" -> "$5"),
//! "i" -> "I", the first letter capitalised and a final period.

/// Tokens that attach to the word before them.
const CLITICS: [&str; 8] = ["'s", "n't", "'re", "'ve", "'ll", "'d", "'m", "%"];

fn bracket(token: &str) -> Option<(char, bool)> {
    match token {
        "-lrb-" => Some(('(', true)),
        "-rrb-" => Some((')', false)),
        "-lsb-" => Some(('[', true)),
        "-rsb-" => Some((']', false)),
        "-lcb-" => Some(('{', true)),
        "-rcb-" => Some(('}', false)),
        _ => None,
    }
}

pub fn sentence<S: AsRef<str>>(tokens: &[S]) -> String {
    let mut text = String::new();
    // Whether the next word joins the previous one without a space (after "(" or "$").
    let mut glue = true;
    for (i, token) in tokens.iter().enumerate() {
        let token = token.as_ref();
        let previous = i.checked_sub(1).map(|p| tokens[p].as_ref());
        let joins_previous = CLITICS.contains(&token)
            || (token == "na" && matches!(previous, Some("gon" | "wan" | "got")))
            || (token == "ta" && previous == Some("got"));
        let (word, opens) = match bracket(token) {
            Some((c, opens)) => (c.to_string(), Some(opens)),
            None if token == "i" => ("I".to_owned(), None),
            None => (token.to_owned(), None),
        };
        let closes = opens == Some(false);
        if !(glue || joins_previous || closes) {
            text.push(' ');
        }
        text.push_str(&word);
        glue = opens == Some(true) || token == "$";
    }
    let mut chars = text.chars();
    let mut text = match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect::<String>(),
        None => return text,
    };
    if !text.ends_with(['.', '!', '?']) {
        text.push('.');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(tokens: &str) -> String {
        sentence(&tokens.split(' ').collect::<Vec<_>>())
    }

    #[test]
    fn undoes_ptb_splits() {
        assert_eq!(
            of("a man 's dog does n't bark"),
            "A man's dog doesn't bark."
        );
        assert_eq!(of("i 'm gon na go"), "I'm gonna go.");
        assert_eq!(
            of("a boy -lrb- in red -rrb- pays $ 5 for 50 % off"),
            "A boy (in red) pays $5 for 50% off."
        );
        assert_eq!(of("two dogs ca n't swim"), "Two dogs can't swim.");
    }

    #[test]
    fn empty_and_seed_captions() {
        assert_eq!(sentence::<&str>(&[]), "");
        assert_eq!(of("dog runs through grass"), "Dog runs through grass.");
    }
}
