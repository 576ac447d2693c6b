/* C ABI tests of the audit journal: writing in poll and thread mode,
 * tickets and durability, ring-full policies, events (and what the event
 * callback may not do), reading back every field, verifying (a pinned key,
 * a flipped byte), recording a limiter and a breaker and replaying them (an
 * honest journal, a falsified decision), and bad calls of every function. */
#define _XOPEN_SOURCE 700
#define CHECK_PROGRAM "capi_journal"
#include "check.h"

#include <ftw.h>
#include <stdio.h>
#include <unistd.h>

static const uint64_t ms = 1000000ull;

static int remove_entry(const char* path, const struct stat* st, int flag, struct FTW* f) {
  (void)st;
  (void)flag;
  (void)f;
  return remove(path);
}

/* A fresh scratch directory; removed by rm_dir. */
static void make_dir(char* buf, size_t cap) {
  const char* base = getenv("TMPDIR");
  snprintf(buf, cap, "%s/tollgate-capi-journal-XXXXXX", base != NULL && *base ? base : "/tmp");
  REQUIRE(mkdtemp(buf) != NULL);
}

static void rm_dir(const char* dir) { nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS); }

static void seed_of(uint8_t seed[32], uint8_t salt) {
  int i;
  for (i = 0; i < 32; ++i) seed[i] = (uint8_t)(i * 13 + salt);
}

static tg_journal_options options(const char* dir, uint32_t mode) {
  tg_journal_options o;
  tg_journal_options_init(&o);
  o.directory = dir;
  o.mode = mode;
  seed_of(o.signing_seed, 1);
  return o;
}

static tg_journal* open_at(const char* file, int line, const tg_journal_options* o) {
  tg_journal* j = NULL;
  tg_error err;
  int rc;
  memset(&err, 0, sizeof err);
  rc = tg_journal_open(o, &j, &err);
  if (rc != TG_OK) fprintf(stderr, "tg_journal_open: %s: %s\n", tg_status_str(rc), err.message);
  REQUIRE_AT(file, line, rc == TG_OK && j != NULL, "REQUIRE(tg_journal_open(...) == TG_OK)");
  return j;
}
#define OPEN(o) open_at(__FILE__, __LINE__, (o))

static void drain(tg_journal* j) {
  size_t n = 1;
  while (n != 0) REQUIRE(tg_journal_poll(j, &n, NULL) == TG_OK);
}

static void test_bad_options(void) {
  char dir[256];
  tg_journal* j = NULL;
  tg_journal_options o;
  tg_error err;
  CTX("bad options");
  make_dir(dir, sizeof dir);
  o = options(dir, TG_JOURNAL_WRITER_POLL);
  CHECK(tg_journal_open(&o, NULL, &err) == TG_EINVAL);
  CHECK(tg_journal_open(NULL, &j, &err) == TG_EINVAL && j == NULL);
  o.directory = NULL;
  CHECK(tg_journal_open(&o, &j, &err) == TG_EINVAL && j == NULL);
  o.directory = "";
  CHECK(tg_journal_open(&o, &j, &err) == TG_EINVAL);
  o = options(dir, TG_JOURNAL_WRITER_POLL);
  memset(o.signing_seed, 0, sizeof o.signing_seed);
  CHECK(tg_journal_open(&o, &j, &err) == TG_EINVAL);
  CHECK(strstr(err.message, "signing_seed") != NULL);
  o = options(dir, 7);
  CHECK(tg_journal_open(&o, &j, &err) == TG_EINVAL);
  o = options(dir, TG_JOURNAL_WRITER_POLL);
  o.durability = 4;
  CHECK(tg_journal_open(&o, &j, &err) == TG_EINVAL);
  o = options(dir, TG_JOURNAL_WRITER_POLL);
  o.on_full = 3;
  CHECK(tg_journal_open(&o, &j, &err) == TG_EINVAL);
  o = options(dir, TG_JOURNAL_WRITER_POLL);
  o.reserved = 1;
  CHECK(tg_journal_open(&o, &j, &err) == TG_EINVAL);
  o = options(dir, TG_JOURNAL_WRITER_POLL);
  o.struct_size = 8;
  CHECK(tg_journal_open(&o, &j, &err) == TG_EVERSION);
  o = options(dir, TG_JOURNAL_WRITER_POLL);
  o.ring_cells = 100; /* not a power of two */
  CHECK(tg_journal_open(&o, &j, &err) != TG_OK && j == NULL);
  o = options(dir, TG_JOURNAL_WRITER_POLL);
  o.create_if_missing = 0;
  CHECK(tg_journal_open(&o, &j, &err) == TG_ENOTFOUND && j == NULL);
  o = options("/nonexistent-dir-of-tollgate/j", TG_JOURNAL_WRITER_POLL);
  CHECK(tg_journal_open(&o, &j, &err) == TG_EIO && j == NULL);
  CHECK(err.message[0] != '\0');
  /* The NULL-safe functions. */
  tg_journal_options_init(NULL);
  tg_journal_entry_init(NULL);
  tg_journal_read_options_init(NULL);
  tg_journal_free(NULL);
  tg_journal_reader_free(NULL);
  rm_dir(dir);
}

