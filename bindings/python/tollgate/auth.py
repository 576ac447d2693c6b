"""Request authentication (``tg_authenticator``) and the client-side signer.

A client signs each request with HMAC-SHA256 over a canonical form of it
(method, normalised path, sorted and re-encoded query, the headers it chose
to sign, key id, optional token id, timestamp, nonce and the SHA-256 of the
body) and sends the result as its ``Authorization`` header::

    TG1-HMAC-SHA256 KeyId=k1, SignedHeaders=content-type;host,
        Timestamp=1700000000123456789, Nonce=n-7f3a9c2e[, Token=t], Signature=<hex>

:func:`sign_request` produces that value, :func:`canonical_request` shows
the exact bytes that were signed (for debugging and test vectors) and
:func:`hmac_sha256` is the MAC itself. The server holds an
:class:`Authenticator` and calls :meth:`Authenticator.verify`, which checks,
in this order, the first failure deciding (:class:`AuthReason`):

1. ``MALFORMED``: the header does not parse (``detail`` names what:
   ``"bad_scheme"``, ``"missing_parameter"``, ``"bad_nonce"``, ...);
2. ``SKEW``: the timestamp is more than ``max_skew_ns`` ahead of ``now``, or
   more than ``max_skew_ns`` behind the latest ``now`` this authenticator
   has seen (a clock stepping back cannot reopen a forgotten nonce's window);
3. ``REVOKED_KEY``, ``UNKNOWN_KEY``, ``EXPIRED_KEY`` (``now`` outside the
   key's ``[not_before_ns, not_after_ns)``), then ``REVOKED_TOKEN``;
4. ``MALFORMED`` again when the request cannot be canonicalised (a signed
   header missing or repeated, a bad path or query, ...), and
   ``BAD_SIGNATURE`` when the MAC differs (compared in constant time);
5. ``REPLAY``: this (key id, nonce) was accepted within the window;
   ``NONCE_CAPACITY``: the nonce cache is full of nonces still inside their
   window, so the request is refused rather than risk a replay (fail
   closed). Only requests with a valid signature reach the nonce cache.

Rejections are results (falsy :class:`AuthResult` objects), not exceptions;
a server should answer every one the same way ("unauthorized") and log the
reason. Exceptions are for bad arguments: wrong types (``TypeError``), a
``body_sha256`` that is not 32 bytes, a negative time, a closed
authenticator (:class:`~tollgate.InvalidArgumentError`).

Time here is **wall-clock** Unix nanoseconds (the clock clients stamp
requests with): every ``now_ns`` and ``timestamp_ns`` left out is
:func:`time.time_ns`, not the monotonic ``tollgate.now_ns()`` that the
rate limiter and the other policies use.

Keys rotate without downtime: give two keys overlapping validity intervals.
A key's secret is used once, when it is added, to precompute the HMAC state,
and is not kept. Key, revocation and list changes are effective for every
verification that starts after the call returns, on any thread, and each
one is passed to the ``on_event`` callback (to journal it). The revocation
version never wraps: at 2**64 - 1 a revocation change is refused
(:class:`~tollgate.StateError`), so a stale list can never look newer.

Strings: ``str`` is UTF-8 encoded, bytes-like objects are taken as they are
(pass header values as bytes when the exact octets matter, e.g.
``value.encode("latin-1")`` from a WSGI environ). Ids are ASCII:
key ids 1..64 and token ids 1..128 of ``[A-Za-z0-9._-]``, nonces 8..64 of
``[A-Za-z0-9._~-]``. The library checks every field and says which one is
wrong.

Memory: the nonce cache takes about ``64 * nonce_capacity`` bytes, allocated
when the authenticator is created (16 MiB at the library's default of
2**18). It is split into 16 shards of ``nonce_capacity / 16`` nonces, each
refusing when full, so keep a margin above the nonces expected within one
window.

The format is specified in docs/auth.md; tests/vectors/auth_vectors.txt
holds the vectors every language's tests check.

Every method is thread-safe (the library releases the GIL during each call);
``verify`` allocates nothing in C and may run on any number of threads.
``close()`` must not race with calls on the same authenticator.
"""

from __future__ import annotations

import enum
import itertools
import secrets
import struct
import sys
import threading
import time
import traceback
import weakref
from dataclasses import dataclass
from typing import (
    Any,
    Callable,
    Dict,
    Iterable,
    List,
    Mapping,
    NamedTuple,
    Optional,
    Tuple,
    Union,
)

from ._lib import NULL, U64_MAX, check_uint, ffi, lib
from .errors import (
    InvalidArgumentError,
    StateError,
    error_for,
    error_from_struct,
    invalid,
)

__all__ = [
    "AUTH_DETAILS",
    "AUTH_SCHEME",
    "AuthEvent",
    "AuthEventKind",
    "AuthReason",
    "AuthResult",
    "AuthStats",
    "Authenticator",
    "auth_detail_name",
    "auth_reason_name",
    "canonical_request",
    "generate_nonce",
    "hmac_sha256",
    "sign_request",
]

#: A string argument: str (UTF-8 encoded) or bytes-like.
Text = Union[str, bytes, bytearray, memoryview]
#: Request headers: a mapping (anything with ``items()``, e.g. a dict or
#: ``http.client.HTTPMessage``) or an iterable of ``(name, value)`` pairs;
#: None for none. Names are compared without case; order does not matter.
Headers = Union[Mapping[Any, Any], Iterable[Tuple[Text, Text]], None]

#: The scheme word that opens every Authorization value this module makes.
AUTH_SCHEME = "TG1-HMAC-SHA256"

_SHA256_SIZE = 32
_NONCE_MIN_BYTES, _NONCE_MAX_BYTES = 6, 48  # token_urlsafe: 8..64 characters


