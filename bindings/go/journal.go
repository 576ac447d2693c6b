package tollgate

/*
#include <stdint.h>
#include <stdlib.h>
#include <tollgate/tollgate.h>

// Defined in events.c: tg_journal_open with the trampoline that forwards
// events to the Go sink behind handle h (h == 0: no callback), and whether
// the calling thread is inside that sink's callback.
int tg_go_journal_open(tg_journal_options* o, uintptr_t h, tg_journal** out, tg_error* err);
int tg_go_journal_in_callback(uintptr_t h);

// tg_journal_entry holds pointers, and cgo forbids passing Go memory that
// holds Go pointers to C. The entry's scalars therefore travel in this
// pointer-free struct (built on the Go stack), its bytes as direct
// arguments (pointers to the Go bytes, not copied), and the wrappers build
// the tg_journal_entry on the C stack. Appending and recording never call
// back into Go, so all of it may stay on the Go stack (#cgo noescape).
typedef struct tg_go_journal_entry {
  uint64_t realtime_ns;
  uint64_t monotonic_ns;
  uint64_t config_version;
  uint64_t account_len;
  uint64_t inputs_len;
  uint64_t payload_len;
  uint32_t route;
  uint32_t venue;
  uint32_t verdict;
  uint32_t reason;
  uint32_t kind;
  uint32_t store_payload;
} tg_go_journal_entry;

static inline const tg_journal_entry* tg_go_entry(tg_journal_entry* e, const tg_go_journal_entry* g,
                                                  const uint8_t* account, const uint8_t* inputs,
                                                  const uint8_t* payload, const uint8_t* digest) {
  if (g == NULL) return NULL;
  e->struct_size = (uint32_t)sizeof *e;
  e->kind = (uint16_t)g->kind;
  e->store_payload = (uint16_t)g->store_payload;
  e->realtime_ns = g->realtime_ns;
  e->monotonic_ns = g->monotonic_ns;
  e->account = (const char*)account;
  e->account_len = (size_t)g->account_len;
  e->route = g->route;
  e->venue = g->venue;
  e->verdict = g->verdict;
  e->reason = g->reason;
  e->config_version = g->config_version;
  e->inputs = inputs;
  e->inputs_len = (size_t)g->inputs_len;
  e->payload = payload;
  e->payload_len = (size_t)g->payload_len;
  e->payload_digest = digest;
  return e;
}

static inline int tg_go_journal_append(tg_journal* j, const tg_go_journal_entry* g,
                                       const uint8_t* account, const uint8_t* inputs,
                                       const uint8_t* payload, const uint8_t* digest,
                                       uint64_t* ticket) {
  tg_journal_entry e;
  return tg_journal_append(j, tg_go_entry(&e, g, account, inputs, payload, digest), ticket);
}

// The record functions' context: g == NULL for none.
#define TG_GO_CTX tg_go_entry(&ctx, g, account, NULL, payload, NULL)
#define TG_GO_CTX_PARAMS const tg_go_journal_entry* g, const uint8_t* account, const uint8_t* payload

static inline int tg_go_record_limiter_define(tg_journal* j, uint32_t instance, const tg_limiter* lim,
                                              uint32_t parent, TG_GO_CTX_PARAMS, uint64_t* ticket) {
  tg_journal_entry ctx;
  return tg_journal_record_limiter_define(j, instance, lim, parent, TG_GO_CTX, ticket);
}

static inline int tg_go_record_limiter_acquire(tg_journal* j, uint32_t instance, const uint8_t* key,
                                               size_t key_len, uint32_t tier, uint32_t cost,
                                               uint64_t now_ns, const tg_limit_decision* d,
                                               TG_GO_CTX_PARAMS, uint64_t* ticket) {
  tg_journal_entry ctx;
  return tg_journal_record_limiter_acquire(j, instance, key, key_len, tier, cost, now_ns, d,
                                           TG_GO_CTX, ticket);
}

static inline int tg_go_record_limiter_reserve(tg_journal* j, uint32_t instance, const uint8_t* key,
                                               size_t key_len, uint32_t tier, uint32_t cost,
                                               uint64_t now_ns, const tg_limit_decision* d,
                                               const tg_reservation* res, TG_GO_CTX_PARAMS,
                                               uint64_t* ticket) {
  tg_journal_entry ctx;
  return tg_journal_record_limiter_reserve(j, instance, key, key_len, tier, cost, now_ns, d, res,
                                           TG_GO_CTX, ticket);
}

static inline int tg_go_record_limiter_cancel(tg_journal* j, uint32_t instance, const uint8_t* key,
                                              size_t key_len, const tg_reservation* res,
                                              uint64_t now_ns, TG_GO_CTX_PARAMS, uint64_t* ticket) {
  tg_journal_entry ctx;
  return tg_journal_record_limiter_cancel(j, instance, key, key_len, res, now_ns, TG_GO_CTX, ticket);
}

static inline int tg_go_record_limiter_multiplier(tg_journal* j, uint32_t instance, double m,
                                                  uint64_t now_ns, TG_GO_CTX_PARAMS,
                                                  uint64_t* ticket) {
  tg_journal_entry ctx;
  return tg_journal_record_limiter_multiplier(j, instance, m, now_ns, TG_GO_CTX, ticket);
}

static inline int tg_go_record_limiter_shadow(tg_journal* j, uint32_t instance, int on,
                                              TG_GO_CTX_PARAMS, uint64_t* ticket) {
  tg_journal_entry ctx;
  return tg_journal_record_limiter_shadow(j, instance, on, TG_GO_CTX, ticket);
}

static inline int tg_go_record_breaker_define(tg_journal* j, uint32_t instance, const tg_breaker* b,
                                              TG_GO_CTX_PARAMS, uint64_t* ticket) {
  tg_journal_entry ctx;
  return tg_journal_record_breaker_define(j, instance, b, TG_GO_CTX, ticket);
}

static inline int tg_go_record_breaker_acquire(tg_journal* j, uint32_t instance, uint64_t now_ns,
                                               const tg_breaker_permit* p, TG_GO_CTX_PARAMS,
                                               uint64_t* ticket) {
  tg_journal_entry ctx;
  return tg_journal_record_breaker_acquire(j, instance, now_ns, p, TG_GO_CTX, ticket);
}

static inline int tg_go_record_breaker_outcome(tg_journal* j, uint32_t instance,
                                               const tg_breaker_permit* p, int outcome,
                                               uint64_t latency_ns, uint64_t now_ns,
                                               TG_GO_CTX_PARAMS, uint64_t* ticket) {
  tg_journal_entry ctx;
  return tg_journal_record_breaker_outcome(j, instance, p, outcome, latency_ns, now_ns, TG_GO_CTX,
                                           ticket);
}

static inline int tg_go_record_breaker_force(tg_journal* j, uint32_t instance, int state,
                                             uint64_t now_ns, TG_GO_CTX_PARAMS, uint64_t* ticket) {
  tg_journal_entry ctx;
  return tg_journal_record_breaker_force(j, instance, state, now_ns, TG_GO_CTX, ticket);
}

static inline int tg_go_record_breaker_transition(tg_journal* j, uint32_t instance,
                                                  const tg_breaker_event* ev, TG_GO_CTX_PARAMS,
                                                  uint64_t* ticket) {
  tg_journal_entry ctx;
  return tg_journal_record_breaker_transition(j, instance, ev, TG_GO_CTX, ticket);
}

// Poll, sync, close and wait_durable do the writer's work, which calls the
// event callback (Go code), so they get no pointer to a Go stack variable:
// results come back by value, which keeps Poll allocation-free.
typedef struct tg_go_journal_result {
  int rc;
  int durable;
  uint64_t n;
  tg_error err;
} tg_go_journal_result;

static inline void tg_go_result_init(tg_go_journal_result* r) {
  r->rc = TG_OK;
  r->durable = 0;
  r->n = 0;
  r->err.code = TG_OK;
  r->err.message[0] = '\0';
}

static inline tg_go_journal_result tg_go_journal_poll(tg_journal* j) {
  tg_go_journal_result r;
  size_t n = 0;
  tg_go_result_init(&r);
  r.rc = tg_journal_poll(j, &n, &r.err);
  r.n = n;
  return r;
}

static inline tg_go_journal_result tg_go_journal_sync(tg_journal* j) {
  tg_go_journal_result r;
  tg_go_result_init(&r);
  r.rc = tg_journal_sync(j, &r.err);
  return r;
}

static inline tg_go_journal_result tg_go_journal_close(tg_journal* j) {
  tg_go_journal_result r;
  tg_go_result_init(&r);
  r.rc = tg_journal_close(j, &r.err);
  return r;
}

static inline tg_go_journal_result tg_go_journal_wait_durable(tg_journal* j, uint64_t ticket,
                                                              uint64_t timeout_us) {
  tg_go_journal_result r;
  tg_go_result_init(&r);
  r.rc = tg_journal_wait_durable(j, ticket, timeout_us, &r.durable, &r.err);
  return r;
}

// Reading: the options hold the pinned key's pointer, so they are built here.
static inline void tg_go_read_options(tg_journal_read_options* o, uint32_t strict,
                                      const uint8_t* key) {
  tg_journal_read_options_init(o);
  o->strict = strict;
  o->public_key = key;
}

static inline int tg_go_journal_reader_open(const char* dir, uint32_t strict, const uint8_t* key,
                                            tg_journal_reader** out, tg_error* err) {
  tg_journal_read_options o;
  tg_go_read_options(&o, strict, key);
  return tg_journal_reader_open(dir, &o, out, err);
}

static inline int tg_go_journal_verify(const char* dir, uint32_t strict, const uint8_t* key,
                                       tg_journal_verify_report* out, tg_error* err) {
  tg_journal_read_options o;
  tg_go_read_options(&o, strict, key);
  return tg_journal_verify(dir, &o, out, err);
}

static inline int tg_go_journal_replay(const char* dir, uint32_t strict, const uint8_t* key,
                                       tg_journal_replay_report* out, tg_error* err) {
  tg_journal_read_options o;
  tg_go_read_options(&o, strict, key);
  return tg_journal_replay(dir, &o, out, err);
}

static inline int tg_go_journal_describe_inputs(const uint8_t* inputs, size_t len, uint8_t* out,
                                                size_t cap, size_t* written) {
  return tg_journal_describe_inputs(inputs, len, (char*)out, cap, written);
}

static inline int tg_go_journal_kind_name(uint32_t kind, uint8_t* out, size_t cap, size_t* written) {
  return tg_journal_kind_name(kind, (char*)out, cap, written);
}

#cgo noescape tg_go_journal_append
#cgo noescape tg_go_record_limiter_define
#cgo noescape tg_go_record_limiter_acquire
#cgo noescape tg_go_record_limiter_reserve
#cgo noescape tg_go_record_limiter_cancel
#cgo noescape tg_go_record_limiter_multiplier
#cgo noescape tg_go_record_limiter_shadow
#cgo noescape tg_go_record_breaker_define
#cgo noescape tg_go_record_breaker_acquire
#cgo noescape tg_go_record_breaker_outcome
#cgo noescape tg_go_record_breaker_force
#cgo noescape tg_go_record_breaker_transition
#cgo noescape tg_journal_is_written
#cgo noescape tg_journal_is_durable
#cgo noescape tg_journal_status
#cgo noescape tg_journal_stats_get
#cgo noescape tg_journal_recovery_get
#cgo noescape tg_journal_id
#cgo noescape tg_journal_public_key
#cgo noescape tg_ed25519_public_key
#cgo noescape tg_journal_reader_next
#cgo noescape tg_journal_reader_problem
#cgo noescape tg_journal_reader_warning_count
#cgo noescape tg_journal_reader_warning
#cgo noescape tg_go_journal_describe_inputs
#cgo noescape tg_go_journal_reader_open
#cgo noescape tg_go_journal_verify
#cgo noescape tg_go_journal_replay
#cgo noescape tg_go_journal_kind_name
#cgo nocallback tg_go_journal_append
#cgo nocallback tg_go_record_limiter_define
#cgo nocallback tg_go_record_limiter_acquire
#cgo nocallback tg_go_record_limiter_reserve
#cgo nocallback tg_go_record_limiter_cancel
#cgo nocallback tg_go_record_limiter_multiplier
#cgo nocallback tg_go_record_limiter_shadow
#cgo nocallback tg_go_record_breaker_define
#cgo nocallback tg_go_record_breaker_acquire
#cgo nocallback tg_go_record_breaker_outcome
#cgo nocallback tg_go_record_breaker_force
#cgo nocallback tg_go_record_breaker_transition
#cgo nocallback tg_journal_is_written
#cgo nocallback tg_journal_is_durable
#cgo nocallback tg_journal_status
#cgo nocallback tg_journal_stats_get
#cgo nocallback tg_journal_recovery_get
#cgo nocallback tg_journal_id
#cgo nocallback tg_journal_public_key
#cgo nocallback tg_ed25519_public_key
#cgo nocallback tg_journal_reader_next
#cgo nocallback tg_journal_reader_problem
#cgo nocallback tg_journal_reader_warning_count
#cgo nocallback tg_journal_reader_warning
#cgo nocallback tg_go_journal_describe_inputs
#cgo nocallback tg_go_journal_reader_open
#cgo nocallback tg_go_journal_verify
#cgo nocallback tg_go_journal_replay
#cgo nocallback tg_go_journal_kind_name
*/
import "C"

