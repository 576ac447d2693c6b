"""The price cache through the binding, with an injected clock: the cases of
tests/unit/price_cache_test.cpp (thresholds at and around the limit in bps
and ticks, per-entry overrides, feed sequence gaps, replays and wrap, age and
expire, capacity by CLOCK, volatility widening, bad prices and keys, torn
reads under threads) plus the binding's own: key forms, errors carrying the C
status, closed caches, batches and the on_evict callback."""

from __future__ import annotations

import gc
import math
import random
import threading
import time
import weakref
from typing import Any, List, Tuple

import pytest
from conftest import SECOND, T0

import tollgate
from tollgate import (
    CachedPrice,
    EvictionEvent,
    EvictReason,
    InvalidArgumentError,
    PriceBatch,
    PriceCache,
    PriceOutcome,
    PriceResult,
    ThresholdUnit,
)
from tollgate._native import lib

KEPT = PriceResult(PriceOutcome.KEPT, EvictReason.NONE)
REPLAY = PriceResult(PriceOutcome.REPLAY, EvictReason.NONE)
NOT_CACHED = PriceResult(PriceOutcome.NOT_CACHED, EvictReason.NONE)
MOVED = PriceResult(PriceOutcome.EVICTED, EvictReason.PRICE_MOVE)
GAP = PriceResult(PriceOutcome.EVICTED, EvictReason.SEQUENCE_GAP)
AGED = PriceResult(PriceOutcome.EVICTED, EvictReason.AGE)
TOP = 2**64 - 1
NAN = float("nan")
INF = float("inf")


def cached(c: PriceCache, key: Any, now: int = T0) -> bool:
    return c.get(key, now) is not None


def assert_einval(exc: pytest.ExceptionInfo[InvalidArgumentError]) -> None:
    assert exc.value.code == lib.TG_EINVAL and exc.value.status == "TG_EINVAL"


# -- put and get ----------------------------------------------------------------


def test_put_then_get_returns_the_price_and_the_payload() -> None:
    c = PriceCache()
    c.put("AAPL", 189.25, 7, b"bid 189.24 ask 189.26", now_ns=100)
    got = c.get("AAPL", 150)
    assert got == CachedPrice(189.25, 10.0, 7, 100, 50, b"bid 189.24 ask 189.26")
    assert isinstance(got, CachedPrice)
    assert got.age_ns == 50 and got.payload == b"bid 189.24 ask 189.26"
    assert c.get("MSFT", 150) is None
    # Re-caching replaces the price, payload and sequence.
    c.put("AAPL", 190.0, 20, b"x", now_ns=200)
    assert c.get("AAPL", 200) == CachedPrice(190.0, 10.0, 20, 200, 0, b"x")
    # Time stepping back never makes an entry older (age 0).
    assert c.get("AAPL", 10).age_ns == 0
    assert c.stats().entries == 1


def test_key_forms_str_bytes_and_int_ids() -> None:
    c = PriceCache()
    c.put("EUR/USD", 1.0842, 1, now_ns=T0)
    assert c.get(b"EUR/USD", T0).price == 1.0842
    assert c.get(bytearray(b"EUR/USD"), T0).price == 1.0842
    assert c.get(memoryview(b"EUR/USD"), T0).price == 1.0842
    c.put("Société", 12.5, 1, now_ns=T0)  # UTF-8
    assert c.get("Société".encode("utf-8"), T0).price == 12.5
    # Numeric ids are 8 little-endian bytes.
    c.put(1234567, 10.5, 1, now_ns=T0)
    assert c.get((1234567).to_bytes(8, "little"), T0).price == 10.5
    assert PriceCache.encode_key(1234567) == (1234567).to_bytes(8, "little")
    c.put(0, 1.5, 1, now_ns=T0)
    c.put(TOP, 2.5, 1, now_ns=T0)
    assert c.get(0, T0).price == 1.5 and c.get(TOP, T0).price == 2.5
    assert c.get(b"\x05", T0) is None
    c.put(5, 3.0, 1, now_ns=T0)
    assert c.get(b"\x05", T0) is None  # 5 is b"\x05\0\0\0\0\0\0\0", not b"\x05"
    events: List[EvictionEvent] = []
    c.on_evict(events.append)
    assert c.remove(1234567, T0)
    assert events[0].key == (1234567).to_bytes(8, "little")
    assert int.from_bytes(events[0].key, "little") == 1234567


