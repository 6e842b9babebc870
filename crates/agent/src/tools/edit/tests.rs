#![allow(clippy::unwrap_used)]

use serde_json::json;

use super::*;
use crate::tools::test_support::TestWorkspace;

#[tokio::test]
async fn replaces_a_unique_match_and_returns_a_diff() {
    let ws = TestWorkspace::new();
    ws.write_read("src/lib.rs", "fn a() {\n    1\n}\n\nfn b() {\n    2\n}\n");
    let out = ws
        .run(&EditTool, json!({"path": "src/lib.rs", "old_string": "fn b() {\n    2", "new_string": "fn b() {\n    3"}))
        .await
        .unwrap();
    assert_eq!(ws.read("src/lib.rs"), "fn a() {\n    1\n}\n\nfn b() {\n    3\n}\n");
    let diff = out.diff.unwrap();
    assert!(diff.starts_with("--- a/src/lib.rs\n+++ b/src/lib.rs\n@@"), "{diff}");
    assert!(diff.contains("-    2\n+    3\n"), "{diff}");
    // The model sees the new lines numbered as read shows them, not the diff.
    assert_eq!(
        out.text,
        "Edited src/lib.rs (1 replacement). Lines 5-6 and around now read:\n     3\t}\n     4\t\n     5\tfn b() {\n     \
         6\t    3\n     7\t}\n"
    );
    assert_eq!(out.changes[0].before.as_deref(), Some("fn a() {\n    1\n}\n\nfn b() {\n    2\n}\n"));
    assert_eq!(out.changes[0].after.as_deref(), Some("fn a() {\n    1\n}\n\nfn b() {\n    3\n}\n"));
}

#[tokio::test]
async fn several_matches_need_replace_all() {
    let ws = TestWorkspace::new();
    ws.write_read("a.txt", "x = 1\ny = 2\nx = 1\n");
    let err =
        ws.run(&EditTool, json!({"path": "a.txt", "old_string": "x = 1", "new_string": "x = 9"})).await.unwrap_err();
    assert!(matches!(err, ToolError::EditNotUnique { count: 2, .. }), "{err}");
    assert!(err.to_string().contains("lines 1, 3"), "{err}");
    assert_eq!(ws.read("a.txt"), "x = 1\ny = 2\nx = 1\n", "a refused edit changes nothing");
    let out = ws
        .run(&EditTool, json!({"path": "a.txt", "old_string": "x = 1", "new_string": "x = 9", "replace_all": true}))
        .await
        .unwrap();
    assert!(out.text.contains("2 replacements"));
    assert_eq!(ws.read("a.txt"), "x = 9\ny = 2\nx = 9\n");
}

#[tokio::test]
async fn no_match_points_at_a_whitespace_difference() {
    let ws = TestWorkspace::new();
    ws.write_read("a.py", "def f():\n    return 1\n");
    let err = ws
        .run(&EditTool, json!({"path": "a.py", "old_string": "\treturn 1", "new_string": "\treturn 2"}))
        .await
        .unwrap_err();
    assert!(matches!(err, ToolError::EditNoMatch { .. }), "{err}");
    assert!(err.to_string().contains("line 2 has the same text apart from whitespace"), "{err}");
    let err = ws.run(&EditTool, json!({"path": "a.py", "old_string": "zzz", "new_string": "y"})).await.unwrap_err();
    assert!(err.to_string().contains("read the file"), "{err}");
}

#[tokio::test]
async fn no_match_quotes_the_closest_line() {
    let ws = TestWorkspace::new();
    ws.write_read("config.json", "{\n  \"name\": \"svc\",\n  \"timeout\": 30,\n  \"retries\": 3\n}\n");
    let err = ws
        .run(&EditTool, json!({"path": "config.json", "old_string": "timeout: 30", "new_string": "timeout: 60"}))
        .await
        .unwrap_err();
    assert!(matches!(err, ToolError::EditNoMatch { .. }), "{err}");
    assert!(err.to_string().contains("the closest is line 3, which reads `  \"timeout\": 30,`"), "{err}");
    // Nothing close: no line is put forward.
    let err = ws
        .run(&EditTool, json!({"path": "config.json", "old_string": "listen_port = 8080", "new_string": "x"}))
        .await
        .unwrap_err();
    assert!(err.to_string().ends_with("read the file to see its current text"), "{err}");
}

