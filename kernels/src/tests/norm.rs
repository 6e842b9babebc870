//! RMS norm and the fused residual add against the plain formula, on every path this CPU has.

use super::{random_floats, rng};
use crate::norm::{rms_norm_on_every_path, rms_norm_reference};
use crate::{KernelError, add_rms_norm, rms_norm};

/// Row lengths of the models (SmolLM2's 576, Qwen2.5-Coder-1.5B's 1536, a 64-wide head) and
/// ragged ones that leave a tail after the vector lanes.
const ROWS: [usize; 5] = [576, 1536, 64, 577, 13];

/// Values with a spread of magnitudes, as hidden states have, and weights around one.
fn inputs(row: usize, rows: usize, seed: u64) -> (Vec<f32>, Vec<f32>) {
    let mut rng = rng(seed);
    let x: Vec<f32> =
        random_floats(row * rows, &mut rng).iter().enumerate().map(|(i, v)| v * (1 + i % 7 * 40) as f32).collect();
    let weight = random_floats(row, &mut rng).iter().map(|w| 1.0 + w / 2.0).collect();
    (x, weight)
}

fn ulps(a: f32, b: f32) -> f32 {
    (a - b).abs() / (f32::EPSILON * a.abs().max(b.abs())).max(f32::MIN_POSITIVE)
}

#[test]
fn rms_norm_matches_the_sequential_f64_formula() {
    for (seed, row) in ROWS.into_iter().enumerate() {
        let (x, weight) = inputs(row, 3, seed as u64);
        let want = rms_norm_reference(&x, &weight, 1e-5);
        let mut got = vec![f32::NAN; x.len()];
        rms_norm(&x, &weight, 1e-5, &mut got).unwrap();
        for (i, (&w, &g)) in want.iter().zip(&got).enumerate() {
            // The lanes sum in another order than the reference; in f64 that moves the f32 scale by
            // at most one rounding.
            assert!(ulps(w, g) <= 2.0, "row {row}, value {i}: want {w}, got {g}");
        }
    }
}

#[test]
fn every_path_gives_the_same_bits() {
    for (seed, row) in ROWS.into_iter().enumerate() {
        let (x, weight) = inputs(row, 2, 100 + seed as u64);
        let results = rms_norm_on_every_path(&x, &weight, 1e-6);
        let (first, want) = &results[0];
        for (path, got) in &results[1..] {
            assert!(
                want.iter().zip(got).all(|(a, b)| a.to_bits() == b.to_bits()),
                "row {row}: {path} differs from {first}"
            );
        }
    }
}

#[test]
fn add_rms_norm_is_the_add_then_the_norm() {
    for (seed, row) in ROWS.into_iter().enumerate() {
        let (x, weight) = inputs(row, 2, 200 + seed as u64);
        let (delta, _) = inputs(row, 2, 300 + seed as u64);
        let mut sum = vec![f32::NAN; x.len()];
        let mut out = vec![f32::NAN; x.len()];
        add_rms_norm(&x, &delta, &weight, 1e-5, &mut sum, &mut out).unwrap();
        let want_sum: Vec<f32> = x.iter().zip(&delta).map(|(a, b)| a + b).collect();
        assert_eq!(sum, want_sum, "row {row}");
        let mut want = vec![0.0; x.len()];
        rms_norm(&want_sum, &weight, 1e-5, &mut want).unwrap();
        assert!(want.iter().zip(&out).all(|(a, b)| a.to_bits() == b.to_bits()), "row {row}");
    }
}

#[test]
fn rows_split_across_threads_match_one_row_at_a_time() {
    // Enough rows for the parallel split, and a count that leaves a short last task.
    let (row, rows) = (576, 53);
    let (x, weight) = inputs(row, rows, 400);
    let (delta, _) = inputs(row, rows, 401);
    let mut all = vec![0.0; x.len()];
    rms_norm(&x, &weight, 1e-5, &mut all).unwrap();
    let (mut sum, mut fused) = (vec![0.0; x.len()], vec![0.0; x.len()]);
    add_rms_norm(&x, &delta, &weight, 1e-5, &mut sum, &mut fused).unwrap();
    for r in 0..rows {
        let span = r * row..(r + 1) * row;
        let mut one = vec![0.0; row];
        rms_norm(&x[span.clone()], &weight, 1e-5, &mut one).unwrap();
        assert_eq!(&all[span.clone()], &one[..], "norm row {r}");
        let (mut s, mut o) = (vec![0.0; row], vec![0.0; row]);
        add_rms_norm(&x[span.clone()], &delta[span.clone()], &weight, 1e-5, &mut s, &mut o).unwrap();
        assert_eq!(&sum[span.clone()], &s[..], "sum row {r}");
        assert_eq!(&fused[span], &o[..], "fused row {r}");
    }
}

#[test]
fn zero_rows_norm_to_zero_and_mismatched_lengths_are_errors() {
    let weight = vec![1.0; 8];
    let mut out = vec![f32::NAN; 8];
    rms_norm(&[0.0; 8], &weight, 1e-6, &mut out).unwrap();
    assert_eq!(out, vec![0.0; 8]);

    let mismatch = |r: Result<(), KernelError>| matches!(r, Err(KernelError::LengthMismatch { .. }));
    assert!(mismatch(rms_norm(&[1.0; 12], &weight, 1e-6, &mut [0.0; 12])), "x is not whole rows");
    assert!(mismatch(rms_norm(&[1.0; 8], &[], 1e-6, &mut [0.0; 8])), "empty weight");
    assert!(mismatch(rms_norm(&[1.0; 16], &weight, 1e-6, &mut [0.0; 8])), "short out");
    let (mut sum, mut out) = (vec![0.0; 16], vec![0.0; 16]);
    assert!(mismatch(add_rms_norm(&[1.0; 16], &[1.0; 8], &weight, 1e-6, &mut sum, &mut out)), "short delta");
    assert!(mismatch(add_rms_norm(&[1.0; 16], &[1.0; 16], &weight, 1e-6, &mut sum[..8], &mut out)), "short sum");
}
