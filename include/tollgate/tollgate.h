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
#define TG_VERSION_MINOR 2
#define TG_VERSION_PATCH 0
/* MAJOR*10000 + MINOR*100 + PATCH */
#define TG_VERSION_NUMBER (TG_VERSION_MAJOR * 10000 + TG_VERSION_MINOR * 100 + TG_VERSION_PATCH)
#define TG_VERSION_STRING "0.2.0"

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
#define TG_EFULL -9     /* a bounded queue is full and its policy refuses (journal ring) */
#define TG_EDROPPED -10 /* a bounded queue is full and dropped the entry, counting it */
#define TG_EIO -11      /* an I/O error stopped the object; err says which (errno) */

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
  uint64_t hash_seed;   /* key hashing; 0 (default): random. Since 0.2.0. A
                           journal records the seed, so replays need not set it */
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

/* The seed of the limiter's key hash (the one given, or the random one
 * drawn when hash_seed was 0). Returns TG_OK or TG_EINVAL. Thread-safe.
 * Since 0.2.0. */
TG_API int tg_limiter_hash_seed(const tg_limiter* lim, uint64_t* out);

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

/* ------------------------------------------------------------------------ */
/* Router: route table, publication, venue sets                              */
/* ------------------------------------------------------------------------ */
/*
 * A route table is compiled once from a list of rules and never changes; a
 * tg_router holds the current table and replaces it atomically while other
 * threads keep matching (read-copy-update). A venue set chooses the venue a
 * routed request goes to. docs/routing.md is the full reference.
 *
 * Rules match on method, host, path and headers:
 *  - path: "/"-separated segments, each a literal, "{name}" (one segment) or,
 *    last, "{*name}" (one or more segments). path_kind PREFIX matches the
 *    pattern and everything below it, segment-aligned ("/api" matches
 *    "/api/x", never "/apix").
 *  - host: NULL or "" (any), "api.example.com" (exact, case-insensitive) or
 *    "*.example.com" (any name below example.com, not example.com itself).
 *  - methods: NULL or "" (any), or comma-separated tokens "GET,POST"
 *    (case-sensitive, as HTTP methods are).
 *  - headers: predicates on request headers, all of which must hold.
 *
 * Precedence when several rules match: the most specific wins, compared in
 * order: host (exact > longer "*." suffix > shorter > any); path, segment by
 * segment from the left (literal > {param} > {*rest} > the end of a prefix
 * rule; an exact rule ending where the path ends beats a prefix rule ending
 * there); methods (naming methods > any; fewer named first); more header
 * predicates; then higher priority; then the earlier rule.
 *
 * Normalisation (one form, so two spellings of a path cannot reach
 * different routes): matching stops at '?' or '#'; empty segments are
 * dropped (so "//" and a trailing "/" do not matter); %XX escapes are
 * decoded; "." segments are dropped and ".." removes the segment before it,
 * never going above the root. These are refused with a status instead:
 * %2F, %5C and "\" (TG_ROUTE_AMBIGUOUS_SEPARATOR), a bad escape or a NUL or
 * control byte (TG_ROUTE_BAD_ENCODING). Request hosts are compared without
 * ":port", lower-cased, without a trailing dot.
 *
 * Captured parameters are (offset, length) into the caller's path, in its
 * raw spelling: no copy is made, so they are valid as long as the caller's
 * path buffer is.
 */

typedef struct tg_route_table tg_route_table;
typedef struct tg_router tg_router;
typedef struct tg_venue_set tg_venue_set;

#define TG_PATH_EXACT 0
#define TG_PATH_PREFIX 1

#define TG_HEADER_PRESENT 0 /* the header is present (value must be NULL or "") */
#define TG_HEADER_EXACT 1   /* some occurrence equals value, byte for byte */
#define TG_HEADER_PREFIX 2  /* some occurrence starts with value */

#define TG_NO_VENUE_SET 0xffffffffu

/* A header predicate of a rule. Inverted, it holds when no occurrence of
 * the header satisfies it (so a decoy duplicate cannot make it hold).
 * Since 0.2.0. */
typedef struct tg_header_predicate {
  const char* name;  /* NUL-terminated token, matched case-insensitively */
  const char* value; /* NUL-terminated; NULL means "" */
  int32_t op;        /* TG_HEADER_* */
  int32_t invert;    /* 1: the rule needs the predicate to be false; 0 or 1 */
} tg_header_predicate;

/* One rule. Versioned: set struct_size (tg_route_rule_init does). In an
 * array every element must have the same struct_size, which is the stride.
 * Since 0.2.0. */
typedef struct tg_route_rule {
  uint32_t struct_size;
  uint32_t route_id;   /* the host's id for the route, reported by a match */
  const char* methods; /* NULL/"" any, or "GET,POST" */
  const char* host;    /* NULL/"" any, "api.example.com", "*.example.com" */
  const char* path;    /* pattern, "/orders/{id}"; NULL is invalid */
  uint32_t path_kind;  /* TG_PATH_EXACT (default) or TG_PATH_PREFIX */
  int32_t priority;    /* breaks ties between equally specific rules; higher wins */
  const tg_header_predicate* headers;
  uint32_t header_count; /* <= 16 */
  uint32_t target;       /* the host's upstream id, reported by a match */
  uint32_t venue_set;    /* index into tg_route_table_options.venue_sets, or TG_NO_VENUE_SET */
  uint32_t reserved;     /* must be 0 */
} tg_route_rule;

/* Zero *rule, set struct_size, path_kind EXACT and venue_set
 * TG_NO_VENUE_SET. NULL-safe. Since 0.2.0. */
TG_API void tg_route_rule_init(tg_route_rule* rule);

/* Since 0.2.0. */
typedef struct tg_route_table_options {
  uint32_t struct_size;
  uint32_t reserved;               /* must be 0 */
  const tg_route_rule* rules;      /* rule_count rules; NULL only when rule_count is 0 */
  size_t rule_count;               /* <= 1048576 */
  tg_venue_set* const* venue_sets; /* the table keeps each alive; NULL entries are invalid */
  size_t venue_set_count;
} tg_route_table_options;

/* Fill *opts with defaults (no rules, no venue sets) and set struct_size.
 * NULL-safe. Since 0.2.0. */
TG_API void tg_route_table_options_init(tg_route_table_options* opts);

/* Compile a table. On failure *out is untouched, *bad_rule (optional) is
 * the index of the offending rule or SIZE_MAX when the error is not about
 * one rule, and err says why ("rule 3: parameter {id} appears twice").
 * Rejected: malformed patterns ("{id", "a{b}", "{*r}" not last, empty
 * segments, "." or ".." literals), bad hosts, methods or header names,
 * duplicates (two rules matching the same requests with the same
 * priority, parameter names aside), a venue_set index out of range.
 * Returns TG_OK, TG_EINVAL, TG_ERANGE, TG_EVERSION or TG_ENOMEM.
 * Thread-safe. Since 0.2.0. */
TG_API int tg_route_table_new(const tg_route_table_options* opts, tg_route_table** out,
                              size_t* bad_rule, tg_error* err);

/* Release the caller's reference. Routers the table was published to keep
 * it alive. NULL is a no-op. Since 0.2.0. */
TG_API void tg_route_table_free(tg_route_table* table);

/* A request header, as bytes. Since 0.2.0. */
typedef struct tg_header {
  const char* name;
  size_t name_len;
  const char* value;
  size_t value_len;
} tg_header;

/* A request to match. A NULL pointer with length 0 is an empty string.
 * path is the request target as received ("/orders/7?x=1"). At most
 * TG_ROUTE_MAX_HEADERS headers (the C ABI converts them on the stack).
 * Since 0.2.0. */
#define TG_ROUTE_MAX_HEADERS 128

typedef struct tg_route_request {
  const char* method;
  size_t method_len;
  const char* host; /* may carry ":port"; empty matches any-host rules only */
  size_t host_len;
  const char* path;
  size_t path_len;
  const tg_header* headers;
  size_t header_count;
} tg_route_request;

#define TG_ROUTE_MATCHED 0
#define TG_ROUTE_NO_ROUTE 1
#define TG_ROUTE_METHOD_NOT_ALLOWED 2  /* a rule matched all but the method (HTTP 405) */
#define TG_ROUTE_BAD_ENCODING 3        /* bad %XX escape, NUL or control byte */
#define TG_ROUTE_AMBIGUOUS_SEPARATOR 4 /* %2F, %5C or "\" in the path */
#define TG_ROUTE_PATH_TOO_LONG 5       /* more than 8192 bytes before '?' / '#' */
#define TG_ROUTE_PATH_NOT_ABSOLUTE 6   /* empty, or not starting with '/' */
#define TG_ROUTE_BAD_HOST 7            /* longer than 255 bytes, or not a host name */
#define TG_ROUTE_PATH_TOO_DEEP 8       /* more than 128 segments after normalisation */

/* Static string naming a TG_ROUTE_* status ("no_route"), "unknown" else.
 * Thread-safe. Since 0.2.0. */
TG_API const char* tg_route_status_str(int status);

#define TG_ROUTE_MAX_PARAMS 16

/* A captured parameter: path[offset, offset + length) of the caller's path. */
typedef struct tg_route_param {
  uint32_t offset;
  uint32_t length;
} tg_route_param;

/* Written by a match. Since 0.2.0. */
typedef struct tg_route_match {
  int32_t status;      /* TG_ROUTE_*; the fields below are set when MATCHED */
  uint32_t rule_index; /* position of the rule in the table's rule list */
  uint32_t route_id;
  uint32_t target;
  uint32_t venue_set;   /* TG_NO_VENUE_SET when the route names none */
  uint32_t param_count; /* parameters in pattern order, {*rest} last */
  tg_route_param params[TG_ROUTE_MAX_PARAMS];
} tg_route_match;

