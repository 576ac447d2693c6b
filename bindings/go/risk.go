package tollgate

/*
#include <stdint.h>
#include <stdlib.h>
#include <tollgate/tollgate.h>

// tg_risk_order holds pointers, and cgo forbids passing Go memory that holds
// Go pointers. A single order's strings are therefore direct arguments
// (pointers to their bytes, not copied) and the wrapper builds the
// tg_risk_order on the C stack. A batch's strings are copied into one byte
// buffer described by offsets, and the wrapper builds the orders on the C
// stack, or in one malloc'd block for large batches. Neither check calls back
// into Go (only engage and release fire the kill callback), so the decision
// may point at the Go stack (#cgo noescape).

static inline const char* tg_go_risk_str(const uint8_t* p, size_t len) {
  return len == 0 ? NULL : (const char*)p;
}

static inline int tg_go_risk_check(tg_risk_checker* c, const uint8_t* account, size_t account_len,
                                   const uint8_t* instrument, size_t instrument_len,
                                   const uint8_t* id, size_t id_len, uint32_t side,
                                   double quantity, double limit_price, uint64_t now_ns,
                                   tg_risk_decision* out) {
  tg_risk_order o;
  o.account = tg_go_risk_str(account, account_len);
  o.account_len = account_len;
  o.instrument = tg_go_risk_str(instrument, instrument_len);
  o.instrument_len = instrument_len;
  o.client_order_id = tg_go_risk_str(id, id_len);
  o.client_order_id_len = id_len;
  o.side = side;
  o.reserved = 0;
  o.quantity = quantity;
  o.limit_price = limit_price;
  return tg_risk_check(c, &o, now_ns, out);
}

typedef struct tg_go_risk_order {
  uint32_t account_off, account_len, instrument_off, instrument_len, id_off, id_len;
  uint32_t side, reserved;
  double quantity, limit_price;
} tg_go_risk_order;

static int tg_go_risk_check_many(tg_risk_checker* c, const uint8_t* b, const tg_go_risk_order* g,
                                 size_t n, uint64_t now_ns, tg_risk_decision* out) {
  enum { stack_orders = 32 };
  tg_risk_order so[stack_orders];
  tg_risk_order* o = so;
  int rc;
  if (n > stack_orders) {
    if (n > SIZE_MAX / sizeof *o) return TG_ENOMEM;
    o = (tg_risk_order*)malloc(n * sizeof *o);
    if (o == NULL) return TG_ENOMEM;
  }
  for (size_t i = 0; i < n; ++i) {
    o[i].account = tg_go_risk_str(b + g[i].account_off, g[i].account_len);
    o[i].account_len = g[i].account_len;
    o[i].instrument = tg_go_risk_str(b + g[i].instrument_off, g[i].instrument_len);
    o[i].instrument_len = g[i].instrument_len;
    o[i].client_order_id = tg_go_risk_str(b + g[i].id_off, g[i].id_len);
    o[i].client_order_id_len = g[i].id_len;
    o[i].side = g[i].side;
    o[i].reserved = 0;
    o[i].quantity = g[i].quantity;
    o[i].limit_price = g[i].limit_price;
  }
  rc = tg_risk_check_many(c, o, n, now_ns, out);
  if (o != so) free(o);
  return rc;
}

// Engage and release may call the kill callback, which runs Go code, so
// they get no pointer to a Go stack variable: the error comes back by value.
typedef struct tg_go_risk_kill_result {
  int rc;
  tg_error err;
} tg_go_risk_kill_result;

static inline tg_go_risk_kill_result tg_go_risk_kill(tg_risk_checker* c, int engage, int scope,
                                                     const uint8_t* key, size_t key_len,
                                                     uint64_t now_ns) {
  tg_go_risk_kill_result r;
  r.err.code = TG_OK;
  r.err.message[0] = '\0';
  r.rc = engage ? tg_risk_kill_engage(c, scope, key, key_len, now_ns, &r.err)
                : tg_risk_kill_release(c, scope, key, key_len, now_ns, &r.err);
  return r;
}

static inline int tg_go_risk_kill_engaged(const tg_risk_checker* c, int scope, const uint8_t* key,
                                          size_t key_len, int* engaged) {
  return tg_risk_kill_engaged(c, scope, key, key_len, engaged);
}

#cgo noescape tg_risk_options_init
#cgo noescape tg_risk_checker_new
#cgo noescape tg_go_risk_check
#cgo noescape tg_go_risk_check_many
#cgo noescape tg_go_risk_kill_engaged
#cgo noescape tg_risk_stats_get
#cgo nocallback tg_risk_options_init
#cgo nocallback tg_risk_checker_new
#cgo nocallback tg_risk_checker_free
#cgo nocallback tg_risk_reason_name
#cgo nocallback tg_go_risk_check
#cgo nocallback tg_go_risk_check_many
#cgo nocallback tg_go_risk_kill_engaged
#cgo nocallback tg_risk_stats_get
*/
import "C"

