# Ferry tasks. `just test` is the README's test command; `just demo` its demo.
set shell := ["bash", "-euo", "pipefail", "-c"]

# One target folder outside the clone, shared by every build, test run and CI run.
export CARGO_TARGET_DIR := env_var_or_default("CARGO_TARGET_DIR", home_directory() / ".cache/ferry/target")
export FERRY_PLUGIN_DIR := justfile_directory() / "target/plugins"

connectors := "datagen file-sink test-faults bench-sink kafka-source kafka-sink legacy-source sandbox-probe legacy-sink"

# Check the machine: fail at once naming what is missing; add the wasm32-wasip2 target if needed
preflight *what:
    scripts/preflight.sh {{ what }}

# Build every connector (Rust for wasm32-wasip2, Python with componentize-py, JavaScript with
# componentize-js, C with zig + componentize-c) into target/plugins/<name>.wasm
build-plugins: preflight
    cargo build --release --target wasm32-wasip2 {{ replace_regex(connectors, '(\S+)', '-p $1') }}
    mkdir -p "$FERRY_PLUGIN_DIR"
    for c in {{ connectors }}; do cp "$CARGO_TARGET_DIR/wasm32-wasip2/release/${c//-/_}.wasm" "$FERRY_PLUGIN_DIR/$c.wasm"; done
    scripts/build-python-connector.sh connectors/http-sink-py http-sink-connector "$FERRY_PLUGIN_DIR/http-sink.wasm"
    scripts/build-python-connector.sh connectors/datagen-py source-connector "$FERRY_PLUGIN_DIR/datagen-py.wasm"
    scripts/build-python-connector.sh connectors/bench-sink-py sink-connector "$FERRY_PLUGIN_DIR/bench-sink-py.wasm"
    scripts/build-js-connector.sh connectors/http-source-js http-source-connector "$FERRY_PLUGIN_DIR/http-source.wasm"
    scripts/build-js-connector.sh connectors/datagen-js source-connector "$FERRY_PLUGIN_DIR/datagen-js.wasm"
    scripts/build-js-connector.sh connectors/bench-sink-js sink-connector "$FERRY_PLUGIN_DIR/bench-sink-js.wasm"
    scripts/build-c-connector.sh connectors/datagen-c source-connector "$FERRY_PLUGIN_DIR/datagen-c.wasm"
    scripts/build-c-connector.sh connectors/bench-sink-c sink-connector "$FERRY_PLUGIN_DIR/bench-sink-c.wasm"

# Build the worker binary
build: preflight
    cargo build --release -p ferry -p ferry-bench

# Start the loopback RocketMQ name server and broker (installs them when missing)
brokers-up:
    scripts/brokers.sh up

# Stop the brokers
brokers-down:
    scripts/brokers.sh down

# Everything: install what is missing, build, start brokers, run all tests, stop brokers
test: build-plugins
    #!/usr/bin/env bash
    set -euo pipefail
    scripts/install-brokers.sh
    scripts/install-schemathesis.sh
    cargo build --release -p ferry -p ferry-bench
    scripts/brokers.sh up
    trap 'scripts/brokers.sh down' EXIT
    # Files the connectors of earlier runs wrote (a failed test keeps its worker folder too).
    rm -rf "${TMPDIR:-/tmp}/ferry-test-files"
    cargo test --release -- --test-threads 2

# Benchmarks (see BENCHMARKS.md): the WebAssembly boundary, then throughput against a native copier
bench: build-plugins build
    #!/usr/bin/env bash
    set -euo pipefail
    "$CARGO_TARGET_DIR/release/wasm-boundary"
    scripts/brokers.sh up
    trap 'scripts/brokers.sh down' EXIT
    "$CARGO_TARGET_DIR/release/throughput"
    "$CARGO_TARGET_DIR/release/cluster"
    "$CARGO_TARGET_DIR/release/scale"
    "$CARGO_TARGET_DIR/release/http-connectors"

# The demo: brokers, a worker, datagen -> RocketMQ -> file-sink with live counts (Ctrl-C stops)
demo: (preflight "demo") build-plugins build
    scripts/demo.sh
