// What journaling a decision for replay costs, and how fast a journal
// replays.
//
// record@append: journal::append of a decision whose 40 bytes of inputs the
//   host encoded itself (the baseline: what any journaled decision costs).
// record@limiter_acquire: journal_replay::record_limiter_acquire of the
//   same decision (an 8-byte key): the replay inputs encoded, then appended.
// record@breaker_acquire: record_breaker_acquire of a permit.
//   All three in poll mode at durability none; every 2048 calls the ring is
//   drained, untimed.
// audit@verify, audit@replay: a journal of 200k recorded limiter and
//   breaker decisions (a limiter under a parent, one breaker, outcomes and
//   transitions), verified and replayed whole from the page cache; items
//   are records.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>

#include "tollgate/journal.hpp"
#include "tollgate/journal_reader.hpp"
#include "tollgate/journal_replay.hpp"

namespace {

namespace jr = tollgate::journal_replay;

std::string scratch_dir(const std::string& name) {
  const char* base = std::getenv("TMPDIR");
  std::string dir = std::string(base != nullptr && *base != '\0' ? base : "/tmp") +
                    "/tollgate-replay-bench-" + name + "-" + std::to_string(::getpid());
  const std::string cmd = "rm -rf '" + dir + "'";
  if (std::system(cmd.c_str()) != 0) std::abort();
  return dir;
}

void remove_dir(const std::string& dir) {
  const std::string cmd = "rm -rf '" + dir + "'";
  if (std::system(cmd.c_str()) != 0) std::abort();
}

tollgate::journal_options options(const std::string& dir) {
  tollgate::journal_options o;
  o.directory = dir;
  for (std::size_t i = 0; i < o.signing_seed.size(); ++i) {
    o.signing_seed[i] = static_cast<std::uint8_t>(i + 1);
  }
  o.mode = tollgate::writer_mode::poll;
  o.level = tollgate::durability::none;
  o.ring_cells = 1u << 16;
  return o;
}

void drain(tollgate::journal& j) {
  for (;;) {
    auto n = j.poll();
    if (!n.ok()) std::abort();
    if (*n == 0) return;
  }
}

// Appends with f(journal, i) and reports the time per call.
template <class F>
void run_records(benchmark::State& state, const char* name, F&& f) {
  const std::string dir = scratch_dir(name);
  auto j = tollgate::journal::open(options(dir));
  if (!j.ok()) std::abort();
  std::uint64_t i = 0;
  for (auto _ : state) {
    if (!f(**j, i).ok()) std::abort();
    if ((++i & 2047) == 0) {
      state.PauseTiming();
      drain(**j);
      state.ResumeTiming();
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  if (!(*j)->close().ok()) std::abort();
  remove_dir(dir);
}

void record_append(benchmark::State& state) {
  const std::uint8_t inputs[40] = {0x10, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13};
  run_records(state, "append", [&](tollgate::journal& j, std::uint64_t i) {
    tollgate::journal_entry e;
    e.account = "ACC00042";
    e.verdict = static_cast<std::uint32_t>(i & 1);
    e.inputs = inputs;
    e.realtime_ns = 1;
    e.monotonic_ns = 1;
    return j.append(e);
  });
}

void record_limiter_acquire(benchmark::State& state) {
  tollgate::limit_decision d;
  d.allowed = true;
  d.remaining = 17;
  jr::record_context ctx;
  ctx.account = "ACC00042";
  ctx.realtime_ns = 1;
  ctx.monotonic_ns = 1;
  run_records(state, "limiter", [&](tollgate::journal& j, std::uint64_t i) {
    return jr::record_limiter_acquire(j, 2, "ACC00042", 0, 1, 1'000'000 + i, d, ctx);
  });
}

void record_breaker_acquire(benchmark::State& state) {
  tollgate::permit p;
  p.allowed = true;
  p.token = 77;
  jr::record_context ctx;
  ctx.account = "ACC00042";
  ctx.realtime_ns = 1;
  ctx.monotonic_ns = 1;
  run_records(state, "breaker", [&](tollgate::journal& j, std::uint64_t i) {
    return jr::record_breaker_acquire(j, 10, 1'000'000 + i, p, ctx);
  });
}

// A journal of recorded decisions, written once.
struct recorded_journal {
  std::string dir = scratch_dir("audit");
  std::uint64_t records = 0;

  recorded_journal() {
    auto j = tollgate::journal::open(options(dir));
    if (!j.ok()) std::abort();
    tollgate::limiter_options go;
    go.tiers = {tollgate::tier{"global", 50'000.0, 100}};
    auto global = tollgate::limiter::create(go);
    tollgate::limiter_options ao;
    ao.tiers = {tollgate::tier{"t", 5'000.0, 20}};
    ao.capacity = 4096;
    ao.parent = global->get();
    auto accounts = tollgate::limiter::create(ao);
    tollgate::breaker_options bo;
    bo.window_size = 50;
    bo.minimum_calls = 20;
    bo.open_ns = 5'000'000;
    auto venue = tollgate::breaker::create(bo);
    if (!global.ok() || !accounts.ok() || !venue.ok()) std::abort();
    struct ctx_t {
      tollgate::journal* j;
    } lc{j->get()};
    (*venue)->set_listener(
        [](void* user, const tollgate::breaker_event& ev) {
          if (!jr::record_breaker_transition(*static_cast<ctx_t*>(user)->j, 10, ev).ok()) {
            std::abort();
          }
        },
        &lc);
    tollgate::journal& jn = **j;
    if (!jr::record_limiter_define(jn, 1, **global, jr::no_parent).ok() ||
        !jr::record_limiter_define(jn, 2, **accounts, 1).ok() ||
        !jr::record_breaker_define(jn, 10, **venue).ok()) {
      std::abort();
    }
    std::uint64_t now = 1'000'000'000;
    std::uint32_t rnd = 12345;
    char key[16];
    for (std::uint64_t i = 0; jn.stats().next_sequence < 200'000; ++i) {
      rnd = rnd * 1103515245u + 12345u;
      now += 20'000 + (rnd >> 20);
      const int n = std::snprintf(key, sizeof key, "ACC%05u", (rnd >> 8) % 1000);
      const std::string_view k(key, static_cast<std::size_t>(n));
      const tollgate::limit_decision d = (*accounts)->acquire(k, 0, 1, now);
      if (!jr::record_limiter_acquire(jn, 2, k, 0, 1, now, d).ok()) std::abort();
      if (d.allowed) {
        const tollgate::permit p = (*venue)->acquire(now);
        if (!jr::record_breaker_acquire(jn, 10, now, p).ok()) std::abort();
        if (p.allowed) {
          const bool failing = (i / 20'000) % 4 == 3 && (rnd & 7) < 6;
          const auto o = failing ? tollgate::outcome::failure : tollgate::outcome::success;
          (*venue)->record(p, o, 3'000, now + 3'000);
          if (!jr::record_breaker_outcome(jn, 10, p, o, 3'000, now + 3'000).ok()) std::abort();
        }
      }
      if ((i & 1023) == 0) drain(jn);
    }
    if (!jn.close().ok()) std::abort();
    records = jn.stats().next_sequence - 1;
  }
  ~recorded_journal() { remove_dir(dir); }
};

recorded_journal& audit_journal() {
  static recorded_journal j;
  return j;
}

void audit_verify(benchmark::State& state) {
  recorded_journal& rj = audit_journal();
  for (auto _ : state) {
    auto r = tollgate::verify_journal(rj.dir);
    if (!r.ok() || !r->ok()) std::abort();
    benchmark::DoNotOptimize(r->records);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * rj.records));
}

void audit_replay(benchmark::State& state) {
  recorded_journal& rj = audit_journal();
  std::uint64_t decisions = 0;
  for (auto _ : state) {
    auto r = jr::replay_journal(rj.dir);
    if (!r.ok() || !r->ok()) std::abort();
    decisions = r->decisions;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * rj.records));
  state.counters["decisions"] = static_cast<double>(decisions);
}

BENCHMARK(record_append)->Name("record@append");
BENCHMARK(record_limiter_acquire)->Name("record@limiter_acquire");
BENCHMARK(record_breaker_acquire)->Name("record@breaker_acquire");
BENCHMARK(audit_verify)->Name("audit@verify")->Unit(benchmark::kMillisecond);
BENCHMARK(audit_replay)->Name("audit@replay")->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
