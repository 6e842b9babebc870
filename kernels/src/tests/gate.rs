//! The fused SiLU gate against the scalar formula, on values from deep in both tails to zero.

use super::rng;
use crate::gate::silu_mul_scalar;
use crate::silu_mul;
use rand::Rng;

#[test]
fn silu_mul_matches_the_scalar_formula_within_four_ulps() {
    let mut rng = rng(7);
    // 8003: whole vectors plus a ragged tail for the scalar remainder.
    let mut gate: Vec<f32> = (0..8003).map(|_| rng.random_range(-30.0f32..30.0)).collect();
    gate.extend([0.0, -0.0, 1e-30, -1e-30, 87.0, -87.0, 88.5, -88.5, 100.0, -100.0, 1e30, -1e30]);
    let up: Vec<f32> = (0..gate.len()).map(|_| rng.random_range(-2.0f32..2.0)).collect();
    let mut want = gate.clone();
    silu_mul_scalar(&mut want, &up);
    let mut got = gate.clone();
    silu_mul(&mut got, &up).unwrap();
    for (i, (&w, &g)) in want.iter().zip(&got).enumerate() {
        let ulps = (w - g).abs() / (f32::EPSILON * w.abs()).max(f32::MIN_POSITIVE);
        assert!(ulps <= 4.0, "gate {} up {}: want {w}, got {g}", gate[i], up[i]);
    }
}

#[test]
fn silu_mul_keeps_nan_and_refuses_mismatched_lengths() {
    // Sixteen values, so the NaN goes through the vector path.
    let mut gate = [1.0f32; 16];
    gate[3] = f32::NAN;
    silu_mul(&mut gate, &[1.0; 16]).unwrap();
    assert!(gate[3].is_nan());
    assert!(gate.iter().enumerate().all(|(i, g)| i == 3 || (g - 0.731_058_6).abs() < 1e-6));
    assert!(silu_mul(&mut [1.0, 2.0], &[1.0]).is_err());
}
