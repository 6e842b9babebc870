//! Chat templates: a model's Jinja template rendered with minijinja into the prompt text.
//!
//! The template is the GGUF's `tokenizer.chat_template`, or the fallback from the model's
//! manifest. It is rendered the way llama.cpp's `llama-server --jinja` renders it, which is
//! also how Hugging Face's `apply_chat_template` does: `trim_blocks` and `lstrip_blocks` on,
//! Python's `json.dumps` spelling for `tojson`, `raise_exception` and `strftime_now`, Python
//! string and dict methods, and undefined values that print as nothing. Messages and tools are
//! handed over in the shape llama.cpp gives them (see [`ChatTemplate::render`]), so that a
//! hearth prompt and a llama.cpp prompt for the same conversation are the same text.
//!
//! Two corners follow Python (what the models were trained with) rather than llama.cpp: `tojson`
//! writes floats as Python does (`1.0`, `12345678.9`, where llama.cpp writes `1` and
//! `1.23457e+07`), and `{{ none }}` prints `None` (llama.cpp prints nothing).

mod functions;
mod message;

use minijinja::{Environment, UndefinedBehavior, Value};
use serde::Serialize;

use crate::gguf::{GgufError, GgufFile};
use functions::RaisedByTemplate;
pub use functions::format_time;
pub use message::{ChatMessage, FunctionCall, ToolCall};

/// The name minijinja gives the template in its error messages (`(in chat_template:12)`).
const TEMPLATE_NAME: &str = "chat_template";

