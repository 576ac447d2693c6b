#!/usr/bin/env python3
"""Turns Google Benchmark JSON output and callgrind counts into markdown tables.

    report.py <results-dir> [--readme benchmarks/README.md]

<results-dir> holds limiter.json, breaker.json, capi.json (written with
--benchmark_repetitions and --benchmark_out) and callgrind.tsv (kind, N,
instructions). Cases are named "<operation>@<implementation>"; the
implementation "tollgate" is compared with every other implementation of the
same operation and thread count.

Per decision ns = 1e9 / items_per_second (so batch calls are per decision
too). "median" is the median over repetitions of each side; "pairs" is the
median over repetitions i of baseline_i / tollgate_i (repetitions are
interleaved at random with --benchmark_enable_random_interleaving).

With --readme, the text between the markers <!-- results:begin --> and
<!-- results:end --> in that file is replaced by the tables.
"""
import json
import os
import re
import statistics
import subprocess
import sys

OPERATIONS = {
    "limiter/one_key/admit": "limiter decision, 1 key, admit path",
    "limiter/one_key/reject": "limiter decision, 1 key, reject path",
    "limiter/1M_keys/uniform": "limiter decision, 1M keys, uniform",
    "limiter/1M_keys/zipf": "limiter decision, 1M keys, Zipf s=1.1",
    "breaker/closed/acquire_record": "breaker acquire + record, closed",
    "breaker/open/acquire": "breaker acquire, open (rejection)",
    "breaker/bulkhead/acquire_record": "breaker acquire + record, closed, bulkhead",
    "capi/limiter_acquire/one_key": "C ABI `tg_limiter_acquire`, 1 key",
    "capi/limiter_acquire_many/one_key": "C ABI `tg_limiter_acquire_many` x1000, 1 key, per decision",
    "capi/limiter_acquire_many/1M_uniform":
        "C ABI `tg_limiter_acquire_many` x1000, 1M keys uniform, per decision",
    "capi/breaker_acquire_record/single": "C ABI `tg_breaker_acquire` + `tg_breaker_record`",
    "capi/breaker_acquire_record_many":
        "C ABI `tg_breaker_acquire_many` + `_record_many` x1000, per decision",
    "router/match/10/static": "route match, 10 routes, static paths",
    "router/match/10/param": "route match, 10 routes, parametric paths",
    "router/match/10/escaped": "route match, 10 routes, paths with %XX, // and .",
    "router/match/200/static": "route match, 200 routes, static paths",
    "router/match/200/param": "route match, 200 routes, parametric paths",
    "router/match/200/escaped": "route match, 200 routes, paths with %XX, // and .",
    "router/match/5000/static": "route match, 5000 routes, static paths",
    "router/match/5000/param": "route match, 5000 routes, parametric paths",
    "router/match/5000/escaped": "route match, 5000 routes, paths with %XX, // and .",
    "router/rcu_match/10/param": "route match through the RCU router, 10 routes",
    "router/rcu_match/200/param": "route match through the RCU router, 200 routes",
    "router/rcu_match/5000/param": "route match through the RCU router, 5000 routes",
    "venue/pick/8/weighted": "venue pick among 8, weighted",
    "venue/pick/8/least_latency": "venue pick among 8, least latency (p2c)",
    "venue/pick/8/sticky": "venue pick among 8, sticky (rendezvous)",
    "price_cache/get/hit": "price cache hit (price, age check, 32-byte payload copied)",
    "price_cache/on_price/kept": "price update within the threshold",
    "price_cache/mixed/1w1r": "1 writer (ticks) + 1 reader (hits), per operation of the pair",
    "risk/check/stateless": "risk check: kill switches, fields, quantity, reference price, collar, notional",
    "risk/check/full": "risk check: the above + duplicate id + account notional and count per period",
    "risk/mixed/1w1r": "1 feed (ticks) + 1 checker (full checks), per operation of the pair",
    "auth/verify/256B": "verify a request, 256-byte canonical form (parse, skew, key, MAC, nonce)",
    "auth/verify/256B_cold": "verify, as above, 65536 distinct requests (headers and nonce slots from memory)",
    "auth/sign/256B": "sign a request, 256-byte canonical form",
}

