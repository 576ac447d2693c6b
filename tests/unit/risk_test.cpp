// Pre-trade risk checks: every limit exactly at, just inside and just beyond
// its edge; reference prices missing, stale and evicted under both policies;
// kill switches at each scope; malformed orders; capacities that fail
// closed; threads on one account against its limits; no allocation in
// check().
#include <catch2/catch.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tollgate/price_cache.hpp"
#include "tollgate/risk.hpp"

using tollgate::collar_unit;
using tollgate::kill_scope;
using tollgate::kill_switch_event;
using tollgate::no_reference_policy;
using tollgate::price_cache;
using tollgate::price_cache_options;
using tollgate::risk_checker;
using tollgate::risk_decision;
using tollgate::risk_options;
using tollgate::risk_order;
using tollgate::risk_reason;

namespace {

std::atomic<std::uint64_t> risk_allocations{0};

}  // namespace

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
// As in alloc_free_test.cpp: under a sanitizer count every heap allocation
// through the runtime's hooks (a runtime accepts several hook pairs).
extern "C" int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void*,
                                                                             std::size_t),
                                                         void (*free_hook)(const volatile void*));
namespace {
void on_risk_malloc(const volatile void*, std::size_t) {
  risk_allocations.fetch_add(1, std::memory_order_relaxed);
}
void on_risk_free(const volatile void*) {}
const int risk_hooks_installed =
    __sanitizer_install_malloc_and_free_hooks(&on_risk_malloc, &on_risk_free);
}  // namespace
#else
// alloc_free_test.cpp, in this same executable, already replaces operator
// new (which then calls malloc), and a program may replace it only once, so
// count one level lower: malloc, calloc and realloc, forwarded to glibc's own
// implementations (free and the aligned forms stay glibc's and stay paired).
extern "C" void* __libc_malloc(std::size_t n);
extern "C" void* __libc_calloc(std::size_t n, std::size_t size);
extern "C" void* __libc_realloc(void* p, std::size_t n);
extern "C" void* malloc(std::size_t n) noexcept {
  risk_allocations.fetch_add(1, std::memory_order_relaxed);
  return __libc_malloc(n);
}
extern "C" void* calloc(std::size_t n, std::size_t size) noexcept {
  risk_allocations.fetch_add(1, std::memory_order_relaxed);
  return __libc_calloc(n, size);
}
extern "C" void* realloc(void* p, std::size_t n) noexcept {
  risk_allocations.fetch_add(1, std::memory_order_relaxed);
  return __libc_realloc(p, n);
}
#endif

namespace {

constexpr std::uint64_t sec = 1'000'000'000;
constexpr double inf = std::numeric_limits<double>::infinity();
constexpr double na =
    std::numeric_limits<double>::quiet_NaN();  // not applicable; a market order's price

std::unique_ptr<price_cache> make_cache(std::uint64_t max_age_ns = 60 * sec) {
  price_cache_options o;
  o.max_age_ns = max_age_ns;
  auto c = price_cache::create(o);
  REQUIRE(c.ok());
  return std::move(*c);
}

std::unique_ptr<risk_checker> make(const risk_options& o) {
  auto r = risk_checker::create(o);
  INFO((r.ok() ? std::string("ok") : std::string(r.status().message())));
  REQUIRE(r.ok());
  return std::move(*r);
}

risk_order order(std::string_view account, std::string_view instrument, std::string_view id,
                 double quantity, double price = na) {
  risk_order o;
  o.account = account;
  o.instrument = instrument;
  o.client_order_id = id;
  o.quantity = quantity;
  o.limit_price = price;
  return o;
}

// An order with a client order id never used before.
risk_decision send(risk_checker& rc, std::string_view account, std::string_view instrument,
                   double quantity, double price, std::uint64_t now) {
  static std::atomic<int> counter{0};
  const std::string id = "auto-" + std::to_string(++counter);
  return rc.check(order(account, instrument, id, quantity, price), now);
}

bool same(double a, double b) { return (std::isnan(a) && std::isnan(b)) || a == b; }

// The whole decision: reason, allowed, limit, observed, reference.
void expect(const risk_decision& d, risk_reason r, double limit = na, double observed = na,
            double reference = na) {
  INFO("reason " << tollgate::risk_reason_name(d.reason) << " limit " << d.limit << " observed "
                 << d.observed << " reference " << d.reference);
  CHECK(d.reason == r);
  CHECK(d.allowed == (r == risk_reason::none));
  CHECK(same(d.limit, limit));
  CHECK(same(d.observed, observed));
  CHECK(same(d.reference, reference));
}

struct event_log {
  struct entry {
    kill_scope scope;
    std::string key;
    bool engaged;
    std::uint64_t now;
  };
  std::vector<entry> events;
  static void record(void* user, const kill_switch_event& ev) {
    static_cast<event_log*>(user)->events.push_back(
        {ev.scope, std::string(ev.key), ev.engaged, ev.now_ns});
  }
};

}  // namespace

TEST_CASE("options are validated at create", "[risk]") {
  CHECK(risk_checker::create({}).ok());
  auto bad = [](auto change) {
    risk_options o;
    change(o);
    return risk_checker::create(o).status();
  };
  CHECK(absl::IsOutOfRange(bad([](risk_options& o) { o.max_quantity = 0; })));
  CHECK(absl::IsOutOfRange(bad([](risk_options& o) { o.max_quantity = na; })));
  CHECK(absl::IsOutOfRange(bad([](risk_options& o) { o.max_notional = -1; })));
  CHECK(absl::IsOutOfRange(bad([](risk_options& o) { o.collar_width = -0.5; })));
  CHECK(absl::IsOutOfRange(bad([](risk_options& o) { o.collar_width = na; })));
  CHECK(absl::IsOutOfRange(bad([](risk_options& o) { o.collar_tick_size = 0; })));
  CHECK(absl::IsOutOfRange(bad([](risk_options& o) { o.collar_tick_size = inf; })));
  CHECK(absl::IsInvalidArgument(
      bad([](risk_options& o) { o.collar = static_cast<collar_unit>(7); })));
  CHECK(absl::IsInvalidArgument(
      bad([](risk_options& o) { o.on_no_reference = static_cast<no_reference_policy>(2); })));
  CHECK(absl::IsOutOfRange(bad([](risk_options& o) { o.period_ns = 0; })));
  CHECK(absl::IsOutOfRange(bad([](risk_options& o) { o.account_max_notional = 0; })));
  CHECK(absl::IsOutOfRange(bad([](risk_options& o) { o.account_max_orders = 0; })));
  CHECK(absl::IsOutOfRange(bad([](risk_options& o) { o.account_capacity = 0; })));
  CHECK(absl::IsOutOfRange(
      bad([](risk_options& o) { o.account_capacity = risk_checker::max_account_capacity + 1; })));
  CHECK(absl::IsOutOfRange(bad([](risk_options& o) { o.duplicate_capacity = 0; })));
  CHECK(absl::IsOutOfRange(bad([](risk_options& o) { o.kill_switch_capacity = 0; })));
  // Infinity is "no limit"; a zero collar allows only the reference itself.
  CHECK(bad([](risk_options& o) {
          o.max_quantity = inf;
          o.collar_width = 0;
        }).ok());
}

