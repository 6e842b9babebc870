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
    #[command(flatten)]
    pub model: common::ModelArg,
    /// Prompt lengths to test (comma-separated), like llama-bench's -p; 0 skips.
    #[arg(short = 'p', long = "n-prompt", value_delimiter = ',', default_value = "512")]
    pub n_prompt: Vec<usize>,
    /// Generation lengths to test (comma-separated), like llama-bench's -n; 0 skips.
    #[arg(short = 'n', long = "n-gen", value_delimiter = ',', default_value = "128")]
    pub n_gen: Vec<usize>,
    /// Context depths to test at (comma-separated), like llama-bench's -d: each test runs after
    /// this many tokens already in the KV cache (filled untimed), as an agent's later turns do.
    #[arg(short = 'd', long = "n-depth", value_delimiter = ',', default_value = "0")]
    pub n_depth: Vec<usize>,
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
    /// An extra argument for llama-bench (repeatable), e.g. `--llama-bench-arg=--repack --llama-bench-arg=0`.
    #[arg(long, value_name = "ARG", allow_hyphen_values = true)]
    pub llama_bench_arg: Vec<String>,
    /// Skip measuring the memory bandwidth.
    #[arg(long)]
    pub no_bandwidth: bool,
}

/// One test: a prompt pass of `n` tokens (`ppN`) or `n` tokens generated one by one (`tgN`),
/// after `depth` tokens already cached (`ppN @ dD`, as llama-bench names it).
#[derive(Debug, Clone, Copy)]
struct Test {
    n: usize,
    is_prompt: bool,
    depth: usize,
}

impl Test {
    fn name(self) -> String {
        at_depth(if self.is_prompt { format!("pp{}", self.n) } else { format!("tg{}", self.n) }, self.depth)
    }
}

/// A test's name with its depth, as llama-bench writes it (`tg128 @ d4096`; none at depth 0).
fn at_depth(name: String, depth: usize) -> String {
    if depth > 0 { format!("{name} @ d{depth}") } else { name }
}

/// The samples of one test at one thread count.
struct Measured {
    threads: usize,
    test: Test,
    hearth: Vec<f64>,
    /// llama.cpp's samples, taken in turn with hearth's; empty without `--llama-bench`.
    llama: Vec<f64>,
    /// Read bandwidth probed next to each decode sample; empty for prompts or with `--no-bandwidth`.
    bandwidth: Vec<f64>,
}

impl Measured {
    /// hearth's sample over llama.cpp's for each repetition. The two samples of a repetition are
    /// taken one right after the other, so a host whose speed drifts or jumps between states
    /// moves both alike far more often than it moves the means of all samples alike.
    fn paired_ratios(&self) -> Vec<f64> {
        self.hearth.iter().zip(&self.llama).map(|(ours, theirs)| ours / theirs).collect()
    }
}

/// The median of `xs`, none when empty.
fn median(xs: &[f64]) -> Option<f64> {
    let mut sorted = xs.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    match sorted.len() {
        0 => None,
        n if n % 2 == 1 => Some(sorted[mid]),
        _ => Some((sorted[mid - 1] + sorted[mid]) / 2.0),
    }
}

