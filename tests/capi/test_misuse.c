/* C ABI misuse: a table of bad calls, each with the precise status it must
 * return, and no crash. Calls that take a tg_error must also fill it (code
 * equal to the return, a non-empty message) and, for constructors, leave
 * *out untouched. C99; the only tollgate header used is tollgate.h. */
#include <tollgate/tollgate.h>

#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK_PROGRAM "capi_misuse"
#define CHECK_MAX_REPORTS 80
#include "check.h"

/* One row of a call table: the call returns exactly `want`. */
#define ROW(call, want) CHECK_RC(call, want)

/* ------------------------------------------------------------------------ */
/* Fixtures                                                                  */
/* ------------------------------------------------------------------------ */

#define P62 (UINT64_C(1) << 62)

static char g_sentinel_obj;
/* A pointer value no constructor returns: *out must still hold it after a
 * failed tg_X_new. */
#define SENTINEL_LIM ((tg_limiter*)(void*)&g_sentinel_obj)
#define SENTINEL_BRK ((tg_breaker*)(void*)&g_sentinel_obj)

static void fill_garbage(tg_error* err) {
  memset(err, 'g', sizeof *err);
  err->code = 12345;
}

/* A failed constructor call: the code, the same code in err, a message,
 * *out untouched; and the same code with err = NULL. */
static void check_failed_new(int rc, int rc_no_err, int want, const tg_error* err, const void* out,
                             const void* sentinel, int line) {
  check_status_at(__FILE__, line, "tg_X_new", rc, want);
  check_status_at(__FILE__, line, "tg_X_new (err = NULL)", rc_no_err, want);
  if (want == TG_OK) return;
  ++g_checks;
  if (err->code != rc) report_failure(__FILE__, line, "err.code == return value");
  ++g_checks;
  if (memchr(err->message, '\0', sizeof err->message) == NULL) {
    report_failure(__FILE__, line, "err.message is NUL-terminated");
  } else if (err->message[0] == '\0') {
    report_failure(__FILE__, line, "err.message is not empty");
  }
  ++g_checks;
  if (out != sentinel) report_failure(__FILE__, line, "*out left untouched on failure");
}

/* ------------------------------------------------------------------------ */
/* Status strings                                                            */
/* ------------------------------------------------------------------------ */

static void test_status_str(void) {
  static const struct {
    int code;
    const char* name;
  } table[] = {
      {TG_OK, "TG_OK"},
      {TG_EINVAL, "TG_EINVAL"},
      {TG_ENOMEM, "TG_ENOMEM"},
      {TG_ERANGE, "TG_ERANGE"},
      {TG_EVERSION, "TG_EVERSION"},
      {TG_ETOOSMALL, "TG_ETOOSMALL"},
      {TG_ENOTFOUND, "TG_ENOTFOUND"},
      {TG_ESTATE, "TG_ESTATE"},
      {TG_EINTERNAL, "TG_EINTERNAL"},
      {TG_EFULL, "TG_EFULL"},
      {TG_EDROPPED, "TG_EDROPPED"},
      {TG_EIO, "TG_EIO"},
      {1, "TG_UNKNOWN"},
      {-12, "TG_UNKNOWN"},
      {100, "TG_UNKNOWN"},
      {-1000, "TG_UNKNOWN"},
      {INT_MIN, "TG_UNKNOWN"},
      {INT_MAX, "TG_UNKNOWN"},
  };
  size_t i;
  CTX("tg_status_str");
  for (i = 0; i < sizeof table / sizeof table[0]; ++i) {
    const char* s = tg_status_str(table[i].code);
    CTX("tg_status_str(%d)", table[i].code);
    REQUIRE(s != NULL);
    CHECK(strcmp(s, table[i].name) == 0);
  }
  /* The published numbers never change. */
  CTX("status numbers");
  CHECK(TG_OK == 0 && TG_EINVAL == -1 && TG_ENOMEM == -2 && TG_ERANGE == -3 && TG_EVERSION == -4 &&
        TG_ETOOSMALL == -5 && TG_ENOTFOUND == -6 && TG_ESTATE == -7 && TG_EINTERNAL == -8);
  CHECK(TG_EFULL == -9 && TG_EDROPPED == -10 && TG_EIO == -11);
}

/* ------------------------------------------------------------------------ */
/* Limiter options                                                           */
/* ------------------------------------------------------------------------ */

enum lim_field {
  L_NONE,
  L_CAPACITY,
  L_ON_FULL,
  L_SHADOW,
  L_MULTIPLIER,
  L_RATE,       /* of tiers[1] */
  L_BURST,      /* of tiers[1] */
  L_RESERVED,   /* of tiers[1] */
  L_NAME,       /* of tiers[1]: s */
  L_NAME_LEN,   /* of tiers[1]: a name of u bytes */
  L_TIERS_NULL, /* tiers NULL, tier_count 2 */
  L_COUNT_ZERO, /* tiers set, tier_count 0 */
  L_COUNT,      /* u valid distinct tiers */
  L_SIZE,       /* struct_size u (u >= sizeof: tail of zeros) */
  L_SIZE_TAIL,  /* struct_size u > sizeof, tail byte u-1 nonzero */
  L_NULL_OPTS,  /* opts NULL (defaults) */
};

typedef struct lim_case {
  const char* what;
  enum lim_field field;
  double d;
  uint64_t u;
  const char* s;
  int want;
} lim_case;

