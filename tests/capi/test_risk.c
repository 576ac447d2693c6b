/* C ABI tests of the pre-trade risk checks: every rule through tg_risk_check,
 * the batch form, kill switches and their events, reference prices from a
 * price cache (including one freed before the checker), bad calls, and two
 * threads racing one account's limit. */
#define CHECK_PROGRAM "capi_risk"
#include "check.h"

#include <math.h>
#include <pthread.h>

static const uint64_t second = 1000000000ull;

static double nan_value(void) {
  volatile double zero = 0.0;
  return zero / zero;
}

static tg_risk_checker* new_checker_at(const char* file, int line, const tg_risk_options* o,
                                       tg_price_cache* prices) {
  tg_risk_checker* c = NULL;
  tg_error err;
  int rc;
  memset(&err, 0, sizeof err);
  rc = tg_risk_checker_new(o, prices, &c, &err);
  if (rc != TG_OK) fprintf(stderr, "tg_risk_checker_new: %s: %s\n", tg_status_str(rc), err.message);
  REQUIRE_AT(file, line, rc == TG_OK && c != NULL,
             "REQUIRE(tg_risk_checker_new(...) == TG_OK && checker != NULL)");
  return c;
}
#define NEW_CHECKER(o, p) new_checker_at(__FILE__, __LINE__, (o), (p))

static tg_price_cache* new_cache(void) {
  tg_price_cache* c = NULL;
  tg_price_cache_options o;
  tg_price_cache_options_init(&o);
  o.max_age_ns = 10 * second;
  REQUIRE(tg_price_cache_new(&o, &c, NULL) == TG_OK && c != NULL);
  return c;
}

static void put_price(tg_price_cache* c, const char* sym, double price, uint64_t now) {
  REQUIRE(tg_price_cache_put(c, sym, strlen(sym), price, 1, NULL, 0, nan_value(), nan_value(), now,
                             NULL) == TG_OK);
}

static tg_risk_order order(const char* account, const char* instrument, const char* id,
                           double quantity, double limit_price) {
  tg_risk_order o;
  memset(&o, 0, sizeof o);
  o.account = account;
  o.account_len = account != NULL ? strlen(account) : 0;
  o.instrument = instrument;
  o.instrument_len = instrument != NULL ? strlen(instrument) : 0;
  o.client_order_id = id;
  o.client_order_id_len = id != NULL ? strlen(id) : 0;
  o.side = TG_SIDE_BUY;
  o.quantity = quantity;
  o.limit_price = limit_price;
  return o;
}

/* Decides `o` at now; reports (at the caller's line) a status other than
 * TG_OK or a reason other than `want`. */
static tg_risk_decision decide_at(const char* file, int line, tg_risk_checker* c,
                                  const tg_risk_order* o, uint64_t now, int want) {
  tg_risk_decision d;
  int rc;
  memset(&d, 0xab, sizeof d);
  rc = tg_risk_check(c, o, now, &d);
  check_status_at(file, line, "tg_risk_check", rc, TG_OK);
  ++g_checks;
  if (d.reason != want || d.allowed != (want == TG_RISK_NONE)) {
    char m[256];
    snprintf(m, sizeof m, "decision %s (allowed %d), expected %s", tg_risk_reason_name(d.reason),
             (int)d.allowed, tg_risk_reason_name(want));
    report_failure(file, line, m);
  }
  return d;
}
#define DECIDE(c, o, now, want) decide_at(__FILE__, __LINE__, (c), (o), (now), (want))

static tg_risk_stats stats_of(const tg_risk_checker* c) {
  tg_risk_stats s;
  memset(&s, 0xcd, sizeof s);
  REQUIRE(tg_risk_stats_get(c, &s) == TG_OK);
  return s;
}

static void test_defaults_and_names(void) {
  tg_risk_options o;
  CTX("defaults");
  memset(&o, 0xff, sizeof o);
  tg_risk_options_init(&o);
  CHECK_EQ(o.struct_size, sizeof o);
  CHECK_EQ(o.on_no_reference, TG_NO_REFERENCE_REJECT);
  CHECK(isinf(o.max_quantity) && isinf(o.max_notional) && isinf(o.collar_width));
  CHECK_EQ(o.collar_unit, TG_COLLAR_PERCENT);
  CHECK_DBL(o.collar_tick_size, 0.01);
  CHECK_EQ(o.period_ns, second);
  CHECK_EQ(o.account_max_orders, UINT64_MAX);
  CHECK_EQ(o.account_capacity, 4096);
  CHECK_EQ(o.duplicate_window_ns, 60 * second);
  CHECK_EQ(o.duplicate_capacity, 65536);
  CHECK_EQ(o.kill_switch_capacity, 1024);
  CHECK_EQ(o.reserved, 0);
  CHECK_EQ(o.seed, 0);
  tg_risk_options_init(NULL); /* NULL-safe */

  CTX("reason names");
  CHECK(strcmp(tg_risk_reason_name(TG_RISK_NONE), "none") == 0);
  CHECK(strcmp(tg_risk_reason_name(TG_RISK_PRICE_COLLAR), "price_collar") == 0);
  CHECK(strcmp(tg_risk_reason_name(TG_RISK_DUPLICATE_CAPACITY), "duplicate_capacity") == 0);
  CHECK(strcmp(tg_risk_reason_name(TG_RISK_KILL_SWITCH_GLOBAL), "kill_switch_global") == 0);
  CHECK(strcmp(tg_risk_reason_name(TG_RISK_REASON_COUNT), "unknown") == 0);
  CHECK(strcmp(tg_risk_reason_name(-1), "unknown") == 0);
}

