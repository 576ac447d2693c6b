/* C ABI tests of the circuit breaker and bulkhead: every transition, with an
 * injected clock, and the event callback seeing each change in order. C99;
 * the only tollgate header used is tollgate.h. */
#include <tollgate/tollgate.h>

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK_PROGRAM "capi_breaker"
#include "check.h"

/* ------------------------------------------------------------------------ */
/* Helpers                                                                   */
/* ------------------------------------------------------------------------ */

/* This program's own deterministic sequence (xorshift64*, check.h). */
static uint64_t g_rng = 0x243f6a8885a308d3ull;
static uint64_t rnd(void) { return rng_next(&g_rng); }
static uint64_t rnd_in(uint64_t lo, uint64_t hi) { return rng_range(&g_rng, lo, hi); }

#define MAX_EVENTS 512

/* A breaker, the events it reported and the decisions the test saw. */
typedef struct brk {
  tg_breaker* h;
  int n_events;
  tg_breaker_event ev[MAX_EVENTS];
  int state_not_visible; /* callbacks that did not see their to_state */
  uint64_t admitted, rejected, bulkhead_rejected;
} brk;

static void on_event(void* user, const tg_breaker_event* ev) {
  brk* b = (brk*)user;
  int s = -1;
  if (b->n_events < MAX_EVENTS) b->ev[b->n_events] = *ev;
  ++b->n_events;
  /* "after the change is visible"; the callback may call tg_breaker_*. */
  if (tg_breaker_state(b->h, &s) != TG_OK || s != ev->to_state) ++b->state_not_visible;
}

static void brk_open(brk* b, const tg_breaker_options* o) {
  memset(b, 0, sizeof *b);
  b->h = NEW_BREAKER(o);
  CHECK_RC(tg_breaker_set_event_callback(b->h, on_event, b), TG_OK);
}

/* The counters equal what the test saw; no callback missed its state. */
static void brk_close(brk* b) {
  tg_breaker_stats s;
  CHECK_RC(tg_breaker_stats_get(b->h, 0, &s), TG_OK);
  CHECK_EQ(s.admitted, b->admitted);
  CHECK_EQ(s.rejected, b->rejected);
  CHECK_EQ(s.bulkhead_rejected, b->bulkhead_rejected);
  CHECK_EQ(s.transitions, (uint64_t)b->n_events);
  CHECK_EQ(b->state_not_visible, 0);
  tg_breaker_free(b->h);
  b->h = NULL;
}

static void check_permit_shape(const tg_breaker_permit* p) {
  CHECK(p->allowed == 0 || p->allowed == 1);
  CHECK_EQ(p->reserved, 0);
  CHECK(p->state >= TG_BREAKER_CLOSED && p->state <= TG_BREAKER_METRICS_ONLY);
  if (p->allowed) {
    CHECK_EQ(p->reason, TG_BREAKER_REASON_NONE);
    CHECK_EQ(p->retry_after_ns, 0);
  } else {
    CHECK(p->reason >= TG_BREAKER_REASON_OPEN && p->reason <= TG_BREAKER_REASON_BULKHEAD_FULL);
  }
}

static void tally(brk* b, const tg_breaker_permit* p) {
  check_permit_shape(p);
  if (p->allowed) {
    ++b->admitted;
  } else {
    ++b->rejected;
    if (p->reason == TG_BREAKER_REASON_BULKHEAD_FULL) ++b->bulkhead_rejected;
  }
}

static tg_breaker_permit acquire(brk* b, uint64_t now) {
  tg_breaker_permit p;
  memset(&p, 0xab, sizeof p);
  CHECK_RC(tg_breaker_acquire(b->h, now, &p), TG_OK);
  tally(b, &p);
  return p;
}

static void record(brk* b, const tg_breaker_permit* p, int outcome, uint64_t latency,
                   uint64_t now) {
  CHECK_RC(tg_breaker_record(b->h, p, outcome, latency, now), TG_OK);
}

/* One whole call that must be admitted. */
static void call(brk* b, uint64_t now, int outcome, uint64_t latency) {
  const tg_breaker_permit p = acquire(b, now);
  REQUIRE(p.allowed == 1);
  record(b, &p, outcome, latency, now);
}

static int state(brk* b) {
  int s = -1;
  CHECK_RC(tg_breaker_state(b->h, &s), TG_OK);
  return s;
}

static tg_breaker_stats stats(brk* b, uint64_t now) {
  tg_breaker_stats s;
  memset(&s, 0xab, sizeof s);
  CHECK_RC(tg_breaker_stats_get(b->h, now, &s), TG_OK);
  return s;
}

/* The (from, to) pairs of the events since index `from_index`. */
static void check_events(brk* b, int from_index, const int* pairs, int n) {
  int i;
  CHECK_EQ(b->n_events - from_index, n);
  for (i = 0; i < n && from_index + i < b->n_events && from_index + i < MAX_EVENTS; ++i) {
    CHECK_EQ(b->ev[from_index + i].from_state, pairs[2 * i]);
    CHECK_EQ(b->ev[from_index + i].to_state, pairs[2 * i + 1]);
  }
}

static const tg_breaker_event* last_event(brk* b) {
  REQUIRE(b->n_events > 0 && b->n_events <= MAX_EVENTS);
  return &b->ev[b->n_events - 1];
}

/* Small count window: 10 calls, 5 minimum, 50% failures, slow >= 1000 ns at
 * 100%, open 1000 ns, 2 probes. */
static tg_breaker_options small(void) {
  tg_breaker_options o;
  tg_breaker_options_init(&o);
  o.window_size = 10;
  o.minimum_calls = 5;
  o.failure_rate_threshold = 50;
  o.slow_rate_threshold = 100;
  o.slow_call_ns = 1000;
  o.open_ns = 1000;
  o.max_open_ns = 1000000;
  o.half_open_probes = 2;
  return o;
}

#define S TG_OUTCOME_SUCCESS
#define F TG_OUTCOME_FAILURE
#define I TG_OUTCOME_IGNORED
#define CL TG_BREAKER_CLOSED
#define OP TG_BREAKER_OPEN
#define HO TG_BREAKER_HALF_OPEN
#define FO TG_BREAKER_FORCED_OPEN
#define FC TG_BREAKER_FORCED_CLOSED
#define DI TG_BREAKER_DISABLED
#define MO TG_BREAKER_METRICS_ONLY

