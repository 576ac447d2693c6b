package tollgate

/*
#include <stdint.h>
#include <tollgate/tollgate.h>

// Keys and payloads cross as uint8_t pointers (no run-time pointer check;
// see limiter.go). tg_price_cache_get never calls back into Go, so its
// result pointers may point at the Go stack (#cgo noescape). The writers
// (put, on_price, on_price_many, remove, expire) may call back into Go with
// an eviction event, so they get no pointer to a Go stack variable: their
// results come back by value, as the breaker's permits do.
static inline int tg_go_price_cache_get(const tg_price_cache* c, const uint8_t* key,
                                        size_t key_len, uint64_t now_ns, tg_cached_price* out,
                                        uint8_t* payload, size_t cap, int* hit) {
  return tg_price_cache_get(c, key, key_len, now_ns, out, payload, cap, hit);
}

typedef struct tg_go_pc_put_result {
  int rc;
  tg_error err;
} tg_go_pc_put_result;

static inline tg_go_pc_put_result tg_go_price_cache_put(tg_price_cache* c, const uint8_t* key,
                                                        size_t key_len, double price,
                                                        uint64_t feed_seq, const uint8_t* payload,
                                                        size_t payload_len, double threshold,
                                                        double tick_size, uint64_t now_ns) {
  tg_go_pc_put_result r;
  r.err.code = TG_OK;
  r.err.message[0] = '\0';
  r.rc = tg_price_cache_put(c, key, key_len, price, feed_seq, payload, payload_len, threshold,
                            tick_size, now_ns, &r.err);
  return r;
}

typedef struct tg_go_pc_tick_result {
  int rc;
  tg_price_result r;
} tg_go_pc_tick_result;

static inline tg_go_pc_tick_result tg_go_price_cache_on_price(tg_price_cache* c, const uint8_t* key,
                                                              size_t key_len, double price,
                                                              uint64_t feed_seq, uint64_t now_ns) {
  tg_go_pc_tick_result t;
  t.r.outcome = TG_PRICE_NOT_CACHED;
  t.r.reason = TG_EVICT_NONE;
  t.rc = tg_price_cache_on_price(c, key, key_len, price, feed_seq, now_ns, &t.r);
  return t;
}

typedef struct tg_go_pc_count_result {
  int rc;
  uint64_t n;
} tg_go_pc_count_result;

static inline tg_go_pc_count_result tg_go_price_cache_remove(tg_price_cache* c, const uint8_t* key,
                                                             size_t key_len, uint64_t now_ns) {
  tg_go_pc_count_result r;
  int removed = 0;
  r.rc = tg_price_cache_remove(c, key, key_len, now_ns, &removed);
  r.n = (uint64_t)removed;
  return r;
}

static inline tg_go_pc_count_result tg_go_price_cache_expire(tg_price_cache* c, uint64_t now_ns) {
  tg_go_pc_count_result r;
  size_t evicted = 0;
  r.rc = tg_price_cache_expire(c, now_ns, &evicted);
  r.n = (uint64_t)evicted;
  return r;
}

#cgo noescape tg_price_cache_options_init
#cgo noescape tg_price_cache_new
#cgo noescape tg_go_price_cache_get
#cgo noescape tg_price_cache_stats_get
#cgo nocallback tg_price_cache_options_init
#cgo nocallback tg_price_cache_new
#cgo nocallback tg_price_cache_free
#cgo nocallback tg_go_price_cache_get
#cgo nocallback tg_price_cache_stats_get
*/
import "C"

import (
	"encoding/binary"
	"fmt"
	"math"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"unsafe"
)

// MaxPriceKeyLen is the longest instrument key of a [PriceCache]; keys are
// 1..MaxPriceKeyLen bytes.
const MaxPriceKeyLen = 32

// MaxPricePayload is the largest PriceCacheOptions.MaxPayload.
const MaxPricePayload = 1024

// ThresholdUnit is the unit of a [PriceCache]'s thresholds.
type ThresholdUnit uint32

const (
	// ThresholdBps: a move of |p - c| / c * 1e4 basis points is compared
	// with the threshold.
	ThresholdBps ThresholdUnit = 0
	// ThresholdTicks: a move of round(|p - c| / tickSize) ticks is compared
	// with the threshold.
	ThresholdTicks ThresholdUnit = 1
)

