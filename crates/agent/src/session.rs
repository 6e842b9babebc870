//! The session log: every event appended to a JSON-lines file, durably, so a crash loses at most
//! the event being written, and a session can be loaded back, resumed and undone turn by turn.
//!
//! Each append is one `write` of one line followed by `fdatasync`. A crash can leave a torn last
//! line; loading ignores it (and reports it), and resuming cuts it off before appending, so the
//! events before it are never lost. A bad line anywhere else is corruption and an error.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::permissions::Mode;
use crate::protocol::{Event, EventRecord, FileChange, SESSION_FORMAT_VERSION};
use crate::workspace::{Workspace, WorkspaceError};

/// What can go wrong with a session file.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// Reading or writing the file failed.
    #[error("session file {}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A line before the last is not a valid event.
    #[error("session file {} is corrupt at line {line}: {message}", .path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The 1-based line.
        line: usize,
        /// The parser's message.
        message: String,
    },
    /// The file does not start with a `session_started` event.
    #[error("{} is not a hearth session file (it does not start with session_started)", .0.display())]
    NotASession(PathBuf),
    /// There is no turn left to undo.
    #[error("there is no turn to undo")]
    NothingToUndo,
    /// Files changed since the turn changed them; undoing would lose that work.
    #[error("cannot undo turn {turn}: {} changed since; undo with force to overwrite them", .paths.join(", "))]
    ChangedSince {
        /// The turn.
        turn: u32,
        /// The files whose content is no longer what the turn left.
        paths: Vec<String>,
    },
    /// A recorded path no longer resolves inside the workspace.
    #[error(transparent)]
    Workspace(#[from] WorkspaceError),
    /// Restoring a file failed.
    #[error("cannot restore {path}: {source}")]
    Restore {
        /// The file.
        path: String,
        /// Why.
        source: io::Error,
    },
}

/// Who starts a session: the first event's fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionMeta {
    /// The canonical workspace root.
    pub workspace: PathBuf,
    /// The model's id or path.
    pub model: Option<String>,
    /// The starting mode.
    pub mode: Mode,
}

/// What undoing a turn did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UndoReport {
    /// The turn undone.
    pub turn: u32,
    /// Files given back their earlier content.
    pub restored: Vec<String>,
    /// Files the turn created, now deleted.
    pub deleted: Vec<String>,
}

/// A session file open for appending, with the events so far.
#[derive(Debug)]
pub struct Session {
    path: PathBuf,
    id: String,
    file: File,
    events: Vec<EventRecord>,
    turn: u32,
}

/// A session file read back.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedSession {
    /// The complete events, in order.
    pub events: Vec<EventRecord>,
    /// Whether a torn last line was found (and left out).
    pub torn_tail: bool,
    /// The length of the file's valid part in bytes.
    valid_len: u64,
}

impl Session {
    /// Creates a new session file in `dir` (made if missing) and records its first event.
    pub fn create(dir: &Path, meta: SessionMeta) -> Result<Self, SessionError> {
        std::fs::create_dir_all(dir).map_err(|source| SessionError::Io { path: dir.to_path_buf(), source })?;
        let id = new_session_id();
        let path = dir.join(format!("{id}.jsonl"));
        let file = OpenOptions::new()
            .append(true)
            .create_new(true)
            .open(&path)
            .map_err(|source| SessionError::Io { path: path.clone(), source })?;
        // The new name must survive a crash too, not only the bytes written under it.
        if let Ok(dir_handle) = File::open(dir) {
            let _ = dir_handle.sync_all();
        }
        let mut session = Session { path, id: id.clone(), file, events: Vec::new(), turn: 0 };
        session.append(Event::SessionStarted {
            session_id: id,
            format_version: SESSION_FORMAT_VERSION,
            workspace: meta.workspace,
            model: meta.model,
            mode: meta.mode,
        })?;
        Ok(session)
    }

