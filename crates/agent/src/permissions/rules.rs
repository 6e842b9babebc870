//! Allow and deny rules for shell commands.
//!
//! A rule is a prefix (`cargo test` matches `cargo test` and `cargo test -p x`, not
//! `cargo tests`) or, when it has `*`, `?` or `[`, a glob over the whole command (`git diff*`).
//! A command line is split on `;`, `&&`, `||`, `|`, `&`, newlines, parentheses and command
//! substitutions, and each part is matched on its own: a deny rule refuses the line if it matches
//! any part; allow rules pass the line only if every part matches one and nothing in the line can
//! run hidden code or write through a redirection. Matching ignores leading `VAR=value`
//! assignments, wrappers like `sudo` and `env`, and the directory of the program
//! (`/bin/rm` is `rm`). This is text matching, not a parser of every shell: the sandbox, not the
//! rules, is what confines a command.

use globset::{GlobBuilder, GlobMatcher};

/// A rule that could not be parsed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("invalid command rule '{rule}': {reason}")]
pub struct RuleError {
    /// The rule as written.
    pub rule: String,
    /// What is wrong with it.
    pub reason: String,
}

#[derive(Debug, Clone)]
enum Pattern {
    Prefix(String),
    Glob(GlobMatcher),
}

#[derive(Debug, Clone)]
struct Rule {
    text: String,
    pattern: Pattern,
}

impl Rule {
    fn parse(text: &str) -> Result<Self, RuleError> {
        let normalized = normalize_words(&text.split_whitespace().map(str::to_string).collect::<Vec<_>>());
        if normalized.is_empty() {
            return Err(RuleError { rule: text.to_string(), reason: "the rule is empty".into() });
        }
        let pattern = if normalized.contains(['*', '?', '[']) {
            let glob = GlobBuilder::new(&normalized)
                .literal_separator(false)
                .build()
                .map_err(|err| RuleError { rule: text.to_string(), reason: err.to_string() })?;
            Pattern::Glob(glob.compile_matcher())
        } else {
            Pattern::Prefix(normalized)
        };
        Ok(Self { text: text.trim().to_string(), pattern })
    }

    fn matches(&self, part: &str) -> bool {
        match &self.pattern {
            Pattern::Prefix(prefix) => {
                part == prefix || (part.starts_with(prefix.as_str()) && part[prefix.len()..].starts_with(' '))
            }
            Pattern::Glob(glob) => glob.is_match(part),
        }
    }
}

/// The allow and deny rules for commands.
#[derive(Debug, Clone, Default)]
pub struct CommandRules {
    allow: Vec<Rule>,
    deny: Vec<Rule>,
}

impl CommandRules {
    /// Rules from the patterns in `allow` and `deny`.
    pub fn new<A: AsRef<str>, D: AsRef<str>>(allow: &[A], deny: &[D]) -> Result<Self, RuleError> {
        Ok(Self {
            allow: allow.iter().map(|r| Rule::parse(r.as_ref())).collect::<Result<_, _>>()?,
            deny: deny.iter().map(|r| Rule::parse(r.as_ref())).collect::<Result<_, _>>()?,
        })
    }

    /// The first deny rule that matches any part of `command`.
    pub fn denying_rule(&self, command: &str) -> Option<&str> {
        let parsed = ParsedCommand::parse(command);
        let whole = normalize_words(&command.split_whitespace().map(str::to_string).collect::<Vec<_>>());
        self.deny
            .iter()
            .find(|rule| rule.matches(&whole) || parsed.parts.iter().any(|part| rule.matches(part)))
            .map(|rule| rule.text.as_str())
    }

    /// Whether allow rules pass `command` without asking: every part matches a rule and the line
    /// has no command substitution, subshell or redirection into a file.
    pub fn allows(&self, command: &str) -> bool {
        let parsed = ParsedCommand::parse(command);
        !parsed.hides_code
            && !parsed.writes_file
            && !parsed.parts.is_empty()
            && parsed.parts.iter().all(|part| self.allow.iter().any(|rule| rule.matches(part)))
    }
}

/// A command line split into the simple commands it runs.
#[derive(Debug, Default, PartialEq, Eq)]
struct ParsedCommand {
    parts: Vec<String>,
    hides_code: bool,
    writes_file: bool,
}

