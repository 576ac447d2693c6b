package tollgate

/*
#include <stdlib.h>
#include <tollgate/tollgate.h>

// Keys cross as const uint8_t* rather than the header's const void*: cgo
// checks every unsafe.Pointer argument for Go pointers at run time, which
// costs more than some decisions, while a pointer to bytes needs no check.
static inline int tg_go_limiter_acquire(tg_limiter* lim, const uint8_t* key, size_t key_len,
                                        uint32_t tier, uint32_t cost, uint64_t now_ns,
                                        tg_limit_decision* out) {
  return tg_limiter_acquire(lim, key, key_len, tier, cost, now_ns, out);
}

static inline int tg_go_limiter_peek(tg_limiter* lim, const uint8_t* key, size_t key_len,
                                     uint32_t tier, uint32_t cost, uint64_t now_ns,
                                     tg_limit_decision* out) {
  return tg_limiter_peek(lim, key, key_len, tier, cost, now_ns, out);
}

static inline int tg_go_limiter_remaining(tg_limiter* lim, const uint8_t* key, size_t key_len,
                                          uint32_t tier, uint64_t now_ns, uint64_t* out) {
  return tg_limiter_remaining(lim, key, key_len, tier, now_ns, out);
}

static inline int tg_go_limiter_reserve(tg_limiter* lim, const uint8_t* key, size_t key_len,
                                        uint32_t tier, uint32_t cost, uint64_t now_ns,
                                        tg_reservation* res, tg_limit_decision* out) {
  return tg_limiter_reserve(lim, key, key_len, tier, cost, now_ns, res, out);
}

#cgo noescape tg_limiter_new
#cgo noescape tg_go_limiter_acquire
#cgo noescape tg_go_limiter_peek
#cgo noescape tg_go_limiter_remaining
#cgo noescape tg_go_limiter_reserve
#cgo noescape tg_limiter_cancel
#cgo noescape tg_limiter_acquire_many
#cgo noescape tg_limiter_get_multiplier
#cgo noescape tg_limiter_tier_index
#cgo noescape tg_limiter_stats_get
#cgo nocallback tg_limiter_new
#cgo nocallback tg_limiter_free
#cgo nocallback tg_go_limiter_acquire
#cgo nocallback tg_go_limiter_peek
#cgo nocallback tg_go_limiter_remaining
#cgo nocallback tg_go_limiter_reserve
#cgo nocallback tg_limiter_cancel
#cgo nocallback tg_limiter_acquire_many
#cgo nocallback tg_limiter_set_multiplier
#cgo nocallback tg_limiter_get_multiplier
#cgo nocallback tg_limiter_set_shadow
#cgo nocallback tg_limiter_tier_index
#cgo nocallback tg_limiter_stats_get
*/
import "C"

import (
	"fmt"
	"math"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"
)

// Tier is a named rate class of a [Limiter]: Rate tokens per second refill
// a bucket of Burst tokens. The emission interval is quantised to
// T = round(1e9 / (Rate * multiplier)) ns, so from a full bucket a window of
// t ns admits exactly Burst + floor(t / T) unit requests.
//
// A key has one bucket, whatever the tier: the tier of each request says
// how fast that bucket refills and how much it may hold for that request (an
// account moving from "retail" to "pro" keeps its state). Use distinct keys
// for separate budgets.
type Tier struct {
	// Name identifies the tier for TierIndex: 1..63 bytes, unique, no NUL.
	Name string
	// Rate is in tokens per second: finite, > 0 and <= 1e9.
	Rate float64
	// Burst is the bucket size in tokens, >= 1. A request costing more is
	// rejected with ReasonCostExceedsBurst.
	Burst uint32
}

// OnFull says what a [Limiter] does with a new key when its table is full
// and no idle bucket can be evicted.
type OnFull uint32

const (
	// OnFullReject rejects the request with ReasonCapacity (fail closed).
	OnFullReject OnFull = 0
	// OnFullOverflow decides the request against one bucket per tier shared
	// by every key that found no room.
	OnFullOverflow OnFull = 1
)

