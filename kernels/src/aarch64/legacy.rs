//! NEON tiles for the 32-element formats against `Q8Block` activations.
//!
//! Q4_0, Q5_0 and Q8_0 quants become signed bytes (the -8 or -16 offset applied while unpacking,
//! once per weight block rather than once per activation row); Q4_1 and Q5_1 keep their unsigned
//! quants and add their minimum times the activations' scaled sum.

use std::arch::aarch64::*;

use super::{common_blocks, f16_le, load_i8x32, load_u8x16, sdot32};
use crate::activation::Q8Block;
use crate::quant::bytes_at;
use crate::quant::legacy::{Q4_0_BYTES, Q4_1_BYTES, Q5_0_BYTES, Q5_1_BYTES, Q8_0_BYTES};

/// A weight block unpacked for `sdot`.
#[derive(Clone, Copy)]
pub(super) struct Weights {
    /// Elements 0..16 and 16..32 as bytes.
    q: [int8x16_t; 2],
    d: f32,
    /// The block's minimum (Q4_1, Q5_1), which multiplies the activations' scaled sum.
    m: f32,
}

/// A 32-element block format of `BYTES` bytes.
pub(super) trait Format<const BYTES: usize> {
    /// Whether blocks carry a minimum, added as `m * sum(activations)`.
    const MIN: bool;
    /// The block's quants as bytes in element order, and its scale (and minimum).
    ///
    /// # Safety
    /// The CPU must have NEON and the dot-product extension (what a `SimdPath::Neon` proves).
    unsafe fn unpack(b: &[u8; BYTES]) -> Weights;
}

/// The 32 nibbles of `qs` in element order: the low nibbles are elements 0..16.
#[inline]
#[target_feature(enable = "neon,dotprod")]
fn nibbles(qs: &[u8; 16]) -> [uint8x16_t; 2] {
    let v = load_u8x16(qs);
    [vandq_u8(v, vdupq_n_u8(0x0F)), vshrq_n_u8::<4>(v)]
}

/// 0xFF in lane j (of 32) where bit j of the little-endian `qh` is set, else 0.
#[inline]
#[target_feature(enable = "neon,dotprod")]
fn fifth_bit_set(qh: &[u8; 4]) -> [uint8x16_t; 2] {
    let bytes = vreinterpretq_u8_u32(vdupq_n_u32(u32::from_le_bytes(*qh)));
    // Lane j takes byte j / 8 of qh and tests its bit j % 8.
    let bit = vreinterpretq_u8_u64(vdupq_n_u64(0x8040_2010_0804_0201));
    let lo = vqtbl1q_u8(bytes, vcombine_u8(vdup_n_u8(0), vdup_n_u8(1)));
    let hi = vqtbl1q_u8(bytes, vcombine_u8(vdup_n_u8(2), vdup_n_u8(3)));
    [vtstq_u8(lo, bit), vtstq_u8(hi, bit)]
}

/// Reinterprets two unsigned byte vectors as signed.
#[inline]
#[target_feature(enable = "neon,dotprod")]
fn signed([lo, hi]: [uint8x16_t; 2]) -> [int8x16_t; 2] {
    [vreinterpretq_s8_u8(lo), vreinterpretq_s8_u8(hi)]
}

/// Q4_0: nibbles minus 8.
pub(super) struct Q4_0;
/// Q4_1: nibbles, scale and minimum.
pub(super) struct Q4_1;
/// Q5_0: five-bit quants minus 16.
pub(super) struct Q5_0;
/// Q5_1: five-bit quants, scale and minimum.
pub(super) struct Q5_1;
/// Q8_0: signed bytes.
pub(super) struct Q8_0;

impl Format<Q4_0_BYTES> for Q4_0 {
    const MIN: bool = false;
    #[inline]
    #[target_feature(enable = "neon,dotprod")]
    unsafe fn unpack(b: &[u8; Q4_0_BYTES]) -> Weights {
        let [lo, hi] = nibbles(bytes_at(b, 2));
        let eight = vdupq_n_u8(8);
        // Wrapping byte subtraction, read back as signed.
        let q = [vsubq_u8(lo, eight), vsubq_u8(hi, eight)];
        Weights { q: signed(q), d: f16_le(b[0], b[1]), m: 0.0 }
    }
}