static void test_order_checks(void) {
  tg_price_cache* cache = new_cache();
  tg_risk_options o;
  tg_risk_checker* c;
  tg_risk_order ord;
  tg_risk_decision d;
  const uint64_t t = 100 * second;
  tg_risk_options_init(&o);
  o.max_quantity = 1000;
  o.max_notional = 50000;
  o.collar_unit = TG_COLLAR_PERCENT;
  o.collar_width = 5;
  c = NEW_CHECKER(&o, cache);
  put_price(cache, "AAPL", 100.0, t);

  CTX("a limit order inside every limit");
  ord = order("acct1", "AAPL", "o1", 10, 101);
  d = DECIDE(c, &ord, t, TG_RISK_NONE);
  CHECK_DBL(d.observed, 1010.0);
  CHECK_DBL(d.reference, 100.0);
  CHECK(isnan(d.limit));

  CTX("a market order's notional uses the reference price");
  ord = order("acct1", "AAPL", "o2", 10, nan_value());
  d = DECIDE(c, &ord, t, TG_RISK_NONE);
  CHECK_DBL(d.observed, 1000.0);

  CTX("collar: exactly at the band passes, beyond it is rejected with the edge");
  ord = order("acct1", "AAPL", "o3", 1, 105);
  DECIDE(c, &ord, t, TG_RISK_NONE);
  ord = order("acct1", "AAPL", "o4", 1, 95);
  DECIDE(c, &ord, t, TG_RISK_NONE);
  ord = order("acct1", "AAPL", "o5", 1, 105.01);
  d = DECIDE(c, &ord, t, TG_RISK_PRICE_COLLAR);
  CHECK_DBL(d.limit, 105.0);
  CHECK_DBL(d.observed, 105.01);
  CHECK_DBL(d.reference, 100.0);
  ord = order("acct1", "AAPL", "o6", 1, 94.99);
  ord.side = TG_SIDE_SELL;
  d = DECIDE(c, &ord, t, TG_RISK_PRICE_COLLAR);
  CHECK_DBL(d.limit, 95.0);

  CTX("max quantity and max notional carry the limit and the order's value");
  ord = order("acct1", "AAPL", "o7", 1001, 100);
  d = DECIDE(c, &ord, t, TG_RISK_MAX_QUANTITY);
  CHECK_DBL(d.limit, 1000.0);
  CHECK_DBL(d.observed, 1001.0);
  ord = order("acct1", "AAPL", "o8", 501, 100);
  d = DECIDE(c, &ord, t, TG_RISK_MAX_NOTIONAL);
  CHECK_DBL(d.limit, 50000.0);
  CHECK_DBL(d.observed, 50100.0);
  ord = order("acct1", "AAPL", "o9", 500, 100);
  DECIDE(c, &ord, t, TG_RISK_NONE);

  CTX("no reference: unknown instrument and a stale entry are rejected (default policy)");
  ord = order("acct1", "MSFT", "o10", 1, 300);
  d = DECIDE(c, &ord, t, TG_RISK_NO_REFERENCE_PRICE);
  CHECK(isnan(d.reference));
  ord = order("acct1", "AAPL", "o11", 1, 100);
  DECIDE(c, &ord, t + 11 * second, TG_RISK_NO_REFERENCE_PRICE);

  CTX("a price move evicts the reference: the order is not checked against it");
  put_price(cache, "IBM", 200.0, t);
  {
    tg_price_result pr;
    CHECK_RC(tg_price_cache_on_price(cache, "IBM", 3, 230.0, 2, t, &pr), TG_OK);
    CHECK_EQ(pr.outcome, TG_PRICE_EVICTED);
  }
  ord = order("acct1", "IBM", "o12", 1, 229);
  DECIDE(c, &ord, t, TG_RISK_NO_REFERENCE_PRICE);

  CTX("malformed orders are decisions with the reason and the bound");
  ord = order("acct1", "AAPL", "m1", 0, 100);
  DECIDE(c, &ord, t, TG_RISK_INVALID_QUANTITY);
  ord = order("acct1", "AAPL", "m2", -1, 100);
  DECIDE(c, &ord, t, TG_RISK_INVALID_QUANTITY);
  ord = order("acct1", "AAPL", "m3", nan_value(), 100);
  DECIDE(c, &ord, t, TG_RISK_INVALID_QUANTITY);
  ord = order("acct1", "AAPL", "m4", INFINITY, 100);
  DECIDE(c, &ord, t, TG_RISK_INVALID_QUANTITY);
  ord = order("acct1", "AAPL", "m5", 1, 0);
  DECIDE(c, &ord, t, TG_RISK_INVALID_PRICE);
  ord = order("acct1", "AAPL", "m6", 1, -100);
  DECIDE(c, &ord, t, TG_RISK_INVALID_PRICE);
  ord = order("acct1", "AAPL", "m7", 1, INFINITY);
  DECIDE(c, &ord, t, TG_RISK_INVALID_PRICE);
  ord = order(NULL, "AAPL", "m8", 1, 100);
  d = DECIDE(c, &ord, t, TG_RISK_INVALID_ACCOUNT);
  CHECK_DBL(d.limit, 32.0);
  CHECK_DBL(d.observed, 0.0);
  ord = order("a-very-long-account-name-over-32-b", "AAPL", "m9", 1, 100);
  d = DECIDE(c, &ord, t, TG_RISK_INVALID_ACCOUNT);
  CHECK_DBL(d.observed, 34.0);
  ord = order("acct1", "", "m10", 1, 100);
  DECIDE(c, &ord, t, TG_RISK_INVALID_INSTRUMENT);
  ord = order("acct1", "AAPL", "", 1, 100);
  d = DECIDE(c, &ord, t, TG_RISK_INVALID_CLIENT_ORDER_ID);
  CHECK_DBL(d.limit, 64.0);

  CTX("stats count every decision by reason");
  {
    const tg_risk_stats s = stats_of(c);
    CHECK_EQ(s.checked, s.allowed + s.rejected);
    CHECK_EQ(s.allowed, 5);
    CHECK_EQ(s.decisions[TG_RISK_NONE], 5);
    CHECK_EQ(s.decisions[TG_RISK_PRICE_COLLAR], 2);
    CHECK_EQ(s.decisions[TG_RISK_NO_REFERENCE_PRICE], 3);
    CHECK_EQ(s.decisions[TG_RISK_INVALID_QUANTITY], 4);
    CHECK_EQ(s.decisions[TG_RISK_INVALID_ACCOUNT], 2);
    CHECK_EQ(s.decisions[TG_RISK_REASON_COUNT], 0); /* unused slots are zero */
    CHECK_EQ(s.decisions[31], 0);
    CHECK_EQ(s.global_kill, 0);
  }
  tg_risk_checker_free(c);
  tg_price_cache_free(cache);
}

