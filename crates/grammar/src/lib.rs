//! Grammar-constrained decoding for hearth: tool calls that are valid by construction.
//!
//! A model's vocabulary becomes a [`GrammarEnv`] once. A [`ToolCallGrammar`] describes a reply
//! given the tools (name, description, JSON schema of the arguments), a [`ToolChoice`] and the
//! model's [`ToolCallFormat`]; compiled against the environment it starts one
//! [`GrammarSession`] per sequence, which [`generate_constrained`] follows step by step: the
//! mask of allowed tokens is computed while the forward pass runs, forced tokens are appended in
//! one pass, and sessions fork and rewind with their sequences. [`parse_reply`] turns the text
//! back into typed [`ToolCall`]s, tolerantly for unconstrained output.

pub mod constraint;
pub mod error;
pub mod format;
pub mod generate;
pub mod grammar;
pub mod parse;
pub mod session;
pub mod substring;
pub mod token_env;
pub mod tools;

#[cfg(test)]
mod test_vocab;

pub use constraint::GrammarConstraint;
pub use error::{GrammarError, Result};
pub use format::ToolCallFormat;
pub use generate::{ConstrainedStats, generate_constrained};
pub use grammar::ToolCallGrammar;
pub use parse::{ParseProblem, ParsedReply, ToolCall, parse_reply};
pub use session::{CompiledGrammar, GrammarSession, TokenMask};
pub use token_env::GrammarEnv;
pub use tools::{SubstringArgument, Tool, ToolChoice};
