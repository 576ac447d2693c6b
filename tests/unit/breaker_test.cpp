// Every transition of the circuit breaker, with an injected clock.
#include <catch2/catch.hpp>

#include <cstdint>
#include <vector>

#include "tollgate/breaker.hpp"

using tollgate::breaker;
using tollgate::breaker_options;
using tollgate::breaker_reason;
using tollgate::breaker_state;
using tollgate::outcome;

namespace {

constexpr std::uint64_t ms = 1'000'000;

breaker_options small_window() {
  breaker_options o;
  o.window_size = 10;
  o.minimum_calls = 4;
  o.failure_rate_threshold = 50;
  o.slow_call_ns = 100 * ms;
  o.slow_rate_threshold = 50;
  o.open_ns = 1000 * ms;
  o.half_open_probes = 2;
  return o;
}

std::unique_ptr<breaker> make(const breaker_options& o) {
  auto b = breaker::create(o);
  REQUIRE(b.ok());
  return std::move(*b);
}

void call(breaker& b, outcome o, std::uint64_t now, std::uint64_t latency = 0) {
  const auto p = b.acquire(now);
  REQUIRE(p.allowed);
  b.record(p, o, latency, now);
}

struct event_log {
  std::vector<tollgate::breaker_event> events;
  static void on(void* user, const tollgate::breaker_event& ev) {
    static_cast<event_log*>(user)->events.push_back(ev);
  }
};

}  // namespace

TEST_CASE("closed stays closed below minimum_calls and opens exactly at the threshold") {
  auto b = make(small_window());
  event_log log;
  b->set_listener(&event_log::on, &log);
  call(*b, outcome::failure, 0);
  call(*b, outcome::failure, 0);
  call(*b, outcome::failure, 0);
  CHECK(b->state() == breaker_state::closed);  // 3 < minimum_calls, though 100% failing
  call(*b, outcome::success, 0);               // the 4th call reaches minimum_calls at 75%
  CHECK(b->state() == breaker_state::open);
  REQUIRE(log.events.size() == 1);
  CHECK(log.events[0].from == breaker_state::closed);
  CHECK(log.events[0].to == breaker_state::open);
  CHECK(log.events[0].failure_rate == Approx(75.0));
  CHECK(log.events[0].open_ns == 1000 * ms);
}

TEST_CASE("one failure below the rate does not open - the failure reaching it does") {
  auto b = make(small_window());
  for (int i = 0; i < 6; ++i) call(*b, outcome::success, 0);
  for (int i = 0; i < 3; ++i) call(*b, outcome::failure, 0);  // 3 of 9 = 33%
  CHECK(b->state() == breaker_state::closed);
  call(*b, outcome::failure, 0);  // 4 of 10 = 40%
  CHECK(b->state() == breaker_state::closed);
  call(*b, outcome::failure, 0);  // window slides: 5 of 10 = 50%
  CHECK(b->state() == breaker_state::open);
}

TEST_CASE("slow calls trip on the slow-call rate") {
  auto b = make(small_window());
  call(*b, outcome::success, 0, 10 * ms);
  call(*b, outcome::success, 0, 10 * ms);
  call(*b, outcome::success, 0, 100 * ms);  // slow: latency == threshold
  CHECK(b->state() == breaker_state::closed);
  call(*b, outcome::success, 0, 500 * ms);  // 2 of 4 slow = 50%
  CHECK(b->state() == breaker_state::open);
}

TEST_CASE("open rejects until its deadline - time backwards never ends it early") {
  auto b = make(small_window());
  for (int i = 0; i < 4; ++i) call(*b, outcome::failure, 5000 * ms);
  REQUIRE(b->state() == breaker_state::open);
  auto p = b->acquire(5000 * ms);
  CHECK_FALSE(p.allowed);
  CHECK(p.reason == breaker_reason::open);
  CHECK(p.retry_after_ns == 1000 * ms);
  p = b->acquire(5999 * ms);
  CHECK(p.retry_after_ns == 1 * ms);
  CHECK_FALSE(b->acquire(0).allowed);  // far in the past
  CHECK_FALSE(b->acquire(6000 * ms - 1).allowed);
  CHECK(b->state() == breaker_state::open);
  p = b->acquire(6000 * ms);
  CHECK(p.allowed);
  CHECK(p.state == breaker_state::half_open);
}

