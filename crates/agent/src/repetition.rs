//! Finds a reply that has started repeating itself. Greedy decoding on a small model falls into
//! loops ("The function definition in main.py still reads ..." over and over) and would run to
//! the token limit: hundreds of tokens, tens of seconds on a CPU, and an answer nobody can use.
//! A loop is text that ends in the same stretch several times in a row; the reply is cut after
//! the stretch's first copy.

/// Shortest stretch counted: below this, repeats are table rules, ellipses and the like.
const MIN_PERIOD_BYTES: usize = 16;

/// Longest stretch looked for, so the check stays cheap per token.
const MAX_PERIOD_BYTES: usize = 600;

/// Copies in a row that make a loop.
const COPIES: usize = 3;

/// Where to cut `text` if it ends in a loop: the end of the loop's first copy, measured from
/// where the repetition began. `None` when the text does not end in [`COPIES`] copies of a
/// stretch of [`MIN_PERIOD_BYTES`] to [`MAX_PERIOD_BYTES`] bytes.
pub fn loop_cut(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let n = bytes.len();
    let longest = MAX_PERIOD_BYTES.min(n / COPIES);
    (MIN_PERIOD_BYTES..=longest).find_map(|period| {
        let tail = &bytes[n - COPIES * period..];
        let periodic = (period..tail.len()).all(|i| tail[i] == tail[i - period]);
        if !periodic {
            return None;
        }
        // A stretch that is itself a short stretch over and over ("|---" in a table rule) is no
        // loop of the kind looked for.
        let unit = &tail[..period];
        if (1..MIN_PERIOD_BYTES).any(|q| period % q == 0 && (q..period).all(|i| unit[i] == unit[i - q])) {
            return None;
        }
        // Walk back to where the repetition began, so the copy kept is the model's first; then on
        // to the first word in it, since the text before a loop often ends as the stretch does
        // (". "), and a cut there would end the reply in the middle of a sentence.
        let mut earliest = n - COPIES * period;
        while earliest > 0 && bytes[earliest - 1] == bytes[earliest - 1 + period] {
            earliest -= 1;
        }
        let start = (earliest..earliest + period)
            .find(|&i| i > 0 && bytes[i - 1].is_ascii_whitespace() && !bytes[i].is_ascii_whitespace())
            .unwrap_or(earliest);
        // The copy kept ends at the last sentence end in it, if any: where the walk back stopped
        // is a word, not always a sentence.
        let kept = start + period;
        let sentence_end = (start + 1..=kept).rev().find(|&end| {
            matches!(bytes[end - 1], b'.' | b'!' | b'?' | b'\n') && bytes.get(end).is_none_or(u8::is_ascii_whitespace)
        });
        let mut cut = sentence_end.unwrap_or(kept);
        while !text.is_char_boundary(cut) {
            cut += 1;
        }
        Some(cut)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_ending_in_three_copies_is_cut_after_the_first() {
        let unit = "The function in main.py still reads `get_user`. ";
        let text = format!("I renamed it. {}", unit.repeat(3));
        let cut = loop_cut(&text).unwrap_or_default();
        assert_eq!(&text[..cut], format!("I renamed it. {}", unit.trim_end()));
    }

    #[test]
    fn the_loop_is_found_whatever_point_of_the_stretch_the_text_stops_at() {
        let unit = "Line one says a. Line two says b. ";
        let text = format!("Intro. {}Line one", unit.repeat(3));
        let cut = loop_cut(&text).unwrap_or_default();
        assert_eq!(&text[..cut], format!("Intro. {}", unit.trim_end()));
    }

    #[test]
    fn the_copy_kept_ends_at_a_sentence_end() {
        // The text before the loop ends as the stretch does up to its first words, so the walk
        // back starts the copy in the middle of a sentence.
        let unit = "A in `main.py` reads `x`. A in `users.py` reads `y`. ";
        let text = format!("I renamed it. A in `main.py` {}", unit.repeat(3));
        let cut = loop_cut(&text).unwrap_or_default();
        assert!(text[..cut].ends_with("reads `y`."), "{}", &text[..cut]);
    }

    #[test]
    fn two_copies_short_stretches_and_plain_prose_are_left_alone() {
        let unit = "The port is set in server.py. ";
        assert_eq!(loop_cut(&unit.repeat(2)), None);
        assert_eq!(loop_cut(&format!("A table:\n{}", "|---".repeat(12))), None);
        assert_eq!(loop_cut("I changed calc.py so add returns a + b, and the test passes now."), None);
        assert_eq!(loop_cut(""), None);
    }

    #[test]
    fn a_cut_never_splits_a_character() {
        let unit = "Schließe die Datei – überall. ";
        let text = format!("Öffnen: {}", unit.repeat(3));
        let cut = loop_cut(&text).unwrap_or_default();
        assert!(text.is_char_boundary(cut));
        assert_eq!(&text[..cut], format!("Öffnen: {}", unit.trim_end()));
    }
}
