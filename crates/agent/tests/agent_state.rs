//! Resume, undo and compaction on a real model (SmolLM2-135M): a resumed agent continues from
//! the saved KV cache, undo rewinds the log to where the turn began, and compaction replaces the
//! turns by a summary that the session records.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;

use hearth_agent::agent_loop::{Agent, AgentEvent, AgentParts, AgentSettings};
use hearth_agent::cancel::CancelFlag;
use hearth_agent::checkpoint::{checkpoint_path, kv_path, read_checkpoint};
use hearth_agent::conversation::Conversation;
use hearth_agent::permissions::{CommandRules, Mode, NonInteractive, Permissions};
use hearth_agent::runtime::{ModelRuntime, RuntimeOptions};
use hearth_agent::session::{Session, SessionMeta};
use hearth_agent::{Event, ToolContext, ToolRegistry, Workspace};
use hearth_engine::chat_template::{ChatMessage, ToolCall};
use hearth_engine::gguf::GgufFile;
use hearth_engine::sampler::SamplerConfig;
use serde_json::json;

fn runtime() -> Arc<ModelRuntime> {
    let path = hearth_hub::model_for_tests(hearth_hub::CI_MODEL).unwrap().unwrap();
    let gguf = GgufFile::open(&path).unwrap();
    let options = RuntimeOptions {
        fallback_template: None,
        tool_format: Some("generic".into()),
        kv_budget_bytes: None,
        max_sequences: 4,
        name: hearth_hub::CI_MODEL.into(),
        device: candle_core::Device::Cpu,
    };
    Arc::new(ModelRuntime::load(&gguf, options).unwrap())
}

fn agent(runtime: &Arc<ModelRuntime>, root: &Path, session: Session) -> Agent {
    let workspace = Workspace::new(root).unwrap();
    let conversation = Conversation::new(
        runtime.template.clone(),
        runtime.tokenizer.clone(),
        Some("You are a helpful assistant. Answer in one short sentence.".into()),
        Vec::new(),
    )
    .unwrap();
    let settings = AgentSettings {
        max_steps: 1,
        max_reply_tokens: 12,
        sampler: SamplerConfig { temperature: 0.0, ..SamplerConfig::default() },
        constrained: false,
    };
    Agent::new(AgentParts {
        runtime: runtime.clone(),
        conversation,
        registry: ToolRegistry::standard(),
        ctx: ToolContext::new(workspace),
        permissions: Arc::new(Permissions::new(Mode::AutoEdit, CommandRules::default())),
        approver: Arc::new(NonInteractive),
        session: Some(session),
        settings,
    })
}

async fn turn(agent: &mut Agent, text: &str) -> Vec<AgentEvent> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    agent.run_turn(text, &tx, &CancelFlag::new()).await.unwrap();
    drop(tx);
    let mut events = Vec::new();
    while let Some(e) = rx.recv().await {
        events.push(e);
    }
    events
}

fn cached_prompt_tokens(events: &[AgentEvent]) -> u32 {
    events.iter().find_map(|e| if let AgentEvent::Usage(u) = e { Some(u.cached_prompt_tokens) } else { None }).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_undo_and_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("project");
    std::fs::create_dir_all(&root).unwrap();
    let sessions = dir.path().join("sessions");
    let meta = SessionMeta { workspace: root.canonicalize().unwrap(), model: None, mode: Mode::AutoEdit };

    // A first agent runs two turns; each leaves a checkpoint and KV file beside the session.
    let first_runtime = runtime();
    let session = Session::create(&sessions, meta).unwrap();
    let session_path = session.path().to_path_buf();
    let mut first = agent(&first_runtime, &root, session);
    turn(&mut first, "What is the capital of France?").await;
    let after_one = first.conversation().tokens().to_vec();
    turn(&mut first, "And of Italy?").await;
    let saved_tokens = first.conversation().tokens().to_vec();
    assert!(checkpoint_path(&session_path).is_file() && kv_path(&session_path).is_file());
    drop(first);
    drop(first_runtime);

    // A new process: a new model runtime with an empty cache, restored from the checkpoint.
    let runtime = runtime();
    let (session, _) = Session::resume(&session_path).unwrap();
    let mut resumed = agent(&runtime, &root, session);
    let checkpoint = read_checkpoint(&session_path).unwrap().unwrap();
    let restored = resumed.restore(checkpoint, &session_path).unwrap();
    assert_eq!(resumed.conversation().tokens(), &saved_tokens[..]);
    // Every whole block the engine computed comes back; only the turn's closing tokens (never
    // run through the model) and the partial last block are left to prefill.
    assert!(
        restored > 0 && restored.is_multiple_of(16) && restored + 20 >= saved_tokens.len(),
        "{restored} of {}",
        saved_tokens.len()
    );
    let events = turn(&mut resumed, "And of Spain?").await;
    assert!(
        cached_prompt_tokens(&events) as usize >= restored,
        "the first turn after resuming reuses the restored KV: {events:?}"
    );

    // Undo rewinds the log to where that turn began, and again for the turn before.
    resumed.undo_last_turn(false).unwrap();
    assert_eq!(resumed.conversation().tokens(), &saved_tokens[..]);
    resumed.undo_last_turn(false).unwrap();
    assert_eq!(resumed.conversation().tokens(), &after_one[..]);

    // Compaction replaces the turns by a summary and an acknowledgement after the system prompt.
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let report = resumed.compact(&tx, &CancelFlag::new()).await.unwrap();
    assert_eq!(report.tokens_before, after_one.len());
    assert_eq!(report.tokens_after, resumed.conversation().tokens().len());
    let roles: Vec<&str> = resumed.conversation().messages().iter().map(|m| m.role.as_str()).collect();
    assert_eq!(roles, ["system", "user", "assistant"]);
    assert!(resumed.conversation().messages()[1].content.as_deref().unwrap().contains(&report.summary));
    assert!(!report.summary.is_empty());
    let err = resumed.undo_last_turn(false).unwrap_err();
    assert!(err.to_string().contains("nothing to undo"), "{err}");
    let loaded = Session::load(&session_path).unwrap();
    assert!(
        loaded
            .events
            .iter()
            .any(|r| matches!(&r.event, Event::Compacted { summary, .. } if *summary == report.summary))
    );

    // Stale tool outputs: only those before the two latest user turns are replaced.
    let big = "x ".repeat(400);
    for i in 0..3 {
        let log = resumed.conversation_mut();
        log.push_user(&format!("Read file {i}")).unwrap();
        let call = ToolCall::function(Some(format!("c{i}")), "read", json!({"path": format!("f{i}")}));
        log.push_assistant(ChatMessage::assistant_tool_calls(None, vec![call])).unwrap();
        log.push_tool_results(vec![ChatMessage::tool_result(Some(format!("c{i}")), Some("read".into()), big.clone())])
            .unwrap();
        log.push_assistant(ChatMessage::assistant("Done.")).unwrap();
    }
    let before = resumed.conversation().tokens().len();
    assert!(resumed.drop_stale_tool_results(&tx).unwrap());
    let after = resumed.conversation().tokens().len();
    assert!(after + 300 < before, "{before} -> {after}");
    let outputs: Vec<&str> = resumed
        .conversation()
        .messages()
        .iter()
        .filter(|m| m.role == "tool")
        .map(|m| m.content.as_deref().unwrap())
        .collect();
    assert!(outputs[0].starts_with("[output dropped") && outputs[1] == big && outputs[2] == big, "{outputs:?}");
    assert!(!resumed.drop_stale_tool_results(&tx).unwrap(), "nothing more to drop");
}
