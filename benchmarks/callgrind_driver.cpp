// A fixed-iteration driver for instruction counts under callgrind:
//
//   callgrind_driver <kind> <N>
//
// runs N decisions of one kind on the workloads of the benchmarks (same fake
// clock, tiers and keys). Everything outside the N decisions (start-up,
// construction, pre-warming, key generation) is the same for every N, so
//   instructions per decision = (Ir(N) - Ir(0)) / N.
// run.sh does this with N = 1e6. Kinds: see the table in main().
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "baselines.hpp"
#include "r3_shim.h"
#include "risk_workload.hpp"
#include "route_workload.hpp"
#include "tollgate/breaker.hpp"
#include "tollgate/limiter.hpp"
#include "tollgate/price_cache.hpp"
#include "tollgate/router.hpp"
#include "tollgate/tollgate.h"
#include "workload.hpp"

namespace {

namespace tb = tollgate_bench;

constexpr std::uint64_t one_key = 0x1234567890abcdefULL;
constexpr std::uint64_t call_latency_ns = 1000;

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "callgrind_driver: %s\n", what);
  std::exit(2);
}

std::unique_ptr<tollgate::limiter> make_limiter(double rate, std::uint32_t burst,
                                                std::uint64_t capacity) {
  tollgate::limiter_options o;
  o.tiers = {tollgate::tier{"bench", rate, burst}};
  o.capacity = capacity;
  auto made = tollgate::limiter::create(o);
  if (!made.ok()) die("limiter::create failed");
  return std::move(*made);
}

std::unique_ptr<tollgate::breaker> make_breaker(std::uint32_t max_in_flight) {
  tollgate::breaker_options o;
  o.max_in_flight = max_in_flight;
  auto made = tollgate::breaker::create(o);
  if (!made.ok()) die("breaker::create failed");
  return std::move(*made);
}

// Each returns the number of admitted decisions (printed, so nothing is
// optimised away).

std::uint64_t limiter_one_key(std::uint64_t n, double rate, std::uint32_t burst) {
  auto lim = make_limiter(rate, burst, 1024);
  tb::fake_clock clock{tb::clock_start_ns};
  const std::uint64_t key = one_key;
  std::uint64_t admitted = 0;
  for (std::uint64_t i = 0; i < n; ++i) {
    admitted += lim->acquire(tb::key_bytes(key), 0, 1, clock.tick()).allowed ? 1 : 0;
  }
  return admitted;
}

std::uint64_t limiter_1m_uniform(std::uint64_t n) {
  auto lim = make_limiter(tb::many_rate, tb::many_burst, tb::key_count);
  for (const std::uint64_t& id : tb::account_ids()) {
    lim->acquire(tb::key_bytes(id), 0, 1, tb::clock_start_ns);
  }
  const std::vector<std::uint64_t>& seq = tb::uniform_sequence();
  tb::fake_clock clock{tb::clock_start_ns};
  std::uint64_t admitted = 0;
  for (std::uint64_t i = 0; i < n; ++i) {
    admitted +=
        lim->acquire(tb::key_bytes(seq[i & (seq.size() - 1)]), 0, 1, clock.tick()).allowed ? 1 : 0;
  }
  return admitted;
}

std::uint64_t mutex_map_1m_uniform(std::uint64_t n) {
  tb::mutex_bucket_map m(tb::many_rate, tb::many_burst, tb::key_count);
  for (const std::uint64_t id : tb::account_ids()) m.acquire(id, tb::clock_start_ns, 1);
  const std::vector<std::uint64_t>& seq = tb::uniform_sequence();
  tb::fake_clock clock{tb::clock_start_ns};
  std::uint64_t admitted = 0;
  for (std::uint64_t i = 0; i < n; ++i) {
    admitted += m.acquire(seq[i & (seq.size() - 1)], clock.tick(), 1).allowed ? 1 : 0;
  }
  return admitted;
}

std::uint64_t cas_floor(std::uint64_t n) {
  tb::cas_gcra g(tb::admit_rate, tb::admit_burst);
  tb::fake_clock clock{tb::clock_start_ns};
  std::uint64_t admitted = 0;
  for (std::uint64_t i = 0; i < n; ++i) admitted += g.acquire(clock.tick()) ? 1 : 0;
  return admitted;
}

