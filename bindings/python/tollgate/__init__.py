"""tollgate: an embeddable pre-trade gateway, over its stable C ABI.

This package wraps ``libtollgate`` (shipped inside the package) with cffi in
API mode. It offers:

* :class:`Limiter` - keyed GCRA rate limiting with tiers, a parent limit,
  shadow mode, a run-time multiplier and batch decisions
  (:meth:`Limiter.acquire_many`);
* :class:`Breaker` - a circuit breaker with a bulkhead, forced states,
  state-change events and a ``with breaker.call():`` form.

Time is monotonic nanoseconds. Every decision method takes an optional
``now_ns``; without it the library's clock (:func:`now_ns`) is read.

Errors from the library raise :class:`TollgateError` (``.code``,
``.status``, ``.message``); rejections are ordinary return values.
"""

from ._lib import LIBRARY_VERSION, now_ns
from ._native import lib as _lib_native
from .breaker import (
    Breaker,
    BreakerCall,
    BreakerReason,
    BreakerState,
    BreakerStats,
    Event,
    Outcome,
    Permit,
    PermitBatch,
    WindowType,
)
from .errors import (
    BreakerOpen,
    InvalidArgumentError,
    NotFoundError,
    StateError,
    TollgateError,
    status_str,
)
from .limiter import (
    RETRY_NEVER,
    LimitBatch,
    LimitDecision,
    Limiter,
    LimiterStats,
    LimitReason,
    PackedKeys,
    Reservation,
    Tier,
)

__version__ = "0.1.0"

#: TG_VERSION_NUMBER of the header this binding was compiled against.
HEADER_VERSION_NUMBER: int = _lib_native.TG_VERSION_NUMBER

__all__ = [
    "Breaker",
    "BreakerCall",
    "BreakerOpen",
    "BreakerReason",
    "BreakerState",
    "BreakerStats",
    "Event",
    "HEADER_VERSION_NUMBER",
    "InvalidArgumentError",
    "LIBRARY_VERSION",
    "LimitBatch",
    "LimitDecision",
    "LimitReason",
    "Limiter",
    "LimiterStats",
    "NotFoundError",
    "Outcome",
    "PackedKeys",
    "Permit",
    "PermitBatch",
    "RETRY_NEVER",
    "Reservation",
    "StateError",
    "Tier",
    "TollgateError",
    "WindowType",
    "now_ns",
    "status_str",
]
