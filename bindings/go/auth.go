package tollgate

/*
#include <stdint.h>
#include <stdlib.h>
#include <tollgate/tollgate.h>

// tg_auth_message holds a tg_header array, and cgo forbids passing Go
// memory that holds Go pointers. The method, target, body, digest and
// Authorization strings are therefore direct arguments (pointers to their
// bytes, not copied); the headers are copied into one byte buffer described
// by offsets, and these wrappers build the tg_header array and the message
// on the C stack (in malloc'd memory beyond TG_GO_AUTH_STACK_HEADERS
// headers). Verification and signing never call back into Go, so their
// results may point at the Go stack (#cgo noescape). The changes (keys,
// revocations) may call the event callback, which runs Go code, so they get
// no pointer to a Go stack variable: their errors come back by value.

typedef struct tg_go_auth_hdr {
  uint32_t name_off, name_len, value_off, value_len;
} tg_go_auth_hdr;

#define TG_GO_AUTH_STACK_HEADERS 64

static inline const char* tg_go_auth_at(const uint8_t* b, uint32_t off, uint32_t len) {
  return len == 0 ? NULL : (const char*)b + off;
}

// Fills *m; *heap is the header array to free (NULL when on the stack).
static int tg_go_auth_message(tg_auth_message* m, tg_header* stack, tg_header** heap,
                              const char* method, size_t method_len, const char* target,
                              size_t target_len, const uint8_t* hb, const tg_go_auth_hdr* hd,
                              size_t hc, const uint8_t* body, size_t body_len,
                              const uint8_t* digest) {
  tg_header* hv = stack;
  *heap = NULL;
  if (hc > TG_GO_AUTH_STACK_HEADERS) {
    if (hc > SIZE_MAX / sizeof *hv) return TG_ENOMEM;
    hv = (tg_header*)malloc(hc * sizeof *hv);
    if (hv == NULL) return TG_ENOMEM;
    *heap = hv;
  }
  for (size_t i = 0; i < hc; ++i) {
    hv[i].name = tg_go_auth_at(hb, hd[i].name_off, hd[i].name_len);
    hv[i].name_len = hd[i].name_len;
    hv[i].value = tg_go_auth_at(hb, hd[i].value_off, hd[i].value_len);
    hv[i].value_len = hd[i].value_len;
  }
  m->method = method;
  m->method_len = method_len;
  m->target = target;
  m->target_len = target_len;
  m->headers = hc != 0 ? hv : NULL;
  m->header_count = hc;
  m->body = body;
  m->body_len = body_len;
  m->body_sha256 = digest;
  return TG_OK;
}

static int tg_go_auth_verify(tg_authenticator* a, const char* method, size_t method_len,
                             const char* target, size_t target_len, const uint8_t* hb,
                             const tg_go_auth_hdr* hd, size_t hc, const uint8_t* body,
                             size_t body_len, const uint8_t* digest, const char* authz,
                             size_t authz_len, uint64_t now_ns, tg_auth_result* out) {
  tg_header stack[TG_GO_AUTH_STACK_HEADERS];
  tg_header* heap;
  tg_auth_message m;
  int rc = tg_go_auth_message(&m, stack, &heap, method, method_len, target, target_len, hb, hd,
                              hc, body, body_len, digest);
  if (rc != TG_OK) return rc;
  rc = tg_auth_verify(a, &m, authz, authz_len, now_ns, out);
  free(heap);
  return rc;
}

// tg_auth_sign (sign != 0) or tg_auth_canonical_request.
static int tg_go_auth_client(int sign, const char* method, size_t method_len, const char* target,
                             size_t target_len, const uint8_t* hb, const tg_go_auth_hdr* hd,
                             size_t hc, const uint8_t* body, size_t body_len,
                             const uint8_t* digest, const char* key_id, size_t key_id_len,
                             const char* token, size_t token_len, const char* nonce,
                             size_t nonce_len, const char* signed_headers,
                             size_t signed_headers_len, uint64_t timestamp_ns,
                             const uint8_t* secret, size_t secret_len, char* out, size_t cap,
                             size_t* written, tg_error* err) {
  tg_header stack[TG_GO_AUTH_STACK_HEADERS];
  tg_header* heap;
  tg_auth_message m;
  tg_auth_params p;
  int rc = tg_go_auth_message(&m, stack, &heap, method, method_len, target, target_len, hb, hd,
                              hc, body, body_len, digest);
  if (rc != TG_OK) return rc;
  p.key_id = key_id;
  p.key_id_len = key_id_len;
  p.token = token;
  p.token_len = token_len;
  p.nonce = nonce;
  p.nonce_len = nonce_len;
  p.signed_headers = signed_headers;
  p.signed_headers_len = signed_headers_len;
  p.timestamp_ns = timestamp_ns;
  rc = sign ? tg_auth_sign(&m, &p, secret, secret_len, out, cap, written, err)
            : tg_auth_canonical_request(&m, &p, out, cap, written, err);
  free(heap);
  return rc;
}

typedef struct tg_go_auth_change {
  int rc;
  tg_error err;
} tg_go_auth_change;

static inline void tg_go_auth_change_init(tg_go_auth_change* r) {
  r->rc = TG_OK;
  r->err.code = TG_OK;
  r->err.message[0] = '\0';
}

static inline tg_go_auth_change tg_go_auth_add_key(tg_authenticator* a, const char* id,
                                                   size_t id_len, const uint8_t* secret,
                                                   size_t secret_len, uint64_t not_before_ns,
                                                   uint64_t not_after_ns, uint64_t now_ns) {
  tg_go_auth_change r;
  tg_go_auth_change_init(&r);
  r.rc = tg_auth_add_key(a, id, id_len, secret, secret_len, not_before_ns, not_after_ns, now_ns,
                         &r.err);
  return r;
}

static inline tg_go_auth_change tg_go_auth_remove_key(tg_authenticator* a, const char* id,
                                                      size_t id_len, uint64_t now_ns) {
  tg_go_auth_change r;
  tg_go_auth_change_init(&r);
  r.rc = tg_auth_remove_key(a, id, id_len, now_ns, &r.err);
  return r;
}

static inline tg_go_auth_change tg_go_auth_revoke(tg_authenticator* a, int kind, const char* id,
                                                  size_t id_len, int revoked, uint64_t now_ns) {
  tg_go_auth_change r;
  tg_go_auth_change_init(&r);
  r.rc = tg_auth_revoke(a, kind, id, id_len, revoked, now_ns, &r.err);
  return r;
}

// The lists are n_keys then n_tokens spans of b (offset, length pairs).
static tg_go_auth_change tg_go_auth_replace(tg_authenticator* a, uint64_t version,
                                            const uint8_t* b, const uint32_t* spans,
                                            size_t n_keys, size_t n_tokens, uint64_t now_ns) {
  enum { stack_ids = 32 };
  tg_str ss[stack_ids];
  tg_str* s = ss;
  size_t n = n_keys + n_tokens;
  tg_go_auth_change r;
  tg_go_auth_change_init(&r);
  if (n > stack_ids) {
    if (n > SIZE_MAX / sizeof *s) {
      r.rc = TG_ENOMEM;
      return r;
    }
    s = (tg_str*)malloc(n * sizeof *s);
    if (s == NULL) {
      r.rc = TG_ENOMEM;
      return r;
    }
  }
  for (size_t i = 0; i < n; ++i) {
    s[i].data = tg_go_auth_at(b, spans[2 * i], spans[2 * i + 1]);
    s[i].len = spans[2 * i + 1];
  }
  r.rc = tg_auth_replace_revocations(a, version, n_keys != 0 ? s : NULL, n_keys,
                                     n_tokens != 0 ? s + n_keys : NULL, n_tokens, now_ns, &r.err);
  if (s != ss) free(s);
  return r;
}

#cgo noescape tg_auth_options_init
#cgo noescape tg_authenticator_new
#cgo noescape tg_go_auth_verify
#cgo noescape tg_go_auth_client
#cgo noescape tg_auth_revocation_version
#cgo noescape tg_auth_stats_get
#cgo noescape tg_hmac_sha256
#cgo nocallback tg_auth_options_init
#cgo nocallback tg_authenticator_new
#cgo nocallback tg_authenticator_free
#cgo nocallback tg_go_auth_verify
#cgo nocallback tg_go_auth_client
#cgo nocallback tg_auth_revocation_version
#cgo nocallback tg_auth_stats_get
#cgo nocallback tg_auth_reason_name
#cgo nocallback tg_auth_detail_name
#cgo nocallback tg_hmac_sha256
*/
import "C"

