//! `hearth bench` end to end on the CI model (SmolLM2-135M): the real binary and model, with a
//! stand-in for llama.cpp's `llama-bench` that answers in its JSON shape and logs how it was run,
//! so the comparison's plumbing (one llama-bench run per repetition, the ratio, the bandwidth
//! ceiling) is checked without llama.cpp.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

/// A `llama-bench` that appends its arguments to `log` and reports 10 t/s for prompts and 5 for
/// generation, at the threads it was given.
fn fake_llama_bench(dir: &Path, log: &Path) -> std::path::PathBuf {
    let path = dir.join("llama-bench");
    let script = format!(
        r#"#!/bin/sh
echo "$*" >> '{}'
p=0; n=0; t=0; d=0
while [ $# -gt 0 ]; do
  case "$1" in
    -p) p=$2; shift ;;
    -n) n=$2; shift ;;
    -t) t=$2; shift ;;
    -d) d=$2; shift ;;
  esac
  shift
done
ts=5; [ "$n" = 0 ] && ts=10
echo "[{{\"n_prompt\": $p, \"n_gen\": $n, \"n_depth\": $d, \"n_threads\": $t, \"avg_ts\": $ts, \"stddev_ts\": 0}}]"
"#,
        log.display()
    );
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn bench(args: &[&str]) -> Output {
    hearth_hub::model_for_tests(hearth_hub::CI_MODEL).unwrap();
    Command::new(env!("CARGO_BIN_EXE_hearth")).args(["bench", "smollm2-135m"]).args(args).output().unwrap()
}

#[test]
fn llama_bench_runs_once_per_repetition_and_the_ratio_uses_its_samples() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("calls");
    let fake = fake_llama_bench(dir.path(), &log);
    let out = bench(&["-p", "16", "-n", "4", "-t", "1", "-r", "3", "--json", "--llama-bench", fake.to_str().unwrap()]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "bench failed: {}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    let rows: Vec<Value> = stdout.lines().map(|l| serde_json::from_str(l).expect("one JSON object per line")).collect();

    let calls = std::fs::read_to_string(&log).unwrap();
    let calls: Vec<&str> = calls.lines().collect();
    assert_eq!(calls.len(), 6, "{calls:?}");
    assert_eq!(calls.iter().filter(|c| c.contains("-p 16 -n 0 -t 1 -r 1")).count(), 3, "{calls:?}");
    assert_eq!(calls.iter().filter(|c| c.contains("-p 0 -n 4 -t 1 -r 1")).count(), 3, "{calls:?}");

    for (test, theirs) in [("pp16", 10.0), ("tg4", 5.0)] {
        let own = rows.iter().find(|r| r["test"] == test && r.get("samples").is_some()).unwrap();
        assert_eq!(own["samples"].as_array().unwrap().len(), 3, "{own}");
        let compared = rows.iter().find(|r| r["test"] == test && r.get("ratio").is_some()).unwrap();
        assert_eq!(compared["llama_cpp_tokens_per_second"], theirs, "{compared}");
        assert_eq!(compared["llama_cpp_samples"].as_array().unwrap().len(), 3, "{compared}");
        let ours = compared["hearth_tokens_per_second"].as_f64().unwrap();
        assert!(ours > 0.0 && (ours - own["tokens_per_second"].as_f64().unwrap()).abs() < 1e-9, "{compared}");
        assert!((compared["ratio"].as_f64().unwrap() - ours / theirs).abs() < 1e-9, "{compared}");
        // Each repetition's ratio is hearth's sample over llama.cpp's, in the order taken.
        let samples = own["samples"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap());
        let pairs: Vec<f64> =
            compared["paired_ratios"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        let want: Vec<f64> = samples.map(|s| s / theirs).collect();
        assert_eq!(pairs, want, "{compared}");
        let mut sorted = want.clone();
        sorted.sort_by(f64::total_cmp);
        assert_eq!(compared["paired_ratio_median"].as_f64(), Some(sorted[1]), "{compared}");
    }
    // Decode has a bandwidth ceiling, measured while it ran; a prompt has none.
    let tg = rows.iter().find(|r| r["test"] == "tg4" && r.get("ratio").is_some()).unwrap();
    assert!(tg["share_of_ceiling"].as_f64().unwrap() > 0.0, "{tg}");
    let pp = rows.iter().find(|r| r["test"] == "pp16" && r.get("ratio").is_some()).unwrap();
    assert!(pp["share_of_ceiling"].is_null(), "{pp}");
    let ceiling = rows.iter().find(|r| r.get("decode_ceiling_tokens_per_second").is_some()).unwrap();
    assert_eq!((ceiling["test"].as_str(), ceiling["threads"].as_u64()), (Some("tg4"), Some(1)), "{ceiling}");
}

#[test]
fn tests_run_at_each_depth_and_llama_bench_is_given_it() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("calls");
    let fake = fake_llama_bench(dir.path(), &log);
    let args = ["-p", "8", "-n", "4", "-d", "0,64", "-t", "1", "-r", "1", "--json", "--llama-bench"];
    let out = bench(&[&args[..], &[fake.to_str().unwrap()]].concat());
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "bench failed: {}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    let rows: Vec<Value> = stdout.lines().map(|l| serde_json::from_str(l).expect("one JSON object per line")).collect();
    let calls = std::fs::read_to_string(&log).unwrap();
    // Depth 0 is llama-bench's default, and builds without `-d` refuse it: only 64 is passed.
    assert_eq!(calls.lines().count(), 4, "{calls}");
    assert_eq!(calls.lines().filter(|c| c.contains("-d 64")).count(), 2, "{calls}");
    for test in ["pp8", "tg4", "pp8 @ d64", "tg4 @ d64"] {
        let compared = rows.iter().find(|r| r["test"] == test && r.get("ratio").is_some());
        let compared = compared.unwrap_or_else(|| panic!("no {test} in {stdout}"));
        assert!(compared["hearth_tokens_per_second"].as_f64().unwrap() > 0.0, "{compared}");
    }
    // The ceiling counts weights only, so it is not applied past a depth.
    let deep = rows.iter().find(|r| r["test"] == "tg4 @ d64" && r.get("ratio").is_some()).unwrap();
    assert!(deep["share_of_ceiling"].is_null(), "{deep}");

    let out = bench(&["-p", "0", "-n", "16", "-d", "8190", "-r", "1"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("tg16 @ d8190 needs 8206 positions; the model's context holds 8192"), "{stderr}");
}

#[test]
fn a_missing_llama_bench_or_bad_flags_are_named() {
    let out = bench(&["-p", "8", "-n", "0", "-t", "1", "-r", "1", "--llama-bench", "/nonexistent/llama-bench"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot run /nonexistent/llama-bench"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    let out = bench(&["-r", "0"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--repetitions must be at least 1"));
    let out = bench(&["-t", "0"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("thread counts must be at least 1"));
}
