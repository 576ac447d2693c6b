/*
 * tollgate.h - the stable C ABI of tollgate, an embeddable pre-trade gateway.
 *
 * This header is the only binary contract of the library. It is C99, has no
 * dependency beyond <stddef.h> and <stdint.h>, and follows these rules:
 *
 *  - Objects are opaque handles created by tg_X_new(opts, &out, err) and
 *    released by tg_X_free(h). tg_X_new leaves *out untouched on failure.
 *    tg_X_free(NULL) is a no-op. A child object keeps the objects it depends
 *    on alive, so handles may be freed in any order.
 *  - Fallible functions return int: TG_OK (0) or a negative TG_E* code. The
 *    list of codes is append-only; tg_status_str() names each one.
 *  - Calls that can fail in detailed ways take an optional tg_error* (may be
 *    NULL) that receives the code and a human-readable message. There is no
 *    thread-local "last error".
 *  - Option structs begin with uint32_t struct_size. Call tg_X_options_init()
 *    to fill defaults, then set fields. Fields are only ever appended; the
 *    library reads a field only when struct_size covers it. A struct_size
 *    smaller than the first version of the struct, or larger than this
 *    library knows while the unknown tail is not all zero, is TG_EVERSION.
 *  - Result structs written by the library (decisions, permits, stats) have
 *    fixed layouts pinned by static_asserts; new information arrives through
 *    new functions, never by changing these structs.
 *  - Time is always supplied by the caller as monotonic nanoseconds (now_ns).
 *    tg_now_ns() reads CLOCK_MONOTONIC for hosts that have no clock at hand.
 *  - No C++ exception ever crosses this boundary.
 *  - Misuse is reported, not crashed on, where it can be detected: a NULL
 *    handle, a handle of another type, or a handle the caller freed while a
 *    child object still holds it gives TG_EINVAL. Once the last reference is
 *    gone the memory is returned, and using the handle again is undefined, as
 *    with free().
 *
 * Thread-safety is stated on every function. "Thread-safe" means any number
 * of threads may call it on the same handle at once without external locking.
 * Decision functions (acquire, peek, record, ...) are lock-free and do not
 * allocate.
 *
 * Copyright 2026 The tollgate Authors. SPDX-License-Identifier: Apache-2.0
 */
#ifndef TOLLGATE_H
#define TOLLGATE_H

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#define TG_API __declspec(dllexport)
#elif defined(__GNUC__)
#define TG_API __attribute__((visibility("default")))
#else
#define TG_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Version                                                                   */
/* ------------------------------------------------------------------------ */

#define TG_VERSION_MAJOR 0
#define TG_VERSION_MINOR 1
#define TG_VERSION_PATCH 0
/* MAJOR*10000 + MINOR*100 + PATCH */
#define TG_VERSION_NUMBER (TG_VERSION_MAJOR * 10000 + TG_VERSION_MINOR * 100 + TG_VERSION_PATCH)
#define TG_VERSION_STRING "0.1.0"

/* The version of the library actually loaded; bindings compare it with
 * TG_VERSION_NUMBER of the header they were built against. Thread-safe.
 * Since 0.1.0. */
TG_API unsigned tg_version_number(void);
/* Static string, never NULL. Thread-safe. Since 0.1.0. */
TG_API const char* tg_version_string(void);

/* ------------------------------------------------------------------------ */
/* Status codes (append-only; never renumbered)                              */
/* ------------------------------------------------------------------------ */

#define TG_OK 0
#define TG_EINVAL -1    /* an argument is NULL, malformed or out of range */
#define TG_ENOMEM -2    /* allocation failed; nothing was changed */
#define TG_ERANGE -3    /* a number is outside the supported range */
#define TG_EVERSION -4  /* struct_size unknown to this library */
#define TG_ETOOSMALL -5 /* caller buffer too small; needed size in *written */
#define TG_ENOTFOUND -6 /* a named entity (tier, key) does not exist */
#define TG_ESTATE -7    /* operation not allowed in the object's state */
#define TG_EINTERNAL -8 /* a bug in tollgate: please report it */

/* Static string naming a status ("TG_EINVAL"), or "TG_UNKNOWN". Never NULL.
 * Thread-safe. Since 0.1.0. */
