"""Routing (``tg_route_table``, ``tg_router``) and venue sets (``tg_venue_set``).

A :class:`RouteTable` is compiled once from a list of :class:`Rule` and never
changes; :meth:`RouteTable.match` finds the route of a request (method, host,
path, headers). A :class:`Router` holds the current table and replaces it
atomically while other threads keep matching (:meth:`Router.publish`,
read-copy-update). A :class:`VenueSet` chooses the venue a routed request
goes to, skipping venues whose :class:`~tollgate.Breaker` would reject;
:meth:`Router.route` matches and picks in one call.

Precedence, normalisation and the venue strategies are those of the C ABI
(``include/tollgate/tollgate.h``, ``docs/routing.md``):

* the most specific rule wins: host (exact > longer ``*.`` suffix > shorter
  > any), then the path segment by segment (literal > ``{param}`` >
  ``{*rest}`` > the end of a prefix rule), then methods (naming methods >
  any, fewer first), then more header predicates, then higher ``priority``,
  then the earlier rule;
* a request path is matched in one normal form (``?``/``#`` end it, empty
  and ``.`` segments are dropped, ``..`` removes the segment before it,
  ``%XX`` is decoded); ``%2F``, ``%5C``, ``\\``, bad escapes and control
  bytes are refused with a :class:`RouteStatus` instead of a route.

Captured parameters are spans of the path *as the caller passed it*:
:attr:`RouteMatch.params` gives their raw spelling (``"AC%2d1"``), not a
percent-decoded value. A ``str`` path is encoded as UTF-8 and the spans are
byte offsets into that encoding (:attr:`RouteMatch.path`).

Text arguments are ``str`` (encoded as UTF-8) or bytes. Everything here is
thread-safe; ``close()`` must not race with calls on the same object.
"""

from __future__ import annotations

import enum
import itertools
import struct
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import (
    Any,
    Callable,
    Dict,
    Iterable,
    List,
    Optional,
    Sequence,
    Tuple,
    TypeVar,
    Union,
)

from ._lib import (
    NULL,
    U32_MAX,
    U64_MAX,
    Key,
    check_float,
    check_now,
    check_uint,
    coerce_key,
    ffi,
    lib,
)
from .breaker import Breaker
from .errors import (
    InvalidArgumentError,
    TollgateError,
    error_for,
    error_from_struct,
    invalid,
)

__all__ = [
    "HeaderOp",
    "HeaderPredicate",
    "InvalidRouteBuildError",
    "MAX_REQUEST_HEADERS",
    "MAX_ROUTE_PARAMS",
    "PathRefusedError",
    "Request",
    "RouteBuildError",
    "RouteDecision",
    "RouteMatch",
    "RouteStatus",
    "RouteTable",
    "Router",
    "Rule",
    "Venue",
    "VenuePick",
    "VenueReason",
    "VenueSet",
    "VenueStats",
    "VenueStrategy",
    "normalize_path",
]

Text = Union[str, bytes, bytearray, memoryview]
HeadersArg = Union[None, Mapping[Any, Any], Iterable[Tuple[Text, Text]]]

#: Parameters a match can capture (``TG_ROUTE_MAX_PARAMS``).
MAX_ROUTE_PARAMS: int = lib.TG_ROUTE_MAX_PARAMS
#: Headers one request may carry: the C ABI refuses requests with more (it
#: converts them on the stack); the binding checks before calling.
MAX_REQUEST_HEADERS = 128
_NO_VENUE_SET: int = lib.TG_NO_VENUE_SET
_I32_MIN, _I32_MAX = -(2**31), 2**31 - 1
_SIZE_MAX = 2 ** (8 * ffi.sizeof("size_t")) - 1


# -- enumerations -----------------------------------------------------------


class RouteStatus(enum.IntEnum):
    """The outcome of a match (``TG_ROUTE_*``). Only MATCHED is a route."""

    MATCHED = lib.TG_ROUTE_MATCHED
    NO_ROUTE = lib.TG_ROUTE_NO_ROUTE
    METHOD_NOT_ALLOWED = lib.TG_ROUTE_METHOD_NOT_ALLOWED  # HTTP 405
    BAD_ENCODING = lib.TG_ROUTE_BAD_ENCODING  # bad %XX, NUL or control byte
    AMBIGUOUS_SEPARATOR = lib.TG_ROUTE_AMBIGUOUS_SEPARATOR  # %2F, %5C or "\"
    PATH_TOO_LONG = lib.TG_ROUTE_PATH_TOO_LONG  # > 8192 bytes before ? / #
    PATH_NOT_ABSOLUTE = lib.TG_ROUTE_PATH_NOT_ABSOLUTE  # empty, or no leading "/"
    BAD_HOST = lib.TG_ROUTE_BAD_HOST
    PATH_TOO_DEEP = lib.TG_ROUTE_PATH_TOO_DEEP  # > 128 segments once normalised


class HeaderOp(enum.IntEnum):
    """What a :class:`HeaderPredicate` tests (``TG_HEADER_*``)."""

    PRESENT = lib.TG_HEADER_PRESENT  # the header is present (value must be "")
    EXACT = lib.TG_HEADER_EXACT  # some occurrence equals value, byte for byte
    PREFIX = lib.TG_HEADER_PREFIX  # some occurrence starts with value


class VenueStrategy(enum.IntEnum):
    """How a :class:`VenueSet` chooses among eligible venues (``TG_VENUE_*``)."""

    WEIGHTED = lib.TG_VENUE_WEIGHTED
    LEAST_LATENCY = lib.TG_VENUE_LEAST_LATENCY


class VenueReason(enum.IntEnum):
    """Why a pick failed (``TG_VENUE_*``); OK when it did not."""

    OK = lib.TG_VENUE_OK
    ALL_OPEN = lib.TG_VENUE_ALL_OPEN  # every breaker rejects now; see retry_after_ns
    ALL_DOWN = lib.TG_VENUE_ALL_DOWN  # every venue disabled or forced open
    NO_SET = lib.TG_VENUE_NO_SET  # route(): no route, or one without venue set


_ROUTE_STATUSES: Dict[int, RouteStatus] = {int(s): s for s in RouteStatus}
_VENUE_REASONS: Dict[int, VenueReason] = {int(r): r for r in VenueReason}
#: tg_route_status_str of every status, read once.
_STATUS_NAMES: Dict[int, str] = {
    int(s): ffi.string(lib.tg_route_status_str(int(s))).decode("ascii") for s in RouteStatus
}
_HEADER_OPS: Dict[str, HeaderOp] = {o.name.lower(): o for o in HeaderOp}
_STRATEGIES: Dict[str, VenueStrategy] = {s.name.lower(): s for s in VenueStrategy}


def _status_of(code: int) -> Union[RouteStatus, int]:
    return _ROUTE_STATUSES.get(code, code)


# -- errors -------------------------------------------------------------------


