//! `shell`: run a command in the workspace, in a sandbox, with a time limit, a capped output and
//! a scrubbed environment.

mod capture;
pub(crate) mod sandbox;

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use self::capture::{CappedBuffer, drain};
use self::sandbox::{Sandbox, SandboxPolicy, SandboxSpec, default_shell};
use super::{Tool, ToolContext, ToolError, ToolOutput, parse_args};
use crate::permissions::{ActionRequest, Effect};

/// Variables passed through from hearth's environment; everything else (tokens, keys, cloud
/// credentials) is left out.
const PASSED_THROUGH: [&str; 24] = [
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "LANG",
    "LANGUAGE",
    "LC_ALL",
    "LC_CTYPE",
    "LC_MESSAGES",
    "TZ",
    "RUSTUP_HOME",
    "RUSTUP_TOOLCHAIN",
    "CARGO_HOME",
    "GOPATH",
    "GOROOT",
    "GOMODCACHE",
    "JAVA_HOME",
    "VIRTUAL_ENV",
    "CONDA_PREFIX",
    "PYENV_ROOT",
    "PYENV_VERSION",
    "NVM_DIR",
    "NODE_PATH",
];

/// How `shell` runs commands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellSettings {
    /// The time limit when the model gives none.
    pub default_timeout: Duration,
    /// The largest time limit the model may ask for.
    pub max_timeout: Duration,
    /// Bytes of output kept (head and tail).
    pub max_output_bytes: usize,
    /// Which sandbox to use.
    pub sandbox: SandboxPolicy,
    /// Whether commands may use the network.
    pub network: bool,
    /// More environment variables to pass through.
    pub env_passthrough: Vec<String>,
    /// More directories commands may write to.
    pub writable: Vec<PathBuf>,
}

impl Default for ShellSettings {
    fn default() -> Self {
        Self {
            default_timeout: Duration::from_secs(120),
            max_timeout: Duration::from_secs(600),
            max_output_bytes: 32 * 1024,
            sandbox: SandboxPolicy::Auto,
            network: false,
            env_passthrough: Vec::new(),
            writable: Vec::new(),
        }
    }
}

/// The `shell` tool.
#[derive(Debug, Clone, Copy, Default)]
pub struct ShellTool;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ShellArgs {
    command: String,
    #[serde(default)]
    timeout_secs: Option<u64>,
    #[serde(default)]
    workdir: Option<String>,
}

