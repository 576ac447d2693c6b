// The decision hot paths never allocate: counted with a replaced global
// operator new around loops of decisions (after construction and warm-up).
#include <catch2/catch.hpp>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <string>
#include <vector>

#include "tollgate/auth.hpp"
#include "tollgate/breaker.hpp"
#include "tollgate/limiter.hpp"
#include "tollgate/price_cache.hpp"
#include "tollgate/router.hpp"
#include "tollgate/venue.hpp"

namespace {
std::atomic<std::uint64_t> allocations{0};
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
// Under a sanitizer, operator new belongs to its runtime; count every heap
// allocation (malloc and new alike) through the sanitizer's hooks instead.
// Declared here because GCC ships no <sanitizer/allocator_interface.h>; the
// function is part of every sanitizer runtime.
extern "C" int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void*,
                                                                             std::size_t),
                                                         void (*free_hook)(const volatile void*));

namespace {
void on_malloc(const volatile void*, std::size_t) {
  allocations.fetch_add(1, std::memory_order_relaxed);
}
void on_free(const volatile void*) {}
const int hooks_installed = __sanitizer_install_malloc_and_free_hooks(&on_malloc, &on_free);
}  // namespace
#else
// GCC pairs its own idea of new/delete across inlined std::allocator code
// and warns about the (correct) malloc/free pairing of the replacements.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

