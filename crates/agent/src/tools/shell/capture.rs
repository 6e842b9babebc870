//! Command output kept within a byte budget: the first half and the last half of the budget,
//! with a note of how much was left out between them, since errors tend to be at the end.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncRead, AsyncReadExt};

/// The head and tail of a stream of bytes.
#[derive(Debug)]
pub(crate) struct CappedBuffer {
    head: Vec<u8>,
    tail: VecDeque<u8>,
    head_cap: usize,
    tail_cap: usize,
    total: u64,
}

impl CappedBuffer {
    /// A buffer keeping at most `cap` bytes.
    pub(crate) fn new(cap: usize) -> Self {
        let head_cap = cap / 2;
        Self { head: Vec::new(), tail: VecDeque::new(), head_cap, tail_cap: cap - head_cap, total: 0 }
    }

    /// Appends `bytes`.
    pub(crate) fn push(&mut self, mut bytes: &[u8]) {
        self.total += bytes.len() as u64;
        let room = self.head_cap - self.head.len();
        if room > 0 {
            let take = room.min(bytes.len());
            self.head.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
        }
        if bytes.len() >= self.tail_cap {
            self.tail.clear();
            self.tail.extend(&bytes[bytes.len() - self.tail_cap..]);
            return;
        }
        let overflow = (self.tail.len() + bytes.len()).saturating_sub(self.tail_cap);
        self.tail.drain(..overflow);
        self.tail.extend(bytes);
    }

    /// The kept text, with a note where bytes were left out.
    pub(crate) fn render(&self) -> String {
        let kept = self.head.len() + self.tail.len();
        let mut text = String::from_utf8_lossy(&self.head).into_owned();
        let omitted = self.total - kept as u64;
        if omitted > 0 {
            text.push_str(&format!("\n[... {omitted} bytes of output left out ...]\n"));
        }
        let tail: Vec<u8> = self.tail.iter().copied().collect();
        text.push_str(&String::from_utf8_lossy(&tail));
        text
    }
}

/// Reads `stream` to its end into the shared buffer, so stdout and stderr interleave as they
/// arrive, as on a terminal.
pub(crate) async fn drain(mut stream: impl AsyncRead + Unpin, buffer: Arc<Mutex<CappedBuffer>>) {
    let mut chunk = vec![0u8; 16 * 1024];
    while let Ok(read) = stream.read(&mut chunk).await {
        if read == 0 {
            break;
        }
        buffer.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(&chunk[..read]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_output_is_kept_whole() {
        let mut buffer = CappedBuffer::new(10);
        buffer.push(b"abc");
        buffer.push(b"de");
        assert_eq!(buffer.render(), "abcde");
    }

    #[test]
    fn large_output_keeps_head_and_tail() {
        let mut buffer = CappedBuffer::new(8);
        for chunk in [&b"0123"[..], b"456789", b"abcdef"] {
            buffer.push(chunk);
        }
        assert_eq!(buffer.render(), "0123\n[... 8 bytes of output left out ...]\ncdef");
    }

    #[test]
    fn one_huge_chunk_keeps_its_end() {
        let mut buffer = CappedBuffer::new(4);
        buffer.push(b"abcdefghij");
        assert_eq!(buffer.render(), "ab\n[... 6 bytes of output left out ...]\nij");
    }
}
