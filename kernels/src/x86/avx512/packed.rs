//! AVX-512 VNNI kernels for Q4_K, Q6_K, Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0 weights repacked sixteen
//! rows at a time (`crate::packed`).
//!
//! In the packed layout one zmm load holds four consecutive quant bytes of each of sixteen rows,
//! so one `vpdpbusd` against four activation quants broadcast to every lane gives sixteen rows
//! their next four products each, already in the lane of their output. Sub-block scales are then
//! applied in f32 per lane once per 32 elements, and the block's weight and activation scales once
//! per block, instead of once per row as the row-major tiles must (with a horizontal sum at the
//! end of every row).

// The tile indexes its activation rows and their accumulators by the same position; iterators
// over parallel arrays would hide the register blocking.
#![allow(clippy::needless_range_loop)]

use std::arch::x86_64::*;

use super::{load16, load32, load64};
use crate::activation::{Q8Block, Q8KBlock};
use crate::packed::{
    GROUP_ROWS, Q4K_GROUP_BYTES, Q4K_GROUP_DMIN, Q4K_GROUP_QS, Q6K_GROUP_BYTES, Q6K_GROUP_QH, Q6K_GROUP_QL,
    Q6K_GROUP_SCALES, Q8_0_GROUP_BYTES, nibble_group_bytes, nibble_group_qh, nibble_group_qs,
};
use crate::x86::q4k_scales_mins;

/// How far ahead of the block being read to prefetch. A group's blocks, and the groups of a chunk,
/// follow each other, so the stream ahead is the one read next; a single core does not reach the
/// memory bandwidth on the hardware prefetcher alone (one token reads every weight once).
const PREFETCH_AHEAD: usize = 8192;

/// `PREFETCH_AHEAD` for packed Q6_K on Intel cores. On an Intel Xeon with about 15 GB/s from one
/// core, packed Q6_K streamed at 10-11 GB/s from one core 8 KiB ahead and 14 GB/s 2 KiB ahead
/// (22-25 against 25-27 GB/s from two), and Qwen2.5-Coder-1.5B Q4_K_M decoded 8-10% faster at
/// one thread and 4.5-6% at two. The same change for Q4_K measured no different, and 2 KiB for
/// every type slowed SmolLM2 (Q4_1, Q8_0) by 7% at one thread and 15% at two. On AMD EPYC
/// (Zen 4) the same 2 KiB decoded the 1.5B model 4-6% slower at one thread and 8% at two, and
/// 8 KiB was the best distance there for both Q4_K and Q6_K: 4 KiB and 16 KiB were slower, 12 KiB
/// within the noise.
const Q6K_INTEL_AHEAD: usize = 2048;

/// Prefetches cache lines `AHEAD` bytes after `block` (`PREFETCH_AHEAD`, or `Q6K_INTEL_AHEAD`):
/// the `BYTES / 64 / PARTS` lines of step `part` of `PARTS`, so the requests spread over the
/// block's work instead of arriving in one burst; `prefetch_rest` asks for the lines left over.
/// The offsets are constants once inlined: a computed line range cost more instructions than
/// the products it overlapped, and halved the kernel's speed on data already in cache. Tiles of
/// every height prefetch: products of three and four rows (a batch of sequences, a draft being
/// verified) stream the weights as one row does, and went 1.35 times as fast with it
/// (Qwen2.5-Coder-1.5B, pp4 at one thread); prefill, whose later four-row passes over a chunk
/// find it in L2, measured the same either way.
#[inline(always)]
fn prefetch_step<const BYTES: usize, const PARTS: usize, const AHEAD: usize>(block: &[u8; BYTES], part: usize) {
    let per_part = BYTES / 64 / PARTS;
    let base = block.as_ptr().wrapping_add(AHEAD + 64 * per_part * part);
    for line in 0..per_part {
        // SAFETY: prefetching is a hint; it never faults, whatever the address.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(base.wrapping_add(64 * line).cast()) };
    }
}

