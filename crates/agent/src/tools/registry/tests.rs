#![allow(clippy::unwrap_used)]

use serde_json::json;

use super::*;
use crate::permissions::{ActionRequest, Approval, CommandRules};
use crate::tools::test_support::TestWorkspace;

struct Always(Approval);

#[async_trait::async_trait]
impl Approver for Always {
    async fn approve(&self, _request: &ActionRequest) -> Approval {
        self.0.clone()
    }
}

fn permissions(mode: Mode) -> Permissions {
    Permissions::new(mode, CommandRules::default())
}

#[test]
fn plan_mode_offers_only_read_only_tools() {
    let registry = ToolRegistry::standard();
    assert_eq!(registry.offered_names(Mode::Plan), vec!["read", "glob", "grep", "todo", "task"]);
    assert_eq!(registry.offered_names(Mode::Ask).len(), 8);
    let schemas = registry.schemas(Mode::Plan);
    assert!(schemas.iter().all(|schema| schema["type"] == "function"));
    assert!(!schemas.iter().any(|schema| schema["function"]["name"] == "write"));
}

#[test]
fn every_schema_is_a_closed_object_whose_required_fields_exist() {
    for tool in ToolRegistry::standard().offered(Mode::FullAuto) {
        let schema = tool.schema();
        let params = &schema["function"]["parameters"];
        assert_eq!(params["type"], "object", "{}", tool.name());
        assert_eq!(params["additionalProperties"], false, "{}", tool.name());
        let properties = params["properties"].as_object().unwrap();
        for required in params["required"].as_array().unwrap() {
            assert!(properties.contains_key(required.as_str().unwrap()), "{}: {required}", tool.name());
        }
        assert!(!schema["function"]["description"].as_str().unwrap().is_empty());
    }
}

#[tokio::test]
async fn write_tools_are_refused_in_plan_mode_even_if_called() {
    let ws = TestWorkspace::new();
    let registry = ToolRegistry::standard();
    let err = registry
        .call(
            "write",
            json!({"path": "a", "content": "x"}),
            &ws.ctx,
            &permissions(Mode::Plan),
            &Always(Approval::Approve),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ToolError::NotOffered { .. }), "{err}");
    assert_eq!(err.to_string(), "tool 'write' is not available in plan mode");
    assert!(!ws.root().join("a").exists());
}

#[tokio::test]
async fn ask_mode_runs_approved_calls_and_not_denied_ones() {
    let ws = TestWorkspace::new();
    let registry = ToolRegistry::standard();
    let ask = permissions(Mode::Ask);
    let err = registry
        .call("write", json!({"path": "a.txt", "content": "x"}), &ws.ctx, &ask, &Always(Approval::Deny(None)))
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "the user denied 'create a.txt (1 lines)'");
    assert!(!ws.root().join("a.txt").exists());
    let out = registry
        .call("write", json!({"path": "a.txt", "content": "x"}), &ws.ctx, &ask, &Always(Approval::Approve))
        .await
        .unwrap();
    assert_eq!(out.changes.len(), 1);
    assert_eq!(ws.read("a.txt"), "x");
    // The person saw the diff: an approved rewrite that deletes lines runs, where an unattended
    // one is refused however often it is asked.
    let rewrite = json!({"path": "a.txt", "content": "y"});
    registry.call("write", rewrite.clone(), &ws.ctx, &ask, &Always(Approval::Approve)).await.unwrap();
    assert_eq!(ws.read("a.txt"), "y");
    let auto = permissions(Mode::FullAuto);
    let again = json!({"path": "a.txt", "content": "z"});
    let err = registry.call("write", again.clone(), &ws.ctx, &auto, &Always(Approval::Approve)).await.unwrap_err();
    assert!(matches!(err, ToolError::WouldDeleteLines { .. }), "{err}");
    let err = registry.call("write", again, &ws.ctx, &auto, &Always(Approval::Approve)).await.unwrap_err();
    assert!(matches!(err, ToolError::WouldDeleteLines { .. }), "{err}");
    assert_eq!(ws.read("a.txt"), "y");
}

#[tokio::test]
async fn arguments_may_come_as_a_json_string() {
    let ws = TestWorkspace::new();
    ws.write("a.txt", "hello\n");
    let out = ToolRegistry::standard()
        .call("read", json!("{\"path\": \"a.txt\"}"), &ws.ctx, &permissions(Mode::Plan), &Always(Approval::Deny(None)))
        .await
        .unwrap();
    assert_eq!(out.text, "     1\thello\n");
    let err = ToolRegistry::standard()
        .call("read", json!("{not json"), &ws.ctx, &permissions(Mode::Plan), &Always(Approval::Deny(None)))
        .await
        .unwrap_err();
    assert!(err.to_string().starts_with("invalid arguments for read: arguments are not a JSON object"), "{err}");
}

#[tokio::test]
async fn unknown_tools_list_what_is_available() {
    let ws = TestWorkspace::new();
    let err = ToolRegistry::standard()
        .call("bash", json!({}), &ws.ctx, &permissions(Mode::Plan), &Always(Approval::Approve))
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "unknown tool 'bash'; available tools: read, glob, grep, todo, task");
}

#[test]
fn without_removes_tools_for_subagents() {
    assert!(ToolRegistry::standard().without(&["task"]).get("task").is_none());
}
