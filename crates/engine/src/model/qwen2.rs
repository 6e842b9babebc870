//! Qwen2: the llama decoder with biases on the query, key and value projections and
//! NeoX-style rotary embeddings (chosen by [`ModelConfig`]).

use candle_core::Device;

use crate::error::{EngineError, Result};
use crate::gguf::GgufFile;
use crate::model::config::ModelConfig;
use crate::model::llama::Llama;

/// Loads a Qwen2 model.
pub fn load(gguf: &GgufFile, cfg: &ModelConfig, device: &Device) -> Result<Llama> {
    if !gguf.tensors().contains_key("blk.0.attn_q.bias") {
        return Err(EngineError::InvalidModel("qwen2 model without attention biases (blk.0.attn_q.bias)".into()));
    }
    Llama::load(gguf, cfg, true, device)
}
