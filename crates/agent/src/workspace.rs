//! The workspace root and the confinement of every path a tool touches to it.
//!
//! A path from the model is taken relative to the root (or absolute), must not contain `..`, and
//! after resolving symlinks must still lie under the canonical root. A path that does not exist
//! yet is checked through its deepest existing ancestor, so a symlinked directory cannot carry a
//! new file outside, and a dangling symlink is refused because writing through it would create
//! its target wherever it points.

use std::io;
use std::path::{Component, Path, PathBuf};

/// Why a path was refused or could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    /// The workspace root itself cannot be used.
    #[error("workspace root {}: {source}", .root.display())]
    Root {
        /// The root as given.
        root: PathBuf,
        /// Why it failed.
        source: io::Error,
    },

    /// The workspace root is not a directory.
    #[error("workspace root {} is not a directory", .0.display())]
    RootNotDirectory(PathBuf),

    /// The path is empty.
    #[error("empty path; give a path relative to the workspace root")]
    EmptyPath,

    /// The path contains a `..` component.
    #[error("path '{0}' contains '..'; paths must stay inside the workspace, give one relative to its root")]
    ParentComponent(String),

    /// The path resolves to a place outside the workspace.
    #[error("path '{path}' is outside the workspace {} (it resolves to {}); only files under the workspace root can be used", .root.display(), .resolved.display())]
    OutsideWorkspace {
        /// The path as given.
        path: String,
        /// Where it resolves to.
        resolved: PathBuf,
        /// The workspace root.
        root: PathBuf,
    },

    /// The path is a symlink whose target does not exist, so it cannot be checked.
    #[error("path '{path}' is a symlink to {} which does not exist; refusing to follow it", .target.display())]
    DanglingSymlink {
        /// The path as given.
        path: String,
        /// Where the link points.
        target: PathBuf,
    },

    /// The path could not be resolved for another reason.
    #[error("cannot resolve '{path}': {source}")]
    Io {
        /// The path as given.
        path: String,
        /// Why.
        source: io::Error,
    },
}

/// A directory tree the agent may work in, with its root canonicalised once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workspace {
    root: PathBuf,
}

impl Workspace {
    /// A workspace rooted at `root`, which must be an existing directory.
    pub fn new(root: impl AsRef<Path>) -> Result<Self, WorkspaceError> {
        let given = root.as_ref();
        let root = given.canonicalize().map_err(|source| WorkspaceError::Root { root: given.to_path_buf(), source })?;
        if !root.is_dir() {
            return Err(WorkspaceError::RootNotDirectory(root));
        }
        Ok(Self { root })
    }

    /// The canonical root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Resolves `path` (relative to the root, or absolute) to a canonical path inside the
    /// workspace. The path need not exist; its existing ancestors are resolved.
    pub fn resolve(&self, path: &str) -> Result<PathBuf, WorkspaceError> {
        if path.trim().is_empty() {
            return Err(WorkspaceError::EmptyPath);
        }
        let given = Path::new(path);
        if given.components().any(|c| c == Component::ParentDir) {
            return Err(WorkspaceError::ParentComponent(path.to_string()));
        }
        let joined = if given.is_absolute() { given.to_path_buf() } else { self.root.join(given) };
        let resolved = self.resolve_existing_prefix(path, &joined)?;
        if !resolved.starts_with(&self.root) {
            return Err(WorkspaceError::OutsideWorkspace { path: path.to_string(), resolved, root: self.root.clone() });
        }
        Ok(resolved)
    }

    /// The path relative to the root, for display; the path itself if it is outside.
    pub fn display_path(&self, path: &Path) -> String {
        match path.strip_prefix(&self.root) {
            Ok(rel) if rel.as_os_str().is_empty() => ".".to_string(),
            Ok(rel) => rel.display().to_string(),
            Err(_) => path.display().to_string(),
        }
    }

    /// Canonicalises the longest existing prefix of `joined` and appends the rest, refusing
    /// dangling symlinks anywhere along the way.
    fn resolve_existing_prefix(&self, path: &str, joined: &Path) -> Result<PathBuf, WorkspaceError> {
        let mut missing: Vec<&std::ffi::OsStr> = Vec::new();
        let mut current = joined;
        loop {
            match std::fs::symlink_metadata(current) {
                Ok(meta) => {
                    let canonical = match current.canonicalize() {
                        Ok(canonical) => canonical,
                        Err(source) if meta.file_type().is_symlink() && source.kind() == io::ErrorKind::NotFound => {
                            let target = std::fs::read_link(current).unwrap_or_default();
                            return Err(WorkspaceError::DanglingSymlink { path: path.to_string(), target });
                        }
                        Err(source) => return Err(WorkspaceError::Io { path: path.to_string(), source }),
                    };
                    let mut resolved = canonical;
                    for name in missing.iter().rev() {
                        resolved.push(name);
                    }
                    return Ok(resolved);
                }
                Err(err) if err.kind() == io::ErrorKind::NotFound => {
                    let (Some(parent), Some(name)) = (current.parent(), current.file_name()) else {
                        return Err(WorkspaceError::Io { path: path.to_string(), source: err });
                    };
                    missing.push(name);
                    current = parent;
                }
                Err(source) => return Err(WorkspaceError::Io { path: path.to_string(), source }),
            }
        }
    }
}

#[cfg(test)]
mod tests;
