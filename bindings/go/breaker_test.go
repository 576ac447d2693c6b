package tollgate

import (
	"errors"
	"math/rand"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// eventLog collects a breaker's events.
type eventLog struct {
	mu     sync.Mutex
	events []Event
}

func (l *eventLog) add(e Event) {
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
}

func (l *eventLog) take() []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.events
	l.events = nil
	return e
}

func wantEvents(t *testing.T, log *eventLog, want ...[2]State) []Event {
	t.Helper()
	got := log.take()
	if len(got) != len(want) {
		t.Fatalf("events %+v, want %d transitions %v", got, len(want), want)
	}
	for i, w := range want {
		if got[i].From != w[0] || got[i].To != w[1] {
			t.Fatalf("event %d: %v -> %v, want %v -> %v", i, got[i].From, got[i].To, w[0], w[1])
		}
	}
	return got
}

func TestBreakerDefaults(t *testing.T) {
	d := DefaultBreakerOptions()
	want := BreakerOptions{
		WindowType: WindowCount, WindowSize: 100, MinimumCalls: 20, BucketWidth: time.Second,
		FailureRateThreshold: 50, SlowRateThreshold: 100, SlowCallDuration: time.Second,
		OpenDuration: time.Second, BackoffMultiplier: 1, MaxOpenDuration: time.Minute,
		HalfOpenProbes: 5,
	}
	if d != want {
		t.Fatalf("DefaultBreakerOptions() = %+v, want %+v", d, want)
	}
	// The zero value and the explicit defaults behave alike.
	for _, o := range []BreakerOptions{{}, d} {
		b := newBreaker(t, o)
		if s := bstate(t, b); s != StateClosed {
			t.Fatalf("new breaker in state %v", s)
		}
		for i := 0; i < 19; i++ {
			brecord(t, b, bacquire(t, b, t0), OutcomeFailure, 0, t0)
		}
		if s := bstate(t, b); s != StateClosed {
			t.Fatal("opened below minimum_calls = 20")
		}
		brecord(t, b, bacquire(t, b, t0), OutcomeFailure, 0, t0)
		if s := bstate(t, b); s != StateOpen {
			t.Fatalf("state %v after 20 failures", s)
		}
		if p := bacquire(t, b, t0+second-1); p.Allowed || p.RetryAfterNs != 1 {
			t.Fatalf("open duration is not 1s: %+v", p)
		}
	}
}

