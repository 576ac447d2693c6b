"""Route tables, the RCU router, venue sets and path normalisation through
the binding: the cases of tests/unit/router_test.cpp and venue_test.cpp,
plus the binding's own conversions and its handling of bad input."""

from __future__ import annotations

import gc
import math
import pickle
import threading
import weakref
from typing import Any, Callable, Dict, List, Sequence, Tuple, Type

import pytest

import tollgate
from tollgate import (
    RETRY_NEVER,
    Breaker,
    BreakerState,
    HeaderOp,
    HeaderPredicate,
    InvalidArgumentError,
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
    TollgateError,
    Venue,
    VenuePick,
    VenueReason,
    VenueSet,
    VenueStrategy,
    normalize_path,
)
from tollgate._native import lib

MS = 1_000_000

NO_ROUTE = -1 - RouteStatus.NO_ROUTE
NOT_ALLOWED = -1 - RouteStatus.METHOD_NOT_ALLOWED


def rule(route_id: int, path: str, prefix: bool = False, **kw: Any) -> Rule:
    """As the C++ tests' rule(): target is route_id * 10."""
    return Rule(route_id, path, prefix=prefix, target=route_id * 10, **kw)


def routed(t: Any, path: Any, method: Any = "GET", host: Any = "", headers: Any = None) -> int:
    """The route id of a match, or -1 - status, so a failed assert shows why."""
    m = t.match(path, method, host, headers)
    return m.route_id if m.ok else -1 - int(m.status)


def build_error(rules: Sequence[Rule], venue_sets: Sequence[VenueSet] = ()) -> RouteBuildError:
    with pytest.raises(RouteBuildError) as info:
        RouteTable(rules, venue_sets)
    return info.value


# -- precedence -------------------------------------------------------------


def test_path_precedence_literal_param_rest_prefix() -> None:
    t = RouteTable([rule(5, "/", True), rule(4, "/orders", True), rule(3, "/orders/{*rest}"),
                    rule(2, "/orders/{id}"), rule(1, "/orders/new")])
    assert routed(t, "/orders/new") == 1
    assert routed(t, "/orders/42") == 2
    assert routed(t, "/orders/42/fills") == 3
    assert routed(t, "/orders") == 4
    assert routed(t, "/ordersx") == 5  # prefixes are whole segments
    assert routed(t, "/x/y") == 5
    assert routed(t, "/") == 5
    m = t.match("/orders/42")
    assert (m.route_id, m.target, m.rule_index, m.venue_set) == (2, 20, 3, None)
    assert len(t) == 5


def test_failed_literal_branch_backtracks_to_parameter() -> None:
    t = RouteTable([rule(1, "/a/b/c"), rule(2, "/a/{x}/d"), rule(3, "/a/{x}/{y}/e")])
    assert routed(t, "/a/b/c") == 1
    assert routed(t, "/a/b/d") == 2
    assert routed(t, "/a/b/c/e") == 3
    assert routed(t, "/a/b") == NO_ROUTE
    assert routed(t, "/a/b/c/d/e") == NO_ROUTE
    assert t.match("/a/b/c/e").params == {"x": "b", "y": "c"}


def test_exact_rule_beats_prefix_rule_ending_at_same_place() -> None:
    t = RouteTable([rule(1, "/api", True), rule(2, "/api"), rule(3, "/api/admin", True)])
    assert routed(t, "/api") == 2
    assert routed(t, "/api/") == 2  # a trailing slash is insignificant
    assert routed(t, "/api/x") == 1
    assert routed(t, "/api/admin") == 3  # the longer prefix
    assert routed(t, "/api/admin/users/7") == 3


def test_host_precedence() -> None:
    t = RouteTable([rule(1, "/q"), rule(2, "/q", host="*.example.com"),
                    rule(3, "/q", host="*.eu.example.com"), rule(4, "/q", host="fix.eu.example.com"),
                    rule(5, "/only", host="fix.eu.example.com"), rule(6, "/{x}")])
    assert routed(t, "/q", host="fix.eu.example.com") == 4
    assert routed(t, "/q", host="FIX.EU.Example.COM.") == 4  # case, trailing dot
    assert routed(t, "/q", host="fix.eu.example.com:8443") == 4
    assert routed(t, "/q", host=b"fix.eu.example.com") == 4  # bytes work too
    assert routed(t, "/q", host="a.eu.example.com") == 3
    assert routed(t, "/q", host="a.b.eu.example.com") == 3
    assert routed(t, "/q", host="us.example.com") == 2
    assert routed(t, "/q", host="example.com") == 1  # *.x does not match x itself
    assert routed(t, "/q", host="") == 1
    assert routed(t, "/q", host=None) == 1  # type: ignore[arg-type]
    assert routed(t, "/q", host="other.org") == 1
    # Precedence is among the rules that match: a host-specific rule that
    # does not match the path falls back to less specific hosts.
    assert routed(t, "/zz", host="fix.eu.example.com") == 6
    assert routed(t, "/only", host="fix.eu.example.com") == 5
    assert routed(t, "/only", host="x.eu.example.com") == 6
    assert routed(t, "/q", host="[::1]:8080") == 1
    bad_host = -1 - RouteStatus.BAD_HOST
    assert routed(t, "/q", host="bad host") == bad_host
    assert routed(t, "/q", host="a/b") == bad_host
    assert routed(t, "/q", host="a" * 300) == bad_host


def test_bad_host_is_refused_by_every_table() -> None:
    without_host_rules = RouteTable([rule(1, "/q")])
    assert without_host_rules.match("/q", host="bad host").status is RouteStatus.BAD_HOST


def test_methods_named_beat_any_fewer_first_and_405() -> None:
    t = RouteTable([rule(1, "/o"), rule(2, "/o", methods=["GET", "POST"]),
                    rule(3, "/o", methods=("POST",)), rule(4, "/o/{id}", methods=["DELETE"])])
    assert routed(t, "/o", "POST") == 3
    assert routed(t, "/o", "GET") == 2
    assert routed(t, "/o", "PUT") == 1
    assert routed(t, "/o", "get") == 1  # methods are case-sensitive
    assert routed(t, "/o/7", "DELETE") == 4
    assert routed(t, "/o/7", b"DELETE") == 4
    assert routed(t, "/o/7", "GET") == NOT_ALLOWED
    assert routed(t, "/p", "GET") == NO_ROUTE
    m = t.match("/o/7", "GET")
    assert m.status is RouteStatus.METHOD_NOT_ALLOWED and not m and not m.ok
    assert (m.code, m.status_name) == (lib.TG_ROUTE_METHOD_NOT_ALLOWED, "method_not_allowed")
    assert (m.route_id, m.target, m.rule_index, m.venue_set, m.params, m.spans) == (
        None, None, None, None, {}, ())


