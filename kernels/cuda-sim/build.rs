//! Compiles the CUDA kernels of `kernels/cuda/` as host C++ against the shim in `shim/` (see
//! `shim/cuda_sim.h`), with the runtime in `src/runtime.cpp`. Needs a C++20 compiler of the GCC
//! or Clang family, on Linux (the runtime switches threads with glibc's ucontext); elsewhere the
//! crate builds empty and says so.

use std::env;
use std::path::PathBuf;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(cuda_sim)");
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=shim");
    println!("cargo::rerun-if-changed=src/runtime.cpp");
    println!("cargo::rerun-if-changed=src/runtime.h");
    println!("cargo::rerun-if-changed=src/qmatmul.cpp");
    println!("cargo::rerun-if-changed=src/attention.cpp");
    println!("cargo::rerun-if-changed=src/selftest.cpp");
    println!("cargo::rerun-if-changed=../cuda");
    // The simulator runs where it is built (it is for tests); a cross build leaves it out
    // rather than ask for a cross C++ compiler.
    if env::var("TARGET").ok() != env::var("HOST").ok() {
        return;
    }
    // glibc's ucontext is what the runtime switches threads with; macOS keeps it only as a
    // deprecated interface behind _XOPEN_SOURCE, so the simulator is built on Linux alone.
    if env::var("CARGO_CFG_TARGET_OS").ok().as_deref() != Some("linux") {
        println!("cargo::warning=hearth-cuda-sim runs on Linux only; the CUDA kernels are not simulated in this build");
        return;
    }
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let shim = manifest.join("shim");
    cc::Build::new()
        .cpp(true)
        .std("c++20")
        .include(&shim)
        .include(manifest.join("src"))
        .include(manifest.join("../cuda"))
        .flag("-include")
        .flag(shim.join("cuda_sim.h").to_string_lossy().as_ref())
        // The kernels round each product separately where they say so (__fmul_rn); contraction
        // into multiply-adds would change those results.
        .flag("-ffp-contract=off")
        .flag_if_supported("-Wno-unknown-pragmas")
        .file("src/runtime.cpp")
        .file("src/qmatmul.cpp")
        .file("src/attention.cpp")
        .file("src/selftest.cpp")
        .try_compile("hearth_cuda_sim")
        .unwrap_or_else(|e| {
            panic!(
                "hearth-cuda-sim runs the CUDA kernels on the CPU for the tests and needs a C++20 compiler \
                 (g++ 11 or newer, or clang++; CXX picks another): {e}"
            )
        });
    println!("cargo::rustc-cfg=cuda_sim");
}
