"""The pre-trade risk checker through the binding: the cases of
tests/capi/test_risk.c with their expected values (every rule at and beyond
its limit, collar units, reference prices missing, stale or evicted, account
periods, duplicates, capacity failing closed, kill switches and their events,
batch order, stats, a price cache closed before the checker), plus the
binding's own: argument forms and types, errors carrying the C status, the
on_kill callback's exceptions, closed checkers, and threads."""

from __future__ import annotations

import gc
import inspect
import math
import random
import threading
import weakref
from typing import Any, List, Tuple

import pytest
from conftest import SECOND

import tollgate
from tollgate import (
    CollarUnit,
    InvalidArgumentError,
    KillScope,
    KillSwitchEvent,
    NoReferencePolicy,
    PriceCache,
    PriceOutcome,
    RiskBatch,
    RiskChecker,
    RiskDecision,
    RiskOrder,
    RiskReason,
    RiskStats,
    Side,
    StateError,
    TollgateError,
)
from tollgate._native import ffi, lib

NAN = float("nan")
INF = float("inf")
R = RiskReason


def cache() -> PriceCache:
    """The C tests' cache: references older than 10 s are stale."""
    return PriceCache(max_age_ns=10 * SECOND)


def put(c: PriceCache, instrument: Any, price: float, now: int) -> None:
    c.put(instrument, price, 1, now_ns=now)


def decide(c: RiskChecker, account: Any, instrument: Any, coid: Any, quantity: Any,
           limit_price: Any, now: int, want: RiskReason, side: Any = Side.BUY) -> RiskDecision:
    d = c.check(account, instrument, coid, quantity, limit_price, side, now)
    assert (d.reason, d.allowed) == (want, want is R.NONE), (account, instrument, coid, d)
    assert bool(d) is d.allowed
    return d


def assert_status(exc: pytest.ExceptionInfo[Any], status: str) -> None:
    assert exc.value.status == status
    assert exc.value.code == getattr(lib, status)


# -- options and names ---------------------------------------------------------------


def test_keyword_defaults_are_the_librarys() -> None:
    opts = ffi.new("tg_risk_options*")
    lib.tg_risk_options_init(opts)
    params = inspect.signature(RiskChecker).parameters
    expected = {
        "on_no_reference": NoReferencePolicy(opts.on_no_reference).name.lower(),
        "max_reference_age_ns": opts.max_reference_age_ns,
        "max_quantity": opts.max_quantity,
        "max_notional": opts.max_notional,
        "collar_unit": CollarUnit(opts.collar_unit).name.lower(),
        "collar_width": opts.collar_width,
        "collar_tick_size": opts.collar_tick_size,
        "period_ns": opts.period_ns,
        "account_max_notional": opts.account_max_notional,
        "account_max_orders": None if opts.account_max_orders == 2**64 - 1 else -1,
        "account_capacity": opts.account_capacity,
        "duplicate_window_ns": opts.duplicate_window_ns,
        "duplicate_capacity": opts.duplicate_capacity,
        "kill_switch_capacity": opts.kill_switch_capacity,
        "seed": opts.seed,
    }
    assert {k: params[k].default for k in expected} == expected
    assert expected["on_no_reference"] == "reject" and expected["collar_unit"] == "percent"


def test_reasons_and_their_names_are_the_librarys() -> None:
    assert len(RiskReason) == lib.TG_RISK_REASON_COUNT
    for r in RiskReason:
        assert r.name.lower() == ffi.string(lib.tg_risk_reason_name(r)).decode()
    assert tollgate.risk_reason_name(R.PRICE_COLLAR) == "price_collar"
    assert tollgate.risk_reason_name(0) == "none"
    assert tollgate.risk_reason_name(R.DUPLICATE_CAPACITY) == "duplicate_capacity"
    assert tollgate.risk_reason_name(lib.TG_RISK_REASON_COUNT) == "unknown"
    assert tollgate.risk_reason_name(-1) == "unknown"
    assert tollgate.risk_reason_name(2**40) == "unknown"
    with pytest.raises(TypeError):
        tollgate.risk_reason_name("price_collar")  # type: ignore[arg-type]
    d = RiskChecker().check("a", "X", "1", 1, 10, now_ns=SECOND)
    assert d.reason is R.NO_REFERENCE_PRICE and d.reason_name == "no_reference_price"
    assert [int(s) for s in Side] == [lib.TG_SIDE_BUY, lib.TG_SIDE_SELL]
    assert [int(s) for s in KillScope] == [lib.TG_KILL_GLOBAL, lib.TG_KILL_ACCOUNT,
                                           lib.TG_KILL_INSTRUMENT]


# -- the order checks (test_order_checks) -----------------------------------------------