/// Runs `hearth bench`.
pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.repetitions > 0, "--repetitions must be at least 1");
    let threads = if args.threads.is_empty() { vec![common::default_threads()] } else { args.threads.clone() };
    anyhow::ensure!(threads.iter().all(|&t| t > 0), "thread counts must be at least 1");
    anyhow::ensure!(
        args.n_prompt.iter().chain(&args.n_gen).any(|&n| n > 0),
        "nothing to measure: -p and -n are all 0; give a prompt or generation length above 0"
    );
    let loaded = common::load_model(args.model.spec(), args.device)?;
    let model = &loaded.model;
    let label = ModelLabel {
        name: format!("{} {}", model.config().architecture.name(), loaded.display_name),
        size_bytes: loaded.gguf.file_len(),
        params: loaded.gguf.tensors().values().map(|t| t.elem_count()).sum(),
        backend: match args.device {
            common::DeviceArg::Cpu => format!("CPU ({})", hearth_kernels::simd_level()),
            common::DeviceArg::Cuda(n) => format!("CUDA {n}"),
            common::DeviceArg::Metal(n) => format!("Metal {n}"),
        },
    };
    // The read bandwidth measured is the host's, the ceiling of a model on the CPU only.
    let probe = model.device().is_cpu() && !args.no_bandwidth;
    let llama = args.llama_bench.as_deref().map(|path| llama::LlamaBench { path, extra: &args.llama_bench_arg });
    if !args.json {
        println!("| model | size | params | backend | threads | test | t/s |");
        println!("| --- | ---: | ---: | --- | ---: | ---: | ---: |");
    }
    let weight_bytes =
        bandwidth::bytes_per_token(loaded.gguf.tensors().iter().map(|(name, t)| (name.clone(), t.n_bytes as u64)));
    let tests: Vec<Test> = args
        .n_depth
        .iter()
        .flat_map(|&depth| {
            (args.n_prompt.iter().map(move |&n| Test { n, is_prompt: true, depth }))
                .chain(args.n_gen.iter().map(move |&n| Test { n, is_prompt: false, depth }))
        })
        .filter(|t| t.n > 0)
        .collect();
    let context = model.config().context_length;
    if let Some(t) = tests.iter().find(|t| t.depth + t.n > context) {
        anyhow::bail!("{} needs {} positions; the model's context holds {context}", t.name(), t.depth + t.n);
    }
    let mut measured = Vec::new();
    for &t in &threads {
        let pool = ThreadsArg(Some(t)).pool()?;
        for &test in &tests {
            let mut m = Measured { threads: t, test, hearth: Vec::new(), llama: Vec::new(), bandwidth: Vec::new() };
            let llama_sample = |m: &mut Measured| -> anyhow::Result<()> {
                if let Some(llama) = &llama {
                    m.llama.push(llama.sample(loaded.gguf.path(), test, t)?);
                }
                Ok(())
            };
            for rep in 0..args.repetitions {
                // The host's speed drifts within minutes; taking the two engines' samples in turn,
                // each going first every other time, gives both the same conditions.
                let llama_first = rep % 2 == 1;
                if llama_first {
                    llama_sample(&mut m)?;
                }
                pool.install(|| -> anyhow::Result<()> {
                    // The ceiling counts the weights only: past a depth, decode also reads the
                    // cached keys and values, so no share of it is given there.
                    if probe && !test.is_prompt && test.depth == 0 {
                        m.bandwidth.push(
                            bandwidth::read_bandwidth(weight_bytes as usize)
                                .context("allocating the buffer the bandwidth probe streams")?,
                        );
                    }
                    // An untimed pass warms caches and the page cache of the mapped weights.
                    let warm = Test { n: if test.is_prompt { test.n.min(32) } else { 1 }, depth: 0, ..test };
                    time_test(model, warm)?;
                    m.hearth.push(time_test(model, test)?);
                    Ok(())
                })?;
                if !llama_first {
                    llama_sample(&mut m)?;
                }
            }
            label.print_samples(args.json, &m);
            measured.push(m);
        }
    }
    report(&args, &measured, weight_bytes);
    Ok(())
}

/// What the table says about the model and where it ran.
struct ModelLabel {
    name: String,
    size_bytes: usize,
    params: usize,
    backend: String,
}

impl ModelLabel {
    /// The table rows (or JSON object) of one test's samples, hearth's and llama.cpp's.
    fn print_samples(&self, json: bool, m: &Measured) {
        let (mean, sd) = mean_sd(&m.hearth);
        let (name, t) = (m.test.name(), m.threads);
        if json {
            let v = serde_json::json!({
                "model": self.name, "size_bytes": self.size_bytes, "params": self.params,
                "backend": self.backend, "threads": t, "test": name, "tokens_per_second": mean, "stddev": sd,
                "samples": m.hearth,
            });
            println!("{v}");
            return;
        }
        let size_gib = self.size_bytes as f64 / (1u64 << 30) as f64;
        let row = |backend: &str, (mean, sd): (f64, f64)| {
            println!(
                "| {} | {size_gib:.2} GiB | {:.2} M | {backend} | {t} | {name} | {mean:.2} ± {sd:.2} |",
                self.name,
                self.params as f64 / 1e6
            );
        };
        row(&self.backend, (mean, sd));
        if !m.llama.is_empty() {
            row("llama.cpp CPU", mean_sd(&m.llama));
        }
    }
}

