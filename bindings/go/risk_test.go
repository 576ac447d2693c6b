package tollgate

import (
	"errors"
	"fmt"
	"math"
	"math/rand"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The cases of tests/capi/test_risk.c through the binding, with the same
// expected values, and the binding's own: the kill callback (re-entry,
// panics, Close inside it), batches against single checks, lifetime and
// goroutines racing one account. Misuse is in misuse_test.go, allocations
// in alloc_test.go.

var nan = math.NaN()

func newRiskChecker(t testing.TB, o RiskOptions, prices *PriceCache) *RiskChecker {
	t.Helper()
	r, err := NewRiskChecker(o, prices)
	if err != nil {
		t.Fatalf("NewRiskChecker(%+v): %v", o, err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// riskCache is the C tests' cache: default options, entries fresh for 10 s.
func riskCache(t testing.TB) *PriceCache {
	return newPriceCache(t, PriceCacheOptions{MaxAgeNs: 10 * second})
}

func order(account, instrument, id string, quantity, limitPrice float64) RiskOrder {
	return RiskOrder{Account: account, Instrument: instrument, ClientOrderID: id, Side: SideBuy,
		Quantity: quantity, LimitPrice: limitPrice}
}

// decide checks o at now and fails unless the call succeeded with reason
// want (and Allowed exactly when want is RiskNone).
func decide(t testing.TB, r *RiskChecker, o RiskOrder, now uint64, want RiskReason) RiskDecision {
	t.Helper()
	d, err := r.Check(o, now)
	if err != nil {
		t.Fatalf("Check(%+v, %d): %v", o, now, err)
	}
	if d.Reason != want || d.Allowed != (want == RiskNone) {
		t.Errorf("Check(%+v, %d) = %v (allowed %v), want %v", o, now, d.Reason, d.Allowed, want)
	}
	return d
}

func sameFloat(a, b float64) bool { return a == b || (math.IsNaN(a) && math.IsNaN(b)) }

// wantDecision fails unless d equals want, NaN fields included.
func wantDecision(t testing.TB, d, want RiskDecision, what string) {
	t.Helper()
	if d.Allowed != want.Allowed || d.Reason != want.Reason || !sameFloat(d.Limit, want.Limit) ||
		!sameFloat(d.Observed, want.Observed) || !sameFloat(d.Reference, want.Reference) {
		t.Errorf("%s: decision %+v, want %+v", what, d, want)
	}
}

func rstats(t testing.TB, r *RiskChecker) RiskStats {
	t.Helper()
	s, err := r.Stats()
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	if s.Checked != s.Allowed+s.Rejected || s.Decisions[RiskNone] != s.Allowed {
		t.Errorf("inconsistent stats %+v", s)
	}
	return s
}

func engaged(t testing.TB, r *RiskChecker, scope KillScope, key string) bool {
	t.Helper()
	on, err := r.Engaged(scope, key)
	if err != nil {
		t.Fatalf("Engaged(%v, %q): %v", scope, key, err)
	}
	return on
}

func TestRiskDefaults(t *testing.T) {
	d := DefaultRiskOptions()
	inf := math.Inf(1)
	want := RiskOptions{OnNoReference: NoReferenceReject, MaxQuantity: inf, MaxNotional: inf, CollarUnit: CollarPercent,
		CollarWidth: inf, CollarTickSize: 0.01, PeriodNs: second, AccountMaxNotional: inf,
		AccountMaxOrders: math.MaxUint64, AccountCapacity: 4096, DuplicateWindowNs: 60 * second,
		DuplicateCapacity: 65536, KillSwitchCapacity: 1024}
	if d != want {
		t.Fatalf("DefaultRiskOptions() = %+v, want %+v", d, want)
	}
	// The zero value and the defaults spelled out make the same checker: a
	// 60 s duplicate window, no reference price means a rejection.
	for _, o := range []RiskOptions{{}, d} {
		r := newRiskChecker(t, o, nil)
		decide(t, r, order("a", "X", "1", 1, 10), t0, RiskNoReferencePrice)
		o.OnNoReference = NoReferenceAllow
		r = newRiskChecker(t, o, nil)
		decide(t, r, order("a", "X", "1", 1e12, 1e12), t0, RiskNone) // no quantity or notional limit
		decide(t, r, order("a", "X", "1", 1, 10), t0+60*second-1, RiskDuplicateOrder)
		decide(t, r, order("a", "X", "1", 1, 10), t0+60*second, RiskNone)
		if s := rstats(t, r); s.Accounts != 0 || s.DuplicateIDs != 1 {
			t.Fatalf("%+v: stats %+v (no account limit: no account state)", o, s)
		}
	}
	// NoDuplicateCheck is the C ABI's duplicate_window_ns = 0.
	r := newRiskChecker(t, RiskOptions{OnNoReference: NoReferenceAllow, NoDuplicateCheck: true, DuplicateWindowNs: second}, nil)
	for i := 0; i < 3; i++ {
		decide(t, r, order("a", "X", "same", 1, 10), t0, RiskNone)
	}
	if s := rstats(t, r); s.DuplicateIDs != 0 {
		t.Fatalf("ids remembered without a duplicate check: %+v", s)
	}
}

func TestRiskNames(t *testing.T) {
	names := []struct{ got, want string }{
		{RiskNone.String(), "none"},
		{RiskPriceCollar.String(), "price_collar"},
		{RiskDuplicateCapacity.String(), "duplicate_capacity"},
		{RiskKillSwitchGlobal.String(), "kill_switch_global"},
		{RiskReason(18).String(), "RiskReason(18)"},
		{RiskReason(-1).String(), "RiskReason(-1)"},
		{SideBuy.String(), "buy"},
		{SideSell.String(), "sell"},
		{Side(2).String(), "Side(2)"},
		{KillGlobal.String(), "global"},
		{KillAccount.String(), "account"},
		{KillInstrument.String(), "instrument"},
		{KillScope(3).String(), "KillScope(3)"},
		{CollarPercent.String(), "percent"},
		{CollarBps.String(), "bps"},
		{CollarTicks.String(), "ticks"},
		{CollarUnit(3).String(), "CollarUnit(3)"},
		{NoReferenceReject.String(), "reject"},
		{NoReferenceAllow.String(), "allow"},
		{NoReferencePolicy(2).String(), "NoReferencePolicy(2)"},
	}
	for _, n := range names {
		if n.got != n.want {
			t.Errorf("String() = %q, want %q", n.got, n.want)
		}
	}
	// Every reason the binding names has a distinct library name.
	seen := map[string]RiskReason{}
	for r := RiskNone; r <= RiskDuplicateCapacity; r++ {
		s := r.String()
		if strings.HasPrefix(s, "RiskReason(") {
			t.Errorf("reason %d has no library name", int(r))
		}
		if prev, dup := seen[s]; dup {
			t.Errorf("reasons %d and %d are both %q", int(prev), int(r), s)
		}
		seen[s] = r
	}
}

func TestRiskOrderChecks(t *testing.T) {
	cache := riskCache(t)
	r := newRiskChecker(t, RiskOptions{MaxQuantity: 1000, MaxNotional: 50000, CollarUnit: CollarPercent, CollarWidth: 5}, cache)
	const tm = 100 * second
	pcPut(t, cache, "AAPL", 100.0, 1, "", tm, nil)

	// A limit order inside every limit: its notional, the reference, no limit.
	d := decide(t, r, order("acct1", "AAPL", "o1", 10, 101), tm, RiskNone)
	wantDecision(t, d, RiskDecision{Allowed: true, Reason: RiskNone, Limit: nan, Observed: 1010, Reference: 100}, "o1")
	// A market order's notional uses the reference price.
	d = decide(t, r, order("acct1", "AAPL", "o2", 10, nan), tm, RiskNone)
	wantDecision(t, d, RiskDecision{Allowed: true, Limit: nan, Observed: 1000, Reference: 100}, "o2 (market)")

	// Collar: exactly at the band passes, beyond it is rejected with the edge.
	decide(t, r, order("acct1", "AAPL", "o3", 1, 105), tm, RiskNone)
	decide(t, r, order("acct1", "AAPL", "o4", 1, 95), tm, RiskNone)
	d = decide(t, r, order("acct1", "AAPL", "o5", 1, 105.01), tm, RiskPriceCollar)
	wantDecision(t, d, RiskDecision{Reason: RiskPriceCollar, Limit: 105, Observed: 105.01, Reference: 100}, "o5")
	sell := order("acct1", "AAPL", "o6", 1, 94.99)
	sell.Side = SideSell
	d = decide(t, r, sell, tm, RiskPriceCollar)
	if d.Limit != 95 || d.Observed != 94.99 {
		t.Errorf("o6: %+v, want the lower edge 95", d)
	}

	// Max quantity and max notional carry the limit and the order's value.
	d = decide(t, r, order("acct1", "AAPL", "o7", 1001, 100), tm, RiskMaxQuantity)
	if d.Limit != 1000 || d.Observed != 1001 {
		t.Errorf("o7: %+v", d)
	}
	d = decide(t, r, order("acct1", "AAPL", "o8", 501, 100), tm, RiskMaxNotional)
	wantDecision(t, d, RiskDecision{Reason: RiskMaxNotional, Limit: 50000, Observed: 50100, Reference: 100}, "o8")
	decide(t, r, order("acct1", "AAPL", "o9", 500, 100), tm, RiskNone) // exactly at max notional

	// No reference: an unknown instrument and a stale entry are rejected
	// (the default policy).
	d = decide(t, r, order("acct1", "MSFT", "o10", 1, 300), tm, RiskNoReferencePrice)
	if !math.IsNaN(d.Reference) {
		t.Errorf("o10: reference %v without one", d.Reference)
	}
	decide(t, r, order("acct1", "AAPL", "o11", 1, 100), tm+11*second, RiskNoReferencePrice)

	// A price move evicts the reference: the order is not checked against it.
	pcPut(t, cache, "IBM", 200.0, 1, "", tm, nil)
	if res := pcTick(t, cache, "IBM", 230.0, 2, tm); res.Outcome != PriceEvicted {
		t.Fatalf("IBM tick: %+v", res)
	}
	decide(t, r, order("acct1", "IBM", "o12", 1, 229), tm, RiskNoReferencePrice)

	// Malformed orders are decisions with the reason and the bound.
	decide(t, r, order("acct1", "AAPL", "m1", 0, 100), tm, RiskInvalidQuantity)
	decide(t, r, order("acct1", "AAPL", "m2", -1, 100), tm, RiskInvalidQuantity)
	decide(t, r, order("acct1", "AAPL", "m3", nan, 100), tm, RiskInvalidQuantity)
	decide(t, r, order("acct1", "AAPL", "m4", math.Inf(1), 100), tm, RiskInvalidQuantity)
	decide(t, r, order("acct1", "AAPL", "m5", 1, 0), tm, RiskInvalidPrice) // the zero LimitPrice
	decide(t, r, order("acct1", "AAPL", "m6", 1, -100), tm, RiskInvalidPrice)
	decide(t, r, order("acct1", "AAPL", "m7", 1, math.Inf(1)), tm, RiskInvalidPrice)
	d = decide(t, r, order("", "AAPL", "m8", 1, 100), tm, RiskInvalidAccount)
	if d.Limit != 32 || d.Observed != 0 {
		t.Errorf("m8: %+v", d)
	}
	d = decide(t, r, order("a-very-long-account-name-over-32-b", "AAPL", "m9", 1, 100), tm, RiskInvalidAccount)
	if d.Observed != 34 {
		t.Errorf("m9: %+v", d)
	}
	decide(t, r, order("acct1", "", "m10", 1, 100), tm, RiskInvalidInstrument)
	d = decide(t, r, order("acct1", "AAPL", "", 1, 100), tm, RiskInvalidClientOrderID)
	if d.Limit != 64 || d.Observed != 0 {
		t.Errorf("empty id: %+v", d)
	}
	d = decide(t, r, order("acct1", "AAPL", strings.Repeat("i", 65), 1, 100), tm, RiskInvalidClientOrderID)
	if d.Limit != 64 || d.Observed != 65 {
		t.Errorf("65-byte id: %+v", d)
	}
	decide(t, r, order("acct1", "AAPL", strings.Repeat("i", 64), 1, 100), tm, RiskNone)

	// Stats count every decision by reason.
	s := rstats(t, r)
	if s.Allowed != 6 || s.Decisions[RiskNone] != 6 || s.Decisions[RiskPriceCollar] != 2 ||
		s.Decisions[RiskNoReferencePrice] != 3 || s.Decisions[RiskInvalidQuantity] != 4 ||
		s.Decisions[RiskInvalidAccount] != 2 || s.Decisions[RiskInvalidClientOrderID] != 2 ||
		s.Decisions[RiskMaxQuantity] != 1 || s.Decisions[RiskMaxNotional] != 1 || s.Checked != 25 {
		t.Errorf("stats %+v", s)
	}
	if s.Decisions[18] != 0 || s.Decisions[31] != 0 || s.GlobalKill {
		t.Errorf("unused slots or the global switch: %+v", s)
	}
}

func TestRiskCollarUnits(t *testing.T) {
	cache := riskCache(t)
	const tm = 5 * second
	pcPut(t, cache, "ES", 4000.0, 1, "", tm, nil)

	// bps: 25 bps of 4000 is 10 points.
	r := newRiskChecker(t, RiskOptions{CollarUnit: CollarBps, CollarWidth: 25}, cache)
	decide(t, r, order("a", "ES", "b1", 1, 4010), tm, RiskNone)
	decide(t, r, order("a", "ES", "b0", 1, 3990), tm, RiskNone)
	d := decide(t, r, order("a", "ES", "b2", 1, 4010.25), tm, RiskPriceCollar)
	wantDecision(t, d, RiskDecision{Reason: RiskPriceCollar, Limit: 4010, Observed: 4010.25, Reference: 4000}, "bps")

	// ticks: 8 ticks of 0.25 is 2 points.
	r = newRiskChecker(t, RiskOptions{CollarUnit: CollarTicks, CollarWidth: 8, CollarTickSize: 0.25}, cache)
	decide(t, r, order("a", "ES", "t1", 1, 3998), tm, RiskNone)
	decide(t, r, order("a", "ES", "t0", 1, 4002), tm, RiskNone)
	d = decide(t, r, order("a", "ES", "t2", 1, 3997.75), tm, RiskPriceCollar)
	if d.Limit != 3998 {
		t.Errorf("ticks: %+v", d)
	}
	d = decide(t, r, order("a", "ES", "t3", 1, 4002.25), tm, RiskPriceCollar)
	if d.Limit != 4002 {
		t.Errorf("ticks, upper edge: %+v", d)
	}

	// Allow without a reference: limit orders use their own price, no collar.
	r = newRiskChecker(t, RiskOptions{OnNoReference: NoReferenceAllow, CollarWidth: 1, MaxNotional: 1000}, nil)
	d = decide(t, r, order("a", "ES", "n1", 1, 999), tm, RiskNone)
	wantDecision(t, d, RiskDecision{Allowed: true, Limit: nan, Observed: 999, Reference: nan}, "n1")
	decide(t, r, order("a", "ES", "n2", 2, 999), tm, RiskMaxNotional)
	d = decide(t, r, order("a", "ES", "n3", 1000000, nan), tm, RiskNone) // market: notional unknown
	if !math.IsNaN(d.Observed) {
		t.Errorf("n3: %+v, want an unknown notional", d)
	}

	// MaxReferenceAgeNs tighter than the cache's.
	r = newRiskChecker(t, RiskOptions{MaxReferenceAgeNs: second}, cache)
	decide(t, r, order("a", "ES", "r1", 1, 4000), tm+second, RiskNone)
	decide(t, r, order("a", "ES", "r2", 1, 4000), tm+second+1, RiskNoReferencePrice)
}

func TestRiskAccountLimits(t *testing.T) {
	const tm = 40 * second // the start of a period
	r := newRiskChecker(t, RiskOptions{OnNoReference: NoReferenceAllow, AccountMaxOrders: 3, AccountMaxNotional: 1000,
		PeriodNs: second, DuplicateWindowNs: 2 * second}, nil)

	// Order count per period.
	for i := 0; i < 3; i++ {
		decide(t, r, order("acct", "X", fmt.Sprintf("c%d", i), 1, 10), tm+uint64(i), RiskNone)
	}
	d := decide(t, r, order("acct", "X", "c3", 1, 10), tm+3, RiskAccountOrderCount)
	if d.Limit != 3 || d.Observed != 4 {
		t.Errorf("count: %+v", d)
	}
	// Another account has its own count; the next period starts afresh.
	decide(t, r, order("other", "X", "c3", 1, 10), tm+3, RiskNone)
	decide(t, r, order("acct", "X", "c3", 1, 10), tm+second, RiskNone)

	// Notional per period: over it is rejected with the sum, exactly at it
	// passes.
	decide(t, r, order("acct", "X", "n1", 60, 10), tm+second+1, RiskNone) // 10 + 600
	d = decide(t, r, order("acct", "X", "n2", 40, 10), tm+second+2, RiskAccountNotional)
	if d.Limit != 1000 || d.Observed != 1010 {
		t.Errorf("notional: %+v", d)
	}
	decide(t, r, order("acct", "X", "n3", 39, 10), tm+second+3, RiskNone) // exactly 1000, the third order
	if s := rstats(t, r); s.Accounts != 2 || s.Decisions[RiskAccountOrderCount] != 1 || s.Decisions[RiskAccountNotional] != 1 {
		t.Errorf("stats %+v", s)
	}

	r = newRiskChecker(t, RiskOptions{OnNoReference: NoReferenceAllow, AccountMaxNotional: 1000, DuplicateWindowNs: 2 * second}, nil)
	decide(t, r, order("acct", "X", "n1", 60, 10), tm, RiskNone)
	decide(t, r, order("acct", "X", "n2", 41, 10), tm+1, RiskAccountNotional)
	// Duplicates: the same id inside the window, per account.
	d = decide(t, r, order("acct", "X", "n1", 1, 1), tm+5, RiskDuplicateOrder)
	if d.Limit != float64(2*second) || d.Observed != 5 {
		t.Errorf("duplicate: %+v", d)
	}
	decide(t, r, order("acct2", "X", "n1", 1, 1), tm+5, RiskNone)
	// A rejected order is not remembered: n2 may be sent again.
	decide(t, r, order("acct", "X", "n2", 1, 1), tm+second, RiskNone)
	// At exactly the window the id is new again.
	decide(t, r, order("acct", "X", "n1", 1, 1), tm+2*second, RiskNone)
}

func TestRiskCapacityFailsClosed(t *testing.T) {
	const tm = 10 * second
	r := newRiskChecker(t, RiskOptions{OnNoReference: NoReferenceAllow, AccountMaxOrders: 100, AccountCapacity: 2,
		DuplicateCapacity: 3}, nil)
	// Account capacity.
	decide(t, r, order("a1", "X", "i1", 1, 1), tm, RiskNone)
	decide(t, r, order("a2", "X", "i1", 1, 1), tm, RiskNone)
	d := decide(t, r, order("a3", "X", "i1", 1, 1), tm, RiskAccountCapacity)
	if d.Limit != 2 {
		t.Errorf("account capacity: %+v", d)
	}
	// Duplicate capacity: a fourth live id cannot be remembered.
	decide(t, r, order("a1", "X", "i2", 1, 1), tm, RiskNone)
	d = decide(t, r, order("a1", "X", "i3", 1, 1), tm, RiskDuplicateCapacity)
	if d.Limit != 3 {
		t.Errorf("duplicate capacity: %+v", d)
	}
	if s := rstats(t, r); s.Accounts != 2 || s.DuplicateIDs != 3 {
		t.Errorf("stats %+v", s)
	}
	// The next period frees the accounts; ids stay until their window ends.
	decide(t, r, order("a3", "X", "i1", 1, 1), tm+second, RiskDuplicateCapacity)
	decide(t, r, order("a3", "X", "i1", 1, 1), tm+60*second, RiskNone)
}

// killLog records kill switch events; safe for concurrent use.
type killLog struct {
	mu     sync.Mutex
	events []KillSwitchEvent
}

func (l *killLog) add(e KillSwitchEvent) {
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
}

func (l *killLog) all() []KillSwitchEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]KillSwitchEvent(nil), l.events...)
}

func TestRiskKillSwitches(t *testing.T) {
	const tm = 7 * second
	r := newRiskChecker(t, RiskOptions{OnNoReference: NoReferenceAllow, NoDuplicateCheck: true, KillSwitchCapacity: 2}, nil)
	var log killLog
	if err := r.SetKillCallback(log.add); err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	// Account switch: latched until released.
	must(r.Engage(KillAccount, "acct", tm))
	must(r.Engage(KillAccount, "acct", tm+1)) // no change, no event
	if !engaged(t, r, KillAccount, "acct") || engaged(t, r, KillAccount, "other") {
		t.Fatal("account switch state")
	}
	decide(t, r, order("acct", "AAPL", "k1", 1, 10), tm+2, RiskKillSwitchAccount)
	decide(t, r, order("other", "AAPL", "k1", 1, 10), tm+2, RiskNone)

	// Instrument switch.
	must(r.Engage(KillInstrument, "AAPL", tm+3))
	decide(t, r, order("other", "AAPL", "k2", 1, 10), tm+4, RiskKillSwitchInstrument)
	decide(t, r, order("other", "MSFT", "k2", 1, 10), tm+4, RiskNone)
	// A kill switch decides before a malformed order does.
	decide(t, r, order("other", "AAPL", "k2", -1, 10), tm+4, RiskKillSwitchInstrument)

	// The global switch wins over the others; its key is ignored.
	must(r.Engage(KillGlobal, "ignored", tm+5))
	if !engaged(t, r, KillGlobal, "") || !engaged(t, r, KillGlobal, strings.Repeat("x", 40)) {
		t.Fatal("global switch not engaged")
	}
	decide(t, r, order("acct", "AAPL", "k3", 1, 10), tm+6, RiskKillSwitchGlobal)
	if s := rstats(t, r); !s.GlobalKill || s.KilledAccounts != 1 || s.KilledInstruments != 1 {
		t.Fatalf("stats %+v", s)
	}

	// Release.
	must(r.Release(KillGlobal, "", tm+7))
	must(r.Release(KillAccount, "acct", tm+8))
	must(r.Release(KillAccount, "never", tm+8)) // no change, no event
	decide(t, r, order("acct", "MSFT", "k4", 1, 10), tm+9, RiskNone)
	decide(t, r, order("acct", "AAPL", "k5", 1, 10), tm+9, RiskKillSwitchInstrument)

	// Events: one per change, in order, none for no-ops.
	want := []KillSwitchEvent{
		{Scope: KillAccount, Engaged: true, Key: "acct", NowNs: tm},
		{Scope: KillInstrument, Engaged: true, Key: "AAPL", NowNs: tm + 3},
		{Scope: KillGlobal, Engaged: true, Key: "", NowNs: tm + 5},
		{Scope: KillGlobal, Engaged: false, Key: "", NowNs: tm + 7},
		{Scope: KillAccount, Engaged: false, Key: "acct", NowNs: tm + 8},
	}
	if got := log.all(); !slices.Equal(got, want) {
		t.Fatalf("events\n got %+v\nwant %+v", got, want)
	}

	// Capacity: a third instrument is refused and nothing is engaged.
	must(r.Engage(KillInstrument, "MSFT", tm+10))
	err := r.Engage(KillInstrument, "IBM", tm+10)
	wantStatus(t, err, ErrNoMem, "a third instrument switch")
	if err != nil && !strings.Contains(err.Error(), "kill_switch_capacity") {
		t.Errorf("capacity error %q does not name kill_switch_capacity", err)
	}
	if engaged(t, r, KillInstrument, "IBM") {
		t.Fatal("a refused switch is engaged")
	}
	if n := len(log.all()); n != 6 {
		t.Fatalf("%d events, want 6", n)
	}

	// A callback may check orders and read the checker, but not change this
	// checker's switches: that is ErrState.
	var reenter, checkErr error
	var inside RiskDecision
	var insideEngaged bool
	must(r.SetKillCallback(func(e KillSwitchEvent) {
		log.add(e)
		reenter = r.Engage(KillGlobal, "", 1)
		inside, checkErr = r.Check(order("acct", "AAPL", "cb", 1, 1), 1)
		insideEngaged, _ = r.Engaged(KillInstrument, "MSFT")
	}))
	must(r.Release(KillInstrument, "MSFT", tm+11))
	wantStatus(t, reenter, ErrState, "Engage inside the kill callback")
	if checkErr != nil || inside.Reason != RiskKillSwitchInstrument {
		t.Fatalf("Check inside the callback: %+v %v (AAPL is still killed)", inside, checkErr)
	}
	if insideEngaged {
		t.Fatal("inside the callback the released switch still reads engaged")
	}
	if engaged(t, r, KillGlobal, "") {
		t.Fatal("the re-entrant Engage took effect")
	}
	if n := len(log.all()); n != 7 {
		t.Fatalf("%d events, want 7", n)
	}

	// Removing the callback; then installing one again.
	must(r.SetKillCallback(nil))
	must(r.Release(KillInstrument, "AAPL", tm+12))
	if n := len(log.all()); n != 7 {
		t.Fatalf("%d events after removing the callback, want 7", n)
	}
	must(r.SetKillCallback(log.add))
	must(r.Engage(KillAccount, "late", tm+13))
	if ev := log.all(); len(ev) != 8 || ev[7] != (KillSwitchEvent{Scope: KillAccount, Engaged: true, Key: "late", NowNs: tm + 13}) {
		t.Fatalf("events after reinstalling: %+v", ev)
	}
}

// A panic in the kill callback comes back from the Engage that caused it,
// and the change itself happened.
func TestRiskKillCallbackPanic(t *testing.T) {
	r := newRiskChecker(t, RiskOptions{OnNoReference: NoReferenceAllow}, nil)
	if err := r.SetKillCallback(func(KillSwitchEvent) { panic("boom") }); err != nil {
		t.Fatal(err)
	}
	func() {
		defer func() {
			if p := recover(); p != "boom" {
				t.Fatalf("recovered %v, want the callback's panic", p)
			}
		}()
		r.Engage(KillAccount, "acct", t0)
		t.Fatal("the callback's panic was swallowed")
	}()
	if !engaged(t, r, KillAccount, "acct") {
		t.Fatal("the switch is not engaged")
	}
	decide(t, r, order("acct", "X", "1", 1, 1), t0, RiskKillSwitchAccount)
	if err := r.SetKillCallback(nil); err != nil {
		t.Fatal(err)
	}
	if err := r.Release(KillAccount, "acct", t0); err != nil {
		t.Fatal(err)
	}
}

// Closing the checker from inside its own callback is safe: the memory
// goes when the Engage that called it returns.
func TestRiskCloseInsideCallback(t *testing.T) {
	r, err := NewRiskChecker(RiskOptions{OnNoReference: NoReferenceAllow}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var inner error
	var innerCheck RiskDecision
	if err := r.SetKillCallback(func(KillSwitchEvent) {
		innerCheck, _ = r.Check(order("a", "X", "1", 1, 1), t0)
		r.Close()
		_, inner = r.Stats()
	}); err != nil {
		t.Fatal(err)
	}
	if err := r.Engage(KillGlobal, "", t0); err != nil {
		t.Fatalf("the Engage that closed the checker: %v", err)
	}
	if inner != ErrClosed || innerCheck.Reason != RiskKillSwitchGlobal {
		t.Fatalf("inside the callback: %+v, after Close %v", innerCheck, inner)
	}
	if _, err := r.Check(order("a", "X", "1", 1, 1), t0); err != ErrClosed {
		t.Fatalf("after Close: %v", err)
	}
}

func TestRiskBatch(t *testing.T) {
	const tm = 3 * second
	r := newRiskChecker(t, RiskOptions{OnNoReference: NoReferenceAllow, AccountMaxOrders: 2}, nil)
	orders := []RiskOrder{
		order("a", "X", "1", 1, 10),
		order("a", "X", "1", 1, 10), // a duplicate of the first, which was accepted
		order("a", "X", "2", 1, 10),
		order("a", "X", "3", 1, 10), // the third accepted order of the period
	}
	out := make([]RiskDecision, 4)
	for i := range out {
		out[i].Reason = -1
	}

	// Validation first: nothing decided on error, out unchanged.
	orders[2].Side = 7
	err := r.CheckMany(orders, tm, out)
	wantStatus(t, err, ErrInvalid, "a batch with a bad side")
	if err != nil && !strings.Contains(err.Error(), "orders[2]") {
		t.Errorf("error %q does not name orders[2]", err)
	}
	if s := rstats(t, r); s.Checked != 0 {
		t.Fatalf("a refused batch decided orders: %+v", s)
	}
	for i, d := range out {
		if d.Reason != -1 {
			t.Fatalf("a refused batch wrote out[%d]: %+v", i, d)
		}
	}
	orders[2].Side = SideSell
	if err := r.CheckMany(nil, tm, nil); err != nil {
		t.Fatalf("empty batch: %v", err)
	}
	wantStatus(t, r.CheckMany(orders, tm, out[:3]), ErrInvalid, "short out")

	// Decided in order, each seeing the ones before.
	if err := r.CheckMany(orders, tm, out); err != nil {
		t.Fatal(err)
	}
	want := []RiskReason{RiskNone, RiskDuplicateOrder, RiskNone, RiskAccountOrderCount}
	for i, d := range out {
		if d.Reason != want[i] || d.Allowed != (want[i] == RiskNone) {
			t.Errorf("out[%d] = %+v, want %v", i, d, want[i])
		}
	}
	if out[3].Limit != 2 || out[3].Observed != 3 || out[0].Observed != 10 {
		t.Errorf("decision values: %+v", out)
	}
	if s := rstats(t, r); s.Checked != 4 {
		t.Fatalf("stats %+v", s)
	}
	// A longer out is fine; its tail is left alone.
	long := make([]RiskDecision, 6)
	long[5].Reason = -1
	if err := r.CheckMany(orders[:1], tm+second, long); err != nil || long[0].Reason != RiskDuplicateOrder || long[5].Reason != -1 {
		t.Fatalf("long out: %v %+v", err, long)
	}
}

// CheckMany gives what the same orders one by one give, malformed ones and
// batches past the C stack's 32 orders included.
func TestRiskManyEqualsSingle(t *testing.T) {
	cache := riskCache(t)
	for _, sym := range []string{"A", "B", "C"} {
		pcPut(t, cache, sym, 100, 1, "", t0, nil)
	}
	o := RiskOptions{MaxQuantity: 90, MaxNotional: 5000, CollarWidth: 2, AccountMaxOrders: 12, AccountMaxNotional: 20000,
		DuplicateWindowNs: second, AccountCapacity: 6, DuplicateCapacity: 500}
	single, batch := newRiskChecker(t, o, cache), newRiskChecker(t, o, cache)
	rng := rand.New(rand.NewSource(5))
	pick := func(options ...string) string { return options[rng.Intn(len(options))] }
	for round, n := range []int{1, 7, 32, 33, 250, 1000} {
		now := t0 + uint64(round)*second/4
		orders := make([]RiskOrder, n)
		for i := range orders {
			orders[i] = RiskOrder{
				Account:       pick("acct1", "acct2", "acct3", "acct4", "acct5", "acct6", "acct7", "", strings.Repeat("a", 33)),
				Instrument:    pick("A", "B", "C", "D", ""),
				ClientOrderID: pick("", strings.Repeat("x", 65)) + fmt.Sprint(rng.Intn(300)),
				Side:          Side(rng.Intn(2)),
				Quantity:      []float64{1, 10, 50, 1, 10, 40, 95, 0, -1, nan}[rng.Intn(10)],
				LimitPrice:    []float64{nan, 99, 100, 101.5, 102, 100, 99.5, 102.5, 0}[rng.Intn(9)],
			}
			if rng.Intn(20) == 0 {
				orders[i].ClientOrderID = ""
			}
		}
		out := make([]RiskDecision, n)
		if err := batch.CheckMany(orders, now, out); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		for i, ord := range orders {
			d, err := single.Check(ord, now)
			if err != nil {
				t.Fatal(err)
			}
			wantDecision(t, out[i], d, fmt.Sprintf("round %d order %d %+v", round, i, ord))
		}
	}
	ss, bs := rstats(t, single), rstats(t, batch)
	if ss != bs {
		t.Fatalf("stats differ:\nsingle %+v\n batch %+v", ss, bs)
	}
	// The mix exercised most rules.
	for _, reason := range []RiskReason{RiskNone, RiskInvalidQuantity, RiskInvalidPrice, RiskInvalidAccount,
		RiskInvalidInstrument, RiskInvalidClientOrderID, RiskDuplicateOrder, RiskMaxQuantity, RiskNoReferencePrice,
		RiskPriceCollar, RiskMaxNotional, RiskAccountNotional, RiskAccountOrderCount, RiskAccountCapacity} {
		if bs.Decisions[reason] == 0 {
			t.Errorf("no order was decided %v: %+v", reason, bs)
		}
	}
}

// The checker keeps its price cache: closing the cache's Go object first
// leaves the checker reading the entries it held.
func TestRiskPriceCacheClosedFirst(t *testing.T) {
	cache, err := NewPriceCache(PriceCacheOptions{MaxAgeNs: 10 * second})
	if err != nil {
		t.Fatal(err)
	}
	const tm = 2 * second
	pcPut(t, cache, "AAPL", 50.0, 1, "", tm, nil)
	r := newRiskChecker(t, RiskOptions{CollarWidth: 10}, cache)
	if err := cache.Close(); err != nil {
		t.Fatal(err)
	}
	if err := cache.Put([]byte("AAPL"), 51, 2, nil, tm, nil); err != ErrClosed {
		t.Fatalf("Put on the closed cache: %v", err)
	}
	d := decide(t, r, order("a", "AAPL", "1", 1, 54), tm+1, RiskNone)
	if d.Reference != 50 {
		t.Fatalf("reference %v, want the cached 50", d.Reference)
	}
	decide(t, r, order("a", "AAPL", "2", 1, 56), tm+1, RiskPriceCollar)
	// The entry still ages out.
	decide(t, r, order("a", "AAPL", "3", 1, 50), tm+10*second+1, RiskNoReferencePrice)

	// A closed cache cannot be given to a new checker.
	_, err = NewRiskChecker(RiskOptions{}, cache)
	if err != ErrClosed {
		t.Fatalf("NewRiskChecker with a closed cache: %v, want ErrClosed", err)
	}
}

// A cache that becomes unreachable while a checker reads it is finalized
// without taking the checker's reference away.
func TestRiskPriceCacheFinalizedFirst(t *testing.T) {
	gone := make(chan struct{})
	r := func() *RiskChecker {
		cache, err := NewPriceCache(PriceCacheOptions{NoMaxAge: true})
		if err != nil {
			t.Fatal(err)
		}
		cache.SetEvictionCallback(func(EvictionEvent) {})
		pcPut(t, cache, "AAPL", 50.0, 1, "", t0, nil)
		// A cleanup runs only once the finalizer (Close) has run and the
		// object is unreachable again.
		runtime.AddCleanup(cache, func(ch chan struct{}) { close(ch) }, gone)
		return newRiskChecker(t, RiskOptions{CollarWidth: 10}, cache)
	}()
	deadline := time.After(10 * time.Second)
wait:
	for {
		runtime.GC()
		select {
		case <-gone:
			break wait
		case <-deadline:
			t.Fatal("the unreachable cache was not finalized")
		case <-time.After(10 * time.Millisecond):
		}
	}
	for i := 0; i < 3; i++ {
		d := decide(t, r, order("a", "AAPL", fmt.Sprint(i), 1, 54), t0+uint64(i), RiskNone)
		if d.Reference != 50 {
			t.Fatalf("reference %v", d.Reference)
		}
	}
}

// Goroutines sending one account's orders: exactly AccountMaxOrders are
// accepted between them and no id is accepted twice (as tests/capi's two
// threads, with four goroutines).
func TestRiskConcurrentOneAccount(t *testing.T) {
	const (
		goroutines = 4
		perG       = 2000
		limit      = 4000
	)
	r := newRiskChecker(t, RiskOptions{OnNoReference: NoReferenceAllow, AccountMaxOrders: limit}, nil)
	accepted := make([][]int, goroutines)
	var duplicates, failures atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			<-start
			// Goroutine g sends ids g*1000 .. g*1000+1999: each id but the
			// first and last thousand is sent by two goroutines, 5000 ids in
			// all, more than the limit.
			for i := g * 1000; i < g*1000+perG; i++ {
				d, err := r.Check(order("shared", "X", fmt.Sprintf("id%d", i), 1, 1), 5*second)
				switch {
				case err != nil:
					failures.Add(1)
				case d.Allowed:
					accepted[g] = append(accepted[g], i)
				case d.Reason == RiskDuplicateOrder:
					duplicates.Add(1)
				case d.Reason != RiskAccountOrderCount:
					failures.Add(1)
				}
			}
		}(g)
	}
	close(start)
	wg.Wait()
	if failures.Load() != 0 {
		t.Fatalf("%d calls failed or were rejected for another reason", failures.Load())
	}
	seen := map[int]bool{}
	for _, ids := range accepted {
		for _, id := range ids {
			if seen[id] {
				t.Fatalf("id%d accepted twice", id)
			}
			seen[id] = true
		}
	}
	if len(seen) != limit {
		t.Fatalf("%d orders accepted, want exactly %d", len(seen), limit)
	}
	s := rstats(t, r)
	if s.Allowed != limit || s.Checked != goroutines*perG ||
		s.Decisions[RiskAccountOrderCount]+uint64(duplicates.Load())+s.Allowed != goroutines*perG {
		t.Fatalf("stats %+v, %d duplicates", s, duplicates.Load())
	}
}