TEST_CASE("an order within every limit is allowed with its notional and reference", "[risk]") {
  auto cache = make_cache();
  REQUIRE(cache->put("AAPL", 190.0, 1, "", 0).ok());
  risk_options o;
  o.prices = cache.get();
  o.max_quantity = 1000;
  o.max_notional = 1e6;
  o.collar_width = 5;
  auto rc = make(o);
  expect(send(*rc, "acct", "AAPL", 100, 190.5, 10), risk_reason::none, na, 19050.0, 190.0);
  expect(send(*rc, "acct", "AAPL", 100, na, 10), risk_reason::none, na, 19000.0, 190.0);
  const auto s = rc->stats();
  CHECK(s.checked == 2);
  CHECK(s.allowed == 2);
  CHECK(s.rejected == 0);
}

TEST_CASE("kill switches at each scope reject until released", "[risk]") {
  auto cache = make_cache();
  REQUIRE(cache->put("AAPL", 100.0, 1, "", 0).ok());
  REQUIRE(cache->put("MSFT", 100.0, 1, "", 0).ok());
  risk_options o;
  o.prices = cache.get();
  auto rc = make(o);
  event_log log;
  rc->set_kill_listener(&event_log::record, &log);

  REQUIRE(rc->engage(kill_scope::instrument, "AAPL", 5).ok());
  expect(send(*rc, "a1", "AAPL", 1, 100, 10), risk_reason::kill_switch_instrument);
  expect(send(*rc, "a1", "MSFT", 1, 100, 10), risk_reason::none, na, 100.0, 100.0);
  REQUIRE(rc->engage(kill_scope::account, "a1", 6).ok());
  expect(send(*rc, "a1", "MSFT", 1, 100, 10), risk_reason::kill_switch_account);
  expect(send(*rc, "a2", "MSFT", 1, 100, 10), risk_reason::none, na, 100.0, 100.0);
  // The account switch is checked before the instrument switch.
  expect(send(*rc, "a1", "AAPL", 1, 100, 10), risk_reason::kill_switch_account);
  REQUIRE(rc->engage(kill_scope::global, "", 7).ok());
  expect(send(*rc, "a2", "MSFT", 1, 100, 10), risk_reason::kill_switch_global);
  expect(send(*rc, "a1", "AAPL", 1, 100, 10), risk_reason::kill_switch_global);
  // Kill switches come before the malformed-order checks.
  expect(rc->check(order("a2", "MSFT", "", -1), 10), risk_reason::kill_switch_global);
  CHECK(rc->engaged(kill_scope::global, ""));
  CHECK(rc->engaged(kill_scope::account, "a1"));
  CHECK_FALSE(rc->engaged(kill_scope::account, "a2"));
  CHECK(rc->engaged(kill_scope::instrument, "AAPL"));

  // Engaging twice is a no-op: no second event.
  REQUIRE(rc->engage(kill_scope::global, "", 8).ok());
  REQUIRE(rc->engage(kill_scope::account, "a1", 8).ok());
  REQUIRE(rc->release(kill_scope::global, "", 9).ok());
  expect(send(*rc, "a2", "MSFT", 1, 100, 10), risk_reason::none, na, 100.0, 100.0);
  expect(send(*rc, "a1", "MSFT", 1, 100, 10), risk_reason::kill_switch_account);
  REQUIRE(rc->release(kill_scope::account, "a1", 10).ok());
  expect(send(*rc, "a1", "MSFT", 1, 100, 10), risk_reason::none, na, 100.0, 100.0);
  expect(send(*rc, "a1", "AAPL", 1, 100, 10), risk_reason::kill_switch_instrument);
  REQUIRE(rc->release(kill_scope::instrument, "AAPL", 11).ok());
  expect(send(*rc, "a1", "AAPL", 1, 100, 10), risk_reason::none, na, 100.0, 100.0);
  // Releasing what is not engaged is a no-op too.
  REQUIRE(rc->release(kill_scope::instrument, "AAPL", 12).ok());
  REQUIRE(rc->release(kill_scope::global, "", 12).ok());

  REQUIRE(log.events.size() == 6);
  CHECK(log.events[0].scope == kill_scope::instrument);
  CHECK(log.events[0].key == "AAPL");
  CHECK(log.events[0].engaged);
  CHECK(log.events[0].now == 5);
  CHECK(log.events[1].scope == kill_scope::account);
  CHECK(log.events[1].key == "a1");
  CHECK(log.events[2].scope == kill_scope::global);
  CHECK(log.events[2].key.empty());
  CHECK(log.events[2].now == 7);
  CHECK(log.events[3].scope == kill_scope::global);
  CHECK_FALSE(log.events[3].engaged);
  CHECK(log.events[3].now == 9);
  CHECK(log.events[4].scope == kill_scope::account);
  CHECK_FALSE(log.events[4].engaged);
  CHECK(log.events[5].scope == kill_scope::instrument);
  CHECK_FALSE(log.events[5].engaged);
  CHECK(log.events[5].now == 11);

  const auto s = rc->stats();
  CHECK(s.decisions[static_cast<std::size_t>(risk_reason::kill_switch_global)] == 3);
  CHECK(s.decisions[static_cast<std::size_t>(risk_reason::kill_switch_account)] == 3);
  CHECK(s.decisions[static_cast<std::size_t>(risk_reason::kill_switch_instrument)] == 2);
  CHECK(s.killed_accounts == 0);
  CHECK(s.killed_instruments == 0);
  CHECK_FALSE(s.global_kill);
}

