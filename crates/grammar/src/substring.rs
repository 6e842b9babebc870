//! The "exact substring of this text" constraint on a JSON string argument.
//!
//! The value is written inside a JSON string, so the constraint is on the escaped text: the
//! text is cut into its characters as JSON escapes them (`\n`, `\"`, `\u001b`, `é`), and
//! llguidance's `%regex {"substring_chunks": ...}` (a suffix automaton over those chunks)
//! accepts any contiguous run of them. Cutting by escaped character means a value can never end
//! half-way through an escape, and decoding the JSON string gives back a substring of the text.

use serde_json::{Value, json};

/// The text's characters, each as JSON writes it inside a string.
pub fn json_escaped_chars(text: &str) -> Vec<String> {
    let mut buf = [0u8; 4];
    text.chars()
        .map(|c| {
            let quoted = serde_json::to_string(c.encode_utf8(&mut buf) as &str).unwrap_or_default();
            quoted[1..quoted.len() - 1].to_string()
        })
        .collect()
}

/// The lark terminal body matching a non-empty JSON-escaped substring of `text`.
pub fn substring_terminal(text: &str) -> String {
    let spec: Value = json!({ "substring_chunks": json_escaped_chars(text) });
    // `& /(?s:.+)/` drops the empty string, which the suffix automaton also accepts.
    format!("%regex {spec} & /(?s:.+)/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_are_whole_chunks() {
        assert_eq!(json_escaped_chars("a\"\n\\é\u{1b}"), ["a", "\\\"", "\\n", "\\\\", "é", "\\u001b"]);
        assert!(json_escaped_chars("").is_empty());
    }

    #[test]
    fn terminal_carries_the_chunks() {
        let t = substring_terminal("ab\n");
        assert!(t.starts_with(r#"%regex {"substring_chunks":["a","b","\\n"]}"#), "{t}");
    }
}
