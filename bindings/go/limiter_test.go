package tollgate

import (
	"fmt"
	"math"
	"math/rand"
	"runtime"
	"strings"
	"sync"
	"testing"
)

func interval(rate float64) uint64 { return uint64(math.Round(1e9 / rate)) }

// From a full bucket, a window of t ns admits exactly burst + floor(t/T) unit
// requests, however finely the window is polled, and every rejection names
// the exact wait until the next token.
func TestLimiterGCRAExactCount(t *testing.T) {
	cases := []struct {
		rate   float64
		burst  uint32
		window uint64
	}{
		{100, 5, second},
		{3, 1, 10 * second},
		{7, 4, 5 * second / 2},
		{1e9, 10, 1000},
		{0.5, 2, 7 * second},
		{1000, 1000, second / 3},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("rate=%g,burst=%d,t=%d", c.rate, c.burst, c.window), func(t *testing.T) {
			l := newLimiter(t, oneTier(c.rate, c.burst))
			T := interval(c.rate)
			want := uint64(c.burst) + c.window/T
			// Poll at every token boundary, half-way between, and at the end.
			var points []uint64
			for k := uint64(0); k*T <= c.window; k++ {
				points = append(points, k*T)
				if k*T+T/2 <= c.window && T > 1 {
					points = append(points, k*T+T/2)
				}
			}
			points = append(points, c.window)
			var admitted uint64
			for _, p := range points {
				now := t0 + p
				for {
					d := acquire(t, l, "k", 0, 1, now)
					if !d.Allowed {
						if d.Reason != ReasonRate {
							t.Fatalf("at +%d: reason %v, want rate", p, d.Reason)
						}
						// The bucket's debt ends at t0 + admitted*T; the next
						// token arrives one interval after it drops below burst.
						wantRetry := t0 + (admitted-uint64(c.burst)+1)*T - now
						if d.RetryAfterNs != wantRetry {
							t.Fatalf("at +%d: retry after %d, want %d", p, d.RetryAfterNs, wantRetry)
						}
						if d.Remaining != 0 {
							t.Fatalf("at +%d: remaining %d after a rejection", p, d.Remaining)
						}
						break
					}
					if d.RetryAfterNs != 0 || d.Shadow || d.Reason != ReasonNone {
						t.Fatalf("admitted decision %+v", d)
					}
					admitted++
					if admitted > want+1 {
						t.Fatalf("admitted more than %d", want)
					}
				}
			}
			if admitted != want {
				t.Fatalf("admitted %d over %d ns, want burst + floor(t/T) = %d (T = %d)", admitted, c.window, want, T)
			}
			s := limiterStats(t, l)
			if s.Admitted != want || s.Rejected != uint64(len(points)) {
				t.Fatalf("stats %+v, want %d admitted and %d rejected", s, want, len(points))
			}
		})
	}
}

// Every rejection carries the exact wait: one ns earlier the same request is
// still rejected, at the wait it is admitted.
func TestLimiterRetryAfterExact(t *testing.T) {
	const rate, burst = 10.0, 5
	T := interval(rate)
	for cost := uint32(1); cost <= burst; cost++ {
		for _, offset := range []uint64{0, 1, T / 3, T - 1, T, 2*T + 7} {
			l := newLimiter(t, oneTier(rate, burst))
			if d := acquire(t, l, "k", 0, burst, t0); !d.Allowed {
				t.Fatalf("emptying a full bucket rejected: %+v", d)
			}
			now := t0 + offset
			d := acquire(t, l, "k", 0, cost, now)
			wantWait := uint64(cost)*T - min(offset, uint64(cost)*T)
			if wantWait == 0 {
				if !d.Allowed {
					t.Fatalf("cost %d at +%d rejected: %+v", cost, offset, d)
				}
				continue
			}
			if d.Allowed || d.Reason != ReasonRate || d.RetryAfterNs != wantWait {
				t.Fatalf("cost %d at +%d: %+v, want rejected with retry %d", cost, offset, d, wantWait)
			}
			early, err := l.PeekString("k", 0, cost, now+d.RetryAfterNs-1)
			if err != nil || early.Allowed || early.RetryAfterNs != 1 {
				t.Fatalf("cost %d one ns early: %+v %v, want rejected with retry 1", cost, early, err)
			}
			if got := acquire(t, l, "k", 0, cost, now+d.RetryAfterNs); !got.Allowed {
				t.Fatalf("cost %d at the retry-after: %+v", cost, got)
			}
		}
	}
}

