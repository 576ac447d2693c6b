/* C ABI tests of the router: route precedence, parameters, path
 * normalisation, table build errors, publication, venue sets and misuse.
 * C99; the only tollgate header used is tollgate.h. */
#include <tollgate/tollgate.h>

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK_PROGRAM "capi_router"
#include "check.h"

/* ------------------------------------------------------------------------ */
/* Helpers                                                                   */
/* ------------------------------------------------------------------------ */

/* A rule with defaults and the given id, methods, host, path and kind. */
static tg_route_rule rule(uint32_t id, const char* methods, const char* host, const char* path,
                          uint32_t kind) {
  tg_route_rule r;
  tg_route_rule_init(&r);
  r.route_id = id;
  r.methods = methods;
  r.host = host;
  r.path = path;
  r.path_kind = kind;
  return r;
}

/* A table of the rules (and venue sets) that must compile. */
static tg_route_table* build_vs_at(const char* file, int line, const tg_route_rule* rules, size_t n,
                                   tg_venue_set* const* sets, size_t n_sets) {
  tg_route_table_options o;
  tg_route_table* t = NULL;
  size_t bad = 0;
  tg_error err;
  int rc;
  memset(&err, 0, sizeof err);
  tg_route_table_options_init(&o);
  o.rules = rules;
  o.rule_count = n;
  o.venue_sets = sets;
  o.venue_set_count = n_sets;
  rc = tg_route_table_new(&o, &t, &bad, &err);
  if (rc != TG_OK) fprintf(stderr, "tg_route_table_new: %s: %s\n", tg_status_str(rc), err.message);
  REQUIRE_AT(file, line, rc == TG_OK && t != NULL,
             "REQUIRE(tg_route_table_new(...) == TG_OK && table != NULL)");
  return t;
}
#define BUILD(rules, n) build_vs_at(__FILE__, __LINE__, (rules), (n), NULL, 0)
#define BUILD_VS(rules, n, sets, ns) build_vs_at(__FILE__, __LINE__, (rules), (n), (sets), (ns))

/* A request of NUL-terminated strings (NULL: empty). */
static tg_route_request request(const char* method, const char* host, const char* path) {
  tg_route_request q;
  memset(&q, 0, sizeof q);
  q.method = method;
  q.method_len = method ? strlen(method) : 0;
  q.host = host;
  q.host_len = host ? strlen(host) : 0;
  q.path = path;
  q.path_len = path ? strlen(path) : 0;
  return q;
}

/* The match of a request on t; the call itself must succeed. */
static tg_route_match match_q(const tg_route_table* t, const tg_route_request* q) {
  tg_route_match m;
  memset(&m, 0xAB, sizeof m);
  CHECK_RC(tg_route_table_match(t, q, &m), TG_OK);
  return m;
}

static tg_route_match match3(const tg_route_table* t, const char* method, const char* host,
                             const char* path) {
  tg_route_request q = request(method, host, path);
  return match_q(t, &q);
}

/* The route id a request reaches, or UINT32_MAX + status when not matched
 * (so a check failure shows which). */
static uint64_t route_of(const tg_route_table* t, const char* method, const char* host,
                         const char* path) {
  tg_route_match m = match3(t, method, host, path);
  if (m.status != TG_ROUTE_MATCHED) return 0xffffffffull + (uint64_t)m.status;
  return m.route_id;
}

#define NOT_MATCHED(status) (0xffffffffull + (uint64_t)(status))

/* A header of NUL-terminated strings. */
static tg_header hdr(const char* name, const char* value) {
  tg_header h;
  h.name = name;
  h.name_len = strlen(name);
  h.value = value;
  h.value_len = strlen(value);
  return h;
}

/* ------------------------------------------------------------------------ */
/* 1. Precedence                                                             */
/* ------------------------------------------------------------------------ */

static void test_precedence_paths(void) {
  tg_route_rule r[5];
  tg_route_table* t;
  size_t n = 0;
  CTX("precedence: paths");
  r[0] = rule(5, NULL, NULL, "/", TG_PATH_PREFIX);
  r[1] = rule(4, NULL, NULL, "/orders", TG_PATH_PREFIX);
  r[2] = rule(3, NULL, NULL, "/orders/{*rest}", TG_PATH_EXACT);
  r[3] = rule(2, NULL, NULL, "/orders/{id}", TG_PATH_EXACT);
  r[4] = rule(1, NULL, NULL, "/orders/new", TG_PATH_EXACT);
  t = BUILD(r, 5);
  CHECK_RC(tg_route_table_rule_count(t, &n), TG_OK);
  CHECK_EQ(n, 5);
  CHECK_EQ(route_of(t, "GET", NULL, "/orders/new"), 1);
  CHECK_EQ(route_of(t, "GET", NULL, "/orders/42"), 2);
  CHECK_EQ(route_of(t, "GET", NULL, "/orders/42/fills"), 3);
  CHECK_EQ(route_of(t, "GET", NULL, "/orders"), 4);
  CHECK_EQ(route_of(t, "GET", NULL, "/x"), 5);
  CHECK_EQ(route_of(t, "GET", NULL, "/"), 5);
  CHECK_EQ(route_of(t, "GET", NULL, "/ordersx"), 5); /* segment-aligned prefix */
  {
    tg_route_match m = match3(t, "GET", NULL, "/orders/42/fills");
    CHECK_EQ(m.status, TG_ROUTE_MATCHED);
    CHECK_EQ(m.rule_index, 2);
    CHECK_EQ(m.venue_set, TG_NO_VENUE_SET);
  }
  tg_route_table_free(t);
}

static void test_precedence_hosts(void) {
  tg_route_rule r[5];
  tg_route_table* t;
  CTX("precedence: hosts");
  r[0] = rule(1, NULL, "fix.example.com", "/", TG_PATH_PREFIX);
  r[1] = rule(2, NULL, "*.example.com", "/", TG_PATH_PREFIX);
  r[2] = rule(3, NULL, NULL, "/", TG_PATH_PREFIX);
  r[3] = rule(4, NULL, "*.b.example.com", "/", TG_PATH_PREFIX);
  r[4] = rule(5, NULL, "", "/orders/new", TG_PATH_EXACT);
  t = BUILD(r, 5);
  CHECK_EQ(route_of(t, "GET", "fix.example.com", "/x"), 1);
  CHECK_EQ(route_of(t, "GET", "FIX.Example.COM", "/x"), 1);
  CHECK_EQ(route_of(t, "GET", "fix.example.com:8443", "/x"), 1);
  CHECK_EQ(route_of(t, "GET", "Fix.Example.Com.:443", "/x"), 1);
  CHECK_EQ(route_of(t, "GET", "api.example.com", "/x"), 2);
  CHECK_EQ(route_of(t, "GET", "API.EXAMPLE.COM:80", "/x"), 2);
  CHECK_EQ(route_of(t, "GET", "a.c.example.com", "/x"), 2);
  CHECK_EQ(route_of(t, "GET", "x.b.example.com", "/x"), 4); /* longer suffix */
  CHECK_EQ(route_of(t, "GET", "example.com", "/x"), 3);     /* not below itself */
  CHECK_EQ(route_of(t, "GET", "badexample.com", "/x"), 3);
  CHECK_EQ(route_of(t, "GET", "other.org", "/x"), 3);
  CHECK_EQ(route_of(t, "GET", NULL, "/x"), 3);
  /* host is compared before path: an exact host with a "/" prefix beats an
   * any-host exact path */
  CHECK_EQ(route_of(t, "GET", "fix.example.com", "/orders/new"), 1);
  CHECK_EQ(route_of(t, "GET", "other.org", "/orders/new"), 5);
  CHECK_EQ(route_of(t, "GET", NULL, "/orders/new"), 5);
  tg_route_table_free(t);
}

static void test_precedence_methods(void) {
  tg_route_rule r[4];
  tg_route_table* t;
  tg_route_match m;
  CTX("precedence: methods");
  r[0] = rule(1, "GET,POST", NULL, "/m", TG_PATH_EXACT);
  r[1] = rule(2, "POST", NULL, "/m", TG_PATH_EXACT);
  r[2] = rule(3, NULL, NULL, "/m", TG_PATH_EXACT);
  r[3] = rule(4, "GET", NULL, "/n", TG_PATH_EXACT);
  t = BUILD(r, 4);
  CHECK_EQ(route_of(t, "POST", NULL, "/m"), 2);
  CHECK_EQ(route_of(t, "GET", NULL, "/m"), 1);
  CHECK_EQ(route_of(t, "DELETE", NULL, "/m"), 3);
  CHECK_EQ(route_of(t, "get", NULL, "/m"), 3); /* methods are case-sensitive */
  CHECK_EQ(route_of(t, "GET", NULL, "/n"), 4);
  m = match3(t, "POST", NULL, "/n");
  CHECK_EQ(m.status, TG_ROUTE_METHOD_NOT_ALLOWED);
  m = match3(t, "get", NULL, "/n");
  CHECK_EQ(m.status, TG_ROUTE_METHOD_NOT_ALLOWED);
  m = match3(t, "GET", NULL, "/nope");
  CHECK_EQ(m.status, TG_ROUTE_NO_ROUTE);
  tg_route_table_free(t);
}

/* The route id of GET path with the given headers. */
static uint64_t route_h(const tg_route_table* t, const char* path, const tg_header* h, size_t n) {
  tg_route_request q = request("GET", NULL, path);
  tg_route_match m;
  q.headers = h;
  q.header_count = n;
  m = match_q(t, &q);
  if (m.status != TG_ROUTE_MATCHED) return NOT_MATCHED(m.status);
  return m.route_id;
}

