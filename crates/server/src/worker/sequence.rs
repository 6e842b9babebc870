//! One active request inside the worker: its KV sequence, the tokens still to feed, its sampler
//! and constraint, and the text on its way to the client.

use hearth_engine::kv::KvError;
use hearth_engine::preempt::Preemptible;
use hearth_engine::sampler::Sampler;
use hearth_engine::tokenizer::StreamDecoder;
use hearth_engine::{BatchInput, KvCache, KvPool, Tokenizer};
use tokio::sync::mpsc::UnboundedSender;

use crate::constraint::TokenConstraint;
use crate::worker::stop::StopMatcher;
use crate::worker::{Failure, FinishReason, GenerationEvent, Job, Usage};

/// Where a sequence stands after a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// More steps to go.
    Continue,
    /// It finished and told its client.
    Finished,
    /// It failed and told its client.
    Failed,
}

/// An admitted request.
pub(crate) struct Sequence<'t> {
    cache: KvCache,
    /// Tokens to feed next: the uncached rest of the prompt, then each sampled token (and any
    /// tokens a constraint forces after it).
    pending: Vec<u32>,
    /// Whether `pending` holds more than the last sampled tokens: the prompt, or everything
    /// again after a pause.
    prefilling: bool,
    /// Prompt and generated tokens, for the repetition penalty.
    context: Vec<u32>,
    sampler: Sampler,
    decoder: StreamDecoder<'t>,
    stop: StopMatcher,
    constraint: Option<Box<dyn TokenConstraint>>,
    events: UnboundedSender<GenerationEvent>,
    usage: Usage,
    max_tokens: usize,
    ignore_eos: bool,
    tokenizer: &'t Tokenizer,
    context_limit: usize,
}

impl<'t> Sequence<'t> {
    /// Admits `job`: takes the longest cached prefix of its prompt from `pool` and tells the
    /// client how much was cached. A request that cannot start is answered `Failed` here.
    pub(crate) fn admit(job: Job, pool: &KvPool, tokenizer: &'t Tokenizer, context_limit: usize) -> Option<Self> {
        let Job { request, events } = job;
        let fail = |message: String| {
            let _ = events.send(GenerationEvent::Failed(Failure { rejected: true, message }));
            None
        };
        if request.prompt.is_empty() {
            return fail("the prompt is empty".into());
        }
        if request.prompt.len() >= context_limit {
            return fail(format!(
                "the prompt has {} tokens; the model's context holds {context_limit}",
                request.prompt.len()
            ));
        }
        let sampler = match Sampler::new(request.sampling) {
            Ok(s) => s,
            Err(e) => return fail(e.to_string()),
        };
        if let Err(KvError::BudgetTooSmall { budget_bytes, tokens, needed_bytes }) =
            pool.check_fits(request.prompt.len())
        {
            return fail(budget_message(budget_bytes, tokens, needed_bytes));
        }
        let mut cache = pool.new_sequence();
        let cached = cache.reuse_prefix(&request.prompt);
        let usage = Usage { prompt_tokens: request.prompt.len(), cached_tokens: cached, completion_tokens: 0 };
        let _ = events.send(GenerationEvent::Started { prompt_tokens: usage.prompt_tokens, cached_tokens: cached });
        Some(Self {
            cache,
            pending: request.prompt[cached..].to_vec(),
            prefilling: true,
            context: request.prompt,
            sampler,
            decoder: tokenizer.stream_decoder(),
            stop: StopMatcher::new(request.stop),
            constraint: request.constraint,
            events,
            usage,
            max_tokens: request.max_tokens,
            ignore_eos: request.ignore_eos,
            tokenizer,
            context_limit,
        })
    }

    /// Token counts so far.
    pub(crate) fn usage(&self) -> Usage {
        self.usage
    }

    /// Whether the client has gone away.
    pub(crate) fn is_cancelled(&self) -> bool {
        self.events.is_closed()
    }

    /// Whether the sequence is generating (rather than still reading its prompt, or its tokens
    /// again after a pause).
    pub(crate) fn is_decoding(&self) -> bool {
        !self.prefilling
    }

