"""Build-time helper: derive the cffi cdef from tollgate.h and make the builder.

The C declarations given to cffi are not written by hand: they are the
header itself with the preprocessor plumbing taken out, so the binding can
never drift from the C ABI it is compiled against.

* comments are removed and continued lines joined;
* the include guard is kept transparent, every other conditional block
  (``#if defined(_WIN32)``, ``#ifdef __cplusplus``) is dropped whole: in
  tollgate.h they only hold the export macro and ``extern "C"``;
* ``#include`` lines and the ``TG_API`` export macro are dropped;
* ``#define NAME <integer literal>`` is kept as it is (cffi needs literal
  values where they size arrays, e.g. ``TG_ERROR_MESSAGE_SIZE``), any other
  integer ``#define`` becomes ``#define NAME ...`` so the C compiler supplies
  the value; string and function-like macros are skipped.

In API mode cffi checks every declaration and every literal constant against
the real header when it compiles the extension, so a mistake here is a build
error, not a silent mismatch.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable, List

import cffi

HEADER_RELPATH = Path("include") / "tollgate" / "tollgate.h"

# The callbacks the breaker's, the price cache's, the risk checker's, the
# authenticator's and the journal's event hooks point at (see
# tollgate/breaker.py, price_cache.py, risk.py, auth.py, journal.py), and the
# binding's own C helpers (HELPERS_SOURCE).
EXTRA_CDEF = """
extern "Python" void _tollgate_breaker_event(void* user, const tg_breaker_event* ev);
extern "Python" void _tollgate_price_cache_event(void* user, const tg_eviction_event* ev);
int tgpy_route_table_match1(const tg_route_table* t, const char* method, size_t method_len,
                            const char* host, size_t host_len, const char* path,
                            size_t path_len, tg_route_match* out);
int tgpy_router_match1(const tg_router* r, const char* method, size_t method_len,
                       const char* host, size_t host_len, const char* path, size_t path_len,
                       tg_route_match* out);
extern "Python" void _tollgate_kill_event(void* user, const tg_kill_switch_event* ev);
int tgpy_risk_check1(tg_risk_checker* c, const char* account, size_t account_len,
                     const char* instrument, size_t instrument_len, const char* client_order_id,
                     size_t client_order_id_len, uint32_t side, double quantity,
                     double limit_price, uint64_t now_ns, tg_risk_decision* out);
int tgpy_risk_check_many(tg_risk_checker* c, const char* accounts, const uint32_t* account_lens,
                         const char* instruments, const uint32_t* instrument_lens,
                         const char* ids, const uint32_t* id_lens, const uint32_t* sides,
                         const double* quantities, const double* limit_prices, size_t n,
                         uint64_t now_ns, tg_risk_order* orders, tg_risk_decision* out);
extern "Python" void _tollgate_auth_event(void* user, const tg_auth_event* ev);
int tgpy_auth_verify1(tg_authenticator* a, const char* method, size_t method_len,
                      const char* target, size_t target_len, const char* header_data,
                      const char* header_lens, size_t n_headers, const char* body,
                      size_t body_len, const char* body_sha256, const char* authorization,
                      size_t authorization_len, uint64_t now_ns, tg_auth_result* out);
int tgpy_auth_client1(int sign, const char* method, size_t method_len, const char* target,
                      size_t target_len, const char* header_data, const char* header_lens,
                      size_t n_headers, const char* body, size_t body_len,
                      const char* body_sha256, const char* key_id, size_t key_id_len,
                      const char* token, size_t token_len, const char* nonce, size_t nonce_len,
                      const char* signed_headers, size_t signed_headers_len,
                      uint64_t timestamp_ns, const char* secret, size_t secret_len, char* out,
                      size_t cap, size_t* written, tg_error* err);
