// tollgate::venue_set - choosing the venue an order goes to.
//
// What it decides: which venue of a route's venue set receives a request,
// or that none can.
//
// Model: a set holds up to 64 venues, each with a weight and, optionally,
// the circuit breaker guarding it. A venue is eligible when the host has
// not disabled it and its breaker would admit a call now
// (breaker::ready_in(now) == 0: not open, not forced open, not half-open
// with every probe taken; an open breaker whose open period has ended is
// eligible, so that it receives the probes that can close it). Among the
// eligible venues:
//   - weighted: one venue at random in proportion to its weight;
//   - least_latency: two venues drawn that way (power of two choices), the
//     one with the lower latency estimate wins. The estimate is an EWMA of
//     completion latencies that decays toward 0 while a venue gets no
//     samples (e^(-idle / latency_decay_ns)), so a venue that was slow is
//     tried again later instead of being starved for good (with two venues
//     both are always compared); a venue with no sample yet counts as 0 ns,
//     so new venues are tried;
//   - sticky (either strategy, when the request has a key): weighted
//     rendezvous hashing on (seed, key, venue id). A key keeps its venue
//     while that venue stays eligible; when a venue leaves, only the keys
//     it held move (each to its next-highest score), and they come back when
//     it returns. No other key moves.
// "At random" means a hash of (seed, nonce): the caller supplies the nonce
// (an order sequence number, say), so a pick is a pure function of seed,
// nonce, key, the eligible set and, for least_latency, the two candidates'
// EWMAs. venue_pick reports the eligible set and both candidates, so a
// journalled decision can be replayed with choose().
//
// When no venue is eligible the pick fails with all_open (some breaker will
// admit again after retry_after_ns) or all_down (every venue is disabled or
// forced open).
//
// Thread-safety: pick, record_latency, set_enabled and stats may be called
// from any number of threads at once; pick is lock-free and allocation-free.
#pragma once

#include <atomic>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "tollgate/breaker.hpp"
#include "tollgate/detail/counters.hpp"
#include "tollgate/detail/hash.hpp"

namespace tollgate {

enum class venue_strategy : std::uint32_t { weighted = 0, least_latency = 1 };
// no_venue_set: route() matched no route, or one that names no venue set.
enum class venue_reason : std::int32_t { none = 0, all_open = 1, all_down = 2, no_venue_set = 3 };

struct venue_config {
  std::uint32_t venue_id = 0;       // the host's id; sticky picks hash it, so keep it stable
  std::uint32_t weight = 1;         // 1..max_weight
  std::shared_ptr<breaker> health;  // optional: skipped while it would reject
};

struct venue_set_options {
  venue_strategy strategy = venue_strategy::weighted;
  bool sticky = false;  // picks with a non-empty key use rendezvous hashing
  std::uint64_t seed = 0;
  double latency_alpha = 0.2;                       // EWMA weight of the newest sample, in (0, 1]
  std::uint64_t latency_decay_ns = 10'000'000'000;  // idle time constant; 0: no decay
};

struct venue_pick {
  bool ok = false;
  venue_reason reason = venue_reason::none;
  std::uint32_t index = 0;           // into the set, when ok
  std::uint32_t venue_id = 0;        // when ok
  std::uint32_t alternative = 0;     // least_latency: the other candidate (== index otherwise)
  std::uint64_t eligible = 0;        // bit i: venue i was eligible
  std::uint64_t retry_after_ns = 0;  // when !ok: until a breaker may admit (never_ready: none will)
};

struct venue_stats {
  std::uint32_t venue_id = 0;
  std::uint32_t weight = 0;
  bool enabled = true;
  std::uint64_t ready_in_ns = 0;  // breaker::ready_in, 0 without a breaker
  double latency_ewma_ns = -1;    // -1 before the first sample
  std::uint64_t latency_samples = 0;
};

class venue_set {
 public:
  static constexpr std::size_t max_venues = 64;
  static constexpr std::uint32_t max_weight = 1'000'000;
  static constexpr std::uint64_t never_ready = breaker::never_ready;
  static constexpr std::uint64_t max_decay_ns = std::uint64_t{1} << 62;

  static absl::StatusOr<std::shared_ptr<venue_set>> create(std::vector<venue_config> venues,
                                                           const venue_set_options& o) {
    if (venues.empty()) return absl::InvalidArgumentError("a venue set needs at least one venue");
    if (venues.size() > max_venues) {
      return absl::OutOfRangeError("a venue set holds at most 64 venues");
    }
    if (o.strategy != venue_strategy::weighted && o.strategy != venue_strategy::least_latency) {
      return absl::InvalidArgumentError("strategy must be WEIGHTED or LEAST_LATENCY");
    }
    if (!(o.latency_alpha > 0.0) || !(o.latency_alpha <= 1.0)) {
      return absl::OutOfRangeError("latency_alpha must be in (0, 1]");
    }
    if (o.latency_decay_ns > max_decay_ns) {
      return absl::OutOfRangeError("latency_decay_ns must be <= 2^62");
    }
    for (std::size_t i = 0; i < venues.size(); ++i) {
      if (venues[i].weight == 0 || venues[i].weight > max_weight) {
        return absl::OutOfRangeError("venue " + std::to_string(i) + ": weight must be 1..1000000");
      }
      for (std::size_t j = 0; j < i; ++j) {
        if (venues[j].venue_id == venues[i].venue_id) {
          return absl::InvalidArgumentError("venue " + std::to_string(i) + ": venue_id " +
                                            std::to_string(venues[i].venue_id) + " repeats venue " +
                                            std::to_string(j));
        }
      }
    }
    return std::shared_ptr<venue_set>(new venue_set(std::move(venues), o));
  }

