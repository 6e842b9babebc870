//! Replays an agent conversation: a system prompt with tool definitions (~1,500 tokens), then
//! ten turns each adding a tool result of 50 to 400 tokens and a model reply. Reports the first
//! turn's time to first token after a restart with the system prompt's KV loaded from disk,
//! against a cold start; then per turn the tokens prefilled and the time to first token with the
//! paged cache's prefix reuse, against re-prefilling the whole conversation.
//!
//! Token ids are pseudo-random: prefill and decode cost do not depend on which tokens they are.
//!
//! `cargo bench -p hearth-engine --bench agent_transcript -- [MODEL] [--baseline-turns 1,5,10]`
//! (MODEL defaults to qwen2.5-coder-1.5b; the baseline runs only on the listed turns, since a
//! full re-prefill of every turn takes most of an hour on two cores.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::time::{Duration, Instant};

use candle_core::Device;
use hearth_engine::gguf::GgufFile;
use hearth_engine::kv::ModelFingerprint;
use hearth_engine::{KvCache, Logits, Model};

const SYSTEM_TOKENS: usize = 1500;
const TOOL_RESULTS: [usize; 10] = [120, 380, 60, 250, 400, 90, 310, 50, 200, 150];
const REPLY_TOKENS: usize = 24;

fn tokens(seed: u64, n: usize, vocab: usize) -> Vec<u32> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % vocab as u64) as u32
        })
        .collect()
}

fn argmax(v: &[f32]) -> u32 {
    v.iter().enumerate().fold(0, |b, (i, &x)| if x > v[b] { i } else { b }) as u32
}

/// Runs `prompt` into `cache` (reusing what it holds) and returns (prefilled, TTFT, first token).
fn prefill(model: &Model, cache: &mut KvCache, prompt: &[u32]) -> (usize, Duration, u32) {
    let t0 = Instant::now();
    let kept = cache.reuse_prefix(prompt);
    let logits = model.forward(&prompt[kept..], cache, Logits::Last).unwrap();
    let first = argmax(&logits.flatten_all().unwrap().to_vec1::<f32>().unwrap());
    (prompt.len() - kept, t0.elapsed(), first)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let model_id = args.iter().find(|a| !a.starts_with("--") && !a.contains(',')).cloned();
    let model_id = model_id.unwrap_or_else(|| "qwen2.5-coder-1.5b".into());
    let baseline_turns: Vec<usize> = args
        .iter()
        .position(|a| a == "--baseline-turns")
        .and_then(|i| args.get(i + 1))
        .map(|s| s.split(',').filter_map(|t| t.parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 5, 10]);
    // `--baseline-turns 0` skips the full re-prefills.
    let opts = hearth_hub::ResolveOptions { progress: false, ..Default::default() };
    let path = hearth_hub::resolve(&model_id, &opts).expect("resolve model").path;
    let gguf = GgufFile::open(&path).unwrap();
    let model = Model::load(&gguf, &Device::Cpu).unwrap();
    let vocab = model.config().vocab_size;
    println!(
        "model {model_id}: KV {} bytes per token (f16), {} threads",
        model.kv_layout(16).bytes_per_token(),
        rayon::current_num_threads()
    );

    let system = tokens(1, SYSTEM_TOKENS, vocab);
    let pool = model.new_kv_pool(model.default_kv_budget()).unwrap();
    let mut cache = pool.new_sequence();
    let mut conversation = system.clone();
    // The system prompt alone, as an agent would at start-up (and what the restart test saves).
    let (n, t, _) = prefill(&model, &mut cache, &system);
    println!("system prompt: {n} tokens prefilled in {:.2} s", t.as_secs_f64());
    let dir = tempfile::tempdir().unwrap();
    let kv_file = dir.path().join("system.kv");
    let fingerprint = ModelFingerprint::of_gguf(&gguf).unwrap();
    let t0 = Instant::now();
    cache.save(&kv_file, &fingerprint).unwrap();
    let save_time = t0.elapsed();
    let file_len = std::fs::metadata(&kv_file).unwrap().len();

    // Restart: a new process has an empty pool. Cold: prefill system prompt + first turn.
    // Warm: load the saved system prompt, then prefill the first turn only.
    let first_turn: Vec<u32> = system.iter().copied().chain(tokens(101, TOOL_RESULTS[0], vocab)).collect();
    let cold_pool = model.new_kv_pool(model.default_kv_budget()).unwrap();
    let (cold_n, cold, cold_first) = prefill(&model, &mut cold_pool.new_sequence(), &first_turn);
    let warm_pool = model.new_kv_pool(model.default_kv_budget()).unwrap();
    let t0 = Instant::now();
    let mut warm_cache = warm_pool.load_sequence(&kv_file, &fingerprint).unwrap();
    let load_time = t0.elapsed();
    let (warm_n, prefill_time, warm_first) = prefill(&model, &mut warm_cache, &first_turn);
    assert_eq!(cold_first, warm_first, "a restarted session gives the same first token");
    let warm = load_time + prefill_time;
    println!(
        "restart, first turn ({} tokens): cold TTFT {:.2} s ({cold_n} prefilled); with the saved system prompt {:.2} s \
         ({:.3} s to load {:.1} MB, {warm_n} prefilled) = {:.1}% of cold; saving took {:.3} s",
        first_turn.len(),
        cold.as_secs_f64(),
        warm.as_secs_f64(),
        load_time.as_secs_f64(),
        file_len as f64 / 1e6,
        100.0 * warm.as_secs_f64() / cold.as_secs_f64(),
        save_time.as_secs_f64()
    );

    println!();
    println!(
        "| turn | context | new tokens | hearth prefilled | hearth TTFT s | decode tok/s | full re-prefill tokens | full re-prefill TTFT s |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (i, &result_len) in TOOL_RESULTS.iter().enumerate() {
        let turn = i + 1;
        let before = conversation.len();
        conversation.extend(tokens(100 + turn as u64, result_len, vocab));
        let (prefilled, ttft, mut next) = prefill(&model, &mut cache, &conversation);
        // The reply: greedy tokens, each appended to the conversation.
        let t0 = Instant::now();
        conversation.push(next);
        for _ in 1..REPLY_TOKENS {
            let logits = model.forward(&[next], &mut cache, Logits::Last).unwrap();
            next = argmax(&logits.flatten_all().unwrap().to_vec1::<f32>().unwrap());
            conversation.push(next);
        }
        let decode_tps = (REPLY_TOKENS - 1) as f64 / t0.elapsed().as_secs_f64();
        let baseline = if baseline_turns.contains(&turn) {
            let prompt = &conversation[..conversation.len() - REPLY_TOKENS];
            let mut fresh = model.new_cache().unwrap();
            let (n, t, first) = prefill(&model, &mut fresh, prompt);
            assert_eq!(first, conversation[prompt.len()], "full re-prefill gives the same first token");
            format!("{n} | {:.2}", t.as_secs_f64())
        } else {
            "- | -".into()
        };
        println!(
            "| {turn} | {} | {} | {prefilled} | {:.2} | {decode_tps:.2} | {baseline} |",
            conversation.len() - REPLY_TOKENS,
            conversation.len() - REPLY_TOKENS - before,
            ttft.as_secs_f64()
        );
    }
    let (stats, cached) = pool.stats();
    println!(
        "\npool: {} of {} budget bytes allocated, {} blocks cached in the prefix tree",
        stats.allocated_bytes, stats.budget_bytes, cached
    );
}
