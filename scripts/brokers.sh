#!/usr/bin/env bash
# Starts or stops the loopback brokers used by tests and the demo: the RocketMQ name server and
# broker, and the Kafka-protocol broker Tansu (in memory).
#   scripts/brokers.sh up     installs if missing, starts both, waits until they are ready
#   scripts/brokers.sh down   stops both (idempotent)
# State (configs, logs, store, pids) lives in $FERRY_BROKER_DIR (default ~/.cache/ferry/brokers).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
FERRY_TOOLS="${FERRY_TOOLS:-$HOME/.cache/ferry/tools}"
DIR="${FERRY_BROKER_DIR:-$HOME/.cache/ferry/brokers}"
NAMESRV_PORT="${FERRY_NAMESRV_PORT:-9876}"
BROKER_PORT="${FERRY_BROKER_PORT:-10911}"
KAFKA_PORT="${FERRY_KAFKA_PORT:-9092}"
NAMESRV_HEALTH=127.0.0.1:19876
BROKER_HEALTH=127.0.0.1:20911

stop_pid() {
  local file="$1"
  [ -f "$file" ] || return 0
  local pid; pid=$(cat "$file")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$file"
}

wait_ready() {
  local name="$1" addr="$2" port="$3" log="$4"
  for _ in $(seq 1 300); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "ferry: $name ready on 127.0.0.1:$port"
      return 0
    fi
    sleep 0.2
  done
  echo "ferry: $name did not become ready (health $addr); last log lines:" >&2
  tail -20 "$log" >&2 || true
  return 1
}

up() {
  "$here/install-brokers.sh"
  down
  # The broker refuses every write above 90 % disk use (its limit cannot be raised): say so
  # now rather than as "Broker operation failed" in the middle of a test.
  used=$(python3 -c 'import os,sys; s=os.statvfs(sys.argv[1]); print(int(100 - 100 * s.f_bavail / s.f_blocks))' "$(dirname "$DIR")" 2>/dev/null || echo 0)
  if [ "$used" -ge 85 ]; then
    echo "ferry: warning: the disk holding $DIR is $used % full; RocketMQ stops accepting messages at 90 %" >&2
  fi
  # Start empty, like Tansu (in memory): every run sees only its own topics and offsets.
  rm -rf "$DIR/store" "$DIR/namesrv"
  mkdir -p "$DIR/home/conf" "$DIR/namesrv" "$DIR/store"
  cat > "$DIR/namesrv.toml" <<TOML
rocketmqHome = "$DIR/home"
kvConfigPath = "$DIR/namesrv/kvConfig.json"
configStorePath = "$DIR/namesrv/namesrv.properties"
TOML
  cat > "$DIR/broker.toml" <<TOML
[broker]
namesrvAddr = "127.0.0.1:$NAMESRV_PORT"
brokerIp1 = "127.0.0.1"
listenPort = $BROKER_PORT
storePathRootDir = "$DIR/store"
autoCreateTopicEnable = true

[broker.brokerServerConfig]
bindAddress = "127.0.0.1"

[broker.brokerIdentity]
brokerName = "ferry-broker-a"
brokerClusterName = "FerryCluster"
brokerId = 0

[store]
storeType = "LocalFile"
brokerRole = "ASYNC_MASTER"
storePathRootDir = "$DIR/store"
haListenAddress = "127.0.0.1"
haListenPort = $((BROKER_PORT + 1))
# Small files: the test suite makes hundreds of topics of 8 queues, and each queue's first
# consume-queue file is allocated whole (5.7 MiB by default: 18 GiB for a suite run). Above 90 %
# disk use the broker refuses every write, which showed up as flaky tests.
mappedFileSizeConsumeQueue = 600000
mappedFileSizeCommitLog = 268435456
messageIndexEnable = false
TOML
  ROCKETMQ_HOME="$DIR/home" ROCKETMQ_HEALTH_BIND_ADDR=$NAMESRV_HEALTH \
    nohup "$FERRY_TOOLS/bin/rocketmq-namesrv-rust" -c "$DIR/namesrv.toml" \
    --listenPort "$NAMESRV_PORT" --bindAddress 127.0.0.1 > "$DIR/namesrv.log" 2>&1 &
  echo $! > "$DIR/namesrv.pid"
  wait_ready "name server" $NAMESRV_HEALTH "$NAMESRV_PORT" "$DIR/namesrv.log"
  # A fresh store gets a fresh log (the last one is kept as broker.log.1): appended to across
  # runs, it had grown to 3.6 GB on the disk the broker needs below 90 %.
  mv -f "$DIR/broker.log" "$DIR/broker.log.1" 2>/dev/null || true
  rocketmq_broker_up
  kafka_up
}

# The RocketMQ broker alone, on its existing store (used to restart it under traffic).
rocketmq_broker_up() {
  # At INFO the broker logs every pull request, and rocketmq-store warns about the client's
  # pull size on every lite pull: about 12 MB/s of log under the benchmarks. Warnings and
  # errors only (FERRY_BROKER_LOG overrides).
  RUST_LOG="${FERRY_BROKER_LOG:-warn,rocketmq_store::message_store::local_file_message_store=error}" \
  ROCKETMQ_HOME="$DIR/home" ROCKETMQ_HEALTH_BIND_ADDR=$BROKER_HEALTH \
    nohup "$FERRY_TOOLS/bin/rocketmq-broker-rust" -c "$DIR/broker.toml" \
    -n "127.0.0.1:$NAMESRV_PORT" >> "$DIR/broker.log" 2>&1 &
  echo $! > "$DIR/broker.pid"
  wait_ready "broker" $BROKER_HEALTH "$BROKER_PORT" "$DIR/broker.log"
}

# Tansu keeps everything in memory: a restart starts empty.
kafka_up() {
  nohup "$FERRY_TOOLS/bin/tansu" broker --listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
    --advertised-listener-url "tcp://127.0.0.1:$KAFKA_PORT" --storage-engine memory://tansu/ \
    > "$DIR/tansu.log" 2>&1 &
  echo $! > "$DIR/tansu.pid"
  wait_ready "kafka (tansu)" "-" "$KAFKA_PORT" "$DIR/tansu.log"
}

down() {
  stop_pid "$DIR/tansu.pid"
  stop_pid "$DIR/broker.pid"
  stop_pid "$DIR/namesrv.pid"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  rocketmq-broker-up) rocketmq_broker_up ;;
  rocketmq-broker-down) stop_pid "$DIR/broker.pid" ;;
  kafka-up) kafka_up ;;
  kafka-down) stop_pid "$DIR/tansu.pid" ;;
  *) echo "usage: $0 up|down|rocketmq-broker-up|rocketmq-broker-down|kafka-up|kafka-down" >&2; exit 2 ;;
esac
