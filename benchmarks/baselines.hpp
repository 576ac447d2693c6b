// The baselines tollgate is measured against, written the textbook way:
//   - a token bucket (double tokens + time of last refill) under a std::mutex;
//   - one std::mutex over an absl::flat_hash_map<uint64_t, bucket> for many keys;
//   - the floor: one bare GCRA compare-and-swap step on one std::atomic<uint64_t>
//     (and, for many keys, on a table of tollgate's size);
//   - a circuit breaker: a count window (ring buffer of outcomes) under a std::mutex.
// Each returns what tollgate returns (allowed, retry-after, remaining tokens;
// or a permit) so that both sides do the same work.
#pragma once

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <mutex>
#include <vector>

#include "absl/container/flat_hash_map.h"

namespace tollgate_bench {

struct bucket_decision {
  bool allowed;
  std::uint64_t retry_after_ns;
  std::uint64_t remaining;
};

// The textbook token bucket: refill by elapsed time, then take.
struct token_bucket {
  double tokens;
  std::uint64_t last_ns;
};

struct bucket_params {
  double per_ns;    // tokens per nanosecond
  double capacity;  // burst, in tokens
};

inline bucket_params make_bucket_params(double rate_per_s, std::uint32_t burst) noexcept {
  return {rate_per_s / 1e9, static_cast<double>(burst)};
}

inline bucket_decision take(token_bucket& b, const bucket_params& p, std::uint64_t now,
                            double cost) noexcept {
  if (now > b.last_ns) {
    b.tokens = std::min(p.capacity, b.tokens + static_cast<double>(now - b.last_ns) * p.per_ns);
    b.last_ns = now;
  }
  if (b.tokens >= cost) {
    b.tokens -= cost;
    return {true, 0, static_cast<std::uint64_t>(b.tokens)};
  }
  return {false, static_cast<std::uint64_t>(std::ceil((cost - b.tokens) / p.per_ns)),
          static_cast<std::uint64_t>(b.tokens)};
}

// One key, one mutex.
class mutex_bucket {
 public:
  mutex_bucket(double rate_per_s, std::uint32_t burst, std::uint64_t now)
      : p_(make_bucket_params(rate_per_s, burst)), b_{p_.capacity, now} {}

  bucket_decision acquire(std::uint64_t now, std::uint32_t cost) {
    std::lock_guard<std::mutex> lock(mu_);
    return take(b_, p_, now, cost);
  }

 private:
  std::mutex mu_;
  bucket_params p_;
  token_bucket b_;
};

// Many keys: one mutex over one hash map. New keys start full.
class mutex_bucket_map {
 public:
  mutex_bucket_map(double rate_per_s, std::uint32_t burst, std::size_t capacity)
      : p_(make_bucket_params(rate_per_s, burst)) {
    map_.reserve(capacity);
  }

  bucket_decision acquire(std::uint64_t key, std::uint64_t now, std::uint32_t cost) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = map_.try_emplace(key, token_bucket{p_.capacity, now}).first;
    return take(it->second, p_, now, cost);
  }

  std::size_t size() const { return map_.size(); }
  // Bytes of the table: one slot (key + bucket) and one control byte per
  // bucket of capacity.
  std::size_t table_bytes() const {
    return map_.capacity() * (sizeof(std::pair<const std::uint64_t, token_bucket>) + 1);
  }

 private:
  std::mutex mu_;
  bucket_params p_;
  absl::flat_hash_map<std::uint64_t, token_bucket> map_;
};

// The floor: GCRA on one 64-bit theoretical arrival time, by CAS.
class cas_gcra {
 public:
  cas_gcra(double rate_per_s, std::uint32_t burst)
      : t_ns_(static_cast<std::uint64_t>(std::max(1.0, std::round(1e9 / rate_per_s)))),
        burst_ns_(t_ns_ * burst) {}

  bool acquire(std::uint64_t now) noexcept {
    std::uint64_t tat = tat_.load(std::memory_order_acquire);
    for (;;) {
      const std::uint64_t next = std::max(tat, now) + t_ns_;
      if (next - now > burst_ns_) return false;
      if (tat_.compare_exchange_weak(tat, next, std::memory_order_acq_rel,
                                     std::memory_order_acquire)) {
        return true;
      }
    }
  }

 private:
  std::uint64_t t_ns_;
  std::uint64_t burst_ns_;
  std::atomic<std::uint64_t> tat_{0};
};

// The memory floor for many keys: the same GCRA CAS step on a table with
// tollgate's footprint (16-byte slots, a power of two of them), one slot per
// key hash with no key check, no collision handling and no eviction. It
// measures what one random cache line and one CAS per decision cost.
class cas_gcra_table {
 public:
  cas_gcra_table(double rate_per_s, std::uint32_t burst, std::size_t slots_log2)
      : t_ns_(static_cast<std::uint64_t>(std::max(1.0, std::round(1e9 / rate_per_s)))),
        burst_ns_(t_ns_ * burst),
        shift_(64 - static_cast<unsigned>(slots_log2)),
        slots_(std::size_t{1} << slots_log2) {}