static void test_precedence_headers(void) {
  tg_header_predicate p_flag = {"X-Flag", NULL, TG_HEADER_PRESENT, 0};
  tg_header_predicate p_mode = {"X-Mode", "live", TG_HEADER_EXACT, 0};
  tg_header_predicate p_auth = {"Authorization", "Bearer ", TG_HEADER_PREFIX, 0};
  tg_header_predicate p_env = {"X-Env", "prod", TG_HEADER_EXACT, 1};
  tg_header_predicate p_ab[2] = {{"X-A", NULL, TG_HEADER_PRESENT, 0},
                                 {"X-B", "", TG_HEADER_PRESENT, 0}};
  tg_route_rule r[9];
  tg_route_table* t;
  tg_header h[3];
  CTX("precedence: headers");
  r[0] = rule(10, NULL, NULL, "/hp", TG_PATH_EXACT);
  r[0].headers = &p_flag;
  r[0].header_count = 1;
  r[1] = rule(11, NULL, NULL, "/hp", TG_PATH_EXACT);
  r[2] = rule(20, NULL, NULL, "/he", TG_PATH_EXACT);
  r[2].headers = &p_mode;
  r[2].header_count = 1;
  r[3] = rule(21, NULL, NULL, "/he", TG_PATH_EXACT);
  r[4] = rule(30, NULL, NULL, "/hx", TG_PATH_EXACT);
  r[4].headers = &p_auth;
  r[4].header_count = 1;
  r[5] = rule(31, NULL, NULL, "/hx", TG_PATH_EXACT);
  r[6] = rule(40, NULL, NULL, "/hi", TG_PATH_EXACT);
  r[6].headers = &p_env;
  r[6].header_count = 1;
  r[7] = rule(50, NULL, NULL, "/hm", TG_PATH_EXACT);
  r[7].headers = p_ab;
  r[7].header_count = 1;
  r[8] = rule(51, NULL, NULL, "/hm", TG_PATH_EXACT);
  r[8].headers = p_ab;
  r[8].header_count = 2;
  t = BUILD(r, 9);

  /* PRESENT, name case-insensitive */
  CHECK_EQ(route_h(t, "/hp", NULL, 0), 11);
  h[0] = hdr("x-flag", "");
  CHECK_EQ(route_h(t, "/hp", h, 1), 10);
  h[0] = hdr("X-FLAG", "anything");
  CHECK_EQ(route_h(t, "/hp", h, 1), 10);
  h[0] = hdr("X-Flags", "1");
  CHECK_EQ(route_h(t, "/hp", h, 1), 11);

  /* EXACT, value byte for byte, any occurrence */
  h[0] = hdr("X-Mode", "live");
  CHECK_EQ(route_h(t, "/he", h, 1), 20);
  h[0] = hdr("x-mode", "Live");
  CHECK_EQ(route_h(t, "/he", h, 1), 21);
  h[0] = hdr("X-Mode", "live2");
  CHECK_EQ(route_h(t, "/he", h, 1), 21);
  h[0] = hdr("X-Mode", "test");
  h[1] = hdr("X-Mode", "live");
  CHECK_EQ(route_h(t, "/he", h, 2), 20);

  /* PREFIX */
  h[0] = hdr("Authorization", "Bearer abc");
  CHECK_EQ(route_h(t, "/hx", h, 1), 30);
  h[0] = hdr("authorization", "Bearer ");
  CHECK_EQ(route_h(t, "/hx", h, 1), 30);
  h[0] = hdr("Authorization", "Basic abc");
  CHECK_EQ(route_h(t, "/hx", h, 1), 31);
  h[0] = hdr("Authorization", "Bearer");
  CHECK_EQ(route_h(t, "/hx", h, 1), 31);

  /* inverted: holds when no occurrence equals "prod" */
  CHECK_EQ(route_h(t, "/hi", NULL, 0), 40);
  h[0] = hdr("X-Env", "dev");
  CHECK_EQ(route_h(t, "/hi", h, 1), 40);
  h[0] = hdr("X-Env", "prod");
  CHECK_EQ(route_h(t, "/hi", h, 1), NOT_MATCHED(TG_ROUTE_NO_ROUTE));
  h[0] = hdr("X-Env", "dev");
  h[1] = hdr("x-env", "prod"); /* a decoy duplicate does not make it hold */
  CHECK_EQ(route_h(t, "/hi", h, 2), NOT_MATCHED(TG_ROUTE_NO_ROUTE));

  /* more predicates win */
  h[0] = hdr("X-A", "1");
  h[1] = hdr("X-B", "2");
  h[2] = hdr("X-C", "3");
  CHECK_EQ(route_h(t, "/hm", h, 3), 51);
  CHECK_EQ(route_h(t, "/hm", h, 1), 50);
  CHECK_EQ(route_h(t, "/hm", h + 1, 2), NOT_MATCHED(TG_ROUTE_NO_ROUTE));
  tg_route_table_free(t);
}

static void test_precedence_priority(void) {
  tg_route_rule r[4];
  tg_route_table* t;
  CTX("precedence: priority");
  r[0] = rule(60, NULL, NULL, "/pr/{a}", TG_PATH_EXACT);
  r[1] = rule(61, NULL, NULL, "/pr/{b}", TG_PATH_EXACT);
  r[1].priority = 7;
  r[2] = rule(62, NULL, NULL, "/pr/lit", TG_PATH_EXACT);
  r[2].priority = -5; /* specificity first: the literal still wins */
  r[3] = rule(63, NULL, NULL, "/q/{a}", TG_PATH_EXACT);
  r[3].priority = -1;
  t = BUILD(r, 4);
  CHECK_EQ(route_of(t, "GET", NULL, "/pr/x"), 61);
  CHECK_EQ(route_of(t, "GET", NULL, "/pr/lit"), 62);
  CHECK_EQ(route_of(t, "GET", NULL, "/q/z"), 63);
  tg_route_table_free(t);
  /* the same two rules the other way round */
  r[0].priority = 9;
  t = BUILD(r, 2);
  CHECK_EQ(route_of(t, "GET", NULL, "/pr/x"), 60);
  tg_route_table_free(t);
}

static void test_precedence(void) {
  test_precedence_paths();
  test_precedence_hosts();
  test_precedence_methods();
  test_precedence_headers();
  test_precedence_priority();
}

/* ------------------------------------------------------------------------ */
/* 2. Parameters                                                             */
/* ------------------------------------------------------------------------ */

/* Parameter i of m is the bytes want of path. */
static int param_is(const char* path, const tg_route_match* m, uint32_t i, const char* want) {
  size_t n = strlen(want);
  if (i >= m->param_count) return 0;
  return m->params[i].length == n && memcmp(path + m->params[i].offset, want, n) == 0;
}

/* Parameter i of rule ri of t is named want. */
static int name_is(const tg_route_table* t, uint32_t ri, uint32_t i, const char* want) {
  const char* name = NULL;
  size_t len = 0;
  if (tg_route_table_param_name(t, ri, i, &name, &len) != TG_OK || name == NULL) return 0;
  return len == strlen(want) && memcmp(name, want, len) == 0;
}

static void test_params(void) {
  static const char path[] = "//accounts/AC%2d1/./orders/o-9?x=1";
  tg_route_rule r[3];
  tg_route_table* t;
  tg_route_match m;
  const char* name = NULL;
  size_t len = 0;
  CTX("params");
  r[0] = rule(1, NULL, NULL, "/accounts/{account}/orders/{order}", TG_PATH_EXACT);
  r[1] = rule(2, NULL, NULL, "/files/{*rest}", TG_PATH_EXACT);
  r[2] = rule(3, NULL, NULL, "/static", TG_PATH_PREFIX);
  t = BUILD(r, 3);

  m = match3(t, "GET", NULL, path);
  CHECK_EQ(m.status, TG_ROUTE_MATCHED);
  CHECK_EQ(m.route_id, 1);
  CHECK_EQ(m.rule_index, 0);
  CHECK_EQ(m.param_count, 2);
  CHECK(param_is(path, &m, 0, "AC%2d1")); /* the raw spelling, not decoded */
  CHECK(param_is(path, &m, 1, "o-9"));
  CHECK(name_is(t, 0, 0, "account"));
  CHECK(name_is(t, 0, 1, "order"));
  CHECK_RC(tg_route_table_param_name(t, 0, 2, &name, &len), TG_ERANGE);
  CHECK_RC(tg_route_table_param_name(t, 3, 0, &name, &len), TG_ERANGE);
  CHECK_RC(tg_route_table_param_name(t, UINT32_MAX, 0, &name, &len), TG_ERANGE);
  CHECK_RC(tg_route_table_param_name(t, 2, 0, &name, &len), TG_ERANGE); /* no params */

  /* {*rest} captures the remaining segments */
  {
    static const char p2[] = "/files/a/b/c.txt";
    m = match3(t, "GET", NULL, p2);
    CHECK_EQ(m.status, TG_ROUTE_MATCHED);
    CHECK_EQ(m.route_id, 2);
    CHECK_EQ(m.param_count, 1);
    CHECK(m.param_count == 1 && memcmp(p2 + m.params[0].offset, "a", 1) == 0);
    CHECK(m.param_count == 1 && m.params[0].offset + m.params[0].length == (uint32_t)strlen(p2));
    CHECK(name_is(t, 1, 0, "rest"));
    m = match3(t, "GET", NULL, "/files");
    CHECK_EQ(m.status, TG_ROUTE_NO_ROUTE); /* one or more segments */
  }
  m = match3(t, "GET", NULL, "/static/css/x.css");
  CHECK_EQ(m.status, TG_ROUTE_MATCHED);
  CHECK_EQ(m.route_id, 3);
  CHECK_EQ(m.param_count, 0);
  tg_route_table_free(t);
}

/* ------------------------------------------------------------------------ */
/* 3. Normalisation                                                          */
/* ------------------------------------------------------------------------ */

/* tg_path_normalize(in) succeeds with exactly `want`. */
static int normalizes_to(const char* in, const char* want) {
  char buf[256];
  size_t w = 12345;
  int st = -1;
  int rc = tg_path_normalize(in, strlen(in), buf, sizeof buf, &w, &st);
  return rc == TG_OK && w == strlen(want) && memcmp(buf, want, w) == 0;
}

