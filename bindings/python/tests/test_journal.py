"""The audit journal through the binding, on real files in tmp_path: writing
in poll and thread mode, tickets and durability, the ring-full policies,
events and what the event callback may not do, reading back every field,
verification (a flipped byte, a pinned wrong key), recording a limiter and a
breaker and replaying them, and bad input for every public function. The
same cases as tests/capi/test_journal.c."""

from __future__ import annotations

import errno
import hashlib
import os
import pickle
import shutil
import struct
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple, Type, TypeVar

import pytest
from conftest import T0

import tollgate
from tollgate import (
    JOURNAL_KIND_HOST_FIRST,
    Breaker,
    BreakerState,
    Event,
    InvalidArgumentError,
    Journal,
    JournalClosedError,
    JournalCorruptError,
    JournalDroppedError,
    JournalEvent,
    JournalEventType,
    JournalFullError,
    JournalIOError,
    NotFoundError,
    JournalKind,
    JournalMode,
    JournalProblem,
    JournalReader,
    JournalRecord,
    JournalRecordType,
    LimitDecision,
    Limiter,
    LimitReason,
    Outcome,
    ReplayComponent,
    StateError,
    Tier,
    TollgateError,
    describe_journal_inputs,
    ed25519_public_key,
    journal_kind_name,
    read_journal,
    replay_journal,
    verify_journal,
)
from tollgate._native import lib

MS = 1_000_000
SEED = bytes((i * 13 + 1) & 0xFF for i in range(32))
OTHER_SEED = bytes((i * 13 + 2) & 0xFF for i in range(32))
SEGMENT_1 = "seg-0000000000000001.tgj"


def open_poll(directory: Path, **options: Any) -> Journal:
    """A poll-mode journal that never fdatasyncs unless asked (fast tests)."""
    options.setdefault("durability", "none")
    return Journal(directory, SEED, mode="poll", **options)


def drain(j: Journal) -> None:
    while j.poll():
        pass


def records(directory: Path, **kwargs: Any) -> List[JournalRecord]:
    return list(read_journal(directory, **kwargs))


def events(directory: Path) -> List[JournalRecord]:
    return [r for r in records(directory) if r.type is JournalRecordType.EVENT]


# -- writing and reading back -----------------------------------------------------------


def test_round_trip_of_every_field(tmp_path: Path) -> None:
    payload = bytes(range(100))
    inputs = bytes(range(40))
    with open_poll(tmp_path, checkpoint_every_records=1000) as j:
        assert j.recovery.created and not j.recovery.tail_truncated
        assert j.public_key == ed25519_public_key(SEED) and len(j.id) == 16
        assert j.mode is JournalMode.POLL and j.directory == str(tmp_path)
        t1 = j.append(kind=JournalKind.DECISION, account="ACC-\u00e9", inputs=inputs,
                      payload=payload, store_payload=True, route=3, venue=2**32 - 1,
                      verdict=1, reason=9, config_version=2**64 - 1,
                      realtime_ns=1_700_000_000_000_000_123, monotonic_ns=5000)
        t2 = j.append(kind="risk_check", account=b"A2", payload=b"digested only",
                      realtime_ns=1_700_000_000_000_000_456)
        digest = hashlib.sha256(b"given").digest()
        t3 = j.append(kind=JOURNAL_KIND_HOST_FIRST + 1, payload_digest=digest)
        t4 = j.append()
        assert 0 < t1 < t2 < t3 < t4
        drain(j)
        assert all(j.is_written(t) for t in (t1, t2, t3, t4))
    got = records(tmp_path)
    assert [r.sequence for r in got] == [1, 2, 3, 4, 5]
    r1, r2, r3, r4, seal = got
    # The first record chains from the genesis value SHA-256("tollgate-genesis" || id).
    assert r1.prev == hashlib.sha256(b"tollgate-genesis" + j.id).digest()
    assert r1 == JournalRecord(
        type=JournalRecordType.EVENT, kind=JournalKind.DECISION, kind_name="decision",
        flags=3, checkpoint_flags=0, sequence=1, realtime_ns=1_700_000_000_000_000_123,
        monotonic_ns=5000, config_version=2**64 - 1, route=3, venue=2**32 - 1, verdict=1,
        reason=9, segment=1, offset=128, account="ACC-\u00e9".encode(), inputs=inputs,
        payload=payload, payload_digest=hashlib.sha256(payload).digest(), prev=r1.prev,
        replay=None)
    assert r1.payload_stored and not r1.is_checkpoint
    assert r2.kind is JournalKind.RISK_CHECK and r2.kind_name == "risk_check"
    assert r2.account == b"A2" and r2.payload == b"" and not r2.payload_stored
    assert r2.flags == 2 and r2.payload_digest == hashlib.sha256(b"digested only").digest()
    assert r2.offset > r1.offset and r2.segment == 1 and r2.prev != r1.prev
    assert r3.kind == 0x8001 and r3.kind_name == "host:0x8001" and r3.payload_digest == digest
    assert r4.kind is JournalKind.DECISION and r4.payload_digest is None and r4.flags == 0
    assert r4.account == b"" and r4.inputs == b"" and r4.realtime_ns > 0 and r4.monotonic_ns > 0
    assert seal.is_checkpoint and seal.kind == 0 and seal.kind_name == "checkpoint"
    assert seal.checkpoint_flags == 3 and seal.payload_digest is None  # seal + close
    report = verify_journal(tmp_path, public_key=ed25519_public_key(SEED))
    assert report and report.ok and report.closed and report.error is None
    assert (report.events, report.checkpoints, report.records, report.segments) == (4, 1, 5, 1)
    assert report.key == j.public_key and report.id == j.id and report.last_sequence == 5
    assert report.first_realtime_ns == 1_700_000_000_000_000_123 and report.warning_count == 0
    assert len(report.head) == 32
    # Records are values: equal, hashable, picklable.
    assert hash(r2) == hash(records(tmp_path)[1])
    assert pickle.loads(pickle.dumps(r1)) == r1


