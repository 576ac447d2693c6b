// tollgate::limiter - keyed GCRA rate limiting.
//
// What it decides: whether a request of a given cost, for a given key (an
// account, an API key, an IP address: any bytes), in a given tier (a named
// rate/burst class), may pass at time now_ns, and if not, how long to wait.
//
// Model: the Generic Cell Rate Algorithm, the token bucket written as one
// "theoretical arrival time" (TAT) per key. With emission interval T (ns per
// token) and burst b, a request of cost c at time now is admitted iff
//     max(TAT, now) + c*T - now <= b*T,
// and then TAT := max(TAT, now) + c*T. A bucket whose TAT <= now is full and
// carries no information; such buckets are "idle" and are what the bounded
// key table evicts first. Rates are quantised to an integer T in ns
// (T = round(1e9 / rate), at least 1), so over any window of t ns a full
// bucket admits exactly b + floor(t / T) unit requests.
//
// The run-time multiplier m (market conditions) scales every rate without
// touching any bucket: the buckets live on a virtual clock that runs m times
// as fast as the caller's clock, piecewise from the instant of each change
// (32.32 fixed point; exact when m = 1). A change therefore keeps every
// bucket's token count as it was at that instant and only changes how fast
// tokens come back; retry-after is converted back to real nanoseconds,
// rounded up.
//
// Invariants:
//   - time standing still or stepping backwards never creates tokens
//     (max(TAT, now) never decreases TAT), and neither does a multiplier
//     change;
//   - a bucket never holds more than b tokens, also after cancellations;
//   - a cost larger than b is rejected at once (cost_exceeds_burst), with
//     retry_after = retry_never, never queued forever;
//   - every rejection carries the exact wait until the same request would be
//     admitted (absent other traffic).
//
// Key table: open addressing over 16-byte slots {key hash, TAT}, four slots
// to a 64-byte group, each key hashed to two candidate groups. A slot is
// updated with one 16-byte CAS on key and TAT together, so a decision can
// never land on a slot that was meanwhile given to another key. When a new
// key finds its eight candidate slots taken, the idle one that has been idle
// longest is evicted (an empty slot is used only while fewer than `capacity`
// keys are held, so the table never holds more); if none is idle the request
// is rejected with reason
// `capacity` and the time until a candidate goes idle (fail closed), or, with
// on_full_policy::overflow, decided against one shared bucket per tier.
//
// Thread-safety: acquire, peek, reserve, cancel, remaining and the
// accessors are lock-free and allocation-free and may be called from any
// number of threads at once. set_multiplier and set_shadow may be called at
// any time; a short writer lock serialises concurrent multiplier changes
// and readers take a consistent view of the clock through a seqlock (they
// retry, never block, if a change is being written).
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "tollgate/detail/atomic128.hpp"
#include "tollgate/detail/counters.hpp"
#include "tollgate/detail/hash.hpp"

namespace tollgate {

enum class limit_reason : std::int32_t {
  none = 0,
  rate = 1,
  cost_exceeds_burst = 2,
  capacity = 3,
  parent = 4,
  invalid_argument = 100,  // C++ only: a tier index out of range
};

inline constexpr std::uint64_t retry_never = ~std::uint64_t{0};

struct limit_decision {
  bool allowed = false;
  bool shadow = false;  // admitted only because the limiter is in shadow mode
  limit_reason reason = limit_reason::none;
  std::uint64_t retry_after_ns = 0;
  std::uint64_t remaining = 0;  // whole tokens left in the key's bucket
};

// What a reservation took, so that cancel() can give it back.
struct reservation {
  std::uint64_t key_hash = 0;
  std::uint64_t own_ns = 0;  // taken from the key's bucket (virtual ns)
  std::uint64_t cost = 0;    // tokens taken at every level of the hierarchy
  std::uint32_t tier = 0;
  // bit 0 valid; bit 1 + k: level k used its overflow bucket; bit 16 + k:
  // level k took tokens (a level in shadow mode may admit without taking).
  std::uint32_t flags = 0;