/* ------------------------------------------------------------------------ */
/* Tests                                                                     */
/* ------------------------------------------------------------------------ */

static void test_defaults(void) {
  tg_breaker_options o;
  tg_breaker* h = NULL;
  tg_error err;
  int s = -1;
  tg_breaker_stats st;
  CTX("defaults");
  memset(&o, 0xff, sizeof o);
  tg_breaker_options_init(&o);
  CHECK_EQ(o.struct_size, sizeof(tg_breaker_options));
  CHECK_EQ(o.window_type, TG_WINDOW_COUNT);
  CHECK_EQ(o.window_size, 100);
  CHECK_EQ(o.minimum_calls, 20);
  CHECK_EQ(o.bucket_ns, 1000000000);
  CHECK_DBL(o.failure_rate_threshold, 50);
  CHECK_DBL(o.slow_rate_threshold, 100);
  CHECK_EQ(o.slow_call_ns, 1000000000);
  CHECK_EQ(o.open_ns, 1000000000);
  CHECK_DBL(o.backoff_multiplier, 1);
  CHECK_EQ(o.max_open_ns, 60000000000ull);
  CHECK_EQ(o.half_open_probes, 5);
  CHECK_EQ(o.max_in_flight, 0);
  CHECK_EQ(o.max_half_open_ns, 0);
  memset(&err, 0x7f, sizeof err);
  CHECK_RC(tg_breaker_new(NULL, &h, &err), TG_OK);
  REQUIRE(h != NULL);
  CHECK_EQ(err.code, TG_OK);
  CHECK_EQ(err.message[0], 0);
  CHECK_RC(tg_breaker_state(h, &s), TG_OK);
  CHECK_EQ(s, TG_BREAKER_CLOSED);
  CHECK_RC(tg_breaker_stats_get(h, 0, &st), TG_OK);
  CHECK_EQ(st.admitted, 0);
  CHECK_EQ(st.rejected, 0);
  CHECK_EQ(st.in_flight, 0);
  CHECK_EQ(st.state, TG_BREAKER_CLOSED);
  CHECK_DBL(st.failure_rate, -1);
  CHECK_DBL(st.slow_rate, -1);
  CHECK_EQ(st.window_calls, 0);
  /* Defaults: 19 failures stay closed, the 20th opens (50% of >= 20). */
  {
    int i;
    tg_breaker_permit p;
    for (i = 0; i < 19; ++i) {
      CHECK_RC(tg_breaker_acquire(h, 10, &p), TG_OK);
      CHECK_EQ(p.allowed, 1);
      CHECK_RC(tg_breaker_record(h, &p, F, 10, 10), TG_OK);
    }
    CHECK_RC(tg_breaker_state(h, &s), TG_OK);
    CHECK_EQ(s, TG_BREAKER_CLOSED);
    CHECK_RC(tg_breaker_acquire(h, 10, &p), TG_OK);
    CHECK_RC(tg_breaker_record(h, &p, F, 10, 10), TG_OK);
    CHECK_RC(tg_breaker_state(h, &s), TG_OK);
    CHECK_EQ(s, TG_BREAKER_OPEN);
    CHECK_RC(tg_breaker_acquire(h, 10, &p), TG_OK);
    CHECK_EQ(p.allowed, 0);
    CHECK_EQ(p.retry_after_ns, 1000000000); /* open 1 s */
  }
  tg_breaker_free(h);
}

static void test_minimum_calls(void) {
  tg_breaker_options o = small();
  brk b;
  int i;
  tg_breaker_stats st;
  CTX("minimum_calls");
  brk_open(&b, &o);
  for (i = 0; i < 4; ++i) call(&b, 100, F, 10);
  CHECK_EQ(state(&b), CL);
  st = stats(&b, 100);
  CHECK_EQ(st.window_calls, 4);
  CHECK_DBL(st.failure_rate, -1); /* below minimum_calls */
  CHECK_DBL(st.slow_rate, -1);
  CHECK_EQ(st.failures, 4);
  CHECK_EQ(b.n_events, 0);
  call(&b, 100, F, 10);
  CHECK_EQ(state(&b), OP);
  {
    static const int want[] = {CL, OP};
    check_events(&b, 0, want, 1);
  }
  {
    const tg_breaker_event* e = last_event(&b);
    CHECK_EQ(e->now_ns, 100);
    CHECK_DBL(e->failure_rate, 100);
    CHECK_DBL(e->slow_rate, 0);
    CHECK_EQ(e->open_ns, 1000);
  }
  st = stats(&b, 100);
  CHECK_EQ(st.transitions, 1);
  CHECK_EQ(st.failures, 5);
  CHECK_EQ(st.state, OP);
  brk_close(&b);
}

