"""Keyed GCRA rate limiter (``tg_limiter``).

A :class:`Limiter` holds one token bucket per key (bytes or str) and tier.
Every decision takes the time ``now_ns`` (monotonic nanoseconds) from the
caller; when it is omitted the library's clock (``tg_now_ns``) is read.

With rate ``r`` and burst ``b`` the emission interval is
``T = round(1e9 / (r * multiplier))`` ns and, over any window of ``t`` ns, a
full bucket admits exactly ``b + t // T`` unit requests. A rejection is a
normal outcome: ``acquire`` returns a :class:`LimitDecision` whose
``allowed`` is False, with a reason and the exact wait ``retry_after_ns``.

Decision methods are thread-safe (the library is lock-free and releases the
GIL during the call). ``close()`` must not race with calls on the same
limiter.
"""

from __future__ import annotations

import enum
import struct
import sys
import threading
from array import array
from dataclasses import dataclass
from itertools import accumulate
from typing import (
    Any,
    Dict,
    Iterator,
    List,
    NamedTuple,
    Optional,
    Sequence,
    Tuple,
    Union,
    overload,
)

from ._lib import (
    NULL,
    U32_MAX,
    U64_MAX,
    Key,
    batch_index,
    check_float,
    check_now,
    check_uint,
    coerce_key,
    ffi,
    lib,
)
from .errors import (
    InvalidArgumentError,
    StateError,
    TollgateError,
    error_for,
    error_from_struct,
    invalid,
)

__all__ = [
    "Limiter",
    "Tier",
    "LimitReason",
    "LimitDecision",
    "LimitBatch",
    "LimiterStats",
    "PackedKeys",
    "Reservation",
    "RETRY_NEVER",
]

#: ``retry_after_ns`` of a request that waiting can never admit.
RETRY_NEVER: int = lib.TG_RETRY_NEVER


class LimitReason(enum.IntEnum):
    """Why a request was rejected (or, in shadow mode, would have been)."""

    NONE = lib.TG_LIMIT_REASON_NONE
    RATE = lib.TG_LIMIT_REASON_RATE
    COST_EXCEEDS_BURST = lib.TG_LIMIT_REASON_COST_EXCEEDS_BURST
    CAPACITY = lib.TG_LIMIT_REASON_CAPACITY
    PARENT = lib.TG_LIMIT_REASON_PARENT


_REASONS: Dict[int, LimitReason] = {int(r): r for r in LimitReason}


class LimitDecision(NamedTuple):
    """The outcome of one limiter decision (immutable).

    Attributes:
        allowed: the request may pass.
        reason: why it was (or in shadow mode would have been) rejected;
            ``LimitReason.NONE`` when admitted normally.
        retry_after_ns: 0 when admitted; else the wait before the same
            request would be admitted (``RETRY_NEVER`` if never).
        remaining: whole tokens left in the key's bucket.
        shadow: admitted only because the limiter is in shadow mode.
    """

    allowed: bool
    reason: Union[LimitReason, int]
    retry_after_ns: int
    remaining: int
    shadow: bool


@dataclass(frozen=True, slots=True)
class Tier:
    """A named rate class: ``rate`` tokens per second, bucket of ``burst``."""

    name: str
    rate: float
    burst: int


@dataclass(frozen=True, slots=True)
class LimiterStats:
    """Counters since creation (read one by one, not as one snapshot)."""

    admitted: int
    rejected: int
    shadow_rejected: int
    capacity_rejected: int
    evictions: int
    keys: int
    capacity: int
    cancelled: int