var (
	_ = [1]struct{}{}[int(OnFullReject)-C.TG_LIMITER_ON_FULL_REJECT]
	_ = [1]struct{}{}[int(OnFullOverflow)-C.TG_LIMITER_ON_FULL_OVERFLOW]
)

// LimiterOptions configures [NewLimiter]. The zero value of a field means
// the library's default.
type LimiterOptions struct {
	// Tiers are the rate classes, 1..64 of them, addressed by index in
	// Acquire. Empty: one tier "default" of 1000 tokens/s, burst 1000.
	Tiers []Tier
	// Capacity is the most keys held at once (1 .. 2^26); a new key beyond
	// it evicts an idle (full) bucket or is rejected (see OnFull). 0: 65536.
	Capacity uint64
	// OnFull is the policy when the key table is full. Default OnFullReject.
	OnFull OnFull
	// Shadow decides and counts but never rejects (see Decision.Shadow).
	Shadow bool
	// Multiplier scales every tier's rate (1e-6 .. 1e6). 0: 1.0.
	Multiplier float64
	// Parent, when set, must also admit every request: its bucket for the
	// empty key in the same tier index (tier 0 if it has fewer tiers) is
	// charged after this limiter admits, and so on up the parent's own
	// parents (up to 15 levels). When a level rejects, the tokens the levels
	// below took are given back (ReasonParent). The child keeps the parent
	// alive.
	Parent *Limiter
	// HashSeed seeds the hashing that places keys in the table (and so
	// decides which keys compete for room when it is full). 0: random. A
	// journal records the seed (Journal.RecordLimiterDefine), so a replay
	// places keys as this limiter did without setting it; set it to make
	// placement reproducible across runs.
	HashSeed uint64
}

// LimitReason says why a request was (or in shadow mode would have been)
// rejected.
type LimitReason int32

const (
	// ReasonNone: admitted.
	ReasonNone LimitReason = 0
	// ReasonRate: not enough tokens; retry after RetryAfterNs.
	ReasonRate LimitReason = 1
	// ReasonCostExceedsBurst: the cost is larger than the tier's burst and can
	// never be admitted; RetryAfterNs is RetryNever.
	ReasonCostExceedsBurst LimitReason = 2
	// ReasonCapacity: the key table is full and no bucket is idle.
	ReasonCapacity LimitReason = 3
	// ReasonParent: the parent limiter rejected; this limiter's tokens were
	// given back.
	ReasonParent LimitReason = 4
)

var (
	_ = [1]struct{}{}[int(ReasonNone)-C.TG_LIMIT_REASON_NONE]
	_ = [1]struct{}{}[int(ReasonRate)-C.TG_LIMIT_REASON_RATE]
	_ = [1]struct{}{}[int(ReasonCostExceedsBurst)-C.TG_LIMIT_REASON_COST_EXCEEDS_BURST]
	_ = [1]struct{}{}[int(ReasonCapacity)-C.TG_LIMIT_REASON_CAPACITY]
	_ = [1]struct{}{}[int(ReasonParent)-C.TG_LIMIT_REASON_PARENT]
)

// String returns a short lower-case name of the reason.
func (r LimitReason) String() string {
	switch r {
	case ReasonNone:
		return "none"
	case ReasonRate:
		return "rate"
	case ReasonCostExceedsBurst:
		return "cost-exceeds-burst"
	case ReasonCapacity:
		return "capacity"
	case ReasonParent:
		return "parent"
	}
	return "LimitReason(" + strconv.Itoa(int(r)) + ")"
}

// Decision is the outcome of one rate-limit decision. A rejection is a normal
// outcome, not an error.
type Decision struct {
	// Allowed is true when the request may pass (also when only shadow mode
	// let it pass).
	Allowed bool
	// Shadow is true when shadow mode admitted a request it would have
	// rejected; Reason and RetryAfterNs then say why it would have.
	Shadow bool
	// Reason is ReasonNone when admitted on merit.
	Reason LimitReason
	// RetryAfterNs is 0 when admitted, else the wait in ns before the same
	// request would be admitted absent other traffic, or RetryNever.
	RetryAfterNs uint64
	// Remaining is the whole number of tokens left in the key's bucket.
	Remaining uint64
}

