// The audit journal against spdlog's async logger writing the same records.
//
// audit_enqueue@<impl>: the hot path, one append (tollgate) or one
//   logger->info with the record's fields (spdlog), from 1 and 2 threads,
//   while each one's own background thread writes to a file in $TMPDIR
//   (durability none for tollgate: page cache); every 2048 calls a thread
//   waits, untimed, for the writer to catch up. Besides Google Benchmark's
//   mean, p50 and p99.9 of single calls timed with the TSC (the timer's own
//   cost, measured back to back, subtracted).
// audit_writer_<level>@tollgate: the writer alone, poll mode: 4096 entries
//   are appended (not timed), then poll() drains them to the file (timed),
//   at each durability level. Records/s and bytes/s.
// audit_writer@spdlog_async: 65536 records logged and the logger's thread
//   pool destroyed, which waits until its thread has written them all.
#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <spdlog/async.h>
#include <spdlog/async_logger.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <sys/stat.h>
#include <unistd.h>
#include <x86intrin.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tollgate/journal.hpp"

namespace {

std::string scratch_dir(const std::string& name) {
  const char* base = std::getenv("TMPDIR");
  std::string dir = std::string(base != nullptr && *base != '\0' ? base : "/tmp") +
                    "/tollgate-journal-bench-" + name + "-" + std::to_string(::getpid());
  const std::string cmd = "rm -rf '" + dir + "'";
  if (std::system(cmd.c_str()) != 0) std::abort();
  return dir;
}

void remove_dir(const std::string& dir) {
  const std::string cmd = "rm -rf '" + dir + "'";
  if (std::system(cmd.c_str()) != 0) std::abort();
}

// The record both implementations write: a decision with an 8-byte account
// and 32 bytes of replay inputs.
struct record {
  std::string account = "ACC00042";
  std::uint32_t route = 3, venue = 2, verdict = 1, reason = 4;
  std::uint64_t config_version = 7;
  std::uint8_t inputs[32] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16,
                             17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
};

tollgate::journal_entry entry_of(const record& r) {
  tollgate::journal_entry e;
  e.kind = static_cast<std::uint16_t>(tollgate::event_kind::decision);
  e.account = r.account;
  e.route = r.route;
  e.venue = r.venue;
  e.verdict = r.verdict;
  e.reason = r.reason;
  e.config_version = r.config_version;
  e.inputs = r.inputs;
  e.realtime_ns = 1;  // the same work in both: no clock read in the call
  e.monotonic_ns = 1;
  return e;
}

tollgate::journal_options base_options(const std::string& dir) {
  tollgate::journal_options o;
  o.directory = dir;
  for (std::size_t i = 0; i < o.signing_seed.size(); ++i) {
    o.signing_seed[i] = static_cast<std::uint8_t>(i);
  }
  o.max_segment_bytes = 1ull << 30;
  return o;
}

// TSC ticks per ns, measured once.
double tsc_per_ns() {
  static const double v = [] {
    const auto t0 = std::chrono::steady_clock::now();
    const std::uint64_t c0 = __rdtsc();
    while (std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(50)) {
    }
    const std::uint64_t c1 = __rdtsc();
    const double ns =
        std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
    return static_cast<double>(c1 - c0) / ns;
  }();
  return v;
}

// Percentiles of per-call TSC samples, in ns, timer cost subtracted.
struct latency_samples {
  std::vector<std::uint64_t> ticks;
  latency_samples() { ticks.reserve(1u << 20); }
  void report(benchmark::State& st) {
    if (ticks.empty()) return;
    std::uint64_t overhead = ~0ull;
    for (int i = 0; i < 1000; ++i) {
      const std::uint64_t a = __rdtsc();
      const std::uint64_t b = __rdtsc();
      overhead = std::min(overhead, b - a);
    }
    std::sort(ticks.begin(), ticks.end());
    auto pct = [&](double p) {
      const std::uint64_t t =
          ticks[static_cast<std::size_t>(p * static_cast<double>(ticks.size() - 1))];
      return static_cast<double>(t > overhead ? t - overhead : 0) / tsc_per_ns();
    };
    st.counters["p50_ns"] = benchmark::Counter(pct(0.5), benchmark::Counter::kAvgThreads);
    st.counters["p999_ns"] = benchmark::Counter(pct(0.999), benchmark::Counter::kAvgThreads);
  }
};

// ---- enqueue ----

// Every drain_every calls a thread waits, untimed, until the background
// writer has caught up, so that the figure is the caller's cost and not the
// writer's throughput (a ring that stays full makes append wait for room).
constexpr std::uint64_t drain_every = 2048;

std::unique_ptr<tollgate::journal> shared_journal;
std::string shared_journal_dir;

void enqueue_tollgate(benchmark::State& st) {
  if (st.thread_index() == 0) {
    if (shared_journal) {  // the previous run's
      (void)shared_journal->close();
      shared_journal.reset();
      remove_dir(shared_journal_dir);
    }
    shared_journal_dir = scratch_dir("enqueue");
    auto o = base_options(shared_journal_dir);
    o.mode = tollgate::writer_mode::thread;
    o.level = tollgate::durability::none;
    o.ring_cells = 1u << 16;
    o.on_full = tollgate::ring_full_policy::block;  // backpressure is part of the cost
    auto j = tollgate::journal::open(o);
    if (!j.ok()) std::abort();
    shared_journal = *std::move(j);
  }
  const record r;
  const auto e = entry_of(r);
  latency_samples lat;
  std::uint64_t n = 0;
  std::uint64_t last = 0;
  for (auto _ : st) {
    tollgate::journal* j = shared_journal.get();
    tollgate::append_result res;
    if ((n & 15) == 0 && lat.ticks.size() < lat.ticks.capacity()) {
      const std::uint64_t a = __rdtsc();
      res = j->append(e);
      lat.ticks.push_back(__rdtsc() - a);
    } else {
      res = j->append(e);
    }
    benchmark::DoNotOptimize(res);
    last = res.ticket;
    if ((++n & (drain_every - 1)) == 0) {
      // The producer's cost, not the writer's: let the ring empty, untimed.
      st.PauseTiming();
      while (!j->is_written(last)) std::this_thread::yield();
      st.ResumeTiming();
    }
  }
  st.SetItemsProcessed(st.iterations());
  lat.report(st);
  // The journal is closed when the next run (or the program) starts: other
  // threads may still be in their loop here.
}

std::shared_ptr<spdlog::details::thread_pool> spd_pool;
std::shared_ptr<spdlog::async_logger> spd_logger;
std::string spd_dir;

std::shared_ptr<spdlog::async_logger> make_spdlog(const std::string& dir, std::size_t queue) {
  ::mkdir(dir.c_str(), 0750);
  auto sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(dir + "/spdlog.txt", true);
  spd_pool = std::make_shared<spdlog::details::thread_pool>(queue, 1);
  return std::make_shared<spdlog::async_logger>("audit", sink, spd_pool,
                                                spdlog::async_overflow_policy::block);
}

void log_record(spdlog::async_logger& l, const record& r) {
  l.info("decision account={} route={} venue={} verdict={} reason={} config={} inputs={:02x}",
         r.account, r.route, r.venue, r.verdict, r.reason, r.config_version,
         fmt::join(r.inputs, r.inputs + sizeof r.inputs, ""));
}

void enqueue_spdlog(benchmark::State& st) {
  if (st.thread_index() == 0) {
    if (spd_logger) {
      spd_logger.reset();
      spd_pool.reset();
      remove_dir(spd_dir);
    }
    spd_dir = scratch_dir("spdlog");
    spd_logger = make_spdlog(spd_dir, 1u << 16);
  }
  const record r;
  latency_samples lat;
  std::uint64_t n = 0;
  for (auto _ : st) {
    if ((n & 15) == 0 && lat.ticks.size() < lat.ticks.capacity()) {
      const std::uint64_t a = __rdtsc();
      log_record(*spd_logger, r);
      lat.ticks.push_back(__rdtsc() - a);
    } else {
      log_record(*spd_logger, r);
    }
    if ((++n & (drain_every - 1)) == 0) {
      st.PauseTiming();
      while (spd_pool->queue_size() > 0) std::this_thread::yield();
      st.ResumeTiming();
    }
  }
  st.SetItemsProcessed(st.iterations());
  lat.report(st);
}

// ---- writer throughput ----

// The enqueue runs' journal and logger, closed. Left open, the journal's
// thread keeps polling and the kernel keeps writing back their gigabytes
// of dirty pages while the writer runs: with random interleaving that cost
// writer_none more than half its throughput in some repetitions.
void cleanup() {
  if (shared_journal) {
    (void)shared_journal->close();
    shared_journal.reset();
    remove_dir(shared_journal_dir);
  }
  if (spd_logger) {
    spd_logger.reset();
    spd_pool.reset();
    remove_dir(spd_dir);
  }
}

void writer_tollgate(benchmark::State& st, tollgate::durability level) {
  cleanup();
  const std::string dir = scratch_dir("writer");
  auto o = base_options(dir);
  o.mode = tollgate::writer_mode::poll;
  o.level = level;
  o.sync_every_records = 1024;
  o.sync_every_us = 1000;
  o.ring_cells = 1u << 14;
  o.max_batch_records = 4096;
  auto j = tollgate::journal::open(o);
  if (!j.ok()) std::abort();
  const record r;
  const auto e = entry_of(r);
  constexpr int batch = 4096;
  std::uint64_t bytes0 = (*j)->stats().bytes;
  for (auto _ : st) {
    st.PauseTiming();
    for (int i = 0; i < batch; ++i) {
      if (!(*j)->append(e).ok()) std::abort();
    }
    st.ResumeTiming();
    std::size_t done = 0;
    while (done < static_cast<std::size_t>(batch)) {
      auto n = (*j)->poll();
      if (!n.ok()) std::abort();
      done += *n;
    }
  }
  st.SetItemsProcessed(st.iterations() * batch);
  st.SetBytesProcessed(static_cast<std::int64_t>((*j)->stats().bytes - bytes0));
  st.counters["syncs"] = static_cast<double>((*j)->stats().syncs);
  if (!(*j)->close().ok()) std::abort();
  j->reset();
  remove_dir(dir);
}

void writer_spdlog(benchmark::State& st) {
  cleanup();
  const std::string dir = scratch_dir("spdlog-writer");
  const record r;
  constexpr int batch = 65536;
  for (auto _ : st) {
    auto logger = make_spdlog(dir, 1u << 17);
    for (int i = 0; i < batch; ++i) log_record(*logger, r);
    logger.reset();
    spd_pool.reset();  // joins after its thread has written every record
  }
  st.SetItemsProcessed(st.iterations() * batch);
  remove_dir(dir);
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  for (int threads : {1, 2}) {
    benchmark::RegisterBenchmark("audit_enqueue@tollgate", enqueue_tollgate)
        ->Threads(threads)
        ->UseRealTime();
    benchmark::RegisterBenchmark("audit_enqueue@spdlog_async", enqueue_spdlog)
        ->Threads(threads)
        ->UseRealTime();
  }
  const std::pair<const char*, tollgate::durability> levels[] = {
      {"audit_writer_none@tollgate", tollgate::durability::none},
      {"audit_writer_every_1024_records@tollgate", tollgate::durability::every_n_records},
      {"audit_writer_every_1000_us@tollgate", tollgate::durability::every_t_us},
      {"audit_writer_every_record@tollgate", tollgate::durability::every_record},
  };
  for (const auto& [name, level] : levels) {
    benchmark::RegisterBenchmark(name, [level = level](benchmark::State& st) {
      writer_tollgate(st, level);
    })->UseRealTime();
  }
  benchmark::RegisterBenchmark("audit_writer@spdlog_async", writer_spdlog)->UseRealTime();
  benchmark::RunSpecifiedBenchmarks();
  cleanup();
  benchmark::Shutdown();
  return 0;
}
