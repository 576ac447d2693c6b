/* C ABI tests of request authentication: the shared vectors
 * (tests/vectors/auth_vectors.txt, path in argv[1]) through tg_hmac_sha256,
 * tg_auth_canonical_request, tg_auth_sign and tg_auth_verify; every failure
 * reason; revocation, events and re-entry; bad calls.
 *
 * Built twice: capi_auth, and capi_auth_openssl with WITH_OPENSSL, which
 * also links the host's OpenSSL libcrypto and uses it first, proving that
 * tollgate's calls still reach BoringSSL (they would be captured by
 * OpenSSL's same-named symbols if tollgate linked libcrypto normally). */
#ifdef WITH_OPENSSL
#define CHECK_PROGRAM "capi_auth_openssl"
#else
#define CHECK_PROGRAM "capi_auth"
#endif
#include "check.h"

#ifdef WITH_OPENSSL
#include <openssl/hmac.h>
#include <openssl/sha.h>
#endif

static const uint64_t second = 1000000000ull;

/* ------------------------------------------------------------------------ */
/* Vector file parsing                                                       */
/* ------------------------------------------------------------------------ */

#define FIELD_MAX 16384

typedef struct bytes {
  unsigned char data[FIELD_MAX];
  size_t len;
} bytes;

static int unhex(const char* s, bytes* out) {
  size_t n = strlen(s), i;
  out->len = 0;
  if (strcmp(s, "-") == 0) return 1;
  if (n % 2 != 0 || n / 2 > FIELD_MAX) return 0;
  for (i = 0; i < n; i += 2) {
    unsigned v;
    if (sscanf(s + i, "%2x", &v) != 1) return 0;
    out->data[out->len++] = (unsigned char)v;
  }
  return 1;
}

/* The next field of *cursor up to `sep` (which is replaced by NUL), or NULL
 * at the end. Empty fields between separators are skipped. */
static char* next_field(char** cursor, char sep) {
  char* start = *cursor;
  char* end;
  if (start == NULL) return NULL;
  while (*start == sep) ++start;
  if (*start == '\0') {
    *cursor = NULL;
    return NULL;
  }
  end = strchr(start, sep);
  if (end != NULL) {
    *end = '\0';
    *cursor = end + 1;
  } else {
    *cursor = NULL;
  }
  return start;
}

/* Headers: "-" or name(hex):value(hex) pairs joined by ','. */
typedef struct headers {
  bytes names[8];
  bytes values[8];
  tg_header h[8];
  size_t n;
} headers;

static int parse_headers(char* s, headers* out) {
  char* cursor = s;
  char* item;
  out->n = 0;
  if (strcmp(s, "-") == 0) return 1;
  while ((item = next_field(&cursor, ',')) != NULL) {
    char* colon = strchr(item, ':');
    if (colon == NULL || out->n == 8) return 0;
    *colon = '\0';
    if (!unhex(item, &out->names[out->n])) return 0;
    if (colon[1] == '\0') {
      out->values[out->n].len = 0;
    } else if (!unhex(colon + 1, &out->values[out->n])) {
      return 0;
    }
    ++out->n;
  }
  for (size_t i = 0; i < out->n; ++i) {
    out->h[i].name = (const char*)out->names[i].data;
    out->h[i].name_len = out->names[i].len;
    out->h[i].value = (const char*)out->values[i].data;
    out->h[i].value_len = out->values[i].len;
  }
  return 1;
}

static char line[8 * FIELD_MAX];
static bytes secret, target, body, key_id, token, nonce, signed_hdrs, canonical, authorization,
    method_b, hkey, hmsg;
static headers hdrs;

static tg_auth_message message_of(const char* method, size_t method_len) {
  tg_auth_message m;
  memset(&m, 0, sizeof m);
  m.method = method;
  m.method_len = method_len;
  m.target = (const char*)target.data;
  m.target_len = target.len;
  m.headers = hdrs.n ? hdrs.h : NULL;
  m.header_count = hdrs.n;
  m.body = body.data;
  m.body_len = body.len;
  return m;
}

