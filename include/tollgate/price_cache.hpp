// tollgate::price_cache - market data cached until the price moves.
//
// What it decides: whether a cached quote or reference price may still be
// used, and it evicts an entry the moment the market moves away from it.
//
// Model: an entry is keyed by instrument (a symbol or a numeric id as bytes,
// at most 32) and holds the price it was cached at, its own threshold, the
// feed sequence number it was cached at, and an opaque payload of at most
// max_payload bytes. The market-data feed calls on_price(key, price, seq,
// now) for every tick; the entry is evicted when
//   - price_move:   the move since caching exceeds the threshold: in basis
//                   points, |p - c| / c * 1e4 > threshold; in ticks,
//                   round(|p - c| / tick_size) > threshold. A move exactly at
//                   the threshold keeps the entry;
//   - sequence_gap: seq is not the next number after the last one seen for
//                   that instrument (the cache cannot know what it missed).
//                   Numbers are compared modulo 2^64, so the feed may wrap;
//                   a number seen already or less than 2^63 behind is a
//                   replay and is ignored (counted, nothing changes); one
//                   exactly 2^63 away is a gap;
//   - age:          the entry is older than max_age_ns (a safety net; get()
//                   reports such an entry as a miss, and the next on_price
//                   or expire() evicts it);
//   - capacity:     a put found its group of 8 slots full (see below);
//   - removed:      the host called remove().
// With vol_multiplier > 0 the threshold widens with realised volatility:
// each in-sequence tick updates an EWMA of squared log returns,
// var = (1 - a) var + a ln(p / p_prev)^2 (a = vol_alpha), and the effective
// threshold is max(threshold, vol_multiplier * sqrt(var) * 1e4) basis points
// (in tick units for tick thresholds: that many bps of the cached price,
// divided by the tick size).
//
// Capacity: slots are grouped by 8, and a key may live in either of two
// groups its hash selects (two-choice hashing: a new key goes to the group
// with more free slots, which keeps groups even, so a put evicts only when
// both are full). Then it evicts by CLOCK within the first group: a hit sets
// an entry's reference bit, the group's hand clears set bits as it passes
// and evicts the first entry without one. Slot count is the power of two at
// or above capacity * 8/7 (at least 8). A lookup reads one 8-byte word of
// fingerprints per group (a byte of each slot's key hash, compared all at
// once) and touches only the slots whose byte matches (1 in 255 for a slot
// of another key); writers also keep each slot's full 64-bit hash on a
// line of 8 tags per group.
//
// Concurrency: readers (get) take no lock and never wait for the feed: each
// slot is a seqlock, a reader copies the entry and retries if a writer was
// inside, so it never returns a torn entry. The seqlock uses no standalone
// fence (which ThreadSanitizer cannot model): a writer makes the version odd,
// then stores every field with release order; a reader loads every field
// with acquire order, so a reader that sees any new field also sees the odd
// version when it checks it again (on x86 both are plain moves). Writers
// (put, on_price, remove, expire) serialise per group with a spin flag held for a few dozen
// instructions; they may run on any number of threads. Every eviction is
// counted by reason and reported to the listener after the group is
// released, on the writer's thread.
//
// Hot paths (get, on_price) allocate nothing and make no system call.
#pragma once

#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "tollgate/detail/counters.hpp"
#include "tollgate/detail/hash.hpp"
#include "tollgate/detail/spin.hpp"

