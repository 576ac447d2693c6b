/* C ABI tests of the price cache: put/get, price-move and tick thresholds,
 * sequence gaps and replays, age, capacity (CLOCK) with the event callback,
 * volatility-widened thresholds, batches, misuse and concurrent readers. C99;
 * the only tollgate header used is tollgate.h. */
#include <tollgate/tollgate.h>

#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK_PROGRAM "capi_price_cache"
#include "check.h"

/* ------------------------------------------------------------------------ */
/* Helpers                                                                   */
/* ------------------------------------------------------------------------ */

#define SEC 1000000000ull

/* NaN, computed at run time. */
static double nan_value(void) {
  volatile double z = 0.0;
  return z / z;
}

/* A cache made from `o` (NULL: the defaults); anything else stops. */
static tg_price_cache* new_cache_at(const char* file, int line, const tg_price_cache_options* o) {
  tg_price_cache* c = NULL;
  tg_error err;
  int rc;
  memset(&err, 0, sizeof err);
  rc = tg_price_cache_new(o, &c, &err);
  if (rc != TG_OK) fprintf(stderr, "tg_price_cache_new: %s: %s\n", tg_status_str(rc), err.message);
  REQUIRE_AT(file, line, rc == TG_OK && c != NULL,
             "REQUIRE(tg_price_cache_new(...) == TG_OK && cache != NULL)");
  return c;
}
#define NEW_CACHE(o) new_cache_at(__FILE__, __LINE__, (o))

/* Put a symbol key with no payload and the cache's default thresholds. */
static int put_sym(tg_price_cache* c, const char* sym, double price, uint64_t seq, uint64_t now) {
  return tg_price_cache_put(c, sym, strlen(sym), price, seq, NULL, 0, nan_value(), nan_value(), now,
                            NULL);
}

/* A tick for a symbol key; returns the outcome, reason in *reason. The call
 * itself must succeed. */
static int tick_at(const char* file, int line, tg_price_cache* c, const char* sym, double price,
                   uint64_t seq, uint64_t now, int* reason) {
  tg_price_result r;
  int rc;
  r.outcome = -1;
  r.reason = -1;
  rc = tg_price_cache_on_price(c, sym, strlen(sym), price, seq, now, &r);
  check_status_at(file, line, "tg_price_cache_on_price", rc, TG_OK);
  if (reason) *reason = r.reason;
  return r.outcome;
}
#define TICK(c, sym, price, seq, now, reason) \
  tick_at(__FILE__, __LINE__, (c), (sym), (price), (seq), (now), (reason))

/* Checks a tick's outcome and reason. */
#define CHECK_TICK(c, sym, price, seq, now, want_outcome, want_reason)      \
  do {                                                                      \
    int reason_ = -1;                                                       \
    const int outcome_ = TICK((c), (sym), (price), (seq), (now), &reason_); \
    CHECK_EQ(outcome_, (want_outcome));                                     \
    CHECK_EQ(reason_, (want_reason));                                       \
  } while (0)

/* 1 if the symbol is a hit at now. */
static int is_hit(const tg_price_cache* c, const char* sym, uint64_t now) {
  int hit = -1;
  CHECK_RC(tg_price_cache_get(c, sym, strlen(sym), now, NULL, NULL, 0, &hit), TG_OK);
  CHECK(hit == 0 || hit == 1);
  return hit;
}

static tg_price_cache_stats stats_of(const tg_price_cache* c) {
  tg_price_cache_stats s;
  memset(&s, 0xab, sizeof s);
  CHECK_RC(tg_price_cache_stats_get(c, &s), TG_OK);
  return s;
}

/* Evictions reported to the callback. */
#define MAX_EVENTS 64
typedef struct recorded_event {
  tg_eviction_event ev;
  char key[33];
  int hit_in_callback; /* the evicted key, looked up from the callback */
} recorded_event;

typedef struct recorder {
  tg_price_cache* cache;
  int n;
  recorded_event e[MAX_EVENTS];
} recorder;

static void on_evict(void* user, const tg_eviction_event* ev) {
  recorder* r = (recorder*)user;
  recorded_event* e;
  if (r->n >= MAX_EVENTS) {
    ++r->n;
    return;
  }
  e = &r->e[r->n++];
  e->ev = *ev;
  memset(e->key, 0, sizeof e->key);
  if (ev->key_len <= 32 && ev->key != NULL) memcpy(e->key, ev->key, ev->key_len);
  e->ev.key = NULL; /* valid during the call only */
  e->hit_in_callback = -1;
  /* "after the entry is gone"; the callback may call tg_price_cache_*. */
  if (ev->key_len >= 1 && ev->key_len <= 32) {
    tg_price_cache_get(r->cache, ev->key, ev->key_len, ev->now_ns, NULL, NULL, 0,
                       &e->hit_in_callback);
  }
}

static void recorder_attach(recorder* r, tg_price_cache* c) {
  memset(r, 0, sizeof *r);
  r->cache = c;
  CHECK_RC(tg_price_cache_set_event_callback(c, on_evict, r), TG_OK);
}

/* The i-th recorded event is (reason, key, cached, new, seq, now). */
static void check_event_at(const char* file, int line, const recorder* r, int i, int reason,
                           const char* key, double cached, double new_price, uint64_t seq,
                           uint64_t now) {
  const recorded_event* e;
  char m[512];
  ++g_checks;
  if (i >= r->n || i >= MAX_EVENTS) {
    snprintf(m, sizeof m, "event %d: only %d recorded", i, r->n);
    report_failure(file, line, m);
    return;
  }
  e = &r->e[i];
  if (e->ev.reason != reason || e->ev.key_len != strlen(key) || strcmp(e->key, key) != 0 ||
      !(e->ev.cached_price == cached) || !(e->ev.new_price == new_price) || e->ev.feed_seq != seq ||
      e->ev.now_ns != now || e->hit_in_callback != 0) {
    snprintf(m, sizeof m,
             "event %d: reason %d key '%s' (%u) cached %.17g new %.17g seq %" PRIu64 " now %" PRIu64
             " hit_in_callback %d; expected reason %d key '%s' cached %.17g "
             "new %.17g seq %" PRIu64 " now %" PRIu64 " hit 0",
             i, (int)e->ev.reason, e->key, (unsigned)e->ev.key_len, e->ev.cached_price,
             e->ev.new_price, e->ev.feed_seq, e->ev.now_ns, e->hit_in_callback, reason, key, cached,
             new_price, seq, now);
    report_failure(file, line, m);
  }
}
#define CHECK_EVENT(r, i, reason, key, cached, new_price, seq, now) \
  check_event_at(__FILE__, __LINE__, (r), (i), (reason), (key), (cached), (new_price), (seq), (now))

/* ------------------------------------------------------------------------ */
/* 1. Basics                                                                 */
/* ------------------------------------------------------------------------ */

