//! The worker loop: resume paused sequences or admit queued requests, run one batched forward
//! pass over every active sequence, sample, repeat.
//!
//! Each step's token budget goes first to decoding sequences (one token each, so their latency
//! stays flat while prompts arrive), then to prompt chunks in admission order. This is where the
//! engine is called, in [`step`]; everything else is bookkeeping. When the KV pool is full, the
//! engine's [`Preemption`] pauses the newest sequences and resumes them, oldest first, when
//! there is room again; no new request is admitted while one waits.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::Instant;

use hearth_engine::kv::KvError;
use hearth_engine::preempt::Preemption;
use hearth_engine::{EngineError, KvPool, Model};

use crate::config::WorkerConfig;
use crate::metrics::Metrics;
use crate::worker::sequence::{Outcome, Sequence, budget_message};
use crate::worker::{Engine, Job};

/// Runs until the queue is closed and no sequence is left.
pub(crate) fn run(engine: Engine, pool: KvPool, config: WorkerConfig, jobs: Receiver<Job>, metrics: Arc<Metrics>) {
    let Engine { model, tokenizer, threads } = engine;
    metrics.kv_budget_bytes.store(config.kv_budget_bytes, Ordering::Relaxed);
    let context_limit = model.config().context_length;
    // In admission order, as `Preemption` requires.
    let mut active: Vec<Sequence<'_>> = Vec::new();
    let mut preemption: Preemption<Sequence<'_>> = Preemption::new(pool.clone());
    let mut open = true;
    loop {
        if active.is_empty() && preemption.is_empty() {
            if !open {
                return;
            }
            // Idle: block until a request comes (or every handle is gone).
            match jobs.recv() {
                Ok(job) => admit(job, &pool, &tokenizer, context_limit, &metrics, &mut active),
                Err(_) => return,
            }
        }
        let gone = preemption.retain(|s| !s.is_cancelled());
        preemption.resume(&mut active, config.max_sequences);
        // New requests wait while a paused one does, so they cannot take the memory it needs.
        while open && preemption.is_empty() && active.len() < config.max_sequences {
            match jobs.try_recv() {
                Ok(job) => admit(job, &pool, &tokenizer, context_limit, &metrics, &mut active),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => open = false,
            }
        }
        let before = active.len();
        active.retain(|s| !s.is_cancelled());
        metrics.requests_cancelled.fetch_add((gone + before - active.len()) as u64, Ordering::Relaxed);
        if !active.is_empty() {
            let started = Instant::now();
            threads.install(|| step(&model, &mut active, &mut preemption, config.step_tokens, &metrics));
            metrics.busy_nanos.fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
        }
        metrics.active_sequences.store(active.len(), Ordering::Relaxed);
        metrics.paused_sequences.store(preemption.len(), Ordering::Relaxed);
        metrics.preemptions.store(preemption.pauses(), Ordering::Relaxed);
        let (stats, cached_blocks) = pool.stats();
        metrics.kv_allocated_bytes.store(stats.allocated_bytes, Ordering::Relaxed);
        metrics.kv_cached_blocks.store(cached_blocks, Ordering::Relaxed);
    }
}

fn admit<'t>(
    job: Job,
    pool: &KvPool,
    tokenizer: &'t hearth_engine::Tokenizer,
    context_limit: usize,
    metrics: &Metrics,
    active: &mut Vec<Sequence<'t>>,
) {
    metrics.queue_depth.fetch_sub(1, Ordering::SeqCst);
    match Sequence::admit(job, pool, tokenizer, context_limit) {
        Some(seq) => {
            let usage = seq.usage();
            metrics.prompt_tokens.fetch_add(usage.prompt_tokens as u64, Ordering::Relaxed);
            metrics.cached_prompt_tokens.fetch_add(usage.cached_tokens as u64, Ordering::Relaxed);
            active.push(seq);
        }
        None => {
            metrics.requests_failed.fetch_add(1, Ordering::Relaxed);
        }
    }
    metrics.active_sequences.store(active.len(), Ordering::Relaxed);
}

