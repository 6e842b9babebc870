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

/// Checks that `src` holds exactly the `len` elements of `ty` and returns the block count.
pub(crate) fn check_dequantize_lengths(
    ty: GgmlType,
    src: &[u8],
    len: usize,
) -> Result<usize, KernelError> {
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
