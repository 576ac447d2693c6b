// Shared machinery of the C ABI glue: the exception guard, error reporting,
// versioned option structs and reference-counted handles.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "tollgate/tollgate.h"

namespace tollgate::capi {

inline void set_error(tg_error* err, int code, std::string_view msg) noexcept {
  if (err == nullptr) return;
  err->code = code;
  const std::size_t n = std::min(msg.size(), sizeof(err->message) - 1);
  std::memcpy(err->message, msg.data(), n);
  err->message[n] = '\0';
}

inline int fail(tg_error* err, int code, std::string_view msg) noexcept {
  set_error(err, code, msg);
  return code;
}

inline int from_status(const absl::Status& st, tg_error* err) noexcept {
  int code = TG_EINTERNAL;
  switch (st.code()) {
    case absl::StatusCode::kOk:
      code = TG_OK;
      break;
    case absl::StatusCode::kInvalidArgument:
      code = TG_EINVAL;
      break;
    case absl::StatusCode::kOutOfRange:
      code = TG_ERANGE;
      break;
    case absl::StatusCode::kResourceExhausted:
      code = TG_ENOMEM;
      break;
    case absl::StatusCode::kNotFound:
      code = TG_ENOTFOUND;
      break;
    case absl::StatusCode::kFailedPrecondition:
      code = TG_ESTATE;
      break;
    default:
      break;
  }
  if (code == TG_OK) {
    set_error(err, TG_OK, "");
    return TG_OK;
  }
  return fail(err, code, std::string_view(st.message().data(), st.message().size()));
}

// The one exception guard every exported function goes through.
template <class F>
int guarded(tg_error* err, F&& f) noexcept {
  try {
    return f();
  } catch (const std::bad_alloc&) {
    return fail(err, TG_ENOMEM, "out of memory");
  } catch (const std::exception& e) {
    return fail(err, TG_EINTERNAL, e.what());
  } catch (...) {
    return fail(err, TG_EINTERNAL, "unknown internal error");
  }
}

// Copies a caller's versioned options over `defaults`. Accepts any
// struct_size from the first published size (`first`) up; a larger size is
// accepted only when the bytes this library does not know are all zero.
template <class T>
int read_options(const T* in, std::size_t first, T* out, tg_error* err) noexcept {
  if (in == nullptr) return TG_OK;
  const std::size_t size = in->struct_size;
  if (size < first) {
    char msg[128];
    std::snprintf(msg, sizeof msg, "struct_size %zu is smaller than any known version (%zu)", size,
                  first);
    return fail(err, TG_EVERSION, msg);
  }
  if (size > sizeof(T)) {
    const auto* tail = reinterpret_cast<const unsigned char*>(in) + sizeof(T);
    for (std::size_t i = 0; i < size - sizeof(T); ++i) {
      if (tail[i] != 0) {
        char msg[160];
        std::snprintf(msg, sizeof msg,
                      "struct_size %zu is from a newer tollgate and sets fields this version "
                      "(%zu bytes) does not know",
                      size, sizeof(T));
        return fail(err, TG_EVERSION, msg);
      }
    }
  }
  std::memcpy(static_cast<void*>(out), in, std::min(size, sizeof(T)));
  out->struct_size = static_cast<std::uint32_t>(sizeof(T));
  return TG_OK;
}

// Handles carry a type tag (cross-type and freed handles are detected where
// the memory is still ours) and a reference count (a child keeps its parent).
inline constexpr std::uint32_t tag_limiter = 0x544c494d;         // "TLIM"
inline constexpr std::uint32_t tag_breaker = 0x5442524b;         // "TBRK"
inline constexpr std::uint32_t tag_route_table = 0x54525442;     // "TRTB"
inline constexpr std::uint32_t tag_router = 0x54525452;          // "TRTR"
inline constexpr std::uint32_t tag_venue_set = 0x54564e53;       // "TVNS"
inline constexpr std::uint32_t tag_price_cache = 0x54504352;     // "TPCR"
inline constexpr std::uint32_t tag_risk_checker = 0x5452534b;    // "TRSK"
inline constexpr std::uint32_t tag_authenticator = 0x54415554;   // "TAUT"
inline constexpr std::uint32_t tag_journal = 0x544a524e;         // "TJRN"
inline constexpr std::uint32_t tag_journal_reader = 0x544a5244;  // "TJRD"
inline constexpr std::uint32_t tag_dead = 0xdeadbeef;

struct handle_base {
  explicit handle_base(std::uint32_t t) noexcept : tag(t) {}
  std::atomic<std::uint32_t> tag;
  std::atomic<bool> released{false};  // the caller freed it; a child may hold it
  std::atomic<std::int32_t> refs{1};
};

template <class H>
bool live(const H* h, std::uint32_t tag) noexcept {
  return h != nullptr && h->tag.load(std::memory_order_relaxed) == tag &&
         !h->released.load(std::memory_order_relaxed);
}

template <class H>
void unref(H* h) noexcept {
  if (h->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    h->tag.store(tag_dead, std::memory_order_relaxed);
    delete h;
  }
}

// tg_X_free: NULL, a handle of another type and a second free are no-ops;
// the memory goes with the last reference (a child may still hold it).
template <class H>
void release(H* h, std::uint32_t tag) noexcept {
  if (h == nullptr || h->tag.load(std::memory_order_relaxed) != tag) return;
  if (h->released.exchange(true, std::memory_order_acq_rel)) return;
  unref(h);
}

// A C callback (fn, user) that one thread may replace while others call it.
// Every registration is kept until the handle is freed, so a thread that
// loaded the previous one can still finish calling it; so a host that
// swaps callbacks forever grows by 16 bytes a swap.
template <class Fn>
class callback_slot {
 public:
  struct entry {
    Fn fn;
    void* user;
  };
  // The current callback, or nullptr. Lock-free.
  const entry* get() const noexcept { return current_.load(std::memory_order_acquire); }
  // fn == nullptr removes it.
  void set(Fn fn, void* user) {
    std::lock_guard<std::mutex> g(mu_);
    const entry* next = nullptr;
    if (fn != nullptr) {
      kept_.push_back(std::make_unique<entry>(entry{fn, user}));
      next = kept_.back().get();
    }
    current_.store(next, std::memory_order_release);
  }

 private:
  std::atomic<const entry*> current_{nullptr};
  std::mutex mu_;
  std::vector<std::unique_ptr<entry>> kept_;
};

// Caller bytes (p, n): a NULL pointer is valid only with n == 0.
inline bool bytes_ok(const void* p, std::size_t n) noexcept { return p != nullptr || n == 0; }
inline std::string_view view(const void* p, std::size_t n) noexcept {
  return p == nullptr ? std::string_view() : std::string_view(static_cast<const char*>(p), n);
}

}  // namespace tollgate::capi
