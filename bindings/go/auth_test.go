package tollgate

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The cases of tests/capi/test_auth.c through the binding, with the same
// expected values (the shared vectors, every reason, revocation, events,
// re-entry), and the binding's own: net/http signing and verification over
// a real connection, revocation racing goroutines, the nonce cache failing
// closed, every malformed detail reachable from Go, misuse, allocations.

// authT0 is a wall-clock time (Unix ns), as clients stamp requests.
const authT0 uint64 = 1_700_000_000 * second

const authVectorsPath = "../../tests/vectors/auth_vectors.txt"

// testSecret is the C tests' simple_secret.
var testSecret = []byte("secret-for-tests")

func newAuth(t testing.TB, o AuthOptions) *Authenticator {
	t.Helper()
	a, err := NewAuthenticator(o)
	if err != nil {
		t.Fatalf("NewAuthenticator(%+v): %v", o, err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

func addKey(t testing.TB, a *Authenticator, id string, secret []byte, from, to, now uint64) {
	t.Helper()
	if err := a.AddKey(id, secret, from, to, now); err != nil {
		t.Fatalf("AddKey(%q): %v", id, err)
	}
}

// simpleMsg is the C tests' request: GET /x, no headers, no body.
var simpleMsg = AuthMessage{Method: "GET", Target: "/x"}

func signSimple(t testing.TB, key, token, nonce string, ts uint64) string {
	t.Helper()
	h, err := SignRequest(simpleMsg, AuthParams{KeyID: key, Token: token, Nonce: nonce, TimestampNs: ts}, testSecret)
	if err != nil {
		t.Fatalf("SignRequest(%s, %s): %v", key, nonce, err)
	}
	return h
}

func verify(t testing.TB, a *Authenticator, msg AuthMessage, authz string, now uint64) AuthResult {
	t.Helper()
	r, err := a.Verify(msg, authz, now)
	if err != nil {
		t.Fatalf("Verify(%q): %v", authz, err)
	}
	return r
}

func verifySimple(t testing.TB, a *Authenticator, authz string, now uint64) AuthReason {
	t.Helper()
	return verify(t, a, simpleMsg, authz, now).Reason
}

func wantReason(t testing.TB, got, want AuthReason, what string) {
	t.Helper()
	if got != want {
		t.Errorf("%s: %v, want %v", what, got, want)
	}
}

func authStats(t testing.TB, a *Authenticator) AuthStats {
	t.Helper()
	s, err := a.Stats()
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	return s
}

// ---- the shared vectors -------------------------------------------------------

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	if s == "-" {
		return nil
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// vectorHeaders parses "-" or name(hex):value(hex) pairs joined by ','.
func vectorHeaders(t testing.TB, s string) []Header {
	t.Helper()
	if s == "-" {
		return nil
	}
	var hs []Header
	for _, item := range strings.Split(s, ",") {
		name, value, ok := strings.Cut(item, ":")
		if !ok {
			t.Fatalf("bad header %q", item)
		}
		h := Header{Name: string(unhex(t, name))}
		if value != "" {
			h.Value = string(unhex(t, value))
		}
		hs = append(hs, h)
	}
	return hs
}

// signVector is a "sign" line of the vectors file.
type signVector struct {
	name          string
	secret        []byte
	msg           AuthMessage
	params        AuthParams
	canonical     string
	authorization string
}

// rejectVector is a "reject" line.
type rejectVector struct {
	name   string
	msg    AuthMessage
	params AuthParams
	detail string
}

type hmacVector struct{ key, msg, mac []byte }

func loadAuthVectors(t testing.TB) ([]hmacVector, []signVector, []rejectVector) {
	t.Helper()
	f, err := os.Open(authVectorsPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var hv []hmacVector
	var sv []signVector
	var rv []rejectVector
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Fields(line)
		ts := func(s string) uint64 {
			v, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				t.Fatalf("bad timestamp in %q", line)
			}
			return v
		}
		switch f[0] {
		case "hmac":
			if len(f) != 4 {
				t.Fatalf("hmac line with %d fields", len(f))
			}
			hv = append(hv, hmacVector{unhex(t, f[1]), unhex(t, f[2]), unhex(t, f[3])})
		case "sign":
			if len(f) != 14 {
				t.Fatalf("sign line with %d fields", len(f))
			}
			sv = append(sv, signVector{
				name:   f[1],
				secret: unhex(t, f[2]),
				msg: AuthMessage{Method: f[3], Target: string(unhex(t, f[4])),
					Headers: vectorHeaders(t, f[5]), Body: unhex(t, f[6])},
				params: AuthParams{KeyID: string(unhex(t, f[7])), Token: string(unhex(t, f[8])),
					TimestampNs: ts(f[9]), Nonce: string(unhex(t, f[10])), SignedHeaders: string(unhex(t, f[11]))},
				canonical:     string(unhex(t, f[12])),
				authorization: string(unhex(t, f[13])),
			})
		case "reject":
			if len(f) != 12 {
				t.Fatalf("reject line with %d fields", len(f))
			}
			rv = append(rv, rejectVector{
				name: f[1],
				msg: AuthMessage{Method: string(unhex(t, f[2])), Target: string(unhex(t, f[3])),
					Headers: vectorHeaders(t, f[4]), Body: unhex(t, f[5])},
				params: AuthParams{KeyID: string(unhex(t, f[6])), Token: string(unhex(t, f[7])),
					TimestampNs: ts(f[8]), Nonce: string(unhex(t, f[9])), SignedHeaders: string(unhex(t, f[10]))},
				detail: f[11],
			})
		default:
			t.Fatalf("unknown vector kind %q", f[0])
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(hv) < 6 || len(sv) < 10 || len(rv) < 13 {
		t.Fatalf("%d hmac, %d sign and %d reject vectors: the file lost some", len(hv), len(sv), len(rv))
	}
	return hv, sv, rv
}

func TestAuthVectors(t *testing.T) {
	hv, sv, rv := loadAuthVectors(t)
	for i, v := range hv {
		got, err := HMACSHA256(v.key, v.msg)
		if err != nil || !bytes.Equal(got[:], v.mac) {
			t.Errorf("hmac vector %d: %x %v, want %x", i, got, err, v.mac)
		}
		m := hmac.New(sha256.New, v.key)
		m.Write(v.msg)
		if !bytes.Equal(m.Sum(nil), v.mac) {
			t.Errorf("hmac vector %d disagrees with crypto/hmac", i)
		}
	}
	for _, v := range sv {
		t.Run("sign/"+v.name, func(t *testing.T) {
			canon, err := CanonicalRequest(v.msg, v.params)
			if err != nil || canon != v.canonical {
				t.Fatalf("CanonicalRequest = %q, %v\nwant %q", canon, err, v.canonical)
			}
			authz, err := SignRequest(v.msg, v.params, v.secret)
			if err != nil || authz != v.authorization {
				t.Fatalf("SignRequest = %q, %v\nwant %q", authz, err, v.authorization)
			}
			// The signature is crypto/hmac's MAC of the canonical form.
			m := hmac.New(sha256.New, v.secret)
			m.Write([]byte(canon))
			if !strings.HasSuffix(authz, "Signature="+hex.EncodeToString(m.Sum(nil))) {
				t.Fatalf("the signature is not HMAC-SHA256(secret, canonical request)")
			}

			// The server accepts it once, then refuses the replay.
			ts := v.params.TimestampNs
			a := newAuth(t, AuthOptions{MaxSkewNs: 30 * second, NonceCapacity: 1024})
			addKey(t, a, v.params.KeyID, v.secret, 0, math.MaxUint64, ts)
			r := verify(t, a, v.msg, authz, ts)
			want := AuthResult{Reason: AuthOK, TimestampNs: ts, KeyID: v.params.KeyID, Token: v.params.Token, Nonce: v.params.Nonce}
			if r != want || !r.OK() {
				t.Fatalf("Verify = %+v, want %+v", r, want)
			}
			wantReason(t, verify(t, a, v.msg, authz, ts).Reason, AuthReplay, "the same request again")

			// One flipped byte of the body or of the target breaks the signature.
			if len(v.msg.Body) > 0 {
				m := v.msg
				m.Body = bytes.Clone(v.msg.Body)
				m.Body[len(m.Body)/2] ^= 1
				wantReason(t, verify(t, a, m, authz, ts).Reason, AuthBadSignature, "a flipped body byte")
			}
			m2 := v.msg
			m2.Target = strings.Replace(v.msg.Target, "/", "/z", 1)
			wantReason(t, verify(t, a, m2, authz, ts).Reason, AuthBadSignature, "another target")

			// A host that hashed the body passes the digest instead.
			b := newAuth(t, AuthOptions{NonceCapacity: 1024})
			addKey(t, b, v.params.KeyID, v.secret, 0, math.MaxUint64, ts)
			digest := sha256.Sum256(v.msg.Body)
			m3 := v.msg
			m3.Body, m3.BodySHA256 = nil, &digest
			if h, err := SignRequest(m3, v.params, v.secret); err != nil || h != authz {
				t.Fatalf("signing with BodySHA256: %q %v", h, err)
			}
			wantReason(t, verify(t, b, m3, authz, ts).Reason, AuthOK, "Verify with BodySHA256")
			m3.Body = []byte("ignored when the digest is given")
			wantReason(t, verify(t, b, m3, authz, ts).Reason, AuthReplay, "Verify with BodySHA256 again")
		})
	}
	for _, v := range rv {
		t.Run("reject/"+v.name, func(t *testing.T) {
			_, err := CanonicalRequest(v.msg, v.params)
			wantStatus(t, err, ErrInvalid, "CanonicalRequest")
			if err == nil || !strings.Contains(err.Error(), v.detail) {
				t.Errorf("CanonicalRequest error %v does not name %s", err, v.detail)
			}
			_, err = SignRequest(v.msg, v.params, []byte("s"))
			wantStatus(t, err, ErrInvalid, "SignRequest")
			if err == nil || !strings.Contains(err.Error(), v.detail) {
				t.Errorf("SignRequest error %v does not name %s", err, v.detail)
			}
			// The server reports the same detail.
			a := newAuth(t, AuthOptions{MaxSkewNs: 30 * second, NonceCapacity: 1024})
			addKey(t, a, "k1", []byte("s"), 0, math.MaxUint64, v.params.TimestampNs)
			sh := ""
			if v.params.SignedHeaders != "" {
				sh = "SignedHeaders=" + v.params.SignedHeaders + ", "
			}
			authz := fmt.Sprintf("TG1-HMAC-SHA256 KeyId=%s, %sTimestamp=%d, Nonce=%s, Signature=%s",
				v.params.KeyID, sh, v.params.TimestampNs, v.params.Nonce, strings.Repeat("0", 64))
			r := verify(t, a, v.msg, authz, v.params.TimestampNs)
			if r.Reason != AuthMalformed || r.Detail.String() != v.detail {
				t.Errorf("Verify = %v/%v, want malformed/%s", r.Reason, r.Detail, v.detail)
			}
		})
	}
	t.Logf("%d hmac, %d sign and %d reject vectors", len(hv), len(sv), len(rv))
}

// Each sign vector as a real HTTP exchange: SignHTTPRequest produces the
// vector's header, net/http carries it to a server, VerifyHTTP accepts it
// once and then refuses the replay; a changed body is a bad signature.
func TestAuthHTTPVectors(t *testing.T) {
	_, sv, _ := loadAuthVectors(t)
	var cur atomic.Pointer[Authenticator]
	var serverNow atomic.Uint64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r, err := cur.Load().VerifyHTTP(req, body, serverNow.Load())
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "%v %v %s", r.Reason, r.Detail, r.KeyID)
	}))
	defer srv.Close()

	send := func(t *testing.T, method, target string, hs []Header, body []byte, authz string) string {
		t.Helper()
		req := newHTTPRequest(t, method, srv.URL+target, hs, body)
		req.Header.Set("Authorization", authz)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return string(out)
	}
	for _, v := range sv {
		t.Run(v.name, func(t *testing.T) {
			a := newAuth(t, AuthOptions{NonceCapacity: 1024})
			addKey(t, a, v.params.KeyID, v.secret, 0, math.MaxUint64, 0)
			cur.Store(a)
			req := newHTTPRequest(t, v.msg.Method, srv.URL+v.msg.Target, v.msg.Headers, v.msg.Body)
			params := v.params
			if err := SignHTTPRequest(req, v.msg.Body, params, v.secret); err != nil {
				t.Fatal(err)
			}
			authz := req.Header.Get("Authorization")
			if params.TimestampNs != 0 {
				serverNow.Store(params.TimestampNs)
				if authz != v.authorization {
					t.Fatalf("SignHTTPRequest set %q\nwant %q", authz, v.authorization)
				}
			} else {
				// Stamped: a zero timestamp means now.
				serverNow.Store(uint64(time.Now().UnixNano()))
				if !strings.Contains(authz, "Nonce="+v.params.Nonce) || strings.Contains(authz, "Timestamp=0,") {
					t.Fatalf("SignHTTPRequest with a zero timestamp set %q", authz)
				}
			}
			want := "none none " + v.params.KeyID
			if got := send(t, v.msg.Method, v.msg.Target, v.msg.Headers, v.msg.Body, authz); got != want {
				t.Fatalf("server: %q, want %q", got, want)
			}
			if got := send(t, v.msg.Method, v.msg.Target, v.msg.Headers, v.msg.Body, authz); got != "replay none "+v.params.KeyID {
				t.Fatalf("server on the replay: %q", got)
			}
			if got := send(t, v.msg.Method, v.msg.Target, v.msg.Headers, append(bytes.Clone(v.msg.Body), 'x'), authz); !strings.HasPrefix(got, "bad_signature") {
				t.Fatalf("server with a changed body: %q", got)
			}
		})
	}

	// Two Authorization headers never verify.
	a := newAuth(t, AuthOptions{NonceCapacity: 1024})
	addKey(t, a, "k1", testSecret, 0, math.MaxUint64, 0)
	cur.Store(a)
	now := uint64(time.Now().UnixNano())
	serverNow.Store(now)
	req := newHTTPRequest(t, "GET", srv.URL+"/x", nil, nil)
	if err := SignHTTPRequest(req, nil, AuthParams{KeyID: "k1", SignedHeaders: "host"}, testSecret); err != nil {
		t.Fatal(err)
	}
	req.Header.Add("Authorization", req.Header.Get("Authorization"))
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(out) != "malformed bad_parameter k1" {
		t.Fatalf("two Authorization headers: %q", out)
	}
}

func newHTTPRequest(t testing.TB, method, url string, hs []Header, body []byte) *http.Request {
	t.Helper()
	var rd io.Reader
	if len(body) > 0 {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hs {
		if strings.EqualFold(h.Name, "host") {
			req.Host = h.Value
		} else {
			req.Header.Add(h.Name, h.Value)
		}
	}
	return req
}

// The net/http helpers without a network: a template's params sign many
// requests (a fresh nonce each), the Host header is signed from req.Host,
// and a refused signature leaves the request unchanged.
func TestAuthHTTPHelpers(t *testing.T) {
	a := newAuth(t, AuthOptions{NonceCapacity: 1024})
	addKey(t, a, "k1", testSecret, 0, math.MaxUint64, 0)
	tmpl := AuthParams{KeyID: "k1", Token: "sess-1", SignedHeaders: "content-type;host"}
	body := []byte(`{"qty":1}`)
	seen := map[string]bool{}
	for i := 0; i < 3; i++ {
		req := httptest.NewRequest("POST", "http://gw.example/v1/orders?b=2&a=1", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		before := uint64(time.Now().UnixNano())
		if err := SignHTTPRequest(req, body, tmpl, testSecret); err != nil {
			t.Fatal(err)
		}
		r, err := a.VerifyHTTP(req, body, uint64(time.Now().UnixNano()))
		if err != nil || !r.OK() || r.Token != "sess-1" || r.TimestampNs < before || seen[r.Nonce] {
			t.Fatalf("request %d: %+v %v", i, r, err)
		}
		seen[r.Nonce] = true
		// The host is signed: another Host is another request.
		req.Host = "evil.example"
		if r, _ := a.VerifyHTTP(req, body, uint64(time.Now().UnixNano())); r.Reason != AuthBadSignature {
			t.Fatalf("another Host: %v", r.Reason)
		}
	}
	// A header to sign that the request lacks: an error, and no Authorization.
	req := httptest.NewRequest("GET", "http://gw.example/x", nil)
	err := SignHTTPRequest(req, nil, AuthParams{KeyID: "k1", SignedHeaders: "x-missing"}, testSecret)
	wantStatus(t, err, ErrInvalid, "SignHTTPRequest without the signed header")
	if err == nil || !strings.Contains(err.Error(), "missing_header") || req.Header.Get("Authorization") != "" {
		t.Fatalf("%v; Authorization %q", err, req.Header.Get("Authorization"))
	}
	// No Authorization header at all.
	if r, err := a.VerifyHTTP(req, nil, authT0); err != nil || r.Reason != AuthMalformed || r.Detail.String() != "missing_authorization" {
		t.Fatalf("no Authorization: %+v %v", r, err)
	}
	wantStatus(t, SignHTTPRequest(nil, nil, tmpl, testSecret), ErrInvalid, "SignHTTPRequest(nil)")
	_, err = a.VerifyHTTP(nil, nil, authT0)
	wantStatus(t, err, ErrInvalid, "VerifyHTTP(nil)")
}

// ---- reasons, rotation, revocation, events --------------------------------

// authLog records events; safe for concurrent use.
type authLog struct {
	mu     sync.Mutex
	events []AuthEvent
}

func (l *authLog) add(e AuthEvent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
}

func (l *authLog) all() []AuthEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]AuthEvent(nil), l.events...)
}