// setFrom fills *o field by field: building a Decision value and copying
// it costs a store-forwarding stall per element in batch loops.
func (o *Decision) setFrom(d *C.tg_limit_decision) {
	o.Allowed = d.allowed != 0
	o.Shadow = d.flags&C.TG_LIMIT_FLAG_SHADOW != 0
	o.Reason = LimitReason(d.reason)
	o.RetryAfterNs = uint64(d.retry_after_ns)
	o.Remaining = uint64(d.remaining)
}

func decisionFrom(d *C.tg_limit_decision) Decision {
	return Decision{
		Allowed:      d.allowed != 0,
		Shadow:       d.flags&C.TG_LIMIT_FLAG_SHADOW != 0,
		Reason:       LimitReason(d.reason),
		RetryAfterNs: uint64(d.retry_after_ns),
		Remaining:    uint64(d.remaining),
	}
}

// LimiterStats are a Limiter's counters since creation, read one by one
// (not one atomic snapshot).
type LimiterStats struct {
	// Admitted counts decisions that returned Allowed (shadowed ones too).
	Admitted uint64
	// Rejected counts decisions that returned !Allowed.
	Rejected uint64
	// ShadowRejected counts requests admitted only because of shadow mode.
	ShadowRejected uint64
	// CapacityRejected counts rejections (or shadowed ones) for table capacity.
	CapacityRejected uint64
	// Evictions counts idle buckets evicted to make room for new keys.
	Evictions uint64
	// Keys is the number of keys in the table now.
	Keys uint64
	// Capacity is the table's size in slots (at least the configured capacity).
	Capacity uint64
	// Cancelled counts reservations given back.
	Cancelled uint64
}

// Limiter is a keyed GCRA rate limiter: one token bucket per key (any
// bytes), judged by the rate and burst of the request's tier, in a table of
// bounded capacity. Its methods are safe for
// concurrent use; decisions are lock-free and allocation-free in the
// library. Create one with [NewLimiter] and release it with Close.
type Limiter struct {
	g       guard
	h       *C.tg_limiter
	tiers   uint32
	parent  *Limiter
	scratch atomic.Pointer[limiterScratch]
}

// NewLimiter creates a limiter. Invalid options give an error wrapping
// ErrInvalid, ErrRange or ErrVersion with the library's explanation.
func NewLimiter(o LimiterOptions) (*Limiter, error) {
	if err := CheckVersion(); err != nil {
		return nil, err
	}
	var opts C.tg_limiter_options
	C.tg_limiter_options_init(&opts)
	tierCount := uint32(1)
	if n := len(o.Tiers); n > 0 {
		if n > 1<<16 {
			return nil, invalid("%d tiers; a limiter has 1..64", n)
		}
		for i, t := range o.Tiers {
			if strings.IndexByte(t.Name, 0) >= 0 {
				return nil, invalid("tier %d: name contains a NUL byte", i)
			}
		}
		// The tier array holds pointers, so it lives in C memory.
		mem := C.calloc(C.size_t(n), C.size_t(unsafe.Sizeof(C.tg_tier{})))
		if mem == nil {
			return nil, &Error{Status: ErrNoMem, Message: "allocating tiers"}
		}
		defer C.free(mem)
		ctiers := unsafe.Slice((*C.tg_tier)(mem), n)
		for i, t := range o.Tiers {
			name := C.CString(t.Name)
			defer C.free(unsafe.Pointer(name))
			ctiers[i].name = name
			ctiers[i].rate = C.double(t.Rate)
			ctiers[i].burst = C.uint32_t(t.Burst)
		}
		opts.tiers = &ctiers[0]
		opts.tier_count = C.uint32_t(n)
		tierCount = uint32(n)
	} else if opts.tier_count > 0 {
		tierCount = uint32(opts.tier_count)
	}
	if o.Capacity != 0 {
		opts.capacity = C.uint64_t(o.Capacity)
	}
	opts.on_full = C.uint32_t(o.OnFull)
	if o.Shadow {
		opts.shadow = 1
	}
	if o.Multiplier != 0 {
		opts.multiplier = C.double(o.Multiplier)
	}
	opts.hash_seed = C.uint64_t(o.HashSeed)
	if o.Parent != nil {
		if err := o.Parent.enter(); err != nil {
			return nil, invalid("the parent limiter is closed")
		}
		defer o.Parent.leave()
		opts.parent = o.Parent.h
	}
	var cerr C.tg_error
	var h *C.tg_limiter
	if rc := C.tg_limiter_new(&opts, &h, &cerr); rc != C.TG_OK {
		return nil, statusErr(rc, &cerr, "tg_limiter_new failed")
	}
	l := &Limiter{h: h, tiers: tierCount, parent: o.Parent}
	runtime.SetFinalizer(l, (*Limiter).Close)
	return l, nil
}

