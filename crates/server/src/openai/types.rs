//! OpenAI protocol types: requests as clients send them, responses and stream chunks as the
//! official clients read them.

use hearth_engine::chat_template::ToolCall;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `stop`: one string or several.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Stop {
    /// One stop string.
    One(String),
    /// Several.
    Many(Vec<String>),
}

impl Stop {
    /// The stop strings.
    pub fn into_vec(self) -> Vec<String> {
        match self {
            Stop::One(s) => vec![s],
            Stop::Many(v) => v,
        }
    }
}

/// `stream_options`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct StreamOptions {
    /// Send a last chunk with `usage`.
    #[serde(default)]
    pub include_usage: bool,
}

/// A message's `content`: a string or a list of parts.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Content {
    /// Plain text.
    Text(String),
    /// Content parts; only `text` parts are supported.
    Parts(Vec<ContentPart>),
}

/// One content part.
#[derive(Debug, Clone, Deserialize)]
pub struct ContentPart {
    /// `text` (others, like `image_url`, are refused).
    #[serde(rename = "type")]
    pub kind: String,
    /// The text of a `text` part.
    #[serde(default)]
    pub text: Option<String>,
}

/// A message of a chat request.
#[derive(Debug, Clone, Deserialize)]
pub struct RequestMessage {
    /// `system`, `developer`, `user`, `assistant` or `tool`.
    pub role: String,
    /// The text.
    #[serde(default)]
    pub content: Option<Content>,
    /// Calls an assistant turn made.
    #[serde(default)]
    pub tool_calls: Option<Vec<ToolCall>>,
    /// For a tool result: the call it answers.
    #[serde(default)]
    pub tool_call_id: Option<String>,
    /// A participant or tool name.
    #[serde(default)]
    pub name: Option<String>,
}

/// `POST /v1/chat/completions`.
#[derive(Debug, Clone, Deserialize)]
pub struct ChatCompletionRequest {
    /// The model asked for (this server serves one; any name is accepted).
    #[serde(default)]
    pub model: Option<String>,
    /// The conversation.
    pub messages: Vec<RequestMessage>,
    /// Stream the reply as server-sent events.
    #[serde(default)]
    pub stream: bool,
    /// Streaming options.
    #[serde(default)]
    pub stream_options: Option<StreamOptions>,
    /// Token limit (older name).
    #[serde(default)]
    pub max_tokens: Option<i64>,
    /// Token limit.
    #[serde(default)]
    pub max_completion_tokens: Option<i64>,
    /// Sampling temperature, 0 to 2.
    #[serde(default)]
    pub temperature: Option<f32>,
    /// Nucleus sampling.
    #[serde(default)]
    pub top_p: Option<f32>,
    /// llama.cpp extension: top-k.
    #[serde(default)]
    pub top_k: Option<i64>,
    /// llama.cpp extension: min-p.
    #[serde(default)]
    pub min_p: Option<f32>,
    /// llama.cpp extension: repetition penalty.
    #[serde(default)]
    pub repeat_penalty: Option<f32>,
    /// Not supported unless 0.
    #[serde(default)]
    pub frequency_penalty: Option<f32>,
    /// Not supported unless 0.
    #[serde(default)]
    pub presence_penalty: Option<f32>,
    /// RNG seed.
    #[serde(default)]
    pub seed: Option<i64>,
    /// Number of choices; only 1.
    #[serde(default)]
    pub n: Option<i64>,
    /// Stop strings.
    #[serde(default)]
    pub stop: Option<Stop>,
    /// OpenAI function tools.
    #[serde(default)]
    pub tools: Option<Vec<Value>>,
    /// `none`, `auto`, `required` or `{"type": "function", "function": {"name": ...}}`.
    #[serde(default)]
    pub tool_choice: Option<Value>,
    /// `false`: at most one tool call per reply (enforced when decoding is constrained).
    #[serde(default)]
    pub parallel_tool_calls: Option<bool>,
    /// `{"type": "text" | "json_object" | "json_schema", "json_schema": {"schema": ...}}`.
    #[serde(default)]
    pub response_format: Option<Value>,
    /// Not supported.
    #[serde(default)]
    pub logprobs: Option<bool>,
    /// llama.cpp extension: generate past end-of-turn tokens.
    #[serde(default)]
    pub ignore_eos: bool,
}

/// `POST /v1/completions`.
#[derive(Debug, Clone, Deserialize)]
pub struct CompletionRequest {
    /// The model asked for.
    #[serde(default)]
    pub model: Option<String>,
    /// The prompt text (a list of one string is accepted too).
    pub prompt: Stop,
    /// Stream as server-sent events.
    #[serde(default)]
    pub stream: bool,
    /// Streaming options.
    #[serde(default)]
    pub stream_options: Option<StreamOptions>,
    /// Token limit; OpenAI's default is 16.
    #[serde(default)]
    pub max_tokens: Option<i64>,
    /// Sampling temperature.
    #[serde(default)]
    pub temperature: Option<f32>,
    /// Nucleus sampling.
    #[serde(default)]
    pub top_p: Option<f32>,
    /// llama.cpp extension: top-k.
    #[serde(default)]
    pub top_k: Option<i64>,
    /// llama.cpp extension: min-p.
    #[serde(default)]
    pub min_p: Option<f32>,
    /// llama.cpp extension: repetition penalty.
    #[serde(default)]
    pub repeat_penalty: Option<f32>,
    /// Not supported unless 0.
    #[serde(default)]
    pub frequency_penalty: Option<f32>,
    /// Not supported unless 0.
    #[serde(default)]
    pub presence_penalty: Option<f32>,
    /// RNG seed.
    #[serde(default)]
    pub seed: Option<i64>,
    /// Only 1.
    #[serde(default)]
    pub n: Option<i64>,
    /// Stop strings.
    #[serde(default)]
    pub stop: Option<Stop>,
    /// Not supported.
    #[serde(default)]
    pub echo: bool,
    /// Not supported.
    #[serde(default)]
    pub logprobs: Option<Value>,
    /// Not supported.
    #[serde(default)]
    pub suffix: Option<String>,
    /// llama.cpp extension.
    #[serde(default)]
    pub ignore_eos: bool,
}