TG_API const char* tg_status_str(int status);

#define TG_ERROR_MESSAGE_SIZE 256

/* Caller-owned detail for a failed call. The library writes code and a
 * NUL-terminated message (truncated to fit). Since 0.1.0. */
typedef struct tg_error {
  int code;
  char message[TG_ERROR_MESSAGE_SIZE];
} tg_error;

/* ------------------------------------------------------------------------ */
/* Time                                                                      */
/* ------------------------------------------------------------------------ */

/* CLOCK_MONOTONIC in nanoseconds. Thread-safe, lock-free. Since 0.1.0. */
TG_API uint64_t tg_now_ns(void);

/* ------------------------------------------------------------------------ */
/* Rate limiter                                                              */
/* ------------------------------------------------------------------------ */
/*
 * A GCRA token bucket per key. A tier gives the rate (tokens per second) and
 * the burst (bucket size, in tokens). A request of cost c is admitted when the
 * bucket holds at least c tokens. Rates are quantised to an integer emission
 * interval T = round(1e9 / rate) nanoseconds; under continuous demand (a
 * request the instant each token is due, which retry_after_ns tells), a full
 * bucket admits exactly burst + floor(t / T) unit requests over any window of
 * t ns at multiplier 1. A client that comes late loses the wait beyond what
 * the burst absorbs, as with any token bucket.
 *
 * A key has one bucket, whatever the tier: the tier of each request says how
 * fast that bucket refills and how much it may hold for that request (an
 * account moving from "retail" to "pro" keeps its state). Use distinct keys
 * for separate budgets.
 *
 * Keys are arbitrary bytes (account id, API key, IP address, ...). A key of
 * length 0 is valid and names one bucket like any other. Keys are identified
 * by a 64-bit keyed hash: two distinct keys collide with probability about
 * n^2 / 2^65 for n live keys (3e-8 at one million keys).
 *
 * The table holds at most `capacity` keys, in 16-byte slots (the slot count is
 * the power of two at or above capacity * 8/7, at least 8; tg_limiter_stats.capacity
 * reports it). A new key may go to one of 8 candidate slots. When they are
 * taken, or `capacity` keys are held, an idle bucket among them (fully
 * refilled, so carrying no state) is evicted. When none is idle, the request is rejected with
 * TG_LIMIT_REASON_CAPACITY and a retry-after of the time until a candidate
 * bucket becomes idle (fail closed), or, with
 * TG_LIMITER_ON_FULL_OVERFLOW, decided against one shared overflow bucket per
 * tier.
 *
 * A limiter may have a parent (e.g. a global limit above per-account limits),
 * which may have its own parent, up to 15 levels. A request must be admitted
 * by its own bucket and then by each ancestor's bucket for the empty key, in
 * the same tier index (or tier 0 where an ancestor has fewer tiers); when a
 * level rejects, the tokens the levels below took are given back and the
 * reason is TG_LIMIT_REASON_PARENT. The child keeps the parent alive.
 */

typedef struct tg_limiter tg_limiter;

/* A named rate class. Since 0.1.0. */
typedef struct tg_tier {
  const char* name;  /* NUL-terminated, 1..63 bytes, unique; copied */
  double rate;       /* tokens per second, > 0 and <= 1e9 */
  uint32_t burst;    /* bucket size in tokens, >= 1 */
  uint32_t reserved; /* must be 0 */
} tg_tier;

#define TG_LIMITER_ON_FULL_REJECT 0   /* default: fail closed */
#define TG_LIMITER_ON_FULL_OVERFLOW 1 /* share one bucket per tier */

/* Options for tg_limiter_new. Since 0.1.0. */
typedef struct tg_limiter_options {
  uint32_t struct_size;
  uint32_t on_full;     /* TG_LIMITER_ON_FULL_*; default REJECT */
  uint64_t capacity;    /* max keys; default 65536; 1 .. 2^26 */
  const tg_tier* tiers; /* array of tier_count tiers; copied */
  uint32_t tier_count;  /* 1 .. 64; default: one tier, 1000/s, burst 1000 */
  uint32_t shadow;      /* 1: decide and count, never reject; default 0 */
  double multiplier;    /* scales every rate; 1e-6 .. 1e6, default 1.0 */
  tg_limiter* parent;   /* optional; referenced, not owned */
} tg_limiter_options;

