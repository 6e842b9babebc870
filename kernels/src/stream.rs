//! Reading memory as fast as the CPU can: the inner loop of the read-bandwidth probe that
//! `hearth bench` divides by a model's bytes for the decode ceiling.
//!
//! A ceiling must not be lower than what the decode kernels reach. Their weight loads are 32 or 64
//! bytes wide, and a loop of 8-byte loads issues too few per cycle to keep one core's share of the
//! memory bus busy: on one core of the x86 host the engine is measured on, 8 GB/s against 32 GB/s
//! with 64-byte loads. So the probe loads as wide as the CPU allows. Unlike the kernels it ignores
//! `HEARTH_SIMD`: the ceiling is the machine's, whichever path the products take.

/// Bytes summed per step of the vector loops: four independent accumulators of one register each
/// at the widest width (64 bytes), so no add waits on the one before.
const STEP_BYTES: usize = 256;

/// The wrapping sum of the native-endian 8-byte words of `bytes` and then of its last
/// `bytes.len() % 8` bytes, read with the widest loads this CPU has.
pub(crate) fn sum(bytes: &[u8]) -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: AVX-512F was detected on this CPU.
            return unsafe { x86::sum_avx512(bytes) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: AVX2 was detected on this CPU.
            return unsafe { x86::sum_avx2(bytes) };
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        // SAFETY: NEON is part of every aarch64 target.
        return unsafe { neon::sum(bytes) };
    }
    #[allow(unreachable_code)]
    sum_portable(bytes)
}

/// `sum` in plain Rust: eight accumulators, which the compiler keeps in SSE2 registers on a
/// baseline x86-64 build.
pub(crate) fn sum_portable(bytes: &[u8]) -> u64 {
    let (steps, rest) = bytes.as_chunks::<64>();
    let mut acc = [0u64; 8];
    for step in steps {
        let (words, _) = step.as_chunks::<8>();
        for (a, w) in acc.iter_mut().zip(words) {
            *a = a.wrapping_add(u64::from_ne_bytes(*w));
        }
    }
    let (words, tail) = rest.as_chunks::<8>();
    let words = words.iter().map(|w| u64::from_ne_bytes(*w));
    let tail = tail.iter().map(|&b| u64::from(b));
    acc.into_iter().chain(words).chain(tail).fold(0u64, u64::wrapping_add)
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::STEP_BYTES;

    /// `super::sum` with 64-byte loads.
    #[target_feature(enable = "avx512f")]
    pub(super) fn sum_avx512(bytes: &[u8]) -> u64 {
        let (steps, rest) = bytes.as_chunks::<STEP_BYTES>();
        let mut acc = [_mm512_setzero_si512(); 4];
        for step in steps {
            for (i, a) in acc.iter_mut().enumerate() {
                // SAFETY: each of the four loads reads 64 of the step's 256 bytes; no alignment
                // needed.
                *a = _mm512_add_epi64(*a, unsafe { _mm512_loadu_si512(step.as_ptr().add(64 * i).cast()) });
            }
        }
        let total = _mm512_add_epi64(_mm512_add_epi64(acc[0], acc[1]), _mm512_add_epi64(acc[2], acc[3]));
        let mut lanes = [0u8; 64];
        // SAFETY: `lanes` holds the register's 64 bytes.
        unsafe { _mm512_storeu_si512(lanes.as_mut_ptr().cast(), total) };
        super::sum_portable(&lanes).wrapping_add(super::sum_portable(rest))
    }

    /// `super::sum` with 32-byte loads.
    #[target_feature(enable = "avx2")]
    pub(super) fn sum_avx2(bytes: &[u8]) -> u64 {
        let (steps, rest) = bytes.as_chunks::<{ STEP_BYTES / 2 }>();
        let mut acc = [_mm256_setzero_si256(); 4];
        for step in steps {
            for (i, a) in acc.iter_mut().enumerate() {
                // SAFETY: each of the four loads reads 32 of the step's 128 bytes; no alignment
                // needed.
                *a = _mm256_add_epi64(*a, unsafe { _mm256_loadu_si256(step.as_ptr().add(32 * i).cast()) });
            }
        }
        let total = _mm256_add_epi64(_mm256_add_epi64(acc[0], acc[1]), _mm256_add_epi64(acc[2], acc[3]));
        let mut lanes = [0u8; 32];
        // SAFETY: `lanes` holds the register's 32 bytes.
        unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast(), total) };
        super::sum_portable(&lanes).wrapping_add(super::sum_portable(rest))
    }
}

#[cfg(target_arch = "aarch64")]
mod neon {
    use std::arch::aarch64::*;

    use super::STEP_BYTES;

    /// `super::sum` with 16-byte loads, four registers loaded by each `ld1`.
    #[target_feature(enable = "neon")]
    pub(super) fn sum(bytes: &[u8]) -> u64 {
        let (steps, rest) = bytes.as_chunks::<{ STEP_BYTES / 4 }>();
        let mut acc = [vdupq_n_u64(0); 4];
        for step in steps {
            // SAFETY: the load reads the step's 64 bytes; no alignment needed.
            let v = unsafe { vld1q_u64_x4(step.as_ptr().cast()) };
            acc[0] = vaddq_u64(acc[0], v.0);
            acc[1] = vaddq_u64(acc[1], v.1);
            acc[2] = vaddq_u64(acc[2], v.2);
            acc[3] = vaddq_u64(acc[3], v.3);
        }
        let total = vaddq_u64(vaddq_u64(acc[0], acc[1]), vaddq_u64(acc[2], acc[3]));
        super::sum_portable(rest).wrapping_add(vaddvq_u64(total))
    }
}

#[cfg(test)]
mod tests {
    /// The sum `super::sum` promises, one word and then one byte at a time.
    fn reference(bytes: &[u8]) -> u64 {
        let words = bytes.len() / 8;
        let word_sum = (0..words)
            .map(|i| u64::from_ne_bytes(bytes[8 * i..8 * i + 8].try_into().unwrap()))
            .fold(0u64, u64::wrapping_add);
        bytes[8 * words..].iter().fold(word_sum, |s, &b| s.wrapping_add(u64::from(b)))
    }

    #[test]
    fn every_byte_is_read_once_at_every_length_and_offset() {
        // Bytes near the top of the range make the word sums wrap; lengths cover the vector
        // steps' tails and offsets their unaligned starts.
        let bytes: Vec<u8> = (0..2400u32).map(|i| 255 - (i.wrapping_mul(0x9E37_79B9) >> 24) as u8 % 16).collect();
        for start in 0..9 {
            for len in (0..bytes.len() - start).step_by(13) {
                let b = &bytes[start..start + len];
                let want = reference(b);
                assert_eq!(super::sum(b), want, "start {start}, len {len}");
                assert_eq!(super::sum_portable(b), want, "portable, start {start}, len {len}");
                #[cfg(target_arch = "x86_64")]
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: AVX2 was detected on this CPU.
                    assert_eq!(unsafe { super::x86::sum_avx2(b) }, want, "AVX2, start {start}, len {len}");
                }
            }
        }
    }
}
