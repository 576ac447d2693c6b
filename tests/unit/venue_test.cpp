// Venue selection: weights, health through breakers, latency-aware power of
// two choices, sticky rendezvous hashing, determinism, and route() wiring.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tollgate/router.hpp"
#include "tollgate/venue.hpp"

using tollgate::breaker;
using tollgate::breaker_options;
using tollgate::breaker_state;
using tollgate::venue_config;
using tollgate::venue_pick;
using tollgate::venue_reason;
using tollgate::venue_set;
using tollgate::venue_set_options;
using tollgate::venue_strategy;

namespace {

constexpr std::uint64_t ms = 1'000'000;

std::shared_ptr<venue_set> make(std::vector<venue_config> v, venue_set_options o = {}) {
  auto s = venue_set::create(std::move(v), o);
  INFO((s.ok() ? std::string("ok") : std::string(s.status().message())));
  REQUIRE(s.ok());
  return *s;
}

std::vector<venue_config> plain(std::size_t n) {
  std::vector<venue_config> v;
  for (std::size_t i = 0; i < n; ++i) v.push_back({static_cast<std::uint32_t>(100 + i), 1, {}});
  return v;
}

std::shared_ptr<breaker> make_breaker() {
  breaker_options o;
  o.open_ns = 1000 * ms;
  o.half_open_probes = 1;
  auto b = breaker::create(o);
  REQUIRE(b.ok());
  return std::shared_ptr<breaker>(std::move(*b));
}

}  // namespace

TEST_CASE("weighted picks follow the weights", "[venue]") {
  auto s = make({{1, 1, {}}, {2, 2, {}}, {3, 5, {}}});
  std::uint64_t counts[3] = {};
  const int n = 80000;
  for (int i = 0; i < n; ++i) {
    const venue_pick p = s->pick("", static_cast<std::uint64_t>(i), 0);
    REQUIRE(p.ok);
    REQUIRE(p.venue_id == s->venue_id(p.index));
    ++counts[p.index];
  }
  CHECK(std::abs(static_cast<double>(counts[0]) / n - 1.0 / 8) < 0.01);
  CHECK(std::abs(static_cast<double>(counts[1]) / n - 2.0 / 8) < 0.01);
  CHECK(std::abs(static_cast<double>(counts[2]) / n - 5.0 / 8) < 0.01);
}

TEST_CASE("picks are a pure function of seed, nonce, key and the eligible set", "[venue]") {
  venue_set_options o;
  o.seed = 42;
  auto a = make(plain(8), o);
  auto b = make(plain(8), o);
  o.seed = 43;
  auto c = make(plain(8), o);
  int differ = 0;
  for (std::uint64_t nonce = 0; nonce < 1000; ++nonce) {
    const venue_pick pa = a->pick("", nonce, 0);
    CHECK(pa.index == b->pick("", nonce, 0).index);
    CHECK(pa.eligible == 0xff);
    // Replaying a journalled decision gives it back.
    CHECK(a->choose("", nonce, pa.eligible).index == pa.index);
    if (c->pick("", nonce, 0).index != pa.index) ++differ;
  }
  CHECK(differ > 700);  // another seed is another sequence
  // A replay with a journalled eligible mask reproduces the same choice
  // without the breakers being in the same state.
  const venue_pick restricted = a->choose("", 7, 0b10100000);
  CHECK((restricted.index == 5 || restricted.index == 7));
  CHECK(a->choose("", 7, 0b10100000).index == restricted.index);
  CHECK(a->choose("", 7, 0).reason == venue_reason::all_down);
  CHECK(a->choose("", 7, std::uint64_t{1} << 40).reason == venue_reason::all_down);
}

