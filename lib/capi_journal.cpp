// The C ABI of the audit journal: tg_journal_* (writer), tg_journal_record_*
// (replay inputs), tg_journal_reader_*, tg_journal_verify and
// tg_journal_replay. Argument checking and conversion only.
#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "capi_common.hpp"
#include "capi_handles.hpp"
#include "tollgate/crypto.hpp"
#include "tollgate/journal.hpp"
#include "tollgate/journal_reader.hpp"
#include "tollgate/journal_replay.hpp"
#include "tollgate/tollgate.h"

using tollgate::capi::bytes_ok;
using tollgate::capi::fail;
using tollgate::capi::guarded;
using tollgate::capi::live;
using tollgate::capi::read_options;
using tollgate::capi::set_error;
namespace jf = tollgate::journal_format;
namespace jr = tollgate::journal_replay;

using tollgate::capi::tag_journal;
using tollgate::capi::tag_journal_reader;

struct tg_journal : tollgate::capi::handle_base {
  tg_journal() noexcept : handle_base(tag_journal) {}
  // Declared before impl: closing the journal in impl's destructor may
  // still call them.
  tg_journal_event_fn fn = nullptr;
  void* user = nullptr;
  std::unique_ptr<tollgate::journal> impl;
};

struct tg_journal_reader : tollgate::capi::handle_base {
  tg_journal_reader() noexcept : handle_base(tag_journal_reader) {}
  std::unique_ptr<tollgate::journal_reader> impl;
};

// The layouts below are the ABI. Changing one is a break: add, never edit.
static_assert(sizeof(tg_journal_event) == 96 && offsetof(tg_journal_event, segment) == 16 &&
              offsetof(tg_journal_event, realtime_ns) == 48 &&
              offsetof(tg_journal_event, head) == 56 && offsetof(tg_journal_event, message) == 88);
static_assert(sizeof(tg_journal_options) == 160 && offsetof(tg_journal_options, directory) == 8 &&
              offsetof(tg_journal_options, signing_seed) == 16 &&
              offsetof(tg_journal_options, durability) == 48 &&
              offsetof(tg_journal_options, sync_every_records) == 56 &&
              offsetof(tg_journal_options, idle_sleep_us) == 128 &&
              offsetof(tg_journal_options, create_if_missing) == 136 &&
              offsetof(tg_journal_options, on_event) == 144 &&
              offsetof(tg_journal_options, on_event_user) == 152);
static_assert(sizeof(tg_journal_entry) == 104 && offsetof(tg_journal_entry, kind) == 4 &&
              offsetof(tg_journal_entry, store_payload) == 6 &&
              offsetof(tg_journal_entry, realtime_ns) == 8 &&
              offsetof(tg_journal_entry, account) == 24 &&
              offsetof(tg_journal_entry, route) == 40 &&
              offsetof(tg_journal_entry, config_version) == 56 &&
              offsetof(tg_journal_entry, inputs) == 64 &&
              offsetof(tg_journal_entry, payload) == 80 &&
              offsetof(tg_journal_entry, payload_digest) == 96);
static_assert(sizeof(tg_journal_stats) == 88);
static_assert(sizeof(tg_journal_recovery) == 48 && offsetof(tg_journal_recovery, segment) == 8);
static_assert(sizeof(tg_journal_read_options) == 16 &&
              offsetof(tg_journal_read_options, public_key) == 8);
static_assert(sizeof(tg_journal_problem) == 384 && offsetof(tg_journal_problem, segment) == 8 &&
              offsetof(tg_journal_problem, category) == 32 &&
              offsetof(tg_journal_problem, file) == 64 &&
              offsetof(tg_journal_problem, message) == 128);
static_assert(sizeof(tg_journal_record) == 192 && offsetof(tg_journal_record, sequence) == 16 &&
              offsetof(tg_journal_record, route) == 48 &&
              offsetof(tg_journal_record, segment) == 64 &&
              offsetof(tg_journal_record, account) == 80 &&
              offsetof(tg_journal_record, inputs) == 96 &&
              offsetof(tg_journal_record, payload) == 112 &&
              offsetof(tg_journal_record, prev) == 128 &&
              offsetof(tg_journal_record, payload_digest) == 160);
static_assert(sizeof(tg_journal_verify_report) == 928 &&
              offsetof(tg_journal_verify_report, segments) == 8 &&
              offsetof(tg_journal_verify_report, id) == 80 &&
              offsetof(tg_journal_verify_report, error) == 160 &&
              offsetof(tg_journal_verify_report, first_warning) == 544);
static_assert(sizeof(tg_journal_replay_report) == 1136 &&
              offsetof(tg_journal_replay_report, records) == 8 &&
              offsetof(tg_journal_replay_report, error) == 72 &&
              offsetof(tg_journal_replay_report, mismatch_sequence) == 456 &&
              offsetof(tg_journal_replay_report, mismatch_recorded) == 488 &&
              offsetof(tg_journal_replay_report, issue_sequence) == 872 &&
              offsetof(tg_journal_replay_report, issue) == 880);

