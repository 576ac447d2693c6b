// The journal writer with real files and real fsync: round trips, tickets
// and durability levels, ring-full policies, checkpoints, rotation, reopen.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "tollgate/journal.hpp"
#include "tollgate/journal_reader.hpp"
#include "util.hpp"

using namespace tollgate;
namespace jf = tollgate::journal_format;

namespace {

journal_entry entry(const std::string& account, const std::vector<std::uint8_t>& inputs) {
  journal_entry e;
  e.kind = static_cast<std::uint16_t>(event_kind::decision);
  e.account = account;
  e.inputs = inputs;
  return e;
}

std::unique_ptr<journal> open_ok(const journal_options& o) {
  auto j = journal::open(o);
  INFO(j.status());
  REQUIRE(j.ok());
  return *std::move(j);
}

}  // namespace

TEST_CASE("journal: every field round-trips and the journal verifies clean", "[journal]") {
  jt::temp_dir d;
  auto o = jt::options(d.sub("j"));
  auto j = open_ok(o);
  CHECK(j->recovery().created);
  const std::string payload = "8=FIX.4.4|35=D|55=XYZ|38=100|";
  const auto inputs = jt::u64s({7, 8, 9});
  std::uint8_t given_digest[32];
  for (int i = 0; i < 32; ++i) given_digest[i] = static_cast<std::uint8_t>(i);
  std::vector<std::uint64_t> tickets;
  for (int i = 0; i < 4; ++i) {
    journal_entry e;
    e.kind = static_cast<std::uint16_t>(i == 3 ? 0x8001 : i + 1);
    e.realtime_ns = 1'700'000'000'000'000'000ull + static_cast<std::uint64_t>(i);
    e.monotonic_ns = 1000 + static_cast<std::uint64_t>(i);
    const std::string account = i == 0 ? "" : "ACC-" + std::to_string(i);
    e.account = account;
    e.route = 10u + static_cast<std::uint32_t>(i);
    e.venue = 20u + static_cast<std::uint32_t>(i);
    e.verdict = static_cast<std::uint32_t>(i % 2);
    e.reason = 30u + static_cast<std::uint32_t>(i);
    e.config_version = 40u + static_cast<std::uint64_t>(i);
    e.inputs = inputs;
    if (i == 1) e.payload = {reinterpret_cast<const std::uint8_t*>(payload.data()), payload.size()};
    if (i == 2) {
      e.payload = {reinterpret_cast<const std::uint8_t*>(payload.data()), payload.size()};
      e.store_payload = true;
    }
    if (i == 3) e.payload_digest = given_digest;
    const auto r = j->append(e);
    REQUIRE(r.ok());
    tickets.push_back(r.ticket);
  }
  for (std::size_t i = 1; i < tickets.size(); ++i) CHECK(tickets[i] > tickets[i - 1]);
  CHECK(!j->is_written(tickets.back()));
  auto n = j->poll();
  REQUIRE(n.ok());
  CHECK(*n == 4);
  CHECK(j->is_written(tickets.back()));
  CHECK(j->is_durable(tickets.back()));
  REQUIRE(j->close().ok());

  std::vector<jf::record_view> seen;
  std::vector<std::vector<std::uint8_t>> bodies;
  journal_verify_options vo;
  vo.on_record = [&](const jf::record_view& v, const journal_record_location&) {
    if (v.type == jf::record_type::event) {
      bodies.emplace_back(v.body.begin(), v.body.end());
    }
  };
  auto rep = verify_journal(o.directory, vo);
  REQUIRE(rep.ok());
  CHECK(rep->clean());
  CHECK(rep->closed);
  CHECK(rep->events == 4);
  REQUIRE(bodies.size() == 4);
  std::uint8_t payload_digest[32];
  crypto::sha256(payload.data(), payload.size(), payload_digest);
  for (std::size_t i = 0; i < 4; ++i) {
    jf::record_view v;
    std::string why;
    REQUIRE(jf::decode_body(bodies[i], &v, &why));
    CHECK(v.seq == i + 1);
    CHECK(v.kind == (i == 3 ? 0x8001 : i + 1));
    CHECK(v.realtime_ns == 1'700'000'000'000'000'000ull + i);
    CHECK(v.monotonic_ns == 1000 + i);
    CHECK(v.account == (i == 0 ? "" : "ACC-" + std::to_string(i)));
    CHECK(v.route == 10 + i);
    CHECK(v.venue == 20 + i);
    CHECK(v.verdict == i % 2);
    CHECK(v.reason == 30 + i);
    CHECK(v.config_version == 40 + i);
    REQUIRE(v.inputs.size() == 24);
    CHECK(jf::get64(v.inputs.data() + 16) == 9);
    if (i == 0) CHECK((v.flags & jf::event_digest_set) == 0);
    if (i == 1 || i == 2) {
      CHECK(std::equal(v.payload_digest.begin(), v.payload_digest.end(), payload_digest));
    }
    CHECK(v.payload.size() == (i == 2 ? payload.size() : 0));
    if (i == 3) CHECK(std::equal(v.payload_digest.begin(), v.payload_digest.end(), given_digest));
  }
}

