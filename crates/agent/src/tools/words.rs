//! Text cut into whole words, for the notes that look for a name in a file's lines.

/// `text` cut into runs of word characters and single other characters, so a name is found as
/// a whole word by comparing tokens.
pub(crate) fn tokens(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = None;
    for (at, ch) in text.char_indices() {
        if is_word_char(ch) {
            start.get_or_insert(at);
            continue;
        }
        if let Some(from) = start.take() {
            out.push(&text[from..at]);
        }
        out.push(&text[at..at + ch.len_utf8()]);
    }
    if let Some(from) = start {
        out.push(&text[from..]);
    }
    out
}

fn is_word_char(ch: char) -> bool {
    ch.is_alphanumeric() || ch == '_'
}

/// A word that is a name rather than a number.
pub(crate) fn is_name(token: &str) -> bool {
    token.chars().next().is_some_and(|ch| ch.is_alphabetic() || ch == '_')
}