// Close releases the limiter. It is idempotent and safe to call while
// other goroutines use the limiter: their calls finish, later calls return
// ErrClosed, and the memory goes when the last call returns (and, for a
// parent, when its last child is released).
func (l *Limiter) Close() error {
	if l == nil {
		return nil
	}
	if l.g.close() {
		l.free()
	}
	runtime.SetFinalizer(l, nil)
	return nil
}

func (l *Limiter) free() {
	C.tg_limiter_free(l.h)
	l.parent = nil
	handlesFreed.Add(1)
}

// enter registers a call on the handle; on error the call must not proceed.
func (l *Limiter) enter() error {
	if l == nil {
		return errNil
	}
	if !l.g.enter() {
		l.leave()
		return ErrClosed
	}
	return nil
}

func (l *Limiter) leave() {
	if l.g.leave() {
		l.free()
	}
}

func (l *Limiter) checkArgs(tier, cost uint32) error {
	if cost == 0 {
		return invalid("cost must be >= 1")
	}
	if tier >= l.tiers {
		return invalid("tier %d out of range (the limiter has %d)", tier, l.tiers)
	}
	return nil
}

func bytesPtr(b []byte) *C.uint8_t {
	if len(b) == 0 {
		return nil
	}
	return (*C.uint8_t)(unsafe.SliceData(b))
}

// stringPtr points at a string's bytes without copying them. The library
// only reads keys, so this is safe even for strings in read-only memory.
func stringPtr(s string) *C.uint8_t {
	if len(s) == 0 {
		return nil
	}
	return (*C.uint8_t)(unsafe.StringData(s))
}

func (l *Limiter) acquire(key *C.uint8_t, n int, tier, cost uint32, nowNs uint64) (Decision, error) {
	if err := l.enter(); err != nil {
		return Decision{}, err
	}
	if err := l.checkArgs(tier, cost); err != nil {
		l.leave()
		return Decision{}, err
	}
	var d C.tg_limit_decision
	rc := C.tg_go_limiter_acquire(l.h, key, C.size_t(n), C.uint32_t(tier), C.uint32_t(cost), C.uint64_t(nowNs), &d)
	l.leave()
	if rc != C.TG_OK {
		return Decision{}, statusErr(rc, nil, "tg_limiter_acquire failed")
	}
	return decisionFrom(&d), nil
}

// Acquire takes cost tokens from key's bucket in tier at nowNs (monotonic
// ns) and says whether the request may pass. A rejection is a Decision with
// Allowed false, not an error; errors are bad arguments: cost 0, tier out of
// range, a nil or closed limiter. The key may be empty (one bucket like any
// other); the library does not keep it.
func (l *Limiter) Acquire(key []byte, tier, cost uint32, nowNs uint64) (Decision, error) {
	return l.acquire(bytesPtr(key), len(key), tier, cost, nowNs)
}

