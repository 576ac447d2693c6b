package tollgate

/*
#include <stdint.h>
#include <stdlib.h>
#include <tollgate/tollgate.h>

// Requests cross cgo without Go pointers inside Go memory: the method, host
// and path of a single request are direct arguments (pointers to their
// bytes), and headers, and every string of a batch, are copied into one
// byte buffer described by offsets. These wrappers build the library's
// tg_route_request and tg_header arrays, which hold pointers, in C memory
// (the C stack, or malloc for large batches) for the duration of the call.

typedef struct tg_go_hdr {
  uint32_t name_off, name_len, value_off, value_len;
} tg_go_hdr;

typedef struct tg_go_req {
  uint32_t method_off, method_len, host_off, host_len, path_off, path_len;
  uint32_t hdr_first, hdr_count;
} tg_go_req;

// The library refuses requests with more headers than this.
#define TG_GO_MAX_HEADERS 128

static inline const char* tg_go_at(const uint8_t* b, uint32_t off, uint32_t len) {
  return len == 0 ? NULL : (const char*)b + off;
}

static inline void tg_go_headers(tg_header* dst, const uint8_t* b, const tg_go_hdr* h, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    dst[i].name = tg_go_at(b, h[i].name_off, h[i].name_len);
    dst[i].name_len = h[i].name_len;
    dst[i].value = tg_go_at(b, h[i].value_off, h[i].value_len);
    dst[i].value_len = h[i].value_len;
  }
}

static inline void tg_go_request(tg_route_request* q, const char* m, size_t ml, const char* h,
                                 size_t hl, const char* p, size_t pl, tg_header* hv, size_t hc) {
  q->method = m;
  q->method_len = ml;
  q->host = h;
  q->host_len = hl;
  q->path = p;
  q->path_len = pl;
  q->headers = hc != 0 ? hv : NULL;
  q->header_count = hc;
}

static int tg_go_match(const tg_route_table* t, const tg_router* r, const char* m, size_t ml,
                       const char* h, size_t hl, const char* p, size_t pl, const uint8_t* hb,
                       const tg_go_hdr* hd, size_t hc, tg_route_match* out) {
  tg_header hv[TG_GO_MAX_HEADERS];
  tg_route_request q;
  if (hc > TG_GO_MAX_HEADERS) return TG_EINVAL;
  tg_go_headers(hv, hb, hd, hc);
  tg_go_request(&q, m, ml, h, hl, p, pl, hv, hc);
  return t != NULL ? tg_route_table_match(t, &q, out) : tg_router_match(r, &q, out);
}

static int tg_go_route(const tg_router* r, const char* m, size_t ml, const char* h, size_t hl,
                       const char* p, size_t pl, const uint8_t* hb, const tg_go_hdr* hd, size_t hc,
                       const uint8_t* key, size_t key_len, uint64_t nonce, uint64_t now_ns,
                       tg_route_decision* out) {
  tg_header hv[TG_GO_MAX_HEADERS];
  tg_route_request q;
  if (hc > TG_GO_MAX_HEADERS) return TG_EINVAL;
  tg_go_headers(hv, hb, hd, hc);
  tg_go_request(&q, m, ml, h, hl, p, pl, hv, hc);
  return tg_router_route(r, &q, key, key_len, nonce, now_ns, out);
}

// A batch: every string in b. Small batches build their arrays on the C
// stack, larger ones in one malloc'd block each.
static int tg_go_match_many(const tg_route_table* t, const tg_router* r, const uint8_t* b,
                            const tg_go_req* rq, size_t n, const tg_go_hdr* hd, size_t hn,
                            tg_route_match* out) {
  enum { stack_reqs = 16, stack_hdrs = 64 };
  tg_route_request sq[stack_reqs];
  tg_header sh[stack_hdrs];
  tg_route_request* q = n <= stack_reqs ? sq : (tg_route_request*)malloc(n * sizeof *q);
  tg_header* hv = hn <= stack_hdrs ? sh : (tg_header*)malloc(hn * sizeof *hv);
  int rc = TG_ENOMEM;
  if (q != NULL && hv != NULL) {
    tg_go_headers(hv, b, hd, hn);
    for (size_t i = 0; i < n; ++i) {
      tg_go_request(&q[i], tg_go_at(b, rq[i].method_off, rq[i].method_len), rq[i].method_len,
                    tg_go_at(b, rq[i].host_off, rq[i].host_len), rq[i].host_len,
                    tg_go_at(b, rq[i].path_off, rq[i].path_len), rq[i].path_len,
                    hv + rq[i].hdr_first, rq[i].hdr_count);
    }
    rc = t != NULL ? tg_route_table_match_many(t, q, n, out) : tg_router_match_many(r, q, n, out);
  }
  if (q != sq) free(q);
  if (hv != sh) free(hv);
  return rc;
}

static inline int tg_go_venue_pick(const tg_venue_set* s, const uint8_t* key, size_t key_len,
                                   uint64_t nonce, uint64_t now_ns, tg_venue_pick* out) {
  return tg_venue_set_pick(s, key, key_len, nonce, now_ns, out);
}

static inline int tg_go_venue_choose(const tg_venue_set* s, const uint8_t* key, size_t key_len,
                                     uint64_t nonce, uint64_t eligible, tg_venue_pick* out) {
  return tg_venue_set_choose(s, key, key_len, nonce, eligible, out);
}

#cgo noescape tg_go_match
#cgo noescape tg_go_route
#cgo noescape tg_go_match_many
#cgo noescape tg_go_venue_pick
#cgo noescape tg_go_venue_choose
#cgo noescape tg_route_table_new
#cgo noescape tg_route_table_param_name
#cgo noescape tg_route_table_rule_count
#cgo noescape tg_router_new
#cgo noescape tg_router_publish
#cgo noescape tg_router_version
#cgo noescape tg_router_current
#cgo noescape tg_path_normalize
#cgo noescape tg_venue_set_new
#cgo noescape tg_venue_set_stats
#cgo nocallback tg_go_match
#cgo nocallback tg_go_route
#cgo nocallback tg_go_match_many
#cgo nocallback tg_go_venue_pick
#cgo nocallback tg_go_venue_choose
#cgo nocallback tg_route_table_new
#cgo nocallback tg_route_table_free
#cgo nocallback tg_route_table_param_name
#cgo nocallback tg_route_table_rule_count
#cgo nocallback tg_router_new
#cgo nocallback tg_router_free
#cgo nocallback tg_router_publish
#cgo nocallback tg_router_version
#cgo nocallback tg_router_current
#cgo nocallback tg_path_normalize
#cgo nocallback tg_venue_set_new
#cgo nocallback tg_venue_set_free
#cgo nocallback tg_venue_set_record_latency
#cgo nocallback tg_venue_set_set_enabled
#cgo nocallback tg_venue_set_stats
*/
import "C"

import (
	"fmt"
	"math"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"
)

// MaxRouteParams is the most parameters a route captures.
const MaxRouteParams = 16

// MaxRequestHeaders is the most headers a [Request] may carry; a request
// with more is refused with ErrInvalid.
const MaxRequestHeaders = 128

// MaxRules is the most rules a [RouteTable] holds.
const MaxRules = 1 << 20

// NoVenueSet is the VenueSet of a [Rule] (and of a [Match]) that names no
// venue set.
const NoVenueSet = -1