static void test_basics(void) {
  tg_price_cache* c = NEW_CACHE(NULL);
  const char payload[] = "0123456789abcdef";
  char buf[64];
  tg_cached_price cp;
  tg_price_cache_stats s;
  int hit = -1;
  uint64_t id = 0x0102030405060708ull;
  unsigned char idkey[8];

  CTX("basics: put and get with payload");
  CHECK_RC(tg_price_cache_put(c, "AAPL", 4, 187.25, 10, payload, 16, nan_value(), nan_value(), 1000,
                              NULL),
           TG_OK);
  memset(&cp, 0xcd, sizeof cp);
  memset(buf, 0, sizeof buf);
  CHECK_RC(tg_price_cache_get(c, "AAPL", 4, 1500, &cp, buf, sizeof buf, &hit), TG_OK);
  CHECK_EQ(hit, 1);
  CHECK_DBL(cp.price, 187.25);
  CHECK_DBL(cp.threshold, 10.0);
  CHECK_EQ(cp.feed_seq, 10);
  CHECK_EQ(cp.cached_at_ns, 1000);
  CHECK_EQ(cp.age_ns, 500);
  CHECK_EQ(cp.payload_len, 16);
  CHECK(memcmp(buf, payload, 16) == 0);
  CHECK_EQ(buf[16], 0);

  CTX("basics: truncated payload copy");
  memset(buf, 'x', sizeof buf);
  hit = -1;
  CHECK_RC(tg_price_cache_get(c, "AAPL", 4, 1500, &cp, buf, 5, &hit), TG_OK);
  CHECK_EQ(hit, 1);
  CHECK_EQ(cp.payload_len, 16);
  CHECK(memcmp(buf, "01234", 5) == 0);
  CHECK_EQ(buf[5], 'x');

  CTX("basics: payload NULL with cap 0, out NULL");
  hit = -1;
  CHECK_RC(tg_price_cache_get(c, "AAPL", 4, 1500, NULL, NULL, 0, &hit), TG_OK);
  CHECK_EQ(hit, 1);

  CTX("basics: clock went back: age 0");
  CHECK_RC(tg_price_cache_get(c, "AAPL", 4, 900, &cp, NULL, 0, &hit), TG_OK);
  CHECK_EQ(hit, 1);
  CHECK_EQ(cp.age_ns, 0);

  CTX("basics: miss");
  hit = -1;
  CHECK_RC(tg_price_cache_get(c, "MSFT", 4, 1500, &cp, buf, sizeof buf, &hit), TG_OK);
  CHECK_EQ(hit, 0);
  hit = -1;
  CHECK_RC(tg_price_cache_get(c, "AAP", 3, 1500, &cp, buf, sizeof buf, &hit), TG_OK);
  CHECK_EQ(hit, 0);

  CTX("basics: numeric id key");
  {
    int i;
    for (i = 0; i < 8; ++i) idkey[i] = (unsigned char)(id >> (8 * i));
  }
  CHECK_RC(
      tg_price_cache_put(c, &id, sizeof id, 42.5, 1, NULL, 0, nan_value(), nan_value(), 2000, NULL),
      TG_OK);
  hit = -1;
  CHECK_RC(tg_price_cache_get(c, idkey, 8, 2000, &cp, NULL, 0, &hit), TG_OK);
  /* The id's own bytes are the key on this (any) host; idkey is the
   * little-endian spelling, equal on little-endian hosts. */
  {
    const uint16_t one = 1;
    unsigned char first;
    memcpy(&first, &one, 1);
    if (first == 1) CHECK_EQ(hit, 1);
  }
  hit = -1;
  CHECK_RC(tg_price_cache_get(c, &id, sizeof id, 2000, &cp, NULL, 0, &hit), TG_OK);
  CHECK_EQ(hit, 1);
  CHECK_DBL(cp.price, 42.5);
  CHECK_EQ(cp.payload_len, 0);
  {
    uint64_t other = id + 1;
    hit = -1;
    CHECK_RC(tg_price_cache_get(c, &other, sizeof other, 2000, &cp, NULL, 0, &hit), TG_OK);
    CHECK_EQ(hit, 0);
  }

  CTX("basics: re-cache replaces price, payload, sequence, age");
  CHECK_RC(
      tg_price_cache_put(c, "AAPL", 4, 190.5, 99, "zz", 2, nan_value(), nan_value(), 3000, NULL),
      TG_OK);
  memset(buf, 0, sizeof buf);
  hit = -1;
  CHECK_RC(tg_price_cache_get(c, "AAPL", 4, 3500, &cp, buf, sizeof buf, &hit), TG_OK);
  CHECK_EQ(hit, 1);
  CHECK_DBL(cp.price, 190.5);
  CHECK_EQ(cp.feed_seq, 99);
  CHECK_EQ(cp.cached_at_ns, 3000);
  CHECK_EQ(cp.age_ns, 500);
  CHECK_EQ(cp.payload_len, 2);
  CHECK(memcmp(buf, "zz", 2) == 0);
  CHECK_EQ(buf[2], 0);
  /* The sequence moved to 99: 100 is in order. */
  CHECK_TICK(c, "AAPL", 190.5, 100, 3600, TG_PRICE_KEPT, TG_EVICT_NONE);

  CTX("basics: stats");
  s = stats_of(c);
  CHECK_EQ(s.entries, 2);
  CHECK_EQ(s.puts, 3);
  CHECK_EQ(s.kept, 1);
  CHECK(s.slots >= 4096);
  CHECK(s.hits >= 7);
  CHECK_EQ(s.misses, 3);
  CHECK_EQ(s.stale_misses, 0);
  tg_price_cache_free(c);
}

/* ------------------------------------------------------------------------ */
/* 2. Thresholds                                                             */
/* ------------------------------------------------------------------------ */

/* Caches sym at `cached` (seq 1) and ticks `price` (seq 2): outcome, reason. */
static void fresh_tick_at(const char* file, int line, tg_price_cache* c, const char* sym,
                          double cached, double threshold, double tick_size, double price,
                          int want_outcome, int want_reason) {
  int reason = -1, outcome;
  check_status_at(
      file, line, "tg_price_cache_put",
      tg_price_cache_put(c, sym, strlen(sym), cached, 1, NULL, 0, threshold, tick_size, 0, NULL),
      TG_OK);
  outcome = tick_at(file, line, c, sym, price, 2, 1, &reason);
  if (outcome != want_outcome || reason != want_reason) {
    char m[256];
    snprintf(m, sizeof m, "cached %.17g, tick %.17g: outcome %d reason %d, expected %d %d", cached,
             price, outcome, reason, want_outcome, want_reason);
    report_failure(file, line, m);
  }
  ++g_checks;
  /* An evicted entry is gone; a kept one is still there. */
  {
    int hit = -1;
    tg_price_cache_get(c, sym, strlen(sym), 1, NULL, NULL, 0, &hit);
    ++g_checks;
    if (hit != (want_outcome == TG_PRICE_KEPT)) report_failure(file, line, "hit after the tick");
  }
}
#define FRESH_TICK(c, sym, cached, thr, tick, price, outcome, reason)                        \
  fresh_tick_at(__FILE__, __LINE__, (c), (sym), (cached), (thr), (tick), (price), (outcome), \
                (reason))

static void test_thresholds(void) {
  const double nan = nan_value();
  tg_price_cache* c = NEW_CACHE(NULL);
  tg_price_cache_options o;
  tg_price_cache_stats s;
  tg_cached_price cp;
  int hit = -1, reason = -1;

  CTX("thresholds: bps default 10, exactly 10 bps keeps");
  FRESH_TICK(c, "X", 100.0, nan, nan, 100.10, TG_PRICE_KEPT, TG_EVICT_NONE);
  FRESH_TICK(c, "X", 100.0, nan, nan, 99.90, TG_PRICE_KEPT, TG_EVICT_NONE);
  FRESH_TICK(c, "X", 100.0, nan, nan, 100.0, TG_PRICE_KEPT, TG_EVICT_NONE);
  CTX("thresholds: bps default 10, 11 bps evicts");
  FRESH_TICK(c, "X", 100.0, nan, nan, 100.11, TG_PRICE_EVICTED, TG_EVICT_PRICE_MOVE);
  FRESH_TICK(c, "X", 100.0, nan, nan, 99.89, TG_PRICE_EVICTED, TG_EVICT_PRICE_MOVE);
  s = stats_of(c);
  CHECK_EQ(s.evicted_price_move, 2);
  CHECK_EQ(s.kept, 3);
  CHECK_EQ(s.entries, 0);

  CTX("thresholds: the move is measured from the cached price");
  CHECK_RC(put_sym(c, "W", 100.0, 10, 0), TG_OK);
  CHECK_TICK(c, "W", 100.05, 11, 1, TG_PRICE_KEPT, TG_EVICT_NONE);
  CHECK_TICK(c, "W", 100.10, 12, 2, TG_PRICE_KEPT, TG_EVICT_NONE);
  CHECK_TICK(c, "W", 99.95, 13, 3, TG_PRICE_KEPT, TG_EVICT_NONE);
  CHECK_TICK(c, "W", 100.09, 14, 4, TG_PRICE_KEPT, TG_EVICT_NONE);
  /* 2 bps from the last tick, 11 from the cached price. */
  CHECK_TICK(c, "W", 100.11, 15, 5, TG_PRICE_EVICTED, TG_EVICT_PRICE_MOVE);
  CHECK_EQ(is_hit(c, "W", 5), 0);
  /* A tick for the evicted instrument: not cached. */
  CHECK_TICK(c, "W", 100.11, 16, 6, TG_PRICE_NOT_CACHED, TG_EVICT_NONE);

  CTX("thresholds: kept ticks do not move the cached price");
  CHECK_RC(put_sym(c, "V", 100.0, 1, 0), TG_OK);
  CHECK_TICK(c, "V", 100.08, 2, 1, TG_PRICE_KEPT, TG_EVICT_NONE);
  memset(&cp, 0, sizeof cp);
  CHECK_RC(tg_price_cache_get(c, "V", 1, 1, &cp, NULL, 0, &hit), TG_OK);
  CHECK_EQ(hit, 1);
  CHECK_DBL(cp.price, 100.0);
  CHECK_EQ(cp.feed_seq, 2);

  CTX("thresholds: per-entry bps threshold 50");
  FRESH_TICK(c, "P", 100.0, 50.0, nan, 100.50, TG_PRICE_KEPT, TG_EVICT_NONE);
  FRESH_TICK(c, "P", 100.0, 50.0, nan, 99.50, TG_PRICE_KEPT, TG_EVICT_NONE);
  FRESH_TICK(c, "P", 100.0, 50.0, nan, 100.51, TG_PRICE_EVICTED, TG_EVICT_PRICE_MOVE);
  CHECK_RC(tg_price_cache_put(c, "P", 1, 100.0, 1, NULL, 0, 50.0, nan, 0, NULL), TG_OK);
  CHECK_RC(tg_price_cache_get(c, "P", 1, 0, &cp, NULL, 0, &hit), TG_OK);
  CHECK_EQ(hit, 1);
  CHECK_DBL(cp.threshold, 50.0);
  CTX("thresholds: per-entry threshold 0: any move evicts");
  FRESH_TICK(c, "Z", 100.0, 0.0, nan, 100.0, TG_PRICE_KEPT, TG_EVICT_NONE);
  FRESH_TICK(c, "Z", 100.0, 0.0, nan, 100.01, TG_PRICE_EVICTED, TG_EVICT_PRICE_MOVE);
  CTX("thresholds: NaN threshold keeps the default");
  CHECK_RC(tg_price_cache_put(c, "P", 1, 100.0, 1, NULL, 0, nan, nan, 0, NULL), TG_OK);
  CHECK_RC(tg_price_cache_get(c, "P", 1, 0, &cp, NULL, 0, &hit), TG_OK);
  CHECK_EQ(hit, 1);
  CHECK_DBL(cp.threshold, 10.0);
  CHECK_EQ(TICK(c, "P", 100.11, 2, 1, &reason), TG_PRICE_EVICTED);
  CHECK_EQ(reason, TG_EVICT_PRICE_MOVE);
  tg_price_cache_free(c);

  CTX("thresholds: cache default threshold 25 bps");
  tg_price_cache_options_init(&o);
  o.threshold = 25.0;
  c = NEW_CACHE(&o);
  FRESH_TICK(c, "D", 200.0, nan, nan, 200.50, TG_PRICE_KEPT, TG_EVICT_NONE);
  FRESH_TICK(c, "D", 200.0, nan, nan, 200.52, TG_PRICE_EVICTED, TG_EVICT_PRICE_MOVE);
  tg_price_cache_free(c);

  CTX("thresholds: ticks, tick 0.01, threshold 5");
  tg_price_cache_options_init(&o);
  o.unit = TG_THRESHOLD_TICKS;
  o.tick_size = 0.01;
  o.threshold = 5.0;
  c = NEW_CACHE(&o);
  FRESH_TICK(c, "T", 100.0, nan, nan, 100.05, TG_PRICE_KEPT, TG_EVICT_NONE);
  FRESH_TICK(c, "T", 100.0, nan, nan, 99.95, TG_PRICE_KEPT, TG_EVICT_NONE);
  FRESH_TICK(c, "T", 100.0, nan, nan, 100.06, TG_PRICE_EVICTED, TG_EVICT_PRICE_MOVE);
  FRESH_TICK(c, "T", 100.0, nan, nan, 99.94, TG_PRICE_EVICTED, TG_EVICT_PRICE_MOVE);
  /* round(|p - c| / tick): 5.4 ticks rounds to 5, 5.6 to 6. */
  FRESH_TICK(c, "T", 100.0, nan, nan, 100.054, TG_PRICE_KEPT, TG_EVICT_NONE);
  FRESH_TICK(c, "T", 100.0, nan, nan, 100.056, TG_PRICE_EVICTED, TG_EVICT_PRICE_MOVE);
  CHECK_RC(put_sym(c, "T", 100.0, 1, 0), TG_OK);
  CHECK_RC(tg_price_cache_get(c, "T", 1, 0, &cp, NULL, 0, &hit), TG_OK);
  CHECK_EQ(hit, 1);
  CHECK_DBL(cp.threshold, 5.0);

  CTX("thresholds: ticks, per-entry tick size 0.05");
  FRESH_TICK(c, "U", 100.0, nan, 0.05, 100.25, TG_PRICE_KEPT, TG_EVICT_NONE);
  FRESH_TICK(c, "U", 100.0, nan, 0.05, 99.75, TG_PRICE_KEPT, TG_EVICT_NONE);
  FRESH_TICK(c, "U", 100.0, nan, 0.05, 100.27, TG_PRICE_KEPT, TG_EVICT_NONE);
  FRESH_TICK(c, "U", 100.0, nan, 0.05, 100.28, TG_PRICE_EVICTED, TG_EVICT_PRICE_MOVE);
  FRESH_TICK(c, "U", 100.0, nan, 0.05, 100.30, TG_PRICE_EVICTED, TG_EVICT_PRICE_MOVE);
  CTX("thresholds: ticks, per-entry tick size 0.05 and threshold 2");
  FRESH_TICK(c, "U", 100.0, 2.0, 0.05, 100.10, TG_PRICE_KEPT, TG_EVICT_NONE);
  FRESH_TICK(c, "U", 100.0, 2.0, 0.05, 100.15, TG_PRICE_EVICTED, TG_EVICT_PRICE_MOVE);
  CTX("thresholds: ticks, the default tick size still applies to other entries");
  FRESH_TICK(c, "T", 100.0, nan, nan, 100.06, TG_PRICE_EVICTED, TG_EVICT_PRICE_MOVE);
  tg_price_cache_free(c);
}

