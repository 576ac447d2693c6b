// tollgate::journal_replay - recording decisions so that they can be
// replayed, and replaying them.
//
// A host that journals a limiter's or a breaker's decisions with the
// record_* functions below writes, in each record's `inputs`, everything
// the decision depended on (docs/journal-format.md, "Replay inputs"):
// the configuration of each instance (a config_change record, read from
// the live object, the limiter's hash seed included), every decision with
// its inputs and the answer given, every outcome fed back to a breaker,
// every forced transition and every transition the breaker announced.
//
// replay_journal reads a verified journal in order, rebuilds every
// instance from its recorded configuration, feeds the recorded inputs
// through it and reports every decision (and breaker transition) whose
// answer differs from the recorded one. A replay reproduces the live
// decisions exactly when, per instance (and, for limiters, per hierarchy),
// decisions were journaled in the order they were made: one thread per
// instance, or decide-and-record under one lock. Decisions that raced on
// one instance may legitimately be recorded in another order than they
// took effect; a replay then reports them as differences.
//
// The record_* functions make no allocation and no system call beyond
// journal::append's (a key or an account too large for the journal gives
// append_status::too_large).
//
// Thread-safety: the record_* functions as journal::append. replay_journal
// uses only its own objects.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "tollgate/breaker.hpp"
#include "tollgate/journal.hpp"
#include "tollgate/journal_reader.hpp"
#include "tollgate/limiter.hpp"