/* Fill *opts with defaults and set struct_size. NULL-safe. Since 0.1.0. */
TG_API void tg_limiter_options_init(tg_limiter_options* opts);

/* Create a limiter. opts may be NULL for defaults. On success *out receives a
 * handle to release with tg_limiter_free; on failure *out is untouched and err
 * (optional) explains. Returns TG_OK, TG_EINVAL, TG_ERANGE, TG_EVERSION,
 * TG_ENOMEM. Thread-safe. Since 0.1.0. */
TG_API int tg_limiter_new(const tg_limiter_options* opts, tg_limiter** out, tg_error* err);

/* Release a handle; the memory goes when no child limiter references it. No
 * call on the handle may be in progress or follow. NULL is a no-op.
 * Since 0.1.0. */
TG_API void tg_limiter_free(tg_limiter* lim);

/* Why a request was (or in shadow mode would have been) rejected. */
#define TG_LIMIT_REASON_NONE 0
#define TG_LIMIT_REASON_RATE 1               /* not enough tokens; retry later */
#define TG_LIMIT_REASON_COST_EXCEEDS_BURST 2 /* cost > burst: never admissible */
#define TG_LIMIT_REASON_CAPACITY 3           /* key table full, no idle bucket */
#define TG_LIMIT_REASON_PARENT 4             /* the parent limiter rejected */

#define TG_LIMIT_FLAG_SHADOW 1u /* shadow mode admitted what it would reject */

/* retry_after_ns when waiting can never help (cost exceeds burst). */
#define TG_RETRY_NEVER UINT64_MAX

/* The outcome of one decision. Written by the library. Since 0.1.0. */
typedef struct tg_limit_decision {
  int32_t allowed;         /* 1 admitted, 0 rejected */
  int32_t reason;          /* TG_LIMIT_REASON_* (set in shadow mode too) */
  uint64_t retry_after_ns; /* 0 when admitted; else wait before retrying */
  uint64_t remaining;      /* whole tokens left in the key's bucket */
  uint32_t flags;          /* TG_LIMIT_FLAG_* */
  uint32_t reserved;
} tg_limit_decision;

/* Take `cost` tokens for `key` in tier `tier` at now_ns. key may be NULL only
 * when key_len is 0. A rejection is a normal outcome (TG_OK with
 * out->allowed = 0). Returns TG_OK, or TG_EINVAL (NULL lim/out, NULL key with
 * key_len > 0, cost 0, tier out of range). Thread-safe, lock-free,
 * allocation-free. Since 0.1.0. */
TG_API int tg_limiter_acquire(tg_limiter* lim, const void* key, size_t key_len, uint32_t tier,
                              uint32_t cost, uint64_t now_ns, tg_limit_decision* out);

/* As tg_limiter_acquire, but only says what acquire would decide; consumes
 * nothing and never inserts or evicts a key. Thread-safe. Since 0.1.0. */
TG_API int tg_limiter_peek(tg_limiter* lim, const void* key, size_t key_len, uint32_t tier,
                           uint32_t cost, uint64_t now_ns, tg_limit_decision* out);

/* Whole tokens available to `key` in `tier` at now_ns (burst for an unknown
 * key). Thread-safe. Since 0.1.0. */
TG_API int tg_limiter_remaining(tg_limiter* lim, const void* key, size_t key_len, uint32_t tier,
                                uint64_t now_ns, uint64_t* out);

/* What a granted reservation took, so that it can be given back. Written by
 * the library; treat as opaque. Since 0.1.0. */
typedef struct tg_reservation {
  uint64_t key_hash;
  uint64_t own_ns; /* time-equivalent taken from the key's bucket */
  uint64_t cost;   /* tokens taken at each level of the hierarchy */
  uint32_t tier;
  uint32_t flags; /* internal: which levels took tokens */
} tg_reservation;

/* Acquire and, when admitted, fill *res so the tokens can be given back with
 * tg_limiter_cancel (e.g. the order was not sent). When rejected *res is
 * zeroed and cancelling it is a no-op. Thread-safe. Since 0.1.0. */
