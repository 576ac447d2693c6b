"""The circuit breaker and bulkhead through the binding, with an injected
clock: transitions, forced states, bulkhead, events, batches and the
context manager."""

from __future__ import annotations

import gc
import time
import weakref
from typing import List

import pytest
from conftest import SECOND, T0

from tollgate import (
    Breaker,
    BreakerOpen,
    BreakerReason,
    BreakerState,
    Event,
    Outcome,
    PermitBatch,
    StateError,
)


def make(**overrides: object) -> Breaker:
    opts = dict(window_size=4, minimum_calls=4, failure_rate_threshold=50, open_ns=SECOND,
                half_open_probes=2)
    opts.update(overrides)
    return Breaker(**opts)  # type: ignore[arg-type]


def call(b: Breaker, outcome: Outcome, now: int = T0, latency: int = 1000) -> None:
    p = b.acquire(now)
    assert p.allowed, p
    b.record(p, outcome, latency, now)


def trip(b: Breaker, now: int = T0) -> None:
    for outcome in (Outcome.SUCCESS, Outcome.SUCCESS, Outcome.FAILURE, Outcome.FAILURE):
        call(b, outcome, now)
    assert b.state is BreakerState.OPEN


# -- the state machine --------------------------------------------------------


def test_closed_open_half_open_closed() -> None:
    b = make()
    events: List[Event] = []
    b.on_event(events.append)
    for outcome in (Outcome.SUCCESS, Outcome.SUCCESS, Outcome.SUCCESS, Outcome.FAILURE):
        call(b, outcome)
    s = b.stats(T0)
    assert b.state is BreakerState.CLOSED and s.failure_rate == 25.0 and s.window_calls == 4
    call(b, Outcome.FAILURE)  # the window is now S S F F: 50 %
    assert b.state is BreakerState.OPEN
    assert events == [Event(BreakerState.CLOSED, BreakerState.OPEN, T0, 50.0, 0.0, SECOND)]

    p = b.acquire(T0)
    assert (p.allowed, p.reason, p.state, p.retry_after_ns) == (
        False, BreakerReason.OPEN, BreakerState.OPEN, SECOND)
    assert not p
    assert b.acquire(T0 + SECOND - 1).retry_after_ns == 1
    # Time standing still or stepping back never ends the open period early.
    back = b.acquire(T0 - 10)
    assert not back.allowed and back.retry_after_ns == SECOND + 10
    assert b.state is BreakerState.OPEN

    probe1 = b.acquire(T0 + SECOND)
    assert probe1.allowed and probe1.state is BreakerState.HALF_OPEN
    assert b.state is BreakerState.HALF_OPEN
    probe2 = b.acquire(T0 + SECOND)
    assert probe2.allowed
    extra = b.acquire(T0 + SECOND)
    assert not extra.allowed and extra.reason is BreakerReason.OPEN  # probes taken
    b.record(probe1, Outcome.SUCCESS, 10, T0 + SECOND)
    assert b.state is BreakerState.HALF_OPEN  # waits for every probe
    b.record(probe2, Outcome.SUCCESS, 10, T0 + SECOND)
    assert b.state is BreakerState.CLOSED
    assert [(e.from_state, e.to_state) for e in events] == [
        (BreakerState.CLOSED, BreakerState.OPEN),
        (BreakerState.OPEN, BreakerState.HALF_OPEN),
        (BreakerState.HALF_OPEN, BreakerState.CLOSED),
    ]
    s = b.stats(T0 + SECOND)
    assert s.transitions == 3 and s.window_calls == 0 and s.failure_rate is None
    assert s.admitted == 7 and s.rejected == 4


