//! The 4-, 5- and 6-bit K-quants (Q4_K, Q5_K, Q6_K), 256 elements per block.
//!
//! - Q4_K (144 B): d, dmin, scales[12] (eight 6-bit scales and eight 6-bit mins), qs[128].
//!   In chunk `c` (0..4) of 64 elements, element `c*64 + l` is `qs[c*32 + l] & 15` and element
//!   `c*64 + 32 + l` is `qs[c*32 + l] >> 4`; sub-block `element / 32` gives scale s and min m;
//!   value = d * s * q - dmin * m.
//! - Q5_K (176 B): d, dmin, scales[12], qh[32], qs[128]; as Q4_K, plus bit `element / 32` of
//!   `qh[element % 32]` as bit 4 of q.
//! - Q6_K (210 B): ql[128], qh[64], scales[16] as i8, d. In half `n` (0..2), quarter `t` (0..4),
//!   element `n*128 + t*32 + l` has low nibble `ql[n*64 + (t%2)*32 + l] >> (4*(t/2))` and high
//!   bits `(qh[n*32 + l] >> (2*t)) & 3`; value = d * scales[element / 16] * (q - 32).

use super::{bytes_at, dot_u8_i8, f16_le, two_pass};
use crate::activation::Q8KBlock;

pub(crate) const Q4K_BYTES: usize = 144;
pub(crate) const Q5K_BYTES: usize = 176;
pub(crate) const Q6K_BYTES: usize = 210;

/// The eight 6-bit scales then the eight 6-bit mins of Q4_K and Q5_K, from their 12 packed bytes.
///
/// Scales and mins 0..4 are the low six bits of bytes 0..4 and 4..8; scales and mins 4..8 take their
/// low nibbles from bytes 8..12 and their top two bits from the top of bytes 0..4 and 4..8.
#[inline(always)]
pub(crate) fn k4_scales_mins(p: &[u8]) -> [u8; 16] {
    let word = |i: usize| u32::from_le_bytes([p[i], p[i + 1], p[i + 2], p[i + 3]]);
    let (a0, a1, a2) = (word(0), word(4), word(8));
    let words = [
        a0 & 0x3f3f_3f3f,
        (a2 & 0x0f0f_0f0f) | (((a0 >> 6) & 0x0303_0303) << 4),
        a1 & 0x3f3f_3f3f,
        ((a2 >> 4) & 0x0f0f_0f0f) | (((a1 >> 6) & 0x0303_0303) << 4),
    ];
    // Assembled in one integer rather than copied word by word: no slice copies left for the
    // SIMD callers to call out to.
    let packed = words.iter().rev().fold(0u128, |acc, &w| (acc << 32) | u128::from(w));
    packed.to_le_bytes()
}

/// The 256 unsigned 4-bit values of a Q4_K/Q5_K `qs` array, in element order.
#[inline(always)]
fn q4k_nibbles(qs: &[u8; 128]) -> [u8; 256] {
    let mut q = [0u8; 256];
    for c in 0..4 {
        for l in 0..32 {
            q[c * 64 + l] = qs[c * 32 + l] & 0x0F;
            q[c * 64 + 32 + l] = qs[c * 32 + l] >> 4;
        }
    }
    q
}

/// The 256 unsigned 5-bit Q5_K values of a block, in element order.
#[inline(always)]
fn q5k_values(b: &[u8]) -> [u8; 256] {
    let mut q = q4k_nibbles(bytes_at(b, 48));
    let qh = bytes_at::<32>(b, 16);
    for (e, v) in q.iter_mut().enumerate() {
        *v |= ((qh[e % 32] >> (e / 32)) & 1) << 4;
    }
    q
}

/// The 256 unsigned 6-bit Q6_K values (before the -32 offset), in element order.
#[inline(always)]
pub(crate) fn q6k_values(b: &[u8]) -> [u8; 256] {
    let (ql, qh) = (bytes_at::<128>(b, 0), bytes_at::<64>(b, 128));
    let mut q = [0u8; 256];
    for n in 0..2 {
        for t in 0..4 {
            for l in 0..32 {
                let low = (ql[n * 64 + (t % 2) * 32 + l] >> (4 * (t / 2))) & 0x0F;
                let high = (qh[n * 32 + l] >> (2 * t)) & 3;
                q[n * 128 + t * 32 + l] = low | (high << 4);
            }
        }
    }
    q
}

