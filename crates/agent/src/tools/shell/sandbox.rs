//! The sandbox `shell` commands run in. On Linux it is bubblewrap when installed and working
//! (a read-only view of `/`, the workspace and a private `/tmp` writable, new network and pid
//! namespaces), else Landlock (writes allowed only under the workspace and a private temporary
//! directory) with a new network namespace made by `unshare`. Without network, a command sees
//! only its own loopback interface: no outside address and no server on the host's localhost.
//! Reading outside the workspace is allowed, as build tools need their toolchains.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

/// Which sandbox to use, from config or flags.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SandboxPolicy {
    /// Bubblewrap if it works here, else Landlock; an error if neither does.
    #[default]
    Auto,
    /// Bubblewrap only.
    Bubblewrap,
    /// Landlock and a network namespace only.
    Landlock,
    /// No sandbox: commands can write anywhere the user can and reach the network.
    Off,
}

/// The sandbox a command actually runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SandboxKind {
    /// `bwrap` with new mount, pid and (without network) network namespaces.
    Bubblewrap,
    /// Landlock filesystem rules and (without network) a network namespace.
    Landlock,
    /// None, by the user's choice.
    Unsandboxed,
}

impl SandboxKind {
    /// The name shown to users and set in `HEARTH_SANDBOX` for commands.
    pub fn as_str(self) -> &'static str {
        match self {
            SandboxKind::Bubblewrap => "bubblewrap",
            SandboxKind::Landlock => "landlock",
            SandboxKind::Unsandboxed => "none",
        }
    }
}

/// Why no sandbox could be set up.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SandboxError {
    /// Neither mechanism works on this machine.
    #[error(
        "no sandbox is available for shell commands ({reasons}). Install bubblewrap (`apt install bubblewrap`, \
         `dnf install bubblewrap`), or use a Linux kernel with Landlock and user namespaces enabled. To run commands \
         without a sandbox (with network, and able to write anywhere you can), set `sandbox = \"off\"` under [shell] \
         in .hearth/config.toml or pass --no-sandbox"
    )]
    Unavailable {
        /// Why each mechanism failed.
        reasons: String,
    },

    /// The configured mechanism does not work here.
    #[error(
        "the {policy} sandbox was asked for but does not work here: {reason}; use sandbox = \"auto\" to pick one that does"
    )]
    RequestedUnavailable {
        /// The mechanism asked for.
        policy: &'static str,
        /// Why it fails.
        reason: String,
    },

    /// Preparing the sandbox for one command failed.
    #[error("cannot set up the sandbox: {0}")]
    Setup(String),
}

/// What one sandboxed command may touch.
#[derive(Debug, Clone)]
pub struct SandboxSpec<'a> {
    /// The workspace root, writable.
    pub workspace: &'a Path,
    /// The directory the command starts in.
    pub workdir: &'a Path,
    /// Whether the command may use the network.
    pub network: bool,
    /// More writable directories (existing ones only are used).
    pub writable: &'a [PathBuf],
    /// A private temporary directory, writable (used as `TMPDIR` under Landlock).
    pub private_tmp: &'a Path,
}

/// A working sandbox mechanism.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sandbox {
    kind: SandboxKind,
    bwrap: Option<PathBuf>,
}

impl Sandbox {
    /// The sandbox `policy` selects on this machine; each mechanism is tried once per process.
    pub fn select(policy: SandboxPolicy) -> Result<Sandbox, SandboxError> {
        match policy {
            SandboxPolicy::Off => Ok(Sandbox { kind: SandboxKind::Unsandboxed, bwrap: None }),
            SandboxPolicy::Bubblewrap => bubblewrap()
                .map_err(|reason| SandboxError::RequestedUnavailable { policy: "bubblewrap", reason: reason.clone() }),
            SandboxPolicy::Landlock => landlock()
                .map_err(|reason| SandboxError::RequestedUnavailable { policy: "landlock", reason: reason.clone() }),
            SandboxPolicy::Auto => match bubblewrap() {
                Ok(sandbox) => Ok(sandbox),
                Err(bwrap) => landlock().map_err(|landlock| SandboxError::Unavailable {
                    reasons: format!("bubblewrap: {bwrap}; landlock: {landlock}"),
                }),
            },
        }
    }

    /// The mechanism.
    pub fn kind(&self) -> SandboxKind {
        self.kind
    }