/* ------------------------------------------------------------------------ */
/* 3. Sequence                                                               */
/* ------------------------------------------------------------------------ */

static void test_sequence(void) {
  tg_price_cache* c = NEW_CACHE(NULL);
  recorder r;
  tg_cached_price cp;
  tg_price_cache_stats s;
  int hit = -1;
  recorder_attach(&r, c);

  CTX("sequence: in order keeps, a gap evicts");
  CHECK_RC(put_sym(c, "G", 100.0, 10, 0), TG_OK);
  CHECK_TICK(c, "G", 100.01, 11, 1, TG_PRICE_KEPT, TG_EVICT_NONE);
  CHECK_TICK(c, "G", 100.01, 13, 2, TG_PRICE_EVICTED, TG_EVICT_SEQUENCE_GAP);
  CHECK_EQ(is_hit(c, "G", 2), 0);
  CHECK_EQ(r.n, 1);
  CHECK_EVENT(&r, 0, TG_EVICT_SEQUENCE_GAP, "G", 100.0, 100.01, 13, 2);
  CHECK_TICK(c, "G", 100.01, 14, 3, TG_PRICE_NOT_CACHED, TG_EVICT_NONE);

  CTX("sequence: a gap right after the put");
  CHECK_RC(put_sym(c, "G", 100.0, 10, 0), TG_OK);
  CHECK_TICK(c, "G", 100.0, 12, 1, TG_PRICE_EVICTED, TG_EVICT_SEQUENCE_GAP);

  CTX("sequence: a far-ahead number is a gap");
  CHECK_RC(put_sym(c, "G", 100.0, 10, 0), TG_OK);
  CHECK_TICK(c, "G", 100.0, 10 + (UINT64_C(1) << 63) - 1, 1, TG_PRICE_EVICTED,
             TG_EVICT_SEQUENCE_GAP);

  CTX("sequence: duplicates and older numbers are replays and change nothing");
  CHECK_RC(tg_price_cache_put(c, "R", 1, 100.0, 20, "pp", 2, nan_value(), nan_value(), 5, NULL),
           TG_OK);
  CHECK_TICK(c, "R", 100.02, 21, 6, TG_PRICE_KEPT, TG_EVICT_NONE);
  CHECK_TICK(c, "R", 100.02, 21, 7, TG_PRICE_REPLAY, TG_EVICT_NONE);
  CHECK_TICK(c, "R", 500.0, 21, 7, TG_PRICE_REPLAY, TG_EVICT_NONE); /* would evict */
  CHECK_TICK(c, "R", 500.0, 20, 7, TG_PRICE_REPLAY, TG_EVICT_NONE);
  CHECK_TICK(c, "R", 500.0, 3, 7, TG_PRICE_REPLAY, TG_EVICT_NONE);
  CHECK_TICK(c, "R", 500.0, 0, 7, TG_PRICE_REPLAY, TG_EVICT_NONE);
  /* Up to 2^63 behind (modulo 2^64) is a replay. */
  CHECK_TICK(c, "R", 500.0, 21 - ((UINT64_C(1) << 63) - 1), 7, TG_PRICE_REPLAY, TG_EVICT_NONE);
  CHECK_TICK(c, "R", 500.0, UINT64_MAX, 7, TG_PRICE_REPLAY, TG_EVICT_NONE);
  memset(&cp, 0, sizeof cp);
  CHECK_RC(tg_price_cache_get(c, "R", 1, 8, &cp, NULL, 0, &hit), TG_OK);
  CHECK_EQ(hit, 1);
  CHECK_DBL(cp.price, 100.0);
  CHECK_EQ(cp.feed_seq, 21);
  CHECK_EQ(cp.cached_at_ns, 5);
  CHECK_EQ(cp.payload_len, 2);
  /* The next number is still in order. */
  CHECK_TICK(c, "R", 100.0, 22, 9, TG_PRICE_KEPT, TG_EVICT_NONE);
  CHECK_EQ(r.n, 3);

  CTX("sequence: wrap from UINT64_MAX to 0 is in order");
  CHECK_RC(put_sym(c, "W", 50.0, UINT64_MAX - 1, 0), TG_OK);
  CHECK_TICK(c, "W", 50.0, UINT64_MAX, 1, TG_PRICE_KEPT, TG_EVICT_NONE);
  CHECK_TICK(c, "W", 50.0, 0, 2, TG_PRICE_KEPT, TG_EVICT_NONE);
  CHECK_TICK(c, "W", 50.0, 1, 3, TG_PRICE_KEPT, TG_EVICT_NONE);
  CHECK_TICK(c, "W", 50.0, UINT64_MAX, 4, TG_PRICE_REPLAY, TG_EVICT_NONE);
  CHECK_TICK(c, "W", 50.0, 0, 4, TG_PRICE_REPLAY, TG_EVICT_NONE);
  CHECK_TICK(c, "W", 50.0, 2, 5, TG_PRICE_KEPT, TG_EVICT_NONE);
  CHECK_RC(tg_price_cache_get(c, "W", 1, 5, &cp, NULL, 0, &hit), TG_OK);
  CHECK_EQ(hit, 1);
  CHECK_EQ(cp.feed_seq, 2);
  CHECK_RC(put_sym(c, "W", 50.0, UINT64_MAX, 0), TG_OK);
  CHECK_TICK(c, "W", 50.0, 0, 1, TG_PRICE_KEPT, TG_EVICT_NONE);
  CTX("sequence: wrap with a gap");
  CHECK_RC(put_sym(c, "W", 50.0, UINT64_MAX, 0), TG_OK);
  CHECK_TICK(c, "W", 50.0, 1, 1, TG_PRICE_EVICTED, TG_EVICT_SEQUENCE_GAP);

  CTX("sequence: unknown key");
  CHECK_TICK(c, "NOPE", 10.0, 1, 1, TG_PRICE_NOT_CACHED, TG_EVICT_NONE);
  CHECK_TICK(c, "NOPE", 10.0, 2, 1, TG_PRICE_NOT_CACHED, TG_EVICT_NONE);
  CHECK_EQ(is_hit(c, "NOPE", 1), 0);

  CTX("sequence: stats");
  s = stats_of(c);
  CHECK_EQ(s.evicted_sequence_gap, 4);
  CHECK_EQ(s.evicted_price_move, 0);
  CHECK_EQ(s.replays, 9);
  CHECK_EQ(s.not_cached, 3);
  CHECK_EQ(s.kept, 8);
  CHECK_EQ(s.entries, 1); /* R */
  CHECK_EQ(r.n, 4);
  tg_price_cache_free(c);
}

