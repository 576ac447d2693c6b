// The price cache: eviction at and around the threshold, feed sequence
// gaps, wrap and replays, age, capacity (CLOCK), bad prices, listener,
// volatility widening, and readers that never see a torn entry.
#include <catch2/catch.hpp>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "tollgate/price_cache.hpp"

using tollgate::cached_price;
using tollgate::entry_limits;
using tollgate::evict_reason;
using tollgate::price_cache;
using tollgate::price_cache_options;
using tollgate::price_outcome;
using tollgate::threshold_unit;

namespace {

constexpr std::uint64_t sec = 1'000'000'000;

std::unique_ptr<price_cache> make(price_cache_options o = {}) {
  auto c = price_cache::create(o);
  INFO((c.ok() ? std::string("ok") : std::string(c.status().message())));
  REQUIRE(c.ok());
  return std::move(*c);
}

price_outcome tick(price_cache& c, const char* key, double price, std::uint64_t seq,
                   std::uint64_t now, evict_reason* why = nullptr) {
  auto r = c.on_price(key, price, seq, now);
  REQUIRE(r.ok());
  if (why != nullptr) *why = r->reason;
  return r->outcome;
}

bool cached(price_cache& c, const char* key, std::uint64_t now = 0) {
  return c.get(key, now, nullptr, nullptr, 0);
}

}  // namespace

TEST_CASE("put then get returns the price and the payload", "[price_cache]") {
  auto c = make();
  REQUIRE(c->put("AAPL", 189.25, 7, "bid 189.24 ask 189.26", 100).ok());
  cached_price cp;
  char buf[64] = {};
  REQUIRE(c->get("AAPL", 150, &cp, buf, sizeof buf));
  CHECK(cp.price == 189.25);
  CHECK(cp.feed_seq == 7);
  CHECK(cp.cached_at_ns == 100);
  CHECK(cp.age_ns == 50);
  CHECK(cp.threshold == 10.0);
  CHECK(cp.payload_len == 21);
  CHECK(std::string(buf, cp.payload_len) == "bid 189.24 ask 189.26");
  char small[4] = {};
  REQUIRE(c->get("AAPL", 150, &cp, small, sizeof small));  // truncated copy
  CHECK(std::string(small, 4) == "bid ");
  CHECK_FALSE(cached(*c, "MSFT"));
  // Numeric ids are keys too: 8 little-endian bytes.
  const std::uint64_t id = 1234567;
  const std::string_view idk(reinterpret_cast<const char*>(&id), sizeof id);
  REQUIRE(c->put(idk, 10.5, 1, "", 0).ok());
  CHECK(c->get(idk, 0, &cp, nullptr, 0));
  CHECK(cp.price == 10.5);
  // Re-caching replaces the price, payload and sequence.
  REQUIRE(c->put("AAPL", 190.0, 20, "x", 200).ok());
  REQUIRE(c->get("AAPL", 200, &cp, buf, sizeof buf));
  CHECK(cp.price == 190.0);
  CHECK(cp.feed_seq == 20);
  CHECK(cp.payload_len == 1);
  CHECK(c->stats().entries == 2);
}

TEST_CASE("basis-point threshold: exactly at it keeps, one tick beyond evicts", "[price_cache]") {
  price_cache_options o;
  o.threshold = 10;  // bps
  auto c = make(o);
  std::uint64_t seq = 1;
  REQUIRE(c->put("X", 100.00, seq, "", 0).ok());
  CHECK(tick(*c, "X", 100.10, ++seq, 1) == price_outcome::kept);  // exactly 10 bps
  CHECK(tick(*c, "X", 99.90, ++seq, 2) == price_outcome::kept);   // exactly -10 bps
  CHECK(tick(*c, "X", 100.09, ++seq, 3) == price_outcome::kept);
  evict_reason why = evict_reason::none;
  CHECK(tick(*c, "X", 100.11, ++seq, 4, &why) == price_outcome::evicted);
  CHECK(why == evict_reason::price_move);
  CHECK_FALSE(cached(*c, "X"));
  REQUIRE(c->put("Y", 100.00, 1, "", 0).ok());
  CHECK(tick(*c, "Y", 99.89, 2, 1, &why) == price_outcome::evicted);
  CHECK(why == evict_reason::price_move);
  // The move is measured from the cached price, not the last tick.
  REQUIRE(c->put("Z", 100.00, 1, "", 0).ok());
  CHECK(tick(*c, "Z", 100.06, 2, 1) == price_outcome::kept);
  CHECK(tick(*c, "Z", 100.10, 3, 1) == price_outcome::kept);
  CHECK(tick(*c, "Z", 100.11, 4, 1) == price_outcome::evicted);
  // A per-entry threshold overrides the default.
  REQUIRE(c->put("W", 50.0, 1, "", 0, entry_limits{2.0, std::nan("")}).ok());
  CHECK(tick(*c, "W", 50.01, 2, 1) == price_outcome::kept);  // 2 bps
  CHECK(tick(*c, "W", 50.02, 3, 1) == price_outcome::evicted);
  CHECK(c->stats().evicted_price == 4);
}