var (
	_ = [1]struct{}{}[int(ThresholdBps)-C.TG_THRESHOLD_BPS]
	_ = [1]struct{}{}[int(ThresholdTicks)-C.TG_THRESHOLD_TICKS]
)

// String returns a short lower-case name of the unit.
func (u ThresholdUnit) String() string {
	switch u {
	case ThresholdBps:
		return "bps"
	case ThresholdTicks:
		return "ticks"
	}
	return "ThresholdUnit(" + strconv.FormatUint(uint64(u), 10) + ")"
}

// PriceOutcome is what a tick (OnPrice) did to an instrument's entry.
type PriceOutcome int32

const (
	// PriceKept: in sequence and within the threshold; the entry stays.
	PriceKept PriceOutcome = 0
	// PriceEvicted: the entry is gone; PriceResult.Reason says why.
	PriceEvicted PriceOutcome = 1
	// PriceNotCached: no entry for the instrument; nothing happened.
	PriceNotCached PriceOutcome = 2
	// PriceReplay: a sequence number already seen (less than 2^63 behind,
	// modulo 2^64); the tick was ignored.
	PriceReplay PriceOutcome = 3
)

var (
	_ = [1]struct{}{}[int(PriceKept)-C.TG_PRICE_KEPT]
	_ = [1]struct{}{}[int(PriceEvicted)-C.TG_PRICE_EVICTED]
	_ = [1]struct{}{}[int(PriceNotCached)-C.TG_PRICE_NOT_CACHED]
	_ = [1]struct{}{}[int(PriceReplay)-C.TG_PRICE_REPLAY]
)

// String returns a short lower-case name of the outcome.
func (o PriceOutcome) String() string {
	switch o {
	case PriceKept:
		return "kept"
	case PriceEvicted:
		return "evicted"
	case PriceNotCached:
		return "not-cached"
	case PriceReplay:
		return "replay"
	}
	return "PriceOutcome(" + strconv.Itoa(int(o)) + ")"
}

// EvictReason says why an entry left a [PriceCache].
type EvictReason int32

const (
	// EvictNone: nothing was evicted.
	EvictNone EvictReason = 0
	// EvictPriceMove: the move since caching exceeded the threshold.
	EvictPriceMove EvictReason = 1
	// EvictSequenceGap: the tick's number was not the next one; the cache
	// cannot know what it missed.
	EvictSequenceGap EvictReason = 2
	// EvictAge: the entry was older than MaxAgeNs.
	EvictAge EvictReason = 3
	// EvictCapacity: a Put found the key's group of 8 slots full and CLOCK
	// chose this entry.
	EvictCapacity EvictReason = 4
	// EvictRemoved: Remove.
	EvictRemoved EvictReason = 5
)

var (
	_ = [1]struct{}{}[int(EvictNone)-C.TG_EVICT_NONE]
	_ = [1]struct{}{}[int(EvictPriceMove)-C.TG_EVICT_PRICE_MOVE]
	_ = [1]struct{}{}[int(EvictSequenceGap)-C.TG_EVICT_SEQUENCE_GAP]
	_ = [1]struct{}{}[int(EvictAge)-C.TG_EVICT_AGE]
	_ = [1]struct{}{}[int(EvictCapacity)-C.TG_EVICT_CAPACITY]
	_ = [1]struct{}{}[int(EvictRemoved)-C.TG_EVICT_REMOVED]
)

// String returns a short lower-case name of the reason.
func (r EvictReason) String() string {
	switch r {
	case EvictNone:
		return "none"
	case EvictPriceMove:
		return "price-move"
	case EvictSequenceGap:
		return "sequence-gap"
	case EvictAge:
		return "age"
	case EvictCapacity:
		return "capacity"
	case EvictRemoved:
		return "removed"
	}
	return "EvictReason(" + strconv.Itoa(int(r)) + ")"
}

