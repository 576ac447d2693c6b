// Exact semantics of the GCRA limiter with an injected clock.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "tollgate/limiter.hpp"

using tollgate::limit_reason;
using tollgate::limiter;
using tollgate::limiter_options;
using tollgate::tier;

namespace {

constexpr std::uint64_t sec = 1'000'000'000;

std::unique_ptr<limiter> make(double rate, std::uint32_t burst, std::uint64_t capacity = 1024) {
  limiter_options o;
  o.tiers = {tier{"t", rate, burst}};
  o.capacity = capacity;
  auto l = limiter::create(o);
  REQUIRE(l.ok());
  return std::move(*l);
}

// Continuous demand from 0 to t inclusive: at each offer instant, as many
// unit acquires as pass; the next offer comes `step` later or exactly when
// the last rejection said a token would be there, whichever is first.
std::uint64_t admitted_over(limiter& l, std::uint64_t t, std::uint64_t step) {
  std::uint64_t n = 0;
  for (std::uint64_t now = 0;;) {
    tollgate::limit_decision d;
    while ((d = l.acquire("k", 0, 1, now)).allowed) ++n;
    if (now == t) break;
    now = std::min(t, now + std::min(step, d.retry_after_ns));
  }
  return n;
}

}  // namespace

TEST_CASE("a full bucket admits exactly burst + floor(t / T) over any window") {
  struct param_case {
    double rate;
    std::uint32_t burst;
  };
  for (const param_case pc : {param_case{10, 5}, param_case{1000, 1}, param_case{3, 2},
                              param_case{7, 100}, param_case{250000, 16}}) {
    const auto probe = make(pc.rate, pc.burst);
    const std::uint64_t interval = probe->interval_ns(0);
    REQUIRE(interval == static_cast<std::uint64_t>(std::llround(1e9 / pc.rate)));
    for (std::uint64_t windows : {0ull, 1ull, 2ull, 13ull}) {
      for (std::int64_t delta : {-1, 0, 1}) {
        const std::uint64_t t =
            windows * interval + static_cast<std::uint64_t>(windows == 0 && delta < 0 ? 0 : delta);
        for (std::uint64_t step : {std::uint64_t{1} + interval / 7, interval, 1000 * interval}) {
          auto l = make(pc.rate, pc.burst);
          INFO("rate " << pc.rate << " burst " << pc.burst << " t " << t << " step " << step);
          CHECK(admitted_over(*l, t, step) == pc.burst + t / interval);
        }
      }
    }
  }
}

TEST_CASE("retry_after is the exact wait") {
  auto l = make(10, 3);  // T = 100 ms
  for (int i = 0; i < 3; ++i) REQUIRE(l->acquire("k", 0, 1, 0).allowed);
  const auto d = l->acquire("k", 0, 1, 0);
  REQUIRE_FALSE(d.allowed);
  CHECK(d.reason == limit_reason::rate);
  CHECK(d.retry_after_ns == sec / 10);
  CHECK_FALSE(l->acquire("k", 0, 1, d.retry_after_ns - 1).allowed);
  CHECK(l->acquire("k", 0, 1, d.retry_after_ns).allowed);
  // A cost of 2 needs two intervals of refill from empty.
  const auto d2 = l->acquire("k", 0, 2, d.retry_after_ns);
  REQUIRE_FALSE(d2.allowed);
  CHECK(d2.retry_after_ns == 2 * sec / 10);
  CHECK(l->acquire("k", 0, 2, d.retry_after_ns + d2.retry_after_ns).allowed);
}

TEST_CASE("time standing still or stepping backwards creates no tokens") {
  auto l = make(1000, 10);
  const std::uint64_t t0 = 50 * sec;
  std::uint64_t n = 0;
  while (l->acquire("k", 0, 1, t0).allowed) ++n;
  CHECK(n == 10);
  for (int i = 0; i < 100; ++i) CHECK_FALSE(l->acquire("k", 0, 1, t0).allowed);
  for (std::uint64_t back : {std::uint64_t{1}, sec / 1000, sec, t0}) {
    CHECK_FALSE(l->acquire("k", 0, 1, t0 - back).allowed);
    CHECK(l->remaining("k", 0, t0 - back) == 0);
  }
  // Coming back to the present gives exactly what time really refilled.
  CHECK(l->acquire("k", 0, 1, t0 + sec / 1000).allowed);
  CHECK_FALSE(l->acquire("k", 0, 1, t0 + sec / 1000).allowed);
}