TEST_CASE("a venue whose breaker would reject is skipped until it can probe", "[venue]") {
  auto b0 = make_breaker();
  auto b1 = make_breaker();
  auto s = make({{1, 1, b0}, {2, 1, b1}});
  std::uint64_t now = 10 * ms;
  b0->transition(breaker_state::open, now);  // open until now + 1000 ms
  for (std::uint64_t nonce = 0; nonce < 200; ++nonce) {
    const venue_pick p = s->pick("", nonce, now + 999 * ms);
    REQUIRE(p.ok);
    CHECK(p.venue_id == 2);
    CHECK(p.eligible == 0b10);
  }
  // Open period over: eligible again, so it can get its half-open probe.
  CHECK(b0->ready_in(now + 1000 * ms) == 0);
  bool got_first = false;
  for (std::uint64_t nonce = 0; nonce < 200 && !got_first; ++nonce) {
    got_first = s->pick("", nonce, now + 1000 * ms).venue_id == 1;
  }
  CHECK(got_first);
  // The probe is taken: half-open with no probe left is skipped again.
  const auto probe = b0->acquire(now + 1000 * ms);
  REQUIRE(probe.allowed);
  CHECK(b0->state() == breaker_state::half_open);
  CHECK(b0->ready_in(now + 1000 * ms) == 1000 * ms);
  CHECK(s->pick("", 1, now + 1000 * ms).eligible == 0b10);

  // Both out: all_open with the soonest time a breaker admits again.
  b1->transition(breaker_state::open, now + 1000 * ms + 300 * ms);
  b0->transition(breaker_state::open, now + 1000 * ms);
  venue_pick none = s->pick("", 1, now + 1500 * ms);
  CHECK_FALSE(none.ok);
  CHECK(none.reason == venue_reason::all_open);
  CHECK(none.retry_after_ns == 500 * ms);  // b0 reopens at +2000 ms, b1 at +2300 ms
  // Forced open is down for good; disabled venues too.
  b0->transition(breaker_state::forced_open, now);
  b1->transition(breaker_state::forced_open, now);
  none = s->pick("", 1, now);
  CHECK(none.reason == venue_reason::all_down);
  CHECK(none.retry_after_ns == venue_set::never_ready);
  b0->transition(breaker_state::closed, now);
  CHECK(s->pick("", 1, now).venue_id == 1);
  CHECK(s->set_enabled(0, false));
  none = s->pick("", 1, now);
  CHECK(none.reason == venue_reason::all_down);
  CHECK(s->set_enabled(0, true));
  CHECK(s->pick("", 1, now).ok);
  CHECK_FALSE(s->set_enabled(2, false));
}

TEST_CASE("breaker ready_in follows every state", "[venue][breaker]") {
  auto b = make_breaker();
  CHECK(b->ready_in(0) == 0);
  b->transition(breaker_state::open, 100);
  CHECK(b->ready_in(100) == 1000 * ms);
  CHECK(b->ready_in(50) == 1000 * ms + 50);  // time stepping back never shortens it
  CHECK(b->ready_in(100 + 1000 * ms) == 0);
  b->transition(breaker_state::forced_open, 100);
  CHECK(b->ready_in(100) == breaker::never_ready);
  b->transition(breaker_state::forced_closed, 100);
  CHECK(b->ready_in(100) == 0);
  b->transition(breaker_state::disabled, 100);
  CHECK(b->ready_in(100) == 0);
  b->transition(breaker_state::half_open, 100);
  CHECK(b->ready_in(100) == 0);
}

TEST_CASE("least_latency prefers the faster of two candidates", "[venue]") {
  venue_set_options o;
  o.strategy = venue_strategy::least_latency;
  auto s = make(plain(3), o);
  // No samples yet: every venue counts as 0 ns, choice by draw order.
  CHECK(s->pick("", 0, 0).ok);
  for (int i = 0; i < 10; ++i) {
    s->record_latency(0, 900, 0);
    s->record_latency(1, 100, 0);
    s->record_latency(2, 500, 0);
  }
  std::uint64_t counts[3] = {};
  for (std::uint64_t nonce = 0; nonce < 30000; ++nonce) {
    const venue_pick p = s->pick("", nonce, 0);
    REQUIRE(p.ok);
    CHECK(p.alternative != p.index);
    ++counts[p.index];
  }
  CHECK(counts[0] == 0);  // the slowest never wins a pair
  // The fastest wins every pair it is in: 2 of the 3 equally likely pairs.
  CHECK(std::abs(static_cast<double>(counts[1]) / 30000 - 2.0 / 3) < 0.02);
  // With a single eligible venue there is no pair.
  s->set_enabled(1, false);
  s->set_enabled(2, false);
  const venue_pick one = s->pick("", 5, 0);
  CHECK(one.index == 0);
  CHECK(one.alternative == 0);
}