# tg_limit_decision, read in one go: allowed, reason, retry_after_ns,
# remaining, flags, reserved. Checked against the compiled layout below.
_DECISION = struct.Struct("=iiQQII")
assert ffi.sizeof("tg_limit_decision") == _DECISION.size
assert ffi.offsetof("tg_limit_decision", "retry_after_ns") == 8
assert ffi.offsetof("tg_limit_decision", "remaining") == 16
assert ffi.offsetof("tg_limit_decision", "flags") == 24
_unpack_decision = _DECISION.unpack_from
_iter_decisions = _DECISION.iter_unpack
_DECISION_SIZE = _DECISION.size
# Byte of tg_limit_decision.allowed (an int32 of 0 or 1) holding its value.
_ALLOWED_BYTE = 0 if sys.byteorder == "little" else 3
_SHADOW = lib.TG_LIMIT_FLAG_SHADOW
# Byte of tg_limit_decision.flags holding TG_LIMIT_FLAG_SHADOW (bit 0).
_FLAGS_BYTE = 24 if sys.byteorder == "little" else 27
assert _SHADOW == 1
_LOW_BIT = bytes(i & 1 for i in range(256))

_tuple_new = tuple.__new__
_tls = threading.local()

_ON_FULL = {
    "reject": lib.TG_LIMITER_ON_FULL_REJECT,
    "overflow": lib.TG_LIMITER_ON_FULL_OVERFLOW,
}


def _decision_out() -> Tuple[Any, Any]:
    """This thread's scratch tg_limit_decision and a buffer over it.

    Limiter calls never call back into Python, so one scratch struct per
    thread is enough and saves an allocation per decision.
    """
    try:
        pair: Tuple[Any, Any] = _tls.decision
        return pair
    except AttributeError:
        out = ffi.new("tg_limit_decision*")
        pair = (out, ffi.buffer(out))
        _tls.decision = pair
        return pair


def _make_decision(fields: Tuple[int, int, int, int, int, int]) -> LimitDecision:
    allowed, reason, retry, remaining, flags, _ = fields
    return _tuple_new(
        LimitDecision,
        (allowed == 1, _REASONS.get(reason, reason), retry, remaining, flags & _SHADOW != 0),
    )


class PackedKeys:
    """Keys packed once for repeated :meth:`Limiter.acquire_many` calls.

    ``acquire_many`` packs a list of keys on every call (``b"".join`` plus
    an offsets array); when the same keys are decided again and again, pack
    them once here and pass this object instead. Immutable.
    """

    __slots__ = ("_data", "_offsets", "_n", "_data_c", "_offsets_c")

    def __init__(self, keys: Sequence[Key]) -> None:
        data, offsets, n = _pack_keys(keys)
        self._init(data, bytes(offsets), n)

    def _init(self, data: bytes, offsets: bytes, n: int) -> None:
        self._data = data
        self._offsets = offsets
        self._n = n
        self._data_c = ffi.from_buffer("uint8_t[]", data)
        self._offsets_c = ffi.from_buffer("uint32_t[]", offsets)

    @classmethod
    def fixed_width(cls, data: Union[bytes, bytearray, memoryview], width: int) -> "PackedKeys":
        """Keys of ``width`` bytes each, laid end to end in ``data``.

        Key ``i`` is ``data[i*width:(i+1)*width]``. Hosts that hold account
        ids as fixed-width binary (or join fixed-width keys with
        ``b"".join``) skip building offsets: they depend only on the count
        and the width, and are cached.
        """
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data must be bytes, not {type(data).__name__}")
        width = check_uint("width", width, U32_MAX, minimum=1)
        if type(data) is not bytes:
            data = bytes(data)
        size = len(data)
        if size % width:
            raise invalid(f"data has {size} bytes, not a multiple of width {width}")
        if size > U32_MAX:
            raise invalid("the keys of one batch must total less than 4 GiB")
        n = size // width
        self = cls.__new__(cls)
        self._init(data, _fixed_offsets(n, width), n)
        return self

    @property
    def data(self) -> bytes:
        """All keys, end to end."""
        return self._data

    @property
    def offsets(self) -> List[int]:
        """Key i is ``data[offsets[i]:offsets[i + 1]]``."""
        return memoryview(self._offsets).cast("I").tolist()

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i: int) -> bytes:
        o = memoryview(self._offsets).cast("I")
        if not -self._n <= i < self._n:
            raise IndexError("PackedKeys index out of range")
        i %= self._n
        return self._data[o[i] : o[i + 1]]

    def __repr__(self) -> str:
        return f"PackedKeys(n={self._n}, bytes={len(self._data)})"


