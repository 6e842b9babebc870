//! AVX-512 VNNI dot products for the 32-element formats against `Q8Block` activations.
//!
//! One block is one ymm register of unsigned quants, multiplied with the activations by a single
//! `vpdpbusd`. Signed Q8_0 quants are made unsigned by flipping their top bit (adding 128), so every
//! format is "unsigned quants, then a per-block offset": -8 (Q4_0), -16 (Q5_0), -128 (Q8_0) times
//! the weight scale, or the block minimum (Q4_1, Q5_1). The offset multiplies the activations' sum
//! and is accumulated apart, in one f32 lane.

// The tiles index their weight rows, activation rows and accumulators by the same (row, act)
// pair; iterators over three parallel arrays would hide the register blocking.
#![allow(clippy::needless_range_loop)]

use std::arch::x86_64::*;

use super::{f16_pair, hsum256, load16_twice, load32};
use crate::activation::Q8Block;
use crate::matmul::{DECODE_TILE, PAIR_TILE_W, PREFILL_TILE_A, PREFILL_TILE_W, TRIPLE_TILE_W};
use crate::quant::legacy::{Q4_0_BYTES, Q4_1_BYTES, Q5_0_BYTES, Q5_1_BYTES, Q8_0_BYTES};

/// A block unpacked: 32 unsigned quants in element order, the weight scale in lane 0 and the factor
/// of the activations' sum in lane 1.
type Unpacked = (__m256i, __m128);

/// The 32 nibbles of the 16 bytes at `p[at]` as bytes in element order.
///
/// # Safety
/// `p` must have at least `at + 16` bytes.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
unsafe fn nibbles(p: &[u8], at: usize) -> __m256i {
    // SAFETY: forwarded contract.
    let both = unsafe { load16_twice(p, at) };
    _mm256_and_si256(_mm256_mask_srli_epi16::<4>(both, 0xFF00, both), _mm256_set1_epi8(0x0F))
}

/// `q` with 16 added to every byte whose bit is set in the little-endian `qh`: the fifth bit.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn with_fifth_bits(q: __m256i, qh: [u8; 4]) -> __m256i {
    _mm256_mask_add_epi8(q, u32::from_le_bytes(qh), q, _mm256_set1_epi8(0x10))
}

/// The scale in lane 0 and `offset` times it in lane 1, from the f16 at the start of a block.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn scale_and_offset(b: &[u8], offset: f32) -> __m128 {
    _mm_mul_ps(f16_pair(&[b[0], b[1], b[0], b[1]]), _mm_setr_ps(1.0, offset, 0.0, 0.0))
}

/// Dots `NR` weight rows of the format `unpack` reads with `MR` activation rows.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn tile<const NR: usize, const MR: usize, const BYTES: usize>(
    w: [&[u8]; NR],
    acts: [&[Q8Block]; MR],
    unpack: impl Fn(&[u8; BYTES]) -> Unpacked,
) -> [[f32; NR]; MR] {
    let blocks = w.map(|r| r.as_chunks::<BYTES>().0);
    let count = blocks.iter().map(|b| b.len()).chain(acts.iter().map(|a| a.len())).min().unwrap_or(0);
    let (blocks, acts) = (blocks.map(|b| &b[..count]), acts.map(|a| &a[..count]));
    let mut acc = [[_mm256_setzero_ps(); NR]; MR];
    let mut offsets = [[_mm_setzero_ps(); NR]; MR];
    for i in 0..count {
        for r in 0..NR {
            let (q, scales) = unpack(&blocks[r][i]);
            let d = _mm256_broadcastss_ps(scales);
            let factor = _mm_movehdup_ps(scales);
            for a in 0..MR {
                let act = &acts[a][i];
                // SAFETY: qs is 32 bytes.
                let y = unsafe { _mm256_loadu_si256(act.qs.as_ptr().cast()) };
                let sum = _mm256_dpbusd_epi32(_mm256_setzero_si256(), q, y);
                let scale = _mm256_mul_ps(d, _mm256_set1_ps(act.d));
                acc[a][r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum), scale, acc[a][r]);
                offsets[a][r] = _mm_fmadd_ss(factor, _mm_set_ss(act.sum), offsets[a][r]);
            }
        }
    }
    let mut out = [[0f32; NR]; MR];
    for a in 0..MR {
        for r in 0..NR {
            out[a][r] = hsum256(acc[a][r]) + _mm_cvtss_f32(offsets[a][r]);
        }
    }
    out
}

