// tollgate::journal_reader and verify_journal - reading and verifying an
// audit journal (docs/journal-format.md).
//
// journal_reader iterates a journal's records in order and checks each one
// as it goes (manifest signature, segment headers, frame, CRC32C, sequence,
// SHA-256 chain link, checkpoint signatures, seals against the manifest).
// Iteration stops at the first record that fails; problem() then says what
// and where (segment, file, byte offset, expected sequence). A torn tail
// or unsigned records at the end of the open segment (the normal state
// after a crash) are warnings, not errors, unless strict is set.
//
// verify_journal runs a reader to the end and summarizes.
//
// The reader reads one segment file into memory at a time. Records handed
// out are views valid until the next call to next().
//
// Thread-safety: a reader is used by one thread at a time; readers of one
// directory are independent. Reading a journal that a writer is appending
// to sees a prefix of it (the open segment's tail may look torn).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "tollgate/journal_format.hpp"

namespace tollgate {

struct journal_problem {
  // manifest, directory, header, record, seal, torn_tail, unsigned_tail,
  // missing_segment
  std::string category;
  std::uint64_t segment = 0;
  std::string file;
  std::uint64_t offset = 0;    // byte offset in the file
  std::uint64_t sequence = 0;  // the sequence number expected there (0: n/a)
  std::string message;
};

struct journal_read_options {
  // When set, the manifest's key must be this one (a key taken from the
  // journal itself proves only that the journal is self-consistent).
  std::optional<journal_format::public_key> public_key;
  bool strict = false;  // torn or unsigned tails are errors
};

struct journal_record_location {
  std::uint64_t segment = 0;
  std::uint64_t offset = 0;
};

class journal_reader {
 public:
  // Reads and checks the manifest. An I/O failure is a status; a manifest
  // that fails its checks opens a reader whose first next() fails with it.
  static absl::StatusOr<std::unique_ptr<journal_reader>> open(const std::string& directory,
                                                              journal_read_options options = {});

  // The next verified record: true with *r (and *where) set, false at the
  // end or at the first failure (then problem() is set).
  bool next(journal_format::record_view* r, journal_record_location* where = nullptr);

  // The first error, if iteration stopped on one.
  const std::optional<journal_problem>& problem() const noexcept { return problem_; }
  const std::vector<journal_problem>& warnings() const noexcept { return warnings_; }

  const journal_format::manifest& manifest() const noexcept { return manifest_; }
  // Bytes of segment files read so far, and in all.
  std::uint64_t bytes_read() const noexcept { return bytes_done_ + offset_; }
  std::uint64_t bytes_total() const noexcept { return bytes_total_; }
  // True when the last segment ends with a close checkpoint.
  bool closed() const noexcept { return closed_; }
  // The chain value after the last record returned.
  const journal_format::hash& head() const noexcept { return head_; }

 private:
  journal_reader() = default;
  bool fail(std::string category, std::string message, std::uint64_t offset);
  bool warn(std::string category, std::string message, std::uint64_t offset);
  bool load_segment();
  bool finish_segment();

  std::string dir_;
  journal_read_options options_;
  journal_format::manifest manifest_;
  std::optional<journal_problem> problem_;
  std::vector<journal_problem> warnings_;
  std::size_t index_ = 0;  // into manifest_.segments
  bool loaded_ = false;
  bool done_ = false;
  bool closed_ = false;
  std::vector<std::uint8_t> bytes_;
  std::uint64_t offset_ = 0;
  std::uint64_t bytes_done_ = 0;
  std::uint64_t bytes_total_ = 0;
  std::uint64_t next_seq_ = 1;
  journal_format::hash head_{};
  // check state for the loaded segment
  std::uint64_t seg_next_seq_ = 0;
  journal_format::hash seg_head_{};
  bool seg_sealed_ = false;
  bool seg_closed_ = false;
  std::uint64_t seg_unsigned_ = 0;
};

struct journal_verify_report {
  std::optional<journal_problem> error;  // the first error, if any
  std::vector<journal_problem> warnings;
  bool ok() const noexcept { return !error.has_value(); }
  bool clean() const noexcept { return ok() && warnings.empty(); }

  journal_format::journal_id id{};
  journal_format::public_key key{};
  std::uint64_t segments = 0;
  std::uint64_t records = 0;
  std::uint64_t events = 0;
  std::uint64_t checkpoints = 0;
  std::uint64_t bytes = 0;
  std::uint64_t last_sequence = 0;
  journal_format::hash head{};
  std::uint64_t first_realtime_ns = 0;
  std::uint64_t last_realtime_ns = 0;
  bool closed = false;
  std::map<std::uint16_t, std::uint64_t> events_by_kind;
};

struct journal_verify_options {
  journal_read_options read;
  // Called now and then with (bytes checked, bytes in all).
  std::function<void(std::uint64_t, std::uint64_t)> progress;
  // Called for every verified record.
  std::function<void(const journal_format::record_view&, const journal_record_location&)> on_record;
};

// Verifies the whole journal. A status only for I/O failures that stop it
// from looking (an unreadable directory); everything about the contents is
// in the report.
absl::StatusOr<journal_verify_report> verify_journal(const std::string& directory,
                                                     const journal_verify_options& options = {});

}  // namespace tollgate
