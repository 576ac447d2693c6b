"""Bad input through every public function: a clear exception, never a crash.

Each case names the call and the exception it must raise: TypeError for a
wrong Python type, ValueError (InvalidArgumentError is one) for a bad value,
TollgateError subclasses where the library said no.
"""

from __future__ import annotations

import pickle
from typing import Any, Callable, List, Tuple, Type

import pytest
from conftest import T0

import tollgate
from tollgate import (
    Breaker,
    InvalidArgumentError,
    Limiter,
    NotFoundError,
    PackedKeys,
    StateError,
    Tier,
    TollgateError,
)
from tollgate._native import lib

NAN = float("nan")
INF = float("inf")
Case = Tuple[str, Callable[[], Any], Type[BaseException]]


def lim() -> Limiter:
    return Limiter([Tier("a", 10, 5), Tier("b", 10, 5)])


def brk() -> Breaker:
    return Breaker(window_size=4, minimum_calls=4)


LIMITER_CASES: List[Case] = [
    # construction
    ("tiers str", lambda: Limiter("fast"), TypeError),  # type: ignore[arg-type]
    ("tiers not Tier", lambda: Limiter([("a", 1, 1)]), TypeError),  # type: ignore[list-item]
    ("tiers empty", lambda: Limiter([]), InvalidArgumentError),
    ("tier name empty", lambda: Limiter(Tier("", 1, 1)), TollgateError),
    ("tier name 64 bytes", lambda: Limiter(Tier("x" * 64, 1, 1)), TollgateError),
    ("tier name NUL", lambda: Limiter(Tier("a\0b", 1, 1)), ValueError),
    ("tier name not str", lambda: Limiter(Tier(b"a", 1, 1)), TypeError),  # type: ignore[arg-type]
    ("tier names duplicate", lambda: Limiter([Tier("a", 1, 1), Tier("a", 2, 2)]), TollgateError),
    ("too many tiers", lambda: Limiter([Tier(f"t{i}", 1, 1) for i in range(65)]), TollgateError),
    ("rate 0", lambda: Limiter(Tier("a", 0, 1)), TollgateError),
    ("rate negative", lambda: Limiter(Tier("a", -5, 1)), TollgateError),
    ("rate NaN", lambda: Limiter(Tier("a", NAN, 1)), ValueError),
    ("rate inf", lambda: Limiter(Tier("a", INF, 1)), TollgateError),
    ("rate above 1e9", lambda: Limiter(Tier("a", 2e9, 1)), TollgateError),
    ("rate str", lambda: Limiter(Tier("a", "10", 1)), TypeError),  # type: ignore[arg-type]
    ("burst 0", lambda: Limiter(Tier("a", 1, 0)), TollgateError),
    ("burst negative", lambda: Limiter(Tier("a", 1, -1)), ValueError),
    ("burst 2**32", lambda: Limiter(Tier("a", 1, 2**32)), ValueError),
    ("burst float", lambda: Limiter(Tier("a", 1, 1.5)), TypeError),  # type: ignore[arg-type]
    ("burst NaN", lambda: Limiter(Tier("a", 1, NAN)), ValueError),  # type: ignore[arg-type]
    ("capacity 0", lambda: Limiter(capacity=0), TollgateError),
    ("capacity huge", lambda: Limiter(capacity=2**26 + 1), TollgateError),
    ("capacity negative", lambda: Limiter(capacity=-1), ValueError),
    ("capacity str", lambda: Limiter(capacity="10"), TypeError),  # type: ignore[arg-type]
    ("on_full unknown", lambda: Limiter(on_full="drop"), ValueError),
    ("multiplier 0", lambda: Limiter(multiplier=0.0), TollgateError),
    ("multiplier NaN", lambda: Limiter(multiplier=NAN), ValueError),
    ("multiplier inf", lambda: Limiter(multiplier=INF), TollgateError),
    ("parent not Limiter", lambda: Limiter(parent="p"), TypeError),  # type: ignore[arg-type]
    ("shadow str", lambda: Limiter(shadow="yes"), TypeError),  # type: ignore[arg-type]
    # decisions
    ("acquire key int", lambda: lim().acquire(123), TypeError),  # type: ignore[arg-type]
    ("acquire key None", lambda: lim().acquire(None), TypeError),  # type: ignore[arg-type]
    ("acquire cost 0", lambda: lim().acquire(b"k", 0, now_ns=T0), InvalidArgumentError),
    ("acquire cost negative", lambda: lim().acquire(b"k", -1, now_ns=T0), ValueError),
    ("acquire cost float", lambda: lim().acquire(b"k", 1.5, now_ns=T0), TypeError),  # type: ignore[arg-type]
    ("acquire cost NaN", lambda: lim().acquire(b"k", NAN, now_ns=T0), ValueError),  # type: ignore[arg-type]
    ("acquire cost 2**32", lambda: lim().acquire(b"k", 2**32, now_ns=T0), ValueError),
    ("acquire tier out of range", lambda: lim().acquire(b"k", tier=2, now_ns=T0), InvalidArgumentError),
    ("acquire tier huge", lambda: lim().acquire(b"k", tier=2**40, now_ns=T0), ValueError),
    ("acquire tier negative", lambda: lim().acquire(b"k", tier=-1, now_ns=T0), ValueError),
    ("acquire tier unknown", lambda: lim().acquire(b"k", tier="vip", now_ns=T0), NotFoundError),
    ("acquire tier float", lambda: lim().acquire(b"k", tier=1.0, now_ns=T0), TypeError),  # type: ignore[arg-type]
    ("acquire now negative", lambda: lim().acquire(b"k", now_ns=-1), ValueError),
    ("acquire now 2**64", lambda: lim().acquire(b"k", now_ns=2**64), ValueError),
    ("acquire now float", lambda: lim().acquire(b"k", now_ns=1.5), TypeError),  # type: ignore[arg-type]
    ("acquire now NaN", lambda: lim().acquire(b"k", now_ns=NAN), ValueError),  # type: ignore[arg-type]
    ("peek cost 0", lambda: lim().peek(b"k", 0, now_ns=T0), InvalidArgumentError),
    ("peek key list", lambda: lim().peek([b"k"]), TypeError),  # type: ignore[arg-type]
    ("peek tier out of range", lambda: lim().peek(b"k", tier=7, now_ns=T0), InvalidArgumentError),
    ("peek now negative", lambda: lim().peek(b"k", now_ns=-5), ValueError),
    ("remaining key float", lambda: lim().remaining(1.0), TypeError),  # type: ignore[arg-type]
    ("remaining tier unknown", lambda: lim().remaining(b"k", tier="zz"), NotFoundError),
    ("remaining tier out of range", lambda: lim().remaining(b"k", tier=9, now_ns=T0), InvalidArgumentError),
    ("remaining now negative", lambda: lim().remaining(b"k", now_ns=-1), ValueError),
    ("reserve cost 0", lambda: lim().reserve(b"k", 0, now_ns=T0), InvalidArgumentError),
    ("reserve cost str", lambda: lim().reserve(b"k", "1", now_ns=T0), TypeError),  # type: ignore[arg-type]
    ("reserve tier out of range", lambda: lim().reserve(b"k", tier=3, now_ns=T0), InvalidArgumentError),
    ("cancel now negative", lambda: lim().reserve(b"k", now_ns=T0).cancel(now_ns=-1), ValueError),
    # batches
    ("many keys bytes", lambda: lim().acquire_many(b"abc"), TypeError),
    ("many keys str", lambda: lim().acquire_many("abc"), TypeError),
    ("many keys ints", lambda: lim().acquire_many([1, 2]), TypeError),  # type: ignore[list-item]
    ("many keys None", lambda: lim().acquire_many(None), TypeError),  # type: ignore[arg-type]
    ("many costs short", lambda: lim().acquire_many([b"a", b"b"], [1]), InvalidArgumentError),
    ("many costs zero", lambda: lim().acquire_many([b"a"], [0], now_ns=T0), InvalidArgumentError),
    ("many costs negative", lambda: lim().acquire_many([b"a"], [-1]), ValueError),
    ("many costs float", lambda: lim().acquire_many([b"a"], [1.0]), TypeError),  # type: ignore[list-item]
    ("many costs str", lambda: lim().acquire_many([b"a"], "1"), TypeError),  # type: ignore[arg-type]
    ("many tiers unknown", lambda: lim().acquire_many([b"a"], tiers=["zz"]), NotFoundError),
    ("many tiers out of range", lambda: lim().acquire_many([b"a"], tiers=[2], now_ns=T0), InvalidArgumentError),
    ("many tiers long", lambda: lim().acquire_many([b"a"], tiers=[0, 1]), InvalidArgumentError),
    ("many tier negative", lambda: lim().acquire_many([b"a"], tiers=-1), ValueError),
    ("many now negative", lambda: lim().acquire_many([b"a"], now_ns=-1), ValueError),
    ("many now float", lambda: lim().acquire_many([b"a"], now_ns=0.5), TypeError),  # type: ignore[arg-type]
    ("packed keys ints", lambda: PackedKeys([1]), TypeError),  # type: ignore[list-item]
    # settings
    ("tier_index int", lambda: lim().tier_index(0), TypeError),  # type: ignore[arg-type]
    ("tier_index NUL", lambda: lim().tier_index("a\0"), ValueError),
    ("tier_index unknown", lambda: lim().tier_index("nope"), NotFoundError),
    ("multiplier negative", lambda: setattr(lim(), "multiplier", -2.0), TollgateError),
    ("multiplier huge", lambda: setattr(lim(), "multiplier", 1e7), TollgateError),
    ("multiplier None", lambda: setattr(lim(), "multiplier", None), TypeError),
    ("set_multiplier NaN", lambda: lim().set_multiplier(NAN, T0), ValueError),
    ("set_multiplier zero", lambda: lim().set_multiplier(0.0, T0), TollgateError),
    ("set_multiplier now float", lambda: lim().set_multiplier(1.0, 1.5), TypeError),  # type: ignore[arg-type]
    ("shadow None", lambda: setattr(lim(), "shadow", None), TypeError),
]