BASELINES = {
    "mutex_bucket": "std::mutex token bucket (C++)",
    "cas_floor": "bare GCRA CAS step on one atomic (floor)",
    "cas_floor_table": "bare GCRA CAS on a 32 MiB table, no key check (floor)",
    "mutex_map": "absl::flat_hash_map + one std::mutex (C++)",
    "mutex_breaker": "std::mutex count-window breaker (C++)",
    "cxx_core": "tollgate C++ core, direct call (no ABI)",
    "capi_single": "C ABI, one call per decision",
    "r3": "r3 (libr3 C router, no captures)",
    "mutex_model": "the same rules over absl::flat_hash_maps + one std::mutex (C++)",
    "rehash_hmac": "canonical string + BoringSSL one-shot HMAC (key rehashed per call)",
}

CALLGRIND_PAIRS = [
    ("limiter_one_key", "limiter acquire, 1 key, admit", ["mutex_bucket", "cas_floor"]),
    ("limiter_one_key_reject", "limiter acquire, 1 key, reject", []),
    ("limiter_1m_uniform", "limiter acquire, 1M keys uniform", ["mutex_map_1m_uniform"]),
    ("breaker_closed", "breaker acquire + record, closed", ["mutex_breaker"]),
    ("breaker_bulkhead", "breaker acquire + record, bulkhead", ["mutex_breaker_bulkhead"]),
    ("capi_limiter", "C ABI tg_limiter_acquire, 1 key", ["limiter_one_key"]),
    ("capi_breaker", "C ABI tg_breaker_acquire + record", ["breaker_closed"]),
    ("route_200_param", "route match, 200 routes, parametric", ["r3_200_param"]),
    ("route_200_static", "route match, 200 routes, static", ["r3_200_static"]),
    ("price_get", "price cache get, hit", ["mutex_price_get"]),
    ("price_tick", "price cache tick, kept", []),
    ("risk_stateless", "risk check, stateless rules", ["mutex_risk_stateless"]),
    ("risk_full", "risk check, full (duplicates, account period)", ["mutex_risk_full"]),
]

CALLGRIND_LABELS = {
    "mutex_bucket": "std::mutex token bucket",
    "cas_floor": "bare CAS step (floor)",
    "mutex_map_1m_uniform": "flat_hash_map + std::mutex",
    "mutex_breaker": "std::mutex breaker",
    "mutex_breaker_bulkhead": "std::mutex breaker + bulkhead",
    "limiter_one_key": "C++ core call",
    "breaker_closed": "C++ core call",
    "r3_200_param": "r3",
    "r3_200_static": "r3",
    "mutex_price_get": "flat_hash_map + std::mutex",
    "mutex_risk_stateless": "std::mutex + flat_hash_maps",
    "mutex_risk_full": "std::mutex + flat_hash_maps",
}


def per_decision_ns(entry):
    ips = entry.get("items_per_second")
    return 1e9 / ips if ips else float("nan")


def split_name(run_name):
    """'limiter/one_key/admit@tollgate/threads:2/real_time' ->
    ('limiter/one_key/admit', 'tollgate', 2)."""
    op, rest = run_name.split("@", 1)
    impl = rest.split("/", 1)[0]
    m = re.search(r"threads:(\d+)", rest)
    return op, impl, int(m.group(1)) if m else 1


def load(results_dir):
    medians = {}  # (op, threads) -> {impl: entry}
    reps = {}  # (op, threads) -> {impl: {rep index: ns}}
    for part in ("limiter", "breaker", "capi", "router", "price_cache", "risk", "auth"):
        path = os.path.join(results_dir, part + ".json")
        if not os.path.exists(path):
            continue
        with open(path) as f:
            data = json.load(f)
        for b in data["benchmarks"]:
            op, impl, threads = split_name(b["run_name"])
            key = (op, threads)
            if b.get("run_type") == "aggregate":
                if b.get("aggregate_name") == "median":
                    medians.setdefault(key, {})[impl] = b
            else:
                reps.setdefault(key, {}).setdefault(impl, {})[b.get("repetition_index", 0)] = (
                    per_decision_ns(b))
    return medians, reps


def fmt_ns(v):
    return "%.1f" % v if v < 100 else "%.0f" % v


def fmt_ratio(v):
    return "%.2fx" % v


def thread_label(threads):
    return "1 thread" if threads == 1 else "%d threads" % threads


