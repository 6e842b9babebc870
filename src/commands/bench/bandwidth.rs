//! Memory read bandwidth, measured the way decoding uses memory: every thread streams its own
//! part of a buffer far larger than the caches. Decoding one token reads (nearly) all weights
//! once, so bandwidth divided by those bytes is the ceiling on tokens per second.

use std::time::Instant;

use rayon::prelude::*;

/// Bytes streamed per measurement: well past any last-level cache.
const BUFFER_BYTES: usize = 512 << 20;

/// Best read bandwidth in bytes per second over a few passes, on the current rayon pool.
pub fn read_bandwidth() -> f64 {
    let words = BUFFER_BYTES / 8;
    let buffer: Vec<u64> = (0..words as u64).collect();
    let chunk = words / rayon::current_num_threads().max(1) / 4 + 1;
    let mut best = 0f64;
    for _ in 0..4 {
        let start = Instant::now();
        let sum: u64 = buffer.par_chunks(chunk).map(|c| c.iter().fold(0u64, |a, &x| a.wrapping_add(x))).sum();
        let secs = start.elapsed().as_secs_f64();
        std::hint::black_box(sum);
        best = best.max(BUFFER_BYTES as f64 / secs);
    }
    best
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
    fn bandwidth_is_positive() {
        assert!(super::read_bandwidth() > 1e8);
    }
}