def test_payload_is_returned_whole_up_to_max_payload() -> None:
    big = PriceCache(max_payload=1024)
    data = bytes(range(256)) * 4
    big.put("K", 1.0, 1, data, now_ns=T0)
    assert big.get("K", T0).payload == data
    big.put("K", 1.0, 2, bytearray(b"short"), now_ns=T0)
    assert big.get("K", T0).payload == b"short"
    big.put("K", 1.0, 3, "text é", now_ns=T0)  # str payloads are UTF-8
    assert big.get("K", T0).payload == "text é".encode()
    none = PriceCache(max_payload=0)
    none.put("K", 1.0, 1, now_ns=T0)
    assert none.get("K", T0).payload == b""
    with pytest.raises(InvalidArgumentError) as e:
        none.put("K", 1.0, 1, b"x", now_ns=T0)
    assert e.value.code == lib.TG_ERANGE
    small = PriceCache(max_payload=8)
    small.put("K", 1.0, 1, b"12345678", now_ns=T0)
    assert small.get("K", T0).payload == b"12345678"
    assert small.max_payload == 8 and big.max_payload == 1024


# -- thresholds -----------------------------------------------------------------


def test_bps_threshold_exactly_at_keeps_one_tick_beyond_evicts() -> None:
    c = PriceCache(threshold=10)
    seq = 1
    c.put("X", 100.00, seq, now_ns=T0)
    for price in (100.10, 99.90, 100.09):  # +10 bps exactly, -10 bps exactly, inside
        seq += 1
        assert c.on_price("X", price, seq, T0) == KEPT, price
    seq += 1
    r = c.on_price("X", 100.11, seq, T0)
    assert r == MOVED and r.evicted
    assert not cached(c, "X")
    c.put("Y", 100.00, 1, now_ns=T0)
    assert c.on_price("Y", 99.89, 2, T0) == MOVED  # one tick below -10 bps
    # The move is measured from the cached price, not the last tick.
    c.put("Z", 100.00, 1, now_ns=T0)
    assert c.on_price("Z", 100.06, 2, T0) == KEPT
    assert c.on_price("Z", 100.10, 3, T0) == KEPT
    assert c.on_price("Z", 100.11, 4, T0) == MOVED
    # A per-entry threshold overrides the default.
    c.put("W", 50.0, 1, now_ns=T0, threshold=2.0)
    assert c.get("W", T0).threshold == 2.0
    assert c.on_price("W", 50.01, 2, T0) == KEPT  # 2 bps
    assert c.on_price("W", 50.02, 3, T0) == MOVED
    assert c.stats().evicted_price_move == 4


@pytest.mark.parametrize(
    "price, outcome",
    [(100.05, KEPT), (99.95, KEPT), (100.04, KEPT), (99.96, KEPT), (100.06, MOVED), (99.94, MOVED)],
)
def test_tick_threshold_exactly_at_keeps_one_tick_either_side(price: float, outcome: PriceResult) -> None:
    c = PriceCache(unit="ticks", threshold=5, tick_size=0.01)
    assert c.unit is ThresholdUnit.TICKS
    c.put("T", 100.00, 1, now_ns=T0)
    assert c.on_price("T", price, 2, T0) == outcome


@pytest.mark.parametrize(
    "threshold, price, outcome",
    [(0, 1000.25, MOVED), (2, 1001.25, MOVED), (2, 1000.75, KEPT), (3, 1001.75, MOVED)],
)
def test_half_tick_moves_round_away_from_zero(threshold: int, price: float, outcome: PriceResult) -> None:
    # Mid prices sit on half ticks: 0.5, 1.5, 2.5 and 3.5 ticks count as 1, 2, 3 and 4.
    c = PriceCache(unit="ticks", threshold=threshold, tick_size=0.5)
    c.put("B", 1000.0, 1, now_ns=T0)
    assert c.on_price("B", price, 2, T0) == outcome


def test_tick_threshold_per_entry_tick_size_and_zero_threshold() -> None:
    c = PriceCache(unit=ThresholdUnit.TICKS, threshold=5, tick_size=0.01)
    c.put("B", 1000.0, 1, now_ns=T0, threshold=2, tick_size=0.5)
    assert c.on_price("B", 1001.0, 2, T0) == KEPT  # 2 ticks of 0.5
    assert c.on_price("B", 1001.5, 3, T0) == MOVED  # 3 ticks
    # Threshold 0: any move evicts, no move keeps.
    c.put("Z", 10.0, 1, now_ns=T0, threshold=0)
    assert c.on_price("Z", 10.0, 2, T0) == KEPT
    assert c.on_price("Z", 10.01, 3, T0) == MOVED
    # The same in bps.
    b = PriceCache(unit="BPS", threshold=0)
    b.put("Z", 10.0, 1, now_ns=T0)
    assert b.on_price("Z", 10.0, 2, T0) == KEPT
    assert b.on_price("Z", 10.001, 3, T0) == MOVED


