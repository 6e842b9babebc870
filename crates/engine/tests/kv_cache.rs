//! The paged KV cache against a fresh full prefill: logits after prefix reuse, fork, truncate,
//! batched decoding and reload from disk must equal those of running the whole sequence from
//! an empty cache.
//!
//! Tolerance: the logits of the fresh run and of the cached run differ only by float rounding in
//! the matrix kernels, whose row blocking depends on how many rows a pass has (keys and values
//! are stored in f16 either way, and attention visits blocks in the same order). We require
//! max |Δ logit| <= `TOLERANCE` and the same argmax; measured on AVX2, the difference is 0 in
//! every case (the kernels compute each row independently of the others).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use hearth_engine::gguf::GgufFile;
use hearth_engine::kv::{KvError, ModelFingerprint};
use hearth_engine::{BatchInput, EngineError, KvCache, Logits, Model};

const TOLERANCE: f32 = 1e-3;

fn load(id: &str) -> Option<(GgufFile, Model)> {
    let path = common::model_path(id)?;
    let gguf = GgufFile::open(&path).unwrap();
    let model = Model::load(&gguf, &common::device()).unwrap();
    Some((gguf, model))
}

/// Deterministic pseudo-random token ids below `vocab`.
fn tokens(seed: u64, n: usize, vocab: usize) -> Vec<u32> {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((x >> 33) % vocab as u64) as u32
        })
        .collect()
}

fn last_logits(model: &Model, cache: &mut KvCache, toks: &[u32]) -> Vec<f32> {
    model.forward(toks, cache, Logits::Last).unwrap().flatten_all().unwrap().to_vec1().unwrap()
}

fn fresh(model: &Model, toks: &[u32]) -> Vec<f32> {
    last_logits(model, &mut model.new_cache().unwrap(), toks)
}

fn argmax(v: &[f32]) -> usize {
    v.iter().enumerate().fold(0, |b, (i, &x)| if x > v[b] { i } else { b })
}

