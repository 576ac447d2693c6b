"""Compliance audit journal (``tg_journal``): writing, reading, verifying, replaying.

A :class:`Journal` keeps every decision and control event in append-only
segment files of hash-chained records (a CRC32C each, a SHA-256 chain
through all of them, Ed25519-signed checkpoints and a signed manifest; the
format is ``docs/journal-format.md``). :meth:`Journal.append` copies an
entry into a bounded ring (no lock, no allocation, no system call) and
returns a *ticket*; a writer (a thread the journal owns, ``mode="thread"``,
or the host calling :meth:`Journal.poll` from its loop, ``mode="poll"``)
writes batches and syncs them as ``durability`` asks. A ticket can be asked
whether its record is *written* (survives the process being killed) or
*durable* (fdatasync'ed: survives a power loss).

Nothing accepted is lost silently: an append returns a ticket that will be
written, or raises :class:`~tollgate.JournalFullError` (ring full, policy
``"reject"``: fail the request closed), :class:`~tollgate.JournalDroppedError`
(ring full, policy ``"drop"``: the journal counts the drop and writes a
``records_dropped`` record), :class:`~tollgate.JournalClosedError` or
:class:`~tollgate.JournalIOError` (the writer stopped after an I/O error;
:meth:`Journal.status` says which).

The ``record_limiter_*`` and ``record_breaker_*`` methods journal a
:class:`~tollgate.Limiter`'s or a :class:`~tollgate.Breaker`'s configuration,
decisions, outcomes and transitions with everything a replay needs;
:func:`replay_journal` rebuilds each instance, decides again and reports
every difference. Pass the same ``now_ns`` to the policy and to the record
(the binding's decision objects do not carry the time the library read),
and journal each instance's decisions in the order they were made.

Reading: :func:`read_journal` (a :class:`JournalReader`) yields every
verified record as a :class:`JournalRecord`; when it reaches a record that
fails verification it raises :class:`~tollgate.JournalCorruptError` (whose
``problem`` says what and where) instead of ending quietly, so a ``for``
loop over a tampered journal cannot pass for a complete read.
:func:`verify_journal` checks a whole journal and returns a
:class:`VerifyReport`.

Threads: ``append``, ``is_written``, ``is_durable``, the ``record_*``
methods, ``status`` and ``stats`` may be called from any number of threads
at once; ``poll``, ``sync``, ``wait_durable`` and ``close`` from any thread
(the writer's work is serialised by the library). ``close`` may race with
appends on other threads: each of them either raises
:class:`~tollgate.JournalClosedError` or gets a ticket that ``close``
writes before the final seal.
"""

from __future__ import annotations

import atexit
import builtins
import enum
import itertools
import json
import math
import os
import re
import struct
import sys
import threading
import traceback
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

from ._lib import NULL, U32_MAX, U64_MAX, check_float, check_uint, coerce_key, ffi, lib
from .breaker import _STATE_NAMES, Breaker, BreakerState, Event, Outcome, Permit, _outcome
from .errors import (
    InvalidArgumentError,
    JournalClosedError,
    JournalCorruptError,
    JournalDroppedError,
    JournalFullError,
    JournalIOError,
    StateError,
    TollgateError,
    error_for,
    error_from_struct,
    invalid,
)
from .limiter import LimitDecision, Limiter, Reservation

__all__ = [
    "JOURNAL_KIND_HOST_FIRST",
    "JOURNAL_KIND_HOST_LAST",
    "Journal",
    "JournalDurability",
    "JournalEvent",
    "JournalEventType",
    "JournalKind",
    "JournalMode",
    "JournalOnFull",
    "JournalProblem",
    "JournalReader",
    "JournalRecord",
    "JournalRecordType",
    "JournalRecovery",
    "JournalStats",
    "ReplayComponent",
    "ReplayIssue",
    "ReplayMismatch",
    "ReplayReport",
    "VerifyReport",
    "describe_journal_inputs",
    "ed25519_public_key",
    "journal_kind_name",
    "read_journal",
    "replay_journal",
    "verify_journal",
]


# -- enumerations -----------------------------------------------------------------------


class JournalMode(enum.IntEnum):
    """Who does the writer's work (``TG_JOURNAL_WRITER_*``)."""

    THREAD = lib.TG_JOURNAL_WRITER_THREAD  # a thread the journal owns
    POLL = lib.TG_JOURNAL_WRITER_POLL  # the host calls Journal.poll()


class JournalDurability(enum.IntEnum):
    """When the writer fdatasyncs (``TG_JOURNAL_DURABILITY_*``)."""

    NONE = lib.TG_JOURNAL_DURABILITY_NONE  # only when a segment is sealed
    EVERY_N_RECORDS = lib.TG_JOURNAL_DURABILITY_EVERY_N_RECORDS  # sync_every_records
    EVERY_T_US = lib.TG_JOURNAL_DURABILITY_EVERY_T_US  # sync_every_us after a write
    EVERY_RECORD = lib.TG_JOURNAL_DURABILITY_EVERY_RECORD  # every batch (group commit)


class JournalOnFull(enum.IntEnum):
    """What an append does when the ring is full (``TG_JOURNAL_ON_FULL_*``)."""

    REJECT = lib.TG_JOURNAL_ON_FULL_REJECT  # JournalFullError: fail closed
    BLOCK = lib.TG_JOURNAL_ON_FULL_BLOCK  # wait for room
    DROP = lib.TG_JOURNAL_ON_FULL_DROP  # JournalDroppedError, counted and recorded


class JournalKind(enum.IntEnum):
    """Event kinds (``TG_JOURNAL_KIND_*``).

    Hosts append the first six and their own kinds in
    ``JOURNAL_KIND_HOST_FIRST .. JOURNAL_KIND_HOST_LAST``; the last two are
    written by the journal itself.
    """

    DECISION = lib.TG_JOURNAL_KIND_DECISION
    BREAKER_TRANSITION = lib.TG_JOURNAL_KIND_BREAKER_TRANSITION
    CONFIG_CHANGE = lib.TG_JOURNAL_KIND_CONFIG_CHANGE
    KEY_REVOCATION = lib.TG_JOURNAL_KIND_KEY_REVOCATION
    KILL_SWITCH = lib.TG_JOURNAL_KIND_KILL_SWITCH
    RISK_CHECK = lib.TG_JOURNAL_KIND_RISK_CHECK
    RECORDS_DROPPED = lib.TG_JOURNAL_KIND_RECORDS_DROPPED
    TAIL_TRUNCATED = lib.TG_JOURNAL_KIND_TAIL_TRUNCATED


#: The first and last event kinds left to hosts.
JOURNAL_KIND_HOST_FIRST: int = lib.TG_JOURNAL_KIND_HOST_FIRST
JOURNAL_KIND_HOST_LAST: int = lib.TG_JOURNAL_KIND_HOST_LAST


class JournalEventType(enum.IntEnum):
    """What a :class:`JournalEvent` reports (``TG_JOURNAL_EVENT_*``)."""

    IO_ERROR = lib.TG_JOURNAL_EVENT_IO_ERROR  # the journal stopped (status, error_number)
    TAIL_TRUNCATED = lib.TG_JOURNAL_EVENT_TAIL_TRUNCATED  # recovery cut `count` bytes at offset
    CHECKPOINT = lib.TG_JOURNAL_EVENT_CHECKPOINT  # sequence, head
    ROTATED = lib.TG_JOURNAL_EVENT_ROTATED  # a new segment
    RECORDS_DROPPED = lib.TG_JOURNAL_EVENT_RECORDS_DROPPED  # `count` entries dropped


class JournalRecordType(enum.IntEnum):
    """The type of a :class:`JournalRecord` (``TG_JOURNAL_RECORD_*``)."""

    EVENT = lib.TG_JOURNAL_RECORD_EVENT
    CHECKPOINT = lib.TG_JOURNAL_RECORD_CHECKPOINT


class ReplayComponent(enum.IntEnum):
    """Which policy a replay difference is about (``TG_JOURNAL_COMPONENT_*``)."""

    LIMITER = lib.TG_JOURNAL_COMPONENT_LIMITER
    BREAKER = lib.TG_JOURNAL_COMPONENT_BREAKER


_KINDS: Dict[int, JournalKind] = {int(k): k for k in JournalKind}
_KIND_NAMES: Dict[str, JournalKind] = {k.name.lower(): k for k in JournalKind}
_EVENT_TYPES: Dict[int, JournalEventType] = {int(t): t for t in JournalEventType}
_RECORD_TYPES: Dict[int, JournalRecordType] = {int(t): t for t in JournalRecordType}
_COMPONENTS: Dict[int, ReplayComponent] = {int(c): c for c in ReplayComponent}
_MODE_NAMES = {m.name.lower(): m for m in JournalMode}
_DURABILITY_NAMES = {d.name.lower(): d for d in JournalDurability}
_ON_FULL_NAMES = {p.name.lower(): p for p in JournalOnFull}
_NO_PARENT: int = lib.TG_JOURNAL_NO_PARENT
_MAX_ACCOUNT = 255
_MAX_KEY = 1024  # the longest key a limiter record carries


def _enum_arg(name: str, value: Any, names: Dict[str, Any]) -> int:
    """An option given as an enum member, its int value, or its name."""
    if isinstance(value, str):
        member = names.get(value.lower())
        if member is None:
            choices = ", ".join(repr(n) for n in names)
            raise invalid(f"{name} must be one of {choices}, not {value!r}")
        return int(member)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be a str or an int, not {type(value).__name__}")
    if int(value) not in {int(m) for m in names.values()}:
        raise invalid(f"{name} {value!r} is not a known value")
    return int(value)