static void test_write_read_verify(void) {
  char dir[256];
  tg_journal* j;
  tg_journal_options o;
  tg_journal_entry e;
  tg_journal_stats st;
  tg_journal_recovery rec;
  uint64_t ticket = 0, last = 0;
  int flag = -1, i, has = 0;
  uint8_t inputs[40], payload[100], key[32], seed[32], other[32];
  char account[300];
  tg_journal_reader* r = NULL;
  tg_journal_record rr;
  tg_journal_read_options ro;
  tg_journal_verify_report vr;
  tg_error err;
  uint64_t events = 0;

  CTX("write, read and verify");
  make_dir(dir, sizeof dir);
  o = options(dir, TG_JOURNAL_WRITER_POLL);
  o.checkpoint_every_records = 100;
  j = OPEN(&o);
  CHECK(tg_journal_recovery_get(j, &rec) == TG_OK && rec.created == 1);
  for (i = 0; i < (int)sizeof inputs; ++i) inputs[i] = (uint8_t)i;
  for (i = 0; i < (int)sizeof payload; ++i) payload[i] = (uint8_t)(255 - i);
  for (i = 0; i < 1000; ++i) {
    char acc[16];
    snprintf(acc, sizeof acc, "ACC-%d", i % 7);
    tg_journal_entry_init(&e);
    e.account = acc;
    e.account_len = strlen(acc);
    e.route = 3;
    e.venue = (uint32_t)(i % 2);
    e.verdict = (uint32_t)(i % 3 == 0);
    e.reason = 9;
    e.config_version = 42;
    e.inputs = inputs;
    e.inputs_len = sizeof inputs;
    e.payload = payload;
    e.payload_len = sizeof payload;
    e.store_payload = (uint16_t)(i == 0);
    e.realtime_ns = 1700000000000000000ull + (uint64_t)i;
    CHECK(tg_journal_append(j, &e, &ticket) == TG_OK);
    CHECK(ticket > last);
    last = ticket;
    if (i % 300 == 0) drain(j);
  }
  CHECK(tg_journal_is_written(j, last, &flag) == TG_OK && flag == 0);
  drain(j);
  CHECK(tg_journal_is_written(j, last, &flag) == TG_OK && flag == 1);
  CHECK(tg_journal_sync(j, &err) == TG_OK);
  CHECK(tg_journal_is_durable(j, last, &flag) == TG_OK && flag == 1);
  CHECK(tg_journal_is_durable(j, 0, &flag) == TG_OK && flag == 0);
  CHECK(tg_journal_stats_get(j, &st) == TG_OK);
  CHECK(st.written == 1000 && st.written_ticket == last && st.durable_ticket == last);
  CHECK(st.checkpoints >= 10);
  CHECK(tg_journal_status(j, &err) == TG_OK);
  CHECK(tg_journal_public_key(j, key) == TG_OK);
  seed_of(seed, 1);
  CHECK(tg_ed25519_public_key(seed, other) == TG_OK && memcmp(key, other, 32) == 0);

  /* Bad appends. */
  tg_journal_entry_init(&e);
  CHECK(tg_journal_append(NULL, &e, &ticket) == TG_EINVAL);
  CHECK(tg_journal_append(j, NULL, &ticket) == TG_EINVAL);
  e.account = NULL;
  e.account_len = 3;
  CHECK(tg_journal_append(j, &e, &ticket) == TG_EINVAL);
  memset(account, 'a', sizeof account);
  e.account = account;
  e.account_len = 256;
  CHECK(tg_journal_append(j, &e, &ticket) == TG_ERANGE);
  tg_journal_entry_init(&e);
  e.kind = TG_JOURNAL_KIND_RECORDS_DROPPED;
  CHECK(tg_journal_append(j, &e, &ticket) == TG_EINVAL);
  tg_journal_entry_init(&e);
  e.store_payload = 2;
  CHECK(tg_journal_append(j, &e, &ticket) == TG_EINVAL);
  tg_journal_entry_init(&e);
  e.struct_size = 3;
  CHECK(tg_journal_append(j, &e, &ticket) == TG_EVERSION);
  tg_journal_entry_init(&e);
  e.inputs = payload;
  e.inputs_len = 5000;
  CHECK(tg_journal_append(j, &e, &ticket) == TG_ERANGE);
  CHECK(tg_journal_is_written(NULL, 1, &flag) == TG_EINVAL);
  CHECK(tg_journal_is_written(j, 1, NULL) == TG_EINVAL);
  CHECK(tg_journal_stats_get(j, NULL) == TG_EINVAL);
  CHECK(tg_journal_poll(NULL, NULL, &err) == TG_EINVAL);
  CHECK(tg_journal_wait_durable(j, 0, 10, &flag, &err) == TG_EINVAL);
  CHECK(tg_journal_id(j, NULL) == TG_EINVAL);
  CHECK(tg_ed25519_public_key(NULL, other) == TG_EINVAL);

  CHECK(tg_journal_close(j, &err) == TG_OK);
  CHECK(tg_journal_close(j, &err) == TG_OK); /* idempotent */
  tg_journal_entry_init(&e);
  CHECK(tg_journal_append(j, &e, &ticket) == TG_ESTATE);
  tg_journal_free(j);

  /* Read it back. */
  CHECK(tg_journal_reader_open(NULL, NULL, &r, &err) == TG_EINVAL);
  CHECK(tg_journal_reader_open(dir, NULL, NULL, &err) == TG_EINVAL);
  CHECK(tg_journal_reader_open("/nonexistent-dir-of-tollgate", NULL, &r, &err) == TG_ENOTFOUND);
  {
    tg_journal_verify_report vr0;
    CHECK(tg_journal_verify("/nonexistent-dir-of-tollgate", NULL, &vr0, &err) == TG_ENOTFOUND);
  }
  REQUIRE(tg_journal_reader_open(dir, NULL, &r, &err) == TG_OK && r != NULL);
  CHECK(tg_journal_reader_next(r, NULL, &has) == TG_EINVAL);
  while (tg_journal_reader_next(r, &rr, &has) == TG_OK && has) {
    if (rr.type != TG_JOURNAL_RECORD_EVENT) continue;
    if (events == 0) {
      CHECK(rr.kind == TG_JOURNAL_KIND_DECISION && rr.sequence >= 1);
      CHECK(rr.account_len == 5 && memcmp(rr.account, "ACC-0", 5) == 0);
      CHECK(rr.route == 3 && rr.venue == 0 && rr.verdict == 1 && rr.reason == 9);
      CHECK(rr.config_version == 42 && rr.realtime_ns == 1700000000000000000ull);
      CHECK(rr.inputs_len == sizeof inputs && memcmp(rr.inputs, inputs, sizeof inputs) == 0);
      CHECK(rr.payload_len == sizeof payload && memcmp(rr.payload, payload, 100) == 0);
      CHECK((rr.flags & 3u) == 3u);
    } else if (events == 1) {
      CHECK(rr.payload_len == 0 && (rr.flags & 2u) != 0);
    }
    ++events;
  }
  CHECK(events == 1000);
  {
    tg_journal_problem p;
    size_t n = 9;
    CHECK(tg_journal_reader_problem(r, &p) == TG_OK && p.found == 0);
    CHECK(tg_journal_reader_warning_count(r, &n) == TG_OK && n == 0);
    CHECK(tg_journal_reader_warning(r, 0, &p) == TG_ENOTFOUND);
  }
  tg_journal_reader_free(r);

  /* Verify, with the key pinned, and with another key pinned. */
  tg_journal_read_options_init(&ro);
  ro.public_key = key;
  CHECK(tg_journal_verify(dir, &ro, &vr, &err) == TG_OK);
  CHECK(vr.ok == 1 && vr.closed == 1 && vr.events == 1000 && vr.error.found == 0);
  CHECK(memcmp(vr.key, key, 32) == 0);
  ro.public_key = other;
  other[0] ^= 1;
  CHECK(tg_journal_verify(dir, &ro, &vr, &err) == TG_OK);
  CHECK(vr.ok == 0 && vr.error.found == 1);
  CHECK(tg_journal_verify(dir, NULL, NULL, &err) == TG_EINVAL);
  ro.strict = 2;
  CHECK(tg_journal_verify(dir, &ro, &vr, &err) == TG_EINVAL);

  /* Reopen: the same key continues the journal, another is refused. */
  j = OPEN(&o);
  CHECK(tg_journal_recovery_get(j, &rec) == TG_OK && rec.created == 0);
  tg_journal_free(j);
  seed_of(o.signing_seed, 2);
  j = NULL;
  CHECK(tg_journal_open(&o, &j, &err) == TG_EINVAL && j == NULL);

  /* A flipped byte in the middle of the first segment is found and located. */
  {
    char seg[400];
    FILE* f;
    int c;
    snprintf(seg, sizeof seg, "%s/seg-0000000000000001.tgj", dir);
    f = fopen(seg, "r+b");
    REQUIRE(f != NULL);
    REQUIRE(fseek(f, 4000, SEEK_SET) == 0);
    c = fgetc(f);
    REQUIRE(fseek(f, 4000, SEEK_SET) == 0);
    fputc(c ^ 0x20, f);
    fclose(f);
    CHECK(tg_journal_verify(dir, NULL, &vr, &err) == TG_OK);
    CHECK(vr.ok == 0 && vr.error.found == 1);
    CHECK(strcmp(vr.error.category, "record") == 0);
    CHECK(vr.error.offset <= 4000 && vr.error.offset + 300 > 4000);
    CHECK(strcmp(vr.error.file, "seg-0000000000000001.tgj") == 0);
    REQUIRE(tg_journal_reader_open(dir, NULL, &r, &err) == TG_OK);
    events = 0;
    while (tg_journal_reader_next(r, &rr, &has) == TG_OK && has) ++events;
    {
      tg_journal_problem p;
      CHECK(tg_journal_reader_problem(r, &p) == TG_OK && p.found == 1);
      CHECK(p.offset == vr.error.offset);
    }
    CHECK(events > 0 && events < 1000);
    tg_journal_reader_free(r);
  }
  rm_dir(dir);
}