static void test_threshold_exact(void) {
  tg_breaker_options o = small();
  brk b;
  int i;
  o.minimum_calls = 10;
  /* 5 successes, then failures: the 5th failure (50% of 10) opens. */
  CTX("threshold: 5 of 10");
  brk_open(&b, &o);
  for (i = 0; i < 5; ++i) call(&b, 0, S, 0);
  for (i = 0; i < 4; ++i) call(&b, 0, F, 0);
  CHECK_EQ(state(&b), CL);
  call(&b, 0, F, 0);
  CHECK_EQ(state(&b), OP);
  CHECK_EQ(b.n_events, 1);
  CHECK_DBL(last_event(&b)->failure_rate, 50);
  brk_close(&b);

  /* One below: 4 of 10 stays closed; the window then slides. */
  CTX("threshold: 4 of 10, then sliding");
  brk_open(&b, &o);
  for (i = 0; i < 6; ++i) call(&b, 0, S, 0);
  for (i = 0; i < 4; ++i) call(&b, 0, F, 0);
  CHECK_EQ(state(&b), CL);
  CHECK_DBL(stats(&b, 0).failure_rate, 40);
  CHECK_EQ(stats(&b, 0).window_calls, 10);
  call(&b, 0, F, 0); /* pushes out the oldest success: 5 of 10 */
  CHECK_EQ(state(&b), OP);
  CHECK_DBL(last_event(&b)->failure_rate, 50);
  brk_close(&b);

  /* Failures first: the success that brings the window to minimum_calls
   * with the rate already at the threshold opens it. */
  CTX("threshold: reached by a success at minimum_calls");
  brk_open(&b, &o);
  for (i = 0; i < 5; ++i) call(&b, 0, F, 0);
  for (i = 0; i < 4; ++i) call(&b, 0, S, 0);
  CHECK_EQ(state(&b), CL);
  call(&b, 0, S, 0);
  CHECK_EQ(state(&b), OP);
  brk_close(&b);

  /* A fractional threshold: 1 of 3 is 33.33...%. */
  CTX("threshold 33.4 vs 33.3");
  o = small();
  o.window_size = 3;
  o.minimum_calls = 3;
  o.failure_rate_threshold = 33.4;
  brk_open(&b, &o);
  call(&b, 0, S, 0);
  call(&b, 0, S, 0);
  call(&b, 0, F, 0);
  CHECK_EQ(state(&b), CL);
  brk_close(&b);
  o.failure_rate_threshold = 33.3;
  brk_open(&b, &o);
  call(&b, 0, S, 0);
  call(&b, 0, S, 0);
  call(&b, 0, F, 0);
  CHECK_EQ(state(&b), OP);
  brk_close(&b);

  /* 100%: only an all-failing window opens. */
  CTX("threshold 100");
  o.failure_rate_threshold = 100;
  brk_open(&b, &o);
  call(&b, 0, F, 0);
  call(&b, 0, S, 0);
  call(&b, 0, F, 0);
  call(&b, 0, F, 0); /* window F S F -> S F F: 66% */
  CHECK_EQ(state(&b), CL);
  call(&b, 0, F, 0); /* F F F */
  CHECK_EQ(state(&b), OP);
  brk_close(&b);
}

static void test_slow_calls(void) {
  tg_breaker_options o = small();
  brk b;
  o.window_size = 4;
  o.minimum_calls = 4;
  o.failure_rate_threshold = 100;
  o.slow_rate_threshold = 50;
  o.slow_call_ns = 100;
  CTX("slow: 2 of 4");
  brk_open(&b, &o);
  call(&b, 0, S, 99);
  call(&b, 0, S, 100); /* at least slow_call_ns is slow */
  call(&b, 0, S, 99);
  CHECK_EQ(state(&b), CL);
  call(&b, 0, S, 100);
  CHECK_EQ(state(&b), OP);
  {
    const tg_breaker_event* e = last_event(&b);
    CHECK_DBL(e->slow_rate, 50);
    CHECK_DBL(e->failure_rate, 0);
  }
  CHECK_EQ(stats(&b, 0).slow_calls, 2);
  CHECK_EQ(stats(&b, 0).successes, 4);
  brk_close(&b);

  CTX("slow: 1 of 4");
  brk_open(&b, &o);
  call(&b, 0, S, 99);
  call(&b, 0, S, 99);
  call(&b, 0, S, 99);
  call(&b, 0, S, 1000000);
  CHECK_EQ(state(&b), CL);
  CHECK_DBL(stats(&b, 0).slow_rate, 25);
  CHECK_DBL(stats(&b, 0).failure_rate, 0);
  /* A slow failure counts in both rates: the window is now S S S(slow)
   * F(slow), 50% slow, which opens it. */
  call(&b, 0, F, 100);
  CHECK_DBL(stats(&b, 0).slow_rate, 50);
  CHECK_DBL(stats(&b, 0).failure_rate, 25);
  CHECK_EQ(state(&b), OP);
  brk_close(&b);
}

/* Open: rejects with the time left; time going back never ends it early;
 * at the deadline the next acquire half-opens. */
static void test_open_and_time(void) {
  tg_breaker_options o = small();
  brk b;
  tg_breaker_permit p;
  o.window_size = 4;
  o.minimum_calls = 2;
  o.half_open_probes = 3;
  CTX("open");
  brk_open(&b, &o);
  call(&b, 5000, F, 0);
  call(&b, 5000, F, 0);
  CHECK_EQ(state(&b), OP);
  {
    static const uint64_t at[] = {5000, 5001, 5999, 4000, 0, 5500, 1};
    static const uint64_t wait[] = {1000, 999, 1, 2000, 6000, 500, 5999};
    size_t i;
    for (i = 0; i < sizeof at / sizeof at[0]; ++i) {
      p = acquire(&b, at[i]);
      CHECK_EQ(p.allowed, 0);
      CHECK_EQ(p.reason, TG_BREAKER_REASON_OPEN);
      CHECK_EQ(p.state, OP);
      CHECK_EQ(p.retry_after_ns, wait[i]);
      CHECK_EQ(state(&b), OP);
    }
  }
  /* A stats read after the deadline does not move it: still OPEN. */
  CHECK_EQ(stats(&b, 100000).state, OP);
  CHECK_EQ(b.n_events, 1);
  p = acquire(&b, 6000);
  CHECK_EQ(p.allowed, 1);
  CHECK_EQ(p.state, HO);
  CHECK_EQ(state(&b), HO);
  {
    static const int want[] = {CL, OP, OP, HO};
    const tg_breaker_event* e = last_event(&b);
    check_events(&b, 0, want, 2);
    CHECK_EQ(e->now_ns, 6000);
    CHECK_EQ(e->open_ns, 0);
  }
  record(&b, &p, S, 0, 6000);
  brk_close(&b);
}

