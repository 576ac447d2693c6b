// tollgate::breaker against a count-window breaker under a std::mutex.
//
// Cases (each "<operation>@<implementation>", 1 and 2 threads):
//   breaker/closed/acquire_record    acquire + record(success) on a closed breaker
//   breaker/open/acquire             acquire on an open breaker (the rejection path)
//   breaker/bulkhead/acquire_record  as closed, with a bulkhead (max 1000 in flight)
// Both sides use a count window of 100 calls, minimum 20 calls, 50% failure
// threshold, and the same fake clock; every call reports 1 us of latency.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <memory>
#include <string>

#include "baselines.hpp"
#include "bench_util.hpp"
#include "tollgate/breaker.hpp"
#include "workload.hpp"

namespace {

namespace tb = tollgate_bench;

constexpr std::uint64_t call_latency_ns = 1000;
// Long enough that an opened breaker stays open for the whole process.
constexpr std::uint64_t open_forever_ns = std::uint64_t{1} << 61;

enum class mode { closed, open, bulkhead };

tollgate::breaker_options tollgate_options(mode m) {
  tollgate::breaker_options o;  // count window 100, minimum 20, 50%
  o.max_open_ns = std::uint64_t{1} << 62;
  if (m == mode::open) o.open_ns = open_forever_ns;
  if (m == mode::bulkhead) o.max_in_flight = 1000;
  return o;
}

tb::mutex_breaker::options baseline_options(mode m) {
  tb::mutex_breaker::options o;
  if (m == mode::open) o.open_ns = open_forever_ns;
  if (m == mode::bulkhead) o.max_in_flight = 1000;
  return o;
}

struct tollgate_impl {
  mode m;
  std::unique_ptr<tollgate::breaker> b;

  void prepare(std::uint64_t now) {
    if (b) return;
    auto made = tollgate::breaker::create(tollgate_options(m));
    if (!made.ok()) tb::die(std::string(made.status().message()));
    b = std::move(*made);
    if (m == mode::open) b->transition(tollgate::breaker_state::open, now);
  }
  bool decide(std::uint64_t now) noexcept {
    const tollgate::permit p = b->acquire(now);
    benchmark::DoNotOptimize(p);
    if (m != mode::open) b->record(p, tollgate::outcome::success, call_latency_ns, now);
    return p.allowed;
  }
};

struct mutex_breaker_impl {
  mode m;
  std::unique_ptr<tb::mutex_breaker> b;

  void prepare(std::uint64_t now) {
    if (b) return;
    b = std::make_unique<tb::mutex_breaker>(baseline_options(m));
    if (m == mode::open) b->force_open(now);
  }
  bool decide(std::uint64_t now) {
    const tb::mutex_breaker::permit p = b->acquire(now);
    benchmark::DoNotOptimize(p);
    if (m != mode::open) b->record(p, false, call_latency_ns, now);
    return p.allowed;
  }
};

template <class Impl>
void run(benchmark::State& st, Impl* impl, tb::clock_cursor* cursor) {
  const std::uint64_t base = cursor->next.load(std::memory_order_relaxed);
  if (st.thread_index() == 0) impl->prepare(base);
  tb::fake_clock clock{base};
  std::uint64_t admitted = 0;
  for (auto _ : st) admitted += impl->decide(clock.tick()) ? 1 : 0;
  tb::report_decisions(st, 1, admitted);
  if (st.thread_index() == 0) {
    cursor->next.store(clock.now + tb::clock_step_ns, std::memory_order_relaxed);
  }
}

template <class Impl>
void add_case(const std::string& name, Impl* impl) {
  auto* cursor = new tb::clock_cursor;  // lives as long as the process
  tb::register_1_and_2_threads(name,
                               [impl, cursor](benchmark::State& st) { run(st, impl, cursor); });
}

void register_all() {
  add_case("breaker/closed/acquire_record@tollgate", new tollgate_impl{mode::closed, nullptr});
  add_case("breaker/closed/acquire_record@mutex_breaker",
           new mutex_breaker_impl{mode::closed, nullptr});
  add_case("breaker/open/acquire@tollgate", new tollgate_impl{mode::open, nullptr});
  add_case("breaker/open/acquire@mutex_breaker", new mutex_breaker_impl{mode::open, nullptr});
  add_case("breaker/bulkhead/acquire_record@tollgate", new tollgate_impl{mode::bulkhead, nullptr});
  add_case("breaker/bulkhead/acquire_record@mutex_breaker",
           new mutex_breaker_impl{mode::bulkhead, nullptr});
}

}  // namespace

int main(int argc, char** argv) {
  register_all();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