static void test_collar_units(void) {
  tg_price_cache* cache = new_cache();
  tg_risk_options o;
  tg_risk_checker* c;
  tg_risk_order ord;
  tg_risk_decision d;
  const uint64_t t = 5 * second;
  put_price(cache, "ES", 4000.0, t);

  CTX("bps collar");
  tg_risk_options_init(&o);
  o.collar_unit = TG_COLLAR_BPS;
  o.collar_width = 25; /* 10 points at 4000 */
  c = NEW_CHECKER(&o, cache);
  ord = order("a", "ES", "b1", 1, 4010);
  DECIDE(c, &ord, t, TG_RISK_NONE);
  ord = order("a", "ES", "b2", 1, 4010.25);
  d = DECIDE(c, &ord, t, TG_RISK_PRICE_COLLAR);
  CHECK_DBL(d.limit, 4010.0);
  tg_risk_checker_free(c);

  CTX("tick collar");
  tg_risk_options_init(&o);
  o.collar_unit = TG_COLLAR_TICKS;
  o.collar_width = 8;
  o.collar_tick_size = 0.25; /* 2 points */
  c = NEW_CHECKER(&o, cache);
  ord = order("a", "ES", "t1", 1, 3998);
  DECIDE(c, &ord, t, TG_RISK_NONE);
  ord = order("a", "ES", "t2", 1, 3997.75);
  d = DECIDE(c, &ord, t, TG_RISK_PRICE_COLLAR);
  CHECK_DBL(d.limit, 3998.0);
  tg_risk_checker_free(c);

  CTX("ALLOW without a reference: limit orders use their own price, no collar");
  tg_risk_options_init(&o);
  o.on_no_reference = TG_NO_REFERENCE_ALLOW;
  o.collar_width = 1;
  o.max_notional = 1000;
  c = NEW_CHECKER(&o, NULL);
  ord = order("a", "ES", "n1", 1, 999);
  d = DECIDE(c, &ord, t, TG_RISK_NONE);
  CHECK_DBL(d.observed, 999.0);
  CHECK(isnan(d.reference));
  ord = order("a", "ES", "n2", 2, 999);
  DECIDE(c, &ord, t, TG_RISK_MAX_NOTIONAL);
  ord = order("a", "ES", "n3", 1000000, nan_value()); /* market: notional unknown */
  d = DECIDE(c, &ord, t, TG_RISK_NONE);
  CHECK(isnan(d.observed));
  tg_risk_checker_free(c);

  CTX("max_reference_age_ns tighter than the cache");
  tg_risk_options_init(&o);
  o.max_reference_age_ns = second;
  c = NEW_CHECKER(&o, cache);
  ord = order("a", "ES", "r1", 1, 4000);
  DECIDE(c, &ord, t + second, TG_RISK_NONE);
  ord = order("a", "ES", "r2", 1, 4000);
  DECIDE(c, &ord, t + second + 1, TG_RISK_NO_REFERENCE_PRICE);
  tg_risk_checker_free(c);
  tg_price_cache_free(cache);
}