static void test_normalisation(void) {
  static const char* const same[] = {"/admin/keys",      "//admin///keys/", "/admin/./keys",
                                     "/admin/x/../keys", "/%61dmin/keys",   "/admin/keys?x=1",
                                     "/admin/keys#frag", "/../admin/keys",  "/admin/%6b%65ys"};
  static const char* const sep[] = {"/admin%2Fkeys", "/admin%2fkeys", "/admin%5ckeys",
                                    "/admin%5Ckeys", "/admin\\keys"};
  static const char* const enc[] = {"/a%zz", "/a%4", "/a%", "/a%00", "/a%0a", "/a\tb"};
  tg_route_rule r[2];
  tg_route_table* t;
  tg_route_match m;
  size_t i;
  char buf[64];
  size_t w = 0;
  int st = -1;
  CTX("normalisation");
  r[0] = rule(7, NULL, NULL, "/admin/keys", TG_PATH_EXACT);
  r[1] = rule(8, NULL, NULL, "/", TG_PATH_EXACT);
  t = BUILD(r, 2);
  for (i = 0; i < sizeof same / sizeof same[0]; ++i) {
    CTX("normalisation: %s", same[i]);
    CHECK_EQ(route_of(t, "GET", NULL, same[i]), 7);
  }
  for (i = 0; i < sizeof sep / sizeof sep[0]; ++i) {
    CTX("normalisation: %s", sep[i]);
    m = match3(t, "GET", NULL, sep[i]);
    CHECK_EQ(m.status, TG_ROUTE_AMBIGUOUS_SEPARATOR);
  }
  for (i = 0; i < sizeof enc / sizeof enc[0]; ++i) {
    CTX("normalisation: %s", enc[i]);
    m = match3(t, "GET", NULL, enc[i]);
    CHECK_EQ(m.status, TG_ROUTE_BAD_ENCODING);
  }
  CTX("normalisation: NUL byte");
  {
    tg_route_request q = request("GET", NULL, "/a");
    static const char raw[] = {'/', 'a', '\0', 'b'};
    q.path = raw;
    q.path_len = sizeof raw;
    m = match_q(t, &q);
    CHECK_EQ(m.status, TG_ROUTE_BAD_ENCODING);
  }
  CTX("normalisation: not absolute");
  m = match3(t, "GET", NULL, "a/b");
  CHECK_EQ(m.status, TG_ROUTE_PATH_NOT_ABSOLUTE);
  m = match3(t, "GET", NULL, "");
  CHECK_EQ(m.status, TG_ROUTE_PATH_NOT_ABSOLUTE);
  m = match3(t, "GET", NULL, NULL); /* NULL with length 0 is "" */
  CHECK_EQ(m.status, TG_ROUTE_PATH_NOT_ABSOLUTE);
  CTX("normalisation: root");
  CHECK_EQ(route_of(t, "GET", NULL, "/"), 8);
  CHECK_EQ(route_of(t, "GET", NULL, "//"), 8);
  CHECK_EQ(route_of(t, "GET", NULL, "/.."), 8);
  CHECK_EQ(route_of(t, "GET", NULL, "/?q"), 8);
  tg_route_table_free(t);

  CTX("tg_path_normalize");
  CHECK(normalizes_to("/a/./b/../c//", "/a/c"));
  CHECK(normalizes_to("/%7Euser", "/~user"));
  CHECK(normalizes_to("/", "/"));
  CHECK(normalizes_to("//", "/"));
  CHECK(normalizes_to("/../..", "/"));
  CHECK(normalizes_to("/x?y=/../z", "/x"));
  CHECK(normalizes_to("/%61%62c", "/abc"));
  CHECK(normalizes_to("/a%20b", "/a%20b")); /* a space is not a pchar: escaped again */
  CHECK(normalizes_to("/a%3fb", "/a%3Fb")); /* '?' decoded, then escaped, upper-case hex */

  /* too small: the needed size in *written */
  w = 0;
  CHECK_RC(tg_path_normalize("/abcdef", 7, buf, 3, &w, &st), TG_ETOOSMALL);
  CHECK_EQ(w, 7);
  w = 0;
  CHECK_RC(tg_path_normalize("/a/./b/../c//", 13, buf, 3, &w, &st), TG_ETOOSMALL);
  CHECK_EQ(w, 4);
  w = 0;
  CHECK_RC(tg_path_normalize("/a/./b/../c//", 13, buf, 4, &w, &st), TG_OK);
  CHECK_EQ(w, 4);
  CHECK(memcmp(buf, "/a/c", 4) == 0);

  /* refused: TG_EINVAL with the reason */
  st = -1;
  CHECK_RC(tg_path_normalize("/a%2fb", 6, buf, sizeof buf, &w, &st), TG_EINVAL);
  CHECK_EQ(st, TG_ROUTE_AMBIGUOUS_SEPARATOR);
  st = -1;
  CHECK_RC(tg_path_normalize("/a%zz", 5, buf, sizeof buf, &w, &st), TG_EINVAL);
  CHECK_EQ(st, TG_ROUTE_BAD_ENCODING);
  st = -1;
  CHECK_RC(tg_path_normalize("a", 1, buf, sizeof buf, &w, &st), TG_EINVAL);
  CHECK_EQ(st, TG_ROUTE_PATH_NOT_ABSOLUTE);
  CHECK_RC(tg_path_normalize("/a%2fb", 6, buf, sizeof buf, &w, NULL), TG_EINVAL);

  CTX("tg_route_status_str");
  CHECK(strcmp(tg_route_status_str(TG_ROUTE_MATCHED), "matched") == 0);
  CHECK(strcmp(tg_route_status_str(TG_ROUTE_METHOD_NOT_ALLOWED), "method_not_allowed") == 0);
  CHECK(strcmp(tg_route_status_str(1), "no_route") == 0);
  CHECK(strcmp(tg_route_status_str(99), "unknown") == 0);
  CHECK(strcmp(tg_route_status_str(-1), "unknown") == 0);
  for (i = 0; i <= 8; ++i) {
    const char* s = tg_route_status_str((int)i);
    CHECK(s != NULL && strcmp(s, "unknown") != 0);
  }
}

/* ------------------------------------------------------------------------ */
/* 4. Build errors                                                           */
/* ------------------------------------------------------------------------ */

/* tg_route_table_new on o fails with want_rc; *bad_rule is want_bad; the
 * message starts with prefix (NULL: not checked); *out is untouched. */
static void build_fails_at(const char* file, int line, const tg_route_table_options* o, int want_rc,
                           size_t want_bad, const char* prefix) {
  int sentinel_target = 0;
  tg_route_table* const sentinel = (tg_route_table*)(void*)&sentinel_target;
  tg_route_table* out = sentinel;
  size_t bad = 777;
  tg_error err;
  int rc;
  memset(&err, 0, sizeof err);
  rc = tg_route_table_new(o, &out, &bad, &err);
  check_status_at(file, line, "tg_route_table_new", rc, want_rc);
  if (rc == TG_OK && out != sentinel) tg_route_table_free(out);
  ++g_checks;
  if (out != sentinel) report_failure(file, line, "*out was written on failure");
  ++g_checks;
  if (bad != want_bad) {
    char m[128];
    snprintf(m, sizeof m, "bad_rule == %lu, expected %lu", (unsigned long)bad,
             (unsigned long)want_bad);
    report_failure(file, line, m);
  }
  ++g_checks;
  if (err.message[0] == '\0') report_failure(file, line, "no error message");
  if (prefix) {
    ++g_checks;
    if (strncmp(err.message, prefix, strlen(prefix)) != 0) {
      char m[TG_ERROR_MESSAGE_SIZE + 64];
      snprintf(m, sizeof m, "message \"%s\" does not start with \"%s\"", err.message, prefix);
      report_failure(file, line, m);
    }
  }
}
#define BUILD_FAILS(o, rc, bad, prefix) \
  build_fails_at(__FILE__, __LINE__, (o), (rc), (bad), (prefix))

/* The good rule "/good" followed by `second`: rule 1 is refused. */
static void second_fails_at(const char* file, int line, tg_route_rule second, int want_rc) {
  tg_route_rule r[2];
  tg_route_table_options o;
  r[0] = rule(1, NULL, NULL, "/good", TG_PATH_EXACT);
  r[1] = second;
  tg_route_table_options_init(&o);
  o.rules = r;
  o.rule_count = 2;
  build_fails_at(file, line, &o, want_rc, 1, "rule 1: ");
}
#define SECOND_FAILS(r, rc) second_fails_at(__FILE__, __LINE__, (r), (rc))

/* n copies of r, each padded to sizeof(tg_route_rule) + 8 bytes, the padding
 * filled with `tail`; struct_size set to the padded size. */
static unsigned char* padded_rules(const tg_route_rule* r, size_t n, unsigned char tail) {
  const size_t stride = sizeof(tg_route_rule) + 8;
  unsigned char* buf = (unsigned char*)malloc(stride * n);
  size_t i;
  REQUIRE(buf != NULL);
  memset(buf, tail, stride * n);
  for (i = 0; i < n; ++i) {
    tg_route_rule c = r[i];
    c.struct_size = (uint32_t)stride;
    memcpy(buf + i * stride, &c, sizeof c);
  }
  return buf;
}

