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

Method (see shared BENCHMARKING.md): every case runs in the same process on
the same workload (10,000 keys visited round-robin, limits high enough that
nothing is rejected, so both sides do the admit path); each pair is measured
alternately A B A B ... for several rounds, and the table reports the median
of each side and the median of the per-round ratios (peer / tollgate). The
peers read the clock themselves, so the main tollgate rows read it too
(``tg_now_ns`` per call, or once per batch); rows marked "injected now" pass
a timestamp read once per 1000 decisions, as a host that already has one
would.

Usage:
    python benchmarks/python/bench_compare.py            # full run
    python benchmarks/python/bench_compare.py --quick    # a few iterations, smoke test
"""

from __future__ import annotations

import argparse
import datetime
import gc
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from importlib import metadata
from typing import Callable, Dict, List, Optional, Tuple

import tollgate
from tollgate import Breaker, Limiter, Outcome, Tier

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
    return Limiter(Tier("default", RATE, int(RATE)), capacity=4 * N_KEYS)


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
    ]


def run_all(rounds: int, n: int, log: Callable[[str], None]) -> List[Pair]:
    pairs = build_pairs()
    for r in range(rounds):
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
    return pairs


def table(pairs: List[Pair]) -> str:
    lines = [
        "| operation | tollgate (ns/decision) | peer | peer (ns/decision) | ratio (peer / tollgate) |",
        "|---|---:|---|---:|---:|",
    ]
    for p in pairs:
        lines.append(
            f"| {p.operation} | {statistics.median(p.tg_ns):.0f} | {p.peer_name} | "
            f"{statistics.median(p.peer_ns):.0f} | {statistics.median(p.ratios):.1f}x |"
        )
    return "\n".join(lines)


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

    pairs = run_all(rounds, n, log)
    print(f"tollgate Python binding vs peers, {datetime.date.today().isoformat()}")
    print(f"CPU: {_cpu_model()}; Python {platform.python_version()}; "
          f"tollgate {tollgate.LIBRARY_VERSION}; cffi {_version('cffi')}")
    print(f"command: python benchmarks/python/bench_compare.py{' --quick' if args.quick else ''}"
          f" (rounds={rounds}, decisions per run={n}, medians; ratio = median of per-round ratios)")
    if args.quick:
        print("QUICK RUN: too few iterations for the figures to mean anything")
    print()
    print(table(pairs))
    batch = next(p for p in pairs if p.tollgate is tg_batch)
    single = next(p for p in pairs if p.tollgate is tg_single_clock)
    print()
    print(f"limiter batch vs single acquire (both read the clock): "
          f"{statistics.median(single.tg_ns) / statistics.median(batch.tg_ns):.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
