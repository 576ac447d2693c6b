#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (-fsanitize=fuzzer,address,undefined)
# and fuzzes one of them, starting from its committed seed corpus.
#
#   scripts/fuzz.sh <target> [seconds]     e.g. scripts/fuzz.sh router 600
#
# New inputs go to build/fuzz/corpus-<target>/ (the committed corpus in
# tests/fuzz/corpus/<target>/ is only read). A crash leaves its input in
# build/fuzz/ (crash-*): add it to the committed corpus once fixed, so the
# replay test keeps it fixed. The last lines of the log give executions,
# coverage (cov) and features (ft) for the closing notes.
# Environment: FUZZ_JOBS (parallel fuzzing processes, default 1).
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:?usage: scripts/fuzz.sh <target> [seconds]}
seconds=${2:-60}
build=build/fuzz
corpus=tests/fuzz/corpus/$target
[ -d "$corpus" ] || { echo "fuzz: no corpus $corpus" >&2; exit 2; }
if [ ! -f "$build/build.ninja" ]; then
  CC=clang CXX=clang++ cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DTOLLGATE_FUZZ=ON -DTOLLGATE_BUILD_TESTS=OFF -DTOLLGATE_BUILD_BENCHMARKS=OFF \
    -DTOLLGATE_BUILD_EXAMPLES=OFF >/dev/null
fi
cmake --build "$build" -j "${TOLLGATE_JOBS:-$(nproc)}" --target "fuzz_$target"
work=$build/corpus-$target
mkdir -p "$work"
args=(-max_total_time="$seconds" -print_final_stats=1)
[ -f "tests/fuzz/$target.dict" ] && args+=(-dict="../../tests/fuzz/$target.dict")
# With more than one job libFuzzer writes each job's log to fuzz-<n>.log.
jobs=${FUZZ_JOBS:-1}
[ "$jobs" -gt 1 ] && args+=(-jobs="$jobs" -workers="$jobs")
cd "$build"
"./tests/fuzz/fuzz_$target" "${args[@]}" "corpus-$target" "../../$corpus" 2>&1 |
  tee "fuzz-$target.log" | tail -25