var (
	_ = [1]struct{}{}[MaxRouteParams-C.TG_ROUTE_MAX_PARAMS]
	_ = [1]struct{}{}[MaxRequestHeaders-C.TG_GO_MAX_HEADERS]
)

// HeaderOp is the test a [HeaderPredicate] applies to a request header.
type HeaderOp int32

const (
	// HeaderPresent: the header is present (Value must be empty).
	HeaderPresent HeaderOp = 0
	// HeaderExact: some occurrence of the header equals Value, byte for byte.
	HeaderExact HeaderOp = 1
	// HeaderPrefix: some occurrence of the header starts with Value.
	HeaderPrefix HeaderOp = 2
)

var (
	_ = [1]struct{}{}[int(HeaderPresent)-C.TG_HEADER_PRESENT]
	_ = [1]struct{}{}[int(HeaderExact)-C.TG_HEADER_EXACT]
	_ = [1]struct{}{}[int(HeaderPrefix)-C.TG_HEADER_PREFIX]
)

// String returns a short lower-case name of the op.
func (o HeaderOp) String() string {
	switch o {
	case HeaderPresent:
		return "present"
	case HeaderExact:
		return "exact"
	case HeaderPrefix:
		return "prefix"
	}
	return "HeaderOp(" + strconv.Itoa(int(o)) + ")"
}

// HeaderPredicate is a condition of a [Rule] on a request header.
type HeaderPredicate struct {
	// Name is the header name, a token matched case-insensitively.
	Name string
	// Value is compared byte for byte by HeaderExact and HeaderPrefix; it
	// must be empty for HeaderPresent.
	Value string
	// Op is the test.
	Op HeaderOp
	// Invert makes the rule need the predicate to be false: it then holds
	// when no occurrence of the header satisfies it, so a decoy duplicate
	// cannot make it hold.
	Invert bool
}

// Rule is one route of a [RouteTable]. See the package documentation of the
// router for the pattern syntax and the precedence between rules.
type Rule struct {
	// RouteID is the host's id for the route, reported by a match.
	RouteID uint32
	// Methods the rule accepts: empty for any, else tokens such as "GET"
	// (case-sensitive, as HTTP methods are). A request whose method is not
	// listed gets RouteMethodNotAllowed if nothing else matches it.
	Methods []string
	// Host is "" (any host), "api.example.com" (exact, case-insensitive) or
	// "*.example.com" (any name below example.com, not example.com itself).
	Host string
	// Path is the pattern: "/"-separated segments, each a literal, "{name}"
	// (one segment) or, last, "{*name}" (one or more segments).
	Path string
	// Prefix makes the rule match its pattern and everything below it,
	// segment-aligned ("/api" matches "/api/x", never "/apix").
	Prefix bool
	// Headers are predicates that must all hold (at most 16).
	Headers []HeaderPredicate
	// Priority breaks ties between equally specific rules; higher wins.
	Priority int32
	// Target is the host's upstream id, reported by a match.
	Target uint32
	// VenueSet is an index into the venue sets passed to NewRouteTable, or
	// NoVenueSet (-1). Note that the zero value names venue set 0.
	VenueSet int
}

// BuildError is the error of [NewRouteTable]: Err says what was wrong and
// RuleIndex which rule (an index into the rules), or -1 when the error is
// not about one rule. errors.Is(err, ErrInvalid) and errors.As(err, &e)
// with e an *Error see through it.
type BuildError struct {
	// RuleIndex is the offending rule's index, or -1.
	RuleIndex int
	// Err carries the status and the library's explanation, such as
	// "rule 3: parameter {id} appears twice".
	Err *Error
}

// Error implements error.
func (e *BuildError) Error() string { return e.Err.Error() }

// Unwrap returns the *Error.
func (e *BuildError) Unwrap() error { return e.Err }

func buildErr(rule int, status Status, format string, args ...any) *BuildError {
	return &BuildError{RuleIndex: rule, Err: &Error{Status: status, Message: fmt.Sprintf(format, args...)}}
}

// RouteStatus is the outcome of matching a request.
type RouteStatus int32

const (
	// RouteMatched: a rule matched; the other fields of the Match are set.
	RouteMatched RouteStatus = 0
	// RouteNoRoute: no rule matched.
	RouteNoRoute RouteStatus = 1
	// RouteMethodNotAllowed: a rule matched all but the method (HTTP 405).
	RouteMethodNotAllowed RouteStatus = 2
	// RouteBadEncoding: a bad %XX escape, or a NUL or control byte, in the
	// path.
	RouteBadEncoding RouteStatus = 3
	// RouteAmbiguousSeparator: %2F, %5C or "\" in the path.
	RouteAmbiguousSeparator RouteStatus = 4
	// RoutePathTooLong: more than 8192 bytes before '?' or '#'.
	RoutePathTooLong RouteStatus = 5
	// RoutePathNotAbsolute: the path is empty or does not start with '/'.
	RoutePathNotAbsolute RouteStatus = 6
	// RouteBadHost: a host longer than 255 bytes, or not a host name.
	RouteBadHost RouteStatus = 7
	// RoutePathTooDeep: more than 128 segments after normalisation.
	RoutePathTooDeep RouteStatus = 8
)

var (
	_ = [1]struct{}{}[int(RouteMatched)-C.TG_ROUTE_MATCHED]
	_ = [1]struct{}{}[int(RouteNoRoute)-C.TG_ROUTE_NO_ROUTE]
	_ = [1]struct{}{}[int(RouteMethodNotAllowed)-C.TG_ROUTE_METHOD_NOT_ALLOWED]
	_ = [1]struct{}{}[int(RouteBadEncoding)-C.TG_ROUTE_BAD_ENCODING]
	_ = [1]struct{}{}[int(RouteAmbiguousSeparator)-C.TG_ROUTE_AMBIGUOUS_SEPARATOR]
	_ = [1]struct{}{}[int(RoutePathTooLong)-C.TG_ROUTE_PATH_TOO_LONG]
	_ = [1]struct{}{}[int(RoutePathNotAbsolute)-C.TG_ROUTE_PATH_NOT_ABSOLUTE]
	_ = [1]struct{}{}[int(RouteBadHost)-C.TG_ROUTE_BAD_HOST]
	_ = [1]struct{}{}[int(RoutePathTooDeep)-C.TG_ROUTE_PATH_TOO_DEEP]
)

// String returns a short lower-case name of the status.
func (s RouteStatus) String() string {
	switch s {
	case RouteMatched:
		return "matched"
	case RouteNoRoute:
		return "no-route"
	case RouteMethodNotAllowed:
		return "method-not-allowed"
	case RouteBadEncoding:
		return "bad-encoding"
	case RouteAmbiguousSeparator:
		return "ambiguous-separator"
	case RoutePathTooLong:
		return "path-too-long"
	case RoutePathNotAbsolute:
		return "path-not-absolute"
	case RouteBadHost:
		return "bad-host"
	case RoutePathTooDeep:
		return "path-too-deep"
	}
	return "RouteStatus(" + strconv.Itoa(int(s)) + ")"
}

// libName is the library's name of the status (tg_route_status_str).
func (s RouteStatus) libName() string { return C.GoString(C.tg_route_status_str(C.int(s))) }

// Header is one request header.
type Header struct {
	Name, Value string
}