def test_bad_per_entry_overrides_are_refused_with_the_c_status() -> None:
    c = PriceCache()
    for kwargs in (dict(threshold=-1), dict(threshold=INF), dict(tick_size=0),
                   dict(tick_size=-0.01), dict(tick_size=INF)):
        with pytest.raises(InvalidArgumentError) as e:
            c.put("P", 1.0, 1, now_ns=T0, **kwargs)  # type: ignore[arg-type]
        assert e.value.code == lib.TG_ERANGE, kwargs
        assert "threshold" in e.value.message or "tick_size" in e.value.message
    # NaN would silently mean "the default" in C: the binding refuses it.
    for kwargs in (dict(threshold=NAN), dict(tick_size=NAN)):
        with pytest.raises(InvalidArgumentError) as e:
            c.put("P", 1.0, 1, now_ns=T0, **kwargs)  # type: ignore[arg-type]
        assert_einval(e)
    with pytest.raises(TypeError):
        c.put("P", 1.0, 1, now_ns=T0, threshold="5")  # type: ignore[arg-type]
    assert c.get("P", T0) is None


# -- the feed sequence ----------------------------------------------------------------


def test_sequence_gaps_evict_replays_are_ignored_wrap_is_in_order() -> None:
    c = PriceCache()
    c.put("S", 10.0, 100, now_ns=T0)
    assert c.on_price("S", 10.0, 101, T0) == KEPT
    assert c.on_price("S", 10.0, 101, T0) == REPLAY  # duplicate
    assert c.on_price("S", 10.0, 50, T0) == REPLAY  # older
    assert c.get("S", T0).feed_seq == 101
    assert c.on_price("S", 10.0, 103, T0) == GAP  # 102 missed
    c.put("W", 10.0, TOP - 1, now_ns=T0)
    assert c.on_price("W", 10.0, TOP, T0) == KEPT
    assert c.on_price("W", 10.0, 0, T0) == KEPT  # wrapped
    assert c.get("W", T0).feed_seq == 0
    assert c.on_price("W", 10.0, TOP, T0) == REPLAY
    assert c.on_price("W", 10.0, 2, T0) == GAP
    assert c.on_price("nope", 10.0, 1, T0) == NOT_CACHED
    # Less than 2**63 behind is a replay; exactly 2**63 away is a gap.
    c.put("H", 10.0, 10, now_ns=T0)
    assert c.on_price("H", 10.0, (10 - 2**63 + 1) % 2**64, T0) == REPLAY
    assert c.on_price("H", 10.0, 10 + 2**63, T0) == GAP
    c.put("H", 10.0, 2**63, now_ns=T0)
    assert c.on_price("H", 10.0, 0, T0) == GAP
    s = c.stats()
    assert (s.replays, s.evicted_sequence_gap, s.not_cached) == (4, 4, 1)


# -- age ----------------------------------------------------------------------------


def test_age_stale_reads_miss_the_next_tick_or_expire_evicts() -> None:
    events: List[EvictionEvent] = []
    c = PriceCache(max_age_ns=5 * SECOND, on_evict=events.append)
    c.put("A", 10.0, 1, now_ns=T0)
    c.put("B", 10.0, 1, now_ns=T0)
    c.put("C", 10.0, 1, now_ns=T0 + 3 * SECOND)
    assert cached(c, "A", T0 + 5 * SECOND)  # exactly at the limit: still fresh
    assert not cached(c, "A", T0 + 5 * SECOND + 1)
    assert c.stats().stale_misses == 1
    assert c.on_price("A", 10.0, 2, T0 + 6 * SECOND) == AGED
    assert c.expire(T0 + 6 * SECOND) == 1  # B; C is 3 s old
    assert cached(c, "C", T0 + 6 * SECOND)
    assert c.stats().evicted_age == 2
    assert [(e.reason, e.key) for e in events] == [(EvictReason.AGE, b"A"), (EvictReason.AGE, b"B")]
    assert events[0].new_price == 10.0 and events[0].feed_seq == 2
    assert events[1].feed_seq == 1 and events[1].now_ns == T0 + 6 * SECOND
    # Time stepping backwards never makes an entry older.
    assert cached(c, "C", 0)
    assert c.expire(0) == 0
    # max_age_ns=0: no age limit.
    forever = PriceCache(max_age_ns=0)
    forever.put("A", 1.0, 1, now_ns=0)
    assert cached(forever, "A", TOP)
    assert forever.expire(TOP) == 0


# -- capacity --------------------------------------------------------------------------