std::uint64_t mutex_bucket(std::uint64_t n) {
  tb::mutex_bucket b(tb::admit_rate, tb::admit_burst, tb::clock_start_ns);
  tb::fake_clock clock{tb::clock_start_ns};
  std::uint64_t admitted = 0;
  for (std::uint64_t i = 0; i < n; ++i) admitted += b.acquire(clock.tick(), 1).allowed ? 1 : 0;
  return admitted;
}

std::uint64_t breaker_acquire_record(std::uint64_t n, std::uint32_t max_in_flight) {
  auto b = make_breaker(max_in_flight);
  tb::fake_clock clock{tb::clock_start_ns};
  std::uint64_t admitted = 0;
  for (std::uint64_t i = 0; i < n; ++i) {
    const std::uint64_t now = clock.tick();
    const tollgate::permit p = b->acquire(now);
    b->record(p, tollgate::outcome::success, call_latency_ns, now);
    admitted += p.allowed ? 1 : 0;
  }
  return admitted;
}

std::uint64_t mutex_breaker(std::uint64_t n, std::uint32_t max_in_flight) {
  tb::mutex_breaker::options o;
  o.max_in_flight = max_in_flight;
  tb::mutex_breaker b(o);
  tb::fake_clock clock{tb::clock_start_ns};
  std::uint64_t admitted = 0;
  for (std::uint64_t i = 0; i < n; ++i) {
    const std::uint64_t now = clock.tick();
    const tb::mutex_breaker::permit p = b.acquire(now);
    b.record(p, false, call_latency_ns, now);
    admitted += p.allowed ? 1 : 0;
  }
  return admitted;
}

std::uint64_t capi_limiter(std::uint64_t n) {
  tg_tier t{"bench", tb::admit_rate, tb::admit_burst, 0};
  tg_limiter_options o;
  tg_limiter_options_init(&o);
  o.tiers = &t;
  o.tier_count = 1;
  o.capacity = 1024;
  tg_limiter* lim = nullptr;
  if (tg_limiter_new(&o, &lim, nullptr) != TG_OK) die("tg_limiter_new failed");
  tb::fake_clock clock{tb::clock_start_ns};
  const std::uint64_t key = one_key;
  std::uint64_t admitted = 0;
  for (std::uint64_t i = 0; i < n; ++i) {
    tg_limit_decision d;
    if (tg_limiter_acquire(lim, &key, sizeof key, 0, 1, clock.tick(), &d) != TG_OK) die("acquire");
    admitted += static_cast<std::uint64_t>(d.allowed);
  }
  tg_limiter_free(lim);
  return admitted;
}

std::uint64_t capi_breaker(std::uint64_t n) {
  tg_breaker* b = nullptr;
  if (tg_breaker_new(nullptr, &b, nullptr) != TG_OK) die("tg_breaker_new failed");
  tb::fake_clock clock{tb::clock_start_ns};
  std::uint64_t admitted = 0;
  for (std::uint64_t i = 0; i < n; ++i) {
    const std::uint64_t now = clock.tick();
    tg_breaker_permit p;
    if (tg_breaker_acquire(b, now, &p) != TG_OK) die("acquire");
    if (tg_breaker_record(b, &p, TG_OUTCOME_SUCCESS, call_latency_ns, now) != TG_OK) die("record");
    admitted += static_cast<std::uint64_t>(p.allowed);
  }
  tg_breaker_free(b);
  return admitted;
}

}  // namespace

// Route matching on router_bench's 200-route table: every parametric (or
// static) path in turn.
std::vector<std::string> route_paths(const tb::generated& g, bool parametric) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < g.paths.size(); ++i) {
    if (g.parametric[i] == parametric) out.push_back(g.paths[i]);
  }
  return out;
}