# -- value objects ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JournalEvent:
    """What the journal tells its ``on_event`` callback.

    Attributes:
        type: a :class:`JournalEventType`.
        status: IO_ERROR: the TG_E* code (TG_EIO); else 0.
        error_number: IO_ERROR: the errno.
        segment: the segment concerned.
        offset: IO_ERROR, TAIL_TRUNCATED: the byte offset in the segment.
        count: TAIL_TRUNCATED: bytes cut; RECORDS_DROPPED: entries dropped.
        sequence: CHECKPOINT: the checkpoint's sequence number.
        realtime_ns: when it happened (wall clock).
        head: CHECKPOINT: the 32-byte chain head it signs (export it to
            detect a rollback of the whole directory).
        message: IO_ERROR: what failed; else "".
    """

    type: Union[JournalEventType, int]
    status: int
    error_number: int
    segment: int
    offset: int
    count: int
    sequence: int
    realtime_ns: int
    head: bytes
    message: str


@dataclass(frozen=True, slots=True)
class JournalStats:
    """Counters of an open journal (``tg_journal_stats``)."""

    written: int  # host entries written
    rejected: int  # JournalFullError
    dropped: int  # JournalDroppedError
    checkpoints: int  # since open
    syncs: int  # fdatasync calls since open
    batches: int  # since open
    bytes: int  # written since open
    next_sequence: int  # the sequence number the next record gets
    segment: int  # the open segment
    written_ticket: int  # every ticket <= this is written
    durable_ticket: int  # every ticket <= this is durable


@dataclass(frozen=True, slots=True)
class JournalRecovery:
    """What opening the journal found and did (``tg_journal_recovery``)."""

    created: bool  # a new journal
    tail_truncated: bool  # a torn tail was cut
    segment: int  # the segment recovered
    offset: int  # where the torn tail began
    bytes_removed: int
    records: int  # valid records in the recovered segment
    next_sequence: int


@dataclass(frozen=True, slots=True)
class JournalProblem:
    """Where and why verification stopped, or a warning.

    Attributes:
        category: ``"manifest"``, ``"directory"``, ``"header"``,
            ``"record"``, ``"seal"``, ``"torn_tail"``, ...
        file: the file concerned (``"seg-0000000000000001.tgj"``,
            ``"MANIFEST"``), or "".
        segment: its segment number (0: n/a).
        offset: the byte offset in that file.
        sequence: the sequence number expected there (0: n/a).
        message: what is wrong, in words.
    """

    category: str
    file: str
    segment: int
    offset: int
    sequence: int
    message: str

    def __str__(self) -> str:
        where = self.file or "journal"
        return f"{self.category}: {where} at offset {self.offset}: {self.message}"


@dataclass(frozen=True, slots=True)
class JournalRecord:
    """One verified record, as :class:`JournalReader` yields it.

    Checkpoints (``type`` CHECKPOINT) have ``kind`` 0, ``kind_name``
    ``"checkpoint"`` and empty account, inputs and payload;
    ``checkpoint_flags`` is 1 for a seal, 3 for the close seal.

    Attributes:
        type: a :class:`JournalRecordType`.
        kind: a :class:`JournalKind`, or the int of a host kind.
        kind_name: ``"decision"``, ``"host:0x8001"``, ... (the library's name).
        flags: events: 1 the payload is stored, 2 the payload digest is set.
        checkpoint_flags: checkpoints: 1 seal, 2 close.
        sequence: 1, 2, ... over the whole journal, checkpoints included.
        realtime_ns, monotonic_ns: the entry's timestamps.
        config_version, route, venue, verdict, reason: as appended.
        segment, offset: where the record is (segment number, byte offset).
        account, inputs: copies of the bytes appended.
        payload: the payload when it was stored, else ``b""``.
        payload_digest: the SHA-256 of the payload (32 bytes), None when
            the entry had no payload.
        prev: the chain value before this record (32 bytes).
        replay: when ``inputs`` are replay inputs (written by a
            ``record_*`` method), their description decoded from JSON
            (``{"component": "limiter", "op": "acquire", "instance": 1,
            "key": "...", ...}``); None for the host's own bytes. A key in
            it is the key's bytes as code points 0..255:
            ``replay["key"].encode("latin-1")`` gives them back.
    """

    type: Union[JournalRecordType, int]
    kind: Union[JournalKind, int]
    kind_name: str
    flags: int
    checkpoint_flags: int
    sequence: int
    realtime_ns: int
    monotonic_ns: int
    config_version: int
    route: int
    venue: int
    verdict: int
    reason: int
    segment: int
    offset: int
    account: bytes
    inputs: bytes
    payload: bytes
    payload_digest: Optional[bytes]
    prev: bytes
    replay: Optional[Dict[str, Any]] = field(hash=False)

    @property
    def is_checkpoint(self) -> bool:
        """Whether this is a checkpoint rather than an event."""
        return self.type == JournalRecordType.CHECKPOINT

    @property
    def payload_stored(self) -> bool:
        """Whether the payload itself was kept (not only its digest)."""
        return bool(self.flags & 1)


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """The verdict of :func:`verify_journal`; true when ``ok``.

    Attributes:
        ok: no error (warnings allowed).
        closed: the journal ends with a close checkpoint.
        segments, records, events, checkpoints, bytes: what was verified
            (``records`` counts checkpoints too).
        last_sequence: the sequence number of the last verified record.
        first_realtime_ns, last_realtime_ns: the time span covered.
        warning_count: torn or unsigned tails (errors with ``strict``).
        id: the journal's 16-byte id.
        key: its 32-byte Ed25519 public key.
        head: the chain value after the last verified record.
        error: the first error, or None.
        first_warning: the first warning, or None.
    """

    ok: bool
    closed: bool
    segments: int
    records: int
    events: int
    checkpoints: int
    bytes: int
    last_sequence: int
    first_realtime_ns: int
    last_realtime_ns: int
    warning_count: int
    id: builtins.bytes  # (`bytes` is a field above)
    key: builtins.bytes
    head: builtins.bytes
    error: Optional[JournalProblem]
    first_warning: Optional[JournalProblem]

    def __bool__(self) -> bool:
        return self.ok


@dataclass(frozen=True, slots=True)
class ReplayMismatch:
    """The first decision or transition a replay decided differently.

    ``recorded`` is what the journal says was decided, ``replayed`` what the
    replay decided (both in words, e.g. ``"allowed reason=none ..."``).
    """

    sequence: int
    segment: int
    offset: int
    component: Union[ReplayComponent, int]
    instance: int
    recorded: str
    replayed: str


@dataclass(frozen=True, slots=True)
class ReplayIssue:
    """The first record whose replay inputs could not be used."""

    sequence: int
    message: str


@dataclass(frozen=True, slots=True)
class ReplayReport:
    """The result of :func:`replay_journal`; true when ``ok``.

    Attributes:
        ok: verified, no difference and no issue.
        records: verified records read.
        replayed: records fed through a limiter or breaker.
        decisions: decisions compared (limiter acquire and reserve,
            breaker acquire).
        transitions: breaker transitions compared.
        instances: limiter and breaker definitions.
        other: events without replay inputs (skipped).
        mismatches: decisions or transitions that differ.
        issues: unusable inputs (malformed, an undefined instance, ...).
        error: where the journal failed verification (the replay stopped
            there), or None.
        first_mismatch: the first difference, or None.
        first_issue: the first issue, or None.
    """

    ok: bool
    records: int
    replayed: int
    decisions: int
    transitions: int
    instances: int
    other: int
    mismatches: int
    issues: int
    error: Optional[JournalProblem]
    first_mismatch: Optional[ReplayMismatch]
    first_issue: Optional[ReplayIssue]

    def __bool__(self) -> bool:
        return self.ok


# -- argument helpers -------------------------------------------------------------------


def _directory(directory: Any) -> bytes:
    """A directory (str, bytes or os.PathLike) as the bytes C takes."""
    if isinstance(directory, (str, bytes)) or hasattr(directory, "__fspath__"):
        path = os.fsencode(directory)
    else:
        raise TypeError(
            f"directory must be a str, bytes or os.PathLike, not {type(directory).__name__}")
    if not path:
        raise invalid("directory must not be empty")
    if b"\0" in path:
        raise invalid("directory must not contain NUL")
    return path


