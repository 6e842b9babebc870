//! Unquantized weights: F32, F16 and BF16, little-endian.

#[inline(always)]
fn f32_at(b: &[u8; 4]) -> f32 {
    f32::from_le_bytes(*b)
}

#[inline(always)]
fn bf16_at(b: &[u8; 2]) -> f32 {
    f32::from_bits(u32::from(u16::from_le_bytes(*b)) << 16)
}

pub(crate) fn dequantize_f32(src: &[u8], dst: &mut [f32]) {
    for (b, out) in src.as_chunks::<4>().0.iter().zip(dst) {
        *out = f32_at(b);
    }
}

pub(crate) fn dequantize_f16(src: &[u8], dst: &mut [f32]) {
    for (b, out) in src.as_chunks::<2>().0.iter().zip(dst) {
        *out = super::f16_le(b[0], b[1]);
    }
}

pub(crate) fn dequantize_bf16(src: &[u8], dst: &mut [f32]) {
    for (b, out) in src.as_chunks::<2>().0.iter().zip(dst) {
        *out = bf16_at(b);
    }
}

/// Sums `f(w[i]) * x[i]` over eight interleaved accumulators so the compiler can vectorize it.
#[inline(always)]
fn dot_with<const N: usize>(w: &[u8], x: &[f32], f: impl Fn(&[u8; N]) -> f32) -> f32 {
    let mut acc = [0f32; 8];
    let (wb, _) = w.as_chunks::<N>();
    let (w8, w_tail) = wb.as_chunks::<8>();
    let (x8, x_tail) = x.as_chunks::<8>();
    for (ws, xs) in w8.iter().zip(x8) {
        for l in 0..8 {
            acc[l] += f(&ws[l]) * xs[l];
        }
    }
    let mut sum: f32 = acc.iter().sum();
    for (wv, xv) in w_tail.iter().zip(x_tail) {
        sum += f(wv) * xv;
    }
    sum
}

pub(crate) fn dot_f32(w: &[u8], x: &[f32]) -> f32 {
    dot_with::<4>(w, x, f32_at)
}

pub(crate) fn dot_f16(w: &[u8], x: &[f32]) -> f32 {
    dot_with::<2>(w, x, |b| super::f16_le(b[0], b[1]))
}

pub(crate) fn dot_bf16(w: &[u8], x: &[f32]) -> f32 {
    dot_with::<2>(w, x, bf16_at)
}
