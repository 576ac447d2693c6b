package tollgate

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"strings"
	"testing"
)

// The benchmarks report one operation per decision (batched ones too), so
// ns/op compares across single and batched forms. The workload admits every
// request: rate 1e9/s and a large burst, with injected time advancing 1 us
// per decision unless the clock read is part of what is measured.

const batchSize = 1000

func benchLimiter(b *testing.B) *Limiter {
	return newLimiter(b, LimiterOptions{
		Tiers:    []Tier{{Name: "t", Rate: 1e9, Burst: 1 << 20}},
		Capacity: 4096,
	})
}

func BenchmarkLimiterAcquire(b *testing.B) {
	l := benchLimiter(b)
	key := []byte("account-000001")
	now := t0
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		now += 1000
		d, err := l.Acquire(key, 0, 1, now)
		if err != nil || !d.Allowed {
			b.Fatal(d, err)
		}
	}
}

func BenchmarkLimiterAcquireString(b *testing.B) {
	l := benchLimiter(b)
	now := t0
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		now += 1000
		d, err := l.AcquireString("account-000001", 0, 1, now)
		if err != nil || !d.Allowed {
			b.Fatal(d, err)
		}
	}
}

// The same with the clock read in the loop (NowNs is a second cgo call).
func BenchmarkLimiterAcquireNowNs(b *testing.B) {
	l := benchLimiter(b)
	key := []byte("account-000001")
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		d, err := l.Acquire(key, 0, 1, NowNs())
		if err != nil || !d.Allowed {
			b.Fatal(d, err)
		}
	}
}