static void test_account_limits(void) {
  tg_risk_options o;
  tg_risk_checker* c;
  tg_risk_order ord;
  tg_risk_decision d;
  char id[32];
  int i;
  const uint64_t t = 40 * second; /* the start of a period */
  tg_risk_options_init(&o);
  o.on_no_reference = TG_NO_REFERENCE_ALLOW;
  o.account_max_orders = 3;
  o.account_max_notional = 1000;
  o.period_ns = second;
  o.duplicate_window_ns = 2 * second;
  c = NEW_CHECKER(&o, NULL);

  CTX("order count per period");
  for (i = 0; i < 3; ++i) {
    snprintf(id, sizeof id, "c%d", i);
    ord = order("acct", "X", id, 1, 10);
    DECIDE(c, &ord, t + (uint64_t)i, TG_RISK_NONE);
  }
  ord = order("acct", "X", "c3", 1, 10);
  d = DECIDE(c, &ord, t + 3, TG_RISK_ACCOUNT_ORDER_COUNT);
  CHECK_DBL(d.limit, 3.0);
  CHECK_DBL(d.observed, 4.0);
  CTX("another account has its own count");
  ord = order("other", "X", "c3", 1, 10);
  DECIDE(c, &ord, t + 3, TG_RISK_NONE);
  CTX("the next period starts afresh");
  ord = order("acct", "X", "c3", 1, 10);
  DECIDE(c, &ord, t + second, TG_RISK_NONE);

  CTX("notional per period: over it is rejected with the sum, exactly at it passes");
  ord = order("acct", "X", "n1", 60, 10);
  DECIDE(c, &ord, t + second + 1, TG_RISK_NONE); /* 10 + 600 */
  ord = order("acct", "X", "n2", 40, 10);
  d = DECIDE(c, &ord, t + second + 2, TG_RISK_ACCOUNT_NOTIONAL);
  CHECK_DBL(d.limit, 1000.0);
  CHECK_DBL(d.observed, 1010.0);
  ord = order("acct", "X", "n3", 39, 10);
  DECIDE(c, &ord, t + second + 3, TG_RISK_NONE); /* exactly 1000, the third order */
  tg_risk_checker_free(c);

  tg_risk_options_init(&o);
  o.on_no_reference = TG_NO_REFERENCE_ALLOW;
  o.account_max_notional = 1000;
  o.duplicate_window_ns = 2 * second;
  c = NEW_CHECKER(&o, NULL);
  ord = order("acct", "X", "n1", 60, 10);
  DECIDE(c, &ord, t, TG_RISK_NONE);
  ord = order("acct", "X", "n2", 41, 10);
  DECIDE(c, &ord, t + 1, TG_RISK_ACCOUNT_NOTIONAL);
  CTX("duplicates: the same id inside the window, per account");
  ord = order("acct", "X", "n1", 1, 1);
  d = DECIDE(c, &ord, t + 5, TG_RISK_DUPLICATE_ORDER);
  CHECK_DBL(d.limit, (double)(2 * second));
  CHECK_DBL(d.observed, 5.0);
  ord = order("acct2", "X", "n1", 1, 1);
  DECIDE(c, &ord, t + 5, TG_RISK_NONE);
  CTX("a rejected order is not remembered: n2 may be sent again");
  ord = order("acct", "X", "n2", 1, 1);
  DECIDE(c, &ord, t + second, TG_RISK_NONE);
  CTX("at exactly the window the id is new again");
  ord = order("acct", "X", "n1", 1, 1);
  DECIDE(c, &ord, t + 2 * second, TG_RISK_NONE);
  tg_risk_checker_free(c);
}

static void test_capacity_fails_closed(void) {
  tg_risk_options o;
  tg_risk_checker* c;
  tg_risk_order ord;
  tg_risk_decision d;
  const uint64_t t = 10 * second;
  tg_risk_options_init(&o);
  o.on_no_reference = TG_NO_REFERENCE_ALLOW;
  o.account_max_orders = 100;
  o.account_capacity = 2;
  o.duplicate_capacity = 3;
  c = NEW_CHECKER(&o, NULL);
  CTX("account capacity");
  ord = order("a1", "X", "i1", 1, 1);
  DECIDE(c, &ord, t, TG_RISK_NONE);
  ord = order("a2", "X", "i1", 1, 1);
  DECIDE(c, &ord, t, TG_RISK_NONE);
  ord = order("a3", "X", "i1", 1, 1);
  d = DECIDE(c, &ord, t, TG_RISK_ACCOUNT_CAPACITY);
  CHECK_DBL(d.limit, 2.0);
  CTX("duplicate capacity: a fourth live id cannot be remembered");
  ord = order("a1", "X", "i2", 1, 1);
  DECIDE(c, &ord, t, TG_RISK_NONE);
  ord = order("a1", "X", "i3", 1, 1);
  d = DECIDE(c, &ord, t, TG_RISK_DUPLICATE_CAPACITY);
  CHECK_DBL(d.limit, 3.0);
  CTX("the next period frees the accounts; ids stay until their window ends");
  ord = order("a3", "X", "i1", 1, 1);
  DECIDE(c, &ord, t + second, TG_RISK_DUPLICATE_CAPACITY);
  ord = order("a3", "X", "i1", 1, 1);
  DECIDE(c, &ord, t + 60 * second, TG_RISK_NONE);
  tg_risk_checker_free(c);
}

typedef struct events {
  int n;
  int scope[8];
  int engaged[8];
  char key[8][40];
  uint64_t now[8];
  tg_risk_checker* checker; /* to try re-entering */
  int reenter_rc;
  int check_rc;
} events;

static void on_kill(void* user, const tg_kill_switch_event* ev) {
  events* e = (events*)user;
  tg_risk_order ord = order("acct", "AAPL", "cb", 1, 1);
  tg_risk_decision d;
  if (e->n < 8) {
    e->scope[e->n] = ev->scope;
    e->engaged[e->n] = ev->engaged;
    memcpy(e->key[e->n], ev->key, ev->key_len < 39 ? ev->key_len : 39);
    e->key[e->n][ev->key_len < 39 ? ev->key_len : 39] = '\0';
    e->now[e->n] = ev->now_ns;
  }
  ++e->n;
  if (e->checker != NULL) {
    e->reenter_rc = tg_risk_kill_engage(e->checker, TG_KILL_GLOBAL, NULL, 0, 1, NULL);
    e->check_rc = tg_risk_check(e->checker, &ord, 1, &d);
  }
}

static int engaged(const tg_risk_checker* c, int scope, const char* key) {
  int on = -1;
  CHECK_RC(tg_risk_kill_engaged(c, scope, key, key != NULL ? strlen(key) : 0, &on), TG_OK);
  return on;
}

