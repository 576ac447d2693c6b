"""Circuit breaker with a bulkhead (``tg_breaker``).

One :class:`Breaker` per upstream or venue. :meth:`Breaker.acquire` asks
whether a call may start and returns a :class:`Permit`;
:meth:`Breaker.record` reports how the call ended. Every admitted permit
must be recorded exactly once (``Outcome.IGNORED`` when the call was never
made); the binding refuses a second record of the same permit.

The ``with breaker.call():`` form does both: it raises :class:`BreakerOpen`
when the call is rejected, records a success on normal exit and a failure
when the block raises, with the latency measured by ``tg_now_ns``.

State changes can be observed with :meth:`Breaker.on_event`; the callback
runs synchronously on the thread that caused the change.
"""

from __future__ import annotations

import enum
import itertools
import sys
import traceback
import weakref
from array import array
from dataclasses import dataclass
from types import TracebackType
from typing import (
    Any,
    Callable,
    Dict,
    Iterator,
    List,
    Optional,
    Sequence,
    Tuple,
    Type,
    Union,
    cast,
    overload,
)

from ._lib import (
    NULL,
    U32_MAX,
    U64_MAX,
    batch_index,
    check_float,
    check_now,
    check_uint,
    ffi,
    lib,
)
from .errors import (
    BreakerOpen,
    InvalidArgumentError,
    StateError,
    TollgateError,
    error_for,
    error_from_struct,
    invalid,
)

__all__ = [
    "Breaker",
    "BreakerCall",
    "BreakerState",
    "BreakerReason",
    "BreakerStats",
    "Event",
    "Outcome",
    "Permit",
    "PermitBatch",
    "WindowType",
]


class BreakerState(enum.IntEnum):
    """The state of a breaker (``TG_BREAKER_*``)."""

    CLOSED = lib.TG_BREAKER_CLOSED
    OPEN = lib.TG_BREAKER_OPEN
    HALF_OPEN = lib.TG_BREAKER_HALF_OPEN
    FORCED_OPEN = lib.TG_BREAKER_FORCED_OPEN  # kill switch: reject everything
    FORCED_CLOSED = lib.TG_BREAKER_FORCED_CLOSED  # admit everything, keep the window
    DISABLED = lib.TG_BREAKER_DISABLED  # admit everything, record nothing
    METRICS_ONLY = lib.TG_BREAKER_METRICS_ONLY  # admit everything, count would-be trips


class BreakerReason(enum.IntEnum):
    """Why a permit was refused (``TG_BREAKER_REASON_*``)."""

    NONE = lib.TG_BREAKER_REASON_NONE
    OPEN = lib.TG_BREAKER_REASON_OPEN
    FORCED_OPEN = lib.TG_BREAKER_REASON_FORCED_OPEN
    BULKHEAD_FULL = lib.TG_BREAKER_REASON_BULKHEAD_FULL


class Outcome(enum.IntEnum):
    """How a call ended (``TG_OUTCOME_*``)."""

    SUCCESS = lib.TG_OUTCOME_SUCCESS
    FAILURE = lib.TG_OUTCOME_FAILURE
    IGNORED = lib.TG_OUTCOME_IGNORED  # e.g. the client cancelled: not counted


class WindowType(enum.IntEnum):
    """The sliding window: the last N calls, or the last N time buckets."""

    COUNT = lib.TG_WINDOW_COUNT
    TIME = lib.TG_WINDOW_TIME


_SUCCESS = Outcome.SUCCESS
_FAILURE = Outcome.FAILURE
_IGNORED = Outcome.IGNORED
_STATES: Dict[int, BreakerState] = {int(s): s for s in BreakerState}
_REASONS: Dict[int, BreakerReason] = {int(r): r for r in BreakerReason}
_OUTCOME_NAMES: Dict[str, Outcome] = {o.name.lower(): o for o in Outcome}
_STATE_NAMES: Dict[str, BreakerState] = {s.name.lower(): s for s in BreakerState}
_WINDOW_NAMES: Dict[str, WindowType] = {w.name.lower(): w for w in WindowType}


def _state(value: int) -> Union[BreakerState, int]:
    return _STATES.get(value, value)


def _rate(value: float) -> Optional[float]:
    """The library's -1 ("unknown": too few calls) becomes None."""
    return None if value < 0 else float(value)


