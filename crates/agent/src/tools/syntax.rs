//! Whether a file's text parses, for the kinds of file whose parser is at hand: JSON and TOML in
//! process, Python with the `python3` on PATH (its `compile`, which runs none of the code).
//!
//! Small models break a file's syntax with an edit (a lost colon, a stray comma, a bracket left
//! open) and do not notice, and they cannot find a syntax error by reading: they read the file
//! again and again. So an unattended change that would stop a file from parsing is refused with
//! the parser's message, `read` names the error in a file that does not parse, and a change to
//! such a file says whether it parses now.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{ToolError, cut_line};

/// A language whose syntax can be checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Language {
    /// Strict JSON (no comments).
    Json,
    /// TOML.
    Toml,
    /// Python 3, as the installed `python3` parses it.
    Python,
}

impl Language {
    /// The language of `path`, from its name; `None` for files that are not checked.
    pub(crate) fn of(path: &Path) -> Option<Self> {
        let name = path.file_name()?.to_str()?;
        let extension = name.rsplit_once('.').map(|(_, ext)| ext)?;
        match extension {
            "json" if !allows_comments(path, name) => Some(Language::Json),
            "toml" => Some(Language::Toml),
            "py" | "pyi" => Some(Language::Python),
            _ => None,
        }
    }

    /// Its name, as the model reads it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Language::Json => "JSON",
            Language::Toml => "TOML",
            Language::Python => "Python",
        }
    }
}

/// JSON files that their tools read with comments allowed (JSONC), where a comment is no error.
fn allows_comments(path: &Path, name: &str) -> bool {
    name.starts_with("tsconfig")
        || name.starts_with("jsconfig")
        || name == "devcontainer.json"
        || name == ".devcontainer.json"
        || path.components().any(|part| part.as_os_str() == ".vscode" || part.as_os_str() == ".devcontainer")
}

/// Where and why a text does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyntaxProblem {
    /// The language it was parsed as.
    pub language: Language,
    /// The line (from 1) the parser stopped at; 0 when it gave none.
    pub line: usize,
    /// The parser's message.
    pub message: String,
}

impl std::fmt::Display for SyntaxProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            0 => f.write_str(&self.message),
            line => write!(f, "line {line}: {}", self.message),
        }
    }
}

/// Larger files are not checked: the check runs on every read and change.
const MAX_CHECKED_BYTES: usize = 1024 * 1024;

/// How long the Python parser may take before the check is given up.
const PYTHON_TIMEOUT: Duration = Duration::from_secs(5);

/// Why `text`, as the content of `path`, does not parse; `None` when it parses or cannot be
/// checked (a kind of file with no parser here, no Python installed, a very large file).
pub(crate) fn problem(path: &Path, text: &str) -> Option<SyntaxProblem> {
    if text.len() > MAX_CHECKED_BYTES {
        return None;
    }
    match Language::of(path)? {
        Language::Json => json_problem(text),
        Language::Toml => toml_problem(text),
        Language::Python => python_problem(text),
    }
}

/// What a change from `before` (`None` for a new file) to `after` does to the syntax of `path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SyntaxChange {
    /// Nothing to say: it parses, or it cannot be checked.
    Clean,
    /// It parsed (or is new) and would not parse after the change.
    Breaks(SyntaxProblem),
    /// It did not parse before and still does not.
    StillBroken(SyntaxProblem),
    /// It did not parse before and does after.
    Fixed(Language),
}

impl SyntaxChange {
    /// Works out what changing `path` from `before` to `after` does to its syntax.
    pub(crate) fn of(path: &Path, before: Option<&str>, after: &str) -> Self {
        let broke_before = || before.and_then(|text| problem(path, text)).is_some();
        match problem(path, after) {
            Some(problem) if broke_before() => SyntaxChange::StillBroken(problem),
            Some(problem) => SyntaxChange::Breaks(problem),
            None => match Language::of(path) {
                Some(language) if broke_before() => SyntaxChange::Fixed(language),
                _ => SyntaxChange::Clean,
            },
        }
    }

