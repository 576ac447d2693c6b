/* C ABI concurrency stress: threads on one key and on many keys with an
 * injected clock that advances, then exact reconciliation of the counters and
 * the GCRA bound; a breaker used by several threads while another forces
 * transitions. Also run under ThreadSanitizer. C99 + pthreads; the only
 * tollgate header used is tollgate.h. The shared clock uses the compiler's
 * __atomic builtins (GCC and Clang), as C99 has no <stdatomic.h>. */
#define _POSIX_C_SOURCE 200809L

#include <tollgate/tollgate.h>

#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK_PROGRAM "capi_threads"
#include "check.h"

/* Worker threads cannot use CHECK (its counters are not atomic): they count
 * their own violations, which the main thread then checks are zero. */

/* ------------------------------------------------------------------------ */
/* Shared clock and helpers                                                  */
/* ------------------------------------------------------------------------ */

static uint64_t g_clock;

static uint64_t clock_advance(uint64_t step) {
  return __atomic_add_fetch(&g_clock, step, __ATOMIC_RELAXED);
}
static uint64_t clock_read(void) { return __atomic_load_n(&g_clock, __ATOMIC_RELAXED); }

/* A limiter of one tier "t". */
static tg_limiter* new_tier_limiter(double rate, uint32_t burst, uint64_t capacity) {
  tg_tier t;
  tg_limiter_options o;
  t.name = "t";
  t.rate = rate;
  t.burst = burst;
  t.reserved = 0;
  tg_limiter_options_init(&o);
  o.tiers = &t;
  o.tier_count = 1;
  o.capacity = capacity;
  return NEW_LIMITER(&o);
}

/* A start gate, so that the workers really overlap. */
static int g_ready;
static int g_gate_size;

static void gate_wait(void) {
  const int size = __atomic_load_n(&g_gate_size, __ATOMIC_ACQUIRE);
  __atomic_add_fetch(&g_ready, 1, __ATOMIC_ACQ_REL);
  while (__atomic_load_n(&g_ready, __ATOMIC_ACQUIRE) < size) {
  }
}

static void run_threads(int n, void* (*fn)(void*), void* args, size_t arg_size) {
  pthread_t th[8];
  int i;
  REQUIRE(n <= 8);
  __atomic_store_n(&g_ready, 0, __ATOMIC_RELEASE);
  __atomic_store_n(&g_gate_size, n, __ATOMIC_RELEASE);
  for (i = 0; i < n; ++i) {
    REQUIRE(pthread_create(&th[i], NULL, fn, (char*)args + (size_t)i * arg_size) == 0);
  }
  for (i = 0; i < n; ++i) REQUIRE(pthread_join(th[i], NULL) == 0);
}

/* Shape of one decision; a worker counts the bad ones. */
static int bad_decision(const tg_limit_decision* d, uint32_t burst) {
  if (d->allowed != 0 && d->allowed != 1) return 1;
  if (d->remaining > burst) return 1;
  if (d->reserved != 0) return 1;
  if (d->allowed && !(d->flags & TG_LIMIT_FLAG_SHADOW)) {
    return d->reason != TG_LIMIT_REASON_NONE || d->retry_after_ns != 0 || d->flags != 0;
  }
  if (!d->allowed) {
    return d->flags != 0 || d->reason == TG_LIMIT_REASON_NONE ||
           (d->reason == TG_LIMIT_REASON_RATE && d->retry_after_ns == 0);
  }
  return d->reason == TG_LIMIT_REASON_NONE; /* shadow-admitted: says why */
}

/* ------------------------------------------------------------------------ */
/* Limiter: one key and many keys                                            */
/* ------------------------------------------------------------------------ */

#define MAX_KEYS 512