std::uint64_t route_match(std::uint64_t n, bool parametric) {
  const tb::generated g = tb::generate(200);
  std::vector<tollgate::route_rule> rules;
  for (std::size_t i = 0; i < g.patterns.size(); ++i) {
    tollgate::route_rule r;
    r.route_id = static_cast<std::uint32_t>(i);
    r.path = g.patterns[i];
    r.methods = {"GET"};
    rules.push_back(std::move(r));
  }
  auto t = tollgate::route_table::build(rules);
  if (!t.ok()) die("route_table::build failed");
  const std::vector<std::string> paths = route_paths(g, parametric);
  tollgate::route_request q;
  q.method = "GET";
  std::uint64_t hits = 0;
  for (std::uint64_t i = 0; i < n; ++i) {
    q.path = paths[i % paths.size()];
    hits += (*t)->match(q).ok();
  }
  return hits;
}

std::uint64_t r3_match(std::uint64_t n, bool parametric) {
  const tb::generated g = tb::generate(200);
  void* tree = r3s_create();
  for (std::size_t i = 0; i < g.r3_patterns.size(); ++i) {
    const std::string& p = g.r3_patterns[i];
    if (!r3s_insert(tree, p.c_str(), static_cast<int>(p.size()), static_cast<long>(i), nullptr)) {
      die("r3 insert failed");
    }
  }
  if (r3s_compile(tree, nullptr) != 0) die("r3 compile failed");
  const std::vector<std::string> paths = route_paths(g, parametric);
  std::uint64_t hits = 0;
  for (std::uint64_t i = 0; i < n; ++i) {
    const std::string& p = paths[i % paths.size()];
    hits += r3s_match(tree, p.data(), static_cast<int>(p.size())) >= 0;
  }
  r3s_free(tree);
  return hits;
}

// Price cache reads and ticks on the price_cache_bench workload (1000
// instruments, 32-byte payloads), tollgate and the mutex-map baseline.
std::vector<std::string> price_keys() {
  std::vector<std::string> k;
  for (int i = 0; i < 1000; ++i) {
    char b[16];
    std::snprintf(b, sizeof b, "SYM%04d", i);
    k.emplace_back(b);
  }
  return k;
}

std::uint64_t price_get(std::uint64_t n) {
  const std::vector<std::string> keys = price_keys();
  tollgate::price_cache_options o;
  o.capacity = 2 * keys.size();
  auto made = tollgate::price_cache::create(o);
  if (!made.ok()) die("price_cache::create failed");
  auto& c = **made;
  const std::string payload(32, 'q');
  for (const auto& k : keys) {
    if (!c.put(k, 100.0, 0, payload, 0).ok()) die("put failed");
  }
  char out[64];
  tollgate::cached_price cp;
  std::uint64_t hits = 0;
  for (std::uint64_t i = 0; i < n; ++i)
    hits += c.get(keys[(i * 7) % keys.size()], 1000, &cp, out, 64);
  return hits;
}

std::uint64_t price_tick(std::uint64_t n) {
  const std::vector<std::string> keys = price_keys();
  tollgate::price_cache_options o;
  o.capacity = 2 * keys.size();
  auto made = tollgate::price_cache::create(o);
  if (!made.ok()) die("price_cache::create failed");
  auto& c = **made;
  for (const auto& k : keys) {
    if (!c.put(k, 100.0, 0, std::string_view(), 0).ok()) die("put failed");
  }
  std::vector<std::uint64_t> seq(keys.size(), 0);
  std::uint64_t kept = 0;
  for (std::uint64_t i = 0; i < n; ++i) {
    const std::size_t x = (i * 7) % keys.size();
    const std::uint64_t q = ++seq[x];
    auto r = c.on_price(keys[x], (q & 1) ? 100.01 : 99.99, q, 1000);
    kept += r.ok() && r->outcome == tollgate::price_outcome::kept;
  }
  return kept;
}

