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
=====================  ==========================  =======================

Arguments of the wrong Python type raise plain :class:`TypeError`.

:class:`BreakerOpen` is not an error of the library: it is how the
``Breaker.call()`` context manager reports a rejected call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, Optional, Tuple, Type

from ._native import ffi, lib

if TYPE_CHECKING:  # pragma: no cover
    from .breaker import Permit

__all__ = [
    "TollgateError",
    "InvalidArgumentError",
    "NotFoundError",
    "StateError",
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


_BY_CODE: Dict[int, Type[TollgateError]] = {
    lib.TG_EINVAL: InvalidArgumentError,
    lib.TG_ERANGE: InvalidArgumentError,
    lib.TG_ENOTFOUND: NotFoundError,
    lib.TG_ESTATE: StateError,
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
