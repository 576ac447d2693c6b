#!/usr/bin/env bash
# Builds tollgate (release) and runs the order-gateway demo.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cmake --preset release >/dev/null
cmake --build --preset release --target gateway_demo
exec build/release/examples/gateway_demo
