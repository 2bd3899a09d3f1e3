#!/usr/bin/env bash
# Builds a C connector: `componentize-c bindings` writes the C bindings of the world, zig's
# clang (Zig from PyPI, pinned, installed into the tools folder outside the repository)
# compiles them with the connector's *.c into a wasm32-wasi reactor module, and
# `componentize-c component` wraps that module into a component with wasmtime's preview-1
# adapter. Skipped when the inputs (the connector, wit/, this script) did not change.
# Usage: scripts/build-c-connector.sh <connector dir> <world> <out.wasm>
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
wit_dir="${FERRY_WIT_DIR:-$here/wit}"
src="$(cd "$1" && pwd)"; world="$2"; out="$3"
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac
FERRY_TOOLS="${FERRY_TOOLS:-$HOME/.cache/ferry/tools}"
ZIG_VERSION="0.15.2"
"$(dirname "$0")/pip-tool.sh" zig "ziglang==$ZIG_VERSION"
zig="$FERRY_TOOLS/zig/ziglang/zig"
cargo build --quiet --release --manifest-path "$here/Cargo.toml" -p componentize-c
componentize="${CARGO_TARGET_DIR:-$here/target}/release/componentize-c"
inputs="$( (find "$src" "$wit_dir" "$0" "$here/tools/componentize-c" -type f -print0 | sort -z | xargs -0 sha256sum; echo "$ZIG_VERSION $world") | sha256sum | cut -d' ' -f1)"
if [ -f "$out" ] && [ "$(cat "$out.inputs" 2>/dev/null)" = "$inputs" ]; then
  echo "ferry: $(basename "$out") is up to date"
  exit 0
fi
build="$(mktemp -d)"
trap 'rm -rf "$build"' EXIT
"$componentize" bindings --wit "$wit_dir" --world "$world" --out "$build"
mkdir -p "$(dirname "$out")"
# A reactor: no main(); the exports are the connector's functions. Zig's default stack is
# 16 MiB of linear memory per task; 1 MiB is Rust's default for wasm and plenty here.
"$zig" cc -target wasm32-wasi -mexec-model=reactor -O2 -Wall -Werror -Wl,-z,stack-size=1048576 -I "$build" \
  "$src"/*.c "$build"/*.c -o "$build/core.wasm"
"$componentize" component --wit "$wit_dir" --world "$world" "$build/core.wasm" -o "$out.tmp"
mv "$out.tmp" "$out"
echo "$inputs" > "$out.inputs"