// Kill switches engaged while goroutines check: every check that starts
// after Engage returns sees the switch.
func TestRiskConcurrentKill(t *testing.T) {
	r := newRiskChecker(t, RiskOptions{OnNoReference: NoReferenceAllow, NoDuplicateCheck: true}, nil)
	var events atomic.Int64
	r.SetKillCallback(func(KillSwitchEvent) { events.Add(1) })
	var wg sync.WaitGroup
	var engagedAt atomic.Bool
	var late atomic.Int64
	stop := make(chan struct{})
	for g := 0; g < 3; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			batch := []RiskOrder{order("acct", "X", "1", 1, 1), order("other", "X", "2", 1, 1)}
			out := make([]RiskDecision, 2)
			for {
				select {
				case <-stop:
					return
				default:
				}
				was := engagedAt.Load()
				d, err := r.Check(order("acct", "X", "1", 1, 1), t0)
				if err != nil {
					t.Error(err)
					return
				}
				if was && d.Allowed {
					late.Add(1)
				}
				if err := r.CheckMany(batch, t0, out); err != nil {
					t.Error(err)
					return
				}
				if !out[1].Allowed {
					t.Errorf("another account was rejected: %+v", out[1])
					return
				}
			}
		}(g)
	}
	time.Sleep(20 * time.Millisecond)
	if err := r.Engage(KillAccount, "acct", t0); err != nil {
		t.Fatal(err)
	}
	engagedAt.Store(true)
	time.Sleep(20 * time.Millisecond)
	close(stop)
	wg.Wait()
	if late.Load() != 0 {
		t.Fatalf("%d checks started after Engage returned accepted the killed account", late.Load())
	}
	if events.Load() != 1 {
		t.Fatalf("%d events", events.Load())
	}
}

