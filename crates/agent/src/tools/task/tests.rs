#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use serde_json::json;

use super::*;
use crate::tools::test_support::TestWorkspace;

struct Echo;

#[async_trait::async_trait]
impl SubagentRunner for Echo {
    async fn run_subagent(&self, request: SubagentRequest) -> Result<String, ToolError> {
        Ok(format!("done: {} / {}", request.description, request.prompt))
    }
}

#[tokio::test]
async fn hands_the_request_to_the_runner() {
    let mut ws = TestWorkspace::new();
    ws.ctx.subagents = Some(Arc::new(Echo));
    let out = ws.run(&TaskTool, json!({"description": "find main", "prompt": "where is main?"})).await.unwrap();
    assert_eq!(out.text, "done: find main / where is main?");
}

#[tokio::test]
async fn without_a_runner_it_says_so() {
    let ws = TestWorkspace::new();
    let err = ws.run(&TaskTool, json!({"description": "x", "prompt": "y"})).await.unwrap_err();
    assert!(matches!(err, ToolError::NoSubagents), "{err}");
}