class AuthReason(enum.IntEnum):
    """The outcome of a verification (``TG_AUTH_*``); ``OK`` when accepted.

    The library names ``OK`` ``"none"`` (:func:`auth_reason_name`).
    """

    OK = lib.TG_AUTH_OK
    MALFORMED = lib.TG_AUTH_MALFORMED
    UNKNOWN_KEY = lib.TG_AUTH_UNKNOWN_KEY
    EXPIRED_KEY = lib.TG_AUTH_EXPIRED_KEY
    BAD_SIGNATURE = lib.TG_AUTH_BAD_SIGNATURE
    SKEW = lib.TG_AUTH_SKEW
    REPLAY = lib.TG_AUTH_REPLAY
    REVOKED_KEY = lib.TG_AUTH_REVOKED_KEY
    REVOKED_TOKEN = lib.TG_AUTH_REVOKED_TOKEN
    NONCE_CAPACITY = lib.TG_AUTH_NONCE_CAPACITY


class AuthEventKind(enum.IntEnum):
    """What an :class:`AuthEvent` reports (``tg_auth_event.kind``; the C
    header numbers them in a comment, it has no macros for them)."""

    KEY_ADDED = 0  # also a key replaced by add_key
    KEY_REMOVED = 1
    KEY_REVOKED = 2
    TOKEN_REVOKED = 3
    KEY_REINSTATED = 4  # unrevoke_key
    TOKEN_REINSTATED = 5  # unrevoke_token
    REVOCATIONS_REPLACED = 6  # replace_revocations; the event's id is ""


def _library_defaults() -> Tuple[int, int]:
    opts = ffi.new("tg_auth_options*")
    lib.tg_auth_options_init(opts)
    return int(opts.max_skew_ns), int(opts.nonce_capacity)


# The defaults of Authenticator() are the library's, read once (so the
# binding's signature cannot drift from tg_auth_options_init).
_DEFAULT_MAX_SKEW_NS, _DEFAULT_NONCE_CAPACITY = _library_defaults()

_REASONS: Dict[int, AuthReason] = {int(r): r for r in AuthReason}
_EVENT_KINDS: Dict[int, AuthEventKind] = {int(k): k for k in AuthEventKind}


def _library_names(fn: Any) -> Tuple[str, ...]:
    """fn(0), fn(1), ... up to the first "unknown": the library's names."""
    names: List[str] = []
    while len(names) < 256:
        name = ffi.string(fn(len(names))).decode("ascii")
        if name == "unknown":
            break
        names.append(name)
    return tuple(names)


_REASON_NAMES = _library_names(lib.tg_auth_reason_name)
#: What can be malformed, by detail code ("none" first), as the library
#: names it (``tg_auth_detail_name``); read from the library at import.
AUTH_DETAILS: Tuple[str, ...] = _library_names(lib.tg_auth_detail_name)


def _name_of(fn: Any, names: Tuple[str, ...], code: Any, what: str) -> str:
    if isinstance(code, bool) or not isinstance(code, int):
        raise TypeError(f"{what} must be an int, not {type(code).__name__}")
    if 0 <= code < len(names):
        return names[code]
    if not -(2**31) <= code < 2**31:
        return "unknown"
    return str(ffi.string(fn(code)).decode("ascii", "replace"))


def auth_reason_name(reason: int) -> str:
    """The library's name of a reason code (``"skew"``; ``"none"`` for OK),
    or ``"unknown"``."""
    return _name_of(lib.tg_auth_reason_name, _REASON_NAMES, reason, "reason")


def auth_detail_name(detail: int) -> str:
    """The library's name of a malformed-request detail code
    (``"missing_header"``; ``"none"`` for 0), or ``"unknown"``."""
    return _name_of(lib.tg_auth_detail_name, AUTH_DETAILS, detail, "detail")


class AuthResult(NamedTuple):
    """The outcome of :meth:`Authenticator.verify` (immutable); true when OK.

    Attributes:
        reason: an :class:`AuthReason` (``OK`` when accepted).
        detail: what was malformed, as the library names it
            (``"missing_header"``); ``"none"`` for every other reason.
        key_id: the header's KeyId, ``""`` when the header did not parse
            that far. Never trust it unless ``ok``.
        token: the header's Token, ``""`` when none (or not parsed).
        nonce: the header's Nonce, ``""`` when not parsed.
        timestamp_ns: the header's Timestamp, 0 when not parsed.
    """

    reason: Union[AuthReason, int]
    detail: str
    key_id: str
    token: str
    nonce: str
    timestamp_ns: int

    @property
    def ok(self) -> bool:
        """The request is authentic, fresh and not a replay."""
        return self.reason == 0

    def __bool__(self) -> bool:
        return self.reason == 0

    @property
    def reason_name(self) -> str:
        """The library's name of the reason (``"bad_signature"``; ``"none"`` when OK)."""
        return auth_reason_name(int(self.reason))


@dataclass(frozen=True, slots=True)
class AuthEvent:
    """A key or revocation change, passed to the ``on_event`` callback.

    ``id`` is the key or token id (``""`` for ``REVOCATIONS_REPLACED``);
    ``revocation_version`` the version after the change; ``now_ns`` the
    time given to the call that made it.
    """

    kind: Union[AuthEventKind, int]
    id: str
    revocation_version: int
    now_ns: int


@dataclass(frozen=True, slots=True)
class AuthStats:
    """Counters since creation (read one by one, not as one snapshot).

    ``results`` maps every :class:`AuthReason` to how many verifications had
    it (``OK``: the accepted ones); a reason this binding does not know
    (from a newer library) appears as an int key when non-zero.
    """

    results: Mapping[Union[AuthReason, int], int]
    verified: int  # results[OK]
    rejected: int  # every other result
    keys: int
    revoked_keys: int
    revoked_tokens: int
    revocation_version: int


