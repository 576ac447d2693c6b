// tollgate::authenticator - request authentication with HMAC-SHA256
// signatures, key rotation, replay protection and instant revocation; and
// the client-side signer that produces what it verifies.
//
// The canonical request and the Authorization header are specified in
// docs/auth.md, with worked examples; tests/vectors/auth_vectors.txt holds
// shared test vectors that every language's tests check. In short, a client
// signs
//
//   TG1-HMAC-SHA256\n
//   <method>\n <normal path>\n <canonical query>\n
//   <signed header names, ';'-joined>\n <name>:<value>\n per signed header
//   <key id>\n <token id or empty>\n <timestamp ns>\n <nonce>\n
//   <hex SHA-256 of the body>
//
// (no spaces; each <...> ends with a newline except the last) with the
// key's secret, and sends
//
//   Authorization: TG1-HMAC-SHA256 KeyId=<id>, SignedHeaders=<a;b>,
//                  Timestamp=<ns>, Nonce=<nonce>[, Token=<id>], Signature=<hex>
//
// Every field has a strict alphabet and the query is re-encoded, so two
// different requests can never share a canonical form (docs/auth.md shows
// why field by field).
//
// Verification, in this order; the first failure decides (the cheap and
// unauthenticated checks come before the MAC, the nonce cache is touched
// only by requests whose signature is valid, so forged requests cannot fill
// it):
//   1. malformed: the Authorization header does not parse;
//   2. skew: the timestamp is more than max_skew_ns ahead of now, or more
//      than max_skew_ns behind the latest now this authenticator has seen
//      (a clock stepping back cannot reopen the window of a forgotten nonce);
//   3. revoked_key, unknown_key, expired_key (now outside the key's
//      [not_before, not_after) interval: rotation overlaps two keys), then
//      revoked_token;
//   4. malformed: the request cannot be canonicalised (bad method, path,
//      query, a signed header missing, repeated or with control bytes, a
//      field too long); bad_signature: the MAC differs (compared with
//      CRYPTO_memcmp, in constant time);
//   5. replay: this (key id, nonce) was accepted within the window;
//      nonce_capacity: the nonce cache is full of nonces still inside their
//      window and cannot remember one more, so the request is refused rather
//      than risk a replay (fail closed).
// Every failure has its own reason (and a detail for malformed requests);
// public_reason() gives the single opaque word a server may return instead.
//
// Keys: HMAC state (the inner and outer pad blocks) is computed when a key
// is added, so a verification never rehashes the key. Keys, revoked key ids
// and revoked token ids live in one immutable snapshot, replaced by every
// change with read-copy-update (detail/rcu.hpp: verifications take no lock;
// a change returns once no verification still reads the snapshot it
// replaced): a change is effective for every verification that starts after
// the call returns, on any thread. A
// revocation list can also be replaced whole with a version number; an
// older version than the current is refused. Changes are passed to a
// listener so the host can journal them.
//
// Memory: the nonce cache holds at most nonce_capacity nonces (16 shards,
// each with its own mutex and two tables of 2 * capacity / 16 slots of 16
// bytes: about 64 bytes per nonce of capacity). Each shard holds
// capacity / 16 nonces and refuses when full, so the cache as a whole can
// refuse a little before capacity when the shards are uneven: keep a margin. A nonce is remembered
// until its timestamp + max_skew_ns, after which the skew check refuses it anyway. Nonces are
// compared as 64-bit keyed hashes of (key id, nonce): a collision (about 2^-64) can only reject.
//
// verify() allocates nothing (the canonical form is streamed into the MAC)
// and may run on any number of threads.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "tollgate/crypto.hpp"
#include "tollgate/detail/counters.hpp"
#include "tollgate/detail/hash.hpp"
#include "tollgate/detail/rcu.hpp"
#include "tollgate/router.hpp"

