//! [`BatchEngine`]: one thread owns the model and a KV pool and generates for many requests at
//! once, so concurrent agents and subagents share each read of the weights.
//!
//! Requests arrive over a channel from any thread or tokio task. Each iteration the worker runs
//! one batched forward pass ([`Model::forward_batch`]) in which every running sequence takes a
//! step: a decoding sequence feeds its last sampled token, a sequence still reading its prompt
//! feeds the next chunk of it (chunked prefill, so a long prompt does not stall the others).
//! A new request first takes the longest prefix of its prompt the pool has cached, so a
//! conversation's next turn or a subagent sharing a system prompt prefills only new tokens.
//! Finished sequences leave their blocks in the prefix tree for the next request.
//!
//! When the pool runs out of blocks, the newest sequence is paused and resumed later where it
//! stopped ([`Preemption`]); only a request that does not fit in the whole pool fails.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::mpsc as async_mpsc;

use crate::constraint::SharedConstraint;
use crate::error::{EngineError, Result};
use crate::generate::StopReason;
use crate::kv::{KvCache, KvError, KvPool};
use crate::model::{BatchInput, MAX_BATCH, Model};
use crate::preempt::{Preemptible, Preemption};
use crate::sampler::{Sampler, SamplerConfig};

/// Prompt tokens a sequence feeds per batched step while others are decoding.
pub const PREFILL_CHUNK: usize = 128;

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenerationRequest {
    /// The whole token sequence so far (system prompt, conversation, new message): whatever
    /// prefix of it is cached is not recomputed.
    pub prompt: Vec<u32>,
    /// Sampling settings.
    pub sampler: SamplerConfig,
    /// Most tokens to generate.
    pub max_tokens: usize,
    /// Tokens that end generation (not sent).
    pub stop_tokens: Vec<u32>,
    /// A rule on which tokens may be generated (a tool-call grammar), if any.
    pub constraint: Option<SharedConstraint>,
}

/// Counts and timings of one finished request.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestStats {
    /// Tokens in the prompt.
    pub prompt_tokens: usize,
    /// Prompt tokens whose keys and values came from the cache.
    pub reused_tokens: usize,
    /// Prompt tokens computed.
    pub prefilled_tokens: usize,
    /// Tokens generated.
    pub generated_tokens: usize,
    /// From submission to the first generated token.
    pub time_to_first_token: Duration,
    /// From submission to the end.
    pub total_time: Duration,
    /// Why generation ended.
    pub stop: StopReason,
    /// Times the request was paused for lack of KV memory and later resumed.
    pub pauses: usize,
}

/// What a request's stream yields.
#[derive(Debug)]
pub enum GenerationEvent {
    /// A generated token.
    Token(u32),
    /// Generation ended; no event follows.
    Done(RequestStats),
    /// Generation failed; no event follows.
    Failed(EngineError),
}

/// The events of one request. Dropping it cancels the request.
#[derive(Debug)]
pub struct GenerationStream {
    events: async_mpsc::UnboundedReceiver<GenerationEvent>,
    stop: Arc<AtomicBool>,
}

impl GenerationStream {
    /// The next event, awaiting it (for tokio tasks).
    pub async fn next(&mut self) -> Option<GenerationEvent> {
        self.events.recv().await
    }

    /// The next event, blocking the thread (outside an async runtime).
    pub fn next_blocking(&mut self) -> Option<GenerationEvent> {
        self.events.blocking_recv()
    }

    /// Ends the request at the engine's next step. Unlike dropping the stream, its `Done` event
    /// still comes, with [`StopReason::Cancelled`] and the counts so far; a token or two sampled
    /// meanwhile may come before it.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

struct Job {
    request: GenerationRequest,
    events: async_mpsc::UnboundedSender<GenerationEvent>,
    submitted: Instant,
    /// Set by [`GenerationStream::stop`].
    stop: Arc<AtomicBool>,
}

/// A handle to the generation thread; cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct BatchEngine {
    jobs: Option<mpsc::Sender<Box<Job>>>,
    worker: Option<JoinHandle<()>>,
}

impl BatchEngine {
    /// Starts the generation thread for `model` with sequences in `pool`, stepping at most
    /// `max_sequences` sequences together (more wait their turn).
    pub fn start(model: Model, pool: KvPool, max_sequences: usize) -> Self {
        let (tx, rx) = mpsc::channel();
        let worker = std::thread::Builder::new()
            .name("hearth-batch-engine".into())
            .spawn(move || {
                let preemption = Preemption::new(pool.clone());
                Worker { model, pool, max_sequences: max_sequences.max(1), running: Vec::new(), preemption }.run(rx)
            })
            .ok();
        Self { jobs: Some(tx), worker }
    }