static const lim_case k_lim_cases[] = {
    {"defaults via NULL", L_NULL_OPTS, 0, 0, NULL, TG_OK},
    {"valid base", L_NONE, 0, 0, NULL, TG_OK},
    {"capacity 0", L_CAPACITY, 0, 0, NULL, TG_ERANGE},
    {"capacity 1", L_CAPACITY, 0, 1, NULL, TG_OK},
    {"capacity 2^26 + 1", L_CAPACITY, 0, (UINT64_C(1) << 26) + 1, NULL, TG_ERANGE},
    {"capacity 2^32", L_CAPACITY, 0, UINT64_C(1) << 32, NULL, TG_ERANGE},
    {"capacity UINT64_MAX", L_CAPACITY, 0, UINT64_MAX, NULL, TG_ERANGE},
    {"on_full 1", L_ON_FULL, 0, 1, NULL, TG_OK},
    {"on_full 2", L_ON_FULL, 0, 2, NULL, TG_EINVAL},
    {"on_full 7", L_ON_FULL, 0, 7, NULL, TG_EINVAL},
    {"on_full UINT32_MAX", L_ON_FULL, 0, UINT32_MAX, NULL, TG_EINVAL},
    {"shadow 1", L_SHADOW, 0, 1, NULL, TG_OK},
    {"shadow 2", L_SHADOW, 0, 2, NULL, TG_EINVAL},
    {"shadow UINT32_MAX", L_SHADOW, 0, UINT32_MAX, NULL, TG_EINVAL},
    {"multiplier 0", L_MULTIPLIER, 0.0, 0, NULL, TG_ERANGE},
    {"multiplier -0", L_MULTIPLIER, -0.0, 0, NULL, TG_ERANGE},
    {"multiplier -1", L_MULTIPLIER, -1.0, 0, NULL, TG_ERANGE},
    {"multiplier NaN", L_MULTIPLIER, NAN, 0, NULL, TG_ERANGE},
    {"multiplier +Inf", L_MULTIPLIER, INFINITY, 0, NULL, TG_ERANGE},
    {"multiplier -Inf", L_MULTIPLIER, -INFINITY, 0, NULL, TG_ERANGE},
    {"multiplier 1e6 + 1", L_MULTIPLIER, 1000001.0, 0, NULL, TG_ERANGE},
    {"multiplier 1e300", L_MULTIPLIER, 1e300, 0, NULL, TG_ERANGE},
    {"multiplier 1e6", L_MULTIPLIER, 1e6, 0, NULL, TG_OK},
    {"multiplier 0.001", L_MULTIPLIER, 0.001, 0, NULL, TG_OK},
    {"rate 0", L_RATE, 0.0, 0, NULL, TG_ERANGE},
    {"rate -0", L_RATE, -0.0, 0, NULL, TG_ERANGE},
    {"rate -5", L_RATE, -5.0, 0, NULL, TG_ERANGE},
    {"rate NaN", L_RATE, NAN, 0, NULL, TG_ERANGE},
    {"rate +Inf", L_RATE, INFINITY, 0, NULL, TG_ERANGE},
    {"rate -Inf", L_RATE, -INFINITY, 0, NULL, TG_ERANGE},
    {"rate 1e9 + 1", L_RATE, 1000000001.0, 0, NULL, TG_ERANGE},
    {"rate 2e9", L_RATE, 2e9, 0, NULL, TG_ERANGE},
    {"rate 1e300", L_RATE, 1e300, 0, NULL, TG_ERANGE},
    {"rate 1e9", L_RATE, 1e9, 0, NULL, TG_OK},
    {"rate 1e-8 (burst 10: 1e18 ns)", L_RATE, 1e-8, 0, NULL, TG_OK},
    {"rate 1e-9 (burst 10: burst * T > 2^62)", L_RATE, 1e-9, 0, NULL, TG_ERANGE},
    {"rate 1e-300", L_RATE, 1e-300, 0, NULL, TG_ERANGE},
    {"burst 0", L_BURST, 0, 0, NULL, TG_EINVAL},
    {"burst 1", L_BURST, 0, 1, NULL, TG_OK},
    {"burst UINT32_MAX", L_BURST, 0, UINT32_MAX, NULL, TG_OK},
    {"tier reserved 1", L_RESERVED, 0, 1, NULL, TG_EINVAL},
    {"tier reserved 0x80000000", L_RESERVED, 0, 0x80000000u, NULL, TG_EINVAL},
    {"tier name NULL", L_NAME, 0, 0, NULL, TG_EINVAL},
    {"tier name empty", L_NAME, 0, 0, "", TG_EINVAL},
    {"tier name duplicate", L_NAME, 0, 0, "a", TG_EINVAL},
    {"tier name 63 bytes", L_NAME_LEN, 0, 63, NULL, TG_OK},
    {"tier name 64 bytes", L_NAME_LEN, 0, 64, NULL, TG_EINVAL},
    {"tier name 65 bytes", L_NAME_LEN, 0, 65, NULL, TG_EINVAL},
    {"tier name 4000 bytes", L_NAME_LEN, 0, 4000, NULL, TG_EINVAL},
    {"tiers NULL, tier_count 2", L_TIERS_NULL, 0, 0, NULL, TG_EINVAL},
    {"tiers set, tier_count 0", L_COUNT_ZERO, 0, 0, NULL, TG_EINVAL},
    {"tier_count 1", L_COUNT, 0, 1, NULL, TG_OK},
    {"tier_count 64", L_COUNT, 0, 64, NULL, TG_OK},
    {"tier_count 65", L_COUNT, 0, 65, NULL, TG_EINVAL},
    {"tier_count 1000", L_COUNT, 0, 1000, NULL, TG_EINVAL},
    {"struct_size 0", L_SIZE, 0, 0, NULL, TG_EVERSION},
    {"struct_size 1", L_SIZE, 0, 1, NULL, TG_EVERSION},
    {"struct_size 4", L_SIZE, 0, 4, NULL, TG_EVERSION},
    /* 0.1.0's struct ended before hash_seed: that size is still accepted. */
    {"struct_size v1 - 8", L_SIZE, 0, offsetof(tg_limiter_options, hash_seed) - 8, NULL,
     TG_EVERSION},
    {"struct_size v1 - 1", L_SIZE, 0, offsetof(tg_limiter_options, hash_seed) - 1, NULL,
     TG_EVERSION},
    {"struct_size v1", L_SIZE, 0, offsetof(tg_limiter_options, hash_seed), NULL, TG_OK},
    {"struct_size sizeof - 1", L_SIZE, 0, sizeof(tg_limiter_options) - 1, NULL, TG_OK},
    {"struct_size sizeof + 1, zero tail", L_SIZE, 0, sizeof(tg_limiter_options) + 1, NULL, TG_OK},
    {"struct_size sizeof + 64, zero tail", L_SIZE, 0, sizeof(tg_limiter_options) + 64, NULL, TG_OK},
    {"struct_size 4096, zero tail", L_SIZE, 0, 4096, NULL, TG_OK},
    {"struct_size sizeof + 1, nonzero tail", L_SIZE_TAIL, 0, sizeof(tg_limiter_options) + 1, NULL,
     TG_EVERSION},
    {"struct_size sizeof + 64, nonzero last byte", L_SIZE_TAIL, 0, sizeof(tg_limiter_options) + 64,
     NULL, TG_EVERSION},
    {"struct_size 4096, nonzero last byte", L_SIZE_TAIL, 0, 4096, NULL, TG_EVERSION},
};

/* Room for an options struct larger than this library knows. */
typedef union big_lim_opts {
  tg_limiter_options o;
  unsigned char bytes[4096];
} big_lim_opts;

static tg_tier g_many_tiers[1000];
static char g_many_names[1000][8];
static char g_long_name[4001];

