use super::*;
use crate::registry::Registry;
use crate::test_support::manifest_for;
use std::fs::File;

fn os(text: &str) -> Option<OsString> {
    Some(OsString::from(text))
}

#[test]
fn hearth_home_wins() {
    assert_eq!(cache_root_from(os("/data/hearth"), os("/xdg"), os("/home/u")), Some(PathBuf::from("/data/hearth")));
}

#[test]
fn xdg_cache_home_is_next() {
    assert_eq!(cache_root_from(None, os("/xdg"), os("/home/u")), Some(PathBuf::from("/xdg/hearth")));
    assert_eq!(cache_root_from(os(""), os("/xdg"), os("/home/u")), Some(PathBuf::from("/xdg/hearth")));
}

#[test]
fn home_cache_is_the_fallback() {
    let expected = Some(PathBuf::from("/home/u/.cache/hearth"));
    assert_eq!(cache_root_from(None, None, os("/home/u")), expected);
    assert_eq!(cache_root_from(None, os(""), os("/home/u")), expected);
    assert_eq!(cache_root_from(None, os("relative/xdg"), os("/home/u")), expected);
    assert_eq!(cache_root_from(None, None, None), None);
    assert_eq!(cache_root_from(os(""), os(""), os("")), None);
}

#[test]
fn from_env_agrees_with_the_rules() {
    let home = std::env::var_os("HOME").or_else(|| std::env::var_os("USERPROFILE"));
    let expected = cache_root_from(std::env::var_os("HEARTH_HOME"), std::env::var_os("XDG_CACHE_HOME"), home);
    assert_eq!(Cache::from_env().ok().map(|c| c.root().to_path_buf()), expected);
}

#[test]
fn model_paths_follow_the_layout() {
    let registry = Registry::builtin().unwrap();
    let manifest = registry.get("smollm2-135m").unwrap();
    let cache = Cache::new("/cache");
    assert_eq!(cache.model_dir(manifest), PathBuf::from("/cache/models/smollm2-135m"));
    assert_eq!(cache.model_path(manifest), PathBuf::from("/cache/models/smollm2-135m/SmolLM2-135M-Instruct.Q4_1.gguf"));
    assert_eq!(
        sidecar_path(&cache.model_path(manifest)),
        PathBuf::from("/cache/models/smollm2-135m/SmolLM2-135M-Instruct.Q4_1.gguf.verified")
    );
}

#[test]
fn a_copied_in_file_is_hashed_once_then_trusted() {
    let root = tempfile::tempdir().unwrap();
    let cache = Cache::new(root.path());
    let manifest = manifest_for(b"model bytes");
    assert_eq!(cache.status(&manifest), CacheStatus::Missing);
    assert_eq!(cache.find_verified(&manifest).unwrap(), None);

    let path = cache.model_path(&manifest);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, b"model bytes").unwrap();
    assert_eq!(cache.status(&manifest), CacheStatus::Unverified);
    assert_eq!(cache.find_verified(&manifest).unwrap(), Some(path.clone()));
    assert_eq!(cache.status(&manifest), CacheStatus::Verified);
    let sidecar = fs::read_to_string(sidecar_path(&path)).unwrap();
    assert!(sidecar.contains(&format!("sha256={}", manifest.sha256)), "{sidecar}");
    assert!(sidecar.contains("size=11"), "{sidecar}");
}

#[test]
fn the_sidecar_is_trusted_without_reading_the_file() {
    let root = tempfile::tempdir().unwrap();
    let cache = Cache::new(root.path());
    let manifest = manifest_for(b"model bytes");
    let path = cache.model_path(&manifest);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, b"model bytes").unwrap();
    write_sidecar(&path, &manifest.sha256).unwrap();
    // Same size and mtime but other bytes: only a hash could tell, and none is taken.
    let mtime = fs::metadata(&path).unwrap().modified().unwrap();
    fs::write(&path, b"MODEL BYTES").unwrap();
    File::options().write(true).open(&path).unwrap().set_modified(mtime).unwrap();
    assert_eq!(cache.find_verified(&manifest).unwrap(), Some(path));
}

#[test]
fn a_changed_file_is_rehashed_and_removed_if_wrong() {
    let root = tempfile::tempdir().unwrap();
    let cache = Cache::new(root.path());
    let manifest = manifest_for(b"model bytes");
    let path = cache.model_path(&manifest);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, b"model bytes").unwrap();
    write_sidecar(&path, &manifest.sha256).unwrap();
    assert_eq!(cache.status(&manifest), CacheStatus::Verified);

    fs::write(&path, b"MODEL BYTES").unwrap();
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
    File::options().write(true).open(&path).unwrap().set_modified(later).unwrap();
    assert_eq!(cache.status(&manifest), CacheStatus::Unverified);
    assert_eq!(cache.find_verified(&manifest).unwrap(), None);
    assert!(!path.exists());
    assert!(!sidecar_path(&path).exists());
}

#[test]
fn a_sidecar_for_another_sum_is_not_trusted() {
    let root = tempfile::tempdir().unwrap();
    let cache = Cache::new(root.path());
    let manifest = manifest_for(b"model bytes");
    let path = cache.model_path(&manifest);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, b"model bytes").unwrap();
    write_sidecar(&path, &"0".repeat(64)).unwrap();
    assert_eq!(cache.status(&manifest), CacheStatus::Unverified);
}

#[test]
fn stamps_round_trip_and_reject_garbage() {
    let stamp = Stamp { size: 5, mtime_ns: 1_700_000_000_123_456_789, sha256: "ab".repeat(32) };
    assert_eq!(Stamp::parse(&stamp.render()), Some(stamp));
    assert_eq!(Stamp::parse("size=5\n"), None);
    assert_eq!(Stamp::parse("garbage"), None);
    assert_eq!(Stamp::parse("size=x\nmtime_ns=1\nsha256=ab\n"), None);
}

#[test]
fn hashes_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("abc");
    fs::write(&path, b"abc").unwrap();
    assert_eq!(
        hash_file(&path).unwrap(),
        (3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad".to_string())
    );
}
