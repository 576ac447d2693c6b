/* The checking harness shared by the C ABI test programs (test_*.c). C99,
 * header-only: each test is a program of its own, so every definition here is
 * `static` and each program has its own counters.
 *
 * A program defines CHECK_PROGRAM (its name, as printed in the summary) before
 * including this header, and may define CHECK_MAX_REPORTS (how many failures
 * are printed in full; the rest are only counted). main ends with
 * `return check_summary();`, which prints "<name>: N checks, M failed" and
 * gives the exit status.
 *
 * CHECK records a failure and goes on, so one run shows every broken case;
 * the program exits non-zero at the end. REQUIRE stops at once (used where
 * going on could only crash). The counters are not atomic: only one thread
 * may check at a time. */
#ifndef TOLLGATE_TESTS_CAPI_CHECK_H
#define TOLLGATE_TESTS_CAPI_CHECK_H

#include <tollgate/tollgate.h>

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef CHECK_PROGRAM
#error "define CHECK_PROGRAM (the program's name, e.g. \"capi_limiter\") before including check.h"
#endif

#ifndef CHECK_MAX_REPORTS
#define CHECK_MAX_REPORTS 60
#endif

/* ------------------------------------------------------------------------ */
/* Counters and reports                                                      */
/* ------------------------------------------------------------------------ */

static unsigned long g_checks;
static unsigned long g_failed;
static char g_ctx[256]; /* what the current test is doing, printed on failure */

/* Set the context printed with every failure, printf-style. */
#define CTX(...) snprintf(g_ctx, sizeof g_ctx, __VA_ARGS__)

static inline void report_failure(const char* file, int line, const char* what) {
  ++g_failed;
  if (g_failed <= CHECK_MAX_REPORTS) {
    fprintf(stderr, "%s:%d: CHECK failed: %s  [%s]\n", file, line, what, g_ctx);
  }
}

/* Prints the summary line; the program's exit status. */
static inline int check_summary(void) {
  printf("%s: %lu checks, %lu failed\n", CHECK_PROGRAM, g_checks, g_failed);
  return g_failed == 0 ? 0 : 1;
}

/* ------------------------------------------------------------------------ */
/* Checks                                                                    */
/* ------------------------------------------------------------------------ */

#define CHECK(expr)                                                      \
  do {                                                                   \
    ++g_checks;                                                          \
    if (!(expr)) report_failure(__FILE__, __LINE__, "CHECK(" #expr ")"); \
  } while (0)

/* Integers of any type, compared (and printed) as uint64_t. */
#define CHECK_EQ(a, b)                                                                    \
  do {                                                                                    \
    const uint64_t va_ = (uint64_t)(a), vb_ = (uint64_t)(b);                              \
    ++g_checks;                                                                           \
    if (va_ != vb_) {                                                                     \
      char m_[512];                                                                       \
      snprintf(m_, sizeof m_, "%s == %s (%" PRIu64 " != %" PRIu64 ")", #a, #b, va_, vb_); \
      report_failure(__FILE__, __LINE__, m_);                                             \
    }                                                                                     \
  } while (0)

/* Doubles, compared exactly (NaN never equals), printed round-trippable. */
#define CHECK_DBL(a, b)                                                       \
  do {                                                                        \
    const double va_ = (a), vb_ = (b);                                        \
    ++g_checks;                                                               \
    if (!(va_ == vb_)) {                                                      \
      char m_[512];                                                           \
      snprintf(m_, sizeof m_, "%s == %s (%.17g != %.17g)", #a, #b, va_, vb_); \
      report_failure(__FILE__, __LINE__, m_);                                 \
    }                                                                         \
  } while (0)

/* A tg_* status `got` (returned by `call`) is exactly `want`; reported at
 * file:line. */
static inline void check_status_at(const char* file, int line, const char* call, int got,
                                   int want) {
  ++g_checks;
  if (got != want) {
    char m[1024];
    snprintf(m, sizeof m, "%s returned %s (%d), expected %s", call, tg_status_str(got), got,
             tg_status_str(want));
    report_failure(file, line, m);
  }
}

/* `call` (evaluated once) returns exactly the status `want`. */
#define CHECK_RC(call, want) check_status_at(__FILE__, __LINE__, #call, (call), (want))

/* Counts a check; when `ok` is false, reports `what` at file:line and stops. */
#define REQUIRE_AT(file, line, ok, what)                                                    \
  do {                                                                                      \
    ++g_checks;                                                                             \
    if (!(ok)) {                                                                            \
      report_failure((file), (line), (what));                                               \
      fprintf(stderr, "%s: stopping (%lu of %lu checks failed)\n", CHECK_PROGRAM, g_failed, \
              g_checks);                                                                    \
      exit(1);                                                                              \
    }                                                                                       \
  } while (0)

#define REQUIRE(expr) REQUIRE_AT(__FILE__, __LINE__, expr, "REQUIRE(" #expr ")")

/* ------------------------------------------------------------------------ */
/* Deterministic random numbers (xorshift64*)                                */
/* ------------------------------------------------------------------------ */

/* The next number of the sequence in *state (never 0). */
static inline uint64_t rng_next(uint64_t* state) {
  *state ^= *state >> 12;
  *state ^= *state << 25;
  *state ^= *state >> 27;
  return *state * 0x2545f4914f6cdd1dull;
}

/* A number in [lo, hi], inclusive. */
static inline uint64_t rng_range(uint64_t* state, uint64_t lo, uint64_t hi) {
  return lo + rng_next(state) % (hi - lo + 1);
}

/* ------------------------------------------------------------------------ */
/* Construction that must succeed                                            */
/* ------------------------------------------------------------------------ */

/* A limiter made from `o` (NULL: the defaults); anything else stops the
 * program, reported at the caller's file:line. */
static inline tg_limiter* new_limiter_at(const char* file, int line, const tg_limiter_options* o) {
  tg_limiter* l = NULL;
  tg_error err;
  int rc;
  memset(&err, 0, sizeof err);
  rc = tg_limiter_new(o, &l, &err);
  if (rc != TG_OK) fprintf(stderr, "tg_limiter_new: %s: %s\n", tg_status_str(rc), err.message);
  REQUIRE_AT(file, line, rc == TG_OK && l != NULL,
             "REQUIRE(tg_limiter_new(...) == TG_OK && limiter != NULL)");
  return l;
}
#define NEW_LIMITER(o) new_limiter_at(__FILE__, __LINE__, (o))

/* The same for a breaker. */
static inline tg_breaker* new_breaker_at(const char* file, int line, const tg_breaker_options* o) {
  tg_breaker* b = NULL;
  tg_error err;
  int rc;
  memset(&err, 0, sizeof err);
  rc = tg_breaker_new(o, &b, &err);
  if (rc != TG_OK) fprintf(stderr, "tg_breaker_new: %s: %s\n", tg_status_str(rc), err.message);
  REQUIRE_AT(file, line, rc == TG_OK && b != NULL,
             "REQUIRE(tg_breaker_new(...) == TG_OK && breaker != NULL)");
  return b;
}
#define NEW_BREAKER(o) new_breaker_at(__FILE__, __LINE__, (o))

#endif /* TOLLGATE_TESTS_CAPI_CHECK_H */
