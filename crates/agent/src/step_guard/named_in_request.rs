//! What a request names: the files it mentions, so that a guard can point at the ones not yet
//! looked at, and the commands it quotes, whose passing run is what the user asked for.

/// What may wrap a file name in prose: quotes, brackets and the punctuation after it.
const QUOTES_AND_PUNCTUATION: &str = "`'\"()[]{}<>,;:!?";

/// Longest extension counted: `py`, `rs`, `json`, `toml`, `markdown`.
const MAX_EXTENSION_CHARS: usize = 8;

/// The words of `request` that name files (`calc.py`, `src/main.rs`, `` `test_calc.py` ``), in
/// order and each once. A file name here is a word with a dot followed by an extension that
/// starts with a letter, so `2.5`, `e.g.` and the full stop ending a sentence are not.
pub(super) fn named_files(request: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for word in request.split_whitespace() {
        let word = word
            .trim_start_matches(|c: char| QUOTES_AND_PUNCTUATION.contains(c))
            .trim_end_matches(|c: char| c == '.' || QUOTES_AND_PUNCTUATION.contains(c));
        if looks_like_file(word) && !names.iter().any(|name| name == word) {
            names.push(word.to_string());
        }
    }
    names
}

fn looks_like_file(word: &str) -> bool {
    if word.contains("://") {
        return false;
    }
    let Some((stem, extension)) = word.rsplit_once('.') else {
        return false;
    };
    let file_name = stem.rsplit('/').next().unwrap_or(stem);
    // `e.g.` and `i.e.` look like a one-letter name with a one-letter extension.
    let abbreviation = file_name.chars().count() == 1 && extension.chars().count() == 1;
    !file_name.is_empty()
        && !abbreviation
        && file_name.chars().all(|c| c.is_alphanumeric() || "_-.".contains(c))
        && extension.chars().count() <= MAX_EXTENSION_CHARS
        && extension.chars().next().is_some_and(char::is_alphabetic)
        && extension.chars().all(char::is_alphanumeric)
}

/// The spans of `request` quoted in backticks, with runs of white space made one space.
pub(super) fn quoted_spans(request: &str) -> Vec<String> {
    let pieces: Vec<&str> = request.split('`').collect();
    // Odd pieces are quoted, but the last piece is never closed by a backtick.
    let closed = &pieces[..pieces.len().saturating_sub(1)];
    closed.iter().skip(1).step_by(2).map(|span| one_spaced(span)).filter(|span| !span.is_empty()).collect()
}

/// `text` with runs of white space made one space and the ends trimmed.
pub(super) fn one_spaced(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Whether a tool's `path` argument and a file name from the request are the same file: the
/// request may give the name alone (`calc.py`) where the call gives the path (`./src/calc.py`).
pub(super) fn same_file(path: &str, named: &str) -> bool {
    let path = path.trim_start_matches("./");
    let named = named.trim_start_matches("./");
    path == named || path.ends_with(&format!("/{named}")) || named.ends_with(&format!("/{path}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_picked_out_of_prose() {
        let request = "The test in test_calc.py fails. Find the bug in calc.py and fix it so \
                       `python3 test_calc.py` passes (see src/lib.rs, e.g. line 2.5).";
        assert_eq!(named_files(request), ["test_calc.py", "calc.py", "src/lib.rs"]);
        assert!(named_files("Rename get_user to fetch_user everywhere. Thanks.").is_empty());
        assert!(named_files("See https://example.com/a.html and Qwen2.5-Coder").is_empty());
        assert_eq!(named_files("Edit 'config.json'."), ["config.json"]);
    }

    #[test]
    fn backtick_spans_are_quoted_spans() {
        let request = "Fix it so `python3  test_calc.py` passes; `make` too, but not `this";
        assert_eq!(quoted_spans(request), ["python3 test_calc.py", "make"]);
        assert!(quoted_spans("no quotes ``").is_empty());
    }

    #[test]
    fn a_bare_name_matches_its_path() {
        assert!(same_file("./calc.py", "calc.py"));
        assert!(same_file("src/calc.py", "calc.py"));
        assert!(same_file("calc.py", "src/calc.py"));
        assert!(!same_file("test_calc.py", "calc.py"));
        assert!(!same_file("src/calc.py", "lib/calc.py"));
    }
}
