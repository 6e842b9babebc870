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
    /// x86-64 with AVX-512 F/BW/VL and VNNI on top of AVX2.
    #[cfg(target_arch = "x86_64")]
    Avx512(Avx512Proof),
    /// aarch64 NEON with the dot-product extension (`sdot`).
    #[cfg(target_arch = "aarch64")]
    Neon(NeonProof),
}

/// Evidence that this CPU has AVX2, FMA and F16C; only `detect` can make one, so holding a
/// `SimdPath::Avx2` is what makes calling the AVX2 kernels sound.
#[cfg(target_arch = "x86_64")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Avx2Proof(());

/// Evidence that this CPU has everything `Avx2Proof` stands for plus AVX-512 F, BW, VL and VNNI.
#[cfg(target_arch = "x86_64")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Avx512Proof(());

/// Evidence that this aarch64 CPU has the dot-product extension (NEON itself is part of every
/// aarch64 target); only `available` can make one, so holding a `SimdPath::Neon` is what makes
/// calling the NEON kernels sound.
#[cfg(target_arch = "aarch64")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NeonProof(());

impl SimdPath {
    /// The name `simd_level` reports, also what `HEARTH_SIMD` accepts.
    pub(crate) fn name(self) -> &'static str {
        match self {
            SimdPath::Scalar => "scalar",
            #[cfg(target_arch = "x86_64")]
            SimdPath::Avx2(_) => "avx2+fma",
            #[cfg(target_arch = "x86_64")]
            SimdPath::Avx512(_) => "avx512+vnni",
            #[cfg(target_arch = "aarch64")]
            SimdPath::Neon(_) => "neon+dotprod",
        }
    }
}

/// The best path this CPU supports, or a lower one named by `HEARTH_SIMD` (to compare paths on one
/// machine; a name the CPU cannot run, or an unknown one, is ignored).
pub(crate) fn detected() -> SimdPath {
    static PATH: OnceLock<SimdPath> = OnceLock::new();
    *PATH.get_or_init(|| choose(&available(), std::env::var("HEARTH_SIMD").ok().as_deref()))
}

/// Whether code that picks its own AVX-512F routines (the engine's attention) may: the CPU has
/// AVX-512F and `HEARTH_SIMD` does not choose a lower path, so comparing paths covers it too.
pub(crate) fn avx512f_allowed() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static ALLOWED: OnceLock<bool> = OnceLock::new();
        *ALLOWED.get_or_init(|| {
            let wanted = std::env::var("HEARTH_SIMD").ok();
            let lower =
                wanted.is_some_and(|w| available().iter().any(|p| p.name() == w.trim() && p.name() != "avx512+vnni"));
            !lower && std::arch::is_x86_feature_detected!("avx512f")
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// The path named `wanted` if it is among `paths`, else the last (best) of `paths`.
pub(crate) fn choose(paths: &[SimdPath], wanted: Option<&str>) -> SimdPath {
    let named = wanted.and_then(|name| paths.iter().copied().find(|p| p.name() == name.trim()));
    named.or(paths.last().copied()).unwrap_or(SimdPath::Scalar)
}

/// Every path usable on this CPU, slowest first: the scalar path, then each SIMD level detected.
pub(crate) fn available() -> Vec<SimdPath> {
    #[cfg_attr(not(any(target_arch = "x86_64", target_arch = "aarch64")), allow(unused_mut))]
    let mut paths = vec![SimdPath::Scalar];
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        if has!("avx2") && has!("fma") && has!("f16c") {
            paths.push(SimdPath::Avx2(Avx2Proof(())));
            if has!("avx512f") && has!("avx512bw") && has!("avx512vl") && has!("avx512vnni") {
                paths.push(SimdPath::Avx512(Avx512Proof(())));
            }
        }
    }
    #[cfg(target_arch = "aarch64")]
    if std::arch::is_aarch64_feature_detected!("neon") && std::arch::is_aarch64_feature_detected!("dotprod") {
        paths.push(SimdPath::Neon(NeonProof(())));
    }
    paths
}