func BenchmarkLimiterAcquireParallel(b *testing.B) {
	l := benchLimiter(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		key := []byte("account-000001")
		for pb.Next() {
			if _, err := l.Acquire(key, 0, 1, NowNs()); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// AcquireMany over 1000 distinct keys; ns/op is per decision.
func BenchmarkLimiterAcquireMany1000(b *testing.B) {
	l := benchLimiter(b)
	keys := batchKeys(batchSize)
	out := make([]Decision, batchSize)
	now := t0
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; done += batchSize {
		n := min(batchSize, b.N-done)
		now += 1000 * batchSize
		if err := l.AcquireMany(keys[:n], nil, nil, now, out[:n]); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	for _, d := range out {
		if !d.Allowed && d != (Decision{}) {
			b.Fatal(d)
		}
	}
}

// AcquirePacked with keys already packed: no copy on the way in.
func BenchmarkLimiterAcquirePacked1000(b *testing.B) {
	l := benchLimiter(b)
	var packed []byte
	offs := []uint32{0}
	for _, k := range batchKeys(batchSize) {
		packed = append(packed, k...)
		offs = append(offs, uint32(len(packed)))
	}
	out := make([]Decision, batchSize)
	now := t0
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; done += batchSize {
		n := min(batchSize, b.N-done)
		now += 1000 * batchSize
		if err := l.AcquirePacked(packed[:offs[n]], offs[:n+1], nil, nil, now, out[:n]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBreakerAcquireRecord(b *testing.B) {
	br := newBreaker(b, BreakerOptions{})
	now := t0
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		now += 1000
		p, err := br.Acquire(now)
		if err != nil || !p.Allowed {
			b.Fatal(p, err)
		}
		if err := br.Record(p, OutcomeSuccess, 500, now); err != nil {
			b.Fatal(err)
		}
	}
}

// AcquireMany + RecordMany of 1000 calls; ns/op is per call.
func BenchmarkBreakerAcquireRecordMany1000(b *testing.B) {
	br := newBreaker(b, BreakerOptions{})
	permits := make([]Permit, batchSize)
	outcomes := make([]Outcome, batchSize)
	now := t0
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; done += batchSize {
		n := min(batchSize, b.N-done)
		now += 1000 * batchSize
		if err := br.AcquireMany(now, permits[:n]); err != nil {
			b.Fatal(err)
		}
		if err := br.RecordMany(permits[:n], outcomes[:n], nil, now); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNowNs(b *testing.B) {
	for i := 0; i < b.N; i++ {
		NowNs()
	}
}

// Router: a small table with a static and a parametric route, matched
// singly and in batches (ns/op per request), and a venue pick.

func benchRouteTable(b *testing.B) *RouteTable {
	return newTable(b, []Rule{
		{RouteID: 1, Path: "/api/v1/status", VenueSet: NoVenueSet},
		{RouteID: 2, Path: "/api/v1/accounts/{account}/orders/{order}", VenueSet: NoVenueSet},
		{RouteID: 3, Path: "/api/v1/accounts/{account}", VenueSet: NoVenueSet},
		{RouteID: 4, Path: "/api", Prefix: true, VenueSet: NoVenueSet},
	})
}

var (
	benchStatic = Request{Method: "GET", Host: "api.example.com", Path: "/api/v1/status"}
	benchParam  = Request{Method: "GET", Host: "api.example.com", Path: "/api/v1/accounts/AC-1234/orders/o-98765"}
)

func benchMatch(b *testing.B, req Request, want uint32) {
	rt := benchRouteTable(b)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		m, err := rt.Match(req)
		if err != nil || m.RouteID != want {
			b.Fatal(m, err)
		}
	}
}

func BenchmarkRouteTableMatchStatic(b *testing.B) { benchMatch(b, benchStatic, 1) }
func BenchmarkRouteTableMatchParam(b *testing.B)  { benchMatch(b, benchParam, 2) }

func benchMatchMany(b *testing.B, req Request, want uint32) {
	rt := benchRouteTable(b)
	reqs := make([]Request, batchSize)
	for i := range reqs {
		reqs[i] = req
	}
	out := make([]Match, batchSize)
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; done += batchSize {
		n := min(batchSize, b.N-done)
		if err := rt.MatchMany(reqs[:n], out[:n]); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if out[0].RouteID != want {
		b.Fatal(out[0])
	}
}

func BenchmarkRouteTableMatchManyStatic1000(b *testing.B) { benchMatchMany(b, benchStatic, 1) }
func BenchmarkRouteTableMatchManyParam1000(b *testing.B)  { benchMatchMany(b, benchParam, 2) }

func BenchmarkVenueSetPick(b *testing.B) {
	s := newVenueSet(b, VenueSetOptions{Venues: []Venue{{1, 1, nil}, {2, 2, nil}, {3, 5, nil}, {4, 1, nil}}})
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if p, err := s.Pick(nil, uint64(i), 0); err != nil || !p.OK {
			b.Fatal(p, err)
		}
	}
}

// Price cache: a Get hit with its payload copied, a tick within the
// threshold (kept) and OnPriceMany over 1000 cached instruments (ns/op per
// tick).

var benchPayload = []byte("bid 189.24 x 300 / ask 189.26 x 500")

func benchPriceCache(b *testing.B, keys [][]byte) *PriceCache {
	c := newPriceCache(b, PriceCacheOptions{Capacity: 4096, NoMaxAge: true})
	for _, k := range keys {
		if err := c.Put(k, 100, 0, benchPayload, t0, nil); err != nil {
			b.Fatal(err)
		}
	}
	if s, err := c.Stats(); err != nil || s.Entries != uint64(len(keys)) {
		b.Fatalf("%+v %v", s, err)
	}
	return c
}

func BenchmarkPriceCacheGet(b *testing.B) {
	key := IDKey(1234567)
	c := benchPriceCache(b, [][]byte{key})
	buf := make([]byte, 64)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		cp, ok, err := c.Get(key, t0, buf)
		if err != nil || !ok || cp.PayloadLen != len(benchPayload) {
			b.Fatal(cp, ok, err)
		}
	}
}

func BenchmarkPriceCacheOnPrice(b *testing.B) {
	key := IDKey(1234567)
	c := benchPriceCache(b, [][]byte{key})
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		r, err := c.OnPrice(key, 100.05, uint64(i+1), t0)
		if err != nil || r.Outcome != PriceKept {
			b.Fatal(r, err)
		}
	}
}

// OnPriceMany of 1000 ticks, one per cached instrument; ns/op is per tick.
func BenchmarkPriceCacheOnPriceMany1000(b *testing.B) {
	keys := batchKeys(batchSize)
	c := benchPriceCache(b, keys)
	prices := make([]float64, batchSize)
	for i := range prices {
		prices[i] = 100.05
	}
	seqs := make([]uint64, batchSize)
	out := make([]PriceResult, batchSize)
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; done += batchSize {
		n := min(batchSize, b.N-done)
		for i := range seqs[:n] {
			seqs[i]++
		}
		if err := c.OnPriceMany(keys[:n], prices[:n], seqs[:n], t0, out[:n]); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	for i, r := range out {
		if r.Outcome != PriceKept && seqs[i] != 0 {
			b.Fatal(i, r)
		}
	}
}

// Risk checks: every rule on (kill switches, collar, max quantity and
// notional, duplicates, account count and notional), a reference price in a
// price cache, and orders that pass, so each decision does all its work.
// Client order ids cycle through 1000 distinct ones whose duplicate window
// (1 ms) has ended by the time they come round again. No Go peer exists, so
// the figure is the binding's own cost per decision.

func benchRiskChecker(b *testing.B) *RiskChecker {
	cache := newPriceCache(b, PriceCacheOptions{Capacity: 4096, NoMaxAge: true})
	if err := cache.Put([]byte("AAPL"), 100, 0, nil, t0, nil); err != nil {
		b.Fatal(err)
	}
	return newRiskChecker(b, RiskOptions{
		MaxQuantity: 1e6, MaxNotional: 1e9, CollarWidth: 5,
		AccountMaxOrders: 1 << 62, AccountMaxNotional: 1e300,
		DuplicateWindowNs: 1_000_000,
	}, cache)
}

func benchRiskOrders() []RiskOrder {
	ids := batchKeys(batchSize)
	orders := make([]RiskOrder, len(ids))
	for i, id := range ids {
		orders[i] = RiskOrder{Account: "acct-" + string('a'+rune(i%16)), Instrument: "AAPL",
			ClientOrderID: string(id), Side: Side(i % 2), Quantity: 100, LimitPrice: 101.25}
	}
	return orders
}

func BenchmarkRiskCheck(b *testing.B) {
	r := benchRiskChecker(b)
	orders := benchRiskOrders()
	now := t0
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		now += 1000 // an id returns after 1000 checks: 1 ms, the duplicate window
		d, err := r.Check(orders[i%batchSize], now)
		if err != nil || !d.Allowed {
			b.Fatal(d, err)
		}
	}
}

// CheckMany of 1000 orders; ns/op is per order.
func BenchmarkRiskCheckMany1000(b *testing.B) {
	r := benchRiskChecker(b)
	orders := benchRiskOrders()
	out := make([]RiskDecision, batchSize)
	now := t0
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; done += batchSize {
		n := min(batchSize, b.N-done)
		now += 1000 * batchSize
		if err := r.CheckMany(orders[:n], now, out[:n]); err != nil {
			b.Fatal(err)
		}
		for i := range out[:n] {
			if !out[i].Allowed {
				b.Fatal(i, out[i])
			}
		}
	}
}

// Request authentication: a POST whose canonical request is exactly 256
// bytes (three signed headers, a query, a 23-byte JSON body). The nearest
// Go peer is crypto/hmac computing the MAC of the same canonical string;
// the library's Verify and SignRequest also parse the header or build it,
// canonicalise the request (path normal form, sorted query), hash the
// body, and Verify checks the skew window, the key and the nonce cache.

var benchAuthSecret = []byte("s3cr3t-key-one-0123456789abcdef")

func benchAuthRequest(b *testing.B) (AuthMessage, AuthParams) {
	msg := AuthMessage{Method: "POST", Target: "/v1/orders?symbol=ES&side=B",
		Headers: []Header{{"Host", "gw.example"}, {"Content-Type", "application/json"},
			{"X-Request-Id", ""}, {"User-Agent", "bench/1.0"}},
		Body: []byte(`{"qty":10,"px":4500.25}`)}
	p := AuthParams{KeyID: "k1", Nonce: "ABCDEFGHIJKLMNOPQRSTUVWXYZ", SignedHeaders: "content-type;host;x-request-id",
		TimestampNs: authT0}
	c, err := CanonicalRequest(msg, p)
	if err != nil || len(c) > 256 {
		b.Fatal(len(c), err)
	}
	msg.Headers[2].Value = strings.Repeat("r", 256-len(c))
	if c, _ = CanonicalRequest(msg, p); len(c) != 256 {
		b.Fatalf("canonical request of %d bytes", len(c))
	}
	return msg, p
}

// Verify of requests that pass; each is signed outside the timer with its
// own nonce, 1024 at a time, each batch 2 s after the previous one so the
// nonce cache (1 s window) never fills.
func BenchmarkAuthVerify(b *testing.B) {
	msg, p := benchAuthRequest(b)
	a := newAuth(b, AuthOptions{MaxSkewNs: second, NonceCapacity: 1 << 16})
	if err := a.AddKey("k1", benchAuthSecret, 0, math.MaxUint64, 0); err != nil {
		b.Fatal(err)
	}
	const batch = 1024
	signed := make([]string, batch)
	seq := 0
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; {
		b.StopTimer()
		p.TimestampNs += 2 * second
		for i := range signed {
			seq++
			p.Nonce = fmt.Sprintf("bench-%020d", seq)
			var err error
			if signed[i], err = SignRequest(msg, p, benchAuthSecret); err != nil {
				b.Fatal(err)
			}
		}
		n := min(batch, b.N-done)
		b.StartTimer()
		for i := 0; i < n; i++ {
			r, err := a.Verify(msg, signed[i], p.TimestampNs)
			if err != nil || r.Reason != AuthOK {
				b.Fatal(r, err)
			}
		}
		done += n
	}
}

func BenchmarkAuthSign(b *testing.B) {
	msg, p := benchAuthRequest(b)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := SignRequest(msg, p, benchAuthSecret); err != nil {
			b.Fatal(err)
		}
	}
}

// The peer of Verify: crypto/hmac with the key state kept (as the library
// keeps each key's pads), the MAC of the canonical string compared with the
// expected one.
func BenchmarkAuthGoHMAC(b *testing.B) {
	msg, p := benchAuthRequest(b)
	c, _ := CanonicalRequest(msg, p)
	canon := []byte(c)
	want, _ := HMACSHA256(benchAuthSecret, canon)
	mac := hmac.New(sha256.New, benchAuthSecret)
	buf := make([]byte, 0, sha256.Size)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		mac.Reset()
		mac.Write(canon)
		if !hmac.Equal(mac.Sum(buf[:0]), want[:]) {
			b.Fatal("MAC differs")
		}
	}
}

// The peer of SignRequest: crypto/hmac keyed from the secret on every call
// (as SignRequest is), the MAC of the canonical string in hex.
func BenchmarkAuthGoHMACNewKey(b *testing.B) {
	msg, p := benchAuthRequest(b)
	c, _ := CanonicalRequest(msg, p)
	canon := []byte(c)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		mac := hmac.New(sha256.New, benchAuthSecret)
		mac.Write(canon)
		if len(hex.EncodeToString(mac.Sum(nil))) != 64 {
			b.Fatal("bad MAC")
		}
	}
}

// Journal benchmarks: poll mode, durability none (fdatasync only when a
// segment is sealed), the loop polling every journalPollEvery appends, so
// ns/op is an append plus its share of the writer's work (framing, CRC32C,
// the SHA-256 chain and payload digest, one pwrite per batch) on this
// goroutine. Each run writes about 200 bytes per op to a temporary
// directory.

const journalPollEvery = 256

func benchJournal(b *testing.B) *Journal {
	o := journalOptions(b.TempDir(), JournalWriterPoll)
	o.Durability = DurabilityNone
	return openJournal(b, o)
}

func BenchmarkJournalAppend(b *testing.B) {
	j := benchJournal(b)
	e := JournalEntry{Account: "account-000001", Route: 1, Venue: 2, ConfigVersion: 7,
		Inputs: make([]byte, 32), Payload: make([]byte, 64)}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := j.Append(&e); err != nil {
			b.Fatal(err)
		}
		if i%journalPollEvery == journalPollEvery-1 {
			if _, err := j.Poll(); err != nil {
				b.Fatal(err)
			}
		}
	}
	drain(b, j)
}

// The append alone: the timer stops while the loop polls.
func BenchmarkJournalAppendOnly(b *testing.B) {
	j := benchJournal(b)
	e := JournalEntry{Account: "account-000001", Route: 1, Venue: 2, ConfigVersion: 7,
		Inputs: make([]byte, 32), Payload: make([]byte, 64)}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := j.Append(&e); err != nil {
			b.Fatal(err)
		}
		if i%journalPollEvery == journalPollEvery-1 {
			b.StopTimer()
			if _, err := j.Poll(); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	}
	b.StopTimer()
	drain(b, j)
}

// A limiter decision and its replay record, as a host journaling every
// decision would do.
func BenchmarkJournalRecordLimiterAcquire(b *testing.B) {
	j := benchJournal(b)
	l := benchLimiter(b)
	ctx := &RecordContext{Account: "account-000001", Route: 1}
	now := t0
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		now += 1000
		d, err := l.AcquireString("account-000001", 0, 1, now)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := j.RecordLimiterAcquireString(1, "account-000001", 0, 1, now, d, ctx); err != nil {
			b.Fatal(err)
		}
		if i%journalPollEvery == journalPollEvery-1 {
			if _, err := j.Poll(); err != nil {
				b.Fatal(err)
			}
		}
	}
	drain(b, j)
}
