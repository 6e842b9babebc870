//! AVX2 kernels for Q4_K, Q6_K and the nibble formats (Q4_0, Q4_1, Q5_0, Q5_1), packed sixteen
//! rows at a time (`crate::packed`).
//!
//! The layout is the one the AVX-512 kernels read. A 64-byte run holds four quant bytes of each of
//! the sixteen rows, so its 32-byte halves are rows 0..8 and 8..16, one row per i32 lane. `maddubs`
//! multiplies a half by four activation quants broadcast to every lane, leaving each row's products
//! in two i16 lanes. Those add up in i16 over a sub-block (at most 8 * 2 * 15 * 127 for Q4_K and
//! 2 * 2 * 63 * 127 for Q6_K, both inside i16), and one `madd` with the rows' scales spread as i16
//! pairs widens them to i32 with the scales applied. The Q4_K mins and the Q6_K offset are integer
//! too (a `madd` of two sub-blocks' values, interleaved per row, with the activations' sums), so a
//! block reaches floating point once per row, in the multiply by the row's `d`.

// The kernels index activation rows and their accumulators by the same position; iterators over
// parallel arrays would hide the register blocking.
#![allow(clippy::needless_range_loop)]

use std::arch::x86_64::*;

use super::{PREFETCH_BYTES, load16, load32, q4k_scales_mins};
use crate::activation::{Q8Block, Q8KBlock};
use crate::packed::{
    GROUP_ROWS, Q4K_GROUP_BYTES, Q4K_GROUP_DMIN, Q4K_GROUP_QS, Q6K_GROUP_BYTES, Q6K_GROUP_QH, Q6K_GROUP_QL,
    Q6K_GROUP_SCALES, nibble_group_bytes, nibble_group_qh, nibble_group_qs,
};

/// Rows in one half of a run (one ymm register).
const HALF_ROWS: usize = GROUP_ROWS / 2;

/// Prefetches the cache line `line` of the block `PREFETCH_BYTES` after `block`. Only for one
/// activation row (decode): with more, a chunk is read in several passes from L2.
#[inline(always)]
fn prefetch_line<const BYTES: usize, const MR: usize>(block: &[u8; BYTES], line: usize) {
    if MR == 1 {
        let at = block.as_ptr().wrapping_add(PREFETCH_BYTES + 64 * line);
        // SAFETY: prefetching is a hint; it never faults, whatever the address.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(at.cast()) };
    }
}

/// `pshufb` controls spreading the scale bytes of rows `8 half .. 8 half + 8` (a broadcast
/// 16-byte row of scales) so that row r's scale fills i16 lanes 2r and 2r + 1. `SIGNED` puts the
/// byte in the high half of each i16, for an arithmetic shift to sign-extend; otherwise it lands
/// in the low half with a zero above.
const fn scale_spread<const SIGNED: bool>() -> [[u8; 32]; 2] {
    let mut table = [[0x80u8; 32]; 2];
    let mut half = 0;
    while half < 2 {
        let mut lane = 0;
        while lane < 16 {
            let row = (8 * half + lane / 2) as u8;
            let at = 2 * lane + if SIGNED { 1 } else { 0 };
            table[half][at] = row;
            lane += 1;
        }
        half += 1;
    }
    table
}

const SPREAD_UNSIGNED: [[u8; 32]; 2] = scale_spread::<false>();
const SPREAD_SIGNED: [[u8; 32]; 2] = scale_spread::<true>();

/// The 32 bytes of a `pshufb` control table entry.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn control(table: &[u8; 32]) -> __m256i {
    // SAFETY: the array is 32 bytes.
    unsafe { _mm256_loadu_si256(table.as_ptr().cast()) }
}

/// The sixteen bytes at `b[at..at + 16]` in both 128-bit lanes.
///
/// # Safety
/// `at + 16 <= b.len()`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn broadcast16(b: &[u8], at: usize) -> __m256i {
    // SAFETY: forwarded contract.
    _mm256_broadcastsi128_si256(unsafe { load16(b, at) })
}

/// The four activation quants `qs[at..at + 4]` in every i32 lane.
///
/// # Safety
/// `at + 4 <= qs.len()`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn act4(qs: &[i8], at: usize) -> __m256i {
    debug_assert!(at + 4 <= qs.len());
    // SAFETY: in bounds by this function's contract; the read has no alignment requirement.
    _mm256_set1_epi32(unsafe { qs.as_ptr().add(at).cast::<i32>().read_unaligned() })
}