typedef struct lim_worker {
  tg_limiter* lim;
  uint32_t burst;
  int ops;
  uint64_t step; /* clock advance per operation */
  int nkeys;     /* 1: the one hot key */
  uint64_t seed;
  int use_batches; /* every 8th operation is an acquire_many of 4 */
  /* results */
  uint64_t offered, admitted, rejected, capacity_rejected, bad, errors;
  uint64_t per_key[MAX_KEYS];
} lim_worker;

static void key_name(int k, char* buf, size_t cap) { snprintf(buf, cap, "account-%04d", k); }

static void* lim_worker_main(void* arg) {
  lim_worker* w = (lim_worker*)arg;
  char key[32];
  int i;
  gate_wait();
  for (i = 0; i < w->ops; ++i) {
    const int k = w->nkeys == 1 ? 0 : (int)(rng_next(&w->seed) % (uint64_t)w->nkeys);
    key_name(k, key, sizeof key);
    if (w->use_batches && i % 8 == 7) {
      uint8_t keys[4 * 32];
      uint32_t offsets[5];
      int idx[4];
      tg_limit_decision out[4];
      size_t pos = 0;
      int j;
      for (j = 0; j < 4; ++j) {
        idx[j] = w->nkeys == 1 ? 0 : (int)(rng_next(&w->seed) % (uint64_t)w->nkeys);
        key_name(idx[j], key, sizeof key);
        offsets[j] = (uint32_t)pos;
        memcpy(keys + pos, key, strlen(key));
        pos += strlen(key);
      }
      offsets[4] = (uint32_t)pos;
      if (tg_limiter_acquire_many(w->lim, keys, offsets, 4, NULL, NULL, clock_advance(w->step),
                                  out) != TG_OK) {
        ++w->errors;
        continue;
      }
      for (j = 0; j < 4; ++j) {
        ++w->offered;
        w->bad += (uint64_t)bad_decision(&out[j], w->burst);
        if (out[j].allowed) {
          ++w->admitted;
          ++w->per_key[idx[j]];
        } else {
          ++w->rejected;
          if (out[j].reason == TG_LIMIT_REASON_CAPACITY) ++w->capacity_rejected;
        }
      }
    } else {
      tg_limit_decision d;
      if (tg_limiter_acquire(w->lim, key, strlen(key), 0, 1, clock_advance(w->step), &d) != TG_OK) {
        ++w->errors;
        continue;
      }
      ++w->offered;
      w->bad += (uint64_t)bad_decision(&d, w->burst);
      if (d.allowed) {
        ++w->admitted;
        ++w->per_key[k];
      } else {
        ++w->rejected;
        if (d.reason == TG_LIMIT_REASON_CAPACITY) ++w->capacity_rejected;
      }
    }
  }
  return NULL;
}

/* Runs `nthreads` workers and checks: no call failed, every decision well
 * formed, admitted + rejected = offered (and = the limiter's counters), and
 * when `check_bound`, each key admitted at most burst + floor(elapsed / T). */