/* Match one request. Returns TG_OK (the outcome is out->status; no route is
 * a normal outcome) or TG_EINVAL (NULL table, request or out; a NULL field
 * with a nonzero length; more than TG_ROUTE_MAX_HEADERS headers).
 * Thread-safe, lock-free, allocation-free. Since 0.2.0. */
TG_API int tg_route_table_match(const tg_route_table* table, const tg_route_request* req,
                                tg_route_match* out);

/* n requests into out[0..n). Validation happens first: on TG_EINVAL no
 * entry of out was written. n = 0 is TG_OK. Thread-safe. Since 0.2.0. */
TG_API int tg_route_table_match_many(const tg_route_table* table, const tg_route_request* reqs,
                                     size_t n, tg_route_match* out);

/* The name of parameter i of rule rule_index, borrowed: valid while the
 * table is alive; not NUL-terminated. Returns TG_OK, TG_EINVAL or TG_ERANGE
 * (no such rule or parameter). Thread-safe. Since 0.2.0. */
TG_API int tg_route_table_param_name(const tg_route_table* table, uint32_t rule_index, uint32_t i,
                                     const char** name, size_t* name_len);

/* The number of rules. Thread-safe. Since 0.2.0. */
TG_API int tg_route_table_rule_count(const tg_route_table* table, size_t* out);

/* A router publishing `initial` (NULL: an empty table). It keeps the table
 * alive; the caller's handle may be freed at once. Since 0.2.0. */
TG_API int tg_router_new(const tg_route_table* initial, tg_router** out, tg_error* err);

/* NULL is a no-op. No call on the handle may be in progress or follow.
 * Since 0.2.0. */
TG_API void tg_router_free(tg_router* router);

/* Make `table` the current table for every match that starts after this
 * returns. Returns once no thread can still be matching against the table
 * it replaced (matches in progress finish on the table they started with),
 * then releases that table. Publications are serialised. Must not be called
 * from a callback running inside a match. Returns TG_OK or TG_EINVAL.
 * Thread-safe. Since 0.2.0. */
TG_API int tg_router_publish(tg_router* router, const tg_route_table* table, tg_error* err);

/* As tg_route_table_match on the current table. The batch form matches all
 * n requests against one table. rule_index and parameter names refer to
 * the table current at the call, which a concurrent publish may replace
 * before the caller looks them up: hosts that need parameter names should
 * key them by route_id (which they assign and keep stable across tables),
 * or match against a snapshot from tg_router_current. Thread-safe,
 * lock-free, allocation-free. Since 0.2.0. */
TG_API int tg_router_match(const tg_router* router, const tg_route_request* req,
                           tg_route_match* out);
TG_API int tg_router_match_many(const tg_router* router, const tg_route_request* reqs, size_t n,
                                tg_route_match* out);

/* How many tables were published after the initial one. Since 0.2.0. */
TG_API int tg_router_version(const tg_router* router, uint64_t* out);

/* A new reference to the current table; free it with tg_route_table_free.
 * Thread-safe. Since 0.2.0. */
TG_API int tg_router_current(const tg_router* router, tg_route_table** out);

/* Normalise a path (see above) into dst[0..cap): "/" + decoded segments
 * joined by "/", bytes outside RFC 3986's pchar set escaped as %XX
 * (upper-case hex), query and fragment dropped. Forward this form upstream
 * so the upstream sees exactly what was matched. Returns TG_OK (*written
 * bytes, no NUL added), TG_ETOOSMALL (*written is the size needed) or
 * TG_EINVAL (NULL arguments, or a path normalisation refuses: *status,
 * optional, gets the TG_ROUTE_* reason). Thread-safe. Since 0.2.0. */
TG_API int tg_path_normalize(const char* path, size_t path_len, char* dst, size_t cap,
                             size_t* written, int* status);

/* Venue sets ---------------------------------------------------------------
 *
 * Up to 64 venues, each with a weight and optionally the breaker guarding
 * it. A venue is eligible when it is enabled and its breaker (if any) would
 * admit a call now: not open, not forced open, not half-open with every
 * probe taken. An open breaker whose open period has ended is eligible, so
 * it receives the probes that can close it. Among eligible venues:
 *  - TG_VENUE_WEIGHTED: one at random in proportion to its weight;
 *  - TG_VENUE_LEAST_LATENCY: two drawn that way, the lower latency estimate
 *    wins (power of two choices); the estimate is an EWMA of completion
 *    latencies decaying toward 0 while the venue gets no samples; a venue
 *    with no sample yet counts as 0 ns;
 *  - sticky (either strategy, for picks with a non-empty key): weighted
 *    rendezvous hashing on (seed, key, venue id): a key keeps its venue
 *    while that venue is eligible, and when a venue leaves only its keys
 *    move.
 * "At random" is a hash of (seed, nonce), the nonce supplied by the caller
 * (an order sequence number), so a pick can be replayed: tg_venue_set_choose
 * with the journalled eligible mask gives the same venue.
 */

#define TG_VENUE_WEIGHTED 0
#define TG_VENUE_LEAST_LATENCY 1

/* Since 0.2.0. */
typedef struct tg_venue {
  uint32_t venue_id;   /* the host's id, unique in the set; sticky picks hash it */
  uint32_t weight;     /* 1..1000000 */
  tg_breaker* breaker; /* optional; the set keeps it alive */
} tg_venue;

/* Since 0.2.0. */
typedef struct tg_venue_set_options {
  uint32_t struct_size;
  uint32_t strategy;      /* TG_VENUE_*; default WEIGHTED */
  const tg_venue* venues; /* 1..64 venues */
  uint32_t venue_count;
  int32_t sticky;            /* 1: picks with a key use rendezvous hashing; 0 (default) or 1 */
  uint64_t seed;             /* default 0 */
  double latency_alpha;      /* EWMA weight of the newest sample, (0, 1]; default 0.2 */
  uint64_t latency_decay_ns; /* idle time constant of the latency estimate (e^(-idle/this));
                                0: no decay; default 10 s; <= 2^62 */
} tg_venue_set_options;

/* Fill *opts with defaults and set struct_size. NULL-safe. Since 0.2.0. */
TG_API void tg_venue_set_options_init(tg_venue_set_options* opts);

/* Create a venue set. Same contract as tg_limiter_new. Since 0.2.0. */
TG_API int tg_venue_set_new(const tg_venue_set_options* opts, tg_venue_set** out, tg_error* err);

/* Release the caller's reference; route tables holding the set keep it.
 * NULL is a no-op. Since 0.2.0. */
TG_API void tg_venue_set_free(tg_venue_set* set);

#define TG_VENUE_OK 0
#define TG_VENUE_ALL_OPEN 1 /* every venue's breaker rejects now; see retry_after_ns */
#define TG_VENUE_ALL_DOWN 2 /* every venue is disabled or forced open */
#define TG_VENUE_NO_SET 3   /* tg_router_route: no route, or a route without venue set */

/* Written by a pick. Since 0.2.0. */
typedef struct tg_venue_pick {
  int32_t ok;     /* 1: index/venue_id name the venue */
  int32_t reason; /* TG_VENUE_* */
  uint32_t index; /* into the set's venues */
  uint32_t venue_id;
  uint32_t alternative; /* LEAST_LATENCY: the other candidate; else == index */
  uint32_t reserved;
  uint64_t eligible;       /* bit i set: venue i was eligible (journal it for replay) */
  uint64_t retry_after_ns; /* !ok: until a breaker admits again; UINT64_MAX never */
} tg_venue_pick;

/* Pick a venue for a request; key (may be NULL with key_len 0) makes the
 * pick sticky when the set is. Returns TG_OK (see out->ok) or TG_EINVAL.
 * Thread-safe, lock-free, allocation-free. Since 0.2.0. */
TG_API int tg_venue_set_pick(const tg_venue_set* set, const void* key, size_t key_len,
                             uint64_t nonce, uint64_t now_ns, tg_venue_pick* out);

/* The pure part of a pick, for replay: the venue that key and nonce get
 * among the venues in `eligible` (bits beyond the set's size ignored).
 * Thread-safe. Since 0.2.0. */
TG_API int tg_venue_set_choose(const tg_venue_set* set, const void* key, size_t key_len,
                               uint64_t nonce, uint64_t eligible, tg_venue_pick* out);

/* Feed one completion latency of venue `index`, observed at now_ns, into
 * its estimate: the EWMA decayed to now_ns (e^(-idle / latency_decay_ns))
 * plus latency_alpha times the difference. The decay keeps a venue that was
 * slow from being starved for good: with two venues both are always
 * compared, and without decay the slower would never get another sample.
 * Returns TG_OK, TG_EINVAL or TG_ERANGE (no such venue). Thread-safe,
 * lock-free. Since 0.2.0. */
TG_API int tg_venue_set_record_latency(tg_venue_set* set, uint32_t index, uint64_t latency_ns,
                                       uint64_t now_ns);

/* Take venue `index` out of selection (enabled = 0) or put it back (1); effective
 * for every pick that starts after this returns. Returns TG_OK, TG_EINVAL or
 * TG_ERANGE. Thread-safe. Since 0.2.0. */
TG_API int tg_venue_set_set_enabled(tg_venue_set* set, uint32_t index, int enabled);

/* The number of venues. Since 0.2.0. */
TG_API int tg_venue_set_size(const tg_venue_set* set, uint32_t* out);

/* Since 0.2.0. */
typedef struct tg_venue_stats {
  uint32_t venue_id;
  uint32_t weight;
  int32_t enabled;
  uint32_t reserved;
  uint64_t ready_in_ns;   /* until its breaker would admit; 0 now; UINT64_MAX never */
  double latency_ewma_ns; /* -1 before the first sample; decayed to now_ns */
  uint64_t latency_samples;
} tg_venue_stats;