TEST_CASE("latency EWMA: first sample, then alpha-weighted", "[venue]") {
  venue_set_options o;
  o.latency_alpha = 0.25;
  auto s = make(plain(2), o);
  CHECK(s->stats(0, 0).latency_ewma_ns == -1.0);
  CHECK(s->record_latency(0, 1000, 5));
  CHECK(s->stats(0, 5).latency_ewma_ns == 1000.0);
  CHECK(s->record_latency(0, 2000, 5));
  CHECK(s->stats(0, 5).latency_ewma_ns == 1250.0);
  CHECK(s->stats(0, 5).latency_samples == 2);
  CHECK_FALSE(s->record_latency(2, 1, 5));
  CHECK(s->stats(9, 0).venue_id == 0);
}

TEST_CASE("an idle latency estimate decays so a slow venue is tried again", "[venue]") {
  venue_set_options o;
  o.strategy = venue_strategy::least_latency;
  o.latency_alpha = 0.5;
  o.latency_decay_ns = 1000 * ms;
  auto s = make(plain(2), o);
  const std::uint64_t t0 = 100 * ms;
  s->record_latency(0, 5000, t0);  // slow
  s->record_latency(1, 1000, t0);  // fast
  for (std::uint64_t nonce = 0; nonce < 100; ++nonce) CHECK(s->pick("", nonce, t0).index == 1);
  // Venue 1 keeps getting samples every 100 ms, venue 0 none: after 3 s
  // venue 0's estimate is 5000 * e^-3 = 249 ns, below venue 1's.
  const std::uint64_t t1 = t0 + 3000 * ms;
  for (std::uint64_t t = t0 + 100 * ms; t <= t1; t += 100 * ms) s->record_latency(1, 1000, t);
  const double fast = s->stats(1, t1).latency_ewma_ns;
  CHECK(s->stats(0, t1).latency_ewma_ns == Approx(5000 * std::exp(-3.0)).epsilon(1e-9));
  // Steady state of e = 0.5 * e * e^-0.1 + 500: the estimate stays near 1000.
  CHECK(fast == Approx(500 / (1 - 0.5 * std::exp(-0.1))).epsilon(1e-3));
  CHECK(s->pick("", 1, t1).index == 0);
  // A new sample folds into the decayed estimate: 249 + 0.5 * (5000 - 249).
  s->record_latency(0, 5000, t1);
  CHECK(s->stats(0, t1).latency_ewma_ns ==
        Approx(5000 * std::exp(-3.0) + 0.5 * (5000 - 5000 * std::exp(-3.0))).epsilon(1e-9));
  CHECK(s->pick("", 1, t1).index == 1);
  // Short idle times use the first-order term: within 0.2% of e^-x.
  const std::uint64_t t2 = t1 + 50 * ms;
  CHECK(s->stats(1, t2).latency_ewma_ns == Approx(fast * std::exp(-0.05)).epsilon(0.002));
  // Without decay the estimate stays.
  o.latency_decay_ns = 0;
  auto fixed = make(plain(1), o);
  fixed->record_latency(0, 700, 0);
  CHECK(fixed->stats(0, 1'000'000 * ms).latency_ewma_ns == 700.0);
  o.latency_decay_ns = (std::uint64_t{1} << 62) + 1;
  CHECK_FALSE(venue_set::create(plain(1), o).ok());
}

