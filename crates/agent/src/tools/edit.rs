//! `edit`: replace an exact piece of a file's text, shown as a unified diff.

use std::path::PathBuf;

use serde::Deserialize;
use serde_json::{Value, json};
use similar::TextDiff;

use self::leftover::leftover_names_note;
use super::copied_numbers::{copied_line_number, quoted_example, refuse_copied_numbers};
use super::python_defs::definition_notes;
use super::syntax::{self, SyntaxChange};
use super::write::existing_text;
use super::{Tool, ToolContext, ToolError, ToolOutput, blocking, numbered_line, parse_args};
use crate::permissions::{ActionRequest, Effect};
use crate::protocol::FileChange;

/// The `edit` tool.
#[derive(Debug, Clone, Copy, Default)]
pub struct EditTool;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct EditArgs {
    path: String,
    old_string: String,
    new_string: String,
    #[serde(default)]
    replace_all: bool,
}

/// An edit worked out against the file's current content.
struct PlannedEdit {
    path: PathBuf,
    shown: String,
    before: String,
    after: String,
    replacements: usize,
    /// Lines (from 1) of `after` the first replacement spans.
    first_change: (usize, usize),
    /// Lines next to old_string that new_string repeated, replaced rather than added twice.
    repeated_lines: usize,
}

#[async_trait::async_trait]
impl Tool for EditTool {
    fn name(&self) -> &'static str {
        "edit"
    }

    fn description(&self) -> &'static str {
        "Replace text in a file. old_string must match the file exactly (including indentation and line breaks) \
         and occur exactly once, unless replace_all is true. Include enough surrounding lines to make it unique."
    }

    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "path": {"type": "string", "minLength": 1, "description": "File path, relative to the workspace root"},
                "old_string": {"type": "string", "description": "The exact text to replace"},
                "new_string": {"type": "string", "description": "The text to put in its place"},
                "replace_all": {"type": "boolean", "description": "Replace every occurrence (default false)"}
            },
            "required": ["path", "old_string", "new_string"],
            "additionalProperties": false
        })
    }

    fn effect(&self) -> Effect {
        Effect::Edit
    }

    fn describe(&self, args: &Value, ctx: &ToolContext) -> Result<ActionRequest, ToolError> {
        let args: EditArgs = parse_args(self.name(), args)?;
        let path = ctx.workspace.resolve(&args.path)?;
        let shown = ctx.workspace.display_path(&path);
        ctx.require_seen(&path, || ToolError::EditNotReadYet(shown.clone()))?;
        refuse_copied_numbers(&args.new_string, "new_string", &shown, ctx.approved_by_user)?;
        let plan = plan_edit(path, shown, &args)?;
        Ok(ActionRequest {
            tool: self.name().into(),
            effect: self.effect(),
            summary: format!("edit {}", plan.shown),
            command: None,
            preview: Some(unified_diff(&plan.shown, &plan.before, &plan.after)),
        })
    }

    async fn run(&self, args: Value, ctx: &ToolContext) -> Result<ToolOutput, ToolError> {
        let args: EditArgs = parse_args(self.name(), &args)?;
        let path = ctx.workspace.resolve(&args.path)?;
        let shown = ctx.workspace.display_path(&path);
        ctx.require_seen(&path, || ToolError::EditNotReadYet(shown.clone()))?;
        refuse_copied_numbers(&args.new_string, "new_string", &shown, ctx.approved_by_user)?;
        let seen = path.clone();
        let approved = ctx.approved_by_user;
        let out = blocking(move || {
            let plan = plan_edit(path, shown, &args)?;
            let syntax = SyntaxChange::of(&plan.path, Some(&plan.before), &plan.after);
            // A person who approved the call saw the diff; the refusal is for unattended edits.
            if let SyntaxChange::Breaks(problem) = &syntax
                && !approved
            {
                return Err(syntax::refusal("edit", "new_string", plan.shown, &plan.after, problem));
            }
            std::fs::write(&plan.path, &plan.after).map_err(|err| ToolError::io("cannot write", &args.path, err))?;
            let diff = unified_diff(&plan.shown, &plan.before, &plan.after);
            let noun = if plan.replacements == 1 { "replacement" } else { "replacements" };
            // The model gets the new text with line numbers, as read shows it, not the diff: small
            // models copied a diff into the file as its content.
            let (first, last) = plan.first_change;
            let snippet = numbered_lines(&plan.after, first.saturating_sub(SNIPPET_CONTEXT), last + SNIPPET_CONTEXT);
            let repeated = match plan.repeated_lines {
                0 => String::new(),
                1 => "; new_string repeated the line next to old_string, so that line was replaced, not \
                      added twice"
                    .to_string(),
                n => format!(
                    "; new_string repeated the {n} lines next to old_string, so those lines were replaced, not \
                     added twice"
                ),
            };
            let mut text = format!(
                "Edited {} ({} {noun}{repeated}). {} and around now read:\n{snippet}",
                plan.shown,
                plan.replacements,
                if first == last { format!("Line {first}") } else { format!("Lines {first}-{last}") }
            );
            if let Some(note) = syntax.note(&plan.shown) {
                text.push_str(&note);
            }
            if let Some(note) = definition_notes(&plan.shown, Some(&plan.before), &plan.after) {
                text.push_str(&note);
            }
            if let Some(note) = leftover_names_note(&plan.shown, &args.old_string, &args.new_string, &plan.after) {
                text.push_str(&note);
            }
            Ok(ToolOutput {
                text,
                changes: vec![FileChange { path: plan.shown, before: Some(plan.before), after: Some(plan.after) }],
                diff: Some(diff),
                ..ToolOutput::default()
            })
        })
        .await?;
        // The model saw the diff; a later rewrite of the file is informed.
        ctx.mark_seen(&seen);
        Ok(out)
    }
}

