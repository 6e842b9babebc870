//! Line numbers copied from `read`'s output into text meant for a file.
//!
//! `read` shows each line after its number, right-aligned in six columns and a tab. Small models
//! copy those numbers along with the text: a rewrite of `app/strings.py` came back as
//! `     1    def slug(s):`, line after line, in every run of the suite's find-todo task. Written
//! to disk, the numbers break the file; in an `old_string` they are why it is not found.

use super::{ToolError, cut_line};

/// Width of the number column `read` writes, as [`super::numbered_line`] does.
const NUMBER_COLUMNS: usize = 6;

/// The first line of `text` that starts with a line number as `read` shows it, when the text
/// reads as a copy of `read`'s output: a line in exactly `read`'s form (number column and tab),
/// or two or more numbered lines counting up by one that make at least half the lines with text.
pub(crate) fn copied_line_number(text: &str) -> Option<&str> {
    let lines: Vec<&str> = text.lines().filter(|line| !line.trim().is_empty()).collect();
    let numbered: Vec<(&str, u64, bool)> =
        lines.iter().filter_map(|line| number_prefix(line).map(|(n, tab)| (*line, n, tab))).collect();
    let (first, _, _) = *numbered.first()?;
    let counting_up = numbered.windows(2).all(|pair| pair[1].1 == pair[0].1 + 1);
    let exact = numbered.iter().any(|&(_, _, tab)| tab);
    let copied = (numbered.len() >= 2 && counting_up && numbered.len() * 2 >= lines.len())
        || (exact && numbered.len() == lines.len());
    copied.then_some(first)
}

/// Refuses, unless a person `approved` the call, new text (argument `field`) for the file `shown`
/// that carries line numbers copied from `read`'s output.
pub(crate) fn refuse_copied_numbers(
    text: &str,
    field: &'static str,
    shown: &str,
    approved: bool,
) -> Result<(), ToolError> {
    match copied_line_number(text).filter(|_| !approved) {
        Some(example) => {
            Err(ToolError::CopiedLineNumbers { path: shown.to_string(), field, example: quoted_example(example) })
        }
        None => Ok(()),
    }
}

/// Longest line quoted as an example.
const EXAMPLE_CHARS: usize = 80;

/// `line` as a message quotes it.
pub(crate) fn quoted_example(line: &str) -> String {
    cut_line(line.trim_end(), EXAMPLE_CHARS)
}

/// The number a line starts with in `read`'s number column, and whether a tab follows it as in
/// `read`'s output (a copy may have turned the tab into spaces, or put the text on the next line).
fn number_prefix(line: &str) -> Option<(u64, bool)> {
    let column = line.get(..NUMBER_COLUMNS)?;
    let digits = column.trim_start_matches(' ');
    if digits.len() == NUMBER_COLUMNS || digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let rest = &line[NUMBER_COLUMNS..];
    let tab = rest.starts_with('\t');
    if !(tab || rest.is_empty() || rest.starts_with("  ")) {
        return None;
    }
    digits.parse().ok().map(|n| (n, tab))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_of_read_output_are_found() {
        let spaced = "     1    def slug(s):\n     2        # TODO: handle unicode\n     3        return s\n";
        assert_eq!(copied_line_number(spaced), Some("     1    def slug(s):"));
        let split = "     1\ndef slug(s):\n     2        # TODO: handle unicode\n     3        return s";
        assert_eq!(copied_line_number(split), Some("     1"));
        assert_eq!(copied_line_number("    12\tx = 1\n"), Some("    12\tx = 1"));
    }

    #[test]
    fn text_that_only_has_numbers_is_not() {
        // Numbers in data, not counting up, or not in read's column.
        assert_eq!(copied_line_number("     1  apples\n     5  pears\n"), None);
        assert_eq!(copied_line_number("1\tapples\n2\tpears\n"), None);
        assert_eq!(copied_line_number("x = [\n    1,\n    2,\n]\n"), None);
        assert_eq!(copied_line_number("    12345678\n    12345679\n"), None);
        // One numbered line among others, in spaces rather than read's tab.
        assert_eq!(copied_line_number("total:\n     1  item\nend\n"), None);
        assert_eq!(copied_line_number("def f():\n    return 1\n"), None);
        assert_eq!(copied_line_number(""), None);
    }
}
