//! A change refused as already made while the command run since it still fails.
//!
//! A step whose calls were all refused as already done ends the turn: the model has lost track
//! of its own change. But when the turn's last command failed after its last change, the change
//! being in place is not the task being done: held to text there, a model that had inserted a
//! fixed line into calc.py, seen the test still fail and tried the insertion again answered that
//! the test now passed. It is told that the command still fails instead, and goes on.

use super::StepGuard;

impl StepGuard {
    /// The note for a step whose calls were all refused as already done, when the turn's last
    /// command failed after its last change; `None` otherwise.
    pub(super) fn done_but_failing(&self) -> Option<String> {
        let (command, code) = self.failing_since_change()?;
        Some(format!(
            "(Note: that change is already made, and `{command}` still fails with it in place (exit code {code}), so \
             the task is not done. Look for the cause where the failure points.)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::step_guard::tests::call;
    use crate::step_guard::{ReplyTools, StepCall, StepGuard};

    #[test]
    fn a_change_made_again_while_the_command_fails_does_not_end_the_turn() {
        let insert = json!({"path": "calc.py", "old_string": "def add(a, b):", "new_string": "def add(a, b):\n    return a + b"});
        let run = |code: i32| StepCall {
            result: format!("AssertionError\n[exit code {code}]"),
            exit_code: Some(code),
            ..call("shell", json!({"command": "python3 test_calc.py"}))
        };
        let done = StepCall { already_done: true, succeeded: false, ..call("edit", insert.clone()) };
        let mut guard = StepGuard::new(24);
        guard.after_calls(1, &[call("edit", insert.clone())]);
        guard.after_calls(2, &[run(1)]);
        let next = guard.after_calls(3, std::slice::from_ref(&done));
        assert_eq!(next.tools, ReplyTools::All);
        assert_eq!(
            next.note.as_deref(),
            Some(
                "(Note: that change is already made, and `python3 test_calc.py` still fails with it in place (exit \
                 code 1), so the task is not done. Look for the cause where the failure points.)"
            )
        );
        // The same refusal again ends the turn, as any repeat does.
        assert_eq!(guard.after_calls(4, std::slice::from_ref(&done)).tools, ReplyTools::TextOnly);
        // After a passing run the change is done and the turn ends.
        let mut guard = StepGuard::new(24);
        guard.after_calls(1, &[call("edit", insert)]);
        guard.after_calls(2, &[run(0)]);
        assert_eq!(guard.after_calls(3, &[done]).tools, ReplyTools::TextOnly);
    }
}
