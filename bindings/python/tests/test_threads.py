"""Many Python threads on one limiter and one breaker (the library releases
the GIL during each call): counts reconcile exactly."""

from __future__ import annotations

import threading
from typing import Callable, List

from conftest import T0

from tollgate import Breaker, Limiter, Outcome, Tier

THREADS = 4


def run_threads(target: Callable[[int], None]) -> None:
    start = threading.Barrier(THREADS)

    def body(i: int) -> None:
        start.wait()
        target(i)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_one_key_many_threads_admits_exactly_the_burst() -> None:
    burst = 3000
    lim = Limiter(Tier("t", 1, burst))
    admitted: List[int] = [0] * THREADS
    offered = 2000

    def work(i: int) -> None:
        n = 0
        for j in range(offered // 2):
            n += lim.acquire(b"shared", now_ns=T0).allowed
        n += lim.acquire_many([b"shared"] * (offered // 2), now_ns=T0).allowed_count
        admitted[i] = n

    run_threads(work)
    assert sum(admitted) == burst
    s = lim.stats()
    assert s.admitted == burst and s.admitted + s.rejected == THREADS * offered


def test_per_thread_decisions_are_not_mixed_up() -> None:
    lim = Limiter(Tier("t", 1, 5000))
    errors: List[str] = []

    def work(i: int) -> None:
        key = b"key-%d" % i
        for expected in range(4999, 3999, -1):
            d = lim.acquire(key, now_ns=T0)
            if not d.allowed or d.remaining != expected:
                errors.append(f"thread {i}: {d} (expected remaining {expected})")
                return

    run_threads(work)
    assert errors == []


def test_bulkhead_holds_under_threads() -> None:
    b = Breaker(max_in_flight=2, window_size=10, minimum_calls=10)
    peak: List[int] = [0]
    lock = threading.Lock()
    held = [0]

    def work(i: int) -> None:
        for _ in range(500):
            p = b.acquire(T0)
            if p.allowed:
                with lock:
                    held[0] += 1
                    peak[0] = max(peak[0], held[0])
                with lock:
                    held[0] -= 1
                b.record(p, Outcome.SUCCESS, 0, T0)

    run_threads(work)
    s = b.stats(T0)
    assert peak[0] <= 2
    assert s.in_flight == 0
    assert s.admitted + s.rejected == THREADS * 500
    assert s.successes == s.admitted and s.bulkhead_rejected == s.rejected
