//! matmul throughput on the shapes of a 1.5B model's projections.
//!
//! For m = 1 (decode) the reported throughput is GB/s of weight bytes read, the figure that bounds
//! token generation; for more rows (batched decode of 2 to 4 sequences, prefill at 64) it is
//! multiply-adds per second. Types this CPU has packed kernels for are also run repacked
//! (`<type>-packed`), the form the engine loads them in.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hearth_kernels::{GgmlType, PackArena, matmul, pack_in, simd_level};
use rand::Rng;

mod common;

use common::random_weights;

const TYPES: [GgmlType; 7] =
    [GgmlType::Q4K, GgmlType::Q6K, GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0];
const SHAPES: [(usize, usize); 2] = [(1536, 1536), (8960, 1536)];

fn bench(c: &mut Criterion) {
    eprintln!("simd_level: {}, threads: {}", simd_level(), rayon::current_num_threads());
    let mut rng = common::rng();
    for m in [1usize, 2, 3, 4, 64] {
        let mut group = c.benchmark_group(format!("matmul_m{m}"));
        for ty in TYPES {
            for (n, k) in SHAPES {
                let w = random_weights(ty, n, k, &mut rng);
                let x: Vec<f32> = (0..m * k).map(|_| rng.random_range(-1.0f32..1.0)).collect();
                let mut y = vec![0f32; m * n];
                group.throughput(if m == 1 {
                    Throughput::BytesDecimal(w.len() as u64)
                } else {
                    Throughput::Elements((m * n * k) as u64)
                });
                group.bench_function(format!("{ty}/{n}x{k}"), |b| {
                    b.iter(|| matmul(ty, black_box(&w), n, k, black_box(&x), m, &mut y))
                });
                // The same weights repacked, where this CPU has kernels for a packed form.
                if let Ok(Some(packed)) = pack_in(&PackArena::new(), ty, &w, n, k) {
                    group.bench_function(format!("{ty}-packed/{n}x{k}"), |b| {
                        b.iter(|| packed.matmul(black_box(&x), m, &mut y))
                    });
                }
            }
        }
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