@dataclass(frozen=True, slots=True)
class Event:
    """A state change, passed to the :meth:`Breaker.on_event` callback.

    ``failure_rate`` and ``slow_rate`` are percentages over the window at the
    change, or None when unknown; ``open_ns`` is the open duration chosen
    when ``to_state`` is OPEN, else 0.
    """

    from_state: Union[BreakerState, int]
    to_state: Union[BreakerState, int]
    now_ns: int
    failure_rate: Optional[float]
    slow_rate: Optional[float]
    open_ns: int


@dataclass(frozen=True, slots=True)
class BreakerStats:
    """Counters since creation, and the window now.

    ``failure_rate`` and ``slow_rate`` are None while the window holds fewer
    than ``minimum_calls`` calls.
    """

    admitted: int
    rejected: int
    bulkhead_rejected: int
    successes: int
    failures: int
    slow_calls: int
    ignored: int
    transitions: int
    would_open: int
    in_flight: int
    state: Union[BreakerState, int]
    failure_rate: Optional[float]
    slow_rate: Optional[float]
    window_calls: int


class Permit:
    """The answer of :meth:`Breaker.acquire`; pass it back to ``record``.

    Read-only: ``allowed``, ``reason``, ``state`` (at the decision) and
    ``retry_after_ns`` (when rejected because open: the time until
    half-open).
    """

    __slots__ = ("_raw", "_recorded")

    _raw: Any
    _recorded: bool

    def __init__(self) -> None:
        raise TypeError("permits come from Breaker.acquire()")

    @property
    def allowed(self) -> bool:
        """The call may start."""
        return bool(self._raw.allowed == 1)

    @property
    def reason(self) -> Union[BreakerReason, int]:
        """Why it was refused (``BreakerReason.NONE`` when allowed)."""
        value: int = self._raw.reason
        return _REASONS.get(value, value)

    @property
    def state(self) -> Union[BreakerState, int]:
        """The breaker's state at the time of the decision."""
        return _state(self._raw.state)

    @property
    def retry_after_ns(self) -> int:
        """When rejected because open: nanoseconds until half-open."""
        return int(self._raw.retry_after_ns)

    @property
    def token(self) -> int:
        """Opaque to callers; identifies the permit to the library."""
        return int(self._raw.token)

    @property
    def recorded(self) -> bool:
        """Whether this permit's outcome has been recorded."""
        return self._recorded

    def __bool__(self) -> bool:
        return bool(self._raw.allowed == 1)

    def __repr__(self) -> str:
        state = self.state
        return (
            f"Permit(allowed={self.allowed}, reason={self.reason!r}, "
            f"state={getattr(state, 'name', state)}, retry_after_ns={self.retry_after_ns})"
        )


_object_new = object.__new__
_new = ffi.new


def _permit_from(raw: Any) -> Permit:
    p = _object_new(Permit)
    p._raw = raw
    p._recorded = False
    return p


# tg_breaker_permit: token u64 @0, allowed i32 @8, reason i32 @12,
# state i32 @16, reserved u32 @20, retry_after_ns u64 @24.
_PERMIT_SIZE = ffi.sizeof("tg_breaker_permit")
assert _PERMIT_SIZE == 32
assert ffi.offsetof("tg_breaker_permit", "allowed") == 8
assert ffi.offsetof("tg_breaker_permit", "state") == 16
assert ffi.offsetof("tg_breaker_permit", "retry_after_ns") == 24
_ALLOWED_BYTE = 8 if sys.byteorder == "little" else 11