static tg_auth_params params_of(uint64_t ts) {
  tg_auth_params p;
  memset(&p, 0, sizeof p);
  p.key_id = (const char*)key_id.data;
  p.key_id_len = key_id.len;
  p.token = token.len ? (const char*)token.data : NULL;
  p.token_len = token.len;
  p.nonce = (const char*)nonce.data;
  p.nonce_len = nonce.len;
  p.signed_headers = (const char*)signed_hdrs.data;
  p.signed_headers_len = signed_hdrs.len;
  p.timestamp_ns = ts;
  return p;
}

static tg_authenticator* new_auth(uint64_t skew, uint64_t capacity) {
  tg_auth_options o;
  tg_authenticator* a = NULL;
  tg_error err;
  tg_auth_options_init(&o);
  o.max_skew_ns = skew;
  o.nonce_capacity = capacity;
  memset(&err, 0, sizeof err);
  if (tg_authenticator_new(&o, &a, &err) != TG_OK) fprintf(stderr, "new: %s\n", err.message);
  REQUIRE(a != NULL);
  return a;
}

static void test_vectors(const char* path) {
  FILE* f = fopen(path, "r");
  int hmacs = 0, signs = 0, rejects = 0;
  REQUIRE(f != NULL);
  while (fgets(line, sizeof line, f) != NULL) {
    char* cursor = line;
    char* kind;
    char* fld[16];
    int nf = 0;
    size_t len = strlen(line);
    if (len > 0 && line[len - 1] == '\n') line[--len] = '\0';
    if (line[0] == '#' || line[0] == '\0') continue;
    kind = next_field(&cursor, ' ');
    while (nf < 16 && (fld[nf] = next_field(&cursor, ' ')) != NULL) ++nf;
    if (strcmp(kind, "hmac") == 0) {
      uint8_t out[32];
      bytes want;
      REQUIRE(nf == 3 && unhex(fld[0], &hkey) && unhex(fld[1], &hmsg) && unhex(fld[2], &want));
      CTX("hmac vector %d", hmacs);
      CHECK_RC(tg_hmac_sha256(hkey.data, hkey.len, hmsg.data, hmsg.len, out), TG_OK);
      CHECK(memcmp(out, want.data, 32) == 0);
      ++hmacs;
    } else if (strcmp(kind, "sign") == 0) {
      char out[4096];
      size_t written = 0;
      uint64_t ts;
      tg_error err;
      tg_auth_message m;
      tg_auth_params p;
      tg_auth_result r;
      tg_authenticator* a;
      REQUIRE(nf == 13);
      CTX("sign vector %s", fld[0]);
      REQUIRE(unhex(fld[1], &secret) && unhex(fld[3], &target) && parse_headers(fld[4], &hdrs) &&
              unhex(fld[5], &body) && unhex(fld[6], &key_id) && unhex(fld[7], &token) &&
              unhex(fld[9], &nonce) && unhex(fld[10], &signed_hdrs) && unhex(fld[11], &canonical) &&
              unhex(fld[12], &authorization));
      ts = strtoull(fld[8], NULL, 10);
      m = message_of(fld[2], strlen(fld[2]));
      p = params_of(ts);
      memset(&err, 0, sizeof err);
      CHECK_RC(tg_auth_canonical_request(&m, &p, out, sizeof out, &written, &err), TG_OK);
      CHECK_EQ(written, canonical.len);
      CHECK(written == canonical.len && memcmp(out, canonical.data, written) == 0);
      CHECK_RC(tg_auth_sign(&m, &p, secret.data, secret.len, out, sizeof out, &written, &err),
               TG_OK);
      CHECK_EQ(written, authorization.len);
      CHECK(written == authorization.len && memcmp(out, authorization.data, written) == 0);
      CHECK_EQ(out[written], '\0');
      /* The server accepts it once, then refuses the replay. */
      a = new_auth(30 * second, 1024);
      CHECK_RC(tg_auth_add_key(a, (const char*)key_id.data, key_id.len, secret.data, secret.len, 0,
                               UINT64_MAX, ts, NULL),
               TG_OK);
      CHECK_RC(tg_auth_verify(a, &m, (const char*)authorization.data, authorization.len, ts, &r),
               TG_OK);
      CHECK_EQ(r.reason, TG_AUTH_OK);
      CHECK_EQ(r.timestamp_ns, ts);
      CHECK_EQ(r.key_id_len, key_id.len);
      CHECK(memcmp(authorization.data + r.key_id_offset, key_id.data, key_id.len) == 0);
      CHECK(memcmp(authorization.data + r.nonce_offset, nonce.data, nonce.len) == 0);
      CHECK_EQ(r.token_len, token.len);
      CHECK_RC(tg_auth_verify(a, &m, (const char*)authorization.data, authorization.len, ts, &r),
               TG_OK);
      CHECK_EQ(r.reason, TG_AUTH_REPLAY);
      /* One flipped byte of the body or target breaks the signature. */
      if (body.len > 0) {
        body.data[body.len / 2] ^= 1;
        CHECK_RC(tg_auth_verify(a, &m, (const char*)authorization.data, authorization.len, ts, &r),
                 TG_OK);
        CHECK_EQ(r.reason, TG_AUTH_BAD_SIGNATURE);
      }
      tg_authenticator_free(a);
      ++signs;
    } else if (strcmp(kind, "reject") == 0) {
      char out[4096];
      char hdr[1024];
      size_t written = 0;
      uint64_t ts;
      tg_error err;
      tg_auth_message m;
      tg_auth_params p;
      tg_auth_result r;
      tg_authenticator* a;
      REQUIRE(nf == 11);
      CTX("reject vector %s", fld[0]);
      REQUIRE(unhex(fld[1], &method_b) && unhex(fld[2], &target) && parse_headers(fld[3], &hdrs) &&
              unhex(fld[4], &body) && unhex(fld[5], &key_id) && unhex(fld[6], &token) &&
              unhex(fld[8], &nonce) && unhex(fld[9], &signed_hdrs));
      ts = strtoull(fld[7], NULL, 10);
      m = message_of((const char*)method_b.data, method_b.len);
      p = params_of(ts);
      memset(&err, 0, sizeof err);
      CHECK_RC(tg_auth_canonical_request(&m, &p, out, sizeof out, &written, &err), TG_EINVAL);
      CHECK(strstr(err.message, fld[10]) != NULL);
      CHECK_RC(tg_auth_sign(&m, &p, "s", 1, out, sizeof out, &written, &err), TG_EINVAL);
      /* The server reports the same detail. */
      a = new_auth(30 * second, 1024);
      CHECK_RC(tg_auth_add_key(a, "k1", 2, "s", 1, 0, UINT64_MAX, ts, NULL), TG_OK);
      snprintf(hdr, sizeof hdr,
               "TG1-HMAC-SHA256 KeyId=%.*s, %s%.*s%sTimestamp=%llu, Nonce=%.*s, "
               "Signature=%064d",
               (int)key_id.len, (const char*)key_id.data, signed_hdrs.len ? "SignedHeaders=" : "",
               (int)signed_hdrs.len, (const char*)signed_hdrs.data, signed_hdrs.len ? ", " : "",
               (unsigned long long)ts, (int)nonce.len, (const char*)nonce.data, 0);
      CHECK_RC(tg_auth_verify(a, &m, hdr, strlen(hdr), ts, &r), TG_OK);
      CHECK_EQ(r.reason, TG_AUTH_MALFORMED);
      CHECK(strcmp(tg_auth_detail_name(r.detail), fld[10]) == 0);
      tg_authenticator_free(a);
      ++rejects;
    } else {
      CTX("unknown vector kind %s", kind);
      CHECK(0);
    }
  }
  fclose(f);
  CTX("vector counts");
  CHECK(hmacs >= 6);
  CHECK(signs >= 10);
  CHECK(rejects >= 13);
  printf("%s: %d hmac, %d sign and %d reject vectors\n", CHECK_PROGRAM, hmacs, signs, rejects);
}

