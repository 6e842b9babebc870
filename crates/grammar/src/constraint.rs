//! A [`GrammarSession`] as the engine's [`TokenConstraint`], so requests to the batch engine
//! (agent turns, server requests) decode under a tool-call grammar.

use hearth_engine::constraint::TokenConstraint;

use crate::session::{GrammarSession, TokenMask};

/// A grammar session driving one request of the batch engine.
#[derive(Debug)]
pub struct GrammarConstraint {
    session: GrammarSession,
    /// The allowed set for the next step, computed ahead during the forward pass.
    next: Option<TokenMask>,
}

impl GrammarConstraint {
    /// Constrains a request to `session`'s grammar.
    pub fn new(session: GrammarSession) -> Self {
        Self { session, next: None }
    }
}

impl TokenConstraint for GrammarConstraint {
    fn prepare(&mut self) -> Result<(), String> {
        if self.next.is_none() {
            self.next = Some(self.session.compute_mask().map_err(|e| e.to_string())?);
        }
        Ok(())
    }

    fn apply(&mut self, logits: &mut [f32]) -> Result<(), String> {
        self.prepare()?;
        if let Some(mask) = &self.next {
            mask.apply(logits);
        }
        Ok(())
    }

    fn commit(&mut self, token: u32) -> Result<Vec<u32>, String> {
        self.next = None;
        self.session.commit(token).map_err(|e| e.to_string())?;
        Ok(self.session.commit_forced())
    }

    fn is_finished(&self) -> bool {
        self.session.is_finished()
    }
}