// PriceCacheOptions configures [NewPriceCache]; it mirrors
// tg_price_cache_options. The zero value of a field means the library's
// default, which [DefaultPriceCacheOptions] shows. (So a zero default
// threshold or a cache without payloads cannot be asked for here: use
// EntryLimits{Threshold: 0} per entry, and MaxPayload 1.)
type PriceCacheOptions struct {
	// Capacity is the number of entries, 1..2^26. 0: 4096.
	Capacity uint64
	// MaxPayload is the most payload bytes an entry holds, 1..1024. 0: 64.
	MaxPayload uint32
	// Unit of the thresholds: ThresholdBps (default) or ThresholdTicks.
	Unit ThresholdUnit
	// Threshold is the default threshold, in Unit, finite and >= 0. A move
	// exactly at it keeps the entry. 0: 10.
	Threshold float64
	// TickSize is the default tick size (ThresholdTicks), finite and > 0.
	// 0: 0.01.
	TickSize float64
	// MaxAgeNs evicts entries older than this. 0: 60 s (see NoMaxAge).
	MaxAgeNs uint64
	// NoMaxAge turns the age limit off (MaxAgeNs is then ignored).
	NoMaxAge bool
	// VolMultiplier > 0 widens each entry's threshold with realised
	// volatility: max(threshold, VolMultiplier * sqrt(var) * 1e4) bps, with
	// var an EWMA of squared log returns of in-sequence ticks. 0: fixed
	// thresholds.
	VolMultiplier float64
	// VolAlpha is the EWMA weight of the newest squared return, in (0, 1].
	// 0: 0.05.
	VolAlpha float64
	// Seed seeds key hashing. 0: the library's default seed.
	Seed uint64
}

// DefaultPriceCacheOptions returns the library's defaults, every field set
// (Seed 0 stands for the library's default seed).
func DefaultPriceCacheOptions() PriceCacheOptions {
	var c C.tg_price_cache_options
	C.tg_price_cache_options_init(&c)
	return PriceCacheOptions{
		Capacity:      uint64(c.capacity),
		MaxPayload:    uint32(c.max_payload),
		Unit:          ThresholdUnit(c.unit),
		Threshold:     float64(c.threshold),
		TickSize:      float64(c.tick_size),
		MaxAgeNs:      uint64(c.max_age_ns),
		NoMaxAge:      c.max_age_ns == 0,
		VolMultiplier: float64(c.vol_multiplier),
		VolAlpha:      float64(c.vol_alpha),
		Seed:          uint64(c.seed),
	}
}

// EntryLimits override the cache's default threshold and tick size for one
// entry (Put). A NaN field keeps the cache's default, and so does a zero
// TickSize (a tick size must be > 0); a zero Threshold is a threshold: any
// move evicts.
type EntryLimits struct {
	// Threshold in the cache's unit, finite and >= 0, or NaN.
	Threshold float64
	// TickSize, finite and > 0, or 0 or NaN for the default.
	TickSize float64
}

// CachedPrice is an entry as Get found it.
type CachedPrice struct {
	// Price is the price the entry was cached at.
	Price float64
	// Threshold is the entry's threshold now, volatility included, in the
	// cache's unit.
	Threshold float64
	// FeedSeq is the last in-sequence feed number seen.
	FeedSeq uint64
	// CachedAtNs is the nowNs of the Put.
	CachedAtNs uint64
	// AgeNs is nowNs - CachedAtNs (0 if the clock went back).
	AgeNs uint64
	// PayloadLen is the length of the entry's payload; Get copied
	// min(len(payloadBuf), PayloadLen) bytes of it.
	PayloadLen int
}

// Payload returns the part of buf that Get filled: buf[:min(len(buf),
// c.PayloadLen)], buf being the payloadBuf passed to Get.
func (c *CachedPrice) Payload(buf []byte) []byte {
	return buf[:max(0, min(len(buf), c.PayloadLen))]
}

// PriceResult is what a tick did. Its layout is the library's
// tg_price_result, so OnPriceMany writes results in place.
type PriceResult struct {
	// Outcome is PriceKept, PriceEvicted, PriceNotCached or PriceReplay.
	Outcome PriceOutcome
	// Reason is why when PriceEvicted, else EvictNone.
	Reason EvictReason
}

