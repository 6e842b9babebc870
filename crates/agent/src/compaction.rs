//! Compaction: when the context fills (or on `/compact`), older turns are replaced by a summary
//! the model writes, so a long session keeps going instead of failing or being cut silently.
//!
//! KV consequences: the summary is generated from the end of the cached log (only the request
//! for it is prefilled); the new log is the system prompt, whose cache every turn shares, plus the
//! summary, which is prefilled once. Tool results of the summarised turns are dropped with them.
//! The old turns can no longer be undone by rewinding, so undo marks are cleared.
//!
//! Automatic compaction first tries the cheaper step: the outputs of tool calls before the
//! latest turns are replaced by a placeholder (the model can call the tool again). The log is
//! rendered again from the first dropped output on, so that part is prefilled once more; if that
//! frees enough room no summary is needed.

use hearth_engine::batch_engine::{GenerationEvent, GenerationRequest};
use hearth_engine::chat_template::ChatMessage;
use hearth_engine::sampler::SamplerConfig;
use tokio::sync::mpsc::UnboundedSender;

use crate::agent_loop::{Agent, AgentError, AgentEvent};
use crate::cancel::CancelFlag;
use crate::protocol::Event;

/// What a compaction did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactReport {
    /// Context tokens before.
    pub tokens_before: usize,
    /// Context tokens after.
    pub tokens_after: usize,
    /// The summary that replaced the older turns.
    pub summary: String,
}

/// Tokens the summary may take at most.
const SUMMARY_TOKENS: usize = 600;

/// Free context to keep for the reply and the next tool results before compacting.
const HEADROOM_TOKENS: usize = 256;

const SUMMARY_REQUEST: &str = "Summarise our conversation so far for yourself, to continue the work \
with the older messages gone. Include: what the user asked for, decisions made, files read or \
changed (with paths) and what changed in them, command results that matter, the current plan and \
what remains to do. Be concise and specific; write plain text, no tool calls.";

const SUMMARY_HEADER: &str = "The earlier part of this conversation was compacted to save context. \
Summary of it:";

const ACKNOWLEDGEMENT: &str = "Understood. I will continue from this summary.";

/// What replaces a stale tool result.
const DROPPED_OUTPUT: &str = "[output dropped to save context; call the tool again if it is needed]";

/// Tool results in this many of the latest turns are kept when stale ones are dropped.
const KEEP_RECENT_TURNS: usize = 2;

impl Agent {
    /// Replaces the conversation so far by a summary the model writes; for `/compact`.
    pub async fn compact(
        &mut self,
        events: &UnboundedSender<AgentEvent>,
        cancel: &CancelFlag,
    ) -> Result<CompactReport, AgentError> {
        self.compact_for(None, false, events, cancel).await?.ok_or(AgentError::NothingToCompact)
    }

    /// Whether the log, plus `extra` tokens about to be added, leaves too little room for a reply.
    pub(crate) fn needs_compaction(&self, extra: usize) -> bool {
        let len = self.conversation.tokens().len();
        let used = len + extra + self.settings.max_reply_tokens + HEADROOM_TOKENS;
        // A log that has barely grown since the last compaction would only be summarised again.
        let grown = len >= self.compacted_len + HEADROOM_TOKENS;
        used > self.runtime.context_length && grown && self.conversation.messages().len() > self.n_system() + 1
    }

    fn n_system(&self) -> usize {
        usize::from(self.conversation.messages().first().is_some_and(|m| m.role == "system"))
    }

    /// Compacts. With `current_request` (a turn in progress), the summary message ends with that
    /// request so generation continues the turn; between turns an acknowledgement follows it so
    /// the next user message keeps roles alternating. `None` when there was nothing to compact.
    pub(crate) async fn compact_for(
        &mut self,
        current_request: Option<&str>,
        automatic: bool,
        events: &UnboundedSender<AgentEvent>,
        cancel: &CancelFlag,
    ) -> Result<Option<CompactReport>, AgentError> {
        if self.conversation.messages().len() <= self.n_system() {
            return Ok(None);
        }
        if automatic && self.drop_stale_tool_results(events)? && !self.needs_compaction(0) {
            return Ok(None);
        }
        let tokens_before = self.conversation.tokens().len();
        if automatic {
            let _ = events.send(AgentEvent::Notice(format!(
                "context nearly full ({tokens_before}/{} tokens): summarising older turns",
                self.runtime.context_length
            )));
        }
        let summary = self.summarise(cancel).await?;
        let mut compacted = self.conversation.fork_system();
        let mut text = format!("{SUMMARY_HEADER}\n\n{summary}");
        match current_request {
            Some(request) => {
                text.push_str("\n\nThe request being worked on, not finished yet:\n");
                text.push_str(request);
                compacted.push_user(&text)?;
            }
            None => {
                compacted.push_user(&text)?;
                compacted.push_assistant(ChatMessage::assistant(ACKNOWLEDGEMENT))?;
            }
        }
        let tokens_after = compacted.tokens().len();
        self.conversation = compacted;
        self.compacted_len = tokens_after;
        self.turn_marks.clear();
        let through_turn = self.session.as_ref().map_or(0, |s| s.turn());
        self.record(Event::Compacted {
            summary: summary.clone(),
            through_turn,
            tokens_before: tokens_before as u32,
            tokens_after: tokens_after as u32,
        })?;
        let _ = events.send(AgentEvent::Compacted { tokens_before, tokens_after, automatic });
        if current_request.is_none() {
            self.checkpoint()?;
        }
        Ok(Some(CompactReport { tokens_before, tokens_after, summary }))
    }

