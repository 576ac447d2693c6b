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
// than one compare) on one input drawn from a pool of 1024 whose classes were
// assigned at random, so that where an input lives in memory cannot pass for
// its class (with one buffer per class, cache placement alone gave |t| = 14
// for CRYPTO_memcmp on this machine).
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

// Times 2 * samples batches of fn(slot) on slots drawn at random from a
// pool whose slots were given a class at random (so a class is not one
// address: a slot's place in memory cannot stand in for its class); drops
// samples above the given percentile of all samples (dudect crops to remove
// interrupts and preemption) and returns Welch's t between the classes.
template <class Fn>
double measure(std::size_t samples, int batch, double keep, const std::vector<int>& cls, Fn&& fn,
               double* ns_per_call) {
  std::mt19937_64 rng(20171);
  std::vector<std::pair<int, double>> xs;
  xs.reserve(2 * samples);
  for (std::size_t i = 0; i < 2 * samples; ++i) {
    const std::size_t slot = static_cast<std::size_t>(rng() % cls.size());
    const auto a = std::chrono::steady_clock::now();
    for (int k = 0; k < batch; ++k) fn(slot);
    const auto b = std::chrono::steady_clock::now();
    xs.emplace_back(cls[slot], std::chrono::duration<double, std::nano>(b - a).count());
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
  const std::string right_sig = h->substr(sig_at, 64);

  // A pool of wrong headers and signatures, each of a random class: 0 differs
  // from the right signature in its first hex digit, 1 in its last.
  constexpr std::size_t pool = 1024;
  std::mt19937_64 rng(8032);
  std::vector<int> cls(pool);
  std::vector<std::string> wrong_header(pool), wrong_sig(pool);
  for (std::size_t i = 0; i < pool; ++i) {
    cls[i] = static_cast<int>(rng() & 1);
    std::string w = *h;
    const std::size_t at = sig_at + (cls[i] == 0 ? 0 : 63);
    w[at] = w[at] == '0' ? '1' : '0';
    wrong_header[i] = w;
    wrong_sig[i] = w.substr(sig_at, 64);
  }

  tollgate::auth_options o;
  auto a = tollgate::authenticator::create(o);
  if (!a.ok() || !(*a)->add_key("bench-key", secret, 0, ~0ULL, t0).ok()) return 1;

  volatile int sink = 0;
  double ns = 0;
  std::printf(
      "# Welch t of first-byte vs last-byte signature mismatches (|t| < 10: no leak "
      "found); %zu samples per class\n",
      samples);
  std::printf("%-24s %10s %12s\n", "operation", "t", "ns/call");
  const double t_ct = measure(
      samples, 64, 0.9, cls,
      [&](std::size_t s) {
        sink =
            sink + tollgate::crypto::equal_constant_time(right_sig.data(), wrong_sig[s].data(), 64);
      },
      &ns);
  std::printf("%-24s %10.2f %12.1f\n", "equal_constant_time 64B", t_ct, ns);
  const double t_verify = measure(
      samples / 10, 1, 0.9, cls,
      [&](std::size_t s) {
        sink = sink + static_cast<int>((*a)->verify(m, wrong_header[s], t0).reason);
      },
      &ns);
  std::printf("%-24s %10.2f %12.1f\n", "verify", t_verify, ns);
  // The control compares 4 KB buffers differing at byte 0 or at the end, so
  // that an early exit is large enough to see above the timer's noise.
  std::vector<std::string> big(pool, std::string(4096, 'a'));
  for (std::size_t i = 0; i < pool; ++i) big[i][cls[i] == 0 ? 0 : 4095] = 'b';
  const std::string big_right(4096, 'a');
  const double t_memcmp = measure(
      samples, 8, 0.9, cls,
      [&](std::size_t s) {
        sink = sink + (std::memcmp(big_right.data(), big[s].data(), 4096) == 0);
      },
      &ns);
  std::printf("%-24s %10.2f %12.1f\n", "memcmp 4KB (control)", t_memcmp, ns);
  const double t_ct_big = measure(
      samples, 8, 0.9, cls,
      [&](std::size_t s) {
        sink = sink + tollgate::crypto::equal_constant_time(big_right.data(), big[s].data(), 4096);
      },
      &ns);
  std::printf("%-24s %10.2f %12.1f\n", "equal_constant_time 4KB", t_ct_big, ns);
  return 0;
}