def test_header_predicates_present_exact_prefix_inverted_count() -> None:
    t = RouteTable([
        rule(1, "/o"),
        rule(2, "/o", headers=[HeaderPredicate("X-Venue")]),
        rule(3, "/o", headers=[HeaderPredicate("x-venue", "XLON", "exact"),
                               HeaderPredicate("x-desk", "eq-", HeaderOp.PREFIX)]),
        rule(4, "/o", headers=[HeaderPredicate("x-test", "1", "EXACT", invert=True),
                               ("x-venue",),  # a tuple is read as HeaderPredicate(*tuple)
                               HeaderPredicate("x-canary", op="present")]),
    ])
    assert routed(t, "/o") == 1
    assert routed(t, "/o", headers={"X-VENUE": "XPAR"}) == 2
    assert routed(t, "/o", headers={"x-venue": "XLON", "X-Desk": "eq-cash"}) == 3
    assert routed(t, "/o", headers=[("x-venue", "XLON"), ("X-Desk", "fx")]) == 2
    assert routed(t, "/o", headers=[(b"x-venue", b"XLON"), (b"x-canary", b"")]) == 4
    assert routed(t, "/o", headers=[("x-venue", "XLON"), ("x-canary", ""), ("x-test", "1")]) == 2
    # Repeated headers: a predicate holds if any occurrence satisfies it, an
    # inverted one only if none does, so a decoy cannot flip it.
    assert routed(t, "/o", headers=[("x-venue", "XLON"), ("x-canary", ""), ("x-test", "0"),
                                    ("x-test", "1")]) == 2
    assert routed(t, "/o", headers=[("x-venue", "XPAR"), ("x-venue", "XLON"),
                                    ("x-desk", "eq-1")]) == 3
    assert routed(t, "/o", headers=[]) == 1


def test_priority_breaks_ties_then_declaration_order() -> None:
    def p(route_id: int, prio: int, hdr: str = "") -> Rule:
        preds = [HeaderPredicate(hdr)] if hdr else []
        return rule(route_id, "/o/{id}", priority=prio, headers=preds)

    t = RouteTable([p(1, 0), p(2, 5), p(3, 0, "a"), p(4, 0, "b"), p(5, 9, "c")])
    assert routed(t, "/o/1") == 2
    assert routed(t, "/o/1", headers={"a": "", "b": ""}) == 3  # earlier declared
    assert routed(t, "/o/1", headers={"b": "", "c": ""}) == 5  # higher priority
    negative = RouteTable([rule(1, "/o", priority=-(2**31)), rule(2, "/o", priority=2**31 - 1)])
    assert routed(negative, "/o") == 2


# -- parameters ---------------------------------------------------------------


def test_rest_parameter_needs_a_segment_and_keeps_the_raw_spelling() -> None:
    t = RouteTable([rule(1, "/files/{*path}")])
    assert routed(t, "/files") == NO_ROUTE
    p = "/files/a/b%20c/d.txt"
    m = t.match(p)
    assert m.ok and m.param_names == ("path",)
    assert m.params == {"path": "a/b%20c/d.txt"}  # raw spelling, not decoded
    assert t.param_name(m.rule_index, 0) == "path"  # type: ignore[arg-type]


def test_parameters_are_raw_spans_of_the_callers_path() -> None:
    t = RouteTable([rule(1, "/accounts/{account}/orders/{order}")])
    p = "//accounts/AC%2d1/./orders/o-9?verbose=1"
    m = t.match(p)
    assert m.ok
    assert m.params == {"account": "AC%2d1", "order": "o-9"}
    assert m.spans == ((p.index("AC%2d1"), 6), (p.index("o-9"), 3))
    assert m.path == p.encode()
    assert m.param_bytes == {"account": b"AC%2d1", "order": b"o-9"}
    assert t.param_name(0, 0) == "account"
    assert t.param_name(0, 1) == "order"
    with pytest.raises(InvalidArgumentError) as info:
        t.param_name(0, 2)
    assert info.value.code == lib.TG_ERANGE
    with pytest.raises(InvalidArgumentError) as info:
        t.param_name(7, 0)
    assert info.value.code == lib.TG_ERANGE
    # The params dict is a copy: changing it does not change the match.
    m.params["account"] = "x"
    assert m.params["account"] == "AC%2d1"


def test_parameters_of_non_ascii_and_bytes_paths() -> None:
    t = RouteTable([rule(1, "/caf%C3%A9/{who}")])
    m = t.match("/café/Zoë")
    assert m.params == {"who": "Zoë"}
    assert m.spans == ((len("/café/".encode()), len("Zoë".encode())),)  # byte offsets
    raw = b"/caf%c3%a9/\xffx"  # not UTF-8: kept losslessly
    m = t.match(raw)
    assert m.param_bytes == {"who": b"\xffx"}
    assert m.params["who"].encode("utf-8", "surrogateescape") == b"\xffx"
    assert t.match(bytearray(b"/caf%C3%A9/q")).params == {"who": "q"}
    assert t.match(memoryview(b"/caf%C3%A9/q")).params == {"who": "q"}


def test_sixteen_parameters_are_all_captured() -> None:
    pattern = "".join(f"/{{p{i}}}" for i in range(tollgate.MAX_ROUTE_PARAMS))
    t = RouteTable([rule(1, pattern)])
    m = t.match("".join(f"/v{i}" for i in range(16)))
    assert m.params == {f"p{i}": f"v{i}" for i in range(16)}


# -- normalisation ------------------------------------------------------------

SAME_ROUTE = ["/admin/keys", "//admin///keys/", "/admin/./keys", "/admin/x/../keys",
              "/%61dmin/keys", "/%61%64%6D%69%6e/keys", "/admin/keys?x=/..", "/admin/keys#frag",
              "/../admin/keys", "/admin/%2e/keys", "/admin/x/%2e%2e/keys", "/a/../../admin/keys"]

REFUSED = [
    ("/admin%2Fkeys", RouteStatus.AMBIGUOUS_SEPARATOR),
    ("/admin%2fkeys", RouteStatus.AMBIGUOUS_SEPARATOR),
    ("/admin%5Ckeys", RouteStatus.AMBIGUOUS_SEPARATOR),
    ("/admin\\keys", RouteStatus.AMBIGUOUS_SEPARATOR),
    ("/admin/%zzkeys", RouteStatus.BAD_ENCODING),
    ("/admin/keys%4", RouteStatus.BAD_ENCODING),
    ("/admin/keys%", RouteStatus.BAD_ENCODING),
    ("/admin/k%00eys", RouteStatus.BAD_ENCODING),
    ("/admin/k\x01eys", RouteStatus.BAD_ENCODING),
    ("/admin/k%7Feys", RouteStatus.BAD_ENCODING),
    ("/admin/k\x00eys", RouteStatus.BAD_ENCODING),  # a NUL in the caller's buffer
    ("admin/keys", RouteStatus.PATH_NOT_ABSOLUTE),
    ("", RouteStatus.PATH_NOT_ABSOLUTE),
    ("?/admin", RouteStatus.PATH_NOT_ABSOLUTE),
]


@pytest.fixture(scope="module")
def admin_table() -> RouteTable:
    return RouteTable([rule(1, "/admin/keys"), rule(2, "/{x}/{y}"), rule(3, "/", True)])


@pytest.mark.parametrize("path", SAME_ROUTE)
def test_every_spelling_reaches_the_same_route(admin_table: RouteTable, path: str) -> None:
    assert routed(admin_table, path) == 1
    assert normalize_path(path) == "/admin/keys"


@pytest.mark.parametrize("path,status", REFUSED)
def test_refused_spellings(admin_table: RouteTable, path: str, status: RouteStatus) -> None:
    m = admin_table.match(path)
    assert m.status is status and not m.ok
    assert m.status_name == status.name.lower()
    with pytest.raises(PathRefusedError) as info:
        normalize_path(path)
    e = info.value
    assert e.code == lib.TG_EINVAL and e.route_status is status
    assert status.name.lower() in e.message and f"TG_ROUTE_{status.name}" in e.message
    assert isinstance(e, InvalidArgumentError) and isinstance(e, ValueError)
    assert pickle.loads(pickle.dumps(e)).route_status is status