/* ------------------------------------------------------------------------ */
/* 4. Age                                                                    */
/* ------------------------------------------------------------------------ */

static void test_age(void) {
  tg_price_cache_options o;
  tg_price_cache* c;
  tg_price_cache_stats s;
  tg_cached_price cp;
  recorder r;
  size_t evicted = 12345;
  int hit = -1;
  const uint64_t t0 = 1000 * SEC;

  tg_price_cache_options_init(&o);
  o.max_age_ns = 5 * SEC;
  c = NEW_CACHE(&o);
  recorder_attach(&r, c);

  CTX("age: exactly max_age is a hit, 1 ns later a miss");
  CHECK_RC(put_sym(c, "A", 10.0, 1, t0), TG_OK);
  memset(&cp, 0, sizeof cp);
  CHECK_RC(tg_price_cache_get(c, "A", 1, t0 + 5 * SEC, &cp, NULL, 0, &hit), TG_OK);
  CHECK_EQ(hit, 1);
  CHECK_EQ(cp.age_ns, 5 * SEC);
  CHECK_EQ(cp.cached_at_ns, t0);
  s = stats_of(c);
  CHECK_EQ(s.stale_misses, 0);
  hit = -1;
  CHECK_RC(tg_price_cache_get(c, "A", 1, t0 + 5 * SEC + 1, &cp, NULL, 0, &hit), TG_OK);
  CHECK_EQ(hit, 0);
  s = stats_of(c);
  CHECK_EQ(s.stale_misses, 1);
  CHECK_EQ(s.hits, 1);
  CHECK_EQ(s.entries, 1); /* a read does not evict */
  CHECK_EQ(s.evicted_age, 0);
  CHECK_EQ(r.n, 0);

  CTX("age: a tick at exactly max_age keeps, the next after it evicts");
  CHECK_TICK(c, "A", 10.0, 2, t0 + 5 * SEC, TG_PRICE_KEPT, TG_EVICT_NONE);
  CHECK_TICK(c, "A", 10.001, 3, t0 + 5 * SEC + 1, TG_PRICE_EVICTED, TG_EVICT_AGE);
  CHECK_EQ(r.n, 1);
  /* Evicted by a tick: the event carries the tick's price and number. */
  CHECK_EVENT(&r, 0, TG_EVICT_AGE, "A", 10.0, 10.001, 3, t0 + 5 * SEC + 1);
  s = stats_of(c);
  CHECK_EQ(s.evicted_age, 1);
  CHECK_EQ(s.entries, 0);
  CHECK_TICK(c, "A", 10.0, 4, t0 + 5 * SEC + 2, TG_PRICE_NOT_CACHED, TG_EVICT_NONE);

  CTX("age: a re-cache restarts the age");
  CHECK_RC(put_sym(c, "B", 20.0, 1, t0), TG_OK);
  CHECK_RC(put_sym(c, "B", 20.0, 2, t0 + 4 * SEC), TG_OK);
  CHECK_EQ(is_hit(c, "B", t0 + 8 * SEC), 1);
  CHECK_TICK(c, "B", 20.0, 3, t0 + 9 * SEC, TG_PRICE_KEPT, TG_EVICT_NONE);

  CTX("age: expire evicts the old entries and reports the count");
  r.n = 0;
  CHECK_RC(put_sym(c, "C", 30.0, 1, t0), TG_OK);
  CHECK_RC(put_sym(c, "D", 40.0, 1, t0 + 1), TG_OK);
  CHECK_RC(put_sym(c, "E", 50.0, 1, t0 + 3 * SEC), TG_OK);
  /* B was cached at t0 + 4 s. */
  CHECK_RC(tg_price_cache_expire(c, t0 + 5 * SEC, &evicted), TG_OK);
  CHECK_EQ(evicted, 0);
  evicted = 12345;
  CHECK_RC(tg_price_cache_expire(c, t0 + 5 * SEC + 1, &evicted), TG_OK);
  CHECK_EQ(evicted, 1);
  evicted = 12345;
  CHECK_RC(tg_price_cache_expire(c, t0 + 6 * SEC + 1, &evicted), TG_OK);
  CHECK_EQ(evicted, 1);
  CHECK_EQ(r.n, 2);
  CHECK_EVENT(&r, 0, TG_EVICT_AGE, "C", 30.0, 30.0, 1, t0 + 5 * SEC + 1);
  CHECK_EVENT(&r, 1, TG_EVICT_AGE, "D", 40.0, 40.0, 1, t0 + 6 * SEC + 1);
  CHECK_EQ(is_hit(c, "B", t0 + 6 * SEC + 1), 1);
  CHECK_EQ(is_hit(c, "E", t0 + 6 * SEC + 1), 1);
  evicted = 12345;
  CHECK_RC(tg_price_cache_expire(c, t0 + 100 * SEC, &evicted), TG_OK);
  CHECK_EQ(evicted, 2);
  evicted = 12345;
  CHECK_RC(tg_price_cache_expire(c, t0 + 100 * SEC, &evicted), TG_OK);
  CHECK_EQ(evicted, 0);
  CHECK_RC(tg_price_cache_expire(c, t0 + 100 * SEC, NULL), TG_OK);
  s = stats_of(c);
  CHECK_EQ(s.evicted_age, 5);
  CHECK_EQ(s.entries, 0);
  CHECK_EQ(r.n, 4);
  tg_price_cache_free(c);

  CTX("age: max_age_ns 0 is no limit");
  tg_price_cache_options_init(&o);
  o.max_age_ns = 0;
  c = NEW_CACHE(&o);
  CHECK_RC(put_sym(c, "A", 10.0, 1, 0), TG_OK);
  CHECK_EQ(is_hit(c, "A", UINT64_MAX), 1);
  CHECK_TICK(c, "A", 10.0, 2, UINT64_MAX, TG_PRICE_KEPT, TG_EVICT_NONE);
  CHECK_RC(tg_price_cache_expire(c, UINT64_MAX, &evicted), TG_OK);
  CHECK_EQ(evicted, 0);
  tg_price_cache_free(c);

  CTX("age: the default max_age is 60 s");
  c = NEW_CACHE(NULL);
  CHECK_RC(put_sym(c, "A", 10.0, 1, 0), TG_OK);
  CHECK_EQ(is_hit(c, "A", 60 * SEC), 1);
  CHECK_EQ(is_hit(c, "A", 60 * SEC + 1), 0);
  tg_price_cache_free(c);
}

/* ------------------------------------------------------------------------ */
/* 5. Capacity                                                               */
/* ------------------------------------------------------------------------ */

