// tollgate::authenticator and the signer: canonical form, every failure
// reason, rotation, replay, revocation (also across threads), nonce memory.
#include <catch2/catch.hpp>

#include <atomic>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tollgate/auth.hpp"

namespace {

using tollgate::auth_detail;
using tollgate::auth_message;
using tollgate::auth_params;
using tollgate::auth_reason;
using tollgate::header_view;

constexpr std::uint64_t sec = 1'000'000'000;
constexpr std::uint64_t t0 = 1'700'000'000 * sec;  // a wall-clock time

struct request {
  std::string method = "POST";
  std::string target = "/v1/orders?account=A1&symbol=ES";
  std::vector<std::pair<std::string, std::string>> headers = {
      {"Host", "gw.example"}, {"Content-Type", "application/json"}, {"X-Request-Id", "r-1"}};
  std::string body = R"({"qty":10,"px":4500.25})";
  std::vector<header_view> views;
  auth_message message() {
    views.clear();
    for (const auto& [n, v] : headers) views.push_back(header_view{n, v});
    auth_message m;
    m.method = method;
    m.target = target;
    m.headers = views.data();
    m.header_count = views.size();
    m.body = body;
    return m;
  }
};

auth_params params(std::string_view nonce = "nonce-0001", std::uint64_t ts = t0) {
  auth_params p;
  p.key_id = "k1";
  p.timestamp_ns = ts;
  p.nonce = nonce;
  p.signed_headers = "content-type;host";
  return p;
}

const std::string secret1 = "s3cr3t-key-one-0123456789abcdef";

std::string sign(request& r, const auth_params& p, const std::string& secret = secret1) {
  auto h = tollgate::sign_request(r.message(), p, tollgate::crypto::hmac_sha256_key(secret));
  REQUIRE(h.ok());
  return *h;
}

std::unique_ptr<tollgate::authenticator> make(std::size_t nonce_capacity = 1024,
                                              std::uint64_t skew = 30 * sec) {
  tollgate::auth_options o;
  o.nonce_capacity = nonce_capacity;
  o.max_skew_ns = skew;
  auto a = tollgate::authenticator::create(o);
  REQUIRE(a.ok());
  REQUIRE((*a)->add_key("k1", secret1, t0 - 3600 * sec, t0 + 3600 * sec, t0).ok());
  return std::move(*a);
}

}  // namespace

TEST_CASE("auth: the canonical request is exactly the documented form", "[auth]") {
  request r;
  r.target = "/v1//orders/./x/../?symbol=ES&account=A%31&flag&z=a+b%2fc";
  auth_params p = params();
  p.token = "tok-7";
  auto c = tollgate::canonical_request(r.message(), p);
  REQUIRE(c.ok());
  std::uint8_t d[32];
  tollgate::crypto::sha256(r.body.data(), r.body.size(), d);
  char hex[65] = {};
  tollgate::auth_detail_impl::to_hex(d, 32, hex);
  CHECK(*c == std::string("TG1-HMAC-SHA256\n"
                          "POST\n"
                          "/v1/orders\n"
                          "account=A1&flag&symbol=ES&z=a%2Bb%2Fc\n"
                          "content-type;host\n"
                          "content-type:application/json\n"
                          "host:gw.example\n"
                          "k1\n"
                          "tok-7\n"
                          "1700000000000000000\n"
                          "nonce-0001\n") +
                  hex);
}

TEST_CASE("auth: a signed request verifies and its replay is refused", "[auth]") {
  auto a = make();
  request r;
  const std::string h = sign(r, params());
  CHECK(h.rfind("TG1-HMAC-SHA256 KeyId=k1, SignedHeaders=content-type;host, Timestamp=", 0) == 0);
  auto res = a->verify(r.message(), h, t0 + sec);
  CHECK(res.reason == auth_reason::none);
  CHECK(res.params.key_id == "k1");
  CHECK(res.params.nonce == "nonce-0001");
  res = a->verify(r.message(), h, t0 + 2 * sec);
  CHECK(res.reason == auth_reason::replay);
  // The same nonce under another key is another nonce.
  REQUIRE(a->add_key("k2", "other-secret", t0 - sec, t0 + sec * 3600, t0).ok());
  auth_params p2 = params();
  p2.key_id = "k2";
  CHECK(a->verify(r.message(), sign(r, p2, "other-secret"), t0).reason == auth_reason::none);
  const auto st = a->stats();
  CHECK(st.results[0] == 2);
  CHECK(st.results[static_cast<int>(auth_reason::replay)] == 1);
}