// test_reasons of the C tests, step for step.
func TestAuthReasons(t *testing.T) {
	a := newAuth(t, AuthOptions{MaxSkewNs: 10 * second, NonceCapacity: 64})
	var log authLog
	if err := a.SetEventCallback(log.add); err != nil {
		t.Fatal(err)
	}
	addKey(t, a, "k1", testSecret, authT0-100*second, authT0+100*second, authT0)

	h := signSimple(t, "k1", "", "nonce-c-0001", authT0)
	wantReason(t, verifySimple(t, a, h, authT0), AuthOK, "ok")
	wantReason(t, verifySimple(t, a, h, authT0+1), AuthReplay, "replay")
	h = signSimple(t, "k1", "", "nonce-c-0002", authT0-11*second)
	wantReason(t, verifySimple(t, a, h, authT0), AuthSkew, "11 s old")
	h = signSimple(t, "k1", "", "nonce-c-0003", authT0+11*second)
	wantReason(t, verifySimple(t, a, h, authT0), AuthSkew, "11 s ahead")
	h = signSimple(t, "nokey", "", "nonce-c-0004", authT0)
	wantReason(t, verifySimple(t, a, h, authT0), AuthUnknownKey, "unknown key")
	h = signSimple(t, "k1", "", "nonce-c-0006", authT0+1)
	last := "a"
	if strings.HasSuffix(h, "a") {
		last = "b"
	}
	wantReason(t, verifySimple(t, a, h[:len(h)-1]+last, authT0+1), AuthBadSignature, "a changed signature")
	r := verify(t, a, simpleMsg, "Basic x", authT0)
	if r.Reason != AuthMalformed || r.Detail.String() != "bad_scheme" || r.KeyID != "" {
		t.Errorf("Basic x: %+v", r)
	}

	// Revocation: key and token, versioned lists, events.
	h = signSimple(t, "k1", "tok-1", "nonce-c-0007", authT0+2)
	if err := a.RevokeToken("tok-1", authT0); err != nil {
		t.Fatal(err)
	}
	wantReason(t, verifySimple(t, a, h, authT0+2), AuthRevokedToken, "revoked token")
	if err := a.UnrevokeToken("tok-1", authT0); err != nil {
		t.Fatal(err)
	}
	r = verify(t, a, simpleMsg, h, authT0+2)
	if r.Reason != AuthOK || r.Token != "tok-1" || r.Nonce != "nonce-c-0007" || r.KeyID != "k1" || r.TimestampNs != authT0+2 {
		t.Errorf("reinstated token: %+v", r)
	}
	if err := a.RevokeKey("k1", authT0); err != nil {
		t.Fatal(err)
	}
	h = signSimple(t, "k1", "", "nonce-c-0008", authT0+3)
	wantReason(t, verifySimple(t, a, h, authT0+3), AuthRevokedKey, "revoked key")
	if v, err := a.RevocationVersion(); err != nil || v != 3 {
		t.Fatalf("RevocationVersion = %d %v, want 3", v, err)
	}
	err := a.ReplaceRevocations(3, []string{"k7"}, []string{"t1", "t2"}, authT0)
	wantStatus(t, err, ErrState, "ReplaceRevocations at the current version")
	if err == nil || !strings.Contains(err.Error(), "not newer") {
		t.Errorf("stale list: %v", err)
	}
	if err := a.ReplaceRevocations(7, []string{"k7"}, []string{"t1", "t2"}, authT0); err != nil {
		t.Fatal(err)
	}
	if v, err := a.RevocationVersion(); err != nil || v != 7 {
		t.Fatalf("RevocationVersion = %d %v, want 7", v, err)
	}
	h = signSimple(t, "k1", "", "nonce-c-0009", authT0+4)
	wantReason(t, verifySimple(t, a, h, authT0+4), AuthOK, "k1 no longer in the list")
	h = signSimple(t, "k1", "t2", "nonce-c-0010", authT0+4)
	wantReason(t, verifySimple(t, a, h, authT0+4), AuthRevokedToken, "t2 in the new list")
	// Last: it moves the clock (and the window's lower edge) 100 s ahead.
	h = signSimple(t, "k1", "", "nonce-c-0005", authT0+100*second)
	wantReason(t, verifySimple(t, a, h, authT0+100*second), AuthExpiredKey, "not_after is exclusive")

	want := []AuthEvent{
		{Kind: AuthKeyAdded, ID: "k1", RevocationVersion: 0, NowNs: authT0},
		{Kind: AuthTokenRevoked, ID: "tok-1", RevocationVersion: 1, NowNs: authT0},
		{Kind: AuthTokenReinstated, ID: "tok-1", RevocationVersion: 2, NowNs: authT0},
		{Kind: AuthKeyRevoked, ID: "k1", RevocationVersion: 3, NowNs: authT0},
		{Kind: AuthRevocationsReplaced, ID: "", RevocationVersion: 7, NowNs: authT0},
	}
	if got := log.all(); !slices.Equal(got, want) {
		t.Fatalf("events %+v\nwant %+v", got, want)
	}

	// A callback cannot change its own authenticator; it may verify.
	var inner []error
	var innerVerify AuthResult
	var innerVerifyErr error
	if err := a.SetEventCallback(func(e AuthEvent) {
		log.add(e)
		inner = append(inner,
			a.AddKey("k9", testSecret, 0, math.MaxUint64, 0),
			a.RemoveKey("k1", 0),
			a.RevokeKey("k9", 0),
			a.UnrevokeKey("k7", 0),
			a.RevokeToken("t9", 0),
			a.UnrevokeToken("t1", 0),
			a.ReplaceRevocations(100, nil, nil, 0))
		innerVerify, innerVerifyErr = a.Verify(simpleMsg, "Basic y", authT0+100*second)
	}); err != nil {
		t.Fatal(err)
	}
	if err := a.RemoveKey("k1", authT0); err != nil {
		t.Fatal(err)
	}
	if len(inner) != 7 {
		t.Fatalf("the callback ran %d changes", len(inner))
	}
	for i, err := range inner {
		wantStatus(t, err, ErrState, fmt.Sprintf("change %d inside the callback", i))
	}
	if innerVerifyErr != nil || innerVerify.Reason != AuthMalformed {
		t.Errorf("Verify inside the callback: %+v %v", innerVerify, innerVerifyErr)
	}
	if err := a.SetEventCallback(log.add); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, a.RemoveKey("k1", authT0), ErrNotFound, "RemoveKey of a removed key")
	if v, _ := a.RevocationVersion(); v != 7 {
		t.Fatalf("refused changes moved the version to %d", v)
	}

	s := authStats(t, a)
	wantResults := map[AuthReason]uint64{AuthOK: 3, AuthReplay: 1, AuthSkew: 2, AuthMalformed: 2,
		AuthRevokedKey: 1, AuthRevokedToken: 2, AuthExpiredKey: 1, AuthUnknownKey: 1, AuthBadSignature: 1}
	for reason := AuthReason(0); int(reason) < len(s.Results); reason++ {
		if s.Results[reason] != wantResults[reason] {
			t.Errorf("Results[%v] = %d, want %d", reason, s.Results[reason], wantResults[reason])
		}
	}
	if s.Keys != 0 || s.RevokedKeys != 1 || s.RevokedTokens != 2 || s.RevocationVersion != 7 {
		t.Errorf("stats %+v", s)
	}
	if ev := log.all(); len(ev) != 6 || ev[5] != (AuthEvent{Kind: AuthKeyRemoved, ID: "k1", RevocationVersion: 7, NowNs: authT0}) {
		t.Fatalf("events after the re-entry: %+v", ev)
	}

	// Without a callback nothing is reported; a new one sees later changes.
	if err := a.SetEventCallback(nil); err != nil {
		t.Fatal(err)
	}
	addKey(t, a, "k2", testSecret, 0, math.MaxUint64, authT0)
	if err := a.SetEventCallback(log.add); err != nil {
		t.Fatal(err)
	}
	if err := a.RevokeKey("k2", authT0+5); err != nil {
		t.Fatal(err)
	}
	if err := a.RevokeKey("k2", authT0+6); err != nil { // no change, no event
		t.Fatal(err)
	}
	if ev := log.all(); len(ev) != 7 || ev[6] != (AuthEvent{Kind: AuthKeyRevoked, ID: "k2", RevocationVersion: 8, NowNs: authT0 + 5}) {
		t.Fatalf("events after reinstalling: %+v", ev)
	}
}

