//! The chat loop: read a line, run it as a slash command or as a turn of the agent.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anstyle::AnsiColor;
use hearth_agent::agent_loop::{Agent, AgentEvent};
use hearth_agent::cancel::CancelFlag;
use hearth_agent::permissions::{Approval, Mode};
use rustyline::error::ReadlineError;
use tokio::runtime::Runtime;
use tokio::sync::mpsc::{self, UnboundedReceiver};

use super::approve::{self, PendingApproval};
use super::editor::PromptEditor;
use super::render::{Palette, Renderer};
use super::slash::{self, SlashCommand};
use crate::commands::agent_setup::BuiltAgent;

/// The chat's state between turns.
pub struct Chat {
    agent: Agent,
    cancel: CancelFlag,
    model_name: String,
    /// What the start-up has to say: configuration warnings, a resumed session.
    notes: Vec<String>,
    approvals: UnboundedReceiver<PendingApproval>,
    editor: PromptEditor,
    renderer: Renderer,
    /// Whether a turn is running (Ctrl-C cancels it) or the prompt is waiting.
    turn_running: Arc<AtomicBool>,
}

/// Whether the loop goes on after a command.
#[derive(Debug, PartialEq, Eq)]
enum Flow {
    Continue,
    Exit,
}

impl Chat {
    /// A chat over a built agent whose approver sends its requests to `approvals`.
    pub fn new(
        built: BuiltAgent,
        approvals: UnboundedReceiver<PendingApproval>,
        editor: PromptEditor,
        palette: Palette,
    ) -> Self {
        Self {
            agent: built.agent,
            cancel: built.cancel,
            model_name: built.model_name,
            notes: built.warnings.into_iter().map(|w| format!("warning: {w}")).chain(built.resumed).collect(),
            approvals,
            editor,
            renderer: Renderer::new(palette),
            turn_running: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Reads and runs inputs until `/exit` or Ctrl-D.
    pub fn run(mut self, runtime: &Runtime) -> anyhow::Result<()> {
        self.banner();
        self.watch_ctrl_c(runtime);
        loop {
            let mode = self.agent.permissions().mode();
            let palette = *self.renderer.palette();
            let prompt = format!("{mode} › ");
            let styled = format!("{} {} ", palette.dim(mode.as_str()), palette.bold("›"));
            let input = match self.editor.read(&prompt, &styled) {
                Ok(input) => input,
                // Ctrl-C at the prompt clears the line, as in a shell.
                Err(ReadlineError::Interrupted) => continue,
                Err(ReadlineError::Eof) => break,
                Err(e) => return Err(e.into()),
            };
            if input.trim().is_empty() {
                continue;
            }
            self.editor.remember(&input);
            match slash::parse(&input) {
                Some(Ok(command)) => {
                    if self.command(command, runtime) == Flow::Exit {
                        break;
                    }
                }
                Some(Err(e)) => self.renderer.line(&palette.fg(AnsiColor::Red, &e.to_string())),
                None => self.turn(&input, runtime),
            }
        }
        Ok(())
    }

    fn banner(&mut self) {
        let palette = *self.renderer.palette();
        let workspace = self.agent.tool_context().workspace.root().display().to_string();
        let title = format!("hearth {}", env!("CARGO_PKG_VERSION"));
        self.renderer.line(&format!(
            "{} · {} (context {} tokens) · mode {}",
            palette.bold(&title),
            self.model_name,
            self.agent.runtime().context_length,
            self.agent.permissions().mode()
        ));
        self.renderer.line(&palette.dim(&format!("workspace {workspace}")));
        for note in std::mem::take(&mut self.notes) {
            self.renderer.line(&palette.fg(AnsiColor::Yellow, &note));
        }
        self.renderer.line(&palette.dim("/help for commands · Ctrl-C stops a reply · Ctrl-D exits"));
    }

    /// Ctrl-C while a turn runs cancels it; a second one while it is stopping, or one that
    /// arrives while the prompt waits (input from a pipe), ends the program. At a terminal prompt
    /// the line editor reads Ctrl-C as a key instead.
    fn watch_ctrl_c(&self, runtime: &Runtime) {
        let cancel = self.cancel.clone();
        let running = self.turn_running.clone();
        runtime.spawn(async move {
            while tokio::signal::ctrl_c().await.is_ok() {
                if !running.load(Ordering::SeqCst) || cancel.is_set() {
                    std::process::exit(130);
                }
                cancel.set();
            }
        });
    }

    /// Runs one message through the agent, showing events as they come.
    fn turn(&mut self, input: &str, runtime: &Runtime) {
        let before = self.agent.conversation().tokens().to_vec();
        let mark = self.agent.conversation().mark();
        self.start_work();
        let (events_tx, events) = mpsc::unbounded_channel();
        let (agent, cancel) = (&mut self.agent, &self.cancel);
        let work = async move {
            let result = agent.run_turn(input, &events_tx, cancel).await;
            drop(events_tx);
            result
        };
        let result = runtime.block_on(show_while(work, events, &mut self.renderer, &mut self.approvals, cancel));
        self.end_work();
        let palette = *self.renderer.palette();
        if let Err(e) = result {
            // A failed turn can leave a half-open reply in the log; unless the log was compacted
            // meanwhile, drop the turn so the next message does not build on it.
            if self.agent.conversation().tokens().starts_with(&before) {
                self.agent.conversation_mut().rewind(mark);
                self.renderer.line(&palette.fg(AnsiColor::Red, &format!("error: {e}")));
                self.renderer.line(
                    &palette.dim("the message was dropped from the conversation; /undo reverts file changes it made"),
                );
            } else {
                self.renderer.line(&palette.fg(AnsiColor::Red, &format!("error: {e}")));
            }
        } else if self.cancel.is_set() {
            self.renderer.line(&palette.dim("(cancelled)"));
        }
    }

    /// `/compact`: the model summarises the conversation, which then replaces it.
    fn compact(&mut self, runtime: &Runtime) {
        self.start_work();
        let conversation = self.agent.conversation();
        if conversation.tokens().len() > conversation.system_len() {
            let note = self.renderer.palette().dim("summarising the conversation…");
            self.renderer.line(&note);
        }
        let (events_tx, events) = mpsc::unbounded_channel();
        let (agent, cancel) = (&mut self.agent, &self.cancel);
        let work = async move {
            let result = agent.compact(&events_tx, cancel).await;
            drop(events_tx);
            result
        };
        let result = runtime.block_on(show_while(work, events, &mut self.renderer, &mut self.approvals, cancel));
        self.end_work();
        let palette = *self.renderer.palette();
        match result {
            Ok(report) => {
                self.renderer.line(&palette.dim(&format!("summary:\n{}", report.summary)));
            }
            Err(e) => self.renderer.line(&palette.fg(AnsiColor::Red, &format!("error: {e}"))),
        }
    }

    /// Marks the start of work Ctrl-C should cancel.
    fn start_work(&mut self) {
        self.cancel.reset();
        self.turn_running.store(true, Ordering::SeqCst);
    }

    /// Marks its end.
    fn end_work(&mut self) {
        self.turn_running.store(false, Ordering::SeqCst);
        self.renderer.end_line();
    }

    fn command(&mut self, command: SlashCommand, runtime: &Runtime) -> Flow {
        let palette = *self.renderer.palette();
        match command {
            SlashCommand::Help => {
                let help = slash::help_text();
                self.renderer.line(help.trim_end());
            }
            SlashCommand::Mode(None) => {
                let mode = self.agent.permissions().mode();
                self.renderer.line(&format!("mode: {mode} ({})", describe_mode(mode)));
            }
            SlashCommand::Mode(Some(mode)) => {
                if let Err(e) = self.agent.set_mode(mode) {
                    // The mode did change; only recording it in the session failed.
                    self.renderer.line(&palette.fg(AnsiColor::Yellow, &format!("warning: {e}")));
                }
                self.renderer.line(&format!("mode: {mode} ({})", describe_mode(mode)));
            }
            SlashCommand::Clear => {
                self.agent.tool_context().todos.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clear();
                match self.agent.clear() {
                    Ok(()) => self.renderer.line(&palette.dim("started a new conversation")),
                    Err(e) => self
                        .renderer
                        .line(&palette.fg(AnsiColor::Yellow, &format!("started a new conversation; warning: {e}"))),
                }
            }
            SlashCommand::Model => {
                let conversation = self.agent.conversation();
                self.renderer.line(&format!(
                    "model: {} · context {} tokens, {} in use ({} system prompt and tools)",
                    self.model_name,
                    self.agent.runtime().context_length,
                    conversation.tokens().len(),
                    conversation.system_len()
                ));
            }
            SlashCommand::Compact => self.compact(runtime),
            SlashCommand::Undo { force } => self.undo(force),
            SlashCommand::Exit => return Flow::Exit,
        }
        Flow::Continue
    }

    /// Reverts the last turn's file changes and rewinds the conversation to before it.
    fn undo(&mut self, force: bool) {
        let palette = *self.renderer.palette();
        match self.agent.undo_last_turn(force) {
            Ok(report) => {
                let mut line = format!("undid turn {}", report.turn);
                if !report.restored.is_empty() {
                    line.push_str(&format!("; restored {}", report.restored.join(", ")));
                }
                if !report.deleted.is_empty() {
                    line.push_str(&format!("; deleted {}", report.deleted.join(", ")));
                }
                if report.restored.is_empty() && report.deleted.is_empty() {
                    line.push_str("; it changed no files");
                }
                self.renderer.line(&line);
            }
            Err(e) => self.renderer.line(&palette.fg(AnsiColor::Red, &format!("error: {e}"))),
        }
    }
}

/// Runs `work` (a turn or a compaction sending its events to `events`), showing the events
/// and asking for approvals in the order they happen.
async fn show_while<T>(
    work: impl Future<Output = T>,
    mut events: UnboundedReceiver<AgentEvent>,
    renderer: &mut Renderer,
    approvals: &mut UnboundedReceiver<PendingApproval>,
    cancel: &CancelFlag,
) -> T {
    let show = async {
        loop {
            tokio::select! {
                biased;
                event = events.recv() => match event {
                    Some(event) => renderer.event(event),
                    None => break,
                },
                Some(pending) = approvals.recv() => {
                    // The call's own event was sent before it asked; show everything up to it.
                    while let Ok(event) = events.try_recv() {
                        renderer.event(event);
                    }
                    renderer.end_line();
                    let answer = approve::ask(&pending.request, renderer.palette(), cancel).await;
                    if let Some(preview) = &pending.request.preview
                        && !matches!(answer, Approval::Deny(_))
                    {
                        renderer.previewed(preview);
                    }
                    let _ = pending.reply.send(answer);
                }
            }
        }
    };
    let (result, ()) = tokio::join!(work, show);
    result
}

fn describe_mode(mode: Mode) -> &'static str {
    match mode {
        Mode::Plan => "read-only: no file changes or commands",
        Mode::Ask => "file changes and commands need your approval",
        Mode::AutoEdit => "file changes run; commands need your approval",
        Mode::FullAuto => "everything runs without asking; deny rules still apply",
    }
}