fn plan_edit(path: PathBuf, shown: String, args: &EditArgs) -> Result<PlannedEdit, ToolError> {
    if args.old_string.is_empty() {
        return Err(ToolError::InvalidArguments {
            tool: "edit".into(),
            message: "old_string is empty; to create a file or replace all of it, use write".into(),
        });
    }
    if args.old_string == args.new_string {
        return Err(ToolError::EditNoChange);
    }
    let before = existing_text(&path, &args.path)?.ok_or_else(|| ToolError::NotFound(args.path.clone()))?;
    let (old, new) = match_line_endings(&before, &args.old_string, &args.new_string);
    let starts: Vec<usize> = before.match_indices(old.as_str()).map(|(at, _)| at).collect();
    match starts.len() {
        0 => {
            // Only a new_string with some text of its own counts: a blank or one-word one may be
            // in the file by chance.
            if new.trim().len() >= MIN_APPLIED_BYTES
                && let Some(at) = before.find(new.as_str())
            {
                return Err(ToolError::EditAlreadyApplied { path: shown, line: line_of(&before, at) });
            }
            return Err(ToolError::EditNoMatch { path: shown, hint: no_match_hint(&before, &args.old_string) });
        }
        1 => {}
        count if !args.replace_all => {
            let lines: Vec<String> = starts.iter().map(|&at| line_of(&before, at).to_string()).collect();
            return Err(ToolError::EditNotUnique { path: shown, count, lines: lines.join(", ") });
        }
        _ => {}
    }
    if let Some(line) = applied_before(&before, starts[0], &old, &new).filter(|_| starts.len() == 1) {
        return Err(ToolError::AlreadyContains { path: shown, line });
    }
    let (old, at, repeated_lines) = match widened(&before, starts[0], &old, &new).filter(|_| starts.len() == 1) {
        Some((at, wide)) => {
            let lines = wide.matches('\n').count() - old.matches('\n').count();
            (wide.to_string(), at, lines)
        }
        None => (old, starts[0], 0),
    };
    let after = before.replace(old.as_str(), &new);
    // Text before the first match is unchanged, so its line number holds in `after` too.
    let first = line_of(&before, at);
    let first_change = (first, first + new.matches('\n').count());
    Ok(PlannedEdit { path, shown, replacements: starts.len(), before, after, first_change, repeated_lines })
}

/// The match of `old` at `at` widened over the whole lines next to it that `new` repeats, with
/// where it starts: small models copy the line after (or before) the text they replace into
/// new_string too, which would leave that line in the file twice. `None` when `new` repeats no
/// neighbouring line or the widened text is not unique.
fn widened<'a>(content: &'a str, at: usize, old: &str, new: &str) -> Option<(usize, &'a str)> {
    let end = at + old.len();
    let rest = &content[end..];
    let after_sep = if old.ends_with('\n') { "" } else { "\n" };
    // Longest repeated tail first: each candidate starts after a line break of `new`.
    let tail = new.match_indices('\n').map(|(i, _)| &new[i + 1..]).find(|tail| {
        let Some(next) = rest.strip_prefix(after_sep).and_then(|r| r.strip_prefix(*tail)) else {
            return false;
        };
        !tail.trim().is_empty()
            && !old.ends_with(*tail)
            && (tail.ends_with('\n') || next.is_empty() || next.starts_with('\n'))
    });
    let head = new.match_indices('\n').rev().map(|(i, _)| &new[..i]).find(|head| {
        let Some(previous) = content[..at].strip_suffix('\n').and_then(|p| p.strip_suffix(*head)) else {
            return false;
        };
        !head.trim().is_empty() && !old.starts_with(*head) && (previous.is_empty() || previous.ends_with('\n'))
    });
    if tail.is_none() && head.is_none() {
        return None;
    }
    let start = head.map_or(at, |head| at - head.len() - 1);
    let stop = tail.map_or(end, |tail| end + after_sep.len() + tail.len());
    let wide = &content[start..stop];
    (content.matches(wide).count() == 1).then_some((start, wide))
}

