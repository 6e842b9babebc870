//! `hearth` (the chat) end to end in a real terminal: the binary runs in a tmux pane on the CI
//! model (SmolLM2-135M) and the test types into it. Checks the banner, slash commands, mode
//! switching, a streamed reply with its context meter, the history file and a clean exit on
//! Ctrl-D; and, on a model that calls tools, a task with an approval prompt. Skipped, saying so,
//! where tmux is not installed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// A tmux server of the test's own, killed when the test ends however it ends.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux").arg("-L").arg(&self.socket).args(args).output().expect("tmux runs")
    }

    /// Types `keys` (tmux key names such as `Enter` or `C-d` are keys, the rest literal text).
    fn send(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "chat"];
        args.extend_from_slice(keys);
        assert!(self.run(&args).status.success(), "tmux send-keys {keys:?} failed");
    }

    /// The pane's text, scrollback included.
    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-J", "-S", "-500", "-t", "chat"]).stdout)
            .into_owned()
    }

    /// Waits until the screen satisfies `done`; panics with the screen after `timeout`.
    fn wait_for(&self, what: &str, timeout: Duration, done: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if done(&screen) {
                return screen;
            }
            assert!(start.elapsed() < timeout, "timed out waiting for {what}; the screen:\n{screen}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Starts `hearth ARGS` (the chat) in a 200x50 pane of a tmux server of its own named after
    /// `test`, with its state in `state` and `workspace` as its workspace; the pane shows the exit
    /// status and stays a minute after the chat exits. `None`, saying the test is skipped, where
    /// tmux is not installed.
    fn start_chat(test: &str, args: &str, state: &Path, workspace: &Path) -> Option<Tmux> {
        if Command::new("tmux").arg("-V").output().is_err() {
            eprintln!("SKIPPED {test}: tmux is not installed (apt-get install tmux)");
            return None;
        }
        let command = format!(
            "env XDG_STATE_HOME={} NO_COLOR=1 {} {args} -C {}; echo \"[hearth exited with $?]\"; sleep 60",
            quoted(state),
            quoted(Path::new(env!("CARGO_BIN_EXE_hearth"))),
            quoted(workspace),
        );
        let tmux = Tmux { socket: format!("hearth-{test}-{}", std::process::id()) };
        let started = tmux.run(&["new-session", "-d", "-s", "chat", "-x", "200", "-y", "50", &command]);
        assert!(started.status.success(), "tmux new-session: {}", String::from_utf8_lossy(&started.stderr));
        Some(tmux)
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

fn quoted(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

#[test]
fn chat_in_a_terminal() {
    // The binary pulls the model itself; have it cached first so the test's time is the chat's.
    hearth_hub::model_for_tests(hearth_hub::CI_MODEL).unwrap();
    let workspace = tempfile::tempdir().unwrap();
    std::fs::write(workspace.path().join("notes.txt"), "hello\n").unwrap();
    let state = tempfile::tempdir().unwrap();
    let args = "-m smollm2-135m --mode plan --temp 0 -n 12 --max-steps 1 --no-session";
    let Some(tmux) = Tmux::start_chat("chat_in_a_terminal", args, state.path(), workspace.path()) else { return };

    let minute = Duration::from_secs(60);
    // Plan mode offers the fewest tools, so the system prompt to prefill is shortest.
    let screen = tmux.wait_for("the banner and the prompt", minute, |s| s.contains("plan › "));
    let banner = format!("hearth {} · smollm2-135m (context 8192 tokens) · mode plan", env!("CARGO_PKG_VERSION"));
    assert!(screen.contains(&banner), "{screen}");
    assert!(screen.contains("/help for commands"), "{screen}");

    tmux.send(&["/help", "Enter"]);
    let screen = tmux.wait_for("/help", minute, |s| s.contains("Keys:"));
    for command in ["/mode [plan|ask|auto-edit|full-auto]", "/clear", "/model", "/compact", "/undo", "/exit"] {
        assert!(screen.contains(command), "/help does not list {command}:\n{screen}");
    }

    tmux.send(&["/mode auto-edit", "Enter"]);
    tmux.wait_for("the switch to auto-edit mode", minute, |s| {
        s.contains("mode: auto-edit (") && s.contains("auto-edit › ")
    });
    tmux.send(&["/mode", "Enter"]);
    tmux.wait_for("the mode shown", minute, |s| s.matches("mode: auto-edit (").count() == 2);
    tmux.send(&["/mode plan", "Enter"]);
    tmux.wait_for("the switch back to plan mode", minute, |s| s.contains("mode: plan (read-only"));
    tmux.send(&["/mode nonsense", "Enter"]);
    tmux.wait_for("the bad mode's error", minute, |s| s.contains("unknown mode 'nonsense'"));
    tmux.send(&["/frobnicate", "Enter"]);
    tmux.wait_for("the unknown command's error", minute, |s| s.contains("unknown command /frobnicate"));

    tmux.send(&["Say hello.", "Enter"]);
    let screen = tmux.wait_for("a reply and the context meter", Duration::from_secs(300), |s| {
        s.lines().any(|l| l.starts_with("[context ")) && s.trim_end().ends_with("plan ›")
    });
    let lines: Vec<&str> = screen.lines().collect();
    let asked = lines.iter().position(|l| l.ends_with("› Say hello.")).expect("the message is echoed");
    let meter = lines.iter().position(|l| l.starts_with("[context ")).unwrap();
    assert!(
        lines[asked + 1..meter].iter().any(|l| !l.trim().is_empty()),
        "no reply between the message and the meter:\n{screen}"
    );
    // The whole system prompt was new; the meter says how much of it there was.
    assert!(lines[meter].contains("/8192 (") && lines[meter].contains(" new · "), "{}", lines[meter]);
    eprintln!("{}", lines[meter]);

    tmux.send(&["/model", "Enter"]);
    tmux.wait_for("/model", minute, |s| s.contains("model: smollm2-135m · context 8192 tokens"));

    tmux.send(&["C-d"]);
    tmux.wait_for("a clean exit", minute, |s| s.contains("[hearth exited with 0]"));

    // The history sits next to the session files: under $HEARTH_HOME when that is set.
    let history_dir = std::env::var_os("HEARTH_HOME")
        .filter(|home| !home.is_empty())
        .map_or_else(|| state.path().join("hearth"), std::path::PathBuf::from);
    let history = std::fs::read_to_string(history_dir.join("chat_history")).unwrap();
    for entry in ["/help", "/mode plan", "Say hello."] {
        assert!(history.lines().any(|l| l == entry), "{entry:?} missing from the history:\n{history}");
    }
}

/// A task that needs approval, on a model that calls tools (Qwen2.5-Coder-0.5B; runs where it is
/// cached or `HEARTH_TEST_ALL_MODELS=1` asks for it): in ask mode the chat asks before running a
/// command, runs it once allowed, and shows its output.
#[test]
fn approval_prompt_in_a_terminal() {
    let Some(_) = hearth_hub::model_for_tests("qwen2.5-coder-0.5b").unwrap() else { return };
    let workspace = tempfile::tempdir().unwrap();
    std::fs::write(workspace.path().join("marker-7f3a.txt"), "x\n").unwrap();
    let state = tempfile::tempdir().unwrap();
    let args = "-m qwen2.5-coder-0.5b --mode ask --temp 0 -n 120 --max-steps 1 --no-session";
    let test = "approval_prompt_in_a_terminal";
    let Some(tmux) = Tmux::start_chat(test, args, state.path(), workspace.path()) else { return };
    let minute = Duration::from_secs(60);
    tmux.wait_for("the prompt", minute, |s| s.contains("ask › "));

    tmux.send(&["Run the shell command: ls", "Enter"]);
    let screen = tmux.wait_for("the approval question", Duration::from_secs(600), |s| s.contains("? Allow run: ls"));
    // Nothing ran before the answer.
    assert!(!screen.contains("marker-7f3a"), "the command ran before it was allowed:\n{screen}");
    tmux.send(&["y", "Enter"]);
    tmux.wait_for("the command's output", minute, |s| s.contains("marker-7f3a.txt") && s.trim_end().ends_with("ask ›"));

    tmux.send(&["C-d"]);
    tmux.wait_for("a clean exit", minute, |s| s.contains("[hearth exited with 0]"));
}
