// The C ABI: argument checking, conversion, and the exception guard around
// the C++ core. Nothing here decides anything; the policies do.
#include <cmath>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "capi_common.hpp"
#include "capi_handles.hpp"
#include "tollgate/breaker.hpp"
#include "tollgate/clock.hpp"
#include "tollgate/limiter.hpp"
#include "tollgate/tollgate.h"

using tollgate::capi::fail;
using tollgate::capi::from_status;
using tollgate::capi::guarded;
using tollgate::capi::live;
using tollgate::capi::read_options;
using tollgate::capi::set_error;
using tollgate::capi::unref;

// The layouts below are the ABI. Changing one is a break: add, never edit.
static_assert(sizeof(tg_error) == 4 + TG_ERROR_MESSAGE_SIZE);
static_assert(sizeof(tg_tier) == 24 && offsetof(tg_tier, rate) == 8 &&
              offsetof(tg_tier, burst) == 16);
static_assert(sizeof(tg_limiter_options) == 56 && offsetof(tg_limiter_options, on_full) == 4 &&
              offsetof(tg_limiter_options, capacity) == 8 &&
              offsetof(tg_limiter_options, tiers) == 16 &&
              offsetof(tg_limiter_options, tier_count) == 24 &&
              offsetof(tg_limiter_options, shadow) == 28 &&
              offsetof(tg_limiter_options, multiplier) == 32 &&
              offsetof(tg_limiter_options, parent) == 40 &&
              offsetof(tg_limiter_options, hash_seed) == 48);
static_assert(sizeof(tg_limit_decision) == 32 && offsetof(tg_limit_decision, reason) == 4 &&
              offsetof(tg_limit_decision, retry_after_ns) == 8 &&
              offsetof(tg_limit_decision, remaining) == 16 &&
              offsetof(tg_limit_decision, flags) == 24);
static_assert(sizeof(tg_reservation) == 32 && offsetof(tg_reservation, own_ns) == 8 &&
              offsetof(tg_reservation, cost) == 16 && offsetof(tg_reservation, tier) == 24 &&
              offsetof(tg_reservation, flags) == 28);
static_assert(sizeof(tg_limiter_stats) == 64);
static_assert(sizeof(tg_breaker_options) == 88 && offsetof(tg_breaker_options, window_type) == 4 &&
              offsetof(tg_breaker_options, window_size) == 8 &&
              offsetof(tg_breaker_options, minimum_calls) == 12 &&
              offsetof(tg_breaker_options, bucket_ns) == 16 &&
              offsetof(tg_breaker_options, failure_rate_threshold) == 24 &&
              offsetof(tg_breaker_options, slow_rate_threshold) == 32 &&
              offsetof(tg_breaker_options, slow_call_ns) == 40 &&
              offsetof(tg_breaker_options, open_ns) == 48 &&
              offsetof(tg_breaker_options, backoff_multiplier) == 56 &&
              offsetof(tg_breaker_options, max_open_ns) == 64 &&
              offsetof(tg_breaker_options, half_open_probes) == 72 &&
              offsetof(tg_breaker_options, max_in_flight) == 76 &&
              offsetof(tg_breaker_options, max_half_open_ns) == 80);
static_assert(sizeof(tg_breaker_permit) == 32 && offsetof(tg_breaker_permit, allowed) == 8 &&
              offsetof(tg_breaker_permit, reason) == 12 &&
              offsetof(tg_breaker_permit, state) == 16 &&
              offsetof(tg_breaker_permit, retry_after_ns) == 24);
static_assert(sizeof(tg_breaker_event) == 40 && offsetof(tg_breaker_event, now_ns) == 8 &&
              offsetof(tg_breaker_event, failure_rate) == 16 &&
              offsetof(tg_breaker_event, slow_rate) == 24 &&
              offsetof(tg_breaker_event, open_ns) == 32);
static_assert(sizeof(tg_breaker_stats) == 104 && offsetof(tg_breaker_stats, in_flight) == 72 &&
              offsetof(tg_breaker_stats, state) == 76 &&
              offsetof(tg_breaker_stats, failure_rate) == 80 &&
              offsetof(tg_breaker_stats, window_calls) == 96);

// The C and C++ enumerations are the same numbers.
static_assert(static_cast<int>(tollgate::limit_reason::capacity) == TG_LIMIT_REASON_CAPACITY);
static_assert(static_cast<int>(tollgate::limit_reason::parent) == TG_LIMIT_REASON_PARENT);
static_assert(static_cast<int>(tollgate::limit_reason::cost_exceeds_burst) ==
              TG_LIMIT_REASON_COST_EXCEEDS_BURST);