def test_failed_probe_reopens_with_backoff() -> None:
    b = make(backoff_multiplier=2.0, max_open_ns=3 * SECOND, half_open_probes=1)
    opened: List[int] = []
    b.on_event(lambda e: opened.append(e.open_ns) if e.to_state is BreakerState.OPEN else None)
    trip(b)
    now = T0 + SECOND
    for expected in (2 * SECOND, 3 * SECOND, 3 * SECOND):  # doubled, then capped
        probe = b.acquire(now)
        assert probe.allowed and b.state is BreakerState.HALF_OPEN
        b.record(probe, Outcome.FAILURE, 10, now)
        assert b.state is BreakerState.OPEN
        assert opened[-1] == expected
        assert not b.acquire(now + expected - 1).allowed
        now += expected
    assert opened == [SECOND, 2 * SECOND, 3 * SECOND, 3 * SECOND]
    # Closing resets the backoff.
    probe = b.acquire(now)
    b.record(probe, Outcome.SUCCESS, 10, now)
    assert b.state is BreakerState.CLOSED
    trip(b, now)
    assert opened[-1] == SECOND


def test_slow_calls_open_the_breaker() -> None:
    b = make(failure_rate_threshold=100, slow_rate_threshold=50, slow_call_ns=1_000)
    call(b, Outcome.SUCCESS, latency=999)
    call(b, Outcome.SUCCESS, latency=999)
    call(b, Outcome.SUCCESS, latency=1_000)
    assert b.state is BreakerState.CLOSED  # three calls: below minimum_calls
    call(b, Outcome.SUCCESS, latency=5_000)
    assert b.state is BreakerState.OPEN
    s = b.stats(T0)
    assert s.slow_calls == 2 and s.failures == 0 and s.slow_rate == 50.0


def test_ignored_outcomes_are_not_counted() -> None:
    b = make()
    for _ in range(10):
        call(b, Outcome.IGNORED)
    s = b.stats(T0)
    assert s.ignored == 10 and s.window_calls == 0 and b.state is BreakerState.CLOSED


def test_time_window_forgets_old_buckets() -> None:
    b = Breaker(window_type="time", window_size=2, bucket_ns=SECOND, minimum_calls=2,
                failure_rate_threshold=50)
    call(b, Outcome.FAILURE, T0)
    assert b.stats(T0).window_calls == 1
    assert b.stats(T0 + 5 * SECOND).window_calls == 0
    call(b, Outcome.FAILURE, T0 + 5 * SECOND)
    assert b.state is BreakerState.CLOSED  # the first failure has left the window
    call(b, Outcome.FAILURE, T0 + 5 * SECOND + 1)
    assert b.state is BreakerState.OPEN


def test_half_open_timeout_reopens() -> None:
    b = make(max_half_open_ns=SECOND)
    trip(b)
    probe = b.acquire(T0 + SECOND)
    assert probe.allowed and b.state is BreakerState.HALF_OPEN
    assert b.acquire(T0 + SECOND + SECOND - 1).state is BreakerState.HALF_OPEN
    late = b.acquire(T0 + 2 * SECOND + 1)
    assert not late.allowed and b.state is BreakerState.OPEN


# -- forced states ----------------------------------------------------------------


def test_forced_open_is_a_kill_switch() -> None:
    b = make()
    events: List[Event] = []
    b.on_event(events.append)
    b.transition(BreakerState.FORCED_OPEN, now_ns=T0)
    assert b.state is BreakerState.FORCED_OPEN
    for now in (T0, T0 + 1000 * SECOND):
        p = b.acquire(now)
        assert not p.allowed and p.reason is BreakerReason.FORCED_OPEN
    b.transition("closed", now_ns=T0)
    assert b.acquire(T0).allowed
    assert [(e.from_state, e.to_state) for e in events] == [
        (BreakerState.CLOSED, BreakerState.FORCED_OPEN),
        (BreakerState.FORCED_OPEN, BreakerState.CLOSED),
    ]


def test_forced_closed_admits_and_keeps_the_window() -> None:
    b = make()
    b.transition("forced_closed", now_ns=T0)
    for _ in range(8):
        call(b, Outcome.FAILURE)
    assert b.state is BreakerState.FORCED_CLOSED
    s = b.stats(T0)
    assert s.failures == 8 and s.failure_rate == 100.0 and s.window_calls == 4


def test_disabled_admits_and_records_nothing() -> None:
    b = make()
    b.transition(BreakerState.DISABLED, now_ns=T0)
    for _ in range(8):
        call(b, Outcome.FAILURE)
    assert b.state is BreakerState.DISABLED
    assert b.stats(T0).window_calls == 0


