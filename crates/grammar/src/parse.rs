//! From generated text to typed tool calls.
//!
//! Constrained output parses exactly. Unconstrained output is read tolerantly — a missing
//! closing tag, a call without tags, a code fence, `"parameters"` for `"arguments"`, arguments
//! encoded as a JSON string — and every such repair, and everything that could not be read, is
//! reported, so a caller can tell a clean reply from a repaired one.

use serde_json::{Map, Value};

use crate::format::{CALL_CLOSE, CALL_OPEN};
use crate::tools::Tool;

/// One call of a tool.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    /// The tool's name.
    pub name: String,
    /// The arguments object.
    pub arguments: Value,
}

/// What went wrong in a reply, and whether the parser repaired it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseProblem {
    /// A call had no closing tag (repaired: read to the end).
    UnclosedCall,
    /// A call was written without tags (repaired: found by its JSON).
    MissingTags,
    /// A call was wrapped in a code fence (repaired).
    CodeFence,
    /// `"parameters"` was used for `"arguments"` (repaired).
    ParametersKey,
    /// The arguments were a JSON string holding the object (repaired).
    ArgumentsAsString,
    /// A call had no arguments (repaired: `{}`).
    MissingArguments,
    /// Text after a call's JSON inside its tags (ignored).
    TrailingText(String),
    /// A call's text is not JSON.
    InvalidJson { text: String, error: String },
    /// A call's JSON has no `"name"` string.
    MissingName(String),
    /// A call names a tool that does not exist.
    UnknownTool(String),
    /// A call's arguments are not a JSON object.
    ArgumentsNotObject { name: String },
}

impl ParseProblem {
    /// Whether the parser recovered the call despite this problem.
    pub fn is_repaired(&self) -> bool {
        matches!(
            self,
            Self::UnclosedCall
                | Self::MissingTags
                | Self::CodeFence
                | Self::ParametersKey
                | Self::ArgumentsAsString
                | Self::MissingArguments
                | Self::TrailingText(_)
        )
    }
}

/// A reply split into its text and its tool calls.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ParsedReply {
    /// The text outside calls, trimmed.
    pub content: String,
    /// The calls that could be read, in order.
    pub calls: Vec<ToolCall>,
    /// Everything repaired or skipped.
    pub problems: Vec<ParseProblem>,
}

impl ParsedReply {
    /// Whether every call was read exactly as written, with nothing repaired or skipped.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Reads the tool calls of `text` (a decoded reply, special tokens written out) against the
/// known `tools`; calls of unknown tools are left out and reported.
pub fn parse_reply(text: &str, tools: &[Tool]) -> ParsedReply {
    let mut reply = ParsedReply::default();
    let mut content = String::new();
    let mut rest = text;
    let mut found_tag = false;
    while let Some(open) = rest.find(CALL_OPEN) {
        found_tag = true;
        content.push_str(&rest[..open]);
        let body_start = open + CALL_OPEN.len();
        let (body, next) = match rest[body_start..].find(CALL_CLOSE) {
            Some(close) => (&rest[body_start..body_start + close], body_start + close + CALL_CLOSE.len()),
            None => {
                reply.problems.push(ParseProblem::UnclosedCall);
                (&rest[body_start..], rest.len())
            }
        };
        read_call(body, tools, &mut reply);
        rest = &rest[next..];
    }
    content.push_str(rest);
    if !found_tag {
        content = read_untagged_calls(&content, tools, &mut reply);
    }
    reply.content = content.trim().to_string();
    reply
}

/// Finds calls written as bare JSON objects with a `"name"` (a common slip of small models).
fn read_untagged_calls(text: &str, tools: &[Tool], reply: &mut ParsedReply) -> String {
    let mut content = String::new();
    let mut i = 0;
    while let Some(off) = text[i..].find('{') {
        let start = i + off;
        let mut stream = serde_json::Deserializer::from_str(&text[start..]).into_iter::<Value>();
        match stream.next() {
            Some(Ok(value)) if value.get("name").is_some() => {
                content.push_str(&text[i..start]);
                reply.problems.push(ParseProblem::MissingTags);
                push_call(value, tools, reply);
                i = start + stream.byte_offset();
            }
            _ => {
                content.push_str(&text[i..=start]);
                i = start + 1;
            }
        }
    }
    content.push_str(&text[i..]);
    strip_empty_fences(&content)
}

/// Removes code fences left empty once the calls inside them are taken out.
fn strip_empty_fences(text: &str) -> String {
    let mut out = text.to_string();
    for fence in ["```json\n\n```", "```json\n```", "```\n\n```", "```\n```"] {
        out = out.replace(fence, "");
    }
    out
}

fn read_call(body: &str, tools: &[Tool], reply: &mut ParsedReply) {
    let mut json = body.trim();
    if let Some(inner) = json.strip_prefix("```") {
        reply.problems.push(ParseProblem::CodeFence);
        let inner = inner.trim_start_matches("json");
        json = inner.strip_suffix("```").unwrap_or(inner).trim();
    }
    let mut stream = serde_json::Deserializer::from_str(json).into_iter::<Value>();
    match stream.next() {
        Some(Ok(value)) => {
            let trailing = json[stream.byte_offset()..].trim();
            if !trailing.is_empty() {
                reply.problems.push(ParseProblem::TrailingText(trailing.to_string()));
            }
            push_call(value, tools, reply);
        }
        Some(Err(e)) => reply.problems.push(ParseProblem::InvalidJson { text: json.to_string(), error: e.to_string() }),
        None => {
            reply.problems.push(ParseProblem::InvalidJson { text: json.to_string(), error: "empty call".to_string() })
        }
    }
}

fn push_call(value: Value, tools: &[Tool], reply: &mut ParsedReply) {
    let Value::Object(mut obj) = value else {
        reply.problems.push(ParseProblem::MissingName(value.to_string()));
        return;
    };
    let Some(name) = obj.get("name").and_then(Value::as_str).map(str::to_string) else {
        reply.problems.push(ParseProblem::MissingName(Value::Object(obj).to_string()));
        return;
    };
    let arguments = match (obj.remove("arguments"), obj.remove("parameters")) {
        (Some(a), _) => a,
        (None, Some(p)) => {
            reply.problems.push(ParseProblem::ParametersKey);
            p
        }
        (None, None) => {
            reply.problems.push(ParseProblem::MissingArguments);
            Value::Object(Map::new())
        }
    };
    let arguments = match arguments {
        Value::String(s) => match serde_json::from_str::<Value>(&s) {
            Ok(v @ Value::Object(_)) => {
                reply.problems.push(ParseProblem::ArgumentsAsString);
                v
            }
            _ => Value::String(s),
        },
        other => other,
    };
    if !arguments.is_object() {
        reply.problems.push(ParseProblem::ArgumentsNotObject { name });
        return;
    }
    if !tools.iter().any(|t| t.name == name) {
        reply.problems.push(ParseProblem::UnknownTool(name));
        return;
    }
    reply.calls.push(ToolCall { name, arguments });
}

#[cfg(test)]
mod tests;
