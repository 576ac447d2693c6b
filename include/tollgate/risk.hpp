// tollgate::risk_checker - pre-trade risk checks (SEC Rule 15c3-5, MiFID II
// RTS 6 Art. 15).
//
// What it decides: whether one order may go to the market, from the order
// itself, the kill switches, the reference price in a price_cache, and what
// the order's account has already sent in the current period.
//
// Checks, in this order; the first that fails decides. (Steps 4-7 need no
// shared state and are computed before step 3, outside its lock, so the
// price cache sees one lookup for every well-formed order within
// max_quantity, a duplicate included.)
//   1. kill switch: global, then the order's account, then its instrument;
//   2. malformed order: quantity not finite or <= 0 (invalid_quantity);
//      limit price neither NaN (a market order) nor finite and > 0
//      (invalid_price); account, instrument (1..32 bytes) or client order id
//      (1..64 bytes) empty or too long (invalid_account, invalid_instrument,
//      invalid_client_order_id; limit = the longest allowed, observed = the
//      length);
//   3. duplicate: the account already had an order with this client order
//      id accepted less than duplicate_window_ns ago (at exactly the window
//      it is new again; observed = the earlier order's age);
//   4. max_quantity: quantity > max_quantity (compared exactly);
//   5. reference price: price_cache::get for the instrument; a miss, an
//      entry older than the cache's max_age_ns or older than
//      max_reference_age_ns is "no fresh reference price", never used. Then
//      on_no_reference applies: reject (no_reference_price) or allow, which
//      skips the collar and every notional that needs the reference: a limit
//      order's notional still uses its limit price, a market order's is
//      unknown (checked by no notional limit, adds nothing to its account's
//      notional; it still counts as an order);
//   6. price_collar (limit orders): band = reference * width / 100 (percent),
//      reference * width / 1e4 (bps) or width * collar_tick_size (ticks);
//      the limit price must lie in [reference - band, reference + band]
//      (limit = the edge crossed, observed = the limit price);
//   7. max_notional: quantity * (limit price, or the reference for a market
//      order) > max_notional;
//   8. the account's period: fixed windows [k * period_ns, (k+1) * period_ns)
//      (aligned to multiples of period_ns, not to the account's first
//      order). In this order: account_capacity (see Memory), account_notional
//      (the period's accepted notional plus this order's > the limit;
//      observed = that sum), account_order_count (accepted orders plus this
//      one > the limit), duplicate_capacity (see Memory).
// Only an accepted order counts toward its account's period and is
// remembered as a duplicate; a rejected order changes nothing. Notional
// comparisons (collar, order and account notional) allow a relative 1e-9
// above the limit, as the price cache does for moves, so that a value that is
// exactly at the limit in decimal but a hair above it in binary floating
// point passes; a value exactly at any limit passes. The order's side does
// not change any check (the collar is symmetric).
//
// Every decision carries: the reason (none when allowed), limit (the
// configured value that was hit), observed (the order's value that hit it)
// and reference (the reference price when step 5 found one); a field that
// does not apply is NaN. An accepted order's observed is its notional (NaN
// when unknown). Infinite limits (the defaults) are off.
//
// Kill switches: engage(scope, key, now) / release(scope, key, now) for the
// global switch, an account or an instrument. A switch is latched until
// released, engaging twice is a no-op, and the change is effective for every
// check that starts after the call returns, on any thread (a check already
// running may still accept). The global switch is one atomic flag; account
// and instrument switches are sets of 64-bit key hashes, each holding at most
// kill_switch_capacity keys, with atomic slots read without a lock; engaging
// one more key returns ResourceExhausted and nothing is engaged silently. A
// listener receives every change (scope, key, engaged, now) so the host can
// journal it.
//
// Memory is fixed at create():
//   - accounts: the period state of at most account_capacity accounts
//     (2 * capacity rounded up to a power of two slots of 40 bytes). An
//     account whose window has ended carries nothing and may be dropped.
//     When a new account's order (or the first after its state was dropped)
//     finds account_capacity accounts holding state for the current window,
//     it is rejected with account_capacity (fail closed): another account's
//     state is never reset to make room (ended accounts are dropped by one
//     sweep of the table, at most once per window, under the new-account
//     flag). No state is kept when neither account limit is set.
//   - duplicates: the hashes of (account, client order id) of at most
//     duplicate_capacity accepted orders with their acceptance time (16-byte
//     slots, twice as many). An id whose window has ended is reclaimed; when
//     all duplicate_capacity ids are still inside their window the checker
//     could not remember one more, so the order is rejected with
//     duplicate_capacity (fail closed: forgetting a live id would let a
//     duplicate through). Size it above the orders accepted per window: a
//     full table is swept (O(capacity)) to reclaim ended ids, and after a
//     sweep that freed none, rejections cost O(1) until the earliest id
//     leaves its window. With duplicate_window_ns = 0 there is no duplicate
//     check.
//   - kill switches: 2 * kill_switch_capacity slots of 8 bytes per scope;
//   - 512 lock stripes of 64 bytes.
// Keys are compared by 64-bit keyed hash: two different keys collide with
// probability about 2^-64, which can only reject (a false duplicate or kill
// switch), never accept.
//
// Concurrency: check() may run on any number of threads. Steps 1-2 and 4-7
// take no lock. Steps 3 and 8 run under a spin lock striped by account, so
// two orders of one account are decided one after the other: they can never
// both pass a limit that only one of them fits under, nor both pass as the
// same client order id. The account state itself is a slot with its own spin
// flag (held for a few dozen instructions), and a global flag serialises only
// the arrival of new accounts. A waiter that spins long (its holder was
// preempted) yields the CPU. Duplicate ids are claimed by a 16-byte CAS.
// check() allocates nothing and throws nothing; engage and release take a
// mutex and call the listener with it held (the listener must not call them).
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "tollgate/detail/atomic128.hpp"
#include "tollgate/detail/counters.hpp"
#include "tollgate/detail/hash.hpp"
#include "tollgate/detail/spin.hpp"
#include "tollgate/price_cache.hpp"

