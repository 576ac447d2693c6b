"""Market data cached until the price moves (``tg_price_cache``).

A :class:`PriceCache` holds, per instrument, the price an entry was cached
at, its threshold, the last feed sequence number seen and an opaque payload
(at most ``max_payload`` bytes, e.g. a serialised quote). The market-data
feed calls :meth:`PriceCache.on_price` for every tick (or
:meth:`PriceCache.on_price_many` for a batch); the entry is evicted when

* the move since caching exceeds its threshold (``EvictReason.PRICE_MOVE``):
  in basis points ``|p - c| / c * 1e4 > threshold``, in ticks
  ``round(|p - c| / tick_size) > threshold``; a move exactly at the
  threshold keeps the entry (halves round away from zero: a move of 2.5
  ticks counts as 3);
* ``feed_seq`` is not the next number after the last one seen
  (``SEQUENCE_GAP``). Numbers compare modulo 2**64, so the feed may wrap; a
  number already seen or less than 2**63 behind is a replay and is ignored
  (``PriceOutcome.REPLAY``); one exactly 2**63 away is a gap;
* it is older than ``max_age_ns`` (``AGE``): :meth:`PriceCache.get` reports
  it as a miss, the next tick or :meth:`PriceCache.expire` evicts it;
* a :meth:`PriceCache.put` of a new key found both of its candidate groups
  of 8 slots full (``CAPACITY``; CLOCK spares the entries read since the
  hand last passed);
* the host called :meth:`PriceCache.remove` (``REMOVED``).

With ``vol_multiplier > 0`` the threshold widens with realised volatility
(an EWMA of squared log returns, weight ``vol_alpha``): the effective
threshold is ``max(threshold, vol_multiplier * sqrt(var) * 1e4)`` bps (for
tick thresholds, that many bps of the cached price, in ticks).

Keys are instruments: a ``str`` (encoded as UTF-8), bytes, or a
non-negative ``int`` below 2**64, which becomes its **8 little-endian
bytes** (so ``5`` and ``b"\\x05"`` are different instruments, and
``5`` and ``(5).to_bytes(8, "little")`` the same one). A key is 1..32 bytes.
Eviction events always carry the key as bytes: ``int.from_bytes(ev.key,
"little")`` gives a numeric id back.

Readers (:meth:`PriceCache.get`) never wait for the feed and never see a torn
entry; every method is thread-safe (the library releases the GIL during each
call). ``close()`` must not race with calls on the same cache.
"""

from __future__ import annotations

import enum
import itertools
import struct
import sys
import threading
import traceback
import weakref
from array import array
from dataclasses import dataclass
from itertools import accumulate
from operator import itemgetter
from typing import (
    Any,
    Callable,
    Dict,
    Iterable,
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
    batch_index,
    check_uint,
    ffi,
    lib,
)
from .errors import (
    InvalidArgumentError,
    TollgateError,
    error_for,
    error_from_struct,
    invalid,
)
from .limiter import _fixed_offsets

__all__ = [
    "CachedPrice",
    "EvictReason",
    "EvictionEvent",
    "PriceBatch",
    "PriceCache",
    "PriceCacheStats",
    "PriceKey",
    "PriceOutcome",
    "PriceResult",
    "ThresholdUnit",
]

#: An instrument key: str (UTF-8), bytes-like, or an int id (8 bytes, little-endian).
PriceKey = Union[str, bytes, bytearray, memoryview, int]

#: Longest key the library accepts (``tg_price_cache_put``: 1..32 bytes).
MAX_KEY_BYTES = 32
#: Largest ``max_payload`` the library accepts (``tg_price_cache_options``).
MAX_PAYLOAD_LIMIT = 1024


class ThresholdUnit(enum.IntEnum):
    """The unit of thresholds (``TG_THRESHOLD_*``)."""

    BPS = lib.TG_THRESHOLD_BPS  # basis points of the cached price
    TICKS = lib.TG_THRESHOLD_TICKS  # whole ticks of tick_size


class PriceOutcome(enum.IntEnum):
    """What a tick did to the instrument's entry (``TG_PRICE_*``)."""

    KEPT = lib.TG_PRICE_KEPT  # in sequence, within the threshold
    EVICTED = lib.TG_PRICE_EVICTED  # see the reason
    NOT_CACHED = lib.TG_PRICE_NOT_CACHED  # no entry for the instrument
    REPLAY = lib.TG_PRICE_REPLAY  # a sequence number already seen: ignored