  venue_set(const venue_set&) = delete;
  venue_set& operator=(const venue_set&) = delete;

  std::size_t size() const noexcept { return n_; }
  const venue_set_options& options() const noexcept { return opts_; }
  std::uint32_t venue_id(std::size_t i) const noexcept { return ids_[i]; }
  std::uint32_t weight(std::size_t i) const noexcept { return weights_[i]; }
  const std::shared_ptr<breaker>& health(std::size_t i) const noexcept { return health_[i]; }

  // Picks a venue for a request. key may be empty (no stickiness).
  venue_pick pick(std::string_view key, std::uint64_t nonce, std::uint64_t now_ns) const noexcept {
    std::uint64_t eligible = 0;
    std::uint64_t soonest = never_ready;
    for (std::size_t i = 0; i < n_; ++i) {
      if (!state_[i].enabled.load(std::memory_order_acquire)) continue;
      const breaker* b = health_[i].get();
      const std::uint64_t wait = b != nullptr ? b->ready_in(now_ns) : 0;
      if (wait == 0) {
        eligible |= std::uint64_t{1} << i;
      } else if (wait < soonest) {
        soonest = wait;
      }
    }
    if (eligible == 0) {
      venue_pick p;
      p.reason = soonest == never_ready ? venue_reason::all_down : venue_reason::all_open;
      p.retry_after_ns = soonest;
      return p;
    }
    return choose(key, nonce, eligible, now_ns);
  }

  // The pure part of pick: the same arguments (and latency estimates, for
  // least_latency) give the same venue. Replays call it with a journalled
  // eligible mask. Bits beyond size() are ignored.
  venue_pick choose(std::string_view key, std::uint64_t nonce, std::uint64_t eligible,
                    std::uint64_t now_ns = 0) const noexcept {
    venue_pick p;
    eligible &= all_mask_;
    p.eligible = eligible;
    if (eligible == 0) {
      p.reason = venue_reason::all_down;
      p.retry_after_ns = never_ready;
      return p;
    }
    std::uint32_t i;
    std::uint32_t alt;
    if (opts_.sticky && !key.empty()) {
      i = alt = rendezvous(detail::hash_bytes(key.data(), key.size(), opts_.seed), eligible);
    } else {
      i = alt = draw(mix(opts_.seed ^ mix(nonce)), eligible);
      if (opts_.strategy == venue_strategy::least_latency) {
        const std::uint64_t rest = eligible & ~(std::uint64_t{1} << i);
        if (rest != 0) {
          alt = draw(mix(opts_.seed ^ mix(nonce ^ 0x5bd1e9955bd1e995ULL)), rest);
          if (latency(alt, now_ns) < latency(i, now_ns)) std::swap(i, alt);
        }
      }
    }
    p.ok = true;
    p.index = i;
    p.alternative = alt;
    p.venue_id = ids_[i];
    return p;
  }

  // Feeds one completion latency, observed at now_ns, into venue i's
  // estimate: the estimate decayed to now_ns, plus alpha times the
  // difference. Returns false when i is out of range.
  bool record_latency(std::size_t i, std::uint64_t latency_ns, std::uint64_t now_ns) noexcept {
    if (i >= n_) return false;
    const double x = static_cast<double>(latency_ns);
    venue_state& v = state_[i];
    const std::uint64_t last = v.last_ns.load(std::memory_order_relaxed);
    std::uint64_t cur = v.ewma.load(std::memory_order_relaxed);
    for (;;) {
      double next = x;
      if (cur != unset) {
        const double prev = as_double(cur) * decay(last, now_ns);
        next = prev + opts_.latency_alpha * (x - prev);
      }
      if (v.ewma.compare_exchange_weak(cur, std::bit_cast<std::uint64_t>(next),
                                       std::memory_order_relaxed)) {
        break;
      }
    }
    if (now_ns > last) v.last_ns.store(now_ns, std::memory_order_relaxed);
    v.samples.fetch_add(1, std::memory_order_relaxed);
    return true;
  }

  // The host takes a venue out (maintenance, a session down) or puts it
  // back. Effective for every pick that starts after it returns.
  bool set_enabled(std::size_t i, bool on) noexcept {
    if (i >= n_) return false;
    state_[i].enabled.store(on, std::memory_order_release);
    return true;
  }

  // Venue index for a venue id, or -1.
  std::int64_t index_of(std::uint32_t id) const noexcept {
    for (std::size_t i = 0; i < n_; ++i) {
      if (ids_[i] == id) return static_cast<std::int64_t>(i);
    }
    return -1;
  }

