//! The block steps with AVX-512F, for blocks of 16 positions (one register of scores per query)
//! and head dimensions divisible by 16. Each step does, lane by lane, exactly the operations of
//! `portable.rs` in the same order, so the two give bit-identical results.

use std::arch::x86_64::*;
use std::ops::Range;

use half::slice::HalfFloatSliceExt;

use super::portable::{EXP_MIN, EXP_POLY, LN2_HI, LN2_LO, ROUND, exp_neg};
use super::{BlockOps, GROUP, PARTS, Running};

/// Positions per block (and f32 lanes per register) this path handles.
const LANES: usize = 16;

/// Head dimensions of accumulated values held in registers at once (8 of the 32 registers).
const VALUE_CHUNK: usize = 8 * LANES;

/// Proof that the CPU has AVX-512F; only [`Avx512::detect`] makes one.
pub(super) struct Avx512(());

impl Avx512 {
    /// The AVX-512 steps, where the CPU has them and blocks of `block` positions with heads of
    /// `head_dim` dimensions fit them.
    pub(super) fn detect(block: usize, head_dim: usize) -> Option<Self> {
        let fits = block == LANES && head_dim.is_multiple_of(LANES) && head_dim > 0;
        (fits && std::arch::is_x86_feature_detected!("avx512f")).then_some(Self(()))
    }
}

impl BlockOps for Avx512 {
    /// Sixteen values per instruction, inlined: `half`'s slice conversion calls a function per
    /// eight values, and this conversion was a larger share of decode than the attention itself.
    #[inline(always)]
    fn widen(&mut self, src: &[half::f16], dst: &mut [f32]) {
        let (ins, in_rest) = src.as_chunks::<LANES>();
        let (outs, out_rest) = dst.as_chunks_mut::<LANES>();
        for (i, o) in ins.iter().zip(outs) {
            // SAFETY: `Avx512` exists only where the CPU has AVX-512F; each chunk is sixteen f16
            // (32 bytes) in and sixteen f32 out, and neither access needs alignment.
            unsafe { _mm512_storeu_ps(o.as_mut_ptr(), _mm512_cvtph_ps(_mm256_loadu_si256(i.as_ptr().cast()))) };
        }
        in_rest.convert_to_f32_slice(out_rest);
    }

