#![allow(clippy::unwrap_used)]

use super::*;

#[test]
fn reads_agents_and_claude_files_from_the_git_root_down() {
    let repo = tempfile::tempdir().unwrap();
    let root = repo.path().canonicalize().unwrap();
    std::fs::create_dir_all(root.join(".git")).unwrap();
    std::fs::create_dir_all(root.join("crates/app")).unwrap();
    std::fs::write(root.join("AGENTS.md"), "repo rules\n").unwrap();
    std::fs::write(root.join("crates/app/AGENTS.md"), "app rules\n").unwrap();
    std::fs::write(root.join("crates/app/CLAUDE.md"), "claude rules\n").unwrap();
    std::fs::write(root.join("crates/README.md"), "not memory").unwrap();

    let workspace = root.join("crates/app");
    let files = find_memory_files(&workspace).unwrap();
    let contents: Vec<&str> = files.iter().map(|f| f.content.as_str()).collect();
    assert_eq!(contents, vec!["repo rules\n", "app rules\n", "claude rules\n"]);

    let section = memory_section(&files, &workspace).unwrap();
    assert!(section.starts_with("# Project instructions\n"));
    assert!(section.contains(&format!("## {}\nrepo rules\n", root.join("AGENTS.md").display())));
    assert!(section.contains("## AGENTS.md\napp rules\n"));
    assert!(section.contains("## CLAUDE.md\nclaude rules\n"));
}

#[test]
fn outside_git_only_the_workspace_root_is_read() {
    let parent = tempfile::tempdir().unwrap();
    std::fs::write(parent.path().join("AGENTS.md"), "parent").unwrap();
    std::fs::create_dir(parent.path().join("ws")).unwrap();
    assert!(find_memory_files(&parent.path().join("ws")).unwrap().is_empty());
    assert_eq!(memory_section(&[], parent.path()), None);
}

#[test]
fn a_claude_file_linking_to_agents_is_read_once() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("AGENTS.md"), "shared").unwrap();
    std::os::unix::fs::symlink(dir.path().join("AGENTS.md"), dir.path().join("CLAUDE.md")).unwrap();
    assert_eq!(find_memory_files(dir.path()).unwrap().len(), 1);
}

#[test]
fn large_files_are_cut_visibly() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("AGENTS.md"), "é".repeat(MAX_FILE_BYTES)).unwrap();
    let files = find_memory_files(dir.path()).unwrap();
    assert_eq!(files[0].content.len(), MAX_FILE_BYTES);
    assert_eq!(files[0].cut_from, Some(2 * MAX_FILE_BYTES));
    let section = memory_section(&files, dir.path()).unwrap();
    assert!(
        section.contains(&format!(
            "[AGENTS.md is {} bytes; only the first {MAX_FILE_BYTES} are shown]",
            2 * MAX_FILE_BYTES
        ))
    );
}
