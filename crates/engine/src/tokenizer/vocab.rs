//! The vocabulary as a GGUF file describes it under `tokenizer.ggml.*`.

use crate::gguf::{GgufFile, Value};
use crate::tokenizer::TokenizerError;

/// How a vocabulary splits text into tokens (`tokenizer.ggml.model`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VocabKind {
    /// GPT-2 style byte-level BPE with explicit merges (`gpt2`).
    ByteLevelBpe,
    /// SentencePiece BPE: merges implied by token scores, byte fallback (`llama`).
    SentencePiece,
}

/// The type of one token (`tokenizer.ggml.token_type`), as llama.cpp numbers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenType {
    Normal,
    Unknown,
    /// Markup such as `<|im_start|>`: matched in text only when special tokens are parsed,
    /// hidden when decoding for display.
    Control,
    /// Added by the model's authors (e.g. `<tool_call>`): always matched in text as one token.
    UserDefined,
    Unused,
    /// `<0xAB>`: one raw byte, SentencePiece's fallback for characters outside the vocabulary.
    Byte,
}

impl TokenType {
    fn from_code(code: u64) -> Self {
        match code {
            2 => TokenType::Unknown,
            3 => TokenType::Control,
            4 => TokenType::UserDefined,
            5 => TokenType::Unused,
            6 => TokenType::Byte,
            _ => TokenType::Normal,
        }
    }

    /// Whether llama.cpp splits text on this token before running the tokenizer model.
    pub fn is_special(self) -> bool {
        matches!(self, TokenType::Control | TokenType::UserDefined | TokenType::Unknown)
    }
}

/// Token texts that end a turn or a generation in the chat formats of known models; llama.cpp
/// recognises the same texts (and types them as control tokens), since converters do not always
/// record them in the metadata.
const END_OF_GENERATION_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<|return|>",
    "<|call|>",
    "<|flush|>",
    "<|calls|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "</s>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "[EOS]",
    "<|end_of_text|>",
    "<end_of_utterance>",
    "<eos>",
    "<turn|>",
    "<|tool_response>",
    "<\u{ff5c}end\u{2581}of\u{2581}sentence\u{ff5c}>",
    "[e~[",
    // Fill-in-the-middle padding and separators also end a generation.
    "<|fim_pad|>",
    "<fim-pad>",
    "<fim_pad>",
    "<PAD>",
    "[PAD]",
    "<|fim_repo|>",
    "<|repo_name|>",
    "<fim-repo>",
    "<REPO>",
    "<reponame>",
    "<|file_sep|>",
];

/// Where one of these is in the vocabulary, `</s>` is an ordinary token (Gemma 4, PLaMo).
const PLAIN_END_OF_SENTENCE_MARKERS: &[&str] = &["<|tool_response>", "<|plamo:eos|>"];

fn is_end_of_generation_text(text: &str, plain_end_of_sentence: bool) -> bool {
    END_OF_GENERATION_TEXTS.contains(&text) && !(plain_end_of_sentence && text == "</s>")
}

/// Everything the tokenizer needs from the file, validated.
#[derive(Debug, Clone)]
pub struct GgufVocab {
    pub kind: VocabKind,
    /// `tokenizer.ggml.pre`: which pre-tokenizer regexes a byte-level BPE vocabulary uses.
    pub pre: String,
    pub tokens: Vec<String>,
    pub types: Vec<TokenType>,
    /// SentencePiece scores; empty for byte-level BPE.
    pub scores: Vec<f32>,
    /// Byte-level BPE merges as pairs of token texts, highest priority first.
    pub merges: Vec<(String, String)>,
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub eot: Option<u32>,
    pub eom: Option<u32>,
    pub unk: Option<u32>,
    pub pad: Option<u32>,
    pub add_bos: bool,
    pub add_eos: bool,
    pub add_space_prefix: bool,
}