// Request is what a route table matches: the method, the host (it may
// carry ":port"; empty matches only rules for any host), the request target
// as received ("/orders/7?x=1") and the headers (at most
// MaxRequestHeaders). The library does not keep any of it.
type Request struct {
	Method  string
	Host    string
	Path    string
	Headers []Header
}

// Param is a captured path parameter: Path[Offset:Offset+Length] of the
// request, in its raw spelling (not decoded).
type Param struct {
	Offset, Length int
}

// Match is the outcome of matching a request. No route is a normal outcome
// (Status), not an error.
type Match struct {
	// Status is RouteMatched when a rule matched; the fields below are only
	// set then (RuleIndex and VenueSet are -1, the others zero, otherwise).
	Status RouteStatus
	// RouteID and Target are the matched rule's.
	RouteID, Target uint32
	// VenueSet is the rule's venue set index, or NoVenueSet.
	VenueSet int
	// RuleIndex is the position of the matched rule in the table's rules;
	// RouteTable.ParamName takes it.
	RuleIndex int
	// Params are the captured parameters in pattern order, {*rest} last.
	// MatchMany reuses the slice's backing array: clone it to keep it
	// across calls.
	Params []Param
}

// Param returns parameter i of the match as a substring of path, which
// must be the Path of the request that was matched; "" when there is no
// such parameter.
func (m *Match) Param(path string, i int) string {
	if i < 0 || i >= len(m.Params) {
		return ""
	}
	p := m.Params[i]
	if p.Offset < 0 || p.Length < 0 || p.Offset > len(path) || p.Length > len(path)-p.Offset {
		return ""
	}
	return path[p.Offset : p.Offset+p.Length]
}

// setFrom fills *m, reusing the capacity of m.Params.
func (m *Match) setFrom(c *C.tg_route_match) {
	m.Status = RouteStatus(c.status)
	if m.Status != RouteMatched {
		m.RouteID, m.Target = 0, 0
		m.VenueSet, m.RuleIndex = NoVenueSet, -1
		m.Params = m.Params[:0]
		return
	}
	m.RouteID = uint32(c.route_id)
	m.Target = uint32(c.target)
	m.VenueSet = NoVenueSet
	if c.venue_set != C.TG_NO_VENUE_SET {
		m.VenueSet = int(c.venue_set)
	}
	m.RuleIndex = int(c.rule_index)
	n := min(int(c.param_count), MaxRouteParams)
	if cap(m.Params) < n {
		m.Params = make([]Param, n)
	}
	m.Params = m.Params[:n]
	for i := range m.Params {
		m.Params[i] = Param{Offset: int(c.params[i].offset), Length: int(c.params[i].length)}
	}
}

// ---- requests across cgo ---------------------------------------------------

// routeScratch holds the buffers of a call that copies request bytes: the
// packed bytes, their descriptors and the matches in the library's layout.
// None holds a Go pointer, so all may be passed to C.
type routeScratch struct {
	bytes   []byte
	hdrs    []C.tg_go_hdr
	reqs    []C.tg_go_req
	matches []C.tg_route_match
}

var routeScratchPool = sync.Pool{New: func() any { return new(routeScratch) }}

// scratchCache is the per-object cache of one routeScratch, so a warm
// single caller never allocates; concurrent callers fall back to the pool.
type scratchCache struct {
	p atomic.Pointer[routeScratch]
}

func (c *scratchCache) get() *routeScratch {
	if s := c.p.Swap(nil); s != nil {
		return s
	}
	return routeScratchPool.Get().(*routeScratch)
}

func (c *scratchCache) put(s *routeScratch) {
	if cap(s.bytes) > maxCachedScratch || cap(s.matches) > maxCachedScratch/128 {
		return
	}
	if !c.p.CompareAndSwap(nil, s) {
		routeScratchPool.Put(s)
	}
}

func cstrPtr(s string) *C.char {
	if len(s) == 0 {
		return nil
	}
	return (*C.char)(unsafe.Pointer(unsafe.StringData(s)))
}

func checkHeaders(req *Request, what string) error {
	if len(req.Headers) > MaxRequestHeaders {
		return invalid("%s has %d headers; at most %d", what, len(req.Headers), MaxRequestHeaders)
	}
	return nil
}

// packHeaders appends hs to s.bytes and s.hdrs.
func (s *routeScratch) packHeaders(hs []Header) {
	for _, h := range hs {
		s.hdrs = append(s.hdrs, C.tg_go_hdr{
			name_off: C.uint32_t(len(s.bytes)), name_len: C.uint32_t(len(h.Name)),
			value_off: C.uint32_t(len(s.bytes) + len(h.Name)), value_len: C.uint32_t(len(h.Value)),
		})
		s.bytes = append(s.bytes, h.Name...)
		s.bytes = append(s.bytes, h.Value...)
	}
}

// headerBytes is the number of bytes the headers of req pack into.
func headerBytes(hs []Header) int {
	n := 0
	for _, h := range hs {
		n += len(h.Name) + len(h.Value)
	}
	return n
}

// oneHdr stands in for the descriptor array of a request without headers.
var oneHdr [1]C.tg_go_hdr

// matchOne matches one request on t or r (one of them nil); the caller
// holds the object's guard.
func matchOne(t *C.tg_route_table, r *C.tg_router, sc *scratchCache, req *Request, out *C.tg_route_match) error {
	if err := checkHeaders(req, "the request"); err != nil {
		return err
	}
	var rc C.int
	if len(req.Headers) == 0 {
		rc = C.tg_go_match(t, r, cstrPtr(req.Method), C.size_t(len(req.Method)), cstrPtr(req.Host),
			C.size_t(len(req.Host)), cstrPtr(req.Path), C.size_t(len(req.Path)),
			(*C.uint8_t)(unsafe.Pointer(&oneByte[0])), &oneHdr[0], 0, out)
	} else {
		if uint64(headerBytes(req.Headers)) > math.MaxUint32 {
			return &Error{Status: ErrRange, Message: "the headers of a request must total less than 4 GiB"}
		}
		s := sc.get()
		s.bytes, s.hdrs = s.bytes[:0], s.hdrs[:0]
		s.packHeaders(req.Headers)
		rc = C.tg_go_match(t, r, cstrPtr(req.Method), C.size_t(len(req.Method)), cstrPtr(req.Host),
			C.size_t(len(req.Host)), cstrPtr(req.Path), C.size_t(len(req.Path)),
			bytesPtrOr(s.bytes), &s.hdrs[0], C.size_t(len(s.hdrs)), out)
		sc.put(s)
	}
	if rc != C.TG_OK {
		return statusErr(rc, nil, "the request was refused")
	}
	return nil
}

// bytesPtrOr points at b's bytes, or at a dummy byte when b is empty, so
// the C side always gets a valid base pointer.
func bytesPtrOr(b []byte) *C.uint8_t {
	if len(b) == 0 {
		return (*C.uint8_t)(unsafe.Pointer(&oneByte[0]))
	}
	return (*C.uint8_t)(unsafe.Pointer(unsafe.SliceData(b)))
}