extern "Python" void _tollgate_journal_event(void* user, const tg_journal_event* ev);
int64_t tgpy_journal_append1(tg_journal* j, uint32_t kind, int store_payload,
                             uint64_t realtime_ns, uint64_t monotonic_ns, const char* account,
                             size_t account_len, uint32_t route, uint32_t venue,
                             uint32_t verdict, uint32_t reason, uint64_t config_version,
                             const char* inputs, size_t inputs_len, const char* payload,
                             size_t payload_len, const char* payload_digest);
int tgpy_journal_flag(const tg_journal* j, int durable, uint64_t ticket);
int64_t tgpy_journal_limiter_define(tg_journal* j, uint32_t instance, const tg_limiter* lim,
                                    uint32_t parent_instance, TGPY_CTX);
int64_t tgpy_journal_limiter_acquire(tg_journal* j, uint32_t instance, const char* key,
                                     size_t key_len, uint32_t tier, uint32_t cost,
                                     uint64_t now_ns, int32_t allowed, int32_t reason,
                                     uint64_t retry_after_ns, uint64_t remaining, uint32_t flags,
                                     const tg_reservation* res, TGPY_CTX);
int64_t tgpy_journal_limiter_cancel(tg_journal* j, uint32_t instance, const char* key,
                                    size_t key_len, const tg_reservation* res, uint64_t now_ns,
                                    TGPY_CTX);
int64_t tgpy_journal_limiter_multiplier(tg_journal* j, uint32_t instance, double multiplier,
                                        uint64_t now_ns, TGPY_CTX);
int64_t tgpy_journal_limiter_shadow(tg_journal* j, uint32_t instance, int on, TGPY_CTX);
int64_t tgpy_journal_breaker_define(tg_journal* j, uint32_t instance, const tg_breaker* b,
                                    TGPY_CTX);
int64_t tgpy_journal_breaker_acquire(tg_journal* j, uint32_t instance, uint64_t now_ns,
                                     const tg_breaker_permit* permit, TGPY_CTX);
int64_t tgpy_journal_breaker_outcome(tg_journal* j, uint32_t instance,
                                     const tg_breaker_permit* permit, int outcome,
                                     uint64_t latency_ns, uint64_t now_ns, TGPY_CTX);
int64_t tgpy_journal_breaker_force(tg_journal* j, uint32_t instance, int state,
                                   uint64_t now_ns, TGPY_CTX);
int64_t tgpy_journal_breaker_transition(tg_journal* j, uint32_t instance, int32_t from_state,
                                        int32_t to_state, uint64_t now_ns, double failure_rate,
                                        double slow_rate, uint64_t open_ns, TGPY_CTX);
"""

# The context of a tg_journal_record_* call as scalar arguments (the helpers
# build its tg_journal_entry on the C stack); spelled out in the cdef, where
# cffi takes no macros.
_JOURNAL_CTX = (
    "const char* account, size_t account_len, uint32_t route, uint32_t venue, "
    "uint64_t config_version, uint64_t realtime_ns, uint64_t monotonic_ns, "
    "const char* payload, size_t payload_len, int store_payload"
)
EXTRA_CDEF = EXTRA_CDEF.replace("TGPY_CTX", _JOURNAL_CTX)

# cffi passes Python bytes to `const char*` parameters without a copy, but a
# struct field cannot hold them; these helpers build the tg_route_request of
# a request without headers (the tg_risk_order of an order) on the C stack,
# so a single match (risk check) from Python needs no cffi allocation at all;
# likewise the tg_auth_message of one request to verify or sign, and the
# tg_journal_entry of a journal append or record.
HELPERS_SOURCE = """
static int tgpy_route_table_match1(const tg_route_table* t, const char* method,
                                   size_t method_len, const char* host, size_t host_len,
                                   const char* path, size_t path_len, tg_route_match* out) {
  tg_route_request r = {method, method_len, host, host_len, path, path_len, NULL, 0};
  return tg_route_table_match(t, &r, out);
}
static int tgpy_router_match1(const tg_router* rt, const char* method, size_t method_len,
                              const char* host, size_t host_len, const char* path,
                              size_t path_len, tg_route_match* out) {
  tg_route_request r = {method, method_len, host, host_len, path, path_len, NULL, 0};
  return tg_router_match(rt, &r, out);
}