static void limiter_stress(const char* name, int nthreads, int nkeys, double rate, uint64_t t_ns,
                           uint32_t burst, uint64_t capacity, int ops, uint64_t step,
                           int check_bound) {
  static lim_worker w[8];
  tg_limiter* lim = new_tier_limiter(rate, burst, capacity);
  const uint64_t start = 1000000000;
  uint64_t offered = 0, admitted = 0, rejected = 0, capacity_rejected = 0, bad = 0, errors = 0;
  uint64_t elapsed, bound, worst = 0;
  uint64_t per_key[MAX_KEYS];
  tg_limiter_stats s;
  int i, k;
  CTX("%s: %d threads, %d keys", name, nthreads, nkeys);
  REQUIRE(nkeys <= MAX_KEYS);
  memset(w, 0, sizeof w);
  memset(per_key, 0, sizeof per_key);
  __atomic_store_n(&g_clock, start, __ATOMIC_RELAXED);
  for (i = 0; i < nthreads; ++i) {
    w[i].lim = lim;
    w[i].burst = burst;
    w[i].ops = ops;
    w[i].step = step;
    w[i].nkeys = nkeys;
    w[i].seed = 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1) + (uint64_t)nkeys;
    w[i].use_batches = 1;
  }
  run_threads(nthreads, lim_worker_main, w, sizeof w[0]);
  for (i = 0; i < nthreads; ++i) {
    offered += w[i].offered;
    admitted += w[i].admitted;
    rejected += w[i].rejected;
    capacity_rejected += w[i].capacity_rejected;
    bad += w[i].bad;
    errors += w[i].errors;
    for (k = 0; k < nkeys; ++k) per_key[k] += w[i].per_key[k];
  }
  CHECK_EQ(errors, 0);
  CHECK_EQ(bad, 0);
  CHECK_EQ(admitted + rejected, offered);
  CHECK(tg_limiter_stats_get(lim, &s) == TG_OK);
  CHECK_EQ(s.admitted, admitted);
  CHECK_EQ(s.rejected, rejected);
  CHECK_EQ(s.admitted + s.rejected, offered);
  CHECK_EQ(s.capacity_rejected, capacity_rejected);
  CHECK_EQ(s.shadow_rejected, 0);
  CHECK(s.keys <= s.capacity);
  CHECK(s.keys <= capacity); /* never more keys than configured */
  elapsed = clock_read() - start;
  bound = burst + elapsed / t_ns;
  for (k = 0; k < nkeys; ++k) {
    if (per_key[k] > worst) worst = per_key[k];
    if (check_bound && per_key[k] > bound) {
      char m[200];
      snprintf(m, sizeof m, "key %d admitted %" PRIu64 " > burst + elapsed / T = %" PRIu64, k,
               per_key[k], bound);
      report_failure(__FILE__, __LINE__, m);
    }
  }
  if (check_bound) {
    CHECK(worst > burst); /* the run was long enough to refill */
    if (nkeys <= (int)s.capacity) CHECK_EQ(s.keys, (uint64_t)nkeys);
  }
  tg_limiter_free(lim);
}

/* ------------------------------------------------------------------------ */
/* Limiter: reservations, cancels, shadow and multiplier changes at once     */
/* ------------------------------------------------------------------------ */

typedef struct mix_worker {
  tg_limiter* lim;
  int ops;
  int shadow_phase; /* 0: turns shadow off at i % 2000 == 0; else on at that phase */
  uint64_t seed;
  uint64_t offered, admitted, rejected, shadowed, cancelled, bad, errors;
} mix_worker;

static int g_mix_done;

static void* mix_worker_main(void* arg) {
  mix_worker* w = (mix_worker*)arg;
  char key[32];
  int i;
  gate_wait();
  for (i = 0; i < w->ops; ++i) {
    const int k = (int)(rng_next(&w->seed) % 16);
    const uint32_t cost = (uint32_t)(1 + rng_next(&w->seed) % 3);
    const uint64_t now = clock_advance(100);
    tg_reservation res;
    tg_limit_decision d;
    key_name(k, key, sizeof key);
    if (tg_limiter_reserve(w->lim, key, strlen(key), 0, cost, now, &res, &d) != TG_OK) {
      ++w->errors;
      continue;
    }
    ++w->offered;
    w->bad += (uint64_t)bad_decision(&d, 8);
    if (d.allowed) {
      ++w->admitted;
    } else {
      ++w->rejected;
    }
    if (d.flags & TG_LIMIT_FLAG_SHADOW) ++w->shadowed;
    if (d.allowed && (rng_next(&w->seed) & 1)) {
      if (tg_limiter_cancel(w->lim, &res, clock_advance(10)) != TG_OK) ++w->errors;
      /* A shadow-admitted reservation took nothing: its cancel is a no-op. */
      if (!(d.flags & TG_LIMIT_FLAG_SHADOW)) ++w->cancelled;
    }
    /* The toggler may be descheduled for the whole run: the workers also
     * switch shadow mode, so that both modes surely occur. */
    if (i % 2000 == w->shadow_phase) {
      if (tg_limiter_set_shadow(w->lim, w->shadow_phase != 0) != TG_OK) ++w->errors;
    }
    if (i % 16 == 0) {
      uint64_t r = 0;
      if (tg_limiter_remaining(w->lim, key, strlen(key), 0, clock_read(), &r) != TG_OK) {
        ++w->errors;
      }
      if (r > 8) ++w->bad; /* never more than the burst, cancels included */
    }
  }
  return NULL;
}