def test_order_checks_every_rule_at_and_beyond_its_limit() -> None:
    t = 100 * SECOND
    pc = cache()
    c = RiskChecker(pc, max_quantity=1000, max_notional=50000, collar_unit="percent",
                    collar_width=5)
    put(pc, "AAPL", 100.0, t)

    # A limit order inside every limit: observed is its notional.
    d = decide(c, "acct1", "AAPL", "o1", 10, 101, t, R.NONE)
    assert d == RiskDecision(True, R.NONE, None, 1010.0, 100.0)
    assert d.reason_name == "none"
    # A market order's notional uses the reference price.
    assert decide(c, "acct1", "AAPL", "o2", 10, None, t, R.NONE).observed == 1000.0

    # Collar: exactly at the band passes, beyond it is rejected with the edge.
    decide(c, "acct1", "AAPL", "o3", 1, 105, t, R.NONE)
    decide(c, "acct1", "AAPL", "o4", 1, 95, t, R.NONE)
    d = decide(c, "acct1", "AAPL", "o5", 1, 105.01, t, R.PRICE_COLLAR)
    assert d == RiskDecision(False, R.PRICE_COLLAR, 105.0, 105.01, 100.0)
    d = decide(c, "acct1", "AAPL", "o6", 1, 94.99, t, R.PRICE_COLLAR, side=Side.SELL)
    assert d.limit == 95.0

    # Max quantity and max notional carry the limit and the order's value.
    d = decide(c, "acct1", "AAPL", "o7", 1001, 100, t, R.MAX_QUANTITY)
    assert (d.limit, d.observed) == (1000.0, 1001.0)
    d = decide(c, "acct1", "AAPL", "o8", 501, 100, t, R.MAX_NOTIONAL)
    assert (d.limit, d.observed) == (50000.0, 50100.0)
    decide(c, "acct1", "AAPL", "o9", 500, 100, t, R.NONE)

    # No reference: an unknown instrument and a stale entry (default policy).
    assert decide(c, "acct1", "MSFT", "o10", 1, 300, t, R.NO_REFERENCE_PRICE).reference is None
    decide(c, "acct1", "AAPL", "o11", 1, 100, t + 11 * SECOND, R.NO_REFERENCE_PRICE)

    # A price move evicts the reference: the order is not checked against it.
    put(pc, "IBM", 200.0, t)
    assert pc.on_price("IBM", 230.0, 2, t).outcome is PriceOutcome.EVICTED
    decide(c, "acct1", "IBM", "o12", 1, 229, t, R.NO_REFERENCE_PRICE)

    # Malformed orders are decisions with the reason and the bound.
    decide(c, "acct1", "AAPL", "m1", 0, 100, t, R.INVALID_QUANTITY)
    decide(c, "acct1", "AAPL", "m2", -1, 100, t, R.INVALID_QUANTITY)
    decide(c, "acct1", "AAPL", "m3", NAN, 100, t, R.INVALID_QUANTITY)
    decide(c, "acct1", "AAPL", "m4", INF, 100, t, R.INVALID_QUANTITY)
    decide(c, "acct1", "AAPL", "m5", 1, 0, t, R.INVALID_PRICE)
    decide(c, "acct1", "AAPL", "m6", 1, -100, t, R.INVALID_PRICE)
    decide(c, "acct1", "AAPL", "m7", 1, INF, t, R.INVALID_PRICE)
    d = decide(c, "", "AAPL", "m8", 1, 100, t, R.INVALID_ACCOUNT)
    assert (d.limit, d.observed) == (32.0, 0.0)
    d = decide(c, "a-very-long-account-name-over-32-b", "AAPL", "m9", 1, 100, t, R.INVALID_ACCOUNT)
    assert d.observed == 34.0
    decide(c, "acct1", "", "m10", 1, 100, t, R.INVALID_INSTRUMENT)
    d = decide(c, "acct1", "AAPL", "", 1, 100, t, R.INVALID_CLIENT_ORDER_ID)
    assert d.limit == 64.0

    # Stats count every decision by reason.
    s = c.stats()
    assert isinstance(s, RiskStats)
    assert s.checked == s.allowed + s.rejected == 23
    assert s.allowed == s.decisions[R.NONE] == 5
    assert s.decisions[R.PRICE_COLLAR] == 2
    assert s.decisions[R.NO_REFERENCE_PRICE] == 3
    assert s.decisions[R.INVALID_QUANTITY] == 4
    assert s.decisions[R.INVALID_PRICE] == 3
    assert s.decisions[R.INVALID_ACCOUNT] == 2
    assert s.decisions[R.MAX_QUANTITY] == s.decisions[R.MAX_NOTIONAL] == 1
    assert sum(s.decisions.values()) == s.checked
    assert set(s.decisions) == set(RiskReason)  # no unknown codes
    assert s.global_kill is False and s.killed_accounts == 0


def test_more_malformed_orders_and_lengths_in_utf8_bytes() -> None:
    c = RiskChecker(on_no_reference="allow", duplicate_window_ns=0)
    t = SECOND
    decide(c, "a", "X", "1", 1, -0.0, t, R.INVALID_PRICE)
    decide(c, "a", "X", "1", 1, -INF, t, R.INVALID_PRICE)
    decide(c, "a", "X", "1", -INF, 1, t, R.INVALID_QUANTITY)
    decide(c, "a", "X", "1", 1e-300, 1, t, R.NONE)  # tiny but > 0
    # NaN limit price is a market order, as None is.
    assert decide(c, "a", "X", "1", 1, NAN, t, R.NONE).observed is None
    # Lengths are bytes: 16 two-byte characters fit 32, 17 do not.
    decide(c, "é" * 16, "X", "1", 1, 1, t, R.NONE)
    assert decide(c, "é" * 17, "X", "1", 1, 1, t, R.INVALID_ACCOUNT).observed == 34.0
    decide(c, "a", "X" * 32, "1", 1, 1, t, R.NONE)
    d = decide(c, "a", "X" * 33, "1", 1, 1, t, R.INVALID_INSTRUMENT)
    assert (d.limit, d.observed) == (32.0, 33.0)
    decide(c, "a", "X", "i" * 64, 1, 1, t, R.NONE)
    d = decide(c, "a", "X", "i" * 65, 1, 1, t, R.INVALID_CLIENT_ORDER_ID)
    assert (d.limit, d.observed) == (64.0, 65.0)
    # The order of the checks: the first failing one decides.
    decide(c, "", "", "", 0, 0, t, R.INVALID_QUANTITY)
    decide(c, "", "", "", 1, 0, t, R.INVALID_PRICE)
    decide(c, "", "", "", 1, 1, t, R.INVALID_ACCOUNT)
    decide(c, "a", "", "", 1, 1, t, R.INVALID_INSTRUMENT)
    c.engage("global")
    decide(c, "", "", "", 0, 0, t, R.KILL_SWITCH_GLOBAL)


def test_string_forms_bytes_str_and_int_instrument_ids() -> None:
    t = 5 * SECOND
    pc = cache()
    put(pc, 1234567, 50.0, t)  # an int id: 8 little-endian bytes
    put(pc, "Société", 20.0, t)
    c = RiskChecker(pc, collar_width=10, duplicate_window_ns=SECOND)
    assert decide(c, b"acct", 1234567, b"1", 1, 54, t, R.NONE).reference == 50.0
    assert decide(c, "acct", (1234567).to_bytes(8, "little"), "2", 1, 56, t,
                  R.PRICE_COLLAR).reference == 50.0
    assert decide(c, bytearray(b"acct"), "Société".encode(), memoryview(b"3"), 1, 21, t,
                  R.NONE).reference == 20.0
    # str and bytes name the same account and id: a duplicate.
    decide(c, "acct", "Société", b"3", 1, 21, t, R.DUPLICATE_ORDER)
    # Quantities and prices: ints, floats and other real numbers.
    from fractions import Fraction

    decide(c, "acct", 1234567, "4", Fraction(3, 2), Fraction(101, 2), t, R.NONE)


# -- collar units, the no-reference policy, reference age (test_collar_units) ------------


