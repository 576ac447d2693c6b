// close() racing appends from several threads. Every append must either
// return failed or get a ticket that close() writes: after close, every ok
// ticket is <= written_ticket, and the journal reopens and verifies with
// exactly as many host records as appends returned ok. Both ring-full
// policies that keep an appender in append() while close runs: block (it
// spins for room that close's drain makes) and reject (it retries).
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "tollgate/journal.hpp"
#include "tollgate/journal_reader.hpp"
#include "util.hpp"

using namespace tollgate;
namespace jf = tollgate::journal_format;

namespace {

struct producer_result {
  std::uint64_t ok = 0;
  std::uint64_t max_ticket = 0;
  std::uint64_t other = 0;  // a status that is neither ok, failed nor rejected
};

void race_round(const std::string& dir, writer_mode mode, ring_full_policy policy, int round) {
  auto o = jt::options(dir);
  o.mode = mode;
  o.level = durability::none;
  o.ring_cells = 64;  // small: appenders wait for room while close drains
  o.max_entry_bytes = 256;
  o.on_full = policy;
  o.idle_sleep_us = 5;
  auto opened = journal::open(o);
  INFO(opened.status());
  REQUIRE(opened.ok());
  journal& j = **opened;

  constexpr int producers = 4;
  std::vector<producer_result> results(producers);
  std::atomic<int> started{0};
  std::atomic<bool> stop_polling{false};
  std::vector<std::thread> ts;
  for (int t = 0; t < producers; ++t) {
    ts.emplace_back([&, t] {
      producer_result& res = results[static_cast<std::size_t>(t)];
      // Not "T" + to_string(t): GCC 12 at -O3 warns (-Wrestrict) on that
      // operator+ inlined here, a known false positive.
      std::string account(1, 'T');
      account += std::to_string(t);
      started.fetch_add(1);
      for (std::uint64_t i = 1;; ++i) {
        const auto in = jt::u64s({(static_cast<std::uint64_t>(t) << 32) | i});
        journal_entry e;
        e.kind = static_cast<std::uint16_t>(event_kind::decision);
        e.account = account;
        e.inputs = in;
        const auto r = j.append(e);
        if (r.ok()) {
          ++res.ok;
          if (r.ticket > res.max_ticket) res.max_ticket = r.ticket;
        } else if (r.status == append_status::failed) {
          return;
        } else if (r.status != append_status::rejected) {
          ++res.other;
          return;
        }
      }
    });
  }
  // In poll mode a host thread polls until close; poll after close fails.
  std::thread poller;
  if (mode == writer_mode::poll) {
    poller = std::thread([&] {
      while (!stop_polling.load()) {
        if (!j.poll().ok()) return;
      }
    });
  }
  while (started.load() < producers) std::this_thread::yield();
  std::this_thread::sleep_for(std::chrono::microseconds(200 + 37 * (round % 16)));
  const absl::Status closed = j.close();
  stop_polling.store(true);
  for (auto& t : ts) t.join();
  if (poller.joinable()) poller.join();

  INFO("round " << round << ": " << closed);
  REQUIRE(closed.ok());
  const journal_stats st = j.stats();
  std::uint64_t oks = 0;
  for (const auto& r : results) {
    CHECK(r.other == 0);
    CHECK(r.max_ticket <= st.written_ticket);  // every ok ticket was written
    oks += r.ok;
  }
  CHECK(st.written == oks);
  CHECK(j.append(journal_entry{}).status == append_status::failed);

  auto again = journal::open(jt::options(dir));
  INFO(again.status());
  REQUIRE(again.ok());
  REQUIRE((*again)->close().ok());
  journal_verify_report rep;
  const auto recs = jt::records(dir, &rep);
  REQUIRE(rep.clean());
  std::uint64_t host = 0;
  for (const auto& r : recs) {
    if (r.type == jf::record_type::event && r.kind == 1) ++host;
  }
  CHECK(host == oks);
}

}  // namespace

TEST_CASE("close race: appends racing close() are written or fail", "[journal][concurrency]") {
  jt::temp_dir d;
  int round = 0;
  for (auto mode : {writer_mode::thread, writer_mode::poll}) {
    for (auto policy : {ring_full_policy::block, ring_full_policy::reject}) {
      for (int i = 0; i < 12; ++i, ++round) {
        race_round(d.sub(std::to_string(round)), mode, policy, round);
      }
    }
  }
}

TEST_CASE("close race: wait_durable during close() waits for close to sync the ticket",
          "[journal][concurrency]") {
  // durability none: nothing is durable until close() seals and syncs, so
  // a waiter that gives up when it sees close begin reports a ticket that
  // close is about to make durable as never durable.
  jt::temp_dir d;
  for (auto mode : {writer_mode::thread, writer_mode::poll}) {
    auto o = jt::options(d.sub(mode == writer_mode::thread ? "t" : "p"));
    o.mode = mode;
    o.level = durability::none;
    auto opened = journal::open(o);
    REQUIRE(opened.ok());
    journal& j = **opened;
    journal_entry e;
    e.account = "ACC";
    const auto r = j.append(e);
    REQUIRE(r.ok());
    std::atomic<bool> waiting{false};
    absl::Status waited;
    std::thread waiter([&] {
      waiting.store(true);
      waited = j.wait_durable(r.ticket, 10'000'000);
    });
    while (!waiting.load()) std::this_thread::yield();
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    REQUIRE(j.close().ok());
    waiter.join();
    INFO(waited);
    CHECK(waited.ok());
    CHECK(j.is_durable(r.ticket));
    // After close, a ticket it did not make durable is answered at once.
    CHECK(absl::IsFailedPrecondition(j.wait_durable(r.ticket + 1000, 10'000'000)));
  }
}