namespace tollgate {

enum class auth_reason : std::int32_t {
  none = 0,
  malformed = 1,
  unknown_key = 2,
  expired_key = 3,
  bad_signature = 4,
  skew = 5,
  replay = 6,
  revoked_key = 7,
  revoked_token = 8,
  nonce_capacity = 9,
};
inline constexpr std::size_t auth_reason_count = 10;

// What was malformed (auth_detail::none for every other reason).
enum class auth_detail : std::int32_t {
  none = 0,
  missing_authorization = 1,
  bad_scheme = 2,
  bad_parameter = 3,         // unknown, repeated or without '='
  missing_parameter = 4,     // KeyId, Timestamp, Nonce or Signature absent
  bad_key_id = 5,            // 1..64 of [A-Za-z0-9._-]
  bad_token = 6,             // 1..128 of [A-Za-z0-9._-]
  bad_timestamp = 7,         // decimal nanoseconds, 1..19 digits
  bad_nonce = 8,             // 8..64 of [A-Za-z0-9._~-]
  bad_signature_format = 9,  // 64 lower-case hex digits
  bad_signed_headers = 10,   // lower-case names, ';'-separated, sorted, unique, at most 16
  bad_method = 11,           // 1..16 upper-case letters
  bad_path = 12,             // not absolute, bad escape, ambiguous separator, '#', too long
  bad_query = 13,            // bad escape, empty parameter, raw control byte, > 64 parameters
  missing_header = 14,       // a signed header is not in the request
  repeated_header = 15,      // a signed header appears more than once
  bad_header_value = 16,     // a control byte, or longer than 8192 bytes
  body_digest = 17,          // neither a body nor a 32-byte digest was given
};

inline const char* auth_reason_name(auth_reason r) noexcept {
  static constexpr const char* names[] = {
      "none", "malformed", "unknown_key", "expired_key",   "bad_signature",
      "skew", "replay",    "revoked_key", "revoked_token", "nonce_capacity"};
  const auto i = static_cast<std::size_t>(r);
  return i < auth_reason_count ? names[i] : "unknown";
}

inline const char* auth_detail_name(auth_detail d) noexcept {
  static constexpr const char* names[] = {"none",
                                          "missing_authorization",
                                          "bad_scheme",
                                          "bad_parameter",
                                          "missing_parameter",
                                          "bad_key_id",
                                          "bad_token",
                                          "bad_timestamp",
                                          "bad_nonce",
                                          "bad_signature_format",
                                          "bad_signed_headers",
                                          "bad_method",
                                          "bad_path",
                                          "bad_query",
                                          "missing_header",
                                          "repeated_header",
                                          "bad_header_value",
                                          "body_digest"};
  const auto i = static_cast<std::size_t>(d);
  return i < sizeof names / sizeof names[0] ? names[i] : "unknown";
}

// The one word a server may send back for any failure, so that a client
// cannot probe which keys exist or which check failed.
inline const char* public_reason(auth_reason r) noexcept {
  return r == auth_reason::none ? "ok" : "unauthorized";
}

namespace auth_limits {
inline constexpr std::size_t max_key_id = 64;
inline constexpr std::size_t max_token = 128;
inline constexpr std::size_t min_nonce = 8;
inline constexpr std::size_t max_nonce = 64;
inline constexpr std::size_t max_method = 16;
inline constexpr std::size_t max_signed_headers = 16;
inline constexpr std::size_t max_header_name = 64;
inline constexpr std::size_t max_header_value = 8192;
inline constexpr std::size_t max_query = 8192;
inline constexpr std::size_t max_query_params = 64;
inline constexpr std::size_t max_authorization = 1024;
inline constexpr std::size_t max_secret = 1024;
}  // namespace auth_limits

inline constexpr std::string_view auth_scheme = "TG1-HMAC-SHA256";

// What a client signs, and the parts of a request a server verifies.
struct auth_message {
  std::string_view method;  // "GET", "POST", ...
  std::string_view target;  // path with an optional "?query"; no '#'
  const header_view* headers = nullptr;
  std::size_t header_count = 0;
  std::string_view body;
  // When set, the SHA-256 of the body (the host hashed it while streaming
  // it); body is then ignored.
  const std::uint8_t* body_sha256 = nullptr;
};

// The fields of an Authorization header (views into it, or into the
// caller's strings when signing).
struct auth_params {
  std::string_view key_id;
  std::string_view token;  // empty: none
  std::uint64_t timestamp_ns = 0;
  std::string_view nonce;
  std::string_view signed_headers;  // "host;x-request-id"; empty: none
  std::string_view signature;       // 64 hex digits (parsed headers only)
};

namespace auth_detail_impl {

inline bool id_char(unsigned char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}
inline bool id_ok(std::string_view s, std::size_t max) noexcept {
  if (s.empty() || s.size() > max) return false;
  for (char c : s) {
    if (!id_char(static_cast<unsigned char>(c))) return false;
  }
  return true;
}
inline bool nonce_ok(std::string_view s) noexcept {
  if (s.size() < auth_limits::min_nonce || s.size() > auth_limits::max_nonce) return false;
  for (char c : s) {
    if (!id_char(static_cast<unsigned char>(c)) && c != '~') return false;
  }
  return true;
}
inline bool header_name_char(unsigned char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}
// Lower-case names, ';'-separated, strictly increasing, at most 16.
// Calls f(part) for each sep-separated part of a non-empty s (empty parts
// included) until f returns false; returns false if it did.
template <class F>
bool for_each_part(std::string_view s, char sep, F&& f) {
  for (std::size_t start = 0;;) {
    const std::size_t end = std::min(s.find(sep, start), s.size());
    if (!f(s.substr(start, end - start))) return false;
    if (end == s.size()) return true;
    start = end + 1;
  }
}
inline bool signed_headers_ok(std::string_view s) noexcept {
  if (s.empty()) return true;
  std::string_view prev;
  std::size_t count = 0;
  return for_each_part(s, ';', [&](std::string_view name) noexcept {
    if (name.empty() || name.size() > auth_limits::max_header_name) return false;
    for (char c : name) {
      if (!header_name_char(static_cast<unsigned char>(c))) return false;
    }
    if (count > 0 && !(prev < name)) return false;
    if (++count > auth_limits::max_signed_headers) return false;
    prev = name;
    return true;
  });
}
inline bool parse_u64(std::string_view s, std::uint64_t* out) noexcept {
  if (s.empty() || s.size() > 19) return false;
  std::uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  *out = v;
  return true;
}
inline bool lower_hex(std::string_view s, std::size_t n) noexcept {
  if (s.size() != n) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}
inline int hex_value(unsigned char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
inline bool unreserved(unsigned char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}
inline bool ieq(std::string_view a, std::string_view lower) noexcept {
  if (a.size() != lower.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    auto c = static_cast<unsigned char>(a[i]);
    if (c >= 'A' && c <= 'Z') c = static_cast<unsigned char>(c + 32);
    if (c != static_cast<unsigned char>(lower[i])) return false;
  }
  return true;
}
inline std::string_view trim(std::string_view v) noexcept {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return v;
}

// Streams the canonical request into `out` (a sink with put(string_view)).
// Returns auth_detail::none, or what is malformed.
template <class Sink>
auth_detail canonicalize(const auth_message& m, const auth_params& p, Sink& out) noexcept {
  if (m.method.empty() || m.method.size() > auth_limits::max_method) return auth_detail::bad_method;
  for (char c : m.method) {
    if (c < 'A' || c > 'Z') return auth_detail::bad_method;
  }
  if (!id_ok(p.key_id, auth_limits::max_key_id)) return auth_detail::bad_key_id;
  if (!p.token.empty() && !id_ok(p.token, auth_limits::max_token)) return auth_detail::bad_token;
  if (!nonce_ok(p.nonce)) return auth_detail::bad_nonce;
  // What a server can parse back: at most 19 digits.
  if (p.timestamp_ns > 9'999'999'999'999'999'999ULL) return auth_detail::bad_timestamp;
  if (!signed_headers_ok(p.signed_headers)) return auth_detail::bad_signed_headers;

  // Path and query.
  const std::size_t q = m.target.find('?');
  const std::string_view raw_path = m.target.substr(0, q);
  const std::string_view raw_query =
      q == std::string_view::npos ? std::string_view() : m.target.substr(q + 1);
  if (m.target.find('#') != std::string_view::npos) return auth_detail::bad_path;
  char path[3 * detail::max_path_bytes + 1];
  std::size_t path_len = 0;
  if (raw_path.size() > detail::max_path_bytes ||
      normalize_path(raw_path, path, sizeof path, path_len) != route_status::matched ||
      path_len > sizeof path) {
    return auth_detail::bad_path;
  }

  // Query: split on '&', decode every component, sort by (key, has '=',
  // value) in decoded bytes, re-encode (unreserved bytes as is, every other
  // byte as %XX upper-case).
  struct param {
    std::uint32_t key_at, key_len, value_at, value_len;
    bool has_value;
  };
  if (raw_query.size() > auth_limits::max_query) return auth_detail::bad_query;
  param params[auth_limits::max_query_params];
  std::size_t nparams = 0;
  char decoded[auth_limits::max_query];
  std::size_t used = 0;
  auto decode = [&](std::string_view raw, std::uint32_t* at, std::uint32_t* len) noexcept {
    *at = static_cast<std::uint32_t>(used);
    for (std::size_t i = 0; i < raw.size(); ++i) {
      auto c = static_cast<unsigned char>(raw[i]);
      if (c <= 0x20 || c == 0x7f) return false;
      if (c == '%') {
        if (i + 2 >= raw.size()) return false;
        const int hi = hex_value(static_cast<unsigned char>(raw[i + 1]));
        const int lo = hex_value(static_cast<unsigned char>(raw[i + 2]));
        if (hi < 0 || lo < 0) return false;
        c = static_cast<unsigned char>(hi * 16 + lo);
        i += 2;
      }
      decoded[used++] = static_cast<char>(c);
    }
    *len = static_cast<std::uint32_t>(used - *at);
    return true;
  };
  // "path?" with nothing after it is the same request as "path".
  if (!raw_query.empty() && !for_each_part(raw_query, '&', [&](std::string_view comp) noexcept {
        if (comp.empty() || nparams == auth_limits::max_query_params) return false;
        const std::size_t eq = comp.find('=');
        param& pr = params[nparams++];
        pr.has_value = eq != std::string_view::npos;
        pr.value_at = pr.value_len = 0;
        return decode(comp.substr(0, eq), &pr.key_at, &pr.key_len) &&
               (!pr.has_value || decode(comp.substr(eq + 1), &pr.value_at, &pr.value_len));
      })) {
    return auth_detail::bad_query;
  }
  auto view_of = [&](std::uint32_t at, std::uint32_t len) noexcept {
    return std::string_view(decoded + at, len);
  };
  std::sort(params, params + nparams, [&](const param& a, const param& b) {
    const std::string_view ka = view_of(a.key_at, a.key_len), kb = view_of(b.key_at, b.key_len);
    if (ka != kb) return ka < kb;
    if (a.has_value != b.has_value) return !a.has_value;
    return view_of(a.value_at, a.value_len) < view_of(b.value_at, b.value_len);
  });

  // Signed headers: each exactly once in the request.
  std::string_view names[auth_limits::max_signed_headers];
  std::string_view values[auth_limits::max_signed_headers];
  std::size_t nsigned = 0;
  auth_detail header_problem = auth_detail::none;
  if (!p.signed_headers.empty()) {
    for_each_part(p.signed_headers, ';', [&](std::string_view name) noexcept {
      bool found = false;
      for (std::size_t h = 0; m.headers != nullptr && h < m.header_count; ++h) {
        if (!ieq(m.headers[h].name, name)) continue;
        if (found) {
          header_problem = auth_detail::repeated_header;
          return false;
        }
        found = true;
        const std::string_view v = trim(m.headers[h].value);
        bool ok = v.size() <= auth_limits::max_header_value;
        for (char c : v) {
          const auto u = static_cast<unsigned char>(c);
          ok = ok && !((u < 0x20 && u != '\t') || u == 0x7f);
        }
        if (!ok) {
          header_problem = auth_detail::bad_header_value;
          return false;
        }
        values[nsigned] = v;
      }
      if (!found) {
        header_problem = auth_detail::missing_header;
        return false;
      }
      names[nsigned++] = name;
      return true;
    });
  }
  if (header_problem != auth_detail::none) return header_problem;

  std::uint8_t body_digest[crypto::sha256_size];
  if (m.body_sha256 != nullptr) {
    std::memcpy(body_digest, m.body_sha256, sizeof body_digest);
  } else if (m.body.data() == nullptr && !m.body.empty()) {
    return auth_detail::body_digest;
  } else {
    crypto::sha256(m.body.data(), m.body.size(), body_digest);
  }

  // Emit.
  static constexpr char hexd[] = "0123456789ABCDEF";
  static constexpr char lhex[] = "0123456789abcdef";
  out.put(auth_scheme);
  out.put("\n");
  out.put(m.method);
  out.put("\n");
  out.put(std::string_view(path, path_len));
  out.put("\n");
  for (std::size_t i = 0; i < nparams; ++i) {
    if (i != 0) out.put("&");
    // Runs of unreserved bytes go out in one piece.
    auto emit = [&](std::string_view s) noexcept {
      std::size_t run = 0;
      for (std::size_t at = 0; at < s.size(); ++at) {
        const auto c = static_cast<unsigned char>(s[at]);
        if (unreserved(c)) continue;
        out.put(s.substr(run, at - run));
        const char e[3] = {'%', hexd[c >> 4], hexd[c & 15]};
        out.put(std::string_view(e, 3));
        run = at + 1;
      }
      out.put(s.substr(run));
    };
    emit(view_of(params[i].key_at, params[i].key_len));
    if (params[i].has_value) {
      out.put("=");
      emit(view_of(params[i].value_at, params[i].value_len));
    }
  }
  out.put("\n");
  out.put(p.signed_headers);
  out.put("\n");
  for (std::size_t i = 0; i < nsigned; ++i) {
    out.put(names[i]);
    out.put(":");
    out.put(values[i]);
    out.put("\n");
  }
  out.put(p.key_id);
  out.put("\n");
  out.put(p.token);
  out.put("\n");
  char ts[20];
  std::size_t tn = 0;
  {
    std::uint64_t v = p.timestamp_ns;
    char rev[20];
    do {
      rev[tn++] = static_cast<char>('0' + v % 10);
      v /= 10;
    } while (v != 0);
    for (std::size_t i = 0; i < tn; ++i) ts[i] = rev[tn - 1 - i];
  }
  out.put(std::string_view(ts, tn));
  out.put("\n");
  out.put(p.nonce);
  out.put("\n");
  char bh[2 * crypto::sha256_size];
  for (std::size_t i = 0; i < crypto::sha256_size; ++i) {
    bh[2 * i] = lhex[body_digest[i] >> 4];
    bh[2 * i + 1] = lhex[body_digest[i] & 15];
  }
  out.put(std::string_view(bh, sizeof bh));
  return auth_detail::none;
}

struct string_sink {
  std::string* s;
  void put(std::string_view v) { s->append(v); }
};

// Feeds an HMAC through a small buffer (the canonical form arrives in many
// short pieces).
struct mac_sink {
  crypto::sha256_ctx* ctx;
  char buf[256];
  std::size_t n = 0;
  void put(std::string_view v) noexcept {
    if (v.empty()) return;  // its data() may be NULL, which memcpy must not get
    if (n + v.size() > sizeof buf) flush();
    if (v.size() > sizeof buf) {
      crypto::sha256_update(ctx, v.data(), v.size());
      return;
    }
    std::memcpy(buf + n, v.data(), v.size());
    n += v.size();
  }
  void flush() noexcept {
    if (n != 0) crypto::sha256_update(ctx, buf, n);
    n = 0;
  }
};

inline void to_hex(const std::uint8_t* p, std::size_t n, char* out) noexcept {
  static constexpr char lhex[] = "0123456789abcdef";
  for (std::size_t i = 0; i < n; ++i) {
    out[2 * i] = lhex[p[i] >> 4];
    out[2 * i + 1] = lhex[p[i] & 15];
  }
}

}  // namespace auth_detail_impl

// Parses an Authorization header value. Returns auth_detail::none and fills
// *out (views into `header`), or what is malformed.
inline auth_detail parse_authorization(std::string_view header, auth_params* out) noexcept {
  namespace ai = auth_detail_impl;
  *out = auth_params{};
  if (header.empty()) return auth_detail::missing_authorization;
  if (header.size() > auth_limits::max_authorization) return auth_detail::bad_parameter;
  if (header.substr(0, auth_scheme.size()) != auth_scheme || header.size() == auth_scheme.size() ||
      header[auth_scheme.size()] != ' ') {
    return auth_detail::bad_scheme;
  }
  std::string_view rest = header.substr(auth_scheme.size() + 1);
  bool seen_key = false, seen_ts = false, seen_nonce = false, seen_sig = false, seen_sh = false,
       seen_token = false;
  while (true) {
    rest = ai::trim(rest);
    const std::size_t comma = rest.find(',');
    const std::string_view item = ai::trim(rest.substr(0, comma));
    const std::size_t eq = item.find('=');
    if (eq == std::string_view::npos) return auth_detail::bad_parameter;
    const std::string_view name = item.substr(0, eq);
    const std::string_view value = item.substr(eq + 1);
    auto once = [](bool& seen) {
      if (seen) return false;
      seen = true;
      return true;
    };
    if (name == "KeyId") {
      if (!once(seen_key)) return auth_detail::bad_parameter;
      if (!ai::id_ok(value, auth_limits::max_key_id)) return auth_detail::bad_key_id;
      out->key_id = value;
    } else if (name == "Timestamp") {
      if (!once(seen_ts)) return auth_detail::bad_parameter;
      if (!ai::parse_u64(value, &out->timestamp_ns)) return auth_detail::bad_timestamp;
    } else if (name == "Nonce") {
      if (!once(seen_nonce)) return auth_detail::bad_parameter;
      if (!ai::nonce_ok(value)) return auth_detail::bad_nonce;
      out->nonce = value;
    } else if (name == "Signature") {
      if (!once(seen_sig)) return auth_detail::bad_parameter;
      if (!ai::lower_hex(value, 2 * crypto::sha256_size)) return auth_detail::bad_signature_format;
      out->signature = value;
    } else if (name == "SignedHeaders") {
      if (!once(seen_sh)) return auth_detail::bad_parameter;
      if (!ai::signed_headers_ok(value)) return auth_detail::bad_signed_headers;
      out->signed_headers = value;
    } else if (name == "Token") {
      if (!once(seen_token)) return auth_detail::bad_parameter;
      if (!ai::id_ok(value, auth_limits::max_token)) return auth_detail::bad_token;
      out->token = value;
    } else {
      return auth_detail::bad_parameter;
    }
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
  }
  if (!seen_key || !seen_ts || !seen_nonce || !seen_sig) return auth_detail::missing_parameter;
  return auth_detail::none;
}

// The canonical request a client signs (for debugging and test vectors).
inline absl::StatusOr<std::string> canonical_request(const auth_message& m, const auth_params& p) {
  std::string s;
  auth_detail_impl::string_sink sink{&s};
  const auth_detail d = auth_detail_impl::canonicalize(m, p, sink);
  if (d != auth_detail::none) {
    return absl::InvalidArgumentError(std::string("cannot sign: ") + auth_detail_name(d));
  }
  return s;
}

// Client side: the Authorization header value for message m signed with
// `key` (p.signature is ignored). InvalidArgument names what is malformed.
inline absl::StatusOr<std::string> sign_request(const auth_message& m, const auth_params& p,
                                                const crypto::hmac_sha256_key& key) {
  if (absl::Status st = crypto::available(); !st.ok()) return st;
  crypto::sha256_ctx ctx;
  key.begin(&ctx);
  auth_detail_impl::mac_sink sink{&ctx, {}, 0};
  const auth_detail d = auth_detail_impl::canonicalize(m, p, sink);
  if (d != auth_detail::none) {
    return absl::InvalidArgumentError(std::string("cannot sign: ") + auth_detail_name(d));
  }
  sink.flush();
  std::uint8_t mac[crypto::sha256_size];
  key.finish(&ctx, mac);
  char sig[2 * crypto::sha256_size];
  auth_detail_impl::to_hex(mac, sizeof mac, sig);
  std::string h(auth_scheme);
  h += " KeyId=";
  h += p.key_id;
  if (!p.signed_headers.empty()) {
    h += ", SignedHeaders=";
    h += p.signed_headers;
  }
  h += ", Timestamp=";
  h += std::to_string(p.timestamp_ns);
  h += ", Nonce=";
  h += p.nonce;
  if (!p.token.empty()) {
    h += ", Token=";
    h += p.token;
  }
  h += ", Signature=";
  h.append(sig, sizeof sig);
  return h;
}

struct auth_result {
  auth_reason reason = auth_reason::malformed;
  auth_detail detail = auth_detail::none;
  auth_params params;  // what was parsed (views into the Authorization header)
  bool ok() const noexcept { return reason == auth_reason::none; }
};

struct auth_options {
  std::uint64_t max_skew_ns = 30'000'000'000;  // 30 s either way
  std::size_t nonce_capacity = 1 << 18;        // nonces inside the window (64 B each)
  std::uint64_t seed = 0x5eed0a17c0ffee11ULL;  // nonce hashing
};

enum class auth_event_kind : std::int32_t {
  key_added = 0,
  key_removed = 1,
  key_revoked = 2,
  token_revoked = 3,
  key_unrevoked = 4,
  token_unrevoked = 5,
  revocations_replaced = 6,
};

struct auth_event {
  auth_event_kind kind;
  std::string_view id;  // the key or token id; empty for revocations_replaced
  std::uint64_t revocation_version;
  std::uint64_t now_ns;
};

struct auth_stats {
  std::array<std::uint64_t, auth_reason_count> results{};  // by reason; [none]: verified
  std::uint64_t keys = 0, revoked_keys = 0, revoked_tokens = 0, revocation_version = 0;
};

class authenticator {
 public:
  using listener_fn = void (*)(void* user, const auth_event& ev);
  static constexpr std::size_t max_nonce_capacity = std::size_t{1} << 26;
  static constexpr std::size_t shards = 16;

