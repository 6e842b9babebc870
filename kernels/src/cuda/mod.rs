//! What the host needs to run the CUDA kernels of `kernels/cuda/`: kernel names and launch
//! geometry for each, checked against the shapes (always compiled, so they are tested on any
//! machine), and with the `cuda` feature the kernels' PTX, compiled by `build.rs`.
//!
//! Launching is the caller's business (the engine uses candle's CUDA device); this crate has no
//! CUDA dependency.

#[cfg(feature = "cuda")]
mod ptx;

#[cfg(feature = "cuda")]
pub use ptx::{PAGED_ATTENTION_PTX, QMATMUL_PTX};

use crate::{GgmlType, KernelError};

/// Threads per warp.
const WARP: u32 = 32;
/// Warps per thread block of the quantized matmul, one weight row each (`WARPS_PER_BLOCK` in
/// `qmatmul.cu`).
pub const QMATMUL_WARPS_PER_BLOCK: u32 = 4;
/// Activation rows each warp of the quantized matmul multiplies at once (`M_TILE` in `qmatmul.cu`).
pub const QMATMUL_M_TILE: u32 = 4;
/// Most threads an attention or KV-write block may have (`MAX_THREADS` in `paged_attention.cu`):
/// one per head dimension.
pub const ATTENTION_MAX_THREADS: u32 = 256;
/// Elements one lane of the matmul decodes at a time (`UNIT` in `quant.cuh`).
const UNIT: usize = 32;
/// The largest y and z grid dimension CUDA allows.
const GRID_YZ_MAX: usize = 65_535;
/// The largest x grid dimension CUDA allows.
const GRID_X_MAX: usize = (1 << 31) - 1;

/// Grid, block and dynamic shared memory of one kernel launch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LaunchGeometry {
    /// Thread blocks in x, y, z.
    pub grid: (u32, u32, u32),
    /// Threads per block in x, y, z.
    pub block: (u32, u32, u32),
    /// Bytes of dynamic shared memory per block.
    pub shared_bytes: u32,
}

/// The entry point of the quantized matmul for weights of type `ty`, or `None` for types the
/// CUDA kernels do not read (Q2_K, Q3_K, BF16 and the activation-only Q8_1/Q8_K).
pub fn qmatmul_kernel(ty: GgmlType) -> Option<&'static str> {
    Some(match ty {
        GgmlType::F32 => "hearth_qmatmul_f32",
        GgmlType::F16 => "hearth_qmatmul_f16",
        GgmlType::Q4_0 => "hearth_qmatmul_q4_0",
        GgmlType::Q4_1 => "hearth_qmatmul_q4_1",
        GgmlType::Q5_0 => "hearth_qmatmul_q5_0",
        GgmlType::Q5_1 => "hearth_qmatmul_q5_1",
        GgmlType::Q8_0 => "hearth_qmatmul_q8_0",
        GgmlType::Q4K => "hearth_qmatmul_q4_k",
        GgmlType::Q5K => "hearth_qmatmul_q5_k",
        GgmlType::Q6K => "hearth_qmatmul_q6_k",
        GgmlType::BF16 | GgmlType::Q8_1 | GgmlType::Q2K | GgmlType::Q3K | GgmlType::Q8K => return None,
    })
}

/// The entry point that writes new keys and values into their KV blocks.
pub const KV_WRITE_KERNEL: &str = "hearth_kv_write";
/// The entry point of paged attention.
pub const PAGED_ATTENTION_KERNEL: &str = "hearth_paged_attention";
/// The entry point of the rotary embedding of query and key rows at their positions.
pub const ROPE_KERNEL: &str = "hearth_rope";

/// The launch of `y = x · Wᵀ` for `n` weight rows of `k` elements of type `ty` and `m`
/// activation rows; also checks that the kernel reads `ty` and that `k` is whole blocks.
pub fn qmatmul_geometry(ty: GgmlType, n: usize, k: usize, m: usize) -> Result<LaunchGeometry, KernelError> {
    if qmatmul_kernel(ty).is_none() {
        return Err(KernelError::Unsupported { op: "CUDA matmul", ty });
    }
    let block_size = ty.block_size().max(UNIT);
    if k == 0 || !k.is_multiple_of(block_size) {
        return Err(KernelError::NotWholeBlocks { what: "a weight row", ty, len: k, block_size });
    }
    check_int("weight rows", n)?;
    check_int("activation rows", m)?;
    check_int("row length", k)?;
    let grid_x = grid_dim("weight row blocks", n.div_ceil(QMATMUL_WARPS_PER_BLOCK as usize), GRID_X_MAX)?;
    let grid_y = grid_dim("activation row tiles", m.div_ceil(QMATMUL_M_TILE as usize), GRID_YZ_MAX)?;
    Ok(LaunchGeometry { grid: (grid_x, grid_y, 1), block: (QMATMUL_WARPS_PER_BLOCK * WARP, 1, 1), shared_bytes: 0 })
}