/// The line where the file already holds `new` around the match of `old` at `at`: an edit that
/// adds text next to `old` (so `new` contains it) was made before, and small models repeat it,
/// which would add the text twice.
fn applied_before(content: &str, at: usize, old: &str, new: &str) -> Option<usize> {
    let offset = new.find(old)?;
    let start = at.checked_sub(offset)?;
    (content.get(start..start + new.len()) == Some(new)).then(|| line_of(content, start))
}

/// Files with CRLF line ends are edited with the model's LF text converted, since models write
/// `\n` whatever the file uses.
fn match_line_endings(content: &str, old: &str, new: &str) -> (String, String) {
    if content.contains("\r\n") && !old.contains('\r') && old.contains('\n') && !content.contains(old) {
        (old.replace('\n', "\r\n"), new.replace('\n', "\r\n"))
    } else {
        (old.to_string(), new.to_string())
    }
}

/// Shortest new_string (trimmed) whose presence in the file, with old_string gone, means the
/// edit was already made.
const MIN_APPLIED_BYTES: usize = 8;

/// Unchanged lines shown on each side of an edit in its result.
const SNIPPET_CONTEXT: usize = 2;

/// Lines `from..=to` (from 1, clamped to the text) numbered as `read` shows them.
fn numbered_lines(text: &str, from: usize, to: usize) -> String {
    let mut out = String::new();
    for (i, line) in text.lines().enumerate().skip(from.max(1) - 1).take(to.saturating_sub(from.max(1)) + 1) {
        out.push_str(&numbered_line(i + 1, line));
    }
    out
}

/// The line (from 1) holding byte `byte` of `text`.
pub(super) fn line_of(text: &str, byte: usize) -> usize {
    text[..byte].matches('\n').count() + 1
}

/// Least similarity (`similar`'s ratio, 0 to 1) for a line to be quoted as the one meant.
const CLOSE_LINE_RATIO: f32 = 0.6;

/// Lines longer than this are not compared character by character (the cost is quadratic).
const CLOSE_LINE_MAX_CHARS: usize = 400;

/// Points at the line the first line of `old` was meant to match. The same text apart from
/// surrounding whitespace is the most common miss; next comes text retyped from memory (small
/// models write `timeout: 30` for `"timeout": 30,`), for which the closest line is quoted so the
/// model can copy it rather than read the file again.
fn no_match_hint(content: &str, old: &str) -> String {
    if let Some(example) = copied_line_number(old) {
        return format!(
            "; its lines start with line numbers as read shows them (`{}`), which are not part of the file: copy \
             only the text after each number and its tab",
            quoted_example(example)
        );
    }
    let Some(first) = old.lines().map(str::trim).find(|line| !line.is_empty()) else {
        return String::new();
    };
    let near: Vec<String> = content
        .lines()
        .enumerate()
        .filter(|(_, line)| line.trim() == first)
        .map(|(i, _)| (i + 1).to_string())
        .take(5)
        .collect();
    if !near.is_empty() {
        return format!(
            "; line {} has the same text apart from whitespace: copy the text exactly as read shows it (after the tab)",
            near.join(", ")
        );
    }
    match closest_line(content, first) {
        Some((number, line)) => format!(
            "; the closest is line {number}, which reads `{line}`: copy old_string from the file's text exactly, \
             quotes and punctuation included"
        ),
        None => "; read the file to see its current text".to_string(),
    }
}

/// The line of `content` most like `wanted` (trimmed), with its number from 1, if any is close.
fn closest_line<'a>(content: &'a str, wanted: &str) -> Option<(usize, &'a str)> {
    if wanted.chars().count() > CLOSE_LINE_MAX_CHARS {
        return None;
    }
    let mut best: Option<(f32, usize, &str)> = None;
    for (i, line) in content.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.chars().count() > CLOSE_LINE_MAX_CHARS {
            continue;
        }
        let ratio = TextDiff::from_chars(wanted, trimmed).ratio();
        if ratio >= CLOSE_LINE_RATIO && best.is_none_or(|(r, _, _)| ratio > r) {
            best = Some((ratio, i + 1, line));
        }
    }
    best.map(|(_, number, line)| (number, line))
}

/// A unified diff of `before` and `after` with three lines of context, headed `a/PATH b/PATH`.
pub(crate) fn unified_diff(shown: &str, before: &str, after: &str) -> String {
    TextDiff::from_lines(before, after)
        .unified_diff()
        .context_radius(3)
        .header(&format!("a/{shown}"), &format!("b/{shown}"))
        .to_string()
}

mod leftover;
#[cfg(test)]
mod tests;