namespace tollgate {

enum class threshold_unit : std::uint32_t { bps = 0, ticks = 1 };

enum class evict_reason : std::int32_t {
  none = 0,
  price_move = 1,
  sequence_gap = 2,
  age = 3,
  capacity = 4,
  removed = 5,
};

enum class price_outcome : std::int32_t {
  kept = 0,        // in sequence, within the threshold: the entry stays
  evicted = 1,     // see the eviction reason
  not_cached = 2,  // no entry for the instrument: nothing to do
  replay = 3,      // a sequence number already seen: ignored
};

struct price_cache_options {
  std::size_t capacity = 4096;
  std::uint32_t max_payload = 64;  // bytes per entry, <= 1024
  threshold_unit unit = threshold_unit::bps;
  double threshold = 10;                       // default threshold: basis points or ticks
  double tick_size = 0.01;                     // default tick size (tick thresholds)
  std::uint64_t max_age_ns = 60'000'000'000;   // 0: no age limit
  double vol_multiplier = 0;                   // 0: fixed thresholds
  double vol_alpha = 0.05;                     // EWMA weight of the newest squared return
  std::uint64_t seed = 0x51ed270b27a1f00dULL;  // key hashing
};

// Per-entry overrides for put; NaN keeps the cache's default.
struct entry_limits {
  double threshold = std::numeric_limits<double>::quiet_NaN();
  double tick_size = std::numeric_limits<double>::quiet_NaN();
};

struct cached_price {
  double price = 0;            // the price the entry was cached at
  double threshold = 0;        // its threshold now (volatility included), in the cache's unit
  std::uint64_t feed_seq = 0;  // the last in-sequence number seen
  std::uint64_t cached_at_ns = 0;
  std::uint64_t age_ns = 0;       // now - cached_at, at the read
  std::uint32_t payload_len = 0;  // bytes of payload the entry holds
};

struct price_event {
  double new_price;  // on_price's price; the cached price for other reasons
  std::uint64_t feed_seq;
  std::uint64_t now_ns;
};

struct eviction_event {
  evict_reason reason;
  std::string_view key;  // valid during the callback only
  double cached_price;
  price_event cause;
};

struct price_cache_stats {
  std::uint64_t hits = 0, misses = 0, stale_misses = 0;  // stale: older than max_age
  std::uint64_t puts = 0, kept = 0, replays = 0, not_cached = 0;
  std::uint64_t evicted_price = 0, evicted_gap = 0, evicted_age = 0, evicted_capacity = 0,
                evicted_removed = 0;
  std::uint64_t entries = 0, slots = 0;
};

class price_cache {
 public:
  using listener_fn = void (*)(void* user, const eviction_event& ev);
  static constexpr std::size_t max_key = 32;
  static constexpr std::uint32_t max_payload_limit = 1024;
  static constexpr std::size_t max_capacity = std::size_t{1} << 26;
  static constexpr std::uint32_t group = 8;

  static absl::StatusOr<std::unique_ptr<price_cache>> create(const price_cache_options& o) {
    if (o.capacity == 0 || o.capacity > max_capacity) {
      return absl::OutOfRangeError("capacity must be 1..67108864 entries");
    }
    if (o.max_payload > max_payload_limit) {
      return absl::OutOfRangeError("max_payload must be <= 1024 bytes");
    }
    if (o.unit != threshold_unit::bps && o.unit != threshold_unit::ticks) {
      return absl::InvalidArgumentError("unit must be BPS or TICKS");
    }
    if (!valid_threshold(o.threshold)) {
      return absl::OutOfRangeError("threshold must be finite and >= 0");
    }
    if (!valid_tick(o.tick_size)) return absl::OutOfRangeError("tick_size must be finite and > 0");
    if (!(o.vol_multiplier >= 0) || !std::isfinite(o.vol_multiplier)) {
      return absl::OutOfRangeError("vol_multiplier must be finite and >= 0");
    }
    if (!(o.vol_alpha > 0) || !(o.vol_alpha <= 1)) {
      return absl::OutOfRangeError("vol_alpha must be in (0, 1]");
    }
    return std::unique_ptr<price_cache>(new price_cache(o));
  }

  price_cache(const price_cache&) = delete;
  price_cache& operator=(const price_cache&) = delete;

  const price_cache_options& options() const noexcept { return opts_; }

  // Installs fn(user, ev) for every eviction (nullptr removes it). Set it
  // before the feed starts; it is read without synchronisation by writers.
  void set_listener(listener_fn fn, void* user) noexcept {
    listener_user_.store(user, std::memory_order_release);
    listener_.store(fn, std::memory_order_release);
  }