@pytest.mark.parametrize(
    "unit, width, tick, inside, beyond, edge",
    [
        ("bps", 25, 0.01, 4010, 4010.25, 4010.0),  # 10 points at 4000
        (CollarUnit.BPS, 25, 0.01, 3990, 3989.75, 3990.0),
        ("ticks", 8, 0.25, 3998, 3997.75, 3998.0),  # 2 points
        (CollarUnit.TICKS, 8, 0.25, 4002, 4002.25, 4002.0),
        ("percent", 0.5, 0.01, 4020, 4020.5, 4020.0),
        ("PERCENT", 0, 0.01, 4000, 4000.25, 4000.0),  # width 0: only the reference itself
    ],
)
def test_collar_units_exactly_at_the_edge_pass_beyond_it_reject(
    unit: Any, width: float, tick: float, inside: float, beyond: float, edge: float
) -> None:
    t = 5 * SECOND
    pc = cache()
    put(pc, "ES", 4000.0, t)
    c = RiskChecker(pc, collar_unit=unit, collar_width=width, collar_tick_size=tick)
    assert decide(c, "a", "ES", "1", 1, inside, t, R.NONE).reference == 4000.0
    d = decide(c, "a", "ES", "2", 1, beyond, t, R.PRICE_COLLAR)
    assert d == RiskDecision(False, R.PRICE_COLLAR, edge, beyond, 4000.0)
    # A market order is never collared.
    decide(c, "a", "ES", "3", 1, None, t, R.NONE)


def test_no_reference_allow_uses_the_limit_price_and_skips_the_collar() -> None:
    t = 5 * SECOND
    c = RiskChecker(on_no_reference=NoReferencePolicy.ALLOW, collar_width=1, max_notional=1000)
    assert c.prices is None
    d = decide(c, "a", "ES", "n1", 1, 999, t, R.NONE)
    assert d.observed == 999.0 and d.reference is None
    decide(c, "a", "ES", "n2", 2, 999, t, R.MAX_NOTIONAL)
    d = decide(c, "a", "ES", "n3", 1_000_000, None, t, R.NONE)  # market: notional unknown
    assert d == RiskDecision(True, R.NONE, None, None, None)
    # The default policy rejects, with or without a cache.
    decide(RiskChecker(), "a", "ES", "n1", 1, 999, t, R.NO_REFERENCE_PRICE)
    decide(RiskChecker(cache()), "a", "ES", "n1", 1, 999, t, R.NO_REFERENCE_PRICE)


def test_max_reference_age_tighter_than_the_cache() -> None:
    t = 5 * SECOND
    pc = cache()
    put(pc, "ES", 4000.0, t)
    c = RiskChecker(pc, max_reference_age_ns=SECOND)
    decide(c, "a", "ES", "r1", 1, 4000, t + SECOND, R.NONE)  # exactly the age: fresh
    decide(c, "a", "ES", "r2", 1, 4000, t + SECOND + 1, R.NO_REFERENCE_PRICE)
    # Without it, the cache's 10 s decide.
    loose = RiskChecker(pc)
    decide(loose, "a", "ES", "r2", 1, 4000, t + 10 * SECOND, R.NONE)
    decide(loose, "a", "ES", "r3", 1, 4000, t + 10 * SECOND + 1, R.NO_REFERENCE_PRICE)


# -- the account's period and duplicates (test_account_limits) ---------------------------------


def test_account_order_count_and_notional_per_period() -> None:
    t = 40 * SECOND  # the start of a period
    c = RiskChecker(on_no_reference="allow", account_max_orders=3, account_max_notional=1000,
                    period_ns=SECOND, duplicate_window_ns=2 * SECOND)
    for i in range(3):
        decide(c, "acct", "X", f"c{i}", 1, 10, t + i, R.NONE)
    d = decide(c, "acct", "X", "c3", 1, 10, t + 3, R.ACCOUNT_ORDER_COUNT)
    assert (d.limit, d.observed) == (3.0, 4.0)
    decide(c, "other", "X", "c3", 1, 10, t + 3, R.NONE)  # another account has its own count
    decide(c, "acct", "X", "c3", 1, 10, t + SECOND, R.NONE)  # the next period starts afresh

    # Notional: over it is rejected with the sum, exactly at it passes.
    decide(c, "acct", "X", "n1", 60, 10, t + SECOND + 1, R.NONE)  # 10 + 600
    d = decide(c, "acct", "X", "n2", 40, 10, t + SECOND + 2, R.ACCOUNT_NOTIONAL)
    assert (d.limit, d.observed) == (1000.0, 1010.0)
    decide(c, "acct", "X", "n3", 39, 10, t + SECOND + 3, R.NONE)  # exactly 1000, third order
    s = c.stats()
    assert s.decisions[R.ACCOUNT_ORDER_COUNT] == 1 and s.decisions[R.ACCOUNT_NOTIONAL] == 1
    assert s.accounts == 2


def test_duplicates_inside_the_window_per_account() -> None:
    t = 40 * SECOND
    c = RiskChecker(on_no_reference="allow", account_max_notional=1000,
                    duplicate_window_ns=2 * SECOND)
    decide(c, "acct", "X", "n1", 60, 10, t, R.NONE)
    decide(c, "acct", "X", "n2", 41, 10, t + 1, R.ACCOUNT_NOTIONAL)
    d = decide(c, "acct", "X", "n1", 1, 1, t + 5, R.DUPLICATE_ORDER)
    assert (d.limit, d.observed) == (2.0 * SECOND, 5.0)
    decide(c, "acct2", "X", "n1", 1, 1, t + 5, R.NONE)  # per account
    decide(c, "acct", "X", "n2", 1, 1, t + SECOND, R.NONE)  # a rejected id is not remembered
    decide(c, "acct", "X", "n1", 1, 1, t + 2 * SECOND - 1, R.DUPLICATE_ORDER)
    decide(c, "acct", "X", "n1", 1, 1, t + 2 * SECOND, R.NONE)  # at exactly the window: new
    assert c.stats().duplicate_ids >= 3
    # duplicate_window_ns=0: no duplicate check.
    off = RiskChecker(on_no_reference="allow", duplicate_window_ns=0)
    for _ in range(3):
        decide(off, "acct", "X", "same", 1, 1, t, R.NONE)
    assert off.stats().duplicate_ids == 0