// Every malformed detail the Go API can produce (body_digest needs a
// body pointer without bytes, which a Go slice cannot be), from the header
// and from the request.
func TestAuthMalformedDetails(t *testing.T) {
	a := newAuth(t, AuthOptions{NonceCapacity: 64})
	addKey(t, a, "k1", testSecret, 0, math.MaxUint64, 0)
	sig := strings.Repeat("0", 64)
	hdr := func(params string) string { return "TG1-HMAC-SHA256 " + params }
	ok := fmt.Sprintf("KeyId=k1, Timestamp=%d, Nonce=nonce-d-0001, Signature=%s", authT0, sig)
	cases := []struct {
		name   string
		msg    AuthMessage
		authz  string
		detail string
	}{
		{"empty", simpleMsg, "", "missing_authorization"},
		{"scheme", simpleMsg, "TG1-HMAC-SHA512 " + ok, "bad_scheme"},
		{"scheme alone", simpleMsg, "TG1-HMAC-SHA256", "bad_scheme"},
		{"unknown parameter", simpleMsg, hdr(ok + ", Extra=1"), "bad_parameter"},
		{"repeated parameter", simpleMsg, hdr(ok + ", KeyId=k1"), "bad_parameter"},
		{"no '='", simpleMsg, hdr(ok + ", KeyId"), "bad_parameter"},
		{"too long", simpleMsg, hdr(ok + ", Token=" + strings.Repeat("t", 1100)), "bad_parameter"},
		{"no signature", simpleMsg, hdr(fmt.Sprintf("KeyId=k1, Timestamp=%d, Nonce=nonce-d-0001", authT0)), "missing_parameter"},
		{"key id", simpleMsg, hdr(strings.Replace(ok, "KeyId=k1", "KeyId=k/1", 1)), "bad_key_id"},
		{"key id with NUL", simpleMsg, hdr(strings.Replace(ok, "KeyId=k1", "KeyId=k\x001", 1)), "bad_key_id"},
		{"token", simpleMsg, hdr(ok + ", Token=" + strings.Repeat("t", 129)), "bad_token"},
		{"timestamp", simpleMsg, hdr(strings.Replace(ok, "Timestamp=", "Timestamp=-", 1)), "bad_timestamp"},
		{"20-digit timestamp", simpleMsg, hdr(strings.Replace(ok, "Timestamp=", "Timestamp=1", 1)), "bad_timestamp"},
		{"nonce", simpleMsg, hdr(strings.Replace(ok, "nonce-d-0001", "n0nce", 1)), "bad_nonce"},
		{"signature", simpleMsg, hdr(strings.Replace(ok, sig, strings.Repeat("A", 64), 1)), "bad_signature_format"},
		{"signed headers", simpleMsg, hdr(ok + ", SignedHeaders=b;a"), "bad_signed_headers"},
		{"method", AuthMessage{Method: "get", Target: "/x"}, hdr(ok), "bad_method"},
		{"no method", AuthMessage{Target: "/x"}, hdr(ok), "bad_method"},
		{"path", AuthMessage{Method: "GET", Target: "x"}, hdr(ok), "bad_path"},
		{"no target", AuthMessage{Method: "GET"}, hdr(ok), "bad_path"},
		{"query", AuthMessage{Method: "GET", Target: "/x?a=%zz"}, hdr(ok), "bad_query"},
		{"missing header", simpleMsg, hdr(ok + ", SignedHeaders=host"), "missing_header"},
		{"repeated header", AuthMessage{Method: "GET", Target: "/x", Headers: []Header{{"Host", "a"}, {"HOST", "b"}}},
			hdr(ok + ", SignedHeaders=host"), "repeated_header"},
		{"header value", AuthMessage{Method: "GET", Target: "/x", Headers: []Header{{"Host", "a\x00b"}}},
			hdr(ok + ", SignedHeaders=host"), "bad_header_value"},
	}
	for _, c := range cases {
		r := verify(t, a, c.msg, c.authz, authT0)
		if r.Reason != AuthMalformed || r.Detail.String() != c.detail {
			t.Errorf("%s: %v/%v, want malformed/%s", c.name, r.Reason, r.Detail, c.detail)
		}
	}
	// The names the C ABI gives every detail, and nothing beyond them.
	for d, name := range []string{"none", "missing_authorization", "bad_scheme", "bad_parameter",
		"missing_parameter", "bad_key_id", "bad_token", "bad_timestamp", "bad_nonce",
		"bad_signature_format", "bad_signed_headers", "bad_method", "bad_path", "bad_query",
		"missing_header", "repeated_header", "bad_header_value", "body_digest"} {
		if got := AuthDetail(d).String(); got != name {
			t.Errorf("AuthDetail(%d) = %q, want %q", d, got, name)
		}
	}
	if s := authStats(t, a); s.Results[AuthMalformed] != uint64(len(cases)) || s.Results[AuthOK] != 0 {
		t.Errorf("stats %+v", s)
	}
}

