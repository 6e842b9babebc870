//! The chat protocol types templates render: messages, tool calls and their OpenAI JSON shape.
//!
//! They serialize to what Hugging Face chat templates read (`message.role`, `message.content`,
//! `message.tool_calls[i].function.arguments`, ...), and deserialize from OpenAI chat requests,
//! so the agent and the server can share them.

use serde::{Deserialize, Serialize};

/// One turn of a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// `system`, `user`, `assistant` or `tool`.
    pub role: String,
    /// The text; `None` for an assistant turn that only calls tools.
    #[serde(default)]
    pub content: Option<String>,
    /// The calls an assistant turn makes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCall>>,
    /// For a tool result: the id of the call it answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    /// For a tool result: the name of the tool that produced it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl ChatMessage {
    /// A message with `role` and text `content`.
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        Self { role: role.into(), content: Some(content.into()), tool_calls: None, tool_call_id: None, name: None }
    }

    /// A system message.
    pub fn system(content: impl Into<String>) -> Self {
        Self::new("system", content)
    }

    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        Self::new("user", content)
    }

    /// An assistant reply in text.
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::new("assistant", content)
    }

    /// An assistant turn that calls tools, with optional text before the calls.
    pub fn assistant_tool_calls(content: Option<String>, calls: Vec<ToolCall>) -> Self {
        Self { role: "assistant".into(), content, tool_calls: Some(calls), tool_call_id: None, name: None }
    }

    /// The result of the tool call `call_id` to tool `name`.
    pub fn tool_result(call_id: Option<String>, name: Option<String>, content: impl Into<String>) -> Self {
        Self { role: "tool".into(), content: Some(content.into()), tool_calls: None, tool_call_id: call_id, name }
    }
}

/// A call an assistant makes to a tool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The id tool results refer back to, when the caller assigned one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Always `function`, the only kind of tool in the OpenAI protocol.
    #[serde(rename = "type", default = "function_kind")]
    pub kind: String,
    /// The function called and its arguments.
    pub function: FunctionCall,
}

impl ToolCall {
    /// A call to function `name` with `arguments` (a JSON object, or a string holding one).
    pub fn function(id: Option<String>, name: impl Into<String>, arguments: serde_json::Value) -> Self {
        Self { id, kind: function_kind(), function: FunctionCall { name: name.into(), arguments } }
    }
}

fn function_kind() -> String {
    "function".into()
}

/// The function a tool call names and the arguments it passes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionCall {
    /// The tool's name.
    pub name: String,
    /// The arguments: a JSON object, or (as OpenAI clients send them) a string holding one.
    pub arguments: serde_json::Value,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn openai_messages_round_trip() {
        let wire = serde_json::json!([
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function",
                 "function": {"name": "read_file", "arguments": "{\"path\": \"a.rs\"}"}}
            ]},
            {"role": "tool", "tool_call_id": "call_1", "name": "read_file", "content": "fn main() {}"},
        ]);
        let messages: Vec<ChatMessage> = serde_json::from_value(wire.clone()).unwrap();
        assert_eq!(messages[0].content, None);
        let call = &messages[0].tool_calls.as_ref().unwrap()[0];
        assert_eq!(call.kind, "function");
        assert_eq!(call.function.arguments, serde_json::json!("{\"path\": \"a.rs\"}"));
        assert_eq!(messages[1].tool_call_id.as_deref(), Some("call_1"));
        assert_eq!(serde_json::to_value(&messages).unwrap(), wire);
    }

    #[test]
    fn tool_call_type_defaults_to_function() {
        let call: ToolCall = serde_json::from_str(r#"{"function": {"name": "f", "arguments": {}}}"#).unwrap();
        assert_eq!(call.kind, "function");
        assert_eq!(call.id, None);
    }
}
