//! `glob`: find files by name pattern, honouring `.gitignore`.

use serde::Deserialize;
use serde_json::{Value, json};

use super::walk::{PathGlob, files_under};
use super::{Tool, ToolContext, ToolError, ToolOutput, blocking, parse_args};
use crate::permissions::{ActionRequest, Effect};

/// The `glob` tool.
#[derive(Debug, Clone, Copy, Default)]
pub struct GlobTool;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GlobArgs {
    pattern: String,
    #[serde(default)]
    path: Option<String>,
}

#[async_trait::async_trait]
impl Tool for GlobTool {
    fn name(&self) -> &'static str {
        "glob"
    }

    fn description(&self) -> &'static str {
        "List files matching a glob pattern, skipping files ignored by .gitignore. A pattern without '/' matches \
         file names at any depth (\"*.rs\"); with '/' it matches the path from the search directory (\"src/**/*.rs\")."
    }

    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "pattern": {"type": "string", "minLength": 1, "description": "Glob pattern, e.g. \"*.rs\" or \"src/**/test_*.py\""},
                "path": {"type": "string", "minLength": 1, "description": "Directory to search, relative to the workspace root (default: the root)"}
            },
            "required": ["pattern"],
            "additionalProperties": false
        })
    }

    fn effect(&self) -> Effect {
        Effect::ReadOnly
    }

    fn describe(&self, args: &Value, _ctx: &ToolContext) -> Result<ActionRequest, ToolError> {
        let args: GlobArgs = parse_args(self.name(), args)?;
        Ok(ActionRequest {
            tool: self.name().into(),
            effect: self.effect(),
            summary: format!("glob {} in {}", args.pattern, args.path.as_deref().unwrap_or(".")),
            command: None,
            preview: None,
        })
    }

    async fn run(&self, args: Value, ctx: &ToolContext) -> Result<ToolOutput, ToolError> {
        let args: GlobArgs = parse_args(self.name(), &args)?;
        let dir = args.path.clone().filter(|p| !p.trim().is_empty()).unwrap_or_else(|| ".".to_string());
        let base = ctx.workspace.resolve(&dir)?;
        if !base.is_dir() {
            return Err(if base.exists() { ToolError::NotDirectory(dir) } else { ToolError::NotFound(dir) });
        }
        let glob = PathGlob::new(&args.pattern)?;
        let workspace = ctx.workspace.clone();
        let max = ctx.limits.glob_max_results;
        blocking(move || {
            let mut shown = Vec::new();
            let mut total = 0usize;
            for path in files_under(&base) {
                let Ok(relative) = path.strip_prefix(&base) else { continue };
                if glob.is_match(relative) {
                    total += 1;
                    if shown.len() < max {
                        shown.push(workspace.display_path(&path));
                    }
                }
            }
            if total == 0 {
                return Ok(ToolOutput::text(format!("No files match '{}' in {dir}", args.pattern)));
            }
            let mut text = shown.join("\n");
            if total > shown.len() {
                text.push_str(&format!(
                    "\n[{} more files not shown; use a narrower pattern or path]",
                    total - shown.len()
                ));
            }
            Ok(ToolOutput::text(text))
        })
        .await
    }
}

#[cfg(test)]
mod tests;