/* Returns TG_OK, TG_EINVAL or TG_ERANGE. Thread-safe. Since 0.2.0. */
TG_API int tg_venue_set_stats(const tg_venue_set* set, uint32_t index, uint64_t now_ns,
                              tg_venue_stats* out);

/* Match, then, when the route names a venue set, pick from it (key, nonce
 * and now_ns as in tg_venue_set_pick); out->venue.ok is 0 when the route
 * has no venue set or no venue is eligible. Thread-safe, lock-free,
 * allocation-free. Since 0.2.0. */
typedef struct tg_route_decision {
  tg_route_match match;
  tg_venue_pick venue;
} tg_route_decision;

TG_API int tg_router_route(const tg_router* router, const tg_route_request* req, const void* key,
                           size_t key_len, uint64_t nonce, uint64_t now_ns, tg_route_decision* out);

/* ------------------------------------------------------------------------ */
/* Price cache                                                               */
/* ------------------------------------------------------------------------ */
/*
 * Market data cached until the price moves. An entry is keyed by instrument
 * (a symbol, or a numeric id as its 8 little-endian bytes; 1..32 bytes) and
 * holds the price it was cached at, its threshold, the feed sequence number
 * and an opaque payload (at most max_payload bytes). The feed calls
 * tg_price_cache_on_price for every tick; the entry is evicted when:
 *  - TG_EVICT_PRICE_MOVE: the move since caching exceeds the threshold
 *    (bps: |p - c| / c * 1e4 > threshold; ticks: round(|p - c| / tick_size)
 *    > threshold, halves rounded away from zero). A move exactly at the
 *    threshold keeps the entry.
 *  - TG_EVICT_SEQUENCE_GAP: feed_seq is not the next number after the last
 *    one seen for the instrument. Numbers compare modulo 2^64 (the feed may
 *    wrap); a number already seen or less than 2^63 behind is a replay,
 *    ignored (TG_PRICE_REPLAY); one exactly 2^63 away is a gap.
 *  - TG_EVICT_AGE: older than max_age_ns (reads report it as a miss; the
 *    next tick or tg_price_cache_expire evicts it).
 *  - TG_EVICT_CAPACITY: a put found both of the key's candidate groups of 8
 *    slots full (a key may live in either of two groups; a new key goes to
 *    the emptier one); the victim, in the first group, is chosen by CLOCK
 *    (entries read since the hand last passed are spared).
 *  - TG_EVICT_REMOVED: tg_price_cache_remove.
 * With vol_multiplier > 0 the threshold widens with realised volatility:
 * var = (1 - vol_alpha) var + vol_alpha ln(p / p_prev)^2 on every in-sequence
 * tick, threshold = max(threshold, vol_multiplier * sqrt(var) * 1e4) bps (for
 * tick thresholds, that many bps of the cached price in ticks).
 *
 * Readers never wait for the feed and never see a torn entry (a seqlock per
 * slot); writers (put, on_price, remove, expire) may run on any threads.
 * Every eviction is counted by reason and passed to the event callback.
 */

typedef struct tg_price_cache tg_price_cache;

#define TG_THRESHOLD_BPS 0
#define TG_THRESHOLD_TICKS 1

/* Since 0.2.0. */
typedef struct tg_price_cache_options {
  uint32_t struct_size;
  uint32_t unit;         /* TG_THRESHOLD_*; default BPS */
  uint64_t capacity;     /* entries, 1..2^26; default 4096 */
  uint32_t max_payload;  /* bytes per entry, 0..1024; default 64 */
  uint32_t reserved;     /* must be 0 */
  double threshold;      /* default threshold (bps or ticks), finite, >= 0; default 10 */
  double tick_size;      /* default tick size, finite, > 0; default 0.01 */
  uint64_t max_age_ns;   /* 0: no age limit; default 60 s */
  double vol_multiplier; /* 0 (default): fixed thresholds */
  double vol_alpha;      /* (0, 1]; default 0.05 */
  uint64_t seed;         /* key hashing; 0 keeps the default */
} tg_price_cache_options;

/* Fill *opts with defaults and set struct_size. NULL-safe. Since 0.2.0. */
TG_API void tg_price_cache_options_init(tg_price_cache_options* opts);

/* Create a cache. Same contract as tg_limiter_new. Since 0.2.0. */
TG_API int tg_price_cache_new(const tg_price_cache_options* opts, tg_price_cache** out,
                              tg_error* err);

/* NULL is a no-op. No call on the handle may be in progress or follow.
 * Since 0.2.0. */
TG_API void tg_price_cache_free(tg_price_cache* cache);

/* Cache (or re-cache) an instrument at `price` as of feed number feed_seq,
 * with payload[0, payload_len). threshold and tick_size override the
 * cache's defaults for this entry; NaN keeps the default. A re-cache
 * replaces price, payload, sequence and age. Returns TG_OK, TG_EINVAL (NULL
 * handle, key not 1..32 bytes, price NaN, infinite, zero or negative, NULL
 * payload with a length), TG_ERANGE (payload longer than max_payload, a
 * negative or non-finite threshold, a tick size <= 0). Thread-safe.
 * Since 0.2.0. */
TG_API int tg_price_cache_put(tg_price_cache* cache, const void* key, size_t key_len, double price,
                              uint64_t feed_seq, const void* payload, size_t payload_len,
                              double threshold, double tick_size, uint64_t now_ns, tg_error* err);

/* Written by tg_price_cache_get. Since 0.2.0. */
typedef struct tg_cached_price {
  double price;      /* the price the entry was cached at */
  double threshold;  /* its threshold now, volatility included, in the cache's unit */
  uint64_t feed_seq; /* the last in-sequence number seen */
  uint64_t cached_at_ns;
  uint64_t age_ns;      /* now_ns - cached_at_ns (0 if the clock went back) */
  uint32_t payload_len; /* the entry's payload length (copied: min(cap, this)) */
  uint32_t reserved;
} tg_cached_price;

/* Look up an instrument: *hit = 1 and *out filled on a hit (payload copied
 * into payload[0, min(cap, out->payload_len))), *hit = 0 on a miss,
 * including an entry older than max_age_ns. out and payload may be NULL
 * (payload only with cap 0). Returns TG_OK or TG_EINVAL (NULL handle or hit,
 * key not 1..32 bytes). Thread-safe; lock-free for readers, never waits for
 * the feed; allocation-free. Since 0.2.0. */
TG_API int tg_price_cache_get(const tg_price_cache* cache, const void* key, size_t key_len,
                              uint64_t now_ns, tg_cached_price* out, void* payload,
                              size_t payload_cap, int* hit);

#define TG_PRICE_KEPT 0       /* in sequence, within the threshold */
#define TG_PRICE_EVICTED 1    /* see reason */
#define TG_PRICE_NOT_CACHED 2 /* no entry for the instrument */
#define TG_PRICE_REPLAY 3     /* a sequence number already seen: ignored */

#define TG_EVICT_NONE 0
#define TG_EVICT_PRICE_MOVE 1
#define TG_EVICT_SEQUENCE_GAP 2
#define TG_EVICT_AGE 3
#define TG_EVICT_CAPACITY 4
#define TG_EVICT_REMOVED 5

/* Written by tg_price_cache_on_price. Since 0.2.0. */
typedef struct tg_price_result {
  int32_t outcome; /* TG_PRICE_* */
  int32_t reason;  /* TG_EVICT_* when evicted, else TG_EVICT_NONE */
} tg_price_result;

/* A market-data tick for an instrument. Returns TG_OK (see *out) or
 * TG_EINVAL (NULL handle or out, key not 1..32 bytes, price NaN, infinite,
 * zero or negative: nothing changes). Thread-safe, allocation-free.
 * Since 0.2.0. */
TG_API int tg_price_cache_on_price(tg_price_cache* cache, const void* key, size_t key_len,
                                   double price, uint64_t feed_seq, uint64_t now_ns,
                                   tg_price_result* out);

/* Batch of n ticks at one now_ns. Key i is keys[key_offsets[i] ..
 * key_offsets[i+1]) (n+1 offsets, non-decreasing), as in
 * tg_limiter_acquire_many. Validation happens first: on TG_EINVAL no tick
 * was applied. n = 0 is TG_OK. Thread-safe. Since 0.2.0. */
TG_API int tg_price_cache_on_price_many(tg_price_cache* cache, const uint8_t* keys,
                                        const uint32_t* key_offsets, size_t n, const double* prices,
                                        const uint64_t* feed_seqs, uint64_t now_ns,
                                        tg_price_result* out);

/* Evict an instrument (TG_EVICT_REMOVED); *removed (optional) = 1 if it was
 * cached. Returns TG_OK or TG_EINVAL. Thread-safe. Since 0.2.0. */
TG_API int tg_price_cache_remove(tg_price_cache* cache, const void* key, size_t key_len,
                                 uint64_t now_ns, int* removed);

/* Evict every entry older than max_age_ns; *evicted (optional) gets the
 * count. O(slots): call it from the host's loop, not per order. Returns
 * TG_OK or TG_EINVAL. Thread-safe. Since 0.2.0. */
TG_API int tg_price_cache_expire(tg_price_cache* cache, uint64_t now_ns, size_t* evicted);

/* An eviction, passed to the callback; valid during the call only. */
typedef struct tg_eviction_event {
  int32_t reason; /* TG_EVICT_* */
  uint32_t key_len;
  const char* key; /* not NUL-terminated */
  double cached_price;
  double new_price;  /* the tick's price; the cached price for other reasons */
  uint64_t feed_seq; /* the tick's number; the last seen for other reasons */
  uint64_t now_ns;
} tg_eviction_event;

typedef void (*tg_price_cache_event_fn)(void* user, const tg_eviction_event* ev);

/* Call fn(user, ev) for every eviction, on the writer's thread, after the
 * entry is gone. fn must not block; it may call tg_price_cache functions
 * (the writer holds nothing then). NULL removes it. Set it before the feed
 * starts. Returns TG_OK or TG_EINVAL. Thread-safe. Since 0.2.0. */
