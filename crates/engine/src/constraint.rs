//! [`TokenConstraint`]: a rule on which tokens a request may generate next (a grammar, for tool
//! calls valid by construction). The engine asks it to prepare the next step's allowed set while
//! the forward pass runs, applies it to the logits before sampling, and feeds the tokens it forces
//! in the next batched pass instead of sampling them one by one.

use std::sync::{Arc, Mutex};

/// Decides which tokens may come next. Implemented by the grammar crate.
pub trait TokenConstraint: Send {
    /// Computes the set of tokens allowed next. Called on another thread while the forward pass
    /// of the current step runs; [`TokenConstraint::apply`] computes it itself if this was not
    /// called.
    fn prepare(&mut self) -> Result<(), String>;

    /// Sets the logit of every token that may not come next to negative infinity.
    fn apply(&mut self, logits: &mut [f32]) -> Result<(), String>;

    /// Records the sampled `token` and returns the tokens the rule forces after it, which the
    /// engine appends without sampling.
    fn commit(&mut self, token: u32) -> Result<Vec<u32>, String>;

    /// Whether nothing more may be generated.
    fn is_finished(&self) -> bool;
}

/// A constraint shared between the request's owner and the generation thread.
#[derive(Clone)]
pub struct SharedConstraint(Arc<Mutex<Box<dyn TokenConstraint>>>);

impl SharedConstraint {
    /// Wraps `constraint` for a [`crate::batch_engine::GenerationRequest`].
    pub fn new(constraint: impl TokenConstraint + 'static) -> Self {
        Self(Arc::new(Mutex::new(Box::new(constraint))))
    }

    /// Runs `f` on the constraint; a panicked holder leaves it unusable, reported as an error.
    pub fn with<T>(&self, f: impl FnOnce(&mut dyn TokenConstraint) -> Result<T, String>) -> Result<T, String> {
        let mut guard = self.0.lock().map_err(|_| "the token constraint was poisoned by a panic".to_string())?;
        f(guard.as_mut())
    }
}

impl std::fmt::Debug for SharedConstraint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedConstraint")
    }
}
