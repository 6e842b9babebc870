//! Errors of the grammar crate.

use hearth_engine::EngineError;
use hearth_engine::sampler::SamplerError;
use hearth_engine::tokenizer::TokenizerError;

/// Errors building, compiling or running a tool-call grammar.
#[derive(Debug, thiserror::Error)]
pub enum GrammarError {
    /// A tool's definition is not usable (empty or duplicate name, arguments not an object schema).
    #[error("tool {tool:?} is invalid: {problem}")]
    InvalidTool { tool: String, problem: String },
    /// A tool's argument schema is not a JSON schema llguidance can enforce.
    #[error("the argument schema of tool {tool:?} is invalid: {message}")]
    InvalidSchema { tool: String, message: String },
    /// A tool named by `ToolChoice::Named` or by a substring constraint is not among the tools.
    #[error("unknown tool {name:?} (known: {known})")]
    UnknownTool { name: String, known: String },
    /// A substring constraint names an argument the tool's schema has no string property for.
    #[error("tool {tool:?} has no top-level string argument {argument:?} to constrain")]
    UnknownArgument { tool: String, argument: String },
    /// `ToolChoice::Required` or `Named` with no tools to call.
    #[error("a tool call is required but no tools were given")]
    NoTools,
    /// llguidance refused the grammar as a whole.
    #[error("llguidance rejected the grammar: {message}")]
    Rejected { message: String },
    /// The tokenizer cannot be described to llguidance.
    #[error("cannot build the token environment: {0}")]
    TokenEnv(String),
    /// The grammar state could not follow a token (an internal error: masks prevent it).
    #[error("the grammar cannot follow token {token}: {message}")]
    TokenRejected { token: u32, message: String },
    /// The matcher failed (llguidance's own error text).
    #[error("grammar matcher error: {0}")]
    Matcher(String),
    /// Rewinding further back than the session has tokens.
    #[error("cannot rewind {requested} tokens: the session has consumed {available}")]
    RewindTooFar { requested: usize, available: usize },
    /// The mask thread panicked.
    #[error("the grammar mask thread panicked")]
    MaskThreadPanicked,
    /// The model's forward pass failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The sampler refused its logits.
    #[error(transparent)]
    Sampler(#[from] SamplerError),
    /// The tokenizer failed (an unknown token id).
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
}

/// Result with a [`GrammarError`].
pub type Result<T, E = GrammarError> = std::result::Result<T, E>;
