//! AVX2 dot products for Q4_K, Q5_K and Q6_K against `Q8KBlock` activations.
//!
//! Weight quants stay unsigned for `maddubs`; the per-sub-block scales multiply the i16 pair sums
//! in `madd`, and mins (Q4_K, Q5_K) or the -32 offset (Q6_K) are applied once per block through the
//! activations' sixteen-element sums.

use std::arch::x86_64::*;

use super::{f16_to_f32, hsum_epi32_128, hsum_ps, load_i8x32, load16, load32};
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

/// `pshufb` controls that broadcast i16 lane `s` of a 128-bit register to all eight lanes.
const BROADCAST_I16: [[u8; 16]; 8] = {
    let mut table = [[0u8; 16]; 8];
    let mut s = 0;
    while s < 8 {
        let mut i = 0;
        while i < 8 {
            table[s][2 * i] = 2 * s as u8;
            table[s][2 * i + 1] = 2 * s as u8 + 1;
            i += 1;
        }
        s += 1;
    }
    table
};

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
fn control(table: &[[u8; 16]; 8], i: usize) -> __m128i {
    // SAFETY: each row is 16 bytes.
    unsafe { _mm_loadu_si128(table[i].as_ptr().cast()) }
}

/// Q4_K/Q5_K block header: the scales as a 256-bit register holding the eight i16 scales in both
/// halves, and the sum over sub-blocks of `min * sum(activations)`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn k4_header(b: &[u8], a: &Q8KBlock) -> (__m256i, i32) {
    let packed = k4_scales_mins(&b[4..16]);
    // SAFETY: `packed` is 16 bytes.
    let wide = _mm256_cvtepu8_epi16(unsafe { load16(&packed, 0) });
    let scales = _mm256_broadcastsi128_si256(_mm256_castsi256_si128(wide));
    let mins = _mm256_extracti128_si256::<1>(wide);
    // SAFETY: bsums is 16 i16, 32 bytes.
    let bsums = unsafe { _mm256_loadu_si256(a.bsums.as_ptr().cast()) };
    let pair_sums = _mm_hadd_epi16(
        _mm256_castsi256_si128(bsums),
        _mm256_extracti128_si256::<1>(bsums),
    );
    (scales, hsum_epi32_128(_mm_madd_epi16(mins, pair_sums)))
}

/// Scaled sum of one 32-element sub-block: `scale[s] * sum(q * a)` in eight i32 lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn scaled_sub(q: __m256i, act: __m256i, scales: __m256i, s: usize) -> __m256i {
    let scale = _mm256_shuffle_epi8(
        scales,
        _mm256_broadcastsi128_si256(control(&BROADCAST_I16, s)),
    );
    _mm256_madd_epi16(_mm256_maddubs_epi16(q, act), scale)
}

#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn dot_q4k(w: &[u8], act: &[Q8KBlock]) -> f32 {
    let low = _mm256_set1_epi8(0x0F);
    let mut acc = _mm256_setzero_ps();
    let mut acc_min = 0f32;
    for (b, a) in w.as_chunks::<Q4K_BYTES>().0.iter().zip(act) {
        let (scales, min_sum) = k4_header(b, a);
        let mut sum = _mm256_setzero_si256();
        for c in 0..4 {
            // SAFETY: the block has 144 bytes; chunk c's quants are bytes 16 + 32c .. 48 + 32c.
            let bits = unsafe { load32(b, 16 + 32 * c) };
            let lo = _mm256_and_si256(bits, low);
            let hi = _mm256_and_si256(_mm256_srli_epi16::<4>(bits), low);
            sum = _mm256_add_epi32(sum, scaled_sub(lo, act32(a, 64 * c), scales, 2 * c));
            sum = _mm256_add_epi32(
                sum,
                scaled_sub(hi, act32(a, 64 * c + 32), scales, 2 * c + 1),
            );
        }
        let d = f16_to_f32(b[0], b[1]) * a.d;
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sum), acc);
        acc_min += f16_to_f32(b[2], b[3]) * a.d * min_sum as f32;
    }
    hsum_ps(acc) - acc_min
}

