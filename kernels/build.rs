//! With the `cuda` feature, compiles every `cuda/*.cu` to PTX in `OUT_DIR`, embedded by
//! `src/cuda/ptx.rs`. Without it, does nothing: a CPU build needs no CUDA toolkit.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const TOOLCHAIN_HINT: &str = "install one with `eval \"$(scripts/cuda-toolchain.sh)\"` (CUDA 13.0 from PyPI, no GPU needed), \
     or put a CUDA toolkit's nvcc on PATH (or set NVCC or CUDA_ROOT)";

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    if env::var_os("CARGO_FEATURE_CUDA").is_none() {
        return;
    }
    println!("cargo::rerun-if-changed=cuda");
    for var in ["NVCC", "CUDA_ROOT", "CUDA_PATH", "CUDA_HOME", "CUDA_COMPUTE_CAP", "PATH"] {
        println!("cargo::rerun-if-env-changed={var}");
    }
    if let Err(message) = compile_kernels() {
        panic!("hearth-kernels (feature `cuda`): {message}");
    }
}

fn compile_kernels() -> Result<(), String> {
    let nvcc = find_nvcc().ok_or_else(|| format!("nvcc not found; {TOOLCHAIN_HINT}"))?;
    let arch = compute_arch()?;
    let out_dir = PathBuf::from(env::var("OUT_DIR").map_err(|e| format!("OUT_DIR: {e}"))?);
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").map_err(|e| format!("CARGO_MANIFEST_DIR: {e}"))?);
    let src_dir = manifest.join("cuda");
    let mut sources: Vec<PathBuf> = std::fs::read_dir(&src_dir)
        .map_err(|e| format!("reading {}: {e}", src_dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|ext| ext == "cu"))
        .collect();
    sources.sort();
    for src in &sources {
        let stem = src.file_stem().and_then(|s| s.to_str()).ok_or_else(|| format!("bad name {}", src.display()))?;
        let ptx = out_dir.join(format!("{stem}.ptx"));
        compile(&nvcc, &arch, src, &ptx)?;
    }
    Ok(())
}

fn compile(nvcc: &Path, arch: &str, src: &Path, ptx: &Path) -> Result<(), String> {
    let output = Command::new(nvcc)
        .args(["-ptx", "-O3", "-std=c++17"])
        .arg(format!("-arch={arch}"))
        .arg("-o")
        .arg(ptx)
        .arg(src)
        .output()
        .map_err(|e| format!("running {}: {e}; {TOOLCHAIN_HINT}", nvcc.display()))?;
    if !output.status.success() {
        return Err(format!(
            "nvcc failed on {}:\n{}{}",
            src.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(())
}

/// `NVCC`, then `nvcc` on `PATH`, then `bin/nvcc` under `CUDA_ROOT`, `CUDA_PATH` or `CUDA_HOME`.
fn find_nvcc() -> Option<PathBuf> {
    if let Some(nvcc) = env::var_os("NVCC").map(PathBuf::from).filter(|p| p.is_file()) {
        return Some(nvcc);
    }
    let on_path = env::var_os("PATH")
        .into_iter()
        .flat_map(|path| env::split_paths(&path).collect::<Vec<_>>())
        .map(|dir| dir.join("nvcc"));
    let under_roots = ["CUDA_ROOT", "CUDA_PATH", "CUDA_HOME"]
        .into_iter()
        .filter_map(env::var_os)
        .map(|root| PathBuf::from(root).join("bin").join("nvcc"));
    on_path.chain(under_roots).find(|p| p.is_file())
}

/// The PTX target: `compute_XY` from `CUDA_COMPUTE_CAP` (`80`, `8.0`, `90`), 80 when unset. PTX
/// is compiled for the GPU at load time by the driver, so compute_80 runs on Ampere and newer.
fn compute_arch() -> Result<String, String> {
    let Ok(cap) = env::var("CUDA_COMPUTE_CAP") else { return Ok("compute_80".to_string()) };
    let digits: String = cap.trim().trim_start_matches("sm_").chars().filter(|c| *c != '.').collect();
    match digits.parse::<u32>() {
        Ok(n) if (50..=200).contains(&n) => Ok(format!("compute_{n}")),
        _ => Err(format!("CUDA_COMPUTE_CAP={cap:?} is not a compute capability such as 80 or 9.0")),
    }
}
