//! The block steps with AVX-512F, for blocks of 16 positions (one register of scores per query)
//! and head dimensions divisible by 16. Each step does, lane by lane, exactly the operations of
//! `portable.rs` in the same order, so the two give bit-identical results.

use std::arch::x86_64::*;
use std::ops::Range;

use hearth_kernels::InstructionSet;

use super::portable::{EXP_MIN, EXP_POLY, LN2_HI, LN2_LO, ROUND, exp_neg};
use super::{BlockOps, PARTS, ValueRun, assert_scores_fit, even_pass};

/// Positions per block (and f32 lanes per register) this path handles.
const LANES: usize = 16;

/// Most queries scored in one pass: four partial sums each take 28 of the 32 registers.
const SCORE_PASS: usize = 7;

/// Proof that the CPU has AVX-512F; only [`Avx512::detect`] makes one.
pub(super) struct Avx512(());

impl Avx512 {
    /// The AVX-512 steps, where the CPU has them (and `HEARTH_SIMD` names no lower path) and
    /// blocks of `block` positions with heads of `head_dim` dimensions fit them.
    pub(super) fn detect(block: usize, head_dim: usize) -> Option<Self> {
        let fits = block == LANES && head_dim.is_multiple_of(LANES) && head_dim > 0;
        (fits && hearth_kernels::simd_allowed(InstructionSet::Avx512f)).then_some(Self(()))
    }
}

impl BlockOps for Avx512 {
    #[inline(always)]
    fn scores(&mut self, qs: &[&[f32]], kt: &[half::f16], bs: usize, scale: f32, out: &mut [f32]) {
        assert_scores_fit(qs, kt, bs, LANES, out);
        let pass = even_pass(qs.len(), SCORE_PASS);
        for (qs, out) in qs.chunks(pass).zip(out.chunks_mut(pass * LANES)) {
            // SAFETY: an `Avx512` exists only where the CPU has AVX-512F; lengths checked above.
            unsafe {
                match *qs {
                    [a, b, c, d, e, f, g] => scores_n([a, b, c, d, e, f, g], kt, scale, out),
                    [a, b, c, d, e, f] => scores_n([a, b, c, d, e, f], kt, scale, out),
                    [a, b, c, d, e] => scores_n([a, b, c, d, e], kt, scale, out),
                    [a, b, c, d] => scores_n([a, b, c, d], kt, scale, out),
                    [a, b, c] => scores_n([a, b, c], kt, scale, out),
                    [a, b] => scores_n([a, b], kt, scale, out),
                    [a] => scores_n([a], kt, scale, out),
                    _ => {}
                }
            }
        }
    }

    #[inline(always)]
    fn softmax(&mut self, max: &mut f32, sums: &mut [f32], scores: &mut [f32], live: Range<usize>) -> Option<f32> {
        assert!(scores.len() == LANES && sums.len() == LANES && live.start < live.end && live.end <= LANES);
        // SAFETY: an `Avx512` exists only where the CPU has AVX-512F.
        unsafe { softmax(max, sums, scores, live) }
    }

    #[inline(always)]
    fn weigh(&mut self, w: ValueRun<'_>) {
        w.assert_fits(LANES, LANES);
        // SAFETY: an `Avx512` exists only where the CPU has AVX-512F; bounds checked above.
        // Each query's registers per slot shrink as the queries grow, keeping eight to sixteen
        // independent chains of adds: fewer wait on the adds' latency, more spill.
        unsafe {
            match w.queries() {
                1 => weigh_n::<1, 8>(w),
                2 => weigh_n::<2, 4>(w),
                3 => weigh_n::<3, 4>(w),
                4 => weigh_n::<4, 4>(w),
                5 => weigh_n::<5, 2>(w),
                6 => weigh_n::<6, 2>(w),
                7 => weigh_n::<7, 2>(w),
                _ => weigh_n::<8, 2>(w),
            }
        }
    }
}

/// Sixteen f16 at `p`, widened.
///
/// # Safety
/// `p` must point at sixteen readable f16; the CPU must have AVX-512F.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn load_f16(p: *const half::f16) -> __m512 {
    // SAFETY: by this function's contract; the load needs no alignment.
    unsafe { _mm512_cvtph_ps(_mm256_loadu_si256(p.cast())) }
}

/// Scores of `N` queries against a block: per query four partial sums over interleaved
/// dimensions, each key row loaded and widened once for all of them.
/// Needs `kt.len() == hd * 16`, every query `hd` long, `hd % 4 == 0`, `out.len() >= N * 16`.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn scores_n<const N: usize>(qs: [&[f32]; N], kt: &[half::f16], scale: f32, out: &mut [f32]) {
    let hd = kt.len() / LANES;
    let mut acc = [[_mm512_setzero_ps(); PARTS]; N];
    for d in (0..hd).step_by(PARTS) {
        for (p, lane) in (d..d + PARTS).enumerate() {
            // SAFETY: lane < hd, and kt holds hd rows of 16 (the caller's bounds).
            let k = unsafe { load_f16(kt.as_ptr().add(lane * LANES)) };
            for (a, q) in acc.iter_mut().zip(&qs) {
                // SAFETY: each query is hd long.
                let qd = unsafe { *q.get_unchecked(lane) };
                a[p] = _mm512_fmadd_ps(_mm512_set1_ps(qd), k, a[p]);
            }
        }
    }
    let scale = _mm512_set1_ps(scale);
    for (i, a) in acc.iter().enumerate() {
        let s = _mm512_add_ps(_mm512_add_ps(a[0], a[1]), _mm512_add_ps(a[2], a[3]));
        // SAFETY: out holds N rows of 16.
        unsafe { _mm512_storeu_ps(out.as_mut_ptr().add(i * LANES), _mm512_mul_ps(s, scale)) };
    }
}

