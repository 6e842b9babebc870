//! The agent loop: a user message, then model replies and tool calls until the model answers
//! without calling a tool (or the step limit is reached).
//!
//! Every reply is generated under a tool-call grammar built from the tools the permission mode
//! offers, so each call is well-formed and names a real tool with arguments that match its
//! schema; in plan mode the write tools are not in the grammar at all. The conversation is an
//! append-only token log ([`Conversation`]); each request hands the whole log to the batch
//! engine, which reuses the cached prefix, so a turn prefills only its new tokens.

use std::sync::Arc;

use hearth_engine::batch_engine::{GenerationEvent, GenerationRequest, RequestStats};
use hearth_engine::chat_template::{ChatMessage, ToolCall as TemplateToolCall};
use hearth_engine::constraint::SharedConstraint;
use hearth_engine::generate::StopReason;
use hearth_engine::sampler::SamplerConfig;
use hearth_grammar::{
    CompiledGrammar, GrammarConstraint, ParsedReply, Tool as GrammarTool, ToolCallGrammar, ToolChoice, parse_reply,
};
use serde_json::Value;
use tokio::sync::mpsc::UnboundedSender;

use crate::cancel::CancelFlag;
use crate::conversation::{Conversation, ConversationError, Mark};
use crate::file_listing::{LISTED_FILES, with_file_listing};
use crate::permissions::{Approver, Mode, Permissions};
use crate::protocol::{Event, TokenUsage};
use crate::repetition;
use crate::runtime::ModelRuntime;
use crate::session::{Session, SessionError, UndoReport};
use crate::step_guard::{ReplyTools, StepGuard};
use crate::tools::{ToolContext, ToolRegistry};

/// Longest user request restated after each step's tool results.
const TASK_REMINDER_BYTES: usize = 400;

/// Errors that end a turn.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Conversation(#[from] ConversationError),
    #[error(transparent)]
    Grammar(#[from] hearth_grammar::GrammarError),
    #[error("generation failed: {0}")]
    Generation(String),
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error(
        "the conversation needs {needed} tokens but the model's context holds {limit}; use /compact or start a new session"
    )]
    ContextFull { needed: usize, limit: usize },
    #[error("nothing to undo{0}")]
    NothingToUndo(&'static str),
    #[error("undo needs the session file, which this agent does not record (--no-session)")]
    NoSession,
    #[error("nothing to compact: the conversation holds only the system prompt")]
    NothingToCompact,
    #[error("cancelled by the user")]
    Cancelled,
    #[error("cannot save the session checkpoint {path}: {reason}")]
    Checkpoint { path: std::path::PathBuf, reason: String },
}

/// What a front-end sees while a turn runs.
#[derive(Debug, Clone, PartialEq)]
pub enum AgentEvent {
    /// Text of the reply as it is generated.
    TextDelta(String),
    /// The model called a tool.
    ToolCall { call_id: String, name: String, arguments: Value },
    /// A tool finished (or was refused).
    ToolResult { call_id: String, name: String, output: String, is_error: bool, diff: Option<String> },
    /// Token counts of one model call and the context meter.
    Usage(TokenUsage),
    /// The turn ended with this answer.
    TurnDone { text: String, steps: usize },
    /// Older turns were replaced by a summary (`automatic`: because the context was full).
    Compacted { tokens_before: usize, tokens_after: usize, automatic: bool },
    /// Something the user should know that does not stop the turn.
    Notice(String),
}

/// Limits and sampling of the loop.
#[derive(Debug, Clone)]
pub struct AgentSettings {
    /// Model calls per user message at most.
    pub max_steps: usize,
    /// Tokens per reply at most.
    pub max_reply_tokens: usize,
    /// Sampling settings.
    pub sampler: SamplerConfig,
    /// Whether replies are constrained by the tool-call grammar.
    pub constrained: bool,
}

impl Default for AgentSettings {
    fn default() -> Self {
        Self {
            max_steps: 24,
            max_reply_tokens: 1024,
            sampler: SamplerConfig {
                temperature: 0.2,
                top_k: 40,
                top_p: 0.95,
                min_p: 0.05,
                ..SamplerConfig::default()
            },
            constrained: true,
        }
    }
}