static void* mix_toggler_main(void* arg) {
  tg_limiter* lim = (tg_limiter*)arg;
  static const double mults[] = {0.5, 1.0, 2.0, 0.25};
  unsigned i = 0;
  while (!__atomic_load_n(&g_mix_done, __ATOMIC_ACQUIRE)) {
    double m = 0;
    tg_limiter_stats s;
    (void)tg_limiter_set_multiplier(lim, mults[i % 4], clock_read());
    (void)tg_limiter_set_shadow(lim, (int)((i / 3) % 2));
    (void)tg_limiter_get_multiplier(lim, &m);
    (void)tg_limiter_stats_get(lim, &s);
    ++i;
  }
  return NULL;
}

static void limiter_mixed(void) {
  static mix_worker w[3];
  tg_limiter* lim = new_tier_limiter(2e5, 8, 1024);
  pthread_t toggler;
  tg_limiter_stats s;
  uint64_t offered = 0, admitted = 0, rejected = 0, shadowed = 0, cancelled = 0, bad = 0,
           errors = 0;
  int i;
  CTX("limiter: reserve/cancel with shadow and multiplier changes");
  memset(w, 0, sizeof w);
  __atomic_store_n(&g_clock, 5000000000ull, __ATOMIC_RELAXED);
  __atomic_store_n(&g_mix_done, 0, __ATOMIC_RELEASE);
  REQUIRE(pthread_create(&toggler, NULL, mix_toggler_main, lim) == 0);
  for (i = 0; i < 3; ++i) {
    w[i].lim = lim;
    w[i].ops = 100000;
    w[i].shadow_phase = i == 1 ? 1000 : 0;
    w[i].seed = 0x1234567ull * (uint64_t)(i + 7);
  }
  run_threads(3, mix_worker_main, w, sizeof w[0]);
  __atomic_store_n(&g_mix_done, 1, __ATOMIC_RELEASE);
  REQUIRE(pthread_join(toggler, NULL) == 0);
  for (i = 0; i < 3; ++i) {
    offered += w[i].offered;
    admitted += w[i].admitted;
    rejected += w[i].rejected;
    shadowed += w[i].shadowed;
    cancelled += w[i].cancelled;
    bad += w[i].bad;
    errors += w[i].errors;
  }
  CHECK_EQ(errors, 0);
  CHECK_EQ(bad, 0);
  CHECK(tg_limiter_stats_get(lim, &s) == TG_OK);
  CHECK_EQ(s.admitted, admitted);
  CHECK_EQ(s.rejected, rejected);
  CHECK_EQ(s.admitted + s.rejected, offered);
  CHECK_EQ(s.shadow_rejected, shadowed);
  CHECK_EQ(s.cancelled, cancelled);
  CHECK(shadowed > 0);
  CHECK(rejected > 0);
  {
    /* Afterwards every bucket holds at most its burst. */
    char key[32];
    int k;
    for (k = 0; k < 16; ++k) {
      uint64_t r = 0;
      key_name(k, key, sizeof key);
      CHECK(tg_limiter_remaining(lim, key, strlen(key), 0, clock_read(), &r) == TG_OK);
      CHECK(r <= 8);
    }
  }
  tg_limiter_free(lim);
}

/* ------------------------------------------------------------------------ */
/* Breaker                                                                   */
/* ------------------------------------------------------------------------ */