// AcquireString is Acquire with a string key, passed without copying.
func (l *Limiter) AcquireString(key string, tier, cost uint32, nowNs uint64) (Decision, error) {
	return l.acquire(stringPtr(key), len(key), tier, cost, nowNs)
}

func (l *Limiter) peek(key *C.uint8_t, n int, tier, cost uint32, nowNs uint64) (Decision, error) {
	if err := l.enter(); err != nil {
		return Decision{}, err
	}
	if err := l.checkArgs(tier, cost); err != nil {
		l.leave()
		return Decision{}, err
	}
	var d C.tg_limit_decision
	rc := C.tg_go_limiter_peek(l.h, key, C.size_t(n), C.uint32_t(tier), C.uint32_t(cost), C.uint64_t(nowNs), &d)
	l.leave()
	if rc != C.TG_OK {
		return Decision{}, statusErr(rc, nil, "tg_limiter_peek failed")
	}
	return decisionFrom(&d), nil
}

// Peek says what Acquire would decide at nowNs without consuming anything,
// inserting the key or evicting another.
func (l *Limiter) Peek(key []byte, tier, cost uint32, nowNs uint64) (Decision, error) {
	return l.peek(bytesPtr(key), len(key), tier, cost, nowNs)
}

// PeekString is Peek with a string key, passed without copying.
func (l *Limiter) PeekString(key string, tier, cost uint32, nowNs uint64) (Decision, error) {
	return l.peek(stringPtr(key), len(key), tier, cost, nowNs)
}

func (l *Limiter) remaining(key *C.uint8_t, n int, tier uint32, nowNs uint64) (uint64, error) {
	if err := l.enter(); err != nil {
		return 0, err
	}
	if tier >= l.tiers {
		l.leave()
		return 0, invalid("tier %d out of range (the limiter has %d)", tier, l.tiers)
	}
	var out C.uint64_t
	rc := C.tg_go_limiter_remaining(l.h, key, C.size_t(n), C.uint32_t(tier), C.uint64_t(nowNs), &out)
	l.leave()
	if rc != C.TG_OK {
		return 0, statusErr(rc, nil, "tg_limiter_remaining failed")
	}
	return uint64(out), nil
}

// Remaining returns the whole tokens available to key in tier at nowNs
// (Burst for a key the limiter does not hold). It changes nothing.
func (l *Limiter) Remaining(key []byte, tier uint32, nowNs uint64) (uint64, error) {
	return l.remaining(bytesPtr(key), len(key), tier, nowNs)
}

// RemainingString is Remaining with a string key, passed without copying.
func (l *Limiter) RemainingString(key string, tier uint32, nowNs uint64) (uint64, error) {
	return l.remaining(stringPtr(key), len(key), tier, nowNs)
}

// Reservation records what an admitted Reserve took, so that Cancel can
// give it back (for example when the order was finally not sent).
type Reservation struct {
	// Decision is the decision Reserve made.
	Decision Decision
	l        *Limiter
	raw      C.tg_reservation
	done     bool
}

func (l *Limiter) reserve(key *C.uint8_t, n int, tier, cost uint32, nowNs uint64) (Reservation, error) {
	if err := l.enter(); err != nil {
		return Reservation{}, err
	}
	if err := l.checkArgs(tier, cost); err != nil {
		l.leave()
		return Reservation{}, err
	}
	r := Reservation{l: l}
	var d C.tg_limit_decision
	rc := C.tg_go_limiter_reserve(l.h, key, C.size_t(n), C.uint32_t(tier), C.uint32_t(cost), C.uint64_t(nowNs), &r.raw, &d)
	l.leave()
	if rc != C.TG_OK {
		return Reservation{}, statusErr(rc, nil, "tg_limiter_reserve failed")
	}
	r.Decision = decisionFrom(&d)
	return r, nil
}

