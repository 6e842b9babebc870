//! Qwen2.5-Coder-0.5B in its native format under the grammar (when the model is cached, or
//! `HEARTH_TEST_ALL_MODELS=1` pulls it): calls open with the `<tool_call>` special token, parse
//! exactly and validate; the token environment sees the tags as special tokens.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use hearth_engine::generate::StopReason;
use hearth_grammar::{ToolCallFormat, ToolChoice};
use support::tool_eval::{Harness, judge, model_path, prepared, sampler};
use support::tool_prompts::PromptSet;

const MODEL: &str = "qwen2.5-coder-0.5b";

fn harness() -> Option<Harness> {
    let pull = std::env::var("HEARTH_TEST_ALL_MODELS").is_ok_and(|v| v == "1");
    let Some(path) = model_path(MODEL, pull) else {
        eprintln!("skipping: {MODEL} is not cached (HEARTH_TEST_ALL_MODELS=1 pulls it)");
        return None;
    };
    Some(Harness::load(MODEL, &path))
}

#[test]
fn native_calls_use_the_special_tokens_and_validate() {
    let Some(h) = harness() else { return };
    assert_eq!(h.format, ToolCallFormat::Qwen);
    let open = h.tokenizer.token_id("<tool_call>").unwrap();
    assert!(h.env.is_special(open));
    assert_eq!(h.env.special_token("</tool_call>"), h.tokenizer.token_id("</tool_call>"));
    let set = PromptSet::load();
    let grammars: Vec<_> = (0..set.groups()).map(|g| h.grammar(set.group(g), ToolChoice::Required, false)).collect();
    for (i, (p, tokens)) in prepared(&h, &set, 10).iter().enumerate() {
        let mut s = sampler(i as u64);
        let reply = h.reply(tokens, Some(&grammars[p.group]), &mut s, 128);
        if reply.stop == StopReason::Length {
            continue;
        }
        let (verdict, parsed) = judge(&reply, set.group(p.group), &set.tools[p.tool].name);
        assert!(verdict.valid, "#{i} {:?}: {}\n{:?}", p.user, reply.text, parsed.problems);
    }
}
