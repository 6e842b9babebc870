//! The fused gates against the scalar formula, on values from deep in both tails to zero.

use super::rng;
use crate::gate::gate_mul_scalar;
use crate::{gelu_tanh_mul, silu_mul};
use rand::Rng;

/// Gate values over both tails and the ragged end of the vector loop, with `up` values.
fn inputs(seed: u64) -> (Vec<f32>, Vec<f32>) {
    let mut rng = rng(seed);
    // The tails first, so the vector path takes them, then 8003 values: whole vectors plus a
    // ragged tail for the scalar remainder.
    let mut gate = vec![0.0, -0.0, 1e-30, -1e-30, 87.0, -87.0, 88.5, -88.5, 100.0, -100.0, 1e30, -1e30, -30.0, 30.0];
    gate.extend((0..8003).map(|_| rng.random_range(-30.0f32..30.0)));
    let up: Vec<f32> = (0..gate.len()).map(|_| rng.random_range(-2.0f32..2.0)).collect();
    (gate, up)
}

#[test]
fn silu_mul_matches_the_scalar_formula_within_four_ulps() {
    let (gate, up) = inputs(7);
    let mut want = gate.clone();
    gate_mul_scalar::<false>(&mut want, &up);
    let mut got = gate.clone();
    silu_mul(&mut got, &up).unwrap();
    for (i, (&w, &g)) in want.iter().zip(&got).enumerate() {
        // Results next to zero (a very negative gate) may differ in their last subnormal digits.
        let ulps = (w - g).abs() / (f32::EPSILON * w.abs()).max(1e-30);
        assert!(ulps <= 4.0, "gate {} up {}: want {w}, got {g}", gate[i], up[i]);
    }
}

#[test]
fn gelu_tanh_mul_matches_the_tanh_formula() {
    let (gate, up) = inputs(8);
    let mut scalar = gate.clone();
    gate_mul_scalar::<true>(&mut scalar, &up);
    let mut got = gate.clone();
    gelu_tanh_mul(&mut got, &up).unwrap();
    for (i, ((&s, &g), (&x, &u))) in scalar.iter().zip(&got).zip(gate.iter().zip(&up)).enumerate() {
        // The textbook form in f64 where `1 + tanh(z)` keeps its digits (it cancels to zero
        // below about -5), and `1 + tanh(z) = 2 / (1 + exp(-2 z))` in f64 everywhere.
        let x64 = f64::from(x);
        let z = (2.0 / std::f64::consts::PI).sqrt() * (x64 + 0.044715 * x64 * x64 * x64);
        let want = if x > -3.0 { 0.5 * (1.0 + z.tanh()) } else { 1.0 / (1.0 + (-2.0 * z).exp()) };
        let want = x64 * want * f64::from(u);
        let near = |v: f32| (f64::from(v) - want).abs() <= 1e-5 * want.abs() + 1e-30;
        assert!(near(s) && near(g), "#{i} gate {x} up {u}: want {want}, scalar {s}, simd {g}");
    }
    assert!(gelu_tanh_mul(&mut [1.0, 2.0], &[1.0]).is_err());
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