static_assert(TG_JOURNAL_DURABILITY_NONE == static_cast<int>(tollgate::durability::none));
static_assert(TG_JOURNAL_DURABILITY_EVERY_RECORD ==
              static_cast<int>(tollgate::durability::every_record));
static_assert(TG_JOURNAL_ON_FULL_DROP ==
              static_cast<int>(tollgate::ring_full_policy::drop_and_count));
static_assert(TG_JOURNAL_WRITER_POLL == static_cast<int>(tollgate::writer_mode::poll));
static_assert(TG_JOURNAL_EVENT_RECORDS_DROPPED ==
              static_cast<int>(tollgate::journal_event_type::records_dropped));
static_assert(TG_JOURNAL_KIND_TAIL_TRUNCATED == static_cast<int>(jf::event_kind::tail_truncated));
static_assert(TG_JOURNAL_NO_PARENT == jr::no_parent);

namespace {

constexpr std::size_t journal_options_v1 = sizeof(tg_journal_options);
constexpr std::size_t journal_entry_v1 = sizeof(tg_journal_entry);
constexpr std::size_t read_options_v1 = sizeof(tg_journal_read_options);

// The journal whose event callback this thread is running, if any.
thread_local const tg_journal* notifying = nullptr;

bool live_journal(const tg_journal* j) noexcept {
  return live(j, tag_journal) && j->impl != nullptr;
}

// The journal's statuses: what the host can do about each.
int journal_code(const absl::Status& st) noexcept {
  switch (st.code()) {
    case absl::StatusCode::kOk:
      return TG_OK;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kPermissionDenied:
      return TG_EINVAL;
    case absl::StatusCode::kOutOfRange:
      return TG_ERANGE;
    case absl::StatusCode::kFailedPrecondition:
      return TG_ESTATE;
    case absl::StatusCode::kNotFound:
      return TG_ENOTFOUND;  // no journal there (create_if_missing = 0)
    case absl::StatusCode::kDeadlineExceeded:
      return TG_OK;
    default:
      return TG_EIO;  // ResourceExhausted (ENOSPC, EFBIG), DataLoss (EIO, damage), ...
  }
}

int from_journal_status(const absl::Status& st, tg_error* err) noexcept {
  const int code = journal_code(st);
  if (code == TG_OK) {
    set_error(err, TG_OK, "");
    return TG_OK;
  }
  return fail(err, code, std::string_view(st.message().data(), st.message().size()));
}

// From inside the event callback, the writer's own entry points.
int reentry(const tg_journal* j, tg_error* err) noexcept {
  if (notifying == j) {
    return fail(err, TG_ESTATE, "called from the journal's event callback");
  }
  return TG_OK;
}

void copy_string(char* out, std::size_t cap, std::string_view s) noexcept {
  const std::size_t n = std::min(s.size(), cap - 1);
  std::memcpy(out, s.data(), n);
  out[n] = '\0';
}

void to_c(const tollgate::journal_problem& p, tg_journal_problem* out) noexcept {
  std::memset(static_cast<void*>(out), 0, sizeof *out);
  out->found = 1;
  out->segment = p.segment;
  out->offset = p.offset;
  out->sequence = p.sequence;
  copy_string(out->category, sizeof out->category, p.category);
  copy_string(out->file, sizeof out->file, p.file);
  copy_string(out->message, sizeof out->message, p.message);
}

void to_c(const std::optional<tollgate::journal_problem>& p, tg_journal_problem* out) noexcept {
  if (p) {
    to_c(*p, out);
  } else {
    std::memset(static_cast<void*>(out), 0, sizeof *out);
  }
}

// A caller's entry (versioned) into the C++ form. Views only.
int read_entry(const tg_journal_entry* in, tollgate::journal_entry* e) noexcept {
  tg_journal_entry c;
  tg_journal_entry_init(&c);
  if (read_options(in, journal_entry_v1, &c, nullptr) != TG_OK) return TG_EVERSION;
  if (!bytes_ok(c.account, c.account_len) || !bytes_ok(c.inputs, c.inputs_len) ||
      !bytes_ok(c.payload, c.payload_len) || c.store_payload > 1) {
    return TG_EINVAL;
  }
  e->kind = c.kind;
  e->realtime_ns = c.realtime_ns;
  e->monotonic_ns = c.monotonic_ns;
  e->account = tollgate::capi::view(c.account, c.account_len);
  e->route = c.route;
  e->venue = c.venue;
  e->verdict = c.verdict;
  e->reason = c.reason;
  e->config_version = c.config_version;
  e->inputs = {c.inputs, c.inputs_len};
  e->payload = {c.payload, c.payload_len};
  e->payload_digest = c.payload_digest;
  e->store_payload = c.store_payload != 0;
  return TG_OK;
}

int read_context(const tg_journal_entry* ctx, jr::record_context* out) noexcept {
  if (ctx == nullptr) return TG_OK;
  tollgate::journal_entry e;
  if (int rc = read_entry(ctx, &e); rc != TG_OK) return rc;
  out->account = e.account;
  out->route = e.route;
  out->venue = e.venue;
  out->config_version = e.config_version;
  out->realtime_ns = e.realtime_ns;
  out->monotonic_ns = e.monotonic_ns;
  out->payload = e.payload;
  out->payload_digest = e.payload_digest;
  out->store_payload = e.store_payload;
  return TG_OK;
}

// An append's outcome as a status code, and the ticket.
int finish_append(const tollgate::journal& j, const tollgate::append_result& r,
                  std::uint64_t* ticket) noexcept {
  switch (r.status) {
    case tollgate::append_status::ok:
      if (ticket != nullptr) *ticket = r.ticket;
      return TG_OK;
    case tollgate::append_status::rejected:
      return TG_EFULL;
    case tollgate::append_status::dropped:
      return TG_EDROPPED;
    case tollgate::append_status::too_large:
      return TG_ERANGE;
    case tollgate::append_status::invalid:
      return TG_EINVAL;
    case tollgate::append_status::failed:
      break;
  }
  return j.status().ok() ? TG_ESTATE : TG_EIO;
}

tollgate::limit_decision from_c(const tg_limit_decision& d) noexcept {
  tollgate::limit_decision r;
  r.allowed = d.allowed != 0;
  r.shadow = (d.flags & TG_LIMIT_FLAG_SHADOW) != 0;
  r.reason = static_cast<tollgate::limit_reason>(d.reason);
  r.retry_after_ns = d.retry_after_ns;
  r.remaining = d.remaining;
  return r;
}

tollgate::reservation from_c(const tg_reservation& res) noexcept {
  tollgate::reservation r;
  r.key_hash = res.key_hash;
  r.own_ns = res.own_ns;
  r.cost = res.cost;
  r.tier = res.tier;
  r.flags = res.flags;
  return r;
}

tollgate::permit from_c(const tg_breaker_permit& p) noexcept {
  tollgate::permit r;
  r.token = p.token;
  r.allowed = p.allowed != 0;
  r.reason = static_cast<tollgate::breaker_reason>(p.reason);
  r.state = static_cast<tollgate::breaker_state>(p.state);
  r.retry_after_ns = p.retry_after_ns;
  return r;
}

bool valid_permit(const tg_breaker_permit* p) noexcept {
  return p != nullptr && (p->allowed == 0 || p->allowed == 1) && p->reason >= 0 &&
         p->reason <= TG_BREAKER_REASON_BULKHEAD_FULL && p->state >= 0 &&
         p->state <= TG_BREAKER_METRICS_ONLY;
}

// The shape shared by every record function: check the journal and the
// context, call `record` with the C++ context, map the result.
template <class F>
int record(tg_journal* j, const tg_journal_entry* ctx, F&& f) noexcept {
  return guarded(nullptr, [&]() -> int {
    if (!live_journal(j)) return TG_EINVAL;
    jr::record_context c;
    if (int rc = read_context(ctx, &c); rc != TG_OK) return rc;
    return f(c);
  });
}

int write_text(std::string_view s, char* out, std::size_t cap, std::size_t* written) noexcept {
  if (written != nullptr) *written = s.size();
  if (out == nullptr && cap != 0) return TG_EINVAL;
  if (cap < s.size() + 1) return TG_ETOOSMALL;
  std::memcpy(out, s.data(), s.size());
  out[s.size()] = '\0';
  return TG_OK;
}

int read_read_options(const tg_journal_read_options* in, tollgate::journal_read_options* out,
                      tg_error* err) noexcept {
  tg_journal_read_options o;
  tg_journal_read_options_init(&o);
  if (int rc = read_options(in, read_options_v1, &o, err); rc != TG_OK) return rc;
  if (o.strict > 1) return fail(err, TG_EINVAL, "strict must be 0 or 1");
  out->strict = o.strict != 0;
  if (o.public_key != nullptr) {
    jf::public_key k;
    std::memcpy(k.data(), o.public_key, k.size());
    out->public_key = k;
  }
  return TG_OK;
}

bool directory_ok(const char* directory, tg_error* err) noexcept {
  if (directory == nullptr || *directory == '\0') {
    fail(err, TG_EINVAL, "directory is NULL or empty");
    return false;
  }
  return true;
}

}  // namespace

