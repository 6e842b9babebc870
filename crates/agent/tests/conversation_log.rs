//! The append-only token log equals what the chat template renders for the whole conversation,
//! tokenized at once, on real models' templates: adding messages one at a time never rewrites
//! earlier tokens, so the KV cache of a conversation is always reusable.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use hearth_agent::conversation::Conversation;
use hearth_engine::Tokenizer;
use hearth_engine::chat_template::{ChatMessage, ChatTemplate, ToolCall};
use hearth_engine::gguf::GgufFile;
use serde_json::json;

fn tools() -> Vec<serde_json::Value> {
    vec![json!({"type": "function", "function": {"name": "read", "description": "Read a file",
        "parameters": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}}})]
}

fn check(id: &str, fallback: Option<&str>) {
    let Some(path) = hearth_hub::model_for_tests(id).unwrap() else { return };
    let gguf = GgufFile::open(&path).unwrap();
    let tokenizer = Arc::new(Tokenizer::from_gguf(&gguf).unwrap());
    let template = Arc::new(ChatTemplate::from_gguf(&gguf, fallback).unwrap());
    let system = "You are a coding agent. Be brief.".to_string();
    let mut log = Conversation::new(template.clone(), tokenizer.clone(), Some(system.clone()), tools()).unwrap();
    let system_len = log.tokens().len();

    log.push_user("Read src/main.rs and tell me what it does.").unwrap();
    log.begin_assistant().unwrap();
    let call = ToolCall::function(Some("call_1".into()), "read", json!({"path": "src/main.rs"}));
    // What the template writes for that turn, as the model would generate it.
    let mut with_call = log.messages().to_vec();
    with_call.push(ChatMessage::assistant_tool_calls(None, vec![call.clone()]));
    let rendered_call = template.render(&with_call, Some(&tools()), false).unwrap();
    let prompt_so_far = template.render(log.messages(), Some(&tools()), true).unwrap();
    let reply = rendered_call[prompt_so_far.len()..].trim_end();
    let reply = reply.rsplit_once(['<']).map_or(reply, |(body, _)| body);
    let generated = tokenizer.encode(reply, false, true).unwrap();
    log.finish_assistant(&generated, ChatMessage::assistant_tool_calls(None, vec![call.clone()])).unwrap();
    let results = vec![ChatMessage::tool_result(Some("call_1".into()), Some("read".into()), "fn main() {}\n")];
    log.push_tool_results(results.clone()).unwrap();
    log.begin_assistant().unwrap();
    let answer = "It defines an empty `main` function.";
    let generated = tokenizer.encode(answer, false, true).unwrap();
    log.finish_assistant(&generated, ChatMessage::assistant(answer)).unwrap();
    log.push_user("Thanks! 🦀").unwrap();
    log.begin_assistant().unwrap();

    // The same conversation rendered and tokenized in one go.
    let mut messages = vec![ChatMessage::system(system)];
    messages.push(ChatMessage::user("Read src/main.rs and tell me what it does."));
    messages.push(ChatMessage::assistant_tool_calls(None, vec![call]));
    messages.extend(results);
    messages.push(ChatMessage::assistant(answer));
    messages.push(ChatMessage::user("Thanks! 🦀"));
    let whole = template.render(&messages, Some(&tools()), true).unwrap();
    let expected = tokenizer.encode(&whole, true, true).unwrap();
    if log.tokens() != expected.as_slice() {
        let at = log.tokens().iter().zip(&expected).take_while(|(a, b)| a == b).count();
        panic!(
            "{id}: logs differ at token {at}:\nlog:      {:?}\nrendered: {:?}",
            tokenizer.decode(&log.tokens()[at.saturating_sub(5)..], true).unwrap(),
            tokenizer.decode(&expected[at.saturating_sub(5)..], true).unwrap()
        );
    }
    assert_eq!(&log.tokens()[..system_len], &expected[..system_len]);

    // A subagent starts from the same system prefix.
    let fork = log.fork_system();
    assert_eq!(fork.tokens(), &log.tokens()[..log.system_len()]);
    // Rewinding drops exactly the later turns.
    let mark = log.mark();
    log.push_user("one more").unwrap();
    log.rewind(mark);
    assert_eq!(log.tokens(), expected.as_slice());
}

#[test]
fn smollm2_log_matches_one_shot_rendering() {
    check("smollm2-135m", None);
}

#[test]
fn qwen_log_matches_one_shot_rendering() {
    check("qwen2.5-coder-0.5b", None);
}

#[test]
fn gemma_log_matches_one_shot_rendering() {
    let registry = hearth_hub::Registry::builtin().unwrap();
    let fallback = registry.lookup("gemma3-270m").unwrap().chat_template.clone();
    check("gemma3-270m", fallback.as_deref());
}
