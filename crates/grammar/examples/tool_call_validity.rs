//! How often a model's tool calls parse and follow their schema, with and without the grammar.
//!
//! ```text
//! cargo run --release -p hearth-grammar --example tool_call_validity -- \
//!     --model qwen2.5-coder-0.5b --prompts 500 [--max-tokens 96] [--mode both|constrained|unconstrained]
//!     [--parallel] [--verbose] [--skip N (start at request N, to split a long run)]
//! ```
//!
//! Each request (25 tools with varied schemas, `fixtures/tool_prompts.json`) is shown with its
//! group of 5 tools in the model's own format and answered at temperature 0.7; constrained runs
//! use `ToolChoice::Required` with one call per reply (`--parallel`
//! allows several, which small models tend to repeat up to the token limit). A reply is valid when it holds at least one call, parses exactly
//! as written and every call's arguments validate against the tool's schema (`jsonschema`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

#[path = "../tests/support/tool_eval.rs"]
mod tool_eval;
#[path = "../tests/support/tool_prompts.rs"]
mod tool_prompts;

use std::time::Instant;

use hearth_grammar::ToolChoice;
use tool_eval::{Harness, Tally, judge, model_path, prepared, sampler};
use tool_prompts::PromptSet;

struct Args {
    model: String,
    prompts: usize,
    skip: usize,
    max_tokens: usize,
    constrained: bool,
    unconstrained: bool,
    verbose: bool,
    parallel: bool,
}

fn args() -> Args {
    let mut a = Args {
        model: "qwen2.5-coder-0.5b".into(),
        prompts: 50,
        skip: 0,
        max_tokens: 96,
        constrained: true,
        unconstrained: true,
        verbose: false,
        parallel: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--model" => a.model = value(),
            "--prompts" => a.prompts = value().parse().expect("--prompts N"),
            "--skip" => a.skip = value().parse().expect("--skip N"),
            "--max-tokens" => a.max_tokens = value().parse().expect("--max-tokens N"),
            "--mode" => match value().as_str() {
                "both" => {}
                "constrained" => a.unconstrained = false,
                "unconstrained" => a.constrained = false,
                other => panic!("unknown mode {other}"),
            },
            "--verbose" => a.verbose = true,
            "--parallel" => a.parallel = true,
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

fn pct(n: usize, d: usize) -> f64 {
    100.0 * n as f64 / d.max(1) as f64
}

fn report(name: &str, t: &Tally, seconds: f64) {
    println!(
        "{name:>13}: {} replies, valid {:.1}% ({}; {:.1}% of the {} that ended), valid after repair {:.1}%, expected tool first {:.1}%, cut by length {}, {:.1} tokens/reply, {:.0} s",
        t.replies,
        pct(t.valid, t.replies),
        t.valid,
        pct(t.valid, t.replies - t.truncated),
        t.replies - t.truncated,
        pct(t.valid_repaired, t.replies),
        pct(t.right_tool, t.replies),
        t.truncated,
        t.generated_tokens as f64 / t.replies.max(1) as f64,
        seconds,
    );
    if t.masks > 0 {
        println!(
            "{:>13}  mask {:.3} ms/token on its thread, adds {:.2}% to decode time; forced tokens {} of {} ({:.1}%), forward passes {} for {} tokens",
            "",
            t.mask_time.as_secs_f64() * 1e3 / t.masks as f64,
            100.0 * t.mask_overhead.as_secs_f64() / t.decode_time.as_secs_f64().max(1e-9),
            t.forced_tokens,
            t.generated_tokens,
            pct(t.forced_tokens, t.generated_tokens),
            t.decode_passes + t.replies,
            t.generated_tokens,
        );
    }
}

fn main() {
    let a = args();
    let path = model_path(&a.model, true).expect("model");
    let h = Harness::load(&a.model, &path);
    let set = PromptSet::load();
    let jobs = prepared(&h, &set, a.prompts);
    let grammars: Vec<_> =
        (0..set.groups()).map(|g| h.grammar(set.group(g), ToolChoice::Required, a.parallel)).collect();
    println!(
        "model {} ({:?} format), {} prompts over {} tools, max {} tokens, temperature 0.7",
        a.model,
        h.format,
        jobs.len(),
        set.tools.len(),
        a.max_tokens
    );
    let (mut constrained, mut unconstrained) = (Tally::default(), Tally::default());
    let (mut t_con, mut t_unc) = (0.0, 0.0);
    for (i, (p, tokens)) in jobs.iter().enumerate().skip(a.skip) {
        let tools = set.group(p.group);
        let expected = &set.tools[p.tool].name;
        for (on, tally, secs) in [(true, &mut constrained, &mut t_con), (false, &mut unconstrained, &mut t_unc)] {
            if (on && !a.constrained) || (!on && !a.unconstrained) {
                continue;
            }
            let start = Instant::now();
            let mut s = sampler(i as u64);
            let reply = h.reply(tokens, on.then(|| &grammars[p.group]), &mut s, a.max_tokens);
            *secs += start.elapsed().as_secs_f64();
            let (verdict, parsed) = judge(&reply, tools, expected);
            tally.add(&reply, verdict);
            if a.verbose || (on && !verdict.valid) {
                println!(
                    "--- #{i} {} [{}] {:?} {:?}\n{}\n{:?}",
                    if on { "constrained" } else { "free" },
                    p.user,
                    verdict,
                    reply.stop,
                    reply.text,
                    parsed.problems
                );
            }
        }
        if (i + 1) % 25 == 0 {
            for (name, t) in [("constrained", &constrained), ("unconstrained", &unconstrained)] {
                if t.replies > 0 {
                    eprintln!(
                        "{} / {}: {name} valid {} / {}, valid after repair {}, cut by length {}, tokens {}, forced {}",
                        i + 1,
                        jobs.len(),
                        t.valid,
                        t.replies,
                        t.valid_repaired,
                        t.truncated,
                        t.generated_tokens,
                        t.forced_tokens
                    );
                }
            }
        }
    }
    if a.constrained {
        report("constrained", &constrained, t_con);
    }
    if a.unconstrained {
        report("unconstrained", &unconstrained, t_unc);
    }
}