# Offsets of fixed-width key batches by (count, width); never mutated.
_FIXED_OFFSETS: Dict[Tuple[int, int], bytes] = {}


def _fixed_offsets(n: int, width: int) -> bytes:
    """uint32 offsets 0, width, 2*width, ... n*width, cached by (n, width)."""
    offsets = _FIXED_OFFSETS.get((n, width))
    if offsets is None:
        if len(_FIXED_OFFSETS) >= 64:
            _FIXED_OFFSETS.clear()
        if width:
            offsets = array("I", range(0, n * width + 1, width)).tobytes()
        else:
            offsets = bytes(4 * (n + 1))
        _FIXED_OFFSETS[(n, width)] = offsets
    return offsets


def _pack_keys(keys: Any) -> Tuple[bytes, Union[bytes, "array[int]"], int]:
    """Pack keys for tg_limiter_acquire_many: (data, uint32 offsets, count)."""
    if isinstance(keys, (str, bytes, bytearray, memoryview)):
        raise TypeError("keys must be a sequence of keys, not a single key")
    if type(keys) is not list and type(keys) is not tuple:
        try:
            keys = list(keys)
        except TypeError:
            raise TypeError(f"keys must be a sequence of bytes, not {type(keys).__name__}") from None
    try:
        data = b"".join(keys)
    except TypeError:
        keys = [coerce_key(k) for k in keys]
        data = b"".join(keys)
    n = len(keys)
    size = len(data)
    if size > U32_MAX:
        raise invalid("the keys of one batch must total less than 4 GiB")
    offsets: Union[bytes, "array[int]"]
    if n and size == n * len(keys[0]):
        # Probably keys of one width (account ids often are): then the
        # offsets depend on (n, width) only and come from a cache, which
        # is cheaper than a prefix sum in Python.
        lens = list(map(len, keys))
        width = lens[0]
        if len(lens) == n and lens.count(width) == n:
            return data, _fixed_offsets(n, width), n
        offsets = array("I", accumulate(lens, initial=0))
    else:
        offsets = array("I", accumulate(map(len, keys), initial=0))
    if len(offsets) != n + 1 or offsets[-1] != size:
        # Another thread changed `keys` while they were being packed.
        raise RuntimeError("keys changed while acquire_many was packing them")
    return data, offsets, n


class Reservation:
    """Tokens taken by :meth:`Limiter.reserve`, which can be given back once.

    ``decision`` says whether the reservation was granted; cancelling a
    rejected reservation is a no-op. The reservation keeps its limiter alive.
    """

    __slots__ = ("decision", "_limiter", "_raw", "_done")

    decision: LimitDecision

    def __init__(self, limiter: "Limiter", raw: Any, decision: LimitDecision) -> None:
        self.decision = decision
        self._limiter = limiter
        self._raw = raw
        self._done = False

    @property
    def allowed(self) -> bool:
        """Whether the reservation was granted."""
        return self.decision.allowed

    @property
    def cancelled(self) -> bool:
        """Whether :meth:`cancel` has been called."""
        return self._done

    def cancel(self, now_ns: Optional[int] = None) -> None:
        """Give the tokens back (e.g. the order was not sent).

        At most once: a second call raises :class:`StateError`. The bucket
        never exceeds its burst: tokens that would have refilled by
        ``now_ns`` anyway are not added twice.
        """
        if self._done:
            raise StateError(lib.TG_ESTATE, "this reservation was already cancelled")
        now = check_now(now_ns)
        lim = self._limiter
        rc = lib.tg_limiter_cancel(lim._ptr, self._raw, now)
        if rc:
            if lim._ptr == NULL:
                raise lim._closed_error()
            raise error_for(rc, "tg_limiter_cancel rejected the reservation")
        self._done = True

    def __repr__(self) -> str:
        state = "cancelled" if self._done else ("granted" if self.allowed else "rejected")
        return f"<tollgate.Reservation {state} {self.decision!r}>"


