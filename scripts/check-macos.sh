#!/usr/bin/env bash
# Type-checks and lints the library crates for Apple Silicon macOS with the `metal` feature, from a
# Linux machine: candle's Metal backend (objc2) only compiles for Apple targets, so a Linux build
# cannot tell whether `--features metal` still compiles. Needs the aarch64 macOS Rust std
# (`rustup target add aarch64-apple-darwin`); no macOS SDK, since nothing is linked.
#
# The `hearth` binary and `hearth-hub` are left out: their TLS stack (ring) compiles C, which
# needs Apple's SDK. Extra arguments go to `cargo clippy`.
set -euo pipefail
cd "$(dirname "$0")/.."

target=aarch64-apple-darwin
if ! rustup target list --installed | grep -qx "$target"; then
    rustup target add "$target"
fi
cargo clippy --target "$target" \
    -p hearth-kernels -p hearth-engine -p hearth-grammar -p hearth-agent -p hearth-server \
    --lib --features hearth-engine/metal "$@" -- -D warnings