TEST_CASE("auth: equivalent spellings share a signature - every signed change breaks it",
          "[auth]") {
  auto a = make();
  request r;
  const std::string h = sign(r, params("nonce-equiv-1"));
  request same = r;
  same.target = "/v1/./orders?symbol=E%53&account=A1";  // path dots, order, escapes
  same.headers = {{"host", "  gw.example "}, {"CONTENT-TYPE", "application/json"}};
  CHECK(a->verify(same.message(), h, t0).reason == auth_reason::none);

  int n = 0;
  auto changed = [&](auto edit) {
    request c = r;
    edit(c);
    const std::string nonce = "nonce-chg-" + std::to_string(n++);
    auth_params p = params();
    p.nonce = nonce;  // a view: the string lives until the call returns
    std::string hh = sign(r, p);
    return a->verify(c.message(), hh, t0).reason;
  };
  CHECK(changed([](request& c) { c.method = "PUT"; }) == auth_reason::bad_signature);
  CHECK(changed([](request& c) { c.target = "/v1/order"; }) == auth_reason::bad_signature);
  CHECK(changed([](request& c) { c.target = "/v1/orders?account=A1&symbol=NQ"; }) ==
        auth_reason::bad_signature);
  CHECK(changed([](request& c) { c.target = "/v1/orders?account=A1&symbol=ES&x=1"; }) ==
        auth_reason::bad_signature);
  CHECK(changed([](request& c) { c.target = "/v1/orders?account=A1&symbol=ES="; }) ==
        auth_reason::bad_signature);
  CHECK(changed([](request& c) { c.body[5] = '9'; }) == auth_reason::bad_signature);
  CHECK(changed([](request& c) { c.headers[0].second = "gw.example.evil"; }) ==
        auth_reason::bad_signature);
  // An unsigned header may change.
  CHECK(changed([](request& c) { c.headers[2].second = "r-2"; }) == auth_reason::none);
  // The Authorization fields are signed too.
  request c = r;
  std::string hh = sign(r, params("nonce-field-1"));
  const auto at = hh.find("Nonce=nonce-field-1");
  REQUIRE(at != std::string::npos);
  hh.replace(at, 19, "Nonce=nonce-field-2");
  CHECK(a->verify(c.message(), hh, t0).reason == auth_reason::bad_signature);
  std::string sig_flipped = sign(r, params("nonce-field-3"));
  sig_flipped.back() = sig_flipped.back() == '0' ? '1' : '0';
  CHECK(a->verify(c.message(), sig_flipped, t0).reason == auth_reason::bad_signature);
}

TEST_CASE("auth: a header value cannot smuggle a line of the canonical form", "[auth]") {
  request r;
  r.headers = {{"Host", "gw\nhost:evil"}, {"Content-Type", "a"}};
  auto c = tollgate::canonical_request(r.message(), params());
  CHECK_FALSE(c.ok());
  auto a = make();
  request good;
  const std::string h = sign(good, params());
  CHECK(a->verify(r.message(), h, t0).detail == auth_detail::bad_header_value);
  // '&' and '=' inside a value are escaped: one parameter, not two.
  request q1, q2;
  q1.target = "/x?a=1%262";
  q2.target = "/x?a=1&2";
  auto c1 = tollgate::canonical_request(q1.message(), params());
  auto c2 = tollgate::canonical_request(q2.message(), params());
  REQUIRE(c1.ok());
  REQUIRE(c2.ok());
  CHECK(*c1 != *c2);
}

