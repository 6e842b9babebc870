//! Activation quantization with AVX2: the same operations as `activation::quantize_q8k_scalar`,
//! eight lanes at a time, so the quants are bit-identical. Decode quantizes every product's input
//! on one thread while the others wait; the scalar loop was about one percent of a token.

use std::arch::x86_64::*;

use crate::activation::{Q8KBlock, scale_for_amax};

/// Quantizes `x` (`256 * out.len()` values) into `out`.
#[target_feature(enable = "avx2,fma")]
pub(crate) fn quantize_q8k(x: &[f32], out: &mut [Q8KBlock]) {
    let sign = _mm256_set1_ps(-0.0);
    let half = _mm256_set1_ps(0.5);
    let (low, high) = (_mm256_set1_ps(-128.0), _mm256_set1_ps(127.0));
    for (xs, block) in x.as_chunks::<256>().0.iter().zip(out.iter_mut()) {
        let (vs, _) = xs.as_chunks::<8>();
        // SAFETY (loads): each chunk is eight f32, and unaligned loads are allowed.
        let mut max = _mm256_setzero_ps();
        for v in vs {
            // `max_ps` returns its second operand when either is NaN, so NaNs are skipped as
            // `f32::max` skips them.
            max = _mm256_max_ps(_mm256_andnot_ps(sign, unsafe { _mm256_loadu_ps(v.as_ptr()) }), max);
        }
        let mut lanes = [0f32; 8];
        // SAFETY: `lanes` is eight f32.
        unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), max) };
        let (d, id) = scale_for_amax(lanes.iter().fold(0f32, |a, &v| a.max(v)));
        let id = _mm256_set1_ps(id);
        // Lane order after the two packs, undone by one permutation.
        let order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
        for (at, four) in vs.as_chunks::<4>().0.iter().enumerate() {
            let q = four.map(|v| {
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
            let bytes = _mm256_permutevar8x32_epi32(bytes, order);
            // SAFETY: `at < 8`, so the 32 bytes at `32 * at` are inside the 256 quants.
            unsafe { _mm256_storeu_si256(block.qs.as_mut_ptr().add(32 * at).cast(), bytes) };
        }
        block.finish(d);
    }
}
