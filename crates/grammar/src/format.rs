//! How a model writes tool calls: its native format, or hearth's generic one.
//!
//! Both write each call as a JSON object `{"name": ..., "arguments": {...}}` on its own line
//! between `<tool_call>` and `</tool_call>`, with calls separated by a newline:
//!
//! ```text
//! <tool_call>
//! {"name": "read_file", "arguments": {"path": "src/main.rs"}}
//! </tool_call>
//! ```
//!
//! In the **Qwen** format (Qwen2.5 and its Hermes-style template) the two tags are single
//! special tokens of the vocabulary and the template itself lists the tools in the system
//! prompt. In the **generic** format, for models whose template knows no tools (SmolLM2,
//! Gemma 3), the tags are plain text and [`ToolCallFormat::system_instructions`] gives the text
//! that describes the tools and the format, to be put into the system prompt.
//!
//! With `ToolChoice::Auto`, a Qwen reply may start with text and go on with calls (text cannot
//! contain the special opening token, so the switch is unambiguous); a generic reply is either
//! text, which never contains `<tool_call>`, or calls only.

use hearth_engine::Tokenizer;

use crate::tools::Tool;

/// Opening tag of a tool call.
pub const CALL_OPEN: &str = "<tool_call>";
/// Closing tag of a tool call.
pub const CALL_CLOSE: &str = "</tool_call>";

/// A model's tool-call format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolCallFormat {
    /// Qwen2.5: `<tool_call>` and `</tool_call>` are special tokens; the template lists tools.
    Qwen,
    /// hearth's documented format for models without native tool calls: the same layout in
    /// plain text, described in the system prompt.
    Generic,
}

impl ToolCallFormat {
    /// The format for a manifest's `tool_format` value (`"qwen"`, `"generic"`).
    pub fn from_manifest(name: &str) -> Option<Self> {
        match name {
            "qwen" | "hermes" => Some(Self::Qwen),
            "generic" => Some(Self::Generic),
            _ => None,
        }
    }

    /// The format a model's chat template and vocabulary support, for models without a
    /// manifest: Qwen's when the template writes `<tool_call>` and both tags are single tokens.
    pub fn detect(chat_template: Option<&str>, tokenizer: &Tokenizer) -> Self {
        let template_calls = chat_template.is_some_and(|t| t.contains(CALL_OPEN) && t.contains("tools"));
        let tags_are_tokens = tokenizer.token_id(CALL_OPEN).is_some() && tokenizer.token_id(CALL_CLOSE).is_some();
        if template_calls && tags_are_tokens { Self::Qwen } else { Self::Generic }
    }

    /// Whether the model's chat template renders the tool list itself (else the system prompt
    /// must carry [`Self::system_instructions`]).
    pub fn template_lists_tools(self) -> bool {
        matches!(self, Self::Qwen)
    }

    /// Text for the system prompt that lists `tools` and tells the model how to call them.
    /// Needed for [`ToolCallFormat::Generic`]; Qwen's template writes its own.
    pub fn system_instructions(self, tools: &[Tool]) -> String {
        let mut out = String::from(
            "You can call tools. To call one, answer with only this, one call per block:\n\
             <tool_call>\n\
             {\"name\": \"TOOL_NAME\", \"arguments\": {ARGUMENTS_AS_JSON}}\n\
             </tool_call>\n\n\
             Tools (name: description; arguments as JSON schema):\n",
        );
        for tool in tools {
            let schema = serde_json::to_string(&tool.parameters).unwrap_or_default();
            out.push_str(&format!("- {}: {}; arguments: {schema}\n", tool.name, tool.description));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn manifest_names() {
        assert_eq!(ToolCallFormat::from_manifest("qwen"), Some(ToolCallFormat::Qwen));
        assert_eq!(ToolCallFormat::from_manifest("generic"), Some(ToolCallFormat::Generic));
        assert_eq!(ToolCallFormat::from_manifest("llama3"), None);
    }

    #[test]
    fn detection_needs_a_tool_template_and_tag_tokens() {
        let tok = crate::test_vocab::tokenizer();
        let qwen_like = "{% if tools %}<tools>{% endif %} <tool_call>";
        assert_eq!(ToolCallFormat::detect(Some(qwen_like), &tok), ToolCallFormat::Qwen);
        assert_eq!(ToolCallFormat::detect(Some("{{ messages }}"), &tok), ToolCallFormat::Generic);
        assert_eq!(ToolCallFormat::detect(None, &tok), ToolCallFormat::Generic);
    }

    #[test]
    fn instructions_name_every_tool_and_the_tags() {
        let tools = [
            Tool::new("read_file", "Read a file", json!({"type": "object"})).unwrap(),
            Tool::new("grep", "Search", json!({"type": "object", "properties": {"q": {"type": "string"}}})).unwrap(),
        ];
        let text = ToolCallFormat::Generic.system_instructions(&tools);
        assert!(text.contains("- read_file: Read a file"), "{text}");
        assert!(text.contains(r#"{"type":"object","properties":{"q":{"type":"string"}}}"#), "{text}");
        assert!(text.contains(CALL_OPEN) && text.contains(CALL_CLOSE));
    }
}
