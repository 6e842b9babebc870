//! Where constrained decoding plugs in: a [`TokenConstraint`] limits which tokens one sequence
//! may sample, and a [`ConstraintProvider`] builds constraints from a request's tools or JSON
//! schema.
//!
//! The grammar crate (issue 5) will provide the real provider. Until it lands the server runs
//! with [`Unconstrained`]: tool calls and JSON output are then whatever the model writes, parsed
//! after the fact from its native `<tool_call>{json}</tool_call>` format (see
//! [`crate::tool_calls`]), and nudged only by prompt text and a forced start of the reply (see
//! [`crate::prompt`]). `/health` reports which mode is on (`constrained_decoding`).

use crate::prompt::ToolChoice;

/// Errors of a constraint or its provider; the message is shown to the client.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConstraintError(pub String);

/// Limits the tokens one sequence may sample next. The worker calls, per generated token:
/// [`Self::begin_mask`] before the forward pass, [`Self::mask`] after it, samples, then
/// [`Self::accept`]; forced tokens are fed in the next pass.
pub trait TokenConstraint: Send {
    /// Called just before the forward pass whose logits [`Self::mask`] will get, so the mask can
    /// be computed on another thread while the pass runs.
    fn begin_mask(&mut self) {}
    /// Sets the logits of tokens not allowed next to negative infinity.
    fn mask(&mut self, logits: &mut [f32]) -> Result<(), ConstraintError>;
    /// Advances past `token`, sampled from masked logits.
    fn accept(&mut self, token: u32) -> Result<(), ConstraintError>;
    /// Tokens the grammar allows no alternative to after the last accepted one (already
    /// accepted); the worker appends them in one forward pass instead of one step each.
    fn forced_tokens(&mut self) -> Vec<u32> {
        Vec::new()
    }
    /// Whether the constrained output is complete, which ends generation.
    fn is_finished(&self) -> bool;
}

/// Builds constraints for requests.
pub trait ConstraintProvider: Send + Sync {
    /// Whether constraints from this provider are enforced while decoding (false: unconstrained).
    fn is_enforcing(&self) -> bool;
    /// A constraint allowing free text and/or calls to `tools` (OpenAI function tools) in the
    /// model's native format, as `choice` asks; `None` to leave decoding free.
    fn tool_calls(
        &self,
        tools: &[serde_json::Value],
        choice: &ToolChoice,
    ) -> Result<Option<Box<dyn TokenConstraint>>, ConstraintError>;
    /// A constraint making the reply a JSON value following `schema` (`None`: any JSON object).
    fn json(&self, schema: Option<&serde_json::Value>) -> Result<Option<Box<dyn TokenConstraint>>, ConstraintError>;
}

/// The provider used until the grammar crate lands: no constraint, free decoding.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unconstrained;

impl ConstraintProvider for Unconstrained {
    fn is_enforcing(&self) -> bool {
        false
    }

    fn tool_calls(
        &self,
        _tools: &[serde_json::Value],
        _choice: &ToolChoice,
    ) -> Result<Option<Box<dyn TokenConstraint>>, ConstraintError> {
        Ok(None)
    }

    fn json(&self, _schema: Option<&serde_json::Value>) -> Result<Option<Box<dyn TokenConstraint>>, ConstraintError> {
        Ok(None)
    }
}
