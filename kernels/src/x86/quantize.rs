//! Activation quantization with AVX2: the same operations as `activation::quantize_q8_scalar` and
//! `quantize_q8k_scalar`, eight lanes at a time, so the quants are bit-identical. Decode quantizes
//! every product's input on one thread while the others wait; the scalar loops were about one
//! percent of a token each.

use std::arch::x86_64::*;

use crate::activation::{Q8Block, Q8KBlock, scale_for_amax};

/// The largest magnitude among `vs`, skipping NaNs as `f32::max` does.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn amax(vs: &[[f32; 8]]) -> f32 {
    let sign = _mm256_set1_ps(-0.0);
    let mut max = _mm256_setzero_ps();
    for v in vs {
        // SAFETY: each chunk is eight f32, and unaligned loads are allowed. `max_ps` returns its
        // second operand when either is NaN, so NaNs are skipped.
        max = _mm256_max_ps(_mm256_andnot_ps(sign, unsafe { _mm256_loadu_ps(v.as_ptr()) }), max);
    }
    let mut lanes = [0f32; 8];
    // SAFETY: `lanes` is eight f32.
    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), max) };
    lanes.iter().fold(0f32, |a, &v| a.max(v))
}

/// The 32 values of `four` times `id` as `round_to_i8` rounds them, stored at `out`; returns the
/// quants as i32 lanes, summed across the four vectors.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn quantize32(four: &[[f32; 8]; 4], id: __m256, out: &mut [i8; 32]) -> __m256i {
    let sign = _mm256_set1_ps(-0.0);
    let half = _mm256_set1_ps(0.5);
    let (low, high) = (_mm256_set1_ps(-128.0), _mm256_set1_ps(127.0));
    let q = four.map(|v| {
        // SAFETY: eight f32, unaligned loads allowed.
        let t = _mm256_mul_ps(unsafe { _mm256_loadu_ps(v.as_ptr()) }, id);
        // Half away from zero, then truncation, saturating to i8 with NaN as 0: what
        // `round_to_i8`'s `as i8` does. (Infinities come from a subnormal block's scale.)
        // `min_ps`/`max_ps` with `t` second keep a NaN for the mask to clear.
        let t = _mm256_add_ps(t, _mm256_or_ps(half, _mm256_and_ps(t, sign)));
        let t = _mm256_max_ps(low, _mm256_min_ps(high, t));
        let t = _mm256_andnot_ps(_mm256_cmp_ps::<_CMP_UNORD_Q>(t, t), t);
        _mm256_cvttps_epi32(t)
    });
    let bytes = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
    // Lane order after the two packs, undone by one permutation.
    let bytes = _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    // SAFETY: `out` is 32 bytes.
    unsafe { _mm256_storeu_si256(out.as_mut_ptr().cast(), bytes) };
    _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]))
}

/// Quantizes `x` (`32 * out.len()` values) into `out`.
#[target_feature(enable = "avx2,fma")]
pub(crate) fn quantize_q8(x: &[f32], out: &mut [Q8Block]) {
    for (xs, block) in x.as_chunks::<32>().0.iter().zip(out.iter_mut()) {
        let (vs, _) = xs.as_chunks::<8>();
        let (d, id) = scale_for_amax(amax(vs));
        let Some(four) = vs.first_chunk::<4>() else { continue };
        let sums = quantize32(four, _mm256_set1_ps(id), &mut block.qs);
        let mut lanes = [0i32; 8];
        // SAFETY: `lanes` is eight i32.
        unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast(), sums) };
        block.d = d;
        block.sum = d * lanes.iter().sum::<i32>() as f32;
    }
}

/// Quantizes `x` (`256 * out.len()` values) into `out`.
#[target_feature(enable = "avx2,fma")]
pub(crate) fn quantize_q8k(x: &[f32], out: &mut [Q8KBlock]) {
    for (xs, block) in x.as_chunks::<256>().0.iter().zip(out.iter_mut()) {
        let (vs, _) = xs.as_chunks::<8>();
        let (d, id) = scale_for_amax(amax(vs));
        let id = _mm256_set1_ps(id);
        for (four, out) in vs.as_chunks::<4>().0.iter().zip(block.qs.as_chunks_mut::<32>().0) {
            quantize32(four, id, out);
        }
        block.finish(d);
    }
}
