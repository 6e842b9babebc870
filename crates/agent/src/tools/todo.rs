//! `todo`: the model's plan, replaced whole on each call and shown to the user.

use serde::Deserialize;
use serde_json::{Value, json};

use super::{Tool, ToolContext, ToolError, ToolOutput, parse_args};
use crate::permissions::{ActionRequest, Effect};
use crate::protocol::{TodoItem, TodoStatus};

/// The `todo` tool.
#[derive(Debug, Clone, Copy, Default)]
pub struct TodoTool;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TodoArgs {
    todos: Vec<TodoItem>,
}

#[async_trait::async_trait]
impl Tool for TodoTool {
    fn name(&self) -> &'static str {
        "todo"
    }

    fn description(&self) -> &'static str {
        "Write your plan for a task with several steps: the full list of items, each pending, in_progress or \
         completed. Send the whole list each time; keep one item in_progress and mark items completed as you finish."
    }

    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "todos": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "content": {"type": "string", "description": "The step"},
                            "status": {"type": "string", "enum": ["pending", "in_progress", "completed"]}
                        },
                        "required": ["content", "status"],
                        "additionalProperties": false
                    }
                }
            },
            "required": ["todos"],
            "additionalProperties": false
        })
    }

    fn effect(&self) -> Effect {
        Effect::ReadOnly
    }

    fn describe(&self, args: &Value, _ctx: &ToolContext) -> Result<ActionRequest, ToolError> {
        let args: TodoArgs = parse_args(self.name(), args)?;
        Ok(ActionRequest {
            tool: self.name().into(),
            effect: self.effect(),
            summary: format!("update the plan ({} items)", args.todos.len()),
            command: None,
            preview: None,
        })
    }

    async fn run(&self, args: Value, ctx: &ToolContext) -> Result<ToolOutput, ToolError> {
        let args: TodoArgs = parse_args(self.name(), &args)?;
        if let Some(empty) = args.todos.iter().position(|item| item.content.trim().is_empty()) {
            return Err(invalid(format!("item {} has no content", empty + 1)));
        }
        let in_progress = args.todos.iter().filter(|item| item.status == TodoStatus::InProgress).count();
        if in_progress > 1 {
            return Err(invalid(format!("{in_progress} items are in_progress; keep at most one")));
        }
        *ctx.todos.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = args.todos.clone();
        Ok(ToolOutput { text: render(&args.todos), todos: Some(args.todos), ..ToolOutput::default() })
    }
}

fn invalid(message: String) -> ToolError {
    ToolError::InvalidArguments { tool: "todo".into(), message }
}

/// The plan as a checklist: `[x]` done, `[>]` in progress, `[ ]` pending.
pub fn render(todos: &[TodoItem]) -> String {
    if todos.is_empty() {
        return "Plan cleared.".to_string();
    }
    let done = todos.iter().filter(|item| item.status == TodoStatus::Completed).count();
    let mut text = format!("Plan ({done}/{} done):\n", todos.len());
    for item in todos {
        let mark = match item.status {
            TodoStatus::Completed => "[x]",
            TodoStatus::InProgress => "[>]",
            TodoStatus::Pending => "[ ]",
        };
        text.push_str(&format!("{mark} {}\n", item.content));
    }
    text
}

#[cfg(test)]
mod tests;