/// Errors building or rendering a chat template.
#[derive(Debug, thiserror::Error)]
pub enum ChatTemplateError {
    #[error("the model has no chat template: its GGUF has no tokenizer.chat_template and no fallback was given")]
    Missing,
    #[error("the chat template does not parse: {0}")]
    Parse(#[source] minijinja::Error),
    #[error("the chat template rejected the conversation: {message}")]
    Raised { message: String },
    #[error("the chat template failed to render: {0}")]
    Render(#[source] minijinja::Error),
    #[error(
        "tool {index} is not an OpenAI function tool ({{\"type\": \"function\", \"function\": {{\"name\": ...}}}}): {problem}"
    )]
    InvalidTool { index: usize, problem: &'static str },
    #[error("GGUF metadata {key} = {id} is outside the vocabulary of {vocab} tokens")]
    TokenOutOfRange { key: &'static str, id: u64, vocab: usize },
    #[error(transparent)]
    Gguf(#[from] GgufError),
}

/// A parsed chat template with the special-token strings it is rendered with.
pub struct ChatTemplate {
    env: Environment<'static>,
    bos_token: String,
    eos_token: String,
    tokenizer_adds_bos: bool,
    tokenizer_adds_eos: bool,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("bos_token", &self.bos_token)
            .field("eos_token", &self.eos_token)
            .field("tokenizer_adds_bos", &self.tokenizer_adds_bos)
            .field("tokenizer_adds_eos", &self.tokenizer_adds_eos)
            .finish_non_exhaustive()
    }
}

impl ChatTemplate {
    /// Parses `source`; templates see `bos_token` and `eos_token` as those variables.
    pub fn new(
        source: &str,
        bos_token: impl Into<String>,
        eos_token: impl Into<String>,
    ) -> Result<Self, ChatTemplateError> {
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        // llama.cpp keeps a template's final newline; Jinja2's default would drop it.
        env.set_keep_trailing_newline(true);
        env.set_undefined_behavior(UndefinedBehavior::Lenient);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_filter("tojson", functions::tojson);
        env.add_function("raise_exception", functions::raise_exception);
        env.add_function("strftime_now", functions::strftime_now);
        env.add_template_owned(TEMPLATE_NAME, source.to_string()).map_err(ChatTemplateError::Parse)?;
        Ok(Self {
            env,
            bos_token: bos_token.into(),
            eos_token: eos_token.into(),
            tokenizer_adds_bos: false,
            tokenizer_adds_eos: false,
        })
    }

    /// Says whether the tokenizer adds BOS at the start and EOS at the end of the prompt itself.
    ///
    /// Many templates write `{{ bos_token }}` first; when the tokenizer adds BOS too, the model
    /// would see two. Like llama.cpp, a rendered prompt then loses a leading BOS (and a trailing
    /// EOS) text.
    pub fn with_tokenizer_adding(mut self, bos: bool, eos: bool) -> Self {
        self.tokenizer_adds_bos = bos;
        self.tokenizer_adds_eos = eos;
        self
    }

    /// The template of a GGUF (`tokenizer.chat_template`), else `fallback` (a manifest's
    /// `chat_template`), with BOS/EOS strings and the add-BOS/EOS flags from its vocabulary.
    pub fn from_gguf(gguf: &GgufFile, fallback: Option<&str>) -> Result<Self, ChatTemplateError> {
        let source = gguf.opt_str("tokenizer.chat_template")?.or(fallback).ok_or(ChatTemplateError::Missing)?;
        let bos = token_text(gguf, "tokenizer.ggml.bos_token_id")?;
        let eos = token_text(gguf, "tokenizer.ggml.eos_token_id")?;
        // llama.cpp's defaults when the flags are absent: SentencePiece and WordPiece
        // vocabularies add BOS, Unigram (T5) ones add EOS, byte-level BPE adds neither.
        let model = gguf.opt_str("tokenizer.ggml.model")?.unwrap_or("");
        let add_bos = gguf.opt_bool("tokenizer.ggml.add_bos_token")?.unwrap_or(matches!(model, "llama" | "bert"));
        let add_eos = gguf.opt_bool("tokenizer.ggml.add_eos_token")?.unwrap_or(model == "t5");
        Ok(Self::new(source, bos, eos)?.with_tokenizer_adding(add_bos, add_eos))
    }

    /// The BOS text templates see as `bos_token`.
    pub fn bos_token(&self) -> &str {
        &self.bos_token
    }

    /// The EOS text templates see as `eos_token`.
    pub fn eos_token(&self) -> &str {
        &self.eos_token
    }

    /// Renders a conversation into prompt text.
    ///
    /// `tools` are OpenAI function tools (`{"type": "function", "function": {"name",
    /// "description", "parameters"}}`); `add_generation_prompt` appends the start of the
    /// assistant's turn. As llama.cpp does, a message's missing content is passed as `""`,
    /// tool-call arguments given as a JSON string are passed as the object it holds (templates
    /// `tojson` them), and each tool is passed as exactly `type`, `function.name`,
    /// `function.description` (`""` if absent) and `function.parameters` (`{}` if absent).
    pub fn render(
        &self,
        messages: &[ChatMessage],
        tools: Option<&[serde_json::Value]>,
        add_generation_prompt: bool,
    ) -> Result<String, ChatTemplateError> {
        let messages: Vec<TemplateMessage<'_>> = messages.iter().map(TemplateMessage::from).collect();
        let mut ctx = vec![
            ("messages", Value::from_serialize(&messages)),
            ("bos_token", Value::from(self.bos_token.as_str())),
            ("eos_token", Value::from(self.eos_token.as_str())),
            ("add_generation_prompt", Value::from(add_generation_prompt)),
        ];
        if let Some(tools) = tools.filter(|t| !t.is_empty()) {
            let tools =
                tools.iter().enumerate().map(|(i, t)| TemplateTool::parse(i, t)).collect::<Result<Vec<_>, _>>()?;
            ctx.push(("tools", Value::from_serialize(&tools)));
        }
        let template = self.env.get_template(TEMPLATE_NAME).map_err(ChatTemplateError::Render)?;
        let mut prompt = template.render(Value::from_iter(ctx)).map_err(render_error)?;
        if self.tokenizer_adds_bos && !self.bos_token.is_empty() && prompt.starts_with(&self.bos_token) {
            prompt.drain(..self.bos_token.len());
        }
        if self.tokenizer_adds_eos && !self.eos_token.is_empty() && prompt.ends_with(&self.eos_token) {
            prompt.truncate(prompt.len() - self.eos_token.len());
        }
        Ok(prompt)
    }
}

/// The text of the token whose id metadata `key` holds; empty when the model has no such token.
fn token_text(gguf: &GgufFile, key: &'static str) -> Result<String, ChatTemplateError> {
    let Some(id) = gguf.opt_u64(key)? else { return Ok(String::new()) };
    let tokens = gguf.get_array("tokenizer.ggml.tokens")?;
    let token = usize::try_from(id).ok().and_then(|i| tokens.get(i));
    match token {
        Some(crate::gguf::Value::String(text)) => Ok(text.clone()),
        Some(_) => Err(GgufError::WrongType {
            key: "tokenizer.ggml.tokens".into(),
            expected: "array of strings",
            found: "array of other values",
        }
        .into()),
        None => Err(ChatTemplateError::TokenOutOfRange { key, id, vocab: tokens.len() }),
    }
}

/// A template's `raise_exception` becomes [`ChatTemplateError::Raised`]; anything else failed
/// in rendering.
fn render_error(err: minijinja::Error) -> ChatTemplateError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&err);
    while let Some(e) = source {
        if let Some(raised) = e.downcast_ref::<RaisedByTemplate>() {
            return ChatTemplateError::Raised { message: raised.0.clone() };
        }
        source = e.source();
    }
    ChatTemplateError::Render(err)
}