static void test_kill_switches(void) {
  tg_risk_options o;
  tg_risk_checker* c;
  tg_risk_order ord;
  events ev;
  tg_error err;
  const uint64_t t = 7 * second;
  memset(&ev, 0, sizeof ev);
  tg_risk_options_init(&o);
  o.on_no_reference = TG_NO_REFERENCE_ALLOW;
  o.duplicate_window_ns = 0;
  o.kill_switch_capacity = 2;
  c = NEW_CHECKER(&o, NULL);
  CHECK_RC(tg_risk_set_kill_callback(c, on_kill, &ev), TG_OK);

  CTX("account switch: latched until released, events carry scope and key");
  CHECK_RC(tg_risk_kill_engage(c, TG_KILL_ACCOUNT, "acct", 4, t, NULL), TG_OK);
  CHECK_RC(tg_risk_kill_engage(c, TG_KILL_ACCOUNT, "acct", 4, t + 1, NULL), TG_OK); /* no-op */
  CHECK_EQ(engaged(c, TG_KILL_ACCOUNT, "acct"), 1);
  CHECK_EQ(engaged(c, TG_KILL_ACCOUNT, "other"), 0);
  ord = order("acct", "AAPL", "k1", 1, 10);
  DECIDE(c, &ord, t + 2, TG_RISK_KILL_SWITCH_ACCOUNT);
  ord = order("other", "AAPL", "k1", 1, 10);
  DECIDE(c, &ord, t + 2, TG_RISK_NONE);

  CTX("instrument switch");
  CHECK_RC(tg_risk_kill_engage(c, TG_KILL_INSTRUMENT, "AAPL", 4, t + 3, NULL), TG_OK);
  ord = order("other", "AAPL", "k2", 1, 10);
  DECIDE(c, &ord, t + 4, TG_RISK_KILL_SWITCH_INSTRUMENT);
  ord = order("other", "MSFT", "k2", 1, 10);
  DECIDE(c, &ord, t + 4, TG_RISK_NONE);

  CTX("global switch wins over the others");
  CHECK_RC(tg_risk_kill_engage(c, TG_KILL_GLOBAL, NULL, 0, t + 5, NULL), TG_OK);
  CHECK_EQ(engaged(c, TG_KILL_GLOBAL, NULL), 1);
  ord = order("acct", "AAPL", "k3", 1, 10);
  DECIDE(c, &ord, t + 6, TG_RISK_KILL_SWITCH_GLOBAL);
  CHECK_EQ(stats_of(c).global_kill, 1);
  CHECK_EQ(stats_of(c).killed_accounts, 1);
  CHECK_EQ(stats_of(c).killed_instruments, 1);

  CTX("release");
  CHECK_RC(tg_risk_kill_release(c, TG_KILL_GLOBAL, NULL, 0, t + 7, NULL), TG_OK);
  CHECK_RC(tg_risk_kill_release(c, TG_KILL_ACCOUNT, "acct", 4, t + 8, NULL), TG_OK);
  CHECK_RC(tg_risk_kill_release(c, TG_KILL_ACCOUNT, "never", 5, t + 8, NULL), TG_OK); /* no-op */
  ord = order("acct", "MSFT", "k4", 1, 10);
  DECIDE(c, &ord, t + 9, TG_RISK_NONE);
  ord = order("acct", "AAPL", "k5", 1, 10);
  DECIDE(c, &ord, t + 9, TG_RISK_KILL_SWITCH_INSTRUMENT);

  CTX("events: one per change, in order, none for no-ops");
  CHECK_EQ(ev.n, 5);
  CHECK(ev.scope[0] == TG_KILL_ACCOUNT && ev.engaged[0] == 1 && strcmp(ev.key[0], "acct") == 0);
  CHECK_EQ(ev.now[0], t);
  CHECK(ev.scope[1] == TG_KILL_INSTRUMENT && ev.engaged[1] == 1 && strcmp(ev.key[1], "AAPL") == 0);
  CHECK(ev.scope[2] == TG_KILL_GLOBAL && ev.engaged[2] == 1 && ev.key[2][0] == '\0');
  CHECK(ev.scope[3] == TG_KILL_GLOBAL && ev.engaged[3] == 0);
  CHECK(ev.scope[4] == TG_KILL_ACCOUNT && ev.engaged[4] == 0 && strcmp(ev.key[4], "acct") == 0);
  CHECK_EQ(ev.now[4], t + 8);

  CTX("capacity: a third instrument is refused and nothing is engaged");
  CHECK_RC(tg_risk_kill_engage(c, TG_KILL_INSTRUMENT, "MSFT", 4, t + 10, NULL), TG_OK);
  memset(&err, 0, sizeof err);
  CHECK_RC(tg_risk_kill_engage(c, TG_KILL_INSTRUMENT, "IBM", 3, t + 10, &err), TG_ENOMEM);
  CHECK_EQ(err.code, TG_ENOMEM);
  CHECK(strstr(err.message, "kill_switch_capacity") != NULL);
  CHECK_EQ(engaged(c, TG_KILL_INSTRUMENT, "IBM"), 0);
  CHECK_EQ(ev.n, 6);

  CTX("a callback may check orders but not change this checker's switches");
  ev.checker = c;
  ev.reenter_rc = 99;
  CHECK_RC(tg_risk_kill_release(c, TG_KILL_INSTRUMENT, "MSFT", 4, t + 11, NULL), TG_OK);
  CHECK_EQ(ev.n, 7);
  CHECK_RC(ev.reenter_rc, TG_ESTATE);
  CHECK_RC(ev.check_rc, TG_OK);
  CHECK_EQ(engaged(c, TG_KILL_GLOBAL, NULL), 0);
  ev.checker = NULL;

  CTX("nor another checker's (a cycle of callbacks would deadlock)");
  {
    tg_risk_checker* d = NEW_CHECKER(&o, NULL);
    events ev2;
    memset(&ev2, 0, sizeof ev2);
    ev2.checker = c; /* d's callback tries to engage c's global switch */
    ev2.reenter_rc = 99;
    CHECK_RC(tg_risk_set_kill_callback(d, on_kill, &ev2), TG_OK);
    CHECK_RC(tg_risk_kill_engage(d, TG_KILL_ACCOUNT, "x", 1, t + 11, NULL), TG_OK);
    CHECK_RC(ev2.reenter_rc, TG_ESTATE);
    CHECK_RC(ev2.check_rc, TG_OK);
    CHECK_EQ(engaged(c, TG_KILL_GLOBAL, NULL), 0);
    tg_risk_checker_free(d);
  }

  CTX("removing the callback");
  CHECK_RC(tg_risk_set_kill_callback(c, NULL, NULL), TG_OK);
  CHECK_RC(tg_risk_kill_release(c, TG_KILL_INSTRUMENT, "AAPL", 4, t + 12, NULL), TG_OK);
  CHECK_EQ(ev.n, 7);
  tg_risk_checker_free(c);
}