def test_path_limits(admin_table: RouteTable) -> None:
    long_path = "/" + "a" * 8191
    assert routed(admin_table, long_path) == 3
    assert admin_table.match(long_path + "a").status is RouteStatus.PATH_TOO_LONG
    assert admin_table.match(long_path + "a?" + "q" * 100).status is RouteStatus.PATH_TOO_LONG
    assert routed(admin_table, long_path + "?" + "q" * 10000) == 3  # the query does not count
    deep = "/s" * 128
    assert routed(admin_table, deep) == 3
    assert admin_table.match(deep + "/s").status is RouteStatus.PATH_TOO_DEEP
    assert routed(admin_table, deep + "/..") == 3  # the normalised depth is what counts


def test_normalize_path_writes_the_normal_form() -> None:
    assert normalize_path("/") == "/"
    assert normalize_path("//") == "/"
    assert normalize_path("/a/./b/../c//") == "/a/c"
    assert normalize_path("/%7Euser/%41%2d") == "/~user/A-"
    assert normalize_path("/caf%c3%a9") == "/caf%C3%A9"
    assert normalize_path("/café") == "/caf%C3%A9"
    assert normalize_path(b"/caf\xc3\xa9") == "/caf%C3%A9"
    assert normalize_path("/a b/%3F/%25") == "/a%20b/%3F/%25"
    assert normalize_path("/x?q=1") == "/x"
    assert normalize_path("/..") == "/"
    p = "/a/%2e%2e/b/%7e/c%20d"
    assert normalize_path(normalize_path(p)) == normalize_path(p)  # idempotent
    # Every byte escaped: the normal form is three times the input, more than
    # the first buffer the binding offers, so it retries with the size needed.
    spaces = "/" + " " * 2000
    assert normalize_path(spaces) == "/" + "%20" * 2000
    assert normalize_path("/" + "\u00e9" * 1000) == "/" + "%C3%A9" * 1000


def test_rule_literals_are_normalised_like_request_paths() -> None:
    t = RouteTable([rule(1, "/caf%C3%A9/%7euser")])
    assert routed(t, "/caf%c3%a9/~user") == 1
    assert routed(t, b"/caf\xc3\xa9/%7Euser") == 1
    assert routed(t, "/café/~user") == 1


# -- build errors -------------------------------------------------------------

BAD_RULES = [
    ("/a/{b", "", (), "whole segment"),
    ("/a/b}", "", (), "whole segment"),
    ("/a/x{y}", "", (), "whole segment"),
    ("/a/{}", "", (), "whole segment"),
    ("/a/{*}", "", (), "1..64"),
    ("/a/{1x}", "", (), "[A-Za-z_]"),
    ("/a/{x-y}", "", (), "[A-Za-z_]"),
    ("/a/{{x}}", "", (), "whole segment"),
    ("/a/{x}/{x}", "", (), "appears twice"),
    ("/a/{*r}/b", "", (), "last segment"),
    ("/a//b", "", (), "empty segment"),
    ("/a/", "", (), "empty segment"),
    ("a/b", "", (), "start with '/'"),
    ("", "", (), "start with '/'"),
    ("/a/./b", "", (), "cannot be literal"),
    ("/a/../b", "", (), "cannot be literal"),
    ("/a%2Fb", "", (), "ambiguous_separator"),
    ("/a%zz", "", (), "bad_encoding"),
    ("/a?b", "", (), "cannot be literal"),
    ("/a", "foo*.com", (), 'leading "*."'),
    ("/a", "*", (), 'leading "*."'),
    ("/a", "*.", (), "1..255"),
    ("/a", "x.com.", (), "end in '.'"),
    ("/a", "x.com:443", (), "port"),
    ("/a", "x y.com", (), "no host name has"),
    ("/a", "", ("GE T",), "token"),
    ("/a", "", ("GET", "GET"), "twice"),
    # Refused by the binding before the call: the C field is one
    # comma-separated string, which these would not survive.
    ("/a", "", ("",), "token"),
    ("/a", "", ("GET,POST",), "token"),
    ("/a", "", (" GET",), "token"),
]


@pytest.mark.parametrize("path,host,methods,why", BAD_RULES)
def test_malformed_rules_are_rejected_with_index_and_reason(
    path: str, host: str, methods: Tuple[str, ...], why: str
) -> None:
    e = build_error([rule(0, "/ok"), Rule(1, path, host=host, methods=methods)])
    assert e.rule_index == 1
    assert e.code == lib.TG_EINVAL and e.status == "TG_EINVAL"
    assert e.message.startswith("rule 1: "), e.message
    assert why in e.message
    assert isinstance(e, InvalidRouteBuildError) and isinstance(e, ValueError)


def test_more_build_errors() -> None:
    e = build_error([rule(0, "/s" * 129)])
    assert "128" in e.message and e.rule_index == 0
    e = build_error([rule(0, "".join(f"/{{p{i}}}" for i in range(17)))])
    assert "16 parameters" in e.message
    assert "prefix rule" in build_error([rule(0, "/a/{*r}", True)]).message
    assert "takes no value" in build_error(
        [rule(0, "/a", headers=[HeaderPredicate("x", "v", "present")])]).message
    assert "header name" in build_error([rule(0, "/a", headers=[HeaderPredicate("x:y")])]).message
    assert "PRESENT, EXACT or PREFIX" in build_error(
        [rule(0, "/a", headers=[HeaderPredicate("x", op=9)])]).message
    e = build_error([rule(0, "/ok"), rule(1, "/a", venue_set=0)])
    assert "does not exist" in e.message and e.rule_index == 1
    e = build_error([rule(i, f"/m{i}", methods=[f"M{i}"]) for i in range(33)])
    assert "32 distinct methods" in e.message and e.rule_index == 32
    e = build_error([rule(0, "/ok"), rule(1, "/a", headers=[HeaderPredicate(f"h{i}")
                                                           for i in range(17)])])
    assert e.code == lib.TG_ERANGE and e.rule_index == 1 and "16 header predicates" in e.message
    e = build_error([rule(0, "/ok"), rule(1, "/a\0b")])  # a NUL would truncate the C string
    assert e.rule_index == 1 and "NUL" in e.message
    e = build_error([rule(0, "/ok"), rule(1, "/a", priority=2**31)])
    assert e.rule_index == 1 and "priority" in e.message
    # The exception survives pickling, rule index included.
    again = pickle.loads(pickle.dumps(e))
    assert type(again) is type(e) and again.rule_index == 1 and again.code == e.code


def test_duplicate_rules_are_rejected_but_not_a_different_priority() -> None:
    e = build_error([rule(0, "/a/{x}"), rule(1, "/b"), rule(2, "/a/{y}")])
    assert "duplicates rule 0" in e.message and e.rule_index == 2
    a = rule(0, "/o", methods=["GET", "POST"], host="X.com",
             headers=[HeaderPredicate("A", "1", "exact"), HeaderPredicate("b", invert=True)])
    b = rule(0, "/o", methods=["POST", "GET"], host="x.com",
             headers=[HeaderPredicate("b", invert=True), HeaderPredicate("a", "1", "exact")])
    e = build_error([a, b])
    assert "duplicates rule 0" in e.message and e.rule_index == 1
    assert len(RouteTable([a, Rule(0, "/o", methods=["GET", "POST"], host="x.com",
                                   headers=b.headers, priority=1)])) == 2
    assert len(RouteTable([a, Rule(0, "/o", methods=["GET", "POST"], host="X.com",
                                   headers=a.headers, prefix=True)])) == 2
    assert len(RouteTable([a, Rule(0, "/o", methods=["GET", "POST"], host="X.com",
                                   headers=[HeaderPredicate("A", "2", "exact"),
                                            HeaderPredicate("b", invert=True)])])) == 2


