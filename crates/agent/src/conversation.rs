//! The conversation as an append-only token log that the agent owns.
//!
//! Every message is rendered with the model's chat template and tokenized once, when it is
//! added, and its tokens are appended; history is never rendered again. A new message's text is
//! the difference between the template's rendering of the conversation with and without it, so
//! the log stays what the template would produce while the KV cache of everything before it stays
//! valid. Generated turns keep the model's own tokens. Re-rendering the whole history every turn
//! (as HTTP front-ends do) drifts from the cached tokens whenever a template formats an old
//! message differently, and every drift costs a re-prefill from that point.

use std::sync::Arc;

use hearth_engine::Tokenizer;
use hearth_engine::chat_template::{ChatMessage, ChatTemplate, ChatTemplateError};
use hearth_engine::tokenizer::TokenizerError;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Errors extending the log.
#[derive(Debug, thiserror::Error)]
pub enum ConversationError {
    #[error(transparent)]
    Template(#[from] ChatTemplateError),
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    #[error("the chat template renders the {role} message in a way that rewrites earlier turns")]
    TemplateDrift { role: String },
    #[error("the model has no end-of-turn token to close a generated turn with")]
    NoEndOfTurn,
    #[error("the saved conversation does not fit this model: {0}")]
    BadState(String),
}

/// A point in the log to rewind to (undo, retry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mark {
    messages: usize,
    tokens: usize,
}

impl Mark {
    /// Tokens in the log at this point.
    pub fn tokens(&self) -> usize {
        self.tokens
    }
}

/// A conversation as saved in a checkpoint: the messages and the exact token log, so a resumed
/// session continues from the same tokens (and so from the saved KV cache).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationState {
    /// The messages, system prompt first.
    pub messages: Vec<ChatMessage>,
    /// The token log.
    pub tokens: Vec<u32>,
    /// Tokens of the system prompt with tools.
    pub system_len: usize,
}

/// Messages and their tokens, only ever appended to (or rewound).
#[derive(Debug, Clone)]
pub struct Conversation {
    template: Arc<ChatTemplate>,
    tokenizer: Arc<Tokenizer>,
    tools: Vec<Value>,
    messages: Vec<ChatMessage>,
    tokens: Vec<u32>,
    /// Tokens of the system prompt and tool definitions: the prefix shared with subagents.
    system_len: usize,
}

impl Conversation {
    /// A conversation that starts with `system` (and `tools`, which templates with native tool
    /// support render into the system turn).
    pub fn new(
        template: Arc<ChatTemplate>,
        tokenizer: Arc<Tokenizer>,
        system: Option<String>,
        tools: Vec<Value>,
    ) -> Result<Self, ConversationError> {
        let messages: Vec<ChatMessage> = system.into_iter().map(ChatMessage::system).collect();
        let text = template.render(&messages, Some(&tools), false)?;
        let tokens = tokenizer.encode(&text, true, true)?;
        let system_len = tokens.len();
        Ok(Self { template, tokenizer, tools, messages, tokens, system_len })
    }

    /// A conversation continuing from a saved `state` whose tokens were made by this tokenizer
    /// and template (the caller checks the model fingerprint). The tools must be the ones the
    /// state's system turn was rendered with.
    pub fn restore(
        template: Arc<ChatTemplate>,
        tokenizer: Arc<Tokenizer>,
        tools: Vec<Value>,
        state: ConversationState,
    ) -> Result<Self, ConversationError> {
        if state.system_len > state.tokens.len() {
            return Err(ConversationError::BadState(format!(
                "system prompt of {} tokens in a log of {}",
                state.system_len,
                state.tokens.len()
            )));
        }
        if let Some(&bad) = state.tokens.iter().find(|&&t| t as usize >= tokenizer.vocab_size()) {
            return Err(ConversationError::BadState(format!("token {bad} is not in the model's vocabulary")));
        }
        Ok(Self {
            template,
            tokenizer,
            tools,
            messages: state.messages,
            tokens: state.tokens,
            system_len: state.system_len,
        })
    }

    /// A conversation with this one's template, tokenizer and tools continuing from `state`.
    pub fn restored(&self, state: ConversationState) -> Result<Self, ConversationError> {
        Self::restore(self.template.clone(), self.tokenizer.clone(), self.tools.clone(), state)
    }

    /// Appends `messages` rendered by the template (consecutive tool results together), for a
    /// conversation carried over from another model, whose tokens cannot be reused.
    pub fn extend_rendered(&mut self, messages: &[ChatMessage]) -> Result<(), ConversationError> {
        let mut rest = messages;
        while let Some(first) = rest.first() {
            let n = if first.role == "tool" { rest.iter().take_while(|m| m.role == "tool").count() } else { 1 };
            self.push_messages(rest[..n].to_vec())?;
            rest = &rest[n..];
        }
        Ok(())
    }

    /// The messages and tokens, for a checkpoint.
    pub fn state(&self) -> ConversationState {
        ConversationState { messages: self.messages.clone(), tokens: self.tokens.clone(), system_len: self.system_len }
    }