TEST_CASE("sticky picks keep a key's venue and move only the keys of a venue that leaves",
          "[venue]") {
  venue_set_options o;
  o.sticky = true;
  o.seed = 7;
  auto s = make(plain(8), o);
  const int keys = 20000;
  std::vector<std::uint32_t> home(keys);
  std::uint64_t per[8] = {};
  for (int k = 0; k < keys; ++k) {
    const std::string key = "acct-" + std::to_string(k);
    home[k] = s->pick(key, 1, 0).index;
    ++per[home[k]];
    CHECK(s->pick(key, 999, 0).index == home[k]);  // the nonce does not matter
  }
  for (std::uint64_t c : per) CHECK(std::abs(static_cast<double>(c) / keys - 0.125) < 0.015);
  s->set_enabled(3, false);
  int moved = 0;
  for (int k = 0; k < keys; ++k) {
    const std::uint32_t now_at = s->pick("acct-" + std::to_string(k), 1, 0).index;
    if (home[k] == 3) {
      CHECK(now_at != 3);
      ++moved;
    } else {
      CHECK(now_at == home[k]);  // nobody else moves
    }
  }
  CHECK(moved == static_cast<int>(per[3]));
  s->set_enabled(3, true);
  for (int k = 0; k < keys; k += 13) {
    CHECK(s->pick("acct-" + std::to_string(k), 1, 0).index == home[k]);
  }
  // An empty key falls back to the strategy.
  CHECK(s->pick("", 1, 0).ok);
}

TEST_CASE("sticky picks honour weights", "[venue]") {
  venue_set_options o;
  o.sticky = true;
  auto s = make({{1, 1, {}}, {2, 3, {}}}, o);
  int on_heavy = 0;
  const int keys = 40000;
  for (int k = 0; k < keys; ++k) on_heavy += s->pick(std::to_string(k), 0, 0).venue_id == 2;
  CHECK(std::abs(static_cast<double>(on_heavy) / keys - 0.75) < 0.015);
}

TEST_CASE("venue set construction rejects bad input", "[venue]") {
  auto err = [](std::vector<venue_config> v, venue_set_options o = {}) {
    auto s = venue_set::create(std::move(v), o);
    REQUIRE_FALSE(s.ok());
    return std::string(s.status().message());
  };
  CHECK(err({}).find("at least one") != std::string::npos);
  CHECK(err(plain(65)).find("64") != std::string::npos);
  CHECK(err({{1, 0, {}}}).find("weight") != std::string::npos);
  CHECK(err({{1, 1'000'001, {}}}).find("weight") != std::string::npos);
  CHECK(err({{1, 1, {}}, {1, 1, {}}}).find("repeats venue 0") != std::string::npos);
  venue_set_options o;
  o.latency_alpha = 0;
  CHECK(err(plain(1), o).find("latency_alpha") != std::string::npos);
  o.latency_alpha = std::nan("");
  CHECK(err(plain(1), o).find("latency_alpha") != std::string::npos);
  o = {};
  o.strategy = static_cast<venue_strategy>(5);
  CHECK(err(plain(1), o).find("strategy") != std::string::npos);
  CHECK(make(plain(64))->pick("", 0, 0).ok);
}

TEST_CASE("route() matches, then picks from the route's venue set", "[venue][router]") {
  venue_set_options o;
  o.sticky = true;
  auto vs = make(plain(4), o);
  tollgate::route_rule orders;
  orders.route_id = 1;
  orders.path = "/orders";
  orders.venue_set = 0;
  tollgate::route_rule info;
  info.route_id = 2;
  info.path = "/info";
  auto t = tollgate::route_table::build({orders, info}, {vs});
  REQUIRE(t.ok());
  tollgate::router r(*t);
  tollgate::route_request q;
  q.method = "POST";
  q.path = "/orders";
  const tollgate::route_decision d = r.route(q, "acct-1", 3, 0);
  REQUIRE(d.match.ok());
  CHECK(d.match.venue_set == 0);
  REQUIRE(d.venue.ok);
  CHECK(d.venue.index == vs->pick("acct-1", 3, 0).index);
  q.path = "/info";
  const tollgate::route_decision d2 = r.route(q, "acct-1", 3, 0);
  CHECK(d2.match.ok());
  CHECK(d2.match.venue_set == tollgate::no_venue_set);
  CHECK_FALSE(d2.venue.ok);
  CHECK(d2.venue.reason == venue_reason::no_venue_set);
  auto bad = tollgate::route_table::build({orders}, {nullptr});
  CHECK_FALSE(bad.ok());
}