import (
	"fmt"
	"math"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
)

// MaxRiskKeyLen is the longest account or instrument of a [RiskOrder], and
// the longest kill switch key; they are 1..MaxRiskKeyLen bytes.
const MaxRiskKeyLen = 32

// MaxClientOrderIDLen is the longest client order id of a [RiskOrder]; ids
// are 1..MaxClientOrderIDLen bytes.
const MaxClientOrderIDLen = 64

// CollarUnit is the unit of a [RiskChecker]'s price collar width.
type CollarUnit uint32

const (
	// CollarPercent: band = reference * width / 100.
	CollarPercent CollarUnit = 0
	// CollarBps: band = reference * width / 1e4.
	CollarBps CollarUnit = 1
	// CollarTicks: band = width * CollarTickSize.
	CollarTicks CollarUnit = 2
)

var (
	_ = [1]struct{}{}[int(CollarPercent)-C.TG_COLLAR_PERCENT]
	_ = [1]struct{}{}[int(CollarBps)-C.TG_COLLAR_BPS]
	_ = [1]struct{}{}[int(CollarTicks)-C.TG_COLLAR_TICKS]
)

// String returns a short lower-case name of the unit.
func (u CollarUnit) String() string {
	switch u {
	case CollarPercent:
		return "percent"
	case CollarBps:
		return "bps"
	case CollarTicks:
		return "ticks"
	}
	return "CollarUnit(" + strconv.FormatUint(uint64(u), 10) + ")"
}

// NoReferencePolicy says what a [RiskChecker] does with an order whose
// instrument has no fresh reference price.
type NoReferencePolicy uint32

const (
	// NoReferenceReject rejects it (RiskNoReferencePrice): never trade blind.
	// The default.
	NoReferenceReject NoReferencePolicy = 0
	// NoReferenceAllow skips the collar; a limit order's notional uses its
	// limit price, a market order's notional is unknown (NaN) and checked by
	// no notional limit.
	NoReferenceAllow NoReferencePolicy = 1
)

var (
	_ = [1]struct{}{}[int(NoReferenceReject)-C.TG_NO_REFERENCE_REJECT]
	_ = [1]struct{}{}[int(NoReferenceAllow)-C.TG_NO_REFERENCE_ALLOW]
)

// String returns a short lower-case name of the policy.
func (p NoReferencePolicy) String() string {
	switch p {
	case NoReferenceReject:
		return "reject"
	case NoReferenceAllow:
		return "allow"
	}
	return "NoReferencePolicy(" + strconv.FormatUint(uint64(p), 10) + ")"
}

// Side is an order's side. No check depends on it (the collar is
// symmetric), but a value other than SideBuy or SideSell is an error.
type Side uint32

const (
	// SideBuy: a buy order.
	SideBuy Side = 0
	// SideSell: a sell order.
	SideSell Side = 1
)

var (
	_ = [1]struct{}{}[int(SideBuy)-C.TG_SIDE_BUY]
	_ = [1]struct{}{}[int(SideSell)-C.TG_SIDE_SELL]
)

// String returns "buy" or "sell".
func (s Side) String() string {
	switch s {
	case SideBuy:
		return "buy"
	case SideSell:
		return "sell"
	}
	return "Side(" + strconv.FormatUint(uint64(s), 10) + ")"
}

// RiskReason says why a [RiskChecker] rejected an order (append-only, as
// the C ABI's TG_RISK_* codes).
type RiskReason int32