static void test_limiter_options(void) {
  size_t i;
  for (i = 0; i < 1000; ++i) {
    snprintf(g_many_names[i], sizeof g_many_names[i], "t%u", (unsigned)i);
    g_many_tiers[i].name = g_many_names[i];
    g_many_tiers[i].rate = 10;
    g_many_tiers[i].burst = 5;
    g_many_tiers[i].reserved = 0;
  }
  for (i = 0; i < sizeof k_lim_cases / sizeof k_lim_cases[0]; ++i) {
    const lim_case* c = &k_lim_cases[i];
    static big_lim_opts big;
    tg_tier tiers[2];
    tg_limiter_options* o = &big.o;
    const tg_limiter_options* arg = o;
    tg_limiter* out = SENTINEL_LIM;
    tg_limiter* out2 = SENTINEL_LIM;
    tg_error err;
    int rc, rc2;
    CTX("limiter options: %s", c->what);
    memset(&big, 0, sizeof big);
    tg_limiter_options_init(o);
    tiers[0].name = "a";
    tiers[0].rate = 10;
    tiers[0].burst = 5;
    tiers[0].reserved = 0;
    tiers[1].name = "b";
    tiers[1].rate = 100;
    tiers[1].burst = 10;
    tiers[1].reserved = 0;
    o->tiers = tiers;
    o->tier_count = 2;
    o->capacity = 64;
    switch (c->field) {
      case L_NONE:
        break;
      case L_NULL_OPTS:
        arg = NULL;
        break;
      case L_CAPACITY:
        o->capacity = c->u;
        break;
      case L_ON_FULL:
        o->on_full = (uint32_t)c->u;
        break;
      case L_SHADOW:
        o->shadow = (uint32_t)c->u;
        break;
      case L_MULTIPLIER:
        o->multiplier = c->d;
        break;
      case L_RATE:
        tiers[1].rate = c->d;
        break;
      case L_BURST:
        tiers[1].burst = (uint32_t)c->u;
        break;
      case L_RESERVED:
        tiers[1].reserved = (uint32_t)c->u;
        break;
      case L_NAME:
        tiers[1].name = c->s;
        break;
      case L_NAME_LEN:
        memset(g_long_name, 'x', (size_t)c->u);
        g_long_name[c->u] = '\0';
        tiers[1].name = g_long_name;
        break;
      case L_TIERS_NULL:
        o->tiers = NULL;
        break;
      case L_COUNT_ZERO:
        o->tier_count = 0;
        break;
      case L_COUNT:
        o->tiers = g_many_tiers;
        o->tier_count = (uint32_t)c->u;
        break;
      case L_SIZE:
        o->struct_size = (uint32_t)c->u;
        break;
      case L_SIZE_TAIL:
        o->struct_size = (uint32_t)c->u;
        big.bytes[c->u - 1] = 1;
        break;
    }
    fill_garbage(&err);
    rc = tg_limiter_new(arg, &out, &err);
    rc2 = tg_limiter_new(arg, &out2, NULL);
    check_failed_new(rc, rc2, c->want, &err, out, SENTINEL_LIM, __LINE__);
    if (rc == TG_OK) {
      CHECK(out != SENTINEL_LIM && out != NULL);
      CHECK_EQ(err.code, TG_OK);
      CHECK_EQ(err.message[0], '\0');
      if (c->field == L_SIZE && out != SENTINEL_LIM) {
        /* The known part of a larger struct was read. */
        tg_limiter_stats st;
        uint32_t idx = 9;
        CHECK_EQ(tg_limiter_stats_get(out, &st), TG_OK);
        CHECK_EQ(st.capacity, 128); /* 64 keys -> 128 slots */
        CHECK_EQ(tg_limiter_tier_index(out, "b", &idx), TG_OK);
        CHECK_EQ(idx, 1);
      }
      if (c->field == L_NAME_LEN && out != SENTINEL_LIM) {
        uint32_t idx = 9;
        CHECK_EQ(tg_limiter_tier_index(out, g_long_name, &idx), TG_OK);
        CHECK_EQ(idx, 1);
      }
    }
    if (rc == TG_OK && out != SENTINEL_LIM) tg_limiter_free(out);
    if (rc2 == TG_OK && out2 != SENTINEL_LIM) tg_limiter_free(out2);
  }
  /* NULL out, with and without options. */
  {
    tg_error err;
    tg_limiter_options o;
    CTX("tg_limiter_new(out = NULL)");
    tg_limiter_options_init(&o);
    fill_garbage(&err);
    ROW(tg_limiter_new(NULL, NULL, &err), TG_EINVAL);
    CHECK_EQ(err.code, TG_EINVAL);
    CHECK(err.message[0] != '\0' && memchr(err.message, '\0', sizeof err.message) != NULL);
    fill_garbage(&err);
    ROW(tg_limiter_new(&o, NULL, &err), TG_EINVAL);
    CHECK_EQ(err.code, TG_EINVAL);
    ROW(tg_limiter_new(&o, NULL, NULL), TG_EINVAL);
  }
  tg_limiter_options_init(NULL); /* NULL-safe */
}

/* ------------------------------------------------------------------------ */
/* Breaker options                                                           */
/* ------------------------------------------------------------------------ */

enum brk_field {
  B_NONE,
  B_WINDOW_TYPE,
  B_COUNT_SIZE, /* count window of u calls, minimum_calls min(u, 20) unless 0 */
  B_TIME_SIZE,  /* time window of u buckets */
  B_BUCKET_NS,  /* time window, bucket u */
  B_BUCKET_NS_COUNT,
  B_MIN_CALLS,      /* count window of 100 */
  B_MIN_CALLS_TIME, /* time window of 4 buckets */
  B_FAILURE_RATE,
  B_SLOW_RATE,
  B_SLOW_NS,
  B_OPEN_NS,
  B_MAX_OPEN_NS,
  B_BACKOFF,
  B_PROBES,
  B_MAX_IN_FLIGHT,
  B_MAX_HALF_OPEN,
  B_SIZE,
  B_SIZE_TAIL,
  B_NULL_OPTS,
};

typedef struct brk_case {
  const char* what;
  enum brk_field field;
  double d;
  uint64_t u;
  int want;
} brk_case;

