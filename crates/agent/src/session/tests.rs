#![allow(clippy::unwrap_used)]

use std::io::Write as _;

use super::*;
use crate::protocol::{TodoItem, TodoStatus, TokenUsage};

struct Fixture {
    _sessions: tempfile::TempDir,
    _work: tempfile::TempDir,
    workspace: Workspace,
    session: Session,
}

fn fixture() -> Fixture {
    let sessions = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let workspace = Workspace::new(work.path()).unwrap();
    let meta =
        SessionMeta { workspace: workspace.root().to_path_buf(), model: Some("smollm2-135m".into()), mode: Mode::Ask };
    let session = Session::create(sessions.path(), meta).unwrap();
    Fixture { _sessions: sessions, _work: work, workspace, session }
}

fn sample_events() -> Vec<Event> {
    vec![
        Event::UserMessage { text: "fix it".into() },
        Event::AssistantText { text: "Looking.".into() },
        Event::ToolCall { call_id: "c1".into(), name: "read".into(), arguments: serde_json::json!({"path": "a.rs"}) },
        Event::ToolResult {
            call_id: "c1".into(),
            name: "read".into(),
            output: "     1\tfn a() {}\n".into(),
            is_error: false,
        },
        Event::FileChanged(FileChange { path: "a.rs".into(), before: Some("old".into()), after: Some("new".into()) }),
        Event::TodosUpdated { todos: vec![TodoItem { content: "fix".into(), status: TodoStatus::InProgress }] },
        Event::TokenUsage(TokenUsage {
            prompt_tokens: 10,
            cached_prompt_tokens: 4,
            completion_tokens: 3,
            context_tokens: 13,
            context_limit: 4096,
        }),
        Event::Compacted { summary: "earlier work".into(), through_turn: 1, tokens_before: 900, tokens_after: 100 },
        Event::ModeChanged { mode: Mode::AutoEdit },
    ]
}

#[test]
fn every_event_round_trips_through_the_file() {
    let mut f = fixture();
    for event in sample_events() {
        f.session.append(event).unwrap();
    }
    let loaded = Session::load(f.session.path()).unwrap();
    assert!(!loaded.torn_tail);
    assert_eq!(loaded.events, f.session.events());
    assert_eq!(loaded.events.len(), 10);
    assert_eq!(loaded.events[1].turn, 1, "a user message starts turn 1");
    assert!(loaded.events.iter().enumerate().all(|(i, record)| record.seq == i as u64));
    let first_line = std::fs::read_to_string(f.session.path()).unwrap().lines().next().unwrap().to_string();
    assert!(first_line.contains("\"type\":\"session_started\""), "{first_line}");
    assert!(first_line.contains(&format!("\"session_id\":\"{}\"", f.session.id())));
}

#[test]
fn a_torn_last_line_is_ignored_and_cut_off_on_resume() {
    let mut f = fixture();
    f.session.append(Event::UserMessage { text: "one".into() }).unwrap();
    f.session.append(Event::AssistantText { text: "two".into() }).unwrap();
    let path = f.session.path().to_path_buf();
    let before_crash = Session::load(&path).unwrap().events;
    // A crash mid-append leaves part of a line without its newline.
    let mut file = OpenOptions::new().append(true).open(&path).unwrap();
    file.write_all(br#"{"seq":3,"ts_ms":1,"turn":1,"type":"assistant_te"#).unwrap();
    drop(file);

    let loaded = Session::load(&path).unwrap();
    assert!(loaded.torn_tail);
    assert_eq!(loaded.events, before_crash);

    let (mut resumed, _) = Session::resume(&path).unwrap();
    assert_eq!(resumed.turn(), 1);
    resumed.append(Event::AssistantText { text: "three".into() }).unwrap();
    let reloaded = Session::load(&path).unwrap();
    assert!(!reloaded.torn_tail);
    assert_eq!(reloaded.events.len(), 4);
    assert_eq!(reloaded.events[3].event, Event::AssistantText { text: "three".into() });
}

#[test]
fn a_bad_line_before_the_end_is_corruption() {
    let f = fixture();
    let path = f.session.path().to_path_buf();
    let mut file = OpenOptions::new().append(true).open(&path).unwrap();
    file.write_all(b"not json\n").unwrap();
    file.write_all(&serde_json::to_vec(&f.session.events()[0]).unwrap()).unwrap();
    file.write_all(b"\n").unwrap();
    drop(file);
    let err = Session::load(&path).unwrap_err();
    assert!(matches!(err, SessionError::Corrupt { line: 2, .. }), "{err}");
}

#[test]
fn a_file_that_is_not_a_session_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.jsonl");
    std::fs::write(&path, "{\"seq\":0,\"ts_ms\":0,\"turn\":0,\"type\":\"user_message\",\"text\":\"hi\"}\n").unwrap();
    assert!(matches!(Session::load(&path).unwrap_err(), SessionError::NotASession(_)));
}

