//! A grammar compiled for a model, and the per-sequence state that follows generation.

use llguidance::Matcher;
use llguidance::api::TopLevelGrammar;
use toktrie::SimpleVob;

use crate::error::{GrammarError, Result};
use crate::grammar::{ToolCallGrammar, with_layout};
use crate::token_env::GrammarEnv;

/// A grammar compiled against a model's vocabulary, ready to start sessions. Compiling is the
/// expensive part (milliseconds); each session starts from a copy of the compiled state.
pub struct CompiledGrammar {
    start: Matcher,
}

impl std::fmt::Debug for CompiledGrammar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledGrammar").finish_non_exhaustive()
    }
}

impl GrammarEnv {
    /// Compiles a tool-call grammar. A schema llguidance cannot enforce is reported against its
    /// tool; any other refusal as [`GrammarError::Rejected`].
    pub fn compile(&self, grammar: &ToolCallGrammar) -> Result<CompiledGrammar> {
        self.compile_llguidance(grammar.to_llguidance()).map_err(|e| match e {
            GrammarError::Rejected { message } => {
                self.blame_schema(grammar).unwrap_or(GrammarError::Rejected { message })
            }
            other => other,
        })
    }

    /// Compiles a JSON schema: the reply is one JSON value that follows it (a server's
    /// `response_format`), laid out as `json.dumps` writes it, so a model cannot stall in
    /// whitespace.
    pub fn compile_json_schema(&self, schema: &serde_json::Value) -> Result<CompiledGrammar> {
        self.compile_llguidance(TopLevelGrammar::from_json_schema(with_layout(schema)))
    }

    /// Compiles a grammar written in llguidance's lark dialect.
    pub fn compile_lark(&self, lark: &str) -> Result<CompiledGrammar> {
        self.compile_llguidance(TopLevelGrammar::from_lark(lark.to_string()))
    }

    fn compile_llguidance(&self, grammar: TopLevelGrammar) -> Result<CompiledGrammar> {
        let parser =
            self.factory().create_parser(grammar).map_err(|e| GrammarError::Rejected { message: e.to_string() })?;
        let start = Matcher::new(Ok(parser));
        if let Some(message) = start.get_error() {
            return Err(GrammarError::Rejected { message });
        }
        Ok(CompiledGrammar { start })
    }

    /// The first tool whose argument schema does not compile on its own, as an error.
    fn blame_schema(&self, grammar: &ToolCallGrammar) -> Option<GrammarError> {
        grammar.tools().iter().find_map(|tool| {
            let schema = TopLevelGrammar::from_json_schema(tool.parameters.clone());
            self.factory()
                .create_parser(schema)
                .err()
                .map(|e| GrammarError::InvalidSchema { tool: tool.name.clone(), message: e.to_string() })
        })
    }
}

impl CompiledGrammar {
    /// A new session at the start of the grammar.
    pub fn session(&self) -> GrammarSession {
        GrammarSession { matcher: self.start.deep_clone(), consumed: 0 }
    }
}

/// Where one sequence is in its grammar: which tokens may come next, which are forced.
/// Forks and rewinds with the sequence's KV cache.
pub struct GrammarSession {
    matcher: Matcher,
    consumed: usize,
}

impl std::fmt::Debug for GrammarSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrammarSession").field("consumed", &self.consumed).finish_non_exhaustive()
    }
}

/// The set of tokens the grammar allows next.
#[derive(Debug, Clone)]
pub struct TokenMask {
    allowed: SimpleVob,
}

impl TokenMask {
    /// Whether `token` is allowed.
    pub fn is_allowed(&self, token: u32) -> bool {
        (token as usize) < self.allowed.len() && self.allowed.is_allowed(token)
    }

    /// Number of allowed tokens.
    pub fn allowed_count(&self) -> usize {
        self.allowed.num_set()
    }

    /// The allowed token ids, ascending.
    pub fn allowed_tokens(&self) -> Vec<u32> {
        self.allowed.to_list()
    }

    /// Sets the logits of disallowed tokens to −∞, including those past the vocabulary (models
    /// pad their output matrix beyond the tokenizer's size).
    pub fn apply(&self, logits: &mut [f32]) {
        let n = self.allowed.len().min(logits.len());
        self.allowed.iter_unset_entries(|i| {
            if i < n {
                logits[i] = f32::NEG_INFINITY;
            }
        });
        for l in logits.iter_mut().skip(self.allowed.len()) {
            *l = f32::NEG_INFINITY;
        }
    }
}

impl GrammarSession {
    /// The tokens allowed next. Takes up to a few milliseconds, so generation runs it on
    /// another thread during the forward pass.
    pub fn compute_mask(&mut self) -> Result<TokenMask> {
        let allowed = self.matcher.compute_mask().map_err(|e| GrammarError::Matcher(e.to_string()))?;
        if allowed.is_zero() {
            return Err(GrammarError::Matcher("the grammar allows no token here".into()));
        }
        Ok(TokenMask { allowed })
    }

    /// Advances past a sampled token.
    pub fn commit(&mut self, token: u32) -> Result<()> {
        self.matcher.consume_token(token).map_err(|e| GrammarError::TokenRejected { token, message: e.to_string() })?;
        self.consumed += 1;
        Ok(())
    }

    /// Advances past every token the grammar forces from here (e.g. the fixed text of a call
    /// after its opening tag) and returns them, so they can be appended in one forward pass.
    pub fn commit_forced(&mut self) -> Vec<u32> {
        let forced = self.matcher.consume_ff_tokens();
        self.consumed += forced.len();
        forced
    }

    /// Whether the grammar is complete and allows nothing more.
    pub fn is_finished(&self) -> bool {
        self.matcher.is_stopped()
    }

    /// Whether the output so far is a complete sentence of the grammar (end of generation is
    /// allowed here).
    pub fn is_accepting(&mut self) -> bool {
        self.matcher.is_accepting().unwrap_or(false)
    }

    /// Tokens consumed so far (sampled and forced).
    pub fn consumed(&self) -> usize {
        self.consumed
    }

    /// An independent copy, for a forked sequence.
    pub fn fork(&self) -> Self {
        Self { matcher: self.matcher.deep_clone(), consumed: self.consumed }
    }

    /// Forgets the last `tokens` tokens, as when the sequence's cache is truncated.
    pub fn rewind(&mut self, tokens: usize) -> Result<()> {
        if tokens > self.consumed {
            return Err(GrammarError::RewindTooFar { requested: tokens, available: self.consumed });
        }
        self.matcher.rollback(tokens).map_err(|e| GrammarError::Matcher(e.to_string()))?;
        self.consumed -= tokens;
        Ok(())
    }

    /// llguidance's error, if the session is in an error state.
    pub fn error(&self) -> Option<String> {
        self.matcher.get_error()
    }
}

#[cfg(test)]
mod tests;