static const brk_case k_brk_cases[] = {
    {"defaults via NULL", B_NULL_OPTS, 0, 0, TG_OK},
    {"valid base", B_NONE, 0, 0, TG_OK},
    {"window_type 2", B_WINDOW_TYPE, 0, 2, TG_EINVAL},
    {"window_type UINT32_MAX", B_WINDOW_TYPE, 0, UINT32_MAX, TG_EINVAL},
    {"count window_size 0", B_COUNT_SIZE, 0, 0, TG_ERANGE},
    {"count window_size 1", B_COUNT_SIZE, 0, 1, TG_OK},
    {"count window_size 65536", B_COUNT_SIZE, 0, 65536, TG_OK},
    {"count window_size 65537", B_COUNT_SIZE, 0, 65537, TG_ERANGE},
    {"count window_size UINT32_MAX", B_COUNT_SIZE, 0, UINT32_MAX, TG_ERANGE},
    {"time window_size 0", B_TIME_SIZE, 0, 0, TG_ERANGE},
    {"time window_size 1", B_TIME_SIZE, 0, 1, TG_OK},
    {"time window_size 256", B_TIME_SIZE, 0, 256, TG_OK},
    {"time window_size 257", B_TIME_SIZE, 0, 257, TG_ERANGE},
    {"time bucket_ns 0", B_BUCKET_NS, 0, 0, TG_ERANGE},
    {"time bucket_ns 1", B_BUCKET_NS, 0, 1, TG_OK},
    {"time bucket_ns 2^62", B_BUCKET_NS, 0, P62, TG_OK},
    {"time bucket_ns 2^62 + 1", B_BUCKET_NS, 0, P62 + 1, TG_ERANGE},
    {"time bucket_ns UINT64_MAX", B_BUCKET_NS, 0, UINT64_MAX, TG_ERANGE},
    {"count window ignores bucket_ns 0", B_BUCKET_NS_COUNT, 0, 0, TG_OK},
    {"minimum_calls 0", B_MIN_CALLS, 0, 0, TG_EINVAL},
    {"minimum_calls 1", B_MIN_CALLS, 0, 1, TG_OK},
    {"minimum_calls = window_size", B_MIN_CALLS, 0, 100, TG_OK},
    {"minimum_calls > window_size (count)", B_MIN_CALLS, 0, 101, TG_EINVAL},
    {"minimum_calls UINT32_MAX (count)", B_MIN_CALLS, 0, UINT32_MAX, TG_EINVAL},
    {"minimum_calls > window_size (time: allowed)", B_MIN_CALLS_TIME, 0, 1000, TG_OK},
    {"minimum_calls 0 (time)", B_MIN_CALLS_TIME, 0, 0, TG_EINVAL},
    {"failure_rate_threshold 0", B_FAILURE_RATE, 0.0, 0, TG_ERANGE},
    {"failure_rate_threshold -1", B_FAILURE_RATE, -1.0, 0, TG_ERANGE},
    {"failure_rate_threshold 100.000001", B_FAILURE_RATE, 100.000001, 0, TG_ERANGE},
    {"failure_rate_threshold NaN", B_FAILURE_RATE, NAN, 0, TG_ERANGE},
    {"failure_rate_threshold +Inf", B_FAILURE_RATE, INFINITY, 0, TG_ERANGE},
    {"failure_rate_threshold -Inf", B_FAILURE_RATE, -INFINITY, 0, TG_ERANGE},
    {"failure_rate_threshold 100", B_FAILURE_RATE, 100.0, 0, TG_OK},
    {"failure_rate_threshold 1e-9", B_FAILURE_RATE, 1e-9, 0, TG_OK},
    {"slow_rate_threshold 0", B_SLOW_RATE, 0.0, 0, TG_ERANGE},
    {"slow_rate_threshold -0.5", B_SLOW_RATE, -0.5, 0, TG_ERANGE},
    {"slow_rate_threshold 101", B_SLOW_RATE, 101.0, 0, TG_ERANGE},
    {"slow_rate_threshold NaN", B_SLOW_RATE, NAN, 0, TG_ERANGE},
    {"slow_rate_threshold +Inf", B_SLOW_RATE, INFINITY, 0, TG_ERANGE},
    {"slow_rate_threshold 100", B_SLOW_RATE, 100.0, 0, TG_OK},
    {"slow_call_ns 0", B_SLOW_NS, 0, 0, TG_ERANGE},
    {"slow_call_ns 1", B_SLOW_NS, 0, 1, TG_OK},
    {"slow_call_ns 2^62", B_SLOW_NS, 0, P62, TG_OK},
    {"slow_call_ns 2^62 + 1", B_SLOW_NS, 0, P62 + 1, TG_ERANGE},
    {"open_ns 0", B_OPEN_NS, 0, 0, TG_ERANGE},
    {"open_ns 1", B_OPEN_NS, 0, 1, TG_OK},
    {"open_ns 2^62 + 1", B_OPEN_NS, 0, P62 + 1, TG_ERANGE},
    {"max_open_ns < open_ns", B_MAX_OPEN_NS, 0, 999, TG_ERANGE},
    {"max_open_ns 0", B_MAX_OPEN_NS, 0, 0, TG_ERANGE},
    {"max_open_ns = open_ns", B_MAX_OPEN_NS, 0, 1000, TG_OK},
    {"max_open_ns 2^62", B_MAX_OPEN_NS, 0, P62, TG_OK},
    {"max_open_ns 2^62 + 1", B_MAX_OPEN_NS, 0, P62 + 1, TG_ERANGE},
    {"max_open_ns UINT64_MAX", B_MAX_OPEN_NS, 0, UINT64_MAX, TG_ERANGE},
    {"backoff_multiplier 0", B_BACKOFF, 0.0, 0, TG_ERANGE},
    {"backoff_multiplier 0.999", B_BACKOFF, 0.999, 0, TG_ERANGE},
    {"backoff_multiplier -2", B_BACKOFF, -2.0, 0, TG_ERANGE},
    {"backoff_multiplier NaN", B_BACKOFF, NAN, 0, TG_ERANGE},
    {"backoff_multiplier +Inf", B_BACKOFF, INFINITY, 0, TG_ERANGE},
    {"backoff_multiplier 1000.5", B_BACKOFF, 1000.5, 0, TG_ERANGE},
    {"backoff_multiplier 1", B_BACKOFF, 1.0, 0, TG_OK},
    {"backoff_multiplier 1000", B_BACKOFF, 1000.0, 0, TG_OK},
    {"half_open_probes 0", B_PROBES, 0, 0, TG_ERANGE},
    {"half_open_probes 1", B_PROBES, 0, 1, TG_OK},
    {"half_open_probes 1024", B_PROBES, 0, 1024, TG_OK},
    {"half_open_probes 1025", B_PROBES, 0, 1025, TG_ERANGE},
    {"half_open_probes UINT32_MAX", B_PROBES, 0, UINT32_MAX, TG_ERANGE},
    {"max_in_flight UINT32_MAX", B_MAX_IN_FLIGHT, 0, UINT32_MAX, TG_OK},
    {"max_half_open_ns 2^62", B_MAX_HALF_OPEN, 0, P62, TG_OK},
    {"max_half_open_ns 2^62 + 1", B_MAX_HALF_OPEN, 0, P62 + 1, TG_ERANGE},
    {"max_half_open_ns UINT64_MAX", B_MAX_HALF_OPEN, 0, UINT64_MAX, TG_ERANGE},
    {"struct_size 0", B_SIZE, 0, 0, TG_EVERSION},
    {"struct_size 4", B_SIZE, 0, 4, TG_EVERSION},
    {"struct_size sizeof - 8", B_SIZE, 0, sizeof(tg_breaker_options) - 8, TG_EVERSION},
    {"struct_size sizeof - 1", B_SIZE, 0, sizeof(tg_breaker_options) - 1, TG_EVERSION},
    {"struct_size sizeof + 8, zero tail", B_SIZE, 0, sizeof(tg_breaker_options) + 8, TG_OK},
    {"struct_size 4096, zero tail", B_SIZE, 0, 4096, TG_OK},
    {"struct_size sizeof + 8, nonzero tail", B_SIZE_TAIL, 0, sizeof(tg_breaker_options) + 8,
     TG_EVERSION},
    {"struct_size 4096, nonzero last byte", B_SIZE_TAIL, 0, 4096, TG_EVERSION},
};

typedef union big_brk_opts {
  tg_breaker_options o;
  unsigned char bytes[4096];
} big_brk_opts;