def test_empty_table_matches_nothing() -> None:
    t = RouteTable([])
    assert routed(t, "/") == NO_ROUTE
    assert len(t) == 0 and t.rules == ()


def test_many_static_children_are_hashed() -> None:
    t = RouteTable([rule(i, f"/svc{i}/{{id}}") for i in range(500)])
    for i in range(0, 500, 37):
        assert routed(t, f"/svc{i}/x") == i
    assert routed(t, "/svc500/x") == NO_ROUTE


# -- batches ----------------------------------------------------------------


def test_match_many_equals_single_matches() -> None:
    t = RouteTable([rule(1, "/o/{id}", methods=["GET"]), rule(2, "/o/{id}", methods=["POST"]),
                    rule(3, "/h", host="x.com", headers=[HeaderPredicate("k", "v", "exact")]),
                    rule(4, "/h")])
    requests: List[Any] = [
        "/o/1",
        ("/o/2", "POST"),
        ("/o/3", "PUT"),
        ("/h", "GET", "x.com", {"k": "v"}),
        Request("/h", host="x.com", headers=[("k", "w")]),
        Request(b"/o/%zz"),
        ("/o/\u00e9",),
        Request("/nothing", "GET", None),
    ]
    batch = t.match_many(requests)
    single = [
        t.match("/o/1"), t.match("/o/2", "POST"), t.match("/o/3", "PUT"),
        t.match("/h", "GET", "x.com", {"k": "v"}), t.match("/h", host="x.com", headers=[("k", "w")]),
        t.match(b"/o/%zz"), t.match("/o/\u00e9"), t.match("/nothing"),
    ]
    assert batch == single
    assert [routed_id(m) for m in batch] == [1, 2, NOT_ALLOWED, 3, 4,
                                            -1 - RouteStatus.BAD_ENCODING, 1, NO_ROUTE]
    assert batch[6].params == {"id": "\u00e9"}
    assert t.match_many([]) == []
    r = Router(t)
    assert r.match_many(requests) == single
    # Validation first: a bad request anywhere raises before any matching.
    with pytest.raises(TypeError):
        t.match_many(["/o/1", 5])


def routed_id(m: RouteMatch) -> int:
    return m.route_id if m.ok else -1 - int(m.status)  # type: ignore[return-value]


def test_large_batch_with_headers() -> None:
    t = RouteTable([rule(1, "/o/{id}", headers=[HeaderPredicate("x-n", "7", "exact")]),
                    rule(2, "/o/{id}")])
    reqs = [Request(f"/o/{i}", headers=[("x-n", str(i % 10))]) for i in range(2000)]
    out = t.match_many(reqs)
    assert [m.route_id for m in out] == [1 if i % 10 == 7 else 2 for i in range(2000)]
    assert all(m.params == {"id": str(i)} for i, m in enumerate(out))


# -- the router ---------------------------------------------------------------


def test_router_publishes_while_threads_match() -> None:
    # Table A routes /o/{a} to id 1 (target 10), table B /o/{b} to id 2. A
    # reader must see a consistent match from one or the other, never a torn
    # or freed table; the parameter name must be the one of the table that
    # matched (the binding resolves names against the same table).
    a = RouteTable([rule(1, "/o/{a}")])
    b = RouteTable([rule(2, "/o/{b}")])
    r = Router(a)
    stop = threading.Event()
    seen: Dict[int, int] = {1: 0, 2: 0}
    bad: List[str] = []
    lock = threading.Lock()

    def reader(i: int) -> None:
        local = {1: 0, 2: 0}
        while not stop.is_set():
            if i == 2:
                ms = r.match_many(["/o/x"] * 8)
                ids = {m.route_id for m in ms}
                if len(ids) != 1:
                    bad.append(f"batch from two tables: {ms}")
                m = ms[0]
            else:
                m = r.match("/o/x")
            if not m.ok or m.target != m.route_id * 10 or m.route_id not in (1, 2):  # type: ignore
                bad.append(repr(m))
            elif m.param_names != (("a",) if m.route_id == 1 else ("b",)):
                bad.append(f"names of the other table: {m!r}")
            else:
                local[m.route_id] += 1  # type: ignore[index]
        with lock:
            for k, v in local.items():
                seen[k] += v

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(3)]
    for th in threads:
        th.start()
    publishes = 300
    try:
        for i in range(publishes):
            # Fresh tables each round, so that a freed one would be noticed.
            t = RouteTable([rule(2, "/o/{b}")] if i % 2 == 0 else [rule(1, "/o/{a}")])
            r.publish(t)
            t.close()  # the router keeps its own reference
    finally:
        stop.set()
        for th in threads:
            th.join()
    assert bad == []
    assert seen[1] + seen[2] > 0
    assert r.version == publishes
    cur = r.current()
    assert len(cur) == 1 and cur.rules == (rule(1, "/o/{a}"),)
    assert r.match("/o/z").params == {"a": "z"}
    del b


def test_default_router_has_an_empty_table() -> None:
    r = Router()
    assert r.match("/").status is RouteStatus.NO_ROUTE
    assert r.version == 0
    assert len(r.current()) == 0
    d = r.route("/")
    assert not d.match.ok and d.venue is None and not d


def test_router_keeps_its_table_and_refuses_closed_ones() -> None:
    t = RouteTable([rule(1, "/o/{id}")])
    r = Router(t)
    t.close()
    assert t.closed
    with pytest.raises(InvalidArgumentError, match="closed"):
        t.match("/o/1")
    assert r.match("/o/1").params == {"id": "1"}  # the router's own reference
    with pytest.raises(InvalidArgumentError, match="closed"):
        r.publish(t)
    with pytest.raises(InvalidArgumentError, match="closed"):
        Router(t)
    cur = r.current()
    cur.close()
    assert r.match("/o/2").route_id == 1
    t2 = RouteTable([rule(2, "/p")])
    r.publish(t2)
    r.publish(t2)  # publishing the current table again is allowed
    assert r.version == 2
    assert routed(r, "/p") == 2 and routed(r, "/o/1") == NO_ROUTE
    with r:
        pass
    assert r.closed
    with pytest.raises(InvalidArgumentError, match="closed"):
        r.match("/p")
    with pytest.raises(InvalidArgumentError, match="closed"):
        r.publish(t2)
    r.close()  # idempotent


# -- venue sets ---------------------------------------------------------------


def plain(n: int) -> List[Venue]:
    return [Venue(100 + i) for i in range(n)]


def make_breaker() -> Breaker:
    return Breaker(open_ns=1000 * MS, half_open_probes=1)