def test_capacity_clock_keeps_recently_read_entries_and_reports_evictions() -> None:
    events: List[EvictionEvent] = []
    c = PriceCache(capacity=7, on_evict=events.append)  # 8 slots: one group
    assert c.stats().slots == 8
    for i in range(8):
        c.put(f"K{i}", 1.0 + i, 1, now_ns=T0)
    assert c.stats().entries == 8
    for i in range(8):
        if i != 5:
            assert cached(c, f"K{i}")
    c.put("NEW", 9.0, 77, now_ns=T0 + 1)
    # Not a tick: the event carries the victim's own price and sequence.
    assert events == [EvictionEvent(EvictReason.CAPACITY, b"K5", 6.0, 6.0, 1, T0 + 1)]
    assert not cached(c, "K5") and cached(c, "NEW")
    assert c.stats().entries == 8 and c.stats().evicted_capacity == 1
    assert c.remove("NEW", T0 + 2)
    assert not c.remove("NEW", T0 + 2)
    assert events[-1] == EvictionEvent(EvictReason.REMOVED, b"NEW", 9.0, 9.0, 77, T0 + 2)
    s = c.stats()
    assert (s.entries, s.evicted_removed) == (7, 1)


# -- volatility -------------------------------------------------------------------------


def test_the_threshold_widens_with_realised_volatility() -> None:
    c = PriceCache(threshold=10, vol_multiplier=2, vol_alpha=0.5)
    c.put("V", 100.0, 1, now_ns=T0)
    assert c.on_price("V", 100.05, 2, T0) == KEPT
    r1 = math.log(100.05 / 100.0)
    var = 0.5 * r1 * r1
    assert c.get("V", T0).threshold == pytest.approx(max(10.0, 2 * math.sqrt(var) * 1e4))
    # Swings inside the base threshold raise the estimate until a 30 bps
    # move, which a fixed 10 bps threshold would evict, is kept.
    p, seq = 100.05, 2
    for i in range(12):
        nxt = 99.91 if i % 2 == 0 else 100.09
        seq += 1
        assert c.on_price("V", nxt, seq, T0) == KEPT
        r = math.log(nxt / p)
        var = 0.5 * var + 0.5 * r * r
        p = nxt
    thr = c.get("V", T0).threshold
    assert thr == pytest.approx(2 * math.sqrt(var) * 1e4) and thr > 30
    seq += 1
    assert c.on_price("V", 100.30, seq, T0) == KEPT  # 30 bps
    fixed = PriceCache(threshold=10, vol_multiplier=0, vol_alpha=0.5)
    fixed.put("V", 100.0, 1, now_ns=T0)
    assert fixed.on_price("V", 100.30, 2, T0) == MOVED
    # Tick thresholds widen by the same bps, in ticks of the cached price.
    t = PriceCache(unit="ticks", threshold=5, tick_size=0.01, vol_multiplier=2, vol_alpha=0.5)
    t.put("V", 100.0, 1, now_ns=T0)
    assert t.on_price("V", 100.05, 2, T0) == KEPT  # 5 ticks
    vol_bps = 2 * math.sqrt(0.5 * r1 * r1) * 1e4
    assert vol_bps * 1e-4 * 100.0 / 0.01 > 7  # ticks: wider than the base 5
    assert t.get("V", T0).threshold == pytest.approx(vol_bps * 1e-4 * 100.0 / 0.01)


# -- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [NAN, INF, -INF, 0.0, -1.0, -0.0])
def test_bad_prices_are_refused_with_the_c_status_and_change_nothing(bad: float) -> None:
    c = PriceCache()
    c.put("P", 10.0, 1, now_ns=T0)
    with pytest.raises(InvalidArgumentError) as e:
        c.put("Q", bad, 1, now_ns=T0)
    assert_einval(e)
    assert "price" in e.value.message  # the library's own message (tg_error)
    with pytest.raises(InvalidArgumentError) as e:
        c.on_price("P", bad, 2, T0)
    assert_einval(e)
    assert "price must be finite and > 0" in str(e.value)
    with pytest.raises(InvalidArgumentError) as e:
        c.on_price_many([("P", 10.0, 2), ("P", bad, 3)], T0)
    assert_einval(e)
    assert "ticks[1]" in e.value.message
    assert not cached(c, "Q")
    assert c.on_price("P", 10.0, 2, T0) == KEPT  # the sequence did not move
    assert c.stats().puts == 1


@pytest.mark.parametrize("key", [b"", "", b"k" * 33, "k" * 33, "é" * 17])
def test_keys_outside_1_to_32_bytes_are_refused_with_the_c_status(key: Any) -> None:
    c = PriceCache()
    with pytest.raises(InvalidArgumentError) as e:
        c.put(key, 1.0, 1, now_ns=T0)
    assert_einval(e)
    assert "1..32 bytes" in e.value.message
    for call in (lambda: c.get(key, T0), lambda: c.on_price(key, 1.0, 1, T0),
                 lambda: c.remove(key, T0), lambda: c.on_price_many([(key, 1.0, 1)], T0)):
        with pytest.raises(InvalidArgumentError) as e:
            call()
        assert_einval(e)
        assert "1..32 bytes" in e.value.message
    c.put(b"k" * 32, 1.0, 1, now_ns=T0)  # 32 is the limit
    assert cached(c, "k" * 32)


