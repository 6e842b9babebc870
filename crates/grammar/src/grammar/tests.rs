#![allow(clippy::unwrap_used)]
use serde_json::json;

use super::*;
use crate::GrammarEnv;
use crate::test_vocab::{accepts, generates, tokenizer};

fn read_file() -> Tool {
    Tool::new(
        "read_file",
        "Read a file",
        json!({
            "type": "object",
            "properties": {
                "path": {"type": "string"},
                "start_line": {"type": "integer", "minimum": 1},
                "offset": {"type": "integer"}
            },
            "required": ["path"],
        }),
    )
    .unwrap()
}

fn run_command() -> Tool {
    Tool::new(
        "run_command",
        "Run a command",
        json!({
            "type": "object",
            "properties": {
                "argv": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                "mode": {"type": "string", "enum": ["read-only", "write"]},
                "env": {"type": "object", "properties": {"RUST_LOG": {"type": "string"}}},
            },
            "required": ["argv", "mode"],
        }),
    )
    .unwrap()
}

fn compiled(format: ToolCallFormat, choice: ToolChoice) -> crate::CompiledGrammar {
    let env = GrammarEnv::new(&tokenizer()).unwrap();
    let grammar = ToolCallGrammar::new(format, vec![read_file(), run_command()], choice).unwrap();
    env.compile(&grammar).unwrap_or_else(|e| panic!("{e}\n{}", grammar.lark()))
}

const READ: &str = "<tool_call>\n{\"name\": \"read_file\", \"arguments\": {\"path\": \"src/main.rs\"}}\n</tool_call>";
const RUN: &str = "<tool_call>\n{\"name\": \"run_command\", \"arguments\": {\"argv\": [\"cargo\", \"test\"], \"mode\": \"read-only\", \"env\": {\"RUST_LOG\": \"a \\\"b\\\"\\n\"}}}\n</tool_call>";

#[test]
fn qwen_auto_accepts_text_calls_and_text_before_calls() {
    let g = compiled(ToolCallFormat::Qwen, ToolChoice::Auto);
    let tok = tokenizer();
    assert!(accepts(&tok, &g, "Just text."));
    assert!(accepts(&tok, &g, READ));
    assert!(accepts(&tok, &g, &format!("{READ}\n{RUN}")));
    assert!(accepts(&tok, &g, &format!("Reading it.\n{READ}")));
}