static void test_half_open(void) {
  tg_breaker_options o = small();
  brk b;
  tg_breaker_permit p[4];
  int i;
  o.window_size = 4;
  o.minimum_calls = 2;
  o.half_open_probes = 3;
  CTX("half-open: all probes succeed");
  brk_open(&b, &o);
  call(&b, 0, F, 0);
  call(&b, 0, F, 0);
  for (i = 0; i < 3; ++i) {
    p[i] = acquire(&b, 1000);
    CHECK_EQ(p[i].allowed, 1);
    CHECK_EQ(p[i].state, HO);
  }
  p[3] = acquire(&b, 1000);
  CHECK_EQ(p[3].allowed, 0);
  CHECK_EQ(p[3].reason, TG_BREAKER_REASON_OPEN);
  CHECK_EQ(p[3].state, HO);
  CHECK(p[3].retry_after_ns > 0);
  CHECK_EQ(acquire(&b, 5000).allowed, 0); /* still exactly 3 probes */
  record(&b, &p[0], S, 0, 1001);
  record(&b, &p[1], S, 0, 1002);
  CHECK_EQ(state(&b), HO);
  record(&b, &p[3], F, 0, 1002); /* a rejected permit: no-op */
  CHECK_EQ(state(&b), HO);
  record(&b, &p[2], S, 0, 1003);
  CHECK_EQ(state(&b), CL);
  {
    static const int want[] = {CL, OP, OP, HO, HO, CL};
    const tg_breaker_event* e = last_event(&b);
    check_events(&b, 0, want, 3);
    CHECK_EQ(e->now_ns, 1003);
    CHECK_DBL(e->failure_rate, 0);
    CHECK_EQ(e->open_ns, 0);
  }
  /* The window was reset: one new failure is below minimum_calls. */
  CHECK_EQ(stats(&b, 1003).window_calls, 0);
  call(&b, 1004, F, 0);
  CHECK_EQ(state(&b), CL);
  CHECK_EQ(stats(&b, 1004).window_calls, 1);
  brk_close(&b);

  CTX("half-open: an ignored probe frees its slot");
  o.half_open_probes = 2;
  brk_open(&b, &o);
  call(&b, 0, F, 0);
  call(&b, 0, F, 0);
  p[0] = acquire(&b, 1000);
  p[1] = acquire(&b, 1000);
  CHECK_EQ(acquire(&b, 1000).allowed, 0);
  record(&b, &p[0], I, 0, 1000);
  p[2] = acquire(&b, 1000);
  CHECK_EQ(p[2].allowed, 1);
  CHECK_EQ(p[2].state, HO);
  CHECK_EQ(acquire(&b, 1000).allowed, 0);
  record(&b, &p[1], S, 0, 1000);
  CHECK_EQ(state(&b), HO);
  record(&b, &p[2], S, 0, 1000);
  CHECK_EQ(state(&b), CL);
  CHECK_EQ(stats(&b, 1000).ignored, 1);
  brk_close(&b);

  CTX("half-open: failures below the threshold close");
  o.half_open_probes = 3;
  brk_open(&b, &o);
  call(&b, 0, F, 0);
  call(&b, 0, F, 0);
  for (i = 0; i < 3; ++i) p[i] = acquire(&b, 1000);
  record(&b, &p[0], F, 0, 1000); /* 1 of 3 = 33% < 50% */
  record(&b, &p[1], S, 0, 1000);
  record(&b, &p[2], S, 0, 1000);
  CHECK_EQ(state(&b), CL);
  CHECK(last_event(&b)->failure_rate > 33.3 && last_event(&b)->failure_rate < 33.4);
  brk_close(&b);

  CTX("half-open: slow probes reopen");
  o.slow_rate_threshold = 50;
  o.slow_call_ns = 100;
  brk_open(&b, &o);
  call(&b, 0, F, 0);
  call(&b, 0, F, 0);
  for (i = 0; i < 3; ++i) p[i] = acquire(&b, 1000);
  record(&b, &p[0], S, 100, 1000);
  record(&b, &p[1], S, 200, 1000);
  record(&b, &p[2], S, 0, 1000);
  CHECK_EQ(state(&b), OP);
  CHECK(last_event(&b)->slow_rate > 66.6 && last_event(&b)->slow_rate < 66.7);
  brk_close(&b);
}

/* Failing probe sets reopen with the open duration multiplied, capped at
 * max_open_ns; a close resets the backoff. */
static void test_backoff(void) {
  tg_breaker_options o = small();
  brk b;
  uint64_t now = 1000;
  static const uint64_t durations[] = {200, 400, 500, 500}; /* 100 * 2^k, capped at 500 */
  size_t k;
  o.window_size = 4;
  o.minimum_calls = 2;
  o.open_ns = 100;
  o.backoff_multiplier = 2;
  o.max_open_ns = 500;
  o.half_open_probes = 2;
  CTX("backoff");
  brk_open(&b, &o);
  call(&b, now, F, 0);
  call(&b, now, F, 0);
  CHECK_EQ(state(&b), OP);
  CHECK_EQ(last_event(&b)->open_ns, 100);
  now += 100;
  for (k = 0; k < sizeof durations / sizeof durations[0]; ++k) {
    tg_breaker_permit a, c, r;
    CHECK_EQ(acquire(&b, now - 1).allowed, 0);
    a = acquire(&b, now);
    c = acquire(&b, now);
    CHECK_EQ(a.allowed, 1);
    CHECK_EQ(c.allowed, 1);
    record(&b, &a, F, 0, now);
    record(&b, &c, k % 2 ? F : S, 0, now); /* 50% or 100% failing */
    CHECK_EQ(state(&b), OP);
    CHECK_EQ(last_event(&b)->to_state, OP);
    CHECK_EQ(last_event(&b)->open_ns, durations[k]);
    CHECK_EQ(last_event(&b)->now_ns, now);
    r = acquire(&b, now);
    CHECK_EQ(r.allowed, 0);
    CHECK_EQ(r.retry_after_ns, durations[k]);
    now += durations[k];
  }
  {
    tg_breaker_permit a = acquire(&b, now), c = acquire(&b, now);
    record(&b, &a, S, 0, now);
    record(&b, &c, S, 0, now);
  }
  CHECK_EQ(state(&b), CL);
  call(&b, now, F, 0);
  call(&b, now, F, 0);
  CHECK_EQ(state(&b), OP);
  CHECK_EQ(last_event(&b)->open_ns, 100); /* backoff reset by the close */
  {
    static const int want[] = {CL, OP, OP, HO, HO, OP, OP, HO, HO, OP, OP, HO,
                               HO, OP, OP, HO, HO, OP, OP, HO, HO, CL, CL, OP};
    check_events(&b, 0, want, 12);
  }
  brk_close(&b);
}

