//! AVX2 dot products of F32, F16 and BF16 weight rows with f32 activations.

use std::arch::x86_64::*;

use super::hsum_ps;
use crate::quant::float as portable;

/// Sums `load(w chunk) * x chunk` over 32 elements per step with four accumulators, then hands the
/// remaining tail to the portable kernel.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn dot_by_32<const BYTES: usize>(
    w: &[u8],
    x: &[f32],
    load8: impl Fn(&[u8; BYTES], usize) -> __m256,
    tail: fn(&[u8], &[f32]) -> f32,
) -> f32 {
    let mut acc = [_mm256_setzero_ps(); 4];
    let (wc, _) = w.as_chunks::<BYTES>();
    let (xc, _) = x.as_chunks::<32>();
    for (wb, xb) in wc.iter().zip(xc) {
        for (i, a) in acc.iter_mut().enumerate() {
            // SAFETY: `xb` has 32 floats; lanes 8i..8i+8 are in bounds for i < 4.
            let xv = unsafe { _mm256_loadu_ps(xb.as_ptr().add(8 * i)) };
            *a = _mm256_fmadd_ps(load8(wb, i), xv, *a);
        }
    }
    let done = wc.len().min(xc.len());
    let sum = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
    let rest_w = w.get(done * BYTES..).unwrap_or_default();
    let rest_x = x.get(done * 32..).unwrap_or_default();
    hsum_ps(sum) + tail(rest_w, rest_x)
}

#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn dot_f32(w: &[u8], x: &[f32]) -> f32 {
    dot_by_32::<128>(
        w,
        x,
        // SAFETY: the chunk has 128 bytes; floats 8i..8i+8 are bytes 32i..32i+32 for i < 4.
        |b, i| unsafe { _mm256_loadu_ps(b.as_ptr().add(32 * i).cast()) },
        portable::dot_f32,
    )
}

#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn dot_f16(w: &[u8], x: &[f32]) -> f32 {
    dot_by_32::<64>(
        w,
        x,
        // SAFETY: the chunk has 64 bytes; halves 8i..8i+8 are bytes 16i..16i+16 for i < 4.
        |b, i| _mm256_cvtph_ps(unsafe { _mm_loadu_si128(b.as_ptr().add(16 * i).cast()) }),
        portable::dot_f16,
    )
}

#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn dot_bf16(w: &[u8], x: &[f32]) -> f32 {
    dot_by_32::<64>(
        w,
        x,
        |b, i| {
            // SAFETY: as for F16; a bf16 is the top half of the f32 with the same bits.
            let halves = unsafe { _mm_loadu_si128(b.as_ptr().add(16 * i).cast()) };
            _mm256_castsi256_ps(_mm256_slli_epi32::<16>(_mm256_cvtepu16_epi32(halves)))
        },
        portable::dot_bf16,
    )
}
