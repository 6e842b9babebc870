#!/usr/bin/env bash
# Builds hearth-kernels and hearth-engine for aarch64 Linux and runs their unit tests under qemu
# user-mode emulation, so the NEON kernels and attention steps are checked against the scalar
# reference on an x86-64 machine.
#
# Needs the aarch64 Rust std (`rustup target add aarch64-unknown-linux-gnu`), a linker and qemu
# (Debian: `apt-get install gcc-aarch64-linux-gnu qemu-user`). Extra arguments go to `cargo test`.
#
# QEMU_CPU picks the emulated CPU: `max` (the default) has dotprod, so the NEON path is tested;
# `cortex-a72` has none, which checks that such a CPU falls back to the scalar products (attention
# and the gate need only base NEON) and that nothing else issues `sdot` there.
# Timings under emulation say nothing about speed on real hardware.
set -euo pipefail

export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER="${CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER:-aarch64-linux-gnu-gcc}"
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -cpu ${QEMU_CPU:-max} -L /usr/aarch64-linux-gnu"

export CC_aarch64_unknown_linux_gnu="${CC_aarch64_unknown_linux_gnu:-aarch64-linux-gnu-gcc}"

exec cargo test -p hearth-kernels -p hearth-engine --lib --target aarch64-unknown-linux-gnu "$@"