namespace tollgate {

enum class side : std::uint8_t { buy = 0, sell = 1 };

// A view of the order being decided; nothing is copied or kept.
struct risk_order {
  std::string_view account;
  std::string_view instrument;
  std::string_view client_order_id;
  side s = side::buy;
  double quantity = 0;
  double limit_price = std::numeric_limits<double>::quiet_NaN();  // NaN: a market order
};

enum class risk_reason : std::int32_t {
  none = 0,
  kill_switch_global = 1,
  kill_switch_account = 2,
  kill_switch_instrument = 3,
  invalid_quantity = 4,
  invalid_price = 5,
  invalid_account = 6,
  invalid_instrument = 7,
  invalid_client_order_id = 8,
  duplicate_order = 9,
  max_quantity = 10,
  no_reference_price = 11,
  price_collar = 12,
  max_notional = 13,
  account_notional = 14,
  account_order_count = 15,
  account_capacity = 16,
  duplicate_capacity = 17,
};

inline constexpr std::size_t risk_reason_count = 18;

inline constexpr const char* risk_reason_name(risk_reason r) noexcept {
  switch (r) {
    case risk_reason::none:
      return "none";
    case risk_reason::kill_switch_global:
      return "kill_switch_global";
    case risk_reason::kill_switch_account:
      return "kill_switch_account";
    case risk_reason::kill_switch_instrument:
      return "kill_switch_instrument";
    case risk_reason::invalid_quantity:
      return "invalid_quantity";
    case risk_reason::invalid_price:
      return "invalid_price";
    case risk_reason::invalid_account:
      return "invalid_account";
    case risk_reason::invalid_instrument:
      return "invalid_instrument";
    case risk_reason::invalid_client_order_id:
      return "invalid_client_order_id";
    case risk_reason::duplicate_order:
      return "duplicate_order";
    case risk_reason::max_quantity:
      return "max_quantity";
    case risk_reason::no_reference_price:
      return "no_reference_price";
    case risk_reason::price_collar:
      return "price_collar";
    case risk_reason::max_notional:
      return "max_notional";
    case risk_reason::account_notional:
      return "account_notional";
    case risk_reason::account_order_count:
      return "account_order_count";
    case risk_reason::account_capacity:
      return "account_capacity";
    case risk_reason::duplicate_capacity:
      return "duplicate_capacity";
  }
  return "unknown";
}

struct risk_decision {
  bool allowed = false;
  risk_reason reason = risk_reason::none;
  double limit = std::numeric_limits<double>::quiet_NaN();
  double observed = std::numeric_limits<double>::quiet_NaN();
  double reference = std::numeric_limits<double>::quiet_NaN();
};

enum class collar_unit : std::uint32_t { percent = 0, bps = 1, ticks = 2 };
enum class no_reference_policy : std::uint32_t { reject = 0, allow = 1 };
enum class kill_scope : std::uint32_t { global = 0, account = 1, instrument = 2 };

struct kill_switch_event {
  kill_scope scope;
  std::string_view key;  // empty for the global switch; valid during the callback only
  bool engaged;          // false: released
  std::uint64_t now_ns;
};

struct risk_options {
  // Reference prices. Not owned; must outlive the checker. nullptr: no
  // instrument ever has a reference price (on_no_reference decides).
  const price_cache* prices = nullptr;
  no_reference_policy on_no_reference = no_reference_policy::reject;
  std::uint64_t max_reference_age_ns = 0;  // 0: the cache's max_age_ns alone

  double max_quantity = std::numeric_limits<double>::infinity();
  double max_notional = std::numeric_limits<double>::infinity();