  bool valid() const noexcept { return (flags & 1u) != 0; }
};

struct tier {
  std::string name;
  double rate = 1000.0;  // tokens per second
  std::uint32_t burst = 1000;
};

enum class on_full_policy { reject, overflow };

class limiter;

struct limiter_options {
  std::vector<tier> tiers{tier{"default", 1000.0, 1000}};
  std::uint64_t capacity = 65536;
  on_full_policy on_full = on_full_policy::reject;
  bool shadow = false;
  double multiplier = 1.0;
  // Consulted with its empty-key bucket after this limiter admits, and so on
  // up its own parents (at most max_depth levels in all): every level must
  // admit, and a rejection gives back what the levels below took. Not owned;
  // must outlive this limiter.
  limiter* parent = nullptr;
  // The seed of the key hash (which slots a key may take). 0: a random one,
  // so that keys chosen to collide cannot be guessed. A journal records it
  // (limiter::hash_seed) so that a replay places keys exactly as the live
  // limiter did, capacity rejections included.
  std::uint64_t hash_seed = 0;
};

struct limiter_stats {
  std::uint64_t admitted = 0;
  std::uint64_t rejected = 0;
  std::uint64_t shadow_rejected = 0;
  std::uint64_t capacity_rejected = 0;
  std::uint64_t evictions = 0;
  std::uint64_t keys = 0;
  std::uint64_t slots = 0;
  std::uint64_t cancelled = 0;
};

// Plain GCRA arithmetic, shared by the keyed table and single buckets.
namespace gcra {

// Largest supported now_ns; larger values are clamped (about 146 years of
// monotonic time), which keeps every sum below 2^64.
inline constexpr std::uint64_t max_now = std::uint64_t{1} << 62;
// burst * T must not exceed this.
inline constexpr std::uint64_t max_burst_ns = std::uint64_t{1} << 62;

struct tier_params {
  std::uint64_t t_ns;      // emission interval
  std::uint64_t burst_ns;  // burst * t_ns
  double inv_t;            // 1.0 / t_ns, to count tokens without dividing
  std::uint64_t burst;     // tokens
};

struct step {
  bool ok;
  std::uint64_t new_tat;
  std::uint64_t retry_after_ns;
  std::uint64_t remaining;
};

inline std::uint64_t whole_tokens(std::uint64_t avail_ns, const tier_params& p) noexcept {
  // avail_ns <= 2^62, so the signed conversions (one instruction each on
  // x86-64, unlike the unsigned ones) are exact enough and never overflow.
  auto r = static_cast<std::uint64_t>(static_cast<std::int64_t>(
      static_cast<double>(static_cast<std::int64_t>(avail_ns)) * p.inv_t));
  // The reciprocal can be off by one either way at exact multiples of T.
  if (r * p.t_ns > avail_ns) {
    --r;
  } else if ((r + 1) * p.t_ns <= avail_ns) {
    ++r;
  }
  return r;
}

inline std::uint64_t remaining_at(std::uint64_t tat, std::uint64_t now,
                                  const tier_params& p) noexcept {
  const std::uint64_t used = tat > now ? tat - now : 0;
  return used >= p.burst_ns ? 0 : whole_tokens(p.burst_ns - used, p);
}

// cost_ns <= p.burst_ns and now <= max_now are the caller's preconditions.
inline step evaluate(std::uint64_t tat, std::uint64_t now, std::uint64_t cost_ns,
                     const tier_params& p) noexcept {
  const std::uint64_t base = tat > now ? tat : now;
  const std::uint64_t used_after = base - now + cost_ns;
  if (used_after <= p.burst_ns) {
    return {true, base + cost_ns, 0, whole_tokens(p.burst_ns - used_after, p)};
  }
  return {false, tat, used_after - p.burst_ns, remaining_at(tat, now, p)};
}

// Give back cost_ns taken earlier; never beyond a full bucket.
inline std::uint64_t refund(std::uint64_t tat, std::uint64_t now, std::uint64_t cost_ns) noexcept {
  if (tat <= now) return tat;  // already full
  return tat - now > cost_ns ? tat - cost_ns : now;
}

}  // namespace gcra

class limiter {
 public:
  static constexpr std::uint32_t max_tiers = 64;
  static constexpr std::uint64_t max_capacity = std::uint64_t{1} << 26;
  static constexpr double max_rate = 1e9;
  static constexpr double min_multiplier = 1e-6;
  static constexpr double max_multiplier = 1e6;

  static constexpr std::uint32_t max_depth = 15;
  static constexpr std::uint32_t res_valid = 1;
  static constexpr std::uint32_t res_overflow_shift = 1;
  static constexpr std::uint32_t res_took_shift = 16;

  // Validates everything; nothing is allocated for an invalid configuration.
  static absl::StatusOr<std::unique_ptr<limiter>> create(const limiter_options& opts) {
    if (opts.tiers.empty() || opts.tiers.size() > max_tiers) {
      return absl::InvalidArgumentError("tier count must be 1..64");
    }
    if (opts.capacity == 0 || opts.capacity > max_capacity) {
      return absl::OutOfRangeError("capacity must be 1..2^26 keys");
    }
    if (!(opts.multiplier >= min_multiplier) || !(opts.multiplier <= max_multiplier)) {
      return absl::OutOfRangeError("multiplier must be in [1e-6, 1e6]");
    }
    std::uint32_t depth = 1;
    for (const limiter* a = opts.parent; a != nullptr; a = a->parent_) {
      if (++depth > max_depth) {
        return absl::InvalidArgumentError("a limiter hierarchy has at most 15 levels");
      }
    }
    for (std::size_t i = 0; i < opts.tiers.size(); ++i) {
      const tier& t = opts.tiers[i];
      if (t.name.empty() || t.name.size() > 63) {
        return absl::InvalidArgumentError("tier " + std::to_string(i) +
                                          ": name must be 1..63 bytes");
      }
      for (std::size_t j = 0; j < i; ++j) {
        if (opts.tiers[j].name == t.name) {
          return absl::InvalidArgumentError("tier " + std::to_string(i) + ": duplicate name '" +
                                            t.name + "'");
        }
      }
      if (!(t.rate > 0.0) || !(t.rate <= max_rate)) {
        return absl::OutOfRangeError("tier '" + t.name +
                                     "': rate must be finite, > 0 and <= 1e9 per second");
      }
      if (t.burst == 0) {
        return absl::InvalidArgumentError("tier '" + t.name + "': burst must be >= 1");
      }
      if (!params_for(t)) {
        return absl::OutOfRangeError("tier '" + t.name +
                                     "': burst / rate too large (burst * interval > 2^62 ns)");
      }
    }
    return std::unique_ptr<limiter>(new limiter(opts));
  }

