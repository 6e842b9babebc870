//! Tools a model may call, and which of them it must or may call.

use serde_json::{Value, json};

use crate::error::{GrammarError, Result};

/// A tool the model may call: its name, what it does, and the JSON schema of its arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Tool {
    /// The name the model writes in a call.
    pub name: String,
    /// What the tool does, for the model.
    pub description: String,
    /// JSON schema of the arguments object (`{"type": "object", "properties": ...}`).
    pub parameters: Value,
    /// String arguments that must be an exact substring of a given text.
    pub substring_arguments: Vec<SubstringArgument>,
}

/// "The value of this string argument is an exact substring of this text" — how the edit tool's
/// `old_string` is made to exist in the file being edited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubstringArgument {
    /// The top-level property of the arguments object.
    pub argument: String,
    /// The text the value must be a non-empty substring of.
    pub text: String,
}

impl Tool {
    /// A tool with an argument schema; the schema must describe a JSON object.
    pub fn new(name: impl Into<String>, description: impl Into<String>, parameters: Value) -> Result<Self> {
        let tool =
            Self { name: name.into(), description: description.into(), parameters, substring_arguments: Vec::new() };
        tool.check()?;
        Ok(tool)
    }

    /// A tool from an OpenAI function tool, `{"type": "function", "function": {"name",
    /// "description", "parameters"}}`, or the bare `function` object.
    pub fn from_openai(value: &Value) -> Result<Self> {
        let function = value.get("function").unwrap_or(value);
        let name = function
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| GrammarError::InvalidTool { tool: String::new(), problem: "no \"name\" string".into() })?;
        let description = function.get("description").and_then(Value::as_str).unwrap_or_default();
        let parameters = function.get("parameters").cloned().unwrap_or_else(|| json!({"type": "object"}));
        Self::new(name, description, parameters)
    }

    /// This tool as an OpenAI function tool, the shape chat templates take.
    pub fn to_openai(&self) -> Value {
        json!({
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        })
    }

    /// Constrains the top-level string argument `argument` to a non-empty exact substring of
    /// `text`. The argument must be a string property of the schema.
    pub fn with_substring_argument(mut self, argument: impl Into<String>, text: impl Into<String>) -> Result<Self> {
        let argument = argument.into();
        let is_string = self.properties().and_then(|p| p.get(&argument)).is_some_and(|schema| {
            schema.get("type").and_then(Value::as_str) == Some("string") || schema.get("type").is_none()
        });
        if !is_string {
            return Err(GrammarError::UnknownArgument { tool: self.name.clone(), argument });
        }
        self.substring_arguments.retain(|s| s.argument != argument);
        self.substring_arguments.push(SubstringArgument { argument, text: text.into() });
        Ok(self)
    }

    /// The schema's top-level `properties`, if any.
    pub fn properties(&self) -> Option<&serde_json::Map<String, Value>> {
        self.parameters.get("properties").and_then(Value::as_object)
    }

    /// The schema's `required` property names.
    pub fn required(&self) -> Vec<&str> {
        self.parameters
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    }

    fn check(&self) -> Result<()> {
        let invalid = |problem: &str| GrammarError::InvalidTool { tool: self.name.clone(), problem: problem.into() };
        if self.name.is_empty() {
            return Err(invalid("the name is empty"));
        }
        if self.name.chars().any(char::is_control) {
            return Err(invalid("the name contains control characters"));
        }
        let Some(schema) = self.parameters.as_object() else {
            return Err(invalid("the parameters are not a JSON schema object"));
        };
        match schema.get("type") {
            None => {}
            Some(Value::String(t)) if t == "object" => {}
            Some(other) => return Err(invalid(&format!("the parameters have type {other}, not \"object\""))),
        }
        if let Some(props) = schema.get("properties")
            && !props.is_object()
        {
            return Err(invalid("\"properties\" is not an object"));
        }
        Ok(())
    }
}

/// Whether and which tool the model must call (OpenAI's `tool_choice`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ToolChoice {
    /// Free text, or one or more tool calls.
    #[default]
    Auto,
    /// One or more tool calls and nothing else.
    Required,
    /// Free text only; no tool call.
    None,
    /// Exactly one call of the named tool.
    Named(String),
}

/// Checks that tool names are unique and that a named choice exists.
pub(crate) fn check_tools(tools: &[Tool], choice: &ToolChoice) -> Result<()> {
    for (i, tool) in tools.iter().enumerate() {
        tool.check()?;
        if tools[..i].iter().any(|t| t.name == tool.name) {
            return Err(GrammarError::InvalidTool {
                tool: tool.name.clone(),
                problem: "the name is used twice".into(),
            });
        }
    }
    match choice {
        ToolChoice::Required if tools.is_empty() => Err(GrammarError::NoTools),
        ToolChoice::Named(name) if !tools.iter().any(|t| &t.name == name) => Err(GrammarError::UnknownTool {
            name: name.clone(),
            known: tools.iter().map(|t| t.name.as_str()).collect::<Vec<_>>().join(", "),
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn read_file() -> Tool {
        Tool::new(
            "read_file",
            "Read a file",
            json!({"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}),
        )
        .unwrap()
    }

    #[test]
    fn openai_round_trip() {
        let tool = read_file();
        assert_eq!(Tool::from_openai(&tool.to_openai()).unwrap(), tool);
    }

    #[test]
    fn non_object_schemas_and_empty_names_are_rejected() {
        assert!(matches!(Tool::new("", "", json!({})), Err(GrammarError::InvalidTool { .. })));
        assert!(matches!(Tool::new("f", "", json!({"type": "string"})), Err(GrammarError::InvalidTool { .. })));
        assert!(matches!(Tool::new("f", "", json!([1])), Err(GrammarError::InvalidTool { .. })));
        assert!(matches!(Tool::from_openai(&json!({"function": {}})), Err(GrammarError::InvalidTool { .. })));
    }

    #[test]
    fn duplicate_names_and_unknown_choices_are_errors() {
        let tools = [read_file(), read_file()];
        assert!(matches!(check_tools(&tools, &ToolChoice::Auto), Err(GrammarError::InvalidTool { .. })));
        let err = check_tools(&tools[..1], &ToolChoice::Named("write_file".into())).unwrap_err();
        assert!(matches!(err, GrammarError::UnknownTool { .. }));
        assert!(err.to_string().contains("read_file"), "{err}");
        assert!(matches!(check_tools(&[], &ToolChoice::Required), Err(GrammarError::NoTools)));
    }

    #[test]
    fn substring_arguments_must_be_string_properties() {
        assert!(read_file().with_substring_argument("path", "src/main.rs").is_ok());
        let err = read_file().with_substring_argument("line", "x").unwrap_err();
        assert!(matches!(err, GrammarError::UnknownArgument { .. }));
    }
}
