//! A block's residual add and the RMS norm after it: candle's add then candle's norm, against
//! `RmsNorm::add_forward` (one `hearth_kernels::add_rms_norm` pass), for one decode row of
//! SmolLM2-135M (576) and Qwen2.5-Coder-1.5B (1536), and a 512-row prompt of the latter.
//!
//! `cargo bench -p hearth-engine --bench norm`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use candle_core::{Device, Tensor};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hearth_engine::model::layers::RmsNorm;

fn values(len: usize, seed: u32) -> Vec<f32> {
    (0..len).map(|i| ((i as u32).wrapping_mul(2_654_435_761) ^ seed) as f32 / u32::MAX as f32 - 0.5).collect()
}

fn bench(c: &mut Criterion) {
    let cpu = Device::Cpu;
    let mut group = c.benchmark_group("add_rms_norm");
    for (name, rows, width) in [("smollm2_row", 1, 576), ("qwen_1.5b_row", 1, 1536), ("qwen_1.5b_512_rows", 512, 1536)]
    {
        let weight = Tensor::from_vec(values(width, 1), width, &cpu).unwrap();
        let norm = RmsNorm::new(weight.clone(), 1e-6).unwrap();
        let x = Tensor::from_vec(values(rows * width, 2), (rows, width), &cpu).unwrap();
        let d = Tensor::from_vec(values(rows * width, 3), (rows, width), &cpu).unwrap();
        group.throughput(Throughput::Elements(rows as u64));
        group.bench_function(format!("{name}/candle"), |b| {
            b.iter(|| {
                let sum = (&x + &d).unwrap();
                black_box(candle_nn::ops::rms_norm(&sum, &weight, 1e-6).unwrap());
                black_box(sum)
            })
        });
        group.bench_function(format!("{name}/hearth"), |b| b.iter(|| black_box(norm.add_forward(&x, &d).unwrap())));
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