class EvictReason(enum.IntEnum):
    """Why an entry was evicted (``TG_EVICT_*``)."""

    NONE = lib.TG_EVICT_NONE
    PRICE_MOVE = lib.TG_EVICT_PRICE_MOVE
    SEQUENCE_GAP = lib.TG_EVICT_SEQUENCE_GAP
    AGE = lib.TG_EVICT_AGE
    CAPACITY = lib.TG_EVICT_CAPACITY
    REMOVED = lib.TG_EVICT_REMOVED


_OUTCOMES: Dict[int, PriceOutcome] = {int(o): o for o in PriceOutcome}
_EVICT_REASONS: Dict[int, EvictReason] = {int(r): r for r in EvictReason}
_UNIT_NAMES: Dict[str, ThresholdUnit] = {u.name.lower(): u for u in ThresholdUnit}


class PriceResult(NamedTuple):
    """The answer of :meth:`PriceCache.on_price` (immutable).

    Attributes:
        outcome: a :class:`PriceOutcome`.
        reason: the :class:`EvictReason` when evicted, else ``EvictReason.NONE``.
    """

    outcome: Union[PriceOutcome, int]
    reason: Union[EvictReason, int]

    @property
    def evicted(self) -> bool:
        """The tick evicted the entry."""
        return self.outcome == PriceOutcome.EVICTED


class CachedPrice(NamedTuple):
    """An entry read by :meth:`PriceCache.get` (a copy, consistent as a whole).

    Attributes:
        price: the price the entry was cached at.
        threshold: its threshold now, volatility included, in the cache's unit.
        feed_seq: the last in-sequence number seen for the instrument.
        cached_at_ns: when it was cached (``now_ns`` of the put).
        age_ns: ``now_ns - cached_at_ns`` at the read (0 if the clock went back).
        payload: the entry's payload, whole.
    """

    price: float
    threshold: float
    feed_seq: int
    cached_at_ns: int
    age_ns: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class EvictionEvent:
    """An eviction, passed to the ``on_evict`` callback.

    ``new_price`` and ``feed_seq`` are the tick's for ``PRICE_MOVE`` and
    ``SEQUENCE_GAP`` (and ``AGE`` found by a tick); for the other reasons
    (``CAPACITY``, ``REMOVED``, ``AGE`` found by :meth:`PriceCache.expire`)
    they are the evicted entry's cached price and last number seen. ``key``
    is the evicted instrument as bytes (an int key is its 8 little-endian
    bytes).
    """

    reason: Union[EvictReason, int]
    key: bytes
    cached_price: float
    new_price: float
    feed_seq: int
    now_ns: int


@dataclass(frozen=True, slots=True)
class PriceCacheStats:
    """Counters since creation (read one by one, not as one snapshot)."""

    hits: int
    misses: int
    stale_misses: int  # reads of entries older than max_age_ns
    puts: int
    kept: int
    replays: int
    not_cached: int
    evicted_price_move: int
    evicted_sequence_gap: int
    evicted_age: int
    evicted_capacity: int
    evicted_removed: int
    entries: int  # live now
    slots: int


_tuple_new = tuple.__new__

# tg_price_result: outcome i32, reason i32. Checked against the compiled
# layout here.
_RESULT = struct.Struct("=ii")
assert ffi.sizeof("tg_price_result") == _RESULT.size
_RESULT_SIZE = _RESULT.size

# A get's scratch, one block per thread: the tg_cached_price (price,
# threshold, feed_seq, cached_at_ns, age_ns, payload_len, reserved), then the
# int hit flag, then the payload buffer; read back with one unpack.
_CACHED = struct.Struct("=ddQQQIIi")
assert ffi.sizeof("tg_cached_price") == 48
assert ffi.offsetof("tg_cached_price", "feed_seq") == 16
assert ffi.offsetof("tg_cached_price", "payload_len") == 40
_HIT_AT = 48
_PAYLOAD_AT = _CACHED.size
assert _PAYLOAD_AT == 52
_unpack_cached = _CACHED.unpack_from


def _make_result(raw: bytes) -> PriceResult:
    outcome, reason = _RESULT.unpack(raw)
    return _tuple_new(
        PriceResult, (_OUTCOMES.get(outcome, outcome), _EVICT_REASONS.get(reason, reason))
    )


# Every result the library can give, by its 8 raw bytes: a tick's answer is
# a dictionary look-up, not a new object.
_RESULTS: Dict[bytes, PriceResult] = {
    _RESULT.pack(o, r): _make_result(_RESULT.pack(o, r))
    for o in PriceOutcome
    for r in EvictReason
}

_tls = threading.local()
_first, _second, _third = itemgetter(0), itemgetter(1), itemgetter(2)


