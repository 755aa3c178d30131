//! The coco-caption tokenisation: pycocoevalcap 1.2's `PTBTokenizer`, which runs Stanford's
//! PTBTokenizer 3.4.1 (`-lowerCase -preserveLines`) on each caption and then drops the punctuation
//! tokens in [`PUNCTUATION`]. Every published captioning number is scored on these tokens.
//!
//! Stanford's tokenizer is a JFlex lexer: at each position every rule is tried, the longest match
//! wins and ties go to the rule written first; a rule `head/context` counts the context in the
//! match length but consumes only the head. This file is that lexer over the same rules (the
//! ones a caption can reach; the SGML-entity and phone-number corners are kept because they change
//! how ordinary text splits), with every rule compiled into one lazy DFA searched for all matches
//! at once. `tests/real_data.rs` checks it against the real tokenizer's output for all 40,460
//! Flickr8k captions and 16 tricky strings.

use regex_automata::hybrid::dfa::{Cache, OverlappingState, DFA};
use regex_automata::meta::Regex;
use regex_automata::{Anchored, Input, MatchKind};
use std::cell::RefCell;
use std::sync::OnceLock;

/// Tokens pycocoevalcap removes after tokenising (compared after lower-casing, so the bracket
/// tokens, which become `-lrb-` and so on, stay).
pub const PUNCTUATION: [&str; 17] = [
    "''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!", ",", ":", "-", "--",
    "...", ";",
];

/// What a rule does with the text it matched.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Action {
    /// The matched text is the token.
    Keep,
    /// A fixed token instead of the text.
    Replace(&'static str),
    /// Whitespace, `|`, `\` and characters the tokenizer does not know: no token.
    Skip,
    /// The token is the text less its last `n` characters, which are lexed again ("cannot" ->
    /// "can" + "not", "gonna" -> "gon" + "na").
    PushBack(usize),
    /// The whole text is a token, and its final period is lexed again as a token of its own
    /// (an abbreviation that ends a sentence: "etc." -> "etc." + ".").
    RepeatPeriod,
    /// Quotes in LaTeX style: left ones become ` and ``, right ones ' and ''.
    Quote { left: bool },
    /// `&amp;` -> `&`.
    Ampersand,
    /// Cent, pound, euro signs -> "cents", "#", "$".
    Currency,
    /// ¼ ½ ¾ ⅓ ⅔ -> 1/4 ...
    Fraction,
    /// Parentheses and brackets inside the token -> -LRB- -RRB- (emoticons, phone numbers).
    Parentheses,
    /// Runs of hyphens: three or four become "--", others stay.
    Hyphens,
}

struct Rule {
    /// Head and trailing context in regex syntax; the context is `None` for plain rules.
    head: String,
    context: Option<String>,
    action: Action,
}

fn rule(head: impl Into<String>, action: Action) -> Rule {
    Rule {
        head: head.into(),
        context: None,
        action,
    }
}

fn rule_before(head: impl Into<String>, context: impl Into<String>, action: Action) -> Rule {
    Rule {
        head: head.into(),
        context: Some(context.into()),
        action,
    }
}