TEST_CASE("tick threshold: exactly at it keeps, one tick either side", "[price_cache]") {
  price_cache_options o;
  o.unit = threshold_unit::ticks;
  o.threshold = 5;
  o.tick_size = 0.01;
  auto c = make(o);
  for (double p : {100.05, 99.95, 100.04, 99.96}) {
    REQUIRE(c->put("T", 100.00, 1, "", 0).ok());
    INFO(p);
    CHECK(tick(*c, "T", p, 2, 1) == price_outcome::kept);
  }
  for (double p : {100.06, 99.94}) {
    REQUIRE(c->put("T", 100.00, 1, "", 0).ok());
    INFO(p);
    CHECK(tick(*c, "T", p, 2, 1) == price_outcome::evicted);
  }
  // A per-entry tick size.
  REQUIRE(c->put("B", 1000.0, 1, "", 0, entry_limits{2, 0.5}).ok());
  CHECK(tick(*c, "B", 1001.0, 2, 0) == price_outcome::kept);
  CHECK(tick(*c, "B", 1001.5, 3, 0) == price_outcome::evicted);
  // Off-grid prices: a move of 2.5 ticks rounds to 3 (halves away from zero).
  REQUIRE(c->put("H", 100.0, 1, "", 0, entry_limits{2, 1.0}).ok());
  CHECK(tick(*c, "H", 102.4, 2, 0) == price_outcome::kept);
  CHECK(tick(*c, "H", 102.5, 3, 0) == price_outcome::evicted);
  // Threshold 0: any move evicts, no move keeps.
  REQUIRE(c->put("Z", 10.0, 1, "", 0, entry_limits{0, std::nan("")}).ok());
  CHECK(tick(*c, "Z", 10.0, 2, 0) == price_outcome::kept);
  CHECK(tick(*c, "Z", 10.01, 3, 0) == price_outcome::evicted);
}

TEST_CASE("feed sequence: gaps evict, replays are ignored, wrap is in order", "[price_cache]") {
  auto c = make();
  REQUIRE(c->put("S", 10.0, 100, "", 0).ok());
  CHECK(tick(*c, "S", 10.0, 101, 0) == price_outcome::kept);
  CHECK(tick(*c, "S", 10.0, 101, 0) == price_outcome::replay);  // duplicate
  CHECK(tick(*c, "S", 10.0, 50, 0) == price_outcome::replay);   // older
  CHECK(cached(*c, "S"));
  evict_reason why = evict_reason::none;
  CHECK(tick(*c, "S", 10.0, 103, 0, &why) == price_outcome::evicted);  // 102 missed
  CHECK(why == evict_reason::sequence_gap);
  const std::uint64_t top = std::numeric_limits<std::uint64_t>::max();
  REQUIRE(c->put("W", 10.0, top - 1, "", 0).ok());
  CHECK(tick(*c, "W", 10.0, top, 0) == price_outcome::kept);
  CHECK(tick(*c, "W", 10.0, 0, 0) == price_outcome::kept);  // wrapped
  CHECK(tick(*c, "W", 10.0, top, 0) == price_outcome::replay);
  CHECK(tick(*c, "W", 10.0, 2, 0, &why) == price_outcome::evicted);
  CHECK(why == evict_reason::sequence_gap);
  // Exactly 2^63 away is a gap; one less behind is a replay.
  REQUIRE(c->put("H", 10.0, 10, "", 0).ok());
  CHECK(tick(*c, "H", 10.0, 10 - (std::uint64_t{1} << 63) + 1, 0) == price_outcome::replay);
  CHECK(tick(*c, "H", 10.0, 10 + (std::uint64_t{1} << 63), 0, &why) == price_outcome::evicted);
  CHECK(why == evict_reason::sequence_gap);
  CHECK(tick(*c, "nope", 10.0, 1, 0) == price_outcome::not_cached);
  const auto s = c->stats();
  CHECK(s.replays == 4);
  CHECK(s.evicted_gap == 3);
  CHECK(s.not_cached == 1);
}

