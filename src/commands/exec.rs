//! `hearth exec "<task>"`: the agent without a terminal UI, for scripts and benchmarks. With
//! `--json` every event is one JSON object per line on stdout.

use std::io::Write as _;
use std::sync::Arc;

use hearth_agent::agent_loop::AgentEvent;
use hearth_agent::permissions::{Mode, NonInteractive};
use serde_json::json;

use crate::commands::agent_setup::{AgentArgs, build_agent};

/// Arguments of `hearth exec`.
#[derive(Debug, clap::Args)]
pub struct ExecArgs {
    /// What to do.
    pub task: String,
    #[command(flatten)]
    pub agent: AgentArgs,
    /// One JSON event per line instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs `hearth exec`. Without a person to ask, calls that need approval are refused with a
/// message naming the mode that would allow them (default mode: auto-edit).
pub fn run(args: ExecArgs) -> anyhow::Result<()> {
    let built = build_agent(&args.agent, Arc::new(NonInteractive), Mode::AutoEdit)?;
    let json = args.json;
    for warning in &built.warnings {
        eprintln!("warning: {warning}");
    }
    if let Some(resumed) = &built.resumed {
        eprintln!("{resumed}");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let mut agent = built.agent;
        let cancel = built.cancel.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                cancel.set();
            }
        });
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let printer = tokio::spawn(async move {
            while let Some(event) = rx.recv().await {
                print_event(&event, json);
            }
        });
        if json {
            emit(&json!({"type": "started", "model": built.model_name, "mode": agent.permissions().mode().as_str()}));
        }
        let result = agent.run_turn(&args.task, &tx, &built.cancel).await;
        drop(tx);
        let _ = printer.await;
        let (reused, computed) = agent.prefill_totals();
        match result {
            Ok(_) => {
                if json {
                    emit(&json!({"type": "finished", "prefill_reused_tokens": reused, "prefill_computed_tokens": computed,
                        "context_tokens": agent.conversation().tokens().len()}));
                } else {
                    println!();
                }
                Ok(())
            }
            Err(e) => {
                if json {
                    emit(&json!({"type": "error", "message": e.to_string()}));
                }
                Err(e.into())
            }
        }
    })
}

fn emit(value: &serde_json::Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{value}");
    let _ = out.flush();
}

fn print_event(event: &AgentEvent, json: bool) {
    if json {
        emit(&match event {
            AgentEvent::TextDelta(text) => json!({"type": "text_delta", "text": text}),
            AgentEvent::ToolCall { call_id, name, arguments } => {
                json!({"type": "tool_call", "call_id": call_id, "name": name, "arguments": arguments})
            }
            AgentEvent::ToolResult { call_id, name, output, is_error, diff } => json!({"type": "tool_result",
                "call_id": call_id, "name": name, "output": output, "is_error": is_error, "diff": diff}),
            AgentEvent::Usage(u) => json!({"type": "usage", "prompt_tokens": u.prompt_tokens,
                "cached_prompt_tokens": u.cached_prompt_tokens, "completion_tokens": u.completion_tokens,
                "context_tokens": u.context_tokens, "context_limit": u.context_limit}),
            AgentEvent::TurnDone { text, steps } => json!({"type": "turn_done", "text": text, "steps": steps}),
            AgentEvent::Compacted { tokens_before, tokens_after, automatic } => json!({"type": "compacted",
                "tokens_before": tokens_before, "tokens_after": tokens_after, "automatic": automatic}),
            AgentEvent::Notice(text) => json!({"type": "notice", "text": text}),
        });
        return;
    }
    match event {
        AgentEvent::TextDelta(text) => {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(text.as_bytes());
            let _ = out.flush();
        }
        AgentEvent::ToolCall { name, arguments, .. } => eprintln!("\n→ {name} {arguments}"),
        AgentEvent::ToolResult { name, output, is_error, diff, .. } => {
            let first = output.lines().next().unwrap_or("");
            let lines = output.lines().count();
            let mark = if *is_error { "✗" } else { "✓" };
            eprintln!(
                "{mark} {name}: {first}{}",
                if lines > 1 { format!(" (+{} lines)", lines - 1) } else { String::new() }
            );
            if let Some(diff) = diff {
                eprintln!("{diff}");
            }
        }
        AgentEvent::Usage(u) => eprintln!(
            "[context {}/{} tokens, {} reused from cache, {} new, {} generated]",
            u.context_tokens,
            u.context_limit,
            u.cached_prompt_tokens,
            u.prompt_tokens - u.cached_prompt_tokens,
            u.completion_tokens
        ),
        AgentEvent::TurnDone { .. } => {}
        AgentEvent::Compacted { tokens_before, tokens_after, .. } => {
            eprintln!("[compacted: context {tokens_before} -> {tokens_after} tokens]")
        }
        AgentEvent::Notice(text) => eprintln!("[{text}]"),
    }
}