    /// Tokens waiting to be fed.
    pub(crate) fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// The sequence's part of a batched step: its first `n` pending tokens. When they are all
    /// it has pending, the step's logits will be sampled, so its constraint comes along too, to
    /// prepare its mask while the forward pass runs.
    pub(crate) fn input(&mut self, n: usize) -> (BatchInput<'_>, Option<&mut (dyn TokenConstraint + 'static)>) {
        let samples_next = n == self.pending.len();
        let constraint = self.constraint.as_deref_mut().filter(|_| samples_next);
        (BatchInput { cache: &mut self.cache, tokens: &self.pending[..n] }, constraint)
    }

    /// Takes the result of a step that fed `fed` pending tokens. `logits` are those of the last
    /// fed token; they are used only once every pending token has been fed. Returns where the
    /// sequence stands and how many tokens it generated.
    pub(crate) fn advance(&mut self, fed: usize, logits: &mut [f32]) -> (Outcome, usize) {
        self.pending.drain(..fed.min(self.pending.len()));
        if !self.pending.is_empty() {
            return (Outcome::Continue, 0);
        }
        self.prefilling = false;
        match self.sample(logits) {
            Ok(outcome) => outcome,
            Err(message) => {
                self.fail(message);
                (Outcome::Failed, 0)
            }
        }
    }

    fn sample(&mut self, logits: &mut [f32]) -> Result<(Outcome, usize), String> {
        if let Some(c) = self.constraint.as_mut() {
            c.apply(logits).map_err(|e| format!("constrained decoding failed: {e}"))?;
        }
        let token = self.sampler.sample(logits, &self.context).map_err(|e| e.to_string())?;
        if !self.ignore_eos && self.tokenizer.is_end_of_generation(token) {
            return Ok((self.finish(FinishReason::EndOfTurn), 0));
        }
        let mut new = vec![token];
        if let Some(c) = self.constraint.as_mut() {
            new.extend(c.commit(token).map_err(|e| format!("constrained decoding failed: {e}"))?);
        }
        let room = self.max_tokens - self.usage.completion_tokens;
        new.truncate(room);
        let generated = new.len();
        self.usage.completion_tokens += generated;
        self.context.extend_from_slice(&new);
        for &t in &new {
            let text = self.decoder.push(t).map_err(|e| e.to_string())?;
            let (out, stop) = self.stop.push(&text);
            self.send_text(out);
            if let Some(stop) = stop {
                return Ok((self.finish(FinishReason::StopString(stop)), generated));
            }
        }
        if self.constraint.as_ref().is_some_and(|c| c.is_finished()) {
            return Ok((self.finish(FinishReason::EndOfTurn), generated));
        }
        // The last sampled token is not in the cache yet; it is fed by the next step.
        if self.usage.completion_tokens >= self.max_tokens || self.cache.len() + new.len() >= self.context_limit {
            return Ok((self.finish(FinishReason::Length), generated));
        }
        self.pending = new;
        Ok((Outcome::Continue, generated))
    }

    fn send_text(&self, text: String) {
        if !text.is_empty() {
            let _ = self.events.send(GenerationEvent::Text(text));
        }
    }

    fn finish(&mut self, reason: FinishReason) -> Outcome {
        if !matches!(reason, FinishReason::StopString(_)) {
            let rest = self.decoder.finish();
            let (mut out, _) = self.stop.push(&rest);
            out.push_str(&self.stop.finish());
            self.send_text(out);
        }
        let _ = self.events.send(GenerationEvent::Finished { reason, usage: self.usage });
        Outcome::Finished
    }

    /// Ends the sequence with an engine error its client is told.
    pub(crate) fn fail(&self, message: String) {
        let _ = self.events.send(GenerationEvent::Failed(Failure { rejected: false, message }));
    }

    /// Ends the sequence because the request itself cannot be served (it outgrew the KV budget).
    pub(crate) fn reject(&self, message: String) {
        let _ = self.events.send(GenerationEvent::Failed(Failure { rejected: true, message }));
    }
}

impl Preemptible for Sequence<'_> {
    fn kv(&self) -> (&KvCache, &[u32]) {
        (&self.cache, &self.pending)
    }

    fn kv_mut(&mut self) -> (&mut KvCache, &mut Vec<u32>) {
        (&mut self.cache, &mut self.pending)
    }

    fn on_pause(&mut self) {
        self.prefilling = true;
    }
}

/// What the client of a request is told when its `tokens` need `needed_bytes` of KV cache, more
/// than the server's whole budget.
pub(crate) fn budget_message(budget_bytes: usize, tokens: usize, needed_bytes: usize) -> String {
    let mib = |bytes: usize| bytes as f64 / (1 << 20) as f64;
    format!(
        "this request's {tokens} tokens need {:.1} MiB of KV cache, more than the server's whole KV budget \
         of {:.1} MiB (hearth serve --kv-memory-mb raises it)",
        mib(needed_bytes),
        mib(budget_bytes)
    )
}