TG_API int tg_limiter_reserve(tg_limiter* lim, const void* key, size_t key_len, uint32_t tier,
                              uint32_t cost, uint64_t now_ns, tg_reservation* res,
                              tg_limit_decision* out);

/* Give back what *res took, at most once per reservation (the caller's
 * duty). A bucket never holds more than its burst: tokens that would have
 * refilled by now_ns anyway are not added twice. Returns TG_OK or TG_EINVAL.
 * Thread-safe. Since 0.1.0. */
TG_API int tg_limiter_cancel(tg_limiter* lim, const tg_reservation* res, uint64_t now_ns);

/* Batch acquire: n requests at one now_ns. Key i is the bytes
 * keys[key_offsets[i] .. key_offsets[i+1]) (key_offsets has n+1 entries,
 * non-decreasing; keys must hold key_offsets[n] bytes and may be NULL only
 * when every key is empty). tiers and costs may be NULL (tier 0, cost 1). out has n
 * entries. Validation happens before any decision: on TG_EINVAL nothing was
 * consumed. n = 0 is TG_OK. Thread-safe. Since 0.1.0. */
TG_API int tg_limiter_acquire_many(tg_limiter* lim, const uint8_t* keys,
                                   const uint32_t* key_offsets, size_t n, const uint32_t* tiers,
                                   const uint32_t* costs, uint64_t now_ns, tg_limit_decision* out);

/* From now_ns on, scale every tier's rate by multiplier (1e-6 .. 1e6), e.g.
 * 0.5 in a fast market. Buckets keep the tokens they hold at
 * now_ns (a change never creates or destroys tokens); only the refill speed
 * changes. Internally the buckets run on a virtual clock m times as fast as
 * now_ns, so a multiplier far above 1 kept for months can reach the clock's
 * 2^62 ns ceiling, after which buckets stop refilling (fail closed).
 * Returns TG_OK, TG_EINVAL (NULL), TG_ERANGE (out of range or NaN).
 * Thread-safe. Since 0.1.0. */
TG_API int tg_limiter_set_multiplier(tg_limiter* lim, double multiplier, uint64_t now_ns);
TG_API int tg_limiter_get_multiplier(const tg_limiter* lim, double* out);

/* Shadow mode on (1) or off (0). Thread-safe. Since 0.1.0. */
TG_API int tg_limiter_set_shadow(tg_limiter* lim, int on);

/* Index of the tier called name. TG_ENOTFOUND if none. Thread-safe.
 * Since 0.1.0. */
TG_API int tg_limiter_tier_index(const tg_limiter* lim, const char* name, uint32_t* out);

/* Counters since creation. Written by the library. Since 0.1.0. */
typedef struct tg_limiter_stats {
  uint64_t admitted;          /* decisions that returned allowed = 1 */
  uint64_t rejected;          /* decisions that returned allowed = 0 */
  uint64_t shadow_rejected;   /* admitted only because of shadow mode */
  uint64_t capacity_rejected; /* rejected (or shadowed) for table capacity */
  uint64_t evictions;         /* idle buckets evicted for new keys */
  uint64_t keys;              /* keys in the table now */
  uint64_t capacity;          /* slots in the table (>= the configured capacity) */
  uint64_t cancelled;         /* reservations given back */
} tg_limiter_stats;

/* Thread-safe; counters are read one by one, not as one snapshot.
 * Since 0.1.0. */
TG_API int tg_limiter_stats_get(const tg_limiter* lim, tg_limiter_stats* out);

/* ------------------------------------------------------------------------ */
/* Circuit breaker and bulkhead                                              */
/* ------------------------------------------------------------------------ */
/*
 * One breaker per upstream or venue. tg_breaker_acquire asks whether a call
 * may start; tg_breaker_record reports how it ended. Outcomes feed a sliding
 * window (the last N calls, or the last N seconds in buckets); when at least
 * minimum_calls are in the window and the failure rate or the slow-call rate
 * reaches its threshold, the breaker opens. After the open duration (growing
 * by backoff_multiplier on each consecutive opening, up to max_open_ns) the
 * next acquire moves it to half-open, where `half_open_probes` calls are let
 * through; their outcomes close it or open it again. A half-open breaker that
 * has not seen all its probes finish within max_half_open_ns opens again.
 *
 * The bulkhead bounds calls in flight (max_in_flight, 0 = unbounded): a
 * permit holds a slot until its outcome is recorded.
 *
 * Every admitted permit must be recorded exactly once (use
 * TG_OUTCOME_IGNORED when the call was never made or the client cancelled).
 * Recording a rejected permit is a harmless no-op.
 */

