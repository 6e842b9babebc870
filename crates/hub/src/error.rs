//! The errors of model lookup, pull and cache.

use std::path::PathBuf;

/// Everything that can go wrong while finding, pulling or caching a model.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// A built-in manifest does not parse or breaks a rule.
    #[error("model manifest {source_name}: {reason}")]
    InvalidManifest {
        /// The manifest's file name or id.
        source_name: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The model name matches no known model.
    #[error("unknown model '{spec}'; known models: {known}")]
    UnknownModel {
        /// What the user asked for.
        spec: String,
        /// The known ids, comma-separated.
        known: String,
    },

    /// The model was named by a path that does not exist.
    #[error("model file {} does not exist", .0.display())]
    ModelFileMissing(PathBuf),

    /// The model was named by a path that is a directory.
    #[error("model path {} is a directory; give the path of a .gguf file in it", .0.display())]
    ModelPathIsDirectory(PathBuf),

    /// The model is not in the cache and pulling was not allowed.
    #[error("model {id} is not downloaded; run `hearth pull {id}`")]
    NotCached {
        /// The model's id.
        id: String,
    },

    /// No cache directory could be derived from the environment.
    #[error("cannot find a cache directory: set HEARTH_HOME, XDG_CACHE_HOME or HOME")]
    NoCacheDir,

    /// A file system operation failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done, e.g. "cannot create".
        action: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },

    /// A downloaded or assembled file does not have the expected sha256.
    #[error("sha256 mismatch for {model}: expected {expected}, got {actual}")]
    ChecksumMismatch {
        /// The model's id.
        model: String,
        /// The sum in the manifest.
        expected: String,
        /// The sum of the bytes received.
        actual: String,
    },

    /// A downloaded or assembled file does not have the expected size.
    #[error("size mismatch for {model}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        /// The model's id.
        model: String,
        /// The size in the manifest.
        expected: u64,
        /// The number of bytes received.
        actual: u64,
    },

    /// Every source failed.
    #[error("cannot pull {model}: hub: {hub}; mirror: {mirror}")]
    PullFailed {
        /// The model's id.
        model: String,
        /// Why the Hugging Face hub failed.
        hub: String,
        /// Why the pip mirror failed.
        mirror: String,
    },
}

impl HubError {
    /// Wraps an I/O error with what was being done and to which path.
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        HubError::Io { action, path: path.into(), source }
    }
}