/// One agent: a conversation, its tools and guardrails, and the shared model.
pub struct Agent {
    pub(crate) runtime: Arc<ModelRuntime>,
    pub(crate) conversation: Conversation,
    pub(crate) registry: ToolRegistry,
    pub(crate) ctx: ToolContext,
    pub(crate) permissions: Arc<Permissions>,
    pub(crate) approver: Arc<dyn Approver>,
    pub(crate) session: Option<Session>,
    pub(crate) settings: AgentSettings,
    /// Grammars compiled per mode (the tool set depends on it) and the tools a reply may call.
    pub(crate) grammars: Vec<(Mode, ReplyTools, Arc<CompiledGrammar>, Vec<GrammarTool>)>,
    /// Prompt tokens reused from the KV cache over the agent's life, and computed.
    pub(crate) reused_tokens: u64,
    pub(crate) prefilled_tokens: u64,
    /// Where each turn since the last compaction started, for undo.
    pub(crate) turn_marks: Vec<Mark>,
    /// Tokens in the log right after the last compaction.
    pub(crate) compacted_len: usize,
    /// Where the system prompt's KV is kept between runs, if anywhere.
    pub(crate) prefix_cache_dir: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent").field("tokens", &self.conversation.tokens().len()).finish_non_exhaustive()
    }
}

/// The parts an [`Agent`] is made of.
pub struct AgentParts {
    pub runtime: Arc<ModelRuntime>,
    pub conversation: Conversation,
    pub registry: ToolRegistry,
    pub ctx: ToolContext,
    pub permissions: Arc<Permissions>,
    pub approver: Arc<dyn Approver>,
    pub session: Option<Session>,
    pub settings: AgentSettings,
}

impl Agent {
    /// An agent from its parts.
    pub fn new(parts: AgentParts) -> Self {
        Self {
            runtime: parts.runtime,
            conversation: parts.conversation,
            registry: parts.registry,
            ctx: parts.ctx,
            permissions: parts.permissions,
            approver: parts.approver,
            session: parts.session,
            settings: parts.settings,
            grammars: Vec::new(),
            reused_tokens: 0,
            prefilled_tokens: 0,
            turn_marks: Vec::new(),
            compacted_len: 0,
            prefix_cache_dir: None,
        }
    }

    /// Keeps the system prompt's KV in `dir` between runs: loads it now if a run saved it
    /// (returning the tokens restored) and saves it after the next turn otherwise.
    pub fn use_prefix_cache(&mut self, dir: std::path::PathBuf) -> Result<usize, AgentError> {
        let restored = self.load_system_prefix(&dir)?;
        self.prefix_cache_dir = Some(dir);
        Ok(restored)
    }

    /// The shared model.
    pub fn runtime(&self) -> &Arc<ModelRuntime> {
        &self.runtime
    }

    /// Changes the permission mode (and so the tools the grammar offers) and records it.
    pub fn set_mode(&mut self, mode: Mode) -> Result<(), AgentError> {
        if self.permissions.mode() != mode {
            self.permissions.set_mode(mode);
            self.record(Event::ModeChanged { mode })?;
        }
        Ok(())
    }

    /// Starts a fresh conversation on the same system prompt, whose KV cache stays reused.
    pub fn clear(&mut self) -> Result<(), AgentError> {
        self.conversation = self.conversation.fork_system();
        self.turn_marks.clear();
        self.checkpoint()
    }

    /// Reverts the last turn: its file changes (refused unless `force` where a file changed
    /// since) and its messages, so the conversation (and the KV cache it reuses) is back where
    /// the turn began.
    pub fn undo_last_turn(&mut self, force: bool) -> Result<UndoReport, AgentError> {
        let mark =
            *self.turn_marks.last().ok_or(AgentError::NothingToUndo(" since the start or the last compaction"))?;
        let session = self.session.as_mut().ok_or(AgentError::NoSession)?;
        let report = session.undo_last_turn(&self.ctx.workspace, force)?;
        self.turn_marks.pop();
        self.conversation.rewind(mark);
        self.checkpoint()?;
        Ok(report)
    }

    /// The conversation's token log.
    pub fn conversation(&self) -> &Conversation {
        &self.conversation
    }

    /// Mutable access to the conversation (undo rewinds it).
    pub fn conversation_mut(&mut self) -> &mut Conversation {
        &mut self.conversation
    }

    /// The session file, if the agent records one.
    pub fn session_mut(&mut self) -> Option<&mut Session> {
        self.session.as_mut()
    }

    /// The permissions (front-ends change the mode).
    pub fn permissions(&self) -> &Arc<Permissions> {
        &self.permissions
    }

    /// The tool context (workspace, plan).
    pub fn tool_context(&self) -> &ToolContext {
        &self.ctx
    }

    /// Prompt tokens reused from the cache and computed, over the agent's life.
    pub fn prefill_totals(&self) -> (u64, u64) {
        (self.reused_tokens, self.prefilled_tokens)
    }

