"""Pre-trade risk checks (``tg_risk_checker``).

A :class:`RiskChecker` decides whether one order may go to the market (SEC
Rule 15c3-5, MiFID II RTS 6 Art. 15). Checks run in this order; the first
that fails decides (:class:`RiskReason`):

1. kill switches: the global one, the order's account, its instrument;
2. a malformed order: quantity not finite or <= 0; a limit price neither
   None/NaN (a market order) nor finite and > 0; an account or instrument
   not 1..32 bytes; a client order id not 1..64 bytes. These are
   *decisions* (``INVALID_*``, with ``limit`` the longest length allowed and
   ``observed`` the length), not exceptions;
3. duplicate: the account had an order with this client order id accepted
   less than ``duplicate_window_ns`` ago (``observed`` = its age in ns);
4. ``max_quantity``;
5. reference price: the :class:`~tollgate.PriceCache` entry of the
   instrument. A miss, or an entry older than the cache's ``max_age_ns`` or
   than ``max_reference_age_ns``, is "no fresh reference": with
   ``on_no_reference="reject"`` (the default) the order is rejected
   (``NO_REFERENCE_PRICE``); with ``"allow"`` the collar is skipped, a limit
   order's notional uses its limit price and a market order's is unknown;
6. price collar (limit orders): the limit price must lie within
   ``reference +/- band``, the band being ``reference * width / 100``
   (``"percent"``), ``reference * width / 1e4`` (``"bps"``) or
   ``width * collar_tick_size`` (``"ticks"``); ``limit`` is the edge crossed;
7. ``max_notional``: quantity times the limit price (a market order: the
   reference);
8. the account's period (fixed windows ``[k * period_ns, (k+1) * period_ns)``):
   account capacity, notional, order count, duplicate-id capacity.

Only an accepted order counts toward its account and is remembered as a
duplicate. A value exactly at a limit passes (notional and collar
comparisons allow a relative 1e-9). Memory is fixed at creation; when the
account or duplicate tables are full the order is rejected
(``ACCOUNT_CAPACITY``, ``DUPLICATE_CAPACITY``): the checker fails closed.

Strings: accounts and client order ids are ``str`` (UTF-8) or bytes;
instruments take the same forms as :class:`~tollgate.PriceCache` keys
(``str``, bytes, or an ``int`` id as 8 little-endian bytes), since they are
looked up there. Lengths are not checked by the binding: a bad length is a
decision. Quantities and prices are ``int`` or ``float`` (not ``bool``).

Kill switches (:meth:`RiskChecker.engage`, :meth:`RiskChecker.release`) are
latched until released and effective for every check that starts after the
call returns, on any thread; every change is passed to the ``on_kill``
callback.

Every method is thread-safe (the library releases the GIL during each call);
checks of one account are serialised by the library, so two threads can
never both pass a limit only one of them fits under. ``close()`` must not
race with calls on the same checker.
"""

from __future__ import annotations

import enum
import itertools
import math
import numbers
import struct
import sys
import threading
import traceback
import weakref
from array import array
from dataclasses import dataclass
from operator import itemgetter
from typing import (
    Any,
    Callable,
    Dict,
    Iterable,
    Iterator,
    List,
    Mapping,
    NamedTuple,
    Optional,
    Sequence,
    Tuple,
    Union,
    overload,
)

from ._lib import NULL, U32_MAX, U64_MAX, batch_index, check_now, check_uint, ffi, lib
from .errors import (
    InvalidArgumentError,
    StateError,
    TollgateError,
    error_for,
    error_from_struct,
    invalid,
)
from .price_cache import PriceCache, PriceKey, encode_key

__all__ = [
    "CollarUnit",
    "KillScope",
    "KillSwitchEvent",
    "NoReferencePolicy",
    "RiskBatch",
    "RiskChecker",
    "RiskDecision",
    "RiskOrder",
    "RiskReason",
    "RiskStats",
    "Side",
]

#: An account or client order id: str (UTF-8) or bytes-like.
Text = Union[str, bytes, bytearray, memoryview]


class CollarUnit(enum.IntEnum):
    """The unit of ``collar_width`` (``TG_COLLAR_*``)."""

    PERCENT = lib.TG_COLLAR_PERCENT
    BPS = lib.TG_COLLAR_BPS
    TICKS = lib.TG_COLLAR_TICKS


class NoReferencePolicy(enum.IntEnum):
    """What to do without a fresh reference price (``TG_NO_REFERENCE_*``)."""

    REJECT = lib.TG_NO_REFERENCE_REJECT  # never trade blind (the default)
    ALLOW = lib.TG_NO_REFERENCE_ALLOW  # skip the collar; see the module doc


class Side(enum.IntEnum):
    """An order's side (``TG_SIDE_*``); no check depends on it."""

    BUY = lib.TG_SIDE_BUY
    SELL = lib.TG_SIDE_SELL


class KillScope(enum.IntEnum):
    """What a kill switch stops (``TG_KILL_*``)."""

    GLOBAL = lib.TG_KILL_GLOBAL
    ACCOUNT = lib.TG_KILL_ACCOUNT
    INSTRUMENT = lib.TG_KILL_INSTRUMENT


