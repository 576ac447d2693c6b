// tollgate::breaker - circuit breaker with a bulkhead, per upstream or venue.
//
// What it decides: whether a call to an upstream may start now, from how the
// recent calls to it ended.
//
// Model: outcomes (success, failure, ignored; with latency) feed a sliding
// window, either the last N calls (count window) or the last N buckets of a
// fixed width (time window). Once the window holds at least minimum_calls
// calls and the failure rate or the slow-call rate (latency >= slow_call_ns)
// reaches its threshold, the breaker opens. An open breaker rejects until its
// open duration has passed (open_ns, times backoff_multiplier for each
// consecutive opening, capped at max_open_ns); the next acquire then moves
// it to half-open, which lets exactly half_open_probes calls through. When
// all probes have ended, their failure and slow rates close the breaker
// (window and backoff reset) or open it again. A half-open breaker whose
// probes have not all ended within max_half_open_ns opens again. Forced
// states override the machine: forced_open rejects everything (kill switch),
// forced_closed admits everything and keeps the window, disabled admits
// everything and records nothing, metrics_only admits everything, keeps the
// window and counts the trips it did not take.
//
// The bulkhead bounds calls in flight: a permit holds a slot until its
// outcome is recorded.
//
// Invariants:
//   - state, generation and deadline change together in one 16-byte CAS, so
//     every transition happens once, and an outcome reported for a permit of
//     an earlier generation never moves the current state;
//   - time that stands still or steps backwards never ends an open period
//     early (now is compared with an absolute deadline);
//   - every admitted permit is recorded at most once by contract; recording a
//     rejected permit is a no-op.
//
// Thread-safety: acquire and record are lock-free and allocation-free; all
// methods may be called from any number of threads at once. Listeners are
// called synchronously on the thread that made the change.
#pragma once

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "tollgate/detail/atomic128.hpp"
#include "tollgate/detail/counters.hpp"

namespace tollgate {

enum class breaker_state : std::int32_t {
  closed = 0,
  open = 1,
  half_open = 2,
  forced_open = 3,
  forced_closed = 4,
  disabled = 5,
  metrics_only = 6,
};

enum class window_type : std::uint32_t { count = 0, time = 1 };
enum class outcome : std::int32_t { success = 0, failure = 1, ignored = 2 };
enum class breaker_reason : std::int32_t { none = 0, open = 1, forced_open = 2, bulkhead_full = 3 };

struct breaker_options {
  window_type window = window_type::count;
  std::uint32_t window_size = 100;
  std::uint32_t minimum_calls = 20;
  std::uint64_t bucket_ns = 1'000'000'000;
  double failure_rate_threshold = 50.0;
  double slow_rate_threshold = 100.0;
  std::uint64_t slow_call_ns = 1'000'000'000;
  std::uint64_t open_ns = 1'000'000'000;
  double backoff_multiplier = 1.0;
  std::uint64_t max_open_ns = 60'000'000'000;
  std::uint32_t half_open_probes = 5;
  std::uint32_t max_in_flight = 0;     // 0: unbounded
  std::uint64_t max_half_open_ns = 0;  // 0: unbounded
};

struct permit {
  std::uint64_t token = 0;
  bool allowed = false;
  breaker_reason reason = breaker_reason::none;
  breaker_state state = breaker_state::closed;
  std::uint64_t retry_after_ns = 0;
};

struct breaker_event {
  breaker_state from;
  breaker_state to;
  std::uint64_t now_ns;
  double failure_rate;  // percent, -1 when not measured
  double slow_rate;
  std::uint64_t open_ns;  // chosen duration when `to` is open
};

struct breaker_stats {
  std::uint64_t admitted = 0;
  std::uint64_t rejected = 0;
  std::uint64_t bulkhead_rejected = 0;
  std::uint64_t successes = 0;
  std::uint64_t failures = 0;
  std::uint64_t slow_calls = 0;
  std::uint64_t ignored = 0;
  std::uint64_t transitions = 0;
  std::uint64_t would_open = 0;
  std::uint32_t in_flight = 0;
  breaker_state state = breaker_state::closed;
  double failure_rate = -1;
  double slow_rate = -1;
  std::uint64_t window_calls = 0;
};

// A bound on calls in flight. max 0 means unbounded.
class bulkhead {
 public:
  explicit bulkhead(std::uint32_t max) noexcept : max_(max) {}