TEST_CASE("kill switch keys are validated and capacity is an error not a silent miss", "[risk]") {
  risk_options o;
  o.kill_switch_capacity = 2;
  o.on_no_reference = no_reference_policy::allow;
  auto rc = make(o);
  event_log log;
  rc->set_kill_listener(&event_log::record, &log);
  CHECK(absl::IsInvalidArgument(rc->engage(kill_scope::account, "", 1)));
  CHECK(absl::IsInvalidArgument(rc->engage(kill_scope::instrument, std::string(33, 'x'), 1)));
  CHECK(absl::IsInvalidArgument(rc->engage(static_cast<kill_scope>(9), "a", 1)));
  REQUIRE(rc->engage(kill_scope::account, "a1", 1).ok());
  REQUIRE(rc->engage(kill_scope::account, "a2", 1).ok());
  REQUIRE(rc->engage(kill_scope::account, "a2", 1).ok());  // already engaged: no capacity needed
  const absl::Status full = rc->engage(kill_scope::account, "a3", 1);
  CHECK(absl::IsResourceExhausted(full));
  CHECK_FALSE(rc->engaged(kill_scope::account, "a3"));
  // The other scope has its own capacity.
  REQUIRE(rc->engage(kill_scope::instrument, "I1", 1).ok());
  expect(send(*rc, "a3", "X", 1, 10, 2), risk_reason::none, na, 10.0);
  expect(send(*rc, "a2", "X", 1, 10, 2), risk_reason::kill_switch_account);
  // Releasing one makes room; released keys' tombstones are reused.
  for (int round = 0; round < 50; ++round) {
    REQUIRE(rc->release(kill_scope::account, "a1", 3).ok());
    REQUIRE(rc->engage(kill_scope::account, "a3", 3).ok());
    expect(send(*rc, "a3", "X", 1, 10, 4), risk_reason::kill_switch_account);
    expect(send(*rc, "a1", "X", 1, 10, 4), risk_reason::none, na, 10.0);
    REQUIRE(rc->release(kill_scope::account, "a3", 3).ok());
    REQUIRE(rc->engage(kill_scope::account, "a1", 3).ok());
  }
  CHECK(rc->stats().killed_accounts == 2);
  CHECK(log.events.size() == 3 + 4 * 50);
}

TEST_CASE("malformed orders are rejected with the value that made them so", "[risk]") {
  auto cache = make_cache();
  REQUIRE(cache->put("AAPL", 100.0, 1, "", 0).ok());
  risk_options o;
  o.prices = cache.get();
  auto rc = make(o);
  for (double q : {na, inf, -inf, -1.0, 0.0, -0.0}) {
    INFO("quantity " << q);
    expect(rc->check(order("a", "AAPL", "q", q, 100), 1), risk_reason::invalid_quantity, na, q);
  }
  for (double p : {inf, -inf, -100.0, 0.0, -0.0}) {
    INFO("price " << p);
    expect(rc->check(order("a", "AAPL", "p", 1, p), 1), risk_reason::invalid_price, na, p);
  }
  // Quantity is checked before price, price before the keys.
  expect(rc->check(order("", "", "", 0, -1), 1), risk_reason::invalid_quantity, na, 0.0);
  expect(rc->check(order("", "", "", 1, -1), 1), risk_reason::invalid_price, na, -1.0);
  const std::string k32(32, 'k'), k33(33, 'k'), id64(64, 'i'), id65(65, 'i');
  expect(rc->check(order("", "AAPL", "x", 1, 100), 1), risk_reason::invalid_account, 32, 0);
  expect(rc->check(order(k33, "AAPL", "x", 1, 100), 1), risk_reason::invalid_account, 32, 33);
  expect(rc->check(order("a", "", "x", 1, 100), 1), risk_reason::invalid_instrument, 32, 0);
  expect(rc->check(order("a", k33, "x", 1, 100), 1), risk_reason::invalid_instrument, 32, 33);
  expect(rc->check(order("a", "AAPL", "", 1, 100), 1), risk_reason::invalid_client_order_id, 64, 0);
  expect(rc->check(order("a", "AAPL", id65, 1, 100), 1), risk_reason::invalid_client_order_id, 64,
         65);
  // At the longest lengths: well formed (k32 has no reference price).
  expect(rc->check(order(k32, "AAPL", id64, 1, 100), 1), risk_reason::none, na, 100.0, 100.0);
  expect(rc->check(order("a", k32, "y", 1, 100), 1), risk_reason::no_reference_price);
  // NaN of any sign is a market order, not a bad price.
  expect(rc->check(order("a", "AAPL", "m", 2, -na), 1), risk_reason::none, na, 200.0, 100.0);
  // A malformed order is not remembered as a duplicate.
  expect(rc->check(order("a", "AAPL", "z", 0, 100), 1), risk_reason::invalid_quantity, na, 0.0);
  expect(rc->check(order("a", "AAPL", "z", 1, 100), 1), risk_reason::none, na, 100.0, 100.0);
  CHECK(rc->stats().decisions[static_cast<std::size_t>(risk_reason::invalid_quantity)] == 8);
}

TEST_CASE("max quantity at and just above the limit", "[risk]") {
  auto cache = make_cache();
  REQUIRE(cache->put("I", 10.0, 1, "", 0).ok());
  risk_options o;
  o.prices = cache.get();
  o.max_quantity = 500;
  auto rc = make(o);
  expect(send(*rc, "a", "I", 500, 10, 1), risk_reason::none, na, 5000.0, 10.0);
  expect(send(*rc, "a", "I", 499.999, 10, 1), risk_reason::none, na, 499.999 * 10, 10.0);
  expect(send(*rc, "a", "I", 500.001, 10, 1), risk_reason::max_quantity, 500, 500.001);
  expect(send(*rc, "a", "I", std::nextafter(500.0, inf), na, 1), risk_reason::max_quantity, 500,
         std::nextafter(500.0, inf));
  // Quantity comes before the reference price.
  expect(send(*rc, "a", "NOREF", 501, 10, 1), risk_reason::max_quantity, 500, 501);
}