  bool acquire(std::uint64_t key, std::uint64_t now) noexcept {
    std::atomic<std::uint64_t>& word = slots_[(key * 0x9e3779b97f4a7c15ULL) >> shift_].tat;
    std::uint64_t tat = word.load(std::memory_order_acquire);
    for (;;) {
      const std::uint64_t next = std::max(tat, now) + t_ns_;
      if (next - now > burst_ns_) return false;
      if (word.compare_exchange_weak(tat, next, std::memory_order_acq_rel,
                                     std::memory_order_acquire)) {
        return true;
      }
    }
  }

  std::size_t table_bytes() const noexcept { return slots_.size() * sizeof(slot); }

 private:
  struct alignas(16) slot {
    std::atomic<std::uint64_t> tat{0};
    std::uint64_t unused = 0;
  };
  std::uint64_t t_ns_;
  std::uint64_t burst_ns_;
  unsigned shift_;
  std::vector<slot> slots_;
};

// A count-window circuit breaker under one mutex, with an optional bulkhead:
// the same rules as tollgate's count window (minimum calls, failure-rate and
// slow-rate thresholds, open duration, half-open probes).
class mutex_breaker {
 public:
  enum class state { closed, open, half_open };

  struct options {
    std::uint32_t window_size = 100;
    std::uint32_t minimum_calls = 20;
    double failure_rate_threshold = 50.0;
    double slow_rate_threshold = 100.0;
    std::uint64_t slow_call_ns = 1'000'000'000;
    std::uint64_t open_ns = 1'000'000'000;
    std::uint32_t half_open_probes = 5;
    std::uint32_t max_in_flight = 0;
  };

  struct permit {
    bool allowed;
    bool probe;
    std::uint64_t generation;
    std::uint64_t retry_after_ns;
  };

  explicit mutex_breaker(const options& o) : o_(o), ring_(o.window_size, 0) {}

  permit acquire(std::uint64_t now) {
    std::lock_guard<std::mutex> lock(mu_);
    bool probe = false;
    if (state_ == state::open) {
      if (now < open_until_) return {false, false, generation_, open_until_ - now};
      state_ = state::half_open;
      ++generation_;
      probes_issued_ = probes_ok_ = probes_bad_ = 0;
    }
    if (state_ == state::half_open) {
      if (probes_issued_ >= o_.half_open_probes) return {false, false, generation_, o_.open_ns};
      ++probes_issued_;
      probe = true;
    }
    if (o_.max_in_flight != 0) {
      if (in_flight_ >= o_.max_in_flight) {
        if (probe) --probes_issued_;
        return {false, false, generation_, 0};
      }
      ++in_flight_;
    }
    return {true, probe, generation_, 0};
  }

  void record(const permit& p, bool failure, std::uint64_t latency_ns, std::uint64_t now) {
    if (!p.allowed) return;
    std::lock_guard<std::mutex> lock(mu_);
    if (o_.max_in_flight != 0 && in_flight_ != 0) --in_flight_;
    if (p.generation != generation_) return;
    const bool slow = latency_ns >= o_.slow_call_ns;
    if (p.probe) {
      (failure || slow ? probes_bad_ : probes_ok_)++;
      if (probes_ok_ + probes_bad_ == o_.half_open_probes) {
        if (probes_bad_ * 100.0 >= o_.failure_rate_threshold * o_.half_open_probes) {
          trip(now);
        } else {
          reset();
        }
      }
      return;
    }
    const std::uint8_t bits = static_cast<std::uint8_t>((failure ? 1 : 0) | (slow ? 2 : 0));
    const std::uint8_t old = ring_[pos_];
    failures_ += (bits & 1) - (old & 1);
    slows_ += ((bits >> 1) & 1) - ((old >> 1) & 1);
    ring_[pos_] = bits;
    pos_ = pos_ + 1 == o_.window_size ? 0 : pos_ + 1;
    if (calls_ < o_.window_size) ++calls_;
    if (calls_ >= o_.minimum_calls && state_ == state::closed &&
        (failures_ * 100.0 >= o_.failure_rate_threshold * calls_ ||
         slows_ * 100.0 >= o_.slow_rate_threshold * calls_)) {
      trip(now);
    }
  }

  // Forces the breaker open until now + open_ns (the benchmarks' open case).
  void force_open(std::uint64_t now) {
    std::lock_guard<std::mutex> lock(mu_);
    trip(now);
  }

 private:
  void trip(std::uint64_t now) {
    state_ = state::open;
    open_until_ = now + o_.open_ns;
    ++generation_;
  }

  void reset() {
    state_ = state::closed;
    ++generation_;
    std::fill(ring_.begin(), ring_.end(), std::uint8_t{0});
    pos_ = calls_ = 0;
    failures_ = slows_ = 0;
  }

  options o_;
  std::mutex mu_;
  state state_ = state::closed;
  std::uint64_t open_until_ = 0;
  std::uint64_t generation_ = 0;
  std::vector<std::uint8_t> ring_;
  std::uint32_t pos_ = 0;
  std::uint32_t calls_ = 0;
  std::int64_t failures_ = 0;
  std::int64_t slows_ = 0;
  std::uint32_t probes_issued_ = 0;
  std::uint32_t probes_ok_ = 0;
  std::uint32_t probes_bad_ = 0;
  std::uint32_t in_flight_ = 0;
};

}  // namespace tollgate_bench
