//! The prompt's line editor (rustyline): history kept across runs, completion of slash
//! commands, and multi-line input (a line ending in `\`, or Alt-Enter).

use std::path::PathBuf;

use rustyline::completion::Completer;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Cmd, Config, Context, Editor, EventHandler, Helper, KeyCode, KeyEvent, Modifiers};

use super::slash;

/// Entries the history file keeps.
const HISTORY_ENTRIES: usize = 2000;

/// The prompt's helper: completion and the continuation rule.
#[derive(Debug, Default)]
pub struct PromptHelper;

impl Completer for PromptHelper {
    type Candidate = String;

    fn complete(&self, line: &str, pos: usize, _ctx: &Context<'_>) -> rustyline::Result<(usize, Vec<String>)> {
        Ok(slash::complete(&line[..pos]))
    }
}

impl Hinter for PromptHelper {
    type Hint = String;
}

// The default highlighter is what lets rustyline show the styled prompt.
impl Highlighter for PromptHelper {}

impl Validator for PromptHelper {
    fn validate(&self, ctx: &mut ValidationContext<'_>) -> rustyline::Result<ValidationResult> {
        Ok(if ctx.input().ends_with('\\') { ValidationResult::Incomplete } else { ValidationResult::Valid(None) })
    }
}

impl Helper for PromptHelper {}

/// The chat's line editor and where its history lives.
pub struct PromptEditor {
    editor: Editor<PromptHelper, DefaultHistory>,
    history: Option<PathBuf>,
}

impl PromptEditor {
    /// An editor with the history from `history` (created on the first entry if missing).
    pub fn new(history: Option<PathBuf>) -> anyhow::Result<Self> {
        let config = Config::builder()
            .max_history_size(HISTORY_ENTRIES)?
            .history_ignore_dups(true)?
            .auto_add_history(false)
            .build();
        let mut editor = Editor::with_config(config)?;
        editor.set_helper(Some(PromptHelper));
        editor.bind_sequence(KeyEvent(KeyCode::Enter, Modifiers::ALT), EventHandler::Simple(Cmd::Newline));
        if let Some(path) = &history
            && path.exists()
        {
            // A damaged history file costs the history, not the session.
            let _ = editor.load_history(path);
        }
        Ok(Self { editor, history })
    }

    /// Reads one input (several lines when continued) with the plain and styled prompt.
    pub fn read(&mut self, prompt: &str, styled: &str) -> rustyline::Result<String> {
        self.editor.readline(&(prompt, styled)).map(|input| join_continued_lines(&input))
    }

    /// Adds `entry` to the history and appends it to the history file.
    pub fn remember(&mut self, entry: &str) {
        if entry.trim().is_empty() || !matches!(self.editor.add_history_entry(entry), Ok(true)) {
            return;
        }
        if let Some(path) = &self.history {
            if let Some(dir) = path.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            let _ = self.editor.append_history(path);
        }
    }
}

/// Where the prompt history is kept: next to the session files.
pub fn default_history_path() -> Option<PathBuf> {
    let sessions = hearth_agent::session::default_sessions_dir()?;
    Some(sessions.parent()?.join("chat_history"))
}

/// The input with each line-continuing backslash removed (the line break stays).
pub fn join_continued_lines(input: &str) -> String {
    input.replace("\\\n", "\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuation_backslashes_are_dropped() {
        assert_eq!(join_continued_lines("first\\\nsecond\\\nthird"), "first\nsecond\nthird");
        assert_eq!(join_continued_lines("a path C:\\dir"), "a path C:\\dir");
        assert_eq!(join_continued_lines("one line"), "one line");
    }
}
