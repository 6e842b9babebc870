//! The system prompt's KV cache on disk, shared by every session of a workspace: a new `hearth`
//! process loads it instead of prefilling the system prompt and tool definitions again (about
//! 1,700 tokens; over a minute of prefill for the 1.5B model on a laptop CPU).
//!
//! Files are named by the model fingerprint and a hash of the system prompt's tokens, so a
//! changed prompt (other tools, mode, memory files) or model simply misses; the KV file's own
//! header check refuses anything that does not match.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::agent_loop::{Agent, AgentError};
use crate::checkpoint::{load_kv, save_cached_kv};

/// System prompt KV files kept at most (one per model and workspace in use); the least recently
/// used go first.
const KEEP_FILES: usize = 12;

impl Agent {
    /// The file in `dir` that holds the KV of this agent's system prompt.
    fn system_prefix_path(&self, dir: &Path) -> PathBuf {
        let system = &self.conversation.tokens()[..self.conversation.system_len()];
        let mut h = Sha256::new();
        for t in system {
            h.update(t.to_le_bytes());
        }
        let key: String = h.finalize().iter().take(16).map(|b| format!("{b:02x}")).collect();
        let model: String = self
            .runtime
            .fingerprint
            .as_str()
            .chars()
            .rev()
            .take(16)
            .collect::<String>()
            .chars()
            .rev()
            .filter(char::is_ascii_alphanumeric)
            .collect();
        dir.join(format!("{model}-{key}.kv"))
    }

    /// Loads the system prompt's KV from `dir` into the cache if a previous run saved it;
    /// returns the tokens restored (0 when there is no such file).
    pub fn load_system_prefix(&self, dir: &Path) -> Result<usize, AgentError> {
        let path = self.system_prefix_path(dir);
        if !path.is_file() {
            return Ok(0);
        }
        let loaded = load_kv(&self.runtime, &path)?;
        // The modification time orders files for pruning by last use.
        if let Ok(file) = std::fs::File::options().append(true).open(&path) {
            let _ = file.set_modified(std::time::SystemTime::now());
        }
        Ok(loaded)
    }

    /// Saves the system prompt's KV to `dir` unless it is there already; call after a turn, when
    /// the engine has computed it.
    pub fn save_system_prefix(&self, dir: &Path) -> Result<(), AgentError> {
        let path = self.system_prefix_path(dir);
        if path.is_file() {
            return Ok(());
        }
        let fail = |reason: String| AgentError::Checkpoint { path: path.clone(), reason };
        std::fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
        save_cached_kv(&self.runtime, &self.conversation.tokens()[..self.conversation.system_len()], &path)?;
        prune(dir, KEEP_FILES);
        Ok(())
    }
}

/// Deletes all but the `keep` most recently used `.kv` files in `dir`.
fn prune(dir: &Path, keep: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut files: Vec<(std::time::SystemTime, PathBuf)> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "kv"))
        .filter_map(|p| Some((p.metadata().ok()?.modified().ok()?, p)))
        .collect();
    files.sort_by_key(|f| std::cmp::Reverse(f.0));
    for (_, path) in files.into_iter().skip(keep) {
        let _ = std::fs::remove_file(path);
    }
}

#[cfg(test)]
mod tests {
    use super::prune;

    #[test]
    fn prune_keeps_the_most_recently_used() {
        let dir = tempfile::tempdir().unwrap();
        let now = std::time::SystemTime::now();
        for i in 0..5u64 {
            let path = dir.path().join(format!("{i}.kv"));
            std::fs::write(&path, b"x").unwrap();
            let file = std::fs::File::options().append(true).open(&path).unwrap();
            file.set_modified(now - std::time::Duration::from_secs(100 - i)).unwrap();
        }
        std::fs::write(dir.path().join("notes.txt"), b"x").unwrap();
        prune(dir.path(), 2);
        let mut left: Vec<String> =
            std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        left.sort();
        assert_eq!(left, ["3.kv", "4.kv", "notes.txt"]);
    }
}