static void test_batch(void) {
  tg_risk_options o;
  tg_risk_checker* c;
  tg_risk_order ords[4];
  tg_risk_decision out[4];
  const uint64_t t = 3 * second;
  tg_risk_options_init(&o);
  o.on_no_reference = TG_NO_REFERENCE_ALLOW;
  o.account_max_orders = 2;
  c = NEW_CHECKER(&o, NULL);
  ords[0] = order("a", "X", "1", 1, 10);
  ords[1] = order("a", "X", "1", 1, 10); /* duplicate of the first, which was accepted */
  ords[2] = order("a", "X", "2", 1, 10);
  ords[3] = order("a", "X", "3", 1, 10); /* third accepted order of the period */

  CTX("batch: validation first, nothing decided on TG_EINVAL");
  ords[2].side = 7;
  CHECK_RC(tg_risk_check_many(c, ords, 4, t, out), TG_EINVAL);
  CHECK_EQ(stats_of(c).checked, 0);
  ords[2].side = TG_SIDE_SELL;
  CHECK_RC(tg_risk_check_many(c, ords, 0, t, NULL), TG_OK);
  CHECK_RC(tg_risk_check_many(c, NULL, 4, t, out), TG_EINVAL);
  CHECK_RC(tg_risk_check_many(c, ords, 4, t, NULL), TG_EINVAL);

  CTX("batch: decided in order, each sees the ones before");
  CHECK_RC(tg_risk_check_many(c, ords, 4, t, out), TG_OK);
  CHECK(out[0].allowed == 1 && out[0].reason == TG_RISK_NONE);
  CHECK(out[1].allowed == 0 && out[1].reason == TG_RISK_DUPLICATE_ORDER);
  CHECK(out[2].allowed == 1 && out[2].reason == TG_RISK_NONE);
  CHECK(out[3].allowed == 0 && out[3].reason == TG_RISK_ACCOUNT_ORDER_COUNT);
  CHECK_EQ(stats_of(c).checked, 4);
  tg_risk_checker_free(c);
}

static void new_fails_at(const char* file, int line, const tg_risk_options* o,
                         tg_price_cache* prices, int want, const char* needle) {
  tg_risk_checker* c = (tg_risk_checker*)(uintptr_t)1;
  tg_error err;
  int rc;
  memset(&err, 0, sizeof err);
  rc = tg_risk_checker_new(o, prices, &c, &err);
  check_status_at(file, line, "tg_risk_checker_new", rc, want);
  ++g_checks;
  if (err.code != want || (needle != NULL && strstr(err.message, needle) == NULL)) {
    char m[512];
    snprintf(m, sizeof m, "error %d \"%s\", expected %d mentioning \"%s\"", err.code, err.message,
             want, needle != NULL ? needle : "");
    report_failure(file, line, m);
  }
  ++g_checks;
  if (c != (tg_risk_checker*)(uintptr_t)1) report_failure(file, line, "*out written on failure");
}
#define NEW_FAILS(o, p, want, needle) new_fails_at(__FILE__, __LINE__, (o), (p), (want), (needle))

