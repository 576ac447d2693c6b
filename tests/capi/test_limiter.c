/* C ABI tests of the rate limiter: normal use and exact GCRA semantics with an
 * injected clock. C99; the only tollgate header used is tollgate.h.
 *
 * Every decision the tests make against the library is also made against a
 * small reference model written from the header's contract (a GCRA bucket:
 * T = round(1e9 / (rate * multiplier)) ns per token, a request of cost c is
 * admitted when the bucket holds at least c tokens, and a rejection waits
 * exactly until it would be admitted), so any difference in allowed, reason,
 * retry_after or remaining is reported with the time and the values. */
#include <tollgate/tollgate.h>

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK_PROGRAM "capi_limiter"
#include "check.h"

/* ------------------------------------------------------------------------ */
/* Helpers                                                                   */
/* ------------------------------------------------------------------------ */

#define SEC 1000000000ull

/* This program's own deterministic sequence (xorshift64*, check.h). */
static uint64_t g_rng = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void) { return rng_next(&g_rng); }
static uint64_t rnd_in(uint64_t lo, uint64_t hi) { /* inclusive */
  return rng_range(&g_rng, lo, hi);
}

/* A limiter and what the test has seen it decide, to reconcile its stats. */
typedef struct lim {
  tg_limiter* h;
  uint64_t admitted;
  uint64_t rejected;
  uint64_t shadowed;
  uint64_t capacity_rejected;
} lim;

static lim make_lim(const tg_tier* tiers, uint32_t n, uint64_t capacity, uint32_t on_full,
                    uint32_t shadow, double multiplier, tg_limiter* parent) {
  tg_limiter_options o;
  lim l;
  memset(&l, 0, sizeof l);
  tg_limiter_options_init(&o);
  o.tiers = tiers;
  o.tier_count = n;
  o.capacity = capacity;
  o.on_full = on_full;
  o.shadow = shadow;
  o.multiplier = multiplier;
  o.parent = parent;
  l.h = NEW_LIMITER(&o);
  return l;
}

static lim one_tier(double rate, uint32_t burst) {
  tg_tier t;
  t.name = "t";
  t.rate = rate;
  t.burst = burst;
  t.reserved = 0;
  return make_lim(&t, 1, 65536, TG_LIMITER_ON_FULL_REJECT, 0, 1.0, NULL);
}

/* Shape every decision must have, whatever it says. */
static void check_shape(const tg_limit_decision* d) {
  CHECK(d->allowed == 0 || d->allowed == 1);
  CHECK(d->reserved == 0);
  CHECK((d->flags & ~TG_LIMIT_FLAG_SHADOW) == 0);
  CHECK(d->reason >= TG_LIMIT_REASON_NONE && d->reason <= TG_LIMIT_REASON_PARENT);
  if (d->allowed && !(d->flags & TG_LIMIT_FLAG_SHADOW)) {
    CHECK_EQ(d->reason, TG_LIMIT_REASON_NONE);
    CHECK_EQ(d->retry_after_ns, 0);
  }
  if (!d->allowed) {
    CHECK(d->reason != TG_LIMIT_REASON_NONE);
    CHECK(d->retry_after_ns > 0);
    CHECK(!(d->flags & TG_LIMIT_FLAG_SHADOW));
  }
  if (d->flags & TG_LIMIT_FLAG_SHADOW) {
    CHECK(d->allowed == 1);
    CHECK(d->reason != TG_LIMIT_REASON_NONE);
  }
}

static void count(lim* l, const tg_limit_decision* d) {
  if (d->allowed) {
    ++l->admitted;
  } else {
    ++l->rejected;
  }
  if (d->flags & TG_LIMIT_FLAG_SHADOW) ++l->shadowed;
  if (d->reason == TG_LIMIT_REASON_CAPACITY) ++l->capacity_rejected;
}

static tg_limit_decision acq_bytes(lim* l, const void* key, size_t len, uint32_t tier,
                                   uint32_t cost, uint64_t now) {
  tg_limit_decision d;
  memset(&d, 0xab, sizeof d);
  CHECK_RC(tg_limiter_acquire(l->h, key, len, tier, cost, now, &d), TG_OK);
  check_shape(&d);
  count(l, &d);
  return d;
}

static tg_limit_decision acq(lim* l, const char* key, uint32_t tier, uint32_t cost, uint64_t now) {
  return acq_bytes(l, key, strlen(key), tier, cost, now);
}

static tg_limit_decision peek(lim* l, const char* key, uint32_t tier, uint32_t cost, uint64_t now) {
  tg_limit_decision d;
  memset(&d, 0xab, sizeof d);
  CHECK_RC(tg_limiter_peek(l->h, key, strlen(key), tier, cost, now, &d), TG_OK);
  check_shape(&d);
  return d;
}

static uint64_t remaining(lim* l, const char* key, uint32_t tier, uint64_t now) {
  uint64_t r = 0xdeadbeef;
  CHECK_RC(tg_limiter_remaining(l->h, key, strlen(key), tier, now, &r), TG_OK);
  return r;
}

static tg_limiter_stats stats(const lim* l) {
  tg_limiter_stats s;
  memset(&s, 0xab, sizeof s);
  CHECK_RC(tg_limiter_stats_get(l->h, &s), TG_OK);
  return s;
}

/* The limiter's counters equal what the test saw it decide. */
static void reconcile(const lim* l) {
  const tg_limiter_stats s = stats(l);
  CHECK_EQ(s.admitted, l->admitted);
  CHECK_EQ(s.rejected, l->rejected);
  CHECK_EQ(s.shadow_rejected, l->shadowed);
  CHECK_EQ(s.capacity_rejected, l->capacity_rejected);
}

/* Two decisions agree in every field (a macro, so a failure names the caller's line). */
#define SAME_DECISION(got, want)                           \
  do {                                                     \
    CHECK_EQ((got).allowed, (want).allowed);               \
    CHECK_EQ((got).reason, (want).reason);                 \
    CHECK_EQ((got).retry_after_ns, (want).retry_after_ns); \
    CHECK_EQ((got).remaining, (want).remaining);           \
    CHECK_EQ((got).flags, (want).flags);                   \
  } while (0)

/* ------------------------------------------------------------------------ */
/* Reference model: one GCRA bucket, from the header's contract               */
/* ------------------------------------------------------------------------ */

typedef struct model {
  uint64_t t_ns;  /* emission interval */
  uint32_t burst; /* tokens */
  uint64_t tat;   /* theoretical arrival time; 0 = a full bucket */
} model;

static model make_model(uint64_t t_ns, uint32_t burst) {
  model m;
  m.t_ns = t_ns;
  m.burst = burst;
  m.tat = 0;
  return m;
}

/* What the bucket decides for `cost` at `now`; commits when asked to. */
static tg_limit_decision model_decide(model* m, uint32_t cost, uint64_t now, int commit) {
  tg_limit_decision d;
  const uint64_t burst_ns = m->t_ns * m->burst;
  const uint64_t used = m->tat > now ? m->tat - now : 0; /* ns of tokens spent, not refilled */
  const uint64_t avail = used >= burst_ns ? 0 : burst_ns - used;
  memset(&d, 0, sizeof d);
  d.remaining = avail / m->t_ns;
  if (cost > m->burst) {
    d.reason = TG_LIMIT_REASON_COST_EXCEEDS_BURST;
    d.retry_after_ns = TG_RETRY_NEVER;
    return d;
  }
  const uint64_t need = (uint64_t)cost * m->t_ns;
  if (used + need <= burst_ns) {
    d.allowed = 1;
    d.remaining = (burst_ns - used - need) / m->t_ns;
    if (commit) m->tat = (m->tat > now ? m->tat : now) + need;
  } else {
    d.reason = TG_LIMIT_REASON_RATE;
    d.retry_after_ns = used + need - burst_ns;
  }
  return d;
}

/* Acquire on the library and on the model; they must agree in every field. */
static tg_limit_decision acq_model(lim* l, model* m, const char* key, uint32_t tier, uint32_t cost,
                                   uint64_t now) {
  const tg_limit_decision want = model_decide(m, cost, now, 1);
  const tg_limit_decision got = acq(l, key, tier, cost, now);
  SAME_DECISION(got, want);
  return got;
}

/* ------------------------------------------------------------------------ */
/* Tests                                                                     */
/* ------------------------------------------------------------------------ */

static void test_version_and_clock(void) {
  CTX("version and clock");
  CHECK_EQ(tg_version_number(), TG_VERSION_NUMBER);
  CHECK(tg_version_string() != NULL && strcmp(tg_version_string(), TG_VERSION_STRING) == 0);
  const uint64_t a = tg_now_ns();
  const uint64_t b = tg_now_ns();
  CHECK(a > 0);
  CHECK(b >= a);
}

