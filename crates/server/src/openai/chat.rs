//! `POST /v1/chat/completions`, streamed and not.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::response::sse::Event;
use axum::response::{IntoResponse, Response};
use hearth_engine::chat_template::ChatMessage;
use hearth_grammar::ToolCall;
use serde_json::Value;

use super::types::{
    ChatChoice, ChatCompletion, ChatCompletionChunk, ChatCompletionRequest, ChunkChoice, Content, Delta, FunctionOut,
    RequestMessage, ResponseMessage, ToolCallDelta, ToolCallOut, UsageOut,
};
use super::{FLAVOR, check_unsupported, finish_reason};
use crate::error::{ApiError, ErrorKind, parse_body};
use crate::generation::{ChatPlan, ReplyShape, collect, new_id, plan_chat, submit, unix_time};
use crate::prompt::{OutputFormat, ToolChoice};
use crate::sampling::{SamplingParams, max_tokens};
use crate::sse::{EventConverter, json_event, sse_response};
use crate::state::AppState;
use crate::tool_calls::{Piece, ToolCallParser, parse_reply};
use crate::worker::{GenerationEvent, GenerationRequest};

/// Handles `POST /v1/chat/completions`.
pub async fn chat_completions(State(state): State<AppState>, body: Result<Bytes, BytesRejection>) -> Response {
    match respond(state, body).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

async fn respond(state: AppState, body: Result<Bytes, BytesRejection>) -> Result<Response, ApiError> {
    let req: ChatCompletionRequest = parse_body(FLAVOR, body)?;
    check_unsupported(req.n, req.frequency_penalty, req.presence_penalty)?;
    if req.logprobs == Some(true) {
        return Err(ApiError::invalid(FLAVOR, "logprobs: not supported"));
    }
    let messages = messages(req.messages)?;
    let tools = req.tools.unwrap_or_default();
    let choice = tool_choice(req.tool_choice.as_ref(), !tools.is_empty())?;
    let format = response_format(req.response_format.as_ref())?;
    let shape = ReplyShape {
        tools: &tools,
        choice: &choice,
        parallel_calls: req.parallel_tool_calls != Some(false),
        format: &format,
    };
    let ChatPlan { prompt, constraint } = plan_chat(&state, FLAVOR, messages, shape)?;
    let invalid = |m: String| ApiError::invalid(FLAVOR, m);
    let limit_field = if req.max_completion_tokens.is_some() { "max_completion_tokens" } else { "max_tokens" };
    let max_tokens =
        max_tokens(req.max_completion_tokens.or(req.max_tokens), limit_field, &state.limits).map_err(invalid)?;
    let sampling = SamplingParams {
        temperature: req.temperature,
        top_p: req.top_p,
        top_k: req.top_k,
        min_p: req.min_p,
        repeat_penalty: req.repeat_penalty,
        seed: req.seed,
    }
    .to_config(2.0)
    .map_err(invalid)?;
    let request = GenerationRequest {
        prompt: prompt.tokens,
        sampling,
        max_tokens,
        stop: req.stop.map(|s| s.into_vec()).unwrap_or_default(),
        ignore_eos: req.ignore_eos,
        constraint,
    };
    let events = submit(&state, FLAVOR, request)?;
    let reply = Reply { id: new_id("chatcmpl-"), created: unix_time(), model: state.model.id.clone() };
    if req.stream {
        let include_usage = req.stream_options.is_some_and(|o| o.include_usage);
        let converter = ChatStream {
            reply,
            prefix: prompt.reply_prefix,
            parser: prompt.tools_active.then(|| ToolCallParser::new(&prompt.tools)),
            calls: 0,
            include_usage,
        };
        return sse_response(events, converter, FLAVOR).await;
    }
    let done = collect(events, FLAVOR).await?;
    let text = format!("{}{}", prompt.reply_prefix, done.text);
    let (content, calls) = if prompt.tools_active { parse_reply(&text, &prompt.tools) } else { (text, Vec::new()) };
    let tool_calls: Vec<ToolCallOut> = calls.into_iter().map(tool_call_out).collect();
    let finish = if tool_calls.is_empty() { finish_reason(&done.reason) } else { "tool_calls" };
    let content = if !tool_calls.is_empty() && content.trim().is_empty() { None } else { Some(content) };
    Ok(Json(ChatCompletion {
        id: reply.id,
        object: "chat.completion",
        created: reply.created,
        model: reply.model,
        choices: vec![ChatChoice {
            index: 0,
            message: ResponseMessage { role: "assistant", content, tool_calls },
            finish_reason: finish,
            logprobs: None,
        }],
        usage: done.usage.into(),
    })
    .into_response())
}

/// The engine's messages from the request's; content parts other than text are refused.
fn messages(messages: Vec<RequestMessage>) -> Result<Vec<ChatMessage>, ApiError> {
    messages
        .into_iter()
        .enumerate()
        .map(|(i, m)| {
            let role = match m.role.as_str() {
                "developer" => "system".to_string(),
                "system" | "user" | "assistant" | "tool" => m.role,
                other => {
                    return Err(ApiError::invalid(
                        FLAVOR,
                        format!("messages[{i}].role: {other:?} is not one of system, developer, user, assistant, tool"),
                    ));
                }
            };
            let content = match m.content {
                None => None,
                Some(Content::Text(t)) => Some(t),
                Some(Content::Parts(parts)) => {
                    let mut text = String::new();
                    for (j, part) in parts.into_iter().enumerate() {
                        match (part.kind.as_str(), part.text) {
                            ("text", Some(t)) => text.push_str(&t),
                            (kind, _) => {
                                return Err(ApiError::invalid(
                                    FLAVOR,
                                    format!("messages[{i}].content[{j}]: parts of type {kind:?} are not supported (text only)"),
                                ));
                            }
                        }
                    }
                    Some(text)
                }
            };
            Ok(ChatMessage { role, content, tool_calls: m.tool_calls, tool_call_id: m.tool_call_id, name: m.name })
        })
        .collect()
}

/// `tool_choice`: absent means `auto` with tools, `none` without.
pub(crate) fn tool_choice(value: Option<&Value>, has_tools: bool) -> Result<ToolChoice, ApiError> {
    let bad = || {
        ApiError::invalid(
            FLAVOR,
            "tool_choice: expected \"none\", \"auto\", \"required\" or {\"type\": \"function\", \"function\": {\"name\": ...}}",
        )
    };
    Ok(match value {
        None | Some(Value::Null) => {
            if has_tools {
                ToolChoice::Auto
            } else {
                ToolChoice::None
            }
        }
        Some(Value::String(s)) => match s.as_str() {
            "none" => ToolChoice::None,
            "auto" => ToolChoice::Auto,
            "required" => ToolChoice::Required,
            _ => return Err(bad()),
        },
        Some(v) => match v.pointer("/function/name").and_then(Value::as_str) {
            Some(name) if v.get("type").and_then(Value::as_str) == Some("function") => {
                ToolChoice::Named(name.to_string())
            }
            _ => return Err(bad()),
        },
    })
}

/// `response_format`.
fn response_format(value: Option<&Value>) -> Result<OutputFormat, ApiError> {
    let Some(value) = value.filter(|v| !v.is_null()) else { return Ok(OutputFormat::Text) };
    match value.get("type").and_then(Value::as_str) {
        Some("text") => Ok(OutputFormat::Text),
        Some("json_object") => Ok(OutputFormat::JsonObject),
        Some("json_schema") => match value.pointer("/json_schema/schema") {
            Some(schema) if schema.is_object() => Ok(OutputFormat::JsonSchema(schema.clone())),
            _ => Err(ApiError::invalid(FLAVOR, "response_format.json_schema.schema: a JSON schema object is required")),
        },
        _ => Err(ApiError::invalid(
            FLAVOR,
            "response_format.type: expected \"text\", \"json_object\" or \"json_schema\"",
        )),
    }
}

fn tool_call_out(call: ToolCall) -> ToolCallOut {
    ToolCallOut {
        id: new_id("call_"),
        kind: "function",
        function: FunctionOut { name: call.name, arguments: call.arguments.to_string() },
    }
}

/// Fields every chunk repeats.
struct Reply {
    id: String,
    created: u64,
    model: String,
}

/// Generation events to `chat.completion.chunk` events.
struct ChatStream {
    reply: Reply,
    /// The forced start of the reply, sent as if generated once the request starts.
    prefix: String,
    parser: Option<ToolCallParser>,
    calls: usize,
    include_usage: bool,
}

impl ChatStream {
    fn chunk(&self, delta: Delta, finish_reason: Option<&'static str>) -> Event {
        json_event(&ChatCompletionChunk {
            id: self.reply.id.clone(),
            object: "chat.completion.chunk",
            created: self.reply.created,
            model: self.reply.model.clone(),
            choices: vec![ChunkChoice { index: 0, delta, finish_reason, logprobs: None }],
            usage: None,
        })
    }

    fn pieces(&mut self, pieces: Vec<Piece>, out: &mut Vec<Event>) {
        for piece in pieces {
            let delta = match piece {
                Piece::Text(text) => Delta { content: Some(text), ..Delta::default() },
                Piece::Call(call) => {
                    let ToolCallOut { id, kind, function } = tool_call_out(call);
                    let tool_calls = vec![ToolCallDelta { index: self.calls, id, kind, function }];
                    self.calls += 1;
                    Delta { tool_calls: Some(tool_calls), ..Delta::default() }
                }
            };
            out.push(self.chunk(delta, None));
        }
    }

    fn text(&mut self, text: &str, out: &mut Vec<Event>) {
        let pieces = match self.parser.as_mut() {
            Some(parser) => parser.push(text),
            None if text.is_empty() => Vec::new(),
            None => vec![Piece::Text(text.to_string())],
        };
        self.pieces(pieces, out);
    }
}

impl EventConverter for ChatStream {
    fn on_event(&mut self, event: GenerationEvent) -> (Vec<Event>, bool) {
        let mut out = Vec::new();
        match event {
            GenerationEvent::Started { .. } => {
                let delta = Delta { role: Some("assistant"), content: Some(String::new()), tool_calls: None };
                out.push(self.chunk(delta, None));
                let prefix = std::mem::take(&mut self.prefix);
                self.text(&prefix, &mut out);
            }
            GenerationEvent::Text(text) => self.text(&text, &mut out),
            GenerationEvent::Finished { reason, usage } => {
                if let Some(pieces) = self.parser.as_mut().map(ToolCallParser::finish) {
                    self.pieces(pieces, &mut out);
                }
                let finish = if self.calls > 0 { "tool_calls" } else { finish_reason(&reason) };
                out.push(self.chunk(Delta::default(), Some(finish)));
                if self.include_usage {
                    out.push(json_event(&ChatCompletionChunk {
                        id: self.reply.id.clone(),
                        object: "chat.completion.chunk",
                        created: self.reply.created,
                        model: self.reply.model.clone(),
                        choices: Vec::new(),
                        usage: Some(UsageOut::from(usage)),
                    }));
                }
                out.push(Event::default().data("[DONE]"));
                return (out, true);
            }
            GenerationEvent::Failed(f) => {
                out.push(json_event(&ApiError::new(FLAVOR, f.kind(), f.message).body()));
                out.push(Event::default().data("[DONE]"));
                return (out, true);
            }
        }
        (out, false)
    }

    fn on_lost(&mut self) -> Vec<Event> {
        let e =
            ApiError::new(FLAVOR, ErrorKind::Unavailable, "the engine worker stopped before the reply was complete");
        vec![json_event(&e.body()), Event::default().data("[DONE]")]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tool_choice_forms() {
        assert_eq!(tool_choice(None, true), Ok(ToolChoice::Auto));
        assert_eq!(tool_choice(None, false), Ok(ToolChoice::None));
        assert_eq!(tool_choice(Some(&json!("required")), true), Ok(ToolChoice::Required));
        let named = json!({"type": "function", "function": {"name": "f"}});
        assert_eq!(tool_choice(Some(&named), true), Ok(ToolChoice::Named("f".into())));
        assert!(tool_choice(Some(&json!("sometimes")), true).is_err());
    }

    #[test]
    fn response_formats() {
        assert_eq!(response_format(None), Ok(OutputFormat::Text));
        assert_eq!(response_format(Some(&json!({"type": "json_object"}))), Ok(OutputFormat::JsonObject));
        let schema = json!({"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}});
        assert_eq!(response_format(Some(&schema)), Ok(OutputFormat::JsonSchema(json!({"type": "object"}))));
        assert!(response_format(Some(&json!({"type": "json_schema"}))).is_err());
    }

    #[test]
    fn content_parts_are_joined_and_images_refused() {
        let ok: Vec<RequestMessage> = serde_json::from_value(json!([
            {"role": "developer", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}
        ]))
        .unwrap_or_default();
        let m = messages(ok);
        assert!(m.as_ref().is_ok_and(|m| m[0].role == "system" && m[0].content.as_deref() == Some("ab")), "{m:?}");
        let image: Vec<RequestMessage> =
            serde_json::from_value(json!([{"role": "user", "content": [{"type": "image_url"}]}])).unwrap_or_default();
        assert!(messages(image).is_err_and(|e| e.message.contains("messages[0].content[0]")));
    }
}
