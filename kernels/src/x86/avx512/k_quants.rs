//! AVX-512 VNNI dot products for Q4_K, Q5_K and Q6_K against `Q8KBlock` activations.
//!
//! A zmm register holds 64 quants. For every K-quant that is a run of the block in the activations'
//! own order: Q4_K/Q5_K chunk `c` is its 32 low nibbles (sub-block 2c) then its 32 high nibbles
//! (sub-block 2c + 1), Q6_K quarters `2p` and `2p + 1` of a half. So 64 weights cost one `maddubs`
//! against one aligned activation load, and one `vpdpwssd` that multiplies the i16 pair sums by
//! their sub-block scale (spread over the lanes by `vpermw`) and accumulates into i32. Mins (Q4_K,
//! Q5_K) and the -32 offset (Q6_K) are applied once per block through the activations' sums.

// The tiles index their weight rows, activation rows and accumulators by the same (row, act)
// pair; iterators over three parallel arrays would hide the register blocking.
#![allow(clippy::needless_range_loop)]

use std::arch::x86_64::*;

use super::{f16_pair, load16, load32_twice, load64};
use crate::activation::Q8KBlock;
use crate::matmul::{DECODE_TILE, PAIR_TILE_W, PREFILL_TILE_A, PREFILL_TILE_W, TRIPLE_TILE_W};
use crate::quant::k_high::{Q4K_BYTES, Q5K_BYTES, Q6K_BYTES};

/// `acc` plus the pairwise products of the i16 lanes of `a` and `b`, as the one `vpdpwssd` it is.
///
/// Written as assembly because LLVM, tuning for a generic x86-64, splits `_mm512_dpwssd_epi32`
/// into `vpmaddwd` and `vpaddd`: one more uop per 64 weights on the two ports that run 512-bit
/// integer work, which is what bounds these kernels.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn dpwssd(acc: __m512i, a: __m512i, b: __m512i) -> __m512i {
    let mut acc = acc;
    // SAFETY: the instruction needs AVX512-VNNI, which this function's callers have; it only
    // reads and writes the named registers.
    unsafe {
        std::arch::asm!(
            "vpdpwssd {acc}, {a}, {b}",
            acc = inout(zmm_reg) acc,
            a = in(zmm_reg) a,
            b = in(zmm_reg) b,
            options(pure, nomem, nostack, preserves_flags),
        );
    }
    acc
}

/// `vpermw` indices that spread i16 scale `lo` over lanes 0..16 and scale `hi` over lanes 16..32.
const fn halves_index(lo: u16, hi: u16) -> [u16; 32] {
    let mut idx = [lo; 32];
    let mut i = 16;
    while i < 32 {
        idx[i] = hi;
        i += 1;
    }
    idx
}

/// Q4_K/Q5_K chunk `c`: scales 2c and 2c + 1.
const K4_SCALE_INDEX: [[u16; 32]; 4] = [halves_index(0, 1), halves_index(2, 3), halves_index(4, 5), halves_index(6, 7)];

/// Q6_K run `j` of 64 quants: 128-bit lane `l` (sixteen quants) takes scale `4j + l`.
const Q6K_SCALE_INDEX: [[u16; 32]; 4] = {
    let mut table = [[0u16; 32]; 4];
    let mut j = 0;
    while j < 4 {
        let mut i = 0;
        while i < 32 {
            table[j][i] = (4 * j + i / 8) as u16;
            i += 1;
        }
        j += 1;
    }
    table
};

/// Q5_K chunk `c`: the qh bit that is bit 4 of the low nibbles (bytes 0..32) and of the high ones.
const Q5K_HIGH_BIT: [[u8; 64]; 4] = {
    let mut table = [[0u8; 64]; 4];
    let mut c = 0;
    while c < 4 {
        let mut i = 0;
        while i < 64 {
            table[c][i] = 1 << (2 * c + i / 32);
            i += 1;
        }
        c += 1;
    }
    table
};

#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn table_zmm<T>(t: &[T]) -> __m512i {
    debug_assert!(size_of_val(t) == 64);
    // SAFETY: every table row passed here is 64 bytes.
    unsafe { _mm512_loadu_si512(t.as_ptr().cast()) }
}

/// The activation quants `64c..64c + 64`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn act64(a: &Q8KBlock, c: usize) -> __m512i {
    match a.qs.get(64 * c..).and_then(|q| q.first_chunk::<64>()) {
        // SAFETY: the chunk is 64 bytes.
        Some(q) => unsafe { _mm512_loadu_si512(q.as_ptr().cast()) },
        None => _mm512_setzero_si512(),
    }
}