typedef struct tg_breaker tg_breaker;

#define TG_BREAKER_CLOSED 0
#define TG_BREAKER_OPEN 1
#define TG_BREAKER_HALF_OPEN 2
#define TG_BREAKER_FORCED_OPEN 3   /* kill switch: reject everything */
#define TG_BREAKER_FORCED_CLOSED 4 /* admit everything, keep the window */
#define TG_BREAKER_DISABLED 5      /* admit everything, record nothing */
#define TG_BREAKER_METRICS_ONLY 6  /* admit everything, count would-be trips */

#define TG_WINDOW_COUNT 0 /* the last window_size calls */
#define TG_WINDOW_TIME 1  /* the last window_size buckets of bucket_ns each */

/* Options for tg_breaker_new. Since 0.1.0. */
typedef struct tg_breaker_options {
  uint32_t struct_size;
  uint32_t window_type;          /* TG_WINDOW_*; default COUNT */
  uint32_t window_size;          /* calls (1..65536) or buckets (1..256); default 100 */
  uint32_t minimum_calls;        /* >= 1; default 20 */
  uint64_t bucket_ns;            /* TIME windows: bucket width; default 1 s */
  double failure_rate_threshold; /* percent in (0, 100]; default 50 */
  double slow_rate_threshold;    /* percent in (0, 100]; default 100 */
  uint64_t slow_call_ns;         /* a call at least this long is slow; default 1 s */
  uint64_t open_ns;              /* first open duration; default 1 s; >= 1 */
  double backoff_multiplier;     /* >= 1; default 1 (no backoff) */
  uint64_t max_open_ns;          /* cap for backoff; default 60 s */
  uint32_t half_open_probes;     /* 1..1024; default 5 */
  uint32_t max_in_flight;        /* bulkhead bound; 0 = unbounded (default) */
  uint64_t max_half_open_ns;     /* 0 = unbounded (default) */
} tg_breaker_options;

/* Fill *opts with defaults and set struct_size. NULL-safe. Since 0.1.0. */
TG_API void tg_breaker_options_init(tg_breaker_options* opts);

/* Create a breaker (state CLOSED). Same contract as tg_limiter_new.
 * Since 0.1.0. */
TG_API int tg_breaker_new(const tg_breaker_options* opts, tg_breaker** out, tg_error* err);

/* NULL is a no-op. No call on the handle may be in progress or follow.
 * Since 0.1.0. */
TG_API void tg_breaker_free(tg_breaker* b);

#define TG_BREAKER_REASON_NONE 0
#define TG_BREAKER_REASON_OPEN 1          /* open (or half-open, probes taken) */
#define TG_BREAKER_REASON_FORCED_OPEN 2   /* the kill switch is on */
#define TG_BREAKER_REASON_BULKHEAD_FULL 3 /* max_in_flight calls in flight */

/* Written by tg_breaker_acquire; pass it back to tg_breaker_record. Treat
 * token as opaque. Since 0.1.0. */
typedef struct tg_breaker_permit {
  uint64_t token;
  int32_t allowed; /* 1 the call may start, 0 rejected */
  int32_t reason;  /* TG_BREAKER_REASON_* */
  int32_t state;   /* TG_BREAKER_* at the time of the decision */
  uint32_t reserved;
  uint64_t retry_after_ns; /* rejected: time until the open period ends (open), the
                              half-open deadline or else open_ns (half-open, probes
                              taken), UINT64_MAX (forced open), 0 (bulkhead) */
} tg_breaker_permit;

#define TG_OUTCOME_SUCCESS 0
#define TG_OUTCOME_FAILURE 1
#define TG_OUTCOME_IGNORED 2 /* e.g. the client cancelled: not counted */