// Time standing still or stepping backwards never creates tokens.
func TestLimiterTimeStillOrBackwards(t *testing.T) {
	const rate, burst = 100.0, 3
	T := interval(rate)
	l := newLimiter(t, oneTier(rate, burst))
	later := t0 + 5*second
	for i := 0; i < burst; i++ {
		if d := acquire(t, l, "k", 0, 1, later); !d.Allowed {
			t.Fatalf("request %d of a full bucket rejected", i)
		}
	}
	for i := 0; i < 100; i++ {
		if d := acquire(t, l, "k", 0, 1, later); d.Allowed {
			t.Fatalf("time standing still created a token on try %d", i)
		}
	}
	for _, back := range []uint64{1, T, second, 5 * second, later} {
		now := later - back
		d := acquire(t, l, "k", 0, 1, now)
		if d.Allowed || d.Remaining != 0 {
			t.Fatalf("%d ns back: %+v, want rejected with nothing left", back, d)
		}
		// The wait is measured to the same absolute time, so it grows by the
		// step back instead of wrapping around.
		if d.RetryAfterNs != T+back {
			t.Fatalf("%d ns back: retry after %d, want %d", back, d.RetryAfterNs, T+back)
		}
		if r := remaining(t, l, "k", 0, now); r != 0 {
			t.Fatalf("%d ns back: %d tokens remaining", back, r)
		}
	}
	if d := acquire(t, l, "k", 0, 1, later+T-1); d.Allowed {
		t.Fatal("admitted before the next token")
	}
	if d := acquire(t, l, "k", 0, 1, later+T); !d.Allowed {
		t.Fatal("rejected at the next token")
	}
	if d := acquire(t, l, "k", 0, 1, later+T); d.Allowed {
		t.Fatal("one token admitted twice")
	}
}

func TestLimiterCostExceedsBurst(t *testing.T) {
	l := newLimiter(t, oneTier(10, 5))
	check := func(what string, d Decision) {
		t.Helper()
		if d.Allowed || d.Reason != ReasonCostExceedsBurst || d.RetryAfterNs != RetryNever {
			t.Fatalf("%s: %+v, want rejected, cost-exceeds-burst, retry never", what, d)
		}
	}
	check("acquire", acquire(t, l, "k", 0, 6, t0))
	check("huge cost", acquire(t, l, "k", 0, math.MaxUint32, t0))
	p, err := l.PeekString("k", 0, 6, t0)
	if err != nil {
		t.Fatal(err)
	}
	check("peek", p)
	r, err := l.ReserveString("k", 0, 6, t0)
	if err != nil {
		t.Fatal(err)
	}
	check("reserve", r.Decision)
	out := make([]Decision, 2)
	if err := l.AcquireMany([][]byte{[]byte("k"), []byte("k")}, nil, []uint32{6, 5}, t0, out); err != nil {
		t.Fatal(err)
	}
	check("batch", out[0])
	if !out[1].Allowed || out[1].Remaining != 0 {
		t.Fatalf("cost == burst after a too-costly request: %+v (nothing must have been consumed)", out[1])
	}
}

func TestLimiterKeys(t *testing.T) {
	l := newLimiter(t, oneTier(1, 2))
	// nil, empty and "" name the same bucket; string and bytes keys agree.
	if d, _ := l.Acquire(nil, 0, 1, t0); !d.Allowed {
		t.Fatal("empty key rejected")
	}
	if d, _ := l.Acquire([]byte{}, 0, 1, t0); !d.Allowed || d.Remaining != 0 {
		t.Fatalf("second request on the empty key: %+v", d)
	}
	if d := acquire(t, l, "", 0, 1, t0); d.Allowed {
		t.Fatal(`"" is not the same bucket as nil`)
	}
	if d := acquire(t, l, "acct-1", 0, 2, t0); !d.Allowed {
		t.Fatal("a new key does not start full")
	}
	if d, _ := l.Acquire([]byte("acct-1"), 0, 1, t0); d.Allowed {
		t.Fatal("string and []byte keys name different buckets")
	}
	// Arbitrary bytes, NUL included, are keys.
	bin := []byte{0, 1, 0, 255}
	if d, _ := l.Acquire(bin, 0, 2, t0); !d.Allowed {
		t.Fatal("binary key rejected")
	}
	if d, _ := l.Acquire([]byte{0, 1, 0, 254}, 0, 2, t0); !d.Allowed {
		t.Fatal("a key differing in its last byte shares a bucket")
	}
	if s := limiterStats(t, l); s.Keys != 4 {
		t.Fatalf("keys = %d, want 4", s.Keys)
	}
}

