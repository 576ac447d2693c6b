// A spin flag for short writer sections (a few dozen instructions), and the
// CPU's spin-wait hint. After spins_before_yield failed checks a waiter
// yields the CPU, so a preempted holder cannot make it burn a whole slice.
#pragma once

#include <atomic>
#include <cstdint>
#include <thread>

namespace tollgate::detail {

inline void cpu_pause() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

inline constexpr std::uint32_t spins_before_yield = 1024;

inline void spin_lock(std::atomic<bool>& f) noexcept {
  std::uint32_t spins = 0;
  while (f.exchange(true, std::memory_order_acquire)) {
    while (f.load(std::memory_order_relaxed)) {
      if (++spins < spins_before_yield) {
        cpu_pause();
      } else {
        std::this_thread::yield();
      }
    }
  }
}

inline void spin_unlock(std::atomic<bool>& f) noexcept {
  f.store(false, std::memory_order_release);
}

}  // namespace tollgate::detail
