//! The 32-element block formats: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 and Q8_1.
//!
//! Layouts (little-endian, f16 scales):
//! - Q4_0 (18 B): d, qs[16]; element j is (qs[j] & 15) - 8, element j+16 is (qs[j] >> 4) - 8, times d.
//! - Q4_1 (20 B): d, m, qs[16]; like Q4_0 without the -8, times d plus m.
//! - Q5_0 (22 B): d, qh[4], qs[16]; bit j of the u32 qh is bit 4 of element j; minus 16, times d.
//! - Q5_1 (24 B): d, m, qh[4], qs[16]; like Q5_0 without the -16, times d plus m.
//! - Q8_0 (34 B): d, qs[32] as i8.
//! - Q8_1 (36 B): d, s (d times the sum of qs), qs[32] as i8.

use super::{bytes_at, dot_i8_i8, dot_u8_i8, f16_le, two_pass};
use crate::activation::Q8Block;

pub(crate) const Q4_0_BYTES: usize = 18;
pub(crate) const Q4_1_BYTES: usize = 20;
pub(crate) const Q5_0_BYTES: usize = 22;
pub(crate) const Q5_1_BYTES: usize = 24;
pub(crate) const Q8_0_BYTES: usize = 34;
pub(crate) const Q8_1_BYTES: usize = 36;

/// The 32 unsigned 4-bit values of `qs` in element order.
#[inline(always)]
fn nibbles(qs: &[u8; 16]) -> [u8; 32] {
    let mut q = [0u8; 32];
    for j in 0..16 {
        q[j] = qs[j] & 0x0F;
        q[j + 16] = qs[j] >> 4;
    }
    q
}

/// Bit `j % 8` in lane `j`: selects bit j of the little-endian u32 from its byte `j / 8`.
const BIT_OF_LANE: [u8; 32] = {
    let mut m = [0u8; 32];
    let mut j = 0;
    while j < 32 {
        m[j] = 1 << (j % 8);
        j += 1;
    }
    m
};

/// The 32 unsigned 5-bit values from the low nibbles `qs` and the high bits `qh` (bit j of the
/// little-endian u32 is bit 4 of element j).
#[inline(always)]
fn five_bits(qs: &[u8; 16], qh: &[u8; 4]) -> [u8; 32] {
    let mut q = nibbles(qs);
    // A constant mask per lane over the repeated bytes vectorizes; a variable shift per element
    // does not on baseline x86-64.
    let mut repeated = [0u8; 32];
    for (lanes, &byte) in repeated.as_chunks_mut::<8>().0.iter_mut().zip(qh) {
        *lanes = [byte; 8];
    }
    for ((v, &byte), &bit) in q.iter_mut().zip(&repeated).zip(&BIT_OF_LANE) {
        *v |= (byte & bit).min(1) << 4;
    }
    q
}

pub(crate) fn dequantize_q4_0(src: &[u8], dst: &mut [f32]) {
    for (b, out) in src.as_chunks::<Q4_0_BYTES>().0.iter().zip(dst.as_chunks_mut::<32>().0) {
        let d = f16_le(b[0], b[1]);
        for (o, &q) in out.iter_mut().zip(&nibbles(bytes_at(b, 2))) {
            *o = (i32::from(q) - 8) as f32 * d;
        }
    }
}

pub(crate) fn dequantize_q4_1(src: &[u8], dst: &mut [f32]) {
    for (b, out) in src.as_chunks::<Q4_1_BYTES>().0.iter().zip(dst.as_chunks_mut::<32>().0) {
        let (d, m) = (f16_le(b[0], b[1]), f16_le(b[2], b[3]));
        for (o, &q) in out.iter_mut().zip(&nibbles(bytes_at(b, 4))) {
            *o = f32::from(q) * d + m;
        }
    }
}