static void test_defaults(void) {
  tg_limiter_options o;
  tg_error err;
  tg_limiter* h = NULL;
  lim l;
  uint32_t idx = 99;
  double m = 0;
  uint64_t i;
  CTX("defaults");
  memset(&o, 0xff, sizeof o);
  tg_limiter_options_init(&o);
  CHECK_EQ(o.struct_size, sizeof(tg_limiter_options));
  CHECK_EQ(o.on_full, TG_LIMITER_ON_FULL_REJECT);
  CHECK_EQ(o.capacity, 65536);
  CHECK(o.tiers == NULL);
  CHECK_EQ(o.tier_count, 0);
  CHECK_EQ(o.shadow, 0);
  CHECK(o.multiplier == 1.0);
  CHECK(o.parent == NULL);

  /* NULL options: one tier "default", 1000/s, burst 1000. */
  memset(&err, 0x7f, sizeof err);
  CHECK_RC(tg_limiter_new(NULL, &h, &err), TG_OK);
  REQUIRE(h != NULL);
  CHECK_EQ(err.code, TG_OK); /* success clears the error */
  CHECK_EQ(err.message[0], 0);
  memset(&l, 0, sizeof l);
  l.h = h;
  CHECK_RC(tg_limiter_tier_index(h, "default", &idx), TG_OK);
  CHECK_EQ(idx, 0);
  idx = 77;
  CHECK_RC(tg_limiter_tier_index(h, "nope", &idx), TG_ENOTFOUND);
  CHECK_EQ(idx, 77); /* untouched */
  CHECK_RC(tg_limiter_get_multiplier(h, &m), TG_OK);
  CHECK(m == 1.0);
  CHECK_EQ(remaining(&l, "acct", 0, 5 * SEC), 1000);
  for (i = 0; i < 1000; ++i) {
    const tg_limit_decision d = acq(&l, "acct", 0, 1, 5 * SEC);
    CHECK_EQ(d.allowed, 1);
    CHECK_EQ(d.remaining, 999 - i);
  }
  {
    const tg_limit_decision d = acq(&l, "acct", 0, 1, 5 * SEC);
    CHECK_EQ(d.allowed, 0);
    CHECK_EQ(d.reason, TG_LIMIT_REASON_RATE);
    CHECK_EQ(d.retry_after_ns, 1000000); /* T = 1 ms */
    CHECK_EQ(d.remaining, 0);
  }
  {
    const tg_limiter_stats s = stats(&l);
    CHECK_EQ(s.keys, 1);
    CHECK(s.capacity >= 65536);
    CHECK_EQ(s.evictions, 0);
    CHECK_EQ(s.cancelled, 0);
  }
  reconcile(&l);
  tg_limiter_free(h);

  /* The initialised struct gives the same limiter as NULL options. */
  h = NULL;
  CHECK_RC(tg_limiter_new(&o, &h, NULL), TG_OK);
  REQUIRE(h != NULL);
  l.h = h;
  CHECK_RC(tg_limiter_tier_index(h, "default", &idx), TG_OK);
  CHECK_EQ(idx, 0);
  CHECK_EQ(remaining(&l, "", 0, 0), 1000);
  tg_limiter_free(h);
}

static void test_tiers(void) {
  tg_tier t[4];
  char long_name[64];
  uint32_t idx = 0;
  lim l;
  int i;
  memset(long_name, 'n', 63);
  long_name[63] = '\0';
  t[0].name = "gold";
  t[0].rate = 100;
  t[0].burst = 10;
  t[1].name = "silver";
  t[1].rate = 10;
  t[1].burst = 3;
  t[2].name = "bronze";
  t[2].rate = 3;
  t[2].burst = 2;
  t[3].name = long_name; /* 63 bytes: the longest allowed */
  t[3].rate = 1e9;
  t[3].burst = 1;
  for (i = 0; i < 4; ++i) t[i].reserved = 0;
  CTX("tiers");
  l = make_lim(t, 4, 1024, TG_LIMITER_ON_FULL_REJECT, 0, 1.0, NULL);
  long_name[0] = 'x'; /* the library copied the names */
  CHECK_RC(tg_limiter_tier_index(l.h, "gold", &idx), TG_OK);
  CHECK_EQ(idx, 0);
  CHECK_RC(tg_limiter_tier_index(l.h, "silver", &idx), TG_OK);
  CHECK_EQ(idx, 1);
  CHECK_RC(tg_limiter_tier_index(l.h, "bronze", &idx), TG_OK);
  CHECK_EQ(idx, 2);
  long_name[0] = 'n';
  CHECK_RC(tg_limiter_tier_index(l.h, long_name, &idx), TG_OK);
  CHECK_EQ(idx, 3);
  CHECK_RC(tg_limiter_tier_index(l.h, "Gold", &idx), TG_ENOTFOUND);
  CHECK_RC(tg_limiter_tier_index(l.h, "gol", &idx), TG_ENOTFOUND);
  CHECK_RC(tg_limiter_tier_index(l.h, "", &idx), TG_ENOTFOUND);
  {
    /* Each tier has its own rate and burst (distinct keys per tier). */
    const uint64_t now = 7 * SEC;
    static const uint64_t T[4] = {10000000, 100000000, 333333333, 1};
    static const char* keys[4] = {"g", "s", "b", "n"};
    uint32_t k;
    for (k = 0; k < 4; ++k) {
      model m = make_model(T[k], t[k].burst);
      uint32_t j;
      CTX("tier %u", k);
      CHECK_EQ(remaining(&l, keys[k], k, now), t[k].burst);
      for (j = 0; j < t[k].burst; ++j) CHECK_EQ(acq_model(&l, &m, keys[k], k, 1, now).allowed, 1);
      {
        const tg_limit_decision d = acq_model(&l, &m, keys[k], k, 1, now);
        CHECK_EQ(d.allowed, 0);
        CHECK_EQ(d.retry_after_ns, T[k]);
      }
      CHECK_EQ(acq_model(&l, &m, keys[k], k, 1, now + T[k]).allowed, 1);
    }
  }
  reconcile(&l);
  tg_limiter_free(l.h);
}

/* From a full bucket, draining as fast as allowed while now moves through
 * [t0, t0 + window] admits exactly burst + floor(window / T) unit requests,
 * provided no step passes the instant the bucket is full again (after that,
 * refill is wasted). The step is chosen by `kind`:
 *   STEP_FINE    a fixed small step (1 ns, or T/7 + 1), never past "full";
 *   STEP_NEXT    exactly the retry_after of the rejection (as fast as allowed);
 *   STEP_FULL    exactly until the bucket is full (the coarsest exact step);
 *   STEP_RANDOM  anything from 1 ns up to "full";
 *   STEP_COARSE  from "full" to 2 bursts past it: fewer admitted, never more.
 * "Full" is read with peek(cost = burst), whose retry_after is the time until
 * the bucket holds its whole burst. Every decision is checked against the
 * model. Returns the number admitted. */
enum step_kind { STEP_FINE, STEP_NEXT, STEP_FULL, STEP_RANDOM, STEP_COARSE };

static uint64_t drain_window(lim* l, const char* key, uint64_t t_ns, uint32_t burst, uint64_t t0,
                             uint64_t window, enum step_kind kind) {
  model m = make_model(t_ns, burst);
  uint64_t admitted = 0;
  uint64_t now = t0;
  for (;;) {
    tg_limit_decision d;
    for (;;) {
      d = acq_model(l, &m, key, 0, 1, now);
      if (!d.allowed) break;
      ++admitted;
    }
    if (now == t0 + window) break;
    {
      const tg_limit_decision want = model_decide(&m, burst, now, 0);
      const tg_limit_decision full = peek(l, key, 0, burst, now);
      const uint64_t to_full = full.retry_after_ns;
      uint64_t step;
      SAME_DECISION(full, want);
      REQUIRE(to_full >= d.retry_after_ns && to_full > 0);
      switch (kind) {
        case STEP_FINE:
          step = t_ns <= 64 ? 1 : t_ns / 7 + 1;
          if (step > to_full) step = to_full;
          break;
        case STEP_NEXT:
          step = d.retry_after_ns;
          break;
        case STEP_FULL:
          step = to_full;
          break;
        case STEP_RANDOM:
          step = rnd_in(1, to_full);
          break;
        default:
          step = rnd_in(to_full, to_full + 2 * t_ns * burst);
          break;
      }
      now = (t0 + window - now) > step ? now + step : t0 + window;
    }
  }
  return admitted;
}

typedef struct gcra_case {
  double rate;
  uint32_t burst;
  uint64_t t_ns; /* expected emission interval */
} gcra_case;

static const gcra_case k_cases[] = {
    {10, 5, 100000000},  {1000, 1, 1000000},   {3, 2, 333333333}, /* 333333333.3 rounds down */
    {7, 4, 142857143},                                            /* 142857142.9 rounds up */
    {1e9, 3, 1},         {0.5, 2, 2000000000}, {250000, 64, 4000},
    {1.5, 1, 666666667}, /* 666666666.7 */
};