static void test_capacity(void) {
  tg_price_cache_options o;
  tg_price_cache* c;
  tg_price_cache_stats s;
  recorder r;
  char key[8];
  int i, removed = -1;

  tg_price_cache_options_init(&o);
  o.capacity = 7;
  c = NEW_CACHE(&o);
  recorder_attach(&r, c);
  s = stats_of(c);
  CHECK_EQ(s.slots, 8);

  CTX("capacity: 8 puts fill the group");
  for (i = 0; i < 8; ++i) {
    snprintf(key, sizeof key, "K%d", i);
    CHECK_RC(put_sym(c, key, 100.0 + i, 1, 10), TG_OK);
  }
  s = stats_of(c);
  CHECK_EQ(s.entries, 8);
  CHECK_EQ(r.n, 0);
  for (i = 0; i < 8; ++i) {
    snprintf(key, sizeof key, "K%d", i);
    if (i != 5) CHECK_EQ(is_hit(c, key, 20), 1);
  }

  CTX("capacity: the 9th put evicts the unread entry");
  CHECK_RC(put_sym(c, "K8", 108.0, 7, 30), TG_OK);
  CHECK_EQ(r.n, 1);
  /* Not a tick: new_price and feed_seq are the victim's cached price and
   * last number, not the put's (108, 7). */
  CHECK_EQ(r.e[0].ev.reason, TG_EVICT_CAPACITY);
  CHECK_DBL(r.e[0].ev.new_price, 105.0);
  CHECK_EQ(r.e[0].ev.feed_seq, 1);
  CHECK_EQ(r.e[0].ev.key_len, 2);
  CHECK(strcmp(r.e[0].key, "K5") == 0);
  CHECK_DBL(r.e[0].ev.cached_price, 105.0);
  CHECK_EQ(r.e[0].ev.now_ns, 30);
  CHECK_EQ(r.e[0].hit_in_callback, 0);
  s = stats_of(c);
  CHECK_EQ(s.evicted_capacity, 1);
  CHECK_EQ(s.entries, 8);
  for (i = 0; i <= 8; ++i) {
    snprintf(key, sizeof key, "K%d", i);
    CHECK_EQ(is_hit(c, key, 40), i != 5);
  }

  CTX("capacity: re-cache of a present key evicts nothing");
  CHECK_RC(put_sym(c, "K8", 109.0, 8, 50), TG_OK);
  CHECK_EQ(r.n, 1);

  CTX("capacity: remove");
  CHECK_RC(tg_price_cache_remove(c, "K8", 2, 60, &removed), TG_OK);
  CHECK_EQ(removed, 1);
  CHECK_EQ(r.n, 2);
  CHECK_EVENT(&r, 1, TG_EVICT_REMOVED, "K8", 109.0, 109.0, 8, 60);
  removed = -1;
  CHECK_RC(tg_price_cache_remove(c, "K8", 2, 61, &removed), TG_OK);
  CHECK_EQ(removed, 0);
  CHECK_RC(tg_price_cache_remove(c, "K7", 2, 62, NULL), TG_OK);
  CHECK_EQ(r.n, 3);
  CHECK_EQ(is_hit(c, "K8", 70), 0);
  CHECK_EQ(is_hit(c, "K7", 70), 0);
  s = stats_of(c);
  CHECK_EQ(s.evicted_removed, 2);
  CHECK_EQ(s.entries, 6);

  CTX("capacity: a freed slot is reused without eviction");
  CHECK_RC(put_sym(c, "K9", 1.0, 1, 80), TG_OK);
  CHECK_RC(put_sym(c, "K10", 1.0, 1, 80), TG_OK);
  CHECK_EQ(r.n, 3);
  s = stats_of(c);
  CHECK_EQ(s.entries, 8);
  CHECK_EQ(s.evicted_capacity, 1);

  CTX("capacity: removing the callback");
  CHECK_RC(tg_price_cache_set_event_callback(c, NULL, NULL), TG_OK);
  CHECK_RC(put_sym(c, "K11", 1.0, 1, 90), TG_OK);
  CHECK_EQ(r.n, 3);
  s = stats_of(c);
  CHECK_EQ(s.evicted_capacity, 2);
  CHECK_EQ(s.entries, 8);
  tg_price_cache_free(c);
}

/* ------------------------------------------------------------------------ */
/* 6. Volatility                                                             */
/* ------------------------------------------------------------------------ */

/* Caches "V" at 100.00 (seq 1), ticks 99.91/100.09 alternately (seq 2..13),
 * then 100.30 (seq 14); the threshold get reported before the last tick in
 * *thr. Returns the last tick's outcome. */
static int oscillate(tg_price_cache* c, double* thr) {
  tg_cached_price cp;
  int i, hit = -1, reason = -1;
  CHECK_RC(put_sym(c, "V", 100.0, 1, 0), TG_OK);
  for (i = 0; i < 12; ++i) {
    CHECK_TICK(c, "V", (i % 2 == 0) ? 99.91 : 100.09, (uint64_t)(2 + i), (uint64_t)(1 + i),
               TG_PRICE_KEPT, TG_EVICT_NONE);
  }
  memset(&cp, 0, sizeof cp);
  CHECK_RC(tg_price_cache_get(c, "V", 1, 20, &cp, NULL, 0, &hit), TG_OK);
  CHECK_EQ(hit, 1);
  CHECK_DBL(cp.price, 100.0);
  CHECK_EQ(cp.feed_seq, 13);
  *thr = cp.threshold;
  return TICK(c, "V", 100.30, 14, 21, &reason);
}

static void test_volatility(void) {
  tg_price_cache_options o;
  tg_price_cache* c;
  tg_cached_price cp;
  double thr = 0;
  int hit = -1;

  CTX("volatility: multiplier 2, alpha 0.5: the threshold widens");
  tg_price_cache_options_init(&o);
  o.vol_multiplier = 2.0;
  o.vol_alpha = 0.5;
  c = NEW_CACHE(&o);
  /* Before any tick the threshold is the fixed one. */
  CHECK_RC(put_sym(c, "V", 100.0, 1, 0), TG_OK);
  CHECK_RC(tg_price_cache_get(c, "V", 1, 0, &cp, NULL, 0, &hit), TG_OK);
  CHECK_DBL(cp.threshold, 10.0);
  /* |ln(100.09 / 99.91)| = 0.0018: 2 * 18 bps = 36 bps. */
  CHECK_EQ(oscillate(c, &thr), TG_PRICE_KEPT);
  CHECK(thr > 30.0);
  CHECK(thr > 35.0 && thr < 37.0);
  CTX("volatility: a re-cache resets the estimate");
  CHECK_RC(put_sym(c, "V", 100.0, 100, 30), TG_OK);
  CHECK_RC(tg_price_cache_get(c, "V", 1, 30, &cp, NULL, 0, &hit), TG_OK);
  CHECK_EQ(hit, 1);
  CHECK_DBL(cp.threshold, 10.0);
  CHECK_TICK(c, "V", 100.30, 101, 31, TG_PRICE_EVICTED, TG_EVICT_PRICE_MOVE);
  CTX("volatility: replays do not feed the estimate");
  CHECK_RC(put_sym(c, "V", 100.0, 100, 30), TG_OK);
  CHECK_TICK(c, "V", 100.09, 101, 31, TG_PRICE_KEPT, TG_EVICT_NONE);
  /* 2 * sqrt(0.5 * ln(1.0009)^2) * 1e4 = 12.72 bps. */
  CHECK_RC(tg_price_cache_get(c, "V", 1, 31, &cp, NULL, 0, &hit), TG_OK);
  CHECK_EQ(hit, 1);
  thr = cp.threshold;
  CHECK(thr > 12.7 && thr < 12.75);
  CHECK_TICK(c, "V", 99.91, 100, 31, TG_PRICE_REPLAY, TG_EVICT_NONE);
  CHECK_TICK(c, "V", 99.91, 101, 31, TG_PRICE_REPLAY, TG_EVICT_NONE);
  CHECK_RC(tg_price_cache_get(c, "V", 1, 31, &cp, NULL, 0, &hit), TG_OK);
  CHECK_EQ(hit, 1);
  CHECK_DBL(cp.threshold, thr);
  tg_price_cache_free(c);

  CTX("volatility: without vol_multiplier the same tick evicts");
  c = NEW_CACHE(NULL);
  CHECK_EQ(oscillate(c, &thr), TG_PRICE_EVICTED);
  CHECK_DBL(thr, 10.0);
  tg_price_cache_free(c);

  CTX("volatility: tick thresholds widen by that many bps of the cached price");
  tg_price_cache_options_init(&o);
  o.unit = TG_THRESHOLD_TICKS;
  o.threshold = 10.0; /* the oscillation is 9 ticks */
  o.tick_size = 0.01;
  o.vol_multiplier = 2.0;
  o.vol_alpha = 0.5;
  c = NEW_CACHE(&o);
  /* 36 bps of 100.00 is 0.36: 36 ticks of 0.01. */
  CHECK_EQ(oscillate(c, &thr), TG_PRICE_KEPT);
  CHECK(thr > 35.0 && thr < 37.0);
  tg_price_cache_free(c);
}

/* ------------------------------------------------------------------------ */
/* 7. Batch                                                                  */
/* ------------------------------------------------------------------------ */

#define BATCH_N 12

static void batch_setup(tg_price_cache* c) {
  const uint64_t id = 77;
  CHECK_RC(put_sym(c, "AAPL", 100.0, 10, 0), TG_OK);
  CHECK_RC(put_sym(c, "MSFT", 300.0, 20, 0), TG_OK);
  CHECK_RC(put_sym(c, "X", 50.0, 5, 0), TG_OK);
  CHECK_RC(
      tg_price_cache_put(c, &id, sizeof id, 7.0, 1, NULL, 0, nan_value(), nan_value(), 0, NULL),
      TG_OK);
}