extern "C" {

void tg_journal_options_init(tg_journal_options* opts) {
  if (opts == nullptr) return;
  std::memset(static_cast<void*>(opts), 0, sizeof *opts);
  const tollgate::journal_options d;
  opts->struct_size = sizeof *opts;
  opts->mode = static_cast<uint32_t>(d.mode);
  opts->durability = static_cast<uint32_t>(d.level);
  opts->on_full = static_cast<uint32_t>(d.on_full);
  opts->sync_every_records = d.sync_every_records;
  opts->sync_every_us = d.sync_every_us;
  opts->ring_cells = d.ring_cells;
  opts->max_entry_bytes = d.max_entry_bytes;
  opts->checkpoint_every_records = d.checkpoint_every_records;
  opts->checkpoint_every_ms = d.checkpoint_every_ms;
  opts->max_segment_bytes = d.max_segment_bytes;
  opts->max_segment_age_ms = d.max_segment_age_ms;
  opts->max_batch_records = d.max_batch_records;
  opts->idle_sleep_us = d.idle_sleep_us;
  opts->create_if_missing = d.create_if_missing ? 1 : 0;
}

int tg_journal_open(const tg_journal_options* opts, tg_journal** out, tg_error* err) {
  return guarded(err, [&]() -> int {
    if (out == nullptr) return fail(err, TG_EINVAL, "out is NULL");
    if (opts == nullptr)
      return fail(err, TG_EINVAL, "opts is NULL: a directory and key are required");
    tg_journal_options o;
    tg_journal_options_init(&o);
    if (int rc = read_options(opts, journal_options_v1, &o, err); rc != TG_OK) return rc;
    if (!directory_ok(o.directory, err)) return TG_EINVAL;
    if (o.mode > TG_JOURNAL_WRITER_POLL) {
      return fail(err, TG_EINVAL, "mode must be TG_JOURNAL_WRITER_THREAD or _POLL");
    }
    if (o.durability > TG_JOURNAL_DURABILITY_EVERY_RECORD) {
      return fail(err, TG_EINVAL, "durability must be a TG_JOURNAL_DURABILITY_* value");
    }
    if (o.on_full > TG_JOURNAL_ON_FULL_DROP) {
      return fail(err, TG_EINVAL, "on_full must be a TG_JOURNAL_ON_FULL_* value");
    }
    if (o.create_if_missing > 1 || o.reserved != 0) {
      return fail(err, TG_EINVAL, "create_if_missing must be 0 or 1 and reserved 0");
    }
    if (std::all_of(std::begin(o.signing_seed), std::end(o.signing_seed),
                    [](uint8_t b) { return b == 0; })) {
      return fail(err, TG_EINVAL,
                  "signing_seed is all zero: set the 32-byte Ed25519 seed that signs the journal");
    }
    tollgate::journal_options jo;
    jo.directory = o.directory;
    jo.create_if_missing = o.create_if_missing != 0;
    std::memcpy(jo.signing_seed.data(), o.signing_seed, jo.signing_seed.size());
    jo.mode = static_cast<tollgate::writer_mode>(o.mode);
    jo.level = static_cast<tollgate::durability>(o.durability);
    jo.on_full = static_cast<tollgate::ring_full_policy>(o.on_full);
    jo.sync_every_records = o.sync_every_records;
    jo.sync_every_us = o.sync_every_us;
    jo.ring_cells = static_cast<std::size_t>(o.ring_cells);
    jo.max_entry_bytes = static_cast<std::size_t>(o.max_entry_bytes);
    jo.checkpoint_every_records = o.checkpoint_every_records;
    jo.checkpoint_every_ms = o.checkpoint_every_ms;
    jo.max_segment_bytes = o.max_segment_bytes;
    jo.max_segment_age_ms = o.max_segment_age_ms;
    jo.max_batch_records = static_cast<std::size_t>(o.max_batch_records);
    jo.idle_sleep_us = o.idle_sleep_us;
    auto h = std::make_unique<tg_journal>();
    if (o.on_event != nullptr) {
      h->fn = o.on_event;
      h->user = o.on_event_user;
      tg_journal* self = h.get();
      jo.on_event = [self](const tollgate::journal_event& ev) {
        tg_journal_event c;
        std::memset(static_cast<void*>(&c), 0, sizeof c);
        c.type = static_cast<int32_t>(ev.type);
        c.status = journal_code(ev.status);
        c.error_number = ev.error_number;
        c.segment = ev.segment;
        c.offset = ev.offset;
        c.count = ev.count;
        c.sequence = ev.sequence;
        c.realtime_ns = ev.realtime_ns;
        std::memcpy(c.head, ev.head.data(), sizeof c.head);
        const std::string message(ev.status.message());
        c.message = message.c_str();
        const tg_journal* outer = notifying;
        notifying = self;
        self->fn(self->user, &c);
        notifying = outer;
      };
    }
    auto made = tollgate::journal::open(std::move(jo));
    if (!made.ok()) return from_journal_status(made.status(), err);
    h->impl = std::move(*made);
    *out = h.release();
    set_error(err, TG_OK, "");
    return TG_OK;
  });
}

void tg_journal_free(tg_journal* j) {
  if (j == nullptr || j->tag.load(std::memory_order_relaxed) != tag_journal) return;
  if (notifying == j) return;  // from its own callback: ignored (documented)
  tollgate::capi::release(j, tag_journal);
}

void tg_journal_entry_init(tg_journal_entry* e) {
  if (e == nullptr) return;
  std::memset(static_cast<void*>(e), 0, sizeof *e);
  e->struct_size = sizeof *e;
  e->kind = TG_JOURNAL_KIND_DECISION;
}

int tg_journal_append(tg_journal* j, const tg_journal_entry* e, uint64_t* ticket) {
  return guarded(nullptr, [&]() -> int {
    if (!live_journal(j) || e == nullptr) return TG_EINVAL;
    tollgate::journal_entry ce;
    if (int rc = read_entry(e, &ce); rc != TG_OK) return rc;
    return finish_append(*j->impl, j->impl->append(ce), ticket);
  });
}

int tg_journal_is_written(const tg_journal* j, uint64_t ticket, int* out) {
  if (!live_journal(j) || out == nullptr) return TG_EINVAL;
  *out = ticket != 0 && j->impl->is_written(ticket) ? 1 : 0;
  return TG_OK;
}

int tg_journal_is_durable(const tg_journal* j, uint64_t ticket, int* out) {
  if (!live_journal(j) || out == nullptr) return TG_EINVAL;
  *out = ticket != 0 && j->impl->is_durable(ticket) ? 1 : 0;
  return TG_OK;
}

int tg_journal_wait_durable(tg_journal* j, uint64_t ticket, uint64_t timeout_us, int* durable,
                            tg_error* err) {
  return guarded(err, [&]() -> int {
    if (!live_journal(j) || durable == nullptr) {
      return fail(err, TG_EINVAL, "NULL or dead journal, or durable is NULL");
    }
    if (ticket == 0) return fail(err, TG_EINVAL, "ticket 0 is never issued");
    if (int rc = reentry(j, err); rc != TG_OK) return rc;
    *durable = 0;
    const absl::Status st = j->impl->wait_durable(ticket, timeout_us);
    if (st.ok()) {
      *durable = 1;
      set_error(err, TG_OK, "");
      return TG_OK;
    }
    if (st.code() == absl::StatusCode::kDeadlineExceeded) {
      set_error(err, TG_OK, "not durable yet");
      return TG_OK;
    }
    return from_journal_status(st, err);
  });
}

int tg_journal_poll(tg_journal* j, size_t* written, tg_error* err) {
  return guarded(err, [&]() -> int {
    if (!live_journal(j)) return fail(err, TG_EINVAL, "NULL or dead journal");
    if (int rc = reentry(j, err); rc != TG_OK) return rc;
    auto n = j->impl->poll();
    if (!n.ok()) return from_journal_status(n.status(), err);
    if (written != nullptr) *written = *n;
    set_error(err, TG_OK, "");
    return TG_OK;
  });
}

int tg_journal_sync(tg_journal* j, tg_error* err) {
  return guarded(err, [&]() -> int {
    if (!live_journal(j)) return fail(err, TG_EINVAL, "NULL or dead journal");
    if (int rc = reentry(j, err); rc != TG_OK) return rc;
    return from_journal_status(j->impl->sync(), err);
  });
}

int tg_journal_close(tg_journal* j, tg_error* err) {
  return guarded(err, [&]() -> int {
    if (!live_journal(j)) return fail(err, TG_EINVAL, "NULL or dead journal");
    if (int rc = reentry(j, err); rc != TG_OK) return rc;
    return from_journal_status(j->impl->close(), err);
  });
}

int tg_journal_status(const tg_journal* j, tg_error* err) {
  return guarded(err, [&]() -> int {
    if (!live_journal(j)) return fail(err, TG_EINVAL, "NULL or dead journal");
    return from_journal_status(j->impl->status(), err);
  });
}

int tg_journal_stats_get(const tg_journal* j, tg_journal_stats* out) {
  if (!live_journal(j) || out == nullptr) return TG_EINVAL;
  const tollgate::journal_stats s = j->impl->stats();
  out->written = s.written;
  out->rejected = s.rejected;
  out->dropped = s.dropped;
  out->checkpoints = s.checkpoints;
  out->syncs = s.syncs;
  out->batches = s.batches;
  out->bytes = s.bytes;
  out->next_sequence = s.next_sequence;
  out->segment = s.segment;
  out->written_ticket = s.written_ticket;
  out->durable_ticket = s.durable_ticket;
  return TG_OK;
}

int tg_journal_recovery_get(const tg_journal* j, tg_journal_recovery* out) {
  if (!live_journal(j) || out == nullptr) return TG_EINVAL;
  const tollgate::journal_recovery& r = j->impl->recovery();
  out->created = r.created ? 1 : 0;
  out->tail_truncated = r.tail_truncated ? 1 : 0;
  out->segment = r.segment;
  out->offset = r.offset;
  out->bytes_removed = r.bytes_removed;
  out->records = r.records;
  out->next_sequence = r.next_sequence;
  return TG_OK;
}

int tg_journal_id(const tg_journal* j, uint8_t out[16]) {
  if (!live_journal(j) || out == nullptr) return TG_EINVAL;
  std::memcpy(out, j->impl->id().data(), 16);
  return TG_OK;
}

int tg_journal_public_key(const tg_journal* j, uint8_t out[32]) {
  if (!live_journal(j) || out == nullptr) return TG_EINVAL;
  std::memcpy(out, j->impl->key().data(), 32);
  return TG_OK;
}

int tg_ed25519_public_key(const uint8_t seed[32], uint8_t out[32]) {
  return guarded(nullptr, [&]() -> int {
    if (seed == nullptr || out == nullptr) return TG_EINVAL;
    if (!tollgate::crypto::available().ok()) return TG_ESTATE;
    uint8_t priv[tollgate::crypto::ed25519_private_key_size];
    if (!tollgate::crypto::ed25519_keypair_from_seed(seed, out, priv)) return TG_ESTATE;
    std::memset(priv, 0, sizeof priv);
    return TG_OK;
  });
}

/* ----------------------------------------------------------- recording */

int tg_journal_record_limiter_define(tg_journal* j, uint32_t instance, const tg_limiter* lim,
                                     uint32_t parent_instance, const tg_journal_entry* ctx,
                                     uint64_t* ticket) {
  return record(j, ctx, [&](const jr::record_context& c) -> int {
    if (!live(lim, tollgate::capi::tag_limiter) || lim->impl == nullptr) return TG_EINVAL;
    return finish_append(
        *j->impl, jr::record_limiter_define(*j->impl, instance, *lim->impl, parent_instance, c),
        ticket);
  });
}

int tg_journal_record_limiter_acquire(tg_journal* j, uint32_t instance, const void* key,
                                      size_t key_len, uint32_t tier, uint32_t cost, uint64_t now_ns,
                                      const tg_limit_decision* d, const tg_journal_entry* ctx,
                                      uint64_t* ticket) {
  return record(j, ctx, [&](const jr::record_context& c) -> int {
    if (!bytes_ok(key, key_len) || d == nullptr) return TG_EINVAL;
    return finish_append(
        *j->impl,
        jr::record_limiter_acquire(*j->impl, instance, tollgate::capi::view(key, key_len), tier,
                                   cost, now_ns, from_c(*d), c),
        ticket);
  });
}

int tg_journal_record_limiter_reserve(tg_journal* j, uint32_t instance, const void* key,
                                      size_t key_len, uint32_t tier, uint32_t cost, uint64_t now_ns,
                                      const tg_limit_decision* d, const tg_reservation* res,
                                      const tg_journal_entry* ctx, uint64_t* ticket) {
  return record(j, ctx, [&](const jr::record_context& c) -> int {
    if (!bytes_ok(key, key_len) || d == nullptr || res == nullptr) return TG_EINVAL;
    return finish_append(
        *j->impl,
        jr::record_limiter_reserve(*j->impl, instance, tollgate::capi::view(key, key_len), tier,
                                   cost, now_ns, from_c(*d), from_c(*res), c),
        ticket);
  });
}

int tg_journal_record_limiter_cancel(tg_journal* j, uint32_t instance, const void* key,
                                     size_t key_len, const tg_reservation* res, uint64_t now_ns,
                                     const tg_journal_entry* ctx, uint64_t* ticket) {
  return record(j, ctx, [&](const jr::record_context& c) -> int {
    if (!bytes_ok(key, key_len) || res == nullptr) return TG_EINVAL;
    return finish_append(
        *j->impl,
        jr::record_limiter_cancel(*j->impl, instance, tollgate::capi::view(key, key_len),
                                  from_c(*res), now_ns, c),
        ticket);
  });
}

int tg_journal_record_limiter_multiplier(tg_journal* j, uint32_t instance, double multiplier,
                                         uint64_t now_ns, const tg_journal_entry* ctx,
                                         uint64_t* ticket) {
  return record(j, ctx, [&](const jr::record_context& c) -> int {
    return finish_append(
        *j->impl, jr::record_limiter_multiplier(*j->impl, instance, multiplier, now_ns, c), ticket);
  });
}

int tg_journal_record_limiter_shadow(tg_journal* j, uint32_t instance, int on,
                                     const tg_journal_entry* ctx, uint64_t* ticket) {
  return record(j, ctx, [&](const jr::record_context& c) -> int {
    if (on != 0 && on != 1) return TG_EINVAL;
    return finish_append(*j->impl, jr::record_limiter_shadow(*j->impl, instance, on == 1, c),
                         ticket);
  });
}

int tg_journal_record_breaker_define(tg_journal* j, uint32_t instance, const tg_breaker* b,
                                     const tg_journal_entry* ctx, uint64_t* ticket) {
  return record(j, ctx, [&](const jr::record_context& c) -> int {
    if (!live(b, tollgate::capi::tag_breaker) || b->impl == nullptr) return TG_EINVAL;
    return finish_append(*j->impl, jr::record_breaker_define(*j->impl, instance, *b->impl, c),
                         ticket);
  });
}

int tg_journal_record_breaker_acquire(tg_journal* j, uint32_t instance, uint64_t now_ns,
                                      const tg_breaker_permit* permit, const tg_journal_entry* ctx,
                                      uint64_t* ticket) {
  return record(j, ctx, [&](const jr::record_context& c) -> int {
    if (!valid_permit(permit)) return TG_EINVAL;
    return finish_append(*j->impl,
                         jr::record_breaker_acquire(*j->impl, instance, now_ns, from_c(*permit), c),
                         ticket);
  });
}

int tg_journal_record_breaker_outcome(tg_journal* j, uint32_t instance,
                                      const tg_breaker_permit* permit, int outcome,
                                      uint64_t latency_ns, uint64_t now_ns,
                                      const tg_journal_entry* ctx, uint64_t* ticket) {
  return record(j, ctx, [&](const jr::record_context& c) -> int {
    if (!valid_permit(permit) || outcome < TG_OUTCOME_SUCCESS || outcome > TG_OUTCOME_IGNORED) {
      return TG_EINVAL;
    }
    return finish_append(
        *j->impl,
        jr::record_breaker_outcome(*j->impl, instance, from_c(*permit),
                                   static_cast<tollgate::outcome>(outcome), latency_ns, now_ns, c),
        ticket);
  });
}

int tg_journal_record_breaker_force(tg_journal* j, uint32_t instance, int state, uint64_t now_ns,
                                    const tg_journal_entry* ctx, uint64_t* ticket) {
  return record(j, ctx, [&](const jr::record_context& c) -> int {
    if (state < TG_BREAKER_CLOSED || state > TG_BREAKER_METRICS_ONLY) return TG_EINVAL;
    return finish_append(
        *j->impl,
        jr::record_breaker_force(*j->impl, instance, static_cast<tollgate::breaker_state>(state),
                                 now_ns, c),
        ticket);
  });
}

int tg_journal_record_breaker_transition(tg_journal* j, uint32_t instance,
                                         const tg_breaker_event* ev, const tg_journal_entry* ctx,
                                         uint64_t* ticket) {
  return record(j, ctx, [&](const jr::record_context& c) -> int {
    if (ev == nullptr || ev->from_state < TG_BREAKER_CLOSED ||
        ev->from_state > TG_BREAKER_METRICS_ONLY || ev->to_state < TG_BREAKER_CLOSED ||
        ev->to_state > TG_BREAKER_METRICS_ONLY) {
      return TG_EINVAL;
    }
    tollgate::breaker_event e{static_cast<tollgate::breaker_state>(ev->from_state),
                              static_cast<tollgate::breaker_state>(ev->to_state),
                              ev->now_ns,
                              ev->failure_rate,
                              ev->slow_rate,
                              ev->open_ns};
    return finish_append(*j->impl, jr::record_breaker_transition(*j->impl, instance, e, c), ticket);
  });
}

/* ------------------------------------------------------------- reading */

void tg_journal_read_options_init(tg_journal_read_options* opts) {
  if (opts == nullptr) return;
  std::memset(static_cast<void*>(opts), 0, sizeof *opts);
  opts->struct_size = sizeof *opts;
}

int tg_journal_reader_open(const char* directory, const tg_journal_read_options* opts,
                           tg_journal_reader** out, tg_error* err) {
  return guarded(err, [&]() -> int {
    if (out == nullptr) return fail(err, TG_EINVAL, "out is NULL");
    if (!directory_ok(directory, err)) return TG_EINVAL;
    tollgate::journal_read_options ro;
    if (int rc = read_read_options(opts, &ro, err); rc != TG_OK) return rc;
    auto rd = tollgate::journal_reader::open(directory, std::move(ro));
    if (!rd.ok()) return from_journal_status(rd.status(), err);
    auto h = std::make_unique<tg_journal_reader>();
    h->impl = std::move(*rd);
    *out = h.release();
    set_error(err, TG_OK, "");
    return TG_OK;
  });
}

void tg_journal_reader_free(tg_journal_reader* r) {
  tollgate::capi::release(r, tag_journal_reader);
}

int tg_journal_reader_next(tg_journal_reader* r, tg_journal_record* out, int* has) {
  return guarded(nullptr, [&]() -> int {
    if (!live(r, tag_journal_reader) || out == nullptr || has == nullptr) return TG_EINVAL;
    jf::record_view v;
    tollgate::journal_record_location where;
    *has = 0;
    if (!r->impl->next(&v, &where)) return TG_OK;
    std::memset(static_cast<void*>(out), 0, sizeof *out);
    out->type = static_cast<uint32_t>(v.type);
    out->kind = v.kind;
    out->flags = v.flags;
    out->checkpoint_flags = v.checkpoint_flags;
    out->sequence = v.seq;
    out->realtime_ns = v.realtime_ns;
    out->monotonic_ns = v.monotonic_ns;
    out->config_version = v.config_version;
    out->route = v.route;
    out->venue = v.venue;
    out->verdict = v.verdict;
    out->reason = v.reason;
    out->segment = where.segment;
    out->offset = where.offset;
    out->account = v.account.empty() ? "" : v.account.data();
    out->account_len = v.account.size();
    out->inputs = v.inputs.data();
    out->inputs_len = v.inputs.size();
    out->payload = v.payload.data();
    out->payload_len = v.payload.size();
    std::memcpy(out->prev, v.prev.data(), sizeof out->prev);
    std::memcpy(out->payload_digest, v.payload_digest.data(), sizeof out->payload_digest);
    *has = 1;
    return TG_OK;
  });
}

int tg_journal_reader_problem(const tg_journal_reader* r, tg_journal_problem* out) {
  if (!live(r, tag_journal_reader) || out == nullptr) return TG_EINVAL;
  to_c(r->impl->problem(), out);
  return TG_OK;
}

int tg_journal_reader_warning_count(const tg_journal_reader* r, size_t* out) {
  if (!live(r, tag_journal_reader) || out == nullptr) return TG_EINVAL;
  *out = r->impl->warnings().size();
  return TG_OK;
}

int tg_journal_reader_warning(const tg_journal_reader* r, size_t index, tg_journal_problem* out) {
  if (!live(r, tag_journal_reader) || out == nullptr) return TG_EINVAL;
  if (index >= r->impl->warnings().size()) return TG_ENOTFOUND;
  to_c(r->impl->warnings()[index], out);
  return TG_OK;
}

int tg_journal_describe_inputs(const uint8_t* inputs, size_t inputs_len, char* out, size_t cap,
                               size_t* written) {
  return guarded(nullptr, [&]() -> int {
    if (!bytes_ok(inputs, inputs_len) || !bytes_ok(out, cap) || written == nullptr) {
      return TG_EINVAL;
    }
    const auto json = jr::describe_inputs({inputs, inputs_len});
    if (!json) {
      *written = 0;
      return TG_ENOTFOUND;
    }
    return write_text(*json, out, cap, written);
  });
}

int tg_journal_kind_name(uint32_t kind, char* out, size_t cap, size_t* written) {
  return guarded(nullptr, [&]() -> int {
    if (written == nullptr || kind > 0xFFFF) return TG_EINVAL;
    return write_text(jf::kind_name(static_cast<std::uint16_t>(kind)), out, cap, written);
  });
}

int tg_journal_verify(const char* directory, const tg_journal_read_options* opts,
                      tg_journal_verify_report* out, tg_error* err) {
  return guarded(err, [&]() -> int {
    if (out == nullptr) return fail(err, TG_EINVAL, "out is NULL");
    if (!directory_ok(directory, err)) return TG_EINVAL;
    tollgate::journal_verify_options vo;
    if (int rc = read_read_options(opts, &vo.read, err); rc != TG_OK) return rc;
    auto rep = tollgate::verify_journal(directory, vo);
    if (!rep.ok()) return from_journal_status(rep.status(), err);
    std::memset(static_cast<void*>(out), 0, sizeof *out);
    out->ok = rep->ok() ? 1 : 0;
    out->closed = rep->closed ? 1 : 0;
    out->segments = rep->segments;
    out->records = rep->records;
    out->events = rep->events;
    out->checkpoints = rep->checkpoints;
    out->bytes = rep->bytes;
    out->last_sequence = rep->last_sequence;
    out->first_realtime_ns = rep->first_realtime_ns;
    out->last_realtime_ns = rep->last_realtime_ns;
    out->warning_count = rep->warnings.size();
    std::memcpy(out->id, rep->id.data(), sizeof out->id);
    std::memcpy(out->key, rep->key.data(), sizeof out->key);
    std::memcpy(out->head, rep->head.data(), sizeof out->head);
    to_c(rep->error, &out->error);
    if (!rep->warnings.empty()) to_c(rep->warnings.front(), &out->first_warning);
    set_error(err, TG_OK, "");
    return TG_OK;
  });
}

int tg_journal_replay(const char* directory, const tg_journal_read_options* opts,
                      tg_journal_replay_report* out, tg_error* err) {
  return guarded(err, [&]() -> int {
    if (out == nullptr) return fail(err, TG_EINVAL, "out is NULL");
    if (!directory_ok(directory, err)) return TG_EINVAL;
    jr::replay_options ro;
    ro.max_reported = 1;
    if (int rc = read_read_options(opts, &ro.read, err); rc != TG_OK) return rc;
    auto rep = jr::replay_journal(directory, ro);
    if (!rep.ok()) return from_journal_status(rep.status(), err);
    std::memset(static_cast<void*>(out), 0, sizeof *out);
    out->ok = rep->ok() ? 1 : 0;
    out->records = rep->records;
    out->replayed = rep->replayed;
    out->decisions = rep->decisions;
    out->transitions = rep->transitions;
    out->instances = rep->instances;
    out->other = rep->other;
    out->mismatches = rep->mismatch_count;
    out->issues = rep->issue_count;
    to_c(rep->error, &out->error);
    if (!rep->mismatches.empty()) {
      const jr::replay_mismatch& m = rep->mismatches.front();
      out->mismatch_sequence = m.sequence;
      out->mismatch_segment = m.segment;
      out->mismatch_offset = m.offset;
      out->mismatch_component = static_cast<uint32_t>(m.comp);
      out->mismatch_instance = m.instance;
      copy_string(out->mismatch_recorded, sizeof out->mismatch_recorded, m.recorded);
      copy_string(out->mismatch_replayed, sizeof out->mismatch_replayed, m.replayed);
    }
    if (!rep->issues.empty()) {
      out->issue_sequence = rep->issues.front().sequence;
      copy_string(out->issue, sizeof out->issue, rep->issues.front().message);
    }
    set_error(err, TG_OK, "");
    return TG_OK;
  });
}

}  // extern "C"