#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn dot_q5k(w: &[u8], act: &[Q8KBlock]) -> f32 {
    let low = _mm256_set1_epi8(0x0F);
    let bit0 = _mm256_set1_epi8(1);
    let bit1 = _mm256_set1_epi8(2);
    let mut acc = _mm256_setzero_ps();
    let mut acc_min = 0f32;
    for (b, a) in w.as_chunks::<Q5K_BYTES>().0.iter().zip(act) {
        let (scales, min_sum) = k4_header(b, a);
        // SAFETY: the block has 176 bytes; qh is bytes 16..48.
        let mut qh = unsafe { load32(b, 16) };
        let mut sum = _mm256_setzero_si256();
        for c in 0..4 {
            // SAFETY: chunk c's low quants are bytes 48 + 32c .. 80 + 32c of the 176.
            let bits = unsafe { load32(b, 48 + 32 * c) };
            // Bits 2c and 2c+1 of qh, already shifted down to bits 0 and 1, become bit 4.
            let lo_high = _mm256_slli_epi16::<4>(_mm256_and_si256(qh, bit0));
            let hi_high = _mm256_slli_epi16::<3>(_mm256_and_si256(qh, bit1));
            let lo = _mm256_or_si256(_mm256_and_si256(bits, low), lo_high);
            let hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16::<4>(bits), low), hi_high);
            sum = _mm256_add_epi32(sum, scaled_sub(lo, act32(a, 64 * c), scales, 2 * c));
            sum = _mm256_add_epi32(
                sum,
                scaled_sub(hi, act32(a, 64 * c + 32), scales, 2 * c + 1),
            );
            qh = _mm256_srli_epi16::<2>(qh);
        }
        let d = f16_to_f32(b[0], b[1]) * a.d;
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sum), acc);
        acc_min += f16_to_f32(b[2], b[3]) * a.d * min_sum as f32;
    }
    hsum_ps(acc) - acc_min
}

#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn dot_q6k(w: &[u8], act: &[Q8KBlock]) -> f32 {
    let low = _mm256_set1_epi8(0x0F);
    let mut acc = _mm256_setzero_ps();
    for (b, a) in w.as_chunks::<Q6K_BYTES>().0.iter().zip(act) {
        // SAFETY: the block has 210 bytes; the i8 scales are bytes 192..208.
        let scales = unsafe { load16(b, 192) };
        // SAFETY: bsums is 16 i16, 32 bytes.
        let bsums = unsafe { _mm256_loadu_si256(a.bsums.as_ptr().cast()) };
        // The -32 offset of every quant, as 32 * scale * sum(activations) per sub-block.
        let offset = _mm256_slli_epi32::<5>(_mm256_madd_epi16(bsums, _mm256_cvtepi8_epi16(scales)));
        let mut sum = _mm256_setzero_si256();
        for n in 0..2 {
            // SAFETY: ql is bytes 0..128 and qh bytes 128..192 of the 210.
            let (ql0, ql1, qh) = unsafe {
                (
                    load32(b, 64 * n),
                    load32(b, 64 * n + 32),
                    load32(b, 128 + 32 * n),
                )
            };
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
                let p = _mm256_maddubs_epi16(q, act32(a, 128 * n + 32 * t));
                let scale =
                    _mm256_cvtepi8_epi16(_mm_shuffle_epi8(scales, control(&PAIR_I8, 4 * n + t)));
                sum = _mm256_add_epi32(sum, _mm256_madd_epi16(p, scale));
            }
        }
        sum = _mm256_sub_epi32(sum, offset);
        let d = f16_to_f32(b[208], b[209]) * a.d;
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sum), acc);
    }
    hsum_ps(acc)
}