  static absl::StatusOr<std::unique_ptr<authenticator>> create(const auth_options& o) {
    if (absl::Status st = crypto::available(); !st.ok()) return st;
    if (o.max_skew_ns == 0 || o.max_skew_ns > std::uint64_t{24} * 3600 * 1'000'000'000) {
      return absl::OutOfRangeError("max_skew_ns must be 1 ns .. 24 h");
    }
    if (o.nonce_capacity < shards || o.nonce_capacity > max_nonce_capacity) {
      return absl::OutOfRangeError("nonce_capacity must be 16..67108864 nonces");
    }
    return std::unique_ptr<authenticator>(new authenticator(o));
  }

  authenticator(const authenticator&) = delete;
  authenticator& operator=(const authenticator&) = delete;

  // Adds (or replaces) a key valid for now in [not_before_ns, not_after_ns).
  // The secret is used once, to precompute the HMAC pads, and not kept.
  absl::Status add_key(std::string_view key_id, std::string_view secret,
                       std::uint64_t not_before_ns, std::uint64_t not_after_ns,
                       std::uint64_t now_ns) {
    if (!auth_detail_impl::id_ok(key_id, auth_limits::max_key_id)) {
      return absl::InvalidArgumentError("a key id is 1..64 of [A-Za-z0-9._-]");
    }
    if (secret.empty() || secret.size() > auth_limits::max_secret) {
      return absl::InvalidArgumentError("a secret is 1..1024 bytes");
    }
    if (not_before_ns >= not_after_ns) {
      return absl::InvalidArgumentError("not_before_ns must be before not_after_ns");
    }
    const crypto::hmac_sha256_key k(secret);
    return change(auth_event_kind::key_added, key_id, now_ns, [&](snapshot& s) {
      s.keys.insert_or_assign(std::string(key_id), key_entry{k, not_before_ns, not_after_ns});
      return absl::OkStatus();
    });
  }