class LimitBatch(Sequence[LimitDecision]):
    """The decisions of one :meth:`Limiter.acquire_many` call.

    Nothing is converted until asked for: ``allowed`` (one byte per
    decision, 1 or 0), ``reasons``, ``retry_after_ns``, ``remaining`` and
    ``shadow`` are read from the C array in bulk; indexing or iterating
    gives :class:`LimitDecision` objects.
    """

    __slots__ = ("_out", "_n", "_buf")

    def __init__(self, out: Any, n: int) -> None:
        self._out = out
        self._n = n
        self._buf = memoryview(ffi.buffer(out, n * _DECISION_SIZE)).cast("B")

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, index: int) -> LimitDecision: ...

    @overload
    def __getitem__(self, index: slice) -> List[LimitDecision]: ...

    def __getitem__(self, index: Union[int, slice]) -> Union[LimitDecision, List[LimitDecision]]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._n))]
        i = batch_index(index, self._n, "LimitBatch")
        return _make_decision(_unpack_decision(self._buf, i * _DECISION_SIZE))

    def __iter__(self) -> Iterator[LimitDecision]:
        return map(_make_decision, _iter_decisions(self._buf))

    def decisions(self) -> List[LimitDecision]:
        """All decisions as a list."""
        return list(self)

    @property
    def allowed(self) -> bytes:
        """One byte per decision: 1 admitted, 0 rejected."""
        # Copying the whole array, then slicing, is faster than a strided copy.
        return bytes(self._buf)[_ALLOWED_BYTE::_DECISION_SIZE]

    @property
    def allowed_count(self) -> int:
        """How many requests were admitted."""
        return self.allowed.count(1)

    @property
    def all_allowed(self) -> bool:
        """Every request was admitted."""
        return self.allowed_count == self._n

    @property
    def reasons(self) -> List[int]:
        """The reason code of each decision (``LimitReason`` values)."""
        return self._buf.cast("i")[1::8].tolist()

    @property
    def retry_after_ns(self) -> List[int]:
        """The retry-after of each decision."""
        return self._buf.cast("Q")[1::4].tolist()

    @property
    def remaining(self) -> List[int]:
        """The tokens left in each decision's bucket."""
        return self._buf.cast("Q")[2::4].tolist()

    @property
    def shadow(self) -> bytes:
        """One byte per decision: 1 if admitted only because of shadow mode."""
        return bytes(self._buf)[_FLAGS_BYTE::_DECISION_SIZE].translate(_LOW_BIT)

    def __repr__(self) -> str:
        return f"<tollgate.LimitBatch n={self._n} allowed={self.allowed_count}>"


TierArg = Union[int, str]