def test_weighted_picks_follow_the_weights() -> None:
    s = VenueSet([Venue(1, 1), Venue(2, 2), Venue(3, 5)])
    counts = [0, 0, 0]
    n = 80000
    for i in range(n):
        p = s.pick(b"", i, 0)
        assert p.ok and p.venue_id == s.venues[p.index].venue_id  # type: ignore[index]
        counts[p.index] += 1  # type: ignore[index]
    assert abs(counts[0] / n - 1 / 8) < 0.01
    assert abs(counts[1] / n - 2 / 8) < 0.01
    assert abs(counts[2] / n - 5 / 8) < 0.01


def test_picks_are_a_pure_function_and_replay_with_choose() -> None:
    a = VenueSet(plain(8), seed=42)
    b = VenueSet(plain(8), seed=42)
    c = VenueSet(plain(8), seed=43)
    differ = 0
    for nonce in range(1000):
        pa = a.pick("", nonce, 0)
        assert pa.index == b.pick("", nonce, 0).index
        assert pa.eligible == 0xFF and pa.eligible_indices == list(range(8))
        assert pa.nonce == nonce and pa.reason is VenueReason.OK and pa.retry_after_ns == 0
        assert a.choose("", nonce, pa.eligible) == pa  # replay gives the same pick
        differ += c.pick("", nonce, 0).index != pa.index
    assert differ > 700  # another seed is another sequence
    restricted = a.choose("", 7, 0b10100000)
    assert restricted.index in (5, 7)
    assert a.choose("", 7, 0b10100000).index == restricted.index
    none = a.choose("", 7, 0)
    assert (none.ok, none.reason, none.index, none.venue_id, none.retry_after_ns) == (
        False, VenueReason.ALL_DOWN, None, None, RETRY_NEVER)
    assert a.choose("", 7, 1 << 40).reason is VenueReason.ALL_DOWN  # bits beyond the set


def test_default_nonces_count_per_set_and_are_reported() -> None:
    s = VenueSet(plain(8), seed=5)
    other = VenueSet(plain(8), seed=5)
    picks = [s.pick() for _ in range(50)]
    assert [p.nonce for p in picks] == list(range(50))
    assert other.pick().nonce == 0  # each set has its own counter
    for p in picks:
        assert s.choose(b"", p.nonce, p.eligible).index == p.index  # replayable


def test_venue_whose_breaker_would_reject_is_skipped_until_it_can_probe() -> None:
    b0, b1 = make_breaker(), make_breaker()
    s = VenueSet([Venue(1, 1, b0), Venue(2, 1, b1)])
    now = 10 * MS
    b0.transition(BreakerState.OPEN, now)  # open until now + 1000 ms
    for nonce in range(200):
        p = s.pick("", nonce, now + 999 * MS)
        assert p.ok and p.venue_id == 2 and p.eligible == 0b10
    # Open period over: eligible again, so that it can get its probe.
    assert s.stats(0, now + 1000 * MS).ready_in_ns == 0
    assert any(s.pick("", n, now + 1000 * MS).venue_id == 1 for n in range(200))
    # The probe is taken: half-open with no probe left is skipped again.
    probe = b0.acquire(now + 1000 * MS)
    assert probe.allowed and b0.state is BreakerState.HALF_OPEN
    assert s.stats(0, now + 1000 * MS).ready_in_ns == 1000 * MS
    assert s.pick("", 1, now + 1000 * MS).eligible == 0b10
    b0.record(probe, "ignored", 0, now + 1000 * MS)

    # Both out: ALL_OPEN with the soonest time a breaker admits again.
    b1.transition("open", now + 1300 * MS)
    b0.transition("open", now + 1000 * MS)
    none = s.pick("", 1, now + 1500 * MS)
    assert not none and none.reason is VenueReason.ALL_OPEN and none.reason_name == "all_open"
    assert none.retry_after_ns == 500 * MS  # b0 reopens at +2000 ms, b1 at +2300 ms
    assert none.index is None and none.eligible == 0
    # Forced open is down for good; disabled venues too.
    b0.transition("forced_open", now)
    b1.transition("forced_open", now)
    none = s.pick("", 1, now)
    assert none.reason is VenueReason.ALL_DOWN and none.retry_after_ns == RETRY_NEVER
    assert s.stats(1, now).ready_in_ns == RETRY_NEVER
    b0.transition("closed", now)
    assert s.pick("", 1, now).venue_id == 1
    s.set_enabled(0, False)
    assert s.stats(0, now).enabled is False
    assert s.pick("", 1, now).reason is VenueReason.ALL_DOWN
    s.set_enabled(0, True)
    assert s.pick("", 1, now).ok
    with pytest.raises(InvalidArgumentError) as info:
        s.set_enabled(2, False)
    assert info.value.code == lib.TG_ERANGE


def test_a_closed_breaker_object_keeps_guarding_its_venue() -> None:
    b = make_breaker()
    ref = weakref.ref(b)
    s = VenueSet([Venue(1, breaker=b), Venue(2)])
    b.transition("forced_open", 0)
    b.close()  # the set holds its own reference on the C handle
    del b
    gc.collect()
    assert ref() is not None  # the set keeps the Python object too
    assert all(s.pick("", n, 0).venue_id == 2 for n in range(50))
    assert s.stats(0, 0).ready_in_ns == RETRY_NEVER
    s.close()
    del s
    gc.collect()
    assert ref() is None


def test_least_latency_prefers_the_faster_of_two() -> None:
    s = VenueSet(plain(3), strategy="least_latency")
    assert s.strategy is VenueStrategy.LEAST_LATENCY
    assert s.pick("", 0, 0).ok  # no samples yet: every venue counts as 0 ns
    for _ in range(10):
        s.record_latency(0, 900, 0)
        s.record_latency(1, 100, 0)
        s.record_latency(2, 500, 0)
    counts = [0, 0, 0]
    n = 30000
    for nonce in range(n):
        p = s.pick("", nonce, 0)
        assert p.ok and p.alternative != p.index
        counts[p.index] += 1  # type: ignore[index]
    assert counts[0] == 0  # the slowest never wins a pair
    # The fastest wins every pair it is in: 2 of the 3 equally likely pairs.
    assert abs(counts[1] / n - 2 / 3) < 0.02
    s.set_enabled(1, False)
    s.set_enabled(2, False)
    one = s.pick("", 5, 0)
    assert (one.index, one.alternative) == (0, 0)  # one eligible venue: no pair


def test_latency_ewma() -> None:
    s = VenueSet(plain(2), latency_alpha=0.25)
    assert s.stats(0, 0).latency_ewma_ns is None
    s.record_latency(0, 1000, 0)
    assert s.stats(0, 0).latency_ewma_ns == 1000.0
    s.record_latency(0, 2000, 0)
    st = s.stats(0, 0)
    assert st.latency_ewma_ns == 1250.0 and st.latency_samples == 2
    assert (st.venue_id, st.weight, st.enabled, st.ready_in_ns) == (100, 1, True, 0)
    with pytest.raises(InvalidArgumentError) as info:
        s.record_latency(2, 1)
    assert info.value.code == lib.TG_ERANGE
    with pytest.raises(InvalidArgumentError) as info:
        s.stats(9, 0)
    assert info.value.code == lib.TG_ERANGE
    assert len(s) == 2


