// Side-by-side benchmarks of the tollgate Go binding and the Go libraries a
// Go service would otherwise use: golang.org/x/time/rate for rate limiting
// and github.com/sony/gobreaker for circuit breaking.
//
// Every benchmark counts one operation per decision, batched forms too, so
// ns/op compares directly. The workloads admit every request (rate 1e9/s,
// burst 2^31, time advancing 1 us per decision when injected) and each
// benchmark fails if one is rejected, so both sides do the same work.
// run.sh runs them and prints the ratios.
package compare

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sony/gobreaker/v2"
	tollgate "github.com/tollgate-dev/tollgate/bindings/go"
	"golang.org/x/time/rate"
)

const (
	ratePerSec = 1e9
	// A burst of 2^31 tokens at 1 ns each is 2 s of slack: a goroutine
	// preempted between reading the clock and deciding presents a stale
	// timestamp, which GCRA rightly treats as time in the past.
	burst  = 1 << 31
	batch  = 1000
	stepNs = 1000 // injected time advances 1 us per decision
)

var base = time.Now()

func newTollgate(b *testing.B) *tollgate.Limiter {
	l, err := tollgate.NewLimiter(tollgate.LimiterOptions{
		Tiers:    []tollgate.Tier{{Name: "orders", Rate: ratePerSec, Burst: burst}},
		Capacity: 4096,
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	return l
}

func newXRate() *rate.Limiter { return rate.NewLimiter(rate.Limit(ratePerSec), burst) }

func keys(n int) [][]byte {
	k := make([][]byte, n)
	for i := range k {
		k[i] = []byte(fmt.Sprintf("account-%06d", i))
	}
	return k
}

var errRejected = errors.New("a request of the all-admit workload was rejected")

// ---------------------------------------------------------------- one key

// tollgate Acquire with the time read beforehand (the host's own timestamp).
func BenchmarkLimiterTollgateAcquire(b *testing.B) {
	l := newTollgate(b)
	key := []byte("account-000001")
	now := tollgate.NowNs()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		now += stepNs
		d, err := l.Acquire(key, 0, 1, now)
		if err != nil || !d.Allowed {
			b.Fatal(err, errRejected)
		}
	}
}

// tollgate Acquire reading the monotonic clock on every call.
func BenchmarkLimiterTollgateAcquireNowNs(b *testing.B) {
	l := newTollgate(b)
	key := []byte("account-000001")
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		d, err := l.Acquire(key, 0, 1, tollgate.NowNs())
		if err != nil || !d.Allowed {
			b.Fatal(err, errRejected)
		}
	}
}

// tollgate AcquireMany: batches of 1000 requests on the one key.
func BenchmarkLimiterTollgateAcquireMany(b *testing.B) {
	l := newTollgate(b)
	k := []byte("account-000001")
	ks := make([][]byte, batch)
	for i := range ks {
		ks[i] = k
	}
	out := make([]tollgate.Decision, batch)
	now := tollgate.NowNs()
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; done += batch {
		n := min(batch, b.N-done)
		now += stepNs * batch
		if err := l.AcquireMany(ks[:n], nil, nil, now, out[:n]); err != nil {
			b.Fatal(err)
		}
		for _, d := range out[:n] {
			if !d.Allowed {
				b.Fatal(errRejected)
			}
		}
	}
}

// x/time/rate AllowN with the time read beforehand.
func BenchmarkLimiterXRateAllowN(b *testing.B) {
	l := newXRate()
	now := base
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		now = now.Add(stepNs)
		if !l.AllowN(now, 1) {
			b.Fatal(errRejected)
		}
	}
}

// x/time/rate Allow, which reads time.Now on every call.
func BenchmarkLimiterXRateAllow(b *testing.B) {
	l := newXRate()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if !l.Allow() {
			b.Fatal(errRejected)
		}
	}
}

// ------------------------------------------------------------ 1000 keys

// tollgate AcquireMany over 1000 distinct keys, one request each per batch.
func BenchmarkKeyedTollgateAcquireMany(b *testing.B) {
	l := newTollgate(b)
	ks := keys(batch)
	out := make([]tollgate.Decision, batch)
	now := tollgate.NowNs()
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; done += batch {
		n := min(batch, b.N-done)
		now += stepNs * batch
		if err := l.AcquireMany(ks[:n], nil, nil, now, out[:n]); err != nil {
			b.Fatal(err)
		}
		for _, d := range out[:n] {
			if !d.Allowed {
				b.Fatal(errRejected)
			}
		}
	}
}

