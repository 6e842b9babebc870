//! Agent settings from `config.toml` files: the user's (`$HEARTH_HOME/config.toml`, else
//! `$XDG_CONFIG_HOME/hearth/config.toml`, else `~/.config/hearth/config.toml`) and then the
//! project's (`.hearth/config.toml` in the workspace). Command flags are applied by the caller on
//! top, by setting fields.
//!
//! ```toml
//! mode = "auto-edit"            # plan | ask | auto-edit | full-auto
//! kv_budget_mib = 2048          # KV cache memory (user config only); --kv-budget overrides
//! [commands]
//! allow = ["cargo test", "git diff*"]
//! deny = ["git push", "rm -rf *"]
//! [shell]
//! timeout_secs = 120
//! max_output_bytes = 32768
//! sandbox = "auto"              # auto | bubblewrap | landlock | off
//! network = false
//! env = ["RUST_LOG"]            # more variables passed to commands
//! writable = ["~/.cache/go-build"]
//! ```
//!
//! A project file comes with the code, so it may tighten but not loosen the guardrails: its
//! `full-auto` mode, `sandbox = "off"`, `network = true`, extra environment variables and
//! writable directories outside the workspace are ignored, with a warning.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::permissions::{CommandRules, Mode, Permissions, RuleError};
use crate::tools::{SandboxPolicy, ShellSettings};
use crate::workspace::Workspace;

/// A config file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file exists but cannot be read.
    #[error("cannot read {}: {source}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid config TOML.
    #[error("{}: {message}", .path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A command rule does not parse.
    #[error(transparent)]
    Rule(#[from] RuleError),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    mode: Option<Mode>,
    kv_budget_mib: Option<usize>,
    #[serde(default)]
    commands: CommandsSection,
    #[serde(default)]
    shell: ShellSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CommandsSection {
    #[serde(default)]
    allow: Vec<String>,
    #[serde(default)]
    deny: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ShellSection {
    timeout_secs: Option<u64>,
    max_output_bytes: Option<usize>,
    sandbox: Option<SandboxPolicy>,
    network: Option<bool>,
    #[serde(default)]
    env: Vec<String>,
    #[serde(default)]
    writable: Vec<String>,
}

/// The settings of an agent session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentConfig {
    /// The permission mode.
    pub mode: Mode,
    /// KV cache memory in MiB, when set (the model's default otherwise).
    pub kv_budget_mib: Option<usize>,
    /// Command patterns that run without asking.
    pub allow: Vec<String>,
    /// Command patterns that are always refused.
    pub deny: Vec<String>,
    /// How commands run.
    pub shell: ShellSettings,
    /// Settings that were ignored, and why, to show the user.
    pub warnings: Vec<String>,
    /// The files read, in order.
    pub sources: Vec<PathBuf>,
}

/// Whose file a layer is, which decides what it may loosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layer {
    User,
    Project,
}