static void test_build_errors(void) {
  tg_header_predicate preds[17];
  tg_route_rule r[3];
  tg_route_table_options o;
  size_t i;
  CTX("build errors: rule 1");
  for (i = 0; i < 17; ++i) {
    preds[i].name = "X-H";
    preds[i].value = NULL;
    preds[i].op = TG_HEADER_PRESENT;
    preds[i].invert = 0;
  }
  SECOND_FAILS(rule(2, NULL, NULL, "/a/{b", TG_PATH_EXACT), TG_EINVAL);
  SECOND_FAILS(rule(2, NULL, NULL, "/a//b", TG_PATH_EXACT), TG_EINVAL);
  SECOND_FAILS(rule(2, NULL, NULL, "/a/{x}/{x}", TG_PATH_EXACT), TG_EINVAL);
  SECOND_FAILS(rule(2, NULL, NULL, "/a/{*r}/b", TG_PATH_EXACT), TG_EINVAL);
  SECOND_FAILS(rule(2, NULL, NULL, "/a/x{b}", TG_PATH_EXACT), TG_EINVAL);
  SECOND_FAILS(rule(2, NULL, NULL, "/a/./b", TG_PATH_EXACT), TG_EINVAL);
  SECOND_FAILS(rule(2, NULL, NULL, "/a/../b", TG_PATH_EXACT), TG_EINVAL);
  SECOND_FAILS(rule(2, NULL, NULL, "no/slash", TG_PATH_EXACT), TG_EINVAL);
  SECOND_FAILS(rule(2, NULL, NULL, NULL, TG_PATH_EXACT), TG_EINVAL);
  SECOND_FAILS(rule(2, NULL, NULL, "/a", 2), TG_EINVAL); /* path_kind */
  SECOND_FAILS(rule(2, NULL, "bad host!", "/a", TG_PATH_EXACT), TG_EINVAL);
  SECOND_FAILS(rule(2, "GET,,POST", NULL, "/a", TG_PATH_EXACT), TG_EINVAL);
  SECOND_FAILS(rule(2, NULL, NULL, "/good", TG_PATH_EXACT), TG_EINVAL); /* duplicate */
  r[0] = rule(2, NULL, NULL, "/a", TG_PATH_EXACT);
  r[0].reserved = 1;
  SECOND_FAILS(r[0], TG_EINVAL);
  r[0] = rule(2, NULL, NULL, "/a", TG_PATH_EXACT);
  r[0].venue_set = 0; /* no venue sets */
  SECOND_FAILS(r[0], TG_EINVAL);
  r[0] = rule(2, NULL, NULL, "/a", TG_PATH_EXACT);
  r[0].headers = preds;
  r[0].header_count = 17;
  SECOND_FAILS(r[0], TG_ERANGE);
  r[0].header_count = 16; /* the limit itself is fine */
  {
    tg_route_table* t = BUILD(r, 1);
    tg_route_table_free(t);
  }
  r[0] = rule(2, NULL, NULL, "/a", TG_PATH_EXACT);
  preds[0].name = "bad name";
  r[0].headers = preds;
  r[0].header_count = 1;
  SECOND_FAILS(r[0], TG_EINVAL);
  preds[0].name = "X-H";
  preds[0].op = 3;
  SECOND_FAILS(r[0], TG_EINVAL);
  preds[0].op = TG_HEADER_PRESENT;
  preds[0].value = "v"; /* PRESENT needs NULL or "" */
  SECOND_FAILS(r[0], TG_EINVAL);
  preds[0].value = NULL;
  preds[0].invert = 2; /* 0 or 1 */
  SECOND_FAILS(r[0], TG_EINVAL);
  preds[0].invert = 0;
  r[0].headers = NULL; /* header_count 1 with NULL headers */
  SECOND_FAILS(r[0], TG_EINVAL);

  CTX("build errors: duplicate with a renamed parameter");
  r[0] = rule(1, NULL, NULL, "/o/{x}", TG_PATH_EXACT);
  r[1] = rule(2, NULL, NULL, "/o/{y}", TG_PATH_EXACT);
  tg_route_table_options_init(&o);
  o.rules = r;
  o.rule_count = 2;
  BUILD_FAILS(&o, TG_EINVAL, 1, "rule 1: ");

  CTX("build errors: differing struct_size");
  r[0] = rule(1, NULL, NULL, "/a", TG_PATH_EXACT);
  r[1] = rule(2, NULL, NULL, "/b", TG_PATH_EXACT);
  r[2] = rule(3, NULL, NULL, "/c", TG_PATH_EXACT);
  r[2].struct_size = (uint32_t)sizeof(tg_route_rule) - 4;
  o.rules = r;
  o.rule_count = 3;
  BUILD_FAILS(&o, TG_EVERSION, 2, NULL);
  r[2].struct_size = (uint32_t)sizeof(tg_route_rule);
  r[1].struct_size = (uint32_t)sizeof(tg_route_rule) + 8;
  BUILD_FAILS(&o, TG_EVERSION, 1, NULL);

  CTX("build errors: struct_size too small");
  r[0].struct_size = r[1].struct_size = r[2].struct_size = 8;
  BUILD_FAILS(&o, TG_EVERSION, 0, NULL);
  r[0].struct_size = r[1].struct_size = r[2].struct_size = 0;
  BUILD_FAILS(&o, TG_EVERSION, 0, NULL);
  r[0].struct_size = r[1].struct_size = r[2].struct_size = (uint32_t)sizeof(tg_route_rule);
  o.struct_size = 4;
  BUILD_FAILS(&o, TG_EVERSION, SIZE_MAX, NULL);
  o.struct_size = 0;
  BUILD_FAILS(&o, TG_EVERSION, SIZE_MAX, NULL);
  tg_route_table_options_init(&o);
  o.rules = r;
  o.rule_count = 3;
  o.reserved = 1;
  BUILD_FAILS(&o, TG_EINVAL, SIZE_MAX, NULL);

  CTX("build errors: larger struct_size");
  {
    unsigned char* zero = padded_rules(r, 3, 0);
    unsigned char* junk = padded_rules(r, 3, 0);
    tg_route_table* t;
    size_t n = 0;
    tg_route_table_options_init(&o);
    o.rules = (const tg_route_rule*)(const void*)zero;
    o.rule_count = 3;
    {
      tg_route_table* out = NULL;
      size_t bad = 0;
      tg_error err;
      memset(&err, 0, sizeof err);
      CHECK_RC(tg_route_table_new(&o, &out, &bad, &err), TG_OK);
      t = out;
    }
    if (t != NULL) {
      CHECK_RC(tg_route_table_rule_count(t, &n), TG_OK);
      CHECK_EQ(n, 3);
      CHECK_EQ(route_of(t, "GET", NULL, "/c"), 3);
      tg_route_table_free(t);
    }
    junk[2 * (sizeof(tg_route_rule) + 8) + sizeof(tg_route_rule) + 3] = 1; /* rule 2's tail */
    o.rules = (const tg_route_rule*)(const void*)junk;
    BUILD_FAILS(&o, TG_EVERSION, 2, NULL);
    free(zero);
    free(junk);
  }

  CTX("build errors: rules NULL");
  tg_route_table_options_init(&o);
  o.rules = NULL;
  o.rule_count = 1;
  BUILD_FAILS(&o, TG_EINVAL, SIZE_MAX, NULL);
  o.rule_count = 0; /* an empty table is fine */
  {
    tg_route_table* out = NULL;
    CHECK_RC(tg_route_table_new(&o, &out, NULL, NULL), TG_OK);
    if (out) {
      tg_route_match m = match3(out, "GET", NULL, "/");
      CHECK_EQ(m.status, TG_ROUTE_NO_ROUTE);
      tg_route_table_free(out);
    }
  }
}

/* ------------------------------------------------------------------------ */
/* 5. Router                                                                 */
/* ------------------------------------------------------------------------ */

static tg_router* new_router_at(const char* file, int line, const tg_route_table* t) {
  tg_router* r = NULL;
  tg_error err;
  int rc;
  memset(&err, 0, sizeof err);
  rc = tg_router_new(t, &r, &err);
  if (rc != TG_OK) fprintf(stderr, "tg_router_new: %s: %s\n", tg_status_str(rc), err.message);
  REQUIRE_AT(file, line, rc == TG_OK && r != NULL,
             "REQUIRE(tg_router_new(...) == TG_OK && router != NULL)");
  return r;
}
#define NEW_ROUTER(t) new_router_at(__FILE__, __LINE__, (t))

static tg_route_match router_match3(const tg_router* r, const char* method, const char* path) {
  tg_route_request q = request(method, NULL, path);
  tg_route_match m;
  memset(&m, 0xAB, sizeof m);
  CHECK_RC(tg_router_match(r, &q, &m), TG_OK);
  return m;
}

static void test_router(void) {
  tg_route_rule rules[3];
  tg_route_table* t;
  tg_route_table* cur = NULL;
  tg_router* router;
  tg_route_match m;
  tg_route_request q[3];
  tg_route_match many[3], one[3];
  uint64_t version = 99;
  size_t n = 0;
  int i;
  tg_error err;
  CTX("router: empty");
  router = NEW_ROUTER(NULL);
  m = router_match3(router, "GET", "/");
  CHECK_EQ(m.status, TG_ROUTE_NO_ROUTE);
  m = router_match3(router, "GET", "/orders/1");
  CHECK_EQ(m.status, TG_ROUTE_NO_ROUTE);
  CHECK_RC(tg_router_version(router, &version), TG_OK);
  CHECK_EQ(version, 0);
  CHECK_RC(tg_router_current(router, &cur), TG_OK);
  REQUIRE(cur != NULL);
  CHECK_RC(tg_route_table_rule_count(cur, &n), TG_OK);
  CHECK_EQ(n, 0);
  tg_route_table_free(cur);
  cur = NULL;

  CTX("router: publish");
  rules[0] = rule(1, "GET", NULL, "/orders/{id}", TG_PATH_EXACT);
  rules[0].target = 100;
  rules[1] = rule(2, NULL, NULL, "/accounts", TG_PATH_PREFIX);
  rules[1].target = 200;
  rules[2] = rule(3, NULL, NULL, "/", TG_PATH_EXACT);
  t = BUILD(rules, 3);
  memset(&err, 0, sizeof err);
  CHECK_RC(tg_router_publish(router, t, &err), TG_OK);
  CHECK_RC(tg_router_version(router, &version), TG_OK);
  CHECK_EQ(version, 1);
  CHECK_RC(tg_router_current(router, &cur), TG_OK);
  REQUIRE(cur != NULL);
  CHECK_RC(tg_route_table_rule_count(cur, &n), TG_OK);
  CHECK_EQ(n, 3);
  tg_route_table_free(cur);
  cur = NULL;
  m = router_match3(router, "GET", "/orders/7");
  CHECK_EQ(m.status, TG_ROUTE_MATCHED);
  CHECK_EQ(m.route_id, 1);
  CHECK_EQ(m.target, 100);
  CHECK_EQ(m.param_count, 1);

  CTX("router: match_many");
  q[0] = request("GET", NULL, "/orders/7");
  q[1] = request("PUT", NULL, "/orders/7");
  q[2] = request("GET", "h.example.com", "/accounts/a/b");
  memset(many, 0xAB, sizeof many);
  memset(one, 0xAB, sizeof one);
  CHECK_RC(tg_router_match_many(router, q, 3, many), TG_OK);
  for (i = 0; i < 3; ++i) CHECK_RC(tg_router_match(router, &q[i], &one[i]), TG_OK);
  for (i = 0; i < 3; ++i) {
    CTX("router: match_many [%d]", i);
    CHECK_EQ(many[i].status, one[i].status);
    if (one[i].status == TG_ROUTE_MATCHED) {
      CHECK_EQ(many[i].route_id, one[i].route_id);
      CHECK_EQ(many[i].rule_index, one[i].rule_index);
      CHECK_EQ(many[i].target, one[i].target);
      CHECK_EQ(many[i].param_count, one[i].param_count);
      CHECK(memcmp(many[i].params, one[i].params, one[i].param_count * sizeof(tg_route_param)) ==
            0);
    }
  }
  CHECK_EQ(many[0].status, TG_ROUTE_MATCHED);
  CHECK_EQ(many[1].status, TG_ROUTE_METHOD_NOT_ALLOWED);
  CHECK_EQ(many[2].status, TG_ROUTE_MATCHED);
  CHECK_EQ(many[2].route_id, 2);
  /* the table's own match_many agrees */
  memset(one, 0xAB, sizeof one);
  CHECK_RC(tg_route_table_match_many(t, q, 3, one), TG_OK);
  for (i = 0; i < 3; ++i) {
    CTX("router: table match_many [%d]", i);
    CHECK_EQ(many[i].status, one[i].status);
    CHECK_EQ(many[i].route_id * (many[i].status == 0), one[i].route_id * (one[i].status == 0));
  }

  CTX("router: the table outlives the caller's handle");
  tg_route_table_free(t);
  m = router_match3(router, "GET", "/orders/8");
  CHECK_EQ(m.status, TG_ROUTE_MATCHED);
  CHECK_EQ(m.route_id, 1);
  m = router_match3(router, "GET", "/");
  CHECK_EQ(m.route_id * (m.status == TG_ROUTE_MATCHED), 3);

  CTX("router: republish");
  rules[0] = rule(9, NULL, NULL, "/v2", TG_PATH_EXACT);
  t = BUILD(rules, 1);
  CHECK_RC(tg_router_publish(router, t, NULL), TG_OK);
  tg_route_table_free(t);
  CHECK_RC(tg_router_version(router, &version), TG_OK);
  CHECK_EQ(version, 2);
  m = router_match3(router, "GET", "/orders/8");
  CHECK_EQ(m.status, TG_ROUTE_NO_ROUTE);
  m = router_match3(router, "GET", "/v2");
  CHECK_EQ(m.route_id * (m.status == TG_ROUTE_MATCHED), 9);
  tg_router_free(router);

  CTX("router: initial table, freed at once");
  rules[0] = rule(4, NULL, NULL, "/init", TG_PATH_EXACT);
  t = BUILD(rules, 1);
  router = NEW_ROUTER(t);
  tg_route_table_free(t);
  CHECK_RC(tg_router_version(router, &version), TG_OK);
  CHECK_EQ(version, 0);
  m = router_match3(router, "GET", "/init");
  CHECK_EQ(m.route_id * (m.status == TG_ROUTE_MATCHED), 4);
  tg_router_free(router);
}

