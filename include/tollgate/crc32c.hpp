// tollgate::crc32c - the Castagnoli CRC (iSCSI, ext4, the audit journal).
//
// Reflected polynomial 0x82F63B78, initial value and final XOR 0xFFFFFFFF;
// crc32c("123456789") = 0xE3069283. On x86-64 CPUs with SSE4.2 it uses the
// crc32 instruction (checked once at run time); elsewhere, and through
// crc32c_portable, a slicing-by-8 table. Both give identical results.
//
// Thread-safety: pure functions, callable from any thread.
#pragma once

#include <cstddef>
#include <cstdint>

namespace tollgate {

// CRC32C of n bytes.
std::uint32_t crc32c(const void* data, std::size_t n) noexcept;
// Continues a CRC: crc32c_extend(crc32c(a), b) == crc32c(a || b).
std::uint32_t crc32c_extend(std::uint32_t crc, const void* data, std::size_t n) noexcept;
// The table version, whatever the CPU (for tests and comparisons).
std::uint32_t crc32c_portable_extend(std::uint32_t crc, const void* data, std::size_t n) noexcept;
// True when crc32c uses the SSE4.2 instruction on this CPU.
bool crc32c_hardware() noexcept;

}  // namespace tollgate