TG_API int tg_price_cache_set_event_callback(tg_price_cache* cache, tg_price_cache_event_fn fn,
                                             void* user);

/* Counters since creation. Since 0.2.0. */
typedef struct tg_price_cache_stats {
  uint64_t hits;
  uint64_t misses;       /* not cached (stale entries are counted apart) */
  uint64_t stale_misses; /* entries older than max_age_ns */
  uint64_t puts;
  uint64_t kept;
  uint64_t replays;
  uint64_t not_cached;
  uint64_t evicted_price_move;
  uint64_t evicted_sequence_gap;
  uint64_t evicted_age;
  uint64_t evicted_capacity;
  uint64_t evicted_removed;
  uint64_t entries; /* live now */
  uint64_t slots;
} tg_price_cache_stats;

/* Thread-safe; counters are read one by one. Since 0.2.0. */
TG_API int tg_price_cache_stats_get(const tg_price_cache* cache, tg_price_cache_stats* out);

/* ------------------------------------------------------------------------ */
/* Pre-trade risk checks                                                     */
/* ------------------------------------------------------------------------ */
/*
 * Whether one order may go to the market (SEC Rule 15c3-5, MiFID II RTS 6
 * Art. 15). Checks, in this order; the first that fails decides:
 *  1. kill switches: global, the order's account, its instrument;
 *  2. a malformed order: quantity not finite or <= 0; limit price neither NaN
 *     (a market order) nor finite and > 0; account or instrument not 1..32
 *     bytes; client order id not 1..64 bytes (limit = the longest allowed,
 *     observed = the length);
 *  3. duplicate: the account had an order with this client order id
 *     accepted less than duplicate_window_ns ago (observed = its age);
 *  4. max_quantity;
 *  5. reference price: the price cache's entry for the instrument; a miss or
 *     an entry older than the cache's max_age_ns or max_reference_age_ns is
 *     "no fresh reference", never used; then on_no_reference rejects
 *     (TG_RISK_NO_REFERENCE_PRICE) or allows (the collar is skipped; a limit
 *     order's notional uses its limit price, a market order's is unknown);
 *  6. price collar (limit orders): the limit price must lie within
 *     reference +/- band, band = reference * width / 100 (PERCENT),
 *     reference * width / 1e4 (BPS) or width * collar_tick_size (TICKS);
 *  7. max_notional: quantity * (limit price, or the reference for a market
 *     order);
 *  8. the account's period (fixed windows [k * period_ns, (k+1) * period_ns)):
 *     account capacity, notional, order count, duplicate-id capacity.
 * Only an accepted order counts toward its account and is remembered as a
 * duplicate. A value exactly at a limit passes; notional and collar
 * comparisons allow a relative 1e-9 (decimal limits in binary floating
 * point). Memory is fixed at creation: when the account or duplicate tables
 * cannot hold one more live entry the order is rejected
 * (TG_RISK_ACCOUNT_CAPACITY, TG_RISK_DUPLICATE_CAPACITY): fail closed.
 * Keys are compared by a 64-bit keyed hash: a collision (probability about
 * 2^-64) can only reject, never accept.
 *
 * Kill switches (global, per account, per instrument) are latched until
 * released and effective for every check that starts after the engaging
 * call returns, on any thread; every change is passed to the kill callback
 * so the host can journal it.
 *
 * Checks run on any number of threads, allocate nothing and take no lock for
 * steps 1-2 and 4-7; steps 3 and 8 serialise the orders of one account (a
 * spin lock striped by account), so two orders can never both pass a limit
 * only one of them fits under.
 */

typedef struct tg_risk_checker tg_risk_checker;

#define TG_COLLAR_PERCENT 0
#define TG_COLLAR_BPS 1
#define TG_COLLAR_TICKS 2

#define TG_NO_REFERENCE_REJECT 0 /* default: never trade blind */
#define TG_NO_REFERENCE_ALLOW 1

/* Since 0.2.0. */
typedef struct tg_risk_options {
  uint32_t struct_size;
  uint32_t on_no_reference;      /* TG_NO_REFERENCE_*; default REJECT */
  uint64_t max_reference_age_ns; /* 0 (default): the cache's max_age_ns alone */
  double max_quantity;           /* > 0; default INFINITY: no limit */
  double max_notional;           /* per order, > 0; default INFINITY */
  uint32_t collar_unit;          /* TG_COLLAR_*; default PERCENT */
  uint32_t reserved;             /* must be 0 */
  double collar_width;           /* >= 0; default INFINITY: no collar */
  double collar_tick_size;       /* finite, > 0; default 0.01 */
  uint64_t period_ns;            /* > 0; default 1 s */
  double account_max_notional;   /* per account per period, > 0; default INFINITY */
  uint64_t account_max_orders;   /* per account per period, >= 1; default UINT64_MAX */
  uint64_t account_capacity;     /* accounts with period state, 1..2^24; default 4096 */
  uint64_t duplicate_window_ns;  /* 0: no duplicate check; default 60 s */
  uint64_t duplicate_capacity;   /* ids inside the window, 1..2^26; default 65536 */
  uint64_t kill_switch_capacity; /* keys per scope, 1..2^20; default 1024 */
  uint64_t seed;                 /* key hashing; 0 keeps the default */
} tg_risk_options;

/* Fill *opts with defaults and set struct_size. NULL-safe. Since 0.2.0. */
TG_API void tg_risk_options_init(tg_risk_options* opts);

/* Create a checker. prices (optional) supplies reference prices; the
 * checker keeps a reference to it, so tg_price_cache_free may be called
 * first (the cache goes with the checker). NULL prices: no instrument ever
 * has a reference price (on_no_reference decides). Same contract as
 * tg_limiter_new; TG_EINVAL also for prices that is not a live cache.
 * Since 0.2.0. */
TG_API int tg_risk_checker_new(const tg_risk_options* opts, tg_price_cache* prices,
                               tg_risk_checker** out, tg_error* err);

/* NULL is a no-op. No call on the handle may be in progress or follow.
 * Since 0.2.0. */
TG_API void tg_risk_checker_free(tg_risk_checker* checker);

#define TG_SIDE_BUY 0
#define TG_SIDE_SELL 1

/* The order to decide; nothing is copied or kept. A string pointer may be
 * NULL only with length 0 (an empty field, rejected as malformed). Since
 * 0.2.0. */
typedef struct tg_risk_order {
  const char* account;
  size_t account_len;
  const char* instrument; /* the price cache's key for it */
  size_t instrument_len;
  const char* client_order_id;
  size_t client_order_id_len;
  uint32_t side; /* TG_SIDE_*; no check depends on it */
  uint32_t reserved;
  double quantity;
  double limit_price; /* NAN: a market order */
} tg_risk_order;

/* Why an order was rejected (append-only; never renumbered). */
#define TG_RISK_NONE 0
#define TG_RISK_KILL_SWITCH_GLOBAL 1
#define TG_RISK_KILL_SWITCH_ACCOUNT 2
#define TG_RISK_KILL_SWITCH_INSTRUMENT 3
#define TG_RISK_INVALID_QUANTITY 4
#define TG_RISK_INVALID_PRICE 5
#define TG_RISK_INVALID_ACCOUNT 6
#define TG_RISK_INVALID_INSTRUMENT 7
#define TG_RISK_INVALID_CLIENT_ORDER_ID 8
#define TG_RISK_DUPLICATE_ORDER 9
#define TG_RISK_MAX_QUANTITY 10
#define TG_RISK_NO_REFERENCE_PRICE 11
#define TG_RISK_PRICE_COLLAR 12
#define TG_RISK_MAX_NOTIONAL 13
#define TG_RISK_ACCOUNT_NOTIONAL 14
#define TG_RISK_ACCOUNT_ORDER_COUNT 15
#define TG_RISK_ACCOUNT_CAPACITY 16
#define TG_RISK_DUPLICATE_CAPACITY 17
#define TG_RISK_REASON_COUNT 18 /* grows as reasons are added */

/* Static lower-case name of a TG_RISK_* reason ("price_collar"), or
 * "unknown". Never NULL. Since 0.2.0. */
TG_API const char* tg_risk_reason_name(int reason);

/* Written by tg_risk_check. A field that does not apply is NaN. Since 0.2.0. */
typedef struct tg_risk_decision {
  int32_t allowed;
  int32_t reason;   /* TG_RISK_*; TG_RISK_NONE when allowed */
  double limit;     /* the configured limit that was hit */
  double observed;  /* the order's value that hit it; when allowed, its notional */
  double reference; /* the reference price used, when one was found */
} tg_risk_decision;

/* Decide one order at now_ns. A malformed order is a decision
 * (TG_RISK_INVALID_*), not an error. Returns TG_OK, or TG_EINVAL (NULL
 * handle, order or out; a NULL string with a non-zero length; an unknown
 * side or non-zero reserved) and then nothing was counted. Thread-safe,
 * allocation-free. Since 0.2.0. */
TG_API int tg_risk_check(tg_risk_checker* checker, const tg_risk_order* order, uint64_t now_ns,
                         tg_risk_decision* out);

/* Batch: n orders at one now_ns, decided in order (a later order sees the
 * earlier ones accepted). Validation happens first: on TG_EINVAL no order
 * was decided. n = 0 is TG_OK. Thread-safe. Since 0.2.0. */
TG_API int tg_risk_check_many(tg_risk_checker* checker, const tg_risk_order* orders, size_t n,
                              uint64_t now_ns, tg_risk_decision* out);

#define TG_KILL_GLOBAL 0
#define TG_KILL_ACCOUNT 1
#define TG_KILL_INSTRUMENT 2

