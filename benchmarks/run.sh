#!/usr/bin/env bash
# Runs tollgate's micro-benchmarks side by side with their baselines and
# prints markdown tables (ns per decision, ratios, callgrind instruction
# counts).
#
#   benchmarks/run.sh [--update-readme]
#
# Builds the benchmark targets with the release preset's settings if needed,
# in their own binary directory (build/bench, configured with
# `cmake --preset release -B build/bench` and the test suites off, so that
# work in progress elsewhere in the tree cannot stop a benchmark run; -j1: the
# build machines have two cores), then runs each benchmark binary once with
# REPS (default 5) repetitions of every case, interleaved at random so that
# tollgate and baseline repetitions alternate within one process. Medians of
# each side and the median of per-repetition ratios are reported. Then
# callgrind counts instructions per decision with callgrind_driver
# (N = CG_N, default 1e6, minus N = 0).
#
# Environment: TIMING_SAMPLES (auth_timing samples per class, default 200000),
# PARTS ("bench callgrind" by default; either alone reruns that
# part and reports with the other part's last results), REPS, CG_N, MIN_TIME
# (seconds per repetition, default 0.5),
# FILTER (a --benchmark_filter regex, default all), RESULTS (output
# directory, default build/bench/benchmark-results).
# --update-readme rewrites the tables between the results markers in
# benchmarks/README.md.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
build="$top/build/bench"
reps=${REPS:-5}
cg_n=${CG_N:-1000000}
min_time=${MIN_TIME:-0.5}
filter=${FILTER:-.}
results=${RESULTS:-$build/benchmark-results}
parts=${PARTS:-bench callgrind}
update_readme=0
for arg in "$@"; do
  case "$arg" in
    --update-readme) update_readme=1 ;;
    *) echo "usage: $0 [--update-readme]" >&2; exit 2 ;;
  esac
done

cd "$top"
if [ ! -f "$build/build.ninja" ]; then
  cmake --preset release -B "$build" -DTOLLGATE_BUILD_TESTS=OFF -DTOLLGATE_BUILD_EXAMPLES=OFF >&2
fi
cmake --build "$build" -j1 --target limiter_bench breaker_bench capi_bench router_bench price_cache_bench \
  risk_bench auth_bench auth_timing callgrind_driver >&2
mkdir -p "$results"

{
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "cpu: $(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1), $(nproc) CPUs"
  echo "compiler: $(g++ --version | head -1)"
  echo "google benchmark: $(dpkg-query -W -f='${Version}' libbenchmark-dev 2>/dev/null || echo unknown)"
  dirty=$(git -C "$top" status --porcelain -- include lib 2>/dev/null | awk '{print $2}' | tr '\n' ' ')
  echo "code: $(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo unknown)${dirty:+ with uncommitted changes to: $dirty}"
  echo "flags: $(sed -n 's/^CMAKE_CXX_FLAGS_RELEASE:STRING=//p' "$build/CMakeCache.txt") -mcx16"
  echo "command: benchmarks/run.sh (REPS=$reps MIN_TIME=$min_time CG_N=$cg_n)"
} | tee "$results/environment.txt" >&2

for b in limiter breaker capi router price_cache risk auth; do
  [[ " $parts " == *" bench "* ]] || break
  echo "== ${b}_bench" >&2
  "$build/benchmarks/${b}_bench" \
    --benchmark_filter="$filter" \
    --benchmark_repetitions="$reps" \
    --benchmark_enable_random_interleaving=true \
    --benchmark_min_time="$min_time" \
    --benchmark_display_aggregates_only=true \
    --benchmark_out="$results/$b.json" --benchmark_out_format=json >&2
done

# Timing leakage of signature comparison (Welch t-test, dudect style).
if [[ " $parts " == *" bench "* ]]; then
  echo "== auth_timing" >&2
  "$build/benchmarks/auth_timing" "${TIMING_SAMPLES:-200000}" | tee "$results/auth_timing.txt" >&2
fi

# Instructions per decision: the same driver run with N and with 0 decisions.
if [[ " $parts " != *" callgrind "* ]]; then
  :
elif command -v valgrind >/dev/null; then
  : >"$results/callgrind.tsv"
  for kind in limiter_one_key limiter_one_key_reject cas_floor mutex_bucket \
              limiter_1m_uniform mutex_map_1m_uniform breaker_closed breaker_bulkhead \
              mutex_breaker mutex_breaker_bulkhead capi_limiter capi_breaker \
              route_200_param route_200_static r3_200_param r3_200_static \
              price_get mutex_price_get price_tick risk_stateless mutex_risk_stateless \
              risk_full mutex_risk_full; do
    for n in 0 "$cg_n"; do
      out="$results/callgrind.$kind.$n.out"
      valgrind --tool=callgrind --callgrind-out-file="$out" \
        "$build/benchmarks/callgrind_driver" "$kind" "$n" >/dev/null 2>"$results/callgrind.$kind.$n.log"
      ir=$(awk '/^(summary|totals):/ {print $2; exit}' "$out")
      printf '%s\t%s\t%s\n' "$kind" "$n" "$ir" >>"$results/callgrind.tsv"
    done
    echo "callgrind: $kind done" >&2
  done
else
  echo "valgrind not found: no instruction counts" >&2
fi

args=("$results")
[ "$update_readme" = 1 ] && args+=(--readme "$here/README.md")
python3 "$here/report.py" "${args[@]}"
