//! The tokenizer, built from a GGUF file's `tokenizer.ggml.*` metadata into a `tokenizers`
//! tokenizer that gives the same ids as llama.cpp for the same file.
//!
//! Encoding runs through `tokenizers` (added tokens, normalizer, pre-tokenizer regexes, BPE).
//! Decoding uses a table of each token's bytes instead, so that a stream of tokens can be turned
//! into text as it is generated without ever splitting a UTF-8 character.

mod build;
mod pieces;
mod vocab;

#[cfg(test)]
mod tests;

pub use pieces::StreamDecoder;
pub use vocab::{GgufVocab, TokenType, VocabKind};

use crate::gguf::{GgufError, GgufFile};

/// Errors building or running a tokenizer.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    #[error(transparent)]
    Gguf(#[from] GgufError),
    #[error("tokenizer model {0:?} is not supported (supported: gpt2, llama)")]
    UnsupportedModel(String),
    #[error("pre-tokenizer {0:?} is not supported")]
    UnsupportedPreTokenizer(String),
    #[error("invalid tokenizer metadata: {0}")]
    Invalid(String),
    #[error("cannot build the tokenizer: {0}")]
    Build(String),
    #[error("cannot encode text: {0}")]
    Encode(String),
    #[error("token id {id} is outside the vocabulary of {vocab} tokens")]
    UnknownToken { id: u32, vocab: usize },
}

/// A model's tokenizer.
#[derive(Debug, Clone)]
pub struct Tokenizer {
    vocab: GgufVocab,
    /// Plain text in, ids out, special tokens recognised.
    with_special: tokenizers::Tokenizer,
    /// The same, with control tokens treated as plain text.
    without_special: tokenizers::Tokenizer,
    pieces: pieces::TokenPieces,
    end_of_generation: Vec<u32>,
}

impl Tokenizer {
    /// Builds the tokenizer described by `gguf`'s metadata.
    pub fn from_gguf(gguf: &GgufFile) -> Result<Self, TokenizerError> {
        Self::from_vocab(GgufVocab::from_gguf(gguf)?)
    }

    /// Builds a tokenizer from an already-read vocabulary.
    pub fn from_vocab(vocab: GgufVocab) -> Result<Self, TokenizerError> {
        let with_special = build::build(&vocab)?;
        let mut without_special = with_special.clone();
        without_special.set_encode_special_tokens(true);
        let pieces = pieces::TokenPieces::new(&vocab);
        let end_of_generation = vocab.end_of_generation();
        Ok(Self { vocab, with_special, without_special, pieces, end_of_generation })
    }

    /// The `tokenizers` tokenizer, for libraries that take one (e.g. grammar engines).
    pub fn hf_tokenizer(&self) -> &tokenizers::Tokenizer {
        &self.with_special
    }

    /// The vocabulary read from the file.
    pub fn vocab(&self) -> &GgufVocab {
        &self.vocab
    }

    /// Number of tokens.
    pub fn vocab_size(&self) -> usize {
        self.vocab.tokens.len()
    }

    /// Tokenizes `text`. `add_special` adds BOS/EOS where the model asks for them;
    /// `parse_special` lets control tokens written in the text (`<|im_start|>`) become their ids.
    /// User-defined tokens (`<tool_call>`) are always recognised, as in llama.cpp.
    pub fn encode(&self, text: &str, add_special: bool, parse_special: bool) -> Result<Vec<u32>, TokenizerError> {
        let tokenizer = if parse_special { &self.with_special } else { &self.without_special };
        let mut ids = Vec::new();
        if add_special && self.vocab.add_bos {
            ids.extend(self.vocab.bos);
        }
        if !text.is_empty() {
            let encoding = tokenizer.encode_fast(text, false).map_err(|e| TokenizerError::Encode(e.to_string()))?;
            ids.extend_from_slice(encoding.get_ids());
        }
        if add_special && self.vocab.add_eos {
            ids.extend(self.vocab.eos);
        }
        Ok(ids)
    }

    /// The text of `ids`. With `show_special`, control tokens are written out as their text;
    /// without, they are left out (what a user should see). Invalid UTF-8 becomes U+FFFD.
    pub fn decode(&self, ids: &[u32], show_special: bool) -> Result<String, TokenizerError> {
        let mut bytes = Vec::new();
        for &id in ids {
            bytes.extend_from_slice(self.token_bytes(id, show_special)?);
        }
        let text = String::from_utf8_lossy(&bytes);
        Ok(match text.strip_prefix(' ') {
            Some(rest) if self.vocab.add_space_prefix => rest.to_string(),
            _ => text.into_owned(),
        })
    }

    /// The bytes one token stands for (possibly part of a UTF-8 character).
    pub fn token_bytes(&self, id: u32, show_special: bool) -> Result<&[u8], TokenizerError> {
        self.pieces.get(id, show_special).ok_or(TokenizerError::UnknownToken { id, vocab: self.vocab.tokens.len() })
    }

    /// The token's text as stored in the vocabulary (byte-level or `▁`-escaped).
    pub fn token_text(&self, id: u32) -> Option<&str> {
        self.vocab.tokens.get(id as usize).map(String::as_str)
    }

    /// The id of a token given its vocabulary text, e.g. `<|im_end|>`.
    pub fn token_id(&self, text: &str) -> Option<u32> {
        self.with_special.token_to_id(text)
    }

    /// Tokens after which generation stops (EOS, end of turn).
    pub fn end_of_generation(&self) -> &[u32] {
        &self.end_of_generation
    }

    /// Whether `id` ends a generation.
    pub fn is_end_of_generation(&self, id: u32) -> bool {
        self.end_of_generation.binary_search(&id).is_ok()
    }

    /// The BOS token, if the vocabulary has one.
    pub fn bos(&self) -> Option<u32> {
        self.vocab.bos
    }

    /// The EOS token, if the vocabulary has one.
    pub fn eos(&self) -> Option<u32> {
        self.vocab.eos
    }

    /// Whether the model expects BOS at the start of a sequence.
    pub fn adds_bos(&self) -> bool {
        self.vocab.add_bos
    }

    /// A decoder that turns generated ids into text as they come, for display.
    pub fn stream_decoder(&self) -> StreamDecoder<'_> {
        StreamDecoder::new(self)
    }
}