static void test_max_half_open(void) {
  tg_breaker_options o = small();
  brk b;
  tg_breaker_permit p1, p2, p;
  o.window_size = 4;
  o.minimum_calls = 2;
  o.open_ns = 100;
  o.backoff_multiplier = 2;
  o.max_open_ns = 10000;
  o.half_open_probes = 2;
  o.max_half_open_ns = 50;
  CTX("max_half_open_ns");
  brk_open(&b, &o);
  call(&b, 1000, F, 0);
  call(&b, 1000, F, 0);
  p1 = acquire(&b, 1100);
  CHECK_EQ(p1.allowed, 1);
  CHECK_EQ(p1.state, HO);
  p2 = acquire(&b, 1149);
  CHECK_EQ(p2.allowed, 1);
  p = acquire(&b, 1149);
  CHECK_EQ(p.allowed, 0);
  CHECK_EQ(p.state, HO);
  CHECK_EQ(p.retry_after_ns, 1); /* until the half-open period ends */
  CHECK_EQ(state(&b), HO);
  p = acquire(&b, 1150);
  CHECK_EQ(p.allowed, 0);
  CHECK_EQ(p.reason, TG_BREAKER_REASON_OPEN);
  CHECK_EQ(p.state, OP);
  CHECK_EQ(p.retry_after_ns, 200);
  CHECK_EQ(state(&b), OP);
  {
    const tg_breaker_event* e = last_event(&b);
    CHECK_EQ(e->from_state, HO);
    CHECK_EQ(e->to_state, OP);
    CHECK_EQ(e->open_ns, 200);
    CHECK_EQ(e->now_ns, 1150);
  }
  /* The late probes belong to the earlier half-open period: no effect. */
  record(&b, &p1, S, 0, 1151);
  record(&b, &p2, S, 0, 1151);
  CHECK_EQ(state(&b), OP);
  CHECK_EQ(b.n_events, 3);
  p1 = acquire(&b, 1350);
  p2 = acquire(&b, 1350);
  CHECK_EQ(p1.allowed, 1);
  CHECK_EQ(p2.allowed, 1);
  record(&b, &p1, S, 0, 1360);
  record(&b, &p2, S, 0, 1399); /* within 50 ns of 1350 */
  CHECK_EQ(state(&b), CL);
  {
    static const int want[] = {CL, OP, OP, HO, HO, OP, OP, HO, HO, CL};
    check_events(&b, 0, want, 5);
  }
  brk_close(&b);
}

static void test_forced_states(void) {
  tg_breaker_options o = small();
  brk b;
  tg_breaker_permit p;
  int i;
  o.window_size = 4;
  o.minimum_calls = 2;
  CTX("forced states");
  brk_open(&b, &o);
  CHECK_RC(tg_breaker_transition(b.h, FO, 10), TG_OK);
  CHECK_EQ(state(&b), FO);
  p = acquire(&b, 10);
  CHECK_EQ(p.allowed, 0);
  CHECK_EQ(p.reason, TG_BREAKER_REASON_FORCED_OPEN);
  CHECK_EQ(p.state, FO);
  CHECK_EQ(p.retry_after_ns, UINT64_MAX); /* no deadline ends a kill switch */
  p = acquire(&b, 1000000000000000000ull);
  CHECK_EQ(p.allowed, 0);
  CHECK_EQ(state(&b), FO);

  CHECK_RC(tg_breaker_transition(b.h, FC, 20), TG_OK);
  for (i = 0; i < 6; ++i) call(&b, 20, F, 0);
  CHECK_EQ(state(&b), FC);
  CHECK_EQ(stats(&b, 20).window_calls, 4);
  CHECK_DBL(stats(&b, 20).failure_rate, 100);

  CHECK_RC(tg_breaker_transition(b.h, DI, 30), TG_OK);
  for (i = 0; i < 6; ++i) call(&b, 30, F, 0);
  CHECK_EQ(state(&b), DI);
  CHECK_EQ(stats(&b, 30).window_calls, 4); /* disabled records nothing in the window */

  CHECK_RC(tg_breaker_transition(b.h, CL, 40), TG_OK);
  CHECK_EQ(state(&b), CL);
  CHECK_EQ(stats(&b, 40).window_calls, 0); /* CLOSED resets the window */

  CHECK_RC(tg_breaker_transition(b.h, MO, 50), TG_OK);
  call(&b, 50, F, 0);
  CHECK_EQ(stats(&b, 50).would_open, 0);
  call(&b, 50, F, 0);
  CHECK_EQ(stats(&b, 50).would_open, 1);
  call(&b, 50, F, 0);
  CHECK_EQ(stats(&b, 50).would_open, 2);
  CHECK_EQ(state(&b), MO);
  CHECK_EQ(stats(&b, 50).window_calls, 3);

  /* Manual OPEN for the current open duration, then HALF_OPEN. */
  CHECK_RC(tg_breaker_transition(b.h, OP, 60), TG_OK);
  CHECK_EQ(last_event(&b)->open_ns, 1000);
  p = acquire(&b, 60);
  CHECK_EQ(p.allowed, 0);
  CHECK_EQ(p.retry_after_ns, 1000);
  CHECK_RC(tg_breaker_transition(b.h, HO, 70), TG_OK);
  {
    tg_breaker_permit a = acquire(&b, 70), c = acquire(&b, 70);
    CHECK_EQ(a.allowed, 1);
    CHECK_EQ(c.allowed, 1);
    CHECK_EQ(acquire(&b, 70).allowed, 0);
    record(&b, &a, S, 0, 70);
    record(&b, &c, S, 0, 70);
  }
  CHECK_EQ(state(&b), CL);
  /* Moving to the state it is in is no change: no event. */
  CHECK_RC(tg_breaker_transition(b.h, CL, 80), TG_OK);
  {
    static const int want[] = {CL, FO, FO, FC, FC, DI, DI, CL, CL, MO, MO, OP, OP, HO, HO, CL};
    check_events(&b, 0, want, 8);
  }
  {
    const tg_breaker_stats st = stats(&b, 80);
    CHECK_EQ(st.transitions, 8);
    CHECK_EQ(st.in_flight, 0);
  }
  brk_close(&b);
}

