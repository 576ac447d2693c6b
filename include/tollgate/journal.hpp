// tollgate::journal - the compliance audit journal's writer.
//
// What it records: every decision and control event the host appends, as
// tamper-evident records in append-only segment files (format:
// docs/journal-format.md): CRC32C per record, a SHA-256 chain through every
// record, Ed25519-signed checkpoints every N records or T ms, a signed
// manifest, segments rotated by size and age.
//
// Model: append() copies the entry into a bounded multi-producer ring and
// returns a ticket; it takes no lock, allocates nothing and makes no system
// call (the clock, when the entry has no timestamps, is read through the
// vDSO). A writer drains the ring in batches: a thread the journal owns
// (writer_mode::thread) or the host calling poll() from its own loop
// (writer_mode::poll). The writer assigns sequence numbers, chains, writes
// one batch with one pwrite, and syncs according to the durability level.
// Segment space is reserved a few MiB ahead of the writes (fallocate,
// keeping the file's size) and the unused rest released when the segment
// is sealed, so an open segment may occupy more disk than its size.
// A ticket can be asked whether its record is written (in the page cache:
// survives the process being killed) or durable (fdatasync'ed: survives a
// power loss).
//
// Invariants:
//   - records are written in ticket order, and sequence numbers have no gaps;
//   - an entry is either written, or its append returned a failure, or it was
//     dropped by the drop_and_count policy and the drop is counted and
//     recorded in the journal as a records_dropped event: never silent loss;
//   - a ticket is reported written (durable) only after the bytes of its
//     record and all earlier ones were written (fdatasync'ed);
//   - after an I/O error (ENOSPC, EFBIG, EIO, a failed fdatasync) nothing more
//     is written or acknowledged: status() holds the error, the event
//     callback receives it, and every later append returns failed.
//
// Thread-safety: append, is_written, is_durable, status and stats may be
// called from any number of threads at once. poll, sync and close may be
// called from any thread; the writer's work is serialized internally. The
// event callback runs on the thread doing the writer's work (the journal's
// thread, or the one calling poll, sync, close or open) and must not call
// back into the journal's poll, sync or close.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "tollgate/journal_format.hpp"

namespace tollgate {

using journal_format::event_kind;

enum class durability : std::uint32_t {
  none = 0,             // fdatasync only when a segment is sealed
  every_n_records = 1,  // when sync_every_records records are unsynced
  every_t_us = 2,       // sync_every_us after the first unsynced write
  every_record = 3,     // after every batch (group commit)
};

enum class ring_full_policy : std::uint32_t {
  reject = 0,          // append returns rejected: the host fails the request closed
  block = 1,           // append waits for room (spins, then yields); in poll mode
                       // another thread must be polling meanwhile
  drop_and_count = 2,  // append returns dropped; the writer records how many
};

enum class writer_mode : std::uint32_t { thread = 0, poll = 1 };

enum class journal_event_type : std::uint32_t {
  io_error = 0,         // status is the error; the journal has stopped writing
  tail_truncated = 1,   // recovery removed a torn tail (offset, bytes)
  checkpoint = 2,       // a checkpoint was written (sequence, head)
  rotated = 3,          // a new segment was started (segment)
  records_dropped = 4,  // the ring dropped `count` entries (drop_and_count)
};

struct journal_event {
  journal_event_type type = journal_event_type::io_error;
  absl::Status status;   // io_error
  int error_number = 0;  // io_error: errno
  std::uint64_t segment = 0;
  std::uint64_t offset = 0;  // io_error, tail_truncated: byte offset in the segment
  std::uint64_t count = 0;   // tail_truncated: bytes removed; records_dropped: entries
  std::uint64_t sequence = 0;
  journal_format::hash head{};  // checkpoint: the chain head it signs
  std::uint64_t realtime_ns = 0;
};

struct journal_options {
  std::string directory;
  bool create_if_missing = true;
  // The Ed25519 seed of the key that signs checkpoints and the manifest.
  std::array<std::uint8_t, crypto::ed25519_seed_size> signing_seed{};

  writer_mode mode = writer_mode::thread;
  durability level = durability::every_record;
  std::uint64_t sync_every_records = 64;
  std::uint64_t sync_every_us = 1000;

  // Ring: cells of 64 bytes (a power of two); one entry takes one header
  // cell plus its account, inputs, digest and payload rounded up to cells.
  std::size_t ring_cells = 1u << 16;
  std::size_t max_entry_bytes = 4096;  // account + inputs + payload (+ 32)
  ring_full_policy on_full = ring_full_policy::reject;

  std::uint64_t checkpoint_every_records = 1024;
  std::uint64_t checkpoint_every_ms = 1000;
  std::uint64_t max_segment_bytes = 64ull << 20;
  std::uint64_t max_segment_age_ms = 3'600'000;

  std::size_t max_batch_records = 4096;
  // The owned thread's longest sleep when the ring is empty.
  std::uint64_t idle_sleep_us = 50;

