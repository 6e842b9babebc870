//! Finding the real models the parity tests run on.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(dead_code)]

use std::path::PathBuf;

use hearth_hub::{Cache, Registry, ResolveOptions};

/// The GGUF for registry id `id`: SmolLM2 is always pulled (it is the CI model); the others are
/// used when already cached, or pulled when `HEARTH_TEST_ALL_MODELS=1`.
pub fn model_path(id: &str) -> Option<PathBuf> {
    let pull_all = std::env::var("HEARTH_TEST_ALL_MODELS").is_ok_and(|v| v == "1");
    if id == "smollm2-135m" || pull_all {
        let opts = ResolveOptions { progress: false, ..ResolveOptions::default() };
        return Some(hearth_hub::resolve(id, &opts).expect("pull test model").path);
    }
    let registry = Registry::builtin().expect("registry");
    let manifest = registry.lookup(id).expect("known model id");
    let cache = Cache::from_env().expect("cache");
    let found = cache.find_verified(manifest).expect("cache lookup");
    if found.is_none() {
        eprintln!("skipping {id}: not cached (set HEARTH_TEST_ALL_MODELS=1 to pull it)");
    }
    found
}

/// The parity fixture llama.cpp recorded for `id`.
pub fn fixture(id: &str) -> serde_json::Value {
    read_fixture(&format!("parity/{id}.json"))
}

/// A JSON file under `tests/fixtures/`.
pub fn read_fixture(relative: &str) -> serde_json::Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures").join(relative);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("fixture JSON")
}