var (
	_ = [1]struct{}{}[unsafe.Sizeof(PriceResult{})-unsafe.Sizeof(C.tg_price_result{})]
	_ = [1]struct{}{}[unsafe.Offsetof(PriceResult{}.Reason)-unsafe.Offsetof(C.tg_price_result{}.reason)]
	_ = [1]struct{}{}[unsafe.Sizeof(PriceOutcome(0))-unsafe.Sizeof(C.int32_t(0))]
	_ = [1]struct{}{}[unsafe.Sizeof(EvictReason(0))-unsafe.Sizeof(C.int32_t(0))]
)

// EvictionEvent is an eviction, passed to the SetEvictionCallback callback.
type EvictionEvent struct {
	// Reason is why the entry left.
	Reason EvictReason
	// Key is the instrument's key, a copy the callback may keep.
	Key []byte
	// CachedPrice is the price the entry was cached at.
	CachedPrice float64
	// NewPrice is the tick's price for evictions by a tick, else the cached
	// price.
	NewPrice float64
	// FeedSeq is the tick's number for evictions by a tick, else the last
	// number seen.
	FeedSeq uint64
	// NowNs is the nowNs of the call that evicted.
	NowNs uint64
}

// PriceCacheStats are a PriceCache's counters since creation, read one by
// one (not one atomic snapshot).
type PriceCacheStats struct {
	// Hits and Misses count Get calls that found an entry or found none.
	Hits, Misses uint64
	// StaleMisses counts Get calls that found an entry older than MaxAgeNs
	// (a miss for the caller, not counted in Misses).
	StaleMisses uint64
	// Puts counts Put calls that cached an entry.
	Puts uint64
	// Kept, Replays and NotCached count ticks by outcome.
	Kept, Replays, NotCached uint64
	// Evicted* count evictions by reason.
	EvictedPriceMove, EvictedSequenceGap, EvictedAge, EvictedCapacity, EvictedRemoved uint64
	// Entries is the number of entries live now.
	Entries uint64
	// Slots is the table's size (a power of two, >= Capacity * 8/7).
	Slots uint64
}

// IDKey returns the key of a numeric instrument id: its 8 little-endian
// bytes. It allocates the 8 bytes; keep the key of a hot instrument.
func IDKey(id uint64) []byte {
	return binary.LittleEndian.AppendUint64(make([]byte, 0, 8), id)
}

// PriceCache caches market data (a quote, a reference price, any payload of
// up to MaxPayload bytes) per instrument until the price moves away from
// it, the feed skips a number, the entry ages out, a full group needs its
// slot or the host removes it. Get is lock-free and never waits for the
// feed, and never returns a torn entry; the writers (Put, OnPrice,
// OnPriceMany, Remove, Expire) may run on any goroutines. All methods are
// safe for concurrent use. Create one with [NewPriceCache] and release it
// with Close.
type PriceCache struct {
	g       guard
	h       *C.tg_price_cache
	sink    atomic.Pointer[evictionSink]
	scratch atomic.Pointer[priceScratch]
	mu      sync.Mutex // serialises SetEvictionCallback
}

// NewPriceCache creates a price cache. Invalid options give an error
// wrapping ErrInvalid, ErrRange or ErrVersion with the library's
// explanation.
func NewPriceCache(o PriceCacheOptions) (*PriceCache, error) {
	if err := CheckVersion(); err != nil {
		return nil, err
	}
	var c C.tg_price_cache_options
	C.tg_price_cache_options_init(&c)
	if o.Capacity != 0 {
		c.capacity = C.uint64_t(o.Capacity)
	}
	if o.MaxPayload != 0 {
		c.max_payload = C.uint32_t(o.MaxPayload)
	}
	c.unit = C.uint32_t(o.Unit)
	if o.Threshold != 0 {
		c.threshold = C.double(o.Threshold)
	}
	if o.TickSize != 0 {
		c.tick_size = C.double(o.TickSize)
	}
	switch {
	case o.NoMaxAge:
		c.max_age_ns = 0
	case o.MaxAgeNs != 0:
		c.max_age_ns = C.uint64_t(o.MaxAgeNs)
	}
	if o.VolMultiplier != 0 {
		c.vol_multiplier = C.double(o.VolMultiplier)
	}
	if o.VolAlpha != 0 {
		c.vol_alpha = C.double(o.VolAlpha)
	}
	c.seed = C.uint64_t(o.Seed)
	var cerr C.tg_error
	var h *C.tg_price_cache
	if rc := C.tg_price_cache_new(&c, &h, &cerr); rc != C.TG_OK {
		return nil, statusErr(rc, &cerr, "tg_price_cache_new failed")
	}
	p := &PriceCache{h: h}
	runtime.SetFinalizer(p, (*PriceCache).Close)
	return p, nil
}

