package tollgate

/*
#include <stdint.h>
#include <tollgate/tollgate.h>

// tg_breaker_acquire and tg_breaker_record may call back into Go (state
// change events), so cgo cannot let pointers to Go stack variables reach
// them without moving those variables to the heap. These wrappers take and
// return permits by value instead, which keeps the hot path allocation-free.
typedef struct tg_go_permit_result {
  int rc;
  tg_breaker_permit permit;
} tg_go_permit_result;

static inline tg_go_permit_result tg_go_breaker_acquire(tg_breaker* b, uint64_t now_ns) {
  tg_go_permit_result r;
  r.rc = tg_breaker_acquire(b, now_ns, &r.permit);
  return r;
}

static inline int tg_go_breaker_record(tg_breaker* b, tg_breaker_permit p, int outcome,
                                       uint64_t latency_ns, uint64_t now_ns) {
  return tg_breaker_record(b, &p, outcome, latency_ns, now_ns);
}

#cgo noescape tg_breaker_options_init
#cgo noescape tg_breaker_new
#cgo noescape tg_breaker_state
#cgo noescape tg_breaker_stats_get
#cgo nocallback tg_breaker_options_init
#cgo nocallback tg_breaker_new
#cgo nocallback tg_breaker_free
#cgo nocallback tg_breaker_state
#cgo nocallback tg_breaker_stats_get
*/
import "C"

