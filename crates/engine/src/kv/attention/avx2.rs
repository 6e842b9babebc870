//! The block steps with AVX2, F16C and FMA, for blocks of 16 positions (two registers of scores per
//! query) and head dimensions divisible by 8: what most laptops run. Each step does, lane by
//! lane, exactly the operations of `portable.rs` in the same order, so the two give bit-identical
//! results. With 16 registers, scores take three queries a pass over one half of the block, and
//! values up to four queries a pass; keys and values are widened in registers as they are read.

use std::arch::x86_64::*;
use std::ops::Range;

use hearth_kernels::InstructionSet;

use super::portable::{EXP_MIN, EXP_POLY, LN2_HI, LN2_LO, ROUND, exp_neg};
use super::{BlockOps, PARTS, ValueRun, assert_scores_fit};

/// Positions per block this path handles.
const BLOCK: usize = 16;

/// f32 lanes per register.
const LANES: usize = 8;

/// Most queries scored in one pass: four partial sums each, 12 of the 16 registers.
const SCORE_PASS: usize = 3;

/// Most queries whose values are weighed in one pass.
const WEIGH_PASS: usize = 4;

/// Proof that the CPU has AVX2, F16C and FMA; only [`Avx2::detect`] makes one.
pub(super) struct Avx2(());

impl Avx2 {
    /// The AVX2 steps, where the CPU has them (and `HEARTH_SIMD` names no lower path)
    /// and blocks of `block` positions with heads of `head_dim` dimensions fit them.
    pub(super) fn detect(block: usize, head_dim: usize) -> Option<Self> {
        let fits = block == BLOCK && head_dim.is_multiple_of(LANES) && head_dim > 0;
        (fits && hearth_kernels::simd_allowed(InstructionSet::Avx2F16cFma)).then_some(Self(()))
    }
}

impl BlockOps for Avx2 {
    #[inline(always)]
    fn scores(&mut self, qs: &[&[f32]], kt: &[half::f16], bs: usize, scale: f32, out: &mut [f32]) {
        assert_scores_fit(qs, kt, bs, BLOCK, out);
        for (qs, out) in qs.chunks(SCORE_PASS).zip(out.chunks_mut(SCORE_PASS * BLOCK)) {
            for half in 0..2 {
                // SAFETY: a `Avx2` exists only where the CPU has AVX2, F16C and FMA; lengths checked above.
                unsafe {
                    match *qs {
                        [a, b, c] => scores_n([a, b, c], kt, half, scale, out),
                        [a, b] => scores_n([a, b], kt, half, scale, out),
                        [a] => scores_n([a], kt, half, scale, out),
                        _ => {}
                    }
                }
            }
        }
    }

    #[inline(always)]
    fn softmax(&mut self, max: &mut f32, sums: &mut [f32], scores: &mut [f32], live: Range<usize>) -> Option<f32> {
        assert!(scores.len() == BLOCK && sums.len() == BLOCK && live.start < live.end && live.end <= BLOCK);
        // SAFETY: an `Avx2` exists only where the CPU has AVX2.
        unsafe { softmax(max, sums, scores, live) }
    }

    #[inline(always)]
    fn weigh(&mut self, run: ValueRun<'_>) {
        run.assert_fits(BLOCK, LANES);
        for w in run.passes(WEIGH_PASS) {
            // SAFETY: an `Avx2` exists only where the CPU has AVX2, F16C and FMA; bounds checked above.
            // Eight independent chains of adds where the queries allow, to cover their latency.
            unsafe {
                match w.queries() {
                    1 => weigh_n::<1, 8>(w),
                    2 => weigh_n::<2, 4>(w),
                    3 => weigh_n::<3, 2>(w),
                    _ => weigh_n::<4, 2>(w),
                }
            }
        }
    }
}

/// Eight f16 at `p`, widened.
///
/// # Safety
/// `p` must point at eight readable f16; the CPU must have AVX2 and F16C.
#[target_feature(enable = "avx2,f16c")]
#[inline]
unsafe fn load_f16(p: *const half::f16) -> __m256 {
    // SAFETY: by this function's contract; the load needs no alignment.
    unsafe { _mm256_cvtph_ps(_mm_loadu_si128(p.cast())) }
}

