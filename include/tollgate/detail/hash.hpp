// Keyed 64-bit hashing of arbitrary byte keys, and small bit helpers.
//
// The limiter identifies a key by this hash alone, so it must spread short
// keys (account ids, IPv4 addresses) well and be seeded per table so that an
// outsider cannot pick colliding keys. It is not a cryptographic MAC.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace tollgate::detail {

__extension__ typedef unsigned __int128 u128;

inline std::uint64_t fold_mul(std::uint64_t a, std::uint64_t b) noexcept {
  const u128 r = static_cast<u128>(a) * b;
  return static_cast<std::uint64_t>(r) ^ static_cast<std::uint64_t>(r >> 64);
}

inline std::uint64_t load_le64(const unsigned char* p) noexcept {
  std::uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// Reads 1..7 bytes without touching memory past p + n.
inline std::uint64_t load_tail(const unsigned char* p, std::size_t n) noexcept {
  if (n >= 4) {
    std::uint32_t lo, hi;
    std::memcpy(&lo, p, 4);
    std::memcpy(&hi, p + n - 4, 4);
    return (static_cast<std::uint64_t>(hi) << 32) | lo;
  }
  if (n == 0) return 0;
  return (static_cast<std::uint64_t>(p[0]) << 16) | (static_cast<std::uint64_t>(p[n >> 1]) << 8) |
         p[n - 1];
}

// Never returns 0: the limiter reserves 0 for an empty slot.
inline std::uint64_t hash_bytes(const void* data, std::size_t n, std::uint64_t seed) noexcept {
  constexpr std::uint64_t k0 = 0x9e3779b97f4a7c15ULL;
  constexpr std::uint64_t k1 = 0xd6e8feb86659fd93ULL;
  constexpr std::uint64_t k2 = 0xa0761d6478bd642fULL;
  const auto* p = static_cast<const unsigned char*>(data);
  std::uint64_t h = seed ^ (n * k0);  // the final two mixes spread the length
  std::size_t left = n;
  while (left >= 16) {
    h = fold_mul(load_le64(p) ^ h ^ k1, load_le64(p + 8) ^ k2);
    p += 16;
    left -= 16;
  }
  std::uint64_t a = 0, b = 0;
  if (left >= 8) {
    a = load_le64(p);
    b = left > 8 ? load_tail(p + 8, left - 8) : 0;
  } else {
    a = load_tail(p, left);
  }
  h = fold_mul(a ^ h ^ k2, b ^ k0 ^ n);
  h = fold_mul(h ^ k1, h ^ seed ^ k2);
  return h == 0 ? 1 : h;
}

inline std::uint64_t next_pow2(std::uint64_t v) noexcept {
  if (v <= 1) return 1;
  return std::uint64_t{1} << (64 - __builtin_clzll(v - 1));
}

}  // namespace tollgate::detail