static void test_gcra_windows(void) {
  size_t c;
  int kind;
  unsigned run = 0;
  for (c = 0; c < sizeof k_cases / sizeof k_cases[0]; ++c) {
    const gcra_case* gc = &k_cases[c];
    lim l = one_tier(gc->rate, gc->burst);
    const uint64_t T = gc->t_ns;
    /* Windows: exact multiples of T, one ns either side, and in between. */
    const uint64_t windows[] = {0,      1,          T - 1,         T, T + 1, 25 * T - 1,
                                25 * T, 25 * T + 1, 25 * T + T / 3};
    size_t w;
    for (w = 0; w < sizeof windows / sizeof windows[0]; ++w) {
      for (kind = STEP_FINE; kind <= STEP_COARSE; ++kind) {
        char key[32];
        const uint64_t t0 = 3 * SEC + 12345 + rnd_in(0, SEC);
        const uint64_t window = windows[w];
        uint64_t got;
        snprintf(key, sizeof key, "w%u", run++);
        CTX("rate=%g burst=%u T=%" PRIu64 " window=%" PRIu64 " step kind %d", gc->rate, gc->burst,
            T, window, kind);
        got = drain_window(&l, key, T, gc->burst, t0, window, (enum step_kind)kind);
        if (kind != STEP_COARSE) {
          CHECK_EQ(got, gc->burst + window / T);
        } else {
          CHECK(got <= gc->burst + window / T);
        }
      }
    }
    /* A long window: no drift over 1000 intervals. */
    CTX("rate=%g burst=%u long window", gc->rate, gc->burst);
    CHECK_EQ(drain_window(&l, "long", T, gc->burst, 2 * SEC, 1000 * T + T / 2, STEP_FULL),
             gc->burst + 1000);
    reconcile(&l);
    tg_limiter_free(l.h);
  }
}

/* After draining at t0, the k-th next token appears exactly at t0 + k*T:
 * not one ns before, and only one of it. */
static void test_gcra_boundaries(void) {
  size_t c;
  for (c = 0; c < sizeof k_cases / sizeof k_cases[0]; ++c) {
    const gcra_case* gc = &k_cases[c];
    lim l = one_tier(gc->rate, gc->burst);
    model m = make_model(gc->t_ns, gc->burst);
    const uint64_t T = gc->t_ns;
    const uint64_t t0 = 10 * SEC + 17;
    uint32_t j;
    uint64_t k;
    CTX("boundaries rate=%g burst=%u T=%" PRIu64, gc->rate, gc->burst, T);
    for (j = 0; j < gc->burst; ++j) CHECK_EQ(acq_model(&l, &m, "b", 0, 1, t0).allowed, 1);
    for (k = 1; k <= 40; ++k) {
      const uint64_t at = t0 + k * T;
      tg_limit_decision d = acq_model(&l, &m, "b", 0, 1, at - 1);
      CHECK_EQ(d.allowed, 0);
      CHECK_EQ(d.retry_after_ns, 1);
      d = acq_model(&l, &m, "b", 0, 1, at);
      CHECK_EQ(d.allowed, 1);
      CHECK_EQ(d.remaining, 0);
      d = acq_model(&l, &m, "b", 0, 1, at);
      CHECK_EQ(d.allowed, 0);
      CHECK_EQ(d.retry_after_ns, T);
      if (T > 1) {
        d = acq_model(&l, &m, "b", 0, 1, at + 1);
        CHECK_EQ(d.allowed, 0);
        CHECK_EQ(d.retry_after_ns, T - 1);
      }
    }
    reconcile(&l);
    tg_limiter_free(l.h);
  }
}

/* A rejection's retry_after is exact: the same request is admitted at
 * now + retry_after and rejected at now + retry_after - 1. Random traffic
 * of random costs, checked with peek (which changes nothing) and then with
 * acquire. */
static void test_retry_after_exact(void) {
  size_t c;
  for (c = 0; c < sizeof k_cases / sizeof k_cases[0]; ++c) {
    const gcra_case* gc = &k_cases[c];
    lim l = one_tier(gc->rate, gc->burst);
    model m = make_model(gc->t_ns, gc->burst);
    uint64_t now = 1 * SEC;
    int i;
    int rejections = 0;
    CTX("retry_after rate=%g burst=%u", gc->rate, gc->burst);
    for (i = 0; i < 400; ++i) {
      const uint32_t cost = (uint32_t)rnd_in(1, gc->burst);
      const tg_limit_decision d = acq_model(&l, &m, "r", 0, cost, now);
      if (!d.allowed) {
        const uint64_t r = d.retry_after_ns;
        tg_limit_decision p;
        ++rejections;
        REQUIRE(r > 0 && r != TG_RETRY_NEVER);
        p = peek(&l, "r", 0, cost, now + r - 1);
        CHECK_EQ(p.allowed, 0);
        CHECK_EQ(p.retry_after_ns, 1);
        p = peek(&l, "r", 0, cost, now + r);
        CHECK_EQ(p.allowed, 1);
        if (rnd() & 1) {
          CHECK_EQ(acq_model(&l, &m, "r", 0, cost, now + r - 1).allowed, 0);
        }
        CHECK_EQ(acq_model(&l, &m, "r", 0, cost, now + r).allowed, 1);
        now += r;
      }
      now += rnd_in(0, gc->t_ns / 2);
    }
    CHECK(rejections > 10);
    reconcile(&l);
    tg_limiter_free(l.h);
  }
}

/* Time that stands still or steps backwards never creates tokens. */
static void test_time_still_and_backwards(void) {
  size_t c;
  for (c = 0; c < sizeof k_cases / sizeof k_cases[0]; ++c) {
    const gcra_case* gc = &k_cases[c];
    lim l = one_tier(gc->rate, gc->burst);
    model m = make_model(gc->t_ns, gc->burst);
    const uint64_t T = gc->t_ns;
    const uint64_t t0 = 50 * SEC;
    uint64_t admitted = 0;
    int i;
    CTX("time still/backwards rate=%g burst=%u", gc->rate, gc->burst);
    while (acq_model(&l, &m, "k", 0, 1, t0).allowed) ++admitted;
    CHECK_EQ(admitted, gc->burst);
    for (i = 0; i < 50; ++i) CHECK_EQ(acq_model(&l, &m, "k", 0, 1, t0).allowed, 0);
    {
      static const uint64_t back[] = {1, 2, 1000, SEC, 49 * SEC};
      size_t j;
      for (j = 0; j < sizeof back / sizeof back[0]; ++j) {
        const tg_limit_decision d = acq_model(&l, &m, "k", 0, 1, t0 - back[j]);
        CHECK_EQ(d.allowed, 0);
        CHECK_EQ(d.retry_after_ns, T + back[j]); /* the wait grows as time goes back */
        CHECK_EQ(d.remaining, 0);
        CHECK_EQ(remaining(&l, "k", 0, t0 - back[j]), 0);
      }
      CHECK_EQ(acq_model(&l, &m, "k", 0, 1, 0).allowed, 0);
    }
    /* Forward again: exactly one token per T, as if time had never gone back. */
    CHECK_EQ(acq_model(&l, &m, "k", 0, 1, t0 + T - 1).allowed, 0);
    CHECK_EQ(acq_model(&l, &m, "k", 0, 1, t0 + T).allowed, 1);
    CHECK_EQ(acq_model(&l, &m, "k", 0, 1, t0 + T).allowed, 0);
    /* Interleaved forward and backward times never exceed the bound. */
    {
      uint64_t now_max = t0 + T;
      uint64_t got = 1;
      for (i = 0; i < 2000; ++i) {
        uint64_t now = now_max;
        if (rnd() % 3 == 0) {
          now = now_max - rnd_in(0, 3 * T < now_max ? 3 * T : now_max);
        } else {
          now_max += rnd_in(0, T);
          now = now_max;
        }
        if (acq_model(&l, &m, "k", 0, 1, now).allowed) ++got;
      }
      CHECK(got <= (now_max - t0) / T);
    }
    /* Huge times are accepted (clamped), never wrap. */
    {
      tg_limit_decision d;
      CHECK_RC(tg_limiter_acquire(l.h, "huge", 4, 0, 1, UINT64_MAX, &d), TG_OK);
      check_shape(&d);
      count(&l, &d);
      CHECK_EQ(d.allowed, 1);
      CHECK_RC(tg_limiter_acquire(l.h, "huge", 4, 0, 1, UINT64_MAX - 1, &d), TG_OK);
      check_shape(&d);
      count(&l, &d);
    }
    reconcile(&l);
    tg_limiter_free(l.h);
  }
}

static void test_cost(void) {
  lim l = one_tier(10, 5);
  model m = make_model(100000000, 5);
  const uint64_t now = 4 * SEC;
  tg_limit_decision d;
  CTX("cost > burst");
  d = acq_model(&l, &m, "c", 0, 6, now);
  CHECK_EQ(d.allowed, 0);
  CHECK_EQ(d.reason, TG_LIMIT_REASON_COST_EXCEEDS_BURST);
  CHECK_EQ(d.retry_after_ns, TG_RETRY_NEVER);
  CHECK_EQ(d.remaining, 5);
  d = acq_model(&l, &m, "c", 0, UINT32_MAX, now);
  CHECK_EQ(d.reason, TG_LIMIT_REASON_COST_EXCEEDS_BURST);
  CHECK_EQ(d.retry_after_ns, TG_RETRY_NEVER);
  d = peek(&l, "c", 0, 6, now);
  CHECK_EQ(d.allowed, 0);
  CHECK_EQ(d.reason, TG_LIMIT_REASON_COST_EXCEEDS_BURST);
  CHECK_EQ(d.retry_after_ns, TG_RETRY_NEVER);
  CHECK_EQ(remaining(&l, "c", 0, now), 5); /* nothing consumed */
  /* cost == burst on a full bucket is admitted; then a cost of 2 waits 2T. */
  CHECK_EQ(acq_model(&l, &m, "c", 0, 5, now).allowed, 1);
  d = acq_model(&l, &m, "c", 0, 2, now);
  CHECK_EQ(d.allowed, 0);
  CHECK_EQ(d.reason, TG_LIMIT_REASON_RATE);
  CHECK_EQ(d.retry_after_ns, 200000000);
  d = acq_model(&l, &m, "c", 0, 6, now);
  CHECK_EQ(d.reason, TG_LIMIT_REASON_COST_EXCEEDS_BURST);
  CHECK_EQ(d.remaining, 0);
  CHECK_EQ(acq_model(&l, &m, "c", 0, 2, now + 200000000).allowed, 1);
  reconcile(&l);
  tg_limiter_free(l.h);
}