  // Caches (or re-caches) an instrument at `price`, as of feed number
  // `feed_seq`, with `payload`. A re-cache replaces price, payload, sequence
  // and age and resets the volatility estimate.
  absl::Status put(std::string_view key, double price, std::uint64_t feed_seq,
                   std::string_view payload, std::uint64_t now_ns,
                   const entry_limits& limits = {}) noexcept {
    if (absl::Status st = check_key(key); !st.ok()) return st;
    if (!valid_price(price)) {
      return absl::InvalidArgumentError("price must be finite and > 0");
    }
    if (payload.size() > opts_.max_payload) {
      return absl::OutOfRangeError("payload longer than max_payload");
    }
    const double thr = std::isnan(limits.threshold) ? opts_.threshold : limits.threshold;
    const double tick = std::isnan(limits.tick_size) ? opts_.tick_size : limits.tick_size;
    if (!valid_threshold(thr)) return absl::OutOfRangeError("threshold must be finite and >= 0");
    if (!valid_tick(tick)) return absl::OutOfRangeError("tick_size must be finite and > 0");
    const std::uint64_t h = hash(key);
    const pair_t g = groups_of(h);
    eviction_event ev{evict_reason::none, {}, 0, {price, feed_seq, now_ns}};
    char victim_key[max_key];
    lock(g);
    std::size_t s = find(g, h, key);
    if (s == npos) {
      s = free_slot(g);
      if (s == npos) {
        s = clock_victim(g.first);
        ev.reason = evict_reason::capacity;
        ev.cached_price = load_d(slots_[s].price);
        ev.cause.new_price = ev.cached_price;  // not a tick: the victim's own values
        ev.cause.feed_seq = slots_[s].last_seq.load(std::memory_order_acquire);
        const std::size_t kl = slots_[s].key_len.load(std::memory_order_acquire);
        read_key(slots_[s], victim_key);
        ev.key = std::string_view(victim_key, kl);
      } else {
        live_.fetch_add(1, std::memory_order_relaxed);
      }
    }
    write_entry(s, h, key, price, feed_seq, payload, now_ns, thr, tick);
    unlock(g);
    stats_.add(st_puts);
    if (ev.reason != evict_reason::none) {
      stats_.add(st_evicted_capacity);
      notify(ev);
    }
    return absl::OkStatus();
  }

  // Looks up an instrument. On a hit fills `out` and copies the payload
  // into payload_out[0, cap) (out->payload_len says how long it is; a
  // shorter cap truncates). Returns false on a miss, including an entry
  // older than max_age_ns (counted as stale). Takes no lock and never blocks
  // the feed; meeting a writer inside the slot, it retries after the few
  // instructions of that write.
  bool get(std::string_view key, std::uint64_t now_ns, cached_price* out, void* payload_out,
           std::size_t cap) const noexcept {
    if (key.empty() || key.size() > max_key) {
      stats_.add(st_misses);
      return false;
    }
    const std::uint64_t h = hash(key);
    const pair_t gp = groups_of(h);
    for (std::size_t gi = gp.first;; gi = gp.second) {
      // The group's slots whose fingerprint byte equals h's: one load.
      for (std::uint64_t match = candidates(fps_[gi].load(std::memory_order_acquire), h);
           match != 0; match &= match - 1) {
        const std::size_t at = gi * group + static_cast<std::size_t>(__builtin_ctzll(match) / 8);
        const slot& sl = slots_[at];
        cached_price c;
        bool same_key = false;
        for (;;) {
          const std::uint64_t v1 = sl.version.load(std::memory_order_acquire);
          if (v1 & 1) {
            detail::cpu_pause();
            continue;
          }
          same_key = key_equals(sl, key);  // under the seqlock: no tag needed
          c.price = load_d(sl.price);
          c.threshold = effective_threshold(sl);
          c.feed_seq = sl.last_seq.load(std::memory_order_acquire);
          c.cached_at_ns = sl.cached_at.load(std::memory_order_acquire);
          c.payload_len = sl.payload_len.load(std::memory_order_acquire);
          if (payload_out != nullptr) {
            copy_payload(sl, static_cast<unsigned char*>(payload_out),
                         std::min<std::size_t>(cap, c.payload_len));
          }
          if (sl.version.load(std::memory_order_acquire) == v1) break;
          same_key = false;
        }
        if (!same_key) continue;
        c.age_ns = now_ns > c.cached_at_ns ? now_ns - c.cached_at_ns : 0;
        if (opts_.max_age_ns != 0 && c.age_ns > opts_.max_age_ns) {
          stats_.add(st_stale);
          return false;
        }
        if (!sl.referenced.load(std::memory_order_acquire)) {
          sl.referenced.store(true, std::memory_order_release);
        }
        if (out != nullptr) *out = c;
        stats_.add(st_hits);
        return true;
      }
      if (gi == gp.second) break;
    }
    stats_.add(st_misses);
    return false;
  }

  struct price_result {
    price_outcome outcome = price_outcome::not_cached;
    evict_reason reason = evict_reason::none;
  };