def _blob(name: str, value: Any) -> bytes:
    """Bytes-like (copied) or str (UTF-8)."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8")
    raise TypeError(f"{name} must be bytes or str, not {type(value).__name__}")


def _bytes32(name: str, value: Any) -> bytes:
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise TypeError(f"{name} must be 32 bytes, not {type(value).__name__}")
    raw = bytes(value)
    if len(raw) != 32:
        raise invalid(f"{name} must be 32 bytes, not {len(raw)}")
    return raw


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, int)):
        raise TypeError(f"{name} must be a bool, not {type(value).__name__}")
    return bool(value)


def _text(raw: Any) -> str:
    return ffi.string(raw).decode("utf-8", "replace")  # type: ignore[no-any-return]


def _problem(p: Any) -> Optional[JournalProblem]:
    if not p.found:
        return None
    return JournalProblem(
        category=_text(p.category),
        file=_text(p.file),
        segment=int(p.segment),
        offset=int(p.offset),
        sequence=int(p.sequence),
        message=_text(p.message),
    )


def _read_options(public_key: Any, strict: Any) -> Tuple[Any, Any]:
    """tg_journal_read_options for (public_key, strict), and what it points at."""
    opts = ffi.new("tg_journal_read_options*")
    lib.tg_journal_read_options_init(opts)
    opts.strict = 1 if _flag("strict", strict) else 0
    key = NULL
    if public_key is not None:
        key = ffi.new("uint8_t[32]", _bytes32("public_key", public_key))
        opts.public_key = key
    return opts, key


# The ctx arguments of a record_* helper when no context is given.
_NO_CTX = (b"", 0, 0, 0, 0, 0, 0, NULL, 0, 0)


def _ctx(
    account: Any,
    route: Any,
    venue: Any,
    config_version: Any,
    realtime_ns: Any,
    monotonic_ns: Any,
    payload: Any,
    store_payload: Any,
) -> Tuple[Any, ...]:
    """The record context as the helpers' trailing scalar arguments."""
    if account is None:
        acc = b""
    elif type(account) is bytes:
        acc = account
    else:
        acc = _blob("account", account)
    if payload is None:
        p: Any = NULL
        plen = 0
    else:
        p = _blob("payload", payload)
        plen = len(p)
    return (acc, len(acc), route, venue, config_version, realtime_ns, monotonic_ns, p, plen,
            1 if store_payload else 0)


_CTX_INTS = (
    ("route", 2, U32_MAX),
    ("venue", 3, U32_MAX),
    ("config_version", 4, U64_MAX),
    ("realtime_ns", 5, U64_MAX),
    ("monotonic_ns", 6, U64_MAX),
)


def _explain(exc: Exception, checks: List[Tuple[str, Any, int]]) -> Exception:
    """A clear error for arguments cffi could not convert."""
    for name, value, maximum in checks:
        try:
            check_uint(name, value, maximum)
        except (TypeError, ValueError) as explained:
            return explained
    if isinstance(exc, OverflowError):
        return invalid(str(exc))
    return exc


# -- the event callback -----------------------------------------------------------------

# Journals with an on_event callback, by the integer passed to C as `user`.
# Weak references: a callback never keeps a journal alive.
_registry: Dict[int, "weakref.ref[Journal]"] = {}
_next_id = itertools.count(1)
_tls = threading.local()


@ffi.def_extern(name="_tollgate_journal_event")  # type: ignore[untyped-decorator]
def _on_journal_event(user: Any, ev: Any) -> None:
    reg_id = int(ffi.cast("uintptr_t", user))
    ref = _registry.get(reg_id)
    journal = ref() if ref is not None else None
    if journal is None:
        return
    callback = journal._callback
    journal = None  # no strong reference from this thread while the callback runs
    if callback is None:
        return
    notifying: Optional[List[int]] = getattr(_tls, "notifying", None)
    if notifying is None:
        notifying = _tls.notifying = []
    notifying.append(reg_id)
    try:
        etype: int = ev.type
        callback(
            JournalEvent(
                type=_EVENT_TYPES.get(etype, etype),
                status=int(ev.status),
                error_number=int(ev.error_number),
                segment=int(ev.segment),
                offset=int(ev.offset),
                count=int(ev.count),
                sequence=int(ev.sequence),
                realtime_ns=int(ev.realtime_ns),
                head=bytes(ffi.buffer(ev.head)),
                message=_text(ev.message) if ev.message != NULL else "",
            )
        )
    except BaseException as exc:  # noqa: BLE001 - the C frames above cannot unwind
        box: Optional[List[BaseException]] = getattr(_tls, "callback_errors", None)
        if box is not None:
            # A Journal method on this thread (open, poll, sync, wait_durable,
            # close) is waiting in C: it raises the first exception once the
            # library has returned.
            box.append(exc)
        else:
            # The journal's own writer thread: nobody to raise to. Do as the
            # breaker's event callback does.
            sys.stderr.write("tollgate: exception in a journal on_event callback (ignored):\n")
            traceback.print_exc()
    finally:
        notifying.pop()


def _capturing(fn: Any, *args: Any) -> Tuple[int, List[BaseException]]:
    """Call ``fn(*args)``, collecting what ``on_event`` raises on this thread."""
    box: List[BaseException] = []
    outer = getattr(_tls, "callback_errors", None)
    _tls.callback_errors = box
    try:
        rc: int = fn(*args)
    finally:
        _tls.callback_errors = outer
    return rc, box


def _raise_first(box: List[BaseException]) -> None:
    first = box[0]
    if len(box) > 1 and hasattr(first, "add_note"):
        first.add_note(
            f"tollgate: on_event raised {len(box)} exceptions during this call; "
            "this is the first, the others were dropped"
        )
    raise first


def _free_journal(ptr: Any) -> None:
    """The finalizer of a journal handle: tg_journal_free, which closes it.

    The last reference to a Journal can go inside an event callback (the
    cyclic garbage collector may run there), where tg_journal_free is
    ignored (it would have to join the thread it runs on): then the handle
    is freed by a short-lived thread instead, so that the journal is still
    sealed and its thread stopped.
    """
    if getattr(_tls, "notifying", None):
        try:
            threading.Thread(target=lib.tg_journal_free, args=(ptr,),
                             name="tollgate-journal-free", daemon=True).start()
            return
        except RuntimeError:  # interpreter shutdown: nothing more can be done
            return
    lib.tg_journal_free(ptr)


# Journals not yet closed, closed at interpreter exit so that what their
# rings hold is written and sealed.
_open_journals: "weakref.WeakSet[Journal]" = weakref.WeakSet()


@atexit.register
def _close_open_journals() -> None:
    for journal in list(_open_journals):
        try:
            journal.close()
        except BaseException:  # noqa: BLE001 - exiting: report and go on
            sys.stderr.write("tollgate: closing a journal at exit failed:\n")
            traceback.print_exc()


# -- the writer -------------------------------------------------------------------------

_U64_OPTIONS = (
    "sync_every_records",
    "sync_every_us",
    "ring_cells",
    "max_entry_bytes",
    "checkpoint_every_records",
    "checkpoint_every_ms",
    "max_segment_bytes",
    "max_segment_age_ms",
    "max_batch_records",
    "idle_sleep_us",
)

_append1 = lib.tgpy_journal_append1
_flag1 = lib.tgpy_journal_flag
_E_FULL = lib.TG_EFULL
_E_DROPPED = lib.TG_EDROPPED
_E_STATE = lib.TG_ESTATE
_E_IO = lib.TG_EIO
_E_RANGE = lib.TG_ERANGE
_E_INVAL = lib.TG_EINVAL
# wait_durable: the longest single wait handed to C (the library computes
# now + timeout_us * 1000 in 64 bits); longer waits loop.
_MAX_WAIT_US = 3_600_000_000

OnEvent = Callable[[JournalEvent], Any]