  bool try_enter() noexcept {
    std::uint32_t cur = in_flight_.load(std::memory_order_relaxed);
    do {
      if (max_ != 0 && cur >= max_) return false;
    } while (!in_flight_.compare_exchange_weak(cur, cur + 1, std::memory_order_acquire,
                                               std::memory_order_relaxed));
    return true;
  }

  void leave() noexcept {
    std::uint32_t cur = in_flight_.load(std::memory_order_relaxed);
    while (cur != 0 && !in_flight_.compare_exchange_weak(cur, cur - 1, std::memory_order_release,
                                                         std::memory_order_relaxed)) {
    }
  }

  std::uint32_t in_flight() const noexcept { return in_flight_.load(std::memory_order_relaxed); }
  std::uint32_t max() const noexcept { return max_; }

 private:
  std::uint32_t max_;
  std::atomic<std::uint32_t> in_flight_{0};
};

namespace detail {

// a mod d for any 64-bit a and 1 <= d < 2^32, by multiplication (Lemire's
// "faster remainder by direct computation").
class fast_mod {
 public:
  explicit fast_mod(std::uint32_t d) noexcept : d_(d) { m_ = ~static_cast<u128>(0) / d + 1; }
  std::uint64_t operator()(std::uint64_t a) const noexcept {
    const u128 low = m_ * a;
    const auto lo = static_cast<std::uint64_t>(low);
    const auto hi = static_cast<std::uint64_t>(low >> 64);
    const u128 t = static_cast<u128>(lo) * d_;
    const u128 u = static_cast<u128>(hi) * d_ + (t >> 64);
    return static_cast<std::uint64_t>(u >> 64);
  }

 private:
  std::uint64_t d_;
  u128 m_;
};

}  // namespace detail

class breaker {
 public:
  using event_fn = void (*)(void* user, const breaker_event& ev);

  static constexpr std::uint32_t max_count_window = 65536;
  static constexpr std::uint32_t max_time_buckets = 256;
  static constexpr std::uint32_t max_probes = 1024;
  static constexpr std::uint64_t max_duration_ns = std::uint64_t{1} << 62;

  static absl::StatusOr<std::unique_ptr<breaker>> create(const breaker_options& o) {
    if (o.window != window_type::count && o.window != window_type::time) {
      return absl::InvalidArgumentError("window_type must be COUNT or TIME");
    }
    if (o.window == window_type::count &&
        (o.window_size == 0 || o.window_size > max_count_window)) {
      return absl::OutOfRangeError("window_size must be 1..65536 calls for a count window");
    }
    if (o.window == window_type::time && (o.window_size == 0 || o.window_size > max_time_buckets)) {
      return absl::OutOfRangeError("window_size must be 1..256 buckets for a time window");
    }
    if (o.window == window_type::time && (o.bucket_ns == 0 || o.bucket_ns > max_duration_ns)) {
      return absl::OutOfRangeError("bucket_ns must be 1..2^62");
    }
    if (o.minimum_calls == 0) return absl::InvalidArgumentError("minimum_calls must be >= 1");
    if (o.window == window_type::count && o.minimum_calls > o.window_size) {
      return absl::InvalidArgumentError(
          "minimum_calls exceeds window_size: the breaker could never open");
    }
    if (!(o.failure_rate_threshold > 0.0) || !(o.failure_rate_threshold <= 100.0)) {
      return absl::OutOfRangeError("failure_rate_threshold must be in (0, 100]");
    }
    if (!(o.slow_rate_threshold > 0.0) || !(o.slow_rate_threshold <= 100.0)) {
      return absl::OutOfRangeError("slow_rate_threshold must be in (0, 100]");
    }
    if (o.slow_call_ns == 0 || o.slow_call_ns > max_duration_ns) {
      return absl::OutOfRangeError("slow_call_ns must be 1..2^62");
    }
    if (o.open_ns == 0 || o.open_ns > max_duration_ns) {
      return absl::OutOfRangeError("open_ns must be 1..2^62");
    }
    if (o.max_open_ns < o.open_ns || o.max_open_ns > max_duration_ns) {
      return absl::OutOfRangeError("max_open_ns must be >= open_ns and <= 2^62");
    }
    if (!(o.backoff_multiplier >= 1.0) || !(o.backoff_multiplier <= 1000.0)) {
      return absl::OutOfRangeError("backoff_multiplier must be in [1, 1000]");
    }
    if (o.half_open_probes == 0 || o.half_open_probes > max_probes) {
      return absl::OutOfRangeError("half_open_probes must be 1..1024");
    }
    if (o.max_half_open_ns > max_duration_ns) {
      return absl::OutOfRangeError("max_half_open_ns must be <= 2^62");
    }
    return std::unique_ptr<breaker>(new breaker(o));
  }

