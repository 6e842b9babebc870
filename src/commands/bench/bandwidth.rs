//! Memory read bandwidth, measured the way decoding uses memory: every thread streams its own
//! parts of a buffer as large as the model's weights, front to back, with the widest loads the CPU
//! has (`hearth_kernels::stream_sum`), as the decode kernels read their packed weights. The buffer
//! lies where packed weights do, on huge pages (`PackArena`): on 4 KiB pages the probe measured
//! less than decoding reached. Decoding one token reads (nearly) all weights once, so bandwidth
//! divided by those bytes is the ceiling on tokens per second. The buffer has the weights' size so
//! that caches help the probe exactly as much as they help decoding: a last-level cache of
//! hundreds of MiB keeps part of a smaller model between tokens.

use std::time::Instant;

use hearth_kernels::{KernelError, PackArena};
use rayon::prelude::*;

/// The smallest buffer streamed: enough to time a pass reliably.
const MIN_BUFFER_BYTES: usize = 64 << 20;
/// Parts of the buffer per thread, so a thread that finishes early takes over another's.
const PARTS_PER_THREAD: usize = 4;

/// Best read bandwidth in bytes per second over a few passes over a buffer of `bytes` (at least
/// `MIN_BUFFER_BYTES`), on the current rayon pool.
pub fn read_bandwidth(bytes: usize) -> Result<f64, KernelError> {
    let buffer = PackArena::new().zeroes(bytes.max(MIN_BUFFER_BYTES))?;
    let buffer = buffer.as_slice();
    // Whole 4 KiB pages per part, so no two threads read from one page.
    let part = (buffer.len() / rayon::current_num_threads().max(1) / PARTS_PER_THREAD + 1).next_multiple_of(4096);
    let mut best = 0f64;
    for _ in 0..4 {
        let start = Instant::now();
        let sum = buffer.par_chunks(part).map(hearth_kernels::stream_sum).reduce(|| 0, u64::wrapping_add);
        let secs = start.elapsed().as_secs_f64();
        std::hint::black_box(sum);
        best = best.max(buffer.len() as f64 / secs);
    }
    Ok(best)
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
        assert!(super::read_bandwidth(0).unwrap() > 1e8);
    }
}