    /// Reads a session file without opening it for writing.
    pub fn load(path: &Path) -> Result<LoadedSession, SessionError> {
        let bytes = std::fs::read(path).map_err(|source| SessionError::Io { path: path.to_path_buf(), source })?;
        let mut events = Vec::new();
        let mut offset = 0usize;
        let mut valid_len = 0u64;
        let mut torn_tail = false;
        let mut line_number = 0usize;
        while offset < bytes.len() {
            line_number += 1;
            let end = bytes[offset..].iter().position(|&b| b == b'\n').map(|i| offset + i);
            let line = &bytes[offset..end.unwrap_or(bytes.len())];
            let next = end.map_or(bytes.len(), |end| end + 1);
            let is_last = next >= bytes.len();
            let complete = end.is_some();
            match serde_json::from_slice::<EventRecord>(line) {
                Ok(record) if complete => {
                    events.push(record);
                    valid_len = next as u64;
                }
                _ if complete && line.iter().all(u8::is_ascii_whitespace) => valid_len = next as u64,
                // An unterminated or unparseable last line is an append cut short by a crash
                // (an unterminated line is always the last).
                _ if is_last || !complete => torn_tail = true,
                Ok(_) => torn_tail = true,
                Err(err) => {
                    return Err(SessionError::Corrupt {
                        path: path.to_path_buf(),
                        line: line_number,
                        message: err.to_string(),
                    });
                }
            }
            offset = next;
        }
        match events.first() {
            Some(EventRecord { event: Event::SessionStarted { .. }, .. }) => {}
            _ => return Err(SessionError::NotASession(path.to_path_buf())),
        }
        Ok(LoadedSession { events, torn_tail, valid_len })
    }

    /// Opens an existing session to continue it: loads its events, cuts off a torn last line and
    /// appends after the last complete event.
    pub fn resume(path: &Path) -> Result<(Self, LoadedSession), SessionError> {
        let loaded = Self::load(path)?;
        let io_err = |source| SessionError::Io { path: path.to_path_buf(), source };
        let file = OpenOptions::new().append(true).open(path).map_err(io_err)?;
        if loaded.torn_tail {
            file.set_len(loaded.valid_len).map_err(io_err)?;
            file.sync_data().map_err(io_err)?;
        }
        let id = match &loaded.events[0].event {
            Event::SessionStarted { session_id, .. } => session_id.clone(),
            _ => return Err(SessionError::NotASession(path.to_path_buf())),
        };
        let turn = loaded.events.iter().map(|record| record.turn).max().unwrap_or(0);
        let session = Session { path: path.to_path_buf(), id, file, events: loaded.events.clone(), turn };
        Ok((session, loaded))
    }

    /// The session's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The session file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every event so far.
    pub fn events(&self) -> &[EventRecord] {
        &self.events
    }

    /// The current turn (0 before the first user message).
    pub fn turn(&self) -> u32 {
        self.turn
    }

    /// Appends `event` durably; a user message starts a new turn.
    pub fn append(&mut self, event: Event) -> Result<&EventRecord, SessionError> {
        if matches!(event, Event::UserMessage { .. }) {
            self.turn += 1;
        }
        let record = EventRecord { seq: self.events.len() as u64, ts_ms: now_ms(), turn: self.turn, event };
        let mut line = serde_json::to_vec(&record)
            .map_err(|err| SessionError::Io { path: self.path.clone(), source: io::Error::other(err) })?;
        line.push(b'\n');
        let io_err = |source| SessionError::Io { path: self.path.clone(), source };
        self.file.write_all(&line).map_err(io_err)?;
        self.file.sync_data().map_err(io_err)?;
        self.events.push(record);
        Ok(&self.events[self.events.len() - 1])
    }

    /// Turns that have been undone.
    pub fn undone_turns(&self) -> Vec<u32> {
        undone_turns(&self.events)
    }

    /// Reverts the file changes of the latest turn not yet undone (restoring earlier content,
    /// deleting files it created) and records that it was undone. Unless `force`, refuses when a
    /// file no longer has the content the turn left, so later work is not lost.
    pub fn undo_last_turn(&mut self, workspace: &Workspace, force: bool) -> Result<UndoReport, SessionError> {
        let undone = self.undone_turns();
        let turn = (1..=self.turn).rev().find(|turn| !undone.contains(turn)).ok_or(SessionError::NothingToUndo)?;
        let changes: Vec<&FileChange> = self
            .events
            .iter()
            .filter(|record| record.turn == turn)
            .filter_map(|record| match &record.event {
                Event::FileChanged(change) => Some(change),
                _ => None,
            })
            .collect();
        if !force {
            check_unchanged(workspace, turn, &changes)?;
        }
        let mut report = UndoReport { turn, ..UndoReport::default() };
        for change in changes.iter().rev() {
            let path = workspace.resolve(&change.path)?;
            let restore_err = |source| SessionError::Restore { path: change.path.clone(), source };
            match &change.before {
                Some(before) => {
                    if let Some(parent) = path.parent() {
                        std::fs::create_dir_all(parent).map_err(restore_err)?;
                    }
                    std::fs::write(&path, before).map_err(restore_err)?;
                    push_unique(&mut report.restored, &change.path);
                }
                None => {
                    match std::fs::remove_file(&path) {
                        Ok(()) => {}
                        Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                        Err(err) => return Err(restore_err(err)),
                    }
                    push_unique(&mut report.deleted, &change.path);
                }
            }
        }
        report.restored.retain(|path| !report.deleted.contains(path));
        self.append(Event::TurnUndone { undone_turn: turn })?;
        Ok(report)
    }
}

