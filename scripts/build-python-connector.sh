#!/usr/bin/env bash
# Builds a Python connector with componentize-py, installed from PyPI into the tools folder
# outside the repository (pinned version, idempotent). Skips the build when the inputs (the
# connector, sdk/python, wit/) did not change since the last one: componentize-py's output is
# not byte-reproducible, so a rebuild would change the plugin's sha for nothing.
# Usage: scripts/build-python-connector.sh <connector dir> <world> <out.wasm>
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
# A project made by `ferry new` carries its own copies of the WIT and the SDK.
wit_dir="${FERRY_WIT_DIR:-$here/wit}"
sdk_dir="${FERRY_SDK_DIR:-$here/sdk/python}"
src="$(cd "$1" && pwd)"; world="$2"; out="$3"
FERRY_TOOLS="${FERRY_TOOLS:-$HOME/.cache/ferry/tools}"
VERSION="0.25.1"
dir="$FERRY_TOOLS/componentize-py"
"$(dirname "$0")/pip-tool.sh" componentize-py "componentize-py==$VERSION"
inputs="$( (find "$src" "$sdk_dir" "$wit_dir" "$0" -type f ! -path '*__pycache__*' -print0 | sort -z | xargs -0 sha256sum; echo "$VERSION $world") | sha256sum | cut -d' ' -f1)"
if [ -f "$out" ] && [ "$(cat "$out.inputs" 2>/dev/null)" = "$inputs" ]; then
  echo "ferry: $(basename "$out") is up to date"
  exit 0
fi
mkdir -p "$(dirname "$out")"
cd "$src"
PYTHONPATH="$dir" PYTHONDONTWRITEBYTECODE=1 python3 "$dir/bin/componentize-py" -d "$wit_dir" -w "$world" componentize \
  -p "$src" -p "$sdk_dir" app -o "$out.tmp"
mv "$out.tmp" "$out"
echo "$inputs" > "$out.inputs"
