//! `task`: hand a self-contained piece of work to a subagent. The agent loop runs subagents; this
//! module holds the tool's schema and the [`SubagentRunner`] hook the loop implements.

use serde::Deserialize;
use serde_json::{Value, json};

use super::{Tool, ToolContext, ToolError, ToolOutput, parse_args};
use crate::permissions::{ActionRequest, Effect};

/// What the model asked a subagent to do.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubagentRequest {
    /// A few words naming the task, shown to the user.
    pub description: String,
    /// The full instructions; the subagent sees nothing else of the parent's conversation.
    pub prompt: String,
}

/// Runs a subagent to completion and returns its final report; implemented by the agent loop.
#[async_trait::async_trait]
pub trait SubagentRunner: Send + Sync {
    /// Runs `request` with its own context and tools and returns the subagent's final answer.
    async fn run_subagent(&self, request: SubagentRequest) -> Result<String, ToolError>;
}

/// The `task` tool.
#[derive(Debug, Clone, Copy, Default)]
pub struct TaskTool;

#[async_trait::async_trait]
impl Tool for TaskTool {
    fn name(&self) -> &'static str {
        "task"
    }

    fn description(&self) -> &'static str {
        "Start a subagent for a large, separate investigation, such as surveying many files for one question. \
         It has the same tools but none of this conversation, so give it complete instructions; it returns a \
         short report. Several can run at once. Do not use it for a change or a lookup in a few files: do those \
         yourself with read, edit and grep."
    }

    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "description": {"type": "string", "description": "A few words naming the task"},
                "prompt": {"type": "string", "description": "Complete instructions, and what to report back"}
            },
            "required": ["description", "prompt"],
            "additionalProperties": false
        })
    }

    /// The call itself changes nothing; each tool call the subagent makes is checked on its own.
    fn effect(&self) -> Effect {
        Effect::ReadOnly
    }

    fn describe(&self, args: &Value, _ctx: &ToolContext) -> Result<ActionRequest, ToolError> {
        let request: SubagentRequest = parse_args(self.name(), args)?;
        Ok(ActionRequest {
            tool: self.name().into(),
            effect: self.effect(),
            summary: format!("subagent: {}", request.description),
            command: None,
            preview: None,
        })
    }

    async fn run(&self, args: Value, ctx: &ToolContext) -> Result<ToolOutput, ToolError> {
        let request: SubagentRequest = parse_args(self.name(), &args)?;
        let runner = ctx.subagents.as_ref().ok_or(ToolError::NoSubagents)?;
        let report = runner.run_subagent(request).await?;
        Ok(ToolOutput::text(report))
    }
}

#[cfg(test)]
mod tests;
