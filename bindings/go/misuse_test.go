package tollgate

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestVersion(t *testing.T) {
	if err := CheckVersion(); err != nil {
		t.Fatal(err)
	}
	if VersionNumber() != BindingVersionNumber {
		t.Fatalf("loaded %d, built against %d", VersionNumber(), BindingVersionNumber)
	}
	if want := fmt.Sprintf("%d.%d.%d", VersionNumber()/10000, VersionNumber()/100%100, VersionNumber()%100); Version() != want {
		t.Fatalf("Version() = %q, want %q", Version(), want)
	}
	cases := []struct {
		built, loaded uint
		ok            bool
	}{
		{100, 100, true},
		{100, 101, true},    // a newer patch
		{100, 199, true},    // the last patch of 0.1
		{100, 200, false},   // 0.2 may break 0.1
		{101, 100, false},   // an older library than the header
		{100, 10100, false}, // another major
		{10000, 10500, true},
		{10500, 10000, false},
		{10000, 20000, false},
	}
	for _, c := range cases {
		if got := versionCompatible(c.built, c.loaded); got != c.ok {
			t.Errorf("versionCompatible(%d, %d) = %v, want %v", c.built, c.loaded, got, c.ok)
		}
	}
}

func TestNowNs(t *testing.T) {
	a := NowNs()
	time.Sleep(2 * time.Millisecond)
	b := NowNs()
	if a == 0 || b < a+uint64(time.Millisecond) || b > a+uint64(10*time.Second) {
		t.Fatalf("NowNs: %d then %d across a 2 ms sleep", a, b)
	}
}

func TestStatusAndError(t *testing.T) {
	names := map[Status]string{
		ErrInvalid: "TG_EINVAL", ErrNoMem: "TG_ENOMEM", ErrRange: "TG_ERANGE", ErrVersion: "TG_EVERSION",
		ErrTooSmall: "TG_ETOOSMALL", ErrNotFound: "TG_ENOTFOUND", ErrState: "TG_ESTATE",
		ErrInternal: "TG_EINTERNAL", OK: "TG_OK", Status(-1000): "TG_UNKNOWN",
	}
	for s, want := range names {
		if s.String() != want {
			t.Errorf("Status(%d).String() = %q, want %q", int(s), s.String(), want)
		}
	}
	if ErrRange.Error() != "tollgate: TG_ERANGE" {
		t.Errorf("ErrRange.Error() = %q", ErrRange.Error())
	}
	var err error = &Error{Status: ErrNotFound, Message: "no tier called \"x\""}
	if err.Error() != `tollgate: TG_ENOTFOUND: no tier called "x"` {
		t.Errorf("Error() = %q", err.Error())
	}
	if !errors.Is(err, ErrNotFound) || errors.Is(err, ErrInvalid) {
		t.Error("errors.Is does not see the Status")
	}
	var st Status
	if !errors.As(err, &st) || st != ErrNotFound {
		t.Error("errors.As does not extract the Status")
	}
	wrapped := fmt.Errorf("placing order: %w", err)
	var te *Error
	if !errors.As(wrapped, &te) || te.Status != ErrNotFound {
		t.Error("errors.As does not find the *Error through wrapping")
	}
	if !errors.Is(ErrClosed, ErrInvalid) {
		t.Error("ErrClosed does not wrap ErrInvalid")
	}
	if (&Error{Status: ErrState}).Error() != "tollgate: TG_ESTATE" {
		t.Error("an Error without message")
	}
}

