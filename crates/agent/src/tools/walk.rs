//! The file walk `glob` and `grep` share: gitignore-aware, hidden files included, `.git` left
//! out, symlinks not followed (so a walk cannot leave the workspace).

use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobMatcher};
use ignore::WalkBuilder;

use super::ToolError;

/// A glob over paths relative to the directory searched. A pattern without `/` matches file
/// names at any depth (`*.rs`), as in `.gitignore` and ripgrep; one with `/` matches the whole
/// relative path (`src/**/*.rs`).
#[derive(Debug, Clone)]
pub(crate) struct PathGlob {
    matcher: GlobMatcher,
    by_name: bool,
}

impl PathGlob {
    /// Parses `pattern`.
    pub(crate) fn new(pattern: &str) -> Result<Self, ToolError> {
        let trimmed = pattern.trim().trim_start_matches("./");
        let matcher = GlobBuilder::new(trimmed)
            .literal_separator(true)
            .build()
            .map_err(|err| ToolError::Pattern { pattern: pattern.to_string(), message: err.kind().to_string() })?
            .compile_matcher();
        Ok(Self { matcher, by_name: !trimmed.contains('/') })
    }

    /// Whether `relative` (to the searched directory) matches.
    pub(crate) fn is_match(&self, relative: &Path) -> bool {
        if self.by_name {
            relative.file_name().is_some_and(|name| self.matcher.is_match(name))
        } else {
            self.matcher.is_match(relative)
        }
    }
}

/// Every file under `base` that the ignore files do not exclude, in path order.
pub(crate) fn files_under(base: &Path) -> impl Iterator<Item = PathBuf> {
    WalkBuilder::new(base)
        .hidden(false)
        .follow_links(false)
        .require_git(false)
        .sort_by_file_path(|a, b| a.cmp(b))
        .filter_entry(|entry| entry.file_name() != ".git")
        .build()
        .filter_map(Result::ok)
        .filter(|entry| entry.file_type().is_some_and(|kind| kind.is_file()))
        .map(ignore::DirEntry::into_path)
}