    /// Runs one user message to the model's final answer, sending events as they happen.
    /// `cancel` stops generation and tool calls between steps (Ctrl-C), not the program.
    pub async fn run_turn(
        &mut self,
        user: &str,
        events: &UnboundedSender<AgentEvent>,
        cancel: &CancelFlag,
    ) -> Result<String, AgentError> {
        // A message's bytes bound its tokens from above.
        if self.needs_compaction(user.len()) {
            self.compact_for(None, true, events, cancel).await?;
        }
        self.record(Event::UserMessage { text: user.to_string() })?;
        self.turn_marks.push(self.conversation.mark());
        if self.conversation.messages().iter().any(|m| m.role == "user") {
            self.conversation.push_user(user)?;
        } else {
            let listed = with_file_listing(self.ctx.workspace.root(), user, LISTED_FILES);
            self.conversation.push_user(&listed)?;
        }
        let result = self.run_steps(user, events, cancel).await;
        if let Err(e) = self.checkpoint() {
            let _ = events.send(AgentEvent::Notice(e.to_string()));
        }
        if let Some(dir) = &self.prefix_cache_dir
            && let Err(e) = self.save_system_prefix(dir)
        {
            let _ = events.send(AgentEvent::Notice(e.to_string()));
        }
        result
    }

    async fn run_steps(
        &mut self,
        user: &str,
        events: &UnboundedSender<AgentEvent>,
        cancel: &CancelFlag,
    ) -> Result<String, AgentError> {
        let mut last_text = String::new();
        let mut guard = StepGuard::new(self.settings.max_steps).with_request(user);
        let mut reply_tools = ReplyTools::All;
        for step in 1..=self.settings.max_steps {
            if self.needs_compaction(0) {
                self.compact_for(Some(user), true, events, cancel).await?;
            }
            let (text, generated) = self.generate_reply(&reply_tools, events, cancel).await?;
            // A reply held to text is the answer, even if it quotes something call-like.
            let parsed = if reply_tools == ReplyTools::TextOnly {
                ParsedReply { content: text.clone(), ..ParsedReply::default() }
            } else {
                parse_reply(&text, &self.grammar_for(self.permissions.mode(), &ReplyTools::All)?.2)
            };
            let calls: Vec<TemplateToolCall> = parsed
                .calls
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    TemplateToolCall::function(Some(format!("call_{step}_{i}")), c.name.clone(), c.arguments.clone())
                })
                .collect();
            let content = parsed.content.trim().to_string();
            let message = if calls.is_empty() {
                ChatMessage::assistant(content.clone())
            } else {
                ChatMessage::assistant_tool_calls((!content.is_empty()).then(|| content.clone()), calls.clone())
            };
            self.conversation.finish_assistant(&generated, message)?;
            if !content.is_empty() {
                self.record(Event::AssistantText { text: content.clone() })?;
            }
            last_text = content;
            if calls.is_empty() || cancel.is_set() {
                let _ = events.send(AgentEvent::TurnDone { text: last_text.clone(), steps: step });
                return Ok(last_text);
            }
            let (mut results, these) = self.run_calls(&calls, &guard, events, cancel).await?;
            let next = guard.after_calls(step, &these);
            if let Some(content) = results.last_mut().and_then(|r| r.content.as_mut()) {
                // Small models lose the thread after a few tool results and go on changing files
                // after the answer is in; the request restated next to the newest result keeps it
                // in view. It comes after any note: a model held to a text reply answers the last
                // thing it read, and had copied the note back as its answer.
                if let Some(note) = &next.note {
                    content.push('\n');
                    content.push_str(note);
                }
                if user.len() <= TASK_REMINDER_BYTES {
                    content.push_str(&format!("\n(The user's request: {})", user.trim()));
                }
            }
            if let Some(notice) = next.notice {
                let _ = events.send(AgentEvent::Notice(notice));
            }
            reply_tools = next.tools;
            self.conversation.push_tool_results(results)?;
        }
        let note = format!("(stopped after {} model calls without a final answer)", self.settings.max_steps);
        let _ = events.send(AgentEvent::TurnDone { text: note.clone(), steps: self.settings.max_steps });
        Ok(if last_text.is_empty() { note } else { last_text })
    }

    /// Generates one reply from the end of the log, calling only `tools`; returns its text and
    /// tokens.
    async fn generate_reply(
        &mut self,
        tools: &ReplyTools,
        events: &UnboundedSender<AgentEvent>,
        cancel: &CancelFlag,
    ) -> Result<(String, Vec<u32>), AgentError> {
        self.conversation.begin_assistant()?;
        let needed = self.conversation.tokens().len() + 1;
        if needed >= self.runtime.context_length {
            return Err(AgentError::ContextFull { needed, limit: self.runtime.context_length });
        }
        let constraint = if self.settings.constrained {
            let (_, compiled, _) = self.grammar_for(self.permissions.mode(), tools)?;
            Some(SharedConstraint::new(GrammarConstraint::new(compiled.session())))
        } else {
            None
        };
        let max_tokens = self.settings.max_reply_tokens.min(self.runtime.context_length - needed);
        let request = GenerationRequest {
            prompt: self.conversation.tokens().to_vec(),
            sampler: self.settings.sampler.clone(),
            max_tokens,
            stop_tokens: self.runtime.tokenizer.end_of_generation().to_vec(),
            constraint,
        };
        let mut stream = self.runtime.engine.submit(request);
        let mut decoder = self.runtime.tokenizer.stream_decoder();
        let mut tokens = Vec::new();
        let mut text = String::new();
        let mut stats: Option<RequestStats> = None;
        // Only a text answer is watched for loops: a file's content in a tool call may fairly
        // repeat itself, and cutting it would break the call.
        let watch_loops = *tools == ReplyTools::TextOnly;
        // The text's length after each token, to cut tokens and text at the same place.
        let mut ends: Vec<usize> = Vec::new();
        let mut looped = false;
        while let Some(event) = stream.next().await {
            match event {
                // Tokens sampled after the stop was asked for are not part of the reply.
                GenerationEvent::Token(_) if looped => {}
                GenerationEvent::Token(t) => {
                    tokens.push(t);
                    let piece = decoder.push(t).map_err(|e| AgentError::Generation(e.to_string()))?;
                    if !piece.is_empty() {
                        text.push_str(&piece);
                        let _ = events.send(AgentEvent::TextDelta(piece));
                    }
                    ends.push(text.len());
                    if watch_loops && let Some(cut) = repetition::loop_cut(&text) {
                        let keep = ends.partition_point(|&end| end <= cut);
                        tokens.truncate(keep);
                        text.truncate(keep.checked_sub(1).map_or(0, |last| ends[last]));
                        looped = true;
                        stream.stop();
                        let _ = events.send(AgentEvent::Notice(
                            "the reply began repeating itself; it was cut after the first copy".into(),
                        ));
                    }
                    if cancel.is_set() {
                        // Dropping the stream cancels the request in the engine.
                        break;
                    }
                }
                GenerationEvent::Done(s) => {
                    stats = Some(s);
                    break;
                }
                GenerationEvent::Failed(e) => return Err(AgentError::Generation(e.to_string())),
            }
        }
        if !looped {
            text.push_str(&decoder.finish());
        }
        if let Some(s) = &stats {
            self.reused_tokens += s.reused_tokens as u64;
            self.prefilled_tokens += s.prefilled_tokens as u64;
            let usage = TokenUsage {
                prompt_tokens: s.prompt_tokens as u32,
                cached_prompt_tokens: s.reused_tokens as u32,
                completion_tokens: s.generated_tokens as u32,
                context_tokens: (self.conversation.tokens().len() + tokens.len()) as u32,
                context_limit: self.runtime.context_length as u32,
            };
            let _ = events.send(AgentEvent::Usage(usage));
            self.record(Event::TokenUsage(usage))?;
            if s.stop == StopReason::Length {
                text.push_str("\n(reply cut at the token limit)");
            }
        }
        Ok((text, tokens))
    }

    /// The grammar for the tools `mode` offers, narrowed to `tools`, compiled once per pair.
    fn grammar_for(
        &mut self,
        mode: Mode,
        tools: &ReplyTools,
    ) -> Result<(Mode, Arc<CompiledGrammar>, Vec<GrammarTool>), AgentError> {
        if let Some((m, _, g, t)) = self.grammars.iter().find(|(m, r, _, _)| *m == mode && r == tools) {
            return Ok((*m, g.clone(), t.clone()));
        }
        let offered: Vec<GrammarTool> =
            self.registry.schemas(mode).iter().map(GrammarTool::from_openai).collect::<Result<_, _>>()?;
        let offered: Vec<GrammarTool> = match tools {
            ReplyTools::Without(_) => offered.into_iter().filter(|t| tools.allows(&t.name)).collect(),
            ReplyTools::All | ReplyTools::TextOnly => offered,
        };
        // Withholding the only tools a mode offers leaves none: then the reply is text.
        let choice =
            if *tools == ReplyTools::TextOnly || offered.is_empty() { ToolChoice::None } else { ToolChoice::Auto };
        let grammar = ToolCallGrammar::new(self.runtime.format, offered.clone(), choice)?;
        let grammar = if *tools == ReplyTools::TextOnly { grammar.with_prose_text() } else { grammar };
        let compiled = Arc::new(self.runtime.grammar_env.compile(&grammar)?);
        self.grammars.push((mode, tools.clone(), compiled.clone(), offered.clone()));
        Ok((mode, compiled, offered))
    }

    pub(crate) fn record(&mut self, event: Event) -> Result<(), AgentError> {
        if let Some(session) = &mut self.session {
            session.append(event)?;
        }
        Ok(())
    }
}

mod tool_calls;
