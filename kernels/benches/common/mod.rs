//! Weights shared by the kernel benchmarks.

use hearth_kernels::GgmlType;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The benchmarks' random source, seeded so every run times the same data.
pub fn rng() -> StdRng {
    StdRng::seed_from_u64(0)
}

/// Byte offsets of a block's f16 scales, set to small finite values so sums stay finite.
fn f16_fields(ty: GgmlType) -> &'static [usize] {
    match ty {
        GgmlType::Q4_1 | GgmlType::Q4K => &[0, 2],
        GgmlType::Q6K => &[208],
        _ => &[0],
    }
}

/// `n` rows of `k` random elements of type `ty`, in the file layout.
pub fn random_weights(ty: GgmlType, n: usize, k: usize, rng: &mut StdRng) -> Vec<u8> {
    let row = ty.bytes_for(k).unwrap_or(0);
    let mut w = vec![0u8; n * row];
    rng.fill(&mut w[..]);
    for block in w.chunks_exact_mut(ty.type_size()) {
        for &at in f16_fields(ty) {
            let v = half::f16::from_f32(rng.random_range(0.01f32..0.1));
            block[at..at + 2].copy_from_slice(&v.to_le_bytes());
        }
    }
    w
}
