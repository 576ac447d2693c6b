// The C ABI of the price cache.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "capi_common.hpp"
#include "capi_handles.hpp"
#include "tollgate/price_cache.hpp"
#include "tollgate/tollgate.h"

using tollgate::capi::fail;
using tollgate::capi::from_status;
using tollgate::capi::guarded;
using tollgate::capi::live;
using tollgate::capi::read_options;
using tollgate::capi::set_error;
using tollgate::capi::unref;
using tollgate::capi::view;

static_assert(sizeof(tg_price_cache_options) == 72 && offsetof(tg_price_cache_options, unit) == 4 &&
              offsetof(tg_price_cache_options, capacity) == 8 &&
              offsetof(tg_price_cache_options, max_payload) == 16 &&
              offsetof(tg_price_cache_options, reserved) == 20 &&
              offsetof(tg_price_cache_options, threshold) == 24 &&
              offsetof(tg_price_cache_options, tick_size) == 32 &&
              offsetof(tg_price_cache_options, max_age_ns) == 40 &&
              offsetof(tg_price_cache_options, vol_multiplier) == 48 &&
              offsetof(tg_price_cache_options, vol_alpha) == 56 &&
              offsetof(tg_price_cache_options, seed) == 64);
static_assert(sizeof(tg_cached_price) == 48 && offsetof(tg_cached_price, threshold) == 8 &&
              offsetof(tg_cached_price, feed_seq) == 16 &&
              offsetof(tg_cached_price, cached_at_ns) == 24 &&
              offsetof(tg_cached_price, age_ns) == 32 &&
              offsetof(tg_cached_price, payload_len) == 40);
static_assert(sizeof(tg_price_result) == 8 && offsetof(tg_price_result, reason) == 4);
static_assert(sizeof(tg_eviction_event) == 48 && offsetof(tg_eviction_event, key_len) == 4 &&
              offsetof(tg_eviction_event, key) == 8 &&
              offsetof(tg_eviction_event, cached_price) == 16 &&
              offsetof(tg_eviction_event, new_price) == 24 &&
              offsetof(tg_eviction_event, feed_seq) == 32 &&
              offsetof(tg_eviction_event, now_ns) == 40);
static_assert(sizeof(tg_price_cache_stats) == 14 * 8);
static_assert(TG_EVICT_REMOVED == static_cast<int>(tollgate::evict_reason::removed) &&
              TG_PRICE_REPLAY == static_cast<int>(tollgate::price_outcome::replay) &&
              TG_THRESHOLD_TICKS == static_cast<int>(tollgate::threshold_unit::ticks));

namespace {

constexpr std::size_t price_cache_options_v1 = sizeof(tg_price_cache_options);

bool live_cache(const tg_price_cache* c) noexcept {
  return live(c, tollgate::capi::tag_price_cache);
}

bool key_ok(const void* key, std::size_t len) noexcept {
  return key != nullptr && len >= 1 && len <= tollgate::price_cache::max_key;
}

bool price_ok(double p) noexcept { return std::isfinite(p) && p > 0; }

void trampoline(void* user, const tollgate::eviction_event& ev) {
  const auto* h = static_cast<const tg_price_cache*>(user);
  const auto* cb = h->callback.get();
  if (cb == nullptr) return;
  const tg_eviction_event c{static_cast<int32_t>(ev.reason),
                            static_cast<uint32_t>(ev.key.size()),
                            ev.key.data(),
                            ev.cached_price,
                            ev.cause.new_price,
                            ev.cause.feed_seq,
                            ev.cause.now_ns};
  cb->fn(cb->user, &c);
}

}  // namespace