def test_capacity_fails_closed() -> None:
    t = 10 * SECOND
    c = RiskChecker(on_no_reference="allow", account_max_orders=100, account_capacity=2,
                    duplicate_capacity=3)
    decide(c, "a1", "X", "i1", 1, 1, t, R.NONE)
    decide(c, "a2", "X", "i1", 1, 1, t, R.NONE)
    assert decide(c, "a3", "X", "i1", 1, 1, t, R.ACCOUNT_CAPACITY).limit == 2.0
    # A fourth live id cannot be remembered.
    decide(c, "a1", "X", "i2", 1, 1, t, R.NONE)
    assert decide(c, "a1", "X", "i3", 1, 1, t, R.DUPLICATE_CAPACITY).limit == 3.0
    # The next period frees the accounts; ids stay until their window ends.
    decide(c, "a3", "X", "i1", 1, 1, t + SECOND, R.DUPLICATE_CAPACITY)
    decide(c, "a3", "X", "i1", 1, 1, t + 60 * SECOND, R.NONE)
    s = c.stats()
    assert s.decisions[R.ACCOUNT_CAPACITY] == 1 and s.decisions[R.DUPLICATE_CAPACITY] == 2


# -- kill switches (test_kill_switches) -------------------------------------------------------


def test_kill_switches_latch_until_released_with_one_event_per_change() -> None:
    t = 7 * SECOND
    events: List[KillSwitchEvent] = []
    c = RiskChecker(on_no_reference="allow", duplicate_window_ns=0, kill_switch_capacity=2,
                    on_kill=events.append)

    # Account switch: latched until released; engaging twice is a no-op.
    c.engage(KillScope.ACCOUNT, "acct", now_ns=t)
    c.engage("account", b"acct", now_ns=t + 1)
    assert c.engaged("account", "acct") and not c.engaged(KillScope.ACCOUNT, "other")
    decide(c, "acct", "AAPL", "k1", 1, 10, t + 2, R.KILL_SWITCH_ACCOUNT)
    decide(c, "other", "AAPL", "k1", 1, 10, t + 2, R.NONE)

    c.engage("instrument", "AAPL", now_ns=t + 3)
    decide(c, "other", "AAPL", "k2", 1, 10, t + 4, R.KILL_SWITCH_INSTRUMENT)
    decide(c, "other", "MSFT", "k2", 1, 10, t + 4, R.NONE)

    # The global switch wins over the others.
    c.engage("global", now_ns=t + 5)
    assert c.engaged("global") and c.engaged(KillScope.GLOBAL, None)
    decide(c, "acct", "AAPL", "k3", 1, 10, t + 6, R.KILL_SWITCH_GLOBAL)
    s = c.stats()
    assert (s.global_kill, s.killed_accounts, s.killed_instruments) == (True, 1, 1)

    c.release("global", now_ns=t + 7)
    c.release("account", "acct", now_ns=t + 8)
    c.release("account", "never", now_ns=t + 8)  # not engaged: no-op, no event
    decide(c, "acct", "MSFT", "k4", 1, 10, t + 9, R.NONE)
    decide(c, "acct", "AAPL", "k5", 1, 10, t + 9, R.KILL_SWITCH_INSTRUMENT)
    assert not c.stats().global_kill

    assert events == [
        KillSwitchEvent(KillScope.ACCOUNT, True, b"acct", t),
        KillSwitchEvent(KillScope.INSTRUMENT, True, b"AAPL", t + 3),
        KillSwitchEvent(KillScope.GLOBAL, True, b"", t + 5),
        KillSwitchEvent(KillScope.GLOBAL, False, b"", t + 7),
        KillSwitchEvent(KillScope.ACCOUNT, False, b"acct", t + 8),
    ]
    assert events[0].scope is KillScope.ACCOUNT

    # Capacity: a third instrument is refused and nothing is engaged.
    c.engage("instrument", "MSFT", now_ns=t + 10)
    with pytest.raises(TollgateError) as e:
        c.engage("instrument", "IBM", now_ns=t + 10)
    assert_status(e, "TG_ENOMEM")
    assert "kill_switch_capacity" in e.value.message
    assert not c.engaged("instrument", "IBM")
    assert len(events) == 6

    # Removing the callback.
    assert c.on_kill(None) is None
    c.release("instrument", "AAPL", now_ns=t + 12)
    assert len(events) == 6
    assert not c.engaged("instrument", "AAPL")


def test_instrument_switches_take_price_cache_keys_and_default_time() -> None:
    events: List[KillSwitchEvent] = []
    c = RiskChecker(on_no_reference="allow", on_kill=events.append)
    before = tollgate.now_ns()
    c.engage("instrument", 42)
    assert c.engaged("instrument", (42).to_bytes(8, "little"))
    assert events[0].key == (42).to_bytes(8, "little")
    assert before <= events[0].now_ns <= tollgate.now_ns()
    decide(c, "a", 42, "1", 1, 1, SECOND, R.KILL_SWITCH_INSTRUMENT)
    decide(c, "a", "42", "1", 1, 1, SECOND, R.NONE)  # the str "42" is another instrument
    # An account switch of the same bytes stops that account, not the instrument.
    c.engage("account", "X")
    decide(c, "Y", "X", "2", 1, 1, SECOND, R.NONE)
    decide(c, "X", "Y", "2", 1, 1, SECOND, R.KILL_SWITCH_ACCOUNT)


def test_a_kill_callback_may_check_but_not_change_switches() -> None:
    t = 7 * SECOND
    c = RiskChecker(on_no_reference="allow")
    seen: List[Any] = []

    def cb(ev: KillSwitchEvent) -> None:
        seen.append(ev)
        try:
            c.engage("global", now_ns=1)
        except StateError as exc:
            seen.append(exc)
        seen.append(c.check("acct", "AAPL", "cb", 1, 1, now_ns=1))
        seen.append(c.engaged("instrument", "MSFT"))
        seen.append(c.stats().killed_instruments)

    c.on_kill(cb)
    c.engage("instrument", "MSFT", now_ns=t)
    ev, err, d, on, killed = seen
    assert ev == KillSwitchEvent(KillScope.INSTRUMENT, True, b"MSFT", t)
    assert isinstance(err, StateError) and err.code == lib.TG_ESTATE
    assert "kill callback" in err.message
    assert d.allowed and on is True and killed == 1
    assert not c.engaged("global")

    # Uncaught, the refusal surfaces from the call that made the change,
    # which did take effect.
    c.on_kill(lambda ev: c.release("instrument", "MSFT", now_ns=2))
    with pytest.raises(StateError) as e:
        c.release("instrument", "MSFT", now_ns=t + 1)
    assert_status(e, "TG_ESTATE")
    assert not c.engaged("instrument", "MSFT")
    # Nor another checker's (two callbacks engaging each other's switches
    # could deadlock); reading them is fine.
    other = RiskChecker()
    read: List[bool] = []

    def engage_other(ev: KillSwitchEvent) -> None:
        read.append(other.engaged("account", ev.key))
        other.engage("account", ev.key)

    c.on_kill(engage_other)
    with pytest.raises(StateError) as e:
        c.engage("account", "A1")
    assert_status(e, "TG_ESTATE")
    assert read == [False] and not other.engaged("account", "A1")
    assert c.engaged("account", "A1")