/* The same for a risk check: the tg_risk_order of one order, on the C stack. */
static int tgpy_risk_check1(tg_risk_checker* c, const char* account, size_t account_len,
                            const char* instrument, size_t instrument_len,
                            const char* client_order_id, size_t client_order_id_len,
                            uint32_t side, double quantity, double limit_price,
                            uint64_t now_ns, tg_risk_decision* out) {
  tg_risk_order o;
  o.account = account;
  o.account_len = account_len;
  o.instrument = instrument;
  o.instrument_len = instrument_len;
  o.client_order_id = client_order_id;
  o.client_order_id_len = client_order_id_len;
  o.side = side;
  o.reserved = 0;
  o.quantity = quantity;
  o.limit_price = limit_price;
  return tg_risk_check(c, &o, now_ns, out);
}

/* A batch of orders from columns, filling the caller's orders[0..n) (one
 * allocation, by cffi) before the one tg_risk_check_many: the accounts are
 * laid end to end in `accounts`, account i being account_lens[i] bytes, and
 * likewise the instruments and client order ids (lengths are cheaper to
 * build in Python than offsets). NULL sides: all buy; NULL limit_prices:
 * all market orders. */
static int tgpy_risk_check_many(tg_risk_checker* c, const char* accounts,
                                const uint32_t* account_lens, const char* instruments,
                                const uint32_t* instrument_lens, const char* ids,
                                const uint32_t* id_lens, const uint32_t* sides,
                                const double* quantities, const double* limit_prices, size_t n,
                                uint64_t now_ns, tg_risk_order* orders, tg_risk_decision* out) {
  size_t i;
  for (i = 0; i < n; ++i) {
    tg_risk_order* o = &orders[i];
    o->account = accounts;
    o->account_len = account_lens[i];
    accounts += account_lens[i];
    o->instrument = instruments;
    o->instrument_len = instrument_lens[i];
    instruments += instrument_lens[i];
    o->client_order_id = ids;
    o->client_order_id_len = id_lens[i];
    ids += id_lens[i];
    o->side = sides != NULL ? sides[i] : TG_SIDE_BUY;
    o->reserved = 0;
    o->quantity = quantities[i];
    o->limit_price = limit_prices != NULL ? limit_prices[i] : NAN;
  }
  return tg_risk_check_many(c, orders, n, now_ns, out);
}

/* Request authentication: the tg_auth_message (and tg_auth_params) of one
 * request, on the C stack. The headers arrive as the names and values laid
 * end to end in header_data; header_lens holds native uint64 pairs (the
 * lengths of header i's name and value at byte 16 i), as Python bytes so
 * that cffi passes them without a conversion. Up to 16 headers are
 * converted on the stack, more into one malloc'd array (TG_ENOMEM if that
 * fails). body_sha256 is char* for the same reason. */
#define TGPY_AUTH_STACK_HEADERS 16

static tg_header* tgpy_auth_headers(tg_header* stack, const char* data, const char* lens,
                                    size_t n) {
  tg_header* h = stack;
  size_t i;
  if (n > TGPY_AUTH_STACK_HEADERS) {
    if (n > SIZE_MAX / sizeof *h) return NULL;
    h = (tg_header*)malloc(n * sizeof *h);
    if (h == NULL) return NULL;
  }
  for (i = 0; i < n; ++i) {
    uint64_t len[2];
    memcpy(len, lens + 16 * i, sizeof len); /* bytes from Python: maybe unaligned */
    h[i].name = data;
    h[i].name_len = (size_t)len[0];
    data += len[0];
    h[i].value = data;
    h[i].value_len = (size_t)len[1];
    data += len[1];
  }
  return h;
}

