// I/O faults with a real process (journal_child), as
// docs/journal-format.md ("Durability") documents them: the journal stops
// writing, status() is the error (ResourceExhausted for ENOSPC and EFBIG,
// DataLoss for EIO, the message naming the errno), exactly one io_error
// event carries the errno, every later append fails, close reports the
// same error, and nothing acknowledged is lost: reopened without the
// fault, the journal holds exactly the records acknowledged written, in
// order, and its chain verifies.
//
// Faults: a file-size limit (RLIMIT_FSIZE: a short write, then EFBIG);
// errors injected by libfiu's fiu-run into the real pwrite, fdatasync,
// fsync and ftruncate (EIO, ENOSPC, short writes); a real full disk (a
// small tmpfs mounted in a private mount namespace, which needs
// CAP_SYS_ADMIN: elsewhere that test exits 77 and CTest reports it
// skipped).
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "tollgate/journal.hpp"
#include "tollgate/journal_reader.hpp"
#include "util.hpp"

using namespace tollgate;
namespace jf = tollgate::journal_format;

namespace {

// Runs args[0] with args (the one equal to "@FD" replaced by a descriptor
// of a pipe) and returns what it wrote there, and its wait status. For
// use both in the test and in a forked process (no assertions here).
struct child_output {
  std::string text;
  int status = -1;
  bool exited_ok() const { return WIFEXITED(status) && WEXITSTATUS(status) == 0; }
};

child_output run(std::vector<std::string> args) {
  child_output out;
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return out;
  const pid_t pid = ::fork();
  if (pid < 0) return out;
  if (pid == 0) {
    const int w = ::dup(fds[1]);  // without O_CLOEXEC, for the child
    std::vector<char*> argv;
    for (auto& a : args) {
      if (a == "@FD") a = std::to_string(w);
      argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(fds[1]);
  char buf[256];
  ssize_t n = 0;
  while ((n = ::read(fds[0], buf, sizeof buf)) != 0) {
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    out.text.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fds[0]);
  while (::waitpid(pid, &out.status, 0) < 0 && errno == EINTR) {
  }
  return out;
}

// The line journal_child writes (see run_until_fault there).
struct fault_report {
  int code = -1;
  int err = -1;
  int events = -1;
  std::uint64_t acked_written = 0;
  std::uint64_t acked_durable = 0;
  int after_failed = -1;
  int close_code = -1;
  std::uint64_t written_at_arm = 0;
  std::uint64_t written_end = 0;
  std::uint64_t durable_at_arm = 0;
  std::uint64_t durable_end = 0;
  int names_errno = -1;
  std::string message;  // the status message
};

bool parse(const std::string& line, fault_report* r) {
  std::istringstream in(line);
  in >> r->code >> r->err >> r->events >> r->acked_written >> r->acked_durable >> r->after_failed >>
      r->close_code >> r->written_at_arm >> r->written_end >> r->durable_at_arm >> r->durable_end >>
      r->names_errno;
  if (in.fail()) return false;
  in >> std::ws;
  std::getline(in, r->message);
  return true;
}

fault_report run_child(std::vector<std::string> args) {
  const child_output out = run(std::move(args));
  INFO("child status " << out.status << ", output: " << out.text);
  REQUIRE(out.exited_ok());
  fault_report r;
  REQUIRE(parse(out.text, &r));
  return r;
}

// The documented behaviour after a fault.
void check_stopped(const fault_report& r, absl::StatusCode code, int err) {
  INFO("code " << r.code << " errno " << r.err << " events " << r.events << " acked "
               << r.acked_written << ": " << r.message);
  CHECK(r.code == static_cast<int>(code));
  CHECK(r.err == err);
  CHECK(r.events == 1);
  CHECK(r.names_errno == 1);      // the status message names the errno
  CHECK(r.after_failed == 1);     // every later append fails
  CHECK(r.close_code == r.code);  // close reports the same error, not success
}

// Reopens dir without any fault, closes it, verifies the whole chain, and
// checks that the host records are exactly 1..acked in order.
journal_recovery reopen_and_check(const std::string& dir, std::uint64_t acked) {
  auto j = journal::open(jt::options(dir));
  INFO(j.status());
  REQUIRE(j.ok());
  const journal_recovery rec = (*j)->recovery();
  REQUIRE((*j)->close().ok());
  journal_verify_report rep;
  const auto recs = jt::records(dir, &rep);
  REQUIRE(rep.clean());
  std::uint64_t expect = 1;
  std::uint64_t tail_events = 0;
  for (const auto& r : recs) {
    if (r.type != jf::record_type::event) continue;
    if (r.kind == static_cast<std::uint16_t>(event_kind::tail_truncated)) ++tail_events;
    if (r.kind != 1) continue;
    REQUIRE(r.marker == expect);
    ++expect;
  }
  CHECK(expect - 1 == acked);  // every acknowledged record, and only those
  CHECK(tail_events == (rec.tail_truncated ? 1u : 0u));
  return rec;
}

// Runs journal_child under fiu-run with one of its libfiu cases.
//
// In a GCC sanitizer build the sanitizer's runtime is a shared library
// that must come first in the process (behind libfiu's malloc wrapper its
// initialisation crashes), but fiu-run sets LD_PRELOAD to libfiu's
// libraries alone: a shell between fiu-run and the child puts the runtime
// in front. libfiu's wrappers are then reached through the sanitizer's
// interceptors, which call on to the next definition.
fault_report run_fiu(const std::string& dir, const std::string& which) {
  std::vector<std::string> args = {TOLLGATE_FIU_RUN, "-x", "-f", ""};
  const std::string runtime = TOLLGATE_SANITIZER_RUNTIME;
  if (!runtime.empty()) {
    args.insert(args.end(),
                {"/bin/sh", "-c", "LD_PRELOAD=\"$0 $LD_PRELOAD\" exec \"$@\"", runtime});
  }
  args.insert(args.end(), {TOLLGATE_JOURNAL_CHILD, "fiu", dir, "@FD", which});
  return run_child(std::move(args));
}

}  // namespace

TEST_CASE("io faults: a file-size limit gives ResourceExhausted and one EFBIG event and no loss",
          "[io]") {
  jt::temp_dir d;
  // Limits that land in different places: while writing the first
  // segment's records, and (64 KiB header + records) mid-batch.
  for (std::uint64_t limit : {std::uint64_t{20000}, std::uint64_t{65536}, std::uint64_t{150001}}) {
    const std::string dir = d.sub("j" + std::to_string(limit));
    const fault_report r =
        run_child({TOLLGATE_JOURNAL_CHILD, "fsize", dir, "@FD", std::to_string(limit)});
    INFO("limit " << limit);
    check_stopped(r, absl::StatusCode::kResourceExhausted, EFBIG);
    CHECK(r.acked_written > 10);
    // No segment grew past the limit, and reopening without it recovers.
    CHECK(jt::read_bytes(dir + "/" + jf::segment_file_name(1)).size() <= limit);
    reopen_and_check(dir, r.acked_written);
  }
}

TEST_CASE("io faults: libfiu EIO from pwrite stops the journal and loses nothing acknowledged",
          "[io][fiu]") {
  jt::temp_dir d;
  const fault_report r = run_fiu(d.sub("j"), "pwrite-eio");
  check_stopped(r, absl::StatusCode::kDataLoss, EIO);
  CHECK(r.acked_written >= 200);
  CHECK(r.written_end == r.written_at_arm);  // nothing acknowledged after the fault
  CHECK_FALSE(reopen_and_check(d.sub("j"), r.acked_written).tail_truncated);
}

TEST_CASE("io faults: libfiu ENOSPC from pwrite gives ResourceExhausted and loses nothing",
          "[io][fiu]") {
  jt::temp_dir d;
  const fault_report r = run_fiu(d.sub("j"), "pwrite-enospc");
  check_stopped(r, absl::StatusCode::kResourceExhausted, ENOSPC);
  CHECK(r.acked_written >= 200);
  CHECK(r.written_end == r.written_at_arm);
  CHECK_FALSE(reopen_and_check(d.sub("j"), r.acked_written).tail_truncated);
}

TEST_CASE("io faults: libfiu EIO from fdatasync acknowledges nothing durable after it",
          "[io][fiu]") {
  // The fsyncgate lesson: after a failed fdatasync the state of the page
  // cache is unknown, so the journal must not retry and call it durable.
  jt::temp_dir d;
  const fault_report r = run_fiu(d.sub("j"), "fdatasync-eio");
  check_stopped(r, absl::StatusCode::kDataLoss, EIO);
  CHECK(r.acked_durable >= 200);
  CHECK(r.durable_at_arm > 0);
  CHECK(r.durable_end == r.durable_at_arm);  // nothing became durable after the fault
  CHECK(r.acked_written >= r.acked_durable);
  // Every record acknowledged durable is there (and, as the process did
  // not crash, every one acknowledged written).
  CHECK_FALSE(reopen_and_check(d.sub("j"), r.acked_written).tail_truncated);
}

TEST_CASE("io faults: libfiu EIO from fsync of the manifest at rotation stops the journal",
          "[io][fiu]") {
  jt::temp_dir d;
  const fault_report r = run_fiu(d.sub("j"), "fsync-eio");
  check_stopped(r, absl::StatusCode::kDataLoss, EIO);
  CHECK(r.acked_written >= 200);
  // The segment was sealed but the manifest still names it open, and
  // MANIFEST.tmp is left over: recovery continues after the seal.
  reopen_and_check(d.sub("j"), r.acked_written);
}

TEST_CASE("io faults: libfiu short write then ENOSPC leaves a torn tail that recovery reports",
          "[io][fiu]") {
  // The partial frame stays because ftruncate fails too.
  jt::temp_dir d;
  const fault_report r = run_fiu(d.sub("j"), "short-write-enospc");
  check_stopped(r, absl::StatusCode::kResourceExhausted, ENOSPC);
  CHECK(r.acked_written >= 200);
  CHECK(r.written_end == r.written_at_arm);
  INFO(r.message);
  CHECK(r.message.find("ftruncate failed") != std::string::npos);
  const journal_recovery rec = reopen_and_check(d.sub("j"), r.acked_written);
  CHECK(rec.tail_truncated);
  CHECK(rec.bytes_removed > 0);
}

TEST_CASE("io faults: libfiu short writes alone are continued and lose nothing", "[io][fiu]") {
  jt::temp_dir d;
  const fault_report r = run_fiu(d.sub("j"), "short-writes");
  CHECK(r.code == 0);
  CHECK(r.events == 0);
  CHECK(r.close_code == 0);
  CHECK(r.after_failed == 1);  // after close
  CHECK(r.acked_written == 3000);
  CHECK(r.acked_durable == 3000);
  CHECK_FALSE(reopen_and_check(d.sub("j"), 3000).tail_truncated);
}

namespace {

// In a forked process: a private mount namespace with a 256 KiB tmpfs at
// mnt; the journal fills it, is reopened while it is full, then after it
// has grown to 4 MiB; the journal is copied to `copy`. Writes the three
// output lines to out, or "skip <reason>".
int fill_tmpfs(const std::string& mnt, const std::string& copy, int out) {
  auto say = [&](const std::string& s) {
    (void)!::write(out, s.data(), s.size());
    return 0;
  };
  auto skip = [&](const char* what) {
    return say(std::string("skip ") + what + ": " + std::strerror(errno) +
               " (a private mount namespace and a tmpfs need CAP_SYS_ADMIN)");
  };
  if (::unshare(CLONE_NEWNS) != 0) return skip("unshare(CLONE_NEWNS)");
  // Nothing mounted here may propagate back to the parent's namespace.
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    return skip("making / private");
  }
  if (::mount("tmpfs", mnt.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, "size=256k,mode=0700") != 0) {
    return skip("mount -t tmpfs");
  }
  const std::string dir = mnt + "/j";
  const child_output fill = run({TOLLGATE_JOURNAL_CHILD, "full", dir, "@FD", "0"});
  if (!fill.exited_ok())
    return say("error: the filling child exited with " + std::to_string(fill.status) + "\n");
  const child_output full = run({TOLLGATE_JOURNAL_CHILD, "reopen", dir, "@FD", "0"});
  if (::mount(nullptr, mnt.c_str(), nullptr, MS_REMOUNT | MS_NOSUID | MS_NODEV,
              "size=4m,mode=0700") != 0) {
    return say(std::string("error: remount: ") + std::strerror(errno) + "\n");
  }
  const child_output grown = run({TOLLGATE_JOURNAL_CHILD, "reopen", dir, "@FD", "0"});
  jt::copy_dir(dir, copy);
  return say(fill.text + full.text + grown.text);
}

}  // namespace

// Run by its own CTest test (hidden from discovery), which takes exit code
// 77 as "skipped".
TEST_CASE("io faults: a full tmpfs gives ResourceExhausted and one ENOSPC event and no loss",
          "[.tmpfs]") {
  std::string skipped;
  {
    jt::temp_dir d;
    const std::string mnt = d.sub("mnt");
    const std::string copy = d.sub("copy");
    REQUIRE(::mkdir(mnt.c_str(), 0700) == 0);
    int fds[2];
    REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      ::close(fds[0]);
      ::_exit(fill_tmpfs(mnt, copy, fds[1]));
    }
    ::close(fds[1]);
    std::string text;
    char buf[256];
    ssize_t n = 0;
    while ((n = ::read(fds[0], buf, sizeof buf)) > 0) text.append(buf, static_cast<std::size_t>(n));
    ::close(fds[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    INFO("status " << status << ", output: " << text);
    REQUIRE(WIFEXITED(status));
    REQUIRE(WEXITSTATUS(status) == 0);
    if (text.rfind("skip ", 0) == 0) {
      skipped = text.substr(5);
    } else {
      std::istringstream lines(text);
      std::string fill_line;
      std::getline(lines, fill_line);
      fault_report r;
      REQUIRE(parse(fill_line, &r));
      check_stopped(r, absl::StatusCode::kResourceExhausted, ENOSPC);
      CHECK(r.acked_written > 10);
      // Reopened while still full: recovery needs to write (a seal, the
      // manifest), so it may fail, but only for want of space.
      int full_open = -1;
      int full_close = -1;
      lines >> full_open >> full_close;
      CHECK(
          (full_open == 0 || full_open == static_cast<int>(absl::StatusCode::kResourceExhausted)));
      if (full_open == 0) {
        CHECK((full_close == 0 ||
               full_close == static_cast<int>(absl::StatusCode::kResourceExhausted)));
      }
      // With room again it opens and closes cleanly.
      int grown_open = -1;
      int grown_close = -1;
      lines >> grown_open >> grown_close;
      CHECK(grown_open == 0);
      CHECK(grown_close == 0);
      reopen_and_check(copy, r.acked_written);
    }
  }
  if (!skipped.empty()) {
    std::fprintf(stderr, "SKIPPED: %s\n", skipped.c_str());
    std::fflush(stderr);
    std::exit(77);
  }
}
