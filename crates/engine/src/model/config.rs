//! Model hyper-parameters read from GGUF metadata.

use crate::error::{EngineError, Result};
use crate::gguf::GgufFile;

/// The model families the engine has code for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Architecture {
    Llama,
    Qwen2,
    Gemma3,
}

impl Architecture {
    /// The `general.architecture` string in GGUF files.
    pub fn name(self) -> &'static str {
        match self {
            Architecture::Llama => "llama",
            Architecture::Qwen2 => "qwen2",
            Architecture::Gemma3 => "gemma3",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        match s {
            "llama" => Ok(Architecture::Llama),
            "qwen2" => Ok(Architecture::Qwen2),
            "gemma3" => Ok(Architecture::Gemma3),
            other => Err(EngineError::UnsupportedArchitecture(other.to_string())),
        }
    }
}

/// How rotary embeddings pair up the dimensions of a head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RopeStyle {
    /// Adjacent pairs (2i, 2i+1): llama in GGUF, whose Q/K rows were permuted at conversion.
    Interleaved,
    /// Halves (i, i + d/2): GPT-NeoX style, used by Qwen2 and Gemma 3.
    Neox,
}

/// Hyper-parameters of a decoder-only transformer.
#[derive(Debug, Clone)]
pub struct ModelConfig {
    pub architecture: Architecture,
    pub n_layer: usize,
    pub n_embd: usize,
    pub n_ff: usize,
    pub n_head: usize,
    pub n_head_kv: usize,
    pub head_dim: usize,
    pub rms_eps: f32,
    pub rope_base: f32,
    /// Rotary base of sliding-window layers (Gemma 3).
    pub rope_base_local: f32,
    pub rope_style: RopeStyle,
    pub context_length: usize,
    pub vocab_size: usize,
    /// Window of sliding-window layers; `None` when every layer attends to the whole context.
    pub sliding_window: Option<usize>,
    /// Every `swa_pattern`-th layer is global; the others use the sliding window.
    pub swa_pattern: usize,
}

impl ModelConfig {
    /// Reads the hyper-parameters of the model in `gguf`.
    pub fn from_gguf(gguf: &GgufFile) -> Result<Self> {
        let arch_name = gguf.get_str("general.architecture")?;
        let architecture = Architecture::parse(arch_name)?;
        let key = |k: &str| format!("{arch_name}.{k}");
        let usize_key = |k: &str| -> Result<usize> {
            let v = gguf.get_u64(&key(k))?;
            usize::try_from(v).map_err(|_| EngineError::InvalidModel(format!("{} = {v} is too large", key(k))))
        };
        let n_layer = usize_key("block_count")?;
        let n_embd = usize_key("embedding_length")?;
        let n_ff = usize_key("feed_forward_length")?;
        let n_head = usize_key("attention.head_count")?;
        let n_head_kv = match gguf.opt_u64(&key("attention.head_count_kv"))? {
            Some(v) => v as usize,
            None => n_head,
        };
        if n_head == 0 || n_head_kv == 0 || n_head % n_head_kv != 0 {
            return Err(EngineError::InvalidModel(format!(
                "{n_head} attention heads cannot be grouped over {n_head_kv} key/value heads"
            )));
        }
        let head_dim = match gguf.opt_u64(&key("attention.key_length"))? {
            Some(v) => v as usize,
            None => n_embd / n_head,
        };
        if head_dim == 0 || head_dim % 2 != 0 {
            return Err(EngineError::InvalidModel(format!("head dimension {head_dim} must be even and non-zero")));
        }
        let rms_eps = gguf.get_f64(&key("attention.layer_norm_rms_epsilon"))? as f32;
        let rope_base = gguf.opt_f64(&key("rope.freq_base"))?.unwrap_or(10_000.0) as f32;
        let rope_base_local = gguf.opt_f64(&key("rope.freq_base_swa"))?.unwrap_or(10_000.0) as f32;
        let context_length = usize_key("context_length")?;
        let vocab_size = match gguf.opt_u64(&key("vocab_size"))? {
            Some(v) => v as usize,
            None => gguf.get_array("tokenizer.ggml.tokens")?.len(),
        };
        let sliding_window = match architecture {
            Architecture::Gemma3 => {
                gguf.opt_u64(&key("attention.sliding_window"))?.filter(|&w| w > 0).map(|w| w as usize)
            }
            _ => None,
        };
        let swa_pattern = gguf.opt_u64(&key("attention.sliding_window_pattern"))?.unwrap_or(6) as usize;
        let rope_style = match architecture {
            Architecture::Llama => RopeStyle::Interleaved,
            Architecture::Qwen2 | Architecture::Gemma3 => RopeStyle::Neox,
        };
        Ok(Self {
            architecture,
            n_layer,
            n_embd,
            n_ff,
            n_head,
            n_head_kv,
            head_dim,
            rms_eps,
            rope_base,
            rope_base_local,
            rope_style,
            context_length,
            vocab_size,
            sliding_window,
            swa_pattern,
        })
    }

    /// Whether layer `il` attends only within the sliding window.
    pub fn is_sliding(&self, il: usize) -> bool {
        self.sliding_window.is_some() && self.swa_pattern > 0 && il % self.swa_pattern < self.swa_pattern - 1
    }

    /// Bytes of f32 key and value cache per token, over all layers.
    pub fn kv_bytes_per_token(&self) -> usize {
        2 * self.n_layer * self.n_head_kv * self.head_dim * std::mem::size_of::<f32>()
    }
}
