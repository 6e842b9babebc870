//! `hearth exec --json` end to end on the CI model (SmolLM2-135M): the real binary, a real
//! model, a fixture repository. A 135M model proves the plumbing, not intelligence: the event
//! stream is well-formed, every tool call the grammar let through names a real tool with an
//! object of arguments, and nothing outside the workspace is touched.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use serde_json::Value;

const TOOLS: &[&str] = &["read", "write", "edit", "glob", "grep", "shell", "todo", "task"];

#[test]
fn exec_json_streams_well_formed_events() {
    // The binary pulls the model itself; make sure it is cached first so the test's time is
    // the agent's.
    hearth_hub::model_for_tests(hearth_hub::CI_MODEL).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("src")).unwrap();
    std::fs::write(dir.path().join("src/calc.py"), "def add(a, b):\n    return a - b\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["exec", "List the Python files in this project.", "--json", "--no-session"])
        .args(["-m", "smollm2-135m", "--mode", "plan", "--max-steps", "2", "-n", "48", "--temp", "0"])
        .arg("-C")
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "exec failed: {}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    let events: Vec<Value> =
        stdout.lines().map(|l| serde_json::from_str(l).expect("one JSON object per line")).collect();
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds.first(), Some(&"started"));
    assert_eq!(kinds.last(), Some(&"finished"));
    assert!(kinds.contains(&"usage") && kinds.contains(&"turn_done"), "{kinds:?}");
    for e in events.iter().filter(|e| e["type"] == "tool_call") {
        let name = e["name"].as_str().unwrap();
        assert!(TOOLS.contains(&name), "unknown tool {name}");
        // Plan mode offers only read-only tools: the grammar cannot emit the others.
        assert!(!["write", "edit", "shell"].contains(&name), "plan mode emitted {name}");
        assert!(e["arguments"].is_object(), "{e}");
    }
    let usage: Vec<&Value> = events.iter().filter(|e| e["type"] == "usage").collect();
    assert!(usage[0]["prompt_tokens"].as_u64().unwrap() > 100);
    // Later calls in the turn reuse the cached conversation.
    for u in &usage[1..] {
        assert!(u["cached_prompt_tokens"].as_u64().unwrap() > 0, "{u}");
    }
    // The file is untouched in plan mode.
    assert_eq!(std::fs::read_to_string(dir.path().join("src/calc.py")).unwrap(), "def add(a, b):\n    return a - b\n");
}

/// Runs `hearth exec --json` in `workspace` with sessions kept under `state`.
fn exec(workspace: &std::path::Path, state: &std::path::Path, extra: &[&str], task: &str) -> (Vec<Value>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .env("XDG_STATE_HOME", state)
        .args(["exec", task, "--json", "-m", "smollm2-135m", "--max-steps", "1", "-n", "8", "--temp", "0"])
        .args(extra)
        .arg("-C")
        .arg(workspace)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "exec failed: {stderr}\n{stdout}");
    (stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect(), stderr)
}

#[test]
fn resume_continues_from_the_kv_saved_on_disk() {
    hearth_hub::model_for_tests(hearth_hub::CI_MODEL).unwrap();
    let workspace = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let (first, _) = exec(workspace.path(), state.path(), &[], "Say hello.");
    let context = first.iter().find(|e| e["type"] == "finished").unwrap()["context_tokens"].as_u64().unwrap();

    // A new process: nothing is cached in memory, so every reused token came from the KV file.
    let (second, stderr) = exec(workspace.path(), state.path(), &["--resume", "last"], "Say goodbye.");
    assert!(stderr.contains("restored from disk"), "{stderr}");
    let usage = second.iter().find(|e| e["type"] == "usage").unwrap();
    let cached = usage["cached_prompt_tokens"].as_u64().unwrap();
    let prompt = usage["prompt_tokens"].as_u64().unwrap();
    assert!(cached + 40 >= context && prompt - cached < 60, "{usage} after a first turn of {context} tokens");

    let err = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .env("XDG_STATE_HOME", state.path())
        .args(["exec", "x", "-m", "smollm2-135m", "--resume", "no-such-session"])
        .arg("-C")
        .arg(workspace.path())
        .output()
        .unwrap();
    assert!(!err.status.success());
    assert!(String::from_utf8_lossy(&err.stderr).contains("no session \"no-such-session\""));
}
