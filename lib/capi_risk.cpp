// The C ABI of the pre-trade risk checks.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <string_view>
#include <vector>

#include "capi_common.hpp"
#include "capi_handles.hpp"
#include "tollgate/price_cache.hpp"
#include "tollgate/risk.hpp"
#include "tollgate/tollgate.h"

using tollgate::capi::bytes_ok;
using tollgate::capi::fail;
using tollgate::capi::from_status;
using tollgate::capi::guarded;
using tollgate::capi::live;
using tollgate::capi::read_options;
using tollgate::capi::set_error;
using tollgate::capi::unref;
using tollgate::capi::view;

struct tg_risk_checker : tollgate::capi::handle_base {
  tg_risk_checker() noexcept : handle_base(tollgate::capi::tag_risk_checker) {}
  ~tg_risk_checker() {
    impl.reset();  // before the cache it reads
    if (prices != nullptr) unref(prices);
  }
  tg_risk_checker(const tg_risk_checker&) = delete;
  tg_risk_checker& operator=(const tg_risk_checker&) = delete;
  std::unique_ptr<tollgate::risk_checker> impl;
  tg_price_cache* prices = nullptr;
  tollgate::capi::callback_slot<tg_kill_switch_event_fn> callback;
};

static_assert(sizeof(tg_risk_options) == 120 && offsetof(tg_risk_options, on_no_reference) == 4 &&
              offsetof(tg_risk_options, max_reference_age_ns) == 8 &&
              offsetof(tg_risk_options, max_quantity) == 16 &&
              offsetof(tg_risk_options, max_notional) == 24 &&
              offsetof(tg_risk_options, collar_unit) == 32 &&
              offsetof(tg_risk_options, reserved) == 36 &&
              offsetof(tg_risk_options, collar_width) == 40 &&
              offsetof(tg_risk_options, collar_tick_size) == 48 &&
              offsetof(tg_risk_options, period_ns) == 56 &&
              offsetof(tg_risk_options, account_max_notional) == 64 &&
              offsetof(tg_risk_options, account_max_orders) == 72 &&
              offsetof(tg_risk_options, account_capacity) == 80 &&
              offsetof(tg_risk_options, duplicate_window_ns) == 88 &&
              offsetof(tg_risk_options, duplicate_capacity) == 96 &&
              offsetof(tg_risk_options, kill_switch_capacity) == 104 &&
              offsetof(tg_risk_options, seed) == 112);
static_assert(sizeof(tg_risk_order) == 72 && offsetof(tg_risk_order, account_len) == 8 &&
              offsetof(tg_risk_order, instrument) == 16 &&
              offsetof(tg_risk_order, instrument_len) == 24 &&
              offsetof(tg_risk_order, client_order_id) == 32 &&
              offsetof(tg_risk_order, client_order_id_len) == 40 &&
              offsetof(tg_risk_order, side) == 48 && offsetof(tg_risk_order, reserved) == 52 &&
              offsetof(tg_risk_order, quantity) == 56 &&
              offsetof(tg_risk_order, limit_price) == 64);
static_assert(sizeof(tg_risk_decision) == 32 && offsetof(tg_risk_decision, reason) == 4 &&
              offsetof(tg_risk_decision, limit) == 8 &&
              offsetof(tg_risk_decision, observed) == 16 &&
              offsetof(tg_risk_decision, reference) == 24);
static_assert(sizeof(tg_kill_switch_event) == 32 && offsetof(tg_kill_switch_event, engaged) == 4 &&
              offsetof(tg_kill_switch_event, key_len) == 8 &&
              offsetof(tg_kill_switch_event, key) == 16 &&
              offsetof(tg_kill_switch_event, now_ns) == 24);
static_assert(sizeof(tg_risk_stats) == 40 * 8 && offsetof(tg_risk_stats, decisions) == 24 &&
              offsetof(tg_risk_stats, accounts) == 24 + 32 * 8 &&
              offsetof(tg_risk_stats, global_kill) == 24 + 36 * 8);
