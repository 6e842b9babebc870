//! What bytes each token stands for, and turning a stream of tokens into text.

use crate::tokenizer::build::SPM_SPACE;
use crate::tokenizer::vocab::{GgufVocab, TokenType, VocabKind};
use crate::tokenizer::{Tokenizer, TokenizerError};

/// The bytes of every token, in two forms: as shown to a user (control tokens empty) and
/// with control tokens written out.
#[derive(Debug, Clone)]
pub(crate) struct TokenPieces {
    bytes: Vec<Vec<u8>>,
    hidden: Vec<bool>,
}

impl TokenPieces {
    pub(crate) fn new(vocab: &GgufVocab) -> Self {
        let inverse = byte_level_inverse();
        let mut bytes = Vec::with_capacity(vocab.tokens.len());
        let mut hidden = Vec::with_capacity(vocab.tokens.len());
        for (text, &ty) in vocab.tokens.iter().zip(&vocab.types) {
            hidden.push(matches!(ty, TokenType::Control | TokenType::Unused));
            bytes.push(match (vocab.kind, ty) {
                (_, TokenType::Control | TokenType::UserDefined | TokenType::Unused) => text.as_bytes().to_vec(),
                (VocabKind::ByteLevelBpe, _) => text
                    .chars()
                    .flat_map(|c| match inverse.get(c as usize).copied().flatten() {
                        Some(b) => vec![b],
                        None => c.to_string().into_bytes(),
                    })
                    .collect(),
                (VocabKind::SentencePiece, TokenType::Byte) => {
                    parse_byte_token(text).map_or_else(|| text.as_bytes().to_vec(), |b| vec![b])
                }
                // llama.cpp shows SentencePiece's unknown token as a lower block.
                (VocabKind::SentencePiece, TokenType::Unknown) => "\u{2585}".as_bytes().to_vec(),
                (VocabKind::SentencePiece, _) => text.replace(SPM_SPACE, " ").into_bytes(),
            });
        }
        Self { bytes, hidden }
    }

    pub(crate) fn get(&self, id: u32, show_special: bool) -> Option<&[u8]> {
        let i = id as usize;
        let bytes = self.bytes.get(i)?;
        Some(if self.hidden[i] && !show_special { &[] } else { bytes })
    }
}

/// `<0xAB>` → 0xAB.
fn parse_byte_token(text: &str) -> Option<u8> {
    let hex = text.strip_prefix("<0x")?.strip_suffix('>')?;
    u8::from_str_radix(hex, 16).ok()
}

/// GPT-2's byte-level alphabet maps every byte to a printable character; this is its inverse,
/// indexed by character.
fn byte_level_inverse() -> Vec<Option<u8>> {
    let printable = |b: u8| (b'!'..=b'~').contains(&b) || (0xA1..=0xAC).contains(&b) || (0xAE..=0xFF).contains(&b);
    let mut inverse = vec![None; 512];
    let mut next = 256usize;
    for b in 0..=255u8 {
        if printable(b) {
            inverse[b as usize] = Some(b);
        } else {
            inverse[next] = Some(b);
            next += 1;
        }
    }
    inverse
}

#[cfg(test)]
pub(crate) mod tests_support {
    /// The byte-level alphabet in byte order.
    pub(crate) fn byte_level_chars() -> Vec<char> {
        let inverse = super::byte_level_inverse();
        let mut chars = vec!['\0'; 256];
        for (c, b) in inverse.iter().enumerate() {
            if let (Some(b), Some(c)) = (b, char::from_u32(c as u32)) {
                chars[*b as usize] = c;
            }
        }
        chars
    }
}

/// Turns generated ids into text as they arrive, holding back the bytes of a character that is
/// not complete yet.
#[derive(Debug)]
pub struct StreamDecoder<'t> {
    tokenizer: &'t Tokenizer,
    pending: Vec<u8>,
    at_start: bool,
}

impl<'t> StreamDecoder<'t> {
    pub(crate) fn new(tokenizer: &'t Tokenizer) -> Self {
        Self { tokenizer, pending: Vec::new(), at_start: true }
    }

    /// Adds one token and returns the text that is now complete (possibly empty).
    pub fn push(&mut self, id: u32) -> Result<String, TokenizerError> {
        self.pending.extend_from_slice(self.tokenizer.token_bytes(id, false)?);
        let mut out = String::new();
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(s) => {
                    out.push_str(s);
                    self.pending.clear();
                    break;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    // Safe: the prefix up to `valid_up_to` is valid UTF-8 by definition.
                    out.push_str(std::str::from_utf8(&self.pending[..valid]).unwrap_or_default());
                    match e.error_len() {
                        // An incomplete character at the end: wait for the next token.
                        None => {
                            self.pending.drain(..valid);
                            break;
                        }
                        Some(bad) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            self.pending.drain(..valid + bad);
                        }
                    }
                }
            }
        }
        if self.at_start && !out.is_empty() {
            self.at_start = false;
            if self.tokenizer.vocab().add_space_prefix
                && let Some(rest) = out.strip_prefix(' ')
            {
                return Ok(rest.to_string());
            }
        }
        Ok(out)
    }

    /// Whatever is held back at the end of the stream, as text.
    pub fn finish(&mut self) -> String {
        let out = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        out
    }
}