func TestLimiterTiers(t *testing.T) {
	l := newLimiter(t, LimiterOptions{Tiers: []Tier{
		{Name: "retail", Rate: 1, Burst: 1},
		{Name: "pro", Rate: 1000, Burst: 10},
	}})
	for name, want := range map[string]uint32{"retail": 0, "pro": 1} {
		i, err := l.TierIndex(name)
		if err != nil || i != want {
			t.Fatalf("TierIndex(%q) = %d, %v; want %d", name, i, err, want)
		}
	}
	for _, name := range []string{"nope", "", "Retail", "retail ", strings.Repeat("a", 64)} {
		_, err := l.TierIndex(name)
		wantStatus(t, err, ErrNotFound, fmt.Sprintf("TierIndex(%q)", name))
	}
	_, err := l.TierIndex("ret\x00ail")
	wantStatus(t, err, ErrInvalid, "TierIndex with a NUL byte")
	if n, err := l.TierCount(); err != nil || n != 2 {
		t.Fatalf("TierCount = %d, %v", n, err)
	}
	// A tier sets the rate and burst of the keys used with it.
	if d := acquire(t, l, "retail-acct", 0, 1, t0); !d.Allowed || d.Remaining != 0 {
		t.Fatalf("retail: %+v", d)
	}
	if d := acquire(t, l, "retail-acct", 0, 1, t0); d.Allowed || d.RetryAfterNs != second {
		t.Fatalf("retail again: %+v, want a wait of 1s", d)
	}
	if d := acquire(t, l, "pro-acct", 1, 10, t0); !d.Allowed {
		t.Fatalf("pro burst: %+v", d)
	}
	if d := acquire(t, l, "pro-acct", 1, 1, t0); d.Allowed || d.RetryAfterNs != interval(1000) {
		t.Fatalf("pro after its burst: %+v", d)
	}
	if d := acquire(t, l, "pro-acct", 1, 1, t0+interval(1000)); !d.Allowed {
		t.Fatalf("pro one interval later: %+v", d)
	}

	// Default options: one tier of 1000/s, burst 1000.
	def := newLimiter(t, LimiterOptions{})
	if n, _ := def.TierCount(); n != 1 {
		t.Fatalf("default tier count %d", n)
	}
	if r := remaining(t, def, "k", 0, t0); r != 1000 {
		t.Fatalf("default burst %d", r)
	}
	if d := acquire(t, def, "k", 0, 1000, t0); !d.Allowed {
		t.Fatal(d)
	}
	if d := acquire(t, def, "k", 0, 1, t0); d.RetryAfterNs != interval(1000) {
		t.Fatalf("default rate: retry %d", d.RetryAfterNs)
	}
	if _, err := def.AcquireString("k", 1, 1, t0); err == nil {
		t.Fatal("tier 1 of a one-tier limiter accepted")
	}
}

func TestLimiterPeekConsumesNothing(t *testing.T) {
	l := newLimiter(t, oneTier(10, 3))
	for i := 0; i < 10; i++ {
		d, err := l.PeekString("k", 0, 2, t0)
		if err != nil || !d.Allowed || d.Remaining != 1 {
			t.Fatalf("peek %d: %+v %v", i, d, err)
		}
	}
	if s := limiterStats(t, l); s.Keys != 0 || s.Admitted != 0 {
		t.Fatalf("peek inserted or counted: %+v", s)
	}
	if r := remaining(t, l, "k", 0, t0); r != 3 {
		t.Fatalf("remaining %d after peeks", r)
	}
	acquire(t, l, "k", 0, 3, t0)
	p, _ := l.Peek([]byte("k"), 0, 1, t0)
	a := acquire(t, l, "k", 0, 1, t0)
	if p != a {
		t.Fatalf("peek %+v differs from the acquire that follows %+v", p, a)
	}
	if r := remaining(t, l, "k", 0, t0+interval(10)); r != 1 {
		t.Fatalf("remaining %d one interval later", r)
	}
}