impl LoadedSession {
    /// The events of turns that were not undone, without the undo markers: what the
    /// conversation consists of when resumed.
    pub fn live_events(&self) -> Vec<&EventRecord> {
        let undone = undone_turns(&self.events);
        self.events
            .iter()
            .filter(|record| !undone.contains(&record.turn) && !matches!(record.event, Event::TurnUndone { .. }))
            .collect()
    }
}

/// Where sessions are kept: `$HEARTH_HOME/sessions`, else `$XDG_STATE_HOME/hearth/sessions`,
/// else `~/.local/state/hearth/sessions`.
pub fn default_sessions_dir() -> Option<PathBuf> {
    let var = |name| std::env::var_os(name).filter(|v: &std::ffi::OsString| !v.is_empty()).map(PathBuf::from);
    var("HEARTH_HOME")
        .map(|home| home.join("sessions"))
        .or_else(|| var("XDG_STATE_HOME").map(|state| state.join("hearth/sessions")))
        .or_else(|| var("HOME").map(|home| home.join(".local/state/hearth/sessions")))
}

/// A session file's first facts, for choosing one to resume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSummary {
    /// The session file.
    pub path: PathBuf,
    /// The session's id.
    pub id: String,
    /// The workspace it ran in.
    pub workspace: PathBuf,
    /// When it started, in milliseconds since the Unix epoch.
    pub started_ms: u64,
    /// The first user message, if any.
    pub first_message: Option<String>,
}

/// The sessions in `dir` for `workspace` (all of them when `None`), newest first. Files that
/// cannot be read as sessions are skipped.
pub fn list_sessions(dir: &Path, workspace: Option<&Path>) -> Result<Vec<SessionSummary>, SessionError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(SessionError::Io { path: dir.to_path_buf(), source }),
    };
    let mut sessions = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|ext| ext != "jsonl") {
            continue;
        }
        let Ok(loaded) = Session::load(&path) else { continue };
        let Event::SessionStarted { session_id, workspace: root, .. } = &loaded.events[0].event else { continue };
        if workspace.is_some_and(|wanted| wanted != root) {
            continue;
        }
        let first_message = loaded.events.iter().find_map(|record| match &record.event {
            Event::UserMessage { text } => Some(text.clone()),
            _ => None,
        });
        sessions.push(SessionSummary {
            id: session_id.clone(),
            workspace: root.clone(),
            started_ms: loaded.events[0].ts_ms,
            first_message,
            path,
        });
    }
    sessions.sort_by(|a, b| b.started_ms.cmp(&a.started_ms).then_with(|| b.id.cmp(&a.id)));
    Ok(sessions)
}

fn undone_turns(events: &[EventRecord]) -> Vec<u32> {
    events
        .iter()
        .filter_map(|record| match record.event {
            Event::TurnUndone { undone_turn } => Some(undone_turn),
            _ => None,
        })
        .collect()
}

/// Checks every file the turn touched still has the content the turn's last change left.
fn check_unchanged(workspace: &Workspace, turn: u32, changes: &[&FileChange]) -> Result<(), SessionError> {
    let mut changed = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for change in changes.iter().rev() {
        if seen.contains(&change.path.as_str()) {
            continue;
        }
        seen.push(&change.path);
        let path = workspace.resolve(&change.path)?;
        let current = match std::fs::read(&path) {
            Ok(bytes) => Some(bytes),
            Err(err) if err.kind() == io::ErrorKind::NotFound => None,
            Err(source) => return Err(SessionError::Restore { path: change.path.clone(), source }),
        };
        if current.as_deref() != change.after.as_deref().map(str::as_bytes) {
            changed.push(change.path.clone());
        }
    }
    if changed.is_empty() { Ok(()) } else { Err(SessionError::ChangedSince { turn, paths: changed }) }
}

fn push_unique(list: &mut Vec<String>, path: &str) {
    if !list.iter().any(|p| p == path) {
        list.push(path.to_string());
    }
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// A sortable, unique id: the start time and random bits.
fn new_session_id() -> String {
    format!("{:013}-{:08x}", now_ms(), rand::random::<u32>())
}

#[cfg(test)]
mod tests;
