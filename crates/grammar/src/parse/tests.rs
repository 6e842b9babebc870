#![allow(clippy::unwrap_used)]
use serde_json::json;

use super::*;

fn tools() -> Vec<Tool> {
    vec![
        Tool::new("read_file", "Read a file", json!({"type": "object", "properties": {"path": {"type": "string"}}}))
            .unwrap(),
        Tool::new("list_dir", "List", json!({"type": "object"})).unwrap(),
    ]
}

#[test]
fn native_calls_parse_cleanly() {
    let text = "<tool_call>\n{\"name\": \"read_file\", \"arguments\": {\"path\": \"a.rs\"}}\n</tool_call>\n\
                <tool_call>\n{\"name\": \"list_dir\", \"arguments\": {}}\n</tool_call>";
    let reply = parse_reply(text, &tools());
    assert!(reply.is_clean(), "{:?}", reply.problems);
    assert_eq!(reply.content, "");
    assert_eq!(
        reply.calls,
        vec![
            ToolCall { name: "read_file".into(), arguments: json!({"path": "a.rs"}) },
            ToolCall { name: "list_dir".into(), arguments: json!({}) },
        ]
    );
}

#[test]
fn text_around_calls_is_content() {
    let text = "Let me look.\n<tool_call>\n{\"name\": \"list_dir\", \"arguments\": {}}\n</tool_call>";
    let reply = parse_reply(text, &tools());
    assert_eq!(reply.content, "Let me look.");
    assert_eq!(reply.calls.len(), 1);
    assert!(reply.is_clean());
}

#[test]
fn plain_text_has_no_calls_and_no_problems() {
    let reply = parse_reply("Rust's ownership means {borrowing} rules.", &tools());
    assert!(reply.calls.is_empty());
    assert!(reply.is_clean());
    assert_eq!(reply.content, "Rust's ownership means {borrowing} rules.");
}

#[test]
fn slips_are_repaired_and_reported() {
    let text = "<tool_call>\n```json\n{\"name\": \"read_file\", \"parameters\": \"{\\\"path\\\": \\\"x\\\"}\"}\n```";
    let reply = parse_reply(text, &tools());
    assert_eq!(reply.calls, vec![ToolCall { name: "read_file".into(), arguments: json!({"path": "x"}) }]);
    assert!(reply.problems.iter().all(ParseProblem::is_repaired), "{:?}", reply.problems);
    for p in [
        ParseProblem::UnclosedCall,
        ParseProblem::CodeFence,
        ParseProblem::ParametersKey,
        ParseProblem::ArgumentsAsString,
    ] {
        assert!(reply.problems.contains(&p), "{p:?} missing from {:?}", reply.problems);
    }
}

#[test]
fn bare_json_calls_are_found() {
    let text = "Sure:\n```json\n{\"name\": \"list_dir\", \"arguments\": {}}\n```\n";
    let reply = parse_reply(text, &tools());
    assert_eq!(reply.calls.len(), 1);
    assert_eq!(reply.problems, vec![ParseProblem::MissingTags]);
    assert_eq!(reply.content, "Sure:");
}

#[test]
fn unreadable_calls_are_reported_not_returned() {
    let text = "<tool_call>\n{\"name\": \"read_file\", \"arguments\": {\"path\": \n</tool_call>\
                <tool_call>{\"name\": \"rm_rf\", \"arguments\": {}}</tool_call>\
                <tool_call>{\"arguments\": {}}</tool_call>\
                <tool_call>{\"name\": \"list_dir\", \"arguments\": [1]}</tool_call>";
    let reply = parse_reply(text, &tools());
    assert!(reply.calls.is_empty());
    assert!(matches!(reply.problems[0], ParseProblem::InvalidJson { .. }), "{:?}", reply.problems);
    assert_eq!(reply.problems[1], ParseProblem::UnknownTool("rm_rf".into()));
    assert!(matches!(reply.problems[2], ParseProblem::MissingName(_)));
    assert_eq!(reply.problems[3], ParseProblem::ArgumentsNotObject { name: "list_dir".into() });
    assert!(reply.problems.iter().all(|p| !p.is_repaired()));
}
