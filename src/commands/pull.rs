//! `hearth pull`.

use std::io::Write;

use anyhow::Context;
use hearth_hub::{Cache, Registry};

/// Arguments of `hearth pull`.
#[derive(Debug, clap::Args)]
pub struct PullArgs {
    /// Models to download, by id or name (see `hearth list`); the default model if none.
    pub models: Vec<String>,

    /// Show no progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Runs `hearth pull`: downloads each model into the cache and prints its path on stdout.
pub fn run(args: PullArgs) -> anyhow::Result<()> {
    let registry = Registry::builtin()?;
    let cache = Cache::from_env()?;
    let manifests = if args.models.is_empty() {
        vec![registry.default_model()]
    } else {
        args.models.iter().map(|spec| registry.lookup(spec)).collect::<Result<Vec<_>, _>>()?
    };
    let mut stdout = std::io::stdout().lock();
    for manifest in manifests {
        let path = hearth_hub::pull(manifest, &cache, !args.quiet)?;
        writeln!(stdout, "{}", path.display()).context("cannot write to stdout")?;
    }
    Ok(())
}