#define BRK_MAX_IN_FLIGHT 3
#define BRK_SLOW_NS 100

static uint32_t g_events;
static uint32_t g_bad_events;
static int32_t g_our_in_flight; /* <= the library's, so never above the bound */
static uint32_t g_over_bound;
static int g_brk_done;

static void on_event(void* user, const tg_breaker_event* ev) {
  (void)user;
  __atomic_add_fetch(&g_events, 1, __ATOMIC_RELAXED);
  if (ev->from_state == ev->to_state || ev->from_state < 0 || ev->from_state > 6 ||
      ev->to_state < 0 || ev->to_state > 6) {
    __atomic_add_fetch(&g_bad_events, 1, __ATOMIC_RELAXED);
  }
}

typedef struct brk_worker {
  tg_breaker* b;
  int ops;
  uint64_t seed;
  uint64_t attempts, admitted, rejected, bulkhead, outcomes[3], slow, errors, bad;
} brk_worker;

static void note_admitted(brk_worker* w) {
  const int32_t n = __atomic_add_fetch(&g_our_in_flight, 1, __ATOMIC_RELAXED);
  if (n > BRK_MAX_IN_FLIGHT) __atomic_add_fetch(&g_over_bound, 1, __ATOMIC_RELAXED);
  ++w->admitted;
}

static void tally_permit(brk_worker* w, const tg_breaker_permit* p) {
  ++w->attempts;
  if (p->allowed != 0 && p->allowed != 1) ++w->bad;
  if (p->allowed) {
    if (p->reason != TG_BREAKER_REASON_NONE) ++w->bad;
    note_admitted(w);
  } else {
    ++w->rejected;
    if (p->reason == TG_BREAKER_REASON_BULKHEAD_FULL) ++w->bulkhead;
    if (p->reason == TG_BREAKER_REASON_NONE) ++w->bad;
  }
}

static void choose_outcome(brk_worker* w, int32_t* outcome, uint64_t* latency) {
  *outcome = (int32_t)(rng_next(&w->seed) % 3);
  *latency = rng_next(&w->seed) % (2 * BRK_SLOW_NS);
  ++w->outcomes[*outcome];
  if (*outcome != TG_OUTCOME_IGNORED && *latency >= BRK_SLOW_NS) ++w->slow;
  __atomic_sub_fetch(&g_our_in_flight, 1, __ATOMIC_RELAXED); /* before the library frees */
}