class PermitBatch(Sequence[Permit]):
    """The permits of one :meth:`Breaker.acquire_many` call.

    Pass the whole batch to :meth:`Breaker.record_many` (once). Indexing
    gives a copy of one permit, which can be recorded on its own instead;
    the binding cannot tell that apart from recording the batch, so do one
    or the other.
    """

    __slots__ = ("_out", "_n", "_buf", "_recorded")

    def __init__(self, out: Any, n: int) -> None:
        self._out = out
        self._n = n
        self._buf = memoryview(ffi.buffer(out, n * _PERMIT_SIZE)).cast("B")
        self._recorded = False

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, index: int) -> Permit: ...

    @overload
    def __getitem__(self, index: slice) -> List[Permit]: ...

    def __getitem__(self, index: Union[int, slice]) -> Union[Permit, List[Permit]]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._n))]
        i = batch_index(index, self._n, "PermitBatch")
        return _permit_from(_new("tg_breaker_permit*", self._out[i]))

    def __iter__(self) -> Iterator[Permit]:
        for i in range(self._n):
            yield self[i]

    @property
    def allowed(self) -> bytes:
        """One byte per permit: 1 the call may start, 0 rejected."""
        return bytes(self._buf)[_ALLOWED_BYTE::_PERMIT_SIZE]

    @property
    def allowed_count(self) -> int:
        """How many calls may start."""
        return self.allowed.count(1)

    @property
    def reasons(self) -> List[int]:
        """The ``BreakerReason`` code of each permit."""
        return self._buf.cast("i")[3::8].tolist()

    @property
    def states(self) -> List[int]:
        """The ``BreakerState`` at each decision."""
        return self._buf.cast("i")[4::8].tolist()

    @property
    def retry_after_ns(self) -> List[int]:
        """The retry-after of each permit."""
        return self._buf.cast("Q")[3::4].tolist()

    @property
    def recorded(self) -> bool:
        """Whether the batch has been passed to ``record_many``."""
        return self._recorded

    def __repr__(self) -> str:
        return f"<tollgate.PermitBatch n={self._n} allowed={self.allowed_count}>"


def _outcome(value: Any) -> int:
    if isinstance(value, str):
        try:
            return _OUTCOME_NAMES[value.lower()]
        except KeyError:
            raise invalid(
                f"unknown outcome {value!r}: use 'success', 'failure' or 'ignored'"
            ) from None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"outcome must be an Outcome, int or str, not {type(value).__name__}")
    return int(value)


# Breakers with an event callback, by the integer passed to C as `user`. The
# registry holds weak references: a callback never keeps a breaker alive.
_registry: Dict[int, "weakref.ref[Breaker]"] = {}
_next_id = itertools.count(1)


@ffi.def_extern(name="_tollgate_breaker_event")  # type: ignore[untyped-decorator]
def _on_breaker_event(user: Any, ev: Any) -> None:
    ref = _registry.get(int(ffi.cast("uintptr_t", user)))
    breaker = ref() if ref is not None else None
    if breaker is None:
        return
    callback = breaker._callback
    if callback is None:
        return
    event = Event(
        from_state=_state(ev.from_state),
        to_state=_state(ev.to_state),
        now_ns=int(ev.now_ns),
        failure_rate=_rate(ev.failure_rate),
        slow_rate=_rate(ev.slow_rate),
        open_ns=int(ev.open_ns),
    )
    try:
        callback(event)
    except BaseException:  # noqa: BLE001 - nothing above us can catch it
        # The C call that made the change cannot be unwound; report and go on.
        sys.stderr.write("tollgate: exception in a breaker event callback (ignored):\n")
        traceback.print_exc()


_U32_OPTIONS = ("window_size", "minimum_calls", "half_open_probes", "max_in_flight")
_U64_OPTIONS = ("bucket_ns", "slow_call_ns", "open_ns", "max_open_ns", "max_half_open_ns")
_FLOAT_OPTIONS = ("failure_rate_threshold", "slow_rate_threshold", "backoff_multiplier")