class Boom(Exception):
    pass


def test_kill_callback_exceptions_are_raised_from_engage_and_release() -> None:
    calls: List[KillSwitchEvent] = []

    def cb(ev: KillSwitchEvent) -> None:
        calls.append(ev)
        raise Boom(f"{'on' if ev.engaged else 'off'} {ev.key!r}")

    c = RiskChecker(on_no_reference="allow", on_kill=cb)
    with pytest.raises(Boom, match="on b'A1'"):
        c.engage("account", "A1", now_ns=5)
    assert c.engaged("account", "A1")  # the change took effect
    decide(c, "A1", "X", "1", 1, 1, SECOND, R.KILL_SWITCH_ACCOUNT)
    c.engage("account", "A1")  # no change, no event, nothing raised
    with pytest.raises(Boom, match="off b'A1'"):
        c.release("account", "A1")
    assert not c.engaged("account", "A1") and len(calls) == 2

    def interrupt(ev: KillSwitchEvent) -> None:
        raise KeyboardInterrupt

    c.on_kill(interrupt)
    with pytest.raises(KeyboardInterrupt):
        c.engage("global")
    assert c.engaged("global")

    def type_error(ev: KillSwitchEvent) -> None:
        raise TypeError("from the callback")

    c.on_kill(type_error)
    with pytest.raises(TypeError, match="from the callback"):
        c.release("global")
    assert not c.engaged("global")
    # Nothing is left pending.
    c.on_kill(None)
    c.engage("global")
    c.release("global")


def test_kill_callback_cannot_close_its_checker() -> None:
    c = RiskChecker(on_no_reference="allow")
    c.on_kill(lambda ev: c.close())
    with pytest.raises(StateError) as e:
        c.engage("global")
    assert_status(e, "TG_ESTATE")
    assert not c.closed and c.engaged("global")
    c.on_kill(None)
    c.close()
    assert c.closed


def test_kill_callback_replace_decorator_and_lifetime() -> None:
    seen: List[str] = []
    c = RiskChecker()

    @c.on_kill
    def first(ev: KillSwitchEvent) -> None:
        seen.append("first")

    assert first is not None
    c.engage("global")
    c.on_kill(lambda ev: seen.append("second"))
    c.release("global")
    c.on_kill(None)
    c.engage("global")
    c.on_kill(lambda ev: seen.append("third"))  # set again after removal
    c.release("global")
    assert seen == ["first", "second", "third"]
    with pytest.raises(TypeError):
        c.on_kill(42)  # type: ignore[arg-type]
    # A callback holding the checker (a cycle) does not keep it alive.
    c.on_kill(lambda ev: c.stats())
    ref = weakref.ref(c)
    del c
    gc.collect()
    assert ref() is None


# -- batches (test_batch) --------------------------------------------------------------------


def test_batch_decides_in_order_each_order_seeing_the_ones_before() -> None:
    t = 3 * SECOND
    c = RiskChecker(on_no_reference="allow", account_max_orders=2)
    orders = [
        RiskOrder("a", "X", "1", 1, 10),
        ("a", "X", "1", 1, 10),  # a duplicate of the first, which was accepted
        ("a", "X", "2", 1, 10, Side.SELL),
        ["a", "X", "3", 1, 10.0, "buy"],  # the third accepted order of the period
    ]
    # Validation first: nothing decided on an error.
    bad = list(orders)
    bad[2] = ("a", "X", "2", 1, 10, 7)
    with pytest.raises(InvalidArgumentError, match=r"orders\[2\]: side"):
        c.check_many(bad, t)
    assert c.stats().checked == 0
    empty = c.check_many([], t)
    assert len(empty) == 0 and list(empty) == [] and empty.reasons == [] and empty.all_allowed

    got = c.check_many(orders, t)
    assert isinstance(got, RiskBatch) and len(got) == 4
    assert got.allowed == b"\x01\x00\x01\x00" and got.allowed_count == 2
    assert got.reasons == [R.NONE, R.DUPLICATE_ORDER, R.NONE, R.ACCOUNT_ORDER_COUNT]
    assert [d.reason for d in got] == got.reasons
    assert got[0] == RiskDecision(True, R.NONE, None, 10.0, None)
    assert got[-1].reason is R.ACCOUNT_ORDER_COUNT and got[1:3] == [got[1], got[2]]
    assert not got.all_allowed and "n=4" in repr(got)
    with pytest.raises(IndexError):
        got[4]
    assert c.stats().checked == 4


def _random_orders(rng: random.Random, n: int) -> List[Tuple[Any, ...]]:
    """Orders over every rule: mostly well-formed ones on two accounts (which
    reach the per-account limits), the others with good and bad quantities,
    prices and strings; repeated ids, known and unknown instruments, both
    sides, str, bytes and int keys."""
    out: List[Tuple[Any, ...]] = []
    for _ in range(n):
        side = rng.choice([Side.BUY, Side.SELL, "sell", 0, 1])
        if rng.random() < 0.6:
            out.append((rng.choice(["acct1", b"acct2"]), rng.choice(["AAPL", b"MSFT", 7]),
                        f"id{rng.randrange(100)}", rng.choice([1, 2.5, 9.5]),
                        rng.choice([None, 100.0, 101, 104.99]), side))
            continue
        account = rng.choice(["acct1", b"acct2", "acct3", "", "x" * 33])
        instrument = rng.choice(["AAPL", b"MSFT", 7, "NOREF", ""])
        coid = rng.choice([f"id{rng.randrange(40)}", b"fixed", "", "i" * 65])
        quantity = rng.choice([1, 5, 10.5, 200, 0, -1, NAN, INF])
        price = rng.choice([None, 100.0, 101, 104.99, 106, 0, -5, NAN, INF, 300])
        out.append((account, instrument, coid, quantity, price, side))
    return out


