//! Grammar mask cost: time per token to compute a mask along a typical tool call, and what it
//! adds to a decode step when computed on another thread during the forward pass.
//!
//! `cargo bench -p hearth-grammar --bench mask` runs on Qwen2.5-Coder-0.5B when it is cached
//! (else SmolLM2-135M); `HEARTH_BENCH_MODEL=<id>` picks another registry model.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/support/tool_eval.rs"]
mod tool_eval;
#[path = "../tests/support/tool_prompts.rs"]
mod tool_prompts;

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hearth_engine::Logits;
use hearth_grammar::{CompiledGrammar, GrammarSession, Tool, ToolCallGrammar, ToolChoice};
use serde_json::json;
use tool_eval::{Harness, model_path};
use tool_prompts::PromptSet;

/// A typical reply for the first tool group: two calls, paths, numbers, an enum, an array.
const REPLY: &str = "<tool_call>\n{\"name\": \"read_file\", \"arguments\": {\"path\": \"crates/engine/src/model/mod.rs\", \"start_line\": 120, \"end_line\": 180}}\n</tool_call>\n<tool_call>\n{\"name\": \"run_command\", \"arguments\": {\"argv\": [\"cargo\", \"test\", \"-p\", \"hearth-engine\", \"--\", \"--nocapture\"], \"timeout_s\": 300, \"mode\": \"read-only\"}}\n</tool_call>";

fn pick_model() -> (String, std::path::PathBuf) {
    if let Ok(id) = std::env::var("HEARTH_BENCH_MODEL") {
        let path = model_path(&id, true).expect("model");
        return (id, path);
    }
    match model_path("qwen2.5-coder-0.5b", false) {
        Some(p) => ("qwen2.5-coder-0.5b".into(), p),
        None => ("smollm2-135m".into(), model_path("smollm2-135m", true).unwrap()),
    }
}

/// Walks the reply token by token, a new session at each end, one mask and commit per call.
struct Replay<'a> {
    grammar: &'a CompiledGrammar,
    tokens: Vec<u32>,
    session: GrammarSession,
    next: usize,
}

impl<'a> Replay<'a> {
    fn new(grammar: &'a CompiledGrammar, tokens: Vec<u32>) -> Self {
        Self { session: grammar.session(), grammar, tokens, next: 0 }
    }

    fn step(&mut self) {
        if self.next == self.tokens.len() {
            self.session = self.grammar.session();
            self.next = 0;
        }
        let mask = self.session.compute_mask().unwrap();
        let token = self.tokens[self.next];
        assert!(mask.is_allowed(token), "replay token {token} not allowed");
        self.session.commit(token).unwrap();
        self.next += 1;
    }
}

fn bench(c: &mut Criterion) {
    let (id, path) = pick_model();
    let h = Harness::load(&id, &path);
    let set = PromptSet::load();
    let grammar = h.grammar(set.group(0), ToolChoice::Auto, true);
    // In the generic format the tags are plain text, so special tokens are not parsed.
    let tokens = h.tokenizer.encode(REPLY, false, h.format.template_lists_tools()).unwrap();
    eprintln!("{id}: replaying {} tokens", tokens.len());

    let mut g = c.benchmark_group(format!("mask/{id}"));
    g.sample_size(20).measurement_time(Duration::from_secs(8)).warm_up_time(Duration::from_secs(2));
    g.throughput(Throughput::Elements(1));
    let mut replay = Replay::new(&grammar, tokens.clone());
    g.bench_function("compute_mask_and_commit", |b| b.iter(|| replay.step()));
    g.finish();

    // The edit tool with `old_string` bound to an 18 KB file: compiling its grammar, and the
    // masks along a call that quotes three lines of the file.
    let file = include_str!("../fixtures/tool_prompts.json");
    let edit = Tool::new(
        "edit_file",
        "Replace an exact piece of text in a file.",
        json!({"type": "object", "properties": {"path": {"type": "string"}, "old_string": {"type": "string"},
            "new_string": {"type": "string"}}, "required": ["path", "old_string", "new_string"]}),
    )
    .unwrap()
    .with_substring_argument("old_string", file)
    .unwrap();
    let edit_grammar = ToolCallGrammar::new(h.format, vec![edit], ToolChoice::Required).unwrap();
    let quoted: String = file.lines().skip(40).take(3).collect::<Vec<_>>().join("\n");
    let old = serde_json::to_string(&quoted).unwrap();
    let edit_call = format!(
        "<tool_call>\n{{\"name\": \"edit_file\", \"arguments\": {{\"path\": \"fixtures/tool_prompts.json\", \"old_string\": {old}, \"new_string\": \"x\"}}}}\n</tool_call>"
    );
    let edit_tokens = h.tokenizer.encode(&edit_call, false, h.format.template_lists_tools()).unwrap();
    let mut g = c.benchmark_group(format!("substring/{id}"));
    g.sample_size(10).measurement_time(Duration::from_secs(10)).warm_up_time(Duration::from_secs(2));
    g.bench_function("compile_18KB_file", |b| b.iter(|| black_box(h.env.compile(&edit_grammar).unwrap())));
    let compiled_edit = h.env.compile(&edit_grammar).unwrap();
    let mut replay = Replay::new(&compiled_edit, edit_tokens);
    g.throughput(Throughput::Elements(1));
    g.bench_function("compute_mask_and_commit", |b| b.iter(|| replay.step()));
    g.finish();

    // A decode step at a fixed position: the forward pass of one token, with and without the
    // next mask computed on another thread meanwhile.
    let prompt = h.prompt_tokens(set.group(0), "Show me src/main.rs and run the tests.");
    let mut cache = h.pool.new_sequence();
    h.model.forward(&prompt, &mut cache, Logits::Last).unwrap();
    let len = cache.len();
    let token = tokens[0];
    let mut g = c.benchmark_group(format!("decode_step/{id}"));
    g.sample_size(20).measurement_time(Duration::from_secs(15)).warm_up_time(Duration::from_secs(3));
    g.bench_function("forward", |b| {
        b.iter(|| {
            let logits = h.model.forward(&[token], &mut cache, Logits::Last).unwrap();
            cache.truncate(len);
            black_box(logits)
        })
    });
    let mut replay = Replay::new(&grammar, tokens);
    g.bench_function("forward_with_overlapped_mask", |b| {
        b.iter(|| {
            let logits = std::thread::scope(|s| {
                let mask = s.spawn(|| replay.step());
                let logits = h.model.forward(&[token], &mut cache, Logits::Last).unwrap();
                mask.join().unwrap();
                logits
            });
            cache.truncate(len);
            black_box(logits)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