def test_metrics_only_counts_trips_it_does_not_take() -> None:
    b = make()
    b.transition(BreakerState.METRICS_ONLY, now_ns=T0)
    for _ in range(6):
        call(b, Outcome.FAILURE)
    assert b.state is BreakerState.METRICS_ONLY
    assert b.stats(T0).would_open >= 1


def test_transition_to_open_and_half_open() -> None:
    b = make()
    b.transition(BreakerState.OPEN, now_ns=T0)
    p = b.acquire(T0)
    assert not p.allowed and p.retry_after_ns == SECOND
    b.transition(BreakerState.HALF_OPEN, now_ns=T0)
    assert b.acquire(T0).allowed


# -- bulkhead ---------------------------------------------------------------------


def test_bulkhead_bounds_calls_in_flight() -> None:
    b = make(max_in_flight=2)
    p1, p2 = b.acquire(T0), b.acquire(T0)
    assert p1.allowed and p2.allowed
    p3 = b.acquire(T0)
    assert not p3.allowed and p3.reason is BreakerReason.BULKHEAD_FULL
    s = b.stats(T0)
    assert s.in_flight == 2 and s.bulkhead_rejected == 1
    b.record(p3, Outcome.SUCCESS, 0, T0)  # recording a rejected permit is a no-op
    assert b.stats(T0).in_flight == 2
    b.record(p1, Outcome.IGNORED, 0, T0)
    assert b.stats(T0).in_flight == 1
    assert b.acquire(T0).allowed
    assert not b.acquire(T0).allowed


def test_a_permit_is_recorded_once() -> None:
    b = make()
    p = b.acquire(T0)
    b.record(p, "success", 0, T0)
    assert p.recorded
    with pytest.raises(StateError):
        b.record(p, Outcome.SUCCESS, 0, T0)
    assert b.stats(T0).successes == 1


# -- events -----------------------------------------------------------------------------


def test_event_callback_replace_remove_and_errors(capfd: pytest.CaptureFixture[str]) -> None:
    b = make()
    seen: List[str] = []

    @b.on_event
    def first(e: Event) -> None:
        seen.append("first")

    b.transition("forced_open", T0)
    b.on_event(lambda e: seen.append(f"second:{e.to_state.name}"))
    b.transition("closed", T0)
    b.on_event(None)
    b.transition("forced_open", T0)
    assert seen == ["first", "second:CLOSED"]

    def broken(e: Event) -> None:
        raise RuntimeError("callback bug")

    b.on_event(broken)
    b.transition("closed", T0)  # the exception does not escape into the caller
    assert b.state is BreakerState.CLOSED
    assert "callback bug" in capfd.readouterr().err


def test_event_callback_may_call_back_into_the_breaker() -> None:
    b = make()
    states: List[BreakerState] = []
    b.on_event(lambda e: states.append(b.stats(e.now_ns).state))
    trip(b)
    assert states == [BreakerState.OPEN]


def test_event_callback_does_not_keep_the_breaker_alive() -> None:
    from tollgate import breaker as breaker_module

    b = make()
    b.on_event(lambda e: b.state)  # a cycle through the callback
    ref = weakref.ref(b)
    reg_id = b._reg_id
    assert reg_id in breaker_module._registry
    del b
    gc.collect()
    assert ref() is None
    assert reg_id not in breaker_module._registry


# -- batches ------------------------------------------------------------------------------


def test_batch_acquire_and_record() -> None:
    b = make(window_size=10, minimum_calls=10, max_in_flight=3)
    batch = b.acquire_many(5, now_ns=T0)
    assert isinstance(batch, PermitBatch) and len(batch) == 5
    assert batch.allowed == b"\x01\x01\x01\x00\x00"
    assert batch.allowed_count == 3
    assert batch.reasons == [0, 0, 0, BreakerReason.BULKHEAD_FULL, BreakerReason.BULKHEAD_FULL]
    assert batch.states == [BreakerState.CLOSED] * 5
    assert [p.allowed for p in batch] == [True, True, True, False, False]
    assert b.stats(T0).in_flight == 3
    b.record_many(batch, [Outcome.SUCCESS, "failure", Outcome.IGNORED, 0, 1],
                  [10, 20, 30, 0, 0], now_ns=T0)
    s = b.stats(T0)
    assert (s.in_flight, s.successes, s.failures, s.ignored) == (0, 1, 1, 1)
    assert batch.recorded
    with pytest.raises(StateError):
        b.record_many(batch, Outcome.SUCCESS, now_ns=T0)
    # A list of single permits, one outcome for all.
    singles = [b.acquire(T0) for _ in range(3)]
    b.record_many(singles, Outcome.FAILURE, now_ns=T0)
    assert all(p.recorded for p in singles)
    assert b.stats(T0).failures == 4
    assert len(b.acquire_many(0, now_ns=T0)) == 0