/* Engage a kill switch: the global one (key ignored, may be NULL), an
 * account's or an instrument's (key 1..32 bytes). Idempotent. Effective for
 * every check that starts after it returns. Returns TG_OK, TG_EINVAL (NULL
 * handle, unknown scope, bad key) or TG_ENOMEM (the scope already holds
 * kill_switch_capacity keys: nothing was engaged). Thread-safe. Since 0.2.0. */
TG_API int tg_risk_kill_engage(tg_risk_checker* checker, int scope, const void* key, size_t key_len,
                               uint64_t now_ns, tg_error* err);

/* Release a kill switch; releasing one not engaged is TG_OK and no event.
 * Returns TG_OK or TG_EINVAL. Thread-safe. Since 0.2.0. */
TG_API int tg_risk_kill_release(tg_risk_checker* checker, int scope, const void* key,
                                size_t key_len, uint64_t now_ns, tg_error* err);

/* *engaged = 1 if the switch is engaged. Returns TG_OK or TG_EINVAL.
 * Thread-safe, lock-free. Since 0.2.0. */
TG_API int tg_risk_kill_engaged(const tg_risk_checker* checker, int scope, const void* key,
                                size_t key_len, int* engaged);

/* A kill switch change, passed to the callback; valid during the call only. */
typedef struct tg_kill_switch_event {
  int32_t scope;   /* TG_KILL_* */
  int32_t engaged; /* 0: released */
  uint32_t key_len;
  uint32_t reserved;
  const char* key; /* never NULL; "" for the global switch; not NUL-terminated */
  uint64_t now_ns;
} tg_kill_switch_event;

typedef void (*tg_kill_switch_event_fn)(void* user, const tg_kill_switch_event* ev);

/* Call fn(user, ev) on every change, on the thread engaging or releasing,
 * before that call returns; changes are delivered one at a time in the order
 * they took effect. fn must not engage or release any kill switch (TG_ESTATE
 * if it tries: a cycle of callbacks could otherwise deadlock); checks are
 * fine. NULL removes it. Returns TG_OK or
 * TG_EINVAL. Thread-safe. Since 0.2.0. */
TG_API int tg_risk_set_kill_callback(tg_risk_checker* checker, tg_kill_switch_event_fn fn,
                                     void* user);

/* Counters since creation. Since 0.2.0. */
typedef struct tg_risk_stats {
  uint64_t checked;
  uint64_t allowed;
  uint64_t rejected;
  uint64_t decisions[32]; /* by TG_RISK_* reason; [TG_RISK_NONE]: allowed */
  uint64_t accounts;      /* accounts holding period state (some may have ended) */
  uint64_t duplicate_ids; /* client order ids remembered (some may have ended) */
  uint64_t killed_accounts;
  uint64_t killed_instruments;
  int32_t global_kill;
  uint32_t reserved;
} tg_risk_stats;

/* Thread-safe; counters are read one by one. Since 0.2.0. */
TG_API int tg_risk_stats_get(const tg_risk_checker* checker, tg_risk_stats* out);

/* ------------------------------------------------------------------------ */
/* Request authentication                                                    */
/* ------------------------------------------------------------------------ */
/*
 * HMAC-SHA256 request signatures (docs/auth.md is the specification, with
 * worked examples; tests/vectors/auth_vectors.txt holds shared vectors). A
 * client signs a canonical request (method, normalised path, sorted query,
 * the signed headers, key id, token id, timestamp, nonce, SHA-256 of the
 * body) and sends
 *   Authorization: TG1-HMAC-SHA256 KeyId=k, SignedHeaders=a;b, Timestamp=ns,
 *                  Nonce=n[, Token=t], Signature=hex
 * tg_auth_verify checks, in order: the header parses (TG_AUTH_MALFORMED),
 * the timestamp is within max_skew_ns of now (and not older than the latest
 * clock seen minus max_skew_ns: TG_AUTH_SKEW), the key is not revoked, known
 * and valid now (TG_AUTH_REVOKED_KEY, TG_AUTH_UNKNOWN_KEY,
 * TG_AUTH_EXPIRED_KEY), the token is not revoked (TG_AUTH_REVOKED_TOKEN),
 * the request canonicalises (TG_AUTH_MALFORMED with a detail) and the MAC
 * matches in constant time (TG_AUTH_BAD_SIGNATURE), then the (key id, nonce)
 * was not accepted within the window (TG_AUTH_REPLAY), and the nonce cache
 * can remember it (TG_AUTH_NONCE_CAPACITY: refused rather than forgotten).
 * Key, revocation and nonce changes are effective for every verification
 * that starts after the call returns, on any thread.
 */

typedef struct tg_authenticator tg_authenticator;

/* A string argument: a NULL data pointer is valid only with len 0. */
typedef struct tg_str {
  const char* data;
  size_t len;
} tg_str;

/* Since 0.2.0. */
typedef struct tg_auth_options {
  uint32_t struct_size;
  uint32_t reserved;       /* must be 0 */
  uint64_t max_skew_ns;    /* 1 ns .. 24 h; default 30 s */
  uint64_t nonce_capacity; /* nonces inside the window, 16..2^26; default 2^18 (64 B each) */
  uint64_t seed;           /* nonce hashing; 0 keeps the default */
} tg_auth_options;

/* Fill *opts with defaults and set struct_size. NULL-safe. Since 0.2.0. */
TG_API void tg_auth_options_init(tg_auth_options* opts);

/* Create an authenticator with no keys. Same contract as tg_limiter_new;
 * also TG_ESTATE when BoringSSL (android-libboringssl) cannot be loaded.
 * Since 0.2.0. */
TG_API int tg_authenticator_new(const tg_auth_options* opts, tg_authenticator** out, tg_error* err);

/* NULL is a no-op. No call on the handle may be in progress or follow.
 * Since 0.2.0. */
TG_API void tg_authenticator_free(tg_authenticator* auth);

/* Add (or replace) a key, valid for now in [not_before_ns, not_after_ns):
 * two keys with overlapping intervals rotate without downtime. The secret's
 * HMAC pads are computed now and the secret is not kept. Returns TG_OK or
 * TG_EINVAL (key id not 1..64 of [A-Za-z0-9._-], secret not 1..1024 bytes,
 * empty interval). Thread-safe. Since 0.2.0. */
TG_API int tg_auth_add_key(tg_authenticator* auth, const char* key_id, size_t key_id_len,
                           const void* secret, size_t secret_len, uint64_t not_before_ns,
                           uint64_t not_after_ns, uint64_t now_ns, tg_error* err);

/* Remove a key: TG_OK, TG_ENOTFOUND or TG_EINVAL. Since 0.2.0. */
TG_API int tg_auth_remove_key(tg_authenticator* auth, const char* key_id, size_t key_id_len,
                              uint64_t now_ns, tg_error* err);

#define TG_AUTH_KEY 0
#define TG_AUTH_TOKEN 1

/* Revoke (revoked = 1) or reinstate (0) a key id (TG_AUTH_KEY) or a token
 * id (TG_AUTH_TOKEN, 1..128 of [A-Za-z0-9._-]). Each change increments the
 * revocation version; a call that changes nothing is TG_OK and no event.
 * Returns TG_OK, TG_EINVAL, or TG_ESTATE when the version is UINT64_MAX
 * (it never wraps: a stale list must never look newer). Thread-safe. Since 0.2.0. */
TG_API int tg_auth_revoke(tg_authenticator* auth, int kind, const char* id, size_t id_len,
                          int revoked, uint64_t now_ns, tg_error* err);

/* Replace both revocation lists at once by the lists at `version`, which
 * must be newer than the current one (TG_ESTATE otherwise: a stale list
 * never overwrites a newer one). Returns TG_OK, TG_EINVAL or TG_ESTATE.
 * Since 0.2.0. */
TG_API int tg_auth_replace_revocations(tg_authenticator* auth, uint64_t version,
                                       const tg_str* key_ids, size_t n_key_ids,
                                       const tg_str* token_ids, size_t n_token_ids, uint64_t now_ns,
                                       tg_error* err);

/* The current revocation version. Since 0.2.0. */
TG_API int tg_auth_revocation_version(const tg_authenticator* auth, uint64_t* out);

/* The request to verify or sign. target is the path with an optional
 * "?query" as sent; headers are the request's headers (names compared
 * without case). body_sha256, when not NULL, is the body's SHA-256 (32
 * bytes) and body is ignored. Since 0.2.0. */
typedef struct tg_auth_message {
  const char* method;
  size_t method_len;
  const char* target;
  size_t target_len;
  const tg_header* headers;
  size_t header_count;
  const void* body;
  size_t body_len;
  const uint8_t* body_sha256;
} tg_auth_message;

#define TG_AUTH_OK 0
#define TG_AUTH_MALFORMED 1
#define TG_AUTH_UNKNOWN_KEY 2
#define TG_AUTH_EXPIRED_KEY 3
#define TG_AUTH_BAD_SIGNATURE 4
#define TG_AUTH_SKEW 5
#define TG_AUTH_REPLAY 6
#define TG_AUTH_REVOKED_KEY 7
#define TG_AUTH_REVOKED_TOKEN 8
#define TG_AUTH_NONCE_CAPACITY 9
#define TG_AUTH_REASON_COUNT 10 /* grows as reasons are added */

/* Static names: tg_auth_reason_name(TG_AUTH_SKEW) is "skew";
 * tg_auth_detail_name(d) names what was malformed ("missing_header").
 * "unknown" for numbers out of range. Never NULL. Since 0.2.0. */
TG_API const char* tg_auth_reason_name(int reason);
TG_API const char* tg_auth_detail_name(int detail);

/* Written by tg_auth_verify. Offsets are into the authorization string
 * (lengths 0 when the header did not parse that far). Since 0.2.0. */
typedef struct tg_auth_result {
  int32_t reason; /* TG_AUTH_* */
  int32_t detail; /* what was malformed; 0 for other reasons */
  uint64_t timestamp_ns;
  uint32_t key_id_offset;
  uint32_t key_id_len;
  uint32_t token_offset;
  uint32_t token_len;
  uint32_t nonce_offset;
  uint32_t nonce_len;
} tg_auth_result;