  limiter(const limiter&) = delete;
  limiter& operator=(const limiter&) = delete;
  ~limiter() { std::free(slots_); }

  // Take `cost` tokens. cost 0 asks without taking (like peek).
  limit_decision acquire(std::string_view key, std::uint32_t tier_index, std::uint32_t cost,
                         std::uint64_t now_ns) noexcept {
    const std::uint64_t h = hash(key);
    if (parent_ == nullptr) return decide_flat(h, tier_index, cost, now_ns);
    return decide(h, tier_index, cost, now_ns, nullptr);
  }

  // n acquires at one now_ns: key_at(i) gives key i (a string_view),
  // tier_at(i) and cost_at(i) its tier and cost, emit(i, decision) takes the
  // result. Keys are hashed a few requests ahead and their first group is
  // prefetched, so the cache misses of a large table overlap instead of
  // being waited for one by one.
  template <class KeyAt, class TierAt, class CostAt, class Emit>
  void acquire_many(std::size_t n, KeyAt&& key_at, TierAt&& tier_at, CostAt&& cost_at,
                    std::uint64_t now_ns, Emit&& emit) noexcept {
    constexpr std::size_t ahead = 8;
    std::uint64_t pending[ahead];
    for (std::size_t i = 0; i < n && i < ahead; ++i) {
      pending[i] = hash(key_at(i));
      prefetch(pending[i]);
    }
    for (std::size_t i = 0; i < n; ++i) {
      const std::uint64_t h = pending[i % ahead];
      if (i + ahead < n) {
        pending[i % ahead] = hash(key_at(i + ahead));
        prefetch(pending[i % ahead]);
      }
      const std::uint32_t t = tier_at(i);
      const std::uint32_t c = cost_at(i);
      emit(i, parent_ == nullptr ? decide_flat(h, t, c, now_ns) : decide(h, t, c, now_ns, nullptr));
    }
  }

  // As acquire; when admitted *res records what was taken for cancel().
  limit_decision reserve(std::string_view key, std::uint32_t tier_index, std::uint32_t cost,
                         std::uint64_t now_ns, reservation* res) noexcept {
    return decide(hash(key), tier_index, cost, now_ns, res);
  }

  // Give back what a reservation took, at every level that took it. Calling
  // it twice for one reservation gives back twice (bounded by a full bucket);
  // the caller cancels once.
  void cancel(const reservation& res, std::uint64_t now_ns) noexcept {
    if (!res.valid() || res.tier >= tier_count_) return;
    const std::uint64_t real = std::min(now_ns, gcra::max_now);
    std::uint32_t tier_index = res.tier;
    std::uint32_t level = 0;
    for (limiter* l = this; l != nullptr && level < max_depth; l = l->parent_, ++level) {
      if (level > 0) tier_index = l->tier_count_ > tier_index ? tier_index : 0;
      if ((res.flags >> (res_took_shift + level)) & 1u) {
        const std::uint64_t now = l->clock().to_virtual(real);
        const std::uint64_t amount =
            level == 0 ? res.own_ns : res.cost * l->params(tier_index).t_ns;
        if ((res.flags >> (res_overflow_shift + level)) & 1u) {
          l->refund_word(l->overflow_[tier_index].tat, amount, now);
        } else {
          l->refund_key(level == 0 ? res.key_hash : l->empty_key_hash_, amount, now);
        }
      }
    }
    stats_.add(st_cancelled);
  }

  // What acquire would decide now; changes nothing.
  limit_decision peek(std::string_view key, std::uint32_t tier_index, std::uint32_t cost,
                      std::uint64_t now_ns) const noexcept {
    if (tier_index >= tier_count_) return invalid();
    const std::uint64_t real = std::min(now_ns, gcra::max_now);
    limit_decision d = peek_local(hash(key), tier_index, cost, real);
    std::uint32_t t = tier_index;
    const limiter* l = this;
    for (std::uint32_t level = 1;
         d.allowed && cost != 0 && l->parent_ != nullptr && level < max_depth; ++level) {
      t = l->parent_tier(t);
      l = l->parent_;
      const limit_decision pd = l->with_shadow(l->peek_local(l->empty_key_hash_, t, cost, real));
      if (!pd.allowed) {
        d = {false, false, limit_reason::parent, pd.retry_after_ns, d.remaining + cost};
      }
    }
    return with_shadow(d);
  }

  // Whole tokens available to key in the tier (burst for an unknown key).
  std::uint64_t remaining(std::string_view key, std::uint32_t tier_index,
                          std::uint64_t now_ns) const noexcept {
    if (tier_index >= tier_count_) return 0;
    const std::uint64_t now = clock().to_virtual(std::min(now_ns, gcra::max_now));
    return gcra::remaining_at(peek_tat(hash(key), tier_index, now), now, params(tier_index));
  }