  // NotFound when there is no such key.
  absl::Status remove_key(std::string_view key_id, std::uint64_t now_ns) {
    if (!auth_detail_impl::id_ok(key_id, auth_limits::max_key_id)) {
      return absl::InvalidArgumentError("a key id is 1..64 of [A-Za-z0-9._-]");
    }
    return change(auth_event_kind::key_removed, key_id, now_ns, [&](snapshot& s) {
      auto it = s.keys.find(av(key_id));
      if (it == s.keys.end()) return absl::NotFoundError("no such key");
      s.keys.erase(it);
      return absl::OkStatus();
    });
  }

  // Revokes (or un-revokes) key ids or token ids; each call bumps the
  // revocation version. Revoking twice is a no-op (no event).
  absl::Status revoke_key(std::string_view id, std::uint64_t now_ns) {
    return set_revoked(true, true, id, now_ns);
  }
  absl::Status revoke_token(std::string_view id, std::uint64_t now_ns) {
    return set_revoked(false, true, id, now_ns);
  }
  absl::Status unrevoke_key(std::string_view id, std::uint64_t now_ns) {
    return set_revoked(true, false, id, now_ns);
  }
  absl::Status unrevoke_token(std::string_view id, std::uint64_t now_ns) {
    return set_revoked(false, false, id, now_ns);
  }