// Reserve is Acquire that also returns what was taken, for Cancel. When the
// request is rejected the reservation holds nothing and Cancel does nothing.
func (l *Limiter) Reserve(key []byte, tier, cost uint32, nowNs uint64) (Reservation, error) {
	return l.reserve(bytesPtr(key), len(key), tier, cost, nowNs)
}

// ReserveString is Reserve with a string key, passed without copying.
func (l *Limiter) ReserveString(key string, tier, cost uint32, nowNs uint64) (Reservation, error) {
	return l.reserve(stringPtr(key), len(key), tier, cost, nowNs)
}

// Cancel gives back the tokens the reservation took, from the key's bucket
// and the parent's, at nowNs. A bucket never holds more than its burst:
// tokens that would have refilled by nowNs anyway are not added twice.
// Cancel gives back at most once per Reservation value; later calls, and
// calls on a rejected or zero Reservation, do nothing. It is not safe to
// call Cancel on one Reservation value from several goroutines at once, nor
// to cancel copies of one Reservation (each would give back).
func (r *Reservation) Cancel(nowNs uint64) error {
	if r == nil {
		return errNil
	}
	if r.l == nil {
		return nil
	}
	if err := r.l.enter(); err != nil {
		return err
	}
	if r.done || !r.Decision.Allowed {
		r.l.leave()
		return nil
	}
	rc := C.tg_limiter_cancel(r.l.h, &r.raw, C.uint64_t(nowNs))
	r.l.leave()
	if rc != C.TG_OK {
		return statusErr(rc, nil, "tg_limiter_cancel failed")
	}
	r.done = true
	return nil
}

// limiterScratch holds the buffers of one batch call: the packed keys,
// their offsets and the decisions in the library's layout. None holds a Go
// pointer, so all may be passed to C.
type limiterScratch struct {
	keys []byte
	offs []uint32
	decs []C.tg_limit_decision
}

var limiterScratchPool = sync.Pool{New: func() any { return new(limiterScratch) }}

// maxCachedScratch bounds the batch buffers a Limiter keeps between calls.
const maxCachedScratch = 1 << 20

// getScratch takes this limiter's cached buffers (so a warm single caller
// never allocates) or, when another goroutine holds them, pooled ones.
func (l *Limiter) getScratch() *limiterScratch {
	if s := l.scratch.Swap(nil); s != nil {
		return s
	}
	return limiterScratchPool.Get().(*limiterScratch)
}

func (l *Limiter) putScratch(s *limiterScratch) {
	if cap(s.keys) > maxCachedScratch || cap(s.decs) > maxCachedScratch/32 {
		return
	}
	if !l.scratch.CompareAndSwap(nil, s) {
		limiterScratchPool.Put(s)
	}
}

func (s *limiterScratch) decisions(n int) []C.tg_limit_decision {
	if cap(s.decs) < n {
		s.decs = make([]C.tg_limit_decision, n)
	}
	return s.decs[:n]
}

// oneByte stands in for the key buffer of a batch whose keys are all empty,
// so the library never sees a NULL buffer.
var oneByte [1]byte

// AcquireMany decides len(keys) requests at one nowNs with one call into
// the library. tiers and costs have one entry per key, or are empty for
// tier 0 and cost 1; out must have at least len(keys) entries and receives
// the decisions in order. The requests are decided one after another, so
// the result equals len(keys) calls of Acquire. Arguments are validated
// before any decision: on error nothing was consumed. The keys are copied
// into a reused buffer, so a warm call does not allocate.
func (l *Limiter) AcquireMany(keys [][]byte, tiers, costs []uint32, nowNs uint64, out []Decision) error {
	if err := l.enter(); err != nil {
		return err
	}
	defer l.leave()
	n := len(keys)
	if err := batchLengths(n, tiers, costs, out); err != nil {
		return err
	}
	if n == 0 {
		return nil
	}
	s := l.getScratch()
	defer l.putScratch(s)
	total := 0
	for _, k := range keys {
		total += len(k)
	}
	if uint64(total) > math.MaxUint32 {
		return &Error{Status: ErrRange, Message: "the keys of one batch must total less than 4 GiB"}
	}
	if cap(s.keys) < total {
		s.keys = make([]byte, 0, total)
	}
	if cap(s.offs) < n+1 {
		s.offs = make([]uint32, 0, n+1)
	}
	kb := s.keys[:0]
	offs := append(s.offs[:0], 0)
	for _, k := range keys {
		kb = append(kb, k...)
		offs = append(offs, uint32(len(kb)))
	}
	s.keys, s.offs = kb, offs
	return l.acquireMany(kb, offs, n, tiers, costs, nowNs, out, s)
}