/* Verify a request against its Authorization header value at now_ns
 * (wall-clock Unix nanoseconds). Returns TG_OK (see out->reason) or
 * TG_EINVAL (NULL handle, message or out; a NULL string with a length):
 * then nothing was counted or remembered. Thread-safe; allocation-free.
 * Since 0.2.0. */
TG_API int tg_auth_verify(tg_authenticator* auth, const tg_auth_message* msg,
                          const char* authorization, size_t authorization_len, uint64_t now_ns,
                          tg_auth_result* out);

/* A key, revocation or list change, passed to the callback (valid during
 * the call only). kind: 0 key added, 1 key removed, 2 key revoked, 3 token
 * revoked, 4 key reinstated, 5 token reinstated, 6 revocations replaced. */
typedef struct tg_auth_event {
  int32_t kind;
  uint32_t id_len;
  const char* id; /* never NULL; "" for a replaced list */
  uint64_t revocation_version;
  uint64_t now_ns;
} tg_auth_event;

typedef void (*tg_auth_event_fn)(void* user, const tg_auth_event* ev);

/* Call fn(user, ev) on every change, on the changing thread, before the
 * change call returns. fn must not change any authenticator (TG_ESTATE if
 * it tries: a cycle of callbacks could otherwise deadlock). NULL removes it. Returns TG_OK or
 * TG_EINVAL. Since 0.2.0. */
TG_API int tg_auth_set_event_callback(tg_authenticator* auth, tg_auth_event_fn fn, void* user);

/* Since 0.2.0. */
typedef struct tg_auth_stats {
  uint64_t results[16]; /* by TG_AUTH_* reason; [TG_AUTH_OK]: verified */
  uint64_t keys;
  uint64_t revoked_keys;
  uint64_t revoked_tokens;
  uint64_t revocation_version;
} tg_auth_stats;

/* Thread-safe; counters are read one by one. Since 0.2.0. */
TG_API int tg_auth_stats_get(const tg_authenticator* auth, tg_auth_stats* out);

/* Client side: what to put in the Authorization header. */
typedef struct tg_auth_params {
  const char* key_id;
  size_t key_id_len;
  const char* token; /* optional: NULL or empty for none */
  size_t token_len;
  const char* nonce; /* 8..64 of [A-Za-z0-9._~-], unique per request */
  size_t nonce_len;
  const char* signed_headers; /* "content-type;host": lower case, sorted, ';'-separated */
  size_t signed_headers_len;
  uint64_t timestamp_ns; /* wall-clock Unix nanoseconds */
} tg_auth_params;

/* Sign msg with secret: writes the Authorization header value to
 * out[0, cap) with a terminating NUL and its length (without the NUL) to
 * *written. Returns TG_OK, TG_EINVAL (bad argument or a request that cannot
 * be signed: err says which field), TG_ETOOSMALL (*written is the length
 * needed), TG_ESTATE (BoringSSL missing). Thread-safe. Since 0.2.0. */
TG_API int tg_auth_sign(const tg_auth_message* msg, const tg_auth_params* params,
                        const void* secret, size_t secret_len, char* out, size_t cap,
                        size_t* written, tg_error* err);

/* The canonical request that tg_auth_sign signs, for debugging and test
 * vectors; same conventions. Since 0.2.0. */
TG_API int tg_auth_canonical_request(const tg_auth_message* msg, const tg_auth_params* params,
                                     char* out, size_t cap, size_t* written, tg_error* err);

/* HMAC-SHA256(key, msg) into out[32] (for RFC 4231 checks and clients).
 * Returns TG_OK, TG_EINVAL or TG_ESTATE. Since 0.2.0. */
TG_API int tg_hmac_sha256(const void* key, size_t key_len, const void* msg, size_t msg_len,
                          uint8_t out[32]);

/* ------------------------------------------------------------------------ */
/* Compliance audit journal (component 4; format: docs/journal-format.md)    */
/* ------------------------------------------------------------------------ */

/*
 * Append-only segment files of hash-chained records (CRC32C each, a SHA-256
 * chain through all, Ed25519-signed checkpoints and manifest). tg_journal_
 * append copies an entry into a bounded ring (no lock, no allocation, no
 * system call) and returns a ticket; a writer (a thread the journal owns, or
 * the host calling tg_journal_poll from its loop) writes batches and syncs
 * them according to the durability level. A ticket can be asked whether it
 * is written (survives the process being killed) or durable (fdatasync'ed:
 * survives a power loss). Nothing accepted is lost silently: an append
 * either gets a ticket that is written, or is refused (TG_EFULL), or is
 * dropped and counted in the journal itself (TG_EDROPPED), or the journal
 * has stopped after an I/O error (TG_EIO; tg_journal_status says which).
 *
 * The tg_journal_record_* functions journal a limiter's or a breaker's
 * configuration and decisions with everything a replay needs;
 * tg_journal_replay decides them again and reports any difference.
 */

typedef struct tg_journal tg_journal;

#define TG_JOURNAL_WRITER_THREAD 0 /* default: the journal owns a writer thread */
#define TG_JOURNAL_WRITER_POLL 1   /* the host calls tg_journal_poll */

#define TG_JOURNAL_DURABILITY_NONE 0            /* fdatasync when a segment is sealed */
#define TG_JOURNAL_DURABILITY_EVERY_N_RECORDS 1 /* every sync_every_records records */
#define TG_JOURNAL_DURABILITY_EVERY_T_US 2      /* sync_every_us after a write */
#define TG_JOURNAL_DURABILITY_EVERY_RECORD 3    /* default: every batch (group commit) */

#define TG_JOURNAL_ON_FULL_REJECT 0 /* default: TG_EFULL, the host fails closed */
#define TG_JOURNAL_ON_FULL_BLOCK                                                 \
  1                               /* append waits for room; in poll mode another \
                                     thread must be polling meanwhile */
#define TG_JOURNAL_ON_FULL_DROP 2 /* TG_EDROPPED; the journal records the count */

/* Event kinds (docs/journal-format.md). Hosts may also use
 * TG_JOURNAL_KIND_HOST_FIRST .. TG_JOURNAL_KIND_HOST_LAST. */
#define TG_JOURNAL_KIND_DECISION 1
#define TG_JOURNAL_KIND_BREAKER_TRANSITION 2
#define TG_JOURNAL_KIND_CONFIG_CHANGE 3
#define TG_JOURNAL_KIND_KEY_REVOCATION 4
#define TG_JOURNAL_KIND_KILL_SWITCH 5
#define TG_JOURNAL_KIND_RISK_CHECK 6
#define TG_JOURNAL_KIND_HOST_FIRST 0x8000
#define TG_JOURNAL_KIND_HOST_LAST 0xFEFF
#define TG_JOURNAL_KIND_RECORDS_DROPPED 0xFF00 /* written by the journal */
#define TG_JOURNAL_KIND_TAIL_TRUNCATED 0xFF01  /* written by the journal */

/* The verdicts tollgate writes (docs/journal-format.md). */
#define TG_JOURNAL_VERDICT_ALLOWED 0
#define TG_JOURNAL_VERDICT_REJECTED 1

#define TG_JOURNAL_EVENT_IO_ERROR 0        /* status, error_number: the journal stopped */
#define TG_JOURNAL_EVENT_TAIL_TRUNCATED 1  /* recovery cut count bytes at offset */
#define TG_JOURNAL_EVENT_CHECKPOINT 2      /* sequence, head */
#define TG_JOURNAL_EVENT_ROTATED 3         /* a new segment */
#define TG_JOURNAL_EVENT_RECORDS_DROPPED 4 /* count entries dropped */

/* Passed to the event callback; valid during the call. Since 0.2.0. */
typedef struct tg_journal_event {
  int32_t type;         /* TG_JOURNAL_EVENT_* */
  int32_t status;       /* IO_ERROR: the TG_E* code (TG_EIO) */
  int32_t error_number; /* IO_ERROR: errno */
  uint32_t reserved;
  uint64_t segment;
  uint64_t offset; /* IO_ERROR, TAIL_TRUNCATED: byte offset in the segment */
  uint64_t count;  /* TAIL_TRUNCATED: bytes; RECORDS_DROPPED: entries */
  uint64_t sequence;
  uint64_t realtime_ns;
  uint8_t head[32];    /* CHECKPOINT: the chain head it signs */
  const char* message; /* IO_ERROR: what failed; else "" */
} tg_journal_event;

/* Runs on the thread doing the writer's work (the journal's thread, or the
 * one in tg_journal_open, _poll, _sync, _close or _free). From inside it,
 * tg_journal_poll, _sync and _close return TG_ESTATE and tg_journal_free
 * is ignored. */
typedef void (*tg_journal_event_fn)(void* user, const tg_journal_event* ev);

/* Options for tg_journal_open. Since 0.2.0. */
typedef struct tg_journal_options {
  uint32_t struct_size;
  uint32_t mode;                     /* TG_JOURNAL_WRITER_*; default THREAD */
  const char* directory;             /* required; NUL-terminated */
  uint8_t signing_seed[32];          /* required: the Ed25519 seed that signs; not all zero */
  uint32_t durability;               /* TG_JOURNAL_DURABILITY_*; default EVERY_RECORD */
  uint32_t on_full;                  /* TG_JOURNAL_ON_FULL_*; default REJECT */
  uint64_t sync_every_records;       /* default 64 */
  uint64_t sync_every_us;            /* default 1000 */
  uint64_t ring_cells;               /* 64-byte cells, a power of two; default 65536 */
  uint64_t max_entry_bytes;          /* account + inputs + payload (+32 with payload_digest):
                                        the ring carries a payload even when only its
                                        digest is kept; default 4096 */
  uint64_t checkpoint_every_records; /* default 1024 */
  uint64_t checkpoint_every_ms;      /* default 1000 */
  uint64_t max_segment_bytes;        /* default 64 MiB */
  uint64_t max_segment_age_ms;       /* default 1 hour */
  uint64_t max_batch_records;        /* default 4096 */
  uint64_t idle_sleep_us;            /* the writer thread's longest nap; default 50 */
  uint32_t create_if_missing;        /* default 1 */
  uint32_t reserved;                 /* must be 0 */
  tg_journal_event_fn on_event;      /* optional */
  void* on_event_user;
} tg_journal_options;