/// Scores of `N` queries against half `half` of a block (slots `8 * half..`): per query four
/// partial sums over interleaved dimensions, each key row half widened once for all of them.
/// Needs `kt.len() == hd * 16`, every query `hd` long, `hd % 4 == 0`, `out.len() >= N * 16`.
#[target_feature(enable = "avx2,f16c,fma")]
#[inline]
unsafe fn scores_n<const N: usize>(qs: [&[f32]; N], kt: &[half::f16], half: usize, scale: f32, out: &mut [f32]) {
    let hd = kt.len() / BLOCK;
    let mut acc = [[_mm256_setzero_ps(); PARTS]; N];
    let base = kt.as_ptr().wrapping_add(half * LANES);
    for d in (0..hd).step_by(PARTS) {
        for (p, lane) in (d..d + PARTS).enumerate() {
            // SAFETY: lane < hd, and kt holds hd rows of 16 (the caller's bounds).
            let k = unsafe { load_f16(base.add(lane * BLOCK)) };
            for (a, q) in acc.iter_mut().zip(&qs) {
                // SAFETY: each query is hd long.
                let qd = unsafe { *q.get_unchecked(lane) };
                a[p] = _mm256_fmadd_ps(_mm256_set1_ps(qd), k, a[p]);
            }
        }
    }
    let scale = _mm256_set1_ps(scale);
    for (i, a) in acc.iter().enumerate() {
        let s = _mm256_add_ps(_mm256_add_ps(a[0], a[1]), _mm256_add_ps(a[2], a[3]));
        // SAFETY: out holds N rows of 16.
        unsafe { _mm256_storeu_ps(out.as_mut_ptr().add(i * BLOCK + half * LANES), _mm256_mul_ps(s, scale)) };
    }
}

/// The lanes of `0..8` (plus `offset`) inside `live`, as a mask.
#[target_feature(enable = "avx2")]
#[inline]
fn live_mask(live: &Range<usize>, offset: i32) -> __m256 {
    let lanes = _mm256_add_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(offset));
    // Both bounds are at most 16, so the conversions are exact.
    let after_start = _mm256_cmpgt_epi32(lanes, _mm256_set1_epi32(live.start as i32 - 1));
    let before_end = _mm256_cmpgt_epi32(_mm256_set1_epi32(live.end as i32), lanes);
    _mm256_castsi256_ps(_mm256_and_si256(after_start, before_end))
}

/// The largest of the eight lanes.
#[target_feature(enable = "avx2")]
#[inline]
fn hmax(v: __m256) -> f32 {
    let m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    _mm_cvtss_f32(_mm_max_ss(m, _mm_movehdup_ps(m)))
}

/// One query's online-softmax update for a block of 16 slots, of which `live` (not empty) are
/// visible; returns the factor its weighted values need where the maximum grew.
#[target_feature(enable = "avx2")]
#[inline]
fn softmax(max: &mut f32, sums: &mut [f32], scores: &mut [f32], live: Range<usize>) -> Option<f32> {
    let (scores, sums) = (&mut scores[..BLOCK], &mut sums[..BLOCK]);
    let neg_inf = _mm256_set1_ps(f32::NEG_INFINITY);
    let mut s = [_mm256_setzero_ps(); 2];
    for (h, s) in s.iter_mut().enumerate() {
        // SAFETY: scores holds 16 elements.
        let raw = unsafe { _mm256_loadu_ps(scores.as_ptr().add(h * LANES)) };
        *s = _mm256_blendv_ps(neg_inf, raw, live_mask(&live, (h * LANES) as i32));
    }
    let block_max = hmax(_mm256_max_ps(s[0], s[1]));
    let old = *max;
    let new_max = old.max(block_max);
    let c = (old > f32::NEG_INFINITY && new_max > old).then(|| exp_neg(old - new_max));
    *max = new_max;
    for (h, s) in s.iter().enumerate() {
        // SAFETY: both slices hold 16 elements.
        unsafe {
            let mut old_sums = _mm256_loadu_ps(sums.as_ptr().add(h * LANES));
            if let Some(c) = c {
                old_sums = _mm256_mul_ps(old_sums, _mm256_set1_ps(c));
            }
            let p = exp_neg8(_mm256_sub_ps(*s, _mm256_set1_ps(new_max)));
            _mm256_storeu_ps(sums.as_mut_ptr().add(h * LANES), _mm256_add_ps(old_sums, p));
            _mm256_storeu_ps(scores.as_mut_ptr().add(h * LANES), p);
        }
    }
    c
}

