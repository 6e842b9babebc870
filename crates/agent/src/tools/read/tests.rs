#![allow(clippy::unwrap_used)]

use serde_json::json;

use super::*;
use crate::tools::test_support::TestWorkspace;

fn numbered(n: usize) -> String {
    (1..=n).map(|i| format!("line {i}\n")).collect()
}

#[tokio::test]
async fn shows_numbered_lines() {
    let ws = TestWorkspace::new();
    ws.write("a.txt", "alpha\nbeta\r\ngamma");
    let out = ws.run(&ReadTool, json!({"path": "a.txt"})).await.unwrap();
    assert_eq!(out.text, "     1\talpha\n     2\tbeta\n     3\tgamma\n");
}

#[tokio::test]
async fn offset_and_limit_select_a_range_and_say_how_to_continue() {
    let mut ws = TestWorkspace::new();
    ws.ctx.limits.read_min_lines = 1;
    ws.write("a.txt", numbered(10));
    let out = ws.run(&ReadTool, json!({"path": "a.txt", "offset": 4, "limit": 3})).await.unwrap();
    assert_eq!(
        out.text,
        "     4\tline 4\n     5\tline 5\n     6\tline 6\n[showing lines 4-6 of 10; call read with offset=7 to continue]\n"
    );
    let tail = ws.run(&ReadTool, json!({"path": "a.txt", "offset": 9})).await.unwrap();
    assert_eq!(tail.text, "     9\tline 9\n    10\tline 10\n[showing lines 9-10 of 10]\n");
}

#[tokio::test]
async fn default_limit_applies_to_long_files() {
    let mut ws = TestWorkspace::new();
    ws.ctx.limits.read_default_lines = 5;
    ws.write("long.txt", numbered(50));
    let out = ws.run(&ReadTool, json!({"path": "long.txt"})).await.unwrap();
    assert!(out.text.contains("     5\tline 5\n[showing lines 1-5 of 50; call read with offset=6"), "{}", out.text);
    assert!(!out.text.contains("line 6\n"));
}

#[tokio::test]
async fn byte_limit_stops_early_but_counts_all_lines() {
    let mut ws = TestWorkspace::new();
    ws.ctx.limits.read_max_bytes = 100;
    ws.write("big.txt", numbered(100));
    let out = ws.run(&ReadTool, json!({"path": "big.txt"})).await.unwrap();
    assert!(out.text.len() < 200, "{}", out.text);
    assert!(out.text.contains("of 100 (output size limit); call read with offset="), "{}", out.text);
}

#[tokio::test]
async fn long_lines_are_cut_visibly() {
    let mut ws = TestWorkspace::new();
    ws.ctx.limits.max_line_chars = 10;
    ws.write("wide.txt", format!("{}\n", "x".repeat(50)));
    let out = ws.run(&ReadTool, json!({"path": "wide.txt"})).await.unwrap();
    assert_eq!(out.text, format!("     1\t{}… [line cut, 50 chars]\n", "x".repeat(10)));
}

#[tokio::test]
async fn offset_past_the_end_is_explained() {
    let ws = TestWorkspace::new();
    ws.write("a.txt", numbered(3));
    let out = ws.run(&ReadTool, json!({"path": "a.txt", "offset": 10})).await.unwrap();
    assert_eq!(out.text, "[a.txt has 3 lines; offset 10 is past the end]");
}

#[tokio::test]
async fn binary_empty_missing_and_directories_are_reported() {
    let ws = TestWorkspace::new();
    ws.write("bin.dat", [1u8, 2, 0, 3]);
    ws.write("empty.txt", "");
    ws.write("dir/x.txt", "x");
    let err = ws.run(&ReadTool, json!({"path": "bin.dat"})).await.unwrap_err();
    assert!(matches!(err, ToolError::Binary { bytes: 4, .. }), "{err}");
    assert_eq!(ws.run(&ReadTool, json!({"path": "empty.txt"})).await.unwrap().text, "[empty.txt is empty]");
    assert!(matches!(ws.run(&ReadTool, json!({"path": "nope.txt"})).await.unwrap_err(), ToolError::NotFound(_)));
    assert!(matches!(ws.run(&ReadTool, json!({"path": "dir"})).await.unwrap_err(), ToolError::IsDirectory(_)));
}

#[tokio::test]
async fn unknown_arguments_are_rejected() {
    let ws = TestWorkspace::new();
    let err = ws.run(&ReadTool, json!({"file": "a.txt"})).await.unwrap_err();
    assert!(matches!(err, ToolError::InvalidArguments { .. }), "{err}");
}

#[tokio::test]
async fn names_the_syntax_error_of_a_file_that_does_not_parse() {
    let ws = TestWorkspace::new();
    ws.write("shapes.py", "def area(w, h)\n    return w * h\n");
    let out = ws.run(&ReadTool, json!({"path": "shapes.py"})).await.unwrap();
    assert_eq!(
        out.text,
        "     1\tdef area(w, h)\n     2\t    return w * h\n[shapes.py does not parse as Python: line 1: expected ':'; to fix it, edit line 1]\n"
    );
    ws.write("ok.py", "def area(w, h):\n    return w * h\n");
    let out = ws.run(&ReadTool, json!({"path": "ok.py"})).await.unwrap();
    assert_eq!(out.text, "     1\tdef area(w, h):\n     2\t    return w * h\n");
}

#[tokio::test]
async fn a_small_limit_still_shows_a_screenful() {
    let ws = TestWorkspace::new();
    ws.write("server.txt", numbered(7));
    let out = ws.run(&ReadTool, json!({"path": "server.txt", "offset": 1, "limit": 1})).await.unwrap();
    assert_eq!(out.text, numbered(7).lines().enumerate().map(|(i, l)| numbered_line(i + 1, l)).collect::<String>());
    ws.write("long.txt", numbered(100));
    let out = ws.run(&ReadTool, json!({"path": "long.txt", "offset": 3, "limit": 2})).await.unwrap();
    assert!(out.text.ends_with("[showing lines 3-42 of 100; call read with offset=43 to continue]\n"), "{}", out.text);
}