  collar_unit collar = collar_unit::percent;
  double collar_width = std::numeric_limits<double>::infinity();  // >= 0; infinity: no collar
  double collar_tick_size = 0.01;                                 // for collar_unit::ticks

  std::uint64_t period_ns = 1'000'000'000;
  double account_max_notional = std::numeric_limits<double>::infinity();         // per period
  std::uint64_t account_max_orders = std::numeric_limits<std::uint64_t>::max();  // per period
  std::size_t account_capacity = 4096;

  std::uint64_t duplicate_window_ns = 60'000'000'000;  // 0: no duplicate check
  std::size_t duplicate_capacity = 65536;

  std::size_t kill_switch_capacity = 1024;     // keys per scope (accounts, instruments)
  std::uint64_t seed = 0x7a11c0de5eed1e55ULL;  // key hashing
};

struct risk_stats {
  std::array<std::uint64_t, risk_reason_count> decisions{};  // by reason; [none]: allowed
  std::uint64_t checked = 0, allowed = 0, rejected = 0;
  std::uint64_t accounts = 0;       // accounts holding period state (some may have expired)
  std::uint64_t duplicate_ids = 0;  // ids remembered (some may have expired)
  std::uint64_t killed_accounts = 0, killed_instruments = 0;
  bool global_kill = false;
};

class risk_checker {
 public:
  using kill_listener_fn = void (*)(void* user, const kill_switch_event& ev);
  static constexpr std::size_t max_key = 32;
  static constexpr std::size_t max_client_order_id = 64;
  static constexpr std::size_t max_account_capacity = std::size_t{1} << 24;
  static constexpr std::size_t max_duplicate_capacity = std::size_t{1} << 26;
  static constexpr std::size_t max_kill_switch_capacity = std::size_t{1} << 20;
  static constexpr double tolerance = 1e-9;  // relative, on notional and collar comparisons

  // Validates everything; nothing is allocated for an invalid configuration.
  static absl::StatusOr<std::unique_ptr<risk_checker>> create(const risk_options& o) {
    if (o.on_no_reference != no_reference_policy::reject &&
        o.on_no_reference != no_reference_policy::allow) {
      return absl::InvalidArgumentError("on_no_reference must be REJECT or ALLOW");
    }
    if (!(o.max_quantity > 0)) {
      return absl::OutOfRangeError("max_quantity must be > 0 (infinity: no limit)");
    }
    if (!(o.max_notional > 0)) {
      return absl::OutOfRangeError("max_notional must be > 0 (infinity: no limit)");
    }
    if (o.collar != collar_unit::percent && o.collar != collar_unit::bps &&
        o.collar != collar_unit::ticks) {
      return absl::InvalidArgumentError("collar must be PERCENT, BPS or TICKS");
    }
    if (!(o.collar_width >= 0)) {
      return absl::OutOfRangeError("collar_width must be >= 0 (infinity: no collar)");
    }
    if (!std::isfinite(o.collar_tick_size) || !(o.collar_tick_size > 0)) {
      return absl::OutOfRangeError("collar_tick_size must be finite and > 0");
    }
    if (o.period_ns == 0) return absl::OutOfRangeError("period_ns must be > 0");
    if (!(o.account_max_notional > 0)) {
      return absl::OutOfRangeError("account_max_notional must be > 0 (infinity: no limit)");
    }
    if (o.account_max_orders == 0) {
      return absl::OutOfRangeError("account_max_orders must be >= 1 (UINT64_MAX: no limit)");
    }
    if (o.account_capacity == 0 || o.account_capacity > max_account_capacity) {
      return absl::OutOfRangeError("account_capacity must be 1..16777216 accounts");
    }
    if (o.duplicate_capacity == 0 || o.duplicate_capacity > max_duplicate_capacity) {
      return absl::OutOfRangeError("duplicate_capacity must be 1..67108864 ids");
    }
    if (o.kill_switch_capacity == 0 || o.kill_switch_capacity > max_kill_switch_capacity) {
      return absl::OutOfRangeError("kill_switch_capacity must be 1..1048576 keys");
    }
    return std::unique_ptr<risk_checker>(new risk_checker(o));
  }

  risk_checker(const risk_checker&) = delete;
  risk_checker& operator=(const risk_checker&) = delete;

  const risk_options& options() const noexcept { return opts_; }