_tuple_new = tuple.__new__

# tg_auth_result: reason i32, detail i32, timestamp_ns u64, then the offset
# and length (u32) of the key id, token and nonce. Checked against the
# compiled layout here.
_RESULT = struct.Struct("=iiQIIIIII")
assert ffi.sizeof("tg_auth_result") == _RESULT.size == 40
assert ffi.offsetof("tg_auth_result", "timestamp_ns") == 8
assert ffi.offsetof("tg_auth_result", "nonce_len") == 36
_unpack_result = _RESULT.unpack_from
_RESULTS_SLOTS = 16
assert ffi.sizeof("tg_auth_stats") == 8 * (_RESULTS_SLOTS + 4)

_tls = threading.local()
_time_ns = time.time_ns
_verify1 = lib.tgpy_auth_verify1
_client1 = lib.tgpy_auth_client1
_OK = AuthReason.OK
_NONE_DETAIL = AUTH_DETAILS[0]
# An Authorization value the library makes is at most about 1,500 bytes
# (every field at its longest); canonical requests can be much longer and
# are retried with the size the library asks for.
_SIGN_CAP = 2048
_ETOOSMALL = lib.TG_ETOOSMALL


def _result_out() -> Tuple[Any, Any]:
    """This thread's scratch tg_auth_result and a buffer over it.

    A verification never calls back into Python (only changes do), so one
    scratch struct per thread is enough.
    """
    out = ffi.new("tg_auth_result*")
    pair = (out, ffi.buffer(out))
    _tls.result = pair
    return pair


# -- argument conversion ----------------------------------------------------------


def _text(name: str, value: Any) -> bytes:
    """A string argument as bytes (str is UTF-8 encoded)."""
    if type(value) is bytes:
        return value
    if isinstance(value, str):
        try:
            return value.encode("utf-8")
        except UnicodeEncodeError as exc:  # a lone surrogate
            raise invalid(f"{name} cannot be encoded as UTF-8: {exc.reason}") from None
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"{name} must be str or bytes, not {type(value).__name__}")


_NO_HEADERS: Tuple[bytes, bytes, int] = (b"", b"", 0)
_EMPTY_TYPES = frozenset((dict, list, tuple))
_PAIR_TYPES = frozenset((tuple, list))
_PAIR_LENGTH = frozenset((2,))
_chain = itertools.chain.from_iterable
# struct.Struct("=nQ").pack by n: the lengths of n names and values.
_LENGTHS: Dict[int, Callable[..., bytes]] = {}


def _lengths(parts: List[Any]) -> bytes:
    n = len(parts)
    pack = _LENGTHS.get(n)
    if pack is None:
        pack = struct.Struct(f"={n}Q").pack
        if len(_LENGTHS) < 64:
            _LENGTHS[n] = pack
    return pack(*map(len, parts))


def _pack_headers(headers: Any) -> Tuple[bytes, bytes, int]:
    """(names and values end to end, their lengths as native uint64 pairs,
    count): the layout tgpy_auth_headers reads."""
    if headers is None:
        return _NO_HEADERS
    flat: Optional[List[Any]] = None
    t = type(headers)
    if t is dict:
        flat = list(_chain(headers.items()))
    elif (t is list or t is tuple) and set(map(type, headers)) <= _PAIR_TYPES \
            and set(map(len, headers)) <= _PAIR_LENGTH:
        flat = list(_chain(headers))
    if flat is not None:
        # The common forms, all str or all bytes, without a call per string:
        # ASCII str is encoded at once (its lengths are the str lengths).
        try:
            joined = "".join(flat)
            data = joined.encode()
            if len(data) == len(joined):
                return data, _lengths(flat), len(flat) >> 1
        except (TypeError, UnicodeError):
            try:
                data = b"".join(flat)
                # len() of a memoryview counts items, not bytes: check the total.
                if sum(map(len, flat)) == len(data):
                    return data, _lengths(flat), len(flat) >> 1
            except TypeError:
                pass
    return _pack_headers_slowly(headers)


def _pack_headers_slowly(headers: Any) -> Tuple[bytes, bytes, int]:
    """_pack_headers for any form, naming what is wrong."""
    if isinstance(headers, (str, bytes, bytearray, memoryview)):
        raise TypeError("headers must be a mapping or a sequence of (name, value) pairs, "
                        "not a string")
    items = headers.items() if hasattr(headers, "items") else headers
    try:
        iterator = iter(items)
    except TypeError:
        raise TypeError(
            f"headers must be a mapping or a sequence of (name, value) pairs, "
            f"not {type(headers).__name__}"
        ) from None
    parts: List[bytes] = []
    append = parts.append
    for i, item in enumerate(iterator):
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise TypeError(f"headers[{i}] must be a (name, value) pair, not {item!r:.60}")
        name, value = item
        append(name if type(name) is bytes else _text(f"headers[{i}] name", name))
        append(value if type(value) is bytes else _text(f"headers[{i}] value", value))
    if not parts:
        return _NO_HEADERS
    return b"".join(parts), _lengths(parts), len(parts) >> 1


def _body(body: Any, body_sha256: Any) -> Tuple[bytes, Any]:
    """(body bytes, digest bytes or NULL)."""
    if body_sha256 is None:
        if type(body) is bytes:
            return body, NULL
        if body is None:
            return b"", NULL
        if isinstance(body, (str, bytes, bytearray, memoryview)):
            return _text("body", body), NULL
        raise TypeError(f"body must be bytes or str, not {type(body).__name__}")
    if isinstance(body_sha256, str) or not isinstance(body_sha256, (bytes, bytearray, memoryview)):
        raise TypeError(
            f"body_sha256 must be the 32 bytes of a SHA-256 digest, not {type(body_sha256).__name__}"
        )
    digest = bytes(body_sha256)
    if len(digest) != _SHA256_SIZE:
        raise invalid(f"body_sha256 must be 32 bytes (a SHA-256 digest), got {len(digest)}")
    if body is not None and (not isinstance(body, (str, bytes, bytearray, memoryview)) or len(body)):
        raise invalid("give the body or its body_sha256, not both")
    return b"", digest


