//! The engine's CUDA kernels (`kernels/cuda/`, PTX from `hearth-kernels`) launched on candle's
//! CUDA device through its re-exported `cudarc`: the quantized matmul behind
//! [`crate::model::layers::QLinear`] on the device, and the paged KV cache in device memory
//! (the block arena, rotary embedding, KV block writes, paged attention) that a forward pass on
//! the device runs over.
//!
//! Compiled without a GPU and not yet run on one: the tests in `tests.rs` compare every kernel,
//! and a whole model, with the CPU path and need a CUDA device.

mod attention;
mod qmatmul;
mod step;

pub use attention::{DeviceKvBlocks, PagedRows, kv_write, paged_attention, rope};
pub(crate) use qmatmul::{DeviceWeights, qmatmul};
pub(crate) use step::{DeviceStepState, attention as step_attention};

use candle_core::cuda_backend::cudarc::driver::LaunchConfig;
use hearth_kernels::cuda::LaunchGeometry;

/// Module names under which candle's device caches our PTX.
const QMATMUL_MODULE: &str = "hearth_qmatmul";
const ATTENTION_MODULE: &str = "hearth_paged_attention";

fn launch_config(g: LaunchGeometry) -> LaunchConfig {
    LaunchConfig { grid_dim: g.grid, block_dim: g.block, shared_mem_bytes: g.shared_bytes }
}

fn kernel_error(context: &str, e: hearth_kernels::KernelError) -> candle_core::Error {
    candle_core::Error::Msg(format!("{context}: {e}"))
}

/// A size passed to a kernel as a 32-bit int; the geometry checks have bounded it already.
fn int_arg(what: &str, v: usize) -> candle_core::Result<i32> {
    i32::try_from(v).map_err(|_| candle_core::Error::Msg(format!("{what} {v} does not fit a 32-bit kernel argument")))
}

#[cfg(test)]
mod tests;