    /// Queues `request` and returns the stream of its events.
    pub fn submit(&self, request: GenerationRequest) -> GenerationStream {
        let (events, rx) = async_mpsc::unbounded_channel();
        let stop = Arc::new(AtomicBool::new(false));
        let job = Box::new(Job { request, events, submitted: Instant::now(), stop: stop.clone() });
        let sent = self.jobs.as_ref().map(|jobs| jobs.send(job));
        if let Some(Err(mpsc::SendError(job))) = sent {
            let _ = job.events.send(GenerationEvent::Failed(EngineError::EngineStopped));
        }
        GenerationStream { events: rx, stop }
    }
}

impl Drop for BatchEngine {
    /// Lets running requests finish, then stops the thread.
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

struct Running {
    job: Job,
    cache: KvCache,
    sampler: Sampler,
    /// Tokens still to feed: the rest of the prompt, then each sampled token.
    pending: Vec<u32>,
    reused: usize,
    generated: usize,
    first_token: Option<Duration>,
    pauses: usize,
}

impl Preemptible for Running {
    fn kv(&self) -> (&KvCache, &[u32]) {
        (&self.cache, &self.pending)
    }

    fn kv_mut(&mut self) -> (&mut KvCache, &mut Vec<u32>) {
        (&mut self.cache, &mut self.pending)
    }

    fn on_pause(&mut self) {
        self.pauses += 1;
    }
}

struct Worker {
    model: Model,
    pool: KvPool,
    max_sequences: usize,
    /// In admission order, as [`Preemption`] requires.
    running: Vec<Running>,
    preemption: Preemption<Running>,
}

impl Worker {
    fn run(mut self, jobs: mpsc::Receiver<Box<Job>>) {
        loop {
            if self.running.is_empty() && self.preemption.is_empty() {
                match jobs.recv() {
                    Ok(job) => self.admit(*job),
                    Err(_) => return,
                }
            }
            self.preemption.retain(|r| !r.job.events.is_closed());
            self.preemption.resume(&mut self.running, self.max_sequences);
            // New requests wait while a paused one does, so they cannot take the memory it needs.
            while self.preemption.is_empty() && self.running.len() < self.max_sequences {
                match jobs.try_recv() {
                    Ok(job) => self.admit(*job),
                    Err(_) => break,
                }
            }
            self.step();
        }
    }

    fn admit(&mut self, job: Job) {
        let sampler = match Sampler::new(job.request.sampler.clone()) {
            Ok(s) => s,
            Err(e) => return fail(&job, e.into()),
        };
        if job.request.prompt.is_empty() {
            return fail(&job, EngineError::EmptyInput);
        }
        let limit = self.model.config().context_length;
        if job.request.prompt.len() >= limit {
            return fail(&job, EngineError::ContextFull { needed: job.request.prompt.len() + 1, limit });
        }
        if let Err(e) = self.pool.check_fits(job.request.prompt.len()) {
            return fail(&job, e.into());
        }
        let mut cache = self.pool.new_sequence();
        let reused = cache.reuse_prefix(&job.request.prompt);
        let pending = job.request.prompt[reused..].to_vec();
        let first_token = None;
        self.running.push(Running { job, cache, sampler, pending, reused, generated: 0, first_token, pauses: 0 });
    }