TEST_CASE("price collar in percent at the edge and one tick either side", "[risk]") {
  auto cache = make_cache();
  REQUIRE(cache->put("I", 100.0, 1, "", 0).ok());
  REQUIRE(cache->put("J", 80.0, 1, "", 0).ok());
  risk_options o;
  o.prices = cache.get();
  o.collar = collar_unit::percent;
  o.collar_width = 5;
  auto rc = make(o);
  expect(send(*rc, "a", "I", 1, 105.00, 1), risk_reason::none, na, 105.0, 100.0);
  expect(send(*rc, "a", "I", 1, 104.99, 1), risk_reason::none, na, 104.99, 100.0);
  expect(send(*rc, "a", "I", 1, 105.01, 1), risk_reason::price_collar, 105.0, 105.01, 100.0);
  expect(send(*rc, "a", "I", 1, 95.00, 1), risk_reason::none, na, 95.0, 100.0);
  expect(send(*rc, "a", "I", 1, 95.01, 1), risk_reason::none, na, 95.01, 100.0);
  expect(send(*rc, "a", "I", 1, 94.99, 1), risk_reason::price_collar, 95.0, 94.99, 100.0);
  // Market orders have no limit price to collar.
  expect(send(*rc, "a", "I", 1, na, 1), risk_reason::none, na, 100.0, 100.0);

  // 1.5% of 80 is 1.2: 81.20 - 80 is 1.2000000000000028 in binary, still
  // exactly at the edge in decimal, so allowed.
  auto rj = make([&] {
    risk_options p = o;
    p.collar_width = 1.5;
    return p;
  }());
  CHECK(81.2 - 80.0 > 80.0 * 1.5 / 100);  // the case the tolerance exists for
  expect(send(*rj, "a", "J", 1, 81.20, 1), risk_reason::none, na, 81.2, 80.0);
  expect(send(*rj, "a", "J", 1, 81.21, 1), risk_reason::price_collar, 80.0 + 80.0 * 1.5 / 100,
         81.21, 80.0);
  expect(send(*rj, "a", "J", 1, 78.80, 1), risk_reason::none, na, 78.8, 80.0);
  expect(send(*rj, "a", "J", 1, 78.79, 1), risk_reason::price_collar, 80.0 - 80.0 * 1.5 / 100,
         78.79, 80.0);
}

TEST_CASE("price collar in bps at the edge and one tick either side", "[risk]") {
  auto cache = make_cache();
  REQUIRE(cache->put("I", 100.0, 1, "", 0).ok());
  risk_options o;
  o.prices = cache.get();
  o.collar = collar_unit::bps;
  o.collar_width = 50;
  auto rc = make(o);
  expect(send(*rc, "a", "I", 1, 100.50, 1), risk_reason::none, na, 100.5, 100.0);
  expect(send(*rc, "a", "I", 1, 100.49, 1), risk_reason::none, na, 100.49, 100.0);
  expect(send(*rc, "a", "I", 1, 100.51, 1), risk_reason::price_collar, 100.5, 100.51, 100.0);
  expect(send(*rc, "a", "I", 1, 99.50, 1), risk_reason::none, na, 99.5, 100.0);
  expect(send(*rc, "a", "I", 1, 99.51, 1), risk_reason::none, na, 99.51, 100.0);
  expect(send(*rc, "a", "I", 1, 99.49, 1), risk_reason::price_collar, 99.5, 99.49, 100.0);
}

TEST_CASE("price collar in ticks at the edge and one tick either side", "[risk]") {
  auto cache = make_cache();
  REQUIRE(cache->put("I", 101.37, 1, "", 0).ok());
  risk_options o;
  o.prices = cache.get();
  o.collar = collar_unit::ticks;
  o.collar_width = 3;
  o.collar_tick_size = 0.01;
  auto rc = make(o);
  const double band = 3 * 0.01;
  // 101.40 - 101.37 is 0.030000000000001137 in binary: at the edge in decimal.
  expect(send(*rc, "a", "I", 1, 101.40, 1), risk_reason::none, na, 101.40, 101.37);
  expect(send(*rc, "a", "I", 1, 101.39, 1), risk_reason::none, na, 101.39, 101.37);
  expect(send(*rc, "a", "I", 1, 101.41, 1), risk_reason::price_collar, 101.37 + band, 101.41,
         101.37);
  expect(send(*rc, "a", "I", 1, 101.34, 1), risk_reason::none, na, 101.34, 101.37);
  expect(send(*rc, "a", "I", 1, 101.35, 1), risk_reason::none, na, 101.35, 101.37);
  expect(send(*rc, "a", "I", 1, 101.33, 1), risk_reason::price_collar, 101.37 - band, 101.33,
         101.37);
  // Off the tick grid, just past the edge, is outside.
  expect(send(*rc, "a", "I", 1, 101.4001, 1), risk_reason::price_collar, 101.37 + band, 101.4001,
         101.37);

  // Width 0: only the reference itself.
  auto rz = make([&] {
    risk_options p = o;
    p.collar_width = 0;
    return p;
  }());
  expect(send(*rz, "a", "I", 1, 101.37, 1), risk_reason::none, na, 101.37, 101.37);
  expect(send(*rz, "a", "I", 1, 101.38, 1), risk_reason::price_collar, 101.37, 101.38, 101.37);
}

TEST_CASE("max notional at and just above the limit for limit and market orders", "[risk]") {
  auto cache = make_cache();
  REQUIRE(cache->put("I", 100.0, 1, "", 0).ok());
  REQUIRE(cache->put("PENNY", 0.1, 1, "", 0).ok());
  risk_options o;
  o.prices = cache.get();
  o.max_notional = 10000;
  auto rc = make(o);
  expect(send(*rc, "a", "I", 100, 100, 1), risk_reason::none, na, 10000.0, 100.0);
  expect(send(*rc, "a", "I", 100, 100.01, 1), risk_reason::max_notional, 10000, 100 * 100.01,
         100.0);
  expect(send(*rc, "a", "I", 101, 99, 1), risk_reason::none, na, 9999.0, 100.0);
  // Market orders use the reference price.
  expect(send(*rc, "a", "I", 100, na, 1), risk_reason::none, na, 10000.0, 100.0);
  expect(send(*rc, "a", "I", 100.01, na, 1), risk_reason::max_notional, 10000, 100.01 * 100, 100.0);
  // A limit order below the reference uses its own (lower) price.
  expect(send(*rc, "a", "I", 110, 90, 1), risk_reason::none, na, 9900.0, 100.0);

  // 3 x 0.1 is 0.30000000000000004 in binary: at a limit of 0.3 in decimal.
  auto rp = make([&] {
    risk_options p = o;
    p.max_notional = 0.3;
    return p;
  }());
  expect(send(*rp, "a", "PENNY", 3, 0.1, 1), risk_reason::none, na, 3 * 0.1, 0.1);
  expect(send(*rp, "a", "PENNY", 3.01, 0.1, 1), risk_reason::max_notional, 0.3, 3.01 * 0.1, 0.1);
}

TEST_CASE("no fresh reference price under the reject policy", "[risk]") {
  auto cache = make_cache();
  risk_options o;
  o.prices = cache.get();
  auto rc = make(o);
  expect(send(*rc, "a", "NONE", 1, 10, 1), risk_reason::no_reference_price);
  expect(send(*rc, "a", "NONE", 1, na, 1), risk_reason::no_reference_price);
  // Without a cache at all nothing has a reference.
  auto bare = make(risk_options{});
  expect(send(*bare, "a", "NONE", 1, 10, 1), risk_reason::no_reference_price);
}

