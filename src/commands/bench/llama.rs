//! Running llama.cpp's `llama-bench` on the same file, tests and threads, so the ratio comes from
//! one run on one machine.

use std::path::Path;
use std::process::Command;

use anyhow::Context as _;

use super::{Test, at_depth};

/// One llama-bench result.
#[derive(Debug, Clone, PartialEq)]
pub struct LlamaResult {
    /// `pp512`, `tg128`, ...
    pub test: String,
    /// Threads.
    pub threads: usize,
    /// Mean tokens per second.
    pub tokens_per_second: f64,
}

/// llama.cpp's `llama-bench` binary and the extra arguments it is run with.
pub struct LlamaBench<'a> {
    /// The binary.
    pub path: &'a Path,
    /// Passed through as given, such as `--repack 0` on builds whose repacked kernels this CPU
    /// cannot run.
    pub extra: &'a [String],
}

impl LlamaBench<'_> {
    /// Tokens per second of one repetition of `test` on `model` with `threads` threads. Each
    /// call is a separate llama-bench run, with its own warm-up, so that its samples can
    /// alternate with hearth's.
    pub fn sample(&self, model: &Path, test: Test, threads: usize) -> anyhow::Result<f64> {
        let (prompt, generated) = if test.is_prompt { (test.n, 0) } else { (0, test.n) };
        let mut command = Command::new(self.path);
        command.arg("-m").arg(model);
        command.args(["-p", &prompt.to_string(), "-n", &generated.to_string(), "-t", &threads.to_string(), "-r", "1"]);
        // Only asked for when used: builds older than the option refuse it.
        if test.depth > 0 {
            command.args(["-d", &test.depth.to_string()]);
        }
        let out = command
            .args(["-o", "json"])
            .args(self.extra)
            .output()
            .with_context(|| format!("cannot run {}", self.path.display()))?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let last = stderr.lines().rev().find(|l| !l.trim().is_empty()).map(|l| format!(": {}", l.trim()));
            anyhow::bail!(
                "{} failed ({}){}{}",
                self.path.display(),
                out.status,
                last.unwrap_or_default(),
                failure_hint(&out.status)
            );
        }
        let rows = parse(&String::from_utf8_lossy(&out.stdout))?;
        let test = test.name();
        rows.iter()
            .find(|r| r.test == test && r.threads == threads)
            .map(|r| r.tokens_per_second)
            .with_context(|| format!("{} printed no {test} result at {threads} threads", self.path.display()))
    }
}

/// What to try when llama-bench died of an illegal instruction. A build for this CPU (`-march=native`)
/// can still use instructions the machine will not run: a virtual machine may report AMX in
/// CPUID without enabling its registers, and llama.cpp's repacked AMX kernels then die in prefill.
fn failure_hint(status: &std::process::ExitStatus) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt as _;
        if status.signal() == Some(libc::SIGILL) {
            return "; it ran an instruction this machine does not allow (virtual machines that \
                    report AMX but do not enable it do this to builds with AMX): try \
                    `--llama-bench-arg=--repack --llama-bench-arg=0`, or a llama.cpp built with GGML_NATIVE=OFF \
                    and GGML_AMX_TILE=OFF";
        }
    }
    #[cfg(not(unix))]
    let _ = status;
    ""
}

/// Reads llama-bench's `-o json` output.
pub fn parse(json: &str) -> anyhow::Result<Vec<LlamaResult>> {
    let rows: Vec<serde_json::Value> = serde_json::from_str(json).context("llama-bench printed no JSON array")?;
    rows.iter()
        .map(|row| {
            let field = |name: &str| row[name].as_f64().with_context(|| format!("llama-bench result without {name}"));
            let (p, n) = (field("n_prompt")? as usize, field("n_gen")? as usize);
            let test = if n == 0 {
                format!("pp{p}")
            } else if p == 0 {
                format!("tg{n}")
            } else {
                format!("pp{p}+tg{n}")
            };
            // Builds older than `-d` have no depth field.
            let test = at_depth(test, row["n_depth"].as_u64().unwrap_or(0) as usize);
            Ok(LlamaResult { test, threads: field("n_threads")? as usize, tokens_per_second: field("avg_ts")? })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{failure_hint, parse};

    #[test]
    fn reads_llama_bench_json() {
        let json = r#"[{"n_prompt": 512, "n_gen": 0, "n_threads": 2, "avg_ts": 101.5, "stddev_ts": 1.25},
                       {"n_prompt": 0, "n_gen": 128, "n_threads": 2, "avg_ts": 20.0, "stddev_ts": 0.5}]"#;
        let rows = parse(json).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].test.as_str(), rows[0].threads, rows[0].tokens_per_second), ("pp512", 2, 101.5));
        assert_eq!((rows[1].test.as_str(), rows[1].tokens_per_second), ("tg128", 20.0));
        let deep = r#"[{"n_prompt": 0, "n_gen": 32, "n_depth": 4096, "n_threads": 1, "avg_ts": 9.5}]"#;
        assert_eq!(parse(deep).unwrap()[0].test, "tg32 @ d4096");
        assert!(parse("not json").is_err());
        assert!(parse(r#"[{"n_prompt": 1}]"#).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn illegal_instruction_gets_a_hint() {
        use std::os::unix::process::ExitStatusExt as _;
        use std::process::ExitStatus;
        // Wait statuses: killed by SIGILL, killed by SIGSEGV, exited with 1.
        assert!(failure_hint(&ExitStatus::from_raw(libc::SIGILL)).contains("--repack"));
        assert_eq!(failure_hint(&ExitStatus::from_raw(libc::SIGSEGV)), "");
        assert_eq!(failure_hint(&ExitStatus::from_raw(1 << 8)), "");
    }
}