  // From now_ns on, every rate is scaled by m; buckets keep their tokens.
  absl::Status set_multiplier(double m, std::uint64_t now_ns) {
    if (!(m >= min_multiplier) || !(m <= max_multiplier)) {
      return absl::OutOfRangeError("multiplier must be in [1e-6, 1e6]");
    }
    const std::uint64_t m_fixed = fixed_multiplier(m);
    const std::uint64_t now = std::min(now_ns, gcra::max_now);
    std::lock_guard<std::mutex> lock(writer_);
    const vclock cur = clock();
    const vclock next{now, cur.to_virtual(now), m_fixed};
    // Seqlock writer: odd while the clock changes. The release stores of the
    // fields order the odd sequence number before them.
    const std::uint64_t sq = seq_.load(std::memory_order_relaxed);
    seq_.store(sq + 1, std::memory_order_relaxed);
    t_base_.store(next.t_base, std::memory_order_release);
    v_base_.store(next.v_base, std::memory_order_release);
    m_fixed_.store(next.m_fixed, std::memory_order_release);
    multiplier_.store(m, std::memory_order_relaxed);
    seq_.store(sq + 2, std::memory_order_release);
    return absl::OkStatus();
  }

  double multiplier() const noexcept { return multiplier_.load(std::memory_order_relaxed); }
  void set_shadow(bool on) noexcept { shadow_.store(on, std::memory_order_relaxed); }
  bool shadow() const noexcept { return shadow_.load(std::memory_order_relaxed); }
  std::uint32_t tier_count() const noexcept { return tier_count_; }
  const tier& tier_at(std::uint32_t i) const noexcept { return tiers_[i]; }
  limiter* parent() const noexcept { return parent_; }

  // Emission interval of a tier in real ns under the current multiplier
  // (rounded up when the multiplier is not 1).
  std::uint64_t interval_ns(std::uint32_t tier_index) const noexcept {
    return tier_index < tier_count_ ? clock().to_real_wait(params(tier_index).t_ns) : 0;
  }

  std::optional<std::uint32_t> tier_index(std::string_view name) const noexcept {
    for (std::uint32_t i = 0; i < tier_count_; ++i) {
      if (tiers_[i].name == name) return i;
    }
    return std::nullopt;
  }

  limiter_stats stats() const noexcept {
    limiter_stats s;
    s.admitted = stats_.sum(st_admitted);
    s.rejected = stats_.sum(st_rejected);
    s.shadow_rejected = stats_.sum(st_shadow_rejected);
    s.capacity_rejected = stats_.sum(st_capacity_rejected);
    s.evictions = stats_.sum(st_evictions);
    s.cancelled = stats_.sum(st_cancelled);
    const std::int64_t k = keys_.load(std::memory_order_relaxed);
    s.keys = k < 0 ? 0 : static_cast<std::uint64_t>(k);
    s.slots = slot_count_;
    return s;
  }

  std::uint64_t hash_seed() const noexcept { return seed_; }
  on_full_policy on_full() const noexcept { return on_full_; }
  std::uint64_t capacity() const noexcept { return capacity_; }

  std::uint64_t hash(std::string_view key) const noexcept {
    return detail::hash_bytes(key.data(), key.size(), seed_);
  }

  // Bytes of key-table memory, for sizing.
  std::uint64_t table_bytes() const noexcept { return slot_count_ * sizeof(detail::pair_slot); }

 private:
  static constexpr std::uint32_t group_slots = 4;

  enum stat : std::size_t {
    st_admitted,
    st_rejected,
    st_shadow_rejected,
    st_capacity_rejected,
    st_evictions,
    st_cancelled,
    st_count
  };

  struct alignas(64) overflow_bucket {
    std::atomic<std::uint64_t> tat{0};
  };

  explicit limiter(const limiter_options& o)
      : tiers_(o.tiers),
        tier_count_(static_cast<std::uint32_t>(o.tiers.size())),
        on_full_(o.on_full),
        capacity_(o.capacity),
        parent_(o.parent),
        shadow_(o.shadow),
        multiplier_(o.multiplier),
        overflow_(std::make_unique<overflow_bucket[]>(o.tiers.size())) {
    seed_ = o.hash_seed;
    while (seed_ == 0) {
      std::random_device rd;
      seed_ = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
    }
    for (const tier& t : tiers_) params_.push_back(*params_for(t));
    m_fixed_.store(fixed_multiplier(o.multiplier), std::memory_order_relaxed);
    // At most 7/8 load at `capacity` keys; at least two groups.
    slot_count_ =
        std::max<std::uint64_t>(2 * group_slots, detail::next_pow2((o.capacity * 8 + 6) / 7));
    group_mask_ = slot_count_ / group_slots - 1;
    const std::size_t bytes = slot_count_ * sizeof(detail::pair_slot);
    slots_ = static_cast<detail::pair_slot*>(std::aligned_alloc(64, bytes));
    if (slots_ == nullptr) throw std::bad_alloc();
    std::memset(static_cast<void*>(slots_), 0, bytes);
    empty_key_hash_ = hash(std::string_view());
  }