BREAKER_CASES: List[Case] = [
    ("window_type unknown", lambda: Breaker(window_type="sliding"), ValueError),
    ("window_type float", lambda: Breaker(window_type=1.0), TypeError),  # type: ignore[arg-type]
    ("window_type 7", lambda: Breaker(window_type=7), TollgateError),
    ("window_size 0", lambda: Breaker(window_size=0), TollgateError),
    ("window_size huge", lambda: Breaker(window_size=65537, minimum_calls=1), TollgateError),
    ("time buckets > 256", lambda: Breaker(window_type="time", window_size=257, minimum_calls=1), TollgateError),
    ("window_size negative", lambda: Breaker(window_size=-1), ValueError),
    ("window_size str", lambda: Breaker(window_size="10"), TypeError),  # type: ignore[arg-type]
    ("minimum_calls 0", lambda: Breaker(minimum_calls=0), TollgateError),
    ("bucket_ns 0", lambda: Breaker(window_type="time", bucket_ns=0), TollgateError),
    ("failure threshold 0", lambda: Breaker(failure_rate_threshold=0), TollgateError),
    ("failure threshold 101", lambda: Breaker(failure_rate_threshold=101), TollgateError),
    ("failure threshold NaN", lambda: Breaker(failure_rate_threshold=NAN), ValueError),
    ("slow threshold -1", lambda: Breaker(slow_rate_threshold=-1), TollgateError),
    ("slow_call_ns negative", lambda: Breaker(slow_call_ns=-1), ValueError),
    ("open_ns 0", lambda: Breaker(open_ns=0), TollgateError),
    ("open_ns 2**64", lambda: Breaker(open_ns=2**64), ValueError),
    ("backoff below 1", lambda: Breaker(backoff_multiplier=0.5), TollgateError),
    ("backoff inf", lambda: Breaker(backoff_multiplier=INF), TollgateError),
    ("probes 0", lambda: Breaker(half_open_probes=0), TollgateError),
    ("probes 2000", lambda: Breaker(half_open_probes=2000), TollgateError),
    ("max_in_flight negative", lambda: Breaker(max_in_flight=-1), ValueError),
    ("name not str", lambda: Breaker(name=5), TypeError),  # type: ignore[arg-type]
    ("acquire now negative", lambda: brk().acquire(-1), ValueError),
    ("acquire now str", lambda: brk().acquire("now"), TypeError),  # type: ignore[arg-type]
    ("acquire now 2**64", lambda: brk().acquire(2**64), ValueError),
    ("record None", lambda: brk().record(None, 0, 0, T0), TypeError),  # type: ignore[arg-type]
    ("record a tuple", lambda: brk().record((1, 1), 0, 0, T0), TypeError),  # type: ignore[arg-type]
    ("record outcome 7", lambda: (lambda b: b.record(b.acquire(T0), 7, 0, T0))(brk()), InvalidArgumentError),
    ("record outcome -1", lambda: (lambda b: b.record(b.acquire(T0), -1, 0, T0))(brk()), InvalidArgumentError),
    ("record outcome huge", lambda: (lambda b: b.record(b.acquire(T0), 2**40, 0, T0))(brk()), ValueError),
    ("record outcome name", lambda: (lambda b: b.record(b.acquire(T0), "maybe", 0, T0))(brk()), ValueError),
    ("record outcome float", lambda: (lambda b: b.record(b.acquire(T0), 0.0, 0, T0))(brk()), TypeError),
    ("record latency negative", lambda: (lambda b: b.record(b.acquire(T0), 0, -1, T0))(brk()), ValueError),
    ("record latency float", lambda: (lambda b: b.record(b.acquire(T0), 0, 1.5, T0))(brk()), TypeError),
    ("record now negative", lambda: (lambda b: b.record(b.acquire(T0), 0, 0, -1))(brk()), ValueError),
    ("acquire_many negative", lambda: brk().acquire_many(-1), ValueError),
    ("acquire_many str", lambda: brk().acquire_many("3"), TypeError),  # type: ignore[arg-type]
    ("acquire_many now negative", lambda: brk().acquire_many(1, now_ns=-1), ValueError),
    ("record_many short", lambda: (lambda b: b.record_many(b.acquire_many(2, T0), [0], now_ns=T0))(brk()), InvalidArgumentError),
    ("record_many outcome 9", lambda: (lambda b: b.record_many(b.acquire_many(2, T0), [0, 9], now_ns=T0))(brk()), InvalidArgumentError),
    ("record_many outcome name", lambda: (lambda b: b.record_many(b.acquire_many(1, T0), ["maybe"], now_ns=T0))(brk()), ValueError),
    ("record_many latencies short", lambda: (lambda b: b.record_many(b.acquire_many(2, T0), 0, [1], now_ns=T0))(brk()), InvalidArgumentError),
    ("record_many latencies negative", lambda: (lambda b: b.record_many(b.acquire_many(1, T0), 0, [-1], now_ns=T0))(brk()), ValueError),
    ("record_many not permits", lambda: brk().record_many([1, 2], 0, now_ns=T0), TypeError),  # type: ignore[list-item]
    ("record_many one permit", lambda: (lambda b: b.record_many(b.acquire(T0), 0))(brk()), TypeError),
    ("record_many now negative", lambda: (lambda b: b.record_many(b.acquire_many(1, T0), 0, now_ns=-1))(brk()), ValueError),
    ("transition unknown name", lambda: brk().transition("ajar"), ValueError),
    ("transition 99", lambda: brk().transition(99, T0), InvalidArgumentError),
    ("transition -1", lambda: brk().transition(-1, T0), InvalidArgumentError),
    ("transition huge", lambda: brk().transition(2**40, T0), ValueError),
    ("transition float", lambda: brk().transition(1.0), TypeError),  # type: ignore[arg-type]
    ("transition now negative", lambda: brk().transition("open", -1), ValueError),
    ("on_event not callable", lambda: brk().on_event(5), TypeError),  # type: ignore[arg-type]
    ("stats now negative", lambda: brk().stats(-1), ValueError),
    ("call ignore list", lambda: brk().call(ignore=[KeyError]), TypeError),  # type: ignore[arg-type]
    ("permit constructed", lambda: tollgate.Permit(), TypeError),
]


