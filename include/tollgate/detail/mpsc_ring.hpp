// A bounded multi-producer, single-consumer ring of variable-size entries.
//
// Storage is a power-of-two number of 64-byte cells; an entry takes one or
// more consecutive cells (the ring wraps inside an entry's data). Every cell
// has a sequence word, as in Dmitry Vyukov's bounded queue: cell i is free
// for position p when its word is p, and an entry's first cell is published
// for position p when its word is p + 1.
//
// Producer: read the enqueue position p; the k cells p..p+k-1 are free when
// the word of the last one is p+k-1 (the consumer frees cells in order, so
// then all earlier ones are free too); claim them with one CAS of the
// enqueue position from p to p+k; copy the entry in; publish the first
// cell (release). No lock, no allocation, no system call; a producer that
// loses the CAS retries with the new position (lock-free: some producer
// always wins). A full ring is reported, never waited on here.
//
// Consumer (one thread at a time): when the first cell at its position is
// published (acquire), read the entry, then free its cells in ascending
// order (release), which is what makes the producers' single check sound.
//
// A producer preempted between its claim and its publish delays the
// consumer (entries are consumed in position order) but no other producer.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>

namespace tollgate::detail {

class mpsc_ring {
 public:
  static constexpr std::size_t cell_size = 64;

  // cells: a power of two >= 2.
  explicit mpsc_ring(std::size_t cells)
      : mask_(cells - 1),
        words_(new std::atomic<std::uint64_t>[cells]),
        data_(static_cast<std::uint8_t*>(::operator new (cells* cell_size, std::align_val_t{64}))) {
    for (std::size_t i = 0; i < cells; ++i) words_[i].store(i, std::memory_order_relaxed);
  }
  ~mpsc_ring() { ::operator delete (data_, std::align_val_t{64}); }
  mpsc_ring(const mpsc_ring&) = delete;
  mpsc_ring& operator=(const mpsc_ring&) = delete;

  std::size_t cells() const noexcept { return mask_ + 1; }

  // Claims k consecutive cells (1 <= k <= cells()). True with *pos set, or
  // false when the ring has no room for them now.
  bool try_claim(std::uint32_t k, std::uint64_t* pos) noexcept {
    std::uint64_t p = enqueue_.load(std::memory_order_relaxed);
    for (;;) {
      const std::uint64_t last = p + k - 1;
      const std::uint64_t w = words_[last & mask_].load(std::memory_order_acquire);
      const auto dif = static_cast<std::int64_t>(w - last);
      if (dif == 0) {
        if (enqueue_.compare_exchange_weak(p, p + k, std::memory_order_relaxed,
                                           std::memory_order_relaxed)) {
          *pos = p;
          return true;
        }
      } else if (dif < 0) {
        return false;
      } else {
        p = enqueue_.load(std::memory_order_relaxed);
      }
    }
  }

  // The first cell of the entry at pos.
  std::uint8_t* cell(std::uint64_t pos) noexcept { return data_ + (pos & mask_) * cell_size; }
  const std::uint8_t* cell(std::uint64_t pos) const noexcept {
    return data_ + (pos & mask_) * cell_size;
  }

  // Copies n bytes to the entry at pos, at offset bytes after its first cell.
  void write(std::uint64_t pos, std::size_t offset, const void* src, std::size_t n) noexcept {
    if (n == 0) return;
    const std::size_t total = (mask_ + 1) * cell_size;
    const std::size_t at = ((pos + 1) & mask_) * cell_size + offset;
    const std::size_t start = at % total;
    const std::size_t first = n < total - start ? n : total - start;
    std::memcpy(data_ + start, src, first);
    if (first < n) std::memcpy(data_, static_cast<const std::uint8_t*>(src) + first, n - first);
  }
  void read(std::uint64_t pos, std::size_t offset, void* dst, std::size_t n) const noexcept {
    if (n == 0) return;
    const std::size_t total = (mask_ + 1) * cell_size;
    const std::size_t at = ((pos + 1) & mask_) * cell_size + offset;
    const std::size_t start = at % total;
    const std::size_t first = n < total - start ? n : total - start;
    std::memcpy(dst, data_ + start, first);
    if (first < n) std::memcpy(static_cast<std::uint8_t*>(dst) + first, data_, n - first);
  }

  void publish(std::uint64_t pos) noexcept {
    words_[pos & mask_].store(pos + 1, std::memory_order_release);
  }

  // Consumer: whether the entry at pos is published.
  bool ready(std::uint64_t pos) const noexcept {
    return words_[pos & mask_].load(std::memory_order_acquire) == pos + 1;
  }

  // Consumer: frees the k cells of the entry at pos, in ascending order.
  void release(std::uint64_t pos, std::uint32_t k) noexcept {
    for (std::uint32_t j = 0; j < k; ++j) {
      words_[(pos + j) & mask_].store(pos + j + mask_ + 1, std::memory_order_release);
    }
  }

  // The next position a producer would claim (a snapshot).
  std::uint64_t enqueue_position() const noexcept {
    return enqueue_.load(std::memory_order_acquire);
  }

 private:
  const std::uint64_t mask_;
  alignas(64) std::atomic<std::uint64_t> enqueue_{0};
  alignas(64) std::unique_ptr<std::atomic<std::uint64_t>[]> words_;
  std::uint8_t* data_;
};

}  // namespace tollgate::detail