def test_check_many_equals_the_same_single_checks() -> None:
    t = 50 * SECOND
    pc = cache()
    for k, p in (("AAPL", 100.0), ("MSFT", 100.0), (7, 100.0)):
        put(pc, k, p, t)

    def make() -> RiskChecker:
        return RiskChecker(pc, on_no_reference="reject", max_quantity=100, max_notional=1000,
                           collar_width=5, account_max_orders=4, account_max_notional=2000,
                           period_ns=SECOND, duplicate_window_ns=SECOND)

    single, batch = make(), make()
    rng = random.Random(1)
    reasons = set()
    for rnd in range(6):
        orders = _random_orders(rng, 150)
        now = t + rnd * SECOND // 2
        expected = [single.check(*o, now_ns=now) for o in orders]
        got = batch.check_many(orders, now)
        assert list(got) == expected
        assert got.reasons == [int(d.reason) for d in expected]
        assert got.allowed == bytes(d.allowed for d in expected)
        reasons.update(got.reasons)
    # The workload reached most rules, the state-holding ones included.
    assert set(RiskReason) - reasons == {R.KILL_SWITCH_GLOBAL, R.KILL_SWITCH_ACCOUNT,
                                         R.KILL_SWITCH_INSTRUMENT, R.ACCOUNT_CAPACITY,
                                         R.DUPLICATE_CAPACITY}, reasons
    assert single.stats() == batch.stats()


def test_batch_forms_iterables_and_defaults() -> None:
    c = RiskChecker(on_no_reference="allow", duplicate_window_ns=0)
    # Any iterable; 4-tuples are market buys; memoryview and str strings.
    got = c.check_many(iter([("a", "X", "1", 2), (memoryview(b"a"), b"X", "1", 2, 5.0)]), SECOND)
    assert list(got) == [RiskDecision(True, R.NONE, None, None, None),
                         RiskDecision(True, R.NONE, None, 10.0, None)]
    # Batches of one width are read by columns as they are: 4 fields are
    # market buys, 5 are buys.
    got = c.check_many([("a", "X", "1", 2), ("b", "X", "1", 3.5)], SECOND)
    assert [(d.allowed, d.observed) for d in got] == [(True, None), (True, None)]
    got = c.check_many([("a", "X", "1", 2, 5.0), ("b", "X", "1", 3, None)], SECOND)
    assert [(d.allowed, d.observed) for d in got] == [(True, 10.0), (True, None)]
    got = c.check_many([["a", "X", "1", 2, 0.0], ["b", "X", "1", 0, 1]], SECOND)
    assert got.reasons == [R.INVALID_PRICE, R.INVALID_QUANTITY]
    c.engage("account", "s")
    got = c.check_many([("s", "X", "1", 1, 1.0, Side.SELL), ("b", "X", "1", 1, 1.0, Side.SELL)],
                       SECOND)
    assert got.reasons == [R.KILL_SWITCH_ACCOUNT, R.NONE]
    # A generator of RiskOrder, int instrument ids, mixed widths, non-ASCII.
    got = c.check_many((RiskOrder("é" * 17, 9, "z", 1) for _ in range(2)), SECOND)
    assert got.reasons == [R.INVALID_ACCOUNT] * 2 and got[0].observed == 34.0
    # A memoryview whose items are not bytes counts its bytes, not its items.
    wide = memoryview(bytes(8)).cast("I")  # 2 items, 8 bytes
    assert c.check_many([(wide, "X", "1", 1)], SECOND)[0].reason is R.NONE
    assert c.check(wide, "X", "1", 1, now_ns=SECOND).reason is R.NONE
    c.engage("account", bytes(8))
    assert c.check_many([(wide, "X", "1", 1), ("b", "X", "1", 1)], SECOND).reasons == [
        R.KILL_SWITCH_ACCOUNT, R.NONE]
    # Default time: the library's clock, read once.
    assert c.check_many([("a", "X", "1", 1)])[0].allowed


def test_invalid_batches_decide_nothing() -> None:
    c = RiskChecker(on_no_reference="allow")
    good = ("a", "X", "1", 1, 10.0)
    for orders, exc in [
        ([good, ("a", "X", "1")], TypeError),
        ([good, ("a", "X", "1", 1, 10.0, Side.BUY, "extra")], TypeError),
        ([good, 5], TypeError),
        ([good, "abcdef"], TypeError),
        ([good, {"account": "a"}], TypeError),
        ([good, ("a", "X", "1", "1")], TypeError),
        ([good, ("a", "X", "1", True)], TypeError),
        ([good, ("a", "X", "1", 1, True)], TypeError),
        ([good, ("a", "X", "1", 1, "10")], TypeError),
        ([good, ("a", "X", "1", 1, 10**400)], InvalidArgumentError),
        ([good, ("a", "X", "1", 10**400)], InvalidArgumentError),
        ([good, (None, "X", "1", 1)], TypeError),
        ([good, ("a", 1.5, "1", 1)], TypeError),
        ([good, ("a", -1, "1", 1)], InvalidArgumentError),
        ([good, ("a", "X", 17, 1)], TypeError),
        ([good, ("a", "X", "\ud800", 1)], InvalidArgumentError),
        ([good, ("a", "X", "1", 1, 10.0, 2)], InvalidArgumentError),
        ([good, ("a", "X", "1", 1, 10.0, True)], TypeError),
        ([good, ("a", "X", "1", 1, 10.0, "short")], InvalidArgumentError),
        ([good, ("a", "X", "1", 1, 10.0, None)], TypeError),
        ("orders", TypeError),
        (b"orders", TypeError),
        (5, TypeError),
    ]:
        with pytest.raises(exc) as e:
            c.check_many(orders, SECOND)  # type: ignore[arg-type]
        if isinstance(orders, list):
            assert "orders[1]" in str(e.value), (orders, e.value)
    with pytest.raises(InvalidArgumentError):
        c.check_many([good], -1)
    with pytest.raises(TypeError):
        c.check_many([good], 1.5)  # type: ignore[arg-type]
    assert c.stats().checked == 0


# -- the price cache's lifetime (test_cache_outlives_its_handle) -----------------------------


def test_a_price_cache_closed_before_the_checker_still_serves_it() -> None:
    t = 2 * SECOND
    pc = cache()
    put(pc, "AAPL", 50.0, t)
    c = RiskChecker(pc, collar_width=10)
    assert c.prices is pc
    pc.close()  # the caller lets go; the checker still reads it
    with pytest.raises(InvalidArgumentError):
        pc.put("AAPL", 51.0, 2, now_ns=t)
    assert c.prices is pc and pc.closed
    assert decide(c, "a", "AAPL", "1", 1, 54, t + 1, R.NONE).reference == 50.0
    decide(c, "a", "AAPL", "2", 1, 56, t + 1, R.PRICE_COLLAR)
    c.close()  # frees the cache too


