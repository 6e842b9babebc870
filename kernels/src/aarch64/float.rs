//! NEON dot products of F32, F16 and BF16 weight rows with f32 activations.

use std::arch::aarch64::*;

use super::f16x4_to_f32;
use crate::quant::float as portable;

/// Sums `load4(w chunk, i) * x chunk` over 16 elements per step with four accumulators, then hands
/// the remaining tail to the portable kernel.
#[inline]
#[target_feature(enable = "neon,dotprod")]
fn dot_by_16<const BYTES: usize>(
    w: &[u8],
    x: &[f32],
    load4: impl Fn(&[u8; BYTES], usize) -> float32x4_t,
    tail: fn(&[u8], &[f32]) -> f32,
) -> f32 {
    let mut acc = [vdupq_n_f32(0.0); 4];
    let (wc, _) = w.as_chunks::<BYTES>();
    let (xc, _) = x.as_chunks::<16>();
    for (wb, xb) in wc.iter().zip(xc) {
        for (i, a) in acc.iter_mut().enumerate() {
            // SAFETY: `xb` has 16 floats; lanes 4i..4i+4 are in bounds for i < 4.
            let xv = unsafe { vld1q_f32(xb.as_ptr().add(4 * i)) };
            *a = vfmaq_f32(*a, load4(wb, i), xv);
        }
    }
    let done = wc.len().min(xc.len());
    let sum = vaddq_f32(vaddq_f32(acc[0], acc[1]), vaddq_f32(acc[2], acc[3]));
    let rest_w = w.get(done * BYTES..).unwrap_or_default();
    let rest_x = x.get(done * 16..).unwrap_or_default();
    vaddvq_f32(sum) + tail(rest_w, rest_x)
}

/// The four 16-bit values at bytes 8i..8i+8 of a 32-byte chunk.
#[inline]
#[target_feature(enable = "neon,dotprod")]
fn halves4(b: &[u8; 32], i: usize) -> uint16x4_t {
    debug_assert!(i < 4);
    // SAFETY: bytes 8i..8i+8 lie inside the 32-byte chunk for i < 4 (every caller passes 0..4).
    vreinterpret_u16_u8(unsafe { vld1_u8(b.as_ptr().add(8 * i)) })
}

#[target_feature(enable = "neon,dotprod")]
pub(super) fn dot_f32(w: &[u8], x: &[f32]) -> f32 {
    dot_by_16::<64>(
        w,
        x,
        // SAFETY: the chunk has 64 bytes; floats 4i..4i+4 are bytes 16i..16i+16 for i < 4. Loading
        // bytes keeps the load free of any alignment assumption.
        |b, i| vreinterpretq_f32_u8(unsafe { vld1q_u8(b.as_ptr().add(16 * i)) }),
        portable::dot_f32,
    )
}

#[target_feature(enable = "neon,dotprod")]
pub(super) fn dot_f16(w: &[u8], x: &[f32]) -> f32 {
    dot_by_16::<32>(w, x, |b, i| f16x4_to_f32(halves4(b, i)), portable::dot_f16)
}

#[target_feature(enable = "neon,dotprod")]
pub(super) fn dot_bf16(w: &[u8], x: &[f32]) -> f32 {
    // A bf16 is the top half of the f32 with the same bits.
    dot_by_16::<32>(w, x, |b, i| vreinterpretq_f32_u32(vshll_n_u16::<16>(halves4(b, i))), portable::dot_bf16)
}