TEST_CASE("journal: the writer's frames are the format encoders' byte for byte", "[journal]") {
  // The writer encodes records itself (straight from the ring, CRC in one
  // pass); every frame it wrote must carry the appended fields and equal
  // what journal_format's encoders make of them. Body lengths of every
  // residue mod 8 (the CRC tail), all payload forms, entries wrapping the
  // end of a small ring, checkpoints and seals.
  jt::temp_dir d;
  auto o = jt::options(d.sub("j"));
  o.ring_cells = 64;
  o.checkpoint_every_records = 7;
  o.max_segment_bytes = 16 << 10;
  auto j = open_ok(o);
  const std::string payload_text(300, 'p');
  const std::span<const std::uint8_t> payload(
      reinterpret_cast<const std::uint8_t*>(payload_text.data()), payload_text.size());
  std::uint8_t given_digest[32];
  for (int i = 0; i < 32; ++i) given_digest[i] = static_cast<std::uint8_t>(0xA0 + i);
  std::vector<std::uint8_t> inputs(200);
  for (std::size_t i = 0; i < inputs.size(); ++i) inputs[i] = static_cast<std::uint8_t>(i * 7);
  struct appended_entry {
    journal_entry e;
    std::string account;
  };
  std::vector<appended_entry> appended;
  appended.reserve(160);
  for (int i = 0; i < 160; ++i) {
    journal_entry e;
    e.kind = static_cast<std::uint16_t>(i % 5 == 4 ? 0x8000 + i : 1 + i % 6);
    e.realtime_ns = 0x1122334455667788ull + static_cast<std::uint64_t>(i);
    e.monotonic_ns = 0x0102030405060708ull * static_cast<std::uint64_t>(i + 1);
    const std::string account(static_cast<std::size_t>(i % 19), static_cast<char>('a' + i % 26));
    e.account = account;
    e.route = 0xA0000000u + static_cast<std::uint32_t>(i);
    e.venue = 0x0B000000u + static_cast<std::uint32_t>(i);
    e.verdict = static_cast<std::uint32_t>(i % 2);
    e.reason = 0xC00u + static_cast<std::uint32_t>(i);
    e.config_version = 0xDEADBEEF00000000ull + static_cast<std::uint64_t>(i);
    e.inputs = std::span<const std::uint8_t>(inputs).first(static_cast<std::size_t>(i * 3 % 41));
    switch (i % 4) {
      case 1:  // digested by the writer
        e.payload = payload.first(static_cast<std::size_t>(1 + i % 200));
        break;
      case 2:  // digested and stored
        e.payload = payload.first(static_cast<std::size_t>(1 + i % 300));
        e.store_payload = true;
        break;
      case 3:  // digest given
        e.payload_digest = given_digest;
        break;
      default:
        break;
    }
    REQUIRE(j->append(e).ok());
    appended.push_back({e, account});
    appended.back().e.account = {};  // the copy above is the one to compare with
    if (i % 3 == 2) REQUIRE(j->poll().ok());
  }
  REQUIRE(j->close().ok());

  journal_verify_report rep;
  const auto recs = jt::records(o.directory, &rep);
  REQUIRE(rep.clean());
  CHECK(rep.segments > 1);
  std::map<std::uint64_t, std::vector<std::uint8_t>> files;
  std::size_t events = 0;
  int checkpoints = 0;
  for (const auto& r : recs) {
    auto& file = files[r.segment];
    if (file.empty()) file = jt::read_bytes(o.directory + "/" + jf::segment_file_name(r.segment));
    REQUIRE(r.offset + r.frame_size <= file.size());
    const std::span<const std::uint8_t> written(file.data() + r.offset, r.frame_size);
    jf::record_view v;
    REQUIRE(jf::decode_frame(written, &v) == jf::frame_status::ok);
    std::vector<std::uint8_t> expect(r.frame_size);
    if (v.type == jf::record_type::event) {
      jf::event_fields f;
      f.kind = v.kind;
      f.flags = v.flags;
      f.seq = v.seq;
      f.realtime_ns = v.realtime_ns;
      f.monotonic_ns = v.monotonic_ns;
      f.prev = v.prev;
      f.config_version = v.config_version;
      f.route = v.route;
      f.venue = v.venue;
      f.verdict = v.verdict;
      f.reason = v.reason;
      f.payload_digest = v.payload_digest;
      f.account = v.account;
      f.inputs = v.inputs;
      f.payload = v.payload;
      jf::encode_event_body(f, expect.data() + jf::frame_prefix_size);
      // ... and those are the fields appended.
      REQUIRE(events < appended.size());
      const journal_entry& a = appended[events].e;
      CHECK(v.kind == a.kind);
      CHECK(v.realtime_ns == a.realtime_ns);
      CHECK(v.monotonic_ns == a.monotonic_ns);
      CHECK(v.account == appended[events].account);
      CHECK(v.route == a.route);
      CHECK(v.venue == a.venue);
      CHECK(v.verdict == a.verdict);
      CHECK(v.reason == a.reason);
      CHECK(v.config_version == a.config_version);
      CHECK(std::equal(v.inputs.begin(), v.inputs.end(), a.inputs.begin(), a.inputs.end()));
      jf::hash digest{};
      if (a.payload_digest != nullptr) std::memcpy(digest.data(), a.payload_digest, 32);
      if (!a.payload.empty()) crypto::sha256(a.payload.data(), a.payload.size(), digest.data());
      CHECK(v.payload_digest == digest);
      CHECK(v.flags ==
            ((a.payload_digest != nullptr || !a.payload.empty() ? jf::event_digest_set : 0u) |
             (a.store_payload ? jf::event_payload_stored : 0u)));
      const auto stored = a.store_payload ? a.payload : std::span<const std::uint8_t>();
      CHECK(std::equal(v.payload.begin(), v.payload.end(), stored.begin(), stored.end()));
      ++events;
    } else {
      jf::encode_checkpoint_body(v.seq, v.realtime_ns, v.monotonic_ns, v.prev, v.checkpoint_flags,
                                 v.sig, expect.data() + jf::frame_prefix_size);
      ++checkpoints;
    }
    jf::seal_frame(expect.data(), static_cast<std::uint32_t>(r.frame_size - jf::frame_prefix_size));
    INFO("segment " << r.segment << " offset " << r.offset << " seq " << v.seq);
    REQUIRE(std::equal(expect.begin(), expect.end(), written.begin(), written.end()));
  }
  CHECK(events == appended.size());
  CHECK(checkpoints > 20);
}

