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
//     the journal fails, then writes the line described at run_until_fault.
//
//   journal_child fiu DIR FD CASE
//     Under `fiu-run -x`: after 200 records, injects a fault with libfiu
//     (CASE: pwrite-eio, pwrite-enospc, fdatasync-eio, fsync-eio,
//     short-write-enospc, short-writes) and appends until the journal
//     fails (short-writes: 3000 records, then close); writes the line.
//
//   journal_child full DIR FD 0
//     Appends until the journal fails (DIR on a small file system);
//     writes the line.
//
//   journal_child reopen DIR FD 0
//     Opens (recovers) and closes the journal; writes "<open code> <close
//     code>".
#include <dlfcn.h>
#include <fiu-control.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
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

// How a run_until_fault goes.
struct fault_run {
  tollgate::writer_mode mode = tollgate::writer_mode::thread;
  tollgate::durability level = tollgate::durability::every_record;
  std::uint64_t max_segment_bytes = 64ull << 20;
  // After this many records are written (and, at level every_record,
  // durable), the writer is let catch up and arm() injects the fault; 0:
  // no arming.
  std::uint64_t arm_after = 0;
  bool (*arm)() = nullptr;
  // 0: append until an append fails. Otherwise: append this many records,
  // then close (a run that expects no fault).
  std::uint64_t records = 0;
};