static void tgpy_auth_message(tg_auth_message* m, const char* method, size_t method_len,
                              const char* target, size_t target_len, const tg_header* headers,
                              size_t n_headers, const char* body, size_t body_len,
                              const char* body_sha256) {
  m->method = method;
  m->method_len = method_len;
  m->target = target;
  m->target_len = target_len;
  m->headers = n_headers ? headers : NULL;
  m->header_count = n_headers;
  m->body = body;
  m->body_len = body_len;
  m->body_sha256 = (const uint8_t*)body_sha256;
}

static int tgpy_auth_verify1(tg_authenticator* a, const char* method, size_t method_len,
                             const char* target, size_t target_len, const char* header_data,
                             const char* header_lens, size_t n_headers, const char* body,
                             size_t body_len, const char* body_sha256,
                             const char* authorization, size_t authorization_len,
                             uint64_t now_ns, tg_auth_result* out) {
  tg_header stack[TGPY_AUTH_STACK_HEADERS];
  tg_header* h = tgpy_auth_headers(stack, header_data, header_lens, n_headers);
  tg_auth_message m;
  int rc;
  if (h == NULL) return TG_ENOMEM;
  tgpy_auth_message(&m, method, method_len, target, target_len, h, n_headers, body, body_len,
                    body_sha256);
  rc = tg_auth_verify(a, &m, authorization, authorization_len, now_ns, out);
  if (h != stack) free(h);
  return rc;
}

/* tg_auth_sign (sign = 1) or tg_auth_canonical_request (sign = 0). */
static int tgpy_auth_client1(int sign, const char* method, size_t method_len, const char* target,
                             size_t target_len, const char* header_data,
                             const char* header_lens, size_t n_headers, const char* body,
                             size_t body_len, const char* body_sha256, const char* key_id,
                             size_t key_id_len, const char* token, size_t token_len,
                             const char* nonce, size_t nonce_len, const char* signed_headers,
                             size_t signed_headers_len, uint64_t timestamp_ns,
                             const char* secret, size_t secret_len, char* out, size_t cap,
                             size_t* written, tg_error* err) {
  tg_header stack[TGPY_AUTH_STACK_HEADERS];
  tg_header* h = tgpy_auth_headers(stack, header_data, header_lens, n_headers);
  tg_auth_message m;
  tg_auth_params p;
  int rc;
  if (h == NULL) return TG_ENOMEM;
  tgpy_auth_message(&m, method, method_len, target, target_len, h, n_headers, body, body_len,
                    body_sha256);
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
  if (h != stack) free(h);
  return rc;
}

/* Audit journal. The tg_journal_entry of an append, and the context of a
 * tg_journal_record_* call, are built on the C stack from scalar arguments,
 * and the ticket comes back as the return value (> 0; tickets start at 1)
 * or the negative TG_E* code, instead of through a pointer: an append from
 * Python then needs no cffi allocation at all. Tickets count ring cells
 * from 1 and stay far below 2^63 (centuries of appends). The call is made
 * before tgpy_ticket reads the ticket (argument evaluation order is
 * unspecified in C). */
static int64_t tgpy_ticket(int rc, uint64_t ticket) {
  if (rc != TG_OK) return rc;
  return ticket <= (uint64_t)INT64_MAX ? (int64_t)ticket : TG_EINTERNAL;
}

