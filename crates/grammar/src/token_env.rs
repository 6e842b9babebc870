//! The model's vocabulary as llguidance sees it: every token's bytes in a trie, special tokens
//! marked, end-of-generation tokens named. Built once per model and shared by every sequence.

use std::sync::Arc;

use hearth_engine::Tokenizer;
use hearth_engine::tokenizer::{TokenType, VocabKind};
use llguidance::ParserFactory;
use toktrie::{TokEnv, TokRxInfo, TokTrie, TokenId, TokenizerEnv};

use crate::error::{GrammarError, Result};

/// A model's token environment for llguidance and the parser factory built over it.
///
/// Building it walks the whole vocabulary (tens of milliseconds for 150k tokens), so a model
/// builds one and every grammar and session of that model shares it; cloning is cheap.
#[derive(Clone)]
pub struct GrammarEnv {
    tok_env: TokEnv,
    factory: Arc<ParserFactory>,
}

impl std::fmt::Debug for GrammarEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let trie = self.tok_env.tok_trie();
        f.debug_struct("GrammarEnv")
            .field("vocab_size", &trie.vocab_size())
            .field("eos_tokens", &trie.eos_tokens())
            .finish()
    }
}

impl GrammarEnv {
    /// The environment of `tokenizer`'s vocabulary.
    pub fn new(tokenizer: &Tokenizer) -> Result<Self> {
        let tok_env: TokEnv = Arc::new(HearthTokenizerEnv::new(tokenizer)?);
        // The factory precomputes how the vocabulary splits over common lexeme classes; it
        // panics only on internal invariants, which are reported as an error rather than crash.
        let mut factory =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| ParserFactory::new_simple(&tok_env)))
                .map_err(|_| GrammarError::TokenEnv("llguidance panicked building the parser factory".into()))?
                .map_err(|e| GrammarError::TokenEnv(e.to_string()))?;
        factory.quiet();
        Ok(Self { tok_env, factory: Arc::new(factory) })
    }

    /// llguidance's view of the tokenizer.
    pub fn tok_env(&self) -> &TokEnv {
        &self.tok_env
    }

    /// The parser factory grammars are compiled with.
    pub fn factory(&self) -> &ParserFactory {
        &self.factory
    }

    /// Number of tokens in the vocabulary (the length of every mask).
    pub fn vocab_size(&self) -> usize {
        self.tok_env.tok_trie().vocab_size()
    }

    /// Whether llguidance treats `token` as a special token (matched only by name in grammars).
    pub fn is_special(&self, token: u32) -> bool {
        self.tok_env.tok_trie().is_special_token(token)
    }

    /// The id of the special token written `name` (e.g. `<tool_call>`), if the vocabulary has it.
    pub fn special_token(&self, name: &str) -> Option<u32> {
        self.tok_env.tok_trie().get_special_token(name)
    }
}

/// Implements llguidance's tokenizer interface over hearth's own tokenizer, so the ids and
/// bytes llguidance works with are exactly the ones the engine samples and decodes.
struct HearthTokenizerEnv {
    tokenizer: Tokenizer,
    trie: TokTrie,
    /// Whether `tokenize_bytes` gives the tokenizer's own (canonical) ids; false when the
    /// tokenizer would prepend a space to every piece, so forced tokens come from the trie.
    canonical: bool,
}

