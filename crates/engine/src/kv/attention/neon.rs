//! The block steps with NEON, for blocks of 16 positions (four registers of scores per query)
//! and head dimensions divisible by 4: what Apple Silicon and other aarch64 machines run. Each
//! step does, lane by lane, exactly the operations of `portable.rs` in the same order (fused where
//! it fuses, separate elsewhere), so the two give bit-identical results. With 32 registers,
//! scores take up to six queries a pass over one quarter of the block, and values up to four
//! queries a pass; keys and values are widened in registers (`fcvtl`) as they are read.

use std::arch::aarch64::*;
use std::ops::Range;

use hearth_kernels::{InstructionSet, f16x4_to_f32};

use super::portable::{EXP_MIN, EXP_POLY, LN2_HI, LN2_LO, ROUND, exp_neg};
use super::{BlockOps, PARTS, ValueRun, assert_scores_fit, even_pass};

/// Positions per block this path handles.
const BLOCK: usize = 16;

/// f32 lanes per register.
const LANES: usize = 4;

/// Most queries scored in one pass: four partial sums each, 24 of the 32 registers.
const SCORE_PASS: usize = 6;

/// Most queries whose values are weighed in one pass.
const WEIGH_PASS: usize = 4;

/// The NEON steps; NEON is part of every aarch64 CPU, so only the shape and `HEARTH_SIMD` decide.
pub(super) struct Neon(());

impl Neon {
    /// The NEON steps, unless `HEARTH_SIMD` names the scalar path, where blocks of `block`
    /// positions with heads of `head_dim` dimensions fit them.
    pub(super) fn detect(block: usize, head_dim: usize) -> Option<Self> {
        let fits = block == BLOCK && head_dim.is_multiple_of(LANES) && head_dim > 0;
        (fits && hearth_kernels::simd_allowed(InstructionSet::Neon)).then_some(Self(()))
    }
}

impl BlockOps for Neon {
    #[inline(always)]
    fn scores(&mut self, qs: &[&[f32]], kt: &[half::f16], bs: usize, scale: f32, out: &mut [f32]) {
        assert_scores_fit(qs, kt, bs, BLOCK, out);
        let pass = even_pass(qs.len(), SCORE_PASS);
        for (qs, out) in qs.chunks(pass).zip(out.chunks_mut(pass * BLOCK)) {
            for quarter in 0..BLOCK / LANES {
                // SAFETY: lengths checked above.
                unsafe {
                    match *qs {
                        [a, b, c, d, e, f] => scores_n([a, b, c, d, e, f], kt, quarter, scale, out),
                        [a, b, c, d, e] => scores_n([a, b, c, d, e], kt, quarter, scale, out),
                        [a, b, c, d] => scores_n([a, b, c, d], kt, quarter, scale, out),
                        [a, b, c] => scores_n([a, b, c], kt, quarter, scale, out),
                        [a, b] => scores_n([a, b], kt, quarter, scale, out),
                        [a] => scores_n([a], kt, quarter, scale, out),
                        _ => {}
                    }
                }
            }
        }
    }

    #[inline(always)]
    fn softmax(&mut self, max: &mut f32, sums: &mut [f32], scores: &mut [f32], live: Range<usize>) -> Option<f32> {
        assert!(scores.len() == BLOCK && sums.len() == BLOCK && live.start < live.end && live.end <= BLOCK);
        softmax(max, sums, scores, live)
    }

    #[inline(always)]
    fn weigh(&mut self, run: ValueRun<'_>) {
        run.assert_fits(BLOCK, LANES);
        for w in run.passes(WEIGH_PASS) {
            // SAFETY: bounds checked above. Eight independent chains of adds where the queries
            // allow, to cover their latency.
            unsafe {
                match w.queries() {
                    1 => weigh_n::<1, 8>(w),
                    2 => weigh_n::<2, 8>(w),
                    3 => weigh_n::<3, 4>(w),
                    _ => weigh_n::<4, 4>(w),
                }
            }
        }
    }
}

/// Four f16 at `p`, widened.
///
/// # Safety
/// `p` must point at four readable f16.
#[inline(always)]
unsafe fn load_f16(p: *const half::f16) -> float32x4_t {
    // SAFETY: by this function's contract; the load needs no alignment.
    f16x4_to_f32(unsafe { vld1_u16(p.cast()) })
}