func TestLimiterOptionsInvalid(t *testing.T) {
	tier := func(name string, rate float64, burst uint32) LimiterOptions {
		return LimiterOptions{Tiers: []Tier{{Name: name, Rate: rate, Burst: burst}}}
	}
	many := make([]Tier, 65)
	for i := range many {
		many[i] = Tier{Name: fmt.Sprintf("t%d", i), Rate: 1, Burst: 1}
	}
	closed, _ := NewLimiter(LimiterOptions{})
	closed.Close()
	cases := []struct {
		name string
		o    LimiterOptions
		want Status
	}{
		{"rate NaN", tier("t", math.NaN(), 1), ErrRange},
		{"rate +Inf", tier("t", math.Inf(1), 1), ErrRange},
		{"rate -Inf", tier("t", math.Inf(-1), 1), ErrRange},
		{"rate negative", tier("t", -5, 1), ErrRange},
		{"rate zero", tier("t", 0, 1), ErrRange},
		{"rate above 1e9", tier("t", 1.5e9, 1), ErrRange},
		{"burst interval overflow", tier("t", 1e-9, 1000), ErrRange},
		{"burst zero", tier("t", 1, 0), ErrInvalid},
		{"empty name", tier("", 1, 1), ErrInvalid},
		{"name of 64 bytes", tier(strings.Repeat("n", 64), 1, 1), ErrInvalid},
		{"name with NUL", tier("a\x00b", 1, 1), ErrInvalid},
		{"duplicate names", LimiterOptions{Tiers: []Tier{{"a", 1, 1}, {"a", 2, 2}}}, ErrInvalid},
		{"65 tiers", LimiterOptions{Tiers: many}, ErrInvalid},
		{"capacity above 2^26", LimiterOptions{Capacity: 1<<26 + 1}, ErrRange},
		{"on-full unknown", LimiterOptions{OnFull: 2}, ErrInvalid},
		{"multiplier negative", LimiterOptions{Multiplier: -1}, ErrRange},
		{"multiplier below 1e-6", LimiterOptions{Multiplier: 1e-7}, ErrRange},
		{"multiplier NaN", LimiterOptions{Multiplier: math.NaN()}, ErrRange},
		{"multiplier +Inf", LimiterOptions{Multiplier: math.Inf(1)}, ErrRange},
		{"multiplier above 1e6", LimiterOptions{Multiplier: 2e6}, ErrRange},
		{"closed parent", LimiterOptions{Parent: closed}, ErrInvalid},
	}
	for _, c := range cases {
		l, err := NewLimiter(c.o)
		if l != nil {
			l.Close()
			t.Errorf("%s: accepted", c.name)
			continue
		}
		wantStatus(t, err, c.want, c.name)
	}
	// The limits themselves are accepted.
	for _, o := range []LimiterOptions{
		tier(strings.Repeat("n", 63), 1e9, math.MaxUint32/1000),
		{Tiers: many[:64]}, {Capacity: 1}, {Multiplier: 1e6}, {Multiplier: 1e-6},
		{OnFull: OnFullOverflow},
	} {
		l, err := NewLimiter(o)
		if err != nil {
			t.Errorf("%+v rejected: %v", o, err)
			continue
		}
		l.Close()
	}
}

func TestBreakerOptionsInvalid(t *testing.T) {
	cases := []struct {
		name string
		o    BreakerOptions
		want Status
	}{
		{"window type", BreakerOptions{WindowType: 2}, ErrInvalid},
		{"count window too large", BreakerOptions{WindowSize: 65537}, ErrRange},
		{"time window too large", BreakerOptions{WindowType: WindowTime, WindowSize: 257}, ErrRange},
		{"minimum calls above window", BreakerOptions{WindowSize: 10, MinimumCalls: 11}, ErrInvalid},
		{"failure threshold above 100", BreakerOptions{FailureRateThreshold: 100.5}, ErrRange},
		{"failure threshold negative", BreakerOptions{FailureRateThreshold: -1}, ErrRange},
		{"failure threshold NaN", BreakerOptions{FailureRateThreshold: math.NaN()}, ErrRange},
		{"slow threshold above 100", BreakerOptions{SlowRateThreshold: 101}, ErrRange},
		{"slow threshold +Inf", BreakerOptions{SlowRateThreshold: math.Inf(1)}, ErrRange},
		{"backoff below 1", BreakerOptions{BackoffMultiplier: 0.5}, ErrRange},
		{"backoff NaN", BreakerOptions{BackoffMultiplier: math.NaN()}, ErrRange},
		{"probes above 1024", BreakerOptions{HalfOpenProbes: 1025}, ErrRange},
		{"max open below open", BreakerOptions{OpenDuration: 2 * time.Second, MaxOpenDuration: time.Second}, ErrRange},
		{"open above 2^62 ns", BreakerOptions{OpenDuration: 1<<62 + 1, MaxOpenDuration: math.MaxInt64}, ErrRange},
		{"negative bucket", BreakerOptions{BucketWidth: -1}, ErrRange},
		{"negative slow call", BreakerOptions{SlowCallDuration: -time.Second}, ErrRange},
		{"negative open", BreakerOptions{OpenDuration: -1}, ErrRange},
		{"negative max open", BreakerOptions{MaxOpenDuration: -1}, ErrRange},
		{"negative max half-open", BreakerOptions{MaxHalfOpenDuration: -1}, ErrRange},
	}
	for _, c := range cases {
		b, err := NewBreaker(c.o)
		if b != nil {
			b.Close()
			t.Errorf("%s: accepted", c.name)
			continue
		}
		wantStatus(t, err, c.want, c.name)
	}
}