def _signed_headers(value: Any) -> bytes:
    """A "a;b" list as given (the library checks it), or names to lower-case,
    sort and join."""
    if value is None:
        return b""
    if isinstance(value, (str, bytes, bytearray, memoryview)):
        return _text("signed_headers", value)
    try:
        names = list(value)
    except TypeError:
        raise TypeError(
            f"signed_headers must be a str like 'content-type;host' or a list of header names, "
            f"not {type(value).__name__}"
        ) from None
    return b";".join(sorted(_text(f"signed_headers[{i}]", n).lower() for i, n in enumerate(names)))


def _uint(name: str, value: Any, maximum: int = U64_MAX) -> int:
    """check_uint, refusing bool too: True is not a time, a version or a size."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an int, not bool")
    return check_uint(name, value, maximum)


def _now(name: str, value: Any) -> int:
    if value is None:
        return _time_ns()
    return _uint(name, value)


def _bytes_arg(name: str, value: Any) -> bytes:
    """A key or secret: bytes-like, or str (UTF-8)."""
    if value is None:
        raise TypeError(f"{name} must be bytes or str, not None")
    return _text(name, value)


def _str_list(name: str, values: Any) -> Tuple[Any, Any, int]:
    """A list of ids as a tg_str array (and what keeps it alive), or NULL."""
    if values is None:
        return NULL, None, 0
    if isinstance(values, (str, bytes, bytearray, memoryview)):
        raise TypeError(f"{name} must be a list of ids, not a single {type(values).__name__}")
    try:
        seq = list(values)
    except TypeError:
        raise TypeError(f"{name} must be a list of ids, not {type(values).__name__}") from None
    items = [_text(f"{name}[{i}]", v) for i, v in enumerate(seq)]
    n = len(items)
    if n == 0:
        return NULL, None, 0
    data = b"".join(items)
    base = ffi.from_buffer("char[]", data) if data else NULL
    arr = ffi.new("tg_str[]", n)
    at = 0
    for i, item in enumerate(items):
        arr[i].data = base + at if item else NULL
        arr[i].len = len(item)
        at += len(item)
    return arr, (data, base), n


def _field(raw: bytes, at: int, n: int) -> str:
    """A parsed field of the Authorization value (an ASCII id: the library
    checked its alphabet)."""
    return raw[at : at + n].decode("ascii") if n else ""


# -- the event callback ----------------------------------------------------------------

# Authenticators with an on_event callback, by the integer passed to C as
# `user`. Weak references: a callback never keeps an authenticator alive.
_registry: Dict[int, "weakref.ref[Authenticator]"] = {}
_next_id = itertools.count(1)


@ffi.def_extern(name="_tollgate_auth_event")  # type: ignore[untyped-decorator]
def _on_auth_event(user: Any, ev: Any) -> None:
    reg_id = int(ffi.cast("uintptr_t", user))
    ref = _registry.get(reg_id)
    auth = ref() if ref is not None else None
    if auth is None:
        return
    callback = auth._callback
    if callback is None:
        return
    notifying: List[int] = getattr(_tls, "notifying", None) or []
    _tls.notifying = notifying
    notifying.append(reg_id)
    try:
        kind: int = ev.kind
        callback(
            AuthEvent(
                kind=_EVENT_KINDS.get(kind, kind),
                id=ffi.unpack(ev.id, ev.id_len).decode("ascii", "replace") if ev.id_len else "",
                revocation_version=int(ev.revocation_version),
                now_ns=int(ev.now_ns),
            )
        )
    except BaseException as exc:  # noqa: BLE001 - the C frames above cannot unwind
        box: Optional[List[BaseException]] = getattr(_tls, "callback_errors", None)
        if box is not None:
            # The change call is waiting in C on this thread: it raises the
            # first exception once the library has returned.
            box.append(exc)
        else:  # no binding call to report to (cannot happen through this module)
            sys.stderr.write("tollgate: exception in an authenticator on_event callback (ignored):\n")
            traceback.print_exc()
    finally:
        notifying.pop()


def _raise_first(box: List[BaseException]) -> None:
    first = box[0]
    if len(box) > 1 and hasattr(first, "add_note"):
        first.add_note(
            f"tollgate: on_event raised {len(box)} exceptions during this call; "
            "this is the first, the others were dropped"
        )
    raise first


# -- the server side ---------------------------------------------------------------------


class Authenticator:
    """Verifies signed requests: keys, revocations and a nonce cache.

    Args:
        max_skew_ns: how far a request's timestamp may be from the server's
            clock, either way, 1 ns .. 24 h (default: the library's, 30 s).
            Also how long a nonce is remembered.
        nonce_capacity: nonces remembered within the window, 16 .. 2**26
            (default: the library's, 2**18; about 64 bytes each, allocated
            now). When full, requests are refused (``NONCE_CAPACITY``).
        seed: nonce hashing seed; 0 keeps the library's default.
        on_event: ``on_event(event)`` for every key or revocation change,
            see :meth:`on_event`.

    Raises:
        InvalidArgumentError: the library refused an option (``.code``
            TG_ERANGE, ``.message`` says which).
        StateError: TG_ESTATE, the library's crypto (BoringSSL) cannot be
            loaded.
    """

    __slots__ = ("_ptr", "_callback", "_reg_id", "_c_callback", "_max_skew_ns",
                 "_nonce_capacity", "__weakref__")

    def __init__(
        self,
        max_skew_ns: int = _DEFAULT_MAX_SKEW_NS,
        nonce_capacity: int = _DEFAULT_NONCE_CAPACITY,
        seed: int = 0,
        on_event: Optional[Callable[[AuthEvent], Any]] = None,
    ) -> None:
        self._ptr = NULL
        self._callback: Optional[Callable[[AuthEvent], Any]] = None
        self._reg_id = 0
        self._c_callback = False
        if on_event is not None and not callable(on_event):
            raise TypeError("on_event must be callable or None")
        opts = ffi.new("tg_auth_options*")
        lib.tg_auth_options_init(opts)
        opts.max_skew_ns = _uint("max_skew_ns", max_skew_ns)
        opts.nonce_capacity = _uint("nonce_capacity", nonce_capacity)
        opts.seed = _uint("seed", seed)
        out = ffi.new("tg_authenticator**")
        err = ffi.new("tg_error*")
        rc = lib.tg_authenticator_new(opts, out, err)
        if rc:
            raise error_from_struct(rc, err, "tg_authenticator_new failed")
        self._ptr = ffi.gc(out[0], lib.tg_authenticator_free)
        self._max_skew_ns = int(opts.max_skew_ns)
        self._nonce_capacity = int(opts.nonce_capacity)
        if on_event is not None:
            self.on_event(on_event)

    # -- lifetime -----------------------------------------------------------

    def close(self) -> None:
        """Release the authenticator now (idempotent). No call may be in
        progress on another thread.

        Raises:
            StateError: called from this authenticator's ``on_event``
                callback (the change being reported is still in progress).
        """
        ptr = self._ptr
        if ptr == NULL:
            return
        if self._reg_id and self._reg_id in (getattr(_tls, "notifying", None) or ()):
            raise StateError(lib.TG_ESTATE, "on_event cannot close the authenticator that called it")
        self._ptr = NULL
        _registry.pop(self._reg_id, None)
        self._callback = None
        ffi.release(ptr)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has been called."""
        return bool(self._ptr == NULL)

    def __enter__(self) -> "Authenticator":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        if self._ptr == NULL:
            return "<tollgate.Authenticator closed>"
        return (f"<tollgate.Authenticator max_skew_ns={self._max_skew_ns} "
                f"nonce_capacity={self._nonce_capacity}>")

    @property
    def max_skew_ns(self) -> int:
        """The skew window, in ns."""
        return self._max_skew_ns

    @property
    def nonce_capacity(self) -> int:
        """Nonces the cache can hold within the window."""
        return self._nonce_capacity

    def _closed_error(self) -> InvalidArgumentError:
        return invalid("the authenticator is closed")

    # -- changes --------------------------------------------------------------

    def _change(self, what: str, fn: Any, *args: Any) -> None:
        """Call ``fn(*args, err)``, collecting what ``on_event`` raises meanwhile
        on this thread; raise the first such exception, or the error."""
        err = ffi.new("tg_error*")
        box: List[BaseException] = []
        outer = getattr(_tls, "callback_errors", None)
        _tls.callback_errors = box
        try:
            rc = fn(*args, err)
        finally:
            _tls.callback_errors = outer
        if box:
            _raise_first(box)  # the change took effect
        if rc:
            if self._ptr == NULL:
                raise self._closed_error()
            raise error_from_struct(rc, err, f"{what} failed")

    def add_key(
        self,
        key_id: Text,
        secret: Union[bytes, bytearray, memoryview, str],
        not_before_ns: int = 0,
        not_after_ns: int = U64_MAX,
        now_ns: Optional[int] = None,
    ) -> None:
        """Add a key, or replace the key of that id, valid for verifications
        at ``now`` in ``[not_before_ns, not_after_ns)`` (wall-clock ns).

        Two keys with overlapping intervals rotate without downtime: clients
        move to the new key id while the old one still verifies.

        Args:
            key_id: 1..64 of ``[A-Za-z0-9._-]``.
            secret: 1..1024 bytes (a str is UTF-8 encoded). Used now to
                precompute the HMAC state, not kept.
            not_before_ns, not_after_ns: the validity interval (default:
                always); not empty.
            now_ns: the time reported to ``on_event``; default ``time.time_ns()``.

        Raises:
            InvalidArgumentError: a bad key id, secret or interval (TG_EINVAL).
            StateError: called from an ``on_event`` callback (TG_ESTATE).
        """
        k = _text("key_id", key_id)
        s = _bytes_arg("secret", secret)
        nb = _uint("not_before_ns", not_before_ns)
        na = _uint("not_after_ns", not_after_ns)
        now = _now("now_ns", now_ns)
        self._change("tg_auth_add_key", lib.tg_auth_add_key, self._ptr, k, len(k), s, len(s),
                     nb, na, now)

    def remove_key(self, key_id: Text, now_ns: Optional[int] = None) -> None:
        """Remove a key: requests signed with it become ``UNKNOWN_KEY``.

        Raises:
            NotFoundError: there is no such key (TG_ENOTFOUND).
            InvalidArgumentError: ``key_id`` is not 1..64 of ``[A-Za-z0-9._-]``.
            StateError: called from an ``on_event`` callback.
        """
        k = _text("key_id", key_id)
        now = _now("now_ns", now_ns)
        self._change("tg_auth_remove_key", lib.tg_auth_remove_key, self._ptr, k, len(k), now)

    def _revoke(self, kind: int, name: str, value: Any, revoked: int, now_ns: Any) -> None:
        v = _text(name, value)
        now = _now("now_ns", now_ns)
        self._change("tg_auth_revoke", lib.tg_auth_revoke, self._ptr, kind, v, len(v), revoked,
                     now)

    def revoke_key(self, key_id: Text, now_ns: Optional[int] = None) -> None:
        """Revoke a key id: its requests are ``REVOKED_KEY`` from when this
        returns, on every thread, until :meth:`unrevoke_key`. The id need not
        be a key yet. A change bumps the revocation version and is reported
        to ``on_event``; revoking a revoked id changes nothing.

        Raises:
            InvalidArgumentError: not 1..64 of ``[A-Za-z0-9._-]``.
            StateError: the revocation version is 2**64 - 1 (it never
                wraps), or called from an ``on_event`` callback.
        """
        self._revoke(lib.TG_AUTH_KEY, "key_id", key_id, 1, now_ns)

    def unrevoke_key(self, key_id: Text, now_ns: Optional[int] = None) -> None:
        """Reinstate a revoked key id (nothing happens if it is not revoked)."""
        self._revoke(lib.TG_AUTH_KEY, "key_id", key_id, 0, now_ns)

    def revoke_token(self, token: Text, now_ns: Optional[int] = None) -> None:
        """Revoke a token id (1..128 of ``[A-Za-z0-9._-]``): requests carrying
        it are ``REVOKED_TOKEN``, whatever their key. As :meth:`revoke_key`."""
        self._revoke(lib.TG_AUTH_TOKEN, "token", token, 1, now_ns)

    def unrevoke_token(self, token: Text, now_ns: Optional[int] = None) -> None:
        """Reinstate a revoked token id (nothing happens if it is not revoked)."""
        self._revoke(lib.TG_AUTH_TOKEN, "token", token, 0, now_ns)

    def replace_revocations(
        self,
        version: int,
        keys: Iterable[Text] = (),
        tokens: Iterable[Text] = (),
        now_ns: Optional[int] = None,
    ) -> None:
        """Replace both revocation lists at once by the lists at ``version``
        (e.g. pulled from a central store).

        Raises:
            StateError: ``version`` is not newer than :attr:`revocation_version`
                (TG_ESTATE): a stale list never overwrites a newer one;
                nothing changed. Also from an ``on_event`` callback.
            InvalidArgumentError: a malformed id; nothing changed.
        """
        v = _uint("version", version)
        key_arr, keep_k, n_keys = _str_list("keys", keys)
        token_arr, keep_t, n_tokens = _str_list("tokens", tokens)
        now = _now("now_ns", now_ns)
        self._change("tg_auth_replace_revocations", lib.tg_auth_replace_revocations, self._ptr,
                     v, key_arr, n_keys, token_arr, n_tokens, now)
        del keep_k, keep_t

    @property
    def revocation_version(self) -> int:
        """The current revocation version (each revocation change bumps it;
        :meth:`replace_revocations` sets it)."""
        out = ffi.new("uint64_t*")
        rc = lib.tg_auth_revocation_version(self._ptr, out)
        if rc:
            if self._ptr == NULL:
                raise self._closed_error()
            raise error_for(rc, "tg_auth_revocation_version failed")
        return int(out[0])

    # -- verification -------------------------------------------------------

    def verify(
        self,
        method: Text,
        target: Text,
        headers: Headers = None,
        body: Union[bytes, bytearray, memoryview, str, None] = b"",
        *,
        authorization: Union[Text, None],
        body_sha256: Union[bytes, bytearray, memoryview, None] = None,
        now_ns: Optional[int] = None,
    ) -> AuthResult:
        """Verify one request against its Authorization header value.

        Args:
            method: as received (``"GET"``; must be upper-case letters).
            target: the path with an optional ``"?query"``, as received.
            headers: the request's headers (see :data:`Headers`); only the
                signed ones are read.
            body: the body, whole (None: empty).
            authorization: the Authorization header's value; None (header
                absent) is a ``MALFORMED`` result with detail
                ``"missing_authorization"``.
            body_sha256: instead of ``body``, its SHA-256 (32 bytes), when
                the host hashed it while streaming it in.
            now_ns: wall-clock Unix ns; default ``time.time_ns()``.

        Returns:
            An :class:`AuthResult`, true when accepted. A rejection is a
            result, not an exception.

        Raises:
            TypeError: an argument of the wrong type.
            InvalidArgumentError: ``body_sha256`` not 32 bytes, or both a
                body and ``body_sha256``; a negative ``now_ns``; a closed
                authenticator. Nothing was counted or remembered.
        """
        # The usual types converted inline (a call per argument costs more
        # than the conversion); anything else, or a failure, goes through
        # the helpers, which say what is wrong.
        try:
            m = method.encode() if type(method) is str else method
            t = target.encode() if type(target) is str else target
        except UnicodeError:
            m, t = _text("method", method), _text("target", target)
        if type(m) is not bytes:
            m = _text("method", method)
        if type(t) is not bytes:
            t = _text("target", target)
        if headers:
            hdata, hlens, n_headers = _pack_headers(headers)
        elif headers is None or type(headers) in _EMPTY_TYPES:
            hdata, hlens, n_headers = _NO_HEADERS
        else:
            hdata, hlens, n_headers = _pack_headers_slowly(headers)  # says why it is not headers
        if body_sha256 is None and type(body) is bytes:
            b, digest = body, NULL
        else:
            b, digest = _body(body, body_sha256)
        text: Optional[str] = None
        if type(authorization) is str:
            a = authorization.encode("utf-8", "surrogatepass")
            if len(a) == len(authorization):
                text = authorization  # ASCII: offsets into a are offsets into it
        elif authorization is None:
            a = b""
        else:
            a = _text("authorization", authorization)
        if now_ns is None:
            now_ns = _time_ns()
        elif type(now_ns) is not int:
            now_ns = _uint("now_ns", now_ns)  # refuses bool; takes int subclasses
        try:
            out, buf = _tls.result
        except AttributeError:
            out, buf = _result_out()
        try:
            rc = _verify1(self._ptr, m, len(m), t, len(t), hdata, hlens, n_headers, b, len(b),
                          digest, a, len(a), now_ns, out)
        except (TypeError, OverflowError) as exc:
            raise self._bad_now(exc, now_ns) from None
        if rc:
            if self._ptr == NULL:
                raise self._closed_error()
            raise error_for(rc, "tg_auth_verify refused the call")
        reason, detail, ts, ko, kl, to, tl, no, nl = _unpack_result(buf)
        if reason == 0:
            r: Union[AuthReason, int] = _OK
            d = _NONE_DETAIL
        else:
            r = _REASONS.get(reason, reason)
            d = AUTH_DETAILS[detail] if 0 <= detail < len(AUTH_DETAILS) else auth_detail_name(detail)
        if text is not None:  # slices of the caller's str (empty when a length is 0)
            return _tuple_new(
                AuthResult,
                (r, d, text[ko : ko + kl], text[to : to + tl], text[no : no + nl], ts),
            )
        return _tuple_new(
            AuthResult,
            (r, d, _field(a, ko, kl), _field(a, to, tl), _field(a, no, nl), ts),
        )

    def _bad_now(self, exc: Exception, now_ns: Any) -> Exception:
        """Explain an argument cffi could not convert (only now_ns can be)."""
        if self._ptr == NULL:
            return self._closed_error()
        try:
            _uint("now_ns", now_ns)
        except (TypeError, ValueError) as explained:
            return explained
        if isinstance(exc, OverflowError):
            return invalid(str(exc))
        return exc

    # -- events and counters ------------------------------------------------

    def on_event(
        self, callback: Optional[Callable[[AuthEvent], Any]]
    ) -> Optional[Callable[[AuthEvent], Any]]:
        """Call ``callback(event)`` for every key or revocation change (None
        removes it).

        The callback runs on the thread of the call that made the change,
        before that call returns, one change at a time in the order they
        took effect (the library holds its writer lock meanwhile: keep it
        short). It may verify requests and read stats; it must not change
        any authenticator (that raises :class:`StateError`, TG_ESTATE: a
        cycle of callbacks could otherwise deadlock) nor close its own.

        An exception raised by the callback cannot unwind through the
        library: the binding keeps the first one and raises it from the
        changing call (``add_key``, ``revoke_key``, ...) once the library has
        returned; the change has taken effect. Returns ``callback``, so this
        works as a decorator.
        """
        if callback is not None and not callable(callback):
            raise TypeError("callback must be callable or None")
        if self._ptr == NULL:
            raise self._closed_error()
        if callback is None:
            rc = lib.tg_auth_set_event_callback(self._ptr, ffi.NULL, ffi.NULL)
            if rc:
                raise error_for(rc, "tg_auth_set_event_callback failed")
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
            # authenticator is freed: replacing the Python callable needs no call.
            rc = lib.tg_auth_set_event_callback(
                self._ptr, lib._tollgate_auth_event, ffi.cast("void*", reg_id)
            )
            if rc:
                self._callback = None
                _registry.pop(reg_id, None)
                raise error_for(rc, "tg_auth_set_event_callback failed")
            self._c_callback = True
        return callback

    def stats(self) -> AuthStats:
        """Counters since creation."""
        out = ffi.new("tg_auth_stats*")
        rc = lib.tg_auth_stats_get(self._ptr, out)
        if rc:
            if self._ptr == NULL:
                raise self._closed_error()
            raise error_for(rc, "tg_auth_stats_get failed")
        counts = ffi.unpack(out.results, _RESULTS_SLOTS)
        results: Dict[Union[AuthReason, int], int] = {r: counts[r] for r in AuthReason}
        for code, count in enumerate(counts):
            if count and code not in _REASONS:
                results[code] = count
        return AuthStats(
            results=results,
            verified=counts[_OK],
            rejected=sum(counts) - counts[_OK],
            keys=out.keys,
            revoked_keys=out.revoked_keys,
            revoked_tokens=out.revoked_tokens,
            revocation_version=out.revocation_version,
        )


# -- the client side ---------------------------------------------------------------------


def generate_nonce(nbytes: int = 16) -> str:
    """A fresh random nonce: ``nbytes`` from :mod:`secrets`, URL-safe base64
    without padding (``[A-Za-z0-9_-]``, inside the nonce alphabet).

    ``nbytes`` is 6..48 (8..64 characters); the default 16 gives 22
    characters, 128 bits.
    """
    n = _uint("nbytes", nbytes, _NONCE_MAX_BYTES)
    if n < _NONCE_MIN_BYTES:
        raise invalid(f"nbytes must be {_NONCE_MIN_BYTES}..{_NONCE_MAX_BYTES} (a nonce is "
                      f"8..64 characters), got {n}")
    return secrets.token_urlsafe(n)


def _client_out() -> Tuple[Any, Any, Any]:
    """This thread's (output buffer, size_t written, tg_error) for signing:
    the library never calls back into Python from there."""
    scratch = (ffi.new("char[]", _SIGN_CAP), ffi.new("size_t*"), ffi.new("tg_error*"))
    _tls.client = scratch
    return scratch


def _client(
    sign: int, what: str, method: Any, target: Any, headers: Any, body: Any, body_sha256: Any,
    key_id: Any, token: Any, nonce: Any, signed_headers: Any, timestamp_ns: Any, secret: bytes,
) -> bytes:
    # str and bytes converted inline, as in verify; the helpers explain the rest.
    try:
        m = method.encode() if type(method) is str else method
        t = target.encode() if type(target) is str else target
        k = key_id.encode() if type(key_id) is str else key_id
        n = nonce.encode() if type(nonce) is str else nonce
        sh = signed_headers.encode() if type(signed_headers) is str else signed_headers
    except UnicodeError:
        m = t = k = n = sh = None
    if type(m) is not bytes:
        m = _text("method", method)
    if type(t) is not bytes:
        t = _text("target", target)
    if type(k) is not bytes:
        if key_id is None:
            raise TypeError("key_id must be str or bytes, not None")
        k = _text("key_id", key_id)
    if type(n) is not bytes:
        n = _text("nonce", nonce)
    if type(sh) is not bytes:
        sh = _signed_headers(signed_headers)
    tok = b"" if token is None else _text("token", token)
    if headers:
        hdata, hlens, n_headers = _pack_headers(headers)
    elif headers is None or type(headers) in _EMPTY_TYPES:
        hdata, hlens, n_headers = _NO_HEADERS
    else:
        hdata, hlens, n_headers = _pack_headers_slowly(headers)  # says why it is not headers
    if body_sha256 is None and type(body) is bytes:
        b, digest = body, NULL
    else:
        b, digest = _body(body, body_sha256)
    ts = timestamp_ns if type(timestamp_ns) is int and 0 <= timestamp_ns <= U64_MAX \
        else _uint("timestamp_ns", timestamp_ns)
    try:
        out, written, err = _tls.client
    except AttributeError:
        out, written, err = _client_out()
    cap = _SIGN_CAP
    while True:
        rc = _client1(sign, m, len(m), t, len(t), hdata, hlens, n_headers, b, len(b), digest, k,
                      len(k), tok, len(tok), n, len(n), sh, len(sh), ts, secret, len(secret), out,
                      cap, written, err)
        if rc != _ETOOSMALL or written[0] < cap:
            break
        cap = written[0] + 1
        out = ffi.new("char[]", cap)  # this call's only: the thread's stays small
    if rc:
        raise error_from_struct(rc, err, f"{what} failed")
    return ffi.unpack(out, written[0])  # type: ignore[no-any-return]


def sign_request(
    method: Text,
    target: Text,
    headers: Headers = None,
    body: Union[bytes, bytearray, memoryview, str, None] = b"",
    *,
    key_id: Text,
    secret: Union[bytes, bytearray, memoryview, str],
    signed_headers: Union[Text, Iterable[Text], None] = None,
    token: Optional[Text] = None,
    nonce: Optional[Text] = None,
    timestamp_ns: Optional[int] = None,
    body_sha256: Union[bytes, bytearray, memoryview, None] = None,
) -> str:
    """The Authorization header value for a request, signed with ``secret``.

    Args:
        method, target, headers, body, body_sha256: the request, as for
            :meth:`Authenticator.verify` (send exactly these bytes).
        key_id: the key's id (1..64 of ``[A-Za-z0-9._-]``).
        secret: the key's secret, 1..1024 bytes (a str is UTF-8 encoded).
        signed_headers: the headers to sign: a list of names (lower-cased
            and sorted here, e.g. ``["Host", "Content-Type"]``) or the exact
            list ``"content-type;host"``; each must occur once in
            ``headers``. Default: none.
        token: an optional token id (1..128 of ``[A-Za-z0-9._-]``).
        nonce: unique per request, 8..64 of ``[A-Za-z0-9._~-]``; default
            :func:`generate_nonce`.
        timestamp_ns: wall-clock Unix ns; default ``time.time_ns()``.

    Returns:
        The value, e.g. ``"TG1-HMAC-SHA256 KeyId=k1, Timestamp=..., Nonce=...,
        Signature=..."`` (ASCII).

    Raises:
        TypeError: an argument of the wrong type.
        InvalidArgumentError: a field the library cannot sign (``.message``
            names it, e.g. ``"cannot sign: missing_header"``) or a bad secret.
    """
    s = secret if type(secret) is bytes else _bytes_arg("secret", secret)
    if nonce is None:
        nonce = generate_nonce()
    if timestamp_ns is None:
        timestamp_ns = _time_ns()
    raw = _client(1, "tg_auth_sign", method, target, headers, body, body_sha256, key_id, token,
                  nonce, signed_headers, timestamp_ns, s)
    return raw.decode("ascii")


def canonical_request(
    method: Text,
    target: Text,
    headers: Headers = None,
    body: Union[bytes, bytearray, memoryview, str, None] = b"",
    *,
    key_id: Text,
    nonce: Text,
    timestamp_ns: int,
    signed_headers: Union[Text, Iterable[Text], None] = None,
    token: Optional[Text] = None,
    body_sha256: Union[bytes, bytearray, memoryview, None] = None,
) -> bytes:
    """The exact bytes :func:`sign_request` signs for these arguments (for
    debugging a signature mismatch, and for test vectors).

    Same arguments as :func:`sign_request`, without the secret; ``nonce``
    and ``timestamp_ns`` are required. Bytes, since header values may hold
    any octet but control bytes.
    """
    return _client(0, "tg_auth_canonical_request", method, target, headers, body, body_sha256,
                   key_id, token, nonce, signed_headers, timestamp_ns, b"")


def hmac_sha256(key: Union[bytes, bytearray, memoryview, str],
                msg: Union[bytes, bytearray, memoryview, str]) -> bytes:
    """HMAC-SHA256(key, msg), 32 bytes, computed by the library (str is
    UTF-8 encoded). Equal to ``hmac.digest(key, msg, "sha256")``."""
    k = _bytes_arg("key", key)
    m = _bytes_arg("msg", msg)
    out = ffi.new("uint8_t[32]")
    rc = lib.tg_hmac_sha256(k, len(k), m, len(m), out)
    if rc:
        raise error_for(rc, "tg_hmac_sha256 failed")
    return bytes(ffi.buffer(out))

