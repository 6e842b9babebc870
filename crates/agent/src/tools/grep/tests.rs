#![allow(clippy::unwrap_used)]

use serde_json::json;

use super::*;
use crate::tools::test_support::TestWorkspace;

fn tree() -> TestWorkspace {
    let ws = TestWorkspace::new();
    ws.write(".gitignore", "ignored/\n");
    ws.write("src/a.rs", "fn alpha() {}\nfn beta() {}\n// TODO: gamma\n");
    ws.write("src/b.py", "def alpha():\n    pass\n");
    ws.write("ignored/c.rs", "fn alpha() {}\n");
    ws.write("data.bin", b"alpha\0binary");
    ws
}

#[tokio::test]
async fn finds_matching_lines_with_paths_and_numbers() {
    let ws = tree();
    let out = ws.run(&GrepTool, json!({"pattern": "fn \\w+"})).await.unwrap();
    assert_eq!(out.text, "src/a.rs:1:fn alpha() {}\nsrc/a.rs:2:fn beta() {}\n");
}

#[tokio::test]
async fn skips_ignored_and_binary_files() {
    let ws = tree();
    let out = ws.run(&GrepTool, json!({"pattern": "alpha", "output_mode": "files_with_matches"})).await.unwrap();
    assert_eq!(out.text, "src/a.rs\nsrc/b.py\n");
}

#[tokio::test]
async fn glob_path_case_and_count_options() {
    let ws = tree();
    let out = ws.run(&GrepTool, json!({"pattern": "ALPHA", "case_insensitive": true, "glob": "*.py"})).await.unwrap();
    assert_eq!(out.text, "src/b.py:1:def alpha():\n");
    let out = ws.run(&GrepTool, json!({"pattern": "fn", "path": "src/a.rs", "output_mode": "count"})).await.unwrap();
    assert_eq!(out.text, "src/a.rs:2\n");
}

#[tokio::test]
async fn context_lines_use_dashes_and_group_breaks() {
    let ws = TestWorkspace::new();
    ws.write("f.txt", "1\nhit\n3\n4\n5\n6\nhit\n8\n");
    let out = ws.run(&GrepTool, json!({"pattern": "hit", "context": 1})).await.unwrap();
    assert_eq!(out.text, "f.txt-1-1\nf.txt:2:hit\nf.txt-3-3\n--\nf.txt-6-6\nf.txt:7:hit\nf.txt-8-8\n");
}

#[tokio::test]
async fn output_is_capped_with_totals() {
    let mut ws = TestWorkspace::new();
    ws.ctx.limits.grep_max_lines = 3;
    ws.write("many.txt", "x\n".repeat(10));
    let out = ws.run(&GrepTool, json!({"pattern": "x"})).await.unwrap();
    assert_eq!(
        out.text,
        "many.txt:1:x\nmany.txt:2:x\nmany.txt:3:x\n[output cut: 7 more lines not shown; 10 matching lines in 1 files in all. Narrow the pattern, path or glob]\n"
    );
}

#[tokio::test]
async fn no_matches_and_bad_regex() {
    let ws = tree();
    assert!(ws.run(&GrepTool, json!({"pattern": "zeta"})).await.unwrap().text.starts_with("No matches for 'zeta'."));
    assert!(matches!(ws.run(&GrepTool, json!({"pattern": "("})).await.unwrap_err(), ToolError::Pattern { .. }));
}

#[tokio::test]
async fn a_search_of_one_short_file_that_finds_nothing_shows_the_file() {
    let ws = tree();
    let out = ws.run(&GrepTool, json!({"pattern": "syntax error", "path": "src/b.py"})).await.unwrap();
    assert_eq!(
        out.text,
        "No line of src/b.py matches that pattern. src/b.py is short, so here it is in full:\n     1\tdef \
         alpha():\n     2\t    pass\n"
    );
    // The model has now seen the file, so write may replace it.
    assert!(ws.ctx.has_seen(&ws.root().join("src/b.py")));
    // A search of a directory that finds nothing shows no file.
    let out = ws.run(&GrepTool, json!({"pattern": "syntax error", "path": "src"})).await.unwrap();
    assert!(!out.text.contains("all of it"), "{}", out.text);
}

#[tokio::test]
async fn an_empty_glob_filters_nothing_and_a_search_of_part_looks_at_the_rest() {
    let ws = tree();
    let out = ws.run(&GrepTool, json!({"pattern": "beta", "glob": "", "context": 0})).await.unwrap();
    assert_eq!(out.text, "src/a.rs:2:fn beta() {}\n");
    // Nothing in src/b.py; the rest of the workspace is searched and named as such.
    let out = ws.run(&GrepTool, json!({"pattern": "TODO", "path": "src/b.py", "glob": ""})).await.unwrap();
    assert_eq!(out.text, "No matches in src/b.py; elsewhere in the workspace:\nsrc/a.rs:3:// TODO: gamma\n");
}
