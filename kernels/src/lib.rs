//! Hand-written compute kernels for hearth.
//!
//! Quantized weights stay in the bytes of the mapped GGUF file; these kernels read them in place.
//! SIMD paths are chosen at run time, so a default x86-64 build still uses AVX2 where the CPU has it,
//! and an aarch64 build uses NEON's dot-product instructions where the CPU has them.

#[cfg(target_arch = "aarch64")]
mod aarch64;
mod activation;
mod cpu;
pub mod cuda;
mod error;
pub mod exp;
mod gate;
mod huge;
mod matmul;
mod norm;
mod packed;
mod quant;
mod spin_pool;
mod stream;
mod types;
#[cfg(target_arch = "x86_64")]
mod x86;

#[cfg(test)]
mod tests;

#[cfg(target_arch = "aarch64")]
pub use aarch64::f16x4_to_f32;
pub use cpu::InstructionSet;
pub use error::KernelError;
pub use gate::{gelu_tanh_mul, silu_mul};
pub use huge::{ArenaBytes, PackArena};
pub use norm::{add_rms_norm, rms_norm};
pub use packed::{PackedWeights, pack_in};
pub use types::GgmlType;

/// Dequantizes `dst.len()` elements of type `ty` from `src` (whole blocks) into `dst`.
///
/// `src` must hold exactly the bytes of those elements (`ty.bytes_for(dst.len())`).
pub fn dequantize(ty: GgmlType, src: &[u8], dst: &mut [f32]) -> Result<(), KernelError> {
    quant::dequantize(ty, src, dst)
}

/// y[i*n + j] = sum_l x[i*k + l] * W[j][l] for i < m, j < n, where W is `n` rows of `k` elements of
/// type `ty` stored contiguously in `w` (row j at byte j * ty.bytes_for(k)).
///
/// Work is spread over the current rayon pool by chunks of weight rows.
pub fn matmul(
    ty: GgmlType,
    w: &[u8],
    n: usize,
    k: usize,
    x: &[f32],
    m: usize,
    y: &mut [f32],
) -> Result<(), KernelError> {
    matmul::matmul_on(cpu::detected(), ty, w, n, k, x, m, y)
}

/// The wrapping sum of the native-endian 8-byte words of `bytes`, then of its last
/// `bytes.len() % 8` bytes, read with the widest loads this CPU has: a probe of how fast one
/// thread can read memory.
pub fn stream_sum(bytes: &[u8]) -> u64 {
    stream::sum(bytes)
}

/// Calls `f` on every item in parallel, for a step of the model over `rows` activation rows.
///
/// Decode-sized steps run on the helper threads that their matrix products spin on: on rayon,
/// whose workers are separate threads, the work (a decode step's attention) ran beside helpers
/// still spinning from the last product, three busy threads on two cores. Larger steps use rayon,
/// as their products do.
pub fn for_each_in_step<T: Send>(rows: usize, items: &mut [T], f: impl Fn(&mut T) + Sync) {
    use rayon::prelude::*;
    if rows <= packed::DECODE_ROWS {
        spin_pool::for_each_mut(items, f);
    } else {
        items.par_iter_mut().for_each(&f);
    }
}

/// Whether SIMD code outside this crate may use `set`: the CPU has it, and `HEARTH_SIMD` does not
/// name a lower path (see [`simd_level`]).
pub fn simd_allowed(set: InstructionSet) -> bool {
    cpu::simd_allowed(set)
}

/// "avx512+vnni", "avx2+fma", "neon+dotprod" or "scalar": which path matmul takes on this CPU.
///
/// The best path the CPU supports, unless the environment variable `HEARTH_SIMD` names a lower one
/// this CPU also has (to compare paths on one machine).
pub fn simd_level() -> &'static str {
    cpu::detected().name()
}