/// The lines after `block` that `PARTS` calls of `prefetch_step` leave out, asked for after the
/// block's steps: requests out of address order (these first) slowed the stream by a third.
#[inline(always)]
fn prefetch_rest<const BYTES: usize, const PARTS: usize, const AHEAD: usize>(block: &[u8; BYTES]) {
    let base = block.as_ptr().wrapping_add(AHEAD);
    for line in BYTES / 64 / PARTS * PARTS..BYTES.div_ceil(64) {
        // SAFETY: prefetching is a hint; it never faults, whatever the address.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(base.wrapping_add(64 * line).cast()) };
    }
}

/// `acc` plus, in each i32 lane, the products of the lane's four unsigned bytes of `u` with the
/// four activation quants `qs[at..at + 4]`: one `vpdpbusd` that broadcasts them from memory
/// itself. Written out so no tuning can split it: with a separate broadcast feeding it, the
/// packed Q4_K kernel ran 20% slower on weights in cache (the broadcasts were a third of its
/// instructions).
///
/// # Safety
/// `at + 4 <= qs.len()`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
unsafe fn dpbusd_act(acc: __m512i, u: __m512i, qs: &[i8], at: usize) -> __m512i {
    debug_assert!(at + 4 <= qs.len());
    let mut acc = acc;
    // SAFETY: the instruction needs AVX512-VNNI, which this function's callers have; it reads
    // the four bytes at `qs[at..]`, in bounds by this function's contract.
    unsafe {
        std::arch::asm!(
            "vpdpbusd {acc}, {u}, dword ptr [{p}]{{1to16}}",
            acc = inout(zmm_reg) acc,
            u = in(zmm_reg) u,
            p = in(reg) qs.as_ptr().add(at),
            options(pure, readonly, nostack, preserves_flags),
        );
    }
    acc
}

/// Sixteen unsigned bytes widened to f32 lanes and multiplied by `factor`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn scaled_bytes(bytes: __m128i, factor: __m512) -> __m512 {
    _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(bytes)), factor)
}

/// Sixteen f16 at `at` as f32 lanes.
///
/// # Safety
/// `b` must have at least `at + 32` bytes.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
unsafe fn f16x16(b: &[u8], at: usize) -> __m512 {
    // SAFETY: forwarded contract.
    _mm512_cvtph_ps(unsafe { load32(b, at) })
}

/// One group of sixteen packed Q4_K rows against `MR` activation rows: `out[a][r]` is activation
/// row `a` with weight row `r` of the group.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn q4k_group<const MR: usize>(group: &[u8], acts: [&[Q8KBlock]; MR]) -> [[f32; GROUP_ROWS]; MR] {
    let blocks = group.as_chunks::<Q4K_GROUP_BYTES>().0;
    let count = acts.iter().map(|a| a.len()).fold(blocks.len(), usize::min);
    let low = _mm512_set1_epi8(0x0F);
    let mut acc = [_mm512_setzero_ps(); MR];
    for i in 0..count {
        let b = &blocks[i];
        // SAFETY (all loads below): the offsets are constants inside the Q4K_GROUP_BYTES block.
        let (d, dmin) = unsafe { (f16x16(b, 0), f16x16(b, Q4K_GROUP_DMIN)) };
        // SAFETY: `b` is a whole packed Q4_K block.
        let scales_mins = unsafe { q4k_scales_mins(b) };
        let mut block_sum = [_mm512_setzero_ps(); MR];
        for c in 0..4 {
            // Sub-block 2c is in the low nibbles, 2c + 1 in the high ones. With one activation
            // row, odd and even steps add into separate sums: one chain of eight dependent
            // `vpdpbusd` per sub-block bounded the kernel by the instruction's latency. With more
            // rows the chains are already independent, and the extra registers would spill.
            let mut split = [[[_mm512_setzero_si512(); 2]; 2]; MR];
            for step in 0..8 {
                prefetch_step::<_, 32, PREFETCH_AHEAD>(b, 8 * c + step);
                let packed = unsafe { load64(b, Q4K_GROUP_QS + (8 * c + step) * 64) };
                let lo = _mm512_and_si512(packed, low);
                let hi = _mm512_and_si512(_mm512_srli_epi16::<4>(packed), low);
                for a in 0..MR {
                    let act = &acts[a][i];
                    let part = &mut split[a][step % if MR == 1 { 2 } else { 1 }];
                    // SAFETY (dpbusd_act): the offsets are below 64 * 3 + 32 + 4 * 7 + 4 = 256.
                    part[0] = unsafe { dpbusd_act(part[0], lo, &act.qs, 64 * c + 4 * step) };
                    part[1] = unsafe { dpbusd_act(part[1], hi, &act.qs, 64 * c + 32 + 4 * step) };
                }
            }
            let sums = split.map(|[even, odd]| [_mm512_add_epi32(even[0], odd[0]), _mm512_add_epi32(even[1], odd[1])]);
            for h in 0..2 {
                let s = 2 * c + h;
                // SAFETY: sub-block s's scales and mins are 16 of the 256 bytes each.
                let (scales, mins) = unsafe { (load16(&scales_mins, 16 * s), load16(&scales_mins, 128 + 16 * s)) };
                let (scale, min) = (scaled_bytes(scales, d), scaled_bytes(mins, dmin));
                for a in 0..MR {
                    block_sum[a] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sums[a][h]), scale, block_sum[a]);
                    // scaled_sums_32 already carries the activation scale.
                    let act_sum = _mm512_set1_ps(acts[a][i].scaled_sums_32[s]);
                    acc[a] = _mm512_fnmadd_ps(min, act_sum, acc[a]);
                }
            }
        }
        prefetch_rest::<_, 32, PREFETCH_AHEAD>(b);
        for a in 0..MR {
            acc[a] = _mm512_fmadd_ps(block_sum[a], _mm512_set1_ps(acts[a][i].d), acc[a]);
        }
    }
    store_rows(acc)
}