static void test_ignored(void) {
  tg_breaker_options o = small();
  brk b;
  int i;
  o.window_size = 4;
  o.minimum_calls = 2;
  o.max_in_flight = 1;
  CTX("ignored");
  brk_open(&b, &o);
  for (i = 0; i < 10; ++i) call(&b, 0, I, 5000); /* ignored: not counted, frees the slot */
  {
    const tg_breaker_stats st = stats(&b, 0);
    CHECK_EQ(st.window_calls, 0);
    CHECK_EQ(st.ignored, 10);
    CHECK_EQ(st.successes, 0);
    CHECK_EQ(st.failures, 0);
    CHECK_EQ(st.slow_calls, 0);
    CHECK_EQ(st.in_flight, 0);
  }
  CHECK_EQ(state(&b), CL);
  call(&b, 0, F, 0);
  call(&b, 0, I, 0);
  CHECK_EQ(state(&b), CL);
  call(&b, 0, F, 0);
  CHECK_EQ(state(&b), OP);
  brk_close(&b);
}

static void test_bulkhead(void) {
  tg_breaker_options o = small();
  brk b;
  tg_breaker_permit a, c, d, e;
  o.max_in_flight = 2;
  CTX("bulkhead");
  brk_open(&b, &o);
  a = acquire(&b, 0);
  c = acquire(&b, 0);
  d = acquire(&b, 0);
  CHECK_EQ(a.allowed, 1);
  CHECK_EQ(c.allowed, 1);
  CHECK_EQ(d.allowed, 0);
  CHECK_EQ(d.reason, TG_BREAKER_REASON_BULKHEAD_FULL);
  CHECK_EQ(d.state, CL);
  CHECK_EQ(d.retry_after_ns, 0);
  CHECK_EQ(stats(&b, 0).in_flight, 2);
  record(&b, &d, F, 0, 0); /* a rejected permit frees nothing */
  CHECK_EQ(stats(&b, 0).in_flight, 2);
  CHECK_EQ(acquire(&b, 0).allowed, 0);
  record(&b, &a, S, 0, 0);
  CHECK_EQ(stats(&b, 0).in_flight, 1);
  e = acquire(&b, 0);
  CHECK_EQ(e.allowed, 1);
  record(&b, &c, I, 0, 0);
  record(&b, &e, F, 0, 0);
  {
    const tg_breaker_stats st = stats(&b, 0);
    CHECK_EQ(st.in_flight, 0);
    CHECK_EQ(st.bulkhead_rejected, 2);
    CHECK_EQ(st.rejected, 2);
    CHECK_EQ(st.admitted, 3);
  }
  brk_close(&b);

  /* In half-open, a probe turned away by the bulkhead gives its probe back. */
  CTX("bulkhead in half-open");
  o = small();
  o.window_size = 4;
  o.minimum_calls = 2;
  o.half_open_probes = 2;
  o.max_in_flight = 1;
  brk_open(&b, &o);
  call(&b, 0, F, 0);
  call(&b, 0, F, 0);
  a = acquire(&b, 1000);
  CHECK_EQ(a.allowed, 1);
  CHECK_EQ(a.state, HO);
  c = acquire(&b, 1000);
  CHECK_EQ(c.allowed, 0);
  CHECK_EQ(c.reason, TG_BREAKER_REASON_BULKHEAD_FULL);
  record(&b, &a, S, 0, 1000);
  c = acquire(&b, 1000);
  CHECK_EQ(c.allowed, 1); /* the second probe, not refused as "probes taken" */
  record(&b, &c, S, 0, 1000);
  CHECK_EQ(state(&b), CL);
  brk_close(&b);
}

/* Recording a rejected (or zeroed) permit changes nothing. */
static void test_record_rejected(void) {
  tg_breaker_options o = small();
  brk b;
  tg_breaker_permit p, zero;
  tg_breaker_stats before, after;
  o.window_size = 4;
  o.minimum_calls = 2;
  CTX("record rejected permit");
  brk_open(&b, &o);
  call(&b, 0, F, 0);
  call(&b, 0, F, 0);
  p = acquire(&b, 10);
  CHECK_EQ(p.allowed, 0);
  memset(&zero, 0, sizeof zero);
  before = stats(&b, 10);
  record(&b, &p, S, 0, 10);
  record(&b, &p, F, 0, 10);
  record(&b, &p, I, 0, 10);
  record(&b, &zero, S, 0, 10);
  zero.allowed = 1; /* the token decides, not the caller's copy of allowed */
  record(&b, &zero, S, 0, 10);
  after = stats(&b, 10);
  CHECK_EQ(after.successes, before.successes);
  CHECK_EQ(after.failures, before.failures);
  CHECK_EQ(after.ignored, before.ignored);
  CHECK_EQ(after.window_calls, before.window_calls);
  CHECK_EQ(after.in_flight, before.in_flight);
  CHECK_EQ(after.state, OP);
  CHECK_EQ(b.n_events, 1);
  brk_close(&b);
}

/* A permit from an earlier state never moves the current one. */
static void test_stale_permit(void) {
  tg_breaker_options o = small();
  brk b;
  tg_breaker_permit old[3];
  int i;
  o.window_size = 4;
  o.minimum_calls = 1;
  CTX("stale permit");
  brk_open(&b, &o);
  for (i = 0; i < 3; ++i) old[i] = acquire(&b, 0);
  CHECK_RC(tg_breaker_transition(b.h, OP, 0), TG_OK);
  CHECK_RC(tg_breaker_transition(b.h, CL, 0), TG_OK);
  for (i = 0; i < 3; ++i) record(&b, &old[i], F, 0, 0);
  CHECK_EQ(state(&b), CL);
  CHECK_EQ(stats(&b, 0).window_calls, 0);
  CHECK_EQ(stats(&b, 0).in_flight, 0);
  /* A permit of the current state does count. */
  call(&b, 0, F, 0);
  CHECK_EQ(state(&b), OP);
  brk_close(&b);

  /* Reset by moving to the same state: an earlier permit is stale too. */
  CTX("stale permit across a reset");
  brk_open(&b, &o);
  old[0] = acquire(&b, 0);
  CHECK_RC(tg_breaker_transition(b.h, CL, 0), TG_OK);
  record(&b, &old[0], F, 0, 0);
  CHECK_EQ(state(&b), CL);
  brk_close(&b);

  /* A permit from FORCED_CLOSED recorded after the return to CLOSED. */
  CTX("stale permit from forced closed");
  brk_open(&b, &o);
  CHECK_RC(tg_breaker_transition(b.h, FC, 0), TG_OK);
  old[0] = acquire(&b, 0);
  CHECK_RC(tg_breaker_transition(b.h, CL, 0), TG_OK);
  record(&b, &old[0], F, 0, 0);
  CHECK_EQ(state(&b), CL);
  brk_close(&b);
}

