//! Token ids against llama.cpp's tokenizer on the same GGUF, for a corpus of code, prose,
//! Unicode, emoji, whitespace runs and special-token text (`tests/fixtures/tokenizer/`,
//! recorded by `scripts/record-tokenizer.py`). Every string must match exactly, both as a
//! prompt (BOS added, control tokens parsed) and as plain text (neither).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use hearth_engine::Tokenizer;
use hearth_engine::gguf::GgufFile;

fn check(id: &str) {
    let Some(path) = common::model_path(id) else {
        return;
    };
    let gguf = GgufFile::open(&path).unwrap();
    let start = std::time::Instant::now();
    let tokenizer = Tokenizer::from_gguf(&gguf).unwrap();
    eprintln!(
        "{id}: tokenizer of {} tokens built in {:.0} ms",
        tokenizer.vocab_size(),
        start.elapsed().as_secs_f64() * 1e3
    );
    let fixture = common::read_fixture(&format!("tokenizer/{id}.json"));
    let cases = fixture["cases"].as_array().unwrap();
    assert!(cases.len() >= 200, "corpus has {} strings", cases.len());
    let mut mismatches = Vec::new();
    for case in cases {
        let text = case["text"].as_str().unwrap();
        for (mode, add_special, parse_special) in [("prompt", true, true), ("plain", false, false)] {
            let want: Vec<u32> = serde_json::from_value(case[mode].clone()).unwrap();
            let got = tokenizer.encode(text, add_special, parse_special).unwrap();
            if got != want {
                mismatches.push(format!("{mode} {text:?}: got {got:?}, llama.cpp {want:?}"));
            }
        }
        // Decoding plain-text ids gives the text back (SentencePiece may drop nothing else).
        let plain: Vec<u32> = serde_json::from_value(case["plain"].clone()).unwrap();
        assert_eq!(tokenizer.decode(&plain, true).unwrap(), text, "{id}: decode of {text:?}");
    }
    eprintln!("{id}: {}/{} encodings equal llama.cpp's", cases.len() * 2 - mismatches.len(), cases.len() * 2);
    assert!(mismatches.is_empty(), "{id}: {} mismatches:\n{}", mismatches.len(), mismatches.join("\n"));
}

#[test]
fn smollm2_matches_llama_cpp() {
    check("smollm2-135m");
}

#[test]
fn qwen25_coder_05b_matches_llama_cpp() {
    check("qwen2.5-coder-0.5b");
}

#[test]
fn qwen25_coder_15b_matches_llama_cpp() {
    check("qwen2.5-coder-1.5b");
}

#[test]
fn gemma3_matches_llama_cpp() {
    check("gemma3-270m");
}