const (
	// RiskNone: the order was accepted.
	RiskNone RiskReason = 0
	// RiskKillSwitchGlobal, RiskKillSwitchAccount, RiskKillSwitchInstrument:
	// a kill switch is engaged (checked first, in this order).
	RiskKillSwitchGlobal     RiskReason = 1
	RiskKillSwitchAccount    RiskReason = 2
	RiskKillSwitchInstrument RiskReason = 3
	// RiskInvalidQuantity: the quantity is not finite or is <= 0.
	RiskInvalidQuantity RiskReason = 4
	// RiskInvalidPrice: the limit price is neither NaN (a market order) nor
	// finite and > 0.
	RiskInvalidPrice RiskReason = 5
	// RiskInvalidAccount, RiskInvalidInstrument, RiskInvalidClientOrderID: a
	// field is empty or too long (Limit is the longest allowed, Observed the
	// length).
	RiskInvalidAccount       RiskReason = 6
	RiskInvalidInstrument    RiskReason = 7
	RiskInvalidClientOrderID RiskReason = 8
	// RiskDuplicateOrder: the account had an order with this client order
	// id accepted less than DuplicateWindowNs ago (Observed is its age).
	RiskDuplicateOrder RiskReason = 9
	// RiskMaxQuantity: quantity above MaxQuantity.
	RiskMaxQuantity RiskReason = 10
	// RiskNoReferencePrice: no fresh reference price and NoReferenceReject.
	RiskNoReferencePrice RiskReason = 11
	// RiskPriceCollar: the limit price lies outside reference +/- band
	// (Limit is the edge crossed).
	RiskPriceCollar RiskReason = 12
	// RiskMaxNotional: quantity * price above MaxNotional.
	RiskMaxNotional RiskReason = 13
	// RiskAccountNotional: the account's notional this period, this order
	// included, above AccountMaxNotional (Observed is that sum).
	RiskAccountNotional RiskReason = 14
	// RiskAccountOrderCount: the account's orders this period, this one
	// included, above AccountMaxOrders.
	RiskAccountOrderCount RiskReason = 15
	// RiskAccountCapacity: AccountCapacity accounts already hold state for
	// this period; the checker fails closed.
	RiskAccountCapacity RiskReason = 16
	// RiskDuplicateCapacity: DuplicateCapacity ids are still inside their
	// window; the checker fails closed.
	RiskDuplicateCapacity RiskReason = 17
)

var (
	_ = [1]struct{}{}[int(RiskNone)-C.TG_RISK_NONE]
	_ = [1]struct{}{}[int(RiskKillSwitchGlobal)-C.TG_RISK_KILL_SWITCH_GLOBAL]
	_ = [1]struct{}{}[int(RiskKillSwitchAccount)-C.TG_RISK_KILL_SWITCH_ACCOUNT]
	_ = [1]struct{}{}[int(RiskKillSwitchInstrument)-C.TG_RISK_KILL_SWITCH_INSTRUMENT]
	_ = [1]struct{}{}[int(RiskInvalidQuantity)-C.TG_RISK_INVALID_QUANTITY]
	_ = [1]struct{}{}[int(RiskInvalidPrice)-C.TG_RISK_INVALID_PRICE]
	_ = [1]struct{}{}[int(RiskInvalidAccount)-C.TG_RISK_INVALID_ACCOUNT]
	_ = [1]struct{}{}[int(RiskInvalidInstrument)-C.TG_RISK_INVALID_INSTRUMENT]
	_ = [1]struct{}{}[int(RiskInvalidClientOrderID)-C.TG_RISK_INVALID_CLIENT_ORDER_ID]
	_ = [1]struct{}{}[int(RiskDuplicateOrder)-C.TG_RISK_DUPLICATE_ORDER]
	_ = [1]struct{}{}[int(RiskMaxQuantity)-C.TG_RISK_MAX_QUANTITY]
	_ = [1]struct{}{}[int(RiskNoReferencePrice)-C.TG_RISK_NO_REFERENCE_PRICE]
	_ = [1]struct{}{}[int(RiskPriceCollar)-C.TG_RISK_PRICE_COLLAR]
	_ = [1]struct{}{}[int(RiskMaxNotional)-C.TG_RISK_MAX_NOTIONAL]
	_ = [1]struct{}{}[int(RiskAccountNotional)-C.TG_RISK_ACCOUNT_NOTIONAL]
	_ = [1]struct{}{}[int(RiskAccountOrderCount)-C.TG_RISK_ACCOUNT_ORDER_COUNT]
	_ = [1]struct{}{}[int(RiskAccountCapacity)-C.TG_RISK_ACCOUNT_CAPACITY]
	_ = [1]struct{}{}[int(RiskDuplicateCapacity)-C.TG_RISK_DUPLICATE_CAPACITY]
	// RiskStats.Decisions has one counter per slot of the C array.
	_ = [1]struct{}{}[len(RiskStats{}.Decisions)-len(C.tg_risk_stats{}.decisions)]
)

// String returns the library's lower-case name of the reason, such as
// "price_collar", or "RiskReason(n)" for one the loaded library does not
// know.
func (r RiskReason) String() string {
	name := C.GoString(C.tg_risk_reason_name(C.int(r)))
	if name == "unknown" {
		return "RiskReason(" + strconv.Itoa(int(r)) + ")"
	}
	return name
}