TEST_CASE("no fresh reference price under the allow policy skips what needs it", "[risk]") {
  auto cache = make_cache();
  risk_options o;
  o.prices = cache.get();
  o.on_no_reference = no_reference_policy::allow;
  o.collar_width = 1;  // percent
  o.max_notional = 1000;
  o.account_max_notional = 1500;
  auto rc = make(o);
  // No collar without a reference; the limit price gives the notional.
  expect(send(*rc, "a", "NONE", 10, 100, 1), risk_reason::none, na, 1000.0);
  expect(send(*rc, "a", "NONE", 10, 100.01, 1), risk_reason::max_notional, 1000, 10 * 100.01);
  // A market order's notional is unknown: no notional limit applies and it
  // adds nothing to the account's notional.
  expect(send(*rc, "a", "NONE", 1e6, na, 1), risk_reason::none);
  expect(send(*rc, "a", "NONE", 5, 100, 1), risk_reason::none, na, 500.0);
  expect(send(*rc, "a", "NONE", 0.01, 100, 1), risk_reason::account_notional, 1500, 1501.0);
  // With a reference the collar applies again.
  REQUIRE(cache->put("NONE", 100.0, 1, "", 1).ok());
  expect(send(*rc, "b", "NONE", 1, 101.01, 2), risk_reason::price_collar, 101.0, 101.01, 100.0);
}

TEST_CASE("a stale reference price is no reference under both policies", "[risk]") {
  auto cache = make_cache(1 * sec);
  REQUIRE(cache->put("I", 100.0, 1, "", 0).ok());
  risk_options o;
  o.prices = cache.get();
  o.collar_width = 1;
  auto rc = make(o);
  auto ra = make([&] {
    risk_options p = o;
    p.on_no_reference = no_reference_policy::allow;
    return p;
  }());
  // Exactly max_age old is still fresh (the cache's rule); one ns more is not.
  expect(send(*rc, "a", "I", 1, 100, sec), risk_reason::none, na, 100.0, 100.0);
  expect(send(*rc, "a", "I", 1, 100, sec + 1), risk_reason::no_reference_price);
  expect(send(*ra, "a", "I", 1, 102, sec), risk_reason::price_collar, 101.0, 102.0, 100.0);
  // Stale under allow: the stale price is not used for the collar.
  expect(send(*ra, "a", "I", 1, 102, sec + 1), risk_reason::none, na, 102.0);

  // The checker's own max_reference_age_ns tightens the cache's.
  auto rt = make([&] {
    risk_options p = o;
    p.max_reference_age_ns = sec / 2;
    return p;
  }());
  expect(send(*rt, "a", "I", 1, 100, sec / 2), risk_reason::none, na, 100.0, 100.0);
  expect(send(*rt, "a", "I", 1, 100, sec / 2 + 1), risk_reason::no_reference_price);

  // A price evicted by a move is gone too, until it is cached again.
  REQUIRE(cache->put("I", 100.0, 1, "", 2 * sec).ok());
  expect(send(*rc, "a", "I", 1, 100, 2 * sec), risk_reason::none, na, 100.0, 100.0);
  auto moved = cache->on_price("I", 101.0, 2, 2 * sec);  // 100 bps > 10 bps
  REQUIRE(moved.ok());
  REQUIRE(moved->outcome == tollgate::price_outcome::evicted);
  expect(send(*rc, "a", "I", 1, 101, 2 * sec), risk_reason::no_reference_price);
}

TEST_CASE("account notional per period at the limit and across the period boundary", "[risk]") {
  auto cache = make_cache();
  REQUIRE(cache->put("I", 100.0, 1, "", 0).ok());
  risk_options o;
  o.prices = cache.get();
  o.period_ns = 1000;
  o.account_max_notional = 1000;
  auto rc = make(o);
  // The window is [0, 1000) though the first order comes at 900.
  expect(send(*rc, "a", "I", 4, 100, 900), risk_reason::none, na, 400.0, 100.0);
  expect(send(*rc, "a", "I", 4, 100, 950), risk_reason::none, na, 400.0, 100.0);
  expect(send(*rc, "a", "I", 4, 100, 960), risk_reason::account_notional, 1000, 1200, 100.0);
  // A rejected order does not count: exactly the limit still fits.
  expect(send(*rc, "a", "I", 2, na, 970), risk_reason::none, na, 200.0, 100.0);
  expect(send(*rc, "a", "I", 0.01, 100, 999), risk_reason::account_notional, 1000, 1001, 100.0);
  // Other accounts have their own.
  expect(send(*rc, "b", "I", 10, 100, 999), risk_reason::none, na, 1000.0, 100.0);
  // 1000 is the next window, 100 ns after the first order.
  expect(send(*rc, "a", "I", 10, 100, 1000), risk_reason::none, na, 1000.0, 100.0);
  expect(send(*rc, "a", "I", 0.01, 100, 1999), risk_reason::account_notional, 1000, 1001, 100.0);
  expect(send(*rc, "a", "I", 0.01, 100, 2000), risk_reason::none, na, 1.0, 100.0);
  // A window with no orders in between changes nothing.
  expect(send(*rc, "a", "I", 10, 100, 5500), risk_reason::none, na, 1000.0, 100.0);
  CHECK(rc->stats().accounts == 2);
}

TEST_CASE("account order count per period at the limit and across the boundary", "[risk]") {
  risk_options o;
  o.on_no_reference = no_reference_policy::allow;
  o.period_ns = 100;
  o.account_max_orders = 3;
  auto rc = make(o);
  for (int i = 0; i < 3; ++i) expect(send(*rc, "a", "I", 1, 1, 10), risk_reason::none, na, 1.0);
  expect(send(*rc, "a", "I", 1, 1, 99), risk_reason::account_order_count, 3, 4);
  expect(send(*rc, "b", "I", 1, 1, 99), risk_reason::none, na, 1.0);
  expect(send(*rc, "a", "I", 1, 1, 100), risk_reason::none, na, 1.0);
  // Notional comes before the count.
  auto rn = make([&] {
    risk_options p = o;
    p.account_max_notional = 2;
    return p;
  }());
  expect(send(*rn, "a", "I", 2, 1, 10), risk_reason::none, na, 2.0);
  expect(send(*rn, "a", "I", 1, 1, 10), risk_reason::account_notional, 2, 3);
  // A clock stepping back stays in the account's latest window.
  expect(send(*rc, "c", "I", 1, 1, 250), risk_reason::none, na, 1.0);
  expect(send(*rc, "c", "I", 1, 1, 150), risk_reason::none, na, 1.0);
  expect(send(*rc, "c", "I", 1, 1, 260), risk_reason::none, na, 1.0);
  expect(send(*rc, "c", "I", 1, 1, 140), risk_reason::account_order_count, 3, 4);
}