// AcquirePacked is AcquireMany for keys the caller already holds packed:
// key i is keys[offsets[i]:offsets[i+1]], so offsets has one more entry than
// there are requests and must be non-decreasing and within keys. Nothing is
// copied on the way in.
func (l *Limiter) AcquirePacked(keys []byte, offsets []uint32, tiers, costs []uint32, nowNs uint64, out []Decision) error {
	if err := l.enter(); err != nil {
		return err
	}
	defer l.leave()
	if len(offsets) == 0 {
		return invalid("offsets must have one entry more than there are requests")
	}
	n := len(offsets) - 1
	if err := batchLengths(n, tiers, costs, out); err != nil {
		return err
	}
	prev := offsets[0]
	for i, o := range offsets {
		if o < prev || uint64(o) > uint64(len(keys)) {
			return invalid("offsets[%d] = %d: offsets must be non-decreasing and <= len(keys) = %d", i, o, len(keys))
		}
		prev = o
	}
	if n == 0 {
		return nil
	}
	s := l.getScratch()
	defer l.putScratch(s)
	return l.acquireMany(keys, offsets, n, tiers, costs, nowNs, out, s)
}

func batchLengths(n int, tiers, costs []uint32, out []Decision) error {
	if len(tiers) != 0 && len(tiers) != n {
		return invalid("len(tiers) = %d, want 0 or %d", len(tiers), n)
	}
	if len(costs) != 0 && len(costs) != n {
		return invalid("len(costs) = %d, want 0 or %d", len(costs), n)
	}
	if len(out) < n {
		return invalid("len(out) = %d, want at least %d", len(out), n)
	}
	return nil
}

// acquireMany crosses into the library once for n requests; the caller
// holds the guard.
func (l *Limiter) acquireMany(keys []byte, offs []uint32, n int, tiers, costs []uint32, nowNs uint64, out []Decision, s *limiterScratch) error {
	kp := (*C.uint8_t)(unsafe.Pointer(&oneByte[0]))
	if len(keys) > 0 {
		kp = (*C.uint8_t)(unsafe.Pointer(unsafe.SliceData(keys)))
	}
	var tp, cp *C.uint32_t
	if len(tiers) > 0 {
		tp = (*C.uint32_t)(unsafe.Pointer(unsafe.SliceData(tiers)))
	}
	if len(costs) > 0 {
		cp = (*C.uint32_t)(unsafe.Pointer(unsafe.SliceData(costs)))
	}
	decs := s.decisions(n)
	rc := C.tg_limiter_acquire_many(l.h, kp, (*C.uint32_t)(unsafe.Pointer(unsafe.SliceData(offs))), C.size_t(n),
		tp, cp, C.uint64_t(nowNs), &decs[0])
	if rc != C.TG_OK {
		return l.explainBatch(rc, tiers, costs)
	}
	out = out[:n]
	for i := range out {
		out[i].setFrom(&decs[i])
	}
	return nil
}

// explainBatch names the first bad entry of a batch the library refused.
func (l *Limiter) explainBatch(rc C.int, tiers, costs []uint32) error {
	for i, t := range tiers {
		if t >= l.tiers {
			return &Error{Status: Status(rc), Message: fmt.Sprintf("tiers[%d] = %d out of range (the limiter has %d)", i, t, l.tiers)}
		}
	}
	for i, c := range costs {
		if c == 0 {
			return &Error{Status: Status(rc), Message: fmt.Sprintf("costs[%d] = 0; costs must be >= 1", i)}
		}
	}
	return statusErr(rc, nil, "tg_limiter_acquire_many failed")
}