namespace tollgate::journal_replay {

// The inputs' layout version (byte 0 of every replay input).
inline constexpr std::uint8_t inputs_version = 1;
inline constexpr std::size_t inputs_header_size = 8;
inline constexpr std::uint32_t no_parent = 0xFFFFFFFFu;
// The longest key a limiter record carries.
inline constexpr std::size_t max_key_size = 1024;

enum class component : std::uint8_t { limiter = 1, breaker = 2 };

enum class limiter_op : std::uint8_t {
  define = 1,      // config_change
  acquire = 2,     // decision
  reserve = 3,     // decision
  cancel = 4,      // decision
  multiplier = 5,  // config_change
  shadow = 6,      // config_change
};

enum class breaker_op : std::uint8_t {
  define = 1,      // config_change
  acquire = 2,     // decision
  outcome = 3,     // decision
  force = 4,       // config_change: a manual transition
  transition = 5,  // breaker_transition: one the breaker announced
};

// What a record carries besides its inputs. Zero timestamps are read from
// the clock at append.
struct record_context {
  std::string_view account;
  std::uint32_t route = 0;
  std::uint32_t venue = 0;
  std::uint64_t config_version = 0;
  std::uint64_t realtime_ns = 0;
  std::uint64_t monotonic_ns = 0;
  std::span<const std::uint8_t> payload;         // digested; stored if store_payload
  const std::uint8_t* payload_digest = nullptr;  // 32 bytes, if the host has it
  bool store_payload = false;
};

// Limiters. `instance` names the limiter in the journal (the host's choice;
// a define for an instance already defined replaces it from then on).
// parent_instance is the instance of lim.parent(), or no_parent.
append_result record_limiter_define(journal& j, std::uint32_t instance, const limiter& lim,
                                    std::uint32_t parent_instance,
                                    const record_context& ctx = {}) noexcept;
append_result record_limiter_acquire(journal& j, std::uint32_t instance, std::string_view key,
                                     std::uint32_t tier, std::uint32_t cost, std::uint64_t now_ns,
                                     const limit_decision& d,
                                     const record_context& ctx = {}) noexcept;
append_result record_limiter_reserve(journal& j, std::uint32_t instance, std::string_view key,
                                     std::uint32_t tier, std::uint32_t cost, std::uint64_t now_ns,
                                     const limit_decision& d, const reservation& res,
                                     const record_context& ctx = {}) noexcept;
append_result record_limiter_cancel(journal& j, std::uint32_t instance, std::string_view key,
                                    const reservation& res, std::uint64_t now_ns,
                                    const record_context& ctx = {}) noexcept;
append_result record_limiter_multiplier(journal& j, std::uint32_t instance, double multiplier,
                                        std::uint64_t now_ns,
                                        const record_context& ctx = {}) noexcept;
append_result record_limiter_shadow(journal& j, std::uint32_t instance, bool on,
                                    const record_context& ctx = {}) noexcept;

// Breakers.
append_result record_breaker_define(journal& j, std::uint32_t instance, const breaker& b,
                                    const record_context& ctx = {}) noexcept;
append_result record_breaker_acquire(journal& j, std::uint32_t instance, std::uint64_t now_ns,
                                     const permit& p, const record_context& ctx = {}) noexcept;
append_result record_breaker_outcome(journal& j, std::uint32_t instance, const permit& p, outcome o,
                                     std::uint64_t latency_ns, std::uint64_t now_ns,
                                     const record_context& ctx = {}) noexcept;
append_result record_breaker_force(journal& j, std::uint32_t instance, breaker_state to,
                                   std::uint64_t now_ns, const record_context& ctx = {}) noexcept;
append_result record_breaker_transition(journal& j, std::uint32_t instance, const breaker_event& ev,
                                        const record_context& ctx = {}) noexcept;

// The inputs as one JSON object ({"component":"limiter","op":"acquire",...}),
// for dumps; std::nullopt when they are not replay inputs (the host's own
// bytes), and an object with an "error" member when they claim to be but
// are malformed.
std::optional<std::string> describe_inputs(std::span<const std::uint8_t> inputs);

struct replay_mismatch {
  std::uint64_t sequence = 0;
  std::uint64_t segment = 0;
  std::uint64_t offset = 0;
  component comp = component::limiter;
  std::uint8_t op = 0;
  std::uint32_t instance = 0;
  std::string account;
  std::string recorded;  // what the journal says was decided
  std::string replayed;  // what the replay decided
};

// A record whose replay inputs could not be used (malformed, an instance
// never defined, a configuration the policies refuse).
struct replay_issue {
  std::uint64_t sequence = 0;
  std::uint64_t segment = 0;
  std::uint64_t offset = 0;
  std::string message;
};

struct replay_report {
  // The journal failed verification here; the replay stopped at it.
  std::optional<journal_problem> error;
  std::vector<journal_problem> warnings;
  std::uint64_t records = 0;    // verified records read
  std::uint64_t replayed = 0;   // records fed through a policy
  std::uint64_t decisions = 0;  // decisions compared (acquire, reserve)
  std::uint64_t limiter_records = 0;
  std::uint64_t breaker_records = 0;
  std::uint64_t transitions = 0;  // announced breaker transitions compared
  std::uint64_t instances = 0;    // defines seen
  std::uint64_t other = 0;        // records with no replay inputs (skipped)
  std::uint64_t mismatch_count = 0;
  std::uint64_t issue_count = 0;
  std::vector<replay_mismatch> mismatches;  // the first max_reported
  std::vector<replay_issue> issues;         // the first max_reported
  bool ok() const noexcept { return !error && mismatch_count == 0 && issue_count == 0; }
};

struct replay_options {
  journal_read_options read;
  std::size_t max_reported = 100;
  // A recorded limiter configuration above this many keys is an issue
  // rather than a table of that size (a crafted journal cannot make the
  // replay allocate more than the caller allows).
  std::uint64_t max_limiter_capacity = limiter::max_capacity;
  std::function<void(std::uint64_t, std::uint64_t)> progress;  // bytes done, in all
  std::function<void(const replay_mismatch&)> on_mismatch;     // every one
};

// Replays the journal in `directory`. A status only when the journal
// cannot be opened at all; everything else is in the report.
absl::StatusOr<replay_report> replay_journal(const std::string& directory,
                                             const replay_options& options = {});

// The replay of records the caller reads itself (a journal_reader, records
// streamed from elsewhere): feed every verified record in journal order,
// then finish. replay_journal is a reader and a session. The session does
// not check the chain; the records' integrity is the caller's to establish.
class replay_session {
 public:
  explicit replay_session(replay_options options = {});
  ~replay_session();
  replay_session(const replay_session&) = delete;
  replay_session& operator=(const replay_session&) = delete;

  void feed(const journal_format::record_view& record, const journal_record_location& where);
  // Settles what is still open (unpaired transitions) and returns the
  // report; the session is spent.
  replay_report finish();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace tollgate::journal_replay
