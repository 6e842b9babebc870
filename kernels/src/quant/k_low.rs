//! The 2- and 3-bit K-quants (Q2_K, Q3_K) and the Q8_K activation format, 256 elements per block.
//!
//! Both low-bit formats split a block into two halves of 128 elements. In half `n`, shift `j`
//! (0..4) and sixteen-run `h` (0..2), element `n*128 + j*32 + h*16 + l` takes its two bits from
//! `qs[n*32 + h*16 + l] >> (2*j)`; its sub-block (scale index) is `element / 16`.
//! - Q2_K (84 B): scales[16] (low nibble scale, high nibble min), qs[64], d, dmin;
//!   value = d * scale * q - dmin * min.
//! - Q3_K (110 B): hmask[32], qs[64], scales[12] (sixteen 6-bit scales, stored with an offset of
//!   32), d; the element's bit `n*4 + j` of `hmask[h*16 + l]` clear means q - 4;
//!   value = d * (scale - 32) * q.
//! - Q8_K (292 B): d as f32, qs[256] as i8, bsums[16] as i16.

use super::{bytes_at, dot_s8_i8, dot_u8_i8, f16_le, two_pass};
use crate::activation::Q8KBlock;

pub(crate) const Q2K_BYTES: usize = 84;
pub(crate) const Q3K_BYTES: usize = 110;
pub(crate) const Q8K_BYTES: usize = 292;

/// The sixteen Q3_K scales, with their storage offset of 32 removed.
#[inline(always)]
pub(crate) fn q3k_scales(packed: &[u8; 12]) -> [i8; 16] {
    let mut out = [0i8; 16];
    for (i, s) in out.iter_mut().enumerate() {
        let low = (packed[i % 8] >> (4 * (i / 8))) & 0x0F;
        let high = (packed[8 + i % 4] >> (2 * (i / 4))) & 0x03;
        *s = ((low | (high << 4)) as i8) - 32;
    }
    out
}

/// The 256 unsigned 2-bit values of a Q2_K/Q3_K `qs` array, in element order.
#[inline(always)]
fn two_bits(qs: &[u8; 64]) -> [u8; 256] {
    let mut q = [0u8; 256];
    for n in 0..2 {
        for j in 0..4 {
            for l in 0..32 {
                q[n * 128 + j * 32 + l] = (qs[n * 32 + l] >> (2 * j)) & 3;
            }
        }
    }
    q
}

/// The 256 signed Q3_K values (-4..=3) of a block, in element order.
#[inline(always)]
fn q3k_values(b: &[u8; Q3K_BYTES]) -> [i8; 256] {
    let q = two_bits(bytes_at(b, 32));
    let mut out = [0i8; 256];
    for n in 0..2 {
        for j in 0..4 {
            let bit = 1u8 << (n * 4 + j);
            for (l, &hmask) in b[..32].iter().enumerate() {
                let e = n * 128 + j * 32 + l;
                let minus = if hmask & bit == 0 { 4 } else { 0 };
                out[e] = q[e] as i8 - minus;
            }
        }
    }
    out
}

pub(crate) fn dequantize_q2k(src: &[u8], dst: &mut [f32]) {
    for (b, out) in src.as_chunks::<Q2K_BYTES>().0.iter().zip(dst.as_chunks_mut::<256>().0) {
        let (d, dmin) = (f16_le(b[80], b[81]), f16_le(b[82], b[83]));
        let q = two_bits(bytes_at(b, 16));
        for (sub, (o, q)) in out.chunks_exact_mut(16).zip(q.chunks_exact(16)).enumerate() {
            let scale = d * f32::from(b[sub] & 0x0F);
            let min = dmin * f32::from(b[sub] >> 4);
            for (o, &q) in o.iter_mut().zip(q) {
                *o = scale * f32::from(q) - min;
            }
        }
    }
}

pub(crate) fn dequantize_q3k(src: &[u8], dst: &mut [f32]) {
    for (b, out) in src.as_chunks::<Q3K_BYTES>().0.iter().zip(dst.as_chunks_mut::<256>().0) {
        let d = f16_le(b[108], b[109]);
        let scales = q3k_scales(bytes_at(b, 96));
        let q = q3k_values(b);
        for ((o, q), &s) in out.chunks_exact_mut(16).zip(q.chunks_exact(16)).zip(&scales) {
            let scale = d * f32::from(s);
            for (o, &q) in o.iter_mut().zip(q) {
                *o = scale * f32::from(q);
            }
        }
    }
}

pub(crate) fn dequantize_q8k(src: &[u8], dst: &mut [f32]) {
    for (b, out) in src.as_chunks::<Q8K_BYTES>().0.iter().zip(dst.as_chunks_mut::<256>().0) {
        let d = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        for (o, &q) in out.iter_mut().zip(&b[4..260]) {
            *o = d * f32::from(q as i8);
        }
    }
}

pub(crate) fn dot_q2k(w: &[u8], act: &[Q8KBlock]) -> f32 {
    two_pass(
        w.as_chunks::<Q2K_BYTES>().0,
        act,
        |b, a| {
            let q = two_bits(bytes_at(b, 16));
            let scales = bytes_at::<16>(b, 0);
            let mut sum_q = 0i32;
            let mut sum_min = 0i32;
            for (((q, y), &bsum), &sc) in
                q.as_chunks::<16>().0.iter().zip(a.qs.as_chunks::<16>().0).zip(&a.bsums).zip(scales)
            {
                sum_q += i32::from(sc & 0x0F) * dot_u8_i8(q, y);
                sum_min += i32::from(sc >> 4) * i32::from(bsum);
            }
            (sum_q, sum_min)
        },
        |b, a, (sum_q, sum_min)| {
            let (d, dmin) = (f16_le(b[80], b[81]), f16_le(b[82], b[83]));
            a.d * (d * sum_q as f32 - dmin * sum_min as f32)
        },
    )
}

pub(crate) fn dot_q3k(w: &[u8], act: &[Q8KBlock]) -> f32 {
    two_pass(
        w.as_chunks::<Q3K_BYTES>().0,
        act,
        |b, a| {
            let scales = q3k_scales(bytes_at(b, 96));
            let q = q3k_values(b);
            let mut sum = 0i32;
            for ((q, y), &scale) in q.as_chunks::<16>().0.iter().zip(a.qs.as_chunks::<16>().0).zip(&scales) {
                sum += i32::from(scale) * dot_s8_i8(q, y);
            }
            sum
        },
        |b, a, sum| a.d * f16_le(b[108], b[109]) * sum as f32,
    )
}