  // Decides one order at now_ns. See the top of this file for the rules.
  risk_decision check(const risk_order& o, std::uint64_t now_ns) noexcept {
    if (global_kill_.load(std::memory_order_acquire)) {
      return decide(risk_reason::kill_switch_global, nan, nan, nan);
    }
    // Keys are hashed only when a set holds keys or the order needs state.
    if (account_kill_.size() != 0 && account_kill_.contains(key_hash(o.account))) {
      return decide(risk_reason::kill_switch_account, nan, nan, nan);
    }
    if (instrument_kill_.size() != 0 && instrument_kill_.contains(key_hash(o.instrument))) {
      return decide(risk_reason::kill_switch_instrument, nan, nan, nan);
    }

    if (!std::isfinite(o.quantity) || !(o.quantity > 0)) {
      return decide(risk_reason::invalid_quantity, nan, o.quantity, nan);
    }
    const bool market = std::isnan(o.limit_price);
    if (!market && (!std::isfinite(o.limit_price) || !(o.limit_price > 0))) {
      return decide(risk_reason::invalid_price, nan, o.limit_price, nan);
    }
    if (o.account.empty() || o.account.size() > max_key) {
      return decide(risk_reason::invalid_account, static_cast<double>(max_key), length(o.account),
                    nan);
    }
    if (o.instrument.empty() || o.instrument.size() > max_key) {
      return decide(risk_reason::invalid_instrument, static_cast<double>(max_key),
                    length(o.instrument), nan);
    }
    if (o.client_order_id.empty() || o.client_order_id.size() > max_client_order_id) {
      return decide(risk_reason::invalid_client_order_id, static_cast<double>(max_client_order_id),
                    length(o.client_order_id), nan);
    }

    // Steps 4-7 need no shared state: evaluate them now, report them after
    // the duplicate check, which comes first in the documented order.
    verdict early;
    double reference = nan;
    double notional = nan;  // unknown: a market order without a reference
    if (o.quantity > opts_.max_quantity) {
      early = {risk_reason::max_quantity, opts_.max_quantity, o.quantity};
    } else if (!reference_price(o.instrument, now_ns, &reference) &&
               opts_.on_no_reference == no_reference_policy::reject) {
      early = {risk_reason::no_reference_price, nan, nan};
    } else {
      if (!market && !std::isnan(reference)) early = collar(o.limit_price, reference);
      if (early.reason == risk_reason::none) {
        notional = o.quantity * (market ? reference : o.limit_price);
        if (exceeds(notional, opts_.max_notional)) {
          early = {risk_reason::max_notional, opts_.max_notional, notional};
        }
      }
    }

    const bool dedupe = opts_.duplicate_window_ns != 0;
    if (!dedupe) {
      if (early.reason != risk_reason::none) {
        return decide(early.reason, early.limit, early.observed, reference);
      }
      if (!account_limits_) return decide(risk_reason::none, nan, notional, reference);
    }

    const std::uint64_t ha = key_hash(o.account);
    spin_guard serial(stripes_[(ha >> 40) & (stripe_count - 1)].busy);
    std::uint64_t hd = 0;
    if (dedupe) {
      hd = duplicate_hash(ha, o.client_order_id);
      std::uint64_t age = 0;
      if (duplicate_live(hd, now_ns, &age)) {
        return decide(risk_reason::duplicate_order, static_cast<double>(opts_.duplicate_window_ns),
                      static_cast<double>(age), nan);
      }
    }
    if (early.reason != risk_reason::none) {
      return decide(early.reason, early.limit, early.observed, reference);
    }

    const double adds = std::isnan(notional) ? 0.0 : notional;
    std::size_t at = npos;
    bool fresh = false;
    double sum = 0;
    std::uint64_t orders = 0;
    std::uint64_t window = now_ns / opts_.period_ns;
    if (account_limits_) {
      at = lock_account(ha);
      if (at == npos) {
        at = insert_account(ha, window);
        if (at == npos) {
          return decide(risk_reason::account_capacity, static_cast<double>(opts_.account_capacity),
                        static_cast<double>(accounts_live_.load(std::memory_order_relaxed)),
                        reference);
        }
        fresh = true;
      }
      const account_slot& st = accounts_[at];
      if (st.window >= window) {  // a clock stepping back stays in the account's window
        window = st.window;
        sum = st.notional;
        orders = st.orders;
      }
      verdict v;
      if (exceeds(sum + adds, opts_.account_max_notional)) {
        v = {risk_reason::account_notional, opts_.account_max_notional, sum + adds};
      } else if (orders >= opts_.account_max_orders) {
        v = {risk_reason::account_order_count, static_cast<double>(opts_.account_max_orders),
             static_cast<double>(orders) + 1};
      }
      if (v.reason != risk_reason::none) {
        unlock_account(at, fresh);
        return decide(v.reason, v.limit, v.observed, reference);
      }
    }
    if (dedupe && !remember(hd, now_ns)) {
      if (at != npos) unlock_account(at, fresh);
      return decide(risk_reason::duplicate_capacity, static_cast<double>(opts_.duplicate_capacity),
                    static_cast<double>(duplicates_live_.load(std::memory_order_relaxed)),
                    reference);
    }
    if (at != npos) {
      account_slot& st = accounts_[at];
      st.window = window;
      st.notional = sum + adds;
      st.orders = orders + 1;
      detail::spin_unlock(st.busy);
    }
    return decide(risk_reason::none, nan, notional, reference);
  }