/// The eight f16 of rows `8 half ..+8` starting at `at` as f32 lanes.
///
/// # Safety
/// `at + 32 <= b.len()`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn f16x8(b: &[u8], at: usize, half: usize) -> __m256 {
    // SAFETY: forwarded contract; the half's eight values are the 16 bytes at `at + 16 half`.
    _mm256_cvtph_ps(unsafe { load16(b, at + 16 * half) })
}

/// The i16 pair `lo, hi` in every i32 lane, the activation side of a `madd` over two sub-blocks.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn pair16(lo: i16, hi: i16) -> __m256i {
    _mm256_set1_epi32(i32::from(lo as u16) | (i32::from(hi as u16) << 16))
}

/// Rows `8 half ..+8` of two sub-blocks' bytes (16-byte rows at `at` and `at + 16`) interleaved
/// as i16 pairs per row, zero- (`SIGNED` false) or sign-extended.
///
/// # Safety
/// `at + 32 <= b.len()`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn interleaved<const SIGNED: bool>(b: &[u8], at: usize, half: usize) -> __m256i {
    // SAFETY: forwarded contract.
    let (first, second) = unsafe { (load16(b, at), load16(b, at + 16)) };
    let pairs = if half == 0 { _mm_unpacklo_epi8(first, second) } else { _mm_unpackhi_epi8(first, second) };
    if SIGNED { _mm256_cvtepi8_epi16(pairs) } else { _mm256_cvtepu8_epi16(pairs) }
}

/// One group of sixteen packed Q4_K rows against `MR` activation rows: `out[a][r]` is activation
/// row `a` with weight row `r` of the group.
///
/// With one or two activation rows both halves of a run go through one pass, so each activation
/// broadcast serves sixteen rows instead of eight (a tenth fewer instructions in the inner loop);
/// with more, their accumulators would not fit the sixteen registers, and each half
/// takes a pass of its own.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn q4k_group<const MR: usize>(group: &[u8], acts: [&[Q8KBlock]; MR]) -> [[f32; GROUP_ROWS]; MR] {
    let blocks = group.as_chunks::<Q4K_GROUP_BYTES>().0;
    let count = acts.iter().map(|a| a.len()).fold(blocks.len(), usize::min);
    let low = _mm256_set1_epi8(0x0F);
    // Halves per pass; constant once inlined, so the unused halves of the arrays below vanish.
    let per_pass = if MR <= 2 { 2 } else { 1 };
    let mut acc = [[_mm256_setzero_ps(); 2]; MR];
    for i in 0..count {
        let b = &blocks[i];
        // Each activation row's sums over the eight sub-blocks of 32, as i16 pairs for the mins.
        let mut act_pairs = [[_mm256_setzero_si256(); 4]; MR];
        for a in 0..MR {
            let s = &acts[a][i].bsums;
            for p in 0..4 {
                act_pairs[a][p] = pair16(s[4 * p] + s[4 * p + 1], s[4 * p + 2] + s[4 * p + 3]);
            }
        }
        // SAFETY: `b` is a whole packed Q4_K block.
        let scales_mins = unsafe { q4k_scales_mins(b) };
        for pass in 0..2 / per_pass {
            let mut dots = [[_mm256_setzero_si256(); 2]; MR];
            for c in 0..4 {
                // Sub-block 2c is in the low nibbles, 2c + 1 in the high ones.
                let mut sums = [[[_mm256_setzero_si256(); 2]; 2]; MR];
                for t in 0..8 {
                    if pass == 0 {
                        prefetch_line::<_, MR>(b, 8 * c + t);
                    }
                    let mut x = [[_mm256_setzero_si256(); 2]; MR];
                    for a in 0..MR {
                        let qs = &acts[a][i].qs;
                        // SAFETY (act4): the offsets are below 64 * 3 + 32 + 4 * 7 + 4 = 256.
                        x[a] = unsafe { [act4(qs, 64 * c + 4 * t), act4(qs, 64 * c + 32 + 4 * t)] };
                    }
                    for h in 0..per_pass {
                        let half = pass * per_pass + h;
                        // SAFETY: the offset is a constant inside the block.
                        let packed = unsafe { load32(b, Q4K_GROUP_QS + (8 * c + t) * 64 + 32 * half) };
                        let lo = _mm256_and_si256(packed, low);
                        let hi = _mm256_and_si256(_mm256_srli_epi16::<4>(packed), low);
                        for a in 0..MR {
                            sums[a][h][0] = _mm256_add_epi16(sums[a][h][0], _mm256_maddubs_epi16(lo, x[a][0]));
                            sums[a][h][1] = _mm256_add_epi16(sums[a][h][1], _mm256_maddubs_epi16(hi, x[a][1]));
                        }
                    }
                }
                for h in 0..per_pass {
                    let spread = control(&SPREAD_UNSIGNED[pass * per_pass + h]);
                    for nibble in 0..2 {
                        // SAFETY: the scales of sub-block 2c + nibble are 16 of the 256 bytes.
                        let scales = unsafe { broadcast16(&scales_mins, 16 * (2 * c + nibble)) };
                        let scale = _mm256_shuffle_epi8(scales, spread);
                        for a in 0..MR {
                            dots[a][h] = _mm256_add_epi32(dots[a][h], _mm256_madd_epi16(sums[a][h][nibble], scale));
                        }
                    }
                }
            }
            for h in 0..per_pass {
                let half = pass * per_pass + h;
                let mut mins = [_mm256_setzero_si256(); MR];
                for p in 0..4 {
                    // SAFETY: two sub-blocks' mins, 32 of the 256 bytes.
                    let pair = unsafe { interleaved::<false>(&scales_mins, 128 + 32 * p, half) };
                    for a in 0..MR {
                        mins[a] = _mm256_add_epi32(mins[a], _mm256_madd_epi16(pair, act_pairs[a][p]));
                    }
                }
                // SAFETY: the rows' d and dmin are 32 bytes each at constant offsets inside the block.
                let (d, dmin) = unsafe { (f16x8(b, 0, half), f16x8(b, Q4K_GROUP_DMIN, half)) };
                for a in 0..MR {
                    let dot = _mm256_cvtepi32_ps(dots[a][h]);
                    let value = _mm256_fmsub_ps(dot, d, _mm256_mul_ps(_mm256_cvtepi32_ps(mins[a]), dmin));
                    acc[a][half] = _mm256_fmadd_ps(value, _mm256_set1_ps(acts[a][i].d), acc[a][half]);
                }
            }
        }
        // The run lines were prefetched one per step of the first pass; these are the rest,
        // requested after the steps so the stream stays in address order.
        for line in 32..Q4K_GROUP_BYTES.div_ceil(64) {
            prefetch_line::<_, MR>(b, line);
        }
    }
    store_rows(acc)
}