  static std::optional<gcra::tier_params> params_for(const tier& t) noexcept {
    const double interval = std::round(1e9 / t.rate);
    if (!(interval < 9.2e18)) return std::nullopt;
    std::uint64_t tn = interval < 1.0 ? 1 : static_cast<std::uint64_t>(interval);
    if (tn > gcra::max_burst_ns / t.burst) return std::nullopt;
    return gcra::tier_params{tn, tn * t.burst, 1.0 / static_cast<double>(tn), t.burst};
  }

  static std::uint64_t fixed_multiplier(double m) noexcept {
    const double f = std::round(m * 4294967296.0);
    return f < 1.0 ? 1 : static_cast<std::uint64_t>(f);
  }

  const gcra::tier_params& params(std::uint32_t i) const noexcept { return params_[i]; }

  // The buckets' virtual clock: v(now) = v_base + (now - t_base) * m.
  struct vclock {
    std::uint64_t t_base;
    std::uint64_t v_base;
    std::uint64_t m_fixed;  // 32.32

    static std::uint64_t scale(std::uint64_t d, std::uint64_t m) noexcept {
      if (m == one) return d;
      const detail::u128 r = (static_cast<detail::u128>(d) * m) >> 32;
      return r > gcra::max_now ? gcra::max_now : static_cast<std::uint64_t>(r);
    }
    std::uint64_t to_virtual(std::uint64_t now) const noexcept {
      if (now >= t_base) return std::min(v_base + scale(now - t_base, m_fixed), gcra::max_now);
      const std::uint64_t back = scale(t_base - now, m_fixed);
      return back >= v_base ? 0 : v_base - back;
    }
    // A wait in virtual ns as real ns, rounded up so that waiting that long
    // is always enough.
    std::uint64_t to_real_wait(std::uint64_t w) const noexcept {
      if (w == retry_never || m_fixed == one) return w;
      const detail::u128 r = ((static_cast<detail::u128>(w) << 32) + m_fixed - 1) / m_fixed;
      return r >= retry_never ? retry_never - 1 : static_cast<std::uint64_t>(r);
    }
    static constexpr std::uint64_t one = std::uint64_t{1} << 32;
  };

  // Seqlock read: a consistent clock even while set_multiplier runs. The
  // acquire loads of the fields keep the second sequence load after them
  // (no fences: ThreadSanitizer models this exactly).
  vclock clock() const noexcept {
    for (;;) {
      const std::uint64_t sq = seq_.load(std::memory_order_acquire);
      const vclock c{t_base_.load(std::memory_order_acquire),
                     v_base_.load(std::memory_order_acquire),
                     m_fixed_.load(std::memory_order_acquire)};
      if ((sq & 1) == 0 && seq_.load(std::memory_order_relaxed) == sq) return c;
    }
  }

  static limit_decision real_waits(limit_decision d, const vclock& c) noexcept {
    d.retry_after_ns = c.to_real_wait(d.retry_after_ns);
    return d;
  }

  std::uint32_t parent_tier(std::uint32_t t) const noexcept {
    return t < parent_->tier_count_ ? t : 0;
  }

  static limit_decision invalid() noexcept {
    return {false, false, limit_reason::invalid_argument, 0, 0};
  }

  limit_decision with_shadow(limit_decision d) const noexcept {
    if (!d.allowed && shadow()) {
      d.allowed = true;
      d.shadow = true;
    }
    return d;
  }

  static limit_decision too_costly(std::uint64_t tat, std::uint64_t now,
                                   const gcra::tier_params& p) noexcept {
    return {false, false, limit_reason::cost_exceeds_burst, retry_never,
            gcra::remaining_at(tat, now, p)};
  }

  void prefetch(std::uint64_t h) const noexcept {
    __builtin_prefetch(slots_ + (h & group_mask_) * group_slots, 1);
  }

  void groups(std::uint64_t h, std::uint64_t* g) const noexcept {
    g[0] = h & group_mask_;
    g[1] = detail::fold_mul(h, 0x9e3779b97f4a7c15ULL) & group_mask_;
    if (g[1] == g[0]) g[1] = g[0] ^ 1;
  }

  detail::pair_slot* find(std::uint64_t h) const noexcept {
    // The first group holds most keys: look there before computing the second.
    detail::pair_slot* base = slots_ + (h & group_mask_) * group_slots;
    for (std::uint32_t i = 0; i < group_slots; ++i) {
      if (detail::load_key(base[i]) == h) return base + i;
    }
    std::uint64_t g[2];
    groups(h, g);
    base = slots_ + g[1] * group_slots;
    for (std::uint32_t i = 0; i < group_slots; ++i) {
      if (detail::load_key(base[i]) == h) return base + i;
    }
    return nullptr;
  }