// matchMany matches reqs on t or r (one of them nil) into out with one cgo
// call; the caller holds the object's guard and checked the lengths.
func matchMany(t *C.tg_route_table, r *C.tg_router, sc *scratchCache, reqs []Request, out []Match) error {
	total := 0
	nh := 0
	for i := range reqs {
		q := &reqs[i]
		if len(q.Headers) > MaxRequestHeaders {
			return invalid("reqs[%d] has %d headers; at most %d", i, len(q.Headers), MaxRequestHeaders)
		}
		total += len(q.Method) + len(q.Host) + len(q.Path) + headerBytes(q.Headers)
		nh += len(q.Headers)
	}
	if uint64(total) > math.MaxUint32 {
		return &Error{Status: ErrRange, Message: "the strings of one batch must total less than 4 GiB"}
	}
	n := len(reqs)
	s := sc.get()
	defer sc.put(s)
	if cap(s.bytes) < total {
		s.bytes = make([]byte, 0, total)
	}
	if cap(s.hdrs) < nh {
		s.hdrs = make([]C.tg_go_hdr, 0, nh)
	}
	if cap(s.reqs) < n {
		s.reqs = make([]C.tg_go_req, n)
	}
	if cap(s.matches) < n {
		s.matches = make([]C.tg_route_match, n)
	}
	s.bytes, s.hdrs, s.reqs, s.matches = s.bytes[:0], s.hdrs[:0], s.reqs[:n], s.matches[:n]
	for i := range reqs {
		q := &reqs[i]
		d := &s.reqs[i]
		d.method_off, d.method_len = C.uint32_t(len(s.bytes)), C.uint32_t(len(q.Method))
		s.bytes = append(s.bytes, q.Method...)
		d.host_off, d.host_len = C.uint32_t(len(s.bytes)), C.uint32_t(len(q.Host))
		s.bytes = append(s.bytes, q.Host...)
		d.path_off, d.path_len = C.uint32_t(len(s.bytes)), C.uint32_t(len(q.Path))
		s.bytes = append(s.bytes, q.Path...)
		d.hdr_first, d.hdr_count = C.uint32_t(len(s.hdrs)), C.uint32_t(len(q.Headers))
		s.packHeaders(q.Headers)
	}
	hp := &oneHdr[0]
	if len(s.hdrs) > 0 {
		hp = &s.hdrs[0]
	}
	rc := C.tg_go_match_many(t, r, bytesPtrOr(s.bytes), &s.reqs[0], C.size_t(n), hp, C.size_t(len(s.hdrs)), &s.matches[0])
	if rc != C.TG_OK {
		return statusErr(rc, nil, "the batch was refused")
	}
	ms := s.matches[:n]
	out = out[:n]
	for i := range out {
		out[i].setFrom(&ms[i])
	}
	return nil
}

// ---- route tables -----------------------------------------------------------

// RouteTable is an immutable, compiled set of rules. Matching is lock-free
// and allocation-free in the library, and safe for concurrent use. Create
// one with [NewRouteTable], use it directly or publish it to a [Router],
// and release it with Close (a router it was published to keeps its own
// reference).
type RouteTable struct {
	g       guard
	h       *C.tg_route_table
	rules   int
	scratch scratchCache
}

// NewRouteTable compiles rules; a rule's VenueSet indexes venueSets, each
// of which the table keeps alive (the VenueSet objects may be closed
// afterwards). Every error is a *BuildError naming the offending rule, if
// any: malformed patterns, hosts, methods or header predicates, a venue set
// index out of range, or duplicates (two rules matching the same requests
// with the same priority, parameter names aside).
func NewRouteTable(rules []Rule, venueSets []*VenueSet) (*RouteTable, error) {
	if err := CheckVersion(); err != nil {
		return nil, &BuildError{RuleIndex: -1, Err: err.(*Error)}
	}
	if len(rules) > MaxRules {
		return nil, buildErr(-1, ErrRange, "%d rules; a route table holds at most %d", len(rules), MaxRules)
	}
	// Go-side checks: what C strings cannot carry, and what the library's
	// encoding of a rule would silently change.
	for i := range rules {
		if err := checkRule(i, &rules[i], len(venueSets)); err != nil {
			return nil, err
		}
	}
	for i, vs := range venueSets {
		if vs == nil {
			return nil, buildErr(-1, ErrInvalid, "venueSets[%d] is nil", i)
		}
	}
	for i, vs := range venueSets {
		if err := vs.enter(); err != nil {
			for _, prev := range venueSets[:i] {
				prev.leave()
			}
			return nil, buildErr(-1, ErrInvalid, "venueSets[%d] is closed", i)
		}
	}
	defer func() {
		for _, vs := range venueSets {
			vs.leave()
		}
	}()

	// Everything the library reads lives in one C block: the rules, the
	// header predicates, the venue set handles and the strings.
	ruleSize := int(unsafe.Sizeof(C.tg_route_rule{}))
	predSize := int(unsafe.Sizeof(C.tg_header_predicate{}))
	setSize := int(unsafe.Sizeof((*C.tg_venue_set)(nil)))
	npred, strBytes := 0, 0
	for i := range rules {
		r := &rules[i]
		npred += len(r.Headers)
		strBytes += len(r.Host) + 1 + len(r.Path) + 1
		for _, m := range r.Methods {
			strBytes += len(m) + 1
		}
		for _, h := range r.Headers {
			strBytes += len(h.Name) + 1 + len(h.Value) + 1
		}
	}
	size := len(rules)*ruleSize + npred*predSize + len(venueSets)*setSize + strBytes
	mem := C.calloc(1, C.size_t(max(size, 1)))
	if mem == nil {
		return nil, buildErr(-1, ErrNoMem, "allocating %d bytes for the rules", size)
	}
	defer C.free(mem)
	block := unsafe.Slice((*byte)(mem), max(size, 1))
	at := 0
	var crules []C.tg_route_rule
	if len(rules) > 0 {
		crules = unsafe.Slice((*C.tg_route_rule)(unsafe.Pointer(&block[at])), len(rules))
		at += len(rules) * ruleSize
	}
	var cpreds []C.tg_header_predicate
	if npred > 0 {
		cpreds = unsafe.Slice((*C.tg_header_predicate)(unsafe.Pointer(&block[at])), npred)
		at += npred * predSize
	}
	var csets []*C.tg_venue_set
	if len(venueSets) > 0 {
		csets = unsafe.Slice((**C.tg_venue_set)(unsafe.Pointer(&block[at])), len(venueSets))
		at += len(venueSets) * setSize
		for i, vs := range venueSets {
			csets[i] = vs.h
		}
	}
	str := func(s string) *C.char {
		p := (*C.char)(unsafe.Pointer(&block[at]))
		at += copy(block[at:], s) + 1 // calloc: the NUL is there
		return p
	}
	methods := func(ms []string) *C.char {
		p := (*C.char)(unsafe.Pointer(&block[at]))
		for k, m := range ms {
			if k > 0 {
				block[at] = ','
				at++
			}
			at += copy(block[at:], m)
		}
		at++
		return p
	}
	pi := 0
	for i := range rules {
		r := &rules[i]
		c := &crules[i]
		C.tg_route_rule_init(c)
		c.route_id = C.uint32_t(r.RouteID)
		if len(r.Methods) > 0 {
			c.methods = methods(r.Methods)
		}
		if r.Host != "" {
			c.host = str(r.Host)
		}
		c.path = str(r.Path)
		if r.Prefix {
			c.path_kind = C.TG_PATH_PREFIX
		}
		c.priority = C.int32_t(r.Priority)
		if len(r.Headers) > 0 {
			c.headers = &cpreds[pi]
			c.header_count = C.uint32_t(len(r.Headers))
			for _, h := range r.Headers {
				p := &cpreds[pi]
				pi++
				p.name = str(h.Name)
				if h.Value != "" {
					p.value = str(h.Value)
				}
				p.op = C.int32_t(h.Op)
				if h.Invert {
					p.invert = 1
				}
			}
		}
		c.target = C.uint32_t(r.Target)
		if r.VenueSet != NoVenueSet {
			c.venue_set = C.uint32_t(r.VenueSet)
		}
	}
	var opts C.tg_route_table_options
	C.tg_route_table_options_init(&opts)
	if len(crules) > 0 {
		opts.rules = &crules[0]
		opts.rule_count = C.size_t(len(crules))
	}
	if len(csets) > 0 {
		opts.venue_sets = &csets[0]
		opts.venue_set_count = C.size_t(len(csets))
	}
	var cerr C.tg_error
	var bad C.size_t
	var h *C.tg_route_table
	if rc := C.tg_route_table_new(&opts, &h, &bad, &cerr); rc != C.TG_OK {
		idx := -1
		if uint64(bad) < uint64(len(rules)) {
			idx = int(bad)
		}
		return nil, &BuildError{RuleIndex: idx, Err: statusErr(rc, &cerr, "tg_route_table_new failed").(*Error)}
	}
	return newTableObject(h, len(rules)), nil
}