  // Replaces both revocation lists at once with a list at `version`, which
  // must be greater than the current version (FailedPrecondition otherwise:
  // a stale list never overwrites a newer one).
  absl::Status replace_revocations(std::uint64_t version, std::span<const std::string_view> keys,
                                   std::span<const std::string_view> tokens, std::uint64_t now_ns) {
    for (std::string_view k : keys) {
      if (!auth_detail_impl::id_ok(k, auth_limits::max_key_id)) {
        return absl::InvalidArgumentError("a revoked key id is 1..64 of [A-Za-z0-9._-]");
      }
    }
    for (std::string_view t : tokens) {
      if (!auth_detail_impl::id_ok(t, auth_limits::max_token)) {
        return absl::InvalidArgumentError("a revoked token id is 1..128 of [A-Za-z0-9._-]");
      }
    }
    std::lock_guard<std::mutex> g(writer_);
    const auto cur = state_.current();
    if (version <= cur->revocation_version) {
      return absl::FailedPreconditionError("revocation version " + std::to_string(version) +
                                           " is not newer than the current " +
                                           std::to_string(cur->revocation_version));
    }
    auto next = std::make_shared<snapshot>(*cur);
    next->revoked_keys.clear();
    next->revoked_tokens.clear();
    for (std::string_view k : keys) next->revoked_keys.insert(std::string(k));
    for (std::string_view t : tokens) next->revoked_tokens.insert(std::string(t));
    next->revocation_version = version;
    state_.publish(std::move(next));
    notify({auth_event_kind::revocations_replaced, std::string_view(), version, now_ns});
    return absl::OkStatus();
  }

