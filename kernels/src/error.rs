//! Errors for kernel calls with inputs that do not fit together.

use crate::GgmlType;

/// Why a kernel refused its inputs.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    /// The operation has no implementation for this element type.
    #[error("{op} does not support {ty} tensors")]
    Unsupported { op: &'static str, ty: GgmlType },
    /// A row or buffer length is not a whole number of blocks of the type.
    #[error("{what} has {len} elements, which is not a whole number of {ty} blocks of {block_size}")]
    NotWholeBlocks { what: &'static str, ty: GgmlType, len: usize, block_size: usize },
    /// A buffer has a different length than the shapes imply.
    #[error("{what} has {actual} {unit}, expected {expected}")]
    LengthMismatch { what: &'static str, unit: &'static str, expected: usize, actual: usize },
    /// The shapes multiply to more than fits in memory.
    #[error("{what} size overflows: {detail}")]
    Overflow { what: &'static str, detail: String },
}
