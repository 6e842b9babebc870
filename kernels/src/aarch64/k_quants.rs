//! NEON tiles for Q4_K, Q5_K and Q6_K against `Q8KBlock` activations.
//!
//! Each sub-block's `sdot` partial sums are multiplied by its scale in the integer lanes
//! (`mla` by a scalar), so a block needs one float multiply-add per activation row. Q4_K/Q5_K
//! mins are subtracted in float against the activations' scaled 32-element sums; Q6_K quants take
//! their -32 offset while unpacking, once per weight block.

use std::arch::aarch64::*;

use super::{common_blocks, f16_le, load_f32x8, load_i8x32, load_u8x16, sdot, sdot32};
use crate::activation::Q8KBlock;
use crate::quant::bytes_at;
use crate::quant::k_high::{Q5K_BYTES, Q6K_BYTES, k4_scales_mins};

/// The 32 activation quants of group `g` (elements 32g..32g+32).
#[inline]
#[target_feature(enable = "neon,dotprod")]
fn act_group(a: &Q8KBlock, g: usize) -> [int8x16_t; 2] {
    let (groups, _) = a.qs.as_chunks::<32>();
    load_i8x32(&groups[g])
}

/// The 32 bytes at `b[at..]` as two vectors.
#[inline]
#[target_feature(enable = "neon,dotprod")]
fn load32<const BYTES: usize>(b: &[u8; BYTES], at: usize) -> [uint8x16_t; 2] {
    [load_u8x16(bytes_at(b, at)), load_u8x16(bytes_at(b, at + 16))]
}

/// What a Q4_K/Q5_K block contributes besides its quants.
#[derive(Clone, Copy)]
struct K4Scales {
    /// The eight 6-bit scales then the eight 6-bit mins.
    scales_mins: [u8; 16],
    d: f32,
    /// dmin times each sub-block's min.
    weighted_mins: [float32x4_t; 2],
}

#[inline]
#[target_feature(enable = "neon,dotprod")]
fn k4_scales(b: &[u8]) -> K4Scales {
    let scales_mins = k4_scales_mins(&b[4..16]);
    let dmin = f16_le(b[2], b[3]);
    // SAFETY: `scales_mins` is 16 bytes; the mins are bytes 8..16.
    let mins = vmovl_u8(unsafe { vld1_u8(scales_mins.as_ptr().add(8)) });
    let weighted_mins = [
        vmulq_n_f32(vcvtq_f32_u32(vmovl_u16(vget_low_u16(mins))), dmin),
        vmulq_n_f32(vcvtq_f32_u32(vmovl_high_u16(mins)), dmin),
    ];
    K4Scales { scales_mins, d: f16_le(b[0], b[1]), weighted_mins }
}

/// The signed quants of sub-blocks 2c (low nibbles) and 2c + 1 (high nibbles) of a Q4_K or Q5_K
/// block, where chunk c is the 32 bytes at `b[qs_at + 32c..]`.
#[inline]
#[target_feature(enable = "neon,dotprod")]
fn k4_chunk<const BYTES: usize>(b: &[u8; BYTES], c: usize) -> [[int8x16_t; 2]; 2] {
    let five = BYTES == Q5K_BYTES;
    let qs_at = if five { 48 } else { 16 };
    let low = vdupq_n_u8(0x0F);
    let [b0, b1] = load32(b, qs_at + 32 * c);
    let (mut lo, mut hi) = ([vandq_u8(b0, low), vandq_u8(b1, low)], [vshrq_n_u8::<4>(b0), vshrq_n_u8::<4>(b1)]);
    if five {
        // Bits 2c and 2c + 1 of each qh byte are bit 4 of the low and high quants.
        let [qh0, qh1] = load32(b, 16);
        let shift = vdupq_n_s8(-2 * c as i8);
        let qh = [vshlq_u8(qh0, shift), vshlq_u8(qh1, shift)];
        for h in 0..2 {
            lo[h] = vorrq_u8(lo[h], vshlq_n_u8::<4>(vandq_u8(qh[h], vdupq_n_u8(1))));
            hi[h] = vorrq_u8(hi[h], vshlq_n_u8::<3>(vandq_u8(qh[h], vdupq_n_u8(2))));
        }
    }
    let signed = |[a, b]: [uint8x16_t; 2]| [vreinterpretq_s8_u8(a), vreinterpretq_s8_u8(b)];
    [signed(lo), signed(hi)]
}

