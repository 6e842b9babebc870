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

/// Instruction sets that SIMD code picking its own routines (the engine's attention, the NEON
/// gate) asks [`simd_allowed`] about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstructionSet {
    /// x86-64 AVX-512F.
    Avx512f,
    /// x86-64 AVX2 with F16C and FMA.
    Avx2F16cFma,
    /// aarch64 NEON (every aarch64 CPU has it).
    Neon,
}

impl InstructionSet {
    /// Where the set stands among the matmul paths (see [`SimdPath::rank`]): a `HEARTH_SIMD` path
    /// ranked below it turns the set off too, so comparing paths covers the code that asks.
    pub(crate) fn rank(self) -> u8 {
        match self {
            InstructionSet::Avx512f => 2,
            InstructionSet::Avx2F16cFma | InstructionSet::Neon => 1,
        }
    }

    /// Whether this CPU has the set.
    fn on_this_cpu(self) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            InstructionSet::Avx512f => std::arch::is_x86_feature_detected!("avx512f"),
            #[cfg(target_arch = "x86_64")]
            InstructionSet::Avx2F16cFma => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("f16c")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            #[cfg(target_arch = "aarch64")]
            InstructionSet::Neon => true,
            _ => false,
        }
    }
}

impl SimdPath {
    /// The rank [`InstructionSet::rank`] compares with.
    pub(crate) fn rank(self) -> u8 {
        match self {
            SimdPath::Scalar => 0,
            #[cfg(target_arch = "x86_64")]
            SimdPath::Avx2(_) => 1,
            #[cfg(target_arch = "x86_64")]
            SimdPath::Avx512(_) => 2,
            #[cfg(target_arch = "aarch64")]
            SimdPath::Neon(_) => 1,
        }
    }
}

/// Whether the CPU is Intel's (CPUID vendor `GenuineIntel`): the packed kernels' prefetch distance
/// differs between vendors' cores.
#[cfg(target_arch = "x86_64")]
pub(crate) fn intel() -> bool {
    static INTEL: OnceLock<bool> = OnceLock::new();
    *INTEL.get_or_init(|| {
        let id = std::arch::x86_64::__cpuid(0);
        // The vendor string is EBX, EDX, ECX: "Genu" "ineI" "ntel".
        (id.ebx, id.edx, id.ecx) == (0x756e_6547, 0x4965_6e69, 0x6c65_746e)
    })
}

/// Whether code may use `set`: the CPU has it, and `HEARTH_SIMD` does not name a lower path this
/// CPU has.
pub(crate) fn simd_allowed(set: InstructionSet) -> bool {
    static CAP: OnceLock<Option<u8>> = OnceLock::new();
    let cap = *CAP.get_or_init(|| rank_cap(&available(), std::env::var("HEARTH_SIMD").ok().as_deref()));
    set.on_this_cpu() && cap.is_none_or(|cap| set.rank() <= cap)
}

/// The rank of the path named `wanted` among `paths`, the highest an instruction set may have;
/// none where `wanted` names none of them.
pub(crate) fn rank_cap(paths: &[SimdPath], wanted: Option<&str>) -> Option<u8> {
    let wanted = wanted?.trim();
    paths.iter().find(|p| p.name() == wanted).map(|p| p.rank())
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