  // Claims a slot for a new key h: an empty one, else the longest-idle one.
  // On success the slot holds {h, 0} (a full bucket) or h already. On
  // failure *wait_ns is the time until a candidate becomes idle.
  detail::pair_slot* insert(std::uint64_t h, std::uint64_t now, std::uint64_t* wait_ns) noexcept {
    std::uint64_t g[2];
    groups(h, g);
    for (int attempt = 0; attempt < 64; ++attempt) {
      detail::pair_slot* empty = nullptr;
      detail::pair_slot* victim = nullptr;
      std::uint64_t victim_key = 0, victim_tat = 0;
      std::uint64_t min_wait = retry_never;
      for (std::uint64_t gi : g) {
        detail::pair_slot* base = slots_ + gi * group_slots;
        for (std::uint32_t i = 0; i < group_slots; ++i) {
          const std::uint64_t k = detail::load_key(base[i]);
          if (k == h) return base + i;
          if (k == 0) {
            if (empty == nullptr) empty = base + i;
            continue;
          }
          const std::uint64_t t = detail::load_value(base[i]);
          if (t <= now) {
            if (victim == nullptr || t < victim_tat) {
              victim = base + i;
              victim_key = k;
              victim_tat = t;
            }
          } else {
            min_wait = std::min(min_wait, t - now);
          }
        }
      }
      detail::pair_slot* claimed = nullptr;
      // A new key may take an empty slot only while fewer than `capacity`
      // keys are held; past that it must evict an idle one.
      if (empty != nullptr &&
          keys_.fetch_add(1, std::memory_order_relaxed) < static_cast<std::int64_t>(capacity_)) {
        const std::uint64_t t = detail::load_value(*empty);
        if (detail::cas_pair(*empty, 0, t, h, 0)) {
          claimed = empty;
        } else {
          keys_.fetch_sub(1, std::memory_order_relaxed);
        }
      } else if (empty != nullptr && victim == nullptr) {
        // At capacity with nothing idle here: free an idle key nearby so the
        // empty candidate can be used, else report the nearest wait.
        keys_.fetch_sub(1, std::memory_order_relaxed);
        if (!free_idle_near(g[0], now, &min_wait)) {
          *wait_ns = min_wait;
          return nullptr;
        }
        continue;
      } else if (victim != nullptr) {
        if (empty != nullptr) keys_.fetch_sub(1, std::memory_order_relaxed);
        if (detail::cas_pair(*victim, victim_key, victim_tat, h, 0)) {
          stats_.add(st_evictions);
          claimed = victim;
        }
      } else {
        *wait_ns = min_wait;
        return nullptr;
      }
      if (claimed != nullptr) return dedupe(h, claimed);
    }
    *wait_ns = 0;  // heavy churn on these slots; try again at once
    return nullptr;
  }

  // Empties one idle slot among the `sweep_groups` groups after `start`
  // (the whole table when it is that small). Lowers *min_wait to the earliest
  // time a busy slot seen goes idle. Bounded work: the slow path of a new key
  // arriving at capacity.
  bool free_idle_near(std::uint64_t start, std::uint64_t now, std::uint64_t* min_wait) noexcept {
    for (int attempt = 0; attempt < 8; ++attempt) {
      detail::pair_slot* s = idle_near(start, now, min_wait);
      if (s == nullptr) return false;
      const std::uint64_t k = detail::load_key(*s);
      const std::uint64_t t = detail::load_value(*s);
      if (k != 0 && t <= now && detail::cas_pair(*s, k, t, 0, 0)) {
        keys_.fetch_sub(1, std::memory_order_relaxed);
        stats_.add(st_evictions);
        return true;
      }
    }
    return false;
  }

  // The first idle slot among the sweep groups after `start`, or nullptr.
  detail::pair_slot* idle_near(std::uint64_t start, std::uint64_t now,
                               std::uint64_t* min_wait) const noexcept {
    constexpr std::uint64_t sweep_groups = 16;
    const std::uint64_t n = std::min(sweep_groups, group_mask_ + 1);
    for (std::uint64_t j = 1; j <= n; ++j) {
      detail::pair_slot* base = slots_ + ((start + j) & group_mask_) * group_slots;
      for (std::uint32_t i = 0; i < group_slots; ++i) {
        if (detail::load_key(base[i]) == 0) continue;
        const std::uint64_t t = detail::load_value(base[i]);
        if (t <= now) return base + i;
        *min_wait = std::min(*min_wait, t - now);
      }
    }
    return nullptr;
  }

  // Two threads may claim different slots for the same new key; the first
  // in probe order wins and the other gives its untouched slot back.
  detail::pair_slot* dedupe(std::uint64_t h, detail::pair_slot* mine) noexcept {
    detail::pair_slot* first = find(h);
    if (first != nullptr && first != mine) {  // find() returns the first in probe order
      if (detail::cas_pair(*mine, h, 0, 0, 0)) keys_.fetch_sub(1, std::memory_order_relaxed);
      return first;
    }
    return mine;
  }

  // Read-only view of where h would live. Returns false when h is absent
  // and no candidate slot could take it now (table full, nothing idle).
  bool peek_slot(std::uint64_t h, std::uint64_t now, std::uint64_t* tat,
                 std::uint64_t* wait_ns) const noexcept {
    std::uint64_t g[2];
    groups(h, g);
    bool room = false;
    std::uint64_t min_wait = retry_never;
    for (std::uint64_t gi : g) {
      const detail::pair_slot* base = slots_ + gi * group_slots;
      for (std::uint32_t i = 0; i < group_slots; ++i) {
        const std::uint64_t k = detail::load_key(base[i]);
        const std::uint64_t t = detail::load_value(base[i]);
        if (k == h) {
          *tat = t;
          return true;
        }
        if (k == 0) {
          // An empty candidate is usable below capacity, or once acquire has
          // freed an idle key near it.
          room = room ||
                 keys_.load(std::memory_order_relaxed) < static_cast<std::int64_t>(capacity_) ||
                 idle_near(g[0], now, &min_wait) != nullptr;
        } else if (t <= now) {
          room = true;
        } else {
          min_wait = std::min(min_wait, t - now);
        }
      }
    }
    *tat = 0;
    *wait_ns = min_wait;
    return room;
  }

