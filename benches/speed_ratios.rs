//! hearth against llama.cpp on the same GGUF files, thread counts and machine, in one run: pp512
//! and tg128 tokens per second, their ratios, and decode as a share of the memory-bandwidth
//! ceiling, for every model, with each ratio checked against the speed targets (decode at least
//! 1.1 times llama.cpp, prefill at least 1.0 times). Runs `hearth bench --llama-bench` per model.
//!
//! Two ratios are printed: of the means of all samples, and the median of the repetitions' own
//! ratios (each of hearth's samples over the llama.cpp sample taken right next to it). The target
//! is checked on the median, which a host that jumps between speeds moves least: a jump during
//! one repetition moves one paired ratio, where it moves a mean by its whole size.
//!
//! ```text
//! HEARTH_LLAMA_BENCH=/path/to/llama-bench cargo bench --bench speed_ratios -- \
//!     [--models smollm2-135m,qwen2.5-coder-1.5b] [--threads 1,2] [--repetitions 5] [--depth 0,4096]
//! ```
//!
//! `--depth` runs the tests after that many cached tokens too (`hearth bench -d`), as an agent's
//! later turns do, where attention takes a larger share of each token.
//!
//! Without `HEARTH_LLAMA_BENCH` only hearth's own speeds and ceiling shares are printed.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::{Command, ExitCode};

use serde_json::Value;

/// Decode must beat llama.cpp by this factor, prefill match it.
const DECODE_TARGET: f64 = 1.1;
const PREFILL_TARGET: f64 = 1.0;

fn flag(args: &[String], name: &str, default: &str) -> String {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned().unwrap_or_else(|| default.into())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let models = flag(&args, "--models", "smollm2-135m,qwen2.5-coder-1.5b");
    let threads = flag(&args, "--threads", "1,2");
    let repetitions = flag(&args, "--repetitions", "5");
    let depth = flag(&args, "--depth", "0");
    let llama_bench = std::env::var("HEARTH_LLAMA_BENCH").ok().filter(|p| !p.is_empty());
    if llama_bench.is_none() {
        eprintln!("HEARTH_LLAMA_BENCH is not set: printing hearth's speeds only");
    }
    println!(
        "| model | test | threads | hearth t/s | llama.cpp t/s | ratio of means | median paired ratio | target | share of ceiling |"
    );
    println!("| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: |");
    let mut failed = false;
    for model in models.split(',').filter(|m| !m.is_empty()) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hearth"));
        cmd.args(["bench", model, "-t", &threads, "-r", &repetitions, "-d", &depth, "--json"]);
        if let Some(path) = &llama_bench {
            cmd.args(["--llama-bench", path]);
        }
        let out = match cmd.output() {
            Ok(o) if o.status.success() => o,
            Ok(o) => {
                eprintln!("hearth bench {model} failed: {}", String::from_utf8_lossy(&o.stderr).trim());
                failed = true;
                continue;
            }
            Err(e) => {
                eprintln!("cannot run hearth: {e}");
                return ExitCode::FAILURE;
            }
        };
        let rows: Vec<Value> =
            String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
        // The comparison rows are the ones naming a test and carrying the ratio or the share.
        for row in rows.iter().filter(|r| r.get("hearth_tokens_per_second").is_some() && r.get("ratio").is_some()) {
            let test = row["test"].as_str().unwrap_or("?");
            let number = |k: &str| row.get(k).and_then(Value::as_f64);
            let target = if test.starts_with("pp") { PREFILL_TARGET } else { DECODE_TARGET };
            let verdict = match number("paired_ratio_median") {
                Some(r) if r >= target => format!(">= {target}x: met"),
                Some(_) => format!(">= {target}x: not met"),
                None => "-".into(),
            };
            let show = |v: Option<f64>, suffix: &str| v.map_or("-".into(), |v| format!("{v:.2}{suffix}"));
            println!(
                "| {model} | {test} | {} | {} | {} | {} | {} | {verdict} | {} |",
                row["threads"],
                show(number("hearth_tokens_per_second"), ""),
                show(number("llama_cpp_tokens_per_second"), ""),
                show(number("ratio"), "x"),
                show(number("paired_ratio_median"), "x"),
                number("share_of_ceiling").map_or("-".into(), |s| format!("{:.0}%", s * 100.0)),
            );
        }
    }
    if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}
