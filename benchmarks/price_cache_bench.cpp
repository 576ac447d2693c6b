// tollgate::price_cache against absl::flat_hash_map under a std::mutex doing
// the same work.
//
// Workload: 1000 instruments ("SYM0000".."SYM0999"), each cached with a
// 32-byte payload; requests cycle through a shuffled ring of 4096 keys.
//   price_cache/get/hit            a read of a cached instrument: price,
//                                  sequence, age check and the payload copied out
//   price_cache/on_price/kept      a tick within the threshold and in
//                                  sequence: sequence check, move check, update
//   price_cache/mixed/1w1r         two threads: thread 0 ticks, thread 1 reads
//                                  (real time per operation of the pair)
// The baseline stores the same entry (price, threshold, last sequence,
// cached-at time, payload) in an absl::flat_hash_map<std::string, entry>
// and takes the mutex for every read and tick.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "bench_util.hpp"
#include "tollgate/price_cache.hpp"

namespace {

namespace tb = tollgate_bench;

constexpr std::size_t instruments = 1000;
constexpr std::size_t ring = 4096;
constexpr std::size_t payload_bytes = 32;

struct keys_t {
  std::vector<std::string> names;
  std::vector<std::uint32_t> order;  // ring of instrument indices
  keys_t() {
    for (std::size_t i = 0; i < instruments; ++i) {
      char b[16];
      std::snprintf(b, sizeof b, "SYM%04zu", i);
      names.emplace_back(b);
    }
    std::mt19937_64 rng(7);
    for (std::size_t i = 0; i < ring; ++i)
      order.push_back(static_cast<std::uint32_t>(rng() % instruments));
  }
};

const keys_t& keys() {
  static const keys_t k;
  return k;
}

const std::string payload(payload_bytes, 'q');

// Ticks alternate between two prices 2 bps apart around the cached 100.0,
// inside the 10 bps threshold, so every tick keeps its entry.
double tick_price(std::uint64_t n) { return (n & 1) ? 100.01 : 99.99; }

class mutex_cache {
 public:
  struct entry {
    double price, threshold;
    std::uint64_t last_seq, cached_at;
    std::uint32_t payload_len;
    char payload[64];
  };
  void put(const std::string& k, double p, std::uint64_t seq, std::uint64_t now) {
    std::lock_guard<std::mutex> l(mu_);
    entry& e = map_[k];
    e = entry{p, 10.0, seq, now, static_cast<std::uint32_t>(payload.size()), {}};
    std::memcpy(e.payload, payload.data(), payload.size());
  }
  bool get(std::string_view k, std::uint64_t now, double* price, char* out, std::size_t cap) {
    std::lock_guard<std::mutex> l(mu_);
    auto it = map_.find(absl::string_view(k.data(), k.size()));
    if (it == map_.end()) return false;
    const entry& e = it->second;
    if (now - e.cached_at > max_age_) return false;
    *price = e.price;
    std::memcpy(out, e.payload, std::min<std::size_t>(cap, e.payload_len));
    return true;
  }
  // 0 kept, 1 evicted, 2 not cached, 3 replay
  int on_price(std::string_view k, double p, std::uint64_t seq, std::uint64_t now) {
    std::lock_guard<std::mutex> l(mu_);
    auto it = map_.find(absl::string_view(k.data(), k.size()));
    if (it == map_.end()) return 2;
    entry& e = it->second;
    const std::uint64_t d = seq - e.last_seq;
    if (d == 0 || d > (std::uint64_t{1} << 63)) return 3;
    if (d != 1 || now - e.cached_at > max_age_ ||
        std::fabs(p - e.price) / e.price * 1e4 > e.threshold * (1 + 1e-9)) {
      map_.erase(it);
      return 1;
    }
    e.last_seq = seq;
    return 0;
  }

