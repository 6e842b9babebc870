//! The batch engine from several tokio tasks: each request's greedy tokens equal those of the
//! same prompt run alone, a repeated prompt prefix is reused rather than prefilled, and a pool
//! too small for every request at once pauses some and still gives each its own tokens.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use hearth_engine::batch_engine::{BatchEngine, GenerationEvent, GenerationRequest, RequestStats};
use hearth_engine::gguf::GgufFile;
use hearth_engine::kv::{DEFAULT_BLOCK_SIZE, KvError};
use hearth_engine::sampler::SamplerConfig;
use hearth_engine::{EngineError, Logits, Model};

fn greedy_alone(model: &Model, prompt: &[u32], n: usize) -> Vec<u32> {
    let mut cache = model.new_cache().unwrap();
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
    match generate(engine, prompt, n).await {
        (tokens, Ok(stats)) => (tokens, stats),
        (_, Err(e)) => panic!("generation failed: {e}"),
    }
}

/// The tokens a request streamed, and how it ended.
async fn generate(
    engine: Arc<BatchEngine>,
    prompt: Vec<u32>,
    n: usize,
) -> (Vec<u32>, Result<RequestStats, EngineError>) {
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
            GenerationEvent::Done(stats) => return (tokens, Ok(stats)),
            GenerationEvent::Failed(e) => return (tokens, Err(e)),
        }
    }
    panic!("stream ended without Done");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_match_running_alone_and_reuse_prefixes() {
    let Some(path) = common::model_path("smollm2-135m") else { return };
    let gguf = GgufFile::open(&path).unwrap();
    let model = Model::load(&gguf, &common::device()).unwrap();
    let vocab = model.config().vocab_size as u32;
    let system: Vec<u32> = (0..40).map(|i| (i * 7919 + 13) % vocab).collect();
    let prompts: Vec<Vec<u32>> = (0..3u32)
        .map(|k| system.iter().copied().chain((0..5 + 3 * k).map(|i| (i * 104_729 + k * 31) % vocab)).collect())
        .collect();
    let n = 12;
    let engine = Arc::new(BatchEngine::start(model.clone(), model.new_kv_pool(model.default_kv_budget()).unwrap(), 4));
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

fn load() -> Option<Model> {
    let path = common::model_path("smollm2-135m")?;
    let gguf = GgufFile::open(&path).unwrap();
    Some(Model::load(&gguf, &common::device()).unwrap())
}

/// Distinct pseudo-random prompts: nothing is shared through the prefix tree.
fn prompt(k: u32, len: u32, vocab: u32) -> Vec<u32> {
    (0..len).map(|i| (i * 7919 + k * 104_729 + 17) % vocab).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_pool_pauses_requests_which_then_finish_as_if_alone() {
    let Some(model) = load() else { return };
    let vocab = model.config().vocab_size as u32;
    // Each request ends at 60 + 100 tokens: 10 blocks of 16. The pool holds 20.
    let prompts: Vec<Vec<u32>> = (0..4).map(|k| prompt(k, 60, vocab)).collect();
    let n = 100;
    let big = Arc::new(BatchEngine::start(model.clone(), model.new_kv_pool(model.default_kv_budget()).unwrap(), 4));
    let mut alone = Vec::new();
    for p in &prompts {
        alone.push(collect(big.clone(), p.clone(), n).await.0);
    }
    let block = model.kv_layout(DEFAULT_BLOCK_SIZE).block_bytes(0);
    let small = Arc::new(BatchEngine::start(model.clone(), model.new_kv_pool(20 * block).unwrap(), 4));
    let tasks: Vec<_> = prompts.iter().map(|p| tokio::spawn(collect(small.clone(), p.clone(), n))).collect();
    let mut pauses = 0;
    for (k, (task, want)) in tasks.into_iter().zip(&alone).enumerate() {
        let (tokens, stats) = task.await.unwrap();
        assert_eq!(&tokens, want, "request {k}: the tokens it gives alone, none lost or repeated");
        assert_eq!(stats.generated_tokens, n);
        eprintln!("request {k}: paused {} times, {:?} in all", stats.pauses, stats.total_time);
        pauses += stats.pauses;
    }
    assert!(pauses >= 2, "four requests of 10 blocks in 20 blocks: some were paused ({pauses})");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_larger_than_the_whole_pool_fails_naming_the_budget() {
    let Some(model) = load() else { return };
    let vocab = model.config().vocab_size as u32;
    let block = model.kv_layout(DEFAULT_BLOCK_SIZE).block_bytes(0);
    let engine = Arc::new(BatchEngine::start(model.clone(), model.new_kv_pool(20 * block).unwrap(), 4));
    // A prompt over 20 blocks is refused before any work.
    let (tokens, end) = generate(engine.clone(), prompt(0, 330, vocab), 5).await;
    match end {
        Err(EngineError::Kv(e @ KvError::BudgetTooSmall { tokens: 330, .. })) => {
            let message = e.to_string();
            assert!(message.contains("7.0 MiB") && message.contains("--kv-budget"), "{message}");
        }
        other => panic!("expected a budget error, got {other:?}"),
    }
    assert!(tokens.is_empty());
    // A prompt that fits but whose reply outgrows the pool fails when it does, alone.
    let (tokens, end) = generate(engine.clone(), prompt(1, 300, vocab), 50).await;
    // The 21st token is sampled from position 319's logits, the pool's last; it cannot be fed.
    assert!(matches!(end, Err(EngineError::Kv(KvError::BudgetTooSmall { tokens: 321, .. }))), "{end:?}");
    assert_eq!(tokens.len(), 21);
    // The engine goes on with requests that fit.
    let (tokens, end) = generate(engine, prompt(2, 40, vocab), 5).await;
    assert_eq!((tokens.len(), end.map(|s| s.generated_tokens).ok()), (5, Some(5)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_request_ends_early_with_its_counts() {
    let Some(model) = load() else { return };
    let vocab = model.config().vocab_size as u32;
    let engine = Arc::new(BatchEngine::start(model.clone(), model.new_kv_pool(model.default_kv_budget()).unwrap(), 4));
    let request = GenerationRequest {
        prompt: prompt(0, 30, vocab),
        sampler: SamplerConfig::greedy(),
        max_tokens: 200,
        stop_tokens: vec![],
        constraint: None,
    };
    let mut stream = engine.submit(request);
    let mut tokens = Vec::new();
    let stats = loop {
        match stream.next().await {
            Some(GenerationEvent::Token(t)) => {
                tokens.push(t);
                if tokens.len() == 3 {
                    stream.stop();
                }
            }
            Some(GenerationEvent::Done(stats)) => break stats,
            other => panic!("expected tokens then Done, got {other:?}"),
        }
    };
    assert_eq!(stats.stop, hearth_engine::generate::StopReason::Cancelled);
    assert_eq!(stats.generated_tokens, tokens.len());
    assert!((3..10).contains(&tokens.len()), "stopped within a step or two of asking: {}", tokens.len());
    assert_eq!(stats.prompt_tokens, 30);
    // The engine goes on with the next request.
    let (tokens, stats) = collect(engine, prompt(1, 30, vocab), 4).await;
    assert_eq!((tokens.len(), stats.stop), (4, hearth_engine::generate::StopReason::Length));
}
