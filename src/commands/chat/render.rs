//! How the chat shows a turn: the streamed reply, compact tool calls, summarised results, diffs,
//! the plan and the context meter. Colour only when stdout is a terminal (and `NO_COLOR` is
//! unset).

use std::collections::HashMap;
use std::io::{IsTerminal as _, Write as _};

use anstyle::{AnsiColor, Style};
use hearth_agent::agent_loop::AgentEvent;
use hearth_agent::protocol::{TodoItem, TodoStatus, TokenUsage};
use serde_json::Value;

use super::markup::CallMarkupFilter;

/// Characters of a tool's arguments or result shown on one line at most.
const LINE_CHARS: usize = 120;

/// Styles that are empty when colour is off.
#[derive(Debug, Clone, Copy)]
pub struct Palette {
    colour: bool,
}

impl Palette {
    /// Colour when stdout is a terminal and `NO_COLOR` is not set.
    pub fn for_stdout() -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Self::new(std::io::stdout().is_terminal() && !no_color)
    }

    /// A palette with colour on or off.
    pub fn new(colour: bool) -> Self {
        Self { colour }
    }

    /// `text` in `style`, or as it is without colour.
    pub fn paint(&self, style: Style, text: &str) -> String {
        if self.colour && !text.is_empty() {
            format!("{}{text}{}", style.render(), style.render_reset())
        } else {
            text.to_string()
        }
    }

    /// Secondary information: the meter, summaries.
    pub fn dim(&self, text: &str) -> String {
        self.paint(Style::new().dimmed(), text)
    }

    /// Emphasis: tool names, prompts.
    pub fn bold(&self, text: &str) -> String {
        self.paint(Style::new().bold(), text)
    }

    /// `text` in `colour`.
    pub fn fg(&self, colour: AnsiColor, text: &str) -> String {
        self.paint(Style::new().fg_color(Some(colour.into())), text)
    }
}

/// One line naming a tool call and its key arguments, e.g. `edit src/main.rs`.
pub fn tool_call_summary(name: &str, args: &Value) -> String {
    let text = |key: &str| args.get(key).and_then(Value::as_str).map(one_line);
    let detail = match name {
        "read" => text("path").map(|path| {
            match (args.get("offset").and_then(Value::as_u64), args.get("limit").and_then(Value::as_u64)) {
                (Some(offset), Some(limit)) => format!("{path}:{offset}-{}", offset + limit.saturating_sub(1)),
                (Some(offset), None) => format!("{path}:{offset}-"),
                (None, Some(limit)) => format!("{path}:1-{limit}"),
                (None, None) => path,
            }
        }),
        "write" | "edit" => text("path"),
        "glob" | "grep" => text("pattern").map(|pattern| match text("path") {
            Some(path) => format!("{pattern} in {path}"),
            None => pattern,
        }),
        "shell" => text("command").map(|command| format!("$ {command}")),
        "task" => text("description"),
        "todo" => args.get("todos").and_then(Value::as_array).map(|items| match items.len() {
            1 => "1 item".to_string(),
            n => format!("{n} items"),
        }),
        _ => args.as_object().and_then(|fields| fields.values().find_map(Value::as_str)).map(one_line),
    };
    truncate(&match detail {
        Some(detail) if !detail.is_empty() => format!("{name} {detail}"),
        _ => name.to_string(),
    })
}

/// One line summing up a tool's output: its first line and how many more there are.
pub fn tool_result_summary(output: &str, is_error: bool) -> String {
    let mut lines = output.lines().filter(|line| !line.trim().is_empty());
    let first = lines.next().map(str::trim).unwrap_or(if is_error { "failed" } else { "(no output)" });
    let more = lines.count();
    let first = truncate(first);
    if more == 0 { first } else { format!("{first} (+{more} lines)") }
}

/// A unified diff with added lines green, removed lines red and hunk headers cyan.
pub fn paint_diff(diff: &str, palette: &Palette) -> String {
    let mut out = String::with_capacity(diff.len());
    for line in diff.lines() {
        let painted = if line.starts_with("+++") || line.starts_with("---") {
            palette.bold(line)
        } else if line.starts_with('+') {
            palette.fg(AnsiColor::Green, line)
        } else if line.starts_with('-') {
            palette.fg(AnsiColor::Red, line)
        } else if line.starts_with("@@") {
            palette.fg(AnsiColor::Cyan, line)
        } else {
            line.to_string()
        };
        out.push_str(&painted);
        out.push('\n');
    }
    out
}