func TestAuthNames(t *testing.T) {
	names := []struct{ got, want string }{
		{AuthOK.String(), "none"},
		{AuthMalformed.String(), "malformed"},
		{AuthUnknownKey.String(), "unknown_key"},
		{AuthExpiredKey.String(), "expired_key"},
		{AuthBadSignature.String(), "bad_signature"},
		{AuthSkew.String(), "skew"},
		{AuthReplay.String(), "replay"},
		{AuthRevokedKey.String(), "revoked_key"},
		{AuthRevokedToken.String(), "revoked_token"},
		{AuthNonceCapacity.String(), "nonce_capacity"},
		{AuthReason(10).String(), "AuthReason(10)"},
		{AuthReason(-1).String(), "AuthReason(-1)"},
		{AuthDetail(18).String(), "AuthDetail(18)"},
		{AuthDetail(-1).String(), "AuthDetail(-1)"},
		{AuthKeyAdded.String(), "key_added"},
		{AuthKeyRemoved.String(), "key_removed"},
		{AuthKeyRevoked.String(), "key_revoked"},
		{AuthTokenRevoked.String(), "token_revoked"},
		{AuthKeyReinstated.String(), "key_reinstated"},
		{AuthTokenReinstated.String(), "token_reinstated"},
		{AuthRevocationsReplaced.String(), "revocations_replaced"},
		{AuthEventKind(7).String(), "AuthEventKind(7)"},
	}
	for _, n := range names {
		if n.got != n.want {
			t.Errorf("String() = %q, want %q", n.got, n.want)
		}
	}
}