    /// One batched forward pass over every running sequence (pausing sequences while the pool
    /// is short of blocks), then sampling for those whose input is all in.
    fn step(&mut self) {
        while let Some(i) = self.running.iter().position(|r| r.job.stop.load(Ordering::Relaxed)) {
            self.running.remove(i).finish(StopReason::Cancelled);
        }
        if self.running.is_empty() {
            return;
        }
        let model = &self.model;
        let result = self.preemption.run_pass(&mut self.running, |running| forward(model, running));
        let (takes, logits) = match result {
            Ok(r) => r,
            Err(e @ EngineError::Kv(KvError::BudgetTooSmall { .. })) => {
                // The one sequence left does not fit in the pool on its own.
                if let Some(r) = self.running.pop() {
                    let _ = r.job.events.send(GenerationEvent::Failed(e));
                }
                return;
            }
            Err(e) => {
                // Nothing suggests a retry would go otherwise: end them all with the error.
                let msg = e.to_string();
                for r in self.running.drain(..) {
                    let _ = r.job.events.send(GenerationEvent::Failed(EngineError::StepFailed(msg.clone())));
                }
                return;
            }
        };
        let stepped = takes.iter().enumerate().filter(|(_, n)| **n > 0).map(|(i, _)| i);
        let mut finished = Vec::new();
        for (row, i) in logits.iter().zip(stepped) {
            let r = &mut self.running[i];
            r.pending.drain(..takes[i]);
            if !r.pending.is_empty() {
                continue;
            }
            let full = r.cache.len() >= self.model.config().context_length;
            if let Some(stop) = r.sample(row, full) {
                finished.push((i, stop));
            }
        }
        for (i, stop) in finished.into_iter().rev() {
            let r = self.running.remove(i);
            r.finish(stop);
        }
    }
}

/// One batched forward pass in which each of `running` feeds its next pending tokens (prompt
/// chunks within [`MAX_BATCH`] in all). Returns how many tokens each fed and the logits of those
/// that fed any, in order.
fn forward(model: &Model, running: &mut [Running]) -> Result<(Vec<usize>, Vec<Vec<f32>>)> {
    let mut budget = MAX_BATCH;
    let mut takes = Vec::with_capacity(running.len());
    for r in running.iter() {
        let n = r.pending.len().min(PREFILL_CHUNK).min(budget);
        budget -= n;
        takes.push(n);
    }
    // Sequences that sample after this pass get their allowed-token sets computed meanwhile.
    let preparing: Vec<SharedConstraint> = running
        .iter()
        .zip(&takes)
        .filter(|(r, n)| **n > 0 && r.pending.len() == **n)
        .filter_map(|(r, _)| r.job.request.constraint.clone())
        .collect();
    let mut batch: Vec<BatchInput<'_>> = running
        .iter_mut()
        .zip(&takes)
        .filter(|(_, n)| **n > 0)
        .map(|(r, &n)| BatchInput { cache: &mut r.cache, tokens: &r.pending[..n] })
        .collect();
    let logits = std::thread::scope(|scope| {
        for c in &preparing {
            scope.spawn(move || {
                // An error here resurfaces when the mask is applied.
                let _ = c.with(|c| c.prepare());
            });
        }
        model.forward_batch(&mut batch).and_then(|l| Ok(l.to_vec2::<f32>()?))
    })?;
    Ok((takes, logits))
}

impl Running {
    /// Samples the next token and sends it; returns why generation stops, if it does.
    /// `context_full` says no further token fits the model's context.
    fn sample(&mut self, logits: &[f32], context_full: bool) -> Option<StopReason> {
        let constrained;
        let logits = match &self.job.request.constraint {
            Some(c) => {
                let mut masked = logits.to_vec();
                if let Err(e) = c.with(|c| c.apply(&mut masked)) {
                    let _ = self.job.events.send(GenerationEvent::Failed(EngineError::Constraint(e)));
                    return Some(StopReason::Cancelled);
                }
                constrained = masked;
                &constrained[..]
            }
            None => logits,
        };
        let token = match self.sampler.sample(logits, self.cache.tokens()) {
            Ok(t) => t,
            Err(e) => {
                let _ = self.job.events.send(GenerationEvent::Failed(e.into()));
                return Some(StopReason::Cancelled);
            }
        };
        self.first_token.get_or_insert_with(|| self.job.submitted.elapsed());
        if self.job.request.stop_tokens.contains(&token) {
            return Some(StopReason::EndOfGeneration);
        }
        let (forced, finished) = match &self.job.request.constraint {
            Some(c) => match c.with(|c| Ok((c.commit(token)?, c.is_finished()))) {
                Ok(r) => r,
                Err(e) => {
                    let _ = self.job.events.send(GenerationEvent::Failed(EngineError::Constraint(e)));
                    return Some(StopReason::Cancelled);
                }
            },
            None => (Vec::new(), false),
        };
        for t in std::iter::once(token).chain(forced.iter().copied()) {
            self.generated += 1;
            if self.job.events.send(GenerationEvent::Token(t)).is_err() {
                return Some(StopReason::Cancelled);
            }
            self.pending.push(t);
            if self.generated >= self.job.request.max_tokens || context_full {
                return Some(StopReason::Length);
            }
        }
        // Forced tokens go into the next pass together, not one step each.
        if finished {
            return Some(StopReason::EndOfGeneration);
        }
        None
    }

    fn finish(self, stop: StopReason) {
        let prompt_tokens = self.job.request.prompt.len();
        let stats = RequestStats {
            prompt_tokens,
            reused_tokens: self.reused,
            prefilled_tokens: prompt_tokens - self.reused,
            generated_tokens: self.generated,
            time_to_first_token: self.first_token.unwrap_or_default(),
            total_time: self.job.submitted.elapsed(),
            stop,
            pauses: self.pauses,
        };
        let _ = self.job.events.send(GenerationEvent::Done(stats));
    }
}

fn fail(job: &Job, e: EngineError) {
    let _ = job.events.send(GenerationEvent::Failed(e));
}