/// The plan, one item a line: `[x]` done, `[>]` in progress, `[ ]` pending.
pub fn paint_todos(todos: &[TodoItem], palette: &Palette) -> String {
    if todos.is_empty() {
        return palette.dim("  plan cleared\n");
    }
    let mut out = String::new();
    for item in todos {
        let line = match item.status {
            TodoStatus::Completed => palette.dim(&format!("  [x] {}", item.content)),
            TodoStatus::InProgress => palette.bold(&format!("  [>] {}", item.content)),
            TodoStatus::Pending => format!("  [ ] {}", item.content),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// The context meter after a model call: how full the context is and how much of the prompt
/// came from the KV cache.
pub fn usage_line(usage: &TokenUsage) -> String {
    let percent = if usage.context_limit == 0 {
        0.0
    } else {
        f64::from(usage.context_tokens) * 100.0 / f64::from(usage.context_limit)
    };
    let new = usage.prompt_tokens.saturating_sub(usage.cached_prompt_tokens);
    format!(
        "[context {}/{} ({percent:.0}%) · prompt {} reused + {} new · {} generated]",
        usage.context_tokens, usage.context_limit, usage.cached_prompt_tokens, new, usage.completion_tokens
    )
}

/// The line saying the conversation was compacted.
pub fn compacted_line(tokens_before: usize, tokens_after: usize, automatic: bool) -> String {
    let why = if automatic { " because the context was nearly full" } else { "" };
    format!("[older turns summarised{why}: context {tokens_before} → {tokens_after} tokens]")
}

/// Writes a turn's events to stdout as they arrive.
#[derive(Debug)]
pub struct Renderer {
    palette: Palette,
    /// Whether the last thing written ended a line.
    at_line_start: bool,
    /// Plans from `todo` calls, shown when their result says they were accepted.
    pending_todos: HashMap<String, Vec<TodoItem>>,
    /// Diffs the user already saw when approving; not shown again with the result.
    previewed: Vec<String>,
    markup: CallMarkupFilter,
}

impl Renderer {
    /// A renderer writing with `palette`.
    pub fn new(palette: Palette) -> Self {
        Self {
            palette,
            at_line_start: true,
            pending_todos: HashMap::new(),
            previewed: Vec::new(),
            markup: CallMarkupFilter::default(),
        }
    }

    /// The palette, for other output that should match.
    pub fn palette(&self) -> &Palette {
        &self.palette
    }

    /// Notes that the user saw `diff` in an approval prompt.
    pub fn previewed(&mut self, diff: &str) {
        self.previewed.push(diff.trim().to_string());
    }

    /// Shows one event.
    pub fn event(&mut self, event: AgentEvent) {
        if !matches!(event, AgentEvent::TextDelta(_)) {
            let held = self.markup.finish();
            self.write(&held);
        }
        match event {
            AgentEvent::TextDelta(text) => {
                let shown = self.markup.push(&text);
                self.write(&shown);
            }
            AgentEvent::ToolCall { call_id, name, arguments } => {
                if name == "todo"
                    && let Some(todos) = arguments.get("todos").cloned()
                    && let Ok(todos) = serde_json::from_value::<Vec<TodoItem>>(todos)
                {
                    self.pending_todos.insert(call_id, todos);
                }
                let line = format!(
                    "{} {}",
                    self.palette.fg(AnsiColor::Magenta, "●"),
                    self.palette.bold(&tool_call_summary(&name, &arguments))
                );
                self.line(&line);
            }
            AgentEvent::ToolResult { call_id, name, output, is_error, diff } => {
                let todos = self.pending_todos.remove(&call_id);
                let mark = if is_error {
                    self.palette.fg(AnsiColor::Red, "  ✗")
                } else {
                    self.palette.fg(AnsiColor::Green, "  ✓")
                };
                let todos = todos.filter(|_| name == "todo" && !is_error);
                let summary = match &todos {
                    // The list follows; its heading is enough.
                    Some(_) => truncate(output.lines().next().unwrap_or("").trim_end_matches(':')),
                    None => tool_result_summary(&output, is_error),
                };
                self.line(&format!(
                    "{mark} {}",
                    if is_error { self.palette.fg(AnsiColor::Red, &summary) } else { self.palette.dim(&summary) }
                ));
                if let Some(diff) = diff.filter(|d| !d.trim().is_empty()) {
                    match self.previewed.iter().position(|seen| seen == diff.trim()) {
                        Some(at) => {
                            self.previewed.remove(at);
                        }
                        None => self.write(&paint_diff(&diff, &self.palette)),
                    }
                }
                if let Some(todos) = todos {
                    self.write(&paint_todos(&todos, &self.palette));
                }
            }
            AgentEvent::Usage(usage) => {
                let line = self.palette.dim(&usage_line(&usage));
                self.line(&line);
            }
            AgentEvent::Compacted { tokens_before, tokens_after, automatic } => {
                let line = self.palette.fg(AnsiColor::Yellow, &compacted_line(tokens_before, tokens_after, automatic));
                self.line(&line);
            }
            AgentEvent::Notice(text) => {
                let line = self.palette.fg(AnsiColor::Yellow, &format!("[{text}]"));
                self.line(&line);
            }
            AgentEvent::TurnDone { .. } => {
                self.previewed.clear();
                self.end_line();
            }
        }
    }

    /// Writes `text` on a line of its own.
    pub fn line(&mut self, text: &str) {
        self.end_line();
        self.write(text);
        self.write("\n");
    }

    /// Ends the current line if something was written on it.
    pub fn end_line(&mut self) {
        if !self.at_line_start {
            self.write("\n");
        }
    }

    fn write(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
        self.at_line_start = text.ends_with('\n');
    }
}

/// `text` with line breaks shown as `⏎` so it fits on one line.
fn one_line(text: &str) -> String {
    text.trim().replace('\n', " ⏎ ")
}

/// `text` cut to [`LINE_CHARS`] characters.
fn truncate(text: &str) -> String {
    if text.chars().count() <= LINE_CHARS {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(LINE_CHARS - 1).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn tool_calls_show_their_key_argument() {
        assert_eq!(tool_call_summary("read", &json!({"path": "src/main.rs"})), "read src/main.rs");
        assert_eq!(tool_call_summary("read", &json!({"path": "a.rs", "offset": 10, "limit": 5})), "read a.rs:10-14");
        assert_eq!(
            tool_call_summary("edit", &json!({"path": "a.rs", "old_string": "x", "new_string": "y"})),
            "edit a.rs"
        );
        assert_eq!(tool_call_summary("grep", &json!({"pattern": "fn main", "path": "src"})), "grep fn main in src");
        assert_eq!(tool_call_summary("glob", &json!({"pattern": "**/*.py"})), "glob **/*.py");
        assert_eq!(
            tool_call_summary("shell", &json!({"command": "cargo test\n--quiet"})),
            "shell $ cargo test ⏎ --quiet"
        );
        assert_eq!(tool_call_summary("todo", &json!({"todos": [{}, {}]})), "todo 2 items");
        assert_eq!(tool_call_summary("todo", &json!({"todos": [{}]})), "todo 1 item");
        assert_eq!(
            tool_call_summary("task", &json!({"description": "find callers", "prompt": "…"})),
            "task find callers"
        );
        assert_eq!(tool_call_summary("other", &json!({"n": 1, "what": "x"})), "other x");
        assert_eq!(tool_call_summary("read", &json!({})), "read");
    }

    #[test]
    fn long_arguments_are_cut() {
        let command = "x".repeat(500);
        let summary = tool_call_summary("shell", &json!({ "command": command }));
        assert_eq!(summary.chars().count(), LINE_CHARS);
        assert!(summary.ends_with('…'));
    }

    #[test]
    fn results_are_summed_up_in_one_line() {
        assert_eq!(tool_result_summary("one\ntwo\n\nthree\n", false), "one (+2 lines)");
        assert_eq!(tool_result_summary("done", false), "done");
        assert_eq!(tool_result_summary("", false), "(no output)");
        assert_eq!(tool_result_summary("\n", true), "failed");
    }

    #[test]
    fn diffs_are_coloured_only_with_colour_on() {
        let diff = "--- a/x\n+++ b/x\n@@ -1 +1 @@\n-old\n+new\n same\n";
        assert_eq!(paint_diff(diff, &Palette::new(false)), diff);
        let coloured = paint_diff(diff, &Palette::new(true));
        assert!(coloured.contains("\x1b[32m+new"), "{coloured:?}");
        assert!(coloured.contains("\x1b[31m-old"), "{coloured:?}");
        assert!(coloured.contains("\x1b[36m@@ -1 +1 @@"), "{coloured:?}");
        assert!(coloured.contains("\n same\n"));
    }

    #[test]
    fn plans_mark_each_status() {
        let todos = vec![
            TodoItem { content: "read the code".into(), status: TodoStatus::Completed },
            TodoItem { content: "fix the bug".into(), status: TodoStatus::InProgress },
            TodoItem { content: "run the tests".into(), status: TodoStatus::Pending },
        ];
        assert_eq!(
            paint_todos(&todos, &Palette::new(false)),
            "  [x] read the code\n  [>] fix the bug\n  [ ] run the tests\n"
        );
        assert_eq!(paint_todos(&[], &Palette::new(false)), "  plan cleared\n");
    }

    #[test]
    fn compaction_says_why_and_how_much() {
        assert_eq!(
            compacted_line(7000, 900, true),
            "[older turns summarised because the context was nearly full: context 7000 → 900 tokens]"
        );
        assert_eq!(compacted_line(3000, 800, false), "[older turns summarised: context 3000 → 800 tokens]");
    }

    #[test]
    fn the_meter_splits_reused_and_new_prompt_tokens() {
        let usage = TokenUsage {
            prompt_tokens: 1200,
            cached_prompt_tokens: 1100,
            completion_tokens: 42,
            context_tokens: 1242,
            context_limit: 8192,
        };
        assert_eq!(usage_line(&usage), "[context 1242/8192 (15%) · prompt 1100 reused + 100 new · 42 generated]");
        assert!(usage_line(&TokenUsage::default()).starts_with("[context 0/0 (0%)"));
    }
}