// Two keys with overlapping intervals: clients move from one to the other
// without a moment where neither verifies.
func TestAuthRotation(t *testing.T) {
	a := newAuth(t, AuthOptions{MaxSkewNs: 30 * second, NonceCapacity: 1024})
	const hour = 3600 * second
	oldSecret, newSecret := []byte("old-secret"), []byte("new-secret")
	addKey(t, a, "key-2024", oldSecret, authT0-hour, authT0+60*second, authT0-hour)
	addKey(t, a, "key-2025", newSecret, authT0, authT0+hour, authT0-hour)
	n := 0
	check := func(key string, secret []byte, at uint64, want AuthReason) {
		t.Helper()
		n++
		h, err := SignRequest(simpleMsg, AuthParams{KeyID: key, Nonce: fmt.Sprintf("nonce-r-%04d", n), TimestampNs: at}, secret)
		if err != nil {
			t.Fatal(err)
		}
		wantReason(t, verifySimple(t, a, h, at), want, fmt.Sprintf("%s at t0%+d s", key, (int64(at)-int64(authT0))/int64(second)))
	}
	check("key-2024", oldSecret, authT0-10*second, AuthOK)
	check("key-2025", newSecret, authT0-10*second, AuthExpiredKey) // not valid yet
	check("key-2024", oldSecret, authT0, AuthOK)                   // both valid
	check("key-2025", newSecret, authT0, AuthOK)
	check("key-2024", oldSecret, authT0+60*second-1, AuthOK)
	check("key-2024", oldSecret, authT0+60*second, AuthExpiredKey) // not_after is exclusive
	check("key-2025", newSecret, authT0+60*second, AuthOK)
	check("key-2025", oldSecret, authT0+61*second, AuthBadSignature) // the wrong secret

	// Adding a key again replaces its secret and interval.
	rotated := []byte("rotated-secret")
	addKey(t, a, "key-2025", rotated, 0, math.MaxUint64, authT0+62*second)
	check("key-2025", newSecret, authT0+62*second, AuthBadSignature)
	check("key-2025", rotated, authT0+62*second, AuthOK)
	if err := a.RemoveKey("key-2024", authT0+63*second); err != nil {
		t.Fatal(err)
	}
	check("key-2024", oldSecret, authT0+63*second, AuthUnknownKey)
	if s := authStats(t, a); s.Keys != 1 || s.Results[AuthOK] != 6 || s.Results[AuthExpiredKey] != 2 {
		t.Fatalf("stats %+v", s)
	}
}

// After RevokeKey, RevokeToken or ReplaceRevocations returns, no
// verification that starts on any goroutine succeeds, while other
// goroutines verify as fast as they can and another churns the key set.
func TestAuthRevocationAcrossGoroutines(t *testing.T) {
	revocations := map[string]struct {
		revoke func(a *Authenticator) error
		want   AuthReason
	}{
		"RevokeKey":          {func(a *Authenticator) error { return a.RevokeKey("k1", authT0) }, AuthRevokedKey},
		"RevokeToken":        {func(a *Authenticator) error { return a.RevokeToken("sess-1", authT0) }, AuthRevokedToken},
		"ReplaceRevocations": {func(a *Authenticator) error { return a.ReplaceRevocations(100, []string{"k0", "k1"}, nil, authT0) }, AuthRevokedKey},
		"RemoveKey":          {func(a *Authenticator) error { return a.RemoveKey("k1", authT0) }, AuthUnknownKey},
	}
	const goroutines, perGoroutine = 3, 1500
	// Requests signed once: each goroutine's own nonces.
	reqs := make([][]string, goroutines)
	for g := range reqs {
		reqs[g] = make([]string, perGoroutine)
		for i := range reqs[g] {
			reqs[g][i] = signSimple(t, "k1", "sess-1", fmt.Sprintf("nonce-g%d-%06d", g, i), authT0)
		}
	}
	for name, rv := range revocations {
		t.Run(name, func(t *testing.T) {
			a := newAuth(t, AuthOptions{NonceCapacity: 1 << 16})
			addKey(t, a, "k1", testSecret, 0, math.MaxUint64, authT0)
			var revoked, stop atomic.Bool
			var okBefore, late, wrong, after atomic.Int64
			var wg sync.WaitGroup
			for g := 0; g < goroutines; g++ {
				wg.Add(1)
				go func(g int) {
					defer wg.Done()
					for i := 0; !stop.Load(); i++ {
						was := revoked.Load()
						r, err := a.Verify(simpleMsg, reqs[g][i%perGoroutine], authT0)
						if err != nil {
							t.Error(err)
							return
						}
						switch {
						case !was && r.Reason == AuthOK:
							okBefore.Add(1)
						case was && r.Reason == AuthOK:
							late.Add(1)
						case was && r.Reason != rv.want:
							wrong.Add(1)
						}
						if was {
							after.Add(1)
						}
					}
				}(g)
			}
			// Key churn on another key, publishing new snapshots throughout.
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; !stop.Load(); i++ {
					id := fmt.Sprint("churn-", i%8)
					if err := a.AddKey(id, testSecret, 0, math.MaxUint64, authT0); err != nil {
						t.Error(err)
						return
					}
					if err := a.RemoveKey(id, authT0); err != nil {
						t.Error(err)
						return
					}
				}
			}()
			deadline := time.Now().Add(10 * time.Second)
			for okBefore.Load() < 200 && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			if err := rv.revoke(a); err != nil {
				t.Fatal(err)
			}
			revoked.Store(true)
			for after.Load() < 600 && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			stop.Store(true)
			wg.Wait()
			if okBefore.Load() == 0 || after.Load() == 0 {
				t.Fatalf("nothing verified before (%d) or after (%d) the revocation", okBefore.Load(), after.Load())
			}
			if late.Load() != 0 || wrong.Load() != 0 {
				t.Fatalf("after %s returned: %d requests verified, %d refused for another reason than %v (of %d)",
					name, late.Load(), wrong.Load(), rv.want, after.Load())
			}
		})
	}
}

