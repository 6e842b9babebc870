#![allow(clippy::unwrap_used)]

use serde_json::json;

use super::*;
use crate::tools::test_support::TestWorkspace;

fn tree() -> TestWorkspace {
    let ws = TestWorkspace::new();
    ws.write(".gitignore", "target/\n*.log\n");
    ws.write("src/main.rs", "");
    ws.write("src/util/mod.rs", "");
    ws.write("README.md", "");
    ws.write("target/debug/out.rs", "");
    ws.write("build.log", "");
    ws.write(".github/ci.yml", "");
    ws.write(".git/config", "");
    ws
}

#[tokio::test]
async fn name_patterns_match_at_any_depth_and_skip_ignored_files() {
    let ws = tree();
    let out = ws.run(&GlobTool, json!({"pattern": "*.rs"})).await.unwrap();
    assert_eq!(out.text, "src/main.rs\nsrc/util/mod.rs");
}

#[tokio::test]
async fn path_patterns_match_from_the_search_directory() {
    let ws = tree();
    assert_eq!(ws.run(&GlobTool, json!({"pattern": "src/*.rs"})).await.unwrap().text, "src/main.rs");
    assert_eq!(
        ws.run(&GlobTool, json!({"pattern": "util/*.rs", "path": "src"})).await.unwrap().text,
        "src/util/mod.rs"
    );
}

#[tokio::test]
async fn hidden_files_are_listed_but_not_git_internals() {
    let ws = tree();
    let out = ws.run(&GlobTool, json!({"pattern": "*"})).await.unwrap();
    assert!(out.text.contains(".github/ci.yml"), "{}", out.text);
    assert!(!out.text.contains(".git/config"), "{}", out.text);
    assert!(!out.text.contains("build.log"), "{}", out.text);
    assert!(!out.text.contains("target/"), "{}", out.text);
}

#[tokio::test]
async fn results_are_capped_with_a_note() {
    let mut ws = TestWorkspace::new();
    ws.ctx.limits.glob_max_results = 2;
    for i in 0..5 {
        ws.write(&format!("f{i}.txt"), "");
    }
    let out = ws.run(&GlobTool, json!({"pattern": "*.txt"})).await.unwrap();
    assert_eq!(out.text, "f0.txt\nf1.txt\n[3 more files not shown; use a narrower pattern or path]");
}

#[tokio::test]
async fn no_match_bad_pattern_and_missing_directory() {
    let ws = tree();
    assert_eq!(ws.run(&GlobTool, json!({"pattern": "*.zig"})).await.unwrap().text, "No files match '*.zig' in .");
    assert!(matches!(ws.run(&GlobTool, json!({"pattern": "a[b"})).await.unwrap_err(), ToolError::Pattern { .. }));
    assert!(matches!(
        ws.run(&GlobTool, json!({"pattern": "*", "path": "nope"})).await.unwrap_err(),
        ToolError::NotFound(_)
    ));
}
