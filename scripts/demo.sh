#!/usr/bin/env bash
# The demo: loopback RocketMQ and Kafka (Tansu), one ferry worker, both directions:
#   Kafka topic demo-k2r --kafka-source--> RocketMQ topic demo-k2r
#   RocketMQ topic demo-r2k (fed by datagen) --kafka-sink--> Kafka topic demo-r2k
# and a file-sink that shows what reached RocketMQ. Live counts until Ctrl-C, which stops
# everything this script started. Called by `just demo` (which builds first).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
target="${CARGO_TARGET_DIR:-$HOME/.cache/ferry/target}"
demo="${FERRY_DEMO_DIR:-$HOME/.cache/ferry/demo}"
port="${FERRY_DEMO_PORT:-8082}"
rate="${FERRY_DEMO_RATE:-2000}"
kafka="127.0.0.1:${FERRY_KAFKA_PORT:-9092}"

"$here/brokers.sh" up
rm -rf "$demo" && mkdir -p "$demo/out"
cat > "$demo/connect.conf" <<CONF
workerId=demo-worker-1
storePathRootDir=$demo/store
fileRoots=$demo/out
httpPort=$port
namesrvAddr=127.0.0.1:9876
aclEnable=false
autoCreateGroupEnable=true
pluginPaths=$root/target/plugins
CONF

pids=()
cleanup() {
  echo
  echo "demo: stopping"
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  "$here/brokers.sh" down
}
trap cleanup EXIT
stopping=""
trap 'stopping=1' INT TERM

"$target/release/ferry" -c "$demo/connect.conf" > "$demo/worker.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -sf "http://127.0.0.1:$port/healthz" >/dev/null || { echo "demo: the worker did not start; see $demo/worker.log" >&2; tail -20 "$demo/worker.log" >&2; exit 1; }

urlencode() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$1"; }
create() { # the seed's own GET route
  local answer
  answer=$(curl -s "http://127.0.0.1:$port/connectors/create/$1?config=$(urlencode "$2")")
  case "$answer" in *'"success"'*) ;; *) echo "demo: creating $1 failed: $answer" >&2; exit 1 ;; esac
}
# Kafka -> RocketMQ (the seed's kafka source; Tansu needs a short session timeout, see DESIGN.md).
create kafkaSource "{\"tasks.num\":\"2\",\"kafka.topics\":\"demo-k2r\",\"kafka.bootstrap.server\":\"$kafka\",\"connector-class\":\"org.apache.rocketmq.connect.kafka.connector.KafkaSourceConnector\",\"kafka.client.session.timeout.ms\":\"6000\"}"
create rocketmqView "{\"connector-class\":\"file-sink\",\"rocketmq.topics\":\"demo-k2r\",\"file.dir\":\"$demo/out\"}"
# RocketMQ -> Kafka (the seed's sink), fed by datagen.
create rocketmqTraffic "{\"connector-class\":\"datagen\",\"datagen.topic\":\"demo-r2k\",\"datagen.rate\":\"$rate\",\"datagen.size\":\"256\"}"
create kafkaSink "{\"rocketmq.topics\":\"demo-r2k\",\"tasks.num\":\"2\",\"kafka.bootstrap.server\":\"$kafka\",\"connector-class\":\"org.apache.rocketmq.connect.rocketmq.connector.RocketMQSinkConnector\"}"
"$target/release/kafka-traffic" "$kafka" demo-k2r "$rate" &
pids+=($!)

echo "demo: Kafka demo-k2r -> RocketMQ demo-k2r, and RocketMQ demo-r2k -> Kafka demo-r2k, $rate records/s each"
echo "demo: REST on http://127.0.0.1:$port (try /getConnectors, /connectors/kafkaSink/status, /openapi.json); Ctrl-C to stop"
echo "demo: Prometheus metrics on http://127.0.0.1:$port/metrics (delivered and lag figures below come from there)"
# Sums one metric over the series of one connector, from /metrics.
metric() {
  curl -s "http://127.0.0.1:$port/metrics" | python3 -c '
import sys
name, connector = sys.argv[1], sys.argv[2]
total = 0.0
for line in sys.stdin:
    if line.startswith(name + "{") and ("connector=\"%s\"" % connector) in line:
        total += float(line.rsplit(" ", 1)[1])
print(int(total))' "$1" "$2" 2>/dev/null || echo "?"
}
while [ -z "$stopping" ]; do
  sleep 2 || true
  [ -n "$stopping" ] && break
  printf 'demo: Kafka -> RocketMQ %9s records (lag %s)   RocketMQ -> Kafka %9s records (lag %s, %s puts)\n' \
    "$(metric ferry_task_records_delivered_total kafkaSource)" "$(metric ferry_task_lag_records kafkaSource)" \
    "$(metric ferry_task_records_delivered_total kafkaSink)" "$(metric ferry_task_lag_records kafkaSink)" \
    "$(metric ferry_task_put_seconds_count kafkaSink)"
done