 private:
  std::mutex mu_;
  std::uint64_t max_age_ = 60'000'000'000;
  absl::flat_hash_map<std::string, entry> map_;
};

struct tollgate_impl {
  std::unique_ptr<tollgate::price_cache> c;
  tollgate_impl() {
    tollgate::price_cache_options o;
    o.capacity = 2 * instruments;
    auto made = tollgate::price_cache::create(o);
    if (!made.ok()) tb::die(std::string(made.status().message()));
    c = std::move(*made);
    for (const auto& k : keys().names) {
      if (!c->put(k, 100.0, 0, payload, 0).ok()) tb::die("put failed");
    }
  }
  bool get(std::string_view k, std::uint64_t now, char* out) {
    tollgate::cached_price cp;
    const bool hit = c->get(k, now, &cp, out, 64);
    benchmark::DoNotOptimize(cp);
    return hit;
  }
  bool tick(std::string_view k, double p, std::uint64_t seq, std::uint64_t now) {
    auto r = c->on_price(k, p, seq, now);
    return r.ok() && r->outcome == tollgate::price_outcome::kept;
  }
};

struct mutex_impl {
  mutex_cache c;
  mutex_impl() {
    for (const auto& k : keys().names) c.put(k, 100.0, 0, 0);
  }
  bool get(std::string_view k, std::uint64_t now, char* out) {
    double p = 0;
    const bool hit = c.get(k, now, &p, out, 64);
    benchmark::DoNotOptimize(p);
    return hit;
  }
  bool tick(std::string_view k, double p, std::uint64_t seq, std::uint64_t now) {
    return c.on_price(k, p, seq, now) == 0;
  }
};

// One sequence counter per instrument, shared by the benchmark's runs of
// one implementation so ticks stay in sequence from run to run.
template <class Impl>
struct state {
  Impl impl;
  std::vector<std::uint64_t> seq = std::vector<std::uint64_t>(instruments, 0);
};

template <class Impl>
state<Impl>& shared() {
  static state<Impl> s;
  return s;
}

template <class Impl>
void bm_get(benchmark::State& st) {
  auto& s = shared<Impl>();
  const auto& k = keys();
  char out[64];
  std::size_t i = 0;
  std::uint64_t hits = 0;
  for (auto _ : st) {
    hits += s.impl.get(k.names[k.order[i++ & (ring - 1)]], 1000, out);
  }
  tb::report_decisions(st, 1, hits);
}

template <class Impl>
void bm_tick(benchmark::State& st) {
  auto& s = shared<Impl>();
  const auto& k = keys();
  std::size_t i = 0;
  std::uint64_t kept = 0;
  for (auto _ : st) {
    const std::uint32_t x = k.order[i++ & (ring - 1)];
    const std::uint64_t q = ++s.seq[x];
    kept += s.impl.tick(k.names[x], tick_price(q), q, 1000);
  }
  if (kept != static_cast<std::uint64_t>(st.iterations())) st.SkipWithError("a tick evicted");
  tb::report_decisions(st, 1, kept);
}

// Thread 0 ticks (the feed), thread 1 reads (order handling).
template <class Impl>
void bm_mixed(benchmark::State& st) {
  auto& s = shared<Impl>();
  const auto& k = keys();
  char out[64];
  std::size_t i = static_cast<std::size_t>(st.thread_index()) * 977;
  std::uint64_t ok = 0;
  const bool writer = st.thread_index() == 0;
  for (auto _ : st) {
    const std::uint32_t x = k.order[i++ & (ring - 1)];
    if (writer) {
      const std::uint64_t q = ++s.seq[x];
      ok += s.impl.tick(k.names[x], tick_price(q), q, 1000);
    } else {
      ok += s.impl.get(k.names[x], 1000, out);
    }
  }
  tb::report_decisions(st, 1, ok);
}

const int registered = [] {
  tb::register_1_thread("price_cache/get/hit@tollgate", bm_get<tollgate_impl>);
  tb::register_1_thread("price_cache/get/hit@mutex_map", bm_get<mutex_impl>);
  tb::register_1_thread("price_cache/on_price/kept@tollgate", bm_tick<tollgate_impl>);
  tb::register_1_thread("price_cache/on_price/kept@mutex_map", bm_tick<mutex_impl>);
  benchmark::RegisterBenchmark("price_cache/mixed/1w1r@tollgate", bm_mixed<tollgate_impl>)
      ->Threads(2)
      ->UseRealTime();
  benchmark::RegisterBenchmark("price_cache/mixed/1w1r@mutex_map", bm_mixed<mutex_impl>)
      ->Threads(2)
      ->UseRealTime();
  return 0;
}();

}  // namespace

BENCHMARK_MAIN();
