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

/// Resolves `spec` (id, name or path; pulled on first use) and loads it on the CPU.
pub fn load_model(spec: &str) -> anyhow::Result<LoadedModel> {
    let resolved = hearth_hub::resolve(spec, &ResolveOptions::default())?;
    let start = Instant::now();
    let gguf = GgufFile::open(&resolved.path)?;
    let model = Model::load(&gguf, &candle_core::Device::Cpu)
        .with_context(|| format!("cannot load model {}", resolved.path.display()))?;
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

/// Threads used when none are asked for: every core this process may run on.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// A `-t/--threads` value.
pub struct ThreadsArg(pub Option<usize>);

impl ThreadsArg {
    /// A rayon pool of the asked-for size, for the kernels to run in.
    pub fn pool(&self) -> anyhow::Result<rayon::ThreadPool> {
        let n = self.0.unwrap_or_else(default_threads);
        anyhow::ensure!(n > 0, "--threads must be at least 1");
        rayon::ThreadPoolBuilder::new().num_threads(n).build().context("cannot start the thread pool")
    }
}