/* ------------------------------------------------------------------------ */
/* Reasons, revocation and events                                            */
/* ------------------------------------------------------------------------ */

static const char* const simple_secret = "secret-for-tests";
static const uint64_t t0 = 1700000000ull * 1000000000ull;

static size_t sign_simple(const char* key, const char* tok, const char* nce, uint64_t ts, char* out,
                          size_t cap) {
  tg_auth_message m;
  tg_auth_params p;
  size_t written = 0;
  memset(&m, 0, sizeof m);
  m.method = "GET";
  m.method_len = 3;
  m.target = "/x";
  m.target_len = 2;
  memset(&p, 0, sizeof p);
  p.key_id = key;
  p.key_id_len = strlen(key);
  p.token = tok;
  p.token_len = tok ? strlen(tok) : 0;
  p.nonce = nce;
  p.nonce_len = strlen(nce);
  p.timestamp_ns = ts;
  REQUIRE(tg_auth_sign(&m, &p, simple_secret, strlen(simple_secret), out, cap, &written, NULL) ==
          TG_OK);
  return written;
}

static int verify_simple(tg_authenticator* a, const char* hdr, size_t len, uint64_t now) {
  tg_auth_message m;
  tg_auth_result r;
  memset(&m, 0, sizeof m);
  m.method = "GET";
  m.method_len = 3;
  m.target = "/x";
  m.target_len = 2;
  REQUIRE(tg_auth_verify(a, &m, hdr, len, now, &r) == TG_OK);
  return r.reason;
}