TEST_CASE("half-open admits exactly the probes - all good closes with a fresh window") {
  auto b = make(small_window());
  event_log log;
  b->set_listener(&event_log::on, &log);
  for (int i = 0; i < 4; ++i) call(*b, outcome::failure, 0);
  const std::uint64_t t = 1000 * ms;
  const auto p1 = b->acquire(t);
  const auto p2 = b->acquire(t);
  const auto p3 = b->acquire(t);
  CHECK(p1.allowed);
  CHECK(p2.allowed);
  CHECK_FALSE(p3.allowed);
  CHECK(b->state() == breaker_state::half_open);
  b->record(p1, outcome::success, 0, t);
  CHECK(b->state() == breaker_state::half_open);
  b->record(p2, outcome::success, 0, t);
  CHECK(b->state() == breaker_state::closed);
  CHECK(b->stats(t).window_calls == 0);
  REQUIRE(log.events.size() == 3);
  CHECK(log.events[1].to == breaker_state::half_open);
  CHECK(log.events[2].from == breaker_state::half_open);
  CHECK(log.events[2].to == breaker_state::closed);
  // Three more failures are not enough: the old failures are gone.
  for (int i = 0; i < 3; ++i) call(*b, outcome::failure, t);
  CHECK(b->state() == breaker_state::closed);
}

TEST_CASE("failing probes reopen with exponential backoff up to the cap") {
  auto o = small_window();
  o.backoff_multiplier = 2;
  o.max_open_ns = 3000 * ms;
  o.half_open_probes = 1;
  auto b = make(o);
  event_log log;
  b->set_listener(&event_log::on, &log);
  for (int i = 0; i < 4; ++i) call(*b, outcome::failure, 0);
  std::uint64_t t = 0;
  std::vector<std::uint64_t> durations;
  for (int round = 0; round < 4; ++round) {
    const std::uint64_t d = log.events.back().open_ns;
    durations.push_back(d);
    t += d;
    CHECK_FALSE(b->acquire(t - 1).allowed);
    const auto probe = b->acquire(t);
    REQUIRE(probe.allowed);
    b->record(probe, outcome::failure, 0, t);
    REQUIRE(b->state() == breaker_state::open);
  }
  CHECK(durations == std::vector<std::uint64_t>{1000 * ms, 2000 * ms, 3000 * ms, 3000 * ms});
  // Closing resets the backoff.
  t += log.events.back().open_ns;
  const auto probe = b->acquire(t);
  b->record(probe, outcome::success, 0, t);
  REQUIRE(b->state() == breaker_state::closed);
  for (int i = 0; i < 4; ++i) call(*b, outcome::failure, t);
  CHECK(log.events.back().open_ns == 1000 * ms);
}

TEST_CASE("a half-open breaker whose probes do not finish in time opens again") {
  auto o = small_window();
  o.max_half_open_ns = 500 * ms;
  o.half_open_probes = 1;
  auto b = make(o);
  for (int i = 0; i < 4; ++i) call(*b, outcome::failure, 0);
  const auto p = b->acquire(1000 * ms);
  REQUIRE(p.allowed);
  CHECK(b->state() == breaker_state::half_open);
  CHECK_FALSE(b->acquire(1499 * ms).allowed);  // the only probe is out
  CHECK(b->state() == breaker_state::half_open);
  CHECK_FALSE(b->acquire(1500 * ms).allowed);
  CHECK(b->state() == breaker_state::open);
  // The late probe's outcome changes nothing.
  b->record(p, outcome::success, 0, 1600 * ms);
  CHECK(b->state() == breaker_state::open);
}

TEST_CASE("ignored outcomes are not counted - and an ignored probe frees its slot") {
  auto b = make(small_window());
  for (int i = 0; i < 10; ++i) call(*b, outcome::ignored, 0);
  CHECK(b->stats(0).window_calls == 0);
  for (int i = 0; i < 4; ++i) call(*b, outcome::failure, 0);
  REQUIRE(b->state() == breaker_state::open);
  const auto p1 = b->acquire(1000 * ms);
  const auto p2 = b->acquire(1000 * ms);
  REQUIRE(p1.allowed);
  REQUIRE(p2.allowed);
  CHECK_FALSE(b->acquire(1000 * ms).allowed);
  b->record(p1, outcome::ignored, 0, 1000 * ms);
  const auto p3 = b->acquire(1000 * ms);
  CHECK(p3.allowed);
  b->record(p2, outcome::success, 0, 1000 * ms);
  b->record(p3, outcome::success, 0, 1000 * ms);
  CHECK(b->state() == breaker_state::closed);
}

