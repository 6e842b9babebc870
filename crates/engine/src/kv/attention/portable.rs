//! The block steps as plain loops: the reference every SIMD version matches bit for bit, and
//! what runs (vectorised by the compiler) on CPUs without AVX-512 or with other block shapes.

use std::ops::Range;

use super::{BlockOps, PARTS, Running};

/// The reduction and polynomial of `e^x`, shared with the kernels crate's vector `exp`.
pub(super) use hearth_kernels::exp::{EXP_POLY, LN2_HI, LN2_LO};

/// Below this `exp_neg` gives 0: e^-87 is still a normal f32, and next to the largest term of a
/// softmax (which is 1) anything smaller is lost in rounding anyway.
pub(super) const EXP_MIN: f32 = -87.0;
/// Adding and subtracting 1.5 * 2^23 rounds an f32 of magnitude below 2^22 to an integer
/// (nearest, ties to even) with plain additions, the same in scalar and vector code.
pub(super) const ROUND: f32 = 12_582_912.0;

/// `e^x` for `x <= 0`, within about two units in the last place; 0 below [`EXP_MIN`] and for
/// NaN. `e^x = 2^n * e^r` with `n = round(x / ln 2)`, `e^r` from [`EXP_POLY`]. The vector
/// versions do exactly these multiplies and adds, in this order.
#[inline(always)]
pub(super) fn exp_neg(x: f32) -> f32 {
    if x >= EXP_MIN {
        let n = (x * std::f32::consts::LOG2_E + ROUND) - ROUND;
        let r = (x - n * LN2_HI) - n * LN2_LO;
        let mut p = EXP_POLY[0];
        for &c in &EXP_POLY[1..] {
            p = p * r + c;
        }
        let y = (p * (r * r) + r) + 1.0;
        // n is an integer in -126..=0 here, so 2^n is a normal f32 built from its exponent bits.
        y * f32::from_bits(((n as i32 + 127) as u32) << 23)
    } else {
        0.0
    }
}

/// The portable steps; holds the partial sums of one query's scores.
#[derive(Default)]
pub(super) struct Portable {
    parts: Vec<f32>,
}

impl BlockOps for Portable {
    #[inline(always)]
    fn scores(&mut self, qs: &[&[f32]], kt: &[f32], bs: usize, scale: f32, out: &mut [f32]) {
        for (q, out) in qs.iter().zip(out.chunks_exact_mut(bs)) {
            // Four partial sums over interleaved dimensions, added pairwise: a single running sum
            // over 256 dimensions (Gemma 3) loses enough precision to flip greedy choices.
            self.parts.clear();
            self.parts.resize(PARTS * bs, 0.0);
            for (d, (&qd, kd)) in q.iter().zip(kt.chunks_exact(bs)).enumerate() {
                let part = &mut self.parts[(d % PARTS) * bs..(d % PARTS + 1) * bs];
                for (s, &k) in part.iter_mut().zip(kd) {
                    *s += qd * k;
                }
            }
            let (p01, p23) = self.parts.split_at(2 * bs);
            for (j, s) in out.iter_mut().enumerate() {
                *s = ((p01[j] + p01[bs + j]) + (p23[j] + p23[bs + j])) * scale;
            }
        }
    }

    #[inline(always)]
    fn accumulate(&mut self, run: Running<'_>, scores: &mut [f32], live: Range<usize>, vf: &[f32]) {
        let hd = run.acc.len();
        let mut block_max = f32::NEG_INFINITY;
        for (j, s) in scores.iter_mut().enumerate() {
            if !live.contains(&j) {
                *s = f32::NEG_INFINITY;
            }
            block_max = block_max.max(*s);
        }
        let new_max = run.max.max(block_max);
        if *run.max > f32::NEG_INFINITY && new_max > *run.max {
            let c = exp_neg(*run.max - new_max);
            run.sums.iter_mut().for_each(|x| *x *= c);
            run.acc.iter_mut().for_each(|x| *x *= c);
        }
        *run.max = new_max;
        for (s, sum) in scores.iter_mut().zip(run.sums.iter_mut()) {
            *s = exp_neg(*s - new_max);
            *sum += *s;
        }
        for j in live {
            let p = scores[j];
            for (y, &x) in run.acc.iter_mut().zip(&vf[j * hd..(j + 1) * hd]) {
                *y += p * x;
            }
        }
    }
}
