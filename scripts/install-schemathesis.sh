#!/usr/bin/env bash
# Installs schemathesis (PyPI), the REST API fuzzer the tests run against /openapi.json, into a
# tools folder outside the repository (pip --target: no virtualenv module needed). Idempotent.
set -euo pipefail

FERRY_TOOLS="${FERRY_TOOLS:-$HOME/.cache/ferry/tools}"
SCHEMATHESIS_VERSION="4.32.5"
dir="$FERRY_TOOLS/schemathesis"
stamp="$dir/.ferry-version"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$SCHEMATHESIS_VERSION" ]; then
  echo "ferry: schemathesis $SCHEMATHESIS_VERSION already installed in $dir"
  exit 0
fi
echo "ferry: installing schemathesis $SCHEMATHESIS_VERSION into $dir"
rm -rf "$dir.tmp"
PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
  --target "$dir.tmp" "schemathesis==$SCHEMATHESIS_VERSION"
rm -rf "$dir"
mv "$dir.tmp" "$dir"
echo "$SCHEMATHESIS_VERSION" > "$stamp"