/// `w` shortened to the blocks every row and activation row has, as arrays of blocks.
#[inline(always)]
fn common_blocks<'a, 'b, const BYTES: usize, const NR: usize, const MR: usize>(
    w: [&'a [u8]; NR],
    acts: [&'b [Q8KBlock]; MR],
) -> ([&'a [[u8; BYTES]]; NR], [&'b [Q8KBlock]; MR]) {
    let blocks = w.map(|r| r.as_chunks::<BYTES>().0);
    let count = blocks.iter().map(|b| b.len()).chain(acts.iter().map(|a| a.len())).min().unwrap_or(0);
    (blocks.map(|b| &b[..count]), acts.map(|a| &a[..count]))
}

/// How far ahead of a block to prefetch: the same block of the next tile's rows, which follow
/// this tile's rows in memory (`NR` rows of the distance between the first two), or for one row,
/// `PREFETCH_BYTES` ahead.
#[inline(always)]
fn prefetch_distance<const BYTES: usize, const NR: usize>(blocks: &[&[[u8; BYTES]]; NR]) -> usize {
    match blocks.as_slice() {
        [first, second, ..] => (second.as_ptr() as usize).wrapping_sub(first.as_ptr() as usize).wrapping_mul(NR),
        _ => PREFETCH_BYTES,
    }
}

const PREFETCH_BYTES: usize = 2048;

/// Asks for the cache lines of the block `ahead` bytes after `b`, which a later tile will read.
#[inline(always)]
fn prefetch_block<const BYTES: usize>(b: &[u8; BYTES], ahead: usize) {
    let p = b.as_ptr().wrapping_add(ahead);
    let mut line = 0;
    while line < BYTES {
        // SAFETY: prefetching is a hint; it never faults, whatever the address.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(line).cast()) };
        line += 64;
    }
}

/// d and dmin in f32 lanes 0 and 1, and the eight 6-bit scales then the eight 6-bit mins as bytes,
/// from the first 16 bytes of a Q4_K/Q5_K block (the vector form of `k4_scales_mins`).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn k4_header(b: &[u8]) -> (__m128, __m128i) {
    // SAFETY: a block has at least 144 bytes.
    let x = unsafe { load16(b, 0) };
    // 32-bit words: x = [d|dmin, a0, a1, a2]. Scales 0..4 = a0 & 0x3f, mins 0..4 = a1 & 0x3f; scales
    // 4..8 = (a2 & 0x0f) | top two bits of a0 bytes << 4; mins 4..8 = (a2 >> 4) | top bits of a1.
    let low_src = _mm_shuffle_epi32::<0b11_10_11_01>(x);
    let low = _mm_and_si128(
        _mm_srlv_epi32(low_src, _mm_setr_epi32(0, 0, 0, 4)),
        _mm_setr_epi32(0x3f3f_3f3f, 0x0f0f_0f0f, 0x3f3f_3f3f, 0x0f0f_0f0f),
    );
    let high_src = _mm_shuffle_epi32::<0b10_10_01_01>(x);
    let high = _mm_and_si128(_mm_srli_epi32::<2>(high_src), _mm_setr_epi32(0, 0x3030_3030, 0, 0x3030_3030));
    (_mm_cvtph_ps(x), _mm_or_si128(low, high))
}

/// Q4_K (`FIVE` false) or Q5_K (`FIVE` true): `NR` weight rows against `MR` activation rows.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn k4_tile<const NR: usize, const MR: usize, const BYTES: usize, const FIVE: bool>(
    w: [&[u8]; NR],
    acts: [&[Q8KBlock]; MR],
) -> [[f32; NR]; MR] {
    let (blocks, acts) = common_blocks::<BYTES, NR, MR>(w, acts);
    let count = acts.first().map_or(0, |a| a.len());
    let low = _mm512_set1_epi8(0x0F);
    let qs_at = if FIVE { 48 } else { 16 };
    let mut acc = [[_mm512_setzero_ps(); NR]; MR];
    let ahead = prefetch_distance(&blocks);
    for i in 0..count {
        for r in 0..NR {
            prefetch_block::<BYTES>(&blocks[r][i], ahead);
        }
        let mut header = [(_mm_setzero_ps(), _mm_setzero_si128()); NR];
        let mut scales = [_mm512_setzero_si512(); NR];
        for r in 0..NR {
            header[r] = k4_header(&blocks[r][i]);
            scales[r] = _mm512_zextsi256_si512(_mm256_cvtepu8_epi16(header[r].1));
        }
        let mut sums = [[_mm512_setzero_si512(); NR]; MR];
        for c in 0..4 {
            let scale_index = table_zmm(&K4_SCALE_INDEX[c]);
            for r in 0..NR {
                let b = &blocks[r][i];
                // SAFETY: chunk c's quants are bytes qs_at + 32c .. qs_at + 32c + 32 of the block.
                let bits = unsafe { load32_twice(b, qs_at + 32 * c) };
                let mut q = _mm512_and_si512(_mm512_mask_srli_epi16::<4>(bits, 0xFFFF_0000, bits), low);
                if FIVE {
                    // SAFETY: qh is bytes 16..48 of a 176-byte Q5_K block.
                    let qh = unsafe { load32_twice(b, 16) };
                    let set = _mm512_test_epi8_mask(qh, table_zmm(&Q5K_HIGH_BIT[c]));
                    q = _mm512_mask_add_epi8(q, set, q, _mm512_set1_epi8(0x10));
                }
                let scale = _mm512_permutexvar_epi16(scale_index, scales[r]);
                for a in 0..MR {
                    let products = _mm512_maddubs_epi16(q, act64(&acts[a][i], c));
                    sums[a][r] = dpwssd(sums[a][r], products, scale);
                }
            }
        }
        for r in 0..NR {
            let (d_dmin, packed) = header[r];
            let d = _mm512_broadcastss_ps(d_dmin);
            let mins = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128::<8>(packed)));
            let weighted_mins = _mm256_mul_ps(_mm256_broadcastss_ps(_mm_movehdup_ps(d_dmin)), mins);
            let weighted_mins = _mm512_zextps256_ps512(weighted_mins);
            for a in 0..MR {
                let act = &acts[a][i];
                let scale = _mm512_mul_ps(d, _mm512_set1_ps(act.d));
                let with_quants = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sums[a][r]), scale, acc[a][r]);
                // SAFETY: scaled_sums_32 is 8 floats.
                let act_sums = _mm512_zextps256_ps512(unsafe { _mm256_loadu_ps(act.scaled_sums_32.as_ptr()) });
                acc[a][r] = _mm512_fnmadd_ps(weighted_mins, act_sums, with_quants);
            }
        }
    }
    reduce(acc)
}