static int64_t tgpy_journal_append1(tg_journal* j, uint32_t kind, int store_payload,
                                    uint64_t realtime_ns, uint64_t monotonic_ns,
                                    const char* account, size_t account_len, uint32_t route,
                                    uint32_t venue, uint32_t verdict, uint32_t reason,
                                    uint64_t config_version, const char* inputs,
                                    size_t inputs_len, const char* payload, size_t payload_len,
                                    const char* payload_digest) {
  tg_journal_entry e;
  uint64_t ticket = 0;
  int rc;
  if (kind > 0xFFFF) return TG_EINVAL;
  tg_journal_entry_init(&e);
  e.kind = (uint16_t)kind;
  e.store_payload = (uint16_t)(store_payload != 0);
  e.realtime_ns = realtime_ns;
  e.monotonic_ns = monotonic_ns;
  e.account = account;
  e.account_len = account_len;
  e.route = route;
  e.venue = venue;
  e.verdict = verdict;
  e.reason = reason;
  e.config_version = config_version;
  e.inputs = (const uint8_t*)inputs;
  e.inputs_len = inputs_len;
  e.payload = (const uint8_t*)payload;
  e.payload_len = payload_len;
  e.payload_digest = (const uint8_t*)payload_digest;
  rc = tg_journal_append(j, &e, &ticket);
  return tgpy_ticket(rc, ticket);
}

/* tg_journal_is_durable (durable = 1) or _is_written: 1, 0 or TG_EINVAL. */
static int tgpy_journal_flag(const tg_journal* j, int durable, uint64_t ticket) {
  int out = 0;
  const int rc = durable ? tg_journal_is_durable(j, ticket, &out)
                         : tg_journal_is_written(j, ticket, &out);
  return rc != TG_OK ? rc : out;
}

#define TGPY_CTX                                                                          \\
  const char *account, size_t account_len, uint32_t route, uint32_t venue,                \\
      uint64_t config_version, uint64_t realtime_ns, uint64_t monotonic_ns,               \\
      const char *payload, size_t payload_len, int store_payload
#define TGPY_CTX_ENTRY(e)                                                                 \\
  tg_journal_entry e;                                                                     \\
  uint64_t ticket = 0;                                                                    \\
  int rc;                                                                                 \\
  tg_journal_entry_init(&e);                                                              \\
  e.account = account;                                                                    \\
  e.account_len = account_len;                                                            \\
  e.route = route;                                                                        \\
  e.venue = venue;                                                                        \\
  e.config_version = config_version;                                                      \\
  e.realtime_ns = realtime_ns;                                                            \\
  e.monotonic_ns = monotonic_ns;                                                          \\
  e.payload = (const uint8_t*)payload;                                                    \\
  e.payload_len = payload_len;                                                            \\
  e.store_payload = (uint16_t)(store_payload != 0)

static int64_t tgpy_journal_limiter_define(tg_journal* j, uint32_t instance,
                                           const tg_limiter* lim, uint32_t parent_instance,
                                           TGPY_CTX) {
  TGPY_CTX_ENTRY(ctx);
  rc = tg_journal_record_limiter_define(j, instance, lim, parent_instance, &ctx, &ticket);
  return tgpy_ticket(rc, ticket);
}

/* tg_journal_record_limiter_acquire, or _reserve when res is not NULL. */
static int64_t tgpy_journal_limiter_acquire(tg_journal* j, uint32_t instance, const char* key,
                                            size_t key_len, uint32_t tier, uint32_t cost,
                                            uint64_t now_ns, int32_t allowed, int32_t reason,
                                            uint64_t retry_after_ns, uint64_t remaining,
                                            uint32_t flags, const tg_reservation* res,
                                            TGPY_CTX) {
  tg_limit_decision d;
  TGPY_CTX_ENTRY(ctx);
  d.allowed = allowed;
  d.reason = reason;
  d.retry_after_ns = retry_after_ns;
  d.remaining = remaining;
  d.flags = flags;
  d.reserved = 0;
  if (res != NULL) {
    rc = tg_journal_record_limiter_reserve(j, instance, key, key_len, tier, cost, now_ns, &d, res,
                                           &ctx, &ticket);
  } else {
    rc = tg_journal_record_limiter_acquire(j, instance, key, key_len, tier, cost, now_ns, &d,
                                           &ctx, &ticket);
  }
  return tgpy_ticket(rc, ticket);
}

