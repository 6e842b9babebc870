//! The set of tools a session offers, and the one path every call takes: mode check, permission
//! check (asking when needed), then the tool.

use std::sync::Arc;

use serde_json::Value;

use super::{
    EditTool, GlobTool, GrepTool, ReadTool, ShellTool, TaskTool, TodoTool, Tool, ToolContext, ToolError, ToolOutput,
    WriteTool,
};
use crate::permissions::{Approver, Mode, Permissions};

/// The tools of a session, in the order they are shown to the model.
#[derive(Clone)]
pub struct ToolRegistry {
    tools: Vec<Arc<dyn Tool>>,
}

impl std::fmt::Debug for ToolRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.tools.iter().map(|tool| tool.name())).finish()
    }
}

impl ToolRegistry {
    /// A registry of `tools`.
    pub fn new(tools: Vec<Arc<dyn Tool>>) -> Self {
        Self { tools }
    }

    /// All built-in tools: read, glob, grep, todo, task, edit, write, shell.
    pub fn standard() -> Self {
        Self::new(vec![
            Arc::new(ReadTool),
            Arc::new(GlobTool),
            Arc::new(GrepTool),
            Arc::new(EditTool),
            Arc::new(WriteTool),
            Arc::new(ShellTool),
            Arc::new(TodoTool),
            Arc::new(TaskTool),
        ])
    }

    /// The same registry without the tools named in `names` (a subagent gets no `task`).
    pub fn without(&self, names: &[&str]) -> Self {
        Self::new(self.tools.iter().filter(|tool| !names.contains(&tool.name())).cloned().collect())
    }

    /// The tool called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn Tool>> {
        self.tools.iter().find(|tool| tool.name() == name)
    }

    /// The tools `mode` offers, in order.
    pub fn offered(&self, mode: Mode) -> impl Iterator<Item = &Arc<dyn Tool>> {
        self.tools.iter().filter(move |tool| mode.offers(tool.effect()))
    }

    /// The names of the tools `mode` offers: what the grammar may let the model call.
    pub fn offered_names(&self, mode: Mode) -> Vec<&'static str> {
        self.offered(mode).map(|tool| tool.name()).collect()
    }

    /// The OpenAI function schemas of the tools `mode` offers, for the chat template.
    pub fn schemas(&self, mode: Mode) -> Vec<Value> {
        self.offered(mode).map(|tool| tool.schema()).collect()
    }

    /// Runs a call: refuses tools the mode does not offer, checks permissions (asking `approver`
    /// when the mode and rules say so), then runs the tool. `args` may be a JSON object or a
    /// string holding one, as models emit both.
    pub async fn call(
        &self,
        name: &str,
        args: Value,
        ctx: &ToolContext,
        permissions: &Permissions,
        approver: &dyn Approver,
    ) -> Result<ToolOutput, ToolError> {
        let mode = permissions.mode();
        let tool = self.get(name).ok_or_else(|| ToolError::UnknownTool {
            name: name.to_string(),
            available: self.offered_names(mode).join(", "),
        })?;
        if !mode.offers(tool.effect()) {
            return Err(ToolError::NotOffered { tool: name.to_string(), mode });
        }
        let args = match args {
            Value::String(text) => serde_json::from_str(&text).map_err(|err| ToolError::InvalidArguments {
                tool: name.to_string(),
                message: format!("arguments are not a JSON object: {err}"),
            })?,
            Value::Null => Value::Object(serde_json::Map::new()),
            other => other,
        };
        let request = tool.describe(&args, ctx)?;
        if permissions.authorize(&request, approver).await? {
            let approved = ToolContext { approved_by_user: true, ..ctx.clone() };
            return tool.run(args, &approved).await;
        }
        tool.run(args, ctx).await
    }
}

#[cfg(test)]
mod tests;
