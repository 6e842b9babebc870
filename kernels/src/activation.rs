//! Quantization of f32 activations into the 8-bit blocks the integer dot products consume.
//!
//! Activations are quantized once per matmul call and then reused for every weight row, so these
//! blocks are laid out for the kernels (quants aligned to a cache line, f32 scales), not as GGUF stores them.

/// 32 activations as 8-bit integers, the partner of the 32-element weight formats.
///
/// It carries both the Q8_0 scale and the Q8_1 scaled sum, so one layout serves Q4_0, Q5_0 and Q8_0
/// (which need only `d`) and Q4_1 and Q5_1 (whose offset `m` multiplies the sum of the activations).
#[derive(Debug, Clone, Copy)]
#[repr(C, align(64))]
pub(crate) struct Q8Block {
    pub(crate) qs: [i8; 32],
    /// Scale: activation ≈ d * q.
    pub(crate) d: f32,
    /// d times the sum of `qs`.
    pub(crate) sum: f32,
}

impl Q8Block {
    pub(crate) const ZERO: Q8Block = Q8Block { qs: [0; 32], d: 0.0, sum: 0.0 };
}

/// 256 activations as 8-bit integers with sums of each 16, the partner of the K-quant formats.
#[derive(Debug, Clone, Copy)]
#[repr(C, align(64))]
pub(crate) struct Q8KBlock {
    pub(crate) qs: [i8; 256],
    /// Sum of each run of 16 quants; the K-quants' minimums and offsets multiply these.
    pub(crate) bsums: [i16; 16],
    /// `d` times the sum of each run of 32 quants: what a Q4_K/Q5_K sub-block's min multiplies.
    pub(crate) scaled_sums_32: [f32; 8],
    /// Scale: activation ≈ d * q.
    pub(crate) d: f32,
}

impl Q8KBlock {
    pub(crate) const ZERO: Q8KBlock = Q8KBlock { qs: [0; 256], bsums: [0; 16], scaled_sums_32: [0.0; 8], d: 0.0 };
}

/// Rounds half away from zero like C's `roundf`, without a libm call on baseline x86-64.
#[inline(always)]
fn round_to_i8(v: f32) -> i8 {
    // |v| <= 127 by construction; `as` saturates anything else (and maps NaN to 0).
    (v + 0.5f32.copysign(v)) as i8
}

/// Scale and inverse scale mapping the largest magnitude in `x` to 127.
#[inline(always)]
fn scale_for(x: &[f32]) -> (f32, f32) {
    scale_for_amax(x.iter().fold(0f32, |a, v| a.max(v.abs())))
}

/// Quantizes `x` (`32 * out.len()` values) into `out`.
pub(crate) fn quantize_q8(x: &[f32], out: &mut [Q8Block]) {
    match crate::cpu::detected() {
        // SAFETY: both paths exist only once AVX2 and FMA were detected.
        #[cfg(target_arch = "x86_64")]
        crate::cpu::SimdPath::Avx2(_) | crate::cpu::SimdPath::Avx512(_) => unsafe { crate::x86::quantize_q8(x, out) },
        _ => quantize_q8_scalar(x, out),
    }
}

/// The portable `quantize_q8`, also the reference the x86 one must match bit for bit.
pub(crate) fn quantize_q8_scalar(x: &[f32], out: &mut [Q8Block]) {
    for (xs, block) in x.as_chunks::<32>().0.iter().zip(out.iter_mut()) {
        let (d, id) = scale_for(xs);
        let mut sum = 0i32;
        for (q, &v) in block.qs.iter_mut().zip(xs) {
            *q = round_to_i8(v * id);
            sum += i32::from(*q);
        }
        block.d = d;
        block.sum = d * sum as f32;
    }
}

/// Quantizes `x` (`256 * out.len()` values) into `out`.
pub(crate) fn quantize_q8k(x: &[f32], out: &mut [Q8KBlock]) {
    match crate::cpu::detected() {
        // SAFETY: both paths exist only once AVX2 and FMA were detected.
        #[cfg(target_arch = "x86_64")]
        crate::cpu::SimdPath::Avx2(_) | crate::cpu::SimdPath::Avx512(_) => unsafe { crate::x86::quantize_q8k(x, out) },
        _ => quantize_q8k_scalar(x, out),
    }
}

/// The portable `quantize_q8k`, also the reference the x86 one must match bit for bit.
pub(crate) fn quantize_q8k_scalar(x: &[f32], out: &mut [Q8KBlock]) {
    for (xs, block) in x.as_chunks::<256>().0.iter().zip(out.iter_mut()) {
        let (d, id) = scale_for(xs);
        for (q, &v) in block.qs.iter_mut().zip(xs) {
            *q = round_to_i8(v * id);
        }
        block.finish(d);
    }
}