def test_the_checker_keeps_its_price_cache_object() -> None:
    t = 2 * SECOND
    pc = cache()
    put(pc, "AAPL", 50.0, t)
    cache_ref = weakref.ref(pc)
    c = RiskChecker(pc, collar_width=10)
    del pc
    gc.collect()
    assert cache_ref() is not None and c.prices is cache_ref()
    assert decide(c, "a", "AAPL", "1", 1, 54, t, R.NONE).reference == 50.0
    # Ticks through the Python object still reach the checker.
    cache_ref().on_price("AAPL", 60.0, 2, t)  # type: ignore[union-attr]
    decide(c, "a", "AAPL", "2", 1, 54, t, R.NO_REFERENCE_PRICE)
    checker_ref = weakref.ref(c)
    del c
    gc.collect()
    assert checker_ref() is None and cache_ref() is None


# -- bad input ---------------------------------------------------------------------------------


def test_bad_options_are_refused_with_the_c_status_and_message() -> None:
    for kwargs, status, needle in [
        (dict(max_quantity=0), "TG_ERANGE", "max_quantity"),
        (dict(max_quantity=NAN), "TG_ERANGE", "max_quantity"),
        (dict(max_notional=-1), "TG_ERANGE", "max_notional"),
        (dict(collar_unit=3), "TG_EINVAL", "collar"),
        (dict(collar_width=-0.5), "TG_ERANGE", "collar_width"),
        (dict(collar_width=NAN), "TG_ERANGE", "collar_width"),
        (dict(collar_tick_size=0), "TG_ERANGE", "collar_tick_size"),
        (dict(collar_tick_size=INF), "TG_ERANGE", "collar_tick_size"),
        (dict(period_ns=0), "TG_ERANGE", "period_ns"),
        (dict(account_max_orders=0), "TG_ERANGE", "account_max_orders"),
        (dict(account_max_notional=0), "TG_ERANGE", "account_max_notional"),
        (dict(account_capacity=0), "TG_ERANGE", "account_capacity"),
        (dict(account_capacity=2**24 + 1), "TG_ERANGE", "account_capacity"),
        (dict(duplicate_capacity=0), "TG_ERANGE", "duplicate_capacity"),
        (dict(kill_switch_capacity=2**20 + 1), "TG_ERANGE", "kill_switch_capacity"),
        (dict(on_no_reference=2), "TG_EINVAL", "on_no_reference"),
    ]:
        with pytest.raises(InvalidArgumentError) as e:
            RiskChecker(**kwargs)  # type: ignore[arg-type]
        assert_status(e, status)
        assert needle in e.value.message, (kwargs, e.value.message)
    for kwargs, exc in [
        (dict(collar_unit="percentage"), InvalidArgumentError),
        (dict(on_no_reference="maybe"), InvalidArgumentError),
        (dict(collar_unit=True), TypeError),
        (dict(collar_unit=1.0), TypeError),
        (dict(max_quantity="5"), TypeError),
        (dict(max_quantity=True), TypeError),
        (dict(max_notional=None), TypeError),
        (dict(account_capacity=-1), InvalidArgumentError),
        (dict(account_capacity=1.5), TypeError),
        (dict(account_max_orders=2**64), InvalidArgumentError),
        (dict(period_ns=NAN), InvalidArgumentError),
        (dict(seed=-1), InvalidArgumentError),
        (dict(on_kill=42), TypeError),
        (dict(prices=42), TypeError),
        (dict(prices=tollgate.Limiter(tollgate.Tier("t", 1, 1))), TypeError),
    ]:
        with pytest.raises(exc):
            RiskChecker(**kwargs)  # type: ignore[arg-type]
    closed = cache()
    closed.close()
    with pytest.raises(InvalidArgumentError, match="closed"):
        RiskChecker(closed)
    # The extremes the library accepts.
    RiskChecker(account_capacity=2**24, kill_switch_capacity=2**20, account_max_orders=2**64 - 1,
                collar_width=0, seed=2**64 - 1, collar_unit=CollarUnit.TICKS,
                on_no_reference=NoReferencePolicy.ALLOW)


@pytest.mark.parametrize(
    "call, exc",
    [
        (lambda c: c.check(None, "X", "1", 1), TypeError),
        (lambda c: c.check(5, "X", "1", 1), TypeError),
        (lambda c: c.check("a", None, "1", 1), TypeError),
        (lambda c: c.check("a", 1.5, "1", 1), TypeError),
        (lambda c: c.check("a", True, "1", 1), TypeError),
        (lambda c: c.check("a", -1, "1", 1), InvalidArgumentError),
        (lambda c: c.check("a", 2**64, "1", 1), InvalidArgumentError),
        (lambda c: c.check("a", "X", 17, 1), TypeError),
        (lambda c: c.check("a", "X", "\ud800", 1), UnicodeError),
        (lambda c: c.check("a", "X", "1", True), TypeError),
        (lambda c: c.check("a", "X", "1", "1"), TypeError),
        (lambda c: c.check("a", "X", "1", None), TypeError),
        (lambda c: c.check("a", "X", "1", 10**400), InvalidArgumentError),
        (lambda c: c.check("a", "X", "1", 1, True), TypeError),
        (lambda c: c.check("a", "X", "1", 1, "10"), TypeError),
        (lambda c: c.check("a", "X", "1", 1, -(10**400)), InvalidArgumentError),
        (lambda c: c.check("a", "X", "1", 1, 10, 2), InvalidArgumentError),
        (lambda c: c.check("a", "X", "1", 1, 10, -1), InvalidArgumentError),
        (lambda c: c.check("a", "X", "1", 1, 10, "short"), InvalidArgumentError),
        (lambda c: c.check("a", "X", "1", 1, 10, True), TypeError),
        (lambda c: c.check("a", "X", "1", 1, 10, None), TypeError),
        (lambda c: c.check("a", "X", "1", 1, 10, 1.0), TypeError),
        (lambda c: c.check("a", "X", "1", 1, 10, Side.BUY, -1), InvalidArgumentError),
        (lambda c: c.check("a", "X", "1", 1, 10, Side.BUY, 2**64), InvalidArgumentError),
        (lambda c: c.check("a", "X", "1", 1, 10, Side.BUY, 1.5), TypeError),
        (lambda c: c.check("a", "X", "1", 1, 10, Side.BUY, "now"), TypeError),
        (lambda c: c.engage("galactic"), InvalidArgumentError),
        (lambda c: c.engage(3, "a"), InvalidArgumentError),
        (lambda c: c.engage(-1, "a"), InvalidArgumentError),
        (lambda c: c.engage(True), TypeError),
        (lambda c: c.engage(None), TypeError),
        (lambda c: c.engage("global", "key"), InvalidArgumentError),
        (lambda c: c.engage("account"), InvalidArgumentError),
        (lambda c: c.engage("account", ""), InvalidArgumentError),
        (lambda c: c.engage("account", "k" * 33), InvalidArgumentError),
        (lambda c: c.engage("account", 5), TypeError),
        (lambda c: c.engage("instrument", 1.5), TypeError),
        (lambda c: c.engage("account", "a", now_ns=-1), InvalidArgumentError),
        (lambda c: c.release("account", ""), InvalidArgumentError),
        (lambda c: c.release("global", "key"), InvalidArgumentError),
        (lambda c: c.release(7), InvalidArgumentError),
        (lambda c: c.engaged("account"), InvalidArgumentError),
        (lambda c: c.engaged("instrument", "k" * 33), InvalidArgumentError),
        (lambda c: c.engaged(9), InvalidArgumentError),
    ],
)
def test_bad_calls_raise_clear_exceptions_and_count_nothing(call: Any, exc: Any) -> None:
    c = RiskChecker(on_no_reference="allow")
    with pytest.raises(exc) as e:
        call(c)
    assert str(e.value)
    s = c.stats()
    assert s.checked == 0 and s.killed_accounts == s.killed_instruments == 0 and not s.global_kill


