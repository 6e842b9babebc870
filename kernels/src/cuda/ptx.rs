//! The PTX of `kernels/cuda/*.cu`, compiled by `build.rs` for `CUDA_COMPUTE_CAP` (compute_80
//! unless set) and loaded by the driver, which compiles it for the GPU at hand.

/// `qmatmul.cu`: the quantized matmuls, one entry point per weight type.
pub const QMATMUL_PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/qmatmul.ptx"));

/// `paged_attention.cu`: KV block writes and attention over KV blocks.
pub const PAGED_ATTENTION_PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/paged_attention.ptx"));