// Every method of a nil or closed Limiter returns an error wrapping
// ErrInvalid; none crashes.
func TestLimiterNilAndClosed(t *testing.T) {
	calls := map[string]func(l *Limiter) error{
		"Acquire":       func(l *Limiter) error { _, err := l.Acquire([]byte("k"), 0, 1, t0); return err },
		"AcquireString": func(l *Limiter) error { _, err := l.AcquireString("k", 0, 1, t0); return err },
		"Peek":          func(l *Limiter) error { _, err := l.Peek(nil, 0, 1, t0); return err },
		"PeekString":    func(l *Limiter) error { _, err := l.PeekString("k", 0, 1, t0); return err },
		"Remaining":     func(l *Limiter) error { _, err := l.Remaining(nil, 0, t0); return err },
		"RemainingString": func(l *Limiter) error {
			_, err := l.RemainingString("k", 0, t0)
			return err
		},
		"Reserve":       func(l *Limiter) error { _, err := l.Reserve(nil, 0, 1, t0); return err },
		"ReserveString": func(l *Limiter) error { _, err := l.ReserveString("k", 0, 1, t0); return err },
		"AcquireMany": func(l *Limiter) error {
			return l.AcquireMany([][]byte{[]byte("k")}, nil, nil, t0, make([]Decision, 1))
		},
		"AcquireMany(empty)": func(l *Limiter) error { return l.AcquireMany(nil, nil, nil, t0, nil) },
		"AcquirePacked": func(l *Limiter) error {
			return l.AcquirePacked([]byte("k"), []uint32{0, 1}, nil, nil, t0, make([]Decision, 1))
		},
		"SetMultiplier": func(l *Limiter) error { return l.SetMultiplier(2, t0) },
		"Multiplier":    func(l *Limiter) error { _, err := l.Multiplier(); return err },
		"SetShadow":     func(l *Limiter) error { return l.SetShadow(true) },
		"TierIndex":     func(l *Limiter) error { _, err := l.TierIndex("t"); return err },
		"TierCount":     func(l *Limiter) error { _, err := l.TierCount(); return err },
		"Stats":         func(l *Limiter) error { _, err := l.Stats(); return err },
	}
	closed, err := NewLimiter(oneTier(1, 1))
	if err != nil {
		t.Fatal(err)
	}
	res, err := closed.ReserveString("k", 0, 1, t0)
	if err != nil || !res.Decision.Allowed {
		t.Fatal(res, err)
	}
	if err := closed.Close(); err != nil {
		t.Fatal(err)
	}
	if err := closed.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	var nilLim *Limiter
	if err := nilLim.Close(); err != nil {
		t.Fatalf("nil Close: %v", err)
	}
	for name, call := range calls {
		wantStatus(t, call(nil), ErrInvalid, name+" on nil")
		err := call(closed)
		if err != ErrClosed {
			t.Errorf("%s on a closed limiter: %v, want ErrClosed", name, err)
		}
	}
	if err := res.Cancel(t0); err != ErrClosed {
		t.Errorf("Cancel on a closed limiter: %v, want ErrClosed", err)
	}
}