class Breaker:
    """A circuit breaker with a bulkhead.

    Every option mirrors ``tg_breaker_options``; None keeps the library's
    default.

    Args:
        window_type: ``"count"`` (the last ``window_size`` calls, default)
            or ``"time"`` (the last ``window_size`` buckets of ``bucket_ns``).
        window_size: calls (1..65536) or buckets (1..256); default 100.
        minimum_calls: calls the window must hold before the breaker may
            open; default 20.
        bucket_ns: time windows: bucket width; default 1 s.
        failure_rate_threshold: percent in (0, 100]; default 50.
        slow_rate_threshold: percent in (0, 100]; default 100.
        slow_call_ns: a call at least this long is slow; default 1 s.
        open_ns: first open duration; default 1 s.
        backoff_multiplier: >= 1; each consecutive opening lasts this much
            longer; default 1.
        max_open_ns: cap of the backed-off open duration; default 60 s.
        half_open_probes: calls let through when half-open; default 5.
        max_in_flight: bulkhead bound on calls in flight; 0 = unbounded.
        max_half_open_ns: reopen when probes have not all ended within
            this; 0 = unbounded.
        name: a label for messages (Python only).

    Raises:
        TollgateError: the library rejected the configuration.
    """

    __slots__ = ("_ptr", "_callback", "_reg_id", "name", "__weakref__")

    def __init__(
        self,
        *,
        window_type: Union[str, int, None] = None,
        window_size: Optional[int] = None,
        minimum_calls: Optional[int] = None,
        bucket_ns: Optional[int] = None,
        failure_rate_threshold: Optional[float] = None,
        slow_rate_threshold: Optional[float] = None,
        slow_call_ns: Optional[int] = None,
        open_ns: Optional[int] = None,
        backoff_multiplier: Optional[float] = None,
        max_open_ns: Optional[int] = None,
        half_open_probes: Optional[int] = None,
        max_in_flight: Optional[int] = None,
        max_half_open_ns: Optional[int] = None,
        name: Optional[str] = None,
    ) -> None:
        self._ptr = NULL
        self._callback: Optional[Callable[[Event], Any]] = None
        self._reg_id = 0
        if name is not None and not isinstance(name, str):
            raise TypeError("name must be a str")
        self.name = name
        given = dict(
            window_size=window_size,
            minimum_calls=minimum_calls,
            bucket_ns=bucket_ns,
            failure_rate_threshold=failure_rate_threshold,
            slow_rate_threshold=slow_rate_threshold,
            slow_call_ns=slow_call_ns,
            open_ns=open_ns,
            backoff_multiplier=backoff_multiplier,
            max_open_ns=max_open_ns,
            half_open_probes=half_open_probes,
            max_in_flight=max_in_flight,
            max_half_open_ns=max_half_open_ns,
        )
        opts = ffi.new("tg_breaker_options*")
        lib.tg_breaker_options_init(opts)
        if window_type is not None:
            opts.window_type = self._window_type(window_type)
        for field in _U32_OPTIONS:
            if given[field] is not None:
                setattr(opts, field, check_uint(field, given[field], U32_MAX))
        for field in _U64_OPTIONS:
            if given[field] is not None:
                setattr(opts, field, check_uint(field, given[field], U64_MAX))
        for field in _FLOAT_OPTIONS:
            if given[field] is not None:
                setattr(opts, field, check_float(field, given[field]))
        out = ffi.new("tg_breaker**")
        err = ffi.new("tg_error*")
        rc = lib.tg_breaker_new(opts, out, err)
        if rc:
            raise error_from_struct(rc, err, "tg_breaker_new failed")
        self._ptr = ffi.gc(out[0], lib.tg_breaker_free)

    @staticmethod
    def _window_type(value: Any) -> int:
        if isinstance(value, str):
            try:
                return _WINDOW_NAMES[value.lower()]
            except KeyError:
                raise invalid(f"window_type must be 'count' or 'time', not {value!r}") from None
        if isinstance(value, int) and not isinstance(value, bool):
            return check_uint("window_type", value, U32_MAX)
        raise TypeError(f"window_type must be 'count' or 'time', not {type(value).__name__}")

    # -- lifetime -------------------------------------------------------

    def close(self) -> None:
        """Release the breaker now (idempotent). No call may be in progress."""
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

    def __enter__(self) -> "Breaker":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        label = f" {self.name!r}" if self.name else ""
        if self._ptr == NULL:
            return f"<tollgate.Breaker{label} closed>"
        state = self.state
        return f"<tollgate.Breaker{label} {getattr(state, 'name', state)}>"

    def _closed_error(self) -> InvalidArgumentError:
        return invalid("the breaker is closed")

    def _failure(self, rc: int, what: str) -> TollgateError:
        if self._ptr == NULL:
            return self._closed_error()
        return error_for(rc, what)

    # -- decisions --------------------------------------------------------

    def acquire(self, now_ns: Optional[int] = None) -> Permit:
        """May a call start now? Always returns a permit; see ``.allowed``."""
        if now_ns is None:
            now_ns = lib.tg_now_ns()
        raw = _new("tg_breaker_permit*")
        try:
            rc = lib.tg_breaker_acquire(self._ptr, now_ns, raw)
        except (TypeError, OverflowError) as exc:
            check_now(now_ns)
            raise invalid(str(exc)) from None
        if rc:
            raise self._failure(rc, "tg_breaker_acquire failed")
        p = _object_new(Permit)
        p._raw = raw
        p._recorded = False
        return p

    def record(
        self,
        permit: Permit,
        outcome: Union[Outcome, int, str] = Outcome.SUCCESS,
        latency_ns: int = 0,
        now_ns: Optional[int] = None,
    ) -> None:
        """Report how the call of ``permit`` ended; frees its bulkhead slot.

        Args:
            permit: from :meth:`acquire` (recording a rejected permit is a
                harmless no-op).
            outcome: ``Outcome`` (or "success", "failure", "ignored").
            latency_ns: the call's duration; at least ``slow_call_ns`` is slow.
            now_ns: monotonic time in ns; default ``tg_now_ns()``.

        Raises:
            StateError: this permit was already recorded.
        """
        if type(permit) is not Permit:
            raise TypeError(f"permit must be a Permit, not {type(permit).__name__}")
        if permit._recorded:
            raise StateError(lib.TG_ESTATE, "this permit was already recorded")
        if type(outcome) is str:
            outcome = _outcome(outcome)
        if now_ns is None:
            now_ns = lib.tg_now_ns()
        try:
            rc = lib.tg_breaker_record(self._ptr, permit._raw, outcome, latency_ns, now_ns)
        except (TypeError, OverflowError) as exc:
            _outcome(outcome)
            check_uint("latency_ns", latency_ns, U64_MAX)
            check_now(now_ns)
            raise invalid(f"outcome {outcome!r} is out of range ({exc})") from None
        if rc:
            if self._ptr != NULL and rc == lib.TG_EINVAL:
                raise invalid(f"unknown outcome {outcome!r}: use Outcome.SUCCESS, FAILURE or IGNORED")
            raise self._failure(rc, "tg_breaker_record failed")
        permit._recorded = True

    def call(self, *, ignore: Tuple[Type[BaseException], ...] = ()) -> "BreakerCall":
        """A context manager that acquires, runs the block and records.

        ``with breaker.call() as c: ...`` raises :class:`BreakerOpen` when
        rejected; records SUCCESS when the block ends normally, FAILURE when
        it raises an ``Exception``, and IGNORED when it raises one of the
        ``ignore`` types or a ``BaseException`` that is not an ``Exception``
        (cancellation, KeyboardInterrupt). Set ``c.outcome`` inside the block
        to choose the outcome yourself. The latency is measured with
        ``tg_now_ns``.
        """
        if not isinstance(ignore, tuple):
            raise TypeError("ignore must be a tuple of exception types")
        return BreakerCall(self, ignore)

    def acquire_many(self, n: int, now_ns: Optional[int] = None) -> PermitBatch:
        """Decide ``n`` calls at one ``now_ns``, crossing into C once."""
        n = check_uint("n", n, sys.maxsize)
        now = check_now(now_ns)
        out = _new("tg_breaker_permit[]", n)
        rc = lib.tg_breaker_acquire_many(self._ptr, n, now, out)
        if rc:
            raise self._failure(rc, "tg_breaker_acquire_many failed")
        return PermitBatch(out, n)

    def record_many(
        self,
        permits: Union[PermitBatch, Sequence[Permit]],
        outcomes: Union[Outcome, int, str, Sequence[Union[Outcome, int, str]]],
        latencies_ns: Optional[Sequence[int]] = None,
        now_ns: Optional[int] = None,
    ) -> None:
        """Record a batch of outcomes at one ``now_ns``, crossing into C once.

        Args:
            permits: a :class:`PermitBatch` or a sequence of :class:`Permit`.
            outcomes: one outcome for all, or one per permit.
            latencies_ns: one latency per permit; default all 0.
            now_ns: monotonic time in ns; default ``tg_now_ns()``.

        Validation happens before anything is recorded.
        """
        if type(permits) is PermitBatch:
            if permits._recorded:
                raise StateError(lib.TG_ESTATE, "this batch was already recorded")
            n = permits._n
            c_permits = permits._out
            singles: Optional[List[Permit]] = None
        else:
            if isinstance(permits, (str, bytes, Permit)):
                raise TypeError("permits must be a PermitBatch or a sequence of Permit")
            singles = list(permits)
            n = len(singles)
            c_permits = _new("tg_breaker_permit[]", n)
            for i, p in enumerate(singles):
                if type(p) is not Permit:
                    raise TypeError(f"permits[{i}] must be a Permit, not {type(p).__name__}")
                if p._recorded:
                    raise StateError(lib.TG_ESTATE, f"permits[{i}] was already recorded")
                c_permits[i] = p._raw[0]
        if isinstance(outcomes, (int, str)):
            column = array("i", [_outcome(outcomes)]) * n
        else:
            try:
                column = array("i", outcomes)  # type: ignore[arg-type]
            except (TypeError, OverflowError):
                column = array("i", [_outcome(o) for o in outcomes])
        if len(column) != n:
            raise invalid(f"outcomes has {len(column)} entries for {n} permits")
        c_outcomes = ffi.from_buffer("int32_t[]", column)
        c_latencies = NULL
        if latencies_ns is not None:
            try:
                lat = array("Q", latencies_ns)
            except (TypeError, OverflowError):
                for i, v in enumerate(latencies_ns):
                    check_uint(f"latencies_ns[{i}]", v, U64_MAX)
                raise
            if len(lat) != n:
                raise invalid(f"latencies_ns has {len(lat)} entries for {n} permits")
            c_latencies = ffi.from_buffer("uint64_t[]", lat)
        now = check_now(now_ns)
        rc = lib.tg_breaker_record_many(self._ptr, c_permits, c_outcomes, c_latencies, n, now)
        if rc:
            if self._ptr != NULL and rc == lib.TG_EINVAL:
                raise invalid("outcomes must be Outcome.SUCCESS, FAILURE or IGNORED")
            raise self._failure(rc, "tg_breaker_record_many failed")
        if singles is None:
            cast(PermitBatch, permits)._recorded = True
        else:
            for p in singles:
                p._recorded = True

    # -- state ------------------------------------------------------------

    @property
    def state(self) -> Union[BreakerState, int]:
        """The current state. An open breaker whose open duration has passed
        still reads OPEN until the next acquire."""
        out = ffi.new("int*")
        rc = lib.tg_breaker_state(self._ptr, out)
        if rc:
            raise self._failure(rc, "tg_breaker_state failed")
        return _state(out[0])

    def transition(self, state: Union[BreakerState, int, str], now_ns: Optional[int] = None) -> None:
        """Move to ``state`` now (forced states, reset to CLOSED, ...).

        Emits an event. ``state`` is a :class:`BreakerState`, its value, or
        its name ("forced_open").
        """
        if isinstance(state, str):
            try:
                state = _STATE_NAMES[state.lower()]
            except KeyError:
                raise invalid(f"unknown breaker state {state!r}") from None
        elif isinstance(state, bool) or not isinstance(state, int):
            raise TypeError(f"state must be a BreakerState, int or str, not {type(state).__name__}")
        now = check_now(now_ns)
        if not -(2**31) <= state < 2**31:
            raise invalid(f"unknown breaker state {state}")
        rc = lib.tg_breaker_transition(self._ptr, state, now)
        if rc:
            if self._ptr != NULL and rc == lib.TG_EINVAL:
                raise invalid(f"unknown breaker state {state}")
            raise self._failure(rc, "tg_breaker_transition failed")

    def on_event(
        self, callback: Optional[Callable[[Event], Any]]
    ) -> Optional[Callable[[Event], Any]]:
        """Call ``callback(event)`` on every state change (None removes it).

        The callback runs synchronously on the thread that made the change,
        after the change is visible; it must not block and must not close
        the breaker. An exception it raises is printed to stderr and
        ignored. Returns ``callback``, so this works as a decorator.
        """
        if callback is not None and not callable(callback):
            raise TypeError("callback must be callable or None")
        if self._ptr == NULL:
            raise self._closed_error()
        if callback is None:
            rc = lib.tg_breaker_set_event_callback(self._ptr, ffi.NULL, ffi.NULL)
            if rc:
                raise self._failure(rc, "tg_breaker_set_event_callback failed")
            self._callback = None
            _registry.pop(self._reg_id, None)
            return None
        self._callback = callback
        if not self._reg_id:
            self._reg_id = next(_next_id)
        reg_id = self._reg_id
        _registry[reg_id] = weakref.ref(self, lambda _ref: _registry.pop(reg_id, None))
        rc = lib.tg_breaker_set_event_callback(
            self._ptr, lib._tollgate_breaker_event, ffi.cast("void*", reg_id)
        )
        if rc:
            self._callback = None
            _registry.pop(reg_id, None)
            raise self._failure(rc, "tg_breaker_set_event_callback failed")
        return callback

    def stats(self, now_ns: Optional[int] = None) -> BreakerStats:
        """Counters since creation, and the window at ``now_ns``."""
        now = check_now(now_ns)
        out = ffi.new("tg_breaker_stats*")
        rc = lib.tg_breaker_stats_get(self._ptr, now, out)
        if rc:
            raise self._failure(rc, "tg_breaker_stats_get failed")
        return BreakerStats(
            admitted=out.admitted,
            rejected=out.rejected,
            bulkhead_rejected=out.bulkhead_rejected,
            successes=out.successes,
            failures=out.failures,
            slow_calls=out.slow_calls,
            ignored=out.ignored,
            transitions=out.transitions,
            would_open=out.would_open,
            in_flight=out.in_flight,
            state=_state(out.state),
            failure_rate=_rate(out.failure_rate),
            slow_rate=_rate(out.slow_rate),
            window_calls=out.window_calls,
        )


