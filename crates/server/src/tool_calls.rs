//! Tool calls split out of a reply as it streams: `<tool_call>{"name": ..., "arguments":
//! {...}}</tool_call>` blocks (Qwen2.5's native format, and the format the server teaches models
//! whose template has no tools), each read by the grammar crate's [`parse_reply`].
//!
//! With a grammar enforcing the format every call parses. Unconstrained, the model may write
//! anything, so a call that does not read as a call of one of the request's tools is passed on
//! as text, unchanged, rather than dropped. The parser's repairs apply (`"parameters"` for
//! `"arguments"`, arguments as a JSON string, a missing closing tag at the end), and one common
//! slip is accepted: a reply that starts with a call object, bare or in a ```json fence, without
//! the tags (Qwen2.5-Coder-0.5B does this).

use hearth_grammar::format::{CALL_CLOSE as CLOSE, CALL_OPEN as OPEN};
use hearth_grammar::{ParsedReply, Tool, ToolCall, parse_reply as parse_calls};

/// A piece of a reply: text for the user, or a complete tool call.
#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    /// Text outside tool calls (or a call that did not parse).
    Text(String),
    /// A tool call.
    Call(ToolCall),
}

/// Splits a reply into text and tool calls as it streams in, holding back text that may be the
/// start of a `<tool_call>` tag. A reply that starts like a bare call object (`{` or a code
/// fence) is held whole until it ends.
#[derive(Debug, Default)]
pub struct ToolCallParser {
    tools: Vec<Tool>,
    buf: String,
    /// Nothing but whitespace seen yet.
    at_start: bool,
    /// Holding a reply that may be a bare call object.
    bare: bool,
    in_call: bool,
    seen_call: bool,
    /// Whitespace after a call, passed on only if more text follows.
    held_space: String,
}

impl ToolCallParser {
    /// A parser at the start of a reply to a request offering `tools`.
    pub fn new(tools: &[Tool]) -> Self {
        Self { tools: tools.to_vec(), at_start: true, ..Self::default() }
    }

    /// Adds reply text; returns the pieces now complete.
    pub fn push(&mut self, text: &str) -> Vec<Piece> {
        self.buf.push_str(text);
        if self.at_start {
            let start = self.buf.trim_start();
            if start.is_empty() || (start.len() < 3 && "```".starts_with(start)) {
                return Vec::new();
            }
            self.at_start = false;
            self.bare = start.starts_with('{') || start.starts_with("```");
        }
        if self.bare {
            return Vec::new();
        }
        let mut out = Vec::new();
        loop {
            if self.in_call {
                let Some(at) = self.buf.find(CLOSE) else { break };
                let body: String = self.buf.drain(..at + CLOSE.len()).collect();
                self.in_call = false;
                out.push(self.call_piece(&body[..at]));
            } else if let Some(at) = self.buf.find(OPEN) {
                let text: String = self.buf.drain(..at + OPEN.len()).collect();
                self.text_piece(&text[..at], &mut out);
                self.in_call = true;
            } else {
                let keep = partial_tag_len(&self.buf);
                let text: String = self.buf.drain(..self.buf.len() - keep).collect();
                self.text_piece(&text, &mut out);
                break;
            }
        }
        out
    }

    /// Ends the reply: an unclosed call is parsed if it can be (the model stopped before the
    /// closing tag), else passed on as text.
    pub fn finish(&mut self) -> Vec<Piece> {
        if self.bare {
            self.bare = false;
            if let Some(reply) = read(&self.buf, &self.tools).filter(|r| !r.calls.is_empty()) {
                self.buf.clear();
                let mut out = Vec::new();
                if !reply.content.is_empty() {
                    out.push(Piece::Text(reply.content));
                }
                out.extend(reply.calls.into_iter().map(Piece::Call));
                return out;
            }
            // Not a call after all: parse it as any other reply.
            let held = std::mem::take(&mut self.buf);
            let mut out = self.push(&held);
            out.extend(self.finish());
            return out;
        }
        let rest = std::mem::take(&mut self.buf);
        let mut out = Vec::new();
        if self.in_call {
            self.in_call = false;
            match one_call(&rest, &self.tools) {
                Some(call) => out.push(Piece::Call(call)),
                None => out.push(Piece::Text(format!("{OPEN}{rest}"))),
            }
        } else {
            self.text_piece(&rest, &mut out);
        }
        out
    }

    fn call_piece(&mut self, body: &str) -> Piece {
        match one_call(body, &self.tools) {
            Some(call) => {
                self.seen_call = true;
                self.held_space.clear();
                Piece::Call(call)
            }
            None => Piece::Text(format!("{OPEN}{body}{CLOSE}")),
        }
    }

    fn text_piece(&mut self, text: &str, out: &mut Vec<Piece>) {
        if text.is_empty() {
            return;
        }
        if self.seen_call && text.trim().is_empty() {
            self.held_space.push_str(text);
            return;
        }
        let text = format!("{}{text}", std::mem::take(&mut self.held_space));
        match out.last_mut() {
            Some(Piece::Text(prev)) => prev.push_str(&text),
            _ => out.push(Piece::Text(text)),
        }
    }
}