static void test_breaker_options(void) {
  size_t i;
  for (i = 0; i < sizeof k_brk_cases / sizeof k_brk_cases[0]; ++i) {
    const brk_case* c = &k_brk_cases[i];
    static big_brk_opts big;
    tg_breaker_options* o = &big.o;
    const tg_breaker_options* arg = o;
    tg_breaker* out = SENTINEL_BRK;
    tg_breaker* out2 = SENTINEL_BRK;
    tg_error err;
    int rc, rc2;
    CTX("breaker options: %s", c->what);
    memset(&big, 0, sizeof big);
    tg_breaker_options_init(o);
    o->open_ns = 1000;
    o->max_open_ns = 1000000;
    switch (c->field) {
      case B_NONE:
        break;
      case B_NULL_OPTS:
        arg = NULL;
        break;
      case B_WINDOW_TYPE:
        o->window_type = (uint32_t)c->u;
        break;
      case B_COUNT_SIZE:
        o->window_size = (uint32_t)c->u;
        if (c->u != 0 && c->u < o->minimum_calls) o->minimum_calls = (uint32_t)c->u;
        break;
      case B_TIME_SIZE:
        o->window_type = TG_WINDOW_TIME;
        o->window_size = (uint32_t)c->u;
        break;
      case B_BUCKET_NS:
        o->window_type = TG_WINDOW_TIME;
        o->window_size = 4;
        o->bucket_ns = c->u;
        break;
      case B_BUCKET_NS_COUNT:
        o->bucket_ns = c->u;
        break;
      case B_MIN_CALLS:
        o->minimum_calls = (uint32_t)c->u;
        break;
      case B_MIN_CALLS_TIME:
        o->window_type = TG_WINDOW_TIME;
        o->window_size = 4;
        o->minimum_calls = (uint32_t)c->u;
        break;
      case B_FAILURE_RATE:
        o->failure_rate_threshold = c->d;
        break;
      case B_SLOW_RATE:
        o->slow_rate_threshold = c->d;
        break;
      case B_SLOW_NS:
        o->slow_call_ns = c->u;
        break;
      case B_OPEN_NS:
        o->open_ns = c->u;
        if (c->u > o->max_open_ns && c->u <= P62) o->max_open_ns = c->u;
        if (c->u > P62) o->max_open_ns = P62; /* so only open_ns is out of range */
        break;
      case B_MAX_OPEN_NS:
        o->max_open_ns = c->u;
        break;
      case B_BACKOFF:
        o->backoff_multiplier = c->d;
        break;
      case B_PROBES:
        o->half_open_probes = (uint32_t)c->u;
        break;
      case B_MAX_IN_FLIGHT:
        o->max_in_flight = (uint32_t)c->u;
        break;
      case B_MAX_HALF_OPEN:
        o->max_half_open_ns = c->u;
        break;
      case B_SIZE:
        o->struct_size = (uint32_t)c->u;
        break;
      case B_SIZE_TAIL:
        o->struct_size = (uint32_t)c->u;
        big.bytes[c->u - 1] = 1;
        break;
    }
    fill_garbage(&err);
    rc = tg_breaker_new(arg, &out, &err);
    rc2 = tg_breaker_new(arg, &out2, NULL);
    check_failed_new(rc, rc2, c->want, &err, out, SENTINEL_BRK, __LINE__);
    if (rc == TG_OK) {
      CHECK(out != SENTINEL_BRK && out != NULL);
      CHECK_EQ(err.code, TG_OK);
      CHECK_EQ(err.message[0], '\0');
      if (out != SENTINEL_BRK) {
        tg_breaker_permit p;
        CHECK_EQ(tg_breaker_acquire(out, 1, &p), TG_OK);
        CHECK_EQ(p.allowed, 1);
        CHECK_EQ(tg_breaker_record(out, &p, TG_OUTCOME_FAILURE, 1, 1), TG_OK);
      }
    }
    if (rc == TG_OK && out != SENTINEL_BRK) tg_breaker_free(out);
    if (rc2 == TG_OK && out2 != SENTINEL_BRK) tg_breaker_free(out2);
  }
  {
    tg_error err;
    CTX("tg_breaker_new(out = NULL)");
    fill_garbage(&err);
    ROW(tg_breaker_new(NULL, NULL, &err), TG_EINVAL);
    CHECK_EQ(err.code, TG_EINVAL);
    CHECK(err.message[0] != '\0' && memchr(err.message, '\0', sizeof err.message) != NULL);
    ROW(tg_breaker_new(NULL, NULL, NULL), TG_EINVAL);
  }
  tg_breaker_options_init(NULL); /* NULL-safe */
}

/* ------------------------------------------------------------------------ */
/* Limiter calls                                                             */
/* ------------------------------------------------------------------------ */

/* Nothing was consumed: counters and buckets as before. */
static void check_untouched(tg_limiter* l, const tg_limiter_stats* before, uint64_t now) {
  tg_limiter_stats s;
  uint64_t r = 0;
  CHECK_EQ(tg_limiter_stats_get(l, &s), TG_OK);
  CHECK_EQ(s.admitted, before->admitted);
  CHECK_EQ(s.rejected, before->rejected);
  CHECK_EQ(s.keys, before->keys);
  CHECK_EQ(s.cancelled, before->cancelled);
  CHECK_EQ(tg_limiter_remaining(l, "a", 1, 0, now, &r), TG_OK);
  CHECK_EQ(r, 5);
  CHECK_EQ(tg_limiter_remaining(l, "bb", 2, 0, now, &r), TG_OK);
  CHECK_EQ(r, 5);
  CHECK_EQ(tg_limiter_remaining(l, "", 0, 0, now, &r), TG_OK);
  CHECK_EQ(r, 5);
}

