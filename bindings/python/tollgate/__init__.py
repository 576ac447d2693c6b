"""tollgate: an embeddable pre-trade gateway, over its stable C ABI.

This package wraps ``libtollgate`` (shipped inside the package) with cffi in
API mode. It offers:

* :class:`Limiter` - keyed GCRA rate limiting with tiers, a parent limit,
  shadow mode, a run-time multiplier and batch decisions
  (:meth:`Limiter.acquire_many`);
* :class:`Breaker` - a circuit breaker with a bulkhead, forced states,
  state-change events and a ``with breaker.call():`` form;
* :class:`RouteTable`, :class:`Router` - compiled route tables (method, host,
  path and header rules with a documented precedence and path
  normalisation), published atomically while other threads match
  (:meth:`Router.match_many`, :meth:`Router.route`);
* :class:`VenueSet` - weighted, least-latency or sticky venue selection that
  skips venues whose :class:`Breaker` would reject; :func:`normalize_path`;
* :class:`PriceCache` - market data cached until the price moves;
* :class:`RiskChecker` - pre-trade risk checks (kill switches, price
  collars against a :class:`PriceCache`, quantity, notional, per-account
  limits, duplicate client order ids), one order or a batch at a time;
* :class:`Authenticator` - HMAC-SHA256 request signatures with key
  rotation, replay protection and revocation, and the client side
  (:func:`sign_request`, :func:`canonical_request`, :func:`hmac_sha256`,
  :func:`generate_nonce`);
* :class:`Journal` - the compliance audit journal: tamper-evident,
  hash-chained, signed segment files written by a thread of its own or by
  :meth:`Journal.poll`, with tickets that say when a record is written or
  durable, and ``record_*`` methods that journal a :class:`Limiter`'s or a
  :class:`Breaker`'s decisions for :func:`replay_journal`;
  :func:`read_journal` iterates over the verified records (raising
  :class:`JournalCorruptError` where verification fails) and
  :func:`verify_journal` checks a whole journal.

Time is monotonic nanoseconds. Every decision method takes an optional
``now_ns``; without it the library's clock (:func:`now_ns`) is read.
Request authentication is the exception: its times are wall-clock Unix
nanoseconds (:func:`time.time_ns`), the clock clients stamp requests with.

Errors from the library raise :class:`TollgateError` (``.code``,
``.status``, ``.message``); rejections are ordinary return values. A
journal append that could not be taken raises a subclass saying what
happened to the entry: :class:`JournalFullError`,
:class:`JournalDroppedError`, :class:`JournalClosedError` or
:class:`JournalIOError`.
"""