def test_keys_of_the_wrong_kind() -> None:
    c = PriceCache()
    for key in (-1, 2**64):
        for call in (lambda: c.put(key, 1.0, 1, now_ns=T0), lambda: c.get(key, T0),
                     lambda: c.on_price(key, 1.0, 1, T0), lambda: c.remove(key, T0),
                     lambda: c.on_price_many([(key, 1.0, 1)], T0)):
            with pytest.raises(InvalidArgumentError) as e:
                call()
            assert_einval(e)
    for key in (1.0, True, None, ("a",), object()):
        for call in (lambda: c.put(key, 1.0, 1, now_ns=T0), lambda: c.get(key, T0),
                     lambda: c.on_price(key, 1.0, 1, T0), lambda: c.remove(key, T0),
                     lambda: c.on_price_many([(key, 1.0, 1)], T0)):
            with pytest.raises(TypeError):
                call()
    assert c.stats().puts == 0


def test_other_bad_arguments() -> None:
    c = PriceCache()
    with pytest.raises(TypeError):
        c.put("P", "1.0", 1, now_ns=T0)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        c.on_price("P", None, 1, T0)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        c.put("P", 1.0, -1, now_ns=T0)
    with pytest.raises(InvalidArgumentError):
        c.put("P", 1.0, 2**64, now_ns=T0)
    with pytest.raises(TypeError):
        c.put("P", 1.0, 1.5, now_ns=T0)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        c.on_price("P", 1.0, 1, -5)
    with pytest.raises(InvalidArgumentError):
        c.get("P", -5)
    with pytest.raises(InvalidArgumentError):
        c.expire(-5)
    with pytest.raises(TypeError):
        c.put("P", 1.0, 1, 42, now_ns=T0)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError) as e:
        c.put("P", 1.0, 1, b"x" * 65, now_ns=T0)  # payload too long
    assert e.value.code == lib.TG_ERANGE and e.value.status == "TG_ERANGE"
    assert "max_payload" in e.value.message
    assert c.stats().puts == 0


