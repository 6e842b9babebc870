#![allow(clippy::unwrap_used)]

use serde_json::json;

use super::*;
use crate::tools::test_support::TestWorkspace;

#[tokio::test]
async fn replaces_the_plan_and_renders_it() {
    let ws = TestWorkspace::new();
    let out = ws
        .run(
            &TodoTool,
            json!({"todos": [
                {"content": "read the code", "status": "completed"},
                {"content": "fix the bug", "status": "in_progress"},
                {"content": "run the tests", "status": "pending"}
            ]}),
        )
        .await
        .unwrap();
    assert_eq!(out.text, "Plan (1/3 done):\n[x] read the code\n[>] fix the bug\n[ ] run the tests\n");
    assert_eq!(ws.ctx.todos().len(), 3);
    assert_eq!(out.todos.unwrap()[1].status, TodoStatus::InProgress);
    let out = ws.run(&TodoTool, json!({"todos": []})).await.unwrap();
    assert_eq!(out.text, "Plan cleared.");
    assert!(ws.ctx.todos().is_empty());
}

#[tokio::test]
async fn refuses_two_in_progress_empty_items_and_bad_status() {
    let ws = TestWorkspace::new();
    let two = json!({"todos": [{"content": "a", "status": "in_progress"}, {"content": "b", "status": "in_progress"}]});
    assert!(ws.run(&TodoTool, two).await.unwrap_err().to_string().contains("keep at most one"));
    let empty = json!({"todos": [{"content": " ", "status": "pending"}]});
    assert!(ws.run(&TodoTool, empty).await.unwrap_err().to_string().contains("no content"));
    let bad = json!({"todos": [{"content": "a", "status": "done"}]});
    assert!(matches!(ws.run(&TodoTool, bad).await.unwrap_err(), ToolError::InvalidArguments { .. }));
    assert!(ws.ctx.todos().is_empty(), "refused updates leave the plan alone");
}