/// Scores of `N` queries against quarter `quarter` of a block (slots `4 * quarter..`): per query
/// four partial sums over interleaved dimensions, each key row quarter widened once for all of
/// them. Needs `kt.len() == hd * 16`, every query `hd` long, `hd % 4 == 0`, `out.len() >= N * 16`.
#[inline(always)]
unsafe fn scores_n<const N: usize>(qs: [&[f32]; N], kt: &[half::f16], quarter: usize, scale: f32, out: &mut [f32]) {
    let hd = kt.len() / BLOCK;
    // SAFETY (all blocks below): register arithmetic, and reads inside the bounds just named.
    let mut acc = [[unsafe { vdupq_n_f32(0.0) }; PARTS]; N];
    let base = kt.as_ptr().wrapping_add(quarter * LANES);
    for d in (0..hd).step_by(PARTS) {
        // SAFETY: rows d..d + 4 < hd, and kt holds hd rows of 16.
        let k = unsafe {
            [
                load_f16(base.add(d * BLOCK)),
                load_f16(base.add((d + 1) * BLOCK)),
                load_f16(base.add((d + 2) * BLOCK)),
                load_f16(base.add((d + 3) * BLOCK)),
            ]
        };
        for (a, q) in acc.iter_mut().zip(&qs) {
            // SAFETY: each query is hd long, and d + 4 <= hd.
            unsafe {
                let qv = vld1q_f32(q.as_ptr().add(d));
                a[0] = vfmaq_laneq_f32::<0>(a[0], k[0], qv);
                a[1] = vfmaq_laneq_f32::<1>(a[1], k[1], qv);
                a[2] = vfmaq_laneq_f32::<2>(a[2], k[2], qv);
                a[3] = vfmaq_laneq_f32::<3>(a[3], k[3], qv);
            }
        }
    }
    for (i, a) in acc.iter().enumerate() {
        // SAFETY: out holds N rows of 16.
        unsafe {
            let s = vaddq_f32(vaddq_f32(a[0], a[1]), vaddq_f32(a[2], a[3]));
            vst1q_f32(out.as_mut_ptr().add(i * BLOCK + quarter * LANES), vmulq_n_f32(s, scale));
        }
    }
}

/// The lanes of `0..4` (plus `offset`) inside `live`, as a mask.
#[inline(always)]
fn live_mask(live: &Range<usize>, offset: u32) -> uint32x4_t {
    const LANE: [u32; LANES] = [0, 1, 2, 3];
    // SAFETY: register arithmetic, and a read of the four-element array above. Both bounds are
    // at most 16, so the conversions are exact.
    unsafe {
        let lanes = vaddq_u32(vld1q_u32(LANE.as_ptr()), vdupq_n_u32(offset));
        vandq_u32(vcgeq_u32(lanes, vdupq_n_u32(live.start as u32)), vcltq_u32(lanes, vdupq_n_u32(live.end as u32)))
    }
}

/// One query's online-softmax update for a block of 16 slots, of which `live` (not empty) are
/// visible; returns the factor its weighted values need where the maximum grew.
#[inline(always)]
fn softmax(max: &mut f32, sums: &mut [f32], scores: &mut [f32], live: Range<usize>) -> Option<f32> {
    let (scores, sums) = (&mut scores[..BLOCK], &mut sums[..BLOCK]);
    // SAFETY (all blocks below): register arithmetic, and reads and writes of the 16 elements of
    // `scores` and `sums`.
    let neg_inf = unsafe { vdupq_n_f32(f32::NEG_INFINITY) };
    let mut s = [neg_inf; BLOCK / LANES];
    for (h, s) in s.iter_mut().enumerate() {
        // SAFETY: scores holds 16 elements.
        unsafe {
            let raw = vld1q_f32(scores.as_ptr().add(h * LANES));
            *s = vbslq_f32(live_mask(&live, (h * LANES) as u32), raw, neg_inf);
        }
    }
    // f32::max's rule (a NaN loses to a number), as the portable step.
    let block_max = unsafe { vmaxnmvq_f32(vmaxnmq_f32(vmaxnmq_f32(s[0], s[1]), vmaxnmq_f32(s[2], s[3]))) };
    let old = *max;
    let new_max = old.max(block_max);
    let c = (old > f32::NEG_INFINITY && new_max > old).then(|| exp_neg(old - new_max));
    *max = new_max;
    for (h, s) in s.iter().enumerate() {
        // SAFETY: both slices hold 16 elements.
        unsafe {
            let mut old_sums = vld1q_f32(sums.as_ptr().add(h * LANES));
            if let Some(c) = c {
                old_sums = vmulq_n_f32(old_sums, c);
            }
            let p = exp_neg4(vsubq_f32(*s, vdupq_n_f32(new_max)));
            vst1q_f32(sums.as_mut_ptr().add(h * LANES), vaddq_f32(old_sums, p));
            vst1q_f32(scores.as_mut_ptr().add(h * LANES), p);
        }
    }
    c
}