static_assert(TG_RISK_REASON_COUNT == tollgate::risk_reason_count && TG_RISK_REASON_COUNT <= 32 &&
              TG_RISK_DUPLICATE_CAPACITY ==
                  static_cast<int>(tollgate::risk_reason::duplicate_capacity) &&
              TG_RISK_NO_REFERENCE_PRICE ==
                  static_cast<int>(tollgate::risk_reason::no_reference_price) &&
              TG_RISK_KILL_SWITCH_INSTRUMENT ==
                  static_cast<int>(tollgate::risk_reason::kill_switch_instrument));
static_assert(TG_COLLAR_TICKS == static_cast<int>(tollgate::collar_unit::ticks) &&
              TG_COLLAR_BPS == static_cast<int>(tollgate::collar_unit::bps) &&
              TG_NO_REFERENCE_ALLOW == static_cast<int>(tollgate::no_reference_policy::allow) &&
              TG_KILL_ACCOUNT == static_cast<int>(tollgate::kill_scope::account) &&
              TG_KILL_INSTRUMENT == static_cast<int>(tollgate::kill_scope::instrument) &&
              TG_SIDE_SELL == static_cast<int>(tollgate::side::sell));

namespace {

constexpr std::size_t risk_options_v1 = sizeof(tg_risk_options);

// The checker whose kill callback this thread is running. While it runs no
// switch of any checker may change from this thread: its own would deadlock
// on the checker's lock, another's could through a cycle of callbacks.
thread_local const tg_risk_checker* notifying = nullptr;

bool live_checker(const tg_risk_checker* c) noexcept {
  return live(c, tollgate::capi::tag_risk_checker);
}

// The order's fields as the core sees them; false for what the C ABI alone
// refuses (a NULL string with a length, an unknown side, reserved bits).
bool order_ok(const tg_risk_order& o) noexcept {
  return bytes_ok(o.account, o.account_len) && bytes_ok(o.instrument, o.instrument_len) &&
         bytes_ok(o.client_order_id, o.client_order_id_len) &&
         (o.side == TG_SIDE_BUY || o.side == TG_SIDE_SELL) && o.reserved == 0;
}

tollgate::risk_order core_order(const tg_risk_order& o) noexcept {
  tollgate::risk_order r;
  r.account = view(o.account, o.account_len);
  r.instrument = view(o.instrument, o.instrument_len);
  r.client_order_id = view(o.client_order_id, o.client_order_id_len);
  r.s = static_cast<tollgate::side>(o.side);
  r.quantity = o.quantity;
  r.limit_price = o.limit_price;
  return r;
}

void write(const tollgate::risk_decision& d, tg_risk_decision* out) noexcept {
  out->allowed = d.allowed ? 1 : 0;
  out->reason = static_cast<int32_t>(d.reason);
  out->limit = d.limit;
  out->observed = d.observed;
  out->reference = d.reference;
}

void trampoline(void* user, const tollgate::kill_switch_event& ev) {
  const auto* h = static_cast<const tg_risk_checker*>(user);
  const auto* cb = h->callback.get();
  if (cb == nullptr) return;
  const tg_kill_switch_event c{static_cast<int32_t>(ev.scope),       ev.engaged ? 1 : 0,
                               static_cast<uint32_t>(ev.key.size()), 0,
                               ev.key.empty() ? "" : ev.key.data(),  ev.now_ns};
  const tg_risk_checker* outer = notifying;
  notifying = h;
  cb->fn(cb->user, &c);
  notifying = outer;
}

bool scope_ok(int scope) noexcept {
  return scope == TG_KILL_GLOBAL || scope == TG_KILL_ACCOUNT || scope == TG_KILL_INSTRUMENT;
}

int set_kill(tg_risk_checker* checker, int scope, const void* key, size_t key_len, uint64_t now_ns,
             bool on, tg_error* err) {
  return guarded(err, [&]() -> int {
    if (!live_checker(checker))
      return fail(err, TG_EINVAL, "checker is not a live tg_risk_checker");
    if (!scope_ok(scope)) return fail(err, TG_EINVAL, "scope must be TG_KILL_*");
    if (notifying != nullptr) {
      return fail(err, TG_ESTATE, "a kill callback cannot engage or release kill switches");
    }
    if (scope != TG_KILL_GLOBAL &&
        (key == nullptr || key_len == 0 || key_len > tollgate::risk_checker::max_key)) {
      return fail(err, TG_EINVAL, "a kill switch key is 1..32 bytes");
    }
    const auto s = static_cast<tollgate::kill_scope>(scope);
    const std::string_view k = scope == TG_KILL_GLOBAL ? std::string_view() : view(key, key_len);
    return from_status(
        on ? checker->impl->engage(s, k, now_ns) : checker->impl->release(s, k, now_ns), err);
  });
}

}  // namespace

