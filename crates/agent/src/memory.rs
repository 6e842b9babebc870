//! Project memory: `AGENTS.md` (and `CLAUDE.md` when present) from the workspace root and the
//! directories above it up to the git root, put into the system prompt.

use std::path::{Path, PathBuf};

/// The file names read as memory, in order, in each directory.
pub const MEMORY_FILE_NAMES: [&str; 2] = ["AGENTS.md", "CLAUDE.md"];

/// Bytes of one memory file put in the prompt at most.
pub const MAX_FILE_BYTES: usize = 16 * 1024;

/// Bytes of all memory files put in the prompt at most.
pub const MAX_TOTAL_BYTES: usize = 32 * 1024;

/// A memory file that exists but cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read project memory file {}: {source}", .path.display())]
pub struct MemoryError {
    /// The file.
    pub path: PathBuf,
    /// Why.
    pub source: std::io::Error,
}

/// One memory file's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryFile {
    /// Where it is.
    pub path: PathBuf,
    /// Its text, cut to the size limit.
    pub content: String,
    /// The file's full size when it was cut, `None` when whole.
    pub cut_from: Option<usize>,
}

/// The memory files for a workspace, outermost directory first, each cut to [`MAX_FILE_BYTES`]
/// and all together to [`MAX_TOTAL_BYTES`]. A file that is a link to (or a copy of) one already
/// read is read once.
pub fn find_memory_files(workspace_root: &Path) -> Result<Vec<MemoryFile>, MemoryError> {
    let mut files: Vec<MemoryFile> = Vec::new();
    let mut seen: Vec<PathBuf> = Vec::new();
    let mut budget = MAX_TOTAL_BYTES;
    for dir in search_dirs(workspace_root) {
        for name in MEMORY_FILE_NAMES {
            let path = dir.join(name);
            let Ok(canonical) = path.canonicalize() else { continue };
            if !canonical.is_file() || seen.contains(&canonical) {
                continue;
            }
            seen.push(canonical);
            let bytes = std::fs::read(&path).map_err(|source| MemoryError { path: path.clone(), source })?;
            let text = String::from_utf8_lossy(&bytes);
            if text.trim().is_empty() || files.iter().any(|f| f.cut_from.is_none() && f.content == text) {
                continue;
            }
            let limit = MAX_FILE_BYTES.min(budget);
            if limit == 0 {
                break;
            }
            let (content, cut_from) = if text.len() > limit {
                (text[..floor_char_boundary(&text, limit)].to_string(), Some(text.len()))
            } else {
                (text.into_owned(), None)
            };
            budget -= content.len();
            files.push(MemoryFile { path, content, cut_from });
        }
    }
    Ok(files)
}

/// The system-prompt section holding `files`; `None` when there are none.
pub fn memory_section(files: &[MemoryFile], workspace_root: &Path) -> Option<String> {
    if files.is_empty() {
        return None;
    }
    let mut section = String::from(
        "# Project instructions\nThe project's maintainers wrote these instructions for you. Follow them.\n",
    );
    for file in files {
        let shown = match file.path.strip_prefix(workspace_root) {
            Ok(relative) => relative.display().to_string(),
            Err(_) => file.path.display().to_string(),
        };
        section.push_str(&format!("\n## {shown}\n{}", file.content.trim_end()));
        if let Some(size) = file.cut_from {
            section.push_str(&format!("\n[{shown} is {size} bytes; only the first {} are shown]", file.content.len()));
        }
        section.push('\n');
    }
    Some(section)
}

/// The workspace root and the directories above it up to the enclosing git root (the one with
/// `.git`), outermost first; only the root when it is not inside a git repository.
fn search_dirs(workspace_root: &Path) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    for dir in workspace_root.ancestors() {
        dirs.push(dir.to_path_buf());
        if dir.join(".git").exists() {
            dirs.reverse();
            return dirs;
        }
    }
    vec![workspace_root.to_path_buf()]
}

fn floor_char_boundary(text: &str, index: usize) -> usize {
    (0..=index.min(text.len())).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0)
}

#[cfg(test)]
mod tests;