// Close releases the cache. It is idempotent and safe to call while other
// goroutines (or the eviction callback) use the cache: their calls finish,
// later calls return ErrClosed, and the memory goes when the last call
// returns.
func (p *PriceCache) Close() error {
	if p == nil {
		return nil
	}
	if p.g.close() {
		p.free()
	}
	runtime.SetFinalizer(p, nil)
	return nil
}

func (p *PriceCache) free() {
	C.tg_price_cache_free(p.h)
	if s := p.sink.Load(); s != nil {
		s.handle.Delete()
	}
	handlesFreed.Add(1)
}

func (p *PriceCache) enter() error {
	if p == nil {
		return errNil
	}
	if !p.g.enter() {
		p.leave()
		return ErrClosed
	}
	return nil
}

func (p *PriceCache) leave() {
	if p.g.leave() {
		p.free()
	}
}

// rethrow re-raises, in the goroutine whose call caused it, a panic of the
// eviction callback; it was recovered before unwinding through C frames.
func (p *PriceCache) rethrow() {
	if s := p.sink.Load(); s != nil {
		if v := s.pending.Swap(nil); v != nil {
			panic(v.v)
		}
	}
}

// keyErr explains a key the library refused, or returns nil if it is fine.
func keyErr(what string, key []byte) error {
	if len(key) == 0 || len(key) > MaxPriceKeyLen {
		return invalid("%s of %d bytes: an instrument key is 1..%d bytes", what, len(key), MaxPriceKeyLen)
	}
	return nil
}

func priceOK(price float64) bool { return price > 0 && !math.IsInf(price, 1) }

// tickErr explains a tick the library refused.
func tickErr(rc C.int, key []byte, price float64, what string) error {
	if err := keyErr("key", key); err != nil {
		return err
	}
	if !priceOK(price) {
		return invalid("price %v: a price must be finite and > 0", price)
	}
	return statusErr(rc, nil, what+" refused the call")
}

// Put caches (or re-caches) an instrument at price as of feed number
// feedSeq, with a copy of payload (at most MaxPayload bytes), at nowNs.
// limits, when not nil, overrides the threshold and tick size for this
// entry. A re-cache replaces price, payload, sequence and age and resets
// the volatility estimate. A put into a full group evicts an entry
// (EvictCapacity). Errors: ErrInvalid for a key not 1..32 bytes or a price
// that is NaN, infinite, zero or negative; ErrRange for a payload longer
// than MaxPayload, a negative or infinite threshold, a negative or
// infinite tick size; a nil or closed cache.
func (p *PriceCache) Put(key []byte, price float64, feedSeq uint64, payload []byte, nowNs uint64, limits *EntryLimits) error {
	if err := p.enter(); err != nil {
		return err
	}
	thr, tick := math.NaN(), math.NaN()
	if limits != nil {
		thr = limits.Threshold
		if limits.TickSize != 0 {
			tick = limits.TickSize
		}
	}
	r := C.tg_go_price_cache_put(p.h, bytesPtr(key), C.size_t(len(key)), C.double(price), C.uint64_t(feedSeq),
		bytesPtr(payload), C.size_t(len(payload)), C.double(thr), C.double(tick), C.uint64_t(nowNs))
	p.leave()
	p.rethrow()
	if r.rc != C.TG_OK {
		cerr := r.err // a copy, so that only a failure moves it to the heap
		return statusErr(r.rc, &cerr, "tg_price_cache_put failed")
	}
	return nil
}

