//! Rotary position embeddings: [`Rotary`], one base frequency's rotation, and [`RotaryTable`], its
//! cosines and sines at the positions of one pass, shared by every layer of the pass.

use crate::model::config::RopeStyle;

/// Rotary position embedding for one base frequency.
#[derive(Debug, Clone)]
pub struct Rotary {
    inv_freq: Vec<f32>,
    style: RopeStyle,
}

impl Rotary {
    /// Rotary embedding over heads of `head_dim` with base `base`.
    pub fn new(head_dim: usize, base: f32, style: RopeStyle) -> Self {
        let inv_freq = (0..head_dim / 2).map(|i| 1.0 / base.powf(2.0 * i as f32 / head_dim as f32)).collect();
        Self { inv_freq, style }
    }

    /// The frequency of each pair of dimensions (`head_dim / 2` of them).
    pub fn inv_freq(&self) -> &[f32] {
        &self.inv_freq
    }

    /// Which dimensions are rotated together.
    pub fn style(&self) -> RopeStyle {
        self.style
    }

    /// Rotates `x`, rows of `heads * head_dim` values, row `i` to position `positions[i]`.
    pub fn apply_rows(&self, x: &mut [f32], heads: usize, positions: &[usize]) {
        self.table(positions).apply(x, heads);
    }

    /// The cosines and sines of `positions`, for every layer of a pass to rotate with.
    pub fn table(&self, positions: &[usize]) -> RotaryTable {
        let half = self.inv_freq.len();
        let mut cos = Vec::with_capacity(positions.len() * half);
        let mut sin = Vec::with_capacity(positions.len() * half);
        for &p in positions {
            for &f in &self.inv_freq {
                // f64 keeps large positions accurate; in f32 the angle loses digits past a few
                // thousand tokens.
                let theta = p as f64 * f as f64;
                cos.push(theta.cos() as f32);
                sin.push(theta.sin() as f32);
            }
        }
        RotaryTable { rotary: self.clone(), cos, sin }
    }
}

/// A [`Rotary`]'s cosines and sines at the positions of one pass. Every layer of a pass rotates
/// its queries and keys to the same positions, so a pass computes them once instead of twice a
/// layer: in f64, they were one to two percent of a decode step of SmolLM2.
#[derive(Debug, Clone)]
pub struct RotaryTable {
    rotary: Rotary,
    /// `positions * head_dim / 2` values, one row per position.
    cos: Vec<f32>,
    sin: Vec<f32>,
}

impl RotaryTable {
    /// Whether this is the table `rotary` would make (the same frequencies and style).
    pub fn is_for(&self, rotary: &Rotary) -> bool {
        self.rotary.style == rotary.style && self.rotary.inv_freq == rotary.inv_freq
    }

    /// Rotates `x`, rows of `heads * head_dim` values, row `i` to the table's position `i`.
    pub fn apply(&self, x: &mut [f32], heads: usize) {
        let half = self.rotary.inv_freq.len();
        if half == 0 {
            return;
        }
        let rows = x.chunks_exact_mut(heads * 2 * half);
        for ((row, cos), sin) in rows.zip(self.cos.chunks_exact(half)).zip(self.sin.chunks_exact(half)) {
            for head in row.chunks_exact_mut(2 * half) {
                for i in 0..half {
                    let (a, b) = match self.rotary.style {
                        RopeStyle::Interleaved => (2 * i, 2 * i + 1),
                        RopeStyle::Neox => (i, i + half),
                    };
                    let (x0, x1) = (head[a], head[b]);
                    head[a] = x0 * cos[i] - x1 * sin[i];
                    head[b] = x0 * sin[i] + x1 * cos[i];
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{RopeStyle, Rotary};

    /// Rotates one head by hand: the pair (a, b) of frequency i by p * inv_freq[i].
    fn rotated(x: &[f32], p: usize, base: f32, style: RopeStyle) -> Vec<f32> {
        let half = x.len() / 2;
        let mut out = x.to_vec();
        for i in 0..half {
            let theta = p as f64 * (1.0 / base.powf(2.0 * i as f32 / x.len() as f32)) as f64;
            let (a, b) = if style == RopeStyle::Neox { (i, i + half) } else { (2 * i, 2 * i + 1) };
            let (c, s) = (theta.cos() as f32, theta.sin() as f32);
            out[a] = x[a] * c - x[b] * s;
            out[b] = x[a] * s + x[b] * c;
        }
        out
    }

    #[test]
    fn a_table_rotates_every_head_of_every_row_to_its_position() {
        for style in [RopeStyle::Neox, RopeStyle::Interleaved] {
            let rotary = Rotary::new(8, 10_000.0, style);
            let positions = [0, 5, 4097];
            let x: Vec<f32> = (0..3 * 2 * 8).map(|i| (i as f32 * 0.37).sin()).collect();
            let mut got = x.clone();
            rotary.table(&positions).apply(&mut got, 2);
            for (r, &p) in positions.iter().enumerate() {
                for h in 0..2 {
                    let at = (r * 2 + h) * 8;
                    assert_eq!(got[at..at + 8], rotated(&x[at..at + 8], p, 10_000.0, style)[..], "{style:?} row {r}");
                }
            }
        }
    }

    #[test]
    fn a_table_serves_only_the_rotary_it_was_made_from() {
        let global = Rotary::new(64, 1_000_000.0, RopeStyle::Neox);
        let local = Rotary::new(64, 10_000.0, RopeStyle::Neox);
        let table = global.table(&[3]);
        assert!(table.is_for(&global) && table.is_for(&global.clone()));
        assert!(!table.is_for(&local));
        assert!(!table.is_for(&Rotary::new(64, 1_000_000.0, RopeStyle::Interleaved)));
    }
}