@pytest.mark.parametrize("name,fn,exc", LIMITER_CASES + BREAKER_CASES, ids=lambda v: v if isinstance(v, str) else "")
def test_bad_input_raises(name: str, fn: Callable[[], Any], exc: Type[BaseException]) -> None:
    with pytest.raises(exc) as info:
        fn()
    assert str(info.value), f"{name}: empty message"
    if isinstance(info.value, TollgateError):
        e = info.value
        assert e.code < 0 and e.status.startswith("TG_E") and e.message
        assert e.status == tollgate.status_str(e.code)


def test_library_errors_carry_code_status_and_message() -> None:
    with pytest.raises(TollgateError) as info:
        Limiter([Tier("a", 1, 1), Tier("a", 2, 2)])
    e = info.value
    assert isinstance(e, InvalidArgumentError) and isinstance(e, ValueError)
    assert e.code == lib.TG_EINVAL and e.status == "TG_EINVAL"
    assert "duplicate" in e.message  # the library's tg_error text
    assert str(e) == f"TG_EINVAL: {e.message}"
    again = pickle.loads(pickle.dumps(e))
    assert type(again) is InvalidArgumentError and again.code == e.code and again.message == e.message
    with pytest.raises(TollgateError) as info:
        Limiter(Tier("a", 2e9, 1))
    assert info.value.code in (lib.TG_EINVAL, lib.TG_ERANGE) and "rate" in info.value.message