def test_library_messages_reach_the_exception() -> None:
    c = RiskChecker()
    with pytest.raises(InvalidArgumentError) as e:
        c.engage("account", "")
    assert_status(e, "TG_EINVAL")
    assert "1..32" in e.value.message
    with pytest.raises(InvalidArgumentError) as e:
        c.engaged("account", "")
    assert "1..32" in e.value.message


def test_a_closed_checker_refuses_every_call() -> None:
    with RiskChecker(on_no_reference="allow") as c:
        assert c.check("a", "X", "1", 1, now_ns=SECOND).allowed
        assert not c.closed and "RiskChecker" in repr(c)
    assert c.closed and "closed" in repr(c)
    c.close()  # idempotent
    calls = [
        lambda: c.check("a", "X", "1", 1, now_ns=SECOND),
        lambda: c.check("a", "X", "1", 1),
        lambda: c.check_many([("a", "X", "1", 1)], SECOND),
        lambda: c.check_many([], SECOND),
        lambda: c.engage("global"),
        lambda: c.release("account", "a"),
        lambda: c.engaged("global"),
        lambda: c.stats(),
        lambda: c.on_kill(print),
        lambda: c.on_kill(None),
    ]
    for call in calls:
        with pytest.raises(InvalidArgumentError) as e:
            call()
        assert_status(e, "TG_EINVAL")
        assert "closed" in e.value.message


def test_decisions_are_immutable_and_false_when_rejected() -> None:
    c = RiskChecker()
    d = c.check("a", "X", "1", 1, 1, now_ns=SECOND)
    assert not d and d.allowed is False
    with pytest.raises(AttributeError):
        d.allowed = True  # type: ignore[misc]
    ok = RiskChecker(on_no_reference="allow").check("a", "X", "1", 1, 1, now_ns=SECOND)
    assert ok and ok.allowed is True
    with pytest.raises(Exception):
        c.stats().checked = 5  # type: ignore[misc]


# -- threads ------------------------------------------------------------------------------


def test_threads_racing_one_account_accept_exactly_the_limit() -> None:
    # As the C test: ids overlap between the threads (half are shared), so
    # each distinct id is accepted at most once, until the account's limit.
    threads, per_thread, limit = 4, 2000, 4000
    c = RiskChecker(on_no_reference="allow", account_max_orders=limit)
    results: List[Tuple[int, int, int]] = [(0, 0, 0)] * threads
    start = threading.Barrier(threads)

    def work(k: int) -> None:
        start.wait()
        accepted = duplicates = other = 0
        first = k * per_thread // 2
        ids = [f"id{first + i}" for i in range(per_thread)]
        decisions: List[RiskDecision] = []
        for i in range(0, per_thread, 2):
            decisions.append(c.check("shared", "X", ids[i], 1, 1, now_ns=5 * SECOND))
            decisions.extend(c.check_many([("shared", "X", ids[i + 1], 1, 1)], 5 * SECOND))
        for d in decisions:
            if d.allowed:
                accepted += 1
            elif d.reason is R.DUPLICATE_ORDER:
                duplicates += 1
            elif d.reason is not R.ACCOUNT_ORDER_COUNT:
                other += 1
        results[k] = (accepted, duplicates, other)

    pool = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    accepted = sum(r[0] for r in results)
    duplicates = sum(r[1] for r in results)
    distinct = per_thread // 2 * (threads + 1)  # 5000 distinct ids
    assert sum(r[2] for r in results) == 0
    assert accepted == min(limit, distinct)
    s = c.stats()
    assert s.checked == threads * per_thread
    assert s.decisions[R.DUPLICATE_ORDER] == duplicates
    assert s.decisions[R.ACCOUNT_ORDER_COUNT] + duplicates + accepted == threads * per_thread


def test_kill_events_on_many_threads() -> None:
    lock = threading.Lock()
    keys: List[bytes] = []

    def cb(ev: KillSwitchEvent) -> None:
        with lock:
            keys.append(ev.key)
        if ev.key.endswith(b"7"):
            raise Boom(ev.key.decode())

    c = RiskChecker(on_no_reference="allow", kill_switch_capacity=1024, on_kill=cb)
    raised: List[str] = []

    def work(k: int) -> None:
        for i in range(50):
            key = f"t{k}-{i}"
            try:
                c.engage("account", key)
            except Boom as e:
                raised.append(str(e))
            if c.check(key, "X", "1", 1).reason is not R.KILL_SWITCH_ACCOUNT:
                raised.append(f"{key} not killed")

    pool = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    assert len(keys) == 200 and c.stats().killed_accounts == 200
    # Each exception reached the thread whose engage caused it.
    assert sorted(raised) == sorted(f"t{k}-{i}" for k in range(4) for i in range(50) if i % 10 == 7)