def test_sticky_picks_keep_a_key_and_move_only_a_leaving_venues_keys() -> None:
    s = VenueSet(plain(8), sticky=True, seed=7)
    keys = 20000
    home: List[int] = []
    per = [0] * 8
    for k in range(keys):
        key = f"acct-{k}"
        i = s.pick(key, 1, 0).index
        assert i is not None
        home.append(i)
        per[i] += 1
        assert s.pick(key.encode(), 999, 0).index == i  # the nonce does not matter
    assert all(abs(c / keys - 0.125) < 0.015 for c in per)
    s.set_enabled(3, False)
    moved = 0
    for k in range(keys):
        at = s.pick(f"acct-{k}", 1, 0).index
        if home[k] == 3:
            assert at != 3
            moved += 1
        else:
            assert at == home[k]  # nobody else moves
    assert moved == per[3]
    s.set_enabled(3, True)
    for k in range(0, keys, 13):
        assert s.pick(f"acct-{k}", 1, 0).index == home[k]
    assert s.pick("", 1, 0).ok  # an empty key falls back to the strategy
    p = s.pick("acct-5", 1, 0)
    assert s.choose("acct-5", 12345, p.eligible).index == p.index  # sticky replay


def test_sticky_picks_honour_weights() -> None:
    s = VenueSet([Venue(1, 1), Venue(2, 3)], sticky=True)
    keys = 40000
    on_heavy = sum(s.pick(str(k), 0, 0).venue_id == 2 for k in range(keys))
    assert abs(on_heavy / keys - 0.75) < 0.015


@pytest.mark.parametrize(
    "venues,kwargs,code,why",
    [
        ([], {}, lib.TG_EINVAL, "at least one"),
        (plain(65), {}, lib.TG_ERANGE, "64"),
        ([Venue(1, 0)], {}, lib.TG_ERANGE, "weight"),
        ([Venue(1, 1_000_001)], {}, lib.TG_ERANGE, "weight"),
        ([Venue(1), Venue(1)], {}, lib.TG_EINVAL, "repeats venue 0"),
        (plain(1), {"latency_alpha": 0}, lib.TG_ERANGE, "latency_alpha"),
        (plain(1), {"latency_alpha": 1.5}, lib.TG_ERANGE, "latency_alpha"),
        (plain(1), {"latency_alpha": math.inf}, lib.TG_ERANGE, "latency_alpha"),
        (plain(1), {"strategy": 5}, lib.TG_EINVAL, "strategy"),
    ],
)
def test_venue_set_construction_rejects_bad_input(
    venues: List[Venue], kwargs: Dict[str, Any], code: int, why: str
) -> None:
    with pytest.raises(TollgateError) as info:
        VenueSet(venues, **kwargs)
    assert info.value.code == code and why in info.value.message


def test_venue_set_of_64() -> None:
    s = VenueSet(plain(64), latency_alpha=1)
    assert len(s) == 64 and s.pick("", 0, 0).ok
    assert s.choose("", 0, (1 << 64) - 1).eligible == (1 << 64) - 1
    assert s.index_of(163) == 63


# -- route() ------------------------------------------------------------------


def test_route_matches_then_picks_from_the_routes_venue_set() -> None:
    vs = VenueSet(plain(4), sticky=True)
    t = RouteTable([Rule(1, "/orders", venue_set=0), Rule(2, "/info")], [vs])
    assert t.venue_sets == (vs,)
    r = Router(t)
    d = r.route("/orders", "POST", key="acct-1", nonce=3, now_ns=0)
    assert isinstance(d, RouteDecision) and d
    assert d.match.ok and d.match.venue_set == 0 and d.nonce == 3
    assert isinstance(d.venue, VenuePick) and d.venue.ok
    assert d.venue.index == vs.pick("acct-1", 3, 0).index
    assert d.venue == vs.pick(b"acct-1", 3, 0)
    d2 = r.route("/info", "POST", key="acct-1", nonce=3, now_ns=0)
    assert d2.match.ok and d2.match.venue_set is None and d2.venue is None
    d3 = r.route("/nowhere", key="acct-1")
    assert not d3.match.ok and d3.venue is None and not d3
    # Without a nonce the router's counter supplies one, reported for replay.
    n1 = r.route("/orders", now_ns=0).nonce
    n2 = r.route("/orders", now_ns=0).nonce
    assert n2 == n1 + 1
    # No eligible venue: a failed pick, not an exception.
    for i in range(4):
        vs.set_enabled(i, False)
    d4 = r.route("/orders", key="acct-1", nonce=3, now_ns=0)
    assert d4.match.ok and d4.venue is not None and not d4.venue and not d4
    assert d4.venue.reason is VenueReason.ALL_DOWN
    # The table keeps the set working after the caller's reference is closed.
    for i in range(4):
        vs.set_enabled(i, True)
    vs.close()
    assert r.route("/orders", key="acct-1", nonce=3, now_ns=0).venue.ok  # type: ignore[union-attr]
    with pytest.raises(InvalidArgumentError, match="closed"):
        vs.pick()
    e = build_error([Rule(1, "/orders", venue_set=0)], [vs])
    assert e.rule_index is None and "closed" in e.message


def test_latency_estimate_decays_while_idle() -> None:
    ms = 1_000_000
    s = VenueSet(plain(2), strategy="least_latency", latency_alpha=0.5, latency_decay_ns=1000 * ms)
    s.record_latency(0, 5000, 100 * ms)
    s.record_latency(1, 1000, 100 * ms)
    assert all(s.pick("", n, 100 * ms).index == 1 for n in range(50))
    t1 = 3100 * ms
    for t in range(200 * ms, t1 + 1, 100 * ms):
        s.record_latency(1, 1000, t)
    assert s.stats(0, t1).latency_ewma_ns == pytest.approx(5000 * math.exp(-3.0), rel=1e-9)
    assert s.pick("", 1, t1).index == 0  # the slow venue is tried again
    fixed = VenueSet(plain(1), latency_decay_ns=0)
    fixed.record_latency(0, 700, 0)
    assert fixed.stats(0, 10**15).latency_ewma_ns == 700.0
    with pytest.raises(InvalidArgumentError, match="latency_decay_ns"):
        VenueSet(plain(1), latency_decay_ns=2**62 + 1)


def test_route_with_breakers_and_least_latency() -> None:
    b = [make_breaker(), make_breaker()]
    vs = VenueSet([Venue(7, 1, b[0]), Venue(9, 1, b[1])], strategy=VenueStrategy.LEAST_LATENCY)
    r = Router(RouteTable([Rule(1, "/o/{id}", methods=["POST"], venue_set=0)], [vs]))
    vs.record_latency(0, 50, 0)
    vs.record_latency(1, 5000, 0)
    for n in range(50):
        d = r.route("/o/1", "POST", nonce=n, now_ns=0)
        assert d.venue is not None and d.venue.venue_id == 7 and d.venue.alternative == 1
        assert d.match.params == {"id": "1"}
    b[0].transition("open", 0)
    d = r.route("/o/1", "POST", nonce=1, now_ns=10)
    assert d.venue is not None and d.venue.venue_id == 9 and d.venue.eligible == 0b10
    assert r.route("/o/1", "GET").match.status is RouteStatus.METHOD_NOT_ALLOWED


# -- bad input ----------------------------------------------------------------


@pytest.fixture(scope="module")
def objects() -> Dict[str, Any]:
    t = RouteTable([rule(1, "/o/{id}")])
    return {"t": t, "r": Router(t), "vs": VenueSet(plain(2))}


def closed_breaker() -> Breaker:
    b = make_breaker()
    b.close()
    return b


