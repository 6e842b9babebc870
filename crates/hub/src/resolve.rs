//! Turning what a user typed (a model id, a name or a path) into a GGUF file on disk.

use std::path::{Path, PathBuf};

use crate::cache::Cache;
use crate::error::HubError;
use crate::manifest::Manifest;
use crate::pull::{Sources, pull_from};
use crate::registry::Registry;

/// How [`resolve`] behaves.
#[derive(Debug, Clone)]
pub struct ResolveOptions {
    /// The cache to use; `None` uses [`Cache::from_env`].
    pub cache: Option<Cache>,
    /// Whether a model missing from the cache is pulled (otherwise it is an error).
    pub pull: bool,
    /// Whether a pull draws a progress bar on stderr.
    pub progress: bool,
}

impl Default for ResolveOptions {
    fn default() -> ResolveOptions {
        ResolveOptions { cache: None, pull: true, progress: true }
    }
}

/// A model file ready to load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedModel {
    /// The GGUF file.
    pub path: PathBuf,
    /// The registry's manifest, or `None` when the model was given as a path.
    pub manifest: Option<Manifest>,
}

/// Finds the model `spec` names.
///
/// A path to an existing file, or anything ending in `.gguf` or holding a path separator,
/// is used as it is. Anything else is looked up in the built-in registry (id, alias, or
/// name in any case) and pulled on first use.
pub fn resolve(spec: &str, options: &ResolveOptions) -> Result<ResolvedModel, HubError> {
    if let Some(resolved) = resolve_path(spec)? {
        return Ok(resolved);
    }
    let registry = Registry::builtin()?;
    let cache = match &options.cache {
        Some(cache) => cache.clone(),
        None => Cache::from_env()?,
    };
    resolve_in(spec, &registry, &cache, &Sources::from_env(), options)
}

/// `spec` as a local file, if it names one; an error if it looks like a path but is missing or a
/// directory.
fn resolve_path(spec: &str) -> Result<Option<ResolvedModel>, HubError> {
    let path = Path::new(spec);
    if path.is_file() {
        return Ok(Some(ResolvedModel { path: path.to_path_buf(), manifest: None }));
    }
    let looks_like_path = spec.to_ascii_lowercase().ends_with(".gguf") || spec.contains(['/', '\\']);
    if looks_like_path && path.is_dir() {
        return Err(HubError::ModelPathIsDirectory(path.to_path_buf()));
    }
    if looks_like_path {
        return Err(HubError::ModelFileMissing(path.to_path_buf()));
    }
    Ok(None)
}

/// Registry lookup and pull, with everything explicit.
pub(crate) fn resolve_in(
    spec: &str,
    registry: &Registry,
    cache: &Cache,
    sources: &Sources,
    options: &ResolveOptions,
) -> Result<ResolvedModel, HubError> {
    let manifest = registry.lookup(spec)?;
    let path = if options.pull {
        pull_from(manifest, cache, sources, options.progress)?
    } else {
        cache.find_verified(manifest)?.ok_or_else(|| HubError::NotCached { id: manifest.id.clone() })?
    };
    Ok(ResolvedModel { path, manifest: Some(manifest.clone()) })
}

#[cfg(test)]
mod tests;
