// The C ABI (libtollgate, tollgate.h) against the C++ core it wraps, called
// directly in the same process on the same workload. The ratio is what the
// ABI costs: argument checks, handle validation, conversion, the exception
// guard and a call into a shared library.
//
// Cases ("<operation>@<implementation>", one thread; all figures per decision):
//   capi/limiter_acquire/one_key              tg_limiter_acquire, one call per decision
//   capi/limiter_acquire_many/one_key         tg_limiter_acquire_many, 1000 per call
//   capi/limiter_acquire_many/1M_uniform      the same over 1M keys chosen uniformly
//   capi/breaker_acquire_record/single        tg_breaker_acquire + tg_breaker_record
//   capi/breaker_acquire_record_many          tg_breaker_acquire_many + _record_many, 1000 per call
// Batch cases are compared with 1000 single C calls and 1000 C++ calls per
// iteration on the same inputs.
#include <benchmark/benchmark.h>

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "bench_util.hpp"
#include "tollgate/breaker.hpp"
#include "tollgate/limiter.hpp"
#include "tollgate/tollgate.h"
#include "workload.hpp"

namespace {

namespace tb = tollgate_bench;

constexpr std::size_t batch = 1000;
constexpr std::uint64_t one_key = 0x1234567890abcdefULL;
constexpr std::uint64_t call_latency_ns = 1000;

// ------------------------------------------------------------ construction

tg_limiter* make_c_limiter(double rate, std::uint32_t burst, std::uint64_t capacity) {
  tg_tier t{"bench", rate, burst, 0};
  tg_limiter_options o;
  tg_limiter_options_init(&o);
  o.tiers = &t;
  o.tier_count = 1;
  o.capacity = capacity;
  tg_limiter* lim = nullptr;
  tg_error err{};
  if (tg_limiter_new(&o, &lim, &err) != TG_OK) tb::die(err.message);
  return lim;
}

std::unique_ptr<tollgate::limiter> make_cxx_limiter(double rate, std::uint32_t burst,
                                                    std::uint64_t capacity) {
  tollgate::limiter_options o;
  o.tiers = {tollgate::tier{"bench", rate, burst}};
  o.capacity = capacity;
  auto made = tollgate::limiter::create(o);
  if (!made.ok()) tb::die(std::string(made.status().message()));
  return std::move(*made);
}

tg_breaker* make_c_breaker() {
  tg_breaker_options o;
  tg_breaker_options_init(&o);
  tg_breaker* b = nullptr;
  tg_error err{};
  if (tg_breaker_new(&o, &b, &err) != TG_OK) tb::die(err.message);
  return b;
}

std::unique_ptr<tollgate::breaker> make_cxx_breaker() {
  auto made = tollgate::breaker::create(tollgate::breaker_options{});
  if (!made.ok()) tb::die(std::string(made.status().message()));
  return std::move(*made);
}

// Key offsets of a batch of 8-byte keys laid end to end: 0, 8, ..., 8000.
const std::array<std::uint32_t, batch + 1>& offsets() {
  static const auto o = [] {
    std::array<std::uint32_t, batch + 1> a{};
    for (std::size_t i = 0; i <= batch; ++i) a[i] = static_cast<std::uint32_t>(8 * i);
    return a;
  }();
  return o;
}

// A batch of 1000 copies of one_key.
const std::vector<std::uint64_t>& one_key_batch() {
  static const std::vector<std::uint64_t> v(batch, one_key);
  return v;
}

void check(int rc) {
  if (rc != TG_OK) tb::die(tg_status_str(rc));
}

// ------------------------------------------------------------- the limiter

// Lazily built objects, one per case, kept warm across runs.
struct limiter_pair {
  double rate;
  std::uint32_t burst;
  std::uint64_t capacity;
  bool prewarm_all_keys;
  tg_limiter* c = nullptr;
  std::unique_ptr<tollgate::limiter> cxx;

