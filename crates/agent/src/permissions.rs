//! Permission modes, command rules and approvals: what a tool call may do without asking.
//!
//! The mode decides which tools are offered at all (plan mode offers no tool that writes, so the
//! grammar cannot even emit one) and which calls need the user's approval. Command rules always
//! apply: a command matching a deny rule is refused in every mode, and one matching an allow rule
//! runs without asking. Deny wins over allow.

mod rules;

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

pub use rules::{CommandRules, RuleError};

/// How much the agent may do on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Read-only: tools that change files or run commands are not offered.
    Plan,
    /// Every file change and every command needs approval.
    #[default]
    Ask,
    /// File changes run without asking; commands need approval.
    AutoEdit,
    /// Everything runs without asking (deny rules still apply).
    FullAuto,
}

impl Mode {
    /// Every mode, in order of increasing autonomy.
    pub const ALL: [Mode; 4] = [Mode::Plan, Mode::Ask, Mode::AutoEdit, Mode::FullAuto];

    /// The name used in flags, config and `/mode`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Plan => "plan",
            Mode::Ask => "ask",
            Mode::AutoEdit => "auto-edit",
            Mode::FullAuto => "full-auto",
        }
    }

    /// Whether a tool with `effect` is offered to the model at all in this mode.
    pub fn offers(self, effect: Effect) -> bool {
        self != Mode::Plan || effect == Effect::ReadOnly
    }

    /// What a call with `effect` needs in this mode, before command rules.
    fn default_decision(self, effect: Effect) -> Decision {
        match (self, effect) {
            (_, Effect::ReadOnly) => Decision::Allow,
            (Mode::Plan, _) => Decision::Deny(format!("{} is not available in plan mode (read-only)", effect.noun())),
            (Mode::Ask, _) => Decision::Ask,
            (Mode::AutoEdit, Effect::Edit) => Decision::Allow,
            (Mode::AutoEdit, Effect::Command) => Decision::Ask,
            (Mode::FullAuto, _) => Decision::Allow,
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A mode name that is not one of the four.
#[derive(Debug, Clone, thiserror::Error)]
#[error("unknown mode '{0}'; expected plan, ask, auto-edit or full-auto")]
pub struct UnknownMode(pub String);

impl FromStr for Mode {
    type Err = UnknownMode;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().replace('_', "-").as_str() {
            "plan" | "read-only" => Ok(Mode::Plan),
            "ask" | "default" => Ok(Mode::Ask),
            "auto-edit" | "autoedit" | "accept-edits" => Ok(Mode::AutoEdit),
            "full-auto" | "fullauto" | "auto" => Ok(Mode::FullAuto),
            _ => Err(UnknownMode(s.to_string())),
        }
    }
}

/// What running a tool can do to the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// Reads files or only changes the agent's own state.
    ReadOnly,
    /// Creates or changes files in the workspace.
    Edit,
    /// Runs a command.
    Command,
}

impl Effect {
    fn noun(self) -> &'static str {
        match self {
            Effect::ReadOnly => "reading",
            Effect::Edit => "changing files",
            Effect::Command => "running commands",
        }
    }
}

/// A tool call described for a permission check and, when needed, for the user to approve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionRequest {
    /// The tool's name.
    pub tool: String,
    /// What the call can do.
    pub effect: Effect,
    /// One line saying what the call will do, e.g. `edit src/main.rs` or `run: cargo test`.
    pub summary: String,
    /// The command line, for a command.
    pub command: Option<String>,
    /// A preview to show with the approval prompt, such as a diff.
    pub preview: Option<String>,
}

/// The outcome of a permission check before asking anyone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Run it.
    Allow,
    /// Ask the user.
    Ask,
    /// Refuse it, for this reason.
    Deny(String),
}

/// The user's answer to an approval request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Approval {
    /// Run this call.
    Approve,
    /// Run this call and, for the rest of the session, the same command (or, for file changes,
    /// every file change) without asking.
    ApproveAlways,
    /// Do not run it; the reason, if given, is passed to the model.
    Deny(Option<String>),
}