/// [`BlockOps::weigh`] for `N` queries, `R` registers of dimensions at a time, then the rest of
/// the head in halves of that.
///
/// # Safety
/// `w` must hold `N` queries within the bounds `weigh` checks.
#[inline(always)]
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

/// Dimensions `d0..d0 + R * 4` of `N` queries' weighted values: each rescaled where its maximum
/// grew, then `acc += p[j] * v[j]` for each visible slot in order, kept in registers throughout;
/// each value register is widened once for all the queries.
///
/// # Safety
/// `d0 + R * 4 <= w.head_dim()`; `w` within the bounds `weigh` checks.
#[inline(always)]
unsafe fn weigh_dims<const N: usize, const R: usize>(w: &mut ValueRun<'_>, d0: usize) {
    let hd = w.head_dim();
    let at = w.acc.as_mut_ptr();
    // SAFETY: register arithmetic.
    let mut a = [[unsafe { vdupq_n_f32(0.0) }; R]; N];
    for (i, a) in a.iter_mut().enumerate() {
        for (r, a) in a.iter_mut().enumerate() {
            // SAFETY: query i's dimensions d0..d0 + R * 4 lie inside acc.
            *a = unsafe { vld1q_f32(at.add(i * hd + d0 + r * LANES)) };
            if let Some(c) = w.rescale[i] {
                // SAFETY: register arithmetic.
                *a = unsafe { vmulq_n_f32(*a, c) };
            }
        }
    }
    let vp = w.values.as_ptr();
    for j in w.live.clone() {
        let mut p = [0f32; N];
        for (i, p) in p.iter_mut().enumerate() {
            // SAFETY: weights holds N rows of 16 and j < 16.
            *p = unsafe { *w.weights.get_unchecked(i * BLOCK + j) };
        }
        for r in 0..R {
            // SAFETY: slot j < live.end is inside values, and so are its dimensions d0.. here.
            let v = unsafe { load_f16(vp.add(j * hd + d0 + r * LANES)) };
            for (a, &p) in a.iter_mut().zip(&p) {
                // SAFETY: register arithmetic.
                a[r] = unsafe { vfmaq_n_f32(a[r], v, p) };
            }
        }
    }
    for (i, a) in a.iter().enumerate() {
        for (r, a) in a.iter().enumerate() {
            // SAFETY: as above.
            unsafe { vst1q_f32(at.add(i * hd + d0 + r * LANES), *a) };
        }
    }
}

/// [`exp_neg`] on 4 lanes, with the same operations in the same order.
#[inline(always)]
fn exp_neg4(x: float32x4_t) -> float32x4_t {
    // SAFETY: register arithmetic only.
    unsafe {
        let in_range = vcgeq_f32(x, vdupq_n_f32(EXP_MIN));
        let round = vdupq_n_f32(ROUND);
        let n = vsubq_f32(vaddq_f32(vmulq_n_f32(x, std::f32::consts::LOG2_E), round), round);
        let r = vsubq_f32(vsubq_f32(x, vmulq_n_f32(n, LN2_HI)), vmulq_n_f32(n, LN2_LO));
        let mut p = vdupq_n_f32(EXP_POLY[0]);
        for &c in &EXP_POLY[1..] {
            p = vaddq_f32(vmulq_f32(p, r), vdupq_n_f32(c));
        }
        let y = vaddq_f32(vaddq_f32(vmulq_f32(p, vmulq_f32(r, r)), r), vdupq_n_f32(1.0));
        // n is an integer, so the conversion (which truncates, saturating) is exact where in range;
        // the lanes out of range are masked to 0 below.
        let pow2 = vshlq_n_s32::<23>(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127)));
        vreinterpretq_f32_u32(vandq_u32(in_range, vreinterpretq_u32_f32(vmulq_f32(y, vreinterpretq_f32_s32(pow2)))))
    }
}