/// The launch that writes `rows` positions of `n_kv_head` heads of `head_dim` into KV blocks.
pub fn kv_write_geometry(rows: usize, n_kv_head: usize, head_dim: usize) -> Result<LaunchGeometry, KernelError> {
    let threads = head_threads(head_dim)?;
    let grid_x = grid_dim("rows", rows, GRID_X_MAX)?;
    let grid_y = grid_dim("kv heads", n_kv_head, GRID_YZ_MAX)?;
    Ok(LaunchGeometry { grid: (grid_x, grid_y, 1), block: (threads, 1, 1), shared_bytes: 0 })
}

/// The launch that rotates `rows` rows of `heads` heads of `head_dim` (even) to their positions.
pub fn rope_geometry(rows: usize, heads: usize, head_dim: usize) -> Result<LaunchGeometry, KernelError> {
    if !head_dim.is_multiple_of(2) {
        return Err(KernelError::LengthMismatch {
            what: "a head for rotary embedding",
            unit: "dimensions",
            expected: head_dim + 1,
            actual: head_dim,
        });
    }
    let threads = head_threads(head_dim / 2)?;
    let grid_x = grid_dim("rows", rows, GRID_X_MAX)?;
    let grid_y = grid_dim("heads", heads, GRID_YZ_MAX)?;
    Ok(LaunchGeometry { grid: (grid_x, grid_y, 1), block: (threads, 1, 1), shared_bytes: 0 })
}

/// The launch of paged attention for `rows` query rows of `n_head` heads of `head_dim`, over
/// blocks of `block_size` positions.
pub fn paged_attention_geometry(
    rows: usize,
    n_head: usize,
    n_kv_head: usize,
    head_dim: usize,
    block_size: usize,
) -> Result<LaunchGeometry, KernelError> {
    let threads = head_threads(head_dim)?;
    if n_kv_head == 0 || !n_head.is_multiple_of(n_kv_head) {
        return Err(KernelError::LengthMismatch {
            what: "query heads",
            unit: "heads",
            expected: n_kv_head * n_head.div_ceil(n_kv_head.max(1)),
            actual: n_head,
        });
    }
    // Scores are summed across warps by the first block_size threads.
    if block_size == 0 || block_size > threads as usize {
        return Err(KernelError::LengthMismatch {
            what: "a KV block for CUDA attention",
            unit: "positions",
            expected: threads as usize,
            actual: block_size,
        });
    }
    let grid_x = grid_dim("query heads", n_head, GRID_X_MAX)?;
    let grid_y = grid_dim("query rows", rows, GRID_YZ_MAX)?;
    let warps = threads / WARP;
    let shared_floats = (1 + warps as usize) * block_size;
    let shared_bytes = u32::try_from(shared_floats * 4).map_err(|_| KernelError::Overflow {
        what: "attention shared memory",
        detail: format!("{shared_floats} floats"),
    })?;
    Ok(LaunchGeometry { grid: (grid_x, grid_y, 1), block: (threads, 1, 1), shared_bytes })
}

/// One thread per head dimension, rounded up to whole warps.
fn head_threads(head_dim: usize) -> Result<u32, KernelError> {
    let threads = head_dim.div_ceil(WARP as usize) * WARP as usize;
    if head_dim == 0 || threads > ATTENTION_MAX_THREADS as usize {
        return Err(KernelError::LengthMismatch {
            what: "a head for CUDA attention",
            unit: "dimensions",
            expected: ATTENTION_MAX_THREADS as usize,
            actual: head_dim,
        });
    }
    Ok(threads as u32)
}

fn grid_dim(what: &'static str, count: usize, max: usize) -> Result<u32, KernelError> {
    if count == 0 {
        return Err(KernelError::LengthMismatch { what, unit: "entries", expected: 1, actual: 0 });
    }
    if count > max {
        return Err(KernelError::Overflow { what, detail: format!("{count} thread blocks, CUDA allows {max}") });
    }
    Ok(count as u32)
}

/// The kernels take sizes as 32-bit ints.
fn check_int(what: &'static str, value: usize) -> Result<(), KernelError> {
    if value == 0 || i32::try_from(value).is_err() {
        return Err(KernelError::Overflow { what, detail: format!("{value} is not a positive 32-bit int") });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
