//! What several subcommands share: finding and loading a model, sizing the thread pool.

use std::time::Instant;

use anyhow::Context as _;
use hearth_engine::Model;
use hearth_engine::gguf::GgufFile;
use hearth_hub::{Manifest, ResolveOptions};

/// A model loaded for use.
pub struct LoadedModel {
    pub gguf: GgufFile,
    pub model: Model,
    pub manifest: Option<Manifest>,
    /// The registry id, or the file name for a local path.
    pub display_name: String,
    pub load_seconds: f64,
}

/// Resolves `spec` (id, name or path; pulled on first use) and loads it on `device`.
pub fn load_model(spec: &str, device: DeviceArg) -> anyhow::Result<LoadedModel> {
    let resolved = hearth_hub::resolve(spec, &ResolveOptions::default())?;
    let device = device.open()?;
    let start = Instant::now();
    let gguf = GgufFile::open(&resolved.path)?;
    let model =
        Model::load(&gguf, &device).with_context(|| format!("cannot load model {}", resolved.path.display()))?;
    let display_name = match &resolved.manifest {
        Some(m) => m.id.clone(),
        None => resolved.path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default(),
    };
    Ok(LoadedModel {
        gguf,
        model,
        manifest: resolved.manifest,
        display_name,
        load_seconds: start.elapsed().as_secs_f64(),
    })
}

/// A `--device` value: where the model runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceArg {
    /// The CPU, with the kernels picked for it at run time.
    #[default]
    Cpu,
    /// CUDA device number `n` (builds with the `cuda` feature).
    Cuda(usize),
    /// Metal device number `n` (macOS builds with the `metal` feature).
    Metal(usize),
}

impl std::str::FromStr for DeviceArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let numbered = |prefix: &str| s.strip_prefix(prefix).and_then(|n| n.parse().ok());
        match s {
            "cpu" => Ok(Self::Cpu),
            "cuda" => Ok(Self::Cuda(0)),
            "metal" => Ok(Self::Metal(0)),
            _ => numbered("cuda:")
                .map(Self::Cuda)
                .or_else(|| numbered("metal:").map(Self::Metal))
                .ok_or_else(|| format!("unknown device {s:?}: use cpu, cuda, cuda:N, metal or metal:N")),
        }
    }
}

impl std::fmt::Display for DeviceArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Cpu => write!(f, "cpu"),
            Self::Cuda(n) => write!(f, "cuda:{n}"),
            Self::Metal(n) => write!(f, "metal:{n}"),
        }
    }
}

impl DeviceArg {
    /// Opens the device; CUDA needs a build with the `cuda` feature and a GPU with its driver,
    /// Metal a macOS build with the `metal` feature.
    pub fn open(self) -> anyhow::Result<candle_core::Device> {
        match self {
            Self::Cpu => Ok(candle_core::Device::Cpu),
            #[cfg(feature = "cuda")]
            Self::Cuda(n) => candle_core::Device::new_cuda(n).with_context(|| format!("cannot open CUDA device {n}")),
            #[cfg(not(feature = "cuda"))]
            Self::Cuda(_) => anyhow::bail!(
                "--device {self}: this hearth was built without CUDA (build it with `cargo build --release --features cuda`)"
            ),
            #[cfg(feature = "metal")]
            Self::Metal(n) => {
                candle_core::Device::new_metal(n).with_context(|| format!("cannot open Metal device {n}"))
            }
            #[cfg(not(feature = "metal"))]
            Self::Metal(_) => anyhow::bail!(
                "--device {self}: this hearth was built without Metal (on macOS, build it with `cargo build --release --features metal`)"
            ),
        }
    }
}

/// The model of `serve` and `bench`: given as the argument, or with `-m`/`--model` as llama.cpp's
/// `llama-server` and `llama-bench` take it.
#[derive(Debug, clap::Args)]
pub struct ModelArg {
    /// Model id (see `hearth list`) or path to a .gguf file; pulled on first use.
    #[arg(value_name = "MODEL", required_unless_present = "model_flag", conflicts_with = "model_flag")]
    positional: Option<String>,
    /// The model, as llama.cpp's tools take it (`-m FILE.gguf`), instead of MODEL.
    #[arg(short = 'm', long = "model", id = "model_flag", value_name = "MODEL")]
    flag: Option<String>,
}

