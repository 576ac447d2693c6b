#!/usr/bin/env python3
"""Side-by-side benchmark of the tollgate Python binding against pure-Python peers.

Rate limiting: tollgate's ``Limiter.acquire`` (one call per decision) and
``Limiter.acquire_many`` (one call per batch of 1000) against the ``limits``
library with ``MemoryStorage``. ``limits`` has no token bucket; its
``MovingWindowRateLimiter`` is the closest (it bounds the hits in every
sliding window, so like a bucket it never admits a double burst at a window
edge); ``FixedWindowRateLimiter`` is reported too as the cheapest strategy.

Circuit breaking: tollgate's ``Breaker.acquire`` + ``record`` (single, and
``acquire_many`` + ``record_many`` per batch of 1000), and the
``with breaker.call():`` form, against ``pybreaker.CircuitBreaker.call`` on a
no-op function, in the closed state (the common case).

Routing: tollgate's ``RouteTable.match`` (one call per path) and
``RouteTable.match_many`` (one call per batch of 1000) against Werkzeug's URL
routing (``werkzeug.routing.Map`` bound to a ``MapAdapter``, whose ``match``
is called per path). The table is the 200 generated API routes of the C++
benchmarks (``benchmarks/route_workload.hpp``: 20 resources x 10 shapes, all
GET; ``{name}`` becomes Werkzeug's ``<name>``), and the paths are one concrete
path per rule, repeated and shuffled, split into static and parametric paths.
Before anything is timed, both sides must route every concrete path to the
same rule with the same parameters; a shape that Werkzeug routes differently
would be dropped from both tables (and named in the output).

Price cache: tollgate's ``PriceCache.get`` of a cached instrument,
``PriceCache.on_price`` of an in-threshold tick (one call per tick) and
``PriceCache.on_price_many`` (one call per batch of 1000 ticks) against
``cachetools.TTLCache`` doing the nearest equivalent work in Python: a
lookup (``cache[key]``); for a tick, the same lookup, ``|p - cached|`` in bps
compared with the entry's threshold, and ``del cache[key]`` when beyond.
1000 instruments with a 32-byte payload, every tick 5 bps away from the
cached price against a 10 bps threshold, so both sides keep every entry
(checked); tollgate also checks and advances the feed sequence of each
entry, which the TTLCache side does not do.

Risk checks: tollgate's ``RiskChecker.check`` (one call per order) and
``RiskChecker.check_many`` (one call per batch of 1000 orders), with every
rule switched on: a price collar against a ``PriceCache`` holding 1000
instruments, max quantity and notional, per-account order count and
notional over 10,000 accounts, and duplicate client order ids (every id is
new, every order passes; checked). There is no pure-Python peer that does
this work, so these rows report tollgate's own cost per order only.

Request authentication: tollgate's ``Authenticator.verify`` of a signed
request whose canonical form is 256 bytes (POST with a JSON body, three
signed headers), every request with a fresh nonce, and ``sign_request`` of
the same request. The peer is the nearest pure-Python equivalent, the
standard library's ``hmac`` over the same canonical string: ``hmac.digest``
(one-shot, OpenSSL) of the 256 bytes, then ``hmac.compare_digest`` with the
expected hex signature to verify, or formatting the header to sign. The
peer gets the canonical string ready-made: it does not parse the header,
check the timestamp, look the key up, canonicalise the request, hash the
body or remember the nonce, all of which tollgate does: the peer's figure
is a floor for what a pure-Python verifier would cost.

Method (see shared BENCHMARKING.md): every case runs in the same process on
the same workload (10,000 keys visited round-robin, limits high enough that
nothing is rejected, so both sides do the admit path); each pair is measured
alternately A B A B ... for several rounds, and the table reports the median
of each side and the median of the per-round ratios (peer / tollgate). The
peers read the clock themselves, so the main tollgate rows read it too
(``tg_now_ns`` per call, or once per batch); rows marked "injected now" pass
a timestamp read once per 1000 decisions, as a host that already has one
would. For routing, a "decision" is one match: both sides check every
match against the expected route, and the routing table reports ns per match.

Usage:
    python benchmarks/python/bench_compare.py            # full run
    python benchmarks/python/bench_compare.py --quick    # a few iterations, smoke test

The price cache rows need ``cachetools`` (bindings/python/requirements-test.txt);
without it they are skipped, with a note.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import gc
import hmac
import importlib.util
import platform
import random
import statistics
import sys
import time
from dataclasses import dataclass, field
from importlib import metadata
from typing import Callable, Dict, List, Optional, Tuple

import tollgate
from tollgate import (
    Authenticator,
    Breaker,
    Limiter,
    Outcome,
    PriceCache,
    PriceOutcome,
    RiskChecker,
    RouteTable,
    Rule,
    Tier,
    canonical_request,
    sign_request,
)

BATCH = 1000
N_KEYS = 10_000
RATE = 1000.0  # per key per second: far above what the workload asks of a key
_perf = time.perf_counter_ns

# A case: given a number of decisions, run them and return elapsed ns.
Runner = Callable[[int], int]


def _keys() -> List[bytes]:
    return [b"acct-%06d" % i for i in range(N_KEYS)]


def _chunks(n: int) -> int:
    return max(1, n // BATCH)


# -- tollgate limiter ---------------------------------------------------------


def tg_limiter() -> Limiter:
    # 16x the keys: a new key is rejected when all 8 of its candidate slots
    # hold live buckets (no idle one to evict), which at 4x happened to about
    # 1 fresh limiter in 75 and failed the all-admit workload check.
    return Limiter(Tier("default", RATE, int(RATE)), capacity=16 * N_KEYS)


def tg_single_clock() -> Runner:
    lim, keys = tg_limiter(), _keys()

    def run(n: int) -> int:
        acquire = lim.acquire
        admitted = 0
        start = _perf()
        for c in range(_chunks(n)):
            base = (c * BATCH) % N_KEYS
            for key in keys[base : base + BATCH]:
                admitted += acquire(key).allowed
        elapsed = _perf() - start
        assert admitted == _chunks(n) * BATCH, "tollgate rejected: the workload is not comparable"
        return elapsed

    return run


def tg_single_injected() -> Runner:
    lim, keys = tg_limiter(), _keys()

    def run(n: int) -> int:
        acquire = lim.acquire
        now_ns = tollgate.now_ns
        admitted = 0
        start = _perf()
        for c in range(_chunks(n)):
            base = (c * BATCH) % N_KEYS
            now = now_ns()
            for key in keys[base : base + BATCH]:
                admitted += acquire(key, 1, 0, now).allowed
        elapsed = _perf() - start
        assert admitted == _chunks(n) * BATCH
        return elapsed

    return run


def tg_batch() -> Runner:
    lim, keys = tg_limiter(), _keys()
    batches = [keys[i : i + BATCH] for i in range(0, N_KEYS, BATCH)]

    def run(n: int) -> int:
        acquire_many = lim.acquire_many
        admitted = 0
        start = _perf()
        for c in range(_chunks(n)):
            # Keys packed on every call (b"".join + offsets), one clock read per
            # batch, and the allowed flags read back: the whole cost per decision.
            admitted += acquire_many(batches[c % len(batches)]).allowed.count(1)
        elapsed = _perf() - start
        assert admitted == _chunks(n) * BATCH
        return elapsed

    return run


def tg_batch_fixed_width() -> Runner:
    lim, keys = tg_limiter(), _keys()
    batches = [keys[i : i + BATCH] for i in range(0, N_KEYS, BATCH)]
    width = len(keys[0])
    fixed = tollgate.PackedKeys.fixed_width

    def run(n: int) -> int:
        acquire_many = lim.acquire_many
        admitted = 0
        start = _perf()
        for c in range(_chunks(n)):
            # Fixed-width keys joined on every call; offsets come from a cache.
            packed = fixed(b"".join(batches[c % len(batches)]), width)
            admitted += acquire_many(packed).allowed.count(1)
        elapsed = _perf() - start
        assert admitted == _chunks(n) * BATCH
        return elapsed

    return run


def tg_batch_packed() -> Runner:
    lim, keys = tg_limiter(), _keys()
    batches = [tollgate.PackedKeys(keys[i : i + BATCH]) for i in range(0, N_KEYS, BATCH)]

    def run(n: int) -> int:
        acquire_many = lim.acquire_many
        admitted = 0
        start = _perf()
        for c in range(_chunks(n)):
            admitted += acquire_many(batches[c % len(batches)]).allowed.count(1)
        elapsed = _perf() - start
        assert admitted == _chunks(n) * BATCH
        return elapsed

    return run


# -- limits --------------------------------------------------------------------


def limits_case(strategy: str) -> Callable[[], Runner]:
    def make() -> Runner:
        import limits
        from limits.storage import MemoryStorage
        from limits.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter

        cls = MovingWindowRateLimiter if strategy == "moving" else FixedWindowRateLimiter
        storage = MemoryStorage()
        limiter = cls(storage)
        item = limits.RateLimitItemPerSecond(int(RATE))
        keys = [k.decode() for k in _keys()]

        def run(n: int) -> int:
            hit = limiter.hit
            admitted = 0
            start = _perf()
            for c in range(_chunks(n)):
                base = (c * BATCH) % N_KEYS
                for key in keys[base : base + BATCH]:
                    admitted += hit(item, key)
            elapsed = _perf() - start
            assert admitted == _chunks(n) * BATCH, "limits rejected: the workload is not comparable"
            return elapsed

        def cleanup() -> None:
            # MemoryStorage expires entries from a timer thread that runs
            # while hits keep coming (its cost, through the GIL, is part of
            # the peer's figure); stop it so it cannot slow the next case.
            storage.timer.cancel()
            storage.timer.join()
            storage.reset()

        run.cleanup = cleanup  # type: ignore[attr-defined]
        return run

    return make


# -- breakers --------------------------------------------------------------------


def tg_breaker() -> Breaker:
    return Breaker(window_size=100, minimum_calls=20)


def tg_breaker_single_clock() -> Runner:
    b = tg_breaker()

    def run(n: int) -> int:
        acquire, record, now_ns = b.acquire, b.record, tollgate.now_ns
        success = Outcome.SUCCESS
        start = _perf()
        for _ in range(n):
            p = acquire()
            if p.allowed:
                record(p, success, 0)
        return _perf() - start

    return run


def tg_breaker_single_injected() -> Runner:
    b = tg_breaker()

    def run(n: int) -> int:
        acquire, record = b.acquire, b.record
        success = Outcome.SUCCESS
        start = _perf()
        for c in range(_chunks(n)):
            now = tollgate.now_ns()
            for _ in range(BATCH):
                p = acquire(now)
                record(p, success, 0, now)
        return _perf() - start

    return run


def tg_breaker_context() -> Runner:
    b = tg_breaker()

    def noop() -> None:
        return None

    def run(n: int) -> int:
        call = b.call
        start = _perf()
        for _ in range(n):
            with call():
                noop()
        return _perf() - start

    return run


def tg_breaker_batch() -> Runner:
    b = tg_breaker()

    def run(n: int) -> int:
        acquire_many, record_many = b.acquire_many, b.record_many
        success = Outcome.SUCCESS
        start = _perf()
        for _ in range(_chunks(n)):
            now = tollgate.now_ns()
            permits = acquire_many(BATCH, now)
            record_many(permits, success, None, now)
        return _perf() - start

    return run


def pybreaker_case() -> Runner:
    import pybreaker

    cb = pybreaker.CircuitBreaker(fail_max=20, reset_timeout=60)

    def noop() -> None:
        return None

    def run(n: int) -> int:
        call = cb.call
        start = _perf()
        for _ in range(n):
            call(noop)
        return _perf() - start

    return run


# -- routing ----------------------------------------------------------------------

# The resources of benchmarks/route_workload.hpp, in its order.
RESOURCES20 = (
    "orders", "fills", "accounts", "positions", "instruments", "venues", "quotes",
    "trades", "risk", "limits", "users", "keys", "sessions", "books",
    "algos", "allocations", "reports", "audits", "alerts", "configs",
)
N_ROUTES = 200
N_SHAPES = 10
# Paths per kind: one concrete path per rule, repeated to this length and
# shuffled (router_bench uses 4096; a multiple of BATCH keeps batches whole).
ROUTE_RING = 4 * BATCH
ROUTE_SEED = 42


def _generate_routes(n: int) -> List[Tuple[str, str, int]]:
    """(pattern, concrete path, shape) of the first n rules, as
    ``tollgate_bench::generate`` makes them; the route id is the position."""
    out: List[Tuple[str, str, int]] = []
    for r in range((n + 9) // 10):
        if len(out) >= n:
            break
        res = RESOURCES20[r] if r < 20 else f"{RESOURCES20[r % 20]}{r}"
        base = "/v1/" + res
        shapes = [
            (base, base),
            (base + "/search", base + "/search"),
            (base + "/summary", base + "/summary"),
            (base + "/{id}", base + "/8812734"),
            (base + "/{id}/history", base + "/8812734/history"),
            (base + "/{id}/status", base + "/8812734/status"),
            (base + "/{id}/events/{event}", base + "/8812734/events/ev-19"),
            ("/v1/by-account/{account}/" + res, "/v1/by-account/ACC-771/" + res),
            ("/v1/by-account/{account}/" + res + "/{id}",
             "/v1/by-account/ACC-771/" + res + "/90210"),
            (base + "-export/{year}/{month}/{file}", base + "-export/2026/11/report.csv"),
        ]
        for shape, (pattern, path) in enumerate(shapes):
            if len(out) == n:
                break
            out.append((pattern, path, shape))
    return out


@dataclass
class RouteWorkload:
    routes: List[Tuple[int, str, str, int]]  # (route_id, pattern, concrete path, shape) kept
    dropped_shapes: List[int]  # shapes Werkzeug routed differently (dropped from both)
    # Per kind ("static", "param"): ROUTE_RING (path, route_id) rows, shuffled.
    rings: Dict[str, List[Tuple[str, int]]]


def tg_route_table(w: RouteWorkload) -> RouteTable:
    return RouteTable([Rule(rid, pattern, methods=["GET"]) for rid, pattern, _, _ in w.routes])


def werkzeug_adapter(w: RouteWorkload):  # -> werkzeug.routing.MapAdapter
    from werkzeug.routing import Map
    from werkzeug.routing import Rule as WRule

    rules = [
        WRule(pattern.replace("{", "<").replace("}", ">"), endpoint=str(rid), methods=["GET"])
        for rid, pattern, _, _ in w.routes
    ]
    return Map(rules).bind("localhost")


def _mismatched_shapes(w: RouteWorkload) -> List[int]:
    """Shapes whose concrete path does not get the same rule and parameters
    from both sides (and the right rule from each)."""
    table, adapter = tg_route_table(w), werkzeug_adapter(w)
    bad = set()
    for rid, _, path, shape in w.routes:
        m = table.match(path, "GET")
        try:
            endpoint, args = adapter.match(path, "GET")
        except Exception:  # werkzeug.exceptions.NotFound, MethodNotAllowed, redirects
            endpoint, args = None, {}
        wz_params = {k: str(v) for k, v in args.items()}
        if not (m.ok and m.route_id == rid and endpoint == str(rid) and m.params == wz_params):
            bad.add(shape)
    table.close()
    return sorted(bad)


@functools.lru_cache(maxsize=None)
def route_workload() -> RouteWorkload:
    """The routing workload, checked on both sides (once per process)."""
    every = [(i, p, path, shape) for i, (p, path, shape) in enumerate(_generate_routes(N_ROUTES))]
    w = RouteWorkload(every, [], {})
    dropped = _mismatched_shapes(w)
    if dropped:
        w.routes = [r for r in every if r[3] not in dropped]
        w.dropped_shapes = dropped
        still = _mismatched_shapes(w)
        assert not still, f"routing still differs on shapes {still} after dropping {dropped}"
    rng = random.Random(ROUTE_SEED)
    for kind in ("static", "param"):
        rows = [(path, rid) for rid, pattern, path, _ in w.routes
                if ("{" in pattern) == (kind == "param")]
        assert rows, f"no {kind} routes left: the workload is not comparable"
        ring = (rows * (ROUTE_RING // len(rows) + 1))[:ROUTE_RING]
        rng.shuffle(ring)
        w.rings[kind] = ring
    return w


def tg_route_single(kind: str) -> Callable[[], Runner]:
    def make() -> Runner:
        w = route_workload()
        table, ring = tg_route_table(w), w.rings[kind]

        def run(n: int) -> int:
            match = table.match
            hits = 0
            start = _perf()
            for c in range(_chunks(n)):
                base = (c * BATCH) % ROUTE_RING
                for path, rid in ring[base : base + BATCH]:
                    hits += match(path, "GET").route_id == rid
            elapsed = _perf() - start
            assert hits == _chunks(n) * BATCH, "tollgate misrouted: the workload is not comparable"
            return elapsed

        return run

    return make


def tg_route_batch(kind: str) -> Callable[[], Runner]:
    def make() -> Runner:
        w = route_workload()
        table, ring = tg_route_table(w), w.rings[kind]
        # Plain paths: the cheapest request form match_many takes (no tuple
        # to unpack; method "GET", no host, no headers).
        batches = [[path for path, _ in ring[i : i + BATCH]] for i in range(0, ROUTE_RING, BATCH)]
        wants = [[rid for _, rid in ring[i : i + BATCH]] for i in range(0, ROUTE_RING, BATCH)]

        def run(n: int) -> int:
            match_many = table.match_many
            hits = 0
            start = _perf()
            for c in range(_chunks(n)):
                k = c % len(batches)
                # Requests packed on every call and a RouteMatch built per path.
                if [m.route_id for m in match_many(batches[k])] == wants[k]:
                    hits += BATCH
            elapsed = _perf() - start
            assert hits == _chunks(n) * BATCH, "tollgate misrouted: the workload is not comparable"
            return elapsed

        return run

    return make


def werkzeug_case(kind: str) -> Callable[[], Runner]:
    def make() -> Runner:
        w = route_workload()
        adapter = werkzeug_adapter(w)
        ring = [(path, str(rid)) for path, rid in w.rings[kind]]

        def run(n: int) -> int:
            match = adapter.match
            hits = 0
            start = _perf()
            for c in range(_chunks(n)):
                base = (c * BATCH) % ROUTE_RING
                for path, endpoint in ring[base : base + BATCH]:
                    hits += match(path, "GET")[0] == endpoint
            elapsed = _perf() - start
            assert hits == _chunks(n) * BATCH, "werkzeug misrouted: the workload is not comparable"
            return elapsed

        return run

    return make


# -- price cache --------------------------------------------------------------------

N_INSTRUMENTS = BATCH  # one batch ticks every instrument once, at one sequence number
PC_THRESHOLD_BPS = 10.0
PC_MOVE = 5e-4  # every tick is 5 bps from the cached price: inside the threshold
PC_TTL_S = 60.0
PC_PAYLOAD = b"bid 100.00 ask 100.02 size 500  "  # 32 bytes, as a quote would be


def _instruments() -> List[Tuple[bytes, float]]:
    """(key, cached price) of every instrument."""
    return [(b"SYM%05d" % i, 100.0 + 0.01 * i) for i in range(N_INSTRUMENTS)]


class _Feed:
    """In-threshold ticks for every instrument, one batch of BATCH per
    sequence number: ticks of chunk c carry sequence ``first + c`` and
    alternate between +5 and -5 bps, so tollgate sees every tick in sequence
    across the warm-up and the timed run of one runner."""

    def __init__(self) -> None:
        self.instruments = _instruments()
        self.next_seq = 2  # the entries are cached at sequence 1

    def chunks(self, n: int) -> List[List[Tuple[bytes, float, int]]]:
        out = []
        for _ in range(_chunks(n)):
            seq = self.next_seq
            self.next_seq += 1
            f = 1 + PC_MOVE if seq % 2 else 1 - PC_MOVE
            out.append([(key, price * f, seq) for key, price in self.instruments])
        return out


def tg_price_cache() -> PriceCache:
    pc = PriceCache(capacity=4 * N_INSTRUMENTS, max_payload=len(PC_PAYLOAD),
                    threshold=PC_THRESHOLD_BPS, max_age_ns=int(PC_TTL_S * 1e9))
    for key, price in _instruments():
        pc.put(key, price, 1, PC_PAYLOAD)
    return pc


def ttl_cache():  # -> cachetools.TTLCache holding (price, threshold_bps, seq, payload)
    import cachetools

    cache = cachetools.TTLCache(maxsize=4 * N_INSTRUMENTS, ttl=PC_TTL_S)
    for key, price in _instruments():
        cache[key] = (price, PC_THRESHOLD_BPS, 1, PC_PAYLOAD)
    return cache


def tg_pc_get() -> Runner:
    pc, keys = tg_price_cache(), [k for k, _ in _instruments()]

    def run(n: int) -> int:
        get = pc.get
        hits = 0
        start = _perf()
        for _ in range(_chunks(n)):
            for key in keys:
                if get(key) is not None:  # reads the clock; copies the payload out
                    hits += 1
        elapsed = _perf() - start
        assert hits == _chunks(n) * BATCH, "tollgate missed: the workload is not comparable"
        return elapsed

    return run


def ttl_get() -> Runner:
    cache, keys = ttl_cache(), [k for k, _ in _instruments()]

    def run(n: int) -> int:
        hits = 0
        start = _perf()
        for _ in range(_chunks(n)):
            for key in keys:
                try:
                    entry = cache[key]  # reads the timer; the stored tuple, no copy
                except KeyError:
                    entry = None
                if entry is not None:
                    hits += 1
        elapsed = _perf() - start
        assert hits == _chunks(n) * BATCH, "TTLCache missed: the workload is not comparable"
        return elapsed

    return run


def tg_pc_on_price(injected: bool) -> Callable[[], Runner]:
    def make() -> Runner:
        pc, feed = tg_price_cache(), _Feed()
        kept_outcome = PriceOutcome.KEPT

        def run(n: int) -> int:
            chunks = feed.chunks(n)
            on_price = pc.on_price
            now_ns = tollgate.now_ns
            kept = 0
            start = _perf()
            if injected:
                for ticks in chunks:
                    now = now_ns()
                    for key, price, seq in ticks:
                        if on_price(key, price, seq, now).outcome == kept_outcome:
                            kept += 1
            else:
                for ticks in chunks:
                    for key, price, seq in ticks:
                        if on_price(key, price, seq).outcome == kept_outcome:
                            kept += 1
            elapsed = _perf() - start
            assert kept == _chunks(n) * BATCH, "tollgate evicted: the workload is not comparable"
            return elapsed

        return run

    return make


def tg_pc_on_price_many() -> Runner:
    pc, feed = tg_price_cache(), _Feed()

    def run(n: int) -> int:
        chunks = feed.chunks(n)
        on_price_many = pc.on_price_many
        kept = 0
        start = _perf()
        for ticks in chunks:
            # Ticks unpacked and packed on every call, one clock read per
            # batch, and the outcomes read back.
            kept += on_price_many(ticks).outcomes.count(PriceOutcome.KEPT)
        elapsed = _perf() - start
        assert kept == _chunks(n) * BATCH, "tollgate evicted: the workload is not comparable"
        return elapsed

    return run


def ttl_on_price() -> Runner:
    cache, feed = ttl_cache(), _Feed()

    def run(n: int) -> int:
        chunks = feed.chunks(n)
        kept = 0
        start = _perf()
        for ticks in chunks:
            for key, price, seq in ticks:
                try:
                    entry = cache[key]
                except KeyError:
                    continue  # not cached: nothing to do
                cached = entry[0]
                if abs(price - cached) / cached * 1e4 > entry[1]:
                    del cache[key]  # moved beyond the threshold: evict
                else:
                    kept += 1
        elapsed = _perf() - start
        assert kept == _chunks(n) * BATCH, "TTLCache evicted: the workload is not comparable"
        return elapsed

    return run


def have_cachetools() -> bool:
    return importlib.util.find_spec("cachetools") is not None


# -- risk checks ----------------------------------------------------------------------

RISK_COLLAR_PERCENT = 5.0


class _RiskWorkload:
    """A checker over a price cache of N_INSTRUMENTS instruments, and orders
    that pass every rule: accounts round-robin over N_KEYS, instruments
    round-robin, limit prices 1% from the reference (inside the 5% collar),
    and client order ids never sent before (a counter shared by the warm-up
    and the timed run of one runner, so that no order is a duplicate)."""

    def __init__(self) -> None:
        self.prices = PriceCache(capacity=4 * N_INSTRUMENTS, max_payload=0,
                                 max_age_ns=int(PC_TTL_S * 1e9))
        self.instruments = _instruments()
        for key, price in self.instruments:
            self.prices.put(key, price, 1)
        self.checker = RiskChecker(
            self.prices, max_quantity=1e6, max_notional=1e9, collar_unit="percent",
            collar_width=RISK_COLLAR_PERCENT, account_max_orders=10**9,
            account_max_notional=1e15, account_capacity=2 * N_KEYS,
            duplicate_window_ns=60 * 10**9, duplicate_capacity=2**19,
        )
        self.accounts = _keys()
        self.next_id = 0

    def batches(self, n: int) -> List[List[Tuple[bytes, bytes, bytes, float, float]]]:
        """_chunks(n) batches of BATCH orders (built before the clock starts)."""
        out = []
        for _ in range(_chunks(n)):
            base = self.next_id
            self.next_id += BATCH
            batch = []
            for i in range(BATCH):
                k = base + i
                key, price = self.instruments[k % N_INSTRUMENTS]
                batch.append((self.accounts[k % N_KEYS], key, b"ord-%010d" % k, 100.0,
                              round(price * 1.01, 2)))
            out.append(batch)
        return out


def tg_risk_check(injected: bool) -> Callable[[], Runner]:
    def make() -> Runner:
        w = _RiskWorkload()

        def run(n: int) -> int:
            batches = w.batches(n)
            check = w.checker.check
            now_ns = tollgate.now_ns
            allowed = 0
            start = _perf()
            if injected:
                for orders in batches:
                    now = now_ns()
                    for account, instrument, coid, quantity, price in orders:
                        d = check(account, instrument, coid, quantity, price, now_ns=now)
                        allowed += d.allowed
            else:
                for orders in batches:
                    for account, instrument, coid, quantity, price in orders:
                        d = check(account, instrument, coid, quantity, price)
                        allowed += d.allowed
            elapsed = _perf() - start
            assert allowed == _chunks(n) * BATCH, "tollgate rejected: the workload is not all-pass"
            return elapsed

        return run

    return make


def tg_risk_check_many() -> Runner:
    w = _RiskWorkload()

    def run(n: int) -> int:
        batches = w.batches(n)
        check_many = w.checker.check_many
        allowed = 0
        start = _perf()
        for orders in batches:
            # Columns built from the tuples on every call, one clock read per
            # batch, and the allowed flags read back.
            allowed += check_many(orders).allowed_count
        elapsed = _perf() - start
        assert allowed == _chunks(n) * BATCH, "tollgate rejected: the workload is not all-pass"
        return elapsed

    return run


# -- request authentication -------------------------------------------------------------

AUTH_CANONICAL_BYTES = 256
AUTH_SECRET = b"bench-secret-0123456789abcdef-32"  # 32 bytes
AUTH_KEY_ID = "key.2026-11"
AUTH_METHOD = "POST"
AUTH_TARGET = "/v1/orders?account=A1&symbol=ES"
AUTH_BODY = b'{"qty":10,"px":4500.25,"side":"buy"}'
AUTH_SIGNED = "content-type;host;x-request-id"
AUTH_NONCE = "n-%010d"  # fixed width: every canonical form is the same length


class _AuthWorkload:
    """One request shape whose canonical form is exactly 256 bytes (the
    x-request-id value pads it), signed with a new nonce per request; the
    timestamp is the wall clock when the workload is made (the window is an
    hour, so the rows that read the clock verify it too). Nonces continue
    across the warm-up and the timed run of one runner."""

    def __init__(self) -> None:
        self.ts = time.time_ns()
        self.next_nonce = 0
        headers = [("Host", "gw.example"), ("Content-Type", "application/json")]
        probe = self.canonical(AUTH_NONCE % 0, headers + [("X-Request-Id", "")])
        pad = AUTH_CANONICAL_BYTES - len(probe)
        assert pad > 0
        self.headers = headers + [("X-Request-Id", "r" * pad)]
        canon = self.canonical(AUTH_NONCE % 0, self.headers)
        assert len(canon) == AUTH_CANONICAL_BYTES, len(canon)
        # The peer's canonical strings: the bytes around the nonce are the
        # same for every request (checked on two nonces).
        self.head, _, self.tail = canon.partition((AUTH_NONCE % 0).encode())
        for i in (1, 987654321):
            nonce = AUTH_NONCE % i
            assert self.peer_canonical(nonce) == self.canonical(nonce, self.headers)

    def canonical(self, nonce: str, headers: List[Tuple[str, str]]) -> bytes:
        return canonical_request(AUTH_METHOD, AUTH_TARGET, headers, AUTH_BODY, key_id=AUTH_KEY_ID,
                                 nonce=nonce, timestamp_ns=self.ts, signed_headers=AUTH_SIGNED)

    def peer_canonical(self, nonce: str) -> bytes:
        return self.head + nonce.encode() + self.tail

    def nonces(self, n: int) -> List[str]:
        first = self.next_nonce
        self.next_nonce += _chunks(n) * BATCH
        return [AUTH_NONCE % i for i in range(first, self.next_nonce)]

    def sign(self, nonce: str) -> str:
        return sign_request(AUTH_METHOD, AUTH_TARGET, self.headers, AUTH_BODY, key_id=AUTH_KEY_ID,
                            secret=AUTH_SECRET, signed_headers=AUTH_SIGNED, nonce=nonce,
                            timestamp_ns=self.ts)


def tg_auth_verify(injected: bool) -> Callable[[], Runner]:
    def make() -> Runner:
        w = _AuthWorkload()
        auth = Authenticator(max_skew_ns=3600 * 10**9, nonce_capacity=1 << 19)
        auth.add_key(AUTH_KEY_ID, AUTH_SECRET)

        def run(n: int) -> int:
            signed = [w.sign(nonce) for nonce in w.nonces(n)]  # before the clock starts
            verify, headers = auth.verify, w.headers
            method, target, body = AUTH_METHOD, AUTH_TARGET, AUTH_BODY
            ok = 0
            start = _perf()
            if injected:
                now = w.ts
                for a in signed:
                    ok += verify(method, target, headers, body, authorization=a, now_ns=now).ok
            else:
                for a in signed:
                    ok += verify(method, target, headers, body, authorization=a).ok
            elapsed = _perf() - start
            assert ok == len(signed), "tollgate refused a request: the workload is not comparable"
            return elapsed

        return run

    return make


def hmac_verify() -> Runner:
    w = _AuthWorkload()

    def run(n: int) -> int:
        canonical = [w.peer_canonical(nonce) for nonce in w.nonces(n)]
        expected = [hmac.digest(AUTH_SECRET, c, "sha256").hex() for c in canonical]
        digest, equal, secret = hmac.digest, hmac.compare_digest, AUTH_SECRET
        ok = 0
        start = _perf()
        for c, sig in zip(canonical, expected):
            ok += equal(digest(secret, c, "sha256").hex(), sig)
        elapsed = _perf() - start
        assert ok == len(canonical)
        return elapsed

    return run


def tg_auth_sign() -> Runner:
    w = _AuthWorkload()

    def run(n: int) -> int:
        nonces = w.nonces(n)
        sign, headers, ts = sign_request, w.headers, w.ts
        method, target, body = AUTH_METHOD, AUTH_TARGET, AUTH_BODY
        out = []
        start = _perf()
        for nonce in nonces:
            out.append(sign(method, target, headers, body, key_id=AUTH_KEY_ID, secret=AUTH_SECRET,
                            signed_headers=AUTH_SIGNED, nonce=nonce, timestamp_ns=ts))
        elapsed = _perf() - start
        assert out[-1] == w.sign(nonces[-1]) and len(out) == len(nonces)
        return elapsed

    return run


def hmac_sign() -> Runner:
    w = _AuthWorkload()

    def run(n: int) -> int:
        nonces = w.nonces(n)
        canonical = [w.peer_canonical(nonce) for nonce in nonces]
        digest, secret, ts = hmac.digest, AUTH_SECRET, w.ts
        out = []
        start = _perf()
        for nonce, c in zip(nonces, canonical):
            out.append(f"TG1-HMAC-SHA256 KeyId={AUTH_KEY_ID}, SignedHeaders={AUTH_SIGNED}, "
                       f"Timestamp={ts}, Nonce={nonce}, Signature={digest(secret, c, 'sha256').hex()}")
        elapsed = _perf() - start
        # The same header as tollgate's: the peer's work is the real thing.
        assert out[-1] == w.sign(nonces[-1]) and len(out) == len(nonces)
        return elapsed

    return run


@dataclass
class Solo:
    """A tollgate case without a peer: only its own figures."""

    operation: str
    tollgate: Callable[[], Runner]
    tg_ns: List[float] = field(default_factory=list)


def build_solos() -> List[Solo]:
    return [
        Solo("risk: check (reads clock)", tg_risk_check(False)),
        Solo("risk: check (injected now)", tg_risk_check(True)),
        Solo(f"risk: check_many({BATCH}), per order", tg_risk_check_many),
    ]


# -- the harness -------------------------------------------------------------------


@dataclass
class Pair:
    operation: str
    tollgate: Callable[[], Runner]
    peer_name: str
    peer: Callable[[], Runner]
    tg_ns: List[float] = field(default_factory=list)
    peer_ns: List[float] = field(default_factory=list)
    ratios: List[float] = field(default_factory=list)


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "?"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def measure(make: Callable[[], Runner], n: int) -> float:
    """ns per decision of one timed run (after a short warm-up)."""
    run = make()
    run(min(n, N_KEYS))  # warm-up: every key inserted, caches warm
    gc.collect()
    gc.disable()
    try:
        elapsed = run(n)
    finally:
        gc.enable()
        cleanup = getattr(run, "cleanup", None)
        if cleanup is not None:
            cleanup()
    return elapsed / (_chunks(n) * BATCH)


def build_pairs() -> List[Pair]:
    lim_v, pyb_v = _version("limits"), _version("pybreaker")
    moving = f"limits {lim_v} MovingWindow"
    fixed = f"limits {lim_v} FixedWindow"
    pyb = f"pybreaker {pyb_v} call"
    wz = f"Werkzeug {_version('werkzeug')} MapAdapter.match"
    ttl = f"cachetools {_version('cachetools')} TTLCache"
    hmac_peer_verify = "stdlib hmac.digest + compare_digest"
    hmac_peer_sign = "stdlib hmac.digest + header f-string"
    price_cache = [
        Pair("price cache: get, hit (reads clock)", tg_pc_get, ttl, ttl_get),
        Pair("price cache: on_price, in threshold (reads clock)", tg_pc_on_price(False), ttl,
             ttl_on_price),
        Pair("price cache: on_price, in threshold (injected now)", tg_pc_on_price(True), ttl,
             ttl_on_price),
        Pair(f"price cache: on_price_many({BATCH}), in threshold, per tick",
             tg_pc_on_price_many, ttl, ttl_on_price),
    ] if have_cachetools() else []
    return [
        Pair("limiter: single acquire (reads clock)", tg_single_clock, moving, limits_case("moving")),
        Pair("limiter: single acquire (injected now)", tg_single_injected, moving, limits_case("moving")),
        Pair(f"limiter: acquire_many({BATCH}), per decision", tg_batch, moving, limits_case("moving")),
        Pair(f"limiter: acquire_many({BATCH}), per decision", tg_batch, fixed, limits_case("fixed")),
        Pair(f"limiter: acquire_many({BATCH}) fixed-width keys joined per call, per decision",
             tg_batch_fixed_width, moving, limits_case("moving")),
        Pair(f"limiter: acquire_many({BATCH}) keys packed once (PackedKeys), per decision",
             tg_batch_packed, moving, limits_case("moving")),
        Pair("breaker: acquire + record (reads clock)", tg_breaker_single_clock, pyb, pybreaker_case),
        Pair("breaker: acquire + record (injected now)", tg_breaker_single_injected, pyb, pybreaker_case),
        Pair("breaker: with call() (reads clock twice)", tg_breaker_context, pyb, pybreaker_case),
        Pair(f"breaker: acquire_many + record_many({BATCH}), per call", tg_breaker_batch, pyb,
             pybreaker_case),
        Pair("routing: match, static paths", tg_route_single("static"), wz,
             werkzeug_case("static")),
        Pair("routing: match, parametric paths", tg_route_single("param"), wz,
             werkzeug_case("param")),
        Pair(f"routing: match_many({BATCH}), static paths, per match", tg_route_batch("static"),
             wz, werkzeug_case("static")),
        Pair(f"routing: match_many({BATCH}), parametric paths, per match",
             tg_route_batch("param"), wz, werkzeug_case("param")),
        *price_cache,
        Pair(f"auth: verify, {AUTH_CANONICAL_BYTES}-byte canonical request (reads clock)",
             tg_auth_verify(False), hmac_peer_verify, hmac_verify),
        Pair(f"auth: verify, {AUTH_CANONICAL_BYTES}-byte canonical request (injected now)",
             tg_auth_verify(True), hmac_peer_verify, hmac_verify),
        Pair(f"auth: sign_request, {AUTH_CANONICAL_BYTES}-byte canonical request",
             tg_auth_sign, hmac_peer_sign, hmac_sign),
    ]


def run_all(rounds: int, n: int, log: Callable[[str], None]) -> Tuple[List[Pair], List[Solo]]:
    pairs = build_pairs()
    solos = build_solos()
    for r in range(rounds):
        for solo in solos:
            solo.tg_ns.append(measure(solo.tollgate, n))
        for pair in pairs:
            # Alternate which side goes first, so drift favours neither.
            if r % 2 == 0:
                t = measure(pair.tollgate, n)
                p = measure(pair.peer, n)
            else:
                p = measure(pair.peer, n)
                t = measure(pair.tollgate, n)
            pair.tg_ns.append(t)
            pair.peer_ns.append(p)
            pair.ratios.append(p / t)
        log(f"round {r + 1}/{rounds} done")
    return pairs, solos


def table(pairs: List[Pair], unit: str = "decision") -> str:
    lines = [
        f"| operation | tollgate (ns/{unit}) | peer | peer (ns/{unit}) | ratio (peer / tollgate) |",
        "|---|---:|---|---:|---:|",
    ]
    for p in pairs:
        lines.append(
            f"| {p.operation} | {statistics.median(p.tg_ns):.0f} | {p.peer_name} | "
            f"{statistics.median(p.peer_ns):.0f} | {statistics.median(p.ratios):.1f}x |"
        )
    return "\n".join(lines)


def print_risk(solos: List[Solo]) -> None:
    print(f"risk checks: every rule on (collar {RISK_COLLAR_PERCENT:g}% against a price cache of "
          f"{N_INSTRUMENTS} instruments, quantity, notional, per-account count and notional over "
          f"{N_KEYS} accounts, duplicate ids); every order passes. No Python peer: "
          f"tollgate's own cost")
    print()
    print("| operation | tollgate (ns/order) | min | max |")
    print("|---|---:|---:|---:|")
    for s in solos:
        print(f"| {s.operation} | {statistics.median(s.tg_ns):.0f} | {min(s.tg_ns):.0f} | "
              f"{max(s.tg_ns):.0f} |")
    single = next(s for s in solos if s.operation == "risk: check (reads clock)")
    batch = next(s for s in solos if s.operation.startswith("risk: check_many"))
    print()
    print(f"risk check_many vs check (both read the clock): "
          f"{statistics.median(single.tg_ns) / statistics.median(batch.tg_ns):.1f}x")


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="a few iterations per case, to prove the script runs")
    parser.add_argument("--rounds", type=int, default=None,
                        help="alternating rounds per pair (default 7, quick 2)")
    parser.add_argument("--decisions", type=int, default=None,
                        help="decisions per timed run (default 200000, quick 2000)")
    args = parser.parse_args(argv)
    rounds = args.rounds or (2 if args.quick else 7)
    n = args.decisions or (2 * BATCH if args.quick else 200_000)
    if rounds < 1 or n < 1:
        parser.error("--rounds and --decisions must be positive")

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    pairs, solos = run_all(rounds, n, log)
    print(f"tollgate Python binding vs peers, {datetime.date.today().isoformat()}")
    print(f"CPU: {_cpu_model()}; Python {platform.python_version()}; "
          f"tollgate {tollgate.LIBRARY_VERSION}; cffi {_version('cffi')}")
    print(f"command: python benchmarks/python/bench_compare.py{' --quick' if args.quick else ''}"
          f" (rounds={rounds}, decisions per run={n}, medians; ratio = median of per-round ratios)")
    if args.quick:
        print("QUICK RUN: too few iterations for the figures to mean anything")
    print()
    print(table([p for p in pairs if p.operation.startswith(("limiter", "breaker"))]))
    batch = next(p for p in pairs if p.tollgate is tg_batch)
    single = next(p for p in pairs if p.tollgate is tg_single_clock)
    print()
    print(f"limiter batch vs single acquire (both read the clock): "
          f"{statistics.median(single.tg_ns) / statistics.median(batch.tg_ns):.1f}x")
    w = route_workload()
    shapes = N_SHAPES - len(w.dropped_shapes)
    print()
    print(f"routing: {len(w.routes)} GET routes ({N_ROUTES // N_SHAPES} resources x {shapes} "
          f"shapes, shapes dropped: {', '.join(map(str, w.dropped_shapes)) or 'none'}); "
          f"{ROUTE_RING} paths per kind, shuffled; both sides route every path alike")
    print()
    routing = [p for p in pairs if p.operation.startswith("routing")]
    print(table(routing, "match"))
    print()
    for kind in ("static", "parametric"):
        single = next(p for p in routing if p.operation == f"routing: match, {kind} paths")
        batch = next(p for p in routing
                     if p.operation == f"routing: match_many({BATCH}), {kind} paths, per match")
        print(f"routing match_many vs match, {kind} paths: "
              f"{statistics.median(single.tg_ns) / statistics.median(batch.tg_ns):.1f}x")
    print()
    print_risk(solos)
    print()
    auth = [p for p in pairs if p.operation.startswith("auth")]
    print(f"request authentication: one POST request shape ({len(AUTH_BODY)}-byte JSON body, "
          f"signed headers {AUTH_SIGNED}), a {AUTH_CANONICAL_BYTES}-byte canonical form, a new "
          f"nonce per request; every request verifies (checked). The peer is given the "
          f"canonical string: it does not parse, check time, key or nonce, canonicalise or "
          f"hash the body")
    print()
    print(table(auth, "request"))
    print()
    prices = [p for p in pairs if p.operation.startswith("price cache")]
    if not prices:
        print("price cache: skipped, cachetools is not installed "
              "(pip install -r bindings/python/requirements-test.txt)")
        return 0
    print(f"price cache: {N_INSTRUMENTS} instruments, {len(PC_PAYLOAD)}-byte payloads, "
          f"ticks 5 bps from the cached price against a {PC_THRESHOLD_BPS:g} bps threshold "
          f"(both sides keep every entry)")
    print()
    print(table(prices, "op"))
    single = next(p for p in prices if p.operation.endswith("in threshold (reads clock)"))
    batch = next(p for p in prices if p.operation.startswith("price cache: on_price_many"))
    print()
    print(f"price cache on_price_many vs on_price (both read the clock): "
          f"{statistics.median(single.tg_ns) / statistics.median(batch.tg_ns):.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
