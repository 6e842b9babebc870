//! The engine's error type.

use crate::gguf::GgufError;

/// Errors from loading or running a model.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Gguf(#[from] GgufError),
    #[error("tensor computation failed: {0}")]
    Candle(#[from] candle_core::Error),
    #[error("model architecture {0:?} is not supported (supported: llama, qwen2, gemma3)")]
    UnsupportedArchitecture(String),
    #[error("kernel failed: {0}")]
    Kernel(#[from] hearth_kernels::KernelError),
    #[error(transparent)]
    Tokenizer(#[from] crate::tokenizer::TokenizerError),
    #[error(transparent)]
    Sampler(#[from] crate::sampler::SamplerError),
    #[error("invalid model: {0}")]
    InvalidModel(String),
    #[error("token id {id} is outside the vocabulary of {vocab} tokens")]
    TokenOutOfRange { id: u32, vocab: usize },
    #[error("the context is full: {needed} tokens needed, the model's context holds {limit}")]
    ContextFull { needed: usize, limit: usize },
    #[error("device {device} cannot run this: {missing}")]
    UnsupportedDevice { device: String, missing: &'static str },
    #[error("token constraint failed: {0}")]
    Constraint(String),
    #[error("empty input: at least one token is needed")]
    EmptyInput,
    #[error(transparent)]
    Kv(#[from] crate::kv::KvError),
    #[error("a batched step of {rows} tokens is over the limit of {limit}")]
    BatchTooLarge { rows: usize, limit: usize },
    #[error("the batch engine has stopped")]
    EngineStopped,
    #[error("a batched forward pass failed: {0}")]
    StepFailed(String),
}

/// Result with [`EngineError`].
pub type Result<T> = std::result::Result<T, EngineError>;