def test_bad_options_are_refused_with_the_c_status() -> None:
    erange = [dict(capacity=0), dict(capacity=2**26 + 1), dict(max_payload=1025),
              dict(threshold=NAN), dict(threshold=-1), dict(threshold=INF), dict(tick_size=0),
              dict(tick_size=NAN), dict(vol_alpha=0), dict(vol_alpha=1.5),
              dict(vol_multiplier=-1), dict(vol_multiplier=INF)]
    for kwargs in erange:
        with pytest.raises(InvalidArgumentError) as e:
            PriceCache(**kwargs)  # type: ignore[arg-type]
        assert e.value.code == lib.TG_ERANGE, kwargs
        assert e.value.message and e.value.message != "TG_ERANGE", kwargs
    with pytest.raises(InvalidArgumentError) as e:
        PriceCache(unit=3)
    assert_einval(e)
    with pytest.raises(InvalidArgumentError):
        PriceCache(unit="percent")
    with pytest.raises(InvalidArgumentError):
        PriceCache(capacity=-1)
    with pytest.raises(TypeError):
        PriceCache(threshold="10")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        PriceCache(capacity=1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        PriceCache(on_evict=42)  # type: ignore[arg-type]
    assert PriceCache(max_payload=1024, vol_alpha=1, seed=2**64 - 1).max_payload == 1024


def test_a_closed_cache_refuses_every_call() -> None:
    with PriceCache() as c:
        c.put("P", 1.0, 1, now_ns=T0)
        assert not c.closed
    assert c.closed and "closed" in repr(c)
    c.close()  # idempotent
    calls = [
        lambda: c.put("P", 1.0, 1, now_ns=T0),
        lambda: c.get("P", T0),
        lambda: c.on_price("P", 1.0, 2, T0),
        lambda: c.on_price_many([("P", 1.0, 2)], T0),
        lambda: c.on_price_many([], T0),
        lambda: c.remove("P", T0),
        lambda: c.expire(T0),
        lambda: c.stats(),
        lambda: c.on_evict(print),
        lambda: c.on_evict(None),
    ]
    for call in calls:
        with pytest.raises(InvalidArgumentError) as e:
            call()
        assert_einval(e)
        assert "closed" in e.value.message


def test_handles_freed_by_gc_and_default_clock() -> None:
    c = PriceCache()
    before = tollgate.now_ns()
    c.put("P", 1.0, 1)  # now_ns None: the library's clock
    got = c.get("P")
    assert got is not None and before <= got.cached_at_ns <= tollgate.now_ns()
    assert c.on_price("P", 1.0, 2) == KEPT
    assert c.on_price_many([("P", 1.0, 3)])[0] == KEPT
    assert c.expire() == 0 and c.remove("P")
    ref = weakref.ref(c)
    del c
    gc.collect()
    assert ref() is None


# -- batches ----------------------------------------------------------------------------


def _feed(seed: int, n: int) -> List[Tuple[Any, float, int]]:
    """Ticks around cached prices: in-threshold moves, moves beyond, gaps,
    replays and unknown instruments, over str, bytes and int keys."""
    rng = random.Random(seed)
    keys: List[Any] = ["AAPL", b"MSFT", 42, "EUR/USD", 2**40, "unknown"]
    seqs = {k: 1 for k in keys}
    ticks = []
    for _ in range(n):
        k = rng.choice(keys)
        step = rng.random()
        if step < 0.7:
            seqs[k] += 1
        elif step < 0.8:
            seqs[k] += 2  # a gap
        elif step < 0.9:
            pass  # a replay
        else:
            seqs[k] = max(0, seqs[k] - 3)
        price = 100.0 * (1 + rng.uniform(-0.0012, 0.0012))
        ticks.append((k, price, seqs[k]))
    return ticks


def test_on_price_many_equals_the_same_single_calls() -> None:
    single_events: List[EvictionEvent] = []
    batch_events: List[EvictionEvent] = []
    single = PriceCache(on_evict=single_events.append)
    batch = PriceCache(on_evict=batch_events.append)
    plain = PriceCache()  # no callback: the scratch-result path
    for rnd in range(5):
        for c in (single, batch, plain):
            for k in ("AAPL", b"MSFT", 42, "EUR/USD", 2**40):
                c.put(k, 100.0, 1, b"p", now_ns=T0)
        ticks = _feed(rnd, 400)
        now = T0 + rnd
        expected = [single.on_price(k, p, s, now) for k, p, s in ticks]
        plain_results = [plain.on_price(k, p, s, now) for k, p, s in ticks]
        got = batch.on_price_many(ticks, now)
        assert isinstance(got, PriceBatch) and len(got) == len(ticks)
        assert list(got) == expected == plain_results
        assert got.outcomes == [int(r.outcome) for r in expected]
        assert got.reasons == [int(r.reason) for r in expected]
        assert got.evicted_count == sum(r.evicted for r in expected)
        assert PriceOutcome.KEPT in got.outcomes and got.evicted_count > 0
    assert batch_events == single_events and len(single_events) > 10
    s1, s2, s3 = single.stats(), batch.stats(), plain.stats()
    assert s1 == s2 == s3
    for k in ("AAPL", b"MSFT", 42, "EUR/USD", 2**40):
        assert single.get(k, T0) == batch.get(k, T0) == plain.get(k, T0)


def test_batch_forms_and_result_access() -> None:
    c = PriceCache()
    c.put("A", 10.0, 1, now_ns=T0)
    c.put(7, 10.0, 1, now_ns=T0)
    ticks = [("A", 10.0, 2), (b"A", 10.0, 2), (7, 10.0, 3), ("B", 1.0, 1), ("A", 20.0, 3)]
    got = c.on_price_many(iter(ticks), T0)  # any iterable
    assert got[0] == KEPT and got[-1] == MOVED and got[1] == REPLAY
    assert got[2] == GAP and got[3] == NOT_CACHED
    assert got[1:3] == [REPLAY, GAP]
    assert got.count(PriceOutcome.EVICTED) == 2 and got.count(GAP) == 1
    assert "n=5" in repr(got)
    with pytest.raises(IndexError):
        got[5]
    empty = c.on_price_many([], T0)
    assert len(empty) == 0 and list(empty) == [] and empty.outcomes == [] and empty.reasons == []
    # Tuples of mixed-width keys and lists as ticks.
    c.put("longer-key", 5.0, 1, now_ns=T0)
    assert list(c.on_price_many([["longer-key", 5.0, 2], ("x", 5.0, 1)], T0)) == [KEPT, NOT_CACHED]


def test_invalid_batches_apply_nothing() -> None:
    c = PriceCache()
    c.put("A", 10.0, 1, now_ns=T0)
    for ticks, exc in [
        ([("A", 10.0, 2), ("A", 10.0)], TypeError),
        ([("A", 10.0, 2), ("A", 10.0, 3, 4)], TypeError),
        ([("A", 10.0, 2), 5], TypeError),
        ([("A", 10.0, 2), ("A", "x", 3)], TypeError),
        ([("A", 10.0, 2), ("A", 10.0, -3)], InvalidArgumentError),
        ([("A", 10.0, 2), ("", 10.0, 3)], InvalidArgumentError),
        ([("A", 10.0, 2), ("A", NAN, 3)], InvalidArgumentError),
        ([("A", 10.0, 2), (1.5, 10.0, 3)], TypeError),
        ("A", TypeError),
        (b"abc", TypeError),
        (5, TypeError),
    ]:
        with pytest.raises(exc):
            c.on_price_many(ticks, T0)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        c.on_price_many([("A", 10.0, 2)], -1)
    assert c.get("A", T0).feed_seq == 1  # no tick was applied
    assert c.stats().kept == 0


# -- threads -----------------------------------------------------------------------------


def test_readers_never_see_a_torn_entry_while_a_writer_rewrites_it() -> None:
    # Every write stores price v, sequence v and a payload whose 256 bytes
    # all equal v & 0xff: a torn read would mix two writes.
    c = PriceCache(max_payload=256, capacity=64)
    payloads = [bytes([b]) * 256 for b in range(256)]
    c.put("T", 1.0, 1, payloads[1], now_ns=T0)
    stop = threading.Event()
    reads = [0, 0]
    torn: List[str] = []

    def reader(i: int) -> None:
        get = c.get
        while not stop.is_set():
            got = get("T", T0)
            if got is None:
                torn.append("miss")
                return
            v = int(got.price)
            if got.feed_seq != v or got.price != v or got.payload != payloads[v & 0xFF]:
                torn.append(f"price {got.price} seq {got.feed_seq} payload {got.payload[:4]!r}")
                return
            reads[i] += 1

    readers = [threading.Thread(target=reader, args=(i,)) for i in range(2)]
    for t in readers:
        t.start()
    v = 2
    deadline = time.monotonic() + 10
    try:
        put = c.put
        while v < 2_000_000 and (v < 50_000 or min(reads) < 20_000) and time.monotonic() < deadline:
            put("T", float(v), v, payloads[v & 0xFF], T0)
            v += 1
    finally:
        stop.set()
        for t in readers:
            t.join()
    assert not torn, torn
    assert v >= 50_000 and min(reads) > 0
    assert c.stats().puts == v - 1


def test_writers_on_many_threads_reconcile() -> None:
    c = PriceCache(capacity=1024)
    for k in range(4):
        c.put(k, 100.0, 0, now_ns=T0)
    errors: List[str] = []

    def feed(k: int) -> None:
        for seq in range(1, 2001):
            if seq % 2:
                r = c.on_price(k, 100.0 + (seq % 5) * 0.01, seq, T0)
            else:
                r = c.on_price_many([(k, 100.0, seq)], T0)[0]
            if r != KEPT:
                errors.append(f"{k}/{seq}: {r}")
                return

    threads = [threading.Thread(target=feed, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert c.stats().kept == 8000
    assert all(c.get(k, T0).feed_seq == 2000 for k in range(4))


# -- the on_evict callback -----------------------------------------------------------------


class Boom(Exception):
    pass


def test_callback_exception_is_raised_from_the_call_that_evicted() -> None:
    seen: List[EvictionEvent] = []

    def cb(ev: EvictionEvent) -> None:
        seen.append(ev)
        raise Boom(f"bad callback for {ev.key!r}")

    c = PriceCache(capacity=7, max_age_ns=SECOND, on_evict=cb)
    c.put("A", 10.0, 1, now_ns=T0)
    with pytest.raises(Boom, match="b'A'"):
        c.on_price("A", 20.0, 2, T0)
    assert not cached(c, "A")  # the eviction happened
    assert c.stats().evicted_price_move == 1
    # Nothing is left pending: the next call is clean.
    c.put("A", 10.0, 1, now_ns=T0)
    assert c.on_price("A", 10.0, 2, T0) == KEPT
    with pytest.raises(Boom):
        c.remove("A", T0)
    assert not cached(c, "A")
    # put (capacity), expire.
    for i in range(8):
        c.put(f"K{i}", 1.0, 1, now_ns=T0)
    with pytest.raises(Boom):
        c.put("NEW", 1.0, 1, now_ns=T0)
    assert cached(c, "NEW") and seen[-1].reason is EvictReason.CAPACITY
    n = len(seen)
    with pytest.raises(Boom) as e:
        c.expire(T0 + 2 * SECOND)
    # expire went on after the first exception: every stale entry is gone,
    # the callback saw each, the first exception was raised with a note.
    assert len(seen) - n == 8 and c.stats().entries == 0
    assert seen[n].key in str(e.value).encode()
    notes = getattr(e.value, "__notes__", [])
    assert any("8 exceptions" in note for note in notes) or not hasattr(e.value, "add_note")


def test_callback_exception_in_a_batch_keeps_the_first_and_applies_every_tick() -> None:
    calls: List[bytes] = []

    def cb(ev: EvictionEvent) -> None:
        calls.append(ev.key)
        raise Boom(ev.key.decode())

    c = PriceCache(on_evict=cb)
    for k in ("A", "B", "C"):
        c.put(k, 10.0, 1, now_ns=T0)
    with pytest.raises(Boom) as e:
        c.on_price_many([("A", 20.0, 2), ("B", 10.0, 2), ("C", 10.0, 5), ("B", 10.0, 3)], T0)
    assert str(e.value) == "A"
    assert calls == [b"A", b"C"]
    assert c.get("B", T0).feed_seq == 3  # the ticks after the failure were applied
    s = c.stats()
    assert (s.evicted_price_move, s.evicted_sequence_gap, s.kept) == (1, 1, 2)


def test_callback_base_exceptions_and_type_errors_are_not_mistaken_for_bad_arguments() -> None:
    c = PriceCache()

    def interrupt(ev: EvictionEvent) -> None:
        raise KeyboardInterrupt

    c.on_evict(interrupt)
    c.put("A", 10.0, 1, now_ns=T0)
    with pytest.raises(KeyboardInterrupt):
        c.on_price("A", 20.0, 2, T0)

    def type_error(ev: EvictionEvent) -> None:
        raise TypeError("from the callback")

    c.on_evict(type_error)
    c.put("A", 10.0, 1, now_ns=T0)
    with pytest.raises(TypeError, match="from the callback"):
        c.remove("A", T0)


def test_callback_may_call_back_into_the_cache() -> None:
    c = PriceCache()
    log: List[Any] = []

    def cb(ev: EvictionEvent) -> None:
        # Re-cache at the new price, look it up, and tick another instrument.
        if ev.reason is EvictReason.PRICE_MOVE:
            c.put(ev.key, ev.new_price, ev.feed_seq, b"recached", now_ns=ev.now_ns)
            log.append(c.get(ev.key, ev.now_ns))
            log.append(c.on_price("B", 50.0, 2, ev.now_ns))

    c.on_evict(cb)
    c.put("A", 10.0, 1, now_ns=T0)
    c.put("B", 50.0, 1, now_ns=T0)
    assert c.on_price("A", 11.0, 2, T0) == MOVED
    assert log == [CachedPrice(11.0, 10.0, 2, T0, 0, b"recached"), KEPT]
    assert c.get("A", T0).payload == b"recached"

    # A nested call's callback exception surfaces in the nested call, inside
    # the outer callback; if the outer callback lets it through, the outer
    # call raises it.
    def outer(ev: EvictionEvent) -> None:
        if ev.key == b"X":
            c.on_evict(inner)
            try:
                c.remove("Y", T0)
            finally:
                c.on_evict(outer)

    def inner(ev: EvictionEvent) -> None:
        raise Boom("inner")

    c.on_evict(outer)
    c.put("X", 1.0, 1, now_ns=T0)
    c.put("Y", 1.0, 1, now_ns=T0)
    with pytest.raises(Boom, match="inner"):
        c.remove("X", T0)
    assert not cached(c, "X") and not cached(c, "Y")
    assert c.remove("A", T0)  # clean afterwards


def test_callback_replace_remove_and_lifetime() -> None:
    seen: List[str] = []
    c = PriceCache()

    @c.on_evict
    def first(ev: EvictionEvent) -> None:
        seen.append("first")

    c.put("A", 1.0, 1, now_ns=T0)
    c.remove("A", T0)
    c.on_evict(lambda ev: seen.append("second"))
    c.put("A", 1.0, 1, now_ns=T0)
    c.remove("A", T0)
    assert c.on_evict(None) is None
    c.put("A", 1.0, 1, now_ns=T0)
    c.remove("A", T0)
    assert seen == ["first", "second"]
    with pytest.raises(TypeError):
        c.on_evict(42)  # type: ignore[arg-type]
    # A callback holding the cache (a cycle) does not keep it alive.
    c.on_evict(lambda ev: c.stats())
    ref = weakref.ref(c)
    del c
    gc.collect()
    assert ref() is None


def test_callback_on_writer_threads() -> None:
    lock = threading.Lock()
    keys: List[bytes] = []

    def cb(ev: EvictionEvent) -> None:
        with lock:
            keys.append(ev.key)
        if ev.key.endswith(b"7"):
            raise Boom(ev.key.decode())

    c = PriceCache(capacity=4096, on_evict=cb)
    raised: List[str] = []

    def work(t: int) -> None:
        for i in range(50):
            k = f"t{t}-{i}"
            c.put(k, 10.0, 1, now_ns=T0)
            try:
                c.on_price(k, 20.0, 2, T0)
            except Boom as e:
                raised.append(str(e))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(keys) == 200
    # Each exception reached the thread whose tick evicted.
    assert sorted(raised) == sorted(f"t{t}-{i}" for t in range(4) for i in range(50) if i % 10 == 7)
