// Route matching and venue selection.
//
// Tables: 10, 200 and 5000 generated API routes (20 resources x 10 patterns
// per 200: collections, items "/v1/{res}/{id}", nested items, account-scoped
// routes, a three-parameter export route), every rule restricted to GET. Requests
// cycle through 4096 pre-built paths (one per rule, repeated, shuffled), so
// the branch predictor cannot learn one path:
//   router/match/<n>/static   paths of rules without parameters
//   router/match/<n>/param    paths of rules with parameters
//   router/match/<n>/escaped  parametric paths spelled with %XX, "//" and "."
//   router/rcu_match/<n>/param  through tollgate::router (read-copy-update)
//   venue/pick/8/<strategy>   one pick among 8 venues
//
// Peer: r3 (libr3, a C URL router compiled into a radix tree), same routes,
// same paths; r3 matches without capturing (a NULL match entry) and without
// method checks, which favours it. (No "{*rest}" route: r3's nearest form,
// "{rest:.+}", stops matching once sibling routes have parameters; and r3
// does not backtrack from a parameter edge into a sibling literal, so no
// generated path needs that: tollgate's backtracking is tested in
// tests/unit/router_test.cpp.) r3's
// header is C only, so r3 is called through r3_shim.c: one extra call.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "bench_util.hpp"
#include "route_workload.hpp"
#include "tollgate/router.hpp"
#include "tollgate/venue.hpp"

#include "r3_shim.h"

namespace {

namespace tb = tollgate_bench;

using tb::generate;
using tb::generated;
constexpr std::size_t ring = 4096;

struct fixture {
  generated g;
  std::shared_ptr<const tollgate::route_table> table;
  std::unique_ptr<tollgate::router> rcu;
  void* r3 = nullptr;
  // The ring of requests per kind: indexes into g.paths / g.escaped.
  std::vector<std::size_t> statics, params;

  explicit fixture(std::size_t n) : g(generate(n)) {
    std::vector<tollgate::route_rule> rules;
    for (std::size_t i = 0; i < g.patterns.size(); ++i) {
      tollgate::route_rule r;
      r.route_id = static_cast<std::uint32_t>(i);
      r.path = g.patterns[i];
      r.methods = {"GET"};
      rules.push_back(std::move(r));
    }
    tollgate::route_table::build_error e;
    auto t = tollgate::route_table::build(rules, {}, &e);
    if (!t.ok()) tb::die(std::string(t.status().message()));
    table = *t;
    rcu = std::make_unique<tollgate::router>(table);

    r3 = r3s_create();
    for (std::size_t i = 0; i < g.r3_patterns.size(); ++i) {
      char* err = nullptr;
      const std::string& p = g.r3_patterns[i];
      if (!r3s_insert(r3, p.c_str(), static_cast<int>(p.size()), static_cast<long>(i), &err)) {
        tb::die("r3 insert " + p + ": " + (err != nullptr ? err : "?"));
      }
    }
    char* err = nullptr;
    if (r3s_compile(r3, &err) != 0) tb::die(std::string("r3 compile: ") + (err ? err : "?"));

    // Both implementations must route every generated path to its rule.
    for (std::size_t i = 0; i < g.paths.size(); ++i) {
      const std::size_t got_t = tollgate_match(g.paths[i]);
      const std::size_t got_e = tollgate_match(g.escaped[i]);
      const std::size_t got_r = r3_match(g.paths[i]);
      if (got_t != i || got_e != i || got_r != i) {
        tb::die("routing check failed for " + g.paths[i] + ": tollgate " + std::to_string(got_t) +
                " (escaped " + std::to_string(got_e) + "), r3 " + std::to_string(got_r) +
                ", want " + std::to_string(i));
      }
      (g.parametric[i] ? params : statics).push_back(i);
    }
    std::mt19937_64 rng(42);
    auto fill = [&](std::vector<std::size_t>& v) {
      std::vector<std::size_t> out;
      while (out.size() < ring) out.insert(out.end(), v.begin(), v.end());
      out.resize(ring);
      std::shuffle(out.begin(), out.end(), rng);
      v = std::move(out);
    };
    fill(statics);
    fill(params);
  }
  ~fixture() { r3s_free(r3); }
  fixture(const fixture&) = delete;
  fixture& operator=(const fixture&) = delete;