  std::uint64_t revocation_version() const noexcept {
    return state_.read([](const snapshot& s) noexcept { return s.revocation_version; });
  }

  // Verifies a request at now_ns (wall-clock Unix time in nanoseconds, the
  // clock clients stamp requests with).
  auth_result verify(const auth_message& m, std::string_view authorization,
                     std::uint64_t now_ns) noexcept {
    auth_result r;
    r.detail = parse_authorization(authorization, &r.params);
    if (r.detail != auth_detail::none) return done(r, auth_reason::malformed);
    // 2. skew, against the latest clock seen for the lower bound.
    std::uint64_t high = high_water_.load(std::memory_order_relaxed);
    while (now_ns > high &&
           !high_water_.compare_exchange_weak(high, now_ns, std::memory_order_relaxed)) {
    }
    const std::uint64_t latest = std::max(high, now_ns);
    const std::uint64_t ts = r.params.timestamp_ns;
    if ((ts > now_ns && ts - now_ns > opts_.max_skew_ns) ||
        (latest > ts && latest - ts > opts_.max_skew_ns)) {  // no overflow near 2^64
      return done(r, auth_reason::skew);
    }
    // 3 and 4, on the snapshot current when they start (no lock, no wait).
    const auth_reason checked = state_.read([&](const snapshot& s) noexcept {
      if (!s.revoked_keys.empty() && s.revoked_keys.contains(av(r.params.key_id))) {
        return auth_reason::revoked_key;
      }
      auto it = s.keys.find(av(r.params.key_id));
      if (it == s.keys.end()) return auth_reason::unknown_key;
      const key_entry& k = it->second;
      if (now_ns < k.not_before || now_ns >= k.not_after) return auth_reason::expired_key;
      if (!r.params.token.empty() && !s.revoked_tokens.empty() &&
          s.revoked_tokens.contains(av(r.params.token))) {
        return auth_reason::revoked_token;
      }
      crypto::sha256_ctx ctx;
      k.key.begin(&ctx);
      auth_detail_impl::mac_sink sink{&ctx, {}, 0};
      r.detail = auth_detail_impl::canonicalize(m, r.params, sink);
      if (r.detail != auth_detail::none) return auth_reason::malformed;
      sink.flush();
      std::uint8_t mac[crypto::sha256_size];
      k.key.finish(&ctx, mac);
      char expected[2 * crypto::sha256_size];
      auth_detail_impl::to_hex(mac, sizeof mac, expected);
      if (!crypto::equal_constant_time(expected, r.params.signature.data(), sizeof expected)) {
        return auth_reason::bad_signature;
      }
      return auth_reason::none;
    });
    if (checked != auth_reason::none) return done(r, checked);
    // 5. the nonce.
    const auth_reason n = remember_nonce(r.params.key_id, r.params.nonce, ts, latest);
    return done(r, n);
  }

