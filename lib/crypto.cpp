// BoringSSL, opened privately. See include/tollgate/crypto.hpp for why.
//
// Only this file sees BoringSSL's headers (for the function types and
// SHA256_CTX); the functions themselves come from dlsym on a handle of
// TOLLGATE_BORINGSSL_LIBRARY opened with RTLD_LOCAL, never from the global
// symbol scope where OpenSSL may live.
#include "tollgate/crypto.hpp"

#include <dlfcn.h>
#include <openssl/curve25519.h>
#include <openssl/digest.h>
#include <openssl/hmac.h>
#include <openssl/mem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <cstring>
#include <string>

#ifndef TOLLGATE_BORINGSSL_LIBRARY
#error "TOLLGATE_BORINGSSL_LIBRARY (the path of BoringSSL's libcrypto) must be defined by the build"
#endif

namespace tollgate::crypto {

static_assert(sizeof(SHA256_CTX) <= sizeof(sha256_ctx::state) &&
              alignof(SHA256_CTX) <= alignof(sha256_ctx));
static_assert(SHA256_DIGEST_LENGTH == sha256_size && SHA256_CBLOCK == 64);

namespace {

struct api {
  decltype(&::SHA256_Init) sha256_init;
  decltype(&::SHA256_Update) sha256_update;
  decltype(&::SHA256_Final) sha256_final;
  decltype(&::SHA256) sha256;
  decltype(&::HMAC) hmac;
  decltype(&::EVP_sha256) evp_sha256;
  decltype(&::CRYPTO_memcmp) memcmp;
  decltype(&::ED25519_keypair_from_seed) ed25519_keypair_from_seed;
  decltype(&::ED25519_sign) ed25519_sign;
  decltype(&::ED25519_verify) ed25519_verify;
  decltype(&::RAND_bytes) rand_bytes;
};

struct loaded {
  const api* fns = nullptr;  // null when loading failed
  std::string error;
};

template <class F>
bool resolve(void* handle, const char* name, F* out, std::string* error) {
  void* p = ::dlsym(handle, name);
  if (p == nullptr) {
    *error =
        std::string("BoringSSL symbol ") + name + " not found in " + TOLLGATE_BORINGSSL_LIBRARY;
    return false;
  }
  *out = reinterpret_cast<F>(p);
  return true;
}

loaded load() {
  loaded r;
  // RTLD_LOCAL keeps BoringSSL's names out of the global scope, so loading
  // tollgate cannot change what the host's own OpenSSL calls resolve to.
  void* h = ::dlopen(TOLLGATE_BORINGSSL_LIBRARY, RTLD_NOW | RTLD_LOCAL);
  if (h == nullptr) {
    const char* why = ::dlerror();
    r.error = std::string("cannot load BoringSSL (") + TOLLGATE_BORINGSSL_LIBRARY +
              "): " + (why != nullptr ? why : "unknown error") +
              "; install Debian's android-libboringssl";
    return r;
  }
  static api a;
  bool ok = resolve(h, "SHA256_Init", &a.sha256_init, &r.error) &&
            resolve(h, "SHA256_Update", &a.sha256_update, &r.error) &&
            resolve(h, "SHA256_Final", &a.sha256_final, &r.error) &&
            resolve(h, "SHA256", &a.sha256, &r.error) && resolve(h, "HMAC", &a.hmac, &r.error) &&
            resolve(h, "EVP_sha256", &a.evp_sha256, &r.error) &&
            resolve(h, "CRYPTO_memcmp", &a.memcmp, &r.error) &&
            resolve(h, "ED25519_keypair_from_seed", &a.ed25519_keypair_from_seed, &r.error) &&
            resolve(h, "ED25519_sign", &a.ed25519_sign, &r.error) &&
            resolve(h, "ED25519_verify", &a.ed25519_verify, &r.error) &&
            resolve(h, "RAND_bytes", &a.rand_bytes, &r.error);
  if (ok) r.fns = &a;  // the handle stays open for the life of the process
  return r;
}

const loaded& library() {
  static const loaded l = load();
  return l;
}

const api* fns() noexcept { return library().fns; }

void wipe(void* p, std::size_t n) noexcept {
  volatile unsigned char* v = static_cast<volatile unsigned char*>(p);
  for (std::size_t i = 0; i < n; ++i) v[i] = 0;
}

SHA256_CTX* as_ctx(sha256_ctx* c) noexcept { return reinterpret_cast<SHA256_CTX*>(c->state); }

// Fills the pad state for one HMAC pad byte (0x36 inner, 0x5c outer).
void absorb_pad(const api* a, std::string_view key, unsigned char pad, sha256_ctx* ctx) noexcept {
  unsigned char block[SHA256_CBLOCK] = {};
  if (key.size() > SHA256_CBLOCK) {
    a->sha256(reinterpret_cast<const std::uint8_t*>(key.data()), key.size(), block);
  } else if (!key.empty()) {
    std::memcpy(block, key.data(), key.size());
  }
  for (unsigned char& b : block) b = static_cast<unsigned char>(b ^ pad);
  std::memset(ctx->state, 0, sizeof ctx->state);
  a->sha256_init(as_ctx(ctx));
  a->sha256_update(as_ctx(ctx), block, sizeof block);
  wipe(block, sizeof block);
}

}  // namespace

absl::Status available() {
  const loaded& l = library();
  if (l.fns != nullptr) return absl::OkStatus();
  return absl::FailedPreconditionError(l.error);
}

void sha256_init(sha256_ctx* ctx) noexcept {
  std::memset(ctx->state, 0, sizeof ctx->state);
  if (const api* a = fns()) a->sha256_init(as_ctx(ctx));
}

void sha256_update(sha256_ctx* ctx, const void* data, std::size_t n) noexcept {
  if (const api* a = fns(); a != nullptr && n != 0) a->sha256_update(as_ctx(ctx), data, n);
}

void sha256_final(sha256_ctx* ctx, std::uint8_t out[sha256_size]) noexcept {
  if (const api* a = fns()) {
    a->sha256_final(out, as_ctx(ctx));
  } else {
    std::memset(out, 0, sha256_size);
  }
}

void sha256(const void* data, std::size_t n, std::uint8_t out[sha256_size]) noexcept {
  if (const api* a = fns()) {
    a->sha256(static_cast<const std::uint8_t*>(data), n, out);
  } else {
    std::memset(out, 0, sha256_size);
  }
}

hmac_sha256_key::hmac_sha256_key() noexcept : hmac_sha256_key(std::string_view()) {}

hmac_sha256_key::hmac_sha256_key(std::string_view key) noexcept : inner_{}, outer_{} {
  if (const api* a = fns()) {
    absorb_pad(a, key, 0x36, &inner_);
    absorb_pad(a, key, 0x5c, &outer_);
  }
}

hmac_sha256_key::~hmac_sha256_key() {
  wipe(inner_.state, sizeof inner_.state);
  wipe(outer_.state, sizeof outer_.state);
}

void hmac_sha256_key::begin(sha256_ctx* ctx) const noexcept { *ctx = inner_; }

void hmac_sha256_key::finish(sha256_ctx* ctx, std::uint8_t out[sha256_size]) const noexcept {
  const api* a = fns();
  if (a == nullptr) {
    std::memset(out, 0, sha256_size);
    return;
  }
  std::uint8_t inner_digest[sha256_size];
  a->sha256_final(inner_digest, as_ctx(ctx));
  sha256_ctx o = outer_;
  a->sha256_update(as_ctx(&o), inner_digest, sizeof inner_digest);
  a->sha256_final(out, as_ctx(&o));
}

void hmac_sha256_key::mac(const void* msg, std::size_t n,
                          std::uint8_t out[sha256_size]) const noexcept {
  sha256_ctx ctx;
  begin(&ctx);
  sha256_update(&ctx, msg, n);
  finish(&ctx, out);
}

void hmac_sha256_reference(std::string_view key, const void* msg, std::size_t n,
                           std::uint8_t out[sha256_size]) noexcept {
  const api* a = fns();
  unsigned int len = 0;
  if (a == nullptr || a->hmac(a->evp_sha256(), key.data(), key.size(),
                              static_cast<const std::uint8_t*>(msg), n, out, &len) == nullptr) {
    std::memset(out, 0, sha256_size);
  }
}

bool equal_constant_time(const void* a, const void* b, std::size_t n) noexcept {
  if (const api* f = fns()) return f->memcmp(a, b, n) == 0;
  // Without the library: the same contract, by a loop with no early exit.
  const auto* x = static_cast<const volatile unsigned char*>(a);
  const auto* y = static_cast<const volatile unsigned char*>(b);
  unsigned char diff = 0;
  for (std::size_t i = 0; i < n; ++i) diff = static_cast<unsigned char>(diff | (x[i] ^ y[i]));
  return diff == 0;
}

bool ed25519_keypair_from_seed(const std::uint8_t seed[ed25519_seed_size],
                               std::uint8_t public_key[ed25519_public_key_size],
                               std::uint8_t private_key[ed25519_private_key_size]) noexcept {
  const api* a = fns();
  if (a == nullptr) return false;
  a->ed25519_keypair_from_seed(public_key, private_key, seed);
  return true;
}

bool ed25519_sign(const void* msg, std::size_t n,
                  const std::uint8_t private_key[ed25519_private_key_size],
                  std::uint8_t signature[ed25519_signature_size]) noexcept {
  const api* a = fns();
  return a != nullptr &&
         a->ed25519_sign(signature, static_cast<const std::uint8_t*>(msg), n, private_key) == 1;
}

bool ed25519_verify(const void* msg, std::size_t n,
                    const std::uint8_t signature[ed25519_signature_size],
                    const std::uint8_t public_key[ed25519_public_key_size]) noexcept {
  const api* a = fns();
  return a != nullptr &&
         a->ed25519_verify(static_cast<const std::uint8_t*>(msg), n, signature, public_key) == 1;
}

bool random_bytes(void* out, std::size_t n) noexcept {
  const api* a = fns();
  return a != nullptr && a->rand_bytes(static_cast<std::uint8_t*>(out), n) == 1;
}

}  // namespace tollgate::crypto
