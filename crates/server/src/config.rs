//! Settings of the server: what the HTTP side accepts and how the engine worker schedules.

/// Limits every request is checked against before it reaches the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest request body, in bytes; larger bodies are answered 413.
    pub max_body_bytes: usize,
    /// Most tokens one request may ask to generate; more is answered 400.
    pub max_tokens: usize,
    /// Tokens generated when a request names no limit (OpenAI requests may leave it out).
    pub default_max_tokens: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_body_bytes: 4 * 1024 * 1024, max_tokens: 8192, default_max_tokens: 1024 }
    }
}

/// How the engine worker takes requests and batches them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerConfig {
    /// Sequences generated together (continuous batching); more requests wait in the queue.
    pub max_sequences: usize,
    /// Requests that may wait for a free sequence slot; one more is answered 429.
    pub queue_capacity: usize,
    /// Memory for keys and values of all sequences and the prefix cache, in bytes.
    pub kv_budget_bytes: usize,
    /// Most tokens in one forward pass (decoding sequences plus prompt chunks).
    pub step_tokens: usize,
}

impl WorkerConfig {
    /// Checks that every setting can work.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_sequences == 0 {
            return Err("the number of parallel sequences must be at least 1".into());
        }
        if self.queue_capacity == 0 {
            return Err("the queue must hold at least 1 request".into());
        }
        if self.step_tokens <= self.max_sequences || self.step_tokens > hearth_engine::model::MAX_BATCH {
            return Err(format!(
                "tokens per step must be above the parallel sequences ({}) and at most {}",
                self.max_sequences,
                hearth_engine::model::MAX_BATCH
            ));
        }
        Ok(())
    }
}
