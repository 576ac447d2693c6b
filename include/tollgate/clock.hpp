// tollgate::now_ns - the monotonic clock, for hosts that have none at hand.
//
// Policies never read the clock: every decision takes now_ns from the caller,
// who usually has a timestamp already. This is CLOCK_MONOTONIC in ns (a vDSO
// call, no syscall on Linux).
#pragma once

#include <cstdint>
#include <ctime>

namespace tollgate {

inline std::uint64_t now_ns() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

}  // namespace tollgate
