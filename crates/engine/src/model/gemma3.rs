//! Gemma 3: scaled embeddings, per-head RMS norm of queries and keys, norms after attention and
//! feed-forward as well as before, a GELU-gated feed-forward block, and five sliding-window
//! layers (local rotary base) for every global one.

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
    q_norm: RmsNorm,
    k_norm: RmsNorm,
    o: QLinear,
    post_attn_norm: RmsNorm,
    ffn_norm: RmsNorm,
    ffn: GatedFfn,
    post_ffn_norm: RmsNorm,
}

/// A Gemma 3 decoder.
#[derive(Debug, Clone)]
pub struct Gemma3 {
    cfg: ModelConfig,
    embed: Embedding,
    blocks: Vec<Block>,
    norm: RmsNorm,
    output: QLinear,
    rotary_global: Rotary,
    rotary_local: Rotary,
}

impl Gemma3 {
    /// Loads the weights.
    pub fn load(gguf: &GgufFile, cfg: &ModelConfig, device: &Device) -> Result<Self> {
        let (d, hd, eps) = (cfg.n_embd, cfg.head_dim, cfg.rms_eps);
        let embed = Embedding::load(gguf, "token_embd.weight", d)?;
        let mut blocks = Vec::with_capacity(cfg.n_layer);
        for il in 0..cfg.n_layer {
            let name = |t: &str| format!("blk.{il}.{t}.weight");
            blocks.push(Block {
                attn_norm: RmsNorm::load(gguf, &name("attn_norm"), d, eps, device)?,
                q: QLinear::load(gguf, &name("attn_q"), d, cfg.n_head * hd, false, device)?,
                k: QLinear::load(gguf, &name("attn_k"), d, cfg.n_head_kv * hd, false, device)?,
                v: QLinear::load(gguf, &name("attn_v"), d, cfg.n_head_kv * hd, false, device)?,
                q_norm: RmsNorm::load(gguf, &name("attn_q_norm"), hd, eps, device)?,
                k_norm: RmsNorm::load(gguf, &name("attn_k_norm"), hd, eps, device)?,
                o: QLinear::load(gguf, &name("attn_output"), cfg.n_head * hd, d, false, device)?,
                post_attn_norm: RmsNorm::load(gguf, &name("post_attention_norm"), d, eps, device)?,
                ffn_norm: RmsNorm::load(gguf, &name("ffn_norm"), d, eps, device)?,
                ffn: GatedFfn::load(gguf, il, d, cfg.n_ff, Activation::GeluTanh, device)?,
                post_ffn_norm: RmsNorm::load(gguf, &name("post_ffw_norm"), d, eps, device)?,
            });
        }
        let norm = RmsNorm::load(gguf, "output_norm.weight", d, eps, device)?;
        let output = if gguf.tensors().contains_key("output.weight") {
            QLinear::load(gguf, "output.weight", d, embed.vocab(), false, device)?
        } else {
            embed.as_linear(gguf, device)?
        };
        Ok(Self {
            cfg: cfg.clone(),
            embed,
            blocks,
            norm,
            output,
            rotary_global: Rotary::new(hd, cfg.rope_base, cfg.rope_style),
            rotary_local: Rotary::new(hd, cfg.rope_base_local, cfg.rope_style),
        })
    }

    /// Runs `tokens`, the rows of `step`, and returns the normed hidden states.
    pub fn hidden(&self, tokens: &[u32], step: &mut ForwardStep<'_>, device: &Device) -> Result<Tensor> {
        let cfg = &self.cfg;
        let (rows, hd) = (tokens.len(), cfg.head_dim);
        let scale = 1.0 / (hd as f32).sqrt();
        let mut x = (self.embed.forward(tokens, device)? * (cfg.n_embd as f64).sqrt())?;
        let Some(first) = self.blocks.first() else {
            return self.norm.forward(&x);
        };
        // Each residual add runs fused with the norm after it, as in `Llama::hidden`.
        let mut h = first.attn_norm.forward(&x)?;
        for (il, b) in self.blocks.iter().enumerate() {
            let rotary = if cfg.is_sliding(il) { &self.rotary_local } else { &self.rotary_global };
            // Queries and keys are normed per head before rotation.
            let per_head = |t: Tensor, norm: &RmsNorm, heads: usize| -> Result<Tensor> {
                Ok(norm.forward(&t.reshape((rows, heads, hd))?)?.reshape((rows, heads * hd))?)
            };
            let [q, k, v] = forward_many([&b.q, &b.k, &b.v], &h)?;
            let q = per_head(q, &b.q_norm, cfg.n_head)?;
            let k = per_head(k, &b.k_norm, cfg.n_head_kv)?;
            let att = step.attention(il, &q, &k, &v, rotary, scale)?;
            let att = b.post_attn_norm.forward(&b.o.forward(&att)?)?;
            let (x_att, h_ffn) = b.ffn_norm.add_forward(&x, &att)?;
            let ffn = b.post_ffn_norm.forward(&b.ffn.forward(&h_ffn)?)?;
            let next_norm = self.blocks.get(il + 1).map_or(&self.norm, |next| &next.attn_norm);
            (x, h) = next_norm.add_forward(&x_att, &ffn)?;
        }
        Ok(h)
    }

    /// Projects hidden states to vocabulary logits.
    pub fn logits(&self, hidden: &Tensor) -> Result<Tensor> {
        self.output.forward(hidden)
    }
}