TEST_CASE("duplicate client order ids within the window and at its boundary", "[risk]") {
  risk_options o;
  o.on_no_reference = no_reference_policy::allow;
  o.duplicate_window_ns = 1000;
  o.max_quantity = 100;
  auto rc = make(o);
  expect(rc->check(order("a", "I", "X1", 1, 10), 100), risk_reason::none, na, 10.0);
  expect(rc->check(order("a", "I", "X1", 1, 10), 100), risk_reason::duplicate_order, 1000, 0);
  expect(rc->check(order("a", "J", "X1", 2, na), 1099), risk_reason::duplicate_order, 1000, 999);
  // Per account.
  expect(rc->check(order("b", "I", "X1", 1, 10), 1099), risk_reason::none, na, 10.0);
  // At exactly the window the id is new again, and then remembered anew.
  expect(rc->check(order("a", "I", "X1", 1, 10), 1100), risk_reason::none, na, 10.0);
  expect(rc->check(order("a", "I", "X1", 1, 10), 2099), risk_reason::duplicate_order, 1000, 999);
  // A duplicate is reported before the later checks ...
  expect(rc->check(order("a", "I", "X1", 1000, 10), 2000), risk_reason::duplicate_order, 1000, 900);
  // ... and a rejected order is not remembered.
  expect(rc->check(order("a", "I", "R", 1000, 10), 2000), risk_reason::max_quantity, 100, 1000);
  expect(rc->check(order("a", "I", "R", 1, 10), 2000), risk_reason::none, na, 10.0);
  // Malformed and killed orders are decided before the duplicate check.
  expect(rc->check(order("a", "I", "R", -1, 10), 2001), risk_reason::invalid_quantity, na, -1);
  REQUIRE(rc->engage(kill_scope::account, "a", 2001).ok());
  expect(rc->check(order("a", "I", "R", 1, 10), 2001), risk_reason::kill_switch_account);

  // Window 0: no duplicate check.
  auto off = make([&] {
    risk_options p = o;
    p.duplicate_window_ns = 0;
    return p;
  }());
  expect(off->check(order("a", "I", "X1", 1, 10), 1), risk_reason::none, na, 10.0);
  expect(off->check(order("a", "I", "X1", 1, 10), 1), risk_reason::none, na, 10.0);
  CHECK(off->stats().duplicate_ids == 0);
}

TEST_CASE("account capacity fails closed and accounts of ended windows make room", "[risk]") {
  risk_options o;
  o.on_no_reference = no_reference_policy::allow;
  o.period_ns = 1000;
  o.account_max_orders = 100;
  o.account_capacity = 2;
  auto rc = make(o);
  expect(send(*rc, "A", "I", 1, 1, 10), risk_reason::none, na, 1.0);
  expect(send(*rc, "B", "I", 1, 1, 20), risk_reason::none, na, 1.0);
  expect(send(*rc, "C", "I", 1, 1, 30), risk_reason::account_capacity, 2, 2);
  expect(send(*rc, "C", "I", 1, 1, 999), risk_reason::account_capacity, 2, 2);
  // The accounts held are never reset for a newcomer.
  expect(send(*rc, "A", "I", 1, 1, 999), risk_reason::none, na, 1.0);
  // A newcomer rejected for its own limit takes no room.
  auto rn = make([&] {
    risk_options p = o;
    p.account_max_notional = 5;
    return p;
  }());
  expect(send(*rn, "A", "I", 6, 1, 10), risk_reason::account_notional, 5, 6);
  expect(send(*rn, "B", "I", 1, 1, 10), risk_reason::none, na, 1.0);
  expect(send(*rn, "C", "I", 1, 1, 10), risk_reason::none, na, 1.0);
  expect(send(*rn, "D", "I", 1, 1, 10), risk_reason::account_capacity, 2, 2);

  // Window 1: A and B carry nothing any more. C arrives first and takes a
  // place; A comes back as new and takes the other; B finds two accounts
  // with state in this window.
  expect(send(*rc, "C", "I", 1, 1, 1000), risk_reason::none, na, 1.0);
  expect(send(*rc, "A", "I", 1, 1, 1001), risk_reason::none, na, 1.0);
  expect(send(*rc, "B", "I", 1, 1, 1002), risk_reason::account_capacity, 2, 2);
  CHECK(rc->stats().accounts == 2);
  CHECK(rc->stats().decisions[static_cast<std::size_t>(risk_reason::account_capacity)] == 3);
  // Without account limits no state is kept and capacity never rejects.
  auto free_ = make([&] {
    risk_options p = o;
    p.account_max_orders = std::numeric_limits<std::uint64_t>::max();
    return p;
  }());
  for (int i = 0; i < 10; ++i) {
    expect(send(*free_, "acct" + std::to_string(i), "I", 1, 1, 1), risk_reason::none, na, 1.0);
  }
  CHECK(free_->stats().accounts == 0);
}

TEST_CASE("many accounts cycle through a small table across windows", "[risk]") {
  risk_options o;
  o.on_no_reference = no_reference_policy::allow;
  o.period_ns = 100;
  o.account_max_orders = 2;
  o.account_capacity = 8;
  auto rc = make(o);
  // Each window 8 of 20 accounts get a place, in arrival order; the rest
  // are rejected; an account holding a place gets its second order in.
  for (std::uint64_t w = 0; w < 50; ++w) {
    for (int i = 0; i < 20; ++i) {
      const std::string a = "acct" + std::to_string((i + w * 3) % 20);
      const risk_decision d = send(*rc, a, "I", 1, 1, w * 100 + static_cast<std::uint64_t>(i));
      CHECK(d.reason == (i < 8 ? risk_reason::none : risk_reason::account_capacity));
      if (i < 8) {
        CHECK(send(*rc, a, "I", 1, 1, w * 100 + 50).allowed);
        CHECK(send(*rc, a, "I", 1, 1, w * 100 + 51).reason == risk_reason::account_order_count);
      }
    }
    CHECK(rc->stats().accounts == 8);
  }
}

