//! `write`: create a file or replace its whole content.

use std::path::Path;

use serde::Deserialize;
use serde_json::{Value, json};

use super::copied_numbers::refuse_copied_numbers;
use super::edit::{line_of, unified_diff};
use super::python_defs::{TopLevelDef, definition_notes, is_python, top_level_defs};
use super::syntax::{self, SyntaxChange};
use super::{Tool, ToolContext, ToolError, ToolOutput, blocking, cut_line, parse_args};
use crate::permissions::{ActionRequest, Effect};
use crate::protocol::FileChange;

/// The `write` tool.
#[derive(Debug, Clone, Copy, Default)]
pub struct WriteTool;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WriteArgs {
    path: String,
    content: String,
}

#[async_trait::async_trait]
impl Tool for WriteTool {
    fn name(&self) -> &'static str {
        "write"
    }

    fn description(&self) -> &'static str {
        "Create a file, or replace all of an existing file's content. Parent directories are created. \
         To change part of a file, use edit instead."
    }

    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "path": {"type": "string", "minLength": 1, "description": "File path, relative to the workspace root"},
                "content": {"type": "string", "description": "The complete new content of the file"}
            },
            "required": ["path", "content"],
            "additionalProperties": false
        })
    }

    fn effect(&self) -> Effect {
        Effect::Edit
    }

    fn describe(&self, args: &Value, ctx: &ToolContext) -> Result<ActionRequest, ToolError> {
        let args: WriteArgs = parse_args(self.name(), args)?;
        let path = ctx.workspace.resolve(&args.path)?;
        let shown = ctx.workspace.display_path(&path);
        // Refused here as well as in `run`, so nobody is asked to approve a write that would fail.
        ctx.require_seen(&path, || ToolError::NotReadYet(shown.clone()))?;
        refuse_copied_numbers(&args.content, "content", &shown, ctx.approved_by_user)?;
        let before = existing_text(&path, &args.path)?;
        refuse_no_change(before.as_deref(), &args.content, &shown)?;
        let (summary, preview) = match &before {
            Some(before) => (format!("overwrite {shown}"), unified_diff(&shown, before, &args.content)),
            None => (format!("create {shown} ({} lines)", args.content.lines().count()), args.content.clone()),
        };
        Ok(ActionRequest {
            tool: self.name().into(),
            effect: self.effect(),
            summary,
            command: None,
            preview: Some(preview),
        })
    }

    async fn run(&self, args: Value, ctx: &ToolContext) -> Result<ToolOutput, ToolError> {
        let args: WriteArgs = parse_args(self.name(), &args)?;
        let path = ctx.workspace.resolve(&args.path)?;
        let shown = ctx.workspace.display_path(&path);
        ctx.require_seen(&path, || ToolError::NotReadYet(shown.clone()))?;
        refuse_copied_numbers(&args.content, "content", &shown, ctx.approved_by_user)?;
        let before = existing_text(&path, &args.path)?;
        refuse_no_change(before.as_deref(), &args.content, &shown)?;
        // A person who approved the call saw the diff; the refusals below are for unattended writes.
        if let Some(before) = before.as_ref().filter(|_| !ctx.approved_by_user) {
            let deleted = deleted_lines(before, &args.content);
            if let Some(first) = deleted.first() {
                let part = args.content.trim();
                if let Some(at) = before.find(part).filter(|_| !part.is_empty()) {
                    return Err(ToolError::AlreadyContains { path: shown, line: line_of(before, at) });
                }
                return Err(ToolError::WouldDeleteLines {
                    path: shown,
                    count: deleted.len(),
                    example: first.trim().to_string(),
                    append: append_hint(&args.path, before, &args.content),
                });
            }
        }
        let seen = path.clone();
        let approved = ctx.approved_by_user;
        let out = blocking(move || write_file(&path, shown, args, before, approved)).await?;
        ctx.mark_seen(&seen);
        Ok(out)
    }
}

/// Refuses a write of what the file at `shown` already holds, `before`, or of that text without
/// its final newline. A small model rewrites a file with what it already holds after a command
/// has given the answer; calling that a change, with a diff of the newline, hides from it and from
/// the loop guard that nothing happened.
fn refuse_no_change(before: Option<&str>, content: &str, shown: &str) -> Result<(), ToolError> {
    match before {
        Some(text) if text == content || text.strip_suffix('\n') == Some(content) => {
            Err(ToolError::WriteNoChange(shown.to_string()))
        }
        _ => Ok(()),
    }
}