/* peek and remaining change nothing: not the bucket, not the table, not
 * the counters; and peek says what acquire then decides. */
static void test_peek_and_remaining(void) {
  lim l = one_tier(10, 5);
  model m = make_model(100000000, 5);
  uint64_t now = 2 * SEC;
  int i;
  tg_limiter_stats before, after;
  CTX("peek/remaining");
  CHECK_EQ(remaining(&l, "unknown", 0, now), 5);
  before = stats(&l);
  for (i = 0; i < 100; ++i) {
    const tg_limit_decision d = peek(&l, "p", 0, 1, now);
    CHECK_EQ(d.allowed, 1);
    CHECK_EQ(d.remaining, 4);
    CHECK_EQ(remaining(&l, "p", 0, now), 5);
  }
  after = stats(&l);
  CHECK_EQ(after.keys, before.keys); /* peek never inserts */
  CHECK_EQ(after.admitted, before.admitted);
  CHECK_EQ(after.rejected, before.rejected);
  CHECK_EQ(acq_model(&l, &m, "p", 0, 3, now).allowed, 1);
  CHECK_EQ(remaining(&l, "p", 0, now), 2);
  CHECK_EQ(remaining(&l, "p", 0, now + 99999999), 2);
  CHECK_EQ(remaining(&l, "p", 0, now + 100000000), 3);
  CHECK_EQ(remaining(&l, "p", 0, now + 150000000), 3);
  CHECK_EQ(remaining(&l, "p", 0, now + 300000000), 5);
  CHECK_EQ(remaining(&l, "p", 0, now + 100 * SEC), 5); /* never above burst */
  /* peek == acquire, decision by decision, on random traffic. */
  for (i = 0; i < 500; ++i) {
    const uint32_t cost = (uint32_t)rnd_in(1, 6);
    const tg_limit_decision p = peek(&l, "p", 0, cost, now);
    const uint64_t r = remaining(&l, "p", 0, now);
    const tg_limit_decision a = acq_model(&l, &m, "p", 0, cost, now);
    SAME_DECISION(p, a);
    if (!a.allowed) CHECK_EQ(a.remaining, r);
    now += rnd_in(0, 60000000);
  }
  reconcile(&l);
  tg_limiter_free(l.h);
}

static void test_reserve_cancel(void) {
  lim l = one_tier(10, 5); /* T = 100 ms */
  const uint64_t T = 100000000;
  const uint64_t t0 = 20 * SEC;
  tg_reservation r, r2;
  tg_limit_decision d;
  CTX("reserve/cancel");
  memset(&r, 0xcd, sizeof r);
  CHECK_RC(tg_limiter_reserve(l.h, "k", 1, 0, 3, t0, &r, &d), TG_OK);
  check_shape(&d);
  count(&l, &d);
  CHECK_EQ(d.allowed, 1);
  CHECK_EQ(d.remaining, 2);
  CHECK_EQ(remaining(&l, "k", 0, t0), 2);
  CHECK_RC(tg_limiter_cancel(l.h, &r, t0), TG_OK);
  CHECK_EQ(remaining(&l, "k", 0, t0), 5);
  CHECK_EQ(stats(&l).cancelled, 1);

  /* Cancelling when the bucket refilled anyway adds nothing beyond burst. */
  CHECK_RC(tg_limiter_reserve(l.h, "k", 1, 0, 3, t0, &r, &d), TG_OK);
  count(&l, &d);
  CHECK_EQ(d.allowed, 1);
  CHECK_RC(tg_limiter_cancel(l.h, &r, t0 + 10 * T), TG_OK);
  CHECK_EQ(remaining(&l, "k", 0, t0 + 10 * T), 5);
  {
    int n = 0;
    while (acq(&l, "k", 0, 1, t0 + 10 * T).allowed) ++n;
    CHECK_EQ(n, 5);
  }
  /* Partly refilled: 3 taken at t1, 1 refilled by t1 + T, cancel gives 2. */
  {
    const uint64_t t1 = t0 + 20 * T;
    CHECK_RC(tg_limiter_reserve(l.h, "j", 1, 0, 3, t1, &r, &d), TG_OK);
    count(&l, &d);
    CHECK_EQ(remaining(&l, "j", 0, t1 + T), 3);
    CHECK_RC(tg_limiter_cancel(l.h, &r, t1 + T), TG_OK);
    CHECK_EQ(remaining(&l, "j", 0, t1 + T), 5);
    /* Two reservations, one cancelled: exactly the other's tokens stay spent. */
    CHECK_RC(tg_limiter_reserve(l.h, "j", 1, 0, 2, t1 + 2 * T, &r, &d), TG_OK);
    count(&l, &d);
    CHECK_RC(tg_limiter_reserve(l.h, "j", 1, 0, 1, t1 + 2 * T, &r2, &d), TG_OK);
    count(&l, &d);
    CHECK_EQ(remaining(&l, "j", 0, t1 + 2 * T), 2);
    CHECK_RC(tg_limiter_cancel(l.h, &r, t1 + 2 * T), TG_OK);
    CHECK_EQ(remaining(&l, "j", 0, t1 + 2 * T), 4);
  }
  /* A rejected reservation is zeroed and cancelling it is a no-op. */
  {
    const uint64_t t2 = t0 + 100 * T;
    const uint64_t cancelled = stats(&l).cancelled;
    CHECK_EQ(acq(&l, "z", 0, 5, t2).allowed, 1);
    memset(&r, 0xcd, sizeof r);
    CHECK_RC(tg_limiter_reserve(l.h, "z", 1, 0, 1, t2, &r, &d), TG_OK);
    count(&l, &d);
    CHECK_EQ(d.allowed, 0);
    CHECK_EQ(r.key_hash, 0);
    CHECK_EQ(r.own_ns, 0);
    CHECK_EQ(r.cost, 0);
    CHECK_EQ(r.tier, 0);
    CHECK_EQ(r.flags, 0);
    CHECK_RC(tg_limiter_cancel(l.h, &r, t2), TG_OK);
    CHECK_EQ(remaining(&l, "z", 0, t2), 0);
    CHECK_EQ(stats(&l).cancelled, cancelled);
    /* cost > burst: rejected, zeroed too. */
    memset(&r, 0xcd, sizeof r);
    CHECK_RC(tg_limiter_reserve(l.h, "y", 1, 0, 6, t2, &r, &d), TG_OK);
    count(&l, &d);
    CHECK_EQ(d.reason, TG_LIMIT_REASON_COST_EXCEEDS_BURST);
    CHECK_EQ(r.flags, 0);
    CHECK_EQ(r.own_ns, 0);
  }
  reconcile(&l);
  tg_limiter_free(l.h);
}

/* Shadow mode decides like an enforcing limiter fed the same traffic, but
 * admits: allowed = 1, the shadow flag and the reason it would have given. */
static void test_shadow(void) {
  tg_tier t;
  lim sh, en;
  uint64_t now = 30 * SEC;
  int i;
  t.name = "t";
  t.rate = 10;
  t.burst = 3;
  t.reserved = 0;
  CTX("shadow");
  sh = make_lim(&t, 1, 1024, TG_LIMITER_ON_FULL_REJECT, 1, 1.0, NULL);
  en = make_lim(&t, 1, 1024, TG_LIMITER_ON_FULL_REJECT, 0, 1.0, NULL);
  for (i = 0; i < 600; ++i) {
    const char* key = (i % 3) ? "a" : "b";
    const uint32_t cost = (uint32_t)rnd_in(1, 4); /* 4 > burst now and then */
    const tg_limit_decision e = acq(&en, key, 0, cost, now);
    const tg_limit_decision s = acq(&sh, key, 0, cost, now);
    CHECK_EQ(s.allowed, 1);
    CHECK_EQ(s.reason, e.reason);
    CHECK_EQ(s.remaining, e.remaining);
    CHECK_EQ(s.flags, e.allowed ? 0u : TG_LIMIT_FLAG_SHADOW);
    if (!e.allowed) CHECK_EQ(s.retry_after_ns, e.retry_after_ns);
    CHECK_EQ(remaining(&sh, key, 0, now), remaining(&en, key, 0, now));
    now += rnd_in(0, 50000000);
  }
  CHECK(en.rejected > 50);
  CHECK_EQ(sh.shadowed, en.rejected);
  {
    const tg_limiter_stats s = stats(&sh);
    CHECK_EQ(s.admitted, 600);
    CHECK_EQ(s.rejected, 0);
    CHECK_EQ(s.shadow_rejected, en.rejected);
  }
  reconcile(&sh);
  reconcile(&en);
  /* Off: it now enforces, from the same state as the enforcing limiter. */
  CHECK_RC(tg_limiter_set_shadow(sh.h, 0), TG_OK);
  for (i = 0; i < 200; ++i) {
    const uint32_t cost = (uint32_t)rnd_in(1, 3);
    const tg_limit_decision e = acq(&en, "a", 0, cost, now);
    const tg_limit_decision s = acq(&sh, "a", 0, cost, now);
    SAME_DECISION(s, e);
    now += rnd_in(0, 50000000);
  }
  /* And on again at run time. */
  CHECK_RC(tg_limiter_set_shadow(en.h, 1), TG_OK);
  {
    tg_limit_decision d;
    while (acq(&en, "q", 0, 1, now).flags == 0) {
    }
    d = acq(&en, "q", 0, 1, now);
    CHECK_EQ(d.allowed, 1);
    CHECK_EQ(d.flags, TG_LIMIT_FLAG_SHADOW);
    CHECK_EQ(d.reason, TG_LIMIT_REASON_RATE);
    CHECK(d.retry_after_ns > 0);
    /* Cost above burst in shadow mode: admitted, flagged, reason kept. */
    d = acq(&en, "q", 0, 4, now);
    CHECK_EQ(d.allowed, 1);
    CHECK_EQ(d.flags, TG_LIMIT_FLAG_SHADOW);
    CHECK_EQ(d.reason, TG_LIMIT_REASON_COST_EXCEEDS_BURST);
    /* peek says what acquire decides, shadow included. */
    {
      const tg_limit_decision p = peek(&en, "q", 0, 4, now);
      const tg_limit_decision a = acq(&en, "q", 0, 4, now);
      CTX("shadow: peek vs acquire, cost > burst");
      SAME_DECISION(p, a);
      CTX("shadow");
    }
  }
  reconcile(&sh);
  reconcile(&en);
  tg_limiter_free(sh.h);
  tg_limiter_free(en.h);
}