func TestLimiterReservationCancel(t *testing.T) {
	const rate, burst = 10.0, 4
	T := interval(rate)
	l := newLimiter(t, oneTier(rate, burst))
	r, err := l.ReserveString("k", 0, 3, t0)
	if err != nil || !r.Decision.Allowed || r.Decision.Remaining != 1 {
		t.Fatalf("reserve: %+v %v", r.Decision, err)
	}
	if got := remaining(t, l, "k", 0, t0); got != 1 {
		t.Fatalf("remaining %d after reserving 3 of 4", got)
	}
	if err := r.Cancel(t0); err != nil {
		t.Fatal(err)
	}
	if got := remaining(t, l, "k", 0, t0); got != burst {
		t.Fatalf("remaining %d after cancel, want %d", got, burst)
	}
	// A second Cancel of the same reservation gives back nothing more.
	acquire(t, l, "k", 0, 2, t0)
	if err := r.Cancel(t0); err != nil {
		t.Fatal(err)
	}
	if got := remaining(t, l, "k", 0, t0); got != 2 {
		t.Fatalf("remaining %d after a second cancel, want 2", got)
	}
	if s := limiterStats(t, l); s.Cancelled != 1 {
		t.Fatalf("cancelled = %d", s.Cancelled)
	}

	// Cancelling after the bucket refilled never overfills it.
	l2 := newLimiter(t, oneTier(rate, burst))
	r2, _ := l2.ReserveString("k", 0, 4, t0)
	if err := r2.Cancel(t0 + 2*T); err != nil {
		t.Fatal(err)
	}
	if got := remaining(t, l2, "k", 0, t0+2*T); got != burst {
		t.Fatalf("remaining %d, want a full bucket of %d", got, burst)
	}
	if d := acquire(t, l2, "k", 0, burst, t0+2*T); !d.Allowed {
		t.Fatal(d)
	}
	if d := acquire(t, l2, "k", 0, 1, t0+2*T); d.Allowed {
		t.Fatal("cancel overfilled the bucket")
	}

	// Cancelling part-way gives back only what has not refilled yet.
	l3 := newLimiter(t, oneTier(rate, burst))
	r3, _ := l3.ReserveString("k", 0, 4, t0)
	if err := r3.Cancel(t0 + T); err != nil {
		t.Fatal(err)
	}
	if got := remaining(t, l3, "k", 0, t0+T); got != burst {
		t.Fatalf("remaining %d, want %d", got, burst)
	}

	// A rejected reservation holds nothing; cancelling it is a no-op.
	l4 := newLimiter(t, oneTier(rate, 1))
	acquire(t, l4, "k", 0, 1, t0)
	rj, err := l4.ReserveString("k", 0, 1, t0)
	if err != nil || rj.Decision.Allowed {
		t.Fatalf("reserve on an empty bucket: %+v %v", rj.Decision, err)
	}
	if err := rj.Cancel(t0); err != nil {
		t.Fatal(err)
	}
	if got := remaining(t, l4, "k", 0, t0); got != 0 {
		t.Fatalf("cancelling a rejected reservation gave back %d", got)
	}
	var zero Reservation
	if err := zero.Cancel(t0); err != nil {
		t.Fatalf("zero Reservation: %v", err)
	}
	var nilRes *Reservation
	wantStatus(t, nilRes.Cancel(t0), ErrInvalid, "nil *Reservation")
}

func TestLimiterShadow(t *testing.T) {
	l := newLimiter(t, LimiterOptions{Tiers: []Tier{{Name: "t", Rate: 1, Burst: 1}}, Shadow: true})
	if d := acquire(t, l, "k", 0, 1, t0); !d.Allowed || d.Shadow {
		t.Fatalf("first: %+v", d)
	}
	d := acquire(t, l, "k", 0, 1, t0)
	if !d.Allowed || !d.Shadow || d.Reason != ReasonRate || d.RetryAfterNs != second {
		t.Fatalf("shadowed: %+v, want admitted, flagged, with the would-be reason and wait", d)
	}
	d = acquire(t, l, "k", 0, 2, t0)
	if !d.Allowed || !d.Shadow || d.Reason != ReasonCostExceedsBurst {
		t.Fatalf("shadowed cost > burst: %+v", d)
	}
	s := limiterStats(t, l)
	if s.Admitted != 3 || s.Rejected != 0 || s.ShadowRejected != 2 {
		t.Fatalf("stats %+v", s)
	}
	if err := l.SetShadow(false); err != nil {
		t.Fatal(err)
	}
	if d := acquire(t, l, "k", 0, 1, t0); d.Allowed || d.Shadow {
		t.Fatalf("after shadow off: %+v", d)
	}
	if err := l.SetShadow(true); err != nil {
		t.Fatal(err)
	}
	if d := acquire(t, l, "k", 0, 1, t0); !d.Allowed || !d.Shadow {
		t.Fatalf("after shadow on: %+v", d)
	}
}

