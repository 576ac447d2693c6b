/*
 * gateway_demo - a small order-server host driving tollgate through its C ABI.
 *
 * The host owns the loop and the clock; tollgate only decides. Every request
 * is routed first (a route table: new orders go to a venue set of two
 * venues, each behind its own circuit breaker; a path spelled to slip past
 * the router is refused). Three accounts in two tiers share a global limit.
 * For two seconds of simulated time orders arrive every 250 us; between
 * 0.5 s and 0.9 s venue XNAS rejects most orders: its breaker opens, the
 * router sends every order to XNYS while it is open, XNAS gets its probes
 * when the open period ends, and its breaker closes once it recovers. The demo prints the state
 * changes as they happen and a summary of every decision.
 *
 * Every decision goes into a compliance journal (argv[1], default
 * ./gateway-journal): the limiters' and breakers' configurations, each
 * reservation, cancellation, breaker permit, outcome and state change, with
 * the inputs a replay needs, and each request the router refused. The host
 * drives the journal's writer from its own loop (poll mode). At the end the
 * demo verifies the journal and replays it through the C ABI;
 * `tollgate-audit verify|dump|replay DIR` does the same from the shell.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tollgate/tollgate.h>

#define MS UINT64_C(1000000)

static const char* state_name(int s) {
  static const char* names[] = {"closed",        "open",     "half-open",   "forced-open",
                                "forced-closed", "disabled", "metrics-only"};
  return s >= 0 && s <= 6 ? names[s] : "?";
}

/* Journal instance numbers: what the records call each limiter and breaker. */
enum { J_GLOBAL = 1, J_ACCOUNTS = 2, J_VENUE0 = 10 };

/* A request the router refused is journaled as a host-defined event kind,
 * with the router's status as its reason and the path it refused. */
#define KIND_ROUTE_REFUSED 0x8001

struct venue_ctx {
  const char* name;
  uint32_t instance;
  uint32_t venue_id;
  tg_journal* journal;
};

static void on_breaker_event(void* user, const tg_breaker_event* ev) {
  const struct venue_ctx* v = (const struct venue_ctx*)user;
  printf("  t=%7.1f ms  venue %s: %s -> %s", (double)ev->now_ns / 1e6, v->name,
         state_name(ev->from_state), state_name(ev->to_state));
  if (ev->failure_rate >= 0) printf("  (failure rate %.0f%%)", ev->failure_rate);
  if (ev->open_ns != 0) printf("  open for %" PRIu64 " ms", ev->open_ns / MS);
  printf("\n");
  /* The transition goes into the journal; a replay checks it happens again. */
  tg_journal_entry ctx;
  tg_journal_entry_init(&ctx);
  ctx.venue = v->venue_id;
  if (tg_journal_record_breaker_transition(v->journal, v->instance, ev, &ctx, NULL) != TG_OK) {
    fprintf(stderr, "journal: a breaker transition could not be recorded\n");
  }
}

/* A journal append that fails means the decision cannot be shown to a
 * regulator: the demo stops (a real host would fail the request closed). */
static int journaled(int rc, const char* what) {
  if (rc != TG_OK) fprintf(stderr, "journal: %s: %s\n", what, tg_status_str(rc));
  return rc;
}

static int check(int rc, const char* what, const tg_error* err) {
  if (rc != TG_OK) {
    fprintf(stderr, "%s failed: %s %s\n", what, tg_status_str(rc), err ? err->message : "");
  }
  return rc;
}

/* The venues: between 500 ms and 900 ms XNAS (0) rejects 80% of orders, and
 * rejects them fast, so its latency does not give it away: only its breaker
 * can. */
static int venue_call(uint32_t venue, uint64_t now, unsigned* seed, uint64_t* latency) {
  *seed = *seed * 1103515245u + 12345u;
  const unsigned roll = (*seed >> 16) % 100;
  const int degraded = venue == 0 && now >= 500 * MS && now < 900 * MS;
  *latency = (uint64_t)2000u * (1 + roll % 5);
  return degraded && roll < 80 ? TG_OUTCOME_FAILURE : TG_OUTCOME_SUCCESS;
}