  venue_stats stats(std::size_t i, std::uint64_t now_ns) const noexcept {
    venue_stats s;
    if (i >= n_) return s;
    s.venue_id = ids_[i];
    s.weight = weights_[i];
    s.enabled = state_[i].enabled.load(std::memory_order_acquire);
    s.ready_in_ns = health_[i] ? health_[i]->ready_in(now_ns) : 0;
    const std::uint64_t e = state_[i].ewma.load(std::memory_order_relaxed);
    s.latency_ewma_ns = e == unset ? -1.0 : latency(static_cast<std::uint32_t>(i), now_ns);
    s.latency_samples = state_[i].samples.load(std::memory_order_relaxed);
    return s;
  }

 private:
  static constexpr std::uint64_t unset = ~std::uint64_t{0};  // a NaN pattern no EWMA produces

  struct alignas(64) venue_state {
    std::atomic<bool> enabled{true};
    std::atomic<std::uint64_t> ewma{unset};
    std::atomic<std::uint64_t> samples{0};
    std::atomic<std::uint64_t> last_ns{0};  // time of the latest sample
  };

  venue_set(std::vector<venue_config> venues, const venue_set_options& o)
      : opts_(o), n_(venues.size()), state_(std::make_unique<venue_state[]>(venues.size())) {
    all_mask_ = n_ == 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << n_) - 1;
    equal_weights_ = true;
    for (std::size_t i = 0; i < n_; ++i) {
      ids_[i] = venues[i].venue_id;
      weights_[i] = venues[i].weight;
      health_[i] = std::move(venues[i].health);
      if (weights_[i] != weights_[0]) equal_weights_ = false;
    }
  }

  static double as_double(std::uint64_t bits) noexcept { return std::bit_cast<double>(bits); }

  // e^(-(now - last) / latency_decay_ns); 1 without decay or elapsed time.
  // Below a sixteenth of the time constant the first-order term is within
  // 0.2% and spares the exp().
  double decay(std::uint64_t last, std::uint64_t now) const noexcept {
    if (opts_.latency_decay_ns == 0 || now <= last) return 1.0;
    const double x = static_cast<double>(now - last) / static_cast<double>(opts_.latency_decay_ns);
    return x < 0.0625 ? 1.0 - x : std::exp(-x);
  }

  double latency(std::uint32_t i, std::uint64_t now_ns) const noexcept {
    const std::uint64_t e = state_[i].ewma.load(std::memory_order_relaxed);
    if (e == unset) return 0.0;
    return as_double(e) * decay(state_[i].last_ns.load(std::memory_order_relaxed), now_ns);
  }

  // splitmix64's finaliser: a bijection that spreads every input bit.
  static std::uint64_t mix(std::uint64_t z) noexcept {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

  // A venue among `mask` with probability weight / total weight.
  std::uint32_t draw(std::uint64_t r, std::uint64_t mask) const noexcept {
    std::uint64_t total = 0;
    for (std::uint64_t m = mask; m != 0; m &= m - 1) total += weights_[std::countr_zero(m)];
    std::uint64_t x = static_cast<std::uint64_t>((static_cast<detail::u128>(r) * total) >> 64);
    std::uint64_t m = mask;
    for (;;) {
      const std::uint32_t i = static_cast<std::uint32_t>(std::countr_zero(m));
      m &= m - 1;
      if (x < weights_[i] || m == 0) return i;
      x -= weights_[i];
    }
  }

  // Weighted rendezvous (highest random weight): score = w / -ln(u), u the
  // venue's hash of the key mapped into (0, 1). With equal weights the
  // order of u alone decides, which needs no logarithm.
  std::uint32_t rendezvous(std::uint64_t key_hash, std::uint64_t mask) const noexcept {
    std::uint32_t best = 0;
    std::uint64_t best_h = 0;
    double best_score = -1.0;
    for (std::uint64_t m = mask; m != 0; m &= m - 1) {
      const std::uint32_t i = static_cast<std::uint32_t>(std::countr_zero(m));
      const std::uint64_t h = mix(key_hash ^ mix(ids_[i] + 0x9e3779b97f4a7c15ULL));
      if (equal_weights_) {
        if (best_score < 0 || h > best_h) {
          best = i;
          best_h = h;
          best_score = 0;
        }
        continue;
      }
      const double u = (static_cast<double>(h >> 11) + 0.5) * 0x1.0p-53;
      const double score = static_cast<double>(weights_[i]) / -std::log(u);
      if (score > best_score) {
        best = i;
        best_score = score;
      }
    }
    return best;
  }

  venue_set_options opts_;
  std::size_t n_;
  std::uint64_t all_mask_ = 0;
  bool equal_weights_ = true;
  std::uint32_t ids_[max_venues] = {};
  std::uint32_t weights_[max_venues] = {};
  std::shared_ptr<breaker> health_[max_venues];
  std::unique_ptr<venue_state[]> state_;
};

}  // namespace tollgate
