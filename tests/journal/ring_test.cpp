// The multi-producer ring on its own: wrap-around of variable-size
// entries, fullness, and producers racing one consumer (run under TSan).
#include <catch2/catch.hpp>

#include <atomic>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "tollgate/detail/mpsc_ring.hpp"

using tollgate::detail::mpsc_ring;

namespace {

// Entry layout for the tests: first cell = {u32 cells, u32 len, u64 tag};
// data = len bytes, byte i = tag + i.
void put(mpsc_ring& r, std::uint64_t pos, std::uint32_t cells, std::uint32_t len,
         std::uint64_t tag) {
  std::memcpy(r.cell(pos), &cells, 4);
  std::memcpy(r.cell(pos) + 4, &len, 4);
  std::memcpy(r.cell(pos) + 8, &tag, 8);
  std::vector<std::uint8_t> d(len);
  for (std::uint32_t i = 0; i < len; ++i) d[i] = static_cast<std::uint8_t>(tag + i);
  r.write(pos, 0, d.data(), len);
  r.publish(pos);
}

bool take(mpsc_ring& r, std::uint64_t* pos, std::uint64_t* tag) {
  if (!r.ready(*pos)) return false;
  std::uint32_t cells = 0;
  std::uint32_t len = 0;
  std::memcpy(&cells, r.cell(*pos), 4);
  std::memcpy(&len, r.cell(*pos) + 4, 4);
  std::memcpy(tag, r.cell(*pos) + 8, 8);
  std::vector<std::uint8_t> d(len);
  r.read(*pos, 0, d.data(), len);
  for (std::uint32_t i = 0; i < len; ++i) {
    if (d[i] != static_cast<std::uint8_t>(*tag + i)) return false;
  }
  r.release(*pos, cells);
  *pos += cells;
  return true;
}

}  // namespace

TEST_CASE("ring: variable-size entries wrap around intact and full is reported", "[ring]") {
  mpsc_ring r(16);
  std::uint64_t rpos = 0;
  std::mt19937 rng(1);
  std::uint64_t next_tag = 1;
  std::uint64_t expect = 1;
  for (int round = 0; round < 5000; ++round) {
    const std::uint32_t len = rng() % 300;
    const std::uint32_t cells = 1 + (len + 63) / 64;
    std::uint64_t pos = 0;
    if (r.try_claim(cells, &pos)) {
      put(r, pos, cells, len, next_tag++);
    } else {
      // Full: the free cells are fewer than asked for.
      REQUIRE(r.enqueue_position() + cells - rpos > r.cells());
    }
    if (rng() % 3 == 0 || round % 7 == 0) {
      std::uint64_t tag = 0;
      while (take(r, &rpos, &tag)) REQUIRE(tag == expect++);
    }
  }
  std::uint64_t tag = 0;
  while (take(r, &rpos, &tag)) REQUIRE(tag == expect++);
  CHECK(expect == next_tag);
  CHECK(next_tag > 1000);
  // An empty ring of 16 cells takes exactly 16 cells, and then nothing.
  std::uint64_t pos = 0;
  REQUIRE(r.try_claim(16, &pos));
  CHECK(!r.try_claim(1, &pos));
}

TEST_CASE("ring: producers racing one consumer lose or duplicate or reorder nothing",
          "[ring][concurrency]") {
  mpsc_ring r(64);
  constexpr int producers = 3;
  constexpr std::uint64_t per = 20000;
  std::atomic<int> running{producers};
  std::vector<std::thread> ts;
  for (int p = 0; p < producers; ++p) {
    ts.emplace_back([&, p] {
      std::mt19937 rng(static_cast<unsigned>(p));
      for (std::uint64_t i = 1; i <= per; ++i) {
        const std::uint32_t len = rng() % 150;
        const std::uint32_t cells = 1 + (len + 63) / 64;
        std::uint64_t pos = 0;
        while (!r.try_claim(cells, &pos)) std::this_thread::yield();
        put(r, pos, cells, len, (static_cast<std::uint64_t>(p) << 32) | i);
      }
      running.fetch_sub(1);
    });
  }
  std::uint64_t rpos = 0;
  std::uint64_t last[producers] = {};
  std::uint64_t got = 0;
  bool ok = true;
  while (got < producers * per) {
    std::uint64_t tag = 0;
    if (!r.ready(rpos)) {
      std::this_thread::yield();
      continue;
    }
    if (!take(r, &rpos, &tag)) {
      ok = false;
      break;
    }
    const auto p = static_cast<int>(tag >> 32);
    const std::uint64_t i = tag & 0xFFFFFFFFu;
    if (p < 0 || p >= producers || i != last[p] + 1) {
      ok = false;
      break;
    }
    last[p] = i;
    ++got;
  }
  for (auto& t : ts) t.join();
  REQUIRE(ok);
  CHECK(got == producers * per);
  CHECK(running.load() == 0);
}
