/*
 * gateway_demo - a small order-server host driving tollgate through its C ABI.
 *
 * The host owns the loop and the clock; tollgate only decides. Three accounts
 * in two tiers share a global limit; every order to the venue passes the
 * venue's circuit breaker. For two seconds of simulated time orders arrive
 * every 250 us; between 0.5 s and 0.9 s the venue fails most calls, the
 * breaker opens, probes, and closes again once the venue recovers. The demo
 * prints the state changes as they happen and a summary of every decision.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <tollgate/tollgate.h>

#define MS UINT64_C(1000000)

static const char* state_name(int s) {
  static const char* names[] = {"closed",        "open",     "half-open",   "forced-open",
                                "forced-closed", "disabled", "metrics-only"};
  return s >= 0 && s <= 6 ? names[s] : "?";
}

static void on_breaker_event(void* user, const tg_breaker_event* ev) {
  const char* venue = (const char*)user;
  printf("  t=%7.1f ms  venue %s: %s -> %s", (double)ev->now_ns / 1e6, venue,
         state_name(ev->from_state), state_name(ev->to_state));
  if (ev->failure_rate >= 0) printf("  (failure rate %.0f%%)", ev->failure_rate);
  if (ev->open_ns != 0) printf("  open for %" PRIu64 " ms", ev->open_ns / MS);
  printf("\n");
}

static int check(int rc, const char* what, const tg_error* err) {
  if (rc != TG_OK) {
    fprintf(stderr, "%s failed: %s %s\n", what, tg_status_str(rc), err ? err->message : "");
  }
  return rc;
}

/* The venue: fails 80% of calls between 500 ms and 900 ms. */
static int venue_call(uint64_t now, unsigned* seed, uint64_t* latency) {
  *seed = *seed * 1103515245u + 12345u;
  const unsigned roll = (*seed >> 16) % 100;
  const int degraded = now >= 500 * MS && now < 900 * MS;
  *latency = (uint64_t)(degraded ? 40 : 2) * 1000u * (1 + roll % 5);
  return degraded && roll < 80 ? TG_OUTCOME_FAILURE : TG_OUTCOME_SUCCESS;
}

int main(void) {
  tg_error err;
  printf("tollgate %s (header %s): order-gateway demo\n", tg_version_string(), TG_VERSION_STRING);
  if (tg_version_number() != TG_VERSION_NUMBER) {
    fprintf(stderr, "library version %u does not match header %d\n", tg_version_number(),
            TG_VERSION_NUMBER);
    return 1;
  }

  /* A global limit above per-account limits, in two tiers. */
  tg_limiter_options gopts;
  tg_limiter_options_init(&gopts);
  tg_tier global_tier[] = {{"global", 2000.0, 50, 0}};
  gopts.tiers = global_tier;
  gopts.tier_count = 1;
  tg_limiter* global = NULL;
  if (check(tg_limiter_new(&gopts, &global, &err), "tg_limiter_new(global)", &err)) return 1;

  tg_limiter_options aopts;
  tg_limiter_options_init(&aopts);
  tg_tier tiers[] = {{"retail", 500.0, 20, 0}, {"pro", 2000.0, 50, 0}};
  aopts.tiers = tiers;
  aopts.tier_count = 2;
  aopts.capacity = 1024;
  aopts.parent = global;
  tg_limiter* accounts = NULL;
  if (check(tg_limiter_new(&aopts, &accounts, &err), "tg_limiter_new(accounts)", &err)) return 1;
  tg_limiter_free(global); /* the account limiter keeps it alive */

  tg_breaker_options bopts;
  tg_breaker_options_init(&bopts);
  bopts.window_size = 50;
  bopts.minimum_calls = 20;
  bopts.failure_rate_threshold = 50.0;
  bopts.open_ns = 100 * MS;
  bopts.backoff_multiplier = 2.0;
  bopts.max_open_ns = 400 * MS;
  bopts.half_open_probes = 3;
  bopts.max_in_flight = 64;
  tg_breaker* venue = NULL;
  if (check(tg_breaker_new(&bopts, &venue, &err), "tg_breaker_new", &err)) return 1;
  char venue_name[] = "XNAS";
  tg_breaker_set_event_callback(venue, on_breaker_event, venue_name);

  struct account {
    const char* id;
    uint32_t tier;
    uint64_t sent, limited, parent_limited, breaker_rejected;
  } accts[] = {{"ACC-RETAIL-1", 0, 0, 0, 0, 0},
               {"ACC-RETAIL-2", 0, 0, 0, 0, 0},
               {"ACC-PRO-1", 1, 0, 0, 0, 0}};
  const size_t n_accts = sizeof accts / sizeof accts[0];
  uint64_t failures = 0, successes = 0, max_retry_ns = 0;
  unsigned seed = 42;

  printf("simulating 2 s of order flow (an order every 250 us, round-robin over %zu accounts)\n",
         n_accts);
  for (uint64_t now = 0, i = 0; now < 2000 * MS; now += 250000, ++i) {
    struct account* a = &accts[i % n_accts];
    tg_limit_decision d;
    tg_reservation res;
    if (tg_limiter_reserve(accounts, a->id, strlen(a->id), a->tier, 1, now, &res, &d) != TG_OK) {
      return 1;
    }
    if (!d.allowed) {
      if (d.reason == TG_LIMIT_REASON_PARENT) {
        a->parent_limited++;
      } else {
        a->limited++;
      }
      if (d.retry_after_ns > max_retry_ns) max_retry_ns = d.retry_after_ns;
      continue;
    }
    tg_breaker_permit p;
    tg_breaker_acquire(venue, now, &p);
    if (!p.allowed) {
      /* The order is not sent: give its rate-limit tokens back. */
      tg_limiter_cancel(accounts, &res, now);
      a->breaker_rejected++;
      continue;
    }
    uint64_t latency = 0;
    const int outcome = venue_call(now, &seed, &latency);
    tg_breaker_record(venue, &p, outcome, latency, now + latency);
    if (outcome == TG_OUTCOME_FAILURE) {
      failures++;
    } else {
      successes++;
    }
    a->sent++;
  }

  printf("\n%-14s %-7s %8s %14s %14s %16s\n", "account", "tier", "sent", "rate-limited",
         "global-limited", "breaker-blocked");
  for (size_t k = 0; k < n_accts; ++k) {
    printf("%-14s %-7s %8" PRIu64 " %14" PRIu64 " %14" PRIu64 " %16" PRIu64 "\n", accts[k].id,
           tiers[accts[k].tier].name, accts[k].sent, accts[k].limited, accts[k].parent_limited,
           accts[k].breaker_rejected);
  }
  tg_limiter_stats ls;
  tg_breaker_stats bs;
  tg_limiter_stats_get(accounts, &ls);
  tg_breaker_stats_get(venue, 2000 * MS, &bs);
  int state = 0;
  tg_breaker_state(venue, &state);
  printf("\nlimiter: %" PRIu64 " admitted, %" PRIu64 " rejected, %" PRIu64
         " reservations given back, %" PRIu64 " keys; longest retry-after %.2f ms\n",
         ls.admitted, ls.rejected, ls.cancelled, ls.keys, (double)max_retry_ns / 1e6);
  printf("venue XNAS: %" PRIu64 " ok, %" PRIu64 " failed, %" PRIu64
         " rejected by the breaker, %" PRIu64 " state changes, now %s, %u in flight\n",
         successes, failures, bs.rejected, bs.transitions, state_name(state), bs.in_flight);

  tg_breaker_free(venue);
  tg_limiter_free(accounts);
  return state == TG_BREAKER_CLOSED ? 0 : 1;
}
