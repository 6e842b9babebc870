//! NEON kernels with the dot-product extension (`sdot`) for aarch64, chosen at run time.
//!
//! NEON itself is part of every aarch64 target; the `sdot` instruction (FEAT_DotProd: Apple M1 and
//! later, Neoverse N1/V1 and later, Cortex-A55/A76 and later) is not, so `matmul` reaches these
//! kernels only through a `SimdPath::Neon`, which exists only once `dotprod` was detected. CPUs
//! without it (Cortex-A53/A72/A73) take the scalar path.
//!
//! Every quantized format has a one-row kernel and register-blocked tiles (weight rows x
//! activation rows, see `matmul::Tiles`), all from one generic body per format family: each weight
//! block is unpacked to signed bytes once per tile, each activation block loaded once per tile, and
//! `sdot` sums four byte products into each 32-bit lane. Integer sums stay in vectors until a
//! block's float scale applies, so no lane is summed horizontally before the end of a row.
//!
//! The kernels use index loops rather than `array::map`, `array::from_fn` or iterator adapters with
//! closures: a closure inherits its function's target features, so LLVM cannot inline it into the
//! (featureless) core adapter, and the inner loop would call a function per block.

mod float;
pub(crate) mod gate;
mod k_quants;
mod legacy;

use std::arch::aarch64::*;
use std::arch::asm;

use crate::GgmlType;
use crate::matmul::{
    DECODE_TILE, PAIR_TILE_W, PREFILL_TILE_A, PREFILL_TILE_W, RowDot, RowKernel, TRIPLE_TILE_W, Tiles,
};
use crate::quant::k_high::{Q4K_BYTES, Q5K_BYTES};
use crate::quant::legacy::{Q4_0_BYTES, Q4_1_BYTES, Q5_0_BYTES, Q5_1_BYTES, Q8_0_BYTES};
use legacy::{Q4_0, Q4_1, Q5_0, Q5_1, Q8_0};

/// The NEON kernels for `ty`, where there are some.
pub(crate) fn neon_dot(ty: GgmlType) -> Option<RowDot> {
    // Every tile shape of a format is one generic kernel: `$tile::<$arg.., weight rows,
    // activation rows>`.
    macro_rules! tiled {
        ($form:ident, $one:expr, $($tile:ident)::+ $(, $arg:ident)*) => {
            RowDot::$form(RowKernel::tiled(
                $one,
                Tiles {
                    decode: $($tile)::+::<$($arg,)* DECODE_TILE, 1>,
                    prefill: $($tile)::+::<$($arg,)* PREFILL_TILE_W, PREFILL_TILE_A>,
                    pair: $($tile)::+::<$($arg,)* PAIR_TILE_W, 2>,
                    triple: $($tile)::+::<$($arg,)* TRIPLE_TILE_W, 3>,
                },
            ))
        };
    }
    Some(match ty {
        GgmlType::F32 => RowDot::Float(RowKernel::one(float::dot_f32)),
        GgmlType::F16 => RowDot::Float(RowKernel::one(float::dot_f16)),
        GgmlType::BF16 => RowDot::Float(RowKernel::one(float::dot_bf16)),
        GgmlType::Q4_0 => tiled!(Q8, legacy::dot::<Q4_0_BYTES, Q4_0>, legacy::tile, Q4_0_BYTES, Q4_0),
        GgmlType::Q4_1 => tiled!(Q8, legacy::dot::<Q4_1_BYTES, Q4_1>, legacy::tile, Q4_1_BYTES, Q4_1),
        GgmlType::Q5_0 => tiled!(Q8, legacy::dot::<Q5_0_BYTES, Q5_0>, legacy::tile, Q5_0_BYTES, Q5_0),
        GgmlType::Q5_1 => tiled!(Q8, legacy::dot::<Q5_1_BYTES, Q5_1>, legacy::tile, Q5_1_BYTES, Q5_1),
        GgmlType::Q8_0 => tiled!(Q8, legacy::dot::<Q8_0_BYTES, Q8_0>, legacy::tile, Q8_0_BYTES, Q8_0),
        GgmlType::Q4K => tiled!(Q8K, k_quants::dot_k4::<Q4K_BYTES>, k_quants::tile_k4, Q4K_BYTES),
        GgmlType::Q5K => tiled!(Q8K, k_quants::dot_k4::<Q5K_BYTES>, k_quants::tile_k4, Q5K_BYTES),
        GgmlType::Q6K => tiled!(Q8K, k_quants::dot_q6k, k_quants::tile_q6k),
        _ => return None,
    })
}