def test_reopen_continues_the_journal_and_refuses_another_key(tmp_path: Path) -> None:
    with open_poll(tmp_path) as j:
        j.append(account="a")
    with open_poll(tmp_path) as j:
        assert not j.recovery.created
        j.append(account="b")
    assert [r.account for r in events(tmp_path)] == [b"a", b"b"]
    with pytest.raises(InvalidArgumentError) as e:
        Journal(tmp_path, OTHER_SEED, mode="poll")
    assert e.value.code == lib.TG_EINVAL and e.value.message
    with pytest.raises(TollgateError):
        Journal(tmp_path / "missing", SEED, mode="poll", create_if_missing=False)


def test_tickets_and_durability_in_poll_mode(tmp_path: Path) -> None:
    j = open_poll(tmp_path)
    t = j.append(account="x")
    assert not j.is_written(t) and not j.is_durable(t)
    assert not j.is_written(0) and not j.is_durable(0)
    assert j.poll() == 1 and j.poll() == 0
    assert j.is_written(t) and not j.is_durable(t)  # durability "none": written, not synced
    # wait_durable polls in poll mode, but "none" never syncs a batch.
    assert j.wait_durable(t, timeout_s=0.02) is False
    j.sync()
    assert j.is_durable(t)
    assert j.wait_durable(t, 0) is True
    s = j.stats()
    assert s.written == 1 and s.written_ticket >= t and s.durable_ticket >= t and s.syncs >= 1
    assert j.status() is None
    j.close()
    j.close()  # idempotent
    assert j.closed and "closed" in repr(j)
    with pytest.raises(JournalClosedError) as e:
        j.append()
    assert isinstance(e.value, StateError) and e.value.code == lib.TG_ESTATE
    with pytest.raises(JournalClosedError):
        j.poll()
    j.sync()  # nothing left to sync
    assert j.is_durable(t) and j.stats().written == 1  # still answers after close

    # Every record batch is synced at the default level; wait_durable polls.
    k = Journal(tmp_path / "every", SEED, mode="poll")
    t = k.append()
    assert not k.is_written(t)
    assert k.wait_durable(t, 5.0) and k.is_durable(t) and k.is_written(t)
    with pytest.raises(InvalidArgumentError, match="ticket 0"):
        k.wait_durable(0, 1.0)
    k.close()


def test_thread_mode_writes_on_its_own(tmp_path: Path) -> None:
    with Journal(tmp_path, SEED, durability="every_t_us", sync_every_us=500) as j:
        assert j.mode is JournalMode.THREAD
        tickets = [j.append(account=f"A{i}", verdict=i) for i in range(50)]
        assert j.wait_durable(tickets[-1], 5.0)
        assert all(j.is_written(t) and j.is_durable(t) for t in tickets)
        assert j.poll() == 0  # helps the thread: nothing left
        assert j.wait_durable(tickets[-1]) is True  # no limit: already durable
    assert [r.verdict for r in events(tmp_path)] == list(range(50))


def test_close_races_appends_and_loses_no_accepted_entry(tmp_path: Path) -> None:
    j = Journal(tmp_path, SEED, durability="none")
    accepted: List[List[int]] = [[] for _ in range(4)]
    refused = [0] * 4
    start = threading.Barrier(5)

    def work(i: int) -> None:
        start.wait()
        for n in range(5000):
            try:
                accepted[i].append(j.append(account=f"T{i}", inputs=n.to_bytes(4, "little")))
            except JournalClosedError:
                refused[i] += 1

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    start.wait()
    j.close()
    for t in threads:
        t.join()
    tickets = [t for per in accepted for t in per]
    assert len(tickets) + sum(refused) == 4 * 5000
    assert all(j.is_written(t) for t in tickets)
    assert len(events(tmp_path)) == len(tickets) == j.stats().written


# -- the ring is full -------------------------------------------------------------------


def test_ring_full_reject(tmp_path: Path) -> None:
    j = open_poll(tmp_path, ring_cells=64, max_entry_bytes=256)
    with pytest.raises(JournalFullError) as e:
        for _ in range(200):
            j.append()
    assert e.value.code == lib.TG_EFULL and e.value.status == "TG_EFULL" and "closed" in e.value.message
    assert isinstance(e.value, TollgateError) and j.stats().rejected == 1
    drain(j)
    j.append()  # room again
    j.close()


def test_ring_full_drop_is_recorded(tmp_path: Path) -> None:
    j = open_poll(tmp_path, ring_cells=64, max_entry_bytes=256, on_full="drop")
    with pytest.raises(JournalDroppedError) as e:
        for _ in range(200):
            j.append()
    assert e.value.code == lib.TG_EDROPPED
    with pytest.raises(JournalDroppedError):
        j.append()
    drain(j)
    assert j.stats().dropped == 2
    j.close()
    dropped = [r for r in events(tmp_path) if r.kind is JournalKind.RECORDS_DROPPED]
    assert len(dropped) == 1 and dropped[0].kind_name == "records_dropped"
    assert struct.unpack("<QQ", dropped[0].inputs) == (2, 2)  # since the last report, total


def test_ring_full_block_waits_for_the_writer(tmp_path: Path) -> None:
    with Journal(tmp_path, SEED, durability="none", ring_cells=64, max_entry_bytes=256,
                 on_full="block") as j:
        tickets = [j.append(inputs=b"x" * 100) for _ in range(500)]
    assert len(events(tmp_path)) == 500 and j.stats().rejected == 0 and len(set(tickets)) == 500


# -- events -----------------------------------------------------------------------------