/// One group of sixteen packed Q6_K rows against `MR` activation rows: `out[a][r]` is activation
/// row `a` with weight row `r` of the group.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn q6k_group<const MR: usize>(group: &[u8], acts: [&[Q8KBlock]; MR]) -> [[f32; GROUP_ROWS]; MR] {
    let blocks = group.as_chunks::<Q6K_GROUP_BYTES>().0;
    let count = acts.iter().map(|a| a.len()).fold(blocks.len(), usize::min);
    let low = _mm256_set1_epi8(0x0F);
    let high = _mm256_set1_epi8(0x30);
    let mut acc = [[_mm256_setzero_ps(); 2]; MR];
    for i in 0..count {
        let b = &blocks[i];
        // Each activation row's sums over the sixteen sub-blocks, as i16 pairs for the offset.
        let mut act_pairs = [[_mm256_setzero_si256(); 8]; MR];
        for a in 0..MR {
            let s = &acts[a][i].bsums;
            for p in 0..8 {
                act_pairs[a][p] = pair16(s[2 * p], s[2 * p + 1]);
            }
        }
        for half in 0..2 {
            let spread = control(&SPREAD_SIGNED[half]);
            let scale = |s: usize| {
                // SAFETY: the scales of sub-block s are 16 bytes inside the block.
                let spread_high = _mm256_shuffle_epi8(unsafe { broadcast16(b, Q6K_GROUP_SCALES + 16 * s) }, spread);
                _mm256_srai_epi16::<8>(spread_high)
            };
            let mut dots = [_mm256_setzero_si256(); MR];
            for c in 0..4 {
                for h in 0..2 {
                    // Sub-block 4c + h comes from the low nibbles, 4c + 2 + h from the high ones.
                    let (scale_lo, scale_hi) = (scale(4 * c + h), scale(4 * c + 2 + h));
                    for u in 2 * h..2 * h + 2 {
                        if half == 0 {
                            // Four lines a step cover the block's 53 in the first half's sixteen.
                            for line in 4 * (4 * c + u)..(4 * (4 * c + u) + 4).min(Q6K_GROUP_BYTES.div_ceil(64) + 1) {
                                prefetch_line::<_, MR>(b, line);
                            }
                        }
                        // SAFETY (loads of this block): the offsets are constants inside the block.
                        let (ql0, ql1, qh) = unsafe {
                            (
                                load32(b, Q6K_GROUP_QL + (8 * c + 2 * u) * 64 + 32 * half),
                                load32(b, Q6K_GROUP_QL + (8 * c + 2 * u + 1) * 64 + 32 * half),
                                load32(b, Q6K_GROUP_QH + (4 * c + u) * 64 + 32 * half),
                            )
                        };
                        let with_high = |lo: __m256i, hi: __m256i| {
                            _mm256_or_si256(_mm256_and_si256(lo, low), _mm256_and_si256(hi, high))
                        };
                        let v0 = with_high(ql0, _mm256_slli_epi16::<4>(qh));
                        let v1 = with_high(_mm256_srli_epi16::<4>(ql0), _mm256_slli_epi16::<2>(qh));
                        let v2 = with_high(ql1, qh);
                        let v3 = with_high(_mm256_srli_epi16::<4>(ql1), _mm256_srli_epi16::<2>(qh));
                        let at = 64 * c + 8 * u;
                        for a in 0..MR {
                            let qs = &acts[a][i].qs;
                            // SAFETY (act4): `at + 36 + 4` is at most 64 * 3 + 8 * 3 + 40 = 256.
                            let (x0, x2, x1, x3) =
                                unsafe { (act4(qs, at), act4(qs, at + 4), act4(qs, at + 32), act4(qs, at + 36)) };
                            let lo = _mm256_add_epi16(_mm256_maddubs_epi16(v0, x0), _mm256_maddubs_epi16(v2, x2));
                            let hi = _mm256_add_epi16(_mm256_maddubs_epi16(v1, x1), _mm256_maddubs_epi16(v3, x3));
                            let scaled =
                                _mm256_add_epi32(_mm256_madd_epi16(lo, scale_lo), _mm256_madd_epi16(hi, scale_hi));
                            dots[a] = _mm256_add_epi32(dots[a], scaled);
                        }
                    }
                }
            }
            // The -32 offset of every value: 32 * scale * sum(activations), per sub-block.
            let mut offsets = [_mm256_setzero_si256(); MR];
            for p in 0..8 {
                let pair = unsafe { interleaved::<true>(b, Q6K_GROUP_SCALES + 32 * p, half) };
                for a in 0..MR {
                    offsets[a] = _mm256_add_epi32(offsets[a], _mm256_madd_epi16(pair, act_pairs[a][p]));
                }
            }
            let d = unsafe { f16x8(b, 0, half) };
            for a in 0..MR {
                let sum = _mm256_sub_epi32(dots[a], _mm256_slli_epi32::<5>(offsets[a]));
                let scale = _mm256_mul_ps(d, _mm256_set1_ps(acts[a][i].d));
                acc[a][half] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum), scale, acc[a][half]);
            }
        }
    }
    store_rows(acc)
}