pub(crate) fn dequantize_q5_0(src: &[u8], dst: &mut [f32]) {
    for (b, out) in src.as_chunks::<Q5_0_BYTES>().0.iter().zip(dst.as_chunks_mut::<32>().0) {
        let d = f16_le(b[0], b[1]);
        let q = five_bits(bytes_at(b, 6), bytes_at(b, 2));
        for (o, &q) in out.iter_mut().zip(&q) {
            *o = (i32::from(q) - 16) as f32 * d;
        }
    }
}

pub(crate) fn dequantize_q5_1(src: &[u8], dst: &mut [f32]) {
    for (b, out) in src.as_chunks::<Q5_1_BYTES>().0.iter().zip(dst.as_chunks_mut::<32>().0) {
        let (d, m) = (f16_le(b[0], b[1]), f16_le(b[2], b[3]));
        let q = five_bits(bytes_at(b, 8), bytes_at(b, 4));
        for (o, &q) in out.iter_mut().zip(&q) {
            *o = f32::from(q) * d + m;
        }
    }
}

pub(crate) fn dequantize_q8_0(src: &[u8], dst: &mut [f32]) {
    for (b, out) in src.as_chunks::<Q8_0_BYTES>().0.iter().zip(dst.as_chunks_mut::<32>().0) {
        let d = f16_le(b[0], b[1]);
        for (o, &q) in out.iter_mut().zip(&b[2..34]) {
            *o = f32::from(q as i8) * d;
        }
    }
}

pub(crate) fn dequantize_q8_1(src: &[u8], dst: &mut [f32]) {
    for (b, out) in src.as_chunks::<Q8_1_BYTES>().0.iter().zip(dst.as_chunks_mut::<32>().0) {
        let d = f16_le(b[0], b[1]);
        for (o, &q) in out.iter_mut().zip(&b[4..36]) {
            *o = f32::from(q as i8) * d;
        }
    }
}

// The dot products below use the activations' scaled sum to apply the weights' offsets once per
// block: sum((q - o) * d_w * a * d_a) = d_w * (d_a * sum(q * a) - o * sum_a).

pub(crate) fn dot_q4_0(w: &[u8], act: &[Q8Block]) -> f32 {
    two_pass(
        w.as_chunks::<Q4_0_BYTES>().0,
        act,
        |b, a| dot_u8_i8(&nibbles(bytes_at(b, 2)), &a.qs),
        |b, a, s| f16_le(b[0], b[1]) * (a.d * s as f32 - 8.0 * a.sum),
    )
}

pub(crate) fn dot_q4_1(w: &[u8], act: &[Q8Block]) -> f32 {
    two_pass(
        w.as_chunks::<Q4_1_BYTES>().0,
        act,
        |b, a| dot_u8_i8(&nibbles(bytes_at(b, 4)), &a.qs),
        |b, a, s| f16_le(b[0], b[1]) * a.d * s as f32 + f16_le(b[2], b[3]) * a.sum,
    )
}

pub(crate) fn dot_q5_0(w: &[u8], act: &[Q8Block]) -> f32 {
    two_pass(
        w.as_chunks::<Q5_0_BYTES>().0,
        act,
        |b, a| dot_u8_i8(&five_bits(bytes_at(b, 6), bytes_at(b, 2)), &a.qs),
        |b, a, s| f16_le(b[0], b[1]) * (a.d * s as f32 - 16.0 * a.sum),
    )
}

pub(crate) fn dot_q5_1(w: &[u8], act: &[Q8Block]) -> f32 {
    two_pass(
        w.as_chunks::<Q5_1_BYTES>().0,
        act,
        |b, a| dot_u8_i8(&five_bits(bytes_at(b, 8), bytes_at(b, 4)), &a.qs),
        |b, a, s| f16_le(b[0], b[1]) * a.d * s as f32 + f16_le(b[2], b[3]) * a.sum,
    )
}

pub(crate) fn dot_q8_0(w: &[u8], act: &[Q8Block]) -> f32 {
    two_pass(
        w.as_chunks::<Q8_0_BYTES>().0,
        act,
        |b, a| dot_i8_i8(bytes_at::<32>(b, 2), &a.qs),
        |b, a, s| f16_le(b[0], b[1]) * a.d * s as f32,
    )
}