static void test_misuse(void) {
  tg_risk_options o;
  tg_risk_checker* c;
  tg_price_cache* cache;
  tg_risk_order ord = order("a", "X", "1", 1, 10);
  tg_risk_decision d;
  tg_risk_stats s;
  tg_error err;
  int on;
  unsigned char big[sizeof(tg_risk_options) + 16];

  CTX("bad options");
  CHECK_RC(tg_risk_checker_new(NULL, NULL, NULL, NULL), TG_EINVAL);
  tg_risk_options_init(&o);
  o.max_quantity = 0;
  NEW_FAILS(&o, NULL, TG_ERANGE, "max_quantity");
  o.max_quantity = nan_value();
  NEW_FAILS(&o, NULL, TG_ERANGE, "max_quantity");
  tg_risk_options_init(&o);
  o.max_notional = -1;
  NEW_FAILS(&o, NULL, TG_ERANGE, "max_notional");
  tg_risk_options_init(&o);
  o.collar_unit = 3;
  NEW_FAILS(&o, NULL, TG_EINVAL, "collar");
  tg_risk_options_init(&o);
  o.collar_width = -0.5;
  NEW_FAILS(&o, NULL, TG_ERANGE, "collar_width");
  o.collar_width = nan_value();
  NEW_FAILS(&o, NULL, TG_ERANGE, "collar_width");
  tg_risk_options_init(&o);
  o.collar_tick_size = 0;
  NEW_FAILS(&o, NULL, TG_ERANGE, "collar_tick_size");
  o.collar_tick_size = INFINITY;
  NEW_FAILS(&o, NULL, TG_ERANGE, "collar_tick_size");
  tg_risk_options_init(&o);
  o.period_ns = 0;
  NEW_FAILS(&o, NULL, TG_ERANGE, "period_ns");
  tg_risk_options_init(&o);
  o.account_max_orders = 0;
  NEW_FAILS(&o, NULL, TG_ERANGE, "account_max_orders");
  tg_risk_options_init(&o);
  o.account_max_notional = 0;
  NEW_FAILS(&o, NULL, TG_ERANGE, "account_max_notional");
  tg_risk_options_init(&o);
  o.account_capacity = 0;
  NEW_FAILS(&o, NULL, TG_ERANGE, "account_capacity");
  o.account_capacity = (1ull << 24) + 1;
  NEW_FAILS(&o, NULL, TG_ERANGE, "account_capacity");
  tg_risk_options_init(&o);
  o.duplicate_capacity = 0;
  NEW_FAILS(&o, NULL, TG_ERANGE, "duplicate_capacity");
  tg_risk_options_init(&o);
  o.kill_switch_capacity = (1ull << 20) + 1;
  NEW_FAILS(&o, NULL, TG_ERANGE, "kill_switch_capacity");
  tg_risk_options_init(&o);
  o.on_no_reference = 2;
  NEW_FAILS(&o, NULL, TG_EINVAL, "on_no_reference");
  tg_risk_options_init(&o);
  o.reserved = 1;
  NEW_FAILS(&o, NULL, TG_EINVAL, "reserved");
  tg_risk_options_init(&o);
  o.struct_size = 8;
  NEW_FAILS(&o, NULL, TG_EVERSION, "struct_size");
  CTX("options from a newer library: zero tail accepted, set tail refused");
  memset(big, 0, sizeof big);
  tg_risk_options_init(&o);
  memcpy(big, &o, sizeof o);
  ((tg_risk_options*)(void*)big)->struct_size = (uint32_t)sizeof big;
  c = NULL;
  CHECK_RC(tg_risk_checker_new((const tg_risk_options*)(const void*)big, NULL, &c, NULL), TG_OK);
  tg_risk_checker_free(c);
  big[sizeof big - 1] = 1;
  NEW_FAILS((const tg_risk_options*)(const void*)big, NULL, TG_EVERSION, "newer");

  CTX("prices must be a live cache: one its caller freed is refused");
  cache = new_cache();
  c = NEW_CHECKER(NULL, cache); /* keeps the memory alive after the caller's free */
  tg_price_cache_free(cache);
  NEW_FAILS(NULL, cache, TG_EINVAL, "tg_price_cache");
  tg_risk_checker_free(c);
  {
    tg_limiter* l = NEW_LIMITER(NULL);
    NEW_FAILS(NULL, (tg_price_cache*)(void*)l, TG_EINVAL, "tg_price_cache");
    CTX("a handle of another type is not a checker");
    tg_risk_checker_free((tg_risk_checker*)(void*)l); /* no-op */
    CHECK_RC(tg_limiter_stats_get(l, NULL), TG_EINVAL);
    {
      tg_limiter_stats ls;
      CHECK_RC(tg_limiter_stats_get(l, &ls), TG_OK); /* still alive */
    }
    tg_limiter_free(l);
  }
  cache = new_cache();

  c = NEW_CHECKER(NULL, NULL);
  CTX("bad check calls");
  CHECK_RC(tg_risk_check(NULL, &ord, 1, &d), TG_EINVAL);
  CHECK_RC(tg_risk_check(c, NULL, 1, &d), TG_EINVAL);
  CHECK_RC(tg_risk_check(c, &ord, 1, NULL), TG_EINVAL);
  ord.account = NULL; /* with a length */
  CHECK_RC(tg_risk_check(c, &ord, 1, &d), TG_EINVAL);
  ord = order("a", "X", "1", 1, 10);
  ord.instrument = NULL;
  CHECK_RC(tg_risk_check(c, &ord, 1, &d), TG_EINVAL);
  ord = order("a", "X", "1", 1, 10);
  ord.client_order_id = NULL;
  CHECK_RC(tg_risk_check(c, &ord, 1, &d), TG_EINVAL);
  ord = order("a", "X", "1", 1, 10);
  ord.side = 2;
  CHECK_RC(tg_risk_check(c, &ord, 1, &d), TG_EINVAL);
  ord = order("a", "X", "1", 1, 10);
  ord.reserved = 1;
  CHECK_RC(tg_risk_check(c, &ord, 1, &d), TG_EINVAL);
  CHECK_EQ(stats_of(c).checked, 0);
  CHECK_RC(tg_risk_check((tg_risk_checker*)(void*)cache, &ord, 1, &d), TG_EINVAL);
  tg_price_cache_free(cache);

  CTX("bad kill switch calls");
  memset(&err, 0, sizeof err);
  CHECK_RC(tg_risk_kill_engage(NULL, TG_KILL_GLOBAL, NULL, 0, 1, &err), TG_EINVAL);
  CHECK(strstr(err.message, "tg_risk_checker") != NULL);
  CHECK_RC(tg_risk_kill_engage(c, 3, "a", 1, 1, &err), TG_EINVAL);
  CHECK(strstr(err.message, "scope") != NULL);
  CHECK_RC(tg_risk_kill_engage(c, -1, "a", 1, 1, NULL), TG_EINVAL);
  CHECK_RC(tg_risk_kill_engage(c, TG_KILL_ACCOUNT, NULL, 0, 1, &err), TG_EINVAL);
  CHECK(strstr(err.message, "1..32") != NULL);
  CHECK_RC(tg_risk_kill_engage(c, TG_KILL_ACCOUNT, NULL, 4, 1, NULL), TG_EINVAL);
  CHECK_RC(
      tg_risk_kill_engage(c, TG_KILL_INSTRUMENT, "0123456789abcdef0123456789abcdefX", 33, 1, NULL),
      TG_EINVAL);
  CHECK_RC(tg_risk_kill_release(c, TG_KILL_ACCOUNT, "", 0, 1, NULL), TG_EINVAL);
  CHECK_RC(tg_risk_kill_release(NULL, TG_KILL_GLOBAL, NULL, 0, 1, NULL), TG_EINVAL);
  CHECK_RC(tg_risk_kill_engaged(c, TG_KILL_GLOBAL, NULL, 0, NULL), TG_EINVAL);
  CHECK_RC(tg_risk_kill_engaged(NULL, TG_KILL_GLOBAL, NULL, 0, &on), TG_EINVAL);
  CHECK_RC(tg_risk_kill_engaged(c, 9, NULL, 0, &on), TG_EINVAL);
  CHECK_RC(tg_risk_kill_engaged(c, TG_KILL_ACCOUNT, NULL, 0, &on), TG_EINVAL);
  CHECK_EQ(stats_of(c).killed_accounts, 0);
  CHECK_RC(tg_risk_set_kill_callback(NULL, on_kill, NULL), TG_EINVAL);
  CHECK_RC(tg_risk_stats_get(NULL, &s), TG_EINVAL);
  CHECK_RC(tg_risk_stats_get(c, NULL), TG_EINVAL);

  CTX("free: NULL is a no-op");
  tg_risk_checker_free(NULL);
  tg_risk_checker_free(c);
}