/// `low | (high & MASK)` in every byte: a 5- or 6-bit value from its low nibble and its high bits
/// already shifted into place (`MASK` 0x10 or 0x30).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn with_high_bits<const MASK: i8>(low: __m512i, high: __m512i) -> __m512i {
    // Truth table of A | (B & C) with C = MASK in every byte.
    _mm512_ternarylogic_epi32::<0xF8>(low, high, _mm512_set1_epi8(MASK))
}

/// One group of sixteen packed Q6_K rows against `MR` activation rows: `out[a][r]` is activation
/// row `a` with weight row `r` of the group.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn q6k_group<const MR: usize, const AHEAD: usize>(group: &[u8], acts: [&[Q8KBlock]; MR]) -> [[f32; GROUP_ROWS]; MR] {
    let blocks = group.as_chunks::<Q6K_GROUP_BYTES>().0;
    let count = acts.iter().map(|a| a.len()).fold(blocks.len(), usize::min);
    let low = _mm512_set1_epi8(0x0F);
    let mut acc = [_mm512_setzero_ps(); MR];
    for i in 0..count {
        let b = &blocks[i];
        // SAFETY (all loads below): the offsets are constants inside the Q6K_GROUP_BYTES block.
        let d = unsafe { f16x16(b, 0) };
        let mut block_sum = [_mm512_setzero_ps(); MR];
        for c in 0..4 {
            for h in 0..2 {
                // Sub-block 4c + h comes from the low nibbles, 4c + 2 + h from the high ones.
                let mut sums = [[_mm512_setzero_si512(); 2]; MR];
                for u in 2 * h..2 * h + 2 {
                    prefetch_step::<_, 16, AHEAD>(b, 4 * c + u);
                    let ql0 = unsafe { load64(b, Q6K_GROUP_QL + (8 * c + 2 * u) * 64) };
                    let ql1 = unsafe { load64(b, Q6K_GROUP_QL + (8 * c + 2 * u + 1) * 64) };
                    let qh = unsafe { load64(b, Q6K_GROUP_QH + (4 * c + u) * 64) };
                    let v0 = with_high_bits::<0x30>(_mm512_and_si512(ql0, low), _mm512_slli_epi16::<4>(qh));
                    let v1 = with_high_bits::<0x30>(
                        _mm512_and_si512(_mm512_srli_epi16::<4>(ql0), low),
                        _mm512_slli_epi16::<2>(qh),
                    );
                    let v2 = with_high_bits::<0x30>(_mm512_and_si512(ql1, low), qh);
                    let v3 = with_high_bits::<0x30>(
                        _mm512_and_si512(_mm512_srli_epi16::<4>(ql1), low),
                        _mm512_srli_epi16::<2>(qh),
                    );
                    let at = 64 * c + 8 * u;
                    for a in 0..MR {
                        let act = &acts[a][i];
                        // SAFETY (dpbusd_act): `at + 36 + 4` is at most 64 * 3 + 8 * 3 + 40 = 256.
                        sums[a][0] = unsafe { dpbusd_act(sums[a][0], v0, &act.qs, at) };
                        sums[a][0] = unsafe { dpbusd_act(sums[a][0], v2, &act.qs, at + 4) };
                        sums[a][1] = unsafe { dpbusd_act(sums[a][1], v1, &act.qs, at + 32) };
                        sums[a][1] = unsafe { dpbusd_act(sums[a][1], v3, &act.qs, at + 36) };
                    }
                }
                for (half, s) in [(0, 4 * c + h), (1, 4 * c + 2 + h)] {
                    let scale = unsafe {
                        _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(load16(b, Q6K_GROUP_SCALES + 16 * s))), d)
                    };
                    for a in 0..MR {
                        // The -32 offset of every value folds into the activations' sum.
                        let offset = _mm512_set1_epi32(32 * i32::from(acts[a][i].bsums[s]));
                        let sum = _mm512_cvtepi32_ps(_mm512_sub_epi32(sums[a][half], offset));
                        block_sum[a] = _mm512_fmadd_ps(sum, scale, block_sum[a]);
                    }
                }
            }
        }
        prefetch_rest::<_, 16, AHEAD>(b);
        for a in 0..MR {
            acc[a] = _mm512_fmadd_ps(block_sum[a], _mm512_set1_ps(acts[a][i].d), acc[a]);
        }
    }
    store_rows(acc)
}