extern "C" {

void tg_price_cache_options_init(tg_price_cache_options* opts) {
  if (opts == nullptr) return;
  const tollgate::price_cache_options d;
  std::memset(static_cast<void*>(opts), 0, sizeof *opts);
  opts->struct_size = sizeof *opts;
  opts->unit = TG_THRESHOLD_BPS;
  opts->capacity = d.capacity;
  opts->max_payload = d.max_payload;
  opts->threshold = d.threshold;
  opts->tick_size = d.tick_size;
  opts->max_age_ns = d.max_age_ns;
  opts->vol_multiplier = d.vol_multiplier;
  opts->vol_alpha = d.vol_alpha;
  opts->seed = 0;
}

int tg_price_cache_new(const tg_price_cache_options* opts, tg_price_cache** out, tg_error* err) {
  return guarded(err, [&]() -> int {
    if (out == nullptr) return fail(err, TG_EINVAL, "out is NULL");
    tg_price_cache_options o;
    tg_price_cache_options_init(&o);
    if (int rc = read_options(opts, price_cache_options_v1, &o, err); rc != TG_OK) return rc;
    if (o.reserved != 0) return fail(err, TG_EINVAL, "reserved must be 0");
    tollgate::price_cache_options po;
    po.capacity = static_cast<std::size_t>(o.capacity);
    po.max_payload = o.max_payload;
    po.unit = static_cast<tollgate::threshold_unit>(o.unit);
    po.threshold = o.threshold;
    po.tick_size = o.tick_size;
    po.max_age_ns = o.max_age_ns;
    po.vol_multiplier = o.vol_multiplier;
    po.vol_alpha = o.vol_alpha;
    if (o.seed != 0) po.seed = o.seed;
    auto made = tollgate::price_cache::create(po);
    if (!made.ok()) return from_status(made.status(), err);
    auto h = std::make_unique<tg_price_cache>();
    h->impl = std::move(*made);
    h->impl->set_listener(&trampoline, h.get());
    *out = h.release();
    set_error(err, TG_OK, "");
    return TG_OK;
  });
}

void tg_price_cache_free(tg_price_cache* cache) {
  tollgate::capi::release(cache, tollgate::capi::tag_price_cache);
}

int tg_price_cache_put(tg_price_cache* cache, const void* key, size_t key_len, double price,
                       uint64_t feed_seq, const void* payload, size_t payload_len, double threshold,
                       double tick_size, uint64_t now_ns, tg_error* err) {
  return guarded(err, [&]() -> int {
    if (!live_cache(cache)) return fail(err, TG_EINVAL, "cache is not a live tg_price_cache");
    if (!key_ok(key, key_len)) return fail(err, TG_EINVAL, "an instrument key is 1..32 bytes");
    if (!price_ok(price)) return fail(err, TG_EINVAL, "price must be finite and > 0");
    if (payload == nullptr && payload_len != 0) {
      return fail(err, TG_EINVAL, "payload is NULL but payload_len > 0");
    }
    const absl::Status st =
        cache->impl->put(view(key, key_len), price, feed_seq, view(payload, payload_len), now_ns,
                         tollgate::entry_limits{threshold, tick_size});
    return from_status(st, err);
  });
}

int tg_price_cache_get(const tg_price_cache* cache, const void* key, size_t key_len,
                       uint64_t now_ns, tg_cached_price* out, void* payload, size_t payload_cap,
                       int* hit) {
  return guarded(nullptr, [&]() -> int {
    if (!live_cache(cache) || hit == nullptr || !key_ok(key, key_len) ||
        (payload == nullptr && payload_cap != 0)) {
      return TG_EINVAL;
    }
    tollgate::cached_price c;
    const bool found = cache->impl->get(view(key, key_len), now_ns, &c, payload, payload_cap);
    *hit = found ? 1 : 0;
    if (found && out != nullptr) {
      out->price = c.price;
      out->threshold = c.threshold;
      out->feed_seq = c.feed_seq;
      out->cached_at_ns = c.cached_at_ns;
      out->age_ns = c.age_ns;
      out->payload_len = c.payload_len;
      out->reserved = 0;
    }
    return TG_OK;
  });
}

int tg_price_cache_on_price(tg_price_cache* cache, const void* key, size_t key_len, double price,
                            uint64_t feed_seq, uint64_t now_ns, tg_price_result* out) {
  return guarded(nullptr, [&]() -> int {
    if (!live_cache(cache) || out == nullptr || !key_ok(key, key_len) || !price_ok(price)) {
      return TG_EINVAL;
    }
    auto r = cache->impl->on_price(view(key, key_len), price, feed_seq, now_ns);
    if (!r.ok()) return TG_EINVAL;
    out->outcome = static_cast<int32_t>(r->outcome);
    out->reason = static_cast<int32_t>(r->reason);
    return TG_OK;
  });
}

int tg_price_cache_on_price_many(tg_price_cache* cache, const uint8_t* keys,
                                 const uint32_t* key_offsets, size_t n, const double* prices,
                                 const uint64_t* feed_seqs, uint64_t now_ns, tg_price_result* out) {
  return guarded(nullptr, [&]() -> int {
    if (!live_cache(cache)) return TG_EINVAL;
    if (n == 0) return TG_OK;
    if (keys == nullptr || key_offsets == nullptr || prices == nullptr || feed_seqs == nullptr ||
        out == nullptr) {
      return TG_EINVAL;
    }
    for (std::size_t i = 0; i < n; ++i) {
      if (key_offsets[i + 1] < key_offsets[i]) return TG_EINVAL;
      const std::size_t len = key_offsets[i + 1] - key_offsets[i];
      if (len == 0 || len > tollgate::price_cache::max_key || !price_ok(prices[i])) {
        return TG_EINVAL;
      }
    }
    for (std::size_t i = 0; i < n; ++i) {
      const std::string_view k(reinterpret_cast<const char*>(keys) + key_offsets[i],
                               key_offsets[i + 1] - key_offsets[i]);
      auto r = cache->impl->on_price(k, prices[i], feed_seqs[i], now_ns);
      out[i].outcome = static_cast<int32_t>(r.ok() ? r->outcome : tollgate::price_outcome::kept);
      out[i].reason = static_cast<int32_t>(r.ok() ? r->reason : tollgate::evict_reason::none);
    }
    return TG_OK;
  });
}

int tg_price_cache_remove(tg_price_cache* cache, const void* key, size_t key_len, uint64_t now_ns,
                          int* removed) {
  return guarded(nullptr, [&]() -> int {
    if (!live_cache(cache) || !key_ok(key, key_len)) return TG_EINVAL;
    const bool r = cache->impl->remove(view(key, key_len), now_ns);
    if (removed != nullptr) *removed = r ? 1 : 0;
    return TG_OK;
  });
}

int tg_price_cache_expire(tg_price_cache* cache, uint64_t now_ns, size_t* evicted) {
  return guarded(nullptr, [&]() -> int {
    if (!live_cache(cache)) return TG_EINVAL;
    const std::size_t n = cache->impl->expire(now_ns);
    if (evicted != nullptr) *evicted = n;
    return TG_OK;
  });
}

int tg_price_cache_set_event_callback(tg_price_cache* cache, tg_price_cache_event_fn fn,
                                      void* user) {
  return guarded(nullptr, [&]() -> int {
    if (!live_cache(cache)) return TG_EINVAL;
    cache->callback.set(fn, user);
    return TG_OK;
  });
}

int tg_price_cache_stats_get(const tg_price_cache* cache, tg_price_cache_stats* out) {
  return guarded(nullptr, [&]() -> int {
    if (!live_cache(cache) || out == nullptr) return TG_EINVAL;
    const tollgate::price_cache_stats s = cache->impl->stats();
    out->hits = s.hits;
    out->misses = s.misses;
    out->stale_misses = s.stale_misses;
    out->puts = s.puts;
    out->kept = s.kept;
    out->replays = s.replays;
    out->not_cached = s.not_cached;
    out->evicted_price_move = s.evicted_price;
    out->evicted_sequence_gap = s.evicted_gap;
    out->evicted_age = s.evicted_age;
    out->evicted_capacity = s.evicted_capacity;
    out->evicted_removed = s.evicted_removed;
    out->entries = s.entries;
    out->slots = s.slots;
    return TG_OK;
  });
}

}  // extern "C"