  breaker(const breaker&) = delete;
  breaker& operator=(const breaker&) = delete;

  permit acquire(std::uint64_t now_ns) noexcept {
    const std::uint64_t now = std::min(now_ns, max_duration_ns);
    for (;;) {
      const std::uint64_t w = detail::load_key(ctl_);
      const std::uint64_t deadline = detail::load_value(ctl_);
      const breaker_state s = state_of(w);
      std::uint64_t flags = tok_admitted;
      switch (s) {
        case breaker_state::closed:
        case breaker_state::forced_closed:
        case breaker_state::metrics_only:
          break;  // a plain permit: its outcome feeds the window
        case breaker_state::disabled:
          flags |= tok_untracked;
          break;
        case breaker_state::forced_open:
          return reject(breaker_reason::forced_open, s, ~std::uint64_t{0});
        case breaker_state::open:
          if (now < deadline) return reject(breaker_reason::open, s, deadline - now);
          enter(w, deadline, breaker_state::half_open, level_of(w),
                opts_.max_half_open_ns ? now + opts_.max_half_open_ns : 0, now, -1, -1, 0);
          continue;
        case breaker_state::half_open:
          if (deadline != 0 && now >= deadline) {
            open_from(w, deadline, now, -1, -1);
            continue;
          }
          if (!claim_probe(gen_of(w))) {
            return reject(breaker_reason::open, s, deadline != 0 ? deadline - now : opts_.open_ns);
          }
          flags |= tok_probe;
          break;
      }
      if (max_in_flight_ != 0) {
        if (!bulk_.try_enter()) {
          if (flags & tok_probe) release_probe(gen_of(w));
          stats_.add(st_bulkhead_rejected);
          return reject(breaker_reason::bulkhead_full, s, 0);
        }
        flags |= tok_bulkhead;
      }
      stats_.add(st_admitted);
      return permit{(gen_of(w) << tok_gen_shift) | flags, true, breaker_reason::none, s, 0};
    }
  }

  void record(const permit& p, outcome o, std::uint64_t latency_ns, std::uint64_t now_ns) noexcept {
    const std::uint64_t t = p.token;
    if ((t & tok_admitted) == 0) return;
    if (t & tok_bulkhead) bulk_.leave();
    const std::uint64_t gen = t >> tok_gen_shift;
    if (o == outcome::ignored) {
      stats_.add(st_ignored);
      if (t & tok_probe) release_probe(gen);
      return;
    }
    const bool fail = o == outcome::failure;
    const bool slow = latency_ns >= opts_.slow_call_ns;
    stats_.add(fail ? st_failures : st_successes);
    if (slow) stats_.add(st_slow);
    if (t & tok_untracked) return;
    const std::uint64_t now = std::min(now_ns, max_duration_ns);
    if (t & tok_probe) {
      record_probe(gen, fail, slow, now);
      return;
    }
    const std::uint64_t w = detail::load_key(ctl_);
    if (gen_of(w) != gen) return;  // a permit of an earlier state
    if (!add_to_window(fail, slow, now)) return;
    window_rates r = rates(now);
    if (!r.tripped(opts_)) return;
    const breaker_state s = state_of(w);
    if (s == breaker_state::metrics_only) {
      stats_.add(st_would_open);
    } else if (s == breaker_state::closed) {
      open_from(w, detail::load_value(ctl_), now, r.failure, r.slow);
    }
  }

  breaker_state state() const noexcept { return state_of(detail::load_key(ctl_)); }