static void test_batch(void) {
  tg_price_cache* single = NEW_CACHE(NULL);
  tg_price_cache* many = NEW_CACHE(NULL);
  const uint64_t id = 77;
  /* key, price, seq: keeps, a move, a gap, a replay, not cached, and ticks
   * after an eviction within the batch (applied in order). */
  const char* keys[BATCH_N] = {"AAPL", "MSFT", "AAPL", "X",    "MSFT", "NONE",
                               "AAPL", NULL,   "MSFT", "AAPL", NULL,   "X"};
  const double prices[BATCH_N] = {100.05, 300.0, 100.02, 50.0,  310.0, 1.0,
                                  100.03, 7.001, 300.0,  100.2, 7.0,   50.01};
  const uint64_t seqs[BATCH_N] = {11, 21, 12, 7, 22, 1, 12, 2, 23, 13, 3, 8};
  uint8_t packed[256];
  uint32_t offsets[BATCH_N + 1];
  tg_price_result want[BATCH_N], got[BATCH_N];
  tg_price_cache_stats s1, s2;
  size_t i, at = 0;

  batch_setup(single);
  batch_setup(many);
  CTX("batch: packed keys");
  for (i = 0; i < BATCH_N; ++i) {
    const void* k = keys[i] ? (const void*)keys[i] : (const void*)&id;
    const size_t kl = keys[i] ? strlen(keys[i]) : sizeof id;
    offsets[i] = (uint32_t)at;
    memcpy(packed + at, k, kl);
    at += kl;
    want[i].outcome = want[i].reason = -1;
    CHECK_RC(tg_price_cache_on_price(single, k, kl, prices[i], seqs[i], 100, &want[i]), TG_OK);
  }
  offsets[BATCH_N] = (uint32_t)at;
  /* The single calls saw every kind of outcome. */
  CHECK_EQ(want[0].outcome, TG_PRICE_KEPT);
  CHECK_EQ(want[3].reason, TG_EVICT_SEQUENCE_GAP);
  CHECK_EQ(want[4].reason, TG_EVICT_PRICE_MOVE);
  CHECK_EQ(want[5].outcome, TG_PRICE_NOT_CACHED);
  CHECK_EQ(want[6].outcome, TG_PRICE_REPLAY);
  CHECK_EQ(want[8].outcome, TG_PRICE_NOT_CACHED);
  CHECK_EQ(want[9].reason, TG_EVICT_PRICE_MOVE);
  CHECK_EQ(want[10].outcome, TG_PRICE_KEPT);
  memset(got, 0xee, sizeof got);
  CHECK_RC(tg_price_cache_on_price_many(many, packed, offsets, BATCH_N, prices, seqs, 100, got),
           TG_OK);
  for (i = 0; i < BATCH_N; ++i) {
    CTX("batch: tick %u", (unsigned)i);
    CHECK_EQ(got[i].outcome, want[i].outcome);
    CHECK_EQ(got[i].reason, want[i].reason);
  }
  CTX("batch: same state and stats as the single calls");
  s1 = stats_of(single);
  s2 = stats_of(many);
  CHECK_EQ(s2.kept, s1.kept);
  CHECK_EQ(s2.replays, s1.replays);
  CHECK_EQ(s2.not_cached, s1.not_cached);
  CHECK_EQ(s2.evicted_price_move, s1.evicted_price_move);
  CHECK_EQ(s2.evicted_sequence_gap, s1.evicted_sequence_gap);
  CHECK_EQ(s2.entries, s1.entries);
  CHECK_EQ(s2.entries, 1);
  {
    tg_cached_price a, b;
    int ha = -1, hb = -1;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    CHECK_RC(tg_price_cache_get(single, &id, sizeof id, 100, &a, NULL, 0, &ha), TG_OK);
    CHECK_RC(tg_price_cache_get(many, &id, sizeof id, 100, &b, NULL, 0, &hb), TG_OK);
    CHECK_EQ(ha, 1);
    CHECK_EQ(hb, 1);
    CHECK_EQ(a.feed_seq, 3);
    CHECK_EQ(b.feed_seq, 3);
    CHECK_DBL(b.price, 7.0);
  }

  CTX("batch: n = 0");
  CHECK_RC(tg_price_cache_on_price_many(many, packed, offsets, 0, prices, seqs, 100, got), TG_OK);

  CTX("batch: one bad price: TG_EINVAL, nothing applied");
  {
    const uint64_t id_seqs[3] = {4, 5, 6};
    double bad[3] = {7.0, 7.0, 7.0};
    uint8_t kb[24];
    uint32_t ko[4] = {0, 8, 16, 24};
    tg_price_result r3[3];
    int k;
    for (k = 0; k < 3; ++k) memcpy(kb + 8 * k, &id, 8);
    bad[1] = -1.0;
    CHECK_RC(tg_price_cache_on_price_many(many, kb, ko, 3, bad, id_seqs, 100, r3), TG_EINVAL);
    bad[1] = nan_value();
    CHECK_RC(tg_price_cache_on_price_many(many, kb, ko, 3, bad, id_seqs, 100, r3), TG_EINVAL);
    bad[1] = 0.0;
    CHECK_RC(tg_price_cache_on_price_many(many, kb, ko, 3, bad, id_seqs, 100, r3), TG_EINVAL);
    bad[1] = 7.0;
    CTX("batch: bad keys: TG_EINVAL, nothing applied");
    ko[1] = 8;
    ko[2] = 8; /* an empty key */
    CHECK_RC(tg_price_cache_on_price_many(many, kb, ko, 3, bad, id_seqs, 100, r3), TG_EINVAL);
    ko[1] = 16;
    ko[2] = 8; /* decreasing */
    CHECK_RC(tg_price_cache_on_price_many(many, kb, ko, 3, bad, id_seqs, 100, r3), TG_EINVAL);
    ko[0] = 0;
    ko[1] = 8;
    ko[2] = 24; /* 16 bytes: fine, but then ko[3] = 24 is empty */
    CHECK_RC(tg_price_cache_on_price_many(many, kb, ko, 3, bad, id_seqs, 100, r3), TG_EINVAL);
    ko[2] = 16;
    CTX("batch: NULL arrays");
    CHECK_RC(tg_price_cache_on_price_many(many, NULL, ko, 3, bad, id_seqs, 100, r3), TG_EINVAL);
    CHECK_RC(tg_price_cache_on_price_many(many, kb, NULL, 3, bad, id_seqs, 100, r3), TG_EINVAL);
    CHECK_RC(tg_price_cache_on_price_many(many, kb, ko, 3, NULL, id_seqs, 100, r3), TG_EINVAL);
    CHECK_RC(tg_price_cache_on_price_many(many, kb, ko, 3, bad, NULL, 100, r3), TG_EINVAL);
    CHECK_RC(tg_price_cache_on_price_many(many, kb, ko, 3, bad, id_seqs, 100, NULL), TG_EINVAL);
    CHECK_RC(tg_price_cache_on_price_many(NULL, kb, ko, 3, bad, id_seqs, 100, r3), TG_EINVAL);
    CTX("batch: after the failed batches the next number is still in order");
    {
      tg_price_result r1;
      r1.outcome = r1.reason = -1;
      CHECK_RC(tg_price_cache_on_price(many, &id, sizeof id, 7.0, 4, 101, &r1), TG_OK);
      CHECK_EQ(r1.outcome, TG_PRICE_KEPT);
      CHECK_EQ(r1.reason, TG_EVICT_NONE);
    }
    CTX("batch: the same key three times, in order");
    CHECK_RC(tg_price_cache_on_price_many(many, kb, ko, 3, bad, id_seqs, 100, r3), TG_OK);
    CHECK_EQ(r3[0].outcome, TG_PRICE_REPLAY);
    CHECK_EQ(r3[1].outcome, TG_PRICE_KEPT);
    CHECK_EQ(r3[2].outcome, TG_PRICE_KEPT);
  }
  tg_price_cache_free(single);
  tg_price_cache_free(many);
}

/* ------------------------------------------------------------------------ */
/* 8. Misuse                                                                 */
/* ------------------------------------------------------------------------ */

/* tg_price_cache_new(o) fails with `want`; *out and the error code. */
static void new_fails_at(const char* file, int line, const tg_price_cache_options* o, int want) {
  tg_price_cache* sentinel = (tg_price_cache*)(uintptr_t)0x1234;
  tg_price_cache* c = sentinel;
  tg_error err;
  memset(&err, 0, sizeof err);
  check_status_at(file, line, "tg_price_cache_new", tg_price_cache_new(o, &c, &err), want);
  ++g_checks;
  if (c != sentinel) {
    report_failure(file, line, "*out changed by a failed tg_price_cache_new");
    if (c != NULL) tg_price_cache_free(c);
  }
  ++g_checks;
  if (err.code != want || err.message[0] == '\0') {
    report_failure(file, line, "tg_error not filled by a failed tg_price_cache_new");
  }
}
#define NEW_FAILS(o, want) new_fails_at(__FILE__, __LINE__, (o), (want))