class Limiter:
    """A keyed GCRA rate limiter.

    Args:
        tiers: the rate classes, a :class:`Tier` or a sequence of them
            (1..64, unique names); default one tier of 1000/s, burst 1000.
        capacity: the maximum number of keys (1 .. 2**26; default 65536).
        on_full: when the key table is full and no bucket is idle,
            ``"reject"`` the new key (fail closed, the default) or decide it
            against one shared ``"overflow"`` bucket per tier.
        shadow: decide and count, but never reject.
        multiplier: scales every rate (> 0), e.g. 0.5 in a fast market.
        parent: a limiter whose empty-key bucket (same tier index, or tier 0)
            must also admit each request; tokens are given back to this
            limiter when the parent rejects. The child keeps it alive.
        hash_seed: the seed of the keyed hash that places keys in the table
            (0 .. 2**64 - 1); None or 0 (the default) lets the library pick
            a random one. A journal records the seed
            (:meth:`Journal.record_limiter_define`), so a replay places keys,
            and refuses for capacity, as the live limiter did; set it only to
            make placement reproducible across processes.

    Raises:
        TollgateError: the library rejected the configuration (the message
            says which field and why).
    """

    __slots__ = ("_ptr", "_parent", "_tiers", "_tier_ids", "_shadow", "__weakref__")

    def __init__(
        self,
        tiers: Union[Tier, Sequence[Tier], None] = None,
        *,
        capacity: Optional[int] = None,
        on_full: str = "reject",
        shadow: bool = False,
        multiplier: float = 1.0,
        parent: Optional["Limiter"] = None,
        hash_seed: Optional[int] = None,
    ) -> None:
        self._ptr = NULL
        self._parent: Optional[Limiter] = None
        opts = ffi.new("tg_limiter_options*")
        lib.tg_limiter_options_init(opts)
        keep_alive: List[Any] = []
        tier_list: Tuple[Tier, ...] = ()
        if tiers is not None:
            if isinstance(tiers, Tier):
                tier_list = (tiers,)
            elif isinstance(tiers, (str, bytes)):
                raise TypeError("tiers must be a Tier or a sequence of Tier")
            else:
                tier_list = tuple(tiers)
            if not tier_list:
                raise invalid("tiers must not be empty (omit it for the default tier)")
            c_tiers = ffi.new("tg_tier[]", len(tier_list))
            for i, t in enumerate(tier_list):
                if not isinstance(t, Tier):
                    raise TypeError(f"tiers[{i}] must be a Tier, not {type(t).__name__}")
                if not isinstance(t.name, str):
                    raise TypeError(f"tiers[{i}].name must be a str")
                name = t.name.encode("utf-8")
                if b"\0" in name:
                    raise invalid(f"tiers[{i}].name must not contain NUL")
                c_name = ffi.new("char[]", name)
                keep_alive.append(c_name)
                c_tiers[i].name = c_name
                c_tiers[i].rate = check_float(f"tiers[{i}].rate", t.rate)
                c_tiers[i].burst = check_uint(f"tiers[{i}].burst", t.burst, U32_MAX)
            opts.tiers = c_tiers
            opts.tier_count = len(tier_list)
            keep_alive.append(c_tiers)
        if capacity is not None:
            opts.capacity = check_uint("capacity", capacity, U64_MAX)
        if isinstance(on_full, str) and on_full in _ON_FULL:
            opts.on_full = _ON_FULL[on_full]
        else:
            raise invalid(f"on_full must be 'reject' or 'overflow', not {on_full!r}")
        if not isinstance(shadow, (bool, int)):
            raise TypeError("shadow must be a bool")
        opts.shadow = 1 if shadow else 0
        opts.multiplier = check_float("multiplier", multiplier)
        if hash_seed is not None:
            opts.hash_seed = check_uint("hash_seed", hash_seed, U64_MAX)
        if parent is not None:
            if not isinstance(parent, Limiter):
                raise TypeError(f"parent must be a Limiter, not {type(parent).__name__}")
            if parent._ptr == NULL:
                raise invalid("the parent limiter is closed")
            opts.parent = parent._ptr
        out = ffi.new("tg_limiter**")
        err = ffi.new("tg_error*")
        rc = lib.tg_limiter_new(opts, out, err)
        if rc:
            raise error_from_struct(rc, err, "tg_limiter_new failed")
        self._ptr = ffi.gc(out[0], lib.tg_limiter_free)
        self._parent = parent
        self._tiers = tier_list
        self._tier_ids: Dict[str, int] = {t.name: i for i, t in enumerate(tier_list)}
        self._shadow = bool(shadow)

    # -- lifetime -------------------------------------------------------

    def close(self) -> None:
        """Release the limiter now (idempotent).

        Children keep working: the library keeps a parent alive as long as a
        child references it. No call may be in progress on this limiter.
        """
        ptr = self._ptr
        if ptr != NULL:
            self._ptr = NULL
            self._parent = None
            ffi.release(ptr)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has been called."""
        return bool(self._ptr == NULL)

    def __enter__(self) -> "Limiter":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        if self._ptr == NULL:
            return "<tollgate.Limiter closed>"
        names = ", ".join(t.name for t in self._tiers) or "default"
        return f"<tollgate.Limiter tiers=[{names}]>"

    @property
    def parent(self) -> Optional["Limiter"]:
        """The parent limiter, if any."""
        return self._parent

    @property
    def tiers(self) -> Tuple[Tier, ...]:
        """The tiers given at construction (empty for the default tier)."""
        return self._tiers

    def _closed_error(self) -> InvalidArgumentError:
        return invalid("the limiter is closed")

    # -- tiers ------------------------------------------------------------

    def tier_index(self, name: str) -> int:
        """The index of the tier called ``name``.

        Raises:
            NotFoundError: no tier has that name.
        """
        if not isinstance(name, str):
            raise TypeError(f"a tier name must be a str, not {type(name).__name__}")
        encoded = name.encode("utf-8")
        if b"\0" in encoded:
            raise invalid("a tier name must not contain NUL")
        out = ffi.new("uint32_t*")
        rc = lib.tg_limiter_tier_index(self._ptr, encoded, out)
        if rc:
            if self._ptr == NULL:
                raise self._closed_error()
            raise error_for(rc, f"no tier named {name!r}")
        return int(out[0])

    def _tier(self, tier: Any) -> int:
        if isinstance(tier, str):
            index = self._tier_ids.get(tier)
            if index is None:
                index = self.tier_index(tier)
                self._tier_ids[tier] = index
            return index
        return check_uint("tier", tier, U32_MAX)

    # -- decisions --------------------------------------------------------

    def _failure(self, rc: int, key: Any, cost: Any, tier: Any, now: Any) -> TollgateError:
        """Turn a failed call into the most precise exception."""
        if self._ptr == NULL:
            return self._closed_error()
        if rc == lib.TG_EINVAL:
            check_uint("cost", cost, U32_MAX, minimum=1)
            tier_count = len(self._tiers) or 1
            if isinstance(tier, int) and tier >= tier_count:
                return invalid(f"tier {tier} is out of range (the limiter has {tier_count})")
        return error_for(rc, f"the library rejected the call ({key=!r}, {cost=}, {tier=}, now_ns={now})")

    def _bad_args(self, exc: Exception, key: Any, cost: Any, tier: Any, now: Any) -> Exception:
        """Explain an argument cffi could not convert."""
        if self._ptr == NULL:
            return self._closed_error()
        try:
            coerce_key(key)
            check_uint("cost", cost, U32_MAX, minimum=1)
            self._tier(tier)
            check_uint("now_ns", now, U64_MAX)
        except (TypeError, ValueError) as explained:
            return explained
        if isinstance(exc, OverflowError):
            return invalid(str(exc))
        return exc

    def _request(self, key: Any, tier: Any, now_ns: Optional[int]) -> Tuple[bytes, int, int]:
        """Normalise the key, tier and time that every keyed call takes."""
        if type(key) is not bytes:
            key = coerce_key(key)
        if type(tier) is not int:
            tier = self._tier(tier)
        if now_ns is None:
            now_ns = lib.tg_now_ns()
        return key, tier, now_ns

    def _invoke(self, fn: Any, key: bytes, cost: Any, tier: int, now_ns: int, *args: Any) -> None:
        """Call ``fn(handle, key, len(key), tier, *args)``; raise on failure."""
        try:
            rc = fn(self._ptr, key, len(key), tier, *args)
        except (TypeError, OverflowError) as exc:
            raise self._bad_args(exc, key, cost, tier, now_ns) from None
        if rc:
            raise self._failure(rc, key, cost, tier, now_ns)

    def acquire(
        self,
        key: Key,
        cost: int = 1,
        tier: TierArg = 0,
        now_ns: Optional[int] = None,
    ) -> LimitDecision:
        """Take ``cost`` tokens from ``key``'s bucket in ``tier``.

        Args:
            key: bytes, or a str (UTF-8). The empty key is a key like others.
            cost: tokens to take, >= 1.
            tier: a tier index or name.
            now_ns: monotonic time in ns; default: ``tg_now_ns()``.

        Returns:
            The decision; a rejection is ``allowed=False``, not an exception.
        """
        # The hot single call: _request and _invoke are written out inline
        # here, which saves two Python calls (about 100 ns) per decision.
        if type(key) is not bytes:
            key = coerce_key(key)
        if type(tier) is not int:
            tier = self._tier(tier)
        if now_ns is None:
            now_ns = lib.tg_now_ns()
        out, buf = _decision_out()
        try:
            rc = lib.tg_limiter_acquire(self._ptr, key, len(key), tier, cost, now_ns, out)
        except (TypeError, OverflowError) as exc:
            raise self._bad_args(exc, key, cost, tier, now_ns) from None
        if rc:
            raise self._failure(rc, key, cost, tier, now_ns)
        allowed, reason, retry, remaining, flags, _ = _unpack_decision(buf)
        return _tuple_new(
            LimitDecision,
            (allowed == 1, _REASONS.get(reason, reason), retry, remaining, flags & _SHADOW != 0),
        )

    def peek(
        self,
        key: Key,
        cost: int = 1,
        tier: TierArg = 0,
        now_ns: Optional[int] = None,
    ) -> LimitDecision:
        """What :meth:`acquire` would decide, consuming nothing."""
        key, tier, now_ns = self._request(key, tier, now_ns)
        out, buf = _decision_out()
        self._invoke(lib.tg_limiter_peek, key, cost, tier, now_ns, cost, now_ns, out)
        return _make_decision(_unpack_decision(buf))

    def remaining(self, key: Key, tier: TierArg = 0, now_ns: Optional[int] = None) -> int:
        """Whole tokens available to ``key`` in ``tier`` (burst if unknown)."""
        key, tier, now_ns = self._request(key, tier, now_ns)
        out = ffi.new("uint64_t*")
        self._invoke(lib.tg_limiter_remaining, key, 1, tier, now_ns, now_ns, out)
        return int(out[0])

    def reserve(
        self,
        key: Key,
        cost: int = 1,
        tier: TierArg = 0,
        now_ns: Optional[int] = None,
    ) -> Reservation:
        """Acquire, keeping what was taken so that it can be given back.

        Returns:
            A :class:`Reservation`; ``reservation.allowed`` says whether it
            was granted and ``reservation.cancel()`` gives the tokens back.
        """
        key, tier, now_ns = self._request(key, tier, now_ns)
        res = ffi.new("tg_reservation*")
        out, buf = _decision_out()
        self._invoke(lib.tg_limiter_reserve, key, cost, tier, now_ns, cost, now_ns, res, out)
        return Reservation(self, res, _make_decision(_unpack_decision(buf)))

    def acquire_many(
        self,
        keys: Union[Sequence[Key], PackedKeys],
        costs: Optional[Sequence[int]] = None,
        tiers: Union[None, TierArg, Sequence[TierArg]] = None,
        now_ns: Optional[int] = None,
    ) -> LimitBatch:
        """Decide a batch of requests at one ``now_ns``, crossing into C once.

        Args:
            keys: a sequence of keys (bytes, or str), or :class:`PackedKeys`.
            costs: one cost per key (a sequence or ``array('I')``); default 1.
            tiers: one tier (index or name) for all keys, or one per key;
                default tier 0.
            now_ns: monotonic time in ns; default ``tg_now_ns()``.

        Returns:
            A :class:`LimitBatch`, in the order of ``keys``. The arguments are
            validated before any decision: on an error nothing was consumed.
        """
        if type(keys) is PackedKeys:
            data_c, offsets_c, n = keys._data_c, keys._offsets_c, keys._n
        else:
            data, offsets, n = _pack_keys(keys)
            data_c = ffi.from_buffer("uint8_t[]", data)
            offsets_c = ffi.from_buffer("uint32_t[]", offsets)
        costs_arr = NULL if costs is None else self._u32_column("costs", costs, n, None)
        tiers_arr = NULL if tiers is None else self._u32_column("tiers", tiers, n, self._tier)
        now = check_now(now_ns)
        out = ffi.new("tg_limit_decision[]", n)
        rc = lib.tg_limiter_acquire_many(
            self._ptr, data_c, offsets_c, n, tiers_arr, costs_arr, now, out
        )
        if rc:
            if self._ptr == NULL:
                raise self._closed_error()
            if rc == lib.TG_EINVAL and costs is not None:
                zeros = [i for i, c in enumerate(costs) if c == 0]
                if zeros:
                    raise invalid(f"costs must be >= 1 (costs[{zeros[0]}] is 0)")
            if rc == lib.TG_EINVAL and tiers is not None and self._tiers:
                raise invalid(f"a tier is out of range (the limiter has {len(self._tiers)})")
            raise error_for(rc, "tg_limiter_acquire_many rejected the batch")
        return LimitBatch(out, n)

    def _u32_column(self, name: str, values: Any, n: int, convert: Any) -> Any:
        """A uint32 column of n entries for acquire_many, as C data."""
        if isinstance(values, array) and values.typecode == "I":
            # A copy: the library validates, then reads, and the caller's
            # array must not change in between (the GIL is released).
            column = values[:]
        elif convert is not None and (isinstance(values, (int, str))):
            column = array("I", [convert(values)]) * n
        else:
            if isinstance(values, (str, bytes, bytearray)):
                raise TypeError(f"{name} must be a sequence of ints")
            try:
                column = array("I", values)
            except (TypeError, OverflowError):
                if convert is None:
                    for i, v in enumerate(values):
                        check_uint(f"{name}[{i}]", v, U32_MAX)
                    raise
                column = array("I", [convert(v) for v in values])
        if len(column) != n:
            raise invalid(f"{name} has {len(column)} entries for {n} keys")
        return ffi.from_buffer("uint32_t[]", column)

    # -- settings and counters -------------------------------------------

    def set_multiplier(self, multiplier: float, now_ns: Optional[int] = None) -> None:
        """From ``now_ns`` on, scale every tier's rate by ``multiplier``.

        ``multiplier`` is > 0, finite and <= 1e6 (e.g. 0.5 in a fast
        market). Buckets keep the tokens they hold at ``now_ns``; only the
        refill speed changes.
        """
        value = check_float("multiplier", multiplier)
        now = check_now(now_ns)
        rc = lib.tg_limiter_set_multiplier(self._ptr, value, now)
        if rc:
            if self._ptr == NULL:
                raise self._closed_error()
            raise error_for(rc, f"multiplier must be > 0, finite and <= 1e6, got {value!r}")

    @property
    def multiplier(self) -> float:
        """The factor applied to every tier's rate.

        Assigning it is ``set_multiplier(value)`` at the library's clock.
        """
        out = ffi.new("double*")
        rc = lib.tg_limiter_get_multiplier(self._ptr, out)
        if rc:
            if self._ptr == NULL:
                raise self._closed_error()
            raise error_for(rc, "tg_limiter_get_multiplier failed")
        return float(out[0])

    @multiplier.setter
    def multiplier(self, value: float) -> None:
        self.set_multiplier(value)

    @property
    def shadow(self) -> bool:
        """Shadow mode: decide and count, never reject (settable).

        The C ABI has no getter; this is the last value set through this
        object.
        """
        if self._ptr == NULL:
            raise self._closed_error()
        return self._shadow

    @shadow.setter
    def shadow(self, on: bool) -> None:
        if not isinstance(on, (bool, int)):
            raise TypeError("shadow must be a bool")
        rc = lib.tg_limiter_set_shadow(self._ptr, 1 if on else 0)
        if rc:
            if self._ptr == NULL:
                raise self._closed_error()
            raise error_for(rc, "tg_limiter_set_shadow failed")
        self._shadow = bool(on)

    def stats(self) -> LimiterStats:
        """Counters since creation."""
        out = ffi.new("tg_limiter_stats*")
        rc = lib.tg_limiter_stats_get(self._ptr, out)
        if rc:
            if self._ptr == NULL:
                raise self._closed_error()
            raise error_for(rc, "tg_limiter_stats_get failed")
        return LimiterStats(
            admitted=out.admitted,
            rejected=out.rejected,
            shadow_rejected=out.shadow_rejected,
            capacity_rejected=out.capacity_rejected,
            evictions=out.evictions,
            keys=out.keys,
            capacity=out.capacity,
            cancelled=out.cancelled,
        )