class Journal:
    """An open audit journal (``tg_journal``).

    Args:
        directory: where the journal lives (str, bytes or os.PathLike);
            created if missing (unless ``create_if_missing=False``), or
            opened and recovered: a torn tail left by a crash is cut
            (:attr:`recovery`, a TAIL_TRUNCATED event).
        signing_seed: the 32-byte Ed25519 seed that signs checkpoints and
            the manifest (not all zero). Reopening needs the same seed.
        mode: ``"thread"`` (default: the journal owns a writer thread) or
            ``"poll"`` (call :meth:`poll` from your loop).
        durability: ``"every_record"`` (default: fdatasync every batch,
            group commit), ``"every_n_records"`` (``sync_every_records``),
            ``"every_t_us"`` (``sync_every_us`` after a write) or
            ``"none"`` (only when a segment is sealed).
        on_full: when the ring is full, ``"reject"`` (default: raise
            :class:`~tollgate.JournalFullError`), ``"drop"`` (raise
            :class:`~tollgate.JournalDroppedError`; counted and recorded)
            or ``"block"`` (wait for room: in poll mode another thread must
            be polling meanwhile, or the append never returns).
        sync_every_records, sync_every_us, ring_cells, max_entry_bytes,
        checkpoint_every_records, checkpoint_every_ms, max_segment_bytes,
        max_segment_age_ms, max_batch_records, idle_sleep_us: the
            ``tg_journal_options`` fields of these names; None keeps the
            library's default (64, 1000 us, 65536 cells of 64 bytes, 4096
            bytes, 1024 records, 1000 ms, 64 MiB, 1 hour, 4096, 50 us).
            ``max_entry_bytes`` bounds account + inputs + payload of an
            entry (an unstored payload counts unless its digest is given)
            and must fit twice in the ring.
        create_if_missing: create a new journal when there is none.
        on_event: ``on_event(event)`` with a :class:`JournalEvent` for every
            checkpoint, rotation, drop report, torn tail cut at open, and
            I/O error. It runs on the thread doing the writer's work: the
            journal's thread, or the one in the constructor, :meth:`poll`,
            :meth:`sync`, :meth:`wait_durable` (poll mode) or :meth:`close`.
            From inside it, ``poll``, ``sync``, ``wait_durable`` and
            ``close`` of this journal raise :class:`~tollgate.StateError`.
            An exception it raises on a thread where one of those calls (or
            the constructor) is waiting is raised from that call once the
            library has returned (the work was done; a constructor closes
            the journal first); on the journal's own thread there is no
            call to raise it from, so it is printed to stderr and ignored,
            as for :meth:`Breaker.on_event`. A slow callback slows the
            writer.

    Raises:
        InvalidArgumentError: a bad option, or a seed that is not the
            journal's key (``.message`` says which).
        JournalIOError: the directory cannot be used, or the journal is
            damaged beyond a torn tail (:func:`verify_journal` locates it).
        NotFoundError: no journal there and ``create_if_missing`` is off.
        StateError: the directory holds unknown segment files.

    :meth:`close` (or leaving a ``with`` block) drains the ring, seals the
    segment and marks the journal closed; journals still open when the
    interpreter exits are closed then. The handle itself is released when
    the object is garbage-collected, so that ``close`` may race with
    appends on other threads; :meth:`stats`, :meth:`status`,
    :meth:`is_written`, :meth:`is_durable`, :attr:`recovery`, :attr:`id`
    and :attr:`public_key` still answer after ``close``.
    """

    __slots__ = (
        "_ptr",
        "_callback",
        "_reg_id",
        "_directory",
        "_mode",
        "_max_entry_bytes",
        "_closed",
        "_recovery",
        "_id",
        "_public_key",
        "__weakref__",
    )

    def __init__(
        self,
        directory: Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"],
        signing_seed: Union[bytes, bytearray, memoryview],
        *,
        mode: Union[str, JournalMode, int] = "thread",
        durability: Union[str, JournalDurability, int] = "every_record",
        on_full: Union[str, JournalOnFull, int] = "reject",
        sync_every_records: Optional[int] = None,
        sync_every_us: Optional[int] = None,
        ring_cells: Optional[int] = None,
        max_entry_bytes: Optional[int] = None,
        checkpoint_every_records: Optional[int] = None,
        checkpoint_every_ms: Optional[int] = None,
        max_segment_bytes: Optional[int] = None,
        max_segment_age_ms: Optional[int] = None,
        max_batch_records: Optional[int] = None,
        idle_sleep_us: Optional[int] = None,
        create_if_missing: bool = True,
        on_event: Optional[OnEvent] = None,
    ) -> None:
        self._ptr = NULL
        self._callback: Optional[OnEvent] = None
        self._reg_id = 0
        self._closed = True
        path = _directory(directory)
        seed = _bytes32("signing_seed", signing_seed)
        if on_event is not None and not callable(on_event):
            raise TypeError("on_event must be callable or None")
        opts = ffi.new("tg_journal_options*")
        lib.tg_journal_options_init(opts)
        c_path = ffi.new("char[]", path)
        opts.directory = c_path
        ffi.memmove(opts.signing_seed, seed, 32)
        opts.mode = _enum_arg("mode", mode, _MODE_NAMES)
        opts.durability = _enum_arg("durability", durability, _DURABILITY_NAMES)
        opts.on_full = _enum_arg("on_full", on_full, _ON_FULL_NAMES)
        given = dict(
            sync_every_records=sync_every_records,
            sync_every_us=sync_every_us,
            ring_cells=ring_cells,
            max_entry_bytes=max_entry_bytes,
            checkpoint_every_records=checkpoint_every_records,
            checkpoint_every_ms=checkpoint_every_ms,
            max_segment_bytes=max_segment_bytes,
            max_segment_age_ms=max_segment_age_ms,
            max_batch_records=max_batch_records,
            idle_sleep_us=idle_sleep_us,
        )
        for name in _U64_OPTIONS:
            if given[name] is not None:
                setattr(opts, name, check_uint(name, given[name], U64_MAX))
        opts.create_if_missing = 1 if _flag("create_if_missing", create_if_missing) else 0
        if on_event is not None:
            self._callback = on_event
            self._reg_id = next(_next_id)
            reg_id = self._reg_id
            _registry[reg_id] = weakref.ref(self, lambda _ref: _registry.pop(reg_id, None))
            opts.on_event = lib._tollgate_journal_event
            opts.on_event_user = ffi.cast("void*", reg_id)
        out = ffi.new("tg_journal**")
        err = ffi.new("tg_error*")
        rc, box = _capturing(lib.tg_journal_open, opts, out, err)
        if rc:
            _registry.pop(self._reg_id, None)
            error = error_from_struct(rc, err, "tg_journal_open failed")
            if box:
                if hasattr(box[0], "add_note"):
                    box[0].add_note(f"tollgate: and the journal did not open: {error}")
                _raise_first(box)
            raise error
        self._ptr = ffi.gc(out[0], _free_journal)
        self._closed = False
        self._directory = os.fsdecode(path)
        self._mode = JournalMode(opts.mode)
        self._max_entry_bytes = int(opts.max_entry_bytes)
        rec = ffi.new("tg_journal_recovery*")
        lib.tg_journal_recovery_get(self._ptr, rec)
        self._recovery = JournalRecovery(
            created=bool(rec.created),
            tail_truncated=bool(rec.tail_truncated),
            segment=int(rec.segment),
            offset=int(rec.offset),
            bytes_removed=int(rec.bytes_removed),
            records=int(rec.records),
            next_sequence=int(rec.next_sequence),
        )
        buf = ffi.new("uint8_t[32]")
        lib.tg_journal_id(self._ptr, buf)
        self._id = bytes(ffi.buffer(buf, 16))
        lib.tg_journal_public_key(self._ptr, buf)
        self._public_key = bytes(ffi.buffer(buf, 32))
        if box:
            # The callback failed during open: hand back no half-made journal.
            self._closed = True
            _capturing(lib.tg_journal_close, self._ptr, NULL)
            _raise_first(box)
        _open_journals.add(self)

    # -- lifetime ---------------------------------------------------------------------

    def _notifying(self) -> bool:
        """Whether this thread is inside this journal's event callback."""
        return bool(self._reg_id) and self._reg_id in (getattr(_tls, "notifying", None) or ())

    def _state_error(self, rc: int, err: Any, what: str) -> TollgateError:
        """The exception for a failed poll, sync, wait_durable or close."""
        if rc == _E_STATE:
            if self._notifying():
                return StateError(
                    rc, f"{what} cannot be called from this journal's on_event callback")
            return JournalClosedError(rc, "the journal is closed")
        if rc == _E_IO:
            return error_from_struct(rc, err, "the journal stopped after an I/O error")
        return error_from_struct(rc, err, f"{what} failed")

    def close(self) -> None:
        """Drain the ring, seal the segment, sync and mark the journal closed.

        Idempotent. Appends racing ``close`` on other threads either raise
        :class:`~tollgate.JournalClosedError` or get a ticket that is
        written before the seal; later appends raise
        :class:`~tollgate.JournalClosedError`.

        Raises:
            StateError: called from this journal's ``on_event`` callback
                (nothing is closed).
            JournalIOError: the final writes failed (the journal is closed
                all the same; :meth:`status` keeps the error).
        """
        if self._closed:
            return
        err = ffi.new("tg_error*")
        rc, box = _capturing(lib.tg_journal_close, self._ptr, err)
        if rc == _E_STATE and self._notifying():
            raise self._state_error(rc, err, "close")
        self._closed = True
        _open_journals.discard(self)
        if box:
            _raise_first(box)
        if rc:
            raise self._state_error(rc, err, "close")

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has been called."""
        return self._closed

    def __enter__(self) -> "Journal":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else self._mode.name.lower()
        return f"<tollgate.Journal {self._directory!r} {state}>"

    @property
    def directory(self) -> str:
        """The journal's directory."""
        return self._directory

    @property
    def mode(self) -> JournalMode:
        """Who does the writer's work."""
        return self._mode

    @property
    def recovery(self) -> JournalRecovery:
        """What opening the journal found and did."""
        return self._recovery

    @property
    def id(self) -> bytes:
        """The journal's 16-byte id."""
        return self._id

    @property
    def public_key(self) -> bytes:
        """The 32-byte Ed25519 public key that verifies this journal: pin it
        (``read_journal(..., public_key=...)``) where you read it back."""
        return self._public_key

    # -- appending --------------------------------------------------------------------

    def append(
        self,
        *,
        kind: Union[JournalKind, int, str] = 1,
        account: Union[bytes, str, None] = None,
        inputs: Union[bytes, bytearray, memoryview, str] = b"",
        payload: Union[bytes, bytearray, memoryview, str, None] = None,
        payload_digest: Union[bytes, bytearray, memoryview, None] = None,
        store_payload: bool = False,
        route: int = 0,
        venue: int = 0,
        verdict: int = 0,
        reason: int = 0,
        config_version: int = 0,
        realtime_ns: int = 0,
        monotonic_ns: int = 0,
    ) -> int:
        """Append an entry; return its ticket.

        The bytes are copied into the ring: no lock, no system call, and no
        allocation by the binding beyond converting ``str`` arguments.
        Tickets are > 0 and increase with every append, but are not
        consecutive (they count the ring's 64-byte cells): compare them,
        do not count them.

        Args:
            kind: a :class:`JournalKind` a host may write (DECISION ..
                RISK_CHECK), its name (``"decision"``), or an int in
                ``JOURNAL_KIND_HOST_FIRST .. JOURNAL_KIND_HOST_LAST``.
            account: at most 255 bytes (str is UTF-8).
            inputs: what a replay needs (opaque to the journal).
            payload: e.g. the order message; the writer keeps its SHA-256,
                and the payload itself with ``store_payload=True``. Unless
                ``payload_digest`` is given, the payload goes through the
                ring to be digested and counts toward ``max_entry_bytes``
                even when it is not stored.
            payload_digest: the payload's 32-byte SHA-256 when you have it
                (then an unstored payload need not be passed at all).
            route, venue, verdict, reason: uint32 fields for the host
                (tollgate's own records use verdict 0 for allowed, 1 for rejected).
            config_version: the configuration in force (uint64).
            realtime_ns, monotonic_ns: timestamps; 0 reads the clocks.

        Raises:
            JournalFullError: the ring is full and ``on_full="reject"``.
            JournalDroppedError: the ring is full and ``on_full="drop"``.
            JournalClosedError: the journal is closed.
            JournalIOError: the journal stopped after an I/O error.
            InvalidArgumentError: an account over 255 bytes, an entry over
                ``max_entry_bytes``, a kind hosts may not write.
        """
        if type(inputs) is not bytes:
            inputs = _blob("inputs", inputs)
        if account is None:
            account = b""
        elif type(account) is not bytes:
            account = _blob("account", account)
        if payload is None:
            p: Any = NULL
            plen = 0
        else:
            p = payload if type(payload) is bytes else _blob("payload", payload)
            plen = len(p)
        digest: Any = NULL if payload_digest is None else _bytes32("payload_digest", payload_digest)
        if type(kind) is not int:
            kind = _host_kind(kind)
        try:
            ticket: int = _append1(
                self._ptr, kind, 1 if store_payload else 0, realtime_ns, monotonic_ns,
                account, len(account), route, venue, verdict, reason, config_version,
                inputs, len(inputs), p, plen, digest,
            )
        except (TypeError, OverflowError) as exc:
            raise _explain(exc, [
                ("kind", kind, 0xFFFF), ("realtime_ns", realtime_ns, U64_MAX),
                ("monotonic_ns", monotonic_ns, U64_MAX), ("route", route, U32_MAX),
                ("venue", venue, U32_MAX), ("verdict", verdict, U32_MAX),
                ("reason", reason, U32_MAX), ("config_version", config_version, U64_MAX),
            ]) from None
        if ticket > 0:
            return ticket
        copied = plen if store_payload or payload_digest is None else 0
        raise self._append_error(ticket, kind=kind, account_len=len(account),
                                 size=len(account) + len(inputs) + copied)

    def _append_error(self, rc: int, *, kind: Any = None, account_len: int = 0,
                      size: Optional[int] = None, key_len: int = 0) -> TollgateError:
        """The exception for an append (or record) the library refused."""
        if rc == _E_FULL:
            return JournalFullError(
                rc, "the journal's ring is full (on_full='reject'): the entry was not "
                "journaled; fail the request closed")
        if rc == _E_DROPPED:
            return JournalDroppedError(
                rc, "the journal's ring is full (on_full='drop'): the entry was dropped "
                "(counted, and recorded in the journal)")
        if rc == _E_STATE:
            return JournalClosedError(rc, "the journal is closed: the entry was not journaled")
        if rc == _E_IO:
            err = ffi.new("tg_error*")
            lib.tg_journal_status(self._ptr, err)
            return error_from_struct(rc, err, "the journal stopped after an I/O error")
        if rc == _E_RANGE:
            if account_len > _MAX_ACCOUNT:
                return invalid(f"account is {account_len} bytes; at most {_MAX_ACCOUNT}")
            if key_len > _MAX_KEY:
                return invalid(f"key is {key_len} bytes; a recorded key is at most {_MAX_KEY}")
            if size is None:  # a record_* call: the inputs are the library's
                return InvalidArgumentError(
                    rc, f"the record is larger than max_entry_bytes ({self._max_entry_bytes})")
            return InvalidArgumentError(
                rc, f"the entry is too large ({size} bytes of account, inputs and payload; "
                f"max_entry_bytes is {self._max_entry_bytes})")
        if rc == _E_INVAL and kind is not None:
            if not 0 <= kind <= 0xFFFF:
                return invalid(f"kind must be 0 .. 0xffff, not {kind}")
            return invalid(
                f"kind {kind:#06x} ({journal_kind_name(kind)}) may not be appended by a host: "
                f"use 1 .. 6 or {JOURNAL_KIND_HOST_FIRST:#x} .. {JOURNAL_KIND_HOST_LAST:#x}")
        return error_for(rc, "the library refused the entry")

    # -- tickets ----------------------------------------------------------------------

    def is_written(self, ticket: int) -> bool:
        """Whether the ticket's record, and every earlier one, is written
        (survives the process being killed). Ticket 0 never is."""
        try:
            r: int = _flag1(self._ptr, 0, ticket)
        except (TypeError, OverflowError) as exc:
            raise _explain(exc, [("ticket", ticket, U64_MAX)]) from None
        if r < 0:
            raise error_for(r, "tg_journal_is_written failed")
        return r == 1

    def is_durable(self, ticket: int) -> bool:
        """Whether the ticket's record, and every earlier one, is durable
        (fdatasync'ed: survives a power loss). Ticket 0 never is."""
        try:
            r: int = _flag1(self._ptr, 1, ticket)
        except (TypeError, OverflowError) as exc:
            raise _explain(exc, [("ticket", ticket, U64_MAX)]) from None
        if r < 0:
            raise error_for(r, "tg_journal_is_durable failed")
        return r == 1

    def wait_durable(self, ticket: int, timeout_s: Optional[float] = None) -> bool:
        """Wait until the ticket is durable; return False if ``timeout_s``
        (seconds, None: no limit) passes first. In poll mode it polls.

        Raises:
            InvalidArgumentError: ticket 0 (never issued), a negative or
                NaN timeout.
            JournalIOError: the journal stopped after an I/O error.
            JournalClosedError: the journal is closed and the ticket is not
                durable (it never will be).
            StateError: called from this journal's ``on_event`` callback.
        """
        ticket = check_uint("ticket", ticket, U64_MAX)
        if ticket and self._closed and not self.is_durable(ticket):
            # The library answers this in poll mode; in thread mode it would
            # sleep out the timeout.
            raise JournalClosedError(
                lib.TG_ESTATE, "the journal is closed and the ticket is not durable")
        if timeout_s is None:
            remaining_us: Optional[int] = None
        else:
            seconds = check_float("timeout_s", timeout_s)
            if seconds < 0:
                raise invalid(f"timeout_s must not be negative, got {timeout_s!r}")
            remaining_us = None if math.isinf(seconds) else math.ceil(seconds * 1e6)
        durable = ffi.new("int*")
        err = ffi.new("tg_error*")
        while True:
            step = _MAX_WAIT_US if remaining_us is None else min(remaining_us, _MAX_WAIT_US)
            rc, box = _capturing(lib.tg_journal_wait_durable, self._ptr, ticket, step, durable, err)
            if box:
                _raise_first(box)
            if rc:
                raise self._state_error(rc, err, "wait_durable")
            if durable[0]:
                return True
            if remaining_us is not None:
                remaining_us -= step
                if remaining_us <= 0:
                    return False

    # -- the writer's work ------------------------------------------------------------

    def poll(self) -> int:
        """Write up to ``max_batch_records`` entries, sync as the durability
        level asks, checkpoint and rotate when due; return how many entries
        were written. The writer of poll mode; in thread mode it does the
        thread's work early.

        Raises:
            JournalClosedError, JournalIOError; StateError from this
            journal's ``on_event`` callback.
        """
        written = ffi.new("size_t*")
        err = ffi.new("tg_error*")
        rc, box = _capturing(lib.tg_journal_poll, self._ptr, written, err)
        if box:
            _raise_first(box)
        if rc:
            raise self._state_error(rc, err, "poll")
        return int(written[0])

    def sync(self) -> None:
        """Write what the ring holds and fdatasync it, whatever the level.

        A no-op on a closed journal (closing synced everything). Raises as
        :meth:`poll`.
        """
        err = ffi.new("tg_error*")
        rc, box = _capturing(lib.tg_journal_sync, self._ptr, err)
        if box:
            _raise_first(box)
        if rc:
            raise self._state_error(rc, err, "sync")

    def status(self) -> Optional[TollgateError]:
        """None while the journal is healthy, else the error that stopped the
        writer (a :class:`~tollgate.JournalIOError`, returned, not raised,
        as ``concurrent.futures.Future.exception()`` does)."""
        err = ffi.new("tg_error*")
        rc = lib.tg_journal_status(self._ptr, err)
        if rc == 0:
            return None
        return error_from_struct(rc, err, "the journal stopped")

    def stats(self) -> JournalStats:
        """Counters since open (read one by one, not as one snapshot)."""
        out = ffi.new("tg_journal_stats*")
        rc = lib.tg_journal_stats_get(self._ptr, out)
        if rc:
            raise error_for(rc, "tg_journal_stats_get failed")
        return JournalStats(
            written=out.written,
            rejected=out.rejected,
            dropped=out.dropped,
            checkpoints=out.checkpoints,
            syncs=out.syncs,
            batches=out.batches,
            bytes=out.bytes,
            next_sequence=out.next_sequence,
            segment=out.segment,
            written_ticket=out.written_ticket,
            durable_ticket=out.durable_ticket,
        )

    # -- recording decisions for replay ------------------------------------------------
    #
    # Every record_* method takes an `instance` (a uint32 naming the limiter
    # or breaker in this journal: the host's choice) and, keyword-only, the
    # record's context: account, route, venue, config_version, realtime_ns,
    # monotonic_ns, payload, store_payload (as for append). It returns the
    # ticket and raises as append does.

    def _record(self, fn: Any, args: Tuple[Any, ...], ctx: Tuple[Any, ...],
                checks: List[Tuple[str, Any, int]], key_len: int = 0) -> int:
        try:
            ticket: int = fn(self._ptr, *args, *ctx)
        except (TypeError, OverflowError) as exc:
            ctx_checks = [(name, ctx[i], maximum) for name, i, maximum in _CTX_INTS]
            raise _explain(exc, checks + ctx_checks) from None
        if ticket > 0:
            return ticket
        raise self._append_error(ticket, account_len=ctx[1], key_len=key_len)

    def record_limiter_define(
        self,
        instance: int,
        limiter: Limiter,
        parent_instance: Optional[int] = None,
        *,
        account: Union[bytes, str, None] = None,
        route: int = 0,
        venue: int = 0,
        config_version: int = 0,
        realtime_ns: int = 0,
        monotonic_ns: int = 0,
        payload: Union[bytes, str, None] = None,
        store_payload: bool = False,
    ) -> int:
        """Journal ``limiter``'s configuration (read from the live limiter,
        its hash seed included) as ``instance``; ``parent_instance`` is the
        instance its parent was defined as (None: no parent). Define each
        instance before recording its decisions; a new define replaces the
        instance from then on."""
        if not isinstance(limiter, Limiter):
            raise TypeError(f"limiter must be a Limiter, not {type(limiter).__name__}")
        if limiter._ptr == NULL:
            raise invalid("the limiter is closed")
        parent = _NO_PARENT if parent_instance is None else parent_instance
        return self._record(
            lib.tgpy_journal_limiter_define, (instance, limiter._ptr, parent),
            _ctx(account, route, venue, config_version, realtime_ns, monotonic_ns, payload,
                 store_payload),
            [("instance", instance, U32_MAX), ("parent_instance", parent, U32_MAX)])

    def record_limiter_acquire(
        self,
        instance: int,
        key: Union[bytes, str],
        tier: int,
        cost: int,
        now_ns: int,
        decision: LimitDecision,
        *,
        account: Union[bytes, str, None] = None,
        route: int = 0,
        venue: int = 0,
        config_version: int = 0,
        realtime_ns: int = 0,
        monotonic_ns: int = 0,
        payload: Union[bytes, str, None] = None,
        store_payload: bool = False,
    ) -> int:
        """Journal a :meth:`Limiter.acquire` call (key, tier index, cost,
        the ``now_ns`` it was given) and the :class:`LimitDecision` it
        returned. The record's verdict is 0 when admitted (1 when rejected), its reason the
        decision's. Keys are at most 1024 bytes."""
        if type(key) is not bytes:
            key = coerce_key(key)
        if type(decision) is not LimitDecision:
            raise TypeError(f"decision must be a LimitDecision, not {type(decision).__name__}")
        ctx = _NO_CTX if (account is None and payload is None and not (
            route or venue or config_version or realtime_ns or monotonic_ns)) else _ctx(
            account, route, venue, config_version, realtime_ns, monotonic_ns, payload,
            store_payload)
        return self._record(
            lib.tgpy_journal_limiter_acquire,
            (instance, key, len(key), tier, cost, now_ns, 1 if decision.allowed else 0,
             int(decision.reason), decision.retry_after_ns, decision.remaining,
             1 if decision.shadow else 0, NULL),
            ctx, _call_checks(instance, tier, cost, now_ns), key_len=len(key))

    def record_limiter_reserve(
        self,
        instance: int,
        key: Union[bytes, str],
        tier: int,
        cost: int,
        now_ns: int,
        reservation: Reservation,
        *,
        account: Union[bytes, str, None] = None,
        route: int = 0,
        venue: int = 0,
        config_version: int = 0,
        realtime_ns: int = 0,
        monotonic_ns: int = 0,
        payload: Union[bytes, str, None] = None,
        store_payload: bool = False,
    ) -> int:
        """Journal a :meth:`Limiter.reserve` call and the
        :class:`Reservation` it returned (its decision and what it took)."""
        if type(key) is not bytes:
            key = coerce_key(key)
        if not isinstance(reservation, Reservation):
            raise TypeError(f"reservation must be a Reservation, not {type(reservation).__name__}")
        d = reservation.decision
        return self._record(
            lib.tgpy_journal_limiter_acquire,
            (instance, key, len(key), tier, cost, now_ns, 1 if d.allowed else 0, int(d.reason),
             d.retry_after_ns, d.remaining, 1 if d.shadow else 0, reservation._raw),
            _ctx(account, route, venue, config_version, realtime_ns, monotonic_ns, payload,
                 store_payload),
            _call_checks(instance, tier, cost, now_ns), key_len=len(key))

    def record_limiter_cancel(
        self,
        instance: int,
        key: Union[bytes, str],
        reservation: Reservation,
        now_ns: int,
        *,
        account: Union[bytes, str, None] = None,
        route: int = 0,
        venue: int = 0,
        config_version: int = 0,
        realtime_ns: int = 0,
        monotonic_ns: int = 0,
        payload: Union[bytes, str, None] = None,
        store_payload: bool = False,
    ) -> int:
        """Journal a :meth:`Reservation.cancel` call, with the key the
        reservation was made for."""
        if type(key) is not bytes:
            key = coerce_key(key)
        if not isinstance(reservation, Reservation):
            raise TypeError(f"reservation must be a Reservation, not {type(reservation).__name__}")
        return self._record(
            lib.tgpy_journal_limiter_cancel,
            (instance, key, len(key), reservation._raw, now_ns),
            _ctx(account, route, venue, config_version, realtime_ns, monotonic_ns, payload,
                 store_payload),
            [("instance", instance, U32_MAX), ("now_ns", now_ns, U64_MAX)], key_len=len(key))

    def record_limiter_multiplier(
        self,
        instance: int,
        multiplier: float,
        now_ns: int,
        *,
        account: Union[bytes, str, None] = None,
        route: int = 0,
        venue: int = 0,
        config_version: int = 0,
        realtime_ns: int = 0,
        monotonic_ns: int = 0,
        payload: Union[bytes, str, None] = None,
        store_payload: bool = False,
    ) -> int:
        """Journal a :meth:`Limiter.set_multiplier` call (a finite number)."""
        value = check_float("multiplier", multiplier)
        if math.isinf(value):
            raise invalid("multiplier must be finite")
        return self._record(
            lib.tgpy_journal_limiter_multiplier, (instance, value, now_ns),
            _ctx(account, route, venue, config_version, realtime_ns, monotonic_ns, payload,
                 store_payload),
            [("instance", instance, U32_MAX), ("now_ns", now_ns, U64_MAX)])

    def record_limiter_shadow(
        self,
        instance: int,
        on: bool,
        *,
        account: Union[bytes, str, None] = None,
        route: int = 0,
        venue: int = 0,
        config_version: int = 0,
        realtime_ns: int = 0,
        monotonic_ns: int = 0,
        payload: Union[bytes, str, None] = None,
        store_payload: bool = False,
    ) -> int:
        """Journal a change of :attr:`Limiter.shadow`."""
        return self._record(
            lib.tgpy_journal_limiter_shadow, (instance, 1 if _flag("on", on) else 0),
            _ctx(account, route, venue, config_version, realtime_ns, monotonic_ns, payload,
                 store_payload),
            [("instance", instance, U32_MAX)])

    def record_breaker_define(
        self,
        instance: int,
        breaker: Breaker,
        *,
        account: Union[bytes, str, None] = None,
        route: int = 0,
        venue: int = 0,
        config_version: int = 0,
        realtime_ns: int = 0,
        monotonic_ns: int = 0,
        payload: Union[bytes, str, None] = None,
        store_payload: bool = False,
    ) -> int:
        """Journal ``breaker``'s configuration as ``instance``."""
        if not isinstance(breaker, Breaker):
            raise TypeError(f"breaker must be a Breaker, not {type(breaker).__name__}")
        if breaker._ptr == NULL:
            raise invalid("the breaker is closed")
        return self._record(
            lib.tgpy_journal_breaker_define, (instance, breaker._ptr),
            _ctx(account, route, venue, config_version, realtime_ns, monotonic_ns, payload,
                 store_payload),
            [("instance", instance, U32_MAX)])

    def record_breaker_acquire(
        self,
        instance: int,
        now_ns: int,
        permit: Permit,
        *,
        account: Union[bytes, str, None] = None,
        route: int = 0,
        venue: int = 0,
        config_version: int = 0,
        realtime_ns: int = 0,
        monotonic_ns: int = 0,
        payload: Union[bytes, str, None] = None,
        store_payload: bool = False,
    ) -> int:
        """Journal a :meth:`Breaker.acquire` call (the ``now_ns`` it was
        given) and the :class:`Permit` it returned."""
        if type(permit) is not Permit:
            raise TypeError(f"permit must be a Permit, not {type(permit).__name__}")
        ctx = _NO_CTX if (account is None and payload is None and not (
            route or venue or config_version or realtime_ns or monotonic_ns)) else _ctx(
            account, route, venue, config_version, realtime_ns, monotonic_ns, payload,
            store_payload)
        return self._record(
            lib.tgpy_journal_breaker_acquire, (instance, now_ns, permit._raw), ctx,
            [("instance", instance, U32_MAX), ("now_ns", now_ns, U64_MAX)])

    def record_breaker_outcome(
        self,
        instance: int,
        permit: Permit,
        outcome: Union[Outcome, int, str],
        latency_ns: int,
        now_ns: int,
        *,
        account: Union[bytes, str, None] = None,
        route: int = 0,
        venue: int = 0,
        config_version: int = 0,
        realtime_ns: int = 0,
        monotonic_ns: int = 0,
        payload: Union[bytes, str, None] = None,
        store_payload: bool = False,
    ) -> int:
        """Journal a :meth:`Breaker.record` call: the permit, the outcome
        (:class:`Outcome` or ``"success"``, ``"failure"``, ``"ignored"``),
        the latency and the time."""
        if type(permit) is not Permit:
            raise TypeError(f"permit must be a Permit, not {type(permit).__name__}")
        code = _outcome(outcome)
        if code not in (Outcome.SUCCESS, Outcome.FAILURE, Outcome.IGNORED):
            raise invalid(f"unknown outcome {outcome!r}: use Outcome.SUCCESS, FAILURE or IGNORED")
        return self._record(
            lib.tgpy_journal_breaker_outcome, (instance, permit._raw, code, latency_ns, now_ns),
            _ctx(account, route, venue, config_version, realtime_ns, monotonic_ns, payload,
                 store_payload),
            [("instance", instance, U32_MAX), ("latency_ns", latency_ns, U64_MAX),
             ("now_ns", now_ns, U64_MAX)])

    def record_breaker_force(
        self,
        instance: int,
        state: Union[BreakerState, int, str],
        now_ns: int,
        *,
        account: Union[bytes, str, None] = None,
        route: int = 0,
        venue: int = 0,
        config_version: int = 0,
        realtime_ns: int = 0,
        monotonic_ns: int = 0,
        payload: Union[bytes, str, None] = None,
        store_payload: bool = False,
    ) -> int:
        """Journal a :meth:`Breaker.transition` call (a manual state change)."""
        return self._record(
            lib.tgpy_journal_breaker_force, (instance, _breaker_state(state), now_ns),
            _ctx(account, route, venue, config_version, realtime_ns, monotonic_ns, payload,
                 store_payload),
            [("instance", instance, U32_MAX), ("now_ns", now_ns, U64_MAX)])

    def record_breaker_transition(
        self,
        instance: int,
        event: Event,
        *,
        account: Union[bytes, str, None] = None,
        route: int = 0,
        venue: int = 0,
        config_version: int = 0,
        realtime_ns: int = 0,
        monotonic_ns: int = 0,
        payload: Union[bytes, str, None] = None,
        store_payload: bool = False,
    ) -> int:
        """Journal a transition the breaker announced (call it from the
        :meth:`Breaker.on_event` callback with the :class:`Event`); a replay
        checks that the replayed breaker makes it too."""
        if type(event) is not Event:
            raise TypeError(f"event must be a breaker Event, not {type(event).__name__}")
        rates = []
        for name in ("failure_rate", "slow_rate"):
            value = getattr(event, name)
            if value is None:
                rates.append(-1.0)
                continue
            number = check_float(name, value)
            if not math.isfinite(number):
                raise invalid(f"{name} must be finite or None, not {value!r}")
            rates.append(number)
        return self._record(
            lib.tgpy_journal_breaker_transition,
            (instance, _breaker_state(event.from_state, "from_state"),
             _breaker_state(event.to_state, "to_state"), event.now_ns, rates[0], rates[1],
             event.open_ns),
            _ctx(account, route, venue, config_version, realtime_ns, monotonic_ns, payload,
                 store_payload),
            [("instance", instance, U32_MAX), ("now_ns", event.now_ns, U64_MAX),
             ("open_ns", event.open_ns, U64_MAX)])