BAD_INPUT: List[Tuple[str, Callable[[Dict[str, Any]], Any], Type[BaseException]]] = [
    ("rules is a str", lambda o: RouteTable("/a"), TypeError),  # type: ignore[arg-type]
    ("rules is None", lambda o: RouteTable(None), TypeError),  # type: ignore[arg-type]
    ("a rule is an int", lambda o: RouteTable([1]), TypeError),  # type: ignore[list-item]
    ("a bare Rule", lambda o: RouteTable(Rule(1, "/")), TypeError),  # type: ignore[arg-type]
    ("negative route_id", lambda o: RouteTable([Rule(-1, "/")]), InvalidRouteBuildError),
    ("route_id > u32", lambda o: RouteTable([Rule(2**32, "/")]), InvalidRouteBuildError),
    ("route_id is a str", lambda o: RouteTable([Rule("1", "/")]), TypeError),  # type: ignore
    ("route_id is a float", lambda o: RouteTable([Rule(1.0, "/")]), TypeError),  # type: ignore
    ("target is None", lambda o: RouteTable([Rule(1, "/", target=None)]), TypeError),  # type: ignore
    ("path is None", lambda o: RouteTable([Rule(1, None)]), TypeError),  # type: ignore[arg-type]
    ("path is bytes", lambda o: RouteTable([Rule(1, b"/")]), TypeError),  # type: ignore[arg-type]
    ("methods is a str", lambda o: RouteTable([Rule(1, "/", methods="GET")]), TypeError),
    ("methods is None", lambda o: RouteTable([Rule(1, "/", methods=None)]), TypeError),  # type: ignore
    ("a method is an int", lambda o: RouteTable([Rule(1, "/", methods=[1])]), TypeError),  # type: ignore
    ("a method is bytes", lambda o: RouteTable([Rule(1, "/", methods=[b"GET"])]), TypeError),  # type: ignore
    ("host is None", lambda o: RouteTable([Rule(1, "/", host=None)]), TypeError),  # type: ignore
    ("host has NUL", lambda o: RouteTable([Rule(1, "/", host="a\0b")]), InvalidRouteBuildError),
    ("prefix is a str", lambda o: RouteTable([Rule(1, "/", prefix="yes")]), TypeError),  # type: ignore
    ("prefix is 2", lambda o: RouteTable([Rule(1, "/", prefix=2)]), TypeError),  # type: ignore
    ("priority too big", lambda o: RouteTable([Rule(1, "/", priority=2**31)]), InvalidRouteBuildError),
    ("venue_set negative", lambda o: RouteTable([Rule(1, "/", venue_set=-1)]), InvalidRouteBuildError),
    ("venue_set is TG_NO_VENUE_SET", lambda o: RouteTable([Rule(1, "/", venue_set=2**32 - 1)]),
     InvalidRouteBuildError),
    ("venue_set is a str", lambda o: RouteTable([Rule(1, "/", venue_set="0")]), TypeError),  # type: ignore
    ("headers is a dict", lambda o: RouteTable([Rule(1, "/", headers={"a": "b"})]), TypeError),  # type: ignore
    ("a header is a str", lambda o: RouteTable([Rule(1, "/", headers=["x"])]), TypeError),  # type: ignore
    ("unknown header op", lambda o: RouteTable([Rule(1, "/", headers=[("x", "v", "sometimes")])]),  # type: ignore
     InvalidRouteBuildError),
    ("header op None", lambda o: RouteTable([Rule(1, "/", headers=[HeaderPredicate("x", op=None)])]),  # type: ignore
     TypeError),
    ("header op > i32", lambda o: RouteTable([Rule(1, "/", headers=[HeaderPredicate("x", op=2**40)])]),
     InvalidRouteBuildError),
    ("header invert 2", lambda o: RouteTable([Rule(1, "/", headers=[HeaderPredicate("x", invert=2)])]),  # type: ignore
     TypeError),
    ("header name None", lambda o: RouteTable([Rule(1, "/", headers=[HeaderPredicate(None)])]),  # type: ignore
     TypeError),
    ("header value NUL", lambda o: RouteTable([Rule(1, "/", headers=[HeaderPredicate("x", "a\0", "exact")])]),
     InvalidRouteBuildError),
    ("venue_sets has a non-set", lambda o: RouteTable([], [object()]), TypeError),  # type: ignore
    ("venue_sets is a VenueSet", lambda o: RouteTable([], o["vs"]), TypeError),
    ("match path None", lambda o: o["t"].match(None), TypeError),
    ("match path int", lambda o: o["t"].match(5), TypeError),
    ("match method None", lambda o: o["t"].match("/", None), TypeError),
    ("match method int", lambda o: o["t"].match("/", 5), TypeError),
    ("match host int", lambda o: o["t"].match("/", "GET", 5), TypeError),
    ("match lone surrogate", lambda o: o["t"].match("/\ud800"), InvalidArgumentError),
    ("headers is a str", lambda o: o["t"].match("/", headers="x: y"), TypeError),
    ("headers is an int", lambda o: o["t"].match("/", headers=5), TypeError),
    ("header is a 1-tuple", lambda o: o["t"].match("/", headers=[("a",)]), TypeError),
    ("header is a str", lambda o: o["t"].match("/", headers=["ab"]), TypeError),
    ("header value int", lambda o: o["t"].match("/", headers=[("a", 1)]), TypeError),
    ("129 headers", lambda o: o["t"].match("/", headers=[("h", "v")] * 129), InvalidArgumentError),
    ("match_many a str", lambda o: o["t"].match_many("/o/1"), TypeError),
    ("match_many None", lambda o: o["t"].match_many(None), TypeError),
    ("match_many an int item", lambda o: o["t"].match_many([5]), TypeError),
    ("match_many a 5-tuple", lambda o: o["t"].match_many([("/", "GET", "", None, 1)]), TypeError),
    ("match_many a Request", lambda o: o["t"].match_many(Request("/")), TypeError),
    ("match_many 129 headers", lambda o: o["r"].match_many([Request("/", headers=[("h", "")] * 129)]),
     InvalidArgumentError),
    ("param_name negative", lambda o: o["t"].param_name(-1, 0), InvalidArgumentError),
    ("param_name str", lambda o: o["t"].param_name("0", 0), TypeError),
    ("param_name out of range", lambda o: o["t"].param_name(0, 99), InvalidArgumentError),
    ("venues None", lambda o: VenueSet(None), TypeError),  # type: ignore[arg-type]
    ("venues a Venue", lambda o: VenueSet(Venue(1)), TypeError),  # type: ignore[arg-type]
    ("venue is an int", lambda o: VenueSet([1]), TypeError),  # type: ignore[list-item]
    ("venue_id negative", lambda o: VenueSet([Venue(-1)]), InvalidArgumentError),
    ("weight > u32", lambda o: VenueSet([Venue(1, 2**32)]), InvalidArgumentError),
    ("weight None", lambda o: VenueSet([Venue(1, None)]), TypeError),  # type: ignore[arg-type]
    ("breaker is a str", lambda o: VenueSet([Venue(1, breaker="b")]), TypeError),  # type: ignore
    ("breaker is closed", lambda o: VenueSet([Venue(1, breaker=closed_breaker())]),
     InvalidArgumentError),
    ("strategy unknown", lambda o: VenueSet(plain(1), strategy="fastest"), InvalidArgumentError),
    ("strategy None", lambda o: VenueSet(plain(1), strategy=None), TypeError),  # type: ignore
    ("strategy negative", lambda o: VenueSet(plain(1), strategy=-1), InvalidArgumentError),
    ("sticky None", lambda o: VenueSet(plain(1), sticky=None), TypeError),  # type: ignore
    ("seed negative", lambda o: VenueSet(plain(1), seed=-1), InvalidArgumentError),
    ("seed > u64", lambda o: VenueSet(plain(1), seed=2**64), InvalidArgumentError),
    ("alpha a str", lambda o: VenueSet(plain(1), latency_alpha="0.2"), TypeError),  # type: ignore
    ("alpha NaN", lambda o: VenueSet(plain(1), latency_alpha=math.nan), InvalidArgumentError),
    ("pick key int", lambda o: o["vs"].pick(5), TypeError),
    ("pick key None", lambda o: o["vs"].pick(None), TypeError),
    ("pick nonce negative", lambda o: o["vs"].pick(b"", -1), InvalidArgumentError),
    ("pick nonce > u64", lambda o: o["vs"].pick(b"", 2**64), InvalidArgumentError),
    ("pick nonce float", lambda o: o["vs"].pick(b"", 1.5), TypeError),
    ("pick now negative", lambda o: o["vs"].pick(b"", 1, -1), InvalidArgumentError),
    ("choose nonce None", lambda o: o["vs"].choose(b"", None, 1), TypeError),
    ("choose mask negative", lambda o: o["vs"].choose(b"", 1, -1), InvalidArgumentError),
    ("choose mask > u64", lambda o: o["vs"].choose(b"", 1, 2**64), InvalidArgumentError),
    ("record_latency index negative", lambda o: o["vs"].record_latency(-1, 1), InvalidArgumentError),
    ("record_latency index too big", lambda o: o["vs"].record_latency(2, 1), InvalidArgumentError),
    ("record_latency negative ns", lambda o: o["vs"].record_latency(0, -1), InvalidArgumentError),
    ("record_latency None", lambda o: o["vs"].record_latency(0, None), TypeError),
    ("set_enabled a str", lambda o: o["vs"].set_enabled(0, "yes"), TypeError),
    ("set_enabled 2", lambda o: o["vs"].set_enabled(0, 2), TypeError),
    ("set_enabled index > u32", lambda o: o["vs"].set_enabled(2**32, True), InvalidArgumentError),
    ("stats out of range", lambda o: o["vs"].stats(64), InvalidArgumentError),
    ("stats now negative", lambda o: o["vs"].stats(0, -5), InvalidArgumentError),
    ("Router of a str", lambda o: Router("t"), TypeError),  # type: ignore[arg-type]
    ("publish None", lambda o: o["r"].publish(None), TypeError),
    ("publish a list", lambda o: o["r"].publish([]), TypeError),
    ("route key int", lambda o: o["r"].route("/", key=3), TypeError),
    ("route nonce negative", lambda o: o["r"].route("/", nonce=-1), InvalidArgumentError),
    ("route now > u64", lambda o: o["r"].route("/", now_ns=2**64), InvalidArgumentError),
    ("route path None", lambda o: o["r"].route(None), TypeError),
    ("normalize None", lambda o: normalize_path(None), TypeError),  # type: ignore[arg-type]
    ("normalize int", lambda o: normalize_path(5), TypeError),  # type: ignore[arg-type]
    ("normalize empty", lambda o: normalize_path(""), PathRefusedError),
]