TEST_CASE("duplicate capacity fails closed until an id leaves its window", "[risk]") {
  risk_options o;
  o.on_no_reference = no_reference_policy::allow;
  o.duplicate_window_ns = 100;
  o.duplicate_capacity = 3;
  auto rc = make(o);
  expect(rc->check(order("a", "I", "1", 1, 1), 0), risk_reason::none, na, 1.0);
  expect(rc->check(order("a", "I", "2", 1, 1), 10), risk_reason::none, na, 1.0);
  expect(rc->check(order("b", "I", "3", 1, 1), 20), risk_reason::none, na, 1.0);
  expect(rc->check(order("a", "I", "4", 1, 1), 30), risk_reason::duplicate_capacity, 3, 3);
  expect(rc->check(order("c", "I", "4", 1, 1), 99), risk_reason::duplicate_capacity, 3, 3);
  // The ids held are still duplicates.
  expect(rc->check(order("a", "I", "2", 1, 1), 99), risk_reason::duplicate_order, 100, 89);
  // At 100 the first id has left its window: room for one.
  expect(rc->check(order("a", "I", "4", 1, 1), 100), risk_reason::none, na, 1.0);
  expect(rc->check(order("a", "I", "5", 1, 1), 101), risk_reason::duplicate_capacity, 3, 3);
  expect(rc->check(order("a", "I", "5", 1, 1), 110), risk_reason::none, na, 1.0);
  // "1" left its window, so it is accepted again (and takes the next room).
  expect(rc->check(order("a", "I", "1", 1, 1), 120), risk_reason::none, na, 1.0);
  expect(rc->check(order("a", "I", "6", 1, 1), 120), risk_reason::duplicate_capacity, 3, 3);
  // The capacity check comes after the account limits.
  auto rl = make([&] {
    risk_options p = o;
    p.account_max_orders = 1;
    p.period_ns = 1000;
    return p;
  }());
  expect(rl->check(order("a", "I", "1", 1, 1), 0), risk_reason::none, na, 1.0);
  expect(rl->check(order("b", "I", "1", 1, 1), 0), risk_reason::none, na, 1.0);
  expect(rl->check(order("c", "I", "1", 1, 1), 0), risk_reason::none, na, 1.0);
  expect(rl->check(order("a", "I", "2", 1, 1), 0), risk_reason::account_order_count, 1, 2);
  expect(rl->check(order("d", "I", "1", 1, 1), 0), risk_reason::duplicate_capacity, 3, 3);
  // The new account rejected for duplicate capacity took no account room.
  CHECK(rl->stats().accounts == 3);
}

TEST_CASE("a long stream of ids through a small duplicate table", "[risk]") {
  risk_options o;
  o.on_no_reference = no_reference_policy::allow;
  o.duplicate_window_ns = 1000;
  o.duplicate_capacity = 50;
  auto rc = make(o);
  // 100 orders per window of 1000 ns, 50 remembered: the first 50 of each
  // run of 1000 ns get in (the ids of 1000 ns before have left).
  std::uint64_t accepted = 0;
  for (std::uint64_t i = 0; i < 20000; ++i) {
    const std::uint64_t now = i * 10;
    const std::string id = std::to_string(i);
    const risk_decision d = rc->check(order("a", "I", id, 1, 1), now);
    const bool expect_in = (now % 1000) < 500;
    CHECK(d.allowed == expect_in);
    if (!expect_in) CHECK(d.reason == risk_reason::duplicate_capacity);
    accepted += d.allowed;
    // Every id accepted within the window is still refused.
    if (i % 97 == 0 && i >= 10) {
      const std::uint64_t back = (now / 1000) * 1000 / 10;
      CHECK(rc->check(order("a", "I", std::to_string(back), 1, 1), now).reason ==
            risk_reason::duplicate_order);
    }
  }
  CHECK(accepted == 10000);
}

TEST_CASE("statistics count every decision by reason", "[risk]") {
  auto cache = make_cache();
  REQUIRE(cache->put("I", 10.0, 1, "", 0).ok());
  risk_options o;
  o.prices = cache.get();
  o.max_quantity = 10;
  auto rc = make(o);
  (void)send(*rc, "a", "I", 1, 10, 1);
  (void)send(*rc, "a", "I", 11, 10, 1);
  (void)send(*rc, "a", "I", 0, 10, 1);
  (void)send(*rc, "a", "NOREF", 1, 10, 1);
  (void)rc->check(order("a", "I", "d", 1, 10), 1);
  (void)rc->check(order("a", "I", "d", 1, 10), 1);
  const auto s = rc->stats();
  using R = risk_reason;
  CHECK(s.checked == 6);
  CHECK(s.allowed == 2);
  CHECK(s.rejected == 4);
  CHECK(s.decisions[static_cast<std::size_t>(R::none)] == 2);
  CHECK(s.decisions[static_cast<std::size_t>(R::max_quantity)] == 1);
  CHECK(s.decisions[static_cast<std::size_t>(R::invalid_quantity)] == 1);
  CHECK(s.decisions[static_cast<std::size_t>(R::no_reference_price)] == 1);
  CHECK(s.decisions[static_cast<std::size_t>(R::duplicate_order)] == 1);
  CHECK(s.duplicate_ids == 2);
  for (std::size_t i = 0; i < tollgate::risk_reason_count; ++i) {
    CHECK(std::string(tollgate::risk_reason_name(static_cast<R>(i))) != "unknown");
  }
}

TEST_CASE("threads on one account never pass its notional limit together", "[risk]") {
  auto cache = make_cache();
  REQUIRE(cache->put("I", 1.0, 1, "", 0).ok());
  risk_options o;
  o.prices = cache.get();
  o.period_ns = 1000 * sec;
  o.account_max_notional = 5000;
  o.duplicate_capacity = 1 << 17;
  auto rc = make(o);
  constexpr int threads = 4;
  constexpr int per_thread = 20000;
  std::atomic<std::uint64_t> accepted{0}, rejected{0}, other{0}, accepted_notional{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      char id[32];
      for (int i = 0; i < per_thread; ++i) {
        std::snprintf(id, sizeof id, "t%d-%d", t, i);
        const double qty = 1 + (i % 3);  // notional 1, 2 or 3
        const risk_decision d = rc->check(order("hot", "I", id, qty, 1.0), 10);
        if (d.allowed) {
          accepted.fetch_add(1);
          accepted_notional.fetch_add(static_cast<std::uint64_t>(qty));
        } else {
          rejected.fetch_add(1);
          if (d.reason != risk_reason::account_notional) other.fetch_add(1);  // no CHECK off main
        }
      }
    });
  }
  for (auto& th : pool) th.join();
  CHECK(accepted.load() + rejected.load() == std::uint64_t{threads} * per_thread);
  CHECK(other.load() == 0);  // every rejection was for the account's notional
  CHECK(accepted_notional.load() <= 5000);
  CHECK(accepted_notional.load() >= 4998);  // fills up: every later order needs >= 1
  const auto s = rc->stats();
  CHECK(s.allowed == accepted.load());
  CHECK(s.rejected == rejected.load());
  CHECK(s.duplicate_ids == accepted.load());
}