  // Installs fn(user, ev) for every change (nullptr removes it). Called
  // with the writer lock held: fn must not change this authenticator.
  void set_listener(listener_fn fn, void* user) {
    std::lock_guard<std::mutex> g(writer_);
    listener_ = fn;
    listener_user_ = user;
  }

  auth_stats stats() const {
    auth_stats st;
    for (std::size_t i = 0; i < auth_reason_count; ++i) st.results[i] = stats_.sum(i);
    const auto s = state_.current();
    st.keys = s->keys.size();
    st.revoked_keys = s->revoked_keys.size();
    st.revoked_tokens = s->revoked_tokens.size();
    st.revocation_version = s->revocation_version;
    return st;
  }

  const auth_options& options() const noexcept { return opts_; }

 private:
  struct key_entry {
    crypto::hmac_sha256_key key;
    std::uint64_t not_before, not_after;
  };
  struct snapshot {
    absl::flat_hash_map<std::string, key_entry> keys;
    absl::flat_hash_set<std::string> revoked_keys, revoked_tokens;
    std::uint64_t revocation_version = 0;
  };
  // Debian's Abseil has its own string_view: look std ones up through it.
  static absl::string_view av(std::string_view v) noexcept { return {v.data(), v.size()}; }

  struct nonce_slot {
    std::uint64_t hash = 0;  // 0: empty
    std::uint64_t expires = 0;
  };
  struct alignas(64) shard {
    std::mutex mu;
    std::vector<nonce_slot> table, spare;
    std::size_t used = 0;  // non-empty slots in table
  };

  explicit authenticator(const auth_options& o)
      : opts_(o), state_(std::make_shared<const snapshot>()) {
    per_shard_ = (o.nonce_capacity + shards - 1) / shards;
    const std::size_t slots = detail::next_pow2(2 * per_shard_);
    for (shard& sh : shards_) {
      sh.table.assign(slots, nonce_slot{});
      sh.spare.assign(slots, nonce_slot{});
    }
  }

  auth_result done(auth_result& r, auth_reason reason) noexcept {
    r.reason = reason;
    stats_.add(static_cast<std::size_t>(reason));
    return r;
  }