std::uint64_t mutex_price_get(std::uint64_t n) {
  struct entry {
    double price = 100.0;
    std::uint64_t cached_at = 0;
    std::uint32_t payload_len = 32;
    char payload[64] = {};
  };
  const std::vector<std::string> keys = price_keys();
  std::mutex mu;
  absl::flat_hash_map<std::string, entry> map;
  for (const auto& k : keys) map[k] = entry{};
  char out[64];
  std::uint64_t hits = 0;
  for (std::uint64_t i = 0; i < n; ++i) {
    std::lock_guard<std::mutex> g(mu);
    auto it = map.find(keys[(i * 7) % keys.size()]);
    if (it == map.end() || 1000 - it->second.cached_at > 60'000'000'000ULL) continue;
    std::memcpy(out, it->second.payload, it->second.payload_len);
    hits += it->second.price > 0 && out[0] == 0;
  }
  return hits;
}

// Risk checks on the risk_bench workload: one order per step_ns.
template <class Impl>
std::uint64_t risk_checks(std::uint64_t n, bool full) {
  namespace rk = tollgate_bench::risk;
  Impl impl(full);
  const auto& w = rk::work();
  std::uint64_t now = 1'000'000'000, allowed = 0;
  for (std::uint64_t i = 0; i < n; ++i) {
    now += rk::step_ns;
    allowed += impl.check(w.orders[i & (rk::ring - 1)], now);
  }
  return allowed;
}

int main(int argc, char** argv) {
  struct kind {
    const char* name;
    std::uint64_t (*run)(std::uint64_t);
  };
  static const kind kinds[] = {
      {"limiter_one_key",
       [](std::uint64_t n) { return limiter_one_key(n, tb::admit_rate, tb::admit_burst); }},
      {"limiter_one_key_reject",
       [](std::uint64_t n) { return limiter_one_key(n, tb::reject_rate, tb::reject_burst); }},
      {"cas_floor", cas_floor},
      {"mutex_bucket", mutex_bucket},
      {"limiter_1m_uniform", limiter_1m_uniform},
      {"mutex_map_1m_uniform", mutex_map_1m_uniform},
      {"breaker_closed", [](std::uint64_t n) { return breaker_acquire_record(n, 0); }},
      {"breaker_bulkhead", [](std::uint64_t n) { return breaker_acquire_record(n, 1000); }},
      {"mutex_breaker", [](std::uint64_t n) { return mutex_breaker(n, 0); }},
      {"mutex_breaker_bulkhead", [](std::uint64_t n) { return mutex_breaker(n, 1000); }},
      {"capi_limiter", capi_limiter},
      {"capi_breaker", capi_breaker},
      {"route_200_param", [](std::uint64_t n) { return route_match(n, true); }},
      {"route_200_static", [](std::uint64_t n) { return route_match(n, false); }},
      {"r3_200_param", [](std::uint64_t n) { return r3_match(n, true); }},
      {"r3_200_static", [](std::uint64_t n) { return r3_match(n, false); }},
      {"price_get", price_get},
      {"mutex_price_get", mutex_price_get},
      {"price_tick", price_tick},
      {"risk_stateless",
       [](std::uint64_t n) { return risk_checks<tollgate_bench::risk::tollgate_impl>(n, false); }},
      {"risk_full",
       [](std::uint64_t n) { return risk_checks<tollgate_bench::risk::tollgate_impl>(n, true); }},
      {"mutex_risk_stateless",
       [](std::uint64_t n) { return risk_checks<tollgate_bench::risk::mutex_impl>(n, false); }},
      {"mutex_risk_full",
       [](std::uint64_t n) { return risk_checks<tollgate_bench::risk::mutex_impl>(n, true); }},
  };
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s <kind> <N>\nkinds:", argv[0]);
    for (const kind& k : kinds) std::fprintf(stderr, " %s", k.name);
    std::fprintf(stderr, "\n");
    return 2;
  }
  char* end = nullptr;
  const std::uint64_t n = std::strtoull(argv[2], &end, 10);
  if (end == argv[2] || *end != '\0') die("N must be a non-negative integer");
  for (const kind& k : kinds) {
    if (std::strcmp(k.name, argv[1]) == 0) {
      std::printf("%s N=%llu admitted=%llu\n", k.name, static_cast<unsigned long long>(n),
                  static_cast<unsigned long long>(k.run(n)));
      return 0;
    }
  }
  die("unknown kind");
}
