//! A deliberately plain decoder: one element at a time, straight from the format descriptions,
//! sharing no code with the kernels.

use crate::GgmlType;

fn f16(b: &[u8], at: usize) -> f32 {
    half::f16::from_le_bytes([b[at], b[at + 1]]).to_f32()
}

/// Low nibble for elements 0..16 of a 32-element block, high nibble for 16..32.
fn nibble32(qs: &[u8], e: usize) -> u32 {
    let byte = u32::from(qs[e % 16]);
    if e < 16 { byte & 15 } else { byte >> 4 }
}

/// Bit `e` of the little-endian u32 at `b[at..at + 4]`.
fn bit32(b: &[u8], at: usize, e: usize) -> u32 {
    (u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]) >> e) & 1
}

/// Two-bit quant of element `e` in the Q2_K/Q3_K layout, with its hmask index and bit.
fn two_bit(qs: &[u8], e: usize) -> (u32, usize, usize) {
    let (n, j, h, l) = (e / 128, (e % 128) / 32, (e % 32) / 16, e % 16);
    (u32::from((qs[n * 32 + h * 16 + l] >> (2 * j)) & 3), h * 16 + l, n * 4 + j)
}

/// Scale and min `j` of the Q4_K/Q5_K packed 12 bytes.
fn k4_scale_min(p: &[u8], j: usize) -> (f32, f32) {
    let (sc, m) = if j < 4 {
        (p[j] & 63, p[j + 4] & 63)
    } else {
        ((p[j + 4] & 0xF) | ((p[j - 4] >> 6) << 4), (p[j + 4] >> 4) | ((p[j] >> 6) << 4))
    };
    (f32::from(sc), f32::from(m))
}

/// Scale `i` of the Q3_K packed 12 bytes, offset removed.
fn q3k_scale(p: &[u8], i: usize) -> f32 {
    let low = if i < 8 { p[i] & 0xF } else { p[i - 8] >> 4 };
    let high = (p[8 + i % 4] >> (2 * (i / 4))) & 3;
    f32::from(low | (high << 4)) - 32.0
}

/// Element `e` of the block `b` of `ty`.
pub(crate) fn element(ty: GgmlType, b: &[u8], e: usize) -> f32 {
    match ty {
        GgmlType::F32 => f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        GgmlType::F16 => f16(b, 0),
        GgmlType::BF16 => half::bf16::from_le_bytes([b[0], b[1]]).to_f32(),
        GgmlType::Q4_0 => (nibble32(&b[2..], e) as f32 - 8.0) * f16(b, 0),
        GgmlType::Q4_1 => nibble32(&b[4..], e) as f32 * f16(b, 0) + f16(b, 2),
        GgmlType::Q5_0 => {
            let q = nibble32(&b[6..], e) | (bit32(b, 2, e) << 4);
            (q as f32 - 16.0) * f16(b, 0)
        }
        GgmlType::Q5_1 => {
            let q = nibble32(&b[8..], e) | (bit32(b, 4, e) << 4);
            q as f32 * f16(b, 0) + f16(b, 2)
        }
        GgmlType::Q8_0 => f32::from(b[2 + e] as i8) * f16(b, 0),
        GgmlType::Q8_1 => f32::from(b[4 + e] as i8) * f16(b, 0),
        GgmlType::Q2K => {
            let (q, _, _) = two_bit(&b[16..80], e);
            let sc = b[e / 16];
            f16(b, 80) * f32::from(sc & 0xF) * q as f32 - f16(b, 82) * f32::from(sc >> 4)
        }
        GgmlType::Q3K => {
            let (q, hm_at, hm_bit) = two_bit(&b[32..96], e);
            let high_set = (b[hm_at] >> hm_bit) & 1 == 1;
            let q = q as f32 - if high_set { 0.0 } else { 4.0 };
            f16(b, 108) * q3k_scale(&b[96..108], e / 16) * q
        }
        GgmlType::Q4K | GgmlType::Q5K => {
            let qs_at = if ty == GgmlType::Q4K { 16 } else { 48 };
            let (c, within) = (e / 64, e % 64);
            let byte = b[qs_at + c * 32 + within % 32];
            let mut q = if within < 32 { byte & 0xF } else { byte >> 4 };
            if ty == GgmlType::Q5K {
                q |= ((b[16 + e % 32] >> (e / 32)) & 1) << 4;
            }
            let (sc, m) = k4_scale_min(&b[4..16], e / 32);
            f16(b, 0) * sc * f32::from(q) - f16(b, 2) * m
        }
        GgmlType::Q6K => {
            let (n, t, l) = (e / 128, (e % 128) / 32, e % 32);
            let low = (b[n * 64 + (t % 2) * 32 + l] >> (4 * (t / 2))) & 0xF;
            let high = (b[128 + n * 32 + l] >> (2 * t)) & 3;
            let q = f32::from(low | (high << 4)) - 32.0;
            f16(b, 208) * f32::from(b[192 + e / 16] as i8) * q
        }
        GgmlType::Q8K => f32::from_le_bytes([b[0], b[1], b[2], b[3]]) * f32::from(b[4 + e] as i8),
    }
}

/// Every element of `bytes`, decoded one at a time.
pub(crate) fn decode(ty: GgmlType, bytes: &[u8]) -> Vec<f32> {
    bytes.chunks_exact(ty.type_size()).flat_map(|b| (0..ty.block_size()).map(move |e| element(ty, b, e))).collect()
}
