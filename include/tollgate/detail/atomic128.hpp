// A 16-byte slot {key, value} updated as one unit with cmpxchg16b.
//
// Readers load the two halves separately (a torn read is possible) and then
// compare-and-swap the pair they believe they saw: a torn read can only make
// that CAS fail, never succeed on a state that did not exist. Comparing the
// key and the value together rules out ABA on slot reuse: a CAS succeeds only
// when the slot holds exactly the key and value the caller computed from.
#pragma once

#include <cstdint>

#include "tollgate/detail/hash.hpp"

#if !defined(__GCC_HAVE_SYNC_COMPARE_AND_SWAP_16)
#error \
    "tollgate needs a 16-byte compare-and-swap: compile with -mcx16 (x86-64) or for a target that has one"
#endif

namespace tollgate::detail {

struct alignas(16) pair_slot {
  std::uint64_t key;
  std::uint64_t value;
};

inline std::uint64_t load_key(const pair_slot& s) noexcept {
  return __atomic_load_n(&s.key, __ATOMIC_ACQUIRE);
}

inline std::uint64_t load_value(const pair_slot& s) noexcept {
  return __atomic_load_n(&s.value, __ATOMIC_ACQUIRE);
}

inline bool cas_pair(pair_slot& s, std::uint64_t old_key, std::uint64_t old_value,
                     std::uint64_t new_key, std::uint64_t new_value) noexcept {
  const u128 expected = (static_cast<u128>(old_value) << 64) | old_key;
  const u128 desired = (static_cast<u128>(new_value) << 64) | new_key;
  return __sync_bool_compare_and_swap(reinterpret_cast<u128*>(&s), expected, desired);
}

}  // namespace tollgate::detail
