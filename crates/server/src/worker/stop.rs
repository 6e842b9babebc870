//! Stop strings: text is held back while it could still be the start of a stop string, so a
//! client never sees part of one.

/// Finds stop strings in a stream of text.
#[derive(Debug, Default)]
pub struct StopMatcher {
    stops: Vec<String>,
    held: String,
}

impl StopMatcher {
    /// A matcher for `stops` (empty strings are ignored).
    pub fn new(stops: Vec<String>) -> Self {
        Self { stops: stops.into_iter().filter(|s| !s.is_empty()).collect(), held: String::new() }
    }

    /// Adds generated text. Returns the text that is now safe to pass on and, if a stop string
    /// appeared, which one (the text from it on is dropped).
    pub fn push(&mut self, text: &str) -> (String, Option<String>) {
        if self.stops.is_empty() {
            return (text.to_string(), None);
        }
        self.held.push_str(text);
        let first = self.stops.iter().filter_map(|s| self.held.find(s.as_str()).map(|at| (at, s))).min_by_key(|m| m.0);
        if let Some((at, stop)) = first {
            let stop = stop.clone();
            let out = self.held[..at].to_string();
            self.held.clear();
            return (out, Some(stop));
        }
        let keep = self.partial_suffix_len();
        let out = self.held[..self.held.len() - keep].to_string();
        self.held.drain(..self.held.len() - keep);
        (out, None)
    }

    /// Text held back at the end of generation (it never became a stop string).
    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.held)
    }

    /// Length of the longest end of the held text that begins some stop string.
    fn partial_suffix_len(&self) -> usize {
        let held = self.held.as_str();
        let mut best = 0;
        for stop in &self.stops {
            for (start, _) in held.char_indices().rev().take(stop.chars().count()) {
                let tail = &held[start..];
                if tail.len() > best && stop.starts_with(tail) {
                    best = tail.len();
                }
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_held_while_it_may_start_a_stop_string() {
        let mut m = StopMatcher::new(vec!["END".into()]);
        assert_eq!(m.push("hello E"), ("hello ".into(), None));
        assert_eq!(m.push("N"), (String::new(), None));
        assert_eq!(m.push("X"), ("ENX".into(), None));
        assert_eq!(m.push("ab EN"), ("ab ".into(), None));
        assert_eq!(m.push("Drest"), (String::new(), Some("END".into())));
    }

    #[test]
    fn earliest_stop_wins_and_held_text_is_released_at_the_end() {
        let mut m = StopMatcher::new(vec!["world".into(), "lo".into()]);
        assert_eq!(m.push("hello world"), ("hel".into(), Some("lo".into())));
        let mut m = StopMatcher::new(vec!["éa".into()]);
        assert_eq!(m.push("café"), ("caf".into(), None));
        assert_eq!(m.finish(), "é");
    }

    #[test]
    fn no_stops_passes_everything() {
        let mut m = StopMatcher::new(vec![String::new()]);
        assert_eq!(m.push("abc"), ("abc".into(), None));
        assert_eq!(m.finish(), "");
    }
}