  std::size_t tollgate_match(const std::string& path) const {
    tollgate::route_request q;
    q.method = "GET";
    q.path = path;
    const tollgate::route_match m = table->match(q);
    return m.ok() ? m.route_id : ~std::size_t{0};
  }
  std::size_t r3_match(const std::string& path) const {
    const long id = r3s_match(r3, path.data(), static_cast<int>(path.size()));
    return id < 0 ? ~std::size_t{0} : static_cast<std::size_t>(id);
  }
};

fixture& get_fixture(std::size_t n) {
  static std::unique_ptr<fixture> f10, f200, f5000;
  std::unique_ptr<fixture>& f = n == 10 ? f10 : n == 200 ? f200 : f5000;
  if (!f) f = std::make_unique<fixture>(n);
  return *f;
}

enum class kind { statics, params, escaped };
enum class impl { table, rcu, r3 };

void bm_match(benchmark::State& st, std::size_t n, kind k, impl which) {
  fixture& f = get_fixture(n);
  const std::vector<std::size_t>& order = k == kind::statics ? f.statics : f.params;
  if (order.empty()) {
    st.SkipWithError("no paths of this kind in the table");
    return;
  }
  const std::vector<std::string>& paths = k == kind::escaped ? f.g.escaped : f.g.paths;
  std::size_t i = 0;
  std::uint64_t hits = 0;
  tollgate::route_request q;
  q.method = "GET";
  for (auto _ : st) {
    const std::string& p = paths[order[i++ & (ring - 1)]];
    switch (which) {
      case impl::table: {
        q.path = p;
        const tollgate::route_match m = f.table->match(q);
        benchmark::DoNotOptimize(m);
        hits += m.ok();
        break;
      }
      case impl::rcu: {
        q.path = p;
        const tollgate::route_match m = f.rcu->match(q);
        benchmark::DoNotOptimize(m);
        hits += m.ok();
        break;
      }
      case impl::r3: {
        const long m = r3s_match(f.r3, p.data(), static_cast<int>(p.size()));
        benchmark::DoNotOptimize(m);
        hits += m >= 0;
        break;
      }
    }
  }
  tb::report_decisions(st, 1, hits);
}

void bm_pick(benchmark::State& st, tollgate::venue_strategy s, bool sticky) {
  tollgate::venue_set_options o;
  o.strategy = s;
  o.sticky = sticky;
  o.seed = 7;
  std::vector<tollgate::venue_config> venues;
  for (std::uint32_t i = 0; i < 8; ++i) venues.push_back({i, 1 + (i % 3), nullptr});
  auto made = tollgate::venue_set::create(venues, o);
  if (!made.ok()) tb::die(std::string(made.status().message()));
  auto& vs = **made;
  for (std::uint32_t i = 0; i < 8; ++i) vs.record_latency(i, 1000 + 100 * i, 0);
  char keys[64][16];
  for (int i = 0; i < 64; ++i) std::snprintf(keys[i], sizeof keys[i], "acct-%d", i);
  std::uint64_t nonce = 0;
  std::uint64_t ok = 0;
  for (auto _ : st) {
    const tollgate::venue_pick p =
        vs.pick(sticky ? std::string_view(keys[nonce & 63]) : std::string_view(), nonce, 0);
    ++nonce;
    benchmark::DoNotOptimize(p);
    ok += p.ok;
  }
  tb::report_decisions(st, 1, ok);
}

const int registered = [] {
  for (std::size_t n : {std::size_t{10}, std::size_t{200}, std::size_t{5000}}) {
    const std::string size = std::to_string(n);
    const std::pair<kind, const char*> kinds[] = {
        {kind::statics, "static"}, {kind::params, "param"}, {kind::escaped, "escaped"}};
    for (const auto& [k, kname] : kinds) {
      const std::string op = "router/match/" + size + "/" + kname;
      tb::register_1_thread(op + "@tollgate",
                            [n, k = k](benchmark::State& st) { bm_match(st, n, k, impl::table); });
      if (k != kind::escaped) {
        tb::register_1_thread(op + "@r3",
                              [n, k = k](benchmark::State& st) { bm_match(st, n, k, impl::r3); });
      }
    }
    tb::register_1_and_2_threads(
        "router/rcu_match/" + size + "/param@tollgate",
        [n](benchmark::State& st) { bm_match(st, n, kind::params, impl::rcu); });
  }
  tb::register_1_thread("venue/pick/8/weighted@tollgate", [](benchmark::State& st) {
    bm_pick(st, tollgate::venue_strategy::weighted, false);
  });
  tb::register_1_thread("venue/pick/8/least_latency@tollgate", [](benchmark::State& st) {
    bm_pick(st, tollgate::venue_strategy::least_latency, false);
  });
  tb::register_1_thread("venue/pick/8/sticky@tollgate", [](benchmark::State& st) {
    bm_pick(st, tollgate::venue_strategy::weighted, true);
  });
  return 0;
}();

}  // namespace

BENCHMARK_MAIN();
