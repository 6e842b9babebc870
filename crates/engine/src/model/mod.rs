//! Model code: one file per architecture over shared layers, and [`Model`], which picks the
//! right one for a GGUF file.

mod candle_matmul;
pub mod config;
pub mod gemma3;
pub mod layers;
pub mod llama;
mod norm;
pub mod qwen2;
pub mod rotary;

use candle_core::{Device, Tensor};

pub use config::{Architecture, ModelConfig, RopeStyle};

use crate::error::{EngineError, Result};
use crate::gguf::GgufFile;
use crate::kv::{ForwardStep, KvCache, KvError, KvLayout, KvPool};

/// Longest run of tokens processed in one forward pass; longer inputs are split so the
/// attention scores of a long prompt stay within a bounded amount of memory.
pub const MAX_BATCH: usize = 512;

/// One sequence's part of a batched step: its cache and the tokens to append to it.
#[derive(Debug)]
pub struct BatchInput<'a> {
    /// The sequence.
    pub cache: &'a mut KvCache,
    /// Tokens to append (at least one).
    pub tokens: &'a [u32],
}

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
    /// Builds the model in `gguf` on `device`. Weights are read in place from the file's map on
    /// the CPU, and uploaded once to a CUDA device (builds with the `cuda` feature), whose KV
    /// pools then live in device memory too, or to a Metal device (`metal`), whose products
    /// candle runs while the KV pool stays in (unified) host memory.
    pub fn load(gguf: &GgufFile, device: &Device) -> Result<Self> {
        if !device.is_cpu() && !device.is_cuda() && !device.is_metal() {
            return Err(EngineError::UnsupportedDevice {
                device: format!("{device:?}"),
                missing: "models run on the CPU, on CUDA with the `cuda` feature and on Metal with `metal`",
            });
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

    /// The layout of this model's KV blocks, with blocks of `block_size` positions.
    pub fn kv_layout(&self, block_size: usize) -> KvLayout {
        KvLayout::for_model(&self.config, block_size)
    }

    /// A KV pool for this model holding at most `budget_bytes` of keys and values, on the
    /// model's device (a GPU's pool takes its whole budget of device memory now).
    pub fn new_kv_pool(&self, budget_bytes: usize) -> Result<KvPool> {
        let layout = self.kv_layout(crate::kv::DEFAULT_BLOCK_SIZE);
        Ok(KvPool::on_device(layout, budget_bytes, &self.device)?)
    }

    /// The device the model runs on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Bytes of KV cache for a whole context window (plus a block per layer group of slack for
    /// a partly filled last block): the default pool budget. Blocks are allocated on use, so a
    /// short conversation takes only what it needs.
    pub fn default_kv_budget(&self) -> usize {
        let layout = self.kv_layout(crate::kv::DEFAULT_BLOCK_SIZE);
        let blocks = layout.blocks_for(self.config.context_length) + 1;
        (0..layout.groups.len()).map(|g| blocks * layout.block_bytes(g)).sum()
    }

    /// A new, empty KV cache for one sequence of this model, in a pool of its own with the
    /// default budget. Sequences that should share prefixes or be batched together come from
    /// one [`KvPool`] instead.
    pub fn new_cache(&self) -> Result<KvCache> {
        Ok(self.new_kv_pool(self.default_kv_budget())?.new_sequence())
    }

    /// Appends `tokens` to the sequence in `cache` and returns f32 logits of shape
    /// `(1, vocab)` for [`Logits::Last`] or `(tokens.len(), vocab)` for [`Logits::All`].
    pub fn forward(&self, tokens: &[u32], cache: &mut KvCache, logits: Logits) -> Result<Tensor> {
        if tokens.is_empty() {
            return Err(EngineError::EmptyInput);
        }
        self.check_room(cache, tokens.len())?;
        let mut outputs = Vec::new();
        let chunks: Vec<&[u32]> = tokens.chunks(MAX_BATCH).collect();
        let n_chunks = chunks.len();
        for (i, chunk) in chunks.into_iter().enumerate() {
            let hidden = self.step(&mut [&mut *cache], &[chunk])?;
            match logits {
                Logits::All => outputs.push(self.project(&hidden)?),
                Logits::Last if i + 1 == n_chunks => outputs.push(self.project(&layers::last_row(&hidden)?)?),
                Logits::Last => {}
            }
        }
        Ok(if outputs.len() == 1 { outputs.remove(0) } else { Tensor::cat(&outputs, 0)? })
    }

    /// Appends each input's tokens to its sequence in one forward pass, so every weight matrix
    /// is read once for all of them, and returns the logits of each sequence's last new token,
    /// `(batch.len(), vocab)` in input order. All sequences must share one [`KvPool`], and the
    /// inputs together may hold at most [`MAX_BATCH`] tokens.
    pub fn forward_batch(&self, batch: &mut [BatchInput<'_>]) -> Result<Tensor> {
        let rows: usize = batch.iter().map(|b| b.tokens.len()).sum();
        if batch.is_empty() || batch.iter().any(|b| b.tokens.is_empty()) {
            return Err(EngineError::EmptyInput);
        }
        if rows > MAX_BATCH {
            return Err(EngineError::BatchTooLarge { rows, limit: MAX_BATCH });
        }
        for b in batch.iter() {
            self.check_room(b.cache, b.tokens.len())?;
        }
        let tokens: Vec<&[u32]> = batch.iter().map(|b| b.tokens).collect();
        let mut caches: Vec<&mut KvCache> = batch.iter_mut().map(|b| &mut *b.cache).collect();
        let hidden = self.step(&mut caches, &tokens)?;
        let mut last = Vec::with_capacity(tokens.len());
        let mut end = 0u32;
        for t in &tokens {
            end += t.len() as u32;
            last.push(end - 1);
        }
        let last = Tensor::new(last.as_slice(), &self.device)?;
        self.project(&hidden.index_select(&last, 0)?)
    }

    fn check_room(&self, cache: &KvCache, n: usize) -> Result<()> {
        let needed = cache.len() + n;
        if needed > self.config.context_length {
            return Err(EngineError::ContextFull { needed, limit: self.config.context_length });
        }
        let layout = cache.pool().layout();
        let ours = self.kv_layout(layout.block_size);
        if *layout != ours {
            return Err(KvError::LayoutMismatch { pool: format!("{layout:?}"), model: format!("{ours:?}") }.into());
        }
        Ok(())
    }

    /// One forward pass appending `tokens[i]` to `caches[i]`; returns the hidden states of all
    /// rows, sequence after sequence.
    fn step(&self, caches: &mut [&mut KvCache], tokens: &[&[u32]]) -> Result<Tensor> {
        let Some(first) = caches.first() else { return Err(EngineError::EmptyInput) };
        let pool = first.pool().clone();
        let counts: Vec<usize> = tokens.iter().map(|t| t.len()).collect();
        let mut step = ForwardStep::begin(&pool, caches, &counts)?;
        let all: Vec<u32> = tokens.concat();
        let hidden = match &self.decoder {
            Decoder::Llama(m) => m.hidden(&all, &mut step, &self.device)?,
            Decoder::Gemma3(m) => m.hidden(&all, &mut step, &self.device)?,
        };
        step.finish(caches, tokens);
        Ok(hidden)
    }

    fn project(&self, hidden: &Tensor) -> Result<Tensor> {
        match &self.decoder {
            Decoder::Llama(m) => m.logits(hidden),
            Decoder::Gemma3(m) => m.logits(hidden),
        }
    }
}