static void test_limiter_calls(void) {
  tg_tier tiers[2];
  tg_limiter_options o;
  tg_limiter* l;
  tg_limiter_stats before;
  tg_limit_decision d;
  tg_reservation res;
  uint64_t r;
  uint32_t idx;
  double m;
  const uint64_t now = 1000000000;
  tiers[0].name = "a";
  tiers[0].rate = 10;
  tiers[0].burst = 5;
  tiers[0].reserved = 0;
  tiers[1].name = "b";
  tiers[1].rate = 100;
  tiers[1].burst = 10;
  tiers[1].reserved = 0;
  tg_limiter_options_init(&o);
  o.tiers = tiers;
  o.tier_count = 2;
  o.capacity = 64;
  l = NEW_LIMITER(&o);
  memset(&res, 0, sizeof res);
  CHECK_EQ(tg_limiter_stats_get(l, &before), TG_OK);

  CTX("limiter: NULL handle");
  ROW(tg_limiter_acquire(NULL, "a", 1, 0, 1, now, &d), TG_EINVAL);
  ROW(tg_limiter_peek(NULL, "a", 1, 0, 1, now, &d), TG_EINVAL);
  ROW(tg_limiter_remaining(NULL, "a", 1, 0, now, &r), TG_EINVAL);
  ROW(tg_limiter_reserve(NULL, "a", 1, 0, 1, now, &res, &d), TG_EINVAL);
  ROW(tg_limiter_cancel(NULL, &res, now), TG_EINVAL);
  ROW(tg_limiter_acquire_many(NULL, (const uint8_t*)"a", (const uint32_t[]){0, 1}, 1, NULL, NULL,
                              now, &d),
      TG_EINVAL);
  ROW(tg_limiter_acquire_many(NULL, NULL, NULL, 0, NULL, NULL, now, NULL), TG_EINVAL);
  ROW(tg_limiter_set_multiplier(NULL, 1.0, now), TG_EINVAL);
  ROW(tg_limiter_get_multiplier(NULL, &m), TG_EINVAL);
  ROW(tg_limiter_set_shadow(NULL, 1), TG_EINVAL);
  ROW(tg_limiter_tier_index(NULL, "a", &idx), TG_EINVAL);
  ROW(tg_limiter_stats_get(NULL, &before), TG_EINVAL);
  tg_limiter_free(NULL); /* no-op */

  CTX("limiter: NULL outputs");
  ROW(tg_limiter_acquire(l, "a", 1, 0, 1, now, NULL), TG_EINVAL);
  ROW(tg_limiter_peek(l, "a", 1, 0, 1, now, NULL), TG_EINVAL);
  ROW(tg_limiter_remaining(l, "a", 1, 0, now, NULL), TG_EINVAL);
  ROW(tg_limiter_reserve(l, "a", 1, 0, 1, now, NULL, &d), TG_EINVAL);
  ROW(tg_limiter_reserve(l, "a", 1, 0, 1, now, &res, NULL), TG_EINVAL);
  ROW(tg_limiter_reserve(l, "a", 1, 0, 1, now, NULL, NULL), TG_EINVAL);
  ROW(tg_limiter_cancel(l, NULL, now), TG_EINVAL);
  ROW(tg_limiter_get_multiplier(l, NULL), TG_EINVAL);
  ROW(tg_limiter_tier_index(l, "a", NULL), TG_EINVAL);
  ROW(tg_limiter_tier_index(l, NULL, &idx), TG_EINVAL);
  ROW(tg_limiter_stats_get(l, NULL), TG_EINVAL);
  check_untouched(l, &before, now);

  CTX("limiter: key NULL with key_len > 0");
  ROW(tg_limiter_acquire(l, NULL, 1, 0, 1, now, &d), TG_EINVAL);
  ROW(tg_limiter_acquire(l, NULL, SIZE_MAX, 0, 1, now, &d), TG_EINVAL);
  ROW(tg_limiter_peek(l, NULL, 3, 0, 1, now, &d), TG_EINVAL);
  ROW(tg_limiter_remaining(l, NULL, 3, 0, now, &r), TG_EINVAL);
  ROW(tg_limiter_reserve(l, NULL, 3, 0, 1, now, &res, &d), TG_EINVAL);

  CTX("limiter: cost 0");
  ROW(tg_limiter_acquire(l, "a", 1, 0, 0, now, &d), TG_EINVAL);
  ROW(tg_limiter_peek(l, "a", 1, 0, 0, now, &d), TG_EINVAL);
  ROW(tg_limiter_reserve(l, "a", 1, 0, 0, now, &res, &d), TG_EINVAL);

  CTX("limiter: tier out of range");
  ROW(tg_limiter_acquire(l, "a", 1, 2, 1, now, &d), TG_EINVAL);
  ROW(tg_limiter_acquire(l, "a", 1, UINT32_MAX, 1, now, &d), TG_EINVAL);
  ROW(tg_limiter_peek(l, "a", 1, 2, 1, now, &d), TG_EINVAL);
  ROW(tg_limiter_remaining(l, "a", 1, 2, now, &r), TG_EINVAL);
  ROW(tg_limiter_reserve(l, "a", 1, 2, 1, now, &res, &d), TG_EINVAL);
  check_untouched(l, &before, now);

  CTX("limiter: cancel of a malformed reservation");
  {
    tg_reservation bad;
    memset(&bad, 0, sizeof bad);
    ROW(tg_limiter_cancel(l, &bad, now), TG_OK); /* zeroed: a rejected reservation */
    bad.flags = 0x80000000u;                     /* a bit no version of the library sets */
    ROW(tg_limiter_cancel(l, &bad, now), TG_EINVAL);
    bad.flags = 0xffffffffu;
    ROW(tg_limiter_cancel(l, &bad, now), TG_EINVAL);
    bad.flags = 1;
    bad.tier = 2;
    ROW(tg_limiter_cancel(l, &bad, now), TG_EINVAL);
    bad.tier = UINT32_MAX;
    ROW(tg_limiter_cancel(l, &bad, now), TG_EINVAL);
  }
  check_untouched(l, &before, now);

  CTX("limiter: multiplier and shadow");
  ROW(tg_limiter_set_multiplier(l, 0.0, now), TG_ERANGE);
  ROW(tg_limiter_set_multiplier(l, -0.0, now), TG_ERANGE);
  ROW(tg_limiter_set_multiplier(l, -1.0, now), TG_ERANGE);
  ROW(tg_limiter_set_multiplier(l, INFINITY, now), TG_ERANGE);
  ROW(tg_limiter_set_multiplier(l, -INFINITY, now), TG_ERANGE);
  ROW(tg_limiter_set_multiplier(l, 1000001.0, now), TG_ERANGE);
  ROW(tg_limiter_set_multiplier(l, 1e300, now), TG_ERANGE);
  /* The same value gives the same code as in tg_limiter_options.multiplier. */
  ROW(tg_limiter_set_multiplier(l, NAN, now), TG_ERANGE);
  m = 0;
  ROW(tg_limiter_get_multiplier(l, &m), TG_OK);
  CHECK(m == 1.0); /* unchanged by every rejected call */
  ROW(tg_limiter_set_shadow(l, 2), TG_EINVAL);
  ROW(tg_limiter_set_shadow(l, -1), TG_EINVAL);
  ROW(tg_limiter_set_shadow(l, INT_MAX), TG_EINVAL);
  {
    /* Still enforcing: the 6th unit request is rejected. */
    int i;
    for (i = 0; i < 5; ++i) {
      ROW(tg_limiter_acquire(l, "shadowcheck", 11, 0, 1, now, &d), TG_OK);
      CHECK_EQ(d.allowed, 1);
    }
    ROW(tg_limiter_acquire(l, "shadowcheck", 11, 0, 1, now, &d), TG_OK);
    CHECK_EQ(d.allowed, 0);
    CHECK_EQ(d.flags, 0);
    CHECK_EQ(tg_limiter_stats_get(l, &before), TG_OK);
  }

  CTX("limiter: tier_index");
  {
    char longname[200];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    idx = 42;
    ROW(tg_limiter_tier_index(l, "", &idx), TG_ENOTFOUND);
    ROW(tg_limiter_tier_index(l, "c", &idx), TG_ENOTFOUND);
    ROW(tg_limiter_tier_index(l, longname, &idx), TG_ENOTFOUND);
    CHECK_EQ(idx, 42);
  }

  CTX("limiter: acquire_many");
  {
    const uint8_t keys[] = {'a', 'b', 'b'};
    const uint32_t good_offsets[] = {0, 1, 3, 3}; /* "a", "bb", "" */
    const uint32_t decreasing[] = {0, 1, 3, 2};
    const uint32_t decreasing_first[] = {1, 0, 3, 3};
    const uint32_t tiers_ok[] = {0, 1, 0};
    const uint32_t tiers_bad_last[] = {0, 1, 2};
    const uint32_t tiers_huge_last[] = {0, 0, UINT32_MAX};
    const uint32_t costs_ok[] = {1, 2, 3};
    const uint32_t costs_zero_last[] = {1, 2, 0};
    tg_limit_decision out[3];
    ROW(tg_limiter_acquire_many(l, keys, decreasing, 3, tiers_ok, costs_ok, now, out), TG_EINVAL);
    ROW(tg_limiter_acquire_many(l, keys, decreasing_first, 3, tiers_ok, costs_ok, now, out),
        TG_EINVAL);
    ROW(tg_limiter_acquire_many(l, keys, good_offsets, 3, tiers_bad_last, costs_ok, now, out),
        TG_EINVAL);
    ROW(tg_limiter_acquire_many(l, keys, good_offsets, 3, tiers_huge_last, NULL, now, out),
        TG_EINVAL);
    ROW(tg_limiter_acquire_many(l, keys, good_offsets, 3, tiers_ok, costs_zero_last, now, out),
        TG_EINVAL);
    ROW(tg_limiter_acquire_many(l, NULL, good_offsets, 3, tiers_ok, costs_ok, now, out), TG_EINVAL);
    ROW(tg_limiter_acquire_many(l, keys, NULL, 3, tiers_ok, costs_ok, now, out), TG_EINVAL);
    ROW(tg_limiter_acquire_many(l, keys, good_offsets, 3, tiers_ok, costs_ok, now, NULL),
        TG_EINVAL);
    check_untouched(l, &before, now);
    /* The same batch, well formed, is fine. */
    ROW(tg_limiter_acquire_many(l, keys, good_offsets, 3, tiers_ok, costs_ok, now, out), TG_OK);
    CHECK_EQ(out[0].allowed, 1);
    CHECK_EQ(out[1].allowed, 1);
    CHECK_EQ(out[2].allowed, 1);
  }
  tg_limiter_free(l);
}

