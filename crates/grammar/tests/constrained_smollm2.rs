//! SmolLM2 (the CI model) answering tool requests in the generic format under the grammar:
//! every reply that ends parses exactly and its arguments validate against the tool's schema.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use hearth_engine::generate::StopReason;
use hearth_grammar::{ToolCallFormat, ToolChoice};
use support::tool_eval::{Harness, judge, model_path, prepared, sampler};
use support::tool_prompts::PromptSet;

const MODEL: &str = "smollm2-135m";

fn harness() -> Harness {
    let path = model_path(MODEL, true).unwrap();
    Harness::load(MODEL, &path)
}

#[test]
fn constrained_replies_always_parse_and_validate() {
    let h = harness();
    assert_eq!(h.format, ToolCallFormat::Generic);
    let set = PromptSet::load();
    let grammars: Vec<_> = (0..set.groups()).map(|g| h.grammar(set.group(g), ToolChoice::Required, false)).collect();
    let mut ended = 0;
    for (i, (p, tokens)) in prepared(&h, &set, 12).iter().enumerate() {
        let mut s = sampler(i as u64);
        let reply = h.reply(tokens, Some(&grammars[p.group]), &mut s, 160);
        if reply.stop == StopReason::Length {
            // Cut mid-call by the token limit: a prefix of a valid call, nothing else.
            assert!(reply.text.starts_with("<tool_call>\n{\"name\": \""), "#{i}: {}", reply.text);
            continue;
        }
        ended += 1;
        let (verdict, parsed) = judge(&reply, set.group(p.group), &set.tools[p.tool].name);
        assert!(verdict.valid, "#{i} {:?}: {}\n{:?}", p.user, reply.text, parsed.problems);
        let stats = reply.stats.unwrap();
        assert!(stats.forced_tokens > 0, "the call's fixed text is forced");
    }
    assert!(ended >= 9, "only {ended} of 12 replies ended within the token limit");
}

#[test]
fn auto_choice_allows_plain_text_and_parses_calls() {
    let h = harness();
    let set = PromptSet::load();
    let grammar = h.grammar(set.group(1), ToolChoice::Auto, true);
    for i in 0..4 {
        let prompt =
            h.prompt_tokens(set.group(1), if i % 2 == 0 { "Hi! Who are you?" } else { "Show the diff of src/lib.rs." });
        let mut s = sampler(100 + i);
        let reply = h.reply(&prompt, Some(&grammar), &mut s, 96);
        if reply.stop == StopReason::Length {
            continue;
        }
        // Either calls only, all of which parse, or text with no call in it.
        if reply.text.starts_with("<tool_call>") {
            let parsed = hearth_grammar::parse_reply(&reply.text, set.group(1));
            assert!(parsed.is_clean() && !parsed.calls.is_empty(), "{}\n{:?}", reply.text, parsed.problems);
            assert!(parsed.content.is_empty(), "{}", reply.text);
        } else {
            assert!(!reply.text.contains("<tool_call>"), "{}", reply.text);
        }
    }
}
