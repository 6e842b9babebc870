//! `act(gate) * up` (SiLU or tanh-approximated GELU, see `crate::gate`) eight lanes at a time,
//! with `exp` from a range reduction and a polynomial.

use std::arch::x86_64::*;

use crate::exp::{EXP_POLY, LN2_HI, LN2_LO};
use crate::gate::{GELU_CUBIC, GELU_SCALE};

/// The largest argument `exp8` takes as it is.
const EXP_MAX: f32 = 88.3;

/// `exp(x)` in every lane, within about one unit in the last place (`crate::exp`'s reduction and
/// polynomial, with `n` added to the exponent). Inputs are clamped to where the result is a
/// finite nonzero f32, which is all the gates need: beyond them `1 + exp(x)` is 1 or so large
/// that the quotient is next to zero either way.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn exp8(x: __m256) -> __m256 {
    let x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3)), _mm256_set1_ps(EXP_MAX));
    let n = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm256_mul_ps(
        x,
        _mm256_set1_ps(std::f32::consts::LOG2_E),
    ));
    let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_HI), x);
    let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_LO), r);
    let mut p = _mm256_set1_ps(EXP_POLY[0]);
    for &c in &EXP_POLY[1..] {
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(c));
    }
    let r2 = _mm256_mul_ps(r, r);
    let e = _mm256_add_ps(_mm256_fmadd_ps(p, r2, r), _mm256_set1_ps(1.0));
    // 2^n, built in the exponent field; n is within [-126, 127] after the clamp.
    let two_n = _mm256_slli_epi32::<23>(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)));
    _mm256_mul_ps(e, _mm256_castsi256_ps(two_n))
}

/// `gate[i] = gate[i] / (1 + exp(-u)) * up[i]`, with `u = gate[i]` (SiLU) or GELU's argument
/// (`GELU`); `up` is at least as long as `gate`.
#[target_feature(enable = "avx2,fma")]
pub(crate) fn gate_mul<const GELU: bool>(gate: &mut [f32], up: &[f32]) {
    let (gs, g_rest) = gate.as_chunks_mut::<8>();
    let (us, u_rest) = up.as_chunks::<8>();
    let one = _mm256_set1_ps(1.0);
    for (g, u) in gs.iter_mut().zip(us) {
        // SAFETY: each chunk is eight f32; the loads and the store have no alignment requirement.
        unsafe {
            let gv = _mm256_loadu_ps(g.as_ptr());
            let arg = if GELU {
                // The same operations in the same order as the scalar form, without fusing.
                let cubic = _mm256_add_ps(one, _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(GELU_CUBIC), gv), gv));
                _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(GELU_SCALE), gv), cubic)
            } else {
                gv
            };
            let neg = _mm256_sub_ps(_mm256_setzero_ps(), arg);
            let act = _mm256_div_ps(gv, _mm256_add_ps(one, exp8(neg)));
            // Past exp8's clamp the true quotient is below 1e-36 times the gate: zero, as the
            // scalar form's infinite exp gives (a NaN compares false and stays).
            let act = _mm256_andnot_ps(_mm256_cmp_ps::<_CMP_GT_OQ>(neg, _mm256_set1_ps(EXP_MAX)), act);
            _mm256_storeu_ps(g.as_mut_ptr(), _mm256_mul_ps(act, _mm256_loadu_ps(u.as_ptr())));
        }
    }
    crate::gate::gate_mul_scalar::<GELU>(g_rest, u_rest);
}
