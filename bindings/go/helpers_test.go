package tollgate

import (
	"errors"
	"testing"
)

// t0 is an arbitrary, non-zero monotonic start time for injected clocks.
const t0 uint64 = 1_000_000_000_000

const second uint64 = 1_000_000_000

func newLimiter(t testing.TB, o LimiterOptions) *Limiter {
	t.Helper()
	l, err := NewLimiter(o)
	if err != nil {
		t.Fatalf("NewLimiter(%+v): %v", o, err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func oneTier(rate float64, burst uint32) LimiterOptions {
	return LimiterOptions{Tiers: []Tier{{Name: "t", Rate: rate, Burst: burst}}}
}

func newBreaker(t testing.TB, o BreakerOptions) *Breaker {
	t.Helper()
	b, err := NewBreaker(o)
	if err != nil {
		t.Fatalf("NewBreaker(%+v): %v", o, err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func acquire(t testing.TB, l *Limiter, key string, tier, cost uint32, now uint64) Decision {
	t.Helper()
	d, err := l.AcquireString(key, tier, cost, now)
	if err != nil {
		t.Fatalf("Acquire(%q, %d, %d, %d): %v", key, tier, cost, now, err)
	}
	return d
}

func remaining(t testing.TB, l *Limiter, key string, tier uint32, now uint64) uint64 {
	t.Helper()
	r, err := l.RemainingString(key, tier, now)
	if err != nil {
		t.Fatalf("Remaining(%q): %v", key, err)
	}
	return r
}

func limiterStats(t testing.TB, l *Limiter) LimiterStats {
	t.Helper()
	s, err := l.Stats()
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	return s
}

func bacquire(t testing.TB, b *Breaker, now uint64) Permit {
	t.Helper()
	p, err := b.Acquire(now)
	if err != nil {
		t.Fatalf("Breaker.Acquire(%d): %v", now, err)
	}
	return p
}

func brecord(t testing.TB, b *Breaker, p Permit, o Outcome, lat, now uint64) {
	t.Helper()
	if err := b.Record(p, o, lat, now); err != nil {
		t.Fatalf("Breaker.Record: %v", err)
	}
}

func bstate(t testing.TB, b *Breaker) State {
	t.Helper()
	s, err := b.State()
	if err != nil {
		t.Fatalf("Breaker.State: %v", err)
	}
	return s
}

func bstats(t testing.TB, b *Breaker, now uint64) BreakerStats {
	t.Helper()
	s, err := b.Stats(now)
	if err != nil {
		t.Fatalf("Breaker.Stats: %v", err)
	}
	return s
}

// wantStatus fails unless err is a tollgate error carrying status.
func wantStatus(t testing.TB, err error, status Status, what string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error, want %v", what, status)
		return
	}
	if !errors.Is(err, status) {
		t.Errorf("%s: error %v, want %v", what, err, status)
	}
	var te *Error
	if !errors.As(err, &te) {
		t.Errorf("%s: error %T is not a *tollgate.Error", what, err)
	} else if te.Message == "" {
		t.Errorf("%s: error %v has no message", what, err)
	}
}
