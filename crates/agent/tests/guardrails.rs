//! Guardrails through the public API, as the agent loop will call it: paths outside the
//! workspace (absolute, `..`, file and directory symlinks) are refused by every tool, a denied
//! command is refused in full-auto mode, and the shell sandbox blocks writes outside the
//! workspace and all network, including a server on the host's localhost.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use hearth_agent::permissions::NonInteractive;
use hearth_agent::session::SessionMeta;
use hearth_agent::tools::{Sandbox, SandboxKind, SandboxPolicy};
use hearth_agent::{CommandRules, Event, Mode, Permissions, Session, ToolContext, ToolError, ToolRegistry, Workspace};
use serde_json::{Value, json};

/// A workspace and a directory beside it, both under cargo's target tmp dir (not `/tmp`, so a
/// sandbox's private `/tmp` cannot hide an escape), with links from inside to outside.
struct Fixture {
    _base: tempfile::TempDir,
    outside: PathBuf,
    ctx: ToolContext,
    registry: ToolRegistry,
    permissions: Permissions,
}

impl Fixture {
    fn new() -> Self {
        let base = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        let inside = base.path().join("workspace");
        let outside = base.path().join("outside");
        std::fs::create_dir_all(inside.join("src")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(inside.join("src/main.rs"), "fn main() {}\n").unwrap();
        std::fs::write(outside.join("secret.txt"), "TOP SECRET\n").unwrap();
        symlink(outside.join("secret.txt"), inside.join("link_file")).unwrap();
        symlink(&outside, inside.join("link_dir")).unwrap();
        let outside = outside.canonicalize().unwrap();
        let ctx = ToolContext::new(Workspace::new(&inside).unwrap());
        let permissions = Permissions::new(Mode::FullAuto, CommandRules::new(&["*"], &["rm -rf *", "curl"]).unwrap());
        Self { _base: base, outside, ctx, registry: ToolRegistry::standard(), permissions }
    }

    async fn call(&self, tool: &str, args: Value) -> Result<String, ToolError> {
        self.registry.call(tool, args, &self.ctx, &self.permissions, &NonInteractive).await.map(|out| out.text)
    }

    fn outside(&self, name: &str) -> String {
        self.outside.join(name).display().to_string()
    }
}

fn assert_refused(result: Result<String, ToolError>, phrase: &str) {
    match result {
        Ok(text) => panic!("expected a refusal containing '{phrase}', got output:\n{text}"),
        Err(err) => assert!(err.to_string().contains(phrase), "expected '{phrase}' in: {err}"),
    }
}

#[tokio::test]
async fn reads_outside_the_workspace_are_refused() {
    let f = Fixture::new();
    assert_refused(f.call("read", json!({"path": f.outside("secret.txt")})).await, "is outside the workspace");
    assert_refused(f.call("read", json!({"path": "../outside/secret.txt"})).await, "contains '..'");
    assert_refused(f.call("read", json!({"path": "link_file"})).await, "is outside the workspace");
    assert_refused(f.call("read", json!({"path": "link_dir/secret.txt"})).await, "is outside the workspace");
    assert_refused(f.call("read", json!({"path": "/etc/passwd"})).await, "is outside the workspace");
    assert_eq!(f.call("read", json!({"path": "src/main.rs"})).await.unwrap(), "     1\tfn main() {}\n");
}

#[tokio::test]
async fn writes_and_edits_outside_the_workspace_are_refused() {
    let f = Fixture::new();
    let content = json!("pwned");
    assert_refused(f.call("write", json!({"path": f.outside("new.txt"), "content": content})).await, "outside");
    assert_refused(f.call("write", json!({"path": "../outside/new.txt", "content": content})).await, "'..'");
    assert_refused(f.call("write", json!({"path": "link_dir/new.txt", "content": content})).await, "outside");
    assert_refused(f.call("write", json!({"path": "link_file", "content": content})).await, "outside");
    let edit = json!({"path": "link_file", "old_string": "TOP", "new_string": "NOT"});
    assert_refused(f.call("edit", edit).await, "outside");
    assert!(!f.outside.join("new.txt").exists());
    assert_eq!(std::fs::read_to_string(f.outside.join("secret.txt")).unwrap(), "TOP SECRET\n");
}

#[tokio::test]
async fn searches_and_commands_cannot_start_outside_or_follow_links_out() {
    let f = Fixture::new();
    assert_refused(f.call("glob", json!({"pattern": "*", "path": f.outside("")})).await, "outside");
    assert_refused(f.call("grep", json!({"pattern": "SECRET", "path": "link_dir"})).await, "outside");
    assert_refused(f.call("shell", json!({"command": "ls", "workdir": "link_dir"})).await, "outside");
    let found = f.call("grep", json!({"pattern": "SECRET"})).await.unwrap();
    assert!(found.starts_with("No matches for 'SECRET'."), "the walk must not follow links out: {found}");
    let listed = f.call("glob", json!({"pattern": "*.txt"})).await.unwrap();
    assert!(!listed.contains("secret"), "{listed}");
}

#[tokio::test]
async fn denied_commands_are_refused_even_in_full_auto() {
    let f = Fixture::new();
    assert_refused(f.call("shell", json!({"command": "rm -rf src"})).await, "matches the deny rule 'rm -rf *'");
    assert_refused(f.call("shell", json!({"command": "echo hi && curl http://example.com"})).await, "deny rule 'curl'");
    assert!(f.ctx.workspace.root().join("src/main.rs").exists());
}

/// The sandboxes that work on this machine; for the others, the error when asked for them.
fn sandboxes() -> Vec<SandboxPolicy> {
    let mut working = Vec::new();
    for policy in [SandboxPolicy::Bubblewrap, SandboxPolicy::Landlock] {
        match Sandbox::select(policy) {
            Ok(_) => working.push(policy),
            Err(err) => assert!(err.to_string().contains("was asked for but does not work here"), "{err}"),
        }
    }
    assert!(!working.is_empty(), "no sandbox works here: {}", Sandbox::select(SandboxPolicy::Auto).unwrap_err());
    working
}

#[tokio::test]
async fn the_sandbox_blocks_writes_outside_the_workspace() {
    for policy in sandboxes() {
        let mut f = Fixture::new();
        f.ctx.shell.sandbox = policy;
        let target = f.outside("pwned.txt");
        let out =
            f.call("shell", json!({"command": format!("echo pwned > {target}; echo in > inside.txt")})).await.unwrap();
        assert!(!Path::new(&target).exists(), "{policy:?} let a command write {target}");
        assert!(
            out.contains("Read-only file system") || out.contains("Permission denied"),
            "{policy:?}: the refusal should be visible: {out}"
        );
        assert_eq!(std::fs::read_to_string(f.ctx.workspace.root().join("inside.txt")).unwrap(), "in\n", "{policy:?}");
    }
}

#[tokio::test]
async fn the_sandbox_cannot_reach_a_server_on_the_hosts_localhost() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    for policy in sandboxes() {
        let mut f = Fixture::new();
        f.ctx.shell.sandbox = policy;
        let command = format!("(exec 3<>/dev/tcp/127.0.0.1/{port}) && echo CONNECTED || echo BLOCKED");
        let out = f.call("shell", json!({"command": command})).await.unwrap();
        assert!(out.contains("BLOCKED") && !out.contains("CONNECTED"), "{policy:?}: {out}");
        assert!(listener.accept().is_err(), "{policy:?}: the host server was reached");
    }
    // The same command without a sandbox does reach it, so the test can tell the difference.
    let mut f = Fixture::new();
    f.ctx.shell.sandbox = SandboxPolicy::Off;
    let command = format!("(exec 3<>/dev/tcp/127.0.0.1/{port}) && echo CONNECTED || echo BLOCKED");
    assert!(f.call("shell", json!({"command": command})).await.unwrap().contains("CONNECTED"));
}

