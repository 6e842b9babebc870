#![allow(clippy::unwrap_used)]

use serde_json::json;

use super::*;
use crate::tools::test_support::TestWorkspace;

#[tokio::test]
async fn creates_files_and_parent_directories() {
    let ws = TestWorkspace::new();
    let out = ws.run(&WriteTool, json!({"path": "a/b/new.txt", "content": "one\ntwo\n"})).await.unwrap();
    assert_eq!(out.text, "Created a/b/new.txt (2 lines)");
    assert_eq!(ws.read("a/b/new.txt"), "one\ntwo\n");
    assert_eq!(
        out.changes,
        vec![FileChange { path: "a/b/new.txt".into(), before: None, after: Some("one\ntwo\n".into()) }]
    );
}

#[tokio::test]
async fn overwrites_and_keeps_the_old_content_for_undo() {
    let ws = TestWorkspace::new();
    ws.write("f.txt", "old\n");
    // A file the model has not read cannot be replaced.
    let err = ws.run(&WriteTool, json!({"path": "f.txt", "content": "new\n"})).await.unwrap_err();
    assert!(matches!(err, ToolError::NotReadYet(_)), "{err}");
    assert!(err.to_string().contains("read it first"), "{err}");
    assert_eq!(ws.read("f.txt"), "old\n");
    ws.run(&crate::tools::read::ReadTool, json!({"path": "f.txt"})).await.unwrap();
    // Deleting lines is refused, however often it is asked, naming a line it would lose.
    for _ in 0..2 {
        let err = ws.run(&WriteTool, json!({"path": "f.txt", "content": "new\n"})).await.unwrap_err();
        assert!(matches!(&err, ToolError::WouldDeleteLines { count: 1, example, .. } if example == "old"), "{err}");
        assert_eq!(ws.read("f.txt"), "old\n");
    }
    // Keeping the old line goes through, and the old content is kept for undo.
    let out = ws.run(&WriteTool, json!({"path": "f.txt", "content": "old\nnew\n"})).await.unwrap();
    assert_eq!(out.text, "Overwrote f.txt (2 lines)");
    assert_eq!(ws.read("f.txt"), "old\nnew\n");
    assert_eq!(out.changes[0].before.as_deref(), Some("old\n"));
    let diff = out.diff.unwrap();
    assert!(diff.contains(" old\n+new\n"), "{diff}");
}

#[tokio::test]
async fn refuses_directories_and_non_text_files() {
    let ws = TestWorkspace::new();
    ws.write("d/x.txt", "x");
    ws.write("latin1.txt", [0xe9u8, b'\n']);
    ws.ctx.mark_seen(&ws.root().join("latin1.txt"));
    let err = ws.run(&WriteTool, json!({"path": "d", "content": "x"})).await.unwrap_err();
    assert!(matches!(err, ToolError::IsDirectory(_)), "{err}");
    let err = ws.run(&WriteTool, json!({"path": "latin1.txt", "content": "x"})).await.unwrap_err();
    assert!(matches!(err, ToolError::NotText(_)), "{err}");
    assert_eq!(std::fs::read(ws.root().join("latin1.txt")).unwrap(), vec![0xe9u8, b'\n']);
}

#[test]
fn describe_previews_the_change() {
    let ws = TestWorkspace::new();
    ws.write("f.txt", "old\n");
    // Nobody is asked to approve replacing a file the model has not read.
    let unread = WriteTool.describe(&json!({"path": "f.txt", "content": "new\n"}), &ws.ctx);
    assert!(matches!(unread, Err(ToolError::NotReadYet(_))));
    ws.write_read("f.txt", "old\n");
    let request = WriteTool.describe(&json!({"path": "f.txt", "content": "new\n"}), &ws.ctx).unwrap();
    assert_eq!(request.summary, "overwrite f.txt");
    assert!(request.preview.unwrap().contains("+new"));
    let request = WriteTool.describe(&json!({"path": "g.txt", "content": "a\nb\n"}), &ws.ctx).unwrap();
    assert_eq!(request.summary, "create g.txt (2 lines)");
}