/// The lexer's rules in the order the Stanford grammar lists them (order breaks ties).
fn rules() -> Vec<Rule> {
    use Action::*;
    let letter = r"\p{L}";
    let letter_digit = r"[\p{L}\p{Nd}]";
    let digit = r"[\p{Nd}\x{07C0}-\x{07C9}]";
    let space = r"[ \t\x{00A0}\x{2000}-\x{200A}\x{3000}]";
    let space_nl =
        r"[ \t\x{00A0}\x{2000}-\x{200A}\x{3000}\r\n\x{2028}\x{2029}\x{000B}\x{000C}\x{0085}]";
    let sgml = r"</?[A-Za-z!][^>]*>";
    let sentence_end = format!("{space_nl}(?:{space_nl}|[A-Z]|{sgml})");
    let apos = r"(?:['\x{0092}\x{2019}]|&apos;)";
    let apos_etc = r"(?:['\x{0092}\x{2019}\x{0091}\x{2018}\x{201B}]|&apos;)";
    let accented_entity = r"&[aeiouAEIOU](?i:acute|grave|uml);";
    let word = format!(r"(?:[\p{{L}}\p{{M}}\x{{00AD}}]|{accented_entity})+");
    let number =
        format!(r"[\-+]?(?:{digit}+|{digit}*(?:[.:,\x{{00AD}}\x{{066B}}\x{{066C}}]{digit}+)+)");
    let date = format!(r"{digit}{{1,2}}[\-/]{digit}{{1,2}}[\-/]{digit}{{2,4}}");
    let fraction = format!(
        r"(?:{digit}{{1,4}}[\- \x{{00A0}}])?{digit}{{1,4}}(?:\\?/|\x{{2044}}){digit}{{1,4}}"
    );
    let hyphen = r"[\-_\x{058A}\x{2010}\x{2011}]";
    let elided = format!("[dDoOlL]{apos_etc}{letter_digit}");
    let thing = format!("(?:{elided})?{letter_digit}+(?:{hyphen}(?:{elided})?{letter_digit}+)*");
    let thing_amp = r"[A-Z]+(?:(?:[+&]|(?i:&amp;))[A-Z]+)+";
    let thing_slash =
        r"[A-Za-z0-9]+(?:-[A-Za-z]+){0,2}(?:\\?/[A-Za-z0-9]+(?:-[A-Za-z]+){0,2}){1,2}";
    let acro = r"(?:[A-Za-z](?:\.[A-Za-z])+|(?i:Canada|Sino|Korean|EU|Japan|non)-(?i:U\.S)|(?i:U\.S\.)-(?i:U\.K|U\.S\.S\.R))";
    let hyphenated =
        format!(r"[A-Za-z0-9][A-Za-z0-9.,\x{{00AD}}]*(?:-(?:[A-Za-z0-9\x{{00AD}}]+|{acro}\.))+");
    let reduced_aux = format!("{apos}(?:[msdMSD]|(?i:re|ve|ll))");
    let n_t_stem = r"[A-Za-z\x{00AD}]*[A-MO-Za-mo-z]\x{00AD}*";
    let n_t = format!("(?i:n){apos_etc}(?i:t)");
    let apostrophe_word = format!(
        "{apos}(?i:n){apos}?|[lLdDjJ]{apos}|(?i:Dunkin){apos}|(?i:somethin){apos}|(?i:ol){apos}\
         |{apos}(?i:em)|[A-HJ-XZn]{apos_etc}{letter}{{2}}{letter}*|{apos}[2-9]0(?i:s)\
         |{apos}(?i:till?)|{letter}{letter}*[aeiouyAEIOUY]{apos_etc}[aeiouA-Z]{letter}*\
         |{apos}(?i:cause)|(?i:cont'd)\\.?|(?i:'twas|nor'easter|c'mon|e'er|s'mores|ev'ry|li'l|nat'l)"
    );
    let full_url = r#"(?i:https?)://[^ \t\n\f\r"<>|()]+[^ \t\n\f\r"<>|.!?(){},\-]"#;
    let likely_url = r#"(?:(?:(?i:www)\.(?:[^ \t\n\f\r"<>|.!?(){},]+\.)+[a-zA-Z]{2,4})|(?:(?:[^ \t\n\f\r"`'<>|.!?(){},-_$]+\.)+(?i:com|net|org|edu)))(?:/[^ \t\n\f\r"<>|()]+[^ \t\n\f\r"<>|.!?(){},\-])?"#;
    let email = r#"[a-zA-Z0-9][^ \t\n\f\r"<>|()\x{00A0}]*@(?:[^ \t\n\f\r"<>|().\x{00A0}]+\.)+[a-zA-Z]{2,4}"#;
    let month = "(?i:Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)";
    let day = "(?i:Mon|Tue|Tues|Wed|Thu|Thurs|Fri)";
    let state = "(?:(?i:Ala|Ariz)|A(?i:rk)|(?i:Calif|Colo|Conn|Dak|Del|Fla|Ga)|I(?i:ll)|(?i:Ind|Kans?|Ky|La)\
                 |M(?i:ass)|(?i:Md|Mich|Minn)|M(?i:iss)|(?i:Mo|Mont|Neb|Nev|Okla)|O(?i:re)\
                 |(?i:Pa|Penn|Tenn|Tex|Va|Vt)|W(?i:ash)|(?i:Wisc?|Wyo))";
    let company = "(?i:Inc|Cos?|Corp|Pp?tys?|Ltd|Plc|Bancorp|Dept|Bhd|Assn|Univ|Intl|Sys)";
    let company2 = "(?i:Invt|Elec|Natl|M[ft]g)";
    let numbering = "(?i:Nos?|Prop|Ph|tel|est|ext|sq|ft)";
    let after_name = r"(?i:Jr|Sr|Bros|(?:Ed|Ph)\.D|Blvd|Rd|Esq)";
    let abbrev1 =
        format!(r"(?:{month}|{day}|{state}|{company}|{numbering}|{after_name}|(?i:etc|al|seq))\.");
    let title = "(?:(?i:Mr|Mrs|Ms)|M(?i:iss)|(?i:Drs?|Profs?|Sens?|Reps?|Attys?|Lt|Col|Gen|Messrs|Govs?|Adm|Rev\
                 |Maj|Sgt|Cpl|Pvt|Mt|Capt|Ste?|Ave|Pres|Lieut|Hon|Brig|Co?mdr|Pfc|Spc|Supts?|Det))";
    let abbrev4 =
        format!(r"(?:[A-Za-z]|{title}|(?i:vs|Alex|Wm|Jos|Cie|a\.k\.a|cf|TREAS)|{acro}|{company2})");
    let acronym_before = "(?:About|According|Additionally|After|An|A|As|At|But|Earlier|He|Her|Here|However\
                          |If|In|It|Last|Many|More|Mr\\.|Ms\\.|Now|Once|One|Other|Our|She|Since|So|Some|Such\
                          |That|The|Then|There|These|They|This|We|When|While|What|Yet|You)";
    let phone =
        r"(?:\([0-9]{3}\)[ \x{00A0}]?|[0-9]{3}[\- \x{00A0}.])[0-9]{3}[\- \x{00A0}.][0-9]{4}";
    let ellipsis = r"\.{3,5}|(?:\.[ \x{00A0}]){2,4}\.|[\x{0085}\x{2026}]";
    let quotes = format!(
        r"{apos}|''|[`\x{{2018}}\x{{2019}}\x{{201A}}\x{{201B}}\x{{201C}}\x{{201D}}\x{{0091}}\x{{0092}}\x{{0093}}\x{{0094}}\x{{201E}}\x{{201F}}\x{{2039}}\x{{203A}}\x{{00AB}}\x{{00BB}}]{{1,2}}"
    );
    let double_quote = r#"(?:"|(?i:&quot;))"#;
    let treebank_special = format!(
        r"-(?i:RRB|LRB|RCB|LCB|RSB|LSB)-|(?i:C\.D\.s|pro-|anti-|S(?:&|&amp;)P-500|S(?:&|&amp;)Ls)|(?i:Cap){apos}(?i:n)|(?i:c){apos}(?i:est)"
    );
    let smiley = r"[<>]?[:;=][\-o\*']?[\(\)DPdp\[\]|\\]";
    let misc_symbol = r"[\x{00A6}-\x{00A9}\x{00AC}\x{00AE}-\x{00BA}\x{00D7}\x{00F7}\x{2020}-\x{2023}\x{2032}-\x{2038}\x{2044}\x{207A}-\x{207F}\x{2100}-\x{214F}\x{2190}-\x{23FF}\x{2600}-\x{26FF}\x{FF01}-\x{FF0F}\x{FF1A}-\x{FF20}\x{FF3B}-\x{FF40}\x{FF5B}-\x{FF65}]";

    vec![
        rule("(?i:cannot)", PushBack(3)),
        rule("(?i:gonna|gotta|lemme|gimme|wanna)", PushBack(2)),
        rule("'(?i:tis)", PushBack(2)),
        rule(sgml, Keep),
        rule(
            r"&(?i:MD|mdash|ndash);|[\x{0096}\x{0097}\x{2013}\x{2014}\x{2015}]",
            Replace("--"),
        ),
        rule("(?i:&amp;)", Ampersand),
        rule(r"&(?i:HT|TL|UR|LR|QC|QL|QR|odq|cdq|#[0-9]+);", Keep),
        rule_before(&word, &reduced_aux, Keep),
        rule_before(n_t_stem, &n_t, Keep),
        rule(&word, Keep),
        rule(&apostrophe_word, Keep),
        rule_before(format!("(?i:y){apos}"), letter, Keep),
        rule(full_url, Keep),
        rule(likely_url, Keep),
        rule(email, Keep),
        rule_before(&reduced_aux, "[^A-Za-z]|$", Quote { left: false }),
        rule(&n_t, Quote { left: false }),
        rule(date, Keep),
        rule(number, Keep),
        rule(fraction, Keep),
        rule(r"[\x{00BC}\x{00BD}\x{00BE}\x{2153}-\x{215E}]", Fraction),
        rule(treebank_special, Ampersand),
        rule(thing_slash, Keep),
        rule(r"[A-Z]*\$|#", Keep),
        rule(r"#[A-Za-z][A-Za-z0-9_]*", Keep),
        rule(
            r"[\x{00A2}-\x{00A5}\x{0080}\x{20A0}\x{20AC}\x{060B}\x{0E3F}\x{20A4}\x{FFE0}\x{FFE1}\x{FFE5}\x{FFE6}]",
            Currency,
        ),
        rule_before(
            format!(r"{acro}\."),
            format!("{space}+{acronym_before}{space}"),
            RepeatPeriod,
        ),
        rule_before(&abbrev1, &sentence_end, RepeatPeriod),
        rule(&abbrev1, Keep),
        rule(format!(r"{abbrev4}\."), Keep),
        rule_before(&abbrev4, space, Keep),
        rule_before(acro, space_nl, Keep),
        rule_before(format!("{apos}[0-9][0-9]"), space_nl, Keep),
        rule_before(format!(r"{word}\."), "[,;:]", Keep),
        rule(phone, Parentheses),
        rule_before(smiley, "[^A-Za-z]|$", Parentheses),
        rule_before(double_quote, r"[A-Za-z0-9$]", Quote { left: true }),
        rule(double_quote, Quote { left: false }),
        rule(r"\+", Keep),
        rule(r"[%&\x{2030}\x{2031}]", Keep),
        rule(r"[~^]", Keep),
        rule(r"[|\\\x{007F}]", Skip),
        rule(r"\[", Replace("-LSB-")),
        rule(r"\]", Replace("-RSB-")),
        rule(r"<|(?i:&lt;)", Replace("<")),
        rule(r">|(?i:&gt;)", Replace(">")),
        rule(r"\{", Replace("-LCB-")),
        rule(r"\}", Replace("-RCB-")),
        rule(r"\(", Replace("-LRB-")),
        rule(r"\)", Replace("-RRB-")),
        rule(r"-+", Hyphens),
        rule(ellipsis, Replace("...")),
        rule(r"@+|#+|_+", Keep),
        rule(r"\*+|(?:\\\*){1,3}", Keep),
        rule("[,;:]", Keep),
        rule("[?!]+", Keep),
        rule(
            r"[.¡¿\x{037E}\x{0589}\x{061F}\x{06D4}\x{0700}-\x{0702}\x{07FA}]",
            Keep,
        ),
        rule("=", Keep),
        rule("/", Keep),
        rule_before(format!(r"{hyphenated}\."), "[,;:]", Keep),
        rule(&hyphenated, Keep),
        rule_before(format!(r"{thing}\."), "[,;:]", Keep),
        rule(&thing, Keep),
        rule_before(format!(r"{thing_amp}\."), "[,;:]", Ampersand),
        rule(thing_amp, Ampersand),
        rule_before("'", r"[A-Za-z][^ \t\n\r\x{00A0}]", Quote { left: true }),
        rule(&reduced_aux, Quote { left: false }),
        rule(quotes, Quote { left: false }),
        rule(misc_symbol, Keep),
        rule(
            r"\x{0000}|[ \t\x{00A0}\x{2000}-\x{200A}\x{3000}]+|[\x{200B}\x{200E}\x{200F}\x{FEFF}]",
            Skip,
        ),
        rule(
            r"[\r\n\x{2028}\x{2029}\x{000B}\x{000C}\x{0085}]|(?i:&nbsp;)",
            Skip,
        ),
        rule(r"(?s:.)", Skip),
    ]
}

