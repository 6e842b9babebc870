//! AVX2 dot products for the 32-element formats against `Q8Block` activations.
//!
//! Weight quants are kept unsigned where the format allows, so one `maddubs` multiplies them with
//! the activations; the format's offset (-8, -16) or minimum is applied once per block through the
//! activations' sum. Each kernel exists for one activation row and for four: the four-row form
//! unpacks every weight block once and reuses it, which is what makes prefill fast.

use std::arch::x86_64::*;

use super::{PREFETCH_BYTES, f16_pair, f16_twice, hsum_ps, load_i8x32, load16, load32};
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
        _mm256_setr_epi64x(0, 0x0101_0101_0101_0101, 0x0202_0202_0202_0202, 0x0303_0303_0303_0303),
    );
    let bit = _mm256_set1_epi64x(0x8040_2010_0804_0201_u64 as i64);
    let set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
    _mm256_and_si256(set, _mm256_set1_epi8(0x10))
}

/// The u32 at the start of a block: its first two f16 fields.
#[inline(always)]
fn head(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// Dots one weight row with `R` activation rows.
///
/// `unpack` turns a block into its 32 quants (unsigned unless `SIGNED`) and a scale pair: lane 0
/// multiplies the activation scale, lane 1 the activation sum, and the lane-1 products are summed
/// and weighted by `extra_weight` (the offset -8 or -16, 1 for a minimum, 0 for none).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn rows<const BYTES: usize, const R: usize, const SIGNED: bool>(
    w: &[u8],
    acts: [&[Q8Block]; R],
    extra_weight: f32,
    unpack: impl Fn(&[u8; BYTES]) -> (__m256i, __m128),
) -> [f32; R] {
    let blocks = w.as_chunks::<BYTES>().0;
    let count = acts.iter().fold(blocks.len(), |n, a| n.min(a.len()));
    let mut main = [_mm256_setzero_ps(); R];
    let mut extra = [_mm_setzero_ps(); R];
    let ones = _mm256_set1_epi16(1);
    for (i, b) in blocks[..count].iter().enumerate() {
        if R == 1 {
            // Decode reads each block once (see `PREFETCH_BYTES`). Blocks are smaller than a line,
            // so most asks repeat one; a prefetch never faults, whatever the address.
            _mm_prefetch::<_MM_HINT_T0>(b.as_ptr().wrapping_add(PREFETCH_BYTES).cast());
        }
        let (q, scales) = unpack(b);
        // maddubs needs one unsigned operand: signed quants lend their sign to the activations.
        // |q| may be 128, still an exact u8, and 2 * 128 * 127 fits i16.
        let q_abs = if SIGNED { _mm256_sign_epi8(q, q) } else { q };
        for r in 0..R {
            let a = &acts[r][i];
            let y = load_i8x32(&a.qs);
            let y = if SIGNED { _mm256_sign_epi8(y, q) } else { y };
            let lanes = _mm256_madd_epi16(_mm256_maddubs_epi16(q_abs, y), ones);
            let products = _mm_mul_ps(scales, _mm_setr_ps(a.d, a.sum, 0.0, 0.0));
            main[r] = _mm256_fmadd_ps(_mm256_broadcastss_ps(products), _mm256_cvtepi32_ps(lanes), main[r]);
            extra[r] = _mm_add_ps(extra[r], products);
        }
    }
    let mut out = [0f32; R];
    for r in 0..R {
        out[r] = hsum_ps(main[r]) + extra_weight * _mm_cvtss_f32(_mm_movehdup_ps(extra[r]));
    }
    out
}

/// Defines the one-row and four-row kernels of a format from its block unpacking.
macro_rules! legacy_kernels {
    ($one:ident, $four:ident, $bytes:expr, $signed:expr, $extra:expr, |$b:ident| $unpack:expr) => {
        #[target_feature(enable = "avx2,fma,f16c")]
        pub(super) fn $one(w: &[u8], act: &[Q8Block]) -> f32 {
            let [y] = rows::<$bytes, 1, $signed>(w, [act], $extra, |$b: &[u8; $bytes]| $unpack);
            y
        }

        #[target_feature(enable = "avx2,fma,f16c")]
        pub(super) fn $four(w: &[u8], acts: [&[Q8Block]; 4]) -> [f32; 4] {
            rows::<$bytes, 4, $signed>(w, acts, $extra, |$b: &[u8; $bytes]| $unpack)
        }
    };
}

// SAFETY (all unpacking below): each block array has the format's size; the quants start at the
// offset read and end at the block's end.
legacy_kernels!(dot_q4_0, dot_q4_0_x4, Q4_0_BYTES, false, -8.0, |b| {
    (unsafe { nibbles(b, 2) }, f16_twice(b[0], b[1]))
});
legacy_kernels!(dot_q4_1, dot_q4_1_x4, Q4_1_BYTES, false, 1.0, |b| (unsafe { nibbles(b, 4) }, f16_pair(head(b))));
legacy_kernels!(dot_q5_0, dot_q5_0_x4, Q5_0_BYTES, false, -16.0, |b| {
    let q = _mm256_or_si256(unsafe { nibbles(b, 6) }, fifth_bits([b[2], b[3], b[4], b[5]]));
    (q, f16_twice(b[0], b[1]))
});
legacy_kernels!(dot_q5_1, dot_q5_1_x4, Q5_1_BYTES, false, 1.0, |b| {
    let q = _mm256_or_si256(unsafe { nibbles(b, 8) }, fifth_bits([b[4], b[5], b[6], b[7]]));
    (q, f16_pair(head(b)))
});
legacy_kernels!(dot_q8_0, dot_q8_0_x4, Q8_0_BYTES, true, 0.0, |b| { (unsafe { load32(b, 2) }, f16_twice(b[0], b[1])) });