  std::function<void(const journal_event&)> on_event;
};

// What the host appends. Views are copied by append and need not outlive it.
struct journal_entry {
  std::uint16_t kind = static_cast<std::uint16_t>(event_kind::decision);
  std::uint64_t realtime_ns = 0;   // 0: read CLOCK_REALTIME at append
  std::uint64_t monotonic_ns = 0;  // 0: read CLOCK_MONOTONIC at append
  std::string_view account;        // at most 255 bytes
  std::uint32_t route = 0;
  std::uint32_t venue = 0;
  std::uint32_t verdict = 0;
  std::uint32_t reason = 0;
  std::uint64_t config_version = 0;
  std::span<const std::uint8_t> inputs;          // what a replay needs
  std::span<const std::uint8_t> payload;         // digested by the writer
  const std::uint8_t* payload_digest = nullptr;  // 32 bytes, if the host has it
  bool store_payload = false;                    // keep the payload itself too
};

enum class append_status : std::uint32_t {
  ok = 0,
  rejected = 1,   // ring full, policy reject
  dropped = 2,    // ring full, policy drop_and_count (counted and recorded)
  too_large = 3,  // more than max_entry_bytes, or account > 255 bytes
  invalid = 4,    // a kind the host may not write
  failed = 5,     // the journal is closed or stopped after an I/O error
};

struct append_result {
  append_status status = append_status::failed;
  std::uint64_t ticket = 0;  // when ok; 0 is never a valid ticket
  bool ok() const noexcept { return status == append_status::ok; }
};

struct journal_stats {
  std::uint64_t written = 0;      // event records written by the writer (host entries)
  std::uint64_t rejected = 0;     // append_status::rejected
  std::uint64_t dropped = 0;      // append_status::dropped
  std::uint64_t checkpoints = 0;  // written since open
  std::uint64_t syncs = 0;        // fdatasync calls since open
  std::uint64_t batches = 0;
  std::uint64_t bytes = 0;  // written since open
  std::uint64_t next_sequence = 0;
  std::uint64_t segment = 0;
  std::uint64_t written_ticket = 0;  // every ticket <= this is written
  std::uint64_t durable_ticket = 0;  // every ticket <= this is durable
};

// What open found and did.
struct journal_recovery {
  bool created = false;  // a new journal
  bool tail_truncated = false;
  std::uint64_t segment = 0;  // the segment that was recovered
  std::uint64_t offset = 0;   // where the torn tail began
  std::uint64_t bytes_removed = 0;
  std::uint64_t records = 0;  // valid records found in the recovered segment
  std::uint64_t next_sequence = 0;
};

class journal_writer;  // lib/journal.cpp

class journal {
 public:
  // Creates or opens (and recovers) the journal in options.directory.
  // InvalidArgument for bad options, PermissionDenied when the key does not
  // match the journal's, DataLoss for damage that is not a torn tail,
  // FailedPrecondition for a directory that holds unknown segment files.
  static absl::StatusOr<std::unique_ptr<journal>> open(journal_options options);

  ~journal();  // close(), reporting a failure through the event callback
  journal(const journal&) = delete;
  journal& operator=(const journal&) = delete;

  // Hot path. See the header comment.
  append_result append(const journal_entry& e) noexcept;

  bool is_written(std::uint64_t ticket) const noexcept {
    return written_.load(std::memory_order_acquire) >= ticket;
  }
  bool is_durable(std::uint64_t ticket) const noexcept {
    return durable_.load(std::memory_order_acquire) >= ticket;
  }

  // Waits (sleeping in short steps; in poll mode, polling) until the ticket
  // is durable, the journal fails (its error), it is closed with the ticket
  // not durable (FailedPrecondition), or timeout_us passes
  // (DeadlineExceeded). A close() in progress on another thread is waited
  // for: it writes and syncs what was appended before it. A timeout too
  // large to add to the clock waits without limit.
  absl::Status wait_durable(std::uint64_t ticket, std::uint64_t timeout_us);

  // poll mode: drains up to max_batch_records entries, writes them and
  // syncs as the durability level asks (and checkpoints, rotates when due).
  // Returns the number of entries written, or the journal's error.
  absl::StatusOr<std::size_t> poll();

  // Writes what the ring holds and fdatasyncs it, whatever the level.
  absl::Status sync();

  // Drains the ring, seals the segment with a close checkpoint, syncs and
  // records the journal as closed in the manifest. Later appends fail.
  // An append racing close either returns failed or gets a ticket that
  // close writes before the seal (or, when close hits an I/O error, that
  // is never reported written; the status says why). Idempotent.
  absl::Status close();

  // OK, or the error that stopped the writer.
  absl::Status status() const;
  journal_stats stats() const;
  const journal_recovery& recovery() const noexcept { return recovery_; }
  const journal_format::journal_id& id() const noexcept;
  const journal_format::public_key& key() const noexcept;

 private:
  explicit journal(std::unique_ptr<journal_writer> w);
  friend class journal_writer;

  std::unique_ptr<journal_writer> w_;
  journal_recovery recovery_;
  // Published by the writer; read by anyone.
  alignas(64) std::atomic<std::uint64_t> written_{0};
  std::atomic<std::uint64_t> durable_{0};
  alignas(64) std::atomic<std::uint32_t> state_{0};  // 0 open, 1 closed, 2 failed
  std::atomic<std::uint64_t> rejected_{0};
  std::atomic<std::uint64_t> dropped_{0};
};

}  // namespace tollgate