// tollgate Acquire, one call per key.
func BenchmarkKeyedTollgateAcquire(b *testing.B) {
	l := newTollgate(b)
	ks := keys(batch)
	now := tollgate.NowNs()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		now += stepNs
		d, err := l.Acquire(ks[i%batch], 0, 1, now)
		if err != nil || !d.Allowed {
			b.Fatal(err, errRejected)
		}
	}
}

// keyedXRate is the usual way to key x/time/rate: a map of limiters under a
// mutex, created on first use.
type keyedXRate struct {
	mu  sync.Mutex
	lim map[string]*rate.Limiter
}

func (k *keyedXRate) allowN(key []byte, now time.Time) bool {
	k.mu.Lock()
	l, ok := k.lim[string(key)]
	if !ok {
		l = newXRate()
		k.lim[string(key)] = l
	}
	k.mu.Unlock()
	return l.AllowN(now, 1)
}

func BenchmarkKeyedXRateMapAllowN(b *testing.B) {
	k := &keyedXRate{lim: map[string]*rate.Limiter{}}
	ks := keys(batch)
	now := base
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		now = now.Add(stepNs)
		if !k.allowN(ks[i%batch], now) {
			b.Fatal(errRejected)
		}
	}
}

// ------------------------------------------------- one key, all cores

func BenchmarkParallelTollgateAcquireNowNs(b *testing.B) {
	l := newTollgate(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		key := []byte("account-000001")
		for pb.Next() {
			d, err := l.Acquire(key, 0, 1, tollgate.NowNs())
			if err != nil || !d.Allowed {
				b.Error(err, errRejected)
				return
			}
		}
	})
}

func BenchmarkParallelXRateAllow(b *testing.B) {
	l := newXRate()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if !l.Allow() {
				b.Error(errRejected)
				return
			}
		}
	})
}

// ------------------------------------------------------------- breaker

func newBreaker(b *testing.B) *tollgate.Breaker {
	br, err := tollgate.NewBreaker(tollgate.BreakerOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { br.Close() })
	return br
}

// tollgate Acquire + Record of a successful call, time read beforehand.
func BenchmarkBreakerTollgate(b *testing.B) {
	br := newBreaker(b)
	now := tollgate.NowNs()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		now += stepNs
		p, err := br.Acquire(now)
		if err != nil || !p.Allowed {
			b.Fatal(err, errRejected)
		}
		if err := br.Record(p, tollgate.OutcomeSuccess, 500, now); err != nil {
			b.Fatal(err)
		}
	}
}

// The same with one clock read per call (gobreaker reads time.Now inside).
func BenchmarkBreakerTollgateNowNs(b *testing.B) {
	br := newBreaker(b)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		now := tollgate.NowNs()
		p, err := br.Acquire(now)
		if err != nil || !p.Allowed {
			b.Fatal(err, errRejected)
		}
		if err := br.Record(p, tollgate.OutcomeSuccess, 500, now); err != nil {
			b.Fatal(err)
		}
	}
}

// tollgate AcquireMany + RecordMany in batches of 1000 calls.
func BenchmarkBreakerTollgateMany(b *testing.B) {
	br := newBreaker(b)
	permits := make([]tollgate.Permit, batch)
	outcomes := make([]tollgate.Outcome, batch)
	now := tollgate.NowNs()
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; done += batch {
		n := min(batch, b.N-done)
		now += stepNs * batch
		if err := br.AcquireMany(now, permits[:n]); err != nil {
			b.Fatal(err)
		}
		for _, p := range permits[:n] {
			if !p.Allowed {
				b.Fatal(errRejected)
			}
		}
		if err := br.RecordMany(permits[:n], outcomes[:n], nil, now); err != nil {
			b.Fatal(err)
		}
	}
}

// gobreaker Execute of a no-op call that succeeds.
func BenchmarkBreakerGobreakerExecute(b *testing.B) {
	cb := gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{Name: "venue"})
	noop := func() (struct{}, error) { return struct{}{}, nil }
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := cb.Execute(noop); err != nil {
			b.Fatal(err)
		}
	}
}

// gobreaker's two-step form (Allow, then done), the closest to
// Acquire + Record.
func BenchmarkBreakerGobreakerTwoStep(b *testing.B) {
	cb := gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{Name: "venue"})
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		done, err := cb.Allow()
		if err != nil {
			b.Fatal(err)
		}
		done(nil)
	}
}
