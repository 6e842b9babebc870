//! The Anthropic-compatible Messages API: `POST /v1/messages`, streamed with Anthropic's event
//! sequence (`message_start`, `content_block_start`/`delta`/`stop`, `message_delta`,
//! `message_stop`) or not, and `POST /v1/messages/count_tokens`.

pub mod stream;
pub mod types;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::response::{IntoResponse, Response};
use hearth_engine::chat_template::{ChatMessage, ToolCall};
use serde_json::{Value, json};

use crate::error::{ApiError, Flavor, parse_body};
use crate::generation::{ChatPlan, ReplyShape, collect, new_id, plan_chat, submit};
use crate::prompt::{ChatPrompt, OutputFormat, ToolChoice};
use crate::sampling::{SamplingParams, max_tokens};
use crate::sse::sse_response;
use crate::state::AppState;
use crate::tool_calls::parse_reply;
use crate::worker::{FinishReason, GenerationRequest};
use types::{InputBlock, MessageOut, MessagesRequest, OutputBlock, ToolChoiceParam, blocks, text_of};

const FLAVOR: Flavor = Flavor::Anthropic;

/// Handles `POST /v1/messages`.
pub async fn messages(State(state): State<AppState>, body: Result<Bytes, BytesRejection>) -> Response {
    match respond(state, body).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

/// Handles `POST /v1/messages/count_tokens`: the prompt's token count, nothing generated.
pub async fn count_tokens(State(state): State<AppState>, body: Result<Bytes, BytesRejection>) -> Response {
    let counted = parse_body::<MessagesRequest>(FLAVOR, body).and_then(|req| plan(&state, &req));
    match counted {
        Ok(plan) => Json(json!({"input_tokens": plan.prompt.tokens.len()})).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn respond(state: AppState, body: Result<Bytes, BytesRejection>) -> Result<Response, ApiError> {
    let req: MessagesRequest = parse_body(FLAVOR, body)?;
    let invalid = |m: String| ApiError::invalid(FLAVOR, m);
    let Some(requested) = req.max_tokens else {
        return Err(invalid("max_tokens: required".into()));
    };
    let max_tokens = max_tokens(Some(requested), "max_tokens", &state.limits).map_err(invalid)?;
    let sampling = SamplingParams {
        temperature: req.temperature,
        top_p: req.top_p,
        top_k: req.top_k,
        ..SamplingParams::default()
    }
    .to_config(1.0)
    .map_err(invalid)?;
    let ChatPlan { prompt, constraint } = plan(&state, &req)?;
    let request = GenerationRequest {
        prompt: prompt.tokens.clone(),
        sampling,
        max_tokens,
        stop: req.stop_sequences.clone().unwrap_or_default(),
        ignore_eos: false,
        constraint,
    };
    let events = submit(&state, FLAVOR, request)?;
    let id = new_id("msg_");
    if req.stream {
        let converter = stream::MessageStream::new(id, state.model.id.clone(), prompt);
        return sse_response(events, converter, FLAVOR).await;
    }
    let done = collect(events, FLAVOR).await?;
    let (content, stop_reason, stop_sequence) = reply_blocks(&prompt, &done.text, &done.reason);
    Ok(Json(MessageOut {
        id,
        kind: "message",
        role: "assistant",
        model: state.model.id.clone(),
        content,
        stop_reason: Some(stop_reason),
        stop_sequence,
        usage: done.usage.into(),
    })
    .into_response())
}

/// The reply as content blocks, with `stop_reason` and `stop_sequence`.
fn reply_blocks(
    prompt: &ChatPrompt,
    generated: &str,
    reason: &FinishReason,
) -> (Vec<OutputBlock>, &'static str, Option<String>) {
    let text = format!("{}{generated}", prompt.reply_prefix);
    let (text, calls) = if prompt.tools_active { parse_reply(&text, &prompt.tools) } else { (text, Vec::new()) };
    let mut content = Vec::new();
    if !text.trim().is_empty() || calls.is_empty() {
        content.push(OutputBlock::Text { text });
    }
    let used_tools = !calls.is_empty();
    content.extend(calls.into_iter().map(|c| OutputBlock::ToolUse {
        id: new_id("toolu_"),
        name: c.name,
        input: c.arguments,
    }));
    let (stop_reason, stop_sequence) = stop_reason(reason, used_tools);
    (content, stop_reason, stop_sequence)
}

/// `stop_reason` and `stop_sequence` for how generation ended.
pub(crate) fn stop_reason(reason: &FinishReason, used_tools: bool) -> (&'static str, Option<String>) {
    match reason {
        _ if used_tools => ("tool_use", None),
        FinishReason::EndOfTurn => ("end_turn", None),
        FinishReason::StopString(s) => ("stop_sequence", Some(s.clone())),
        FinishReason::Length => ("max_tokens", None),
    }
}

/// The prompt for a request.
fn plan(state: &AppState, req: &MessagesRequest) -> Result<ChatPlan, ApiError> {
    let invalid = |m: String| ApiError::invalid(FLAVOR, m);
    let mut messages = Vec::new();
    if let Some(system) = &req.system {
        let text = text_of(system).map_err(|e| invalid(format!("system{e}")))?;
        if !text.is_empty() {
            messages.push(ChatMessage::system(text));
        }
    }
    let mut tool_names_by_id = std::collections::HashMap::new();
    for (i, m) in req.messages.iter().enumerate() {
        let blocks = blocks(&m.content).map_err(|e| invalid(format!("messages[{i}].{e}")))?;
        match m.role.as_str() {
            "user" => user_messages(i, blocks, &tool_names_by_id, &mut messages)?,
            "assistant" => {
                let mut text = String::new();
                let mut calls = Vec::new();
                for block in blocks {
                    match block {
                        InputBlock::Text { text: t } => text.push_str(&t),
                        InputBlock::ToolUse { id, name, input } => {
                            tool_names_by_id.insert(id.clone(), name.clone());
                            calls.push(ToolCall::function(Some(id), name, input));
                        }
                        InputBlock::ToolResult { .. } => {
                            return Err(invalid(format!("messages[{i}]: tool_result blocks belong in user messages")));
                        }
                    }
                }
                let content = if text.is_empty() && !calls.is_empty() { None } else { Some(text) };
                messages.push(if calls.is_empty() {
                    ChatMessage::assistant(content.unwrap_or_default())
                } else {
                    ChatMessage::assistant_tool_calls(content, calls)
                });
            }
            other => return Err(invalid(format!("messages[{i}].role: {other:?} is not \"user\" or \"assistant\""))),
        }
    }
    let mut tools = Vec::new();
    for (i, tool) in req.tools.iter().flatten().enumerate() {
        if tool.kind.as_deref().is_some_and(|k| k != "custom") {
            return Err(invalid(format!("tools[{i}]: server tools ({:?}) are not supported", tool.kind)));
        }
        tools.push(json!({"type": "function", "function": {
            "name": tool.name,
            "description": tool.description.clone().unwrap_or_default(),
            "parameters": tool.input_schema.clone().unwrap_or_else(|| json!({"type": "object"})),
        }}));
    }
    let choice = match &req.tool_choice {
        None | Some(ToolChoiceParam::Auto { .. }) if !tools.is_empty() => ToolChoice::Auto,
        None | Some(ToolChoiceParam::Auto { .. }) | Some(ToolChoiceParam::None {}) => ToolChoice::None,
        Some(ToolChoiceParam::Any { .. }) => ToolChoice::Required,
        Some(ToolChoiceParam::Tool { name, .. }) => ToolChoice::Named(name.clone()),
    };
    let format = match req.output_config.as_ref().and_then(|c| c.get("format")).filter(|f| !f.is_null()) {
        None => OutputFormat::Text,
        Some(f) => match (f.get("type").and_then(Value::as_str), f.get("schema")) {
            (Some("json_schema"), Some(schema)) if schema.is_object() => OutputFormat::JsonSchema(schema.clone()),
            _ => {
                return Err(invalid(
                    "output_config.format: expected {\"type\": \"json_schema\", \"schema\": {...}}".into(),
                ));
            }
        },
    };
    let parallel_calls = !req.tool_choice.as_ref().is_some_and(ToolChoiceParam::disables_parallel_use);
    plan_chat(state, FLAVOR, messages, ReplyShape { tools: &tools, choice: &choice, parallel_calls, format: &format })
}

/// A user message's blocks: text joins into user turns, tool results become `tool` turns.
fn user_messages(
    i: usize,
    blocks: Vec<InputBlock>,
    tool_names_by_id: &std::collections::HashMap<String, String>,
    messages: &mut Vec<ChatMessage>,
) -> Result<(), ApiError> {
    let mut text = String::new();
    for (j, block) in blocks.into_iter().enumerate() {
        match block {
            InputBlock::Text { text: t } => text.push_str(&t),
            InputBlock::ToolResult { tool_use_id, content, is_error } => {
                if !text.is_empty() {
                    messages.push(ChatMessage::user(std::mem::take(&mut text)));
                }
                let mut result = text_of(content.as_ref().unwrap_or(&Value::Null))
                    .map_err(|e| ApiError::invalid(FLAVOR, format!("messages[{i}].content[{j}].content{e}")))?;
                if is_error == Some(true) {
                    result = format!("Error: {result}");
                }
                let name = tool_names_by_id.get(&tool_use_id).cloned();
                messages.push(ChatMessage::tool_result(Some(tool_use_id), name, result));
            }
            InputBlock::ToolUse { .. } => {
                return Err(ApiError::invalid(
                    FLAVOR,
                    format!("messages[{i}].content[{j}]: tool_use blocks belong in assistant messages"),
                ));
            }
        }
    }
    if !text.is_empty() {
        messages.push(ChatMessage::user(text));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_reasons() {
        assert_eq!(stop_reason(&FinishReason::EndOfTurn, false), ("end_turn", None));
        assert_eq!(stop_reason(&FinishReason::Length, false), ("max_tokens", None));
        assert_eq!(stop_reason(&FinishReason::StopString("X".into()), false), ("stop_sequence", Some("X".into())));
        assert_eq!(stop_reason(&FinishReason::EndOfTurn, true), ("tool_use", None));
    }

    #[test]
    fn tool_results_become_tool_turns() {
        let blocks = blocks(&json!([
            {"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": "42"}]},
            {"type": "text", "text": "thanks"}
        ]))
        .unwrap_or_default();
        let names = [("t1".to_string(), "calc".to_string())].into_iter().collect();
        let mut out = Vec::new();
        assert!(user_messages(0, blocks, &names, &mut out).is_ok());
        assert_eq!(out.len(), 2);
        assert_eq!(
            (out[0].role.as_str(), out[0].name.as_deref(), out[0].content.as_deref()),
            ("tool", Some("calc"), Some("42"))
        );
        assert_eq!(out[1].content.as_deref(), Some("thanks"));
    }

    #[test]
    fn unknown_blocks_are_named() {
        let e = blocks(&json!([{"type": "text", "text": "a"}, {"type": "image", "source": {}}]));
        assert!(e.is_err_and(|e| e.starts_with("content[1]") && e.contains("unknown variant `image`")));
    }
}
