use serde_json::json;

use super::*;

pub(super) fn call(name: &str, args: Value) -> StepCall {
    let effect = match name {
        "edit" | "write" => Effect::Edit,
        "shell" => Effect::Command,
        _ => Effect::ReadOnly,
    };
    StepCall {
        name: name.to_string(),
        arguments: args,
        effect,
        succeeded: true,
        already_done: false,
        result: "done".into(),
        exit_code: None,
    }
}

fn refused(name: &str, args: Value, why: &str) -> StepCall {
    StepCall { succeeded: false, result: format!("Error: {why}"), ..call(name, args) }
}

#[test]
fn different_calls_leave_every_tool() {
    let mut guard = StepGuard::new(10);
    let next = guard.after_calls(1, &[call("read", json!({"path": "a.py"}))]);
    assert_eq!(next, NextStep::any_tool());
    let next = guard.after_calls(2, &[call("read", json!({"path": "b.py"}))]);
    assert_eq!(next.tools, ReplyTools::All);
}

#[test]
fn a_repeated_call_holds_the_next_reply_to_text() {
    let mut guard = StepGuard::new(10);
    guard.after_calls(1, &[call("shell", json!({"command": "ls"}))]);
    let next = guard.after_calls(2, &[call("shell", json!({"command": "ls"}))]);
    assert_eq!(next.tools, ReplyTools::TextOnly);
    assert!(next.note.unwrap().contains("repeat exactly this call"));
}

#[test]
fn a_repeated_read_holds_the_next_reply_to_text() {
    let mut guard = StepGuard::new(10);
    let read = [call("read", json!({"path": "shapes.py"}))];
    guard.after_calls(1, &read);
    assert_eq!(guard.after_calls(2, &read).tools, ReplyTools::TextOnly);
}

#[test]
fn a_held_answer_quotes_what_was_read_unless_a_file_changed() {
    let read = [call("read", json!({"path": "server.py"}))];
    let mut guard = StepGuard::new(10);
    guard.after_calls(1, &read);
    let note = guard.after_calls(2, &read).note.unwrap_or_default();
    assert!(note.contains("the answer in one sentence, then the one line of a tool result"), "{note}");
    assert!(!note.contains("left to do"), "{note}");
    let mut guard = StepGuard::new(10);
    guard.after_calls(1, &[call("edit", json!({"path": "server.py", "old_string": "1", "new_string": "2"}))]);
    guard.after_calls(2, &read);
    let note = guard.after_calls(3, &read).note.unwrap_or_default();
    assert!(note.contains("the change you made to server.py"), "{note}");
}

#[test]
fn a_plan_that_restates_the_request_after_a_change_ends_the_turn() {
    let request = "is_even in numbers.py returns the wrong answer. Fix it.";
    let plan = [call("todo", json!({"todos": [{"content": request, "status": "in_progress"}]}))];
    // Before any change, a plan is a fair first step.
    let mut guard = StepGuard::new(10).with_request(request);
    assert_eq!(guard.after_calls(1, &plan).tools, ReplyTools::All);
    let mut guard = StepGuard::new(10).with_request(request);
    guard.after_calls(1, &[call("edit", json!({"path": "numbers.py", "old_string": "1", "new_string": "0"}))]);
    guard.after_calls(2, &[call("shell", json!({"command": "python3 numbers.py"}))]);
    let next = guard.after_calls(3, &plan);
    assert_eq!(next.tools, ReplyTools::TextOnly);
    let note = next.note.unwrap_or_default();
    assert!(note.contains("you changed numbers.py earlier"), "{note}");
    // A plan of its own items is not the request again.
    let mut guard = StepGuard::new(10).with_request(request);
    guard.after_calls(1, &[call("edit", json!({"path": "numbers.py", "old_string": "1", "new_string": "0"}))]);
    let steps = json!({"todos": [{"content": "fix is_even", "status": "completed"}, {"content": "run tests", "status": "pending"}]});
    assert_eq!(guard.after_calls(2, &[call("todo", steps)]).tools, ReplyTools::All);
}

