//! The block steps as plain loops: the reference every SIMD version matches bit for bit, and
//! what runs (vectorised by the compiler) on CPUs without AVX-512 or with other block shapes.

use std::ops::Range;

use half::slice::HalfFloatSliceExt;

use super::{BlockOps, PARTS, ValueRun};

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

/// A block's keys or values widened to f32, with the slice they came from: within one tile the
/// cache does not change, so the same slice need not be widened again for the next group.
#[derive(Default)]
struct Widened {
    from: (usize, usize),
    data: Vec<f32>,
}

impl Widened {
    /// `src` as f32.
    fn of(&mut self, src: &[half::f16]) -> &[f32] {
        let from = (src.as_ptr() as usize, src.len());
        if from != self.from {
            self.data.resize(src.len(), 0.0);
            src.convert_to_f32_slice(&mut self.data);
            self.from = from;
        }
        &self.data
    }
}

/// The portable steps; holds the partial sums of one query's scores and the widened block.
#[derive(Default)]
pub(super) struct Portable {
    parts: Vec<f32>,
    keys: Widened,
    values: Widened,
}

impl BlockOps for Portable {
    #[inline(always)]
    fn scores(&mut self, qs: &[&[f32]], kt: &[half::f16], bs: usize, scale: f32, out: &mut [f32]) {
        let kt = self.keys.of(kt);
        for (q, out) in qs.iter().zip(out.chunks_exact_mut(bs)) {
            // Four partial sums over interleaved dimensions, added pairwise: a single running sum
            // over 256 dimensions (Gemma 3) loses enough precision to flip greedy choices.
            self.parts.clear();
            self.parts.resize(PARTS * bs, 0.0);
            for (d, (&qd, kd)) in q.iter().zip(kt.chunks_exact(bs)).enumerate() {
                let part = &mut self.parts[(d % PARTS) * bs..(d % PARTS + 1) * bs];
                for (s, &k) in part.iter_mut().zip(kd) {
                    *s = qd.mul_add(k, *s);
                }
            }
            let (p01, p23) = self.parts.split_at(2 * bs);
            for (j, s) in out.iter_mut().enumerate() {
                *s = ((p01[j] + p01[bs + j]) + (p23[j] + p23[bs + j])) * scale;
            }
        }
    }

    #[inline(always)]
    fn softmax(&mut self, max: &mut f32, sums: &mut [f32], scores: &mut [f32], live: Range<usize>) -> Option<f32> {
        let mut block_max = f32::NEG_INFINITY;
        for (j, s) in scores.iter_mut().enumerate() {
            if !live.contains(&j) {
                *s = f32::NEG_INFINITY;
            }
            block_max = block_max.max(*s);
        }
        let new_max = max.max(block_max);
        let c = (*max > f32::NEG_INFINITY && new_max > *max).then(|| exp_neg(*max - new_max));
        if let Some(c) = c {
            sums.iter_mut().for_each(|x| *x *= c);
        }
        *max = new_max;
        for (s, sum) in scores.iter_mut().zip(sums.iter_mut()) {
            *s = exp_neg(*s - new_max);
            *sum += *s;
        }
        c
    }

    #[inline(always)]
    fn weigh(&mut self, run: ValueRun<'_>) {
        let hd = run.head_dim();
        let bs = run.weights.len() / run.queries();
        let vf = self.values.of(run.values);
        for ((acc, p), c) in run.acc.chunks_exact_mut(hd).zip(run.weights.chunks_exact(bs)).zip(run.rescale) {
            if let Some(c) = *c {
                acc.iter_mut().for_each(|x| *x *= c);
            }
            for j in run.live.clone() {
                for (y, &x) in acc.iter_mut().zip(&vf[j * hd..(j + 1) * hd]) {
                    *y = p[j].mul_add(x, *y);
                }
            }
        }
    }
}
