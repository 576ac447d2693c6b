// tollgate::risk_checker against a mutex-guarded implementation of the same
// rules over absl::flat_hash_map (the way such checks are commonly written).
//
// Workload: 1000 instruments ("SYM0000".."SYM0999") with reference prices
// around 100.0, 64 accounts, a ring of 4096 orders (account, instrument,
// client order id, quantity 1..100, limit price within 1% of the reference).
// The clock advances 1 us per order; every order passes every check.
//   risk/check/stateless     kill switches, fields, max quantity, reference
//                            price lookup, 5% collar, max notional
//   risk/check/full          the same plus duplicate detection (1 ms window;
//                            an id comes back 4.096 ms later, after its
//                            window ended) and per-account notional and
//                            order count per 1 s period
//   risk/mixed/1w1r          two threads: thread 0 ticks prices (the feed,
//                            inside the cache threshold), thread 1 runs full
//                            checks (real time per operation of the pair)
// The baseline (@mutex_model) keeps the reference prices, the account
// periods and the remembered ids in absl::flat_hash_maps keyed by string
// under one std::mutex, with the same order of checks and the same limits.
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "bench_util.hpp"
#include "risk_workload.hpp"

namespace {

namespace tb = tollgate_bench;

using namespace tollgate_bench::risk;

// One object and clock per implementation and mode, shared by the runs of a
// case so that time (periods, duplicate windows, feed sequences) keeps
// moving forward from one run to the next.
template <class Impl, bool Full>
struct state {
  Impl impl{Full};
  std::atomic<std::uint64_t> clock{1'000'000'000};
  std::vector<std::uint64_t> seq = std::vector<std::uint64_t>(instruments, 0);
};

template <class Impl, bool Full>
state<Impl, Full>& shared() {
  static state<Impl, Full> s;
  return s;
}

template <class Impl, bool Full>
void bm_check(benchmark::State& st) {
  auto& s = shared<Impl, Full>();
  const auto& w = work();
  std::uint64_t now = s.clock.load();
  std::size_t i = 0;
  std::uint64_t allowed = 0;
  for (auto _ : st) {
    now += step_ns;
    allowed += s.impl.check(w.orders[i++ & (ring - 1)], now);
  }
  s.clock.store(now + dup_window_ns);
  if (allowed != static_cast<std::uint64_t>(st.iterations())) st.SkipWithError("an order failed");
  tb::report_decisions(st, 1, allowed);
}

// Thread 0 is the feed, thread 1 checks orders.
template <class Impl>
void bm_mixed(benchmark::State& st) {
  auto& s = shared<Impl, true>();
  const auto& w = work();
  const bool feed = st.thread_index() == 0;
  std::uint64_t now = s.clock.load();
  std::size_t i = feed ? 977 : 0;
  std::uint64_t ok = 0;
  for (auto _ : st) {
    now += step_ns;
    const order_t& o = w.orders[i++ & (ring - 1)];
    if (feed) {
      const std::uint64_t q = ++s.seq[o.instrument];
      ok += s.impl.tick(o.instrument, tick_price(q), q, now);
    } else {
      ok += s.impl.check(o, now);
    }
  }
  if (!feed) s.clock.store(now + dup_window_ns);
  tb::report_decisions(st, 1, ok);
}

const int registered = [] {
  tb::register_1_thread("risk/check/stateless@tollgate", bm_check<tollgate_impl, false>);
  tb::register_1_thread("risk/check/stateless@mutex_model", bm_check<mutex_impl, false>);
  tb::register_1_thread("risk/check/full@tollgate", bm_check<tollgate_impl, true>);
  tb::register_1_thread("risk/check/full@mutex_model", bm_check<mutex_impl, true>);
  benchmark::RegisterBenchmark("risk/mixed/1w1r@tollgate", bm_mixed<tollgate_impl>)
      ->Threads(2)
      ->UseRealTime();
  benchmark::RegisterBenchmark("risk/mixed/1w1r@mutex_model", bm_mixed<mutex_impl>)
      ->Threads(2)
      ->UseRealTime();
  return 0;
}();

}  // namespace

BENCHMARK_MAIN();