struct event_log {
  tg_journal* j;
  int checkpoints;
  int poll_rc;
  int close_rc;
};

static void on_event(void* user, const tg_journal_event* ev) {
  struct event_log* log = (struct event_log*)user;
  if (ev->type == TG_JOURNAL_EVENT_CHECKPOINT) {
    ++log->checkpoints;
    log->poll_rc = tg_journal_poll(log->j, NULL, NULL);
    log->close_rc = tg_journal_close(log->j, NULL);
    tg_journal_free(log->j); /* ignored */
  }
}

static void test_events_thread_mode(void) {
  char dir[256];
  tg_journal* j;
  tg_journal_options o;
  tg_journal_entry e;
  struct event_log log = {NULL, 0, 0, 0};
  uint64_t ticket = 0;
  int durable = 0, i;
  tg_error err;
  CTX("events and thread mode");
  make_dir(dir, sizeof dir);
  o = options(dir, TG_JOURNAL_WRITER_THREAD);
  o.checkpoint_every_records = 10;
  o.on_event = on_event;
  o.on_event_user = &log;
  j = OPEN(&o);
  log.j = j;
  tg_journal_entry_init(&e);
  for (i = 0; i < 50; ++i) CHECK(tg_journal_append(j, &e, &ticket) == TG_OK);
  CHECK(tg_journal_wait_durable(j, ticket, 5000000, &durable, &err) == TG_OK && durable == 1);
  CHECK(tg_journal_poll(j, NULL, &err) == TG_OK); /* helps the thread */
  CHECK(tg_journal_close(j, &err) == TG_OK);
  {
    size_t n = 5;
    const int rc = tg_journal_poll(j, &n, &err);
    CHECK(rc == TG_ESTATE && n == 5); /* closed */
  }
  /* After close: a ticket that was written is durable; one that never was
   * is refused at once, even with a timeout too large to add to a clock. */
  CHECK(tg_journal_wait_durable(j, ticket, UINT64_MAX, &durable, &err) == TG_OK && durable == 1);
  durable = 5;
  CHECK(tg_journal_wait_durable(j, ticket + 1000000, UINT64_MAX, &durable, &err) == TG_ESTATE);
  CHECK(durable == 0);
  CHECK(log.checkpoints >= 5);
  CHECK(log.poll_rc == TG_ESTATE && log.close_rc == TG_ESTATE);
  tg_journal_free(j);
  rm_dir(dir);
}

