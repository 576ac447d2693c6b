// Package tollgate is the Go binding of tollgate, an embeddable pre-trade
// gateway library. It wraps the library's stable C ABI (tollgate/tollgate.h)
// with cgo and exposes its policies as Go types:
//
//   - [Limiter]: keyed GCRA rate limiting with tiers, a bounded key table,
//     shadow mode, a run-time rate multiplier and an optional parent limit.
//   - [Breaker]: a circuit breaker with a count- or time-based sliding window,
//     failure-rate and slow-call thresholds, half-open probes, forced states,
//     state-change events and a bulkhead bounding calls in flight.
//   - [RouteTable], [Router] and [VenueSet]: request routing on method,
//     host, path pattern and headers with a documented precedence and one
//     normal form of paths, atomic publication of new tables while
//     goroutines keep matching, and the choice of a venue (weighted,
//     least-latency or sticky, skipping venues whose [Breaker] rejects).
//   - [PriceCache]: market data cached per instrument until the price moves
//     beyond a threshold (basis points or ticks, optionally widened by
//     realised volatility), the feed skips a sequence number, the entry ages
//     out or its slot is needed; lock-free reads that never see a torn entry.
//   - [RiskChecker]: pre-trade risk checks (kill switches, duplicate client
//     order ids, maximum quantity and notional, a price collar around a
//     reference price from a [PriceCache], per-account order count and
//     notional per period), allocation-free and safe under concurrent use.
//   - [Authenticator]: HMAC-SHA256 request signatures with key rotation, a
//     clock-skew window, replay protection that fails closed, and instant
//     revocation; [SignRequest] and [SignHTTPRequest] on the client side.
//   - [Journal]: the compliance audit journal: hash-chained, signed,
//     append-only segment files; an allocation-free [Journal.Append] with
//     tickets that say when a record is written or durable; recording of
//     limiter and breaker decisions that [ReplayJournal] decides again;
//     [OpenJournalReader] and [VerifyJournal] to read and check a journal.
//
// # Time
//
// Every decision takes the current time as monotonic nanoseconds (nowNs) from
// the caller, so a host reuses the timestamp it already read and tests are
// exact. [NowNs] reads the same clock the library uses (CLOCK_MONOTONIC) for
// callers that have none at hand. Time that stands still or steps backwards
// never creates tokens and never reopens a breaker early. The exception is
// request authentication, whose times are wall-clock Unix nanoseconds
// (uint64(time.Now().UnixNano())), the clock clients stamp requests with.
//
// # Decisions and errors
//
// A rejection is a normal outcome, reported in a [Decision] or [Permit] with
// a reason and, where it applies, a retry-after. An error means the call
// itself was wrong (a bad argument, a closed object): it is an [*Error]
// carrying a [Status] code, so
//
//	if errors.Is(err, tollgate.ErrInvalid) { ... }
//
// works for every error this package returns.
//
// # Routing
//
// [NewRouteTable] compiles [Rule]s once (a [*BuildError] names a bad rule);
// [RouteTable.Match] and [Router.Match] return a [Match] whose Status says
// whether a rule matched or why not (no route, method not allowed, a path
// refused by normalisation), and whose Params are offsets into the request
// path. [Router.Publish] replaces the table atomically; [Router.Route]
// matches and picks a venue from the route's [VenueSet] in one call. The
// batch forms (MatchMany) cross cgo once per batch and do not allocate once
// warm.
//
// # Price cache
//
// [NewPriceCache] takes [PriceCacheOptions] (zero fields mean the library's
// defaults, see [DefaultPriceCacheOptions]). The host caches an instrument
// with [PriceCache.Put] (a key of 1..32 bytes, [IDKey] for numeric ids, and
// a payload copied in), reads it with [PriceCache.Get] (the payload copied
// into a caller's buffer, so a read allocates nothing) and feeds every tick
// to [PriceCache.OnPrice] or, one cgo call per batch,
// [PriceCache.OnPriceMany]; a [PriceResult] says whether the entry was kept,
// evicted (and why: an [EvictReason]), not cached or a replayed number.
// [PriceCache.SetEvictionCallback] observes every eviction, with the same
// rules as a breaker's event callback.
//
// # Risk checks
//
// [NewRiskChecker] takes [RiskOptions] (zero fields mean the library's
// defaults, see [DefaultRiskOptions]) and an optional [PriceCache] for
// reference prices. [RiskChecker.Check] decides one [RiskOrder] and
// [RiskChecker.CheckMany] a batch with one cgo call; a [RiskDecision] says
// whether the order may go, and if not the [RiskReason] with the limit hit
// and the order's value. A malformed order is a decision, not an error.
// [RiskChecker.Engage] and [RiskChecker.Release] set kill switches
// ([KillGlobal], [KillAccount], [KillInstrument]);
// [RiskChecker.SetKillCallback] sees every change.
//
// # Request authentication
//
// [NewAuthenticator] takes [AuthOptions] (zero fields mean the library's
// defaults, see [DefaultAuthOptions]). [Authenticator.Verify] checks an
// [AuthMessage] against its Authorization header at a wall-clock time and
// returns an [AuthResult] whose [AuthReason] says why a request failed;
// [Authenticator.VerifyHTTP] does the same for an *http.Request. Keys are
// added with validity intervals for rotation; [Authenticator.RevokeKey],
// [Authenticator.RevokeToken] and [Authenticator.ReplaceRevocations] hold
// for every verification that starts after they return.
// [Authenticator.SetEventCallback] sees every change. [SignRequest],
// [SignHTTPRequest] and [CanonicalRequest] are the client side;
// [AuthParams.Stamped] fills a fresh nonce and the current time.
//
// # Audit journal
//
// [OpenJournal] takes [JournalOptions] (a directory and an Ed25519
// signing seed; zero fields mean the library's defaults). [Journal.Append]
// returns a ticket; [Journal.IsWritten], [Journal.IsDurable] and
// [Journal.WaitDurable] say when its record is safe. In poll mode the host
// writes with [Journal.Poll]. A full ring is an error wrapping [ErrFull]
// or [ErrDropped] (per [RingFullPolicy]); an I/O error stops the journal
// ([ErrIO]). The Record* methods journal a [Limiter]'s or [Breaker]'s
// configuration and decisions as replay inputs.
//
// # Lifetime and concurrency
//
// Objects hold memory outside the Go heap. Call Close when done; a finalizer
// releases objects that were never closed. Close is idempotent, may race
// with other method calls (the memory goes when the last call returns), and
// every method of a closed or nil object returns an error wrapping
// [ErrInvalid] instead of crashing. All methods are safe for concurrent use.
//
// # Building
//
// The package finds the installed library with pkg-config (package name
// "tollgate"); see README.md for the install step and the test command.
package tollgate