// checkRule refuses what the C encoding of a rule cannot carry faithfully.
func checkRule(i int, r *Rule, sets int) error {
	nul := func(what, s string) error {
		if strings.IndexByte(s, 0) >= 0 {
			return buildErr(i, ErrInvalid, "rule %d: %s contains a NUL byte", i, what)
		}
		return nil
	}
	if err := nul("path", r.Path); err != nil {
		return err
	}
	if err := nul("host", r.Host); err != nil {
		return err
	}
	for _, m := range r.Methods {
		// The library takes one comma-separated string and trims spaces.
		if m == "" || strings.ContainsAny(m, ", \x00") {
			return buildErr(i, ErrInvalid, "rule %d: method %q is not a 1..32 character token", i, m)
		}
	}
	for k, h := range r.Headers {
		if err := nul(fmt.Sprintf("headers[%d].name", k), h.Name); err != nil {
			return err
		}
		if err := nul(fmt.Sprintf("headers[%d].value", k), h.Value); err != nil {
			return err
		}
	}
	if r.VenueSet != NoVenueSet && (r.VenueSet < 0 || r.VenueSet >= sets) {
		return buildErr(i, ErrInvalid, "rule %d: venue_set %d does not exist (%d venue sets)", i, r.VenueSet, sets)
	}
	return nil
}

func newTableObject(h *C.tg_route_table, rules int) *RouteTable {
	t := &RouteTable{h: h, rules: rules}
	runtime.SetFinalizer(t, (*RouteTable).Close)
	return t
}

// Close releases the table. It is idempotent and safe to call while other
// goroutines use the table: their calls finish, later calls return
// ErrClosed, and the memory goes when the last call returns and no router
// holds the table.
func (t *RouteTable) Close() error {
	if t == nil {
		return nil
	}
	if t.g.close() {
		t.free()
	}
	runtime.SetFinalizer(t, nil)
	return nil
}

func (t *RouteTable) free() {
	C.tg_route_table_free(t.h)
	handlesFreed.Add(1)
}

func (t *RouteTable) enter() error {
	if t == nil {
		return errNil
	}
	if !t.g.enter() {
		t.leave()
		return ErrClosed
	}
	return nil
}

func (t *RouteTable) leave() {
	if t.g.leave() {
		t.free()
	}
}

// Match matches one request. No route is a Match with a Status other than
// RouteMatched, not an error; errors are bad arguments (more than
// MaxRequestHeaders headers, a nil or closed table). Params is allocated
// when the route captured any; MatchMany reuses it.
func (t *RouteTable) Match(req Request) (Match, error) {
	if err := t.enter(); err != nil {
		return Match{}, err
	}
	var c C.tg_route_match
	err := matchOne(t.h, nil, &t.scratch, &req, &c)
	t.leave()
	if err != nil {
		return Match{}, err
	}
	var m Match
	m.setFrom(&c)
	return m, nil
}

// MatchMany matches len(reqs) requests with one call into the library;
// out must have at least len(reqs) entries and receives the matches in
// order. The request bytes are copied into a reused buffer and each
// out[i].Params reuses its backing array, so a warm call does not
// allocate. Arguments are validated first: on error out is unchanged.
func (t *RouteTable) MatchMany(reqs []Request, out []Match) error {
	if err := t.enter(); err != nil {
		return err
	}
	defer t.leave()
	if len(out) < len(reqs) {
		return invalid("len(out) = %d, want at least len(reqs) = %d", len(out), len(reqs))
	}
	if len(reqs) == 0 {
		return nil
	}
	return matchMany(t.h, nil, &t.scratch, reqs, out)
}

// ParamName returns the name of parameter i of rule ruleIndex (the name in
// "{name}"), or an error wrapping ErrRange when there is no such rule or
// parameter.
func (t *RouteTable) ParamName(ruleIndex, i int) (string, error) {
	if err := t.enter(); err != nil {
		return "", err
	}
	defer t.leave()
	if ruleIndex < 0 || ruleIndex >= t.rules || i < 0 || i >= MaxRouteParams {
		return "", &Error{Status: ErrRange, Message: fmt.Sprintf("rule %d has no parameter %d (the table has %d rules)", ruleIndex, i, t.rules)}
	}
	var name *C.char
	var n C.size_t
	rc := C.tg_route_table_param_name(t.h, C.uint32_t(ruleIndex), C.uint32_t(i), &name, &n)
	if rc != C.TG_OK {
		return "", statusErr(rc, nil, fmt.Sprintf("rule %d has no parameter %d", ruleIndex, i))
	}
	return C.GoStringN(name, C.int(n)), nil
}

// ParamNames returns the names of rule ruleIndex's parameters in pattern
// order (the order of Match.Params), or an error wrapping ErrRange when
// there is no such rule.
func (t *RouteTable) ParamNames(ruleIndex int) ([]string, error) {
	if err := t.enter(); err != nil {
		return nil, err
	}
	defer t.leave()
	if ruleIndex < 0 || ruleIndex >= t.rules {
		return nil, &Error{Status: ErrRange, Message: fmt.Sprintf("no rule %d (the table has %d rules)", ruleIndex, t.rules)}
	}
	var names []string
	for i := 0; i < MaxRouteParams; i++ {
		var name *C.char
		var n C.size_t
		if C.tg_route_table_param_name(t.h, C.uint32_t(ruleIndex), C.uint32_t(i), &name, &n) != C.TG_OK {
			break
		}
		names = append(names, C.GoStringN(name, C.int(n)))
	}
	return names, nil
}

// Len returns the number of rules.
func (t *RouteTable) Len() (int, error) {
	if err := t.enter(); err != nil {
		return 0, err
	}
	t.leave()
	return t.rules, nil
}

// ---- router -----------------------------------------------------------------

// Router holds the current route table and replaces it atomically while
// other goroutines keep matching (read-copy-update): each match runs on
// the table current when it started. Its methods are safe for concurrent
// use. Create one with [NewRouter] and release it with Close.
type Router struct {
	g       guard
	h       *C.tg_router
	scratch scratchCache
}