static void test_ring_full(void) {
  char dir[256];
  tg_journal* j;
  tg_journal_options o;
  tg_journal_entry e;
  tg_journal_stats st;
  tg_journal_reader* r;
  tg_journal_record rr;
  uint64_t ticket;
  int i, rc = TG_OK, has, saw_drop = 0;
  CTX("ring full");
  make_dir(dir, sizeof dir);
  o = options(dir, TG_JOURNAL_WRITER_POLL);
  o.ring_cells = 64;
  o.max_entry_bytes = 256;
  j = OPEN(&o);
  tg_journal_entry_init(&e);
  for (i = 0; i < 200 && rc == TG_OK; ++i) rc = tg_journal_append(j, &e, &ticket);
  CHECK(rc == TG_EFULL);
  CHECK(tg_journal_stats_get(j, &st) == TG_OK && st.rejected == 1);
  tg_journal_free(j);
  rm_dir(dir);

  make_dir(dir, sizeof dir);
  o = options(dir, TG_JOURNAL_WRITER_POLL);
  o.ring_cells = 64;
  o.max_entry_bytes = 256;
  o.on_full = TG_JOURNAL_ON_FULL_DROP;
  j = OPEN(&o);
  rc = TG_OK;
  for (i = 0; i < 200 && rc == TG_OK; ++i) rc = tg_journal_append(j, &e, &ticket);
  CHECK(rc == TG_EDROPPED);
  CHECK(tg_journal_append(j, &e, &ticket) == TG_EDROPPED);
  drain(j);
  CHECK(tg_journal_stats_get(j, &st) == TG_OK && st.dropped == 2);
  CHECK(tg_journal_close(j, NULL) == TG_OK);
  tg_journal_free(j);
  REQUIRE(tg_journal_reader_open(dir, NULL, &r, NULL) == TG_OK);
  while (tg_journal_reader_next(r, &rr, &has) == TG_OK && has) {
    saw_drop += rr.type == TG_JOURNAL_RECORD_EVENT && rr.kind == TG_JOURNAL_KIND_RECORDS_DROPPED;
  }
  CHECK(saw_drop == 1);
  tg_journal_reader_free(r);
  rm_dir(dir);
}