func TestLimiterMultiplier(t *testing.T) {
	const rate, burst = 100.0, 4
	T := interval(rate) // 10 ms
	l := newLimiter(t, oneTier(rate, burst))
	if m, err := l.Multiplier(); err != nil || m != 1 {
		t.Fatalf("default multiplier %v %v", m, err)
	}
	acquire(t, l, "k", 0, burst, t0)
	// One token has refilled at t0+T; doubling the rate then keeps it.
	change := t0 + T
	if err := l.SetMultiplier(2, change); err != nil {
		t.Fatal(err)
	}
	if m, _ := l.Multiplier(); m != 2 {
		t.Fatalf("multiplier %v", m)
	}
	if r := remaining(t, l, "k", 0, change); r != 1 {
		t.Fatalf("remaining %d right after the change, want the 1 token held", r)
	}
	if d := acquire(t, l, "k", 0, 1, change); !d.Allowed {
		t.Fatalf("the token held at the change: %+v", d)
	}
	d := acquire(t, l, "k", 0, 1, change)
	if d.Allowed || d.RetryAfterNs != T/2 {
		t.Fatalf("at rate 100 x 2: %+v, want a wait of %d", d, T/2)
	}
	if d := acquire(t, l, "k", 0, 1, change+T/2); !d.Allowed {
		t.Fatalf("after the halved interval: %+v", d)
	}
	// A change never creates tokens, however large.
	now := change + T/2
	before := remaining(t, l, "k", 0, now)
	if err := l.SetMultiplier(1e6, now); err != nil {
		t.Fatal(err)
	}
	if r := remaining(t, l, "k", 0, now); r != before {
		t.Fatalf("remaining %d -> %d across a multiplier change", before, r)
	}
	for _, bad := range []float64{0, -1, 1e-7, 2e6, math.NaN(), math.Inf(1), math.Inf(-1)} {
		wantStatus(t, l.SetMultiplier(bad, now), ErrRange, fmt.Sprintf("SetMultiplier(%v)", bad))
	}
	if m, _ := l.Multiplier(); m != 1e6 {
		t.Fatalf("a rejected multiplier changed it to %v", m)
	}

	half := newLimiter(t, LimiterOptions{Tiers: []Tier{{Name: "t", Rate: rate, Burst: 1}}, Multiplier: 0.5})
	acquire(t, half, "k", 0, 1, t0)
	if d := acquire(t, half, "k", 0, 1, t0); d.RetryAfterNs != 2*T {
		t.Fatalf("retry %d at rate 100 x 0.5, want %d", d.RetryAfterNs, 2*T)
	}
}

// Three levels: accounts under a desk under a global limit. Every level
// must admit; a rejection gives back what the levels below took.
func TestLimiterHierarchy(t *testing.T) {
	global := newLimiter(t, oneTier(1, 3))
	desk := newLimiter(t, LimiterOptions{Tiers: []Tier{{Name: "t", Rate: 1, Burst: 5}}, Parent: global})
	accts := newLimiter(t, LimiterOptions{Tiers: []Tier{{Name: "t", Rate: 1, Burst: 10}}, Parent: desk})
	for i, k := range []string{"a", "b", "a"} {
		if d := acquire(t, accts, k, 0, 1, t0); !d.Allowed {
			t.Fatalf("request %d: %+v", i, d)
		}
	}
	d := acquire(t, accts, "c", 0, 1, t0)
	if d.Allowed || d.Reason != ReasonParent || d.RetryAfterNs != second {
		t.Fatalf("the fourth request: %+v, want the global limit's rejection", d)
	}
	if r := remaining(t, accts, "c", 0, t0); r != 10 {
		t.Fatalf("account c holds %d, want 10 (refunded)", r)
	}
	if r := remaining(t, desk, "", 0, t0); r != 2 {
		t.Fatalf("desk holds %d, want 5 - 3 = 2 (refunded)", r)
	}
	if r := remaining(t, global, "", 0, t0); r != 0 {
		t.Fatalf("global holds %d", r)
	}
	// A reservation through every level cancels at every level.
	later := t0 + 10*second
	r, err := accts.ReserveString("a", 0, 2, later)
	if err != nil || !r.Decision.Allowed {
		t.Fatalf("reserve %+v %v", r.Decision, err)
	}
	if g, dk := remaining(t, global, "", 0, later), remaining(t, desk, "", 0, later); g != 1 || dk != 3 {
		t.Fatalf("after reserving 2: global %d desk %d", g, dk)
	}
	if err := r.Cancel(later); err != nil {
		t.Fatal(err)
	}
	for name, l := range map[string]*Limiter{"global": global, "desk": desk} {
		if got, want := remaining(t, l, "", 0, later), map[string]uint64{"global": 3, "desk": 5}[name]; got != want {
			t.Fatalf("%s holds %d after cancel, want %d", name, got, want)
		}
	}
	if got := remaining(t, accts, "a", 0, later); got != 10 {
		t.Fatalf("account holds %d after cancel", got)
	}
}

