//! The workspace's files, listed in the first user message of a conversation.
//!
//! Agents that start blind guess paths: a small model asked to change `calc.py` wrote a new
//! `src/calc.py` instead. Coding agents give the model a snapshot of the project up front (Claude
//! Code its git status, aider a repository map); hearth lists the files the ignore rules keep. The
//! list goes in the user message, not the system prompt, so the system prompt's KV stays the same
//! for every task in a workspace.

use std::path::Path;

use crate::tools::walk::files_under;

/// Files listed at most; a larger project is cut with a count of the rest.
pub const LISTED_FILES: usize = 60;

/// `request` preceded by up to `limit` of the workspace's file paths (relative, in path order);
/// `request` alone when the workspace has no files.
pub fn with_file_listing(root: &Path, request: &str, limit: usize) -> String {
    let mut listed = Vec::new();
    let mut more = 0usize;
    for path in files_under(root) {
        let Ok(relative) = path.strip_prefix(root) else { continue };
        if listed.len() < limit {
            listed.push(relative.to_string_lossy().replace('\\', "/"));
        } else {
            more += 1;
        }
    }
    if listed.is_empty() {
        return request.to_string();
    }
    let mut text = String::from("Files in the workspace:\n");
    for path in &listed {
        text.push_str(path);
        text.push('\n');
    }
    if more > 0 {
        text.push_str(&format!("... and {more} more (use glob to list them)\n"));
    }
    text.push('\n');
    text.push_str(request);
    text
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn lists_kept_files_before_the_request_and_counts_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("src")).unwrap();
        std::fs::create_dir_all(root.join("target")).unwrap();
        std::fs::write(root.join("calc.py"), "").unwrap();
        std::fs::write(root.join("src/lib.rs"), "").unwrap();
        std::fs::write(root.join("target/out.bin"), "").unwrap();
        std::fs::write(root.join(".gitignore"), "target/\n").unwrap();
        let text = with_file_listing(root, "Fix the bug.", 60);
        assert_eq!(text, "Files in the workspace:\n.gitignore\ncalc.py\nsrc/lib.rs\n\nFix the bug.");
        let cut = with_file_listing(root, "Fix the bug.", 2);
        assert!(cut.contains("calc.py\n... and 1 more (use glob to list them)\n\nFix the bug."), "{cut}");
    }

    #[test]
    fn an_empty_workspace_leaves_the_request_alone() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(with_file_listing(dir.path(), "Create hello.txt.", 60), "Create hello.txt.");
    }
}
