#!/usr/bin/env bash
# Installs schemathesis (PyPI), the REST API fuzzer the tests run against /openapi.json, into a
# tools folder outside the repository (pip --target: no virtualenv module needed). Idempotent.
set -euo pipefail

exec "$(dirname "$0")/pip-tool.sh" schemathesis "schemathesis==4.32.5"
