//! Model code: one file per architecture over shared layers, and [`Model`], which picks the
//! right one for a GGUF file.

pub mod config;
pub mod gemma3;
pub mod layers;
pub mod llama;
pub mod qwen2;

use candle_core::{Device, Tensor};

pub use config::{Architecture, ModelConfig, RopeStyle};

use crate::error::{EngineError, Result};
use crate::gguf::GgufFile;
use crate::kv_cache::KvCache;

/// Longest run of tokens processed in one forward pass; longer inputs are split so the
/// attention scores of a long prompt stay within a bounded amount of memory.
pub const MAX_BATCH: usize = 512;

/// Which positions to return logits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logits {
    /// Only the last token's (generation).
    Last,
    /// Every token's (perplexity, speculative verification).
    All,
}

#[derive(Debug, Clone)]
enum Decoder {
    Llama(llama::Llama),
    Gemma3(gemma3::Gemma3),
}

/// A loaded model: configuration and weights mapped from a GGUF file.
#[derive(Debug, Clone)]
pub struct Model {
    config: ModelConfig,
    decoder: Decoder,
    device: Device,
}

impl Model {
    /// Builds the model in `gguf` on `device`. Weights are read in place from the file's map.
    pub fn load(gguf: &GgufFile, device: &Device) -> Result<Self> {
        if !device.is_cpu() {
            return Err(EngineError::UnsupportedDevice(format!("{device:?}")));
        }
        let config = ModelConfig::from_gguf(gguf)?;
        let decoder = match config.architecture {
            Architecture::Llama => Decoder::Llama(llama::Llama::load(gguf, &config, false, device)?),
            Architecture::Qwen2 => Decoder::Llama(qwen2::load(gguf, &config, device)?),
            Architecture::Gemma3 => Decoder::Gemma3(gemma3::Gemma3::load(gguf, &config, device)?),
        };
        Ok(Self { config, decoder, device: device.clone() })
    }

    /// The model's hyper-parameters.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// A new, empty KV cache for one sequence of this model.
    pub fn new_cache(&self) -> KvCache {
        KvCache::new(self.config.n_layer)
    }

    /// Appends `tokens` to the sequence in `cache` and returns f32 logits of shape
    /// `(1, vocab)` for [`Logits::Last`] or `(tokens.len(), vocab)` for [`Logits::All`].
    pub fn forward(&self, tokens: &[u32], cache: &mut KvCache, logits: Logits) -> Result<Tensor> {
        if tokens.is_empty() {
            return Err(EngineError::EmptyInput);
        }
        let needed = cache.len() + tokens.len();
        if needed > self.config.context_length {
            return Err(EngineError::ContextFull { needed, limit: self.config.context_length });
        }
        let mut outputs = Vec::new();
        let chunks: Vec<&[u32]> = tokens.chunks(MAX_BATCH).collect();
        let n_chunks = chunks.len();
        for (i, chunk) in chunks.into_iter().enumerate() {
            let hidden = self.hidden(chunk, cache)?;
            match logits {
                Logits::All => outputs.push(self.project(&hidden)?),
                Logits::Last if i + 1 == n_chunks => outputs.push(self.project(&layers::last_row(&hidden)?)?),
                Logits::Last => {}
            }
        }
        Ok(if outputs.len() == 1 { outputs.remove(0) } else { Tensor::cat(&outputs, 0)? })
    }

    fn hidden(&self, tokens: &[u32], cache: &mut KvCache) -> Result<Tensor> {
        match &self.decoder {
            Decoder::Llama(m) => m.hidden(tokens, cache, &self.device),
            Decoder::Gemma3(m) => m.hidden(tokens, cache, &self.device),
        }
    }

    fn project(&self, hidden: &Tensor) -> Result<Tensor> {
        match &self.decoder {
            Decoder::Llama(m) => m.logits(hidden),
            Decoder::Gemma3(m) => m.logits(hidden),
        }
    }
}