#[test]
fn arguments_follow_the_schema() {
    let g = compiled(ToolCallFormat::Qwen, ToolChoice::Required);
    let tok = tokenizer();
    let call =
        |name: &str, args: &str| format!("<tool_call>\n{{\"name\": \"{name}\", \"arguments\": {args}}}\n</tool_call>");
    assert!(accepts(&tok, &g, &call("read_file", r#"{"path": "a", "start_line": 3}"#)));
    // Missing required argument, wrong type, out of range, unknown enum value, unknown tool.
    assert!(!accepts(&tok, &g, &call("read_file", r#"{"start_line": 3}"#)));
    assert!(!accepts(&tok, &g, &call("read_file", r#"{"path": 3}"#)));
    assert!(!accepts(&tok, &g, &call("read_file", r#"{"path": "a", "start_line": 0}"#)));
    assert!(!accepts(&tok, &g, &call("run_command", r#"{"argv": ["ls"], "mode": "all"}"#)));
    assert!(!accepts(&tok, &g, &call("run_command", r#"{"argv": [], "mode": "write"}"#)));
    assert!(!accepts(&tok, &g, &call("delete_file", r#"{"path": "a"}"#)));
    // Required means no text, and the tags must be the special tokens.
    assert!(!accepts(&tok, &g, "I will not call a tool."));
    assert!(!accepts(&tok, &g, &call("read_file", r#"{"path": "a"}"#).replace("</tool_call>", "")));
}

#[test]
fn none_forbids_calls_and_named_allows_only_that_tool() {
    let tok = tokenizer();
    let none = compiled(ToolCallFormat::Qwen, ToolChoice::None);
    assert!(accepts(&tok, &none, "No tools today."));
    assert!(!accepts(&tok, &none, READ));
    let named = compiled(ToolCallFormat::Qwen, ToolChoice::Named("run_command".into()));
    assert!(accepts(&tok, &named, RUN));
    assert!(!accepts(&tok, &named, READ));
    assert!(!accepts(&tok, &named, &format!("{RUN}\n{RUN}")));
}

#[test]
fn prose_text_may_not_open_with_json_or_a_fence() {
    let tok = tokenizer();
    let env = GrammarEnv::new(&tok).unwrap();
    let grammar = ToolCallGrammar::new(ToolCallFormat::Qwen, vec![read_file(), run_command()], ToolChoice::None)
        .unwrap()
        .with_prose_text();
    let prose = env.compile(&grammar).unwrap_or_else(|e| panic!("{e}\n{}", grammar.lark()));
    let written = "{\"name\": \"read_file\", \"arguments\": {\"path\": \"a\"}}";
    assert!(accepts(&tok, &prose, "I fixed it."));
    assert!(accepts(&tok, &prose, &format!("I would call:\n{written}")));
    assert!(!accepts(&tok, &prose, written));
    assert!(!accepts(&tok, &prose, &format!("```json\n{written}\n```")));
    assert!(!accepts(&tok, &prose, "```plaintext\nI fixed it.\n```"));
    assert!(accepts(&tok, &prose, "I fixed it:\n```python\nreturn a + b\n```"));
    assert!(!accepts(&tok, &prose, READ));
    // Without it, a reply may be JSON.
    assert!(accepts(&tok, &compiled(ToolCallFormat::Qwen, ToolChoice::None), written));
}

#[test]
fn generic_format_uses_plain_text_tags() {
    let tok = tokenizer();
    let g = compiled(ToolCallFormat::Generic, ToolChoice::Auto);
    assert!(accepts(&tok, &g, "Plain answer."));
    // The tags are plain text here: the special tag tokens are refused...
    assert!(!accepts(&tok, &g, READ));
    // ...and the same call generated from ordinary tokens is accepted.
    assert!(generates(&tok, &g, READ));
    assert!(generates(&tok, &g, &format!("{READ}\n{RUN}")));
    assert!(!generates(&tok, &g, &format!("Text first.\n{READ}")));
}

#[test]
fn substring_argument_must_occur_in_the_text() {
    let tok = tokenizer();
    let env = GrammarEnv::new(&tok).unwrap();
    let edit = Tool::new(
        "edit",
        "Replace text in a file",
        json!({
            "type": "object",
            "properties": {
                "path": {"type": "string"},
                "old_string": {"type": "string"},
                "new_string": {"type": "string"},
                "replace_all": {"type": "boolean"},
            },
            "required": ["path", "old_string", "new_string"],
        }),
    )
    .unwrap()
    .with_substring_argument("old_string", "fn main() {\n    println!(\"hi\");\n}\n")
    .unwrap();
    let grammar = ToolCallGrammar::new(ToolCallFormat::Qwen, vec![edit], ToolChoice::Required).unwrap();
    let g = env.compile(&grammar).unwrap_or_else(|e| panic!("{e}\n{}", grammar.lark()));
    let call = |old: &str, tail: &str| {
        format!(
            "<tool_call>\n{{\"name\": \"edit\", \"arguments\": {{\"path\": \"m.rs\", \"old_string\": \"{old}\", \"new_string\": \"x\"{tail}}}}}\n</tool_call>"
        )
    };
    assert!(accepts(&tok, &g, &call(r#"println!(\"hi\");"#, "")));
    assert!(accepts(&tok, &g, &call(r#"main() {\n    print"#, ", \"replace_all\": true")));
    assert!(!accepts(&tok, &g, &call(r#"println!(\"bye\");"#, "")));
    assert!(!accepts(&tok, &g, &call("", "")));
    // An escape cannot be cut in half: `\` alone is not a chunk.
    assert!(!accepts(&tok, &g, &call(r#"{\"#, "")));
}

#[test]
fn empty_substring_text_is_an_error() {
    let tool = read_file().with_substring_argument("path", "").unwrap();
    let err = ToolCallGrammar::new(ToolCallFormat::Qwen, vec![tool], ToolChoice::Auto).unwrap_err();
    assert!(matches!(err, GrammarError::InvalidTool { .. }), "{err}");
}

#[test]
fn invalid_schemas_are_blamed_on_their_tool() {
    let env = GrammarEnv::new(&tokenizer()).unwrap();
    let bad = Tool::new("bad", "", json!({"type": "object", "properties": {"x": {"type": "strnig"}}})).unwrap();
    let grammar = ToolCallGrammar::new(ToolCallFormat::Qwen, vec![read_file(), bad], ToolChoice::Auto).unwrap();
    match env.compile(&grammar) {
        Err(GrammarError::InvalidSchema { tool, message }) => {
            assert_eq!(tool, "bad");
            assert!(message.contains("strnig"), "{message}");
        }
        other => panic!("expected an invalid schema error, got {other:?}"),
    }
}

#[test]
fn malformed_lark_is_rejected() {
    let env = GrammarEnv::new(&tokenizer()).unwrap();
    assert!(matches!(env.compile_lark("start: (("), Err(GrammarError::Rejected { .. })));
}

#[test]
fn single_call_grammar_refuses_a_second_call() {
    let env = GrammarEnv::new(&tokenizer()).unwrap();
    let grammar =
        ToolCallGrammar::new(ToolCallFormat::Qwen, vec![read_file(), run_command()], ToolChoice::Required).unwrap();
    let one = env.compile(&grammar.clone().with_parallel_calls(false)).unwrap();
    let many = env.compile(&grammar).unwrap();
    let tok = tokenizer();
    let two = format!("{READ}\n{RUN}");
    assert!(accepts(&tok, &one, READ) && !accepts(&tok, &one, &two));
    assert!(accepts(&tok, &many, &two));
}

#[test]
fn strict_schemas_refuse_undeclared_arguments() {
    let g = compiled(ToolCallFormat::Qwen, ToolChoice::Required);
    let tok = tokenizer();
    let with_extra = READ.replace("\"src/main.rs\"", "\"src/main.rs\", \"max_depth\": 2");
    assert!(!accepts(&tok, &g, &with_extra));
    // A map the schema leaves open stays open.
    let open = json!({"type": "object", "properties": {"env": {"type": "object", "additionalProperties": {"type": "string"}}}});
    let strict_open = strict(&open);
    assert_eq!(strict_open["additionalProperties"], json!(false));
    assert_eq!(strict_open["properties"]["env"]["additionalProperties"], json!({"type": "string"}));
    let nested =
        strict(&json!({"type": "array", "items": {"type": "object", "properties": {"a": {"type": "integer"}}}}));
    assert_eq!(nested["items"]["additionalProperties"], json!(false));
}

#[test]
fn unbounded_integers_get_a_finite_range() {
    let g = compiled(ToolCallFormat::Qwen, ToolChoice::Required);
    let tok = tokenizer();
    let with_start = |n: &str| READ.replace("\"src/main.rs\"", &format!("\"src/main.rs\", \"start_line\": {n}"));
    assert!(accepts(&tok, &g, &with_start("999999999999999999")));
    assert!(!accepts(&tok, &g, &with_start("10000000000000000000")));
    // An integer with no bounds at all compiles (llguidance overflows at the i64 extremes) and
    // takes negative numbers.
    let with_offset = |n: &str| READ.replace("\"src/main.rs\"", &format!("\"src/main.rs\", \"offset\": {n}"));
    assert!(accepts(&tok, &g, &with_offset("-999999999999999999")));
    assert!(accepts(&tok, &g, &with_offset("42")));
    assert!(!accepts(&tok, &g, &with_offset("-10000000000000000000")));
    // Bounds a schema gives are kept.
    let bounded = strict(&json!({"type": "integer", "minimum": 1}));
    assert_eq!(bounded, json!({"type": "integer", "minimum": 1, "maximum": 999_999_999_999_999_999_i64}));
}

#[test]
fn json_schema_replies_follow_the_schema() {
    let env = GrammarEnv::new(&tokenizer()).unwrap();
    let tok = tokenizer();
    let g = env
        .compile_json_schema(&json!({"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}))
        .unwrap();
    assert!(accepts(&tok, &g, r#"{"ok": true}"#));
    assert!(!accepts(&tok, &g, r#"{"ok": 1}"#));
    // Laid out as `json.dumps` writes it: no free whitespace for a model to stall in.
    assert!(!accepts(&tok, &g, "{\n\"ok\": true}"));
    assert!(!accepts(&tok, &g, r#"{"ok":true}"#));
    assert!(matches!(env.compile_json_schema(&json!({"type": 7})), Err(GrammarError::Rejected { .. })));
}

#[test]
fn auto_holds_a_bare_json_call_to_a_real_tool_and_its_schema() {
    let tok = tokenizer();
    for format in [ToolCallFormat::Qwen, ToolCallFormat::Generic] {
        let g = compiled(format, ToolChoice::Auto);
        let bare = r#"{"name": "read_file", "arguments": {"path": "a"}}"#;
        assert!(accepts(&tok, &g, bare), "{format:?}");
        assert!(accepts(&tok, &g, &format!("```json\n{bare}\n```")), "{format:?}");
        // A reply that starts like a bare call must be one: no invented tools, no bad arguments.
        assert!(!accepts(
            &tok,
            &g,
            r#"```json
{"name": "multiply", "arguments": {"a": 5, "b": 3}}
```"#
        ));
        assert!(!accepts(&tok, &g, r#"{"name": "read_file", "arguments": {"path": 3}}"#));
        assert!(!accepts(&tok, &g, "  {\"anything\": 1}"));
        // JSON later in a text reply is still text.
        assert!(accepts(&tok, &g, "The config is:\n```json\n{\"a\": 1}\n```"), "{format:?}");
        assert!(accepts(&tok, &g, "Just text."));
    }
}
