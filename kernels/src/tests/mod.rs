//! Cross-checks of every format and path against a per-element reference decoder.

mod dequantize;
mod gate;
mod matmul;
mod norm;
mod packed;
mod reference;
mod spin_pool;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::GgmlType;

pub(crate) fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// Byte offsets of the f16 scale fields in a block, which must be finite for a usable test block.
fn f16_fields(ty: GgmlType) -> &'static [usize] {
    match ty {
        GgmlType::Q4_0 | GgmlType::Q5_0 | GgmlType::Q8_0 => &[0],
        GgmlType::Q4_1 | GgmlType::Q5_1 | GgmlType::Q8_1 => &[0, 2],
        GgmlType::Q4K | GgmlType::Q5K => &[0, 2],
        GgmlType::Q2K => &[80, 82],
        GgmlType::Q3K => &[108],
        GgmlType::Q6K => &[208],
        GgmlType::F32 | GgmlType::F16 | GgmlType::BF16 | GgmlType::Q8K => &[],
    }
}

/// `len` elements of `ty`: random quants with small finite scales, or random floats in [-1, 1].
pub(crate) fn random_tensor(ty: GgmlType, len: usize, rng: &mut StdRng) -> Vec<u8> {
    let bytes = ty.bytes_for(len).expect("test lengths are whole blocks");
    let mut out = vec![0u8; bytes];
    match ty {
        GgmlType::F32 => {
            for c in out.chunks_exact_mut(4) {
                c.copy_from_slice(&rng.random_range(-1.0f32..1.0).to_le_bytes());
            }
        }
        GgmlType::F16 => {
            for c in out.chunks_exact_mut(2) {
                c.copy_from_slice(&half::f16::from_f32(rng.random_range(-1.0f32..1.0)).to_le_bytes());
            }
        }
        GgmlType::BF16 => {
            for c in out.chunks_exact_mut(2) {
                c.copy_from_slice(&half::bf16::from_f32(rng.random_range(-1.0f32..1.0)).to_le_bytes());
            }
        }
        _ => {
            rng.fill(&mut out[..]);
            for block in out.chunks_exact_mut(ty.type_size()) {
                for &at in f16_fields(ty) {
                    let magnitude = rng.random_range(0.01f32..0.1);
                    let v = if rng.random::<bool>() { magnitude } else { -magnitude };
                    block[at..at + 2].copy_from_slice(&half::f16::from_f32(v).to_le_bytes());
                }
                if ty == GgmlType::Q8K {
                    block[0..4].copy_from_slice(&rng.random_range(0.001f32..0.01).to_le_bytes());
                }
            }
        }
    }
    out
}

/// `len` activations in [-1, 1].
pub(crate) fn random_floats(len: usize, rng: &mut StdRng) -> Vec<f32> {
    (0..len).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}
