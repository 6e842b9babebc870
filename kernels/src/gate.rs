//! The gate of a feed-forward block, `act(gate) * up` for SiLU or tanh-approximated GELU, fused
//! into one pass.
//!
//! Decode runs it on one row of the feed-forward width per layer (8960 values on a 1.5B model)
//! between two products, on one thread while the others wait, so a libm `expf` per value was a
//! measurable share of a token; GELU through libm's `tanhf` was 15% of Gemma 3's prefill. The
//! x86 path evaluates `exp` eight lanes at a time, the aarch64 path four. Both activations are
//! `g / (1 + exp(-u))`: `u = g` for SiLU, and for GELU `0.5 g (1 + tanh(z)) = g / (1 + exp(-2 z))`
//! with `z = sqrt(2 / pi) (g + 0.044715 g^3)`, a form that, unlike `1 + tanh(z)`, does not cancel
//! for negative `g`.

use crate::KernelError;
use crate::cpu;
#[cfg(target_arch = "x86_64")]
use crate::cpu::SimdPath;

/// `2 sqrt(2 / pi)`: GELU's `exp` argument is this times `g (1 + GELU_CUBIC g^2)`.
pub(crate) const GELU_SCALE: f32 = 1.595_769_2;
/// The cubic term's coefficient in the tanh approximation of GELU.
pub(crate) const GELU_CUBIC: f32 = 0.044_715;

/// `gate[i] = silu(gate[i]) * up[i]`, where `silu(g) = g / (1 + exp(-g))`.
pub fn silu_mul(gate: &mut [f32], up: &[f32]) -> Result<(), KernelError> {
    gate_mul::<false>(gate, up)
}

/// `gate[i] = gelu(gate[i]) * up[i]`, with GELU's tanh approximation (as ggml and PyTorch's
/// `approximate="tanh"` compute it).
pub fn gelu_tanh_mul(gate: &mut [f32], up: &[f32]) -> Result<(), KernelError> {
    gate_mul::<true>(gate, up)
}

fn gate_mul<const GELU: bool>(gate: &mut [f32], up: &[f32]) -> Result<(), KernelError> {
    if gate.len() != up.len() {
        return Err(KernelError::LengthMismatch {
            what: if GELU { "gelu_tanh_mul up" } else { "silu_mul up" },
            unit: "values",
            expected: gate.len(),
            actual: up.len(),
        });
    }
    #[cfg(target_arch = "aarch64")]
    if cpu::simd_allowed(crate::InstructionSet::Neon) {
        crate::aarch64::gate::gate_mul::<GELU>(gate, up);
        return Ok(());
    }
    match cpu::detected() {
        // SAFETY: both paths exist only once AVX2 and FMA were detected.
        #[cfg(target_arch = "x86_64")]
        SimdPath::Avx2(_) | SimdPath::Avx512(_) => unsafe { crate::x86::gate_mul::<GELU>(gate, up) },
        _ => gate_mul_scalar::<GELU>(gate, up),
    }
    Ok(())
}

/// The portable form, also the reference the SIMD path is tested against.
pub(crate) fn gate_mul_scalar<const GELU: bool>(gate: &mut [f32], up: &[f32]) {
    for (g, &u) in gate.iter_mut().zip(up) {
        let arg = if GELU { GELU_SCALE * *g * (1.0 + GELU_CUBIC * *g * *g) } else { *g };
        *g = *g / (1.0 + (-arg).exp()) * u;
    }
}