// KillScope selects a kill switch: the global one, an account's or an
// instrument's.
type KillScope int32

const (
	// KillGlobal: every order (its key is ignored).
	KillGlobal KillScope = 0
	// KillAccount: the orders of one account (the key).
	KillAccount KillScope = 1
	// KillInstrument: the orders for one instrument (the key).
	KillInstrument KillScope = 2
)

var (
	_ = [1]struct{}{}[int(KillGlobal)-C.TG_KILL_GLOBAL]
	_ = [1]struct{}{}[int(KillAccount)-C.TG_KILL_ACCOUNT]
	_ = [1]struct{}{}[int(KillInstrument)-C.TG_KILL_INSTRUMENT]
)

// String returns a short lower-case name of the scope.
func (s KillScope) String() string {
	switch s {
	case KillGlobal:
		return "global"
	case KillAccount:
		return "account"
	case KillInstrument:
		return "instrument"
	}
	return "KillScope(" + strconv.Itoa(int(s)) + ")"
}

// RiskOptions configures [NewRiskChecker]; it mirrors tg_risk_options. The
// zero value of a field means the library's default, which
// [DefaultRiskOptions] shows. Two defaults have no zero spelling in C and
// get a flag here: NoDuplicateCheck turns the duplicate check off; and a
// zero CollarWidth is no collar (a band of width 0, which only a limit
// price exactly at the reference passes, cannot be asked for).
//
// An infinite limit is off; the limits are off by default except the ones
// that bound memory (AccountCapacity, DuplicateCapacity,
// KillSwitchCapacity), the duplicate window (60 s) and the reference price
// policy (reject orders without one).
type RiskOptions struct {
	// OnNoReference: NoReferenceReject (default) or NoReferenceAllow.
	OnNoReference NoReferencePolicy
	// MaxReferenceAgeNs bounds a reference price's age on top of the price
	// cache's MaxAgeNs. 0: the cache's alone.
	MaxReferenceAgeNs uint64
	// MaxQuantity per order, > 0. 0: +Inf.
	MaxQuantity float64
	// MaxNotional per order (quantity * limit price, or the reference for
	// a market order), > 0. 0: +Inf.
	MaxNotional float64
	// CollarUnit of CollarWidth: CollarPercent (default), CollarBps or
	// CollarTicks.
	CollarUnit CollarUnit
	// CollarWidth of the price collar around the reference price, >= 0.
	// 0: +Inf, no collar.
	CollarWidth float64
	// CollarTickSize for CollarTicks, finite and > 0. 0: 0.01.
	CollarTickSize float64
	// PeriodNs is the length of the fixed windows [k*PeriodNs,
	// (k+1)*PeriodNs) the account limits count over. 0: 1 s.
	PeriodNs uint64
	// AccountMaxNotional per account per period, > 0. 0: +Inf.
	AccountMaxNotional float64
	// AccountMaxOrders per account per period, >= 1. 0: no limit
	// (math.MaxUint64).
	AccountMaxOrders uint64
	// AccountCapacity is the number of accounts holding period state,
	// 1..2^24. 0: 4096.
	AccountCapacity uint64
	// DuplicateWindowNs is how long an accepted client order id stays a
	// duplicate. 0: 60 s (see NoDuplicateCheck).
	DuplicateWindowNs uint64
	// NoDuplicateCheck turns the duplicate check off (DuplicateWindowNs is
	// then ignored).
	NoDuplicateCheck bool
	// DuplicateCapacity is the number of ids inside their window the checker
	// remembers, 1..2^26. 0: 65536.
	DuplicateCapacity uint64
	// KillSwitchCapacity is the number of keys per kill switch scope,
	// 1..2^20. 0: 1024.
	KillSwitchCapacity uint64
	// Seed keys the hashing of accounts, ids and kill switch keys. 0 keeps
	// the library's default.
	Seed uint64
}