func TestRiskCloseRace(t *testing.T) {
	for round := 0; round < 20; round++ {
		cache := riskCache(t)
		r, err := NewRiskChecker(RiskOptions{OnNoReference: NoReferenceAllow}, cache)
		if err != nil {
			t.Fatal(err)
		}
		r.SetKillCallback(func(KillSwitchEvent) {})
		var wg sync.WaitGroup
		var failures atomic.Int64
		start := make(chan struct{})
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				<-start
				acct := fmt.Sprint("acct", g)
				batch := []RiskOrder{order(acct, "X", "b", 1, 1)}
				out := make([]RiskDecision, 1)
				for i := 0; i < 300; i++ {
					_, err1 := r.Check(order(acct, "X", fmt.Sprint(i), 1, 1), t0)
					err2 := r.CheckMany(batch, t0, out)
					err3 := r.Engage(KillInstrument, acct, t0)
					_, err4 := r.Engaged(KillInstrument, acct)
					err5 := r.Release(KillInstrument, acct, t0)
					_, err6 := r.Stats()
					for _, err := range []error{err1, err2, err3, err4, err5, err6} {
						if err != nil && err != ErrClosed {
							failures.Add(1)
						}
					}
				}
			}(g)
		}
		close(start)
		r.Close()
		wg.Wait()
		if failures.Load() != 0 {
			t.Fatalf("round %d: %d calls failed with another error than ErrClosed", round, failures.Load())
		}
	}
}

