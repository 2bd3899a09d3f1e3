#!/usr/bin/env bash
# Installs the RocketMQ name server and broker (rocketmq-rust 1.0.0) used by the tests and the demo,
# into a tools folder outside the repository. Idempotent: a binary already there is kept.
set -euo pipefail

FERRY_TOOLS="${FERRY_TOOLS:-$HOME/.cache/ferry/tools}"
ROCKETMQ_VERSION="1.0.0"
mkdir -p "$FERRY_TOOLS/bin"

install_crate() {
  local crate="$1" bin="$2"
  if [ -x "$FERRY_TOOLS/bin/$bin" ]; then
    echo "ferry: $bin already installed in $FERRY_TOOLS/bin"
    return
  fi
  echo "ferry: installing $crate $ROCKETMQ_VERSION (a first build takes 15-30 minutes)"
  CARGO_TARGET_DIR="$FERRY_TOOLS/target" cargo install --locked --version "$ROCKETMQ_VERSION" \
    --root "$FERRY_TOOLS" "$crate" \
    || CARGO_TARGET_DIR="$FERRY_TOOLS/target" cargo install --version "$ROCKETMQ_VERSION" \
      --root "$FERRY_TOOLS" "$crate"
}

install_crate rocketmq-namesrv rocketmq-namesrv-rust
install_crate rocketmq-broker rocketmq-broker-rust
