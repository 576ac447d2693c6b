// tollgate::limiter against a mutex-guarded token bucket, a mutex-guarded
// absl::flat_hash_map of buckets, and the floor (one bare GCRA CAS step, on
// one word for one key, on a table of tollgate's size for 1M keys).
//
// Cases (each "<operation>@<implementation>", 1 and 2 threads):
//   limiter/one_key/admit     one key, the clock moves fast enough that almost
//                             every decision admits (the CAS path)
//   limiter/one_key/reject    one key that is out of tokens: every decision
//                             rejects (no write)
//   limiter/1M_keys/uniform   1M account ids, chosen uniformly (cache misses)
//   limiter/1M_keys/zipf      the same ids, Zipf s = 1.1 (what accounts do)
// Key sequences are generated before timing; see workload.hpp.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "baselines.hpp"
#include "bench_util.hpp"
#include "tollgate/limiter.hpp"
#include "workload.hpp"

namespace {

namespace tb = tollgate_bench;

constexpr std::uint64_t one_key = 0x1234567890abcdefULL;

std::unique_ptr<tollgate::limiter> make_limiter(double rate, std::uint32_t burst,
                                                std::uint64_t capacity) {
  tollgate::limiter_options o;
  o.tiers = {tollgate::tier{"bench", rate, burst}};
  o.capacity = capacity;
  auto made = tollgate::limiter::create(o);
  if (!made.ok()) tb::die(std::string(made.status().message()));
  return std::move(*made);
}

// ---------------------------------------------------------------- adapters
// prepare() runs on thread 0 before the timed loop (objects are created once
// per case and stay warm across runs); decide() is the timed work; report()
// adds counters after the loop.

struct tollgate_impl {
  double rate;
  std::uint32_t burst;
  std::uint64_t capacity;
  bool prewarm_all_keys;
  std::unique_ptr<tollgate::limiter> lim;
  std::uint64_t evictions_before = 0;

  void prepare(std::uint64_t now) {
    if (!lim) {
      lim = make_limiter(rate, burst, capacity);
      if (prewarm_all_keys) {
        for (const std::uint64_t& id : tb::account_ids())
          lim->acquire(tb::key_bytes(id), 0, 1, now);
      }
    }
    evictions_before = lim->stats().evictions;
  }
  bool decide(const std::uint64_t& key, std::uint64_t now) noexcept {
    const tollgate::limit_decision d = lim->acquire(tb::key_bytes(key), 0, 1, now);
    benchmark::DoNotOptimize(d);
    return d.allowed;
  }
  void report(benchmark::State& st, std::int64_t decisions) {
    if (!prewarm_all_keys) return;
    const tollgate::limiter_stats s = lim->stats();
    st.counters["bytes_per_key"] =
        static_cast<double>(lim->table_bytes()) / static_cast<double>(tb::key_count);
    st.counters["keys_in_table"] = static_cast<double>(s.keys);
    st.counters["evictions_per_decision"] =
        static_cast<double>(s.evictions - evictions_before) / static_cast<double>(decisions);
  }
};

struct mutex_bucket_impl {
  double rate;
  std::uint32_t burst;
  std::unique_ptr<tb::mutex_bucket> b;

  void prepare(std::uint64_t now) {
    if (!b) b = std::make_unique<tb::mutex_bucket>(rate, burst, now);
  }
  bool decide(const std::uint64_t&, std::uint64_t now) {
    const tb::bucket_decision d = b->acquire(now, 1);
    benchmark::DoNotOptimize(d);
    return d.allowed;
  }
  void report(benchmark::State&, std::int64_t) {}
};

struct cas_floor_impl {
  double rate;
  std::uint32_t burst;
  std::unique_ptr<tb::cas_gcra> g;

  void prepare(std::uint64_t) {
    if (!g) g = std::make_unique<tb::cas_gcra>(rate, burst);
  }
  bool decide(const std::uint64_t&, std::uint64_t now) noexcept {
    const bool ok = g->acquire(now);
    benchmark::DoNotOptimize(ok);
    return ok;
  }
  void report(benchmark::State&, std::int64_t) {}
};

struct mutex_map_impl {
  double rate;
  std::uint32_t burst;
  std::unique_ptr<tb::mutex_bucket_map> m;

  void prepare(std::uint64_t now) {
    if (!m) {
      m = std::make_unique<tb::mutex_bucket_map>(rate, burst, tb::key_count);
      for (const std::uint64_t id : tb::account_ids()) m->acquire(id, now, 1);
    }
  }
  bool decide(const std::uint64_t& key, std::uint64_t now) {
    const tb::bucket_decision d = m->acquire(key, now, 1);
    benchmark::DoNotOptimize(d);
    return d.allowed;
  }
  void report(benchmark::State& st, std::int64_t) {
    st.counters["bytes_per_key"] =
        static_cast<double>(m->table_bytes()) / static_cast<double>(tb::key_count);
    st.counters["keys_in_table"] = static_cast<double>(m->size());
  }
};

struct cas_floor_table_impl {
  double rate;
  std::uint32_t burst;
  std::unique_ptr<tb::cas_gcra_table> g;

