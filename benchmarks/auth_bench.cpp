// Request verification and signing: tollgate::authenticator against the
// same work done the plain way (build the canonical string, then BoringSSL's
// one-shot HMAC, which rehashes the key on every call).
//
// Workload: a POST with a query, two signed headers and a body, sized so the
// canonical request is 256 bytes (checked at start-up). 65536 requests are
// signed in advance with distinct nonces.
//   auth/verify/256B         cycles through 4096 of them (about 1 MB of
//                            headers: a server verifies a header it has just
//                            received, so it is in cache); after the first
//                            4096 iterations a verification ends in the
//                            replay branch (the same MAC work; a nonce lookup
//                            instead of an insert)
//   auth/verify/256B_cold    cycles through all 65536 (15 MB of headers, a
//                            nonce table of 2^17 entries): every header and
//                            nonce slot comes from memory
// Implementations:
//   @tollgate                parse, skew, key lookup, canonical form
//                            streamed into the precomputed key state,
//                            constant-time compare, nonce cache
//   @rehash_hmac             canonical string built in a std::string,
//                            HMAC(EVP_sha256()) one-shot (key rehashed),
//                            constant-time compare (no skew, key or nonce work)
//   auth/sign/256B@tollgate  sign_request with a precomputed key
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "bench_util.hpp"
#include "tollgate/auth.hpp"

namespace {

namespace tb = tollgate_bench;

constexpr std::uint64_t t0 = 1'700'000'000'000'000'000ULL;
constexpr std::size_t requests = 1 << 16;
const std::string secret = "benchmark-secret-0123456789abcdef";

struct workload {
  std::string method = "POST";
  std::string target = "/v1/orders?account=ACCT-0042&symbol=ESZ6&tif=day";
  std::vector<tollgate::header_view> headers = {{"Host", "gw.example.com"},
                                                {"Content-Type", "application/json"}};
  std::string body = R"({"side":"buy","qty":10,"px":4500.25})";
  std::vector<std::string> nonces, signed_headers;
  std::size_t canonical_size = 0;

  tollgate::auth_message message() const {
    tollgate::auth_message m;
    m.method = method;
    m.target = target;
    m.headers = headers.data();
    m.header_count = headers.size();
    m.body = body;
    return m;
  }
  tollgate::auth_params params(std::size_t i) const {
    tollgate::auth_params p;
    p.key_id = "bench-key";
    p.signed_headers = "content-type;host";
    p.nonce = nonces[i];
    p.timestamp_ns = t0;
    return p;
  }
  workload() {
    const tollgate::crypto::hmac_sha256_key key(secret);
    for (std::size_t i = 0; i < requests; ++i) {
      char b[40];
      std::snprintf(b, sizeof b, "bench-nonce-%010zu", i);
      nonces.emplace_back(b);
    }
    // The fields above make a canonical request of exactly 256 bytes.
    auto c = tollgate::canonical_request(message(), params(0));
    if (!c.ok()) tb::die("canonical_request failed");
    canonical_size = c->size();
    if (canonical_size != 256) tb::die("the canonical request is not 256 bytes");
    for (std::size_t i = 0; i < requests; ++i) {
      auto h = tollgate::sign_request(message(), params(i), key);
      if (!h.ok()) tb::die("sign_request failed");
      signed_headers.push_back(std::move(*h));
    }
  }
};

const workload& work() {
  static const workload w;
  return w;
}

template <std::size_t Ring>
void bm_verify_tollgate(benchmark::State& st) {
  const workload& w = work();
  tollgate::auth_options o;
  o.nonce_capacity = 2 * requests;
  auto made = tollgate::authenticator::create(o);
  if (!made.ok()) tb::die(std::string(made.status().message()));
  auto& a = **made;
  if (!a.add_key("bench-key", secret, 0, ~0ULL, t0).ok()) tb::die("add_key");
  const tollgate::auth_message m = w.message();
  std::size_t i = 0;
  std::uint64_t ok = 0;
  for (auto _ : st) {
    const auto r = a.verify(m, w.signed_headers[i++ & (Ring - 1)], t0);
    ok += r.reason == tollgate::auth_reason::none || r.reason == tollgate::auth_reason::replay;
  }
  if (ok != static_cast<std::uint64_t>(st.iterations())) st.SkipWithError("a request failed");
  st.counters["canonical_bytes"] = static_cast<double>(w.canonical_size);
  tb::report_decisions(st, 1, ok);
}

template <std::size_t Ring>
void bm_verify_rehash(benchmark::State& st) {
  const workload& w = work();
  const tollgate::auth_message m = w.message();
  std::size_t i = 0;
  std::uint64_t ok = 0;
  for (auto _ : st) {
    const std::string& header = w.signed_headers[i++ & (Ring - 1)];
    tollgate::auth_params p;
    if (tollgate::parse_authorization(header, &p) != tollgate::auth_detail::none) continue;
    auto c = tollgate::canonical_request(m, p);
    if (!c.ok()) continue;
    std::uint8_t mac[32];
    tollgate::crypto::hmac_sha256_reference(secret, c->data(), c->size(), mac);
    char hex[64];
    tollgate::auth_detail_impl::to_hex(mac, 32, hex);
    ok += tollgate::crypto::equal_constant_time(hex, p.signature.data(), 64);
  }
  if (ok != static_cast<std::uint64_t>(st.iterations())) st.SkipWithError("a request failed");
  tb::report_decisions(st, 1, ok);
}

void bm_sign(benchmark::State& st) {
  const workload& w = work();
  const tollgate::crypto::hmac_sha256_key key(secret);
  const tollgate::auth_message m = w.message();
  std::size_t i = 0;
  std::uint64_t ok = 0;
  for (auto _ : st) {
    auto h = tollgate::sign_request(m, w.params(i++ & (requests - 1)), key);
    ok += h.ok();
    benchmark::DoNotOptimize(h);
  }
  tb::report_decisions(st, 1, ok);
}

const int registered = [] {
  tb::register_1_thread("auth/verify/256B@tollgate", bm_verify_tollgate<4096>);
  tb::register_1_thread("auth/verify/256B@rehash_hmac", bm_verify_rehash<4096>);
  tb::register_1_thread("auth/verify/256B_cold@tollgate", bm_verify_tollgate<requests>);
  tb::register_1_thread("auth/verify/256B_cold@rehash_hmac", bm_verify_rehash<requests>);
  tb::register_1_thread("auth/sign/256B@tollgate", bm_sign);
  return 0;
}();

}  // namespace

BENCHMARK_MAIN();
