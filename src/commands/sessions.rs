//! `hearth sessions`: the recorded sessions of a workspace, newest first, to pick one to resume.

use std::path::PathBuf;

use anyhow::Context as _;
use hearth_agent::Workspace;
use hearth_agent::session::{default_sessions_dir, list_sessions};

/// Arguments of `hearth sessions`.
#[derive(Debug, clap::Args)]
pub struct SessionsArgs {
    /// The workspace (default: the current directory).
    #[arg(short = 'C', long = "cd")]
    pub workspace: Option<PathBuf>,
    /// Sessions of every workspace.
    #[arg(long)]
    pub all: bool,
}

/// Prints one line per session: id, start time, first message.
pub fn run(args: SessionsArgs) -> anyhow::Result<()> {
    let dir = default_sessions_dir().context("cannot find the session directory (set HOME)")?;
    let root = match &args.workspace {
        Some(dir) => dir.clone(),
        None => std::env::current_dir().context("cannot read the current directory")?,
    };
    let workspace = Workspace::new(&root).with_context(|| format!("cannot use {} as the workspace", root.display()))?;
    let sessions = list_sessions(&dir, (!args.all).then(|| workspace.root()))?;
    if sessions.is_empty() {
        println!("no sessions for {} (in {})", workspace.root().display(), dir.display());
        return Ok(());
    }
    for s in sessions {
        let started = chrono_like(s.started_ms);
        let first: String = s.first_message.unwrap_or_default().chars().take(60).collect();
        let first = first.replace('\n', " ");
        if args.all {
            println!("{}  {started}  {}  {first}", s.id, s.workspace.display());
        } else {
            println!("{}  {started}  {first}", s.id);
        }
    }
    println!("\nresume one with: hearth chat --resume <id>   (or --resume last)");
    Ok(())
}

/// `YYYY-MM-DD HH:MM` (UTC) from milliseconds since the Unix epoch.
fn chrono_like(ms: u64) -> String {
    hearth_engine::chat_template::format_time("%Y-%m-%d %H:%M", ms / 1000).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::chrono_like;

    #[test]
    fn dates_are_utc_calendar_dates() {
        assert_eq!(chrono_like(0), "1970-01-01 00:00");
        assert_eq!(chrono_like(951_782_400_000), "2000-02-29 00:00");
        assert_eq!(chrono_like(1_796_083_200_000 + 3_660_000), "2026-12-01 01:01");
    }
}