/// Writes `d * s * q - dmin * m` for the eight 32-element sub-blocks of Q4_K and Q5_K.
#[inline(always)]
fn write_scaled_with_mins(b: &[u8], q: &[u8; 256], out: &mut [f32; 256]) {
    let (d, dmin) = (f16_le(b[0], b[1]), f16_le(b[2], b[3]));
    let scales_mins = k4_scales_mins(&b[4..16]);
    let (sc, mn) = scales_mins.split_at(8);
    for (sub, (o, q)) in out.chunks_exact_mut(32).zip(q.chunks_exact(32)).enumerate() {
        let (scale, min) = (d * f32::from(sc[sub]), dmin * f32::from(mn[sub]));
        for (o, &q) in o.iter_mut().zip(q) {
            *o = scale * f32::from(q) - min;
        }
    }
}

pub(crate) fn dequantize_q4k(src: &[u8], dst: &mut [f32]) {
    for (b, out) in src.as_chunks::<Q4K_BYTES>().0.iter().zip(dst.as_chunks_mut::<256>().0) {
        write_scaled_with_mins(b, &q4k_nibbles(bytes_at(b, 16)), out);
    }
}

pub(crate) fn dequantize_q5k(src: &[u8], dst: &mut [f32]) {
    for (b, out) in src.as_chunks::<Q5K_BYTES>().0.iter().zip(dst.as_chunks_mut::<256>().0) {
        write_scaled_with_mins(b, &q5k_values(b), out);
    }
}

pub(crate) fn dequantize_q6k(src: &[u8], dst: &mut [f32]) {
    for (b, out) in src.as_chunks::<Q6K_BYTES>().0.iter().zip(dst.as_chunks_mut::<256>().0) {
        let d = f16_le(b[208], b[209]);
        let q = q6k_values(b);
        for (sub, (o, q)) in out.chunks_exact_mut(16).zip(q.chunks_exact(16)).enumerate() {
            let scale = d * f32::from(b[192 + sub] as i8);
            for (o, &q) in o.iter_mut().zip(q) {
                *o = scale * f32::from(q as i8 - 32);
            }
        }
    }
}

/// Sum over the eight 32-element sub-blocks of `scale * sum(q * a)`, and of `min * sum(a)`.
#[inline(always)]
fn scaled_sums_32(q: &[u8; 256], a: &Q8KBlock, scales_mins: &[u8; 16]) -> (i32, i32) {
    let (sc, mn) = scales_mins.split_at(8);
    let mut sum_q = 0i32;
    for ((q, y), &scale) in q.as_chunks::<32>().0.iter().zip(a.qs.as_chunks::<32>().0).zip(sc) {
        sum_q += i32::from(scale) * dot_u8_i8(q, y);
    }
    let mut sum_min = 0i32;
    for (pair, &min) in a.bsums.as_chunks::<2>().0.iter().zip(mn) {
        sum_min += i32::from(min) * (i32::from(pair[0]) + i32::from(pair[1]));
    }
    (sum_q, sum_min)
}

/// `d * sum_q - dmin * sum_min`, scaled by the activations' scale.
#[inline(always)]
fn scale_with_mins(b: &[u8], a: &Q8KBlock, (sum_q, sum_min): (i32, i32)) -> f32 {
    let (d, dmin) = (f16_le(b[0], b[1]), f16_le(b[2], b[3]));
    a.d * (d * sum_q as f32 - dmin * sum_min as f32)
}

pub(crate) fn dot_q4k(w: &[u8], act: &[Q8KBlock]) -> f32 {
    two_pass(
        w.as_chunks::<Q4K_BYTES>().0,
        act,
        |b, a| scaled_sums_32(&q4k_nibbles(bytes_at(b, 16)), a, &k4_scales_mins(&b[4..16])),
        |b, a, sums| scale_with_mins(b, a, sums),
    )
}

pub(crate) fn dot_q5k(w: &[u8], act: &[Q8KBlock]) -> f32 {
    two_pass(
        w.as_chunks::<Q5K_BYTES>().0,
        act,
        |b, a| scaled_sums_32(&q5k_values(b), a, &k4_scales_mins(&b[4..16])),
        |b, a, sums| scale_with_mins(b, a, sums),
    )
}

pub(crate) fn dot_q6k(w: &[u8], act: &[Q8KBlock]) -> f32 {
    two_pass(
        w.as_chunks::<Q6K_BYTES>().0,
        act,
        |b, a| {
            let q = q6k_values(b);
            let scales = bytes_at::<16>(b, 192);
            let mut sum = 0i32;
            for (((q, y), &bsum), &scale) in
                q.as_chunks::<16>().0.iter().zip(a.qs.as_chunks::<16>().0).zip(&a.bsums).zip(scales)
            {
                // The -32 offset folds into the activations' sum of this sub-block.
                sum += i32::from(scale as i8) * (dot_u8_i8(q, y) - 32 * i32::from(bsum));
            }
            sum
        },
        |b, a, sum| a.d * f16_le(b[208], b[209]) * sum as f32,
    )
}
