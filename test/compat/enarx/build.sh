#!/usr/bin/env bash
# Builds the programs of Enarx's own Wasm test suite (tests/wasm/mod.rs in enarx/enarx) that need no crate
# beyond std: its four .wat modules (wat2wasm, from wabt) and the Rust programs echo, memspike,
# memory_stress_test and zerooneone of tests/crates/enarx_wasm_tests (rustc with the WASI preview1 target,
# see scripts/wasi-rustc.sh). The sources stay in Enarx's repository; only the built .wasm are kept here,
# with the commit they were built from in SOURCE.
#
#   bash test/compat/enarx/build.sh PATH/TO/ENARX-CHECKOUT
set -euo pipefail
src="${1:?usage: build.sh PATH/TO/ENARX-CHECKOUT}"
here="$(cd "$(dirname "$0")" && pwd)"
wat="$src/tests/crates/enarx_wasm_tests/wat"
bins="$src/tests/crates/enarx_wasm_tests/src/bin"
command -v wat2wasm >/dev/null || { echo "wat2wasm not found (Debian: apt-get install wabt)" >&2; exit 1; }
read -r rustc target < <(bash "$here/../../../scripts/wasi-rustc.sh")
for name in return_1 wasi_snapshot1 hello_wasi_snapshot1 no_export; do
  wat2wasm "$wat/$name.wat" -o "$here/$name.wasm"
  echo "built $name.wasm ($(wc -c <"$here/$name.wasm") bytes)"
done
for name in echo memspike memory_stress_test zerooneone; do
  "$rustc" -O -C lto -C codegen-units=1 -C strip=symbols --edition 2021 --target "$target" \
    "$bins/$name.rs" -o "$here/$name.wasm"
  echo "built $name.wasm ($(wc -c <"$here/$name.wasm") bytes)"
done
commit="$(git -C "$src" rev-parse HEAD 2>/dev/null || echo unknown)"
printf 'enarx/enarx %s tests/crates/enarx_wasm_tests\nbuilt with %s and %s\n' \
  "$commit" "$(wat2wasm --version)" "$("$rustc" --version)" >"$here/SOURCE"