#[tokio::test]
async fn crlf_files_accept_lf_text() {
    let ws = TestWorkspace::new();
    ws.write_read("w.txt", "one\r\ntwo\r\nthree\r\n");
    ws.run(&EditTool, json!({"path": "w.txt", "old_string": "one\ntwo", "new_string": "one\n2"})).await.unwrap();
    assert_eq!(ws.read("w.txt"), "one\r\n2\r\nthree\r\n");
}

#[tokio::test]
async fn empty_same_and_missing_are_refused() {
    let ws = TestWorkspace::new();
    ws.write_read("a.txt", "a\n");
    let err = ws.run(&EditTool, json!({"path": "a.txt", "old_string": "", "new_string": "b"})).await.unwrap_err();
    assert!(err.to_string().contains("use write"), "{err}");
    let err = ws.run(&EditTool, json!({"path": "a.txt", "old_string": "a", "new_string": "a"})).await.unwrap_err();
    assert!(matches!(err, ToolError::EditNoChange));
    let err = ws.run(&EditTool, json!({"path": "b.txt", "old_string": "a", "new_string": "b"})).await.unwrap_err();
    assert!(matches!(err, ToolError::NotFound(_)));
}

#[test]
fn describe_previews_the_diff_without_writing() {
    let ws = TestWorkspace::new();
    ws.write_read("a.txt", "hello\n");
    let request =
        EditTool.describe(&json!({"path": "a.txt", "old_string": "hello", "new_string": "bye"}), &ws.ctx).unwrap();
    assert_eq!(request.summary, "edit a.txt");
    assert!(request.preview.unwrap().contains("-hello\n+bye\n"));
    assert_eq!(ws.read("a.txt"), "hello\n");
}

#[tokio::test]
async fn a_file_the_model_has_not_read_is_refused_until_it_is_read() {
    let ws = TestWorkspace::new();
    ws.write("calc.py", "def add(a, b):\n    return a - b\n");
    let blind = json!({"path": "calc.py", "old_string": "add", "new_string": "subtract"});
    let err = ws.run(&EditTool, blind.clone()).await.unwrap_err();
    assert!(matches!(err, ToolError::EditNotReadYet(_)), "{err}");
    assert!(err.to_string().contains("read it first"), "{err}");
    // Refused before anyone is asked to approve it, too.
    assert!(matches!(EditTool.describe(&blind, &ws.ctx), Err(ToolError::EditNotReadYet(_))));
    assert_eq!(ws.read("calc.py"), "def add(a, b):\n    return a - b\n");
    ws.run(&crate::tools::read::ReadTool, json!({"path": "calc.py"})).await.unwrap();
    ws.run(&EditTool, json!({"path": "calc.py", "old_string": "a - b", "new_string": "a + b"})).await.unwrap();
    assert_eq!(ws.read("calc.py"), "def add(a, b):\n    return a + b\n");
}

#[tokio::test]
async fn an_insertion_made_before_is_not_made_twice() {
    let ws = TestWorkspace::new();
    ws.write_read("calc.py", "def add(a, b):\n    return a - b\n");
    let insert = json!({"path": "calc.py", "old_string": "def add(a, b):", "new_string": "def add(a, b):\n    \"\"\"Sum.\"\"\""});
    ws.run(&EditTool, insert.clone()).await.unwrap();
    let once = ws.read("calc.py");
    assert_eq!(once, "def add(a, b):\n    \"\"\"Sum.\"\"\"\n    return a - b\n");
    let err = ws.run(&EditTool, insert).await.unwrap_err();
    assert!(matches!(err, ToolError::AlreadyContains { line: 1, .. }), "{err}");
    assert!(err.to_string().contains("that change is done"), "{err}");
    assert_eq!(ws.read("calc.py"), once);
    // Text added before the match is recognised too, and a different insertion still goes through.
    let before = json!({"path": "calc.py", "old_string": "def add", "new_string": "# math\ndef add"});
    ws.run(&EditTool, before.clone()).await.unwrap();
    assert!(matches!(ws.run(&EditTool, before).await, Err(ToolError::AlreadyContains { line: 1, .. })));
    ws.run(&EditTool, json!({"path": "calc.py", "old_string": "a - b", "new_string": "a + b"})).await.unwrap();
    assert_eq!(ws.read("calc.py"), "# math\ndef add(a, b):\n    \"\"\"Sum.\"\"\"\n    return a + b\n");
}