/// Q6_K: `NR` weight rows against `MR` activation rows.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn q6k_tile<const NR: usize, const MR: usize>(w: [&[u8]; NR], acts: [&[Q8KBlock]; MR]) -> [[f32; NR]; MR] {
    let (blocks, acts) = common_blocks::<Q6K_BYTES, NR, MR>(w, acts);
    let count = acts.first().map_or(0, |a| a.len());
    let low = _mm512_set1_epi8(0x0F);
    let top_pair = _mm512_set1_epi8(0x30);
    // Quarters 0 and 1 take qh bits 0-1 and 2-3 up to bits 4-5; quarters 2 and 3 take bits 4-5 and 6-7.
    let up = _mm512_inserti64x4::<1>(_mm512_set1_epi16(4), _mm256_set1_epi16(2));
    let down = _mm512_inserti64x4::<1>(_mm512_setzero_si512(), _mm256_set1_epi16(2));
    let mut acc = [[_mm512_setzero_ps(); NR]; MR];
    let ahead = prefetch_distance(&blocks);
    for i in 0..count {
        let mut sums = [[_mm512_setzero_si512(); NR]; MR];
        for r in 0..NR {
            let b = &blocks[r][i];
            prefetch_block::<Q6K_BYTES>(b, ahead);
            // SAFETY: the block has 210 bytes; the i8 scales are bytes 192..208.
            let scales16 = _mm256_cvtepi8_epi16(unsafe { load16(b, 192) });
            let scales = _mm512_zextsi256_si512(scales16);
            // The -32 offset of every quant, as -32 * scale against the activations' sixteen-sums.
            let offsets =
                _mm512_zextsi256_si512(_mm256_sub_epi16(_mm256_setzero_si256(), _mm256_slli_epi16::<5>(scales16)));
            for n in 0..2 {
                // SAFETY: ql is bytes 0..128 and qh bytes 128..192 of the block.
                let (ql, qh) = unsafe { (load64(b, 64 * n), load32_twice(b, 128 + 32 * n)) };
                let high01 = _mm512_and_si512(_mm512_sllv_epi16(qh, up), top_pair);
                let high23 = _mm512_and_si512(_mm512_srlv_epi16(qh, down), top_pair);
                // (a & 0x0F) | b, one ternary-logic instruction.
                let quarters = [
                    _mm512_ternarylogic_epi32::<0xEC>(ql, high01, low),
                    _mm512_ternarylogic_epi32::<0xEC>(_mm512_srli_epi16::<4>(ql), high23, low),
                ];
                for (p, q) in quarters.into_iter().enumerate() {
                    let run = 2 * n + p;
                    let scale = _mm512_permutexvar_epi16(table_zmm(&Q6K_SCALE_INDEX[run]), scales);
                    for a in 0..MR {
                        let products = _mm512_maddubs_epi16(q, act64(&acts[a][i], run));
                        sums[a][r] = dpwssd(sums[a][r], products, scale);
                    }
                }
            }
            for a in 0..MR {
                // SAFETY: bsums is 16 i16, 32 bytes.
                let bsums = unsafe { _mm256_loadu_si256(acts[a][i].bsums.as_ptr().cast()) };
                sums[a][r] = dpwssd(sums[a][r], _mm512_zextsi256_si512(bsums), offsets);
            }
        }
        for r in 0..NR {
            let b = &blocks[r][i];
            let d = _mm512_broadcastss_ps(f16_pair(&[b[208], b[209], 0, 0]));
            for a in 0..MR {
                let scale = _mm512_mul_ps(d, _mm512_set1_ps(acts[a][i].d));
                acc[a][r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sums[a][r]), scale, acc[a][r]);
            }
        }
    }
    reduce(acc)
}

