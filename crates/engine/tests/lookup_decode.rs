//! Prompt-lookup decoding on real models: the same tokens as plain greedy decoding, with drafts
//! accepted where the reply copies the prompt.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use hearth_engine::gguf::GgufFile;
use hearth_engine::lookup_decode::{LookupConfig, generate_greedy_lookup};
use hearth_engine::sampler::{Sampler, SamplerConfig};
use hearth_engine::{Model, Tokenizer, generate::generate};

const CODE: &str = "def total_price(items, tax_rate):\n    subtotal = 0\n    for item in items:\n        subtotal += item.price * item.quantity\n    tax = subtotal * tax_rate\n    return subtotal + tax\n\n\ndef describe(item):\n    return f\"{item.name}: {item.quantity} x {item.price}\"\n";

fn check(id: &str) {
    let Some(path) = common::model_path(id) else { return };
    let gguf = GgufFile::open(&path).unwrap();
    let model = Model::load(&gguf, &common::device()).unwrap();
    let tokenizer = Tokenizer::from_gguf(&gguf).unwrap();
    let prompt_text = format!(
        "<|im_start|>user\nRename total_price to order_total in this code and give the whole file:\n```python\n{CODE}```<|im_end|>\n<|im_start|>assistant\n```python\n"
    );
    let prompt = tokenizer.encode(&prompt_text, true, true).unwrap();
    let is_eog = |t| tokenizer.is_end_of_generation(t);
    let n = 80;

    let mut cache = model.new_cache().unwrap();
    let mut sampler =
        Sampler::new(SamplerConfig { temperature: 0.0, repeat_penalty: 1.0, ..SamplerConfig::default() }).unwrap();
    let (greedy, _) =
        generate(&model, &mut cache, &prompt, &mut sampler, n, &is_eog, |_| std::ops::ControlFlow::Continue(()))
            .unwrap();

    let mut cache = model.new_cache().unwrap();
    let (lookup, stats) =
        generate_greedy_lookup(&model, &mut cache, &prompt, n, &LookupConfig::default(), &is_eog, |_| {
            std::ops::ControlFlow::Continue(())
        })
        .unwrap();
    eprintln!(
        "{id}: {} tokens in {} steps ({:.2} per step), {} of {} drafted tokens accepted",
        stats.generated_tokens,
        stats.decode_steps,
        stats.tokens_per_step(),
        stats.accepted,
        stats.drafted
    );
    assert_eq!(lookup, greedy, "{id}: lookup decoding must reproduce greedy decoding");
    // The cache holds the prompt and what was generated (the last token perhaps not yet run),
    // never a rejected draft token.
    let all: Vec<u32> = prompt.iter().chain(&lookup).copied().collect();
    let held = cache.tokens();
    assert!(all.starts_with(held) && held.len() + 1 >= all.len(), "{} of {}", held.len(), all.len());
    assert!(stats.accepted > 0, "{id}: a reply that copies the prompt accepts drafts");
}

#[test]
fn smollm2_lookup_matches_greedy() {
    check("smollm2-135m");
}

#[test]
fn qwen2_0_5b_lookup_matches_greedy() {
    check("qwen2.5-coder-0.5b");
}