  // A market-data tick. Returns what it did to the instrument's entry, or
  // InvalidArgument for a price that is NaN, infinite, zero or negative
  // (nothing changes).
  absl::StatusOr<price_result> on_price(std::string_view key, double price, std::uint64_t feed_seq,
                                        std::uint64_t now_ns) noexcept {
    if (absl::Status st = check_key(key); !st.ok()) return st;
    if (!valid_price(price)) return absl::InvalidArgumentError("price must be finite and > 0");
    const std::uint64_t h = hash(key);
    const pair_t g = groups_of(h);
    price_result r;
    eviction_event ev{evict_reason::none, key, 0, {price, feed_seq, now_ns}};
    // An existing entry needs only the lock of the group holding it (both
    // groups are locked only to insert): find it without a lock, lock its
    // group, and check it is still there.
    // Not found: not cached (a put racing with this tick comes after it),
    // and ticks for instruments nobody cached take no lock at all.
    std::size_t s = find(g, h, key);
    if (s == npos) {
      stats_.add(st_not_cached);
      return r;
    }
    pair_t held{s / group, s / group};
    lock(held);
    if (tag_at(s).load(std::memory_order_acquire) != h || !key_equals(slots_[s], key)) {
      // Moved or removed since the scan: search again holding both groups.
      unlock(held);
      held = g;
      lock(held);
      s = find(g, h, key);
      if (s == npos) {
        unlock(held);
        stats_.add(st_not_cached);
        return r;
      }
    }
    slot& sl = slots_[s];
    const double cached = load_d(sl.price);
    const std::uint64_t last = sl.last_seq.load(std::memory_order_acquire);
    const std::uint64_t delta = feed_seq - last;  // modulo 2^64: wrap is in order
    if (delta == 0 || delta > (std::uint64_t{1} << 63)) {
      unlock(held);
      stats_.add(st_replays);
      r.outcome = price_outcome::replay;
      return r;
    }
    const std::uint64_t cached_at = sl.cached_at.load(std::memory_order_acquire);
    if (delta != 1) {
      r.reason = evict_reason::sequence_gap;
    } else if (opts_.max_age_ns != 0 && now_ns > cached_at &&
               now_ns - cached_at > opts_.max_age_ns) {
      r.reason = evict_reason::age;
    } else if (moved_beyond(sl, cached, price)) {
      r.reason = evict_reason::price_move;
    }
    if (r.reason != evict_reason::none) {
      ev.reason = r.reason;
      ev.cached_price = cached;
      clear_slot(s);
      live_.fetch_sub(1, std::memory_order_relaxed);
      unlock(held);
      r.outcome = price_outcome::evicted;
      stats_.add(reason_stat(r.reason));
      notify(ev);
      return r;
    }
    // In sequence and within the threshold: advance the sequence and the
    // volatility estimate.
    const std::uint64_t v = sl.version.load(std::memory_order_acquire);
    sl.version.store(v + 1, std::memory_order_release);
    sl.last_seq.store(feed_seq, std::memory_order_release);
    if (opts_.vol_multiplier > 0) {
      const double prev = load_d(sl.last_price);
      const double ret = std::log(price / prev);
      const double var = load_d(sl.var);
      store_d(sl.var, (1 - opts_.vol_alpha) * var + opts_.vol_alpha * ret * ret);
      store_d(sl.last_price, price);
    }
    sl.version.store(v + 2, std::memory_order_release);
    unlock(held);
    stats_.add(st_kept);
    r.outcome = price_outcome::kept;
    return r;
  }

  // Evicts an instrument (reason removed). Returns false if it was not cached.
  bool remove(std::string_view key, std::uint64_t now_ns) noexcept {
    if (key.empty() || key.size() > max_key) return false;
    const std::uint64_t h = hash(key);
    const pair_t g = groups_of(h);
    lock(g);
    const std::size_t s = find(g, h, key);
    if (s == npos) {
      unlock(g);
      return false;
    }
    eviction_event ev{evict_reason::removed, key, load_d(slots_[s].price), {0, 0, now_ns}};
    ev.cause.new_price = ev.cached_price;
    ev.cause.feed_seq = slots_[s].last_seq.load(std::memory_order_acquire);
    clear_slot(s);
    live_.fetch_sub(1, std::memory_order_relaxed);
    unlock(g);
    stats_.add(st_evicted_removed);
    notify(ev);
    return true;
  }