def test_checkpoint_events_in_thread_mode(tmp_path: Path) -> None:
    seen: List[JournalEvent] = []
    threads: List[int] = []

    def on_event(ev: JournalEvent) -> None:
        seen.append(ev)
        threads.append(threading.get_ident())

    with Journal(tmp_path, SEED, checkpoint_every_records=10, on_event=on_event) as j:
        tickets = [j.append() for _ in range(50)]
        assert j.wait_durable(tickets[-1], 5.0)
    checkpoints = [ev for ev in seen if ev.type is JournalEventType.CHECKPOINT]
    assert len(checkpoints) >= 5
    assert threading.get_ident() in threads  # the close checkpoint, on the closing thread
    assert any(t != threading.get_ident() for t in threads)  # the others on the writer's
    # Each checkpoint event names the chain head its record signs.
    heads = {ev.sequence: ev.head for ev in checkpoints}
    signed = {r.sequence: r.prev for r in records(tmp_path) if r.is_checkpoint}
    assert heads == signed
    assert all(ev.status == 0 and ev.message == "" and ev.segment == 1 for ev in checkpoints)


def test_events_in_poll_mode_run_on_the_calling_thread(tmp_path: Path) -> None:
    seen: List[Tuple[JournalEventType, int]] = []
    j = open_poll(tmp_path, checkpoint_every_records=2, max_segment_bytes=1024,
                  on_event=lambda ev: seen.append((ev.type, threading.get_ident())))
    for _ in range(6):
        j.append(inputs=b"y" * 100)
    drain(j)
    j.close()
    kinds = {t for t, _ in seen}
    assert JournalEventType.CHECKPOINT in kinds and JournalEventType.ROTATED in kinds
    assert {ident for _, ident in seen} == {threading.get_ident()}
    report = verify_journal(tmp_path)
    assert report.ok and report.segments >= 2


class Boom(Exception):
    pass


def test_callback_exceptions_are_raised_from_the_call_that_ran_it(tmp_path: Path) -> None:
    calls: List[JournalEvent] = []

    def cb(ev: JournalEvent) -> None:
        calls.append(ev)
        raise Boom(f"event {JournalEventType(ev.type).name} {ev.sequence}")

    j = open_poll(tmp_path, checkpoint_every_records=1, on_event=cb)
    t = j.append()
    with pytest.raises(Boom, match="CHECKPOINT"):
        j.poll()
    assert j.is_written(t)  # the work was done
    j.append()
    with pytest.raises(Boom):
        j.sync()
    with pytest.raises(Boom):
        j.close()  # the close seal's event
    assert j.closed and len(calls) >= 3
    assert verify_journal(tmp_path).closed