TEST_CASE("a cost above the burst is rejected at once with a reason - never queued") {
  auto l = make(100, 5);
  const auto d = l->acquire("k", 0, 6, 0);
  CHECK_FALSE(d.allowed);
  CHECK(d.reason == limit_reason::cost_exceeds_burst);
  CHECK(d.retry_after_ns == tollgate::retry_never);
  CHECK(d.remaining == 5);
  // It took nothing.
  CHECK(l->acquire("k", 0, 5, 0).allowed);
}

TEST_CASE("peek and remaining consume nothing") {
  auto l = make(100, 4);
  CHECK(l->remaining("k", 0, 0) == 4);
  for (int i = 0; i < 10; ++i) CHECK(l->peek("k", 0, 4, 0).allowed);
  CHECK(l->stats().keys == 0);  // peek never inserts
  CHECK(l->acquire("k", 0, 3, 0).remaining == 1);
  CHECK(l->remaining("k", 0, 0) == 1);
  const auto p = l->peek("k", 0, 2, 0);
  CHECK_FALSE(p.allowed);
  CHECK(p.retry_after_ns == sec / 100);
  CHECK(l->remaining("k", 0, 0) == 1);
  CHECK(l->remaining("k", 0, sec / 100) == 2);
}

TEST_CASE("reservations are given back - never beyond a full bucket") {
  auto l = make(10, 2);
  tollgate::reservation r1, r2;
  REQUIRE(l->reserve("k", 0, 1, 0, &r1).allowed);
  REQUIRE(l->reserve("k", 0, 1, 0, &r2).allowed);
  CHECK(r1.valid());
  CHECK(l->remaining("k", 0, 0) == 0);
  l->cancel(r1, 0);
  CHECK(l->remaining("k", 0, 0) == 1);
  l->cancel(r2, 0);
  CHECK(l->remaining("k", 0, 0) == 2);
  // A stale reservation cancelled after the bucket refilled adds nothing.
  tollgate::reservation r3;
  REQUIRE(l->reserve("k", 0, 2, 0, &r3).allowed);
  l->cancel(r3, 10 * sec);
  CHECK(l->remaining("k", 0, 10 * sec) == 2);
  std::uint64_t n = 0;
  while (l->acquire("k", 0, 1, 10 * sec).allowed) ++n;
  CHECK(n == 2);
  // A rejected reserve gives an invalid reservation: cancelling is a no-op.
  tollgate::reservation r4;
  CHECK_FALSE(l->reserve("k", 0, 1, 10 * sec, &r4).allowed);
  CHECK_FALSE(r4.valid());
  l->cancel(r4, 10 * sec);
  CHECK(l->remaining("k", 0, 10 * sec) == 0);
  CHECK(l->stats().cancelled == 3);
}

TEST_CASE("shadow mode decides and counts - never rejects - state evolves as enforced") {
  auto l = make(10, 2);
  l->set_shadow(true);
  for (int i = 0; i < 2; ++i) CHECK(l->acquire("k", 0, 1, 0).allowed);
  const auto d = l->acquire("k", 0, 1, 0);
  CHECK(d.allowed);
  CHECK(d.shadow);
  CHECK(d.reason == limit_reason::rate);
  CHECK(d.retry_after_ns == sec / 10);
  // The would-be rejection took nothing: one interval later exactly one passes.
  l->set_shadow(false);
  CHECK(l->acquire("k", 0, 1, sec / 10).allowed);
  CHECK_FALSE(l->acquire("k", 0, 1, sec / 10).allowed);
  const auto s = l->stats();
  CHECK(s.shadow_rejected == 1);
  CHECK(s.admitted == 4);
  CHECK(s.rejected == 1);
}

