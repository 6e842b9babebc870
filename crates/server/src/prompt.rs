//! From a chat request to prompt tokens: tools and output format, the chat template, and the
//! forced start of the reply that steers an unconstrained model.
//!
//! The instructions are written into the system message (for templates that do not render
//! tools themselves). When nothing enforces a tool call or JSON (`--unconstrained`), one more
//! honest nudge is used, visible in the prompt: for `tool_choice` required or a named tool, and
//! for JSON output, the assistant's reply is started for the model (`<tool_call>\n{"name": "`
//! ...). The forced text counts as part of the reply. When a [`crate::ConstraintProvider`]
//! enforces the format, the forced start is left out.

use hearth_engine::chat_template::ChatMessage;
use hearth_grammar::Tool;
pub use hearth_grammar::ToolChoice;
use serde_json::Value;

use crate::state::ServedModel;

/// The shape the reply must have.
#[derive(Debug, Clone, PartialEq)]
pub enum OutputFormat {
    /// Free text.
    Text,
    /// Any JSON object.
    JsonObject,
    /// JSON following this schema.
    JsonSchema(Value),
}

/// A rendered and tokenized chat prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatPrompt {
    /// The prompt tokens, ending with the forced start of the reply.
    pub tokens: Vec<u32>,
    /// The forced start of the reply: part of the reply's text, not generated.
    pub reply_prefix: String,
    /// Whether tool calls are to be parsed out of the reply.
    pub tools_active: bool,
    /// The tools offered.
    pub tools: Vec<Tool>,
}

/// The start of the reply that opens a tool call in the native format.
const TOOL_CALL_OPEN: &str = "<tool_call>\n";

/// Renders `messages` with `tools` for `model` and tokenizes the result. `enforcing` says a
/// constraint will shape the reply, so no forced start is added. Errors name the problem in
/// the request.
pub fn chat_prompt(
    model: &ServedModel,
    mut messages: Vec<ChatMessage>,
    tools: &[Tool],
    choice: &ToolChoice,
    format: &OutputFormat,
    enforcing: bool,
) -> Result<ChatPrompt, String> {
    if messages.is_empty() {
        return Err("messages: at least one message is needed".into());
    }
    match choice {
        ToolChoice::Required if tools.is_empty() => {
            return Err("tool_choice requires a tool call but no tools were given".into());
        }
        ToolChoice::Named(name) if !tools.iter().any(|t| &t.name == name) => {
            return Err(format!("tool_choice names the tool {name:?}, which is not among the tools given"));
        }
        _ => {}
    }
    let tools_active = !tools.is_empty() && *choice != ToolChoice::None;
    let mut system_notes = Vec::new();
    if tools_active && !model.template_renders_tools {
        system_notes.push(generic_tool_instructions(tools));
        messages = messages.into_iter().map(history_in_generic_format).collect();
    }
    match format {
        OutputFormat::Text => {}
        OutputFormat::JsonObject => system_notes.push("Reply with one JSON object and nothing else.".into()),
        OutputFormat::JsonSchema(schema) => system_notes
            .push(format!("Reply with one JSON value and nothing else. It must follow this JSON schema:\n{schema}")),
    }
    if !system_notes.is_empty() {
        add_to_system_message(&mut messages, &system_notes.join("\n\n"));
    }
    let described: Vec<Value> = tools.iter().map(Tool::to_openai).collect();
    let template_tools = if tools_active && model.template_renders_tools { Some(&described[..]) } else { None };
    let rendered = model.template.render(&messages, template_tools, true).map_err(|e| e.to_string())?;
    let reply_prefix = if enforcing { String::new() } else { forced_reply_start(choice, tools_active, format) };
    let tokens = model
        .tokenizer
        .encode(&format!("{rendered}{reply_prefix}"), true, true)
        .map_err(|e| format!("cannot tokenize the prompt: {e}"))?;
    Ok(ChatPrompt { tokens, reply_prefix, tools_active, tools: tools.to_vec() })
}

/// What the reply is started with when nothing enforces the format.
fn forced_reply_start(choice: &ToolChoice, tools_active: bool, format: &OutputFormat) -> String {
    match choice {
        ToolChoice::Required if tools_active => return format!("{TOOL_CALL_OPEN}{{\"name\": \""),
        ToolChoice::Named(name) if tools_active => {
            let name = Value::String(name.clone());
            return format!("{TOOL_CALL_OPEN}{{\"name\": {name}, \"arguments\": ");
        }
        _ => {}
    }
    let wants_object = match format {
        OutputFormat::Text => false,
        OutputFormat::JsonObject => true,
        OutputFormat::JsonSchema(schema) => {
            schema.get("type").and_then(Value::as_str) == Some("object") || schema.get("properties").is_some()
        }
    };
    if wants_object && !tools_active { "{".into() } else { String::new() }
}