class RiskReason(enum.IntEnum):
    """Why an order was rejected (``TG_RISK_*``); ``NONE`` when allowed."""

    NONE = lib.TG_RISK_NONE
    KILL_SWITCH_GLOBAL = lib.TG_RISK_KILL_SWITCH_GLOBAL
    KILL_SWITCH_ACCOUNT = lib.TG_RISK_KILL_SWITCH_ACCOUNT
    KILL_SWITCH_INSTRUMENT = lib.TG_RISK_KILL_SWITCH_INSTRUMENT
    INVALID_QUANTITY = lib.TG_RISK_INVALID_QUANTITY
    INVALID_PRICE = lib.TG_RISK_INVALID_PRICE
    INVALID_ACCOUNT = lib.TG_RISK_INVALID_ACCOUNT
    INVALID_INSTRUMENT = lib.TG_RISK_INVALID_INSTRUMENT
    INVALID_CLIENT_ORDER_ID = lib.TG_RISK_INVALID_CLIENT_ORDER_ID
    DUPLICATE_ORDER = lib.TG_RISK_DUPLICATE_ORDER
    MAX_QUANTITY = lib.TG_RISK_MAX_QUANTITY
    NO_REFERENCE_PRICE = lib.TG_RISK_NO_REFERENCE_PRICE
    PRICE_COLLAR = lib.TG_RISK_PRICE_COLLAR
    MAX_NOTIONAL = lib.TG_RISK_MAX_NOTIONAL
    ACCOUNT_NOTIONAL = lib.TG_RISK_ACCOUNT_NOTIONAL
    ACCOUNT_ORDER_COUNT = lib.TG_RISK_ACCOUNT_ORDER_COUNT
    ACCOUNT_CAPACITY = lib.TG_RISK_ACCOUNT_CAPACITY
    DUPLICATE_CAPACITY = lib.TG_RISK_DUPLICATE_CAPACITY


_REASONS: Dict[int, RiskReason] = {int(r): r for r in RiskReason}
# The library's names ("price_collar"), read once.
_REASON_NAMES: Dict[int, str] = {
    int(r): ffi.string(lib.tg_risk_reason_name(int(r))).decode("ascii") for r in RiskReason
}
_SCOPES: Dict[int, KillScope] = {int(s): s for s in KillScope}


def reason_name(reason: int) -> str:
    """The library's name of a reason code (``"price_collar"``), or ``"unknown"``."""
    name = _REASON_NAMES.get(reason)
    if name is None:
        if isinstance(reason, bool) or not isinstance(reason, int):
            raise TypeError(f"reason must be an int, not {type(reason).__name__}")
        if not -(2**31) <= reason < 2**31:
            return "unknown"
        name = ffi.string(lib.tg_risk_reason_name(reason)).decode("ascii", "replace")
    return name


class RiskDecision(NamedTuple):
    """The decision on one order (immutable). True when the order is allowed.

    Attributes:
        allowed: the order may go to the market.
        reason: a :class:`RiskReason`, ``NONE`` when allowed.
        limit: the configured limit that was hit (for an ``INVALID_*`` length,
            the longest allowed), or None.
        observed: the order's value that hit it; when allowed, the order's
            notional (None when unknown: a market order without a reference).
        reference: the reference price used, when one was found, else None.

    None stands where the C ABI gives NaN (the field does not apply).
    """

    allowed: bool
    reason: Union[RiskReason, int]
    limit: Optional[float]
    observed: Optional[float]
    reference: Optional[float]

    def __bool__(self) -> bool:
        return self.allowed

    @property
    def reason_name(self) -> str:
        """The library's name of the reason (``"price_collar"``, ``"none"``)."""
        return reason_name(self.reason)


class RiskOrder(NamedTuple):
    """One order of a :meth:`RiskChecker.check_many` batch.

    Plain tuples ``(account, instrument, client_order_id, quantity)``, with
    ``limit_price`` and ``side`` optionally following, are accepted too.
    """

    account: Text
    instrument: PriceKey
    client_order_id: Text
    quantity: float
    limit_price: Optional[float] = None  # None (or NaN): a market order
    side: Union[Side, str, int] = Side.BUY


@dataclass(frozen=True, slots=True)
class KillSwitchEvent:
    """A kill switch change, passed to the ``on_kill`` callback.

    ``key`` is the account or instrument as bytes (an int instrument id is
    its 8 little-endian bytes), ``b""`` for the global switch.
    """

    scope: Union[KillScope, int]
    engaged: bool  # False: released
    key: bytes
    now_ns: int


@dataclass(frozen=True, slots=True)
class RiskStats:
    """Counters since creation (read one by one, not as one snapshot).

    ``decisions`` maps every :class:`RiskReason` to how many decisions had
    it (``NONE``: the allowed ones); a reason code this binding does not
    know (from a newer library) appears as an int key when non-zero.
    """

    checked: int
    allowed: int
    rejected: int
    decisions: Mapping[Union[RiskReason, int], int]
    accounts: int  # accounts holding period state (some may have ended)
    duplicate_ids: int  # client order ids remembered (some may have ended)
    killed_accounts: int
    killed_instruments: int
    global_kill: bool


_tuple_new = tuple.__new__
_NAN = math.nan

