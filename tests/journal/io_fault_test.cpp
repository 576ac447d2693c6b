// I/O faults with a real process: under RLIMIT_FSIZE (SIGXFSZ ignored) the
// writer's pwrite fails with EFBIG after a short write. The journal must
// report ResourceExhausted through status() and exactly one io_error event
// with errno EFBIG, refuse every later append, and lose nothing it
// acknowledged: after reopening without the limit, every record
// acknowledged written is there and the chain verifies.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <sstream>
#include <string>

#include "tollgate/journal.hpp"
#include "tollgate/journal_reader.hpp"
#include "util.hpp"

using namespace tollgate;
namespace jf = tollgate::journal_format;

namespace {

std::string run_fsize_child(const std::string& dir, std::uint64_t limit) {
  int fds[2];
  REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    const int w = ::dup(fds[1]);
    const std::string fd_arg = std::to_string(w);
    const std::string limit_arg = std::to_string(limit);
    ::execl(TOLLGATE_JOURNAL_CHILD, "journal_child", "fsize", dir.c_str(), fd_arg.c_str(),
            limit_arg.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(fds[1]);
  std::string out;
  char buf[256];
  ssize_t n = 0;
  while ((n = ::read(fds[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  INFO("child status " << status << ", output: " << out);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  return out;
}

}  // namespace

TEST_CASE("io faults: a file-size limit gives ResourceExhausted, one EFBIG event, no loss",
          "[io]") {
  jt::temp_dir d;
  // Limits that land in different places: while writing the first
  // segment's records, and (64 KiB header + records) mid-batch.
  for (std::uint64_t limit : {std::uint64_t{20000}, std::uint64_t{65536}, std::uint64_t{150001}}) {
    const std::string dir = d.sub("j" + std::to_string(limit));
    std::istringstream in(run_fsize_child(dir, limit));
    int code = -1;
    int err = -1;
    int events = -1;
    unsigned long long acked = 0;
    int after_failed = 0;
    int close_code = -1;
    in >> code >> err >> events >> acked >> after_failed >> close_code;
    INFO("limit " << limit << ": code " << code << " errno " << err << " events " << events
                  << " acked " << acked);
    CHECK(code == static_cast<int>(absl::StatusCode::kResourceExhausted));
    CHECK(err == EFBIG);
    CHECK(events == 1);
    CHECK(after_failed == 1);
    CHECK(close_code == code);  // close reports the same error, not success
    CHECK(acked > 10);

    // No segment grew past the limit, and reopening without it recovers.
    CHECK(jt::read_bytes(dir + "/" + jf::segment_file_name(1)).size() <= limit);
    auto j = journal::open(jt::options(dir));
    INFO(j.status());
    REQUIRE(j.ok());
    REQUIRE((*j)->close().ok());
    journal_verify_report rep;
    const auto recs = jt::records(dir, &rep);
    REQUIRE(rep.clean());
    std::uint64_t expect = 1;
    for (const auto& r : recs) {
      if (r.type == jf::record_type::event && r.kind == 1) {
        REQUIRE(r.marker == expect);
        ++expect;
      }
    }
    CHECK(expect - 1 >= acked);  // every acknowledged record, in order
  }
}