static tg_journal* g_j;
static void on_breaker(void* user, const tg_breaker_event* ev) {
  (void)user;
  CHECK(tg_journal_record_breaker_transition(g_j, 2, ev, NULL, NULL) == TG_OK);
}

/* A limiter and a breaker recorded; lie_at >= 0 falsifies that decision. */
static uint64_t record_run(const char* dir, int lie_at) {
  tg_journal_options o = options(dir, TG_JOURNAL_WRITER_POLL);
  tg_journal* j = OPEN(&o);
  tg_limiter_options lo;
  tg_tier tiers[] = {{"t", 1000.0, 5, 0}};
  tg_limiter* lim = NULL;
  tg_breaker_options bo;
  tg_breaker* b = NULL;
  tg_journal_entry ctx;
  uint64_t now = 1000 * ms, decisions = 0;
  int i;
  tg_limiter_options_init(&lo);
  lo.tiers = tiers;
  lo.tier_count = 1;
  lo.capacity = 16;
  REQUIRE(tg_limiter_new(&lo, &lim, NULL) == TG_OK);
  tg_breaker_options_init(&bo);
  bo.window_size = 10;
  bo.minimum_calls = 5;
  bo.open_ns = 20 * ms;
  REQUIRE(tg_breaker_new(&bo, &b, NULL) == TG_OK);
  g_j = j;
  REQUIRE(tg_breaker_set_event_callback(b, on_breaker, NULL) == TG_OK);
  CHECK(tg_journal_record_limiter_define(j, 1, lim, TG_JOURNAL_NO_PARENT, NULL, NULL) == TG_OK);
  CHECK(tg_journal_record_breaker_define(j, 2, b, NULL, NULL) == TG_OK);
  tg_journal_entry_init(&ctx);
  for (i = 0; i < 600; ++i) {
    char key[8];
    tg_limit_decision d;
    tg_breaker_permit p;
    snprintf(key, sizeof key, "K%d", i % 5);
    now += 700000;
    ctx.account = key;
    ctx.account_len = strlen(key);
    REQUIRE(tg_limiter_acquire(lim, key, strlen(key), 0, 1, now, &d) == TG_OK);
    if (i == lie_at) d.allowed = !d.allowed;
    CHECK(tg_journal_record_limiter_acquire(j, 1, key, strlen(key), 0, 1, now, &d, &ctx, NULL) ==
          TG_OK);
    if (i == lie_at) d.allowed = !d.allowed;
    ++decisions;
    if (!d.allowed) continue;
    REQUIRE(tg_breaker_acquire(b, now, &p) == TG_OK);
    CHECK(tg_journal_record_breaker_acquire(j, 2, now, &p, &ctx, NULL) == TG_OK);
    ++decisions;
    if (p.allowed) {
      const int outcome = i > 200 && i < 260 ? TG_OUTCOME_FAILURE : TG_OUTCOME_SUCCESS;
      REQUIRE(tg_breaker_record(b, &p, outcome, 1000, now + 1000) == TG_OK);
      CHECK(tg_journal_record_breaker_outcome(j, 2, &p, outcome, 1000, now + 1000, &ctx, NULL) ==
            TG_OK);
    }
    if (i % 100 == 0) drain(j);
  }
  {
    tg_breaker_stats bs;
    REQUIRE(tg_breaker_stats_get(b, now, &bs) == TG_OK);
    CHECK(bs.transitions >= 2); /* the run did open the breaker */
  }
  CHECK(tg_journal_close(j, NULL) == TG_OK);
  tg_journal_free(j);
  tg_breaker_free(b);
  tg_limiter_free(lim);
  return decisions;
}

