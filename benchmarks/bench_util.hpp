// Google Benchmark plumbing shared by the *_bench.cpp files.
//
// Naming: every case is registered as "<operation>@<implementation>", so that
// run.sh can pair tollgate with its baselines on the same operation. Google
// Benchmark appends "/threads:N" and, for multi-threaded cases, "/real_time".
//
// Time: one-thread cases report CPU time per decision. Two-thread cases use
// real time, which Google Benchmark divides by the decisions of both threads:
// the figure is wall time per decision of the pair (the inverse of their
// combined throughput), and it counts the time a thread sleeps on a mutex.
#pragma once

#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>

#include "workload.hpp"

namespace tollgate_bench {

// Where the next run's fake clocks start: runs of a case reuse its (warm)
// objects, so time must keep moving forward from one run to the next.
struct clock_cursor {
  std::atomic<std::uint64_t> next{clock_start_ns};
};

// Registers fn for 1 thread (CPU time) and for 2 threads (real time).
template <class Fn>
void register_1_and_2_threads(const std::string& name, Fn fn) {
  benchmark::RegisterBenchmark(name.c_str(), fn)->Threads(1);
  benchmark::RegisterBenchmark(name.c_str(), fn)->Threads(2)->UseRealTime();
}

template <class Fn>
void register_1_thread(const std::string& name, Fn fn) {
  benchmark::RegisterBenchmark(name.c_str(), fn)->Threads(1);
}

[[noreturn]] inline void die(const std::string& what) {
  std::fprintf(stderr, "benchmark setup failed: %s\n", what.c_str());
  std::abort();
}

// Counters every case reports: decisions per second (so that run.sh derives
// ns per decision the same way for single calls and batches) and the share
// of decisions that were admissions (averaged over threads).
inline void report_decisions(benchmark::State& st, std::int64_t decisions_per_iteration,
                             std::uint64_t admitted) {
  st.SetItemsProcessed(st.iterations() * decisions_per_iteration);
  const double total = static_cast<double>(st.iterations() * decisions_per_iteration);
  st.counters["admitted"] = benchmark::Counter(
      total > 0 ? static_cast<double>(admitted) / total : 0.0, benchmark::Counter::kAvgThreads);
}

}  // namespace tollgate_bench
