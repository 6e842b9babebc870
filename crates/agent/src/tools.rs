//! The tools the model calls: their JSON schemas, typed arguments and implementations.
//!
//! Every tool implements [`Tool`]. [`ToolRegistry::call`] is the one way a call runs: it checks
//! that the mode offers the tool, builds the [`ActionRequest`] the permissions decide on (asking
//! the user when needed), and only then runs the tool. Tools touch paths only through
//! [`Workspace::resolve`], so confinement holds for every tool.

mod copied_numbers;
mod edit;
mod error;
mod glob;
mod grep;
mod python_defs;
mod read;
mod registry;
mod shell;
mod syntax;
mod task;
mod todo;
pub(crate) mod walk;
mod words;
mod write;

use std::sync::{Arc, Mutex};

use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::permissions::{ActionRequest, Effect};
use crate::protocol::{FileChange, TodoItem};
use crate::workspace::Workspace;

pub use edit::EditTool;
pub use error::ToolError;
pub use glob::GlobTool;
pub use grep::GrepTool;
pub use read::ReadTool;
pub use registry::ToolRegistry;
pub use shell::sandbox::{Sandbox, SandboxError, SandboxKind, SandboxPolicy};
pub use shell::{ShellSettings, ShellTool};
pub use task::{SubagentRequest, SubagentRunner, TaskTool};
pub use todo::{TodoTool, render as render_todos};
pub use write::WriteTool;

/// How much a tool may put in front of the model in one result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolLimits {
    /// Lines `read` shows when no limit is given.
    pub read_default_lines: usize,
    /// Fewest lines `read` shows when a limit is given: small models read a file a line at a
    /// time, one step per line.
    pub read_min_lines: usize,
    /// Bytes of file text one `read` returns at most.
    pub read_max_bytes: usize,
    /// Characters of one line shown before it is cut.
    pub max_line_chars: usize,
    /// Paths `glob` lists at most.
    pub glob_max_results: usize,
    /// Lines of `grep` output at most.
    pub grep_max_lines: usize,
    /// Bytes of `grep` output at most.
    pub grep_max_bytes: usize,
}

impl Default for ToolLimits {
    fn default() -> Self {
        Self {
            read_default_lines: 1000,
            read_min_lines: 40,
            read_max_bytes: 48 * 1024,
            max_line_chars: 500,
            glob_max_results: 300,
            grep_max_lines: 200,
            grep_max_bytes: 24 * 1024,
        }
    }
}

/// What a tool call can see: the workspace, the shell settings, the limits, the plan list and
/// the subagent hook.
#[derive(Clone)]
pub struct ToolContext {
    /// The workspace every path is confined to.
    pub workspace: Workspace,
    /// How `shell` runs commands.
    pub shell: ShellSettings,
    /// Output limits.
    pub limits: ToolLimits,
    /// The model's plan, replaced by `todo`.
    pub todos: Arc<Mutex<Vec<TodoItem>>>,
    /// Runs subagents for `task`; `None` where subagents are not allowed (inside a subagent).
    pub subagents: Option<Arc<dyn SubagentRunner>>,
    /// Files the model has read or written in this conversation: `write` will not replace a file
    /// whose content the model has not seen (small models otherwise overwrite it with a part).
    pub seen_files: Arc<Mutex<std::collections::HashSet<std::path::PathBuf>>>,
    /// A person approved this call after seeing what it does (ask mode), so it needs no second ask.
    pub approved_by_user: bool,
}

impl ToolContext {
    /// A context for `workspace` with default settings, an empty plan and no subagents.
    pub fn new(workspace: Workspace) -> Self {
        Self {
            workspace,
            shell: ShellSettings::default(),
            limits: ToolLimits::default(),
            todos: Arc::new(Mutex::new(Vec::new())),
            subagents: None,
            seen_files: Arc::new(Mutex::new(std::collections::HashSet::new())),
            approved_by_user: false,
        }
    }

