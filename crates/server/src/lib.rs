//! `hearth serve`: OpenAI- and Anthropic-compatible HTTP APIs in front of one engine worker.
//!
//! Requests are parsed and turned into prompt tokens on the HTTP side ([`openai`],
//! [`anthropic`], [`prompt`]); generation happens on one thread that owns the model
//! ([`worker`]). That thread steps every active sequence together in one batched forward pass
//! and starts each new request from the longest prefix the engine's [`hearth_engine::KvPool`]
//! already holds, so a client that resends a growing conversation pays only for its new tokens.
//! Tokens flow back to each request over its own channel; a request whose client has gone away
//! is dropped at the next step.

pub mod anthropic;
pub mod config;
pub mod constraint;
pub mod error;
pub mod generation;
pub mod metrics;
pub mod openai;
pub mod prompt;
pub mod router;
pub mod sampling;
pub mod sse;
pub mod state;
pub mod tool_calls;
pub mod worker;

pub use config::{Limits, WorkerConfig};
pub use constraint::{ConstraintProvider, GrammarConstraints, TokenConstraint, Unconstrained};
pub use router::router;
pub use state::{AppState, ServedModel};
pub use worker::{Engine, EngineHandle};