def _result_out() -> Tuple[Any, Any]:
    """This thread's scratch tg_price_result and a buffer over it.

    Only used when no Python callback can run during the call (no
    ``on_evict``): a callback may call the cache again on the same thread.
    """
    try:
        pair: Tuple[Any, Any] = _tls.result
        return pair
    except AttributeError:
        out = ffi.new("tg_price_result*")
        pair = (out, ffi.buffer(out))
        _tls.result = pair
        return pair


def _get_out() -> Tuple[Any, Any, Any, Any]:
    """This thread's scratch for get: (out, hit, payload, buffer over all).

    tg_price_cache_get never calls back into Python, so one block per thread
    is enough. Its payload part holds MAX_PAYLOAD_LIMIT bytes, the largest
    ``max_payload`` the library accepts, so any cache's payload fits whole.
    """
    block = ffi.new("char[]", _PAYLOAD_AT + MAX_PAYLOAD_LIMIT)
    scratch = (
        ffi.cast("tg_cached_price*", block),
        ffi.cast("int*", block + _HIT_AT),
        block + _PAYLOAD_AT,
        ffi.buffer(block),
        block,  # keeps the block alive
    )
    _tls.get = scratch
    return scratch[:4]


def encode_key(key: Any) -> bytes:
    """An instrument key as the bytes the library gets.

    str is UTF-8 encoded, bytes-like objects are copied, a non-negative int
    below 2**64 becomes its 8 little-endian bytes. The length (1..32) is
    checked by the library.

    Raises:
        TypeError: not a str, bytes-like object or int (a float, a bool, ...).
        InvalidArgumentError: a negative int, or one of 2**64 or more.
    """
    if type(key) is bytes:
        return key
    if isinstance(key, str):
        return key.encode("utf-8")
    if isinstance(key, (bytes, bytearray, memoryview)):
        return bytes(key)
    if isinstance(key, int) and not isinstance(key, bool):
        if key < 0:
            raise invalid(f"an int key must not be negative, got {key}")
        if key > U64_MAX:
            raise invalid(f"an int key must be < 2**64, got {key}")
        return int(key).to_bytes(8, "little")
    raise TypeError(f"a key must be str, bytes or int, not {type(key).__name__}")


def _key_error(key: bytes) -> Optional[InvalidArgumentError]:
    if not 1 <= len(key) <= MAX_KEY_BYTES:
        return invalid(f"an instrument key is 1..{MAX_KEY_BYTES} bytes, got {len(key)}")
    return None


def _price_ok(price: Any) -> bool:
    try:
        p = float(price)
    except (TypeError, ValueError):
        return False
    return p > 0 and p != float("inf")  # False for NaN too


def _payload_bytes(payload: Any) -> bytes:
    if type(payload) is bytes:
        return payload
    if isinstance(payload, (bytes, bytearray, memoryview)):
        return bytes(payload)
    if isinstance(payload, str):
        return payload.encode("utf-8")
    raise TypeError(f"payload must be bytes or str, not {type(payload).__name__}")


def _number(name: str, value: Any) -> float:
    """A float option, passed to the library as it is (NaN and infinities
    included: the library validates and says why)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, not {type(value).__name__}")
    return float(value)


def _override(name: str, value: Any) -> float:
    """A per-entry override for put: None is NaN (the library's "default")."""
    if value is None:
        return _NAN
    number = _number(name, value)
    if number != number:
        raise invalid(f"{name} must be a number (None keeps the cache's default), not NaN")
    return number


_NAN = float("nan")


class PriceBatch(Sequence[PriceResult]):
    """The results of one :meth:`PriceCache.on_price_many` call, in tick order.

    ``outcomes`` and ``reasons`` are read from the C array in bulk; indexing
    or iterating gives :class:`PriceResult` objects.
    """

    __slots__ = ("_out", "_n", "_buf")

    def __init__(self, out: Any, n: int) -> None:
        self._out = out
        self._n = n
        self._buf = memoryview(ffi.buffer(out, n * _RESULT_SIZE)) if n else memoryview(b"")

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, index: int) -> PriceResult: ...

    @overload
    def __getitem__(self, index: slice) -> List[PriceResult]: ...

    def __getitem__(self, index: Union[int, slice]) -> Union[PriceResult, List[PriceResult]]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._n))]
        i = batch_index(index, self._n, "PriceBatch")
        raw = self._buf[i * _RESULT_SIZE : (i + 1) * _RESULT_SIZE].tobytes()
        r = _RESULTS.get(raw)
        return r if r is not None else _make_result(raw)

    def __iter__(self) -> Iterator[PriceResult]:
        data = self._buf.tobytes()
        results = _RESULTS
        for i in range(0, len(data), _RESULT_SIZE):
            raw = data[i : i + _RESULT_SIZE]
            r = results.get(raw)
            yield r if r is not None else _make_result(raw)

    @property
    def outcomes(self) -> List[int]:
        """The :class:`PriceOutcome` code of each tick."""
        return self._buf.cast("i")[0::2].tolist() if self._n else []

    @property
    def reasons(self) -> List[int]:
        """The :class:`EvictReason` code of each tick (NONE unless evicted)."""
        return self._buf.cast("i")[1::2].tolist() if self._n else []

    def count(self, value: Any) -> int:
        """How many ticks had this outcome (a :class:`PriceOutcome`), or, for
        a :class:`PriceResult`, this exact result."""
        if isinstance(value, PriceResult):
            return sum(1 for r in self if r == value)
        return self.outcomes.count(int(value))

    @property
    def evicted_count(self) -> int:
        """How many ticks evicted their entry."""
        return self.outcomes.count(PriceOutcome.EVICTED)

    def __repr__(self) -> str:
        return f"<tollgate.PriceBatch n={self._n} evicted={self.evicted_count}>"