/// One group of sixteen packed rows of a nibble format (`BYTES` a block, with a minimum `MIN`
/// and fifth bits `FIFTH`) against `MR` activation rows: `out[a][r]` is activation row `a` with
/// weight row `r` of the group.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
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
    let low = _mm512_set1_epi8(0x0F);
    let mut acc = [_mm512_setzero_ps(); MR];
    for i in 0..count {
        let b = &blocks[i];
        // SAFETY (all loads of this block): the offsets are constants inside the block.
        let qh = if FIFTH { unsafe { load64(b, qh_at) } } else { _mm512_setzero_si512() };
        // The low and high nibbles add into separate sums: two chains of four dependent
        // `vpdpbusd` instead of one of eight.
        let mut sums = [[_mm512_setzero_si512(); 2]; MR];
        for t in 0..4 {
            prefetch_step::<_, 4, PREFETCH_AHEAD>(b, t);
            let packed = unsafe { load64(b, qs_at + 64 * t) };
            let mut lo = _mm512_and_si512(packed, low);
            let mut hi = _mm512_and_si512(_mm512_srli_epi16::<4>(packed), low);
            if FIFTH {
                // Bits 2t and 2t + 1 of the fifth-bit bytes move to bit 4 of the values.
                let (lo_bits, hi_bits) = match t {
                    0 => (_mm512_slli_epi16::<4>(qh), _mm512_slli_epi16::<3>(qh)),
                    1 => (_mm512_slli_epi16::<2>(qh), _mm512_slli_epi16::<1>(qh)),
                    2 => (qh, _mm512_srli_epi16::<1>(qh)),
                    _ => (_mm512_srli_epi16::<2>(qh), _mm512_srli_epi16::<3>(qh)),
                };
                lo = with_high_bits::<0x10>(lo, lo_bits);
                hi = with_high_bits::<0x10>(hi, hi_bits);
            }
            for a in 0..MR {
                let qs = &acts[a][i].qs;
                // SAFETY (dpbusd_act): the offsets are at most 16 + 4 * 3, four below 32.
                sums[a][0] = unsafe { dpbusd_act(sums[a][0], lo, qs, 4 * t) };
                sums[a][1] = unsafe { dpbusd_act(sums[a][1], hi, qs, 16 + 4 * t) };
            }
        }
        prefetch_rest::<_, 4, PREFETCH_AHEAD>(b);
        let d = unsafe { f16x16(b, 0) };
        let m = if MIN { unsafe { f16x16(b, 32) } } else { _mm512_setzero_ps() };
        for a in 0..MR {
            let act = &acts[a][i];
            let sum = _mm512_cvtepi32_ps(_mm512_add_epi32(sums[a][0], sums[a][1]));
            if MIN {
                // d * d_act * sum(q * q_act) + m * d_act * sum(q_act), the second from the block's sum.
                acc[a] = _mm512_fmadd_ps(sum, _mm512_mul_ps(d, _mm512_set1_ps(act.d)), acc[a]);
                acc[a] = _mm512_fmadd_ps(m, _mm512_set1_ps(act.sum), acc[a]);
            } else {
                // d * (d_act * sum - offset * d_act * sum(q_act)).
                let dot = _mm512_fmsub_ps(sum, _mm512_set1_ps(act.d), _mm512_set1_ps(offset * act.sum));
                acc[a] = _mm512_fmadd_ps(dot, d, acc[a]);
            }
        }
    }
    store_rows(acc)
}

