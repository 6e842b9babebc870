//! `hearth chat`, also what `hearth` alone runs: the agent in the terminal. A prompt with
//! history, the reply streamed as it is generated, tool calls and diffs shown as they happen,
//! approvals asked in the terminal, Ctrl-C to stop a reply, slash commands.

mod approve;
mod editor;
mod markup;
mod render;
mod repl;
mod slash;

use std::sync::Arc;

use hearth_agent::permissions::Mode;

use crate::commands::agent_setup::{AgentArgs, build_agent};

/// Arguments of `hearth chat`.
#[derive(Debug, Clone, clap::Args)]
pub struct ChatArgs {
    #[command(flatten)]
    pub agent: AgentArgs,
}

/// Runs the interactive chat until the user leaves. The default mode is `ask`: file changes and
/// commands need the user's approval.
pub fn run(args: ChatArgs) -> anyhow::Result<()> {
    let (approver, approvals) = approve::TerminalApprover::new();
    let built = build_agent(&args.agent, Arc::new(approver), Mode::Ask)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let editor = editor::PromptEditor::new(editor::default_history_path())?;
    let chat = repl::Chat::new(built, approvals, editor, render::Palette::for_stdout());
    chat.run(&runtime)
}
