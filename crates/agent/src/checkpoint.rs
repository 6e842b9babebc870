//! Checkpoints: after every turn the conversation's exact token log and its KV cache are saved
//! beside the session file, so `hearth resume` continues with no prefill at all.
//!
//! `<session>.conversation.json` holds the messages, the tokens and the undo marks;
//! `<session>.kv` holds the keys and values of the log's whole cached blocks, tagged with the
//! model's fingerprint. Both are written to a temporary file and renamed into place. A session
//! resumed on another model gets its messages rendered again (and prefilled) instead.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::agent_loop::{Agent, AgentError};
use crate::conversation::{ConversationState, Mark};
use crate::runtime::ModelRuntime;

/// Version of the checkpoint format.
pub const CHECKPOINT_VERSION: u32 = 1;

/// What is saved after each turn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// [`CHECKPOINT_VERSION`] when written.
    pub version: u32,
    /// The model the tokens (and the KV file) belong to.
    pub fingerprint: String,
    /// The conversation.
    pub conversation: ConversationState,
    /// Where each turn since the last compaction began.
    pub turn_marks: Vec<Mark>,
}

/// The checkpoint file beside the session file `session`.
pub fn checkpoint_path(session: &Path) -> PathBuf {
    session.with_extension("conversation.json")
}

/// The KV file beside the session file `session`.
pub fn kv_path(session: &Path) -> PathBuf {
    session.with_extension("kv")
}

/// Reads the checkpoint of the session file `session`; `None` if none was written yet.
pub fn read_checkpoint(session: &Path) -> Result<Option<Checkpoint>, AgentError> {
    let path = checkpoint_path(session);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(AgentError::Checkpoint { path, reason: e.to_string() }),
    };
    let checkpoint: Checkpoint = serde_json::from_str(&text)
        .map_err(|e| AgentError::Checkpoint { path: path.clone(), reason: e.to_string() })?;
    if checkpoint.version != CHECKPOINT_VERSION {
        return Err(AgentError::Checkpoint {
            path,
            reason: format!("format version {} (this hearth reads {CHECKPOINT_VERSION})", checkpoint.version),
        });
    }
    Ok(Some(checkpoint))
}

/// Saves the KV of the whole blocks of `tokens` that the engine left in the prefix tree to
/// `path` (nothing when none is cached).
pub(crate) fn save_cached_kv(runtime: &ModelRuntime, tokens: &[u32], path: &Path) -> Result<(), AgentError> {
    let mut cached = runtime.pool.new_sequence();
    // `reuse_prefix` keeps the last token to run; a dummy one lets every token count.
    let mut tokens = tokens.to_vec();
    tokens.push(0);
    if cached.reuse_prefix(&tokens) > 0 {
        cached
            .save(path, &runtime.fingerprint)
            .map_err(|e| AgentError::Checkpoint { path: path.to_path_buf(), reason: e.to_string() })?;
    }
    Ok(())
}

/// Loads a KV file saved by [`save_cached_kv`] into the engine's prefix tree; the tokens loaded.
pub(crate) fn load_kv(runtime: &ModelRuntime, path: &Path) -> Result<usize, AgentError> {
    let loaded = runtime
        .pool
        .load_sequence(path, &runtime.fingerprint)
        .map_err(|e| AgentError::Checkpoint { path: path.to_path_buf(), reason: e.to_string() })?;
    Ok(loaded.len())
}

impl Agent {
    /// Saves the conversation and its cached KV beside the session file (nothing without one).
    pub fn checkpoint(&self) -> Result<(), AgentError> {
        let Some(session) = &self.session else { return Ok(()) };
        let checkpoint = Checkpoint {
            version: CHECKPOINT_VERSION,
            fingerprint: self.runtime.fingerprint.as_str().to_string(),
            conversation: self.conversation.state(),
            turn_marks: self.turn_marks.clone(),
        };
        let path = checkpoint_path(session.path());
        let fail = |reason: String| AgentError::Checkpoint { path: path.clone(), reason };
        let json = serde_json::to_vec(&checkpoint).map_err(|e| fail(e.to_string()))?;
        let tmp = path.with_extension("partial");
        std::fs::write(&tmp, json).and_then(|()| std::fs::rename(&tmp, &path)).map_err(|e| fail(e.to_string()))?;

        save_cached_kv(&self.runtime, self.conversation.tokens(), &kv_path(session.path()))?;
        Ok(())
    }

    /// Continues from `checkpoint`: its token log if it was made by this model (loading the
    /// saved KV into the cache), else its messages rendered again. Returns how many tokens of the
    /// log have their KV restored.
    pub fn restore(&mut self, checkpoint: Checkpoint, session: &Path) -> Result<usize, AgentError> {
        let same_model = checkpoint.fingerprint == self.runtime.fingerprint.as_str();
        if same_model {
            self.conversation = self.conversation.restored(checkpoint.conversation)?;
            self.turn_marks = checkpoint.turn_marks;
            let kv = kv_path(session);
            if !kv.exists() {
                return Ok(0);
            }
            return load_kv(&self.runtime, &kv);
        }
        let mut fresh = self.conversation.fork_system();
        let messages = checkpoint.conversation.messages;
        let n_system = usize::from(messages.first().is_some_and(|m| m.role == "system"));
        fresh.extend_rendered(&messages[n_system..])?;
        self.conversation = fresh;
        self.turn_marks.clear();
        Ok(0)
    }
}
