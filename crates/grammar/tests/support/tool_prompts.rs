//! The tool-call prompt set shared by the validity example, the benchmark and the integration
//! tests: 25 tools with varied argument schemas (`fixtures/tool_prompts.json`) and user
//! requests made from each tool's templates by filling their slots.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use hearth_grammar::Tool;
use serde_json::Value;

/// Tools are shown to the model in groups of this many, the target tool among them.
pub const GROUP_SIZE: usize = 5;

/// One request that should be answered with a call of `tool`.
#[derive(Debug, Clone)]
pub struct ToolPrompt {
    /// Index of the expected tool in [`PromptSet::tools`].
    pub tool: usize,
    /// Index of the tool group shown with the request.
    pub group: usize,
    /// The user's message.
    pub user: String,
}

/// The tools and their request templates.
pub struct PromptSet {
    pub tools: Vec<Tool>,
    templates: Vec<Vec<String>>,
    fill: serde_json::Map<String, Value>,
}

impl PromptSet {
    /// The set from the fixture.
    pub fn load() -> Self {
        let fixture: Value = serde_json::from_str(include_str!("../../fixtures/tool_prompts.json")).unwrap();
        let mut tools = Vec::new();
        let mut templates = Vec::new();
        for t in fixture["tools"].as_array().unwrap() {
            tools.push(
                Tool::new(t["name"].as_str().unwrap(), t["description"].as_str().unwrap(), t["parameters"].clone())
                    .unwrap(),
            );
            templates.push(t["prompts"].as_array().unwrap().iter().map(|p| p.as_str().unwrap().to_string()).collect());
        }
        Self { tools, templates, fill: fixture["fill"].as_object().unwrap().clone() }
    }

    /// The tools of group `g`.
    pub fn group(&self, g: usize) -> &[Tool] {
        let start = g * GROUP_SIZE;
        &self.tools[start..(start + GROUP_SIZE).min(self.tools.len())]
    }

    /// Number of groups.
    pub fn groups(&self) -> usize {
        self.tools.len().div_ceil(GROUP_SIZE)
    }

    /// The first `n` requests: tools in turn, templates in turn, slots filled by a simple hash
    /// of the request's index so that requests differ.
    pub fn prompts(&self, n: usize) -> Vec<ToolPrompt> {
        (0..n)
            .map(|i| {
                let tool = i % self.tools.len();
                let round = i / self.tools.len();
                let templates = &self.templates[tool];
                let template = &templates[round % templates.len()];
                ToolPrompt { tool, group: tool / GROUP_SIZE, user: self.fill_slots(template, i) }
            })
            .collect()
    }

    fn fill_slots(&self, template: &str, seed: usize) -> String {
        let mut out = String::new();
        let mut rest = template;
        let mut k = 0usize;
        while let Some(open) = rest.find('{') {
            let Some(close) = rest[open..].find('}') else { break };
            let slot = &rest[open + 1..open + close];
            out.push_str(&rest[..open]);
            match self.fill.get(slot).and_then(Value::as_array) {
                Some(values) => {
                    let h = seed.wrapping_mul(2654435761).wrapping_add(k.wrapping_mul(40503)) >> 7;
                    out.push_str(values[h % values.len()].as_str().unwrap());
                }
                None => out.push_str(&rest[open..=open + close]),
            }
            rest = &rest[open + close + 1..];
            k += 1;
        }
        out.push_str(rest);
        out
    }
}