/// Q4_K (`BYTES` 144) or Q5_K (`BYTES` 176) weight rows against activation rows: `out[i][j]` is
/// activation row i with weight row j.
#[inline]
#[target_feature(enable = "neon,dotprod")]
pub(super) fn tile_k4<const BYTES: usize, const NR: usize, const MR: usize>(
    rows: [&[u8]; NR],
    acts: [&[Q8KBlock]; MR],
) -> [[f32; NR]; MR] {
    let (blocks, acts, count) = common_blocks::<BYTES, _, NR, MR>(rows, acts);
    let mut acc = [[vdupq_n_f32(0.0); NR]; MR];
    let zero_scales = K4Scales { scales_mins: [0; 16], d: 0.0, weighted_mins: [vdupq_n_f32(0.0); 2] };
    let mut scales = [zero_scales; NR];
    let mut quants = [[[vdupq_n_s8(0); 2]; 2]; NR];
    for i in 0..count {
        for j in 0..NR {
            scales[j] = k4_scales(&blocks[j][i]);
        }
        let mut sums = [[vdupq_n_s32(0); NR]; MR];
        for c in 0..4 {
            for j in 0..NR {
                quants[j] = k4_chunk(&blocks[j][i], c);
            }
            for r in 0..MR {
                let a = &acts[r][i];
                let (y_lo, y_hi) = (act_group(a, 2 * c), act_group(a, 2 * c + 1));
                for j in 0..NR {
                    let sm = &scales[j].scales_mins;
                    let p_lo = sdot32(quants[j][0], y_lo);
                    let p_hi = sdot32(quants[j][1], y_hi);
                    sums[r][j] = vmlaq_n_s32(sums[r][j], p_lo, i32::from(sm[2 * c]));
                    sums[r][j] = vmlaq_n_s32(sums[r][j], p_hi, i32::from(sm[2 * c + 1]));
                }
            }
        }
        for r in 0..MR {
            let a = &acts[r][i];
            let scaled_sums = load_f32x8(&a.scaled_sums_32);
            for j in 0..NR {
                let s = &scales[j];
                let v = vfmaq_n_f32(acc[r][j], vcvtq_f32_s32(sums[r][j]), s.d * a.d);
                let v = vfmsq_f32(v, s.weighted_mins[0], scaled_sums[0]);
                acc[r][j] = vfmsq_f32(v, s.weighted_mins[1], scaled_sums[1]);
            }
        }
    }
    horizontal_sums(acc)
}

/// The 16 signed Q6_K quants of quarter `T` (0..4) of a 128-element half, from the low-bit bytes
/// `ql` that quarter reads and the high-bit bytes `qh` of the half: bits 0..4 of the quant are a
/// nibble of `ql` (the low one in quarters 0 and 1), bits 4..6 are bits 2T..2T+2 of `qh`.
#[inline]
#[target_feature(enable = "neon,dotprod")]
fn q6k_quarter<const T: usize>(ql: uint8x16_t, qh: uint8x16_t) -> int8x16_t {
    let low = if T < 2 { vandq_u8(ql, vdupq_n_u8(0x0F)) } else { vshrq_n_u8::<4>(ql) };
    let high = match T {
        0 => vshlq_n_u8::<4>(vandq_u8(qh, vdupq_n_u8(0x03))),
        1 => vshlq_n_u8::<2>(vandq_u8(qh, vdupq_n_u8(0x0C))),
        2 => vandq_u8(qh, vdupq_n_u8(0x30)),
        _ => vshrq_n_u8::<2>(vandq_u8(qh, vdupq_n_u8(0xC0))),
    };
    vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(low, high)), vdupq_n_s8(32))
}

