//! The 32-element block formats: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 and Q8_1.
//!
//! Layouts (little-endian, f16 scales):
//! - Q4_0 (18 B): d, qs[16]; element j is (qs[j] & 15) - 8, element j+16 is (qs[j] >> 4) - 8, times d.
//! - Q4_1 (20 B): d, m, qs[16]; like Q4_0 without the -8, times d plus m.
//! - Q5_0 (22 B): d, qh[4], qs[16]; bit j of the u32 qh is bit 4 of element j; minus 16, times d.
//! - Q5_1 (24 B): d, m, qh[4], qs[16]; like Q5_0 without the -16, times d plus m.
//! - Q8_0 (34 B): d, qs[32] as i8.
//! - Q8_1 (36 B): d, s (d times the sum of qs), qs[32] as i8.

use super::f16_le;
use crate::activation::Q8Block;

pub(crate) const Q4_0_BYTES: usize = 18;
pub(crate) const Q4_1_BYTES: usize = 20;
pub(crate) const Q5_0_BYTES: usize = 22;
pub(crate) const Q5_1_BYTES: usize = 24;
pub(crate) const Q8_0_BYTES: usize = 34;
pub(crate) const Q8_1_BYTES: usize = 36;

/// The 32 unsigned 4-bit values of `qs` in element order.
#[inline(always)]
fn nibbles(qs: &[u8]) -> [u8; 32] {
    let mut q = [0u8; 32];
    for j in 0..16 {
        q[j] = qs[j] & 0x0F;
        q[j + 16] = qs[j] >> 4;
    }
    q
}

/// The 32 unsigned 5-bit values from the low nibbles `qs` and the high bits `qh`.
#[inline(always)]
fn five_bits(qs: &[u8], qh: [u8; 4]) -> [u8; 32] {
    let high = u32::from_le_bytes(qh);
    let mut q = nibbles(qs);
    for (j, v) in q.iter_mut().enumerate() {
        *v |= (((high >> j) & 1) as u8) << 4;
    }
    q
}

/// Sum of `q[j] * a[j]` over a block of unsigned weight quants.
#[inline(always)]
fn dot_unsigned(q: &[u8; 32], a: &[i8; 32]) -> i32 {
    q.iter()
        .zip(a)
        .map(|(&q, &a)| i32::from(q) * i32::from(a))
        .sum()
}

pub(crate) fn dequantize_q4_0(src: &[u8], dst: &mut [f32]) {
    for (b, out) in src
        .as_chunks::<Q4_0_BYTES>()
        .0
        .iter()
        .zip(dst.as_chunks_mut::<32>().0)
    {
        let d = f16_le(b[0], b[1]);
        for (o, &q) in out.iter_mut().zip(&nibbles(&b[2..18])) {
            *o = (i32::from(q) - 8) as f32 * d;
        }
    }
}

pub(crate) fn dequantize_q4_1(src: &[u8], dst: &mut [f32]) {
    for (b, out) in src
        .as_chunks::<Q4_1_BYTES>()
        .0
        .iter()
        .zip(dst.as_chunks_mut::<32>().0)
    {
        let (d, m) = (f16_le(b[0], b[1]), f16_le(b[2], b[3]));
        for (o, &q) in out.iter_mut().zip(&nibbles(&b[4..20])) {
            *o = f32::from(q) * d + m;
        }
    }
}

pub(crate) fn dequantize_q5_0(src: &[u8], dst: &mut [f32]) {
    for (b, out) in src
        .as_chunks::<Q5_0_BYTES>()
        .0
        .iter()
        .zip(dst.as_chunks_mut::<32>().0)
    {
        let d = f16_le(b[0], b[1]);
        let q = five_bits(&b[6..22], [b[2], b[3], b[4], b[5]]);
        for (o, &q) in out.iter_mut().zip(&q) {
            *o = (i32::from(q) - 16) as f32 * d;
        }
    }
}

