// A value published with read-copy-update: readers take no lock and never
// wait; a writer replaces the value and returns once no reader can still be
// using the one it replaced.
//
// Readers announce themselves in a per-thread stripe of one of two counters
// (by the parity of a generation) before loading the pointer, and leave when
// done. publish() stores the new pointer, then twice flips the generation
// and waits for the counters of the parity it left to drain: whichever
// parity a reader of the old pointer announced itself in, one of the two
// waits covers it, and new readers go to the other parity, so the wait ends
// under any load. The old value is released after that. (std::atomic of a
// shared_ptr would do the same job with a reference count bounced between
// readers' caches, and libstdc++ 12's version is not understood by
// ThreadSanitizer.)
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>

#include "tollgate/detail/counters.hpp"

namespace tollgate::detail {

template <class T>
class rcu_cell {
 public:
  explicit rcu_cell(std::shared_ptr<const T> initial) : hold_(std::move(initial)) {
    cur_.store(hold_.get(), std::memory_order_release);
  }
  rcu_cell(const rcu_cell&) = delete;
  rcu_cell& operator=(const rcu_cell&) = delete;

  // Replaces the value; returns after no thread can still be reading the
  // one it replaced. Publications are serialised. next must not be null.
  void publish(std::shared_ptr<const T> next) {
    std::shared_ptr<const T> old;
    std::lock_guard<std::mutex> lock(mu_);
    old = std::move(hold_);
    hold_ = std::move(next);
    cur_.store(hold_.get(), std::memory_order_seq_cst);
    for (int phase = 0; phase < 2; ++phase) {
      const std::uint32_t g = gen_.fetch_add(1, std::memory_order_seq_cst);
      while (readers(g & 1) != 0) std::this_thread::yield();
    }
  }

  // The current value, kept alive by the returned pointer (takes a lock:
  // for writers and slow paths).
  std::shared_ptr<const T> current() const {
    std::lock_guard<std::mutex> lock(mu_);
    return hold_;
  }

  // f(const T&) runs on the value current when it started.
  template <class F>
  auto read(F&& f) const noexcept(noexcept(f(std::declval<const T&>()))) {
    guard g(*this);
    return f(*g.value);
  }

 private:
  struct alignas(64) stripe {
    std::atomic<std::int64_t> n[2] = {0, 0};
  };
  static constexpr std::size_t stripe_count = exclusive_stripes + shared_stripes;

  struct guard {
    explicit guard(const rcu_cell& c) noexcept {
      const std::uint32_t t = thread_stripe();
      owned = t < exclusive_stripes;
      s = &c.stripes_[owned ? t : exclusive_stripes + t % shared_stripes];
      parity = c.gen_.load(std::memory_order_relaxed) & 1;
      // The announcement must be visible before the pointer is read (a
      // store-load order): a locked add gives it.
      s->n[parity].fetch_add(1, std::memory_order_seq_cst);
      value = c.cur_.load(std::memory_order_seq_cst);
    }
    ~guard() {
      std::atomic<std::int64_t>& n = s->n[parity];
      if (owned) {
        // Only this thread writes its own stripe: a release store suffices.
        n.store(n.load(std::memory_order_relaxed) - 1, std::memory_order_release);
      } else {
        n.fetch_sub(1, std::memory_order_release);
      }
    }
    guard(const guard&) = delete;
    guard& operator=(const guard&) = delete;
    stripe* s;
    bool owned;
    std::uint32_t parity;
    const T* value;
  };

  std::int64_t readers(std::uint32_t parity) const noexcept {
    std::int64_t sum = 0;
    for (const stripe& s : stripes_) sum += s.n[parity].load(std::memory_order_seq_cst);
    return sum;
  }

  mutable stripe stripes_[stripe_count];
  std::atomic<std::uint32_t> gen_{0};
  std::atomic<const T*> cur_{nullptr};
  mutable std::mutex mu_;
  std::shared_ptr<const T> hold_;
};

}  // namespace tollgate::detail