static void test_misuse(void) {
  const double nan = nan_value();
  volatile double zero = 0.0;
  const double inf = 1.0 / zero;
  const double bad_prices[5] = {nan, inf, -inf, 0.0, -1.0};
  tg_price_cache* c = NEW_CACHE(NULL);
  tg_price_cache* other;
  tg_breaker* brk;
  tg_breaker_options bo;
  tg_price_cache_options o;
  tg_price_cache_stats s;
  tg_cached_price cp;
  tg_price_result pr;
  tg_error err;
  char payload[1100];
  char buf[8];
  const char key33[34] = "0123456789abcdef0123456789abcdefX";
  uint8_t kb[4] = {'A', 'B', 'C', 'D'};
  uint32_t ko[2] = {0, 4};
  double pp[1] = {1.0};
  uint64_t ps[1] = {1};
  size_t evicted = 0;
  int hit = 0, removed = 0, i;

  memset(payload, 'p', sizeof payload);
  CHECK_RC(put_sym(c, "K", 10.0, 1, 0), TG_OK);

  CTX("misuse: NULL handle");
  CHECK_RC(tg_price_cache_put(NULL, "K", 1, 10.0, 1, NULL, 0, nan, nan, 0, NULL), TG_EINVAL);
  CHECK_RC(tg_price_cache_get(NULL, "K", 1, 0, &cp, NULL, 0, &hit), TG_EINVAL);
  CHECK_RC(tg_price_cache_on_price(NULL, "K", 1, 10.0, 2, 0, &pr), TG_EINVAL);
  CHECK_RC(tg_price_cache_on_price_many(NULL, kb, ko, 1, pp, ps, 0, &pr), TG_EINVAL);
  CHECK_RC(tg_price_cache_remove(NULL, "K", 1, 0, &removed), TG_EINVAL);
  CHECK_RC(tg_price_cache_expire(NULL, 0, &evicted), TG_EINVAL);
  CHECK_RC(tg_price_cache_set_event_callback(NULL, NULL, NULL), TG_EINVAL);
  CHECK_RC(tg_price_cache_stats_get(NULL, &s), TG_EINVAL);
  memset(&err, 0, sizeof err);
  CHECK_RC(tg_price_cache_put(NULL, "K", 1, 10.0, 1, NULL, 0, nan, nan, 0, &err), TG_EINVAL);
  CHECK_EQ(err.code, TG_EINVAL);
  CHECK(err.message[0] != '\0');

  CTX("misuse: a handle of another type");
  tg_breaker_options_init(&bo);
  brk = NEW_BREAKER(&bo);
  other = (tg_price_cache*)(void*)brk;
  CHECK_RC(tg_price_cache_put(other, "K", 1, 10.0, 1, NULL, 0, nan, nan, 0, NULL), TG_EINVAL);
  CHECK_RC(tg_price_cache_get(other, "K", 1, 0, &cp, NULL, 0, &hit), TG_EINVAL);
  CHECK_RC(tg_price_cache_on_price(other, "K", 1, 10.0, 2, 0, &pr), TG_EINVAL);
  CHECK_RC(tg_price_cache_on_price_many(other, kb, ko, 1, pp, ps, 0, &pr), TG_EINVAL);
  CHECK_RC(tg_price_cache_remove(other, "K", 1, 0, &removed), TG_EINVAL);
  CHECK_RC(tg_price_cache_expire(other, 0, &evicted), TG_EINVAL);
  CHECK_RC(tg_price_cache_set_event_callback(other, NULL, NULL), TG_EINVAL);
  CHECK_RC(tg_price_cache_stats_get(other, &s), TG_EINVAL);
  tg_breaker_free(brk);

  CTX("misuse: NULL out / hit");
  CHECK_RC(tg_price_cache_get(c, "K", 1, 0, &cp, NULL, 0, NULL), TG_EINVAL);
  CHECK_RC(tg_price_cache_on_price(c, "K", 1, 10.0, 2, 0, NULL), TG_EINVAL);
  CHECK_RC(tg_price_cache_stats_get(c, NULL), TG_EINVAL);

  CTX("misuse: keys NULL, 0 and 33 bytes");
  CHECK_RC(tg_price_cache_put(c, NULL, 1, 10.0, 1, NULL, 0, nan, nan, 0, NULL), TG_EINVAL);
  CHECK_RC(tg_price_cache_put(c, "K", 0, 10.0, 1, NULL, 0, nan, nan, 0, NULL), TG_EINVAL);
  CHECK_RC(tg_price_cache_put(c, key33, 33, 10.0, 1, NULL, 0, nan, nan, 0, NULL), TG_EINVAL);
  CHECK_RC(tg_price_cache_put(c, key33, 32, 10.0, 1, NULL, 0, nan, nan, 0, NULL), TG_OK);
  CHECK_RC(tg_price_cache_get(c, NULL, 1, 0, &cp, NULL, 0, &hit), TG_EINVAL);
  CHECK_RC(tg_price_cache_get(c, "K", 0, 0, &cp, NULL, 0, &hit), TG_EINVAL);
  CHECK_RC(tg_price_cache_get(c, key33, 33, 0, &cp, NULL, 0, &hit), TG_EINVAL);
  hit = -1;
  CHECK_RC(tg_price_cache_get(c, key33, 32, 0, &cp, NULL, 0, &hit), TG_OK);
  CHECK_EQ(hit, 1);
  CHECK_RC(tg_price_cache_on_price(c, NULL, 1, 10.0, 2, 0, &pr), TG_EINVAL);
  CHECK_RC(tg_price_cache_on_price(c, "K", 0, 10.0, 2, 0, &pr), TG_EINVAL);
  CHECK_RC(tg_price_cache_on_price(c, key33, 33, 10.0, 2, 0, &pr), TG_EINVAL);
  CHECK_RC(tg_price_cache_remove(c, NULL, 1, 0, &removed), TG_EINVAL);
  CHECK_RC(tg_price_cache_remove(c, "K", 0, 0, &removed), TG_EINVAL);
  CHECK_RC(tg_price_cache_remove(c, key33, 33, 0, &removed), TG_EINVAL);

  CTX("misuse: bad prices");
  for (i = 0; i < 5; ++i) {
    CTX("misuse: bad price %g", bad_prices[i]);
    memset(&err, 0, sizeof err);
    CHECK_RC(tg_price_cache_put(c, "K", 1, bad_prices[i], 5, NULL, 0, nan, nan, 0, &err),
             TG_EINVAL);
    CHECK_EQ(err.code, TG_EINVAL);
    CHECK(err.message[0] != '\0');
    CHECK_RC(tg_price_cache_on_price(c, "K", 1, bad_prices[i], 2, 0, &pr), TG_EINVAL);
  }
  CTX("misuse: nothing changed by the bad prices");
  memset(&cp, 0, sizeof cp);
  CHECK_RC(tg_price_cache_get(c, "K", 1, 0, &cp, NULL, 0, &hit), TG_OK);
  CHECK_EQ(hit, 1);
  CHECK_DBL(cp.price, 10.0);
  CHECK_EQ(cp.feed_seq, 1);
  CHECK_TICK(c, "K", 10.0, 2, 0, TG_PRICE_KEPT, TG_EVICT_NONE);

  CTX("misuse: payloads");
  memset(&err, 0, sizeof err);
  CHECK_RC(tg_price_cache_put(c, "K", 1, 10.0, 5, payload, 65, nan, nan, 0, &err), TG_ERANGE);
  CHECK_EQ(err.code, TG_ERANGE);
  CHECK_RC(tg_price_cache_put(c, "K", 1, 10.0, 5, payload, 64, nan, nan, 0, NULL), TG_OK);
  CHECK_RC(tg_price_cache_put(c, "K", 1, 10.0, 6, NULL, 1, nan, nan, 0, NULL), TG_EINVAL);
  CHECK_RC(tg_price_cache_put(c, "K", 1, 10.0, 6, NULL, 0, nan, nan, 0, NULL), TG_OK);
  CHECK_RC(tg_price_cache_get(c, "K", 1, 0, &cp, NULL, 1, &hit), TG_EINVAL);
  CHECK_RC(tg_price_cache_get(c, "K", 1, 0, &cp, buf, 0, &hit), TG_OK);

  CTX("misuse: thresholds and tick sizes in put");
  CHECK_RC(tg_price_cache_put(c, "K", 1, 10.0, 7, NULL, 0, -1.0, nan, 0, NULL), TG_ERANGE);
  CHECK_RC(tg_price_cache_put(c, "K", 1, 10.0, 7, NULL, 0, inf, nan, 0, NULL), TG_ERANGE);
  CHECK_RC(tg_price_cache_put(c, "K", 1, 10.0, 7, NULL, 0, nan, 0.0, 0, NULL), TG_ERANGE);
  CHECK_RC(tg_price_cache_put(c, "K", 1, 10.0, 7, NULL, 0, nan, -0.01, 0, NULL), TG_ERANGE);
  CHECK_RC(tg_price_cache_put(c, "K", 1, 10.0, 7, NULL, 0, nan, inf, 0, NULL), TG_ERANGE);
  /* The failed puts changed nothing: seq is still 6. */
  CHECK_TICK(c, "K", 10.0, 7, 0, TG_PRICE_KEPT, TG_EVICT_NONE);
  tg_price_cache_free(c);

  CTX("misuse: options");
  tg_price_cache_options_init(&o);
  CHECK_EQ(o.struct_size, sizeof o);
  CHECK_EQ(o.unit, TG_THRESHOLD_BPS);
  CHECK_EQ(o.capacity, 4096);
  CHECK_EQ(o.max_payload, 64);
  CHECK_EQ(o.reserved, 0);
  CHECK_DBL(o.threshold, 10.0);
  CHECK_DBL(o.tick_size, 0.01);
  CHECK_EQ(o.max_age_ns, 60 * SEC);
  CHECK_DBL(o.vol_multiplier, 0.0);
  CHECK_DBL(o.vol_alpha, 0.05);
  tg_price_cache_options_init(NULL);
  o.capacity = 0;
  NEW_FAILS(&o, TG_ERANGE);
  tg_price_cache_options_init(&o);
  o.max_payload = 1025;
  NEW_FAILS(&o, TG_ERANGE);
  o.max_payload = 1024;
  c = NEW_CACHE(&o);
  CHECK_RC(tg_price_cache_put(c, "K", 1, 1.0, 1, payload, 1024, nan, nan, 0, NULL), TG_OK);
  CHECK_RC(tg_price_cache_put(c, "K", 1, 1.0, 1, payload, 1025, nan, nan, 0, NULL), TG_ERANGE);
  tg_price_cache_free(c);
  tg_price_cache_options_init(&o);
  o.max_payload = 0;
  c = NEW_CACHE(&o);
  CHECK_RC(tg_price_cache_put(c, "K", 1, 1.0, 1, payload, 1, nan, nan, 0, NULL), TG_ERANGE);
  CHECK_RC(tg_price_cache_put(c, "K", 1, 1.0, 1, NULL, 0, nan, nan, 0, NULL), TG_OK);
  tg_price_cache_free(c);
  tg_price_cache_options_init(&o);
  o.unit = 2;
  NEW_FAILS(&o, TG_EINVAL);
  tg_price_cache_options_init(&o);
  o.vol_alpha = 0.0;
  NEW_FAILS(&o, TG_ERANGE);
  o.vol_alpha = 1.5;
  NEW_FAILS(&o, TG_ERANGE);
  o.vol_alpha = nan;
  NEW_FAILS(&o, TG_ERANGE);
  tg_price_cache_options_init(&o);
  o.threshold = -1.0;
  NEW_FAILS(&o, TG_ERANGE);
  tg_price_cache_options_init(&o);
  o.tick_size = 0.0;
  NEW_FAILS(&o, TG_ERANGE);
  tg_price_cache_options_init(&o);
  o.reserved = 1;
  NEW_FAILS(&o, TG_EINVAL);
  tg_price_cache_options_init(&o);
  o.struct_size = 4;
  NEW_FAILS(&o, TG_EVERSION);
  o.struct_size = 0;
  NEW_FAILS(&o, TG_EVERSION);
  {
    struct {
      tg_price_cache_options o;
      uint64_t tail;
    } future;
    memset(&future, 0, sizeof future);
    tg_price_cache_options_init(&future.o);
    future.o.struct_size = (uint32_t)sizeof future;
    future.tail = 1;
    NEW_FAILS(&future.o, TG_EVERSION);
    CTX("misuse: options from the future with a zero tail");
    future.tail = 0;
    c = NEW_CACHE(&future.o);
    tg_price_cache_free(c);
  }
  CTX("misuse: NULL options are the defaults; NULL out");
  {
    tg_price_cache* d = NULL;
    CHECK_RC(tg_price_cache_new(NULL, &d, NULL), TG_OK);
    CHECK(d != NULL);
    s = stats_of(d);
    CHECK_EQ(s.entries, 0);
    tg_price_cache_free(d);
    CHECK_RC(tg_price_cache_new(NULL, NULL, NULL), TG_EINVAL);
  }
  CTX("misuse: free(NULL)");
  tg_price_cache_free(NULL);
}

