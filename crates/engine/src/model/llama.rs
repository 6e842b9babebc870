//! Llama: pre-norm decoder with grouped-query attention, rotary embeddings and a SiLU-gated
//! feed-forward block. SmolLM2 is a llama; Qwen2 reuses this decoder with q/k/v biases.

use candle_core::{Device, Tensor};

use crate::error::Result;
use crate::gguf::GgufFile;
use crate::kv::ForwardStep;
use crate::model::config::ModelConfig;
use crate::model::layers::{Activation, Embedding, GatedFfn, QLinear, RmsNorm, Rotary, forward_many};

#[derive(Debug, Clone)]
struct Block {
    attn_norm: RmsNorm,
    q: QLinear,
    k: QLinear,
    v: QLinear,
    o: QLinear,
    ffn_norm: RmsNorm,
    ffn: GatedFfn,
}

/// A llama-family decoder.
#[derive(Debug, Clone)]
pub struct Llama {
    cfg: ModelConfig,
    embed: Embedding,
    blocks: Vec<Block>,
    norm: RmsNorm,
    output: QLinear,
    rotary: Rotary,
}

impl Llama {
    /// Loads the weights; `qkv_bias` adds the Q/K/V biases Qwen2 has.
    pub fn load(gguf: &GgufFile, cfg: &ModelConfig, qkv_bias: bool, device: &Device) -> Result<Self> {
        let (d, hd) = (cfg.n_embd, cfg.head_dim);
        let embed = Embedding::load(gguf, "token_embd.weight", d)?;
        let mut blocks = Vec::with_capacity(cfg.n_layer);
        for il in 0..cfg.n_layer {
            let name = |t: &str| format!("blk.{il}.{t}.weight");
            blocks.push(Block {
                attn_norm: RmsNorm::load(gguf, &name("attn_norm"), d, cfg.rms_eps, device)?,
                q: QLinear::load(gguf, &name("attn_q"), d, cfg.n_head * hd, qkv_bias, device)?,
                k: QLinear::load(gguf, &name("attn_k"), d, cfg.n_head_kv * hd, qkv_bias, device)?,
                v: QLinear::load(gguf, &name("attn_v"), d, cfg.n_head_kv * hd, qkv_bias, device)?,
                o: QLinear::load(gguf, &name("attn_output"), cfg.n_head * hd, d, false, device)?,
                ffn_norm: RmsNorm::load(gguf, &name("ffn_norm"), d, cfg.rms_eps, device)?,
                ffn: GatedFfn::load(gguf, il, d, cfg.n_ff, Activation::Silu, device)?,
            });
        }
        let norm = RmsNorm::load(gguf, "output_norm.weight", d, cfg.rms_eps, device)?;
        let output = if gguf.tensors().contains_key("output.weight") {
            QLinear::load(gguf, "output.weight", d, embed.vocab(), false, device)?
        } else {
            embed.as_linear(gguf, device)?
        };
        let rotary = Rotary::new(hd, cfg.rope_base, cfg.rope_style);
        Ok(Self { cfg: cfg.clone(), embed, blocks, norm, output, rotary })
    }

    /// Runs `tokens`, the rows of `step`, and returns the final hidden states
    /// `(rows, n_embd)` after the output norm.
    pub fn hidden(&self, tokens: &[u32], step: &mut ForwardStep<'_>, device: &Device) -> Result<Tensor> {
        let scale = 1.0 / (self.cfg.head_dim as f32).sqrt();
        let mut x = self.embed.forward(tokens, device)?;
        let Some(first) = self.blocks.first() else {
            return self.norm.forward(&x);
        };
        // Each residual add runs fused with the norm after it: the block's feed-forward norm,
        // then the next block's attention norm (the output norm after the last block).
        let mut h = first.attn_norm.forward(&x)?;
        for (il, b) in self.blocks.iter().enumerate() {
            let [q, k, v] = forward_many([&b.q, &b.k, &b.v], &h)?;
            let att = step.attention(il, &q, &k, &v, &self.rotary, scale)?;
            let (x_att, h_ffn) = b.ffn_norm.add_forward(&x, &b.o.forward(&att)?)?;
            let next_norm = self.blocks.get(il + 1).map_or(&self.norm, |next| &next.attn_norm);
            (x, h) = next_norm.add_forward(&x_att, &b.ffn.forward(&h_ffn)?)?;
        }
        Ok(h)
    }

    /// Projects hidden states to vocabulary logits.
    pub fn logits(&self, hidden: &Tensor) -> Result<Tensor> {
        self.output.forward(hidden)
    }
}