/* Under a multiplier m the buckets run on a virtual clock m times as fast as
 * now_ns: T = round(1e9 / rate) virtual ns. Waits are given back in real ns
 * rounded up: a request is always admitted at now + retry_after, and (the
 * rounding being at most one real quantum) rejected at
 * now + retry_after - q with q = 1 when m is a whole number, else
 * floor(1 / m) + 2. */
static uint64_t quantum(double m) {
  return (m == 1.0 || m == 2.0 || m == 4.0) ? 1 : (uint64_t)(1.0 / m) + 2;
}

/* Drains `key` as fast as allowed (stepping by retry_after) through
 * [t0, t0 + window] on a limiter whose multiplier is not 1; checks each
 * retry_after is enough and tight within the quantum. Returns the number
 * admitted. */
static uint64_t drain_scaled(lim* l, const char* key, uint32_t burst, uint64_t t0, uint64_t window,
                             double m) {
  uint64_t admitted = 0;
  uint64_t now = t0;
  const uint64_t q = quantum(m);
  for (;;) {
    tg_limit_decision d;
    for (;;) {
      d = acq(l, key, 0, 1, now);
      if (!d.allowed) break;
      ++admitted;
    }
    CHECK(d.retry_after_ns > 0 && d.retry_after_ns != TG_RETRY_NEVER);
    if (d.retry_after_ns > q) CHECK_EQ(peek(l, key, 0, 1, now + d.retry_after_ns - q).allowed, 0);
    if (now + d.retry_after_ns > t0 + window) break;
    now += d.retry_after_ns;
    CHECK_EQ(peek(l, key, 0, 1, now).allowed, 1);
  }
  (void)burst;
  return admitted;
}

static void test_multiplier(void) {
  tg_tier t;
  lim l;
  double m = 0;
  uint64_t now = 10 * SEC;
  t.name = "t";
  t.rate = 10; /* T = 100 ms at m = 1 */
  t.burst = 2;
  t.reserved = 0;
  CTX("multiplier");
  /* In the options: 10/s * 0.5 -> one token per 200 ms. */
  l = make_lim(&t, 1, 1024, TG_LIMITER_ON_FULL_REJECT, 0, 0.5, NULL);
  CHECK_RC(tg_limiter_get_multiplier(l.h, &m), TG_OK);
  CHECK(m == 0.5);
  CHECK_EQ(drain_scaled(&l, "a", 2, now, 2 * SEC, 0.5), 2 + 10);
  CHECK_EQ(drain_scaled(&l, "a2", 2, now, 2 * SEC + 199999999, 0.5), 2 + 10);
  /* At run time: 2x -> one token per 50 ms. */
  now += 10 * SEC;
  CHECK_RC(tg_limiter_set_multiplier(l.h, 2.0, now), TG_OK);
  CHECK_RC(tg_limiter_get_multiplier(l.h, &m), TG_OK);
  CHECK(m == 2.0);
  CHECK_EQ(drain_scaled(&l, "b", 2, now, 2 * SEC, 2.0), 2 + 40);
  /* Back to 1: exact again, decision by decision against the model. */
  now += 10 * SEC;
  CHECK_RC(tg_limiter_set_multiplier(l.h, 1.0, now), TG_OK);
  CHECK_EQ(drain_window(&l, "c", 100000000, 2, now, 2 * SEC, STEP_RANDOM), 2 + 20);
  CHECK_EQ(drain_window(&l, "c2", 100000000, 2, now, 2 * SEC, STEP_NEXT), 2 + 20);
  /* Multipliers that are not a power of two: the retry_after bounds hold
   * on random traffic, and the admitted count stays within one token of
   * burst + elapsed * rate * m. */
  {
    static const double ms[] = {0.3, 0.75, 1.5, 3.7};
    size_t i;
    for (i = 0; i < sizeof ms / sizeof ms[0]; ++i) {
      const double mm = ms[i];
      const uint64_t window = 10 * SEC;
      char key[16];
      uint64_t got;
      double ideal;
      now += 100 * SEC;
      CTX("multiplier %g", mm);
      CHECK_RC(tg_limiter_set_multiplier(l.h, mm, now), TG_OK);
      snprintf(key, sizeof key, "m%u", (unsigned)i);
      got = drain_scaled(&l, key, 2, now, window, mm);
      ideal = 2.0 + 10.0 * mm * (double)window / 1e9;
      CHECK((double)got <= ideal + 1e-6);
      CHECK((double)got >= ideal - 1.0);
    }
  }
  /* A change creates and destroys no tokens: at the instant of the change
   * every bucket holds what it held; only the refill speed changes. */
  {
    const uint64_t t1 = now + 1000 * SEC;
    tg_limit_decision d;
    CTX("multiplier change keeps the tokens");
    CHECK_RC(tg_limiter_set_multiplier(l.h, 1.0, t1), TG_OK);
    t.burst = 10; /* a new limiter: 10/s, burst 10 */
    reconcile(&l);
    tg_limiter_free(l.h);
    l = make_lim(&t, 1, 1024, TG_LIMITER_ON_FULL_REJECT, 0, 1.0, NULL);
    while (acq(&l, "drained", 0, 1, t1).allowed) {
    }
    CHECK_EQ(acq(&l, "half", 0, 5, t1).allowed, 1);
    CHECK_EQ(remaining(&l, "drained", 0, t1), 0);
    CHECK_EQ(remaining(&l, "half", 0, t1), 5);
    CHECK_EQ(remaining(&l, "full", 0, t1), 10);
    CHECK_RC(tg_limiter_set_multiplier(l.h, 0.5, t1), TG_OK); /* "a fast market" */
    CHECK_EQ(remaining(&l, "drained", 0, t1), 0);
    CHECK_EQ(remaining(&l, "half", 0, t1), 5);
    CHECK_EQ(remaining(&l, "full", 0, t1), 10);
    d = acq(&l, "drained", 0, 1, t1);
    CHECK_EQ(d.allowed, 0);
    CHECK_EQ(d.retry_after_ns, 200000000); /* the next token, at half speed */
    CHECK_RC(tg_limiter_set_multiplier(l.h, 4.0, t1), TG_OK);
    CHECK_EQ(remaining(&l, "drained", 0, t1), 0);
    CHECK_EQ(remaining(&l, "half", 0, t1), 5);
    d = acq(&l, "drained", 0, 1, t1);
    CHECK_EQ(d.retry_after_ns, 25000000);
    /* Half a second at 4x refills 20 tokens' worth: the bucket is full. */
    CHECK_EQ(remaining(&l, "drained", 0, t1 + 500000000), 10);
    CHECK_EQ(remaining(&l, "drained", 0, t1 + 24999999), 0);
    CHECK_EQ(remaining(&l, "drained", 0, t1 + 25000000), 1);
  }
  /* A rejected multiplier changes nothing. */
  CTX("multiplier rejected");
  CHECK_RC(tg_limiter_set_multiplier(l.h, 0.0, now), TG_ERANGE);
  CHECK_RC(tg_limiter_set_multiplier(l.h, 2e6, now), TG_ERANGE);
  CHECK_RC(tg_limiter_get_multiplier(l.h, &m), TG_OK);
  CHECK(m == 4.0);
  /* A tiny multiplier is either refused or honoured, never silently made
   * larger: 10/s * 1e-11 is one token per 1e19 ns. */
  {
    const uint64_t t2 = 3000 * SEC;
    const int rc = tg_limiter_set_multiplier(l.h, 1e-11, t2);
    CTX("multiplier 1e-11");
    CHECK(rc == TG_OK || rc == TG_ERANGE);
    if (rc == TG_OK) {
      tg_limit_decision d;
      while (acq(&l, "tiny", 0, 1, t2).allowed) {
      }
      d = acq(&l, "tiny", 0, 1, t2);
      CHECK_EQ(d.allowed, 0);
      CHECK(d.retry_after_ns >= 9900000000000000000ull); /* about 1e19 */
    }
  }
  reconcile(&l);
  tg_limiter_free(l.h);
}

