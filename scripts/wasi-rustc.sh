#!/usr/bin/env bash
# Prints "RUSTC TARGET": $RUSTC if set, else the first of Debian's rustc (/usr/bin/rustc, 1.63, which ships the
# wasm32-wasi standard library) and the rustc on PATH whose sysroot has the WASI preview1 standard library
# (wasm32-wasi, or wasm32-wasip1 in newer toolchains). Used by examples/build.sh and bench/wasi/build.sh.
set -euo pipefail
for rc in ${RUSTC:-} /usr/bin/rustc rustc; do
  command -v "$rc" >/dev/null 2>&1 || continue
  sysroot="$("$rc" --print sysroot)"
  for target in wasm32-wasi wasm32-wasip1; do
    if [ -d "$sysroot/lib/rustlib/$target/lib" ]; then
      echo "$rc $target"
      exit 0
    fi
  done
done
echo "no rustc with the wasm32-wasi (or wasm32-wasip1) target found; set RUSTC" >&2
exit 1