TEST_CASE("threads racing one client order id accept it exactly once", "[risk]") {
  risk_options o;
  o.on_no_reference = no_reference_policy::allow;
  o.account_max_orders = 1'000'000;
  o.period_ns = 1000 * sec;
  auto rc = make(o);
  constexpr int threads = 4;
  constexpr int ids = 5000;
  std::atomic<std::uint64_t> accepted{0}, duplicates{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      char id[16];
      for (int i = 0; i < ids; ++i) {
        std::snprintf(id, sizeof id, "%d", i);
        const risk_decision d = rc->check(order(i % 2 ? "x" : "y", "I", id, 1, 1), 10);
        if (d.allowed) {
          accepted.fetch_add(1);
        } else if (d.reason == risk_reason::duplicate_order) {
          duplicates.fetch_add(1);
        }
      }
    });
  }
  for (auto& th : pool) th.join();
  CHECK(accepted.load() == ids);
  CHECK(duplicates.load() == std::uint64_t{threads - 1} * ids);
}

TEST_CASE("threads bringing new accounts never hold more than the capacity", "[risk]") {
  risk_options o;
  o.on_no_reference = no_reference_policy::allow;
  o.account_max_orders = 1000;
  o.account_capacity = 64;
  o.period_ns = 1000;
  auto rc = make(o);
  constexpr int threads = 4;
  std::atomic<std::uint64_t> accepted{0}, capacity{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      char account[16];
      for (int i = 0; i < 500; ++i) {
        std::snprintf(account, sizeof account, "t%d-%d", t, i);
        const risk_decision d = send(*rc, account, "I", 1, 1, 10);
        if (d.allowed) {
          accepted.fetch_add(1);
        } else if (d.reason == risk_reason::account_capacity) {
          capacity.fetch_add(1);
        }
      }
    });
  }
  for (auto& th : pool) th.join();
  CHECK(accepted.load() == 64);
  CHECK(capacity.load() == threads * 500 - 64);
  CHECK(rc->stats().accounts == 64);
}

TEST_CASE("a kill switch stops every check that starts after engage returns", "[risk]") {
  risk_options o;
  o.on_no_reference = no_reference_policy::allow;
  o.duplicate_window_ns = 0;
  auto rc = make(o);
  for (kill_scope scope : {kill_scope::global, kill_scope::account, kill_scope::instrument}) {
    std::atomic<bool> returned{false};
    std::atomic<bool> go{false};
    std::atomic<std::uint64_t> late{0}, stopped{0};
    std::vector<std::thread> pool;
    for (int t = 0; t < 3; ++t) {
      pool.emplace_back([&] {
        while (!go.load()) std::this_thread::yield();
        for (;;) {  // until a check that started after engage returned is stopped
          const bool after = returned.load(std::memory_order_seq_cst);
          const risk_decision d = rc->check(order("acct", "INST", "id", 1, 1), 10);
          if (after && d.allowed) late.fetch_add(1);
          if (after && !d.allowed) {
            stopped.fetch_add(1);
            break;
          }
        }
      });
    }
    go.store(true);
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    const std::string_view key = scope == kill_scope::account      ? "acct"
                                 : scope == kill_scope::instrument ? "INST"
                                                                   : "";
    REQUIRE(rc->engage(scope, key, 1).ok());
    returned.store(true, std::memory_order_seq_cst);
    for (auto& th : pool) th.join();
    CHECK(late.load() == 0);
    CHECK(stopped.load() == 3);
    REQUIRE(rc->release(scope, key, 2).ok());
    CHECK(rc->check(order("acct", "INST", "id", 1, 1), 10).allowed);
  }
}

TEST_CASE("risk checks allocate nothing", "[risk]") {
  auto cache = make_cache(sec);
  char instruments[20][8];
  for (int i = 0; i < 20; ++i) std::snprintf(instruments[i], sizeof instruments[i], "I%d", i);
  for (int i = 0; i < 20; i += 2) REQUIRE(cache->put(instruments[i], 100.0, 1, "", 0).ok());
  risk_options o;
  o.prices = cache.get();
  o.collar_width = 2;
  o.max_quantity = 900;
  o.max_notional = 50000;
  o.period_ns = 5000;
  o.account_max_notional = 20000;
  o.account_max_orders = 2;
  o.account_capacity = 16;
  o.duplicate_window_ns = 50000;
  o.duplicate_capacity = 256;
  auto rc = make(o);
  REQUIRE(rc->engage(kill_scope::instrument, "I3", 0).ok());
  char accounts[40][8];
  for (int i = 0; i < 40; ++i) std::snprintf(accounts[i], sizeof accounts[i], "A%d", i);
  char ids[512][8];
  for (int i = 0; i < 512; ++i) std::snprintf(ids[i], sizeof ids[i], "c%d", i);
  (void)rc->check(order("warm", "I0", "w", 1, 100), 0);

  const std::uint64_t before_counter = risk_allocations.load();
  { std::string s(100, 'x'); }  // the counter counts
  CHECK(risk_allocations.load() - before_counter >= 1);

  std::array<std::uint64_t, tollgate::risk_reason_count> seen{};
  const std::uint64_t before = risk_allocations.load();
  for (int i = 0; i < 100000; ++i) {
    const std::uint64_t now = static_cast<std::uint64_t>(i) * 7;
    const double price = (i % 5 == 0) ? na : 97.0 + (i % 7);
    const risk_order ord =
        order(accounts[i % 40], instruments[i % 20], ids[(i * 13) % 512], 1 + (i % 1000), price);
    ++seen[static_cast<std::size_t>(rc->check(ord, now).reason)];
  }
  const std::uint64_t during = risk_allocations.load() - before;
  CHECK(during == 0);
  // Every path that could allocate ran.
  using R = risk_reason;
  for (R r : {R::none, R::kill_switch_instrument, R::duplicate_order, R::max_quantity,
              R::no_reference_price, R::price_collar, R::max_notional, R::account_notional,
              R::account_order_count, R::account_capacity, R::duplicate_capacity}) {
    INFO(tollgate::risk_reason_name(r));
    CHECK(seen[static_cast<std::size_t>(r)] > 0);
  }
}