static void test_parent(void) {
  tg_tier pt, ct[2];
  lim p, c;
  const uint64_t t0 = 40 * SEC;
  const uint64_t Tp = 100000000; /* parent: 10/s, burst 3 */
  tg_limit_decision d;
  tg_reservation r;
  pt.name = "global";
  pt.rate = 10;
  pt.burst = 3;
  pt.reserved = 0;
  ct[0].name = "account";
  ct[0].rate = 100;
  ct[0].burst = 10;
  ct[0].reserved = 0;
  ct[1].name = "vip";
  ct[1].rate = 1000;
  ct[1].burst = 20;
  ct[1].reserved = 0;
  CTX("parent");
  p = make_lim(&pt, 1, 1024, TG_LIMITER_ON_FULL_REJECT, 0, 1.0, NULL);
  c = make_lim(ct, 2, 1024, TG_LIMITER_ON_FULL_REJECT, 0, 1.0, p.h);
  CHECK_EQ(acq(&c, "a", 0, 1, t0).allowed, 1);
  CHECK_EQ(acq(&c, "b", 0, 1, t0).allowed, 1);
  CHECK_EQ(acq(&c, "a", 1, 1, t0).allowed, 1); /* tier 1 -> the parent's tier 0 */
  CHECK_EQ(remaining(&p, "", 0, t0), 0);
  CHECK_EQ(remaining(&c, "b", 0, t0), 9);
  d = acq(&c, "b", 0, 1, t0);
  CHECK_EQ(d.allowed, 0);
  CHECK_EQ(d.reason, TG_LIMIT_REASON_PARENT);
  CHECK_EQ(d.retry_after_ns, Tp);
  CHECK_EQ(remaining(&c, "b", 0, t0), 9); /* the child's token went back */
  /* The rejection reports what the key's bucket holds after the refund. */
  CHECK_EQ(d.remaining, 9);
  /* A new key rejected by the parent is left with a full bucket. */
  d = acq(&c, "new", 0, 2, t0);
  CHECK_EQ(d.reason, TG_LIMIT_REASON_PARENT);
  CHECK_EQ(d.retry_after_ns, 2 * Tp);
  CHECK_EQ(remaining(&c, "new", 0, t0), 10);
  CHECK_EQ(d.remaining, 10);
  /* peek agrees with acquire through the parent. */
  {
    const tg_limit_decision pk = peek(&c, "b", 0, 1, t0 + 1);
    const tg_limit_decision a = acq(&c, "b", 0, 1, t0 + 1);
    SAME_DECISION(pk, a);
  }
  /* A cost the child allows but the parent never can. */
  d = acq(&c, "a", 1, 5, t0 + 100 * Tp);
  CHECK_EQ(d.allowed, 0);
  CHECK_EQ(d.reason, TG_LIMIT_REASON_PARENT);
  CHECK_EQ(d.retry_after_ns, TG_RETRY_NEVER);
  CHECK_EQ(remaining(&c, "a", 1, t0 + 100 * Tp), 20);
  /* Parent counters include the child's requests offered to it: 3 admitted;
   * rejected "b", "new", "b" again and the cost of 5. */
  {
    const tg_limiter_stats ps = stats(&p);
    CHECK_EQ(ps.admitted, 3);
    CHECK_EQ(ps.rejected, 4);
  }
  /* The child rejecting consults (and consumes) nothing of the parent. */
  {
    const uint64_t t1 = t0 + 200 * Tp;
    d = acq(&c, "x", 0, 11, t1);
    CHECK_EQ(d.reason, TG_LIMIT_REASON_COST_EXCEEDS_BURST);
    CHECK_EQ(remaining(&p, "", 0, t1), 3);
    CHECK_EQ(stats(&p).rejected, 4);
  }
  /* Reservations span both levels. */
  {
    const uint64_t t2 = t0 + 400 * Tp;
    CHECK_RC(tg_limiter_reserve(c.h, "r", 1, 0, 2, t2, &r, &d), TG_OK);
    count(&c, &d);
    CHECK_EQ(d.allowed, 1);
    CHECK_EQ(remaining(&p, "", 0, t2), 1);
    CHECK_EQ(remaining(&c, "r", 0, t2), 8);
    CHECK_RC(tg_limiter_cancel(c.h, &r, t2), TG_OK);
    CHECK_EQ(remaining(&p, "", 0, t2), 3);
    CHECK_EQ(remaining(&c, "r", 0, t2), 10);
  }
  /* The child keeps the parent alive when the parent handle goes first. */
  tg_limiter_free(p.h);
  {
    const uint64_t t3 = t0 + 600 * Tp;
    int n = 0;
    while (acq(&c, "after", 0, 1, t3).allowed) ++n;
    CHECK_EQ(n, 3); /* still limited by the freed parent's bucket */
    d = acq(&c, "after", 0, 1, t3);
    CHECK_EQ(d.reason, TG_LIMIT_REASON_PARENT);
    CHECK_EQ(acq(&c, "after", 0, 1, t3 + Tp).allowed, 1);
  }
  reconcile(&c);
  tg_limiter_free(c.h);
}

/* A parent in shadow mode never rejects (it decides and counts), so the
 * child's own decision stands; peek and acquire agree. */
static void test_parent_in_shadow_mode(void) {
  tg_tier pt, ct;
  lim p, c;
  const uint64_t t0 = 40 * SEC;
  int i;
  pt.name = "global";
  pt.rate = 10;
  pt.burst = 2;
  pt.reserved = 0;
  ct.name = "account";
  ct.rate = 100;
  ct.burst = 10;
  ct.reserved = 0;
  CTX("parent in shadow mode");
  p = make_lim(&pt, 1, 1024, TG_LIMITER_ON_FULL_REJECT, 1, 1.0, NULL);
  c = make_lim(&ct, 1, 1024, TG_LIMITER_ON_FULL_REJECT, 0, 1.0, p.h);
  for (i = 0; i < 10; ++i) {
    const tg_limit_decision pk = peek(&c, "a", 0, 1, t0);
    const tg_limit_decision d = acq(&c, "a", 0, 1, t0);
    SAME_DECISION(d, pk);
    CHECK_EQ(d.allowed, 1);
    CHECK_EQ(d.reason, TG_LIMIT_REASON_NONE);
  }
  {
    const tg_limiter_stats ps = stats(&p);
    CHECK_EQ(ps.admitted, 10);
    CHECK_EQ(ps.rejected, 0);
    CHECK_EQ(ps.shadow_rejected, 8);
  }
  /* Reservations: cancelling one the parent only shadow-admitted gives the
   * parent nothing back (it took nothing). */
  {
    const uint64_t t1 = t0 + 100 * SEC;
    tg_reservation r[3];
    tg_limit_decision d;
    for (i = 0; i < 3; ++i) {
      CHECK_RC(tg_limiter_reserve(c.h, "r", 1, 0, 1, t1, &r[i], &d), TG_OK);
      count(&c, &d);
      CHECK_EQ(d.allowed, 1);
    }
    CHECK_EQ(remaining(&p, "", 0, t1), 0); /* the first two took the parent's burst */
    CHECK_EQ(remaining(&c, "r", 0, t1), 7);
    CHECK_RC(tg_limiter_cancel(c.h, &r[2], t1), TG_OK);
    CHECK_EQ(remaining(&c, "r", 0, t1), 8);
    CHECK_EQ(remaining(&p, "", 0, t1), 0); /* r[0] and r[1] still hold both tokens */
    CHECK_RC(tg_limiter_cancel(c.h, &r[1], t1), TG_OK);
    CHECK_EQ(remaining(&p, "", 0, t1), 1);
  }
  reconcile(&c);
  tg_limiter_free(c.h);
  tg_limiter_free(p.h);
}

/* A three-level hierarchy (account -> desk -> firm): a request must be
 * admitted by every level above it, as the parent's own acquire would be. */
static void test_parent_chain(void) {
  tg_tier gt, pt, ct;
  lim g, p, c;
  const uint64_t t0 = 40 * SEC;
  int i, n = 0;
  gt.name = "firm";
  gt.rate = 1;
  gt.burst = 2;
  gt.reserved = 0;
  pt.name = "desk";
  pt.rate = 100;
  pt.burst = 10;
  pt.reserved = 0;
  ct.name = "account";
  ct.rate = 100;
  ct.burst = 10;
  ct.reserved = 0;
  CTX("parent chain");
  g = make_lim(&gt, 1, 1024, TG_LIMITER_ON_FULL_REJECT, 0, 1.0, NULL);
  p = make_lim(&pt, 1, 1024, TG_LIMITER_ON_FULL_REJECT, 0, 1.0, g.h);
  c = make_lim(&ct, 1, 1024, TG_LIMITER_ON_FULL_REJECT, 0, 1.0, p.h);
  for (i = 0; i < 5; ++i) {
    const tg_limit_decision d = acq(&c, "acct", 0, 1, t0);
    if (d.allowed) ++n;
  }
  CHECK_EQ(n, 2); /* the firm's burst */
  CHECK_EQ(remaining(&g, "", 0, t0), 0);
  {
    /* The desk, asked directly, agrees that the firm is exhausted. */
    const tg_limit_decision d = acq(&p, "", 0, 1, t0);
    CHECK_EQ(d.allowed, 0);
    CHECK_EQ(d.reason, TG_LIMIT_REASON_PARENT);
  }
  tg_limiter_free(c.h);
  tg_limiter_free(p.h);
  tg_limiter_free(g.h);
}