  std::uint64_t peek_tat(std::uint64_t h, std::uint32_t tier_index,
                         std::uint64_t now) const noexcept {
    std::uint64_t tat = 0, wait = 0;
    if (!peek_slot(h, now, &tat, &wait) && on_full_ == on_full_policy::overflow) {
      tat = overflow_[tier_index].tat.load(std::memory_order_acquire);
    }
    return tat;
  }

  // This limiter's own view (no parent, no shadow) at real time `real`.
  limit_decision peek_local(std::uint64_t h, std::uint32_t tier_index, std::uint32_t cost,
                            std::uint64_t real) const noexcept {
    const vclock c = clock();
    const std::uint64_t now = c.to_virtual(real);
    const gcra::tier_params& p = params(tier_index);
    if (cost > p.burst) return too_costly(peek_tat(h, tier_index, now), now, p);
    std::uint64_t tat = 0;
    std::uint64_t wait = 0;
    if (!peek_slot(h, now, &tat, &wait)) {
      if (on_full_ == on_full_policy::reject) {
        return real_waits({false, false, limit_reason::capacity, wait, 0}, c);
      }
      tat = overflow_[tier_index].tat.load(std::memory_order_acquire);
    }
    const gcra::step st = gcra::evaluate(tat, now, cost * p.t_ns, p);
    return real_waits({st.ok, false, st.ok ? limit_reason::none : limit_reason::rate,
                       st.retry_after_ns, st.remaining},
                      c);
  }

  // One GCRA step on a keyed slot. Returns false (and *d the capacity
  // rejection) when the key could not get a slot.
  [[gnu::always_inline]] bool step_key(std::uint64_t h, std::uint64_t cost_ns, std::uint64_t now,
                                       const gcra::tier_params& p, limit_decision* d) noexcept {
    detail::pair_slot* s = find(h);
    for (;;) {
      if (s == nullptr) {
        std::uint64_t wait = 0;
        s = insert(h, now, &wait);
        if (s == nullptr) {
          *d = {false, false, limit_reason::capacity, wait, 0};
          return false;
        }
      }
      const std::uint64_t tat = detail::load_value(*s);
      if (detail::load_key(*s) != h) {
        s = find(h);
        continue;
      }
      const gcra::step st = gcra::evaluate(tat, now, cost_ns, p);
      if (!st.ok) {
        *d = {false, false, limit_reason::rate, st.retry_after_ns, st.remaining};
        return true;
      }
      if (detail::cas_pair(*s, h, tat, h, st.new_tat)) {
        *d = {true, false, limit_reason::none, 0, st.remaining};
        return true;
      }
    }
  }

  static void step_word(std::atomic<std::uint64_t>& word, std::uint64_t cost_ns, std::uint64_t now,
                        const gcra::tier_params& p, limit_decision* d) noexcept {
    std::uint64_t tat = word.load(std::memory_order_acquire);
    for (;;) {
      const gcra::step st = gcra::evaluate(tat, now, cost_ns, p);
      if (!st.ok) {
        *d = {false, false, limit_reason::rate, st.retry_after_ns, st.remaining};
        return;
      }
      if (word.compare_exchange_weak(tat, st.new_tat, std::memory_order_acq_rel,
                                     std::memory_order_acquire)) {
        *d = {true, false, limit_reason::none, 0, st.remaining};
        return;
      }
    }
  }

  // Decides for key hash h in this limiter only. *overflow says whether the
  // shared overflow bucket was used.
  [[gnu::always_inline]] limit_decision decide_local(std::uint64_t h, std::uint32_t tier_index,
                                                     std::uint64_t cost_ns, std::uint64_t now,
                                                     const gcra::tier_params& p,
                                                     bool* overflow) noexcept {
    limit_decision d;
    *overflow = false;
    if (!step_key(h, cost_ns, now, p, &d) && on_full_ == on_full_policy::overflow) {
      *overflow = true;
      step_word(overflow_[tier_index].tat, cost_ns, now, p, &d);
    }
    return d;
  }

  // A limiter without a parent, no reservation: decide_levels at level 0
  // without the hierarchy's bookkeeping, so that it inlines into acquire.
  [[gnu::always_inline]] limit_decision decide_flat(std::uint64_t h, std::uint32_t tier_index,
                                                    std::uint32_t cost,
                                                    std::uint64_t now_ns) noexcept {
    if (tier_index >= tier_count_) return invalid();
    const vclock c = clock();
    const std::uint64_t now = c.to_virtual(std::min(now_ns, gcra::max_now));
    const gcra::tier_params& p = params(tier_index);
    limit_decision d;
    if (cost > p.burst) {
      d = too_costly(peek_tat(h, tier_index, now), now, p);
    } else {
      bool overflow = false;
      d = real_waits(decide_local(h, tier_index, cost * p.t_ns, now, p, &overflow), c);
    }
    d = with_shadow(d);
    count(d);
    return d;
  }