/// One group of sixteen packed Q8_0 rows against `MR` activation rows: `out[a][r]` is activation
/// row `a` with weight row `r` of the group.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn q8_0_group<const MR: usize>(group: &[u8], acts: [&[Q8Block]; MR]) -> [[f32; GROUP_ROWS]; MR] {
    let blocks = group.as_chunks::<Q8_0_GROUP_BYTES>().0;
    let count = acts.iter().map(|a| a.len()).fold(blocks.len(), usize::min);
    let mut acc = [_mm512_setzero_ps(); MR];
    for i in 0..count {
        let b = &blocks[i];
        let mut sums = [_mm512_setzero_si512(); MR];
        for t in 0..8 {
            prefetch_step::<_, 8, PREFETCH_AHEAD>(b, t);
            // SAFETY (all loads of this block): the offsets are constants inside the block.
            let packed = unsafe { load64(b, 32 + 64 * t) };
            for a in 0..MR {
                // SAFETY (dpbusd_act): the offsets are at most 4 * 7, four below 32.
                sums[a] = unsafe { dpbusd_act(sums[a], packed, &acts[a][i].qs, 4 * t) };
            }
        }
        prefetch_rest::<_, 8, PREFETCH_AHEAD>(b);
        let d = unsafe { f16x16(b, 0) };
        for a in 0..MR {
            // The weights were stored plus 128: d * (d_act * sum - 128 * d_act * sum(q_act)).
            let act = &acts[a][i];
            let dot =
                _mm512_fmsub_ps(_mm512_cvtepi32_ps(sums[a]), _mm512_set1_ps(act.d), _mm512_set1_ps(128.0 * act.sum));
            acc[a] = _mm512_fmadd_ps(dot, d, acc[a]);
        }
    }
    store_rows(acc)
}

/// The accumulators' lanes as rows of sixteen outputs.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn store_rows<const MR: usize>(acc: [__m512; MR]) -> [[f32; GROUP_ROWS]; MR] {
    let mut out = [[0f32; GROUP_ROWS]; MR];
    for a in 0..MR {
        // SAFETY: a row of `out` is sixteen f32, 64 bytes.
        unsafe { _mm512_storeu_ps(out[a].as_mut_ptr(), acc[a]) };
    }
    out
}

group_kernels!(
    "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c",
    Q4K_KERNELS,
    Q8KBlock,
    q4k_group,
    [q4k_group_1, q4k_group_2, q4k_group_3, q4k_group_4]
);
group_kernels!(
    "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c",
    Q6K_KERNELS,
    Q8KBlock,
    q6k_group::<PREFETCH_AHEAD>,
    [q6k_group_1, q6k_group_2, q6k_group_3, q6k_group_4]
);
group_kernels!(
    "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c",
    Q6K_INTEL_KERNELS,
    Q8KBlock,
    q6k_group::<Q6K_INTEL_AHEAD>,
    [q6k_intel_group_1, q6k_intel_group_2, q6k_intel_group_3, q6k_intel_group_4]
);
group_kernels!(
    "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c",
    Q8_0_KERNELS,
    Q8Block,
    q8_0_group,
    [q8_0_group_1, q8_0_group_2, q8_0_group_3, q8_0_group_4]
);
nibble_kernel_sets!("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c");