  // Engages a kill switch (key ignored for the global one). Idempotent.
  // InvalidArgument for a bad scope or a key that is empty or longer than 32
  // bytes; ResourceExhausted when the scope already holds
  // kill_switch_capacity keys (nothing is engaged: release one or configure
  // more).
  absl::Status engage(kill_scope scope, std::string_view key, std::uint64_t now_ns) {
    return set_kill(scope, key, true, now_ns);
  }

  // Releases a kill switch; releasing one that is not engaged is a no-op.
  absl::Status release(kill_scope scope, std::string_view key, std::uint64_t now_ns) {
    return set_kill(scope, key, false, now_ns);
  }

  bool engaged(kill_scope scope, std::string_view key) const noexcept {
    switch (scope) {
      case kill_scope::global:
        return global_kill_.load(std::memory_order_acquire);
      case kill_scope::account:
        return account_kill_.contains(key_hash(key));
      case kill_scope::instrument:
        return instrument_kill_.contains(key_hash(key));
    }
    return false;
  }

  // Installs fn(user, ev) for every kill switch change (nullptr removes it).
  void set_kill_listener(kill_listener_fn fn, void* user) {
    std::lock_guard<std::mutex> g(control_);
    listener_ = fn;
    listener_user_ = user;
  }

  risk_stats stats() const noexcept {
    risk_stats s;
    for (std::size_t i = 0; i < risk_reason_count; ++i) {
      s.decisions[i] = stats_.sum(i);
      s.checked += s.decisions[i];
    }
    s.allowed = s.decisions[0];
    s.rejected = s.checked - s.allowed;
    s.accounts = accounts_live_.load(std::memory_order_relaxed);
    s.duplicate_ids = duplicates_live_.load(std::memory_order_relaxed);
    s.killed_accounts = account_kill_.size();
    s.killed_instruments = instrument_kill_.size();
    s.global_kill = global_kill_.load(std::memory_order_relaxed);
    return s;
  }

 private:
  static constexpr double nan = std::numeric_limits<double>::quiet_NaN();
  static constexpr std::uint64_t empty_key = 0;  // detail::hash_bytes never returns 0
  static constexpr std::uint64_t tomb_key = ~std::uint64_t{0};
  static constexpr std::size_t npos = ~std::size_t{0};
  static constexpr std::size_t stripe_count = 512;

  struct verdict {
    risk_reason reason = risk_reason::none;
    double limit = nan;
    double observed = nan;
  };

  class spin_guard {
   public:
    explicit spin_guard(std::atomic<bool>& f) noexcept : f_(f) { detail::spin_lock(f_); }
    ~spin_guard() { detail::spin_unlock(f_); }
    spin_guard(const spin_guard&) = delete;
    spin_guard& operator=(const spin_guard&) = delete;

   private:
    std::atomic<bool>& f_;
  };

  static void raise_max(std::atomic<std::size_t>& m, std::size_t v) noexcept {
    std::size_t cur = m.load(std::memory_order_relaxed);
    while (cur < v && !m.compare_exchange_weak(cur, v, std::memory_order_release)) {
    }
  }
  // Takes one of `cap` units, or returns false when all are taken.
  static bool reserve(std::atomic<std::uint64_t>& used, std::uint64_t cap) noexcept {
    std::uint64_t n = used.load(std::memory_order_relaxed);
    while (n < cap) {
      if (used.compare_exchange_weak(n, n + 1, std::memory_order_relaxed)) return true;
    }
    return false;
  }
  static std::size_t table_size(std::size_t capacity) noexcept {
    return std::max<std::size_t>(16, detail::next_pow2(2 * capacity));
  }
  static double length(std::string_view s) noexcept { return static_cast<double>(s.size()); }
  // Above the limit by more than the relative tolerance; NaN never is.
  static bool exceeds(double v, double limit) noexcept { return v > limit * (1 + tolerance); }

  std::uint64_t key_hash(std::string_view key) const noexcept {
    const std::uint64_t h = detail::hash_bytes(key.data(), key.size(), opts_.seed);
    return h == tomb_key ? tomb_key - 1 : h;
  }
  std::uint64_t duplicate_hash(std::uint64_t account_hash, std::string_view id) const noexcept {
    const std::uint64_t h = detail::hash_bytes(id.data(), id.size(),
                                               opts_.seed ^ (account_hash * 0x9e3779b97f4a7c15ULL));
    return h == tomb_key ? tomb_key - 1 : h;
  }

  risk_decision decide(risk_reason r, double limit, double observed, double reference) noexcept {
    stats_.add(static_cast<std::size_t>(r));
    return risk_decision{r == risk_reason::none, r, limit, observed, reference};
  }

  bool reference_price(std::string_view instrument, std::uint64_t now, double* out) const noexcept {
    if (opts_.prices == nullptr) return false;
    cached_price cp;
    if (!opts_.prices->get(instrument, now, &cp, nullptr, 0)) return false;
    if (opts_.max_reference_age_ns != 0 && cp.age_ns > opts_.max_reference_age_ns) return false;
    *out = cp.price;
    return true;
  }