class RouteBuildError(TollgateError):
    """A route table could not be compiled.

    Attributes:
        rule_index: the position of the offending rule in the list given to
            :class:`RouteTable`, or None when the error is not about one rule
            (a bad venue set, too many rules).
    """

    rule_index: Optional[int]

    def __init__(self, code: int, message: str = "", rule_index: Optional[int] = None) -> None:
        super().__init__(code, message)
        self.rule_index = rule_index

    def __reduce__(self) -> Tuple[Any, ...]:
        return (type(self), (self.code, self.message, self.rule_index))


class InvalidRouteBuildError(RouteBuildError, InvalidArgumentError):
    """A :class:`RouteBuildError` for TG_EINVAL / TG_ERANGE (also a ValueError)."""


def _build_error(code: int, message: str, rule_index: Optional[int]) -> RouteBuildError:
    if code in (lib.TG_EINVAL, lib.TG_ERANGE):
        return InvalidRouteBuildError(code, message, rule_index)
    return RouteBuildError(code, message, rule_index)


class PathRefusedError(InvalidArgumentError):
    """:func:`normalize_path` refused a path (TG_EINVAL).

    Attributes:
        route_status: the reason, e.g. ``RouteStatus.AMBIGUOUS_SEPARATOR``.
    """

    route_status: Union[RouteStatus, int]

    def __init__(self, code: int, message: str = "", route_status: int = 0) -> None:
        super().__init__(code, message)
        self.route_status = _status_of(int(route_status))

    def __reduce__(self) -> Tuple[Any, ...]:
        return (type(self), (self.code, self.message, int(self.route_status)))


# -- small converters ------------------------------------------------------


def _text(what: str, value: Any) -> bytes:
    """A text argument as bytes: str is UTF-8 (lone surrogates from a
    ``surrogateescape`` decode come back as their bytes)."""
    if type(value) is bytes:
        return value
    if isinstance(value, str):
        try:
            return value.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError as exc:
            raise invalid(f"{what} cannot be encoded as UTF-8: {exc.reason}") from None
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"{what} must be str or bytes, not {type(value).__name__}")


def _no_headers(headers: Any) -> bool:
    """True for None and empty lists, tuples and dicts (other falsy values
    go through the full check, which refuses them)."""
    return headers is None or (type(headers) in (list, tuple, dict) and not headers)


def _method_bytes(method: Any) -> bytes:
    """A request method as bytes; None is refused as in the packed path."""
    if method is None:
        raise TypeError("method must be str or bytes, not None")
    return _text("method", method)


def _cstr(what: str, value: Any, keep: List[Any]) -> Any:
    """A NUL-terminated copy of a str for a ``const char*`` field."""
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, not {type(value).__name__}")
    data = value.encode("utf-8", "surrogateescape") if value else b""
    if b"\0" in data:
        raise ValueError(f"{what} must not contain NUL")
    c = ffi.new("char[]", data)
    keep.append(c)
    return c