void* operator new(std::size_t n) {
  allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return operator new(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
#endif

namespace {
// Proves the counter counts: one std::string beyond the SSO is one allocation.
void check_counter_works() {
  const std::uint64_t before = allocations.load();
  std::string s(100, 'x');
  CHECK(allocations.load() - before >= 1);
  CHECK(s.size() == 100);
}
}  // namespace

TEST_CASE("limiter decisions allocate nothing") {
  tollgate::limiter_options o;
  o.tiers = {tollgate::tier{"a", 1000, 10}, tollgate::tier{"b", 10, 1}};
  o.capacity = 64;
  auto made = tollgate::limiter::create(o);
  REQUIRE(made.ok());
  auto& l = **made;
  char keys[200][16];
  for (int i = 0; i < 200; ++i) std::snprintf(keys[i], sizeof keys[i], "acct-%d", i);
  l.acquire("warm", 0, 1, 0);
  check_counter_works();
  const std::uint64_t before = allocations.load();
  std::uint64_t admitted = 0;
  for (int i = 0; i < 100000; ++i) {
    const std::uint64_t now = static_cast<std::uint64_t>(i) * 1000;
    const std::string_view k(keys[i % 200]);
    admitted += l.acquire(k, static_cast<std::uint32_t>(i & 1), 1, now).allowed;
    tollgate::reservation r;
    if (l.reserve(k, 0, 1, now, &r).allowed) l.cancel(r, now);
    admitted += l.peek(k, 0, 1, now).allowed;
    admitted += l.remaining(k, 1, now);
  }
  const std::uint64_t during = allocations.load() - before;
  CHECK(admitted > 0);
  CHECK(l.stats().evictions > 0);  // the eviction path ran too
  CHECK(during == 0);
}

TEST_CASE("breaker decisions allocate nothing") {
  tollgate::breaker_options o;
  o.window_size = 20;
  o.minimum_calls = 5;
  o.open_ns = 1000;
  o.half_open_probes = 2;
  o.max_in_flight = 4;
  auto made = tollgate::breaker::create(o);
  REQUIRE(made.ok());
  auto& b = **made;
  b.acquire(0);
  check_counter_works();
  const std::uint64_t before = allocations.load();
  for (int i = 0; i < 100000; ++i) {
    const std::uint64_t now = static_cast<std::uint64_t>(i) * 100;
    const auto p = b.acquire(now);
    b.record(p, (i % 4 != 0) ? tollgate::outcome::failure : tollgate::outcome::success, 10, now);
  }
  const std::uint64_t during = allocations.load() - before;
  CHECK(b.stats(0).transitions > 0);  // every state was visited
  CHECK(during == 0);
}

TEST_CASE("route matching and venue picks allocate nothing") {
  std::vector<tollgate::route_rule> rules;
  for (std::uint32_t i = 0; i < 40; ++i) {
    tollgate::route_rule r;
    r.route_id = i;
    r.path = "/svc" + std::to_string(i) + "/{id}/fills/{*rest}";
    r.methods = {"GET"};
    r.headers = {{"x-desk", "eq", tollgate::header_op::prefix, false}};
    r.venue_set = 0;
    rules.push_back(r);
  }
  tollgate::route_rule host_rule;
  host_rule.host = "*.example.com";
  host_rule.path = "/";
  host_rule.kind = tollgate::path_kind::prefix;
  rules.push_back(host_rule);
  tollgate::venue_set_options vo;
  vo.strategy = tollgate::venue_strategy::least_latency;
  std::vector<tollgate::venue_config> venues;
  for (std::uint32_t i = 0; i < 8; ++i) venues.push_back({i, i + 1, nullptr});
  auto vs = tollgate::venue_set::create(venues, vo);
  REQUIRE(vs.ok());
  auto table = tollgate::route_table::build(rules, {*vs});
  REQUIRE(table.ok());
  tollgate::router router(*table);
  const tollgate::header_view headers[] = {{"X-Desk", "eq-cash"}};
  const char* paths[] = {
      "/svc7/42/fills/a/b", "/svc%31%32/4/fills/x", "//svc3/./9/fills/../fills/z", "/nowhere",
      "/svc1/%2F",          "/svc39/1/fills/q?x=1"};
  check_counter_works();
  const std::uint64_t before = allocations.load();
  std::uint64_t matched = 0;
  for (int i = 0; i < 20000; ++i) {
    tollgate::route_request q;
    q.method = "GET";
    q.host = (i & 1) ? "a.example.com:443" : "other.org";
    q.path = paths[i % 6];
    q.headers = headers;
    q.header_count = 1;
    const tollgate::route_decision d = router.route(q, (i & 2) ? "acct" : "", i, 0);
    matched += d.match.ok() + d.venue.ok;
    (*vs)->record_latency(static_cast<std::size_t>(i % 8), 1000 + static_cast<std::uint64_t>(i),
                          static_cast<std::uint64_t>(i) * 1000);
    char norm[64];
    std::size_t n = 0;
    (void)tollgate::normalize_path(q.path, norm, sizeof norm, n);
  }
  const std::uint64_t during = allocations.load() - before;
  CHECK(matched > 20000);
  CHECK(during == 0);
}

TEST_CASE("price cache reads and ticks allocate nothing") {
  tollgate::price_cache_options o;
  o.capacity = 64;
  o.vol_multiplier = 1;
  auto made = tollgate::price_cache::create(o);
  REQUIRE(made.ok());
  auto& c = **made;
  char keys[100][8];
  for (int i = 0; i < 100; ++i) std::snprintf(keys[i], sizeof keys[i], "I%d", i);
  for (int i = 0; i < 100; ++i) REQUIRE(c.put(keys[i], 100.0, 1, "quote", 0).ok());
  check_counter_works();
  const std::uint64_t before = allocations.load();
  std::uint64_t hits = 0;
  char payload[64];
  for (int i = 0; i < 100000; ++i) {
    const char* k = keys[i % 100];
    tollgate::cached_price cp;
    hits += c.get(k, 1, &cp, payload, sizeof payload);
    auto r = c.on_price(k, 100.0 + (i % 7) * 0.01, 2 + static_cast<std::uint64_t>(i / 100), 1);
    if (r.ok() && r->outcome == tollgate::price_outcome::evicted) {
      (void)c.put(k, 100.0, 2 + static_cast<std::uint64_t>(i / 100), "quote", 1);
    }
  }
  const std::uint64_t during = allocations.load() - before;
  CHECK(hits > 0);
  CHECK(during == 0);
}

TEST_CASE("request verification allocates nothing") {
  tollgate::auth_options o;
  o.nonce_capacity = 4096;
  auto made = tollgate::authenticator::create(o);
  REQUIRE(made.ok());
  auto& a = **made;
  constexpr std::uint64_t t0 = 1'700'000'000'000'000'000ULL;
  REQUIRE(a.add_key("k1", "alloc-test-secret", 0, ~0ULL, t0).ok());
  const std::string target = "/v1/orders?symbol=ES&account=A%31";
  const tollgate::header_view headers[] = {{"Host", "gw.example"}, {"Content-Type", "text/x"}};
  tollgate::auth_message m;
  m.method = "POST";
  m.target = target;
  m.headers = headers;
  m.header_count = 2;
  m.body = "body";
  // Signing allocates (it returns a string): sign everything first.
  std::vector<std::string> signed_headers;
  const tollgate::crypto::hmac_sha256_key key("alloc-test-secret");
  for (int i = 0; i < 2000; ++i) {
    const std::string nonce = "alloc-nonce-" + std::to_string(i);
    tollgate::auth_params p;
    p.key_id = "k1";
    p.nonce = nonce;
    p.signed_headers = "content-type;host";
    p.timestamp_ns = t0;
    auto h = tollgate::sign_request(m, p, key);
    REQUIRE(h.ok());
    signed_headers.push_back(*h);
  }
  std::string forged = signed_headers[0];
  forged[forged.size() - 1] = forged.back() == '0' ? '1' : '0';
  (void)a.verify(m, "warm-up", t0);
  check_counter_works();
  const std::uint64_t before = allocations.load();
  int ok = 0, replays = 0, bad = 0;
  for (int round = 0; round < 2; ++round) {
    for (const std::string& h : signed_headers) {
      const auto r = a.verify(m, h, t0);
      ok += r.ok();
      replays += r.reason == tollgate::auth_reason::replay;
    }
    bad += a.verify(m, forged, t0).reason == tollgate::auth_reason::bad_signature;
  }
  const std::uint64_t during = allocations.load() - before;
  CHECK(ok == 2000);
  CHECK(replays == 2000);
  CHECK(bad == 2);
  CHECK(during == 0);
}
