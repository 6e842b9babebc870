//! Anthropic Messages API types: requests as clients send them, responses and stream events as
//! the official clients read them.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `POST /v1/messages` (and `/v1/messages/count_tokens`, which ignores `max_tokens`).
#[derive(Debug, Clone, Deserialize)]
pub struct MessagesRequest {
    /// The model asked for (this server serves one; any name is accepted).
    pub model: String,
    /// The conversation; each message's `content` is a string or a list of blocks.
    pub messages: Vec<InputMessage>,
    /// Most tokens to generate (required by the API; optional only for counting).
    #[serde(default)]
    pub max_tokens: Option<i64>,
    /// The system prompt: a string or a list of text blocks.
    #[serde(default)]
    pub system: Option<Value>,
    /// Strings that end generation.
    #[serde(default)]
    pub stop_sequences: Option<Vec<String>>,
    /// Stream the reply as server-sent events.
    #[serde(default)]
    pub stream: bool,
    /// Sampling temperature, 0 to 1.
    #[serde(default)]
    pub temperature: Option<f32>,
    /// Nucleus sampling.
    #[serde(default)]
    pub top_p: Option<f32>,
    /// Top-k sampling.
    #[serde(default)]
    pub top_k: Option<i64>,
    /// Client tools.
    #[serde(default)]
    pub tools: Option<Vec<Tool>>,
    /// How tools may be used.
    #[serde(default)]
    pub tool_choice: Option<ToolChoiceParam>,
    /// Structured output: `{"format": {"type": "json_schema", "schema": {...}}}`.
    #[serde(default)]
    pub output_config: Option<Value>,
}

/// One message of the conversation.
#[derive(Debug, Clone, Deserialize)]
pub struct InputMessage {
    /// `user` or `assistant`.
    pub role: String,
    /// A string or a list of content blocks (parsed by [`blocks`]).
    pub content: Value,
}

/// A content block of a request message.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum InputBlock {
    /// Text.
    Text {
        /// The text.
        text: String,
    },
    /// A tool call the assistant made earlier.
    ToolUse {
        /// Its id.
        id: String,
        /// The tool.
        name: String,
        /// The arguments.
        input: Value,
    },
    /// The result of a tool call, in a user message.
    ToolResult {
        /// The call it answers.
        tool_use_id: String,
        /// A string or text blocks.
        #[serde(default)]
        content: Option<Value>,
        /// Whether the tool failed.
        #[serde(default)]
        is_error: Option<bool>,
    },
}

/// The blocks of a message's `content`; errors name the block.
pub fn blocks(content: &Value) -> Result<Vec<InputBlock>, String> {
    match content {
        Value::String(text) => Ok(vec![InputBlock::Text { text: text.clone() }]),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| serde_json::from_value(item.clone()).map_err(|e| format!("content[{i}]: {e}")))
            .collect(),
        _ => Err("content: expected a string or a list of content blocks".into()),
    }
}

/// The text of a string-or-text-blocks value (`system`, tool result `content`).
pub fn text_of(value: &Value) -> Result<String, String> {
    match value {
        Value::Null => Ok(String::new()),
        Value::String(s) => Ok(s.clone()),
        Value::Array(items) => {
            let mut text = String::new();
            for (i, item) in items.iter().enumerate() {
                match (item.get("type").and_then(Value::as_str), item.get("text").and_then(Value::as_str)) {
                    (Some("text"), Some(t)) => text.push_str(t),
                    (kind, _) => return Err(format!("[{i}]: blocks of type {kind:?} are not supported (text only)")),
                }
            }
            Ok(text)
        }
        _ => Err("expected a string or a list of text blocks".into()),
    }
}

/// A client tool.
#[derive(Debug, Clone, Deserialize)]
pub struct Tool {
    /// Absent or `custom` for client tools; server tools are not supported.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// The tool's name.
    pub name: String,
    /// What it does.
    #[serde(default)]
    pub description: Option<String>,
    /// JSON schema of its input.
    #[serde(default)]
    pub input_schema: Option<Value>,
}

/// `tool_choice`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToolChoiceParam {
    /// The model decides.
    Auto {
        /// At most one tool call.
        #[serde(default)]
        disable_parallel_tool_use: bool,
    },
    /// Some tool must be called.
    Any {
        /// Exactly one tool call.
        #[serde(default)]
        disable_parallel_tool_use: bool,
    },
    /// This tool must be called.
    Tool {
        /// The tool's name.
        name: String,
        /// Accepted; a named tool is called once.
        #[serde(default)]
        disable_parallel_tool_use: bool,
    },
    /// No tool calls.
    None {},
}

impl ToolChoiceParam {
    /// Whether the reply may call at most one tool.
    pub fn disables_parallel_use(&self) -> bool {
        match self {
            Self::Auto { disable_parallel_tool_use }
            | Self::Any { disable_parallel_tool_use }
            | Self::Tool { disable_parallel_tool_use, .. } => *disable_parallel_tool_use,
            Self::None {} => false,
        }
    }
}

/// `usage`. `input_tokens` counts only prompt tokens that were computed; the ones reused from
/// the prefix cache are in `cache_read_input_tokens`, as in Anthropic's API.
#[derive(Debug, Clone, Serialize)]
pub struct UsageOut {
    /// Prompt tokens computed.
    pub input_tokens: usize,
    /// Tokens generated.
    pub output_tokens: usize,
    /// Prompt tokens read from the prefix cache.
    pub cache_read_input_tokens: usize,
    /// Always 0: caching is automatic.
    pub cache_creation_input_tokens: usize,
}

impl From<crate::worker::Usage> for UsageOut {
    fn from(u: crate::worker::Usage) -> Self {
        Self {
            input_tokens: u.prompt_tokens - u.cached_tokens,
            output_tokens: u.completion_tokens,
            cache_read_input_tokens: u.cached_tokens,
            cache_creation_input_tokens: 0,
        }
    }
}

/// A content block of a response.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutputBlock {
    /// Text.
    Text {
        /// The text.
        text: String,
    },
    /// A tool call.
    ToolUse {
        /// `toolu_...`.
        id: String,
        /// The tool.
        name: String,
        /// The arguments.
        input: Value,
    },
}

/// A `message` response (also the `message` of `message_start`, with no content yet).
#[derive(Debug, Clone, Serialize)]
pub struct MessageOut {
    /// `msg_...`.
    pub id: String,
    /// `message`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// `assistant`.
    pub role: &'static str,
    /// The served model's id.
    pub model: String,
    /// Text and tool-use blocks.
    pub content: Vec<OutputBlock>,
    /// `end_turn`, `max_tokens`, `stop_sequence` or `tool_use`; null while streaming.
    pub stop_reason: Option<&'static str>,
    /// The stop sequence that ended generation.
    pub stop_sequence: Option<String>,
    /// Token counts.
    pub usage: UsageOut,
}
