#!/usr/bin/env bash
# Side-by-side benchmarks of the tollgate Go binding and its Go peers
# (golang.org/x/time/rate, github.com/sony/gobreaker,
# github.com/julienschmidt/httprouter), printed as a markdown table of
# medians (ns/op, allocs/op) and ratios.
#
#   benchmarks/go/run.sh            # full run: -count 5, -benchtime 1s
#   benchmarks/go/run.sh --quick    # proves every benchmark runs: -count 1, -benchtime 100x
#
# Environment: COUNT and BENCHTIME override the full run's settings;
# TOLLGATE_PREFIX=<install prefix> adds <prefix>/lib/pkgconfig to
# PKG_CONFIG_PATH (otherwise pkg-config must already find tollgate). The raw
# `go test` output goes to stderr, the table to stdout. Nothing about speed is
# asserted; the exit status is non-zero when a benchmark fails or is missing.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"

count="${COUNT:-5}"
benchtime="${BENCHTIME:-1s}"
case "${1:-}" in
  --quick) count=1; benchtime=100x ;;
  "") ;;
  *) echo "usage: $0 [--quick]" >&2; exit 2 ;;
esac

if [[ -n "${TOLLGATE_PREFIX:-}" ]]; then
  export PKG_CONFIG_PATH="${TOLLGATE_PREFIX}/lib/pkgconfig${PKG_CONFIG_PATH:+:${PKG_CONFIG_PATH}}"
fi
if ! pkg-config --exists tollgate; then
  echo "run.sh: pkg-config cannot find tollgate; install it and set TOLLGATE_PREFIX or PKG_CONFIG_PATH" >&2
  exit 1
fi

raw="$(mktemp)"
trap 'rm -f "${raw}"' EXIT

echo "go test -run '^\$' -bench . -benchmem -count ${count} -benchtime ${benchtime}" >&2
go test -run '^$' -bench . -benchmem -count "${count}" -benchtime "${benchtime}" . | tee "${raw}" >&2
go run ./cmd/benchtable < "${raw}"