#[tokio::test]
async fn a_rewrite_that_keeps_every_line_goes_through_at_once() {
    let ws = TestWorkspace::new();
    ws.write("calc.py", "def add(a, b):\n    return a + b\n");
    ws.run(&crate::tools::read::ReadTool, json!({"path": "calc.py"})).await.unwrap();
    let grown = "def add(a, b):\n    return a + b\n\n\ndef multiply(a, b):\n    return a * b\n";
    ws.run(&WriteTool, json!({"path": "calc.py", "content": grown})).await.unwrap();
    assert_eq!(ws.read("calc.py"), grown);
    // Replacing the file with a new function alone is refused, pointing at an edit that appends
    // after the file's last line.
    let only_new = "def subtract(a, b):\n    return a - b\n";
    let err = ws.run(&WriteTool, json!({"path": "calc.py", "content": only_new})).await.unwrap_err();
    let message = err.to_string();
    assert!(message.contains("delete 4 line(s) of 'calc.py', such as `def add(a, b):`"), "{message}");
    let call = r#"call edit with these arguments: {"path":"calc.py","old_string":"    return a * b","new_string":"    return a * b\n\ndef subtract(a, b):\n    return a - b"}"#;
    assert!(message.contains(call), "{message}");
    // Following it adds the function and keeps the others.
    let edit = message.split("these arguments: ").nth(1).unwrap().split(". To rewrite").next().unwrap();
    let edit: serde_json::Value = serde_json::from_str(edit).unwrap();
    ws.run(&crate::tools::edit::EditTool, edit).await.unwrap();
    assert_eq!(ws.read("calc.py"), format!("{grown}\ndef subtract(a, b):\n    return a - b\n"));
    // Writing the added part again is answered as done, and changes nothing.
    let err = ws.run(&WriteTool, json!({"path": "calc.py", "content": only_new})).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "'calc.py' already contains this text (from line 8), so nothing was written; that change is done"
    );
    assert_eq!(ws.read("calc.py"), format!("{grown}\ndef subtract(a, b):\n    return a - b\n"));
}

#[tokio::test]
async fn a_write_of_what_the_file_holds_changes_nothing() {
    let ws = TestWorkspace::new();
    ws.write("count.py", "print(sum(i * i for i in range(20)))\n");
    ws.run(&crate::tools::read::ReadTool, json!({"path": "count.py"})).await.unwrap();
    // The same text, with or without its final newline, is no change; the file keeps its bytes.
    for content in ["print(sum(i * i for i in range(20)))\n", "print(sum(i * i for i in range(20)))"] {
        let err = ws.run(&WriteTool, json!({"path": "count.py", "content": content})).await.unwrap_err();
        assert!(matches!(&err, ToolError::WriteNoChange(path) if path == "count.py"), "{err}");
        assert!(err.to_string().contains("nothing was written"), "{err}");
        assert_eq!(ws.read("count.py"), "print(sum(i * i for i in range(20)))\n");
    }
    // Adding a final newline is a change.
    ws.write("bare.txt", "x");
    ws.run(&crate::tools::read::ReadTool, json!({"path": "bare.txt"})).await.unwrap();
    ws.run(&WriteTool, json!({"path": "bare.txt", "content": "x\n"})).await.unwrap();
    assert_eq!(ws.read("bare.txt"), "x\n");
}

#[tokio::test]
async fn a_write_that_does_not_parse_is_refused_unless_the_file_did_not_parse_before() {
    let ws = TestWorkspace::new();
    let err =
        ws.run(&WriteTool, json!({"path": "Cargo.toml", "content": "[package\nname = \"x\"\n"})).await.unwrap_err();
    assert!(matches!(err, ToolError::BreaksSyntax { tool: "write", field: "content", .. }), "{err}");
    assert!(err.to_string().contains("unparseable as TOML (line 1: "), "{err}");
    assert!(err.to_string().contains("that line would read `[package`"), "{err}");
    assert!(!ws.root().join("Cargo.toml").exists(), "nothing was written");
    // A file that did not parse before may be rewritten; the result says whether it parses now.
    ws.write_read("Cargo.toml", "[package]\nname = \"x\n");
    let still = json!({"path": "Cargo.toml", "content": "[package]\nname = \"x\nedition = \"2024\"\n"});
    let out = ws.run(&WriteTool, still).await.unwrap();
    assert!(
        out.text.starts_with("Overwrote Cargo.toml (3 lines)\nCargo.toml still does not parse as TOML: line 2"),
        "{}",
        out.text
    );
    let approved = ToolContext { approved_by_user: true, ..ws.ctx.clone() };
    let fixed = json!({"path": "Cargo.toml", "content": "[package]\nname = \"x\"\n"});
    let out = WriteTool.run(fixed, &approved).await.unwrap();
    assert_eq!(out.text, "Overwrote Cargo.toml (2 lines)\nCargo.toml now parses as TOML.");
    // Files of kinds that are not checked are written as given.
    let out = ws.run(&WriteTool, json!({"path": "notes.txt", "content": "[package\n"})).await.unwrap();
    assert_eq!(out.text, "Created notes.txt (1 lines)");
}

