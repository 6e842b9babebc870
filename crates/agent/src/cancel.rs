//! [`CancelFlag`]: how a front-end stops the current turn (Ctrl-C) without stopping the program.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A flag the loop checks between tokens and between tool calls.
#[derive(Debug, Clone, Default)]
pub struct CancelFlag(Arc<AtomicBool>);

impl CancelFlag {
    /// A flag that is not set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the running turn to stop.
    pub fn set(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether a stop was asked for.
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// Clears the flag before the next turn.
    pub fn reset(&self) {
        self.0.store(false, Ordering::SeqCst);
    }
}
