// Fuzz target: the Authorization header parser, the canonicaliser, the
// signer and the verifier.
//
// Input: lines. Line 1 is an Authorization header value, line 2 the method,
// line 3 the request target, line 4 the signed header names, line 5 the
// nonce, line 6 the token id; every further line up to an empty line is a
// header "name:value"; the rest is the body. Missing lines are empty. These
// must hold, or the target aborts:
//   - parse_authorization either refuses with a detail or returns fields
//     that lie inside the header and obey their alphabets;
//   - verify never accepts the fuzzed header (it is not signed with the key
//     unless the fuzzer forged HMAC-SHA256) and always gives a reason;
//   - when the request can be canonicalised: the canonical form has exactly
//     9 + (signed headers) newlines and no other control byte than tab in
//     header lines; it is a pure function of the request (twice the same);
//     signing it gives a header that parses back to the same fields and
//     that the verifier accepts once, then refuses as a replay;
//   - when it cannot, signing refuses with the same detail.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "tollgate/auth.hpp"

namespace {

[[noreturn]] void violated(const char* what) {
  std::fprintf(stderr, "auth_fuzz: %s\n", what);
  std::abort();
}

constexpr std::uint64_t now = 1'700'000'000'000'000'000ULL;

tollgate::authenticator& server() {
  static std::unique_ptr<tollgate::authenticator> a = [] {
    tollgate::auth_options o;
    o.nonce_capacity = 1 << 16;
    auto made = tollgate::authenticator::create(o);
    if (!made.ok()) violated("cannot create the authenticator (is BoringSSL installed?)");
    if (!(*made)->add_key("fuzz-key", "fuzz-secret", 0, ~0ULL, now).ok()) violated("add_key");
    return std::move(*made);
  }();
  return *a;
}

bool inside(std::string_view part, std::string_view whole) {
  return part.empty() ||
         (part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  std::vector<std::string_view> lines;
  std::size_t at = 0;
  while (lines.size() < 6 && at <= in.size()) {
    const std::size_t nl = in.find('\n', at);
    lines.push_back(in.substr(at, nl == std::string_view::npos ? std::string_view::npos : nl - at));
    at = nl == std::string_view::npos ? in.size() + 1 : nl + 1;
  }
  while (lines.size() < 6) lines.emplace_back();
  std::vector<tollgate::header_view> headers;
  while (at < in.size()) {
    const std::size_t nl = in.find('\n', at);
    const std::string_view h =
        in.substr(at, nl == std::string_view::npos ? std::string_view::npos : nl - at);
    at = nl == std::string_view::npos ? in.size() : nl + 1;
    if (h.empty()) break;
    const std::size_t colon = h.find(':');
    headers.push_back({h.substr(0, colon),
                       colon == std::string_view::npos ? std::string_view() : h.substr(colon + 1)});
  }
  const std::string_view body = at < in.size() ? in.substr(at) : std::string_view();

  // 1. The parser on the fuzzed header.
  const std::string_view header = lines[0];
  tollgate::auth_params parsed;
  const tollgate::auth_detail d = tollgate::parse_authorization(header, &parsed);
  if (d == tollgate::auth_detail::none) {
    if (!inside(parsed.key_id, header) || !inside(parsed.nonce, header) ||
        !inside(parsed.token, header) || !inside(parsed.signature, header) ||
        !inside(parsed.signed_headers, header)) {
      violated("a parsed field is not inside the header");
    }
    if (parsed.key_id.empty() || parsed.nonce.size() < 8 || parsed.signature.size() != 64) {
      violated("a parsed header lacks a required field");
    }
  }

  tollgate::auth_message m;
  m.method = lines[1];
  m.target = lines[2];
  m.headers = headers.data();
  m.header_count = headers.size();
  m.body = body;

  // 2. The verifier never accepts an unsigned header.
  const tollgate::auth_result r = server().verify(m, header, now);
  if (r.ok()) violated("a fuzzed header was accepted");

  // 3. Canonicalise, sign, parse back, verify.
  tollgate::auth_params p;
  p.key_id = "fuzz-key";
  p.signed_headers = lines[3];
  p.nonce = lines[4];
  p.token = lines[5];
  p.timestamp_ns = now;
  const auto c1 = tollgate::canonical_request(m, p);
  const tollgate::crypto::hmac_sha256_key key("fuzz-secret");
  const auto signed_header = tollgate::sign_request(m, p, key);
  if (!c1.ok()) {
    if (signed_header.ok()) violated("signed a request that does not canonicalise");
    if (signed_header.status().message() != c1.status().message()) {
      violated("signing and canonicalising refuse for different reasons");
    }
    return 0;
  }
  const auto c2 = tollgate::canonical_request(m, p);
  if (!c2.ok() || *c1 != *c2) violated("canonicalisation is not a function of the request");
  std::size_t newlines = 0, names = p.signed_headers.empty() ? 0 : 1;
  for (char ch : p.signed_headers) names += ch == ';';
  for (char ch : *c1) {
    const auto u = static_cast<unsigned char>(ch);
    if (ch == '\n') {
      ++newlines;
    } else if ((u < 0x20 && ch != '\t') || u == 0x7f) {
      violated("a control byte in the canonical form");
    }
  }
  if (newlines != 9 + names) violated("the canonical form has the wrong number of lines");
  if (!signed_header.ok()) violated("canonicalised but could not sign");
  tollgate::auth_params back;
  if (tollgate::parse_authorization(*signed_header, &back) != tollgate::auth_detail::none) {
    violated("a signed header does not parse");
  }
  if (back.key_id != p.key_id || back.nonce != p.nonce || back.token != p.token ||
      back.signed_headers != p.signed_headers || back.timestamp_ns != p.timestamp_ns) {
    violated("a signed header parses to other fields");
  }
  // Earlier inputs may have used this nonce, or (in a long run, all at one
  // timestamp) filled the nonce cache, which then refuses: both are correct.
  const tollgate::auth_result v1 = server().verify(m, *signed_header, now);
  if (v1.reason == tollgate::auth_reason::nonce_capacity) return 0;
  if (v1.reason != tollgate::auth_reason::none && v1.reason != tollgate::auth_reason::replay) {
    violated("a signed request was refused");
  }
  const tollgate::auth_result v2 = server().verify(m, *signed_header, now);
  if (v2.reason != tollgate::auth_reason::replay) violated("a replay was not refused");
  return 0;
}
