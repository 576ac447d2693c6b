// Per-thread striped counters: statistics that cost no atomic read-modify-
// write on the hot path.
//
// Each thread takes a stripe index once. The first `exclusive_stripes`
// threads own their stripe and add with a relaxed load and store (no locked
// instruction); later threads share a few separate stripes with fetch_add,
// so a count is never lost. Readers sum the stripes: each counter is exact, but a
// read of several counters is not one snapshot.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

namespace tollgate::detail {

inline constexpr std::uint32_t exclusive_stripes = 64;
inline constexpr std::uint32_t shared_stripes = 8;

// 0..exclusive_stripes-1 for owners; a larger value marks a sharer.
//
// The per-thread index is constant-initialised (no guard) and uses the
// initial-exec TLS model, so reading it is one %fs-relative load, not a call
// to __tls_get_addr as a dynamically initialised thread_local in a -fPIC
// library would be. A library loaded with dlopen (Python) takes these four
// bytes from glibc's static TLS reserve.
inline std::uint32_t thread_stripe() noexcept {
  static std::atomic<std::uint32_t> next{0};
  __attribute__((tls_model("initial-exec"))) static thread_local std::uint32_t mine = ~0u;
  if (__builtin_expect(mine == ~0u, 0)) mine = next.fetch_add(1, std::memory_order_relaxed);
  return mine;
}

template <std::size_t N>
class striped_counters {
 public:
  void add(std::size_t which, std::uint64_t v = 1) noexcept {
    const std::uint32_t t = thread_stripe();
    if (t < exclusive_stripes) {
      std::atomic<std::uint64_t>& c = stripes_[t].v[which];
      c.store(c.load(std::memory_order_relaxed) + v, std::memory_order_relaxed);
    } else {
      stripes_[exclusive_stripes + t % shared_stripes].v[which].fetch_add(
          v, std::memory_order_relaxed);
    }
  }

  std::uint64_t sum(std::size_t which) const noexcept {
    std::uint64_t s = 0;
    for (const auto& st : stripes_) s += st.v[which].load(std::memory_order_relaxed);
    return s;
  }

 private:
  struct alignas(64) stripe {
    std::array<std::atomic<std::uint64_t>, N> v{};
  };
  std::array<stripe, exclusive_stripes + shared_stripes> stripes_{};
};

}  // namespace tollgate::detail