struct Lexer {
    /// All rules as one multi-pattern lazy DFA (head and context together), reporting every match.
    dfa: DFA,
    actions: Vec<Action>,
    /// For rules with a trailing context: (head, context), each anchored at both ends.
    splits: Vec<Option<(Regex, Regex)>>,
}

fn lexer() -> &'static Lexer {
    static LEXER: OnceLock<Lexer> = OnceLock::new();
    LEXER.get_or_init(|| {
        let rules = rules();
        let patterns: Vec<String> = rules
            .iter()
            .map(|r| match &r.context {
                Some(context) => format!("(?:{})(?:{context})", r.head),
                None => r.head.clone(),
            })
            .collect();
        let dfa = DFA::builder()
            .configure(DFA::config().match_kind(MatchKind::All))
            .build_many(&patterns)
            .expect("the PTB lexer's rules compile");
        let whole = |re: &str| Regex::new(&format!("^(?:{re})$")).expect("a PTB rule compiles");
        let splits = rules
            .iter()
            .map(|r| r.context.as_ref().map(|c| (whole(&r.head), whole(c))))
            .collect();
        Lexer {
            dfa,
            actions: rules.iter().map(|r| r.action).collect(),
            splits,
        }
    })
}

thread_local! {
    static CACHE: RefCell<Option<Cache>> = const { RefCell::new(None) };
}

