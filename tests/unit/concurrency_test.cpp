// Many threads on one key, on many keys, and on a breaker that changes state
// under them. Counts must reconcile exactly. Run under ThreadSanitizer by the
// tsan preset.
#include <catch2/catch.hpp>

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "tollgate/breaker.hpp"
#include "tollgate/limiter.hpp"

namespace {

constexpr int threads = 4;
constexpr int ops = 20000;

}  // namespace

TEST_CASE("threads on one key never exceed burst + elapsed / T and counts reconcile") {
  tollgate::limiter_options o;
  o.tiers = {tollgate::tier{"t", 1000, 50}};  // T = 1 ms
  auto made = tollgate::limiter::create(o);
  REQUIRE(made.ok());
  auto& l = **made;
  std::atomic<std::uint64_t> clock{0};
  std::atomic<std::uint64_t> admitted{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      std::uint64_t mine = 0;
      for (int i = 0; i < ops; ++i) {
        const std::uint64_t now = clock.fetch_add(10'000);  // 10 us per request
        if (l.acquire("hot", 0, 1, now).allowed) ++mine;
      }
      admitted += mine;
    });
  }
  for (auto& th : pool) th.join();
  const std::uint64_t elapsed = clock.load();
  const auto s = l.stats();
  CHECK(s.admitted + s.rejected == static_cast<std::uint64_t>(threads) * ops);
  CHECK(s.admitted == admitted.load());
  CHECK(admitted.load() <= 50 + elapsed / 1'000'000);
  // Nearly all the capacity was used (requests arrive 100x faster than T).
  CHECK(admitted.load() + 60 >= 50 + elapsed / 1'000'000);
}

TEST_CASE("threads on many keys with evictions keep every key within its bound") {
  tollgate::limiter_options o;
  o.tiers = {tollgate::tier{"t", 100, 3}};  // T = 10 ms
  o.capacity = 64;
  auto made = tollgate::limiter::create(o);
  REQUIRE(made.ok());
  auto& l = **made;
  constexpr int keys = 200;
  std::atomic<std::uint64_t> clock{0};
  std::vector<std::vector<std::uint64_t>> per_thread(threads, std::vector<std::uint64_t>(keys));
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      std::uint64_t x = 0x9e3779b97f4a7c15ULL * static_cast<std::uint64_t>(t + 1);
      for (int i = 0; i < ops; ++i) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        const int k = static_cast<int>(x % keys);
        const std::uint64_t now = clock.fetch_add(20'000);
        if (l.acquire("acct-" + std::to_string(k), 0, 1, now).allowed) ++per_thread[t][k];
      }
    });
  }
  for (auto& th : pool) th.join();
  const std::uint64_t bound = 3 + clock.load() / 10'000'000;
  std::uint64_t total = 0;
  for (int k = 0; k < keys; ++k) {
    std::uint64_t n = 0;
    for (int t = 0; t < threads; ++t) n += per_thread[t][k];
    total += n;
    CHECK(n <= bound);
  }
  const auto s = l.stats();
  CHECK(s.admitted == total);
  CHECK(s.admitted + s.rejected == static_cast<std::uint64_t>(threads) * ops);
  CHECK(s.keys <= s.slots);
}

TEST_CASE("breaker counts reconcile while another thread forces transitions") {
  tollgate::breaker_options o;
  o.window_size = 50;
  o.minimum_calls = 10;
  o.open_ns = 1'000'000;
  o.half_open_probes = 3;
  o.max_in_flight = 3;
  auto made = tollgate::breaker::create(o);
  REQUIRE(made.ok());
  auto& b = **made;
  std::atomic<std::uint64_t> clock{0};
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> attempts{0}, granted{0};
  std::thread flipper([&] {
    const tollgate::breaker_state cycle[] = {
        tollgate::breaker_state::open,         tollgate::breaker_state::closed,
        tollgate::breaker_state::half_open,    tollgate::breaker_state::forced_open,
        tollgate::breaker_state::metrics_only, tollgate::breaker_state::closed};
    int i = 0;
    while (!stop.load()) {
      b.transition(cycle[i++ % 6], clock.load());
      std::this_thread::yield();
    }
  });
  std::vector<std::thread> pool;
  for (int t = 0; t < threads - 1; ++t) {
    pool.emplace_back([&, t] {
      std::uint64_t x = 88172645463325252ULL + static_cast<std::uint64_t>(t);
      for (int i = 0; i < ops; ++i) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        const std::uint64_t now = clock.fetch_add(1000);
        ++attempts;
        const auto p = b.acquire(now);
        if (!p.allowed) continue;
        ++granted;
        const auto oc = static_cast<tollgate::outcome>(x % 3);
        b.record(p, oc, x % 2'000'000, now + 500);
      }
    });
  }
  for (auto& th : pool) th.join();
  stop = true;
  flipper.join();
  const auto s = b.stats(clock.load());
  CHECK(s.admitted + s.rejected == attempts.load());
  CHECK(s.admitted == granted.load());
  CHECK(s.successes + s.failures + s.ignored == s.admitted);
  CHECK(s.in_flight == 0);
  CHECK(s.transitions > 0);
}