/// Writes `args.content` over `before`, the file's text as the checks above read it, unless it
/// would stop the file from parsing and no person `approved` the call.
fn write_file(
    path: &Path,
    shown: String,
    args: WriteArgs,
    before: Option<String>,
    approved: bool,
) -> Result<ToolOutput, ToolError> {
    let syntax = SyntaxChange::of(path, before.as_deref(), &args.content);
    if let SyntaxChange::Breaks(problem) = &syntax
        && !approved
    {
        return Err(syntax::refusal("write", "content", shown, &args.content, problem));
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|err| ToolError::io("cannot create the directory for", &args.path, err))?;
    }
    std::fs::write(path, &args.content).map_err(|err| ToolError::io("cannot write", &args.path, err))?;
    let lines = args.content.lines().count();
    let (mut text, diff) = match &before {
        Some(before) => {
            (format!("Overwrote {shown} ({lines} lines)"), Some(unified_diff(&shown, before, &args.content)))
        }
        None => (format!("Created {shown} ({lines} lines)"), None),
    };
    if let Some(note) = syntax.note(&shown) {
        text.push('\n');
        text.push_str(&note);
    }
    if let Some(note) = definition_notes(&shown, before.as_deref(), &args.content) {
        text.push('\n');
        text.push_str(&note);
    }
    Ok(ToolOutput {
        text,
        changes: vec![FileChange { path: shown, before, after: Some(args.content) }],
        diff,
        ..ToolOutput::default()
    })
}

/// The non-blank lines of `before` (each as often as it occurs) that `after` does not have at
/// all: a rewrite that drops a copy of a line it keeps (a line an edit doubled) loses nothing.
fn deleted_lines<'a>(before: &'a str, after: &str) -> Vec<&'a str> {
    let kept: std::collections::HashSet<&str> = after.lines().map(str::trim_end).collect();
    before.lines().filter(|line| !line.trim().is_empty() && !kept.contains(line.trim_end())).collect()
}

/// Largest edit call quoted in full in a refusal; a longer one is described instead.
const QUOTED_EDIT_BYTES: usize = 1500;

/// How to add `content` after the end of `before` with `edit`: the exact call when it is short,
/// anchored on the shortest run of last lines that occurs once in the file.
fn append_hint(path: &str, before: &str, content: &str) -> String {
    if let Some(hint) = already_defined_hint(path, before, content) {
        return hint;
    }
    let lines: Vec<&str> = before.trim_end().lines().collect();
    let anchor = (1..=lines.len())
        .map(|k| lines[lines.len() - k..].join("\n"))
        .find(|tail| before.matches(tail.as_str()).count() == 1);
    let Some(anchor) = anchor.filter(|a| !a.trim().is_empty()) else {
        return "To add code to it, use edit with old_string set to its last lines and new_string set to those \
                lines followed by the new code"
            .to_string();
    };
    let call = json!({
        "path": path,
        "old_string": anchor,
        "new_string": format!("{anchor}\n\n{}", content.trim_end()),
    })
    .to_string();
    if call.len() <= QUOTED_EDIT_BYTES {
        format!("To add your new content after the file's last line, call edit with these arguments: {call}")
    } else {
        format!(
            "To add code after the file's last line, use edit with old_string `{anchor}` and new_string that text \
             followed by the new code"
        )
    }
}

/// Longest definition line quoted in a hint.
const QUOTED_DEF_CHARS: usize = 120;

/// What to do instead of appending `content` to the Python file `path` when it defines a name
/// that `before` already defines: appended, it would replace that definition. A small model that
/// fixed its first attempt rewrote the file with that attempt again, and the offered append call
/// brought the mistake back as a second `def`.
fn already_defined_hint(path: &str, before: &str, content: &str) -> Option<String> {
    if !is_python(path) {
        return None;
    }
    let existing: Vec<TopLevelDef<'_>> = top_level_defs(before).collect();
    let clashes: Vec<String> = top_level_defs(content)
        .filter_map(|new| existing.iter().find(|old| old.name == new.name))
        .map(|old| format!("`{}` (line {}: `{}`)", old.name, old.number, cut_line(old.line, QUOTED_DEF_CHARS)))
        .collect();
    if clashes.is_empty() {
        return None;
    }
    Some(format!(
        "{path} already defines {}, and adding your content after its last line would define it again, where \
         Python keeps only the last definition. To change a definition, edit it where it is",
        clashes.join(", ")
    ))
}

/// The current text of `path`, `None` if it does not exist; refuses directories and files that
/// are not UTF-8 (their content could not be restored by undo).
pub(crate) fn existing_text(path: &Path, shown: &str) -> Result<Option<String>, ToolError> {
    match std::fs::read(path) {
        Ok(bytes) => String::from_utf8(bytes).map(Some).map_err(|_| ToolError::NotText(shown.to_string())),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(_) if path.is_dir() => Err(ToolError::IsDirectory(shown.to_string())),
        Err(err) => Err(ToolError::io("cannot read", shown, err)),
    }
}

#[cfg(test)]
mod tests;