// Get looks up an instrument at nowNs. On a hit it returns the entry, true,
// and copies min(len(payloadBuf), PayloadLen) payload bytes into payloadBuf
// (nil: none). A miss, including an entry older than MaxAgeNs, is a zero
// CachedPrice and false. Errors: a key not 1..32 bytes, a nil or closed
// cache. Lock-free, never waits for the feed, allocation-free.
func (p *PriceCache) Get(key []byte, nowNs uint64, payloadBuf []byte) (CachedPrice, bool, error) {
	if err := p.enter(); err != nil {
		return CachedPrice{}, false, err
	}
	var c C.tg_cached_price
	var hit C.int
	rc := C.tg_go_price_cache_get(p.h, bytesPtr(key), C.size_t(len(key)), C.uint64_t(nowNs), &c,
		bytesPtr(payloadBuf), C.size_t(len(payloadBuf)), &hit)
	p.leave()
	if rc != C.TG_OK {
		if err := keyErr("key", key); err != nil {
			return CachedPrice{}, false, err
		}
		return CachedPrice{}, false, statusErr(rc, nil, "tg_price_cache_get refused the call")
	}
	if hit == 0 {
		return CachedPrice{}, false, nil
	}
	return CachedPrice{
		Price:      float64(c.price),
		Threshold:  float64(c.threshold),
		FeedSeq:    uint64(c.feed_seq),
		CachedAtNs: uint64(c.cached_at_ns),
		AgeNs:      uint64(c.age_ns),
		PayloadLen: int(c.payload_len),
	}, true, nil
}

// OnPrice is a market-data tick: price for the instrument as feed number
// feedSeq, at nowNs. It evicts the instrument's entry when the move since
// caching exceeds its threshold, feedSeq is not the next number (modulo
// 2^64; one exactly 2^63 away is a gap), or the entry is older than
// MaxAgeNs; a number already seen is a replay and ignored. A price that is NaN, infinite, zero or negative is an
// error wrapping ErrInvalid and changes nothing. Allocation-free.
func (p *PriceCache) OnPrice(key []byte, price float64, feedSeq, nowNs uint64) (PriceResult, error) {
	if err := p.enter(); err != nil {
		return PriceResult{}, err
	}
	t := C.tg_go_price_cache_on_price(p.h, bytesPtr(key), C.size_t(len(key)), C.double(price),
		C.uint64_t(feedSeq), C.uint64_t(nowNs))
	p.leave()
	p.rethrow()
	if t.rc != C.TG_OK {
		return PriceResult{}, tickErr(t.rc, key, price, "tg_price_cache_on_price")
	}
	return PriceResult{Outcome: PriceOutcome(t.r.outcome), Reason: EvictReason(t.r.reason)}, nil
}

// priceScratch holds the packed keys and offsets of one batch; neither
// holds a Go pointer, so both may be passed to C.
type priceScratch struct {
	keys []byte
	offs []uint32
}

var priceScratchPool = sync.Pool{New: func() any { return new(priceScratch) }}

func (p *PriceCache) getScratch() *priceScratch {
	if s := p.scratch.Swap(nil); s != nil {
		return s
	}
	return priceScratchPool.Get().(*priceScratch)
}

func (p *PriceCache) putScratch(s *priceScratch) {
	if cap(s.keys) > maxCachedScratch || cap(s.offs) > maxCachedScratch/4 {
		return
	}
	if !p.scratch.CompareAndSwap(nil, s) {
		priceScratchPool.Put(s)
	}
}