#[test]
fn a_refused_call_repeated_withholds_its_tool_until_a_change() {
    let mut guard = StepGuard::new(10);
    let task = [refused("task", json!({"prompt": "rename get_user"}), "the subagent did no work")];
    guard.after_calls(1, &task);
    let next = guard.after_calls(2, &task);
    assert_eq!(next.tools, ReplyTools::without(&["task"]));
    assert!(!next.tools.allows("task") && next.tools.allows("edit"));
    assert!(next.note.unwrap().contains("task cannot be called until you change a file or run a command"));
    assert_eq!(
        next.notice.as_deref(),
        Some("the model repeated a refused call; it may not call task until a file changes or a command runs")
    );
    // Still withheld, with no new note, until a change; with searching paused too after a streak.
    let todo = [call("todo", json!({"todos": []}))];
    assert_eq!(
        guard.after_calls(3, &todo),
        NextStep { tools: ReplyTools::without(&["task"]), note: None, notice: None }
    );
    let grep = |p: &str| [call("grep", json!({"pattern": p}))];
    guard.after_calls(4, &grep("a"));
    assert_eq!(guard.after_calls(5, &grep("b")).tools, ReplyTools::without(&["grep", "glob", "task"]));
    assert_eq!(guard.after_calls(6, &[call("edit", json!({"path": "a.py"}))]).tools, ReplyTools::All);
    // Only once a turn: the next repeat ends it.
    let mut guard = StepGuard::new(10);
    guard.after_calls(1, &task);
    guard.after_calls(2, &task);
    guard.after_calls(3, &[call("shell", json!({"command": "ls"}))]);
    guard.after_calls(4, &task);
    assert_eq!(guard.after_calls(5, &task).tools, ReplyTools::TextOnly);
}

#[test]
fn a_refused_step_names_each_withheld_tool_once() {
    let mut guard = StepGuard::new(10);
    let step = [
        refused("task", json!({"prompt": "a"}), "idle"),
        refused("shell", json!({"command": "x"}), "denied"),
        refused("task", json!({"prompt": "b"}), "idle"),
    ];
    guard.after_calls(1, &step);
    let next = guard.after_calls(2, &step);
    assert_eq!(next.tools, ReplyTools::without(&["task", "shell"]));
    assert!(next.note.unwrap().contains(" task, shell cannot be called"));
}

#[test]
fn a_repeated_step_mixing_a_success_with_a_refusal_holds_the_next_reply_to_text() {
    let mut guard = StepGuard::new(10);
    let both = [call("read", json!({"path": "a.py"})), refused("shell", json!({"command": "x"}), "denied")];
    guard.after_calls(1, &both);
    assert_eq!(guard.after_calls(2, &both).tools, ReplyTools::TextOnly);
}

#[test]
fn the_last_step_answers_in_text() {
    let mut guard = StepGuard::new(3);
    assert_eq!(guard.after_calls(1, &[call("read", json!({"path": "a"}))]).tools, ReplyTools::All);
    let next = guard.after_calls(2, &[call("read", json!({"path": "b"}))]);
    assert_eq!(next.tools, ReplyTools::TextOnly);
    assert!(next.note.unwrap().contains("no step left"));
}

#[test]
fn searching_pauses_after_a_streak_and_resumes_after_another_tool() {
    let mut guard = StepGuard::new(20);
    assert_eq!(guard.after_calls(1, &[call("grep", json!({"pattern": "a"}))]).tools, ReplyTools::All);
    let next = guard.after_calls(2, &[call("glob", json!({"pattern": "*.py"}))]);
    assert_eq!(next.tools, ReplyTools::without(&SEARCH_TOOLS));
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
    assert_eq!(next.tools, ReplyTools::without(&SEARCH_TOOLS));
    assert!(next.note.unwrap().contains("exactly this search"));
}