/// One group of sixteen packed rows of a nibble format (`BYTES` a block, with a minimum `MIN`
/// and fifth bits `FIFTH`, see `crate::packed`) against `MR` activation rows: `out[a][r]` is
/// activation row `a` with weight row `r` of the group.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn nibble_group<const MR: usize, const BYTES: usize, const MIN: bool, const FIFTH: bool>(
    group: &[u8],
    acts: [&[Q8Block]; MR],
) -> [[f32; GROUP_ROWS]; MR] {
    const { assert!(BYTES == nibble_group_bytes(MIN, FIFTH)) };
    let (qh_at, qs_at) = (nibble_group_qh(MIN), nibble_group_qs(MIN, FIFTH));
    // Without a minimum the values are stored plus 8 (Q4_0) or 16 (Q5_0).
    let offset = if FIFTH { 16.0 } else { 8.0 };
    let blocks = group.as_chunks::<BYTES>().0;
    let count = acts.iter().map(|a| a.len()).fold(blocks.len(), usize::min);
    let (low, fifth, ones) = (_mm256_set1_epi8(0x0F), _mm256_set1_epi8(0x10), _mm256_set1_epi16(1));
    let mut acc = [[_mm256_setzero_ps(); 2]; MR];
    for i in 0..count {
        let b = &blocks[i];
        for half in 0..2 {
            // SAFETY (all loads of this block): the offsets are constants inside the block.
            let qh = if FIFTH { unsafe { load32(b, qh_at + 32 * half) } } else { _mm256_setzero_si256() };
            // The low and high nibbles' products add up apart in i16: four `maddubs` of values
            // up to 31 against activations up to 127 stay below 2^15.
            let mut sums = [[_mm256_setzero_si256(); 2]; MR];
            for t in 0..4 {
                if half == 0 {
                    prefetch_line::<_, MR>(b, t);
                }
                let packed = unsafe { load32(b, qs_at + 64 * t + 32 * half) };
                let mut lo = _mm256_and_si256(packed, low);
                let mut hi = _mm256_and_si256(_mm256_srli_epi16::<4>(packed), low);
                if FIFTH {
                    // Bits 2t and 2t + 1 of the fifth-bit bytes move to bit 4 of the values.
                    let (lo_bits, hi_bits) = match t {
                        0 => (_mm256_slli_epi16::<4>(qh), _mm256_slli_epi16::<3>(qh)),
                        1 => (_mm256_slli_epi16::<2>(qh), _mm256_slli_epi16::<1>(qh)),
                        2 => (qh, _mm256_srli_epi16::<1>(qh)),
                        _ => (_mm256_srli_epi16::<2>(qh), _mm256_srli_epi16::<3>(qh)),
                    };
                    lo = _mm256_or_si256(lo, _mm256_and_si256(lo_bits, fifth));
                    hi = _mm256_or_si256(hi, _mm256_and_si256(hi_bits, fifth));
                }
                for a in 0..MR {
                    let qs = &acts[a][i].qs;
                    // SAFETY (act4): the offsets are at most 16 + 4 * 3, four below 32.
                    let (x_lo, x_hi) = unsafe { (act4(qs, 4 * t), act4(qs, 16 + 4 * t)) };
                    sums[a][0] = _mm256_add_epi16(sums[a][0], _mm256_maddubs_epi16(lo, x_lo));
                    sums[a][1] = _mm256_add_epi16(sums[a][1], _mm256_maddubs_epi16(hi, x_hi));
                }
            }
            let d = unsafe { f16x8(b, 0, half) };
            let m = if MIN { unsafe { f16x8(b, 32, half) } } else { _mm256_setzero_ps() };
            for a in 0..MR {
                let act = &acts[a][i];
                let pairs = _mm256_add_epi32(_mm256_madd_epi16(sums[a][0], ones), _mm256_madd_epi16(sums[a][1], ones));
                let sum = _mm256_cvtepi32_ps(pairs);
                let slot = &mut acc[a][half];
                if MIN {
                    // d * d_act * sum(q * q_act) + m * d_act * sum(q_act), the second from the block's sum.
                    *slot = _mm256_fmadd_ps(sum, _mm256_mul_ps(d, _mm256_set1_ps(act.d)), *slot);
                    *slot = _mm256_fmadd_ps(m, _mm256_set1_ps(act.sum), *slot);
                } else {
                    // d * (d_act * sum - offset * d_act * sum(q_act)).
                    let dot = _mm256_fmsub_ps(sum, _mm256_set1_ps(act.d), _mm256_set1_ps(offset * act.sum));
                    *slot = _mm256_fmadd_ps(dot, d, *slot);
                }
            }
        }
        for line in 4..BYTES.div_ceil(64) {
            prefetch_line::<_, MR>(b, line);
        }
    }
    store_rows(acc)
}

/// The accumulators' lanes as rows of sixteen outputs.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn store_rows<const MR: usize>(acc: [[__m256; 2]; MR]) -> [[f32; GROUP_ROWS]; MR] {
    let mut out = [[0f32; GROUP_ROWS]; MR];
    for a in 0..MR {
        for half in 0..2 {
            // SAFETY: each half of a row of `out` is eight f32, 32 bytes.
            unsafe { _mm256_storeu_ps(out[a][HALF_ROWS * half..].as_mut_ptr(), acc[a][half]) };
        }
    }
    out
}

group_kernels!("avx2,fma,f16c", Q4K_KERNELS, Q8KBlock, q4k_group, [q4k_group_1, q4k_group_2, q4k_group_3, q4k_group_4]);
group_kernels!("avx2,fma,f16c", Q6K_KERNELS, Q8KBlock, q6k_group, [q6k_group_1, q6k_group_2, q6k_group_3, q6k_group_4]);
nibble_kernel_sets!("avx2,fma,f16c");
