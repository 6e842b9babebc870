//! Aggregate decode speed with 1, 2, 4 and 8 sequences stepped together by
//! `Model::forward_batch` (weights read once per step for all of them), and the KV bytes per
//! token of each cached model.
//!
//! `cargo bench -p hearth-engine --bench batched_decode -- [MODEL] [--steps N] [--context N]
//! [--sequences 1,2,4,8]` (`--context`: prompt tokens before decoding, 64 unless given; an
//! agent's conversations run to thousands, where attention over the cache weighs in)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::time::Instant;

use candle_core::Device;
use hearth_engine::gguf::GgufFile;
use hearth_engine::{BatchInput, KvCache, Logits, Model};

fn argmax(v: &[f32]) -> u32 {
    v.iter().enumerate().fold(0, |b, (i, &x)| if x > v[b] { i } else { b }) as u32
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let model_id =
        args.iter().find(|a| !a.starts_with("--") && a.split(',').all(|n| n.parse::<usize>().is_err())).cloned();
    let model_id = model_id.unwrap_or_else(|| "qwen2.5-coder-1.5b".into());
    let steps: usize = args
        .iter()
        .position(|a| a == "--steps")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(16);
    let number = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let context: usize = number("--context").and_then(|s| s.parse().ok()).unwrap_or(64);
    let sequences: Vec<usize> = number("--sequences")
        .map(|s| s.split(',').filter_map(|n| n.parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 2, 4, 8]);

    println!("| model | KV bytes per token (f16) | per 4k-token context |");
    println!("| --- | ---: | ---: |");
    for id in ["smollm2-135m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b", "gemma3-270m"] {
        let opts = hearth_hub::ResolveOptions { progress: false, ..Default::default() };
        let Ok(resolved) = hearth_hub::resolve(id, &opts) else { continue };
        let gguf = GgufFile::open(&resolved.path).unwrap();
        let model = Model::load(&gguf, &Device::Cpu).unwrap();
        let layout = model.kv_layout(16);
        // Sliding-window layers hold at most their window.
        let per_4k: usize = layout
            .groups
            .iter()
            .map(|g| 2 * g.layers.len() * layout.row_elems() * 2 * g.window.unwrap_or(4096).min(4096))
            .sum();
        println!("| {id} | {} | {:.1} MiB |", layout.bytes_per_token(), per_4k as f64 / (1 << 20) as f64);
    }

    let opts = hearth_hub::ResolveOptions { progress: false, ..Default::default() };
    let path = hearth_hub::resolve(&model_id, &opts).expect("resolve model").path;
    let gguf = GgufFile::open(&path).unwrap();
    let model = Model::load(&gguf, &Device::Cpu).unwrap();
    let vocab = model.config().vocab_size as u32;
    println!(
        "\n{model_id}, {} threads, {steps} decode steps after a {context}-token prompt",
        rayon::current_num_threads()
    );
    println!("| sequences | step ms | aggregate tok/s | per sequence tok/s | speed-up |");
    println!("| ---: | ---: | ---: | ---: | ---: |");
    let mut single = 0.0;
    for n in sequences {
        let pool = model.new_kv_pool(model.default_kv_budget()).unwrap();
        let mut seqs: Vec<KvCache> = (0..n).map(|_| pool.new_sequence()).collect();
        let mut next = Vec::new();
        for (i, s) in seqs.iter_mut().enumerate() {
            let prompt: Vec<u32> = (0..context as u32).map(|j| (j * 7919 + i as u32 * 104_729) % vocab).collect();
            let logits = model.forward(&prompt, s, Logits::Last).unwrap();
            next.push(vec![argmax(&logits.flatten_all().unwrap().to_vec1::<f32>().unwrap())]);
        }
        // One untimed step warms the caches.
        let run_step = |seqs: &mut [KvCache], next: &mut Vec<Vec<u32>>| {
            let mut batch: Vec<BatchInput<'_>> =
                seqs.iter_mut().zip(next.iter()).map(|(cache, t)| BatchInput { cache, tokens: t }).collect();
            let logits = model.forward_batch(&mut batch).unwrap().to_vec2::<f32>().unwrap();
            *next = logits.iter().map(|row| vec![argmax(row)]).collect();
        };
        run_step(&mut seqs, &mut next);
        let t0 = Instant::now();
        for _ in 0..steps {
            run_step(&mut seqs, &mut next);
        }
        let secs = t0.elapsed().as_secs_f64();
        let tps = (n * steps) as f64 / secs;
        if n == 1 {
            single = tps;
        }
        let speed_up = if single > 0.0 { format!("{:.2}x", tps / single) } else { "-".into() };
        println!("| {n} | {:.1} | {tps:.2} | {:.2} | {speed_up} |", 1000.0 * secs / steps as f64, tps / n as f64);
    }
}