  // How long until acquire could admit a call, without changing anything: 0
  // when it could now (closed, an open period that has ended and so would
  // move to half-open, a half-open breaker with a probe left), the rest of
  // the open period, or never_ready when forced open. The bulkhead is not
  // considered. Routers use it to skip a venue that would refuse the call
  // while still sending traffic to one whose open period has ended, which
  // is how that venue gets its half-open probes. Advisory: the state may
  // change as soon as it returns.
  static constexpr std::uint64_t never_ready = ~std::uint64_t{0};
  std::uint64_t ready_in(std::uint64_t now_ns) const noexcept {
    const std::uint64_t now = std::min(now_ns, max_duration_ns);
    const std::uint64_t w = detail::load_key(ctl_);
    const std::uint64_t deadline = detail::load_value(ctl_);
    switch (state_of(w)) {
      case breaker_state::forced_open:
        return never_ready;
      case breaker_state::open:
        return now < deadline ? deadline - now : 0;
      case breaker_state::half_open: {
        // Past its time limit the next acquire opens it again.
        if (deadline != 0 && now >= deadline) return open_duration(level_of(w));
        const std::uint64_t p = probes_.load(std::memory_order_acquire);
        const bool exhausted =
            (p >> 48) == (gen_of(w) & 0xffff) && ((p >> 36) & f12) >= opts_.half_open_probes;
        if (!exhausted) return 0;
        return deadline != 0 ? deadline - now : opts_.open_ns;
      }
      default:
        return 0;
    }
  }

  // Manual transition; returns the state it replaced.
  breaker_state transition(breaker_state to, std::uint64_t now_ns) noexcept {
    const std::uint64_t now = std::min(now_ns, max_duration_ns);
    for (;;) {
      const std::uint64_t w = detail::load_key(ctl_);
      const std::uint64_t deadline = detail::load_value(ctl_);
      std::uint32_t level = level_of(w);
      std::uint64_t next_deadline = 0;
      std::uint64_t open_for = 0;
      switch (to) {
        case breaker_state::closed:
          level = 0;
          reset_window();
          break;
        case breaker_state::open:
          open_for = open_duration(level);
          next_deadline = now + open_for;
          break;
        case breaker_state::half_open:
          next_deadline = opts_.max_half_open_ns ? now + opts_.max_half_open_ns : 0;
          break;
        default:
          break;
      }
      if (enter(w, deadline, to, level, next_deadline, now, -1, -1, open_for)) {
        return state_of(w);
      }
    }
  }

  // Install fn(user, ev) as the state-change listener (nullptr removes it).
  void set_listener(event_fn fn, void* user) {
    std::lock_guard<std::mutex> lock(listener_mu_);
    listener* next = nullptr;
    if (fn != nullptr) {
      retired_.push_back(std::make_unique<listener>(listener{fn, user}));
      next = retired_.back().get();
    }
    // Older listeners stay allocated until the breaker goes: a thread may be
    // calling one right now. Each set_listener call costs 16 bytes.
    listener_.store(next, std::memory_order_release);
  }

  std::uint32_t in_flight() const noexcept { return bulk_.in_flight(); }
  const breaker_options& options() const noexcept { return opts_; }

  breaker_stats stats(std::uint64_t now_ns) const noexcept {
    breaker_stats s;
    s.admitted = stats_.sum(st_admitted);
    s.bulkhead_rejected = stats_.sum(st_bulkhead_rejected);
    s.rejected = stats_.sum(st_rejected) + s.bulkhead_rejected;
    s.successes = stats_.sum(st_successes);
    s.failures = stats_.sum(st_failures);
    s.slow_calls = stats_.sum(st_slow);
    s.ignored = stats_.sum(st_ignored);
    s.transitions = stats_.sum(st_transitions);
    s.would_open = stats_.sum(st_would_open);
    s.in_flight = bulk_.in_flight();
    s.state = state();
    const window_rates r = rates(std::min(now_ns, max_duration_ns));
    s.window_calls = r.calls;
    s.failure_rate = r.calls >= opts_.minimum_calls ? r.failure : -1;
    s.slow_rate = r.calls >= opts_.minimum_calls ? r.slow : -1;
    return s;
  }

 private:
  // state word: generation << 12 | backoff level << 4 | state
  static constexpr std::uint64_t tok_admitted = 1, tok_bulkhead = 2, tok_probe = 4,
                                 tok_untracked = 8;
  static constexpr int tok_gen_shift = 8;
  static constexpr std::uint64_t gen_mask = (std::uint64_t{1} << 52) - 1;

