#![allow(clippy::unwrap_used)]

use super::*;
use crate::tools::ToolRegistry;

fn prompt(mode: Mode, memory: Option<&str>, subagent: bool) -> String {
    let registry = ToolRegistry::standard();
    let tools: Vec<&dyn Tool> = registry.offered(mode).map(|tool| tool.as_ref()).collect();
    system_prompt(&PromptInputs {
        workspace: Path::new("/work/project"),
        mode,
        tools: &tools,
        memory,
        sandbox: Some(SandboxKind::Bubblewrap),
        network: false,
        subagent,
    })
}

#[test]
fn lists_the_offered_tools_and_the_environment() {
    let text = prompt(Mode::Ask, None, false);
    assert!(text.starts_with("You are hearth"));
    for name in ["read", "glob", "grep", "edit", "write", "shell", "todo", "task"] {
        assert!(text.contains(&format!("\n- {name}: ")), "{name} missing:\n{text}");
    }
    assert!(text.contains("Workspace: /work/project"));
    assert!(text.contains("Commands: sandboxed (bubblewrap), no network"));
    assert!(text.contains("Ask mode"));
}

#[test]
fn plan_mode_leaves_out_write_tools() {
    let text = prompt(Mode::Plan, None, false);
    assert!(text.contains("Plan mode"));
    for name in ["edit", "write", "shell"] {
        assert!(!text.contains(&format!("\n- {name}: ")), "{name} offered in plan mode");
    }
}

#[test]
fn includes_memory_and_is_stable() {
    let memory = "# Project instructions\nUse tabs.\n";
    let text = prompt(Mode::AutoEdit, Some(memory), false);
    assert!(text.ends_with("# Project instructions\nUse tabs.\n"));
    assert_eq!(text, prompt(Mode::AutoEdit, Some(memory), false), "same inputs, same prompt (KV reuse)");
}

#[test]
fn subagents_get_their_own_role() {
    assert!(prompt(Mode::Ask, None, true).starts_with("You are a hearth subagent"));
}