def _call_checks(instance: Any, tier: Any, cost: Any, now_ns: Any) -> List[Tuple[str, Any, int]]:
    return [("instance", instance, U32_MAX), ("tier", tier, U32_MAX), ("cost", cost, U32_MAX),
            ("now_ns", now_ns, U64_MAX)]


def _breaker_state(state: Any, name: str = "state") -> int:
    if isinstance(state, str):
        member = _STATE_NAMES.get(state.lower())
        if member is None:
            raise invalid(f"unknown breaker state {state!r}")
        return int(member)
    if isinstance(state, bool) or not isinstance(state, int):
        raise TypeError(f"{name} must be a BreakerState, int or str, not {type(state).__name__}")
    if not BreakerState.CLOSED <= state <= BreakerState.METRICS_ONLY:
        raise invalid(f"unknown breaker state {state}")
    return int(state)


def _host_kind(kind: Any) -> int:
    if isinstance(kind, str):
        member = _KIND_NAMES.get(kind.lower())
        if member is None:
            raise invalid(f"unknown journal kind {kind!r}")
        return int(member)
    if isinstance(kind, bool) or not isinstance(kind, int):
        raise TypeError(f"kind must be a JournalKind, int or str, not {type(kind).__name__}")
    return int(kind)


# -- names and keys ---------------------------------------------------------------------

