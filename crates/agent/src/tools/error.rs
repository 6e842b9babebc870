//! Why a tool call failed. The message of each error is what the model reads, so each says what
//! went wrong and what to do instead.

use std::io;

use crate::permissions::{Mode, PermissionError};
use crate::tools::shell::sandbox::SandboxError;
use crate::workspace::WorkspaceError;

/// A failed or refused tool call.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// No tool has this name.
    #[error("unknown tool '{name}'; available tools: {available}")]
    UnknownTool {
        /// The name called.
        name: String,
        /// The tools offered, comma-separated.
        available: String,
    },

    /// The mode does not offer this tool.
    #[error("tool '{tool}' is not available in {mode} mode")]
    NotOffered {
        /// The tool.
        tool: String,
        /// The current mode.
        mode: Mode,
    },

    /// The arguments do not fit the tool's schema.
    #[error("invalid arguments for {tool}: {message}")]
    InvalidArguments {
        /// The tool.
        tool: String,
        /// What is wrong.
        message: String,
    },

    /// A permission rule, the mode or the user refused the call.
    #[error(transparent)]
    Permission(#[from] PermissionError),

    /// A path was refused or could not be resolved.
    #[error(transparent)]
    Workspace(#[from] WorkspaceError),

    /// `write` would replace a file the model has not read.
    #[error(
        "'{0}' already exists and you have not read it; read it first (write replaces the whole file), or use edit to change part of it"
    )]
    NotReadYet(String),

    /// `edit` on a file the model has not read: old_string would be a guess at its text.
    #[error(
        "you have not read '{0}' in this conversation; read it first, then copy old_string exactly from what read shows"
    )]
    EditNotReadYet(String),

    /// A write or edit's new text carries line numbers copied from `read`'s output.
    #[error(
        "{field} starts its lines with line numbers as read shows them, such as `{example}`, so '{path}' was not \
         changed. The numbers are not part of the file: give only the text after each number and its tab, \
         indented as in the file"
    )]
    CopiedLineNumbers {
        /// The file.
        path: String,
        /// The argument holding the numbers.
        field: &'static str,
        /// Its first numbered line.
        example: String,
    },

    /// `write` would delete lines of an existing file; only a person's approval lets it through
    /// (deleting lines is edit's job, where the lines removed are named).
    #[error(
        "write would delete {count} line(s) of '{path}', such as `{example}`, so the file was not changed. {append}. \
         To rewrite the file, write its whole new content, the lines to keep as well; to delete lines, use edit with \
         an empty new_string"
    )]
    WouldDeleteLines {
        /// The file.
        path: String,
        /// Lines of the file missing from the new content.
        count: usize,
        /// The first of them.
        example: String,
        /// How to add the new content after the file's end instead (small models write only the
        /// code they add), as an edit call the model can copy.
        append: String,
    },

    /// `write` was asked to replace a file with a part it already holds (a small model repeating a
    /// change it made).
    #[error("'{path}' already contains this text (from line {line}), so nothing was written; that change is done")]
    AlreadyContains {
        /// The file.
        path: String,
        /// Where the text starts.
        line: usize,
    },

    /// The file does not exist.
    #[error("'{0}' does not exist; use glob to find files")]
    NotFound(String),

    /// A file was expected but the path is a directory.
    #[error("'{0}' is a directory; use glob to list its files")]
    IsDirectory(String),

    /// A directory was expected (for an optional argument whose default is the workspace root).
    #[error("'{0}' is a file, not a directory; name a directory, or leave the argument out to use the workspace root")]
    NotDirectory(String),

    /// The file is binary.
    #[error("'{path}' is a binary file ({bytes} bytes); it cannot be shown or edited as text")]
    Binary {
        /// The file.
        path: String,
        /// Its size.
        bytes: u64,
    },

    /// The file is not UTF-8 text, so it cannot be edited (or its old content kept for undo).
    #[error("'{0}' is not UTF-8 text; refusing to change it")]
    NotText(String),

    /// Reading or writing failed.
    #[error("{action} '{path}': {source}")]
    Io {
        /// What was being done, e.g. "cannot read".
        action: &'static str,
        /// The path, as the model gave it.
        path: String,
        /// The system error.
        source: io::Error,
    },

    /// An edit's `old_string` is not in the file.
    #[error("old_string was not found in '{path}'{hint}")]
    EditNoMatch {
        /// The file.
        path: String,
        /// A suggestion, such as a line that matches apart from indentation.
        hint: String,
    },

    /// An edit's `old_string` is not in the file but its `new_string` is: the edit was made
    /// already (small models make their change again, or try to undo it and then redo it).
    #[error(
        "old_string is not in '{path}' but new_string is, at line {line}, so this change is already made and nothing was written; that change is done"
    )]
    EditAlreadyApplied {
        /// The file.
        path: String,
        /// Where new_string starts.
        line: usize,
    },

    /// An edit's `old_string` occurs more than once and `replace_all` is not set.
    #[error(
        "old_string occurs {count} times in '{path}' (at lines {lines}); include more surrounding lines to make it unique, or set replace_all to true"
    )]
    EditNotUnique {
        /// The file.
        path: String,
        /// How many times it occurs.
        count: usize,
        /// The lines where it starts, comma-separated.
        lines: String,
    },

    /// An edit would change nothing.
    #[error("old_string and new_string are the same; nothing to change")]
    EditNoChange,

    /// A write would leave the file as it is.
    #[error("'{0}' already holds exactly this content, so nothing was written; that change is done")]
    WriteNoChange(String),

    /// An unattended change would stop a file that parsed from parsing.
    #[error(
        "this {tool} would leave '{path}' unparseable as {language} ({problem}), so nothing was written; \
         correct the {field} you gave (indentation, colons, brackets, quotes, commas) and call {tool} again"
    )]
    BreaksSyntax {
        /// The tool: edit or write.
        tool: &'static str,
        /// The file.
        path: String,
        /// The language it is parsed as.
        language: &'static str,
        /// The parser's message with its line, and the text of that line.
        problem: String,
        /// The argument that held the new text.
        field: &'static str,
    },

    /// A glob or regular expression does not parse.
    #[error("invalid pattern '{pattern}': {message}")]
    Pattern {
        /// The pattern.
        pattern: String,
        /// The parser's message.
        message: String,
    },

    /// No sandbox could be set up for `shell`.
    #[error(transparent)]
    Sandbox(#[from] SandboxError),

    /// The command could not be started.
    #[error("cannot start the command: {0}")]
    Spawn(io::Error),

    /// The command ran past its time limit and was killed.
    #[error("the command was killed after {seconds} s (its time limit); output so far:\n{output}")]
    Timeout {
        /// The limit.
        seconds: u64,
        /// What it printed before.
        output: String,
    },

    /// `task` was called where no subagents can run.
    #[error("subagents are not available here (a subagent cannot start another); do the work directly")]
    NoSubagents,

    /// A subagent failed.
    #[error("the subagent failed: {0}")]
    Subagent(String),

    /// A subagent looked at nothing and ran nothing, so its report cannot rest on anything.
    #[error(
        "the subagent did no work (it {0}: it read no file and ran nothing), so its report was dropped; \
         do this yourself with grep, read, edit and shell"
    )]
    SubagentIdle(String),

    /// A failure inside hearth rather than in the call.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ToolError {
    /// Whether the call was refused because what it would do is already done: the file already
    /// holds the text written.
    pub fn is_already_done(&self) -> bool {
        matches!(
            self,
            ToolError::AlreadyContains { .. } | ToolError::WriteNoChange(_) | ToolError::EditAlreadyApplied { .. }
        )
    }

    /// An I/O error while `action`ing `path`.
    pub(crate) fn io(action: &'static str, path: &str, source: io::Error) -> Self {
        ToolError::Io { action, path: path.to_string(), source }
    }
}
