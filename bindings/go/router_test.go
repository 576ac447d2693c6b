package tollgate

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The semantic cases of tests/unit/router_test.cpp and venue_test.cpp,
// through the binding, and the binding's own contract (errors, lifetime,
// batches).

const ms uint64 = 1_000_000

func rule(id uint32, path string) Rule {
	return Rule{RouteID: id, Target: id * 10, Path: path, VenueSet: NoVenueSet}
}

func prefixRule(id uint32, path string) Rule {
	r := rule(id, path)
	r.Prefix = true
	return r
}

func newTable(t testing.TB, rules []Rule, sets ...*VenueSet) *RouteTable {
	t.Helper()
	rt, err := NewRouteTable(rules, sets)
	if err != nil {
		t.Fatalf("NewRouteTable: %v", err)
	}
	t.Cleanup(func() { rt.Close() })
	return rt
}

func newVenueSet(t testing.TB, o VenueSetOptions) *VenueSet {
	t.Helper()
	s, err := NewVenueSet(o)
	if err != nil {
		t.Fatalf("NewVenueSet: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func plainVenues(n int) []Venue {
	v := make([]Venue, n)
	for i := range v {
		v[i] = Venue{ID: uint32(100 + i), Weight: 1}
	}
	return v
}

func match(t testing.TB, rt *RouteTable, req Request) Match {
	t.Helper()
	m, err := rt.Match(req)
	if err != nil {
		t.Fatalf("Match(%+v): %v", req, err)
	}
	return m
}

// routed returns the route id of a match, or -1 - status, as the C++ tests do.
func routed(t testing.TB, rt *RouteTable, path string, args ...string) int64 {
	t.Helper()
	req := Request{Method: "GET", Path: path}
	if len(args) > 0 {
		req.Method = args[0]
	}
	if len(args) > 1 {
		req.Host = args[1]
	}
	for i := 2; i+1 < len(args); i += 2 {
		req.Headers = append(req.Headers, Header{args[i], args[i+1]})
	}
	m := match(t, rt, req)
	if m.Status == RouteMatched {
		return int64(m.RouteID)
	}
	return -1 - int64(m.Status)
}

func notRouted(s RouteStatus) int64 { return -1 - int64(s) }

func pick(t testing.TB, s *VenueSet, key string, nonce, now uint64) VenuePick {
	t.Helper()
	var k []byte
	if key != "" {
		k = []byte(key)
	}
	p, err := s.Pick(k, nonce, now)
	if err != nil {
		t.Fatalf("Pick(%q, %d, %d): %v", key, nonce, now, err)
	}
	return p
}

func choose(t testing.TB, s *VenueSet, key string, nonce, eligible uint64) VenuePick {
	t.Helper()
	p, err := s.Choose([]byte(key), nonce, eligible)
	if err != nil {
		t.Fatalf("Choose: %v", err)
	}
	return p
}

func vstats(t testing.TB, s *VenueSet, i int, now uint64) VenueStats {
	t.Helper()
	st, err := s.Stats(i, now)
	if err != nil {
		t.Fatalf("Stats(%d): %v", i, err)
	}
	return st
}

// buildError fails unless NewRouteTable refuses rules with a *BuildError,
// and returns it.
func buildError(t testing.TB, rules []Rule, sets ...*VenueSet) *BuildError {
	t.Helper()
	rt, err := NewRouteTable(rules, sets)
	if err == nil {
		rt.Close()
		t.Fatalf("NewRouteTable accepted %+v", rules)
	}
	var be *BuildError
	if !errors.As(err, &be) {
		t.Fatalf("error %T %v is not a *BuildError", err, err)
	}
	var te *Error
	if !errors.As(err, &te) || te.Message == "" || te != be.Err {
		t.Fatalf("error %v does not wrap an *Error with a message", err)
	}
	return be
}

// ---- route tables -----------------------------------------------------------

func TestRoutePathPrecedence(t *testing.T) {
	rt := newTable(t, []Rule{prefixRule(5, "/"), prefixRule(4, "/orders"), rule(3, "/orders/{*rest}"),
		rule(2, "/orders/{id}"), rule(1, "/orders/new")})
	cases := map[string]int64{
		"/orders/new": 1, "/orders/42": 2, "/orders/42/fills": 3, "/orders": 4,
		"/ordersx": 5, "/x/y": 5, "/": 5,
	}
	for p, want := range cases {
		if got := routed(t, rt, p); got != want {
			t.Errorf("%s: %d, want %d", p, got, want)
		}
	}
	m := match(t, rt, Request{Path: "/orders/42"})
	if m.RouteID != 2 || m.Target != 20 || m.RuleIndex != 3 || m.VenueSet != NoVenueSet || m.Status.String() != "matched" {
		t.Fatalf("match %+v", m)
	}
}

func TestRouteBacktracking(t *testing.T) {
	rt := newTable(t, []Rule{rule(1, "/a/b/c"), rule(2, "/a/{x}/d"), rule(3, "/a/{x}/{y}/e")})
	cases := map[string]int64{
		"/a/b/c": 1, "/a/b/d": 2, "/a/b/c/e": 3,
		"/a/b": notRouted(RouteNoRoute), "/a/b/c/d/e": notRouted(RouteNoRoute),
	}
	for p, want := range cases {
		if got := routed(t, rt, p); got != want {
			t.Errorf("%s: %d, want %d", p, got, want)
		}
	}
}

func TestRouteExactBeatsPrefix(t *testing.T) {
	rt := newTable(t, []Rule{prefixRule(1, "/api"), rule(2, "/api"), prefixRule(3, "/api/admin")})
	cases := map[string]int64{"/api": 2, "/api/": 2, "/api/x": 1, "/api/admin": 3, "/api/admin/users/7": 3}
	for p, want := range cases {
		if got := routed(t, rt, p); got != want {
			t.Errorf("%s: %d, want %d", p, got, want)
		}
	}
}

func TestRouteRestParam(t *testing.T) {
	rt := newTable(t, []Rule{rule(1, "/files/{*path}")})
	if got := routed(t, rt, "/files"); got != notRouted(RouteNoRoute) {
		t.Errorf("/files: %d", got)
	}
	p := "/files/a/b%20c/d.txt"
	m := match(t, rt, Request{Path: p})
	if m.Status != RouteMatched || len(m.Params) != 1 || m.Param(p, 0) != "a/b%20c/d.txt" {
		t.Fatalf("match %+v, param %q", m, m.Param(p, 0))
	}
	if name, err := rt.ParamName(m.RuleIndex, 0); err != nil || name != "path" {
		t.Fatalf("ParamName: %q %v", name, err)
	}
}

func TestRouteParamsAreRawOffsets(t *testing.T) {
	rt := newTable(t, []Rule{rule(1, "/accounts/{account}/orders/{order}")})
	p := "//accounts/AC%2d1/./orders/o-9?verbose=1"
	m := match(t, rt, Request{Path: p})
	if m.Status != RouteMatched || len(m.Params) != 2 {
		t.Fatalf("match %+v", m)
	}
	if m.Param(p, 0) != "AC%2d1" || m.Param(p, 1) != "o-9" {
		t.Fatalf("params %q %q", m.Param(p, 0), m.Param(p, 1))
	}
	if m.Params[1].Offset != strings.Index(p, "o-9") || m.Params[1].Length != 3 {
		t.Fatalf("param 1 %+v", m.Params[1])
	}
	// Out of range, or a path that is not the one matched: "".
	for _, i := range []int{-1, 2, 100} {
		if s := m.Param(p, i); s != "" {
			t.Errorf("Param(%d) = %q", i, s)
		}
	}
	if s := m.Param("/short", 1); s != "" {
		t.Errorf("Param on a shorter path = %q", s)
	}
	for i, want := range []string{"account", "order"} {
		if name, err := rt.ParamName(0, i); err != nil || name != want {
			t.Errorf("ParamName(0, %d) = %q, %v", i, name, err)
		}
	}
	names, err := rt.ParamNames(0)
	if err != nil || strings.Join(names, ",") != "account,order" {
		t.Errorf("ParamNames(0) = %v, %v", names, err)
	}
	for _, c := range [][2]int{{0, 2}, {7, 0}, {-1, 0}, {0, -1}, {0, 16}, {math.MaxInt, 0}, {1 << 40, 0}} {
		_, err := rt.ParamName(c[0], c[1])
		wantStatus(t, err, ErrRange, fmt.Sprintf("ParamName(%d, %d)", c[0], c[1]))
	}
	for _, i := range []int{-1, 1, 1 << 40} {
		_, err := rt.ParamNames(i)
		wantStatus(t, err, ErrRange, fmt.Sprintf("ParamNames(%d)", i))
	}
	// A rule without parameters has no names.
	rt2 := newTable(t, []Rule{rule(1, "/x")})
	if names, err := rt2.ParamNames(0); err != nil || len(names) != 0 {
		t.Errorf("ParamNames of a static rule: %v %v", names, err)
	}
}

func TestRouteHosts(t *testing.T) {
	h := func(id uint32, host, path string) Rule {
		r := rule(id, path)
		r.Host = host
		return r
	}
	rt := newTable(t, []Rule{h(1, "", "/q"), h(2, "*.example.com", "/q"), h(3, "*.eu.example.com", "/q"),
		h(4, "fix.eu.example.com", "/q"), h(5, "fix.eu.example.com", "/only"), h(6, "", "/{x}")})
	cases := []struct {
		path, host string
		want       int64
	}{
		{"/q", "fix.eu.example.com", 4},
		{"/q", "FIX.EU.Example.COM.", 4},
		{"/q", "fix.eu.example.com:8443", 4},
		{"/q", "a.eu.example.com", 3},
		{"/q", "a.b.eu.example.com", 3},
		{"/q", "us.example.com", 2},
		{"/q", "example.com", 1},
		{"/q", "", 1},
		{"/q", "other.org", 1},
		{"/zz", "fix.eu.example.com", 6},
		{"/only", "fix.eu.example.com", 5},
		{"/only", "x.eu.example.com", 6},
		{"/q", "[::1]:8080", 1},
		{"/q", "bad host", notRouted(RouteBadHost)},
		{"/q", "a/b", notRouted(RouteBadHost)},
		{"/q", strings.Repeat("a", 300), notRouted(RouteBadHost)},
	}
	for _, c := range cases {
		if got := routed(t, rt, c.path, "GET", c.host); got != c.want {
			t.Errorf("%s host %q: %d, want %d", c.path, c.host, got, c.want)
		}
	}
}

func TestRouteMethods(t *testing.T) {
	m := func(id uint32, methods []string, path string) Rule {
		r := rule(id, path)
		r.Methods = methods
		return r
	}
	rt := newTable(t, []Rule{m(1, nil, "/o"), m(2, []string{"GET", "POST"}, "/o"), m(3, []string{"POST"}, "/o"),
		m(4, []string{"DELETE"}, "/o/{id}")})
	cases := []struct {
		path, method string
		want         int64
	}{
		{"/o", "POST", 3}, {"/o", "GET", 2}, {"/o", "PUT", 1}, {"/o", "get", 1},
		{"/o/7", "DELETE", 4}, {"/o/7", "GET", notRouted(RouteMethodNotAllowed)},
		{"/o/7", "", notRouted(RouteMethodNotAllowed)},
		{"/p", "GET", notRouted(RouteNoRoute)},
	}
	for _, c := range cases {
		if got := routed(t, rt, c.path, c.method); got != c.want {
			t.Errorf("%s %s: %d, want %d", c.method, c.path, got, c.want)
		}
	}
	mm := match(t, rt, Request{Method: "GET", Path: "/o/7"})
	if mm.Status != RouteMethodNotAllowed || mm.RuleIndex != -1 || mm.VenueSet != NoVenueSet || mm.RouteID != 0 || len(mm.Params) != 0 {
		t.Fatalf("405 match %+v", mm)
	}
}

func TestRouteHeaderPredicates(t *testing.T) {
	h := func(id uint32, preds ...HeaderPredicate) Rule {
		r := rule(id, "/o")
		r.Headers = preds
		return r
	}
	rt := newTable(t, []Rule{
		h(1),
		h(2, HeaderPredicate{Name: "X-Venue", Op: HeaderPresent}),
		h(3, HeaderPredicate{Name: "x-venue", Value: "XLON", Op: HeaderExact},
			HeaderPredicate{Name: "x-desk", Value: "eq-", Op: HeaderPrefix}),
		h(4, HeaderPredicate{Name: "x-test", Value: "1", Op: HeaderExact, Invert: true},
			HeaderPredicate{Name: "x-venue", Op: HeaderPresent},
			HeaderPredicate{Name: "x-canary", Op: HeaderPresent}),
	})
	cases := []struct {
		headers []string
		want    int64
	}{
		{nil, 1},
		{[]string{"X-VENUE", "XPAR"}, 2},
		{[]string{"x-venue", "XLON", "X-Desk", "eq-cash"}, 3},
		{[]string{"x-venue", "XLON", "X-Desk", "fx"}, 2},
		{[]string{"x-venue", "XLON", "x-canary", ""}, 4},
		{[]string{"x-venue", "XLON", "x-canary", "", "x-test", "1"}, 2},
		// A decoy duplicate cannot flip an inverted predicate.
		{[]string{"x-venue", "XLON", "x-canary", "", "x-test", "0", "x-test", "1"}, 2},
		{[]string{"x-venue", "XPAR", "x-venue", "XLON", "x-desk", "eq-1"}, 3},
	}
	for _, c := range cases {
		args := append([]string{"GET", ""}, c.headers...)
		if got := routed(t, rt, "/o", args...); got != c.want {
			t.Errorf("headers %q: %d, want %d", c.headers, got, c.want)
		}
	}
	for _, o := range []HeaderOp{HeaderPresent, HeaderExact, HeaderPrefix, 7} {
		if o.String() == "" {
			t.Errorf("HeaderOp(%d) has no name", o)
		}
	}
}

func TestRoutePriority(t *testing.T) {
	p := func(id uint32, prio int32, hdr string) Rule {
		r := rule(id, "/o/{id}")
		r.Priority = prio
		if hdr != "" {
			r.Headers = []HeaderPredicate{{Name: hdr}}
		}
		return r
	}
	rt := newTable(t, []Rule{p(1, 0, ""), p(2, 5, ""), p(3, 0, "a"), p(4, 0, "b"), p(5, 9, "c")})
	if got := routed(t, rt, "/o/1"); got != 2 {
		t.Errorf("priority: %d", got)
	}
	if got := routed(t, rt, "/o/1", "GET", "", "a", "", "b", ""); got != 3 {
		t.Errorf("declaration order: %d", got)
	}
	if got := routed(t, rt, "/o/1", "GET", "", "b", "", "c", ""); got != 5 {
		t.Errorf("higher priority: %d", got)
	}
}

func TestRouteNormalisation(t *testing.T) {
	rt := newTable(t, []Rule{rule(1, "/admin/keys"), rule(2, "/{x}/{y}"), prefixRule(3, "/")})
	same := []string{"/admin/keys", "//admin///keys/", "/admin/./keys", "/admin/x/../keys", "/%61dmin/keys",
		"/%61%64%6D%69%6e/keys", "/admin/keys?x=/..", "/admin/keys#frag", "/../admin/keys",
		"/admin/%2e/keys", "/admin/x/%2e%2e/keys", "/a/../../admin/keys"}
	for _, p := range same {
		if got := routed(t, rt, p); got != 1 {
			t.Errorf("%q: %d, want 1", p, got)
		}
		if n, err := NormalizePath(p); err != nil || n != "/admin/keys" {
			t.Errorf("NormalizePath(%q) = %q, %v", p, n, err)
		}
	}
	refused := []struct {
		path string
		want RouteStatus
	}{
		{"/admin%2Fkeys", RouteAmbiguousSeparator},
		{"/admin%2fkeys", RouteAmbiguousSeparator},
		{"/admin%5Ckeys", RouteAmbiguousSeparator},
		{"/admin\\keys", RouteAmbiguousSeparator},
		{"/admin/%zzkeys", RouteBadEncoding},
		{"/admin/keys%4", RouteBadEncoding},
		{"/admin/keys%", RouteBadEncoding},
		{"/admin/k%00eys", RouteBadEncoding},
		{"/admin/k\x01eys", RouteBadEncoding},
		{"/admin/k\x00eys", RouteBadEncoding}, // a raw NUL crosses cgo as a byte
		{"/admin/k%7Feys", RouteBadEncoding},
		{"admin/keys", RoutePathNotAbsolute},
		{"", RoutePathNotAbsolute},
		{"?/admin", RoutePathNotAbsolute},
	}
	for _, c := range refused {
		m := match(t, rt, Request{Method: "GET", Path: c.path})
		if m.Status != c.want {
			t.Errorf("%q: %v, want %v", c.path, m.Status, c.want)
		}
		_, err := NormalizePath(c.path)
		var pe *PathError
		if !errors.As(err, &pe) || pe.Reason != c.want {
			t.Errorf("NormalizePath(%q): %v, want a PathError %v", c.path, err, c.want)
		}
		wantStatus(t, err, ErrInvalid, "NormalizePath("+strconv.Quote(c.path)+")")
	}
	long := "/" + strings.Repeat("a", 8191)
	if got := routed(t, rt, long); got != 3 {
		t.Errorf("8192-byte path: %d", got)
	}
	if m := match(t, rt, Request{Path: long + "a"}); m.Status != RoutePathTooLong {
		t.Errorf("8193-byte path: %v", m.Status)
	}
	if _, err := NormalizePath(long + "a"); err == nil || err.(*PathError).Reason != RoutePathTooLong {
		t.Errorf("NormalizePath of 8193 bytes: %v", err)
	}
	deep := strings.Repeat("/s", 128)
	if got := routed(t, rt, deep); got != 3 {
		t.Errorf("128 segments: %d", got)
	}
	if m := match(t, rt, Request{Path: deep + "/s"}); m.Status != RoutePathTooDeep {
		t.Errorf("129 segments: %v", m.Status)
	}
	if got := routed(t, rt, deep+"/.."); got != 3 {
		t.Errorf("129 segments with ..: %d", got)
	}
}

func TestNormalizePath(t *testing.T) {
	cases := map[string]string{
		"/": "/", "//": "/", "/a/./b/../c//": "/a/c", "/%7Euser/%41%2d": "/~user/A-",
		"/caf%c3%a9": "/caf%C3%A9", "/a b/%3F/%25": "/a%20b/%3F/%25", "/x?q=1": "/x", "/..": "/",
	}
	for in, want := range cases {
		if got, err := NormalizePath(in); err != nil || got != want {
			t.Errorf("NormalizePath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	once, _ := NormalizePath("/a/%2e%2e/b/%7e/c%20d")
	if twice, _ := NormalizePath(once); twice != once {
		t.Errorf("not idempotent: %q -> %q", once, twice)
	}
	// Longer than the first buffer: the buffer grows (every byte escaped
	// triples, so the normal form can be three times the path).
	big := "/" + strings.Repeat("%20", 1500) + "/" + strings.Repeat("x", 3000)
	want := "/" + strings.Repeat("%20", 1500) + "/" + strings.Repeat("x", 3000)
	if got, err := NormalizePath(big); err != nil || got != want {
		t.Fatalf("long path: len %d, %v", len(got), err)
	}
	raw := "/" + strings.Repeat(" ", 8000)
	if got, err := NormalizePath(raw); err != nil || got != "/"+strings.Repeat("%20", 8000) {
		t.Fatalf("8000 spaces: len %d, %v", len(got), err)
	}
}

func TestRouteRuleLiteralsNormalised(t *testing.T) {
	rt := newTable(t, []Rule{rule(1, "/caf%C3%A9/%7euser")})
	for _, p := range []string{"/caf%c3%a9/~user", "/caf\xc3\xa9/%7Euser"} {
		if got := routed(t, rt, p); got != 1 {
			t.Errorf("%q: %d", p, got)
		}
	}
}

func TestRouteBuildErrors(t *testing.T) {
	cases := []struct {
		path, host string
		methods    []string
		why        string
	}{
		{"/a/{b", "", nil, "whole segment"},
		{"/a/b}", "", nil, "whole segment"},
		{"/a/x{y}", "", nil, "whole segment"},
		{"/a/{}", "", nil, "whole segment"},
		{"/a/{*}", "", nil, "1..64"},
		{"/a/{1x}", "", nil, "[A-Za-z_]"},
		{"/a/{x-y}", "", nil, "[A-Za-z_]"},
		{"/a/{{x}}", "", nil, "whole segment"},
		{"/a/{x}/{x}", "", nil, "appears twice"},
		{"/a/{*r}/b", "", nil, "last segment"},
		{"/a//b", "", nil, "empty segment"},
		{"/a/", "", nil, "empty segment"},
		{"a/b", "", nil, "start with '/'"},
		{"", "", nil, "start with '/'"},
		{"/a/./b", "", nil, "cannot be literal"},
		{"/a/../b", "", nil, "cannot be literal"},
		{"/a%2Fb", "", nil, "ambiguous_separator"},
		{"/a%zz", "", nil, "bad_encoding"},
		{"/a?b", "", nil, "cannot be literal"},
		{"/a", "foo*.com", nil, `leading "*."`},
		{"/a", "*", nil, `leading "*."`},
		{"/a", "*.", nil, "1..255"},
		{"/a", "x.com.", nil, "end in '.'"},
		{"/a", "x.com:443", nil, "port"},
		{"/a", "x y.com", nil, "no host name has"},
		{"/a", "", []string{""}, "token"},
		{"/a", "", []string{"GE T"}, "token"},
		{"/a", "", []string{"GET", "GET"}, "twice"},
		// What the binding refuses itself, as C strings cannot carry it or
		// the library's comma-separated methods would change it.
		{"/a\x00b", "", nil, "NUL"},
		{"/a", "x\x00.com", nil, "NUL"},
		{"/a", "", []string{"GET,POST"}, "token"},
		{"/a", "", []string{" GET"}, "token"},
		{"/a", "", []string{"GET\x00"}, "token"},
	}
	for _, c := range cases {
		r := rule(1, c.path)
		r.Host = c.host
		r.Methods = c.methods
		be := buildError(t, []Rule{rule(0, "/ok"), r})
		if be.RuleIndex != 1 || !strings.HasPrefix(be.Err.Message, "rule 1: ") || !strings.Contains(be.Err.Message, c.why) {
			t.Errorf("path %q host %q methods %q: %+v %v", c.path, c.host, c.methods, be.RuleIndex, be)
		}
		if !errors.Is(be, ErrInvalid) {
			t.Errorf("path %q: %v does not wrap ErrInvalid", c.path, be)
		}
	}
	one := func(r Rule, why string, status Status) {
		t.Helper()
		be := buildError(t, []Rule{r})
		if be.RuleIndex != 0 || !strings.Contains(be.Err.Message, why) || be.Err.Status != status {
			t.Errorf("%+v: %d %v, want %q", r, be.RuleIndex, be, why)
		}
	}
	one(rule(0, strings.Repeat("/s", 129)), "128", ErrInvalid)
	var params strings.Builder
	for i := 0; i < 17; i++ {
		fmt.Fprintf(&params, "/{p%d}", i)
	}
	one(rule(0, params.String()), "16 parameters", ErrInvalid)
	one(prefixRule(0, "/a/{*r}"), "prefix rule", ErrInvalid)
	r := rule(0, "/a")
	r.Headers = []HeaderPredicate{{Name: "x", Value: "v", Op: HeaderPresent}}
	one(r, "takes no value", ErrInvalid)
	r.Headers = []HeaderPredicate{{Name: "x:y"}}
	one(r, "header name", ErrInvalid)
	r.Headers = []HeaderPredicate{{Name: ""}}
	one(r, "header name", ErrInvalid)
	r.Headers = []HeaderPredicate{{Name: "x", Op: 9}}
	one(r, "PRESENT, EXACT or PREFIX", ErrInvalid)
	r.Headers = []HeaderPredicate{{Name: "x\x00"}}
	one(r, "NUL", ErrInvalid)
	r.Headers = []HeaderPredicate{{Name: "x", Value: "\x00", Op: HeaderExact}}
	one(r, "NUL", ErrInvalid)
	r.Headers = make([]HeaderPredicate, 17)
	for i := range r.Headers {
		r.Headers[i] = HeaderPredicate{Name: fmt.Sprintf("h%d", i)}
	}
	one(r, "16 header predicates", ErrRange)
	for _, vs := range []int{0, 1, -2, math.MaxUint32, math.MaxUint32 + 1, math.MinInt} {
		r := rule(0, "/a")
		r.VenueSet = vs
		one(r, "does not exist", ErrInvalid)
	}
	var many []Rule
	for i := 0; i < 33; i++ {
		r := rule(uint32(i), "/m"+strconv.Itoa(i))
		r.Methods = []string{"M" + strconv.Itoa(i)}
		many = append(many, r)
	}
	if be := buildError(t, many); be.RuleIndex != 32 || !strings.Contains(be.Err.Message, "32 distinct methods") {
		t.Errorf("33 methods: %d %v", be.RuleIndex, be)
	}
	// Not about one rule: RuleIndex -1.
	closed, err := NewVenueSet(VenueSetOptions{Venues: plainVenues(1)})
	if err != nil {
		t.Fatal(err)
	}
	closed.Close()
	for name, sets := range map[string][]*VenueSet{"nil set": {nil}, "closed set": {closed}} {
		be := buildError(t, []Rule{rule(0, "/a")}, sets...)
		if be.RuleIndex != -1 || !errors.Is(be, ErrInvalid) {
			t.Errorf("%s: %d %v", name, be.RuleIndex, be)
		}
	}
}

func TestRouteDuplicates(t *testing.T) {
	be := buildError(t, []Rule{rule(0, "/a/{x}"), rule(1, "/b"), rule(2, "/a/{y}")})
	if be.RuleIndex != 2 || !strings.Contains(be.Err.Message, "duplicates rule 0") {
		t.Errorf("%d %v", be.RuleIndex, be)
	}
	a := rule(0, "/o")
	a.Methods = []string{"GET", "POST"}
	a.Host = "X.com"
	a.Headers = []HeaderPredicate{{Name: "A", Value: "1", Op: HeaderExact}, {Name: "b", Op: HeaderPresent, Invert: true}}
	b := a
	b.Methods = []string{"POST", "GET"}
	b.Host = "x.com"
	b.Headers = []HeaderPredicate{{Name: "b", Op: HeaderPresent, Invert: true}, {Name: "a", Value: "1", Op: HeaderExact}}
	be = buildError(t, []Rule{a, b})
	if be.RuleIndex != 1 || !strings.Contains(be.Err.Message, "duplicates rule 0") {
		t.Errorf("%d %v", be.RuleIndex, be)
	}
	b.Priority = 1
	newTable(t, []Rule{a, b})
	c := a
	c.Prefix = true
	newTable(t, []Rule{a, c})
	d := a
	d.Headers = []HeaderPredicate{{Name: "A", Value: "2", Op: HeaderExact}, {Name: "b", Op: HeaderPresent, Invert: true}}
	newTable(t, []Rule{a, d})
}

func TestRouteEmptyAndLargeTables(t *testing.T) {
	for _, rules := range [][]Rule{nil, {}} {
		rt := newTable(t, rules)
		if got := routed(t, rt, "/"); got != notRouted(RouteNoRoute) {
			t.Errorf("empty table: %d", got)
		}
		if n, err := rt.Len(); n != 0 || err != nil {
			t.Errorf("Len %d %v", n, err)
		}
	}
	var rules []Rule
	for i := uint32(0); i < 500; i++ {
		rules = append(rules, rule(i, fmt.Sprintf("/svc%d/{id}", i)))
	}
	rt := newTable(t, rules)
	for i := uint32(0); i < 500; i += 37 {
		if got := routed(t, rt, fmt.Sprintf("/svc%d/x", i)); got != int64(i) {
			t.Errorf("svc%d: %d", i, got)
		}
	}
	if got := routed(t, rt, "/svc500/x"); got != notRouted(RouteNoRoute) {
		t.Errorf("svc500: %d", got)
	}
	if n, _ := rt.Len(); n != 500 {
		t.Errorf("Len %d", n)
	}
}

func TestRouteStatusNames(t *testing.T) {
	for s := RouteMatched; s <= RoutePathTooDeep; s++ {
		if want := strings.ReplaceAll(s.libName(), "_", "-"); s.String() != want {
			t.Errorf("RouteStatus(%d) = %q, library says %q", s, s.String(), s.libName())
		}
	}
	if RouteStatus(9).String() != "RouteStatus(9)" || RouteStatus(9).libName() != "unknown" {
		t.Error("unknown route status")
	}
	for _, r := range []VenueReason{VenueReasonNone, VenueAllOpen, VenueAllDown, VenueNoSet, 5} {
		if r.String() == "" {
			t.Errorf("VenueReason(%d) has no name", r)
		}
	}
	if VenueLeastLatency.String() != "least-latency" || VenueStrategy(3).String() != "VenueStrategy(3)" {
		t.Error("VenueStrategy names")
	}
}

// ---- batches --------------------------------------------------------------------

func batchTable(t testing.TB) *RouteTable {
	orders := rule(3, "/orders")
	orders.Methods = []string{"POST"}
	venue := rule(4, "/o")
	venue.Headers = []HeaderPredicate{{Name: "x-venue", Value: "XLON", Op: HeaderExact}}
	return newTable(t, []Rule{rule(1, "/static/path"), rule(2, "/accounts/{account}/orders/{order}"),
		orders, venue, rule(5, "/o"), rule(6, "/files/{*rest}")})
}

func batchRequests(n int) []Request {
	base := []Request{
		{Method: "GET", Path: "/static/path"},
		{Method: "GET", Path: "/accounts/AC1/orders/o-9?x=1"},
		{Method: "GET", Path: "/orders"},
		{Method: "POST", Path: "/orders", Host: "h.example.com:443"},
		{Method: "GET", Path: "/o", Headers: []Header{{"X-Venue", "XLON"}, {"x-other", strings.Repeat("v", 100)}}},
		{Method: "GET", Path: "/o", Headers: []Header{{"X-Venue", "XPAR"}}},
		{Method: "GET", Path: "/files/a/b/c"},
		{Method: "GET", Path: "/nothing"},
		{Method: "GET", Path: "/bad%2Fpath"},
		{Path: ""},
		{},
	}
	reqs := make([]Request, n)
	for i := range reqs {
		reqs[i] = base[i%len(base)]
	}
	return reqs
}

func sameMatch(a, b Match) bool {
	if a.Status != b.Status || a.RouteID != b.RouteID || a.Target != b.Target || a.VenueSet != b.VenueSet ||
		a.RuleIndex != b.RuleIndex || len(a.Params) != len(b.Params) {
		return false
	}
	for i := range a.Params {
		if a.Params[i] != b.Params[i] {
			return false
		}
	}
	return true
}

// MatchMany gives what Match gives, for small batches (C stack) and large
// ones (malloc'd arrays), on tables and routers.
func TestMatchManyEqualsMatch(t *testing.T) {
	rt := batchTable(t)
	r, err := NewRouter(rt)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, n := range []int{1, 2, 11, 16, 17, 64, 65, 1000} {
		reqs := batchRequests(n)
		out := make([]Match, n+3)
		for i := range out {
			out[i].RouteID = 999 // overwritten for i < n, kept beyond
		}
		if err := rt.MatchMany(reqs, out); err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		rout := make([]Match, n)
		if err := r.MatchMany(reqs, rout); err != nil {
			t.Fatalf("router n=%d: %v", n, err)
		}
		for i, q := range reqs {
			want := match(t, rt, q)
			rm, err := r.Match(q)
			if err != nil {
				t.Fatal(err)
			}
			if !sameMatch(out[i], want) || !sameMatch(rout[i], want) || !sameMatch(rm, want) {
				t.Fatalf("n=%d request %d %+v: batch %+v, router batch %+v, router %+v, single %+v", n, i, q, out[i], rout[i], rm, want)
			}
		}
		for i := n; i < len(out); i++ {
			if out[i].RouteID != 999 {
				t.Fatalf("out[%d] beyond the batch was written", i)
			}
		}
	}
	reqs := batchRequests(11)
	out := make([]Match, 11)
	if err := rt.MatchMany(reqs, out); err != nil {
		t.Fatal(err)
	}
	wantIDs := []uint32{1, 2, 0, 3, 4, 5, 6, 0, 0, 0, 0}
	wantStatus := []RouteStatus{RouteMatched, RouteMatched, RouteMethodNotAllowed, RouteMatched, RouteMatched,
		RouteMatched, RouteMatched, RouteNoRoute, RouteAmbiguousSeparator, RoutePathNotAbsolute, RoutePathNotAbsolute}
	for i := range out {
		if out[i].RouteID != wantIDs[i] || out[i].Status != wantStatus[i] {
			t.Errorf("request %d: %+v, want route %d %v", i, out[i], wantIDs[i], wantStatus[i])
		}
	}
	if out[1].Param(reqs[1].Path, 0) != "AC1" || out[1].Param(reqs[1].Path, 1) != "o-9" || out[6].Param(reqs[6].Path, 0) != "a/b/c" {
		t.Errorf("params %+v %+v", out[1], out[6])
	}
	// Params reuse their backing array across batches.
	p := &out[1].Params[0]
	if err := rt.MatchMany(reqs, out); err != nil {
		t.Fatal(err)
	}
	if &out[1].Params[0] != p {
		t.Error("MatchMany did not reuse Params")
	}
}

func TestMatchBadInput(t *testing.T) {
	rt := batchTable(t)
	r, err := NewRouter(rt)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	hs := func(n int) []Header {
		h := make([]Header, n)
		for i := range h {
			h[i] = Header{"h" + strconv.Itoa(i), "v"}
		}
		return h
	}
	ok := Request{Method: "GET", Path: "/o", Headers: hs(MaxRequestHeaders)}
	bad := Request{Method: "GET", Path: "/o", Headers: hs(MaxRequestHeaders + 1)}
	if m, err := rt.Match(ok); err != nil || m.RouteID != 5 {
		t.Errorf("128 headers: %+v %v", m, err)
	}
	if d, err := r.Route(ok, nil, 0, 0); err != nil || d.Match.RouteID != 5 {
		t.Errorf("Route with 128 headers: %+v %v", d, err)
	}
	_, err = rt.Match(bad)
	wantStatus(t, err, ErrInvalid, "Match with 129 headers")
	_, err = r.Match(bad)
	wantStatus(t, err, ErrInvalid, "Router.Match with 129 headers")
	_, err = r.Route(bad, nil, 0, 0)
	wantStatus(t, err, ErrInvalid, "Route with 129 headers")

	out := make([]Match, 3)
	for i := range out {
		out[i].RouteID = 77
	}
	err = rt.MatchMany([]Request{ok, bad, ok}, out)
	wantStatus(t, err, ErrInvalid, "MatchMany with 129 headers")
	if err != nil && !strings.Contains(err.Error(), "reqs[1]") {
		t.Errorf("MatchMany error does not name the request: %v", err)
	}
	wantStatus(t, r.MatchMany([]Request{bad}, out), ErrInvalid, "Router.MatchMany with 129 headers")
	wantStatus(t, rt.MatchMany(batchRequests(3), out[:2]), ErrInvalid, "MatchMany short out")
	wantStatus(t, r.MatchMany(batchRequests(3), nil), ErrInvalid, "Router.MatchMany nil out")
	for i := range out {
		if out[i].RouteID != 77 {
			t.Fatalf("a refused batch wrote out[%d]", i)
		}
	}
	// Empty batches, with or without out.
	for _, o := range [][]Match{nil, {}, out} {
		if err := rt.MatchMany(nil, o); err != nil {
			t.Errorf("empty batch: %v", err)
		}
		if err := r.MatchMany([]Request{}, o); err != nil {
			t.Errorf("empty router batch: %v", err)
		}
	}
	// A request of empty strings is a normal outcome.
	if m, err := rt.Match(Request{}); err != nil || m.Status != RoutePathNotAbsolute {
		t.Errorf("zero request: %+v %v", m, err)
	}
	// Empty header names and values are bytes like any other.
	if m, err := rt.Match(Request{Path: "/o", Headers: []Header{{}, {"", "x"}, {"x-venue", ""}}}); err != nil || m.RouteID != 5 {
		t.Errorf("empty headers: %+v %v", m, err)
	}
}

// ---- router ---------------------------------------------------------------------

func TestRouterPublishWhileMatching(t *testing.T) {
	a := newTable(t, []Rule{rule(1, "/o")})
	r, err := NewRouter(a)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	a.Close() // the router keeps its own reference
	var stop atomic.Bool
	var seen [3]atomic.Uint64
	var bad atomic.Uint64
	var started atomic.Int32
	var wg sync.WaitGroup
	for g := 0; g < 3; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			req := Request{Method: "GET", Path: "/o"}
			reqs := []Request{req, req, req}
			out := make([]Match, 3)
			started.Add(1)
			for !stop.Load() {
				var ms []Match
				if g == 0 {
					if err := r.MatchMany(reqs, out); err != nil {
						bad.Add(1)
						continue
					}
					// One batch, one table.
					if out[0].RouteID != out[1].RouteID || out[1].RouteID != out[2].RouteID {
						bad.Add(1)
					}
					ms = out
				} else {
					m, err := r.Match(req)
					if err != nil {
						bad.Add(1)
						continue
					}
					ms = []Match{m}
				}
				for _, m := range ms {
					if m.Status != RouteMatched || m.Target != m.RouteID*10 || m.RouteID > 2 {
						bad.Add(1)
					} else {
						seen[m.RouteID].Add(1)
					}
				}
			}
		}(g)
	}
	for started.Load() < 3 {
		runtime.Gosched()
	}
	// At least 300 publications, and on until the readers have seen both
	// tables (bounded in time).
	publishes := 0
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; i < 300 || ((seen[1].Load() == 0 || seen[2].Load() == 0) && time.Now().Before(deadline)); i++ {
		publishes++
		id := uint32(2)
		if i%2 == 1 {
			id = 1
		}
		next, err := NewRouteTable([]Rule{rule(id, "/o")}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Publish(next); err != nil {
			t.Fatal(err)
		}
		next.Close()
	}
	stop.Store(true)
	wg.Wait()
	if bad.Load() != 0 {
		t.Fatalf("%d torn or failed matches", bad.Load())
	}
	if seen[1].Load() == 0 || seen[2].Load() == 0 {
		t.Fatalf("the readers did not see both tables: %d, %d", seen[1].Load(), seen[2].Load())
	}
	if v, err := r.Version(); err != nil || v != uint64(publishes) {
		t.Fatalf("Version %d %v", v, err)
	}
	cur, err := r.Current()
	if err != nil {
		t.Fatal(err)
	}
	defer cur.Close()
	if n, _ := cur.Len(); n != 1 {
		t.Fatalf("current table has %d rules", n)
	}
	lastID := uint32(2)
	if publishes%2 == 0 {
		lastID = 1
	}
	if m := match(t, cur, Request{Path: "/o"}); m.RouteID != lastID {
		t.Fatalf("current table routes /o to %d, want %d", m.RouteID, lastID)
	}
	wantStatus(t, r.Publish(nil), ErrInvalid, "Publish(nil)")
	closed, _ := NewRouteTable(nil, nil)
	closed.Close()
	wantStatus(t, r.Publish(closed), ErrInvalid, "Publish(closed)")
	if v, _ := r.Version(); v != uint64(publishes) {
		t.Fatalf("a refused publish counted: %d", v)
	}
	t.Logf("seen: id1 %d, id2 %d", seen[1].Load(), seen[2].Load())
}

func TestRouterDefaultAndCurrent(t *testing.T) {
	r, err := NewRouter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if m, err := r.Match(Request{Path: "/"}); err != nil || m.Status != RouteNoRoute {
		t.Fatalf("empty router: %+v %v", m, err)
	}
	if v, _ := r.Version(); v != 0 {
		t.Fatalf("version %d", v)
	}
	cur, err := r.Current()
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := cur.Len(); n != 0 {
		t.Fatalf("empty router's table has %d rules", n)
	}
	cur.Close()
	// A table taken with Current outlives a publish that replaces it.
	t1 := newTable(t, []Rule{rule(1, "/a/{x}")})
	if err := r.Publish(t1); err != nil {
		t.Fatal(err)
	}
	cur, err = r.Current()
	if err != nil {
		t.Fatal(err)
	}
	defer cur.Close()
	if err := r.Publish(newTable(t, []Rule{rule(2, "/b")})); err != nil {
		t.Fatal(err)
	}
	if m := match(t, cur, Request{Path: "/a/1"}); m.RouteID != 1 {
		t.Fatalf("old table: %+v", m)
	}
	if name, err := cur.ParamName(0, 0); err != nil || name != "x" {
		t.Fatalf("old table's param name: %q %v", name, err)
	}
	closed, _ := NewRouteTable(nil, nil)
	closed.Close()
	if r2, err := NewRouter(closed); err == nil {
		r2.Close()
		t.Fatal("NewRouter accepted a closed table")
	} else {
		wantStatus(t, err, ErrInvalid, "NewRouter(closed)")
	}
}

// ---- venue sets -------------------------------------------------------------------

func TestVenueWeights(t *testing.T) {
	s := newVenueSet(t, VenueSetOptions{Venues: []Venue{{1, 1, nil}, {2, 2, nil}, {3, 5, nil}}})
	var counts [3]int
	const n = 80000
	for i := 0; i < n; i++ {
		p := pick(t, s, "", uint64(i), 0)
		if !p.OK || p.VenueID != uint32(p.Index+1) || p.Alternative != p.Index || p.Reason != VenueReasonNone {
			t.Fatalf("pick %+v", p)
		}
		counts[p.Index]++
	}
	for i, w := range []float64{1.0 / 8, 2.0 / 8, 5.0 / 8} {
		if got := float64(counts[i]) / n; math.Abs(got-w) > 0.01 {
			t.Errorf("venue %d: share %.4f, want %.4f", i, got, w)
		}
	}
}

func TestVenuePicksArePure(t *testing.T) {
	a := newVenueSet(t, VenueSetOptions{Seed: 42, Venues: plainVenues(8)})
	b := newVenueSet(t, VenueSetOptions{Seed: 42, Venues: plainVenues(8)})
	c := newVenueSet(t, VenueSetOptions{Seed: 43, Venues: plainVenues(8)})
	differ := 0
	for nonce := uint64(0); nonce < 1000; nonce++ {
		pa := pick(t, a, "", nonce, 0)
		if pb := pick(t, b, "", nonce, 0); pb.Index != pa.Index {
			t.Fatalf("nonce %d: %d vs %d", nonce, pa.Index, pb.Index)
		}
		if pa.Eligible != 0xff {
			t.Fatalf("eligible %#x", pa.Eligible)
		}
		if r := choose(t, a, "", nonce, pa.Eligible); r.Index != pa.Index {
			t.Fatalf("replay of nonce %d: %d, want %d", nonce, r.Index, pa.Index)
		}
		if pick(t, c, "", nonce, 0).Index != pa.Index {
			differ++
		}
	}
	if differ <= 700 {
		t.Errorf("another seed changed only %d of 1000 picks", differ)
	}
	restricted := choose(t, a, "", 7, 0b10100000)
	if restricted.Index != 5 && restricted.Index != 7 {
		t.Errorf("restricted choice %d", restricted.Index)
	}
	if again := choose(t, a, "", 7, 0b10100000); again.Index != restricted.Index {
		t.Errorf("replay %d vs %d", again.Index, restricted.Index)
	}
	for _, mask := range []uint64{0, 1 << 40} {
		p := choose(t, a, "", 7, mask)
		if p.OK || p.Reason != VenueAllDown || p.RetryAfterNs != RetryNever || p.Eligible != 0 {
			t.Errorf("choose with mask %#x: %+v", mask, p)
		}
	}
	// Choose with a nil key is fine too.
	if p, err := a.Choose(nil, 7, 0xff); err != nil || !p.OK {
		t.Errorf("Choose(nil): %+v %v", p, err)
	}
}

func venueBreaker(t testing.TB) *Breaker {
	return newBreaker(t, BreakerOptions{OpenDuration: time.Second, HalfOpenProbes: 1})
}

func TestVenueHealthFromBreakers(t *testing.T) {
	b0, b1 := venueBreaker(t), venueBreaker(t)
	s := newVenueSet(t, VenueSetOptions{Venues: []Venue{{1, 1, b0}, {2, 1, b1}}})
	now := 10 * ms
	if err := b0.Transition(StateOpen, now); err != nil { // open until now + 1000 ms
		t.Fatal(err)
	}
	for nonce := uint64(0); nonce < 200; nonce++ {
		if p := pick(t, s, "", nonce, now+999*ms); !p.OK || p.VenueID != 2 || p.Eligible != 0b10 {
			t.Fatalf("with venue 1 open: %+v", p)
		}
	}
	if st := vstats(t, s, 0, now+1000*ms); st.ReadyInNs != 0 {
		t.Fatalf("ready in %d after the open period", st.ReadyInNs)
	}
	gotFirst := false
	for nonce := uint64(0); nonce < 200 && !gotFirst; nonce++ {
		gotFirst = pick(t, s, "", nonce, now+1000*ms).VenueID == 1
	}
	if !gotFirst {
		t.Fatal("venue 1 never picked for its probe")
	}
	probe := bacquire(t, b0, now+1000*ms)
	if !probe.Allowed || bstate(t, b0) != StateHalfOpen {
		t.Fatalf("probe %+v, state %v", probe, bstate(t, b0))
	}
	if st := vstats(t, s, 0, now+1000*ms); st.ReadyInNs != 1000*ms {
		t.Fatalf("half-open without probes: ready in %d", st.ReadyInNs)
	}
	if p := pick(t, s, "", 1, now+1000*ms); p.Eligible != 0b10 {
		t.Fatalf("half-open without probes is eligible: %+v", p)
	}
	// Both out: all-open with the soonest time a breaker admits again.
	b1.Transition(StateOpen, now+1300*ms)
	b0.Transition(StateOpen, now+1000*ms)
	none := pick(t, s, "", 1, now+1500*ms)
	if none.OK || none.Reason != VenueAllOpen || none.RetryAfterNs != 500*ms || none.Eligible != 0 {
		t.Fatalf("all open: %+v", none)
	}
	// Forced open is down for good; disabled venues too.
	b0.Transition(StateForcedOpen, now)
	b1.Transition(StateForcedOpen, now)
	none = pick(t, s, "", 1, now)
	if none.Reason != VenueAllDown || none.RetryAfterNs != RetryNever {
		t.Fatalf("all forced open: %+v", none)
	}
	b0.Transition(StateClosed, now)
	if p := pick(t, s, "", 1, now); p.VenueID != 1 {
		t.Fatalf("after closing venue 1's breaker: %+v", p)
	}
	if err := s.SetEnabled(0, false); err != nil {
		t.Fatal(err)
	}
	if st := vstats(t, s, 0, now); st.Enabled || st.VenueID != 1 || st.Weight != 1 {
		t.Fatalf("stats of a disabled venue: %+v", st)
	}
	if p := pick(t, s, "", 1, now); p.Reason != VenueAllDown {
		t.Fatalf("venue 1 disabled, venue 2 forced open: %+v", p)
	}
	if err := s.SetEnabled(0, true); err != nil {
		t.Fatal(err)
	}
	if p := pick(t, s, "", 1, now); !p.OK {
		t.Fatalf("re-enabled: %+v", p)
	}
	for _, i := range []int{2, -1, 64, math.MaxInt} {
		wantStatus(t, s.SetEnabled(i, false), ErrRange, fmt.Sprintf("SetEnabled(%d)", i))
	}
	// The set keeps a closed breaker: its state still counts.
	b1.Transition(StateClosed, now)
	b0.Transition(StateForcedOpen, now)
	b0.Close()
	for nonce := uint64(0); nonce < 50; nonce++ {
		if p := pick(t, s, "", nonce, now); p.VenueID != 2 {
			t.Fatalf("venue 1's breaker closed in Go but forced open: %+v", p)
		}
	}
}

func TestVenueReadyInFollowsBreakerStates(t *testing.T) {
	b := venueBreaker(t)
	s := newVenueSet(t, VenueSetOptions{Venues: []Venue{{1, 1, b}}})
	ready := func(now uint64) uint64 { return vstats(t, s, 0, now).ReadyInNs }
	if ready(0) != 0 {
		t.Fatal("closed breaker not ready")
	}
	b.Transition(StateOpen, 100)
	checks := []struct {
		now, want uint64
	}{{100, 1000 * ms}, {50, 1000*ms + 50}, {100 + 1000*ms, 0}}
	for _, c := range checks {
		if got := ready(c.now); got != c.want {
			t.Errorf("open: ready(%d) = %d, want %d", c.now, got, c.want)
		}
	}
	for state, want := range map[State]uint64{StateForcedOpen: RetryNever, StateForcedClosed: 0, StateDisabled: 0, StateHalfOpen: 0} {
		b.Transition(state, 100)
		if got := ready(100); got != want {
			t.Errorf("%v: ready %d, want %d", state, got, want)
		}
	}
	// A venue without a breaker is always ready.
	s2 := newVenueSet(t, VenueSetOptions{Venues: plainVenues(1)})
	if st := vstats(t, s2, 0, 0); st.ReadyInNs != 0 || !st.Enabled || st.LatencyEWMANs != -1 || st.LatencySamples != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestVenueLeastLatency(t *testing.T) {
	s := newVenueSet(t, VenueSetOptions{Strategy: VenueLeastLatency, Venues: plainVenues(3)})
	if p := pick(t, s, "", 0, 0); !p.OK {
		t.Fatalf("no samples: %+v", p)
	}
	for i := 0; i < 10; i++ {
		for v, lat := range []uint64{900, 100, 500} {
			if err := s.RecordLatency(v, lat, 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	var counts [3]int
	const n = 30000
	for nonce := uint64(0); nonce < n; nonce++ {
		p := pick(t, s, "", nonce, 0)
		if !p.OK || p.Alternative == p.Index {
			t.Fatalf("pick %+v", p)
		}
		counts[p.Index]++
	}
	if counts[0] != 0 {
		t.Errorf("the slowest venue won %d pairs", counts[0])
	}
	if got := float64(counts[1]) / n; math.Abs(got-2.0/3) > 0.02 {
		t.Errorf("the fastest venue's share %.4f, want 2/3", got)
	}
	s.SetEnabled(1, false)
	s.SetEnabled(2, false)
	if p := pick(t, s, "", 5, 0); p.Index != 0 || p.Alternative != 0 {
		t.Errorf("single eligible venue: %+v", p)
	}
}

func TestVenueLatencyEWMA(t *testing.T) {
	s := newVenueSet(t, VenueSetOptions{LatencyAlpha: 0.25, Venues: plainVenues(2)})
	if st := vstats(t, s, 0, 0); st.LatencyEWMANs != -1 {
		t.Fatalf("EWMA before samples: %v", st.LatencyEWMANs)
	}
	s.RecordLatency(0, 1000, 0)
	if st := vstats(t, s, 0, 0); st.LatencyEWMANs != 1000 {
		t.Fatalf("first sample: %v", st.LatencyEWMANs)
	}
	s.RecordLatency(0, 2000, 0)
	if st := vstats(t, s, 0, 0); st.LatencyEWMANs != 1250 || st.LatencySamples != 2 {
		t.Fatalf("second sample: %+v", st)
	}
	for _, i := range []int{2, -1, math.MaxInt} {
		wantStatus(t, s.RecordLatency(i, 1, 0), ErrRange, fmt.Sprintf("RecordLatency(%d)", i))
		_, err := s.Stats(i, 0)
		wantStatus(t, err, ErrRange, fmt.Sprintf("Stats(%d)", i))
	}
	// The default alpha is 0.2.
	d := newVenueSet(t, VenueSetOptions{Venues: plainVenues(1)})
	d.RecordLatency(0, 1000, 0)
	d.RecordLatency(0, 2000, 0)
	if st := vstats(t, d, 0, 0); st.LatencyEWMANs != 1200 {
		t.Fatalf("default alpha: %v", st.LatencyEWMANs)
	}
}

func TestVenueLatencyDecay(t *testing.T) {
	const ms = uint64(1_000_000)
	s := newVenueSet(t, VenueSetOptions{Strategy: VenueLeastLatency, LatencyAlpha: 0.5,
		LatencyDecayNs: 1000 * ms, Venues: plainVenues(2)})
	s.RecordLatency(0, 5000, 100*ms)
	s.RecordLatency(1, 1000, 100*ms)
	if p := pick(t, s, "", 1, 100*ms); p.Index != 1 {
		t.Fatalf("the fast venue should win: %+v", p)
	}
	t1 := 3100 * ms
	for at := 200 * ms; at <= t1; at += 100 * ms {
		s.RecordLatency(1, 1000, at)
	}
	if st := vstats(t, s, 0, t1); math.Abs(st.LatencyEWMANs-5000*math.Exp(-3)) > 1e-6 {
		t.Fatalf("decayed estimate %v, want %v", st.LatencyEWMANs, 5000*math.Exp(-3))
	}
	if p := pick(t, s, "", 1, t1); p.Index != 0 {
		t.Fatalf("the idle slow venue should be tried again: %+v", p)
	}
	fixed := newVenueSet(t, VenueSetOptions{NoLatencyDecay: true, Venues: plainVenues(1)})
	fixed.RecordLatency(0, 700, 0)
	if st := vstats(t, fixed, 0, 1<<50); st.LatencyEWMANs != 700 {
		t.Fatalf("no decay: %v", st.LatencyEWMANs)
	}
	_, err := NewVenueSet(VenueSetOptions{LatencyDecayNs: 1<<62 + 1, Venues: plainVenues(1)})
	wantStatus(t, err, ErrRange, "LatencyDecayNs too big")
}

func TestVenueSticky(t *testing.T) {
	s := newVenueSet(t, VenueSetOptions{Sticky: true, Seed: 7, Venues: plainVenues(8)})
	const keys = 20000
	home := make([]int, keys)
	var per [8]int
	key := func(k int) string { return "acct-" + strconv.Itoa(k) }
	for k := 0; k < keys; k++ {
		home[k] = pick(t, s, key(k), 1, 0).Index
		per[home[k]]++
		if again := pick(t, s, key(k), 999, 0).Index; again != home[k] {
			t.Fatalf("key %d moved with the nonce", k)
		}
	}
	for i, c := range per {
		if math.Abs(float64(c)/keys-0.125) > 0.015 {
			t.Errorf("venue %d holds %d keys", i, c)
		}
	}
	s.SetEnabled(3, false)
	moved := 0
	for k := 0; k < keys; k++ {
		at := pick(t, s, key(k), 1, 0).Index
		if home[k] == 3 {
			if at == 3 {
				t.Fatalf("key %d stayed on a disabled venue", k)
			}
			moved++
		} else if at != home[k] {
			t.Fatalf("key %d moved from %d to %d", k, home[k], at)
		}
	}
	if moved != per[3] {
		t.Errorf("%d keys moved, venue 3 held %d", moved, per[3])
	}
	s.SetEnabled(3, true)
	for k := 0; k < keys; k += 13 {
		if at := pick(t, s, key(k), 1, 0).Index; at != home[k] {
			t.Fatalf("key %d did not come back", k)
		}
	}
	// Choose replays a sticky pick too; an empty key falls back to the
	// strategy.
	p := pick(t, s, "acct-1", 5, 0)
	if r := choose(t, s, "acct-1", 123, p.Eligible); r.Index != p.Index {
		t.Errorf("sticky replay %d vs %d", r.Index, p.Index)
	}
	if p := pick(t, s, "", 1, 0); !p.OK {
		t.Errorf("empty key: %+v", p)
	}
}

func TestVenueStickyWeights(t *testing.T) {
	s := newVenueSet(t, VenueSetOptions{Sticky: true, Venues: []Venue{{1, 1, nil}, {2, 3, nil}}})
	heavy := 0
	const keys = 40000
	for k := 0; k < keys; k++ {
		if pick(t, s, strconv.Itoa(k), 0, 0).VenueID == 2 {
			heavy++
		}
	}
	if got := float64(heavy) / keys; math.Abs(got-0.75) > 0.015 {
		t.Errorf("heavy venue's share %.4f, want 0.75", got)
	}
}

func TestVenueSetInvalid(t *testing.T) {
	closedBreaker, _ := NewBreaker(BreakerOptions{})
	closedBreaker.Close()
	dup := []Venue{{1, 1, nil}, {1, 1, nil}}
	cases := []struct {
		name string
		o    VenueSetOptions
		want Status
		why  string
	}{
		{"no venues", VenueSetOptions{}, ErrInvalid, "at least one"},
		{"65 venues", VenueSetOptions{Venues: plainVenues(65)}, ErrRange, "64"},
		{"100000 venues", VenueSetOptions{Venues: plainVenues(100000)}, ErrRange, "64"},
		{"weight 0", VenueSetOptions{Venues: []Venue{{1, 0, nil}}}, ErrRange, "weight"},
		{"weight 1000001", VenueSetOptions{Venues: []Venue{{1, 1_000_001, nil}}}, ErrRange, "weight"},
		{"duplicate id", VenueSetOptions{Venues: dup}, ErrInvalid, "repeats venue 0"},
		{"alpha NaN", VenueSetOptions{LatencyAlpha: math.NaN(), Venues: plainVenues(1)}, ErrRange, "latency_alpha"},
		{"alpha negative", VenueSetOptions{LatencyAlpha: -0.5, Venues: plainVenues(1)}, ErrRange, "latency_alpha"},
		{"alpha above 1", VenueSetOptions{LatencyAlpha: 1.5, Venues: plainVenues(1)}, ErrRange, "latency_alpha"},
		{"strategy 5", VenueSetOptions{Strategy: 5, Venues: plainVenues(1)}, ErrInvalid, "strategy"},
		{"closed breaker", VenueSetOptions{Venues: []Venue{{1, 1, closedBreaker}}}, ErrInvalid, "closed"},
	}
	for _, c := range cases {
		s, err := NewVenueSet(c.o)
		if s != nil {
			s.Close()
			t.Errorf("%s: accepted", c.name)
			continue
		}
		wantStatus(t, err, c.want, c.name)
		if err != nil && !strings.Contains(err.Error(), c.why) {
			t.Errorf("%s: %v does not say %q", c.name, err, c.why)
		}
	}
	s := newVenueSet(t, VenueSetOptions{Venues: plainVenues(64), LatencyAlpha: 1})
	if p := pick(t, s, "", 0, 0); !p.OK || p.Eligible != math.MaxUint64 {
		t.Fatalf("64 venues: %+v", p)
	}
	if n, err := s.Len(); n != 64 || err != nil {
		t.Fatalf("Len %d %v", n, err)
	}
}

func TestRouterRoute(t *testing.T) {
	vs := newVenueSet(t, VenueSetOptions{Sticky: true, Venues: plainVenues(4)})
	orders := rule(1, "/orders")
	orders.VenueSet = 0
	info := rule(2, "/info")
	rt := newTable(t, []Rule{orders, info}, vs)
	r, err := NewRouter(rt)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	d, err := r.Route(Request{Method: "POST", Path: "/orders"}, []byte("acct-1"), 3, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := pick(t, vs, "acct-1", 3, 0)
	if d.Match.Status != RouteMatched || d.Match.VenueSet != 0 || !d.Venue.OK || d.Venue != want {
		t.Fatalf("route %+v, want venue %+v", d, want)
	}
	d, err = r.Route(Request{Method: "POST", Path: "/info"}, []byte("acct-1"), 3, 0)
	if err != nil || d.Match.Status != RouteMatched || d.Match.VenueSet != NoVenueSet || d.Venue.OK || d.Venue.Reason != VenueNoSet {
		t.Fatalf("route without a venue set: %+v %v", d, err)
	}
	d, err = r.Route(Request{Path: "/nothing"}, nil, 0, 0)
	if err != nil || d.Match.Status != RouteNoRoute || d.Venue.OK {
		t.Fatalf("no route: %+v %v", d, err)
	}
	// With headers; and the table keeps the venue set after it is closed.
	vs.Close()
	d, err = r.Route(Request{Method: "POST", Path: "/orders", Headers: []Header{{"x", "y"}}}, []byte("acct-1"), 3, 0)
	if err != nil || !d.Venue.OK || d.Venue.Index != want.Index {
		t.Fatalf("route after closing the venue set: %+v %v", d, err)
	}
	// Every venue down: the match stands, the pick says why.
	b := venueBreaker(t)
	down := newVenueSet(t, VenueSetOptions{Venues: []Venue{{7, 1, b}}})
	b.Transition(StateForcedOpen, 0)
	rt2 := newTable(t, []Rule{orders}, down)
	if err := r.Publish(rt2); err != nil {
		t.Fatal(err)
	}
	d, err = r.Route(Request{Path: "/orders"}, nil, 1, 0)
	if err != nil || d.Match.Status != RouteMatched || d.Venue.OK || d.Venue.Reason != VenueAllDown || d.Venue.RetryAfterNs != RetryNever {
		t.Fatalf("all down: %+v %v", d, err)
	}
}

// ---- lifetime --------------------------------------------------------------------

func TestRouterObjectsNilAndClosed(t *testing.T) {
	req := Request{Method: "GET", Path: "/o"}
	tableCalls := map[string]func(*RouteTable) error{
		"Match":             func(rt *RouteTable) error { _, err := rt.Match(req); return err },
		"MatchMany":         func(rt *RouteTable) error { return rt.MatchMany([]Request{req}, make([]Match, 1)) },
		"MatchMany(empty)":  func(rt *RouteTable) error { return rt.MatchMany(nil, nil) },
		"ParamName":         func(rt *RouteTable) error { _, err := rt.ParamName(0, 0); return err },
		"ParamNames":        func(rt *RouteTable) error { _, err := rt.ParamNames(0); return err },
		"Len":               func(rt *RouteTable) error { _, err := rt.Len(); return err },
		"Publish(table)":    func(rt *RouteTable) error { r, _ := NewRouter(nil); defer r.Close(); return r.Publish(rt) },
		"Match(with hdrs)":  func(rt *RouteTable) error { _, err := rt.Match(Request{Headers: []Header{{"a", "b"}}}); return err },
		"MatchMany(bad)":    func(rt *RouteTable) error { return rt.MatchMany([]Request{req}, nil) },
		"Match(129 hdrs)":   func(rt *RouteTable) error { _, err := rt.Match(Request{Headers: make([]Header, 129)}); return err },
		"ParamName(-1, -1)": func(rt *RouteTable) error { _, err := rt.ParamName(-1, -1); return err },
	}
	closedTable, err := NewRouteTable([]Rule{rule(1, "/o/{x}")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	closedTable.Close()
	if err := closedTable.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	var nilTable *RouteTable
	if err := nilTable.Close(); err != nil {
		t.Fatalf("nil Close: %v", err)
	}
	if r, err := NewRouter(closedTable); err == nil {
		r.Close()
		t.Error("NewRouter accepted a closed table")
	}
	for name, call := range tableCalls {
		wantStatus(t, call(nil), ErrInvalid, "RouteTable."+name+" on nil")
		err := call(closedTable)
		wantStatus(t, err, ErrInvalid, "RouteTable."+name+" on a closed table")
		if !strings.HasPrefix(name, "Publish") && err != ErrClosed {
			t.Errorf("RouteTable.%s on a closed table: %v, want ErrClosed", name, err)
		}
	}

	routerCalls := map[string]func(*Router) error{
		"Match":            func(r *Router) error { _, err := r.Match(req); return err },
		"MatchMany":        func(r *Router) error { return r.MatchMany([]Request{req}, make([]Match, 1)) },
		"MatchMany(empty)": func(r *Router) error { return r.MatchMany(nil, nil) },
		"Route":            func(r *Router) error { _, err := r.Route(req, []byte("k"), 0, 0); return err },
		"Route(hdrs)": func(r *Router) error {
			_, err := r.Route(Request{Headers: []Header{{"a", "b"}}}, nil, 0, 0)
			return err
		},
		"Publish":      func(r *Router) error { return r.Publish(newTable(t, nil)) },
		"Publish(nil)": func(r *Router) error { return r.Publish(nil) },
		"Version":      func(r *Router) error { _, err := r.Version(); return err },
		"Current":      func(r *Router) error { _, err := r.Current(); return err },
	}
	closedRouter, err := NewRouter(newTable(t, []Rule{rule(1, "/o")}))
	if err != nil {
		t.Fatal(err)
	}
	closedRouter.Close()
	closedRouter.Close()
	var nilRouter *Router
	if err := nilRouter.Close(); err != nil {
		t.Fatal(err)
	}
	for name, call := range routerCalls {
		wantStatus(t, call(nil), ErrInvalid, "Router."+name+" on nil")
		if err := call(closedRouter); err != ErrClosed {
			t.Errorf("Router.%s on a closed router: %v, want ErrClosed", name, err)
		}
	}

	setCalls := map[string]func(*VenueSet) error{
		"Pick":          func(s *VenueSet) error { _, err := s.Pick([]byte("k"), 0, 0); return err },
		"Choose":        func(s *VenueSet) error { _, err := s.Choose(nil, 0, 1); return err },
		"RecordLatency": func(s *VenueSet) error { return s.RecordLatency(0, 1, 0) },
		"SetEnabled":    func(s *VenueSet) error { return s.SetEnabled(0, false) },
		"Stats":         func(s *VenueSet) error { _, err := s.Stats(0, 0); return err },
		"Stats(-1)":     func(s *VenueSet) error { _, err := s.Stats(-1, 0); return err },
		"Len":           func(s *VenueSet) error { _, err := s.Len(); return err },
	}
	closedSet, err := NewVenueSet(VenueSetOptions{Venues: plainVenues(2)})
	if err != nil {
		t.Fatal(err)
	}
	closedSet.Close()
	closedSet.Close()
	var nilSet *VenueSet
	if err := nilSet.Close(); err != nil {
		t.Fatal(err)
	}
	for name, call := range setCalls {
		wantStatus(t, call(nil), ErrInvalid, "VenueSet."+name+" on nil")
		if err := call(closedSet); err != ErrClosed {
			t.Errorf("VenueSet.%s on a closed set: %v, want ErrClosed", name, err)
		}
	}
}

// Close may race with calls in progress: they finish, later ones get
// ErrClosed, nothing crashes (run with -race).
func TestRouterCloseWhileInUse(t *testing.T) {
	for round := 0; round < 20; round++ {
		vs, _ := NewVenueSet(VenueSetOptions{Venues: plainVenues(3)})
		r0 := rule(1, "/o/{id}")
		r0.VenueSet = 0
		rt, err := NewRouteTable([]Rule{r0}, []*VenueSet{vs})
		if err != nil {
			t.Fatal(err)
		}
		r, _ := NewRouter(rt)
		var wg sync.WaitGroup
		var failures atomic.Int64
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				req := Request{Method: "GET", Path: "/o/7", Headers: []Header{{"a", "b"}}}
				out := make([]Match, 20)
				reqs := batchRequests(20)
				for i := 0; ; i++ {
					var err error
					switch g {
					case 0:
						_, err = rt.Match(req)
					case 1:
						err = r.MatchMany(reqs, out)
					case 2:
						_, err = r.Route(req, []byte("k"), uint64(i), 0)
					case 3:
						_, err = vs.Pick(nil, uint64(i), 0)
					}
					if err != nil {
						if err != ErrClosed {
							failures.Add(1)
						}
						return
					}
				}
			}(g)
		}
		time.Sleep(time.Millisecond)
		rt.Close()
		r.Close()
		vs.Close()
		wg.Wait()
		if failures.Load() != 0 {
			t.Fatalf("round %d: %d calls failed with another error than ErrClosed", round, failures.Load())
		}
	}
}

func TestRouterFinalizers(t *testing.T) {
	before := handlesFreed.Load()
	func() {
		for i := 0; i < 10; i++ {
			vs, err := NewVenueSet(VenueSetOptions{Venues: []Venue{{1, 1, venueBreaker(t)}}})
			if err != nil {
				t.Fatal(err)
			}
			r0 := rule(1, "/o")
			r0.VenueSet = 0
			rt, err := NewRouteTable([]Rule{r0}, []*VenueSet{vs})
			if err != nil {
				t.Fatal(err)
			}
			r, err := NewRouter(rt)
			if err != nil {
				t.Fatal(err)
			}
			cur, err := r.Current()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := r.Route(Request{Path: "/o"}, nil, 0, 0); err != nil {
				t.Fatal(err)
			}
			_ = cur
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for handlesFreed.Load()-before < 40 && time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if n := handlesFreed.Load() - before; n < 40 {
		t.Fatalf("%d of 40 unreachable objects released by finalizers", n)
	}
}

// ---- allocations --------------------------------------------------------------------

// The single-call paths allocate nothing (Match of a parametric route
// allocates its Params), and a warm MatchMany nothing per request.
func TestRouterCallsDoNotAllocate(t *testing.T) {
	rt := batchTable(t)
	vs := newVenueSet(t, VenueSetOptions{Sticky: true, Venues: plainVenues(4)})
	orders := rule(1, "/orders/{id}")
	orders.VenueSet = 0
	r, err := NewRouter(newTable(t, []Rule{orders}, vs))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	static := Request{Method: "GET", Path: "/static/path"}
	withHeaders := Request{Method: "GET", Path: "/o", Headers: []Header{{"X-Venue", "XLON"}, {"a", "b"}}}
	param := Request{Method: "GET", Path: "/accounts/AC1/orders/o-9"}
	routeReq := Request{Method: "POST", Path: "/orders/17", Headers: []Header{{"a", "b"}}}
	key := []byte("acct-1")
	checks := map[string]struct {
		f   func()
		max float64
	}{
		"Match static":        {func() { rt.Match(static) }, 0},
		"Match with headers":  {func() { rt.Match(withHeaders) }, 0},
		"Match parametric":    {func() { rt.Match(param) }, 1},
		"Router.Match static": {func() { r.Match(Request{Path: "/orders"}) }, 0},
		"Route":               {func() { r.Route(routeReq, key, 1, 0) }, 1},
		"Pick":                {func() { vs.Pick(key, 1, 0) }, 0},
		"Choose":              {func() { vs.Choose(key, 1, 0xf) }, 0},
		"RecordLatency":       {func() { vs.RecordLatency(1, 100, 0) }, 0},
		"Stats":               {func() { vs.Stats(1, 0) }, 0},
		"Version":             {func() { r.Version() }, 0},
		"NormalizePath":       {func() { NormalizePath("/a/./b/%7euser") }, 1}, // the result
	}
	for name, c := range checks {
		c.f()
		if allocs := testing.AllocsPerRun(200, c.f); allocs > c.max {
			t.Errorf("%s allocates %.2f times per call, want at most %v", name, allocs, c.max)
		}
	}
	reqs := batchRequests(1000)
	out := make([]Match, len(reqs))
	for _, m := range []interface {
		MatchMany([]Request, []Match) error
	}{rt, r} {
		if err := m.MatchMany(reqs, out); err != nil { // warm: buffers and Params grow once
			t.Fatal(err)
		}
		if allocs := testing.AllocsPerRun(50, func() { m.MatchMany(reqs, out) }); allocs > 1 {
			t.Errorf("%T.MatchMany(1000) allocates %.1f times per batch", m, allocs)
		}
	}
}