static void test_record_and_replay(void) {
  char dir[256];
  tg_journal_replay_report rep;
  tg_error err;
  uint64_t decisions;
  CTX("record and replay");
  make_dir(dir, sizeof dir);
  decisions = record_run(dir, -1);
  CHECK(tg_journal_replay(dir, NULL, &rep, &err) == TG_OK);
  CHECK(rep.ok == 1 && rep.mismatches == 0 && rep.issues == 0 && rep.error.found == 0);
  CHECK(rep.decisions == decisions && rep.instances == 2 && rep.transitions >= 2);
  if (rep.mismatches != 0)
    fprintf(stderr, "%s | %s\n", rep.mismatch_recorded, rep.mismatch_replayed);
  rm_dir(dir);

  make_dir(dir, sizeof dir);
  record_run(dir, 123);
  CHECK(tg_journal_replay(dir, NULL, &rep, &err) == TG_OK);
  CHECK(rep.ok == 0 && rep.mismatches == 1);
  CHECK(rep.mismatch_component == TG_JOURNAL_COMPONENT_LIMITER && rep.mismatch_instance == 1);
  CHECK(rep.mismatch_sequence > 0);
  CHECK(strncmp(rep.mismatch_recorded, rep.mismatch_replayed, 7) != 0);
  CHECK(tg_journal_replay(NULL, NULL, &rep, &err) == TG_EINVAL);
  CHECK(tg_journal_replay(dir, NULL, NULL, &err) == TG_EINVAL);
  rm_dir(dir);
}