static void test_callback_management(void) {
  tg_breaker_options o = small();
  brk b, other;
  CTX("callback management");
  brk_open(&b, &o);
  memset(&other, 0, sizeof other);
  other.h = b.h;
  CHECK_RC(tg_breaker_transition(b.h, FO, 1), TG_OK);
  CHECK_EQ(b.n_events, 1);
  /* Replaced: only the new callback hears. */
  CHECK_RC(tg_breaker_set_event_callback(b.h, on_event, &other), TG_OK);
  CHECK_RC(tg_breaker_transition(b.h, CL, 2), TG_OK);
  CHECK_EQ(b.n_events, 1);
  CHECK_EQ(other.n_events, 1);
  CHECK_EQ(other.ev[0].from_state, FO);
  CHECK_EQ(other.ev[0].to_state, CL);
  CHECK_EQ(other.ev[0].now_ns, 2);
  CHECK_DBL(other.ev[0].failure_rate, -1);
  CHECK_DBL(other.ev[0].slow_rate, -1);
  /* Removed: nobody hears, the change still counts. */
  CHECK_RC(tg_breaker_set_event_callback(b.h, NULL, NULL), TG_OK);
  CHECK_RC(tg_breaker_transition(b.h, DI, 3), TG_OK);
  CHECK_EQ(b.n_events, 1);
  CHECK_EQ(other.n_events, 1);
  CHECK_EQ(stats(&b, 3).transitions, 3);
  CHECK_RC(tg_breaker_set_event_callback(b.h, on_event, &b), TG_OK);
  CHECK_RC(tg_breaker_transition(b.h, CL, 4), TG_OK);
  CHECK_EQ(b.n_events, 2);
  b.n_events = 4; /* b heard 2, `other` 1, nobody 1: brk_close checks the total */
  CHECK_EQ(other.state_not_visible, 0);
  brk_close(&b);
}

/* The callback may call tg_breaker functions: here it moves an opening
 * breaker straight on to HALF_OPEN, and later removes itself. */
typedef struct reentrant {
  brk b;
  int remove_after; /* remove the callback on this event number (1-based) */
} reentrant;

static void on_event_reentrant(void* user, const tg_breaker_event* ev) {
  reentrant* r = (reentrant*)user;
  on_event(&r->b, ev);
  if (ev->to_state == TG_BREAKER_OPEN) {
    (void)tg_breaker_transition(r->b.h, TG_BREAKER_HALF_OPEN, ev->now_ns);
  }
  if (r->b.n_events == r->remove_after) {
    (void)tg_breaker_set_event_callback(r->b.h, NULL, NULL);
  }
}

static void test_reentrant_callback(void) {
  tg_breaker_options o = small();
  reentrant r;
  tg_breaker_permit p;
  o.window_size = 4;
  o.minimum_calls = 2;
  CTX("re-entrant callback");
  brk_open(&r.b, &o);
  r.remove_after = 4;
  CHECK_RC(tg_breaker_set_event_callback(r.b.h, on_event_reentrant, &r), TG_OK);
  call(&r.b, 10, F, 0);
  call(&r.b, 10, F, 0); /* opens; the callback half-opens at once */
  CHECK_EQ(state(&r.b), HO);
  {
    static const int want[] = {CL, OP, OP, HO};
    check_events(&r.b, 0, want, 2);
  }
  p = acquire(&r.b, 10); /* a probe, without waiting for the open period */
  CHECK_EQ(p.allowed, 1);
  CHECK_EQ(p.state, HO);
  record(&r.b, &p, F, 0, 11); /* 1 of 2 probes */
  p = acquire(&r.b, 11);
  record(&r.b, &p, F, 0, 12); /* reopens; half-open again; callback removed */
  CHECK_EQ(state(&r.b), HO);
  CHECK_EQ(r.b.n_events, 4);
  CHECK_RC(tg_breaker_transition(r.b.h, CL, 13), TG_OK);
  CHECK_EQ(r.b.n_events, 4); /* nobody hears */
  CHECK_EQ(stats(&r.b, 13).transitions, 5);
  r.b.n_events = 5;
  brk_close(&r.b);
}

static void test_time_window(void) {
  tg_breaker_options o = small();
  brk b;
  int i;
  o.window_type = TG_WINDOW_TIME;
  o.window_size = 4;
  o.bucket_ns = 1000;
  o.minimum_calls = 2;
  o.failure_rate_threshold = 50;
  CTX("time window: old buckets expire");
  brk_open(&b, &o);
  for (i = 0; i < 10; ++i) call(&b, 500, S, 0);
  CHECK_EQ(stats(&b, 500).window_calls, 10);
  CHECK_DBL(stats(&b, 500).failure_rate, 0);
  CHECK_EQ(stats(&b, 3999).window_calls, 10);
  CHECK_EQ(stats(&b, 4000).window_calls, 0); /* epoch 0 has left the window */
  call(&b, 4000, F, 0);
  CHECK_EQ(state(&b), CL); /* one call: below minimum_calls */
  CHECK_EQ(stats(&b, 4000).window_calls, 1);
  call(&b, 4001, F, 0);
  CHECK_EQ(state(&b), OP);
  brk_close(&b);

  CTX("time window: what stays counts");
  brk_open(&b, &o);
  for (i = 0; i < 10; ++i) call(&b, 500, S, 0);
  call(&b, 3999, F, 0);
  call(&b, 3999, F, 0);
  CHECK_EQ(state(&b), CL); /* 2 of 12 */
  CHECK_EQ(stats(&b, 3999).window_calls, 12);
  CHECK_EQ(stats(&b, 4000).window_calls, 2);
  CHECK_DBL(stats(&b, 4000).failure_rate, 100);
  call(&b, 4000, S, 0); /* 2 of 3 failing once epoch 0 is gone */
  CHECK_EQ(state(&b), OP);
  CHECK(last_event(&b)->failure_rate > 66.6 && last_event(&b)->failure_rate < 66.7);
  brk_close(&b);

  CTX("time window: a long gap empties it");
  brk_open(&b, &o);
  call(&b, 100, F, 0);
  CHECK_EQ(stats(&b, 100).window_calls, 1);
  CHECK_EQ(stats(&b, 1000000).window_calls, 0);
  call(&b, 1000000, S, 0);
  call(&b, 1000000, S, 0);
  call(&b, 1000000, F, 0); /* 1 of 3 */
  CHECK_EQ(state(&b), CL);
  brk_close(&b);
}

