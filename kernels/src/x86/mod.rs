//! AVX2 + FMA + F16C kernels for x86-64, chosen at run time by `cpu::detected`.
//!
//! Every function here is compiled with `#[target_feature]`, so a baseline x86-64 build still
//! carries them; `matmul` only reaches them through a `SimdPath::Avx2`, which exists only once the
//! features were detected. `avx512/` holds the AVX-512 VNNI kernels, reached the same way through a
//! `SimdPath::Avx512`; formats it has no kernel for fall back to these.

/// Defines the group kernels of one packed type for one to four activation rows (`$one` to
/// `$four`, from `$body::<MR, ...>`, compiled with `$features`) and `$set`, the set of them.
macro_rules! group_kernels {
    ($features:literal, $set:ident, $block:ty, $body:ident $(::<$($arg:tt),*>)?, [$one:ident, $two:ident, $three:ident, $four:ident]) => {
        group_kernels!(@one $features, $one, $block, $body $(::<$($arg),*>)?, 1);
        group_kernels!(@one $features, $two, $block, $body $(::<$($arg),*>)?, 2);
        group_kernels!(@one $features, $three, $block, $body $(::<$($arg),*>)?, 3);
        group_kernels!(@one $features, $four, $block, $body $(::<$($arg),*>)?, 4);
        /// The kernels above, by activation rows.
        pub(crate) const $set: crate::packed::GroupKernelSet<$block> =
            crate::packed::GroupKernelSet { one: $one, two: $two, three: $three, four: $four };
    };
    (@one $features:literal, $name:ident, $block:ty, $body:ident $(::<$($arg:tt),*>)?, $mr:literal) => {
        #[target_feature(enable = $features)]
        fn $name(group: &[u8], acts: [&[$block]; $mr]) -> [[f32; crate::packed::GROUP_ROWS]; $mr] {
            $body::<$mr $($(, $arg)*)?>(group, acts)
        }
    };
}

/// The group kernels and sets of the four nibble formats (`Q4_0_KERNELS` and so on), from the
/// `nibble_group::<MR, BYTES, MIN, FIFTH>` in scope, compiled with `$features`.
macro_rules! nibble_kernel_sets {
    ($features:literal) => {
        group_kernels!(
            $features,
            Q4_0_KERNELS,
            crate::activation::Q8Block,
            nibble_group::<{ crate::packed::nibble_group_bytes(false, false) }, false, false>,
            [q4_0_group_1, q4_0_group_2, q4_0_group_3, q4_0_group_4]
        );
        group_kernels!(
            $features,
            Q4_1_KERNELS,
            crate::activation::Q8Block,
            nibble_group::<{ crate::packed::nibble_group_bytes(true, false) }, true, false>,
            [q4_1_group_1, q4_1_group_2, q4_1_group_3, q4_1_group_4]
        );
        group_kernels!(
            $features,
            Q5_0_KERNELS,
            crate::activation::Q8Block,
            nibble_group::<{ crate::packed::nibble_group_bytes(false, true) }, false, true>,
            [q5_0_group_1, q5_0_group_2, q5_0_group_3, q5_0_group_4]
        );
        group_kernels!(
            $features,
            Q5_1_KERNELS,
            crate::activation::Q8Block,
            nibble_group::<{ crate::packed::nibble_group_bytes(true, true) }, true, true>,
            [q5_1_group_1, q5_1_group_2, q5_1_group_3, q5_1_group_4]
        );
    };
}

mod avx512;
mod float;
mod gate;
mod k_quants;
mod legacy;
mod packed;
mod quantize;

use std::arch::x86_64::*;

use crate::GgmlType;
use crate::matmul::{RowDot, RowKernel};
use crate::packed::GroupKernels;

pub(crate) use avx512::{avx512_dot, avx512_packed};
pub(crate) use gate::gate_mul;
pub(crate) use quantize::{quantize_q8, quantize_q8k};

/// How far ahead decode asks for weights. Rows lie back to back, so this runs into the rows the
/// following calls read: with one activation row each block is read once, and its load would
/// otherwise stall on memory (prefill's chunks are in L2 already and skip this).
const PREFETCH_BYTES: usize = 4096;

/// The AVX2 kernels for `ty`, where there are some.
pub(crate) fn avx2_dot(ty: GgmlType) -> Option<RowDot> {
    Some(match ty {
        GgmlType::F32 => RowDot::Float(RowKernel::one(float::dot_f32)),
        GgmlType::F16 => RowDot::Float(RowKernel::one(float::dot_f16)),
        GgmlType::BF16 => RowDot::Float(RowKernel::one(float::dot_bf16)),
        GgmlType::Q4_0 => RowDot::Q8(RowKernel::four(legacy::dot_q4_0, legacy::dot_q4_0_x4)),
        GgmlType::Q4_1 => RowDot::Q8(RowKernel::four(legacy::dot_q4_1, legacy::dot_q4_1_x4)),
        GgmlType::Q5_0 => RowDot::Q8(RowKernel::four(legacy::dot_q5_0, legacy::dot_q5_0_x4)),
        GgmlType::Q5_1 => RowDot::Q8(RowKernel::four(legacy::dot_q5_1, legacy::dot_q5_1_x4)),
        GgmlType::Q8_0 => RowDot::Q8(RowKernel::four(legacy::dot_q8_0, legacy::dot_q8_0_x4)),
        GgmlType::Q4K => RowDot::Q8K(RowKernel::four(k_quants::dot_q4k, k_quants::dot_q4k_x4)),
        GgmlType::Q5K => RowDot::Q8K(RowKernel::four(k_quants::dot_q5k, k_quants::dot_q5k_x4)),
        GgmlType::Q6K => RowDot::Q8K(RowKernel::four(k_quants::dot_q6k, k_quants::dot_q6k_x4)),
        _ => return None,
    })
}