/* ------------------------------------------------------------------------ */
/* Breaker calls                                                             */
/* ------------------------------------------------------------------------ */

static void test_breaker_calls(void) {
  tg_breaker_options o;
  tg_breaker* b;
  tg_breaker_permit p, held;
  tg_breaker_stats st;
  int s;
  const uint64_t now = 1000;
  tg_breaker_options_init(&o);
  o.max_in_flight = 1;
  o.window_size = 4;
  o.minimum_calls = 1;
  b = NEW_BREAKER(&o);

  CTX("breaker: NULL handle");
  ROW(tg_breaker_acquire(NULL, now, &p), TG_EINVAL);
  ROW(tg_breaker_record(NULL, &p, TG_OUTCOME_SUCCESS, 0, now), TG_EINVAL);
  ROW(tg_breaker_acquire_many(NULL, 1, now, &p), TG_EINVAL);
  ROW(tg_breaker_acquire_many(NULL, 0, now, NULL), TG_EINVAL);
  ROW(tg_breaker_record_many(NULL, &p, (const int32_t[]){0}, NULL, 1, now), TG_EINVAL);
  ROW(tg_breaker_record_many(NULL, NULL, NULL, NULL, 0, now), TG_EINVAL);
  ROW(tg_breaker_state(NULL, &s), TG_EINVAL);
  ROW(tg_breaker_transition(NULL, TG_BREAKER_OPEN, now), TG_EINVAL);
  ROW(tg_breaker_set_event_callback(NULL, NULL, NULL), TG_EINVAL);
  ROW(tg_breaker_stats_get(NULL, now, &st), TG_EINVAL);
  tg_breaker_free(NULL); /* no-op */

  CTX("breaker: NULL outputs");
  ROW(tg_breaker_acquire(b, now, NULL), TG_EINVAL);
  ROW(tg_breaker_acquire_many(b, 2, now, NULL), TG_EINVAL);
  ROW(tg_breaker_state(b, NULL), TG_EINVAL);
  ROW(tg_breaker_stats_get(b, now, NULL), TG_EINVAL);
  ROW(tg_breaker_record(b, NULL, TG_OUTCOME_SUCCESS, 0, now), TG_EINVAL);
  ROW(tg_breaker_stats_get(b, now, &st), TG_OK);
  CHECK_EQ(st.admitted, 0); /* nothing was admitted by the failed calls */
  CHECK_EQ(st.in_flight, 0);

  CTX("breaker: invalid outcome records nothing");
  ROW(tg_breaker_acquire(b, now, &held), TG_OK);
  CHECK_EQ(held.allowed, 1);
  ROW(tg_breaker_record(b, &held, 3, 0, now), TG_EINVAL);
  ROW(tg_breaker_record(b, &held, -1, 0, now), TG_EINVAL);
  ROW(tg_breaker_record(b, &held, INT_MAX, 0, now), TG_EINVAL);
  ROW(tg_breaker_record(b, &held, INT_MIN, 0, now), TG_EINVAL);
  {
    const int32_t bad_last[2] = {TG_OUTCOME_FAILURE, 3};
    const int32_t bad_first[2] = {-1, TG_OUTCOME_FAILURE};
    const tg_breaker_permit two[2] = {held, held};
    ROW(tg_breaker_record_many(b, two, bad_last, NULL, 2, now), TG_EINVAL);
    ROW(tg_breaker_record_many(b, two, bad_first, NULL, 2, now), TG_EINVAL);
    ROW(tg_breaker_record_many(b, NULL, bad_last, NULL, 2, now), TG_EINVAL);
    ROW(tg_breaker_record_many(b, two, NULL, NULL, 2, now), TG_EINVAL);
  }
  ROW(tg_breaker_stats_get(b, now, &st), TG_OK);
  CHECK_EQ(st.in_flight, 1); /* still held */
  CHECK_EQ(st.successes + st.failures + st.ignored, 0);
  CHECK_EQ(st.window_calls, 0);
  ROW(tg_breaker_state(b, &s), TG_OK);
  CHECK_EQ(s, TG_BREAKER_CLOSED);
  ROW(tg_breaker_record(b, &held, TG_OUTCOME_SUCCESS, 0, now), TG_OK);
  ROW(tg_breaker_stats_get(b, now, &st), TG_OK);
  CHECK_EQ(st.in_flight, 0);
  CHECK_EQ(st.successes, 1);

  CTX("breaker: invalid state");
  ROW(tg_breaker_transition(b, -1, now), TG_EINVAL);
  ROW(tg_breaker_transition(b, 7, now), TG_EINVAL);
  ROW(tg_breaker_transition(b, 100, now), TG_EINVAL);
  ROW(tg_breaker_transition(b, INT_MIN, now), TG_EINVAL);
  ROW(tg_breaker_transition(b, INT_MAX, now), TG_EINVAL);
  ROW(tg_breaker_state(b, &s), TG_OK);
  CHECK_EQ(s, TG_BREAKER_CLOSED);
  ROW(tg_breaker_stats_get(b, now, &st), TG_OK);
  CHECK_EQ(st.transitions, 0);
  /* Every valid state is accepted. */
  for (s = TG_BREAKER_CLOSED; s <= TG_BREAKER_METRICS_ONLY; ++s) {
    ROW(tg_breaker_transition(b, s, now), TG_OK);
  }
  ROW(tg_breaker_transition(b, TG_BREAKER_CLOSED, now), TG_OK);
  ROW(tg_breaker_acquire_many(b, 0, now, NULL), TG_OK);
  tg_breaker_free(b);
}

/* ------------------------------------------------------------------------ */
/* Handles: cross-type, freed parent, free(NULL)                             */
/* ------------------------------------------------------------------------ */