#[tokio::test]
async fn an_edit_that_breaks_a_files_syntax_is_refused_unless_approved() {
    let ws = TestWorkspace::new();
    let good = "{\n  \"timeout\": 30,\n  \"retries\": 3\n}\n";
    ws.write_read("config.json", good);
    let broken = json!({"path": "config.json", "old_string": "\"timeout\": 30,", "new_string": "\"timeout\": 60"});
    let err = ws.run(&EditTool, broken.clone()).await.unwrap_err();
    assert!(matches!(err, ToolError::BreaksSyntax { tool: "edit", field: "new_string", .. }), "{err}");
    assert!(err.to_string().contains("unparseable as JSON (line 3: expected `,` or `}`"), "{err}");
    assert_eq!(ws.read("config.json"), good, "a refused edit changes nothing");
    // A person who saw the diff and approved it gets the change, and is told what it did.
    let approved = ToolContext { approved_by_user: true, ..ws.ctx.clone() };
    let out = EditTool.run(broken, &approved).await.unwrap();
    assert!(out.text.ends_with("config.json no longer parses as JSON: line 3: expected `,` or `}`"), "{}", out.text);
    assert!(ws.read("config.json").contains("\"timeout\": 60\n"));
}

#[tokio::test]
async fn an_edit_to_a_file_that_does_not_parse_says_whether_it_parses_now() {
    let ws = TestWorkspace::new();
    ws.write_read("shapes.py", "def area(w, h)\n    return w * h)\n");
    let out =
        ws.run(&EditTool, json!({"path": "shapes.py", "old_string": "w * h)", "new_string": "w * h"})).await.unwrap();
    assert!(out.text.ends_with("shapes.py still does not parse as Python: line 1: expected ':'"), "{}", out.text);
    let out = ws
        .run(&EditTool, json!({"path": "shapes.py", "old_string": "def area(w, h)", "new_string": "def area(w, h):"}))
        .await
        .unwrap();
    assert!(out.text.ends_with("    return w * h\nshapes.py now parses as Python."), "{}", out.text);
    assert_eq!(ws.read("shapes.py"), "def area(w, h):\n    return w * h\n");
}

#[tokio::test]
async fn lines_that_new_string_repeats_from_next_to_the_match_are_not_added_twice() {
    let ws = TestWorkspace::new();
    // The line after old_string, copied into new_string as well.
    ws.write_read("shapes.py", "def area(w, h)\n    return w * h\n");
    let out = ws
        .run(
            &EditTool,
            json!({"path": "shapes.py", "old_string": "def area(w, h)", "new_string": "def area(w, h):\n    return w * h"}),
        )
        .await
        .unwrap();
    assert_eq!(ws.read("shapes.py"), "def area(w, h):\n    return w * h\n");
    assert!(
        out.text.starts_with(
            "Edited shapes.py (1 replacement; new_string repeated the line next to old_string, so that line was \
             replaced, not added twice). Lines 1-2 and around now read:\n"
        ),
        "{}",
        out.text
    );
    // The line before, and a line put between the match and the line after it.
    ws.write_read("m.py", "import os\n\ndef f():\n    return 1\n\nprint(f())\n");
    ws.run(
        &EditTool,
        json!({"path": "m.py", "old_string": "    return 1", "new_string": "def f():\n    x = 1\n    return x"}),
    )
    .await
    .unwrap();
    assert_eq!(ws.read("m.py"), "import os\n\ndef f():\n    x = 1\n    return x\n\nprint(f())\n");
    ws.run(&EditTool, json!({"path": "m.py", "old_string": "import os", "new_string": "import os\nimport sys\n"}))
        .await
        .unwrap();
    assert_eq!(ws.read("m.py"), "import os\nimport sys\n\n\ndef f():\n    x = 1\n    return x\n\nprint(f())\n");
    ws.run(
        &EditTool,
        json!({"path": "m.py", "old_string": "    return x", "new_string": "    return x\n\nprint(\"start\")\n\nprint(f())"}),
    )
    .await
    .unwrap();
    assert_eq!(
        ws.read("m.py"),
        "import os\nimport sys\n\n\ndef f():\n    x = 1\n    return x\n\nprint(\"start\")\n\nprint(f())\n"
    );
}

