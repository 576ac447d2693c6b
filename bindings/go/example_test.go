package tollgate_test

import (
	"errors"
	"fmt"

	tollgate "github.com/tollgate-dev/tollgate/bindings/go"
)

// A per-account limit under a global one, with an injected clock.
func Example() {
	global, err := tollgate.NewLimiter(tollgate.LimiterOptions{
		Tiers: []tollgate.Tier{{Name: "all", Rate: 1000, Burst: 1000}},
	})
	if err != nil {
		panic(err)
	}
	defer global.Close()
	accounts, err := tollgate.NewLimiter(tollgate.LimiterOptions{
		Tiers: []tollgate.Tier{
			{Name: "retail", Rate: 10, Burst: 2},
			{Name: "pro", Rate: 100, Burst: 20},
		},
		Parent: global,
	})
	if err != nil {
		panic(err)
	}
	defer accounts.Close()

	retail, _ := accounts.TierIndex("retail")
	now := uint64(1_000_000_000) // a host would pass its own monotonic timestamp, or tollgate.NowNs()
	for i := 0; i < 3; i++ {
		d, err := accounts.AcquireString("acct-42", retail, 1, now)
		if err != nil {
			panic(err)
		}
		fmt.Printf("order %d: allowed=%v reason=%v retry after %d ns\n", i, d.Allowed, d.Reason, d.RetryAfterNs)
	}
	// Output:
	// order 0: allowed=true reason=none retry after 0 ns
	// order 1: allowed=true reason=none retry after 0 ns
	// order 2: allowed=false reason=rate retry after 100000000 ns
}

// Deciding a batch of orders with one call into the library.
func ExampleLimiter_AcquireMany() {
	lim, err := tollgate.NewLimiter(tollgate.LimiterOptions{
		Tiers: []tollgate.Tier{{Name: "orders", Rate: 1, Burst: 1}},
	})
	if err != nil {
		panic(err)
	}
	defer lim.Close()
	keys := [][]byte{[]byte("alice"), []byte("bob"), []byte("alice")}
	out := make([]tollgate.Decision, len(keys))
	if err := lim.AcquireMany(keys, nil, nil, 5_000_000_000, out); err != nil {
		panic(err)
	}
	for i, d := range out {
		fmt.Println(string(keys[i]), d.Allowed)
	}
	// Output:
	// alice true
	// bob true
	// alice false
}

// A breaker around calls to one venue, with its state changes observed.
func ExampleBreaker() {
	b, err := tollgate.NewBreaker(tollgate.BreakerOptions{WindowSize: 10, MinimumCalls: 4})
	if err != nil {
		panic(err)
	}
	defer b.Close()
	b.OnEvent(func(e tollgate.Event) {
		fmt.Printf("%v -> %v (failure rate %.0f%%)\n", e.From, e.To, e.FailureRate)
	})
	now := uint64(1_000_000_000)
	for i := 0; i < 4; i++ {
		p, _ := b.Acquire(now)
		if !p.Allowed {
			continue
		}
		b.Record(p, tollgate.OutcomeFailure, 2_000_000, now) // the venue timed out
	}
	p, _ := b.Acquire(now)
	fmt.Println("allowed:", p.Allowed, "reason:", p.Reason, "retry after:", p.RetryAfterNs)
	// Output:
	// closed -> open (failure rate 100%)
	// allowed: false reason: open retry after: 1000000000
}

// Errors carry a Status that errors.Is recognises.
func ExampleError() {
	_, err := tollgate.NewLimiter(tollgate.LimiterOptions{
		Tiers: []tollgate.Tier{{Name: "t", Rate: -1, Burst: 1}},
	})
	fmt.Println(errors.Is(err, tollgate.ErrRange))
	var te *tollgate.Error
	if errors.As(err, &te) {
		fmt.Println(te.Status.String(), te.Message != "") // Message says which tier and why
	}
	// Output:
	// true
	// TG_ERANGE true
}
