"""The rate limiter through the binding: the C ABI test cases, with an
injected clock, plus the Python-specific surface (batches, reservations)."""

from __future__ import annotations

import gc
import random
import weakref
from array import array

import pytest
from conftest import SECOND, T0, emission_interval

import tollgate
from tollgate import (
    RETRY_NEVER,
    InvalidArgumentError,
    LimitDecision,
    Limiter,
    LimitReason,
    NotFoundError,
    PackedKeys,
    StateError,
    Tier,
)


def drain(lim: Limiter, key: bytes, now: int, tier: int = 0) -> int:
    """Acquire unit requests at `now` until one is rejected; return the count."""
    n = 0
    while lim.acquire(key, tier=tier, now_ns=now).allowed:
        n += 1
        assert n <= 10_000, "the bucket never ran dry"
    return n


# -- exact GCRA semantics ---------------------------------------------------


@pytest.mark.parametrize("rate,burst", [(10, 5), (3, 1), (1000, 7), (7.3, 4), (250_000, 3)])
def test_full_bucket_admits_burst_plus_floor_of_window_over_T(rate: float, burst: int) -> None:
    T = emission_interval(rate)
    lim = Limiter(Tier("t", rate, burst))
    window = 10 * T + T // 3
    # A greedy client polling at a fixed step, and also at the very instants
    # tokens arrive (with burst 1 a late poll would lose the wait: a full
    # bucket holds no more than its burst).
    polls = set(range(T0, T0 + window, max(T // 7, 1)))
    polls |= set(range(T0, T0 + window + 1, T))
    polls.add(T0 + window)
    admitted = sum(drain(lim, b"k", now) for now in sorted(polls))
    assert admitted == burst + window // T


@pytest.mark.parametrize("rate,burst", [(10, 3), (7.3, 2), (1_000_000, 1)])
def test_each_token_arrives_exactly_every_T(rate: float, burst: int) -> None:
    T = emission_interval(rate)
    lim = Limiter(Tier("t", rate, burst))
    assert drain(lim, b"k", T0) == burst
    for k in range(1, 6):
        d = lim.acquire(b"k", now_ns=T0 + k * T - 1)
        assert not d.allowed and d.reason is LimitReason.RATE
        assert d.retry_after_ns == 1
        d = lim.acquire(b"k", now_ns=T0 + k * T)
        assert d.allowed and d.reason is LimitReason.NONE and d.retry_after_ns == 0


def test_time_standing_still_or_stepping_back_creates_no_tokens() -> None:
    T = emission_interval(10)
    lim = Limiter(Tier("t", 10, 3))
    assert drain(lim, b"k", T0) == 3
    for _ in range(100):
        assert not lim.acquire(b"k", now_ns=T0).allowed
    for back in (1, T // 2, 5 * T, T0 // 2, T0):
        d = lim.acquire(b"k", now_ns=T0 - back)
        assert not d.allowed
        assert d.retry_after_ns == back + T
        assert lim.remaining(b"k", now_ns=T0 - back) == 0
    # Going back moved nothing: exactly one token at T0 + T.
    assert lim.acquire(b"k", now_ns=T0 + T).allowed
    assert not lim.acquire(b"k", now_ns=T0 + T).allowed


def test_retry_after_is_exact() -> None:
    T = emission_interval(10)
    lim = Limiter(Tier("t", 10, 4))
    assert drain(lim, b"k", T0) == 4
    d = lim.acquire(b"k", now_ns=T0)
    assert (d.allowed, d.reason, d.retry_after_ns, d.remaining) == (False, LimitReason.RATE, T, 0)
    for cost in (1, 2, 4):
        d = lim.acquire(b"k", cost=cost, now_ns=T0)
        assert d.retry_after_ns == cost * T
    # Part way into a refill.
    d = lim.acquire(b"k", cost=2, now_ns=T0 + T // 3)
    assert d.retry_after_ns == 2 * T - T // 3
    assert not lim.acquire(b"k", cost=2, now_ns=T0 + 2 * T - 1).allowed
    d = lim.acquire(b"k", cost=2, now_ns=T0 + 2 * T)
    assert d.allowed and d.remaining == 0


def test_cost_above_burst_is_never_admissible() -> None:
    lim = Limiter(Tier("t", 100, 5))
    d = lim.acquire(b"k", cost=6, now_ns=T0)
    assert d == LimitDecision(False, LimitReason.COST_EXCEEDS_BURST, RETRY_NEVER, 5, False)
    assert RETRY_NEVER == 2**64 - 1
    assert lim.remaining(b"k", now_ns=T0) == 5
    assert lim.acquire(b"k", cost=5, now_ns=T0).allowed  # exactly burst is fine


def test_remaining_and_costs() -> None:
    lim = Limiter(Tier("t", 10, 10))
    assert lim.remaining(b"new", now_ns=T0) == 10
    d = lim.acquire(b"k", cost=3, now_ns=T0)
    assert d.allowed and d.remaining == 7
    assert lim.remaining(b"k", now_ns=T0) == 7
    assert lim.acquire(b"k", cost=7, now_ns=T0).remaining == 0
    assert not lim.acquire(b"k", now_ns=T0).allowed


def test_str_and_bytes_keys_name_the_same_bucket_and_empty_key_is_valid() -> None:
    lim = Limiter(Tier("t", 10, 2))
    assert lim.acquire("ключ", now_ns=T0).remaining == 1
    assert lim.acquire("ключ".encode(), now_ns=T0).remaining == 0
    assert lim.acquire(bytearray(b"other"), now_ns=T0).remaining == 1
    assert lim.acquire(memoryview(b"other"), now_ns=T0).remaining == 0
    assert lim.acquire(b"", now_ns=T0).remaining == 1
    assert lim.acquire("", now_ns=T0).remaining == 0


def test_default_clock_is_used_without_now_ns() -> None:
    lim = Limiter(Tier("t", 1, 2))
    before = tollgate.now_ns()
    assert lim.acquire(b"k").allowed and lim.acquire(b"k").allowed
    d = lim.acquire(b"k")
    assert not d.allowed
    assert 0 < d.retry_after_ns <= SECOND
    assert tollgate.now_ns() >= before


# -- peek, reserve ---------------------------------------------------------


def test_peek_consumes_nothing_and_inserts_no_key() -> None:
    lim = Limiter(Tier("t", 10, 3))
    for _ in range(10):
        d = lim.peek(b"k", now_ns=T0)
        assert d.allowed and d.remaining == 2
    assert lim.stats().keys == 0
    assert lim.remaining(b"k", now_ns=T0) == 3
    for _ in range(3):
        expected = lim.peek(b"k", now_ns=T0)
        assert lim.acquire(b"k", now_ns=T0) == expected
    d = lim.peek(b"k", cost=2, now_ns=T0)
    assert not d.allowed and d.retry_after_ns == 2 * emission_interval(10)
    assert lim.peek(b"k", cost=4, now_ns=T0).reason is LimitReason.COST_EXCEEDS_BURST
    assert lim.stats().keys == 1


def test_reservation_cancel_gives_tokens_back_once() -> None:
    lim = Limiter(Tier("t", 10, 3))
    granted = [lim.reserve(b"k", now_ns=T0) for _ in range(3)]
    assert all(r.allowed for r in granted)
    rejected = lim.reserve(b"k", now_ns=T0)
    assert not rejected.allowed and rejected.decision.reason is LimitReason.RATE
    rejected.cancel(now_ns=T0)  # a rejected reservation gives nothing back
    assert lim.remaining(b"k", now_ns=T0) == 0

    granted[0].cancel(now_ns=T0)
    assert granted[0].cancelled
    assert lim.remaining(b"k", now_ns=T0) == 1
    assert lim.acquire(b"k", now_ns=T0).allowed
    assert not lim.acquire(b"k", now_ns=T0).allowed
    with pytest.raises(StateError) as info:
        granted[0].cancel(now_ns=T0)
    assert info.value.code == tollgate._lib.lib.TG_ESTATE
    assert lim.stats().cancelled == 1


def test_cancel_never_overfills_the_bucket() -> None:
    T = emission_interval(10)
    lim = Limiter(Tier("t", 10, 3))
    r = lim.reserve(b"k", cost=3, now_ns=T0)
    assert r.allowed
    r.cancel(now_ns=T0 + 10 * T)  # the bucket refilled meanwhile
    assert lim.remaining(b"k", now_ns=T0 + 10 * T) == 3
    assert drain(lim, b"k", T0 + 10 * T) == 3
    # Partly refilled: only the part that has not come back by itself returns.
    lim2 = Limiter(Tier("t", 10, 3))
    r = lim2.reserve(b"k", cost=3, now_ns=T0)
    r.cancel(now_ns=T0 + T)
    assert lim2.remaining(b"k", now_ns=T0 + T) == 3


# -- modes ---------------------------------------------------------------------


def test_shadow_mode_admits_what_it_would_reject_and_counts_it() -> None:
    T = emission_interval(10)
    lim = Limiter(Tier("t", 10, 2), shadow=True)
    assert lim.shadow is True
    for _ in range(2):
        d = lim.acquire(b"k", now_ns=T0)
        assert d.allowed and not d.shadow
    d = lim.acquire(b"k", now_ns=T0)
    assert d.allowed and d.shadow and d.reason is LimitReason.RATE
    assert d.retry_after_ns == T
    s = lim.stats()
    assert (s.admitted, s.rejected, s.shadow_rejected) == (3, 0, 1)
    lim.shadow = False
    assert lim.shadow is False
    d = lim.acquire(b"k", now_ns=T0)
    assert not d.allowed and not d.shadow and d.reason is LimitReason.RATE
    lim.shadow = True
    assert lim.acquire(b"k", cost=3, now_ns=T0).shadow  # cost > burst, shadowed too


def test_multiplier_scales_the_rate() -> None:
    lim = Limiter(Tier("t", 10, 1), multiplier=2.0)
    assert lim.multiplier == 2.0
    T = emission_interval(10, 2.0)
    assert lim.acquire(b"a", now_ns=T0).allowed
    assert not lim.acquire(b"a", now_ns=T0 + T - 1).allowed
    assert lim.acquire(b"a", now_ns=T0 + T).allowed

    t1 = T0 + SECOND
    lim.set_multiplier(0.5, now_ns=t1)
    assert lim.multiplier == 0.5
    T = emission_interval(10, 0.5)
    assert lim.acquire(b"b", now_ns=t1).allowed
    d = lim.acquire(b"b", now_ns=t1)
    assert d.retry_after_ns == T
    assert not lim.acquire(b"b", now_ns=t1 + T - 1).allowed
    assert lim.acquire(b"b", now_ns=t1 + T).allowed


def test_multiplier_change_never_creates_tokens() -> None:
    T = emission_interval(10)
    lim = Limiter(Tier("t", 10, 4))
    assert drain(lim, b"k", T0) == 4
    lim.set_multiplier(4.0, now_ns=T0)
    d = lim.acquire(b"k", now_ns=T0)
    assert not d.allowed and d.retry_after_ns == T // 4
    assert lim.acquire(b"k", now_ns=T0 + T // 4).allowed
    # Back to 1: the bucket keeps what it holds, refills at the old speed.
    lim.set_multiplier(1.0, now_ns=T0 + T // 4)
    assert lim.remaining(b"k", now_ns=T0 + T // 4) == 0
    assert lim.acquire(b"k", now_ns=T0 + T // 4 + T).allowed


def test_multiplier_bad_values_change_nothing() -> None:
    lim = Limiter(Tier("t", 10, 1), multiplier=0.5)
    for bad in (0.0, -1.0, float("inf"), float("nan"), 1e7):
        with pytest.raises(InvalidArgumentError):
            lim.multiplier = bad
        with pytest.raises(InvalidArgumentError):
            lim.set_multiplier(bad, now_ns=T0)
    assert lim.multiplier == 0.5
    with pytest.raises(TypeError):
        lim.multiplier = "fast"  # type: ignore[assignment]
    with pytest.raises(ValueError):
        lim.set_multiplier(2.0, now_ns=-1)
    lim.multiplier = 3.0  # at the library's clock
    assert lim.multiplier == 3.0


# -- tiers -------------------------------------------------------------------


def test_tiers_by_index_and_name() -> None:
    lim = Limiter([Tier("retail", 10, 2), Tier("pro", 100, 5)])
    assert lim.tier_index("retail") == 0
    assert lim.tier_index("pro") == 1
    with pytest.raises(NotFoundError) as info:
        lim.tier_index("vip")
    assert info.value.status == "TG_ENOTFOUND"
    assert drain(lim, b"pro-acct", T0, tier=1) == 5
    assert drain(lim, b"retail-acct", T0, tier="retail") == 2
    assert lim.acquire(b"pro-acct", tier="pro", now_ns=T0).reason is LimitReason.RATE
    assert lim.remaining(b"pro-acct", tier="pro", now_ns=T0) == 0
    # Each tier's own rate: pro refills every 10 ms, retail every 100 ms.
    assert lim.acquire(b"pro-acct", tier="pro", now_ns=T0 + emission_interval(100)).allowed
    assert not lim.acquire(b"retail-acct", tier=0, now_ns=T0 + emission_interval(100)).allowed
    assert lim.acquire(b"retail-acct", tier=0, now_ns=T0 + emission_interval(10)).allowed
    assert [t.name for t in lim.tiers] == ["retail", "pro"]


# -- hierarchy -------------------------------------------------------------------


def test_parent_limits_children_and_refunds_the_child() -> None:
    T = emission_interval(10)
    parent = Limiter(Tier("global", 10, 3))
    child = Limiter(Tier("acct", 10, 2), parent=parent)
    assert child.parent is parent
    assert child.acquire(b"a", now_ns=T0).allowed
    assert child.acquire(b"a", now_ns=T0).allowed
    assert child.acquire(b"b", now_ns=T0).allowed
    d = child.acquire(b"b", now_ns=T0)
    assert not d.allowed and d.reason is LimitReason.PARENT
    assert d.retry_after_ns == T
    # The child's token was given back: b still holds one.
    assert child.remaining(b"b", now_ns=T0) == 1
    assert parent.remaining(b"", now_ns=T0) == 0
    # The parent's own limit is its empty key.
    assert not parent.acquire(b"", now_ns=T0).allowed
    assert child.acquire(b"b", now_ns=T0 + T).allowed


def test_every_ancestor_must_admit_and_rejections_refund_every_level() -> None:
    T = emission_interval(10)
    root = Limiter(Tier("root", 10, 2))
    middle = Limiter(Tier("mid", 10, 5), parent=root)
    leaf = Limiter(Tier("leaf", 10, 5), parent=middle)
    assert leaf.acquire(b"k", now_ns=T0).allowed
    assert middle.acquire(b"m", now_ns=T0).allowed  # the root's last token
    d = leaf.acquire(b"k", now_ns=T0)
    assert not d.allowed and d.reason is LimitReason.PARENT and d.retry_after_ns == T
    # Nothing stayed taken below the level that said no.
    assert leaf.remaining(b"k", now_ns=T0) == 4
    assert middle.remaining(b"", now_ns=T0) == 4  # only the first request's token
    assert root.remaining(b"", now_ns=T0) == 0
    # A reservation takes, and gives back, at every level.
    t1 = T0 + T
    r = leaf.reserve(b"k", now_ns=t1)
    assert r.allowed
    levels = [(leaf, b"k"), (middle, b""), (root, b"")]
    assert [lim.remaining(key, now_ns=t1) for lim, key in levels] == [4, 4, 0]
    r.cancel(now_ns=t1)
    assert [lim.remaining(key, now_ns=t1) for lim, key in levels] == [5, 5, 1]


def test_hierarchy_depth_is_bounded() -> None:
    chain = [Limiter(Tier("x", 10, 5))]
    with pytest.raises(InvalidArgumentError, match="levels"):
        for _ in range(20):
            chain.append(Limiter(Tier("x", 10, 5), parent=chain[-1]))
    assert len(chain) == 15


def test_child_tier_beyond_parent_tiers_uses_parent_tier_zero() -> None:
    parent = Limiter(Tier("global", 10, 1))
    child = Limiter([Tier("x", 10, 5), Tier("y", 10, 5)], parent=parent)
    assert child.acquire(b"k", tier="y", now_ns=T0).allowed
    assert child.acquire(b"k", tier="x", now_ns=T0).reason is LimitReason.PARENT


def test_parent_freed_before_child_keeps_working() -> None:
    T = emission_interval(10)
    parent = Limiter(Tier("global", 10, 1))
    child = Limiter(Tier("acct", 10, 5), parent=parent)
    assert child.acquire(b"a", now_ns=T0).allowed
    parent.close()
    assert parent.closed
    # The library keeps the parent's state alive for the child.
    assert child.acquire(b"a", now_ns=T0).reason is LimitReason.PARENT
    assert child.acquire(b"a", now_ns=T0 + T).allowed
    child.close()
    child.close()  # idempotent


def test_handles_freed_by_gc_in_any_order() -> None:
    for order in ("parent-first", "child-first"):
        parent = Limiter(Tier("global", 10, 1))
        child = Limiter(Tier("acct", 10, 5), parent=parent)
        sibling = Limiter(Tier("acct", 10, 5), parent=parent)
        parent_ref = weakref.ref(parent)
        assert child.acquire(b"k", now_ns=T0).allowed
        if order == "parent-first":
            del parent
            gc.collect()
            assert parent_ref() is not None  # the children hold a reference
            parent_ref().close()  # type: ignore[union-attr]
            gc.collect()
            assert sibling.acquire(b"k", now_ns=T0).reason is LimitReason.PARENT
            del sibling
            gc.collect()
            assert child.acquire(b"k", now_ns=T0).reason is LimitReason.PARENT
            del child
        else:
            del child
            gc.collect()
            assert sibling.acquire(b"k", now_ns=T0).reason is LimitReason.PARENT
            del sibling
            gc.collect()
            assert parent.acquire(b"", now_ns=T0).reason is LimitReason.RATE
            del parent
        gc.collect()
        assert parent_ref() is None


def test_closing_a_child_releases_its_parent_reference() -> None:
    parent = Limiter(Tier("global", 10, 1))
    child = Limiter(Tier("acct", 10, 5), parent=parent)
    ref = weakref.ref(parent)
    del parent
    child.close()
    assert child.parent is None
    gc.collect()
    assert ref() is None


# -- capacity -------------------------------------------------------------------


def _fill_until_capacity(lim: Limiter, now: int) -> tuple[int, bytes, tollgate.LimitDecision]:
    slots = lim.stats().capacity
    for i in range(4 * slots + 64):
        key = b"key-%d" % i
        d = lim.acquire(key, now_ns=now)
        if not d.allowed:
            return i, key, d
    raise AssertionError("the table never filled up")


def test_full_table_with_nothing_idle_rejects_then_evicts_idle_buckets() -> None:
    T = emission_interval(10)
    lim = Limiter(Tier("t", 10, 5), capacity=4)
    slots = lim.stats().capacity
    assert slots >= 4
    admitted, key, d = _fill_until_capacity(lim, T0)
    assert admitted == 4  # the configured capacity, although the table has more slots
    assert d.reason is LimitReason.CAPACITY
    # Every admitted key took one token: its bucket is idle again after T.
    assert d.retry_after_ns == T
    s = lim.stats()
    assert s.capacity_rejected == 1 and s.keys == admitted and s.evictions == 0
    assert lim.acquire(key, now_ns=T0 + T - 1).reason is LimitReason.CAPACITY
    d = lim.acquire(key, now_ns=T0 + T)
    assert d.allowed and d.remaining == 4
    assert lim.stats().evictions == 1


def test_overflow_policy_decides_new_keys_against_a_shared_bucket() -> None:
    lim = Limiter(Tier("t", 10, 2), capacity=4, on_full="overflow")
    slots = lim.stats().capacity
    seen = []
    for i in range(4 * slots + 64):
        seen.append(lim.acquire(b"key-%d" % i, now_ns=T0))
        if len(seen) > slots + 8 and not seen[-1].allowed:
            break
    assert all(d.reason is not LimitReason.CAPACITY for d in seen)
    # Once the table is full, new keys share one overflow bucket of burst 2.
    rejected = [d for d in seen if not d.allowed]
    assert rejected and rejected[0].reason is LimitReason.RATE
    assert len(seen) - len(rejected) <= slots + 2


# -- batches ---------------------------------------------------------------------


def test_batch_equals_the_same_single_calls() -> None:
    rng = random.Random(20240611)
    tiers = [Tier("a", 50, 5), Tier("b", 20, 3)]
    batch_lim, single_lim = Limiter(tiers), Limiter(tiers)
    pool = [b"acct-%d" % i for i in range(12)] + [b""]
    now = T0
    for _ in range(40):
        n = rng.randint(0, 60)
        keys = [rng.choice(pool) for _ in range(n)]
        costs = [rng.randint(1, 6) for _ in range(n)]
        tier_ids = [rng.randint(0, 1) for _ in range(n)]
        batch = batch_lim.acquire_many(keys, costs, tier_ids, now_ns=now)
        singles = [single_lim.acquire(k, c, t, now) for k, c, t in zip(keys, costs, tier_ids)]
        assert len(batch) == n
        assert list(batch) == singles
        assert batch.decisions() == singles
        assert [batch[i] for i in range(n)] == singles
        assert batch.allowed == bytes(d.allowed for d in singles)
        assert batch.allowed_count == sum(d.allowed for d in singles)
        assert batch.reasons == [int(d.reason) for d in singles]
        assert batch.retry_after_ns == [d.retry_after_ns for d in singles]
        assert batch.remaining == [d.remaining for d in singles]
        assert batch.shadow == bytes(n)
        now += rng.randint(0, 80_000_000)
    assert batch_lim.stats() == single_lim.stats()


def test_batch_argument_forms() -> None:
    lim = Limiter([Tier("a", 10, 3), Tier("b", 10, 1)])
    assert len(lim.acquire_many([], now_ns=T0)) == 0
    b = lim.acquire_many(["x", b"x", bytearray(b"x"), "x"], now_ns=T0)
    assert b.allowed == b"\x01\x01\x01\x00"
    assert not b.all_allowed
    b = lim.acquire_many((b"y", b"z"), costs=array("I", [3, 1]), tiers="b", now_ns=T0)
    assert b.allowed == b"\x00\x01"
    assert b.reasons == [LimitReason.COST_EXCEEDS_BURST, LimitReason.NONE]
    assert b.retry_after_ns[0] == RETRY_NEVER
    b = lim.acquire_many(iter([b"p", b"q"]), tiers=["a", 1], now_ns=T0)
    assert b.all_allowed
    assert b[-1] == LimitDecision(True, LimitReason.NONE, 0, 0, False)
    assert b[0].remaining == 2
    packed = PackedKeys([b"m", b"n", "o"])
    assert len(packed) == 3
    for _ in range(3):
        assert lim.acquire_many(packed, now_ns=T0).all_allowed
    assert lim.acquire_many(packed, now_ns=T0).allowed == bytes(3)
    with pytest.raises(IndexError):
        b[2]
    assert b[0:1] == [b[0]]


def test_packed_keys() -> None:
    packed = PackedKeys([b"ab", "c", b""])
    assert (len(packed), packed.data, packed.offsets) == (3, b"abc", [0, 2, 3, 3])
    assert [packed[i] for i in range(3)] == [b"ab", b"c", b""] and packed[-3] == b"ab"
    fixed = PackedKeys.fixed_width(b"k1k2k3k1", 2)
    assert len(fixed) == 4 and fixed.offsets == [0, 2, 4, 6, 8] and fixed[3] == b"k1"
    lim = Limiter(Tier("a", 10, 1))
    assert lim.acquire_many(fixed, now_ns=T0).allowed == b"\x01\x01\x01\x00"
    again = PackedKeys.fixed_width(bytearray(b"k4k5k6k7"), 2)
    assert again.offsets == fixed.offsets
    assert lim.acquire_many(again, now_ns=T0).all_allowed
    assert len(PackedKeys.fixed_width(b"", 3)) == 0
    with pytest.raises(InvalidArgumentError):
        PackedKeys.fixed_width(b"abc", 2)
    with pytest.raises(InvalidArgumentError):
        PackedKeys.fixed_width(b"abc", 0)
    with pytest.raises(TypeError):
        PackedKeys.fixed_width("abc", 1)  # type: ignore[arg-type]
    with pytest.raises(IndexError):
        packed[3]


@pytest.mark.parametrize(
    "keys",
    [
        [b"ab", b"a", b"abc"],  # total length n * len(keys[0]) by coincidence
        [b"", b"", b""],  # all empty: one bucket
        [b"k1", b"k2", b"k1", b"k3"],  # one width
        [b"k1", "k2", b"k1"],  # one width after encoding
        [b"x" * 300, b"y" * 300, b"x" * 300],
    ],
)
def test_batch_key_packing(keys: list) -> None:
    a, b = Limiter(Tier("a", 10, 2)), Limiter(Tier("a", 10, 2))
    for _ in range(2):
        batch = a.acquire_many(keys, now_ns=T0)
        assert list(batch) == [b.acquire(k, now_ns=T0) for k in keys]
    packed = PackedKeys(keys)
    assert [packed[i] for i in range(len(keys))] == [k.encode() if isinstance(k, str) else k for k in keys]


def test_invalid_batch_consumes_nothing() -> None:
    lim = Limiter([Tier("a", 10, 3)])
    for costs, tiers, exc in (
        ([1, 1, 0], None, InvalidArgumentError),
        ([1, 1, 1], [0, 0, 5], InvalidArgumentError),
        ([1, 1, 1], [0, 0, "zzz"], NotFoundError),
        ([1, 1], None, InvalidArgumentError),
        ([1, 1, -1], None, ValueError),
        ([1, 1, 1.5], None, TypeError),
    ):
        with pytest.raises(exc):
            lim.acquire_many([b"k", b"k", b"k"], costs=costs, tiers=tiers, now_ns=T0)
    assert lim.remaining(b"k", now_ns=T0) == 3
    assert lim.stats().admitted == 0


def test_batch_shadow_column() -> None:
    lim = Limiter(Tier("a", 10, 1), shadow=True)
    b = lim.acquire_many([b"k", b"k"], now_ns=T0)
    assert b.allowed == b"\x01\x01"
    assert b.shadow == b"\x00\x01"
    assert b[1].shadow and b[1].reason is LimitReason.RATE


def test_stats_reconcile() -> None:
    lim = Limiter(Tier("a", 10, 4))
    offered = 0
    for i in range(50):
        lim.acquire(b"k%d" % (i % 3), now_ns=T0 + i * 1000)
        offered += 1
    lim.acquire_many([b"k0"] * 20, now_ns=T0 + SECOND)
    offered += 20
    s = lim.stats()
    assert s.admitted + s.rejected == offered
    assert s.keys == 3
    assert s.capacity >= 65536