// DefaultRiskOptions returns the library's defaults, every field set (Seed
// 0 stands for the library's default seed).
func DefaultRiskOptions() RiskOptions {
	var c C.tg_risk_options
	C.tg_risk_options_init(&c)
	return RiskOptions{
		OnNoReference:      NoReferencePolicy(c.on_no_reference),
		MaxReferenceAgeNs:  uint64(c.max_reference_age_ns),
		MaxQuantity:        float64(c.max_quantity),
		MaxNotional:        float64(c.max_notional),
		CollarUnit:         CollarUnit(c.collar_unit),
		CollarWidth:        float64(c.collar_width),
		CollarTickSize:     float64(c.collar_tick_size),
		PeriodNs:           uint64(c.period_ns),
		AccountMaxNotional: float64(c.account_max_notional),
		AccountMaxOrders:   uint64(c.account_max_orders),
		AccountCapacity:    uint64(c.account_capacity),
		DuplicateWindowNs:  uint64(c.duplicate_window_ns),
		NoDuplicateCheck:   c.duplicate_window_ns == 0,
		DuplicateCapacity:  uint64(c.duplicate_capacity),
		KillSwitchCapacity: uint64(c.kill_switch_capacity),
		Seed:               uint64(c.seed),
	}
}

// RiskOrder is an order to decide. Nothing is copied or kept by Check.
type RiskOrder struct {
	// Account is 1..32 bytes.
	Account string
	// Instrument is 1..32 bytes: the price cache's key for it.
	Instrument string
	// ClientOrderID is 1..64 bytes; the duplicate check is per account.
	ClientOrderID string
	// Side is SideBuy or SideSell.
	Side Side
	// Quantity is finite and > 0.
	Quantity float64
	// LimitPrice is finite and > 0, or math.NaN() for a market order. (So a
	// forgotten price, 0, is rejected as RiskInvalidPrice.)
	LimitPrice float64
}

// RiskDecision is a RiskChecker's verdict on one order. A field that does
// not apply is NaN.
type RiskDecision struct {
	// Allowed is true when the order may go to the market.
	Allowed bool
	// Reason is RiskNone when allowed, else the first check that failed.
	Reason RiskReason
	// Limit is the configured limit that was hit.
	Limit float64
	// Observed is the order's value that hit it; when allowed, the order's
	// notional (NaN when unknown: a market order without a reference).
	Observed float64
	// Reference is the reference price used, when one was found.
	Reference float64
}

func (o *RiskDecision) setFrom(d *C.tg_risk_decision) {
	o.Allowed = d.allowed != 0
	o.Reason = RiskReason(d.reason)
	o.Limit = float64(d.limit)
	o.Observed = float64(d.observed)
	o.Reference = float64(d.reference)
}

// KillSwitchEvent is a kill switch change, passed to the SetKillCallback
// callback.
type KillSwitchEvent struct {
	// Scope is the switch's scope.
	Scope KillScope
	// Engaged is true when the switch was engaged, false when released.
	Engaged bool
	// Key is the account or instrument; empty for the global switch.
	Key string
	// NowNs is the nowNs of the Engage or Release call.
	NowNs uint64
}

// RiskStats are a RiskChecker's counters since creation, read one by one
// (not one atomic snapshot).
type RiskStats struct {
	// Checked counts decisions; Checked = Allowed + Rejected.
	Checked, Allowed, Rejected uint64
	// Decisions counts decisions by reason: Decisions[RiskPriceCollar] is
	// the number of orders rejected by the collar, Decisions[RiskNone] the
	// number accepted. Slots of reasons that do not exist are 0.
	Decisions [32]uint64
	// Accounts holding period state (some may be of ended periods).
	Accounts uint64
	// DuplicateIDs is the number of client order ids remembered (some may
	// have left their window).
	DuplicateIDs uint64
	// KilledAccounts and KilledInstruments count engaged switches.
	KilledAccounts, KilledInstruments uint64
	// GlobalKill says whether the global switch is engaged.
	GlobalKill bool
}

// RiskChecker decides whether orders may go to the market (SEC Rule
// 15c3-5, MiFID II RTS 6 Art. 15): kill switches, malformed orders,
// duplicate client order ids, maximum quantity, a price collar around a
// reference price from a [PriceCache], maximum notional, and per-account
// order count and notional per period. Check allocates nothing and takes no
// lock except a short per-account spin lock; all methods are safe for
// concurrent use, and two orders of one account can never both pass a
// limit only one of them fits under. Create one with [NewRiskChecker] and
// release it with Close.
type RiskChecker struct {
	g       guard
	h       *C.tg_risk_checker
	sink    atomic.Pointer[killSink]
	scratch atomic.Pointer[riskScratch]
	mu      sync.Mutex // serialises SetKillCallback
}