    /// A command that runs `line` with `shell -c` inside the sandbox, starting in the spec's
    /// working directory. The caller sets the environment and the standard streams.
    pub fn command(
        &self,
        shell: &Path,
        line: &str,
        spec: &SandboxSpec<'_>,
    ) -> Result<tokio::process::Command, SandboxError> {
        match (self.kind, &self.bwrap) {
            (SandboxKind::Bubblewrap, Some(bwrap)) => {
                let mut command = tokio::process::Command::new(bwrap);
                command.args(bwrap_args(spec)).arg(shell).arg("-c").arg(line);
                Ok(command)
            }
            (SandboxKind::Landlock, _) => {
                let mut command = tokio::process::Command::new(shell);
                command.arg("-c").arg(line).current_dir(spec.workdir);
                landlock_impl::confine(command.as_std_mut(), spec)?;
                Ok(command)
            }
            _ => {
                let mut command = tokio::process::Command::new(shell);
                command.arg("-c").arg(line).current_dir(spec.workdir);
                Ok(command)
            }
        }
    }
}

/// Arguments for `bwrap` before the program: `/` read-only, fresh `/dev`, `/proc` and `/tmp`,
/// the workspace and extra directories writable, new pid namespace (so nothing outlives the
/// command) and, without network, a new network namespace.
fn bwrap_args(spec: &SandboxSpec<'_>) -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = Vec::new();
    let mut push = |items: &[&std::ffi::OsStr]| args.extend(items.iter().map(|s| s.to_os_string()));
    push(&["--die-with-parent".as_ref(), "--new-session".as_ref(), "--unshare-pid".as_ref()]);
    if !spec.network {
        push(&["--unshare-net".as_ref()]);
    }
    push(&["--ro-bind".as_ref(), "/".as_ref(), "/".as_ref()]);
    push(&[
        "--dev".as_ref(),
        "/dev".as_ref(),
        "--proc".as_ref(),
        "/proc".as_ref(),
        "--tmpfs".as_ref(),
        "/tmp".as_ref(),
    ]);
    for dir in std::iter::once(spec.workspace).chain(spec.writable.iter().map(PathBuf::as_path)) {
        if dir.is_dir() {
            push(&["--bind".as_ref(), dir.as_os_str(), dir.as_os_str()]);
        }
    }
    push(&["--chdir".as_ref(), spec.workdir.as_os_str(), "--".as_ref()]);
    args
}

/// The shell commands run with: bash when present, else sh.
pub fn default_shell() -> PathBuf {
    ["/bin/bash", "/usr/bin/bash"]
        .iter()
        .map(PathBuf::from)
        .find(|path| path.is_file())
        .unwrap_or_else(|| PathBuf::from("/bin/sh"))
}

fn bubblewrap() -> Result<Sandbox, &'static String> {
    static PROBE: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    PROBE
        .get_or_init(probe_bubblewrap)
        .as_ref()
        .map(|path| Sandbox { kind: SandboxKind::Bubblewrap, bwrap: Some(path.clone()) })
}

fn landlock() -> Result<Sandbox, &'static String> {
    static PROBE: OnceLock<Result<(), String>> = OnceLock::new();
    PROBE.get_or_init(landlock_impl::probe).as_ref().map(|()| Sandbox { kind: SandboxKind::Landlock, bwrap: None })
}

/// Finds `bwrap` on `PATH` and checks that it can make the namespaces a command needs.
fn probe_bubblewrap() -> Result<PathBuf, String> {
    let path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("bwrap"))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| "bwrap is not installed".to_string())?;
    let probe_dir = std::env::temp_dir();
    let spec = SandboxSpec {
        workspace: &probe_dir,
        workdir: &probe_dir,
        network: false,
        writable: &[],
        private_tmp: &probe_dir,
    };
    let output = std::process::Command::new(&path)
        .args(bwrap_args(&spec))
        .arg("/bin/sh")
        .arg("-c")
        .arg(":")
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|err| format!("cannot run {}: {err}", path.display()))?;
    if output.status.success() {
        Ok(path)
    } else {
        Err(format!("{} fails here: {}", path.display(), String::from_utf8_lossy(&output.stderr).trim()))
    }
}

#[cfg(target_os = "linux")]
mod landlock_impl;

#[cfg(not(target_os = "linux"))]
mod landlock_impl {
    //! Landlock exists only on Linux.
    use super::{SandboxError, SandboxSpec};

    pub(super) fn probe() -> Result<(), String> {
        Err("Landlock is Linux-only".into())
    }

    pub(super) fn confine(_: &mut std::process::Command, _: &SandboxSpec<'_>) -> Result<(), SandboxError> {
        Err(SandboxError::Setup("Landlock is Linux-only".into()))
    }
}

/// Converts an error from the sandbox set-up in the child into an `io::Error` for `spawn`.
#[cfg(target_os = "linux")]
fn child_error(what: &str, err: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(format!("sandbox: {what}: {err}"))
}

#[cfg(test)]
mod tests;
