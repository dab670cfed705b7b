#!/usr/bin/env bash
# Rebuilds every example workload: examples/<name>/<name>.rs -> examples/<name>/<name>.wasm (std only, no
# Cargo). Uses $RUSTC if set, else the first rustc on the usual paths whose sysroot has the WASI preview1
# standard library installed (Debian's packaged rustc ships wasm32-wasi; newer toolchains call it
# wasm32-wasip1).
set -euo pipefail
cd "$(dirname "$0")"

read -r rustc target < <(bash ../scripts/wasi-rustc.sh) || true
[ -n "${rustc:-}" ] || exit 1
echo "using $("$rustc" --version) --target $target"
for src in */*.rs; do
  dir="$(dirname "$src")"
  name="$(basename "$src" .rs)"
  "$rustc" -O -C lto -C codegen-units=1 -C strip=symbols --target "$target" "$src" -o "$dir/$name.wasm"
  echo "built $dir/$name.wasm ($(wc -c <"$dir/$name.wasm") bytes)"
done