  verdict collar(double price, double reference) const noexcept {
    double band = 0;
    switch (opts_.collar) {
      case collar_unit::percent:
        band = reference * opts_.collar_width / 100;
        break;
      case collar_unit::bps:
        band = reference * opts_.collar_width / 1e4;
        break;
      case collar_unit::ticks:
        band = opts_.collar_width * opts_.collar_tick_size;
        break;
    }
    const double dev = price - reference;
    if (exceeds(dev, band)) return {risk_reason::price_collar, reference + band, price};
    if (exceeds(-dev, band)) return {risk_reason::price_collar, reference - band, price};
    return {};
  }

  // A set of key hashes (kill switches): lookups take no lock; writers are
  // serialised by control_. Linear probing over atomic slots; a released key
  // leaves a tombstone that a later engage reuses. Lookups stop at a slot
  // never used or after the longest displacement any insert has made.
  class key_set {
   public:
    explicit key_set(std::size_t capacity)
        : capacity_(capacity),
          mask_(table_size(capacity) - 1),
          slots_(std::make_unique<std::atomic<std::uint64_t>[]>(mask_ + 1)) {}

    bool contains(std::uint64_t h) const noexcept {
      if (count_.load(std::memory_order_acquire) == 0) return false;
      return find(h) != npos;
    }
    std::uint64_t size() const noexcept { return count_.load(std::memory_order_acquire); }

    enum class added { yes, already, full };
    added insert(std::uint64_t h) noexcept {
      if (find(h) != npos) return added::already;
      if (count_.load(std::memory_order_relaxed) >= capacity_) return added::full;
      for (std::size_t d = 0;; ++d) {  // fewer than half the slots hold keys
        std::atomic<std::uint64_t>& s = slots_[(h + d) & mask_];
        const std::uint64_t k = s.load(std::memory_order_relaxed);
        if (k == empty_key || k == tomb_key) {
          raise_max(max_probe_, d);
          s.store(h, std::memory_order_seq_cst);
          count_.fetch_add(1, std::memory_order_seq_cst);
          return added::yes;
        }
      }
    }
    bool erase(std::uint64_t h) noexcept {
      const std::size_t at = find(h);
      if (at == npos) return false;
      slots_[at].store(tomb_key, std::memory_order_seq_cst);
      count_.fetch_sub(1, std::memory_order_seq_cst);
      return true;
    }

   private:
    std::size_t find(std::uint64_t h) const noexcept {
      const std::size_t limit = max_probe_.load(std::memory_order_acquire);
      for (std::size_t d = 0; d <= limit; ++d) {
        const std::size_t at = (h + d) & mask_;
        const std::uint64_t k = slots_[at].load(std::memory_order_acquire);
        if (k == h) return at;
        if (k == empty_key) return npos;
      }
      return npos;
    }

    std::size_t capacity_;
    std::size_t mask_;
    std::unique_ptr<std::atomic<std::uint64_t>[]> slots_;
    std::atomic<std::uint64_t> count_{0};
    std::atomic<std::size_t> max_probe_{0};
  };

  absl::Status set_kill(kill_scope scope, std::string_view key, bool on, std::uint64_t now) {
    if (scope == kill_scope::global) {
      std::lock_guard<std::mutex> g(control_);
      if (global_kill_.load(std::memory_order_relaxed) == on) return absl::OkStatus();
      global_kill_.store(on, std::memory_order_seq_cst);
      notify({scope, std::string_view(), on, now});
      return absl::OkStatus();
    }
    if (scope != kill_scope::account && scope != kill_scope::instrument) {
      return absl::InvalidArgumentError("scope must be GLOBAL, ACCOUNT or INSTRUMENT");
    }
    if (key.empty() || key.size() > max_key) {
      return absl::InvalidArgumentError("a kill switch key is 1..32 bytes");
    }
    key_set& set = scope == kill_scope::account ? account_kill_ : instrument_kill_;
    const std::uint64_t h = key_hash(key);
    std::lock_guard<std::mutex> g(control_);
    if (on) {
      const key_set::added r = set.insert(h);
      if (r == key_set::added::already) return absl::OkStatus();
      if (r == key_set::added::full) {
        return absl::ResourceExhaustedError(
            std::string(scope == kill_scope::account ? "account" : "instrument") +
            " kill switches full (kill_switch_capacity " +
            std::to_string(opts_.kill_switch_capacity) + "): nothing engaged");
      }
    } else if (!set.erase(h)) {
      return absl::OkStatus();
    }
    notify({scope, key, on, now});
    return absl::OkStatus();
  }
  void notify(const kill_switch_event& ev) const {
    if (listener_ != nullptr) listener_(listener_user_, ev);
  }

