//! RMS norm over rows, alone or fused with the residual add before it, computed as ggml does:
//! the squares (rounded to f32) summed in f64, `scale = 1 / sqrt(mean + eps)` in f32, and each
//! output `x * scale * weight`.
//!
//! Decode normalises one row twice per layer, between products, on one thread while the others
//! wait. candle's norm sums the squares one f32 at a time (a serial dependency the compiler may
//! not reorder), and the residual add before it is another pass, another allocation and another
//! dispatch. Here the sum runs in [`LANES`] independent f64 lanes, which the compiler vectorises
//! for the widest unit this CPU has (picked at run time), and the add writes its row while the
//! row is in L1 for the norm. Every path sums in the same lane order, so they agree to the bit.

use rayon::prelude::*;

use crate::KernelError;
#[cfg(target_arch = "x86_64")]
use crate::cpu::{self, InstructionSet};
use crate::matmul::expect_len;

/// Independent f64 partial sums per row: two AVX-512 or four AVX2 registers, enough to hide the
/// latency of the adds.
const LANES: usize = 16;

/// Rows per parallel task; a decode step's one row stays on the calling thread.
const ROWS_PER_TASK: usize = 16;

/// `out = x * (1 / sqrt(mean(x^2) + eps)) * weight` for each row of `x` (rows of `weight.len()`
/// values).
pub fn rms_norm(x: &[f32], weight: &[f32], eps: f32, out: &mut [f32]) -> Result<(), KernelError> {
    check_rows("rms_norm x", x.len(), weight.len())?;
    expect_len("rms_norm out", "values", x.len(), out.len())?;
    let row = weight.len();
    let path = Path::detect();
    if x.len() <= row * ROWS_PER_TASK {
        path.run(Rows::Norm { x, weight, eps, out });
    } else {
        let task = row * ROWS_PER_TASK;
        x.par_chunks(task).zip(out.par_chunks_mut(task)).for_each(|(x, out)| {
            path.run(Rows::Norm { x, weight, eps, out });
        });
    }
    Ok(())
}

/// `sum = x + delta`, then `out = rms_norm(sum)`: the residual add of a block and the norm
/// after it, in one pass over the inputs and one over the sum.
pub fn add_rms_norm(
    x: &[f32],
    delta: &[f32],
    weight: &[f32],
    eps: f32,
    sum: &mut [f32],
    out: &mut [f32],
) -> Result<(), KernelError> {
    check_rows("add_rms_norm x", x.len(), weight.len())?;
    expect_len("add_rms_norm delta", "values", x.len(), delta.len())?;
    expect_len("add_rms_norm sum", "values", x.len(), sum.len())?;
    expect_len("add_rms_norm out", "values", x.len(), out.len())?;
    let row = weight.len();
    let path = Path::detect();
    if x.len() <= row * ROWS_PER_TASK {
        path.run(Rows::AddNorm { x, delta, weight, eps, sum, out });
    } else {
        let task = row * ROWS_PER_TASK;
        let inputs = x.par_chunks(task).zip(delta.par_chunks(task));
        let outputs = sum.par_chunks_mut(task).zip(out.par_chunks_mut(task));
        inputs.zip(outputs).for_each(|((x, delta), (sum, out))| {
            path.run(Rows::AddNorm { x, delta, weight, eps, sum, out });
        });
    }
    Ok(())
}

fn check_rows(what: &'static str, len: usize, row: usize) -> Result<(), KernelError> {
    if row == 0 || !len.is_multiple_of(row) {
        return Err(KernelError::LengthMismatch {
            what,
            unit: "values",
            expected: len.next_multiple_of(row.max(1)),
            actual: len,
        });
    }
    Ok(())
}