typedef struct events {
  int n;
  int kinds[16];
  uint64_t versions[16];
  char ids[16][32];
  tg_authenticator* reenter;
  int reenter_rc;
} events;

static void on_event(void* user, const tg_auth_event* ev) {
  events* e = (events*)user;
  if (e->n < 16) {
    e->kinds[e->n] = ev->kind;
    e->versions[e->n] = ev->revocation_version;
    snprintf(e->ids[e->n], sizeof e->ids[0], "%.*s", (int)ev->id_len, ev->id);
  }
  ++e->n;
  if (e->reenter != NULL) {
    e->reenter_rc = tg_auth_revoke(e->reenter, TG_AUTH_KEY, "k9", 2, 1, 0, NULL);
  }
}

static void test_reasons(void) {
  tg_authenticator* a = new_auth(10 * second, 64);
  char h[512];
  size_t n;
  events ev;
  tg_auth_stats st;
  tg_str keys[1] = {{"k7", 2}};
  tg_str tokens[2] = {{"t1", 2}, {"t2", 2}};
  memset(&ev, 0, sizeof ev);
  CHECK_RC(tg_auth_set_event_callback(a, on_event, &ev), TG_OK);
  CHECK_RC(tg_auth_add_key(a, "k1", 2, simple_secret, strlen(simple_secret), t0 - 100 * second,
                           t0 + 100 * second, t0, NULL),
           TG_OK);

  CTX("ok, replay, skew, unknown, bad signature");
  n = sign_simple("k1", NULL, "nonce-c-0001", t0, h, sizeof h);
  CHECK_EQ(verify_simple(a, h, n, t0), TG_AUTH_OK);
  CHECK_EQ(verify_simple(a, h, n, t0 + 1), TG_AUTH_REPLAY);
  n = sign_simple("k1", NULL, "nonce-c-0002", t0 - 11 * second, h, sizeof h);
  CHECK_EQ(verify_simple(a, h, n, t0), TG_AUTH_SKEW);
  n = sign_simple("k1", NULL, "nonce-c-0003", t0 + 11 * second, h, sizeof h);
  CHECK_EQ(verify_simple(a, h, n, t0), TG_AUTH_SKEW);
  n = sign_simple("nokey", NULL, "nonce-c-0004", t0, h, sizeof h);
  CHECK_EQ(verify_simple(a, h, n, t0), TG_AUTH_UNKNOWN_KEY);
  n = sign_simple("k1", NULL, "nonce-c-0006", t0 + 1, h, sizeof h);
  h[n - 1] = h[n - 1] == 'a' ? 'b' : 'a';
  CHECK_EQ(verify_simple(a, h, n, t0 + 1), TG_AUTH_BAD_SIGNATURE);
  CHECK_EQ(verify_simple(a, "Basic x", 7, t0), TG_AUTH_MALFORMED);

  CTX("revocation: key and token, versioned lists, events");
  n = sign_simple("k1", "tok-1", "nonce-c-0007", t0 + 2, h, sizeof h);
  CHECK_RC(tg_auth_revoke(a, TG_AUTH_TOKEN, "tok-1", 5, 1, t0, NULL), TG_OK);
  CHECK_EQ(verify_simple(a, h, n, t0 + 2), TG_AUTH_REVOKED_TOKEN);
  CHECK_RC(tg_auth_revoke(a, TG_AUTH_TOKEN, "tok-1", 5, 0, t0, NULL), TG_OK);
  CHECK_EQ(verify_simple(a, h, n, t0 + 2), TG_AUTH_OK);
  CHECK_RC(tg_auth_revoke(a, TG_AUTH_KEY, "k1", 2, 1, t0, NULL), TG_OK);
  n = sign_simple("k1", NULL, "nonce-c-0008", t0 + 3, h, sizeof h);
  CHECK_EQ(verify_simple(a, h, n, t0 + 3), TG_AUTH_REVOKED_KEY);
  {
    uint64_t v = 0;
    tg_error err;
    CHECK_RC(tg_auth_revocation_version(a, &v), TG_OK);
    CHECK_EQ(v, 3);
    memset(&err, 0, sizeof err);
    CHECK_RC(tg_auth_replace_revocations(a, 3, keys, 1, tokens, 2, t0, &err), TG_ESTATE);
    CHECK(strstr(err.message, "not newer") != NULL);
    CHECK_RC(tg_auth_replace_revocations(a, 7, keys, 1, tokens, 2, t0, NULL), TG_OK);
    CHECK_RC(tg_auth_revocation_version(a, &v), TG_OK);
    CHECK_EQ(v, 7);
  }
  n = sign_simple("k1", NULL, "nonce-c-0009", t0 + 4, h, sizeof h);
  CHECK_EQ(verify_simple(a, h, n, t0 + 4), TG_AUTH_OK); /* k1 no longer in the list */
  /* Last: it moves the clock (and the window's lower edge) 100 s ahead. */
  n = sign_simple("k1", NULL, "nonce-c-0005", t0 + 100 * second, h, sizeof h);
  CHECK_EQ(verify_simple(a, h, n, t0 + 100 * second), TG_AUTH_EXPIRED_KEY);
  CHECK_EQ(ev.n, 5);
  CHECK(ev.kinds[0] == 0 && strcmp(ev.ids[0], "k1") == 0); /* added */
  CHECK(ev.kinds[1] == 3 && strcmp(ev.ids[1], "tok-1") == 0 && ev.versions[1] == 1);
  CHECK(ev.kinds[2] == 5 && ev.versions[2] == 2);
  CHECK(ev.kinds[3] == 2 && ev.versions[3] == 3);
  CHECK(ev.kinds[4] == 6 && ev.ids[4][0] == '\0' && ev.versions[4] == 7);

  CTX("a callback cannot change its own authenticator");
  ev.reenter = a;
  ev.reenter_rc = 99;
  CHECK_RC(tg_auth_remove_key(a, "k1", 2, t0, NULL), TG_OK);
  CHECK_RC(ev.reenter_rc, TG_ESTATE);
  ev.reenter = NULL;
  CHECK_RC(tg_auth_remove_key(a, "k1", 2, t0, NULL), TG_ENOTFOUND);

  CTX("a callback cannot change another authenticator either (a cycle would deadlock)");
  {
    tg_authenticator* b = new_auth(10 * second, 64);
    events evb;
    memset(&evb, 0, sizeof evb);
    evb.reenter = a; /* b's callback tries to change a */
    evb.reenter_rc = 99;
    CHECK_RC(tg_auth_set_event_callback(b, on_event, &evb), TG_OK);
    CHECK_RC(tg_auth_revoke(b, TG_AUTH_TOKEN, "tb", 2, 1, t0, NULL), TG_OK);
    CHECK_RC(evb.reenter_rc, TG_ESTATE);
    tg_authenticator_free(b);
  }

  CTX("the revocation version never wraps");
  {
    tg_authenticator* c = new_auth(10 * second, 64);
    tg_error err;
    CHECK_RC(tg_auth_replace_revocations(c, UINT64_MAX, NULL, 0, NULL, 0, t0, NULL), TG_OK);
    memset(&err, 0, sizeof err);
    CHECK_RC(tg_auth_revoke(c, TG_AUTH_KEY, "kx", 2, 1, t0, &err), TG_ESTATE);
    CHECK(strstr(err.message, "never wraps") != NULL);
    CHECK_RC(tg_auth_replace_revocations(c, 1, NULL, 0, NULL, 0, t0, NULL), TG_ESTATE);
    tg_authenticator_free(c);
  }

  CTX("stats");
  CHECK_RC(tg_auth_stats_get(a, &st), TG_OK);
  CHECK_EQ(st.results[TG_AUTH_OK], 3);
  CHECK_EQ(st.results[TG_AUTH_REPLAY], 1);
  CHECK_EQ(st.results[TG_AUTH_SKEW], 2);
  CHECK_EQ(st.results[TG_AUTH_MALFORMED], 1);
  CHECK_EQ(st.results[TG_AUTH_REVOKED_KEY], 1);
  CHECK_EQ(st.results[TG_AUTH_REVOKED_TOKEN], 1);
  CHECK_EQ(st.results[TG_AUTH_EXPIRED_KEY], 1);
  CHECK_EQ(st.results[TG_AUTH_UNKNOWN_KEY], 1);
  CHECK_EQ(st.results[TG_AUTH_BAD_SIGNATURE], 1);
  CHECK_EQ(st.results[15], 0);
  CHECK_EQ(st.keys, 0);
  CHECK_EQ(st.revoked_keys, 1);
  CHECK_EQ(st.revoked_tokens, 2);
  CHECK_EQ(st.revocation_version, 7);
  CHECK(strcmp(tg_auth_reason_name(TG_AUTH_NONCE_CAPACITY), "nonce_capacity") == 0);
  CHECK(strcmp(tg_auth_reason_name(TG_AUTH_REASON_COUNT), "unknown") == 0);
  CHECK(strcmp(tg_auth_detail_name(-1), "unknown") == 0);
  CHECK(strcmp(tg_auth_detail_name(14), "missing_header") == 0);
  tg_authenticator_free(a);
}