    /// Replaces the outputs of tool calls older than the latest turns by a placeholder; whether
    /// any was dropped.
    pub fn drop_stale_tool_results(&mut self, events: &UnboundedSender<AgentEvent>) -> Result<bool, AgentError> {
        let n_system = self.n_system();
        let messages = self.conversation.messages();
        let user_turns: Vec<usize> =
            messages.iter().enumerate().filter(|(_, m)| m.role == "user").map(|(i, _)| i).collect();
        let Some(&keep_from) = user_turns.len().checked_sub(KEEP_RECENT_TURNS).and_then(|i| user_turns.get(i)) else {
            return Ok(false);
        };
        let mut kept: Vec<ChatMessage> = messages[n_system..].to_vec();
        let mut count = 0u32;
        for m in &mut kept[..keep_from - n_system] {
            if m.role == "tool" && m.content.as_deref() != Some(DROPPED_OUTPUT) {
                m.content = Some(DROPPED_OUTPUT.to_string());
                count += 1;
            }
        }
        if count == 0 {
            return Ok(false);
        }
        let tokens_before = self.conversation.tokens().len();
        let mut rebuilt = self.conversation.fork_system();
        rebuilt.extend_rendered(&kept)?;
        let tokens_after = rebuilt.tokens().len();
        self.conversation = rebuilt;
        self.turn_marks.clear();
        self.record(Event::ToolResultsDropped {
            count,
            tokens_before: tokens_before as u32,
            tokens_after: tokens_after as u32,
        })?;
        let _ = events.send(AgentEvent::Notice(format!(
            "dropped {count} stale tool outputs: context {tokens_before} -> {tokens_after} tokens"
        )));
        Ok(true)
    }

    /// Asks the model for the summary: from the end of the cached log where the template allows
    /// one more user message there, else from a plain transcript after the system prompt.
    async fn summarise(&self, cancel: &CancelFlag) -> Result<String, AgentError> {
        let mut probe = self.conversation.clone();
        let cached_route = probe.push_user(SUMMARY_REQUEST).and_then(|()| probe.begin_assistant());
        if cached_route.is_err() {
            probe = self.conversation.fork_system();
            probe.push_user(&format!("{SUMMARY_REQUEST}\n\nThe conversation:\n{}", self.transcript()))?;
            probe.begin_assistant()?;
        }
        let room = self.runtime.context_length.saturating_sub(probe.tokens().len() + 1);
        if room < 32 {
            return Err(AgentError::ContextFull {
                needed: probe.tokens().len() + 32,
                limit: self.runtime.context_length,
            });
        }
        let request = GenerationRequest {
            prompt: probe.tokens().to_vec(),
            // Greedy, but small models loop without a repetition penalty.
            sampler: SamplerConfig { temperature: 0.0, repeat_penalty: 1.15, ..self.settings.sampler.clone() },
            max_tokens: SUMMARY_TOKENS.min(room),
            stop_tokens: self.runtime.tokenizer.end_of_generation().to_vec(),
            constraint: None,
        };
        let mut stream = self.runtime.engine.submit(request);
        let mut tokens = Vec::new();
        while let Some(event) = stream.next().await {
            match event {
                GenerationEvent::Token(t) => {
                    tokens.push(t);
                    if cancel.is_set() {
                        return Err(AgentError::Cancelled);
                    }
                }
                GenerationEvent::Done(_) => break,
                GenerationEvent::Failed(e) => return Err(AgentError::Generation(e.to_string())),
            }
        }
        let text = self.runtime.tokenizer.decode(&tokens, false).map_err(|e| AgentError::Generation(e.to_string()))?;
        Ok(text.trim().to_string())
    }

    /// The messages after the system prompt as plain text.
    fn transcript(&self) -> String {
        let mut out = String::new();
        for m in &self.conversation.messages()[self.n_system()..] {
            let who = match (m.role.as_str(), &m.name) {
                ("tool", Some(name)) => format!("tool result ({name})"),
                (role, _) => role.to_string(),
            };
            out.push_str(&format!("[{who}]\n"));
            if let Some(content) = &m.content {
                out.push_str(content);
                out.push('\n');
            }
            for call in m.tool_calls.iter().flatten() {
                out.push_str(&format!("(calls {} {})\n", call.function.name, call.function.arguments));
            }
            out.push('\n');
        }
        out
    }
}