// A parent limit applies to every child key; when it rejects, the child's
// tokens are given back.
func TestLimiterParentRefund(t *testing.T) {
	parent := newLimiter(t, LimiterOptions{Tiers: []Tier{{Name: "global", Rate: 10, Burst: 2}}})
	child := newLimiter(t, LimiterOptions{
		Tiers:  []Tier{{Name: "acct", Rate: 100, Burst: 10}, {Name: "vip", Rate: 100, Burst: 10}},
		Parent: parent,
	})
	if d := acquire(t, child, "a", 0, 1, t0); !d.Allowed {
		t.Fatal(d)
	}
	if d := acquire(t, child, "b", 1, 1, t0); !d.Allowed { // tier 1 maps to the parent's tier 0
		t.Fatal(d)
	}
	d := acquire(t, child, "a", 0, 1, t0)
	if d.Allowed || d.Reason != ReasonParent || d.RetryAfterNs != interval(10) {
		t.Fatalf("third request: %+v, want parent rejection with the parent's wait", d)
	}
	if r := remaining(t, child, "a", 0, t0); r != 9 {
		t.Fatalf("child bucket holds %d, want 9: the parent's rejection must refund it", r)
	}
	if r := remaining(t, parent, "", 0, t0); r != 0 {
		t.Fatalf("parent bucket holds %d", r)
	}
	ps := limiterStats(t, parent)
	if ps.Admitted != 2 || ps.Rejected != 1 {
		t.Fatalf("parent stats %+v", ps)
	}
	// A reservation through a parent gives back to both.
	later := t0 + second
	r, err := child.ReserveString("a", 0, 2, later)
	if err != nil || !r.Decision.Allowed {
		t.Fatalf("reserve %+v %v", r.Decision, err)
	}
	if rp := remaining(t, parent, "", 0, later); rp != 0 {
		t.Fatalf("parent holds %d after the reservation", rp)
	}
	if err := r.Cancel(later); err != nil {
		t.Fatal(err)
	}
	if rp := remaining(t, parent, "", 0, later); rp != 2 {
		t.Fatalf("parent holds %d after cancel, want 2", rp)
	}
	if rc := remaining(t, child, "a", 0, later); rc != 10 {
		t.Fatalf("child holds %d after cancel, want 10", rc)
	}
}

// The child keeps its parent alive: dropping every reference to the parent
// and collecting garbage leaves the parent limit in force.
func TestLimiterChildKeepsParentAlive(t *testing.T) {
	child := func() *Limiter {
		parent, err := NewLimiter(oneTier(1, 1))
		if err != nil {
			t.Fatal(err)
		}
		c, err := NewLimiter(LimiterOptions{Tiers: []Tier{{Name: "t", Rate: 1000, Burst: 100}}, Parent: parent})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}()
	defer child.Close()
	for i := 0; i < 5; i++ {
		runtime.GC()
	}
	if d := acquire(t, child, "a", 0, 1, t0); !d.Allowed {
		t.Fatal(d)
	}
	if d := acquire(t, child, "b", 0, 1, t0); d.Allowed || d.Reason != ReasonParent {
		t.Fatalf("parent limit lost after GC: %+v", d)
	}
	// Closing the parent explicitly is allowed too: the child still works.
	p2, _ := NewLimiter(oneTier(1, 1))
	c2, err := NewLimiter(LimiterOptions{Parent: p2})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	p2.Close()
	acquire(t, c2, "a", 0, 1, t0)
	if d := acquire(t, c2, "b", 0, 1, t0); d.Allowed || d.Reason != ReasonParent {
		t.Fatalf("parent limit lost after closing the parent: %+v", d)
	}
	// A closed limiter cannot become a parent.
	_, err = NewLimiter(LimiterOptions{Parent: p2})
	wantStatus(t, err, ErrInvalid, "closed parent")
}

