// File helpers and the segment scanner shared by the journal's writer
// (recovery) and its reader/verifier. Private to lib/.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "tollgate/journal_format.hpp"

namespace tollgate::jio {

// An owned file descriptor.
class fd {
 public:
  fd() = default;
  explicit fd(int v) : v_(v) {}
  ~fd() { reset(); }
  fd(fd&& o) noexcept : v_(o.v_) { o.v_ = -1; }
  fd& operator=(fd&& o) noexcept {
    if (this != &o) {
      reset();
      v_ = o.v_;
      o.v_ = -1;
    }
    return *this;
  }
  fd(const fd&) = delete;
  fd& operator=(const fd&) = delete;
  int get() const noexcept { return v_; }
  void reset() noexcept;

 private:
  int v_ = -1;
};

// An I/O failure: the status (message names the file, offset and errno)
// and the errno itself.
struct io_error {
  absl::Status status;
  int error_number = 0;
  std::uint64_t offset = 0;
  bool ok() const noexcept { return status.ok(); }
};

// ENOSPC, EFBIG, EDQUOT -> ResourceExhausted; EIO -> DataLoss; ENOENT ->
// NotFound; others Internal.
io_error make_error(int err, const std::string& what, const std::string& path,
                    std::uint64_t offset);

fd open_dir(const std::string& path, io_error* e);
fd create_file(const std::string& path, io_error* e);  // O_CREAT | O_TRUNC, write-only
fd open_for_write(const std::string& path, io_error* e);
// Writes all n bytes at offset, continuing after short writes; EINTR is
// retried, anything else reported.
io_error write_at(int f, const void* data, std::size_t n, std::uint64_t offset,
                  const std::string& path);
// fdatasync; `offset` (the size synced) is named in the error message.
io_error sync_data(int f, const std::string& path, std::uint64_t offset);
io_error sync_dir(int dir, const std::string& path);
io_error read_file(const std::string& path, std::string* out);
io_error read_file_bytes(const std::string& path, std::vector<std::uint8_t>* out);
io_error list_dir(const std::string& path, std::vector<std::string>* names);
// Atomically replaces dir/name with text: write tmp, fsync, rename, fsync dir.
io_error replace_file(int dir_fd, const std::string& dir, const std::string& name,
                      const std::string& tmp, const std::string& text);

// The running state of a chain check through a segment's records.
struct chain_state {
  std::uint64_t next_seq = 0;
  journal_format::hash head{};
  bool sealed = false;  // the last good record is a seal checkpoint
  bool closed = false;  // ... with the close flag
  std::uint64_t records = 0;
  std::uint64_t checkpoints = 0;
  std::uint64_t events = 0;
  std::uint64_t unsigned_records = 0;  // good records after the last checkpoint
};

enum class record_check {
  ok,
  torn,     // incomplete frame, length out of range or CRC mismatch
  invalid,  // a complete frame with a valid CRC that is not the next record
};

// Checks the record at seg[off]: frame, CRC, body, sequence, prev link,
// checkpoint signature, nothing after a seal. On ok, *v views it and *st
// has advanced past it; otherwise *why says what is wrong.
record_check check_record(std::span<const std::uint8_t> seg, std::uint64_t off,
                          const journal_format::journal_id& id,
                          const journal_format::public_key& key, chain_state* st,
                          journal_format::record_view* v, std::string* why);

// The first offset >= from where a complete frame with a valid CRC and a
// well-formed body starts, or 0.
std::uint64_t find_valid_frame(std::span<const std::uint8_t> seg, std::uint64_t from);

// All the records of one segment (offsets are from the start of the file,
// header included).
struct scan_result {
  std::uint64_t end = 0;  // offset after the last good record
  chain_state st;
  // Why the scan stopped before the end of the bytes, if it did.
  std::string why;
  std::uint64_t bad_seq = 0;  // the sequence the bad record should have had
  // True when the stop is not a torn tail: the record at `end` is a
  // complete frame with a valid CRC (wrong sequence, link, signature...), or
  // a complete valid frame starts at valid_after > end.
  bool damage = false;
  std::uint64_t valid_after = 0;
};

using record_callback =
    std::function<void(const journal_format::record_view&, std::uint64_t offset)>;

scan_result scan_segment(std::span<const std::uint8_t> segment,
                         const journal_format::journal_id& id,
                         const journal_format::public_key& key, std::uint64_t first_seq,
                         const journal_format::hash& prev, const record_callback& on_record = {});

}  // namespace tollgate::jio