# tg_risk_decision: allowed i32, reason i32, limit, observed, reference.
# Checked against the compiled layout here.
_DECISION = struct.Struct("=iiddd")
assert ffi.sizeof("tg_risk_decision") == _DECISION.size
assert ffi.offsetof("tg_risk_decision", "limit") == 8
assert ffi.offsetof("tg_risk_decision", "reference") == 24
_DECISION_SIZE = _DECISION.size
_unpack_decision = _DECISION.unpack_from
_iter_decisions = _DECISION.iter_unpack
# Byte of tg_risk_decision.allowed (an int32 of 0 or 1) holding its value.
_ALLOWED_BYTE = 0 if sys.byteorder == "little" else 3
_DECISIONS_SLOTS = 32
assert ffi.sizeof("tg_risk_stats") == 8 * (3 + _DECISIONS_SLOTS + 5)


def _make_decision(fields: Tuple[int, int, float, float, float]) -> RiskDecision:
    allowed, reason, limit, observed, reference = fields
    return _tuple_new(
        RiskDecision,
        (
            allowed == 1,
            _REASONS.get(reason, reason),
            limit if limit == limit else None,
            observed if observed == observed else None,
            reference if reference == reference else None,
        ),
    )


_tls = threading.local()
# Enum members by attribute of the class cost ~50 ns each (Python 3.11),
# and looking a function up on lib costs too: the single check uses these.
_BUY, _SELL = Side.BUY, Side.SELL
_check1, _now = lib.tgpy_risk_check1, lib.tg_now_ns
_new_uncleared = ffi.new_allocator(should_clear_after_alloc=False)


def _decision_out() -> Tuple[Any, Any]:
    """This thread's scratch tg_risk_decision and a buffer over it.

    A check never calls back into Python (only kill switch changes do), so
    one scratch struct per thread is enough and saves an allocation per check.
    """
    out = ffi.new("tg_risk_decision*")
    pair = (out, ffi.buffer(out))
    _tls.decision = pair
    return pair


# -- argument conversion ----------------------------------------------------------


def _text(name: str, value: Any) -> bytes:
    """An account or client order id as bytes (str is UTF-8 encoded)."""
    if type(value) is bytes:
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"{name} must be str or bytes, not {type(value).__name__}")


def _instrument(value: Any) -> bytes:
    """An instrument as the price cache keys it (see PriceCache)."""
    try:
        return encode_key(value)
    except TypeError:
        raise TypeError(
            f"instrument must be str, bytes or int, not {type(value).__name__}"
        ) from None


def _number(name: str, value: Any) -> float:
    """A quantity or price: int or float (any real number), not bool.

    NaN and infinities pass: whether they are valid is the checker's
    decision, not an error.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, not {type(value).__name__}")
    try:
        return float(value)
    except OverflowError:
        raise invalid(f"{name} does not fit in a double: {value!r}") from None


def _price(name: str, value: Any) -> float:
    """A limit price: None is a market order (NaN)."""
    if value is None:
        return _NAN
    return _number(name, value)


_SIDE_CODES: Dict[str, int] = {"buy": lib.TG_SIDE_BUY, "sell": lib.TG_SIDE_SELL}


def _side(name: str, value: Any) -> int:
    """A side: Side, "buy"/"sell" (any case) or 0/1."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a Side, 'buy' or 'sell', not bool")
    if isinstance(value, str):
        code = _SIDE_CODES.get(value.lower())
        if code is None:
            raise invalid(f"{name} must be 'buy' or 'sell', not {value!r}")
        return code
    if not isinstance(value, int):
        raise TypeError(f"{name} must be a Side, 'buy' or 'sell', not {type(value).__name__}")
    if value not in (lib.TG_SIDE_BUY, lib.TG_SIDE_SELL):
        raise invalid(f"{name} must be Side.BUY (0) or Side.SELL (1), not {int(value)}")
    return int(value)


def _enum_option(name: str, value: Any, enum_type: Any) -> int:
    """An enum option given as the enum, its lower-case name or its value
    (an unknown value goes to the library, which refuses it)."""
    if isinstance(value, str):
        member = enum_type.__members__.get(value.upper())
        if member is None:
            names = ", ".join(repr(m.lower()) for m in enum_type.__members__)
            raise invalid(f"{name} must be one of {names}, not {value!r}")
        return int(member)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be a str or {enum_type.__name__}, not {type(value).__name__}")
    return check_uint(name, value, U32_MAX)


def _scope(value: Any) -> int:
    if isinstance(value, str):
        member = KillScope.__members__.get(value.upper())
        if member is None:
            raise invalid(f"scope must be 'global', 'account' or 'instrument', not {value!r}")
        return int(member)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"scope must be a KillScope or str, not {type(value).__name__}")
    if value not in _SCOPES:
        raise invalid(f"scope must be a KillScope (0, 1 or 2), not {int(value)}")
    return int(value)


