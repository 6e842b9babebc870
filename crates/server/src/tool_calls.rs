//! Tool calls parsed out of a reply in the native format, `<tool_call>{"name": ..., "arguments":
//! {...}}</tool_call>` (Qwen2.5's, and the format the server teaches models whose template has
//! no tools).
//!
//! This is the unconstrained path: the model may write anything, so a call whose body is not a
//! JSON object with a `name` is passed on as text, unchanged, rather than dropped. One common
//! slip is accepted: a reply that is nothing but a call object, bare or in a ```json fence,
//! without the tags (Qwen2.5-Coder-0.5B does this), counts as a call when it names one of the
//! request's tools. With the grammar crate enforcing the format every call parses.

use serde_json::Value;

const OPEN: &str = "<tool_call>";
const CLOSE: &str = "</tool_call>";

/// A tool call found in a reply.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedCall {
    /// The tool's name.
    pub name: String,
    /// The arguments, a JSON object.
    pub arguments: Value,
}

/// A piece of a reply: text for the user, or a complete tool call.
#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    /// Text outside tool calls (or a call that did not parse).
    Text(String),
    /// A tool call.
    Call(ParsedCall),
}

/// Splits a reply into text and tool calls as it streams in, holding back text that may be the
/// start of a `<tool_call>` tag. A reply that starts like a bare call object (`{` or a code
/// fence) is held whole until it ends.
#[derive(Debug, Default)]
pub struct ToolCallParser {
    tools: Vec<String>,
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
    /// A parser at the start of a reply to a request offering `tools` (their names).
    pub fn new(tools: &[String]) -> Self {
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
            if let Some(call) = bare_call(&self.buf).filter(|c| self.tools.contains(&c.name)) {
                self.buf.clear();
                return vec![Piece::Call(call)];
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
            match parse_call(&rest) {
                Some(call) => out.push(Piece::Call(call)),
                None => out.push(Piece::Text(format!("{OPEN}{rest}"))),
            }
        } else {
            self.text_piece(&rest, &mut out);
        }
        out
    }

    fn call_piece(&mut self, body: &str) -> Piece {
        match parse_call(body) {
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
pub fn parse_reply(reply: &str, tools: &[String]) -> (String, Vec<ParsedCall>) {
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

/// A call body: `{"name": "...", "arguments": {...}}` (`parameters` is accepted for
/// `arguments`, and arguments given as a string holding a JSON object are unpacked).
fn parse_call(body: &str) -> Option<ParsedCall> {
    let Value::Object(mut call) = serde_json::from_str::<Value>(body.trim()).ok()? else { return None };
    let Some(Value::String(name)) = call.remove("name") else { return None };
    let arguments = match call.remove("arguments").or_else(|| call.remove("parameters")) {
        None | Some(Value::Null) => Value::Object(serde_json::Map::new()),
        Some(Value::String(s)) => match serde_json::from_str::<Value>(&s) {
            Ok(v @ Value::Object(_)) => v,
            _ => return None,
        },
        Some(v @ Value::Object(_)) => v,
        Some(_) => return None,
    };
    Some(ParsedCall { name, arguments })
}

/// A reply that is one call object, maybe in a code fence.
fn bare_call(reply: &str) -> Option<ParsedCall> {
    let body = reply.trim();
    let body = match body.strip_prefix("```") {
        Some(fenced) => fenced.trim_start_matches("json").strip_suffix("```")?,
        None => body,
    };
    parse_call(body)
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
    use super::*;
    use serde_json::json;

    fn call(name: &str, arguments: Value) -> Piece {
        Piece::Call(ParsedCall { name: name.into(), arguments })
    }

    #[test]
    fn qwen_style_calls_are_parsed() {
        let reply = "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>\n\
                     <tool_call>\n{\"name\": \"now\", \"arguments\": {}}\n</tool_call>";
        let (text, calls) = parse_reply(reply, &[]);
        assert_eq!(text, "");
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0].arguments, json!({"city": "Paris"}));
        assert_eq!(calls[1].name, "now");
    }

    #[test]
    fn streamed_tags_split_anywhere_give_the_same_pieces() {
        let reply = "Let me check.<tool_call>{\"name\": \"f\", \"arguments\": \"{\\\"a\\\": 1}\"}</tool_call>";
        for split in 1..reply.len() {
            let mut p = ToolCallParser::new(&[]);
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
    fn malformed_calls_stay_as_text() {
        let (text, calls) = parse_reply("<tool_call>{\"arguments\": {}}</tool_call>", &[]);
        assert!(calls.is_empty());
        assert_eq!(text, "<tool_call>{\"arguments\": {}}</tool_call>");
        let (text, calls) = parse_reply("a <tool_call>{not json", &[]);
        assert!(calls.is_empty());
        assert_eq!(text, "a <tool_call>{not json");
    }

    #[test]
    fn an_unclosed_call_that_parses_is_a_call() {
        let (text, calls) = parse_reply("<tool_call>\n{\"name\": \"f\", \"arguments\": {\"x\": [1]}}\n", &[]);
        assert_eq!(text, "");
        assert_eq!(calls[0].arguments, json!({"x": [1]}));
    }

    #[test]
    fn bare_calls_to_known_tools_are_calls() {
        let tools = ["get_weather".to_string()];
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