impl ModelArg {
    /// The model as given, whichever way.
    pub fn spec(&self) -> &str {
        self.positional.as_deref().or(self.flag.as_deref()).unwrap_or_default()
    }
}

/// Threads used when none are asked for: every core this process may run on.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// Refuses a thread count of 0 and warns about one above the cores this process may use: the
/// kernels split each product evenly across threads and wait for the slowest, so threads that
/// share a core slow every token down (300 threads on 2 cores decode 6 times slower).
pub fn check_threads(n: usize) -> anyhow::Result<()> {
    anyhow::ensure!(n > 0, "--threads must be at least 1");
    if let Some(warning) = oversubscription(n, default_threads()) {
        eprintln!("warning: {warning}");
    }
    Ok(())
}

fn oversubscription(threads: usize, cores: usize) -> Option<String> {
    (threads > cores).then(|| {
        format!(
            "--threads {threads} is more than the {cores} core{} this process can use; the extra threads wait on \
             each other and make generation slower",
            if cores == 1 { "" } else { "s" }
        )
    })
}

/// A `-t/--threads` value.
pub struct ThreadsArg(pub Option<usize>);

impl ThreadsArg {
    /// A rayon pool of the asked-for size, for the kernels to run in.
    pub fn pool(&self) -> anyhow::Result<rayon::ThreadPool> {
        let n = self.0.unwrap_or_else(default_threads);
        check_threads(n)?;
        rayon::ThreadPoolBuilder::new().num_threads(n).build().context("cannot start the thread pool")
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::{DeviceArg, ModelArg, oversubscription};

    #[derive(Debug, Parser)]
    struct WithModel {
        #[command(flatten)]
        model: ModelArg,
    }

    #[test]
    fn the_model_is_taken_as_the_argument_or_with_dash_m() {
        for args in [&["t", "qwen"][..], &["t", "-m", "qwen"], &["t", "--model", "qwen"], &["t", "--model=qwen"]] {
            let parsed = WithModel::try_parse_from(args).expect("parses");
            assert_eq!(parsed.model.spec(), "qwen", "{args:?}");
        }
        assert!(WithModel::try_parse_from(["t"]).is_err(), "no model at all");
        assert!(WithModel::try_parse_from(["t", "a", "-m", "b"]).is_err(), "two models");
    }

    #[test]
    fn device_names_parse_and_print_back() {
        for (text, device) in [
            ("cpu", DeviceArg::Cpu),
            ("cuda", DeviceArg::Cuda(0)),
            ("cuda:3", DeviceArg::Cuda(3)),
            ("metal", DeviceArg::Metal(0)),
            ("metal:1", DeviceArg::Metal(1)),
        ] {
            assert_eq!(text.parse::<DeviceArg>(), Ok(device), "{text}");
        }
        assert_eq!(DeviceArg::Cuda(3).to_string(), "cuda:3");
        assert_eq!(DeviceArg::Metal(1).to_string(), "metal:1");
        for bad in ["gpu", "cuda:", "cuda:x", "metal:", "mps", ""] {
            let err = bad.parse::<DeviceArg>().expect_err(bad);
            assert!(err.contains("cpu, cuda, cuda:N, metal or metal:N"), "{err}");
        }
    }

    #[cfg(not(feature = "metal"))]
    #[test]
    fn metal_in_a_build_without_it_is_an_error_naming_the_feature() {
        let err = DeviceArg::Metal(0).open().expect_err("no Metal in this build").to_string();
        assert!(err.contains("--features metal"), "{err}");
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_in_a_build_without_it_is_an_error_naming_the_feature() {
        let err = DeviceArg::Cuda(0).open().expect_err("no CUDA in this build").to_string();
        assert!(err.contains("--features cuda"), "{err}");
    }

    #[test]
    fn more_threads_than_cores_is_warned_about() {
        assert_eq!(oversubscription(2, 2), None);
        assert_eq!(oversubscription(1, 16), None);
        let warning = oversubscription(999, 2).unwrap_or_default();
        assert!(warning.starts_with("--threads 999 is more than the 2 cores"), "{warning}");
        assert!(oversubscription(2, 1).unwrap_or_default().contains("the 1 core this"));
    }
}