static void* brk_worker_main(void* arg) {
  brk_worker* w = (brk_worker*)arg;
  tg_breaker_permit held[BRK_MAX_IN_FLIGHT + 1];
  int nheld = 0;
  int i;
  gate_wait();
  for (i = 0; i < w->ops; ++i) {
    const uint64_t r = rng_next(&w->seed) % 8;
    /* The controller may be descheduled in FORCED_OPEN for a long while:
     * each worker also closes the breaker now and then. */
    if (i % 3000 == 2999 && tg_breaker_transition(w->b, TG_BREAKER_CLOSED, clock_read()) != TG_OK) {
      ++w->errors;
    }
    /* Up to one more than the bulkhead admits, so that even a worker
     * running alone meets BULKHEAD_FULL. */
    if (nheld > 0 && (r < 3 || nheld > BRK_MAX_IN_FLIGHT)) {
      /* Finish the oldest call. */
      int32_t outcome;
      uint64_t latency;
      choose_outcome(w, &outcome, &latency);
      if (tg_breaker_record(w->b, &held[0], outcome, latency, clock_advance(7)) != TG_OK) {
        ++w->errors;
      }
      memmove(held, held + 1, (size_t)(nheld - 1) * sizeof held[0]);
      --nheld;
    } else if (r == 7 && nheld < BRK_MAX_IN_FLIGHT) {
      /* A batch of two, recorded at once. */
      tg_breaker_permit p[2];
      int32_t outcomes[2];
      uint64_t lat[2];
      int j, n = 0;
      if (tg_breaker_acquire_many(w->b, 2, clock_advance(7), p) != TG_OK) {
        ++w->errors;
        continue;
      }
      for (j = 0; j < 2; ++j) {
        tally_permit(w, &p[j]);
        outcomes[j] = TG_OUTCOME_SUCCESS;
        lat[j] = 0;
        if (p[j].allowed) {
          choose_outcome(w, &outcomes[j], &lat[j]);
          ++n;
        }
      }
      /* Rejected permits in the batch are recorded too: a no-op. */
      if (tg_breaker_record_many(w->b, p, outcomes, lat, 2, clock_advance(7)) != TG_OK) {
        ++w->errors;
      }
      (void)n;
    } else {
      tg_breaker_permit p;
      if (tg_breaker_acquire(w->b, clock_advance(7), &p) != TG_OK) {
        ++w->errors;
        continue;
      }
      tally_permit(w, &p);
      if (p.allowed) {
        if (nheld >= BRK_MAX_IN_FLIGHT) ++w->bad; /* more than the bulkhead allows */
        held[nheld++] = p;
      }
    }
  }
  while (nheld > 0) {
    int32_t outcome;
    uint64_t latency;
    choose_outcome(w, &outcome, &latency);
    if (tg_breaker_record(w->b, &held[nheld - 1], outcome, latency, clock_advance(7)) != TG_OK) {
      ++w->errors;
    }
    --nheld;
  }
  return NULL;
}

static void* brk_controller_main(void* arg) {
  tg_breaker* b = (tg_breaker*)arg;
  uint64_t seed = 0xfeedfacecafebeefull;
  while (!__atomic_load_n(&g_brk_done, __ATOMIC_ACQUIRE)) {
    const int target = (int)(rng_next(&seed) % 7);
    tg_breaker_stats s;
    int st, i;
    (void)tg_breaker_transition(b, target, clock_advance(3));
    for (i = 0; i < 200; ++i) {
      (void)tg_breaker_state(b, &st);
      if (i % 50 == 0) (void)tg_breaker_stats_get(b, clock_read(), &s);
    }
  }
  return NULL;
}