def _float_option(name: str, value: Any) -> float:
    """A float option, passed as it is (NaN and infinities included: the
    library validates and says why)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, not {type(value).__name__}")
    try:
        return float(value)
    except OverflowError:
        raise invalid(f"{name} does not fit in a double: {value!r}") from None


# -- batches ---------------------------------------------------------------------

_NUMBER_TYPES = frozenset((int, float))
_NUMBER_OR_NONE = frozenset((int, float, type(None)))
_ORDER_TYPES = frozenset((RiskOrder, tuple, list))
_JUST_RISK_ORDER = frozenset((RiskOrder,))  # always 6 fields
_JUST_SIDE = frozenset((Side,))
_WIDTHS = frozenset((4, 5, 6))
_acct, _inst, _coid = itemgetter(0), itemgetter(1), itemgetter(2)
_qty, _px, _sd = itemgetter(3), itemgetter(4), itemgetter(5)


def _full_order(i: int, order: Any) -> Tuple[Any, ...]:
    """A batch entry as a 6-tuple, or a TypeError naming it."""
    if not isinstance(order, (tuple, list)) or not 4 <= len(order) <= 6:
        raise TypeError(
            f"orders[{i}] must be a RiskOrder or a tuple (account, instrument, "
            f"client_order_id, quantity[, limit_price[, side]]), not {order!r}"
        )
    return tuple(order) + (None, Side.BUY)[len(order) - 4 :]


def _batch_text(
    name: str, column: List[Any], convert: Callable[[str, Any], bytes]
) -> Tuple[bytes, "array[int]"]:
    """One string field of every order, end to end, and each one's length."""
    try:
        data = b"".join(column)
        lens = array("I", map(len, column))
        # len() of a memoryview counts items, not bytes: check the total.
        if sum(lens) == len(data):
            return data, lens
    except (TypeError, OverflowError):
        pass
    try:
        column = list(map(str.encode, column))  # all str: the other common case
    except (TypeError, UnicodeError):
        column = list(column)
        for i, v in enumerate(column):
            try:
                column[i] = convert(name, v)
            except TypeError as exc:
                raise TypeError(f"orders[{i}]: {exc}") from None
            except ValueError as exc:  # a negative int id, a lone surrogate
                message = exc.message if isinstance(exc, TollgateError) else str(exc)
                raise invalid(f"orders[{i}]: {message}") from None
    try:
        return b"".join(column), array("I", map(len, column))
    except OverflowError:
        raise invalid(f"an order's {name} is longer than 4 GiB") from None


def _batch_column(
    name: str, values: List[Any], convert: Callable[[str, Any], float]
) -> "array[float]":
    """A double column, converting item by item only when needed (None is
    NaN where ``convert`` takes it: a market order's limit price)."""
    types = set(map(type, values))
    try:
        if types <= _NUMBER_TYPES:
            return array("d", values)
        if convert is _price and types <= _NUMBER_OR_NONE:
            return array("d", [_NAN if v is None else v for v in values])
    except OverflowError:
        pass  # an int too large for a double: said below, with its index
    return array("d", [convert(f"orders[{i}]: {name}", v) for i, v in enumerate(values)])


class RiskBatch(Sequence[RiskDecision]):
    """The decisions of one :meth:`RiskChecker.check_many` call, in order.

    ``allowed`` (one byte per decision, 1 or 0) and ``reasons`` are read from
    the C array in bulk; indexing or iterating gives :class:`RiskDecision`
    objects.
    """

    __slots__ = ("_out", "_n", "_buf")

    def __init__(self, out: Any, n: int) -> None:
        self._out = out
        self._n = n
        self._buf = memoryview(ffi.buffer(out, n * _DECISION_SIZE)) if n else memoryview(b"")

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, index: int) -> RiskDecision: ...

    @overload
    def __getitem__(self, index: slice) -> List[RiskDecision]: ...

    def __getitem__(self, index: Union[int, slice]) -> Union[RiskDecision, List[RiskDecision]]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._n))]
        i = batch_index(index, self._n, "RiskBatch")
        return _make_decision(_unpack_decision(self._buf, i * _DECISION_SIZE))

    def __iter__(self) -> Iterator[RiskDecision]:
        return map(_make_decision, _iter_decisions(self._buf))

    @property
    def allowed(self) -> bytes:
        """One byte per order: 1 allowed, 0 rejected."""
        return bytes(self._buf)[_ALLOWED_BYTE::_DECISION_SIZE]

    @property
    def allowed_count(self) -> int:
        """How many orders were allowed."""
        return self.allowed.count(1)

    @property
    def all_allowed(self) -> bool:
        """Every order was allowed."""
        return self.allowed_count == self._n

    @property
    def reasons(self) -> List[int]:
        """The :class:`RiskReason` code of each order (0 when allowed)."""
        return self._buf.cast("i")[1::8].tolist() if self._n else []

    def __repr__(self) -> str:
        return f"<tollgate.RiskBatch n={self._n} allowed={self.allowed_count}>"


# -- the kill callback ---------------------------------------------------------------

# Checkers with an on_kill callback, by the integer passed to C as `user`.
# Weak references: a callback never keeps a checker alive.
_registry: Dict[int, "weakref.ref[RiskChecker]"] = {}
_next_id = itertools.count(1)