impl Lexer {
    /// The rule that wins at `at` and the length it matched (context included).
    fn longest_match(&self, cache: &mut Cache, text: &str, at: usize) -> (usize, usize) {
        let input = Input::new(text).range(at..).anchored(Anchored::Yes);
        let mut state = OverlappingState::start();
        let mut best: Option<(usize, usize)> = None;
        loop {
            self.dfa
                .try_search_overlapping_fwd(cache, &input, &mut state)
                .expect("the lazy DFA does not give up on a caption");
            let Some(found) = state.get_match() else {
                break;
            };
            let (rule, end) = (found.pattern().as_usize(), found.offset());
            let better = match best {
                None => true,
                Some((best_rule, best_end)) => {
                    end > best_end || (end == best_end && rule < best_rule)
                }
            };
            if better {
                best = Some((rule, end));
            }
        }
        let (rule, end) = best.expect("the last rule matches any character");
        (rule, end - at)
    }

    /// The head's length for a trailing-context rule: the longest head after which the context
    /// matches the rest.
    fn head_len(&self, rule: usize, matched: &str) -> usize {
        let Some((head, context)) = &self.splits[rule] else {
            return matched.len();
        };
        (1..=matched.len())
            .rev()
            .filter(|&e| matched.is_char_boundary(e))
            .find(|&e| head.is_match(&matched[..e]) && context.is_match(&matched[e..]))
            .unwrap_or(matched.len())
    }

