//! The batch engine from several tokio tasks: each request's greedy tokens equal those of the
//! same prompt run alone, and a repeated prompt prefix is reused rather than prefilled.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use candle_core::Device;
use hearth_engine::batch_engine::{BatchEngine, GenerationEvent, GenerationRequest, RequestStats};
use hearth_engine::gguf::GgufFile;
use hearth_engine::sampler::SamplerConfig;
use hearth_engine::{Logits, Model};

fn greedy_alone(model: &Model, prompt: &[u32], n: usize) -> Vec<u32> {
    let mut cache = model.new_cache();
    let mut logits = model.forward(prompt, &mut cache, Logits::Last).unwrap();
    let mut out = Vec::new();
    for _ in 0..n {
        let row: Vec<f32> = logits.flatten_all().unwrap().to_vec1().unwrap();
        let t = row.iter().enumerate().fold(0, |b, (i, &x)| if x > row[b] { i } else { b }) as u32;
        out.push(t);
        logits = model.forward(&[t], &mut cache, Logits::Last).unwrap();
    }
    out
}

async fn collect(engine: Arc<BatchEngine>, prompt: Vec<u32>, n: usize) -> (Vec<u32>, RequestStats) {
    let request = GenerationRequest {
        prompt,
        sampler: SamplerConfig::greedy(),
        max_tokens: n,
        stop_tokens: vec![],
        constraint: None,
    };
    let mut stream = engine.submit(request);
    let mut tokens = Vec::new();
    while let Some(event) = stream.next().await {
        match event {
            GenerationEvent::Token(t) => tokens.push(t),
            GenerationEvent::Done(stats) => return (tokens, stats),
            GenerationEvent::Failed(e) => panic!("generation failed: {e}"),
        }
    }
    panic!("stream ended without Done");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_match_running_alone_and_reuse_prefixes() {
    let Some(path) = common::model_path("smollm2-135m") else { return };
    let gguf = GgufFile::open(&path).unwrap();
    let model = Model::load(&gguf, &Device::Cpu).unwrap();
    let vocab = model.config().vocab_size as u32;
    let system: Vec<u32> = (0..40).map(|i| (i * 7919 + 13) % vocab).collect();
    let prompts: Vec<Vec<u32>> = (0..3u32)
        .map(|k| system.iter().copied().chain((0..5 + 3 * k).map(|i| (i * 104_729 + k * 31) % vocab)).collect())
        .collect();
    let n = 12;
    let engine = Arc::new(BatchEngine::start(model.clone(), model.new_kv_pool(model.default_kv_budget()), 4));
    // The first request caches the system prompt's whole blocks.
    let (first, stats) = collect(engine.clone(), prompts[0].clone(), n).await;
    assert_eq!(first, greedy_alone(&model, &prompts[0], n));
    assert_eq!(stats.reused_tokens, 0);
    let tasks: Vec<_> = prompts.iter().map(|p| tokio::spawn(collect(engine.clone(), p.clone(), n))).collect();
    for (task, prompt) in tasks.into_iter().zip(&prompts) {
        let (tokens, stats) = task.await.unwrap();
        assert_eq!(tokens, greedy_alone(&model, prompt, n), "batched greedy tokens equal running alone");
        assert_eq!(stats.generated_tokens, n);
        assert!(stats.reused_tokens >= 32, "the system prompt was reused: {stats:?}");
        assert_eq!(stats.reused_tokens + stats.prefilled_tokens, prompt.len());
    }
}
