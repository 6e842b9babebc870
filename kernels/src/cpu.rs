//! Run-time choice of the SIMD path, detected once per process.

use std::sync::OnceLock;

/// Which family of kernels runs on this CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SimdPath {
    /// Portable Rust, always available.
    Scalar,
    /// x86-64 with AVX2, FMA and F16C (every AVX2 CPU ships F16C).
    #[cfg(target_arch = "x86_64")]
    Avx2(Avx2Proof),
}

/// Evidence that this CPU has AVX2, FMA and F16C; only `detect` can make one, so holding a
/// `SimdPath::Avx2` is what makes calling the AVX2 kernels sound.
#[cfg(target_arch = "x86_64")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Avx2Proof(());

impl SimdPath {
    /// The name `simd_level` reports.
    pub(crate) fn name(self) -> &'static str {
        match self {
            SimdPath::Scalar => "scalar",
            #[cfg(target_arch = "x86_64")]
            SimdPath::Avx2(_) => "avx2+fma",
        }
    }
}

/// The best path this CPU supports.
pub(crate) fn detected() -> SimdPath {
    static PATH: OnceLock<SimdPath> = OnceLock::new();
    *PATH.get_or_init(detect)
}

fn detect() -> SimdPath {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma")
            && std::arch::is_x86_feature_detected!("f16c")
        {
            return SimdPath::Avx2(Avx2Proof(()));
        }
    }
    SimdPath::Scalar
}

/// Every path usable on this CPU, for tests that compare them.
#[cfg(test)]
pub(crate) fn available() -> Vec<SimdPath> {
    let mut paths = vec![SimdPath::Scalar];
    if detected() != SimdPath::Scalar {
        paths.push(detected());
    }
    paths
}