/* ------------------------------------------------------------------------ */
/* 6. Venue sets                                                             */
/* ------------------------------------------------------------------------ */

static tg_venue_set* new_set_at(const char* file, int line, const tg_venue_set_options* o) {
  tg_venue_set* v = NULL;
  tg_error err;
  int rc;
  memset(&err, 0, sizeof err);
  rc = tg_venue_set_new(o, &v, &err);
  if (rc != TG_OK) fprintf(stderr, "tg_venue_set_new: %s: %s\n", tg_status_str(rc), err.message);
  REQUIRE_AT(file, line, rc == TG_OK && v != NULL,
             "REQUIRE(tg_venue_set_new(...) == TG_OK && set != NULL)");
  return v;
}
#define NEW_SET(o) new_set_at(__FILE__, __LINE__, (o))

/* A set of n venues with ids 10, 20, ... and the given weights. */
static tg_venue_set* make_set(tg_venue* v, const uint32_t* weights, uint32_t n, uint32_t strategy,
                              int sticky) {
  tg_venue_set_options o;
  uint32_t i;
  for (i = 0; i < n; ++i) {
    v[i].venue_id = 10 * (i + 1);
    v[i].weight = weights[i];
    v[i].breaker = NULL;
  }
  tg_venue_set_options_init(&o);
  o.strategy = strategy;
  o.venues = v;
  o.venue_count = n;
  o.sticky = sticky;
  o.seed = 0x5eed;
  return NEW_SET(&o);
}

static tg_venue_pick pick(const tg_venue_set* s, const char* key, uint64_t nonce, uint64_t now) {
  tg_venue_pick p;
  memset(&p, 0xAB, sizeof p);
  CHECK_RC(tg_venue_set_pick(s, key, key ? strlen(key) : 0, nonce, now, &p), TG_OK);
  return p;
}

/* choose() with the pick's eligible mask gives the pick's venue. */
static int replays(const tg_venue_set* s, const char* key, uint64_t nonce, const tg_venue_pick* p) {
  tg_venue_pick c;
  memset(&c, 0xAB, sizeof c);
  if (tg_venue_set_choose(s, key, key ? strlen(key) : 0, nonce, p->eligible, &c) != TG_OK) return 0;
  return c.ok == p->ok && c.index == p->index && c.venue_id == p->venue_id &&
         c.alternative == p->alternative;
}

static int close_to(double got, double want, double tol) {
  return got >= want - tol && got <= want + tol;
}

static void test_venue_weighted(void) {
  static const uint32_t w[3] = {1, 2, 5};
  tg_venue v[3];
  tg_venue_set* s = make_set(v, w, 3, TG_VENUE_WEIGHTED, 0);
  uint32_t count[3] = {0, 0, 0}, n = 0;
  uint64_t nonce;
  int bad_shape = 0, not_replayed = 0;
  CTX("venue: weighted");
  CHECK_RC(tg_venue_set_size(s, &n), TG_OK);
  CHECK_EQ(n, 3);
  for (nonce = 0; nonce < 8000; ++nonce) {
    tg_venue_pick p = pick(s, NULL, nonce, 1000);
    if (p.ok != 1 || p.reason != TG_VENUE_OK || p.index >= 3 || p.venue_id != 10 * (p.index + 1) ||
        p.alternative != p.index || p.eligible != 7 || p.retry_after_ns != 0) {
      ++bad_shape;
      continue;
    }
    ++count[p.index];
    if (nonce % 16 == 0 && !replays(s, NULL, nonce, &p)) ++not_replayed;
  }
  CHECK_EQ(bad_shape, 0);
  CHECK_EQ(not_replayed, 0);
  CHECK(close_to(count[0] / 8000.0, 1.0 / 8, 0.03));
  CHECK(close_to(count[1] / 8000.0, 2.0 / 8, 0.03));
  CHECK(close_to(count[2] / 8000.0, 5.0 / 8, 0.03));
  /* the same nonce, the same venue */
  CHECK_EQ(pick(s, NULL, 4242, 1).index, pick(s, NULL, 4242, 99999).index);
  /* choose over a subset: only venues in the mask */
  {
    tg_venue_pick c;
    int outside = 0;
    for (nonce = 0; nonce < 500; ++nonce) {
      CHECK_RC(tg_venue_set_choose(s, NULL, 0, nonce, 0x5, &c), TG_OK);
      if (c.ok != 1 || (c.index != 0 && c.index != 2)) ++outside;
    }
    CHECK_EQ(outside, 0);
    CHECK_RC(tg_venue_set_choose(s, NULL, 0, 1, 0, &c), TG_OK);
    CHECK_EQ(c.ok, 0);
    CHECK_RC(tg_venue_set_choose(s, NULL, 0, 1, 0xF8, &c), TG_OK); /* bits beyond the size */
    CHECK_EQ(c.ok, 0);
  }
  tg_venue_set_free(s);
}

static void test_venue_breakers(void) {
  tg_breaker_options bo;
  tg_breaker* ba;
  tg_breaker* bb;
  tg_venue v[3];
  tg_venue_set_options o;
  tg_venue_set* s;
  tg_venue_pick p;
  tg_venue_stats st;
  const uint64_t T = 5000000000ull;
  uint64_t nonce;
  int picked_forced = 0, bad_mask = 0;
  CTX("venue: breakers");
  tg_breaker_options_init(&bo);
  CHECK_EQ(bo.open_ns, 1000000000ull);
  ba = NEW_BREAKER(&bo);
  bb = NEW_BREAKER(&bo);
  v[0].venue_id = 1;
  v[0].weight = 5;
  v[0].breaker = ba;
  v[1].venue_id = 2;
  v[1].weight = 1;
  v[1].breaker = bb;
  tg_venue_set_options_init(&o);
  o.venues = v;
  o.venue_count = 2;
  s = NEW_SET(&o);

  CHECK_RC(tg_breaker_transition(ba, TG_BREAKER_FORCED_OPEN, T), TG_OK);
  for (nonce = 0; nonce < 1000; ++nonce) {
    p = pick(s, NULL, nonce, T);
    if (p.ok != 1 || p.index == 0) ++picked_forced;
    if (p.eligible != 2) ++bad_mask;
  }
  CHECK_EQ(picked_forced, 0);
  CHECK_EQ(bad_mask, 0);
  CHECK_RC(tg_venue_set_stats(s, 0, T, &st), TG_OK);
  CHECK_EQ(st.ready_in_ns, UINT64_MAX);

  CTX("venue: all down");
  CHECK_RC(tg_venue_set_set_enabled(s, 1, 0), TG_OK);
  p = pick(s, NULL, 1, T);
  CHECK_EQ(p.ok, 0);
  CHECK_EQ(p.reason, TG_VENUE_ALL_DOWN);
  CHECK_EQ(p.retry_after_ns, UINT64_MAX);
  CHECK_EQ(p.eligible, 0);
  CHECK_RC(tg_venue_set_stats(s, 1, T, &st), TG_OK);
  CHECK_EQ(st.enabled, 0);
  CHECK_EQ(st.venue_id, 2);
  CHECK_EQ(st.weight, 1);

  CTX("venue: all open");
  CHECK_RC(tg_venue_set_set_enabled(s, 1, 1), TG_OK);
  CHECK_RC(tg_breaker_transition(bb, TG_BREAKER_OPEN, T), TG_OK);
  p = pick(s, NULL, 1, T);
  CHECK_EQ(p.ok, 0);
  CHECK_EQ(p.reason, TG_VENUE_ALL_OPEN);
  CHECK_EQ(p.retry_after_ns, bo.open_ns);
  CHECK_EQ(p.eligible, 0);
  CHECK_RC(tg_venue_set_stats(s, 1, T, &st), TG_OK);
  CHECK_EQ(st.ready_in_ns, bo.open_ns);
  CHECK_EQ(st.enabled, 1);
  p = pick(s, NULL, 1, T + bo.open_ns / 4);
  CHECK_EQ(p.reason, TG_VENUE_ALL_OPEN);
  CHECK_EQ(p.retry_after_ns, bo.open_ns - bo.open_ns / 4);
  /* the open period over: venue 1 gets the probes */
  p = pick(s, NULL, 1, T + bo.open_ns);
  CHECK_EQ(p.ok, 1);
  CHECK_EQ(p.index, 1);
  CHECK_EQ(p.eligible, 2);
  /* both breakers open at T: the same */
  CHECK_RC(tg_breaker_transition(ba, TG_BREAKER_CLOSED, T), TG_OK);
  CHECK_RC(tg_breaker_transition(ba, TG_BREAKER_OPEN, T), TG_OK);
  p = pick(s, NULL, 2, T);
  CHECK_EQ(p.ok, 0);
  CHECK_EQ(p.reason, TG_VENUE_ALL_OPEN);
  CHECK_EQ(p.retry_after_ns, bo.open_ns);
  tg_venue_set_free(s);
  tg_breaker_free(ba);
  tg_breaker_free(bb);
}

