use serde_json::json;

use super::*;

fn call(name: &str, args: Value) -> (String, Value) {
    (name.to_string(), args)
}

#[test]
fn different_calls_leave_every_tool() {
    let mut guard = StepGuard::new(10);
    let next = guard.after_calls(1, &[call("read", json!({"path": "a.py"}))]);
    assert_eq!(next, NextStep { tools: ReplyTools::All, note: None });
    let next = guard.after_calls(2, &[call("read", json!({"path": "b.py"}))]);
    assert_eq!(next.tools, ReplyTools::All);
}

#[test]
fn a_repeated_call_holds_the_next_reply_to_text() {
    let mut guard = StepGuard::new(10);
    guard.after_calls(1, &[call("shell", json!({"command": "ls"}))]);
    let next = guard.after_calls(2, &[call("shell", json!({"command": "ls"}))]);
    assert_eq!(next.tools, ReplyTools::TextOnly);
    assert!(next.note.unwrap().contains("exactly this call"));
}

#[test]
fn the_last_step_answers_in_text() {
    let mut guard = StepGuard::new(3);
    assert_eq!(guard.after_calls(1, &[call("read", json!({"path": "a"}))]).tools, ReplyTools::All);
    let next = guard.after_calls(2, &[call("read", json!({"path": "b"}))]);
    assert_eq!(next.tools, ReplyTools::TextOnly);
    assert!(next.note.unwrap().contains("last step"));
}

#[test]
fn searching_pauses_after_a_streak_and_resumes_after_another_tool() {
    let mut guard = StepGuard::new(20);
    assert_eq!(guard.after_calls(1, &[call("grep", json!({"pattern": "a"}))]).tools, ReplyTools::All);
    let next = guard.after_calls(2, &[call("glob", json!({"pattern": "*.py"}))]);
    assert_eq!(next.tools, ReplyTools::NoSearch);
    assert!(next.note.unwrap().contains("2 searches in a row"));
    // A read ends the streak; searching is offered again.
    assert_eq!(guard.after_calls(3, &[call("read", json!({"path": "a.py"}))]).tools, ReplyTools::All);
    assert_eq!(guard.after_calls(4, &[call("grep", json!({"pattern": "b"}))]).tools, ReplyTools::All);
    // A step that searches and reads is not a search step.
    let mixed = [call("grep", json!({"pattern": "c"})), call("read", json!({"path": "b.py"}))];
    assert_eq!(guard.after_calls(5, &mixed).tools, ReplyTools::All);
}

#[test]
fn a_repeated_search_pauses_searching_instead_of_ending_the_turn() {
    let mut guard = StepGuard::new(10);
    let grep = [call("grep", json!({"pattern": "listen on port"}))];
    guard.after_calls(1, &grep);
    let next = guard.after_calls(2, &grep);
    assert_eq!(next.tools, ReplyTools::NoSearch);
    assert!(next.note.unwrap().contains("exactly this search"));
}

#[test]
fn a_search_repeated_later_in_the_turn_pauses_searching() {
    let mut guard = StepGuard::new(10);
    let grep = [call("grep", json!({"pattern": "assert", "path": "calc.py"}))];
    guard.after_calls(1, &grep);
    assert_eq!(guard.after_calls(2, &[call("read", json!({"path": "test_calc.py"}))]).tools, ReplyTools::All);
    let next = guard.after_calls(3, &grep);
    assert_eq!(next.tools, ReplyTools::NoSearch);
    assert!(next.note.unwrap().contains("already ran exactly this search"));
    // A command may be run again (tests before and after a fix) as long as it is not back to back.
    let test = [call("shell", json!({"command": "python3 test_calc.py"}))];
    guard.after_calls(4, &test);
    guard.after_calls(5, &[call("edit", json!({"path": "calc.py"}))]);
    assert_eq!(guard.after_calls(6, &test).tools, ReplyTools::All);
}

#[test]
fn the_last_step_wins_over_every_other_limit() {
    let mut guard = StepGuard::new(3);
    let grep = [call("grep", json!({"pattern": "x"}))];
    guard.after_calls(1, &grep);
    assert_eq!(guard.after_calls(2, &grep).tools, ReplyTools::TextOnly);
}