    /// A sentence for the tool's result about the changed file `shown`, if there is one.
    pub(crate) fn note(&self, shown: &str) -> Option<String> {
        match self {
            SyntaxChange::Clean => None,
            SyntaxChange::Breaks(problem) => {
                Some(format!("{shown} no longer parses as {}: {problem}", problem.language.name()))
            }
            SyntaxChange::StillBroken(problem) => {
                Some(format!("{shown} still does not parse as {}: {problem}", problem.language.name()))
            }
            SyntaxChange::Fixed(language) => Some(format!("{shown} now parses as {}.", language.name())),
        }
    }
}

/// Longest line quoted in a refusal.
const QUOTED_LINE_CHARS: usize = 200;

/// The refusal of an unattended `tool` call whose new text (argument `field`) would make `after`,
/// the content of `shown`, fail to parse with `problem`.
pub(crate) fn refusal(
    tool: &'static str,
    field: &'static str,
    shown: String,
    after: &str,
    problem: &SyntaxProblem,
) -> ToolError {
    let quote = quoted_line(after, problem.line)
        .map(|line| format!("; that line would read `{}`", cut_line(line, QUOTED_LINE_CHARS)))
        .unwrap_or_default();
    ToolError::BreaksSyntax {
        tool,
        path: shown,
        language: problem.language.name(),
        problem: format!("{problem}{quote}"),
        field,
    }
}

/// The line `line` (from 1) of `text`, trimmed, for quoting in a message.
pub(crate) fn quoted_line(text: &str, line: usize) -> Option<&str> {
    text.lines().nth(line.checked_sub(1)?).map(str::trim).filter(|l| !l.is_empty())
}

fn json_problem(text: &str) -> Option<SyntaxProblem> {
    let err = serde_json::from_str::<serde_json::Value>(text).err()?;
    let full = err.to_string();
    // serde_json ends its message with the position, which is given separately.
    let message = full.rsplit_once(" at line ").map_or(full.as_str(), |(message, _)| message);
    Some(SyntaxProblem { language: Language::Json, line: err.line(), message: message.to_string() })
}

fn toml_problem(text: &str) -> Option<SyntaxProblem> {
    let err = toml::from_str::<toml::Table>(text).err()?;
    let line = err.span().and_then(|span| text.get(..span.start)).map_or(0, |head| head.matches('\n').count() + 1);
    Some(SyntaxProblem { language: Language::Toml, line, message: err.message().trim().to_string() })
}

/// Compiles stdin without running it and prints `line<TAB>message` for a syntax error, nothing
/// when it parses. Warnings are silenced: they do not stop a file from running.
const PYTHON_CHECK: &str = "\
import sys, warnings
warnings.simplefilter('ignore')
source = sys.stdin.buffer.read()
try:
    compile(source, 'file', 'exec', dont_inherit=True)
except SyntaxError as err:
    sys.stdout.write('%d\\t%s' % (err.lineno or 0, err.msg))
except ValueError as err:
    sys.stdout.write('0\\t%s' % err)
";

#[cfg(windows)]
const PYTHON: &str = "python";
#[cfg(not(windows))]
const PYTHON: &str = "python3";

fn python_problem(text: &str) -> Option<SyntaxProblem> {
    // -I: no environment variables, user site or current directory on the path; -S: no site
    // import, which halves the start-up time.
    let mut child = Command::new(PYTHON)
        .args(["-I", "-S", "-c", PYTHON_CHECK])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let mut stdin = child.stdin.take()?;
    let exited = std::thread::scope(|scope| {
        // Fed from another thread so that a parser that hangs before reading is still timed out
        // (killing it ends the write with a broken pipe).
        scope.spawn(move || stdin.write_all(text.as_bytes()));
        let deadline = Instant::now() + PYTHON_TIMEOUT;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return status.success(),
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(2)),
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return false;
                }
            }
        }
    });
    if !exited {
        return None;
    }
    let mut out = String::new();
    child.stdout.take()?.read_to_string(&mut out).ok()?;
    let (line, message) = out.split_once('\t')?;
    Some(SyntaxProblem { language: Language::Python, line: line.parse().unwrap_or(0), message: message.to_string() })
}

#[cfg(test)]
mod tests;
