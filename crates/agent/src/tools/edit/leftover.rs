//! Names an edit renamed that the file still uses elsewhere.
//!
//! A rename done by hand is one edit per use. Small models rename the use they are looking at
//! and stop: `print(get_user(7))` becomes `print(fetch_user(7))` while the import on line 1
//! keeps `get_user`, and the turn ends with the program broken. Saying where the old name is
//! left lets the model finish the job in its next call instead of searching again.

use serde_json::json;

use crate::tools::cut_line;
use crate::tools::words::{is_name, tokens};

/// Shortest name reported: one- and two-letter names (`i`, `x`, `df`) are often reused on purpose.
const MIN_NAME_CHARS: usize = 3;

/// Lines quoted per name; the rest are counted.
const MAX_LINES_SHOWN: usize = 3;

/// Longest quoted line, in characters.
const MAX_LINE_CHARS: usize = 120;

/// A note on the names that `old` → `new` renamed and that `after` (the file once edited) still
/// holds, or `None`. Only an edit that renames and does nothing else counts: the two texts must
/// be the same apart from whole names swapped one for one, so an edit that also changes a
/// number, an operator or the name's arguments is left alone.
pub(super) fn leftover_names_note(shown: &str, old: &str, new: &str, after: &str) -> Option<String> {
    let mut notes = Vec::new();
    let mut next_call = None;
    for (name, renamed_to) in renamed(old, new)? {
        let lines: Vec<(usize, &str)> = after
            .lines()
            .enumerate()
            .filter(|(_, line)| tokens(line).contains(&name))
            .map(|(i, line)| (i + 1, line))
            .collect();
        if lines.is_empty() {
            continue;
        }
        let mut quoted: Vec<String> = lines
            .iter()
            .take(MAX_LINES_SHOWN)
            .map(|(number, line)| format!("line {number}: `{}`", cut_line(line.trim(), MAX_LINE_CHARS)))
            .collect();
        if lines.len() > MAX_LINES_SHOWN {
            quoted.push(format!("and {} more", lines.len() - MAX_LINES_SHOWN));
        }
        notes.push(format!("{name} is still used in {shown}: {}", quoted.join("; ")));
        if next_call.is_none() {
            next_call = lines.iter().find_map(|(_, line)| edit_call(shown, line.trim(), name, renamed_to, after));
        }
    }
    if notes.is_empty() {
        return None;
    }
    let next = match next_call {
        Some(call) => format!("To rename the next one, call edit with these arguments: {call}"),
        None => "If the rename is meant to cover every use, edit those lines too.".to_string(),
    };
    Some(format!("\nThis edit renamed a name that the file still uses elsewhere. {}. {next}", notes.join(". ")))
}

/// The edit call that renames `name` to `to` in `line`, written out so that the model can copy
/// it; `None` when the line's text is not unique in `after`, where the call would be refused.
fn edit_call(shown: &str, line: &str, name: &str, to: &str, after: &str) -> Option<String> {
    if after.matches(line).count() != 1 {
        return None;
    }
    let renamed_line: String = tokens(line).into_iter().map(|token| if token == name { to } else { token }).collect();
    Some(json!({"path": shown, "old_string": line, "new_string": renamed_line}).to_string())
}

/// The names `old` holds that `new` replaces one for one, each with its new name, when the two
/// texts differ in nothing else; `None` for any other kind of edit.
fn renamed<'a>(old: &'a str, new: &'a str) -> Option<Vec<(&'a str, &'a str)>> {
    let old_tokens = tokens(old);
    let new_tokens = tokens(new);
    if old_tokens.len() != new_tokens.len() {
        return None;
    }
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    for (&a, &b) in old_tokens.iter().zip(&new_tokens) {
        if a == b {
            continue;
        }
        if !is_name(a) || !is_name(b) {
            return None;
        }
        match pairs.iter().find(|(from, _)| *from == a) {
            Some((_, to)) if *to != b => return None,
            Some(_) => {}
            None => pairs.push((a, b)),
        }
    }
    // A name that stays in the new text (swapped with another) was not renamed away.
    let names: Vec<(&str, &str)> = pairs
        .into_iter()
        .filter(|(from, _)| from.chars().count() >= MIN_NAME_CHARS && !new_tokens.contains(from))
        .collect();
    (!names.is_empty()).then_some(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rename_of_one_use_points_at_the_others() {
        let after = "from users import get_user\n\nprint(fetch_user(7)['id'])\nx = get_user(1) + get_user_id()\n";
        let note = leftover_names_note("main.py", "get_user(7)['id']", "fetch_user(7)['id']", after).unwrap();
        assert!(note.contains("get_user is still used in main.py"), "{note}");
        assert!(note.contains("line 1: `from users import get_user`"), "{note}");
        assert!(note.contains("line 4: `x = get_user(1) + get_user_id()`"), "{note}");
        assert!(!note.contains("line 3"), "{note}");
        let call = r#"call edit with these arguments: {"path":"main.py","old_string":"from users import get_user","new_string":"from users import fetch_user"}"#;
        assert!(note.contains(call), "{note}");
    }

    #[test]
    fn a_line_that_is_not_unique_gets_no_call() {
        let after = "print(fetch_user(1))\nlog(get_user)\nlog(get_user)\n";
        let note = leftover_names_note("a.py", "fetch_user(1)", "fetch_user(1)", after);
        assert_eq!(note, None, "nothing was renamed");
        let note = leftover_names_note("a.py", "get_user(1)", "fetch_user(1)", after).unwrap();
        assert!(note.contains("line 2: `log(get_user)`; line 3: `log(get_user)`"), "{note}");
        assert!(note.contains("edit those lines too"), "{note}");
        assert!(!note.contains("arguments"), "{note}");
    }

    #[test]
    fn a_finished_rename_needs_no_note() {
        let after = "from users import fetch_user\n\nprint(fetch_user(7))\nget_user_id()\n";
        assert_eq!(leftover_names_note("main.py", "get_user(7)", "fetch_user(7)", after), None);
    }

    #[test]
    fn edits_that_do_more_than_rename_are_left_alone() {
        let after = "total = 0\nprint(count + 1)\ntotal += 1\n";
        // The name changed and so did a number.
        assert_eq!(leftover_names_note("a.py", "print(total)", "print(count + 1)", after), None);
        assert_eq!(leftover_names_note("a.py", "total == 5", "count == 6", after), None);
        // Numbers alone, or a short name.
        assert_eq!(renamed("x == 5", "x == 6"), None);
        assert_eq!(renamed("f(a)", "f(b)"), None);
        // Two names swapped: neither is gone.
        assert_eq!(renamed("pair(left, right)", "pair(right, left)"), None);
        // One name renamed two ways is not a rename.
        assert_eq!(renamed("old + old", "new + other"), None);
        assert_eq!(renamed("old + old", "new + new"), Some(vec![("old", "new")]));
    }
}
