//! AVX2 dot products for the 32-element formats against `Q8Block` activations.
//!
//! Weight quants are kept unsigned so one `maddubs` multiplies them with the activations; the
//! format's offset (-8, -16) or minimum is applied once per block through the activations' sum.

use std::arch::x86_64::*;

use super::{dot_i8_i8, dot_u8_i8, f16_to_f32, hsum_ps, load_i8x32, load16, load32};
use crate::activation::Q8Block;
use crate::quant::legacy::{Q4_0_BYTES, Q4_1_BYTES, Q5_0_BYTES, Q5_1_BYTES, Q8_0_BYTES};

/// The 32 nibbles of `qs` (16 bytes at `p[at]`) as bytes in element order.
///
/// # Safety
/// `p` must have at least `at + 16` bytes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn nibbles(p: &[u8], at: usize) -> __m256i {
    // SAFETY: forwarded contract.
    let packed = unsafe { load16(p, at) };
    let both = _mm256_set_m128i(_mm_srli_epi16::<4>(packed), packed);
    _mm256_and_si256(both, _mm256_set1_epi8(0x0F))
}

/// 0x10 in byte j where bit j of the little-endian `qh` is set, else 0.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn fifth_bits(qh: [u8; 4]) -> __m256i {
    let spread = _mm256_shuffle_epi8(
        _mm256_set1_epi32(i32::from_le_bytes(qh)),
        _mm256_setr_epi64x(
            0,
            0x0101_0101_0101_0101,
            0x0202_0202_0202_0202,
            0x0303_0303_0303_0303,
        ),
    );
    let bit = _mm256_set1_epi64x(0x8040_2010_0804_0201_u64 as i64);
    let set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
    _mm256_and_si256(set, _mm256_set1_epi8(0x10))
}

/// Accumulates `d * lanes` into `acc`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn fma_lanes(acc: __m256, d: f32, lanes: __m256i) -> __m256 {
    _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(lanes), acc)
}

#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn dot_q4_0(w: &[u8], act: &[Q8Block]) -> f32 {
    let mut acc = _mm256_setzero_ps();
    let mut offsets = 0f32;
    for (b, a) in w.as_chunks::<Q4_0_BYTES>().0.iter().zip(act) {
        let d = f16_to_f32(b[0], b[1]);
        // SAFETY: the block has 18 bytes; the quants are bytes 2..18.
        let q = unsafe { nibbles(b, 2) };
        acc = fma_lanes(acc, d * a.d, dot_u8_i8(q, load_i8x32(&a.qs)));
        offsets += d * a.sum;
    }
    hsum_ps(acc) - 8.0 * offsets
}

#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn dot_q4_1(w: &[u8], act: &[Q8Block]) -> f32 {
    let mut acc = _mm256_setzero_ps();
    let mut mins = 0f32;
    for (b, a) in w.as_chunks::<Q4_1_BYTES>().0.iter().zip(act) {
        // SAFETY: the block has 20 bytes; the quants are bytes 4..20.
        let q = unsafe { nibbles(b, 4) };
        acc = fma_lanes(
            acc,
            f16_to_f32(b[0], b[1]) * a.d,
            dot_u8_i8(q, load_i8x32(&a.qs)),
        );
        mins += f16_to_f32(b[2], b[3]) * a.sum;
    }
    hsum_ps(acc) + mins
}

#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn dot_q5_0(w: &[u8], act: &[Q8Block]) -> f32 {
    let mut acc = _mm256_setzero_ps();
    let mut offsets = 0f32;
    for (b, a) in w.as_chunks::<Q5_0_BYTES>().0.iter().zip(act) {
        let d = f16_to_f32(b[0], b[1]);
        // SAFETY: the block has 22 bytes; the low quants are bytes 6..22.
        let low = unsafe { nibbles(b, 6) };
        let q = _mm256_or_si256(low, fifth_bits([b[2], b[3], b[4], b[5]]));
        acc = fma_lanes(acc, d * a.d, dot_u8_i8(q, load_i8x32(&a.qs)));
        offsets += d * a.sum;
    }
    hsum_ps(acc) - 16.0 * offsets
}

#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn dot_q5_1(w: &[u8], act: &[Q8Block]) -> f32 {
    let mut acc = _mm256_setzero_ps();
    let mut mins = 0f32;
    for (b, a) in w.as_chunks::<Q5_1_BYTES>().0.iter().zip(act) {
        // SAFETY: the block has 24 bytes; the low quants are bytes 8..24.
        let low = unsafe { nibbles(b, 8) };
        let q = _mm256_or_si256(low, fifth_bits([b[4], b[5], b[6], b[7]]));
        acc = fma_lanes(
            acc,
            f16_to_f32(b[0], b[1]) * a.d,
            dot_u8_i8(q, load_i8x32(&a.qs)),
        );
        mins += f16_to_f32(b[2], b[3]) * a.sum;
    }
    hsum_ps(acc) + mins
}

#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn dot_q8_0(w: &[u8], act: &[Q8Block]) -> f32 {
    let mut acc = _mm256_setzero_ps();
    for (b, a) in w.as_chunks::<Q8_0_BYTES>().0.iter().zip(act) {
        // SAFETY: the block has 34 bytes; the quants are bytes 2..34.
        let q = unsafe { load32(b, 2) };
        acc = fma_lanes(
            acc,
            f16_to_f32(b[0], b[1]) * a.d,
            dot_i8_i8(q, load_i8x32(&a.qs)),
        );
    }
    hsum_ps(acc)
}
