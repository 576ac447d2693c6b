// Helper process for the journal tests.
//
//   journal_child crash DIR FD SEED
//     Two threads append records as fast as the journal takes them
//     (durability every_record, its own writer thread). Each record's first
//     input is a marker (SEED << 44 | thread << 40 | n, n = 1, 2, ...); once a record's
//     ticket is durable, its marker is written (8 bytes) to FD. Runs until
//     killed.
//
//   journal_child fsize DIR FD LIMIT
//     Under RLIMIT_FSIZE = LIMIT bytes with SIGXFSZ ignored, appends until
//     the journal fails, then writes one line to FD:
//       <status code> <errno of the io_error event> <io_error events>
//       <highest marker acknowledged written> <append after failure: 1 if failed>
//       <close status code>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tollgate/journal.hpp"

namespace {

std::array<std::uint8_t, 32> seed() {
  std::array<std::uint8_t, 32> s{};
  for (std::size_t i = 0; i < s.size(); ++i) s[i] = static_cast<std::uint8_t>(0x20 + i);
  return s;
}

void write_all(int fd, const void* p, std::size_t n) {
  const auto* b = static_cast<const char*>(p);
  while (n > 0) {
    const ssize_t w = ::write(fd, b, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      std::_Exit(3);
    }
    b += w;
    n -= static_cast<std::size_t>(w);
  }
}

tollgate::journal_entry make_entry(std::uint64_t marker, std::mt19937_64& rng,
                                   std::vector<std::uint8_t>& inputs,
                                   std::vector<std::uint8_t>& payload, std::string& account) {
  inputs.resize(8 + rng() % 120);
  for (auto& b : inputs) b = static_cast<std::uint8_t>(rng());
  tollgate::journal_format::put64(inputs.data(), marker);
  payload.resize(rng() % 400);
  for (auto& b : payload) b = static_cast<std::uint8_t>(rng());
  account = "acct-" + std::to_string(rng() % 97);
  tollgate::journal_entry e;
  e.kind = static_cast<std::uint16_t>(tollgate::event_kind::decision);
  e.account = account;
  e.route = static_cast<std::uint32_t>(rng() % 8);
  e.venue = static_cast<std::uint32_t>(rng() % 4);
  e.verdict = static_cast<std::uint32_t>(rng() % 2);
  e.reason = static_cast<std::uint32_t>(rng() % 10);
  e.inputs = inputs;
  e.payload = payload;
  e.store_payload = (rng() & 1) != 0;
  return e;
}

int crash(const std::string& dir, int fd, std::uint64_t s) {
  tollgate::journal_options o;
  o.directory = dir;
  o.signing_seed = seed();
  o.mode = tollgate::writer_mode::thread;
  o.level = tollgate::durability::every_record;
  o.ring_cells = 1u << 12;
  o.checkpoint_every_records = 64;
  o.max_segment_bytes = 256u << 10;  // rotations happen under the knife too
  o.idle_sleep_us = 20;
  auto j = tollgate::journal::open(o);
  if (!j.ok()) {
    std::fprintf(stderr, "journal_child: %s\n", std::string(j.status().message()).c_str());
    return 2;
  }
  tollgate::journal& jr = **j;
  auto producer = [&](std::uint64_t t) {
    std::mt19937_64 rng(s * 7919 + t);
    std::vector<std::uint8_t> inputs, payload;
    std::string account;
    std::deque<std::pair<std::uint64_t, std::uint64_t>> pending;  // ticket, marker
    std::vector<std::uint64_t> acks;
    for (std::uint64_t n = 1;; ++n) {
      const std::uint64_t marker = (s << 44) | (t << 40) | n;
      const auto e = make_entry(marker, rng, inputs, payload, account);
      tollgate::append_result r;
      while (!(r = jr.append(e)).ok()) {
        if (r.status != tollgate::append_status::rejected) std::_Exit(4);
        std::this_thread::sleep_for(std::chrono::microseconds(20));
      }
      pending.emplace_back(r.ticket, marker);
      acks.clear();
      while (!pending.empty() && jr.is_durable(pending.front().first)) {
        acks.push_back(pending.front().second);
        pending.pop_front();
      }
      if (!acks.empty()) write_all(fd, acks.data(), acks.size() * 8);
      if (pending.size() > 256) std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  };
  std::thread a(producer, 1);
  std::thread b(producer, 2);
  a.join();
  b.join();
  return 0;
}

int fsize(const std::string& dir, int fd, std::uint64_t limit) {
  ::signal(SIGXFSZ, SIG_IGN);
  rlimit rl{};
  rl.rlim_cur = limit;
  rl.rlim_max = limit;
  if (::setrlimit(RLIMIT_FSIZE, &rl) != 0) return 5;
  std::atomic<int> events{0};
  std::atomic<int> err{0};
  tollgate::journal_options o;
  o.directory = dir;
  o.signing_seed = seed();
  o.mode = tollgate::writer_mode::thread;
  o.level = tollgate::durability::every_record;
  o.ring_cells = 1u << 12;
  o.on_event = [&](const tollgate::journal_event& ev) {
    if (ev.type == tollgate::journal_event_type::io_error) {
      err.store(ev.error_number);
      events.fetch_add(1);
    }
  };
  auto j = tollgate::journal::open(o);
  if (!j.ok()) {
    std::fprintf(stderr, "journal_child: %s\n", std::string(j.status().message()).c_str());
    return 2;
  }
  tollgate::journal& jr = **j;
  std::mt19937_64 rng(42);
  std::vector<std::uint8_t> inputs, payload;
  std::string account;
  std::deque<std::pair<std::uint64_t, std::uint64_t>> pending;
  std::uint64_t acked = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  for (std::uint64_t n = 1; std::chrono::steady_clock::now() < deadline; ++n) {
    // A few records in flight at a time, so that batches stay small and
    // the limit is hit with many records already acknowledged.
    while (pending.size() >= 8 && !jr.is_written(pending.front().first) && jr.status().ok()) {
      std::this_thread::sleep_for(std::chrono::microseconds(20));
    }
    const auto e = make_entry(n, rng, inputs, payload, account);
    const auto r = jr.append(e);
    if (r.status == tollgate::append_status::failed) break;
    if (r.ok()) pending.emplace_back(r.ticket, n);
    while (!pending.empty() && jr.is_written(pending.front().first)) {
      acked = pending.front().second;
      pending.pop_front();
    }
    if (!r.ok()) std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
  while (!pending.empty() && jr.is_written(pending.front().first)) {
    acked = pending.front().second;
    pending.pop_front();
  }
  const int code = static_cast<int>(jr.status().code());
  const bool after_failed = jr.append(make_entry(0, rng, inputs, payload, account)).status ==
                            tollgate::append_status::failed;
  const int close_code = static_cast<int>(jr.close().code());
  char line[160];
  const int len =
      std::snprintf(line, sizeof line, "%d %d %d %llu %d %d\n", code, err.load(), events.load(),
                    static_cast<unsigned long long>(acked), after_failed ? 1 : 0, close_code);
  write_all(fd, line, static_cast<std::size_t>(len));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fputs("usage: journal_child crash DIR FD SEED | fsize DIR FD LIMIT\n", stderr);
    return 1;
  }
  const std::string mode = argv[1];
  const std::string dir = argv[2];
  const int fd = std::atoi(argv[3]);
  const std::uint64_t arg = std::strtoull(argv[4], nullptr, 10);
  if (mode == "crash") return crash(dir, fd, arg);
  if (mode == "fsize") return fsize(dir, fd, arg);
  return 1;
}
