//! Running the tool calls of one reply: each is announced, checked by the step guard, run,
//! recorded in the session and reported, and comes back both as a message for the log and as a
//! [`StepCall`] for the guard.

use hearth_engine::chat_template::{ChatMessage, ToolCall as TemplateToolCall};
use tokio::sync::mpsc::UnboundedSender;

use super::{Agent, AgentError, AgentEvent};
use crate::cancel::CancelFlag;
use crate::permissions::Effect;
use crate::protocol::Event;
use crate::step_guard::{StepCall, StepGuard};
use crate::tools::{ToolError, ToolOutput};

/// How a call that did not run ended: the message, and whether it was refused because what it
/// would do is already done.
type NotRun = (String, bool);

fn not_run(error: &ToolError) -> NotRun {
    (error.to_string(), error.is_already_done())
}

impl Agent {
    /// Runs the calls of one reply; subagent tasks run concurrently, other calls in order. Returns
    /// the results and how each call ended.
    pub(super) async fn run_calls(
        &mut self,
        calls: &[TemplateToolCall],
        guard: &StepGuard,
        events: &UnboundedSender<AgentEvent>,
        cancel: &CancelFlag,
    ) -> Result<(Vec<ChatMessage>, Vec<StepCall>), AgentError> {
        let mut results: Vec<Result<ToolOutput, NotRun>> = Vec::with_capacity(calls.len());
        let mut tasks = tokio::task::JoinSet::new();
        let mut task_slots = Vec::new();
        for call in calls {
            let call_id = call.id.clone().unwrap_or_default();
            let name = call.function.name.clone();
            let arguments = call.function.arguments.clone();
            let _ = events.send(AgentEvent::ToolCall {
                call_id: call_id.clone(),
                name: name.clone(),
                arguments: arguments.clone(),
            });
            self.record(Event::ToolCall { call_id, name: name.clone(), arguments: arguments.clone() })?;
            if cancel.is_set() {
                results.push(Err(("cancelled by the user".to_string(), false)));
                continue;
            }
            if let Some(refusal) = guard.refusal(&name, &arguments) {
                results.push(Err((refusal, false)));
                continue;
            }
            if name == "task" {
                let registry = self.registry.clone();
                let ctx = self.ctx.clone();
                let permissions = self.permissions.clone();
                let approver = self.approver.clone();
                let slot = results.len();
                results.push(Err((String::new(), false)));
                let handle = tasks.spawn(async move {
                    let out = registry.call(&name, arguments, &ctx, &permissions, approver.as_ref()).await;
                    (slot, out)
                });
                task_slots.push((handle.id(), slot));
                continue;
            }
            let out = self.registry.call(&name, arguments, &self.ctx, &self.permissions, self.approver.as_ref()).await;
            if let Ok(output) = &out {
                for change in &output.changes {
                    self.record(Event::FileChanged(change.clone()))?;
                }
                if let Some(todos) = &output.todos {
                    self.record(Event::TodosUpdated { todos: todos.clone() })?;
                }
            }
            results.push(out.map_err(|e| not_run(&e)));
        }
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((slot, out)) => results[slot] = out.map_err(|e| not_run(&e)),
                Err(e) => {
                    if let Some(&(_, slot)) = task_slots.iter().find(|(id, _)| *id == e.id()) {
                        results[slot] = Err((format!("the subagent stopped unexpectedly: {e}"), false));
                    }
                }
            }
        }
        let mut messages = Vec::with_capacity(results.len());
        let mut ended = Vec::with_capacity(results.len());
        for (call, out) in calls.iter().zip(results) {
            let call_id = call.id.clone().unwrap_or_default();
            let name = call.function.name.clone();
            let succeeded = out.is_ok();
            let already_done = matches!(out, Err((_, true)));
            let exit_code = out.as_ref().ok().and_then(|output| output.exit_code);
            // A command that ran and exited non-zero succeeded as a call (it may have changed the
            // workspace, which the step guard must know) but is shown to the user as failed.
            let (output, is_error, diff) = match out {
                Ok(output) => (output.text, output.failed, output.diff),
                Err((message, _)) => (format!("Error: {message}"), true, None),
            };
            let _ = events.send(AgentEvent::ToolResult {
                call_id: call_id.clone(),
                name: name.clone(),
                output: output.clone(),
                is_error,
                diff,
            });
            self.record(Event::ToolResult {
                call_id: call_id.clone(),
                name: name.clone(),
                output: output.clone(),
                is_error,
            })?;
            ended.push(StepCall {
                name: name.clone(),
                arguments: call.function.arguments.clone(),
                // An unknown tool ran nothing; `task` is read-only, as its subagent's calls are
                // guarded in the subagent's own loop.
                effect: self.registry.get(&name).map_or(Effect::ReadOnly, |tool| tool.effect()),
                succeeded,
                already_done,
                result: output.clone(),
                exit_code,
            });
            messages.push(ChatMessage::tool_result(Some(call_id), Some(name), output));
        }
        Ok((messages, ended))
    }
}
