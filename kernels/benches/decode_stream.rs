//! One decoded token's matrix products on Qwen2.5-Coder-1.5B's shapes and Q4_K_M types: about
//! 930 MiB of weights, far more than any cache, read once per iteration in the model's order.
//!
//! The throughput is GB/s of weight bytes, the figure that bounds token generation. It measures
//! how much of the memory bandwidth the kernels keep busy: a kernel fast on weights in cache can
//! still stream slowly when its prefetches arrive late or out of order. Weights are packed where
//! this CPU has packed kernels, as the engine loads them.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hearth_kernels::{GgmlType, PackArena, matmul, pack_in, simd_level};
use rand::Rng;
use rand::rngs::StdRng;

mod common;

use common::random_weights;

/// Layers, hidden size, feed-forward size, key/value width and vocabulary of the 1.5B model.
const LAYERS: usize = 28;
const HIDDEN: usize = 1536;
const FFN: usize = 8960;
const KV: usize = 256;
const VOCAB: usize = 151_936;

/// One weight matrix, packed or in its file layout.
enum Matrix {
    Packed(hearth_kernels::PackedWeights),
    RowMajor { ty: GgmlType, bytes: Vec<u8>, n: usize, k: usize },
}

impl Matrix {
    fn random(arena: &PackArena, ty: GgmlType, n: usize, k: usize, rng: &mut StdRng) -> Self {
        let bytes = random_weights(ty, n, k, rng);
        match pack_in(arena, ty, &bytes, n, k) {
            Ok(Some(packed)) => Self::Packed(packed),
            _ => Self::RowMajor { ty, bytes, n, k },
        }
    }

    fn bytes(&self) -> usize {
        match self {
            Self::Packed(p) => p.len(),
            Self::RowMajor { bytes, .. } => bytes.len(),
        }
    }

    fn run(&self, x: &[f32], y: &mut [f32]) {
        let _ = match self {
            Self::Packed(p) => p.matmul(&x[..p.k()], 1, &mut y[..p.n()]),
            Self::RowMajor { ty, bytes, n, k } => matmul(*ty, bytes, *n, *k, &x[..*k], 1, &mut y[..*n]),
        };
    }
}

fn bench(c: &mut Criterion) {
    eprintln!("simd_level: {}, threads: {}", simd_level(), rayon::current_num_threads());
    let mut rng = common::rng();
    // One arena, as the engine gives a model's weights.
    let arena = PackArena::new();
    let mut model = Vec::new();
    for layer in 0..LAYERS {
        // Q4_K_M keeps half the layers' value and down projections in Q6_K.
        let wide = if layer % 2 == 0 { GgmlType::Q6K } else { GgmlType::Q4K };
        for (ty, n, k) in [
            (GgmlType::Q4K, HIDDEN, HIDDEN),
            (GgmlType::Q4K, KV, HIDDEN),
            (wide, KV, HIDDEN),
            (GgmlType::Q4K, HIDDEN, HIDDEN),
            (GgmlType::Q4K, FFN, HIDDEN),
            (GgmlType::Q4K, FFN, HIDDEN),
            (wide, HIDDEN, FFN),
        ] {
            model.push(Matrix::random(&arena, ty, n, k, &mut rng));
        }
    }
    model.push(Matrix::random(&arena, GgmlType::Q6K, VOCAB, HIDDEN, &mut rng));
    let bytes: usize = model.iter().map(Matrix::bytes).sum();
    let x: Vec<f32> = (0..FFN).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    let mut y = vec![0f32; VOCAB];
    let mut group = c.benchmark_group("decode_stream");
    group.sample_size(10);
    group.throughput(Throughput::BytesDecimal(bytes as u64));
    group.bench_function("qwen2.5-1.5b-q4_k_m", |b| {
        b.iter(|| {
            for m in &model {
                m.run(black_box(&x), &mut y);
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
