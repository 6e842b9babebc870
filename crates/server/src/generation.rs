//! Handing a request to the engine and reading its events, shared by the API modules.

use hearth_engine::chat_template::ChatMessage;
use hearth_grammar::Tool;
use serde_json::Value;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::constraint::TokenConstraint;
use crate::error::{ApiError, ErrorKind, Flavor};
use crate::prompt::{ChatPrompt, OutputFormat, ToolChoice, chat_prompt};
use crate::state::AppState;
use crate::worker::{FinishReason, GenerationEvent, GenerationRequest, SubmitError, Usage};

/// Queues `request`; a full queue is a 429 and a stopped worker a 503.
pub fn submit(
    state: &AppState,
    flavor: Flavor,
    request: GenerationRequest,
) -> Result<UnboundedReceiver<GenerationEvent>, ApiError> {
    state.engine.submit(request).map_err(|e| {
        let kind = match e {
            SubmitError::QueueFull => ErrorKind::QueueFull,
            SubmitError::Stopped => ErrorKind::Unavailable,
        };
        ApiError::new(flavor, kind, e.to_string())
    })
}

/// A whole reply.
#[derive(Debug, Clone, PartialEq)]
pub struct Collected {
    /// The generated text.
    pub text: String,
    /// Why generation ended.
    pub reason: FinishReason,
    /// Token counts.
    pub usage: Usage,
}

/// Waits for the whole reply. Dropping the future (the client went away) drops the receiver,
/// which cancels generation.
pub async fn collect(mut events: UnboundedReceiver<GenerationEvent>, flavor: Flavor) -> Result<Collected, ApiError> {
    let mut text = String::new();
    while let Some(event) = events.recv().await {
        match event {
            GenerationEvent::Started { .. } => {}
            GenerationEvent::Text(t) => text.push_str(&t),
            GenerationEvent::Finished { reason, usage } => return Ok(Collected { text, reason, usage }),
            GenerationEvent::Failed(f) => return Err(ApiError::new(flavor, f.kind(), f.message)),
        }
    }
    Err(ApiError::new(flavor, ErrorKind::Unavailable, "the engine worker stopped before the reply was complete"))
}

/// A random id with `prefix`, as the APIs give each response.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}{:024x}", rand::random::<u128>() >> 32)
}

/// Seconds since the Unix epoch.
pub fn unix_time() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default()
}

/// A chat request made ready for the engine: prompt tokens and the constraint, if any.
pub struct ChatPlan {
    /// The prompt and how to read the reply.
    pub prompt: ChatPrompt,
    /// The constraint shaping the reply, when the provider enforces one.
    pub constraint: Option<Box<dyn TokenConstraint>>,
}

/// What a chat request asks of its reply: tools (OpenAI function tools), whether and which to
/// call, and the output format.
#[derive(Debug, Clone, Copy)]
pub struct ReplyShape<'a> {
    /// OpenAI function tools, as the request gave them.
    pub tools: &'a [Value],
    /// Whether and which tools must be called.
    pub choice: &'a ToolChoice,
    /// Whether a reply may call several tools.
    pub parallel_calls: bool,
    /// Free text or JSON.
    pub format: &'a OutputFormat,
}

/// Checks tools, builds the constraint and renders the prompt of a chat request; problems are
/// 400s naming them.
pub fn plan_chat(
    state: &AppState,
    flavor: Flavor,
    messages: Vec<ChatMessage>,
    shape: ReplyShape<'_>,
) -> Result<ChatPlan, ApiError> {
    let ReplyShape { tools, choice, parallel_calls, format } = shape;
    let invalid = |m: String| ApiError::invalid(flavor, m);
    let mut checked = Vec::with_capacity(tools.len());
    for (i, tool) in tools.iter().enumerate() {
        if tool.get("type").and_then(Value::as_str) != Some("function") {
            return Err(invalid(format!("tools[{i}]: \"type\" must be \"function\"")));
        }
        if tool.pointer("/function/name").and_then(Value::as_str).is_none_or(str::is_empty) {
            return Err(invalid(format!("tools[{i}]: \"function.name\" must be a non-empty string")));
        }
        checked.push(Tool::from_openai(tool).map_err(|e| invalid(format!("tools[{i}]: {e}")))?);
    }
    let prompt = chat_prompt(&state.model, messages, &checked, choice, format, state.constraints.is_enforcing())
        .map_err(invalid)?;
    let provider = &state.constraints;
    let constraint = if prompt.tools_active {
        provider.tool_calls(&prompt.tools, choice, parallel_calls)
    } else {
        match format {
            OutputFormat::Text => Ok(None),
            OutputFormat::JsonObject => provider.json(None),
            OutputFormat::JsonSchema(schema) => provider.json(Some(schema)),
        }
    }
    .map_err(|e| invalid(e.to_string()))?;
    check_context(state, flavor, prompt.tokens.len())?;
    Ok(ChatPlan { prompt, constraint })
}

/// A prompt must leave room in the context for at least one generated token.
pub fn check_context(state: &AppState, flavor: Flavor, prompt_tokens: usize) -> Result<(), ApiError> {
    let limit = state.model.context_length;
    if prompt_tokens >= limit {
        return Err(ApiError::invalid(
            flavor,
            format!("the prompt has {prompt_tokens} tokens; the model's context holds {limit}"),
        ));
    }
    Ok(())
}
