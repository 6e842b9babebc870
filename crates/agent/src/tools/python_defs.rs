//! The top-level definitions of a Python file, and the two mistakes with them that a change
//! makes without breaking the syntax.
//!
//! Small models write a test or a helper as a method, `def test_subtract(self):`, at the top
//! level of a file of plain functions: nothing passes `self`, so a call raises a TypeError and
//! pytest fails the test on a missing fixture named `self`. And a model that repeats its first
//! attempt after fixing it appends a second `def` of the same name, which silently replaces the
//! fixed one. Both files parse and read as done, so the change's result says what is wrong.

use serde_json::json;

use super::syntax::Language;
use super::words::tokens;

/// A `def` or `class` at the top level of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TopLevelDef<'a> {
    /// Its line number, from 1.
    pub(crate) number: usize,
    /// The whole line.
    pub(crate) line: &'a str,
    /// The name it defines.
    pub(crate) name: &'a str,
    /// The line after the `(` that opens the parameters, or `""` for a class without one.
    params: &'a str,
}

/// The top-level `def`, `async def` and `class` lines of `text`.
pub(crate) fn top_level_defs(text: &str) -> impl Iterator<Item = TopLevelDef<'_>> {
    text.lines().enumerate().filter_map(|(i, line)| {
        let rest = line.strip_prefix("async def ").or_else(|| line.strip_prefix("def "));
        let rest = rest.or_else(|| line.strip_prefix("class "))?;
        let end = rest.find(|ch: char| !(ch.is_alphanumeric() || ch == '_')).unwrap_or(rest.len());
        let name = &rest[..end];
        let after_name = rest[end..].trim_start();
        let params = after_name.strip_prefix('(').unwrap_or("");
        (!name.is_empty()).then_some(TopLevelDef { number: i + 1, line, name, params })
    })
}

/// Whether `path` is a Python file.
pub(crate) fn is_python(path: &str) -> bool {
    Language::of(std::path::Path::new(path)) == Some(Language::Python)
}

/// Notes on what a change of the Python file `shown` from `before` to `after` got wrong in its
/// top-level definitions, or `None` when there is nothing to say (or the file is not Python).
pub(crate) fn definition_notes(shown: &str, before: Option<&str>, after: &str) -> Option<String> {
    if !is_python(shown) {
        return None;
    }
    let notes: Vec<String> = [defined_twice_note(shown, before, after), stray_self_note(shown, before, after)]
        .into_iter()
        .flatten()
        .collect();
    (!notes.is_empty()).then(|| notes.join(" "))
}

/// The names `after` defines more than once at the top level where `before` did not.
fn defined_twice_note(shown: &str, before: Option<&str>, after: &str) -> Option<String> {
    let defs: Vec<TopLevelDef<'_>> = top_level_defs(after).collect();
    let earlier: Vec<TopLevelDef<'_>> = before.map(|text| top_level_defs(text).collect()).unwrap_or_default();
    let mut notes = Vec::new();
    for (at, def) in defs.iter().enumerate() {
        let first_of_its_name = defs[..at].iter().all(|d| d.name != def.name);
        let twice_before = earlier.iter().filter(|d| d.name == def.name).count() > 1;
        if !first_of_its_name || twice_before {
            continue;
        }
        let same: Vec<String> = defs.iter().filter(|d| d.name == def.name).map(|d| d.number.to_string()).collect();
        if same.len() > 1 {
            notes.push(format!("`{}` (lines {})", def.name, same.join(", ")));
        }
    }
    if notes.is_empty() {
        return None;
    }
    Some(format!(
        "{shown} now defines {} more than once at the top level: Python keeps only the last definition of a name, \
         so the earlier ones do nothing. Delete the copies you do not want with edit.",
        notes.join(", ")
    ))
}

/// The functions `after` defines at the top level with a `self` parameter and `before` did not.
/// A function whose name is on any other line, bar its own definitions, is left alone: one
/// assigned to a class or patched in (`Session.get = fake_get`) takes `self` on purpose.
fn stray_self_note(shown: &str, before: Option<&str>, after: &str) -> Option<String> {
    let earlier: Vec<&str> =
        before.map(|text| top_level_defs(text).filter(takes_self).map(|def| def.line).collect()).unwrap_or_default();
    let found: Vec<TopLevelDef<'_>> = top_level_defs(after)
        .filter(takes_self)
        .filter(|def| !earlier.contains(&def.line))
        .filter(|def| {
            let defining = |line: &str| top_level_defs(line).any(|d| d.name == def.name);
            after.lines().all(|line| defining(line) || !tokens(line).contains(&def.name))
        })
        .collect();
    let first = found.first()?;
    let named: Vec<String> = found.iter().map(|def| format!("`{}` (line {})", def.name, def.number)).collect();
    let (them, it) = if found.len() == 1 { ("it", "it is") } else { ("them", "they are") };
    let fix = match without_self(first).filter(|_| after.matches(first.line).count() == 1) {
        Some(fixed) => {
            let call = json!({"path": shown, "old_string": first.line, "new_string": fixed});
            format!(" To make `{}` a plain function, call edit with these arguments: {call}", first.name)
        }
        None => format!(" Drop `self` from {them}, or move {them} into a class."),
    };
    Some(format!(
        "{} takes `self` but {it} defined at the top level of {shown}, not in a class, so nothing passes \
         `self`: a call without it raises a TypeError, and pytest fails a test on a missing fixture named \
         `self`.{fix}",
        named.join(", ")
    ))
}

/// Whether `def` is a function whose first parameter is `self`.
fn takes_self(def: &TopLevelDef<'_>) -> bool {
    !def.line.starts_with("class ")
        && def
            .params
            .trim_start()
            .strip_prefix("self")
            .is_some_and(|rest| rest.trim_start().starts_with([',', ')', ':', '=']))
}

/// The `def` line without its `self` parameter; `None` when `self` is annotated or has a
/// default, where the change is not a plain deletion.
fn without_self(def: &TopLevelDef<'_>) -> Option<String> {
    let head = &def.line[..def.line.len() - def.params.len()];
    let rest = def.params.trim_start().strip_prefix("self")?.trim_start();
    if let Some(others) = rest.strip_prefix(',') {
        Some(format!("{head}{}", others.trim_start()))
    } else if rest.starts_with(')') {
        Some(format!("{head}{rest}"))
    } else {
        None
    }
}

#[cfg(test)]
mod tests;
