//! Errors of the KV cache: pool exhaustion, misuse of sequences across pools, and KV files.

use std::path::PathBuf;

/// Errors from the paged KV cache and its files.
#[derive(Debug, thiserror::Error)]
pub enum KvError {
    #[error(
        "the KV pool is full: live sequences hold its whole budget of {budget_bytes} bytes \
         (raise the budget or end some sequences)"
    )]
    PoolFull { budget_bytes: usize },
    #[error(
        "the KV budget of {} MiB is too small for this request: its {tokens} tokens need {} MiB of \
         KV cache (raise it with --kv-budget)",
        mib(*budget_bytes),
        mib(*needed_bytes)
    )]
    BudgetTooSmall { budget_bytes: usize, tokens: usize, needed_bytes: usize },
    #[error("sequences stepped together must share one KV pool")]
    MixedPools,
    #[error("the KV pool was built for a different model shape ({pool}) than this model ({model})")]
    LayoutMismatch { pool: String, model: String },
    #[error("internal error: no KV block holds position {position} of layer group {group}")]
    MissingBlock { group: usize, position: usize },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not a hearth KV file", path.display())]
    NotAKvFile { path: PathBuf },
    #[error("{} has KV file format version {found}; this build reads version {supported} only", path.display())]
    FormatVersion { path: PathBuf, found: u32, supported: u32 },
    #[error("{} holds the KV cache of another model (file {file}, this model {model})", path.display())]
    ModelMismatch { path: PathBuf, file: String, model: String },
    #[error("{} is damaged: {reason}", path.display())]
    Corrupt { path: PathBuf, reason: String },
    #[error("internal error: the KV blocks are in device memory, and this reads them on the host")]
    BlocksOnDevice,
    #[error("internal error: a KV block of {expected} values written with {actual}")]
    BlockLength { expected: usize, actual: usize },
    #[error("KV cache on the device: {0}")]
    Device(String),
    #[error("KV cache in host memory: {0}")]
    HostMemory(String),
}

/// Bytes as MiB with one decimal.
fn mib(bytes: usize) -> String {
    format!("{:.1}", bytes as f64 / (1 << 20) as f64)
}