static void test_venue_sticky(void) {
  static const uint32_t w[4] = {1, 3, 2, 2};
  tg_venue v[4];
  tg_venue_set* s = make_set(v, w, 4, TG_VENUE_WEIGHTED, 1);
  static uint32_t before[2000];
  char key[32];
  int i, unstable = 0, moved_wrongly = 0, not_moved = 0, on_one = 0, not_back = 0;
  int not_replayed = 0;
  uint64_t nonce;
  CTX("venue: sticky");
  for (i = 0; i < 2000; ++i) {
    tg_venue_pick p;
    snprintf(key, sizeof key, "acct-%d", i);
    p = pick(s, key, 0, 1);
    before[i] = p.index;
    if (before[i] == 1) ++on_one;
    if (i < 50) {
      for (nonce = 1; nonce < 20; ++nonce) {
        tg_venue_pick q = pick(s, key, nonce * 7919, 1);
        if (q.index != p.index) ++unstable;
      }
      if (!replays(s, key, 12345, &p)) ++not_replayed;
    }
  }
  CHECK_EQ(unstable, 0);
  CHECK_EQ(not_replayed, 0);
  CHECK(on_one > 300 && on_one < 1200); /* weight 3 of 8: about 750 */
  CHECK_RC(tg_venue_set_set_enabled(s, 1, 0), TG_OK);
  for (i = 0; i < 2000; ++i) {
    tg_venue_pick p;
    snprintf(key, sizeof key, "acct-%d", i);
    p = pick(s, key, (uint64_t)i, 1);
    if (before[i] == 1) {
      if (p.ok != 1 || p.index == 1) ++not_moved;
    } else if (p.index != before[i]) {
      ++moved_wrongly;
    }
    if (i < 100 && !replays(s, key, (uint64_t)i, &p)) ++not_replayed;
  }
  CHECK_EQ(not_moved, 0);
  CHECK_EQ(moved_wrongly, 0);
  CHECK_EQ(not_replayed, 0);
  CHECK_RC(tg_venue_set_set_enabled(s, 1, 1), TG_OK);
  for (i = 0; i < 2000; ++i) {
    snprintf(key, sizeof key, "acct-%d", i);
    if (pick(s, key, 3, 1).index != before[i]) ++not_back;
  }
  CHECK_EQ(not_back, 0);
  tg_venue_set_free(s);
}

static void test_venue_latency(void) {
  static const uint32_t w[3] = {1, 1, 1};
  static const uint64_t lat[3] = {900, 100, 500};
  tg_venue v[3];
  tg_venue_set* s = make_set(v, w, 3, TG_VENUE_LEAST_LATENCY, 0);
  tg_venue_set_options o;
  tg_venue_stats st;
  uint32_t i, k, count[3] = {0, 0, 0};
  uint64_t nonce;
  int not_replayed = 0, bad_alt = 0;
  CTX("venue: least latency");
  for (k = 0; k < 10; ++k) {
    for (i = 0; i < 3; ++i) CHECK_RC(tg_venue_set_record_latency(s, i, lat[i], 1), TG_OK);
  }
  for (nonce = 0; nonce < 3000; ++nonce) {
    tg_venue_pick p = pick(s, NULL, nonce, 1);
    if (p.ok != 1 || p.index >= 3) continue;
    ++count[p.index];
    if (p.alternative >= 3 || (p.alternative != p.index && lat[p.alternative] < lat[p.index])) {
      ++bad_alt;
    }
    if (nonce % 8 == 0 && !replays(s, NULL, nonce, &p)) ++not_replayed;
  }
  CHECK_EQ(count[0] + count[1] + count[2], 3000);
  CHECK_EQ(count[0], 0);
  CHECK(count[1] > count[2]);
  CHECK_EQ(bad_alt, 0);
  CHECK_EQ(not_replayed, 0);
  CHECK_RC(tg_venue_set_stats(s, 1, 1, &st), TG_OK);
  CHECK_EQ(st.latency_samples, 10);
  CHECK_DBL(st.latency_ewma_ns, 100.0);
  tg_venue_set_free(s);

  CTX("venue: stats ewma");
  for (i = 0; i < 2; ++i) {
    v[i].venue_id = 7 + i;
    v[i].weight = 3;
    v[i].breaker = NULL;
  }
  tg_venue_set_options_init(&o);
  o.venues = v;
  o.venue_count = 2;
  o.latency_alpha = 0.25;
  s = NEW_SET(&o);
  CHECK_RC(tg_venue_set_stats(s, 0, 0, &st), TG_OK);
  CHECK_DBL(st.latency_ewma_ns, -1.0);
  CHECK_EQ(st.latency_samples, 0);
  CHECK_EQ(st.venue_id, 7);
  CHECK_EQ(st.weight, 3);
  CHECK_EQ(st.enabled, 1);
  CHECK_EQ(st.ready_in_ns, 0);
  CHECK_EQ(o.latency_decay_ns, 10000000000ull);
  CHECK_RC(tg_venue_set_record_latency(s, 0, 1000, 0), TG_OK);
  CHECK_RC(tg_venue_set_stats(s, 0, 0, &st), TG_OK);
  CHECK_DBL(st.latency_ewma_ns, 1000.0);
  CHECK_RC(tg_venue_set_record_latency(s, 0, 2000, 0), TG_OK);
  CHECK_RC(tg_venue_set_stats(s, 0, 0, &st), TG_OK);
  CHECK_DBL(st.latency_ewma_ns, 1250.0);
  CHECK_EQ(st.latency_samples, 2);
  /* idle for one time constant (10 s): e^-1 of it is left */
  CHECK_RC(tg_venue_set_stats(s, 0, 10000000000ull, &st), TG_OK);
  CHECK(close_to(st.latency_ewma_ns, 1250.0 * 0.36787944117144233, 0.01));
  CHECK_EQ(st.latency_samples, 2);
  CHECK_RC(tg_venue_set_stats(s, 1, 0, &st), TG_OK);
  CHECK_EQ(st.latency_samples, 0);
  CHECK_DBL(st.latency_ewma_ns, -1.0);
  tg_venue_set_free(s);

  CTX("venue: stats ewma, no decay");
  o.latency_decay_ns = 0;
  s = NEW_SET(&o);
  CHECK_RC(tg_venue_set_record_latency(s, 0, 1000, 0), TG_OK);
  CHECK_RC(tg_venue_set_record_latency(s, 0, 2000, 5000000000ull), TG_OK);
  CHECK_RC(tg_venue_set_stats(s, 0, 100000000000ull, &st), TG_OK);
  CHECK_DBL(st.latency_ewma_ns, 1250.0);
  tg_venue_set_free(s);
}

static tg_route_decision route(const tg_router* r, const char* path, uint64_t nonce) {
  tg_route_request q = request("GET", NULL, path);
  tg_route_decision d;
  memset(&d, 0xAB, sizeof d);
  CHECK_RC(tg_router_route(r, &q, "k", 1, nonce, 1000, &d), TG_OK);
  return d;
}

static void test_venue_route(void) {
  tg_breaker* b = NEW_BREAKER(NULL);
  tg_venue v[2];
  tg_venue_set_options o;
  tg_venue_set* s;
  tg_route_rule rules[2];
  tg_route_table* t;
  tg_router* router;
  tg_route_decision d;
  uint64_t nonce;
  int bad = 0;
  CTX("venue: tg_router_route");
  v[0].venue_id = 101;
  v[0].weight = 1;
  v[0].breaker = b;
  v[1].venue_id = 102;
  v[1].weight = 1;
  v[1].breaker = NULL;
  tg_venue_set_options_init(&o);
  o.venues = v;
  o.venue_count = 2;
  s = NEW_SET(&o);
  rules[0] = rule(1, NULL, NULL, "/orders", TG_PATH_EXACT);
  rules[0].venue_set = 0;
  rules[1] = rule(2, NULL, NULL, "/status", TG_PATH_EXACT);
  t = BUILD_VS(rules, 2, &s, 1);
  router = NEW_ROUTER(t);

  d = route(router, "/orders", 1);
  CHECK_EQ(d.match.status, TG_ROUTE_MATCHED);
  CHECK_EQ(d.match.route_id, 1);
  CHECK_EQ(d.match.venue_set, 0);
  CHECK_EQ(d.venue.ok, 1);
  CHECK(d.venue.venue_id == 101 || d.venue.venue_id == 102);
  d = route(router, "/status", 1);
  CHECK_EQ(d.match.status, TG_ROUTE_MATCHED);
  CHECK_EQ(d.match.route_id, 2);
  CHECK_EQ(d.match.venue_set, TG_NO_VENUE_SET);
  CHECK_EQ(d.venue.ok, 0);
  CHECK_EQ(d.venue.reason, TG_VENUE_NO_SET);
  d = route(router, "/nothing", 1);
  CHECK_EQ(d.match.status, TG_ROUTE_NO_ROUTE);
  CHECK_EQ(d.venue.ok, 0);
  CHECK_EQ(d.venue.reason, TG_VENUE_NO_SET);

  CTX("venue: lifetime");
  CHECK_RC(tg_breaker_transition(b, TG_BREAKER_FORCED_OPEN, 0), TG_OK);
  tg_breaker_free(b);
  tg_venue_set_free(s);
  for (nonce = 0; nonce < 200; ++nonce) {
    d = route(router, "/orders", nonce);
    if (d.match.status != TG_ROUTE_MATCHED || d.venue.ok != 1 || d.venue.venue_id != 102 ||
        d.venue.eligible != 2) {
      ++bad;
    }
  }
  CHECK_EQ(bad, 0);
  tg_route_table_free(t);
  bad = 0;
  for (nonce = 0; nonce < 200; ++nonce) {
    d = route(router, "/orders", nonce);
    if (d.match.status != TG_ROUTE_MATCHED || d.venue.ok != 1 || d.venue.venue_id != 102) ++bad;
  }
  CHECK_EQ(bad, 0);
  tg_router_free(router);
}