/// [`BlockOps::weigh`] for `N` queries, `R` registers of dimensions at a time, then the rest of
/// the head in halves of that.
///
/// # Safety
/// The CPU must have AVX2, F16C and FMA; `w` must hold `N` queries within the bounds `weigh` checks.
#[target_feature(enable = "avx2,f16c,fma")]
#[inline]
unsafe fn weigh_n<const N: usize, const R: usize>(mut w: ValueRun<'_>) {
    let hd = w.head_dim();
    let mut d0 = 0;
    // SAFETY (each call): the dimensions d0.. stay inside the head, as the calls advance d0.
    while d0 + R * LANES <= hd {
        unsafe { weigh_dims::<N, R>(&mut w, d0) };
        d0 += R * LANES;
    }
    if R > 4 && d0 + 4 * LANES <= hd {
        unsafe { weigh_dims::<N, 4>(&mut w, d0) };
        d0 += 4 * LANES;
    }
    if R > 2 && d0 + 2 * LANES <= hd {
        unsafe { weigh_dims::<N, 2>(&mut w, d0) };
        d0 += 2 * LANES;
    }
    if R > 1 && d0 < hd {
        unsafe { weigh_dims::<N, 1>(&mut w, d0) };
    }
}

/// Dimensions `d0..d0 + R * 8` of `N` queries' weighted values: each rescaled where its maximum
/// grew, then `acc += p[j] * v[j]` for each visible slot in order, kept in registers throughout;
/// each value register is widened once for all the queries.
///
/// # Safety
/// The CPU must have AVX2, F16C and FMA; `d0 + R * 8 <= w.head_dim()`; `w` within the bounds `weigh` checks.
#[target_feature(enable = "avx2,f16c,fma")]
#[inline]
unsafe fn weigh_dims<const N: usize, const R: usize>(w: &mut ValueRun<'_>, d0: usize) {
    let hd = w.head_dim();
    let at = w.acc.as_mut_ptr();
    let mut a = [[_mm256_setzero_ps(); R]; N];
    for (i, a) in a.iter_mut().enumerate() {
        for (r, a) in a.iter_mut().enumerate() {
            // SAFETY: query i's dimensions d0..d0 + R * 8 lie inside acc.
            *a = unsafe { _mm256_loadu_ps(at.add(i * hd + d0 + r * LANES)) };
            if let Some(c) = w.rescale[i] {
                *a = _mm256_mul_ps(*a, _mm256_set1_ps(c));
            }
        }
    }
    let vp = w.values.as_ptr();
    for j in w.live.clone() {
        let mut p = [_mm256_setzero_ps(); N];
        for (i, p) in p.iter_mut().enumerate() {
            // SAFETY: weights holds N rows of 16 and j < 16.
            *p = _mm256_set1_ps(unsafe { *w.weights.get_unchecked(i * BLOCK + j) });
        }
        for r in 0..R {
            // SAFETY: slot j < live.end is inside values, and so are its dimensions d0.. here.
            let v = unsafe { load_f16(vp.add(j * hd + d0 + r * LANES)) };
            for (a, p) in a.iter_mut().zip(&p) {
                a[r] = _mm256_fmadd_ps(*p, v, a[r]);
            }
        }
    }
    for (i, a) in a.iter().enumerate() {
        for (r, a) in a.iter().enumerate() {
            // SAFETY: as above.
            unsafe { _mm256_storeu_ps(at.add(i * hd + d0 + r * LANES), *a) };
        }
    }
}

/// [`exp_neg`] on 8 lanes, with the same operations in the same order.
#[target_feature(enable = "avx2")]
#[inline]
fn exp_neg8(x: __m256) -> __m256 {
    let in_range = _mm256_cmp_ps::<_CMP_GE_OQ>(x, _mm256_set1_ps(EXP_MIN));
    let round = _mm256_set1_ps(ROUND);
    let n = _mm256_sub_ps(_mm256_add_ps(_mm256_mul_ps(x, _mm256_set1_ps(std::f32::consts::LOG2_E)), round), round);
    let r = _mm256_sub_ps(
        _mm256_sub_ps(x, _mm256_mul_ps(n, _mm256_set1_ps(LN2_HI))),
        _mm256_mul_ps(n, _mm256_set1_ps(LN2_LO)),
    );
    let mut p = _mm256_set1_ps(EXP_POLY[0]);
    for &c in &EXP_POLY[1..] {
        p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(c));
    }
    let y = _mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(p, _mm256_mul_ps(r, r)), r), _mm256_set1_ps(1.0));
    let pow2 = _mm256_slli_epi32::<23>(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)));
    _mm256_and_ps(in_range, _mm256_mul_ps(y, _mm256_castsi256_ps(pow2)))
}