/// Whole rows of one call, with lengths already checked.
enum Rows<'a> {
    Norm { x: &'a [f32], weight: &'a [f32], eps: f32, out: &'a mut [f32] },
    AddNorm { x: &'a [f32], delta: &'a [f32], weight: &'a [f32], eps: f32, sum: &'a mut [f32], out: &'a mut [f32] },
}

/// The instruction set the rows are compiled for.
#[derive(Debug, Clone, Copy)]
enum Path {
    Portable,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

impl Path {
    fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            if cpu::simd_allowed(InstructionSet::Avx512f) {
                return Path::Avx512;
            }
            if cpu::simd_allowed(InstructionSet::Avx2F16cFma) {
                return Path::Avx2;
            }
        }
        Path::Portable
    }

    fn run(self, rows: Rows<'_>) {
        match self {
            Path::Portable => run_rows(rows),
            // SAFETY: `detect` picks these only where `simd_allowed` found the set on this CPU.
            #[cfg(target_arch = "x86_64")]
            Path::Avx2 => unsafe { run_rows_avx2(rows) },
            // SAFETY: as above.
            #[cfg(target_arch = "x86_64")]
            Path::Avx512 => unsafe { run_rows_avx512(rows) },
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn run_rows_avx2(rows: Rows<'_>) {
    run_rows(rows);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn run_rows_avx512(rows: Rows<'_>) {
    run_rows(rows);
}

/// The one body every path compiles: inlined into each caller so the vectoriser sees that
/// caller's instruction set.
#[inline(always)]
fn run_rows(rows: Rows<'_>) {
    match rows {
        Rows::Norm { x, weight, eps, out } => {
            for (x, out) in x.chunks_exact(weight.len()).zip(out.chunks_exact_mut(weight.len())) {
                let scale = scale_for(sum_squares(x), x.len(), eps);
                scale_row(x, weight, scale, out);
            }
        }
        Rows::AddNorm { x, delta, weight, eps, sum, out } => {
            let row = weight.len();
            let inputs = x.chunks_exact(row).zip(delta.chunks_exact(row));
            for ((x, delta), (sum, out)) in inputs.zip(sum.chunks_exact_mut(row).zip(out.chunks_exact_mut(row))) {
                let scale = scale_for(add_sum_squares(x, delta, sum), row, eps);
                scale_row(sum, weight, scale, out);
            }
        }
    }
}

/// `sum(x[i]^2)`, each square rounded to f32 as ggml's `(double)(x * x)` is, summed in f64.
#[inline(always)]
fn sum_squares(x: &[f32]) -> f64 {
    let mut acc = [0f64; LANES];
    let (chunks, rest) = x.as_chunks::<LANES>();
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += f64::from(v * v);
        }
    }
    finish(acc, rest.iter().map(|&v| v * v))
}

/// `sum[i] = x[i] + delta[i]`, returning the sum of their squares as [`sum_squares`] would. Two
/// passes, since one that both adds and widens does not vectorise; the second reads `sum` from L1.
#[inline(always)]
fn add_sum_squares(x: &[f32], delta: &[f32], sum: &mut [f32]) -> f64 {
    for ((s, &x), &d) in sum.iter_mut().zip(x).zip(delta) {
        *s = x + d;
    }
    sum_squares(sum)
}

/// The lanes added in a fixed order, then the ragged tail's squares.
#[inline(always)]
fn finish(acc: [f64; LANES], tail: impl Iterator<Item = f32>) -> f64 {
    let mut total = acc.iter().sum::<f64>();
    for sq in tail {
        total += f64::from(sq);
    }
    total
}

/// `1 / sqrt(mean + eps)`, the mean rounded to f32 first, as ggml does.
#[inline(always)]
fn scale_for(sum_sq: f64, len: usize, eps: f32) -> f32 {
    let mean = (sum_sq / len as f64) as f32;
    1.0 / (mean + eps).sqrt()
}

#[inline(always)]
fn scale_row(x: &[f32], weight: &[f32], scale: f32, out: &mut [f32]) {
    for ((o, &v), &w) in out.iter_mut().zip(x).zip(weight) {
        *o = v * scale * w;
    }
}

/// The plain formula the paths are tested against: squares summed one at a time in f64.
#[cfg(test)]
pub(crate) fn rms_norm_reference(x: &[f32], weight: &[f32], eps: f32) -> Vec<f32> {
    let mut out = Vec::with_capacity(x.len());
    for row in x.chunks_exact(weight.len()) {
        let sum: f64 = row.iter().map(|&v| f64::from(v * v)).sum();
        let scale = scale_for(sum, row.len(), eps);
        out.extend(row.iter().zip(weight).map(|(&v, &w)| v * scale * w));
    }
    out
}

/// Every path this CPU can run, for tests that compare them.
#[cfg(test)]
pub(crate) fn rms_norm_on_every_path(x: &[f32], weight: &[f32], eps: f32) -> Vec<(String, Vec<f32>)> {
    let paths = [
        Some(Path::Portable),
        #[cfg(target_arch = "x86_64")]
        cpu::simd_allowed(InstructionSet::Avx2F16cFma).then_some(Path::Avx2),
        #[cfg(target_arch = "x86_64")]
        cpu::simd_allowed(InstructionSet::Avx512f).then_some(Path::Avx512),
    ];
    paths
        .into_iter()
        .flatten()
        .map(|path| {
            let mut out = vec![0.0; x.len()];
            path.run(Rows::Norm { x, weight, eps, out: &mut out });
            (format!("{path:?}"), out)
        })
        .collect()
}