impl HearthTokenizerEnv {
    fn new(tokenizer: &Tokenizer) -> Result<Self> {
        let vocab = tokenizer.vocab();
        let n = vocab.tokens.len();
        let vocab_size = u32::try_from(n).map_err(|_| GrammarError::TokenEnv(format!("{n} tokens")))?;
        let mut words = Vec::with_capacity(n);
        for id in 0..vocab_size {
            let text = tokenizer.token_text(id).unwrap_or_default();
            let ty = vocab.types.get(id as usize).copied().unwrap_or(TokenType::Normal);
            words.push(if is_special(ty, text) {
                // llguidance's convention: a special token's bytes are 0xFF followed by its name,
                // which no UTF-8 text contains, so text lexemes can never match one.
                let mut w = vec![TokTrie::SPECIAL_TOKEN_MARKER];
                w.extend_from_slice(text.as_bytes());
                w
            } else {
                tokenizer.token_bytes(id, true)?.to_vec()
            });
        }
        let eog = tokenizer.end_of_generation();
        let eos = tokenizer
            .eos()
            .or_else(|| eog.first().copied())
            .ok_or_else(|| GrammarError::TokenEnv("the vocabulary has no end-of-generation token".into()))?;
        let mut info = TokRxInfo::new(vocab_size, eos);
        info.tok_bos = tokenizer.bos();
        info.tok_unk = vocab.unk;
        info.tok_pad = vocab.pad;
        info.tok_end_of_turn = vocab.eot;
        let mut eos_tokens = vec![eos];
        eos_tokens.extend(eog.iter().copied().filter(|&t| t != eos));
        let trie = std::panic::catch_unwind(|| TokTrie::from(&info, &words).with_eos_tokens(&eos_tokens))
            .map_err(|_| GrammarError::TokenEnv("llguidance rejected the vocabulary".into()))?;
        let canonical = !(vocab.kind == VocabKind::SentencePiece && vocab.add_space_prefix);
        Ok(Self { tokenizer: tokenizer.clone(), trie, canonical })
    }

    fn encode(&self, text: &str, parse_special: bool) -> Vec<TokenId> {
        match self.tokenizer.encode(text, false, parse_special) {
            Ok(ids) => ids,
            Err(_) => self.trie.greedy_tokenize(text.as_bytes()),
        }
    }
}

/// Control tokens, and tokens added by the model's authors that look like markup (`<tool_call>`),
/// are special: grammars name them, text cannot spell them. Other added tokens (whitespace runs)
/// stay ordinary text.
fn is_special(ty: TokenType, text: &str) -> bool {
    match ty {
        TokenType::Control | TokenType::Unused => true,
        TokenType::UserDefined | TokenType::Unknown => text.len() > 2 && text.starts_with('<') && text.ends_with('>'),
        TokenType::Normal | TokenType::Byte => false,
    }
}

impl TokenizerEnv for HearthTokenizerEnv {
    fn tok_trie(&self) -> &TokTrie {
        &self.trie
    }

    fn tokenize_bytes(&self, s: &[u8]) -> Vec<TokenId> {
        if !self.canonical {
            return self.trie.greedy_tokenize(s);
        }
        let ids = self.trie.tokenize_with_greedy_fallback(s, |text| self.encode(text, false));
        if !ids.iter().any(|&t| self.trie.is_special_token(t)) {
            return ids;
        }
        // The tokenizer always matches added tokens such as `<tool_call>` in text, but here they
        // are plain text: spell them with ordinary tokens.
        let mut out = Vec::with_capacity(ids.len());
        for t in ids {
            if self.trie.is_special_token(t) {
                out.extend(self.trie.greedy_tokenize(&self.trie.token(t)[1..]));
            } else {
                out.push(t);
            }
        }
        out
    }

    fn tokenize_bytes_special(&self, s: &[u8]) -> Vec<TokenId> {
        if !self.canonical {
            return self.trie.greedy_tokenize(s);
        }
        self.trie.tokenize_with_greedy_fallback(s, |text| self.encode(text, true))
    }

    fn tokenize_is_canonical(&self) -> bool {
        self.canonical
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_and_control_tokens_are_special_whitespace_runs_are_not() {
        assert!(is_special(TokenType::Control, "<|im_end|>"));
        assert!(is_special(TokenType::UserDefined, "<tool_call>"));
        assert!(!is_special(TokenType::UserDefined, "\n\n\n"));
        assert!(!is_special(TokenType::UserDefined, "<>"));
        assert!(!is_special(TokenType::Normal, "<b>"));
    }
}