/// The bandwidth ceiling and the comparison with llama.cpp, after the table.
fn report(args: &BenchArgs, measured: &[Measured], weight_bytes: u64) {
    let with_bandwidth = measured.iter().filter(|m| !m.bandwidth.is_empty());
    if args.json {
        for m in with_bandwidth {
            let bw = mean_sd(&m.bandwidth).0;
            let v = serde_json::json!({"threads": m.threads, "test": m.test.name(),
                "read_bandwidth_bytes_per_second": bw, "weight_bytes_per_token": weight_bytes,
                "decode_ceiling_tokens_per_second": bw / weight_bytes as f64});
            println!("{v}");
        }
    } else if with_bandwidth.clone().next().is_some() {
        println!();
        for m in with_bandwidth {
            let bw = mean_sd(&m.bandwidth).0;
            println!(
                "memory read bandwidth, {} thread{}, during {}: {:.1} GB/s; {:.1} MiB of weights per token; decode ceiling {:.1} t/s",
                m.threads,
                if m.threads == 1 { "" } else { "s" },
                m.test.name(),
                bw / 1e9,
                weight_bytes as f64 / (1 << 20) as f64,
                bw / weight_bytes as f64
            );
        }
    }
    let compared: Vec<&Measured> = measured.iter().filter(|m| !m.llama.is_empty() || !m.bandwidth.is_empty()).collect();
    if !args.json && !compared.is_empty() {
        println!();
        println!(
            "| test | threads | hearth t/s | llama.cpp t/s | hearth / llama.cpp | paired ratios: median (range) | share of ceiling |"
        );
        println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    }
    for m in compared {
        let ours = mean_sd(&m.hearth).0;
        let theirs = (!m.llama.is_empty()).then(|| mean_sd(&m.llama).0);
        let share = (!m.bandwidth.is_empty()).then(|| ours / (mean_sd(&m.bandwidth).0 / weight_bytes as f64));
        let pairs = m.paired_ratios();
        let paired_median = median(&pairs);
        if args.json {
            let v = serde_json::json!({"test": m.test.name(), "threads": m.threads, "hearth_tokens_per_second": ours,
                "llama_cpp_tokens_per_second": theirs, "llama_cpp_samples": (!m.llama.is_empty()).then_some(&m.llama),
                "ratio": theirs.map(|r| ours / r), "paired_ratios": (!pairs.is_empty()).then_some(&pairs),
                "paired_ratio_median": paired_median, "share_of_ceiling": share});
            println!("{v}");
        } else {
            let or_dash = |x: Option<String>| x.unwrap_or_else(|| "-".into());
            let (low, high) = pairs.iter().fold((f64::INFINITY, 0f64), |(l, h), &r| (l.min(r), h.max(r)));
            println!(
                "| {} | {} | {ours:.2} | {} | {} | {} | {} |",
                m.test.name(),
                m.threads,
                or_dash(theirs.map(|r| format!("{r:.2}"))),
                or_dash(theirs.map(|r| format!("{:.2}x", ours / r))),
                or_dash(paired_median.map(|r| format!("{r:.2}x ({low:.2}x to {high:.2}x)"))),
                or_dash(share.map(|s| format!("{:.0}%", s * 100.0)))
            );
        }
    }
}

/// Tokens per second of one prompt pass of `test.n` tokens, or of generating `test.n` tokens one
/// by one, with random tokens after `test.depth` random tokens cached untimed, as llama-bench
/// measures.
fn time_test(model: &Model, test: Test) -> anyhow::Result<f64> {
    let Test { n, is_prompt, depth } = test;
    let vocab = model.config().vocab_size as u32;
    let mut rng = StdRng::seed_from_u64(n as u64);
    let mut cache = model.new_cache()?;
    if depth > 0 {
        let tokens: Vec<u32> = (0..depth).map(|_| rng.random_range(0..vocab)).collect();
        logits_vec(&model.forward(&tokens, &mut cache, Logits::Last).context("filling the context failed")?)?;
    }
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

#[cfg(test)]
mod tests {
    use super::{Measured, Test, median};

    #[test]
    fn median_of_odd_even_and_no_samples() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn ratios_pair_the_samples_of_each_repetition() {
        let m = Measured {
            threads: 2,
            test: Test { n: 128, is_prompt: false, depth: 0 },
            hearth: vec![30.0, 45.0, 33.0],
            llama: vec![25.0, 30.0, 33.0],
            bandwidth: Vec::new(),
        };
        assert_eq!(m.paired_ratios(), vec![1.2, 1.5, 1.0]);
        // Without llama.cpp's samples there is nothing to pair.
        assert!(Measured { llama: Vec::new(), ..m }.paired_ratios().is_empty());
    }
}