TEST_CASE("the multiplier scales every rate at run time") {
  limiter_options o;
  o.tiers = {tier{"slow", 10, 1}, tier{"fast", 1000, 1}};
  auto made = limiter::create(o);
  REQUIRE(made.ok());
  auto& l = **made;
  CHECK(l.interval_ns(0) == sec / 10);
  REQUIRE(l.set_multiplier(0.5, 0).ok());
  CHECK(l.multiplier() == 0.5);
  CHECK(l.interval_ns(0) == sec / 5);
  CHECK(l.interval_ns(1) == sec / 500);
  CHECK(l.acquire("k", 0, 1, 0).allowed);
  const auto d = l.acquire("k", 0, 1, 0);
  CHECK(d.retry_after_ns == sec / 5);
  CHECK_FALSE(l.set_multiplier(0, 0).ok());
  CHECK_FALSE(l.set_multiplier(std::nan(""), 0).ok());
  CHECK_FALSE(l.set_multiplier(1e7, 0).ok());
  CHECK(l.multiplier() == 0.5);  // unchanged by the rejected calls
}

TEST_CASE("tiers are separate classes on the same key state") {
  limiter_options o;
  o.tiers = {tier{"retail", 1, 1}, tier{"pro", 100, 10}};
  auto made = limiter::create(o);
  REQUIRE(made.ok());
  auto& l = **made;
  CHECK(l.tier_index("pro") == 1u);
  CHECK_FALSE(l.tier_index("nope").has_value());
  CHECK(l.acquire("a", 0, 1, 0).allowed);
  CHECK_FALSE(l.acquire("a", 0, 1, 0).allowed);
  std::uint64_t n = 0;
  while (l.acquire("b", 1, 1, 0).allowed) ++n;
  CHECK(n == 10);
  CHECK(l.acquire("a", 5, 1, 0).reason == limit_reason::invalid_argument);
}

TEST_CASE("a parent limit must also admit - its rejection refunds the child") {
  limiter_options po;
  po.tiers = {tier{"global", 10, 3}};
  auto parent = limiter::create(po);
  REQUIRE(parent.ok());
  limiter_options co;
  co.tiers = {tier{"account", 10, 2}};
  co.parent = parent->get();
  auto child = limiter::create(co);
  REQUIRE(child.ok());
  auto& c = **child;
  CHECK(c.acquire("a", 0, 1, 0).allowed);
  CHECK(c.acquire("a", 0, 1, 0).allowed);
  CHECK(c.acquire("b", 0, 1, 0).allowed);  // the parent's third token
  const auto d = c.acquire("b", 0, 1, 0);
  CHECK_FALSE(d.allowed);
  CHECK(d.reason == limit_reason::parent);
  CHECK(d.retry_after_ns == sec / 10);
  CHECK(c.remaining("b", 0, 0) == 1);  // refunded
  // Reservation spanning both levels gives both back.
  tollgate::reservation r;
  REQUIRE(c.reserve("c", 0, 1, sec / 10, &r).allowed);
  CHECK(r.cost == 1);
  CHECK((*parent)->remaining("", 0, sec / 10) == 0);
  c.cancel(r, sec / 10);
  CHECK((*parent)->remaining("", 0, sec / 10) == 1);
  CHECK(c.remaining("c", 0, sec / 10) == 2);
}

TEST_CASE("the table never holds more than capacity keys - an idle one makes room") {
  auto l = make(10, 1, 3);
  for (int i = 0; i < 3; ++i) REQUIRE(l->acquire("k" + std::to_string(i), 0, 1, 0).allowed);
  const auto d = l->acquire("k3", 0, 1, 0);
  CHECK_FALSE(d.allowed);
  CHECK(d.reason == limit_reason::capacity);
  CHECK(d.retry_after_ns == sec / 10);
  CHECK(l->stats().keys == 3);
  // Once the held keys are idle, a newcomer takes the place of one.
  CHECK(l->acquire("k3", 0, 1, sec / 10).allowed);
  CHECK(l->stats().keys == 3);
  CHECK(l->stats().evictions == 1);
}

TEST_CASE("a full table evicts idle buckets first - else rejects with the wait") {
  auto l = make(10, 1, 7);  // 7 keys in 8 slots
  const std::uint64_t slots = 7;
  REQUIRE(l->stats().slots == 8);
  // Fill every slot with a busy key (each takes its only token at t=0).
  int busy = 0;
  for (int i = 0; busy < static_cast<int>(slots) && i < 100000; ++i) {
    const auto d = l->acquire("k" + std::to_string(i), 0, 1, 0);
    if (d.allowed) ++busy;
  }
  REQUIRE(busy == static_cast<int>(slots));
  REQUIRE(l->stats().keys == slots);
  const auto full = l->acquire("newcomer", 0, 1, 0);
  CHECK_FALSE(full.allowed);
  CHECK(full.reason == limit_reason::capacity);
  CHECK(full.retry_after_ns == sec / 10);  // when the first busy bucket goes idle
  CHECK(l->stats().capacity_rejected == 1);
  CHECK_FALSE(l->peek("newcomer", 0, 1, 0).allowed);
  // Once idle, buckets are evicted for new keys.
  const auto later = l->acquire("newcomer", 0, 1, sec / 10);
  CHECK(later.allowed);
  CHECK(l->stats().evictions == 1);
  CHECK(l->stats().keys == slots);
}