#[test]
fn a_search_repeated_later_in_the_turn_pauses_searching() {
    let mut guard = StepGuard::new(10);
    let grep = [call("grep", json!({"pattern": "assert", "path": "calc.py"}))];
    guard.after_calls(1, &grep);
    assert_eq!(guard.after_calls(2, &[call("read", json!({"path": "test_calc.py"}))]).tools, ReplyTools::All);
    let next = guard.after_calls(3, &grep);
    assert_eq!(next.tools, ReplyTools::without(&SEARCH_TOOLS));
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

#[test]
fn alternating_calls_whose_results_cannot_change_end_the_turn() {
    let mut guard = StepGuard::new(20);
    assert_eq!(guard.after_calls(1, &[call("edit", json!({"path": "calc.py"}))]).tools, ReplyTools::All);
    // The command was refused (nothing changed), then a subagent was asked about the file.
    let shell = [refused("shell", json!({"command": "python calc.py"}), "not allowed")];
    let task = [call("task", json!({"prompt": "Find 'add' in calc.py"}))];
    assert_eq!(guard.after_calls(2, &shell).tools, ReplyTools::All);
    assert_eq!(guard.after_calls(3, &task).tools, ReplyTools::All);
    // The refused command again: withheld for a step; then the subagent again ends the turn.
    assert_eq!(guard.after_calls(4, &shell).tools, ReplyTools::without(&["shell"]));
    let next = guard.after_calls(5, &task);
    assert_eq!(next.tools, ReplyTools::TextOnly);
    assert!(next.note.unwrap().contains("nothing changed since"));
}

#[test]
fn a_call_repeated_after_a_change_is_not_a_loop() {
    let mut guard = StepGuard::new(20);
    let read = [call("read", json!({"path": "calc.py"}))];
    let test = [call("shell", json!({"command": "python3 test_calc.py"}))];
    guard.after_calls(1, &read);
    guard.after_calls(2, &test);
    guard.after_calls(3, &[call("edit", json!({"path": "calc.py"}))]);
    // Both the file and the test result may differ now.
    assert_eq!(guard.after_calls(4, &read).tools, ReplyTools::All);
    assert_eq!(guard.after_calls(5, &test).tools, ReplyTools::All);
    // A step of several calls, all made since the last change, is a loop too.
    let both = [read[0].clone(), test[0].clone()];
    assert_eq!(guard.after_calls(6, &both).tools, ReplyTools::All);
    assert_eq!(guard.after_calls(7, &both).tools, ReplyTools::TextOnly);
}

#[test]
fn a_refused_call_that_succeeds_on_its_retry_is_progress() {
    let mut guard = StepGuard::new(20);
    let edit = json!({"path": "calc.py", "old_string": "a - b", "new_string": "a + b"});
    guard.after_calls(1, &[refused("edit", edit.clone(), "not read")]);
    guard.after_calls(2, &[call("read", json!({"path": "calc.py"}))]);
    assert_eq!(guard.after_calls(3, &[call("edit", edit.clone())]).tools, ReplyTools::All);
    // Refused again, for the same reason, is a loop, like any call that ends the same way: the
    // tool is withheld for a step, then the turn ends.
    let mut guard = StepGuard::new(20);
    let again = [refused("edit", edit, "not found")];
    guard.after_calls(1, &again);
    guard.after_calls(2, &[call("read", json!({"path": "calc.py"}))]);
    assert_eq!(guard.after_calls(3, &again).tools, ReplyTools::without(&["edit"]));
    assert_eq!(guard.after_calls(4, &again).tools, ReplyTools::TextOnly);
}

#[test]
fn a_call_refused_again_for_another_reason_gets_its_answer() {
    // A write of a file not read yet; after the read the same write is refused because it would
    // delete lines, and that refusal names the edit to make instead: the model must see it.
    let mut guard = StepGuard::new(20);
    let write = json!({"path": "calc.py", "content": "def multiply(a, b):\n    return a * b"});
    guard.after_calls(1, &[refused("write", write.clone(), "you have not read it")]);
    guard.after_calls(2, &[call("read", json!({"path": "calc.py"}))]);
    let again = [refused("write", write, "write would delete 2 lines; call edit with ...")];
    assert_eq!(guard.after_calls(3, &again).tools, ReplyTools::All);
    // Refused a third time the same way is a loop.
    assert_eq!(guard.after_calls(4, &again).tools, ReplyTools::without(&["write"]));
}

#[test]
fn a_change_undone_and_made_again_holds_the_next_reply_to_text() {
    let mut guard = StepGuard::new(20);
    let rename = call("edit", json!({"path": "calc.py", "old_string": "add", "new_string": "subtract"}));
    let back = call("edit", json!({"path": "calc.py", "old_string": "subtract", "new_string": "add"}));
    assert_eq!(guard.after_calls(1, std::slice::from_ref(&rename)).tools, ReplyTools::All);
    // Undoing a change is allowed (a fix that failed its test is reverted) ...
    assert_eq!(guard.after_calls(2, &[back]).tools, ReplyTools::All);
    // ... making it again is a circle.
    let next = guard.after_calls(3, &[rename]);
    assert_eq!(next.tools, ReplyTools::TextOnly);
    assert!(next.note.unwrap().contains("made this same change earlier"));
    // Commands may run again after a change: tests before and after a fix.
    let mut guard = StepGuard::new(20);
    let test = call("shell", json!({"command": "pytest"}));
    guard.after_calls(1, std::slice::from_ref(&test));
    guard.after_calls(2, &[call("edit", json!({"path": "calc.py", "old_string": "-", "new_string": "+"}))]);
    assert_eq!(guard.after_calls(3, &[test]).tools, ReplyTools::All);
}

#[test]
fn undoing_a_change_needs_a_run_since_it() {
    let fix = json!({"path": "numbers.py", "old_string": "n % 2 == 1", "new_string": "n % 2 == 0"});
    let revert = json!({"path": "numbers.py", "old_string": "n % 2 == 0", "new_string": "n % 2 == 1"});
    let mut guard = StepGuard::new(20);
    assert_eq!(guard.refusal("edit", &revert), None, "nothing to undo yet");
    guard.after_calls(1, &[call("edit", fix.clone())]);
    // A command that did not run (a file given as its folder) shows nothing about the change.
    guard.after_calls(2, &[refused("shell", json!({"command": "python numbers.py"}), "not a directory")]);
    let refusal = guard.refusal("edit", &revert).unwrap_or_default();
    assert!(refusal.contains("would undo the change you made to 'numbers.py'"), "{refusal}");
    // Other edits and other files are not reverts.
    assert_eq!(guard.refusal("edit", &fix), None);
    assert_eq!(guard.refusal("write", &revert), None);
    let other = json!({"path": "other.py", "old_string": "n % 2 == 0", "new_string": "n % 2 == 1"});
    assert_eq!(guard.refusal("edit", &other), None);
    // A test run after the change may have shown it wrong: the revert is allowed.
    guard.after_calls(3, &[call("shell", json!({"command": "python3 -m pytest"}))]);
    assert_eq!(guard.refusal("edit", &revert), None);
}

#[test]
fn a_write_of_what_the_file_already_holds_ends_the_turn() {
    let mut guard = StepGuard::new(10);
    let write = json!({"path": "hello.txt", "content": "hello world"});
    assert_eq!(guard.after_calls(1, &[call("write", write.clone())]).tools, ReplyTools::All);
    let done = StepCall { already_done: true, ..refused("write", write, "already holds exactly this content") };
    let next = guard.after_calls(2, &[done]);
    assert_eq!(next.tools, ReplyTools::TextOnly);
    assert_eq!(
        next.note.unwrap(),
        "(Answer the user now, in plain text and without tools: say what you did and what came of it, speaking \
         as yourself (\"I ...\"): the change you made, or the answer you found. You changed hello.txt earlier in \
         this turn, and the file already holds the text you just wrote, so nothing more was written.)"
    );
    // With no change made in the turn, none is named.
    let mut guard = StepGuard::new(10);
    let done = StepCall { already_done: true, ..refused("write", json!({"path": "a"}), "already holds it") };
    let note = guard.after_calls(1, &[done]).note.unwrap();
    assert!(
        note.ends_with(
            "the answer you found. The file already holds the text you just wrote, so nothing was written.)"
        ),
        "{note}"
    );
}

#[test]
fn plan_updates_pause_after_a_streak_and_resume_after_work() {
    let mut guard = StepGuard::new(20);
    let plan = |status: &str| call("todo", json!({"todos": [{"content": "rename get_user", "status": status}]}));
    assert_eq!(guard.after_calls(1, &[plan("pending")]).tools, ReplyTools::All);
    let next = guard.after_calls(2, &[plan("in_progress")]);
    assert_eq!(next.tools, ReplyTools::without(&["todo"]));
    assert!(next.note.unwrap().contains("2 plan updates in a row"));
    assert!(next.notice.unwrap().contains("may not update it"));
    // Work ends the streak; the plan may be updated again.
    assert_eq!(guard.after_calls(3, &[call("grep", json!({"pattern": "get_user"}))]).tools, ReplyTools::All);
    assert_eq!(guard.after_calls(4, &[plan("completed")]).tools, ReplyTools::All);
    // A step that updates the plan and works is no plan-only step.
    let mixed = [plan("completed"), call("read", json!({"path": "users.py"}))];
    assert_eq!(guard.after_calls(5, &mixed).tools, ReplyTools::All);
}

#[test]
fn the_same_task_is_not_run_twice_until_something_changes() {
    let mut guard = StepGuard::new(20);
    let ask = json!({"description": "rename", "prompt": "Rename get_user to fetch_user everywhere."});
    assert_eq!(guard.refusal("task", &ask), None);
    guard.after_calls(1, &[call("task", ask.clone())]);
    let refusal = guard.refusal("task", &ask).unwrap_or_default();
    assert!(refusal.contains("not started again"), "{refusal}");
    // Another task runs; after a change the same task may run again.
    assert_eq!(guard.refusal("task", &json!({"description": "find", "prompt": "Find uses of get_user."})), None);
    guard.after_calls(
        2,
        &[call("edit", json!({"path": "users.py", "old_string": "get_user", "new_string": "fetch_user"}))],
    );
    assert_eq!(guard.refusal("task", &ask), None);
}

#[test]
fn a_withheld_tool_written_out_in_text_is_refused() {
    let mut guard = StepGuard::new(20);
    let grep = json!({"pattern": "listen"});
    guard.after_calls(1, &[call("grep", grep.clone())]);
    assert_eq!(guard.refusal("grep", &grep), None);
    guard.after_calls(2, &[call("glob", json!({"pattern": "*.py"}))]);
    let refusal = guard.refusal("grep", &grep).unwrap_or_default();
    // The call made earlier gets its result again.
    assert_eq!(
        refusal,
        "grep cannot be called in this step, so it did not run again; the same call earlier in this turn gave:\ndone"
    );
    let other = guard.refusal("grep", &json!({"pattern": "port"})).unwrap_or_default();
    assert!(other.starts_with("grep cannot be called in this step, as the note"), "{other}");
    assert_eq!(guard.refusal("read", &json!({"path": "server.py"})), None);
    // Offered again once the limit is lifted.
    guard.after_calls(3, &[call("read", json!({"path": "server.py"}))]);
    assert_eq!(guard.refusal("grep", &grep), None);
    // A step that only called withheld tools ends the turn with an answer.
    guard.after_calls(4, &[call("glob", json!({"pattern": "*.md"}))]);
    assert_eq!(
        guard.after_calls(5, &[call("grep", json!({"pattern": "port"}))]).tools,
        ReplyTools::without(&SEARCH_TOOLS)
    );
    let next = guard.after_calls(6, &[refused("grep", grep, &refusal)]);
    assert_eq!(next.tools, ReplyTools::TextOnly);
    assert!(next.note.unwrap().contains("was not offered for that step"));
}

#[test]
fn a_task_that_is_the_whole_request_is_refused_and_task_withheld() {
    let request = "Rename the function get_user to fetch_user everywhere in this project.";
    let mut guard = StepGuard::new(20).with_request(request);
    // Copied into either field, in another case, spacing or without the full stop.
    let copied = json!({"description": "Rename the function get_user to fetch_user\n everywhere in this project", "prompt": "Do it."});
    let refusal = guard.refusal("task", &copied).unwrap_or_default();
    assert!(refusal.starts_with("this task is the user's whole request"), "{refusal}");
    let inside = json!({"description": "rename", "prompt": format!("Task: {}\nReport the files changed.", request.to_uppercase())});
    assert!(guard.refusal("task", &inside).is_some());
    // A part of the work is a fair task.
    let part = json!({"description": "find uses", "prompt": "List every file that calls get_user."});
    assert_eq!(guard.refusal("task", &part), None);
    // Once refused, task is withheld until a change.
    let next = guard.after_calls(1, &[refused("task", copied.clone(), &refusal)]);
    assert_eq!(next.tools, ReplyTools::without(&["task"]));
    assert!(next.notice.unwrap_or_default().contains("handed the whole request to a subagent"));
    assert_eq!(
        guard.after_calls(2, &[call("grep", json!({"pattern": "get_user"}))]).tools,
        ReplyTools::without(&["task"])
    );
    let edit = call("edit", json!({"path": "users.py", "old_string": "def get_user", "new_string": "def fetch_user"}));
    assert_eq!(guard.after_calls(3, &[edit]).tools, ReplyTools::All);
    // Still refused after the change: the task is still the whole request.
    assert!(guard.refusal("task", &copied).is_some());
}

#[test]
fn a_short_request_or_one_asking_for_a_subagent_may_be_handed_over() {
    let short = StepGuard::new(20).with_request("Fix the bug.");
    assert_eq!(short.refusal("task", &json!({"description": "fix the bug", "prompt": "Fix the bug."})), None);
    let request = "Use a subagent to list the TODO comments in src.";
    let asked = StepGuard::new(20).with_request(request);
    assert_eq!(asked.refusal("task", &json!({"description": "todos", "prompt": request})), None);
    // Without a request, nothing counts as handing it over.
    assert_eq!(StepGuard::new(20).refusal("task", &json!({"description": "x", "prompt": request})), None);
}

/// The calls of a model that changes a test's expected value, sees the test fail, reverts it and
/// sees it fail again.
fn flip_flop(guard: &mut StepGuard, between: Option<StepCall>) {
    let to_six = json!({"path": "test_calc.py", "old_string": "== 5", "new_string": "== 6"});
    let to_five = json!({"path": "test_calc.py", "old_string": "== 6", "new_string": "== 5"});
    let failing_run = StepCall {
        result: "AssertionError\n[exit code 1]".into(),
        exit_code: Some(1),
        ..call("shell", json!({"command": "python3 test_calc.py"}))
    };
    guard.after_calls(1, &[call("read", json!({"path": "test_calc.py"}))]);
    guard.after_calls(2, &[call("edit", to_six)]);
    guard.after_calls(3, std::slice::from_ref(&failing_run));
    guard.after_calls(4, &[call("edit", to_five)]);
    if let Some(between) = between {
        guard.after_calls(5, &[between]);
    }
    guard.after_calls(6, &[failing_run]);
}

#[test]
fn a_change_made_again_after_failing_both_ways_is_refused() {
    let request =
        "The test in test_calc.py fails. Find the bug in calc.py and fix it so `python3 test_calc.py` passes.";
    let again = json!({"path": "test_calc.py", "old_string": "== 5", "new_string": "== 6"});
    let mut guard = StepGuard::new(24).with_request(request);
    flip_flop(&mut guard, None);
    let why = guard.refusal("edit", &again).unwrap();
    assert!(why.contains("`python3 test_calc.py` failed after it (exit code 1)"), "{why}");
    assert!(why.contains("read calc.py, which the request names and you have not read"), "{why}");
    // Other edits of the same file still go ahead.
    assert_eq!(
        guard.refusal("edit", &json!({"path": "test_calc.py", "old_string": "== 5", "new_string": "== 7"})),
        None
    );

    // calc.py read: the note points at the code the command runs instead.
    let mut guard = StepGuard::new(24).with_request(request);
    guard.after_calls(1, &[call("read", json!({"path": "./calc.py"}))]);
    flip_flop(&mut guard, None);
    let why = guard.refusal("edit", &again).unwrap();
    assert!(why.contains("read the code that the failing command runs"), "{why}");

    // A change to another file in between may be what the change needed.
    let mut guard = StepGuard::new(24).with_request(request);
    let fix = call("edit", json!({"path": "calc.py", "old_string": "a - b", "new_string": "a + b"}));
    flip_flop(&mut guard, Some(fix));
    assert_eq!(guard.refusal("edit", &again), None);
}

#[test]
fn a_change_never_undone_is_not_said_to_have_been_both_ways() {
    // An insertion leaves its old_string in place, so the same call can come again.
    let insert =
        json!({"path": "calc.py", "old_string": "def add(a, b):", "new_string": "def add(a, b):\n    return a + b"});
    let mut guard = StepGuard::new(24);
    guard.after_calls(1, &[call("edit", insert.clone())]);
    let failing = StepCall {
        result: "boom\n[exit code 1]".into(),
        exit_code: Some(1),
        ..call("shell", json!({"command": "make"}))
    };
    guard.after_calls(2, &[failing]);
    assert_eq!(guard.redo_refusal(&insert), None);
}

#[test]
fn a_change_made_again_after_any_passing_run_is_not_refused() {
    let again = json!({"path": "test_calc.py", "old_string": "== 5", "new_string": "== 6"});
    let mut guard = StepGuard::new(24);
    guard.after_calls(1, &[call("edit", again.clone())]);
    let passing = StepCall {
        result: "ok\n[exit code 0]".into(),
        exit_code: Some(0),
        ..call("shell", json!({"command": "make"}))
    };
    guard.after_calls(2, &[passing]);
    guard.after_calls(3, &[call("edit", json!({"path": "test_calc.py", "old_string": "== 6", "new_string": "== 5"}))]);
    assert_eq!(guard.redo_refusal(&again), None);

    // Failing with the change and passing without it is not failing both ways.
    let mut guard = StepGuard::new(24);
    guard.after_calls(1, &[call("edit", again.clone())]);
    let failing = StepCall {
        result: "boom\n[exit code 1]".into(),
        exit_code: Some(1),
        ..call("shell", json!({"command": "make"}))
    };
    guard.after_calls(2, &[failing]);
    guard.after_calls(3, &[call("edit", json!({"path": "test_calc.py", "old_string": "== 6", "new_string": "== 5"}))]);
    let passing = StepCall {
        result: "ok\n[exit code 0]".into(),
        exit_code: Some(0),
        ..call("shell", json!({"command": "make"}))
    };
    guard.after_calls(4, &[passing]);
    assert_eq!(guard.redo_refusal(&again), None);

    // Nor is a run that a signal stopped, which says nothing of either way.
    let mut guard = StepGuard::new(24);
    flip_flop(&mut guard, None);
    assert!(guard.redo_refusal(&again).is_some());
    let stopped = StepCall { result: "[killed by a signal: 9]".into(), ..call("shell", json!({"command": "make"})) };
    guard.after_calls(7, &[stopped]);
    assert_eq!(guard.redo_refusal(&again), None);
}

#[test]
fn the_quoted_command_passing_after_a_change_ends_the_turn() {
    let request = "Find the bug in calc.py and fix it so `python3 test_calc.py` passes.";
    let run = |code: i32| StepCall {
        result: format!("out\n[exit code {code}]"),
        exit_code: Some(code),
        ..call("shell", json!({"command": "python3  test_calc.py"}))
    };
    // Before any change the run only shows the failure, or that there is nothing to fix.
    let mut guard = StepGuard::new(24).with_request(request);
    assert_eq!(guard.after_calls(1, &[run(0)]).tools, ReplyTools::All);
    guard.after_calls(2, &[call("edit", json!({"path": "calc.py", "old_string": "a - b", "new_string": "a + b"}))]);
    assert_eq!(guard.after_calls(3, &[run(1)]).tools, ReplyTools::All);
    let other =
        StepCall { result: "[exit code 0]".into(), exit_code: Some(0), ..call("shell", json!({"command": "ls"})) };
    assert_eq!(guard.after_calls(4, &[other]).tools, ReplyTools::All);
    let next = guard.after_calls(5, &[run(0)]);
    assert_eq!(next.tools, ReplyTools::TextOnly);
    let note = next.note.unwrap();
    assert!(note.contains("`python3  test_calc.py` now passes after your change"), "{note}");
    assert!(note.contains("the change you made to calc.py"), "{note}");
}

#[test]
fn a_held_answer_after_a_failing_run_says_it_still_fails() {
    let mut guard = StepGuard::new(8);
    flip_flop(&mut guard, None);
    let next = guard.after_calls(7, &[call("read", json!({"path": "calc.py"}))]);
    assert_eq!(next.tools, ReplyTools::TextOnly);
    let note = next.note.unwrap();
    assert!(
        note.contains(
            "the change you made to test_calc.py, that `python3 test_calc.py` still fails (exit code 1), and"
        ),
        "{note}"
    );
    // A change after the failing run leaves its outcome open.
    let mut guard = StepGuard::new(8);
    flip_flop(&mut guard, None);
    let fix = call("edit", json!({"path": "calc.py", "old_string": "a - b", "new_string": "a + b"}));
    let note = guard.after_calls(7, &[fix]).note.unwrap();
    assert!(note.contains("the change you made to test_calc.py, calc.py, and anything left to do"), "{note}");
}