// Appends until the journal fails (or fr.records are appended), then
// writes one line to FD:
//   <status code> <errno of the io_error event> <io_error events>
//   <highest marker acknowledged written> <... acknowledged durable>
//   <append after the failure (or after close): 1 if failed> <close status code>
//   <written_ticket when armed> <written_ticket at the end>
//   <durable_ticket when armed> <durable_ticket at the end>
//   <1 if the status message names the event's errno> <the status message>
// Markers are 1, 2, ... (the first input of each record).
int run_until_fault(const std::string& dir, int fd, const fault_run& fr) {
  std::atomic<int> events{0};
  std::atomic<int> err{0};
  tollgate::journal_options o;
  o.directory = dir;
  o.signing_seed = seed();
  o.mode = fr.mode;
  o.level = fr.level;
  o.ring_cells = 1u << 12;
  o.checkpoint_every_records = 64;
  o.max_segment_bytes = fr.max_segment_bytes;
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
  const bool poll = fr.mode == tollgate::writer_mode::poll;
  // In poll mode this thread is the writer; otherwise it waits for it.
  auto step = [&] {
    if (poll) {
      (void)jr.poll();
    } else {
      std::this_thread::sleep_for(std::chrono::microseconds(20));
    }
  };
  std::mt19937_64 rng(42);
  std::vector<std::uint8_t> inputs, payload;
  std::string account;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> appended;  // ticket, marker
  bool armed = false;
  std::uint64_t written_at_arm = 0;
  std::uint64_t durable_at_arm = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  for (std::uint64_t n = 1; std::chrono::steady_clock::now() < deadline; ++n) {
    if (fr.records != 0 && n > fr.records) break;
    // A few records in flight at a time, so that batches stay small and
    // the fault hits with many records already acknowledged.
    if (appended.size() >= 8) {
      const std::uint64_t t = appended[appended.size() - 8].first;
      while (!jr.is_written(t) && jr.status().ok()) step();
    }
    if (!armed && fr.arm != nullptr && n > fr.arm_after) {
      // Let the writer catch up, so that what is acknowledged when the
      // fault is armed is known exactly.
      const std::uint64_t last = appended.empty() ? 0 : appended.back().first;
      const bool durable = fr.level == tollgate::durability::every_record;
      while (jr.status().ok() && !(durable ? jr.is_durable(last) : jr.is_written(last))) step();
      written_at_arm = jr.stats().written_ticket;
      durable_at_arm = jr.stats().durable_ticket;
      if (!fr.arm()) return 6;
      armed = true;
    }
    const auto e = make_entry(n, rng, inputs, payload, account);
    const auto r = jr.append(e);
    if (r.status == tollgate::append_status::failed) break;
    if (r.ok()) appended.emplace_back(r.ticket, n);
    if (poll) {
      step();
    } else if (!r.ok()) {
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }
  if (fr.records != 0 && jr.status().ok()) (void)jr.sync();
  const absl::Status st = jr.status();
  const int code = static_cast<int>(st.code());
  bool after_failed = false;
  if (!st.ok()) {
    after_failed = jr.append(make_entry(0, rng, inputs, payload, account)).status ==
                   tollgate::append_status::failed;
  }
  const tollgate::journal_stats end = jr.stats();
  const int close_code = static_cast<int>(jr.close().code());
  if (st.ok()) {
    after_failed = jr.append(make_entry(0, rng, inputs, payload, account)).status ==
                   tollgate::append_status::failed;
  }
  std::uint64_t acked_written = 0;
  std::uint64_t acked_durable = 0;
  for (const auto& [ticket, marker] : appended) {
    if (ticket <= end.written_ticket) acked_written = marker;
    if (ticket <= end.durable_ticket) acked_durable = marker;
  }
  const std::string errno_text = "(errno " + std::to_string(err.load()) + ")";
  const bool names_errno = std::string(st.message()).find(errno_text) != std::string::npos;
  std::string message(st.message());
  for (char& c : message) {
    if (c == '\n') c = ' ';
  }
  message += '\n';
  char line[320];
  const int len =
      std::snprintf(line, sizeof line, "%d %d %d %llu %llu %d %d %llu %llu %llu %llu %d ", code,
                    err.load(), events.load(), static_cast<unsigned long long>(acked_written),
                    static_cast<unsigned long long>(acked_durable), after_failed ? 1 : 0,
                    close_code, static_cast<unsigned long long>(written_at_arm),
                    static_cast<unsigned long long>(end.written_ticket),
                    static_cast<unsigned long long>(durable_at_arm),
                    static_cast<unsigned long long>(end.durable_ticket), names_errno ? 1 : 0);
  write_all(fd, line, static_cast<std::size_t>(len));
  write_all(fd, message.data(), message.size());
  return 0;
}

int fsize(const std::string& dir, int fd, std::uint64_t limit) {
  ::signal(SIGXFSZ, SIG_IGN);
  rlimit rl{};
  rl.rlim_cur = limit;
  rl.rlim_max = limit;
  if (::setrlimit(RLIMIT_FSIZE, &rl) != 0) return 5;
  return run_until_fault(dir, fd, fault_run{});
}

// ---- faults injected with libfiu ----
//
// The program runs under `fiu-run -x`, which preloads libfiu's POSIX
// wrappers (pwrite, fdatasync, fsync, ftruncate, ... check a named failure
// point first) and libfiu itself. The failure points are enabled from
// here, through libfiu's control API taken from the preloaded library, at
// the moment the run chooses: this program does not link libfiu.

template <class F>
F* fiu_function(const char* name) {
  return reinterpret_cast<F*>(::dlsym(RTLD_DEFAULT, name));
}

void* errno_info(int e) { return reinterpret_cast<void*>(static_cast<std::intptr_t>(e)); }

bool fiu_enable_errno(const char* point, int e) {
  auto* enable = fiu_function<decltype(fiu_enable)>("fiu_enable");
  return enable != nullptr && enable(point, 1, errno_info(e), 0) == 0;
}

bool arm_pwrite_eio() { return fiu_enable_errno("posix/io/rw/pwrite", EIO); }
bool arm_pwrite_enospc() { return fiu_enable_errno("posix/io/rw/pwrite", ENOSPC); }
bool arm_fdatasync_eio() { return fiu_enable_errno("posix/io/sync/fdatasync", EIO); }
bool arm_fsync_eio() { return fiu_enable_errno("posix/io/sync/fsync", EIO); }

// Short writes: every pwrite writes a random part (at least one byte) of
// what it was asked for.
bool arm_short_writes() {
  auto* enable = fiu_function<decltype(fiu_enable)>("fiu_enable");
  return enable != nullptr && enable("posix/io/rw/pwrite/reduce", 1, nullptr, 0) == 0;
}

// A full disk the way the kernel reports it: the next pwrite writes part
// of a batch, the one continuing it fails with ENOSPC, and every later one
// too. ftruncate fails as well (EIO), so the partial frame stays in the
// file for recovery to find.
//
// libfiu shortens a pwrite by random() % count bytes (its own wrapper
// seeds random() with the time). The reduce point's callback reseeds it
// with a seed whose next value is a prime above any batch size, so the
// write is always short and never empty.
unsigned short_write_seed = 0;

bool is_prime(long v) {
  if (v < 2) return false;
  for (long d = 2; d * d <= v; ++d) {
    if (v % d == 0) return false;
  }
  return true;
}

int reduce_once(const char*, int*, void**, unsigned*) {
  static std::atomic<bool> done{false};
  if (done.exchange(true)) return 0;
  ::srandom(short_write_seed);
  return 1;
}

int fail_after_first(const char*, int*, void**, unsigned*) {
  static std::atomic<int> calls{0};
  return calls.fetch_add(1) >= 1 ? 1 : 0;
}

bool arm_short_write_enospc() {
  for (unsigned s = 1; short_write_seed == 0; ++s) {
    ::srandom(s);
    const long v = ::random();
    if (v > (1l << 24) && is_prime(v)) short_write_seed = s;
  }
  auto* external = fiu_function<decltype(fiu_enable_external)>("fiu_enable_external");
  return external != nullptr &&
         external("posix/io/rw/pwrite/reduce", 1, nullptr, 0, &reduce_once) == 0 &&
         external("posix/io/rw/pwrite", 1, errno_info(ENOSPC), 0, &fail_after_first) == 0 &&
         fiu_enable_errno("posix/io/rw/ftruncate", EIO);
}

int fiu(const std::string& dir, int fd, const std::string& which) {
  if (fiu_function<decltype(fiu_enable)>("fiu_enable") == nullptr) {
    std::fputs("journal_child: libfiu is not loaded (run under fiu-run -x)\n", stderr);
    return 7;
  }
  fault_run fr;
  fr.mode = tollgate::writer_mode::poll;  // one thread: the fault lands in a known write
  fr.arm_after = 200;
  if (which == "pwrite-eio") {
    fr.arm = &arm_pwrite_eio;
  } else if (which == "pwrite-enospc") {
    fr.arm = &arm_pwrite_enospc;
  } else if (which == "fdatasync-eio") {
    fr.arm = &arm_fdatasync_eio;
  } else if (which == "fsync-eio") {
    // The manifest is fsynced when a segment is sealed: small segments.
    fr.max_segment_bytes = 64u << 10;
    fr.arm = &arm_fsync_eio;
  } else if (which == "short-write-enospc") {
    fr.arm = &arm_short_write_enospc;
  } else if (which == "short-writes") {
    fr.mode = tollgate::writer_mode::thread;
    fr.max_segment_bytes = 64u << 10;  // manifests and segment headers too
    fr.arm_after = 10;
    fr.arm = &arm_short_writes;
    fr.records = 3000;
  } else {
    return 1;
  }
  return run_until_fault(dir, fd, fr);
}

// Opens (recovering) and closes the journal; writes "<open code> <close
// code>\n" to FD.
int reopen(const std::string& dir, int fd) {
  tollgate::journal_options o;
  o.directory = dir;
  o.signing_seed = seed();
  o.create_if_missing = false;
  auto j = tollgate::journal::open(o);
  int close_code = -1;
  if (j.ok()) close_code = static_cast<int>((*j)->close().code());
  char line[64];
  const int len =
      std::snprintf(line, sizeof line, "%d %d\n", static_cast<int>(j.status().code()), close_code);
  write_all(fd, line, static_cast<std::size_t>(len));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fputs(
        "usage: journal_child crash DIR FD SEED | fsize DIR FD LIMIT | fiu DIR FD CASE |"
        " full DIR FD 0 | reopen DIR FD 0\n",
        stderr);
    return 1;
  }
  const std::string mode = argv[1];
  const std::string dir = argv[2];
  const int fd = std::atoi(argv[3]);
  const std::uint64_t arg = std::strtoull(argv[4], nullptr, 10);
  if (mode == "crash") return crash(dir, fd, arg);
  if (mode == "fsize") return fsize(dir, fd, arg);
  if (mode == "fiu") return fiu(dir, fd, argv[4]);
  if (mode == "full") return run_until_fault(dir, fd, fault_run{});
  if (mode == "reopen") return reopen(dir, fd);
  return 1;
}