static void test_misuse(void) {
  tg_authenticator* a;
  tg_auth_options o;
  tg_error err;
  tg_auth_message m;
  tg_auth_params p;
  tg_auth_result r;
  char out[512];
  size_t written = 0;
  uint8_t mac[32];
  tg_authenticator* untouched = (tg_authenticator*)(uintptr_t)1;

  CTX("bad options");
  CHECK_RC(tg_authenticator_new(NULL, NULL, NULL), TG_EINVAL);
  tg_auth_options_init(&o);
  CHECK_EQ(o.max_skew_ns, 30 * second);
  CHECK_EQ(o.nonce_capacity, 1u << 18);
  o.max_skew_ns = 0;
  memset(&err, 0, sizeof err);
  CHECK_RC(tg_authenticator_new(&o, &untouched, &err), TG_ERANGE);
  CHECK(strstr(err.message, "max_skew_ns") != NULL);
  tg_auth_options_init(&o);
  o.nonce_capacity = 15;
  CHECK_RC(tg_authenticator_new(&o, &untouched, &err), TG_ERANGE);
  tg_auth_options_init(&o);
  o.reserved = 1;
  CHECK_RC(tg_authenticator_new(&o, &untouched, &err), TG_EINVAL);
  tg_auth_options_init(&o);
  o.struct_size = 4;
  CHECK_RC(tg_authenticator_new(&o, &untouched, &err), TG_EVERSION);
  CHECK(untouched == (tg_authenticator*)(uintptr_t)1);

  a = new_auth(second, 64);
  CTX("bad key calls");
  CHECK_RC(tg_auth_add_key(NULL, "k", 1, "s", 1, 0, 1, 0, NULL), TG_EINVAL);
  CHECK_RC(tg_auth_add_key(a, NULL, 1, "s", 1, 0, 1, 0, NULL), TG_EINVAL);
  CHECK_RC(tg_auth_add_key(a, "k", 1, NULL, 1, 0, 1, 0, NULL), TG_EINVAL);
  CHECK_RC(tg_auth_add_key(a, "k", 1, "s", 0, 0, 1, 0, &err), TG_EINVAL);
  CHECK(strstr(err.message, "secret") != NULL);
  CHECK_RC(tg_auth_add_key(a, "k k", 3, "s", 1, 0, 1, 0, &err), TG_EINVAL);
  CHECK_RC(tg_auth_add_key(a, "k", 1, "s", 1, 5, 5, 0, &err), TG_EINVAL);
  CHECK_RC(tg_auth_remove_key(a, NULL, 3, 0, NULL), TG_EINVAL);
  CHECK_RC(tg_auth_revoke(a, 2, "k", 1, 1, 0, &err), TG_EINVAL);
  CHECK(strstr(err.message, "kind") != NULL);
  CHECK_RC(tg_auth_revoke(a, TG_AUTH_KEY, "k", 1, 2, 0, NULL), TG_EINVAL);
  CHECK_RC(tg_auth_revoke(a, TG_AUTH_KEY, "", 0, 1, 0, NULL), TG_EINVAL);
  CHECK_RC(tg_auth_replace_revocations(a, 9, NULL, 1, NULL, 0, 0, NULL), TG_EINVAL);
  CHECK_RC(tg_auth_revocation_version(a, NULL), TG_EINVAL);
  CHECK_RC(tg_auth_set_event_callback(NULL, NULL, NULL), TG_EINVAL);
  CHECK_RC(tg_auth_stats_get(a, NULL), TG_EINVAL);

  CTX("bad verify calls count nothing");
  memset(&m, 0, sizeof m);
  CHECK_RC(tg_auth_verify(NULL, &m, "x", 1, 0, &r), TG_EINVAL);
  CHECK_RC(tg_auth_verify(a, NULL, "x", 1, 0, &r), TG_EINVAL);
  CHECK_RC(tg_auth_verify(a, &m, "x", 1, 0, NULL), TG_EINVAL);
  CHECK_RC(tg_auth_verify(a, &m, NULL, 1, 0, &r), TG_EINVAL);
  m.target_len = 3; /* NULL target with a length */
  CHECK_RC(tg_auth_verify(a, &m, "x", 1, 0, &r), TG_EINVAL);
  m.target_len = 0;
  m.header_count = 2; /* NULL headers with a count */
  CHECK_RC(tg_auth_verify(a, &m, "x", 1, 0, &r), TG_EINVAL);
  m.header_count = 0;
  CHECK_RC(tg_auth_verify(a, &m, NULL, 0, 0, &r), TG_OK); /* an empty header: malformed */
  CHECK_EQ(r.reason, TG_AUTH_MALFORMED);
  CHECK(strcmp(tg_auth_detail_name(r.detail), "missing_authorization") == 0);
  {
    tg_auth_stats st;
    CHECK_RC(tg_auth_stats_get(a, &st), TG_OK);
    CHECK_EQ(st.results[TG_AUTH_MALFORMED], 1);
  }

  CTX("signing: bad arguments and a buffer too small");
  memset(&m, 0, sizeof m);
  m.method = "GET";
  m.method_len = 3;
  m.target = "/";
  m.target_len = 1;
  memset(&p, 0, sizeof p);
  p.key_id = "k1";
  p.key_id_len = 2;
  p.nonce = "nonce-m-0001";
  p.nonce_len = 12;
  CHECK_RC(tg_auth_sign(NULL, &p, "s", 1, out, sizeof out, &written, NULL), TG_EINVAL);
  CHECK_RC(tg_auth_sign(&m, NULL, "s", 1, out, sizeof out, &written, NULL), TG_EINVAL);
  CHECK_RC(tg_auth_sign(&m, &p, "s", 1, out, sizeof out, NULL, NULL), TG_EINVAL);
  CHECK_RC(tg_auth_sign(&m, &p, NULL, 0, out, sizeof out, &written, &err), TG_EINVAL);
  CHECK(strstr(err.message, "secret") != NULL);
  CHECK_RC(tg_auth_sign(&m, &p, "s", 1, out, 10, &written, &err), TG_ETOOSMALL);
  CHECK(written > 100 && written < sizeof out);
  CHECK_RC(tg_auth_sign(&m, &p, "s", 1, NULL, 0, &written, NULL), TG_ETOOSMALL);
  CHECK_RC(tg_auth_sign(&m, &p, "s", 1, out, written + 1, &written, NULL), TG_OK);
  CHECK_EQ(strlen(out), written);
  p.nonce = NULL; /* a NULL string with a length */
  p.nonce_len = 40;
  CHECK_RC(tg_auth_canonical_request(&m, &p, out, sizeof out, &written, NULL), TG_EINVAL);
  CHECK_RC(tg_hmac_sha256(NULL, 1, "m", 1, mac), TG_EINVAL);
  CHECK_RC(tg_hmac_sha256("k", 1, "m", 1, NULL), TG_EINVAL);
  CHECK_RC(tg_hmac_sha256(NULL, 0, NULL, 0, mac), TG_OK);

  CTX("free: NULL and a handle of another type are no-ops");
  tg_authenticator_free(NULL);
  {
    tg_limiter* l = NEW_LIMITER(NULL);
    tg_authenticator_free((tg_authenticator*)(void*)l);
    CHECK_RC(tg_auth_verify((tg_authenticator*)(void*)l, &m, "x", 1, 0, &r), TG_EINVAL);
    tg_limiter_free(l);
  }
  tg_authenticator_free(a);
}

int main(int argc, char** argv) {
#ifdef WITH_OPENSSL
  /* Use the host's OpenSSL first, so its symbols are bound in this process. */
  {
    unsigned char d[32];
    unsigned int len = 0;
    SHA256((const unsigned char*)"abc", 3, d);
    REQUIRE(d[0] == 0xba);
    REQUIRE(HMAC(EVP_sha256(), "Jefe", 4, (const unsigned char*)"what do ya want for nothing?", 28,
                 d, &len) != NULL);
    REQUIRE(d[0] == 0x5b && len == 32);
  }
#endif
  if (argc != 2) {
    fprintf(stderr, "usage: %s <auth_vectors.txt>\n", argv[0]);
    return 2;
  }
  test_vectors(argv[1]);
  test_reasons();
  test_misuse();
  return check_summary();
}
