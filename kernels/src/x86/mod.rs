//! AVX2 + FMA + F16C kernels for x86-64, chosen at run time by `cpu::detected`.
//!
//! Every function here is compiled with `#[target_feature]`, so a baseline x86-64 build still
//! carries them; `matmul` only reaches them through a `SimdPath::Avx2`, which exists only once the
//! features were detected.

mod float;
mod k_quants;
mod legacy;

use std::arch::x86_64::*;

use crate::GgmlType;
use crate::matmul::RowDot;

/// The AVX2 kernel for `ty`, where there is one.
pub(crate) fn avx2_dot(ty: GgmlType) -> Option<RowDot> {
    Some(match ty {
        GgmlType::F32 => RowDot::Float(float::dot_f32),
        GgmlType::F16 => RowDot::Float(float::dot_f16),
        GgmlType::BF16 => RowDot::Float(float::dot_bf16),
        GgmlType::Q4_0 => RowDot::Q8(legacy::dot_q4_0),
        GgmlType::Q4_1 => RowDot::Q8(legacy::dot_q4_1),
        GgmlType::Q5_0 => RowDot::Q8(legacy::dot_q5_0),
        GgmlType::Q5_1 => RowDot::Q8(legacy::dot_q5_1),
        GgmlType::Q8_0 => RowDot::Q8(legacy::dot_q8_0),
        GgmlType::Q4K => RowDot::Q8K(k_quants::dot_q4k),
        GgmlType::Q5K => RowDot::Q8K(k_quants::dot_q5k),
        GgmlType::Q6K => RowDot::Q8K(k_quants::dot_q6k),
        _ => return None,
    })
}

/// Sum of the eight lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn hsum_ps(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_movehdup_ps(s));
    _mm_cvtss_f32(s)
}

/// Sum of the four lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn hsum_epi32_128(v: __m128i) -> i32 {
    let s = _mm_add_epi32(v, _mm_unpackhi_epi64(v, v));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b01>(s));
    _mm_cvtsi128_si32(s)
}

/// The little-endian f16 at bytes `lo`, `hi` as f32, converted in hardware.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn f16_to_f32(lo: u8, hi: u8) -> f32 {
    let bits = i32::from(u16::from_le_bytes([lo, hi]));
    _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(bits)))
}

/// Loads 32 bytes starting at `p[at]`.
///
/// # Safety
/// `p` must have at least `at + 32` bytes; callers pass block arrays with constant offsets.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn load32(p: &[u8], at: usize) -> __m256i {
    debug_assert!(at + 32 <= p.len());
    // SAFETY: in bounds by this function's contract; loadu has no alignment requirement.
    unsafe { _mm256_loadu_si256(p.as_ptr().add(at).cast()) }
}

/// Loads 16 bytes starting at `p[at]`.
///
/// # Safety
/// `p` must have at least `at + 16` bytes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn load16(p: &[u8], at: usize) -> __m128i {
    debug_assert!(at + 16 <= p.len());
    // SAFETY: in bounds by this function's contract; loadu has no alignment requirement.
    unsafe { _mm_loadu_si128(p.as_ptr().add(at).cast()) }
}

/// Loads 32 activation quants.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn load_i8x32(q: &[i8; 32]) -> __m256i {
    // SAFETY: the array is exactly 32 bytes.
    unsafe { _mm256_loadu_si256(q.as_ptr().cast()) }
}

/// Lane-wise sums of products of unsigned `u` (each below 128) and signed `s`, four per lane.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn dot_u8_i8(u: __m256i, s: __m256i) -> __m256i {
    // Pairs of u*s fit i16 because u < 128 and s >= -127.
    _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1))
}

/// Lane-wise sums of products of signed bytes `a` and `b` (b >= -127), four per lane.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn dot_i8_i8(a: __m256i, b: __m256i) -> __m256i {
    // maddubs wants one unsigned operand: move a's sign onto b. |a| may be 128, which is still an
    // exact u8, and 2 * 128 * 127 fits i16.
    let abs_a = _mm256_sign_epi8(a, a);
    let signed_b = _mm256_sign_epi8(b, a);
    _mm256_madd_epi16(_mm256_maddubs_epi16(abs_a, signed_b), _mm256_set1_epi16(1))
}