/// `usage.prompt_tokens_details`.
#[derive(Debug, Clone, Serialize)]
pub struct PromptTokensDetails {
    /// Prompt tokens served from the prefix cache.
    pub cached_tokens: usize,
}

/// `usage`.
#[derive(Debug, Clone, Serialize)]
pub struct UsageOut {
    /// Tokens in the prompt.
    pub prompt_tokens: usize,
    /// Tokens generated.
    pub completion_tokens: usize,
    /// Their sum.
    pub total_tokens: usize,
    /// Cache details.
    pub prompt_tokens_details: PromptTokensDetails,
}

impl From<crate::worker::Usage> for UsageOut {
    fn from(u: crate::worker::Usage) -> Self {
        Self {
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
            total_tokens: u.prompt_tokens + u.completion_tokens,
            prompt_tokens_details: PromptTokensDetails { cached_tokens: u.cached_tokens },
        }
    }
}

/// A tool call in a response.
#[derive(Debug, Clone, Serialize)]
pub struct ToolCallOut {
    /// Its id, for the tool result to refer to.
    pub id: String,
    /// Always `function`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Name and arguments.
    pub function: FunctionOut,
}

/// A called function; `arguments` is a JSON string, as OpenAI sends it.
#[derive(Debug, Clone, Serialize)]
pub struct FunctionOut {
    /// The tool's name.
    pub name: String,
    /// The arguments as JSON text.
    pub arguments: String,
}

/// The assistant message of a response.
#[derive(Debug, Clone, Serialize)]
pub struct ResponseMessage {
    /// Always `assistant`.
    pub role: &'static str,
    /// The text, `null` when the reply is only tool calls.
    pub content: Option<String>,
    /// The tool calls, if any.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCallOut>,
}

/// One choice of a chat completion.
#[derive(Debug, Clone, Serialize)]
pub struct ChatChoice {
    /// Always 0.
    pub index: usize,
    /// The reply.
    pub message: ResponseMessage,
    /// `stop`, `length` or `tool_calls`.
    pub finish_reason: &'static str,
    /// Always null.
    pub logprobs: Option<Value>,
}

/// The response of a non-streamed chat completion.
#[derive(Debug, Clone, Serialize)]
pub struct ChatCompletion {
    /// `chatcmpl-...`.
    pub id: String,
    /// `chat.completion`.
    pub object: &'static str,
    /// Unix time.
    pub created: u64,
    /// The served model's id.
    pub model: String,
    /// One choice.
    pub choices: Vec<ChatChoice>,
    /// Token counts.
    pub usage: UsageOut,
}

/// A tool call piece in a stream chunk.
#[derive(Debug, Clone, Serialize)]
pub struct ToolCallDelta {
    /// Position of the call in the reply.
    pub index: usize,
    /// Its id.
    pub id: String,
    /// Always `function`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Name and the whole arguments text (calls are sent once complete).
    pub function: FunctionOut,
}

/// The `delta` of a stream chunk.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Delta {
    /// `assistant`, in the first chunk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'static str>,
    /// More text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// Complete tool calls.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCallDelta>>,
}

/// One choice of a stream chunk.
#[derive(Debug, Clone, Serialize)]
pub struct ChunkChoice {
    /// Always 0.
    pub index: usize,
    /// What is new.
    pub delta: Delta,
    /// Set in the last chunk.
    pub finish_reason: Option<&'static str>,
    /// Always null.
    pub logprobs: Option<Value>,
}

/// A `chat.completion.chunk`.
#[derive(Debug, Clone, Serialize)]
pub struct ChatCompletionChunk {
    /// The same id in every chunk.
    pub id: String,
    /// `chat.completion.chunk`.
    pub object: &'static str,
    /// Unix time.
    pub created: u64,
    /// The served model's id.
    pub model: String,
    /// One choice (none in the usage chunk).
    pub choices: Vec<ChunkChoice>,
    /// Token counts, in the last chunk when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<UsageOut>,
}

/// One choice of a text completion (or a chunk of one).
#[derive(Debug, Clone, Serialize)]
pub struct CompletionChoice {
    /// Always 0.
    pub index: usize,
    /// The text.
    pub text: String,
    /// `stop` or `length`, once finished.
    pub finish_reason: Option<&'static str>,
    /// Always null.
    pub logprobs: Option<Value>,
}

/// A `text_completion`, whole or as a stream chunk.
#[derive(Debug, Clone, Serialize)]
pub struct Completion {
    /// `cmpl-...`.
    pub id: String,
    /// `text_completion`.
    pub object: &'static str,
    /// Unix time.
    pub created: u64,
    /// The served model's id.
    pub model: String,
    /// One choice.
    pub choices: Vec<CompletionChoice>,
    /// Token counts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<UsageOut>,
}

/// `GET /v1/models` entry.
#[derive(Debug, Clone, Serialize)]
pub struct ModelCard {
    /// The model id.
    pub id: String,
    /// `model`.
    pub object: &'static str,
    /// Unix time.
    pub created: u64,
    /// `hearth`.
    pub owned_by: &'static str,
}