def comparison_table(medians, reps, prefix):
    rows = [
        "| operation | tollgate ns | baseline | baseline ns | ratio (baseline / tollgate) "
        "| ratio, median of pairs (min-max) |",
        "|---|---|---|---|---|---|",
    ]
    order = list(OPERATIONS)
    keys = sorted((k for k in medians if k[0].startswith(prefix)),
                  key=lambda k: (order.index(k[0]) if k[0] in order else 99, k[1]))
    for key in keys:
        impls = medians[key]
        if "tollgate" not in impls:
            continue
        op, threads = key
        t_ns = per_decision_ns(impls["tollgate"])
        label = "%s, %s" % (OPERATIONS.get(op, op), thread_label(threads))
        if len(impls) == 1:
            rows.append("| %s | %s | (no peer for this case) | | | |" % (label, fmt_ns(t_ns)))
        for impl in sorted(i for i in impls if i != "tollgate"):
            b_ns = per_decision_ns(impls[impl])
            t_reps = reps.get(key, {}).get("tollgate", {})
            b_reps = reps.get(key, {}).get(impl, {})
            pairs = [b_reps[i] / t_reps[i] for i in t_reps if i in b_reps]
            pair = ("%s (%.2f-%.2f)" % (fmt_ratio(statistics.median(pairs)), min(pairs), max(pairs))
                    if pairs else "n/a")
            rows.append("| %s | %s | %s | %s | %s | %s |" % (
                label, fmt_ns(t_ns), BASELINES.get(impl, impl), fmt_ns(b_ns),
                fmt_ratio(b_ns / t_ns), pair))
    return "\n".join(rows)


def counters_table(medians):
    rows = ["| case | ns per decision | admitted share | bytes per key | keys in table "
            "| evictions per decision |", "|---|---|---|---|---|---|"]
    order = list(OPERATIONS)
    for key in sorted(medians, key=lambda k: (order.index(k[0]) if k[0] in order else 99, k[1])):
        for impl, e in sorted(medians[key].items()):
            def c(name, f="%.3g"):
                return f % e[name] if name in e else ""
            rows.append("| `%s@%s` %s | %s | %s | %s | %s | %s |" % (
                key[0], impl, thread_label(key[1]), fmt_ns(per_decision_ns(e)), c("admitted"),
                c("bytes_per_key", "%.1f"), c("keys_in_table", "%.0f"),
                c("evictions_per_decision")))
    return "\n".join(rows)


# Functions whose calls on the hot path we count from the callgrind profiles.
HOT_PATH_CALLS = {
    "allocations": re.compile(r"^(malloc|calloc|realloc|_?_?memalign|_mid_memalign|aligned_alloc|"
                              r"posix_memalign)$"),
    "mutex locks": re.compile(r"^_*pthread_mutex_(lock|trylock)$"),
    "futex waits": re.compile(r"^(__lll_lock_wait|futex_wait|__futex_abstimed_wait\w*)$"),
    "__tls_get_addr": re.compile(r"^__tls_get_addr$"),
}