static void test_handles(void) {
  tg_limiter* l = NEW_LIMITER(NULL);
  tg_breaker* b = NEW_BREAKER(NULL);
  tg_breaker* lb = (tg_breaker*)(void*)l; /* a limiter where a breaker is expected */
  tg_limiter* bl = (tg_limiter*)(void*)b; /* and the other way */
  tg_breaker_permit p;
  tg_breaker_stats bst;
  tg_limiter_stats lst;
  tg_limit_decision d;
  tg_reservation res;
  uint64_t r;
  uint32_t idx;
  double m;
  int s;
  memset(&p, 0, sizeof p);
  memset(&res, 0, sizeof res);

  CTX("cross-type: limiter as breaker");
  ROW(tg_breaker_acquire(lb, 1, &p), TG_EINVAL);
  ROW(tg_breaker_record(lb, &p, TG_OUTCOME_SUCCESS, 0, 1), TG_EINVAL);
  ROW(tg_breaker_acquire_many(lb, 1, 1, &p), TG_EINVAL);
  ROW(tg_breaker_record_many(lb, &p, (const int32_t[]){0}, NULL, 1, 1), TG_EINVAL);
  ROW(tg_breaker_state(lb, &s), TG_EINVAL);
  ROW(tg_breaker_transition(lb, TG_BREAKER_OPEN, 1), TG_EINVAL);
  ROW(tg_breaker_set_event_callback(lb, NULL, NULL), TG_EINVAL);
  ROW(tg_breaker_stats_get(lb, 1, &bst), TG_EINVAL);
  tg_breaker_free(lb);                                    /* not a breaker: no-op */
  ROW(tg_limiter_acquire(l, "k", 1, 0, 1, 1, &d), TG_OK); /* the limiter lives on */
  CHECK_EQ(d.allowed, 1);

  CTX("cross-type: breaker as limiter");
  ROW(tg_limiter_acquire(bl, "k", 1, 0, 1, 1, &d), TG_EINVAL);
  ROW(tg_limiter_peek(bl, "k", 1, 0, 1, 1, &d), TG_EINVAL);
  ROW(tg_limiter_remaining(bl, "k", 1, 0, 1, &r), TG_EINVAL);
  ROW(tg_limiter_reserve(bl, "k", 1, 0, 1, 1, &res, &d), TG_EINVAL);
  ROW(tg_limiter_cancel(bl, &res, 1), TG_EINVAL);
  ROW(tg_limiter_acquire_many(bl, NULL, NULL, 0, NULL, NULL, 1, NULL), TG_EINVAL);
  ROW(tg_limiter_set_multiplier(bl, 1.0, 1), TG_EINVAL);
  ROW(tg_limiter_get_multiplier(bl, &m), TG_EINVAL);
  ROW(tg_limiter_set_shadow(bl, 0), TG_EINVAL);
  ROW(tg_limiter_tier_index(bl, "default", &idx), TG_EINVAL);
  ROW(tg_limiter_stats_get(bl, &lst), TG_EINVAL);
  tg_limiter_free(bl);                      /* not a limiter: no-op */
  ROW(tg_breaker_acquire(b, 1, &p), TG_OK); /* the breaker lives on */
  CHECK_EQ(p.allowed, 1);
  ROW(tg_breaker_record(b, &p, TG_OUTCOME_SUCCESS, 0, 1), TG_OK);

  CTX("cross-type: breaker as parent");
  {
    tg_limiter_options o;
    tg_limiter* out = SENTINEL_LIM;
    tg_error err;
    tg_limiter_options_init(&o);
    o.parent = bl;
    fill_garbage(&err);
    check_failed_new(tg_limiter_new(&o, &out, &err), tg_limiter_new(&o, &out, NULL), TG_EINVAL,
                     &err, out, SENTINEL_LIM, __LINE__);
  }

  CTX("freed parent");
  {
    tg_limiter_options o;
    tg_limiter* parent = NEW_LIMITER(NULL);
    tg_limiter* child;
    tg_limiter* out = SENTINEL_LIM;
    tg_error err;
    tg_limiter_options_init(&o);
    o.parent = parent;
    child = NEW_LIMITER(&o);
    tg_limiter_free(parent); /* the child still holds it */
    ROW(tg_limiter_acquire(parent, "k", 1, 0, 1, 1, &d), TG_EINVAL);
    ROW(tg_limiter_peek(parent, "k", 1, 0, 1, 1, &d), TG_EINVAL);
    ROW(tg_limiter_remaining(parent, "k", 1, 0, 1, &r), TG_EINVAL);
    ROW(tg_limiter_reserve(parent, "k", 1, 0, 1, 1, &res, &d), TG_EINVAL);
    ROW(tg_limiter_cancel(parent, &res, 1), TG_EINVAL);
    ROW(tg_limiter_acquire_many(parent, NULL, NULL, 0, NULL, NULL, 1, NULL), TG_EINVAL);
    ROW(tg_limiter_set_multiplier(parent, 2.0, 1), TG_EINVAL);
    ROW(tg_limiter_get_multiplier(parent, &m), TG_EINVAL);
    ROW(tg_limiter_set_shadow(parent, 1), TG_EINVAL);
    ROW(tg_limiter_tier_index(parent, "default", &idx), TG_EINVAL);
    ROW(tg_limiter_stats_get(parent, &lst), TG_EINVAL);
    /* A freed handle cannot become a new parent. */
    fill_garbage(&err);
    check_failed_new(tg_limiter_new(&o, &out, &err), tg_limiter_new(&o, &out, NULL), TG_EINVAL,
                     &err, out, SENTINEL_LIM, __LINE__);
    tg_limiter_free(parent); /* freeing twice while the child holds it: no-op */
    /* The child still decides through the parent's bucket (1000, burst 1000). */
    ROW(tg_limiter_acquire(child, "k", 1, 0, 1000, 5, &d), TG_OK);
    CHECK_EQ(d.allowed, 1);
    ROW(tg_limiter_acquire(child, "j", 1, 0, 1, 5, &d), TG_OK);
    CHECK_EQ(d.allowed, 0);
    CHECK_EQ(d.reason, TG_LIMIT_REASON_PARENT);
    tg_limiter_free(child); /* now both go */
  }
  CTX("hierarchy depth");
  {
    /* Up to 15 levels; a 16th is refused. */
    tg_limiter* chain[16];
    tg_limiter_options o;
    tg_limiter* out = SENTINEL_LIM;
    tg_error err;
    int i;
    chain[0] = NEW_LIMITER(NULL);
    for (i = 1; i < 15; ++i) {
      tg_limiter_options_init(&o);
      o.parent = chain[i - 1];
      chain[i] = NEW_LIMITER(&o);
    }
    tg_limiter_options_init(&o);
    o.parent = chain[14];
    fill_garbage(&err);
    check_failed_new(tg_limiter_new(&o, &out, &err), tg_limiter_new(&o, &out, NULL), TG_EINVAL,
                     &err, out, SENTINEL_LIM, __LINE__);
    /* The deepest level decides through all 15. */
    ROW(tg_limiter_acquire(chain[14], "k", 1, 0, 1000, 1, &d), TG_OK);
    CHECK_EQ(d.allowed, 1);
    ROW(tg_limiter_remaining(chain[0], "", 0, 0, 1, &r), TG_OK);
    CHECK_EQ(r, 0);
    for (i = 0; i < 15; ++i) tg_limiter_free(chain[i]); /* parents first */
  }
  tg_limiter_free(NULL);
  tg_breaker_free(NULL);
  tg_limiter_free(l);
  tg_breaker_free(b);
}

int main(void) {
  test_status_str();
  test_limiter_options();
  test_breaker_options();
  test_limiter_calls();
  test_breaker_calls();
  test_handles();
  return check_summary();
}
