// Workloads shared by the benchmarks and the callgrind driver: a fake clock,
// the tier parameters, and pre-generated key sequences (uniform and Zipf over
// one million 8-byte account ids), so that no random number is drawn inside a
// timed loop and tollgate and its baselines see exactly the same inputs.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <string_view>
#include <vector>

namespace tollgate_bench {

// Every timed iteration advances each thread's own fake clock by one step: no
// clock read, no shared counter. Threads of one run start from the same base.
inline constexpr std::uint64_t clock_step_ns = 10;
inline constexpr std::uint64_t clock_start_ns = 1'000'000'000;

struct fake_clock {
  std::uint64_t now;
  std::uint64_t tick() noexcept { return now += clock_step_ns; }
};

// One key, "admit": 1e9 tokens/s (interval 1 ns) against a 10 ns step per
// thread, so even two threads on one key consume a fifth of the refill. The
// burst (4e9 tokens, 4 s) absorbs any drift between the two threads' fake
// clocks, so a thread that was descheduled is not rejected when it resumes.
inline constexpr double admit_rate = 1e9;
inline constexpr std::uint32_t admit_burst = 4'000'000'000u;
// One key, "reject": one token every 1000 s and a burst of 1: after the first
// request every decision is a rejection.
inline constexpr double reject_rate = 1e-3;
inline constexpr std::uint32_t reject_burst = 1;
// Many keys: 1e8 tokens/s per key (interval 10 ns). The hottest Zipf key
// gets about 12% of the requests, one per ~80 ns per thread, and is
// admitted. The burst is large for the same reason as admit_burst: two
// threads' fake clocks drift apart and a small burst would turn the lagging
// thread's decisions into rejections (the work per decision is the same for
// any burst; a bucket still goes idle as soon as its TAT <= now).
inline constexpr double many_rate = 1e8;
inline constexpr std::uint32_t many_burst = 4'000'000'000u;

inline constexpr std::size_t key_count = 1'000'000;
inline constexpr std::size_t sequence_length = std::size_t{1} << 22;  // 4M draws, 32 MiB
inline constexpr double zipf_s = 1.1;

inline std::uint64_t splitmix64(std::uint64_t x) noexcept {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Account ids: distinct pseudo-random 64-bit numbers (rank r -> id).
inline const std::vector<std::uint64_t>& account_ids() {
  static const std::vector<std::uint64_t> ids = [] {
    std::vector<std::uint64_t> v(key_count);
    for (std::size_t i = 0; i < key_count; ++i) v[i] = splitmix64(i + 1) | 1u;
    return v;
  }();
  return ids;
}

// sequence_length account ids drawn uniformly from account_ids().
inline const std::vector<std::uint64_t>& uniform_sequence() {
  static const std::vector<std::uint64_t> seq = [] {
    const auto& ids = account_ids();
    std::mt19937_64 rng(42);
    std::uniform_int_distribution<std::size_t> pick(0, key_count - 1);
    std::vector<std::uint64_t> v(sequence_length);
    for (auto& k : v) k = ids[pick(rng)];
    return v;
  }();
  return seq;
}

// sequence_length account ids drawn with P(rank r) proportional to
// 1 / r^zipf_s (rank 1 is the hottest account).
inline const std::vector<std::uint64_t>& zipf_sequence() {
  static const std::vector<std::uint64_t> seq = [] {
    const auto& ids = account_ids();
    std::vector<double> cdf(key_count);
    double sum = 0;
    for (std::size_t r = 0; r < key_count; ++r) {
      sum += std::pow(static_cast<double>(r + 1), -zipf_s);
      cdf[r] = sum;
    }
    std::mt19937_64 rng(43);
    std::uniform_real_distribution<double> u(0.0, sum);
    std::vector<std::uint64_t> v(sequence_length);
    for (auto& k : v) {
      const auto it = std::lower_bound(cdf.begin(), cdf.end(), u(rng));
      const auto r = static_cast<std::size_t>(it - cdf.begin());
      k = ids[std::min(r, key_count - 1)];
    }
    return v;
  }();
  return seq;
}

// The 8-byte key tollgate hashes: the account id's bytes.
inline std::string_view key_bytes(const std::uint64_t& id) noexcept {
  return {reinterpret_cast<const char*>(&id), sizeof id};
}

}  // namespace tollgate_bench