def call_counts(profile):
    """Calls per function in a callgrind profile: sum of the caller counts."""
    try:
        text = subprocess.run(["callgrind_annotate", "--tree=caller", "--threshold=100", profile],
                              capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    counts, pending = {}, 0
    for line in text.splitlines():
        if " < " in line:
            m = re.search(r"\(([\d,]+)x\)", line)
            if m:
                pending += int(m.group(1).replace(",", ""))
        elif " * " in line:
            name = line.split(" * ", 1)[1].strip()
            name = re.sub(r" \[[^\]]*\]$", "", name)
            name = name.split(":", 1)[1] if ":" in name else name
            name = name.split("@", 1)[0]  # symbol versions: pthread_mutex_lock@@GLIBC_2.2.5
            counts[name] = counts.get(name, 0) + pending
            pending = 0
        elif not line.strip():
            pending = 0
    return counts


def hot_path_table(results_dir, n_by_kind):
    rows = ["| driver kind | " + " | ".join("%s / decision" % k for k in HOT_PATH_CALLS) + " |",
            "|---|" + "---|" * len(HOT_PATH_CALLS)]
    for kind, n in n_by_kind.items():
        big = call_counts(os.path.join(results_dir, "callgrind.%s.%d.out" % (kind, n)))
        small = call_counts(os.path.join(results_dir, "callgrind.%s.0.out" % kind))
        if big is None or small is None:
            continue
        cells = []
        for pattern in HOT_PATH_CALLS.values():
            def total(c):
                return sum(v for f, v in c.items() if pattern.match(f))
            cells.append("%.2f" % ((total(big) - total(small)) / n))
        rows.append("| `%s` | %s |" % (kind, " | ".join(cells)))
    return "\n".join(rows)


def callgrind_table(results_dir):
    path = os.path.join(results_dir, "callgrind.tsv")
    if not os.path.exists(path):
        return "(no callgrind results)"
    runs = {}
    with open(path) as f:
        for line in f:
            kind, n, ir = line.split()
            runs.setdefault(kind, {})[int(n)] = int(ir)

    def per(kind):
        r = runs.get(kind, {})
        big = max((n for n in r if n > 0), default=None)
        if big is None or 0 not in r:
            return None
        return (r[big] - r[0]) / big

    rows = ["| operation | tollgate instr/decision | baseline | baseline instr/decision "
            "| ratio (baseline / tollgate) |", "|---|---|---|---|---|"]
    for kind, label, baselines in CALLGRIND_PAIRS:
        t = per(kind)
        if t is None:
            continue
        if not baselines:
            rows.append("| %s | %.1f | | | |" % (label, t))
        for b in baselines:
            v = per(b)
            if v is None:
                continue
            rows.append("| %s | %.1f | %s | %.1f | %s |" % (
                label, t, CALLGRIND_LABELS.get(b, b), v, fmt_ratio(v / t)))
    n_by_kind = {k: max(n for n in r if n > 0) for k, r in runs.items() if any(n > 0 for n in r)}
    return ("\n".join(rows) + "\n\nCalls made on the hot path (N run minus N = 0 run, per "
            "decision; allocations and locks of construction cancel out):\n\n"
            + hot_path_table(results_dir, n_by_kind))


def timing_text(results_dir):
    """The Welch t-test table of auth_timing, as printed."""
    path = os.path.join(results_dir, "auth_timing.txt")
    if not os.path.exists(path):
        return "(no timing-leakage results)"
    with open(path) as f:
        return "```\n" + f.read().rstrip("\n") + "\n```"


def main():
    args = sys.argv[1:]
    readme = None
    if "--readme" in args:
        i = args.index("--readme")
        readme = args[i + 1]
        del args[i:i + 2]
    if len(args) != 1:
        sys.exit(__doc__)
    results_dir = args[0]
    medians, reps = load(results_dir)
    env = ""
    env_path = os.path.join(results_dir, "environment.txt")
    if os.path.exists(env_path):
        with open(env_path) as f:
            env = "".join("- " + line for line in f if line.strip())
    text = "\n\n".join([env.rstrip("\n"),
        "### Limiter\n\n" + comparison_table(medians, reps, "limiter/"),
        "### Breaker\n\n" + comparison_table(medians, reps, "breaker/"),
        "### C ABI\n\n" + comparison_table(medians, reps, "capi/"),
        "### Router and venue selection\n\n" + comparison_table(medians, reps, "router/")
        + "\n" + "\n".join(comparison_table(medians, reps, "venue/").split("\n")[2:]),
        "### Price cache\n\n" + comparison_table(medians, reps, "price_cache/"),
        "### Risk checks\n\n" + comparison_table(medians, reps, "risk/"),
        "### Request authentication\n\n" + comparison_table(medians, reps, "auth/")
        + "\n\n" + timing_text(results_dir),
        "### Instructions per decision (callgrind, N = 1e6 minus N = 0)\n\n"
        + callgrind_table(results_dir),
        "### Counters (medians)\n\n" + counters_table(medians),
    ])
    print(text)
    if readme:
        with open(readme) as f:
            doc = f.read()
        begin, end = "<!-- results:begin -->", "<!-- results:end -->"
        if begin not in doc or end not in doc:
            sys.exit("%s has no %s ... %s markers" % (readme, begin, end))
        head, rest = doc.split(begin, 1)
        _, tail = rest.split(end, 1)
        with open(readme, "w") as f:
            f.write(head + begin + "\n" + text + "\n" + end + tail)


if __name__ == "__main__":
    main()
