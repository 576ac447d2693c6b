// Crash consistency with real processes: a child appending from two
// threads with durability every_record is killed with SIGKILL at a random
// moment; then the journal is reopened (recovering any torn tail) and
// checked: every record the child was told was durable is there, each
// thread's records are in order with none duplicated, and the whole chain
// verifies. 200 trials by default; TOLLGATE_JOURNAL_LONG=1 runs 2000, and
// TOLLGATE_CRASH_TRIALS=N runs N.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "tollgate/journal.hpp"
#include "tollgate/journal_reader.hpp"
#include "util.hpp"

using namespace tollgate;
namespace jf = tollgate::journal_format;

namespace {

int trial_count() {
  if (const char* n = std::getenv("TOLLGATE_CRASH_TRIALS")) return std::atoi(n);
  if (const char* l = std::getenv("TOLLGATE_JOURNAL_LONG"); l != nullptr && *l == '1') return 2000;
  return 200;
}

// Runs the child for about run_us (counted from its first durable
// acknowledgement when after_first_ack, within 10 s), kills it, returns
// the markers it acknowledged as durable.
std::vector<std::uint64_t> run_child(const std::string& dir, std::uint64_t seed,
                                     std::uint64_t run_us, bool after_first_ack) {
  int fds[2];
  REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    const int w = ::dup(fds[1]);  // without O_CLOEXEC, for the child
    const std::string fd_arg = std::to_string(w);
    const std::string seed_arg = std::to_string(seed);
    ::execl(TOLLGATE_JOURNAL_CHILD, "journal_child", "crash", dir.c_str(), fd_arg.c_str(),
            seed_arg.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(fds[1]);
  std::vector<std::uint8_t> acks;
  const auto start = std::chrono::steady_clock::now();
  auto kill_at = start + (after_first_ack ? std::chrono::microseconds(10'000'000)
                                          : std::chrono::microseconds(run_us));
  char buf[65536];
  while (std::chrono::steady_clock::now() < kill_at) {
    pollfd p{fds[0], POLLIN, 0};
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                          kill_at - std::chrono::steady_clock::now())
                          .count();
    if (::poll(&p, 1, static_cast<int>(left > 0 ? left : 0)) > 0) {
      const ssize_t n = ::read(fds[0], buf, sizeof buf);
      if (n <= 0) break;  // the child died on its own: reported below
      if (after_first_ack && acks.empty()) {
        kill_at = std::chrono::steady_clock::now() + std::chrono::microseconds(run_us);
      }
      acks.insert(acks.end(), buf, buf + n);
    }
  }
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  for (;;) {  // what the child wrote before it died is still in the pipe
    const ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n <= 0) break;
    acks.insert(acks.end(), buf, buf + n);
  }
  ::close(fds[0]);
  INFO("child status " << status);
  REQUIRE((WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL));
  REQUIRE(acks.size() % 8 == 0);
  std::vector<std::uint64_t> out(acks.size() / 8);
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = jf::get64(acks.data() + 8 * i);
  return out;
}

}  // namespace

TEST_CASE("crash: SIGKILL at random points never loses a durable record", "[crash]") {
  const int trials = trial_count();
  std::mt19937_64 rng(20261123);
  jt::temp_dir d;
  std::string dir;
  std::uint64_t total_acked = 0;
  std::uint64_t truncations = 0;
  std::uint64_t max_records = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (int t = 0; t < trials; ++t) {
    if (t % 25 == 0) {  // a fresh journal now and then keeps each check small
      dir = d.sub("j" + std::to_string(t));
    }
    // Kill anywhere from during the child's own open (recovery, rotation)
    // to well into steady appending. Three trials in four count from the
    // child's first durable record: a loaded machine or a sanitizer's
    // start-up can take longer than the whole window, and trials that
    // acknowledge nothing check nothing.
    const std::uint64_t run_us = 2'000 + rng() % 40'000;
    const auto acked = run_child(dir, static_cast<std::uint64_t>(t) + 1, run_us, t % 4 != 0);
    total_acked += acked.size();

    auto j = journal::open(jt::options(dir));
    INFO("trial " << t << ": " << j.status());
    REQUIRE(j.ok());
    if ((*j)->recovery().tail_truncated) ++truncations;
    REQUIRE((*j)->close().ok());

    journal_verify_report rep;
    const auto recs = jt::records(dir, &rep);
    INFO("trial " << t << (rep.error ? ": " + rep.error->message : std::string()));
    REQUIRE(rep.ok());
    REQUIRE(rep.clean());
    // Markers are run << 44 | thread << 40 | n. The journal is written in
    // ticket order and recovery keeps a prefix, so each run's thread has
    // exactly its records 1..k, in order.
    std::set<std::uint64_t> present;
    std::map<std::uint64_t, std::uint64_t> last;  // run << 4 | thread -> n
    for (const auto& r : recs) {
      if (r.type != jf::record_type::event || r.kind != 1) continue;
      const std::uint64_t key = r.marker >> 40;
      const std::uint64_t n = r.marker & ((std::uint64_t{1} << 40) - 1);
      INFO("trial " << t << ": run " << (key >> 4) << " thread " << (key & 15) << " record " << n
                    << " after " << last[key]);
      REQUIRE(n == last[key] + 1);
      last[key] = n;
      present.insert(r.marker);
    }
    max_records = std::max<std::uint64_t>(max_records, rep.records);
    for (std::uint64_t m : acked) {
      INFO("trial " << t << ": marker " << (m >> 40) << ":" << (m & 0xFFFFFFFFFFu)
                    << " was acknowledged durable but is missing");
      REQUIRE(present.count(m) == 1);
    }
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf(
      "crash: %d SIGKILL trials, %llu acknowledged-durable records all present, %llu torn tails "
      "truncated, largest journal %llu records, %.1f s\n",
      trials, static_cast<unsigned long long>(total_acked),
      static_cast<unsigned long long>(truncations), static_cast<unsigned long long>(max_records),
      secs);
  CHECK(total_acked > 0);
}