/// Defines the one-row, decode-tile and prefill-tile kernels of a format from its block unpacking.
macro_rules! legacy_kernels {
    ($one:ident, $decode:ident, $prefill:ident, $pair:ident, $triple:ident, $bytes:expr, |$b:ident| $unpack:expr) => {
        #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
        pub(super) fn $one(w: &[u8], act: &[Q8Block]) -> f32 {
            let [[y]] = tile::<1, 1, $bytes>([w], [act], |$b: &[u8; $bytes]| $unpack);
            y
        }

        #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
        pub(super) fn $decode(w: [&[u8]; DECODE_TILE], act: [&[Q8Block]; 1]) -> [[f32; DECODE_TILE]; 1] {
            tile::<DECODE_TILE, 1, $bytes>(w, act, |$b: &[u8; $bytes]| $unpack)
        }

        #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
        pub(super) fn $prefill(
            w: [&[u8]; PREFILL_TILE_W],
            acts: [&[Q8Block]; PREFILL_TILE_A],
        ) -> [[f32; PREFILL_TILE_W]; PREFILL_TILE_A] {
            tile::<PREFILL_TILE_W, PREFILL_TILE_A, $bytes>(w, acts, |$b: &[u8; $bytes]| $unpack)
        }

        #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
        pub(super) fn $pair(w: [&[u8]; PAIR_TILE_W], acts: [&[Q8Block]; 2]) -> [[f32; PAIR_TILE_W]; 2] {
            tile::<PAIR_TILE_W, 2, $bytes>(w, acts, |$b: &[u8; $bytes]| $unpack)
        }

        #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
        pub(super) fn $triple(w: [&[u8]; TRIPLE_TILE_W], acts: [&[Q8Block]; 3]) -> [[f32; TRIPLE_TILE_W]; 3] {
            tile::<TRIPLE_TILE_W, 3, $bytes>(w, acts, |$b: &[u8; $bytes]| $unpack)
        }
    };
}

// SAFETY (all unpacking below): each block array has the format's size; the quants start at the
// offset read and end at the block's end.
legacy_kernels!(dot_q4_0, tile_q4_0_decode, tile_q4_0_prefill, tile_q4_0_pair, tile_q4_0_triple, Q4_0_BYTES, |b| {
    (unsafe { nibbles(b, 2) }, scale_and_offset(b, -8.0))
});
legacy_kernels!(dot_q4_1, tile_q4_1_decode, tile_q4_1_prefill, tile_q4_1_pair, tile_q4_1_triple, Q4_1_BYTES, |b| {
    (unsafe { nibbles(b, 4) }, f16_pair(&[b[0], b[1], b[2], b[3]]))
});
legacy_kernels!(dot_q5_0, tile_q5_0_decode, tile_q5_0_prefill, tile_q5_0_pair, tile_q5_0_triple, Q5_0_BYTES, |b| {
    let q = with_fifth_bits(unsafe { nibbles(b, 6) }, [b[2], b[3], b[4], b[5]]);
    (q, scale_and_offset(b, -16.0))
});
legacy_kernels!(dot_q5_1, tile_q5_1_decode, tile_q5_1_prefill, tile_q5_1_pair, tile_q5_1_triple, Q5_1_BYTES, |b| {
    let q = with_fifth_bits(unsafe { nibbles(b, 8) }, [b[4], b[5], b[6], b[7]]);
    (q, f16_pair(&[b[0], b[1], b[2], b[3]]))
});
legacy_kernels!(dot_q8_0, tile_q8_0_decode, tile_q8_0_prefill, tile_q8_0_pair, tile_q8_0_triple, Q8_0_BYTES, |b| {
    let q = _mm256_xor_si256(unsafe { load32(b, 2) }, _mm256_set1_epi8(i8::MIN));
    (q, scale_and_offset(b, -128.0))
});