// closed -> open -> half-open -> closed, and half-open -> open with backoff.
func TestBreakerTransitions(t *testing.T) {
	b := newBreaker(t, BreakerOptions{
		WindowSize: 10, MinimumCalls: 4, FailureRateThreshold: 50,
		OpenDuration: time.Second, BackoffMultiplier: 2, MaxOpenDuration: 3 * time.Second,
		HalfOpenProbes: 2,
	})
	log := &eventLog{}
	if err := b.OnEvent(log.add); err != nil {
		t.Fatal(err)
	}
	now := t0
	for i, o := range []Outcome{OutcomeSuccess, OutcomeSuccess, OutcomeFailure} {
		p := bacquire(t, b, now)
		if !p.Allowed || p.State != StateClosed || p.Reason != BreakerReasonNone {
			t.Fatalf("call %d: %+v", i, p)
		}
		brecord(t, b, p, o, 1000, now)
	}
	if s := bstats(t, b, now); s.FailureRate != -1 || s.WindowCalls != 3 {
		t.Fatalf("below minimum_calls: %+v", s)
	}
	brecord(t, b, bacquire(t, b, now), OutcomeFailure, 1000, now) // 2 of 4 failed: 50%
	ev := wantEvents(t, log, [2]State{StateClosed, StateOpen})
	if ev[0].FailureRate != 50 || ev[0].OpenNs != second || ev[0].NowNs != now {
		t.Fatalf("open event %+v", ev[0])
	}
	if s := bstate(t, b); s != StateOpen {
		t.Fatalf("state %v", s)
	}
	openedAt := now

	// Open: rejected with the exact time until half-open.
	p := bacquire(t, b, openedAt+second/2)
	if p.Allowed || p.Reason != BreakerReasonOpen || p.State != StateOpen || p.RetryAfterNs != second/2 {
		t.Fatalf("while open: %+v", p)
	}
	// Recording a rejected permit is a harmless no-op.
	brecord(t, b, p, OutcomeFailure, 0, openedAt)
	// Time stepping backwards never ends the open period early.
	p = bacquire(t, b, openedAt-5*second)
	if p.Allowed || p.RetryAfterNs != 6*second {
		t.Fatalf("time stepped back: %+v", p)
	}
	if p := bacquire(t, b, openedAt+second-1); p.Allowed {
		t.Fatal("admitted 1 ns before the open period ended")
	}
	if s := bstate(t, b); s != StateOpen {
		t.Fatalf("state %v", s)
	}

	// Half-open: exactly two probes.
	now = openedAt + second
	p1, p2, p3 := bacquire(t, b, now), bacquire(t, b, now), bacquire(t, b, now)
	if !p1.Allowed || !p2.Allowed || p1.State != StateHalfOpen {
		t.Fatalf("probes: %+v %+v", p1, p2)
	}
	if p3.Allowed || p3.Reason != BreakerReasonOpen || p3.State != StateHalfOpen {
		t.Fatalf("third call while half-open: %+v", p3)
	}
	wantEvents(t, log, [2]State{StateOpen, StateHalfOpen})
	brecord(t, b, p1, OutcomeSuccess, 1000, now)
	if s := bstate(t, b); s != StateHalfOpen {
		t.Fatalf("decided before every probe ended: %v", s)
	}
	brecord(t, b, p2, OutcomeSuccess, 1000, now)
	wantEvents(t, log, [2]State{StateHalfOpen, StateClosed})
	if s := bstats(t, b, now); s.WindowCalls != 0 {
		t.Fatalf("closing did not reset the window: %+v", s)
	}

	// Open again; a failed probe reopens with the open duration doubled, then
	// capped at MaxOpenDuration.
	for i := 0; i < 4; i++ {
		brecord(t, b, bacquire(t, b, now), OutcomeFailure, 0, now)
	}
	ev = wantEvents(t, log, [2]State{StateClosed, StateOpen})
	if ev[0].OpenNs != second {
		t.Fatalf("first opening after a close lasts %d, want 1s (backoff reset)", ev[0].OpenNs)
	}
	wantOpen := []uint64{2 * second, 3 * second, 3 * second}
	deadline := now + second
	for _, d := range wantOpen {
		now = deadline
		pa, pb := bacquire(t, b, now), bacquire(t, b, now)
		if !pa.Allowed || pa.State != StateHalfOpen || !pb.Allowed {
			t.Fatalf("probes: %+v %+v", pa, pb)
		}
		brecord(t, b, pa, OutcomeFailure, 0, now)
		brecord(t, b, pb, OutcomeSuccess, 0, now) // 1 of 2 probes failed: 50%
		ev := wantEvents(t, log, [2]State{StateOpen, StateHalfOpen}, [2]State{StateHalfOpen, StateOpen})
		if ev[1].OpenNs != d {
			t.Fatalf("reopened for %d ns, want %d", ev[1].OpenNs, d)
		}
		if p := bacquire(t, b, now); p.Allowed || p.RetryAfterNs != d {
			t.Fatalf("after reopening: %+v, want a wait of %d", p, d)
		}
		deadline = now + d
	}
	s := bstats(t, b, now)
	if s.Transitions != 10 || s.State != StateOpen {
		t.Fatalf("stats %+v", s)
	}
}