/* ------------------------------------------------------------------------ */
/* 9. Threads                                                                */
/* ------------------------------------------------------------------------ */

#define WRITES 200000u
#define PAYLOAD 64

typedef struct shared {
  tg_price_cache* cache;
  pthread_mutex_t mu;
  int done; /* under mu */
} shared;

typedef struct reader_result {
  shared* sh;
  uint64_t reads, hits, torn, bad_len, bad_rc;
} reader_result;

static int is_done(shared* sh) {
  int d;
  pthread_mutex_lock(&sh->mu);
  d = sh->done;
  pthread_mutex_unlock(&sh->mu);
  return d;
}

/* Re-puts "T" at price v, seq v, payload bytes v & 0xff. */
static void* writer_main(void* arg) {
  shared* sh = (shared*)arg;
  unsigned char payload[PAYLOAD];
  uint64_t v;
  for (v = 1; v <= WRITES; ++v) {
    memset(payload, (int)(v & 0xff), sizeof payload);
    if (tg_price_cache_put(sh->cache, "T", 1, (double)v, v, payload, sizeof payload, nan_value(),
                           nan_value(), v, NULL) != TG_OK) {
      break;
    }
  }
  pthread_mutex_lock(&sh->mu);
  sh->done = 1;
  pthread_mutex_unlock(&sh->mu);
  return NULL;
}

/* Churns other keys through the same group (price = seq + 0.5, payload
 * 0xee): a reader of "T" must never see one of them. Six keys: with "T"
 * they never fill the group's 8 slots, so "T" is never evicted for capacity
 * and every read after its first put must hit. */
static void* churn_main(void* arg) {
  shared* sh = (shared*)arg;
  unsigned char payload[PAYLOAD];
  char key[8];
  uint64_t i = 0;
  memset(payload, 0xee, sizeof payload);
  while (!is_done(sh)) {
    int k;
    for (k = 0; k < 256; ++k, ++i) {
      tg_price_result r;
      snprintf(key, sizeof key, "C%u", (unsigned)(i % 6));
      tg_price_cache_put(sh->cache, key, strlen(key), (double)i + 0.5, i, payload,
                         (size_t)(i % PAYLOAD), nan_value(), nan_value(), i, NULL);
      tg_price_cache_on_price(sh->cache, key, strlen(key), (double)i + 0.5, i + 1, i, &r);
      if (i % 7 == 0) tg_price_cache_remove(sh->cache, key, strlen(key), i, NULL);
    }
  }
  return NULL;
}

static void* reader_main(void* arg) {
  reader_result* rr = (reader_result*)arg;
  unsigned char buf[PAYLOAD + 8];
  for (;;) {
    int k;
    for (k = 0; k < 1024; ++k) {
      tg_cached_price cp;
      int hit = -1, rc;
      memset(buf, 0x5a, sizeof buf);
      rc = tg_price_cache_get(rr->sh->cache, "T", 1, 0, &cp, buf, sizeof buf, &hit);
      ++rr->reads;
      if (rc != TG_OK || (hit != 0 && hit != 1)) {
        ++rr->bad_rc;
        continue;
      }
      if (!hit) continue;
      ++rr->hits;
      if (cp.payload_len != PAYLOAD || buf[PAYLOAD] != 0x5a) {
        ++rr->bad_len;
        continue;
      }
      {
        const uint64_t v = cp.feed_seq;
        int j, ok = cp.price == (double)v && cp.cached_at_ns == v;
        for (j = 0; j < PAYLOAD; ++j) ok = ok && buf[j] == (unsigned char)(v & 0xff);
        if (!ok) ++rr->torn;
      }
    }
    if (is_done(rr->sh)) break;
  }
  return NULL;
}

static void test_threads(void) {
  tg_price_cache_options o;
  shared sh;
  reader_result rr[2];
  pthread_t w, ch, rd[2];
  int i;
  unsigned char payload[PAYLOAD];

  CTX("threads: one writer, a churner, two readers");
  tg_price_cache_options_init(&o);
  o.capacity = 7; /* one group of 8: the churn shares "T"'s group */
  o.max_age_ns = 0;
  memset(&sh, 0, sizeof sh);
  sh.cache = NEW_CACHE(&o);
  REQUIRE(pthread_mutex_init(&sh.mu, NULL) == 0);
  memset(payload, 0, sizeof payload);
  CHECK_RC(tg_price_cache_put(sh.cache, "T", 1, 256.0, 256, payload, sizeof payload, nan_value(),
                              nan_value(), 256, NULL),
           TG_OK);
  memset(rr, 0, sizeof rr);
  for (i = 0; i < 2; ++i) {
    rr[i].sh = &sh;
    REQUIRE(pthread_create(&rd[i], NULL, reader_main, &rr[i]) == 0);
  }
  REQUIRE(pthread_create(&ch, NULL, churn_main, &sh) == 0);
  REQUIRE(pthread_create(&w, NULL, writer_main, &sh) == 0);
  REQUIRE(pthread_join(w, NULL) == 0);
  REQUIRE(pthread_join(ch, NULL) == 0);
  for (i = 0; i < 2; ++i) {
    REQUIRE(pthread_join(rd[i], NULL) == 0);
    CTX("threads: reader %d: %" PRIu64 " reads, %" PRIu64 " hits", i, rr[i].reads, rr[i].hits);
    CHECK(rr[i].reads > 0);
    CHECK(rr[i].hits > 0);
    CHECK_EQ(rr[i].bad_rc, 0);
    CHECK_EQ(rr[i].bad_len, 0);
    CHECK_EQ(rr[i].torn, 0);
  }
  CTX("threads: the last write is visible");
  {
    tg_cached_price cp;
    tg_price_cache_stats s;
    int hit = -1;
    CHECK_RC(tg_price_cache_get(sh.cache, "T", 1, 0, &cp, NULL, 0, &hit), TG_OK);
    CHECK_EQ(hit, 1);
    CHECK_EQ(cp.feed_seq, WRITES);
    CHECK_DBL(cp.price, (double)WRITES);
    s = stats_of(sh.cache);
    CHECK(s.puts >= WRITES + 1);
    CHECK(s.entries <= 8);
    CHECK_EQ(s.evicted_capacity, 0);
  }
  pthread_mutex_destroy(&sh.mu);
  tg_price_cache_free(sh.cache);
}

int main(void) {
  test_basics();
  test_thresholds();
  test_sequence();
  test_age();
  test_capacity();
  test_volatility();
  test_batch();
  test_misuse();
  test_threads();
  return check_summary();
}