  // Account period state. A slot's key and fields change only with its
  // busy flag held. Lock order: stripe, then new_account_, then slot flags
  // (a thread holding a slot flag waits for nothing but the duplicate sweep
  // flag), so no cycle can form.
  struct account_slot {
    std::atomic<bool> busy{false};
    std::uint64_t window = 0;
    double notional = 0;
    std::uint64_t orders = 0;
  };

  std::size_t find_account(std::uint64_t h) const noexcept {
    const std::size_t limit = account_probe_.load(std::memory_order_acquire);
    for (std::size_t d = 0; d <= limit; ++d) {
      const std::size_t at = (h + d) & account_mask_;
      const std::uint64_t k = account_keys_[at].load(std::memory_order_acquire);
      if (k == h) return at;
      if (k == empty_key) return npos;
    }
    return npos;
  }
  // The account's slot with its flag held, or npos. Only a holder of the
  // account's stripe inserts it, so a miss stays a miss until it does.
  std::size_t lock_account(std::uint64_t h) noexcept {
    for (;;) {
      const std::size_t at = find_account(h);
      if (at == npos) return npos;
      detail::spin_lock(accounts_[at].busy);
      if (account_keys_[at].load(std::memory_order_relaxed) == h) return at;
      detail::spin_unlock(accounts_[at].busy);  // dropped meanwhile: look again
    }
  }
  // A new account's slot, flag held, window started; npos when
  // account_capacity accounts hold state for the current window.
  std::size_t insert_account(std::uint64_t h, std::uint64_t window) noexcept {
    spin_guard g(new_account_);
    if (accounts_live_.load(std::memory_order_relaxed) >= opts_.account_capacity) {
      // After a sweep in this window every account left has state in it, so
      // a second sweep in the same window could free nothing.
      if (swept_window_ != window) {
        drop_expired_accounts(window);
        swept_window_ = window;
      }
      if (accounts_live_.load(std::memory_order_relaxed) >= opts_.account_capacity) return npos;
    }
    for (std::size_t d = 0;; ++d) {  // fewer than half the slots hold accounts
      const std::size_t at = (h + d) & account_mask_;
      const std::uint64_t k = account_keys_[at].load(std::memory_order_relaxed);
      if (k != empty_key && k != tomb_key) continue;
      account_slot& st = accounts_[at];
      detail::spin_lock(st.busy);  // at most a look-up about to find the key gone
      st.window = window;
      st.notional = 0;
      st.orders = 0;
      raise_max(account_probe_, d);
      accounts_live_.fetch_add(1, std::memory_order_relaxed);
      account_keys_[at].store(h, std::memory_order_release);
      return at;
    }
  }
  void drop_expired_accounts(std::uint64_t window) noexcept {
    for (std::size_t at = 0; at <= account_mask_; ++at) {
      const std::uint64_t k = account_keys_[at].load(std::memory_order_relaxed);
      if (k == empty_key || k == tomb_key) continue;
      account_slot& st = accounts_[at];
      detail::spin_lock(st.busy);
      if (account_keys_[at].load(std::memory_order_relaxed) == k && st.window < window) {
        account_keys_[at].store(tomb_key, std::memory_order_release);
        accounts_live_.fetch_sub(1, std::memory_order_relaxed);
      }
      detail::spin_unlock(st.busy);
    }
  }
  // Releases the account's slot unchanged; a slot inserted for this order
  // is given back.
  void unlock_account(std::size_t at, bool fresh) noexcept {
    if (fresh) {
      account_keys_[at].store(tomb_key, std::memory_order_release);
      accounts_live_.fetch_sub(1, std::memory_order_relaxed);
    }
    detail::spin_unlock(accounts_[at].busy);
  }