_kind_names: Dict[int, str] = {}


def journal_kind_name(kind: int) -> str:
    """The library's name of an event kind: ``"decision"``,
    ``"host:0x8001"``, ``"unknown:0x0007"`` (kind: 0 .. 0xFFFF)."""
    name = _kind_names.get(kind) if type(kind) is int else None
    if name is not None:
        return name
    kind = check_uint("kind", kind, 0xFFFF)
    buf = ffi.new("char[64]")
    written = ffi.new("size_t*")
    rc = lib.tg_journal_kind_name(kind, buf, 64, written)
    if rc:
        raise error_for(rc, f"tg_journal_kind_name({kind}) failed")
    name = str(ffi.string(buf).decode("ascii", "replace"))
    _kind_names[kind] = name
    return name


def ed25519_public_key(seed: Union[bytes, bytearray, memoryview]) -> bytes:
    """The 32-byte Ed25519 public key of a 32-byte seed (the key a journal
    opened with ``signing_seed=seed`` is verified with)."""
    raw = _bytes32("seed", seed)
    out = ffi.new("uint8_t[32]")
    rc = lib.tg_ed25519_public_key(raw, out)
    if rc:
        raise error_for(rc, "tg_ed25519_public_key failed (is the library built with BoringSSL?)")
    return bytes(ffi.buffer(out))