// OnPriceMany applies len(keys) ticks at one nowNs with one call into the
// library: tick i is (keys[i], prices[i], seqs[i]) and its result goes to
// out[i]. prices and seqs must have len(keys) entries and out at least
// that many. The ticks are applied in order, so the result equals
// len(keys) calls of OnPrice. Arguments are validated first: on error no
// tick was applied and out is unchanged. The keys are copied into a reused
// buffer, so a warm call does not allocate.
func (p *PriceCache) OnPriceMany(keys [][]byte, prices []float64, seqs []uint64, nowNs uint64, out []PriceResult) error {
	if err := p.enter(); err != nil {
		return err
	}
	n := len(keys)
	if len(prices) != n {
		p.leave()
		return invalid("len(prices) = %d, want len(keys) = %d", len(prices), n)
	}
	if len(seqs) != n {
		p.leave()
		return invalid("len(seqs) = %d, want len(keys) = %d", len(seqs), n)
	}
	if len(out) < n {
		p.leave()
		return invalid("len(out) = %d, want at least len(keys) = %d", len(out), n)
	}
	if n == 0 {
		p.leave()
		return nil
	}
	total := 0
	for _, k := range keys {
		total += len(k)
	}
	if uint64(total) > math.MaxUint32 {
		p.leave()
		return &Error{Status: ErrRange, Message: "the keys of one batch must total less than 4 GiB"}
	}
	s := p.getScratch()
	if cap(s.keys) < total {
		s.keys = make([]byte, 0, total)
	}
	if cap(s.offs) < n+1 {
		s.offs = make([]uint32, 0, n+1)
	}
	kb := s.keys[:0]
	offs := append(s.offs[:0], 0)
	for _, k := range keys {
		kb = append(kb, k...)
		offs = append(offs, uint32(len(kb)))
	}
	s.keys, s.offs = kb, offs
	rc := C.tg_price_cache_on_price_many(p.h, bytesPtrOr(kb), (*C.uint32_t)(unsafe.Pointer(unsafe.SliceData(offs))),
		C.size_t(n), (*C.double)(unsafe.Pointer(unsafe.SliceData(prices))),
		(*C.uint64_t)(unsafe.Pointer(unsafe.SliceData(seqs))), C.uint64_t(nowNs),
		(*C.tg_price_result)(unsafe.Pointer(unsafe.SliceData(out))))
	p.leave()
	p.putScratch(s)
	p.rethrow()
	if rc != C.TG_OK {
		for i, k := range keys {
			if err := keyErr(fmt.Sprintf("keys[%d]", i), k); err != nil {
				return err
			}
			if !priceOK(prices[i]) {
				return invalid("prices[%d] = %v: a price must be finite and > 0", i, prices[i])
			}
		}
		return statusErr(rc, nil, "tg_price_cache_on_price_many refused the batch")
	}
	return nil
}

// Remove evicts an instrument (EvictRemoved) at nowNs; false if it was not
// cached. Errors: a key not 1..32 bytes, a nil or closed cache.
func (p *PriceCache) Remove(key []byte, nowNs uint64) (bool, error) {
	if err := p.enter(); err != nil {
		return false, err
	}
	r := C.tg_go_price_cache_remove(p.h, bytesPtr(key), C.size_t(len(key)), C.uint64_t(nowNs))
	p.leave()
	p.rethrow()
	if r.rc != C.TG_OK {
		if err := keyErr("key", key); err != nil {
			return false, err
		}
		return false, statusErr(r.rc, nil, "tg_price_cache_remove refused the call")
	}
	return r.n != 0, nil
}

// Expire evicts every entry older than MaxAgeNs at nowNs (EvictAge) and
// returns how many. It visits every slot: call it from the host's loop,
// not per order.
func (p *PriceCache) Expire(nowNs uint64) (int, error) {
	if err := p.enter(); err != nil {
		return 0, err
	}
	r := C.tg_go_price_cache_expire(p.h, C.uint64_t(nowNs))
	p.leave()
	p.rethrow()
	if r.rc != C.TG_OK {
		return 0, statusErr(r.rc, nil, "tg_price_cache_expire failed")
	}
	return int(r.n), nil
}

// Stats returns the cache's counters.
func (p *PriceCache) Stats() (PriceCacheStats, error) {
	if err := p.enter(); err != nil {
		return PriceCacheStats{}, err
	}
	var s C.tg_price_cache_stats
	rc := C.tg_price_cache_stats_get(p.h, &s)
	p.leave()
	if rc != C.TG_OK {
		return PriceCacheStats{}, statusErr(rc, nil, "tg_price_cache_stats_get failed")
	}
	return PriceCacheStats{
		Hits:               uint64(s.hits),
		Misses:             uint64(s.misses),
		StaleMisses:        uint64(s.stale_misses),
		Puts:               uint64(s.puts),
		Kept:               uint64(s.kept),
		Replays:            uint64(s.replays),
		NotCached:          uint64(s.not_cached),
		EvictedPriceMove:   uint64(s.evicted_price_move),
		EvictedSequenceGap: uint64(s.evicted_sequence_gap),
		EvictedAge:         uint64(s.evicted_age),
		EvictedCapacity:    uint64(s.evicted_capacity),
		EvictedRemoved:     uint64(s.evicted_removed),
		Entries:            uint64(s.entries),
		Slots:              uint64(s.slots),
	}, nil
}
