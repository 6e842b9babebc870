//! Memory read bandwidth, measured the way decoding uses memory: every thread streams its own
//! part of a buffer as large as the model's weights, several rows at once (as the decode kernels
//! read four weight rows together). Decoding one token reads (nearly) all weights once, so
//! bandwidth divided by those bytes is the ceiling on tokens per second. The buffer has the
//! weights' size so that caches help the probe exactly as much as they help decoding: a last-level
//! cache of hundreds of MiB keeps part of a smaller model between tokens.

use std::time::Instant;

use rayon::prelude::*;

/// The smallest buffer streamed: enough to time a pass reliably.
const MIN_BUFFER_BYTES: usize = 64 << 20;
/// Independent streams per thread.
const STREAMS: usize = 4;

/// Best read bandwidth in bytes per second over a few passes over a buffer of `bytes` (at least
/// `MIN_BUFFER_BYTES`), on the current rayon pool.
pub fn read_bandwidth(bytes: usize) -> f64 {
    let words = bytes.max(MIN_BUFFER_BYTES) / 8;
    let buffer: Vec<u64> = (0..words as u64).collect();
    let chunk = (words / rayon::current_num_threads().max(1) / 4 + 1).next_multiple_of(STREAMS);
    let mut best = 0f64;
    for _ in 0..4 {
        let start = Instant::now();
        let sum: u64 = buffer.par_chunks(chunk).map(stream_sum).sum();
        let secs = start.elapsed().as_secs_f64();
        std::hint::black_box(sum);
        best = best.max((words * 8) as f64 / secs);
    }
    best
}

/// Sum of `c`, read as `STREAMS` interleaved sequential streams.
fn stream_sum(c: &[u64]) -> u64 {
    let part = c.len() / STREAMS;
    let mut acc = [0u64; STREAMS];
    for i in 0..part {
        for (s, a) in acc.iter_mut().enumerate() {
            *a = a.wrapping_add(c[s * part + i]);
        }
    }
    let rest = c[STREAMS * part..].iter().fold(0u64, |a, &x| a.wrapping_add(x));
    acc.iter().fold(rest, |a, &x| a.wrapping_add(x))
}

/// Bytes of weights one decoded token reads: every tensor, except a token embedding table that
/// is only looked up (one row) because the model has its own output matrix.
pub fn bytes_per_token(tensors: impl Iterator<Item = (String, u64)>) -> u64 {
    let tensors: Vec<(String, u64)> = tensors.collect();
    let has_output = tensors.iter().any(|(name, _)| name == "output.weight");
    tensors.iter().filter(|(name, _)| !(has_output && name == "token_embd.weight")).map(|(_, bytes)| bytes).sum()
}

#[cfg(test)]
mod tests {
    use super::bytes_per_token;

    #[test]
    fn a_separate_output_matrix_makes_the_embedding_a_lookup() {
        let t = |n: &str, b| (n.to_string(), b);
        assert_eq!(bytes_per_token([t("token_embd.weight", 100), t("blk.0.w", 10)].into_iter()), 110);
        assert_eq!(bytes_per_token([t("token_embd.weight", 100), t("output.weight", 50), t("b", 10)].into_iter()), 60);
    }

    #[test]
    fn every_word_is_read_once() {
        let c: Vec<u64> = (1..=103).collect();
        assert_eq!(super::stream_sum(&c), 103 * 104 / 2);
    }

    #[test]
    fn bandwidth_is_positive() {
        assert!(super::read_bandwidth(0) > 1e8);
    }
}
