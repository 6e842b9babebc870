//! The agent's system prompt: how to work, the mode, the environment, the tools and the project
//! memory. It holds nothing that changes between calls (no date, no clock), so its KV can be
//! computed once and reused for every turn and forked into subagents.

use std::path::Path;

use crate::permissions::Mode;
use crate::tools::{SandboxKind, Tool};

/// What the system prompt is built from.
#[derive(Clone, Copy)]
pub struct PromptInputs<'a> {
    /// The workspace root.
    pub workspace: &'a Path,
    /// The permission mode.
    pub mode: Mode,
    /// The tools offered, in order.
    pub tools: &'a [&'a dyn Tool],
    /// The project memory section, from [`crate::memory::memory_section`].
    pub memory: Option<&'a str>,
    /// The sandbox commands run in, when known.
    pub sandbox: Option<SandboxKind>,
    /// Whether commands may use the network.
    pub network: bool,
    /// Whether this prompt is for a subagent, which reports back instead of talking to the user.
    pub subagent: bool,
}

const ROLE: &str = "You are hearth, a coding agent working in a software project on the user's machine. \
You do software tasks by calling tools: you search and read the code, change files, and run commands.";

const SUBAGENT_ROLE: &str = "You are a hearth subagent: another agent gave you one task. Do it with your tools, \
then reply with a short report of what you found or did; that reply is all the other agent sees.";

const GUIDELINES: &str = "# How to work
- Look before you change: find the relevant code with grep and glob and read it. Never guess what a file contains.
- Make the smallest change that does the task, in the style of the code around it. Change files only when \
the task asks for a change; to answer a question, find the answer and reply with it.
- As soon as a tool result gives what the task asks for, reply to the user; do not call more tools.
- Change files with edit, copying old_string exactly from what read showed (without the line number and tab). \
Create new files with write.
- After changing code, run the project's build or tests with shell when there are any, and fix what fails.
- For a task with several steps, keep a plan with todo and update it as you go.
- If a call is refused or fails, read the message and change your approach; never try to get around a refusal.
- Be brief. When you are done, say in a few lines what you changed or found.";

/// The system prompt for `inputs`.
pub fn system_prompt(inputs: &PromptInputs<'_>) -> String {
    let mut prompt = String::new();
    prompt.push_str(if inputs.subagent { SUBAGENT_ROLE } else { ROLE });
    prompt.push_str("\n\n");
    prompt.push_str(GUIDELINES);
    prompt.push_str("\n\n# Mode\n");
    prompt.push_str(mode_text(inputs.mode));
    prompt.push_str("\n\n# Environment\n");
    prompt.push_str(&format!(
        "Workspace: {} (give paths relative to it; files outside it cannot be used)\n",
        inputs.workspace.display()
    ));
    prompt.push_str(&format!("Platform: {}\n", std::env::consts::OS));
    let git = if inputs.workspace.ancestors().any(|dir| dir.join(".git").exists()) { "yes" } else { "no" };
    prompt.push_str(&format!("Git repository: {git}\n"));
    if let Some(sandbox) = inputs.sandbox {
        let network = if inputs.network { "network allowed" } else { "no network" };
        let text = match sandbox {
            SandboxKind::Unsandboxed => format!("Commands: not sandboxed, {network}\n"),
            kind => format!("Commands: sandboxed ({}), {network}, writes only inside the workspace\n", kind.as_str()),
        };
        prompt.push_str(&text);
    }
    if !inputs.tools.is_empty() {
        prompt.push_str("\n# Tools\n");
        for tool in inputs.tools {
            prompt.push_str(&format!("- {}: {}\n", tool.name(), first_sentence(tool.description())));
        }
    }
    if let Some(memory) = inputs.memory {
        prompt.push('\n');
        prompt.push_str(memory.trim_end());
        prompt.push('\n');
    }
    prompt
}

fn mode_text(mode: Mode) -> &'static str {
    match mode {
        Mode::Plan => {
            "Plan mode: you can read and search, but not change files or run commands. Investigate, then reply \
             with a plan for the user to approve."
        }
        Mode::Ask => "Ask mode: the user approves each file change and command before it runs.",
        Mode::AutoEdit => "Auto-edit mode: file changes apply at once; the user approves each command.",
        Mode::FullAuto => "Full-auto mode: file changes and commands run without asking the user.",
    }
}

fn first_sentence(text: &str) -> &str {
    match text.find(". ") {
        Some(end) => &text[..=end],
        None => text,
    }
}

#[cfg(test)]
mod tests;