static_assert(static_cast<int>(tollgate::breaker_state::metrics_only) == TG_BREAKER_METRICS_ONLY);
static_assert(static_cast<int>(tollgate::breaker_reason::bulkhead_full) ==
              TG_BREAKER_REASON_BULKHEAD_FULL);
static_assert(static_cast<int>(tollgate::outcome::ignored) == TG_OUTCOME_IGNORED);
static_assert(tollgate::retry_never == TG_RETRY_NEVER);

namespace {

// Size of the first published version of each options struct.
constexpr std::size_t limiter_options_v1 = offsetof(tg_limiter_options, hash_seed);  // 0.1.0
constexpr std::size_t breaker_options_v1 = sizeof(tg_breaker_options);

bool live_limiter(const tg_limiter* l) noexcept {
  return live(l, tollgate::capi::tag_limiter) && l->impl != nullptr;
}
bool live_breaker(const tg_breaker* b) noexcept {
  return live(b, tollgate::capi::tag_breaker) && b->impl != nullptr;
}

void to_c(const tollgate::limit_decision& d, tg_limit_decision* out) noexcept {
  out->allowed = d.allowed ? 1 : 0;
  out->reason = static_cast<int32_t>(d.reason);
  out->retry_after_ns = d.retry_after_ns;
  out->remaining = d.remaining;
  out->flags = d.shadow ? TG_LIMIT_FLAG_SHADOW : 0u;
  out->reserved = 0;
}

void to_c(const tollgate::permit& p, tg_breaker_permit* out) noexcept {
  out->token = p.token;
  out->allowed = p.allowed ? 1 : 0;
  out->reason = static_cast<int32_t>(p.reason);
  out->state = static_cast<int32_t>(p.state);
  out->reserved = 0;
  out->retry_after_ns = p.retry_after_ns;
}

tollgate::permit from_c(const tg_breaker_permit& p) noexcept {
  tollgate::permit r;
  r.token = p.token;
  r.allowed = p.allowed != 0;
  return r;
}

// Checks shared by every keyed decision call.
int check_request(const tg_limiter* lim, const void* key, size_t key_len, uint32_t tier,
                  uint32_t cost, const void* out) noexcept {
  if (!live_limiter(lim) || out == nullptr) return TG_EINVAL;
  if (key == nullptr && key_len != 0) return TG_EINVAL;
  if (cost == 0 || tier >= lim->impl->tier_count()) return TG_EINVAL;
  return TG_OK;
}

std::string_view key_view(const void* key, size_t len) noexcept {
  return len == 0 ? std::string_view() : std::string_view(static_cast<const char*>(key), len);
}

bool valid_outcome(int o) noexcept {
  return o == TG_OUTCOME_SUCCESS || o == TG_OUTCOME_FAILURE || o == TG_OUTCOME_IGNORED;
}

bool valid_state(int s) noexcept { return s >= TG_BREAKER_CLOSED && s <= TG_BREAKER_METRICS_ONLY; }

void event_trampoline(void* user, const tollgate::breaker_event& ev) {
  const auto* cb = static_cast<const tg_breaker::callback*>(user);
  const tg_breaker_event c{static_cast<int32_t>(ev.from),
                           static_cast<int32_t>(ev.to),
                           ev.now_ns,
                           ev.failure_rate,
                           ev.slow_rate,
                           ev.open_ns};
  cb->fn(cb->user, &c);
}

}  // namespace