TEST_CASE("journal: bad entries and a closed journal are refused with a reason", "[journal]") {
  jt::temp_dir d;
  auto o = jt::options(d.sub("j"));
  auto j = open_ok(o);
  journal_entry e;
  e.kind = static_cast<std::uint16_t>(event_kind::records_dropped);  // the journal's own
  CHECK(j->append(e).status == append_status::invalid);
  e.kind = 0;
  CHECK(j->append(e).status == append_status::invalid);
  e.kind = 7;  // reserved
  CHECK(j->append(e).status == append_status::invalid);
  e.kind = 1;
  const std::string long_account(256, 'a');
  e.account = long_account;
  CHECK(j->append(e).status == append_status::too_large);
  e.account = "a";
  std::vector<std::uint8_t> big(o.max_entry_bytes);
  e.inputs = big;
  CHECK(j->append(e).status == append_status::too_large);
  big.resize(o.max_entry_bytes - 1);
  e.inputs = big;
  CHECK(j->append(e).ok());
  REQUIRE(j->close().ok());
  CHECK(j->append(e).status == append_status::failed);
  CHECK(j->close().ok());  // idempotent

  o.ring_cells = 100;
  CHECK(journal::open(o).status().code() == absl::StatusCode::kInvalidArgument);
  o.ring_cells = 64;
  o.max_entry_bytes = 4096;  // cannot fit twice
  CHECK(journal::open(o).status().code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("journal: reopening continues the sequence and the chain in a new segment", "[journal]") {
  jt::temp_dir d;
  auto o = jt::options(d.sub("j"));
  std::uint64_t marker = 0;
  for (int session = 0; session < 3; ++session) {
    auto j = open_ok(o);
    CHECK(j->recovery().created == (session == 0));
    for (int i = 0; i < 5; ++i) {
      const auto in = jt::u64s({++marker});
      REQUIRE(j->append(entry("A", in)).ok());
    }
    REQUIRE(j->poll().ok());
    REQUIRE(j->close().ok());
  }
  journal_verify_report rep;
  const auto recs = jt::records(o.directory, &rep);
  CHECK(rep.clean());
  CHECK(rep.segments == 3);
  std::uint64_t m = 0;
  for (std::size_t i = 0; i < recs.size(); ++i) {
    CHECK(recs[i].seq == i + 1);
    if (recs[i].type == jf::record_type::event) CHECK(recs[i].marker == ++m);
  }
  CHECK(m == 15);

  // Another key may not continue the journal.
  o.signing_seed = jt::test_seed(0x40);
  CHECK(journal::open(o).status().code() == absl::StatusCode::kPermissionDenied);
  // Nor may a file the manifest does not list be there.
  o.signing_seed = jt::test_seed();
  jt::write_bytes(o.directory + "/" + jf::segment_file_name(9), {1, 2, 3});
  CHECK(journal::open(o).status().code() == absl::StatusCode::kFailedPrecondition);
}

TEST_CASE("journal: checkpoints every N records and rotation by size", "[journal]") {
  jt::temp_dir d;
  auto o = jt::options(d.sub("j"));
  o.checkpoint_every_records = 10;
  o.max_segment_bytes = 8192;
  std::uint64_t rotations = 0;
  std::uint64_t checkpoints = 0;
  o.on_event = [&](const journal_event& ev) {
    if (ev.type == journal_event_type::rotated) ++rotations;
    if (ev.type == journal_event_type::checkpoint) ++checkpoints;
  };
  auto j = open_ok(o);
  std::vector<std::uint8_t> in(100, 0x5A);
  for (std::uint64_t i = 1; i <= 300; ++i) {
    jf::put64(in.data(), i);
    REQUIRE(j->append(entry("ACC", in)).ok());
    if (i % 37 == 0) REQUIRE(j->poll().ok());
  }
  REQUIRE(j->sync().ok());
  REQUIRE(j->close().ok());
  journal_verify_report rep;
  const auto recs = jt::records(o.directory, &rep);
  REQUIRE(rep.clean());
  CHECK(rep.events == 300);
  CHECK(rep.segments == rotations + 1);
  CHECK(rotations >= 300 * 248 / 8192);
  CHECK(rep.checkpoints == checkpoints);
  // At most 10 events between checkpoints; every segment file within the size.
  std::uint64_t run = 0;
  for (const auto& r : recs) {
    if (r.type == jf::record_type::checkpoint) {
      run = 0;
    } else {
      REQUIRE(++run <= 10);
    }
  }
  for (std::uint64_t s = 1; s <= rep.segments; ++s) {
    CHECK(jt::read_bytes(o.directory + "/" + jf::segment_file_name(s)).size() <= 8192);
  }
}

TEST_CASE("journal: rotation by age and checkpoints by time", "[journal]") {
  jt::temp_dir d;
  auto o = jt::options(d.sub("j"));
  o.max_segment_age_ms = 30;
  o.checkpoint_every_ms = 10;
  auto j = open_ok(o);
  const auto in = jt::u64s({1});
  REQUIRE(j->append(entry("A", in)).ok());
  REQUIRE(j->poll().ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(15));
  REQUIRE(j->poll().ok());  // the checkpoint is due
  CHECK(j->stats().checkpoints == 1);
  CHECK(j->stats().segment == 1);
  REQUIRE(j->append(entry("A", in)).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(35));
  REQUIRE(j->poll().ok());  // the segment is older than 30 ms
  CHECK(j->stats().segment == 2);
  REQUIRE(j->close().ok());
  journal_verify_report rep;
  jt::records(o.directory, &rep);
  CHECK(rep.clean());
  CHECK(rep.segments == 2);
}

TEST_CASE("journal: tickets are written and durable according to the level", "[journal]") {
  jt::temp_dir d;
  const auto in = jt::u64s({1});
  SECTION("none: written by poll, durable only after sync") {
    auto o = jt::options(d.sub("none"));
    o.level = durability::none;
    auto j = open_ok(o);
    const auto t = j->append(entry("A", in)).ticket;
    REQUIRE(j->poll().ok());
    CHECK(j->is_written(t));
    CHECK(!j->is_durable(t));
    REQUIRE(j->sync().ok());
    CHECK(j->is_durable(t));
  }
  SECTION("every 3 records") {
    auto o = jt::options(d.sub("n"));
    o.level = durability::every_n_records;
    o.sync_every_records = 3;
    auto j = open_ok(o);
    std::vector<std::uint64_t> t;
    for (int i = 0; i < 2; ++i) t.push_back(j->append(entry("A", in)).ticket);
    REQUIRE(j->poll().ok());
    CHECK(j->is_written(t[1]));
    CHECK(!j->is_durable(t[0]));
    t.push_back(j->append(entry("A", in)).ticket);
    REQUIRE(j->poll().ok());
    CHECK(j->is_durable(t[2]));
    const auto syncs = j->stats().syncs;
    // Five more in one go: synced after the third, the last two wait.
    for (int i = 0; i < 5; ++i) t.push_back(j->append(entry("A", in)).ticket);
    while (*j->poll() > 0) {
    }
    CHECK(j->is_durable(t[5]));
    CHECK(!j->is_durable(t[6]));
    CHECK(j->is_written(t[7]));
    CHECK(j->stats().syncs == syncs + 1);
  }
  SECTION("every 2000 us") {
    auto o = jt::options(d.sub("t"));
    o.level = durability::every_t_us;
    o.sync_every_us = 2000;
    auto j = open_ok(o);
    const auto t = j->append(entry("A", in)).ticket;
    REQUIRE(j->poll().ok());
    CHECK(j->is_written(t));
    CHECK(!j->is_durable(t));
    std::this_thread::sleep_for(std::chrono::milliseconds(3));
    REQUIRE(j->poll().ok());
    CHECK(j->is_durable(t));
  }
  SECTION("every record, the journal's own thread, group commit") {
    auto o = jt::options(d.sub("r"));
    o.mode = writer_mode::thread;
    auto j = open_ok(o);
    std::vector<std::uint64_t> t;
    for (int i = 0; i < 200; ++i) t.push_back(j->append(entry("A", in)).ticket);
    REQUIRE(j->wait_durable(t.back(), 10'000'000).ok());
    for (auto x : t) CHECK(j->is_durable(x));
    const auto s = j->stats();
    CHECK(s.written == 200);
    CHECK(s.syncs <= s.batches + 2);  // at most one fdatasync per batch
    INFO("batches " << s.batches << " syncs " << s.syncs);
  }
}

TEST_CASE(
    "journal: ring full policies: reject fails closed - drop counts and records - block waits",
    "[journal]") {
  jt::temp_dir d;
  const auto in = jt::u64s({1});
  SECTION("reject") {
    auto o = jt::options(d.sub("reject"));
    o.ring_cells = 64;
    o.max_entry_bytes = 256;
    auto j = open_ok(o);
    int ok = 0;
    int rejected = 0;
    for (int i = 0; i < 100; ++i) {
      const auto r = j->append(entry("A", in));
      if (r.ok()) ++ok;
      if (r.status == append_status::rejected) ++rejected;
    }
    CHECK(ok == 32);  // two cells per entry
    CHECK(rejected == 68);
    CHECK(j->stats().rejected == 68);
    REQUIRE(j->poll().ok());
    CHECK(j->append(entry("A", in)).ok());
    REQUIRE(j->close().ok());
    journal_verify_report rep;
    jt::records(o.directory, &rep);
    CHECK(rep.events == 33);
  }
  SECTION("drop and count") {
    auto o = jt::options(d.sub("drop"));
    o.ring_cells = 64;
    o.max_entry_bytes = 256;
    o.on_full = ring_full_policy::drop_and_count;
    std::uint64_t reported = 0;
    o.on_event = [&](const journal_event& ev) {
      if (ev.type == journal_event_type::records_dropped) reported += ev.count;
    };
    auto j = open_ok(o);
    for (int i = 0; i < 50; ++i) {
      const auto r = j->append(entry("A", in));
      CHECK((r.ok() || r.status == append_status::dropped));
    }
    CHECK(j->stats().dropped == 18);
    REQUIRE(j->poll().ok());
    CHECK(reported == 18);
    REQUIRE(j->close().ok());
    std::uint64_t dropped_records = 0;
    std::uint64_t count = 0;
    journal_verify_options vo;
    vo.on_record = [&](const jf::record_view& v, const journal_record_location&) {
      if (v.kind == static_cast<std::uint16_t>(event_kind::records_dropped)) {
        ++dropped_records;
        count += jf::get64(v.inputs.data());
      }
    };
    auto rep = verify_journal(o.directory, vo);
    REQUIRE(rep.ok());
    CHECK(rep->clean());
    CHECK(dropped_records == 1);
    CHECK(count == 18);
  }
  SECTION("block") {
    auto o = jt::options(d.sub("block"));
    o.ring_cells = 64;
    o.max_entry_bytes = 256;
    o.on_full = ring_full_policy::block;
    auto j = open_ok(o);
    std::atomic<int> appended{0};
    std::thread producer([&] {
      for (int i = 0; i < 100; ++i) {
        if (j->append(entry("A", in)).ok()) appended.fetch_add(1);
      }
    });
    while (appended.load() < 32) std::this_thread::yield();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    CHECK(appended.load() == 32);  // waiting for room
    while (appended.load() < 100) {
      REQUIRE(j->poll().ok());
      std::this_thread::yield();
    }
    producer.join();
    REQUIRE(j->close().ok());
    journal_verify_report rep;
    jt::records(o.directory, &rep);
    CHECK(rep.events == 100);
  }
}

TEST_CASE("journal: many producers and the journal's thread: records = appends in ticket order",
          "[journal][concurrency]") {
  jt::temp_dir d;
  auto o = jt::options(d.sub("j"));
  o.mode = writer_mode::thread;
  o.level = durability::every_n_records;
  o.sync_every_records = 256;
  o.ring_cells = 256;
  o.on_full = ring_full_policy::block;
  o.checkpoint_every_records = 100;
  o.max_segment_bytes = 64 << 10;
  auto j = open_ok(o);
  constexpr int threads = 3;
  constexpr std::uint64_t per = 3000;
  std::vector<std::thread> ts;
  std::atomic<int> failed{0};  // Catch's assertions are not for other threads
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      // Not "T" + to_string(t): GCC 12 at -O3 warns (-Wrestrict) on that
      // operator+ inlined here, a known false positive.
      std::string account(1, 'T');
      account += std::to_string(t);
      for (std::uint64_t i = 1; i <= per; ++i) {
        const auto in = jt::u64s({(static_cast<std::uint64_t>(t) << 32) | i});
        if (!j->append(entry(account, in)).ok()) failed.fetch_add(1);
      }
    });
  }
  for (auto& t : ts) t.join();
  REQUIRE(failed.load() == 0);
  REQUIRE(j->close().ok());
  journal_verify_report rep;
  const auto recs = jt::records(o.directory, &rep);
  REQUIRE(rep.clean());
  CHECK(rep.events == threads * per);
  std::uint64_t last[threads] = {};
  for (const auto& r : recs) {
    if (r.type != jf::record_type::event) continue;
    const auto t = static_cast<int>(r.marker >> 32);
    REQUIRE(t < threads);
    REQUIRE((r.marker & 0xFFFFFFFFu) == last[t] + 1);
    last[t] += 1;
  }
}

