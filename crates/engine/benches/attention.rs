//! Attention alone, on synthetic keys and values in Qwen2.5-Coder-1.5B's shape (12 query heads
//! over 2 key/value heads of 128 dimensions): one layer of a 512-token prompt (llama-bench's
//! pp512), the same after 512 cached positions, and one decode step over all 28 layers after
//! 4096 positions, whose 117 MB of keys and values come from memory as a real step's do.
//!
//! `cargo bench -p hearth-engine --bench attention`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hearth_engine::kv::AttentionBench;

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("attention");
    group.sample_size(20);
    for (name, layers, past, rows) in
        [("pp512", 1, 0, 512), ("pp512_past512", 1, 512, 512), ("decode_28_layers_past4096", 28, 4096, 1)]
    {
        let case = AttentionBench::new(layers, 12, 2, 128, past, rows, None).expect("synthetic cache");
        group.throughput(Throughput::Elements(rows as u64));
        group.bench_function(name, |b| b.iter(|| black_box(case.run().expect("attention"))));
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