# Non-finite numbers as the library prints them (%.17g), which JSON lacks.
_NON_FINITE = re.compile(r'(?<=[:,\[])(-?)(nan|inf)(?=[,}\]])')


def _decode_description(text: str) -> Dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        fixed = _NON_FINITE.sub(
            lambda m: "NaN" if m.group(2) == "nan" else m.group(1) + "Infinity", text)
        try:
            value = json.loads(fixed)
        except ValueError:
            return {"error": "undecodable description", "json": text}
    if not isinstance(value, dict):
        return {"error": "undecodable description", "json": text}
    return value


def _describe(inputs: Any, n: int, scratch: List[Any]) -> Optional[Dict[str, Any]]:
    """Describe n bytes at ``inputs`` (a pointer); scratch = [buffer, capacity]."""
    written = scratch[2]
    rc = lib.tg_journal_describe_inputs(inputs, n, scratch[0], scratch[1], written)
    if rc == lib.TG_ETOOSMALL:
        cap = int(written[0]) + 1
        scratch[0] = ffi.new("char[]", cap)
        scratch[1] = cap
        rc = lib.tg_journal_describe_inputs(inputs, n, scratch[0], cap, written)
    if rc == lib.TG_ENOTFOUND:
        return None
    if rc:
        raise error_for(rc, "tg_journal_describe_inputs failed")
    return _decode_description(ffi.string(scratch[0], int(written[0])).decode("utf-8", "replace"))


def _scratch() -> List[Any]:
    return [ffi.new("char[]", 1024), 1024, ffi.new("size_t*")]


def describe_journal_inputs(
    inputs: Union[bytes, bytearray, memoryview],
) -> Optional[Dict[str, Any]]:
    """The replay inputs written by a ``record_*`` method, decoded
    (``{"component": "limiter", "op": "acquire", ...}``), or None when
    ``inputs`` are not replay inputs (the host's own bytes). Inputs that
    claim to be replay inputs but are malformed give a dict with an
    ``"error"`` member."""
    if not isinstance(inputs, (bytes, bytearray, memoryview)):
        raise TypeError(f"inputs must be bytes, not {type(inputs).__name__}")
    raw = bytes(inputs)
    return _describe(ffi.from_buffer("uint8_t[]", raw), len(raw), _scratch())


# -- reading ----------------------------------------------------------------------------

# tg_journal_record up to the pointers, in one unpack: type, kind, reserved,
# flags, checkpoint_flags, sequence, realtime_ns, monotonic_ns,
# config_version, route, venue, verdict, reason, segment, offset.
_RECORD_HEAD = struct.Struct("=IHHIIQQQQIIIIQQ")
assert _RECORD_HEAD.size == ffi.offsetof("tg_journal_record", "account") == 80
assert ffi.offsetof("tg_journal_record", "prev") == 128
assert ffi.offsetof("tg_journal_record", "payload_digest") == 160
assert ffi.sizeof("tg_journal_record") == 192
_CHECKPOINT = lib.TG_JOURNAL_RECORD_CHECKPOINT