@pytest.mark.parametrize("what,call,exc", BAD_INPUT, ids=[c[0] for c in BAD_INPUT])
def test_bad_input_raises_a_clear_exception(
    objects: Dict[str, Any], what: str, call: Callable[[Dict[str, Any]], Any],
    exc: Type[BaseException]
) -> None:
    with pytest.raises(exc) as info:
        call(objects)
    assert str(info.value)
    if isinstance(info.value, TollgateError):
        assert info.value.code in (lib.TG_EINVAL, lib.TG_ERANGE)
    if isinstance(info.value, RouteBuildError):
        assert info.value.rule_index == 0
    # The objects are still usable after the error.
    assert objects["t"].match("/o/1").params == {"id": "1"}
    assert objects["vs"].pick(b"k", 1, 0).ok


def test_closed_objects_raise_instead_of_crashing() -> None:
    t = RouteTable([rule(1, "/o")])
    vs = VenueSet(plain(2))
    r = Router(t)
    for obj in (t, vs, r):
        obj.close()
        obj.close()  # idempotent
        assert obj.closed and "closed" in repr(obj)
    for call in (lambda: t.match("/o"), lambda: t.match_many(["/o"]), lambda: len(t),
                 lambda: t.param_name(0, 0), lambda: vs.pick(), lambda: vs.choose(b"", 1, 1),
                 lambda: vs.record_latency(0, 1), lambda: vs.set_enabled(0, True),
                 lambda: vs.stats(0), lambda: len(vs), lambda: r.match("/o"),
                 lambda: r.match_many(["/o"]), lambda: r.route("/o"), lambda: r.version,
                 lambda: r.current()):
        with pytest.raises(InvalidArgumentError, match="closed"):
            call()


def test_enumerations_mirror_the_header() -> None:
    assert [int(s) for s in RouteStatus] == list(range(9))
    assert RouteStatus.PATH_TOO_DEEP == lib.TG_ROUTE_PATH_TOO_DEEP
    assert (HeaderOp.PRESENT, HeaderOp.EXACT, HeaderOp.PREFIX) == (0, 1, 2)
    assert (VenueReason.OK, VenueReason.ALL_OPEN, VenueReason.ALL_DOWN, VenueReason.NO_SET) == (0, 1, 2, 3)
    assert lib.TG_NO_VENUE_SET == 0xFFFFFFFF
    assert lib.TG_PATH_EXACT == 0 and lib.TG_PATH_PREFIX == 1
    assert tollgate.__version__ == "0.2.0"
    assert tollgate.HEADER_VERSION_NUMBER == 200
    m = RouteTable([]).match("/")
    assert repr(m) == "RouteMatch(status=NO_ROUTE)" and m.status_name == "no_route"
    with pytest.raises(TypeError):
        RouteMatch()


def test_route_tables_and_sets_are_released() -> None:
    vs = VenueSet(plain(2))
    t = RouteTable([Rule(1, "/o", venue_set=0)], [vs])
    r = Router(t)
    vs_ref, t_ref, r_ref = weakref.ref(vs), weakref.ref(t), weakref.ref(r)
    del vs, t
    gc.collect()
    assert t_ref() is None  # the router holds its own reference to the table,
    assert vs_ref() is not None  # and, through it, to the venue set objects
    d = r.route("/o", nonce=1, now_ns=0)
    assert d.venue is not None and d.venue.ok
    del r, d
    gc.collect()
    assert vs_ref() is None and r_ref() is None


def test_threads_share_one_venue_set() -> None:
    s = VenueSet(plain(4), strategy="least_latency")
    errors: List[str] = []

    def work(i: int) -> None:
        for n in range(2000):
            s.record_latency(i, 100 * (i + 1))
            p = s.pick(b"", n + 10000 * i, 0)
            if not p.ok or p.index is None or not 0 <= p.index < 4:
                errors.append(repr(p))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    assert [s.stats(i, 0).latency_samples for i in range(4)] == [2000] * 4
    assert len({s.pick().nonce for _ in range(100)}) == 100