  // Duplicate ids: {hash, accepted_at} pairs claimed and reclaimed by 16-byte
  // CAS. Only the holder of an account's stripe inserts that account's ids,
  // so reading its own id's pair key, time, key again cannot mix two pairs.
  bool expired(std::uint64_t accepted_at, std::uint64_t now) const noexcept {
    return now >= accepted_at && now - accepted_at >= opts_.duplicate_window_ns;
  }
  bool duplicate_live(std::uint64_t hd, std::uint64_t now, std::uint64_t* age) const noexcept {
    const std::size_t limit = duplicate_probe_.load(std::memory_order_acquire);
    for (std::size_t d = 0; d <= limit; ++d) {
      const detail::pair_slot& s = duplicates_[(hd + d) & duplicate_mask_];
      const std::uint64_t k = detail::load_key(s);
      if (k == empty_key) return false;
      if (k != hd) continue;
      const std::uint64_t t = detail::load_value(s);
      if (detail::load_key(s) != hd || expired(t, now)) continue;
      *age = now > t ? now - t : 0;
      return true;
    }
    return false;
  }
  // Remembers hd as accepted at now; false when duplicate_capacity ids are
  // all still inside their window.
  bool remember(std::uint64_t hd, std::uint64_t now) noexcept {
    for (int attempt = 0; attempt < 2; ++attempt) {
      std::size_t d = 0;
      while (d <= duplicate_mask_) {
        detail::pair_slot& s = duplicates_[(hd + d) & duplicate_mask_];
        const std::uint64_t k = detail::load_key(s);
        const std::uint64_t t = detail::load_value(s);
        if (k == empty_key || k == tomb_key) {
          if (!reserve(duplicates_live_, opts_.duplicate_capacity)) break;
          raise_max(duplicate_probe_, d);
          if (detail::cas_pair(s, k, t, hd, now)) return true;
          duplicates_live_.fetch_sub(1, std::memory_order_relaxed);
          continue;  // the slot changed under us: read it again
        }
        if (expired(t, now) && detail::load_key(s) == k) {
          raise_max(duplicate_probe_, d);
          if (detail::cas_pair(s, k, t, hd, now)) return true;
          continue;
        }
        ++d;
      }
      if (!drop_expired_duplicates(now)) return false;
    }
    return false;
  }
  // Tombstones every expired id; false if that cannot have made room.
  bool drop_expired_duplicates(std::uint64_t now) noexcept {
    if (now < full_until_.load(std::memory_order_acquire)) return false;
    spin_guard g(duplicate_sweep_);
    std::uint64_t freed = 0;
    std::uint64_t next = ~std::uint64_t{0};
    for (std::size_t at = 0; at <= duplicate_mask_; ++at) {
      detail::pair_slot& s = duplicates_[at];
      const std::uint64_t k = detail::load_key(s);
      if (k == empty_key || k == tomb_key) continue;
      const std::uint64_t t = detail::load_value(s);
      if (detail::load_key(s) != k) {
        next = 0;  // changed while read: claim no time without expiries
        continue;
      }
      if (expired(t, now)) {
        if (detail::cas_pair(s, k, t, tomb_key, 0)) {
          duplicates_live_.fetch_sub(1, std::memory_order_relaxed);
          ++freed;
        }
      } else {
        const std::uint64_t ends = t > ~std::uint64_t{0} - opts_.duplicate_window_ns
                                       ? ~std::uint64_t{0}
                                       : t + opts_.duplicate_window_ns;
        next = std::min(next, ends);
      }
    }
    // Full of live ids: none can expire before the earliest window ends.
    full_until_.store(freed == 0 ? next : 0, std::memory_order_release);
    return freed != 0 ||
           duplicates_live_.load(std::memory_order_relaxed) < opts_.duplicate_capacity;
  }

  explicit risk_checker(const risk_options& o)
      : opts_(o),
        account_limits_(std::isfinite(o.account_max_notional) ||
                        o.account_max_orders != std::numeric_limits<std::uint64_t>::max()),
        account_kill_(o.kill_switch_capacity),
        instrument_kill_(o.kill_switch_capacity),
        stripes_(std::make_unique<stripe[]>(stripe_count)) {
    if (account_limits_) {
      const std::size_t n = table_size(o.account_capacity);
      account_mask_ = n - 1;
      account_keys_ = std::make_unique<std::atomic<std::uint64_t>[]>(n);
      accounts_ = std::make_unique<account_slot[]>(n);
    }
    if (o.duplicate_window_ns != 0) {
      const std::size_t n = table_size(o.duplicate_capacity);
      duplicate_mask_ = n - 1;
      duplicates_ = std::make_unique<detail::pair_slot[]>(n);
    }
  }

  struct alignas(64) stripe {
    std::atomic<bool> busy{false};
  };

  risk_options opts_;
  bool account_limits_;
  std::atomic<bool> global_kill_{false};
  key_set account_kill_;
  key_set instrument_kill_;
  std::mutex control_;  // engage, release, set_kill_listener
  kill_listener_fn listener_ = nullptr;
  void* listener_user_ = nullptr;

  std::unique_ptr<stripe[]> stripes_;

  std::size_t account_mask_ = 0;
  std::unique_ptr<std::atomic<std::uint64_t>[]> account_keys_;
  std::unique_ptr<account_slot[]> accounts_;
  std::atomic<std::size_t> account_probe_{0};
  std::atomic<std::uint64_t> accounts_live_{0};
  std::atomic<bool> new_account_{false};
  std::uint64_t swept_window_ = ~std::uint64_t{0};  // under new_account_

  std::size_t duplicate_mask_ = 0;
  std::unique_ptr<detail::pair_slot[]> duplicates_;
  std::atomic<std::size_t> duplicate_probe_{0};
  std::atomic<std::uint64_t> duplicates_live_{0};
  std::atomic<bool> duplicate_sweep_{false};
  std::atomic<std::uint64_t> full_until_{0};

  mutable detail::striped_counters<risk_reason_count> stats_;
};

}  // namespace tollgate
