//! The grammar of a model's reply given its tools: free text or tool calls in the model's
//! format, with arguments that follow each tool's schema, written as an llguidance lark grammar.

use std::fmt::Write as _;

use llguidance::api::TopLevelGrammar;
use serde_json::{Value, json};

use crate::error::{GrammarError, Result};
use crate::format::{CALL_CLOSE, CALL_OPEN, ToolCallFormat};
use crate::substring::substring_terminal;
use crate::tools::{Tool, ToolChoice, check_tools};

/// How arguments are laid out: Python's `json.dumps` spacing (`", "`, `": "`), which is how the
/// chat templates render past calls, so constrained output looks like what models were trained
/// on. Whitespace is not free, so a model cannot stall in a run of blank lines.
fn json_layout() -> Value {
    json!({"item_separator": ", ", "key_separator": ": ", "whitespace_flexible": false})
}

/// The grammar for one reply: which tools exist, which the model must call, in which format.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCallGrammar {
    format: ToolCallFormat,
    tools: Vec<Tool>,
    choice: ToolChoice,
    parallel_calls: bool,
    prose: bool,
    lark: String,
}

impl ToolCallGrammar {
    /// The grammar for `tools` under `choice` in `format`. Tool names must be unique and a
    /// named choice must be one of them.
    pub fn new(format: ToolCallFormat, tools: Vec<Tool>, choice: ToolChoice) -> Result<Self> {
        check_tools(&tools, &choice)?;
        for tool in &tools {
            if let Some(s) = tool.substring_arguments.iter().find(|s| s.text.is_empty()) {
                return Err(GrammarError::InvalidTool {
                    tool: tool.name.clone(),
                    problem: format!("argument {:?} must be a substring of an empty text", s.argument),
                });
            }
        }
        let mut grammar = Self { format, tools, choice, parallel_calls: true, prose: false, lark: String::new() };
        grammar.lark = build_lark(&grammar);
        Ok(grammar)
    }

    /// Whether a reply may hold several calls (the default) or at most one (OpenAI's
    /// `parallel_tool_calls: false`; small models tend to repeat a call until the token limit).
    pub fn with_parallel_calls(mut self, allowed: bool) -> Self {
        self.parallel_calls = allowed;
        self.lark = build_lark(&self);
        self
    }

    /// Text that may not open with `{` or a code fence, for a reply that must answer in prose:
    /// small models told to answer in plain text wrote another call out as JSON instead. A client
    /// may want a JSON or code answer, so this is not what `None` means.
    pub fn with_prose_text(mut self) -> Self {
        self.prose = true;
        self.lark = build_lark(&self);
        self
    }

    /// Whether a reply may hold several calls.
    pub fn parallel_calls(&self) -> bool {
        self.parallel_calls
    }

    /// The tool-call format.
    pub fn format(&self) -> ToolCallFormat {
        self.format
    }

    /// The tools.
    pub fn tools(&self) -> &[Tool] {
        &self.tools
    }

    /// The tool choice.
    pub fn choice(&self) -> &ToolChoice {
        &self.choice
    }

    /// The grammar in llguidance's lark dialect.
    pub fn lark(&self) -> &str {
        &self.lark
    }

    /// The grammar as llguidance's top-level input.
    pub fn to_llguidance(&self) -> TopLevelGrammar {
        TopLevelGrammar::from_lark(self.lark.clone())
    }
}

/// A lark string literal for `text` (lark strings are JSON strings).
fn literal(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_default()
}