TEST_CASE("auth: malformed requests say what is wrong", "[auth]") {
  auto a = make();
  request r;
  const std::string good = sign(r, params());
  auto detail_of = [&](const std::string& h) { return a->verify(r.message(), h, t0).detail; };
  CHECK(detail_of("") == auth_detail::missing_authorization);
  CHECK(detail_of("Bearer abc") == auth_detail::bad_scheme);
  CHECK(detail_of("TG1-HMAC-SHA256") == auth_detail::bad_scheme);
  CHECK(detail_of("TG1-HMAC-SHA256 KeyId=k1") == auth_detail::missing_parameter);
  CHECK(detail_of(good + ", Extra=1") == auth_detail::bad_parameter);
  CHECK(detail_of(good + ", KeyId=k1") == auth_detail::bad_parameter);
  CHECK(detail_of("TG1-HMAC-SHA256 KeyId=k 1, Timestamp=1, Nonce=nnnnnnnn, Signature=" +
                  std::string(64, 'a')) == auth_detail::bad_key_id);
  CHECK(detail_of("TG1-HMAC-SHA256 KeyId=k1, Timestamp=-1, Nonce=nnnnnnnn, Signature=" +
                  std::string(64, 'a')) == auth_detail::bad_timestamp);
  CHECK(detail_of("TG1-HMAC-SHA256 KeyId=k1, Timestamp=12345678901234567890, Nonce=nnnnnnnn, "
                  "Signature=" +
                  std::string(64, 'a')) == auth_detail::bad_timestamp);
  CHECK(detail_of("TG1-HMAC-SHA256 KeyId=k1, Timestamp=1, Nonce=short, Signature=" +
                  std::string(64, 'a')) == auth_detail::bad_nonce);
  CHECK(detail_of("TG1-HMAC-SHA256 KeyId=k1, Timestamp=1, Nonce=nnnnnnnn, Signature=" +
                  std::string(64, 'A')) == auth_detail::bad_signature_format);
  CHECK(detail_of("TG1-HMAC-SHA256 KeyId=k1, SignedHeaders=host;content-type, Timestamp=1, "
                  "Nonce=nnnnnnnn, Signature=" +
                  std::string(64, 'a')) == auth_detail::bad_signed_headers);
  CHECK(detail_of("TG1-HMAC-SHA256 KeyId=k1, Timestamp=1, Nonce=nnnnnnnn, Token=a/b, Signature=" +
                  std::string(64, 'a')) == auth_detail::bad_token);
  CHECK(detail_of(std::string(2000, 'x')) == auth_detail::bad_parameter);

  // Request problems are found after the key (a valid signature is needed
  // before anything is remembered).
  auto request_detail = [&](auto edit) {
    request c;
    edit(c);
    return a->verify(c.message(), good, t0).detail;
  };
  CHECK(request_detail([](request& c) { c.method = "get"; }) == auth_detail::bad_method);
  CHECK(request_detail([](request& c) { c.method = ""; }) == auth_detail::bad_method);
  CHECK(request_detail([](request& c) { c.target = "v1/orders"; }) == auth_detail::bad_path);
  CHECK(request_detail([](request& c) { c.target = "/v1/%2Forders"; }) == auth_detail::bad_path);
  CHECK(request_detail([](request& c) { c.target = "/v1/orders#frag"; }) == auth_detail::bad_path);
  CHECK(request_detail([](request& c) { c.target = "/v1/%zz"; }) == auth_detail::bad_path);
  CHECK(request_detail([](request& c) { c.target = "/v1?a=%4"; }) == auth_detail::bad_query);
  CHECK(request_detail([](request& c) { c.target = "/v1?a=1&&b=2"; }) == auth_detail::bad_query);
  CHECK(request_detail([](request& c) { c.target = "/v1?a= 1"; }) == auth_detail::bad_query);
  CHECK(request_detail([](request& c) {
          c.target = "/v1?";
          for (int i = 0; i < 65; ++i) c.target += "p=" + std::to_string(i) + "&";
          c.target.pop_back();
        }) == auth_detail::bad_query);
  CHECK(request_detail([](request& c) { c.headers.erase(c.headers.begin()); }) ==
        auth_detail::missing_header);
  CHECK(request_detail([](request& c) {
          c.headers.push_back({"HOST", "gw.example"});
        }) == auth_detail::repeated_header);
  CHECK(request_detail([](request& c) { c.headers[0].second = std::string(9000, 'h'); }) ==
        auth_detail::bad_header_value);
  CHECK(a->stats().results[static_cast<int>(auth_reason::malformed)] >= 26);
  CHECK(a->stats().results[0] == 0);
}