    /// Stanford's tokens for one line, before lower-casing.
    fn tokens(&self, cache: &mut Cache, line: &str) -> Vec<String> {
        let mut tokens = Vec::new();
        let mut at = 0;
        while at < line.len() {
            let (rule, len) = self.longest_match(cache, line, at);
            let head = self.head_len(rule, &line[at..at + len]);
            let text = &line[at..at + head];
            let mut next = at + head;
            match self.actions[rule] {
                Action::Keep => tokens.push(text.to_owned()),
                Action::Replace(token) => tokens.push(token.to_owned()),
                Action::Skip => {}
                Action::PushBack(n) => {
                    let keep = text.len() - n;
                    tokens.push(text[..keep].to_owned());
                    next = at + keep;
                }
                Action::RepeatPeriod => {
                    tokens.push(text.to_owned());
                    next -= 1;
                }
                Action::Quote { left } => tokens.push(latex_quotes(text, left)),
                Action::Ampersand => tokens.push(replace_ci(text, "&amp;", "&")),
                Action::Currency => tokens.push(replace_chars(text, currency)),
                Action::Fraction => tokens.push(replace_chars(text, fraction)),
                Action::Parentheses => {
                    tokens.push(text.replace('(', "-LRB-").replace(')', "-RRB-"))
                }
                Action::Hyphens => tokens.push(if (3..=4).contains(&text.len()) {
                    "--".to_owned()
                } else {
                    text.to_owned()
                }),
            }
            at = next;
        }
        tokens
    }
}