impl GgufVocab {
    /// Reads and checks the vocabulary of `gguf`.
    pub fn from_gguf(gguf: &GgufFile) -> Result<Self, TokenizerError> {
        let model = gguf.get_str("tokenizer.ggml.model")?;
        let kind = match model {
            "gpt2" => VocabKind::ByteLevelBpe,
            "llama" => VocabKind::SentencePiece,
            other => return Err(TokenizerError::UnsupportedModel(other.to_string())),
        };
        let tokens: Vec<String> = gguf
            .get_array("tokenizer.ggml.tokens")?
            .iter()
            .enumerate()
            .map(|(i, v)| match v {
                // llama.cpp gives empty entries a placeholder so every text maps to one id.
                Value::String(s) if s.is_empty() => Ok(format!("[EMPTY_{i}]")),
                Value::String(s) => Ok(s.clone()),
                _ => Err(TokenizerError::Invalid(format!("tokenizer.ggml.tokens[{i}] is not a string"))),
            })
            .collect::<Result<_, _>>()?;
        if tokens.is_empty() || u32::try_from(tokens.len()).is_err() {
            return Err(TokenizerError::Invalid(format!("vocabulary has {} tokens", tokens.len())));
        }
        let n = tokens.len();
        let types = match gguf.get("tokenizer.ggml.token_type") {
            Some(_) => {
                let arr = gguf.get_array("tokenizer.ggml.token_type")?;
                check_len("tokenizer.ggml.token_type", arr.len(), n)?;
                arr.iter().map(|v| TokenType::from_code(v.as_u64().unwrap_or(1))).collect()
            }
            None => vec![TokenType::Normal; n],
        };
        let scores = match gguf.get("tokenizer.ggml.scores") {
            Some(_) => {
                let arr = gguf.get_array("tokenizer.ggml.scores")?;
                check_len("tokenizer.ggml.scores", arr.len(), n)?;
                arr.iter().map(|v| v.as_f64().unwrap_or(0.0) as f32).collect()
            }
            None if kind == VocabKind::SentencePiece => {
                return Err(TokenizerError::Invalid("a SentencePiece vocabulary needs tokenizer.ggml.scores".into()));
            }
            None => Vec::new(),
        };
        let merges = match kind {
            VocabKind::ByteLevelBpe => gguf
                .get_array("tokenizer.ggml.merges")?
                .iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::String(s) => split_merge(s).ok_or_else(|| {
                        TokenizerError::Invalid(format!("tokenizer.ggml.merges[{i}] ({s:?}) is not two tokens"))
                    }),
                    _ => Err(TokenizerError::Invalid(format!("tokenizer.ggml.merges[{i}] is not a string"))),
                })
                .collect::<Result<_, _>>()?,
            VocabKind::SentencePiece => Vec::new(),
        };
        let id = |key: &str| -> Result<Option<u32>, TokenizerError> {
            match gguf.opt_u64(key)? {
                Some(v) if (v as usize) < n => Ok(Some(v as u32)),
                // Out-of-range ids are ignored, as llama.cpp does, rather than failing the load.
                _ => Ok(None),
            }
        };
        let flag =
            |key: &str, default: bool| -> Result<bool, TokenizerError> { Ok(gguf.opt_bool(key)?.unwrap_or(default)) };
        let sentencepiece = kind == VocabKind::SentencePiece;
        let mut vocab = GgufVocab {
            kind,
            pre: gguf.opt_str("tokenizer.ggml.pre")?.unwrap_or("default").to_string(),
            bos: id("tokenizer.ggml.bos_token_id")?,
            eos: id("tokenizer.ggml.eos_token_id")?,
            eot: id("tokenizer.ggml.eot_token_id")?,
            eom: id("tokenizer.ggml.eom_token_id")?,
            unk: id("tokenizer.ggml.unknown_token_id")?,
            pad: id("tokenizer.ggml.padding_token_id")?,
            add_bos: flag("tokenizer.ggml.add_bos_token", sentencepiece)?,
            add_eos: flag("tokenizer.ggml.add_eos_token", false)?,
            add_space_prefix: sentencepiece && flag("tokenizer.ggml.add_space_prefix", true)?,
            tokens,
            types,
            scores,
            merges,
        };
        vocab.mark_end_of_generation_tokens();
        if vocab.add_bos && vocab.bos.is_none() {
            return Err(TokenizerError::Invalid("the vocabulary asks for a BOS token but names none".into()));
        }
        Ok(vocab)
    }

    /// Known end-of-turn texts are control tokens even where a converter typed them otherwise,
    /// so that they are never produced from plain text and never shown.
    fn mark_end_of_generation_tokens(&mut self) {
        let plain = self.has_plain_end_of_sentence();
        for (text, ty) in self.tokens.iter().zip(self.types.iter_mut()) {
            if is_end_of_generation_text(text, plain) {
                *ty = TokenType::Control;
            }
        }
    }

    fn has_plain_end_of_sentence(&self) -> bool {
        self.tokens.iter().any(|t| PLAIN_END_OF_SENTENCE_MARKERS.contains(&t.as_str()))
    }

    /// Tokens that end a generation: EOS, EOT, EOM and the known end-of-turn texts.
    pub fn end_of_generation(&self) -> Vec<u32> {
        let mut ids: Vec<u32> = [self.eos, self.eot, self.eom].into_iter().flatten().collect();
        let plain = self.has_plain_end_of_sentence();
        for (i, text) in self.tokens.iter().enumerate() {
            if is_end_of_generation_text(text, plain) {
                ids.push(i as u32);
            }
        }
        ids.sort_unstable();
        ids.dedup();
        ids
    }
}

fn check_len(key: &str, got: usize, want: usize) -> Result<(), TokenizerError> {
    if got < want {
        return Err(TokenizerError::Invalid(format!("{key} has {got} entries for {want} tokens")));
    }
    Ok(())
}

/// Splits a merge rule at the first space after its first character: the left part may itself
/// be a space in vocabularies that are not byte-level encoded.
fn split_merge(rule: &str) -> Option<(String, String)> {
    let first = rule.chars().next()?;
    let pos = rule[first.len_utf8()..].find(' ')? + first.len_utf8();
    Some((rule[..pos].to_string(), rule[pos + 1..].to_string()))
}

#[cfg(test)]
mod tests {
    use super::split_merge;

    #[test]
    fn merges_split_at_the_first_space_after_the_first_char() {
        assert_eq!(split_merge("Ġ t"), Some(("Ġ".into(), "t".into())));
        assert_eq!(split_merge("  a"), Some((" ".into(), "a".into())));
        assert_eq!(split_merge("ab"), None);
    }
}