def test_callback_exception_on_the_writer_thread_is_printed(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    raised = threading.Event()

    def cb(ev: JournalEvent) -> None:
        if threading.current_thread() is not threading.main_thread():
            raised.set()
            raise Boom("from the writer thread")

    with Journal(tmp_path, SEED, checkpoint_every_records=1, on_event=cb) as j:
        t = j.append()
        assert raised.wait(5.0)
        t = j.append()
        assert j.wait_durable(t, 5.0)  # still working
        assert j.status() is None
    err = capfd.readouterr().err
    assert "exception in a journal on_event callback (ignored)" in err
    assert "from the writer thread" in err


def test_callback_may_not_drive_its_own_journal(tmp_path: Path) -> None:
    results: Dict[str, Any] = {}
    done = threading.Event()

    def attempt(name: str, fn: Callable[[], Any]) -> None:
        try:
            fn()
            results[name] = "ok"
        except BaseException as exc:  # noqa: BLE001
            results[name] = exc

    def cb(ev: JournalEvent) -> None:
        if ev.type is JournalEventType.CHECKPOINT and not results:
            attempt("poll", j.poll)
            attempt("sync", j.sync)
            attempt("close", j.close)
            attempt("wait_durable", lambda: j.wait_durable(1, 0.01))
            attempt("append", j.append)
            attempt("stats", j.stats)
            done.set()

    for mode in ("poll", "thread"):
        results.clear()
        done.clear()
        j = Journal(tmp_path / mode, SEED, mode=mode, checkpoint_every_records=1, on_event=cb)
        t = j.append()
        assert j.wait_durable(t, 5.0) and done.wait(5.0)
        for name in ("poll", "sync", "close", "wait_durable"):
            exc = results[name]
            assert type(exc) is StateError, (mode, name, exc)
            assert exc.code == lib.TG_ESTATE and "on_event" in exc.message
        assert results["append"] == "ok" and results["stats"] == "ok"
        assert not j.closed  # close from the callback closed nothing
        j.close()
        assert j.closed


def test_a_journal_released_inside_its_callback_is_still_closed(tmp_path: Path) -> None:
    # The library ignores tg_journal_free from the journal's own callback:
    # the binding frees it from another thread, so it is still sealed.
    holder: Dict[str, Journal] = {}
    released = threading.Event()

    def cb(ev: JournalEvent) -> None:
        if threading.current_thread() is not threading.main_thread() and "j" in holder:
            del holder["j"]  # the last reference, on the writer thread
            released.set()

    holder["j"] = Journal(tmp_path, SEED, durability="none", checkpoint_every_records=1,
                          on_event=cb)
    holder["j"].append()
    assert released.wait(5.0)
    deadline = time.monotonic() + 5.0
    while not verify_journal(tmp_path).closed and time.monotonic() < deadline:
        time.sleep(0.01)
    assert verify_journal(tmp_path).closed


def test_atexit_close_and_a_torn_tail(tmp_path: Path) -> None:
    # A journal left open at exit is closed: everything appended is there.
    script = textwrap.dedent(f"""
        import tollgate
        j = tollgate.Journal({str(tmp_path / 'a')!r}, {SEED!r}, durability="none")
        for i in range(100):
            j.append(verdict=i)
    """)
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    report = verify_journal(tmp_path / "a")
    assert report.ok and report.closed and report.events == 100
    # A process killed after writing leaves a torn tail that the next open cuts.
    script = textwrap.dedent(f"""
        import os, tollgate
        j = tollgate.Journal({str(tmp_path / 'b')!r}, {SEED!r}, mode="poll", durability="none")
        for i in range(10):
            j.append(inputs=b"w" * 100)
        j.poll()
        os._exit(0)
    """)
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    seg = tmp_path / "b" / SEGMENT_1
    with open(seg, "r+b") as f:
        f.truncate(os.path.getsize(seg) - 7)
    report = verify_journal(tmp_path / "b")
    assert report.ok and not report.closed and report.warning_count >= 1
    assert report.first_warning is not None and report.first_warning.category
    assert not verify_journal(tmp_path / "b", strict=True).ok
    reader = read_journal(tmp_path / "b")
    assert len(list(reader)) == 9 and reader.problem is None and reader.warnings
    with pytest.raises(JournalCorruptError):
        records(tmp_path / "b", strict=True)
    # An exception raised by on_event while the constructor recovers: the
    # constructor raises it, after closing the journal it opened.
    shutil.copytree(tmp_path / "b", tmp_path / "c")

    def boom(ev: JournalEvent) -> None:
        raise Boom(JournalEventType(ev.type).name)

    with pytest.raises(Boom, match="TAIL_TRUNCATED"):
        Journal(tmp_path / "c", SEED, mode="poll", on_event=boom)
    assert verify_journal(tmp_path / "c").closed
    seen: List[JournalEvent] = []
    with Journal(tmp_path / "b", SEED, mode="poll", on_event=seen.append) as j:
        assert j.recovery.tail_truncated and j.recovery.bytes_removed > 0
        assert j.recovery.records == 9
    cut = [ev for ev in seen if ev.type is JournalEventType.TAIL_TRUNCATED]
    assert len(cut) == 1 and cut[0].count == j.recovery.bytes_removed
    assert [r.kind for r in events(tmp_path / "b")].count(JournalKind.TAIL_TRUNCATED) == 1
    assert verify_journal(tmp_path / "b").closed


def test_io_error_stops_the_journal(tmp_path: Path) -> None:
    # A file-size limit in a child process: the writer's write fails with EFBIG.
    script = textwrap.dedent(f"""
        import errno, resource, signal, tollgate
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (8192, resource.RLIM_INFINITY))
        seen = []
        j = tollgate.Journal({str(tmp_path)!r}, {SEED!r}, mode="poll", durability="none",
                             max_batch_records=5, on_event=seen.append)
        tickets = [j.append(inputs=b"q" * 200) for _ in range(100)]
        try:
            while j.poll():
                pass
            raise SystemExit("no I/O error")
        except tollgate.JournalIOError as e:
            assert e.code == tollgate._native.lib.TG_EIO, e
        status = j.status()
        assert isinstance(status, tollgate.JournalIOError), status
        assert not j.is_written(tickets[-1])
        try:
            j.append()
            raise SystemExit("append after an I/O error")
        except tollgate.JournalIOError:
            pass
        io = [ev for ev in seen if ev.type is tollgate.JournalEventType.IO_ERROR]
        assert len(io) == 1 and io[0].error_number == errno.EFBIG and io[0].message, io
        assert io[0].status == tollgate._native.lib.TG_EIO
        try:
            j.close()
        except tollgate.JournalIOError:
            pass
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
    assert verify_journal(tmp_path).events > 0  # what was written before the error stays valid


# -- tampering --------------------------------------------------------------------------


def write_many(directory: Path, n: int = 1000) -> None:
    with open_poll(directory, checkpoint_every_records=100) as j:
        for i in range(n):
            j.append(account=f"ACC-{i % 7}", inputs=bytes(40), payload=bytes(100))
            if i % 300 == 0:
                drain(j)


def test_a_flipped_byte_is_located_by_verify_and_by_iteration(tmp_path: Path) -> None:
    write_many(tmp_path)
    assert verify_journal(tmp_path).ok
    seg = tmp_path / SEGMENT_1
    data = bytearray(seg.read_bytes())
    data[4000] ^= 0x20
    seg.write_bytes(bytes(data))

    report = verify_journal(tmp_path)
    assert not report and not report.ok and report.error is not None
    problem = report.error
    assert problem.category == "record" and problem.file == SEGMENT_1 and problem.segment == 1
    assert problem.offset <= 4000 < problem.offset + 300 and problem.sequence > 0
    assert problem.message and SEGMENT_1 in str(problem)

    reader = read_journal(tmp_path)
    got: List[JournalRecord] = []
    with pytest.raises(JournalCorruptError) as e:
        for rec in reader:
            got.append(rec)
    assert e.value.problem == problem == reader.problem
    assert e.value.code == lib.TG_EIO and "record" in str(e.value) and SEGMENT_1 in str(e.value)
    assert 0 < len(got) < 1000 and got[-1].sequence == problem.sequence - 1
    with pytest.raises(StopIteration):
        next(reader)  # the reader stays at the problem
    again = pickle.loads(pickle.dumps(e.value))
    assert type(again) is JournalCorruptError and again.problem == problem


def test_a_pinned_wrong_key_is_refused(tmp_path: Path) -> None:
    write_many(tmp_path, 10)
    right = ed25519_public_key(SEED)
    wrong = ed25519_public_key(OTHER_SEED)
    assert right != wrong and len(right) == 32
    assert verify_journal(tmp_path, public_key=right).ok
    report = verify_journal(tmp_path, public_key=wrong)
    assert not report.ok and report.error is not None and report.error.category == "manifest"
    with pytest.raises(JournalCorruptError) as e:
        next(read_journal(tmp_path, public_key=wrong))
    assert e.value.problem.category == "manifest"
    assert len(records(tmp_path, public_key=bytearray(right))) == 11


# -- recording and replaying ------------------------------------------------------------


def record_run(directory: Path, lie_at: int = -1) -> Tuple[int, int]:
    """Limiters (a child with a parent; one whose table is too small for its
    keys, so that where its fixed hash seed places them decides) and a
    breaker, journaled through a simulated run. Returns (decisions,
    capacity rejections)."""
    j = open_poll(directory)
    top = Limiter(Tier("t", 1_000_000, 1_000_000), hash_seed=7)
    lim = Limiter(Tier("t", 1000.0, 5), capacity=16, parent=top, hash_seed=0x1234_5678_9ABC_DEF0)
    small = Limiter(Tier("s", 10.0, 3), capacity=4, hash_seed=99)
    brk = Breaker(window_size=10, minimum_calls=5, open_ns=20 * MS)
    brk.on_event(lambda ev: j.record_breaker_transition(2, ev))
    j.record_limiter_define(10, top)
    j.record_limiter_define(1, lim, parent_instance=10)
    j.record_limiter_define(3, small)
    j.record_breaker_define(2, brk)
    now = 1000 * MS
    decisions = capacity = 0
    for i in range(600):
        key = f"K{i % 5}"
        now += 700_000
        d = lim.acquire(key, 1, 0, now_ns=now)
        recorded = d._replace(allowed=not d.allowed) if i == lie_at else d
        j.record_limiter_acquire(1, key, 0, 1, now, recorded, account=key, route=i)
        s = small.acquire(f"S{i % 9}", now_ns=now)
        capacity += s.reason is LimitReason.CAPACITY
        j.record_limiter_acquire(3, f"S{i % 9}", 0, 1, now, s)
        decisions += 2
        if i % 50 == 0:
            res = lim.reserve(key, 1, 0, now_ns=now)
            j.record_limiter_reserve(1, key, 0, 1, now, res)
            decisions += 1
            res.cancel(now_ns=now + 1)
            j.record_limiter_cancel(1, key, res, now + 1)
        if i == 300:
            lim.set_multiplier(0.5, now)
            j.record_limiter_multiplier(1, 0.5, now)
            lim.shadow = True
            j.record_limiter_shadow(1, True)
        if i == 400:
            lim.shadow = False
            j.record_limiter_shadow(1, False)
        if i == 500:
            brk.transition("forced_open", now)
            j.record_breaker_force(2, BreakerState.FORCED_OPEN, now)
            brk.transition("closed", now + 1)
            j.record_breaker_force(2, "closed", now + 1)
        if i % 100 == 0:
            drain(j)
        if not d.allowed:
            continue
        p = brk.acquire(now)
        j.record_breaker_acquire(2, now, p, account=key)
        decisions += 1
        if p.allowed:
            outcome = Outcome.FAILURE if 200 < i < 260 else Outcome.SUCCESS
            brk.record(p, outcome, 1000, now + 1000)
            j.record_breaker_outcome(2, p, outcome, 1000, now + 1000)
    assert brk.stats(now).transitions >= 4  # the run did open the breaker
    j.close()
    return decisions, capacity


def test_record_and_replay(tmp_path: Path) -> None:
    decisions, capacity = record_run(tmp_path)
    assert capacity > 0  # placement matters: the replay must use the recorded seed
    report = replay_journal(tmp_path)
    assert report and report.ok, report
    assert report.mismatches == 0 and report.issues == 0 and report.error is None
    assert report.first_mismatch is None and report.first_issue is None
    assert report.decisions == decisions and report.instances == 4 and report.transitions >= 4
    assert report.other == 0 and report.replayed > decisions and report.records > report.replayed
    # The inputs describe themselves.
    got = events(tmp_path)
    define = next(r.replay for r in got if r.replay and r.replay["op"] == "define"
                  and r.replay["instance"] == 1)
    assert define["component"] == "limiter" and define["parent"] == 10
    assert define["hash_seed"] == 0x1234_5678_9ABC_DEF0 and define["capacity"] == 16
    assert define["tiers"] == [{"name": "t", "rate": 1000.0, "burst": 5}]
    acquire = next(r for r in got if r.replay and r.replay["op"] == "acquire"
                   and r.replay["component"] == "limiter")
    assert acquire.replay is not None
    assert acquire.kind is JournalKind.DECISION and acquire.account == b"K0"
    assert acquire.verdict == (0 if acquire.replay["allowed"] else 1) and acquire.route == 0
    assert acquire.replay["key"].encode("latin-1") == b"K0" and acquire.replay["cost"] == 1
    ops = {(r.replay["component"], r.replay["op"]) for r in got if r.replay}
    assert ops == {("limiter", op) for op in ("define", "acquire", "reserve", "cancel",
                                              "multiplier", "shadow")} | {
        ("breaker", op) for op in ("define", "acquire", "outcome", "force", "transition")}
    kinds = {r.replay["op"]: r.kind for r in got if r.replay}
    assert kinds["define"] is JournalKind.CONFIG_CHANGE
    assert kinds["transition"] is JournalKind.BREAKER_TRANSITION
    assert describe_journal_inputs(acquire.inputs) == acquire.replay


def test_a_falsified_decision_is_reported(tmp_path: Path) -> None:
    record_run(tmp_path, lie_at=123)
    report = replay_journal(tmp_path, public_key=ed25519_public_key(SEED))
    assert not report and report.mismatches == 1 and report.issues == 0
    m = report.first_mismatch
    assert m is not None and m.component is ReplayComponent.LIMITER and m.instance == 1
    assert m.sequence > 0 and m.segment == 1 and m.offset > 0
    assert m.recorded.split()[0] != m.replayed.split()[0]  # "allowed" vs "rejected"


def test_replay_reports_issues_and_other_records(tmp_path: Path) -> None:
    with open_poll(tmp_path) as j:
        j.append(inputs=b"host bytes")
        j.record_limiter_acquire(5, b"k", 0, 1, T0, LimitDecision(True, LimitReason.NONE, 0, 4, False))
    report = replay_journal(tmp_path)
    assert not report.ok and report.other == 1 and report.issues == 1 and report.mismatches == 0
    assert report.first_issue is not None and "never defined" in report.first_issue.message
    assert report.first_issue.sequence == 2


def test_records_are_refused_like_appends(tmp_path: Path) -> None:
    j = open_poll(tmp_path, ring_cells=64, max_entry_bytes=256)
    d = LimitDecision(True, LimitReason.NONE, 0, 1, False)
    with pytest.raises(InvalidArgumentError, match="at most 1024"):
        j.record_limiter_acquire(1, b"k" * 1025, 0, 1, T0, d)
    with pytest.raises(InvalidArgumentError, match="at most 255"):
        j.record_limiter_acquire(1, b"k", 0, 1, T0, d, account="a" * 256)
    with pytest.raises(InvalidArgumentError, match="max_entry_bytes"):
        j.record_limiter_acquire(1, b"k" * 300, 0, 1, T0, d)
    with pytest.raises(JournalFullError):
        for _ in range(100):
            j.record_limiter_acquire(1, b"k", 0, 1, T0, d)
    j.close()
    with pytest.raises(JournalClosedError):
        j.record_limiter_shadow(1, True)


# -- small functions --------------------------------------------------------------------


def test_kind_names_keys_and_descriptions() -> None:
    assert journal_kind_name(JournalKind.BREAKER_TRANSITION) == "breaker_transition"
    assert journal_kind_name(0x8001) == "host:0x8001"
    assert journal_kind_name(7) == "unknown:0x0007"
    assert journal_kind_name(0xFF00) == "records_dropped"
    # RFC 8032, 7.1, TEST 1.
    seed = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    assert ed25519_public_key(seed).hex() == (
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
    assert describe_journal_inputs(b"\x01\x02\x03") is None
    assert describe_journal_inputs(b"") is None
    bad = describe_journal_inputs(b"r\x01\x01\x02\x01\x00\x00\x00")  # header only
    assert bad is not None and "error" in bad
    assert tollgate.status_str(lib.TG_EFULL) == "TG_EFULL"
    assert tollgate.status_str(lib.TG_EDROPPED) == "TG_EDROPPED"
    assert tollgate.status_str(lib.TG_EIO) == "TG_EIO"
    assert type(tollgate.errors.error_for(lib.TG_EIO)) is JournalIOError


def test_exports() -> None:
    for name in tollgate.journal.__all__:
        assert name in tollgate.__all__ and hasattr(tollgate, name)
    for name in ("JournalFullError", "JournalDroppedError", "JournalClosedError",
                 "JournalIOError", "JournalCorruptError"):
        assert name in tollgate.__all__ and issubclass(getattr(tollgate, name), TollgateError)
    assert issubclass(JournalClosedError, StateError)


def test_limiter_hash_seed() -> None:
    a = Limiter(Tier("t", 10, 1), capacity=1, hash_seed=2**64 - 1)
    assert a.acquire("x", now_ns=T0).allowed
    Limiter(hash_seed=0)  # 0: random, as None


# -- bad input --------------------------------------------------------------------------

NAN = float("nan")
INF = float("inf")
Case = Tuple[str, Callable[[Path], Any], Type[BaseException]]


def jp(path: Path, **options: Any) -> Journal:
    return open_poll(path / "j", **options)


C = TypeVar("C", Journal, JournalReader, Limiter, Breaker)


def closed(obj: C) -> C:
    obj.close()
    return obj


def permit() -> Any:
    return Breaker().acquire(T0)


DEC = LimitDecision(True, LimitReason.NONE, 0, 1, False)
EVENT = Event(BreakerState.CLOSED, BreakerState.OPEN, T0, 50.0, None, 1000)

BAD_CASES: List[Case] = [
    # Journal()
    ("directory int", lambda p: Journal(5, SEED), TypeError),  # type: ignore[arg-type]
    ("directory None", lambda p: Journal(None, SEED), TypeError),  # type: ignore[arg-type]
    ("directory empty", lambda p: Journal("", SEED), InvalidArgumentError),
    ("directory NUL", lambda p: Journal(str(p) + "\0x", SEED), InvalidArgumentError),
    ("directory unusable", lambda p: Journal(p / "no" / "such" / "dir", SEED), JournalIOError),
    ("directory is a file", lambda p: (p / "f").write_bytes(b"") or Journal(p / "f", SEED), JournalIOError),
    ("seed str", lambda p: Journal(p, "x" * 32), TypeError),  # type: ignore[arg-type]
    ("seed short", lambda p: Journal(p, b"x" * 31), InvalidArgumentError),
    ("seed long", lambda p: Journal(p, b"x" * 33), InvalidArgumentError),
    ("seed zero", lambda p: Journal(p, bytes(32)), InvalidArgumentError),
    ("mode unknown", lambda p: Journal(p, SEED, mode="fork"), InvalidArgumentError),
    ("mode 7", lambda p: Journal(p, SEED, mode=7), InvalidArgumentError),
    ("mode float", lambda p: Journal(p, SEED, mode=1.0), TypeError),  # type: ignore[arg-type]
    ("durability unknown", lambda p: Journal(p, SEED, durability="always"), ValueError),
    ("durability 4", lambda p: Journal(p, SEED, durability=4), ValueError),
    ("on_full unknown", lambda p: Journal(p, SEED, on_full="overflow"), ValueError),
    ("on_full bool", lambda p: Journal(p, SEED, on_full=True), TypeError),
    ("ring_cells not a power of two", lambda p: Journal(p, SEED, mode="poll", ring_cells=100), TollgateError),
    ("ring_cells negative", lambda p: Journal(p, SEED, ring_cells=-1), ValueError),
    ("ring_cells float", lambda p: Journal(p, SEED, ring_cells=64.0), TypeError),  # type: ignore[arg-type]
    ("max_entry_bytes 2**64", lambda p: Journal(p, SEED, max_entry_bytes=2**64), ValueError),
    ("sync_every_us str", lambda p: Journal(p, SEED, sync_every_us="1"), TypeError),  # type: ignore[arg-type]
    ("create_if_missing str", lambda p: Journal(p, SEED, create_if_missing="no"), TypeError),  # type: ignore[arg-type]
    ("on_event not callable", lambda p: Journal(p, SEED, on_event=5), TypeError),  # type: ignore[arg-type]
    ("unknown option", lambda p: Journal(p, SEED, fsync=True), TypeError),  # type: ignore[call-arg]
    # append
    ("append positional", lambda p: jp(p).append(b"x"), TypeError),  # type: ignore
    ("append inputs int", lambda p: jp(p).append(inputs=5), TypeError),  # type: ignore[arg-type]
    ("append account int", lambda p: jp(p).append(account=5), TypeError),  # type: ignore[arg-type]
    ("append account 256", lambda p: jp(p).append(account="a" * 256), InvalidArgumentError),
    ("append payload list", lambda p: jp(p).append(payload=[1]), TypeError),  # type: ignore[arg-type]
    ("append digest short", lambda p: jp(p).append(payload_digest=b"x" * 31), InvalidArgumentError),
    ("append digest str", lambda p: jp(p).append(payload_digest="x" * 32), TypeError),  # type: ignore[arg-type]
    ("append too large", lambda p: jp(p, max_entry_bytes=100).append(inputs=b"x" * 101), InvalidArgumentError),
    ("append kind 0", lambda p: jp(p).append(kind=0), InvalidArgumentError),
    ("append kind reserved", lambda p: jp(p).append(kind=7), InvalidArgumentError),
    ("append kind journal's", lambda p: jp(p).append(kind=JournalKind.RECORDS_DROPPED), InvalidArgumentError),
    ("append kind huge", lambda p: jp(p).append(kind=0x10000), InvalidArgumentError),
    ("append kind negative", lambda p: jp(p).append(kind=-1), ValueError),
    ("append kind unknown name", lambda p: jp(p).append(kind="trade"), ValueError),
    ("append kind float", lambda p: jp(p).append(kind=1.0), TypeError),  # type: ignore[arg-type]
    ("append route negative", lambda p: jp(p).append(route=-1), ValueError),
    ("append venue 2**32", lambda p: jp(p).append(venue=2**32), ValueError),
    ("append verdict str", lambda p: jp(p).append(verdict="1"), TypeError),  # type: ignore[arg-type]
    ("append config_version 2**64", lambda p: jp(p).append(config_version=2**64), ValueError),
    ("append realtime float", lambda p: jp(p).append(realtime_ns=1.5), TypeError),  # type: ignore[arg-type]
    ("append monotonic negative", lambda p: jp(p).append(monotonic_ns=-1), ValueError),
    # tickets and the writer
    ("is_written negative", lambda p: jp(p).is_written(-1), ValueError),
    ("is_written str", lambda p: jp(p).is_written("1"), TypeError),  # type: ignore[arg-type]
    ("is_durable 2**64", lambda p: jp(p).is_durable(2**64), ValueError),
    ("wait_durable ticket 0", lambda p: jp(p).wait_durable(0, 0.1), InvalidArgumentError),
    ("wait_durable ticket float", lambda p: jp(p).wait_durable(1.0, 0.1), TypeError),  # type: ignore[arg-type]
    ("wait_durable timeout negative", lambda p: jp(p).wait_durable(1, -1), InvalidArgumentError),
    ("wait_durable timeout NaN", lambda p: jp(p).wait_durable(1, NAN), ValueError),
    ("wait_durable timeout str", lambda p: jp(p).wait_durable(1, "1"), TypeError),  # type: ignore[arg-type]
    ("poll closed", lambda p: closed(jp(p)).poll(), JournalClosedError),
    ("wait_durable closed", lambda p: closed(jp(p)).wait_durable(10**6, 1), JournalClosedError),
    ("wait_durable closed thread", lambda p: closed(Journal(p, SEED)).wait_durable(10**6), JournalClosedError),
    # record_*
    ("define not a limiter", lambda p: jp(p).record_limiter_define(1, Breaker()), TypeError),  # type: ignore[arg-type]
    ("define closed limiter", lambda p: jp(p).record_limiter_define(1, closed(Limiter())), InvalidArgumentError),
    ("define instance negative", lambda p: jp(p).record_limiter_define(-1, Limiter()), ValueError),
    ("define parent 2**32", lambda p: jp(p).record_limiter_define(1, Limiter(), 2**32), ValueError),
    ("define parent str", lambda p: jp(p).record_limiter_define(1, Limiter(), "p"), TypeError),  # type: ignore[arg-type]
    ("acquire key int", lambda p: jp(p).record_limiter_acquire(1, 5, 0, 1, T0, DEC), TypeError),  # type: ignore[arg-type]
    ("acquire decision tuple", lambda p: jp(p).record_limiter_acquire(1, b"k", 0, 1, T0, (1, 0, 0, 0, 0)), TypeError),  # type: ignore[arg-type]
    ("acquire tier negative", lambda p: jp(p).record_limiter_acquire(1, b"k", -1, 1, T0, DEC), ValueError),
    ("acquire tier name", lambda p: jp(p).record_limiter_acquire(1, b"k", "t", 1, T0, DEC), TypeError),  # type: ignore[arg-type]
    ("acquire cost 2**32", lambda p: jp(p).record_limiter_acquire(1, b"k", 0, 2**32, T0, DEC), ValueError),
    ("acquire now negative", lambda p: jp(p).record_limiter_acquire(1, b"k", 0, 1, -1, DEC), ValueError),
    ("acquire now None", lambda p: jp(p).record_limiter_acquire(1, b"k", 0, 1, None, DEC), TypeError),  # type: ignore[arg-type]
    ("acquire account int", lambda p: jp(p).record_limiter_acquire(1, b"k", 0, 1, T0, DEC, account=1), TypeError),  # type: ignore[arg-type]
    ("acquire route negative", lambda p: jp(p).record_limiter_acquire(1, b"k", 0, 1, T0, DEC, route=-1), ValueError),
    ("acquire realtime 2**64", lambda p: jp(p).record_limiter_acquire(1, b"k", 0, 1, T0, DEC, realtime_ns=2**64), ValueError),
    ("acquire payload int", lambda p: jp(p).record_limiter_acquire(1, b"k", 0, 1, T0, DEC, payload=3), TypeError),  # type: ignore[arg-type]
    ("reserve not a reservation", lambda p: jp(p).record_limiter_reserve(1, b"k", 0, 1, T0, DEC), TypeError),  # type: ignore[arg-type]
    ("cancel not a reservation", lambda p: jp(p).record_limiter_cancel(1, b"k", None, T0), TypeError),  # type: ignore[arg-type]
    ("cancel now negative", lambda p: jp(p).record_limiter_cancel(1, b"k", Limiter().reserve(b"k", now_ns=T0), -1), ValueError),
    ("multiplier NaN", lambda p: jp(p).record_limiter_multiplier(1, NAN, T0), ValueError),
    ("multiplier inf", lambda p: jp(p).record_limiter_multiplier(1, INF, T0), ValueError),
    ("multiplier str", lambda p: jp(p).record_limiter_multiplier(1, "2", T0), TypeError),  # type: ignore[arg-type]
    ("shadow str", lambda p: jp(p).record_limiter_shadow(1, "on"), TypeError),  # type: ignore[arg-type]
    ("breaker define not a breaker", lambda p: jp(p).record_breaker_define(1, Limiter()), TypeError),  # type: ignore[arg-type]
    ("breaker define closed", lambda p: jp(p).record_breaker_define(1, closed(Breaker())), InvalidArgumentError),
    ("breaker acquire not a permit", lambda p: jp(p).record_breaker_acquire(1, T0, object()), TypeError),  # type: ignore[arg-type]
    ("breaker acquire now float", lambda p: jp(p).record_breaker_acquire(1, 1.5, permit()), TypeError),  # type: ignore[arg-type]
    ("outcome unknown name", lambda p: jp(p).record_breaker_outcome(1, permit(), "crashed", 0, T0), ValueError),
    ("outcome 3", lambda p: jp(p).record_breaker_outcome(1, permit(), 3, 0, T0), InvalidArgumentError),
    ("outcome float", lambda p: jp(p).record_breaker_outcome(1, permit(), 0.0, 0, T0), TypeError),  # type: ignore[arg-type]
    ("outcome latency negative", lambda p: jp(p).record_breaker_outcome(1, permit(), 0, -1, T0), ValueError),
    ("force unknown state", lambda p: jp(p).record_breaker_force(1, "ajar", T0), ValueError),
    ("force state 7", lambda p: jp(p).record_breaker_force(1, 7, T0), InvalidArgumentError),
    ("force state float", lambda p: jp(p).record_breaker_force(1, 1.0, T0), TypeError),  # type: ignore[arg-type]
    ("transition not an Event", lambda p: jp(p).record_breaker_transition(1, (0, 1)), TypeError),  # type: ignore[arg-type]
    ("transition state 9", lambda p: jp(p).record_breaker_transition(1, Event(0, 9, T0, None, None, 0)), InvalidArgumentError),
    ("transition rate NaN", lambda p: jp(p).record_breaker_transition(1, Event(0, 1, T0, NAN, None, 0)), ValueError),
    ("transition rate inf", lambda p: jp(p).record_breaker_transition(1, Event(0, 1, T0, INF, None, 0)), ValueError),
    ("transition now negative", lambda p: jp(p).record_breaker_transition(1, Event(0, 1, -1, None, None, 0)), ValueError),
    # reading
    ("read directory missing", lambda p: read_journal(p / "missing"), NotFoundError),
    ("read directory int", lambda p: read_journal(3), TypeError),  # type: ignore[arg-type]
    ("read key short", lambda p: read_journal(p, public_key=b"k" * 31), InvalidArgumentError),
    ("read key str", lambda p: read_journal(p, public_key="k" * 32), TypeError),  # type: ignore[arg-type]
    ("read strict str", lambda p: read_journal(p, strict="yes"), TypeError),  # type: ignore[arg-type]
    ("read closed", lambda p: next(closed(read_journal(jp(p).directory))), InvalidArgumentError),
    ("read empty directory", lambda p: next(read_journal(p)), JournalCorruptError),
    ("verify directory missing", lambda p: verify_journal(p / "missing"), NotFoundError),
    ("verify directory empty", lambda p: verify_journal(""), InvalidArgumentError),
    ("verify key long", lambda p: verify_journal(p, public_key=b"k" * 33), InvalidArgumentError),
    ("replay directory missing", lambda p: replay_journal(p / "missing"), NotFoundError),
    ("replay directory NUL", lambda p: replay_journal("a\0b"), InvalidArgumentError),
    ("replay key int", lambda p: replay_journal(p, public_key=5), TypeError),  # type: ignore[arg-type]
    ("kind name negative", lambda p: journal_kind_name(-1), ValueError),
    ("kind name 0x10000", lambda p: journal_kind_name(0x10000), ValueError),
    ("kind name str", lambda p: journal_kind_name("decision"), TypeError),  # type: ignore[arg-type]
    ("public key short seed", lambda p: ed25519_public_key(b"s" * 31), InvalidArgumentError),
    ("public key str seed", lambda p: ed25519_public_key("s" * 32), TypeError),  # type: ignore[arg-type]
    ("describe str", lambda p: describe_journal_inputs("r"), TypeError),  # type: ignore[arg-type]
    ("limiter hash_seed negative", lambda p: Limiter(hash_seed=-1), ValueError),
    ("limiter hash_seed 2**64", lambda p: Limiter(hash_seed=2**64), ValueError),
    ("limiter hash_seed str", lambda p: Limiter(hash_seed="7"), TypeError),  # type: ignore[arg-type]
]


@pytest.mark.parametrize("name,fn,exc", BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_bad_input_raises(tmp_path: Path, name: str, fn: Callable[[Path], Any],
                          exc: Type[BaseException]) -> None:
    with pytest.raises(exc) as info:
        fn(tmp_path)
    assert str(info.value), f"{name}: empty message"
    if isinstance(info.value, TollgateError):
        e = info.value
        assert e.code < 0 and e.status == tollgate.status_str(e.code) and e.message
