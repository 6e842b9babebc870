#!/usr/bin/env bash
# Installs a CUDA 13.0 build toolchain (nvcc, headers, CUDA libraries) from PyPI wheels into a
# directory outside the repository, so `cargo build --features cuda` works on a machine without
# a system CUDA toolkit or a GPU. Idempotent: a second run only prints the environment.
#
#   eval "$(scripts/cuda-toolchain.sh)"   # then: cargo build --features cuda
#
# HEARTH_CUDA_HOME  where to install (default ~/.cache/hearth-cuda)
# CUDA_COMPUTE_CAP  GPU generation the kernels are compiled for (default 80: PTX for compute_80
#                   is JIT-compiled by the driver on every newer GPU; 90 for H100/H200 code)
#
# Only the build needs this. Running on a GPU needs the NVIDIA driver (libcuda.so.1, r580+) and the
# CUDA 13 runtime libraries on the loader path; `lib` here has the latter.
set -euo pipefail

home="${HEARTH_CUDA_HOME:-$HOME/.cache/hearth-cuda}"
venv="$home/venv"
root="$home/cuda"
stamp="$root/.complete"
compute_cap="${CUDA_COMPUTE_CAP:-80}"

# One CUDA release throughout (13.0 update 2): cudarc (through candle) reads the version from
# `nvcc --version`, and 13.0 is the oldest CUDA 13, so the PTX loads on any r580+ driver. The
# CUDA 12 wheels on PyPI carry ptxas but not the nvcc driver, so CUDA 12 cannot come from here.
packages=(
  nvidia-cuda-nvcc==13.0.88
  nvidia-cuda-crt==13.0.88
  nvidia-nvvm==13.0.88
  nvidia-cuda-runtime==13.0.96
  nvidia-cuda-cccl==13.0.85
  nvidia-cuda-nvrtc==13.0.88
  nvidia-curand==10.4.0.35
  nvidia-cublas==13.0.2.14
)

log() { echo "cuda-toolchain: $*" >&2; }

install_wheels() {
  if [[ ! -x "$venv/bin/python" ]]; then
    log "creating $venv"
    python3 -m venv "$venv"
  fi
  log "installing ${packages[*]}"
  nice -n 19 "$venv/bin/python" -m pip install --quiet "${packages[@]}" >&2
}

# The CUDA 13 wheels share one prefix, nvidia/cu13 (bin/ nvvm/ include/ lib/). A copy of it made
# of hard links (no extra space) gets what the wheels lack: unversioned library names for the
# linker, lib64/ where candle's and cudarc's builds look, and a link-time libcuda.so.
assemble_root() {
  local prefix
  prefix="$("$venv/bin/python" -c 'import nvidia, os; print(os.path.join(list(nvidia.__path__)[0], "cu13"))')"
  [[ -x "$prefix/bin/nvcc" ]] || { log "no nvcc in $prefix after install"; exit 1; }
  rm -rf "$root"
  mkdir -p "$root"
  cp -al "$prefix/." "$root/"
  ln -s lib "$root/lib64"
  local lib
  for lib in "$root"/lib/lib*.so.*; do
    local base="${lib%%.so.*}.so"
    [[ -e "$base" ]] || ln -s "$(basename "$lib")" "$base"
  done
  build_driver_stub
  touch "$stamp"
}

# The driver library (libcuda.so) belongs to the NVIDIA driver, not to any wheel, yet candle's
# cudarc links it by name. A stub exporting the driver API's functions satisfies the linker; at
# run time the real driver's libcuda.so.1 is loaded instead (the stub has that soname).
build_driver_stub() {
  local stub_dir="$root/lib/stubs"
  mkdir -p "$stub_dir"
  local src="$stub_dir/cuda_stub.c"
  {
    echo "/* Link-time stand-in for the NVIDIA driver library; never loaded at run time. */"
    # Preprocessed, so the versioned names the header maps to (cuCtxCreate_v2) are the ones seen.
    echo '#include <cuda.h>' | cc -E -I"$root/include" - \
      | grep -oE '\bCUresult\s+cu[A-Za-z0-9_]+\s*\(' \
      | sed -E 's/CUresult\s+(cu[A-Za-z0-9_]+).*/\1/' | sort -u \
      | while read -r name; do echo "int $name(void) { return 999; }"; done
  } >"$src"
  cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$stub_dir/libcuda.so" "$src"
}

if [[ ! -f "$stamp" ]]; then
  install_wheels
  assemble_root
  log "toolchain ready in $root ($("$root/bin/nvcc" --version | tail -1))"
fi

cat <<EOF
export CUDA_ROOT="$root"
export CUDA_PATH="$root"
export CUDA_HOME="$root"
export PATH="$root/bin:\$PATH"
export CUDA_COMPUTE_CAP="$compute_cap"
export LIBRARY_PATH="$root/lib:$root/lib/stubs\${LIBRARY_PATH:+:\$LIBRARY_PATH}"
EOF