  // Evicts every entry older than max_age_ns (reason age); returns how many.
  // A host without a steady feed calls it from its loop. O(slots).
  std::size_t expire(std::uint64_t now_ns) noexcept {
    if (opts_.max_age_ns == 0) return 0;
    std::size_t n = 0;
    char k[max_key];
    for (std::size_t at = 0; at < groups_ * group; ++at) {
      const std::uint64_t h = tag_at(at).load(std::memory_order_acquire);
      if (h == 0) continue;
      const pair_t g = groups_of(h);
      lock(g);
      slot& sl = slots_[at];
      const std::uint64_t cached_at = sl.cached_at.load(std::memory_order_acquire);
      if (tag_at(at).load(std::memory_order_acquire) != h || !(now_ns > cached_at) ||
          now_ns - cached_at <= opts_.max_age_ns) {
        unlock(g);
        continue;
      }
      const std::size_t kl = sl.key_len.load(std::memory_order_acquire);
      read_key(sl, k);
      eviction_event ev{evict_reason::age,
                        std::string_view(k, kl),
                        load_d(sl.price),
                        {load_d(sl.price), sl.last_seq.load(std::memory_order_acquire), now_ns}};
      clear_slot(at);
      live_.fetch_sub(1, std::memory_order_relaxed);
      unlock(g);
      stats_.add(st_evicted_age);
      notify(ev);
      ++n;
    }
    return n;
  }

  price_cache_stats stats() const noexcept {
    price_cache_stats s;
    s.hits = stats_.sum(st_hits);
    s.misses = stats_.sum(st_misses);
    s.stale_misses = stats_.sum(st_stale);
    s.puts = stats_.sum(st_puts);
    s.kept = stats_.sum(st_kept);
    s.replays = stats_.sum(st_replays);
    s.not_cached = stats_.sum(st_not_cached);
    s.evicted_price = stats_.sum(st_evicted_price);
    s.evicted_gap = stats_.sum(st_evicted_gap);
    s.evicted_age = stats_.sum(st_evicted_age);
    s.evicted_capacity = stats_.sum(st_evicted_capacity);
    s.evicted_removed = stats_.sum(st_evicted_removed);
    s.entries = live_.load(std::memory_order_acquire);
    s.slots = groups_ * group;
    return s;
  }

 private:
  static constexpr std::size_t npos = ~std::size_t{0};
  enum stat : std::size_t {
    st_hits,
    st_misses,
    st_stale,
    st_puts,
    st_kept,
    st_replays,
    st_not_cached,
    st_evicted_price,
    st_evicted_gap,
    st_evicted_age,
    st_evicted_capacity,
    st_evicted_removed,
    st_count
  };

  // Every field is an atomic read under the slot's seqlock (acquire), so a
  // reader racing a writer is well defined and the version check discards
  // what it read.
  struct alignas(64) slot {
    std::atomic<std::uint64_t> version{0};  // odd: a writer is inside
    std::atomic<std::uint64_t> key[max_key / 8] = {};
    std::atomic<std::uint32_t> key_len{0};
    std::atomic<std::uint32_t> payload_len{0};
    std::atomic<std::uint64_t> price{0};  // double bits
    std::atomic<std::uint64_t> threshold{0};
    std::atomic<std::uint64_t> tick{0};
    std::atomic<std::uint64_t> last_seq{0};
    std::atomic<std::uint64_t> cached_at{0};
    std::atomic<std::uint64_t> last_price{0};
    std::atomic<std::uint64_t> var{0};
    mutable std::atomic<bool> referenced{false};  // CLOCK bit, outside the seqlock
  };  // The key hashes of a group's 8 slots (0: empty), on one cache line, so
  // a lookup reads one line per group before it touches a slot.
  struct alignas(64) tag_line {
    std::atomic<std::uint64_t> tag[group] = {};
  };

  struct alignas(64) group_state {
    std::atomic<bool> writer{false};
    std::uint32_t hand = 0;  // CLOCK hand, under writer
  };

  struct pair_t {
    std::size_t first, second;  // second == first when the table has one group
  };

  explicit price_cache(const price_cache_options& o) : opts_(o) {
    const std::size_t slots =
        std::max<std::size_t>(group, detail::next_pow2(o.capacity + (o.capacity + 6) / 7));
    groups_ = slots / group;
    mask_ = groups_ - 1;
    words_ = (o.max_payload + 7) / 8;
    slots_ = std::make_unique<slot[]>(slots);
    lines_ = std::make_unique<tag_line[]>(groups_);
    fps_ = std::make_unique<std::atomic<std::uint64_t>[]>(groups_);
    groups_state_ = std::make_unique<group_state[]>(groups_);
    payload_ =
        std::make_unique<std::atomic<std::uint64_t>[]>(slots * std::max<std::size_t>(words_, 1));
  }