impl ParsedCommand {
    fn parse(command: &str) -> Self {
        let mut parsed = ParsedCommand::default();
        let mut words: Vec<String> = Vec::new();
        let mut word = String::new();
        let mut in_word = false;
        let mut chars = command.chars().peekable();
        let mut quote: Option<char> = None;
        while let Some(c) = chars.next() {
            match quote {
                Some('\'') => {
                    if c == '\'' {
                        quote = None;
                    } else {
                        word.push(c);
                    }
                    continue;
                }
                Some(_) => {
                    match c {
                        '"' => quote = None,
                        '\\' => {
                            if let Some(next) = chars.next() {
                                word.push(next);
                            }
                        }
                        '`' => parsed.hides_code = true,
                        '$' if chars.peek() == Some(&'(') => parsed.hides_code = true,
                        _ => word.push(c),
                    }
                    continue;
                }
                None => {}
            }
            match c {
                '\'' | '"' => {
                    quote = Some(c);
                    in_word = true;
                }
                '\\' => {
                    if let Some(next) = chars.next() {
                        word.push(next);
                        in_word = true;
                    }
                }
                ';' | '&' | '|' | '\n' | '(' | ')' | '`' | '{' | '}' => {
                    if matches!(c, '(' | ')' | '`' | '{' | '}') {
                        parsed.hides_code = true;
                    }
                    finish_word(&mut words, &mut word, &mut in_word);
                    finish_part(&mut parsed.parts, &mut words);
                }
                '$' if chars.peek() == Some(&'(') => {
                    parsed.hides_code = true;
                    finish_word(&mut words, &mut word, &mut in_word);
                    finish_part(&mut parsed.parts, &mut words);
                }
                '>' => {
                    // A descriptor number written right before `>` is not an argument.
                    if !word.is_empty() && word.chars().all(|c| c.is_ascii_digit()) {
                        word.clear();
                        in_word = false;
                    }
                    finish_word(&mut words, &mut word, &mut in_word);
                    if chars.peek() == Some(&'>') {
                        chars.next();
                    }
                    let duplicates_descriptor = chars.peek() == Some(&'&');
                    if duplicates_descriptor {
                        chars.next();
                    }
                    while chars.peek().is_some_and(|c| c.is_whitespace()) {
                        chars.next();
                    }
                    let mut target = String::new();
                    while let Some(&next) = chars.peek() {
                        if next.is_whitespace() || matches!(next, ';' | '&' | '|' | ')' | '\n') {
                            break;
                        }
                        target.push(next);
                        chars.next();
                    }
                    let to_descriptor = duplicates_descriptor && target.chars().all(|c| c.is_ascii_digit() || c == '-');
                    if !to_descriptor && target != "/dev/null" {
                        parsed.writes_file = true;
                    }
                }
                c if c.is_whitespace() => finish_word(&mut words, &mut word, &mut in_word),
                _ => {
                    word.push(c);
                    in_word = true;
                }
            }
        }
        if quote.is_some() {
            parsed.hides_code = true;
        }
        finish_word(&mut words, &mut word, &mut in_word);
        finish_part(&mut parsed.parts, &mut words);
        parsed
    }
}

fn finish_word(words: &mut Vec<String>, word: &mut String, in_word: &mut bool) {
    if *in_word || !word.is_empty() {
        words.push(std::mem::take(word));
    }
    *in_word = false;
}

fn finish_part(parts: &mut Vec<String>, words: &mut Vec<String>) {
    let part = normalize_words(words);
    words.clear();
    if !part.is_empty() {
        parts.push(part);
    }
}

/// Joins a simple command's words with single spaces, dropping leading assignments and
/// wrappers and the directory of the program.
fn normalize_words(words: &[String]) -> String {
    const WRAPPERS: [&str; 8] = ["sudo", "env", "command", "exec", "nohup", "time", "nice", "builtin"];
    let mut rest = words;
    while let Some((first, tail)) = rest.split_first() {
        let is_assignment =
            first.split_once('=').is_some_and(|(name, _)| !name.is_empty() && name.chars().all(is_name_char));
        if is_assignment || WRAPPERS.contains(&first.as_str()) {
            rest = tail;
        } else {
            break;
        }
    }
    let mut out = String::new();
    for (i, word) in rest.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        if i == 0 {
            out.push_str(word.rsplit('/').next().unwrap_or(word));
        } else {
            out.push_str(word);
        }
    }
    out
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

#[cfg(test)]
mod tests;