int main(int argc, char** argv) {
  tg_error err;
  const char* journal_dir = argc > 1 ? argv[1] : "gateway-journal";
  printf("tollgate %s (header %s): order-gateway demo\n", tg_version_string(), TG_VERSION_STRING);
  if (tg_version_number() != TG_VERSION_NUMBER) {
    fprintf(stderr, "library version %u does not match header %d\n", tg_version_number(),
            TG_VERSION_NUMBER);
    return 1;
  }

  /* The compliance journal. The signing seed is a fixed demo value; a real
   * host loads its Ed25519 seed from its secret store, and gives auditors
   * the public key (tollgate-audit --public-key) to pin. */
  tg_journal_options jopts;
  tg_journal_options_init(&jopts);
  jopts.directory = journal_dir;
  jopts.mode = TG_JOURNAL_WRITER_POLL;
  for (int b = 0; b < 32; ++b) jopts.signing_seed[b] = (uint8_t)(0x5a ^ (b * 7));
  tg_journal* journal = NULL;
  if (check(tg_journal_open(&jopts, &journal, &err), "tg_journal_open", &err)) return 1;
  {
    tg_journal_recovery rec;
    tg_journal_recovery_get(journal, &rec);
    printf("journal %s: %s\n", journal_dir,
           rec.created ? "created" : "reopened (this run continues it)");
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
  if (journaled(tg_journal_record_limiter_define(journal, J_GLOBAL, global, TG_JOURNAL_NO_PARENT,
                                                 NULL, NULL),
                "limiter config") ||
      journaled(
          tg_journal_record_limiter_define(journal, J_ACCOUNTS, accounts, J_GLOBAL, NULL, NULL),
          "limiter config")) {
    return 1;
  }
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
  static const char* venue_names[2] = {"XNAS", "XNYS"};
  static struct venue_ctx venue_ctx[2];
  tg_breaker* breakers[2] = {NULL, NULL};
  tg_venue venues[2];
  for (uint32_t v = 0; v < 2; ++v) {
    if (check(tg_breaker_new(&bopts, &breakers[v], &err), "tg_breaker_new", &err)) return 1;
    venue_ctx[v].name = venue_names[v];
    venue_ctx[v].instance = J_VENUE0 + v;
    venue_ctx[v].venue_id = 100 + v;
    venue_ctx[v].journal = journal;
    if (journaled(tg_journal_record_breaker_define(journal, J_VENUE0 + v, breakers[v], NULL, NULL),
                  "breaker config")) {
      return 1;
    }
    tg_breaker_set_event_callback(breakers[v], on_breaker_event, &venue_ctx[v]);
    venues[v].venue_id = 100 + v;
    venues[v].weight = 1;
    venues[v].breaker = breakers[v];
  }

  /* New orders go to the faster of the two venues (least latency) among
   * those whose breaker admits; the latency estimate of a venue that gets no
   * orders decays (100 ms here), so a venue that was slow is tried again. */
  tg_venue_set_options vopts;
  tg_venue_set_options_init(&vopts);
  vopts.strategy = TG_VENUE_LEAST_LATENCY;
  vopts.venues = venues;
  vopts.venue_count = 2;
  vopts.latency_decay_ns = 100 * MS;
  tg_venue_set* venue_set = NULL;
  if (check(tg_venue_set_new(&vopts, &venue_set, &err), "tg_venue_set_new", &err)) return 1;

  tg_route_rule rules[3];
  for (int r = 0; r < 3; ++r) tg_route_rule_init(&rules[r]);
  rules[0].route_id = 1; /* new orders: to a venue */
  rules[0].methods = "POST";
  rules[0].path = "/v1/orders";
  rules[0].venue_set = 0;
  rules[1].route_id = 2; /* cancels: to the order management system */
  rules[1].methods = "DELETE";
  rules[1].path = "/v1/orders/{id}";
  rules[1].target = 7;
  rules[2].route_id = 3; /* the admin API, internal hosts only */
  rules[2].host = "*.internal";
  rules[2].path = "/admin";
  rules[2].path_kind = TG_PATH_PREFIX;
  tg_route_table_options topts;
  tg_route_table_options_init(&topts);
  topts.rules = rules;
  topts.rule_count = 3;
  topts.venue_sets = &venue_set;
  topts.venue_set_count = 1;
  tg_route_table* table = NULL;
  size_t bad_rule = 0;
  if (check(tg_route_table_new(&topts, &table, &bad_rule, &err), "tg_route_table_new", &err)) {
    return 1;
  }
  tg_router* router = NULL;
  if (check(tg_router_new(table, &router, &err), "tg_router_new", &err)) return 1;
  /* The router holds the table, which holds the set, which holds the
   * breakers; the host keeps its own handles to the set (to report
   * latencies) and breakers (to record outcomes). */
  tg_route_table_free(table);

  struct account {
    const char* id;
    uint32_t tier;
    uint64_t sent, limited, parent_limited, breaker_rejected, refused;
  } accts[] = {{"ACC-RETAIL-1", 0, 0, 0, 0, 0, 0},
               {"ACC-RETAIL-2", 0, 0, 0, 0, 0, 0},
               {"ACC-PRO-1", 1, 0, 0, 0, 0, 0}};
  const size_t n_accts = sizeof accts / sizeof accts[0];
  uint64_t failures = 0, successes = 0, max_retry_ns = 0, sent_to[2] = {0, 0};
  uint64_t degraded_sent_to[2] = {0, 0};
  unsigned seed = 42;

  printf("simulating 2 s of order flow (an order every 250 us, round-robin over %zu accounts)\n",
         n_accts);
  for (uint64_t now = 0, i = 0; now < 2000 * MS; now += 250000, ++i) {
    struct account* a = &accts[i % n_accts];
    /* Most orders spell the path plainly; some differently (same route);
     * a few try an encoded slash, which the router refuses. */
    const char* path = i % 97 == 0 ? "//v1/./orders/" : "/v1/orders";
    if (i % 1000 == 999) path = "/v1/orders%2F..%2F..%2Fadmin";
    tg_route_request req;
    memset(&req, 0, sizeof req);
    req.method = "POST";
    req.method_len = 4;
    req.host = "gw.example.com:443";
    req.host_len = strlen(req.host);
    req.path = path;
    req.path_len = strlen(path);
    /* The host's own loop drives the journal's writer. */
    if (i % 256 == 0 && check(tg_journal_poll(journal, NULL, &err), "tg_journal_poll", &err)) {
      return 1;
    }
    tg_route_decision route;
    if (tg_router_route(router, &req, a->id, strlen(a->id), i, now, &route) != TG_OK) return 1;
    tg_journal_entry ctx;
    tg_journal_entry_init(&ctx);
    ctx.account = a->id;
    ctx.account_len = strlen(a->id);
    ctx.route = route.match.route_id;
    ctx.payload = (const uint8_t*)path; /* the request as received: its digest is kept */
    ctx.payload_len = strlen(path);
    if (route.match.status != TG_ROUTE_MATCHED) {
      a->refused++;
      ctx.kind = KIND_ROUTE_REFUSED;
      ctx.verdict = TG_JOURNAL_VERDICT_REJECTED;
      ctx.reason = (uint32_t)route.match.status;
      ctx.store_payload = 1; /* keep the refused path itself */
      if (journaled(tg_journal_append(journal, &ctx, NULL), "refusal")) return 1;
      continue;
    }
    tg_limit_decision d;
    tg_reservation res;
    if (tg_limiter_reserve(accounts, a->id, strlen(a->id), a->tier, 1, now, &res, &d) != TG_OK) {
      return 1;
    }
    if (journaled(tg_journal_record_limiter_reserve(journal, J_ACCOUNTS, a->id, strlen(a->id),
                                                    a->tier, 1, now, &d, &res, &ctx, NULL),
                  "limiter decision")) {
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
    if (!route.venue.ok) { /* no venue admits: the order is not sent */
      tg_limiter_cancel(accounts, &res, now);
      if (journaled(tg_journal_record_limiter_cancel(journal, J_ACCOUNTS, a->id, strlen(a->id),
                                                     &res, now, &ctx, NULL),
                    "cancel")) {
        return 1;
      }
      a->breaker_rejected++;
      continue;
    }
    const uint32_t v = route.venue.index;
    ctx.venue = venues[v].venue_id;
    tg_breaker_permit p;
    tg_breaker_acquire(breakers[v], now, &p);
    if (journaled(tg_journal_record_breaker_acquire(journal, J_VENUE0 + v, now, &p, &ctx, NULL),
                  "breaker decision")) {
      return 1;
    }
    if (!p.allowed) {
      /* The order is not sent: give its rate-limit tokens back. */
      tg_limiter_cancel(accounts, &res, now);
      if (journaled(tg_journal_record_limiter_cancel(journal, J_ACCOUNTS, a->id, strlen(a->id),
                                                     &res, now, &ctx, NULL),
                    "cancel")) {
        return 1;
      }
      a->breaker_rejected++;
      continue;
    }
    uint64_t latency = 0;
    const int outcome = venue_call(v, now, &seed, &latency);
    tg_breaker_record(breakers[v], &p, outcome, latency, now + latency);
    if (journaled(tg_journal_record_breaker_outcome(journal, J_VENUE0 + v, &p, outcome, latency,
                                                    now + latency, &ctx, NULL),
                  "breaker outcome")) {
      return 1;
    }
    tg_venue_set_record_latency(venue_set, v, latency, now + latency);
    sent_to[v]++;
    if (now >= 500 * MS && now < 900 * MS) degraded_sent_to[v]++;
    if (outcome == TG_OUTCOME_FAILURE) {
      failures++;
    } else {
      successes++;
    }
    a->sent++;
  }

  printf("\n%-14s %-7s %8s %14s %14s %16s %8s\n", "account", "tier", "sent", "rate-limited",
         "global-limited", "breaker-blocked", "refused");
  for (size_t k = 0; k < n_accts; ++k) {
    printf("%-14s %-7s %8" PRIu64 " %14" PRIu64 " %14" PRIu64 " %16" PRIu64 " %8" PRIu64 "\n",
           accts[k].id, tiers[accts[k].tier].name, accts[k].sent, accts[k].limited,
           accts[k].parent_limited, accts[k].breaker_rejected, accts[k].refused);
  }
  tg_limiter_stats ls;
  tg_limiter_stats_get(accounts, &ls);
  printf("\nlimiter: %" PRIu64 " admitted, %" PRIu64 " rejected, %" PRIu64
         " reservations given back, %" PRIu64 " keys; longest retry-after %.2f ms\n",
         ls.admitted, ls.rejected, ls.cancelled, ls.keys, (double)max_retry_ns / 1e6);
  printf("orders: %" PRIu64 " ok, %" PRIu64 " failed\n", successes, failures);
  int all_closed = 1;
  for (uint32_t v = 0; v < 2; ++v) {
    tg_breaker_stats bs;
    tg_venue_stats vs;
    int state = 0;
    tg_breaker_stats_get(breakers[v], 2000 * MS, &bs);
    tg_breaker_state(breakers[v], &state);
    tg_venue_set_stats(venue_set, v, 2000 * MS, &vs);
    printf("venue %s: %" PRIu64 " orders (%" PRIu64 " while XNAS was degraded), %" PRIu64
           " rejected by its breaker, %" PRIu64 " state changes, now %s; latency EWMA %.1f us\n",
           venue_names[v], sent_to[v], degraded_sent_to[v], bs.rejected, bs.transitions,
           state_name(state), vs.latency_ewma_ns / 1e3);
    if (state != TG_BREAKER_CLOSED) all_closed = 0;
  }

  /* Seal the journal, then check it as an auditor would: verify the chain
   * and signatures, and replay every recorded decision. */
  tg_journal_stats js;
  tg_journal_stats_get(journal, &js);
  if (check(tg_journal_close(journal, &err), "tg_journal_close", &err)) return 1;
  tg_journal_stats_get(journal, &js);
  uint8_t public_key[32];
  tg_journal_public_key(journal, public_key);
  tg_journal_free(journal);
  printf("\njournal: %" PRIu64 " records written in %" PRIu64 " batches, %" PRIu64
         " fdatasyncs, %" PRIu64 " checkpoints, %" PRIu64
         " bytes; nothing rejected or dropped: %s\n",
         js.written, js.batches, js.syncs, js.checkpoints, js.bytes,
         js.rejected == 0 && js.dropped == 0 ? "yes" : "NO");
  printf("journal public key ");
  for (int b = 0; b < 32; ++b) printf("%02x", public_key[b]);
  printf("\n");
  tg_journal_read_options ropts;
  tg_journal_read_options_init(&ropts);
  ropts.public_key = public_key;
  tg_journal_verify_report vr;
  if (check(tg_journal_verify(journal_dir, &ropts, &vr, &err), "tg_journal_verify", &err)) return 1;
  printf("verify: %s, %" PRIu64 " records (%" PRIu64 " events, %" PRIu64 " checkpoints) in %" PRIu64
         " segment(s), %s\n",
         vr.ok ? "OK" : "FAILED", vr.records, vr.events, vr.checkpoints, vr.segments,
         vr.closed ? "closed" : "open");
  if (!vr.ok)
    printf("  %s at offset %" PRIu64 ": %s\n", vr.error.file, vr.error.offset, vr.error.message);
  tg_journal_replay_report rr;
  if (check(tg_journal_replay(journal_dir, &ropts, &rr, &err), "tg_journal_replay", &err)) return 1;
  printf("replay: %" PRIu64 " decisions and %" PRIu64 " breaker transitions decided again, %" PRIu64
         " differ, %" PRIu64 " could not be replayed (%" PRIu64
         " refusals carry no replay inputs)\n",
         rr.decisions, rr.transitions, rr.mismatches, rr.issues, rr.other);
  if (rr.mismatches != 0) {
    printf("  first difference at seq %" PRIu64 ": recorded %s, replayed %s\n",
           rr.mismatch_sequence, rr.mismatch_recorded, rr.mismatch_replayed);
  }

  tg_router_free(router);
  tg_venue_set_free(venue_set);
  for (uint32_t v = 0; v < 2; ++v) tg_breaker_free(breakers[v]);
  tg_limiter_free(accounts);
  return all_closed && vr.ok && rr.ok ? 0 : 1;
}
