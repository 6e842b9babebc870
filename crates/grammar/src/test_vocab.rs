//! A tiny byte-level vocabulary for unit tests: one token per byte, a few merged words, and the
//! Qwen-style special tokens, so grammars can be checked without a model file.
#![allow(clippy::unwrap_used)]

use hearth_engine::Tokenizer;
use hearth_engine::tokenizer::{GgufVocab, TokenType, VocabKind};

/// GPT-2's printable stand-in for each byte.
fn byte_char(b: u8) -> char {
    let printable = |b: u8| (b'!'..=b'~').contains(&b) || (0xA1..=0xAC).contains(&b) || (0xAE..=0xFF).contains(&b);
    if printable(b) {
        return b as char;
    }
    let offset = (0..b).filter(|&x| !printable(x)).count() as u32;
    char::from_u32(256 + offset).unwrap()
}

fn byte_level(text: &str) -> String {
    text.bytes().map(byte_char).collect()
}

/// Words merged into single tokens (byte-level spelled), with the merges that build them.
const WORDS: &[&str] = &["na", "me", "name", "ar", "gs", "args"];

/// Token id of `<|im_end|>` in [`tokenizer`].
pub const IM_END: u32 = 256;

/// The test tokenizer.
pub fn tokenizer() -> Tokenizer {
    let mut tokens: Vec<String> = (0..=255u8).map(|b| byte_char(b).to_string()).collect();
    let mut types = vec![TokenType::Normal; 256];
    for (text, ty) in [
        ("<|im_end|>", TokenType::Control),
        ("<|im_start|>", TokenType::Control),
        ("<tool_call>", TokenType::UserDefined),
        ("</tool_call>", TokenType::UserDefined),
    ] {
        tokens.push(text.to_string());
        types.push(ty);
    }
    let merges = vec![
        ("n".to_string(), "a".to_string()),
        ("m".to_string(), "e".to_string()),
        ("na".to_string(), "me".to_string()),
        ("a".to_string(), "r".to_string()),
        ("g".to_string(), "s".to_string()),
        ("ar".to_string(), "gs".to_string()),
    ];
    for w in WORDS {
        tokens.push(byte_level(w));
        types.push(TokenType::Normal);
    }
    let vocab = GgufVocab {
        kind: VocabKind::ByteLevelBpe,
        pre: "default".into(),
        tokens,
        types,
        scores: Vec::new(),
        merges,
        bos: None,
        eos: Some(IM_END),
        eot: None,
        eom: None,
        unk: None,
        pad: None,
        add_bos: false,
        add_eos: false,
        add_space_prefix: false,
    };
    Tokenizer::from_vocab(vocab).unwrap()
}

/// Whether `compiled` accepts `text` as a whole reply: every token of it (special tokens parsed)
/// is in the mask in turn, and the grammar may end after it.
pub fn accepts(tokenizer: &Tokenizer, compiled: &crate::CompiledGrammar, text: &str) -> bool {
    let mut session = compiled.session();
    for token in tokenizer.encode(text, false, true).unwrap() {
        match session.compute_mask() {
            Ok(mask) if mask.is_allowed(token) => session.commit(token).unwrap(),
            _ => return false,
        }
    }
    session.is_finished() || session.is_accepting()
}

/// Whether `compiled` can generate exactly `text` the way generation does: forced tokens are
/// committed as the grammar gives them, otherwise the longest allowed token that continues the
/// text is taken. Unlike [`accepts`], this needs no tokenization of `text`.
pub fn generates(tokenizer: &Tokenizer, compiled: &crate::CompiledGrammar, text: &str) -> bool {
    let mut session = compiled.session();
    let mut rest = text.as_bytes();
    while !rest.is_empty() {
        let forced = session.commit_forced();
        let forced_bytes: Vec<u8> =
            forced.iter().flat_map(|&t| tokenizer.token_bytes(t, true).unwrap().to_vec()).collect();
        match rest.strip_prefix(forced_bytes.as_slice()) {
            Some(r) => rest = r,
            None => {
                eprintln!(
                    "forced {:?} but the text goes on {:?}",
                    String::from_utf8_lossy(&forced_bytes),
                    String::from_utf8_lossy(rest)
                );
                return false;
            }
        }
        if rest.is_empty() {
            break;
        }
        let mask = match session.compute_mask() {
            Ok(mask) => mask,
            Err(e) => {
                eprintln!("no mask before {:?}: {e}", String::from_utf8_lossy(rest));
                return false;
            }
        };
        let best = mask
            .allowed_tokens()
            .into_iter()
            .filter(|&t| !session_is_special(tokenizer, t))
            .map(|t| (t, tokenizer.token_bytes(t, true).unwrap()))
            .filter(|(_, b)| !b.is_empty() && rest.starts_with(b))
            .max_by_key(|(_, b)| b.len());
        let Some((token, bytes)) = best else {
            eprintln!("no allowed token continues {:?}", String::from_utf8_lossy(rest));
            return false;
        };
        rest = &rest[bytes.len()..];
        session.commit(token).unwrap();
    }
    session.is_finished() || session.is_accepting()
}

fn session_is_special(tokenizer: &Tokenizer, token: u32) -> bool {
    tokenizer.token_text(token).is_some_and(|t| t.starts_with('<') && t.ends_with('>') && t.len() > 2)
}
