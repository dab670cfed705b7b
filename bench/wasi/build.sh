#!/usr/bin/env bash
# Rebuilds the benchmark kernels: bench/wasi/<name>.rs -> bench/wasi/<name>.wasm (std only, no Cargo), and
# records the compiler, flags, sizes and SHA-256 digests in build-info.txt. Uses $RUSTC if set, else
# Debian's rustc (/usr/bin/rustc, 1.63, which ships the wasm32-wasi standard library), else the first rustc
# whose sysroot has wasm32-wasi or wasm32-wasip1. The benchmark builds the native programs itself, at run
# time, with the same compiler and flags minus the target. The wasm builds may use 128-bit SIMD (simd128, part
# of WebAssembly 2.0 and of every engine compared), as the native builds use x86-64's baseline SSE2.
set -euo pipefail
cd "$(dirname "$0")"

read -r rustc target < <(bash ../../scripts/wasi-rustc.sh) || true
[ -n "${rustc:-}" ] || exit 1
flags=(--edition 2021 -O -C codegen-units=1 -C lto -C strip=symbols -C target-feature=+simd128)
{
  echo "compiler: $("$rustc" --version)"
  echo "command: rustc ${flags[*]} --target $target NAME.rs"
  echo
  echo "| kernel | bytes | sha256 |"
  echo "|---|---|---|"
} >build-info.txt
for src in *.rs; do
  name="$(basename "$src" .rs)"
  "$rustc" "${flags[@]}" --target "$target" "$src" -o "$name.wasm"
  echo "| $name | $(wc -c <"$name.wasm") | $(sha256sum "$name.wasm" | cut -d' ' -f1) |" >>build-info.txt
  echo "built $name.wasm ($(wc -c <"$name.wasm") bytes)"
done