extern "C" {

const char* tg_risk_reason_name(int reason) {
  if (reason < 0 || reason >= TG_RISK_REASON_COUNT) return "unknown";
  return tollgate::risk_reason_name(static_cast<tollgate::risk_reason>(reason));
}

void tg_risk_options_init(tg_risk_options* opts) {
  if (opts == nullptr) return;
  const tollgate::risk_options d;
  std::memset(static_cast<void*>(opts), 0, sizeof *opts);
  opts->struct_size = sizeof *opts;
  opts->on_no_reference = static_cast<uint32_t>(d.on_no_reference);
  opts->max_reference_age_ns = d.max_reference_age_ns;
  opts->max_quantity = d.max_quantity;
  opts->max_notional = d.max_notional;
  opts->collar_unit = static_cast<uint32_t>(d.collar);
  opts->collar_width = d.collar_width;
  opts->collar_tick_size = d.collar_tick_size;
  opts->period_ns = d.period_ns;
  opts->account_max_notional = d.account_max_notional;
  opts->account_max_orders = d.account_max_orders;
  opts->account_capacity = d.account_capacity;
  opts->duplicate_window_ns = d.duplicate_window_ns;
  opts->duplicate_capacity = d.duplicate_capacity;
  opts->kill_switch_capacity = d.kill_switch_capacity;
  opts->seed = 0;
}

int tg_risk_checker_new(const tg_risk_options* opts, tg_price_cache* prices, tg_risk_checker** out,
                        tg_error* err) {
  return guarded(err, [&]() -> int {
    if (out == nullptr) return fail(err, TG_EINVAL, "out is NULL");
    tg_risk_options o;
    tg_risk_options_init(&o);
    if (int rc = read_options(opts, risk_options_v1, &o, err); rc != TG_OK) return rc;
    if (o.reserved != 0) return fail(err, TG_EINVAL, "reserved must be 0");
    if (prices != nullptr && !live(prices, tollgate::capi::tag_price_cache)) {
      return fail(err, TG_EINVAL, "prices is not a live tg_price_cache");
    }
    tollgate::risk_options ro;
    ro.prices = prices != nullptr ? prices->impl.get() : nullptr;
    ro.on_no_reference = static_cast<tollgate::no_reference_policy>(o.on_no_reference);
    ro.max_reference_age_ns = o.max_reference_age_ns;
    ro.max_quantity = o.max_quantity;
    ro.max_notional = o.max_notional;
    ro.collar = static_cast<tollgate::collar_unit>(o.collar_unit);
    ro.collar_width = o.collar_width;
    ro.collar_tick_size = o.collar_tick_size;
    ro.period_ns = o.period_ns;
    ro.account_max_notional = o.account_max_notional;
    ro.account_max_orders = o.account_max_orders;
    ro.account_capacity = static_cast<std::size_t>(o.account_capacity);
    ro.duplicate_window_ns = o.duplicate_window_ns;
    ro.duplicate_capacity = static_cast<std::size_t>(o.duplicate_capacity);
    ro.kill_switch_capacity = static_cast<std::size_t>(o.kill_switch_capacity);
    if (o.seed != 0) ro.seed = o.seed;
    auto made = tollgate::risk_checker::create(ro);
    if (!made.ok()) return from_status(made.status(), err);
    auto h = std::make_unique<tg_risk_checker>();
    h->impl = std::move(*made);
    h->impl->set_kill_listener(&trampoline, h.get());
    if (prices != nullptr) {
      prices->refs.fetch_add(1, std::memory_order_relaxed);
      h->prices = prices;
    }
    *out = h.release();
    set_error(err, TG_OK, "");
    return TG_OK;
  });
}

void tg_risk_checker_free(tg_risk_checker* checker) {
  tollgate::capi::release(checker, tollgate::capi::tag_risk_checker);
}

int tg_risk_check(tg_risk_checker* checker, const tg_risk_order* order, uint64_t now_ns,
                  tg_risk_decision* out) {
  return guarded(nullptr, [&]() -> int {
    if (!live_checker(checker) || order == nullptr || out == nullptr || !order_ok(*order)) {
      return TG_EINVAL;
    }
    write(checker->impl->check(core_order(*order), now_ns), out);
    return TG_OK;
  });
}

int tg_risk_check_many(tg_risk_checker* checker, const tg_risk_order* orders, size_t n,
                       uint64_t now_ns, tg_risk_decision* out) {
  return guarded(nullptr, [&]() -> int {
    if (!live_checker(checker)) return TG_EINVAL;
    if (n == 0) return TG_OK;
    if (orders == nullptr || out == nullptr) return TG_EINVAL;
    for (size_t i = 0; i < n; ++i) {
      if (!order_ok(orders[i])) return TG_EINVAL;
    }
    for (size_t i = 0; i < n; ++i)
      write(checker->impl->check(core_order(orders[i]), now_ns), &out[i]);
    return TG_OK;
  });
}

int tg_risk_kill_engage(tg_risk_checker* checker, int scope, const void* key, size_t key_len,
                        uint64_t now_ns, tg_error* err) {
  return set_kill(checker, scope, key, key_len, now_ns, true, err);
}

int tg_risk_kill_release(tg_risk_checker* checker, int scope, const void* key, size_t key_len,
                         uint64_t now_ns, tg_error* err) {
  return set_kill(checker, scope, key, key_len, now_ns, false, err);
}

int tg_risk_kill_engaged(const tg_risk_checker* checker, int scope, const void* key, size_t key_len,
                         int* engaged) {
  return guarded(nullptr, [&]() -> int {
    if (!live_checker(checker) || engaged == nullptr || !scope_ok(scope)) return TG_EINVAL;
    if (scope != TG_KILL_GLOBAL &&
        (key == nullptr || key_len == 0 || key_len > tollgate::risk_checker::max_key)) {
      return TG_EINVAL;
    }
    const std::string_view k = scope == TG_KILL_GLOBAL ? std::string_view() : view(key, key_len);
    *engaged = checker->impl->engaged(static_cast<tollgate::kill_scope>(scope), k) ? 1 : 0;
    return TG_OK;
  });
}

int tg_risk_set_kill_callback(tg_risk_checker* checker, tg_kill_switch_event_fn fn, void* user) {
  return guarded(nullptr, [&]() -> int {
    if (!live_checker(checker)) return TG_EINVAL;
    checker->callback.set(fn, user);
    return TG_OK;
  });
}

int tg_risk_stats_get(const tg_risk_checker* checker, tg_risk_stats* out) {
  return guarded(nullptr, [&]() -> int {
    if (!live_checker(checker) || out == nullptr) return TG_EINVAL;
    const tollgate::risk_stats s = checker->impl->stats();
    std::memset(static_cast<void*>(out), 0, sizeof *out);
    out->checked = s.checked;
    out->allowed = s.allowed;
    out->rejected = s.rejected;
    for (std::size_t i = 0; i < tollgate::risk_reason_count; ++i)
      out->decisions[i] = s.decisions[i];
    out->accounts = s.accounts;
    out->duplicate_ids = s.duplicate_ids;
    out->killed_accounts = s.killed_accounts;
    out->killed_instruments = s.killed_instruments;
    out->global_kill = s.global_kill ? 1 : 0;
    return TG_OK;
  });
}

}  // extern "C"
