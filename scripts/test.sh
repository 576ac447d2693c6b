#!/usr/bin/env bash
# Builds tollgate and runs every test suite: C++ unit tests, C ABI tests,
# ABI symbol check, install consumer, benchmark smoke runs (release); the
# same unit and C ABI tests under ASan+UBSan and under TSan; a short
# libFuzzer run of each fuzz target (their corpora are replayed by ctest in
# every build); the Python
# binding (pip install + pytest) and the Go binding (go vet + go test -race).
# Exits non-zero on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
jobs=${TOLLGATE_JOBS:-$(nproc)}
start=$(date +%s)
step() { printf '\n=== %s (%ss)\n' "$*" "$(( $(date +%s) - start ))"; }

step "dependencies"
scripts/setup.sh --all

step "format check"
scripts/format.sh --check

step "release build: unit, C ABI, ABI symbols, install consumer, benchmark smoke"
cmake --preset release >/dev/null
cmake --build --preset release -j "$jobs"
ctest --preset release -j "$jobs"
rm -rf build/release/demo-journal-smoke
build/release/examples/gateway_demo build/release/demo-journal-smoke >/dev/null

step "ASan + UBSan build: unit and C ABI tests"
cmake --preset asan >/dev/null
cmake --build --preset asan -j "$jobs"
ctest --preset asan -j "$jobs"

step "TSan build: unit (incl. concurrency) and C ABI tests"
cmake --preset tsan >/dev/null
cmake --build --preset tsan -j "$jobs"
ctest --preset tsan -j "$jobs"

step "fuzz smoke: libFuzzer build (clang) and 30 s per target"
for target in router auth journal; do
  scripts/fuzz.sh "$target" 30 >/dev/null
done

step "Python binding: pip install + pytest + benchmark smoke"
py=${PYTHON:-python3}
"$py" -m pip install -q --force-reinstall --no-deps ./bindings/python
(cd bindings/python/tests && "$py" -m pytest -q -p no:cacheprovider .)
"$py" benchmarks/python/bench_compare.py --quick >/dev/null

step "Go binding: install, go vet, go test -race, benchmark smoke"
prefix=$root/build/prefix
rm -rf "$prefix"
cmake --install build/release --prefix "$prefix" >/dev/null
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
(cd bindings/go && go vet ./... && go test -race -count=1 ./...)
(cd benchmarks/go && ./run.sh --quick >/dev/null)

step "all suites passed"
