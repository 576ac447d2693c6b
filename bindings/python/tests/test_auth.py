"""Request authentication through the binding: the shared vectors of
tests/vectors/auth_vectors.txt (HMAC, canonical form, signature, server
verification then replay, rejected requests and their details) and the
cases of tests/capi/test_auth.c (every failure reason, rotation, revocation
and versioned lists, events and re-entry, stats, bad calls), plus the
binding's own: argument forms and types, the client conveniences (nonce,
wall-clock timestamp, signed header lists), errors carrying the C status,
on_event exceptions, closed authenticators, nonce capacity failing closed,
and threads (after a revocation returns, no verification succeeds)."""

from __future__ import annotations

import email.message
import gc
import hashlib
import hmac
import inspect
import os
import random
import re
import threading
import time
import weakref
from pathlib import Path
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Tuple

import pytest
from conftest import SECOND

import tollgate
from tollgate import (
    AUTH_DETAILS,
    AUTH_SCHEME,
    AuthEvent,
    AuthEventKind,
    Authenticator,
    AuthReason,
    AuthResult,
    AuthStats,
    InvalidArgumentError,
    NotFoundError,
    StateError,
    canonical_request,
    generate_nonce,
    hmac_sha256,
    sign_request,
)
from tollgate._native import ffi, lib

A = AuthReason
K = AuthEventKind
U64_MAX = 2**64 - 1
#: Wall-clock nanoseconds of the C tests (2023-11-14).
T0 = 1_700_000_000 * SECOND
SECRET = b"secret-for-tests"


def assert_status(exc: pytest.ExceptionInfo[Any], status: str) -> None:
    assert exc.value.status == status
    assert exc.value.code == getattr(lib, status)


# -- the shared vectors ----------------------------------------------------------------


def _vectors_path() -> Path:
    """tests/vectors/auth_vectors.txt of the repository these tests belong to.

    Found from this file (bindings/python/tests/ is three levels below the
    root), not from the tollgate package, which may be installed anywhere.
    TOLLGATE_AUTH_VECTORS overrides it.
    """
    override = os.environ.get("TOLLGATE_AUTH_VECTORS")
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[3] / "tests" / "vectors" / "auth_vectors.txt"


VECTORS_PATH = _vectors_path()


def _unhex(field: str) -> bytes:
    return b"" if field == "-" else bytes.fromhex(field)


def _headers(field: str) -> List[Tuple[bytes, bytes]]:
    """'-' or name(hex):value(hex) pairs joined by ',' (an empty value is empty)."""
    if field == "-":
        return []
    out = []
    for item in field.split(","):
        if not item:
            continue
        name, _, value = item.partition(":")
        out.append((bytes.fromhex(name), bytes.fromhex(value)))
    return out


class SignVector(NamedTuple):
    name: str
    secret: bytes
    method: str
    target: bytes
    headers: List[Tuple[bytes, bytes]]
    body: bytes
    key_id: bytes
    token: bytes
    timestamp_ns: int
    nonce: bytes
    signed_headers: bytes
    canonical: bytes
    authorization: bytes


class RejectVector(NamedTuple):
    name: str
    method: bytes
    target: bytes
    headers: List[Tuple[bytes, bytes]]
    body: bytes
    key_id: bytes
    token: bytes
    timestamp_ns: int
    nonce: bytes
    signed_headers: bytes
    detail: str


def _load_vectors() -> Tuple[List[Tuple[bytes, bytes, bytes]], List[SignVector], List[RejectVector]]:
    if not VECTORS_PATH.is_file():
        raise FileNotFoundError(
            f"the shared auth vectors are not at {VECTORS_PATH}: run the tests from a checkout "
            "of the repository, or set TOLLGATE_AUTH_VECTORS to the file"
        )
    hmacs, signs, rejects = [], [], []
    for lineno, line in enumerate(VECTORS_PATH.read_text(encoding="ascii").splitlines(), 1):
        if not line or line.startswith("#"):
            continue
        kind, *f = line.split()
        if kind == "hmac":
            assert len(f) == 3, f"line {lineno}"
            hmacs.append((_unhex(f[0]), _unhex(f[1]), _unhex(f[2])))
        elif kind == "sign":
            assert len(f) == 13, f"line {lineno}"
            signs.append(SignVector(
                f[0], _unhex(f[1]), f[2], _unhex(f[3]), _headers(f[4]), _unhex(f[5]),
                _unhex(f[6]), _unhex(f[7]), int(f[8]), _unhex(f[9]), _unhex(f[10]),
                _unhex(f[11]), _unhex(f[12])))
        elif kind == "reject":
            assert len(f) == 11, f"line {lineno}"
            rejects.append(RejectVector(
                f[0], _unhex(f[1]), _unhex(f[2]), _headers(f[3]), _unhex(f[4]), _unhex(f[5]),
                _unhex(f[6]), int(f[7]), _unhex(f[8]), _unhex(f[9]), f[10]))
        else:
            raise AssertionError(f"{VECTORS_PATH}:{lineno}: unknown vector kind {kind!r}")
    return hmacs, signs, rejects


HMAC_VECTORS, SIGN_VECTORS, REJECT_VECTORS = _load_vectors()


def test_the_vector_file_has_every_kind() -> None:
    # As the C test: at least the RFC 4231 cases, and every sign and reject case.
    assert len(HMAC_VECTORS) >= 6
    assert len(SIGN_VECTORS) >= 10
    assert len(REJECT_VECTORS) >= 13
    assert len({v.name for v in SIGN_VECTORS}) == len(SIGN_VECTORS)
    # Every detail a reject vector names is one the library knows.
    assert {v.detail for v in REJECT_VECTORS} <= set(AUTH_DETAILS)


@pytest.mark.parametrize("key, msg, mac", HMAC_VECTORS,
                         ids=[f"hmac{i}" for i in range(len(HMAC_VECTORS))])
def test_hmac_vectors(key: bytes, msg: bytes, mac: bytes) -> None:
    assert hmac_sha256(key, msg) == mac
    assert hmac_sha256(bytearray(key), memoryview(msg)) == mac


def _client_args(v: SignVector) -> Dict[str, Any]:
    return dict(
        key_id=v.key_id, token=v.token or None, nonce=v.nonce, timestamp_ns=v.timestamp_ns,
        signed_headers=v.signed_headers or None,
    )