  enum stat : std::size_t {
    st_admitted,
    st_rejected,
    st_bulkhead_rejected,
    st_successes,
    st_failures,
    st_slow,
    st_ignored,
    st_transitions,
    st_would_open,
    st_count
  };

  struct listener {
    event_fn fn;
    void* user;
  };

  struct window_rates {
    std::uint64_t calls = 0;
    double failure = 0;
    double slow = 0;
    bool tripped(const breaker_options& o) const noexcept {
      return calls >= o.minimum_calls &&
             (failure >= o.failure_rate_threshold || slow >= o.slow_rate_threshold);
    }
  };

  // Half-open probe word: tag 16 | issued 12 | successes 12 | failures 12 | slow 12.
  static constexpr std::uint64_t f12 = 0xfff;
  static std::uint64_t probe_word(std::uint64_t tag, std::uint64_t issued, std::uint64_t ok,
                                  std::uint64_t bad, std::uint64_t slow) noexcept {
    return (tag << 48) | (issued << 36) | (ok << 24) | (bad << 12) | slow;
  }

  // Time window buckets: key = epoch, value = calls 22 | failures 21 | slow 21.
  static constexpr std::uint64_t calls_mask = (std::uint64_t{1} << 22) - 1;
  static constexpr std::uint64_t f21 = (std::uint64_t{1} << 21) - 1;

  // Count window aggregate: failures + bias in the low half, slow + bias in
  // the high half. The bias keeps transient negative values (a slot's old
  // outcome subtracted before another thread added it) inside their half.
  static constexpr std::uint64_t agg_bias = std::uint64_t{1} << 24;

  explicit breaker(const breaker_options& o)
      : opts_(o),
        max_in_flight_(o.max_in_flight),
        bulk_(o.max_in_flight),
        mod_(o.window == window_type::count ? o.window_size : 1) {
    if (o.window == window_type::count) {
      words_ = std::make_unique<std::atomic<std::uint64_t>[]>((o.window_size + 31) / 32);
    } else {
      buckets_ = std::make_unique<detail::pair_slot[]>(o.window_size);
    }
    reset_window();
    ctl_.key = static_cast<std::uint64_t>(breaker_state::closed);
    ctl_.value = 0;
  }

  static breaker_state state_of(std::uint64_t w) noexcept {
    return static_cast<breaker_state>(w & 0xf);
  }
  static std::uint32_t level_of(std::uint64_t w) noexcept {
    return static_cast<std::uint32_t>((w >> 4) & 0xff);
  }
  static std::uint64_t gen_of(std::uint64_t w) noexcept { return w >> 12; }
  static std::uint64_t make_word(std::uint64_t gen, std::uint32_t level, breaker_state s) noexcept {
    return ((gen & gen_mask) << 12) | (static_cast<std::uint64_t>(level) << 4) |
           static_cast<std::uint64_t>(s);
  }

  permit reject(breaker_reason why, breaker_state s, std::uint64_t retry) noexcept {
    if (why != breaker_reason::bulkhead_full) stats_.add(st_rejected);
    return permit{0, false, why, s, retry};
  }

  std::uint64_t open_duration(std::uint32_t level) const noexcept {
    const double d = static_cast<double>(opts_.open_ns) * std::pow(opts_.backoff_multiplier, level);
    return d >= static_cast<double>(opts_.max_open_ns) ? opts_.max_open_ns
                                                       : static_cast<std::uint64_t>(d);
  }

  // One transition from exactly (w, deadline); false if the state moved on.
  bool enter(std::uint64_t w, std::uint64_t deadline, breaker_state to, std::uint32_t level,
             std::uint64_t next_deadline, std::uint64_t now, double fr, double sr,
             std::uint64_t open_for) noexcept {
    const std::uint64_t next = make_word(gen_of(w) + 1, level, to);
    if (!detail::cas_pair(ctl_, w, deadline, next, next_deadline)) return false;
    if (state_of(w) == to) return true;  // a reset, not a change
    stats_.add(st_transitions);
    if (const listener* l = listener_.load(std::memory_order_acquire)) {
      const breaker_event ev{state_of(w), to, now, fr, sr, open_for};
      l->fn(l->user, ev);
    }
    return true;
  }