class BreakerCall:
    """The context manager returned by :meth:`Breaker.call`.

    Inside the block, ``permit`` is the admitted permit and ``outcome`` may
    be set to override the recorded outcome. After the block,
    ``latency_ns`` holds the measured duration. If the block records
    ``permit`` itself, the context manager does not record it again.
    """

    __slots__ = (
        "_breaker", "_ignore", "_start", "_raw", "_permit", "_done", "outcome", "latency_ns"
    )

    def __init__(self, breaker: Breaker, ignore: Tuple[Type[BaseException], ...]) -> None:
        self._breaker = breaker
        self._ignore = ignore
        self._start = 0
        self._raw: Any = None
        self._permit: Optional[Permit] = None
        self._done = False
        self.outcome: Optional[Union[Outcome, int, str]] = None
        self.latency_ns: Optional[int] = None

    @property
    def permit(self) -> Optional[Permit]:
        """The admitted permit (None before the block is entered)."""
        if self._permit is None and self._raw is not None:
            self._permit = _permit_from(self._raw)
            self._permit._recorded = self._done
        return self._permit

    def __enter__(self) -> "BreakerCall":
        if self._raw is not None:
            raise StateError(lib.TG_ESTATE, "a BreakerCall can be entered once")
        breaker = self._breaker
        now = lib.tg_now_ns()
        raw = _new("tg_breaker_permit*")
        rc = lib.tg_breaker_acquire(breaker._ptr, now, raw)
        if rc:
            raise breaker._failure(rc, "tg_breaker_acquire failed")
        if raw.allowed != 1:
            raise BreakerOpen(_permit_from(raw), breaker.name)
        self._raw = raw
        self._start = now
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        end = lib.tg_now_ns()
        latency = end - self._start if end > self._start else 0
        self.latency_ns = latency
        permit = self._permit
        if permit is not None and permit._recorded:
            return  # the block recorded it
        outcome = self.outcome
        if outcome is None:
            if exc_type is None:
                outcome = _SUCCESS
            elif issubclass(exc_type, self._ignore) or not issubclass(exc_type, Exception):
                outcome = _IGNORED
            else:
                outcome = _FAILURE
        elif type(outcome) is str:
            outcome = _outcome(outcome)
        breaker = self._breaker
        rc = lib.tg_breaker_record(breaker._ptr, self._raw, outcome, latency, end)
        if rc:
            if breaker._ptr != NULL and rc == lib.TG_EINVAL:
                raise invalid(f"unknown outcome {outcome!r}: use Outcome.SUCCESS, FAILURE or IGNORED")
            raise breaker._failure(rc, "tg_breaker_record failed")
        self._done = True
        if permit is not None:
            permit._recorded = True
