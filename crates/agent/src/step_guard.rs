//! Loop guards for small models: after each step's tool calls, decides which tools the next
//! reply may call and what note to append to the results. The limits are enforced by the grammar
//! (a tool left out cannot be emitted), not left to the prompt: models of 0.5-1.5B parameters
//! repeat a call, alternate between two calls whose results cannot change (a refused command and
//! a subagent asked the same question), search again and again without reading what they found,
//! rewrite a file with what it already holds, write the request itself into a plan once the work
//! is done, go on working after the command the request quoted has passed, or spend the last
//! allowed step on a call whose result nobody sees. Before a call runs, it also turns down a
//! call of a withheld tool written out in the reply's text, a subagent task that is the user's
//! whole request, the same subagent task run again with nothing changed, an edit that undoes the
//! model's own change with nothing run in between, and one that makes an undone change again
//! after a command failed with it in place.

use serde_json::Value;

use self::named_in_request::{named_files, one_spaced, quoted_spans};
use crate::permissions::Effect;

/// The tools a reply may call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyTools {
    /// Every tool the permission mode offers.
    All,
    /// Every tool the permission mode offers except these.
    Without(Vec<String>),
    /// None: the reply is a plain-text answer.
    TextOnly,
}

impl ReplyTools {
    /// Every tool but `names`.
    pub fn without(names: &[&str]) -> Self {
        Self::Without(names.iter().map(|name| name.to_string()).collect())
    }

    /// Whether the reply may call `tool`.
    pub fn allows(&self, tool: &str) -> bool {
        match self {
            Self::All => true,
            Self::Without(names) => !names.iter().any(|name| name == tool),
            Self::TextOnly => false,
        }
    }
}

/// The tools that only search; a run of steps calling nothing else is a search loop.
pub const SEARCH_TOOLS: [&str; 2] = ["grep", "glob"];

/// The user's notice when searching is paused.
const SEARCHING_NOTICE: &str = "the model searched several times in a row; its next reply may not search";

/// Search steps in a row after which the next reply may not search.
const SEARCH_STREAK_LIMIT: usize = 2;

/// Longest earlier result quoted again when a withheld tool is called the same way.
const QUOTED_RESULT_BYTES: usize = 4096;

/// The tool that keeps the plan; a run of steps calling nothing else does none of the work.
pub(crate) const PLAN_TOOL: &str = "todo";

/// Plan-only steps in a row after which the next reply may not update the plan.
const PLAN_STREAK_LIMIT: usize = 2;

/// What the next reply may call, a note for the model (appended to the last tool result) and a
/// notice for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextStep {
    /// The tools the next reply may call.
    pub tools: ReplyTools,
    /// Why they are limited, addressed to the model; `None` when they are not.
    pub note: Option<String>,
    /// The same, in a line for the user; `None` when they are not limited.
    pub notice: Option<String>,
}

impl NextStep {
    /// Every tool, nothing to say.
    fn any_tool() -> Self {
        Self { tools: ReplyTools::All, note: None, notice: None }
    }

    /// A reply that may call every tool but `names`.
    fn without(names: &[&str], note: String, notice: String) -> Self {
        Self { tools: ReplyTools::without(names), note: Some(note), notice: Some(notice) }
    }

    /// A plain-text reply saying `what`, then `why`. The instruction leads: a small model held to
    /// text answers what it read first, and a note that opened with the reason was copied back as
    /// the answer.
    fn answer_now(what: &str, why: &str) -> Self {
        Self {
            tools: ReplyTools::TextOnly,
            note: Some(format!("(Answer the user now, in plain text and without tools: say {what}. {why})")),
            notice: Some("the model's next reply is held to a plain-text answer".into()),
        }
    }
}

