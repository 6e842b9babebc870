//! AVX-512 kernels (F, BW, VL and VNNI) for x86-64, reached only through a `SimdPath::Avx512`.
//!
//! Every format has a one-row kernel and register-blocked tiles: `DECODE_TILE` weight rows
//! against one activation row (independent accumulators, so several weight streams are in flight
//! while a token is generated) and `PREFILL_TILE_W` weight rows against `PREFILL_TILE_A` activation
//! rows (each weight block unpacked once for all of them), plus tiles for two and three activation
//! rows, the shapes of a few sequences decoding in one batch. The integer products use VNNI:
//! `vpdpbusd` for the 32-element formats, `vpmaddubsw` followed by `vpdpwssd` (which multiplies the
//! pair sums by the sub-block scales and accumulates in one instruction) for the K-quants.

mod k_quants;
mod legacy;
mod packed;

use std::arch::x86_64::*;

use crate::GgmlType;
use crate::matmul::{RowDot, RowKernel, Tiles};
use crate::packed::GroupKernels;

/// The kernels for `ty` weights packed sixteen rows at a time, where there are some.
pub(crate) fn avx512_packed(ty: GgmlType) -> Option<GroupKernels> {
    use packed::*;
    Some(match ty {
        GgmlType::Q4K => GroupKernels::Q8K(Q4K_KERNELS),
        GgmlType::Q6K if crate::cpu::intel() => GroupKernels::Q8K(Q6K_INTEL_KERNELS),
        GgmlType::Q6K => GroupKernels::Q8K(Q6K_KERNELS),
        GgmlType::Q4_0 => GroupKernels::Q8(Q4_0_KERNELS),
        GgmlType::Q4_1 => GroupKernels::Q8(Q4_1_KERNELS),
        GgmlType::Q5_0 => GroupKernels::Q8(Q5_0_KERNELS),
        GgmlType::Q5_1 => GroupKernels::Q8(Q5_1_KERNELS),
        GgmlType::Q8_0 => GroupKernels::Q8(Q8_0_KERNELS),
        _ => return None,
    })
}

/// The AVX-512 kernels for `ty`, where there are some.
pub(crate) fn avx512_dot(ty: GgmlType) -> Option<RowDot> {
    macro_rules! tiled {
        ($form:ident, $module:ident, $one:ident, $decode:ident, $prefill:ident, $pair:ident, $triple:ident) => {
            RowDot::$form(RowKernel::tiled(
                $module::$one,
                Tiles {
                    decode: $module::$decode,
                    prefill: $module::$prefill,
                    pair: $module::$pair,
                    triple: $module::$triple,
                },
            ))
        };
    }
    Some(match ty {
        GgmlType::Q4_0 => {
            tiled!(Q8, legacy, dot_q4_0, tile_q4_0_decode, tile_q4_0_prefill, tile_q4_0_pair, tile_q4_0_triple)
        }
        GgmlType::Q4_1 => {
            tiled!(Q8, legacy, dot_q4_1, tile_q4_1_decode, tile_q4_1_prefill, tile_q4_1_pair, tile_q4_1_triple)
        }
        GgmlType::Q5_0 => {
            tiled!(Q8, legacy, dot_q5_0, tile_q5_0_decode, tile_q5_0_prefill, tile_q5_0_pair, tile_q5_0_triple)
        }
        GgmlType::Q5_1 => {
            tiled!(Q8, legacy, dot_q5_1, tile_q5_1_decode, tile_q5_1_prefill, tile_q5_1_pair, tile_q5_1_triple)
        }
        GgmlType::Q8_0 => {
            tiled!(Q8, legacy, dot_q8_0, tile_q8_0_decode, tile_q8_0_prefill, tile_q8_0_pair, tile_q8_0_triple)
        }
        GgmlType::Q4K => {
            tiled!(Q8K, k_quants, dot_q4k, tile_q4k_decode, tile_q4k_prefill, tile_q4k_pair, tile_q4k_triple)
        }
        GgmlType::Q5K => {
            tiled!(Q8K, k_quants, dot_q5k, tile_q5k_decode, tile_q5k_prefill, tile_q5k_pair, tile_q5k_triple)
        }
        GgmlType::Q6K => {
            tiled!(Q8K, k_quants, dot_q6k, tile_q6k_decode, tile_q6k_prefill, tile_q6k_pair, tile_q6k_triple)
        }
        _ => return None,
    })
}

/// Loads 64 bytes starting at `p[at]`.
///
/// # Safety
/// `p` must have at least `at + 64` bytes; callers pass block arrays with constant offsets.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
unsafe fn load64(p: &[u8], at: usize) -> __m512i {
    debug_assert!(at + 64 <= p.len());
    // SAFETY: in bounds by this function's contract; loadu has no alignment requirement.
    unsafe { _mm512_loadu_si512(p.as_ptr().add(at).cast()) }
}

/// The 32 bytes at `p[at]` in both halves of a zmm register.
///
/// # Safety
/// `p` must have at least `at + 32` bytes.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
unsafe fn load32_twice(p: &[u8], at: usize) -> __m512i {
    debug_assert!(at + 32 <= p.len());
    // SAFETY: in bounds by this function's contract.
    _mm512_broadcast_i64x4(unsafe { _mm256_loadu_si256(p.as_ptr().add(at).cast()) })
}

/// Loads 32 bytes starting at `p[at]`.
///
/// # Safety
/// `p` must have at least `at + 32` bytes.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
unsafe fn load32(p: &[u8], at: usize) -> __m256i {
    debug_assert!(at + 32 <= p.len());
    // SAFETY: in bounds by this function's contract.
    unsafe { _mm256_loadu_si256(p.as_ptr().add(at).cast()) }
}

/// The 16 bytes at `p[at]` in both halves of a ymm register.
///
/// # Safety
/// `p` must have at least `at + 16` bytes.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
unsafe fn load16_twice(p: &[u8], at: usize) -> __m256i {
    debug_assert!(at + 16 <= p.len());
    // SAFETY: in bounds by this function's contract.
    _mm256_broadcastsi128_si256(unsafe { _mm_loadu_si128(p.as_ptr().add(at).cast()) })
}

/// Loads 16 bytes starting at `p[at]`.
///
/// # Safety
/// `p` must have at least `at + 16` bytes.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
unsafe fn load16(p: &[u8], at: usize) -> __m128i {
    debug_assert!(at + 16 <= p.len());
    // SAFETY: in bounds by this function's contract.
    unsafe { _mm_loadu_si128(p.as_ptr().add(at).cast()) }
}

/// The little-endian f16 pair at the start of `b` as f32 lanes 0 and 1.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn f16_pair(b: &[u8; 4]) -> __m128 {
    _mm_cvtph_ps(_mm_cvtsi32_si128(i32::from_le_bytes(*b)))
}

/// Sum of the eight lanes.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn hsum256(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)))
}