// A full nonce cache refuses requests (nonce_capacity) instead of
// forgetting a nonce a replay could reuse, and recovers once the window
// has passed.
func TestAuthNonceCapacity(t *testing.T) {
	a := newAuth(t, AuthOptions{MaxSkewNs: 10 * second, NonceCapacity: 16})
	addKey(t, a, "k1", testSecret, 0, math.MaxUint64, authT0)
	var accepted []string
	refused := 0
	for i := 0; i < 400; i++ {
		h := signSimple(t, "k1", "", fmt.Sprintf("nonce-n-%06d", i), authT0)
		switch r := verifySimple(t, a, h, authT0); r {
		case AuthOK:
			accepted = append(accepted, h)
		case AuthNonceCapacity:
			refused++
		default:
			t.Fatalf("request %d: %v", i, r)
		}
	}
	if len(accepted) == 0 || len(accepted) > 16 || refused != 400-len(accepted) {
		t.Fatalf("%d accepted and %d refused with a capacity of 16", len(accepted), refused)
	}
	// Remembered nonces are still replays, full cache or not.
	for _, h := range accepted {
		wantReason(t, verifySimple(t, a, h, authT0+second), AuthReplay, "a remembered nonce")
	}
	if s := authStats(t, a); s.Results[AuthNonceCapacity] != uint64(refused) || s.Results[AuthOK] != uint64(len(accepted)) {
		t.Fatalf("stats %+v", s)
	}
	// Past the window every remembered nonce has expired: room again.
	later := authT0 + 11*second
	ok := 0
	for i := 0; i < 64; i++ {
		h := signSimple(t, "k1", "", fmt.Sprintf("nonce-m-%06d", i), later)
		switch r := verifySimple(t, a, h, later); r {
		case AuthOK:
			ok++
		case AuthNonceCapacity:
		default:
			t.Fatalf("after the window, request %d: %v", i, r)
		}
		if i == 0 && ok != 1 {
			t.Fatal("the first request after the window was refused")
		}
	}
	if ok == 0 || ok > 16 {
		t.Fatalf("%d accepted after the window", ok)
	}
}

// A panic in the event callback comes back from the call that caused it,
// and the change itself happened.
func TestAuthEventCallbackPanic(t *testing.T) {
	a := newAuth(t, AuthOptions{NonceCapacity: 64})
	if err := a.SetEventCallback(func(AuthEvent) { panic("boom") }); err != nil {
		t.Fatal(err)
	}
	func() {
		defer func() {
			if p := recover(); p != "boom" {
				t.Fatalf("recovered %v, want the callback's panic", p)
			}
		}()
		a.RevokeKey("k1", authT0)
		t.Fatal("the callback's panic was swallowed")
	}()
	if s := authStats(t, a); s.RevokedKeys != 1 || s.RevocationVersion != 1 {
		t.Fatalf("the revocation did not happen: %+v", s)
	}
	if err := a.SetEventCallback(nil); err != nil {
		t.Fatal(err)
	}
	if err := a.UnrevokeKey("k1", authT0); err != nil {
		t.Fatal(err)
	}
}

// Closing the authenticator from inside its own callback is safe: the
// memory goes when the call that ran it returns.
func TestAuthCloseInsideCallback(t *testing.T) {
	a, err := NewAuthenticator(AuthOptions{NonceCapacity: 64})
	if err != nil {
		t.Fatal(err)
	}
	var inner error
	var innerStats AuthStats
	if err := a.SetEventCallback(func(AuthEvent) {
		innerStats, _ = a.Stats()
		a.Close()
		_, inner = a.Stats()
	}); err != nil {
		t.Fatal(err)
	}
	if err := a.AddKey("k1", testSecret, 0, math.MaxUint64, authT0); err != nil {
		t.Fatalf("the AddKey that closed the authenticator: %v", err)
	}
	if inner != ErrClosed || innerStats.Keys != 1 {
		t.Fatalf("inside the callback: %+v, after Close %v", innerStats, inner)
	}
	if _, err := a.Verify(simpleMsg, "x", authT0); err != ErrClosed {
		t.Fatalf("after Close: %v", err)
	}
}

// ---- options, misuse, lifetime ------------------------------------------------

func TestAuthOptions(t *testing.T) {
	d := DefaultAuthOptions()
	if d != (AuthOptions{MaxSkewNs: 30 * second, NonceCapacity: 1 << 18}) {
		t.Fatalf("DefaultAuthOptions() = %+v", d)
	}
	// The zero value is the default: a 30 s window.
	a := newAuth(t, AuthOptions{})
	addKey(t, a, "k1", testSecret, 0, math.MaxUint64, authT0)
	wantReason(t, verifySimple(t, a, signSimple(t, "k1", "", "nonce-o-0001", authT0-30*second), authT0), AuthOK, "30 s old")
	wantReason(t, verifySimple(t, a, signSimple(t, "k1", "", "nonce-o-0002", authT0-30*second-1), authT0), AuthSkew, "30 s + 1 ns old")
	wantReason(t, verifySimple(t, a, signSimple(t, "k1", "", "nonce-o-0003", authT0+30*second), authT0), AuthOK, "30 s ahead")

	cases := []struct {
		name   string
		o      AuthOptions
		want   Status
		needle string
	}{
		{"skew above 24 h", AuthOptions{MaxSkewNs: 24*3600*second + 1}, ErrRange, "max_skew_ns"},
		{"capacity 15", AuthOptions{NonceCapacity: 15}, ErrRange, "nonce_capacity"},
		{"capacity above 2^26", AuthOptions{NonceCapacity: 1<<26 + 1}, ErrRange, "nonce_capacity"},
	}
	for _, c := range cases {
		a, err := NewAuthenticator(c.o)
		if a != nil {
			a.Close()
			t.Errorf("%s: accepted", c.name)
			continue
		}
		wantStatus(t, err, c.want, c.name)
		if err != nil && !strings.Contains(err.Error(), c.needle) {
			t.Errorf("%s: error %q does not mention %q", c.name, err, c.needle)
		}
	}
	for _, o := range []AuthOptions{{MaxSkewNs: 1, NonceCapacity: 16}, {MaxSkewNs: 24 * 3600 * second, NonceCapacity: 16}, {NonceCapacity: 16, Seed: 42}} {
		a, err := NewAuthenticator(o)
		if err != nil {
			t.Errorf("%+v rejected: %v", o, err)
			continue
		}
		a.Close()
	}
}

func TestAuthenticatorNilAndClosed(t *testing.T) {
	req := httptest.NewRequest("GET", "/x", nil)
	calls := map[string]func(a *Authenticator) error{
		"AddKey":             func(a *Authenticator) error { return a.AddKey("k", testSecret, 0, 1, 0) },
		"AddKey(bad id)":     func(a *Authenticator) error { return a.AddKey("", nil, 0, 0, 0) },
		"RemoveKey":          func(a *Authenticator) error { return a.RemoveKey("k", 0) },
		"RevokeKey":          func(a *Authenticator) error { return a.RevokeKey("k", 0) },
		"UnrevokeKey":        func(a *Authenticator) error { return a.UnrevokeKey("k", 0) },
		"RevokeToken":        func(a *Authenticator) error { return a.RevokeToken("t", 0) },
		"UnrevokeToken":      func(a *Authenticator) error { return a.UnrevokeToken("t", 0) },
		"ReplaceRevocations": func(a *Authenticator) error { return a.ReplaceRevocations(9, []string{"k"}, nil, 0) },
		"RevocationVersion":  func(a *Authenticator) error { _, err := a.RevocationVersion(); return err },
		"Verify":             func(a *Authenticator) error { _, err := a.Verify(simpleMsg, "x", 0); return err },
		"Verify(headers)": func(a *Authenticator) error {
			_, err := a.Verify(AuthMessage{Headers: []Header{{"a", "b"}}}, "", 0)
			return err
		},
		"VerifyHTTP":            func(a *Authenticator) error { _, err := a.VerifyHTTP(req, nil, 0); return err },
		"VerifyHTTP(nil)":       func(a *Authenticator) error { _, err := a.VerifyHTTP(nil, nil, 0); return err },
		"Stats":                 func(a *Authenticator) error { _, err := a.Stats(); return err },
		"SetEventCallback":      func(a *Authenticator) error { return a.SetEventCallback(func(AuthEvent) {}) },
		"SetEventCallback(nil)": func(a *Authenticator) error { return a.SetEventCallback(nil) },
	}
	closed, err := NewAuthenticator(AuthOptions{NonceCapacity: 64})
	if err != nil {
		t.Fatal(err)
	}
	closed.SetEventCallback(func(AuthEvent) {})
	if err := closed.Close(); err != nil {
		t.Fatal(err)
	}
	if err := closed.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	var nilA *Authenticator
	if err := nilA.Close(); err != nil {
		t.Fatalf("nil Close: %v", err)
	}
	for name, call := range calls {
		wantStatus(t, call(nil), ErrInvalid, name+" on nil")
		if err := call(closed); err != ErrClosed && name != "VerifyHTTP(nil)" {
			t.Errorf("%s on a closed authenticator: %v, want ErrClosed", name, err)
		}
	}
}