#[tokio::test]
async fn repeated_text_that_is_not_a_whole_neighbouring_line_is_added_as_asked() {
    let ws = TestWorkspace::new();
    ws.write_read("a.txt", "one\ntwo three\n");
    // `two` starts the next line but is not all of it.
    ws.run(&EditTool, json!({"path": "a.txt", "old_string": "one", "new_string": "zero\ntwo"})).await.unwrap();
    assert_eq!(ws.read("a.txt"), "zero\ntwo\ntwo three\n");
    // Blank lines are no evidence of a repeat.
    ws.write_read("b.txt", "a\n\nb\n");
    ws.run(&EditTool, json!({"path": "b.txt", "old_string": "a", "new_string": "c\n"})).await.unwrap();
    assert_eq!(ws.read("b.txt"), "c\n\n\nb\n");
}

#[tokio::test]
async fn a_replacement_made_before_is_reported_done() {
    let ws = TestWorkspace::new();
    ws.write_read("config.json", "{\n  \"name\": \"svc\",\n  \"timeout\": 30,\n  \"retries\": 3\n}\n");
    let change = json!({"path": "config.json", "old_string": "  \"timeout\": 30,", "new_string": "  \"timeout\": 60,"});
    ws.run(&EditTool, change.clone()).await.unwrap();
    let once = ws.read("config.json");
    let err = ws.run(&EditTool, change).await.unwrap_err();
    assert!(matches!(err, ToolError::EditAlreadyApplied { line: 3, .. }), "{err}");
    assert!(err.is_already_done() && err.to_string().contains("that change is done"), "{err}");
    assert_eq!(ws.read("config.json"), once);
    // A new_string of a few characters may be in the file by chance: still no match.
    let err = ws.run(&EditTool, json!({"path": "config.json", "old_string": "svc2", "new_string": " 3\n"})).await;
    assert!(matches!(err, Err(ToolError::EditNoMatch { .. })), "{err:?}");
}

#[tokio::test]
async fn a_rename_of_one_use_names_the_uses_left() {
    let ws = TestWorkspace::new();
    ws.write_read("main.py", "from users import get_user\n\nprint(get_user(7)['id'])\n");
    let out = ws
        .run(&EditTool, json!({"path": "main.py", "old_string": "get_user(7)", "new_string": "fetch_user(7)"}))
        .await
        .unwrap();
    assert!(
        out.text.contains("get_user is still used in main.py: line 1: `from users import get_user`"),
        "{}",
        out.text
    );
    let out = ws
        .run(&EditTool, json!({"path": "main.py", "old_string": "import get_user", "new_string": "import fetch_user"}))
        .await
        .unwrap();
    assert!(!out.text.contains("still used"), "{}", out.text);
    assert_eq!(ws.read("main.py"), "from users import fetch_user\n\nprint(fetch_user(7)['id'])\n");
}

#[tokio::test]
async fn a_method_added_at_the_top_level_is_named_and_its_fix_applies() {
    let ws = TestWorkspace::new();
    ws.write_read(
        "test_mathx.py",
        "from mathx import subtract\n\n\ndef test_zero():\n    assert subtract(1, 1) == 0\n",
    );
    let out = ws
        .run(
            &EditTool,
            json!({"path": "test_mathx.py", "old_string": "    assert subtract(1, 1) == 0",
                   "new_string": "    assert subtract(1, 1) == 0\n\ndef test_subtract(self):\n    assert subtract(5, 3) == 2"}),
        )
        .await
        .unwrap();
    let (_, call) = out.text.split_once("call edit with these arguments: ").unwrap();
    let out = ws.run(&EditTool, serde_json::from_str(call).unwrap()).await.unwrap();
    assert!(!out.text.contains("self"), "{}", out.text);
    assert!(ws.read("test_mathx.py").contains("\ndef test_subtract():\n"));
}

#[tokio::test]
async fn line_numbers_copied_from_read_are_named() {
    let ws = TestWorkspace::new();
    let text = "def slug(s):\n    return s.lower()\n";
    ws.write_read("strings.py", text);
    let numbered_old = json!({"path": "strings.py", "old_string": "     2\t    return s.lower()", "new_string": "    return s.upper()"});
    let err = ws.run(&EditTool, numbered_old).await.unwrap_err().to_string();
    assert!(
        err.contains("its lines start with line numbers as read shows them (`     2\t    return s.lower()`)"),
        "{err}"
    );
    let numbered_new = json!({"path": "strings.py", "old_string": "    return s.lower()", "new_string": "     2\t    return s.upper()"});
    let err = ws.run(&EditTool, numbered_new).await.unwrap_err();
    assert!(matches!(err, ToolError::CopiedLineNumbers { field: "new_string", .. }), "{err}");
    assert_eq!(ws.read("strings.py"), text);
}
