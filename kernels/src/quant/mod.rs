//! Block layouts of the GGUF tensor types: dequantization and portable dot products.
//!
//! Every format module reads blocks straight out of the weight bytes as fixed-size arrays, so the
//! offsets below are checked at compile time and no block is ever copied out of the mapping.

pub(crate) mod float;
pub(crate) mod k_high;
pub(crate) mod k_low;
pub(crate) mod legacy;

use crate::{GgmlType, KernelError};

/// Reads the little-endian f16 at bytes `lo`, `hi`.
#[inline(always)]
pub(crate) fn f16_le(lo: u8, hi: u8) -> f32 {
    half::f16::from_bits(u16::from_le_bytes([lo, hi])).to_f32()
}

/// The `N` bytes of `b` starting at `at`, as an array.
///
/// Blocks are fixed-size arrays and every field offset is a constant inside them, so the lookup
/// cannot fail; the compiler removes the check.
#[inline(always)]
pub(crate) fn bytes_at<const N: usize>(b: &[u8], at: usize) -> &[u8; N] {
    match b.get(at..).and_then(|rest| rest.first_chunk::<N>()) {
        Some(field) => field,
        None => unreachable!("block field {at}..{} outside a {}-byte block", at + N, b.len()),
    }
}

/// `sum(q[i] * a[i])` for unsigned weight quants; on fixed-size arrays, so LLVM vectorizes it.
#[inline(always)]
pub(crate) fn dot_u8_i8<const N: usize>(q: &[u8; N], a: &[i8; N]) -> i32 {
    q.iter().zip(a).map(|(&q, &a)| i32::from(q) * i32::from(a)).sum()
}

/// `sum(q[i] * a[i])` for weight quants stored as signed bytes.
#[inline(always)]
pub(crate) fn dot_i8_i8<const N: usize>(q: &[u8; N], a: &[i8; N]) -> i32 {
    q.iter().zip(a).map(|(&q, &a)| i32::from(q as i8) * i32::from(a)).sum()
}

/// `sum(q[i] * a[i])` for signed weight quants already unpacked.
#[inline(always)]
pub(crate) fn dot_s8_i8<const N: usize>(q: &[i8; N], a: &[i8; N]) -> i32 {
    q.iter().zip(a).map(|(&q, &a)| i32::from(q) * i32::from(a)).sum()
}

/// Blocks per group in `two_pass`: enough to amortize the loop switch, small enough for registers
/// or L1.
const TWO_PASS_GROUP: usize = 16;

/// Sums `float_pass(block, act, int_pass(block, act))` over pairs of weight and activation blocks.
///
/// The integer dot products of a group of blocks run in one loop and their float scaling in a
/// second: with both in one loop, LLVM fully unrolls the byte products and then fails to vectorize
/// them (on x86-64 baseline and aarch64 alike), which made these kernels several times slower.
#[inline(always)]
pub(crate) fn two_pass<B, A, I: Copy + Default>(
    blocks: &[B],
    acts: &[A],
    int_pass: impl Fn(&B, &A) -> I,
    float_pass: impl Fn(&B, &A, I) -> f32,
) -> f32 {
    let mut acc = 0f32;
    let mut ints = [I::default(); TWO_PASS_GROUP];
    for (bg, ag) in blocks.chunks(TWO_PASS_GROUP).zip(acts.chunks(TWO_PASS_GROUP)) {
        for ((b, a), i) in bg.iter().zip(ag).zip(ints.iter_mut()) {
            *i = int_pass(b, a);
        }
        for ((b, a), &i) in bg.iter().zip(ag).zip(ints.iter()) {
            acc += float_pass(b, a, i);
        }
    }
    acc
}

/// Checks that `src` holds exactly the `len` elements of `ty` and returns the block count.
pub(crate) fn check_dequantize_lengths(ty: GgmlType, src: &[u8], len: usize) -> Result<usize, KernelError> {
    let bytes = ty.bytes_for(len).ok_or(KernelError::NotWholeBlocks {
        what: "dequantize output",
        ty,
        len,
        block_size: ty.block_size(),
    })?;
    if src.len() != bytes {
        return Err(KernelError::LengthMismatch {
            what: "dequantize input",
            unit: "bytes",
            expected: bytes,
            actual: src.len(),
        });
    }
    Ok(len / ty.block_size())
}

/// Dequantizes `dst.len()` elements of `ty` from exactly their bytes in `src`.
pub(crate) fn dequantize(ty: GgmlType, src: &[u8], dst: &mut [f32]) -> Result<(), KernelError> {
    check_dequantize_lengths(ty, src, dst.len())?;
    match ty {
        GgmlType::F32 => float::dequantize_f32(src, dst),
        GgmlType::F16 => float::dequantize_f16(src, dst),
        GgmlType::BF16 => float::dequantize_bf16(src, dst),
        GgmlType::Q4_0 => legacy::dequantize_q4_0(src, dst),
        GgmlType::Q4_1 => legacy::dequantize_q4_1(src, dst),
        GgmlType::Q5_0 => legacy::dequantize_q5_0(src, dst),
        GgmlType::Q5_1 => legacy::dequantize_q5_1(src, dst),
        GgmlType::Q8_0 => legacy::dequantize_q8_0(src, dst),
        GgmlType::Q8_1 => legacy::dequantize_q8_1(src, dst),
        GgmlType::Q2K => k_low::dequantize_q2k(src, dst),
        GgmlType::Q3K => k_low::dequantize_q3k(src, dst),
        GgmlType::Q4K => k_high::dequantize_q4k(src, dst),
        GgmlType::Q5K => k_high::dequantize_q5k(src, dst),
        GgmlType::Q6K => k_high::dequantize_q6k(src, dst),
        GgmlType::Q8K => k_low::dequantize_q8k(src, dst),
    }
    Ok(())
}