// Bad ids, secrets, intervals and lists are errors with the library's
// explanation, change nothing and never panic; bad requests are results.
func TestAuthBadArguments(t *testing.T) {
	a := newAuth(t, AuthOptions{NonceCapacity: 64})
	var log authLog
	a.SetEventCallback(log.add)
	badKeyIDs := []string{"", "k k", "k/1", "k\x00", "ключ", strings.Repeat("k", 65)}
	for _, id := range badKeyIDs {
		err := a.AddKey(id, testSecret, 0, math.MaxUint64, 0)
		wantStatus(t, err, ErrInvalid, fmt.Sprintf("AddKey(%q)", id))
		if err != nil && !strings.Contains(err.Error(), "key id") {
			t.Errorf("AddKey(%q): %v does not say what is wrong", id, err)
		}
		wantStatus(t, a.RevokeKey(id, 0), ErrInvalid, fmt.Sprintf("RevokeKey(%q)", id))
		wantStatus(t, a.UnrevokeKey(id, 0), ErrInvalid, fmt.Sprintf("UnrevokeKey(%q)", id))
		wantStatus(t, a.ReplaceRevocations(5, []string{"ok", id}, nil, 0), ErrInvalid, fmt.Sprintf("ReplaceRevocations(%q)", id))
	}
	for _, tok := range []string{"", "t t", "t\x00", strings.Repeat("t", 129)} {
		wantStatus(t, a.RevokeToken(tok, 0), ErrInvalid, fmt.Sprintf("RevokeToken(%q)", tok))
		wantStatus(t, a.ReplaceRevocations(5, nil, []string{tok}, 0), ErrInvalid, fmt.Sprintf("ReplaceRevocations(token %q)", tok))
	}
	for _, secret := range [][]byte{nil, {}, make([]byte, 1025)} {
		err := a.AddKey("k1", secret, 0, math.MaxUint64, 0)
		wantStatus(t, err, ErrInvalid, fmt.Sprintf("AddKey with a %d-byte secret", len(secret)))
		if err != nil && !strings.Contains(err.Error(), "secret") {
			t.Errorf("bad secret: %v", err)
		}
	}
	err := a.AddKey("k1", testSecret, 5, 5, 0)
	wantStatus(t, err, ErrInvalid, "an empty interval")
	wantStatus(t, a.AddKey("k1", testSecret, 6, 5, 0), ErrInvalid, "a reversed interval")
	wantStatus(t, a.RemoveKey("nokey", 0), ErrNotFound, "RemoveKey of an unknown key")
	if s := authStats(t, a); s != (AuthStats{}) || len(log.all()) != 0 {
		t.Fatalf("refused calls changed something: %+v, events %+v", s, log.all())
	}
	// The limits themselves are accepted.
	addKey(t, a, strings.Repeat("k", 64), make([]byte, 1024), 0, 1, 0)
	addKey(t, a, "A-z.0_9", []byte{0}, 0, math.MaxUint64, 0)
	if err := a.RevokeToken(strings.Repeat("t", 128), 0); err != nil {
		t.Fatal(err)
	}
	if err := a.ReplaceRevocations(math.MaxUint64, nil, nil, 0); err != nil {
		t.Fatal(err)
	}

	// Client side: what cannot be signed says why.
	p := AuthParams{KeyID: "k1", Nonce: "nonce-b-0001", TimestampNs: authT0}
	signCases := []struct {
		name   string
		msg    AuthMessage
		p      AuthParams
		needle string
	}{
		{"nonce", simpleMsg, AuthParams{KeyID: "k1", Nonce: "short"}, "bad_nonce"},
		{"no nonce", simpleMsg, AuthParams{KeyID: "k1"}, "bad_nonce"},
		{"key id", simpleMsg, AuthParams{KeyID: "k\x001", Nonce: "nonce-b-0001"}, "bad_key_id"},
		{"token", simpleMsg, AuthParams{KeyID: "k1", Token: "t t", Nonce: "nonce-b-0001"}, "bad_token"},
		{"signed headers", simpleMsg, AuthParams{KeyID: "k1", Nonce: "nonce-b-0001", SignedHeaders: "Host"}, "bad_signed_headers"},
		{"method", AuthMessage{Method: "post", Target: "/"}, p, "bad_method"},
		{"target", AuthMessage{Method: "GET", Target: "/a#b"}, p, "bad_path"},
	}
	for _, c := range signCases {
		_, err := SignRequest(c.msg, c.p, testSecret)
		wantStatus(t, err, ErrInvalid, "SignRequest "+c.name)
		if err == nil || !strings.Contains(err.Error(), c.needle) {
			t.Errorf("SignRequest %s: %v does not name %s", c.name, err, c.needle)
		}
		_, err = CanonicalRequest(c.msg, c.p)
		wantStatus(t, err, ErrInvalid, "CanonicalRequest "+c.name)
	}
	for _, secret := range [][]byte{nil, make([]byte, 1025)} {
		_, err := SignRequest(simpleMsg, p, secret)
		wantStatus(t, err, ErrInvalid, fmt.Sprintf("SignRequest with a %d-byte secret", len(secret)))
		if err == nil || !strings.Contains(err.Error(), "secret") {
			t.Errorf("a %d-byte secret: %v", len(secret), err)
		}
	}
	// Long outputs grow the buffer: a canonical request of 8 KiB of headers.
	big := AuthMessage{Method: "GET", Target: "/", Headers: []Header{{"X-Big", strings.Repeat("v", 8192)}}}
	bp := p
	bp.SignedHeaders = "x-big"
	canon, err := CanonicalRequest(big, bp)
	if err != nil || len(canon) < 8192 || !strings.Contains(canon, "x-big:"+strings.Repeat("v", 8192)+"\n") {
		t.Fatalf("a long canonical request: %d bytes, %v", len(canon), err)
	}
	big.Headers[0].Value += "v"
	if _, err := CanonicalRequest(big, bp); err == nil || !strings.Contains(err.Error(), "bad_header_value") {
		t.Fatalf("a header value of 8193 bytes: %v", err)
	}

	// HMAC of nothing is the HMAC of nothing.
	mac, err := HMACSHA256(nil, nil)
	if want := hmac.New(sha256.New, nil).Sum(nil); err != nil || !bytes.Equal(mac[:], want) {
		t.Fatalf("HMACSHA256(nil, nil) = %x %v, want %x", mac, err, want)
	}
}

// A request with more headers than the C wrapper keeps on its stack.
func TestAuthManyHeaders(t *testing.T) {
	a := newAuth(t, AuthOptions{NonceCapacity: 64})
	addKey(t, a, "k1", testSecret, 0, math.MaxUint64, 0)
	msg := AuthMessage{Method: "POST", Target: "/many", Body: []byte("b")}
	for i := 0; i < 200; i++ {
		msg.Headers = append(msg.Headers, Header{Name: fmt.Sprintf("X-H%03d", i), Value: fmt.Sprint(i)})
	}
	p := AuthParams{KeyID: "k1", Nonce: "nonce-many-01", TimestampNs: authT0, SignedHeaders: "x-h000;x-h150;x-h199"}
	h, err := SignRequest(msg, p, testSecret)
	if err != nil {
		t.Fatal(err)
	}
	canon, _ := CanonicalRequest(msg, p)
	if !strings.Contains(canon, "x-h000:0\nx-h150:150\nx-h199:199\n") {
		t.Fatalf("canonical request %q", canon)
	}
	wantReason(t, verify(t, a, msg, h, authT0).Reason, AuthOK, "200 headers")
	msg.Headers[150].Value = "other"
	wantReason(t, verify(t, a, msg, h, authT0).Reason, AuthBadSignature, "a changed signed header")
}

