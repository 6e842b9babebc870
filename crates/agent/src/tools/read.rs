//! `read`: a text file's lines with line numbers, a range at a time.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use serde::Deserialize;
use serde_json::{Value, json};

use super::syntax::{self, Language, SyntaxProblem};
use super::{Tool, ToolContext, ToolError, ToolLimits, ToolOutput, blocking, cut_line, numbered_line, parse_args};
use crate::permissions::{ActionRequest, Effect};

/// How many leading bytes are checked for a NUL to call a file binary, as git does.
const BINARY_PROBE_BYTES: usize = 8192;

/// The `read` tool.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReadTool;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadArgs {
    path: String,
    #[serde(default)]
    offset: Option<usize>,
    #[serde(default)]
    limit: Option<usize>,
}

#[async_trait::async_trait]
impl Tool for ReadTool {
    fn name(&self) -> &'static str {
        "read"
    }

    fn description(&self) -> &'static str {
        "Read a text file in the workspace. Lines are numbered from 1. Long files are shown a range at a time: \
         pass offset (first line) and limit (number of lines) to see more."
    }

    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "path": {"type": "string", "minLength": 1, "description": "File path, relative to the workspace root"},
                "offset": {"type": "integer", "minimum": 1, "description": "First line to show (1-based)"},
                "limit": {"type": "integer", "minimum": 1, "description": "Number of lines to show"}
            },
            "required": ["path"],
            "additionalProperties": false
        })
    }

    fn effect(&self) -> Effect {
        Effect::ReadOnly
    }

    fn describe(&self, args: &Value, _ctx: &ToolContext) -> Result<ActionRequest, ToolError> {
        let args: ReadArgs = parse_args(self.name(), args)?;
        Ok(ActionRequest {
            tool: self.name().into(),
            effect: self.effect(),
            summary: format!("read {}", args.path),
            command: None,
            preview: None,
        })
    }

    async fn run(&self, args: Value, ctx: &ToolContext) -> Result<ToolOutput, ToolError> {
        let args: ReadArgs = parse_args(self.name(), &args)?;
        let path = ctx.workspace.resolve(&args.path)?;
        let limits = ctx.limits.clone();
        let seen = path.clone();
        let out = blocking(move || {
            let mut text = read_lines(&path, &args, &limits)?;
            if let Some(problem) = syntax_problem(&path) {
                let fix = match problem.line {
                    0 => String::new(),
                    line => format!("; to fix it, edit line {line}"),
                };
                text.push_str(&format!(
                    "[{} does not parse as {}: {problem}{fix}]\n",
                    args.path,
                    problem.language.name()
                ));
            }
            Ok(ToolOutput::text(text))
        })
        .await?;
        ctx.mark_seen(&seen);
        Ok(out)
    }
}

fn read_lines(path: &Path, args: &ReadArgs, limits: &ToolLimits) -> Result<String, ToolError> {
    let shown = &args.path;
    let meta = std::fs::metadata(path).map_err(|err| match err.kind() {
        std::io::ErrorKind::NotFound => ToolError::NotFound(shown.clone()),
        _ => ToolError::io("cannot read", shown, err),
    })?;
    if meta.is_dir() {
        return Err(ToolError::IsDirectory(shown.clone()));
    }
    let mut file = File::open(path).map_err(|err| ToolError::io("cannot open", shown, err))?;
    let mut probe = vec![0u8; BINARY_PROBE_BYTES];
    let probed = read_up_to(&mut file, &mut probe).map_err(|err| ToolError::io("cannot read", shown, err))?;
    if probe[..probed].contains(&0) {
        return Err(ToolError::Binary { path: shown.clone(), bytes: meta.len() });
    }
    if meta.len() == 0 {
        return Ok(format!("[{shown} is empty]"));
    }
    let mut reader = BufReader::new(std::io::Cursor::new(probe[..probed].to_vec()).chain(file));

    let first = args.offset.unwrap_or(1).max(1);
    let wanted = args.limit.map_or(limits.read_default_lines, |limit| limit.max(limits.read_min_lines)).max(1);
    let mut out = String::new();
    let mut line = Vec::new();
    let mut number = 0usize;
    let mut last_shown = 0usize;
    let mut cut_by_bytes = false;
    loop {
        line.clear();
        let read = reader.read_until(b'\n', &mut line).map_err(|err| ToolError::io("cannot read", shown, err))?;
        if read == 0 {
            break;
        }
        number += 1;
        if number < first || last_shown >= first + wanted - 1 || cut_by_bytes {
            continue;
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\n', '\r']);
        let rendered = numbered_line(number, &cut_line(text, limits.max_line_chars));
        if out.len() + rendered.len() > limits.read_max_bytes && last_shown >= first {
            cut_by_bytes = true;
            continue;
        }
        out.push_str(&rendered);
        last_shown = number;
    }
    let total = number;
    if first > total {
        return Ok(format!("[{shown} has {total} lines; offset {first} is past the end]"));
    }
    if first > 1 || last_shown < total {
        let reason = if cut_by_bytes { " (output size limit)" } else { "" };
        out.push_str(&format!("[showing lines {first}-{last_shown} of {total}{reason}"));
        if last_shown < total {
            out.push_str(&format!("; call read with offset={} to continue", last_shown + 1));
        }
        out.push_str("]\n");
    }
    Ok(out)
}

/// Why the file at `path` does not parse, for the kinds of file that are checked: a model that
/// is told a file has a syntax error does not find it by reading.
fn syntax_problem(path: &Path) -> Option<SyntaxProblem> {
    Language::of(path)?;
    let text = std::fs::read_to_string(path).ok()?;
    syntax::problem(path, &text)
}

fn read_up_to(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests;
