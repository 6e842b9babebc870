//! `hearth bench`: prompt processing and generation speed in a table like llama-bench's, the
//! memory bandwidth ceiling on decoding, and optionally llama.cpp's `llama-bench` on the same file
//! in the same run, with the ratio.

mod bandwidth;
mod llama;

use std::time::Instant;

use anyhow::Context as _;
use hearth_engine::{Logits, Model, generate::logits_vec};
use rand::{Rng, SeedableRng, rngs::StdRng};

use crate::commands::common::{self, ThreadsArg};

/// Arguments of `hearth bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Model id (see `hearth list`) or path to a .gguf file.
    pub model: String,
    /// Prompt lengths to test (comma-separated), like llama-bench's -p; 0 skips.
    #[arg(short = 'p', long = "n-prompt", value_delimiter = ',', default_value = "512")]
    pub n_prompt: Vec<usize>,
    /// Generation lengths to test (comma-separated), like llama-bench's -n; 0 skips.
    #[arg(short = 'n', long = "n-gen", value_delimiter = ',', default_value = "128")]
    pub n_gen: Vec<usize>,
    /// Thread counts to test (comma-separated).
    #[arg(short = 't', long = "threads", value_delimiter = ',')]
    pub threads: Vec<usize>,
    /// Repetitions of each test.
    #[arg(short = 'r', long = "repetitions", default_value_t = 5)]
    pub repetitions: usize,
    /// Where the model runs: cpu, cuda[:N] or metal[:N] (builds with `--features cuda` / `metal`).
    #[arg(long, default_value = "cpu", value_name = "DEVICE")]
    pub device: common::DeviceArg,
    /// Print one JSON object per test instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Also run this llama.cpp `llama-bench` binary on the same file with the same tests and
    /// threads, and print the ratio of hearth's speed to it.
    #[arg(long, value_name = "PATH")]
    pub llama_bench: Option<std::path::PathBuf>,
    /// An extra argument for llama-bench (repeatable), e.g. `--llama-bench-arg=--no-repack`.
    #[arg(long, value_name = "ARG", allow_hyphen_values = true)]
    pub llama_bench_arg: Vec<String>,
    /// Skip measuring the memory bandwidth.
    #[arg(long)]
    pub no_bandwidth: bool,
}

/// One measured test.
struct Measured {
    threads: usize,
    test: String,
    is_prompt: bool,
    mean: f64,
}

/// Runs `hearth bench`.
pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.repetitions > 0, "--repetitions must be at least 1");
    let loaded = common::load_model(&args.model, args.device)?;
    let model = &loaded.model;
    let threads = if args.threads.is_empty() { vec![common::default_threads()] } else { args.threads.clone() };
    let size_gib = loaded.gguf.file_len() as f64 / (1u64 << 30) as f64;
    let params: usize = loaded.gguf.tensors().values().map(|t| t.elem_count()).sum();
    let model_name = format!("{} {}", model.config().architecture.name(), loaded.display_name);
    let on_cpu = model.device().is_cpu();
    let backend = match args.device {
        common::DeviceArg::Cpu => format!("CPU ({})", hearth_kernels::simd_level()),
        common::DeviceArg::Cuda(n) => format!("CUDA {n}"),
        common::DeviceArg::Metal(n) => format!("Metal {n}"),
    };
    if !args.json {
        println!("| model | size | params | backend | threads | test | t/s |");
        println!("| --- | ---: | ---: | --- | ---: | ---: | ---: |");
    }
    let weight_bytes =
        bandwidth::bytes_per_token(loaded.gguf.tensors().iter().map(|(name, t)| (name.clone(), t.n_bytes as u64)));
    let mut measured = Vec::new();
    let mut bandwidths = Vec::new();
    for &t in &threads {
        anyhow::ensure!(t > 0, "thread counts must be at least 1");
        let pool = ThreadsArg(Some(t)).pool()?;
        // The read bandwidth measured is the host's, the ceiling of a model on the CPU only.
        if on_cpu && !args.no_bandwidth && args.n_gen.iter().any(|&n| n > 0) {
            bandwidths.push((t, pool.install(|| bandwidth::read_bandwidth(weight_bytes as usize))));
        }
        let tests = args.n_prompt.iter().filter(|&&p| p > 0).map(|&p| (format!("pp{p}"), p, true));
        let tests = tests.chain(args.n_gen.iter().filter(|&&n| n > 0).map(|&n| (format!("tg{n}"), n, false)));
        for (name, n, is_prompt) in tests.collect::<Vec<_>>() {
            let samples = pool.install(|| -> anyhow::Result<Vec<f64>> {
                // One untimed pass warms caches and the page cache of the mapped weights.
                time_test(model, if is_prompt { n.min(32) } else { 1 }, is_prompt)?;
                (0..args.repetitions).map(|_| time_test(model, n, is_prompt)).collect()
            })?;
            let (mean, sd) = mean_sd(&samples);
            measured.push(Measured { threads: t, test: name.clone(), is_prompt, mean });
            if args.json {
                let v = serde_json::json!({
                    "model": model_name, "size_bytes": loaded.gguf.file_len(), "params": params,
                    "backend": backend, "threads": t, "test": name, "tokens_per_second": mean, "stddev": sd,
                    "samples": samples,
                });
                println!("{v}");
            } else {
                println!(
                    "| {model_name} | {size_gib:.2} GiB | {:.2} M | {backend} | {t} | {name} | {mean:.2} ± {sd:.2} |",
                    params as f64 / 1e6
                );
            }
        }
    }
    let llama_rows = match &args.llama_bench {
        Some(path) => {
            let rows = llama::run(
                path,
                loaded.gguf.path(),
                &args.n_prompt,
                &args.n_gen,
                &threads,
                args.repetitions,
                &args.llama_bench_arg,
            )?;
            if !args.json {
                for r in &rows {
                    println!(
                        "| {model_name} | {size_gib:.2} GiB | {:.2} M | llama.cpp CPU | {} | {} | {:.2} ± {:.2} |",
                        params as f64 / 1e6,
                        r.threads,
                        r.test,
                        r.tokens_per_second,
                        r.stddev
                    );
                }
            }
            rows
        }
        None => Vec::new(),
    };
    report(&args, &measured, &bandwidths, weight_bytes, &llama_rows);
    Ok(())
}