// NewRouter creates a router publishing initial, or an empty table when
// initial is nil. The router keeps the table alive: initial may be closed
// at once.
func NewRouter(initial *RouteTable) (*Router, error) {
	if err := CheckVersion(); err != nil {
		return nil, err
	}
	var th *C.tg_route_table
	if initial != nil {
		if err := initial.enter(); err != nil {
			return nil, invalid("the initial route table is closed")
		}
		defer initial.leave()
		th = initial.h
	}
	var cerr C.tg_error
	var h *C.tg_router
	if rc := C.tg_router_new(th, &h, &cerr); rc != C.TG_OK {
		return nil, statusErr(rc, &cerr, "tg_router_new failed")
	}
	r := &Router{h: h}
	runtime.SetFinalizer(r, (*Router).Close)
	return r, nil
}

// Close releases the router (and its reference to the current table). It
// is idempotent and safe to call while other goroutines use the router:
// their calls finish, later calls return ErrClosed.
func (r *Router) Close() error {
	if r == nil {
		return nil
	}
	if r.g.close() {
		r.free()
	}
	runtime.SetFinalizer(r, nil)
	return nil
}

func (r *Router) free() {
	C.tg_router_free(r.h)
	handlesFreed.Add(1)
}

func (r *Router) enter() error {
	if r == nil {
		return errNil
	}
	if !r.g.enter() {
		r.leave()
		return ErrClosed
	}
	return nil
}

func (r *Router) leave() {
	if r.g.leave() {
		r.free()
	}
}

// Publish makes t the current table for every match that starts after it
// returns. It returns once no goroutine can still be matching against the
// table it replaced, which it then releases. Publications are serialised.
// The router keeps t alive: t may be closed afterwards.
func (r *Router) Publish(t *RouteTable) error {
	if err := r.enter(); err != nil {
		return err
	}
	defer r.leave()
	if t == nil {
		return invalid("cannot publish a nil route table")
	}
	if err := t.enter(); err != nil {
		return invalid("cannot publish a closed route table")
	}
	defer t.leave()
	var cerr C.tg_error
	if rc := C.tg_router_publish(r.h, t.h, &cerr); rc != C.TG_OK {
		return statusErr(rc, &cerr, "tg_router_publish failed")
	}
	return nil
}

// Match matches one request against the current table, as
// RouteTable.Match. Match.RuleIndex refers to that table: take parameter
// names from a table known to be the one matched (see Current).
func (r *Router) Match(req Request) (Match, error) {
	if err := r.enter(); err != nil {
		return Match{}, err
	}
	var c C.tg_route_match
	err := matchOne(nil, r.h, &r.scratch, &req, &c)
	r.leave()
	if err != nil {
		return Match{}, err
	}
	var m Match
	m.setFrom(&c)
	return m, nil
}

// MatchMany matches every request of reqs against one table, the one
// current when the call started, as RouteTable.MatchMany.
func (r *Router) MatchMany(reqs []Request, out []Match) error {
	if err := r.enter(); err != nil {
		return err
	}
	defer r.leave()
	if len(out) < len(reqs) {
		return invalid("len(out) = %d, want at least len(reqs) = %d", len(out), len(reqs))
	}
	if len(reqs) == 0 {
		return nil
	}
	return matchMany(nil, r.h, &r.scratch, reqs, out)
}

// RouteDecision is the outcome of Router.Route: the match and, when the
// matched route names a venue set, the venue picked from it.
type RouteDecision struct {
	Match Match
	// Venue.OK is false when the request did not match, the route names no
	// venue set (Reason VenueReasonNone) or no venue is eligible.
	Venue VenuePick
}

// Route matches req and, when the route names a venue set, picks a venue
// from it as VenueSet.Pick(key, nonce, nowNs) would, on one table.
func (r *Router) Route(req Request, key []byte, nonce, nowNs uint64) (RouteDecision, error) {
	if err := r.enter(); err != nil {
		return RouteDecision{}, err
	}
	if err := checkHeaders(&req, "the request"); err != nil {
		r.leave()
		return RouteDecision{}, err
	}
	var c C.tg_route_decision
	var rc C.int
	if len(req.Headers) == 0 {
		rc = C.tg_go_route(r.h, cstrPtr(req.Method), C.size_t(len(req.Method)), cstrPtr(req.Host),
			C.size_t(len(req.Host)), cstrPtr(req.Path), C.size_t(len(req.Path)),
			(*C.uint8_t)(unsafe.Pointer(&oneByte[0])), &oneHdr[0], 0,
			bytesPtr(key), C.size_t(len(key)), C.uint64_t(nonce), C.uint64_t(nowNs), &c)
	} else {
		if uint64(headerBytes(req.Headers)) > math.MaxUint32 {
			r.leave()
			return RouteDecision{}, &Error{Status: ErrRange, Message: "the headers of a request must total less than 4 GiB"}
		}
		s := r.scratch.get()
		s.bytes, s.hdrs = s.bytes[:0], s.hdrs[:0]
		s.packHeaders(req.Headers)
		rc = C.tg_go_route(r.h, cstrPtr(req.Method), C.size_t(len(req.Method)), cstrPtr(req.Host),
			C.size_t(len(req.Host)), cstrPtr(req.Path), C.size_t(len(req.Path)),
			bytesPtrOr(s.bytes), &s.hdrs[0], C.size_t(len(s.hdrs)),
			bytesPtr(key), C.size_t(len(key)), C.uint64_t(nonce), C.uint64_t(nowNs), &c)
		r.scratch.put(s)
	}
	r.leave()
	if rc != C.TG_OK {
		return RouteDecision{}, statusErr(rc, nil, "tg_router_route failed")
	}
	var d RouteDecision
	d.Match.setFrom(&c.match)
	d.Venue.setFrom(&c.venue)
	return d, nil
}

// Version returns how many tables were published after the initial one.
func (r *Router) Version() (uint64, error) {
	if err := r.enter(); err != nil {
		return 0, err
	}
	var v C.uint64_t
	rc := C.tg_router_version(r.h, &v)
	r.leave()
	if rc != C.TG_OK {
		return 0, statusErr(rc, nil, "tg_router_version failed")
	}
	return uint64(v), nil
}

// Current returns a new reference to the current table; Close it when
// done.
func (r *Router) Current() (*RouteTable, error) {
	if err := r.enter(); err != nil {
		return nil, err
	}
	var h *C.tg_route_table
	rc := C.tg_router_current(r.h, &h)
	r.leave()
	if rc != C.TG_OK {
		return nil, statusErr(rc, nil, "tg_router_current failed")
	}
	var n C.size_t
	if rc := C.tg_route_table_rule_count(h, &n); rc != C.TG_OK {
		C.tg_route_table_free(h)
		return nil, statusErr(rc, nil, "tg_route_table_rule_count failed")
	}
	return newTableObject(h, int(n)), nil
}

// ---- path normalisation -----------------------------------------------------

// PathError is the error of [NormalizePath] for a path that normalisation
// refuses; Reason says why, as a match of that path would.
type PathError struct {
	Reason RouteStatus
	Err    *Error
}

// Error implements error.
func (e *PathError) Error() string { return e.Err.Error() }

// Unwrap returns the *Error (whose Status is ErrInvalid).
func (e *PathError) Unwrap() error { return e.Err }

