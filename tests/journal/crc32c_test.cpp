// CRC32C against published vectors (RFC 3720 B.4, the "123456789" check
// value), the hardware path against the table path, and chaining.
#include <catch2/catch.hpp>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "tollgate/crc32c.hpp"

TEST_CASE("crc32c: check value and RFC 3720 vectors", "[crc32c]") {
  CHECK(tollgate::crc32c("123456789", 9) == 0xE3069283u);
  CHECK(tollgate::crc32c_portable_extend(0, "123456789", 9) == 0xE3069283u);
  CHECK(tollgate::crc32c("", 0) == 0u);
  std::vector<std::uint8_t> b(32, 0);
  CHECK(tollgate::crc32c(b.data(), b.size()) == 0x8A9136AAu);
  std::fill(b.begin(), b.end(), 0xFF);
  CHECK(tollgate::crc32c(b.data(), b.size()) == 0x62A8AB43u);
  for (std::size_t i = 0; i < 32; ++i) b[i] = static_cast<std::uint8_t>(i);
  CHECK(tollgate::crc32c(b.data(), b.size()) == 0x46DD794Eu);
  for (std::size_t i = 0; i < 32; ++i) b[i] = static_cast<std::uint8_t>(31 - i);
  CHECK(tollgate::crc32c(b.data(), b.size()) == 0x113FDB5Cu);
}

TEST_CASE("crc32c: hardware and table paths agree and extend chains", "[crc32c]") {
  INFO("hardware crc32 instruction in use: " << tollgate::crc32c_hardware());
  std::mt19937_64 rng(7);
  std::vector<std::uint8_t> data(4096);
  for (auto& x : data) x = static_cast<std::uint8_t>(rng());
  for (int round = 0; round < 2000; ++round) {
    const std::size_t off = rng() % 64;
    const std::size_t n = rng() % (data.size() - off);
    const std::uint32_t whole = tollgate::crc32c(data.data() + off, n);
    REQUIRE(whole == tollgate::crc32c_portable_extend(0, data.data() + off, n));
    const std::size_t cut = n == 0 ? 0 : rng() % n;
    const std::uint32_t first = tollgate::crc32c(data.data() + off, cut);
    REQUIRE(tollgate::crc32c_extend(first, data.data() + off + cut, n - cut) == whole);
  }
}