/// `acc` plus, in each 32-bit lane i, the dot product of bytes 4i..4i+4 of `a` and `b` (`sdot`).
#[inline]
#[target_feature(enable = "neon,dotprod")]
fn sdot(acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t {
    let mut acc = acc;
    // `vdotq_s32` is not stable yet; the instruction is what it would emit. The enclosing
    // function's `dotprod` feature is what makes it valid here.
    // SAFETY: pure register arithmetic, no memory access; dotprod is enabled for this function.
    unsafe {
        asm!(
            "sdot {acc:v}.4s, {a:v}.16b, {b:v}.16b",
            acc = inout(vreg) acc,
            a = in(vreg) a,
            b = in(vreg) b,
            options(pure, nomem, nostack, preserves_flags),
        );
    }
    acc
}

/// Dot products of the 32 signed bytes `w` with the 32 signed bytes `a`, four partial sums.
#[inline]
#[target_feature(enable = "neon,dotprod")]
fn sdot32(w: [int8x16_t; 2], a: [int8x16_t; 2]) -> int32x4_t {
    sdot(sdot(vdupq_n_s32(0), w[0], a[0]), w[1], a[1])
}

/// The little-endian f16 `lo, hi` as an f32.
///
/// `fcvt` from half precision is base Armv8 floating point; `half`'s conversion only uses it when
/// the whole build enables FEAT_FP16, and this runs once per weight block.
#[inline(always)]
fn f16_le(lo: u8, hi: u8) -> f32 {
    let bits = u16::from_le_bytes([lo, hi]);
    let out: f32;
    // SAFETY: pure register arithmetic, no memory access.
    unsafe {
        asm!(
            "fcvt {out:s}, {bits:h}",
            out = lateout(vreg) out,
            bits = in(vreg) bits,
            options(pure, nomem, nostack, preserves_flags),
        );
    }
    out
}

/// Widens four f16 (as their bits) to f32 lanes (`fcvtl`, base Armv8 like `f16_le`).
#[inline(always)]
pub fn f16x4_to_f32(bits: uint16x4_t) -> float32x4_t {
    let out: float32x4_t;
    // SAFETY: pure register arithmetic, no memory access.
    unsafe {
        asm!(
            "fcvtl {out:v}.4s, {bits:v}.4h",
            out = lateout(vreg) out,
            bits = in(vreg) bits,
            options(pure, nomem, nostack, preserves_flags),
        );
    }
    out
}

/// Loads 16 bytes.
#[inline]
#[target_feature(enable = "neon,dotprod")]
fn load_u8x16(p: &[u8; 16]) -> uint8x16_t {
    // SAFETY: the array is exactly 16 bytes; vld1q has no alignment requirement.
    unsafe { vld1q_u8(p.as_ptr()) }
}

/// Loads 32 activation quants as two vectors.
#[inline]
#[target_feature(enable = "neon,dotprod")]
fn load_i8x32(q: &[i8; 32]) -> [int8x16_t; 2] {
    // SAFETY: the array is exactly 32 bytes; vld1q has no alignment requirement.
    unsafe { [vld1q_s8(q.as_ptr()), vld1q_s8(q.as_ptr().add(16))] }
}

/// Loads 8 floats as two vectors.
#[inline]
#[target_feature(enable = "neon,dotprod")]
fn load_f32x8(v: &[f32; 8]) -> [float32x4_t; 2] {
    // SAFETY: the array is exactly 8 floats.
    unsafe { [vld1q_f32(v.as_ptr()), vld1q_f32(v.as_ptr().add(4))] }
}

/// Weight rows as blocks, activation rows, and the number of blocks every one of them has.
type CommonBlocks<'w, 'a, const BYTES: usize, A, const NR: usize, const MR: usize> =
    ([&'w [[u8; BYTES]]; NR], [&'a [A]; MR], usize);

/// `rows` as arrays of `BYTES`-byte blocks, and `acts`, all cut to the whole blocks present in
/// every one of them (so indexing them needs no bounds checks), with that count. Plain loops, for
/// the reason given at the top of this module.
#[inline(always)]
fn common_blocks<'w, 'a, const BYTES: usize, A, const NR: usize, const MR: usize>(
    rows: [&'w [u8]; NR],
    mut acts: [&'a [A]; MR],
) -> CommonBlocks<'w, 'a, BYTES, A, NR, MR> {
    let mut blocks: [&[[u8; BYTES]]; NR] = [&[]; NR];
    let mut count = usize::MAX;
    for j in 0..NR {
        blocks[j] = rows[j].as_chunks::<BYTES>().0;
        count = count.min(blocks[j].len());
    }
    for a in &acts {
        count = count.min(a.len());
    }
    for row in &mut blocks {
        *row = &row[..count];
    }
    for row in &mut acts {
        *row = &row[..count];
    }
    (blocks, acts, count)
}