// NormalizePath returns the normal form the router matches a path in: "/"
// and the decoded segments joined by "/", "." and ".." resolved, bytes
// outside RFC 3986's pchar set escaped as %XX (upper-case hex), the query
// and fragment dropped. Forward it upstream so the upstream sees exactly
// what was matched. A refused path gives a *PathError.
func NormalizePath(path string) (string, error) {
	var stack [256]byte
	buf := stack[:]
	for attempt := 0; ; attempt++ {
		var written C.size_t
		var status C.int
		rc := C.tg_path_normalize(cstrPtr(path), C.size_t(len(path)), (*C.char)(unsafe.Pointer(&buf[0])),
			C.size_t(len(buf)), &written, &status)
		switch {
		case rc == C.TG_OK:
			return string(buf[:written]), nil
		case rc == C.TG_ETOOSMALL && attempt < 2 && uint64(written) > uint64(len(buf)):
			buf = make([]byte, int(written))
		case rc == C.TG_EINVAL && status != C.TG_ROUTE_MATCHED:
			reason := RouteStatus(status)
			return "", &PathError{Reason: reason, Err: &Error{Status: ErrInvalid, Message: "path refused: " + reason.String()}}
		default:
			return "", statusErr(rc, nil, "tg_path_normalize failed")
		}
	}
}

// ---- venue sets ---------------------------------------------------------------

// VenueStrategy is how a [VenueSet] chooses among eligible venues.
type VenueStrategy uint32

const (
	// VenueWeighted picks one eligible venue at random in proportion to its
	// weight.
	VenueWeighted VenueStrategy = 0
	// VenueLeastLatency draws two that way and takes the one with the lower
	// latency EWMA (power of two choices); a venue with no sample yet counts
	// as 0 ns.
	VenueLeastLatency VenueStrategy = 1
)

var (
	_ = [1]struct{}{}[int(VenueWeighted)-C.TG_VENUE_WEIGHTED]
	_ = [1]struct{}{}[int(VenueLeastLatency)-C.TG_VENUE_LEAST_LATENCY]
)

// String returns a short lower-case name of the strategy.
func (s VenueStrategy) String() string {
	switch s {
	case VenueWeighted:
		return "weighted"
	case VenueLeastLatency:
		return "least-latency"
	}
	return "VenueStrategy(" + strconv.FormatUint(uint64(s), 10) + ")"
}

// Venue is one venue of a [VenueSet].
type Venue struct {
	// ID is the host's id, unique in the set; sticky picks hash it, so keep
	// it stable.
	ID uint32
	// Weight is 1..1000000 (0 is refused).
	Weight uint32
	// Breaker, optional, guards the venue: the venue is skipped while the
	// breaker would reject a call. The set keeps the breaker alive, so it
	// may be closed before the set.
	Breaker *Breaker
}

// VenueSetOptions configures [NewVenueSet].
type VenueSetOptions struct {
	// Strategy is VenueWeighted (default) or VenueLeastLatency.
	Strategy VenueStrategy
	// Sticky makes picks with a non-empty key use weighted rendezvous
	// hashing on (Seed, key, venue ID): a key keeps its venue while that
	// venue is eligible, and when a venue leaves only its keys move.
	Sticky bool
	// Seed seeds every random choice (a hash of Seed and the nonce).
	Seed uint64
	// LatencyAlpha is the EWMA weight of the newest latency sample, in
	// (0, 1]. 0: 0.2.
	LatencyAlpha float64
	// LatencyDecayNs is the idle time constant of the latency estimate:
	// it decays as e^(-idle/LatencyDecayNs) while a venue gets no samples,
	// so a venue that was slow is tried again instead of being starved
	// (with two venues both are always compared). 0: 10 s.
	LatencyDecayNs uint64
	// NoLatencyDecay keeps the estimate of an idle venue as it was.
	NoLatencyDecay bool
	// Venues are the venues, 1..64 of them.
	Venues []Venue
}

// VenueReason says why a pick found no venue.
type VenueReason int32

const (
	// VenueReasonNone: a venue was picked (or, in a RouteDecision, the
	// route names no venue set).
	VenueReasonNone VenueReason = 0
	// VenueAllOpen: every venue's breaker rejects now; RetryAfterNs says
	// until when.
	VenueAllOpen VenueReason = 1
	// VenueAllDown: every venue is disabled or forced open.
	VenueAllDown VenueReason = 2
	// VenueNoSet: Route matched no route, or one that names no venue set.
	VenueNoSet VenueReason = 3
)

var (
	_ = [1]struct{}{}[int(VenueReasonNone)-C.TG_VENUE_OK]
	_ = [1]struct{}{}[int(VenueAllOpen)-C.TG_VENUE_ALL_OPEN]
	_ = [1]struct{}{}[int(VenueAllDown)-C.TG_VENUE_ALL_DOWN]
	_ = [1]struct{}{}[int(VenueNoSet)-C.TG_VENUE_NO_SET]
)

// String returns a short lower-case name of the reason.
func (r VenueReason) String() string {
	switch r {
	case VenueReasonNone:
		return "none"
	case VenueAllOpen:
		return "all-open"
	case VenueAllDown:
		return "all-down"
	case VenueNoSet:
		return "no-venue-set"
	}
	return "VenueReason(" + strconv.Itoa(int(r)) + ")"
}

// VenuePick is the outcome of a pick. No eligible venue is a normal
// outcome (OK false), not an error.
type VenuePick struct {
	// OK is true when Index and VenueID name the venue.
	OK bool
	// Reason is VenueReasonNone when OK.
	Reason VenueReason
	// Index is the venue's position in the set, VenueID its id.
	Index   int
	VenueID uint32
	// Alternative is, for VenueLeastLatency, the other candidate; else Index.
	Alternative int
	// Eligible has bit i set when venue i was eligible: journal it with the
	// nonce to replay the pick with Choose.
	Eligible uint64
	// RetryAfterNs, when !OK, is the time until a breaker admits again, or
	// RetryNever.
	RetryAfterNs uint64
}

func (p *VenuePick) setFrom(c *C.tg_venue_pick) {
	p.OK = c.ok != 0
	p.Reason = VenueReason(c.reason)
	p.Index = int(c.index)
	p.VenueID = uint32(c.venue_id)
	p.Alternative = int(c.alternative)
	p.Eligible = uint64(c.eligible)
	p.RetryAfterNs = uint64(c.retry_after_ns)
}

// VenueStats describe one venue of a set.
type VenueStats struct {
	VenueID uint32
	Weight  uint32
	Enabled bool
	// ReadyInNs is the time until the venue's breaker would admit: 0 now,
	// RetryNever never (forced open).
	ReadyInNs uint64
	// LatencyEWMANs is the latency EWMA in ns, -1 before the first sample.
	LatencyEWMANs float64
	// LatencySamples counts the samples recorded.
	LatencySamples uint64
}

// VenueSet chooses the venue a request goes to among up to 64 venues. Its
// methods are safe for concurrent use; Pick is lock-free and
// allocation-free in the library. Create one with [NewVenueSet] and release
// it with Close; route tables built with it keep their own reference.
type VenueSet struct {
	g guard
	h *C.tg_venue_set
	n int
}

