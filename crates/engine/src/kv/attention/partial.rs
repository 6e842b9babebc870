//! [`Partial`]: the attention of a tile's queries over one segment of the cache, before the
//! softmax's division, and the merge of consecutive segments into the whole.

use super::portable::exp_neg;

/// The online-softmax state of a tile's `n_q` queries after one segment's blocks: per query the
/// largest score, the exponentials' sums per block slot, and the values weighed by them.
#[derive(Debug, Clone, Default)]
pub(super) struct Partial {
    /// `n_q * head_dim` weighed values.
    pub acc: Vec<f32>,
    /// `n_q` largest scores; minus infinity where a query saw no key in the segment.
    pub max: Vec<f32>,
    /// `n_q * block_size` sums, one lane per block slot.
    pub sums: Vec<f32>,
}

impl Partial {
    /// Folds in `later`, the state of the same queries over the segment after this one's. A
    /// query's scale moves to the larger of the two maxima with the steps' own `exp_neg`, the
    /// same arithmetic in whichever task or pass the segments ran, so the result depends only on
    /// the segment boundaries.
    pub fn merge(&mut self, later: &Partial) {
        let n_q = self.max.len();
        if n_q == 0 {
            return;
        }
        let (hd, bs) = (self.acc.len() / n_q, self.sums.len() / n_q);
        for q in 0..n_q {
            let (mine, theirs) = (self.max[q], later.max[q]);
            if theirs == f32::NEG_INFINITY {
                continue;
            }
            let (acc, sums) = (&mut self.acc[q * hd..(q + 1) * hd], &mut self.sums[q * bs..(q + 1) * bs]);
            let (later_acc, later_sums) = (&later.acc[q * hd..(q + 1) * hd], &later.sums[q * bs..(q + 1) * bs]);
            if mine == f32::NEG_INFINITY {
                acc.copy_from_slice(later_acc);
                sums.copy_from_slice(later_sums);
                self.max[q] = theirs;
                continue;
            }
            let top = mine.max(theirs);
            let (a, b) = (exp_neg(mine - top), exp_neg(theirs - top));
            // Two loops rather than one over both chained: each of these vectorises.
            for (x, &y) in acc.iter_mut().zip(later_acc) {
                *x = *x * a + y * b;
            }
            for (x, &y) in sums.iter_mut().zip(later_sums) {
                *x = *x * a + y * b;
            }
            self.max[q] = top;
        }
    }

    /// The attention output, `n_q * head_dim`: the weighed values over the sum of their weights.
    pub fn finish(mut self) -> Vec<f32> {
        let n_q = self.max.len();
        if n_q == 0 {
            return self.acc;
        }
        let (hd, bs) = ((self.acc.len() / n_q).max(1), (self.sums.len() / n_q).max(1));
        for (a, lanes) in self.acc.chunks_exact_mut(hd).zip(self.sums.chunks_exact(bs)) {
            let s = lanes.iter().fold(0f32, |t, &x| t + x);
            let inv = if s > 0.0 { 1.0 / s } else { 0.0 };
            a.iter_mut().for_each(|x| *x *= inv);
        }
        self.acc
    }
}
