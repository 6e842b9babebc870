//! `hearth list`.

use std::io::Write;

use anyhow::Context;
use hearth_hub::{Cache, CacheStatus, Registry};

/// Arguments of `hearth list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {}

/// Runs `hearth list`: a table of the known models and whether each is downloaded.
pub fn run(_args: ListArgs) -> anyhow::Result<()> {
    let registry = Registry::builtin()?;
    let cache = Cache::from_env()?;
    let default_id = registry.default_model().id.clone();

    let mut rows = vec![[
        String::new(),
        "ID".to_string(),
        "NAME".to_string(),
        "ARCH".to_string(),
        "QUANT".to_string(),
        "SIZE".to_string(),
        "STATUS".to_string(),
        "PATH".to_string(),
    ]];
    for manifest in registry.iter() {
        let (status, path) = match cache.status(manifest) {
            CacheStatus::Verified => ("cached", cache.model_path(manifest).display().to_string()),
            // Present but not yet checked: it is hashed the first time it is used.
            CacheStatus::Unverified => ("unverified", cache.model_path(manifest).display().to_string()),
            CacheStatus::Missing => ("not cached", "-".to_string()),
        };
        let marker = if manifest.id == default_id { "*" } else { "" };
        rows.push([
            marker.to_string(),
            manifest.id.clone(),
            manifest.name.clone(),
            manifest.architecture.clone(),
            manifest.quantization.clone(),
            human_size(manifest.size),
            status.to_string(),
            path,
        ]);
    }

    let mut widths = [0usize; 8];
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut stdout = std::io::stdout().lock();
    for row in &rows {
        let mut line = String::new();
        for (column, (cell, width)) in row.iter().zip(widths).enumerate() {
            if column + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}  "));
            }
        }
        writeln!(stdout, "{}", line.trim_end()).context("cannot write to stdout")?;
    }
    writeln!(stdout, "\n* default model. Cache: {}", cache.root().display()).context("cannot write to stdout")?;
    Ok(())
}

/// A size in decimal units, as download sizes are usually given.
fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "kB", "MB", "GB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}

#[cfg(test)]
mod tests {
    use super::human_size;

    #[test]
    fn sizes_read_like_download_sizes() {
        assert_eq!(human_size(512), "512 B");
        assert_eq!(human_size(98_362_432), "98.4 MB");
        assert_eq!(human_size(1_117_320_768), "1.1 GB");
    }
}