/// The AVX2 kernels for `ty` weights packed sixteen rows at a time, where there are some.
pub(crate) fn avx2_packed(ty: GgmlType) -> Option<GroupKernels> {
    use packed::*;
    Some(match ty {
        GgmlType::Q4K => GroupKernels::Q8K(Q4K_KERNELS),
        GgmlType::Q6K => GroupKernels::Q8K(Q6K_KERNELS),
        GgmlType::Q4_0 => GroupKernels::Q8(Q4_0_KERNELS),
        GgmlType::Q4_1 => GroupKernels::Q8(Q4_1_KERNELS),
        GgmlType::Q5_0 => GroupKernels::Q8(Q5_0_KERNELS),
        GgmlType::Q5_1 => GroupKernels::Q8(Q5_1_KERNELS),
        _ => return None,
    })
}

/// Sum of the eight lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn hsum_ps(v: __m256) -> f32 {
    hsum_ps128(_mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v)))
}

/// Sum of the four lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn hsum_ps128(v: __m128) -> f32 {
    let s = _mm_add_ps(v, _mm_movehl_ps(v, v));
    _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)))
}

/// Converts the two f16 halves of `pair` (low half first) to f32 lanes 0 and 1.
///
/// The halves travel through a general register, so the conversion starts from a zeroed vector
/// instead of merging into (and waiting on) whatever register the compiler last used.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn f16_pair(pair: u32) -> __m128 {
    _mm_cvtph_ps(_mm_cvtsi32_si128(pair as i32))
}

/// The little-endian f16 `lo, hi` in both of lanes 0 and 1.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn f16_twice(lo: u8, hi: u8) -> __m128 {
    let bits = u32::from(u16::from_le_bytes([lo, hi]));
    f16_pair(bits | (bits << 16))
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

/// The 6-bit scales and mins of the sixteen rows of a packed Q4_K block, one byte per row:
/// sub-block s's scales at `16 s`, its mins at `128 + 16 s` (the sixteen-row form of
/// `quant::k_high::k4_scales_mins`). Decoded from the rows' encoded bytes (`crate::packed`), two
/// of them (32 bytes) per operation: sub-blocks 0..4 keep theirs in the
/// low six bits of bytes `s` and `4 + s`; sub-blocks 4..8 take their low four bits from the
/// nibbles of byte `4 + s` and their top two from the top of bytes `s - 4` and `s`.
///
/// # Safety
/// `b` must hold a whole packed Q4_K block.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q4k_scales_mins(b: &[u8]) -> [u8; 256] {
    debug_assert!(b.len() >= crate::packed::Q4K_GROUP_BYTES);
    let (six_bits, low, top) = (_mm256_set1_epi8(0x3F), _mm256_set1_epi8(0x0F), _mm256_set1_epi8(0x30));
    let mut out = [0u8; 256];
    for pair in 0..2 {
        // Bytes 2 pair and 2 pair + 1 of every row (scales of sub-blocks 2 pair and 2 pair + 1),
        // then bytes 4 + 2 pair .. (their mins) and 8 + 2 pair .. (the nibbles of 4 + 2 pair ..).
        // SAFETY: the twelve encoded bytes of the sixteen rows are 192 bytes inside the block.
        let [scales, mins, nibbles] =
            [0, 4, 8].map(|j| unsafe { load32(b, crate::packed::Q4K_GROUP_SCALES + 16 * (j + 2 * pair)) });
        // 16-bit shifts, as x86 has no byte shift: the bits they carry across bytes are masked off.
        let (scales_top, mins_top) = (
            _mm256_and_si256(_mm256_srli_epi16::<2>(scales), top),
            _mm256_and_si256(_mm256_srli_epi16::<2>(mins), top),
        );
        let decoded = [
            (32 * pair, _mm256_and_si256(scales, six_bits)),
            (128 + 32 * pair, _mm256_and_si256(mins, six_bits)),
            (64 + 32 * pair, _mm256_or_si256(_mm256_and_si256(nibbles, low), scales_top)),
            (192 + 32 * pair, _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16::<4>(nibbles), low), mins_top)),
        ];
        for (at, v) in decoded {
            // SAFETY: `at + 32 <= 256`.
            unsafe { _mm256_storeu_si256(out.as_mut_ptr().add(at).cast(), v) };
        }
    }
    out
}

/// Loads 32 activation quants.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn load_i8x32(q: &[i8; 32]) -> __m256i {
    // SAFETY: the array is exactly 32 bytes.
    unsafe { _mm256_loadu_si256(q.as_ptr().cast()) }
}