  void open_from(std::uint64_t w, std::uint64_t deadline, std::uint64_t now, double fr,
                 double sr) noexcept {
    const std::uint32_t level = level_of(w);
    const std::uint64_t d = open_duration(level);
    enter(w, deadline, breaker_state::open, std::min<std::uint32_t>(level + 1, 255), now + d, now,
          fr, sr, d);
  }

  bool claim_probe(std::uint64_t gen) noexcept {
    const std::uint64_t tag = gen & 0xffff;
    std::uint64_t cur = probes_.load(std::memory_order_acquire);
    for (;;) {
      std::uint64_t next;
      if ((cur >> 48) != tag) {
        next = probe_word(tag, 1, 0, 0, 0);
      } else {
        const std::uint64_t issued = (cur >> 36) & f12;
        if (issued >= opts_.half_open_probes) return false;
        next = cur + (std::uint64_t{1} << 36);
      }
      if (probes_.compare_exchange_weak(cur, next, std::memory_order_acq_rel)) return true;
    }
  }

  void release_probe(std::uint64_t gen) noexcept {
    const std::uint64_t tag = gen & 0xffff;
    std::uint64_t cur = probes_.load(std::memory_order_acquire);
    while ((cur >> 48) == tag && ((cur >> 36) & f12) != 0) {
      if (probes_.compare_exchange_weak(cur, cur - (std::uint64_t{1} << 36),
                                        std::memory_order_acq_rel)) {
        return;
      }
    }
  }

  void record_probe(std::uint64_t gen, bool fail, bool slow, std::uint64_t now) noexcept {
    const std::uint64_t tag = gen & 0xffff;
    std::uint64_t cur = probes_.load(std::memory_order_acquire);
    std::uint64_t next;
    do {
      if ((cur >> 48) != tag) return;  // a probe of an earlier half-open period
      next = cur + (fail ? (std::uint64_t{1} << 12) : (std::uint64_t{1} << 24)) + (slow ? 1 : 0);
    } while (!probes_.compare_exchange_weak(cur, next, std::memory_order_acq_rel));
    const std::uint64_t ok = (next >> 24) & f12, bad = (next >> 12) & f12, sl = next & f12;
    if (ok + bad != opts_.half_open_probes) return;
    // This call ended the last probe: decide.
    const std::uint64_t w = detail::load_key(ctl_);
    const std::uint64_t deadline = detail::load_value(ctl_);
    if (gen_of(w) != (gen & gen_mask) || state_of(w) != breaker_state::half_open) return;
    const double n = opts_.half_open_probes;
    const double fr = 100.0 * static_cast<double>(bad) / n;
    const double sr = 100.0 * static_cast<double>(sl) / n;
    if (fr >= opts_.failure_rate_threshold || sr >= opts_.slow_rate_threshold) {
      open_from(w, deadline, now, fr, sr);
    } else {
      reset_window();
      enter(w, deadline, breaker_state::closed, 0, 0, now, fr, sr, 0);
    }
  }

  void reset_window() noexcept {
    if (words_) {
      total_.store(0, std::memory_order_relaxed);
      for (std::uint32_t i = 0; i < (opts_.window_size + 31) / 32; ++i) {
        words_[i].store(0, std::memory_order_relaxed);
      }
      agg_.store(agg_bias | (agg_bias << 32), std::memory_order_release);
    } else {
      for (std::uint32_t i = 0; i < opts_.window_size; ++i) {
        for (;;) {
          const std::uint64_t k = detail::load_key(buckets_[i]);
          const std::uint64_t v = detail::load_value(buckets_[i]);
          if (detail::cas_pair(buckets_[i], k, v, 0, 0)) break;
        }
      }
    }
  }