/// The bandwidth ceiling and the comparison with llama.cpp, after the table.
fn report(
    args: &BenchArgs,
    measured: &[Measured],
    bandwidths: &[(usize, f64)],
    weight_bytes: u64,
    llama_rows: &[llama::LlamaResult],
) {
    let ceiling = |t: usize| bandwidths.iter().find(|b| b.0 == t).map(|b| b.1 / weight_bytes as f64);
    if args.json {
        for &(t, bw) in bandwidths {
            let v = serde_json::json!({"threads": t, "read_bandwidth_bytes_per_second": bw,
                "weight_bytes_per_token": weight_bytes, "decode_ceiling_tokens_per_second": bw / weight_bytes as f64});
            println!("{v}");
        }
    } else if !bandwidths.is_empty() {
        println!();
        for &(t, bw) in bandwidths {
            println!(
                "memory read bandwidth, {t} threads: {:.1} GB/s; {:.1} MiB of weights per token; decode ceiling {:.1} t/s",
                bw / 1e9,
                weight_bytes as f64 / (1 << 20) as f64,
                bw / weight_bytes as f64
            );
        }
    }
    if !args.json && (!bandwidths.is_empty() || !llama_rows.is_empty()) {
        println!();
        println!("| test | threads | hearth t/s | llama.cpp t/s | hearth / llama.cpp | share of ceiling |");
        println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    }
    for m in measured {
        let theirs = llama_rows.iter().find(|r| r.threads == m.threads && r.test == m.test);
        let share = if m.is_prompt { None } else { ceiling(m.threads).map(|c| m.mean / c) };
        if theirs.is_none() && share.is_none() {
            continue;
        }
        if args.json {
            let v = serde_json::json!({"test": m.test, "threads": m.threads, "hearth_tokens_per_second": m.mean,
                "llama_cpp_tokens_per_second": theirs.map(|r| r.tokens_per_second),
                "ratio": theirs.map(|r| m.mean / r.tokens_per_second), "share_of_ceiling": share});
            println!("{v}");
        } else {
            let or_dash = |x: Option<String>| x.unwrap_or_else(|| "-".into());
            println!(
                "| {} | {} | {:.2} | {} | {} | {} |",
                m.test,
                m.threads,
                m.mean,
                or_dash(theirs.map(|r| format!("{:.2}", r.tokens_per_second))),
                or_dash(theirs.map(|r| format!("{:.2}x", m.mean / r.tokens_per_second))),
                or_dash(share.map(|s| format!("{:.0}%", s * 100.0)))
            );
        }
    }
}

/// Tokens per second of one prompt pass of `n` tokens, or of generating `n` tokens one by one,
/// from an empty context with random tokens, as llama-bench measures.
fn time_test(model: &Model, n: usize, is_prompt: bool) -> anyhow::Result<f64> {
    let vocab = model.config().vocab_size as u32;
    let mut rng = StdRng::seed_from_u64(n as u64);
    let mut cache = model.new_cache()?;
    let start = Instant::now();
    if is_prompt {
        let tokens: Vec<u32> = (0..n).map(|_| rng.random_range(0..vocab)).collect();
        // Reading the logits back waits for a GPU to finish the pass.
        logits_vec(&model.forward(&tokens, &mut cache, Logits::Last).context("prompt processing failed")?)?;
    } else {
        let mut token = rng.random_range(0..vocab);
        for _ in 0..n {
            let logits = logits_vec(&model.forward(&[token], &mut cache, Logits::Last)?)?;
            token = hearth_engine::sampler::argmax_logit(&logits);
        }
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

fn mean_sd(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = if xs.len() > 1 { xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0) } else { 0.0 };
    (mean, var.sqrt())
}