#[async_trait::async_trait]
impl Tool for ShellTool {
    fn name(&self) -> &'static str {
        "shell"
    }

    fn description(&self) -> &'static str {
        "Run a bash command in the workspace and return its output and exit code. Commands run in a sandbox: \
         no network, and files can be written only inside the workspace. Use read, glob, grep, edit and write for \
         files rather than cat, find, sed or echo."
    }

    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "command": {"type": "string", "minLength": 1, "description": "The bash command line"},
                "timeout_secs": {"type": "integer", "minimum": 1, "maximum": 600, "description": "Time limit in seconds (default 120)"},
                "workdir": {"type": "string", "minLength": 1, "description": "Directory to run in, relative to the workspace root (default: the root)"}
            },
            "required": ["command"],
            "additionalProperties": false
        })
    }

    fn effect(&self) -> Effect {
        Effect::Command
    }

    fn describe(&self, args: &Value, _ctx: &ToolContext) -> Result<ActionRequest, ToolError> {
        let args: ShellArgs = parse_args(self.name(), args)?;
        let place = args.workdir.as_deref().map(|dir| format!(" (in {dir})")).unwrap_or_default();
        Ok(ActionRequest {
            tool: self.name().into(),
            effect: self.effect(),
            summary: format!("run: {}{place}", args.command),
            command: Some(args.command),
            preview: None,
        })
    }

    async fn run(&self, args: Value, ctx: &ToolContext) -> Result<ToolOutput, ToolError> {
        let args: ShellArgs = parse_args(self.name(), &args)?;
        if args.command.trim().is_empty() {
            return Err(ToolError::InvalidArguments { tool: self.name().into(), message: "command is empty".into() });
        }
        // An empty optional directory (what unconstrained small models write) means the default.
        // A file named as the directory (small models give the script they run) means its
        // directory: refused, the model went on to hand the whole task to a subagent.
        let mut place_note = String::new();
        let workdir = match args.workdir.as_ref().filter(|d| !d.trim().is_empty()) {
            Some(dir) => {
                let path = ctx.workspace.resolve(dir)?;
                if path.is_file()
                    && let Some(parent) = path.parent()
                {
                    let shown = match ctx.workspace.display_path(parent) {
                        shown if shown == "." => "the workspace root".to_string(),
                        shown => shown,
                    };
                    place_note = format!("[workdir '{dir}' is a file, so the command ran in its directory, {shown}]\n");
                    parent.to_path_buf()
                } else if path.is_dir() {
                    path
                } else {
                    return Err(ToolError::NotFound(dir.clone()));
                }
            }
            None => ctx.workspace.root().to_path_buf(),
        };
        let settings = &ctx.shell;
        let timeout =
            args.timeout_secs.map(Duration::from_secs).unwrap_or(settings.default_timeout).min(settings.max_timeout);
        let sandbox = Sandbox::select(settings.sandbox)?;
        let private_tmp = tempfile::Builder::new()
            .prefix("hearth-shell-")
            .tempdir()
            .map_err(|err| ToolError::Internal(format!("cannot create a temporary directory: {err}")))?;
        let spec = SandboxSpec {
            workspace: ctx.workspace.root(),
            workdir: &workdir,
            network: settings.network,
            writable: &settings.writable,
            private_tmp: private_tmp.path(),
        };
        let mut command = sandbox.command(&default_shell(), &args.command, &spec)?;
        let tmpdir = match sandbox.kind() {
            sandbox::SandboxKind::Bubblewrap => PathBuf::from("/tmp"),
            _ => private_tmp.path().to_path_buf(),
        };
        command
            .env_clear()
            .envs(scrubbed_environment(settings, &tmpdir, sandbox.kind().as_str()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .process_group(0);
        let mut child = command.spawn().map_err(ToolError::Spawn)?;
        let mut group = ProcessGroup(child.id());
        let buffer = Arc::new(Mutex::new(CappedBuffer::new(settings.max_output_bytes)));
        let readers = [
            child.stdout.take().map(|out| tokio::spawn(drain(out, buffer.clone()))),
            child.stderr.take().map(|err| tokio::spawn(drain(err, buffer.clone()))),
        ];
        let status = tokio::time::timeout(timeout, child.wait()).await;
        // Background processes the command left behind would hold the output pipes open and
        // outlive the call; the whole process group goes with the command.
        group.kill();
        let status = match status {
            Ok(status) => Some(status.map_err(|err| ToolError::Internal(format!("waiting for the command: {err}")))?),
            Err(_) => {
                let _ = child.wait().await;
                None
            }
        };
        for reader in readers.into_iter().flatten() {
            let _ = tokio::time::timeout(Duration::from_secs(2), reader).await;
        }
        let output = buffer.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).render();
        let Some(status) = status else {
            return Err(ToolError::Timeout { seconds: timeout.as_secs(), output });
        };
        let mut text = place_note;
        text.push_str(if output.is_empty() { "(no output)\n" } else { &output });
        if !text.ends_with('\n') {
            text.push('\n');
        }
        match status.code() {
            Some(code) => text.push_str(&format!("[exit code {code}]")),
            None => text.push_str(&format!("[killed by a signal: {status}]")),
        }
        Ok(ToolOutput { failed: !status.success(), exit_code: status.code(), ..ToolOutput::text(text) })
    }
}

fn scrubbed_environment(settings: &ShellSettings, tmpdir: &std::path::Path, sandbox: &str) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = PASSED_THROUGH
        .iter()
        .copied()
        .chain(settings.env_passthrough.iter().map(String::as_str))
        .filter_map(|name| std::env::var(name).ok().map(|value| (name.to_string(), value)))
        .collect();
    if !env.iter().any(|(name, _)| name == "PATH") {
        env.push(("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into()));
    }
    for (name, value) in [
        ("TERM", "dumb"),
        ("NO_COLOR", "1"),
        ("CLICOLOR", "0"),
        ("PAGER", "cat"),
        ("GIT_PAGER", "cat"),
        ("GIT_TERMINAL_PROMPT", "0"),
        ("HEARTH_SANDBOX", sandbox),
    ] {
        env.push((name.into(), value.into()));
    }
    env.push(("TMPDIR".into(), tmpdir.display().to_string()));
    env
}

/// The process group a command leads; killed when the call ends, also when the call's future is
/// dropped (the user cancelled), so nothing the command started outlives it.
struct ProcessGroup(Option<u32>);

impl ProcessGroup {
    fn kill(&mut self) {
        let Some(pid) = self.0.take().and_then(|pid| i32::try_from(pid).ok()) else { return };
        // SAFETY: kill takes plain integers; a negative pid names the group the command leads.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests;