@ffi.def_extern(name="_tollgate_kill_event")  # type: ignore[untyped-decorator]
def _on_kill(user: Any, ev: Any) -> None:
    reg_id = int(ffi.cast("uintptr_t", user))
    ref = _registry.get(reg_id)
    checker = ref() if ref is not None else None
    if checker is None:
        return
    callback = checker._callback
    if callback is None:
        return
    notifying: List[int] = getattr(_tls, "notifying", None) or []
    _tls.notifying = notifying
    notifying.append(reg_id)
    try:
        scope: int = ev.scope
        callback(
            KillSwitchEvent(
                scope=_SCOPES.get(scope, scope),
                engaged=bool(ev.engaged),
                key=ffi.unpack(ev.key, ev.key_len) if ev.key_len else b"",
                now_ns=int(ev.now_ns),
            )
        )
    except BaseException as exc:  # noqa: BLE001 - the C frames above cannot unwind
        box: Optional[List[BaseException]] = getattr(_tls, "callback_errors", None)
        if box is not None:
            # engage or release is waiting in C on this thread: it raises the
            # first exception once the library has returned.
            box.append(exc)
        else:  # no binding call to report to (cannot happen through this module)
            sys.stderr.write("tollgate: exception in a risk checker on_kill callback (ignored):\n")
            traceback.print_exc()
    finally:
        notifying.pop()


def _raise_first(box: List[BaseException]) -> None:
    first = box[0]
    if len(box) > 1 and hasattr(first, "add_note"):
        first.add_note(
            f"tollgate: on_kill raised {len(box)} exceptions during this call; "
            "this is the first, the others were dropped"
        )
    raise first