fn replace_ci(text: &str, pattern: &str, with: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut rest = 0;
    while let Some(found) = lower[rest..].find(pattern) {
        out.push_str(&text[rest..rest + found]);
        out.push_str(with);
        rest += found + pattern.len();
    }
    out.push_str(&text[rest..]);
    out
}

fn latex_quotes(text: &str, left: bool) -> String {
    let text = replace_ci(&replace_ci(text, "&apos;", "'"), "&quot;", "\"");
    let (single, double) = if left { ("`", "``") } else { ("'", "''") };
    let mut out = String::with_capacity(text.len() + 2);
    for c in text.chars() {
        match c {
            '\'' => out.push_str(single),
            '"' => out.push_str(double),
            '\u{0091}' | '\u{2018}' | '\u{201B}' | '\u{2039}' => out.push('`'),
            '\u{0092}' | '\u{2019}' | '\u{203A}' => out.push('\''),
            '\u{0093}' | '\u{201C}' | '\u{00AB}' => out.push_str("``"),
            '\u{0094}' | '\u{201D}' | '\u{00BB}' => out.push_str("''"),
            other => out.push(other),
        }
    }
    out
}

/// The text with some characters replaced by strings.
fn replace_chars(text: &str, replacement: fn(char) -> Option<&'static str>) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match replacement(c) {
            Some(with) => out.push_str(with),
            None => out.push(c),
        }
    }
    out
}

fn currency(c: char) -> Option<&'static str> {
    match c {
        '\u{00A2}' => Some("cents"),
        '\u{00A3}' => Some("#"),
        '\u{0080}' | '\u{00A4}' | '\u{20A0}' | '\u{20AC}' => Some("$"),
        _ => None,
    }
}

fn fraction(c: char) -> Option<&'static str> {
    match c {
        '\u{00BC}' => Some("1/4"),
        '\u{00BD}' => Some("1/2"),
        '\u{00BE}' => Some("3/4"),
        '\u{2153}' => Some("1/3"),
        '\u{2154}' => Some("2/3"),
        _ => None,
    }
}

/// Stanford PTBTokenizer's tokens for one caption, lower-cased, punctuation kept.
pub fn ptb_tokens(caption: &str) -> Vec<String> {
    let lexer = lexer();
    CACHE.with(|slot| {
        let mut slot = slot.borrow_mut();
        let cache = slot.get_or_insert_with(|| lexer.dfa.create_cache());
        lexer
            .tokens(cache, caption)
            .into_iter()
            .map(|t| t.to_lowercase())
            .collect()
    })
}

/// A caption as coco-caption scores it: PTB tokens, lower-cased, punctuation removed.
pub fn ptb_tokenize(caption: &str) -> Vec<String> {
    ptb_tokens(caption)
        .into_iter()
        .filter(|t| !PUNCTUATION.contains(&t.as_str()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn joined(caption: &str) -> String {
        ptb_tokenize(caption).join(" ")
    }

    #[test]
    fn contractions_split_as_stanford_does() {
        assert_eq!(
            joined("A man's dog doesn't bark."),
            "a man 's dog does n't bark"
        );
        assert_eq!(
            joined("I'd've thought y'all'd know"),
            "i 'd 've thought y' all 'd know"
        );
        assert_eq!(joined("gonna wanna gotta"), "gon na wan na got ta");
        assert_eq!(joined("cannot"), "can not");
    }

    #[test]
    fn punctuation_goes_brackets_stay() {
        assert_eq!(
            joined("\"Quoted\" (parenthesised) [bracketed] {braced}"),
            "quoted -lrb- parenthesised -rrb- -lsb- bracketed -rsb- -lcb- braced -rcb-"
        );
        assert_eq!(joined("a b-c d--e f...g h/i"), "a b-c d e f. g h/i");
        assert_eq!(joined("..."), "");
    }

    #[test]
    fn abbreviations_and_numbers() {
        assert_eq!(
            joined("It's 5:30 p.m. -- time to go!"),
            "it 's 5:30 p.m. time to go"
        );
        assert_eq!(
            joined("e-mail, well-known, 3.5 inches, $20, 50% off, U.S.A."),
            "e-mail well-known 3.5 inches $ 20 50 % off u.s.a."
        );
        assert_eq!(
            ptb_tokens("etc. Etc. The"),
            ["etc.", ".", "etc.", ".", "the"]
        );
    }
}
