//! Packing one group of sixteen rows of each type into the layouts `crate::packed` documents.

use super::{
    Q4K_GROUP_BYTES, Q4K_GROUP_DMIN, Q4K_GROUP_QS, Q4K_GROUP_SCALES, Q6K_GROUP_BYTES, Q6K_GROUP_QH, Q6K_GROUP_QL,
    Q6K_GROUP_SCALES, Q8_0_GROUP_BYTES, nibble_group_bytes, nibble_group_qh, nibble_group_qs,
};
use crate::quant::k_high::{Q4K_BYTES, Q6K_BYTES};
use crate::quant::legacy::Q8_0_BYTES;

/// Packs sixteen consecutive Q4_K rows (`rows`, `row_bytes` each) into `dst`.
pub(super) fn pack_q4k_group(rows: &[u8], row_bytes: usize, dst: &mut [u8]) {
    for (i, out) in dst.chunks_exact_mut(Q4K_GROUP_BYTES).enumerate() {
        for (r, row) in rows.chunks_exact(row_bytes).enumerate() {
            let Some(src) = row.get(i * Q4K_BYTES..).and_then(|b| b.first_chunk::<Q4K_BYTES>()) else { continue };
            out[2 * r..2 * r + 2].copy_from_slice(&src[0..2]);
            out[Q4K_GROUP_DMIN + 2 * r..Q4K_GROUP_DMIN + 2 * r + 2].copy_from_slice(&src[2..4]);
            for (j, &byte) in src[4..16].iter().enumerate() {
                out[Q4K_GROUP_SCALES + 16 * j + r] = byte;
            }
            for c in 0..4 {
                for t in 0..8 {
                    let at = Q4K_GROUP_QS + (8 * c + t) * 64 + 4 * r;
                    let from = 16 + 32 * c + 4 * t;
                    out[at..at + 4].copy_from_slice(&src[from..from + 4]);
                }
            }
        }
    }
}

/// Four bytes of `src` at `at`, little-endian.
#[inline(always)]
fn u32_at<const N: usize>(src: &[u8; N], at: usize) -> u32 {
    u32::from_le_bytes([src[at], src[at + 1], src[at + 2], src[at + 3]])
}

/// Four bytes whose low nibbles are `a`'s and high nibbles `b`'s, both taken from their low
/// nibbles (`upper` false) or their high nibbles (`upper` true).
#[inline(always)]
fn merge_nibbles(a: u32, b: u32, upper: bool) -> u32 {
    const LOW: u32 = 0x0F0F_0F0F;
    if upper { ((a >> 4) & LOW) | (b & !LOW) } else { (a & LOW) | ((b & LOW) << 4) }
}

/// Packs sixteen consecutive Q6_K rows (`rows`, `row_bytes` each) into `dst`.
///
/// Straight from the block's bytes, without decoding its 256 values: element `64 c + o` (o < 32)
/// has its low bits in nibble `c % 2` of `ql[64 (c / 2) + o]` and element `64 c + 32 + o` in the
/// same nibble of `ql[64 (c / 2) + 32 + o]`; their high two bits are, in that order, the same
/// nibble of `qh[32 (c / 2) + o]`. So each packed run of four bytes merges nibbles of two
/// four-byte words of `ql` (low bits) or of `qh` (high bits).
pub(super) fn pack_q6k_group(rows: &[u8], row_bytes: usize, dst: &mut [u8]) {
    for (i, out) in dst.chunks_exact_mut(Q6K_GROUP_BYTES).enumerate() {
        for (r, row) in rows.chunks_exact(row_bytes).enumerate() {
            let Some(src) = row.get(i * Q6K_BYTES..).and_then(|b| b.first_chunk::<Q6K_BYTES>()) else { continue };
            out[2 * r..2 * r + 2].copy_from_slice(&src[208..210]);
            for s in 0..16 {
                out[Q6K_GROUP_SCALES + 16 * s + r] = src[192 + s];
            }
            for c in 0..4 {
                let (ql, qh, upper) = (64 * (c / 2), 128 + 32 * (c / 2), c % 2 == 1);
                for t in 0..8 {
                    let low = merge_nibbles(u32_at(src, ql + 4 * t), u32_at(src, ql + 32 + 4 * t), upper);
                    let at = Q6K_GROUP_QL + (8 * c + t) * 64 + 4 * r;
                    out[at..at + 4].copy_from_slice(&low.to_le_bytes());
                }
                for u in 0..4 {
                    let high = merge_nibbles(u32_at(src, qh + 8 * u), u32_at(src, qh + 8 * u + 4), upper);
                    let at = Q6K_GROUP_QH + (4 * c + u) * 64 + 4 * r;
                    out[at..at + 4].copy_from_slice(&high.to_le_bytes());
                }
            }
        }
    }
}

/// Packs sixteen consecutive rows (`rows`, `row_bytes` each) of the nibble format with a
/// minimum `MIN` and fifth bits `FIFTH` into `dst`.
pub(super) fn pack_nibble_group<const MIN: bool, const FIFTH: bool>(rows: &[u8], row_bytes: usize, dst: &mut [u8]) {
    // The original block: d, then m, then the fifth bits as a little-endian u32, then the nibbles.
    let src_qh = if MIN { 4 } else { 2 };
    let src_qs = src_qh + if FIFTH { 4 } else { 0 };
    let src_bytes = src_qs + 16;
    let (qh_at, qs_at) = (nibble_group_qh(MIN), nibble_group_qs(MIN, FIFTH));
    for (i, out) in dst.chunks_exact_mut(nibble_group_bytes(MIN, FIFTH)).enumerate() {
        for (r, row) in rows.chunks_exact(row_bytes).enumerate() {
            let Some(src) = row.get(i * src_bytes..(i + 1) * src_bytes) else { continue };
            out[2 * r..2 * r + 2].copy_from_slice(&src[0..2]);
            if MIN {
                out[32 + 2 * r..32 + 2 * r + 2].copy_from_slice(&src[2..4]);
            }
            if FIFTH {
                let qh = u32::from_le_bytes([src[src_qh], src[src_qh + 1], src[src_qh + 2], src[src_qh + 3]]);
                let fifth = |e: usize| ((qh >> e) & 1) as u8;
                for j in 0..4 {
                    out[qh_at + 4 * r + j] =
                        (0..4).fold(0, |b, t| b | fifth(4 * t + j) << (2 * t) | fifth(16 + 4 * t + j) << (2 * t + 1));
                }
            }
            for t in 0..4 {
                let at = qs_at + 64 * t + 4 * r;
                out[at..at + 4].copy_from_slice(&src[src_qs + 4 * t..src_qs + 4 * t + 4]);
            }
        }
    }
}

/// Packs sixteen consecutive Q8_0 rows (`rows`, `row_bytes` each) into `dst`.
pub(super) fn pack_q8_0_group(rows: &[u8], row_bytes: usize, dst: &mut [u8]) {
    for (i, out) in dst.chunks_exact_mut(Q8_0_GROUP_BYTES).enumerate() {
        for (r, row) in rows.chunks_exact(row_bytes).enumerate() {
            let Some(src) = row.get(i * Q8_0_BYTES..(i + 1) * Q8_0_BYTES) else { continue };
            out[2 * r..2 * r + 2].copy_from_slice(&src[0..2]);
            for t in 0..8 {
                let at = 32 + 64 * t + 4 * r;
                for (o, &q) in out[at..at + 4].iter_mut().zip(&src[2 + 4 * t..6 + 4 * t]) {
                    *o = q ^ 0x80;
                }
            }
        }
    }
}