fn build_lark(grammar: &ToolCallGrammar) -> String {
    let (format, tools, choice) = (grammar.format, grammar.tools.as_slice(), &grammar.choice);
    let mut g = String::from("%llguidance {}\n");
    let start = match choice {
        ToolChoice::None => "TEXT?".to_string(),
        ToolChoice::Auto if tools.is_empty() => "TEXT?".to_string(),
        // Small models often write a call as bare JSON, fenced or not, instead of in the tags;
        // a reply that starts that way is held to a real tool and its schema (`bare`).
        ToolChoice::Auto => match format {
            // The opening tag is a special token, which text cannot contain, so text can run
            // right up to a call.
            ToolCallFormat::Qwen => "TEXT | TEXT? calls | bare".to_string(),
            // A plain-text tag could be the end of the text or the start of a call; a reply is
            // one or the other.
            ToolCallFormat::Generic => "TEXT | calls | bare".to_string(),
        },
        ToolChoice::Required => "calls".to_string(),
        ToolChoice::Named(name) => {
            let i = tools.iter().position(|t| &t.name == name).unwrap_or_default();
            format!("call_{i}")
        }
    };
    let _ = writeln!(g, "start: {start}");
    // Text never contains a call's opening tag, so a call cannot hide inside it.
    let bare_calls = matches!(choice, ToolChoice::Auto) && !tools.is_empty();
    // Nor does it start as a bare JSON call would, where that start leads into `bare` instead.
    // Prose opens with words: held to text, a model that may not open with a JSON call wrapped
    // its whole answer in a ```plaintext fence instead.
    let barred_opening = if grammar.prose { Some("```") } else { bare_calls.then_some("```json") };
    let _ = write!(g, "TEXT: /(?s:.+)/ & ~/(?s:.*){CALL_OPEN}(?s:.*)/");
    if let Some(fence) = barred_opening {
        let _ = write!(g, " & ~/[ \\t\\n]*(\\{{|{fence})(?s:.*)/");
    }
    g.push('\n');
    if tools.is_empty() {
        return g;
    }
    if bare_calls {
        let _ = writeln!(g, "bare: \"```json\\n\" bare_call \"\\n```\" | bare_call");
        let bare: Vec<String> = (0..tools.len()).map(|i| format!("bare_{i}")).collect();
        let _ = writeln!(g, "bare_call: {}", bare.join(" | "));
    }
    if grammar.parallel_calls {
        let _ = writeln!(g, "calls: call (\"\\n\" call)*");
    } else {
        let _ = writeln!(g, "calls: call");
    }
    let _ = writeln!(g, "call: {}", (0..tools.len()).map(|i| format!("call_{i}")).collect::<Vec<_>>().join(" | "));
    let (open, close) = match format {
        ToolCallFormat::Qwen => (format!("{CALL_OPEN} \"\\n\""), format!("\"\\n\" {CALL_CLOSE}")),
        ToolCallFormat::Generic => (literal(&format!("{CALL_OPEN}\n")), literal(&format!("\n{CALL_CLOSE}"))),
    };
    for (i, tool) in tools.iter().enumerate() {
        let head = format!("{{\"name\": {}, \"arguments\": ", literal(&tool.name));
        let _ = writeln!(g, "call_{i}: {open} {} args_{i} \"}}\" {close}", literal(&head));
        if bare_calls {
            let _ = writeln!(g, "bare_{i}: {} args_{i} \"}}\"", literal(&head));
        }
        write_arguments(&mut g, i, tool);
    }
    g
}

/// The arguments object of tool `i`: its schema as llguidance JSON, or, when some argument is a
/// substring of a text, an object written property by property.
fn write_arguments(g: &mut String, i: usize, tool: &Tool) {
    if tool.substring_arguments.is_empty() {
        let _ = writeln!(g, "args_{i}: %json {}", schema_with_layout(&tool.parameters));
        return;
    }
    let required = tool.required();
    let props: Vec<(&String, &Value)> = tool.properties().map(|p| p.iter().collect()).unwrap_or_default();
    // Properties in schema order, the required ones always, the optional ones maybe:
    // `first_k` is "properties k.. with none written yet", `rest_k` "with one written already".
    let n = props.len();
    for (k, (name, schema)) in props.iter().enumerate() {
        let key = literal(&format!("{}: ", literal(name)));
        match tool.substring_arguments.iter().position(|s| &s.argument == *name) {
            Some(s) => {
                let text = &tool.substring_arguments[s].text;
                let _ = writeln!(g, "kv_{i}_{k}: {key} \"\\\"\" SUBSTRING_{i}_{k} \"\\\"\"");
                let _ = writeln!(g, "SUBSTRING_{i}_{k}: {}", substring_terminal(text));
            }
            None => {
                let _ = writeln!(g, "kv_{i}_{k}: {key} %json {}", schema_with_layout(schema));
            }
        }
        let last = k + 1 == n;
        let rest_next = if last { String::new() } else { format!(" rest_{i}_{}", k + 1) };
        if required.contains(&name.as_str()) {
            let _ = writeln!(g, "first_{i}_{k}: kv_{i}_{k}{rest_next}");
            let _ = writeln!(g, "rest_{i}_{k}: \", \" kv_{i}_{k}{rest_next}");
        } else if last {
            let _ = writeln!(g, "first_{i}_{k}: kv_{i}_{k}?");
            let _ = writeln!(g, "rest_{i}_{k}: (\", \" kv_{i}_{k})?");
        } else {
            let _ = writeln!(g, "first_{i}_{k}: kv_{i}_{k}{rest_next} | first_{i}_{}", k + 1);
            let _ = writeln!(g, "rest_{i}_{k}: (\", \" kv_{i}_{k})?{rest_next}");
        }
    }
    if n == 0 {
        let _ = writeln!(g, "args_{i}: \"{{}}\"");
    } else {
        let _ = writeln!(g, "args_{i}: \"{{\" first_{i}_0 \"}}\"");
    }
}