func TestBreakerSlowCalls(t *testing.T) {
	b := newBreaker(t, BreakerOptions{
		WindowSize: 4, MinimumCalls: 2, SlowCallDuration: 100 * time.Millisecond, SlowRateThreshold: 50,
	})
	brecord(t, b, bacquire(t, b, t0), OutcomeSuccess, uint64(100*time.Millisecond)-1, t0)
	brecord(t, b, bacquire(t, b, t0), OutcomeSuccess, uint64(100*time.Millisecond), t0)
	if s := bstate(t, b); s != StateOpen {
		t.Fatalf("state %v after 1 slow call of 2 (threshold 50%%)", s)
	}
	s := bstats(t, b, t0)
	if s.SlowCalls != 1 || s.Successes != 2 || s.Failures != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestBreakerTimeWindow(t *testing.T) {
	b := newBreaker(t, BreakerOptions{
		WindowType: WindowTime, WindowSize: 10, BucketWidth: 100 * time.Millisecond,
		MinimumCalls: 3, FailureRateThreshold: 60,
	})
	brecord(t, b, bacquire(t, b, t0), OutcomeFailure, 0, t0)
	brecord(t, b, bacquire(t, b, t0), OutcomeSuccess, 0, t0)
	if s := bstats(t, b, t0); s.WindowCalls != 2 {
		t.Fatalf("window %+v", s)
	}
	// Outcomes older than the window (10 x 100 ms) no longer count.
	later := t0 + 2*second
	if s := bstats(t, b, later); s.WindowCalls != 0 {
		t.Fatalf("old outcomes still in the window: %+v", s)
	}
	brecord(t, b, bacquire(t, b, later), OutcomeSuccess, 0, later)
	brecord(t, b, bacquire(t, b, later), OutcomeFailure, 0, later)
	if s := bstate(t, b); s != StateClosed {
		t.Fatalf("state %v with 2 calls in the window (minimum 3)", s)
	}
	brecord(t, b, bacquire(t, b, later), OutcomeFailure, 0, later)
	if s := bstate(t, b); s != StateOpen {
		t.Fatalf("state %v with 2 of 3 failed (67%% >= 60%%)", s)
	}
}

func TestBreakerForcedStates(t *testing.T) {
	b := newBreaker(t, BreakerOptions{WindowSize: 10, MinimumCalls: 2})
	log := &eventLog{}
	if err := b.OnEvent(log.add); err != nil {
		t.Fatal(err)
	}
	if err := b.Transition(StateForcedOpen, t0); err != nil {
		t.Fatal(err)
	}
	p := bacquire(t, b, t0+100*second)
	if p.Allowed || p.Reason != BreakerReasonForcedOpen || p.State != StateForcedOpen || p.RetryAfterNs != RetryNever {
		t.Fatalf("forced open: %+v", p)
	}

	if err := b.Transition(StateForcedClosed, t0); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		p := bacquire(t, b, t0)
		if !p.Allowed || p.State != StateForcedClosed {
			t.Fatalf("forced closed: %+v", p)
		}
		brecord(t, b, p, OutcomeFailure, 0, t0)
	}
	s := bstats(t, b, t0)
	if s.State != StateForcedClosed || s.FailureRate != 100 || s.WindowCalls != 10 {
		t.Fatalf("forced closed keeps the window and stays closed: %+v", s)
	}

	if err := b.Transition(StateDisabled, t0); err != nil {
		t.Fatal(err)
	}
	if err := b.Transition(StateClosed, t0); err != nil { // resets the window
		t.Fatal(err)
	}
	if err := b.Transition(StateDisabled, t0); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		brecord(t, b, bacquire(t, b, t0), OutcomeFailure, 0, t0)
	}
	if s := bstats(t, b, t0); s.State != StateDisabled || s.WindowCalls != 0 || s.Failures != 15 {
		t.Fatalf("disabled records nothing in the window: %+v", s)
	}

	if err := b.Transition(StateMetricsOnly, t0); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		p := bacquire(t, b, t0)
		if !p.Allowed {
			t.Fatalf("metrics-only rejected: %+v", p)
		}
		brecord(t, b, p, OutcomeFailure, 0, t0)
	}
	s = bstats(t, b, t0)
	if s.State != StateMetricsOnly || s.WouldOpen != 2 {
		t.Fatalf("metrics-only counts trips it does not take (2 of 3 calls reached the threshold): %+v", s)
	}

	if err := b.Transition(StateOpen, t0); err != nil {
		t.Fatal(err)
	}
	if p := bacquire(t, b, t0); p.Allowed || p.Reason != BreakerReasonOpen || p.RetryAfterNs != second {
		t.Fatalf("manual open: %+v", p)
	}
	if err := b.Transition(StateHalfOpen, t0); err != nil {
		t.Fatal(err)
	}
	if p := bacquire(t, b, t0); !p.Allowed || p.State != StateHalfOpen {
		t.Fatalf("manual half-open: %+v", p)
	}
	wantEvents(t, log,
		[2]State{StateClosed, StateForcedOpen}, [2]State{StateForcedOpen, StateForcedClosed},
		[2]State{StateForcedClosed, StateDisabled}, [2]State{StateDisabled, StateClosed},
		[2]State{StateClosed, StateDisabled}, [2]State{StateDisabled, StateMetricsOnly},
		[2]State{StateMetricsOnly, StateOpen}, [2]State{StateOpen, StateHalfOpen})

	for _, bad := range []State{-1, 7, 100} {
		wantStatus(t, b.Transition(bad, t0), ErrInvalid, "Transition("+bad.String()+")")
	}
}

