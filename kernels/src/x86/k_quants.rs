//! AVX2 dot products for Q4_K, Q5_K and Q6_K against `Q8KBlock` activations.
//!
//! Weight quants stay unsigned for `maddubs`; the per-sub-block scales multiply the i16 pair sums
//! in `madd`, and mins (Q4_K, Q5_K) or the -32 offset (Q6_K) are applied once per block through the
//! activations' sixteen-element sums. As for the 32-element formats, each kernel has a one-row and
//! a four-row form, the latter unpacking each weight block once for four activation rows.

use std::arch::x86_64::*;

use super::{PREFETCH_BYTES, f16_pair, hsum_ps, load_i8x32, load16, load32};
use crate::activation::Q8KBlock;
use crate::quant::k_high::{Q4K_BYTES, Q5K_BYTES, Q6K_BYTES, k4_scales_mins};

/// The activation quants `at..at + 32`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn act32(a: &Q8KBlock, at: usize) -> __m256i {
    match a.qs[at..].first_chunk::<32>() {
        Some(q) => load_i8x32(q),
        None => _mm256_setzero_si256(),
    }
}

/// `pshufb` controls that put i8 `2t` in bytes 0..8 and i8 `2t + 1` in bytes 8..16.
const PAIR_I8: [[u8; 16]; 8] = {
    let mut table = [[0u8; 16]; 8];
    let mut t = 0;
    while t < 8 {
        let mut i = 0;
        while i < 8 {
            table[t][i] = 2 * t as u8;
            table[t][i + 8] = 2 * t as u8 + 1;
            i += 1;
        }
        t += 1;
    }
    table
};

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn pair_control(i: usize) -> __m128i {
    // SAFETY: each row is 16 bytes.
    unsafe { _mm_loadu_si128(PAIR_I8[i].as_ptr().cast()) }
}

/// The activations' sixteen-element sums.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn bsums(a: &Q8KBlock) -> __m256i {
    // SAFETY: bsums is 16 i16, 32 bytes.
    unsafe { _mm256_loadu_si256(a.bsums.as_ptr().cast()) }
}

/// Adds `d * a.d * sum` to `acc`, with `d` already in every lane.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn accumulate(acc: __m256, d: __m256, a: &Q8KBlock, sum: __m256i) -> __m256 {
    _mm256_fmadd_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(sum), _mm256_set1_ps(a.d)), d, acc)
}

/// The f32 at `v[0..8]`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn load_f32x8(v: &[f32; 8]) -> __m256 {
    // SAFETY: the array is 8 floats.
    unsafe { _mm256_loadu_ps(v.as_ptr()) }
}

/// Asks for the cache lines `PREFETCH_BYTES` after the block `b` when `R` is 1 (decode).
#[inline(always)]
fn prefetch_ahead<const BYTES: usize, const R: usize>(b: &[u8; BYTES]) {
    if R != 1 {
        return;
    }
    let p = b.as_ptr().wrapping_add(PREFETCH_BYTES);
    let mut line = 0;
    while line < BYTES {
        // SAFETY: prefetching is a hint; it never faults, whatever the address.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(line).cast()) };
        line += 64;
    }
}

/// Q4_K (`FIVE` false) or Q5_K (`FIVE` true) row against `R` activation rows.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn k4_rows<const BYTES: usize, const R: usize, const FIVE: bool>(w: &[u8], acts: [&[Q8KBlock]; R]) -> [f32; R] {
    let low = _mm256_set1_epi8(0x0F);
    let blocks = w.as_chunks::<BYTES>().0;
    let count = acts.iter().fold(blocks.len(), |n, a| n.min(a.len()));
    let acts = acts.map(|a| &a[..count]);
    let mut acc = [_mm256_setzero_ps(); R];
    let qs_at = if FIVE { 48 } else { 16 };
    for (i, b) in blocks[..count].iter().enumerate() {
        prefetch_ahead::<BYTES, R>(b);
        let packed = k4_scales_mins(&b[4..16]);
        let d_dmin = f16_pair(u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        let d = _mm256_broadcastss_ps(d_dmin);
        // dmin times each sub-block's min: the weight side of the min term.
        // SAFETY: `packed` is 16 bytes; the mins are bytes 8..16.
        let mins = _mm256_cvtepu8_epi32(_mm_srli_si128::<8>(unsafe { load16(&packed, 0) }));
        let weighted_mins = _mm256_mul_ps(_mm256_broadcastss_ps(_mm_movehdup_ps(d_dmin)), _mm256_cvtepi32_ps(mins));
        // SAFETY (loads below): the block has BYTES bytes (176 for Q5_K, whose qh is bytes 16..48);
        // chunk c's quants are bytes qs_at + 32c .. qs_at + 32c + 32, inside the block.
        let mut qh = if FIVE { unsafe { load32(b, 16) } } else { _mm256_setzero_si256() };
        let mut sum = [_mm256_setzero_si256(); R];
        for c in 0..4 {
            let bits = unsafe { load32(b, qs_at + 32 * c) };
            let mut lo = _mm256_and_si256(bits, low);
            let mut hi = _mm256_and_si256(_mm256_srli_epi16::<4>(bits), low);
            if FIVE {
                // Bits 2c and 2c+1 of qh, shifted down to bits 0 and 1 so far, become bit 4.
                lo = _mm256_or_si256(lo, _mm256_slli_epi16::<4>(_mm256_and_si256(qh, _mm256_set1_epi8(1))));
                hi = _mm256_or_si256(hi, _mm256_slli_epi16::<3>(_mm256_and_si256(qh, _mm256_set1_epi8(2))));
                qh = _mm256_srli_epi16::<2>(qh);
            }
            let scale_lo = _mm256_set1_epi16(i16::from(packed[2 * c]));
            let scale_hi = _mm256_set1_epi16(i16::from(packed[2 * c + 1]));
            for r in 0..R {
                let a = &acts[r][i];
                let p_lo = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, act32(a, 64 * c)), scale_lo);
                let p_hi = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, act32(a, 64 * c + 32)), scale_hi);
                sum[r] = _mm256_add_epi32(sum[r], _mm256_add_epi32(p_lo, p_hi));
            }
        }
        for r in 0..R {
            let a = &acts[r][i];
            let acc_r = accumulate(acc[r], d, a, sum[r]);
            acc[r] = _mm256_fnmadd_ps(weighted_mins, load_f32x8(&a.scaled_sums_32), acc_r);
        }
    }
    acc.map(|v| hsum_ps(v))
}