/// A message as templates see it, fields in llama.cpp's order.
#[derive(Serialize)]
struct TemplateMessage<'a> {
    role: &'a str,
    content: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_call_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<Vec<TemplateToolCall<'a>>>,
}

impl<'a> From<&'a ChatMessage> for TemplateMessage<'a> {
    fn from(m: &'a ChatMessage) -> Self {
        let calls = m.tool_calls.as_deref().filter(|calls| !calls.is_empty());
        Self {
            role: &m.role,
            content: m.content.as_deref().unwrap_or(""),
            name: non_empty(m.name.as_deref()),
            tool_call_id: non_empty(m.tool_call_id.as_deref()),
            tool_calls: calls.map(|calls| calls.iter().map(TemplateToolCall::from).collect()),
        }
    }
}

fn non_empty(s: Option<&str>) -> Option<&str> {
    s.filter(|s| !s.is_empty())
}

#[derive(Serialize)]
struct TemplateToolCall<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    function: TemplateFunctionCall<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
}

#[derive(Serialize)]
struct TemplateFunctionCall<'a> {
    name: &'a str,
    arguments: serde_json::Value,
}

impl<'a> From<&'a ToolCall> for TemplateToolCall<'a> {
    fn from(call: &'a ToolCall) -> Self {
        // OpenAI clients send arguments as a JSON string; templates expect the object. Text that
        // is not JSON (a model's malformed call kept in the history) stays as it is.
        let arguments = match &call.function.arguments {
            serde_json::Value::String(text) => {
                serde_json::from_str(text).unwrap_or_else(|_| serde_json::Value::String(text.clone()))
            }
            other => other.clone(),
        };
        Self {
            kind: "function",
            function: TemplateFunctionCall { name: &call.function.name, arguments },
            id: non_empty(call.id.as_deref()),
        }
    }
}

/// A tool as templates see it.
#[derive(Serialize)]
struct TemplateTool<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    function: TemplateFunction<'a>,
}

#[derive(Serialize)]
struct TemplateFunction<'a> {
    name: &'a str,
    description: &'a str,
    parameters: &'a serde_json::Value,
}

static EMPTY_PARAMETERS: std::sync::LazyLock<serde_json::Value> =
    std::sync::LazyLock::new(|| serde_json::Value::Object(serde_json::Map::new()));

impl<'a> TemplateTool<'a> {
    fn parse(index: usize, tool: &'a serde_json::Value) -> Result<Self, ChatTemplateError> {
        let invalid = |problem| ChatTemplateError::InvalidTool { index, problem };
        if tool.get("type").and_then(|t| t.as_str()) != Some("function") {
            return Err(invalid("its \"type\" is not \"function\""));
        }
        let function =
            tool.get("function").filter(|f| f.is_object()).ok_or(invalid("it has no \"function\" object"))?;
        let name =
            function.get("name").and_then(|n| n.as_str()).ok_or(invalid("its function has no \"name\" string"))?;
        let description = match function.get("description") {
            None | Some(serde_json::Value::Null) => "",
            Some(d) => d.as_str().ok_or(invalid("its function's \"description\" is not a string"))?,
        };
        let parameters = match function.get("parameters") {
            None | Some(serde_json::Value::Null) => &*EMPTY_PARAMETERS,
            Some(p) => p,
        };
        Ok(Self { kind: "function", function: TemplateFunction { name, description, parameters } })
    }
}

#[cfg(test)]
mod tests;