impl Format<Q4_1_BYTES> for Q4_1 {
    const MIN: bool = true;
    #[inline]
    #[target_feature(enable = "neon,dotprod")]
    unsafe fn unpack(b: &[u8; Q4_1_BYTES]) -> Weights {
        Weights { q: signed(nibbles(bytes_at(b, 4))), d: f16_le(b[0], b[1]), m: f16_le(b[2], b[3]) }
    }
}

impl Format<Q5_0_BYTES> for Q5_0 {
    const MIN: bool = false;
    #[inline]
    #[target_feature(enable = "neon,dotprod")]
    unsafe fn unpack(b: &[u8; Q5_0_BYTES]) -> Weights {
        let [lo, hi] = nibbles(bytes_at(b, 6));
        let [set_lo, set_hi] = fifth_bit_set(bytes_at(b, 2));
        // q | bit << 4, minus 16: subtract 16 only where the fifth bit is clear (wrapping bytes
        // read back as signed).
        let sixteen = vdupq_n_u8(16);
        let q = [vsubq_u8(lo, vbicq_u8(sixteen, set_lo)), vsubq_u8(hi, vbicq_u8(sixteen, set_hi))];
        Weights { q: signed(q), d: f16_le(b[0], b[1]), m: 0.0 }
    }
}

impl Format<Q5_1_BYTES> for Q5_1 {
    const MIN: bool = true;
    #[inline]
    #[target_feature(enable = "neon,dotprod")]
    unsafe fn unpack(b: &[u8; Q5_1_BYTES]) -> Weights {
        let [lo, hi] = nibbles(bytes_at(b, 8));
        let [set_lo, set_hi] = fifth_bit_set(bytes_at(b, 4));
        let sixteen = vdupq_n_u8(16);
        let q = [vorrq_u8(lo, vandq_u8(sixteen, set_lo)), vorrq_u8(hi, vandq_u8(sixteen, set_hi))];
        Weights { q: signed(q), d: f16_le(b[0], b[1]), m: f16_le(b[2], b[3]) }
    }
}

impl Format<Q8_0_BYTES> for Q8_0 {
    const MIN: bool = false;
    #[inline]
    #[target_feature(enable = "neon,dotprod")]
    unsafe fn unpack(b: &[u8; Q8_0_BYTES]) -> Weights {
        let q = [load_u8x16(bytes_at(b, 2)), load_u8x16(bytes_at(b, 18))];
        Weights { q: signed(q), d: f16_le(b[0], b[1]), m: 0.0 }
    }
}

/// Dots `NR` weight rows of format `F` with `MR` activation rows: `out[i][j]` is activation row i
/// with weight row j. Reads only the whole blocks present in every row.
#[inline]
#[target_feature(enable = "neon,dotprod")]
pub(super) fn tile<const BYTES: usize, F: Format<BYTES>, const NR: usize, const MR: usize>(
    rows: [&[u8]; NR],
    acts: [&[Q8Block]; MR],
) -> [[f32; NR]; MR] {
    let (blocks, acts, count) = common_blocks::<BYTES, _, NR, MR>(rows, acts);
    let mut acc = [[vdupq_n_f32(0.0); NR]; MR];
    let mut min_terms = [[0f32; NR]; MR];
    let mut w = [Weights { q: [vdupq_n_s8(0); 2], d: 0.0, m: 0.0 }; NR];
    for i in 0..count {
        for j in 0..NR {
            // SAFETY: this function's features are the ones `unpack` needs.
            w[j] = unsafe { F::unpack(&blocks[j][i]) };
        }
        for r in 0..MR {
            let a = &acts[r][i];
            let y = load_i8x32(&a.qs);
            for j in 0..NR {
                let sums = vcvtq_f32_s32(sdot32(w[j].q, y));
                acc[r][j] = vfmaq_n_f32(acc[r][j], sums, w[j].d * a.d);
                if F::MIN {
                    min_terms[r][j] += w[j].m * a.sum;
                }
            }
        }
    }
    let mut out = [[0f32; NR]; MR];
    for r in 0..MR {
        for j in 0..NR {
            out[r][j] = vaddvq_f32(acc[r][j]) + min_terms[r][j];
        }
    }
    out
}

/// One weight row of format `F` against one activation row.
#[target_feature(enable = "neon,dotprod")]
pub(super) fn dot<const BYTES: usize, F: Format<BYTES>>(w: &[u8], act: &[Q8Block]) -> f32 {
    let [[y]] = tile::<BYTES, F, 1, 1>([w], [act]);
    y
}
