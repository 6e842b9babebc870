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
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil-from-days (Howard Hinnant's algorithm) for the proleptic Gregorian calendar.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}", rem / 3600, rem % 3600 / 60)
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