// NewRiskChecker creates a checker. prices, when not nil, supplies the
// reference prices (an order's Instrument is the cache's key); nil means no
// instrument ever has one, and OnNoReference decides. The checker holds its
// own reference to the cache's memory, so prices may be closed (or
// finalized) first: the checker then keeps reading the entries the cache
// held, until they age out. Invalid options give an error wrapping
// ErrInvalid, ErrRange or ErrVersion with the library's explanation; a
// closed prices gives ErrClosed.
func NewRiskChecker(o RiskOptions, prices *PriceCache) (*RiskChecker, error) {
	if err := CheckVersion(); err != nil {
		return nil, err
	}
	var c C.tg_risk_options
	C.tg_risk_options_init(&c)
	c.on_no_reference = C.uint32_t(o.OnNoReference)
	c.max_reference_age_ns = C.uint64_t(o.MaxReferenceAgeNs)
	if o.MaxQuantity != 0 {
		c.max_quantity = C.double(o.MaxQuantity)
	}
	if o.MaxNotional != 0 {
		c.max_notional = C.double(o.MaxNotional)
	}
	c.collar_unit = C.uint32_t(o.CollarUnit)
	if o.CollarWidth != 0 {
		c.collar_width = C.double(o.CollarWidth)
	}
	if o.CollarTickSize != 0 {
		c.collar_tick_size = C.double(o.CollarTickSize)
	}
	if o.PeriodNs != 0 {
		c.period_ns = C.uint64_t(o.PeriodNs)
	}
	if o.AccountMaxNotional != 0 {
		c.account_max_notional = C.double(o.AccountMaxNotional)
	}
	if o.AccountMaxOrders != 0 {
		c.account_max_orders = C.uint64_t(o.AccountMaxOrders)
	}
	if o.AccountCapacity != 0 {
		c.account_capacity = C.uint64_t(o.AccountCapacity)
	}
	switch {
	case o.NoDuplicateCheck:
		c.duplicate_window_ns = 0
	case o.DuplicateWindowNs != 0:
		c.duplicate_window_ns = C.uint64_t(o.DuplicateWindowNs)
	}
	if o.DuplicateCapacity != 0 {
		c.duplicate_capacity = C.uint64_t(o.DuplicateCapacity)
	}
	if o.KillSwitchCapacity != 0 {
		c.kill_switch_capacity = C.uint64_t(o.KillSwitchCapacity)
	}
	c.seed = C.uint64_t(o.Seed)

	var ph *C.tg_price_cache
	if prices != nil {
		// Holding the cache's guard keeps its handle alive until the library
		// has taken its own reference.
		if err := prices.enter(); err != nil {
			return nil, err
		}
		ph = prices.h
	}
	var cerr C.tg_error
	var h *C.tg_risk_checker
	rc := C.tg_risk_checker_new(&c, ph, &h, &cerr)
	if prices != nil {
		prices.leave()
	}
	if rc != C.TG_OK {
		return nil, statusErr(rc, &cerr, "tg_risk_checker_new failed")
	}
	r := &RiskChecker{h: h}
	runtime.SetFinalizer(r, (*RiskChecker).Close)
	return r, nil
}

// Close releases the checker (and with it its reference to the price
// cache). It is idempotent and safe to call while other goroutines (or the
// kill callback) use the checker: their calls finish, later calls return
// ErrClosed, and the memory goes when the last call returns.
func (r *RiskChecker) Close() error {
	if r == nil {
		return nil
	}
	if r.g.close() {
		r.free()
	}
	runtime.SetFinalizer(r, nil)
	return nil
}

func (r *RiskChecker) free() {
	C.tg_risk_checker_free(r.h)
	if s := r.sink.Load(); s != nil {
		s.handle.Delete()
	}
	handlesFreed.Add(1)
}

func (r *RiskChecker) enter() error {
	if r == nil {
		return errNil
	}
	if !r.g.enter() {
		r.leave()
		return ErrClosed
	}
	return nil
}

func (r *RiskChecker) leave() {
	if r.g.leave() {
		r.free()
	}
}

// rethrow re-raises, in the goroutine whose call caused it, a panic of the
// kill callback; it was recovered before unwinding through C frames.
func (r *RiskChecker) rethrow() {
	if s := r.sink.Load(); s != nil {
		if v := s.pending.Swap(nil); v != nil {
			panic(v.v)
		}
	}
}

func sideErr(what string, s Side) error {
	return invalid("%s = %d: want SideBuy or SideSell", what, uint32(s))
}

