package tollgate

import (
	"fmt"
	"math"
	"testing"
)

// batchKeys returns n distinct keys.
func batchKeys(n int) [][]byte {
	keys := make([][]byte, n)
	for i := range keys {
		keys[i] = []byte(fmt.Sprintf("account-%06d", i))
	}
	return keys
}

// A warm AcquireMany of 1000 keys allocates nothing per decision: at most a
// small constant per batch (zero in practice).
func TestAcquireManyDoesNotAllocate(t *testing.T) {
	l := newLimiter(t, LimiterOptions{Tiers: []Tier{{Name: "t", Rate: 1e6, Burst: 1000}}, Capacity: 4096})
	keys := batchKeys(1000)
	tiers := make([]uint32, len(keys))
	costs := make([]uint32, len(keys))
	for i := range costs {
		costs[i] = 1
	}
	out := make([]Decision, len(keys))
	now := t0
	run := func() {
		now += 1000
		if err := l.AcquireMany(keys, tiers, costs, now, out); err != nil {
			t.Fatal(err)
		}
	}
	run() // warm: the reusable buffers grow once
	if allocs := testing.AllocsPerRun(100, run); allocs > 1 {
		t.Fatalf("AcquireMany(1000 keys) allocates %.1f times per batch, want at most 1", allocs)
	}
	for i, d := range out {
		if !d.Allowed {
			t.Fatalf("decision %d rejected: %+v", i, d)
		}
	}
	packed := make([]byte, 0, 16*len(keys))
	offs := []uint32{0}
	for _, k := range keys {
		packed = append(packed, k...)
		offs = append(offs, uint32(len(packed)))
	}
	if allocs := testing.AllocsPerRun(100, func() {
		now += 1000
		if err := l.AcquirePacked(packed, offs, nil, nil, now, out); err != nil {
			t.Fatal(err)
		}
	}); allocs > 1 {
		t.Fatalf("AcquirePacked(1000 keys) allocates %.1f times per batch", allocs)
	}
}

// The single-decision paths allocate nothing: every pointer handed to C
// stays on the Go stack (#cgo noescape).
func TestSingleCallsDoNotAllocate(t *testing.T) {
	l := newLimiter(t, oneTier(1e6, 100))
	b := newBreaker(t, BreakerOptions{MaxInFlight: 10})
	key := []byte("account-1")
	now := t0
	checks := map[string]func(){
		"Acquire":       func() { now += 1000; l.Acquire(key, 0, 1, now) },
		"AcquireString": func() { now += 1000; l.AcquireString("account-2", 0, 1, now) },
		"Peek":          func() { l.Peek(key, 0, 1, now) },
		"Remaining":     func() { l.Remaining(key, 0, now) },
		"Reserve+Cancel": func() {
			r, _ := l.Reserve(key, 0, 1, now)
			r.Cancel(now)
		},
		"Stats": func() { l.Stats() },
		"Breaker Acquire+Record": func() {
			p, _ := b.Acquire(now)
			b.Record(p, OutcomeSuccess, 100, now)
		},
		"Breaker State": func() { b.State() },
		"NowNs":         func() { NowNs() },
	}
	for name, f := range checks {
		f()
		if allocs := testing.AllocsPerRun(200, f); allocs != 0 {
			t.Errorf("%s allocates %.2f times per call", name, allocs)
		}
	}
	permits := make([]Permit, 1000)
	outcomes := make([]Outcome, 1000)
	batch := func() {
		b.AcquireMany(now, permits)
		b.RecordMany(permits, outcomes, nil, now)
	}
	bb := newBreaker(t, BreakerOptions{})
	b = bb
	batch()
	if allocs := testing.AllocsPerRun(100, batch); allocs > 1 {
		t.Errorf("Breaker AcquireMany+RecordMany(1000) allocates %.1f times per batch", allocs)
	}
	if s := bstats(t, bb, now); s.Successes != 102*1000 || s.InFlight != 0 {
		t.Fatalf("batches did not run: %+v", s)
	}
}

// Check passes the order's strings without copying and its decision on the
// Go stack: no allocation. A warm CheckMany reuses its buffers.
func TestRiskCheckDoesNotAllocate(t *testing.T) {
	cache := newPriceCache(t, PriceCacheOptions{NoMaxAge: true})
	if err := cache.Put([]byte("AAPL"), 100, 1, nil, t0, nil); err != nil {
		t.Fatal(err)
	}
	r := newRiskChecker(t, RiskOptions{CollarWidth: 5, MaxNotional: 1e6, AccountMaxOrders: 1 << 40,
		DuplicateWindowNs: 1000}, cache)
	ids := batchKeys(1000) // heap strings, as a host's would be
	orders := make([]RiskOrder, len(ids))
	for i, id := range ids {
		orders[i] = RiskOrder{Account: "acct-1", Instrument: "AAPL", ClientOrderID: string(id), Quantity: 10, LimitPrice: 101}
	}
	now := t0
	i := 0
	var d RiskDecision
	checks := map[string]func(){
		"Check": func() {
			now += 1000
			i = (i + 1) % len(orders)
			d, _ = r.Check(orders[i], now)
		},
		"Check(literal)": func() {
			now += 1000
			d, _ = r.Check(RiskOrder{Account: "acct-2", Instrument: "AAPL", ClientOrderID: "x", Quantity: 1, LimitPrice: math.NaN()}, now)
		},
		"Engaged": func() { r.Engaged(KillAccount, "acct-1") },
		"Stats":   func() { r.Stats() },
	}
	for name, f := range checks {
		f()
		if allocs := testing.AllocsPerRun(200, f); allocs != 0 {
			t.Errorf("%s allocates %.2f times per call", name, allocs)
		}
		if name != "Engaged" && name != "Stats" && !d.Allowed {
			t.Errorf("%s: %+v, want accepted orders", name, d)
		}
	}
	out := make([]RiskDecision, len(orders))
	batch := func() {
		now += 1000 * 1000
		if err := r.CheckMany(orders, now, out); err != nil {
			t.Fatal(err)
		}
	}
	batch() // warm: the reusable buffers grow once
	if allocs := testing.AllocsPerRun(50, batch); allocs != 0 {
		t.Errorf("CheckMany(1000 orders) allocates %.1f times per batch", allocs)
	}
	for i, d := range out {
		if !d.Allowed {
			t.Fatalf("decision %d rejected: %+v", i, d)
		}
	}
}