/// One tool call of a step and how it ended.
#[derive(Debug, Clone, PartialEq)]
pub struct StepCall {
    /// The tool.
    pub name: String,
    /// Its arguments.
    pub arguments: Value,
    /// What the tool does.
    pub effect: Effect,
    /// Whether it ran, rather than being refused or failing.
    pub succeeded: bool,
    /// Whether it was refused because what it would do is already done.
    pub already_done: bool,
    /// What it returned to the model.
    pub result: String,
    /// The exit code of a command that ran to its end.
    pub exit_code: Option<i32>,
}

impl StepCall {
    /// Whether the call may have changed the workspace: a file edit or a command that ran.
    fn may_change(&self) -> bool {
        self.succeeded && self.effect != Effect::ReadOnly
    }

    fn is_search(&self) -> bool {
        SEARCH_TOOLS.contains(&self.name.as_str())
    }

    fn same_call(&self, other: &StepCall) -> bool {
        self.is(&other.name, &other.arguments)
    }

    /// The exit code of a command that ran to its end and failed.
    fn failed_exit_code(&self) -> Option<i32> {
        self.exit_code.filter(|&code| code != 0)
    }

    /// Whether this is an edit that ran and is the reverse of an edit with `arguments`: the same
    /// file, with old_string and new_string swapped.
    fn reverses(&self, arguments: &Value) -> bool {
        let (Some(path), Some(old), Some(new)) =
            (text_field(arguments, "path"), text_field(arguments, "old_string"), text_field(arguments, "new_string"))
        else {
            return false;
        };
        self.succeeded
            && self.name == "edit"
            && text_field(&self.arguments, "path") == Some(path)
            && text_field(&self.arguments, "old_string") == Some(new)
            && text_field(&self.arguments, "new_string") == Some(old)
    }

    /// Whether this is a call of `name` with `arguments`.
    fn is(&self, name: &str, arguments: &Value) -> bool {
        self.name == name && self.arguments == *arguments
    }
}

/// Watches one turn's steps.
#[derive(Debug, Clone)]
pub struct StepGuard {
    max_steps: usize,
    /// The calls made since the last step that may have changed the workspace, that step's own
    /// included: the same call again would end the same way.
    since_change: Vec<StepCall>,
    /// Every search call made in the turn.
    searches: Vec<StepCall>,
    /// Every call of the turn, in order.
    calls: Vec<StepCall>,
    search_streak: usize,
    /// Steps in a row that only updated the plan.
    plan_streak: usize,
    /// Whether a repeated call has already had its tools withheld in this turn.
    withheld_for_repeat: bool,
    /// Tools withheld after a repeat until the workspace changes: until then they would answer
    /// as they did.
    withheld: Vec<String>,
    /// The tools the current reply may call.
    offered: ReplyTools,
    /// The user's request, folded by [`fold`]; empty when not known.
    request: String,
    /// The files the request names, as written there.
    named_files: Vec<String>,
    /// The spans the request quotes in backticks, some of them commands to make pass.
    quoted: Vec<String>,
}

/// Shortest folded request whose copy in a `task` counts as handing over the whole turn: a
/// request of a few words ("fix it") may fairly be part of a subagent's instructions.
const DELEGATED_REQUEST_MIN_CHARS: usize = 24;

/// `text` lowercased, with runs of white space made one space and the ends trimmed of spaces
/// and full stops, so a request copied into a task compares equal to the original.
fn fold(text: &str) -> String {
    one_spaced(text).to_lowercase().trim_matches(|c: char| c == '.' || c == ' ').to_string()
}

impl StepGuard {
    /// A guard for a turn of at most `max_steps` model calls.
    pub fn new(max_steps: usize) -> Self {
        Self {
            max_steps,
            since_change: Vec::new(),
            searches: Vec::new(),
            calls: Vec::new(),
            search_streak: 0,
            plan_streak: 0,
            withheld_for_repeat: false,
            withheld: Vec::new(),
            offered: ReplyTools::All,
            request: String::new(),
            named_files: Vec::new(),
            quoted: Vec::new(),
        }
    }