TEST_CASE("age: stale reads miss, the next tick or expire evicts", "[price_cache]") {
  price_cache_options o;
  o.max_age_ns = 5 * sec;
  auto c = make(o);
  REQUIRE(c->put("A", 10.0, 1, "", 0).ok());
  REQUIRE(c->put("B", 10.0, 1, "", 0).ok());
  REQUIRE(c->put("C", 10.0, 1, "", 3 * sec).ok());
  CHECK(cached(*c, "A", 5 * sec));  // exactly at the limit: still fresh
  CHECK_FALSE(cached(*c, "A", 5 * sec + 1));
  CHECK(c->stats().stale_misses == 1);
  evict_reason why = evict_reason::none;
  CHECK(tick(*c, "A", 10.0, 2, 6 * sec, &why) == price_outcome::evicted);
  CHECK(why == evict_reason::age);
  CHECK(c->expire(6 * sec) == 1);  // B; C is 3 s old
  CHECK(cached(*c, "C", 6 * sec));
  CHECK(c->stats().evicted_age == 2);
  // Time stepping backwards never makes an entry older.
  CHECK(cached(*c, "C", 0));
}

TEST_CASE("capacity: CLOCK within a group keeps recently read entries", "[price_cache]") {
  price_cache_options o;
  o.capacity = 7;  // 8 slots: one group
  auto c = make(o);
  REQUIRE(c->stats().slots == 8);
  std::vector<evict_reason> reasons;
  std::vector<std::string> keys;
  std::vector<tollgate::price_event> causes;
  struct sink {
    std::vector<evict_reason>* reasons;
    std::vector<std::string>* keys;
    std::vector<tollgate::price_event>* causes;
  } sk{&reasons, &keys, &causes};
  c->set_listener(
      [](void* user, const tollgate::eviction_event& ev) {
        auto* s = static_cast<sink*>(user);
        s->reasons->push_back(ev.reason);
        s->keys->emplace_back(ev.key);
        s->causes->push_back(ev.cause);
      },
      &sk);
  for (int i = 0; i < 8; ++i) REQUIRE(c->put("K" + std::to_string(i), 1.0 + i, 1, "", 0).ok());
  CHECK(c->stats().entries == 8);
  for (int i = 0; i < 8; ++i) {
    if (i != 5) CHECK(cached(*c, ("K" + std::to_string(i)).c_str()));
  }
  // Re-caching a read entry keeps it protected.
  REQUIRE(c->put("K3", 4.5, 2, "", 0).ok());
  REQUIRE(c->put("NEW", 9.0, 1, "", 0).ok());
  REQUIRE(reasons.size() == 1);
  CHECK(reasons[0] == evict_reason::capacity);
  CHECK(keys[0] == "K5");  // the one entry nobody read
  // Not a tick: the event carries the victim's own price and sequence.
  CHECK(causes[0].new_price == 6.0);
  CHECK(causes[0].feed_seq == 1);
  CHECK_FALSE(cached(*c, "K5"));
  CHECK(cached(*c, "NEW"));
  CHECK(c->stats().entries == 8);
  CHECK(c->stats().evicted_capacity == 1);
  CHECK(c->remove("NEW", 0));
  CHECK_FALSE(c->remove("NEW", 0));
  CHECK(reasons.back() == evict_reason::removed);
  CHECK(keys.back() == "NEW");
  CHECK(c->stats().entries == 7);
}

