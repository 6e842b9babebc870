//! What every handler shares: the served model's tokenizer and template, the engine handle,
//! limits, the API key and the constraint provider.

use std::sync::Arc;

use hearth_engine::Tokenizer;
use hearth_engine::chat_template::{ChatMessage, ChatTemplate};

use crate::config::Limits;
use crate::constraint::ConstraintProvider;
use crate::worker::EngineHandle;

/// The model as the HTTP side sees it: names, tokenizer and chat template.
pub struct ServedModel {
    /// The id clients see in `/v1/models` and responses.
    pub id: String,
    /// The tokenizer (prompts are tokenized on the HTTP side).
    pub tokenizer: Arc<Tokenizer>,
    /// The chat template.
    pub template: ChatTemplate,
    /// Whether the template writes tool definitions into the prompt itself (Qwen2.5 does;
    /// SmolLM2 and Gemma 3 do not, so the server writes them into the system message).
    pub template_renders_tools: bool,
    /// The model's context window in tokens.
    pub context_length: usize,
    /// Unix time the server started, shown as the model's `created`.
    pub created: u64,
}

impl std::fmt::Debug for ServedModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServedModel").field("id", &self.id).finish_non_exhaustive()
    }
}

impl ServedModel {
    /// Describes a model, finding out whether its template renders tools.
    pub fn new(id: String, tokenizer: Arc<Tokenizer>, template: ChatTemplate, context_length: usize) -> Self {
        let template_renders_tools = renders_tools(&template);
        let created =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
        Self { id, tokenizer, template, template_renders_tools, context_length, created }
    }
}

/// Renders a conversation with one made-up tool and looks for its name in the prompt.
fn renders_tools(template: &ChatTemplate) -> bool {
    const PROBE: &str = "hearth_probe_tool_7f3a";
    let tool = serde_json::json!({"type": "function", "function": {
        "name": PROBE, "description": "probe", "parameters": {"type": "object", "properties": {}}}});
    template
        .render(&[ChatMessage::user("hi")], Some(std::slice::from_ref(&tool)), true)
        .is_ok_and(|prompt| prompt.contains(PROBE))
}

/// State shared by all handlers.
#[derive(Clone)]
pub struct AppState {
    /// The served model.
    pub model: Arc<ServedModel>,
    /// The engine worker's queue.
    pub engine: EngineHandle,
    /// Request limits.
    pub limits: Limits,
    /// The key clients must send (`Authorization: Bearer` or `x-api-key`), if any.
    pub api_key: Option<Arc<str>>,
    /// Builds constraints for tool calls and JSON output.
    pub constraints: Arc<dyn ConstraintProvider>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").field("model", &self.model).field("limits", &self.limits).finish_non_exhaustive()
    }
}