impl AgentConfig {
    /// The user's config file path, if a home or config directory is known.
    pub fn user_config_path() -> Option<PathBuf> {
        if let Some(home) = std::env::var_os("HEARTH_HOME").filter(|v| !v.is_empty()) {
            return Some(PathBuf::from(home).join("config.toml"));
        }
        if let Some(config) = std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
            return Some(PathBuf::from(config).join("hearth/config.toml"));
        }
        home_dir().map(|home| home.join(".config/hearth/config.toml"))
    }

    /// The project config file of `workspace`.
    pub fn project_config_path(workspace: &Workspace) -> PathBuf {
        workspace.root().join(".hearth/config.toml")
    }

    /// Reads the user's and the project's files, either of which may be missing.
    pub fn load(workspace: &Workspace) -> Result<Self, ConfigError> {
        let mut config = AgentConfig::default();
        if let Some(path) = Self::user_config_path() {
            config.apply_file(&path, Layer::User, workspace.root())?;
        }
        config.apply_file(&Self::project_config_path(workspace), Layer::Project, workspace.root())?;
        Ok(config)
    }

    /// Settings from the text of a user file and a project file, for `workspace_root`.
    pub fn from_texts(user: Option<&str>, project: Option<&str>, workspace_root: &Path) -> Result<Self, ConfigError> {
        let mut config = AgentConfig::default();
        if let Some(text) = user {
            config.apply(parse(Path::new("user config"), text)?, Layer::User, workspace_root);
        }
        if let Some(text) = project {
            config.apply(parse(Path::new(".hearth/config.toml"), text)?, Layer::Project, workspace_root);
        }
        Ok(config)
    }

    /// The command rules.
    pub fn command_rules(&self) -> Result<CommandRules, RuleError> {
        CommandRules::new(&self.allow, &self.deny)
    }

    /// Permissions for a session with these settings.
    pub fn permissions(&self) -> Result<Permissions, ConfigError> {
        Ok(Permissions::new(self.mode, self.command_rules()?))
    }

    fn apply_file(&mut self, path: &Path, layer: Layer, workspace_root: &Path) -> Result<(), ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(source) => return Err(ConfigError::Read { path: path.to_path_buf(), source }),
        };
        self.apply(parse(path, &text)?, layer, workspace_root);
        self.sources.push(path.to_path_buf());
        Ok(())
    }

    fn apply(&mut self, file: ConfigFile, layer: Layer, workspace_root: &Path) {
        let project = layer == Layer::Project;
        match file.mode {
            Some(Mode::FullAuto) if project => {
                self.warn("mode = \"full-auto\" in the project config is ignored; pass --mode full-auto to use it")
            }
            Some(mode) => self.mode = mode,
            None => {}
        }
        match file.kv_budget_mib {
            // Memory is the user's to give: a repository could ask for more than the machine has.
            Some(_) if project => {
                self.warn("kv_budget_mib in the project config is ignored; set it in your user config")
            }
            Some(0) => self.warn("kv_budget_mib = 0 is ignored; the budget must be at least 1 MiB"),
            Some(mib) => self.kv_budget_mib = Some(mib),
            None => {}
        }
        self.allow.extend(file.commands.allow);
        self.deny.extend(file.commands.deny);
        let shell = file.shell;
        if let Some(seconds) = shell.timeout_secs {
            self.shell.default_timeout = Duration::from_secs(seconds).min(self.shell.max_timeout);
        }
        if let Some(bytes) = shell.max_output_bytes {
            self.shell.max_output_bytes = bytes.max(1024);
        }
        match shell.sandbox {
            Some(SandboxPolicy::Off) if project => self.warn(
                "sandbox = \"off\" in the project config is ignored; set it in your user config or pass --no-sandbox",
            ),
            Some(policy) => self.shell.sandbox = policy,
            None => {}
        }
        match shell.network {
            Some(true) if project => {
                self.warn("network = true in the project config is ignored; set it in your user config")
            }
            Some(network) => self.shell.network = network,
            None => {}
        }
        if project && !shell.env.is_empty() {
            self.warn("shell.env in the project config is ignored; list variables to pass in your user config");
        } else {
            self.shell.env_passthrough.extend(shell.env);
        }
        for dir in shell.writable {
            let path = expand(&dir, workspace_root);
            if project && !path.starts_with(workspace_root) {
                self.warn(&format!(
                    "writable directory {dir} in the project config is outside the workspace and is ignored"
                ));
            } else {
                self.shell.writable.push(path);
            }
        }
    }

    fn warn(&mut self, message: &str) {
        self.warnings.push(message.to_string());
    }
}

fn parse(path: &Path, text: &str) -> Result<ConfigFile, ConfigError> {
    toml::from_str(text).map_err(|err| ConfigError::Parse { path: path.to_path_buf(), message: err.to_string() })
}

/// `~/x` under the home directory, a relative path under the workspace root.
fn expand(dir: &str, workspace_root: &Path) -> PathBuf {
    if let (Some(rest), Some(home)) = (dir.strip_prefix("~/"), home_dir()) {
        return home.join(rest);
    }
    let path = Path::new(dir);
    if path.is_absolute() { path.to_path_buf() } else { workspace_root.join(path) }
}

fn home_dir() -> Option<PathBuf> {
    std::env::var_os("HOME").filter(|v| !v.is_empty()).map(PathBuf::from)
}

#[cfg(test)]
mod tests;
