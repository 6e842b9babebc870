//! The agent's protocol types in one place: session events and the values they carry (file
//! changes, the todo list, token counts). Sessions store them as JSON lines, and front-ends
//! (`hearth exec --json`, the terminal UI) can print or render the same values.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::permissions::Mode;

/// The version of the session file format, written in its first event.
pub const SESSION_FORMAT_VERSION: u32 = 1;

/// One line of a session file: an event with its sequence number, time and turn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    /// Position in the session, from 0.
    pub seq: u64,
    /// Milliseconds since the Unix epoch when the event was recorded.
    pub ts_ms: u64,
    /// The turn the event belongs to; a user message starts a new turn, turn 0 is the preamble.
    pub turn: u32,
    /// What happened.
    #[serde(flatten)]
    pub event: Event,
}

/// Something that happened in a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// The first event of every session file.
    SessionStarted {
        /// The session's id (also its file name).
        session_id: String,
        /// The file format version.
        format_version: u32,
        /// The canonical workspace root.
        workspace: PathBuf,
        /// The model's id or path, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        model: Option<String>,
        /// The permission mode at the start.
        mode: Mode,
    },
    /// A message from the user; starts a new turn.
    UserMessage {
        /// What the user wrote.
        text: String,
    },
    /// Text the assistant produced (outside tool calls).
    AssistantText {
        /// The text.
        text: String,
    },
    /// The assistant called a tool.
    ToolCall {
        /// The id the result refers back to.
        call_id: String,
        /// The tool's name.
        name: String,
        /// The arguments as the model gave them.
        arguments: serde_json::Value,
    },
    /// A tool's result, as given back to the model.
    ToolResult {
        /// The id of the call it answers.
        call_id: String,
        /// The tool's name.
        name: String,
        /// The text the model sees.
        output: String,
        /// Whether the call failed or was refused.
        is_error: bool,
    },
    /// A tool changed a file; kept so the turn can be undone.
    FileChanged(FileChange),
    /// The model replaced its plan.
    TodosUpdated {
        /// The whole list after the update.
        todos: Vec<TodoItem>,
    },
    /// Token counts after a model call.
    TokenUsage(TokenUsage),
    /// Older turns were replaced by a summary to free context.
    Compacted {
        /// The summary that replaces them.
        summary: String,
        /// The last turn the summary covers.
        through_turn: u32,
        /// Context tokens before compaction.
        tokens_before: u32,
        /// Context tokens after compaction.
        tokens_after: u32,
    },
    /// The permission mode changed.
    ModeChanged {
        /// The new mode.
        mode: Mode,
    },
    /// A turn was undone: its file changes reverted and its messages dropped from the context.
    TurnUndone {
        /// The turn that was undone.
        undone_turn: u32,
    },
    /// Outputs of older tool calls were replaced by a placeholder to free context.
    ToolResultsDropped {
        /// How many results.
        count: u32,
        /// Context tokens before.
        tokens_before: u32,
        /// Context tokens after.
        tokens_after: u32,
    },
}

/// A change a tool made to one file, with enough content to revert it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileChange {
    /// The path relative to the workspace root.
    pub path: String,
    /// The content before; `None` when the tool created the file.
    pub before: Option<String>,
    /// The content after; `None` when the tool deleted the file.
    pub after: Option<String>,
}

/// The state of one item of the model's plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TodoStatus {
    /// Not started.
    Pending,
    /// Being worked on now.
    InProgress,
    /// Done.
    Completed,
}

/// One item of the model's plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TodoItem {
    /// What is to be done.
    pub content: String,
    /// How far it is.
    pub status: TodoStatus,
}

/// Token counts of one model call and the context they leave.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenUsage {
    /// Prompt tokens the call needed.
    pub prompt_tokens: u32,
    /// Of those, tokens whose KV was reused instead of computed.
    pub cached_prompt_tokens: u32,
    /// Tokens generated.
    pub completion_tokens: u32,
    /// Tokens in the context after the call.
    pub context_tokens: u32,
    /// The model's context length.
    pub context_limit: u32,
}
