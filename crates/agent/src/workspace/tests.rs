#![allow(clippy::unwrap_used)]

use super::*;
use std::os::unix::fs::symlink;

fn setup() -> (tempfile::TempDir, tempfile::TempDir, Workspace) {
    let inside = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(inside.path().join("src")).unwrap();
    std::fs::write(inside.path().join("src/main.rs"), "fn main() {}\n").unwrap();
    std::fs::write(outside.path().join("secret.txt"), "secret\n").unwrap();
    let ws = Workspace::new(inside.path()).unwrap();
    (inside, outside, ws)
}

#[test]
fn relative_and_absolute_paths_inside_resolve() {
    let (_inside, _outside, ws) = setup();
    let expected = ws.root().join("src/main.rs");
    assert_eq!(ws.resolve("src/main.rs").unwrap(), expected);
    assert_eq!(ws.resolve("./src/main.rs").unwrap(), expected);
    assert_eq!(ws.resolve(expected.to_str().unwrap()).unwrap(), expected);
    assert_eq!(ws.resolve(".").unwrap(), ws.root());
}

#[test]
fn new_files_in_new_directories_resolve_under_the_root() {
    let (_inside, _outside, ws) = setup();
    assert_eq!(ws.resolve("a/b/c.txt").unwrap(), ws.root().join("a/b/c.txt"));
}

#[test]
fn parent_components_are_refused() {
    let (_inside, _outside, ws) = setup();
    for path in ["../x", "src/../../x", "src/.."] {
        let err = ws.resolve(path).unwrap_err();
        assert!(matches!(err, WorkspaceError::ParentComponent(_)), "{path}: {err}");
        assert!(err.to_string().contains("'..'"));
    }
}

#[test]
fn absolute_paths_outside_are_refused() {
    let (_inside, outside, ws) = setup();
    let secret = outside.path().join("secret.txt");
    let err = ws.resolve(secret.to_str().unwrap()).unwrap_err();
    assert!(matches!(err, WorkspaceError::OutsideWorkspace { .. }), "{err}");
    assert!(err.to_string().contains("outside the workspace"));
    assert!(matches!(ws.resolve("/etc/passwd").unwrap_err(), WorkspaceError::OutsideWorkspace { .. }));
    assert!(matches!(ws.resolve("/").unwrap_err(), WorkspaceError::OutsideWorkspace { .. }));
}

#[test]
fn file_symlink_pointing_out_is_refused() {
    let (inside, outside, ws) = setup();
    symlink(outside.path().join("secret.txt"), inside.path().join("link.txt")).unwrap();
    let err = ws.resolve("link.txt").unwrap_err();
    assert!(matches!(err, WorkspaceError::OutsideWorkspace { .. }), "{err}");
}

#[test]
fn directory_symlink_pointing_out_is_refused_for_existing_and_new_files() {
    let (inside, outside, ws) = setup();
    symlink(outside.path(), inside.path().join("out")).unwrap();
    assert!(matches!(ws.resolve("out/secret.txt").unwrap_err(), WorkspaceError::OutsideWorkspace { .. }));
    assert!(matches!(ws.resolve("out/new/file.txt").unwrap_err(), WorkspaceError::OutsideWorkspace { .. }));
}

#[test]
fn dangling_symlink_is_refused() {
    let (inside, outside, ws) = setup();
    symlink(outside.path().join("not-yet.txt"), inside.path().join("dangling")).unwrap();
    let err = ws.resolve("dangling").unwrap_err();
    assert!(matches!(err, WorkspaceError::DanglingSymlink { .. }), "{err}");
    let err = ws.resolve("dangling/child").unwrap_err();
    assert!(matches!(err, WorkspaceError::DanglingSymlink { .. }), "{err}");
}

#[test]
fn symlink_inside_the_workspace_resolves_to_its_target() {
    let (inside, _outside, ws) = setup();
    symlink(inside.path().join("src"), inside.path().join("alias")).unwrap();
    assert_eq!(ws.resolve("alias/main.rs").unwrap(), ws.root().join("src/main.rs"));
}

#[test]
fn empty_path_is_refused() {
    let (_inside, _outside, ws) = setup();
    assert!(matches!(ws.resolve("  ").unwrap_err(), WorkspaceError::EmptyPath));
}

#[test]
fn root_must_be_an_existing_directory() {
    let (inside, _outside, _ws) = setup();
    assert!(matches!(Workspace::new(inside.path().join("missing")).unwrap_err(), WorkspaceError::Root { .. }));
    assert!(matches!(
        Workspace::new(inside.path().join("src/main.rs")).unwrap_err(),
        WorkspaceError::RootNotDirectory(_)
    ));
}

#[test]
fn display_path_is_relative_to_the_root() {
    let (_inside, _outside, ws) = setup();
    assert_eq!(ws.display_path(&ws.root().join("src/main.rs")), "src/main.rs");
    assert_eq!(ws.display_path(ws.root()), ".");
}
