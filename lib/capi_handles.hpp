// Handle types shared by more than one translation unit of the C ABI glue.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <vector>

#include "capi_common.hpp"
#include "tollgate/breaker.hpp"
#include "tollgate/limiter.hpp"
#include "tollgate/price_cache.hpp"
#include "tollgate/tollgate.h"

struct tg_limiter : tollgate::capi::handle_base {
  tg_limiter() noexcept : handle_base(tollgate::capi::tag_limiter) {}
  ~tg_limiter() {
    impl.reset();  // before the parent, which impl points into
    if (parent != nullptr) tollgate::capi::unref(parent);
  }
  std::unique_ptr<tollgate::limiter> impl;
  tg_limiter* parent = nullptr;
};

struct tg_breaker : tollgate::capi::handle_base {
  tg_breaker() noexcept : handle_base(tollgate::capi::tag_breaker) {}
  struct callback {
    tg_breaker_event_fn fn;
    void* user;
  };
  std::unique_ptr<tollgate::breaker> impl;
  std::mutex callbacks_mu;
  std::vector<std::unique_ptr<callback>> callbacks;  // kept until free: may be running
};

struct tg_price_cache : tollgate::capi::handle_base {
  tg_price_cache() noexcept : handle_base(tollgate::capi::tag_price_cache) {}
  std::unique_ptr<tollgate::price_cache> impl;
  tollgate::capi::callback_slot<tg_price_cache_event_fn> callback;
};