/// The lane sums of every accumulator.
///
/// Loops, not `array::map` with a closure: with many tile shapes the closure stops being inlined and
/// every call passes its zmm argument through memory.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn reduce<const NR: usize, const MR: usize>(acc: [[__m512; NR]; MR]) -> [[f32; NR]; MR] {
    let mut out = [[0f32; NR]; MR];
    for a in 0..MR {
        for r in 0..NR {
            out[a][r] = _mm512_reduce_add_ps(acc[a][r]);
        }
    }
    out
}

/// Defines the one-row, decode-tile and prefill-tile kernels of a format from its tile function and
/// that function's format parameters.
macro_rules! k_kernels {
    ($one:ident, $decode:ident, $prefill:ident, $pair:ident, $triple:ident, $tile:ident $(, $format:expr)*) => {
        #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
        pub(super) fn $one(w: &[u8], act: &[Q8KBlock]) -> f32 {
            let [[y]] = $tile::<1, 1 $(, $format)*>([w], [act]);
            y
        }

        #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
        pub(super) fn $decode(w: [&[u8]; DECODE_TILE], act: [&[Q8KBlock]; 1]) -> [[f32; DECODE_TILE]; 1] {
            $tile::<DECODE_TILE, 1 $(, $format)*>(w, act)
        }

        #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
        pub(super) fn $prefill(
            w: [&[u8]; PREFILL_TILE_W],
            acts: [&[Q8KBlock]; PREFILL_TILE_A],
        ) -> [[f32; PREFILL_TILE_W]; PREFILL_TILE_A] {
            $tile::<PREFILL_TILE_W, PREFILL_TILE_A $(, $format)*>(w, acts)
        }

        #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
        pub(super) fn $pair(w: [&[u8]; PAIR_TILE_W], acts: [&[Q8KBlock]; 2]) -> [[f32; PAIR_TILE_W]; 2] {
            $tile::<PAIR_TILE_W, 2 $(, $format)*>(w, acts)
        }

        #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
        pub(super) fn $triple(w: [&[u8]; TRIPLE_TILE_W], acts: [&[Q8KBlock]; 3]) -> [[f32; TRIPLE_TILE_W]; 3] {
            $tile::<TRIPLE_TILE_W, 3 $(, $format)*>(w, acts)
        }
    };
}

k_kernels!(dot_q4k, tile_q4k_decode, tile_q4k_prefill, tile_q4k_pair, tile_q4k_triple, k4_tile, Q4K_BYTES, false);
k_kernels!(dot_q5k, tile_q5k_decode, tile_q5k_prefill, tile_q5k_pair, tile_q5k_triple, k4_tile, Q5K_BYTES, true);
k_kernels!(dot_q6k, tile_q6k_decode, tile_q6k_prefill, tile_q6k_pair, tile_q6k_triple, q6k_tile);
