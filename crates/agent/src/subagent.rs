//! Subagents for the `task` tool: each starts from the parent's system prompt, whose KV the
//! engine already holds (the prefix tree shares it, nothing is recomputed or copied), gets the
//! task as its first message, and runs its own loop with the parent's tools minus `task`.
//! Several run at once and are decoded together in the engine's batches.

use std::sync::Arc;

use crate::agent_loop::{Agent, AgentParts, AgentSettings};
use crate::cancel::CancelFlag;
use crate::conversation::Conversation;
use crate::permissions::{Approver, Permissions};
use crate::runtime::ModelRuntime;
use crate::tools::{SubagentRequest, SubagentRunner, ToolContext, ToolError, ToolRegistry};

/// Longest report a subagent hands back, in characters.
const MAX_REPORT_CHARS: usize = 6000;

/// Runs subagents for one parent agent.
pub struct Subagents {
    runtime: Arc<ModelRuntime>,
    /// The parent's conversation cut back to its system prompt.
    base: Conversation,
    registry: ToolRegistry,
    ctx: ToolContext,
    permissions: Arc<Permissions>,
    approver: Arc<dyn Approver>,
    settings: AgentSettings,
    cancel: CancelFlag,
}

impl Subagents {
    /// Subagents of the agent about to be built from `parent`.
    pub fn new(parent: &AgentParts, cancel: CancelFlag) -> Self {
        let mut ctx = parent.ctx.clone();
        // Subagents do not start subagents.
        ctx.subagents = None;
        Self {
            runtime: parent.runtime.clone(),
            base: parent.conversation.fork_system(),
            registry: parent.registry.without(&["task"]),
            ctx,
            permissions: parent.permissions.clone(),
            approver: parent.approver.clone(),
            settings: AgentSettings { max_steps: parent.settings.max_steps.min(12), ..parent.settings.clone() },
            cancel,
        }
    }
}

#[async_trait::async_trait]
impl SubagentRunner for Subagents {
    async fn run_subagent(&self, request: SubagentRequest) -> Result<String, ToolError> {
        let mut agent = Agent::new(AgentParts {
            runtime: self.runtime.clone(),
            conversation: self.base.clone(),
            registry: self.registry.clone(),
            ctx: self.ctx.clone(),
            permissions: self.permissions.clone(),
            approver: self.approver.clone(),
            session: None,
            settings: self.settings.clone(),
        });
        let task = format!(
            "You are a subagent working on one task for another agent, who sees only your final answer. \
             Use your tools, then answer with a short report of what you found or did.\n\nTask: {}\n\n{}",
            request.description, request.prompt
        );
        let (events, _ignored) = tokio::sync::mpsc::unbounded_channel();
        let report =
            agent.run_turn(&task, &events, &self.cancel).await.map_err(|e| ToolError::Subagent(e.to_string()))?;
        Ok(match report.char_indices().nth(MAX_REPORT_CHARS) {
            Some((cut, _)) => format!("{}… [report cut]", &report[..cut]),
            None => report,
        })
    }
}