@pytest.mark.parametrize("v", SIGN_VECTORS, ids=[v.name for v in SIGN_VECTORS])
def test_sign_vectors(v: SignVector) -> None:
    args = _client_args(v)
    # The canonical form and the header, byte for byte.
    assert canonical_request(v.method, v.target, v.headers, v.body, **args) == v.canonical
    auth_value = sign_request(v.method, v.target, v.headers, v.body, secret=v.secret, **args)
    assert auth_value.encode("ascii") == v.authorization
    # The same with the body's digest instead of the body, and with str
    # arguments where the bytes are ASCII.
    digest = hashlib.sha256(v.body).digest()
    assert canonical_request(v.method, v.target, v.headers, body_sha256=digest, **args) == v.canonical
    text_args = dict(args, key_id=v.key_id.decode(), nonce=v.nonce.decode())
    assert sign_request(v.method, v.target.decode("latin-1") if v.target.isascii() else v.target,
                        v.headers, v.body, secret=v.secret, **text_args) == auth_value
    names = [n for n, _ in v.headers]
    if len({n for n in names}) == len(names):
        assert sign_request(v.method, v.target, dict(v.headers), v.body, secret=v.secret,
                            **args) == auth_value
    # The MAC is HMAC-SHA256 of the canonical form (checked with the stdlib too).
    signature = auth_value.rsplit("Signature=", 1)[1]
    assert signature == hmac.new(v.secret, v.canonical, hashlib.sha256).hexdigest()
    assert hmac_sha256(v.secret, v.canonical).hex() == signature

    # The server accepts it once, then refuses the replay.
    with Authenticator(max_skew_ns=30 * SECOND, nonce_capacity=1024) as a:
        a.add_key(v.key_id, v.secret, 0, U64_MAX, now_ns=v.timestamp_ns)
        r = a.verify(v.method, v.target, v.headers, v.body, authorization=auth_value,
                     now_ns=v.timestamp_ns)
        assert r.ok and r.reason is A.OK and r.detail == "none", r
        assert r.timestamp_ns == v.timestamp_ns
        assert r.key_id == v.key_id.decode() and r.nonce == v.nonce.decode()
        assert r.token == v.token.decode()
        again = a.verify(v.method, v.target, v.headers, v.body, authorization=v.authorization,
                         now_ns=v.timestamp_ns)
        assert again.reason is A.REPLAY and not again
        # One flipped byte of the body, of the target or of a signed header
        # value breaks the signature (checked before the nonce: not a replay).
        if v.body:
            flipped = bytearray(v.body)
            flipped[len(flipped) // 2] ^= 1
            r = a.verify(v.method, v.target, v.headers, bytes(flipped),
                         authorization=auth_value, now_ns=v.timestamp_ns)
            assert r.reason is A.BAD_SIGNATURE
        r = a.verify(v.method, v.target + b"x", v.headers, v.body, authorization=auth_value,
                     now_ns=v.timestamp_ns)
        assert r.reason is A.BAD_SIGNATURE
        if v.signed_headers:
            first = v.signed_headers.split(b";")[0]
            changed = [(n, val + b"!" if n.lower() == first else val) for n, val in v.headers]
            r = a.verify(v.method, v.target, changed, v.body, authorization=auth_value,
                         now_ns=v.timestamp_ns)
            assert r.reason is A.BAD_SIGNATURE
        s = a.stats()
        assert s.verified == 1 and s.results[A.REPLAY] == 1


@pytest.mark.parametrize("v", REJECT_VECTORS, ids=[v.name for v in REJECT_VECTORS])
def test_reject_vectors(v: RejectVector) -> None:
    args: Dict[str, Any] = dict(key_id=v.key_id, token=v.token or None, nonce=v.nonce,
                                timestamp_ns=v.timestamp_ns,
                                signed_headers=v.signed_headers or None)
    with pytest.raises(InvalidArgumentError) as e:
        canonical_request(v.method, v.target, v.headers, v.body, **args)
    assert_status(e, "TG_EINVAL")
    assert v.detail in e.value.message
    with pytest.raises(InvalidArgumentError) as e:
        sign_request(v.method, v.target, v.headers, v.body, secret=b"s", **args)
    assert v.detail in e.value.message
    # The server reports the same detail (as the C test builds the header).
    a = Authenticator(max_skew_ns=30 * SECOND, nonce_capacity=1024)
    a.add_key("k1", b"s", now_ns=v.timestamp_ns)
    header = (
        f"{AUTH_SCHEME} KeyId={v.key_id.decode()}, "
        + (f"SignedHeaders={v.signed_headers.decode()}, " if v.signed_headers else "")
        + f"Timestamp={v.timestamp_ns}, Nonce={v.nonce.decode()}, Signature={'0' * 64}"
    )
    r = a.verify(v.method, v.target, v.headers, v.body, authorization=header,
                 now_ns=v.timestamp_ns)
    assert r.reason is A.MALFORMED and not r.ok
    assert r.detail == v.detail
    assert a.stats().results[A.MALFORMED] == 1


# -- names and options -------------------------------------------------------------------


def test_reasons_details_and_their_names_are_the_librarys() -> None:
    assert len(AuthReason) == lib.TG_AUTH_REASON_COUNT
    for r in AuthReason:
        want = ffi.string(lib.tg_auth_reason_name(r)).decode()
        assert tollgate.auth_reason_name(r) == want
        assert want == ("none" if r is A.OK else r.name.lower())
    assert tollgate.auth_reason_name(lib.TG_AUTH_REASON_COUNT) == "unknown"
    assert tollgate.auth_reason_name(-1) == "unknown"
    assert tollgate.auth_reason_name(2**40) == "unknown"
    assert AUTH_DETAILS[0] == "none" and AUTH_DETAILS[14] == "missing_header"
    assert len(AUTH_DETAILS) == 18
    for i, name in enumerate(AUTH_DETAILS):
        assert tollgate.auth_detail_name(i) == name == ffi.string(lib.tg_auth_detail_name(i)).decode()
    assert tollgate.auth_detail_name(len(AUTH_DETAILS)) == "unknown"
    assert tollgate.auth_detail_name(-1) == "unknown"
    assert tollgate.auth_detail_name(-(2**63)) == "unknown"
    for bad in ("skew", 1.0, None, True):
        with pytest.raises(TypeError):
            tollgate.auth_reason_name(bad)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            tollgate.auth_detail_name(bad)  # type: ignore[arg-type]
    assert [int(k) for k in AuthEventKind] == list(range(7))
    assert AUTH_SCHEME == "TG1-HMAC-SHA256"


def test_keyword_defaults_are_the_librarys() -> None:
    opts = ffi.new("tg_auth_options*")
    lib.tg_auth_options_init(opts)
    params = inspect.signature(Authenticator).parameters
    assert params["max_skew_ns"].default == opts.max_skew_ns == 30 * SECOND
    assert params["nonce_capacity"].default == opts.nonce_capacity
    assert 16 <= opts.nonce_capacity <= 2**26
    assert params["seed"].default == opts.seed == 0
    assert Authenticator().nonce_capacity == opts.nonce_capacity
    a = Authenticator(nonce_capacity=64)
    assert a.max_skew_ns == 30 * SECOND and a.nonce_capacity == 64
    assert "max_skew_ns=30000000000" in repr(a)


def test_bad_options() -> None:
    for kwargs, status, needle in [
        (dict(max_skew_ns=0), "TG_ERANGE", "max_skew_ns"),
        (dict(max_skew_ns=24 * 3600 * SECOND + 1), "TG_ERANGE", "max_skew_ns"),
        (dict(nonce_capacity=15), "TG_ERANGE", "nonce_capacity"),
        (dict(nonce_capacity=2**26 + 1), "TG_ERANGE", "nonce_capacity"),
        (dict(nonce_capacity=0), "TG_ERANGE", "nonce_capacity"),
        (dict(max_skew_ns=-1), "TG_EINVAL", "max_skew_ns"),
        (dict(seed=2**64), "TG_EINVAL", "seed"),
        (dict(nonce_capacity=2**64), "TG_EINVAL", "nonce_capacity"),
    ]:
        with pytest.raises(InvalidArgumentError) as e:
            Authenticator(**kwargs)  # type: ignore[arg-type]
        assert_status(e, status)
        assert needle in e.value.message, (kwargs, e.value.message)
    wrong_types: List[Dict[str, Any]] = [
        dict(max_skew_ns=1.5), dict(max_skew_ns="1"), dict(nonce_capacity=True), dict(seed=None),
        dict(on_event=42), dict(max_skew_ns=None)]
    for kwargs in wrong_types:
        with pytest.raises(TypeError):
            Authenticator(**kwargs)  # type: ignore[arg-type]
    # The extremes the library accepts (not 2**26 nonces: that is 4 GiB).
    Authenticator(max_skew_ns=24 * 3600 * SECOND, nonce_capacity=16, seed=U64_MAX)
    Authenticator(max_skew_ns=1, nonce_capacity=16, seed=1)


# -- helpers for the C test's cases ------------------------------------------------------------


def sign_simple(key: str, token: Optional[str], nonce: str, ts: int,
                secret: bytes = SECRET) -> str:
    return sign_request("GET", "/x", key_id=key, secret=secret, token=token, nonce=nonce,
                        timestamp_ns=ts)


def verify_simple(a: Authenticator, header: str, now: int) -> AuthReason:
    r = a.verify("GET", "/x", authorization=header, now_ns=now)
    assert bool(r) is r.ok is (r.reason is A.OK)
    return r.reason  # type: ignore[return-value]


# -- every reason, revocation, events, stats (test_reasons) ---------------------------


def test_reasons_revocation_events_and_stats() -> None:
    a = Authenticator(max_skew_ns=10 * SECOND, nonce_capacity=64)
    events: List[AuthEvent] = []
    assert a.on_event(events.append) is not None
    a.add_key("k1", SECRET, T0 - 100 * SECOND, T0 + 100 * SECOND, now_ns=T0)

    # ok, replay, skew either way, unknown key, bad signature, malformed.
    h = sign_simple("k1", None, "nonce-c-0001", T0)
    assert verify_simple(a, h, T0) is A.OK
    assert verify_simple(a, h, T0 + 1) is A.REPLAY
    h = sign_simple("k1", None, "nonce-c-0002", T0 - 11 * SECOND)
    assert verify_simple(a, h, T0) is A.SKEW
    h = sign_simple("k1", None, "nonce-c-0003", T0 + 11 * SECOND)
    assert verify_simple(a, h, T0) is A.SKEW
    h = sign_simple("nokey", None, "nonce-c-0004", T0)
    assert verify_simple(a, h, T0) is A.UNKNOWN_KEY
    h = sign_simple("k1", None, "nonce-c-0006", T0 + 1)
    tampered = h[:-1] + ("b" if h[-1] == "a" else "a")
    assert verify_simple(a, tampered, T0 + 1) is A.BAD_SIGNATURE
    r = a.verify("GET", "/x", authorization="Basic x", now_ns=T0)
    assert r.reason is A.MALFORMED and r.detail == "bad_scheme"
    assert (r.key_id, r.token, r.nonce, r.timestamp_ns) == ("", "", "", 0)
    # A signature made with another secret is a bad signature too.
    h = sign_simple("k1", None, "nonce-c-0010", T0 + 1, secret=b"not-the-secret")
    assert verify_simple(a, h, T0 + 1) is A.BAD_SIGNATURE

    # Revocation: a token, then a key; versioned lists; events.
    h = sign_simple("k1", "tok-1", "nonce-c-0007", T0 + 2)
    a.revoke_token("tok-1", now_ns=T0)
    assert verify_simple(a, h, T0 + 2) is A.REVOKED_TOKEN
    a.unrevoke_token("tok-1", now_ns=T0)
    r = a.verify("GET", "/x", authorization=h, now_ns=T0 + 2)
    assert r.ok and r.token == "tok-1" and r.key_id == "k1" and r.nonce == "nonce-c-0007"
    a.revoke_key("k1", now_ns=T0)
    h = sign_simple("k1", None, "nonce-c-0008", T0 + 3)
    assert verify_simple(a, h, T0 + 3) is A.REVOKED_KEY
    assert a.revocation_version == 3
    with pytest.raises(StateError) as e:
        a.replace_revocations(3, ["k7"], ["t1", "t2"], now_ns=T0)
    assert_status(e, "TG_ESTATE")
    assert "not newer" in e.value.message
    assert a.revocation_version == 3
    a.replace_revocations(7, ["k7"], ["t1", "t2"], now_ns=T0)
    assert a.revocation_version == 7
    h = sign_simple("k1", None, "nonce-c-0009", T0 + 4)
    assert verify_simple(a, h, T0 + 4) is A.OK  # k1 is no longer in the list
    # Last: it moves the clock (and the window's lower edge) 100 s ahead.
    h = sign_simple("k1", None, "nonce-c-0005", T0 + 100 * SECOND)
    assert verify_simple(a, h, T0 + 100 * SECOND) is A.EXPIRED_KEY

    assert events == [
        AuthEvent(K.KEY_ADDED, "k1", 0, T0),
        AuthEvent(K.TOKEN_REVOKED, "tok-1", 1, T0),
        AuthEvent(K.TOKEN_REINSTATED, "tok-1", 2, T0),
        AuthEvent(K.KEY_REVOKED, "k1", 3, T0),
        AuthEvent(K.REVOCATIONS_REPLACED, "", 7, T0),
    ]
    assert all(isinstance(ev.kind, AuthEventKind) for ev in events)

    # A callback cannot change its own authenticator: the refusal, uncaught,
    # surfaces from the call that made the change, which took effect.
    a.on_event(lambda ev: a.revoke_key("k9", now_ns=0))
    with pytest.raises(StateError) as e:
        a.remove_key("k1", now_ns=T0)
    assert_status(e, "TG_ESTATE")
    assert "event callback cannot change" in e.value.message
    a.on_event(None)
    with pytest.raises(NotFoundError) as not_found:
        a.remove_key("k1", now_ns=T0)  # it was removed
    assert_status(not_found, "TG_ENOTFOUND")
    assert a.revocation_version == 7  # k9 was never revoked

    s = a.stats()
    assert isinstance(s, AuthStats)
    assert s.results[A.OK] == s.verified == 3
    assert s.results[A.REPLAY] == 1
    assert s.results[A.SKEW] == 2
    assert s.results[A.MALFORMED] == 1
    assert s.results[A.REVOKED_KEY] == 1
    assert s.results[A.REVOKED_TOKEN] == 1
    assert s.results[A.EXPIRED_KEY] == 1
    assert s.results[A.UNKNOWN_KEY] == 1
    assert s.results[A.BAD_SIGNATURE] == 2
    assert s.results[A.NONCE_CAPACITY] == 0
    assert s.rejected == 10
    assert set(s.results) == set(AuthReason)
    assert (s.keys, s.revoked_keys, s.revoked_tokens, s.revocation_version) == (0, 1, 2, 7)


def test_skew_window_follows_the_latest_clock_seen() -> None:
    a = Authenticator(max_skew_ns=10 * SECOND, nonce_capacity=64)
    a.add_key("k1", SECRET)
    # At the edges of the window: exactly max_skew_ns either way passes.
    assert verify_simple(a, sign_simple("k1", None, "edge-ahead", T0 + 10 * SECOND), T0) is A.OK
    assert verify_simple(a, sign_simple("k1", None, "edge-behind", T0), T0 + 10 * SECOND) is A.OK
    assert verify_simple(a, sign_simple("k1", None, "past-edge", T0 - 1), T0 + 10 * SECOND) is A.SKEW
    # The clock stepping back does not reopen the window of a forgotten nonce:
    # once T0 + 20 s was seen, a request accepted at T0 (its nonce expired,
    # perhaps forgotten) is refused even when the clock says T0 again.
    first = sign_simple("k1", None, "stepped-back", T0)
    assert verify_simple(a, first, T0) is A.OK
    assert verify_simple(a, sign_simple("k1", None, "moves-clock", T0 + 20 * SECOND),
                         T0 + 20 * SECOND) is A.OK
    assert verify_simple(a, first, T0) is A.SKEW
    assert verify_simple(a, sign_simple("k1", None, "fresh-0001", T0 + 9 * SECOND), T0) is A.SKEW
    assert verify_simple(a, sign_simple("k1", None, "fresh-0002", T0 + 10 * SECOND), T0) is A.OK
    # Any header that parses moves the clock (before the key is even looked
    # up); one that does not parse does not.
    a.verify("GET", "/x", authorization="Basic", now_ns=T0 + 100 * SECOND)
    assert verify_simple(a, sign_simple("k1", None, "fresh-0003", T0 + 20 * SECOND),
                         T0 + 20 * SECOND) is A.OK
    a.verify("GET", "/x", authorization=sign_simple("nokey", None, "fresh-0004", T0),
             now_ns=T0 + 100 * SECOND)
    assert verify_simple(a, sign_simple("k1", None, "fresh-0005", T0 + 20 * SECOND),
                         T0 + 20 * SECOND) is A.SKEW


def test_nonces_are_per_key_and_remembered_for_the_window() -> None:
    a = Authenticator(max_skew_ns=10 * SECOND, nonce_capacity=64)
    a.add_key("k1", SECRET)
    a.add_key("k2", SECRET)
    assert verify_simple(a, sign_simple("k1", None, "same-nonce", T0), T0) is A.OK
    assert verify_simple(a, sign_simple("k2", None, "same-nonce", T0), T0) is A.OK
    # The same nonce again, re-signed with a later timestamp: still a replay.
    assert verify_simple(a, sign_simple("k1", None, "same-nonce", T0 + 5 * SECOND),
                         T0 + 5 * SECOND) is A.REPLAY
    # A forged request cannot burn a nonce: only valid signatures reach the cache.
    forged = sign_simple("k1", None, "burnt-not", T0, secret=b"wrong")
    assert verify_simple(a, forged, T0) is A.BAD_SIGNATURE
    assert verify_simple(a, sign_simple("k1", None, "burnt-not", T0), T0) is A.OK


# -- rotation -------------------------------------------------------------------------------


def test_key_rotation_with_overlapping_intervals() -> None:
    a = Authenticator(max_skew_ns=30 * SECOND, nonce_capacity=256)
    old, new = b"old-secret", b"new-secret"
    a.add_key("key.2024-10", old, T0 - 1000 * SECOND, T0 + 100 * SECOND, now_ns=T0)
    a.add_key("key.2024-11", new, T0 + 50 * SECOND, T0 + 10_000 * SECOND, now_ns=T0)
    n = iter(f"rot-{i:08d}" for i in range(1000))

    def check(key: str, secret: bytes, at: int) -> AuthReason:
        return verify_simple(a, sign_simple(key, None, next(n), at, secret), at)

    # Before the new key's interval: only the old one.
    assert check("key.2024-10", old, T0) is A.OK
    assert check("key.2024-11", new, T0) is A.EXPIRED_KEY
    # The overlap: both, so clients can move over without downtime.
    assert check("key.2024-10", old, T0 + 60 * SECOND) is A.OK
    assert check("key.2024-11", new, T0 + 60 * SECOND) is A.OK
    # After the old key's interval: only the new one.
    assert check("key.2024-10", old, T0 + 100 * SECOND) is A.EXPIRED_KEY
    assert check("key.2024-11", new, T0 + 100 * SECOND) is A.OK
    # A key's secret does not verify another key id.
    assert check("key.2024-11", old, T0 + 101 * SECOND) is A.BAD_SIGNATURE
    assert a.stats().keys == 2
    a.remove_key("key.2024-10")
    assert a.stats().keys == 1


def test_key_interval_edges() -> None:
    a = Authenticator(max_skew_ns=30 * SECOND, nonce_capacity=256)
    a.add_key("k", SECRET, T0, T0 + 10 * SECOND)
    n = iter(f"edge-{i:08d}" for i in range(100))

    def at(t: int) -> AuthReason:
        return verify_simple(a, sign_simple("k", None, next(n), t), t)

    assert at(T0 - 1) is A.EXPIRED_KEY
    assert at(T0) is A.OK  # not_before is included
    assert at(T0 + 10 * SECOND - 1) is A.OK
    assert at(T0 + 10 * SECOND) is A.EXPIRED_KEY  # not_after is not


def test_replacing_and_removing_keys() -> None:
    events: List[AuthEvent] = []
    a = Authenticator(nonce_capacity=64, on_event=events.append)
    a.add_key("k", b"first", now_ns=1)
    h1 = sign_simple("k", None, "replace-01", T0, b"first")
    a.add_key("k", b"second", now_ns=2)  # replaces: the old secret no longer verifies
    assert verify_simple(a, h1, T0) is A.BAD_SIGNATURE
    assert verify_simple(a, sign_simple("k", None, "replace-02", T0, b"second"), T0) is A.OK
    assert a.stats().keys == 1
    a.remove_key("k", now_ns=3)
    assert verify_simple(a, sign_simple("k", None, "replace-03", T0, b"second"), T0) is A.UNKNOWN_KEY
    with pytest.raises(NotFoundError) as e:
        a.remove_key("k")
    assert_status(e, "TG_ENOTFOUND")
    assert isinstance(e.value, LookupError)
    assert [(ev.kind, ev.id, ev.now_ns) for ev in events] == [
        (K.KEY_ADDED, "k", 1), (K.KEY_ADDED, "k", 2), (K.KEY_REMOVED, "k", 3)]


# -- revocation -----------------------------------------------------------------------------


def test_revocation_order_versions_and_idempotence() -> None:
    events: List[AuthEvent] = []
    a = Authenticator(nonce_capacity=64, on_event=events.append)
    a.add_key("k1", SECRET)
    n = iter(f"rev-{i:08d}" for i in range(100))
    # A revoked id is refused before it is looked up: an id that is no key
    # is revoked_key, not unknown_key (and can be revoked ahead of time).
    a.revoke_key("future-key", now_ns=5)
    assert verify_simple(a, sign_simple("future-key", None, next(n), T0), T0) is A.REVOKED_KEY
    assert a.revocation_version == 1
    a.revoke_key("future-key", now_ns=6)  # no change: no event, same version
    assert a.revocation_version == 1
    a.unrevoke_token("never-revoked")  # no change either
    assert a.revocation_version == 1 and len(events) == 2
    # A revoked token is refused whatever the key; a request without a token is not.
    a.revoke_token("session_9.x")
    assert verify_simple(a, sign_simple("k1", "session_9.x", next(n), T0), T0) is A.REVOKED_TOKEN
    assert verify_simple(a, sign_simple("k1", "session_8.x", next(n), T0), T0) is A.OK
    assert verify_simple(a, sign_simple("k1", None, next(n), T0), T0) is A.OK
    # Key revocation comes before the token's.
    a.revoke_key("k1")
    assert verify_simple(a, sign_simple("k1", "session_9.x", next(n), T0), T0) is A.REVOKED_KEY
    assert a.revocation_version == 3
    # A whole list replaces both sets; ids not in it are reinstated.
    a.replace_revocations(10, keys=["k2"], tokens=[b"t-1", bytearray(b"t-2")], now_ns=7)
    assert verify_simple(a, sign_simple("k1", "session_9.x", next(n), T0), T0) is A.OK
    assert verify_simple(a, sign_simple("k1", "t-2", next(n), T0), T0) is A.REVOKED_TOKEN
    s = a.stats()
    assert (s.revoked_keys, s.revoked_tokens, s.revocation_version) == (1, 2, 10)
    assert events[-1] == AuthEvent(K.REVOCATIONS_REPLACED, "", 10, 7)
    # Stale and equal versions are refused; nothing changes.
    for stale in (10, 9, 0):
        with pytest.raises(StateError, match="not newer"):
            a.replace_revocations(stale, [], [])
    assert a.revocation_version == 10
    # Empty lists clear everything; generators and tuples are lists too.
    a.replace_revocations(11)
    assert (a.stats().revoked_keys, a.stats().revoked_tokens) == (0, 0)
    a.replace_revocations(12, (k for k in ["a", "b"]), ("t",))
    assert (a.stats().revoked_keys, a.stats().revoked_tokens) == (2, 1)
    # A malformed id anywhere refuses the whole list.
    for keys, tokens, needle in [(["ok", "bad id"], [], "key id"), ([], ["ok", ""], "token id"),
                                 (["x" * 65], [], "key id"), ([], ["t" * 129], "token id")]:
        with pytest.raises(InvalidArgumentError) as e:
            a.replace_revocations(20, keys, tokens)
        assert_status(e, "TG_EINVAL")
        assert needle in e.value.message
    assert a.revocation_version == 12 and a.stats().revoked_keys == 2
    # The longest ids are fine.
    a.revoke_key("k" * 64)
    a.revoke_token("t" * 128)
    a.replace_revocations(2**63, ["k" * 64], ["t" * 128])
    assert a.revocation_version == 2**63


def test_the_revocation_version_never_wraps() -> None:
    # At 2**64 - 1 a revocation change is refused: wrapping to 0 would let a
    # stale list (any version) replace the current one.
    events: List[AuthEvent] = []
    a = Authenticator(nonce_capacity=16, on_event=events.append)
    a.add_key("k1", SECRET)
    a.replace_revocations(U64_MAX, ["revoked-key"])
    for change in (lambda: a.revoke_key("another"), lambda: a.revoke_token("t"),
                   lambda: a.unrevoke_key("revoked-key")):
        with pytest.raises(StateError) as e:
            change()
        assert_status(e, "TG_ESTATE")
        assert "never wraps" in e.value.message
    assert a.revocation_version == U64_MAX
    assert a.stats().revoked_keys == 1 and a.stats().revoked_tokens == 0
    for stale in (1, U64_MAX):
        with pytest.raises(StateError, match="not newer"):
            a.replace_revocations(stale)
    # A change that changes nothing is still fine, and keys still change.
    a.revoke_key("revoked-key")
    a.add_key("k2", SECRET)
    assert [ev.kind for ev in events] == [K.KEY_ADDED, K.REVOCATIONS_REPLACED, K.KEY_ADDED]
    assert verify_simple(a, sign_simple("revoked-key", None, "wrap-0001", T0), T0) is A.REVOKED_KEY


@pytest.mark.parametrize("how", ["revoke_key", "revoke_token", "replace_revocations",
                                 "remove_key"])
def test_after_a_revocation_returns_no_verification_succeeds(how: str) -> None:
    # Threads verify fresh, valid requests while the main thread revokes. A
    # verification that starts after the revoking call has returned (its
    # thread saw the flag set just after that call) must be refused, on
    # every thread; the ones before are accepted or refused.
    threads, per_thread, after_wanted = 3, 3000, 300
    refused_as = {"revoke_key": A.REVOKED_KEY, "revoke_token": A.REVOKED_TOKEN,
                  "replace_revocations": A.REVOKED_KEY, "remove_key": A.UNKNOWN_KEY}[how]
    a = Authenticator(max_skew_ns=3600 * SECOND, nonce_capacity=1 << 15)
    a.add_key("k1", SECRET)
    token = "tok.1" if how == "revoke_token" else None
    signed = [[sign_simple("k1", token, f"thr-{k}-{i:06d}", T0) for i in range(per_thread)]
              for k in range(threads)]
    revoked = threading.Event()
    progressed = [threading.Event() for _ in range(threads)]
    violations: List[Tuple[int, int, AuthResult]] = []
    counts = [[0, 0, 0] for _ in range(threads)]  # ok before, refused before, refused after

    def work(k: int) -> None:
        i = after = 0
        while after < after_wanted:
            if i == 100:
                progressed[k].set()
            if i == per_thread:  # ran out before the revocation: wait for it
                revoked.wait(10)
            was_revoked = revoked.is_set()
            r = a.verify("GET", "/x", authorization=signed[k][i % per_thread], now_ns=T0)
            if was_revoked:
                after += 1
                if r.reason is not refused_as:
                    violations.append((k, i, r))
                counts[k][2] += 1
            elif r.reason is A.OK:
                counts[k][0] += 1
            elif r.reason is refused_as:
                counts[k][1] += 1  # started before the flag, after the change
            else:
                violations.append((k, i, r))
            i += 1

    pool = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
    for th in pool:
        th.start()
    for ev in progressed:
        assert ev.wait(30)
    if how == "revoke_key":
        a.revoke_key("k1")
    elif how == "revoke_token":
        a.revoke_token("tok.1")
    elif how == "replace_revocations":
        a.replace_revocations(5, keys=["k1"])
    else:
        a.remove_key("k1")
    revoked.set()
    for th in pool:
        th.join(60)
        assert not th.is_alive()
    assert not violations, violations[:5]
    assert all(c[0] >= 100 and c[2] == after_wanted for c in counts), counts
    s = a.stats()
    assert s.verified == sum(c[0] for c in counts)
    assert s.results[refused_as] == sum(c[1] + c[2] for c in counts)


def test_one_request_raced_on_many_threads_is_accepted_once() -> None:
    a = Authenticator(nonce_capacity=1 << 12)
    a.add_key("k1", SECRET)
    requests = [sign_simple("k1", None, f"race-{i:06d}", T0) for i in range(300)]
    threads = 4
    results: List[List[AuthReason]] = [[] for _ in range(threads)]
    start = threading.Barrier(threads)

    def work(k: int) -> None:
        start.wait()
        for h in requests:
            results[k].append(verify_simple(a, h, T0))

    pool = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    for i in range(len(requests)):
        seen = sorted(results[k][i] for k in range(threads))
        assert seen == [A.OK] + [A.REPLAY] * (threads - 1), (i, seen)


# -- the nonce cache fails closed ---------------------------------------------------------


def test_nonce_capacity_fails_closed_and_recovers_after_the_window() -> None:
    # 16 nonces: 16 shards of one each, so a 17th valid request inside the
    # window is refused (at the latest), rather than forgetting a nonce.
    skew = 10 * SECOND
    a = Authenticator(max_skew_ns=skew, nonce_capacity=16)
    a.add_key("k1", SECRET)
    reasons = []
    for i in range(64):
        h = sign_simple("k1", None, f"cap-{i:08d}", T0)
        reasons.append((h, verify_simple(a, h, T0)))
        if reasons[-1][1] is A.NONCE_CAPACITY:
            break
    assert reasons[-1][1] is A.NONCE_CAPACITY
    assert 1 <= sum(r is A.OK for _, r in reasons) <= 16
    assert all(r is A.OK for _, r in reasons[:-1])
    refused = reasons[-1][0]
    # A refused request was not remembered: it is refused again, not a replay,
    # and accepted ones are still replays.
    assert verify_simple(a, refused, T0) is A.NONCE_CAPACITY
    assert verify_simple(a, reasons[0][0], T0) is A.REPLAY
    # Once the window has passed, the expired nonces make room again.
    later = T0 + skew + 1
    assert verify_simple(a, sign_simple("k1", None, "cap-after-window", later), later) is A.OK
    s = a.stats()
    assert s.results[A.NONCE_CAPACITY] == 2 and s.results[A.REPLAY] == 1


# -- events --------------------------------------------------------------------------------


class Boom(Exception):
    pass


def test_event_callback_exceptions_are_raised_from_the_changing_call() -> None:
    calls: List[AuthEvent] = []

    def cb(ev: AuthEvent) -> None:
        calls.append(ev)
        raise Boom(f"{AuthEventKind(ev.kind).name} {ev.id}")

    a = Authenticator(nonce_capacity=64, on_event=cb)
    with pytest.raises(Boom, match="KEY_ADDED k1"):
        a.add_key("k1", SECRET, now_ns=5)
    # The change took effect.
    assert a.stats().keys == 1
    assert verify_simple(a, sign_simple("k1", None, "after-boom-1", T0), T0) is A.OK
    with pytest.raises(Boom, match="KEY_REVOKED k1"):
        a.revoke_key("k1")
    assert verify_simple(a, sign_simple("k1", None, "after-boom-2", T0), T0) is A.REVOKED_KEY
    a.revoke_key("k1")  # no change, no event, nothing raised
    with pytest.raises(Boom, match="KEY_REINSTATED k1"):
        a.unrevoke_key("k1")
    with pytest.raises(Boom, match="TOKEN_REVOKED t"):
        a.revoke_token("t")
    with pytest.raises(Boom, match="TOKEN_REINSTATED t"):
        a.unrevoke_token("t")
    with pytest.raises(Boom, match="REVOCATIONS_REPLACED"):
        a.replace_revocations(9, ["x"])
    assert a.revocation_version == 9
    with pytest.raises(Boom, match="KEY_REMOVED k1"):
        a.remove_key("k1")
    assert a.stats().keys == 0 and len(calls) == 7
    # A failed change reports no event and raises its own error.
    with pytest.raises(NotFoundError):
        a.remove_key("k1")
    assert len(calls) == 7

    def interrupt(ev: AuthEvent) -> None:
        raise KeyboardInterrupt

    a.on_event(interrupt)
    with pytest.raises(KeyboardInterrupt):
        a.add_key("k2", SECRET)
    assert a.stats().keys == 1

    def type_error(ev: AuthEvent) -> None:
        raise TypeError("from the callback")

    a.on_event(type_error)
    with pytest.raises(TypeError, match="from the callback"):
        a.remove_key("k2")
    # Nothing is left pending.
    a.on_event(None)
    a.add_key("k3", SECRET)
    a.remove_key("k3")


def test_a_callback_may_verify_but_not_change_an_authenticator_nor_close_its_own() -> None:
    a = Authenticator(nonce_capacity=64)
    a.add_key("k1", SECRET)
    seen: List[Any] = []
    h = sign_simple("k1", None, "in-callback", T0)

    def cb(ev: AuthEvent) -> None:
        seen.append(ev)
        for change in (lambda: a.add_key("k2", SECRET), lambda: a.remove_key("k1"),
                       lambda: a.revoke_token("t9"), lambda: a.unrevoke_key("k1"),
                       lambda: a.replace_revocations(99)):
            try:
                change()
            except StateError as exc:
                seen.append(exc)
        seen.append(a.verify("GET", "/x", authorization=h, now_ns=T0))
        seen.append(a.stats().revoked_tokens)
        seen.append(a.revocation_version)

    a.on_event(cb)
    a.revoke_token("tok-1", now_ns=11)
    ev, *errors, r, revoked_tokens, version = seen
    assert ev == AuthEvent(K.TOKEN_REVOKED, "tok-1", 1, 11)
    assert len(errors) == 5
    for err in errors:
        assert isinstance(err, StateError) and err.code == lib.TG_ESTATE
        assert "event callback cannot change" in err.message
    assert r.ok  # the new snapshot is already published
    assert revoked_tokens == 1 and version == 1
    assert a.stats().keys == 1  # nothing the callback tried happened

    # Closing from the callback is refused too; the change stands.
    a.on_event(lambda ev: a.close())
    with pytest.raises(StateError) as e:
        a.revoke_key("k1")
    assert_status(e, "TG_ESTATE")
    assert not a.closed and a.revocation_version == 2
    # Nor may it change another authenticator (two callbacks changing each
    # other's authenticators could deadlock); it may read it, and close it.
    other = Authenticator(nonce_capacity=16)
    read: List[int] = []

    def change_other(ev: AuthEvent) -> None:
        read.append(other.revocation_version)
        other.revoke_key(ev.id)

    a.on_event(change_other)
    with pytest.raises(StateError) as e:
        a.unrevoke_key("k1")
    assert_status(e, "TG_ESTATE")
    assert read == [0] and other.revocation_version == 0
    assert a.revocation_version == 3  # the change itself took effect
    a.on_event(lambda ev: other.close())
    a.revoke_key("k1")
    assert other.closed
    a.on_event(None)
    a.close()
    assert a.closed


def test_event_callback_replace_decorator_default_time_and_lifetime() -> None:
    seen: List[str] = []
    a = Authenticator(nonce_capacity=16)

    @a.on_event
    def first(ev: AuthEvent) -> None:
        seen.append("first")

    assert first is not None
    before = time.time_ns()
    a.add_key("k", SECRET)
    a.on_event(lambda ev: seen.append(f"second {ev.now_ns >= before}"))
    a.revoke_key("k")
    a.on_event(None)
    a.unrevoke_key("k")
    a.on_event(lambda ev: seen.append("third"))  # set again after removal
    a.remove_key("k")
    assert seen == ["first", "second True", "third"]
    with pytest.raises(TypeError):
        a.on_event(42)  # type: ignore[arg-type]
    # A callback holding the authenticator (a cycle) does not keep it alive.
    a.on_event(lambda ev: a.stats())
    ref = weakref.ref(a)
    del a
    gc.collect()
    assert ref() is None


def test_events_on_many_threads_reach_their_own_callers() -> None:
    lock = threading.Lock()
    ids: List[str] = []

    def cb(ev: AuthEvent) -> None:
        with lock:
            ids.append(ev.id)
        if ev.id.endswith("7"):
            raise Boom(ev.id)

    a = Authenticator(nonce_capacity=16, on_event=cb)
    raised: List[str] = []

    def work(k: int) -> None:
        for i in range(50):
            key = f"t{k}-{i}"
            try:
                a.revoke_token(key)
            except Boom as e:
                raised.append(str(e))

    pool = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    assert len(ids) == 200 and a.stats().revoked_tokens == 200 and a.revocation_version == 200
    assert sorted(raised) == sorted(f"t{k}-{i}" for k in range(4) for i in range(50) if i % 10 == 7)


# -- argument forms ---------------------------------------------------------------------------


POST_TARGET = "/v1/orders?symbol=ES&account=A1"
POST_BODY = b'{"qty":10,"px":4500.25}'
POST_HEADERS = [("Host", "gw.example"), ("Content-Type", "application/json"),
                ("X-Unsigned", "anything")]


def signed_post(**overrides: Any) -> str:
    args: Dict[str, Any] = dict(key_id="k1", secret=SECRET, nonce="forms-0001",
                                timestamp_ns=T0, signed_headers=["host", "content-type"])
    args.update(overrides)
    return sign_request("POST", POST_TARGET, POST_HEADERS, POST_BODY, **args)


def test_header_forms_all_verify_alike() -> None:
    h = signed_post()
    assert "SignedHeaders=content-type;host," in h
    forms: List[Any] = [
        POST_HEADERS,
        tuple(POST_HEADERS),
        [list(p) for p in POST_HEADERS],
        dict(POST_HEADERS),
        {k.upper(): v for k, v in POST_HEADERS},  # names without case
        [(k.encode(), v.encode()) for k, v in reversed(POST_HEADERS)],  # order does not matter
        [(bytearray(k.encode()), memoryview(v.encode())) for k, v in POST_HEADERS],
        (p for p in POST_HEADERS),  # any iterable
        [("Host", "  gw.example\t"), ("content-type", "application/json")],  # trimmed
    ]
    msg = email.message.Message()
    for k, v in POST_HEADERS:
        msg[k] = v
    forms.append(msg)  # http.client.HTTPMessage's base: items() gives the pairs
    for i, headers in enumerate(forms):
        a = Authenticator(nonce_capacity=16)
        a.add_key("k1", SECRET)
        r = a.verify("POST", POST_TARGET, headers, POST_BODY, authorization=h,
                     now_ns=T0)
        assert r.ok, (i, r)
    # A changed signed header breaks it; a changed unsigned one does not.
    a = Authenticator(nonce_capacity=16)
    a.add_key("k1", SECRET)
    bad = [("Host", "gw.example"), ("Content-Type", "text/plain")]
    assert a.verify("POST", POST_TARGET, bad, POST_BODY, authorization=h,
                    now_ns=T0).reason is A.BAD_SIGNATURE
    other = [("Host", "gw.example"), ("Content-Type", "application/json"), ("X-Unsigned", "x")]
    assert a.verify("POST", POST_TARGET, other, POST_BODY, authorization=h, now_ns=T0).ok
    # Missing and repeated signed headers are malformed, with their detail.
    r = a.verify("POST", POST_TARGET, [("Host", "gw.example")], POST_BODY,
                 authorization=signed_post(nonce="forms-0002"), now_ns=T0)
    assert (r.reason, r.detail) == (A.MALFORMED, "missing_header")
    r = a.verify("POST", POST_TARGET, POST_HEADERS + [("HOST", "x")], POST_BODY,
                 authorization=signed_post(nonce="forms-0003"), now_ns=T0)
    assert (r.reason, r.detail) == (A.MALFORMED, "repeated_header")
    # No headers at all: None, empty containers.
    no_headers: List[Any] = [None, [], (), {}]
    for none in no_headers:
        b = Authenticator(nonce_capacity=16)
        b.add_key("k1", SECRET)
        h2 = sign_request("GET", "/x", none, key_id="k1", secret=SECRET, timestamp_ns=T0)
        assert b.verify("GET", "/x", none, authorization=h2, now_ns=T0).ok


def test_many_headers_take_the_allocating_path() -> None:
    # More than the 16 headers the helper converts on the C stack.
    for count in (15, 16, 17, 64, 65, 1000):
        headers = [(f"x-h{i:04d}", f"v{i}") for i in range(count)]
        signed = [f"x-h{i:04d}" for i in range(0, count, max(1, count // 16))][:16]
        h = sign_request("GET", "/many", headers, key_id="k1", secret=SECRET, timestamp_ns=T0,
                         signed_headers=signed, nonce=f"many-{count:06d}")
        a = Authenticator(nonce_capacity=16)
        a.add_key("k1", SECRET)
        assert a.verify("GET", "/many", headers, authorization=h, now_ns=T0).ok, count
        headers[int(signed[-1][3:])] = (signed[-1], "changed")
        assert a.verify("GET", "/many", headers, authorization=h,
                        now_ns=T0).reason is A.BAD_SIGNATURE
    # 17 signed headers are more than the format allows.
    with pytest.raises(InvalidArgumentError, match="bad_signed_headers"):
        sign_request("GET", "/", [(f"h{i:02d}", "v") for i in range(17)], key_id="k1",
                     secret=SECRET, signed_headers=[f"h{i:02d}" for i in range(17)])


def test_string_and_body_forms() -> None:
    body = b"\x00\xff binary body"
    h = sign_request(b"PUT", b"/b", None, body, key_id=b"k1", secret="secret-for-tests",
                     nonce=b"body-0001", timestamp_ns=T0)
    assert h == sign_request("PUT", "/b", None, bytearray(body), key_id="k1", secret=SECRET,
                             nonce="body-0001", timestamp_ns=T0)
    a = Authenticator(nonce_capacity=64)
    a.add_key(b"k1", bytearray(SECRET))
    digest = hashlib.sha256(body).digest()
    body_forms: List[Dict[str, Any]] = [
        dict(body=body), dict(body=memoryview(body)), dict(body=bytearray(body)),
        dict(body_sha256=digest), dict(body=b"", body_sha256=bytearray(digest)),
        dict(body=None, body_sha256=memoryview(digest))]
    for i, kwargs in enumerate(body_forms):
        b = Authenticator(nonce_capacity=16)
        b.add_key("k1", SECRET)
        assert b.verify("PUT", "/b", authorization=h, now_ns=T0, **kwargs).ok, i
    # A str body is UTF-8; None is empty.
    h = sign_request("POST", "/s", None, "prix: 5 €", key_id="k1", secret=SECRET, timestamp_ns=T0)
    assert a.verify("POST", "/s", None, "prix: 5 €".encode(), authorization=h, now_ns=T0).ok
    h = sign_request("GET", "/n", None, None, key_id="k1", secret=SECRET, timestamp_ns=T0)
    assert a.verify("GET", "/n", authorization=h, now_ns=T0).ok
    # The authorization value as bytes, bytearray or str.
    for form in (bytes, bytearray, str):
        h = sign_request("GET", "/a", key_id="k1", secret=SECRET, timestamp_ns=T0)
        r = a.verify("GET", "/a", authorization=form(h.encode()) if form is not str else h,
                     now_ns=T0)
        assert r.ok and r.key_id == "k1" and len(r.nonce) == 22, form


def test_malformed_authorization_values_are_results_not_exceptions() -> None:
    a = Authenticator(nonce_capacity=16)
    a.add_key("k1", SECRET)
    good = sign_simple("k1", None, "malf-0001", T0)
    cases = [
        (None, "missing_authorization"),
        ("", "missing_authorization"),
        (b"", "missing_authorization"),
        ("TG1-HMAC-SHA256", "bad_scheme"),
        ("tg1-hmac-sha256 KeyId=k1", "bad_scheme"),
        ("Bearer abc", "bad_scheme"),
        (f"{AUTH_SCHEME} KeyId=k1", "missing_parameter"),
        (f"{AUTH_SCHEME} KeyId=k1, KeyId=k1", "bad_parameter"),
        (f"{AUTH_SCHEME} Extra=1", "bad_parameter"),
        (f"{AUTH_SCHEME} KeyId", "bad_parameter"),
        (good.replace("Timestamp=", "Timestamp=x"), "bad_timestamp"),
        (good.replace("Timestamp=1700000000000000000", "Timestamp=" + "9" * 20), "bad_timestamp"),
        (good.replace("Nonce=malf-0001", "Nonce=mal f-0001"), "bad_nonce"),
        (good.replace("Nonce=malf-0001", "Nonce=m/lf-0001"), "bad_nonce"),
        (good.replace("KeyId=k1", "KeyId=k\u00e91"), "bad_key_id"),  # non-ASCII str
        (good.replace("KeyId=k1", "KeyId=k\udc801"), "bad_key_id"),  # a lone surrogate
        (good[:-64] + good[-64:].upper(), "bad_signature_format"),
        (good[:-1], "bad_signature_format"),
        (good + ", Token=", "bad_token"),
        (good + ", SignedHeaders=b;a", "bad_signed_headers"),
        (good + " " * 2000, "bad_parameter"),  # longer than 1024 bytes
        ("\x00" * 10, "bad_scheme"),
    ]
    for value, detail in cases:
        r = a.verify("GET", "/x", authorization=value, now_ns=T0)
        assert (r.reason, r.detail) == (A.MALFORMED, detail), (value, r)
        assert not r
    # Fields parsed before the failure are reported (never to be trusted).
    r = a.verify("GET", "/x", authorization=f"{AUTH_SCHEME} KeyId=k1, Nonce=abcdefgh, Foo=1",
                 now_ns=T0)
    assert (r.detail, r.key_id, r.nonce, r.token, r.timestamp_ns) == (
        "bad_parameter", "k1", "abcdefgh", "", 0)
    assert a.stats().results[A.MALFORMED] == len(cases) + 1 and a.stats().verified == 0


def test_requests_that_cannot_be_canonicalised() -> None:
    a = Authenticator(nonce_capacity=16)
    a.add_key("k1", SECRET)
    n = iter(f"canon-{i:06d}" for i in range(100))
    header = lambda: (f"{AUTH_SCHEME} KeyId=k1, Timestamp={T0}, Nonce={next(n)}, "
                      f"Signature={'0' * 64}")
    for method, target, detail in [
        ("get", "/", "bad_method"),
        ("", "/", "bad_method"),
        ("G" * 17, "/", "bad_method"),
        ("GET", "", "bad_path"),
        ("GET", "x", "bad_path"),
        ("GET", "/a#b", "bad_path"),
        ("GET", "/" + "a" * 100_000, "bad_path"),
        ("GET", "/q?a=%zz", "bad_query"),
        ("GET", "/q?" + "&".join(f"p{i}=1" for i in range(65)), "bad_query"),
        ("GET", "/q?a= b", "bad_query"),
        ("GET", "/q?" + "a" * 9000, "bad_query"),
    ]:
        r = a.verify(method, target, authorization=header(), now_ns=T0)
        assert (r.reason, r.detail) == (A.MALFORMED, detail), (method, target[:20], r)
        with pytest.raises(InvalidArgumentError, match=detail):
            canonical_request(method, target, key_id="k1", nonce="abcdefgh", timestamp_ns=T0)
    # A signed header value longer than 8192 bytes, or with a control byte.
    for value in ("v" * 8193, "a\x01b", "a\x7fb"):
        with pytest.raises(InvalidArgumentError, match="bad_header_value"):
            sign_request("GET", "/", {"x-v": value}, key_id="k1", secret=SECRET,
                         signed_headers="x-v")
    assert sign_request("GET", "/", {"x-v": "v" * 8192 + "  "}, key_id="k1", secret=SECRET,
                        signed_headers="x-v")


# -- the client conveniences -----------------------------------------------------------------


def test_default_nonce_and_wall_clock_timestamp() -> None:
    a = Authenticator(nonce_capacity=1024)  # 30 s around the wall clock
    a.add_key("k1", SECRET)
    before = time.time_ns()
    headers = [sign_request("GET", "/x", key_id="k1", secret=SECRET) for _ in range(50)]
    after = time.time_ns()
    parsed = [dict(re.findall(r"(\w+)=([^,]+)", h)) for h in headers]
    assert all(before <= int(p["Timestamp"]) <= after for p in parsed)
    nonces = [p["Nonce"] for p in parsed]
    assert len(set(nonces)) == 50
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{22}", n) for n in nonces)
    # verify reads the wall clock too.
    for h in headers:
        assert a.verify("GET", "/x", authorization=h).ok
    # A request stamped a minute ago is outside the default window.
    old = sign_request("GET", "/x", key_id="k1", secret=SECRET,
                       timestamp_ns=time.time_ns() - 60 * SECOND)
    assert a.verify("GET", "/x", authorization=old).reason is A.SKEW


def test_generate_nonce() -> None:
    for nbytes, length in [(6, 8), (16, 22), (32, 43), (48, 64)]:
        n = generate_nonce(nbytes)
        assert len(n) == length and re.fullmatch(r"[A-Za-z0-9_-]+", n)
        # The library takes it.
        sign_request("GET", "/", key_id="k", secret="s", nonce=n)
    assert len({generate_nonce() for _ in range(1000)}) == 1000
    for bad in (5, 49, 0, -1, 2**64):
        with pytest.raises(InvalidArgumentError):
            generate_nonce(bad)
    wrong: List[Any] = [16.0, "16", None, True]
    for w in wrong:
        with pytest.raises(TypeError):
            generate_nonce(w)


def test_signed_header_lists_and_nonce_alphabet() -> None:
    headers = {"Host": "gw", "Content-Type": "a/b", "X-Request-Id": "r1"}
    common: Dict[str, Any] = dict(key_id="k1", secret=SECRET, nonce="sh-000001", timestamp_ns=T0)
    exact = sign_request("POST", "/", headers, **common, signed_headers="content-type;host;x-request-id")
    forms: List[Any] = [["X-Request-Id", "Host", "content-type"],
                        ("host", "content-type", "x-request-id"),
                        [b"HOST", b"content-type", bytearray(b"x-request-id")],
                        {"x-request-id": 1, "host": 2, "content-type": 3}]
    for form in forms:
        assert sign_request("POST", "/", headers, **common, signed_headers=form) == exact
    assert sign_request("POST", "/", headers, **common, signed_headers=[]) == \
        sign_request("POST", "/", headers, **common)
    # The string form is taken as it is: unsorted or upper-case is refused.
    bad_lists: List[Any] = ["host;content-type", "Host", "host;host", ["host", "HOST"], "host;"]
    for bad in bad_lists:
        with pytest.raises(InvalidArgumentError, match="bad_signed_headers"):
            sign_request("POST", "/", headers, **common, signed_headers=bad)
    with pytest.raises(TypeError):
        sign_request("POST", "/", headers, **common, signed_headers=5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        sign_request("POST", "/", headers, **common, signed_headers=[None])  # type: ignore[list-item]
    # Nonces: 8..64 of [A-Za-z0-9._~-].
    for good in ("abcdefgh", "a.b_c~d-e", "n" * 64):
        sign_request("GET", "/", key_id="k", secret="s", nonce=good)
    for bad in ("short", "n" * 65, "abc defgh", "abcdefg/", "abcdéfgh"):
        with pytest.raises(InvalidArgumentError, match="bad_nonce"):
            sign_request("GET", "/", key_id="k", secret="s", nonce=bad)


def test_hmac_sha256_matches_the_standard_library() -> None:
    rng = random.Random(4231)
    for key_len in (0, 1, 31, 32, 63, 64, 65, 200, 1025):
        for msg_len in (0, 1, 55, 56, 64, 300):
            key, msg = rng.randbytes(key_len), rng.randbytes(msg_len)
            assert hmac_sha256(key, msg) == hmac.digest(key, msg, "sha256"), (key_len, msg_len)
    assert hmac_sha256("Jefe", "what do ya want for nothing?").hex().startswith("5bdcc146")
    for bad_key, bad_msg in [(None, b""), (b"", None), (1, b""), (b"", 1.5)]:
        with pytest.raises(TypeError):
            hmac_sha256(bad_key, bad_msg)  # type: ignore[arg-type]


def test_canonical_request_is_what_is_signed() -> None:
    args: Dict[str, Any] = dict(key_id="k1", nonce="canon-0001", timestamp_ns=T0, token="tok",
                                signed_headers=["host"])
    c = canonical_request("POST", "/a/./b/../c?z=1&a=%41", {"Host": "h"}, b"body", **args)
    assert c == (b"TG1-HMAC-SHA256\nPOST\n/a/c\na=A&z=1\nhost\nhost:h\nk1\ntok\n"
                 + str(T0).encode() + b"\ncanon-0001\n" + hashlib.sha256(b"body").hexdigest().encode())
    h = sign_request("POST", "/a/./b/../c?z=1&a=%41", {"Host": "h"}, b"body", secret=SECRET,
                     **args)
    assert h.endswith("Signature=" + hmac.new(SECRET, c, hashlib.sha256).hexdigest())
    assert h.startswith(f"{AUTH_SCHEME} KeyId=k1, SignedHeaders=host, Timestamp={T0}, "
                        "Nonce=canon-0001, Token=tok, ")
    # A long canonical request is returned whole (the buffer grows).
    big = {f"x-{i:02d}": "v" * 8000 for i in range(16)}
    c = canonical_request("GET", "/", big, key_id="k1", nonce="canon-0002", timestamp_ns=T0,
                          signed_headers=list(big))
    assert len(c) > 16 * 8000 and c.count(b"v" * 8000) == 16
    # Required keywords.
    with pytest.raises(TypeError):
        canonical_request("GET", "/", key_id="k1", nonce="canon-0003")  # type: ignore[call-arg]


# -- bad calls ----------------------------------------------------------------------------------


def test_bad_key_calls() -> None:
    a = Authenticator(nonce_capacity=16)
    for args, needle in [
        (("k", b""), "secret"),
        (("k", b"s" * 1025), "secret"),
        (("k", ""), "secret"),
        (("", b"s"), "key id"),
        (("k k", b"s"), "key id"),
        (("k" * 65, b"s"), "key id"),
        (("k\u00e9", b"s"), "key id"),
        (("k", b"s", 5, 5), "not_before_ns"),
        (("k", b"s", 6, 5), "not_before_ns"),
        (("k", b"s", -1), "not_before_ns"),
        (("k", b"s", 0, 2**64), "not_after_ns"),
        (("k", b"s", 0, 1, -5), "now_ns"),
        (("k\udc80", b"s"), "UTF-8"),
    ]:
        with pytest.raises(InvalidArgumentError) as e:
            a.add_key(*args)  # type: ignore[arg-type]
        assert e.value.code in (lib.TG_EINVAL, lib.TG_ERANGE)
        assert needle in e.value.message, (args, e.value.message)
        assert isinstance(e.value, ValueError)
    a.add_key("k" * 64, b"s" * 1024, 0, 1)  # the longest
    wrong_args: List[Tuple[Any, ...]] = [
        (None, b"s"), ("k", None), (5, b"s"), ("k", 5), ("k", b"s", 1.0), ("k", b"s", None),
        ("k", b"s", 0, True), ("k", b"s", 0, 1, "now"), (["k"], b"s")]
    for wrong in wrong_args:
        with pytest.raises(TypeError):
            a.add_key(*wrong)
    for bad, exc in [(None, TypeError), (3, TypeError), ("", InvalidArgumentError),
                     ("a b", InvalidArgumentError)]:
        # A malformed id is an argument error, as in add_key.
        with pytest.raises(exc):
            a.remove_key(bad)  # type: ignore[arg-type]
        with pytest.raises(exc):
            a.revoke_key(bad)  # type: ignore[arg-type]
        with pytest.raises(exc):
            a.unrevoke_token(bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="token id"):
        a.revoke_token("t" * 129)
    with pytest.raises(InvalidArgumentError, match="key id"):
        a.revoke_key("k" * 65)
    bad_lists: List[Tuple[Tuple[Any, ...], Any]] = [
        ((-1,), InvalidArgumentError), ((2**64,), InvalidArgumentError), ((1.0,), TypeError),
        ((None,), TypeError), ((1, "abc"), TypeError), ((1, [], b"tok"), TypeError),
        ((1, [None]), TypeError), ((1, 5), TypeError), ((1, [], [3]), TypeError),
        ((1, [], [], -1), InvalidArgumentError)]
    for wrong, exc in bad_lists:
        with pytest.raises(exc):
            a.replace_revocations(*wrong)
    assert a.revocation_version == 0 and a.stats().keys == 1


def test_bad_verify_calls_raise_and_count_nothing() -> None:
    a = Authenticator(nonce_capacity=16)
    a.add_key("k1", SECRET)
    h = sign_simple("k1", None, "badcall-1", T0)
    av: Any = a  # the calls below are wrong on purpose
    calls: List[Tuple[Callable[[], Any], Any]] = [
        (lambda: av.verify(None, "/x", authorization=h, now_ns=T0), TypeError),
        (lambda: av.verify("GET", None, authorization=h, now_ns=T0), TypeError),
        (lambda: av.verify(1, "/x", authorization=h, now_ns=T0), TypeError),
        (lambda: av.verify("GET", "/x", 5, authorization=h, now_ns=T0), TypeError),
        (lambda: av.verify("GET", "/x", "Host: x", authorization=h, now_ns=T0), TypeError),
        (lambda: av.verify("GET", "/x", b"Host", authorization=h, now_ns=T0), TypeError),
        (lambda: av.verify("GET", "/x", [("Host",)], authorization=h, now_ns=T0), TypeError),
        (lambda: av.verify("GET", "/x", ["ab"], authorization=h, now_ns=T0), TypeError),
        (lambda: av.verify("GET", "/x", [("Host", None)], authorization=h, now_ns=T0), TypeError),
        (lambda: av.verify("GET", "/x", {None: "x"}, authorization=h, now_ns=T0), TypeError),
        (lambda: av.verify("GET", "/x", {"Host": 5}, authorization=h, now_ns=T0), TypeError),
        (lambda: av.verify("GET", "/x", None, 5, authorization=h, now_ns=T0), TypeError),
        (lambda: av.verify("GET", "/x", None, [b"x"], authorization=h, now_ns=T0), TypeError),
        (lambda: av.verify("GET", "/x", authorization=5, now_ns=T0), TypeError),
        (lambda: av.verify("GET", "/x", authorization=[h], now_ns=T0), TypeError),
        (lambda: av.verify("GET", "/x", authorization=h, now_ns=-1), InvalidArgumentError),
        (lambda: av.verify("GET", "/x", authorization=h, now_ns=2**64), InvalidArgumentError),
        (lambda: av.verify("GET", "/x", authorization=h, now_ns=1.5), TypeError),
        (lambda: av.verify("GET", "/x", authorization=h, now_ns="1"), TypeError),
        (lambda: av.verify("GET", "/x", authorization=h, now_ns=True), TypeError),
        (lambda: av.verify("GET", "/x", authorization=h, body_sha256=b"\x00" * 31, now_ns=T0),
         InvalidArgumentError),
        (lambda: av.verify("GET", "/x", authorization=h, body_sha256=b"\x00" * 33, now_ns=T0),
         InvalidArgumentError),
        (lambda: av.verify("GET", "/x", authorization=h, body_sha256="0" * 64, now_ns=T0),
         TypeError),
        (lambda: av.verify("GET", "/x", None, b"x", authorization=h, body_sha256=b"\x00" * 32,
                          now_ns=T0), InvalidArgumentError),
        (lambda: av.verify("GET\udc80", "/x", authorization=h, now_ns=T0), InvalidArgumentError),
        (lambda: av.verify("GET", "/x"), TypeError),  # authorization is required
        (lambda: av.verify("GET", "/x", None, b"", h), TypeError),  # ... and keyword-only
    ]
    for call, exc in calls:
        with pytest.raises(exc):
            call()
    s = a.stats()
    assert s.verified == 0 and s.rejected == 0
    # The request still verifies afterwards: nothing was remembered.
    assert a.verify("GET", "/x", authorization=h, now_ns=T0).ok
    with pytest.raises(InvalidArgumentError, match="32 bytes"):
        a.verify("GET", "/x", authorization=h, body_sha256=b"", now_ns=T0)


def test_bad_client_calls() -> None:
    base: Dict[str, Any] = dict(key_id="k1", secret=SECRET, nonce="client-01", timestamp_ns=T0)
    changes: List[Tuple[Dict[str, Any], Any, str]] = [
        (dict(key_id=None), TypeError, "key_id"),
        (dict(key_id=1), TypeError, "key_id"),
        (dict(key_id=""), InvalidArgumentError, "bad_key_id"),
        (dict(key_id="k" * 65), InvalidArgumentError, "bad_key_id"),
        (dict(secret=None), TypeError, "secret"),
        (dict(secret=b""), InvalidArgumentError, "secret"),
        (dict(secret=b"s" * 1025), InvalidArgumentError, "secret"),
        (dict(token=5), TypeError, "token"),
        (dict(token="t t"), InvalidArgumentError, "bad_token"),
        (dict(token="t" * 129), InvalidArgumentError, "bad_token"),
        (dict(nonce=5), TypeError, "nonce"),
        (dict(timestamp_ns=-1), InvalidArgumentError, "timestamp_ns"),
        (dict(timestamp_ns=2**64), InvalidArgumentError, "timestamp_ns"),
        (dict(timestamp_ns=1.0), TypeError, "timestamp_ns"),
        (dict(body_sha256=b"x"), InvalidArgumentError, "32 bytes"),
    ]
    for change, exc, needle in changes:
        with pytest.raises(exc) as e:
            sign_request("GET", "/", **dict(base, **change))
        assert needle in str(e.value), (change, e.value)
    # Empty token means none; a timestamp of 20 digits (more than the 19 a
    # server parses) is not signed, the largest of 19 digits is.
    assert "Token" not in sign_request("GET", "/", **dict(base, token=""))
    with pytest.raises(InvalidArgumentError) as e:
        sign_request("GET", "/", **dict(base, timestamp_ns=U64_MAX))
    assert "bad_timestamp" in str(e.value)
    top = 10**19 - 1
    h = sign_request("GET", "/", **dict(base, timestamp_ns=top))
    assert f"Timestamp={top}," in h
    a = Authenticator(nonce_capacity=16)
    a.add_key("k1", SECRET)
    r = a.verify("GET", "/", authorization=h, now_ns=top)
    assert r.ok, (r.reason, r.detail)
    for bad in [(None, "/"), ("GET", None), (b"GET", 5)]:
        with pytest.raises(TypeError):
            sign_request(*bad, **base)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        sign_request("GET", "/", secret=SECRET)  # type: ignore[call-arg]


def test_a_closed_authenticator_refuses_every_call() -> None:
    with Authenticator(nonce_capacity=16) as a:
        a.add_key("k1", SECRET)
        assert not a.closed and "Authenticator" in repr(a)
    assert a.closed and "closed" in repr(a)
    a.close()  # idempotent
    h = sign_simple("k1", None, "closed-01", T0)
    calls = [
        lambda: a.verify("GET", "/x", authorization=h, now_ns=T0),
        lambda: a.verify("GET", "/x", authorization=h),
        lambda: a.add_key("k2", SECRET),
        lambda: a.remove_key("k1"),
        lambda: a.revoke_key("k1"),
        lambda: a.unrevoke_key("k1"),
        lambda: a.revoke_token("t"),
        lambda: a.unrevoke_token("t"),
        lambda: a.replace_revocations(5, ["k"], ["t"]),
        lambda: a.revocation_version,
        lambda: a.stats(),
        lambda: a.on_event(print),
        lambda: a.on_event(None),
    ]
    for call in calls:
        with pytest.raises(InvalidArgumentError) as e:
            call()
        assert_status(e, "TG_EINVAL")
        assert "closed" in e.value.message


def test_results_are_immutable_and_false_when_rejected() -> None:
    a = Authenticator(nonce_capacity=16)
    a.add_key("k1", SECRET)
    h = sign_simple("k1", "tok", "immut-01", T0)
    r = a.verify("GET", "/x", authorization=h, now_ns=T0)
    assert r and r.ok and r.reason_name == "none"
    assert r == AuthResult(A.OK, "none", "k1", "tok", "immut-01", T0)
    with pytest.raises(AttributeError):
        r.reason = A.SKEW  # type: ignore[misc]
    again = a.verify("GET", "/x", authorization=h, now_ns=T0)
    assert not again and again.reason_name == "replay"
    with pytest.raises(Exception):
        a.stats().verified = 5  # type: ignore[misc]
    with pytest.raises(Exception):
        AuthEvent(K.KEY_ADDED, "k", 0, 0).id = "x"  # type: ignore[misc]


def test_the_package_exports() -> None:
    for name in ("Authenticator", "AuthResult", "AuthReason", "AuthEvent", "AuthEventKind",
                 "AuthStats", "AUTH_DETAILS", "AUTH_SCHEME", "sign_request", "canonical_request",
                 "hmac_sha256", "generate_nonce", "auth_reason_name", "auth_detail_name"):
        assert name in tollgate.__all__ and hasattr(tollgate, name)
    assert set(tollgate.auth.__all__) <= set(tollgate.__all__)


def test_header_bytes_are_taken_as_bytes() -> None:
    # A memoryview of 4-byte items: its len() counts items, the library
    # must still see its bytes; non-ASCII str is UTF-8.
    from array import array

    value = array("I", [0x41414141, 0x42424242])  # b"AAAABBBB"
    h = sign_request("GET", "/", {"x-v": "AAAABBBB", "x-u": "caf\u00e9"}, key_id="k1",
                     secret=SECRET, signed_headers="x-u;x-v", nonce="bytes-0001", timestamp_ns=T0)
    a = Authenticator(nonce_capacity=16)
    a.add_key("k1", SECRET)
    forms: List[Any] = [
        [(b"x-v", memoryview(value)), (b"x-u", "caf\u00e9".encode())],
        [(b"x-v", memoryview(value).cast("B")), (b"x-u", b"caf\xc3\xa9")],
        {"x-v": "AAAABBBB", "x-u": "caf\u00e9"},
        [("x-v", b"AAAABBBB"), ("x-u", "caf\u00e9")],
    ]
    for i, headers in enumerate(forms):
        b = Authenticator(nonce_capacity=16)
        b.add_key("k1", SECRET)
        assert b.verify("GET", "/", headers, authorization=h, now_ns=T0).ok, i
    latin1 = {"x-v": "AAAABBBB", "x-u": "caf\u00e9".encode("latin-1")}  # other bytes
    assert a.verify("GET", "/", latin1, authorization=h, now_ns=T0).reason is A.BAD_SIGNATURE
