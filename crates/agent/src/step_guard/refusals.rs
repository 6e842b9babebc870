//! The calls a guard turns down before they run, each with the reason the model is given.

use serde_json::Value;

use super::named_in_request::same_file;
use super::{DELEGATED_REQUEST_MIN_CHARS, QUOTED_RESULT_BYTES, StepCall, StepGuard, fold, text_field};
use crate::permissions::Effect;

impl StepGuard {
    /// Why the call must not run, if so: a tool this reply was not offered, a `task` that is the
    /// user's whole request or is run again with nothing changed, or an `edit` that reverses one
    /// made earlier in the turn or makes again one since undone that a failing run followed.
    pub fn refusal(&self, name: &str, arguments: &Value) -> Option<String> {
        // The grammar keeps a withheld tool out of the reply's calls, but not out of its text, and
        // a call written out in the text as a JSON block is still read as a call: a model told to
        // stop searching wrote the same grep that way seven times.
        if !self.offered.allows(name) {
            // The same call made earlier gets its result again: the model is about to answer, and
            // answered from its own guess when the last thing it read was a bare refusal.
            let earlier =
                self.calls.iter().rev().find(|call| {
                    call.succeeded && call.is(name, arguments) && call.result.len() <= QUOTED_RESULT_BYTES
                });
            return Some(match earlier {
                Some(call) => format!(
                    "{name} cannot be called in this step, so it did not run again; the same call earlier in this \
                     turn gave:\n{}",
                    call.result
                ),
                None => format!(
                    "{name} cannot be called in this step, as the note after the last tool result says, so it did \
                     not run; use one of your other tools, or answer the user"
                ),
            });
        }
        match name {
            "edit" => self.undo_refusal(arguments).or_else(|| self.redo_refusal(arguments)),
            "task" => self.delegation_refusal(arguments).or_else(|| self.rerun_refusal(arguments)),
            _ => None,
        }
    }

    /// Whether a `task` with `arguments` hands the subagent the user's whole request, word for
    /// word. A user who asks for a subagent gets one.
    pub(super) fn delegates_request(&self, arguments: &Value) -> bool {
        if self.request.contains("subagent") {
            return false;
        }
        ["description", "prompt"]
            .iter()
            .filter_map(|key| arguments.get(key).and_then(Value::as_str))
            .any(|text| self.repeats_request(text))
    }

    /// Whether `text` holds the user's whole request, word for word; a request of a few words
    /// may fairly be part of other text.
    pub(super) fn repeats_request(&self, text: &str) -> bool {
        self.request.len() >= DELEGATED_REQUEST_MIN_CHARS && fold(text).contains(&self.request)
    }

    /// Why a `task` is not run: it is the user's whole request. The subagent starts with the same
    /// tools and less to go on, and a 1.5B model handed a two-file rename that way got back a
    /// subagent that changed nothing and reported the rename done.
    fn delegation_refusal(&self, arguments: &Value) -> Option<String> {
        self.delegates_request(arguments).then(|| {
            "this task is the user's whole request, so a subagent would start where you are, with less to go on; \
             it was not started. Do the work yourself: find the code with grep, read it, and change it with edit"
                .to_string()
        })
    }

    /// Why a `task` is not run again: the same task ran earlier in the turn and nothing has
    /// changed since, so a second subagent would report the same. Small models ask again when the
    /// report does not settle the task (a subagent that changed no file claiming a rename), which
    /// costs a whole subagent run and then ends the turn on that report.
    fn rerun_refusal(&self, arguments: &Value) -> Option<String> {
        let ran = self.since_change.iter().any(|earlier| earlier.succeeded && earlier.is("task", arguments));
        ran.then(|| {
            "you gave a subagent exactly this task earlier in this turn and nothing has changed since, so it was \
             not started again; its report is above. Check what it reported with grep and read, do the work \
             yourself with edit and shell, or answer the user"
                .to_string()
        })
    }

    /// Why an `edit` is not made: it reverses one made earlier in the turn while nothing has run
    /// since that could have shown the change was wrong. Small models undo their own fix after an
    /// unrelated refusal (a command run in a file as if it were a folder) or for no reason at all;
    /// a revert after a failing test run is allowed.
    fn undo_refusal(&self, arguments: &Value) -> Option<String> {
        let path = text_field(arguments, "path")?;
        let undone = self.calls.iter().rposition(|earlier| earlier.reverses(arguments))?;
        let checked = self.calls[undone + 1..].iter().any(|call| call.succeeded && call.effect == Effect::Command);
        (!checked).then(|| {
            format!(
                "this edit would undo the change you made to '{path}' earlier in this turn, and nothing has run \
                 since to show that change was wrong, so it was not made: '{path}' keeps your change. If the task \
                 is done, answer the user; to check the change, run the program or its tests"
            )
        })
    }

    /// Why an `edit` is not made: it makes again a change made earlier in the turn and since
    /// undone, and every command run since that change failed. The file has then been both ways
    /// with the command failing, so the cause is elsewhere. A 1.5B model told to fix calc.py
    /// changed the test's expected value instead, reverted it when the test still failed, and
    /// made the change a third time without ever reading calc.py.
    pub(super) fn redo_refusal(&self, arguments: &Value) -> Option<String> {
        let path = text_field(arguments, "path")?;
        let made = self.calls.iter().position(|earlier| earlier.succeeded && earlier.is("edit", arguments))?;
        // Made again without being undone, the change is already in place (an insertion can be
        // made twice); the edit tool says so better than a claim that the file has been both ways.
        let undone = self.calls[made + 1..].iter().any(|call| call.reverses(arguments));
        if !undone {
            return None;
        }
        // A change to another file since then may be what the change was waiting for.
        let other_change = self.calls[made + 1..].iter().any(|call| {
            call.succeeded && call.effect == Effect::Edit && text_field(&call.arguments, "path") != Some(path)
        });
        if other_change {
            return None;
        }
        let runs: Vec<&StepCall> =
            self.calls[made + 1..].iter().filter(|call| call.succeeded && call.effect == Effect::Command).collect();
        // A run that passed since then leaves it open which way is right.
        if runs.iter().any(|call| call.failed_exit_code().is_none()) {
            return None;
        }
        let failed = runs.last()?;
        let command = failed.arguments.get("command").and_then(Value::as_str).unwrap_or("the command");
        let code = failed.failed_exit_code()?;
        let unread = self.unread_named_files();
        let next = if unread.is_empty() {
            "read the code that the failing command runs, find the cause there, and fix it".to_string()
        } else {
            format!(
                "read {}, which the request names and you have not read, and fix the cause there",
                unread.join(", ")
            )
        };
        Some(format!(
            "you made this same change to '{path}' earlier in this turn and `{command}` failed after it (exit \
             code {code}); '{path}' has been both ways with the command failing, so the cause is elsewhere and the \
             change was not made again. Next: {next}"
        ))
    }

    /// The files the request names that no call of the turn has read, changed or run.
    fn unread_named_files(&self) -> Vec<&str> {
        self.named_files
            .iter()
            .filter(|named| {
                !self.calls.iter().any(|call| {
                    call.succeeded
                        && match call.name.as_str() {
                            "read" | "edit" | "write" => {
                                call.arguments.get("path").and_then(Value::as_str).is_some_and(|p| same_file(p, named))
                            }
                            "shell" => {
                                call.arguments.get("command").and_then(Value::as_str).is_some_and(|command| {
                                    command.split_whitespace().any(|word| same_file(word, named))
                                })
                            }
                            _ => false,
                        }
                })
            })
            .map(String::as_str)
            .collect()
    }
}