  void prepare(std::uint64_t) {
    // 2^21 slots of 16 bytes: the size of tollgate's table at 1M keys.
    if (!g) g = std::make_unique<tb::cas_gcra_table>(rate, burst, 21);
  }
  bool decide(const std::uint64_t& key, std::uint64_t now) noexcept {
    const bool ok = g->acquire(key, now);
    benchmark::DoNotOptimize(ok);
    return ok;
  }
  void report(benchmark::State& st, std::int64_t) {
    st.counters["bytes_per_key"] =
        static_cast<double>(g->table_bytes()) / static_cast<double>(tb::key_count);
  }
};

// ------------------------------------------------------------------ runner

// seq == nullptr: every decision is for one_key. Otherwise thread t walks the
// pre-generated sequence from offset t * size / threads.
template <class Impl>
void run(benchmark::State& st, Impl* impl, tb::clock_cursor* cursor,
         const std::vector<std::uint64_t>* (*sequence)()) {
  const std::vector<std::uint64_t>* seq = sequence != nullptr ? sequence() : nullptr;
  const std::uint64_t base = cursor->next.load(std::memory_order_relaxed);
  if (st.thread_index() == 0) impl->prepare(base);
  tb::fake_clock clock{base};
  std::uint64_t admitted = 0;
  if (seq == nullptr) {
    const std::uint64_t key = one_key;
    for (auto _ : st) admitted += impl->decide(key, clock.tick()) ? 1 : 0;
  } else {
    const std::uint64_t* keys = seq->data();
    const std::size_t mask = seq->size() - 1;  // a power of two
    std::size_t i = static_cast<std::size_t>(st.thread_index()) *
                    (seq->size() / static_cast<std::size_t>(st.threads()));
    for (auto _ : st) {
      admitted += impl->decide(keys[i & mask], clock.tick()) ? 1 : 0;
      ++i;
    }
  }
  tb::report_decisions(st, 1, admitted);
  if (st.thread_index() == 0) {
    // Every thread ran the same number of iterations, so its clock ended here.
    cursor->next.store(clock.now + tb::clock_step_ns, std::memory_order_relaxed);
    impl->report(st, st.iterations() * st.threads());
  }
}

const std::vector<std::uint64_t>* uniform() { return &tb::uniform_sequence(); }
const std::vector<std::uint64_t>* zipf() { return &tb::zipf_sequence(); }

template <class Impl>
void add_case(const std::string& name, Impl* impl,
              const std::vector<std::uint64_t>* (*sequence)()) {
  auto* cursor = new tb::clock_cursor;  // lives as long as the process
  tb::register_1_and_2_threads(
      name, [impl, cursor, sequence](benchmark::State& st) { run(st, impl, cursor, sequence); });
}

void register_all() {
  // Objects live for the whole process; each is created on its first run.
  const std::uint64_t one_cap = 1024;
  add_case("limiter/one_key/admit@tollgate",
           new tollgate_impl{tb::admit_rate, tb::admit_burst, one_cap, false, nullptr}, nullptr);
  add_case("limiter/one_key/admit@mutex_bucket",
           new mutex_bucket_impl{tb::admit_rate, tb::admit_burst, nullptr}, nullptr);
  add_case("limiter/one_key/admit@cas_floor",
           new cas_floor_impl{tb::admit_rate, tb::admit_burst, nullptr}, nullptr);

  add_case("limiter/one_key/reject@tollgate",
           new tollgate_impl{tb::reject_rate, tb::reject_burst, one_cap, false, nullptr}, nullptr);
  add_case("limiter/one_key/reject@mutex_bucket",
           new mutex_bucket_impl{tb::reject_rate, tb::reject_burst, nullptr}, nullptr);
  add_case("limiter/one_key/reject@cas_floor",
           new cas_floor_impl{tb::reject_rate, tb::reject_burst, nullptr}, nullptr);

  add_case("limiter/1M_keys/uniform@tollgate",
           new tollgate_impl{tb::many_rate, tb::many_burst, tb::key_count, true, nullptr}, uniform);
  add_case("limiter/1M_keys/uniform@mutex_map",
           new mutex_map_impl{tb::many_rate, tb::many_burst, nullptr}, uniform);
  add_case("limiter/1M_keys/uniform@cas_floor_table",
           new cas_floor_table_impl{tb::many_rate, tb::many_burst, nullptr}, uniform);
  add_case("limiter/1M_keys/zipf@tollgate",
           new tollgate_impl{tb::many_rate, tb::many_burst, tb::key_count, true, nullptr}, zipf);
  add_case("limiter/1M_keys/zipf@mutex_map",
           new mutex_map_impl{tb::many_rate, tb::many_burst, nullptr}, zipf);
  add_case("limiter/1M_keys/zipf@cas_floor_table",
           new cas_floor_table_impl{tb::many_rate, tb::many_burst, nullptr}, zipf);
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