  limit_decision decide(std::uint64_t h, std::uint32_t tier_index, std::uint32_t cost,
                        std::uint64_t now_ns, reservation* res) noexcept {
    if (res != nullptr) *res = reservation{};
    if (tier_index >= tier_count_) return invalid();
    const std::uint64_t real = std::min(now_ns, gcra::max_now);
    std::uint32_t flags = 0;
    limit_decision d = decide_levels(h, tier_index, cost, real, 0, &flags);
    if (d.allowed && res != nullptr && cost != 0 && flags != 0) {
      res->key_hash = h;
      res->own_ns = cost * params(tier_index).t_ns;
      res->cost = cost;
      res->tier = tier_index;
      res->flags = res_valid | flags;
    }
    d = with_shadow(d);
    count(d);
    return d;
  }

  // Decides for key h here and then, if admitted, for the empty key of each
  // ancestor. A rejection at any level gives back what this level took.
  // Sets, in *flags, which levels took tokens and which used overflow.
  limit_decision decide_levels(std::uint64_t h, std::uint32_t tier_index, std::uint32_t cost,
                               std::uint64_t real, std::uint32_t level,
                               std::uint32_t* flags) noexcept {
    const vclock c = clock();
    const std::uint64_t now = c.to_virtual(real);
    const gcra::tier_params& p = params(tier_index);
    const std::uint64_t cost_ns = cost * p.t_ns;
    limit_decision d;
    bool overflow = false;
    if (cost > p.burst) {
      d = too_costly(peek_tat(h, tier_index, now), now, p);
    } else {
      d = real_waits(decide_local(h, tier_index, cost_ns, now, p, &overflow), c);
    }
    const bool took = d.allowed && cost != 0;
    if (level > 0) {  // an ancestor's own verdict, as it would count it
      d = with_shadow(d);
      count(d);
    }
    if (d.allowed && parent_ != nullptr && cost != 0 && level + 1 < max_depth) {
      const limit_decision pd = parent_->decide_levels(
          parent_->empty_key_hash_, parent_tier(tier_index), cost, real, level + 1, flags);
      if (!pd.allowed) {
        if (took) {
          if (overflow) {
            refund_word(overflow_[tier_index].tat, cost_ns, now);
          } else {
            refund_key(h, cost_ns, now);
          }
        }
        // After the refund the key holds exactly `cost` more whole tokens.
        return {false, false, limit_reason::parent, pd.retry_after_ns,
                d.remaining + (took ? cost : 0)};
      }
    }
    if (took) {
      *flags |= 1u << (res_took_shift + level);
      if (overflow) *flags |= 1u << (res_overflow_shift + level);
    }
    return d;
  }

  void count(const limit_decision& d) noexcept {
    stats_.add(d.allowed ? st_admitted : st_rejected);
    if (d.shadow) stats_.add(st_shadow_rejected);
    if (d.reason == limit_reason::capacity) stats_.add(st_capacity_rejected);
  }

  void refund_key(std::uint64_t h, std::uint64_t cost_ns, std::uint64_t now) noexcept {
    for (;;) {
      detail::pair_slot* s = find(h);
      if (s == nullptr) return;  // evicted: it was idle, so full already
      const std::uint64_t tat = detail::load_value(*s);
      if (detail::load_key(*s) != h) continue;
      const std::uint64_t next = gcra::refund(tat, now, cost_ns);
      if (next == tat || detail::cas_pair(*s, h, tat, h, next)) return;
    }
  }

  static void refund_word(std::atomic<std::uint64_t>& word, std::uint64_t cost_ns,
                          std::uint64_t now) noexcept {
    std::uint64_t tat = word.load(std::memory_order_acquire);
    for (;;) {
      const std::uint64_t next = gcra::refund(tat, now, cost_ns);
      if (next == tat || word.compare_exchange_weak(tat, next, std::memory_order_acq_rel)) return;
    }
  }

  std::vector<tier> tiers_;
  std::uint32_t tier_count_;
  on_full_policy on_full_;
  std::uint64_t capacity_;
  limiter* parent_;
  std::atomic<bool> shadow_;
  std::atomic<double> multiplier_;
  std::vector<gcra::tier_params> params_;
  std::unique_ptr<overflow_bucket[]> overflow_;
  std::atomic<std::uint64_t> seq_{0};
  std::atomic<std::uint64_t> t_base_{0};
  std::atomic<std::uint64_t> v_base_{0};
  std::atomic<std::uint64_t> m_fixed_{vclock::one};
  std::mutex writer_;
  std::uint64_t seed_ = 0;
  std::uint64_t empty_key_hash_ = 0;
  std::uint64_t slot_count_ = 0;
  std::uint64_t group_mask_ = 0;
  detail::pair_slot* slots_ = nullptr;
  alignas(64) std::atomic<std::int64_t> keys_{0};
  detail::striped_counters<st_count> stats_;
};

}  // namespace tollgate