// Check decides one order at nowNs. A rejection, including a malformed
// order (an empty or too long field, a quantity <= 0, a limit price of 0),
// is a RiskDecision with a Reason, not an error; an accepted order counts
// toward its account's period and is remembered as a duplicate. Errors:
// an unknown Side (nothing is counted), a nil or closed checker. The
// strings are passed to the library without copying; Check does not
// allocate.
func (r *RiskChecker) Check(o RiskOrder, nowNs uint64) (RiskDecision, error) {
	if err := r.enter(); err != nil {
		return RiskDecision{}, err
	}
	var d C.tg_risk_decision
	rc := C.tg_go_risk_check(r.h, stringPtr(o.Account), C.size_t(len(o.Account)),
		stringPtr(o.Instrument), C.size_t(len(o.Instrument)),
		stringPtr(o.ClientOrderID), C.size_t(len(o.ClientOrderID)),
		C.uint32_t(o.Side), C.double(o.Quantity), C.double(o.LimitPrice), C.uint64_t(nowNs), &d)
	r.leave()
	if rc != C.TG_OK {
		if o.Side != SideBuy && o.Side != SideSell {
			return RiskDecision{}, sideErr("order side", o.Side)
		}
		return RiskDecision{}, statusErr(rc, nil, "tg_risk_check refused the order")
	}
	var out RiskDecision
	out.setFrom(&d)
	return out, nil
}

// riskScratch holds the buffers of one batch: the packed strings, the
// orders as offsets into them and the decisions in the library's layout.
// None holds a Go pointer, so all may be passed to C.
type riskScratch struct {
	bytes  []byte
	orders []C.tg_go_risk_order
	decs   []C.tg_risk_decision
}

var riskScratchPool = sync.Pool{New: func() any { return new(riskScratch) }}

func (r *RiskChecker) getScratch() *riskScratch {
	if s := r.scratch.Swap(nil); s != nil {
		return s
	}
	return riskScratchPool.Get().(*riskScratch)
}

func (r *RiskChecker) putScratch(s *riskScratch) {
	if cap(s.bytes) > maxCachedScratch || cap(s.orders) > maxCachedScratch/64 {
		return
	}
	if !r.scratch.CompareAndSwap(nil, s) {
		riskScratchPool.Put(s)
	}
}

// CheckMany decides len(orders) orders at one nowNs with one call into the
// library; decision i goes to out[i], so out must have at least
// len(orders) entries. The orders are decided in order, each seeing the
// ones before it accepted, so the result equals len(orders) calls of Check.
// Arguments are validated first: on error no order was decided and out is
// unchanged. The strings are copied into a reused buffer, so a warm call
// does not allocate.
func (r *RiskChecker) CheckMany(orders []RiskOrder, nowNs uint64, out []RiskDecision) error {
	if err := r.enter(); err != nil {
		return err
	}
	n := len(orders)
	if len(out) < n {
		r.leave()
		return invalid("len(out) = %d, want at least len(orders) = %d", len(out), n)
	}
	if n == 0 {
		r.leave()
		return nil
	}
	total := 0
	for i := range orders {
		o := &orders[i]
		total += len(o.Account) + len(o.Instrument) + len(o.ClientOrderID)
	}
	if uint64(total) > math.MaxUint32 {
		r.leave()
		return &Error{Status: ErrRange, Message: "the strings of one batch must total less than 4 GiB"}
	}
	s := r.getScratch()
	if cap(s.bytes) < total {
		s.bytes = make([]byte, 0, total)
	}
	if cap(s.orders) < n {
		s.orders = make([]C.tg_go_risk_order, n)
	}
	if cap(s.decs) < n {
		s.decs = make([]C.tg_risk_decision, n)
	}
	b := s.bytes[:0]
	gs := s.orders[:n]
	for i := range orders {
		o := &orders[i]
		g := &gs[i]
		g.account_off, g.account_len = C.uint32_t(len(b)), C.uint32_t(len(o.Account))
		b = append(b, o.Account...)
		g.instrument_off, g.instrument_len = C.uint32_t(len(b)), C.uint32_t(len(o.Instrument))
		b = append(b, o.Instrument...)
		g.id_off, g.id_len = C.uint32_t(len(b)), C.uint32_t(len(o.ClientOrderID))
		b = append(b, o.ClientOrderID...)
		g.side = C.uint32_t(o.Side)
		g.reserved = 0
		g.quantity = C.double(o.Quantity)
		g.limit_price = C.double(o.LimitPrice)
	}
	s.bytes = b
	decs := s.decs[:n]
	rc := C.tg_go_risk_check_many(r.h, bytesPtrOr(b), &gs[0], C.size_t(n), C.uint64_t(nowNs), &decs[0])
	r.leave()
	if rc == C.TG_OK {
		out = out[:n]
		for i := range out {
			out[i].setFrom(&decs[i])
		}
	}
	r.putScratch(s)
	if rc != C.TG_OK {
		for i := range orders {
			if sd := orders[i].Side; sd != SideBuy && sd != SideSell {
				return sideErr(fmt.Sprintf("orders[%d].Side", i), sd)
			}
		}
		return statusErr(rc, nil, "tg_risk_check_many refused the batch")
	}
	return nil
}