/// Tool definitions and the call format, for templates that do not write tools themselves.
fn generic_tool_instructions(tools: &[Tool]) -> String {
    let mut text = String::from(
        "# Tools\n\nYou may call one or more functions to assist with the user query. \
         The functions available are:\n<tools>\n",
    );
    for tool in tools {
        text.push_str(&tool.to_openai().to_string());
        text.push('\n');
    }
    text.push_str(
        "</tools>\n\nTo call a function, reply with a JSON object holding its name and arguments \
         inside <tool_call></tool_call> tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": \
         <args-json-object>}\n</tool_call>",
    );
    text
}

/// Past tool calls and results written as text in the same format, for templates that drop
/// `tool_calls` and may not know the `tool` role.
fn history_in_generic_format(m: ChatMessage) -> ChatMessage {
    match m.role.as_str() {
        "assistant" if m.tool_calls.as_ref().is_some_and(|c| !c.is_empty()) => {
            let mut text = m.content.clone().unwrap_or_default();
            for call in m.tool_calls.iter().flatten() {
                let arguments = match &call.function.arguments {
                    Value::String(s) => serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.clone())),
                    other => other.clone(),
                };
                let body = serde_json::json!({"name": call.function.name, "arguments": arguments});
                if !text.is_empty() {
                    text.push('\n');
                }
                text.push_str(&format!("<tool_call>\n{body}\n</tool_call>"));
            }
            ChatMessage::assistant(text)
        }
        "tool" => ChatMessage::user(format!(
            "<tool_response>\n{}\n</tool_response>",
            m.content.as_deref().unwrap_or_default()
        )),
        _ => m,
    }
}

fn add_to_system_message(messages: &mut Vec<ChatMessage>, note: &str) {
    match messages.first_mut() {
        Some(first) if first.role == "system" => {
            let content = first.content.get_or_insert_with(String::new);
            if !content.is_empty() {
                content.push_str("\n\n");
            }
            content.push_str(note);
        }
        _ => messages.insert(0, ChatMessage::system(note)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_engine::chat_template::ToolCall;

    #[test]
    fn forced_starts() {
        let object = OutputFormat::JsonSchema(serde_json::json!({"type": "object"}));
        assert_eq!(forced_reply_start(&ToolChoice::Required, true, &OutputFormat::Text), "<tool_call>\n{\"name\": \"");
        assert_eq!(
            forced_reply_start(&ToolChoice::Named("get".into()), true, &OutputFormat::Text),
            "<tool_call>\n{\"name\": \"get\", \"arguments\": "
        );
        assert_eq!(forced_reply_start(&ToolChoice::Auto, true, &OutputFormat::Text), "");
        assert_eq!(forced_reply_start(&ToolChoice::Auto, false, &object), "{");
        let array = OutputFormat::JsonSchema(serde_json::json!({"type": "array"}));
        assert_eq!(forced_reply_start(&ToolChoice::Auto, false, &array), "");
    }

    #[test]
    fn tool_history_becomes_text() {
        let call = ToolCall::function(Some("c1".into()), "get", serde_json::json!("{\"a\": 1}"));
        let m = history_in_generic_format(ChatMessage::assistant_tool_calls(None, vec![call]));
        assert_eq!(m.content.as_deref(), Some("<tool_call>\n{\"name\":\"get\",\"arguments\":{\"a\":1}}\n</tool_call>"));
        let r = history_in_generic_format(ChatMessage::tool_result(Some("c1".into()), None, "42"));
        assert_eq!((r.role.as_str(), r.content.as_deref()), ("user", Some("<tool_response>\n42\n</tool_response>")));
    }

    #[test]
    fn notes_join_the_system_message() {
        let mut m = vec![ChatMessage::system("Be brief."), ChatMessage::user("hi")];
        add_to_system_message(&mut m, "JSON only.");
        assert_eq!(m[0].content.as_deref(), Some("Be brief.\n\nJSON only."));
        let mut m = vec![ChatMessage::user("hi")];
        add_to_system_message(&mut m, "JSON only.");
        assert_eq!((m.len(), m[0].role.as_str()), (2, "system"));
    }
}