static void test_venues(void) {
  test_venue_weighted();
  test_venue_breakers();
  test_venue_sticky();
  test_venue_latency();
  test_venue_route();
}

/* ------------------------------------------------------------------------ */
/* 7. Misuse                                                                 */
/* ------------------------------------------------------------------------ */

/* tg_venue_set_new(o) fails with want_rc, *out untouched, a message. */
static void set_fails_at(const char* file, int line, const tg_venue_set_options* o, int want_rc) {
  int sentinel_target = 0;
  tg_venue_set* const sentinel = (tg_venue_set*)(void*)&sentinel_target;
  tg_venue_set* out = sentinel;
  tg_error err;
  int rc;
  memset(&err, 0, sizeof err);
  rc = tg_venue_set_new(o, &out, &err);
  check_status_at(file, line, "tg_venue_set_new", rc, want_rc);
  if (rc == TG_OK && out != sentinel) tg_venue_set_free(out);
  ++g_checks;
  if (out != sentinel) report_failure(file, line, "*out was written on failure");
  ++g_checks;
  if (err.message[0] == '\0') report_failure(file, line, "no error message");
}
#define SET_FAILS(o, rc) set_fails_at(__FILE__, __LINE__, (o), (rc))

static void test_misuse_tables(void) {
  tg_breaker* b = NEW_BREAKER(NULL);
  tg_route_rule rules[1];
  tg_route_table* t;
  tg_route_table* cur = NULL;
  tg_router* router;
  tg_route_table_options o;
  tg_route_request q = request("GET", NULL, "/a");
  tg_route_request qs[3];
  tg_route_match m, ms[3], copy[3];
  tg_route_decision d;
  tg_header h[130];
  const char* name = NULL;
  size_t len = 0, n = 0;
  uint64_t version = 0;
  size_t i;
  tg_error err;
  char buf[16];
  int st = 0;

  CTX("misuse: init functions are NULL-safe");
  tg_route_rule_init(NULL);
  tg_route_table_options_init(NULL);
  tg_venue_set_options_init(NULL);

  rules[0] = rule(1, NULL, NULL, "/a", TG_PATH_EXACT);
  t = BUILD(rules, 1);
  router = NEW_ROUTER(t);

  CTX("misuse: NULL handles");
  CHECK_RC(tg_route_table_match(NULL, &q, &m), TG_EINVAL);
  CHECK_RC(tg_route_table_match_many(NULL, &q, 1, &m), TG_EINVAL);
  CHECK_RC(tg_route_table_match_many(NULL, &q, 0, &m), TG_EINVAL);
  CHECK_RC(tg_route_table_param_name(NULL, 0, 0, &name, &len), TG_EINVAL);
  CHECK_RC(tg_route_table_rule_count(NULL, &n), TG_EINVAL);
  CHECK_RC(tg_router_publish(NULL, t, NULL), TG_EINVAL);
  CHECK_RC(tg_router_match(NULL, &q, &m), TG_EINVAL);
  CHECK_RC(tg_router_match_many(NULL, &q, 1, &m), TG_EINVAL);
  CHECK_RC(tg_router_route(NULL, &q, NULL, 0, 1, 1, &d), TG_EINVAL);
  CHECK_RC(tg_router_version(NULL, &version), TG_EINVAL);
  CHECK_RC(tg_router_current(NULL, &cur), TG_EINVAL);
  CHECK(cur == NULL);

  CTX("misuse: a breaker is not a router, table or venue set");
  CHECK_RC(tg_route_table_match((const tg_route_table*)(void*)b, &q, &m), TG_EINVAL);
  CHECK_RC(tg_route_table_match_many((const tg_route_table*)(void*)b, &q, 1, &m), TG_EINVAL);
  CHECK_RC(tg_route_table_rule_count((const tg_route_table*)(void*)b, &n), TG_EINVAL);
  CHECK_RC(tg_route_table_param_name((const tg_route_table*)(void*)b, 0, 0, &name, &len),
           TG_EINVAL);
  CHECK_RC(tg_router_match((const tg_router*)(void*)b, &q, &m), TG_EINVAL);
  CHECK_RC(tg_router_match_many((const tg_router*)(void*)b, &q, 1, &m), TG_EINVAL);
  CHECK_RC(tg_router_route((const tg_router*)(void*)b, &q, NULL, 0, 1, 1, &d), TG_EINVAL);
  CHECK_RC(tg_router_version((const tg_router*)(void*)b, &version), TG_EINVAL);
  CHECK_RC(tg_router_current((const tg_router*)(void*)b, &cur), TG_EINVAL);
  CHECK_RC(tg_router_publish((tg_router*)(void*)b, t, NULL), TG_EINVAL);
  CHECK_RC(tg_router_publish(router, (const tg_route_table*)(void*)b, NULL), TG_EINVAL);
  {
    tg_router* r2 = NULL;
    CHECK_RC(tg_router_new((const tg_route_table*)(void*)b, &r2, NULL), TG_EINVAL);
    CHECK(r2 == NULL);
  }
  {
    tg_venue_set* vs = (tg_venue_set*)(void*)b;
    tg_venue_pick p;
    tg_venue_stats vst;
    uint32_t sz = 0;
    CHECK_RC(tg_venue_set_pick(vs, NULL, 0, 1, 1, &p), TG_EINVAL);
    CHECK_RC(tg_venue_set_choose(vs, NULL, 0, 1, 1, &p), TG_EINVAL);
    CHECK_RC(tg_venue_set_record_latency(vs, 0, 1, 1), TG_EINVAL);
    CHECK_RC(tg_venue_set_set_enabled(vs, 0, 1), TG_EINVAL);
    CHECK_RC(tg_venue_set_size(vs, &sz), TG_EINVAL);
    CHECK_RC(tg_venue_set_stats(vs, 0, 1, &vst), TG_EINVAL);
    tg_route_table_options_init(&o);
    o.rules = rules;
    o.rule_count = 1;
    o.venue_sets = &vs;
    o.venue_set_count = 1;
    BUILD_FAILS(&o, TG_EINVAL, SIZE_MAX, NULL);
  }
  tg_route_table_options_init(&o);
  o.venue_set_count = 1; /* venue_sets NULL */
  BUILD_FAILS(&o, TG_EINVAL, SIZE_MAX, NULL);
  {
    tg_venue_set* null_set = NULL;
    o.venue_sets = &null_set;
    BUILD_FAILS(&o, TG_EINVAL, SIZE_MAX, NULL);
  }

  CTX("misuse: NULL outputs and requests");
  {
    tg_route_table* out = NULL;
    tg_router* rout = NULL;
    tg_route_table_options_init(&o);
    CHECK_RC(tg_route_table_new(&o, NULL, NULL, NULL), TG_EINVAL);
    CHECK_RC(tg_router_new(t, NULL, NULL), TG_EINVAL);
    CHECK(out == NULL && rout == NULL);
  }
  CHECK_RC(tg_route_table_match(t, NULL, &m), TG_EINVAL);
  CHECK_RC(tg_route_table_match(t, &q, NULL), TG_EINVAL);
  CHECK_RC(tg_route_table_match_many(t, NULL, 1, &m), TG_EINVAL);
  CHECK_RC(tg_route_table_match_many(t, &q, 1, NULL), TG_EINVAL);
  CHECK_RC(tg_route_table_param_name(t, 0, 0, NULL, &len), TG_EINVAL);
  CHECK_RC(tg_route_table_param_name(t, 0, 0, &name, NULL), TG_EINVAL);
  CHECK_RC(tg_route_table_rule_count(t, NULL), TG_EINVAL);
  CHECK_RC(tg_router_match(router, NULL, &m), TG_EINVAL);
  CHECK_RC(tg_router_match(router, &q, NULL), TG_EINVAL);
  CHECK_RC(tg_router_match_many(router, NULL, 1, &m), TG_EINVAL);
  CHECK_RC(tg_router_match_many(router, &q, 1, NULL), TG_EINVAL);
  CHECK_RC(tg_router_route(router, NULL, NULL, 0, 1, 1, &d), TG_EINVAL);
  CHECK_RC(tg_router_route(router, &q, NULL, 0, 1, 1, NULL), TG_EINVAL);
  CHECK_RC(tg_router_route(router, &q, NULL, 3, 1, 1, &d), TG_EINVAL); /* key NULL, len 3 */
  CHECK_RC(tg_router_version(router, NULL), TG_EINVAL);
  CHECK_RC(tg_router_current(router, NULL), TG_EINVAL);
  CHECK_RC(tg_path_normalize(NULL, 3, buf, sizeof buf, &len, &st), TG_EINVAL);
  CHECK_RC(tg_path_normalize("/a", 2, NULL, sizeof buf, &len, &st), TG_EINVAL);
  CHECK_RC(tg_path_normalize("/a", 2, buf, sizeof buf, NULL, &st), TG_EINVAL);

  CTX("misuse: malformed requests");
  {
    tg_route_request bad = request("GET", NULL, "/a");
    bad.path = NULL;
    bad.path_len = 3;
    CHECK_RC(tg_route_table_match(t, &bad, &m), TG_EINVAL);
    CHECK_RC(tg_router_match(router, &bad, &m), TG_EINVAL);
    CHECK_RC(tg_router_route(router, &bad, NULL, 0, 1, 1, &d), TG_EINVAL);
    bad = request("GET", NULL, "/a");
    bad.method = NULL;
    bad.method_len = 3;
    CHECK_RC(tg_route_table_match(t, &bad, &m), TG_EINVAL);
    bad = request("GET", NULL, "/a");
    bad.host = NULL;
    bad.host_len = 3;
    CHECK_RC(tg_route_table_match(t, &bad, &m), TG_EINVAL);
    bad = request("GET", NULL, "/a");
    bad.headers = NULL;
    bad.header_count = 1;
    CHECK_RC(tg_route_table_match(t, &bad, &m), TG_EINVAL);
    for (i = 0; i < 130; ++i) h[i] = hdr("X-N", "v");
    bad.headers = h;
    bad.header_count = TG_ROUTE_MAX_HEADERS + 1;
    CHECK_EQ(bad.header_count, 129);
    CHECK_RC(tg_route_table_match(t, &bad, &m), TG_EINVAL);
    CHECK_RC(tg_router_match(router, &bad, &m), TG_EINVAL);
    bad.header_count = TG_ROUTE_MAX_HEADERS; /* the limit itself is fine */
    m = match_q(t, &bad);
    CHECK_EQ(m.status, TG_ROUTE_MATCHED);
    h[5].name = NULL;
    h[5].name_len = 3;
    CHECK_RC(tg_route_table_match(t, &bad, &m), TG_EINVAL);
    h[5] = hdr("X-N", "v");
    h[6].value = NULL;
    h[6].value_len = 1;
    CHECK_RC(tg_route_table_match(t, &bad, &m), TG_EINVAL);
    h[6].value_len = 0; /* NULL with length 0 is "" */
    CHECK_RC(tg_route_table_match(t, &bad, &m), TG_OK);
  }

  CTX("misuse: match_many");
  CHECK_RC(tg_route_table_match_many(t, NULL, 0, NULL), TG_OK);
  CHECK_RC(tg_router_match_many(router, NULL, 0, NULL), TG_OK);
  CHECK_RC(tg_route_table_match_many(t, &q, 0, &m), TG_OK);
  qs[0] = request("GET", NULL, "/a");
  qs[1] = request("GET", NULL, "/a");
  qs[1].path = NULL;
  qs[1].path_len = 3;
  qs[2] = request("GET", NULL, "/b");
  memset(ms, 0xAB, sizeof ms);
  memcpy(copy, ms, sizeof ms);
  CHECK_RC(tg_route_table_match_many(t, qs, 3, ms), TG_EINVAL);
  CHECK(memcmp(ms, copy, sizeof ms) == 0);
  CHECK_RC(tg_router_match_many(router, qs, 3, ms), TG_EINVAL);
  CHECK(memcmp(ms, copy, sizeof ms) == 0);
  qs[1] = request("GET", NULL, "/a");
  qs[1].header_count = 1; /* headers NULL */
  CHECK_RC(tg_router_match_many(router, qs, 3, ms), TG_EINVAL);
  CHECK(memcmp(ms, copy, sizeof ms) == 0);

  CTX("misuse: publish NULL");
  memset(&err, 0, sizeof err);
  CHECK_RC(tg_router_publish(router, NULL, &err), TG_EINVAL);
  CHECK(err.message[0] != '\0');
  CHECK_EQ(err.code, TG_EINVAL);
  CHECK_RC(tg_router_version(router, &version), TG_OK);
  CHECK_EQ(version, 0);
  m = match_q(t, &q);
  CHECK_EQ(m.status, TG_ROUTE_MATCHED);
  CHECK_RC(tg_router_match(router, &q, &m), TG_OK);
  CHECK_EQ(m.status, TG_ROUTE_MATCHED);

  tg_router_free(router);
  tg_route_table_free(t);
  tg_breaker_free(b);

  CTX("misuse: free(NULL)");
  tg_route_table_free(NULL);
  tg_router_free(NULL);
  tg_venue_set_free(NULL);
}

