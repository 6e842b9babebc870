#![allow(clippy::unwrap_used)]

use super::*;
use crate::tokenizer::vocab::{GgufVocab, TokenType, VocabKind};

fn byte_level_alphabet() -> Vec<String> {
    let inverse = super::pieces::tests_support::byte_level_chars();
    inverse.into_iter().map(|c| c.to_string()).collect()
}

/// A byte-level vocabulary: the 256 byte characters, a few merges, a control and a
/// user-defined token.
fn tiny_bpe() -> Tokenizer {
    let mut tokens = byte_level_alphabet();
    let mut merges = Vec::new();
    for (a, b) in [("Ġ", "t"), ("h", "e"), ("Ġt", "he"), ("l", "l"), ("he", "ll")] {
        merges.push((a.to_string(), b.to_string()));
        tokens.push(format!("{a}{b}"));
    }
    tokens.push("<|im_end|>".into());
    tokens.push("<tool_call>".into());
    let mut types = vec![TokenType::Normal; tokens.len()];
    let n = types.len();
    types[n - 2] = TokenType::Control;
    types[n - 1] = TokenType::UserDefined;
    let vocab = GgufVocab {
        kind: VocabKind::ByteLevelBpe,
        pre: "qwen2".into(),
        tokens,
        types,
        scores: Vec::new(),
        merges,
        bos: None,
        eos: Some((n - 2) as u32),
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

#[test]
fn byte_level_bpe_applies_merges_and_round_trips() {
    let t = tiny_bpe();
    let ids = t.encode("hello the", false, false).unwrap();
    // "hell" "o" "Ġthe"
    let texts: Vec<&str> = ids.iter().map(|&i| t.token_text(i).unwrap()).collect();
    assert_eq!(texts, ["hell", "o", "Ġthe"]);
    assert_eq!(t.decode(&ids, false).unwrap(), "hello the");
    let unicode = "naïve 🦀 日本";
    assert_eq!(t.decode(&t.encode(unicode, false, false).unwrap(), false).unwrap(), unicode);
}

#[test]
fn control_tokens_are_parsed_only_when_asked_and_user_tokens_always() {
    let t = tiny_bpe();
    let end = t.token_id("<|im_end|>").unwrap();
    let call = t.token_id("<tool_call>").unwrap();
    let parsed = t.encode("a<|im_end|>b<tool_call>", false, true).unwrap();
    assert!(parsed.contains(&end) && parsed.contains(&call));
    let plain = t.encode("a<|im_end|>b<tool_call>", false, false).unwrap();
    assert!(!plain.contains(&end) && plain.contains(&call));
    assert!(t.is_end_of_generation(end));
    // Shown to users without the control token, with it when asked.
    assert_eq!(t.decode(&parsed, false).unwrap(), "ab<tool_call>");
    assert_eq!(t.decode(&parsed, true).unwrap(), "a<|im_end|>b<tool_call>");
}

#[test]
fn stream_decoder_holds_back_split_characters() {
    let t = tiny_bpe();
    let ids = t.encode("é🦀", false, false).unwrap();
    assert!(ids.len() >= 2, "each byte is its own token here");
    let mut stream = t.stream_decoder();
    let mut seen = Vec::new();
    for &id in &ids {
        seen.push(stream.push(id).unwrap());
    }
    assert_eq!(seen.concat(), "é🦀");
    assert!(seen.iter().all(|s| s.chars().all(|c| c != char::REPLACEMENT_CHARACTER)));
    assert_eq!(stream.finish(), "");
}

#[test]
fn out_of_range_ids_are_errors() {
    let t = tiny_bpe();
    assert!(matches!(t.decode(&[u32::MAX], false), Err(TokenizerError::UnknownToken { .. })));
}

fn tiny_spm(add_space_prefix: bool) -> Tokenizer {
    let mut tokens: Vec<String> = ["<unk>", "<s>", "</s>"].map(String::from).to_vec();
    let mut types = vec![TokenType::Unknown, TokenType::Control, TokenType::Control];
    for b in 0..=255u8 {
        tokens.push(format!("<0x{b:02X}>"));
        types.push(TokenType::Byte);
    }
    let mut scores = vec![0.0; tokens.len()];
    for (text, score) in
        [("▁", -1.0), ("a", -2.0), ("b", -3.0), ("c", -4.0), ("ab", -5.0), ("bc", -6.0), ("▁ab", -7.0), ("abc", -8.0)]
    {
        tokens.push(text.into());
        types.push(TokenType::Normal);
        scores.push(score);
    }
    let vocab = GgufVocab {
        kind: VocabKind::SentencePiece,
        pre: "default".into(),
        tokens,
        types,
        scores,
        merges: Vec::new(),
        bos: Some(1),
        eos: Some(2),
        eot: None,
        eom: None,
        unk: Some(0),
        pad: None,
        add_bos: true,
        add_eos: false,
        add_space_prefix,
    };
    Tokenizer::from_vocab(vocab).unwrap()
}

#[test]
fn sentencepiece_merges_by_score_with_byte_fallback() {
    let t = tiny_spm(false);
    let ids = t.encode("abc ab", true, false).unwrap();
    let texts: Vec<&str> = ids.iter().map(|&i| t.token_text(i).unwrap()).collect();
    // "ab" outscores "bc", so "abc" is reached through "ab"+"c"; BOS first.
    assert_eq!(texts, ["<s>", "abc", "▁ab"]);
    assert_eq!(t.decode(&ids, false).unwrap(), "abc ab");
    // "é" is not in the vocabulary: its two UTF-8 bytes.
    let ids = t.encode("é", false, false).unwrap();
    assert_eq!(ids.iter().map(|&i| t.token_text(i).unwrap()).collect::<Vec<_>>(), ["<0xC3>", "<0xA9>"]);
    assert_eq!(t.decode(&ids, false).unwrap(), "é");
}

#[test]
fn sentencepiece_space_prefix_is_added_and_removed() {
    let t = tiny_spm(true);
    let ids = t.encode("ab", false, false).unwrap();
    assert_eq!(ids.iter().map(|&i| t.token_text(i).unwrap()).collect::<Vec<_>>(), ["▁ab"]);
    assert_eq!(t.decode(&ids, false).unwrap(), "ab");
    let mut stream = t.stream_decoder();
    assert_eq!(stream.push(ids[0]).unwrap(), "ab");
}