static void test_record_bad_calls(void) {
  char dir[256];
  tg_journal_options o;
  tg_journal* j;
  tg_limit_decision d;
  tg_breaker_permit p;
  tg_breaker_event ev;
  tg_reservation res;
  tg_journal_entry ctx;
  char big[1100];
  CTX("record bad calls");
  make_dir(dir, sizeof dir);
  o = options(dir, TG_JOURNAL_WRITER_POLL);
  j = OPEN(&o);
  memset(&d, 0, sizeof d);
  memset(&p, 0, sizeof p);
  memset(&ev, 0, sizeof ev);
  memset(&res, 0, sizeof res);
  memset(big, 'k', sizeof big);
  CHECK(tg_journal_record_limiter_define(j, 1, NULL, TG_JOURNAL_NO_PARENT, NULL, NULL) ==
        TG_EINVAL);
  CHECK(tg_journal_record_limiter_define(j, 1, (tg_limiter*)(void*)j, 0, NULL, NULL) == TG_EINVAL);
  CHECK(tg_journal_record_limiter_acquire(NULL, 1, "k", 1, 0, 1, 1, &d, NULL, NULL) == TG_EINVAL);
  CHECK(tg_journal_record_limiter_acquire(j, 1, NULL, 1, 0, 1, 1, &d, NULL, NULL) == TG_EINVAL);
  CHECK(tg_journal_record_limiter_acquire(j, 1, "k", 1, 0, 1, 1, NULL, NULL, NULL) == TG_EINVAL);
  CHECK(tg_journal_record_limiter_acquire(j, 1, big, sizeof big, 0, 1, 1, &d, NULL, NULL) ==
        TG_ERANGE);
  CHECK(tg_journal_record_limiter_reserve(j, 1, "k", 1, 0, 1, 1, &d, NULL, NULL, NULL) ==
        TG_EINVAL);
  CHECK(tg_journal_record_limiter_cancel(j, 1, "k", 1, NULL, 1, NULL, NULL) == TG_EINVAL);
  CHECK(tg_journal_record_limiter_shadow(j, 1, 2, NULL, NULL) == TG_EINVAL);
  CHECK(tg_journal_record_breaker_define(j, 2, NULL, NULL, NULL) == TG_EINVAL);
  CHECK(tg_journal_record_breaker_acquire(j, 2, 1, NULL, NULL, NULL) == TG_EINVAL);
  p.state = 9;
  CHECK(tg_journal_record_breaker_acquire(j, 2, 1, &p, NULL, NULL) == TG_EINVAL);
  p.state = 0;
  CHECK(tg_journal_record_breaker_outcome(j, 2, &p, 3, 0, 1, NULL, NULL) == TG_EINVAL);
  CHECK(tg_journal_record_breaker_force(j, 2, 7, 1, NULL, NULL) == TG_EINVAL);
  ev.to_state = -1;
  CHECK(tg_journal_record_breaker_transition(j, 2, &ev, NULL, NULL) == TG_EINVAL);
  CHECK(tg_journal_record_breaker_transition(j, 2, NULL, NULL, NULL) == TG_EINVAL);
  tg_journal_entry_init(&ctx);
  ctx.struct_size = 2;
  CHECK(tg_journal_record_limiter_multiplier(j, 1, 2.0, 1, &ctx, NULL) == TG_EVERSION);
  tg_journal_entry_init(&ctx);
  ctx.account = big;
  ctx.account_len = 256;
  CHECK(tg_journal_record_limiter_multiplier(j, 1, 2.0, 1, &ctx, NULL) == TG_ERANGE);
  ctx.account_len = 255;
  CHECK(tg_journal_record_limiter_multiplier(j, 1, 2.0, 1, &ctx, NULL) == TG_OK);
  tg_journal_free(j);
  rm_dir(dir);
}

