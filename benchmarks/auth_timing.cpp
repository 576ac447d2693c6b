// Timing leakage of signature comparison, dudect style (Reparaz, Balasch
// and Verbauwhede, "Dude, is my code constant time?", 2017): time many
// calls of two classes of input in random order, crop the slowest samples,
// and compare the classes' means with Welch's t-test. |t| above about 10 is
// strong evidence that the time depends on the class.
//
//   auth_timing [samples]        default 200000 per class
//
// Classes: a signature that differs from the right one in its first byte,
// and one that differs in its last byte. Measured:
//   equal_constant_time   tollgate::crypto::equal_constant_time (CRYPTO_memcmp)
//                         on the 64 hex digits
//   verify                the whole authenticator::verify of a 256-byte
//                         canonical request (parse, MAC, compare)
//   memcmp (control)      std::memcmp, which stops at the first difference:
//                         the test must find this one, or it has no power
// Each sample times a batch of calls (the clock's resolution is far coarser
// than one compare); the classes are interleaved at random per sample.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "tollgate/auth.hpp"

namespace {

constexpr std::uint64_t t0 = 1'700'000'000'000'000'000ULL;

struct welch {
  double n[2] = {0, 0}, mean[2] = {0, 0}, m2[2] = {0, 0};
  void add(int cls, double x) {
    n[cls] += 1;
    const double d = x - mean[cls];
    mean[cls] += d / n[cls];
    m2[cls] += d * (x - mean[cls]);
  }
  double t() const {
    const double v0 = m2[0] / (n[0] - 1), v1 = m2[1] / (n[1] - 1);
    return (mean[0] - mean[1]) / std::sqrt(v0 / n[0] + v1 / n[1]);
  }
};

// Times `samples` batches per class of fn(cls), interleaved at random;
// drops samples above the given percentile of all samples (dudect crops
// to remove interrupts and preemption) and returns Welch's t.
template <class Fn>
double measure(std::size_t samples, int batch, double keep, Fn&& fn, double* ns_per_call) {
  std::mt19937_64 rng(20171);
  std::vector<std::pair<int, double>> xs;
  xs.reserve(2 * samples);
  for (std::size_t i = 0; i < 2 * samples; ++i) {
    const int cls = static_cast<int>(rng() & 1);
    const auto a = std::chrono::steady_clock::now();
    for (int k = 0; k < batch; ++k) fn(cls);
    const auto b = std::chrono::steady_clock::now();
    xs.emplace_back(cls, std::chrono::duration<double, std::nano>(b - a).count());
  }
  std::vector<double> all;
  for (const auto& x : xs) all.push_back(x.second);
  std::nth_element(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(keep * all.size()),
                   all.end());
  const double cut = all[static_cast<std::size_t>(keep * all.size())];
  welch w;
  double sum = 0;
  std::size_t kept = 0;
  for (const auto& x : xs) {
    if (x.second > cut) continue;
    w.add(x.first, x.second);
    sum += x.second;
    ++kept;
  }
  *ns_per_call = sum / static_cast<double>(kept) / batch;
  return w.t();
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t samples = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 200000;
  if (samples < 100) {
    std::fprintf(stderr, "usage: %s [samples >= 100]\n", argv[0]);
    return 2;
  }
  if (!tollgate::crypto::available().ok()) {
    std::fprintf(stderr, "BoringSSL is not available\n");
    return 2;
  }

  // The right signature of a 256-byte canonical request, and two wrong ones.
  const std::string secret = "timing-secret-0123456789abcdef";
  std::string target = "/v1/orders?account=ACCT-0042&symbol=ESZ6&tif=day";
  std::vector<tollgate::header_view> headers = {{"Host", "gw.example.com"},
                                                {"Content-Type", "application/json"}};
  std::string body = R"({"side":"buy","qty":10,"px":4500.25})";
  tollgate::auth_message m;
  m.method = "POST";
  m.target = target;
  m.headers = headers.data();
  m.header_count = headers.size();
  m.body = body;
  tollgate::auth_params p;
  p.key_id = "bench-key";
  p.signed_headers = "content-type;host";
  p.nonce = "bench-nonce-0000000000";
  p.timestamp_ns = t0;
  auto h = tollgate::sign_request(m, p, tollgate::crypto::hmac_sha256_key(secret));
  if (!h.ok()) return 1;
  const std::size_t sig_at = h->find("Signature=") + 10;
  std::string wrong[2] = {*h, *h};
  wrong[0][sig_at] = wrong[0][sig_at] == '0' ? '1' : '0';            // first byte differs
  wrong[1][sig_at + 63] = wrong[1][sig_at + 63] == '0' ? '1' : '0';  // last byte differs
  const std::string right_sig = h->substr(sig_at, 64);
  const std::string wrong_sig[2] = {wrong[0].substr(sig_at, 64), wrong[1].substr(sig_at, 64)};

  tollgate::auth_options o;
  auto a = tollgate::authenticator::create(o);
  if (!a.ok() || !(*a)->add_key("bench-key", secret, 0, ~0ULL, t0).ok()) return 1;

  volatile int sink = 0;
  double ns = 0;
  std::printf(
      "# Welch t of first-byte vs last-byte signature mismatches (|t| < 10: no leak "
      "found); %zu samples per class\n",
      samples);
  std::printf("%-22s %10s %12s\n", "operation", "t", "ns/call");
  const double t_ct = measure(
      samples, 64, 0.9,
      [&](int c) {
        sink =
            sink + tollgate::crypto::equal_constant_time(right_sig.data(), wrong_sig[c].data(), 64);
      },
      &ns);
  std::printf("%-22s %10.2f %12.1f\n", "equal_constant_time", t_ct, ns);
  const double t_verify = measure(
      samples / 10, 1, 0.9,
      [&](int c) { sink = sink + static_cast<int>((*a)->verify(m, wrong[c], t0).reason); }, &ns);
  std::printf("%-22s %10.2f %12.1f\n", "verify", t_verify, ns);
  // The control compares 4 KB buffers differing at byte 0 or at the end, so
  // that an early exit is large enough to see above the timer's noise.
  std::string big_right(4096, 'a');
  std::string big_wrong[2] = {big_right, big_right};
  big_wrong[0][0] = 'b';
  big_wrong[1][4095] = 'b';
  const double t_memcmp = measure(
      samples, 8, 0.9,
      [&](int c) { sink = sink + (std::memcmp(big_right.data(), big_wrong[c].data(), 4096) == 0); },
      &ns);
  std::printf("%-22s %10.2f %12.1f\n", "memcmp 4KB (control)", t_memcmp, ns);
  const double t_ct_big = measure(
      samples, 8, 0.9,
      [&](int c) {
        sink = sink +
               tollgate::crypto::equal_constant_time(big_right.data(), big_wrong[c].data(), 4096);
      },
      &ns);
  std::printf("%-22s %10.2f %12.1f\n", "equal_constant_time 4KB", t_ct_big, ns);
  return 0;
}