from ._lib import LIBRARY_VERSION, now_ns
from ._native import lib as _lib_native
from .auth import (
    AUTH_DETAILS,
    AUTH_SCHEME,
    AuthEvent,
    AuthEventKind,
    Authenticator,
    AuthReason,
    AuthResult,
    AuthStats,
    auth_detail_name,
    auth_reason_name,
    canonical_request,
    generate_nonce,
    hmac_sha256,
    sign_request,
)
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
    JournalClosedError,
    JournalCorruptError,
    JournalDroppedError,
    JournalFullError,
    JournalIOError,
    NotFoundError,
    StateError,
    TollgateError,
    status_str,
)
from .journal import (
    JOURNAL_KIND_HOST_FIRST,
    JOURNAL_KIND_HOST_LAST,
    Journal,
    JournalDurability,
    JournalEvent,
    JournalEventType,
    JournalKind,
    JournalMode,
    JournalOnFull,
    JournalProblem,
    JournalReader,
    JournalRecord,
    JournalRecordType,
    JournalRecovery,
    JournalStats,
    ReplayComponent,
    ReplayIssue,
    ReplayMismatch,
    ReplayReport,
    VerifyReport,
    describe_journal_inputs,
    ed25519_public_key,
    journal_kind_name,
    read_journal,
    replay_journal,
    verify_journal,
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
from .price_cache import (
    CachedPrice,
    EvictionEvent,
    EvictReason,
    PriceBatch,
    PriceCache,
    PriceCacheStats,
    PriceKey,
    PriceOutcome,
    PriceResult,
    ThresholdUnit,
)
from .risk import (
    CollarUnit,
    KillScope,
    KillSwitchEvent,
    NoReferencePolicy,
    RiskBatch,
    RiskChecker,
    RiskDecision,
    RiskOrder,
    RiskReason,
    RiskStats,
    Side,
)
from .risk import reason_name as risk_reason_name
from .router import (
    MAX_REQUEST_HEADERS,
    MAX_ROUTE_PARAMS,
    HeaderOp,
    HeaderPredicate,
    InvalidRouteBuildError,
    PathRefusedError,
    Request,
    RouteBuildError,
    RouteDecision,
    RouteMatch,
    Router,
    RouteStatus,
    RouteTable,
    Rule,
    Venue,
    VenuePick,
    VenueReason,
    VenueSet,
    VenueStats,
    VenueStrategy,
    normalize_path,
)

__version__ = "0.2.0"

#: TG_VERSION_NUMBER of the header this binding was compiled against.
HEADER_VERSION_NUMBER: int = _lib_native.TG_VERSION_NUMBER

__all__ = [
    "AUTH_DETAILS",
    "AUTH_SCHEME",
    "AuthEvent",
    "AuthEventKind",
    "AuthReason",
    "AuthResult",
    "AuthStats",
    "Authenticator",
    "Breaker",
    "BreakerCall",
    "BreakerOpen",
    "BreakerReason",
    "BreakerState",
    "BreakerStats",
    "CachedPrice",
    "CollarUnit",
    "Event",
    "EvictReason",
    "EvictionEvent",
    "HEADER_VERSION_NUMBER",
    "HeaderOp",
    "HeaderPredicate",
    "InvalidArgumentError",
    "InvalidRouteBuildError",
    "JOURNAL_KIND_HOST_FIRST",
    "JOURNAL_KIND_HOST_LAST",
    "Journal",
    "JournalClosedError",
    "JournalCorruptError",
    "JournalDroppedError",
    "JournalDurability",
    "JournalEvent",
    "JournalEventType",
    "JournalFullError",
    "JournalIOError",
    "JournalKind",
    "JournalMode",
    "JournalOnFull",
    "JournalProblem",
    "JournalReader",
    "JournalRecord",
    "JournalRecordType",
    "JournalRecovery",
    "JournalStats",
    "KillScope",
    "KillSwitchEvent",
    "LIBRARY_VERSION",
    "LimitBatch",
    "LimitDecision",
    "LimitReason",
    "Limiter",
    "LimiterStats",
    "MAX_REQUEST_HEADERS",
    "MAX_ROUTE_PARAMS",
    "NoReferencePolicy",
    "NotFoundError",
    "Outcome",
    "PackedKeys",
    "PathRefusedError",
    "Permit",
    "PermitBatch",
    "PriceBatch",
    "PriceCache",
    "PriceCacheStats",
    "PriceKey",
    "PriceOutcome",
    "PriceResult",
    "RETRY_NEVER",
    "ReplayComponent",
    "ReplayIssue",
    "ReplayMismatch",
    "ReplayReport",
    "Request",
    "Reservation",
    "RiskBatch",
    "RiskChecker",
    "RiskDecision",
    "RiskOrder",
    "RiskReason",
    "RiskStats",
    "RouteBuildError",
    "RouteDecision",
    "RouteMatch",
    "RouteStatus",
    "RouteTable",
    "Router",
    "Rule",
    "Side",
    "StateError",
    "ThresholdUnit",
    "Tier",
    "TollgateError",
    "Venue",
    "VenuePick",
    "VenueReason",
    "VenueSet",
    "VenueStats",
    "VenueStrategy",
    "VerifyReport",
    "WindowType",
    "auth_detail_name",
    "auth_reason_name",
    "canonical_request",
    "describe_journal_inputs",
    "ed25519_public_key",
    "generate_nonce",
    "hmac_sha256",
    "journal_kind_name",
    "normalize_path",
    "now_ns",
    "read_journal",
    "replay_journal",
    "risk_reason_name",
    "sign_request",
    "status_str",
    "verify_journal",
]