static void test_describe(void) {
  char dir[256], buf[512];
  size_t n = 0;
  tg_journal_options o;
  tg_journal* j;
  tg_limit_decision d;
  tg_journal_reader* r;
  tg_journal_record rr;
  int has = 0;
  const uint8_t mine[] = {1, 2, 3};
  CTX("describe inputs and kind names");
  make_dir(dir, sizeof dir);
  o = options(dir, TG_JOURNAL_WRITER_POLL);
  j = OPEN(&o);
  memset(&d, 0, sizeof d);
  d.allowed = 1;
  CHECK(tg_journal_record_limiter_acquire(j, 4, "ACC", 3, 0, 2, 77, &d, NULL, NULL) == TG_OK);
  CHECK(tg_journal_close(j, NULL) == TG_OK);
  tg_journal_free(j);
  REQUIRE(tg_journal_reader_open(dir, NULL, &r, NULL) == TG_OK);
  REQUIRE(tg_journal_reader_next(r, &rr, &has) == TG_OK && has == 1);
  CHECK(rr.verdict == TG_JOURNAL_VERDICT_ALLOWED && rr.kind == TG_JOURNAL_KIND_DECISION);
  CHECK(tg_journal_describe_inputs(rr.inputs, rr.inputs_len, buf, 10, &n) == TG_ETOOSMALL);
  CHECK(n > 10);
  CHECK(tg_journal_describe_inputs(rr.inputs, rr.inputs_len, buf, sizeof buf, &n) == TG_OK);
  {
    const char* want =
        "{\"component\":\"limiter\",\"op\":\"acquire\",\"instance\":4,\"key\":\"ACC\",";
    CHECK(strncmp(buf, want, strlen(want)) == 0);
  }
  CHECK(strlen(buf) == n);
  tg_journal_reader_free(r);
  CHECK(tg_journal_describe_inputs(mine, sizeof mine, buf, sizeof buf, &n) == TG_ENOTFOUND);
  CHECK(tg_journal_describe_inputs(NULL, 3, buf, sizeof buf, &n) == TG_EINVAL);
  CHECK(tg_journal_describe_inputs(mine, 3, NULL, 5, &n) == TG_EINVAL);
  CHECK(tg_journal_kind_name(TG_JOURNAL_KIND_BREAKER_TRANSITION, buf, sizeof buf, &n) == TG_OK);
  CHECK(strcmp(buf, "breaker_transition") == 0);
  CHECK(tg_journal_kind_name(0x8001, buf, sizeof buf, &n) == TG_OK);
  CHECK(strcmp(buf, "host:0x8001") == 0);
  CHECK(tg_journal_kind_name(0x10000, buf, sizeof buf, &n) == TG_EINVAL);
  CHECK(tg_journal_kind_name(0xFF02, buf, sizeof buf, &n) == TG_OK);
  CHECK(strcmp(buf, "reserved:0xff02") == 0);
  {
    /* Replay inputs as JSON stay JSON: a key that is not UTF-8 is given in
     * hex, a non-finite number as null; a context's digest is kept. */
    const char bad_key[] = {'K', (char)0xff, 'Z'};
    const char utf8_key[] = "K\xc3\xa9";
    uint8_t digest[32];
    tg_journal_entry ctx;
    tg_journal_options o2;
    tg_journal* j2;
    char dir2[256];
    volatile double zero = 0.0;
    int k;
    for (k = 0; k < 32; ++k) digest[k] = (uint8_t)(0xa0 + k);
    make_dir(dir2, sizeof dir2);
    o2 = options(dir2, TG_JOURNAL_WRITER_POLL);
    j2 = OPEN(&o2);
    tg_journal_entry_init(&ctx);
    ctx.payload_digest = digest;
    CHECK(tg_journal_record_limiter_acquire(j2, 1, bad_key, 3, 0, 1, 5, &d, &ctx, NULL) == TG_OK);
    CHECK(tg_journal_record_limiter_acquire(j2, 1, utf8_key, 3, 0, 1, 5, &d, NULL, NULL) == TG_OK);
    CHECK(tg_journal_record_limiter_multiplier(j2, 1, zero / zero, 5, NULL, NULL) == TG_OK);
    CHECK(tg_journal_close(j2, NULL) == TG_OK);
    tg_journal_free(j2);
    REQUIRE(tg_journal_reader_open(dir2, NULL, &r, NULL) == TG_OK);
    REQUIRE(tg_journal_reader_next(r, &rr, &has) == TG_OK && has == 1);
    CHECK((rr.flags & 2u) != 0 && memcmp(rr.payload_digest, digest, 32) == 0);
    CHECK(tg_journal_describe_inputs(rr.inputs, rr.inputs_len, buf, sizeof buf, &n) == TG_OK);
    CHECK(strstr(buf, "\"key_hex\":\"4bff5a\"") != NULL && strstr(buf, "\"key\":") == NULL);
    REQUIRE(tg_journal_reader_next(r, &rr, &has) == TG_OK && has == 1);
    CHECK(tg_journal_describe_inputs(rr.inputs, rr.inputs_len, buf, sizeof buf, &n) == TG_OK);
    CHECK(strstr(buf, "\"key\":\"K\xc3\xa9\"") != NULL);
    REQUIRE(tg_journal_reader_next(r, &rr, &has) == TG_OK && has == 1);
    CHECK(tg_journal_describe_inputs(rr.inputs, rr.inputs_len, buf, sizeof buf, &n) == TG_OK);
    CHECK(strstr(buf, "\"multiplier\":null") != NULL);
    tg_journal_reader_free(r);
    rm_dir(dir2);
  }
  {
    tg_limiter_options lo;
    tg_limiter* lim = NULL;
    uint64_t seed = 0;
    tg_limiter_options_init(&lo);
    lo.hash_seed = 12345;
    REQUIRE(tg_limiter_new(&lo, &lim, NULL) == TG_OK);
    CHECK(tg_limiter_hash_seed(lim, &seed) == TG_OK && seed == 12345);
    CHECK(tg_limiter_hash_seed(lim, NULL) == TG_EINVAL);
    CHECK(tg_limiter_hash_seed(NULL, &seed) == TG_EINVAL);
    tg_limiter_free(lim);
    lo.hash_seed = 0;
    REQUIRE(tg_limiter_new(&lo, &lim, NULL) == TG_OK);
    CHECK(tg_limiter_hash_seed(lim, &seed) == TG_OK && seed != 0);
    tg_limiter_free(lim);
  }
  CHECK(strcmp(tg_status_str(TG_EFULL), "TG_EFULL") == 0);
  CHECK(strcmp(tg_status_str(TG_EDROPPED), "TG_EDROPPED") == 0);
  CHECK(strcmp(tg_status_str(TG_EIO), "TG_EIO") == 0);
  rm_dir(dir);
}

int main(void) {
  test_bad_options();
  test_write_read_verify();
  test_events_thread_mode();
  test_ring_full();
  test_record_and_replay();
  test_record_bad_calls();
  test_describe();
  return check_summary();
}