func TestBreakerNilAndClosed(t *testing.T) {
	calls := map[string]func(b *Breaker) error{
		"Acquire":     func(b *Breaker) error { _, err := b.Acquire(t0); return err },
		"Record":      func(b *Breaker) error { return b.Record(Permit{}, OutcomeSuccess, 0, t0) },
		"AcquireMany": func(b *Breaker) error { return b.AcquireMany(t0, make([]Permit, 2)) },
		"AcquireMany(empty)": func(b *Breaker) error {
			return b.AcquireMany(t0, nil)
		},
		"RecordMany": func(b *Breaker) error {
			return b.RecordMany(make([]Permit, 1), []Outcome{OutcomeSuccess}, nil, t0)
		},
		"State":      func(b *Breaker) error { _, err := b.State(); return err },
		"Transition": func(b *Breaker) error { return b.Transition(StateOpen, t0) },
		"Stats":      func(b *Breaker) error { _, err := b.Stats(t0); return err },
		"OnEvent":    func(b *Breaker) error { return b.OnEvent(func(Event) {}) },
		"OnEvent(nil)": func(b *Breaker) error {
			return b.OnEvent(nil)
		},
	}
	closed, err := NewBreaker(BreakerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	closed.OnEvent(func(Event) {})
	closed.Close()
	if err := closed.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	var nilB *Breaker
	if err := nilB.Close(); err != nil {
		t.Fatalf("nil Close: %v", err)
	}
	for name, call := range calls {
		wantStatus(t, call(nil), ErrInvalid, name+" on nil")
		if err := call(closed); err != ErrClosed {
			t.Errorf("%s on a closed breaker: %v, want ErrClosed", name, err)
		}
	}
}

func TestLimiterBadArguments(t *testing.T) {
	l := newLimiter(t, LimiterOptions{Tiers: []Tier{{"a", 10, 5}, {"b", 10, 5}}})
	single := map[string]func(tier, cost uint32) error{
		"Acquire":       func(tier, cost uint32) error { _, err := l.Acquire([]byte("k"), tier, cost, t0); return err },
		"AcquireString": func(tier, cost uint32) error { _, err := l.AcquireString("k", tier, cost, t0); return err },
		"Peek":          func(tier, cost uint32) error { _, err := l.Peek([]byte("k"), tier, cost, t0); return err },
		"PeekString":    func(tier, cost uint32) error { _, err := l.PeekString("k", tier, cost, t0); return err },
		"Reserve":       func(tier, cost uint32) error { _, err := l.Reserve([]byte("k"), tier, cost, t0); return err },
		"ReserveString": func(tier, cost uint32) error { _, err := l.ReserveString("k", tier, cost, t0); return err },
	}
	for name, call := range single {
		wantStatus(t, call(0, 0), ErrInvalid, name+" cost 0")
		wantStatus(t, call(2, 1), ErrInvalid, name+" tier 2 of 2")
		wantStatus(t, call(math.MaxUint32, 1), ErrInvalid, name+" tier MaxUint32")
		if err := call(1, 1); err != nil {
			t.Errorf("%s with good arguments: %v", name, err)
		}
	}
	_, err := l.Remaining(nil, 2, t0)
	wantStatus(t, err, ErrInvalid, "Remaining tier 2 of 2")
	_, err = l.RemainingString("k", math.MaxUint32, t0)
	wantStatus(t, err, ErrInvalid, "RemainingString tier MaxUint32")

	// Batches: nothing is consumed when any entry is bad.
	before := remaining(t, l, "x", 0, t0)
	keys := [][]byte{[]byte("x"), []byte("x"), []byte("x")}
	out := make([]Decision, 3)
	bad := map[string]error{
		"short tiers":        l.AcquireMany(keys, []uint32{0, 0}, nil, t0, out),
		"long costs":         l.AcquireMany(keys, nil, []uint32{1, 1, 1, 1}, t0, out),
		"short out":          l.AcquireMany(keys, nil, nil, t0, out[:2]),
		"tier out of range":  l.AcquireMany(keys, []uint32{0, 2, 0}, nil, t0, out),
		"cost 0":             l.AcquireMany(keys, nil, []uint32{1, 1, 0}, t0, out),
		"packed: no offsets": l.AcquirePacked([]byte("xxx"), nil, nil, nil, t0, out),
		"packed: decreasing": l.AcquirePacked([]byte("xxx"), []uint32{0, 2, 1, 3}, nil, nil, t0, out),
		"packed: past keys":  l.AcquirePacked([]byte("xxx"), []uint32{0, 1, 2, 4}, nil, nil, t0, out),
		"packed: short out":  l.AcquirePacked([]byte("xxx"), []uint32{0, 1, 2, 3}, nil, nil, t0, out[:1]),
		"packed: cost 0":     l.AcquirePacked([]byte("xxx"), []uint32{0, 1, 2, 3}, nil, []uint32{0, 1, 1}, t0, out),
	}
	for name, err := range bad {
		wantStatus(t, err, ErrInvalid, "AcquireMany "+name)
	}
	if after := remaining(t, l, "x", 0, t0); after != before {
		t.Fatalf("a refused batch consumed tokens: %d -> %d", before, after)
	}
	if err := l.AcquireMany(nil, nil, nil, t0, nil); err != nil {
		t.Fatalf("empty batch: %v", err)
	}
	if err := l.AcquirePacked(nil, []uint32{0}, nil, nil, t0, nil); err != nil {
		t.Fatalf("empty packed batch: %v", err)
	}
	// A batch of empty keys only.
	if err := l.AcquireMany([][]byte{nil, {}}, nil, nil, t0, out); err != nil || !out[0].Allowed {
		t.Fatalf("batch of empty keys: %v %+v", err, out[0])
	}
	if err := l.AcquirePacked(nil, []uint32{0, 0}, nil, nil, t0, out); err != nil || !out[0].Allowed {
		t.Fatalf("packed batch of empty keys: %v %+v", err, out[0])
	}
	if s := limiterStats(t, l); s.Keys != 2 {
		t.Fatalf("keys %d, want 2 (k and the empty key)", s.Keys)
	}
}

func TestBreakerBadArguments(t *testing.T) {
	b := newBreaker(t, BreakerOptions{})
	p := bacquire(t, b, t0)
	for _, o := range []Outcome{-1, 3, 100} {
		wantStatus(t, b.Record(p, o, 0, t0), ErrInvalid, "Record outcome "+o.String())
	}
	ps := make([]Permit, 3)
	if err := b.AcquireMany(t0, ps); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, b.RecordMany(ps, []Outcome{0, 0}, nil, t0), ErrInvalid, "RecordMany short outcomes")
	wantStatus(t, b.RecordMany(ps, []Outcome{0, 0, 0}, []uint64{1}, t0), ErrInvalid, "RecordMany short latencies")
	wantStatus(t, b.RecordMany(ps, []Outcome{0, 1, 7}, nil, t0), ErrInvalid, "RecordMany bad outcome")
	if s := bstats(t, b, t0); s.Successes+s.Failures+s.Ignored != 0 {
		t.Fatalf("a refused record counted: %+v", s)
	}
	brecord(t, b, p, OutcomeSuccess, 0, t0)
	if err := b.RecordMany(ps, []Outcome{0, 1, 2}, []uint64{1, 2, 3}, t0); err != nil {
		t.Fatal(err)
	}
	if s := bstats(t, b, t0); s.Successes != 2 || s.Failures != 1 || s.Ignored != 1 {
		t.Fatalf("stats %+v", s)
	}
}