static int64_t tgpy_journal_limiter_cancel(tg_journal* j, uint32_t instance, const char* key,
                                           size_t key_len, const tg_reservation* res,
                                           uint64_t now_ns, TGPY_CTX) {
  TGPY_CTX_ENTRY(ctx);
  rc = tg_journal_record_limiter_cancel(j, instance, key, key_len, res, now_ns, &ctx, &ticket);
  return tgpy_ticket(rc, ticket);
}

static int64_t tgpy_journal_limiter_multiplier(tg_journal* j, uint32_t instance,
                                               double multiplier, uint64_t now_ns, TGPY_CTX) {
  TGPY_CTX_ENTRY(ctx);
  rc = tg_journal_record_limiter_multiplier(j, instance, multiplier, now_ns, &ctx, &ticket);
  return tgpy_ticket(rc, ticket);
}

static int64_t tgpy_journal_limiter_shadow(tg_journal* j, uint32_t instance, int on, TGPY_CTX) {
  TGPY_CTX_ENTRY(ctx);
  rc = tg_journal_record_limiter_shadow(j, instance, on, &ctx, &ticket);
  return tgpy_ticket(rc, ticket);
}

static int64_t tgpy_journal_breaker_define(tg_journal* j, uint32_t instance, const tg_breaker* b,
                                           TGPY_CTX) {
  TGPY_CTX_ENTRY(ctx);
  rc = tg_journal_record_breaker_define(j, instance, b, &ctx, &ticket);
  return tgpy_ticket(rc, ticket);
}

static int64_t tgpy_journal_breaker_acquire(tg_journal* j, uint32_t instance, uint64_t now_ns,
                                            const tg_breaker_permit* permit, TGPY_CTX) {
  TGPY_CTX_ENTRY(ctx);
  rc = tg_journal_record_breaker_acquire(j, instance, now_ns, permit, &ctx, &ticket);
  return tgpy_ticket(rc, ticket);
}

static int64_t tgpy_journal_breaker_outcome(tg_journal* j, uint32_t instance,
                                            const tg_breaker_permit* permit, int outcome,
                                            uint64_t latency_ns, uint64_t now_ns, TGPY_CTX) {
  TGPY_CTX_ENTRY(ctx);
  rc = tg_journal_record_breaker_outcome(j, instance, permit, outcome, latency_ns, now_ns, &ctx,
                                         &ticket);
  return tgpy_ticket(rc, ticket);
}

static int64_t tgpy_journal_breaker_force(tg_journal* j, uint32_t instance, int state,
                                          uint64_t now_ns, TGPY_CTX) {
  TGPY_CTX_ENTRY(ctx);
  rc = tg_journal_record_breaker_force(j, instance, state, now_ns, &ctx, &ticket);
  return tgpy_ticket(rc, ticket);
}