    /// Records that the model has seen the current content of `path`.
    pub fn mark_seen(&self, path: &std::path::Path) {
        self.seen_files.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).insert(path.to_path_buf());
    }

    /// Whether the model has seen `path` in this conversation.
    pub fn has_seen(&self, path: &std::path::Path) -> bool {
        self.seen_files.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).contains(path)
    }

    /// Refuses, with `refusal`, a change to an existing file the model has not seen: it would be
    /// made against a guess at the file's text. A missing file passes (it is created, or its tool
    /// says it does not exist).
    pub fn require_seen(&self, path: &std::path::Path, refusal: impl FnOnce() -> ToolError) -> Result<(), ToolError> {
        if path.is_file() && !self.has_seen(path) {
            return Err(refusal());
        }
        Ok(())
    }

    /// The current plan.
    pub fn todos(&self) -> Vec<TodoItem> {
        self.todos.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }
}

impl std::fmt::Debug for ToolContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToolContext")
            .field("workspace", &self.workspace)
            .field("shell", &self.shell)
            .field("limits", &self.limits)
            .field("subagents", &self.subagents.is_some())
            .finish_non_exhaustive()
    }
}

/// The result of a successful tool call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolOutput {
    /// The text the model sees.
    pub text: String,
    /// Files the call changed, to record in the session for undo.
    pub changes: Vec<FileChange>,
    /// A unified diff of the change, for the user.
    pub diff: Option<String>,
    /// The plan after a `todo` call, for the user.
    pub todos: Option<Vec<TodoItem>>,
    /// The call ran but what it ran failed (a command's non-zero exit): shown as a failed call.
    pub failed: bool,
    /// The exit code of a command that ran to its end; `None` for other tools and for a command
    /// a signal stopped.
    pub exit_code: Option<i32>,
}

impl ToolOutput {
    /// An output that is only text.
    pub fn text(text: impl Into<String>) -> Self {
        Self { text: text.into(), ..Self::default() }
    }
}

/// A tool the model can call.
#[async_trait::async_trait]
pub trait Tool: Send + Sync {
    /// The name the model calls it by.
    fn name(&self) -> &'static str;

    /// What it does, for the model.
    fn description(&self) -> &'static str;

    /// The JSON schema of its arguments (an object schema).
    fn parameters(&self) -> Value;

    /// What running it can do.
    fn effect(&self) -> Effect;

    /// Whether it changes files or runs commands (so plan mode leaves it out).
    fn is_write(&self) -> bool {
        self.effect() != Effect::ReadOnly
    }

    /// The OpenAI function-tool shape given to the chat template and the grammar.
    fn schema(&self) -> Value {
        json!({
            "type": "function",
            "function": {
                "name": self.name(),
                "description": self.description(),
                "parameters": self.parameters(),
            }
        })
    }

    /// The call described for the permission check and the approval prompt.
    fn describe(&self, args: &Value, _ctx: &ToolContext) -> Result<ActionRequest, ToolError> {
        Ok(ActionRequest {
            tool: self.name().to_string(),
            effect: self.effect(),
            summary: format!("{} {}", self.name(), args),
            command: None,
            preview: None,
        })
    }

    /// Runs the call. Permission has already been granted.
    async fn run(&self, args: Value, ctx: &ToolContext) -> Result<ToolOutput, ToolError>;
}

/// Parses a tool's arguments into its typed form, naming the tool in the error.
pub(crate) fn parse_args<T: DeserializeOwned>(tool: &str, args: &Value) -> Result<T, ToolError> {
    serde_json::from_value(args.clone())
        .map_err(|err| ToolError::InvalidArguments { tool: tool.to_string(), message: err.to_string() })
}

/// One line as `read` shows it, number first, so `edit` results match what the model read.
pub(crate) fn numbered_line(number: usize, text: &str) -> String {
    format!("{number:>6}\t{text}\n")
}

/// Cuts `text` to at most `max_chars` characters, saying how long it was.
pub(crate) fn cut_line(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        None => text.to_string(),
        Some((end, _)) => format!("{}… [line cut, {} chars]", &text[..end], text.chars().count()),
    }
}

/// Runs blocking file work off the async threads.
pub(crate) async fn blocking<T, F>(work: F) -> Result<T, ToolError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, ToolError> + Send + 'static,
{
    tokio::task::spawn_blocking(work).await.map_err(|err| ToolError::Internal(format!("tool task failed: {err}")))?
}

#[cfg(test)]
pub(crate) mod test_support;