/// Asks the user whether a call may run; the terminal UI implements it with a prompt.
#[async_trait::async_trait]
pub trait Approver: Send + Sync {
    /// The user's answer for `request`.
    async fn approve(&self, request: &ActionRequest) -> Approval;
}

/// An approver for runs without a user (`hearth exec`): every request is refused, saying how to
/// allow it.
#[derive(Debug, Clone, Copy, Default)]
pub struct NonInteractive;

#[async_trait::async_trait]
impl Approver for NonInteractive {
    async fn approve(&self, request: &ActionRequest) -> Approval {
        Approval::Deny(Some(format!(
            "'{}' needs approval but there is no user to ask; rerun with --mode {} or add an allow rule to .hearth/config.toml",
            request.summary,
            if request.effect == Effect::Command { "full-auto" } else { "auto-edit" }
        )))
    }
}

/// Why a call was not run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PermissionError {
    /// A rule or the mode forbids it.
    #[error("refused: {0}")]
    Refused(String),
    /// The user said no.
    #[error("the user denied '{summary}'{}", .reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default())]
    DeniedByUser {
        /// What was asked.
        summary: String,
        /// The user's reason, if any.
        reason: Option<String>,
    },
}

/// The permission state of a session: the mode, the command rules and the approvals the user
/// granted for the rest of the session.
#[derive(Debug)]
pub struct Permissions {
    mode: Mutex<Mode>,
    rules: CommandRules,
    granted: Mutex<Grants>,
}

#[derive(Debug, Default)]
struct Grants {
    all_edits: bool,
    commands: HashSet<String>,
}

impl Permissions {
    /// Permissions in `mode` with command `rules`.
    pub fn new(mode: Mode, rules: CommandRules) -> Self {
        Self { mode: Mutex::new(mode), rules, granted: Mutex::new(Grants::default()) }
    }

    /// The current mode.
    pub fn mode(&self) -> Mode {
        *self.mode.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Switches the mode (`/mode`).
    pub fn set_mode(&self, mode: Mode) {
        *self.mode.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = mode;
    }

    /// The command rules.
    pub fn rules(&self) -> &CommandRules {
        &self.rules
    }

    /// Whether a tool with `effect` is offered in the current mode.
    pub fn offers(&self, effect: Effect) -> bool {
        self.mode().offers(effect)
    }

    /// The decision for `request` without asking anyone: deny rules first, then allow rules and
    /// session grants, then the mode.
    pub fn decide(&self, request: &ActionRequest) -> Decision {
        let mode = self.mode();
        if let Some(rule) = request.command.as_deref().and_then(|command| self.rules.denying_rule(command)) {
            return Decision::Deny(format!("the command matches the deny rule '{rule}'"));
        }
        let default = mode.default_decision(request.effect);
        if default != Decision::Ask {
            return default;
        }
        let granted = self.granted.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let pre_approved = match (&request.command, request.effect) {
            (Some(command), Effect::Command) => self.rules.allows(command) || granted.commands.contains(command),
            (_, Effect::Edit) => granted.all_edits,
            _ => false,
        };
        if pre_approved { Decision::Allow } else { Decision::Ask }
    }

    /// Decides, asking `approver` when needed; `Ok` means the call may run, `Ok(true)` that a
    /// person approved it.
    pub async fn authorize(&self, request: &ActionRequest, approver: &dyn Approver) -> Result<bool, PermissionError> {
        match self.decide(request) {
            Decision::Allow => Ok(false),
            Decision::Deny(reason) => Err(PermissionError::Refused(reason)),
            Decision::Ask => match approver.approve(request).await {
                Approval::Approve => Ok(true),
                Approval::ApproveAlways => {
                    let mut granted = self.granted.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                    match (&request.command, request.effect) {
                        (Some(command), Effect::Command) => {
                            granted.commands.insert(command.clone());
                        }
                        (_, Effect::Edit) => granted.all_edits = true,
                        _ => {}
                    }
                    Ok(true)
                }
                Approval::Deny(reason) => {
                    Err(PermissionError::DeniedByUser { summary: request.summary.clone(), reason })
                }
            },
        }
    }
}

#[cfg(test)]
mod tests;