import (
	"fmt"
	"math"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// State is a circuit breaker's state.
type State int32

const (
	// StateClosed: calls pass; outcomes feed the window.
	StateClosed State = 0
	// StateOpen: calls are rejected until the open duration has passed.
	StateOpen State = 1
	// StateHalfOpen: a fixed number of probe calls pass; their outcomes close
	// the breaker or open it again.
	StateHalfOpen State = 2
	// StateForcedOpen is the kill switch: every call is rejected.
	StateForcedOpen State = 3
	// StateForcedClosed admits every call and keeps the window.
	StateForcedClosed State = 4
	// StateDisabled admits every call and records nothing.
	StateDisabled State = 5
	// StateMetricsOnly admits every call and counts the trips it would take.
	StateMetricsOnly State = 6
)

var (
	_ = [1]struct{}{}[int(StateClosed)-C.TG_BREAKER_CLOSED]
	_ = [1]struct{}{}[int(StateOpen)-C.TG_BREAKER_OPEN]
	_ = [1]struct{}{}[int(StateHalfOpen)-C.TG_BREAKER_HALF_OPEN]
	_ = [1]struct{}{}[int(StateForcedOpen)-C.TG_BREAKER_FORCED_OPEN]
	_ = [1]struct{}{}[int(StateForcedClosed)-C.TG_BREAKER_FORCED_CLOSED]
	_ = [1]struct{}{}[int(StateDisabled)-C.TG_BREAKER_DISABLED]
	_ = [1]struct{}{}[int(StateMetricsOnly)-C.TG_BREAKER_METRICS_ONLY]
)

// String returns a short lower-case name of the state.
func (s State) String() string {
	switch s {
	case StateClosed:
		return "closed"
	case StateOpen:
		return "open"
	case StateHalfOpen:
		return "half-open"
	case StateForcedOpen:
		return "forced-open"
	case StateForcedClosed:
		return "forced-closed"
	case StateDisabled:
		return "disabled"
	case StateMetricsOnly:
		return "metrics-only"
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// BreakerReason says why a breaker rejected a call.
type BreakerReason int32

const (
	// BreakerReasonNone: the call may start.
	BreakerReasonNone BreakerReason = 0
	// BreakerReasonOpen: the breaker is open, or half-open with every probe
	// taken.
	BreakerReasonOpen BreakerReason = 1
	// BreakerReasonForcedOpen: the kill switch is on.
	BreakerReasonForcedOpen BreakerReason = 2
	// BreakerReasonBulkheadFull: MaxInFlight calls are in flight.
	BreakerReasonBulkheadFull BreakerReason = 3
)

var (
	_ = [1]struct{}{}[int(BreakerReasonNone)-C.TG_BREAKER_REASON_NONE]
	_ = [1]struct{}{}[int(BreakerReasonOpen)-C.TG_BREAKER_REASON_OPEN]
	_ = [1]struct{}{}[int(BreakerReasonForcedOpen)-C.TG_BREAKER_REASON_FORCED_OPEN]
	_ = [1]struct{}{}[int(BreakerReasonBulkheadFull)-C.TG_BREAKER_REASON_BULKHEAD_FULL]
)

// String returns a short lower-case name of the reason.
func (r BreakerReason) String() string {
	switch r {
	case BreakerReasonNone:
		return "none"
	case BreakerReasonOpen:
		return "open"
	case BreakerReasonForcedOpen:
		return "forced-open"
	case BreakerReasonBulkheadFull:
		return "bulkhead-full"
	}
	return "BreakerReason(" + strconv.Itoa(int(r)) + ")"
}

// Outcome is how a call admitted by a breaker ended.
type Outcome int32

const (
	// OutcomeSuccess: the call succeeded (it may still count as slow).
	OutcomeSuccess Outcome = 0
	// OutcomeFailure: the call failed.
	OutcomeFailure Outcome = 1
	// OutcomeIgnored: the call was never made or the client cancelled; it
	// releases the bulkhead slot and is not counted.
	OutcomeIgnored Outcome = 2
)

var (
	_ = [1]struct{}{}[int(OutcomeSuccess)-C.TG_OUTCOME_SUCCESS]
	_ = [1]struct{}{}[int(OutcomeFailure)-C.TG_OUTCOME_FAILURE]
	_ = [1]struct{}{}[int(OutcomeIgnored)-C.TG_OUTCOME_IGNORED]
	// Outcome slices are passed to the library as int32_t arrays.
	_ = [1]struct{}{}[unsafe.Sizeof(Outcome(0))-unsafe.Sizeof(C.int32_t(0))]
)

// String returns a short lower-case name of the outcome.
func (o Outcome) String() string {
	switch o {
	case OutcomeSuccess:
		return "success"
	case OutcomeFailure:
		return "failure"
	case OutcomeIgnored:
		return "ignored"
	}
	return "Outcome(" + strconv.Itoa(int(o)) + ")"
}

// WindowType selects the breaker's sliding window.
type WindowType uint32

const (
	// WindowCount keeps the last WindowSize calls.
	WindowCount WindowType = 0
	// WindowTime keeps the last WindowSize buckets of BucketWidth each.
	WindowTime WindowType = 1
)

var (
	_ = [1]struct{}{}[int(WindowCount)-C.TG_WINDOW_COUNT]
	_ = [1]struct{}{}[int(WindowTime)-C.TG_WINDOW_TIME]
)

// BreakerOptions configures [NewBreaker]; it mirrors tg_breaker_options.
// The zero value of a field means the library's default, which
// [DefaultBreakerOptions] shows.
type BreakerOptions struct {
	// WindowType is WindowCount (default) or WindowTime.
	WindowType WindowType
	// WindowSize is calls (1..65536) or buckets (1..256). Default 100.
	WindowSize uint32
	// MinimumCalls is the number of calls the window needs before rates are
	// judged, >= 1. Default 20.
	MinimumCalls uint32
	// BucketWidth is the width of one bucket of a time window. Default 1s.
	BucketWidth time.Duration
	// FailureRateThreshold, a percentage in (0, 100], opens the breaker when
	// reached. Default 50.
	FailureRateThreshold float64
	// SlowRateThreshold, a percentage in (0, 100], opens the breaker when the
	// share of slow calls reaches it. Default 100.
	SlowRateThreshold float64
	// SlowCallDuration: a call at least this long is slow. Default 1s.
	SlowCallDuration time.Duration
	// OpenDuration is how long the breaker first stays open. Default 1s.
	OpenDuration time.Duration
	// BackoffMultiplier (>= 1) grows the open duration on each consecutive
	// opening. Default 1 (no backoff).
	BackoffMultiplier float64
	// MaxOpenDuration caps the grown open duration. Default 60s.
	MaxOpenDuration time.Duration
	// HalfOpenProbes is the number of calls let through when half-open,
	// 1..1024. Default 5.
	HalfOpenProbes uint32
	// MaxInFlight bounds calls in flight (the bulkhead); 0 is unbounded.
	MaxInFlight uint32
	// MaxHalfOpenDuration: a half-open breaker whose probes have not all
	// finished within it opens again. 0 is unbounded.
	MaxHalfOpenDuration time.Duration
}

// DefaultBreakerOptions returns the library's defaults, every field set.
func DefaultBreakerOptions() BreakerOptions {
	var c C.tg_breaker_options
	C.tg_breaker_options_init(&c)
	return BreakerOptions{
		WindowType:           WindowType(c.window_type),
		WindowSize:           uint32(c.window_size),
		MinimumCalls:         uint32(c.minimum_calls),
		BucketWidth:          nsDuration(uint64(c.bucket_ns)),
		FailureRateThreshold: float64(c.failure_rate_threshold),
		SlowRateThreshold:    float64(c.slow_rate_threshold),
		SlowCallDuration:     nsDuration(uint64(c.slow_call_ns)),
		OpenDuration:         nsDuration(uint64(c.open_ns)),
		BackoffMultiplier:    float64(c.backoff_multiplier),
		MaxOpenDuration:      nsDuration(uint64(c.max_open_ns)),
		HalfOpenProbes:       uint32(c.half_open_probes),
		MaxInFlight:          uint32(c.max_in_flight),
		MaxHalfOpenDuration:  nsDuration(uint64(c.max_half_open_ns)),
	}
}

func nsDuration(ns uint64) time.Duration {
	if ns > math.MaxInt64 {
		return math.MaxInt64
	}
	return time.Duration(ns)
}

// Permit is a breaker's answer to Acquire. Pass every allowed permit back to
// Record exactly once; recording a rejected permit does nothing.
type Permit struct {
	// Allowed is true when the call may start.
	Allowed bool
	// Reason is BreakerReasonNone when allowed.
	Reason BreakerReason
	// State is the breaker's state at the time of the decision.
	State State
	// RetryAfterNs, when rejected because open, is the time until the
	// breaker goes half-open.
	RetryAfterNs uint64
	token        uint64
}

func permitFrom(p *C.tg_breaker_permit) Permit {
	return Permit{
		Allowed:      p.allowed != 0,
		Reason:       BreakerReason(p.reason),
		State:        State(p.state),
		RetryAfterNs: uint64(p.retry_after_ns),
		token:        uint64(p.token),
	}
}

// setFrom fills *o field by field (see Decision.setFrom).
func (o *Permit) setFrom(p *C.tg_breaker_permit) {
	o.Allowed = p.allowed != 0
	o.Reason = BreakerReason(p.reason)
	o.State = State(p.state)
	o.RetryAfterNs = uint64(p.retry_after_ns)
	o.token = uint64(p.token)
}

func (p *Permit) toC(c *C.tg_breaker_permit) {
	c.token = C.uint64_t(p.token)
	c.allowed = 0
	if p.Allowed {
		c.allowed = 1
	}
	c.reason = C.int32_t(p.Reason)
	c.state = C.int32_t(p.State)
	c.reserved = 0
	c.retry_after_ns = C.uint64_t(p.RetryAfterNs)
}

// Event is a breaker state change, passed to the OnEvent callback.
type Event struct {
	// From is the state left.
	From State
	// To is the state entered.
	To State
	// NowNs is the time of the change.
	NowNs uint64
	// FailureRate is the window's failure percentage at the change, or -1 if
	// unknown.
	FailureRate float64
	// SlowRate is the window's slow-call percentage, or -1 if unknown.
	SlowRate float64
	// OpenNs is the open duration chosen when To is StateOpen, else 0.
	OpenNs uint64
}

// BreakerStats are a Breaker's counters since creation and its current
// window, read one by one (not one atomic snapshot).
type BreakerStats struct {
	// Admitted counts permits that allowed a call.
	Admitted uint64
	// Rejected counts permits refused (open, forced open or bulkhead).
	Rejected uint64
	// BulkheadRejected counts permits refused because the bulkhead was full.
	BulkheadRejected uint64
	// Successes counts calls recorded as OutcomeSuccess.
	Successes uint64
	// Failures counts calls recorded as OutcomeFailure.
	Failures uint64
	// SlowCalls counts calls at least SlowCallDuration long.
	SlowCalls uint64
	// Ignored counts calls recorded as OutcomeIgnored.
	Ignored uint64
	// Transitions counts state changes.
	Transitions uint64
	// WouldOpen counts trips not taken in StateMetricsOnly.
	WouldOpen uint64
	// InFlight is the number of bulkhead slots held now.
	InFlight uint32
	// State is the current state.
	State State
	// FailureRate is the failure percentage over the window, -1 below
	// MinimumCalls.
	FailureRate float64
	// SlowRate is the slow-call percentage, -1 below MinimumCalls.
	SlowRate float64
	// WindowCalls is the number of calls counted in the window now.
	WindowCalls uint64
}

// Breaker is a circuit breaker with a bulkhead, one per upstream or venue.
// Its methods are safe for concurrent use; Acquire and Record are lock-free
// and allocation-free in the library. Create one with [NewBreaker] and
// release it with Close.
type Breaker struct {
	g       guard
	h       *C.tg_breaker
	sink    atomic.Pointer[eventSink]
	scratch atomic.Pointer[breakerScratch]
	mu      sync.Mutex // serialises OnEvent
}

// NewBreaker creates a breaker in StateClosed. Invalid options give an
// error wrapping ErrInvalid, ErrRange or ErrVersion with the library's
// explanation.
func NewBreaker(o BreakerOptions) (*Breaker, error) {
	if err := CheckVersion(); err != nil {
		return nil, err
	}
	var c C.tg_breaker_options
	C.tg_breaker_options_init(&c)
	c.window_type = C.uint32_t(o.WindowType)
	if o.WindowSize != 0 {
		c.window_size = C.uint32_t(o.WindowSize)
	}
	if o.MinimumCalls != 0 {
		c.minimum_calls = C.uint32_t(o.MinimumCalls)
	}
	if o.FailureRateThreshold != 0 {
		c.failure_rate_threshold = C.double(o.FailureRateThreshold)
	}
	if o.SlowRateThreshold != 0 {
		c.slow_rate_threshold = C.double(o.SlowRateThreshold)
	}
	if o.BackoffMultiplier != 0 {
		c.backoff_multiplier = C.double(o.BackoffMultiplier)
	}
	if o.HalfOpenProbes != 0 {
		c.half_open_probes = C.uint32_t(o.HalfOpenProbes)
	}
	c.max_in_flight = C.uint32_t(o.MaxInFlight)
	durations := []struct {
		name string
		d    time.Duration
		dst  *C.uint64_t
	}{
		{"BucketWidth", o.BucketWidth, &c.bucket_ns},
		{"SlowCallDuration", o.SlowCallDuration, &c.slow_call_ns},
		{"OpenDuration", o.OpenDuration, &c.open_ns},
		{"MaxOpenDuration", o.MaxOpenDuration, &c.max_open_ns},
		{"MaxHalfOpenDuration", o.MaxHalfOpenDuration, &c.max_half_open_ns},
	}
	for _, d := range durations {
		if d.d < 0 {
			return nil, &Error{Status: ErrRange, Message: fmt.Sprintf("%s must not be negative (%v)", d.name, d.d)}
		}
		if d.d != 0 {
			*d.dst = C.uint64_t(d.d)
		}
	}
	var cerr C.tg_error
	var h *C.tg_breaker
	if rc := C.tg_breaker_new(&c, &h, &cerr); rc != C.TG_OK {
		return nil, statusErr(rc, &cerr, "tg_breaker_new failed")
	}
	b := &Breaker{h: h}
	runtime.SetFinalizer(b, (*Breaker).Close)
	return b, nil
}

// Close releases the breaker. It is idempotent and safe to call while other
// goroutines (or the event callback) use the breaker: their calls finish,
// later calls return ErrClosed, and the memory goes when the last call
// returns.
func (b *Breaker) Close() error {
	if b == nil {
		return nil
	}
	if b.g.close() {
		b.free()
	}
	runtime.SetFinalizer(b, nil)
	return nil
}

func (b *Breaker) free() {
	C.tg_breaker_free(b.h)
	if s := b.sink.Load(); s != nil {
		s.handle.Delete()
	}
	handlesFreed.Add(1)
}

func (b *Breaker) enter() error {
	if b == nil {
		return errNil
	}
	if !b.g.enter() {
		b.leave()
		return ErrClosed
	}
	return nil
}

func (b *Breaker) leave() {
	if b.g.leave() {
		b.free()
	}
}

// rethrow re-raises, in the goroutine whose call caused it, a panic of the
// event callback; it was recovered before unwinding through C frames.
func (b *Breaker) rethrow() {
	if s := b.sink.Load(); s != nil {
		if p := s.pending.Swap(nil); p != nil {
			panic(p.v)
		}
	}
}

// Acquire asks whether a call may start at nowNs. A rejection is a Permit
// with Allowed false, not an error. Record every allowed permit.
func (b *Breaker) Acquire(nowNs uint64) (Permit, error) {
	if err := b.enter(); err != nil {
		return Permit{}, err
	}
	r := C.tg_go_breaker_acquire(b.h, C.uint64_t(nowNs))
	b.leave()
	b.rethrow()
	if r.rc != C.TG_OK {
		return Permit{}, statusErr(r.rc, nil, "tg_breaker_acquire failed")
	}
	return permitFrom(&r.permit), nil
}

// Record reports how the call of p ended: its outcome and its duration,
// at nowNs. It releases the bulkhead slot. Record each allowed permit
// exactly once (OutcomeIgnored when the call was never made).
func (b *Breaker) Record(p Permit, outcome Outcome, latencyNs, nowNs uint64) error {
	if err := b.enter(); err != nil {
		return err
	}
	var cp C.tg_breaker_permit
	p.toC(&cp)
	rc := C.tg_go_breaker_record(b.h, cp, C.int(outcome), C.uint64_t(latencyNs), C.uint64_t(nowNs))
	b.leave()
	b.rethrow()
	if rc != C.TG_OK {
		return statusErr(rc, nil, "outcome "+outcome.String()+" is not one of OutcomeSuccess, OutcomeFailure, OutcomeIgnored")
	}
	return nil
}

// breakerScratch holds permits in the library's layout for batch calls.
type breakerScratch struct {
	permits []C.tg_breaker_permit
}

var breakerScratchPool = sync.Pool{New: func() any { return new(breakerScratch) }}

func (b *Breaker) getScratch(n int) *breakerScratch {
	s := b.scratch.Swap(nil)
	if s == nil {
		s = breakerScratchPool.Get().(*breakerScratch)
	}
	if cap(s.permits) < n {
		s.permits = make([]C.tg_breaker_permit, n)
	}
	s.permits = s.permits[:n]
	return s
}

func (b *Breaker) putScratch(s *breakerScratch) {
	if cap(s.permits) > maxCachedScratch/32 {
		return
	}
	if !b.scratch.CompareAndSwap(nil, s) {
		breakerScratchPool.Put(s)
	}
}

// AcquireMany decides len(out) calls at one nowNs with one call into the
// library, as len(out) calls of Acquire would. A warm call does not
// allocate.
func (b *Breaker) AcquireMany(nowNs uint64, out []Permit) error {
	if err := b.enter(); err != nil {
		return err
	}
	n := len(out)
	if n == 0 {
		b.leave()
		return nil
	}
	s := b.getScratch(n)
	rc := C.tg_breaker_acquire_many(b.h, C.size_t(n), C.uint64_t(nowNs), &s.permits[0])
	b.leave()
	if rc == C.TG_OK {
		ps := s.permits[:len(out)]
		for i := range out {
			out[i].setFrom(&ps[i])
		}
	}
	b.putScratch(s)
	b.rethrow()
	if rc != C.TG_OK {
		return statusErr(rc, nil, "tg_breaker_acquire_many failed")
	}
	return nil
}

// RecordMany records len(permits) outcomes at one nowNs with one call into
// the library. outcomes has one entry per permit; latenciesNs has one or is
// empty (all 0). Arguments are validated first: on error nothing was
// recorded.
func (b *Breaker) RecordMany(permits []Permit, outcomes []Outcome, latenciesNs []uint64, nowNs uint64) error {
	if err := b.enter(); err != nil {
		return err
	}
	n := len(permits)
	if len(outcomes) != n {
		b.leave()
		return invalid("len(outcomes) = %d, want %d", len(outcomes), n)
	}
	if len(latenciesNs) != 0 && len(latenciesNs) != n {
		b.leave()
		return invalid("len(latenciesNs) = %d, want 0 or %d", len(latenciesNs), n)
	}
	if n == 0 {
		b.leave()
		return nil
	}
	s := b.getScratch(n)
	for i := range permits {
		permits[i].toC(&s.permits[i])
	}
	var lp *C.uint64_t
	if len(latenciesNs) > 0 {
		lp = (*C.uint64_t)(unsafe.Pointer(unsafe.SliceData(latenciesNs)))
	}
	rc := C.tg_breaker_record_many(b.h, &s.permits[0], (*C.int32_t)(unsafe.Pointer(unsafe.SliceData(outcomes))),
		lp, C.size_t(n), C.uint64_t(nowNs))
	b.leave()
	b.putScratch(s)
	b.rethrow()
	if rc != C.TG_OK {
		for i, o := range outcomes {
			if o < OutcomeSuccess || o > OutcomeIgnored {
				return &Error{Status: Status(rc), Message: fmt.Sprintf("outcomes[%d] = %d is not a known Outcome", i, int32(o))}
			}
		}
		return statusErr(rc, nil, "tg_breaker_record_many failed")
	}
	return nil
}

// State returns the current state. An open breaker whose open duration has
// passed still reads StateOpen until the next Acquire.
func (b *Breaker) State() (State, error) {
	if err := b.enter(); err != nil {
		return 0, err
	}
	var s C.int
	rc := C.tg_breaker_state(b.h, &s)
	b.leave()
	if rc != C.TG_OK {
		return 0, statusErr(rc, nil, "tg_breaker_state failed")
	}
	return State(s), nil
}

// Transition moves the breaker to state at nowNs: StateClosed resets the
// window and the backoff, StateOpen opens for the current open duration,
// and the forced states are the kill switch and its opposites. It emits an
// event.
func (b *Breaker) Transition(state State, nowNs uint64) error {
	if err := b.enter(); err != nil {
		return err
	}
	rc := C.tg_breaker_transition(b.h, C.int(state), C.uint64_t(nowNs))
	b.leave()
	b.rethrow()
	if rc != C.TG_OK {
		return statusErr(rc, nil, "unknown state "+state.String())
	}
	return nil
}

// Stats returns the breaker's counters, with the window judged at nowNs.
func (b *Breaker) Stats(nowNs uint64) (BreakerStats, error) {
	if err := b.enter(); err != nil {
		return BreakerStats{}, err
	}
	var s C.tg_breaker_stats
	rc := C.tg_breaker_stats_get(b.h, C.uint64_t(nowNs), &s)
	b.leave()
	if rc != C.TG_OK {
		return BreakerStats{}, statusErr(rc, nil, "tg_breaker_stats_get failed")
	}
	return BreakerStats{
		Admitted:         uint64(s.admitted),
		Rejected:         uint64(s.rejected),
		BulkheadRejected: uint64(s.bulkhead_rejected),
		Successes:        uint64(s.successes),
		Failures:         uint64(s.failures),
		SlowCalls:        uint64(s.slow_calls),
		Ignored:          uint64(s.ignored),
		Transitions:      uint64(s.transitions),
		WouldOpen:        uint64(s.would_open),
		InFlight:         uint32(s.in_flight),
		State:            State(s.state),
		FailureRate:      float64(s.failure_rate),
		SlowRate:         float64(s.slow_rate),
		WindowCalls:      uint64(s.window_calls),
	}, nil
}
