//! Hides tool-call markup (`<tool_call>…</tool_call>`) from the streamed reply: the chat shows
//! each call as its own line once it is parsed, so the raw JSON would only repeat it.

use hearth_grammar::format::{CALL_CLOSE, CALL_OPEN};

/// A filter over the reply's text deltas that drops everything inside call tags. A tag split
/// across deltas is held back until it is known whether it is one.
#[derive(Debug, Default)]
pub struct CallMarkupFilter {
    inside: bool,
    /// A closing tag just ended; the newline after it, even in the next delta, is markup.
    after_close: bool,
    held: String,
}

impl CallMarkupFilter {
    /// The part of `delta` (with what was held back) that is not call markup.
    pub fn push(&mut self, delta: &str) -> String {
        let mut text = std::mem::take(&mut self.held);
        text.push_str(delta);
        let mut shown = String::new();
        let mut rest = text.as_str();
        loop {
            if self.after_close && !rest.is_empty() {
                rest = rest.strip_prefix('\n').unwrap_or(rest);
                self.after_close = false;
            }
            let tag = if self.inside { CALL_CLOSE } else { CALL_OPEN };
            if let Some(at) = rest.find(tag) {
                if !self.inside {
                    shown.push_str(&rest[..at]);
                }
                rest = &rest[at + tag.len()..];
                self.after_close = self.inside;
                self.inside = !self.inside;
                continue;
            }
            let keep = partial_tag_suffix(rest, tag);
            if !self.inside {
                shown.push_str(&rest[..rest.len() - keep]);
            }
            self.held = rest[rest.len() - keep..].to_string();
            return shown;
        }
    }

    /// What is still held back at the end of a reply (a `<tool` that never became a tag).
    pub fn finish(&mut self) -> String {
        let held = std::mem::take(&mut self.held);
        self.after_close = false;
        let inside = std::mem::replace(&mut self.inside, false);
        if inside { String::new() } else { held }
    }
}

/// The length of the longest end of `text` that is the start of `tag` (but not all of it).
fn partial_tag_suffix(text: &str, tag: &str) -> usize {
    (1..tag.len().min(text.len() + 1))
        .rev()
        .find(|&n| text.is_char_boundary(text.len() - n) && tag.starts_with(&text[text.len() - n..]))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(deltas: &[&str]) -> String {
        let mut filter = CallMarkupFilter::default();
        let mut out: String = deltas.iter().map(|d| filter.push(d)).collect();
        out.push_str(&filter.finish());
        out
    }

    #[test]
    fn plain_text_passes_through() {
        assert_eq!(run(&["Hello", ", world", "!"]), "Hello, world!");
        assert_eq!(run(&["a < b and c > d"]), "a < b and c > d");
    }

    #[test]
    fn calls_are_hidden_whole_or_split() {
        let reply = "Let me look.\n<tool_call>\n{\"name\": \"read\", \"arguments\": {}}\n</tool_call>\n";
        assert_eq!(run(&[reply]), "Let me look.\n");
        let pieces: Vec<String> = reply.chars().map(String::from).collect();
        let pieces: Vec<&str> = pieces.iter().map(String::as_str).collect();
        assert_eq!(run(&pieces), "Let me look.\n");
        assert_eq!(run(&["x<tool", "_call>{}</tool_", "call>y"]), "xy");
    }

    #[test]
    fn several_calls_and_text_between() {
        assert_eq!(run(&["<tool_call>{}</tool_call>\n<tool_call>{}</tool_call>\ndone"]), "done");
    }

    #[test]
    fn an_unfinished_tag_start_is_shown_at_the_end() {
        assert_eq!(run(&["compare a <tool"]), "compare a <tool");
        assert_eq!(run(&["<tool_call>{\"name\": "]), "");
        assert_eq!(run(&["é<"]), "é<");
    }
}