import (
	"crypto/rand"
	"math"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// AuthReason is the outcome of [Authenticator.Verify] (append-only, as the
// C ABI's TG_AUTH_* codes). The checks run in the order below the first
// two, and the first failure decides.
type AuthReason int32

const (
	// AuthOK: the request is authentic and its nonce was not seen before.
	AuthOK AuthReason = 0
	// AuthMalformed: the Authorization header does not parse, or the
	// request cannot be canonicalised; AuthResult.Detail says what.
	AuthMalformed AuthReason = 1
	// AuthUnknownKey: no key has the request's key id.
	AuthUnknownKey AuthReason = 2
	// AuthExpiredKey: nowNs is outside the key's [notBefore, notAfter).
	AuthExpiredKey AuthReason = 3
	// AuthBadSignature: the MAC differs (compared in constant time).
	AuthBadSignature AuthReason = 4
	// AuthSkew: the timestamp is more than MaxSkewNs ahead of nowNs, or
	// more than MaxSkewNs behind the latest nowNs the authenticator saw.
	AuthSkew AuthReason = 5
	// AuthReplay: this (key id, nonce) was accepted within the window.
	AuthReplay AuthReason = 6
	// AuthRevokedKey: the key id is revoked.
	AuthRevokedKey AuthReason = 7
	// AuthRevokedToken: the request's token id is revoked.
	AuthRevokedToken AuthReason = 8
	// AuthNonceCapacity: the nonce cache is full of nonces still inside
	// their window, so the request is refused rather than risk a replay.
	AuthNonceCapacity AuthReason = 9
)

var (
	_ = [1]struct{}{}[int(AuthOK)-C.TG_AUTH_OK]
	_ = [1]struct{}{}[int(AuthMalformed)-C.TG_AUTH_MALFORMED]
	_ = [1]struct{}{}[int(AuthUnknownKey)-C.TG_AUTH_UNKNOWN_KEY]
	_ = [1]struct{}{}[int(AuthExpiredKey)-C.TG_AUTH_EXPIRED_KEY]
	_ = [1]struct{}{}[int(AuthBadSignature)-C.TG_AUTH_BAD_SIGNATURE]
	_ = [1]struct{}{}[int(AuthSkew)-C.TG_AUTH_SKEW]
	_ = [1]struct{}{}[int(AuthReplay)-C.TG_AUTH_REPLAY]
	_ = [1]struct{}{}[int(AuthRevokedKey)-C.TG_AUTH_REVOKED_KEY]
	_ = [1]struct{}{}[int(AuthRevokedToken)-C.TG_AUTH_REVOKED_TOKEN]
	_ = [1]struct{}{}[int(AuthNonceCapacity)-C.TG_AUTH_NONCE_CAPACITY]
	// AuthStats.Results has one counter per slot of the C array.
	_ = [1]struct{}{}[len(AuthStats{}.Results)-len(C.tg_auth_stats{}.results)]
)

// String returns the library's lower-case name of the reason, such as
// "bad_signature" ("none" for AuthOK), or "AuthReason(n)" for one the
// loaded library does not know.
func (r AuthReason) String() string {
	name := C.GoString(C.tg_auth_reason_name(C.int(r)))
	if name == "unknown" {
		return "AuthReason(" + strconv.Itoa(int(r)) + ")"
	}
	return name
}

// AuthDetail says what was malformed when the reason is AuthMalformed (0
// otherwise). The C ABI names details (String) but gives them no
// constants, so compare names: d.String() == "missing_header".
type AuthDetail int32

// String returns the library's name of the detail, such as
// "missing_header" ("none" for 0), or "AuthDetail(n)" for one the loaded
// library does not know.
func (d AuthDetail) String() string {
	name := C.GoString(C.tg_auth_detail_name(C.int(d)))
	if name == "unknown" {
		return "AuthDetail(" + strconv.Itoa(int(d)) + ")"
	}
	return name
}

// AuthOptions configures [NewAuthenticator]; it mirrors tg_auth_options.
// The zero value of a field means the library's default, which
// [DefaultAuthOptions] shows.
type AuthOptions struct {
	// MaxSkewNs is how far a request's timestamp may lie from nowNs, either
	// way, and how long a nonce is remembered: 1 ns .. 24 h. 0: 30 s.
	MaxSkewNs uint64
	// NonceCapacity is the number of nonces inside the window the cache
	// holds (in 16 shards of NonceCapacity/16), 16..2^26. 0: 2^18 (64 B each).
	NonceCapacity uint64
	// Seed seeds nonce hashing. 0: the library's default seed.
	Seed uint64
}

// DefaultAuthOptions returns the library's defaults, every field set (Seed
// 0 stands for the library's default seed).
func DefaultAuthOptions() AuthOptions {
	var c C.tg_auth_options
	C.tg_auth_options_init(&c)
	return AuthOptions{
		MaxSkewNs:     uint64(c.max_skew_ns),
		NonceCapacity: uint64(c.nonce_capacity),
		Seed:          uint64(c.seed),
	}
}

// AuthMessage is the request to sign or verify. Nothing is kept after the
// call.
type AuthMessage struct {
	// Method is the request method, 1..16 upper-case letters ("POST").
	Method string
	// Target is the path with an optional "?query", as sent
	// ("/v1/orders?account=A1"); the signature covers its normal form.
	Target string
	// Headers are the request's headers; names are compared without case
	// and only those the signature names (SignedHeaders) are read.
	Headers []Header
	// Body is the request body; ignored when BodySHA256 is set.
	Body []byte
	// BodySHA256, when not nil, is the body's SHA-256 (for a host that
	// hashed the body while streaming it).
	BodySHA256 *[32]byte
}

// AuthParams are what a client puts in the Authorization header
// (SignRequest, CanonicalRequest).
type AuthParams struct {
	// KeyID names the secret: 1..64 of [A-Za-z0-9._-].
	KeyID string
	// Token is an optional token (session) id that can be revoked on its
	// own: empty, or 1..128 of [A-Za-z0-9._-].
	Token string
	// Nonce is unique per request, 8..64 of [A-Za-z0-9._~-]; see
	// [AuthParams.Stamped] and [NewAuthNonce].
	Nonce string
	// SignedHeaders are the lower-case names of the signed headers, sorted
	// and ';'-separated ("content-type;host"), at most 16; empty for none.
	SignedHeaders string
	// TimestampNs is the wall-clock Unix time of the request in ns.
	TimestampNs uint64
}

// NewAuthNonce returns a fresh random nonce from crypto/rand: 26
// characters of the base32 alphabet (130 bits), inside the nonce alphabet.
func NewAuthNonce() string { return rand.Text() }

// Stamped returns p with a fresh nonce ([NewAuthNonce]) when p.Nonce is
// empty and the current wall-clock time when p.TimestampNs is 0, so one
// AuthParams value can serve as a template for every request.
func (p AuthParams) Stamped() AuthParams {
	if p.Nonce == "" {
		p.Nonce = NewAuthNonce()
	}
	if p.TimestampNs == 0 {
		p.TimestampNs = uint64(time.Now().UnixNano())
	}
	return p
}

// AuthResult is what Verify decided. KeyID, Token and Nonce are substrings
// of the authorization argument (no copy), set as far as the header parsed.
type AuthResult struct {
	// Reason is AuthOK when the request is authentic, else the first check
	// that failed.
	Reason AuthReason
	// Detail says what was malformed (AuthMalformed only).
	Detail AuthDetail
	// TimestampNs is the request's timestamp (0 if it did not parse).
	TimestampNs uint64
	// KeyID, Token and Nonce are the header's fields.
	KeyID, Token, Nonce string
}

// OK says whether the request is authentic.
func (r AuthResult) OK() bool { return r.Reason == AuthOK }

// AuthEventKind is the kind of an [AuthEvent].
type AuthEventKind int32

// The kinds of change, numbered as tg_auth_event.kind.
const (
	AuthKeyAdded            AuthEventKind = 0
	AuthKeyRemoved          AuthEventKind = 1
	AuthKeyRevoked          AuthEventKind = 2
	AuthTokenRevoked        AuthEventKind = 3
	AuthKeyReinstated       AuthEventKind = 4
	AuthTokenReinstated     AuthEventKind = 5
	AuthRevocationsReplaced AuthEventKind = 6
)

// String returns a lower-case name of the kind, such as "key_revoked".
func (k AuthEventKind) String() string {
	switch k {
	case AuthKeyAdded:
		return "key_added"
	case AuthKeyRemoved:
		return "key_removed"
	case AuthKeyRevoked:
		return "key_revoked"
	case AuthTokenRevoked:
		return "token_revoked"
	case AuthKeyReinstated:
		return "key_reinstated"
	case AuthTokenReinstated:
		return "token_reinstated"
	case AuthRevocationsReplaced:
		return "revocations_replaced"
	}
	return "AuthEventKind(" + strconv.Itoa(int(k)) + ")"
}

// AuthEvent is a key or revocation change, passed to the SetEventCallback
// callback.
type AuthEvent struct {
	Kind AuthEventKind
	// ID is the key or token id; empty for AuthRevocationsReplaced.
	ID string
	// RevocationVersion is the revocation version after the change.
	RevocationVersion uint64
	// NowNs is the nowNs of the call that made the change.
	NowNs uint64
}

// AuthStats are an Authenticator's counters, read one by one (not one
// atomic snapshot).
type AuthStats struct {
	// Results counts verifications by reason: Results[AuthOK] is the number
	// verified, Results[AuthReplay] the replays refused. Slots of reasons
	// that do not exist are 0.
	Results [16]uint64
	// Keys is the number of keys held.
	Keys uint64
	// RevokedKeys and RevokedTokens are the sizes of the revocation lists.
	RevokedKeys, RevokedTokens uint64
	// RevocationVersion is the current revocation version.
	RevocationVersion uint64
}

// Authenticator verifies HMAC-SHA256 request signatures: key rotation by
// validity intervals, a clock-skew window, replay protection by a bounded
// nonce cache that fails closed, and revocation of key and token ids that
// is effective for every verification starting after the call returns, on
// any goroutine. All methods are safe for concurrent use; Verify does not
// allocate once warm (the headers are copied into a reused buffer). Create
// one with [NewAuthenticator] and release it with Close.
//
// Times (nowNs, TimestampNs, key intervals) are wall-clock Unix
// nanoseconds, the clock clients stamp requests with:
// uint64(time.Now().UnixNano()), not [NowNs].
type Authenticator struct {
	g       guard
	h       *C.tg_authenticator
	sink    atomic.Pointer[authEventSink]
	scratch atomic.Pointer[authScratch]
	mu      sync.Mutex // serialises SetEventCallback
}

// NewAuthenticator creates an authenticator with no keys. Invalid options
// give an error wrapping ErrRange or ErrVersion with the library's
// explanation; ErrState means the library could not load its crypto
// (BoringSSL).
func NewAuthenticator(o AuthOptions) (*Authenticator, error) {
	if err := CheckVersion(); err != nil {
		return nil, err
	}
	var c C.tg_auth_options
	C.tg_auth_options_init(&c)
	if o.MaxSkewNs != 0 {
		c.max_skew_ns = C.uint64_t(o.MaxSkewNs)
	}
	if o.NonceCapacity != 0 {
		c.nonce_capacity = C.uint64_t(o.NonceCapacity)
	}
	c.seed = C.uint64_t(o.Seed)
	var cerr C.tg_error
	var h *C.tg_authenticator
	if rc := C.tg_authenticator_new(&c, &h, &cerr); rc != C.TG_OK {
		return nil, statusErr(rc, &cerr, "tg_authenticator_new failed")
	}
	a := &Authenticator{h: h}
	runtime.SetFinalizer(a, (*Authenticator).Close)
	return a, nil
}

// Close releases the authenticator. It is idempotent and safe to call
// while other goroutines (or the event callback) use it: their calls
// finish, later calls return ErrClosed, and the memory goes when the last
// call returns.
func (a *Authenticator) Close() error {
	if a == nil {
		return nil
	}
	if a.g.close() {
		a.free()
	}
	runtime.SetFinalizer(a, nil)
	return nil
}

func (a *Authenticator) free() {
	C.tg_authenticator_free(a.h)
	if s := a.sink.Load(); s != nil {
		s.handle.Delete()
	}
	handlesFreed.Add(1)
}

func (a *Authenticator) enter() error {
	if a == nil {
		return errNil
	}
	if !a.g.enter() {
		a.leave()
		return ErrClosed
	}
	return nil
}

func (a *Authenticator) leave() {
	if a.g.leave() {
		a.free()
	}
}

// rethrow re-raises, in the goroutine whose call caused it, a panic of the
// event callback; it was recovered before unwinding through C frames.
func (a *Authenticator) rethrow() {
	if s := a.sink.Load(); s != nil {
		if v := s.pending.Swap(nil); v != nil {
			panic(v.v)
		}
	}
}

// changeErr turns the result of a change into an error.
func changeErr(r C.tg_go_auth_change, what string) error {
	if r.rc == C.TG_OK {
		return nil
	}
	cerr := r.err
	return statusErr(r.rc, &cerr, what)
}

// AddKey adds (or replaces) the key keyID with secret (1..1024 bytes),
// valid for nowNs in [notBeforeNs, notAfterNs): two keys with overlapping
// intervals rotate without downtime. The library precomputes the HMAC state
// and keeps no copy of the secret. Errors: ErrInvalid for a key id that is
// not 1..64 of [A-Za-z0-9._-], a bad secret length or an empty interval;
// ErrState when called from this authenticator's event callback; a nil or
// closed authenticator.
func (a *Authenticator) AddKey(keyID string, secret []byte, notBeforeNs, notAfterNs, nowNs uint64) error {
	if err := a.enter(); err != nil {
		return err
	}
	r := C.tg_go_auth_add_key(a.h, cstrPtr(keyID), C.size_t(len(keyID)), bytesPtr(secret),
		C.size_t(len(secret)), C.uint64_t(notBeforeNs), C.uint64_t(notAfterNs), C.uint64_t(nowNs))
	a.leave()
	a.rethrow()
	return changeErr(r, "tg_auth_add_key failed")
}

// RemoveKey removes a key. Errors: ErrNotFound when there is no such key,
// and those of AddKey.
func (a *Authenticator) RemoveKey(keyID string, nowNs uint64) error {
	if err := a.enter(); err != nil {
		return err
	}
	r := C.tg_go_auth_remove_key(a.h, cstrPtr(keyID), C.size_t(len(keyID)), C.uint64_t(nowNs))
	a.leave()
	a.rethrow()
	return changeErr(r, "tg_auth_remove_key failed")
}

func (a *Authenticator) revoke(kind C.int, id string, on bool, nowNs uint64) error {
	if err := a.enter(); err != nil {
		return err
	}
	revoked := C.int(0)
	if on {
		revoked = 1
	}
	r := C.tg_go_auth_revoke(a.h, kind, cstrPtr(id), C.size_t(len(id)), revoked, C.uint64_t(nowNs))
	a.leave()
	a.rethrow()
	return changeErr(r, "tg_auth_revoke failed")
}

// RevokeKey revokes a key id (which need not name a key yet): no request
// signed with it verifies once RevokeKey returns, on any goroutine. Each
// change increments the revocation version; revoking a revoked id is no
// change and no event. Errors: ErrInvalid for an id that is not 1..64 of
// [A-Za-z0-9._-]; ErrState when called from this authenticator's event
// callback; a nil or closed authenticator.
func (a *Authenticator) RevokeKey(keyID string, nowNs uint64) error {
	return a.revoke(C.TG_AUTH_KEY, keyID, true, nowNs)
}

// UnrevokeKey reinstates a revoked key id, as RevokeKey revokes one.
func (a *Authenticator) UnrevokeKey(keyID string, nowNs uint64) error {
	return a.revoke(C.TG_AUTH_KEY, keyID, false, nowNs)
}

// RevokeToken revokes a token id (1..128 of [A-Za-z0-9._-]): no request
// carrying it verifies once RevokeToken returns. As RevokeKey otherwise.
func (a *Authenticator) RevokeToken(token string, nowNs uint64) error {
	return a.revoke(C.TG_AUTH_TOKEN, token, true, nowNs)
}

// UnrevokeToken reinstates a revoked token id.
func (a *Authenticator) UnrevokeToken(token string, nowNs uint64) error {
	return a.revoke(C.TG_AUTH_TOKEN, token, false, nowNs)
}

// ReplaceRevocations replaces both revocation lists at once by the lists
// at version, which must be newer than the current RevocationVersion: an
// older or equal version is ErrState and changes nothing (a stale list
// never overwrites a newer one). Errors also: ErrInvalid for a bad id
// (nothing changes); ErrState when called from this authenticator's event
// callback; a nil or closed authenticator.
func (a *Authenticator) ReplaceRevocations(version uint64, keyIDs, tokens []string, nowNs uint64) error {
	if err := a.enter(); err != nil {
		return err
	}
	total := 0
	for _, s := range keyIDs {
		total += len(s)
	}
	for _, s := range tokens {
		total += len(s)
	}
	if uint64(total) > math.MaxUint32 {
		a.leave()
		return &Error{Status: ErrRange, Message: "the ids of one list must total less than 4 GiB"}
	}
	b := make([]byte, 0, total)
	spans := make([]uint32, 0, 2*(len(keyIDs)+len(tokens)))
	for _, list := range [][]string{keyIDs, tokens} {
		for _, s := range list {
			spans = append(spans, uint32(len(b)), uint32(len(s)))
			b = append(b, s...)
		}
	}
	var sp *C.uint32_t
	if len(spans) != 0 {
		sp = (*C.uint32_t)(unsafe.Pointer(&spans[0]))
	}
	r := C.tg_go_auth_replace(a.h, C.uint64_t(version), bytesPtr(b), sp, C.size_t(len(keyIDs)),
		C.size_t(len(tokens)), C.uint64_t(nowNs))
	a.leave()
	a.rethrow()
	return changeErr(r, "tg_auth_replace_revocations failed")
}

// RevocationVersion returns the current revocation version: 0 at first,
// incremented by every revocation change, set by ReplaceRevocations.
func (a *Authenticator) RevocationVersion() (uint64, error) {
	if err := a.enter(); err != nil {
		return 0, err
	}
	var v C.uint64_t
	rc := C.tg_auth_revocation_version(a.h, &v)
	a.leave()
	if rc != C.TG_OK {
		return 0, statusErr(rc, nil, "tg_auth_revocation_version failed")
	}
	return uint64(v), nil
}

// Stats returns the authenticator's counters.
func (a *Authenticator) Stats() (AuthStats, error) {
	if err := a.enter(); err != nil {
		return AuthStats{}, err
	}
	var s C.tg_auth_stats
	rc := C.tg_auth_stats_get(a.h, &s)
	a.leave()
	if rc != C.TG_OK {
		return AuthStats{}, statusErr(rc, nil, "tg_auth_stats_get failed")
	}
	out := AuthStats{
		Keys:              uint64(s.keys),
		RevokedKeys:       uint64(s.revoked_keys),
		RevokedTokens:     uint64(s.revoked_tokens),
		RevocationVersion: uint64(s.revocation_version),
	}
	for i := range out.Results {
		out.Results[i] = uint64(s.results[i])
	}
	return out, nil
}

// ---- messages across cgo ----------------------------------------------------

// authScratch holds a message's headers packed for C: their bytes and
// (offset, length) descriptors. Neither holds a Go pointer.
type authScratch struct {
	bytes []byte
	hdrs  []C.tg_go_auth_hdr
}

var authScratchPool = sync.Pool{New: func() any { return new(authScratch) }}

func (a *Authenticator) getScratch() *authScratch {
	if s := a.scratch.Swap(nil); s != nil {
		return s
	}
	return authScratchPool.Get().(*authScratch)
}

func (a *Authenticator) putScratch(s *authScratch) {
	if cap(s.bytes) > maxCachedScratch || cap(s.hdrs) > maxCachedScratch/16 {
		return
	}
	if !a.scratch.CompareAndSwap(nil, s) {
		authScratchPool.Put(s)
	}
}

// pack copies hs into s.
func (s *authScratch) pack(hs []Header) error {
	total := 0
	for _, h := range hs {
		total += len(h.Name) + len(h.Value)
	}
	if uint64(total) > math.MaxUint32 {
		return &Error{Status: ErrRange, Message: "the headers of a request must total less than 4 GiB"}
	}
	if cap(s.bytes) < total {
		s.bytes = make([]byte, 0, total)
	}
	if cap(s.hdrs) < len(hs) {
		s.hdrs = make([]C.tg_go_auth_hdr, 0, len(hs))
	}
	b, d := s.bytes[:0], s.hdrs[:0]
	for _, h := range hs {
		d = append(d, C.tg_go_auth_hdr{
			name_off: C.uint32_t(len(b)), name_len: C.uint32_t(len(h.Name)),
			value_off: C.uint32_t(len(b) + len(h.Name)), value_len: C.uint32_t(len(h.Value)),
		})
		b = append(b, h.Name...)
		b = append(b, h.Value...)
	}
	s.bytes, s.hdrs = b, d
	return nil
}

// headers returns the C view of the packed headers (nil when none).
func (s *authScratch) headers() (*C.uint8_t, *C.tg_go_auth_hdr, C.size_t) {
	if len(s.hdrs) == 0 {
		return nil, nil, 0
	}
	return bytesPtr(s.bytes), &s.hdrs[0], C.size_t(len(s.hdrs))
}

func digestPtr(d *[32]byte) *C.uint8_t {
	if d == nil {
		return nil
	}
	return (*C.uint8_t)(unsafe.Pointer(&d[0]))
}

// substr returns s[off:off+n], or "" when that is empty or out of range.
func substr(s string, off, n C.uint32_t) string {
	o, l := int(off), int(n)
	if l == 0 || o > len(s) || l > len(s)-o {
		return ""
	}
	return s[o : o+l]
}

// Verify checks a request against the value of its Authorization header at
// nowNs (wall-clock Unix ns): the header parses, the timestamp is inside
// the skew window, the key is not revoked, known and valid now, the token
// is not revoked, the request canonicalises and the MAC matches (in
// constant time), then the nonce was not accepted before and the cache can
// remember it. A failure is an AuthResult with a Reason, not an error; only
// an accepted request's nonce is remembered. Errors: a nil or closed
// authenticator (nothing is counted). Verify does not allocate once warm.
func (a *Authenticator) Verify(msg AuthMessage, authorization string, nowNs uint64) (AuthResult, error) {
	if err := a.enter(); err != nil {
		return AuthResult{}, err
	}
	var s *authScratch
	var hb *C.uint8_t
	var hd *C.tg_go_auth_hdr
	var hc C.size_t
	if len(msg.Headers) != 0 {
		s = a.getScratch()
		if err := s.pack(msg.Headers); err != nil {
			a.putScratch(s)
			a.leave()
			return AuthResult{}, err
		}
		hb, hd, hc = s.headers()
	}
	var r C.tg_auth_result
	rc := C.tg_go_auth_verify(a.h, cstrPtr(msg.Method), C.size_t(len(msg.Method)),
		cstrPtr(msg.Target), C.size_t(len(msg.Target)), hb, hd, hc,
		bytesPtr(msg.Body), C.size_t(len(msg.Body)), digestPtr(msg.BodySHA256),
		cstrPtr(authorization), C.size_t(len(authorization)), C.uint64_t(nowNs), &r)
	a.leave()
	if s != nil {
		a.putScratch(s)
	}
	if rc != C.TG_OK {
		return AuthResult{}, statusErr(rc, nil, "tg_auth_verify refused the call")
	}
	return AuthResult{
		Reason:      AuthReason(r.reason),
		Detail:      AuthDetail(r.detail),
		TimestampNs: uint64(r.timestamp_ns),
		KeyID:       substr(authorization, r.key_id_offset, r.key_id_len),
		Token:       substr(authorization, r.token_offset, r.token_len),
		Nonce:       substr(authorization, r.nonce_offset, r.nonce_len),
	}, nil
}

// clientSide runs tg_auth_sign (sign) or tg_auth_canonical_request.
func clientSide(sign bool, msg *AuthMessage, p *AuthParams, secret []byte) (string, error) {
	if err := CheckVersion(); err != nil {
		return "", err
	}
	var hb *C.uint8_t
	var hd *C.tg_go_auth_hdr
	var hc C.size_t
	if len(msg.Headers) != 0 {
		s := authScratchPool.Get().(*authScratch)
		defer authScratchPool.Put(s)
		if err := s.pack(msg.Headers); err != nil {
			return "", err
		}
		hb, hd, hc = s.headers()
	}
	what := "tg_auth_canonical_request failed"
	op := C.int(0)
	if sign {
		what, op = "tg_auth_sign failed", 1
	}
	var stack [512]byte
	out := stack[:]
	for {
		var written C.size_t
		var cerr C.tg_error
		rc := C.tg_go_auth_client(op, cstrPtr(msg.Method), C.size_t(len(msg.Method)),
			cstrPtr(msg.Target), C.size_t(len(msg.Target)), hb, hd, hc,
			bytesPtr(msg.Body), C.size_t(len(msg.Body)), digestPtr(msg.BodySHA256),
			cstrPtr(p.KeyID), C.size_t(len(p.KeyID)), cstrPtr(p.Token), C.size_t(len(p.Token)),
			cstrPtr(p.Nonce), C.size_t(len(p.Nonce)), cstrPtr(p.SignedHeaders),
			C.size_t(len(p.SignedHeaders)), C.uint64_t(p.TimestampNs),
			bytesPtr(secret), C.size_t(len(secret)),
			(*C.char)(unsafe.Pointer(&out[0])), C.size_t(len(out)), &written, &cerr)
		switch {
		case rc == C.TG_OK:
			return string(out[:written]), nil
		case rc == C.TG_ETOOSMALL && int(written) >= len(out):
			out = make([]byte, int(written)+1)
		default:
			e := cerr // a copy, so that only a failure moves it to the heap
			return "", statusErr(rc, &e, what)
		}
	}
}

// SignRequest returns the Authorization header value for msg signed with
// secret (1..1024 bytes) under params, exactly as given (see
// [AuthParams.Stamped] for a fresh nonce and timestamp). A request that
// cannot be signed is ErrInvalid and the message names what ("cannot sign:
// bad_nonce"), with the same names as AuthResult.Detail.
func SignRequest(msg AuthMessage, params AuthParams, secret []byte) (string, error) {
	return clientSide(true, &msg, &params, secret)
}

// CanonicalRequest returns the string SignRequest signs (for debugging and
// test vectors). Errors as SignRequest's.
func CanonicalRequest(msg AuthMessage, params AuthParams) (string, error) {
	return clientSide(false, &msg, &params, nil)
}

// HMACSHA256 returns HMAC-SHA256(key, msg), computed by the library. An
// empty key or message is allowed. Errors: ErrState when the library could
// not load its crypto.
func HMACSHA256(key, msg []byte) ([32]byte, error) {
	var out [32]byte
	rc := C.tg_hmac_sha256(unsafe.Pointer(bytesPtr(key)), C.size_t(len(key)),
		unsafe.Pointer(bytesPtr(msg)), C.size_t(len(msg)), (*C.uint8_t)(unsafe.Pointer(&out[0])))
	if rc != C.TG_OK {
		return [32]byte{}, statusErr(rc, nil, "tg_hmac_sha256 failed")
	}
	return out, nil
}

// ---- net/http ---------------------------------------------------------------

// httpAuthMessage describes req and body as they travel: the Host header
// from req.Host (or req.URL.Host), which net/http keeps out of req.Header,
// then every value of every other header.
func httpAuthMessage(req *http.Request, body []byte) AuthMessage {
	hs := make([]Header, 0, len(req.Header)+1)
	host := req.Host
	if host == "" && req.URL != nil {
		host = req.URL.Host
	}
	if host != "" {
		hs = append(hs, Header{Name: "Host", Value: host})
	}
	for name, values := range req.Header {
		if strings.EqualFold(name, "Host") {
			continue // net/http does not send it
		}
		for _, v := range values {
			hs = append(hs, Header{Name: name, Value: v})
		}
	}
	m := AuthMessage{Method: req.Method, Headers: hs, Body: body}
	if m.Method == "" {
		m.Method = http.MethodGet
	}
	switch {
	case strings.HasPrefix(req.RequestURI, "/"):
		m.Target = req.RequestURI // a server's request: the target as received
	case req.URL != nil:
		m.Target = req.URL.RequestURI() // what a client sends
	}
	return m
}

// SignHTTPRequest signs req, whose body is body (req.Body is not read), and
// sets its Authorization header. params is stamped first
// ([AuthParams.Stamped]): leave Nonce and TimestampNs zero for a fresh nonce
// and the current time. "host" in SignedHeaders signs req.Host (or
// req.URL.Host). Errors as SignRequest's; on error req is unchanged.
func SignHTTPRequest(req *http.Request, body []byte, params AuthParams, secret []byte) error {
	if req == nil {
		return invalid("req is nil")
	}
	m := httpAuthMessage(req, body)
	v, err := SignRequest(m, params.Stamped(), secret)
	if err != nil {
		return err
	}
	if req.Header == nil {
		req.Header = make(http.Header)
	}
	req.Header.Set("Authorization", v)
	return nil
}

// VerifyHTTP verifies a request received by a net/http server, whose body
// the handler read into body, at nowNs (wall-clock Unix ns). Several
// Authorization headers are joined with ", " as HTTP combines fields, which
// never parses. Errors as Verify's; VerifyHTTP allocates (it collects the
// headers).
func (a *Authenticator) VerifyHTTP(req *http.Request, body []byte, nowNs uint64) (AuthResult, error) {
	if req == nil {
		if a == nil {
			return AuthResult{}, errNil
		}
		return AuthResult{}, invalid("req is nil")
	}
	var authz string
	switch vs := req.Header.Values("Authorization"); len(vs) {
	case 0:
	case 1:
		authz = vs[0]
	default:
		authz = strings.Join(vs, ", ")
	}
	return a.Verify(httpAuthMessage(req, body), authz, nowNs)
}