fn change(f: &mut Fixture, path: &str, before: Option<&str>, after: Option<&str>) {
    let full = f.workspace.root().join(path);
    match after {
        Some(after) => {
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(&full, after).unwrap();
        }
        None => std::fs::remove_file(&full).unwrap(),
    }
    f.session
        .append(Event::FileChanged(FileChange {
            path: path.into(),
            before: before.map(str::to_string),
            after: after.map(str::to_string),
        }))
        .unwrap();
}

#[test]
fn undo_restores_edits_and_deletes_created_files_turn_by_turn() {
    let mut f = fixture();
    std::fs::write(f.workspace.root().join("a.txt"), "v0").unwrap();
    f.session.append(Event::UserMessage { text: "first".into() }).unwrap();
    change(&mut f, "a.txt", Some("v0"), Some("v1"));
    f.session.append(Event::UserMessage { text: "second".into() }).unwrap();
    change(&mut f, "a.txt", Some("v1"), Some("v2"));
    change(&mut f, "a.txt", Some("v2"), Some("v3"));
    change(&mut f, "new/b.txt", None, Some("b"));

    let report = f.session.undo_last_turn(&f.workspace, false).unwrap();
    assert_eq!(report, UndoReport { turn: 2, restored: vec!["a.txt".into()], deleted: vec!["new/b.txt".into()] });
    assert_eq!(std::fs::read_to_string(f.workspace.root().join("a.txt")).unwrap(), "v1");
    assert!(!f.workspace.root().join("new/b.txt").exists());

    let report = f.session.undo_last_turn(&f.workspace, false).unwrap();
    assert_eq!(report.turn, 1);
    assert_eq!(std::fs::read_to_string(f.workspace.root().join("a.txt")).unwrap(), "v0");
    assert!(matches!(f.session.undo_last_turn(&f.workspace, false).unwrap_err(), SessionError::NothingToUndo));

    let loaded = Session::load(f.session.path()).unwrap();
    assert!(loaded.live_events().iter().all(|record| record.turn == 0), "both turns are gone from the conversation");
}

#[test]
fn undo_survives_a_reload() {
    let mut f = fixture();
    f.session.append(Event::UserMessage { text: "one".into() }).unwrap();
    change(&mut f, "x.txt", None, Some("x"));
    f.session.append(Event::UserMessage { text: "two".into() }).unwrap();
    change(&mut f, "y.txt", None, Some("y"));
    f.session.undo_last_turn(&f.workspace, false).unwrap();

    let (mut resumed, loaded) = Session::resume(f.session.path()).unwrap();
    assert_eq!(resumed.undone_turns(), vec![2]);
    let live: Vec<u32> = loaded.live_events().iter().map(|record| record.turn).collect();
    assert!(live.contains(&1) && !live.contains(&2));
    let report = resumed.undo_last_turn(&f.workspace, false).unwrap();
    assert_eq!(report.turn, 1);
    assert_eq!(report.deleted, vec!["x.txt".to_string()]);
    assert!(!f.workspace.root().join("x.txt").exists());
    resumed.append(Event::UserMessage { text: "three".into() }).unwrap();
    assert_eq!(resumed.turn(), 3, "turn numbers are never reused");
}

#[test]
fn undo_refuses_to_overwrite_later_changes_unless_forced() {
    let mut f = fixture();
    f.session.append(Event::UserMessage { text: "one".into() }).unwrap();
    change(&mut f, "a.txt", None, Some("agent"));
    std::fs::write(f.workspace.root().join("a.txt"), "user edited").unwrap();
    let err = f.session.undo_last_turn(&f.workspace, false).unwrap_err();
    assert!(matches!(&err, SessionError::ChangedSince { paths, .. } if paths == &vec!["a.txt".to_string()]), "{err}");
    assert!(f.workspace.root().join("a.txt").exists());
    f.session.undo_last_turn(&f.workspace, true).unwrap();
    assert!(!f.workspace.root().join("a.txt").exists());
}

#[test]
fn session_ids_are_unique_and_files_are_named_by_them() {
    let a = fixture();
    let b = fixture();
    assert_ne!(a.session.id(), b.session.id());
    assert_eq!(a.session.path().file_name().unwrap().to_str().unwrap(), format!("{}.jsonl", a.session.id()));
}

#[test]
fn list_sessions_finds_a_workspaces_sessions_newest_first() {
    let sessions = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let root = work.path().canonicalize().unwrap();
    let meta = |root: &Path| SessionMeta { workspace: root.to_path_buf(), model: None, mode: Mode::Ask };
    let mut older = Session::create(sessions.path(), meta(&root)).unwrap();
    older.append(Event::UserMessage { text: "first task".into() }).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(5));
    let newer = Session::create(sessions.path(), meta(&root)).unwrap();
    Session::create(sessions.path(), meta(Path::new("/elsewhere"))).unwrap();
    std::fs::write(sessions.path().join("junk.jsonl"), "not a session\n").unwrap();

    let found = list_sessions(sessions.path(), Some(&root)).unwrap();
    let ids: Vec<&str> = found.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, vec![newer.id(), older.id()]);
    assert_eq!(found[1].first_message.as_deref(), Some("first task"));
    assert_eq!(list_sessions(sessions.path(), None).unwrap().len(), 3);
    assert!(list_sessions(&sessions.path().join("missing"), None).unwrap().is_empty());
}