class JournalReader:
    """An iterator over the verified records of a journal.

    Use :func:`read_journal` to make one. Each item is a
    :class:`JournalRecord` (events and checkpoints, in order). When a
    record fails verification (a flipped byte, a missing or reordered
    record, a bad signature, a key other than ``public_key``, or with
    ``strict`` a torn or unsigned tail) iteration raises
    :class:`~tollgate.JournalCorruptError` with the :class:`JournalProblem`
    (also kept in :attr:`problem`); the records yielded before it were
    verified, and iteration then ends. :attr:`warnings` lists torn or
    unsigned tails found so far (the normal state after a crash).

    Not for use by several threads at once (calls are serialised by a lock,
    so misuse is slow, not unsafe). A context manager; :meth:`close`
    releases the reader early.
    """

    __slots__ = ("_ptr", "_rec", "_buf", "_has", "_lock", "_done", "_problem", "_warnings",
                 "_scratch", "_directory", "__weakref__")

    def __init__(
        self,
        directory: Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"],
        public_key: Union[bytes, bytearray, memoryview, None] = None,
        strict: bool = False,
    ) -> None:
        self._ptr = NULL
        path = _directory(directory)
        opts, _key = _read_options(public_key, strict)
        out = ffi.new("tg_journal_reader**")
        err = ffi.new("tg_error*")
        rc = lib.tg_journal_reader_open(path, opts, out, err)
        if rc:
            raise error_from_struct(rc, err, "tg_journal_reader_open failed")
        self._ptr = ffi.gc(out[0], lib.tg_journal_reader_free)
        self._rec = ffi.new("tg_journal_record*")
        self._buf = ffi.buffer(self._rec)
        self._has = ffi.new("int*")
        self._lock = threading.Lock()
        self._done = False
        self._problem: Optional[JournalProblem] = None
        self._warnings: Optional[List[JournalProblem]] = None
        self._scratch = _scratch()
        self._directory = os.fsdecode(path)

    def __iter__(self) -> "JournalReader":
        return self

    def __next__(self) -> JournalRecord:
        with self._lock:
            if self._ptr == NULL:
                raise invalid("the journal reader is closed")
            if self._done:
                raise StopIteration
            rc = lib.tg_journal_reader_next(self._ptr, self._rec, self._has)
            if rc:
                raise error_for(rc, "tg_journal_reader_next failed")
            if not self._has[0]:
                self._done = True
                p = ffi.new("tg_journal_problem*")
                lib.tg_journal_reader_problem(self._ptr, p)
                self._problem = _problem(p)
                if self._problem is not None:
                    raise JournalCorruptError(self._problem)
                raise StopIteration
            return self._record()

    def _record(self) -> JournalRecord:
        rec = self._rec
        buf = self._buf
        (rtype, kind, _, flags, ckpt_flags, seq, realtime, monotonic, config_version, route,
         venue, verdict, reason, segment, offset) = _RECORD_HEAD.unpack_from(buf)
        n_inputs = rec.inputs_len
        inputs = ffi.unpack(ffi.cast("char*", rec.inputs), n_inputs) if n_inputs else b""
        if rtype == _CHECKPOINT:
            kind_name = "checkpoint"
            replay = None
        else:
            kind_name = journal_kind_name(kind)
            replay = _describe(rec.inputs, n_inputs, self._scratch) if n_inputs else None
        n_payload = rec.payload_len
        return JournalRecord(
            type=_RECORD_TYPES.get(rtype, rtype),
            kind=_KINDS.get(kind, kind),
            kind_name=kind_name,
            flags=flags,
            checkpoint_flags=ckpt_flags,
            sequence=seq,
            realtime_ns=realtime,
            monotonic_ns=monotonic,
            config_version=config_version,
            route=route,
            venue=venue,
            verdict=verdict,
            reason=reason,
            segment=segment,
            offset=offset,
            account=ffi.unpack(rec.account, rec.account_len) if rec.account_len else b"",
            inputs=inputs,
            payload=ffi.unpack(ffi.cast("char*", rec.payload), n_payload) if n_payload else b"",
            payload_digest=buf[160:192] if flags & 2 else None,
            prev=buf[128:160],
            replay=replay,
        )

    @property
    def problem(self) -> Optional[JournalProblem]:
        """The problem that stopped iteration, or None (so far)."""
        return self._problem

    @property
    def warnings(self) -> List[JournalProblem]:
        """Torn or unsigned tails found so far (a new list each time)."""
        with self._lock:
            if self._ptr == NULL:
                return list(self._warnings or ())
            return self._read_warnings()

    def _read_warnings(self) -> List[JournalProblem]:
        count = ffi.new("size_t*")
        lib.tg_journal_reader_warning_count(self._ptr, count)
        p = ffi.new("tg_journal_problem*")
        found: List[JournalProblem] = []
        for i in range(int(count[0])):
            if lib.tg_journal_reader_warning(self._ptr, i, p) == 0:
                problem = _problem(p)
                if problem is not None:
                    found.append(problem)
        return found

    def close(self) -> None:
        """Release the reader (idempotent); :attr:`warnings` and
        :attr:`problem` stay readable."""
        with self._lock:
            ptr = self._ptr
            if ptr != NULL:
                self._warnings = self._read_warnings()
                self._ptr = NULL
                ffi.release(ptr)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has been called."""
        return bool(self._ptr == NULL)

    def __enter__(self) -> "JournalReader":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._ptr == NULL else ("done" if self._done else "open")
        return f"<tollgate.JournalReader {self._directory!r} {state}>"


def read_journal(
    directory: Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"],
    public_key: Union[bytes, bytearray, memoryview, None] = None,
    strict: bool = False,
) -> JournalReader:
    """Iterate over the verified records of the journal in ``directory``.

    ``public_key`` (32 bytes) pins the key the manifest must name;
    ``strict`` makes a torn or unsigned tail an error rather than a
    warning. See :class:`JournalReader`::

        try:
            for rec in read_journal(path, public_key=key):
                ...
        except JournalCorruptError as e:
            alert(e.problem.file, e.problem.offset, e.problem.message)

    Raises:
        NotFoundError: no such directory, or no journal in it.
        JournalIOError: the directory cannot be read (problems in the
            journal itself are raised while iterating).
    """
    return JournalReader(directory, public_key, strict)


def verify_journal(
    directory: Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"],
    public_key: Union[bytes, bytearray, memoryview, None] = None,
    strict: bool = False,
) -> VerifyReport:
    """Verify the whole journal: manifest, headers, CRCs, sequence, chain,
    checkpoint signatures, seals. The verdict is in the report (``ok``,
    ``error``), whatever the journal holds; an exception only when the
    journal cannot be looked at (``NotFoundError`` for a missing directory
    or journal, ``JournalIOError`` for an unreadable one, bad arguments)."""
    path = _directory(directory)
    opts, _key = _read_options(public_key, strict)
    out = ffi.new("tg_journal_verify_report*")
    err = ffi.new("tg_error*")
    rc = lib.tg_journal_verify(path, opts, out, err)
    if rc:
        raise error_from_struct(rc, err, "tg_journal_verify failed")
    return VerifyReport(
        ok=bool(out.ok),
        closed=bool(out.closed),
        segments=out.segments,
        records=out.records,
        events=out.events,
        checkpoints=out.checkpoints,
        bytes=out.bytes,
        last_sequence=out.last_sequence,
        first_realtime_ns=out.first_realtime_ns,
        last_realtime_ns=out.last_realtime_ns,
        warning_count=out.warning_count,
        id=bytes(ffi.buffer(out.id)),
        key=bytes(ffi.buffer(out.key)),
        head=bytes(ffi.buffer(out.head)),
        error=_problem(out.error),
        first_warning=_problem(out.first_warning),
    )


def replay_journal(
    directory: Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"],
    public_key: Union[bytes, bytearray, memoryview, None] = None,
    strict: bool = False,
) -> ReplayReport:
    """Replay every limiter and breaker decision recorded in the journal
    (``Journal.record_*``) and compare: each instance is rebuilt from its
    recorded configuration and fed the recorded inputs in order. Raises as
    :func:`verify_journal`; a journal that fails verification is replayed
    up to the problem (``error``)."""
    path = _directory(directory)
    opts, _key = _read_options(public_key, strict)
    out = ffi.new("tg_journal_replay_report*")
    err = ffi.new("tg_error*")
    rc = lib.tg_journal_replay(path, opts, out, err)
    if rc:
        raise error_from_struct(rc, err, "tg_journal_replay failed")
    mismatch = None
    if out.mismatches:
        component: int = out.mismatch_component
        mismatch = ReplayMismatch(
            sequence=out.mismatch_sequence,
            segment=out.mismatch_segment,
            offset=out.mismatch_offset,
            component=_COMPONENTS.get(component, component),
            instance=out.mismatch_instance,
            recorded=_text(out.mismatch_recorded),
            replayed=_text(out.mismatch_replayed),
        )
    issue = None
    if out.issues:
        issue = ReplayIssue(sequence=out.issue_sequence, message=_text(out.issue))
    return ReplayReport(
        ok=bool(out.ok),
        records=out.records,
        replayed=out.replayed,
        decisions=out.decisions,
        transitions=out.transitions,
        instances=out.instances,
        other=out.other,
        mismatches=out.mismatches,
        issues=out.issues,
        error=_problem(out.error),
        first_mismatch=mismatch,
        first_issue=issue,
    )