# Caches with an on_evict callback, by the integer passed to C as `user`. The
# registry holds weak references: a callback never keeps a cache alive.
_registry: Dict[int, "weakref.ref[PriceCache]"] = {}
_next_id = itertools.count(1)


@ffi.def_extern(name="_tollgate_price_cache_event")  # type: ignore[untyped-decorator]
def _on_eviction(user: Any, ev: Any) -> None:
    ref = _registry.get(int(ffi.cast("uintptr_t", user)))
    cache = ref() if ref is not None else None
    if cache is None:
        return
    callback = cache._callback
    if callback is None:
        return
    try:
        reason: int = ev.reason
        event = EvictionEvent(
            reason=_EVICT_REASONS.get(reason, reason),
            key=ffi.unpack(ev.key, ev.key_len),
            cached_price=float(ev.cached_price),
            new_price=float(ev.new_price),
            feed_seq=int(ev.feed_seq),
            now_ns=int(ev.now_ns),
        )
        callback(event)
    except BaseException as exc:  # noqa: BLE001 - the C frames above cannot unwind
        box: Optional[List[BaseException]] = getattr(_tls, "callback_errors", None)
        if box is not None:
            # A PriceCache method on this thread is waiting in C: it raises
            # the first exception once the library has returned.
            box.append(exc)
            return
        # No binding call to report to (cannot happen through this module;
        # kept for safety): do as the breaker's event callback does.
        sys.stderr.write("tollgate: exception in a price cache on_evict callback (ignored):\n")
        traceback.print_exc()


def _raise_first(box: List[BaseException]) -> None:
    first = box[0]
    if len(box) > 1 and hasattr(first, "add_note"):
        first.add_note(
            f"tollgate: on_evict raised {len(box)} exceptions during this call; "
            "this is the first, the others were dropped"
        )
    raise first


