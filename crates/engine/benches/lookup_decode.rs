//! Prompt-lookup decoding against plain greedy decoding on edit-heavy requests (a file quoted in
//! the prompt and rewritten with a small change): tokens per forward pass, drafts accepted, and
//! the speed-up, same model, same threads, same run.
//!
//! `cargo bench -p hearth-engine --bench lookup_decode -- [MODEL] [--tokens N]`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::ops::ControlFlow;
use std::time::Instant;

use candle_core::Device;
use hearth_engine::generate::generate;
use hearth_engine::gguf::GgufFile;
use hearth_engine::lookup_decode::{LookupConfig, generate_greedy_lookup};
use hearth_engine::sampler::{Sampler, SamplerConfig};
use hearth_engine::{Model, Tokenizer};

const FILE: &str = r#"use std::collections::HashMap;

pub struct Inventory {
    items: HashMap<String, u32>,
}

impl Inventory {
    pub fn new() -> Self {
        Self { items: HashMap::new() }
    }

    pub fn add(&mut self, name: &str, count: u32) {
        *self.items.entry(name.to_string()).or_insert(0) += count;
    }

    pub fn remove(&mut self, name: &str, count: u32) -> bool {
        match self.items.get_mut(name) {
            Some(have) if *have >= count => {
                *have -= count;
                true
            }
            _ => false,
        }
    }

    pub fn count(&self, name: &str) -> u32 {
        self.items.get(name).copied().unwrap_or(0)
    }
}
"#;

const EDITS: [&str; 3] = [
    "Rename the struct Inventory to Stock everywhere and give the whole file.",
    "Make `count` return u64 instead of u32 and give the whole file.",
    "Add a doc comment to `add` and give the whole file.",
];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let model_id = args.iter().find(|a| !a.starts_with("--") && a.parse::<usize>().is_err()).cloned();
    let model_id = model_id.unwrap_or_else(|| "qwen2.5-coder-1.5b".into());
    let tokens: usize = args
        .iter()
        .position(|a| a == "--tokens")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(160);
    let opts = hearth_hub::ResolveOptions { progress: false, ..Default::default() };
    let path = hearth_hub::resolve(&model_id, &opts).expect("resolve model").path;
    let gguf = GgufFile::open(&path).unwrap();
    let model = Model::load(&gguf, &Device::Cpu).unwrap();
    let tokenizer = Tokenizer::from_gguf(&gguf).unwrap();
    let is_eog = |t| tokenizer.is_end_of_generation(t);
    println!("{model_id}, {} threads, up to {tokens} tokens per reply", rayon::current_num_threads());
    println!(
        "| request | tokens | greedy t/s | lookup t/s | speed-up | tokens per pass | drafts accepted | same output |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |");
    for edit in EDITS {
        let text = format!("<|im_start|>user\n{edit}\n```rust\n{FILE}```<|im_end|>\n<|im_start|>assistant\n```rust\n");
        let prompt = tokenizer.encode(&text, true, true).unwrap();

        let mut cache = model.new_cache().unwrap();
        let mut sampler = Sampler::new(SamplerConfig { temperature: 0.0, ..SamplerConfig::default() }).unwrap();
        model.forward(&prompt[..prompt.len() - 1], &mut cache, hearth_engine::Logits::Last).unwrap();
        let start = Instant::now();
        let (greedy, _) =
            generate(&model, &mut cache, &prompt[prompt.len() - 1..], &mut sampler, tokens, &is_eog, |_| {
                ControlFlow::Continue(())
            })
            .unwrap();
        let greedy_tps = greedy.len() as f64 / start.elapsed().as_secs_f64();

        let mut cache = model.new_cache().unwrap();
        model.forward(&prompt[..prompt.len() - 1], &mut cache, hearth_engine::Logits::Last).unwrap();
        let start = Instant::now();
        let (lookup, stats) = generate_greedy_lookup(
            &model,
            &mut cache,
            &prompt[prompt.len() - 1..],
            tokens,
            &LookupConfig::default(),
            &is_eog,
            |_| ControlFlow::Continue(()),
        )
        .unwrap();
        let lookup_tps = lookup.len() as f64 / start.elapsed().as_secs_f64();
        println!(
            "| {} | {} | {greedy_tps:.2} | {lookup_tps:.2} | {:.2}x | {:.2} | {}/{} | {} |",
            edit.split(" and ").next().unwrap_or(edit),
            lookup.len(),
            lookup_tps / greedy_tps,
            stats.tokens_per_step(),
            stats.accepted,
            stats.drafted,
            if lookup == greedy { "yes" } else { "NO" }
        );
    }
}
