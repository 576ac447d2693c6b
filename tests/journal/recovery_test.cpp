// Recovery on open: a torn tail cut at every byte of the last record is
// truncated (offset reported and recorded) and the chain resumes; garbage
// and zeros after the last record are torn tails too; damage followed by a
// valid record is refused, and nothing is truncated.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "tollgate/journal.hpp"
#include "tollgate/journal_reader.hpp"
#include "util.hpp"

using namespace tollgate;
namespace jf = tollgate::journal_format;

namespace {

// A journal left open (as a crash leaves it): `n` events synced, then a
// snapshot of the directory taken while the writer still has it open.
// Returns the offset of the last record in the snapshot's open segment.
std::uint64_t crashed_journal(const std::string& live, const std::string& snapshot, int n) {
  auto o = jt::options(live);
  o.checkpoint_every_records = 4;
  auto j = journal::open(o);
  REQUIRE(j.ok());
  std::vector<std::uint8_t> in(40, 0x33);
  for (int i = 1; i <= n; ++i) {
    jf::put64(in.data(), static_cast<std::uint64_t>(i));
    journal_entry e;
    e.account = "ACC";
    e.inputs = in;
    REQUIRE((*j)->append(e).ok());
  }
  REQUIRE((*j)->sync().ok());
  jt::copy_dir(live, snapshot);
  REQUIRE((*j)->close().ok());
  const auto seg = jt::read_bytes(snapshot + "/" + jf::segment_file_name(1));
  std::uint64_t off = jf::header_size;
  std::uint64_t last = off;
  while (off < seg.size()) {
    last = off;
    off += 8 + jf::get32(seg.data() + off);
  }
  REQUIRE(off == seg.size());
  return last;
}

}  // namespace

TEST_CASE("recovery: a torn tail cut at every byte of the last record", "[recovery]") {
  jt::temp_dir d;
  const std::string base = d.sub("base");
  const std::uint64_t last = crashed_journal(d.sub("live"), base, 6);
  const std::string seg_name = jf::segment_file_name(1);
  const auto full = jt::read_bytes(base + "/" + seg_name);
  const std::uint64_t end = full.size();
  REQUIRE(end - last > 100);
  int trials = 0;
  for (std::uint64_t cut = last + 1; cut < end; ++cut) {
    const std::string dir = d.sub("cut" + std::to_string(cut));
    jt::copy_dir(base, dir);
    jt::write_bytes(dir + "/" + seg_name,
                    std::vector<std::uint8_t>(full.begin(), full.begin() + static_cast<long>(cut)));
    // The verifier sees the torn tail as a warning at the right offset.
    auto before = verify_journal(dir);
    REQUIRE(before.ok());
    REQUIRE(before->ok());
    REQUIRE(!before->warnings.empty());
    CHECK(before->warnings[0].category == "torn_tail");
    CHECK(before->warnings[0].offset == last);

    std::uint64_t event_offset = 0;
    auto o = jt::options(dir);
    o.on_event = [&](const journal_event& ev) {
      if (ev.type == journal_event_type::tail_truncated) event_offset = ev.offset;
    };
    auto j = journal::open(o);
    INFO("cut at " << cut << ": " << j.status());
    REQUIRE(j.ok());
    const auto& rec = (*j)->recovery();
    CHECK(rec.tail_truncated);
    CHECK(rec.offset == last);
    CHECK(rec.bytes_removed == cut - last);
    CHECK(event_offset == last);
    // The chain resumes: one more record, then close, and all verifies.
    journal_entry e;
    const auto in = jt::u64s({99});
    e.inputs = in;
    REQUIRE((*j)->append(e).ok());
    REQUIRE((*j)->close().ok());
    journal_verify_report rep;
    const auto recs = jt::records(dir, &rep);
    REQUIRE(rep.clean());
    // The records before the torn one, a tail_truncated record naming the
    // offset, the seal, then the new record in segment 2.
    bool found_tail_record = false;
    std::uint64_t markers = 0;
    for (const auto& r : recs) {
      if (r.kind == static_cast<std::uint16_t>(event_kind::tail_truncated))
        found_tail_record = true;
      if (r.kind == 1 && r.marker != 99) ++markers;
    }
    CHECK(found_tail_record);
    CHECK(markers == 5);
    ++trials;
    jt::temp_dir::remove_tree(dir);
  }
  CHECK(trials == static_cast<int>(end - last - 1));
}

