#!/usr/bin/env bash
# Builds tollgate (release) and runs the order-gateway demo, which writes a
# compliance journal; then audits that journal with tollgate-audit as a
# compliance officer would: verify (chain, CRCs, signatures, with the
# host's public key pinned), a few records as JSON, and a replay of every
# recorded decision.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cmake --preset release >/dev/null
cmake --build --preset release --target gateway_demo tollgate_audit
journal=build/release/demo-journal
rm -rf "$journal"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
build/release/examples/gateway_demo "$journal" | tee "$out"
key=$(sed -n 's/^journal public key //p' "$out")
audit=build/release/tools/tollgate-audit
echo
echo "\$ tollgate-audit verify --public-key $key $journal"
"$audit" verify --public-key "$key" "$journal"
echo
echo "\$ tollgate-audit dump --kind breaker_transition $journal | head -n 2"
"$audit" dump --kind breaker_transition "$journal" | head -n 2
echo
echo "\$ tollgate-audit replay $journal"
"$audit" replay "$journal"