func TestBreakerBulkhead(t *testing.T) {
	b := newBreaker(t, BreakerOptions{MaxInFlight: 2})
	p1, p2, p3 := bacquire(t, b, t0), bacquire(t, b, t0), bacquire(t, b, t0)
	if !p1.Allowed || !p2.Allowed {
		t.Fatal("bulkhead rejected below its bound")
	}
	if p3.Allowed || p3.Reason != BreakerReasonBulkheadFull || p3.RetryAfterNs != 0 {
		t.Fatalf("third call in flight: %+v", p3)
	}
	s := bstats(t, b, t0)
	if s.InFlight != 2 || s.BulkheadRejected != 1 || s.Rejected != 1 || s.Admitted != 2 {
		t.Fatalf("stats %+v", s)
	}
	brecord(t, b, p3, OutcomeSuccess, 0, t0) // a rejected permit holds no slot
	if s := bstats(t, b, t0); s.InFlight != 2 {
		t.Fatalf("recording a rejected permit freed a slot: %+v", s)
	}
	brecord(t, b, p1, OutcomeIgnored, 0, t0)
	if p := bacquire(t, b, t0); !p.Allowed {
		t.Fatalf("slot not released by an ignored outcome: %+v", p)
	}
	if s := bstats(t, b, t0); s.InFlight != 2 || s.Ignored != 1 || s.WindowCalls != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestBreakerEvents(t *testing.T) {
	b := newBreaker(t, BreakerOptions{})
	var first, second atomic.Int32
	if err := b.OnEvent(func(Event) { first.Add(1) }); err != nil {
		t.Fatal(err)
	}
	if err := b.Transition(StateForcedOpen, t0); err != nil {
		t.Fatal(err)
	}
	// Replacing the callback: only the new one is called.
	if err := b.OnEvent(func(Event) { second.Add(1) }); err != nil {
		t.Fatal(err)
	}
	b.Transition(StateClosed, t0)
	if first.Load() != 1 || second.Load() != 1 {
		t.Fatalf("calls: first %d, second %d", first.Load(), second.Load())
	}
	// Removing it: no more calls.
	if err := b.OnEvent(nil); err != nil {
		t.Fatal(err)
	}
	b.Transition(StateForcedOpen, t0)
	if first.Load() != 1 || second.Load() != 1 {
		t.Fatal("a removed callback was called")
	}
	// Installing again after removal works, and the callback may call the
	// breaker's methods.
	var seen []State
	if err := b.OnEvent(func(e Event) {
		s, err := b.State()
		if err != nil {
			t.Error(err)
		}
		if _, err := b.Stats(e.NowNs); err != nil {
			t.Error(err)
		}
		seen = append(seen, s)
	}); err != nil {
		t.Fatal(err)
	}
	b.Transition(StateClosed, t0)
	if len(seen) != 1 || seen[0] != StateClosed {
		t.Fatalf("state read inside the callback: %v (the change is visible before the call)", seen)
	}
	if s := bstats(t, b, t0); s.Transitions != 4 {
		t.Fatalf("transitions %d", s.Transitions)
	}
}

func TestBreakerEventPanic(t *testing.T) {
	b := newBreaker(t, BreakerOptions{})
	if err := b.OnEvent(func(e Event) { panic("boom") }); err != nil {
		t.Fatal(err)
	}
	func() {
		defer func() {
			if r := recover(); r != "boom" {
				t.Fatalf("recovered %v, want the callback's panic", r)
			}
		}()
		b.Transition(StateForcedOpen, t0)
		t.Fatal("the callback's panic was swallowed")
	}()
	// The breaker is intact and the change happened.
	if s := bstate(t, b); s != StateForcedOpen {
		t.Fatalf("state %v", s)
	}
	if err := b.OnEvent(nil); err != nil {
		t.Fatal(err)
	}
	if err := b.Transition(StateClosed, t0); err != nil {
		t.Fatal(err)
	}
}

// Closing the breaker from inside its own callback is safe: the memory goes
// when the call that fired the event returns.
func TestBreakerCloseInsideCallback(t *testing.T) {
	b, err := NewBreaker(BreakerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var inner error
	if err := b.OnEvent(func(Event) {
		b.Close()
		_, inner = b.State()
	}); err != nil {
		t.Fatal(err)
	}
	if err := b.Transition(StateForcedOpen, t0); err != nil {
		t.Fatalf("the transition that closed the breaker: %v", err)
	}
	if inner != ErrClosed {
		t.Fatalf("call inside the callback after Close: %v", inner)
	}
	if _, err := b.Acquire(t0); err != ErrClosed {
		t.Fatalf("after Close: %v", err)
	}
}

func TestBreakerBatchEqualsSingle(t *testing.T) {
	opts := BreakerOptions{WindowSize: 20, MinimumCalls: 5, FailureRateThreshold: 40, HalfOpenProbes: 3, MaxInFlight: 50,
		OpenDuration: 10 * time.Millisecond}
	single, batch := newBreaker(t, opts), newBreaker(t, opts)
	logS, logB := &eventLog{}, &eventLog{}
	single.OnEvent(logS.add)
	batch.OnEvent(logB.add)
	rng := rand.New(rand.NewSource(7))
	now := t0
	for round := 0; round < 200; round++ {
		n := rng.Intn(30)
		got := make([]Permit, n)
		if err := batch.AcquireMany(now, got); err != nil {
			t.Fatal(err)
		}
		want := make([]Permit, n)
		for i := range want {
			want[i] = bacquire(t, single, now)
			if got[i].Allowed != want[i].Allowed || got[i].Reason != want[i].Reason ||
				got[i].State != want[i].State || got[i].RetryAfterNs != want[i].RetryAfterNs {
				t.Fatalf("round %d permit %d: batch %+v single %+v", round, i, got[i], want[i])
			}
		}
		outcomes := make([]Outcome, n)
		lat := make([]uint64, n)
		for i := range outcomes {
			outcomes[i] = Outcome(rng.Intn(3))
			lat[i] = uint64(rng.Intn(2)) * 2 * second
		}
		useLat := rng.Intn(2) == 0
		if !useLat {
			lat = lat[:0]
		}
		if err := batch.RecordMany(got, outcomes, lat, now); err != nil {
			t.Fatal(err)
		}
		for i := range want {
			var l uint64
			if useLat {
				l = lat[i]
			}
			brecord(t, single, want[i], outcomes[i], l, now)
		}
		now += uint64(rng.Intn(int(5 * time.Millisecond)))
	}
	sa, sb := bstats(t, single, now), bstats(t, batch, now)
	if sa != sb {
		t.Fatalf("stats differ:\nsingle %+v\nbatch  %+v", sa, sb)
	}
	es, eb := logS.take(), logB.take()
	if len(es) == 0 || len(es) != len(eb) {
		t.Fatalf("%d events single, %d batch", len(es), len(eb))
	}
	for i := range es {
		if es[i] != eb[i] {
			t.Fatalf("event %d: single %+v batch %+v", i, es[i], eb[i])
		}
	}
	// Empty batches are fine.
	if err := batch.AcquireMany(now, nil); err != nil {
		t.Fatal(err)
	}
	if err := batch.RecordMany(nil, nil, nil, now); err != nil {
		t.Fatal(err)
	}
}

// Many goroutines acquiring and recording: every count reconciles.
func TestBreakerConcurrent(t *testing.T) {
	const goroutines, perG = 8, 2000
	b := newBreaker(t, BreakerOptions{
		WindowSize: 50, MinimumCalls: 10, FailureRateThreshold: 30,
		OpenDuration: time.Millisecond, HalfOpenProbes: 4, MaxInFlight: 6,
	})
	var events atomic.Uint64
	b.OnEvent(func(Event) { events.Add(1) })
	var admitted, rejected, recorded [3]atomic.Uint64
	var clock atomic.Uint64
	clock.Store(t0)
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			rng := rand.New(rand.NewSource(int64(g)))
			batch := make([]Permit, 4)
			outs := make([]Outcome, 4)
			for i := 0; i < perG; i++ {
				now := clock.Add(uint64(rng.Intn(20_000)))
				if i%25 == 0 {
					if err := b.AcquireMany(now, batch); err != nil {
						t.Error(err)
						return
					}
					for j, p := range batch {
						if p.Allowed {
							admitted[0].Add(1)
						} else {
							rejected[0].Add(1)
						}
						outs[j] = Outcome(rng.Intn(3))
						if p.Allowed {
							recorded[outs[j]].Add(1)
						}
					}
					if err := b.RecordMany(batch, outs, nil, now); err != nil {
						t.Error(err)
						return
					}
					continue
				}
				p, err := b.Acquire(now)
				if err != nil {
					t.Error(err)
					return
				}
				if !p.Allowed {
					rejected[0].Add(1)
					continue
				}
				admitted[0].Add(1)
				o := OutcomeSuccess
				if rng.Intn(3) == 0 {
					o = OutcomeFailure
				}
				recorded[o].Add(1)
				if err := b.Record(p, o, uint64(rng.Intn(1000)), now); err != nil {
					t.Error(err)
					return
				}
			}
		}(g)
	}
	wg.Wait()
	s := bstats(t, b, clock.Load())
	offered := uint64(goroutines * (perG + 3*perG/25))
	if a, r := admitted[0].Load(), rejected[0].Load(); a+r != offered || s.Admitted != a || s.Rejected != r {
		t.Fatalf("admitted %d + rejected %d vs offered %d; stats %+v", a, r, offered, s)
	}
	if s.Successes != recorded[OutcomeSuccess].Load() || s.Failures != recorded[OutcomeFailure].Load() ||
		s.Ignored != recorded[OutcomeIgnored].Load() {
		t.Fatalf("outcomes %d/%d/%d, stats %+v", recorded[0].Load(), recorded[1].Load(), recorded[2].Load(), s)
	}
	if s.InFlight != 0 {
		t.Fatalf("%d slots still held after every permit was recorded", s.InFlight)
	}
	if s.Transitions != events.Load() {
		t.Fatalf("%d transitions, %d events", s.Transitions, events.Load())
	}
	if s.Transitions == 0 || s.Rejected == 0 {
		t.Fatalf("the workload never moved the breaker: %+v", s)
	}
}

func TestBreakerCloseRace(t *testing.T) {
	for round := 0; round < 20; round++ {
		b, err := NewBreaker(BreakerOptions{MaxInFlight: 3})
		if err != nil {
			t.Fatal(err)
		}
		b.OnEvent(func(Event) {})
		var wg sync.WaitGroup
		start := make(chan struct{})
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				ps := make([]Permit, 2)
				for i := 0; i < 200; i++ {
					p, err := b.Acquire(t0)
					if err != nil && !errors.Is(err, ErrClosed) {
						t.Error(err)
					}
					if err := b.Record(p, OutcomeFailure, 0, t0); err != nil && err != ErrClosed {
						t.Error(err)
					}
					if err := b.AcquireMany(t0, ps); err != nil && err != ErrClosed {
						t.Error(err)
					}
					if err := b.RecordMany(ps, []Outcome{0, 1}, nil, t0); err != nil && err != ErrClosed {
						t.Error(err)
					}
				}
			}()
		}
		close(start)
		b.Close()
		wg.Wait()
	}
}