def test_status_names() -> None:
    names = {c: tollgate.status_str(c) for c in range(-8, 1)}
    assert names[0] == "TG_OK" and names[-1] == "TG_EINVAL" and names[-8] == "TG_EINTERNAL"
    assert tollgate.status_str(-999) == "TG_UNKNOWN"
    assert TollgateError(-7).status == "TG_ESTATE"
    assert isinstance(tollgate.errors.error_for(-7), StateError)
    assert isinstance(tollgate.errors.error_for(-6), NotFoundError)
    assert type(tollgate.errors.error_for(-2)) is TollgateError


def test_version_compatibility_rule() -> None:
    from tollgate._lib import version_compatible

    assert version_compatible(100, 100)  # 0.1.0 with 0.1.0
    assert version_compatible(100, 101)  # a newer patch
    assert not version_compatible(100, 200)  # 0.2 may break 0.1's ABI
    assert not version_compatible(101, 100)  # older than the header
    assert version_compatible(10100, 10300)  # 1.3 serves 1.1
    assert not version_compatible(10100, 20000)


def test_version_matches_the_header() -> None:
    assert lib.tg_version_number() == tollgate.HEADER_VERSION_NUMBER == lib.TG_VERSION_NUMBER
    major, minor, patch = (int(x) for x in tollgate.LIBRARY_VERSION.split("."))
    assert major * 10000 + minor * 100 + patch == tollgate.HEADER_VERSION_NUMBER