// killKeyErr explains a kill switch call the library refused, or returns
// nil if its scope and key are fine.
func killKeyErr(scope KillScope, key string) error {
	switch scope {
	case KillGlobal:
		return nil
	case KillAccount, KillInstrument:
		if len(key) == 0 || len(key) > MaxRiskKeyLen {
			return invalid("%s kill switch key of %d bytes: a key is 1..%d bytes", scope, len(key), MaxRiskKeyLen)
		}
		return nil
	}
	return invalid("kill switch scope %d: want KillGlobal, KillAccount or KillInstrument", int32(scope))
}

func (r *RiskChecker) setKill(engage bool, scope KillScope, key string, nowNs uint64) error {
	if err := r.enter(); err != nil {
		return err
	}
	on := C.int(0)
	if engage {
		on = 1
	}
	k, n := stringPtr(key), len(key)
	if scope == KillGlobal {
		k, n = nil, 0 // the library ignores the global switch's key
	}
	res := C.tg_go_risk_kill(r.h, on, C.int(scope), k, C.size_t(n), C.uint64_t(nowNs))
	r.leave()
	r.rethrow()
	if res.rc != C.TG_OK {
		cerr := res.err // a copy, so that only a failure moves it to the heap
		what := "tg_risk_kill_release failed"
		if engage {
			what = "tg_risk_kill_engage failed"
		}
		return statusErr(res.rc, &cerr, what)
	}
	return nil
}

// Engage engages a kill switch: KillGlobal (key ignored), or an account's
// or instrument's (key 1..32 bytes) at nowNs. It is latched until
// released, effective for every check that starts after Engage returns, on
// any goroutine, and idempotent (engaging an engaged switch is no change
// and no event). The kill callback, if any, sees the change before Engage
// returns. Errors: ErrInvalid for an unknown scope or a bad key; ErrNoMem
// when the scope already holds KillSwitchCapacity keys (nothing was
// engaged); ErrState when called from the kill callback of this checker; a
// nil or closed checker.
func (r *RiskChecker) Engage(scope KillScope, key string, nowNs uint64) error {
	return r.setKill(true, scope, key, nowNs)
}

// Release releases a kill switch; releasing one not engaged is no change
// and no event. Errors as Engage's, except ErrNoMem.
func (r *RiskChecker) Release(scope KillScope, key string, nowNs uint64) error {
	return r.setKill(false, scope, key, nowNs)
}

// Engaged says whether a kill switch is engaged. Lock-free. Errors: an
// unknown scope, a bad key (KillGlobal ignores it), a nil or closed
// checker.
func (r *RiskChecker) Engaged(scope KillScope, key string) (bool, error) {
	if err := r.enter(); err != nil {
		return false, err
	}
	var on C.int
	rc := C.tg_go_risk_kill_engaged(r.h, C.int(scope), stringPtr(key), C.size_t(len(key)), &on)
	r.leave()
	if rc != C.TG_OK {
		if err := killKeyErr(scope, key); err != nil {
			return false, err
		}
		return false, statusErr(rc, nil, "tg_risk_kill_engaged refused the call")
	}
	return on != 0, nil
}

// Stats returns the checker's counters.
func (r *RiskChecker) Stats() (RiskStats, error) {
	if err := r.enter(); err != nil {
		return RiskStats{}, err
	}
	var s C.tg_risk_stats
	rc := C.tg_risk_stats_get(r.h, &s)
	r.leave()
	if rc != C.TG_OK {
		return RiskStats{}, statusErr(rc, nil, "tg_risk_stats_get failed")
	}
	out := RiskStats{
		Checked:           uint64(s.checked),
		Allowed:           uint64(s.allowed),
		Rejected:          uint64(s.rejected),
		Accounts:          uint64(s.accounts),
		DuplicateIDs:      uint64(s.duplicate_ids),
		KilledAccounts:    uint64(s.killed_accounts),
		KilledInstruments: uint64(s.killed_instruments),
		GlobalKill:        s.global_kill != 0,
	}
	for i := range out.Decisions {
		out.Decisions[i] = uint64(s.decisions[i])
	}
	return out, nil
}
