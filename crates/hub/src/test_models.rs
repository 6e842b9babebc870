//! Which real models a test suite runs on.
//!
//! The CI model is always pulled; bigger ones run when they are already cached, or are pulled
//! when `HEARTH_TEST_ALL_MODELS=1`, so a plain `cargo nextest run` downloads only the small one.

use std::path::PathBuf;

use crate::cache::Cache;
use crate::error::HubError;
use crate::registry::Registry;
use crate::resolve::{ResolveOptions, resolve};

/// The model every test suite may rely on.
pub const CI_MODEL: &str = "smollm2-135m";

/// The verified file of model `id` for a test, or `None` when the test should skip it.
pub fn model_for_tests(id: &str) -> Result<Option<PathBuf>, HubError> {
    let pull_all = std::env::var("HEARTH_TEST_ALL_MODELS").is_ok_and(|v| v == "1");
    if id == CI_MODEL || pull_all {
        let opts = ResolveOptions { progress: false, ..ResolveOptions::default() };
        return Ok(Some(resolve(id, &opts)?.path));
    }
    let registry = Registry::builtin()?;
    let manifest = registry.lookup(id)?;
    let found = Cache::from_env()?.find_verified(manifest)?;
    if found.is_none() {
        eprintln!("skipping {id}: not cached (set HEARTH_TEST_ALL_MODELS=1 to pull it)");
    }
    Ok(found)
}
