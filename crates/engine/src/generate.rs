//! The token generation loop: prefill a prompt, then sample one token at a time until an
//! end-of-generation token, a token limit, or the caller says stop.

use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use candle_core::Tensor;

use crate::error::{EngineError, Result};
use crate::kv::KvCache;
use crate::model::{Logits, Model};
use crate::sampler::Sampler;

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The model produced an end-of-generation token (not included in the output).
    EndOfGeneration,
    /// `max_tokens` were generated.
    Length,
    /// The token callback asked to stop.
    Cancelled,
}

/// Counts and timings of one generation.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerationStats {
    pub prompt_tokens: usize,
    pub generated_tokens: usize,
    pub prefill_time: Duration,
    pub decode_time: Duration,
    pub stop: StopReason,
}

impl GenerationStats {
    /// Prompt tokens processed per second.
    pub fn prefill_tps(&self) -> f64 {
        self.prompt_tokens as f64 / self.prefill_time.as_secs_f64().max(1e-9)
    }

    /// Generated tokens per second, not counting the first (which comes from the prefill).
    pub fn decode_tps(&self) -> f64 {
        self.generated_tokens.saturating_sub(1) as f64 / self.decode_time.as_secs_f64().max(1e-9)
    }
}

/// The f32 logits of a `(1, vocab)` tensor.
pub fn logits_vec(logits: &Tensor) -> Result<Vec<f32>> {
    Ok(logits.flatten_all()?.to_vec1::<f32>()?)
}

/// Appends `prompt` to the sequence in `cache`, then generates up to `max_tokens` tokens.
///
/// The tokens already in the cache count for the repetition penalty; `is_eog` tells
/// end-of-generation tokens; `on_token` sees each new token as it is sampled and may stop the loop.
pub fn generate(
    model: &Model,
    cache: &mut KvCache,
    prompt: &[u32],
    sampler: &mut Sampler,
    max_tokens: usize,
    is_eog: &dyn Fn(u32) -> bool,
    mut on_token: impl FnMut(u32) -> ControlFlow<()>,
) -> Result<(Vec<u32>, GenerationStats)> {
    if prompt.is_empty() {
        return Err(EngineError::EmptyInput);
    }
    let mut context: Vec<u32> = cache.tokens().iter().chain(prompt).copied().collect();
    let t0 = Instant::now();
    let mut logits = logits_vec(&model.forward(prompt, cache, Logits::Last)?)?;
    let prefill_time = t0.elapsed();
    let t1 = Instant::now();
    let mut out = Vec::new();
    let mut stop = StopReason::Length;
    while out.len() < max_tokens {
        let token = sampler.sample(&logits, &context)?;
        if is_eog(token) {
            stop = StopReason::EndOfGeneration;
            break;
        }
        out.push(token);
        context.push(token);
        if on_token(token).is_break() {
            stop = StopReason::Cancelled;
            break;
        }
        if out.len() == max_tokens {
            break;
        }
        logits = logits_vec(&model.forward(&[token], cache, Logits::Last)?)?;
    }
    let stats = GenerationStats {
        prompt_tokens: prompt.len(),
        generated_tokens: out.len(),
        prefill_time,
        decode_time: t1.elapsed(),
        stop,
    };
    Ok((out, stats))
}