func TestAuthStamped(t *testing.T) {
	alphabet := regexp.MustCompile(`^[A-Za-z0-9._~-]{8,64}$`)
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		n := NewAuthNonce()
		if !alphabet.MatchString(n) || seen[n] {
			t.Fatalf("nonce %q (seen before: %v)", n, seen[n])
		}
		seen[n] = true
	}
	before := uint64(time.Now().UnixNano())
	p := AuthParams{KeyID: "k1"}.Stamped()
	after := uint64(time.Now().UnixNano())
	if !alphabet.MatchString(p.Nonce) || p.TimestampNs < before || p.TimestampNs > after || p.KeyID != "k1" {
		t.Fatalf("Stamped() = %+v", p)
	}
	q := AuthParams{KeyID: "k1", Nonce: "nonce-s-0001", TimestampNs: 7}.Stamped()
	if q.Nonce != "nonce-s-0001" || q.TimestampNs != 7 {
		t.Fatalf("Stamped() changed given values: %+v", q)
	}
	// A stamped request verifies at the wall clock.
	a := newAuth(t, AuthOptions{NonceCapacity: 64})
	addKey(t, a, "k1", testSecret, 0, math.MaxUint64, 0)
	h, err := SignRequest(simpleMsg, AuthParams{KeyID: "k1"}.Stamped(), testSecret)
	if err != nil {
		t.Fatal(err)
	}
	wantReason(t, verifySimple(t, a, h, uint64(time.Now().UnixNano())), AuthOK, "a stamped request")
}

// Verify passes the strings without copying, copies the headers into a
// reused buffer and keeps its result on the Go stack: no allocation.
func TestAuthVerifyDoesNotAllocate(t *testing.T) {
	a := newAuth(t, AuthOptions{NonceCapacity: 1 << 12})
	addKey(t, a, "k1", testSecret, 0, math.MaxUint64, 0)
	msg := AuthMessage{Method: "POST", Target: "/v1/orders?account=A1&symbol=ES",
		Headers: []Header{{"Host", "gw.example"}, {"Content-Type", "application/json"},
			{"X-Request-Id", "req-1"}, {"User-Agent", "test"}},
		Body: []byte(`{"qty":10,"px":4500.25}`)}
	digest := sha256.Sum256(msg.Body)
	withDigest := msg
	withDigest.Body, withDigest.BodySHA256 = nil, &digest
	const n = 1000
	signed := make([]string, n)
	for i := range signed {
		h, err := SignRequest(msg, AuthParams{KeyID: "k1", Token: "sess-1", Nonce: fmt.Sprintf("nonce-a-%06d", i),
			SignedHeaders: "content-type;host", TimestampNs: authT0}, testSecret)
		if err != nil {
			t.Fatal(err)
		}
		signed[i] = h
	}
	i := 0
	var r AuthResult
	var err error
	checks := []struct {
		name string
		f    func()
		want AuthReason
	}{
		{"Verify", func() { r, err = a.Verify(msg, signed[i], authT0); i++ }, AuthOK},
		{"Verify(BodySHA256)", func() { r, err = a.Verify(withDigest, signed[i], authT0); i++ }, AuthOK},
		{"Verify(replay)", func() { r, err = a.Verify(msg, signed[0], authT0) }, AuthReplay},
		{"Verify(malformed)", func() { r, err = a.Verify(msg, "Basic x", authT0) }, AuthMalformed},
		{"Verify(no headers)", func() { r, err = a.Verify(simpleMsg, signed[0], authT0) }, AuthMalformed},
	}
	for _, c := range checks {
		c.f()
		if allocs := testing.AllocsPerRun(200, c.f); allocs != 0 {
			t.Errorf("%s allocates %.2f times per call", c.name, allocs)
		}
		if err != nil || r.Reason != c.want || (c.want == AuthOK && (r.KeyID != "k1" || r.Token != "sess-1")) {
			t.Errorf("%s: %+v %v, want %v", c.name, r, err, c.want)
		}
	}
	others := map[string]func(){
		"HMACSHA256":        func() { HMACSHA256(testSecret, msg.Body) },
		"Stats":             func() { a.Stats() },
		"RevocationVersion": func() { a.RevocationVersion() },
	}
	for name, f := range others {
		f()
		if allocs := testing.AllocsPerRun(200, f); allocs != 0 {
			t.Errorf("%s allocates %.2f times per call", name, allocs)
		}
	}
}

func TestAuthCloseRace(t *testing.T) {
	h := signSimple(t, "k1", "", "nonce-x-0001", authT0)
	for round := 0; round < 20; round++ {
		a, err := NewAuthenticator(AuthOptions{NonceCapacity: 64})
		if err != nil {
			t.Fatal(err)
		}
		a.SetEventCallback(func(AuthEvent) {})
		var wg sync.WaitGroup
		var failures atomic.Int64
		start := make(chan struct{})
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				<-start
				id := fmt.Sprint("k", g)
				for i := 0; i < 200; i++ {
					_, err1 := a.Verify(simpleMsg, h, authT0)
					err2 := a.AddKey(id, testSecret, 0, math.MaxUint64, authT0)
					err3 := a.RevokeToken(id, authT0)
					_, err4 := a.Stats()
					err5 := a.RemoveKey(id, authT0)
					_, err6 := a.RevocationVersion()
					for _, err := range []error{err1, err2, err3, err4, err5, err6} {
						if err != nil && err != ErrClosed {
							failures.Add(1)
						}
					}
				}
			}(g)
		}
		close(start)
		a.Close()
		wg.Wait()
		if failures.Load() != 0 {
			t.Fatalf("round %d: %d calls failed with another error than ErrClosed", round, failures.Load())
		}
	}
}

func TestAuthFinalizers(t *testing.T) {
	before := handlesFreed.Load()
	func() {
		for i := 0; i < 10; i++ {
			a, err := NewAuthenticator(AuthOptions{NonceCapacity: 16})
			if err != nil {
				t.Fatal(err)
			}
			a.SetEventCallback(func(AuthEvent) {})
			a.AddKey("k1", testSecret, 0, math.MaxUint64, authT0)
			a.Verify(simpleMsg, "x", authT0)
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for handlesFreed.Load()-before < 10 && time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if n := handlesFreed.Load() - before; n < 10 {
		t.Fatalf("%d of 10 unreachable authenticators released by finalizers", n)
	}
}

// errors.As finds the library's message in a change's error.
func TestAuthErrorMessages(t *testing.T) {
	a := newAuth(t, AuthOptions{NonceCapacity: 64})
	var te *Error
	if err := a.AddKey("k1", testSecret, 9, 1, 0); !errors.As(err, &te) || !strings.Contains(te.Message, "not_before") {
		t.Fatalf("reversed interval: %v", err)
	}
	if err := a.RemoveKey("k1", 0); !errors.As(err, &te) || te.Status != ErrNotFound || te.Message == "" {
		t.Fatalf("unknown key: %v", err)
	}
}

func ExampleAuthenticator_Verify() {
	auth, err := NewAuthenticator(AuthOptions{NonceCapacity: 1024})
	if err != nil {
		panic(err)
	}
	defer auth.Close()
	secret := []byte("secret-1")
	const ts = 1_700_000_000_123_456_789
	auth.AddKey("k1", secret, 0, math.MaxUint64, ts)

	msg := AuthMessage{Method: "GET", Target: "/"}
	h, _ := SignRequest(msg, AuthParams{KeyID: "k1", Nonce: "nonce-000001", TimestampNs: ts}, secret)
	fmt.Println(h)
	for i := 0; i < 2; i++ {
		r, _ := auth.Verify(msg, h, ts)
		fmt.Println(r.Reason, r.KeyID, r.Nonce)
	}
	// Output:
	// TG1-HMAC-SHA256 KeyId=k1, Timestamp=1700000000123456789, Nonce=nonce-000001, Signature=e169823ef86c7b2348ca714d417e4cbaed5416653808119ed2525f2e503cf47b
	// none k1 nonce-000001
	// replay k1 nonce-000001
}