class RiskChecker:
    """Pre-trade risk checks over an optional :class:`~tollgate.PriceCache`.

    Args:
        prices: where reference prices come from (None: no instrument ever
            has one, so ``on_no_reference`` decides). The checker keeps the
            cache: it may be closed first, the checker still reads it.
        on_no_reference: ``"reject"`` (default) or ``"allow"`` (or a
            :class:`NoReferencePolicy`).
        max_reference_age_ns: a reference older than this is not fresh;
            0: the cache's ``max_age_ns`` alone.
        max_quantity: per order, > 0 (default: no limit).
        max_notional: per order, > 0 (default: no limit).
        collar_unit: ``"percent"`` (default), ``"bps"`` or ``"ticks"`` (or a
            :class:`CollarUnit`).
        collar_width: >= 0, in ``collar_unit`` (default: no collar).
        collar_tick_size: finite, > 0: the tick of ``"ticks"`` collars.
        period_ns: the account period, > 0 (default 1 s).
        account_max_notional: accepted notional per account per period, > 0.
        account_max_orders: accepted orders per account per period, >= 1
            (None: no limit).
        account_capacity: accounts with period state, 1..2**24.
        duplicate_window_ns: how long a client order id is remembered;
            0: no duplicate check.
        duplicate_capacity: ids inside the window, 1..2**26.
        kill_switch_capacity: keys per kill switch scope, 1..2**20.
        seed: key hashing seed; 0 keeps the library's default.
        on_kill: ``on_kill(event)`` for every kill switch change, see
            :meth:`on_kill`.

    Raises:
        InvalidArgumentError: the library rejected an option (``.code`` is
            TG_EINVAL or TG_ERANGE, ``.message`` says which), or ``prices``
            is closed.
    """

    __slots__ = ("_ptr", "_prices", "_callback", "_reg_id", "_c_callback", "__weakref__")

    def __init__(
        self,
        prices: Optional[PriceCache] = None,
        *,
        on_no_reference: Union[str, NoReferencePolicy, int] = "reject",
        max_reference_age_ns: int = 0,
        max_quantity: float = math.inf,
        max_notional: float = math.inf,
        collar_unit: Union[str, CollarUnit, int] = "percent",
        collar_width: float = math.inf,
        collar_tick_size: float = 0.01,
        period_ns: int = 1_000_000_000,
        account_max_notional: float = math.inf,
        account_max_orders: Optional[int] = None,
        account_capacity: int = 4096,
        duplicate_window_ns: int = 60_000_000_000,
        duplicate_capacity: int = 65536,
        kill_switch_capacity: int = 1024,
        seed: int = 0,
        on_kill: Optional[Callable[[KillSwitchEvent], Any]] = None,
    ) -> None:
        self._ptr = NULL
        self._prices: Optional[PriceCache] = None
        self._callback: Optional[Callable[[KillSwitchEvent], Any]] = None
        self._reg_id = 0
        self._c_callback = False
        if prices is not None:
            if not isinstance(prices, PriceCache):
                raise TypeError(f"prices must be a PriceCache or None, not {type(prices).__name__}")
            if prices.closed:
                raise invalid("prices is a closed PriceCache")
        if on_kill is not None and not callable(on_kill):
            raise TypeError("on_kill must be callable or None")
        opts = ffi.new("tg_risk_options*")
        lib.tg_risk_options_init(opts)
        opts.on_no_reference = _enum_option("on_no_reference", on_no_reference, NoReferencePolicy)
        opts.max_reference_age_ns = check_uint(
            "max_reference_age_ns", max_reference_age_ns, U64_MAX)
        opts.max_quantity = _float_option("max_quantity", max_quantity)
        opts.max_notional = _float_option("max_notional", max_notional)
        opts.collar_unit = _enum_option("collar_unit", collar_unit, CollarUnit)
        opts.collar_width = _float_option("collar_width", collar_width)
        opts.collar_tick_size = _float_option("collar_tick_size", collar_tick_size)
        opts.period_ns = check_uint("period_ns", period_ns, U64_MAX)
        opts.account_max_notional = _float_option("account_max_notional", account_max_notional)
        if account_max_orders is not None:
            opts.account_max_orders = check_uint("account_max_orders", account_max_orders, U64_MAX)
        opts.account_capacity = check_uint("account_capacity", account_capacity, U64_MAX)
        opts.duplicate_window_ns = check_uint("duplicate_window_ns", duplicate_window_ns, U64_MAX)
        opts.duplicate_capacity = check_uint("duplicate_capacity", duplicate_capacity, U64_MAX)
        opts.kill_switch_capacity = check_uint(
            "kill_switch_capacity", kill_switch_capacity, U64_MAX)
        opts.seed = check_uint("seed", seed, U64_MAX)
        out = ffi.new("tg_risk_checker**")
        err = ffi.new("tg_error*")
        rc = lib.tg_risk_checker_new(opts, prices._ptr if prices is not None else NULL, out, err)
        if rc:
            raise error_from_struct(rc, err, "tg_risk_checker_new failed")
        self._ptr = ffi.gc(out[0], lib.tg_risk_checker_free)
        # The library holds the cache too; this keeps the Python object (and
        # whatever it references) as long as the checker.
        self._prices = prices
        if on_kill is not None:
            self.on_kill(on_kill)

    # -- lifetime -----------------------------------------------------------

    def close(self) -> None:
        """Release the checker now (idempotent). No call may be in progress.

        Raises:
            StateError: called from this checker's ``on_kill`` callback
                (the change being reported is still in progress).
        """
        ptr = self._ptr
        if ptr == NULL:
            return
        if self._reg_id and self._reg_id in (getattr(_tls, "notifying", None) or ()):
            raise StateError(lib.TG_ESTATE, "on_kill cannot close the checker that called it")
        self._ptr = NULL
        _registry.pop(self._reg_id, None)
        self._callback = None
        ffi.release(ptr)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has been called."""
        return bool(self._ptr == NULL)

    @property
    def prices(self) -> Optional[PriceCache]:
        """The price cache given at creation (perhaps closed since), or None."""
        return self._prices

    def __enter__(self) -> "RiskChecker":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        if self._ptr == NULL:
            return "<tollgate.RiskChecker closed>"
        return f"<tollgate.RiskChecker prices={'yes' if self._prices is not None else 'none'}>"

    def _closed_error(self) -> InvalidArgumentError:
        return invalid("the risk checker is closed")

    # -- checks ---------------------------------------------------------------

    def check(
        self,
        account: Text,
        instrument: PriceKey,
        client_order_id: Text,
        quantity: float,
        limit_price: Optional[float] = None,
        side: Union[Side, str, int] = Side.BUY,
        now_ns: Optional[int] = None,
    ) -> RiskDecision:
        """Decide one order.

        Args:
            account: 1..32 bytes (str is UTF-8 encoded).
            instrument: 1..32 bytes, the price cache's key (str, bytes or
                int id, as :class:`~tollgate.PriceCache` takes them).
            client_order_id: 1..64 bytes.
            quantity: finite and > 0.
            limit_price: finite and > 0; None or NaN: a market order.
            side: ``Side.BUY`` (default), ``Side.SELL``, ``"buy"`` or ``"sell"``.
            now_ns: monotonic time in ns; default ``tg_now_ns()``.

        Returns:
            A :class:`RiskDecision`. A malformed order (bad quantity, price or
            length) is a rejection with an ``INVALID_*`` reason, not an error;
            an accepted order counts toward its account.

        Raises:
            TypeError: an argument of the wrong type (a bool quantity, a None
                account, ...).
            InvalidArgumentError: an unknown side, a negative ``now_ns``, or
                the checker is closed; nothing was counted.
        """
        # The hot single call: every conversion is skipped for the usual
        # types, and the order is built on the C stack (tgpy_risk_check1).
        if type(account) is not bytes:
            account = _text("account", account)
        if type(instrument) is not bytes:
            instrument = _instrument(instrument)
        if type(client_order_id) is not bytes:
            client_order_id = _text("client_order_id", client_order_id)
        t = type(quantity)
        if t is not float and t is not int:
            quantity = _number("quantity", quantity)
        if limit_price is None:
            limit_price = _NAN
        else:
            t = type(limit_price)
            if t is not float and t is not int:
                limit_price = _number("limit_price", limit_price)
        if side is _BUY:
            code = 0
        elif side is _SELL:
            code = 1
        else:
            code = _side("side", side)
        if now_ns is None:
            now_ns = _now()
        try:
            out, buf = _tls.decision
        except AttributeError:
            out, buf = _decision_out()
        try:
            rc = _check1(
                self._ptr, account, len(account), instrument, len(instrument), client_order_id,
                len(client_order_id), code, quantity, limit_price, now_ns, out,
            )
        except (TypeError, OverflowError) as exc:
            raise self._bad_args(exc, quantity, limit_price, now_ns) from None
        if rc:
            if self._ptr == NULL:
                raise self._closed_error()
            raise error_for(rc, "tg_risk_check rejected the call")
        allowed, reason, limit, observed, reference = _unpack_decision(buf)
        # _make_decision, written out: one Python call less per check.
        return _tuple_new(
            RiskDecision,
            (
                allowed == 1,
                _REASONS.get(reason, reason),
                limit if limit == limit else None,
                observed if observed == observed else None,
                reference if reference == reference else None,
            ),
        )

    def _bad_args(self, exc: Exception, quantity: Any, limit_price: Any, now_ns: Any) -> Exception:
        """Explain an argument cffi could not convert."""
        if self._ptr == NULL:
            return self._closed_error()
        try:
            _number("quantity", quantity)
            _number("limit_price", limit_price)
            check_uint("now_ns", now_ns, U64_MAX)
        except (TypeError, ValueError) as explained:
            return explained
        if isinstance(exc, OverflowError):
            return invalid(str(exc))
        return exc

    def check_many(
        self,
        orders: Iterable[Union[RiskOrder, Sequence[Any]]],
        now_ns: Optional[int] = None,
    ) -> RiskBatch:
        """Decide a batch of orders at one ``now_ns``, crossing into C once.

        Orders are decided in order, exactly as the same :meth:`check` calls
        would be (a later order sees the earlier ones accepted: an id
        repeated in the batch is a duplicate, the account's count grows).
        The arguments are converted and validated first: on an exception no
        order was decided.

        Args:
            orders: :class:`RiskOrder` objects or tuples ``(account,
                instrument, client_order_id, quantity[, limit_price[, side]])``.
            now_ns: monotonic time in ns; default ``tg_now_ns()`` (read once).

        Returns:
            A :class:`RiskBatch` of one :class:`RiskDecision` per order.
        """
        if isinstance(orders, (str, bytes, bytearray, memoryview)):
            raise TypeError("orders must be a sequence of RiskOrder or tuples, not a string")
        if type(orders) is not list and type(orders) is not tuple:
            try:
                orders = list(orders)
            except TypeError:
                raise TypeError(
                    f"orders must be a sequence of RiskOrder or tuples, not {type(orders).__name__}"
                ) from None
        seq: Sequence[Any] = orders
        n = len(seq)
        now = check_now(now_ns)
        if n == 0:
            if self._ptr == NULL:
                raise self._closed_error()
            return RiskBatch(NULL, 0)
        # Every order of one width (4, 5 or 6 fields) is read by columns as
        # it is; a batch of mixed widths or of other objects is normalised
        # first (or refused, naming the order).
        types = set(map(type, seq))
        width = 0
        if types == _JUST_RISK_ORDER:
            width = 6
        elif types <= _ORDER_TYPES:
            widths = set(map(len, seq))
            if len(widths) == 1 and widths <= _WIDTHS:
                width = widths.pop()
        if not width:
            seq = [_full_order(i, o) for i, o in enumerate(seq)]
            width = 6
        accounts, account_lens = _batch_text("account", list(map(_acct, seq)), _text)
        instruments, instrument_lens = _batch_text(
            "instrument", list(map(_inst, seq)), lambda _name, v: _instrument(v))
        ids, id_lens = _batch_text("client_order_id", list(map(_coid, seq)), _text)
        quantities = _batch_column("quantity", list(map(_qty, seq)), _number)
        prices: Any = list(map(_px, seq)) if width >= 5 else None
        if prices is None or prices.count(None) == n:
            prices_c = NULL  # all market orders
        else:
            prices_c = ffi.from_buffer("double[]", _batch_column("limit_price", prices, _price))
        sides: Any = list(map(_sd, seq)) if width == 6 else None
        if sides is None:
            sides_c = NULL  # all buy
        elif set(map(type, sides)) == _JUST_SIDE:  # every member is valid as it is
            sides_c = NULL if sides.count(_BUY) == n else ffi.from_buffer(
                "uint32_t[]", array("I", sides))
        else:
            sides = array("I", [_side(f"orders[{i}]: side", s) for i, s in enumerate(sides)])
            sides_c = ffi.from_buffer("uint32_t[]", sides)
        # Neither array needs zeroing: the helper writes every order and, on
        # success, the library every decision.
        scratch = _new_uncleared("tg_risk_order[]", n)
        out = _new_uncleared("tg_risk_decision[]", n)
        rc = lib.tgpy_risk_check_many(
            self._ptr,
            accounts, ffi.from_buffer("uint32_t[]", account_lens),
            instruments, ffi.from_buffer("uint32_t[]", instrument_lens),
            ids, ffi.from_buffer("uint32_t[]", id_lens),
            sides_c, ffi.from_buffer("double[]", quantities), prices_c, n, now, scratch, out,
        )
        if rc:
            if self._ptr == NULL:
                raise self._closed_error()
            raise error_for(rc, "tg_risk_check_many rejected the batch")
        return RiskBatch(out, n)

    # -- kill switches --------------------------------------------------------------

    def _kill_key(self, scope: int, key: Any) -> bytes:
        if scope == KillScope.GLOBAL:
            if key is not None:
                raise invalid("the global kill switch takes no key")
            return b""
        if key is None:
            return b""  # the library refuses it and says why
        if scope == KillScope.INSTRUMENT:
            return _instrument(key)
        return _text("key", key)

    def _set_kill(self, fn: Any, scope: Any, key: Any, now_ns: Optional[int]) -> None:
        code = _scope(scope)
        k = self._kill_key(code, key)
        now = check_now(now_ns)
        err = ffi.new("tg_error*")
        box: List[BaseException] = []
        outer = getattr(_tls, "callback_errors", None)
        _tls.callback_errors = box
        try:
            rc = fn(self._ptr, code, k if k else NULL, len(k), now, err)
        finally:
            _tls.callback_errors = outer
        if box:
            _raise_first(box)
        if rc:
            if self._ptr == NULL:
                raise self._closed_error()
            raise error_from_struct(rc, err, "the library refused the kill switch change")

    def engage(
        self, scope: Union[KillScope, str, int], key: Optional[PriceKey] = None,
        now_ns: Optional[int] = None,
    ) -> None:
        """Engage a kill switch: every check that starts after this returns,
        on any thread, is rejected (``KILL_SWITCH_*``) until it is released.

        Args:
            scope: ``KillScope.GLOBAL`` / ``"global"`` (no key),
                ``"account"`` or ``"instrument"``.
            key: the account or instrument (1..32 bytes; an instrument may be
                an int id, as for the price cache).
            now_ns: the time reported to ``on_kill``; default ``tg_now_ns()``.

        Idempotent: engaging an engaged switch changes nothing and reports
        no event.

        Raises:
            InvalidArgumentError: an unknown scope, a key that is not 1..32
                bytes (or any key for the global switch).
            TollgateError: TG_ENOMEM when the scope already holds
                ``kill_switch_capacity`` keys; nothing was engaged.
            StateError: called from an ``on_kill`` callback (of any checker).
        """
        self._set_kill(lib.tg_risk_kill_engage, scope, key, now_ns)

    def release(
        self, scope: Union[KillScope, str, int], key: Optional[PriceKey] = None,
        now_ns: Optional[int] = None,
    ) -> None:
        """Release a kill switch; releasing one that is not engaged does
        nothing (and reports no event). Same arguments as :meth:`engage`."""
        self._set_kill(lib.tg_risk_kill_release, scope, key, now_ns)

    def engaged(self, scope: Union[KillScope, str, int], key: Optional[PriceKey] = None) -> bool:
        """Whether a kill switch is engaged (lock-free)."""
        code = _scope(scope)
        k = self._kill_key(code, key)
        on = ffi.new("int*")
        rc = lib.tg_risk_kill_engaged(self._ptr, code, k if k else NULL, len(k), on)
        if rc:
            if self._ptr == NULL:
                raise self._closed_error()
            if code != KillScope.GLOBAL and not 1 <= len(k) <= 32:
                raise error_for(rc, "a kill switch key is 1..32 bytes")
            raise error_for(rc, "tg_risk_kill_engaged failed")
        return bool(on[0])

    def on_kill(
        self, callback: Optional[Callable[[KillSwitchEvent], Any]]
    ) -> Optional[Callable[[KillSwitchEvent], Any]]:
        """Call ``callback(event)`` for every kill switch change (None removes it).

        The callback runs on the thread of the :meth:`engage` or
        :meth:`release` that made the change, before that call returns, one
        change at a time in the order they took effect. It may check orders
        and read stats; it must not engage or release any kill switch, of
        this checker or another (that raises :class:`StateError`: a cycle of
        callbacks could otherwise deadlock), nor close its checker.

        An exception raised by the callback cannot unwind through the
        library: the binding keeps the first one and raises it from the
        ``engage``/``release`` call once the library has returned; the change
        has taken effect. Returns ``callback``, so this works as a decorator.
        """
        if callback is not None and not callable(callback):
            raise TypeError("callback must be callable or None")
        if self._ptr == NULL:
            raise self._closed_error()
        if callback is None:
            rc = lib.tg_risk_set_kill_callback(self._ptr, ffi.NULL, ffi.NULL)
            if rc:
                raise error_for(rc, "tg_risk_set_kill_callback failed")
            self._callback = None
            self._c_callback = False
            _registry.pop(self._reg_id, None)
            return None
        self._callback = callback
        if not self._reg_id:
            self._reg_id = next(_next_id)
        reg_id = self._reg_id
        _registry[reg_id] = weakref.ref(self, lambda _ref: _registry.pop(reg_id, None))
        if not self._c_callback:
            # The library keeps every callback it was given until the
            # checker is freed: replacing the Python callable needs no call.
            rc = lib.tg_risk_set_kill_callback(
                self._ptr, lib._tollgate_kill_event, ffi.cast("void*", reg_id)
            )
            if rc:
                self._callback = None
                _registry.pop(reg_id, None)
                raise error_for(rc, "tg_risk_set_kill_callback failed")
            self._c_callback = True
        return callback

    # -- counters -----------------------------------------------------------------

    def stats(self) -> RiskStats:
        """Counters since creation."""
        out = ffi.new("tg_risk_stats*")
        rc = lib.tg_risk_stats_get(self._ptr, out)
        if rc:
            if self._ptr == NULL:
                raise self._closed_error()
            raise error_for(rc, "tg_risk_stats_get failed")
        counts = ffi.unpack(out.decisions, _DECISIONS_SLOTS)
        decisions: Dict[Union[RiskReason, int], int] = {r: counts[r] for r in RiskReason}
        for code, count in enumerate(counts):
            if count and code not in _REASONS:
                decisions[code] = count
        return RiskStats(
            checked=out.checked,
            allowed=out.allowed,
            rejected=out.rejected,
            decisions=decisions,
            accounts=out.accounts,
            duplicate_ids=out.duplicate_ids,
            killed_accounts=out.killed_accounts,
            killed_instruments=out.killed_instruments,
            global_kill=bool(out.global_kill),
        )
