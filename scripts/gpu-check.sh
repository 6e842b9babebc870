#!/usr/bin/env bash
# The CUDA checks as one prepared run for a GPU machine that has the NVIDIA driver and CUDA 13's
# libraries but no Rust toolchain (and no network): build the test binaries here, carry them
# there, run them there.
#
#   scripts/gpu-check.sh prepare   # here: builds into .gpu/ (ignored), prints its size
#   scripts/gpu-check.sh run       # there, in the repository root: runs what .gpu/ holds
#
# `prepare` needs the CUDA toolchain of scripts/cuda-toolchain.sh and builds with
# CARGO_TARGET_DIR (default /work/target-cuda, so the CPU build's target stays untouched). It
# puts in .gpu/, stripped and xz-compressed to fit the 64 MiB a device call carries: the
# hearth-kernels and hearth-engine unit-test binaries (the engine's `cuda::` tests check every
# CUDA kernel against the CPU path on generated data, so they need no model) and `hearth`.
# `prepare` also shrinks the test model and the default model (pulled if missing) to skeletons in
# .gpu/models/ (scripts/gguf-skeleton.py: the whole header and 16 rows of each tensor, 2 and 7 MB
# compressed), since neither GGUF fits in what a call carries.
# `run` unpacks them into /tmp/hearth-gpu, grows each skeleton back to a GGUF of the model's
# shapes and size (weights repeated, so it benchmarks as the model does but its text means
# nothing), and runs `hearth bench` on the GPU and on the CPU for each. A real GGUF in
# .gpu/models/ (or HEARTH_GPU_MODEL=path) is benchmarked too, and its greedy text compared. Each
# step's log goes to $OUT (or ./gpu-out); it exits non-zero if any step failed.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-}
case "$mode" in
prepare)
    if ! command -v nvcc >/dev/null; then
        echo "nvcc is not on PATH: eval \"\$(scripts/cuda-toolchain.sh)\" first" >&2
        exit 1
    fi
    export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/work/target-cuda}
    mkdir -p .gpu
    # The test binaries' names end in a hash; cargo prints them as JSON messages.
    cargo test -p hearth-kernels -p hearth-engine --features cuda --lib --no-run --message-format=json \
        | python3 -c '
import json, sys
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] == ["lib"]:
        print(m["target"]["name"], m["executable"])
' | while read -r name exe; do
        strip -o ".gpu/test-$name" "$exe"
        xz -f -6 ".gpu/test-$name"
    done
    cargo build --release --features cuda --bin hearth
    strip -o .gpu/hearth "$CARGO_TARGET_DIR/release/hearth"
    xz -f -6 .gpu/hearth
    mkdir -p .gpu/models
    for id in smollm2-135m qwen2.5-coder-1.5b; do
        # The CPU build pulls: the CUDA one needs the driver's libcuda to start.
        gguf=$(CARGO_TARGET_DIR=target cargo run --release -q --bin hearth -- pull "$id" | tail -n 1)
        scripts/gguf-skeleton.py shrink "$gguf" ".gpu/models/$id.skel"
        xz -f -6 ".gpu/models/$id.skel"
    done
    ls -l .gpu
    du -sh .gpu
    ;;
run)
    out=${OUT:-gpu-out}
    mkdir -p "$out"
    # CUDA 13's libraries where the machine's Python packages put them (nvidia-* wheels), and the
    # toolkit's, ahead of whatever the loader path already has.
    libs=$(python3 - <<'PY' 2>/dev/null || true
import glob, os
try:
    import nvidia
    roots = list(nvidia.__path__)
except ImportError:
    roots = []
dirs = set()
for root in roots:
    for so in glob.glob(os.path.join(root, "**", "lib*.so*"), recursive=True):
        dirs.add(os.path.dirname(so))
print(":".join(sorted(dirs)))
PY
)
    for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
        [ -d "$d" ] && libs="$libs:$d"
    done
    export LD_LIBRARY_PATH="${libs#:}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    bin=/tmp/hearth-gpu
    mkdir -p "$bin"
    # Python's lzma: the machine may have no xz.
    unxz_to() {
        python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$1" "$2"
    }
    for f in .gpu/*.xz; do
        [ -e "$f" ] || { echo "no binaries in .gpu/: run '$0 prepare' where Rust and nvcc are" >&2; exit 1; }
        unxz_to "$f" "$bin/$(basename "$f" .xz)"
        chmod +x "$bin/$(basename "$f" .xz)"
    done
    failed=0
    step() {
        local name=$1
        shift
        echo "== $name: $*"
        if "$@" >"$out/$name.log" 2>&1; then
            echo "   ok"
        else
            echo "   FAILED ($?)"
            failed=1
        fi
        tail -n 15 "$out/$name.log"
    }
    step nvidia-smi nvidia-smi
    step kernels "$bin/test-hearth_kernels" --test-threads 4
    step engine-cuda "$bin/test-hearth_engine" cuda:: --test-threads 1
    for skel in .gpu/models/*.skel.xz; do
        [ -e "$skel" ] || continue
        id=$(basename "$skel" .skel.xz)
        unxz_to "$skel" "$bin/$id.skel"
        # Not a step: its one line is enough, and only 8 logs come back from $OUT.
        if ! python3 scripts/gguf-skeleton.py expand "$bin/$id.skel" "$bin/$id.gguf"; then
            echo "   FAILED: expanding $id"
            failed=1
            continue
        fi
        step "bench-cuda-$id" "$bin/hearth" bench "$bin/$id.gguf" --device cuda -r 3
        step "bench-cpu-$id" "$bin/hearth" bench "$bin/$id.gguf" -t 16 -r 3
    done
    model=${HEARTH_GPU_MODEL:-$(ls .gpu/models/*.gguf 2>/dev/null | head -n 1 || true)}
    if [ -n "$model" ]; then
        step bench-cuda "$bin/hearth" bench "$model" --device cuda -r 3
        step bench-cpu "$bin/hearth" bench "$model" -t 16 -r 3
        step run-cuda "$bin/hearth" run "$model" --device cuda --raw --temp 0 -n 32 "def fibonacci(n):"
        step run-cpu "$bin/hearth" run "$model" --raw --temp 0 -n 32 "def fibonacci(n):"
    fi
    exit "$failed"
    ;;
*)
    echo "usage: $0 prepare|run" >&2
    exit 2
    ;;
esac