#[tokio::test]
async fn the_sandbox_has_no_route_to_outside_addresses() {
    // Connect only once the command has checked that loopback is its one interface, so that
    // a broken sandbox fails this test without any packet leaving the machine.
    let probe = r#"
        if [ "$(grep -c ':' /proc/net/dev)" != 1 ]; then echo "INTERFACES:"; cat /proc/net/dev; exit 0; fi
        (exec 3<>/dev/tcp/1.1.1.1/80) 2>&1 && echo CONNECTED || echo BLOCKED
        if command -v python3 >/dev/null; then
            python3 -c 'import socket; socket.create_connection(("1.1.1.1", 443), timeout=3)' 2>&1 | tail -1
        fi
    "#;
    for policy in sandboxes() {
        let mut f = Fixture::new();
        f.ctx.shell.sandbox = policy;
        let out = f.call("shell", json!({"command": probe})).await.unwrap();
        assert!(!out.contains("INTERFACES:"), "{policy:?} left network interfaces in the sandbox: {out}");
        assert!(out.contains("BLOCKED") && !out.contains("CONNECTED"), "{policy:?}: {out}");
        assert!(out.contains("Network is unreachable"), "{policy:?}: {out}");
    }
}

#[tokio::test]
async fn auto_selects_a_real_sandbox_here() {
    let kind = Sandbox::select(SandboxPolicy::Auto).unwrap().kind();
    assert_ne!(kind, SandboxKind::Unsandboxed);
    let f = Fixture::new();
    let out = f.call("shell", json!({"command": "echo $HEARTH_SANDBOX"})).await.unwrap();
    assert!(out.starts_with(kind.as_str()), "{out}");
}

#[tokio::test]
async fn undo_reverts_a_turn_of_tool_changes() {
    let f = Fixture::new();
    let sessions = tempfile::tempdir().unwrap();
    let root = f.ctx.workspace.root().to_path_buf();
    let meta = SessionMeta { workspace: root.clone(), model: None, mode: Mode::FullAuto };
    let mut session = Session::create(sessions.path(), meta).unwrap();
    session.append(Event::UserMessage { text: "change things".into() }).unwrap();
    for (tool, args) in [
        ("read", json!({"path": "src/main.rs"})),
        ("edit", json!({"path": "src/main.rs", "old_string": "fn main() {}", "new_string": "fn main() { run() }"})),
        ("write", json!({"path": "src/run.rs", "content": "pub fn run() {}\n"})),
        ("write", json!({"path": "src/main.rs", "content": "// rewritten\nfn main() { run() }\n"})),
    ] {
        let out = f.registry.call(tool, args, &f.ctx, &f.permissions, &NonInteractive).await.unwrap();
        for change in out.changes {
            session.append(Event::FileChanged(change)).unwrap();
        }
    }
    assert_eq!(std::fs::read_to_string(root.join("src/main.rs")).unwrap(), "// rewritten\nfn main() { run() }\n");

    let report = session.undo_last_turn(&f.ctx.workspace, false).unwrap();
    assert_eq!(report.restored, vec!["src/main.rs".to_string()]);
    assert_eq!(report.deleted, vec!["src/run.rs".to_string()]);
    assert_eq!(std::fs::read_to_string(root.join("src/main.rs")).unwrap(), "fn main() {}\n");
    assert!(!root.join("src/run.rs").exists());
}
