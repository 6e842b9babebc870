//! hearth's inference engine: GGUF models on candle with an explicit KV cache.

pub mod batch_engine;
pub mod chat_template;
pub mod constraint;
#[cfg(feature = "cuda")]
pub mod cuda;
pub mod error;
pub mod generate;
pub mod gguf;
pub mod kv;
pub mod lookup_decode;
pub mod model;
pub mod preempt;
pub mod sampler;
pub mod tokenizer;

pub use error::{EngineError, Result};
pub use kv::{KvCache, KvPool};
pub use model::{BatchInput, Logits, Model, ModelConfig};
pub use tokenizer::Tokenizer;