  // Builds the side the case uses: the C handle or the C++ object.
  void prepare(std::uint64_t now, bool c_side) {
    if (c_side && c == nullptr) {
      c = make_c_limiter(rate, burst, capacity);
      if (prewarm_all_keys) {
        tg_limit_decision d;
        for (const std::uint64_t& id : tb::account_ids()) {
          check(tg_limiter_acquire(c, &id, sizeof id, 0, 1, now, &d));
        }
      }
    }
    if (!c_side && !cxx) {
      cxx = make_cxx_limiter(rate, burst, capacity);
      if (prewarm_all_keys) {
        for (const std::uint64_t& id : tb::account_ids())
          cxx->acquire(tb::key_bytes(id), 0, 1, now);
      }
    }
  }
};

enum class lim_impl { c_single, c_many, cxx };

// Each iteration decides `per_iter` keys: keys[pos .. pos + per_iter) of the
// sequence (one_key repeated when seq is the one-key batch).
void run_limiter(benchmark::State& st, limiter_pair* p, tb::clock_cursor* cursor,
                 const std::vector<std::uint64_t>* (*sequence)(), lim_impl impl,
                 std::size_t per_iter) {
  const std::vector<std::uint64_t>& seq = *sequence();
  const std::uint64_t base = cursor->next.load(std::memory_order_relaxed);
  p->prepare(base, impl != lim_impl::cxx);
  tb::fake_clock clock{base};
  std::vector<tg_limit_decision> out(per_iter);
  const std::size_t windows = seq.size() / batch;
  std::size_t w = 0;
  std::uint64_t admitted = 0;
  for (auto _ : st) {
    const std::uint64_t* keys = seq.data() + (seq.size() == batch ? 0 : (w % windows) * batch);
    ++w;
    // A batch is decided at one instant; the clock still moves one step
    // per decision, as it does for single calls.
    switch (impl) {
      case lim_impl::c_many: {
        clock.now += tb::clock_step_ns * per_iter;
        check(tg_limiter_acquire_many(p->c, reinterpret_cast<const std::uint8_t*>(keys),
                                      offsets().data(), per_iter, nullptr, nullptr, clock.now,
                                      out.data()));
        for (std::size_t i = 0; i < per_iter; ++i)
          admitted += static_cast<std::uint64_t>(out[i].allowed);
        break;
      }
      case lim_impl::c_single:
        for (std::size_t i = 0; i < per_iter; ++i) {
          tg_limit_decision d;
          check(tg_limiter_acquire(p->c, keys + i, sizeof(std::uint64_t), 0, 1, clock.tick(), &d));
          admitted += static_cast<std::uint64_t>(d.allowed);
        }
        break;
      case lim_impl::cxx:
        for (std::size_t i = 0; i < per_iter; ++i) {
          const tollgate::limit_decision d =
              p->cxx->acquire(tb::key_bytes(keys[i]), 0, 1, clock.tick());
          benchmark::DoNotOptimize(d);
          admitted += d.allowed ? 1 : 0;
        }
        break;
    }
    benchmark::ClobberMemory();
  }
  tb::report_decisions(st, static_cast<std::int64_t>(per_iter), admitted);
  cursor->next.store(clock.now + tb::clock_step_ns, std::memory_order_relaxed);
}

const std::vector<std::uint64_t>* one_key_seq() { return &one_key_batch(); }
const std::vector<std::uint64_t>* uniform() { return &tb::uniform_sequence(); }

void add_limiter_case(const std::string& name, limiter_pair* p,
                      const std::vector<std::uint64_t>* (*sequence)(), lim_impl impl,
                      std::size_t per_iter) {
  auto* cursor = new tb::clock_cursor;
  tb::register_1_thread(
      name, [=](benchmark::State& st) { run_limiter(st, p, cursor, sequence, impl, per_iter); });
}

// ------------------------------------------------------------- the breaker

struct breaker_pair {
  tg_breaker* c = nullptr;
  std::unique_ptr<tollgate::breaker> cxx;
  void prepare(bool c_side) {
    if (c_side && c == nullptr) c = make_c_breaker();
    if (!c_side && !cxx) cxx = make_cxx_breaker();
  }
};

enum class brk_impl { c_single, c_many, cxx };

void run_breaker(benchmark::State& st, breaker_pair* p, tb::clock_cursor* cursor, brk_impl impl,
                 std::size_t per_iter) {
  const std::uint64_t base = cursor->next.load(std::memory_order_relaxed);
  p->prepare(impl != brk_impl::cxx);
  tb::fake_clock clock{base};
  std::vector<tg_breaker_permit> permits(per_iter);
  const std::vector<std::int32_t> outcomes(per_iter, TG_OUTCOME_SUCCESS);
  const std::vector<std::uint64_t> latencies(per_iter, call_latency_ns);
  std::uint64_t admitted = 0;
  for (auto _ : st) {
    switch (impl) {
      case brk_impl::c_many: {
        const std::uint64_t now = clock.now += tb::clock_step_ns * per_iter;
        check(tg_breaker_acquire_many(p->c, per_iter, now, permits.data()));
        check(tg_breaker_record_many(p->c, permits.data(), outcomes.data(), latencies.data(),
                                     per_iter, now));
        for (std::size_t i = 0; i < per_iter; ++i)
          admitted += static_cast<std::uint64_t>(permits[i].allowed);
        break;
      }
      case brk_impl::c_single:
        for (std::size_t i = 0; i < per_iter; ++i) {
          const std::uint64_t now = clock.tick();
          tg_breaker_permit pm;
          check(tg_breaker_acquire(p->c, now, &pm));
          check(tg_breaker_record(p->c, &pm, TG_OUTCOME_SUCCESS, call_latency_ns, now));
          admitted += static_cast<std::uint64_t>(pm.allowed);
        }
        break;
      case brk_impl::cxx:
        for (std::size_t i = 0; i < per_iter; ++i) {
          const std::uint64_t now = clock.tick();
          const tollgate::permit pm = p->cxx->acquire(now);
          benchmark::DoNotOptimize(pm);
          p->cxx->record(pm, tollgate::outcome::success, call_latency_ns, now);
          admitted += pm.allowed ? 1 : 0;
        }
        break;
    }
    benchmark::ClobberMemory();
  }
  tb::report_decisions(st, static_cast<std::int64_t>(per_iter), admitted);
  cursor->next.store(clock.now + tb::clock_step_ns, std::memory_order_relaxed);
}

void add_breaker_case(const std::string& name, breaker_pair* p, brk_impl impl,
                      std::size_t per_iter) {
  auto* cursor = new tb::clock_cursor;
  tb::register_1_thread(name,
                        [=](benchmark::State& st) { run_breaker(st, p, cursor, impl, per_iter); });
}

void register_all() {
  // Separate objects per case, so that no case inherits another's state.
  auto one = [] {
    return new limiter_pair{tb::admit_rate, tb::admit_burst, 1024, false, nullptr, nullptr};
  };
  add_limiter_case("capi/limiter_acquire/one_key@tollgate", one(), one_key_seq, lim_impl::c_single,
                   1);
  add_limiter_case("capi/limiter_acquire/one_key@cxx_core", one(), one_key_seq, lim_impl::cxx, 1);

  add_limiter_case("capi/limiter_acquire_many/one_key@tollgate", one(), one_key_seq,
                   lim_impl::c_many, batch);
  add_limiter_case("capi/limiter_acquire_many/one_key@capi_single", one(), one_key_seq,
                   lim_impl::c_single, batch);
  add_limiter_case("capi/limiter_acquire_many/one_key@cxx_core", one(), one_key_seq, lim_impl::cxx,
                   batch);

  auto many = [] {
    return new limiter_pair{tb::many_rate, tb::many_burst, tb::key_count, true, nullptr, nullptr};
  };
  add_limiter_case("capi/limiter_acquire_many/1M_uniform@tollgate", many(), uniform,
                   lim_impl::c_many, batch);
  add_limiter_case("capi/limiter_acquire_many/1M_uniform@capi_single", many(), uniform,
                   lim_impl::c_single, batch);
  add_limiter_case("capi/limiter_acquire_many/1M_uniform@cxx_core", many(), uniform, lim_impl::cxx,
                   batch);

  add_breaker_case("capi/breaker_acquire_record/single@tollgate", new breaker_pair,
                   brk_impl::c_single, 1);
  add_breaker_case("capi/breaker_acquire_record/single@cxx_core", new breaker_pair, brk_impl::cxx,
                   1);
  add_breaker_case("capi/breaker_acquire_record_many@tollgate", new breaker_pair, brk_impl::c_many,
                   batch);
  add_breaker_case("capi/breaker_acquire_record_many@capi_single", new breaker_pair,
                   brk_impl::c_single, batch);
  add_breaker_case("capi/breaker_acquire_record_many@cxx_core", new breaker_pair, brk_impl::cxx,
                   batch);
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
