#![allow(clippy::unwrap_used)]

use std::time::Instant;

use serde_json::json;

use super::*;
use crate::tools::test_support::TestWorkspace;

#[tokio::test]
async fn shows_stdout_stderr_and_the_exit_code() {
    let ws = TestWorkspace::new();
    let out = ws.run(&ShellTool, json!({"command": "echo out; echo err >&2; exit 3"})).await.unwrap();
    assert!(out.text.contains("out\n"), "{}", out.text);
    assert!(out.text.contains("err\n"), "{}", out.text);
    assert!(out.text.ends_with("[exit code 3]"), "{}", out.text);
    assert!(out.failed, "a non-zero exit is a failed call");
    assert_eq!(out.exit_code, Some(3));
    let quiet = ws.run(&ShellTool, json!({"command": "true"})).await.unwrap();
    assert_eq!(quiet.text, "(no output)\n[exit code 0]");
    assert!(!quiet.failed);
    assert_eq!(quiet.exit_code, Some(0));
    let killed = ws.run(&ShellTool, json!({"command": "kill -9 $$"})).await.unwrap();
    assert!(killed.text.contains("[killed by a signal"), "{}", killed.text);
    assert!(killed.failed);
    assert_eq!(killed.exit_code, None);
}

#[tokio::test]
async fn runs_in_the_workspace_or_the_given_directory() {
    let ws = TestWorkspace::new();
    ws.write("sub/file.txt", "x");
    let out = ws.run(&ShellTool, json!({"command": "pwd"})).await.unwrap();
    assert!(out.text.starts_with(&format!("{}\n", ws.root().display())), "{}", out.text);
    // An empty directory is the default, not an error.
    let out = ws.run(&ShellTool, json!({"command": "pwd", "workdir": ""})).await.unwrap();
    assert!(out.text.starts_with(&format!("{}\n", ws.root().display())), "{}", out.text);
    let out = ws.run(&ShellTool, json!({"command": "pwd; ls", "workdir": "sub"})).await.unwrap();
    assert!(out.text.starts_with(&format!("{}\nfile.txt\n", ws.root().join("sub").display())), "{}", out.text);
    let err = ws.run(&ShellTool, json!({"command": "pwd", "workdir": "../"})).await.unwrap_err();
    assert!(matches!(err, ToolError::Workspace(_)), "{err}");
    // A file named as the directory (the script to run) means its directory.
    let out = ws.run(&ShellTool, json!({"command": "pwd", "workdir": "sub/file.txt"})).await.unwrap();
    let sub = ws.root().join("sub");
    let expected =
        format!("[workdir 'sub/file.txt' is a file, so the command ran in its directory, sub]\n{}\n", sub.display());
    assert!(out.text.starts_with(&expected), "{}", out.text);
    ws.write("top.py", "");
    let out = ws.run(&ShellTool, json!({"command": "pwd", "workdir": "top.py"})).await.unwrap();
    assert!(
        out.text.starts_with("[workdir 'top.py' is a file, so the command ran in its directory, the workspace root]\n"),
        "{}",
        out.text
    );
    let err = ws.run(&ShellTool, json!({"command": "pwd", "workdir": "missing"})).await.unwrap_err();
    assert!(matches!(err, ToolError::NotFound(_)), "{err}");
}

#[tokio::test]
async fn writes_inside_the_workspace_persist() {
    let ws = TestWorkspace::new();
    ws.run(&ShellTool, json!({"command": "mkdir -p out && echo made > out/f.txt"})).await.unwrap();
    assert_eq!(ws.read("out/f.txt"), "made\n");
}

#[tokio::test]
async fn a_command_past_its_time_limit_is_killed_with_its_output() {
    let ws = TestWorkspace::new();
    let started = Instant::now();
    let err = ws.run(&ShellTool, json!({"command": "echo started; sleep 30", "timeout_secs": 1})).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
    match err {
        ToolError::Timeout { seconds: 1, output } => assert!(output.contains("started"), "{output}"),
        other => panic!("{other}"),
    }
}

#[tokio::test]
async fn background_processes_do_not_hold_the_call() {
    let ws = TestWorkspace::new();
    let started = Instant::now();
    let out = ws.run(&ShellTool, json!({"command": "sleep 30 & echo done"})).await.unwrap();
    assert!(out.text.starts_with("done\n"), "{}", out.text);
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
}

#[tokio::test]
async fn a_cancelled_call_kills_what_the_command_started() {
    for policy in [SandboxPolicy::Auto, SandboxPolicy::Off] {
        let mut ws = TestWorkspace::new();
        ws.ctx.shell.sandbox = policy;
        let marker = ws.root().join("survived");
        let command = format!("(sleep 1; touch {}) & sleep 30", marker.display());
        let call = ws.run(&ShellTool, json!({"command": command}));
        // Dropping the future is what cancelling a turn does.
        assert!(tokio::time::timeout(Duration::from_millis(300), call).await.is_err());
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(!marker.exists(), "{policy:?}: a background process outlived the cancelled call");
    }
}

#[tokio::test]
async fn long_output_keeps_head_and_tail() {
    let mut ws = TestWorkspace::new();
    ws.ctx.shell.max_output_bytes = 1000;
    let out = ws.run(&ShellTool, json!({"command": "seq 1 100000"})).await.unwrap();
    assert!(out.text.starts_with("1\n2\n3\n"), "{}", &out.text[..50]);
    assert!(out.text.contains("bytes of output left out"), "{}", out.text);
    assert!(out.text.ends_with("99999\n100000\n[exit code 0]"), "{}", out.text);
    assert!(out.text.len() < 1200);
}

#[tokio::test]
async fn the_environment_is_scrubbed() {
    let mut ws = TestWorkspace::new();
    // cargo sets CARGO_MANIFEST_DIR for test processes; it is not on the pass-through list.
    assert!(std::env::var("CARGO_MANIFEST_DIR").is_ok());
    let probe = json!({"command": "echo \"[$CARGO_MANIFEST_DIR] [$TERM] [$HEARTH_SANDBOX] [${PATH:+path}]\""});
    let out = ws.run(&ShellTool, probe.clone()).await.unwrap();
    assert!(out.text.starts_with("[] [dumb] ["), "{}", out.text);
    assert!(out.text.contains("] [path]"), "{}", out.text);
    ws.ctx.shell.env_passthrough = vec!["CARGO_MANIFEST_DIR".into()];
    let out = ws.run(&ShellTool, probe).await.unwrap();
    assert!(out.text.starts_with(&format!("[{}]", env!("CARGO_MANIFEST_DIR"))), "{}", out.text);
}

#[test]
fn describe_carries_the_command_for_the_rules() {
    let ws = TestWorkspace::new();
    let request = ShellTool.describe(&json!({"command": "cargo test", "workdir": "crates"}), &ws.ctx).unwrap();
    assert_eq!(request.command.as_deref(), Some("cargo test"));
    assert_eq!(request.summary, "run: cargo test (in crates)");
    assert_eq!(request.effect, Effect::Command);
}