static void test_cache_outlives_its_handle(void) {
  tg_price_cache* cache = new_cache();
  tg_risk_checker* c;
  tg_risk_order ord;
  tg_risk_options o;
  tg_risk_decision d;
  const uint64_t t = 2 * second;
  CTX("the checker keeps the cache it reads");
  put_price(cache, "AAPL", 50.0, t);
  tg_risk_options_init(&o);
  o.collar_width = 10;
  c = NEW_CHECKER(&o, cache);
  CHECK_RC(tg_risk_check(c, NULL, t, &d), TG_EINVAL);
  tg_price_cache_free(cache); /* the caller lets go; the checker still reads it */
  CHECK_RC(tg_price_cache_put(cache, "AAPL", 4, 51.0, 2, NULL, 0, 10, 0.01, t, NULL), TG_EINVAL);
  ord = order("a", "AAPL", "1", 1, 54);
  d = DECIDE(c, &ord, t + 1, TG_RISK_NONE);
  CHECK_DBL(d.reference, 50.0);
  ord = order("a", "AAPL", "2", 1, 56);
  DECIDE(c, &ord, t + 1, TG_RISK_PRICE_COLLAR);
  tg_risk_checker_free(c); /* frees the cache too (ASan/valgrind see a leak otherwise) */
}

/* Two threads send one account's orders; exactly account_max_orders are
 * accepted between them, and no id is accepted twice. */
typedef struct racer {
  tg_risk_checker* c;
  int first_id;
  int accepted;
  int duplicates;
  int bad_status;
} racer;

static void* race_main(void* arg) {
  racer* r = (racer*)arg;
  char id[16];
  int i;
  for (i = 0; i < 4000; ++i) {
    tg_risk_order ord;
    tg_risk_decision d;
    /* ids overlap between the threads: half of them are shared */
    snprintf(id, sizeof id, "id%d", r->first_id + i);
    ord = order("shared", "X", id, 1, 1);
    if (tg_risk_check(r->c, &ord, 5 * second, &d) != TG_OK) ++r->bad_status;
    if (d.allowed) ++r->accepted;
    if (d.reason == TG_RISK_DUPLICATE_ORDER) ++r->duplicates;
  }
  return NULL;
}

static void test_threads(void) {
  tg_risk_options o;
  tg_risk_checker* c;
  racer a, b;
  pthread_t ta, tb;
  CTX("two threads, one account");
  tg_risk_options_init(&o);
  o.on_no_reference = TG_NO_REFERENCE_ALLOW;
  o.account_max_orders = 5000;
  c = NEW_CHECKER(&o, NULL);
  memset(&a, 0, sizeof a);
  memset(&b, 0, sizeof b);
  a.c = b.c = c;
  a.first_id = 0;
  b.first_id = 2000; /* ids 2000..3999 are sent by both */
  REQUIRE(pthread_create(&ta, NULL, race_main, &a) == 0);
  REQUIRE(pthread_create(&tb, NULL, race_main, &b) == 0);
  pthread_join(ta, NULL);
  pthread_join(tb, NULL);
  CHECK_EQ(a.bad_status + b.bad_status, 0);
  /* 6000 distinct ids; 2000 of them sent twice: each accepted exactly once
   * until the limit of 5000 */
  CHECK_EQ(a.accepted + b.accepted, 5000);
  CHECK(a.duplicates + b.duplicates <= 2000);
  CHECK_EQ(stats_of(c).decisions[TG_RISK_ACCOUNT_ORDER_COUNT] + a.duplicates + b.duplicates +
               (uint64_t)(a.accepted + b.accepted),
           8000);
  tg_risk_checker_free(c);
}

int main(void) {
  test_defaults_and_names();
  test_order_checks();
  test_collar_units();
  test_account_limits();
  test_capacity_fails_closed();
  test_kill_switches();
  test_batch();
  test_misuse();
  test_cache_outlives_its_handle();
  test_threads();
  return check_summary();
}