func TestLimiterCapacity(t *testing.T) {
	const rate, capacity = 1.0, 5
	l := newLimiter(t, LimiterOptions{Tiers: []Tier{{Name: "t", Rate: rate, Burst: 1}}, Capacity: capacity})
	if slots := limiterStats(t, l).Capacity; slots < capacity {
		t.Fatalf("%d slots for %d keys", slots, capacity)
	}
	// Exactly `capacity` keys are held; the next new key finds no idle
	// bucket and is rejected with the wait until one goes idle.
	for i := 0; i < capacity; i++ {
		if d := acquire(t, l, fmt.Sprintf("key-%d", i), 0, 1, t0); !d.Allowed {
			t.Fatalf("key %d of %d rejected: %+v", i, capacity, d)
		}
	}
	d := acquire(t, l, "one-too-many", 0, 1, t0)
	if d.Allowed || d.Reason != ReasonCapacity || d.RetryAfterNs != second {
		t.Fatalf("key %d: %+v, want a capacity rejection with a wait of 1s", capacity+1, d)
	}
	// Peek predicts the same and inserts nothing.
	if p, _ := l.PeekString("another", 0, 1, t0); p.Allowed || p.Reason != ReasonCapacity {
		t.Fatalf("peek at capacity: %+v", p)
	}
	// Keys already held are unaffected.
	if d := acquire(t, l, "key-0", 0, 1, t0); d.Reason != ReasonRate {
		t.Fatalf("a held key at capacity: %+v", d)
	}
	s := limiterStats(t, l)
	if s.CapacityRejected != 1 || s.Keys != capacity {
		t.Fatalf("stats %+v", s)
	}
	// Once buckets are idle (full again) a new key evicts one.
	later := t0 + second
	if d := acquire(t, l, "newcomer", 0, 1, later); !d.Allowed {
		t.Fatalf("after buckets went idle: %+v", d)
	}
	if s := limiterStats(t, l); s.Evictions != 1 || s.Keys != capacity {
		t.Fatalf("stats %+v after an eviction", s)
	}

	// With OnFullOverflow the keys that find no room share one bucket.
	o := newLimiter(t, LimiterOptions{Tiers: []Tier{{Name: "t", Rate: rate, Burst: 1}}, Capacity: capacity, OnFull: OnFullOverflow})
	for i := 0; i < capacity; i++ {
		acquire(t, o, fmt.Sprintf("key-%d", i), 0, 1, t0)
	}
	admitted := 0
	for i := 0; i < 10; i++ {
		if d := acquire(t, o, fmt.Sprintf("extra-%d", i), 0, 1, t0); d.Allowed {
			admitted++
		} else if d.Reason != ReasonRate {
			t.Fatalf("overflow rejection reason %v", d.Reason)
		}
	}
	if admitted != 1 {
		t.Fatalf("%d extra keys admitted through a shared overflow bucket of burst 1, want 1", admitted)
	}
}