    /// The whole log.
    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    /// The messages so far.
    pub fn messages(&self) -> &[ChatMessage] {
        &self.messages
    }

    /// Tokens of the system prompt with tools.
    pub fn system_len(&self) -> usize {
        self.system_len
    }

    /// The tokenizer the log is in.
    pub fn tokenizer(&self) -> &Arc<Tokenizer> {
        &self.tokenizer
    }

    /// The current end of the log.
    pub fn mark(&self) -> Mark {
        Mark { messages: self.messages.len(), tokens: self.tokens.len() }
    }

    /// Rewinds to `mark`, forgetting everything after it.
    pub fn rewind(&mut self, mark: Mark) {
        self.messages.truncate(mark.messages);
        self.tokens.truncate(mark.tokens);
    }

    /// A conversation with the same system prompt and tools and nothing else: a subagent's
    /// start, which shares the parent's cached prefix.
    pub fn fork_system(&self) -> Self {
        let n_system = usize::from(self.messages.first().is_some_and(|m| m.role == "system"));
        Self {
            template: self.template.clone(),
            tokenizer: self.tokenizer.clone(),
            tools: self.tools.clone(),
            messages: self.messages[..n_system].to_vec(),
            tokens: self.tokens[..self.system_len].to_vec(),
            system_len: self.system_len,
        }
    }

    /// Appends a user message.
    pub fn push_user(&mut self, text: &str) -> Result<(), ConversationError> {
        self.push_messages(vec![ChatMessage::user(text)])
    }

    /// Appends the results of one turn's tool calls (templates group consecutive results, so
    /// they are added together).
    pub fn push_tool_results(&mut self, results: Vec<ChatMessage>) -> Result<(), ConversationError> {
        self.push_messages(results)
    }

    /// Appends a whole assistant message written by the agent rather than generated (the
    /// acknowledgement after a compaction summary), rendered by the template.
    pub fn push_assistant(&mut self, message: ChatMessage) -> Result<(), ConversationError> {
        self.push_messages(vec![message])
    }

    /// Appends the start of the assistant's turn; generation continues from here.
    pub fn begin_assistant(&mut self) -> Result<(), ConversationError> {
        let before = self.render(false)?;
        let after = self.render(true)?;
        let delta = after.strip_prefix(&before).ok_or(ConversationError::TemplateDrift { role: "assistant".into() })?;
        let ids = self.tokenizer.encode(delta, false, true)?;
        self.tokens.extend(ids);
        Ok(())
    }

    /// Closes the assistant's turn: the model's own `generated` tokens, its end-of-turn token,
    /// and whatever the template writes after it (ChatML's newline). `message` is the turn as
    /// the template should see it later (text and parsed tool calls).
    pub fn finish_assistant(&mut self, generated: &[u32], message: ChatMessage) -> Result<(), ConversationError> {
        let end = self.end_of_turn()?;
        let end_text = String::from_utf8_lossy(self.tokenizer.token_bytes(end, true)?).into_owned();
        let before = self.render(true)?;
        self.messages.push(message);
        let after = self.render(false)?;
        // The closing text is what follows the last end-of-turn marker of the new turn.
        let tail = after.get(before.len().min(after.len())..).unwrap_or("");
        let closing = match tail.rfind(&end_text) {
            Some(pos) => &tail[pos + end_text.len()..],
            None => "",
        };
        self.tokens.extend_from_slice(generated);
        if generated.last() != Some(&end) {
            self.tokens.push(end);
        }
        let ids = self.tokenizer.encode(closing, false, true)?;
        self.tokens.extend(ids);
        Ok(())
    }

    /// The token that ends an assistant turn: the template's end-of-turn marker if it is one of
    /// the model's end-of-generation tokens, else EOS.
    fn end_of_turn(&self) -> Result<u32, ConversationError> {
        for text in ["<|im_end|>", "<end_of_turn>", "<|eot_id|>", "<|end|>"] {
            if let Some(id) = self.tokenizer.token_id(text)
                && self.tokenizer.is_end_of_generation(id)
            {
                return Ok(id);
            }
        }
        self.tokenizer.eos().ok_or(ConversationError::NoEndOfTurn)
    }

    fn push_messages(&mut self, new: Vec<ChatMessage>) -> Result<(), ConversationError> {
        let role = new.first().map(|m| m.role.clone()).unwrap_or_default();
        let before = self.render(false)?;
        let n = self.messages.len();
        self.messages.extend(new);
        let after = match self.render(false) {
            Ok(after) => after,
            Err(e) => {
                self.messages.truncate(n);
                return Err(e);
            }
        };
        let Some(delta) = after.strip_prefix(&before) else {
            self.messages.truncate(n);
            return Err(ConversationError::TemplateDrift { role });
        };
        let ids = self.tokenizer.encode(delta, false, true)?;
        self.tokens.extend(ids);
        Ok(())
    }

    fn render(&self, add_generation_prompt: bool) -> Result<String, ConversationError> {
        Ok(self.template.render(&self.messages, Some(&self.tools), add_generation_prompt)?)
    }
}