/* May a call start at now_ns? Returns TG_OK (see permit->allowed) or
 * TG_EINVAL. Thread-safe, lock-free, allocation-free. Since 0.1.0. */
TG_API int tg_breaker_acquire(tg_breaker* b, uint64_t now_ns, tg_breaker_permit* out);

/* Report how the call of `permit` ended: outcome TG_OUTCOME_*, latency_ns its
 * duration. Releases the bulkhead slot. Returns TG_OK or TG_EINVAL (NULL,
 * unknown outcome). Thread-safe, lock-free, allocation-free. Since 0.1.0. */
TG_API int tg_breaker_record(tg_breaker* b, const tg_breaker_permit* permit, int outcome,
                             uint64_t latency_ns, uint64_t now_ns);

/* Batch forms: n decisions at one now_ns. outcomes and latencies have n
 * entries (latencies may be NULL: all 0). n = 0 is TG_OK. Validation happens
 * first: on TG_EINVAL nothing was recorded. Thread-safe. Since 0.1.0. */
TG_API int tg_breaker_acquire_many(tg_breaker* b, size_t n, uint64_t now_ns,
                                   tg_breaker_permit* out);
TG_API int tg_breaker_record_many(tg_breaker* b, const tg_breaker_permit* permits,
                                  const int32_t* outcomes, const uint64_t* latencies_ns, size_t n,
                                  uint64_t now_ns);

/* The current state (TG_BREAKER_*). An open breaker whose open duration has
 * passed still reads OPEN until the next acquire. Thread-safe. Since 0.1.0. */
TG_API int tg_breaker_state(const tg_breaker* b, int* out);

/* Move to `state` now: CLOSED (resets the window and backoff), OPEN (for the
 * current open duration), HALF_OPEN, FORCED_OPEN, FORCED_CLOSED, DISABLED,
 * METRICS_ONLY. Emits an event. Returns TG_OK or TG_EINVAL. Thread-safe.
 * Since 0.1.0. */
TG_API int tg_breaker_transition(tg_breaker* b, int state, uint64_t now_ns);

/* A state change. Passed to the callback; valid during the call only. */
typedef struct tg_breaker_event {
  int32_t from_state;
  int32_t to_state;
  uint64_t now_ns;
  double failure_rate; /* percent over the window at the change; -1 if unknown */
  double slow_rate;    /* percent; -1 if unknown */
  uint64_t open_ns;    /* open duration chosen when to_state is OPEN, else 0 */
} tg_breaker_event;

typedef void (*tg_breaker_event_fn)(void* user, const tg_breaker_event* ev);

/* Call fn(user, ev) on every state change, synchronously on the thread that
 * caused it, after the change is visible. fn must not block and must not
 * free the breaker; it may call other tg_breaker functions. fn = NULL
 * removes the callback. A change racing with this call is reported to the
 * old or the new callback. Each call keeps 16 bytes until the breaker is
 * freed (a callback may be running on another thread), so register once and
 * dispatch in the callback rather than calling this per event.
 * Thread-safe. Since 0.1.0. */
TG_API int tg_breaker_set_event_callback(tg_breaker* b, tg_breaker_event_fn fn, void* user);

/* Counters since creation. Written by the library. Since 0.1.0. */
typedef struct tg_breaker_stats {
  uint64_t admitted;
  uint64_t rejected; /* open, forced open or bulkhead */
  uint64_t bulkhead_rejected;
  uint64_t successes;
  uint64_t failures;
  uint64_t slow_calls;
  uint64_t ignored;
  uint64_t transitions;
  uint64_t would_open;   /* METRICS_ONLY: trips that were not taken */
  uint32_t in_flight;    /* bulkhead slots held now */
  int32_t state;         /* TG_BREAKER_* */
  double failure_rate;   /* percent over the window; -1 below minimum_calls */
  double slow_rate;      /* percent; -1 below minimum_calls */
  uint64_t window_calls; /* calls counted in the window now */
} tg_breaker_stats;

/* Thread-safe; counters are read one by one. Since 0.1.0. */
TG_API int tg_breaker_stats_get(const tg_breaker* b, uint64_t now_ns, tg_breaker_stats* out);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* TOLLGATE_H */