TEST_CASE("overflow policy shares one bucket per tier when no slot is free") {
  limiter_options o;
  o.tiers = {tier{"t", 10, 1}};
  o.capacity = 1;
  o.on_full = tollgate::on_full_policy::overflow;
  auto made = limiter::create(o);
  REQUIRE(made.ok());
  auto& l = **made;
  REQUIRE(l.acquire("holder", 0, 1, 0).allowed);
  REQUIRE(l.stats().keys == 1);  // capacity 1: the table is full
  // Every other key shares the single overflow token.
  int admitted = 0;
  for (int j = 0; j < 200; ++j) {
    const auto d = l.acquire("x" + std::to_string(j), 0, 1, 0);
    if (d.allowed) ++admitted;
    CHECK(d.reason != limit_reason::capacity);
  }
  CHECK(admitted == 1);  // one overflow token at t = 0; no new key fits a slot
}

TEST_CASE("construction validates every field") {
  auto bad = [](limiter_options o) { return limiter::create(o).status().code(); };
  limiter_options o;
  o.tiers = {};
  CHECK(bad(o) == absl::StatusCode::kInvalidArgument);
  o.tiers = {tier{"t", 0, 1}};
  CHECK(bad(o) == absl::StatusCode::kOutOfRange);
  o.tiers = {tier{"t", -1, 1}};
  CHECK(bad(o) == absl::StatusCode::kOutOfRange);
  o.tiers = {tier{"t", std::nan(""), 1}};
  CHECK(bad(o) == absl::StatusCode::kOutOfRange);
  o.tiers = {tier{"t", INFINITY, 1}};
  CHECK(bad(o) == absl::StatusCode::kOutOfRange);
  o.tiers = {tier{"t", 2e9, 1}};
  CHECK(bad(o) == absl::StatusCode::kOutOfRange);
  o.tiers = {tier{"t", 1, 0}};
  CHECK(bad(o) == absl::StatusCode::kInvalidArgument);
  o.tiers = {tier{"", 1, 1}};
  CHECK(bad(o) == absl::StatusCode::kInvalidArgument);
  o.tiers = {tier{"a", 1, 1}, tier{"a", 2, 2}};
  CHECK(bad(o) == absl::StatusCode::kInvalidArgument);
  o.tiers = {tier{"t", 1e-6, 4'000'000'000u}};  // burst * T beyond 2^62 ns
  CHECK(bad(o) == absl::StatusCode::kOutOfRange);
  o.tiers = {tier{"t", 1, 1}};
  o.capacity = 0;
  CHECK(bad(o) == absl::StatusCode::kOutOfRange);
  o.capacity = (std::uint64_t{1} << 26) + 1;
  CHECK(bad(o) == absl::StatusCode::kOutOfRange);
  o.capacity = 16;
  o.multiplier = 0;
  CHECK(bad(o) == absl::StatusCode::kOutOfRange);
}

TEST_CASE("huge times are clamped - not overflowed") {
  auto l = make(1, 1);
  CHECK(l->acquire("k", 0, 1, ~std::uint64_t{0}).allowed);
  const auto d = l->acquire("k", 0, 1, ~std::uint64_t{0});
  CHECK_FALSE(d.allowed);
  CHECK(d.retry_after_ns == sec);
}

TEST_CASE("keys are arbitrary bytes - the empty key included") {
  auto l = make(1, 1);
  const std::string with_nul("a\0b", 3);
  CHECK(l->acquire(with_nul, 0, 1, 0).allowed);
  CHECK(l->acquire(std::string("a\0c", 3), 0, 1, 0).allowed);
  CHECK(l->acquire("", 0, 1, 0).allowed);
  CHECK_FALSE(l->acquire("", 0, 1, 0).allowed);
  CHECK_FALSE(l->acquire(with_nul, 0, 1, 0).allowed);
}

TEST_CASE("a multiplier change keeps every bucket's tokens - only refill speed changes") {
  auto l = make(10, 10);  // T = 100 ms
  const std::uint64_t t1 = 7 * sec;
  while (l->acquire("drained", 0, 1, t1).allowed) {
  }
  REQUIRE(l->acquire("half", 0, 5, t1).allowed);
  for (double m : {0.5, 2.0, 0.25, 1.0}) {
    REQUIRE(l->set_multiplier(m, t1).ok());
    CHECK(l->remaining("drained", 0, t1) == 0);
    CHECK(l->remaining("half", 0, t1) == 5);
    CHECK(l->remaining("fresh", 0, t1) == 10);
  }
  REQUIRE(l->set_multiplier(0.5, t1).ok());  // tokens now every 200 ms
  const auto d = l->acquire("drained", 0, 1, t1);
  CHECK_FALSE(d.allowed);
  CHECK(d.retry_after_ns == 2 * sec / 10);
  CHECK_FALSE(l->acquire("drained", 0, 1, t1 + d.retry_after_ns - 1).allowed);
  CHECK(l->acquire("drained", 0, 1, t1 + d.retry_after_ns).allowed);
  // Over 2 s at half speed exactly 10 more tokens come back to "drained".
  std::uint64_t n = 0;
  for (std::uint64_t t = t1 + d.retry_after_ns; t <= t1 + d.retry_after_ns + 2 * sec;
       t += sec / 100) {
    while (l->acquire("drained", 0, 1, t).allowed) ++n;
  }
  CHECK(n == 10);
}

TEST_CASE("a three-level hierarchy: every level must admit - a rejection refunds all below") {
  auto mk = [](double rate, std::uint32_t burst, limiter* parent) {
    limiter_options o;
    o.tiers = {tier{"t", rate, burst}};
    o.parent = parent;
    auto l = limiter::create(o);
    REQUIRE(l.ok());
    return std::move(*l);
  };
  auto firm = mk(10, 2, nullptr);
  auto desk = mk(10, 5, firm.get());
  auto acct = mk(10, 10, desk.get());
  int n = 0;
  for (int i = 0; i < 5; ++i) n += acct->acquire("a", 0, 1, 0).allowed;
  CHECK(n == 2);  // the firm's burst
  CHECK(firm->remaining("", 0, 0) == 0);
  CHECK(desk->remaining("", 0, 0) == 3);  // refunded three times
  CHECK(acct->remaining("a", 0, 0) == 8);
  tollgate::reservation r;
  REQUIRE(acct->reserve("b", 0, 1, sec / 10, &r).allowed);
  CHECK(firm->remaining("", 0, sec / 10) == 0);
  acct->cancel(r, sec / 10);
  CHECK(firm->remaining("", 0, sec / 10) == 1);
  CHECK(desk->remaining("", 0, sec / 10) == 4);  // 3 left at t=0, one refilled
  CHECK(acct->remaining("b", 0, sec / 10) == 10);
}

TEST_CASE("acquire_many decides exactly as the same single acquires") {
  for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{7}, std::size_t{8},
                        std::size_t{9}, std::size_t{1000}}) {
    auto batch = make(100, 3, 256);
    auto single = make(100, 3, 256);
    std::vector<std::string> keys;
    for (std::size_t i = 0; i < n; ++i) keys.push_back("k" + std::to_string((i * 7919) % 97));
    std::vector<tollgate::limit_decision> got(n);
    batch->acquire_many(
        n, [&](std::size_t i) { return std::string_view(keys[i]); }, [](std::size_t) { return 0u; },
        [&](std::size_t i) { return 1u + (i % 2); }, sec,
        [&](std::size_t i, const tollgate::limit_decision& d) { got[i] = d; });
    for (std::size_t i = 0; i < n; ++i) {
      const auto want = single->acquire(keys[i], 0, 1u + (i % 2), sec);
      INFO("n " << n << " i " << i);
      CHECK(got[i].allowed == want.allowed);
      CHECK(got[i].reason == want.reason);
      CHECK(got[i].retry_after_ns == want.retry_after_ns);
      CHECK(got[i].remaining == want.remaining);
    }
  }
}