import (
	"fmt"
	"iter"
	"math"
	"runtime"
	"runtime/cgo"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// WriterMode says who does a [Journal]'s writing.
type WriterMode uint32

const (
	// JournalWriterThread (the default): the journal owns a writer thread.
	JournalWriterThread WriterMode = 0
	// JournalWriterPoll: the host calls [Journal.Poll] from its own loop.
	JournalWriterPoll WriterMode = 1
)

// String returns "thread" or "poll".
func (m WriterMode) String() string {
	switch m {
	case JournalWriterThread:
		return "thread"
	case JournalWriterPoll:
		return "poll"
	}
	return "WriterMode(" + strconv.Itoa(int(m)) + ")"
}

var (
	_ = [1]struct{}{}[int(JournalWriterThread)-C.TG_JOURNAL_WRITER_THREAD]
	_ = [1]struct{}{}[int(JournalWriterPoll)-C.TG_JOURNAL_WRITER_POLL]
)

// Durability says when a [Journal] fdatasyncs what it wrote. The zero value
// is the library's default, DurabilityEveryRecord (the Go values are not
// the C ABI's: there, 0 is "none").
type Durability uint32

const (
	// DurabilityEveryRecord: after every batch (group commit). A ticket the
	// journal says is durable survives a power loss.
	DurabilityEveryRecord Durability = iota
	// DurabilityNone: only when a segment is sealed (rotation, close).
	DurabilityNone
	// DurabilityEveryNRecords: every SyncEveryRecords records.
	DurabilityEveryNRecords
	// DurabilityEveryT: SyncEvery after the first unsynced write.
	DurabilityEveryT
)

func (d Durability) toC() (C.uint32_t, bool) {
	switch d {
	case DurabilityEveryRecord:
		return C.TG_JOURNAL_DURABILITY_EVERY_RECORD, true
	case DurabilityNone:
		return C.TG_JOURNAL_DURABILITY_NONE, true
	case DurabilityEveryNRecords:
		return C.TG_JOURNAL_DURABILITY_EVERY_N_RECORDS, true
	case DurabilityEveryT:
		return C.TG_JOURNAL_DURABILITY_EVERY_T_US, true
	}
	return 0, false
}

// String returns a short lower-case name of the level.
func (d Durability) String() string {
	switch d {
	case DurabilityEveryRecord:
		return "every-record"
	case DurabilityNone:
		return "none"
	case DurabilityEveryNRecords:
		return "every-n-records"
	case DurabilityEveryT:
		return "every-t"
	}
	return "Durability(" + strconv.Itoa(int(d)) + ")"
}

// RingFullPolicy says what [Journal.Append] does when the journal's ring
// has no room for the entry.
type RingFullPolicy uint32

const (
	// RingFullReject (the default): Append returns an error wrapping
	// ErrFull; the host fails the request closed.
	RingFullReject RingFullPolicy = 0
	// RingFullBlock: Append waits for room. In poll mode another goroutine
	// must be polling meanwhile.
	RingFullBlock RingFullPolicy = 1
	// RingFullDrop: Append returns an error wrapping ErrDropped; the
	// journal counts the drops and records them (a records_dropped event).
	RingFullDrop RingFullPolicy = 2
)

var (
	_ = [1]struct{}{}[int(RingFullReject)-C.TG_JOURNAL_ON_FULL_REJECT]
	_ = [1]struct{}{}[int(RingFullBlock)-C.TG_JOURNAL_ON_FULL_BLOCK]
	_ = [1]struct{}{}[int(RingFullDrop)-C.TG_JOURNAL_ON_FULL_DROP]
)

// JournalKind is the kind of a journal event record.
type JournalKind uint16

// Event kinds (docs/journal-format.md). Hosts append kinds 1..6 and
// JournalKindHostFirst..JournalKindHostLast; the journal itself writes
// JournalKindRecordsDropped and JournalKindTailTruncated.
// The verdicts tollgate writes (docs/journal-format.md).
const (
	JournalVerdictAllowed  uint32 = C.TG_JOURNAL_VERDICT_ALLOWED
	JournalVerdictRejected uint32 = C.TG_JOURNAL_VERDICT_REJECTED
)

const (
	JournalKindDecision          JournalKind = C.TG_JOURNAL_KIND_DECISION
	JournalKindBreakerTransition JournalKind = C.TG_JOURNAL_KIND_BREAKER_TRANSITION
	JournalKindConfigChange      JournalKind = C.TG_JOURNAL_KIND_CONFIG_CHANGE
	JournalKindKeyRevocation     JournalKind = C.TG_JOURNAL_KIND_KEY_REVOCATION
	JournalKindKillSwitch        JournalKind = C.TG_JOURNAL_KIND_KILL_SWITCH
	JournalKindRiskCheck         JournalKind = C.TG_JOURNAL_KIND_RISK_CHECK
	JournalKindHostFirst         JournalKind = C.TG_JOURNAL_KIND_HOST_FIRST
	JournalKindHostLast          JournalKind = C.TG_JOURNAL_KIND_HOST_LAST
	JournalKindRecordsDropped    JournalKind = C.TG_JOURNAL_KIND_RECORDS_DROPPED
	JournalKindTailTruncated     JournalKind = C.TG_JOURNAL_KIND_TAIL_TRUNCATED
)

// String returns the library's name of the kind ([JournalKindName]).
func (k JournalKind) String() string { return JournalKindName(uint16(k)) }

// JournalKindName returns the library's name of an event kind: "decision",
// "breaker_transition", ..., "host:0x8001" for a host kind.
func JournalKindName(kind uint16) string {
	var buf [64]byte
	var n C.size_t
	rc := C.tg_go_journal_kind_name(C.uint32_t(kind), (*C.uint8_t)(unsafe.Pointer(&buf[0])), C.size_t(len(buf)), &n)
	if rc != C.TG_OK {
		return "JournalKind(" + strconv.Itoa(int(kind)) + ")"
	}
	return string(buf[:n])
}

// JournalEventType says what a [JournalEvent] reports.
type JournalEventType int32

const (
	// JournalEventIOError: the journal stopped after an I/O error (Status,
	// Errno, Message, Segment, Offset); every later Append fails.
	JournalEventIOError JournalEventType = C.TG_JOURNAL_EVENT_IO_ERROR
	// JournalEventTailTruncated: recovery cut Count torn bytes at Offset of
	// Segment.
	JournalEventTailTruncated JournalEventType = C.TG_JOURNAL_EVENT_TAIL_TRUNCATED
	// JournalEventCheckpoint: a signed checkpoint was written (Sequence,
	// Head, RealtimeNs). Hosts that must detect a rollback of the whole
	// directory export these elsewhere.
	JournalEventCheckpoint JournalEventType = C.TG_JOURNAL_EVENT_CHECKPOINT
	// JournalEventRotated: a new segment (Segment) was started.
	JournalEventRotated JournalEventType = C.TG_JOURNAL_EVENT_ROTATED
	// JournalEventRecordsDropped: the ring dropped Count entries
	// (RingFullDrop).
	JournalEventRecordsDropped JournalEventType = C.TG_JOURNAL_EVENT_RECORDS_DROPPED
)

// String returns a short lower-case name of the event type.
func (t JournalEventType) String() string {
	switch t {
	case JournalEventIOError:
		return "io-error"
	case JournalEventTailTruncated:
		return "tail-truncated"
	case JournalEventCheckpoint:
		return "checkpoint"
	case JournalEventRotated:
		return "rotated"
	case JournalEventRecordsDropped:
		return "records-dropped"
	}
	return "JournalEventType(" + strconv.Itoa(int(t)) + ")"
}

// JournalEvent is what the journal reports to [JournalOptions.OnEvent].
type JournalEvent struct {
	Type JournalEventType
	// Status is the error of JournalEventIOError (ErrIO), else OK.
	Status Status
	// Errno is the errno of JournalEventIOError.
	Errno syscall.Errno
	// Message says what failed (JournalEventIOError), else "".
	Message    string
	Segment    uint64
	Offset     uint64 // IOError, TailTruncated: byte offset in the segment
	Count      uint64 // TailTruncated: bytes; RecordsDropped: entries
	Sequence   uint64
	RealtimeNs uint64
	Head       [32]byte // Checkpoint: the chain head it signs
}

// JournalOptions configures [OpenJournal]. Directory and SigningSeed are
// required; the zero value of any other field means the library's default.
type JournalOptions struct {
	// Directory holds the journal; it is created (one level) if missing
	// unless MustExist.
	Directory string
	// SigningSeed is the Ed25519 seed of the key that signs checkpoints and
	// the manifest; not all zero. Reopening a journal needs the same seed.
	SigningSeed [32]byte
	// Mode: JournalWriterThread (default) or JournalWriterPoll.
	Mode WriterMode
	// Durability: DurabilityEveryRecord (default) and the others.
	Durability Durability
	// OnFull: RingFullReject (default), RingFullBlock or RingFullDrop.
	OnFull RingFullPolicy
	// SyncEveryRecords for DurabilityEveryNRecords. 0: 64.
	SyncEveryRecords uint64
	// SyncEvery for DurabilityEveryT, rounded up to microseconds. 0: 1 ms.
	SyncEvery time.Duration
	// RingCells is the ring's size in 64-byte cells, a power of two.
	// 0: 65536 (4 MiB).
	RingCells uint64
	// MaxEntryBytes bounds account + inputs + stored payload of one entry;
	// it must fit twice in the ring. 0: 4096.
	MaxEntryBytes uint64
	// CheckpointEveryRecords and CheckpointEvery (rounded up to
	// milliseconds): a signed checkpoint after that many records or that
	// long, whichever comes first. 0: 1024 records, 1 s.
	CheckpointEveryRecords uint64
	CheckpointEvery        time.Duration
	// MaxSegmentBytes and MaxSegmentAge (rounded up to milliseconds) rotate
	// segments. 0: 64 MiB, 1 hour.
	MaxSegmentBytes uint64
	MaxSegmentAge   time.Duration
	// MaxBatchRecords bounds one write (one Poll). 0: 4096.
	MaxBatchRecords uint64
	// IdleSleep is the writer thread's longest nap when the ring is empty,
	// rounded up to microseconds. 0: 50 us.
	IdleSleep time.Duration
	// MustExist refuses to create a journal: the directory must hold one.
	MustExist bool
	// OnEvent, when set, receives the journal's events (see
	// [JournalEvent]). It runs on the goroutine doing the writer's work:
	// the journal's own thread, or the caller of OpenJournal, Poll, Sync,
	// WaitDurable (in poll mode) or Close. It must not block, and must not
	// wait for a goroutine that polls, syncs or closes this journal (the
	// library holds its writer lock). It may Append, but Poll, Sync,
	// WaitDurable and Close called from it return an error wrapping
	// ErrState. A panic in it is recovered before it can unwind through
	// the library and raised again when the next OpenJournal, Poll, Sync,
	// WaitDurable or Close of this journal returns. A callback that refers
	// to the journal keeps it reachable, so the finalizer cannot release
	// it: Close such a journal explicitly.
	OnEvent func(JournalEvent)
}

// JournalEntry is what a host appends. Its bytes are copied by Append and
// need not outlive the call.
type JournalEntry struct {
	// Kind: 0 means JournalKindDecision. Hosts may append kinds 1..6 and
	// JournalKindHostFirst..JournalKindHostLast.
	Kind JournalKind
	// RealtimeNs and MonotonicNs: 0 means CLOCK_REALTIME and
	// CLOCK_MONOTONIC read at append.
	RealtimeNs  uint64
	MonotonicNs uint64
	// Account is at most 255 bytes.
	Account string
	Route   uint32
	Venue   uint32
	// Verdict is the host's; tollgate's own records use JournalVerdictAllowed
	// and JournalVerdictRejected.
	Verdict       uint32
	Reason        uint32
	ConfigVersion uint64
	// Inputs are what a replay needs to take the decision again.
	Inputs []byte
	// Payload is digested (SHA-256) by the writer; its bytes are kept only
	// when StorePayload is set.
	Payload []byte
	// PayloadDigest, when set and StorePayload is not, is recorded instead
	// of digesting Payload (whose bytes are then not copied at all).
	PayloadDigest *[32]byte
	StorePayload  bool
}

// RecordContext supplies what a Record* call writes besides the replay
// inputs: the record's account, route, venue, configuration version,
// timestamps (0: read at append) and payload.
type RecordContext struct {
	Account       string
	Route         uint32
	Venue         uint32
	ConfigVersion uint64
	RealtimeNs    uint64
	MonotonicNs   uint64
	Payload       []byte
	StorePayload  bool
}

// NoParent is the parentInstance of [Journal.RecordLimiterDefine] for a
// limiter without a parent.
const NoParent uint32 = C.TG_JOURNAL_NO_PARENT

// JournalStats are a journal's counters, read one by one.
type JournalStats struct {
	Written       uint64 // host entries written
	Rejected      uint64 // appends refused with ErrFull
	Dropped       uint64 // appends dropped with ErrDropped
	Checkpoints   uint64 // since open
	Syncs         uint64 // fdatasync calls since open
	Batches       uint64 // since open
	Bytes         uint64 // written since open
	NextSequence  uint64 // the sequence number the next record gets
	Segment       uint64 // the open segment
	WrittenTicket uint64 // every ticket <= this is written
	DurableTicket uint64 // every ticket <= this is durable
}

// JournalRecovery says what OpenJournal found and did.
type JournalRecovery struct {
	Created       bool // a new journal
	TailTruncated bool // a torn tail was cut
	Segment       uint64
	Offset        uint64 // where the torn tail began
	BytesRemoved  uint64
	Records       uint64 // valid records in the recovered segment
	NextSequence  uint64
}

// journalSink receives a journal's events from C through a cgo.Handle, so
// the handle never keeps the Journal itself reachable.
type journalSink struct {
	fn      func(JournalEvent)
	handle  cgo.Handle
	pending atomic.Pointer[panicValue]
}

// Journal is the compliance audit journal's writer: append-only segment
// files of hash-chained, CRC-checked records with Ed25519-signed
// checkpoints (docs/journal-format.md). Append copies an entry into a
// bounded ring without lock, allocation or system call and returns a
// ticket; a writer (the journal's thread, or the host calling Poll) writes
// and syncs batches. Its methods are safe for concurrent use. Create one
// with [OpenJournal] and release it with Close.
type Journal struct {
	g    guard
	h    *C.tg_journal
	sink *journalSink
}

// Preallocated errors of the hot path, so that a refused Append does not
// allocate either.
var (
	errJournalFull    error = &Error{Status: ErrFull, Message: "the journal's ring is full (RingFullReject): fail the request closed"}
	errJournalDropped error = &Error{Status: ErrDropped, Message: "the journal's ring is full (RingFullDrop): the entry was dropped and counted"}
	errJournalClosing error = &Error{Status: ErrState, Message: "the journal is closed"}
	errInCallback     error = &Error{Status: ErrState, Message: "called from the journal's event callback"}
)

// roundUp converts a non-negative duration to whole units, rounding up so
// that a small positive duration never becomes 0 (the default).
func roundUp(d, unit time.Duration) uint64 {
	if d <= 0 {
		return 0
	}
	return uint64((d-1)/unit) + 1
}

// OpenJournal creates or opens (and recovers) the journal in o.Directory.
// A torn tail left by a crash is cut (see [Journal.Recovery] and
// JournalEventTailTruncated). Errors wrap ErrInvalid (bad options, or a
// SigningSeed that is not the journal's key), ErrRange, ErrNotFound (no
// journal there and MustExist), ErrState (a
// directory with unknown segment files), ErrIO (the directory cannot be
// used, or damage that is not a torn tail: [VerifyJournal] locates it),
// ErrNoMem or ErrVersion, with the library's explanation.
func OpenJournal(o JournalOptions) (*Journal, error) {
	if err := CheckVersion(); err != nil {
		return nil, err
	}
	if o.Directory == "" {
		return nil, invalid("JournalOptions.Directory is empty")
	}
	if strings.IndexByte(o.Directory, 0) >= 0 {
		return nil, invalid("JournalOptions.Directory contains a NUL byte")
	}
	var c C.tg_journal_options
	C.tg_journal_options_init(&c)
	c.mode = C.uint32_t(o.Mode)
	dur, ok := o.Durability.toC()
	if !ok {
		return nil, invalid("JournalOptions.Durability %d is not a known level", uint32(o.Durability))
	}
	c.durability = dur
	c.on_full = C.uint32_t(o.OnFull)
	for i, b := range o.SigningSeed {
		c.signing_seed[i] = C.uint8_t(b)
	}
	counts := []struct {
		v   uint64
		dst *C.uint64_t
	}{
		{o.SyncEveryRecords, &c.sync_every_records},
		{o.RingCells, &c.ring_cells},
		{o.MaxEntryBytes, &c.max_entry_bytes},
		{o.CheckpointEveryRecords, &c.checkpoint_every_records},
		{o.MaxSegmentBytes, &c.max_segment_bytes},
		{o.MaxBatchRecords, &c.max_batch_records},
	}
	for _, f := range counts {
		if f.v != 0 {
			*f.dst = C.uint64_t(f.v)
		}
	}
	durations := []struct {
		name string
		d    time.Duration
		unit time.Duration
		dst  *C.uint64_t
	}{
		{"SyncEvery", o.SyncEvery, time.Microsecond, &c.sync_every_us},
		{"CheckpointEvery", o.CheckpointEvery, time.Millisecond, &c.checkpoint_every_ms},
		{"MaxSegmentAge", o.MaxSegmentAge, time.Millisecond, &c.max_segment_age_ms},
		{"IdleSleep", o.IdleSleep, time.Microsecond, &c.idle_sleep_us},
	}
	for _, d := range durations {
		if d.d < 0 {
			return nil, &Error{Status: ErrRange, Message: fmt.Sprintf("JournalOptions.%s must not be negative (%v)", d.name, d.d)}
		}
		if d.d != 0 {
			*d.dst = C.uint64_t(roundUp(d.d, d.unit))
		}
	}
	if o.MustExist {
		c.create_if_missing = 0
	}
	dir := C.CString(o.Directory)
	defer C.free(unsafe.Pointer(dir))
	c.directory = dir

	var sink *journalSink
	h := C.uintptr_t(0)
	if o.OnEvent != nil {
		sink = &journalSink{fn: o.OnEvent}
		sink.handle = cgo.NewHandle(sink)
		h = C.uintptr_t(sink.handle)
	}
	var cerr C.tg_error
	var jh *C.tg_journal
	if rc := C.tg_go_journal_open(&c, h, &jh, &cerr); rc != C.TG_OK {
		if sink != nil {
			sink.handle.Delete()
		}
		return nil, statusErr(rc, &cerr, "tg_journal_open failed")
	}
	j := &Journal{h: jh, sink: sink}
	runtime.SetFinalizer(j, (*Journal).finalize)
	j.rethrow()
	return j, nil
}

// Close drains the ring, seals the segment with a close checkpoint, syncs,
// marks the journal closed in its manifest and releases it. It returns the
// error of closing (ErrIO: the journal had stopped, or sealing failed); a
// later Close returns nil. Calls racing Close finish; an Append racing it
// either gets a ticket that Close writes or an error; later calls return
// ErrClosed. Close from the journal's own OnEvent callback returns an error
// wrapping ErrState and changes nothing.
func (j *Journal) Close() error {
	return j.close(true)
}

func (j *Journal) finalize() { j.close(false) }

func (j *Journal) close(rethrow bool) error {
	if j == nil {
		return nil
	}
	if j.inCallback() {
		return errInCallback
	}
	if j.g.isClosed() {
		return nil
	}
	var err error
	if j.g.enter() {
		r := C.tg_go_journal_close(j.h)
		if r.rc != C.TG_OK {
			err = resultErr(&r, "tg_journal_close failed")
		}
	}
	j.leave()
	if j.g.close() {
		j.free()
	}
	runtime.SetFinalizer(j, nil)
	if rethrow {
		j.rethrow()
	}
	return err
}

// resultErr is the error of a by-value result. The message is copied out
// of r first: statusErr lets its tg_error escape, and r must stay on the
// stack for the calls that succeed.
func resultErr(r *C.tg_go_journal_result, what string) error {
	e := r.err
	return statusErr(C.int(r.rc), &e, what)
}

// inCallback says whether the calling goroutine runs this journal's event
// callback (a cgo callback runs on the thread that made it, so the C side
// can tell).
func (j *Journal) inCallback() bool {
	return j.sink != nil && C.tg_go_journal_in_callback(C.uintptr_t(j.sink.handle)) != 0
}

func (j *Journal) free() {
	C.tg_journal_free(j.h)
	if j.sink != nil {
		j.sink.handle.Delete()
	}
	handlesFreed.Add(1)
}

func (j *Journal) enter() error {
	if j == nil {
		return errNil
	}
	if !j.g.enter() {
		j.leave()
		return ErrClosed
	}
	return nil
}

func (j *Journal) leave() {
	if j.g.leave() {
		if j.inCallback() {
			// Defensive: Close joins the writer thread before it marks the
			// guard, so the last call should never be one made from the
			// callback. If it were, tg_journal_free would be ignored there
			// (it would join the thread running it): free from elsewhere.
			go j.free()
			return
		}
		j.free()
	}
}

func (j *Journal) rethrow() {
	if j.sink != nil {
		if p := j.sink.pending.Swap(nil); p != nil {
			panic(p.v)
		}
	}
}

// ioErr is the error of a call that returned TG_EIO without a message: the
// journal's status says what stopped it.
func (j *Journal) ioErr() error {
	var cerr C.tg_error
	if rc := C.tg_journal_status(j.h, &cerr); rc != C.TG_OK {
		return statusErr(rc, &cerr, "the journal stopped after an I/O error")
	}
	return &Error{Status: ErrIO, Message: "the journal stopped after an I/O error"}
}

// appendErr explains a refused append or record call; the caller holds the
// guard.
func (j *Journal) appendErr(rc C.int, what string) error {
	switch rc {
	case C.TG_EFULL:
		return errJournalFull
	case C.TG_EDROPPED:
		return errJournalDropped
	case C.TG_ESTATE:
		return errJournalClosing
	case C.TG_EIO:
		return j.ioErr()
	case C.TG_ERANGE:
		return &Error{Status: ErrRange, Message: what + ": too large (an account over 255 bytes, a key over 1024 bytes, or account + inputs + stored payload over MaxEntryBytes)"}
	}
	return statusErr(rc, nil, what+" refused")
}

// fillEntry puts an entry's pointer-free part into g and returns the
// pointers to its bytes. (They are results, not stores through a pointer
// parameter, which escape analysis would take for a heap store: the
// entry's bytes would then have to live on the heap.)
func fillEntry(g *C.tg_go_journal_entry, e *JournalEntry) (account, inputs, payload, digest *C.uint8_t) {
	kind := e.Kind
	if kind == 0 {
		kind = JournalKindDecision
	}
	g.realtime_ns = C.uint64_t(e.RealtimeNs)
	g.monotonic_ns = C.uint64_t(e.MonotonicNs)
	g.config_version = C.uint64_t(e.ConfigVersion)
	g.account_len = C.uint64_t(len(e.Account))
	g.inputs_len = C.uint64_t(len(e.Inputs))
	g.payload_len = C.uint64_t(len(e.Payload))
	g.route = C.uint32_t(e.Route)
	g.venue = C.uint32_t(e.Venue)
	g.verdict = C.uint32_t(e.Verdict)
	g.reason = C.uint32_t(e.Reason)
	g.kind = C.uint32_t(kind)
	g.store_payload = 0
	if e.StorePayload {
		g.store_payload = 1
	}
	if e.PayloadDigest != nil {
		digest = (*C.uint8_t)(unsafe.Pointer(&e.PayloadDigest[0]))
	}
	return stringPtr(e.Account), bytesPtr(e.Inputs), bytesPtr(e.Payload), digest
}

// ctxArgs fills g from ctx and returns it, or nil (no context) for a nil ctx.
func ctxArgs(g *C.tg_go_journal_entry, ctx *RecordContext) (*C.tg_go_journal_entry, *C.uint8_t, *C.uint8_t) {
	if ctx == nil {
		return nil, nil, nil
	}
	*g = C.tg_go_journal_entry{
		realtime_ns:    C.uint64_t(ctx.RealtimeNs),
		monotonic_ns:   C.uint64_t(ctx.MonotonicNs),
		config_version: C.uint64_t(ctx.ConfigVersion),
		account_len:    C.uint64_t(len(ctx.Account)),
		payload_len:    C.uint64_t(len(ctx.Payload)),
		route:          C.uint32_t(ctx.Route),
		venue:          C.uint32_t(ctx.Venue),
		kind:           C.TG_JOURNAL_KIND_DECISION,
	}
	if ctx.StorePayload {
		g.store_payload = 1
	}
	return g, stringPtr(ctx.Account), bytesPtr(ctx.Payload)
}

// Append copies e into the journal's ring and returns its ticket (ask
// IsWritten, IsDurable or WaitDurable about it). It takes no lock,
// allocates nothing (in Go or in the library) and makes no system call.
// Errors: ErrFull (ring full, RingFullReject: fail the request closed),
// ErrDropped (ring full, RingFullDrop: counted and recorded), ErrRange (an
// account over 255 bytes, or an entry over MaxEntryBytes), ErrInvalid (a
// nil entry, a kind hosts may not write, a nil or closed journal: ErrClosed),
// ErrState (Close has begun), ErrIO (stopped by an I/O error).
func (j *Journal) Append(e *JournalEntry) (uint64, error) {
	if err := j.enter(); err != nil {
		return 0, err
	}
	if e == nil {
		j.leave()
		return 0, invalid("Append: nil entry")
	}
	var g C.tg_go_journal_entry
	account, inputs, payload, digest := fillEntry(&g, e)
	var ticket C.uint64_t
	rc := C.tg_go_journal_append(j.h, &g, account, inputs, payload, digest, &ticket)
	if rc != C.TG_OK {
		var err error
		if rc == C.TG_EINVAL {
			err = invalid("Append: kind %d may not be appended by a host (kinds 1..6 and 0x%x..0x%x)",
				uint16(e.Kind), uint16(JournalKindHostFirst), uint16(JournalKindHostLast))
		} else {
			err = j.appendErr(rc, "Append")
		}
		j.leave()
		return 0, err
	}
	j.leave()
	return uint64(ticket), nil
}

// IsWritten says whether the ticket's record, and every earlier one, is
// written (survives the process being killed). Ticket 0 is never written.
func (j *Journal) IsWritten(ticket uint64) (bool, error) {
	if err := j.enter(); err != nil {
		return false, err
	}
	var out C.int
	rc := C.tg_journal_is_written(j.h, C.uint64_t(ticket), &out)
	j.leave()
	if rc != C.TG_OK {
		return false, statusErr(rc, nil, "tg_journal_is_written failed")
	}
	return out != 0, nil
}

// IsDurable says whether the ticket's record, and every earlier one, is
// fdatasync'ed (survives a power loss).
func (j *Journal) IsDurable(ticket uint64) (bool, error) {
	if err := j.enter(); err != nil {
		return false, err
	}
	var out C.int
	rc := C.tg_journal_is_durable(j.h, C.uint64_t(ticket), &out)
	j.leave()
	if rc != C.TG_OK {
		return false, statusErr(rc, nil, "tg_journal_is_durable failed")
	}
	return out != 0, nil
}

// WaitDurable waits until the ticket is durable (true), or timeout
// (rounded up to microseconds) passes (false, nil); in poll mode it polls
// meanwhile. Errors: ErrInvalid (ticket 0, a negative timeout), ErrIO (the
// journal stopped), ErrState (closed, or called from the event callback).
func (j *Journal) WaitDurable(ticket uint64, timeout time.Duration) (bool, error) {
	if err := j.enter(); err != nil {
		return false, err
	}
	if timeout < 0 {
		j.leave()
		return false, invalid("WaitDurable: negative timeout %v", timeout)
	}
	r := C.tg_go_journal_wait_durable(j.h, C.uint64_t(ticket), C.uint64_t(roundUp(timeout, time.Microsecond)))
	j.leave()
	j.rethrow()
	if r.rc != C.TG_OK {
		return false, resultErr(&r, "tg_journal_wait_durable failed")
	}
	return r.durable != 0, nil
}

// Poll writes up to MaxBatchRecords entries, syncs as the durability
// level asks, and checkpoints and rotates when due; it returns the number
// of entries written. It is the writer of poll mode; in thread mode it does
// the thread's work early. Errors: ErrState (closed, or called from the
// event callback), ErrIO. Poll does not allocate.
func (j *Journal) Poll() (int, error) {
	if err := j.enter(); err != nil {
		return 0, err
	}
	r := C.tg_go_journal_poll(j.h)
	j.leave()
	j.rethrow()
	if r.rc != C.TG_OK {
		return 0, resultErr(&r, "tg_journal_poll failed")
	}
	return int(r.n), nil
}

// Sync writes what the ring holds and fdatasyncs it, whatever the
// durability level. Errors as Poll.
func (j *Journal) Sync() error {
	if err := j.enter(); err != nil {
		return err
	}
	r := C.tg_go_journal_sync(j.h)
	j.leave()
	j.rethrow()
	if r.rc != C.TG_OK {
		return resultErr(&r, "tg_journal_sync failed")
	}
	return nil
}

// Status returns nil while the journal is writing, or the error that
// stopped it (wrapping ErrIO, the errno in its message).
func (j *Journal) Status() error {
	if err := j.enter(); err != nil {
		return err
	}
	var cerr C.tg_error
	rc := C.tg_journal_status(j.h, &cerr)
	j.leave()
	if rc != C.TG_OK {
		e := cerr
		return statusErr(rc, &e, "the journal stopped")
	}
	return nil
}

// Stats returns the journal's counters.
func (j *Journal) Stats() (JournalStats, error) {
	if err := j.enter(); err != nil {
		return JournalStats{}, err
	}
	var s C.tg_journal_stats
	rc := C.tg_journal_stats_get(j.h, &s)
	j.leave()
	if rc != C.TG_OK {
		return JournalStats{}, statusErr(rc, nil, "tg_journal_stats_get failed")
	}
	return JournalStats{
		Written:       uint64(s.written),
		Rejected:      uint64(s.rejected),
		Dropped:       uint64(s.dropped),
		Checkpoints:   uint64(s.checkpoints),
		Syncs:         uint64(s.syncs),
		Batches:       uint64(s.batches),
		Bytes:         uint64(s.bytes),
		NextSequence:  uint64(s.next_sequence),
		Segment:       uint64(s.segment),
		WrittenTicket: uint64(s.written_ticket),
		DurableTicket: uint64(s.durable_ticket),
	}, nil
}

// Recovery says what OpenJournal found and did.
func (j *Journal) Recovery() (JournalRecovery, error) {
	if err := j.enter(); err != nil {
		return JournalRecovery{}, err
	}
	var r C.tg_journal_recovery
	rc := C.tg_journal_recovery_get(j.h, &r)
	j.leave()
	if rc != C.TG_OK {
		return JournalRecovery{}, statusErr(rc, nil, "tg_journal_recovery_get failed")
	}
	return JournalRecovery{
		Created:       r.created != 0,
		TailTruncated: r.tail_truncated != 0,
		Segment:       uint64(r.segment),
		Offset:        uint64(r.offset),
		BytesRemoved:  uint64(r.bytes_removed),
		Records:       uint64(r.records),
		NextSequence:  uint64(r.next_sequence),
	}, nil
}

// ID returns the journal's 16-byte id.
func (j *Journal) ID() ([16]byte, error) {
	var id [16]byte
	if err := j.enter(); err != nil {
		return id, err
	}
	rc := C.tg_journal_id(j.h, (*C.uint8_t)(unsafe.Pointer(&id[0])))
	j.leave()
	if rc != C.TG_OK {
		return id, statusErr(rc, nil, "tg_journal_id failed")
	}
	return id, nil
}

// PublicKey returns the journal's Ed25519 public key; pin it in
// [ReadOptions.PublicKey].
func (j *Journal) PublicKey() ([32]byte, error) {
	var key [32]byte
	if err := j.enter(); err != nil {
		return key, err
	}
	rc := C.tg_journal_public_key(j.h, (*C.uint8_t)(unsafe.Pointer(&key[0])))
	j.leave()
	if rc != C.TG_OK {
		return key, statusErr(rc, nil, "tg_journal_public_key failed")
	}
	return key, nil
}

// Ed25519PublicKey returns the Ed25519 public key of a 32-byte seed, as the
// journal derives it from JournalOptions.SigningSeed. Errors wrap ErrState
// when the library was built without its crypto.
func Ed25519PublicKey(seed [32]byte) ([32]byte, error) {
	var out [32]byte
	rc := C.tg_ed25519_public_key((*C.uint8_t)(unsafe.Pointer(&seed[0])), (*C.uint8_t)(unsafe.Pointer(&out[0])))
	if rc != C.TG_OK {
		return [32]byte{}, statusErr(rc, nil, "no Ed25519 in this build of the library")
	}
	return out, nil
}

// Recording decisions for replay. instance names a limiter or breaker in
// the journal (the host's choice). ctx (optional) supplies the record's
// account, route, venue, configuration version, timestamps and payload.
// Each returns the record's ticket, or the errors of Append, and
// ErrInvalid for a nil or closed limiter or breaker. A replay
// ([ReplayJournal]) reproduces the live decisions when each instance's
// decisions were recorded in the order they were made (one goroutine per
// instance, or decide-and-record under one lock). None allocates.

// finishRecord turns a record call's code into its result; the caller
// holds the journal's guard.
func (j *Journal) finishRecord(rc C.int, ticket C.uint64_t, what string) (uint64, error) {
	if rc != C.TG_OK {
		if rc == C.TG_EINVAL {
			return 0, invalid("%s: an argument is out of range", what)
		}
		return 0, j.appendErr(rc, what)
	}
	return uint64(ticket), nil
}

// RecordLimiterDefine records l's configuration (its hash seed included)
// as instance; parentInstance names the instance recorded for l's parent,
// or is NoParent. Record it before the limiter's decisions, and again
// after a change of configuration.
func (j *Journal) RecordLimiterDefine(instance uint32, l *Limiter, parentInstance uint32, ctx *RecordContext) (uint64, error) {
	if err := j.enter(); err != nil {
		return 0, err
	}
	defer j.leave()
	if l == nil {
		return 0, invalid("RecordLimiterDefine: nil limiter")
	}
	if err := l.enter(); err != nil {
		return 0, invalid("RecordLimiterDefine: the limiter is closed")
	}
	defer l.leave()
	var g C.tg_go_journal_entry
	cg, acc, pay := ctxArgs(&g, ctx)
	var t C.uint64_t
	rc := C.tg_go_record_limiter_define(j.h, C.uint32_t(instance), l.h, C.uint32_t(parentInstance), cg, acc, pay, &t)
	return j.finishRecord(rc, t, "RecordLimiterDefine")
}

func decisionToC(d *Decision, c *C.tg_limit_decision) {
	c.allowed = 0
	if d.Allowed {
		c.allowed = 1
	}
	c.reason = C.int32_t(d.Reason)
	c.retry_after_ns = C.uint64_t(d.RetryAfterNs)
	c.remaining = C.uint64_t(d.Remaining)
	c.flags = 0
	if d.Shadow {
		c.flags = C.TG_LIMIT_FLAG_SHADOW
	}
	c.reserved = 0
}

func (j *Journal) recordAcquire(instance uint32, key *C.uint8_t, n int, tier, cost uint32, nowNs uint64, d *Decision, ctx *RecordContext) (uint64, error) {
	if err := j.enter(); err != nil {
		return 0, err
	}
	var cd C.tg_limit_decision
	decisionToC(d, &cd)
	var g C.tg_go_journal_entry
	cg, acc, pay := ctxArgs(&g, ctx)
	var t C.uint64_t
	rc := C.tg_go_record_limiter_acquire(j.h, C.uint32_t(instance), key, C.size_t(n), C.uint32_t(tier), C.uint32_t(cost),
		C.uint64_t(nowNs), &cd, cg, acc, pay, &t)
	ticket, err := j.finishRecord(rc, t, "RecordLimiterAcquire")
	j.leave()
	return ticket, err
}

// RecordLimiterAcquire records a Limiter.Acquire call (key, tier, cost,
// nowNs) and its decision d. Keys are at most 1024 bytes.
func (j *Journal) RecordLimiterAcquire(instance uint32, key []byte, tier, cost uint32, nowNs uint64, d Decision, ctx *RecordContext) (uint64, error) {
	return j.recordAcquire(instance, bytesPtr(key), len(key), tier, cost, nowNs, &d, ctx)
}

// RecordLimiterAcquireString is RecordLimiterAcquire with a string key,
// passed without copying.
func (j *Journal) RecordLimiterAcquireString(instance uint32, key string, tier, cost uint32, nowNs uint64, d Decision, ctx *RecordContext) (uint64, error) {
	return j.recordAcquire(instance, stringPtr(key), len(key), tier, cost, nowNs, &d, ctx)
}

func (j *Journal) recordReserve(instance uint32, key *C.uint8_t, n int, tier, cost uint32, nowNs uint64, r *Reservation, ctx *RecordContext) (uint64, error) {
	if err := j.enter(); err != nil {
		return 0, err
	}
	if r == nil {
		j.leave()
		return 0, invalid("RecordLimiterReserve: nil reservation")
	}
	var cd C.tg_limit_decision
	decisionToC(&r.Decision, &cd)
	res := r.raw
	var g C.tg_go_journal_entry
	cg, acc, pay := ctxArgs(&g, ctx)
	var t C.uint64_t
	rc := C.tg_go_record_limiter_reserve(j.h, C.uint32_t(instance), key, C.size_t(n), C.uint32_t(tier), C.uint32_t(cost),
		C.uint64_t(nowNs), &cd, &res, cg, acc, pay, &t)
	ticket, err := j.finishRecord(rc, t, "RecordLimiterReserve")
	j.leave()
	return ticket, err
}

// RecordLimiterReserve records a Limiter.Reserve call and the reservation
// (with its decision) it returned.
func (j *Journal) RecordLimiterReserve(instance uint32, key []byte, tier, cost uint32, nowNs uint64, r *Reservation, ctx *RecordContext) (uint64, error) {
	return j.recordReserve(instance, bytesPtr(key), len(key), tier, cost, nowNs, r, ctx)
}

// RecordLimiterReserveString is RecordLimiterReserve with a string key.
func (j *Journal) RecordLimiterReserveString(instance uint32, key string, tier, cost uint32, nowNs uint64, r *Reservation, ctx *RecordContext) (uint64, error) {
	return j.recordReserve(instance, stringPtr(key), len(key), tier, cost, nowNs, r, ctx)
}

func (j *Journal) recordCancel(instance uint32, key *C.uint8_t, n int, r *Reservation, nowNs uint64, ctx *RecordContext) (uint64, error) {
	if err := j.enter(); err != nil {
		return 0, err
	}
	if r == nil {
		j.leave()
		return 0, invalid("RecordLimiterCancel: nil reservation")
	}
	res := r.raw
	var g C.tg_go_journal_entry
	cg, acc, pay := ctxArgs(&g, ctx)
	var t C.uint64_t
	rc := C.tg_go_record_limiter_cancel(j.h, C.uint32_t(instance), key, C.size_t(n), &res, C.uint64_t(nowNs), cg, acc, pay, &t)
	ticket, err := j.finishRecord(rc, t, "RecordLimiterCancel")
	j.leave()
	return ticket, err
}

// RecordLimiterCancel records a Reservation.Cancel at nowNs, with the key
// the reservation was made for.
func (j *Journal) RecordLimiterCancel(instance uint32, key []byte, r *Reservation, nowNs uint64, ctx *RecordContext) (uint64, error) {
	return j.recordCancel(instance, bytesPtr(key), len(key), r, nowNs, ctx)
}

// RecordLimiterCancelString is RecordLimiterCancel with a string key.
func (j *Journal) RecordLimiterCancelString(instance uint32, key string, r *Reservation, nowNs uint64, ctx *RecordContext) (uint64, error) {
	return j.recordCancel(instance, stringPtr(key), len(key), r, nowNs, ctx)
}

// RecordLimiterMultiplier records a Limiter.SetMultiplier(m, nowNs) call.
func (j *Journal) RecordLimiterMultiplier(instance uint32, m float64, nowNs uint64, ctx *RecordContext) (uint64, error) {
	if err := j.enter(); err != nil {
		return 0, err
	}
	var g C.tg_go_journal_entry
	cg, acc, pay := ctxArgs(&g, ctx)
	var t C.uint64_t
	rc := C.tg_go_record_limiter_multiplier(j.h, C.uint32_t(instance), C.double(m), C.uint64_t(nowNs), cg, acc, pay, &t)
	ticket, err := j.finishRecord(rc, t, "RecordLimiterMultiplier")
	j.leave()
	return ticket, err
}

// RecordLimiterShadow records a Limiter.SetShadow(on) call.
func (j *Journal) RecordLimiterShadow(instance uint32, on bool, ctx *RecordContext) (uint64, error) {
	if err := j.enter(); err != nil {
		return 0, err
	}
	v := C.int(0)
	if on {
		v = 1
	}
	var g C.tg_go_journal_entry
	cg, acc, pay := ctxArgs(&g, ctx)
	var t C.uint64_t
	rc := C.tg_go_record_limiter_shadow(j.h, C.uint32_t(instance), v, cg, acc, pay, &t)
	ticket, err := j.finishRecord(rc, t, "RecordLimiterShadow")
	j.leave()
	return ticket, err
}

// RecordBreakerDefine records b's configuration as instance.
func (j *Journal) RecordBreakerDefine(instance uint32, b *Breaker, ctx *RecordContext) (uint64, error) {
	if err := j.enter(); err != nil {
		return 0, err
	}
	defer j.leave()
	if b == nil {
		return 0, invalid("RecordBreakerDefine: nil breaker")
	}
	if err := b.enter(); err != nil {
		return 0, invalid("RecordBreakerDefine: the breaker is closed")
	}
	defer b.leave()
	var g C.tg_go_journal_entry
	cg, acc, pay := ctxArgs(&g, ctx)
	var t C.uint64_t
	rc := C.tg_go_record_breaker_define(j.h, C.uint32_t(instance), b.h, cg, acc, pay, &t)
	return j.finishRecord(rc, t, "RecordBreakerDefine")
}

func validPermit(p *Permit) bool {
	return p.Reason >= BreakerReasonNone && p.Reason <= BreakerReasonBulkheadFull &&
		p.State >= StateClosed && p.State <= StateMetricsOnly
}

// RecordBreakerAcquire records a Breaker.Acquire(nowNs) call and its permit.
func (j *Journal) RecordBreakerAcquire(instance uint32, nowNs uint64, p Permit, ctx *RecordContext) (uint64, error) {
	if err := j.enter(); err != nil {
		return 0, err
	}
	if !validPermit(&p) {
		j.leave()
		return 0, invalid("RecordBreakerAcquire: permit with reason %v, state %v is not one a breaker gives", p.Reason, p.State)
	}
	var cp C.tg_breaker_permit
	p.toC(&cp)
	var g C.tg_go_journal_entry
	cg, acc, pay := ctxArgs(&g, ctx)
	var t C.uint64_t
	rc := C.tg_go_record_breaker_acquire(j.h, C.uint32_t(instance), C.uint64_t(nowNs), &cp, cg, acc, pay, &t)
	ticket, err := j.finishRecord(rc, t, "RecordBreakerAcquire")
	j.leave()
	return ticket, err
}

// RecordBreakerOutcome records a Breaker.Record(p, outcome, latencyNs,
// nowNs) call.
func (j *Journal) RecordBreakerOutcome(instance uint32, p Permit, outcome Outcome, latencyNs, nowNs uint64, ctx *RecordContext) (uint64, error) {
	if err := j.enter(); err != nil {
		return 0, err
	}
	if !validPermit(&p) {
		j.leave()
		return 0, invalid("RecordBreakerOutcome: permit with reason %v, state %v is not one a breaker gives", p.Reason, p.State)
	}
	if outcome < OutcomeSuccess || outcome > OutcomeIgnored {
		j.leave()
		return 0, invalid("RecordBreakerOutcome: %v is not one of OutcomeSuccess, OutcomeFailure, OutcomeIgnored", outcome)
	}
	var cp C.tg_breaker_permit
	p.toC(&cp)
	var g C.tg_go_journal_entry
	cg, acc, pay := ctxArgs(&g, ctx)
	var t C.uint64_t
	rc := C.tg_go_record_breaker_outcome(j.h, C.uint32_t(instance), &cp, C.int(outcome), C.uint64_t(latencyNs), C.uint64_t(nowNs),
		cg, acc, pay, &t)
	ticket, err := j.finishRecord(rc, t, "RecordBreakerOutcome")
	j.leave()
	return ticket, err
}

// RecordBreakerForce records a Breaker.Transition(state, nowNs) call (a
// manual state change).
func (j *Journal) RecordBreakerForce(instance uint32, state State, nowNs uint64, ctx *RecordContext) (uint64, error) {
	if err := j.enter(); err != nil {
		return 0, err
	}
	if state < StateClosed || state > StateMetricsOnly {
		j.leave()
		return 0, invalid("RecordBreakerForce: unknown state %v", state)
	}
	var g C.tg_go_journal_entry
	cg, acc, pay := ctxArgs(&g, ctx)
	var t C.uint64_t
	rc := C.tg_go_record_breaker_force(j.h, C.uint32_t(instance), C.int(state), C.uint64_t(nowNs), cg, acc, pay, &t)
	ticket, err := j.finishRecord(rc, t, "RecordBreakerForce")
	j.leave()
	return ticket, err
}

// RecordBreakerTransition records a transition the breaker announced: call
// it from the breaker's OnEvent callback. A replay checks that the
// replayed breaker makes the same transition.
func (j *Journal) RecordBreakerTransition(instance uint32, ev Event, ctx *RecordContext) (uint64, error) {
	if err := j.enter(); err != nil {
		return 0, err
	}
	if ev.From < StateClosed || ev.From > StateMetricsOnly || ev.To < StateClosed || ev.To > StateMetricsOnly {
		j.leave()
		return 0, invalid("RecordBreakerTransition: unknown state in %v -> %v", ev.From, ev.To)
	}
	ce := C.tg_breaker_event{
		from_state:   C.int32_t(ev.From),
		to_state:     C.int32_t(ev.To),
		now_ns:       C.uint64_t(ev.NowNs),
		failure_rate: C.double(ev.FailureRate),
		slow_rate:    C.double(ev.SlowRate),
		open_ns:      C.uint64_t(ev.OpenNs),
	}
	var g C.tg_go_journal_entry
	cg, acc, pay := ctxArgs(&g, ctx)
	var t C.uint64_t
	rc := C.tg_go_record_breaker_transition(j.h, C.uint32_t(instance), &ce, cg, acc, pay, &t)
	ticket, err := j.finishRecord(rc, t, "RecordBreakerTransition")
	j.leave()
	return ticket, err
}

// ReadOptions configures reading, verifying and replaying a journal.
type ReadOptions struct {
	// Strict makes a torn or unsigned tail an error rather than a warning.
	Strict bool
	// PublicKey, when set, must be the key the journal's manifest names
	// (pin the key from Journal.PublicKey or Ed25519PublicKey).
	PublicKey *[32]byte
}

func (o *ReadOptions) args() (C.uint32_t, *C.uint8_t) {
	strict := C.uint32_t(0)
	if o.Strict {
		strict = 1
	}
	var key *C.uint8_t
	if o.PublicKey != nil {
		key = (*C.uint8_t)(unsafe.Pointer(&o.PublicKey[0]))
	}
	return strict, key
}

// cDirectory checks and converts a journal directory; free the result.
func cDirectory(dir, what string) (*C.char, error) {
	if dir == "" {
		return nil, invalid("%s: the directory is empty", what)
	}
	if strings.IndexByte(dir, 0) >= 0 {
		return nil, invalid("%s: the directory contains a NUL byte", what)
	}
	return C.CString(dir), nil
}

// JournalProblem says where and why verification stopped, or describes a
// warning (a torn or unsigned tail). It implements error.
type JournalProblem struct {
	Segment  uint64
	Offset   uint64 // byte offset in File
	Sequence uint64 // the sequence number expected there (0: n/a)
	// Category is "manifest", "directory", "header", "record", "seal",
	// "torn_tail", ...
	Category string
	File     string
	Message  string
}

// Error implements error.
func (p *JournalProblem) Error() string {
	s := "tollgate: journal " + p.Category
	if p.File != "" {
		s += " in " + p.File + " at offset " + strconv.FormatUint(p.Offset, 10)
	}
	if p.Sequence != 0 {
		s += " (sequence " + strconv.FormatUint(p.Sequence, 10) + ")"
	}
	if p.Message != "" {
		s += ": " + p.Message
	}
	return s
}

func problemFrom(p *C.tg_journal_problem) *JournalProblem {
	if p.found == 0 {
		return nil
	}
	return &JournalProblem{
		Segment:  uint64(p.segment),
		Offset:   uint64(p.offset),
		Sequence: uint64(p.sequence),
		Category: C.GoString(&p.category[0]),
		File:     C.GoString(&p.file[0]),
		Message:  C.GoString(&p.message[0]),
	}
}

// JournalRecordType is the type of a verified record.
type JournalRecordType uint32

const (
	JournalRecordEvent      JournalRecordType = C.TG_JOURNAL_RECORD_EVENT
	JournalRecordCheckpoint JournalRecordType = C.TG_JOURNAL_RECORD_CHECKPOINT
)

// The bits of JournalRecord.Flags (events) and CheckpointFlags.
const (
	RecordPayloadStored uint32 = 1 // the payload's bytes are in the record
	RecordDigestSet     uint32 = 2 // PayloadDigest is set
	CheckpointSeal      uint32 = 1 // the last record of its segment
	CheckpointClose     uint32 = 2 // the journal was closed cleanly
)

// JournalRecord is one verified record, copied out of the reader: it stays
// valid after the next call.
type JournalRecord struct {
	Type            JournalRecordType
	Kind            JournalKind // events
	Flags           uint32      // events: RecordPayloadStored, RecordDigestSet
	CheckpointFlags uint32      // checkpoints: CheckpointSeal, CheckpointClose
	Sequence        uint64
	RealtimeNs      uint64
	MonotonicNs     uint64
	ConfigVersion   uint64
	Route           uint32
	Venue           uint32
	Verdict         uint32
	Reason          uint32
	Segment         uint64 // where the record is
	Offset          uint64
	Account         string
	Inputs          []byte // nil when empty
	Payload         []byte // when stored, else nil
	Prev            [32]byte
	PayloadDigest   [32]byte
}

// JournalReader reads a journal's verified records in order. Its methods
// are safe for concurrent use (they are serialised). Create one with
// [OpenJournalReader] and release it with Close.
type JournalReader struct {
	g  guard
	h  *C.tg_journal_reader
	mu sync.Mutex
}

// OpenJournalReader opens a reader over the journal in dir. A journal
// whose manifest fails its checks gives a reader whose first Next returns
// false, with the reason in Problem. Errors wrap ErrInvalid, ErrNotFound
// (no such directory, or no journal in it), ErrIO (an unreadable
// directory), ErrState, ErrNoMem or ErrVersion.
func OpenJournalReader(dir string, o ReadOptions) (*JournalReader, error) {
	if err := CheckVersion(); err != nil {
		return nil, err
	}
	cdir, err := cDirectory(dir, "OpenJournalReader")
	if err != nil {
		return nil, err
	}
	defer C.free(unsafe.Pointer(cdir))
	strict, key := o.args()
	var cerr C.tg_error
	var h *C.tg_journal_reader
	if rc := C.tg_go_journal_reader_open(cdir, strict, key, &h, &cerr); rc != C.TG_OK {
		return nil, statusErr(rc, &cerr, "tg_journal_reader_open failed")
	}
	r := &JournalReader{h: h}
	runtime.SetFinalizer(r, (*JournalReader).Close)
	return r, nil
}

// Close releases the reader. It is idempotent and safe to call while
// other goroutines use the reader.
func (r *JournalReader) Close() error {
	if r == nil {
		return nil
	}
	if r.g.close() {
		r.free()
	}
	runtime.SetFinalizer(r, nil)
	return nil
}

func (r *JournalReader) free() {
	C.tg_journal_reader_free(r.h)
	handlesFreed.Add(1)
}

func (r *JournalReader) enter() error {
	if r == nil {
		return errNil
	}
	if !r.g.enter() {
		r.leave()
		return ErrClosed
	}
	return nil
}

func (r *JournalReader) leave() {
	if r.g.leave() {
		r.free()
	}
}

// Next returns the next verified record and true, or false at the end, at
// the first record that fails verification (Problem says what and where),
// or for a nil or closed reader (Problem returns the error).
func (r *JournalReader) Next() (JournalRecord, bool) {
	if err := r.enter(); err != nil {
		return JournalRecord{}, false
	}
	defer r.leave()
	r.mu.Lock()
	defer r.mu.Unlock()
	var c C.tg_journal_record
	var has C.int
	if rc := C.tg_journal_reader_next(r.h, &c, &has); rc != C.TG_OK || has == 0 {
		return JournalRecord{}, false
	}
	rec := JournalRecord{
		Type:            JournalRecordType(c._type),
		Kind:            JournalKind(c.kind),
		Flags:           uint32(c.flags),
		CheckpointFlags: uint32(c.checkpoint_flags),
		Sequence:        uint64(c.sequence),
		RealtimeNs:      uint64(c.realtime_ns),
		MonotonicNs:     uint64(c.monotonic_ns),
		ConfigVersion:   uint64(c.config_version),
		Route:           uint32(c.route),
		Venue:           uint32(c.venue),
		Verdict:         uint32(c.verdict),
		Reason:          uint32(c.reason),
		Segment:         uint64(c.segment),
		Offset:          uint64(c.offset),
	}
	if c.account_len > 0 && c.account != nil {
		rec.Account = C.GoStringN(c.account, C.int(c.account_len))
	}
	if c.inputs_len > 0 && c.inputs != nil {
		rec.Inputs = C.GoBytes(unsafe.Pointer(c.inputs), C.int(c.inputs_len))
	}
	if c.payload_len > 0 && c.payload != nil {
		rec.Payload = C.GoBytes(unsafe.Pointer(c.payload), C.int(c.payload_len))
	}
	for i := range rec.Prev {
		rec.Prev[i] = byte(c.prev[i])
		rec.PayloadDigest[i] = byte(c.payload_digest[i])
	}
	return rec, true
}

// Records iterates over the remaining verified records. When iteration
// stops at a problem (a record that fails verification, a closed reader),
// the last pair yielded carries it as the error (a *JournalProblem for a
// verification failure).
//
//	for rec, err := range reader.Records() {
//		if err != nil { ... }
//	}
func (r *JournalReader) Records() iter.Seq2[JournalRecord, error] {
	return func(yield func(JournalRecord, error) bool) {
		for {
			rec, ok := r.Next()
			if !ok {
				break
			}
			if !yield(rec, nil) {
				return
			}
		}
		p, err := r.Problem()
		if err != nil {
			yield(JournalRecord{}, err)
		} else if p != nil {
			yield(JournalRecord{}, p)
		}
	}
}

// Problem returns what stopped iteration, or nil if nothing did (so far).
func (r *JournalReader) Problem() (*JournalProblem, error) {
	if err := r.enter(); err != nil {
		return nil, err
	}
	defer r.leave()
	r.mu.Lock()
	defer r.mu.Unlock()
	var p C.tg_journal_problem
	if rc := C.tg_journal_reader_problem(r.h, &p); rc != C.TG_OK {
		return nil, statusErr(rc, nil, "tg_journal_reader_problem failed")
	}
	return problemFrom(&p), nil
}

// Warnings returns the warnings so far (a torn or unsigned tail).
func (r *JournalReader) Warnings() ([]JournalProblem, error) {
	if err := r.enter(); err != nil {
		return nil, err
	}
	defer r.leave()
	r.mu.Lock()
	defer r.mu.Unlock()
	var n C.size_t
	if rc := C.tg_journal_reader_warning_count(r.h, &n); rc != C.TG_OK {
		return nil, statusErr(rc, nil, "tg_journal_reader_warning_count failed")
	}
	var out []JournalProblem
	for i := C.size_t(0); i < n; i++ {
		var p C.tg_journal_problem
		if rc := C.tg_journal_reader_warning(r.h, i, &p); rc != C.TG_OK {
			return out, statusErr(rc, nil, "tg_journal_reader_warning failed")
		}
		if w := problemFrom(&p); w != nil {
			out = append(out, *w)
		}
	}
	return out, nil
}

// VerifyReport is the verdict of [VerifyJournal].
type VerifyReport struct {
	// OK: no error (warnings allowed).
	OK bool
	// Closed: the journal ends with a close checkpoint.
	Closed          bool
	Segments        uint64
	Records         uint64 // verified records, checkpoints included
	Events          uint64
	Checkpoints     uint64
	Bytes           uint64
	LastSequence    uint64
	FirstRealtimeNs uint64
	LastRealtimeNs  uint64
	WarningCount    uint64
	ID              [16]byte
	Key             [32]byte
	Head            [32]byte // the chain value after the last verified record
	// Problem is the first error (nil when OK).
	Problem *JournalProblem
	// FirstWarning is the first warning, if any.
	FirstWarning *JournalProblem
}

// VerifyJournal verifies the whole journal in dir: manifest, headers, CRCs,
// sequence, chain, checkpoint signatures, seals. The verdict is in the
// report whatever the journal holds; an error only means it could not look
// (ErrInvalid, ErrNotFound, ErrIO, ErrState, ErrNoMem, ErrVersion).
func VerifyJournal(dir string, o ReadOptions) (VerifyReport, error) {
	if err := CheckVersion(); err != nil {
		return VerifyReport{}, err
	}
	cdir, err := cDirectory(dir, "VerifyJournal")
	if err != nil {
		return VerifyReport{}, err
	}
	defer C.free(unsafe.Pointer(cdir))
	strict, key := o.args()
	var c C.tg_journal_verify_report
	var cerr C.tg_error
	if rc := C.tg_go_journal_verify(cdir, strict, key, &c, &cerr); rc != C.TG_OK {
		return VerifyReport{}, statusErr(rc, &cerr, "tg_journal_verify failed")
	}
	rep := VerifyReport{
		OK:              c.ok != 0,
		Closed:          c.closed != 0,
		Segments:        uint64(c.segments),
		Records:         uint64(c.records),
		Events:          uint64(c.events),
		Checkpoints:     uint64(c.checkpoints),
		Bytes:           uint64(c.bytes),
		LastSequence:    uint64(c.last_sequence),
		FirstRealtimeNs: uint64(c.first_realtime_ns),
		LastRealtimeNs:  uint64(c.last_realtime_ns),
		WarningCount:    uint64(c.warning_count),
		Problem:         problemFrom(&c.error),
		FirstWarning:    problemFrom(&c.first_warning),
	}
	for i := range rep.ID {
		rep.ID[i] = byte(c.id[i])
	}
	for i := range rep.Key {
		rep.Key[i] = byte(c.key[i])
		rep.Head[i] = byte(c.head[i])
	}
	return rep, nil
}

// ReplayComponent names the kind of instance a replay difference is about.
type ReplayComponent uint32

const (
	ReplayLimiter ReplayComponent = C.TG_JOURNAL_COMPONENT_LIMITER
	ReplayBreaker ReplayComponent = C.TG_JOURNAL_COMPONENT_BREAKER
)

// String returns "limiter" or "breaker".
func (c ReplayComponent) String() string {
	switch c {
	case ReplayLimiter:
		return "limiter"
	case ReplayBreaker:
		return "breaker"
	}
	return "ReplayComponent(" + strconv.Itoa(int(c)) + ")"
}

// ReplayMismatch is a decision or transition the replay made differently.
type ReplayMismatch struct {
	Sequence  uint64
	Segment   uint64
	Offset    uint64
	Component ReplayComponent
	Instance  uint32
	Recorded  string // what the journal says was decided
	Replayed  string // what the replay decided
}

// ReplayIssue is a record whose replay inputs could not be used
// (malformed, an instance never defined).
type ReplayIssue struct {
	Sequence uint64
	Message  string
}

// ReplayReport is the verdict of [ReplayJournal].
type ReplayReport struct {
	// OK: verified, no difference, no issue.
	OK          bool
	Records     uint64 // verified records read
	Replayed    uint64 // records fed through a limiter or breaker
	Decisions   uint64 // decisions compared
	Transitions uint64 // announced breaker transitions compared
	Instances   uint64 // limiter and breaker definitions
	Other       uint64 // events without replay inputs (skipped)
	Mismatches  uint64 // decisions or transitions that differ
	Issues      uint64 // unusable inputs
	// Problem: the journal failed verification here, and the replay
	// stopped (nil if it did not).
	Problem *JournalProblem
	// FirstMismatch is the first difference (nil when Mismatches is 0).
	FirstMismatch *ReplayMismatch
	// FirstIssue is the first issue (nil when Issues is 0).
	FirstIssue *ReplayIssue
}

// ReplayJournal replays every recorded limiter and breaker decision of the
// journal in dir (see the Record* methods of [Journal]) and compares. The
// verdict is in the report; an error only means the journal could not be
// read at all (as VerifyJournal).
func ReplayJournal(dir string, o ReadOptions) (ReplayReport, error) {
	if err := CheckVersion(); err != nil {
		return ReplayReport{}, err
	}
	cdir, err := cDirectory(dir, "ReplayJournal")
	if err != nil {
		return ReplayReport{}, err
	}
	defer C.free(unsafe.Pointer(cdir))
	strict, key := o.args()
	var c C.tg_journal_replay_report
	var cerr C.tg_error
	if rc := C.tg_go_journal_replay(cdir, strict, key, &c, &cerr); rc != C.TG_OK {
		return ReplayReport{}, statusErr(rc, &cerr, "tg_journal_replay failed")
	}
	rep := ReplayReport{
		OK:          c.ok != 0,
		Records:     uint64(c.records),
		Replayed:    uint64(c.replayed),
		Decisions:   uint64(c.decisions),
		Transitions: uint64(c.transitions),
		Instances:   uint64(c.instances),
		Other:       uint64(c.other),
		Mismatches:  uint64(c.mismatches),
		Issues:      uint64(c.issues),
		Problem:     problemFrom(&c.error),
	}
	if c.mismatches > 0 {
		rep.FirstMismatch = &ReplayMismatch{
			Sequence:  uint64(c.mismatch_sequence),
			Segment:   uint64(c.mismatch_segment),
			Offset:    uint64(c.mismatch_offset),
			Component: ReplayComponent(c.mismatch_component),
			Instance:  uint32(c.mismatch_instance),
			Recorded:  C.GoString(&c.mismatch_recorded[0]),
			Replayed:  C.GoString(&c.mismatch_replayed[0]),
		}
	}
	if c.issues > 0 {
		rep.FirstIssue = &ReplayIssue{Sequence: uint64(c.issue_sequence), Message: C.GoString(&c.issue[0])}
	}
	return rep, nil
}

// DescribeInputs returns a record's inputs as a JSON object when they are
// replay inputs (written by the Record* methods), and false when they are
// the host's own bytes. Malformed replay inputs give an object with an
// "error" member.
func DescribeInputs(inputs []byte) (string, bool, error) {
	buf := make([]byte, 512)
	for {
		var n C.size_t
		rc := C.tg_go_journal_describe_inputs(bytesPtr(inputs), C.size_t(len(inputs)),
			(*C.uint8_t)(unsafe.Pointer(&buf[0])), C.size_t(len(buf)), &n)
		switch rc {
		case C.TG_OK:
			return string(buf[:n]), true, nil
		case C.TG_ENOTFOUND:
			return "", false, nil
		case C.TG_ETOOSMALL:
			if uint64(n) >= math.MaxInt32 {
				return "", false, &Error{Status: ErrRange, Message: "description too large"}
			}
			buf = make([]byte, int(n)+1)
			continue
		}
		return "", false, statusErr(rc, nil, "tg_journal_describe_inputs failed")
	}
}

// The journal's event callback from C (see events.go for the export).
func journalEvent(h C.uintptr_t, ev *C.tg_journal_event) {
	s, ok := cgo.Handle(h).Value().(*journalSink)
	if !ok || s.fn == nil {
		return
	}
	e := JournalEvent{
		Type:       JournalEventType(ev._type),
		Status:     Status(ev.status),
		Errno:      syscall.Errno(ev.error_number),
		Segment:    uint64(ev.segment),
		Offset:     uint64(ev.offset),
		Count:      uint64(ev.count),
		Sequence:   uint64(ev.sequence),
		RealtimeNs: uint64(ev.realtime_ns),
	}
	if ev.message != nil {
		e.Message = C.GoString(ev.message)
	}
	for i := range e.Head {
		e.Head[i] = byte(ev.head[i])
	}
	defer func() {
		if r := recover(); r != nil {
			s.pending.CompareAndSwap(nil, &panicValue{v: r})
		}
	}()
	s.fn(e)
}