/* A window of one call; and a close from half-open resets a time window. */
static void test_small_windows(void) {
  tg_breaker_options o = small();
  brk b;
  o.window_size = 1;
  o.minimum_calls = 1;
  CTX("window of one");
  brk_open(&b, &o);
  call(&b, 0, S, 0);
  call(&b, 0, S, 0);
  CHECK_EQ(stats(&b, 0).window_calls, 1);
  CHECK_EQ(state(&b), CL);
  call(&b, 0, F, 0);
  CHECK_EQ(state(&b), OP);
  brk_close(&b);

  CTX("time window reset by a close");
  o = small();
  o.window_type = TG_WINDOW_TIME;
  o.window_size = 4;
  o.bucket_ns = 1000;
  o.minimum_calls = 2;
  o.half_open_probes = 1;
  o.open_ns = 1000;
  brk_open(&b, &o);
  call(&b, 100, F, 0);
  call(&b, 100, F, 0);
  CHECK_EQ(state(&b), OP);
  call(&b, 1100, S, 0); /* the one probe */
  CHECK_EQ(state(&b), CL);
  CHECK_EQ(stats(&b, 1100).window_calls, 0); /* epoch 0 is in range, but reset */
  call(&b, 1100, F, 0);
  CHECK_EQ(state(&b), CL);
  brk_close(&b);
}

/* acquire_many and record_many decide exactly as the same single calls on an
 * identical breaker. */
static void test_batches(void) {
  tg_breaker_options o = small();
  brk a, s;
  uint64_t now = 0;
  int round;
  o.window_size = 8;
  o.minimum_calls = 4;
  o.failure_rate_threshold = 50;
  o.slow_rate_threshold = 50;
  o.slow_call_ns = 80;
  o.open_ns = 100;
  o.backoff_multiplier = 2;
  o.max_open_ns = 1000;
  o.half_open_probes = 2;
  o.max_in_flight = 3;
  CTX("batches");
  brk_open(&a, &o);
  brk_open(&s, &o);
  for (round = 0; round < 400; ++round) {
    tg_breaker_permit pa[5], ps[5];
    int32_t outcomes[5];
    uint64_t lat[5];
    const size_t n = (size_t)rnd_in(1, 5);
    const int no_latency = round % 4 == 3;
    size_t i;
    memset(pa, 0xab, sizeof pa);
    CHECK_RC(tg_breaker_acquire_many(a.h, n, now, pa), TG_OK);
    for (i = 0; i < n; ++i) {
      tally(&a, &pa[i]);
      ps[i] = acquire(&s, now);
      CTX("batches round %d item %zu", round, i);
      CHECK_EQ(pa[i].allowed, ps[i].allowed);
      CHECK_EQ(pa[i].reason, ps[i].reason);
      CHECK_EQ(pa[i].state, ps[i].state);
      CHECK_EQ(pa[i].retry_after_ns, ps[i].retry_after_ns);
      outcomes[i] = (int32_t)(rnd() % 3);
      lat[i] = rnd_in(0, 100);
    }
    CTX("batches round %d", round);
    now += rnd_in(0, 40);
    CHECK_RC(tg_breaker_record_many(a.h, pa, outcomes, no_latency ? NULL : lat, n, now), TG_OK);
    for (i = 0; i < n; ++i) record(&s, &ps[i], outcomes[i], no_latency ? 0 : lat[i], now);
    CHECK_EQ(state(&a), state(&s));
    now += rnd_in(0, 40);
  }
  CTX("batches");
  {
    const tg_breaker_stats x = stats(&a, now), y = stats(&s, now);
    CHECK_EQ(x.admitted, y.admitted);
    CHECK_EQ(x.rejected, y.rejected);
    CHECK_EQ(x.bulkhead_rejected, y.bulkhead_rejected);
    CHECK_EQ(x.successes, y.successes);
    CHECK_EQ(x.failures, y.failures);
    CHECK_EQ(x.slow_calls, y.slow_calls);
    CHECK_EQ(x.ignored, y.ignored);
    CHECK_EQ(x.transitions, y.transitions);
    CHECK_EQ(x.in_flight, 0);
    CHECK_EQ(y.in_flight, 0);
    CHECK_EQ(x.window_calls, y.window_calls);
    CHECK(x.transitions > 10); /* the run went through open and half-open */
    CHECK(x.rejected > 10);
  }
  CHECK_EQ(a.n_events, s.n_events);
  {
    int i;
    for (i = 0; i < a.n_events && i < s.n_events && i < MAX_EVENTS; ++i) {
      CHECK_EQ(a.ev[i].from_state, s.ev[i].from_state);
      CHECK_EQ(a.ev[i].to_state, s.ev[i].to_state);
      CHECK_EQ(a.ev[i].now_ns, s.ev[i].now_ns);
      CHECK_EQ(a.ev[i].open_ns, s.ev[i].open_ns);
    }
  }
  /* n = 0 is TG_OK and touches nothing. */
  CHECK_RC(tg_breaker_acquire_many(a.h, 0, now, NULL), TG_OK);
  CHECK_RC(tg_breaker_record_many(a.h, NULL, NULL, NULL, 0, now), TG_OK);
  brk_close(&a);
  brk_close(&s);
}

int main(void) {
  test_defaults();
  test_minimum_calls();
  test_threshold_exact();
  test_slow_calls();
  test_open_and_time();
  test_half_open();
  test_backoff();
  test_max_half_open();
  test_forced_states();
  test_ignored();
  test_bulkhead();
  test_record_rejected();
  test_stale_permit();
  test_callback_management();
  test_reentrant_callback();
  test_time_window();
  test_small_windows();
  test_batches();
  return check_summary();
}
