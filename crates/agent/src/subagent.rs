//! Subagents for the `task` tool: each starts from the parent's system prompt, whose KV the
//! engine already holds (the prefix tree shares it, nothing is recomputed or copied), gets the
//! task as its first message, and runs its own loop with the parent's tools minus `task`.
//! Several run at once and are decoded together in the engine's batches.

use std::sync::Arc;

use crate::agent_loop::{Agent, AgentEvent, AgentParts, AgentSettings};
use crate::cancel::CancelFlag;
use crate::conversation::Conversation;
use crate::permissions::{Approver, Permissions};
use crate::runtime::ModelRuntime;
use crate::step_guard::PLAN_TOOL;
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
        // A subagent starts from the system prompt alone: it has seen no file, whatever the parent
        // read, and what it reads is not seen by the parent, which gets only its report.
        let ctx = ToolContext { seen_files: Default::default(), ..self.ctx.clone() };
        let mut agent = Agent::new(AgentParts {
            runtime: self.runtime.clone(),
            conversation: self.base.clone(),
            registry: self.registry.clone(),
            ctx,
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
        let (events, mut seen) = tokio::sync::mpsc::unbounded_channel();
        let report =
            agent.run_turn(&task, &events, &self.cancel).await.map_err(|e| ToolError::Subagent(e.to_string()))?;
        drop(events);
        let mut activity = Activity::default();
        while let Ok(event) = seen.try_recv() {
            activity.observe(&event);
        }
        // A small model handed a whole change tends to update its plan and then report the work
        // as done ("I renamed the function in both files"); the parent repeats the claim to the
        // user unless the report is withheld.
        if !activity.did_work() {
            return Err(ToolError::SubagentIdle(activity.calls_text()));
        }
        let report = match report.char_indices().nth(MAX_REPORT_CHARS) {
            Some((cut, _)) => format!("{}… [report cut]", &report[..cut]),
            None => report,
        };
        Ok(format!("{report}\n\n{}", activity.summary()))
    }
}

/// What a subagent actually did, appended to its report: a small model's report may claim work
/// it never did ("I renamed the function in both files" after no call at all), and the parent
/// would otherwise believe it.
#[derive(Debug, Default)]
struct Activity {
    /// Tools called, in order: call id, tool, whether it failed.
    calls: Vec<(String, String, bool)>,
    /// The path argument of each call, by call id, until its result arrives.
    paths: std::collections::HashMap<String, String>,
    /// Files a successful `edit` or `write` changed.
    changed: std::collections::BTreeSet<String>,
}

impl Activity {
    fn observe(&mut self, event: &AgentEvent) {
        match event {
            AgentEvent::ToolCall { call_id, name, arguments } => {
                if let Some(path) = arguments.get("path").and_then(|p| p.as_str()) {
                    self.paths.insert(call_id.clone(), path.to_string());
                }
                self.calls.push((call_id.clone(), name.clone(), false));
            }
            AgentEvent::ToolResult { call_id, name, is_error, .. } => {
                if let Some(call) = self.calls.iter_mut().find(|(id, _, _)| id == call_id) {
                    call.2 = *is_error;
                }
                if !is_error
                    && (name == "edit" || name == "write")
                    && let Some(path) = self.paths.get(call_id)
                {
                    self.changed.insert(path.clone());
                }
            }
            _ => {}
        }
    }

    /// Whether any call other than a plan update ran: a subagent that did nothing else has seen
    /// nothing of the project.
    fn did_work(&self) -> bool {
        self.calls.iter().any(|(_, name, failed)| !failed && name != PLAN_TOOL)
    }

    /// "called read, edit (failed)", or "called no tool".
    fn calls_text(&self) -> String {
        if self.calls.is_empty() {
            return "called no tool".to_string();
        }
        let names: Vec<String> = self
            .calls
            .iter()
            .map(|(_, name, failed)| if *failed { format!("{name} (failed)") } else { name.clone() })
            .collect();
        format!("called {}", names.join(", "))
    }

    fn summary(&self) -> String {
        let calls = self.calls_text();
        let changed = if self.changed.is_empty() {
            "changed no file".to_string()
        } else {
            format!("changed {}", self.changed.iter().cloned().collect::<Vec<_>>().join(", "))
        };
        format!("[what the subagent did: it {calls}; it {changed}]")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn call(id: &str, name: &str, path: &str) -> AgentEvent {
        AgentEvent::ToolCall { call_id: id.into(), name: name.into(), arguments: json!({"path": path}) }
    }

    fn result(id: &str, name: &str, is_error: bool) -> AgentEvent {
        AgentEvent::ToolResult { call_id: id.into(), name: name.into(), output: String::new(), is_error, diff: None }
    }

    #[test]
    fn the_summary_states_the_calls_and_the_files_changed() {
        let mut activity = Activity::default();
        assert_eq!(activity.summary(), "[what the subagent did: it called no tool; it changed no file]");
        for event in [
            call("1", "read", "users.py"),
            result("1", "read", false),
            call("2", "edit", "users.py"),
            result("2", "edit", false),
            call("3", "edit", "main.py"),
            result("3", "edit", true),
        ] {
            activity.observe(&event);
        }
        assert_eq!(
            activity.summary(),
            "[what the subagent did: it called read, edit, edit (failed); it changed users.py]"
        );
        assert!(activity.did_work());
    }

    #[test]
    fn plan_updates_and_failed_calls_are_no_work() {
        let mut activity = Activity::default();
        assert!(!activity.did_work());
        for event in [
            call("1", "todo", ""),
            result("1", "todo", false),
            call("2", "read", "users.py"),
            result("2", "read", true),
        ] {
            activity.observe(&event);
        }
        assert!(!activity.did_work());
        assert_eq!(activity.calls_text(), "called todo, read (failed)");
        let error = ToolError::SubagentIdle(activity.calls_text()).to_string();
        assert!(
            error.starts_with("the subagent did no work (it called todo, read (failed): it read no file"),
            "{error}"
        );
    }
}
