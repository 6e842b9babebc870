//! The engine worker: one thread that owns the model and generates for every request.
//!
//! HTTP handlers [`EngineHandle::submit`] a [`GenerationRequest`] into a bounded queue (full:
//! [`SubmitError::QueueFull`], answered 429) and read [`GenerationEvent`]s from the channel they
//! get back. The worker admits queued requests while fewer than
//! [`WorkerConfig::max_sequences`] are active, and runs all active sequences in one batched
//! forward pass per step ([`scheduler`]): decoding sequences feed one token each, and prompts are
//! fed in chunks in the rest of the step's token budget. Every sequence comes from one
//! [`hearth_engine::KvPool`], so a new request starts from the longest prefix the pool has
//! cached. When the pool is full, the newest requests are paused and resume where they stopped
//! once there is room; only a request larger than the whole pool fails. A request whose event
//! receiver is gone (client disconnected) is dropped at the next step.

mod scheduler;
mod sequence;
pub mod stop;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, SyncSender, TrySendError};

use hearth_engine::sampler::SamplerConfig;
use hearth_engine::{Model, Tokenizer};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use crate::config::WorkerConfig;
use crate::constraint::TokenConstraint;
use crate::error::ErrorKind;
use crate::metrics::Metrics;

/// What the worker needs to run a model.
pub struct Engine {
    /// The model; only the worker thread runs it.
    pub model: Model,
    /// Its tokenizer (decoding generated tokens, end-of-generation ids).
    pub tokenizer: Arc<Tokenizer>,
    /// The thread pool the model's kernels run in.
    pub threads: rayon::ThreadPool,
}

/// One generation job.
pub struct GenerationRequest {
    /// The prompt, already tokenized (at least one token).
    pub prompt: Vec<u32>,
    /// How to pick tokens.
    pub sampling: SamplerConfig,
    /// Most tokens to generate.
    pub max_tokens: usize,
    /// Strings that end generation when they appear in the output (not included).
    pub stop: Vec<String>,
    /// Keep generating past end-of-generation tokens (benchmarks).
    pub ignore_eos: bool,
    /// Constrained decoding for this request, if any.
    pub constraint: Option<Box<dyn TokenConstraint>>,
}

/// Why a generation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FinishReason {
    /// The model ended its turn (end-of-generation token) or the constraint completed.
    EndOfTurn,
    /// A stop string appeared; it is not part of the output.
    StopString(String),
    /// The token limit or the context window was reached.
    Length,
}

/// Token counts of one request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Tokens in the prompt.
    pub prompt_tokens: usize,
    /// Of those, tokens taken from the prefix cache instead of computed.
    pub cached_tokens: usize,
    /// Tokens generated.
    pub completion_tokens: usize,
}

/// What the worker tells a request, in order: `Started`, any number of `Text`, then `Finished`
/// or `Failed`.
#[derive(Debug, Clone, PartialEq)]
pub enum GenerationEvent {
    /// The request was admitted; its prompt's cached part is known.
    Started {
        /// Tokens in the prompt.
        prompt_tokens: usize,
        /// Tokens of it reused from the prefix cache.
        cached_tokens: usize,
    },
    /// More output text.
    Text(String),
    /// Generation ended normally.
    Finished {
        /// Why.
        reason: FinishReason,
        /// Token counts.
        usage: Usage,
    },
    /// Generation failed or the request could not start.
    Failed(Failure),
}

/// Why a request ended without a reply, and whose fault it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The request cannot be served as asked (answered 400) rather than the engine failing (500).
    pub rejected: bool,
    /// What went wrong, for the client.
    pub message: String,
}

impl Failure {
    /// The status kind a client is answered with.
    pub fn kind(&self) -> ErrorKind {
        if self.rejected { ErrorKind::InvalidRequest } else { ErrorKind::Internal }
    }
}

/// Why a request was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    /// The queue is full: the client should retry later.
    #[error("the server is busy: the request queue is full, retry later")]
    QueueFull,
    /// The worker thread has stopped.
    #[error("the engine worker has stopped")]
    Stopped,
}

/// A request in the queue, with the channel its events go to.
pub(crate) struct Job {
    pub(crate) request: GenerationRequest,
    pub(crate) events: UnboundedSender<GenerationEvent>,
}

/// The sending side of the worker's queue; cheap to clone, shared by all handlers.
#[derive(Clone)]
pub struct EngineHandle {
    queue: SyncSender<Job>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for EngineHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineHandle").finish_non_exhaustive()
    }
}

impl EngineHandle {
    /// Queues `request`; its events arrive on the returned channel. Dropping the receiver
    /// cancels the request.
    pub fn submit(&self, request: GenerationRequest) -> Result<UnboundedReceiver<GenerationEvent>, SubmitError> {
        let (events, receiver) = unbounded_channel();
        // Counted before sending so the worker's decrement can never run first.
        self.metrics.queue_depth.fetch_add(1, Ordering::SeqCst);
        match self.queue.try_send(Job { request, events }) {
            Ok(()) => {
                self.metrics.requests_accepted.fetch_add(1, Ordering::Relaxed);
                Ok(receiver)
            }
            Err(e) => {
                self.metrics.queue_depth.fetch_sub(1, Ordering::SeqCst);
                match e {
                    TrySendError::Full(_) => {
                        self.metrics.requests_rejected.fetch_add(1, Ordering::Relaxed);
                        Err(SubmitError::QueueFull)
                    }
                    TrySendError::Disconnected(_) => Err(SubmitError::Stopped),
                }
            }
        }
    }

    /// The metrics the worker updates.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }
}

/// Starts the worker thread for `engine`. It runs until every [`EngineHandle`] is dropped and
/// the last active sequence has finished. Fails when the thread cannot start or the KV pool
/// cannot be had (device memory for a model on a GPU).
pub fn spawn(
    engine: Engine,
    config: WorkerConfig,
    metrics: Arc<Metrics>,
) -> std::io::Result<(EngineHandle, std::thread::JoinHandle<()>)> {
    let (queue, jobs) = mpsc::sync_channel(config.queue_capacity);
    let worker_metrics = metrics.clone();
    let pool = engine.model.new_kv_pool(config.kv_budget_bytes).map_err(std::io::Error::other)?;
    let thread = std::thread::Builder::new()
        .name("hearth-engine".into())
        .spawn(move || scheduler::run(engine, pool, config, jobs, worker_metrics))?;
    Ok((EngineHandle { queue, metrics }, thread))
}