def _flag(what: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise TypeError(f"{what} must be a bool, not {type(value).__name__} ({value!r})")


def _int_in(what: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    if not low <= value <= high:
        raise invalid(f"{what} must be in [{low}, {high}], got {value}")
    return int(value)


# -- rules ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HeaderPredicate:
    """A condition on a request header, matched case-insensitively by name.

    Args:
        name: the header name (an HTTP token).
        value: for ``"exact"`` / ``"prefix"``: compared byte for byte with
            each occurrence; must be ``""`` for ``"present"``.
        op: ``"present"``, ``"exact"`` or ``"prefix"`` (or a :class:`HeaderOp`).
        invert: the rule needs the predicate to be false: no occurrence of
            the header satisfies it (a decoy duplicate cannot make it hold).
    """

    name: str
    value: str = ""
    op: Union[str, HeaderOp, int] = "present"
    invert: bool = False


@dataclass(frozen=True, slots=True)
class Rule:
    """One route of a :class:`RouteTable`.

    Args:
        route_id: the host's id for the route (0 .. 2**32-1), reported by a match.
        path: the pattern: ``"/"``-separated literals, ``{name}`` (one
            segment) and, last, ``{*name}`` (one or more segments).
        methods: HTTP methods (case-sensitive tokens); empty means any.
        host: ``""`` (any), ``"api.example.com"`` (exact, case-insensitive)
            or ``"*.example.com"`` (any name below example.com).
        prefix: match the pattern and everything below it, segment-aligned
            (``"/api"`` matches ``"/api/x"``, never ``"/apix"``).
        headers: :class:`HeaderPredicate` conditions, all of which must hold.
        priority: breaks ties between equally specific rules; higher wins.
        target: the host's upstream id, reported by a match.
        venue_set: index into the table's ``venue_sets``, or None.
    """

    route_id: int
    path: str
    methods: Sequence[str] = ()
    host: str = ""
    prefix: bool = False
    headers: Sequence[HeaderPredicate] = ()
    priority: int = 0
    target: int = 0
    venue_set: Optional[int] = None


def _rule_invalid(i: int, message: str) -> InvalidRouteBuildError:
    return InvalidRouteBuildError(lib.TG_EINVAL, f"rule {i}: {message}", i)


def _header_op(i: int, k: int, op: Any) -> int:
    if isinstance(op, str):
        found = _HEADER_OPS.get(op.lower())
        if found is None:
            raise _rule_invalid(
                i, f"headers[{k}].op must be 'present', 'exact' or 'prefix', not {op!r}"
            )
        return int(found)
    if isinstance(op, bool) or not isinstance(op, int):
        raise TypeError(f"rule {i}: headers[{k}].op must be a str or HeaderOp, not {type(op).__name__}")
    if not _I32_MIN <= op <= _I32_MAX:
        raise _rule_invalid(i, f"headers[{k}].op {op} is not a header op")
    return int(op)


def _fill_rule(i: int, r: Any, c: Any, keep: List[Any]) -> None:
    """Copy Rule ``r`` into the (initialised) tg_route_rule ``c``."""
    if not isinstance(r, Rule):
        raise TypeError(f"rules[{i}] must be a Rule, not {type(r).__name__}")
    where = f"rule {i}"
    try:
        c.route_id = _int_in(f"{where}: route_id", r.route_id, 0, U32_MAX)
        c.target = _int_in(f"{where}: target", r.target, 0, U32_MAX)
        c.priority = _int_in(f"{where}: priority", r.priority, _I32_MIN, _I32_MAX)
        if r.venue_set is not None:
            c.venue_set = _int_in(f"{where}: venue_set", r.venue_set, 0, U32_MAX - 1)
    except InvalidArgumentError as exc:
        raise InvalidRouteBuildError(exc.code, exc.message, i) from None
    c.path_kind = lib.TG_PATH_PREFIX if _flag(f"{where}: prefix", r.prefix) else lib.TG_PATH_EXACT
    try:
        c.path = _cstr(f"{where}: path", r.path, keep)
        if r.host:
            c.host = _cstr(f"{where}: host", r.host, keep)
        elif not isinstance(r.host, str):
            raise TypeError(f"{where}: host must be a str, not {type(r.host).__name__}")
    except ValueError as exc:
        raise _rule_invalid(i, str(exc).split(": ", 1)[-1]) from None
    methods = r.methods
    if isinstance(methods, (str, bytes, bytearray)):
        raise TypeError(
            f"{where}: methods must be a sequence of str such as ('GET', 'POST'), "
            f"not a single {type(methods).__name__}"
        )
    if methods is None:
        raise TypeError(f"{where}: methods must be a sequence of str (empty for any), not None")
    names: List[str] = []
    for m in methods:
        if not isinstance(m, str):
            raise TypeError(f"{where}: a method must be a str, not {type(m).__name__}")
        # The C field is one comma-separated string: refuse what would not
        # survive the trip (an empty method would even read as "any").
        if not m or "," in m or "\0" in m or m != m.strip(" "):
            raise _rule_invalid(i, f"method {m!r} is not a 1..32 character token")
        names.append(m)
    if names:
        c.methods = _cstr(f"{where}: methods", ",".join(names), keep)
    headers = r.headers
    if headers is None or isinstance(headers, (str, bytes, Mapping)):
        raise TypeError(f"{where}: headers must be a sequence of HeaderPredicate")
    preds = list(headers)
    if preds:
        c_preds = ffi.new("tg_header_predicate[]", len(preds))
        keep.append(c_preds)
        for k, hp in enumerate(preds):
            if isinstance(hp, tuple) and not isinstance(hp, HeaderPredicate):
                hp = HeaderPredicate(*hp)
            if not isinstance(hp, HeaderPredicate):
                raise TypeError(
                    f"{where}: headers[{k}] must be a HeaderPredicate, not {type(hp).__name__}"
                )
            try:
                c_preds[k].name = _cstr(f"headers[{k}].name", hp.name, keep)
                value = "" if hp.value is None else hp.value
                c_preds[k].value = _cstr(f"headers[{k}].value", value, keep)
            except ValueError as exc:
                raise _rule_invalid(i, str(exc)) from None
            except TypeError as exc:
                raise TypeError(f"{where}: {exc}") from None
            c_preds[k].op = _header_op(i, k, hp.op)
            c_preds[k].invert = 1 if _flag(f"{where}: headers[{k}].invert", hp.invert) else 0
        c.headers = c_preds
        c.header_count = len(preds)


# -- requests -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Request:
    """A request for :meth:`RouteTable.match_many` / :meth:`Router.match_many`.

    ``headers`` is a mapping or a sequence of (name, value) pairs (use pairs
    for repeated headers); ``host`` may carry ``":port"``.
    """

    path: Text
    method: Text = "GET"
    host: Optional[Text] = ""
    headers: HeadersArg = None


def _header_pairs(headers: Any) -> List[Tuple[bytes, bytes]]:
    if headers is None:
        return []
    if isinstance(headers, Mapping):
        items: Iterable[Any] = headers.items()
    elif isinstance(headers, (str, bytes, bytearray, memoryview)):
        raise TypeError("headers must be a mapping or a sequence of (name, value) pairs")
    else:
        try:
            items = iter(headers)
        except TypeError:
            raise TypeError(
                f"headers must be a mapping or a sequence of (name, value) pairs, "
                f"not {type(headers).__name__}"
            ) from None
    out: List[Tuple[bytes, bytes]] = []
    for k, item in enumerate(items):
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise TypeError(f"headers[{k}] must be a (name, value) pair")
        out.append((_text(f"headers[{k}] name", item[0]), _text(f"headers[{k}] value", item[1])))
    if len(out) > MAX_REQUEST_HEADERS:
        raise invalid(f"a request carries at most {MAX_REQUEST_HEADERS} headers, got {len(out)}")
    return out


class _Packed:
    """Requests laid out for one C call: every string in one buffer, the
    tg_route_request array and one tg_header array pointing into it. Holds
    the buffers alive as long as it is referenced."""

    __slots__ = ("reqs", "paths", "n", "_keep")

    def __init__(self, requests: List[Tuple[Any, Any, Any, Any]]) -> None:
        chunks: List[bytes] = []
        size = 0
        spans: List[Tuple[int, int, int, int, int, int, List[Tuple[int, int, int, int]]]] = []
        paths: List[bytes] = []
        header_total = 0
        for j, (path, method, host, headers) in enumerate(requests):
            at = f"request {j}: " if len(requests) > 1 else ""
            p = _text(at + "path", path)
            if method is None:
                raise TypeError(at + "method must be str or bytes, not None")
            m = _text(at + "method", method)
            h = b"" if host is None else _text(at + "host", host)
            pairs = _header_pairs(headers)
            hdr: List[Tuple[int, int, int, int]] = []
            offs = []
            for piece in (m, h, p):
                offs.append(size)
                chunks.append(piece)
                size += len(piece)
            for name, value in pairs:
                hdr.append((size, len(name), size + len(name), len(value)))
                chunks.append(name)
                chunks.append(value)
                size += len(name) + len(value)
            header_total += len(hdr)
            spans.append((offs[0], len(m), offs[1], len(h), offs[2], len(p), hdr))
            paths.append(p)
        data = b"".join(chunks)
        base = ffi.from_buffer("char[]", data)
        n = len(requests)
        reqs = ffi.new("tg_route_request[]", n)
        c_headers = ffi.new("tg_header[]", header_total) if header_total else NULL
        k = 0
        for j, (mo, ml, ho, hl, po, pl, hdr) in enumerate(spans):
            r = reqs[j]
            r.method = base + mo
            r.method_len = ml
            r.host = base + ho
            r.host_len = hl
            r.path = base + po
            r.path_len = pl
            if hdr:
                r.headers = c_headers + k
                r.header_count = len(hdr)
                for no, nl, vo, vl in hdr:
                    ch = c_headers[k]
                    ch.name = base + no
                    ch.name_len = nl
                    ch.value = base + vo
                    ch.value_len = vl
                    k += 1
        self.reqs = reqs
        self.paths = paths
        self.n = n
        self._keep = (data, base, c_headers)


def _one(path: Any, method: Any, host: Any, headers: Any) -> _Packed:
    return _Packed([(path, method, host, headers)])


def _many(requests: Any) -> _Packed:
    if isinstance(requests, (str, bytes, bytearray, memoryview, Request)):
        raise TypeError("requests must be a sequence of requests, not a single request")
    try:
        items = list(requests)
    except TypeError:
        raise TypeError(
            f"requests must be a sequence of Request or tuples, not {type(requests).__name__}"
        ) from None
    rows: List[Tuple[Any, Any, Any, Any]] = []
    for j, q in enumerate(items):
        if isinstance(q, Request):
            rows.append((q.path, q.method, q.host, q.headers))
        elif isinstance(q, (str, bytes, bytearray, memoryview)):
            rows.append((q, "GET", "", None))
        elif isinstance(q, tuple) and 1 <= len(q) <= 4:
            path, method, host, headers = (tuple(q) + ("GET", "", None)[len(q) - 1 :])[:4]
            rows.append((path, method, host, headers))
        else:
            raise TypeError(
                f"requests[{j}] must be a Request, a path or a tuple "
                f"(path[, method[, host[, headers]]]), not {type(q).__name__}"
            )
    return _Packed(rows)


# -- matches ----------------------------------------------------------------

# tg_route_match: status i32, rule_index, route_id, target, venue_set,
# param_count (u32), then 16 x (offset u32, length u32).
_MATCH = struct.Struct("=iIIIII%dI" % (2 * MAX_ROUTE_PARAMS))
assert ffi.sizeof("tg_route_match") == _MATCH.size
assert ffi.offsetof("tg_route_match", "params") == 24
# tg_venue_pick: ok i32, reason i32, index, venue_id, alternative, reserved
# (u32), eligible u64, retry_after_ns u64.
_PICK = struct.Struct("=iiIIIIQQ")
assert ffi.sizeof("tg_venue_pick") == _PICK.size
assert ffi.offsetof("tg_venue_pick", "eligible") == 24
assert ffi.offsetof("tg_route_decision", "venue") == _MATCH.size
_MATCHED = RouteStatus.MATCHED

_tls = threading.local()


def _scratch(kind: str) -> Tuple[Any, Any]:
    """This thread's scratch output struct of ``kind`` and a buffer over it.

    Matching never calls back into Python, so one per thread is enough.
    """
    try:
        pair: Tuple[Any, Any] = getattr(_tls, kind)
        return pair
    except AttributeError:
        out = ffi.new(kind + "*")
        pair = (out, ffi.buffer(out))
        setattr(_tls, kind, pair)
        return pair


class RouteMatch:
    """The outcome of matching one request.

    Attributes:
        status: a :class:`RouteStatus` (an IntEnum: ``.name`` and int value).
        rule_index: position of the matched rule in the table's rule list.
        route_id, target: the matched rule's ids.
        venue_set: the rule's venue set index, None when it names none.
        spans: the captured parameters as (offset, length) byte spans of
            :attr:`path`, in pattern order, ``{*rest}`` last.
        param_names: the names of those parameters.
        path: the request path as bytes, as passed (the spans index it).

    ``rule_index``, ``route_id`` and ``target`` are None unless
    :attr:`ok`. ``bool(match)`` is :attr:`ok`.
    """

    __slots__ = (
        "status", "rule_index", "route_id", "target", "venue_set", "spans", "param_names",
        "path", "_params",
    )

    status: Union[RouteStatus, int]
    rule_index: Optional[int]
    route_id: Optional[int]
    target: Optional[int]
    venue_set: Optional[int]
    spans: Tuple[Tuple[int, int], ...]
    param_names: Tuple[str, ...]
    path: bytes
    _params: Optional[Dict[str, str]]

    def __init__(self) -> None:
        raise TypeError("RouteMatch objects come from match() calls")

    @property
    def ok(self) -> bool:
        """A rule matched."""
        return self.status == _MATCHED

    def __bool__(self) -> bool:
        return self.status == _MATCHED

    @property
    def code(self) -> int:
        """The ``TG_ROUTE_*`` value of :attr:`status`."""
        return int(self.status)

    @property
    def status_name(self) -> str:
        """The library's name of the status (``tg_route_status_str``), e.g. ``"no_route"``."""
        return _STATUS_NAMES.get(int(self.status), "unknown")

    @property
    def param_bytes(self) -> Dict[str, bytes]:
        """Parameter name -> the raw bytes of its span of :attr:`path`."""
        p = self.path
        return {n: p[o : o + ln] for n, (o, ln) in zip(self.param_names, self.spans)}

    @property
    def params(self) -> Dict[str, str]:
        """Parameter name -> its raw spelling in the path, as text.

        Raw: ``"/accounts/AC%2d1"`` captures ``"AC%2d1"``, not ``"AC-1"``;
        decode with ``urllib.parse.unquote`` if you need the value. Bytes
        that are not UTF-8 come back as ``surrogateescape`` code points.
        """
        cached = self._params
        if cached is None:
            p = self.path
            cached = {
                n: p[o : o + ln].decode("utf-8", "surrogateescape")
                for n, (o, ln) in zip(self.param_names, self.spans)
            }
            self._params = cached
        return dict(cached)

    def __eq__(self, other: object) -> bool:
        if type(other) is not RouteMatch:
            return NotImplemented
        return all(getattr(self, a) == getattr(other, a) for a in RouteMatch.__slots__[:-1])

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        name = getattr(self.status, "name", self.status)
        if not self.ok:
            return f"RouteMatch(status={name})"
        return (
            f"RouteMatch(status={name}, route_id={self.route_id}, target={self.target}, "
            f"venue_set={self.venue_set}, rule_index={self.rule_index}, params={self.params!r})"
        )


_object_new = object.__new__


def _make_match(fields: Tuple[int, ...], path: bytes, table: Optional["RouteTable"]) -> RouteMatch:
    m = _object_new(RouteMatch)
    status = fields[0]
    m.path = path
    m._params = None
    if status != 0:
        m.status = _ROUTE_STATUSES.get(status, status)
        m.rule_index = m.route_id = m.target = m.venue_set = None
        m.spans = ()
        m.param_names = ()
        return m
    m.status = _MATCHED
    m.rule_index = rule = fields[1]
    m.route_id = fields[2]
    m.target = fields[3]
    vs = fields[4]
    m.venue_set = None if vs == _NO_VENUE_SET else vs
    count = fields[5]
    if count:
        m.spans = tuple(zip(fields[6 : 6 + 2 * count : 2], fields[7 : 7 + 2 * count : 2]))
        m.param_names = table._names(rule, count) if table is not None else ()
    else:
        m.spans = ()
        m.param_names = ()
    return m


# -- venue sets ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Venue:
    """A venue of a :class:`VenueSet`.

    Args:
        venue_id: the host's id, unique in the set (sticky picks hash it).
        weight: 1 .. 1000000; picks are in proportion to it.
        breaker: the :class:`~tollgate.Breaker` guarding the venue, or None.
            While it would reject a call the venue is not eligible. The set
            shares the breaker (closing the Breaker object later is safe).
    """

    venue_id: int
    weight: int = 1
    breaker: Optional[Breaker] = None


@dataclass(frozen=True, slots=True)
class VenuePick:
    """The outcome of a pick.

    Attributes:
        ok: a venue was chosen.
        reason: ``VenueReason.OK``, or why none was (ALL_OPEN / ALL_DOWN).
        index: the venue's position in the set (None unless ok).
        venue_id: its id (None unless ok).
        alternative: least-latency: the other candidate; else == index.
        eligible: bit i set: venue i was eligible. Journal it with ``nonce``
            (and the key) to replay the pick with :meth:`VenueSet.choose`.
        retry_after_ns: when not ok: until some breaker admits again
            (``RETRY_NEVER`` if none will); 0 when ok.
        nonce: the nonce the pick used.
    """

    ok: bool
    reason: Union[VenueReason, int]
    index: Optional[int]
    venue_id: Optional[int]
    alternative: Optional[int]
    eligible: int
    retry_after_ns: int
    nonce: int

    def __bool__(self) -> bool:
        return self.ok

    @property
    def reason_name(self) -> str:
        """The reason's name in lower case (``"all_open"``)."""
        return getattr(self.reason, "name", str(self.reason)).lower()

    @property
    def eligible_indices(self) -> List[int]:
        """The indices of the eligible venues."""
        e = self.eligible
        return [i for i in range(64) if e >> i & 1]


def _make_pick(fields: Tuple[int, ...], nonce: int) -> VenuePick:
    ok, reason, index, venue_id, alternative, _, eligible, retry = fields
    good = ok == 1
    return VenuePick(
        good,
        _VENUE_REASONS.get(reason, reason),
        index if good else None,
        venue_id if good else None,
        alternative if good else None,
        eligible,
        retry,
        nonce,
    )


@dataclass(frozen=True, slots=True)
class VenueStats:
    """The state of one venue of a set.

    ``ready_in_ns``: until its breaker would admit (0 now, ``RETRY_NEVER``
    never); ``latency_ewma_ns`` is None before the first sample.
    """

    venue_id: int
    weight: int
    enabled: bool
    ready_in_ns: int
    latency_ewma_ns: Optional[float]
    latency_samples: int


class VenueSet:
    """Up to 64 venues, each with a weight and optionally a breaker.

    A venue is eligible when it is enabled and its breaker (if any) would
    admit a call now; an open breaker whose open period has ended is
    eligible, so it receives the probes that can close it.

    Args:
        venues: 1..64 :class:`Venue` (unique ``venue_id``).
        strategy: ``"weighted"`` (one eligible venue at random in proportion
            to its weight) or ``"least_latency"`` (two drawn that way, the
            lower latency estimate wins; no sample yet counts as 0 ns).
        sticky: picks with a non-empty key use weighted rendezvous hashing
            on (seed, key, venue id): a key keeps its venue while that venue
            is eligible, and only the keys of a venue that leaves move.
        seed: seeds every random choice.
        latency_alpha: EWMA weight of the newest latency sample, in (0, 1].
        latency_decay_ns: idle time constant of the latency estimate: it
            decays as e^(-idle / latency_decay_ns) while a venue gets no
            samples, so a venue that was slow is tried again instead of
            being starved (with two venues both are always compared).
            0: no decay. Default 10 s.

    "At random" is a hash of (seed, nonce): a pick is a pure function of the
    seed, the nonce, the key, the eligible set and (least-latency) the EWMAs.
    :meth:`pick` without a nonce takes the next value of a counter of this
    set (0, 1, 2, ...); pass your own (an order sequence number) to be able
    to replay a journalled pick with :meth:`choose`.

    Raises:
        TollgateError: the library rejected the configuration.
    """

    __slots__ = ("_ptr", "_venues", "_strategy", "_sticky", "_seed", "_nonces", "__weakref__")

    def __init__(
        self,
        venues: Sequence[Venue],
        strategy: Union[str, VenueStrategy, int] = "weighted",
        sticky: bool = False,
        seed: int = 0,
        latency_alpha: float = 0.2,
        latency_decay_ns: int = 10_000_000_000,
    ) -> None:
        self._ptr = NULL
        if venues is None or isinstance(venues, (str, bytes, Venue)):
            raise TypeError("venues must be a sequence of Venue")
        venue_list = tuple(venues)
        opts = ffi.new("tg_venue_set_options*")
        lib.tg_venue_set_options_init(opts)
        opts.strategy = self._strategy_value(strategy)
        opts.sticky = 1 if _flag("sticky", sticky) else 0
        opts.seed = check_uint("seed", seed, U64_MAX)
        opts.latency_alpha = check_float("latency_alpha", latency_alpha)
        opts.latency_decay_ns = check_uint("latency_decay_ns", latency_decay_ns, U64_MAX)
        c_venues = ffi.new("tg_venue[]", max(1, len(venue_list)))
        for i, v in enumerate(venue_list):
            if not isinstance(v, Venue):
                raise TypeError(f"venues[{i}] must be a Venue, not {type(v).__name__}")
            c_venues[i].venue_id = check_uint(f"venues[{i}].venue_id", v.venue_id, U32_MAX)
            c_venues[i].weight = check_uint(f"venues[{i}].weight", v.weight, U32_MAX)
            if v.breaker is not None:
                if not isinstance(v.breaker, Breaker):
                    raise TypeError(
                        f"venues[{i}].breaker must be a tollgate.Breaker, "
                        f"not {type(v.breaker).__name__}"
                    )
                if v.breaker.closed:
                    raise invalid(f"venues[{i}].breaker is closed")
                c_venues[i].breaker = v.breaker._ptr
        opts.venues = c_venues
        opts.venue_count = len(venue_list)
        out = ffi.new("tg_venue_set**")
        err = ffi.new("tg_error*")
        rc = lib.tg_venue_set_new(opts, out, err)
        if rc:
            raise error_from_struct(rc, err, "tg_venue_set_new failed")
        self._ptr = ffi.gc(out[0], lib.tg_venue_set_free)
        # The library holds a reference on every breaker; keeping the Python
        # objects as well means their handles outlive this set's users and a
        # Breaker's own finaliser never runs while the set is reachable.
        self._venues = venue_list
        self._strategy = VenueStrategy(opts.strategy)  # valid: the library accepted it
        self._sticky = bool(opts.sticky)
        self._seed = int(opts.seed)
        self._nonces = itertools.count()

    @staticmethod
    def _strategy_value(value: Any) -> int:
        if isinstance(value, str):
            found = _STRATEGIES.get(value.lower())
            if found is None:
                raise invalid(f"strategy must be 'weighted' or 'least_latency', not {value!r}")
            return int(found)
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(
                f"strategy must be 'weighted' or 'least_latency', not {type(value).__name__}"
            )
        return check_uint("strategy", value, U32_MAX)  # the library validates the value

    # -- lifetime -------------------------------------------------------

    def close(self) -> None:
        """Release the caller's reference (idempotent). Route tables using
        the set keep it working. No call may be in progress on this object."""
        ptr = self._ptr
        if ptr != NULL:
            self._ptr = NULL
            ffi.release(ptr)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has been called."""
        return bool(self._ptr == NULL)

    def __enter__(self) -> "VenueSet":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        if self._ptr == NULL:
            return "<tollgate.VenueSet closed>"
        ids = ", ".join(str(v.venue_id) for v in self._venues)
        sticky = " sticky" if self._sticky else ""
        return f"<tollgate.VenueSet {self._strategy.name.lower()}{sticky} venues=[{ids}]>"

    def _failure(self, rc: int, what: str) -> TollgateError:
        if self._ptr == NULL:
            return invalid("the venue set is closed")
        return error_for(rc, what)

    def _index(self, index: Any) -> int:
        i = check_uint("index", index, U32_MAX)
        return i

    # -- properties -----------------------------------------------------

    @property
    def venues(self) -> Tuple[Venue, ...]:
        """The venues given at construction."""
        return self._venues

    @property
    def strategy(self) -> VenueStrategy:
        return self._strategy

    @property
    def sticky(self) -> bool:
        return self._sticky

    @property
    def seed(self) -> int:
        return self._seed

    def __len__(self) -> int:
        out = ffi.new("uint32_t*")
        rc = lib.tg_venue_set_size(self._ptr, out)
        if rc:
            raise self._failure(rc, "tg_venue_set_size failed")
        return int(out[0])

    def index_of(self, venue_id: int) -> int:
        """The index of the venue with ``venue_id`` (ValueError if none)."""
        for i, v in enumerate(self._venues):
            if v.venue_id == venue_id:
                return i
        raise ValueError(f"no venue with id {venue_id!r}")

    # -- picks ----------------------------------------------------------

    def pick(
        self, key: Key = b"", nonce: Optional[int] = None, now_ns: Optional[int] = None
    ) -> VenuePick:
        """Pick a venue for a request.

        Args:
            key: makes the pick sticky when the set is (bytes, or str as
                UTF-8); empty: no stickiness.
            nonce: the randomness of the pick (an order sequence number).
                Default: the next value of this set's counter; the pick
                reports the nonce it used.
            now_ns: the time at which breakers are asked; default ``tg_now_ns()``.
        """
        k = key if type(key) is bytes else coerce_key(key)
        n = next(self._nonces) if nonce is None else check_uint("nonce", nonce, U64_MAX)
        now = check_now(now_ns)
        out, buf = _scratch("tg_venue_pick")
        rc = lib.tg_venue_set_pick(self._ptr, k, len(k), n, now, out)
        if rc:
            raise self._failure(rc, "tg_venue_set_pick failed")
        return _make_pick(_PICK.unpack_from(buf), n)

    def choose(self, key: Key, nonce: int, eligible: int) -> VenuePick:
        """Replay: the venue that ``key`` and ``nonce`` get among the venues
        in the ``eligible`` mask (bits beyond the set's size are ignored).

        With the ``eligible`` mask a pick reported, this gives the same
        venue whatever the breakers' state now (least-latency: the same
        EWMAs are needed too).
        """
        k = key if type(key) is bytes else coerce_key(key)
        n = check_uint("nonce", nonce, U64_MAX)
        mask = check_uint("eligible", eligible, U64_MAX)
        out, buf = _scratch("tg_venue_pick")
        rc = lib.tg_venue_set_choose(self._ptr, k, len(k), n, mask, out)
        if rc:
            raise self._failure(rc, "tg_venue_set_choose failed")
        return _make_pick(_PICK.unpack_from(buf), n)

    def record_latency(self, index: int, latency_ns: int, now_ns: Optional[int] = None) -> None:
        """Feed one completion latency of venue ``index``, observed at
        ``now_ns`` (default ``tg_now_ns()``), into its estimate: the EWMA
        decayed to ``now_ns``, plus ``latency_alpha`` times the difference."""
        i = self._index(index)
        ns = check_uint("latency_ns", latency_ns, U64_MAX)
        now = check_now(now_ns)
        rc = lib.tg_venue_set_record_latency(self._ptr, i, ns, now)
        if rc:
            raise self._failure(rc, f"venue index {i} is out of range")

    def set_enabled(self, index: int, on: bool) -> None:
        """Take venue ``index`` out of selection (False) or put it back."""
        i = self._index(index)
        flag = 1 if _flag("on", on) else 0
        rc = lib.tg_venue_set_set_enabled(self._ptr, i, flag)
        if rc:
            raise self._failure(rc, f"venue index {i} is out of range")

    def stats(self, index: int, now_ns: Optional[int] = None) -> VenueStats:
        """The state of venue ``index`` at ``now_ns``."""
        i = self._index(index)
        now = check_now(now_ns)
        out = ffi.new("tg_venue_stats*")
        rc = lib.tg_venue_set_stats(self._ptr, i, now, out)
        if rc:
            raise self._failure(rc, f"venue index {i} is out of range")
        ewma = float(out.latency_ewma_ns)
        return VenueStats(
            venue_id=int(out.venue_id),
            weight=int(out.weight),
            enabled=out.enabled == 1,
            ready_in_ns=int(out.ready_in_ns),
            latency_ewma_ns=None if ewma < 0 else ewma,
            latency_samples=int(out.latency_samples),
        )


# -- route tables -------------------------------------------------------------


class RouteTable:
    """An immutable, compiled set of :class:`Rule`.

    Args:
        rules: the rules (up to 1048576); their positions are the
            ``rule_index`` that matches and build errors report.
        venue_sets: the :class:`VenueSet` objects that rules name by index.

    Raises:
        RouteBuildError: the library rejected the rules (``.code``,
            ``.message``, and ``.rule_index``: which rule, or None);
            malformed patterns, bad hosts, methods or header names,
            duplicate rules and venue set indices out of range all are.
        TypeError: an argument of the wrong Python type.
    """

    __slots__ = ("_ptr", "_rules", "_venue_sets", "_name_cache", "__weakref__")

    def __init__(self, rules: Iterable[Rule], venue_sets: Sequence[VenueSet] = ()) -> None:
        self._ptr = NULL
        if rules is None or isinstance(rules, (str, bytes, Rule)):
            raise TypeError("rules must be a sequence of Rule")
        rule_list = tuple(rules)
        if venue_sets is None or isinstance(venue_sets, (str, bytes, VenueSet)):
            raise TypeError("venue_sets must be a sequence of VenueSet")
        set_list = tuple(venue_sets)
        keep: List[Any] = []
        opts = ffi.new("tg_route_table_options*")
        lib.tg_route_table_options_init(opts)
        if set_list:
            c_sets = ffi.new("tg_venue_set*[]", len(set_list))
            for s, vs in enumerate(set_list):
                if not isinstance(vs, VenueSet):
                    raise TypeError(f"venue_sets[{s}] must be a VenueSet, not {type(vs).__name__}")
                if vs.closed:
                    raise _build_error(lib.TG_EINVAL, f"venue_sets[{s}] is closed", None)
                c_sets[s] = vs._ptr
            opts.venue_sets = c_sets
            opts.venue_set_count = len(set_list)
            keep.append(c_sets)
        n = len(rule_list)
        c_rules = ffi.new("tg_route_rule[]", max(1, n))
        for i, r in enumerate(rule_list):
            lib.tg_route_rule_init(c_rules + i)
            _fill_rule(i, r, c_rules[i], keep)
        if n:
            opts.rules = c_rules
        opts.rule_count = n
        out = ffi.new("tg_route_table**")
        bad = ffi.new("size_t*")
        err = ffi.new("tg_error*")
        rc = lib.tg_route_table_new(opts, out, bad, err)
        if rc:
            message = ffi.string(err.message).decode("utf-8", "replace") if err.code == rc else ""
            index = None if bad[0] == _SIZE_MAX else int(bad[0])
            raise _build_error(rc, message or "tg_route_table_new failed", index)
        self._ptr = ffi.gc(out[0], lib.tg_route_table_free)
        self._rules = rule_list
        self._venue_sets = set_list
        self._name_cache: Dict[int, Tuple[str, ...]] = {}

    @classmethod
    def _wrap(cls, handle: Any, like: Optional["RouteTable"]) -> "RouteTable":
        """A table object owning ``handle`` (a new reference to the same
        compiled table as ``like``, or to an empty one when ``like`` is None)."""
        self = cls.__new__(cls)
        self._ptr = ffi.gc(handle, lib.tg_route_table_free)
        if like is None:
            self._rules = ()
            self._venue_sets = ()
            self._name_cache = {}
        else:
            self._rules = like._rules
            self._venue_sets = like._venue_sets
            self._name_cache = like._name_cache  # same compiled table, same names
        return self

    # -- lifetime -------------------------------------------------------

    def close(self) -> None:
        """Release this reference now (idempotent). Routers the table was
        published to keep it. No call may be in progress on this object."""
        ptr = self._ptr
        if ptr != NULL:
            self._ptr = NULL
            ffi.release(ptr)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has been called."""
        return bool(self._ptr == NULL)

    def __enter__(self) -> "RouteTable":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        if self._ptr == NULL:
            return "<tollgate.RouteTable closed>"
        return f"<tollgate.RouteTable rules={len(self)} venue_sets={len(self._venue_sets)}>"

    def _failure(self, rc: int, what: str) -> TollgateError:
        if self._ptr == NULL:
            return invalid("the route table is closed")
        return error_for(rc, what)

    # -- contents -------------------------------------------------------

    @property
    def rules(self) -> Tuple[Rule, ...]:
        """The rules the table was compiled from (in ``rule_index`` order)."""
        return self._rules

    @property
    def venue_sets(self) -> Tuple[VenueSet, ...]:
        """The venue sets rules refer to by index."""
        return self._venue_sets

    def __len__(self) -> int:
        out = ffi.new("size_t*")
        rc = lib.tg_route_table_rule_count(self._ptr, out)
        if rc:
            raise self._failure(rc, "tg_route_table_rule_count failed")
        return int(out[0])

    def param_name(self, rule_index: int, i: int) -> str:
        """The name of parameter ``i`` of rule ``rule_index``.

        Raises:
            InvalidArgumentError: (TG_ERANGE) no such rule or parameter.
        """
        r = check_uint("rule_index", rule_index, U32_MAX)
        k = check_uint("i", i, U32_MAX)
        name = ffi.new("const char**")
        length = ffi.new("size_t*")
        rc = lib.tg_route_table_param_name(self._ptr, r, k, name, length)
        if rc:
            raise self._failure(rc, f"rule {r} has no parameter {k}")
        raw: bytes = ffi.unpack(name[0], length[0])
        return raw.decode("utf-8", "replace")

    def _names(self, rule_index: int, count: int) -> Tuple[str, ...]:
        names = self._name_cache.get(rule_index)
        if names is None or len(names) != count:
            names = tuple(self.param_name(rule_index, k) for k in range(count))
            self._name_cache[rule_index] = names
        return names

    # -- matching ---------------------------------------------------------

    def match(
        self,
        path: Text,
        method: Text = "GET",
        host: Optional[Text] = "",
        headers: HeadersArg = None,
    ) -> RouteMatch:
        """Match one request.

        Args:
            path: the request target as received (``"/orders/7?x=1"``).
            method: the HTTP method (case-sensitive).
            host: the Host header, may carry ``":port"``; ``""`` or None
                matches any-host rules only.
            headers: a mapping or a sequence of (name, value) pairs (at most
                :data:`MAX_REQUEST_HEADERS`).

        Returns:
            A :class:`RouteMatch`; no route is ``ok=False``, not an exception.
        """
        out, buf = _scratch("tg_route_match")
        if _no_headers(headers):  # the common case: bytes go straight to C
            p = _text("path", path)
            m = _method_bytes(method)
            h = b"" if host is None else _text("host", host)
            rc = lib.tgpy_route_table_match1(self._ptr, m, len(m), h, len(h), p, len(p), out)
            if rc:
                raise self._failure(rc, "tg_route_table_match rejected the request")
            return _make_match(_MATCH.unpack_from(buf), p, self)
        packed = _one(path, method, host, headers)
        rc = lib.tg_route_table_match(self._ptr, packed.reqs, out)
        if rc:
            raise self._failure(rc, "tg_route_table_match rejected the request")
        return _make_match(_MATCH.unpack_from(buf), packed.paths[0], self)

    def match_many(self, requests: Iterable[Any]) -> List[RouteMatch]:
        """Match a batch of requests, crossing into C once.

        ``requests`` holds :class:`Request` objects, paths, or tuples
        ``(path[, method[, host[, headers]]])``. Everything is validated
        before anything is matched.
        """
        packed = _many(requests)
        if packed.n == 0:
            return []
        out = ffi.new("tg_route_match[]", packed.n)
        rc = lib.tg_route_table_match_many(self._ptr, packed.reqs, packed.n, out)
        if rc:
            raise self._failure(rc, "tg_route_table_match_many rejected the batch")
        paths = packed.paths
        return [
            _make_match(f, paths[j], self)
            for j, f in enumerate(_MATCH.iter_unpack(ffi.buffer(out)))
        ]


# -- router -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RouteDecision:
    """The outcome of :meth:`Router.route`.

    ``venue`` is None when the request did not match or its route names no
    venue set; else the pick (which may have ``ok=False``: no eligible
    venue). ``nonce`` is the nonce the pick used (or would have).
    """

    match: RouteMatch
    venue: Optional[VenuePick]
    nonce: int

    def __bool__(self) -> bool:
        """Matched, and got a venue when the route names a venue set."""
        return self.match.ok and (self.venue is None or self.venue.ok)


_T = TypeVar("_T")


class Router:
    """The current route table of a gateway, replaceable while in use.

    Matches run lock-free on the table current when they start;
    :meth:`publish` swaps the table atomically and returns once no thread
    can still be matching against the one it replaced.

    Args:
        table: the initial table; None: an empty table (every request is
            NO_ROUTE). The router keeps its own reference: the caller may
            close ``table`` at once.
    """

    __slots__ = ("_ptr", "_table", "_seq", "_lock", "_nonces", "__weakref__")

    def __init__(self, table: Optional[RouteTable] = None) -> None:
        self._ptr = NULL
        if table is not None:
            if not isinstance(table, RouteTable):
                raise TypeError(f"table must be a RouteTable or None, not {type(table).__name__}")
            if table.closed:
                raise invalid("the route table is closed")
        out = ffi.new("tg_router**")
        err = ffi.new("tg_error*")
        rc = lib.tg_router_new(NULL if table is None else table._ptr, out, err)
        if rc:
            raise error_from_struct(rc, err, "tg_router_new failed")
        self._ptr = ffi.gc(out[0], lib.tg_router_free)
        self._lock = threading.Lock()
        # A sequence lock over the Python-side snapshot of the current table,
        # which names the parameters of a match: odd while a publication is
        # under way. A match whose sequence number changed is redone.
        self._seq = 0
        self._nonces = itertools.count()
        self._table: Optional[RouteTable] = self._snapshot(table)

    def _snapshot(self, like: Optional[RouteTable]) -> RouteTable:
        """A RouteTable owning a new reference to the router's current table."""
        h = ffi.new("tg_route_table**")
        rc = lib.tg_router_current(self._ptr, h)
        if rc:
            raise self._failure(rc, "tg_router_current failed")
        return RouteTable._wrap(h[0], like)

    # -- lifetime -------------------------------------------------------

    def close(self) -> None:
        """Release the router now (idempotent). No call may be in progress."""
        ptr = self._ptr
        if ptr != NULL:
            self._ptr = NULL
            self._table = None
            ffi.release(ptr)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has been called."""
        return bool(self._ptr == NULL)

    def __enter__(self) -> "Router":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        if self._ptr == NULL:
            return "<tollgate.Router closed>"
        return f"<tollgate.Router version={self.version}>"

    def _failure(self, rc: int, what: str) -> TollgateError:
        if self._ptr == NULL:
            return invalid("the router is closed")
        return error_for(rc, what)

    # -- publication ------------------------------------------------------

    def publish(self, table: RouteTable) -> None:
        """Make ``table`` current for every match that starts after this
        returns; returns once no match can still be using the old table.

        The router keeps its own reference: ``table`` may be closed after.
        """
        if not isinstance(table, RouteTable):
            raise TypeError(f"table must be a RouteTable, not {type(table).__name__}")
        if table.closed:
            raise invalid("the route table is closed")
        err = ffi.new("tg_error*")
        with self._lock:
            if self._ptr == NULL:
                raise invalid("the router is closed")
            self._seq += 1
            try:
                rc = lib.tg_router_publish(self._ptr, table._ptr, err)
                if rc:
                    raise error_from_struct(rc, err, "tg_router_publish failed")
                self._table = self._snapshot(table)
            finally:
                self._seq += 1

    @property
    def version(self) -> int:
        """How many tables were published after the initial one."""
        out = ffi.new("uint64_t*")
        rc = lib.tg_router_version(self._ptr, out)
        if rc:
            raise self._failure(rc, "tg_router_version failed")
        return int(out[0])

    def current(self) -> RouteTable:
        """The current table (a new reference; its ``rules`` are those given
        to the RouteTable that was published)."""
        with self._lock:
            if self._ptr == NULL:
                raise invalid("the router is closed")
            return self._snapshot(self._table)

    # -- matching ---------------------------------------------------------

    def _consistent(self, call: Callable[[], _T]) -> Tuple[Optional[RouteTable], _T]:
        """Run ``call`` (one C match) and return it with the table it used."""
        for _ in range(4):
            seq = self._seq
            table = self._table
            result = call()
            if not seq & 1 and self._seq == seq:
                return table, result
        with self._lock:  # a publication keeps racing: wait it out
            return self._table, call()

    def match(
        self,
        path: Text,
        method: Text = "GET",
        host: Optional[Text] = "",
        headers: HeadersArg = None,
    ) -> RouteMatch:
        """As :meth:`RouteTable.match`, on the current table."""
        out, buf = _scratch("tg_route_match")
        ptr = self._ptr
        if _no_headers(headers):  # the common case: bytes go straight to C
            p = _text("path", path)
            m = _method_bytes(method)
            h = b"" if host is None else _text("host", host)

            def call1() -> int:
                return int(lib.tgpy_router_match1(ptr, m, len(m), h, len(h), p, len(p), out))

            table, rc = self._consistent(call1)
            if rc:
                raise self._failure(rc, "tg_router_match rejected the request")
            return _make_match(_MATCH.unpack_from(buf), p, table)
        packed = _one(path, method, host, headers)
        reqs = packed.reqs

        def call() -> int:
            return int(lib.tg_router_match(ptr, reqs, out))

        table, rc = self._consistent(call)
        if rc:
            raise self._failure(rc, "tg_router_match rejected the request")
        return _make_match(_MATCH.unpack_from(buf), packed.paths[0], table)

    def match_many(self, requests: Iterable[Any]) -> List[RouteMatch]:
        """As :meth:`RouteTable.match_many`: the whole batch is matched
        against one table, in one C call."""
        packed = _many(requests)
        if packed.n == 0:
            return []
        out = ffi.new("tg_route_match[]", packed.n)
        ptr = self._ptr

        def call() -> int:
            return int(lib.tg_router_match_many(ptr, packed.reqs, packed.n, out))

        table, rc = self._consistent(call)
        if rc:
            raise self._failure(rc, "tg_router_match_many rejected the batch")
        paths = packed.paths
        return [
            _make_match(f, paths[j], table)
            for j, f in enumerate(_MATCH.iter_unpack(ffi.buffer(out)))
        ]

    def route(
        self,
        path: Text,
        method: Text = "GET",
        host: Optional[Text] = "",
        headers: HeadersArg = None,
        key: Key = b"",
        nonce: Optional[int] = None,
        now_ns: Optional[int] = None,
    ) -> RouteDecision:
        """Match, then pick a venue from the route's venue set, if it names one.

        ``key``, ``nonce`` and ``now_ns`` are those of :meth:`VenueSet.pick`;
        without a nonce the next value of this router's counter is used
        (reported in the decision), so journal it to replay the pick.
        """
        packed = _one(path, method, host, headers)
        k = key if type(key) is bytes else coerce_key(key)
        n = next(self._nonces) if nonce is None else check_uint("nonce", nonce, U64_MAX)
        now = check_now(now_ns)
        out, buf = _scratch("tg_route_decision")
        ptr = self._ptr
        reqs = packed.reqs

        def call() -> int:
            return int(lib.tg_router_route(ptr, reqs, k, len(k), n, now, out))

        table, rc = self._consistent(call)
        if rc:
            raise self._failure(rc, "tg_router_route rejected the request")
        m = _make_match(_MATCH.unpack_from(buf), packed.paths[0], table)
        venue = None
        if m.ok and m.venue_set is not None:
            venue = _make_pick(_PICK.unpack_from(buf, _MATCH.size), n)
        return RouteDecision(m, venue, n)


# -- normalisation ------------------------------------------------------------


def normalize_path(path: Text) -> str:
    """The normal form of a request path, as the router matches it.

    ``"/"`` + the decoded segments joined by ``"/"``, bytes outside RFC
    3986's pchar set escaped as ``%XX`` (upper-case hex), query and fragment
    dropped. Forward this form upstream so the upstream sees exactly what
    was matched.

    Raises:
        PathRefusedError: normalisation refuses the path; ``.route_status``
            (and the message) give the ``TG_ROUTE_*`` reason.
    """
    data = _text("path", path)
    cap = len(data) + 16
    written = ffi.new("size_t*")
    status = ffi.new("int*")
    for _ in range(4):
        dst = ffi.new("char[]", cap)
        rc = lib.tg_path_normalize(data, len(data), dst, cap, written, status)
        if rc == lib.TG_OK:
            normal: bytes = ffi.unpack(dst, written[0])
            return normal.decode("ascii")
        if rc == lib.TG_ETOOSMALL:
            cap = max(int(written[0]), cap + 1)
            continue
        if rc == lib.TG_EINVAL and status[0] != lib.TG_ROUTE_MATCHED:
            st = _status_of(int(status[0]))
            cname = "TG_ROUTE_" + getattr(st, "name", str(st))
            raise PathRefusedError(
                rc, f"path refused: {_STATUS_NAMES.get(int(st), 'unknown')} ({cname})", int(st)
            )
        raise error_for(rc, "tg_path_normalize failed")
    raise error_for(lib.TG_ETOOSMALL, "tg_path_normalize kept asking for a bigger buffer")
