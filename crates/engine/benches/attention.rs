//! Attention alone, on synthetic keys and values in Qwen2.5-Coder-1.5B's shape (12 query heads
//! over 2 key/value heads of 128 dimensions): one layer of a 512-token prompt (llama-bench's
//! pp512), the same after 512 cached positions, and one decode step over all 28 layers after
//! 4096 positions, whose 117 MB of keys and values come from memory as a real step's do. Then a
//! decode step in SmolLM2-135M's shape (9 query heads over 3 key/value heads of 64, 30 layers),
//! whose three heads split into segments to fill two threads.
//!
//! `cargo bench -p hearth-engine --bench attention`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hearth_engine::kv::AttentionBench;

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("attention");
    group.sample_size(20);
    for (name, (layers, n_head, n_kv, head_dim), past, rows) in [
        ("pp512", (1, 12, 2, 128), 0, 512),
        ("pp512_past512", (1, 12, 2, 128), 512, 512),
        ("decode_28_layers_past4096", (28, 12, 2, 128), 4096, 1),
        ("smollm2_decode_30_layers_past4096", (30, 9, 3, 64), 4096, 1),
    ] {
        let case = AttentionBench::new(layers, n_head, n_kv, head_dim, past, rows, None).expect("synthetic cache");
        group.throughput(Throughput::Elements(rows as u64));
        group.bench_function(name, |b| b.iter(|| black_box(case.run().expect("attention"))));
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