  static bool valid_price(double p) noexcept { return std::isfinite(p) && p > 0; }
  static bool valid_threshold(double t) noexcept { return std::isfinite(t) && t >= 0; }
  static bool valid_tick(double t) noexcept { return std::isfinite(t) && t > 0; }

  static absl::Status check_key(std::string_view key) {
    if (key.empty() || key.size() > max_key) {
      return absl::InvalidArgumentError("an instrument key is 1..32 bytes");
    }
    return absl::OkStatus();
  }

  static double load_d(const std::atomic<std::uint64_t>& a) noexcept {
    return std::bit_cast<double>(a.load(std::memory_order_acquire));
  }
  static void store_d(std::atomic<std::uint64_t>& a, double v) noexcept {
    a.store(std::bit_cast<std::uint64_t>(v), std::memory_order_release);
  }

  std::uint64_t hash(std::string_view key) const noexcept {
    return detail::hash_bytes(key.data(), key.size(), opts_.seed);  // never 0
  }
  std::atomic<std::uint64_t>& tag_at(std::size_t at) const noexcept {
    return lines_[at / group].tag[at % group];
  }

  // One byte of the hash, never 0 (0 marks an empty slot).
  static std::uint64_t fingerprint(std::uint64_t h) noexcept {
    const std::uint64_t f = h >> 56;
    return f | static_cast<std::uint64_t>(f == 0);
  }
  // Bit 8i+7 set for every slot i whose fingerprint byte may equal h's: the
  // zero-byte test on word ^ broadcast(fp) never misses a match (a borrow can
  // add a false candidate above a true one; the key check rejects it).
  static std::uint64_t candidates(std::uint64_t word, std::uint64_t h) noexcept {
    constexpr std::uint64_t lo = 0x0101010101010101ULL;
    constexpr std::uint64_t hi = 0x8080808080808080ULL;
    const std::uint64_t x = word ^ (fingerprint(h) * lo);
    return (x - lo) & ~x & hi;
  }
  // Under the group's writer flag.
  void set_fingerprint(std::size_t at, std::uint64_t f) noexcept {
    std::atomic<std::uint64_t>& w = fps_[at / group];
    const unsigned shift = static_cast<unsigned>(8 * (at % group));
    w.store((w.load(std::memory_order_relaxed) & ~(std::uint64_t{0xff} << shift)) | (f << shift),
            std::memory_order_release);
  }

  // Two candidate groups from independent bits of the hash.
  pair_t groups_of(std::uint64_t h) const noexcept {
    const std::size_t a = (h >> 7) & mask_;
    std::size_t b = ((h >> 35) ^ (h << 3)) & mask_;
    if (b == a) b = a ^ 1;
    if (groups_ == 1) b = a;
    return {a, b};
  }

  void lock_one(std::size_t g) noexcept { detail::spin_lock(groups_state_[g].writer); }
  void unlock_one(std::size_t g) noexcept { detail::spin_unlock(groups_state_[g].writer); }
  // Both groups, in index order so two writers cannot deadlock.
  void lock(pair_t g) noexcept {
    lock_one(std::min(g.first, g.second));
    if (g.second != g.first) lock_one(std::max(g.first, g.second));
  }
  void unlock(pair_t g) noexcept {
    if (g.second != g.first) unlock_one(std::max(g.first, g.second));
    unlock_one(std::min(g.first, g.second));
  }