#[tokio::test]
async fn a_rewrite_may_drop_a_doubled_line() {
    let ws = TestWorkspace::new();
    ws.write_read("shapes.txt", "def area(w, h):\n    return w * h\n    return w * h\n");
    let out = ws.run(&WriteTool, json!({"path": "shapes.txt", "content": "def area(w, h):\n    return w * h\n"})).await;
    assert_eq!(out.unwrap().text, "Overwrote shapes.txt (2 lines)");
    // A line with no copy left is still refused.
    let err = ws.run(&WriteTool, json!({"path": "shapes.txt", "content": "def area(w, h):\n    pass\n"})).await;
    assert!(matches!(err, Err(ToolError::WouldDeleteLines { count: 1, .. })), "{err:?}");
}

#[tokio::test]
async fn a_new_file_with_a_top_level_method_says_so() {
    let ws = TestWorkspace::new();
    let out =
        ws.run(&WriteTool, json!({"path": "t.py", "content": "def test_a(self):\n    assert True\n"})).await.unwrap();
    assert!(out.text.starts_with("Created t.py (2 lines)\n`test_a` (line 1) takes `self`"), "{}", out.text);
    let out = ws.run(&WriteTool, json!({"path": "u.py", "content": "def test_a():\n    assert True\n"})).await.unwrap();
    assert_eq!(out.text, "Created u.py (2 lines)");
}

#[tokio::test]
async fn a_rewrite_with_a_name_the_file_defines_is_not_offered_as_an_append() {
    let ws = TestWorkspace::new();
    let fixed = "from mathx import subtract\n\ndef test_subtract():\n    assert subtract(5, 3) == 2\n";
    ws.write_read("test_mathx.py", fixed);
    let again =
        json!({"path": "test_mathx.py", "content": "def test_subtract(self):\n    assert subtract(5, 3) == 4\n"});
    let err = ws.run(&WriteTool, again).await.unwrap_err().to_string();
    assert!(
        err.contains("test_mathx.py already defines `test_subtract` (line 3: `def test_subtract():`), and adding"),
        "{err}"
    );
    assert!(!err.contains("arguments"), "{err}");
    assert_eq!(ws.read("test_mathx.py"), fixed);
    // New names are still offered as an append.
    let more = json!({"path": "test_mathx.py", "content": "def test_more():\n    assert subtract(2, 2) == 0\n"});
    let err = ws.run(&WriteTool, more).await.unwrap_err().to_string();
    assert!(err.contains("call edit with these arguments"), "{err}");
}

#[tokio::test]
async fn content_with_line_numbers_from_read_is_refused() {
    let ws = TestWorkspace::new();
    let text = "def slug(s):\n    return s.lower()\n";
    ws.write_read("strings.py", text);
    let numbered = json!({"path": "strings.py", "content": "     1    def slug(s):\n     2        return s.lower()"});
    let err = ws.run(&WriteTool, numbered.clone()).await.unwrap_err();
    assert!(
        err.to_string().starts_with(
            "content starts its lines with line numbers as read shows them, such as `     1    def slug(s):`"
        ),
        "{err}"
    );
    assert_eq!(ws.read("strings.py"), text);
    // A new file gets the same refusal, and a person's approval lets the text through.
    let new_file = json!({"path": "new.txt", "content": "     1\tone\n     2\ttwo\n"});
    assert!(matches!(ws.run(&WriteTool, new_file.clone()).await, Err(ToolError::CopiedLineNumbers { .. })));
    let approved = ToolContext { approved_by_user: true, ..ws.ctx.clone() };
    WriteTool.run(new_file, &approved).await.unwrap();
    assert_eq!(ws.read("new.txt"), "     1\tone\n     2\ttwo\n");
}