fn assert_close(what: &str, got: &[f32], want: &[f32]) {
    let diff = got.iter().zip(want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    eprintln!("{what}: max |Δ logit| = {diff:.2e}");
    assert!(diff <= TOLERANCE, "{what}: logits differ by {diff}");
    assert_eq!(argmax(got), argmax(want), "{what}: argmax differs");
}

fn concat(a: &[u32], b: &[u32]) -> Vec<u32> {
    a.iter().chain(b).copied().collect()
}

fn prefix_reuse(id: &str) {
    let Some((_, model)) = load(id) else { return };
    let vocab = model.config().vocab_size;
    let pool = model.new_kv_pool(model.default_kv_budget()).unwrap();
    let system = tokens(1, 70, vocab);
    let mut first = pool.new_sequence();
    last_logits(&model, &mut first, &concat(&system, &tokens(2, 20, vocab)));
    drop(first);
    // A second conversation with the same system prompt: whole cached blocks are reused even
    // though the first sequence is gone.
    let prompt = concat(&system, &tokens(3, 25, vocab));
    let mut second = pool.new_sequence();
    let kept = second.reuse_prefix(&prompt);
    assert_eq!(kept, 64, "the system prompt's whole blocks of 16 are reused");
    let got = last_logits(&model, &mut second, &prompt[kept..]);
    assert_close(&format!("{id} prefix reuse"), &got, &fresh(&model, &prompt));
    // The whole prompt cached: only its last token runs.
    let mut third = pool.new_sequence();
    let kept = third.reuse_prefix(&prompt);
    assert_eq!(kept, 80);
    assert_close(
        &format!("{id} reuse of a whole cached prompt"),
        &last_logits(&model, &mut third, &prompt[kept..]),
        &got,
    );
}

fn fork_and_truncate(id: &str) {
    let Some((_, model)) = load(id) else { return };
    let vocab = model.config().vocab_size;
    let pool = model.new_kv_pool(model.default_kv_budget()).unwrap();
    let shared = tokens(4, 37, vocab);
    let (a_more, b_more) = (tokens(5, 21, vocab), tokens(6, 9, vocab));
    let mut a = pool.new_sequence();
    last_logits(&model, &mut a, &shared);
    let mut b = a.fork();
    let blocks_before = pool.stats().0.live_blocks;
    let got_a = last_logits(&model, &mut a, &a_more);
    let got_b = last_logits(&model, &mut b, &b_more);
    assert_close(&format!("{id} fork parent"), &got_a, &fresh(&model, &concat(&shared, &a_more)));
    assert_close(&format!("{id} fork child"), &got_b, &fresh(&model, &concat(&shared, &b_more)));
    assert!(pool.stats().0.live_blocks > blocks_before, "writes after the fork copied the shared partial block");
    // Rewind the parent into the middle of a block and continue differently.
    assert_eq!(a.truncate(41), 41);
    assert_eq!(a.tokens(), &concat(&shared, &a_more)[..41]);
    let again = tokens(7, 12, vocab);
    let got = last_logits(&model, &mut a, &again);
    assert_close(&format!("{id} truncate"), &got, &fresh(&model, &concat(&concat(&shared, &a_more)[..41], &again)));
    // The child never saw any of that.
    let tail = tokens(8, 3, vocab);
    let want = fresh(&model, &concat(&concat(&shared, &b_more), &tail));
    assert_close(&format!("{id} fork child after parent's truncate"), &last_logits(&model, &mut b, &tail), &want);
}

fn batched_decode(id: &str) {
    let Some((_, model)) = load(id) else { return };
    let vocab = model.config().vocab_size;
    let pool = model.new_kv_pool(model.default_kv_budget()).unwrap();
    let prompts = [tokens(9, 30, vocab), tokens(10, 5, vocab), tokens(11, 47, vocab)];
    let mut seqs: Vec<KvCache> = prompts.iter().map(|_| pool.new_sequence()).collect();
    for (s, p) in seqs.iter_mut().zip(&prompts) {
        last_logits(&model, s, p);
    }
    let mut histories: Vec<Vec<u32>> = prompts.to_vec();
    for step in 0..4 {
        let next: Vec<Vec<u32>> = (0..seqs.len()).map(|i| tokens(100 + step * 10 + i as u64, 1, vocab)).collect();
        let mut batch: Vec<BatchInput<'_>> =
            seqs.iter_mut().zip(&next).map(|(cache, t)| BatchInput { cache, tokens: t }).collect();
        let logits = model.forward_batch(&mut batch).unwrap().to_vec2::<f32>().unwrap();
        for (i, row) in logits.iter().enumerate() {
            histories[i].extend(&next[i]);
            assert_close(&format!("{id} batched step {step} sequence {i}"), row, &fresh(&model, &histories[i]));
        }
    }
}

fn persist(id: &str) {
    let Some((gguf, model)) = load(id) else { return };
    let vocab = model.config().vocab_size;
    let fingerprint = ModelFingerprint::of_gguf(&gguf).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("system.kv");
    let system = tokens(12, 53, vocab);
    {
        let pool = model.new_kv_pool(model.default_kv_budget()).unwrap();
        let mut seq = pool.new_sequence();
        last_logits(&model, &mut seq, &system);
        seq.save(&path, &fingerprint).unwrap();
    }
    // A fresh pool, as after a restart.
    let pool = model.new_kv_pool(model.default_kv_budget()).unwrap();
    let mut seq = pool.load_sequence(&path, &fingerprint).unwrap();
    assert_eq!(seq.tokens(), &system[..]);
    let turn = tokens(13, 11, vocab);
    assert_close(
        &format!("{id} reload"),
        &last_logits(&model, &mut seq, &turn),
        &fresh(&model, &concat(&system, &turn)),
    );
    // The loaded blocks also serve new sequences through the prefix tree.
    let mut other = pool.new_sequence();
    assert_eq!(other.reuse_prefix(&concat(&system, &turn)), 48);

    let other_model = ModelFingerprint::from_sha256("00ff");
    match pool.load_sequence(&path, &other_model) {
        Err(KvError::ModelMismatch { .. }) => {}
        other => panic!("expected a model mismatch, got {other:?}"),
    }
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[8] = 0; // format version 1 -> 0
    let old = dir.path().join("old.kv");
    std::fs::write(&old, &bytes).unwrap();
    match pool.load_sequence(&old, &fingerprint) {
        Err(e @ KvError::FormatVersion { found: 0, .. }) => eprintln!("{id}: {e}"),
        other => panic!("expected a format version error, got {other:?}"),
    }
    std::fs::write(&old, b"not a kv file at all").unwrap();
    assert!(matches!(pool.load_sequence(&old, &fingerprint), Err(KvError::NotAKvFile { .. })));
}

#[test]
fn smollm2_prefix_reuse_matches_fresh_prefill() {
    prefix_reuse("smollm2-135m");
}

#[test]
fn smollm2_fork_and_truncate_match_fresh_prefill() {
    fork_and_truncate("smollm2-135m");
}

#[test]
fn smollm2_batched_decode_matches_single_sequences() {
    batched_decode("smollm2-135m");
}

#[test]
fn smollm2_reload_from_disk_matches_fresh_prefill() {
    persist("smollm2-135m");
}

#[test]
fn qwen2_prefix_reuse_matches_fresh_prefill() {
    prefix_reuse("qwen2.5-coder-0.5b");
}

#[test]
fn qwen2_fork_and_truncate_match_fresh_prefill() {
    fork_and_truncate("qwen2.5-coder-0.5b");
}

#[test]
fn qwen2_batched_decode_matches_single_sequences() {
    batched_decode("qwen2.5-coder-0.5b");
}

#[test]
fn qwen2_reload_from_disk_matches_fresh_prefill() {
    persist("qwen2.5-coder-0.5b");
}

#[test]
fn pool_stays_within_budget_and_reports_exhaustion() {
    let Some((_, model)) = load("smollm2-135m") else { return };
    let layout = model.kv_layout(hearth_engine::kv::DEFAULT_BLOCK_SIZE);
    let block = layout.block_bytes(0);
    let pool = model.new_kv_pool(6 * block).unwrap();
    let vocab = model.config().vocab_size;
    // Cached blocks of finished sequences are evicted to make room for new ones.
    for seed in 0..4 {
        let mut s = pool.new_sequence();
        last_logits(&model, &mut s, &tokens(20 + seed, 60, vocab));
        let (stats, _) = pool.stats();
        assert!(stats.allocated_bytes <= stats.budget_bytes, "{stats:?}");
    }
    // Live sequences can not be evicted: asking for more than the budget fails cleanly.
    let mut s = pool.new_sequence();
    match model.forward(&tokens(30, 100, vocab), &mut s, Logits::Last) {
        Err(EngineError::Kv(KvError::PoolFull { .. })) => {}
        other => panic!("expected a full pool, got {other:?}"),
    }
    assert!(s.is_empty());
    last_logits(&model, &mut s, &tokens(31, 90, vocab));
}

#[test]
fn a_batch_the_pool_cannot_hold_changes_nothing() {
    let Some((_, model)) = load("smollm2-135m") else { return };
    let vocab = model.config().vocab_size;
    let block = model.kv_layout(hearth_engine::kv::DEFAULT_BLOCK_SIZE).block_bytes(0);
    // Blocks of 16: a holds 3, b 4 and c 2 of the 9 the budget has.
    let pool = model.new_kv_pool(9 * block).unwrap();
    let (a_prompt, b_prompt) = (tokens(50, 40, vocab), tokens(51, 50, vocab));
    let (mut a, mut b, mut c) = (pool.new_sequence(), pool.new_sequence(), pool.new_sequence());
    last_logits(&model, &mut a, &a_prompt);
    last_logits(&model, &mut b, &b_prompt);
    last_logits(&model, &mut c, &tokens(52, 20, vocab));
    let before = pool.stats();
    // a needs two new blocks, b none; nothing is free or evictable.
    let (a_more, b_more) = (tokens(53, 30, vocab), tokens(54, 1, vocab));
    let mut batch = [BatchInput { cache: &mut a, tokens: &a_more }, BatchInput { cache: &mut b, tokens: &b_more }];
    match model.forward_batch(&mut batch) {
        Err(EngineError::Kv(KvError::PoolFull { .. })) => {}
        other => panic!("expected a full pool, got {other:?}"),
    }
    assert_eq!(pool.stats(), before, "no block was reserved, evicted or leaked");
    assert_eq!((a.tokens(), b.tokens()), (&a_prompt[..], &b_prompt[..]));
    // c ends: its partial block is freed and its whole one cached, which makes room.
    drop(c);
    let mut batch = [BatchInput { cache: &mut a, tokens: &a_more }, BatchInput { cache: &mut b, tokens: &b_more }];
    let logits = model.forward_batch(&mut batch).unwrap().to_vec2::<f32>().unwrap();
    assert_close("sequence a after a refused pass", &logits[0], &fresh(&model, &concat(&a_prompt, &a_more)));
    assert_close("sequence b after a refused pass", &logits[1], &fresh(&model, &concat(&b_prompt, &b_more)));
    let (stats, _) = pool.stats();
    assert!(stats.allocated_bytes <= stats.budget_bytes, "{stats:?}");
}

#[test]
fn gemma3_sliding_window_layers_keep_only_their_window() {
    let Some((_, model)) = load("gemma3-270m") else { return };
    let vocab = model.config().vocab_size;
    let window = model.config().sliding_window.expect("gemma 3 has a sliding window");
    let pool = model.new_kv_pool(model.default_kv_budget()).unwrap();
    let layout = pool.layout().clone();
    let windowed = layout.groups.iter().position(|g| g.window.is_some()).unwrap();
    let prompt = tokens(40, window + 100, vocab);
    let mut seq = pool.new_sequence();
    last_logits(&model, &mut seq, &prompt);
    let mut history = prompt.clone();
    for i in 0..20 {
        let t = tokens(41 + i, 1, vocab);
        history.extend(&t);
        last_logits(&model, &mut seq, &t);
    }
    let t = tokens(70, 1, vocab);
    history.extend(&t);
    let got = last_logits(&model, &mut seq, &t);
    assert_close("gemma3 decode past the window", &got, &fresh(&model, &history));
    // Keys and values older than the window were released by the sequence (the prefix tree may
    // still cache them).
    let held = seq.held_blocks(windowed);
    assert!(held <= window / layout.block_size + 2, "{held} windowed blocks held");
    assert_eq!(seq.held_blocks(0), layout.blocks_for(seq.len()));
    // Rewinding before the window takes the released blocks back from the prefix tree.
    assert_eq!(seq.truncate(200), 200);
    let t = tokens(71, 5, vocab);
    let want = fresh(&model, &concat(&history[..200], &t));
    assert_close("gemma3 truncate before the window", &last_logits(&model, &mut seq, &t), &want);
    // A new sequence reuses a prefix longer than the window.
    let mut other = pool.new_sequence();
    let kept = other.reuse_prefix(&history);
    assert_eq!(kept, (history.len() - 1) / 16 * 16);
    assert_close("gemma3 prefix reuse past the window", &last_logits(&model, &mut other, &history[kept..]), &got);
}