// NewVenueSet creates a venue set. Invalid options give an error wrapping
// ErrInvalid, ErrRange or ErrVersion with the library's explanation.
func NewVenueSet(o VenueSetOptions) (*VenueSet, error) {
	if err := CheckVersion(); err != nil {
		return nil, err
	}
	n := len(o.Venues)
	if n > 1<<16 {
		return nil, &Error{Status: ErrRange, Message: fmt.Sprintf("%d venues; a venue set holds at most 64", n)}
	}
	var opts C.tg_venue_set_options
	C.tg_venue_set_options_init(&opts)
	opts.strategy = C.uint32_t(o.Strategy)
	if o.Sticky {
		opts.sticky = 1
	}
	opts.seed = C.uint64_t(o.Seed)
	if o.LatencyAlpha != 0 {
		opts.latency_alpha = C.double(o.LatencyAlpha)
	}
	switch {
	case o.NoLatencyDecay:
		opts.latency_decay_ns = 0
	case o.LatencyDecayNs != 0:
		opts.latency_decay_ns = C.uint64_t(o.LatencyDecayNs)
	}
	if n > 0 {
		// The venue array holds pointers, so it lives in C memory.
		mem := C.calloc(C.size_t(n), C.size_t(unsafe.Sizeof(C.tg_venue{})))
		if mem == nil {
			return nil, &Error{Status: ErrNoMem, Message: "allocating venues"}
		}
		defer C.free(mem)
		cv := unsafe.Slice((*C.tg_venue)(mem), n)
		for i, v := range o.Venues {
			cv[i].venue_id = C.uint32_t(v.ID)
			cv[i].weight = C.uint32_t(v.Weight)
			if v.Breaker != nil {
				if err := v.Breaker.enter(); err != nil {
					return nil, invalid("venues[%d].Breaker is closed", i)
				}
				defer v.Breaker.leave()
				cv[i].breaker = v.Breaker.h
			}
		}
		opts.venues = &cv[0]
		opts.venue_count = C.uint32_t(n)
	}
	var cerr C.tg_error
	var h *C.tg_venue_set
	if rc := C.tg_venue_set_new(&opts, &h, &cerr); rc != C.TG_OK {
		return nil, statusErr(rc, &cerr, "tg_venue_set_new failed")
	}
	s := &VenueSet{h: h, n: n}
	runtime.SetFinalizer(s, (*VenueSet).Close)
	return s, nil
}

// Close releases the set. It is idempotent and safe to call while other
// goroutines use the set; route tables holding the set keep it alive.
func (s *VenueSet) Close() error {
	if s == nil {
		return nil
	}
	if s.g.close() {
		s.free()
	}
	runtime.SetFinalizer(s, nil)
	return nil
}

func (s *VenueSet) free() {
	C.tg_venue_set_free(s.h)
	handlesFreed.Add(1)
}

func (s *VenueSet) enter() error {
	if s == nil {
		return errNil
	}
	if !s.g.enter() {
		s.leave()
		return ErrClosed
	}
	return nil
}

func (s *VenueSet) leave() {
	if s.g.leave() {
		s.free()
	}
}

func (s *VenueSet) index(i int) (C.uint32_t, error) {
	if i < 0 || i >= s.n {
		return 0, &Error{Status: ErrRange, Message: fmt.Sprintf("venue %d out of range (the set has %d)", i, s.n)}
	}
	return C.uint32_t(i), nil
}

// Pick picks a venue for a request at nowNs. key (may be empty) makes the
// pick sticky when the set is; nonce (an order sequence number, say) seeds
// the random choice, so the pick can be replayed with Choose.
func (s *VenueSet) Pick(key []byte, nonce, nowNs uint64) (VenuePick, error) {
	if err := s.enter(); err != nil {
		return VenuePick{}, err
	}
	var c C.tg_venue_pick
	rc := C.tg_go_venue_pick(s.h, bytesPtr(key), C.size_t(len(key)), C.uint64_t(nonce), C.uint64_t(nowNs), &c)
	s.leave()
	if rc != C.TG_OK {
		return VenuePick{}, statusErr(rc, nil, "tg_venue_set_pick failed")
	}
	var p VenuePick
	p.setFrom(&c)
	return p, nil
}

// Choose is the pure part of Pick, for replay: the venue key and nonce get
// among the venues in eligible (bits beyond the set's size are ignored).
// With a journalled VenuePick.Eligible it gives the journalled venue (for
// VenueLeastLatency, as long as the two candidates' EWMAs compare the
// same).
func (s *VenueSet) Choose(key []byte, nonce, eligible uint64) (VenuePick, error) {
	if err := s.enter(); err != nil {
		return VenuePick{}, err
	}
	var c C.tg_venue_pick
	rc := C.tg_go_venue_choose(s.h, bytesPtr(key), C.size_t(len(key)), C.uint64_t(nonce), C.uint64_t(eligible), &c)
	s.leave()
	if rc != C.TG_OK {
		return VenuePick{}, statusErr(rc, nil, "tg_venue_set_choose failed")
	}
	var p VenuePick
	p.setFrom(&c)
	return p, nil
}

// RecordLatency feeds one completion latency of venue i, observed at
// nowNs, into its estimate: the EWMA decayed to nowNs plus LatencyAlpha
// times the difference.
func (s *VenueSet) RecordLatency(i int, ns, nowNs uint64) error {
	if err := s.enter(); err != nil {
		return err
	}
	idx, err := s.index(i)
	if err != nil {
		s.leave()
		return err
	}
	rc := C.tg_venue_set_record_latency(s.h, idx, C.uint64_t(ns), C.uint64_t(nowNs))
	s.leave()
	if rc != C.TG_OK {
		return statusErr(rc, nil, fmt.Sprintf("venue %d out of range", i))
	}
	return nil
}

// SetEnabled takes venue i out of selection (on false) or puts it back,
// for every pick that starts after it returns.
func (s *VenueSet) SetEnabled(i int, on bool) error {
	if err := s.enter(); err != nil {
		return err
	}
	idx, err := s.index(i)
	if err != nil {
		s.leave()
		return err
	}
	v := C.int(0)
	if on {
		v = 1
	}
	rc := C.tg_venue_set_set_enabled(s.h, idx, v)
	s.leave()
	if rc != C.TG_OK {
		return statusErr(rc, nil, fmt.Sprintf("venue %d out of range", i))
	}
	return nil
}

// Stats describes venue i, its breaker judged at nowNs.
func (s *VenueSet) Stats(i int, nowNs uint64) (VenueStats, error) {
	if err := s.enter(); err != nil {
		return VenueStats{}, err
	}
	idx, err := s.index(i)
	if err != nil {
		s.leave()
		return VenueStats{}, err
	}
	var c C.tg_venue_stats
	rc := C.tg_venue_set_stats(s.h, idx, C.uint64_t(nowNs), &c)
	s.leave()
	if rc != C.TG_OK {
		return VenueStats{}, statusErr(rc, nil, fmt.Sprintf("venue %d out of range", i))
	}
	return VenueStats{
		VenueID:        uint32(c.venue_id),
		Weight:         uint32(c.weight),
		Enabled:        c.enabled != 0,
		ReadyInNs:      uint64(c.ready_in_ns),
		LatencyEWMANs:  float64(c.latency_ewma_ns),
		LatencySamples: uint64(c.latency_samples),
	}, nil
}

// Len returns the number of venues.
func (s *VenueSet) Len() (int, error) {
	if err := s.enter(); err != nil {
		return 0, err
	}
	s.leave()
	return s.n, nil
}