  // Returns whether the thresholds need evaluating after this outcome.
  bool add_to_window(bool fail, bool slow, std::uint64_t now) noexcept {
    if (words_) {
      const std::uint64_t n = total_.fetch_add(1, std::memory_order_relaxed);
      const std::uint64_t idx = mod_(n);
      // Rates can only rise with a failure or a slow call, but the window can
      // also just have reached minimum_calls with a rate already too high.
      const bool evaluate = n + 1 == opts_.minimum_calls;
      std::atomic<std::uint64_t>& word = words_[idx >> 5];
      const unsigned shift = static_cast<unsigned>(idx & 31) * 2;
      const std::uint64_t bits = (fail ? 1u : 0u) | (slow ? 2u : 0u);
      std::uint64_t cur = word.load(std::memory_order_relaxed);
      std::uint64_t old_bits = (cur >> shift) & 3;
      if (old_bits == bits) return bits != 0 || evaluate;  // steady state: no write
      while (!word.compare_exchange_weak(
          cur, (cur & ~(std::uint64_t{3} << shift)) | (bits << shift), std::memory_order_relaxed)) {
      }
      old_bits = (cur >> shift) & 3;
      const std::uint64_t delta =
          (bits & 1) - (old_bits & 1) + ((((bits >> 1) & 1) - ((old_bits >> 1) & 1)) << 32);
      agg_.fetch_add(delta, std::memory_order_relaxed);
      return bits != 0 || evaluate;
    }
    const std::uint64_t epoch = now / opts_.bucket_ns;
    detail::pair_slot& b = buckets_[epoch % opts_.window_size];
    const std::uint64_t add =
        1 | (fail ? std::uint64_t{1} << 22 : 0) | (slow ? std::uint64_t{1} << 43 : 0);
    for (;;) {
      const std::uint64_t e = detail::load_key(b);
      const std::uint64_t v = detail::load_value(b);
      std::uint64_t next_e = e, next_v;
      if (e < epoch) {
        next_e = epoch;  // a bucket from an earlier window: start over
        next_v = add;
      } else if ((v & calls_mask) >= calls_mask) {
        return true;  // saturated: the rates stay as measured
      } else {
        next_v = v + add;  // this epoch, or a later one if time stepped back
      }
      // A success can bring the window up to minimum_calls, so time windows
      // evaluate on every outcome (O(window_size)).
      if (detail::cas_pair(b, e, v, next_e, next_v)) return true;
    }
  }

  window_rates rates(std::uint64_t now) const noexcept {
    window_rates r;
    std::uint64_t fails = 0, slows = 0;
    if (words_) {
      r.calls = std::min<std::uint64_t>(total_.load(std::memory_order_relaxed), opts_.window_size);
      const std::uint64_t a = agg_.load(std::memory_order_acquire);
      const auto lo =
          static_cast<std::int64_t>(a & 0xffffffffu) - static_cast<std::int64_t>(agg_bias);
      const auto hi = static_cast<std::int64_t>(a >> 32) - static_cast<std::int64_t>(agg_bias);
      fails = lo < 0 ? 0 : static_cast<std::uint64_t>(lo);
      slows = hi < 0 ? 0 : static_cast<std::uint64_t>(hi);
    } else {
      const std::uint64_t epoch = now / opts_.bucket_ns;
      for (std::uint32_t i = 0; i < opts_.window_size; ++i) {
        const std::uint64_t e = detail::load_key(buckets_[i]);
        const std::uint64_t v = detail::load_value(buckets_[i]);
        if (v == 0 || e + opts_.window_size <= epoch) continue;  // empty or too old
        r.calls += v & calls_mask;
        fails += (v >> 22) & f21;
        slows += (v >> 43) & f21;
      }
    }
    if (r.calls != 0) {
      r.failure =
          100.0 * static_cast<double>(std::min(fails, r.calls)) / static_cast<double>(r.calls);
      r.slow = 100.0 * static_cast<double>(std::min(slows, r.calls)) / static_cast<double>(r.calls);
    }
    return r;
  }

  const breaker_options opts_;
  const std::uint32_t max_in_flight_;
  detail::pair_slot ctl_;
  bulkhead bulk_;
  alignas(64) std::atomic<std::uint64_t> probes_{0};
  alignas(64) std::atomic<std::uint64_t> total_{0};
  std::atomic<std::uint64_t> agg_{0};
  detail::fast_mod mod_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> words_;
  std::unique_ptr<detail::pair_slot[]> buckets_;
  std::atomic<const listener*> listener_{nullptr};
  std::mutex listener_mu_;
  std::vector<std::unique_ptr<listener>> retired_;
  detail::striped_counters<st_count> stats_;
};

}  // namespace tollgate
