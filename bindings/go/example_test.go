package tollgate_test

import (
	"errors"
	"fmt"
	"os"

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

// An audit journal written from the host's loop (poll mode), a limiter's
// decisions recorded in it, then verified and replayed.
func ExampleOpenJournal() {
	dir, err := os.MkdirTemp("", "tollgate-journal-example-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	var seed [32]byte // from the host's key store; not all zero
	copy(seed[:], "an example seed, not a real one")
	j, err := tollgate.OpenJournal(tollgate.JournalOptions{Directory: dir, SigningSeed: seed, Mode: tollgate.JournalWriterPoll})
	if err != nil {
		panic(err)
	}
	lim, err := tollgate.NewLimiter(tollgate.LimiterOptions{Tiers: []tollgate.Tier{{Name: "t", Rate: 10, Burst: 2}}})
	if err != nil {
		panic(err)
	}
	defer lim.Close()
	if _, err := j.RecordLimiterDefine(1, lim, tollgate.NoParent, nil); err != nil {
		panic(err)
	}
	now := uint64(1_000_000_000)
	for i := 0; i < 3; i++ {
		d, _ := lim.AcquireString("acct-42", 0, 1, now)
		ticket, err := j.RecordLimiterAcquireString(1, "acct-42", 0, 1, now, d, &tollgate.RecordContext{Account: "acct-42"})
		if err != nil {
			panic(err) // ErrFull: fail the request closed
		}
		j.Poll()
		written, _ := j.IsWritten(ticket)
		fmt.Printf("decision %d: allowed=%v written=%v\n", i, d.Allowed, written)
	}
	if err := j.Close(); err != nil {
		panic(err)
	}
	key, _ := tollgate.Ed25519PublicKey(seed)
	v, _ := tollgate.VerifyJournal(dir, tollgate.ReadOptions{PublicKey: &key})
	r, _ := tollgate.ReplayJournal(dir, tollgate.ReadOptions{})
	fmt.Printf("verified=%v events=%d; replayed %d decisions, %d mismatches\n", v.OK, v.Events, r.Decisions, r.Mismatches)
	// Output:
	// decision 0: allowed=true written=true
	// decision 1: allowed=true written=true
	// decision 2: allowed=false written=true
	// verified=true events=4; replayed 3 decisions, 0 mismatches
}