  static void pack_key(std::string_view key, std::uint64_t (&w)[max_key / 8]) noexcept {
    unsigned char buf[max_key] = {};
    std::memcpy(buf, key.data(), key.size());
    for (std::size_t i = 0; i < max_key / 8; ++i) std::memcpy(&w[i], buf + 8 * i, 8);
  }
  // Word i of a key as pack_key stores it (zero padded), without a buffer;
  // i < ceil(size / 8). Short tails are read with overlapping loads inside
  // the key, no byte loop.
  static std::uint64_t key_word(std::string_view key, std::size_t i) noexcept {
    const auto* p = reinterpret_cast<const unsigned char*>(key.data()) + 8 * i;
    const std::size_t n = key.size() - 8 * i;
    if (n >= 8) {
      std::uint64_t w;
      std::memcpy(&w, p, 8);
      return w;
    }
    if (n >= 4) {
      std::uint32_t lo, hi;
      std::memcpy(&lo, p, 4);
      std::memcpy(&hi, p + n - 4, 4);  // its top n - 4 bytes are p[4, n)
      return lo | ((std::uint64_t{hi} >> (8 * (8 - n))) << 32);
    }
    // 1..3 bytes: p[0], p[n / 2] and p[n - 1] cover them (OR of a byte
    // with itself at the same place changes nothing).
    return std::uint64_t{p[0]} | (std::uint64_t{p[n / 2]} << (8 * (n / 2))) |
           (std::uint64_t{p[n - 1]} << (8 * (n - 1)));
  }
  static bool key_equals(const slot& sl, std::string_view key) noexcept {
    if (sl.key_len.load(std::memory_order_acquire) != key.size()) return false;
    // Keys are 1..32 bytes: the first word always exists; most symbols fit in it.
    if (sl.key[0].load(std::memory_order_acquire) != key_word(key, 0)) return false;
    for (std::size_t i = 1; 8 * i < key.size(); ++i) {
      if (sl.key[i].load(std::memory_order_acquire) != key_word(key, i)) return false;
    }
    return true;
  }
  static void read_key(const slot& sl, char* out) noexcept {
    unsigned char buf[max_key];
    for (std::size_t i = 0; i < max_key / 8; ++i) {
      const std::uint64_t w = sl.key[i].load(std::memory_order_acquire);
      std::memcpy(buf + 8 * i, &w, 8);
    }
    std::memcpy(out, buf, max_key);
  }

  // Under the groups' writer flags.
  std::size_t find(pair_t g, std::uint64_t h, std::string_view key) const noexcept {
    for (std::size_t gi : {g.first, g.second}) {
      for (std::uint64_t match = candidates(fps_[gi].load(std::memory_order_acquire), h);
           match != 0; match &= match - 1) {
        const std::size_t at = gi * group + static_cast<std::size_t>(__builtin_ctzll(match) / 8);
        if (tag_at(at).load(std::memory_order_acquire) == h && key_equals(slots_[at], key)) {
          return at;
        }
      }
      if (g.second == g.first) break;
    }
    return npos;
  }
  // A free slot in the group with more of them.
  std::size_t free_slot(pair_t g) const noexcept {
    std::size_t best = npos;
    std::size_t best_free = 0;
    for (std::size_t gi : {g.first, g.second}) {
      std::size_t free = 0, first = npos;
      for (std::size_t i = 0; i < group; ++i) {
        if (tag_at(gi * group + i).load(std::memory_order_acquire) == 0) {
          if (first == npos) first = gi * group + i;
          ++free;
        }
      }
      if (free > best_free) {
        best_free = free;
        best = first;
      }
      if (g.second == g.first) break;
    }
    return best;
  }

  // CLOCK within a full group: clear reference bits as the hand passes,
  // take the first entry without one (at most two turns).
  std::size_t clock_victim(std::size_t g) noexcept {
    group_state& gs = groups_state_[g];
    for (;;) {
      slot& sl = slots_[g * group + gs.hand];
      const std::size_t at = g * group + gs.hand;
      gs.hand = (gs.hand + 1) % group;
      if (!sl.referenced.load(std::memory_order_acquire)) return at;
      sl.referenced.store(false, std::memory_order_release);
    }
  }

  std::atomic<std::uint64_t>* payload_of(const slot& sl) const noexcept {
    return payload_.get() + static_cast<std::size_t>(&sl - slots_.get()) * words_;
  }
  void copy_payload(const slot& sl, unsigned char* out, std::size_t n) const noexcept {
    const std::atomic<std::uint64_t>* p = payload_of(sl);
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
      const std::uint64_t w = p[i / 8].load(std::memory_order_acquire);
      std::memcpy(out + i, &w, 8);
    }
    if (i < n) {
      const std::uint64_t w = p[i / 8].load(std::memory_order_acquire);
      for (std::size_t k = 0; k < n - i; ++k) out[i + k] = static_cast<unsigned char>(w >> (8 * k));
    }
  }

