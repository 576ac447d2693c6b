"""Exceptions raised by the tollgate binding.

Every failure reported by the C library becomes a :class:`TollgateError`
carrying the C status code (``.code``), its name (``.status``, e.g.
``"TG_EINVAL"``) and a human-readable ``.message`` (the library's ``tg_error``
text where the call provides one, else a message written by the binding).

A few subclasses let callers catch by kind, and also derive from the
matching built-in exception, so ``except ValueError`` works for bad values:

=====================  ==========================  =======================
class                  C codes                     also a
=====================  ==========================  =======================
InvalidArgumentError   TG_EINVAL, TG_ERANGE        ValueError
NotFoundError          TG_ENOTFOUND                LookupError
StateError             TG_ESTATE                   RuntimeError
JournalClosedError     TG_ESTATE (a closed         StateError
                       journal's appends)
JournalFullError       TG_EFULL
JournalDroppedError    TG_EDROPPED
JournalIOError         TG_EIO
JournalCorruptError    TG_EIO (reading: a record
                       failed verification)
=====================  ==========================  =======================

Arguments of the wrong Python type raise plain :class:`TypeError`.

The journal's append errors say what happened to the entry: it was refused
(:class:`JournalFullError`: the ring is full and the policy is ``reject``,
fail the request closed), dropped (:class:`JournalDroppedError`: the policy
is ``drop``, and the journal records how many were lost), or not taken
because the journal is closed (:class:`JournalClosedError`) or stopped by
an I/O error (:class:`JournalIOError`).

:class:`BreakerOpen` is not an error of the library: it is how the
``Breaker.call()`` context manager reports a rejected call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, Optional, Tuple, Type

from ._native import ffi, lib

if TYPE_CHECKING:  # pragma: no cover
    from .breaker import Permit
    from .journal import JournalProblem

__all__ = [
    "TollgateError",
    "InvalidArgumentError",
    "NotFoundError",
    "StateError",
    "JournalClosedError",
    "JournalFullError",
    "JournalDroppedError",
    "JournalIOError",
    "JournalCorruptError",
    "BreakerOpen",
    "status_str",
]


def status_str(code: int) -> str:
    """The name of a status code (``"TG_EINVAL"``), or ``"TG_UNKNOWN"``."""
    name: bytes = ffi.string(lib.tg_status_str(int(code)))
    return name.decode("ascii", "replace")


class TollgateError(Exception):
    """A call into the tollgate library failed.

    Attributes:
        code: the C status code (a negative ``TG_E*`` value).
        status: the name of the code, from ``tg_status_str`` (``"TG_EINVAL"``).
        message: what went wrong, in words.
    """

    code: int
    status: str
    message: str

    def __init__(self, code: int, message: str = "") -> None:
        self.code = int(code)
        self.status = status_str(self.code)
        self.message = message or self.status
        super().__init__(f"{self.status}: {self.message}")

    def __reduce__(self) -> Tuple[Any, ...]:
        return (type(self), (self.code, self.message))


class InvalidArgumentError(TollgateError, ValueError):
    """An argument is malformed or out of range (TG_EINVAL, TG_ERANGE)."""


class NotFoundError(TollgateError, LookupError):
    """A named entity, such as a tier, does not exist (TG_ENOTFOUND)."""


class StateError(TollgateError, RuntimeError):
    """The operation is not allowed in the object's state (TG_ESTATE)."""


class JournalClosedError(StateError):
    """The journal is closed: the entry was not taken (TG_ESTATE)."""


class JournalFullError(TollgateError):
    """The journal's ring is full and its policy is ``reject`` (TG_EFULL).

    The entry was not taken and nothing records it: fail the request
    closed (or retry it). Counted in ``Journal.stats().rejected``.
    """


class JournalDroppedError(TollgateError):
    """The journal's ring was full and its policy is ``drop`` (TG_EDROPPED).

    The entry was dropped; the journal counts it
    (``Journal.stats().dropped``) and writes a ``records_dropped`` record,
    so the loss is visible in the journal itself.
    """


class JournalIOError(TollgateError):
    """An I/O error stopped the journal, or it cannot be used (TG_EIO).

    Nothing is written or acknowledged after the error; the message names
    the file, the offset and the errno. Opening a damaged journal also
    raises it (``verify_journal`` locates the damage).
    """


class JournalCorruptError(TollgateError):
    """Reading stopped at a record that failed verification.

    ``problem`` (a :class:`~tollgate.JournalProblem`) says what and where:
    its ``category`` (``"manifest"``, ``"header"``, ``"record"``, ``"seal"``,
    ``"torn_tail"``, ...), ``file``, ``segment``, byte ``offset``,
    ``sequence`` and ``message``. Every record yielded before it was
    verified. ``code`` is TG_EIO, as for a damaged journal that cannot be
    opened.
    """

    problem: "JournalProblem"

    def __init__(self, problem: "JournalProblem") -> None:
        self.problem = problem
        details = [f"segment {problem.segment}"] if problem.segment else []
        if problem.segment or problem.offset:
            details.append(f"offset {problem.offset}")
        if problem.sequence:
            details.append(f"sequence {problem.sequence}")
        where = problem.file or "the journal"
        if details:
            where += f" ({', '.join(details)})"
        super().__init__(lib.TG_EIO, f"{problem.category} problem in {where}: {problem.message}")

    def __reduce__(self) -> Tuple[Any, ...]:
        return (type(self), (self.problem,))


_BY_CODE: Dict[int, Type[TollgateError]] = {
    lib.TG_EINVAL: InvalidArgumentError,
    lib.TG_ERANGE: InvalidArgumentError,
    lib.TG_ENOTFOUND: NotFoundError,
    lib.TG_ESTATE: StateError,
    lib.TG_EFULL: JournalFullError,
    lib.TG_EDROPPED: JournalDroppedError,
    lib.TG_EIO: JournalIOError,
}


def error_for(code: int, message: str = "") -> TollgateError:
    """The exception for status ``code``, of the most precise class."""
    return _BY_CODE.get(int(code), TollgateError)(code, message)


def error_from_struct(code: int, err: Any, fallback: str = "") -> TollgateError:
    """The exception for ``code`` with the message a ``tg_error*`` received."""
    message = ""
    if err is not None and err.code == code:
        message = ffi.string(err.message).decode("utf-8", "replace")
    return error_for(code, message or fallback)


def invalid(message: str) -> InvalidArgumentError:
    """A TG_EINVAL error detected by the binding before calling the library."""
    return InvalidArgumentError(lib.TG_EINVAL, message)


class BreakerOpen(Exception):
    """The breaker rejected the call (open, forced open, or bulkhead full).

    Raised by ``Breaker.call()``; the rejected permit tells why and for how
    long (``retry_after_ns``).
    """

    permit: "Permit"

    def __init__(self, permit: "Permit", breaker_name: Optional[str] = None) -> None:
        self.permit = permit
        reason = permit.reason
        name = getattr(reason, "name", str(reason))
        where = f" {breaker_name!r}" if breaker_name else ""
        super().__init__(
            f"breaker{where} rejected the call: {name} (state {getattr(permit.state, 'name', permit.state)}, "
            f"retry after {permit.retry_after_ns} ns)"
        )

    @property
    def reason(self) -> Any:
        """The permit's rejection reason (a ``BreakerReason``)."""
        return self.permit.reason

    @property
    def retry_after_ns(self) -> int:
        """Nanoseconds until the breaker may admit again (0 if unknown)."""
        return self.permit.retry_after_ns