/// How many pending tokens each sequence feeds this step, within `budget` tokens: decoding
/// sequences first, then prompts in admission order.
/// `needs[i]` is (decoding, pending tokens) of sequence `i`.
fn plan(needs: &[(bool, usize)], budget: usize) -> Vec<usize> {
    let mut take = vec![0; needs.len()];
    let mut left = budget;
    for decoding in [true, false] {
        for (i, &(is_decoding, pending)) in needs.iter().enumerate() {
            if is_decoding == decoding && left > 0 {
                take[i] = pending.min(left);
                left -= take[i];
            }
        }
    }
    take
}

/// One batched forward pass feeding `take[i]` pending tokens of `active[i]`; returns the logits
/// of the last token of each sequence that fed any, in order.
fn forward(model: &Model, active: &mut [Sequence<'_>], take: &[usize]) -> Result<Vec<Vec<f32>>, EngineError> {
    let (mut inputs, preparing): (Vec<_>, Vec<_>) =
        active.iter_mut().zip(take).filter(|(_, n)| **n > 0).map(|(s, &n)| s.input(n)).unzip();
    // Constraints of sequences that sample after this pass compute their masks meanwhile.
    std::thread::scope(|scope| {
        for constraint in preparing.into_iter().flatten() {
            scope.spawn(move || {
                // An error here comes back when the mask is applied.
                let _ = constraint.prepare();
            });
        }
        model.forward_batch(&mut inputs).and_then(|l| Ok(l.to_vec2::<f32>()?))
    })
}

/// One forward pass over the planned tokens of every sequence (pausing the newest while the KV
/// pool is short of blocks), then sampling for those that fed their last pending token.
/// Finished and failed sequences are removed.
fn step<'t>(
    model: &Model,
    active: &mut Vec<Sequence<'t>>,
    preemption: &mut Preemption<Sequence<'t>>,
    budget: usize,
    metrics: &Metrics,
) {
    let mut take = Vec::new();
    let result = preemption.run_pass(active, |active| {
        let needs: Vec<(bool, usize)> = active.iter().map(|s| (s.is_decoding(), s.pending_len())).collect();
        take = plan(&needs, budget);
        forward(model, active, &take)
    });
    let stepped: Vec<usize> = take.iter().enumerate().filter(|(_, n)| **n > 0).map(|(i, _)| i).collect();
    let mut logits = match result {
        Ok(rows) => rows,
        Err(EngineError::Kv(KvError::BudgetTooSmall { budget_bytes, tokens, needed_bytes })) => {
            // The one sequence left does not fit in the pool on its own.
            if let Some(seq) = active.pop() {
                seq.reject(budget_message(budget_bytes, tokens, needed_bytes));
                metrics.requests_failed.fetch_add(1, Ordering::Relaxed);
            }
            return;
        }
        Err(e) => {
            for &i in &stepped {
                active[i].fail(format!("the engine failed: {e}"));
            }
            metrics.requests_failed.fetch_add(stepped.len() as u64, Ordering::Relaxed);
            let mut i = 0;
            active.retain(|_| {
                i += 1;
                !stepped.contains(&(i - 1))
            });
            return;
        }
    };
    let mut outcomes = vec![Outcome::Continue; active.len()];
    let mut generated = 0;
    for (row, &i) in logits.iter_mut().zip(&stepped) {
        let (outcome, n) = active[i].advance(take[i], row);
        outcomes[i] = outcome;
        generated += n;
    }
    metrics.record_generated(generated as u64);
    let mut outcomes = outcomes.into_iter();
    active.retain(|_| match outcomes.next() {
        Some(Outcome::Finished) => {
            metrics.requests_completed.fetch_add(1, Ordering::Relaxed);
            false
        }
        Some(Outcome::Failed) => {
            metrics.requests_failed.fetch_add(1, Ordering::Relaxed);
            false
        }
        _ => true,
    });
}

#[cfg(test)]
mod tests {
    use super::plan;

    #[test]
    fn decoding_sequences_go_first_then_prompts_in_order() {
        // A prompt of 300, a decoder, a prompt of 300, a decoder; 512 tokens per step.
        let needs = [(false, 300), (true, 1), (false, 300), (true, 1)];
        assert_eq!(plan(&needs, 512), vec![300, 1, 210, 1]);
        assert_eq!(plan(&needs, 2), vec![0, 1, 0, 1]);
        assert_eq!(plan(&[], 512), Vec::<usize>::new());
    }
}