/* Keys are bytes: NULL/0 and ""/0 are the one empty key; bytes after a NUL
 * count; long keys differing in their last byte are distinct. */
static void test_keys(void) {
  lim l = one_tier(10, 2);
  const uint64_t now = 9 * SEC;
  char big1[1000], big2[1000];
  tg_limit_decision d;
  CTX("keys");
  d = acq_bytes(&l, NULL, 0, 0, 2, now);
  CHECK_EQ(d.allowed, 1);
  d = acq_bytes(&l, "", 0, 0, 1, now); /* the same empty bucket */
  CHECK_EQ(d.allowed, 0);
  d = acq_bytes(&l, "xyz", 0, 0, 1, now); /* length 0: the empty key again */
  CHECK_EQ(d.allowed, 0);
  CHECK_EQ(acq_bytes(&l, "ab\0c", 4, 0, 2, now).allowed, 1);
  CHECK_EQ(acq_bytes(&l, "ab\0d", 4, 0, 2, now).allowed, 1);
  CHECK_EQ(acq_bytes(&l, "ab", 2, 0, 2, now).allowed, 1);
  CHECK_EQ(acq_bytes(&l, "ab\0c", 4, 0, 1, now).allowed, 0);
  memset(big1, 'k', sizeof big1);
  memcpy(big2, big1, sizeof big2);
  big2[999] = 'j';
  CHECK_EQ(acq_bytes(&l, big1, sizeof big1, 0, 2, now).allowed, 1);
  CHECK_EQ(acq_bytes(&l, big2, sizeof big2, 0, 2, now).allowed, 1);
  CHECK_EQ(acq_bytes(&l, big1, sizeof big1, 0, 1, now).allowed, 0);
  CHECK_EQ(acq_bytes(&l, big1, 999, 0, 2, now).allowed, 1); /* a prefix is another key */
  CHECK_EQ(stats(&l).keys, 7);
  reconcile(&l);
  tg_limiter_free(l.h);
}

/* A tiny table (capacity 1..8) filled with busy keys rejects a new key with
 * reason CAPACITY and the wait until a candidate slot goes idle; idle keys
 * are evicted for new ones; the table never holds more than `capacity` keys. */
static void test_capacity(void) {
  uint64_t cap;
  for (cap = 1; cap <= 8; ++cap) {
    tg_tier t;
    lim l;
    uint64_t slots, held = 0, min_wait = UINT64_MAX;
    const uint64_t t0 = 10 * SEC;
    const uint64_t T = SEC; /* 1/s, burst 4 */
    tg_limit_decision d;
    int i;
    char key[32];
    t.name = "t";
    t.rate = 1;
    t.burst = 4;
    t.reserved = 0;
    CTX("capacity %" PRIu64, cap);
    l = make_lim(&t, 1, cap, TG_LIMITER_ON_FULL_REJECT, 0, 1.0, NULL);
    slots = stats(&l).capacity;
    CHECK(slots >= cap);
    CHECK((slots & (slots - 1)) == 0);
    /* Busy keys: key 2 takes 1 token (idle again after 1 s), the others 2. */
    for (i = 0; i < 64; ++i) {
      const uint32_t cost = i == 2 ? 1 : 2;
      snprintf(key, sizeof key, "busy%d", i);
      d = acq(&l, key, 0, cost, t0);
      if (!d.allowed) break;
      ++held;
      if (cost * T < min_wait) min_wait = cost * T;
    }
    REQUIRE(i < 64);
    /* `key` is now the rejected newcomer. */
    CHECK_EQ(d.allowed, 0);
    CHECK_EQ(d.reason, TG_LIMIT_REASON_CAPACITY);
    CHECK_EQ(held, cap); /* "The table holds at most `capacity` keys." */
    CHECK_EQ(stats(&l).keys, held);
    CHECK(d.retry_after_ns != TG_RETRY_NEVER);
    if (slots == 8) {
      /* Two groups: every key's candidates are the whole table. */
      CHECK_EQ(d.retry_after_ns, min_wait);
    } else {
      CHECK(d.retry_after_ns == T || d.retry_after_ns == 2 * T);
    }
    {
      const uint64_t wait = d.retry_after_ns;
      tg_limit_decision p;
      /* peek agrees and inserts nothing; remaining of an unknown key is burst. */
      p = peek(&l, key, 0, 1, t0);
      CHECK_EQ(p.allowed, 0);
      CHECK_EQ(p.reason, TG_LIMIT_REASON_CAPACITY);
      CHECK_EQ(p.retry_after_ns, wait);
      CHECK_EQ(remaining(&l, key, 0, t0), 4);
      CHECK_EQ(stats(&l).keys, held);
      d = acq(&l, key, 0, 1, t0 + wait - 1);
      CHECK_EQ(d.allowed, 0);
      CHECK_EQ(d.reason, TG_LIMIT_REASON_CAPACITY);
      CHECK_EQ(d.retry_after_ns, 1);
      CHECK_EQ(stats(&l).evictions, 0);
      d = acq(&l, key, 0, 1, t0 + wait);
      CHECK_EQ(d.allowed, 1);
      CHECK_EQ(d.remaining, 3);
      CHECK_EQ(stats(&l).evictions, 1);
      CHECK_EQ(stats(&l).keys, held);
      if (slots == 8 && cap >= 3) {
        /* The only idle key was busy2: it was the one evicted, and coming
         * back it finds no idle slot until t0 + 2 s. */
        d = acq(&l, "busy2", 0, 1, t0 + T);
        CHECK_EQ(d.allowed, 0);
        CHECK_EQ(d.reason, TG_LIMIT_REASON_CAPACITY);
        CHECK_EQ(d.retry_after_ns, T);
        /* Existing keys are decided normally. */
        d = acq(&l, "busy0", 0, 2, t0 + T);
        CHECK_EQ(d.allowed, 1);
      }
    }
    /* Once every key is idle, any new key gets in, evicting one. */
    {
      uint64_t evictions = stats(&l).evictions;
      int k;
      for (k = 0; k < 200; ++k) {
        const uint64_t at = t0 + 1000 * T + (uint64_t)k * 10 * T; /* all earlier keys idle */
        snprintf(key, sizeof key, "later%d", k);
        d = acq(&l, key, 0, 1, at);
        CTX("capacity %" PRIu64 ": new key %d with every held key idle", cap, k);
        CHECK_EQ(d.allowed, 1);
        if (d.allowed) ++evictions;
        CHECK_EQ(stats(&l).keys, held);
        if (g_failed > 40) break;
      }
      CTX("capacity %" PRIu64, cap);
      CHECK_EQ(stats(&l).evictions, evictions);
    }
    reconcile(&l);
    tg_limiter_free(l.h);
  }
  /* Shadow mode: admitted, flagged, counted as capacity and shadow. */
  {
    tg_tier t;
    lim l;
    int i;
    char key[32];
    tg_limit_decision d;
    t.name = "t";
    t.rate = 1;
    t.burst = 1;
    t.reserved = 0;
    CTX("capacity, shadow");
    l = make_lim(&t, 1, 1, TG_LIMITER_ON_FULL_REJECT, 1, 1.0, NULL);
    for (i = 0; i < 64; ++i) {
      snprintf(key, sizeof key, "k%d", i);
      d = acq(&l, key, 0, 1, SEC);
      if (d.flags) break;
    }
    CHECK_EQ(i, 1);
    CHECK_EQ(d.allowed, 1);
    CHECK_EQ(d.flags, TG_LIMIT_FLAG_SHADOW);
    CHECK_EQ(d.reason, TG_LIMIT_REASON_CAPACITY);
    CHECK_EQ(stats(&l).capacity_rejected, 1);
    CHECK_EQ(stats(&l).shadow_rejected, 1);
    CHECK_EQ(stats(&l).keys, 1);
    reconcile(&l);
    tg_limiter_free(l.h);
  }
}

/* A table holding `capacity` keys, every one of them idle: a new key must
 * get in (idle buckets carry no state and are what the table evicts), never
 * a CAPACITY rejection, whichever slots its hash picks. 64 keys in 128 slots
 * leave some 8-slot candidate sets without any key in them. */