TEST_CASE("forced and disabled states override the machine") {
  auto b = make(small_window());
  b->transition(breaker_state::forced_open, 0);
  auto p = b->acquire(0);
  CHECK_FALSE(p.allowed);
  CHECK(p.reason == breaker_reason::forced_open);
  CHECK_FALSE(b->acquire(1'000'000 * ms).allowed);  // no deadline ends a kill switch

  b->transition(breaker_state::forced_closed, 0);
  for (int i = 0; i < 10; ++i) call(*b, outcome::failure, 0);
  CHECK(b->state() == breaker_state::forced_closed);
  CHECK(b->stats(0).window_calls == 10);

  b->transition(breaker_state::disabled, 0);
  for (int i = 0; i < 10; ++i) call(*b, outcome::failure, 0);
  CHECK(b->state() == breaker_state::disabled);

  b->transition(breaker_state::closed, 0);
  CHECK(b->stats(0).window_calls == 0);
  b->transition(breaker_state::metrics_only, 0);
  for (int i = 0; i < 6; ++i) call(*b, outcome::failure, 0);
  CHECK(b->state() == breaker_state::metrics_only);
  CHECK(b->stats(0).would_open == 3);  // the 4th, 5th and 6th failures found it tripped
}

TEST_CASE("the bulkhead bounds calls in flight and frees on record") {
  auto o = small_window();
  o.max_in_flight = 2;
  auto b = make(o);
  const auto a = b->acquire(0);
  const auto c = b->acquire(0);
  const auto d = b->acquire(0);
  CHECK(a.allowed);
  CHECK(c.allowed);
  CHECK_FALSE(d.allowed);
  CHECK(d.reason == breaker_reason::bulkhead_full);
  CHECK(b->in_flight() == 2);
  b->record(d, outcome::failure, 0, 0);  // a rejected permit: no-op
  CHECK(b->in_flight() == 2);
  CHECK(b->stats(0).window_calls == 0);
  b->record(a, outcome::ignored, 0, 0);
  CHECK(b->in_flight() == 1);
  CHECK(b->acquire(0).allowed);
  const auto s = b->stats(0);
  CHECK(s.bulkhead_rejected == 1);
  CHECK(s.rejected == 1);
  CHECK(s.admitted == 3);
}

TEST_CASE("a permit from an earlier state does not move the current one") {
  auto b = make(small_window());
  std::vector<tollgate::permit> old;
  for (int i = 0; i < 6; ++i) old.push_back(b->acquire(0));
  b->transition(breaker_state::open, 0);
  b->transition(breaker_state::closed, 0);
  for (const auto& p : old) b->record(p, outcome::failure, 0, 0);
  CHECK(b->state() == breaker_state::closed);
  CHECK(b->stats(0).window_calls == 0);
}

TEST_CASE("time windows count the last N buckets only") {
  auto o = small_window();
  o.window = tollgate::window_type::time;
  o.window_size = 3;
  o.bucket_ns = 1000 * ms;
  o.minimum_calls = 4;
  auto b = make(o);
  call(*b, outcome::failure, 0);
  call(*b, outcome::failure, 0);
  call(*b, outcome::failure, 0);
  CHECK(b->stats(0).window_calls == 3);
  CHECK(b->stats(2999 * ms).window_calls == 3);
  CHECK(b->stats(3000 * ms).window_calls == 0);  // the bucket of t=0 has left the window
  call(*b, outcome::failure, 3000 * ms);
  CHECK(b->state() == breaker_state::closed);  // 1 call in the window
  call(*b, outcome::failure, 3500 * ms);
  call(*b, outcome::success, 4000 * ms);
  call(*b, outcome::failure, 4000 * ms);
  CHECK(b->state() == breaker_state::open);  // 3 of 4 failing within 3 s
}

TEST_CASE("breaker options are validated") {
  auto bad = [](breaker_options o) { return breaker::create(o).ok(); };
  auto o = small_window();
  CHECK(bad(o));
  o.minimum_calls = 11;
  CHECK_FALSE(bad(o));
  o = small_window();
  o.failure_rate_threshold = 0;
  CHECK_FALSE(bad(o));
  o.failure_rate_threshold = 100.5;
  CHECK_FALSE(bad(o));
  o = small_window();
  o.open_ns = 0;
  CHECK_FALSE(bad(o));
  o = small_window();
  o.max_open_ns = o.open_ns - 1;
  CHECK_FALSE(bad(o));
  o = small_window();
  o.backoff_multiplier = 0.5;
  CHECK_FALSE(bad(o));
  o = small_window();
  o.half_open_probes = 0;
  CHECK_FALSE(bad(o));
  o = small_window();
  o.window_size = 0;
  CHECK_FALSE(bad(o));
}

TEST_CASE("fast_mod equals the remainder") {
  for (std::uint32_t d : {1u, 2u, 3u, 7u, 10u, 100u, 65536u, 65535u}) {
    tollgate::detail::fast_mod m(d);
    for (std::uint64_t a : {0ull, 1ull, 99ull, 1ull << 32, (1ull << 63) + 12345, ~0ull}) {
      CHECK(m(a) == a % d);
    }
    for (std::uint64_t a = 0; a < 1000; ++a) CHECK(m(a * 2654435761u) == (a * 2654435761u) % d);
  }
}