TEST_CASE("auth: timestamps outside the skew window - also after the clock steps back", "[auth]") {
  auto a = make(1024, 10 * sec);
  request r;
  CHECK(a->verify(r.message(), sign(r, params("nonce-sk-1", t0 + 10 * sec)), t0).reason ==
        auth_reason::none);
  CHECK(a->verify(r.message(), sign(r, params("nonce-sk-2", t0 + 10 * sec + 1)), t0).reason ==
        auth_reason::skew);
  CHECK(a->verify(r.message(), sign(r, params("nonce-sk-3", t0 - 10 * sec)), t0).reason ==
        auth_reason::none);
  CHECK(a->verify(r.message(), sign(r, params("nonce-sk-4", t0 - 10 * sec - 1)), t0).reason ==
        auth_reason::skew);
  // The clock jumps ahead by a minute, then back: the window's lower edge
  // stays where the latest clock put it.
  CHECK(
      a->verify(r.message(), sign(r, params("nonce-sk-5", t0 + 60 * sec)), t0 + 60 * sec).reason ==
      auth_reason::none);
  CHECK(a->verify(r.message(), sign(r, params("nonce-sk-6", t0)), t0).reason == auth_reason::skew);
}

TEST_CASE("auth: keys rotate with overlapping validity - unknown and expired keys", "[auth]") {
  auto a = make();
  REQUIRE(a->add_key("k2", "second-secret", t0 + 100 * sec, t0 + 7200 * sec, t0).ok());
  request r;
  auth_params p2 = params("nonce-rot-1", t0 + 50 * sec);
  p2.key_id = "k2";
  // Not yet valid.
  CHECK(a->verify(r.message(), sign(r, p2, "second-secret"), t0 + 50 * sec).reason ==
        auth_reason::expired_key);
  // Both valid during the overlap.
  p2.nonce = "nonce-rot-2";
  p2.timestamp_ns = t0 + 200 * sec;
  CHECK(a->verify(r.message(), sign(r, p2, "second-secret"), t0 + 200 * sec).reason ==
        auth_reason::none);
  CHECK(a->verify(r.message(), sign(r, params("nonce-rot-3", t0 + 200 * sec)), t0 + 200 * sec)
            .reason == auth_reason::none);
  // k1 expires at t0 + 3600 s (exclusive).
  CHECK(a->verify(r.message(), sign(r, params("nonce-rot-4", t0 + 3600 * sec)), t0 + 3600 * sec)
            .reason == auth_reason::expired_key);
  p2.nonce = "nonce-rot-5";
  p2.timestamp_ns = t0 + 3600 * sec;
  CHECK(a->verify(r.message(), sign(r, p2, "second-secret"), t0 + 3600 * sec).reason ==
        auth_reason::none);
  // A key signed with the wrong secret, and an unknown key.
  p2.nonce = "nonce-rot-6";
  CHECK(a->verify(r.message(), sign(r, p2, "guess"), t0 + 3600 * sec).reason ==
        auth_reason::bad_signature);
  auth_params p3 = params("nonce-rot-7", t0 + 3600 * sec);
  p3.key_id = "k3";
  CHECK(a->verify(r.message(), sign(r, p3), t0 + 3600 * sec).reason == auth_reason::unknown_key);
  // Removal.
  CHECK(a->remove_key("k2", t0).ok());
  CHECK(a->remove_key("k2", t0).code() == absl::StatusCode::kNotFound);
  p2.nonce = "nonce-rot-8";
  CHECK(a->verify(r.message(), sign(r, p2, "second-secret"), t0 + 3600 * sec).reason ==
        auth_reason::unknown_key);
  // Bad key definitions.
  CHECK(a->add_key("bad id", "s", 0, 1, t0).code() == absl::StatusCode::kInvalidArgument);
  CHECK(a->add_key("k9", "", 0, 1, t0).code() == absl::StatusCode::kInvalidArgument);
  CHECK(a->add_key("k9", "s", 5, 5, t0).code() == absl::StatusCode::kInvalidArgument);
}