/// The whole reply's text (calls that did not parse included) and its tool calls, for a
/// request offering `tools`.
pub fn parse_reply(reply: &str, tools: &[Tool]) -> (String, Vec<ToolCall>) {
    let mut parser = ToolCallParser::new(tools);
    let mut pieces = parser.push(reply);
    pieces.extend(parser.finish());
    let mut text = String::new();
    let mut calls = Vec::new();
    for piece in pieces {
        match piece {
            Piece::Text(t) => text.push_str(&t),
            Piece::Call(c) => calls.push(c),
        }
    }
    (text, calls)
}

/// `text` read by the grammar crate's parser, if nothing in it had to be skipped (a call of an
/// unknown tool, JSON that is not a call): such text is passed on as it is.
fn read(text: &str, tools: &[Tool]) -> Option<ParsedReply> {
    Some(parse_calls(text, tools)).filter(|r| r.problems.iter().all(|p| p.is_repaired()))
}

/// The body of one tagged call (the tags themselves removed) as a call.
fn one_call(body: &str, tools: &[Tool]) -> Option<ToolCall> {
    let mut reply = read(&format!("{OPEN}{body}{CLOSE}"), tools)?;
    if reply.calls.len() == 1 && reply.content.is_empty() { reply.calls.pop() } else { None }
}

/// Length of the longest end of `text` that is the start of the opening tag.
fn partial_tag_len(text: &str) -> usize {
    (1..OPEN.len().min(text.len() + 1))
        .rev()
        .find(|&n| text.is_char_boundary(text.len() - n) && text.ends_with(&OPEN[..n]))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::{Value, json};

    fn call(name: &str, arguments: Value) -> Piece {
        Piece::Call(ToolCall { name: name.into(), arguments })
    }

    fn tools(names: &[&str]) -> Vec<Tool> {
        names.iter().map(|n| Tool::new(*n, "", json!({"type": "object"})).unwrap()).collect()
    }

    #[test]
    fn qwen_style_calls_are_parsed() {
        let reply = "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>\n\
                     <tool_call>\n{\"name\": \"now\", \"arguments\": {}}\n</tool_call>";
        let (text, calls) = parse_reply(reply, &tools(&["get_weather", "now"]));
        assert_eq!(text, "");
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0].arguments, json!({"city": "Paris"}));
        assert_eq!(calls[1].name, "now");
    }

    #[test]
    fn streamed_tags_split_anywhere_give_the_same_pieces() {
        let reply = "Let me check.<tool_call>{\"name\": \"f\", \"arguments\": \"{\\\"a\\\": 1}\"}</tool_call>";
        for split in 1..reply.len() {
            let mut p = ToolCallParser::new(&tools(&["f"]));
            let mut pieces = p.push(&reply[..split]);
            pieces.extend(p.push(&reply[split..]));
            pieces.extend(p.finish());
            let text: String =
                pieces.iter().filter_map(|x| if let Piece::Text(t) = x { Some(t.as_str()) } else { None }).collect();
            assert_eq!(text, "Let me check.", "split at {split}");
            assert_eq!(pieces.last(), Some(&call("f", json!({"a": 1}))), "split at {split}");
        }
    }

    #[test]
    fn malformed_calls_and_calls_of_unknown_tools_stay_as_text() {
        let f = tools(&["f"]);
        let (text, calls) = parse_reply("<tool_call>{\"arguments\": {}}</tool_call>", &f);
        assert!(calls.is_empty());
        assert_eq!(text, "<tool_call>{\"arguments\": {}}</tool_call>");
        let unknown = "<tool_call>{\"name\": \"g\", \"arguments\": {}}</tool_call>";
        assert_eq!(parse_reply(unknown, &f), (unknown.to_string(), Vec::new()));
        let (text, calls) = parse_reply("a <tool_call>{not json", &f);
        assert!(calls.is_empty());
        assert_eq!(text, "a <tool_call>{not json");
    }

    #[test]
    fn an_unclosed_call_that_parses_is_a_call() {
        let (text, calls) =
            parse_reply("<tool_call>\n{\"name\": \"f\", \"arguments\": {\"x\": [1]}}\n", &tools(&["f"]));
        assert_eq!(text, "");
        assert_eq!(calls[0].arguments, json!({"x": [1]}));
    }

    #[test]
    fn bare_calls_to_known_tools_are_calls() {
        let tools = tools(&["get_weather"]);
        let fenced = "```json\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n```";
        for reply in [fenced, " {\"name\": \"get_weather\", \"arguments\": {}}"] {
            let mut p = ToolCallParser::new(&tools);
            let mut pieces: Vec<Piece> = reply.chars().flat_map(|c| p.push(&c.to_string())).collect();
            pieces.extend(p.finish());
            assert!(matches!(&pieces[..], [Piece::Call(c)] if c.name == "get_weather"), "{reply}: {pieces:?}");
        }
        // JSON that is not a call to a known tool stays text.
        let (text, calls) = parse_reply("{\"name\": \"other\", \"arguments\": {}}", &tools);
        assert_eq!((text.as_str(), calls.len()), ("{\"name\": \"other\", \"arguments\": {}}", 0));
        let (text, calls) = parse_reply("```\nprint(1)\n```", &tools);
        assert_eq!((text.as_str(), calls.len()), ("```\nprint(1)\n```", 0));
    }

    #[test]
    fn partial_tags_are_held_back() {
        assert_eq!(partial_tag_len("abc<tool"), 5);
        assert_eq!(partial_tag_len("abc<"), 1);
        assert_eq!(partial_tag_len("abc"), 0);
        assert_eq!(partial_tag_len("é<"), 1);
    }
}