/// Q6_K row against `R` activation rows.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn q6k_rows<const R: usize>(w: &[u8], acts: [&[Q8KBlock]; R]) -> [f32; R] {
    let low = _mm256_set1_epi8(0x0F);
    let blocks = w.as_chunks::<Q6K_BYTES>().0;
    let count = acts.iter().fold(blocks.len(), |n, a| n.min(a.len()));
    let acts = acts.map(|a| &a[..count]);
    let mut acc = [_mm256_setzero_ps(); R];
    for (i, b) in blocks[..count].iter().enumerate() {
        prefetch_ahead::<Q6K_BYTES, R>(b);
        // SAFETY: the block has 210 bytes; the i8 scales are bytes 192..208.
        let scales = unsafe { load16(b, 192) };
        let scales16 = _mm256_cvtepi8_epi16(scales);
        let mut sum = [_mm256_setzero_si256(); R];
        for n in 0..2 {
            // SAFETY: ql is bytes 0..128 and qh bytes 128..192 of the 210.
            let (ql0, ql1, qh) = unsafe { (load32(b, 64 * n), load32(b, 64 * n + 32), load32(b, 128 + 32 * n)) };
            let quarters = [
                _mm256_or_si256(
                    _mm256_and_si256(ql0, low),
                    _mm256_slli_epi16::<4>(_mm256_and_si256(qh, _mm256_set1_epi8(0x03))),
                ),
                _mm256_or_si256(
                    _mm256_and_si256(ql1, low),
                    _mm256_slli_epi16::<2>(_mm256_and_si256(qh, _mm256_set1_epi8(0x0C))),
                ),
                _mm256_or_si256(
                    _mm256_and_si256(_mm256_srli_epi16::<4>(ql0), low),
                    _mm256_and_si256(qh, _mm256_set1_epi8(0x30)),
                ),
                _mm256_or_si256(
                    _mm256_and_si256(_mm256_srli_epi16::<4>(ql1), low),
                    _mm256_srli_epi16::<2>(_mm256_and_si256(qh, _mm256_set1_epi8(0xC0_u8 as i8))),
                ),
            ];
            for (t, q) in quarters.into_iter().enumerate() {
                // Lanes 0..8 take the scale of the quarter's first sixteen, lanes 8..16 the second's.
                let scale = _mm256_cvtepi8_epi16(_mm_shuffle_epi8(scales, pair_control(4 * n + t)));
                for r in 0..R {
                    let p = _mm256_maddubs_epi16(q, act32(&acts[r][i], 128 * n + 32 * t));
                    sum[r] = _mm256_add_epi32(sum[r], _mm256_madd_epi16(p, scale));
                }
            }
        }
        let d = _mm256_broadcastss_ps(f16_pair(u32::from(u16::from_le_bytes([b[208], b[209]]))));
        for r in 0..R {
            let a = &acts[r][i];
            // The -32 offset of every quant, as 32 * scale * sum(activations) per sub-block.
            let offset = _mm256_slli_epi32::<5>(_mm256_madd_epi16(bsums(a), scales16));
            acc[r] = accumulate(acc[r], d, a, _mm256_sub_epi32(sum[r], offset));
        }
    }
    acc.map(|v| hsum_ps(v))
}

#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn dot_q4k(w: &[u8], act: &[Q8KBlock]) -> f32 {
    k4_rows::<Q4K_BYTES, 1, false>(w, [act])[0]
}

#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn dot_q4k_x4(w: &[u8], acts: [&[Q8KBlock]; 4]) -> [f32; 4] {
    k4_rows::<Q4K_BYTES, 4, false>(w, acts)
}

#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn dot_q5k(w: &[u8], act: &[Q8KBlock]) -> f32 {
    k4_rows::<Q5K_BYTES, 1, true>(w, [act])[0]
}

#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn dot_q5k_x4(w: &[u8], acts: [&[Q8KBlock]; 4]) -> [f32; 4] {
    k4_rows::<Q5K_BYTES, 4, true>(w, acts)
}

#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn dot_q6k(w: &[u8], act: &[Q8KBlock]) -> f32 {
    q6k_rows::<1>(w, [act])[0]
}

#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn dot_q6k_x4(w: &[u8], acts: [&[Q8KBlock]; 4]) -> [f32; 4] {
    q6k_rows::<4>(w, acts)
}