    #[inline(always)]
    fn scores(&mut self, qs: &[&[f32]], kt: &[f32], bs: usize, scale: f32, out: &mut [f32]) {
        let hd = kt.len() / LANES;
        // The kernels read through pointers: these are the bounds they rely on.
        assert!(bs == LANES && kt.len() == hd * LANES && hd.is_multiple_of(PARTS) && out.len() >= qs.len() * LANES);
        assert!(qs.iter().all(|q| q.len() == hd));
        for (qs, out) in qs.chunks(GROUP).zip(out.chunks_mut(GROUP * LANES)) {
            // SAFETY: an `Avx512` exists only where the CPU has AVX-512F; lengths checked above.
            unsafe {
                match *qs {
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
    fn accumulate(&mut self, run: Running<'_>, scores: &mut [f32], live: Range<usize>, vf: &[f32]) {
        let hd = run.acc.len();
        assert!(scores.len() == LANES && run.sums.len() == LANES && hd.is_multiple_of(LANES));
        assert!(live.start < live.end && live.end <= LANES && vf.len() >= live.end * hd);
        // SAFETY: an `Avx512` exists only where the CPU has AVX-512F.
        unsafe { accumulate(run, scores, live, vf) }
    }
}

/// Scores of `N` queries against a block: per query four partial sums over interleaved
/// dimensions (16 registers for four queries), each key row loaded once for all of them.
/// Needs `kt.len() == hd * 16`, every query `hd` long, `hd % 4 == 0`, `out.len() >= N * 16`.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn scores_n<const N: usize>(qs: [&[f32]; N], kt: &[f32], scale: f32, out: &mut [f32]) {
    let hd = kt.len() / LANES;
    let mut acc = [[_mm512_setzero_ps(); PARTS]; N];
    for d in (0..hd).step_by(PARTS) {
        for (p, lane) in (d..d + PARTS).enumerate() {
            // SAFETY: lane < hd, and kt holds hd rows of 16 (the caller's bounds).
            let k = unsafe { _mm512_loadu_ps(kt.as_ptr().add(lane * LANES)) };
            for (a, q) in acc.iter_mut().zip(&qs) {
                // SAFETY: each query is hd long.
                let qd = unsafe { *q.get_unchecked(lane) };
                a[p] = _mm512_add_ps(a[p], _mm512_mul_ps(_mm512_set1_ps(qd), k));
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
/// visible. Panics unless `hd % 16 == 0` and `vf` holds the live slots.
#[target_feature(enable = "avx512f")]
#[inline]
fn accumulate(run: Running<'_>, scores: &mut [f32], live: Range<usize>, vf: &[f32]) {
    let hd = run.acc.len();
    let (scores, run_sums) = (&mut scores[..LANES], &mut run.sums[..LANES]);
    let mask = ((1u32 << live.end) - (1u32 << live.start)) as __mmask16;
    // SAFETY: both slices hold 16 elements.
    let (s, sums) = unsafe { (_mm512_loadu_ps(scores.as_ptr()), _mm512_loadu_ps(run_sums.as_ptr())) };
    let s = _mm512_mask_mov_ps(_mm512_set1_ps(f32::NEG_INFINITY), mask, s);
    let block_max = _mm512_reduce_max_ps(s);
    let old = *run.max;
    let new_max = old.max(block_max);
    let c = (old > f32::NEG_INFINITY && new_max > old).then(|| exp_neg(old - new_max));
    *run.max = new_max;
    let sums = match c {
        Some(c) => _mm512_mul_ps(sums, _mm512_set1_ps(c)),
        None => sums,
    };
    let p = exp_neg16(_mm512_sub_ps(s, _mm512_set1_ps(new_max)));
    // SAFETY: as above.
    unsafe {
        _mm512_storeu_ps(run_sums.as_mut_ptr(), _mm512_add_ps(sums, p));
        _mm512_storeu_ps(scores.as_mut_ptr(), p);
    }
    // As many registers as the rest of the head fills: each is its own chain of dependent adds,
    // one per visible slot, so heads of 64 dimensions taken one register at a time waited on
    // the adds' latency (SmolLM2 and Qwen2.5-Coder-0.5B decoding after 2048 positions spent
    // most of their time there).
    let mut d0 = 0;
    while d0 + VALUE_CHUNK <= hd {
        weigh_values::<8>(run.acc, d0, scores, live.clone(), vf, c);
        d0 += VALUE_CHUNK;
    }
    if d0 + 4 * LANES <= hd {
        weigh_values::<4>(run.acc, d0, scores, live.clone(), vf, c);
        d0 += 4 * LANES;
    }
    if d0 + 2 * LANES <= hd {
        weigh_values::<2>(run.acc, d0, scores, live.clone(), vf, c);
        d0 += 2 * LANES;
    }
    if d0 < hd {
        weigh_values::<1>(run.acc, d0, scores, live.clone(), vf, c);
    }
}

/// Dimensions `d0..d0 + R * 16` of `acc`: rescaled by `c` when the maximum grew, then
/// `acc += p[j] * v[j]` for each visible slot in order, kept in registers throughout.
/// Panics unless `d0 + R * 16 <= acc.len()` and `vf` holds the live slots.
#[target_feature(enable = "avx512f")]
#[inline]
fn weigh_values<const R: usize>(acc: &mut [f32], d0: usize, p: &[f32], live: Range<usize>, vf: &[f32], c: Option<f32>) {
    let hd = acc.len();
    let at = acc[d0..d0 + R * LANES].as_mut_ptr();
    let mut a = [_mm512_setzero_ps(); R];
    for (r, a) in a.iter_mut().enumerate() {
        // SAFETY: at points at R * 16 elements of acc.
        *a = unsafe { _mm512_loadu_ps(at.add(r * LANES)) };
        if let Some(c) = c {
            *a = _mm512_mul_ps(*a, _mm512_set1_ps(c));
        }
    }
    for j in live {
        let pj = _mm512_set1_ps(p[j]);
        let row = vf[j * hd + d0..j * hd + d0 + R * LANES].as_ptr();
        for (r, a) in a.iter_mut().enumerate() {
            // SAFETY: row points at R * 16 elements of vf.
            let v = unsafe { _mm512_loadu_ps(row.add(r * LANES)) };
            *a = _mm512_add_ps(*a, _mm512_mul_ps(pj, v));
        }
    }
    for (r, a) in a.iter().enumerate() {
        // SAFETY: as above.
        unsafe { _mm512_storeu_ps(at.add(r * LANES), *a) };
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