impl Q8KBlock {
    /// Fills in the sums and the scale `d` once the quants are in place.
    #[inline(always)]
    pub(crate) fn finish(&mut self, d: f32) {
        for (s, qs) in self.bsums.iter_mut().zip(self.qs.as_chunks::<16>().0) {
            *s = qs.iter().map(|&q| i16::from(q)).sum();
        }
        for (s, pair) in self.scaled_sums_32.iter_mut().zip(self.bsums.as_chunks::<2>().0) {
            *s = d * f32::from(pair[0] + pair[1]);
        }
        self.d = d;
    }
}

/// Scale and inverse scale for a largest magnitude `amax`, as `scale_for` derives them.
#[inline(always)]
pub(crate) fn scale_for_amax(amax: f32) -> (f32, f32) {
    let d = amax / 127.0;
    let id = if d > 0.0 { 1.0 / d } else { 0.0 };
    (d, id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q8_round_trips_within_half_a_step() {
        let x: Vec<f32> = (0..64).map(|i| ((i * 37 % 23) as f32 - 11.0) * 0.173).collect();
        let mut blocks = [Q8Block::ZERO; 2];
        quantize_q8(&x, &mut blocks);
        for (xs, b) in x.chunks(32).zip(&blocks) {
            let amax = xs.iter().fold(0f32, |a, v| a.max(v.abs()));
            assert!((b.d * 127.0 - amax).abs() < 1e-5);
            for (&v, &q) in xs.iter().zip(&b.qs) {
                assert!((v - b.d * f32::from(q)).abs() <= b.d * 0.5 + 1e-6);
            }
            let sum: i32 = b.qs.iter().map(|&q| i32::from(q)).sum();
            assert_eq!(b.sum, b.d * sum as f32);
        }
    }

    #[test]
    fn q8k_sums_each_sixteen() {
        let x: Vec<f32> = (0..256).map(|i| (i as f32 * 0.71).sin()).collect();
        let mut blocks = [Q8KBlock::ZERO];
        quantize_q8k(&x, &mut blocks);
        let b = &blocks[0];
        for (j, &s) in b.bsums.iter().enumerate() {
            let want: i16 = b.qs[j * 16..j * 16 + 16].iter().map(|&q| i16::from(q)).sum();
            assert_eq!(s, want);
        }
        for (&v, &q) in x.iter().zip(&b.qs) {
            assert!((v - b.d * f32::from(q)).abs() <= b.d * 0.5 + 1e-6);
        }
        for (j, &s) in b.scaled_sums_32.iter().enumerate() {
            assert_eq!(s, b.d * f32::from(b.bsums[2 * j] + b.bsums[2 * j + 1]));
        }
    }

    /// Six blocks of 256 values: random, then exact halves after scaling (127 / 127 * k + 0.5
    /// ties), zeros, one with a NaN, one with an infinity, and subnormals.
    fn awkward_input() -> Vec<f32> {
        use rand::Rng;
        let mut rng = crate::tests::rng(11);
        let mut x: Vec<f32> = (0..256 * 6).map(|_| rng.random_range(-3.0f32..3.0)).collect();
        for (i, v) in x[256..512].iter_mut().enumerate() {
            *v = (i as f32 - 128.0) + 0.5;
        }
        x[256] = 127.0;
        x[512..768].fill(0.0);
        x[800] = f32::NAN;
        x[1100] = f32::INFINITY;
        for v in &mut x[1280..1536] {
            *v *= 1e-40;
        }
        x
    }

    #[test]
    fn q8k_on_this_cpu_matches_the_portable_quants_bit_for_bit() {
        let x = awkward_input();
        let mut want = vec![Q8KBlock::ZERO; 6];
        quantize_q8k_scalar(&x, &mut want);
        let mut got = vec![Q8KBlock::ZERO; 6];
        quantize_q8k(&x, &mut got);
        for (i, (w, g)) in want.iter().zip(&got).enumerate() {
            assert_eq!(w.qs, g.qs, "block {i}");
            assert_eq!(w.bsums, g.bsums, "block {i}");
            assert_eq!(w.d.to_bits(), g.d.to_bits(), "block {i}");
            assert_eq!(w.scaled_sums_32.map(f32::to_bits), g.scaled_sums_32.map(f32::to_bits), "block {i}");
        }
    }

    #[test]
    fn q8_on_this_cpu_matches_the_portable_quants_bit_for_bit() {
        let x = awkward_input();
        let mut want = vec![Q8Block::ZERO; 48];
        quantize_q8_scalar(&x, &mut want);
        let mut got = vec![Q8Block::ZERO; 48];
        quantize_q8(&x, &mut got);
        for (i, (w, g)) in want.iter().zip(&got).enumerate() {
            assert_eq!(w.qs, g.qs, "block {i}");
            assert_eq!(w.d.to_bits(), g.d.to_bits(), "block {i}");
            assert_eq!(w.sum.to_bits(), g.sum.to_bits(), "block {i}");
        }
    }

    #[test]
    fn zero_input_gives_zero_scale() {
        let mut blocks = [Q8Block::ZERO];
        quantize_q8(&[0.0; 32], &mut blocks);
        assert_eq!(blocks[0].d, 0.0);
        assert!(blocks[0].qs.iter().all(|&q| q == 0));
    }
}
