//! Loop guards for small models: after each step's tool calls, decides which tools the next
//! reply may call and what note to append to the results. The limits are enforced by the grammar
//! (a tool left out cannot be emitted), not left to the prompt: models of 0.5-1.5B parameters
//! repeat a successful call, search again and again without reading what they found, or spend
//! the last allowed step on a call whose result nobody sees.

use serde_json::Value;

/// The tools a reply may call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyTools {
    /// Every tool the permission mode offers.
    All,
    /// Those without the search tools (`grep`, `glob`).
    NoSearch,
    /// None: the reply is a plain-text answer.
    TextOnly,
}

/// The tools that only search; a run of steps calling nothing else is a search loop.
pub const SEARCH_TOOLS: [&str; 2] = ["grep", "glob"];

/// Search steps in a row after which the next reply may not search.
const SEARCH_STREAK_LIMIT: usize = 2;

/// What the next reply may call, and a note for the model (appended to the last tool result).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextStep {
    /// The tools the next reply may call.
    pub tools: ReplyTools,
    /// Why they are limited, addressed to the model; `None` when they are not.
    pub note: Option<String>,
}

/// Watches one turn's steps.
#[derive(Debug, Clone)]
pub struct StepGuard {
    max_steps: usize,
    previous: Vec<(String, Value)>,
    /// Every search call made in the turn.
    searches: Vec<(String, Value)>,
    search_streak: usize,
}

impl StepGuard {
    /// A guard for a turn of at most `max_steps` model calls.
    pub fn new(max_steps: usize) -> Self {
        Self { max_steps, previous: Vec::new(), searches: Vec::new(), search_streak: 0 }
    }

    /// Records the calls (name, arguments) that step `step` (from 1) made and decides the next.
    /// The first reply may call every tool, even in a one-step turn: its calls still run.
    pub fn after_calls(&mut self, step: usize, calls: &[(String, Value)]) -> NextStep {
        let repeated = calls == self.previous.as_slice();
        self.previous = calls.to_vec();
        let searching = !calls.is_empty() && calls.iter().all(|(name, _)| SEARCH_TOOLS.contains(&name.as_str()));
        // A search gives the same result whenever it runs again in a turn; a command may not
        // (tests run before and after a fix), so only searches are compared with all earlier ones.
        let searched_before = searching && calls.iter().all(|call| self.searches.contains(call));
        if searching {
            self.searches.extend(calls.iter().cloned());
        }
        self.search_streak = if searching { self.search_streak + 1 } else { 0 };
        if step + 1 >= self.max_steps {
            return NextStep {
                tools: ReplyTools::TextOnly,
                note: Some(
                    "(Note: your next reply is the last step of this turn and cannot call tools. Answer the user now \
                     in plain text: what you found or changed, and what is left to do.)"
                        .into(),
                ),
            };
        }
        if searched_before {
            return NextStep {
                tools: ReplyTools::NoSearch,
                note: Some(
                    "(Note: you already ran exactly this search in this turn; its result is above and will not \
                     change. Searching is paused for your next step: read the file you need, change it with edit, \
                     or answer the user.)"
                        .into(),
                ),
            };
        }
        if repeated {
            return NextStep {
                tools: ReplyTools::TextOnly,
                note: Some(
                    "(Note: you made exactly this call in your previous step. Now answer the user in plain text, \
                     without calling a tool: say what was done and what the result is.)"
                        .into(),
                ),
            };
        }
        if self.search_streak >= SEARCH_STREAK_LIMIT {
            return NextStep {
                tools: ReplyTools::NoSearch,
                note: Some(format!(
                    "(Note: that makes {} searches in a row. Searching is paused for your next step: read a file \
                     the search found with read, change it with edit, or answer the user.)",
                    self.search_streak
                )),
            };
        }
        NextStep { tools: ReplyTools::All, note: None }
    }
}

#[cfg(test)]
mod tests;