/* Fill *opts with defaults and set struct_size. NULL-safe. Since 0.2.0. */
TG_API void tg_journal_options_init(tg_journal_options* opts);

/* Create or open (and recover) the journal in opts->directory. A torn tail
 * left by a crash is cut (TG_JOURNAL_EVENT_TAIL_TRUNCATED; see
 * tg_journal_recovery_get). Returns TG_OK, TG_EINVAL (bad options, or a
 * seed that is not the journal's key: err says which), TG_ERANGE,
 * TG_EVERSION, TG_ENOTFOUND (no journal there and create_if_missing 0),
 * TG_ESTATE (a directory with unknown segment files, BoringSSL missing),
 * TG_EIO (the directory cannot be used, or damage that is not a torn tail:
 * tg_journal_verify locates it), TG_ENOMEM. Since 0.2.0. */
TG_API int tg_journal_open(const tg_journal_options* opts, tg_journal** out, tg_error* err);

/* Close (as tg_journal_close; a failure goes to the event callback) and
 * release. NULL is a no-op. No other call on the handle may be in progress
 * or follow. Since 0.2.0. */
TG_API void tg_journal_free(tg_journal* j);

/* What a host appends. Views are copied by append. Since 0.2.0. */
typedef struct tg_journal_entry {
  uint32_t struct_size;
  uint16_t kind;          /* TG_JOURNAL_KIND_*; default DECISION */
  uint16_t store_payload; /* 1: keep the payload itself, not only its digest */
  uint64_t realtime_ns;   /* 0 (default): CLOCK_REALTIME at append */
  uint64_t monotonic_ns;  /* 0 (default): CLOCK_MONOTONIC at append */
  const char* account;    /* at most 255 bytes */
  size_t account_len;
  uint32_t route;
  uint32_t venue;
  uint32_t verdict; /* the host's; tollgate writes TG_JOURNAL_VERDICT_* */
  uint32_t reason;
  uint64_t config_version;
  const uint8_t* inputs; /* what a replay needs */
  size_t inputs_len;
  const uint8_t* payload; /* digested (SHA-256) by the writer */
  size_t payload_len;
  const uint8_t* payload_digest; /* optional: 32 bytes the host already has */
} tg_journal_entry;

/* Fill *e with defaults (a decision, clock timestamps) and set struct_size.
 * NULL-safe. Since 0.2.0. */
TG_API void tg_journal_entry_init(tg_journal_entry* e);

/* Append an entry; *ticket (optional) receives its ticket. Tickets grow in
 * append order but are not consecutive (they count ring cells); 0 is never
 * a ticket. Returns TG_OK,
 * TG_EFULL (ring full, policy REJECT: fail the request closed), TG_EDROPPED
 * (ring full, policy DROP: counted and recorded), TG_ERANGE (larger than
 * max_entry_bytes, or an account over 255 bytes), TG_EINVAL (NULL handle or
 * entry, a NULL pointer with a length, a kind hosts may not write),
 * TG_EVERSION, TG_ESTATE (closed), TG_EIO (stopped by an I/O error).
 * Thread-safe, lock-free, allocation-free, no system call. Since 0.2.0. */
TG_API int tg_journal_append(tg_journal* j, const tg_journal_entry* e, uint64_t* ticket);

/* *out = 1 when the ticket's record (and every earlier one) is written
 * (is_written) or fdatasync'ed (is_durable), else 0. Returns TG_OK or
 * TG_EINVAL. Thread-safe, lock-free. Since 0.2.0. */
TG_API int tg_journal_is_written(const tg_journal* j, uint64_t ticket, int* out);
TG_API int tg_journal_is_durable(const tg_journal* j, uint64_t ticket, int* out);

/* Wait until the ticket is durable (*durable = 1), timeout_us passes
 * (*durable = 0, TG_OK), or the journal fails (TG_EIO, TG_ESTATE). In poll
 * mode it polls. Thread-safe. Since 0.2.0. */
TG_API int tg_journal_wait_durable(tg_journal* j, uint64_t ticket, uint64_t timeout_us,
                                   int* durable, tg_error* err);

/* Write up to max_batch_records entries, sync as the level asks,
 * checkpoint and rotate when due; *written (optional) = entries written.
 * The writer of poll mode; in thread mode it does the thread's work early.
 * Returns TG_OK, TG_EINVAL, TG_ESTATE (closed, or called from the event
 * callback), TG_EIO. Thread-safe (serialized). Since 0.2.0. */
TG_API int tg_journal_poll(tg_journal* j, size_t* written, tg_error* err);

/* Write what the ring holds and fdatasync, whatever the level. Returns as
 * tg_journal_poll. Since 0.2.0. */
TG_API int tg_journal_sync(tg_journal* j, tg_error* err);

/* Drain the ring, seal the segment with a close checkpoint, sync, and mark
 * the journal closed in the manifest. Later appends return TG_ESTATE.
 * Idempotent. Returns TG_OK, TG_EINVAL, TG_ESTATE (from the event
 * callback), TG_EIO. Thread-safe. Since 0.2.0. */
TG_API int tg_journal_close(tg_journal* j, tg_error* err);

/* TG_OK, or the error that stopped the writer (TG_EIO, with the errno in
 * err->message). Returns TG_EINVAL for a bad handle. Thread-safe.
 * Since 0.2.0. */
TG_API int tg_journal_status(const tg_journal* j, tg_error* err);

/* Since 0.2.0. */
typedef struct tg_journal_stats {
  uint64_t written;        /* host entries written */
  uint64_t rejected;       /* TG_EFULL */
  uint64_t dropped;        /* TG_EDROPPED */
  uint64_t checkpoints;    /* since open */
  uint64_t syncs;          /* fdatasync calls since open */
  uint64_t batches;        /* since open */
  uint64_t bytes;          /* written since open */
  uint64_t next_sequence;  /* the sequence number the next record gets */
  uint64_t segment;        /* the open segment */
  uint64_t written_ticket; /* every ticket <= this is written */
  uint64_t durable_ticket; /* every ticket <= this is durable */
} tg_journal_stats;

/* Returns TG_OK or TG_EINVAL. Thread-safe. Since 0.2.0. */
TG_API int tg_journal_stats_get(const tg_journal* j, tg_journal_stats* out);

/* What tg_journal_open found and did. Since 0.2.0. */
typedef struct tg_journal_recovery {
  int32_t created;        /* 1: a new journal */
  int32_t tail_truncated; /* 1: a torn tail was cut */
  uint64_t segment;       /* the segment recovered */
  uint64_t offset;        /* where the torn tail began */
  uint64_t bytes_removed;
  uint64_t records; /* valid records in the recovered segment */
  uint64_t next_sequence;
} tg_journal_recovery;

/* Returns TG_OK or TG_EINVAL. Thread-safe. Since 0.2.0. */
TG_API int tg_journal_recovery_get(const tg_journal* j, tg_journal_recovery* out);

/* The journal's 16-byte id and its 32-byte Ed25519 public key (pin it in
 * tg_journal_read_options.public_key). Return TG_OK or TG_EINVAL.
 * Thread-safe. Since 0.2.0. */
TG_API int tg_journal_id(const tg_journal* j, uint8_t out[16]);
TG_API int tg_journal_public_key(const tg_journal* j, uint8_t out[32]);

/* The Ed25519 public key of a 32-byte seed. Returns TG_OK, TG_EINVAL or
 * TG_ESTATE (BoringSSL missing). Thread-safe. Since 0.2.0. */
TG_API int tg_ed25519_public_key(const uint8_t seed[32], uint8_t out[32]);

/* Recording decisions for replay. `instance` names a limiter or breaker in
 * the journal (the host's choice). ctx (optional) supplies the record's
 * account, route, venue, config_version, timestamps, payload and
 * payload_digest (its kind, verdict, reason and inputs are ignored). The
 * record's verdict is TG_JOURNAL_VERDICT_ALLOWED or _REJECTED for an acquire
 * or reserve, its reason the TG_*_REASON_*. *ticket (optional)
 * receives the ticket. Returns as tg_journal_append, and TG_EINVAL for a
 * bad handle, key or permit, TG_ERANGE for a key over 1024 bytes.
 * Thread-safe. A replay reproduces the live decisions when each instance's
 * decisions were journaled in the order they were made. Since 0.2.0. */
#define TG_JOURNAL_NO_PARENT UINT32_MAX

/* The limiter's configuration (read from the live limiter, its hash seed
 * included). parent_instance names its parent, or TG_JOURNAL_NO_PARENT. */
TG_API int tg_journal_record_limiter_define(tg_journal* j, uint32_t instance, const tg_limiter* lim,
                                            uint32_t parent_instance, const tg_journal_entry* ctx,
                                            uint64_t* ticket);
/* A tg_limiter_acquire call and its decision. */
TG_API int tg_journal_record_limiter_acquire(tg_journal* j, uint32_t instance, const void* key,
                                             size_t key_len, uint32_t tier, uint32_t cost,
                                             uint64_t now_ns, const tg_limit_decision* d,
                                             const tg_journal_entry* ctx, uint64_t* ticket);
