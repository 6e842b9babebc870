//! `grep`: search file contents with a regular expression, honouring `.gitignore`.

use std::io;
use std::path::Path;

use grep_regex::{RegexMatcher, RegexMatcherBuilder};
use grep_searcher::{BinaryDetection, Searcher, SearcherBuilder, Sink, SinkContext, SinkMatch};
use serde::Deserialize;
use serde_json::{Value, json};

use super::read::ReadTool;
use super::walk::{PathGlob, files_under};
use super::{Tool, ToolContext, ToolError, ToolLimits, ToolOutput, blocking, cut_line, parse_args};
use crate::permissions::{ActionRequest, Effect};
use crate::workspace::Workspace;

/// Largest file whose whole text a search of it alone shows when nothing matches.
const SHOWN_WHEN_NO_MATCH_BYTES: u64 = 4096;

/// The `grep` tool.
#[derive(Debug, Clone, Copy, Default)]
pub struct GrepTool;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum OutputMode {
    #[default]
    Content,
    FilesWithMatches,
    Count,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GrepArgs {
    pattern: String,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    glob: Option<String>,
    #[serde(default)]
    case_insensitive: bool,
    #[serde(default)]
    context: Option<usize>,
    #[serde(default)]
    output_mode: OutputMode,
}

#[async_trait::async_trait]
impl Tool for GrepTool {
    fn name(&self) -> &'static str {
        "grep"
    }

    fn description(&self) -> &'static str {
        "Search file contents with a regular expression (Rust regex syntax), skipping files ignored by .gitignore \
         and binary files. Prints path:line:text for each matching line."
    }

    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "pattern": {"type": "string", "minLength": 1, "description": "Regular expression to search for"},
                "path": {"type": "string", "minLength": 1, "description": "File or directory to search, relative to the workspace root (default: the root)"},
                "glob": {"type": "string", "description": "Only search files matching this glob, e.g. \"*.rs\""},
                "case_insensitive": {"type": "boolean", "description": "Ignore case (default false)"},
                "context": {"type": "integer", "minimum": 0, "maximum": 10, "description": "Lines of context around each match"},
                "output_mode": {
                    "type": "string",
                    "enum": ["content", "files_with_matches", "count"],
                    "description": "content (default): matching lines; files_with_matches: paths only; count: matches per file"
                }
            },
            "required": ["pattern"],
            "additionalProperties": false
        })
    }

    fn effect(&self) -> Effect {
        Effect::ReadOnly
    }

    fn describe(&self, args: &Value, _ctx: &ToolContext) -> Result<ActionRequest, ToolError> {
        let args: GrepArgs = parse_args(self.name(), args)?;
        Ok(ActionRequest {
            tool: self.name().into(),
            effect: self.effect(),
            summary: format!("grep '{}' in {}", args.pattern, args.path.as_deref().unwrap_or(".")),
            command: None,
            preview: None,
        })
    }

    async fn run(&self, args: Value, ctx: &ToolContext) -> Result<ToolOutput, ToolError> {
        let args: GrepArgs = parse_args(self.name(), &args)?;
        let base = ctx.workspace.resolve(args.path.as_deref().filter(|p| !p.trim().is_empty()).unwrap_or("."))?;
        if !base.exists() {
            return Err(ToolError::NotFound(args.path.unwrap_or_else(|| ".".into())));
        }
        let matcher = RegexMatcherBuilder::new()
            .case_insensitive(args.case_insensitive)
            .build(&args.pattern)
            .map_err(|err| ToolError::Pattern { pattern: args.pattern.clone(), message: err.to_string() })?;
        // Models fill every optional field: an empty glob means no filter, not "match nothing".
        let filter = args.glob.as_deref().filter(|g| !g.trim().is_empty()).map(PathGlob::new).transpose()?;
        let workspace = ctx.workspace.clone();
        let limits = ctx.limits.clone();
        let root = workspace.root().to_path_buf();
        let searched = args.path.clone().filter(|_| base != root);
        let part = searched.is_some();
        let short_file = base.is_file() && std::fs::metadata(&base).is_ok_and(|m| m.len() <= SHOWN_WHEN_NO_MATCH_BYTES);
        let (mut out, matches, elsewhere) = blocking(move || {
            let (out, matches) = search(&workspace, &base, &matcher, filter.as_ref(), &args, &limits)?;
            // Small models search one file picked from the listing, find nothing and give up or
            // repeat: a search of part of the workspace that finds nothing looks at the rest.
            let elsewhere = if matches == 0 && part {
                let (wide, found) = search(&workspace, &root, &matcher, filter.as_ref(), &args, &limits)?;
                (found > 0).then_some(wide.text)
            } else {
                None
            };
            Ok::<_, ToolError>((out, matches, elsewhere))
        })
        .await?;
        if let (Some(path), true) = (searched, matches == 0) {
            if let Some(wide) = elsewhere {
                out.text = format!("No matches in {path}; elsewhere in the workspace:\n{wide}");
            } else if short_file && let Ok(file) = ReadTool.run(json!({ "path": path }), ctx).await {
                // A search of one short file that finds nothing shows the file: small models
                // otherwise repeat the search with the task's words instead of reading it.
                // The pattern is not echoed and no advice to search again: shown "No matches for
                // 'server\.listen\((\d+)\)'" above the file, a 1.5B model answered from the
                // pattern it had guessed (port 8080) rather than from the file (8731).
                out.text = format!(
                    "No line of {path} matches that pattern. {path} is short, so here it is in full:\n{}",
                    file.text
                );
            }
        }
        Ok(out)
    }
}