func TestRiskFinalizers(t *testing.T) {
	before := handlesFreed.Load()
	func() {
		for i := 0; i < 10; i++ {
			cache, err := NewPriceCache(PriceCacheOptions{Capacity: 16})
			if err != nil {
				t.Fatal(err)
			}
			r, err := NewRiskChecker(RiskOptions{}, cache)
			if err != nil {
				t.Fatal(err)
			}
			r.SetKillCallback(func(KillSwitchEvent) {})
			r.Engage(KillGlobal, "", t0)
			r.Check(order("a", "X", "1", 1, 1), t0)
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for handlesFreed.Load()-before < 20 && time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if n := handlesFreed.Load() - before; n < 20 {
		t.Fatalf("%d of 20 unreachable checkers and caches released by finalizers", n)
	}
}

// errors.As finds the library's message in a kill switch error.
func TestRiskKillErrorMessages(t *testing.T) {
	r := newRiskChecker(t, RiskOptions{}, nil)
	var te *Error
	if err := r.Engage(KillAccount, "", t0); !errors.As(err, &te) || !strings.Contains(te.Message, "1..32") {
		t.Fatalf("empty key: %v", err)
	}
	if err := r.Release(KillScope(3), "a", t0); !errors.As(err, &te) || !strings.Contains(te.Message, "scope") {
		t.Fatalf("scope 3: %v", err)
	}
}