namespace {
struct event_log {
  std::vector<std::pair<tollgate::auth_event_kind, std::string>> events;
  std::vector<std::uint64_t> versions;
};
void on_event(void* user, const tollgate::auth_event& ev) {
  auto* log = static_cast<event_log*>(user);
  log->events.emplace_back(ev.kind, std::string(ev.id));
  log->versions.push_back(ev.revocation_version);
}
}  // namespace

TEST_CASE("auth: revocation of keys and tokens is immediate - versioned and reported", "[auth]") {
  auto a = make();
  event_log log;
  a->set_listener(&on_event, &log);
  request r;
  auth_params p = params("nonce-rev-1");
  p.token = "session-9";
  const std::string h = sign(r, p);
  REQUIRE(a->revoke_token("session-9", t0).ok());
  CHECK(a->verify(r.message(), h, t0).reason == auth_reason::revoked_token);
  REQUIRE(a->revoke_token("session-9", t0).ok());  // no-op, no event
  REQUIRE(a->unrevoke_token("session-9", t0).ok());
  CHECK(a->verify(r.message(), h, t0).reason == auth_reason::none);
  REQUIRE(a->revoke_key("k1", t0).ok());
  CHECK(a->verify(r.message(), sign(r, params("nonce-rev-2")), t0).reason ==
        auth_reason::revoked_key);
  CHECK(a->revocation_version() == 3);
  // A whole list at a newer version replaces both sets; an older one is refused.
  const std::vector<std::string_view> keys = {"k7"}, tokens = {"t1", "t2"};
  CHECK(a->replace_revocations(3, keys, tokens, t0).code() ==
        absl::StatusCode::kFailedPrecondition);
  REQUIRE(a->replace_revocations(10, keys, tokens, t0).ok());
  CHECK(a->revocation_version() == 10);
  CHECK(a->verify(r.message(), sign(r, params("nonce-rev-3")), t0).reason == auth_reason::none);
  const std::vector<std::string_view> bad = {"bad id"};
  CHECK(a->replace_revocations(11, bad, tokens, t0).code() == absl::StatusCode::kInvalidArgument);
  // The version never wraps: at its maximum, further changes are refused.
  REQUIRE(a->replace_revocations(~std::uint64_t{0}, keys, tokens, t0).ok());
  CHECK(a->revoke_key("k8", t0).code() == absl::StatusCode::kFailedPrecondition);
  CHECK(a->revocation_version() == ~std::uint64_t{0});
  CHECK(a->replace_revocations(1, keys, tokens, t0).code() ==
        absl::StatusCode::kFailedPrecondition);
  const auto st = a->stats();
  CHECK(st.revoked_keys == 1);
  CHECK(st.revoked_tokens == 2);
  using K = tollgate::auth_event_kind;
  REQUIRE(log.events.size() == 5);
  CHECK(log.events[0] == std::make_pair(K::token_revoked, std::string("session-9")));
  CHECK(log.events[1] == std::make_pair(K::token_unrevoked, std::string("session-9")));
  CHECK(log.events[2] == std::make_pair(K::key_revoked, std::string("k1")));
  CHECK(log.events[3] == std::make_pair(K::revocations_replaced, std::string()));
  CHECK(log.versions == std::vector<std::uint64_t>{1, 2, 3, 10, ~std::uint64_t{0}});
}

