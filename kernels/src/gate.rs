//! The SiLU gate of a feed-forward block, `silu(gate) * up`, fused into one pass.
//!
//! Decode runs it on one row of the feed-forward width per layer (8960 values on a 1.5B model)
//! between two products, on one thread while the others wait, so a libm `expf` per value was a
//! measurable share of a token. The x86 path evaluates `exp` eight lanes at a time.

use crate::KernelError;
use crate::cpu;
#[cfg(target_arch = "x86_64")]
use crate::cpu::SimdPath;

/// `gate[i] = silu(gate[i]) * up[i]`, where `silu(g) = g / (1 + exp(-g))`.
pub fn silu_mul(gate: &mut [f32], up: &[f32]) -> Result<(), KernelError> {
    if gate.len() != up.len() {
        return Err(KernelError::LengthMismatch {
            what: "silu_mul up",
            unit: "values",
            expected: gate.len(),
            actual: up.len(),
        });
    }
    match cpu::detected() {
        // SAFETY: both paths exist only once AVX2 and FMA were detected.
        #[cfg(target_arch = "x86_64")]
        SimdPath::Avx2(_) | SimdPath::Avx512(_) => unsafe { crate::x86::silu_mul(gate, up) },
        _ => silu_mul_scalar(gate, up),
    }
    Ok(())
}

/// The portable form, also the reference the SIMD path is tested against.
pub(crate) fn silu_mul_scalar(gate: &mut [f32], up: &[f32]) {
    for (g, &u) in gate.iter_mut().zip(up) {
        *g = *g / (1.0 + (-*g).exp()) * u;
    }
}
