//! Constrained generation: the engine's decode loop with a grammar mask on every step.
//!
//! Each step's mask depends only on the tokens already chosen, so it is computed on another
//! thread while the forward pass that produces the step's logits runs; the sampler then sees
//! the logits with disallowed tokens at −∞. When the grammar forces a run of tokens (the fixed
//! text of a call), they are committed at once and appended with the sampled token in a single
//! batched forward pass instead of one pass each.

use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use candle_core::Tensor;
use hearth_engine::generate::{StopReason, logits_vec};
use hearth_engine::sampler::Sampler;
use hearth_engine::{KvCache, Logits, Model};

use crate::error::{GrammarError, Result};
use crate::session::{GrammarSession, TokenMask};

/// Counts and timings of one constrained generation.
#[derive(Debug, Clone, PartialEq)]
pub struct ConstrainedStats {
    /// Prompt tokens prefilled.
    pub prompt_tokens: usize,
    /// Tokens generated, sampled and forced.
    pub generated_tokens: usize,
    /// Of those, tokens the grammar forced (appended without a step of their own).
    pub forced_tokens: usize,
    /// Forward passes after the prefill.
    pub decode_passes: usize,
    /// Time of the prompt's forward pass.
    pub prefill_time: Duration,
    /// Time from the first sampled token to the end.
    pub decode_time: Duration,
    /// Total time spent computing masks (on the mask thread, overlapped with forward passes).
    pub mask_time: Duration,
    /// Number of masks computed.
    pub masks: usize,
    /// Time the decode loop waited for a mask after its forward pass had finished, plus the
    /// time to apply masks to logits: what masking added to the decode time.
    pub mask_overhead: Duration,
    /// Why generation ended.
    pub stop: StopReason,
}

impl ConstrainedStats {
    /// Mean mask computation time per mask.
    pub fn mask_time_per_token(&self) -> Duration {
        self.mask_time / self.masks.max(1) as u32
    }

    /// The share of decode time that masking added (0 to 1).
    pub fn mask_overhead_share(&self) -> f64 {
        self.mask_overhead.as_secs_f64() / self.decode_time.as_secs_f64().max(1e-9)
    }
}

/// The forward pass and the next mask, computed at the same time.
struct Overlapped {
    logits: Tensor,
    mask: Option<TokenMask>,
    mask_time: Duration,
    waited: Duration,
}

fn forward_with_mask(
    model: &Model,
    cache: &mut KvCache,
    tokens: &[u32],
    session: &mut GrammarSession,
    want_mask: bool,
) -> Result<Overlapped> {
    if !want_mask {
        let logits = model.forward(tokens, cache, Logits::Last)?;
        return Ok(Overlapped { logits, mask: None, mask_time: Duration::ZERO, waited: Duration::ZERO });
    }
    std::thread::scope(|scope| {
        let mask_thread = scope.spawn(|| {
            let t = Instant::now();
            let mask = session.compute_mask();
            (mask, t.elapsed())
        });
        let logits = model.forward(tokens, cache, Logits::Last);
        let wait_start = Instant::now();
        let (mask, mask_time) = mask_thread.join().map_err(|_| GrammarError::MaskThreadPanicked)?;
        let waited = wait_start.elapsed();
        Ok(Overlapped { logits: logits?, mask: Some(mask?), mask_time, waited })
    })
}

/// Appends `prompt` to the sequence in `cache`, then generates up to `max_tokens` tokens that
/// follow the grammar of `session`.
///
/// `history` holds the tokens already in the cache (for the repetition penalty); `is_eog` tells
/// end-of-generation tokens, which the grammar allows only where the reply may end;
/// `on_tokens` sees each step's new tokens (a sampled token and any forced ones after it) and
/// may stop the loop. Generation also ends when the grammar is complete.
#[allow(clippy::too_many_arguments)]
pub fn generate_constrained(
    model: &Model,
    cache: &mut KvCache,
    history: &[u32],
    prompt: &[u32],
    session: &mut GrammarSession,
    sampler: &mut Sampler,
    max_tokens: usize,
    is_eog: &dyn Fn(u32) -> bool,
    mut on_tokens: impl FnMut(&[u32]) -> ControlFlow<()>,
) -> Result<(Vec<u32>, ConstrainedStats)> {
    if prompt.is_empty() {
        return Err(hearth_engine::EngineError::EmptyInput.into());
    }
    let mut context: Vec<u32> = history.iter().chain(prompt).copied().collect();
    let mut stats = ConstrainedStats {
        prompt_tokens: prompt.len(),
        generated_tokens: 0,
        forced_tokens: 0,
        decode_passes: 0,
        prefill_time: Duration::ZERO,
        decode_time: Duration::ZERO,
        mask_time: Duration::ZERO,
        masks: 0,
        mask_overhead: Duration::ZERO,
        stop: StopReason::Length,
    };
    let t0 = Instant::now();
    let mut step = forward_with_mask(model, cache, prompt, session, max_tokens > 0)?;
    stats.prefill_time = t0.elapsed();
    let t1 = Instant::now();
    let mut out: Vec<u32> = Vec::new();
    while out.len() < max_tokens {
        let Some(mask) = step.mask.take() else { break };
        stats.masks += 1;
        stats.mask_time += step.mask_time;
        let apply_start = Instant::now();
        let mut logits = logits_vec(&step.logits)?;
        mask.apply(&mut logits);
        stats.mask_overhead += step.waited + apply_start.elapsed();
        let token = sampler.sample(&logits, &context)?;
        session.commit(token)?;
        if is_eog(token) {
            stats.stop = StopReason::EndOfGeneration;
            break;
        }
        let mut new = vec![token];
        let mut forced = session.commit_forced();
        let room = max_tokens - out.len() - 1;
        if forced.len() > room {
            session.rewind(forced.len() - room)?;
            forced.truncate(room);
        }
        stats.forced_tokens += forced.len();
        new.extend_from_slice(&forced);
        out.extend_from_slice(&new);
        context.extend_from_slice(&new);
        if on_tokens(&new).is_break() {
            stats.stop = StopReason::Cancelled;
            break;
        }
        if session.is_finished() {
            stats.stop = StopReason::EndOfGeneration;
            break;
        }
        if out.len() >= max_tokens {
            break;
        }
        step = forward_with_mask(model, cache, &new, session, true)?;
        stats.decode_passes += 1;
    }
    stats.generated_tokens = out.len();
    stats.decode_time = t1.elapsed();
    Ok((out, stats))
}