TEST_CASE("auth: a full nonce cache refuses instead of forgetting", "[auth]") {
  auto a = make(16, 10 * sec);  // one nonce per shard
  request r;
  int accepted = 0, refused = 0;
  for (int i = 0; i < 200; ++i) {
    const std::string nonce = "nonce-cap-" + std::to_string(i);
    const auto reason = a->verify(r.message(), sign(r, params(nonce)), t0).reason;
    if (reason == auth_reason::none) ++accepted;
    if (reason == auth_reason::nonce_capacity) ++refused;
  }
  CHECK(accepted + refused == 200);
  CHECK(accepted <= 16);
  CHECK(refused >= 184);
  // Every accepted nonce is still refused as a replay while its window lasts.
  for (int i = 0; i < 200; ++i) {
    const std::string nonce = "nonce-cap-" + std::to_string(i);
    const auto reason = a->verify(r.message(), sign(r, params(nonce)), t0 + 10 * sec).reason;
    CHECK((reason == auth_reason::replay || reason == auth_reason::nonce_capacity));
  }
  // Once the window has passed the memory is reused.
  int later = 0;
  for (int i = 0; i < 200; ++i) {
    const std::string nonce = "nonce-new-" + std::to_string(i);
    later += a->verify(r.message(), sign(r, params(nonce, t0 + 30 * sec)), t0 + 30 * sec).reason ==
             auth_reason::none;
  }
  CHECK(later >= 1);
  CHECK(later <= 16);
}