static void test_capacity_all_idle(void) {
  tg_tier t;
  lim l;
  const uint64_t t0 = 10 * SEC;
  uint64_t held = 0, rejected_probes = 0, never = 0;
  int i;
  char key[32];
  t.name = "t";
  t.rate = 1;
  t.burst = 1;
  t.reserved = 0;
  CTX("capacity: every held key idle");
  l = make_lim(&t, 1, 64, TG_LIMITER_ON_FULL_REJECT, 0, 1.0, NULL);
  for (i = 0; i < 100000 && held < 64; ++i) {
    snprintf(key, sizeof key, "held%d", i);
    if (acq(&l, key, 0, 1, t0).allowed) ++held;
  }
  CHECK_EQ(held, 64);
  CHECK_EQ(stats(&l).keys, 64);
  for (i = 0; i < 2000; ++i) {
    tg_limit_decision p;
    snprintf(key, sizeof key, "probe%d", i);
    p = peek(&l, key, 0, 1, t0 + 100 * SEC);
    if (!p.allowed) {
      ++rejected_probes;
      if (p.retry_after_ns == TG_RETRY_NEVER) ++never;
      if (rejected_probes == 1) {
        /* acquire agrees with peek: the key cannot get in. */
        const tg_limit_decision a = acq(&l, key, 0, 1, t0 + 100 * SEC);
        CHECK_EQ(a.allowed, 0);
        CHECK_EQ(a.reason, TG_LIMIT_REASON_CAPACITY);
        SAME_DECISION(p, a);
        fprintf(stderr,
                "capacity: key '%s' rejected (retry_after %" PRIu64
                ") with all 64 held keys idle\n",
                key, a.retry_after_ns);
      }
    }
  }
  CHECK_EQ(rejected_probes, 0);
  CHECK_EQ(never, 0); /* TG_RETRY_NEVER is for a cost above the burst only */
  reconcile(&l);
  tg_limiter_free(l.h);
}

/* ON_FULL_OVERFLOW: new keys that find no slot share one bucket per tier. */
static void test_overflow(void) {
  tg_tier t[2];
  lim l;
  const uint64_t t0 = 10 * SEC;
  const uint64_t T = SEC;
  tg_limit_decision d;
  t[0].name = "a";
  t[0].rate = 1;
  t[0].burst = 3;
  t[0].reserved = 0;
  t[1].name = "b";
  t[1].rate = 1;
  t[1].burst = 3;
  t[1].reserved = 0;
  CTX("overflow");
  l = make_lim(t, 2, 1, TG_LIMITER_ON_FULL_OVERFLOW, 0, 1.0, NULL);
  CHECK_EQ(acq(&l, "busy", 0, 1, t0).allowed, 1); /* the one key; idle again at t0 + 1 s */
  CHECK_EQ(stats(&l).keys, 1);
  d = acq(&l, "x", 0, 2, t0);
  CHECK_EQ(d.allowed, 1);
  CHECK_EQ(d.remaining, 1);
  d = acq(&l, "y", 0, 1, t0);
  CHECK_EQ(d.allowed, 1);
  CHECK_EQ(d.remaining, 0);
  d = acq(&l, "y", 0, 1, t0);
  CHECK_EQ(d.allowed, 0);
  CHECK_EQ(d.reason, TG_LIMIT_REASON_RATE);
  CHECK_EQ(d.retry_after_ns, T);
  {
    const tg_limit_decision p = peek(&l, "z", 0, 1, t0);
    CHECK_EQ(p.allowed, 0);
    CHECK_EQ(p.reason, TG_LIMIT_REASON_RATE);
    CHECK_EQ(p.retry_after_ns, T);
  }
  CHECK_EQ(remaining(&l, "x", 0, t0), 0);
  CHECK_EQ(remaining(&l, "never-seen", 0, t0), 0); /* it would share the overflow bucket */
  CHECK_EQ(remaining(&l, "busy", 0, t0), 2);       /* its own bucket */
  /* Tier b has its own overflow bucket; a reservation against it, cancelled,
   * gives it back. */
  {
    tg_reservation r;
    CHECK_RC(tg_limiter_reserve(l.h, "w", 1, 1, 2, t0, &r, &d), TG_OK);
    count(&l, &d);
    CHECK_EQ(d.allowed, 1);
    CHECK_EQ(d.remaining, 1);
    CHECK_EQ(remaining(&l, "w", 1, t0), 1);
    CHECK_EQ(remaining(&l, "other", 1, t0), 1); /* shared */
    CHECK_RC(tg_limiter_cancel(l.h, &r, t0), TG_OK);
    CHECK_EQ(remaining(&l, "w", 1, t0), 3);
    CHECK_EQ(stats(&l).cancelled, 1);
  }
  d = acq(&l, "x", 1, 3, t0);
  CHECK_EQ(d.allowed, 1);
  CHECK_EQ(stats(&l).capacity_rejected, 0);
  CHECK_EQ(stats(&l).keys, 1);
  {
    tg_reservation r;
    CHECK_RC(tg_limiter_reserve(l.h, "w", 1, 0, 1, t0 + T - 1, &r, &d), TG_OK);
    count(&l, &d);
    CHECK_EQ(d.allowed, 0); /* overflow bucket a: its next token at t0 + 1 s */
    CHECK_EQ(d.retry_after_ns, 1);
  }
  /* Once the slot is idle, a new key gets its own full bucket again. */
  d = acq(&l, "x", 0, 1, t0 + T);
  CHECK_EQ(d.allowed, 1);
  CHECK_EQ(d.remaining, 2);
  CHECK_EQ(stats(&l).evictions, 1);
  CHECK_EQ(stats(&l).keys, 1);
  reconcile(&l);
  tg_limiter_free(l.h);
}

/* acquire_many equals the same sequence of single acquires on an identical
 * limiter. */
static void test_acquire_many(void) {
  static const char* pool[] = {"",
                               "a",
                               "abc",
                               "1234567",
                               "12345678",
                               "123456789",
                               "0123456789abcde",
                               "0123456789abcdef",
                               "0123456789abcdefg",
                               "a key that is longer than forty bytes, certainly"};
  const size_t npool = sizeof pool / sizeof pool[0];
  tg_tier t[2];
  lim batch, single;
  uint64_t now = 60 * SEC;
  int round;
  t[0].name = "a";
  t[0].rate = 50;
  t[0].burst = 4;
  t[0].reserved = 0;
  t[1].name = "b";
  t[1].rate = 7;
  t[1].burst = 2;
  t[1].reserved = 0;
  CTX("acquire_many");
  batch = make_lim(t, 2, 4096, TG_LIMITER_ON_FULL_REJECT, 0, 1.0, NULL);
  single = make_lim(t, 2, 4096, TG_LIMITER_ON_FULL_REJECT, 0, 1.0, NULL);
  for (round = 0; round < 60; ++round) {
    uint8_t keys[64 * 64];
    uint32_t offsets[65], tiers[64], costs[64];
    tg_limit_decision out[64];
    const size_t n = (size_t)rnd_in(1, 64);
    const int defaults = round % 5 == 4; /* tiers and costs NULL */
    size_t i, pos = 0;
    for (i = 0; i < n; ++i) {
      const char* k = pool[rnd() % npool];
      offsets[i] = (uint32_t)pos;
      memcpy(keys + pos, k, strlen(k));
      pos += strlen(k);
      tiers[i] = (uint32_t)(rnd() % 2);
      costs[i] = (uint32_t)rnd_in(1, 5); /* 5 exceeds both bursts */
    }
    offsets[n] = (uint32_t)pos;
    memset(out, 0xab, sizeof out);
    CHECK_RC(tg_limiter_acquire_many(batch.h, keys, offsets, n, defaults ? NULL : tiers,
                                     defaults ? NULL : costs, now, out),
             TG_OK);
    for (i = 0; i < n; ++i) {
      const tg_limit_decision s = acq_bytes(&single, keys + offsets[i], offsets[i + 1] - offsets[i],
                                            defaults ? 0 : tiers[i], defaults ? 1 : costs[i], now);
      check_shape(&out[i]);
      count(&batch, &out[i]);
      CTX("acquire_many round %d item %zu", round, i);
      SAME_DECISION(out[i], s);
    }
    CTX("acquire_many");
    /* Mostly forward, sometimes back. */
    if (round % 7 == 6) {
      now -= rnd_in(0, 100000000);
    } else {
      now += rnd_in(0, 300000000);
    }
  }
  {
    /* n = 0 and all-empty keys with keys == NULL. */
    uint32_t offsets[4] = {0, 0, 0, 0};
    tg_limit_decision out[3];
    CHECK_RC(tg_limiter_acquire_many(batch.h, NULL, NULL, 0, NULL, NULL, now, NULL), TG_OK);
    size_t i;
    CHECK_RC(tg_limiter_acquire_many(batch.h, NULL, offsets, 3, NULL, NULL, now, out), TG_OK);
    for (i = 0; i < 3; ++i) {
      const tg_limit_decision s = acq_bytes(&single, NULL, 0, 0, 1, now);
      count(&batch, &out[i]);
      SAME_DECISION(out[i], s);
    }
  }
  {
    const tg_limiter_stats a = stats(&batch), b = stats(&single);
    CHECK_EQ(a.admitted, b.admitted);
    CHECK_EQ(a.rejected, b.rejected);
    CHECK_EQ(a.keys, b.keys);
    CHECK(a.admitted > 100);
    CHECK(a.rejected > 100);
  }
  reconcile(&batch);
  reconcile(&single);
  tg_limiter_free(batch.h);
  tg_limiter_free(single.h);
}

int main(void) {
  test_version_and_clock();
  test_defaults();
  test_tiers();
  test_gcra_windows();
  test_gcra_boundaries();
  test_retry_after_exact();
  test_time_still_and_backwards();
  test_cost();
  test_peek_and_remaining();
  test_reserve_cancel();
  test_shadow();
  test_multiplier();
  test_parent();
  test_parent_in_shadow_mode();
  test_parent_chain();
  test_keys();
  test_capacity();
  test_capacity_all_idle();
  test_overflow();
  test_acquire_many();
  return check_summary();
}