fn search(
    workspace: &Workspace,
    base: &Path,
    matcher: &RegexMatcher,
    filter: Option<&PathGlob>,
    args: &GrepArgs,
    limits: &ToolLimits,
) -> Result<(ToolOutput, usize), ToolError> {
    let context = if args.output_mode == OutputMode::Content { args.context.unwrap_or(0).min(10) } else { 0 };
    let mut searcher = SearcherBuilder::new()
        .line_number(true)
        .binary_detection(BinaryDetection::quit(0))
        .before_context(context)
        .after_context(context)
        .build();
    let mut report = Report::new(limits, args.output_mode);
    let files: Box<dyn Iterator<Item = std::path::PathBuf>> =
        if base.is_file() { Box::new(std::iter::once(base.to_path_buf())) } else { Box::new(files_under(base)) };
    for path in files {
        if let Some(filter) = filter {
            let relative = path.strip_prefix(base).unwrap_or(&path);
            let relative = if relative.as_os_str().is_empty() { path.as_path() } else { relative };
            if !filter.is_match(relative) {
                continue;
            }
        }
        let shown = workspace.display_path(&path);
        let mut sink = FileSink { shown: &shown, report: &mut report, matches: 0, first_group: true };
        // Unreadable files (permissions, races with deletion) are skipped like ripgrep does.
        if searcher.search_path(matcher, &path, &mut sink).is_err() {
            continue;
        }
        let matches = sink.matches;
        report.finish_file(&shown, matches);
    }
    let matches = report.total_matches;
    Ok((ToolOutput::text(report.render(&args.pattern)), matches))
}

/// Collects output lines under the line and byte caps, counting what did not fit.
struct Report {
    mode: OutputMode,
    max_lines: usize,
    max_bytes: usize,
    max_line_chars: usize,
    text: String,
    lines: usize,
    total_matches: usize,
    files_matched: usize,
    omitted: usize,
}

impl Report {
    fn new(limits: &ToolLimits, mode: OutputMode) -> Self {
        Self {
            mode,
            max_lines: limits.grep_max_lines,
            max_bytes: limits.grep_max_bytes,
            max_line_chars: limits.max_line_chars,
            text: String::new(),
            lines: 0,
            total_matches: 0,
            files_matched: 0,
            omitted: 0,
        }
    }

    fn push(&mut self, line: String) {
        if self.lines >= self.max_lines || self.text.len() + line.len() + 1 > self.max_bytes {
            self.omitted += 1;
            return;
        }
        self.text.push_str(&line);
        self.text.push('\n');
        self.lines += 1;
    }

    fn finish_file(&mut self, shown: &str, matches: usize) {
        if matches == 0 {
            return;
        }
        self.files_matched += 1;
        self.total_matches += matches;
        match self.mode {
            OutputMode::Content => {}
            OutputMode::FilesWithMatches => self.push(shown.to_string()),
            OutputMode::Count => self.push(format!("{shown}:{matches}")),
        }
    }

    fn render(mut self, pattern: &str) -> String {
        if self.total_matches == 0 {
            // Small models search for a phrase from the task ("listen on port") and then repeat it.
            return format!(
                "No matches for '{pattern}'. Try a shorter pattern (one word or name from the code), or read the \
                 file you expect it in"
            );
        }
        if self.omitted > 0 {
            self.text.push_str(&format!(
                "[output cut: {} more lines not shown; {} matching lines in {} files in all. Narrow the pattern, path or glob]\n",
                self.omitted, self.total_matches, self.files_matched
            ));
        }
        self.text
    }
}

struct FileSink<'a> {
    shown: &'a str,
    report: &'a mut Report,
    matches: usize,
    first_group: bool,
}

impl FileSink<'_> {
    fn line(&mut self, number: Option<u64>, separator: char, bytes: &[u8]) {
        let text = String::from_utf8_lossy(bytes);
        let text = cut_line(text.trim_end_matches(['\n', '\r']), self.report.max_line_chars);
        self.report.push(format!("{}{separator}{}{separator}{text}", self.shown, number.unwrap_or(0)));
    }
}

impl Sink for FileSink<'_> {
    type Error = io::Error;

    fn matched(&mut self, _searcher: &Searcher, found: &SinkMatch<'_>) -> Result<bool, io::Error> {
        self.matches += 1;
        if self.report.mode == OutputMode::Content {
            self.first_group = false;
            self.line(found.line_number(), ':', found.bytes());
        }
        // Files and counts need only the count; stopping early on `files_with_matches` saves a scan.
        Ok(self.report.mode != OutputMode::FilesWithMatches)
    }

    fn context(&mut self, _searcher: &Searcher, context: &SinkContext<'_>) -> Result<bool, io::Error> {
        self.first_group = false;
        self.line(context.line_number(), '-', context.bytes());
        Ok(true)
    }

    fn context_break(&mut self, _searcher: &Searcher) -> Result<bool, io::Error> {
        if !self.first_group {
            self.report.push("--".to_string());
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests;