TEST_CASE("auth: extreme timestamps and clocks", "[auth]") {
  request r;
  // A timestamp a server cannot parse back (20 digits) is not signed.
  auto h = tollgate::sign_request(r.message(), params("nonce-ext-1", 10'000'000'000'000'000'000ULL),
                                  tollgate::crypto::hmac_sha256_key(secret1));
  CHECK(h.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(std::string(h.status().message()).find("bad_timestamp") != std::string::npos);
  // The largest one that parses, verified near the top of the clock's range.
  constexpr std::uint64_t top = 9'999'999'999'999'999'999ULL;
  tollgate::auth_options o;
  o.nonce_capacity = 64;
  auto a = tollgate::authenticator::create(o);
  REQUIRE(a.ok());
  REQUIRE((*a)->add_key("k1", secret1, 0, ~std::uint64_t{0}, t0).ok());
  CHECK((*a)->verify(r.message(), sign(r, params("nonce-ext-2", top)), top).reason ==
        auth_reason::none);
  // A clock near 2^64 does not overflow the window into accepting anything.
  CHECK((*a)->verify(r.message(), sign(r, params("nonce-ext-3", top)), ~std::uint64_t{0}).reason ==
        auth_reason::skew);
  CHECK((*a)->remove_key("bad id", t0).code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("auth: options are validated", "[auth]") {
  tollgate::auth_options o;
  o.max_skew_ns = 0;
  CHECK(tollgate::authenticator::create(o).status().code() == absl::StatusCode::kOutOfRange);
  o = {};
  o.nonce_capacity = 15;
  CHECK(tollgate::authenticator::create(o).status().code() == absl::StatusCode::kOutOfRange);
  o.nonce_capacity = (std::size_t{1} << 26) + 1;
  CHECK(tollgate::authenticator::create(o).status().code() == absl::StatusCode::kOutOfRange);
}

TEST_CASE("auth: a revocation is seen by every verification that starts after it returns",
          "[auth][concurrency]") {
  auto a = make(1 << 16);
  request base;
  // Pre-signed requests with distinct nonces, one per iteration and thread.
  constexpr int per_thread = 400;
  std::vector<std::string> signed_headers[2];
  for (int t = 0; t < 2; ++t) {
    for (int i = 0; i < per_thread; ++i) {
      signed_headers[t].push_back(
          sign(base, params("nonce-thr-" + std::to_string(t) + "-" + std::to_string(i))));
    }
  }
  std::atomic<bool> revoked{false};
  std::atomic<int> after_ok{0}, ok{0}, revoked_seen{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      request r;
      for (int i = 0; i < per_thread; ++i) {
        const bool was_revoked = revoked.load(std::memory_order_acquire);
        const auto reason = a->verify(r.message(), signed_headers[t][i], t0).reason;
        if (reason == auth_reason::none) {
          ok.fetch_add(1);
          if (was_revoked) after_ok.fetch_add(1);
        } else if (reason == auth_reason::revoked_key) {
          revoked_seen.fetch_add(1);
        }
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  REQUIRE(a->revoke_key("k1", t0).ok());
  revoked.store(true, std::memory_order_release);
  for (auto& th : threads) th.join();
  CHECK(after_ok.load() == 0);
  CHECK(ok.load() + revoked_seen.load() == 2 * per_thread);
}

namespace {
std::string unhex_field(const std::string& h) {
  std::string out;
  if (h == "-") return out;
  for (std::size_t i = 0; i + 1 < h.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(h.substr(i, 2), nullptr, 16)));
  }
  return out;
}
}  // namespace

TEST_CASE("auth: the shared vectors (an independent implementation's output) sign and verify",
          "[auth]") {
  std::ifstream in(TOLLGATE_SOURCE_DIR "/tests/vectors/auth_vectors.txt");
  REQUIRE(in.good());
  std::string line;
  int signs = 0, rejects = 0, hmacs = 0;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    std::vector<std::string> f;
    for (std::string x; fields >> x;) f.push_back(x);
    if (f[0] == "hmac") {
      REQUIRE(f.size() == 4);
      std::uint8_t mac[32];
      const std::string msg = unhex_field(f[2]);
      tollgate::crypto::hmac_sha256_key(unhex_field(f[1])).mac(msg.data(), msg.size(), mac);
      char hex[64];
      tollgate::auth_detail_impl::to_hex(mac, 32, hex);
      CHECK(std::string(hex, 64) == f[3]);
      ++hmacs;
      continue;
    }
    const bool sign_case = f[0] == "sign";
    REQUIRE(f.size() == (sign_case ? 14u : 12u));
    INFO(f[1]);
    const std::size_t o = sign_case ? 1 : 0;  // sign lines carry the secret first
    const std::string method = sign_case ? f[3] : unhex_field(f[2]);
    const std::string target = unhex_field(f[3 + o]);
    std::vector<std::pair<std::string, std::string>> headers;
    if (f[4 + o] != "-") {
      std::istringstream hs(f[4 + o]);
      for (std::string item; std::getline(hs, item, ',');) {
        const auto colon = item.find(':');
        headers.emplace_back(unhex_field(item.substr(0, colon)),
                             unhex_field(item.substr(colon + 1)));
      }
    }
    std::vector<header_view> hv;
    for (const auto& [n, v] : headers) hv.push_back(header_view{n, v});
    const std::string body = unhex_field(f[5 + o]), key_id = unhex_field(f[6 + o]),
                      token = unhex_field(f[7 + o]), nonce = unhex_field(f[9 + o]),
                      signed_headers = unhex_field(f[10 + o]);
    auth_message m;
    m.method = method;
    m.target = target;
    m.headers = hv.data();
    m.header_count = hv.size();
    m.body = body;
    auth_params p;
    p.key_id = key_id;
    p.token = token;
    p.timestamp_ns = std::stoull(f[8 + o]);
    p.nonce = nonce;
    p.signed_headers = signed_headers;
    auto canon = tollgate::canonical_request(m, p);
    if (sign_case) {
      const std::string secret = unhex_field(f[2]);
      REQUIRE(canon.ok());
      CHECK(*canon == unhex_field(f[12]));
      auto h = tollgate::sign_request(m, p, tollgate::crypto::hmac_sha256_key(secret));
      REQUIRE(h.ok());
      CHECK(*h == unhex_field(f[13]));
      ++signs;
    } else {
      REQUIRE_FALSE(canon.ok());
      CHECK(std::string(canon.status().message()).find(f[11]) != std::string::npos);
      ++rejects;
    }
  }
  CHECK(hmacs >= 6);
  CHECK(signs >= 10);
  CHECK(rejects >= 13);
}
