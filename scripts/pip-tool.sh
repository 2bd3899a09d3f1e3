#!/usr/bin/env bash
# Installs pinned PyPI packages into $FERRY_TOOLS/<name> (outside the repository; pip --target,
# so no virtualenv module is needed). Idempotent: skipped when the same pins are installed.
# Usage: scripts/pip-tool.sh <name> <package==version>...
set -euo pipefail
name="$1"; shift
FERRY_TOOLS="${FERRY_TOOLS:-$HOME/.cache/ferry/tools}"
dir="$FERRY_TOOLS/$name"
want="$*"
if [ -f "$dir/.ferry-version" ] && [ "$(cat "$dir/.ferry-version")" = "$want" ]; then
  exit 0
fi
echo "ferry: installing $want into $dir"
rm -rf "$dir.tmp"
PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check \
  --no-warn-script-location --target "$dir.tmp" "$@"
rm -rf "$dir"; mv "$dir.tmp" "$dir"; echo "$want" > "$dir/.ferry-version"