TEST_CASE("journal: tollgate-audit verify and dump and stats", "[journal][tool]") {
  jt::temp_dir d;
  auto o = jt::options(d.sub("j"));
  auto j = open_ok(o);
  for (std::uint64_t i = 1; i <= 20; ++i) {
    const std::string account = i % 2 == 0 ? "EVEN" : "ODD";
    const auto in = jt::u64s({i});
    journal_entry e = entry(account, in);
    e.kind =
        static_cast<std::uint16_t>(i % 4 == 0 ? event_kind::kill_switch : event_kind::decision);
    e.realtime_ns = 1'700'000'000'000'000'000ull + i * 1000;
    REQUIRE(j->append(e).ok());
  }
  REQUIRE(j->close().ok());
  const std::string tool = TOLLGATE_AUDIT_TOOL;
  auto run = [&](const std::string& args, std::string* out) {
    const std::string cmd = tool + " " + args + " 2>&1";
    FILE* p = ::popen(cmd.c_str(), "r");
    REQUIRE(p != nullptr);
    char buf[4096];
    out->clear();
    std::size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out->append(buf, n);
    const int st = ::pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  };
  std::string out;
  CHECK(run("verify " + o.directory, &out) == 0);
  CHECK(out.find("OK") != std::string::npos);
  CHECK(run("stats " + o.directory, &out) == 0);
  CHECK(out.find("kill_switch") != std::string::npos);
  CHECK(run("dump --account EVEN --kind kill_switch " + o.directory, &out) == 0);
  CHECK(std::count(out.begin(), out.end(), '\n') == 5);
  CHECK(run("dump --from 1700000000000005000 --to 2023-11-14T22:13:20.000010Z " + o.directory,
            &out) == 0);
  CHECK(std::count(out.begin(), out.end(), '\n') == 6);  // 5..10 us
  CHECK(run("dump --kind checkpoint " + o.directory, &out) == 0);
  CHECK(out.find("\"close\":true") != std::string::npos);
  // The host's own inputs: nothing to replay, nothing differs.
  CHECK(run("replay " + o.directory, &out) == 0);
  CHECK(out.find("0 decisions and 0 breaker transitions compared, 0 differ") != std::string::npos);
  CHECK(run("replay --max x " + o.directory, &out) == 3);
  CHECK(run("verify", &out) == 3);
  // A flipped byte: exit 1 and the record located.
  const std::string seg = o.directory + "/" + jf::segment_file_name(1);
  auto bytes = jt::read_bytes(seg);
  bytes[200] ^= 0x10;
  jt::write_bytes(seg, bytes);
  CHECK(run("verify " + o.directory, &out) == 1);
  CHECK(out.find("FAILED: record in seg-0000000000000001.tgj at byte offset 128") !=
        std::string::npos);
}