/* A tg_limiter_reserve call, its decision and reservation. */
TG_API int tg_journal_record_limiter_reserve(tg_journal* j, uint32_t instance, const void* key,
                                             size_t key_len, uint32_t tier, uint32_t cost,
                                             uint64_t now_ns, const tg_limit_decision* d,
                                             const tg_reservation* res, const tg_journal_entry* ctx,
                                             uint64_t* ticket);
/* A tg_limiter_cancel call (with the key the reservation was made for). */
TG_API int tg_journal_record_limiter_cancel(tg_journal* j, uint32_t instance, const void* key,
                                            size_t key_len, const tg_reservation* res,
                                            uint64_t now_ns, const tg_journal_entry* ctx,
                                            uint64_t* ticket);
/* tg_limiter_set_multiplier and tg_limiter_set_shadow calls. */
TG_API int tg_journal_record_limiter_multiplier(tg_journal* j, uint32_t instance, double multiplier,
                                                uint64_t now_ns, const tg_journal_entry* ctx,
                                                uint64_t* ticket);
TG_API int tg_journal_record_limiter_shadow(tg_journal* j, uint32_t instance, int on,
                                            const tg_journal_entry* ctx, uint64_t* ticket);
/* The breaker's configuration. */
TG_API int tg_journal_record_breaker_define(tg_journal* j, uint32_t instance, const tg_breaker* b,
                                            const tg_journal_entry* ctx, uint64_t* ticket);
/* A tg_breaker_acquire call and its permit. */
TG_API int tg_journal_record_breaker_acquire(tg_journal* j, uint32_t instance, uint64_t now_ns,
                                             const tg_breaker_permit* permit,
                                             const tg_journal_entry* ctx, uint64_t* ticket);
/* A tg_breaker_record call. */
TG_API int tg_journal_record_breaker_outcome(tg_journal* j, uint32_t instance,
                                             const tg_breaker_permit* permit, int outcome,
                                             uint64_t latency_ns, uint64_t now_ns,
                                             const tg_journal_entry* ctx, uint64_t* ticket);
/* A tg_breaker_transition call (a manual state change). */
TG_API int tg_journal_record_breaker_force(tg_journal* j, uint32_t instance, int state,
                                           uint64_t now_ns, const tg_journal_entry* ctx,
                                           uint64_t* ticket);
/* A transition the breaker announced (call it from the breaker's event
 * callback); a replay checks that the replayed breaker makes it too. */
TG_API int tg_journal_record_breaker_transition(tg_journal* j, uint32_t instance,
                                                const tg_breaker_event* ev,
                                                const tg_journal_entry* ctx, uint64_t* ticket);

/* Reading and verifying. */

/* Since 0.2.0. */
typedef struct tg_journal_read_options {
  uint32_t struct_size;
  uint32_t strict;           /* 1: a torn or unsigned tail is an error */
  const uint8_t* public_key; /* optional, 32 bytes: the manifest must name this key */
} tg_journal_read_options;

/* Fill *opts with defaults and set struct_size. NULL-safe. Since 0.2.0. */
TG_API void tg_journal_read_options_init(tg_journal_read_options* opts);

/* Where and why verification stopped (or a warning). Since 0.2.0. */
typedef struct tg_journal_problem {
  int32_t found; /* 0: no problem; the rest is zero */
  uint32_t reserved;
  uint64_t segment;
  uint64_t offset;   /* byte offset in the file */
  uint64_t sequence; /* the sequence number expected there (0: n/a) */
  char category[32]; /* manifest, directory, header, record, seal, torn_tail, ... */
  char file[64];
  char message[256];
} tg_journal_problem;

typedef struct tg_journal_reader tg_journal_reader;

/* Open a reader over the journal in directory (NUL-terminated). A journal
 * whose manifest fails its checks opens a reader whose first next fails.
 * Returns TG_OK, TG_EINVAL, TG_EVERSION, TG_ENOTFOUND (no such directory
 * or no manifest in it), TG_EIO (unreadable), TG_ESTATE (BoringSSL
 * missing), TG_ENOMEM. Since 0.2.0. */
TG_API int tg_journal_reader_open(const char* directory, const tg_journal_read_options* opts,
                                  tg_journal_reader** out, tg_error* err);

/* NULL is a no-op. Since 0.2.0. */
TG_API void tg_journal_reader_free(tg_journal_reader* r);

#define TG_JOURNAL_RECORD_EVENT 1
#define TG_JOURNAL_RECORD_CHECKPOINT 2

/* One verified record. Pointers are views valid until the next call on the
 * reader. Since 0.2.0. */
typedef struct tg_journal_record {
  uint32_t type; /* TG_JOURNAL_RECORD_* */
  uint16_t kind; /* events */
  uint16_t reserved;
  uint32_t flags;            /* events: 1 payload stored, 2 digest set */
  uint32_t checkpoint_flags; /* checkpoints: 1 seal, 2 close */
  uint64_t sequence;
  uint64_t realtime_ns;
  uint64_t monotonic_ns;
  uint64_t config_version;
  uint32_t route;
  uint32_t venue;
  uint32_t verdict;
  uint32_t reason;
  uint64_t segment; /* where the record is */
  uint64_t offset;
  const char* account;
  size_t account_len;
  const uint8_t* inputs;
  size_t inputs_len;
  const uint8_t* payload; /* when stored */
  size_t payload_len;
  uint8_t prev[32];           /* the chain value before this record */
  uint8_t payload_digest[32]; /* events */
} tg_journal_record;

/* The next verified record: *has = 1 and *out filled, or *has = 0 at the end
 * or at the first record that fails (then tg_journal_reader_problem says
 * what and where). Returns TG_OK or TG_EINVAL. Not thread-safe: one thread
 * per reader. Since 0.2.0. */
TG_API int tg_journal_reader_next(tg_journal_reader* r, tg_journal_record* out, int* has);

/* The error that stopped iteration (out->found = 0 if none), and the
 * warnings so far (torn or unsigned tails). Return TG_OK, TG_EINVAL,
 * TG_ENOTFOUND (index past the warnings). Since 0.2.0. */
TG_API int tg_journal_reader_problem(const tg_journal_reader* r, tg_journal_problem* out);
TG_API int tg_journal_reader_warning_count(const tg_journal_reader* r, size_t* out);
TG_API int tg_journal_reader_warning(const tg_journal_reader* r, size_t index,
                                     tg_journal_problem* out);

/* The record's inputs as a JSON object when they are replay inputs
 * (tg_journal_record_*): written to out[0, cap) with a NUL, its length to
 * *written. Returns TG_OK, TG_ENOTFOUND (not replay inputs: the host's own
 * bytes), TG_ETOOSMALL (*written is the length needed), TG_EINVAL.
 * Thread-safe. Since 0.2.0. */
TG_API int tg_journal_describe_inputs(const uint8_t* inputs, size_t inputs_len, char* out,
                                      size_t cap, size_t* written);

/* The name of an event kind ("decision", "host:0x8001", ...). Same buffer
 * conventions. Since 0.2.0. */
TG_API int tg_journal_kind_name(uint32_t kind, char* out, size_t cap, size_t* written);

/* Since 0.2.0. */
typedef struct tg_journal_verify_report {
  int32_t ok;     /* 1: no error (warnings allowed) */
  int32_t closed; /* 1: the journal ends with a close checkpoint */
  uint64_t segments;
  uint64_t records; /* verified records, checkpoints included */
  uint64_t events;
  uint64_t checkpoints;
  uint64_t bytes;
  uint64_t last_sequence;
  uint64_t first_realtime_ns;
  uint64_t last_realtime_ns;
  uint64_t warning_count;
  uint8_t id[16];
  uint8_t key[32];
  uint8_t head[32];         /* the chain value after the last verified record */
  tg_journal_problem error; /* the first error (found = 0 when ok) */
  tg_journal_problem first_warning;
} tg_journal_verify_report;

/* Verify the whole journal: manifest, headers, CRCs, sequence, chain,
 * checkpoint signatures, seals. Returns TG_OK with the verdict in *out
 * (out->ok) whatever the journal holds; an error code only when it cannot
 * look (TG_EINVAL, TG_EVERSION, TG_ENOTFOUND, TG_EIO, TG_ESTATE,
 * TG_ENOMEM). Thread-safe.
 * Since 0.2.0. */
TG_API int tg_journal_verify(const char* directory, const tg_journal_read_options* opts,
                             tg_journal_verify_report* out, tg_error* err);

#define TG_JOURNAL_COMPONENT_LIMITER 1
#define TG_JOURNAL_COMPONENT_BREAKER 2

/* Since 0.2.0. */
typedef struct tg_journal_replay_report {
  int32_t ok; /* 1: verified, no difference, no issue */
  uint32_t reserved;
  uint64_t records;   /* verified records read */
  uint64_t replayed;  /* records fed through a limiter or breaker */
  uint64_t decisions; /* decisions compared */
  uint64_t transitions;
  uint64_t instances;       /* limiter and breaker definitions */
  uint64_t other;           /* events without replay inputs (skipped) */
  uint64_t mismatches;      /* decisions or transitions that differ */
  uint64_t issues;          /* unusable inputs (malformed, undefined instance) */
  tg_journal_problem error; /* the journal failed verification here */
  /* The first difference (mismatches > 0). */
  uint64_t mismatch_sequence;
  uint64_t mismatch_segment;
  uint64_t mismatch_offset;
  uint32_t mismatch_component; /* TG_JOURNAL_COMPONENT_* */
  uint32_t mismatch_instance;
  char mismatch_recorded[192];
  char mismatch_replayed[192];
  /* The first issue (issues > 0). */
  uint64_t issue_sequence;
  char issue[256];
} tg_journal_replay_report;

/* Replay every recorded limiter and breaker decision of the journal and
 * compare. Returns as tg_journal_verify. Thread-safe. Since 0.2.0. */
TG_API int tg_journal_replay(const char* directory, const tg_journal_read_options* opts,
                             tg_journal_replay_report* out, tg_error* err);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* TOLLGATE_H */
