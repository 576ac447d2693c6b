// tollgate::crypto - the few primitives tollgate needs from BoringSSL:
// SHA-256, HMAC-SHA256 with precomputed key state, Ed25519, a constant-time
// comparison and random bytes.
//
// Why a shim: BoringSSL (Debian's android-libboringssl) and OpenSSL both
// export unversioned-compatible names (SHA256_Init, HMAC, ...). An order
// server that links OpenSSL for its own TLS and also links tollgate would
// have tollgate's calls bound to whichever library the dynamic linker saw
// first, and the two disagree on struct layouts. So tollgate never links
// libcrypto: lib/crypto.cpp opens BoringSSL's libcrypto.so.0 privately
// (dlopen with RTLD_LOCAL) on first use and takes every function it calls
// from that handle (dlsym), and no BoringSSL header is ever visible to a
// consumer of tollgate's headers. BoringSSL's own internal calls are bound
// inside it (the library has no PLT relocations), so they cannot be
// interposed either.
//
// available() reports whether the library could be loaded; every other
// function is safe to call either way: without the library, digests and
// MACs are all zero, verification fails and random_bytes returns false.
// Components that need cryptography (the audit journal, request
// authentication) check available() when they are created and refuse with
// its message.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "absl/status/status.h"

namespace tollgate::crypto {

inline constexpr std::size_t sha256_size = 32;
inline constexpr std::size_t ed25519_public_key_size = 32;
inline constexpr std::size_t ed25519_private_key_size = 64;  // seed + public key
inline constexpr std::size_t ed25519_seed_size = 32;
inline constexpr std::size_t ed25519_signature_size = 64;

// OK, or why BoringSSL's libcrypto could not be loaded (path and dlerror).
absl::Status available();

// Streaming SHA-256. The state is BoringSSL's SHA256_CTX, held opaquely.
struct sha256_ctx {
  alignas(8) unsigned char state[128];
};
void sha256_init(sha256_ctx* ctx) noexcept;
void sha256_update(sha256_ctx* ctx, const void* data, std::size_t n) noexcept;
void sha256_final(sha256_ctx* ctx, std::uint8_t out[sha256_size]) noexcept;
void sha256(const void* data, std::size_t n, std::uint8_t out[sha256_size]) noexcept;

// HMAC-SHA256 (RFC 2104) with the key's inner and outer pad blocks absorbed
// once, at construction: a MAC costs the message's compression blocks plus
// two, never a rehash of the key. Copyable; the key itself is not kept.
class hmac_sha256_key {
 public:
  hmac_sha256_key() noexcept;  // the empty key
  explicit hmac_sha256_key(std::string_view key) noexcept;
  ~hmac_sha256_key();  // wipes the pad states
  hmac_sha256_key(const hmac_sha256_key&) noexcept = default;
  hmac_sha256_key& operator=(const hmac_sha256_key&) noexcept = default;

  // One-shot MAC of msg.
  void mac(const void* msg, std::size_t n, std::uint8_t out[sha256_size]) const noexcept;
  // Streaming: begin() gives a context primed with the inner pad; feed the
  // message with sha256_update; finish() writes the MAC.
  void begin(sha256_ctx* ctx) const noexcept;
  void finish(sha256_ctx* ctx, std::uint8_t out[sha256_size]) const noexcept;

 private:
  sha256_ctx inner_;
  sha256_ctx outer_;
};

// BoringSSL's one-shot HMAC(EVP_sha256()), which rehashes the key: the
// reference the precomputed form is tested and benchmarked against.
void hmac_sha256_reference(std::string_view key, const void* msg, std::size_t n,
                           std::uint8_t out[sha256_size]) noexcept;

// CRYPTO_memcmp: true when the n bytes are equal; the time taken does not
// depend on where (or whether) they differ.
bool equal_constant_time(const void* a, const void* b, std::size_t n) noexcept;

// Ed25519 (RFC 8032). A private key is BoringSSL's 64-byte form (seed
// followed by the public key).
bool ed25519_keypair_from_seed(const std::uint8_t seed[ed25519_seed_size],
                               std::uint8_t public_key[ed25519_public_key_size],
                               std::uint8_t private_key[ed25519_private_key_size]) noexcept;
bool ed25519_sign(const void* msg, std::size_t n,
                  const std::uint8_t private_key[ed25519_private_key_size],
                  std::uint8_t signature[ed25519_signature_size]) noexcept;
bool ed25519_verify(const void* msg, std::size_t n,
                    const std::uint8_t signature[ed25519_signature_size],
                    const std::uint8_t public_key[ed25519_public_key_size]) noexcept;

// Cryptographically secure random bytes; false if the library is missing.
bool random_bytes(void* out, std::size_t n) noexcept;

}  // namespace tollgate::crypto
