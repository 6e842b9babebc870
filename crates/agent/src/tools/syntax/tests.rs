#![allow(clippy::unwrap_used)]

use std::path::Path;

use super::{Language, SyntaxChange, SyntaxProblem, problem, quoted_line};

fn python(line: usize, message: &str) -> SyntaxProblem {
    SyntaxProblem { language: Language::Python, line, message: message.to_string() }
}

#[test]
fn languages_come_from_file_names() {
    assert_eq!(Language::of(Path::new("src/app.py")), Some(Language::Python));
    assert_eq!(Language::of(Path::new("stubs/app.pyi")), Some(Language::Python));
    assert_eq!(Language::of(Path::new("config.json")), Some(Language::Json));
    assert_eq!(Language::of(Path::new("Cargo.toml")), Some(Language::Toml));
    assert_eq!(Language::of(Path::new("main.rs")), None);
    assert_eq!(Language::of(Path::new("Makefile")), None);
    // JSON read with comments allowed is not held to strict JSON.
    assert_eq!(Language::of(Path::new("tsconfig.json")), None);
    assert_eq!(Language::of(Path::new("web/tsconfig.build.json")), None);
    assert_eq!(Language::of(Path::new(".vscode/settings.json")), None);
}

#[test]
fn json_errors_name_the_line() {
    assert_eq!(problem(Path::new("a.json"), "{\"a\": 1}\n"), None);
    let found = problem(Path::new("a.json"), "{\n  \"a\": 1,\n}\n").unwrap();
    assert_eq!(found.language, Language::Json);
    assert_eq!(found.line, 3);
    assert!(found.message.contains("trailing comma"), "{found}");
    assert!(!found.message.contains("at line"), "the line is given once: {found}");
}

#[test]
fn toml_errors_name_the_line() {
    assert_eq!(problem(Path::new("a.toml"), "[package]\nname = \"x\"\n"), None);
    let found = problem(Path::new("a.toml"), "[package]\nname = \"x\n").unwrap();
    assert_eq!((found.language, found.line), (Language::Toml, 2));
    assert!(!found.message.is_empty());
}

#[test]
fn python_errors_name_the_line_without_running_the_code() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let source = format!("open({:?}, 'w').write('x')\n", marker.display().to_string());
    assert_eq!(problem(Path::new("a.py"), &source), None);
    assert!(!marker.exists(), "the check ran the code");
    assert_eq!(problem(Path::new("shapes.py"), "def area(w, h)\n    return w * h\n"), Some(python(1, "expected ':'")));
    let found = problem(Path::new("a.py"), "def f():\nreturn 1\n").unwrap();
    assert_eq!(found.line, 2, "{found}");
    assert!(found.message.contains("indented block"), "{found}");
}

#[test]
fn unchecked_files_have_no_problem() {
    assert_eq!(problem(Path::new("notes.txt"), "{ not json"), None);
    assert_eq!(problem(Path::new("tsconfig.json"), "{ // comment\n}"), None);
}

#[test]
fn changes_are_judged_against_the_text_before() {
    let path = Path::new("shapes.py");
    let good = "def area(w, h):\n    return w * h\n";
    let bad = "def area(w, h)\n    return w * h\n";
    let worse = "def area(w, h)\n    return w * h)\n";
    assert_eq!(SyntaxChange::of(path, Some(good), good.replace('w', "x").as_str()), SyntaxChange::Clean);
    assert_eq!(SyntaxChange::of(path, Some(good), bad), SyntaxChange::Breaks(python(1, "expected ':'")));
    assert_eq!(SyntaxChange::of(path, None, bad), SyntaxChange::Breaks(python(1, "expected ':'")));
    assert!(matches!(SyntaxChange::of(path, Some(bad), worse), SyntaxChange::StillBroken(_)));
    assert_eq!(SyntaxChange::of(path, Some(bad), good), SyntaxChange::Fixed(Language::Python));
    assert_eq!(SyntaxChange::of(Path::new("notes.txt"), Some("a"), "b"), SyntaxChange::Clean);
}

#[test]
fn notes_say_what_the_change_did() {
    assert_eq!(SyntaxChange::Clean.note("a.py"), None);
    assert_eq!(SyntaxChange::Fixed(Language::Python).note("a.py").unwrap(), "a.py now parses as Python.");
    assert_eq!(
        SyntaxChange::StillBroken(python(3, "invalid syntax")).note("a.py").unwrap(),
        "a.py still does not parse as Python: line 3: invalid syntax"
    );
}

#[test]
fn quoted_lines_are_trimmed_and_never_blank() {
    let text = "a\n\n    b  \n";
    assert_eq!(quoted_line(text, 1), Some("a"));
    assert_eq!(quoted_line(text, 2), None);
    assert_eq!(quoted_line(text, 3), Some("b"));
    assert_eq!(quoted_line(text, 0), None);
    assert_eq!(quoted_line(text, 9), None);
}

#[test]
fn refusals_quote_the_broken_line() {
    let text = super::refusal("edit", "new_string", "shapes.py".into(), "def area(w, h)\n", &python(1, "expected ':'"))
        .to_string();
    assert!(text.starts_with("this edit would leave 'shapes.py' unparseable as Python (line 1: expected ':'; that line would read `def area(w, h)`), so nothing was written"), "{text}");
    assert!(text.contains("correct the new_string you gave"), "{text}");
}