static void test_misuse_venues(void) {
  static tg_venue many[65];
  tg_venue v[3];
  tg_venue_set_options o;
  tg_venue_set* s;
  tg_venue_pick p;
  tg_venue_stats st;
  uint32_t i, sz = 0;
  volatile double zero = 0.0;
  const double nan = zero / zero;
  CTX("misuse: NULL venue set");
  CHECK_RC(tg_venue_set_pick(NULL, NULL, 0, 1, 1, &p), TG_EINVAL);
  CHECK_RC(tg_venue_set_choose(NULL, NULL, 0, 1, 1, &p), TG_EINVAL);
  CHECK_RC(tg_venue_set_record_latency(NULL, 0, 1, 1), TG_EINVAL);
  CHECK_RC(tg_venue_set_set_enabled(NULL, 0, 1), TG_EINVAL);
  CHECK_RC(tg_venue_set_size(NULL, &sz), TG_EINVAL);
  CHECK_RC(tg_venue_set_stats(NULL, 0, 1, &st), TG_EINVAL);

  for (i = 0; i < 3; ++i) {
    v[i].venue_id = i + 1;
    v[i].weight = 1;
    v[i].breaker = NULL;
  }
  tg_venue_set_options_init(&o);
  o.venues = v;
  o.venue_count = 3;
  s = NEW_SET(&o);

  CTX("misuse: NULL outputs");
  CHECK_RC(tg_venue_set_pick(s, NULL, 0, 1, 1, NULL), TG_EINVAL);
  CHECK_RC(tg_venue_set_pick(s, NULL, 3, 1, 1, &p), TG_EINVAL); /* key NULL, len 3 */
  CHECK_RC(tg_venue_set_choose(s, NULL, 0, 1, 1, NULL), TG_EINVAL);
  CHECK_RC(tg_venue_set_choose(s, NULL, 3, 1, 1, &p), TG_EINVAL);
  CHECK_RC(tg_venue_set_size(s, NULL), TG_EINVAL);
  CHECK_RC(tg_venue_set_stats(s, 0, 1, NULL), TG_EINVAL);
  CHECK_RC(tg_venue_set_pick(s, "", 0, 1, 1, &p), TG_OK);

  CTX("misuse: venue index out of range");
  CHECK_RC(tg_venue_set_record_latency(s, 3, 1, 1), TG_ERANGE);
  CHECK_RC(tg_venue_set_set_enabled(s, 3, 0), TG_ERANGE);
  CHECK_RC(tg_venue_set_stats(s, 3, 1, &st), TG_ERANGE);
  CHECK_RC(tg_venue_set_record_latency(s, UINT32_MAX, 1, 1), TG_ERANGE);
  CHECK_RC(tg_venue_set_set_enabled(s, 2, 2), TG_EINVAL);
  CHECK_RC(tg_venue_set_set_enabled(s, 2, -1), TG_EINVAL);
  CHECK_RC(tg_venue_set_stats(s, 2, 1, &st), TG_OK);
  CHECK_EQ(st.enabled, 1);
  tg_venue_set_free(s);

  CTX("misuse: venue set options");
  SET_FAILS(NULL, TG_EINVAL); /* the defaults have no venues */
  o.venue_count = 0;
  SET_FAILS(&o, TG_EINVAL);
  o.venue_count = 1;
  o.venues = NULL;
  SET_FAILS(&o, TG_EINVAL);
  for (i = 0; i < 65; ++i) {
    many[i].venue_id = i;
    many[i].weight = 1;
    many[i].breaker = NULL;
  }
  o.venues = many;
  o.venue_count = 65;
  SET_FAILS(&o, TG_ERANGE);
  o.venue_count = 64; /* the limit itself is fine */
  s = NEW_SET(&o);
  CHECK_RC(tg_venue_set_size(s, &sz), TG_OK);
  CHECK_EQ(sz, 64);
  p = pick(s, NULL, 1, 1);
  CHECK_EQ(p.eligible, UINT64_MAX);
  tg_venue_set_free(s);
  o.venues = v;
  o.venue_count = 3;
  v[1].weight = 0;
  SET_FAILS(&o, TG_ERANGE);
  v[1].weight = 1000001;
  SET_FAILS(&o, TG_ERANGE);
  v[1].weight = 1000000;
  s = NEW_SET(&o);
  tg_venue_set_free(s);
  v[1].weight = 1;
  v[2].venue_id = v[0].venue_id;
  SET_FAILS(&o, TG_EINVAL);
  v[2].venue_id = 3;
  o.latency_alpha = 0.0;
  SET_FAILS(&o, TG_ERANGE);
  o.latency_alpha = nan;
  SET_FAILS(&o, TG_ERANGE);
  o.latency_alpha = -0.5;
  SET_FAILS(&o, TG_ERANGE);
  o.latency_alpha = 1.5;
  SET_FAILS(&o, TG_ERANGE);
  o.latency_alpha = 1.0;
  s = NEW_SET(&o);
  tg_venue_set_free(s);
  o.latency_alpha = 0.2;
  o.sticky = 2;
  SET_FAILS(&o, TG_EINVAL);
  o.sticky = -1;
  SET_FAILS(&o, TG_EINVAL);
  o.sticky = 0;
  o.strategy = 7;
  SET_FAILS(&o, TG_EINVAL);
  o.strategy = TG_VENUE_WEIGHTED;
  o.latency_decay_ns = (UINT64_C(1) << 62) + 1;
  SET_FAILS(&o, TG_ERANGE);
  o.latency_decay_ns = UINT64_C(1) << 62;
  s = NEW_SET(&o);
  tg_venue_set_free(s);
  o.latency_decay_ns = 0;
  o.struct_size = 4;
  SET_FAILS(&o, TG_EVERSION);
  tg_venue_set_options_init(&o);
  o.venues = v;
  o.venue_count = 3;
  CHECK_RC(tg_venue_set_new(&o, NULL, NULL), TG_EINVAL);
  {
    tg_breaker* b = NEW_BREAKER(NULL);
    tg_router* r = NEW_ROUTER(NULL);
    v[1].breaker = (tg_breaker*)(void*)r; /* not a breaker */
    SET_FAILS(&o, TG_EINVAL);
    v[1].breaker = b;
    s = NEW_SET(&o);
    tg_venue_set_free(s);
    v[1].breaker = NULL;
    tg_breaker_free(b);
    tg_router_free(r);
  }
}

static void test_misuse(void) {
  test_misuse_tables();
  test_misuse_venues();
}

int main(void) {
  test_precedence();
  test_params();
  test_normalisation();
  test_build_errors();
  test_router();
  test_venues();
  test_misuse();
  return check_summary();
}