  template <class F>
  absl::Status change(auth_event_kind kind, std::string_view id, std::uint64_t now_ns, F&& edit) {
    std::lock_guard<std::mutex> g(writer_);
    auto next = std::make_shared<snapshot>(*state_.current());
    if (absl::Status st = edit(*next); !st.ok()) return st;
    const std::uint64_t version = next->revocation_version;
    state_.publish(std::move(next));
    notify({kind, id, version, now_ns});
    return absl::OkStatus();
  }

  absl::Status set_revoked(bool key, bool on, std::string_view id, std::uint64_t now_ns) {
    if (!auth_detail_impl::id_ok(id, key ? auth_limits::max_key_id : auth_limits::max_token)) {
      return absl::InvalidArgumentError(key ? "a key id is 1..64 of [A-Za-z0-9._-]"
                                            : "a token id is 1..128 of [A-Za-z0-9._-]");
    }
    std::lock_guard<std::mutex> g(writer_);
    const auto cur = state_.current();
    const auto& set = key ? cur->revoked_keys : cur->revoked_tokens;
    if (set.contains(av(id)) == on) return absl::OkStatus();
    auto next = std::make_shared<snapshot>(*cur);
    auto& nset = key ? next->revoked_keys : next->revoked_tokens;
    if (on) {
      nset.insert(std::string(id));
    } else {
      nset.erase(std::string(id));
    }
    if (next->revocation_version == std::numeric_limits<std::uint64_t>::max()) {
      return absl::FailedPreconditionError(
          "the revocation version is at its maximum; it never wraps (a stale list would look "
          "newer)");
    }
    const std::uint64_t version = ++next->revocation_version;
    state_.publish(std::move(next));
    const auth_event_kind kind =
        key ? (on ? auth_event_kind::key_revoked : auth_event_kind::key_unrevoked)
            : (on ? auth_event_kind::token_revoked : auth_event_kind::token_unrevoked);
    notify({kind, id, version, now_ns});
    return absl::OkStatus();
  }

  void notify(const auth_event& ev) const {
    if (listener_ != nullptr) listener_(listener_user_, ev);
  }

  // Under the shard's mutex. Remembers (hash, expires); replay when a live
  // entry has the hash; nonce_capacity when no room is left.
  auth_reason remember_nonce(std::string_view key_id, std::string_view nonce, std::uint64_t ts,
                             std::uint64_t latest) noexcept {
    const std::uint64_t kh = detail::hash_bytes(key_id.data(), key_id.size(), opts_.seed);
    std::uint64_t h = detail::hash_bytes(nonce.data(), nonce.size(), opts_.seed ^ kh);
    if (h == 0) h = 1;  // 0 marks an empty slot; 1 colliding can only refuse
    const std::uint64_t expires = ts + opts_.max_skew_ns;
    shard& sh = shards_[(h >> 60) & (shards - 1)];
    std::lock_guard<std::mutex> g(sh.mu);
    for (int attempt = 0; attempt < 2; ++attempt) {
      const std::size_t mask = sh.table.size() - 1;
      std::size_t reuse = sh.table.size();
      for (std::size_t d = 0; d <= mask; ++d) {
        nonce_slot& s = sh.table[(h + d) & mask];
        if (s.hash == 0) {
          if (reuse == sh.table.size()) {
            if (sh.used >= per_shard_) break;  // no empty slot may be taken
            ++sh.used;
            s = nonce_slot{h, expires};
            return auth_reason::none;
          }
          break;
        }
        const bool live = s.expires >= latest;
        if (s.hash == h && live) return auth_reason::replay;
        if (!live && reuse == sh.table.size()) reuse = (h + d) & mask;
      }
      if (reuse != sh.table.size()) {
        sh.table[reuse] = nonce_slot{h, expires};
        return auth_reason::none;
      }
      // Full of live entries along the way: rebuild without the expired
      // ones once, then give up (fail closed).
      if (attempt == 0 && !rebuild(sh, latest)) break;
    }
    return auth_reason::nonce_capacity;
  }

  // Moves the live entries into the spare table; false when none expired.
  static bool rebuild(shard& sh, std::uint64_t latest) noexcept {
    std::size_t live = 0;
    for (const nonce_slot& s : sh.table) live += s.hash != 0 && s.expires >= latest;
    if (live == sh.used) return false;
    std::fill(sh.spare.begin(), sh.spare.end(), nonce_slot{});
    const std::size_t mask = sh.spare.size() - 1;
    for (const nonce_slot& s : sh.table) {
      if (s.hash == 0 || s.expires < latest) continue;
      std::size_t at = s.hash & mask;
      while (sh.spare[at].hash != 0) at = (at + 1) & mask;
      sh.spare[at] = s;
    }
    sh.table.swap(sh.spare);
    sh.used = live;
    return true;
  }

  auth_options opts_;
  std::size_t per_shard_ = 0;
  detail::rcu_cell<snapshot> state_;
  std::mutex writer_;
  listener_fn listener_ = nullptr;
  void* listener_user_ = nullptr;
  std::atomic<std::uint64_t> high_water_{0};
  std::array<shard, shards> shards_;
  mutable detail::striped_counters<auth_reason_count> stats_;
};

}  // namespace tollgate