class PriceCache:
    """Market data cached until the price moves.

    Args:
        capacity: entries, 1 .. 2**26 (slots are the power of two at or
            above ``capacity * 8/7``, grouped by 8).
        max_payload: bytes of payload per entry, 0..1024.
        unit: ``"bps"`` (default) or ``"ticks"`` (or a :class:`ThresholdUnit`):
            the unit of every threshold.
        threshold: the default threshold, finite, >= 0.
        tick_size: the default tick size, finite, > 0 (tick thresholds).
        max_age_ns: entries older than this are stale; 0: no age limit.
        vol_multiplier: > 0 widens thresholds with realised volatility;
            0 keeps them fixed.
        vol_alpha: the EWMA weight of the newest squared return, in (0, 1].
        seed: key hashing seed; 0 keeps the library's default.
        on_evict: ``on_evict(event)`` for every eviction, see :meth:`on_evict`.

    Raises:
        InvalidArgumentError: the library rejected an option (``.code`` is
            TG_EINVAL or TG_ERANGE, ``.message`` says which).
    """

    __slots__ = ("_ptr", "_callback", "_reg_id", "_max_payload", "_unit", "__weakref__")

    def __init__(
        self,
        capacity: int = 4096,
        max_payload: int = 64,
        unit: Union[str, ThresholdUnit, int] = "bps",
        threshold: float = 10.0,
        tick_size: float = 0.01,
        max_age_ns: int = 60_000_000_000,
        vol_multiplier: float = 0.0,
        vol_alpha: float = 0.05,
        seed: int = 0,
        on_evict: Optional[Callable[[EvictionEvent], Any]] = None,
    ) -> None:
        self._ptr = NULL
        self._callback: Optional[Callable[[EvictionEvent], Any]] = None
        self._reg_id = 0
        if on_evict is not None and not callable(on_evict):
            raise TypeError("on_evict must be callable or None")
        opts = ffi.new("tg_price_cache_options*")
        lib.tg_price_cache_options_init(opts)
        opts.unit = self._unit_of(unit)
        opts.capacity = check_uint("capacity", capacity, U64_MAX)
        opts.max_payload = check_uint("max_payload", max_payload, U32_MAX)
        if opts.max_payload > MAX_PAYLOAD_LIMIT:
            # The library refuses it too (TG_ERANGE); get()'s scratch buffer
            # relies on this bound, so it is checked here whatever the library.
            raise InvalidArgumentError(
                lib.TG_ERANGE, f"max_payload must be <= {MAX_PAYLOAD_LIMIT} bytes, got {max_payload}"
            )
        opts.threshold = _number("threshold", threshold)
        opts.tick_size = _number("tick_size", tick_size)
        opts.max_age_ns = check_uint("max_age_ns", max_age_ns, U64_MAX)
        opts.vol_multiplier = _number("vol_multiplier", vol_multiplier)
        opts.vol_alpha = _number("vol_alpha", vol_alpha)
        opts.seed = check_uint("seed", seed, U64_MAX)
        out = ffi.new("tg_price_cache**")
        err = ffi.new("tg_error*")
        rc = lib.tg_price_cache_new(opts, out, err)
        if rc:
            raise error_from_struct(rc, err, "tg_price_cache_new failed")
        self._ptr = ffi.gc(out[0], lib.tg_price_cache_free)
        self._max_payload = int(opts.max_payload)
        self._unit = ThresholdUnit(opts.unit)
        if on_evict is not None:
            self.on_evict(on_evict)

    @staticmethod
    def _unit_of(value: Any) -> int:
        if isinstance(value, str):
            found = _UNIT_NAMES.get(value.lower())
            if found is None:
                raise invalid(f"unit must be 'bps' or 'ticks', not {value!r}")
            return int(found)
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"unit must be a str or ThresholdUnit, not {type(value).__name__}")
        # Any other int goes to the library, which refuses it with TG_EINVAL.
        return check_uint("unit", value, U32_MAX)

    encode_key = staticmethod(encode_key)

    # -- lifetime -----------------------------------------------------------

    def close(self) -> None:
        """Release the cache now (idempotent). No call may be in progress,
        and the ``on_evict`` callback must not call it."""
        ptr = self._ptr
        if ptr != NULL:
            self._ptr = NULL
            _registry.pop(self._reg_id, None)
            self._callback = None
            ffi.release(ptr)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has been called."""
        return bool(self._ptr == NULL)

    def __enter__(self) -> "PriceCache":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        if self._ptr == NULL:
            return "<tollgate.PriceCache closed>"
        return f"<tollgate.PriceCache unit={self._unit.name.lower()} max_payload={self._max_payload}>"

    @property
    def max_payload(self) -> int:
        """Bytes of payload an entry may hold."""
        return self._max_payload

    @property
    def unit(self) -> ThresholdUnit:
        """The unit of the cache's thresholds."""
        return self._unit

    def _closed_error(self) -> InvalidArgumentError:
        return invalid("the price cache is closed")

    # -- errors ---------------------------------------------------------------

    def _explain(self, rc: int, key: bytes, price: Any, what: str) -> TollgateError:
        """The most precise exception for a failed keyed call (the library
        gives no message for these)."""
        if self._ptr == NULL:
            return self._closed_error()
        if rc == lib.TG_EINVAL:
            bad_key = _key_error(key)
            if bad_key is not None:
                return bad_key
            if price is not None and not _price_ok(price):
                return invalid(f"price must be finite and > 0, got {price!r}")
        return error_for(rc, f"{what} failed")

    def _bad_args(self, exc: Exception, *, price: Any = 1.0, feed_seq: Any = 0, now_ns: Any = 0) -> Exception:
        """Explain an argument cffi could not convert."""
        if self._ptr == NULL:
            return self._closed_error()
        try:
            if isinstance(price, bool) or not isinstance(price, (int, float)):
                raise TypeError(f"price must be a number, not {type(price).__name__}")
            check_uint("feed_seq", feed_seq, U64_MAX)
            check_uint("now_ns", now_ns, U64_MAX)
        except (TypeError, ValueError) as explained:
            return explained
        if isinstance(exc, OverflowError):
            return invalid(str(exc))
        return exc

    @staticmethod
    def _capturing(fn: Any, *args: Any) -> Tuple[int, List[BaseException]]:
        """Call ``fn(*args)``, collecting the exceptions ``on_evict`` raises
        meanwhile on this thread; the caller raises the first one."""
        box: List[BaseException] = []
        outer = getattr(_tls, "callback_errors", None)
        _tls.callback_errors = box
        try:
            rc: int = fn(*args)
        finally:
            _tls.callback_errors = outer
        return rc, box

    # -- writers and readers -------------------------------------------------

    def put(
        self,
        key: PriceKey,
        price: float,
        feed_seq: int,
        payload: Union[bytes, bytearray, memoryview, str] = b"",
        now_ns: Optional[int] = None,
        threshold: Optional[float] = None,
        tick_size: Optional[float] = None,
    ) -> None:
        """Cache (or re-cache) an instrument at ``price`` as of ``feed_seq``.

        A re-cache replaces price, payload, sequence and age and resets the
        volatility estimate. May evict another entry (``CAPACITY``).

        Args:
            key: the instrument (str, bytes or int, see the module doc).
            price: finite and > 0.
            feed_seq: the feed's sequence number of this price (0 .. 2**64-1).
            payload: up to ``max_payload`` bytes (a str is UTF-8 encoded).
            now_ns: monotonic time in ns; default ``tg_now_ns()``.
            threshold: this entry's threshold (None: the cache's default).
            tick_size: this entry's tick size (None: the cache's default).

        Raises:
            InvalidArgumentError: TG_EINVAL (bad key or price) or TG_ERANGE
                (payload too long, negative threshold, tick size <= 0).
        """
        if type(key) is not bytes:
            key = encode_key(key)
        if type(payload) is not bytes:
            payload = _payload_bytes(payload)
        if now_ns is None:
            now_ns = lib.tg_now_ns()
        thr = _override("threshold", threshold)
        tick = _override("tick_size", tick_size)
        err = ffi.new("tg_error*")
        args = (self._ptr, key, len(key), price, feed_seq, payload, len(payload), thr, tick,
                now_ns, err)
        box: Optional[List[BaseException]] = None
        try:
            if self._callback is None:
                rc = lib.tg_price_cache_put(*args)
            else:
                rc, box = self._capturing(lib.tg_price_cache_put, *args)
        except (TypeError, OverflowError) as exc:
            raise self._bad_args(exc, price=price, feed_seq=feed_seq, now_ns=now_ns) from None
        if box:
            _raise_first(box)
        if rc:
            if self._ptr == NULL:
                raise self._closed_error()
            raise error_from_struct(rc, err, "tg_price_cache_put failed")

    def get(self, key: PriceKey, now_ns: Optional[int] = None) -> Optional[CachedPrice]:
        """The cached entry of an instrument, or None.

        None also for an entry older than ``max_age_ns`` (counted as a stale
        miss). Lock-free: never waits for the feed, never returns a torn
        entry. A hit marks the entry as recently used (CLOCK).
        """
        if type(key) is not bytes:
            key = encode_key(key)
        if now_ns is None:
            now_ns = lib.tg_now_ns()
        try:
            out, hit, payload, buf, _ = _tls.get
        except AttributeError:
            out, hit, payload, buf = _get_out()
        try:
            rc = lib.tg_price_cache_get(
                self._ptr, key, len(key), now_ns, out, payload, self._max_payload, hit
            )
        except (TypeError, OverflowError) as exc:
            raise self._bad_args(exc, now_ns=now_ns) from None
        if rc:
            raise self._explain(rc, key, None, "tg_price_cache_get")
        price, thr, seq, at, age, n, _, found = _unpack_cached(buf)
        if not found:
            return None
        return _tuple_new(CachedPrice, (price, thr, seq, at, age, buf[_PAYLOAD_AT : _PAYLOAD_AT + n]))

    def on_price(
        self, key: PriceKey, price: float, feed_seq: int, now_ns: Optional[int] = None
    ) -> PriceResult:
        """A market-data tick for an instrument.

        Returns:
            A :class:`PriceResult`: ``KEPT`` (the entry stays),
            ``EVICTED`` (see ``reason``), ``NOT_CACHED`` or ``REPLAY``.

        Raises:
            InvalidArgumentError: TG_EINVAL for a bad key, or a price that is
                NaN, infinite, zero or negative (nothing changes).
        """
        if type(key) is not bytes:
            key = encode_key(key)
        if now_ns is None:
            now_ns = lib.tg_now_ns()
        if self._callback is not None:
            return self._on_price_capturing(key, price, feed_seq, now_ns)
        try:
            out, buf = _tls.result
        except AttributeError:
            out, buf = _result_out()
        try:
            rc = lib.tg_price_cache_on_price(self._ptr, key, len(key), price, feed_seq, now_ns, out)
        except (TypeError, OverflowError) as exc:
            raise self._bad_args(exc, price=price, feed_seq=feed_seq, now_ns=now_ns) from None
        if rc:
            raise self._explain(rc, key, price, "tg_price_cache_on_price")
        raw = buf[:]
        r = _RESULTS.get(raw)
        return r if r is not None else _make_result(raw)

    def _on_price_capturing(self, key: bytes, price: Any, feed_seq: Any, now_ns: Any) -> PriceResult:
        out = ffi.new("tg_price_result*")  # not the thread's scratch: on_evict may tick too
        try:
            rc, box = self._capturing(
                lib.tg_price_cache_on_price, self._ptr, key, len(key), price, feed_seq, now_ns, out
            )
        except (TypeError, OverflowError) as exc:
            raise self._bad_args(exc, price=price, feed_seq=feed_seq, now_ns=now_ns) from None
        if box:
            _raise_first(box)
        if rc:
            raise self._explain(rc, key, price, "tg_price_cache_on_price")
        raw = ffi.buffer(out)[:]
        r = _RESULTS.get(raw)
        return r if r is not None else _make_result(raw)

    def on_price_many(
        self,
        ticks: Iterable[Tuple[PriceKey, float, int]],
        now_ns: Optional[int] = None,
    ) -> PriceBatch:
        """A batch of ticks ``(key, price, feed_seq)`` at one ``now_ns``,
        crossing into C once.

        Ticks are applied in order, exactly as the same :meth:`on_price`
        calls would be. Validation happens first: on an error no tick was
        applied.

        Returns:
            A :class:`PriceBatch` of one :class:`PriceResult` per tick.
        """
        if isinstance(ticks, (str, bytes, bytearray, memoryview)):
            raise TypeError("ticks must be a sequence of (key, price, feed_seq) tuples")
        if type(ticks) is not list and type(ticks) is not tuple:
            try:
                ticks = list(ticks)
            except TypeError:
                raise TypeError(
                    f"ticks must be a sequence of (key, price, feed_seq), not {type(ticks).__name__}"
                ) from None
        n = len(ticks)
        if n == 0:
            if self._ptr == NULL:
                raise self._closed_error()
            return PriceBatch(NULL, 0)
        # Three columns by itemgetter: cheaper than zip(*ticks), which makes
        # an iterator per tick.
        try:
            if list(map(len, ticks)).count(3) != n:
                raise TypeError
            keys: Sequence[Any] = list(map(_first, ticks))
            prices: Sequence[Any] = list(map(_second, ticks))
            seqs: Sequence[Any] = list(map(_third, ticks))
        except (TypeError, IndexError, KeyError):
            for i, t in enumerate(ticks):
                if not isinstance(t, (tuple, list)) or len(t) != 3:
                    raise TypeError(
                        f"ticks[{i}] must be a (key, price, feed_seq) tuple, not {t!r}"
                    ) from None
            raise
        try:
            data = b"".join(keys)
        except TypeError:
            keys = list(map(encode_key, keys))
            data = b"".join(keys)
        if len(data) > U32_MAX:
            raise invalid("the keys of one batch must total less than 4 GiB")
        lens = list(map(len, keys))
        width = lens[0]
        if lens.count(width) == n:
            offsets: Any = _fixed_offsets(n, width)
        else:
            offsets = array("I", accumulate(lens, initial=0))
        try:
            c_prices = array("d", prices)
        except TypeError:
            for i, p in enumerate(prices):
                if isinstance(p, bool) or not isinstance(p, (int, float)):
                    raise TypeError(
                        f"ticks[{i}]: price must be a number, not {type(p).__name__}"
                    ) from None
            raise
        try:
            c_seqs = array("Q", seqs)
        except (TypeError, OverflowError):
            for i, s in enumerate(seqs):
                check_uint(f"ticks[{i}]: feed_seq", s, U64_MAX)
            raise
        if now_ns is None:
            now_ns = lib.tg_now_ns()
        else:
            now_ns = check_uint("now_ns", now_ns, U64_MAX)
        out = ffi.new("tg_price_result[]", n)
        args = (
            self._ptr,
            ffi.from_buffer("uint8_t[]", data),
            ffi.from_buffer("uint32_t[]", offsets),
            n,
            ffi.from_buffer("double[]", c_prices),
            ffi.from_buffer("uint64_t[]", c_seqs),
            now_ns,
            out,
        )
        if self._callback is None:
            rc = lib.tg_price_cache_on_price_many(*args)
        else:
            rc, box = self._capturing(lib.tg_price_cache_on_price_many, *args)
            if box:
                _raise_first(box)
        if rc:
            if self._ptr == NULL:
                raise self._closed_error()
            if rc == lib.TG_EINVAL:
                for i in range(n):
                    bad = _key_error(keys[i])
                    if bad is not None:
                        raise invalid(f"ticks[{i}]: {bad.message}")
                    if not _price_ok(c_prices[i]):
                        raise invalid(f"ticks[{i}]: price must be finite and > 0, got {prices[i]!r}")
            raise error_for(rc, "tg_price_cache_on_price_many rejected the batch")
        return PriceBatch(out, n)

    def remove(self, key: PriceKey, now_ns: Optional[int] = None) -> bool:
        """Evict an instrument (``EvictReason.REMOVED``); False if it was not cached."""
        if type(key) is not bytes:
            key = encode_key(key)
        if now_ns is None:
            now_ns = lib.tg_now_ns()
        removed = ffi.new("int*")
        args = (self._ptr, key, len(key), now_ns, removed)
        box: Optional[List[BaseException]] = None
        try:
            if self._callback is None:
                rc = lib.tg_price_cache_remove(*args)
            else:
                rc, box = self._capturing(lib.tg_price_cache_remove, *args)
        except (TypeError, OverflowError) as exc:
            raise self._bad_args(exc, now_ns=now_ns) from None
        if box:
            _raise_first(box)
        if rc:
            raise self._explain(rc, key, None, "tg_price_cache_remove")
        return bool(removed[0])

    def expire(self, now_ns: Optional[int] = None) -> int:
        """Evict every entry older than ``max_age_ns`` (``AGE``); returns how many.

        O(slots): call it from the host's loop, not per order. A cache with
        ``max_age_ns=0`` never expires anything.
        """
        if now_ns is None:
            now_ns = lib.tg_now_ns()
        else:
            now_ns = check_uint("now_ns", now_ns, U64_MAX)
        evicted = ffi.new("size_t*")
        if self._callback is None:
            rc = lib.tg_price_cache_expire(self._ptr, now_ns, evicted)
        else:
            rc, box = self._capturing(lib.tg_price_cache_expire, self._ptr, now_ns, evicted)
            if box:
                _raise_first(box)
        if rc:
            if self._ptr == NULL:
                raise self._closed_error()
            raise error_for(rc, "tg_price_cache_expire failed")
        return int(evicted[0])

    def on_evict(
        self, callback: Optional[Callable[[EvictionEvent], Any]]
    ) -> Optional[Callable[[EvictionEvent], Any]]:
        """Call ``callback(event)`` for every eviction (None removes it).

        The callback runs synchronously on the thread of the call that
        evicted (``put``, ``on_price``, ``on_price_many``, ``remove``,
        ``expire``), after the entry is gone. It must not block and must
        not close the cache; it may call the cache's other methods. Set it
        before the feed starts.

        An exception raised by the callback cannot unwind through the
        library. The binding catches it, lets the library finish the call
        (and the callback see any further evictions of that call), then
        raises the **first** such exception from the method that caused the
        eviction, in place of its return value: the evictions have happened.
        Later exceptions of the same call are dropped (a note on the raised
        one counts them). Returns ``callback``, so this works as a decorator.
        """
        if callback is not None and not callable(callback):
            raise TypeError("callback must be callable or None")
        if self._ptr == NULL:
            raise self._closed_error()
        if callback is None:
            rc = lib.tg_price_cache_set_event_callback(self._ptr, ffi.NULL, ffi.NULL)
            if rc:
                raise error_for(rc, "tg_price_cache_set_event_callback failed")
            self._callback = None
            _registry.pop(self._reg_id, None)
            return None
        self._callback = callback
        if not self._reg_id:
            self._reg_id = next(_next_id)
        reg_id = self._reg_id
        _registry[reg_id] = weakref.ref(self, lambda _ref: _registry.pop(reg_id, None))
        rc = lib.tg_price_cache_set_event_callback(
            self._ptr, lib._tollgate_price_cache_event, ffi.cast("void*", reg_id)
        )
        if rc:
            self._callback = None
            _registry.pop(reg_id, None)
            raise error_for(rc, "tg_price_cache_set_event_callback failed")
        return callback

    def stats(self) -> PriceCacheStats:
        """Counters since creation."""
        out = ffi.new("tg_price_cache_stats*")
        rc = lib.tg_price_cache_stats_get(self._ptr, out)
        if rc:
            if self._ptr == NULL:
                raise self._closed_error()
            raise error_for(rc, "tg_price_cache_stats_get failed")
        return PriceCacheStats(
            hits=out.hits,
            misses=out.misses,
            stale_misses=out.stale_misses,
            puts=out.puts,
            kept=out.kept,
            replays=out.replays,
            not_cached=out.not_cached,
            evicted_price_move=out.evicted_price_move,
            evicted_sequence_gap=out.evicted_sequence_gap,
            evicted_age=out.evicted_age,
            evicted_capacity=out.evicted_capacity,
            evicted_removed=out.evicted_removed,
            entries=out.entries,
            slots=out.slots,
        )
