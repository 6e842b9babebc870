#![allow(clippy::unwrap_used)]
use serde_json::json;

use crate::test_vocab::tokenizer;
use crate::{GrammarEnv, GrammarError, Tool, ToolCallFormat, ToolCallGrammar, ToolChoice};

fn grammar(choice: ToolChoice) -> ToolCallGrammar {
    let tools = vec![
        Tool::new(
            "list_dir",
            "List a directory",
            json!({"type": "object", "properties": {"path": {"type": "string"}}}),
        )
        .unwrap(),
        Tool::new("lint", "Run the linter", json!({"type": "object", "properties": {}})).unwrap(),
    ];
    ToolCallGrammar::new(ToolCallFormat::Qwen, tools, choice).unwrap()
}

fn text(tokens: &[u32]) -> String {
    tokenizer().decode(tokens, true).unwrap()
}

#[test]
fn a_named_call_forces_its_fixed_text() {
    let env = GrammarEnv::new(&tokenizer()).unwrap();
    let compiled = env.compile(&grammar(ToolChoice::Named("list_dir".into()))).unwrap();
    let mut session = compiled.session();
    let forced = session.commit_forced();
    let forced_text = text(&forced);
    assert!(forced_text.starts_with("<tool_call>\n{\"name\": \"list_dir\", \"arguments\": {"), "{forced_text:?}");
    assert_eq!(session.consumed(), forced.len());
    // Nothing more is forced until the model chooses.
    assert!(session.commit_forced().is_empty() || session.is_finished());
}

#[test]
fn required_forces_the_opening_tag_and_name_prefix() {
    let env = GrammarEnv::new(&tokenizer()).unwrap();
    let compiled = env.compile(&grammar(ToolChoice::Required)).unwrap();
    let mut session = compiled.session();
    let forced = text(&session.commit_forced());
    assert!(forced.starts_with("<tool_call>\n{\"name\": \""), "{forced:?}");
    let mask = session.compute_mask().unwrap();
    assert!(mask.allowed_count() >= 2, "both tool names are still possible");
}

#[test]
fn fork_is_independent_and_rewind_restores_the_mask() {
    let tok = tokenizer();
    let env = GrammarEnv::new(&tok).unwrap();
    let compiled = env.compile(&grammar(ToolChoice::Auto)).unwrap();
    let mut a = compiled.session();
    let start_mask = a.compute_mask().unwrap().allowed_tokens();
    let call = tok.encode("<tool_call>\n{\"name\": \"lint\", \"arguments\": {}}\n</tool_call>", false, true).unwrap();
    let mut b = a.fork();
    for &t in &call[..5] {
        a.commit(t).unwrap();
    }
    // The fork has not moved.
    assert_eq!(b.compute_mask().unwrap().allowed_tokens(), start_mask);
    assert_eq!(b.consumed(), 0);
    let at_two = {
        let mut c = compiled.session();
        c.commit(call[0]).unwrap();
        c.commit(call[1]).unwrap();
        c.compute_mask().unwrap().allowed_tokens()
    };
    a.rewind(3).unwrap();
    assert_eq!(a.consumed(), 2);
    assert_eq!(a.compute_mask().unwrap().allowed_tokens(), at_two);
    assert!(matches!(a.rewind(9), Err(GrammarError::RewindTooFar { requested: 9, available: 2 })));
    for &t in &call {
        b.commit(t).unwrap();
    }
    assert!(b.is_accepting());
}

#[test]
fn a_disallowed_token_is_an_error() {
    let tok = tokenizer();
    let env = GrammarEnv::new(&tok).unwrap();
    let compiled = env.compile(&grammar(ToolChoice::Required)).unwrap();
    let mut session = compiled.session();
    let x = tok.encode("x", false, false).unwrap()[0];
    assert!(matches!(session.commit(x), Err(GrammarError::TokenRejected { .. })));
}

#[test]
fn masks_remove_disallowed_logits_and_padding() {
    let tok = tokenizer();
    let env = GrammarEnv::new(&tok).unwrap();
    let compiled = env.compile(&grammar(ToolChoice::Required)).unwrap();
    let mut session = compiled.session();
    let mask = session.compute_mask().unwrap();
    let mut logits = vec![1.0f32; env.vocab_size() + 7];
    mask.apply(&mut logits);
    let finite: Vec<u32> = (0..logits.len() as u32).filter(|&i| logits[i as usize].is_finite()).collect();
    assert_eq!(finite, mask.allowed_tokens());
    assert_eq!(finite, vec![tok.token_id("<tool_call>").unwrap()]);
}

#[test]
fn environments_are_shared_across_threads_and_sessions_move_between_them() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<GrammarEnv>();
    send::<crate::CompiledGrammar>();
    send::<crate::GrammarSession>();
}