    /// The same guard, told the user's request, so that a `task` handing it all over is refused.
    pub fn with_request(mut self, request: &str) -> Self {
        self.request = fold(request);
        self.named_files = named_files(request);
        self.quoted = quoted_spans(request);
        self
    }

    /// Records the calls that step `step` (from 1) made and decides the next. The first reply may
    /// call every tool, even in a one-step turn: its calls still run.
    pub fn after_calls(&mut self, step: usize, calls: &[StepCall]) -> NextStep {
        let mut next = self.decide(step, calls);
        // Tools withheld by an earlier repeat stay withheld, without a new note, until a change.
        next.tools = match next.tools {
            ReplyTools::All if !self.withheld.is_empty() => ReplyTools::Without(self.withheld.clone()),
            ReplyTools::Without(mut names) => {
                for name in &self.withheld {
                    if !names.contains(name) {
                        names.push(name.clone());
                    }
                }
                ReplyTools::Without(names)
            }
            tools => tools,
        };
        self.offered = next.tools.clone();
        next
    }

    /// The files the turn's successful edits and writes changed, in the order first changed.
    fn changed_files(&self) -> Vec<&str> {
        let mut paths: Vec<&str> = Vec::new();
        for call in self.calls.iter().filter(|call| call.succeeded && call.effect == Effect::Edit) {
            if let Some(path) = call.arguments.get("path").and_then(Value::as_str)
                && !paths.contains(&path)
            {
                paths.push(path);
            }
        }
        paths
    }

    /// What a reply held to text should say. In a turn that has changed no file the answer is
    /// something the model read, and it is asked to quote it: told to say what it found, a 1.5B
    /// model that had read `PORT = 8731` twice answered that the port was 12345. Asked also what
    /// was left to do, it made up a task (change the port) in a turn that only asked a question.
    /// A turn that changed files is asked about those files by name, in the first person: after a
    /// subagent's made-up report, a model that had fixed `a - b` answered that it had changed a
    /// return value, and asked "what you changed in calc.py" it wrote out another edit as JSON.
    fn held_answer(&self) -> String {
        let changed = self.changed_files();
        if changed.is_empty() {
            "the answer in one sentence, then the one line of a tool result above that shows it".into()
        } else {
            let still_failing = match self.failing_since_change() {
                Some((command, code)) => format!(", that `{command}` still fails (exit code {code}),"),
                None => ",".to_string(),
            };
            format!(
                "what you did and what came of it, speaking as yourself (\"I ...\"): the change you made to {}\
                 {still_failing} and anything left to do",
                changed.join(", ")
            )
        }
    }

    /// The command and exit code of the turn's last command, when it failed and no file has
    /// changed since: a model held to text at the step limit reported a test as passing that had
    /// failed after its last change.
    fn failing_since_change(&self) -> Option<(&str, i32)> {
        let last = self.calls.iter().rev().find(|call| call.succeeded && call.effect != Effect::ReadOnly)?;
        if last.effect != Effect::Command {
            return None;
        }
        let code = last.failed_exit_code()?;
        Some((last.arguments.get("command").and_then(Value::as_str)?, code))
    }