def test_batch_equals_the_same_single_calls() -> None:
    import random

    rng = random.Random(7)
    batch_b, single_b = make(), make()
    now = T0
    for _ in range(30):
        n = rng.randint(0, 6)
        outcomes = [rng.choice([0, 1, 1, 2]) for _ in range(n)]
        batch = batch_b.acquire_many(n, now_ns=now)
        singles = [single_b.acquire(now) for _ in range(n)]
        assert [(p.allowed, p.reason, p.state, p.retry_after_ns) for p in batch] == [
            (p.allowed, p.reason, p.state, p.retry_after_ns) for p in singles]
        batch_b.record_many(batch, outcomes, now_ns=now)
        for p, o in zip(singles, outcomes):
            single_b.record(p, o, 0, now)
        assert batch_b.state == single_b.state
        now += rng.randint(0, SECOND // 2)
    sb, ss = batch_b.stats(now), single_b.stats(now)
    assert sb == ss


# -- the context manager -----------------------------------------------------------------


def test_call_records_success_failure_and_ignored() -> None:
    b = make(window_size=10, minimum_calls=10)
    with b.call() as c:
        assert c.permit is not None and c.permit.allowed
    assert c.latency_ns is not None and c.latency_ns >= 0
    with pytest.raises(ValueError):
        with b.call():
            raise ValueError("upstream said no")

    class Cancelled(BaseException):
        pass

    with pytest.raises(KeyError):
        with b.call(ignore=(KeyError,)):
            raise KeyError("not the venue's fault")
    with pytest.raises(Cancelled):
        with b.call():
            raise Cancelled()
    with b.call() as c:
        c.outcome = Outcome.FAILURE  # the caller decides
    with b.call() as c:
        c.outcome = "ignored"
    assert c.permit is not None and c.permit.recorded  # made after the fact
    with pytest.raises(StateError):
        b.record(c.permit, Outcome.SUCCESS)
    with b.call() as c:
        assert c.permit is not None
        b.record(c.permit, Outcome.FAILURE, 5)  # recorded by the block: not twice
    assert c.permit is not None and c.permit.recorded
    s = b.stats()
    assert (s.successes, s.failures, s.ignored, s.in_flight) == (1, 3, 3, 0)
    with pytest.raises(StateError):
        with c:
            pass


def test_call_measures_latency_for_slow_calls() -> None:
    b = make(slow_call_ns=1_000_000, window_size=10, minimum_calls=10)
    with b.call() as c:
        time.sleep(0.005)
    assert c.latency_ns is not None and c.latency_ns >= 5_000_000
    assert b.stats().slow_calls == 1


def test_call_raises_breaker_open_when_rejected() -> None:
    b = Breaker(name="venue-x")
    b.transition("forced_open")
    ran = False
    with pytest.raises(BreakerOpen) as info:
        with b.call():
            ran = True
    assert not ran
    assert info.value.reason is BreakerReason.FORCED_OPEN
    assert "venue-x" in str(info.value)
    assert b.stats().admitted == 0
    b2 = make(max_in_flight=1)
    with b2.call():
        with pytest.raises(BreakerOpen) as info:
            with b2.call():
                pass
        assert info.value.reason is BreakerReason.BULKHEAD_FULL
    assert b2.stats().in_flight == 0


def test_breaker_close_and_context_manager() -> None:
    with make() as b:
        assert not b.closed
        permit = b.acquire(T0)
    assert b.closed
    b.close()  # idempotent
    assert "closed" in repr(b)
    with pytest.raises(ValueError, match="closed"):
        b.record(permit, Outcome.SUCCESS, 0, T0)