TEST_CASE("recovery: garbage or zeros after the last record are a torn tail", "[recovery]") {
  jt::temp_dir d;
  const std::string base = d.sub("base");
  crashed_journal(d.sub("live"), base, 5);
  const std::string seg = base + "/" + jf::segment_file_name(1);
  const auto full = jt::read_bytes(seg);
  for (int variant = 0; variant < 2; ++variant) {
    const std::string dir = d.sub("v" + std::to_string(variant));
    jt::copy_dir(base, dir);
    auto b = full;
    for (int i = 0; i < 4096; ++i) {
      b.push_back(variant == 0 ? 0 : static_cast<std::uint8_t>((i * 7919) >> 3));
    }
    jt::write_bytes(dir + "/" + jf::segment_file_name(1), b);
    auto j = journal::open(jt::options(dir));
    REQUIRE(j.ok());
    CHECK((*j)->recovery().tail_truncated);
    CHECK((*j)->recovery().offset == full.size());
    CHECK((*j)->recovery().bytes_removed == 4096);
    REQUIRE((*j)->close().ok());
    journal_verify_report rep;
    jt::records(dir, &rep);
    CHECK(rep.clean());
  }
}

TEST_CASE("recovery: damage followed by valid records is refused and nothing truncated",
          "[recovery]") {
  jt::temp_dir d;
  const std::string base = d.sub("base");
  crashed_journal(d.sub("live"), base, 5);
  const std::string seg = base + "/" + jf::segment_file_name(1);
  auto b = jt::read_bytes(seg);
  b[jf::header_size + 20] ^= 0x01;  // inside the first record
  jt::write_bytes(seg, b);
  auto j = journal::open(jt::options(base));
  CHECK(j.status().code() == absl::StatusCode::kDataLoss);
  CHECK(std::string(j.status().message()).find("offset 128") != std::string::npos);
  CHECK(jt::read_bytes(seg) == b);
  auto rep = verify_journal(base);
  REQUIRE(rep.ok());
  REQUIRE(!rep->ok());
  CHECK(rep->error->offset == jf::header_size);
}

TEST_CASE("recovery: a crash right after the manifest named a new segment", "[recovery]") {
  jt::temp_dir d;
  const std::string base = d.sub("base");
  crashed_journal(d.sub("live"), base, 3);
  // Reopening rotates: the manifest names segment 3 (1 recovered + sealed,
  // 2 started by open ...). Simulate the crash between the manifest write
  // and the segment's creation by removing the newest segment file.
  {
    auto j = journal::open(jt::options(base));
    REQUIRE(j.ok());
    jt::copy_dir(base, d.sub("snap"));
    REQUIRE((*j)->close().ok());
  }
  const std::string snap = d.sub("snap");
  const auto man = jf::decode_manifest([&] {
    const auto b = jt::read_bytes(snap + "/MANIFEST");
    return std::string(b.begin(), b.end());
  }());
  REQUIRE(man.ok());
  const auto last = man->segments.back().number;
  ::unlink((snap + "/" + jf::segment_file_name(last)).c_str());
  auto rep = verify_journal(snap);
  REQUIRE(rep.ok());
  CHECK(rep->ok());
  REQUIRE(!rep->warnings.empty());
  CHECK(rep->warnings[0].category == "missing_segment");
  auto j = journal::open(jt::options(snap));
  INFO(j.status());
  REQUIRE(j.ok());
  REQUIRE((*j)->close().ok());
  journal_verify_report rep2;
  jt::records(snap, &rep2);
  CHECK(rep2.clean());
}