    /// The command quoted in the request that one of `calls` ran with exit code 0, if any.
    fn passed_quoted_command<'a>(&self, calls: &'a [StepCall]) -> Option<&'a str> {
        calls.iter().find_map(|call| {
            let command = call.arguments.get("command").and_then(Value::as_str)?;
            let passed = call.name == "shell" && call.succeeded && call.exit_code == Some(0);
            (passed && self.quoted.contains(&one_spaced(command))).then_some(command)
        })
    }

    /// Whether a `todo` call's plan is one item that restates the user's request.
    fn restates_request(&self, call: &StepCall) -> bool {
        let Some(items) = call.arguments.get("todos").and_then(Value::as_array) else {
            return false;
        };
        let [item] = items.as_slice() else {
            return false;
        };
        item.get("content").and_then(Value::as_str).is_some_and(|content| self.repeats_request(content))
    }

    fn decide(&mut self, step: usize, calls: &[StepCall]) -> NextStep {
        // A call is repeated when it ended exactly as before. One that now answers differently
        // (an edit after the read it asked for, refused again for another reason or now run) is
        // progress: the read changed what the call can do.
        let repeated = !calls.is_empty() && calls.iter().all(|call| self.since_change.contains(call));
        if calls.iter().any(StepCall::may_change) {
            self.since_change = calls.to_vec();
            self.withheld.clear();
        } else {
            self.since_change.extend(calls.iter().cloned());
        }
        // The same file change made twice means the model undid it in between: it is going round
        // in circles (`add` renamed, renamed back, renamed again), each step a change.
        let is_change = |call: &&StepCall| call.succeeded && call.effect == Effect::Edit;
        let redone = calls
            .iter()
            .filter(is_change)
            .any(|call| self.calls.iter().filter(is_change).any(|earlier| earlier.same_call(call)));
        self.calls.extend(calls.iter().cloned());
        let searching = !calls.is_empty() && calls.iter().all(StepCall::is_search);
        // A search gives the same result whenever it runs again in a turn; a command may not
        // (tests run before and after a fix), so only searches are compared with all earlier ones.
        let searched_before =
            searching && calls.iter().all(|call| self.searches.iter().any(|earlier| earlier.same_call(call)));
        if searching {
            self.searches.extend(calls.iter().cloned());
        }
        self.search_streak = if searching { self.search_streak + 1 } else { 0 };
        let planning = !calls.is_empty() && calls.iter().all(|call| call.name == PLAN_TOOL);
        self.plan_streak = if planning { self.plan_streak + 1 } else { 0 };
        if step + 1 >= self.max_steps {
            return NextStep::answer_now(&self.held_answer(), "This turn has no step left for a tool call.");
        }
        // A model that writes out a call of a withheld tool does not take the limit in; refused,
        // it wrote the same call again until the turn ran out of steps.
        if !calls.is_empty() && calls.iter().all(|call| !self.offered.allows(&call.name)) {
            return NextStep::answer_now(
                &self.held_answer(),
                "The tool you called was not offered for that step, so it did not run.",
            );
        }
        // Refused once, the model asked again with the same words, twice over; it does not get
        // the tool back this turn unless a change makes a new task possible.
        if calls.iter().any(|call| call.name == "task" && !call.succeeded && self.delegates_request(&call.arguments)) {
            if !self.withheld.iter().any(|name| name == "task") {
                self.withheld.push("task".into());
            }
            return NextStep::without(
                &["task"],
                "(Note: task cannot be called until you change a file or run a command. Your next step: search \
                 for what the request names with grep, or read the file it names.)"
                    .into(),
                "the model handed the whole request to a subagent; it may not call task until a file changes or \
                 a command runs"
                    .into(),
            );
        }
        // After a change and a check, small models write the request itself into the plan, then
        // hand it to a subagent whose made-up report becomes the answer. A plan that only restates
        // the request after files have changed ends the turn instead.
        let changed = self.changed_files();
        if planning && !changed.is_empty() && calls.iter().all(|call| self.restates_request(call)) {
            return NextStep::answer_now(
                &self.held_answer(),
                &format!(
                    "Your plan only repeats the user's request, and you changed {} earlier in this turn.",
                    changed.join(", ")
                ),
            );
        }
        // The user said what done looks like: a quoted command that passes. Run after a change,
        // and passing, the task is done; small models went on to plan it again, give it to a
        // subagent and search for what they had already fixed until the turn ran out of steps.
        if !changed.is_empty()
            && let Some(command) = self.passed_quoted_command(calls)
        {
            return NextStep::answer_now(
                &self.held_answer(),
                &format!("`{command}` now passes after your change, which is what the request asked for."),
            );
        }
        // A rewrite of what a file already holds means the model has lost track of its own
        // change: it goes on rewriting the same text, or hands the finished task to a subagent.
        // The note names the files changed in the turn: told only that the file already held the
        // text, the model answered that no change had been made, or retold the user's request.
        if !calls.is_empty() && calls.iter().all(|call| call.already_done) {
            // Unless the command run since the change still fails: then the change is in place
            // but the task is not done, and a model held to text claimed the test passed.
            if !repeated && let Some(note) = self.done_but_failing() {
                return NextStep { tools: ReplyTools::All, note: Some(note), notice: None };
            }
            let why = if changed.is_empty() {
                "The file already holds the text you just wrote, so nothing was written.".to_string()
            } else {
                format!(
                    "You changed {} earlier in this turn, and the file already holds the text you just wrote, \
                     so nothing more was written.",
                    changed.join(", ")
                )
            };
            return NextStep::answer_now(
                "what you did and what came of it, speaking as yourself (\"I ...\"): the change you made, or the \
                 answer you found",
                &why,
            );
        }
        if searched_before {
            return NextStep::without(
                &SEARCH_TOOLS,
                "(Note: you already ran exactly this search in this turn; its result is above and will not \
                 change. Searching is paused for your next step: read the file you need, change it with edit, \
                 or answer the user.)"
                    .into(),
                SEARCHING_NOTICE.into(),
            );
        }
        // The first repeat of a turn that was refused withholds the refused tools until the
        // workspace changes, rather than ending the turn: the model can still do the task another
        // way (it asked a subagent that did no work twice; it can do the work itself). A repeated
        // lookup still ends the turn: made to act after reading a file twice, a 1.5B model made an
        // edit at random (`return w * h` became `return w * h + 1`).
        if repeated && !self.withheld_for_repeat && calls.iter().all(|call| !call.succeeded) {
            self.withheld_for_repeat = true;
            let mut names: Vec<&str> = Vec::new();
            for call in calls {
                if !names.contains(&call.name.as_str()) {
                    names.push(&call.name);
                }
            }
            self.withheld = names.iter().map(|name| name.to_string()).collect();
            let list = names.join(", ");
            return NextStep::without(
                &names,
                format!(
                    "(Note: this call was refused again, exactly as before, and nothing has changed since. \
                     {list} cannot be called until you change a file or run a command: do the task another way \
                     with your other tools, or answer the user.)"
                ),
                format!(
                    "the model repeated a refused call; it may not call {list} until a file changes or a command runs"
                ),
            );
        }
        if repeated {
            return NextStep::answer_now(
                &self.held_answer(),
                "Calling again would repeat exactly this call, with nothing changed since.",
            );
        }
        if redone {
            return NextStep::answer_now(
                "what the files hold now and what is left to do",
                "You made this same change earlier in this turn, undid it, and made it again.",
            );
        }
        if self.search_streak >= SEARCH_STREAK_LIMIT {
            return NextStep::without(
                &SEARCH_TOOLS,
                format!(
                    "(Note: that makes {} searches in a row. Searching is paused for your next step: read a file \
                     the search found with read, change it with edit, or answer the user.)",
                    self.search_streak
                ),
                SEARCHING_NOTICE.into(),
            );
        }
        // Small models mark a plan's items in progress, then done, then clear the plan, with none
        // of the work done, and then report the task as done.
        if self.plan_streak >= PLAN_STREAK_LIMIT {
            return NextStep::without(
                &[PLAN_TOOL],
                format!(
                    "(Note: that makes {} plan updates in a row, with no work done between them. The plan is \
                     paused for your next step: do its next item with your other tools (grep, read, edit, \
                     shell), or answer the user.)",
                    self.plan_streak
                ),
                "the model updated its plan several times in a row; its next reply may not update it".into(),
            );
        }
        NextStep::any_tool()
    }
}

/// The string argument `key` of a call's `args`.
fn text_field<'a>(args: &'a Value, key: &str) -> Option<&'a str> {
    args.get(key).and_then(Value::as_str)
}

mod done_but_failing;
mod named_in_request;
mod refusals;
#[cfg(test)]
mod tests;