pub(crate) fn dequantize_q5_1(src: &[u8], dst: &mut [f32]) {
    for (b, out) in src
        .as_chunks::<Q5_1_BYTES>()
        .0
        .iter()
        .zip(dst.as_chunks_mut::<32>().0)
    {
        let (d, m) = (f16_le(b[0], b[1]), f16_le(b[2], b[3]));
        let q = five_bits(&b[8..24], [b[4], b[5], b[6], b[7]]);
        for (o, &q) in out.iter_mut().zip(&q) {
            *o = f32::from(q) * d + m;
        }
    }
}

pub(crate) fn dequantize_q8_0(src: &[u8], dst: &mut [f32]) {
    for (b, out) in src
        .as_chunks::<Q8_0_BYTES>()
        .0
        .iter()
        .zip(dst.as_chunks_mut::<32>().0)
    {
        let d = f16_le(b[0], b[1]);
        for (o, &q) in out.iter_mut().zip(&b[2..34]) {
            *o = f32::from(q as i8) * d;
        }
    }
}

pub(crate) fn dequantize_q8_1(src: &[u8], dst: &mut [f32]) {
    for (b, out) in src
        .as_chunks::<Q8_1_BYTES>()
        .0
        .iter()
        .zip(dst.as_chunks_mut::<32>().0)
    {
        let d = f16_le(b[0], b[1]);
        for (o, &q) in out.iter_mut().zip(&b[4..36]) {
            *o = f32::from(q as i8) * d;
        }
    }
}

// The dot products below use the activations' scaled sum to apply the weights' offsets once per
// block: sum((q - o) * d_w * a * d_a) = d_w * (d_a * sum(q * a) - o * sum_a).

pub(crate) fn dot_q4_0(w: &[u8], act: &[Q8Block]) -> f32 {
    let mut acc = 0f32;
    for (b, a) in w.as_chunks::<Q4_0_BYTES>().0.iter().zip(act) {
        let s = dot_unsigned(&nibbles(&b[2..18]), &a.qs);
        acc += f16_le(b[0], b[1]) * (a.d * s as f32 - 8.0 * a.sum);
    }
    acc
}

pub(crate) fn dot_q4_1(w: &[u8], act: &[Q8Block]) -> f32 {
    let mut acc = 0f32;
    for (b, a) in w.as_chunks::<Q4_1_BYTES>().0.iter().zip(act) {
        let s = dot_unsigned(&nibbles(&b[4..20]), &a.qs);
        acc += f16_le(b[0], b[1]) * a.d * s as f32 + f16_le(b[2], b[3]) * a.sum;
    }
    acc
}

pub(crate) fn dot_q5_0(w: &[u8], act: &[Q8Block]) -> f32 {
    let mut acc = 0f32;
    for (b, a) in w.as_chunks::<Q5_0_BYTES>().0.iter().zip(act) {
        let q = five_bits(&b[6..22], [b[2], b[3], b[4], b[5]]);
        let s = dot_unsigned(&q, &a.qs);
        acc += f16_le(b[0], b[1]) * (a.d * s as f32 - 16.0 * a.sum);
    }
    acc
}

pub(crate) fn dot_q5_1(w: &[u8], act: &[Q8Block]) -> f32 {
    let mut acc = 0f32;
    for (b, a) in w.as_chunks::<Q5_1_BYTES>().0.iter().zip(act) {
        let q = five_bits(&b[8..24], [b[4], b[5], b[6], b[7]]);
        let s = dot_unsigned(&q, &a.qs);
        acc += f16_le(b[0], b[1]) * a.d * s as f32 + f16_le(b[2], b[3]) * a.sum;
    }
    acc
}

pub(crate) fn dot_q8_0(w: &[u8], act: &[Q8Block]) -> f32 {
    let mut acc = 0f32;
    for (b, a) in w.as_chunks::<Q8_0_BYTES>().0.iter().zip(act) {
        let s: i32 = b[2..34]
            .iter()
            .zip(&a.qs)
            .map(|(&q, &y)| i32::from(q as i8) * i32::from(y))
            .sum();
        acc += f16_le(b[0], b[1]) * a.d * s as f32;
    }
    acc
}