/// Adds quarter `T` of half `n` of block `i` of every weight row to `sums`, each sixteen quants'
/// partial sums times their scale.
#[inline]
#[target_feature(enable = "neon,dotprod")]
fn q6k_quarter_sums<const T: usize, const NR: usize, const MR: usize>(
    blocks: &[&[[u8; Q6K_BYTES]]; NR],
    acts: &[&[Q8KBlock]; MR],
    i: usize,
    n: usize,
    sums: &mut [[int32x4_t; NR]; MR],
) {
    let mut quants = [[vdupq_n_s8(0); 2]; NR];
    for j in 0..NR {
        let b = &blocks[j][i];
        let ql = load32(b, 64 * n + 32 * (T % 2));
        let qh = load32(b, 128 + 32 * n);
        quants[j] = [q6k_quarter::<T>(ql[0], qh[0]), q6k_quarter::<T>(ql[1], qh[1])];
    }
    let sub = 8 * n + 2 * T;
    for r in 0..MR {
        let y = act_group(&acts[r][i], 4 * n + T);
        for j in 0..NR {
            let scales = bytes_at::<16>(&blocks[j][i], 192);
            let p_lo = sdot(vdupq_n_s32(0), quants[j][0], y[0]);
            let p_hi = sdot(vdupq_n_s32(0), quants[j][1], y[1]);
            sums[r][j] = vmlaq_n_s32(sums[r][j], p_lo, i32::from(scales[sub] as i8));
            sums[r][j] = vmlaq_n_s32(sums[r][j], p_hi, i32::from(scales[sub + 1] as i8));
        }
    }
}

/// Q6_K weight rows against activation rows: `out[i][j]` is activation row i with weight row j.
#[inline]
#[target_feature(enable = "neon,dotprod")]
pub(super) fn tile_q6k<const NR: usize, const MR: usize>(
    rows: [&[u8]; NR],
    acts: [&[Q8KBlock]; MR],
) -> [[f32; NR]; MR] {
    let (blocks, acts, count) = common_blocks::<Q6K_BYTES, _, NR, MR>(rows, acts);
    let mut acc = [[vdupq_n_f32(0.0); NR]; MR];
    for i in 0..count {
        let mut sums = [[vdupq_n_s32(0); NR]; MR];
        for n in 0..2 {
            q6k_quarter_sums::<0, NR, MR>(&blocks, &acts, i, n, &mut sums);
            q6k_quarter_sums::<1, NR, MR>(&blocks, &acts, i, n, &mut sums);
            q6k_quarter_sums::<2, NR, MR>(&blocks, &acts, i, n, &mut sums);
            q6k_quarter_sums::<3, NR, MR>(&blocks, &acts, i, n, &mut sums);
        }
        for r in 0..MR {
            for j in 0..NR {
                let b = &blocks[j][i];
                let d = f16_le(b[208], b[209]);
                acc[r][j] = vfmaq_n_f32(acc[r][j], vcvtq_f32_s32(sums[r][j]), d * acts[r][i].d);
            }
        }
    }
    horizontal_sums(acc)
}

/// The sum of each accumulator's lanes.
#[inline]
#[target_feature(enable = "neon,dotprod")]
fn horizontal_sums<const NR: usize, const MR: usize>(acc: [[float32x4_t; NR]; MR]) -> [[f32; NR]; MR] {
    let mut out = [[0f32; NR]; MR];
    for r in 0..MR {
        for j in 0..NR {
            out[r][j] = vaddvq_f32(acc[r][j]);
        }
    }
    out
}

/// One Q4_K or Q5_K weight row against one activation row.
#[target_feature(enable = "neon,dotprod")]
pub(super) fn dot_k4<const BYTES: usize>(w: &[u8], act: &[Q8KBlock]) -> f32 {
    let [[y]] = tile_k4::<BYTES, 1, 1>([w], [act]);
    y
}

/// One Q6_K weight row against one activation row.
#[target_feature(enable = "neon,dotprod")]
pub(super) fn dot_q6k(w: &[u8], act: &[Q8KBlock]) -> f32 {
    let [[y]] = tile_q6k::<1, 1>([w], [act]);
    y
}