// SetMultiplier scales every tier's rate by m (1e-6 .. 1e6), for example
// 0.5 in a fast market, from nowNs on. Buckets keep the tokens they hold at
// nowNs (a change never creates or destroys tokens); only the refill speed
// changes, for decisions that start after SetMultiplier returns.
func (l *Limiter) SetMultiplier(m float64, nowNs uint64) error {
	if err := l.enter(); err != nil {
		return err
	}
	rc := C.tg_limiter_set_multiplier(l.h, C.double(m), C.uint64_t(nowNs))
	l.leave()
	if rc != C.TG_OK {
		return statusErr(rc, nil, fmt.Sprintf("multiplier %g: must be finite and within 1e-6 .. 1e6", m))
	}
	return nil
}

// Multiplier returns the current rate multiplier.
func (l *Limiter) Multiplier() (float64, error) {
	if err := l.enter(); err != nil {
		return 0, err
	}
	var m C.double
	rc := C.tg_limiter_get_multiplier(l.h, &m)
	l.leave()
	if rc != C.TG_OK {
		return 0, statusErr(rc, nil, "tg_limiter_get_multiplier failed")
	}
	return float64(m), nil
}

// SetShadow turns shadow mode on or off: in shadow mode every request is
// admitted, and those that would have been rejected are flagged and counted.
func (l *Limiter) SetShadow(on bool) error {
	if err := l.enter(); err != nil {
		return err
	}
	v := C.int(0)
	if on {
		v = 1
	}
	rc := C.tg_limiter_set_shadow(l.h, v)
	l.leave()
	if rc != C.TG_OK {
		return statusErr(rc, nil, "tg_limiter_set_shadow failed")
	}
	return nil
}

// TierIndex returns the index of the tier called name, or an error
// wrapping ErrNotFound.
func (l *Limiter) TierIndex(name string) (uint32, error) {
	if err := l.enter(); err != nil {
		return 0, err
	}
	defer l.leave()
	if strings.IndexByte(name, 0) >= 0 {
		return 0, invalid("tier name contains a NUL byte")
	}
	if len(name) > 63 {
		return 0, &Error{Status: ErrNotFound, Message: "no tier called " + strconv.Quote(name)}
	}
	var buf [64]byte
	copy(buf[:], name)
	var idx C.uint32_t
	rc := C.tg_limiter_tier_index(l.h, (*C.char)(unsafe.Pointer(&buf[0])), &idx)
	if rc != C.TG_OK {
		return 0, statusErr(rc, nil, "no tier called "+strconv.Quote(name))
	}
	return uint32(idx), nil
}

// TierCount returns the number of tiers.
func (l *Limiter) TierCount() (uint32, error) {
	if err := l.enter(); err != nil {
		return 0, err
	}
	l.leave()
	return l.tiers, nil
}

// Stats returns the limiter's counters.
func (l *Limiter) Stats() (LimiterStats, error) {
	if err := l.enter(); err != nil {
		return LimiterStats{}, err
	}
	var s C.tg_limiter_stats
	rc := C.tg_limiter_stats_get(l.h, &s)
	l.leave()
	if rc != C.TG_OK {
		return LimiterStats{}, statusErr(rc, nil, "tg_limiter_stats_get failed")
	}
	return LimiterStats{
		Admitted:         uint64(s.admitted),
		Rejected:         uint64(s.rejected),
		ShadowRejected:   uint64(s.shadow_rejected),
		CapacityRejected: uint64(s.capacity_rejected),
		Evictions:        uint64(s.evictions),
		Keys:             uint64(s.keys),
		Capacity:         uint64(s.capacity),
		Cancelled:        uint64(s.cancelled),
	}, nil
}