func TestLimiterBatchEqualsSingle(t *testing.T) {
	opts := func() LimiterOptions {
		return LimiterOptions{Tiers: []Tier{{Name: "a", Rate: 50, Burst: 5}, {Name: "b", Rate: 1000, Burst: 3}}}
	}
	single := newLimiter(t, opts())
	batch := newLimiter(t, opts())
	packed := newLimiter(t, opts())
	rng := rand.New(rand.NewSource(1))
	names := []string{"", "a", "bb", "acct-123", "\x00", "a"}
	now := t0
	for round := 0; round < 50; round++ {
		n := rng.Intn(40)
		keys := make([][]byte, n)
		tiers := make([]uint32, n)
		costs := make([]uint32, n)
		var buf []byte
		offs := []uint32{0}
		for i := range keys {
			keys[i] = []byte(names[rng.Intn(len(names))])
			tiers[i] = uint32(rng.Intn(2))
			costs[i] = uint32(1 + rng.Intn(6)) // sometimes above either burst
			buf = append(buf, keys[i]...)
			offs = append(offs, uint32(len(buf)))
		}
		got := make([]Decision, n)
		if err := batch.AcquireMany(keys, tiers, costs, now, got); err != nil {
			t.Fatal(err)
		}
		gotPacked := make([]Decision, n+3) // longer than needed: the tail is untouched
		if err := packed.AcquirePacked(buf, offs, tiers, costs, now, gotPacked); err != nil {
			t.Fatal(err)
		}
		for i := range keys {
			want, err := single.Acquire(keys[i], tiers[i], costs[i], now)
			if err != nil {
				t.Fatal(err)
			}
			if got[i] != want || gotPacked[i] != want {
				t.Fatalf("round %d item %d: batch %+v, packed %+v, single %+v", round, i, got[i], gotPacked[i], want)
			}
		}
		for _, d := range gotPacked[n:] {
			if d != (Decision{}) {
				t.Fatal("AcquirePacked wrote past n")
			}
		}
		now += uint64(rng.Intn(int(30 * interval(50))))
	}
	if a, b := limiterStats(t, single), limiterStats(t, batch); a != b {
		t.Fatalf("stats differ: single %+v batch %+v", a, b)
	}
	// Defaults: nil tiers and costs mean tier 0, cost 1.
	out := make([]Decision, 6)
	if err := newLimiter(t, oneTier(1, 5)).AcquireMany(make([][]byte, 6), nil, nil, t0, out); err != nil {
		t.Fatal(err)
	}
	for i, d := range out {
		if d.Allowed != (i < 5) {
			t.Fatalf("default batch item %d: %+v", i, d)
		}
	}
}

// Many goroutines on a few keys at one instant: exactly burst admitted per
// key, and the counts reconcile.
func TestLimiterConcurrent(t *testing.T) {
	const burst, goroutines, perG = 50, 8, 400
	l := newLimiter(t, oneTier(10, burst))
	keys := []string{"a", "b", "c", "d"}
	var mu sync.Mutex
	admitted := map[string]int{}
	rejected := 0
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			local := map[string]int{}
			rej := 0
			batchKeys := [][]byte{[]byte("a"), []byte("b")}
			out := make([]Decision, 2)
			for i := 0; i < perG; i++ {
				k := keys[(g+i)%len(keys)]
				if i%10 == 0 {
					if err := l.AcquireMany(batchKeys, nil, nil, t0, out); err != nil {
						t.Error(err)
						return
					}
					for j, d := range out {
						if d.Allowed {
							local[string(batchKeys[j])]++
						} else {
							rej++
						}
					}
					continue
				}
				d, err := l.AcquireString(k, 0, 1, t0)
				if err != nil {
					t.Error(err)
					return
				}
				if d.Allowed {
					local[k]++
				} else {
					rej++
				}
			}
			mu.Lock()
			for k, v := range local {
				admitted[k] += v
			}
			rejected += rej
			mu.Unlock()
		}(g)
	}
	wg.Wait()
	total := 0
	for _, k := range keys {
		if admitted[k] != burst {
			t.Errorf("key %q: %d admitted at one instant, want burst %d", k, admitted[k], burst)
		}
		total += admitted[k]
	}
	offered := goroutines * (perG + perG/10) // a batch of 2 replaces every tenth single
	if total+rejected != offered {
		t.Fatalf("admitted %d + rejected %d != offered %d", total, rejected, offered)
	}
	s := limiterStats(t, l)
	if s.Admitted != uint64(total) || s.Rejected != uint64(rejected) {
		t.Fatalf("stats %+v, counted %d/%d", s, total, rejected)
	}
}

// Close may race with calls in progress: each call either completes or
// reports ErrClosed, and nothing crashes.
func TestLimiterCloseRace(t *testing.T) {
	for round := 0; round < 20; round++ {
		l, err := NewLimiter(oneTier(1e6, 100))
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		start := make(chan struct{})
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				out := make([]Decision, 3)
				keys := [][]byte{[]byte("x"), nil, []byte("y")}
				for i := 0; i < 200; i++ {
					if _, err := l.AcquireString("k", 0, 1, t0+uint64(i)); err != nil && err != ErrClosed {
						t.Error(err)
					}
					if err := l.AcquireMany(keys, nil, nil, t0, out); err != nil && err != ErrClosed {
						t.Error(err)
					}
				}
			}()
		}
		close(start)
		l.Close()
		wg.Wait()
		if _, err := l.AcquireString("k", 0, 1, t0); err != ErrClosed {
			t.Fatalf("after Close: %v", err)
		}
	}
}