  void write_entry(std::size_t at, std::uint64_t h, std::string_view key, double price,
                   std::uint64_t seq, std::string_view payload, std::uint64_t now, double thr,
                   double tick) noexcept {
    slot& sl = slots_[at];
    const std::uint64_t v = sl.version.load(std::memory_order_acquire);
    sl.version.store(v + 1, std::memory_order_release);
    std::uint64_t w[max_key / 8];
    pack_key(key, w);
    for (std::size_t i = 0; i < max_key / 8; ++i) sl.key[i].store(w[i], std::memory_order_release);
    sl.key_len.store(static_cast<std::uint32_t>(key.size()), std::memory_order_release);
    store_d(sl.price, price);
    store_d(sl.threshold, thr);
    store_d(sl.tick, tick);
    sl.last_seq.store(seq, std::memory_order_release);
    sl.cached_at.store(now, std::memory_order_release);
    store_d(sl.last_price, price);
    store_d(sl.var, 0);
    std::atomic<std::uint64_t>* p = payload_of(sl);
    for (std::size_t i = 0; i < payload.size(); i += 8) {
      std::uint64_t word = 0;
      std::memcpy(&word, payload.data() + i, std::min<std::size_t>(8, payload.size() - i));
      p[i / 8].store(word, std::memory_order_release);
    }
    sl.payload_len.store(static_cast<std::uint32_t>(payload.size()), std::memory_order_release);
    // A re-cache keeps the reference bit: the instrument is still in use.
    if (tag_at(at).load(std::memory_order_acquire) != h) {
      sl.referenced.store(false, std::memory_order_release);
    }
    tag_at(at).store(h, std::memory_order_release);
    set_fingerprint(at, fingerprint(h));
    sl.version.store(v + 2, std::memory_order_release);
  }
  void clear_slot(std::size_t at) noexcept {
    slot& sl = slots_[at];
    const std::uint64_t v = sl.version.load(std::memory_order_acquire);
    sl.version.store(v + 1, std::memory_order_release);
    tag_at(at).store(0, std::memory_order_release);
    set_fingerprint(at, 0);
    sl.key_len.store(0, std::memory_order_release);
    sl.version.store(v + 2, std::memory_order_release);
  }

  // The threshold now, in the cache's unit, volatility included.
  double effective_threshold(const slot& sl) const noexcept {
    const double base = load_d(sl.threshold);
    if (opts_.vol_multiplier <= 0) return base;
    const double vol_bps = opts_.vol_multiplier * std::sqrt(load_d(sl.var)) * 1e4;
    if (opts_.unit == threshold_unit::bps) return std::max(base, vol_bps);
    return std::max(base, vol_bps * 1e-4 * load_d(sl.price) / load_d(sl.tick));
  }

  bool moved_beyond(const slot& sl, double cached, double price) const noexcept {
    const double thr = effective_threshold(sl);
    const double move = std::fabs(price - cached);
    if (opts_.unit == threshold_unit::ticks) {
      // Whole ticks: prices on the tick grid give exact counts.
      // std::round: halves away from zero, as documented (2.5 ticks is 3).
      return std::round(move / load_d(sl.tick)) > thr;
    }
    // A relative tolerance of 1e-9 keeps a move of exactly `thr` bps,
    // which binary floating point may compute a hair above.
    return move / cached * 1e4 > thr * (1 + 1e-9);
  }

  static stat reason_stat(evict_reason r) noexcept {
    switch (r) {
      case evict_reason::price_move:
        return st_evicted_price;
      case evict_reason::sequence_gap:
        return st_evicted_gap;
      case evict_reason::age:
        return st_evicted_age;
      case evict_reason::capacity:
        return st_evicted_capacity;
      default:
        return st_evicted_removed;
    }
  }

  void notify(const eviction_event& ev) const noexcept {
    if (listener_fn fn = listener_.load(std::memory_order_acquire)) {
      fn(listener_user_.load(std::memory_order_acquire), ev);
    }
  }

  price_cache_options opts_;
  std::size_t groups_ = 0;
  std::size_t mask_ = 0;
  std::size_t words_ = 0;
  std::unique_ptr<slot[]> slots_;
  std::unique_ptr<tag_line[]> lines_;
  // Per group, byte i is slot i's fingerprint (0: empty); set with the tag
  // under the group's writer flag and inside the slot's seqlock. Readers
  // (get) find candidates with one load and confirm the key in the slot.
  std::unique_ptr<std::atomic<std::uint64_t>[]> fps_;
  std::unique_ptr<group_state[]> groups_state_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> payload_;
  std::atomic<std::uint64_t> live_{0};
  std::atomic<listener_fn> listener_{nullptr};
  std::atomic<void*> listener_user_{nullptr};
  mutable detail::striped_counters<st_count> stats_;
};

}  // namespace tollgate