extern "C" {

unsigned tg_version_number(void) { return TG_VERSION_NUMBER; }
const char* tg_version_string(void) { return TG_VERSION_STRING; }

const char* tg_status_str(int status) {
  switch (status) {
    case TG_OK:
      return "TG_OK";
    case TG_EINVAL:
      return "TG_EINVAL";
    case TG_ENOMEM:
      return "TG_ENOMEM";
    case TG_ERANGE:
      return "TG_ERANGE";
    case TG_EVERSION:
      return "TG_EVERSION";
    case TG_ETOOSMALL:
      return "TG_ETOOSMALL";
    case TG_ENOTFOUND:
      return "TG_ENOTFOUND";
    case TG_ESTATE:
      return "TG_ESTATE";
    case TG_EINTERNAL:
      return "TG_EINTERNAL";
    case TG_EFULL:
      return "TG_EFULL";
    case TG_EDROPPED:
      return "TG_EDROPPED";
    case TG_EIO:
      return "TG_EIO";
    default:
      return "TG_UNKNOWN";
  }
}

uint64_t tg_now_ns(void) { return tollgate::now_ns(); }

/* ---------------------------------------------------------------- limiter */

void tg_limiter_options_init(tg_limiter_options* opts) {
  if (opts == nullptr) return;
  std::memset(static_cast<void*>(opts), 0, sizeof *opts);
  opts->struct_size = sizeof *opts;
  opts->on_full = TG_LIMITER_ON_FULL_REJECT;
  opts->capacity = 65536;
  opts->multiplier = 1.0;
}

int tg_limiter_new(const tg_limiter_options* opts, tg_limiter** out, tg_error* err) {
  return guarded(err, [&]() -> int {
    if (out == nullptr) return fail(err, TG_EINVAL, "out is NULL");
    tg_limiter_options o;
    tg_limiter_options_init(&o);
    if (int rc = read_options(opts, limiter_options_v1, &o, err); rc != TG_OK) return rc;
    if (o.on_full != TG_LIMITER_ON_FULL_REJECT && o.on_full != TG_LIMITER_ON_FULL_OVERFLOW) {
      return fail(err, TG_EINVAL, "on_full must be TG_LIMITER_ON_FULL_REJECT or _OVERFLOW");
    }
    if (o.shadow > 1) return fail(err, TG_EINVAL, "shadow must be 0 or 1");
    if (o.parent != nullptr && !live_limiter(o.parent)) {
      return fail(err, TG_EINVAL, "parent is not a live tg_limiter");
    }
    tollgate::limiter_options lo;
    lo.capacity = o.capacity;
    lo.on_full = o.on_full == TG_LIMITER_ON_FULL_OVERFLOW ? tollgate::on_full_policy::overflow
                                                          : tollgate::on_full_policy::reject;
    lo.shadow = o.shadow != 0;
    lo.multiplier = o.multiplier;
    lo.hash_seed = o.hash_seed;
    lo.parent = o.parent != nullptr ? o.parent->impl.get() : nullptr;
    if (o.tier_count != 0 || o.tiers != nullptr) {
      if (o.tiers == nullptr) return fail(err, TG_EINVAL, "tiers is NULL but tier_count > 0");
      if (o.tier_count == 0) return fail(err, TG_EINVAL, "tier_count is 0 but tiers is set");
      if (o.tier_count > tollgate::limiter::max_tiers) {
        return fail(err, TG_EINVAL, "tier_count must be 1..64");
      }
      lo.tiers.clear();
      for (uint32_t i = 0; i < o.tier_count; ++i) {
        const tg_tier& t = o.tiers[i];
        if (t.name == nullptr) {
          return fail(err, TG_EINVAL, "tiers[" + std::to_string(i) + "].name is NULL");
        }
        if (t.reserved != 0) {
          return fail(err, TG_EINVAL, "tiers[" + std::to_string(i) + "].reserved must be 0");
        }
        lo.tiers.push_back(
            tollgate::tier{std::string(t.name, strnlen(t.name, 64)), t.rate, t.burst});
      }
    }
    auto made = tollgate::limiter::create(lo);
    if (!made.ok()) return from_status(made.status(), err);
    auto h = std::make_unique<tg_limiter>();
    h->impl = std::move(*made);
    if (o.parent != nullptr) {
      o.parent->refs.fetch_add(1, std::memory_order_relaxed);
      h->parent = o.parent;
    }
    *out = h.release();
    set_error(err, TG_OK, "");
    return TG_OK;
  });
}

void tg_limiter_free(tg_limiter* lim) { tollgate::capi::release(lim, tollgate::capi::tag_limiter); }

int tg_limiter_acquire(tg_limiter* lim, const void* key, size_t key_len, uint32_t tier,
                       uint32_t cost, uint64_t now_ns, tg_limit_decision* out) {
  return guarded(nullptr, [&]() -> int {
    if (int rc = check_request(lim, key, key_len, tier, cost, out); rc != TG_OK) return rc;
    to_c(lim->impl->acquire(key_view(key, key_len), tier, cost, now_ns), out);
    return TG_OK;
  });
}

int tg_limiter_peek(tg_limiter* lim, const void* key, size_t key_len, uint32_t tier, uint32_t cost,
                    uint64_t now_ns, tg_limit_decision* out) {
  return guarded(nullptr, [&]() -> int {
    if (int rc = check_request(lim, key, key_len, tier, cost, out); rc != TG_OK) return rc;
    to_c(lim->impl->peek(key_view(key, key_len), tier, cost, now_ns), out);
    return TG_OK;
  });
}

int tg_limiter_remaining(tg_limiter* lim, const void* key, size_t key_len, uint32_t tier,
                         uint64_t now_ns, uint64_t* out) {
  return guarded(nullptr, [&]() -> int {
    if (int rc = check_request(lim, key, key_len, tier, 1, out); rc != TG_OK) return rc;
    *out = lim->impl->remaining(key_view(key, key_len), tier, now_ns);
    return TG_OK;
  });
}

int tg_limiter_reserve(tg_limiter* lim, const void* key, size_t key_len, uint32_t tier,
                       uint32_t cost, uint64_t now_ns, tg_reservation* res,
                       tg_limit_decision* out) {
  return guarded(nullptr, [&]() -> int {
    if (res == nullptr) return TG_EINVAL;
    if (int rc = check_request(lim, key, key_len, tier, cost, out); rc != TG_OK) return rc;
    tollgate::reservation r;
    to_c(lim->impl->reserve(key_view(key, key_len), tier, cost, now_ns, &r), out);
    res->key_hash = r.key_hash;
    res->own_ns = r.own_ns;
    res->cost = r.cost;
    res->tier = r.tier;
    res->flags = r.flags;
    return TG_OK;
  });
}

int tg_limiter_cancel(tg_limiter* lim, const tg_reservation* res, uint64_t now_ns) {
  return guarded(nullptr, [&]() -> int {
    if (!live_limiter(lim) || res == nullptr) return TG_EINVAL;
    constexpr uint32_t known =
        (1u << (tollgate::limiter::res_took_shift + tollgate::limiter::max_depth)) - 1;
    if ((res->flags & ~known) != 0 || res->tier >= lim->impl->tier_count()) return TG_EINVAL;
    tollgate::reservation r;
    r.key_hash = res->key_hash;
    r.own_ns = res->own_ns;
    r.cost = res->cost;
    r.tier = res->tier;
    r.flags = res->flags;
    lim->impl->cancel(r, now_ns);
    return TG_OK;
  });
}

int tg_limiter_acquire_many(tg_limiter* lim, const uint8_t* keys, const uint32_t* key_offsets,
                            size_t n, const uint32_t* tiers, const uint32_t* costs, uint64_t now_ns,
                            tg_limit_decision* out) {
  return guarded(nullptr, [&]() -> int {
    if (!live_limiter(lim)) return TG_EINVAL;
    if (n == 0) return TG_OK;
    if (key_offsets == nullptr || out == nullptr) return TG_EINVAL;
    const uint32_t tier_count = lim->impl->tier_count();
    for (size_t i = 0; i < n; ++i) {
      if (key_offsets[i + 1] < key_offsets[i]) return TG_EINVAL;
      if (tiers != nullptr && tiers[i] >= tier_count) return TG_EINVAL;
      if (costs != nullptr && costs[i] == 0) return TG_EINVAL;
    }
    if (keys == nullptr && key_offsets[n] != key_offsets[0]) return TG_EINVAL;
    lim->impl->acquire_many(
        n,
        [&](size_t i) {
          const uint32_t b = key_offsets[i];
          return key_offsets[i + 1] == b ? std::string_view()
                                         : std::string_view(reinterpret_cast<const char*>(keys) + b,
                                                            key_offsets[i + 1] - b);
        },
        [&](size_t i) { return tiers != nullptr ? tiers[i] : 0u; },
        [&](size_t i) { return costs != nullptr ? costs[i] : 1u; }, now_ns,
        [&](size_t i, const tollgate::limit_decision& d) { to_c(d, &out[i]); });
    return TG_OK;
  });
}

int tg_limiter_set_multiplier(tg_limiter* lim, double multiplier, uint64_t now_ns) {
  if (!live_limiter(lim)) return TG_EINVAL;
  return guarded(
      nullptr, [&] { return from_status(lim->impl->set_multiplier(multiplier, now_ns), nullptr); });
}

int tg_limiter_get_multiplier(const tg_limiter* lim, double* out) {
  return guarded(nullptr, [&]() -> int {
    if (!live_limiter(lim) || out == nullptr) return TG_EINVAL;
    *out = lim->impl->multiplier();
    return TG_OK;
  });
}

int tg_limiter_set_shadow(tg_limiter* lim, int on) {
  return guarded(nullptr, [&]() -> int {
    if (!live_limiter(lim) || (on != 0 && on != 1)) return TG_EINVAL;
    lim->impl->set_shadow(on != 0);
    return TG_OK;
  });
}

int tg_limiter_hash_seed(const tg_limiter* lim, uint64_t* out) {
  if (!live_limiter(lim) || out == nullptr) return TG_EINVAL;
  *out = lim->impl->hash_seed();
  return TG_OK;
}

int tg_limiter_tier_index(const tg_limiter* lim, const char* name, uint32_t* out) {
  return guarded(nullptr, [&]() -> int {
    if (!live_limiter(lim) || name == nullptr || out == nullptr) return TG_EINVAL;
    const auto i = lim->impl->tier_index(std::string_view(name, strnlen(name, 64)));
    if (!i) return TG_ENOTFOUND;
    *out = *i;
    return TG_OK;
  });
}

int tg_limiter_stats_get(const tg_limiter* lim, tg_limiter_stats* out) {
  return guarded(nullptr, [&]() -> int {
    if (!live_limiter(lim) || out == nullptr) return TG_EINVAL;
    const tollgate::limiter_stats s = lim->impl->stats();
    out->admitted = s.admitted;
    out->rejected = s.rejected;
    out->shadow_rejected = s.shadow_rejected;
    out->capacity_rejected = s.capacity_rejected;
    out->evictions = s.evictions;
    out->keys = s.keys;
    out->capacity = s.slots;
    out->cancelled = s.cancelled;
    return TG_OK;
  });
}

/* ---------------------------------------------------------------- breaker */

void tg_breaker_options_init(tg_breaker_options* opts) {
  if (opts == nullptr) return;
  std::memset(static_cast<void*>(opts), 0, sizeof *opts);
  const tollgate::breaker_options d;
  opts->struct_size = sizeof *opts;
  opts->window_type = static_cast<uint32_t>(d.window);
  opts->window_size = d.window_size;
  opts->minimum_calls = d.minimum_calls;
  opts->bucket_ns = d.bucket_ns;
  opts->failure_rate_threshold = d.failure_rate_threshold;
  opts->slow_rate_threshold = d.slow_rate_threshold;
  opts->slow_call_ns = d.slow_call_ns;
  opts->open_ns = d.open_ns;
  opts->backoff_multiplier = d.backoff_multiplier;
  opts->max_open_ns = d.max_open_ns;
  opts->half_open_probes = d.half_open_probes;
  opts->max_in_flight = d.max_in_flight;
  opts->max_half_open_ns = d.max_half_open_ns;
}

int tg_breaker_new(const tg_breaker_options* opts, tg_breaker** out, tg_error* err) {
  return guarded(err, [&]() -> int {
    if (out == nullptr) return fail(err, TG_EINVAL, "out is NULL");
    tg_breaker_options o;
    tg_breaker_options_init(&o);
    if (int rc = read_options(opts, breaker_options_v1, &o, err); rc != TG_OK) return rc;
    if (o.window_type != TG_WINDOW_COUNT && o.window_type != TG_WINDOW_TIME) {
      return fail(err, TG_EINVAL, "window_type must be TG_WINDOW_COUNT or TG_WINDOW_TIME");
    }
    tollgate::breaker_options bo;
    bo.window = static_cast<tollgate::window_type>(o.window_type);
    bo.window_size = o.window_size;
    bo.minimum_calls = o.minimum_calls;
    bo.bucket_ns = o.bucket_ns;
    bo.failure_rate_threshold = o.failure_rate_threshold;
    bo.slow_rate_threshold = o.slow_rate_threshold;
    bo.slow_call_ns = o.slow_call_ns;
    bo.open_ns = o.open_ns;
    bo.backoff_multiplier = o.backoff_multiplier;
    bo.max_open_ns = o.max_open_ns;
    bo.half_open_probes = o.half_open_probes;
    bo.max_in_flight = o.max_in_flight;
    bo.max_half_open_ns = o.max_half_open_ns;
    auto made = tollgate::breaker::create(bo);
    if (!made.ok()) return from_status(made.status(), err);
    auto h = std::make_unique<tg_breaker>();
    h->impl = std::move(*made);
    *out = h.release();
    set_error(err, TG_OK, "");
    return TG_OK;
  });
}

void tg_breaker_free(tg_breaker* b) { tollgate::capi::release(b, tollgate::capi::tag_breaker); }

int tg_breaker_acquire(tg_breaker* b, uint64_t now_ns, tg_breaker_permit* out) {
  return guarded(nullptr, [&]() -> int {
    if (!live_breaker(b) || out == nullptr) return TG_EINVAL;
    to_c(b->impl->acquire(now_ns), out);
    return TG_OK;
  });
}

int tg_breaker_record(tg_breaker* b, const tg_breaker_permit* permit, int outcome,
                      uint64_t latency_ns, uint64_t now_ns) {
  return guarded(nullptr, [&]() -> int {
    if (!live_breaker(b) || permit == nullptr || !valid_outcome(outcome)) return TG_EINVAL;
    b->impl->record(from_c(*permit), static_cast<tollgate::outcome>(outcome), latency_ns, now_ns);
    return TG_OK;
  });
}

int tg_breaker_acquire_many(tg_breaker* b, size_t n, uint64_t now_ns, tg_breaker_permit* out) {
  return guarded(nullptr, [&]() -> int {
    if (!live_breaker(b)) return TG_EINVAL;
    if (n == 0) return TG_OK;
    if (out == nullptr) return TG_EINVAL;
    tollgate::breaker& br = *b->impl;
    for (size_t i = 0; i < n; ++i) to_c(br.acquire(now_ns), &out[i]);
    return TG_OK;
  });
}

int tg_breaker_record_many(tg_breaker* b, const tg_breaker_permit* permits, const int32_t* outcomes,
                           const uint64_t* latencies_ns, size_t n, uint64_t now_ns) {
  return guarded(nullptr, [&]() -> int {
    if (!live_breaker(b)) return TG_EINVAL;
    if (n == 0) return TG_OK;
    if (permits == nullptr || outcomes == nullptr) return TG_EINVAL;
    for (size_t i = 0; i < n; ++i) {
      if (!valid_outcome(outcomes[i])) return TG_EINVAL;
    }
    tollgate::breaker& br = *b->impl;
    for (size_t i = 0; i < n; ++i) {
      br.record(from_c(permits[i]), static_cast<tollgate::outcome>(outcomes[i]),
                latencies_ns != nullptr ? latencies_ns[i] : 0, now_ns);
    }
    return TG_OK;
  });
}

int tg_breaker_state(const tg_breaker* b, int* out) {
  return guarded(nullptr, [&]() -> int {
    if (!live_breaker(b) || out == nullptr) return TG_EINVAL;
    *out = static_cast<int>(b->impl->state());
    return TG_OK;
  });
}

int tg_breaker_transition(tg_breaker* b, int state, uint64_t now_ns) {
  return guarded(nullptr, [&]() -> int {
    if (!live_breaker(b) || !valid_state(state)) return TG_EINVAL;
    b->impl->transition(static_cast<tollgate::breaker_state>(state), now_ns);
    return TG_OK;
  });
}

int tg_breaker_set_event_callback(tg_breaker* b, tg_breaker_event_fn fn, void* user) {
  if (!live_breaker(b)) return TG_EINVAL;
  return guarded(nullptr, [&]() -> int {
    std::lock_guard<std::mutex> lock(b->callbacks_mu);
    if (fn == nullptr) {
      b->impl->set_listener(nullptr, nullptr);
      return TG_OK;
    }
    b->callbacks.push_back(std::make_unique<tg_breaker::callback>(tg_breaker::callback{fn, user}));
    b->impl->set_listener(&event_trampoline, b->callbacks.back().get());
    return TG_OK;
  });
}

int tg_breaker_stats_get(const tg_breaker* b, uint64_t now_ns, tg_breaker_stats* out) {
  return guarded(nullptr, [&]() -> int {
    if (!live_breaker(b) || out == nullptr) return TG_EINVAL;
    const tollgate::breaker_stats s = b->impl->stats(now_ns);
    out->admitted = s.admitted;
    out->rejected = s.rejected;
    out->bulkhead_rejected = s.bulkhead_rejected;
    out->successes = s.successes;
    out->failures = s.failures;
    out->slow_calls = s.slow_calls;
    out->ignored = s.ignored;
    out->transitions = s.transitions;
    out->would_open = s.would_open;
    out->in_flight = s.in_flight;
    out->state = static_cast<int32_t>(s.state);
    out->failure_rate = s.failure_rate;
    out->slow_rate = s.slow_rate;
    out->window_calls = s.window_calls;
    return TG_OK;
  });
}

}  // extern "C"
