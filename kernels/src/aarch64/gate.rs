//! `act(gate) * up` (SiLU or tanh-approximated GELU, see `crate::gate`) four lanes at a time,
//! with `exp` from a range reduction and a polynomial: the NEON twin of `x86/gate.rs`. NEON is
//! part of every aarch64 CPU, so this needs no detection and no `target_feature`.

use std::arch::aarch64::*;

use crate::exp::{EXP_POLY, LN2_HI, LN2_LO};
use crate::gate::{GELU_CUBIC, GELU_SCALE};

/// The largest argument `exp4` takes as it is.
const EXP_MAX: f32 = 88.3;

/// `exp(x)` in every lane, within about one unit in the last place (`crate::exp`'s reduction and
/// polynomial, with `n` added to the exponent). Inputs are clamped to where the result is a
/// finite nonzero f32, which is all the gates need: beyond them `1 + exp(x)` is 1 or so large
/// that the quotient is next to zero either way.
#[inline(always)]
fn exp4(x: float32x4_t) -> float32x4_t {
    // SAFETY: register arithmetic only.
    unsafe {
        let x = vminq_f32(vmaxq_f32(x, vdupq_n_f32(-87.3)), vdupq_n_f32(EXP_MAX));
        let n = vrndnq_f32(vmulq_n_f32(x, std::f32::consts::LOG2_E));
        let r = vfmsq_n_f32(x, n, LN2_HI);
        let r = vfmsq_n_f32(r, n, LN2_LO);
        let mut p = vdupq_n_f32(EXP_POLY[0]);
        for &c in &EXP_POLY[1..] {
            p = vfmaq_f32(vdupq_n_f32(c), p, r);
        }
        let e = vaddq_f32(vfmaq_f32(r, p, vmulq_f32(r, r)), vdupq_n_f32(1.0));
        // 2^n, built in the exponent field; n is within [-126, 127] after the clamp.
        let two_n = vshlq_n_s32::<23>(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127)));
        vmulq_f32(e, vreinterpretq_f32_s32(two_n))
    }
}

/// `gate[i] = gate[i] / (1 + exp(-u)) * up[i]`, with `u = gate[i]` (SiLU) or GELU's argument
/// (`GELU`); `up` is at least as long as `gate`.
pub(crate) fn gate_mul<const GELU: bool>(gate: &mut [f32], up: &[f32]) {
    let (gs, g_rest) = gate.as_chunks_mut::<4>();
    let (us, u_rest) = up.as_chunks::<4>();
    for (g, u) in gs.iter_mut().zip(us) {
        // SAFETY: each chunk is four f32; the loads and the store have no alignment requirement.
        unsafe {
            let one = vdupq_n_f32(1.0);
            let gv = vld1q_f32(g.as_ptr());
            let arg = if GELU {
                // The same operations in the same order as the scalar form, without fusing.
                let cubic = vaddq_f32(one, vmulq_f32(vmulq_n_f32(gv, GELU_CUBIC), gv));
                vmulq_f32(vmulq_n_f32(gv, GELU_SCALE), cubic)
            } else {
                gv
            };
            let neg = vnegq_f32(arg);
            let act = vdivq_f32(gv, vaddq_f32(one, exp4(neg)));
            // Past exp4's clamp the true quotient is below 1e-36 times the gate: zero, as the
            // scalar form's infinite exp gives (a NaN compares false and stays).
            let beyond = vcgtq_f32(neg, vdupq_n_f32(EXP_MAX));
            let act = vreinterpretq_f32_u32(vbicq_u32(vreinterpretq_u32_f32(act), beyond));
            vst1q_f32(g.as_mut_ptr(), vmulq_f32(act, vld1q_f32(u.as_ptr())));
        }
    }
    crate::gate::gate_mul_scalar::<GELU>(g_rest, u_rest);
}
