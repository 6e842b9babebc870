//! Chat-template parity: prompts rendered from each model's GGUF (or manifest fallback) equal the
//! prompts llama.cpp's `llama-server --jinja` rendered for the same conversations, recorded in
//! tests/fixtures/templates/ by scripts/record-templates.py.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;

use hearth_engine::chat_template::{ChatMessage, ChatTemplate};
use hearth_engine::gguf::GgufFile;
use hearth_hub::Registry;
use serde::Deserialize;

#[derive(Deserialize)]
struct Fixture {
    model: String,
    /// Where llama.cpp took the template from: `gguf` or `manifest`.
    template: String,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    messages: Vec<ChatMessage>,
    tools: Option<Vec<serde_json::Value>>,
    add_generation_prompt: bool,
    prompt: String,
}

fn fixture(id: &str) -> Fixture {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../../tests/fixtures/templates/{id}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("template fixture JSON")
}

/// The first difference between two prompts, with a little context, for a readable failure.
fn first_difference(got: &str, want: &str) -> String {
    let at = got
        .char_indices()
        .zip(want.chars())
        .find(|((_, a), b)| a != b)
        .map_or(got.len().min(want.len()), |((i, _), _)| i);
    let from = got[..at].char_indices().rev().nth(20).map_or(0, |(i, _)| i);
    let tail = |s: &str| s.get(from..).unwrap_or("").chars().take(60).collect::<String>();
    format!("at byte {at}:\n   hearth: {:?}\n llama.cpp: {:?}", tail(got), tail(want))
}

fn check(id: &str) {
    let Some(path) = common::model_path(id) else { return };
    let fixture = fixture(id);
    assert_eq!(fixture.model, id);
    let registry = Registry::builtin().unwrap();
    let manifest = registry.lookup(id).unwrap();
    let gguf = GgufFile::open(&path).unwrap();
    let has_own = gguf.get("tokenizer.chat_template").is_some();
    assert_eq!(fixture.template, if has_own { "gguf" } else { "manifest" }, "{id}: the fixture used another template");
    let template = ChatTemplate::from_gguf(&gguf, manifest.chat_template.as_deref()).unwrap();

    let mut failures = Vec::new();
    for case in &fixture.cases {
        match template.render(&case.messages, case.tools.as_deref(), case.add_generation_prompt) {
            Ok(got) if got == case.prompt => {}
            Ok(got) => failures.push(format!("{}: {}", case.name, first_difference(&got, &case.prompt))),
            Err(e) => failures.push(format!("{}: {e}", case.name)),
        }
    }
    let matched = fixture.cases.len() - failures.len();
    eprintln!("{id}: {matched}/{} prompts equal llama.cpp's", fixture.cases.len());
    assert!(
        failures.is_empty(),
        "{id}: {} of {} prompts differ:\n{}",
        failures.len(),
        fixture.cases.len(),
        failures.join("\n")
    );
}

#[test]
fn smollm2_135m() {
    check("smollm2-135m");
}

#[test]
fn qwen2_5_coder_0_5b() {
    check("qwen2.5-coder-0.5b");
}

#[test]
fn qwen2_5_coder_1_5b() {
    check("qwen2.5-coder-1.5b");
}

#[test]
fn gemma3_270m() {
    check("gemma3-270m");
}