static void breaker_stress(int window_type) {
  static brk_worker w[3];
  tg_breaker_options o;
  tg_breaker* b = NULL;
  pthread_t controller;
  tg_breaker_stats s;
  uint64_t attempts = 0, admitted = 0, rejected = 0, bulkhead = 0, slow = 0, errors = 0, bad = 0;
  uint64_t outcomes[3] = {0, 0, 0};
  int i, j;
  CTX("breaker: %s window, 3 workers and a controller",
      window_type == TG_WINDOW_COUNT ? "count" : "time");
  tg_breaker_options_init(&o);
  o.window_type = (uint32_t)window_type;
  o.window_size = window_type == TG_WINDOW_COUNT ? 16 : 8;
  o.bucket_ns = 500;
  o.minimum_calls = 4;
  o.failure_rate_threshold = 50;
  o.slow_rate_threshold = 50;
  o.slow_call_ns = BRK_SLOW_NS;
  o.open_ns = 2000;
  o.backoff_multiplier = 2;
  o.max_open_ns = 20000;
  o.half_open_probes = 3;
  o.max_in_flight = BRK_MAX_IN_FLIGHT;
  o.max_half_open_ns = 5000;
  REQUIRE(tg_breaker_new(&o, &b, NULL) == TG_OK);
  __atomic_store_n(&g_events, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&g_bad_events, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&g_our_in_flight, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&g_over_bound, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&g_brk_done, 0, __ATOMIC_RELEASE);
  __atomic_store_n(&g_clock, 1000000ull, __ATOMIC_RELAXED);
  REQUIRE(tg_breaker_set_event_callback(b, on_event, NULL) == TG_OK);
  memset(w, 0, sizeof w);
  for (i = 0; i < 3; ++i) {
    w[i].b = b;
    w[i].ops = 150000;
    w[i].seed = 0xabcdef12345ull * (uint64_t)(i + 3) + (uint64_t)window_type;
  }
  REQUIRE(pthread_create(&controller, NULL, brk_controller_main, b) == 0);
  run_threads(3, brk_worker_main, w, sizeof w[0]);
  __atomic_store_n(&g_brk_done, 1, __ATOMIC_RELEASE);
  REQUIRE(pthread_join(controller, NULL) == 0);
  for (i = 0; i < 3; ++i) {
    attempts += w[i].attempts;
    admitted += w[i].admitted;
    rejected += w[i].rejected;
    bulkhead += w[i].bulkhead;
    slow += w[i].slow;
    errors += w[i].errors;
    bad += w[i].bad;
    for (j = 0; j < 3; ++j) outcomes[j] += w[i].outcomes[j];
  }
  CHECK_EQ(errors, 0);
  CHECK_EQ(bad, 0);
  CHECK_EQ(__atomic_load_n(&g_over_bound, __ATOMIC_RELAXED), 0);
  CHECK_EQ(__atomic_load_n(&g_our_in_flight, __ATOMIC_RELAXED), 0);
  CHECK(tg_breaker_stats_get(b, clock_read(), &s) == TG_OK);
  CHECK_EQ(s.admitted + s.rejected, attempts);
  CHECK_EQ(s.admitted, admitted);
  CHECK_EQ(s.rejected, rejected);
  CHECK_EQ(s.bulkhead_rejected, bulkhead);
  CHECK_EQ(s.in_flight, 0);
  CHECK_EQ(s.successes, outcomes[TG_OUTCOME_SUCCESS]);
  CHECK_EQ(s.failures, outcomes[TG_OUTCOME_FAILURE]);
  CHECK_EQ(s.ignored, outcomes[TG_OUTCOME_IGNORED]);
  CHECK_EQ(s.slow_calls, slow);
  CHECK_EQ(s.transitions, __atomic_load_n(&g_events, __ATOMIC_RELAXED));
  CHECK_EQ(__atomic_load_n(&g_bad_events, __ATOMIC_RELAXED), 0);
  CHECK(s.transitions > 10);
  CHECK(bulkhead > 0);
  CHECK(admitted > 0 && rejected > 0);
  /* Still a working breaker. */
  CHECK(tg_breaker_transition(b, TG_BREAKER_CLOSED, clock_read()) == TG_OK);
  {
    tg_breaker_permit p;
    CHECK(tg_breaker_acquire(b, clock_read(), &p) == TG_OK);
    CHECK_EQ(p.allowed, 1);
    CHECK(tg_breaker_record(b, &p, TG_OUTCOME_SUCCESS, 0, clock_read()) == TG_OK);
  }
  tg_breaker_free(b);
}

int main(void) {
  int n;
  /* One hot key: T = 1000 ns, burst 100; the clock moves 250 ns per
   * operation, so about a quarter of the requests can be admitted. */
  for (n = 2; n <= 4; n += 2) {
    limiter_stress("one key", n, 1, 1e6, 1000, 100, 1024, 150000, 250, 1);
  }
  /* Many keys, each within its own bound. */
  limiter_stress("many keys", 4, 512, 1e5, 10000, 4, 65536, 100000, 50, 1);
  /* A table far too small: inserts, evictions and capacity rejections race. */
  limiter_stress("tiny table", 3, 64, 1e6, 1000, 2, 1, 100000, 20, 0);
  limiter_stress("small table", 4, 200, 1e6, 1000, 2, 64, 60000, 20, 0);
  limiter_mixed();
  breaker_stress(TG_WINDOW_COUNT);
  breaker_stress(TG_WINDOW_TIME);
  return check_summary();
}