/// One query's online-softmax update for a block of 16 slots, of which `live` (not empty) are
/// visible; returns the factor its weighted values need where the maximum grew.
#[target_feature(enable = "avx512f")]
#[inline]
fn softmax(max: &mut f32, sums: &mut [f32], scores: &mut [f32], live: Range<usize>) -> Option<f32> {
    let (scores, sums) = (&mut scores[..LANES], &mut sums[..LANES]);
    let mask = ((1u32 << live.end) - (1u32 << live.start)) as __mmask16;
    // SAFETY: both slices hold 16 elements.
    let (s, old_sums) = unsafe { (_mm512_loadu_ps(scores.as_ptr()), _mm512_loadu_ps(sums.as_ptr())) };
    let s = _mm512_mask_mov_ps(_mm512_set1_ps(f32::NEG_INFINITY), mask, s);
    let block_max = _mm512_reduce_max_ps(s);
    let old = *max;
    let new_max = old.max(block_max);
    let c = (old > f32::NEG_INFINITY && new_max > old).then(|| exp_neg(old - new_max));
    *max = new_max;
    let old_sums = match c {
        Some(c) => _mm512_mul_ps(old_sums, _mm512_set1_ps(c)),
        None => old_sums,
    };
    let p = exp_neg16(_mm512_sub_ps(s, _mm512_set1_ps(new_max)));
    // SAFETY: as above.
    unsafe {
        _mm512_storeu_ps(sums.as_mut_ptr(), _mm512_add_ps(old_sums, p));
        _mm512_storeu_ps(scores.as_mut_ptr(), p);
    }
    c
}

/// [`BlockOps::weigh`] for `N` queries, `R` registers of dimensions at a time, then the rest of
/// the head in halves of that.
///
/// # Safety
/// The CPU must have AVX-512F; `w` must hold `N` queries within the bounds `weigh` checks.
#[target_feature(enable = "avx512f")]
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

/// Dimensions `d0..d0 + R * 16` of `N` queries' weighted values: each rescaled where its maximum
/// grew, then `acc += p[j] * v[j]` for each visible slot in order, kept in registers throughout;
/// each value row is loaded and widened once for all the queries.
///
/// # Safety
/// The CPU must have AVX-512F; `d0 + R * 16 <= w.head_dim()`; `w` within the bounds `weigh` checks.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn weigh_dims<const N: usize, const R: usize>(w: &mut ValueRun<'_>, d0: usize) {
    let hd = w.head_dim();
    let at = w.acc.as_mut_ptr();
    let mut a = [[_mm512_setzero_ps(); R]; N];
    for (i, a) in a.iter_mut().enumerate() {
        for (r, a) in a.iter_mut().enumerate() {
            // SAFETY: query i's dimensions d0..d0 + R * 16 lie inside acc.
            *a = unsafe { _mm512_loadu_ps(at.add(i * hd + d0 + r * LANES)) };
            if let Some(c) = w.rescale[i] {
                *a = _mm512_mul_ps(*a, _mm512_set1_ps(c));
            }
        }
    }
    let vp = w.values.as_ptr();
    for j in w.live.clone() {
        let mut v = [_mm512_setzero_ps(); R];
        for (r, v) in v.iter_mut().enumerate() {
            // SAFETY: slot j < live.end is inside values, and so are its dimensions d0.. here.
            *v = unsafe { load_f16(vp.add(j * hd + d0 + r * LANES)) };
        }
        for (i, a) in a.iter_mut().enumerate() {
            // SAFETY: weights holds N rows of 16 and j < 16.
            let pj = _mm512_set1_ps(unsafe { *w.weights.get_unchecked(i * LANES + j) });
            for (a, v) in a.iter_mut().zip(&v) {
                *a = _mm512_fmadd_ps(pj, *v, *a);
            }
        }
    }
    for (i, a) in a.iter().enumerate() {
        for (r, a) in a.iter().enumerate() {
            // SAFETY: as above.
            unsafe { _mm512_storeu_ps(at.add(i * hd + d0 + r * LANES), *a) };
        }
    }
}

/// [`exp_neg`] on 16 lanes, with the same operations in the same order.
#[target_feature(enable = "avx512f")]
#[inline]
fn exp_neg16(x: __m512) -> __m512 {
    let in_range = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(x, _mm512_set1_ps(EXP_MIN));
    let round = _mm512_set1_ps(ROUND);
    let n = _mm512_sub_ps(_mm512_add_ps(_mm512_mul_ps(x, _mm512_set1_ps(std::f32::consts::LOG2_E)), round), round);
    let r = _mm512_sub_ps(
        _mm512_sub_ps(x, _mm512_mul_ps(n, _mm512_set1_ps(LN2_HI))),
        _mm512_mul_ps(n, _mm512_set1_ps(LN2_LO)),
    );
    let mut p = _mm512_set1_ps(EXP_POLY[0]);
    for &c in &EXP_POLY[1..] {
        p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(c));
    }
    let y = _mm512_add_ps(_mm512_add_ps(_mm512_mul_ps(p, _mm512_mul_ps(r, r)), r), _mm512_set1_ps(1.0));
    let pow2 = _mm512_slli_epi32::<23>(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)));
    _mm512_maskz_mov_ps(in_range, _mm512_mul_ps(y, _mm512_castsi512_ps(pow2)))
}
