#!/usr/bin/env bash
# The demo: loopback RocketMQ, one ferry worker, datagen -> RocketMQ -> file-sink, live counts.
# Ctrl-C stops everything this script started. Called by `just demo` (which builds first).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
target="${CARGO_TARGET_DIR:-$HOME/.cache/ferry/target}"
demo="${FERRY_DEMO_DIR:-$HOME/.cache/ferry/demo}"
port="${FERRY_DEMO_PORT:-8082}"
rate="${FERRY_DEMO_RATE:-5000}"

"$here/brokers.sh" up
rm -rf "$demo" && mkdir -p "$demo/out"
cat > "$demo/connect.conf" <<CONF
workerId=demo-worker-1
storePathRootDir=$demo/store
httpPort=$port
namesrvAddr=127.0.0.1:9876
aclEnable=false
autoCreateGroupEnable=true
pluginPaths=$root/target/plugins
CONF

worker_pid=""
cleanup() {
  echo
  echo "demo: stopping"
  [ -n "$worker_pid" ] && kill "$worker_pid" 2>/dev/null && wait "$worker_pid" 2>/dev/null || true
  "$here/brokers.sh" down
}
trap cleanup EXIT
trap 'exit 0' INT TERM

"$target/release/ferry" -c "$demo/connect.conf" > "$demo/worker.log" 2>&1 &
worker_pid=$!
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  kill -0 "$worker_pid" 2>/dev/null || { echo "demo: the worker exited; see $demo/worker.log" >&2; tail -20 "$demo/worker.log" >&2; exit 1; }
  sleep 0.1
done

urlencode() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$1"; }
create() { # the seed's own GET route
  curl -sf "http://127.0.0.1:$port/connectors/create/$1?config=$(urlencode "$2")" >/dev/null \
    || { echo "demo: creating $1 failed:"; curl -s "http://127.0.0.1:$port/connectors/create/$1?config=$(urlencode "$2")"; echo; exit 1; }
}
create demoSource "{\"connector-class\":\"datagen\",\"datagen.topic\":\"ferry-demo\",\"datagen.rate\":\"$rate\",\"datagen.size\":\"1024\"}"
create demoSink "{\"connector-class\":\"file-sink\",\"rocketmq.topics\":\"ferry-demo\",\"file.dir\":\"$demo/out\"}"

echo "demo: datagen -> RocketMQ topic ferry-demo -> file-sink ($demo/out), $rate records/s"
echo "demo: REST on http://127.0.0.1:$port (try /getConnectors, /connectors/demoSink/status); Ctrl-C to stop"
delivered() { curl -s "http://127.0.0.1:$port/connectors/$1/status" | python3 -c 'import sys, json; print(sum(t.get("delivered", 0) for t in json.load(sys.stdin)["tasks"]))' 2>/dev/null || echo "?"; }
while true; do
  sleep 1
  lines=$(cat "$demo"/out/*.jsonl 2>/dev/null | wc -l)
  printf 'demo: into RocketMQ %10s   out of RocketMQ %10s   lines in files %10s\n' "$(delivered demoSource)" "$(delivered demoSink)" "$lines"
done
