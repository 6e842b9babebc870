//! Constrained decoding: a [`ConstraintProvider`] builds, from a request's tools or JSON schema,
//! the engine's [`TokenConstraint`] that limits which tokens its sequence may sample.
//!
//! [`GrammarConstraints`] enforces tool calls and JSON output with the grammar crate, so a tool
//! call's arguments follow its schema by construction. [`Unconstrained`] leaves decoding free
//! (`hearth serve --unconstrained`, for comparisons): tool calls and JSON are then whatever the
//! model writes, nudged by prompt text and a forced start of the reply (see [`crate::prompt`]).
//! `/health` reports which mode is on (`constrained_decoding`).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use hearth_engine::Tokenizer;
pub use hearth_engine::constraint::TokenConstraint;
use hearth_grammar::{
    CompiledGrammar, GrammarConstraint, GrammarEnv, GrammarError, Tool, ToolCallFormat, ToolCallGrammar, ToolChoice,
};
use serde_json::Value;

/// Errors of a constraint provider; the message is shown to the client.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConstraintError(pub String);

/// Builds constraints for requests.
pub trait ConstraintProvider: Send + Sync {
    /// Whether constraints from this provider are enforced while decoding (false: unconstrained).
    fn is_enforcing(&self) -> bool;
    /// A constraint allowing free text and/or calls to `tools` in the model's format, as
    /// `choice` asks; at most one call unless `parallel_calls`. `None` leaves decoding free.
    fn tool_calls(
        &self,
        tools: &[Tool],
        choice: &ToolChoice,
        parallel_calls: bool,
    ) -> Result<Option<Box<dyn TokenConstraint>>, ConstraintError>;
    /// A constraint making the reply a JSON value following `schema` (`None`: any JSON object).
    fn json(&self, schema: Option<&Value>) -> Result<Option<Box<dyn TokenConstraint>>, ConstraintError>;
}

/// No constraint: free decoding.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unconstrained;

impl ConstraintProvider for Unconstrained {
    fn is_enforcing(&self) -> bool {
        false
    }

    fn tool_calls(
        &self,
        _tools: &[Tool],
        _choice: &ToolChoice,
        _parallel_calls: bool,
    ) -> Result<Option<Box<dyn TokenConstraint>>, ConstraintError> {
        Ok(None)
    }

    fn json(&self, _schema: Option<&Value>) -> Result<Option<Box<dyn TokenConstraint>>, ConstraintError> {
        Ok(None)
    }
}

/// Compiled grammars kept for reuse: clients resend the same tools with every request, and
/// compiling is the costly part (milliseconds to tens of them), starting a session is not.
const CACHED_GRAMMARS: usize = 32;

/// Tool calls and JSON output enforced by llguidance grammars over the model's vocabulary.
pub struct GrammarConstraints {
    env: GrammarEnv,
    format: ToolCallFormat,
    /// Most recently used last.
    cache: Mutex<VecDeque<(String, Arc<CompiledGrammar>)>>,
}

impl std::fmt::Debug for GrammarConstraints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrammarConstraints").field("format", &self.format).finish_non_exhaustive()
    }
}

impl GrammarConstraints {
    /// Grammars over `tokenizer`'s vocabulary, with tool calls written in `format`.
    pub fn new(tokenizer: &Tokenizer, format: ToolCallFormat) -> Result<Self, GrammarError> {
        Ok(Self { env: GrammarEnv::new(tokenizer)?, format, cache: Mutex::default() })
    }

    /// The tool-call format the grammars enforce.
    pub fn format(&self) -> ToolCallFormat {
        self.format
    }

    /// The grammar cached under `key`, or `compile`d and cached.
    fn compiled(
        &self,
        key: String,
        compile: impl FnOnce() -> Result<CompiledGrammar, ConstraintError>,
    ) -> Result<Arc<CompiledGrammar>, ConstraintError> {
        if let Some(found) = self.take_cached(&key) {
            return Ok(found);
        }
        // Compiled outside the lock, so one slow grammar does not hold up other requests.
        let compiled = Arc::new(compile()?);
        if let Ok(mut cache) = self.cache.lock()
            && !cache.iter().any(|(k, _)| *k == key)
        {
            if cache.len() == CACHED_GRAMMARS {
                cache.pop_front();
            }
            cache.push_back((key, compiled.clone()));
        }
        Ok(compiled)
    }

    /// The cached grammar for `key`, marked most recently used.
    fn take_cached(&self, key: &str) -> Option<Arc<CompiledGrammar>> {
        let mut cache = self.cache.lock().ok()?;
        let at = cache.iter().position(|(k, _)| k == key)?;
        let entry = cache.remove(at)?;
        let found = entry.1.clone();
        cache.push_back(entry);
        Some(found)
    }

    /// Number of grammars in the cache.
    pub fn cached_grammars(&self) -> usize {
        self.cache.lock().map(|c| c.len()).unwrap_or_default()
    }
}

fn constraint(compiled: &CompiledGrammar) -> Option<Box<dyn TokenConstraint>> {
    Some(Box::new(GrammarConstraint::new(compiled.session())))
}

impl ConstraintProvider for GrammarConstraints {
    fn is_enforcing(&self) -> bool {
        true
    }

    fn tool_calls(
        &self,
        tools: &[Tool],
        choice: &ToolChoice,
        parallel_calls: bool,
    ) -> Result<Option<Box<dyn TokenConstraint>>, ConstraintError> {
        let described: Vec<Value> = tools.iter().map(Tool::to_openai).collect();
        let key = format!("tools {choice:?} parallel={parallel_calls} {}", Value::Array(described));
        let compiled = self.compiled(key, || {
            let grammar = ToolCallGrammar::new(self.format, tools.to_vec(), choice.clone())
                .map_err(|e| ConstraintError(e.to_string()))?
                .with_parallel_calls(parallel_calls);
            self.env.compile(&grammar).map_err(|e| ConstraintError(e.to_string()))
        })?;
        Ok(constraint(&compiled))
    }

    fn json(&self, schema: Option<&Value>) -> Result<Option<Box<dyn TokenConstraint>>, ConstraintError> {
        let any_object = serde_json::json!({"type": "object"});
        let schema = schema.unwrap_or(&any_object);
        let compiled = self.compiled(format!("json {schema}"), || {
            self.env.compile_json_schema(schema).map_err(|e| {
                let message = match e {
                    GrammarError::Rejected { message } => message,
                    other => other.to_string(),
                };
                ConstraintError(format!("the JSON schema of the reply cannot be enforced: {message}"))
            })
        })?;
        Ok(constraint(&compiled))
    }
}