/// `schema` made strict, with hearth's JSON layout attached as llguidance's `x-guidance` options.
fn schema_with_layout(schema: &Value) -> Value {
    with_layout(&strict(schema))
}

/// `schema` with hearth's JSON layout attached, unless it sets llguidance options of its own.
pub(crate) fn with_layout(schema: &Value) -> Value {
    let mut schema = schema.clone();
    if let Some(obj) = schema.as_object_mut()
        && !obj.contains_key("x-guidance")
    {
        obj.insert("x-guidance".into(), json_layout());
    }
    schema
}

/// `schema` with `"additionalProperties": false` on every object schema that says nothing about
/// extra properties: a call's arguments are the ones its tool declares (as in OpenAI's strict
/// mode), where plain JSON schema would let a model invent more. Integers without bounds get the
/// 64-bit range, which is all a tool can read anyway: unbounded, a model that starts repeating a
/// digit (`"end_line": 1000000000…`) never ends the number, and its call never ends.
pub fn strict(schema: &Value) -> Value {
    let Value::Object(obj) = schema else { return schema.clone() };
    let mut out = serde_json::Map::with_capacity(obj.len() + 1);
    for (key, value) in obj {
        let value = match key.as_str() {
            // Maps of name to subschema.
            "properties" | "$defs" | "definitions" | "patternProperties" | "dependentSchemas" => match value {
                Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), strict(v))).collect()),
                other => other.clone(),
            },
            // Lists of subschemas.
            "anyOf" | "oneOf" | "allOf" | "prefixItems" => match value {
                Value::Array(a) => Value::Array(a.iter().map(strict).collect()),
                other => other.clone(),
            },
            // Single subschemas.
            "items" | "additionalProperties" | "not" | "if" | "then" | "else" | "contains" => strict(value),
            _ => value.clone(),
        };
        out.insert(key.clone(), value);
    }
    let is_object = obj.get("type").and_then(Value::as_str) == Some("object") || obj.contains_key("properties");
    let open_ended =
        ["additionalProperties", "patternProperties", "unevaluatedProperties"].iter().any(|k| obj.contains_key(*k));
    if is_object && !open_ended {
        out.insert("additionalProperties".into(), Value::Bool(false));
    }
    if obj.get("type").and_then(Value::as_str) == Some("integer") {
        if !obj.contains_key("maximum") && !obj.contains_key("exclusiveMaximum") {
            out.insert("maximum".into(), Value::from(INTEGER_BOUND));
        }
        if !obj.contains_key("minimum") && !obj.contains_key("exclusiveMinimum") {
            out.insert("minimum".into(), Value::from(-INTEGER_BOUND));
        }
    }
    Value::Object(out)
}

/// The bound given to integers a schema leaves unbounded: 18 digits, inside i64 with room to
/// spare (llguidance's range-to-regex overflows at the i64 extremes) and far beyond any count,
/// line number or size a tool takes.
const INTEGER_BOUND: i64 = 999_999_999_999_999_999;

#[cfg(test)]
mod tests;
