//! Prompt-lookup speculative decoding for greedy generation.
//!
//! Edits and file rewrites copy long spans of text already in the context. Each step looks for the
//! latest earlier occurrence of the context's last n-gram and proposes the tokens that followed
//! it as a draft; one forward pass runs the sampled token and the whole draft, and the draft is
//! kept up to the first token where greedy decoding would have chosen otherwise. Every kept
//! token is the argmax of the logits the model computed for its position, so the output is
//! greedy decoding's; rejected draft tokens are cut from the KV cache. Weights are read once
//! for the whole draft, which is what decoding on a CPU is bound by.

use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use crate::error::{EngineError, Result};
use crate::generate::StopReason;
use crate::kv::KvCache;
use crate::model::{Logits, Model};
use crate::sampler::argmax_logit;

/// How drafts are found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LookupConfig {
    /// The longest n-gram matched (longer ones are tried first).
    pub max_ngram: usize,
    /// The shortest n-gram matched.
    pub min_ngram: usize,
    /// Draft tokens proposed per step at most.
    pub max_draft: usize,
}

impl Default for LookupConfig {
    fn default() -> Self {
        Self { max_ngram: 4, min_ngram: 2, max_draft: 10 }
    }
}

/// Counts and timings of one lookup-decoded generation.
#[derive(Debug, Clone, PartialEq)]
pub struct LookupStats {
    /// Prompt tokens.
    pub prompt_tokens: usize,
    /// Tokens generated.
    pub generated_tokens: usize,
    /// Forward passes after the prompt's.
    pub decode_steps: usize,
    /// Draft tokens proposed.
    pub drafted: usize,
    /// Draft tokens kept.
    pub accepted: usize,
    /// Time of the prompt pass.
    pub prefill_time: Duration,
    /// Time of the rest.
    pub decode_time: Duration,
    /// Why generation ended.
    pub stop: StopReason,
}

impl LookupStats {
    /// Generated tokens per forward pass after the prompt's (1.0 without any accepted draft).
    pub fn tokens_per_step(&self) -> f64 {
        self.generated_tokens.saturating_sub(1) as f64 / self.decode_steps.max(1) as f64
    }
}

/// The tokens that followed the latest earlier occurrence of `context`'s final n-gram, for the
/// longest n in the configured range that has one; empty when none does.
pub fn find_draft(context: &[u32], config: &LookupConfig) -> Vec<u32> {
    let len = context.len();
    for n in (config.min_ngram.max(1)..=config.max_ngram).rev() {
        if n >= len {
            continue;
        }
        let tail = &context[len - n..];
        // Latest match first: recent text is the likeliest to be copied next.
        if let Some(start) = (0..len - n).rev().find(|&i| &context[i..i + n] == tail) {
            let from = start + n;
            let to = (from + config.max_draft).min(len);
            return context[from..to].to_vec();
        }
    }
    Vec::new()
}

/// Cuts the rejected draft tokens' keys and values from `cache`, which then holds exactly
/// `context`. A sliding-window model may lose a whole block of its window in the cut; the
/// tokens between are then run again.
fn rewind(model: &Model, cache: &mut KvCache, context: &[u32]) -> Result<()> {
    let kept = cache.truncate(context.len());
    if kept < context.len() {
        model.forward(&context[kept..], cache, Logits::Last)?;
    }
    Ok(())
}

/// Greedy generation of up to `max_tokens` after `prompt` (appended to `cache`), with drafts
/// from prompt lookup; the tokens are those of plain greedy decoding.
pub fn generate_greedy_lookup(
    model: &Model,
    cache: &mut KvCache,
    prompt: &[u32],
    max_tokens: usize,
    config: &LookupConfig,
    is_eog: &dyn Fn(u32) -> bool,
    mut on_token: impl FnMut(u32) -> ControlFlow<()>,
) -> Result<(Vec<u32>, LookupStats)> {
    if prompt.is_empty() {
        return Err(EngineError::EmptyInput);
    }
    let mut context: Vec<u32> = cache.tokens().iter().chain(prompt).copied().collect();
    let t0 = Instant::now();
    let logits = model.forward(prompt, cache, Logits::Last)?;
    let mut next = argmax_logit(&logits.flatten_all()?.to_vec1::<f32>()?);
    let prefill_time = t0.elapsed();
    let t1 = Instant::now();
    let (mut out, mut steps, mut drafted, mut accepted) = (Vec::new(), 0, 0, 0);
    let stop = 'decode: loop {
        if is_eog(next) {
            break StopReason::EndOfGeneration;
        }
        out.push(next);
        context.push(next);
        if on_token(next).is_break() {
            break StopReason::Cancelled;
        }
        if out.len() >= max_tokens {
            break StopReason::Length;
        }
        let mut draft = find_draft(&context, config);
        // A draft never runs past the token limit or the model's context.
        let room = model.config().context_length.saturating_sub(cache.len() + 1);
        draft.truncate((max_tokens - out.len()).saturating_sub(1).min(room));
        let mut input = Vec::with_capacity(draft.len() + 1);
        input.push(next);
        input.extend_from_slice(&draft);
        let rows = model.forward(&input, cache, Logits::All)?.to_vec2::<f32>()?;
        steps += 1;
        drafted += draft.len();
        let mut kept = 0;
        next = argmax_logit(&rows[0]);
        for (j, &d) in draft.iter().enumerate() {
            if next != d {
                break;
            }
            if is_eog(d) {
                break;
            }
            kept += 1;
            out.push(d);
            context.push(d);
            if on_token(d).is_break() {
                accepted += kept;
                rewind(model, cache, &context)?;
                break 'decode StopReason::Cancelled;
            }
            next = argmax_logit(&rows[j + 1]);
            if out.len() >= max_tokens {
                accepted += kept;
                rewind(model, cache, &context)?;
                break 'decode StopReason::Length;
            }
        }
        accepted += kept;
        rewind(model, cache, &context)?;
    };
    let stats = LookupStats {
        prompt_tokens: prompt.len(),
        generated_tokens: out.len(),
        decode_steps: steps,
        drafted,
        accepted,
        prefill_time,
        decode_time: t1.elapsed(),
        stop,
    };
    Ok((out, stats))
}

#[cfg(test)]
mod tests {
    use super::{LookupConfig, find_draft};

    #[test]
    fn drafts_follow_the_latest_longest_match() {
        let cfg = LookupConfig { max_ngram: 3, min_ngram: 1, max_draft: 3 };
        // "1 2 3 4 5 ... 1 2 3" -> the 3-gram [1 2 3] matched at 0, draft 4 5 6.
        assert_eq!(find_draft(&[1, 2, 3, 4, 5, 6, 7, 9, 1, 2, 3], &cfg), [4, 5, 6]);
        // The latest of two occurrences wins.
        assert_eq!(find_draft(&[7, 8, 1, 9, 9, 7, 8, 2, 5, 7, 8], &cfg), [2, 5, 7]);
        // Only a 1-gram matches.
        assert_eq!(find_draft(&[5, 6, 1, 2, 6], &cfg), [1, 2, 6]);
        // No match, and too short contexts.
        assert!(find_draft(&[1, 2, 3], &cfg).is_empty());
        assert!(find_draft(&[1], &cfg).is_empty());
        assert!(find_draft(&[], &cfg).is_empty());
        // A draft stops at the end of the context.
        assert_eq!(find_draft(&[4, 4], &cfg), [4]);
    }
}