// Objects that are never closed are released by their finalizers, a child
// limiter only after its parent's Go object is no longer reachable from it.
func TestFinalizers(t *testing.T) {
	before := handlesFreed.Load()
	func() {
		for i := 0; i < 10; i++ {
			p, err := NewLimiter(LimiterOptions{})
			if err != nil {
				t.Fatal(err)
			}
			c, err := NewLimiter(LimiterOptions{Parent: p})
			if err != nil {
				t.Fatal(err)
			}
			acquire(t, c, "k", 0, 1, t0)
			b, err := NewBreaker(BreakerOptions{})
			if err != nil {
				t.Fatal(err)
			}
			b.OnEvent(func(Event) {})
			b.Transition(StateOpen, t0)
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for handlesFreed.Load()-before < 30 && time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if n := handlesFreed.Load() - before; n < 30 {
		t.Fatalf("%d of 30 unreachable objects released by finalizers", n)
	}
}

func TestRiskOptionsInvalid(t *testing.T) {
	cases := []struct {
		name   string
		o      RiskOptions
		want   Status
		needle string
	}{
		{"max quantity negative", RiskOptions{MaxQuantity: -1}, ErrRange, "max_quantity"},
		{"max quantity NaN", RiskOptions{MaxQuantity: math.NaN()}, ErrRange, "max_quantity"},
		{"max notional negative", RiskOptions{MaxNotional: -1}, ErrRange, "max_notional"},
		{"collar unit 3", RiskOptions{CollarUnit: 3}, ErrInvalid, "collar"},
		{"collar width negative", RiskOptions{CollarWidth: -0.5}, ErrRange, "collar_width"},
		{"collar width NaN", RiskOptions{CollarWidth: math.NaN()}, ErrRange, "collar_width"},
		{"collar tick size negative", RiskOptions{CollarTickSize: -0.01}, ErrRange, "collar_tick_size"},
		{"collar tick size +Inf", RiskOptions{CollarTickSize: math.Inf(1)}, ErrRange, "collar_tick_size"},
		{"account max notional negative", RiskOptions{AccountMaxNotional: -5}, ErrRange, "account_max_notional"},
		{"account capacity above 2^24", RiskOptions{AccountCapacity: 1<<24 + 1}, ErrRange, "account_capacity"},
		{"duplicate capacity above 2^26", RiskOptions{DuplicateCapacity: 1<<26 + 1}, ErrRange, "duplicate_capacity"},
		{"kill switch capacity above 2^20", RiskOptions{KillSwitchCapacity: 1<<20 + 1}, ErrRange, "kill_switch_capacity"},
		{"on-no-reference 2", RiskOptions{OnNoReference: 2}, ErrInvalid, "on_no_reference"},
	}
	for _, c := range cases {
		r, err := NewRiskChecker(c.o, nil)
		if r != nil {
			r.Close()
			t.Errorf("%s: accepted", c.name)
			continue
		}
		wantStatus(t, err, c.want, c.name)
		if err != nil && !strings.Contains(err.Error(), c.needle) {
			t.Errorf("%s: error %q does not mention %q", c.name, err, c.needle)
		}
	}
	// The limits themselves are accepted.
	for _, o := range []RiskOptions{
		{AccountCapacity: 1}, {DuplicateCapacity: 1}, {KillSwitchCapacity: 1}, {KillSwitchCapacity: 1 << 20},
		{AccountMaxOrders: 1}, {PeriodNs: 1}, {CollarUnit: CollarTicks, CollarWidth: 1e-9, CollarTickSize: 1e-9},
		{MaxQuantity: math.Inf(1)}, {Seed: 42}, {NoDuplicateCheck: true}, {MaxReferenceAgeNs: 1},
	} {
		r, err := NewRiskChecker(o, nil)
		if err != nil {
			t.Errorf("%+v rejected: %v", o, err)
			continue
		}
		r.Close()
	}
	// A nil cache is no cache; a closed one is an error.
	closed, err := NewPriceCache(PriceCacheOptions{})
	if err != nil {
		t.Fatal(err)
	}
	closed.Close()
	if r, err := NewRiskChecker(RiskOptions{}, closed); r != nil || err != ErrClosed {
		t.Fatalf("a closed price cache: %v %v, want ErrClosed", r, err)
	}
}

func TestRiskCheckerNilAndClosed(t *testing.T) {
	ord := RiskOrder{Account: "a", Instrument: "X", ClientOrderID: "1", Quantity: 1, LimitPrice: 1}
	calls := map[string]func(r *RiskChecker) error{
		"Check": func(r *RiskChecker) error { _, err := r.Check(ord, t0); return err },
		"Check(bad side)": func(r *RiskChecker) error {
			o := ord
			o.Side = 9
			_, err := r.Check(o, t0)
			return err
		},
		"CheckMany": func(r *RiskChecker) error {
			return r.CheckMany([]RiskOrder{ord}, t0, make([]RiskDecision, 1))
		},
		"CheckMany(empty)":     func(r *RiskChecker) error { return r.CheckMany(nil, t0, nil) },
		"CheckMany(short out)": func(r *RiskChecker) error { return r.CheckMany([]RiskOrder{ord}, t0, nil) },
		"Engage":               func(r *RiskChecker) error { return r.Engage(KillAccount, "a", t0) },
		"Release":              func(r *RiskChecker) error { return r.Release(KillGlobal, "", t0) },
		"Engaged":              func(r *RiskChecker) error { _, err := r.Engaged(KillInstrument, "X"); return err },
		"Stats":                func(r *RiskChecker) error { _, err := r.Stats(); return err },
		"SetKillCallback":      func(r *RiskChecker) error { return r.SetKillCallback(func(KillSwitchEvent) {}) },
		"SetKillCallback(nil)": func(r *RiskChecker) error { return r.SetKillCallback(nil) },
		"Engage(bad scope)":    func(r *RiskChecker) error { return r.Engage(7, "a", t0) },
		"Engaged(bad key)":     func(r *RiskChecker) error { _, err := r.Engaged(KillAccount, ""); return err },
		"Release(too long a key)": func(r *RiskChecker) error {
			return r.Release(KillAccount, strings.Repeat("k", 33), t0)
		},
	}
	cache, err := NewPriceCache(PriceCacheOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Close()
	closed, err := NewRiskChecker(RiskOptions{}, cache)
	if err != nil {
		t.Fatal(err)
	}
	closed.SetKillCallback(func(KillSwitchEvent) {})
	if err := closed.Close(); err != nil {
		t.Fatal(err)
	}
	if err := closed.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	var nilR *RiskChecker
	if err := nilR.Close(); err != nil {
		t.Fatalf("nil Close: %v", err)
	}
	for name, call := range calls {
		wantStatus(t, call(nil), ErrInvalid, name+" on nil")
		if err := call(closed); err != ErrClosed {
			t.Errorf("%s on a closed checker: %v, want ErrClosed", name, err)
		}
	}
	// The cache outlives the checker that held it.
	if err := cache.Put([]byte("X"), 1, 1, nil, t0, nil); err != nil {
		t.Fatalf("the cache after its checker closed: %v", err)
	}
}

func TestRiskCheckerBadArguments(t *testing.T) {
	r, err := NewRiskChecker(RiskOptions{OnNoReference: NoReferenceAllow, KillSwitchCapacity: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ord := RiskOrder{Account: "a", Instrument: "X", ClientOrderID: "1", Quantity: 1, LimitPrice: 1}
	for _, side := range []Side{2, 7, math.MaxUint32} {
		o := ord
		o.Side = side
		d, err := r.Check(o, t0)
		wantStatus(t, err, ErrInvalid, "Check side "+side.String())
		if d != (RiskDecision{}) {
			t.Errorf("a refused Check returned %+v", d)
		}
		wantStatus(t, r.CheckMany([]RiskOrder{ord, o}, t0, make([]RiskDecision, 2)), ErrInvalid, "CheckMany side "+side.String())
	}
	wantStatus(t, r.CheckMany([]RiskOrder{ord, ord}, t0, make([]RiskDecision, 1)), ErrInvalid, "CheckMany short out")
	if s, err := r.Stats(); err != nil || s.Checked != 0 {
		t.Fatalf("refused calls were counted: %+v %v", s, err)
	}
	// Malformed fields are decisions, not errors.
	for _, o := range []RiskOrder{
		{Instrument: "X", ClientOrderID: "1", Quantity: 1, LimitPrice: 1},
		{Account: "a", Instrument: "X", ClientOrderID: "1", Quantity: 0, LimitPrice: 1},
		{},
	} {
		if d, err := r.Check(o, t0); err != nil || d.Allowed || d.Reason == RiskNone {
			t.Errorf("Check(%+v) = %+v, %v: want a rejection, no error", o, d, err)
		}
	}

	// Kill switches: scopes and keys.
	for _, scope := range []KillScope{-1, 3, 100} {
		wantStatus(t, r.Engage(scope, "a", t0), ErrInvalid, "Engage scope "+scope.String())
		wantStatus(t, r.Release(scope, "a", t0), ErrInvalid, "Release scope "+scope.String())
		_, err := r.Engaged(scope, "a")
		wantStatus(t, err, ErrInvalid, "Engaged scope "+scope.String())
	}
	for _, scope := range []KillScope{KillAccount, KillInstrument} {
		for _, key := range []string{"", strings.Repeat("k", 33)} {
			what := fmt.Sprintf("%v key of %d bytes", scope, len(key))
			wantStatus(t, r.Engage(scope, key, t0), ErrInvalid, "Engage "+what)
			wantStatus(t, r.Release(scope, key, t0), ErrInvalid, "Release "+what)
			_, err := r.Engaged(scope, key)
			wantStatus(t, err, ErrInvalid, "Engaged "+what)
		}
		if err := r.Engage(scope, strings.Repeat("k", 32), t0); err != nil {
			t.Errorf("%v key of 32 bytes: %v", scope, err)
		}
		// KillSwitchCapacity 1: a second key is ErrNoMem and nothing changes.
		wantStatus(t, r.Engage(scope, "other", t0), ErrNoMem, scope.String()+" switch over capacity")
		if on, err := r.Engaged(scope, "other"); on || err != nil {
			t.Errorf("a refused %v switch: engaged %v, %v", scope, on, err)
		}
	}
	s, err := r.Stats()
	if err != nil || s.KilledAccounts != 1 || s.KilledInstruments != 1 || s.GlobalKill {
		t.Fatalf("stats %+v %v", s, err)
	}
}