def _closed_limiter() -> Limiter:
    lim = Limiter(Tier("a", 10, 5))
    lim.close()
    return lim


def _closed_breaker() -> Breaker:
    b = Breaker()
    b.close()
    return b


CLOSED_CALLS: List[Tuple[str, Callable[[Any], Any]]] = [
    ("acquire", lambda l: l.acquire(b"k", now_ns=T0)),
    ("peek", lambda l: l.peek(b"k", now_ns=T0)),
    ("remaining", lambda l: l.remaining(b"k", now_ns=T0)),
    ("reserve", lambda l: l.reserve(b"k", now_ns=T0)),
    ("acquire_many", lambda l: l.acquire_many([b"k"], now_ns=T0)),
    ("tier_index", lambda l: l.tier_index("a")),
    ("get multiplier", lambda l: l.multiplier),
    ("set multiplier", lambda l: setattr(l, "multiplier", 2.0)),
    ("set_multiplier", lambda l: l.set_multiplier(2.0, T0)),
    ("get shadow", lambda l: l.shadow),
    ("set shadow", lambda l: setattr(l, "shadow", True)),
    ("stats", lambda l: l.stats()),
    ("as parent", lambda l: Limiter(parent=l)),
]

CLOSED_BREAKER_CALLS: List[Tuple[str, Callable[[Any], Any]]] = [
    ("acquire", lambda b: b.acquire(T0)),
    ("acquire_many", lambda b: b.acquire_many(3, T0)),
    ("state", lambda b: b.state),
    ("transition", lambda b: b.transition("open", T0)),
    ("on_event", lambda b: b.on_event(print)),
    ("stats", lambda b: b.stats(T0)),
    ("call", lambda b: b.call().__enter__()),
]


@pytest.mark.parametrize("name,fn", CLOSED_CALLS, ids=[c[0] for c in CLOSED_CALLS])
def test_closed_limiter_raises(name: str, fn: Callable[[Any], Any]) -> None:
    with pytest.raises(InvalidArgumentError, match="closed"):
        fn(_closed_limiter())


@pytest.mark.parametrize("name,fn", CLOSED_BREAKER_CALLS, ids=[c[0] for c in CLOSED_BREAKER_CALLS])
def test_closed_breaker_raises(name: str, fn: Callable[[Any], Any]) -> None:
    with pytest.raises(InvalidArgumentError, match="closed"):
        fn(_closed_breaker())


def test_closed_objects_with_pending_permits_and_reservations() -> None:
    lim = Limiter(Tier("a", 10, 5))
    res = lim.reserve(b"k", now_ns=T0)
    lim.close()
    with pytest.raises(InvalidArgumentError, match="closed"):
        res.cancel(T0)
    b = Breaker()
    batch = b.acquire_many(2, T0)
    permit = b.acquire(T0)
    b.close()
    with pytest.raises(InvalidArgumentError, match="closed"):
        b.record(permit, "success", 0, T0)
    with pytest.raises(InvalidArgumentError, match="closed"):
        b.record_many(batch, "success", now_ns=T0)
    assert not permit.recorded and not batch.recorded
    with Limiter() as l2:
        pass
    assert l2.closed and "closed" in repr(l2)