static int64_t tgpy_journal_breaker_transition(tg_journal* j, uint32_t instance,
                                               int32_t from_state, int32_t to_state,
                                               uint64_t now_ns, double failure_rate,
                                               double slow_rate, uint64_t open_ns, TGPY_CTX) {
  tg_breaker_event ev;
  TGPY_CTX_ENTRY(ctx);
  ev.from_state = from_state;
  ev.to_state = to_state;
  ev.now_ns = now_ns;
  ev.failure_rate = failure_rate;
  ev.slow_rate = slow_rate;
  ev.open_ns = open_ns;
  rc = tg_journal_record_breaker_transition(j, instance, &ev, &ctx, &ticket);
  return tgpy_ticket(rc, ticket);
}
"""

_COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.DOTALL)
_DEFINE = re.compile(r"^#\s*define\s+([A-Za-z_][A-Za-z0-9_]*)(\(?)\s*(.*)$")
_INT_LITERAL = re.compile(r"^-?(0[xX][0-9a-fA-F]+|[0-9]+)[uUlL]*$")
_SKIPPED_MACROS = {"TG_API"}


def _strip_comments(text: str) -> str:
    # The header has no string literal containing comment markers; keep the
    # newlines of multi-line comments so that error line numbers still mean
    # something when reading the result.
    return _COMMENT.sub(lambda m: "\n" * m.group(0).count("\n"), text)


def _logical_lines(text: str) -> Iterable[str]:
    return text.replace("\\\n", " ").splitlines()


def cdef_from_header(header_text: str) -> str:
    """Return cffi cdef source equivalent to ``header_text`` (tollgate.h)."""
    out: List[str] = []
    depth_skipped = 0  # nesting depth inside a dropped conditional block
    depth_kept = 0  # nesting depth of transparent blocks (the include guard)
    guard: str | None = None
    for raw in _logical_lines(_strip_comments(header_text)):
        line = raw.strip()
        if not line.startswith("#"):
            if depth_skipped == 0 and line:
                out.append(raw)
            continue
        directive = line[1:].strip()
        word = directive.split(None, 1)[0] if directive else ""
        if word in ("if", "ifdef", "ifndef"):
            if depth_skipped:
                depth_skipped += 1
            elif word == "ifndef" and guard is None and not out:
                guard = directive.split(None, 1)[1].strip()
                depth_kept += 1
            else:
                depth_skipped = 1
            continue
        if word in ("elif", "else"):
            continue  # every branch of a dropped block is dropped
        if word == "endif":
            if depth_skipped:
                depth_skipped -= 1
            elif depth_kept:
                depth_kept -= 1
            else:
                raise ValueError("unbalanced #endif in tollgate.h")
            continue
        if depth_skipped:
            continue
        if word == "define":
            m = _DEFINE.match(line)
            if not m:
                raise ValueError(f"cannot parse: {line}")
            name, paren, value = m.group(1), m.group(2), m.group(3).strip()
            if paren or name == guard or name in _SKIPPED_MACROS or not value:
                continue
            if value.startswith('"'):
                continue  # string constants are not integers; cffi cannot take them
            if _INT_LITERAL.match(value):
                out.append(f"#define {name} {value}")
            else:
                out.append(f"#define {name} ...")
            continue
        if word in ("include", "pragma", "undef", "error", "warning"):
            continue
        raise ValueError(f"unexpected preprocessor directive in tollgate.h: {line}")
    if depth_skipped or depth_kept:
        raise ValueError("unbalanced conditional in tollgate.h")
    text = "\n".join(out)
    for macro in _SKIPPED_MACROS:
        text = re.sub(rf"\b{macro}\b\s*", "", text)
    return text + "\n" + EXTRA_CDEF


def make_ffibuilder(repo_root: Path, lib_dir: Path) -> cffi.FFI:
    """An API-mode builder for ``tollgate._native`` linked to libtollgate.

    ``lib_dir`` holds the freshly built ``libtollgate.so``; at run time the
    extension finds ``libtollgate.so.0`` beside itself through ``$ORIGIN``.
    """
    header = (repo_root / HEADER_RELPATH).read_text(encoding="utf-8")
    ffibuilder = cffi.FFI()
    ffibuilder.cdef(cdef_from_header(header))
    ffibuilder.set_source(
        "tollgate._native",
        '#include <math.h>\n#include <stdint.h>\n#include <stdlib.h>\n#include <string.h>\n'
        '#include "tollgate/tollgate.h"\n' + HELPERS_SOURCE,
        include_dirs=[str(repo_root / "include")],
        library_dirs=[str(lib_dir)],
        libraries=["tollgate"],
        # A literal $ORIGIN: no shell sees this argument, the dynamic loader
        # expands it to the directory of the extension module.
        extra_link_args=["-Wl,-rpath,$ORIGIN"],
    )
    return ffibuilder


if __name__ == "__main__":  # print the derived cdef, for inspection
    import sys

    root = Path(__file__).resolve().parents[2]
    sys.stdout.write(cdef_from_header((root / HEADER_RELPATH).read_text(encoding="utf-8")))