TEST_CASE("bad prices and keys are refused with a status and change nothing", "[price_cache]") {
  auto c = make();
  REQUIRE(c->put("P", 10.0, 1, "", 0).ok());
  const double inf = std::numeric_limits<double>::infinity();
  for (double bad : {std::nan(""), inf, -inf, 0.0, -1.0}) {
    INFO(bad);
    CHECK(c->put("Q", bad, 1, "", 0).code() == absl::StatusCode::kInvalidArgument);
    auto r = c->on_price("P", bad, 2, 0);
    CHECK(r.status().code() == absl::StatusCode::kInvalidArgument);
  }
  CHECK(tick(*c, "P", 10.0, 2, 0) == price_outcome::kept);  // the sequence did not move
  CHECK(c->put("", 1.0, 1, "", 0).code() == absl::StatusCode::kInvalidArgument);
  CHECK(c->put(std::string(33, 'k'), 1.0, 1, "", 0).code() == absl::StatusCode::kInvalidArgument);
  CHECK(c->put(std::string(32, 'k'), 1.0, 1, "", 0).ok());
  CHECK(c->put("P", 1.0, 1, std::string(65, 'x'), 0).code() == absl::StatusCode::kOutOfRange);
  CHECK(c->put("P", 1.0, 1, "", 0, entry_limits{-1, std::nan("")}).code() ==
        absl::StatusCode::kOutOfRange);
  CHECK(c->put("P", 1.0, 1, "", 0, entry_limits{1, 0}).code() == absl::StatusCode::kOutOfRange);
  CHECK_FALSE(c->on_price("", 1.0, 1, 0).ok());
  CHECK_FALSE(cached(*c, ""));
  CHECK_FALSE(c->remove(std::string(40, 'x'), 0));
  auto err = [](price_cache_options o) { return price_cache::create(o).status().code(); };
  price_cache_options o;
  o.capacity = 0;
  CHECK(err(o) == absl::StatusCode::kOutOfRange);
  o = {};
  o.max_payload = 1025;
  CHECK(err(o) == absl::StatusCode::kOutOfRange);
  o = {};
  o.threshold = std::nan("");
  CHECK(err(o) == absl::StatusCode::kOutOfRange);
  o = {};
  o.tick_size = 0;
  CHECK(err(o) == absl::StatusCode::kOutOfRange);
  o = {};
  o.vol_alpha = 0;
  CHECK(err(o) == absl::StatusCode::kOutOfRange);
  o = {};
  o.vol_multiplier = -1;
  CHECK(err(o) == absl::StatusCode::kOutOfRange);
  o = {};
  o.unit = static_cast<threshold_unit>(3);
  CHECK(err(o) == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("the threshold widens with realised volatility", "[price_cache]") {
  price_cache_options o;
  o.threshold = 10;
  o.vol_multiplier = 2;
  o.vol_alpha = 0.5;
  auto c = make(o);
  REQUIRE(c->put("V", 100.0, 1, "", 0).ok());
  // Ticks of +-5 bps: var = 0.5 * (ln(100.05/100))^2 after the first.
  CHECK(tick(*c, "V", 100.05, 2, 0) == price_outcome::kept);
  const double r1 = std::log(100.05 / 100.0);
  double var = 0.5 * r1 * r1;
  cached_price cp;
  REQUIRE(c->get("V", 0, &cp, nullptr, 0));
  CHECK(cp.threshold == Approx(std::max(10.0, 2 * std::sqrt(var) * 1e4)));
  // Swings inside the base threshold (+-9 bps around the cached price,
  // returns of ~18 bps) raise the estimate until a 30 bps move, which a
  // fixed 10 bps threshold would evict, is kept.
  double p = 100.05;
  std::uint64_t seq = 2;
  for (int i = 0; i < 12; ++i) {
    const double next = i % 2 == 0 ? 99.91 : 100.09;
    CHECK(tick(*c, "V", next, ++seq, 0) == price_outcome::kept);
    const double r = std::log(next / p);
    var = 0.5 * var + 0.5 * r * r;
    p = next;
  }
  REQUIRE(c->get("V", 0, &cp, nullptr, 0));
  CHECK(cp.threshold == Approx(2 * std::sqrt(var) * 1e4));
  CHECK(cp.threshold > 30);
  CHECK(tick(*c, "V", 100.30, ++seq, 0) == price_outcome::kept);  // 30 bps
  // Without the volatility term the same path evicts.
  price_cache_options fixed = o;
  fixed.vol_multiplier = 0;
  auto f = make(fixed);
  REQUIRE(f->put("V", 100.0, 1, "", 0).ok());
  CHECK(tick(*f, "V", 100.30, 2, 0) == price_outcome::evicted);
}

TEST_CASE("readers never see a torn entry while writers rewrite it", "[price_cache][threads]") {
  // Every write stores a payload whose bytes all equal (v & 0xff), the price
  // v and the sequence v: a torn read would mix two of them.
  price_cache_options o;
  o.max_payload = 256;
  o.capacity = 64;
  auto c = make(o);
  REQUIRE(c->put("T", 1.0, 1, std::string(256, '\x01'), 0).ok());
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> reads{0}, torn{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 2; ++r) {
    readers.emplace_back([&] {
      unsigned char buf[256];
      while (!stop.load(std::memory_order_relaxed)) {
        cached_price cp;
        if (!c->get("T", 0, &cp, buf, sizeof buf)) continue;
        const auto v = static_cast<std::uint64_t>(cp.price);
        bool ok = cp.feed_seq == v && cp.payload_len == 256;
        for (unsigned char b : buf) ok = ok && b == static_cast<unsigned char>(v & 0xff);
        if (!ok) torn.fetch_add(1);
        reads.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  std::vector<std::string> payloads;
  for (int b = 0; b < 256; ++b) payloads.emplace_back(256, static_cast<char>(b));
  // Write until the readers have overlapped many writes (bounded).
  std::uint64_t v = 2;
  for (; v < 20'000'000 && (v < 20000 || reads.load(std::memory_order_relaxed) < 20000); ++v) {
    if (!c->put("T", static_cast<double>(v), v, payloads[v & 0xff], 0).ok()) break;
  }
  CHECK(v >= 20000);
  stop = true;
  for (auto& t : readers) t.join();
  CHECK(torn.load() == 0);
  CHECK(reads.load() > 0);
}
