// Tamper detection on a small closed journal: every byte of every file
// flipped in turn, records deleted, reordered, duplicated, truncated,
// forged (with CRCs and chain links recomputed, and with a foreign key),
// segments removed, swapped or added, the manifest edited. Every case must
// fail verification, and a record-level case must name the record.
#include <catch2/catch.hpp>

#include <cstdio>
#include <string>
#include <vector>

#include "tollgate/journal.hpp"
#include "tollgate/journal_reader.hpp"
#include "util.hpp"

using namespace tollgate;
namespace jf = tollgate::journal_format;

namespace {

struct fixture {
  jt::temp_dir d;
  std::string clean = d.sub("clean");
  std::vector<jt::rec> recs;
  std::vector<std::string> files;

  fixture() {
    auto o = jt::options(clean);
    o.checkpoint_every_records = 4;
    o.max_segment_bytes = 1400;
    auto j = journal::open(o);
    REQUIRE(j.ok());
    std::vector<std::uint8_t> in(24, 0x11);
    for (std::uint64_t i = 1; i <= 12; ++i) {
      jf::put64(in.data(), i);
      journal_entry e;
      const std::string account = "ACC" + std::to_string(i % 3);
      e.account = account;
      e.inputs = in;
      e.verdict = static_cast<std::uint32_t>(i % 2);
      REQUIRE((*j)->append(e).ok());
      REQUIRE((*j)->poll().ok());
    }
    REQUIRE((*j)->close().ok());
    journal_verify_report rep;
    recs = jt::records(clean, &rep);
    REQUIRE(rep.clean());
    REQUIRE(rep.segments >= 2);
    files.push_back("MANIFEST");
    for (std::uint64_t s = 1; s <= rep.segments; ++s) files.push_back(jf::segment_file_name(s));
  }

  std::string copy(const std::string& name) {
    const std::string p = d.sub(name);
    jt::temp_dir::remove_tree(p);
    jt::copy_dir(clean, p);
    return p;
  }

  // The records of one segment, in order.
  std::vector<jt::rec> in_segment(std::uint64_t s) const {
    std::vector<jt::rec> v;
    for (const auto& r : recs) {
      if (r.segment == s) v.push_back(r);
    }
    return v;
  }
};

journal_problem must_fail(const std::string& dir) {
  auto rep = verify_journal(dir);
  REQUIRE(rep.ok());
  REQUIRE(!rep->ok());
  return *rep->error;
}

std::string seg_path(const std::string& dir, std::uint64_t s) {
  return dir + "/" + jf::segment_file_name(s);
}

// Re-frames a body in place (CRC recomputed).
void reseal(std::vector<std::uint8_t>& b, std::uint64_t off) {
  jf::seal_frame(b.data() + off, jf::get32(b.data() + off));
}

}  // namespace

TEST_CASE("tamper: every byte of every file flipped in turn is detected and located", "[tamper]") {
  fixture f;
  std::size_t cases = 0;
  std::size_t located = 0;
  for (const auto& name : f.files) {
    const auto orig = jt::read_bytes(f.clean + "/" + name);
    std::uint64_t seg = 0;
    const bool is_segment = jf::parse_segment_file_name(name, &seg);
    const auto seg_recs = f.in_segment(seg);
    const std::string dir = f.copy("flip");
    for (std::size_t i = 0; i < orig.size(); ++i) {
      auto b = orig;
      b[i] ^= 0xFF;
      jt::write_bytes(dir + "/" + name, b);
      const auto p = must_fail(dir);
      ++cases;
      INFO(name << " byte " << i << ": " << p.category << " at " << p.offset << ": " << p.message);
      if (!is_segment) {
        CHECK(p.category == "manifest");
        ++located;
      } else if (i < jf::header_size) {
        CHECK(p.category == "header");
        CHECK(p.segment == seg);
        ++located;
      } else {
        // The record holding byte i is the one reported.
        const jt::rec* holder = nullptr;
        for (const auto& r : seg_recs) {
          if (i >= r.offset && i < r.offset + r.frame_size) holder = &r;
        }
        REQUIRE(holder != nullptr);
        CHECK(p.segment == seg);
        CHECK(p.offset == holder->offset);
        CHECK(p.sequence == holder->seq);
        if (p.segment == seg && p.offset == holder->offset) ++located;
      }
    }
    jt::write_bytes(dir + "/" + name, orig);
  }
  std::printf("tamper: %zu single-byte flips, %zu detected and located\n", cases, located);
  CHECK(located == cases);
  CHECK(cases > 2000);
}

TEST_CASE("tamper: deleted or reordered or duplicated or truncated records", "[tamper]") {
  fixture f;
  std::size_t cases = 0;
  for (std::uint64_t s = 1; s < f.files.size(); ++s) {
    const auto orig = jt::read_bytes(seg_path(f.clean, s));
    const auto rs = f.in_segment(s);
    for (std::size_t k = 0; k < rs.size(); ++k) {
      const auto at = static_cast<long>(rs[k].offset);
      const auto len = static_cast<long>(rs[k].frame_size);
      {  // delete record k
        const std::string dir = f.copy("del");
        auto b = orig;
        b.erase(b.begin() + at, b.begin() + at + len);
        jt::write_bytes(seg_path(dir, s), b);
        const auto p = must_fail(dir);
        INFO("delete seq " << rs[k].seq << ": " << p.message);
        CHECK(p.segment == s);
        CHECK(p.offset == rs[k].offset);
        ++cases;
      }
      {  // duplicate record k
        const std::string dir = f.copy("dup");
        auto b = orig;
        b.insert(b.begin() + at + len, orig.begin() + at, orig.begin() + at + len);
        jt::write_bytes(seg_path(dir, s), b);
        const auto p = must_fail(dir);
        CHECK(p.offset == rs[k].offset + rs[k].frame_size);
        ++cases;
      }
      if (k + 1 < rs.size()) {  // swap k and k+1
        const std::string dir = f.copy("swap");
        auto b = orig;
        const auto len2 = static_cast<long>(rs[k + 1].frame_size);
        std::vector<std::uint8_t> second(orig.begin() + at + len, orig.begin() + at + len + len2);
        std::vector<std::uint8_t> first(orig.begin() + at, orig.begin() + at + len);
        b.erase(b.begin() + at, b.begin() + at + len + len2);
        b.insert(b.begin() + at, first.begin(), first.end());
        b.insert(b.begin() + at, second.begin(), second.end());
        jt::write_bytes(seg_path(dir, s), b);
        const auto p = must_fail(dir);
        CHECK(p.offset == rs[k].offset);
        ++cases;
      }
    }
    // Truncation at every length short of the file (this journal is
    // closed, so its segments' sizes are in the signed manifest).
    const std::string dir = f.copy("trunc");
    for (std::size_t len = 0; len < orig.size(); ++len) {
      jt::write_bytes(seg_path(dir, s), std::vector<std::uint8_t>(
                                            orig.begin(), orig.begin() + static_cast<long>(len)));
      const auto p = must_fail(dir);
      CHECK(p.segment == s);
      ++cases;
    }
  }
  std::printf("tamper: %zu deletions, duplications, reorderings and truncations detected\n", cases);
  CHECK(cases > 100);
}

TEST_CASE("tamper: forged records and segments and manifests", "[tamper]") {
  fixture f;
  const std::uint64_t nseg = f.files.size() - 1;
  std::size_t cases = 0;
  const auto first_seg = jt::read_bytes(seg_path(f.clean, 1));
  const auto rs = f.in_segment(1);
  REQUIRE(rs.size() >= 4);
  REQUIRE(rs[0].type == jf::record_type::event);

  {
    // 1. An event's verdict changed with its CRC recomputed: the next
    // record's chain link no longer matches.
    const std::string dir = f.copy("forge1");
    auto b = first_seg;
    b[rs[0].offset + 8 + 80] ^= 1;
    reseal(b, rs[0].offset);
    jt::write_bytes(seg_path(dir, 1), b);
    const auto p = must_fail(dir);
    CHECK(p.offset == rs[1].offset);
    CHECK(p.message.find("chain") != std::string::npos);
    ++cases;
  }
  {
    // 2. The same, with every later link and CRC recomputed too: the next
    // checkpoint's signature fails.
    const std::string dir = f.copy("forge2");
    auto b = first_seg;
    b[rs[0].offset + 8 + 80] ^= 1;
    jf::hash h{};
    std::uint64_t ckpt_offset = 0;
    for (std::size_t k = 0; k < rs.size(); ++k) {
      const std::uint64_t off = rs[k].offset;
      const std::uint32_t n = jf::get32(b.data() + off);
      if (k > 0) std::copy(h.begin(), h.end(), b.begin() + static_cast<long>(off + 8 + 32));
      reseal(b, off);
      h = jf::chain_next({b.data() + off + 8, n});
      if (rs[k].type == jf::record_type::checkpoint && ckpt_offset == 0) ckpt_offset = off;
    }
    jt::write_bytes(seg_path(dir, 1), b);
    const auto p = must_fail(dir);
    CHECK(p.offset == ckpt_offset);
    CHECK(p.message.find("signature") != std::string::npos);
    ++cases;
  }
  {
    // 3. A forged event appended after the last segment's closing seal,
    // with the right sequence, chain link and CRC.
    const std::string dir = f.copy("forge3");
    auto b = jt::read_bytes(seg_path(dir, nseg));
    journal_verify_report rep;
    jt::records(f.clean, &rep);
    jf::event_fields ev;
    ev.kind = 1;
    ev.seq = rep.last_sequence + 1;
    ev.prev = rep.head;
    ev.account = "FORGED";
    const std::size_t n = jf::event_body_size(6, 0, 0);
    const std::size_t at = b.size();
    b.resize(at + 8 + n);
    jf::encode_event_body(ev, b.data() + at + 8);
    jf::seal_frame(b.data() + at, static_cast<std::uint32_t>(n));
    jt::write_bytes(seg_path(dir, nseg), b);
    const auto p = must_fail(dir);
    CHECK(p.offset == at);
    CHECK(p.message.find("seal") != std::string::npos);
    ++cases;
  }
  {
    // 4. A checkpoint re-signed with another key.
    const std::string dir = f.copy("forge4");
    auto b = first_seg;
    const jt::rec* ck = nullptr;
    for (const auto& r : rs) {
      if (r.type == jf::record_type::checkpoint) {
        ck = &r;
        break;
      }
    }
    REQUIRE(ck != nullptr);
    jf::record_view v;
    REQUIRE(jf::decode_frame(std::span(b).subspan(ck->offset), &v) == jf::frame_status::ok);
    const auto other = jt::test_seed(0x77);
    std::uint8_t pub[32];
    std::uint8_t priv[64];
    REQUIRE(crypto::ed25519_keypair_from_seed(other.data(), pub, priv));
    jf::journal_id id{};
    std::copy(b.begin() + 16, b.begin() + 32, id.begin());
    const auto msg = jf::checkpoint_message(id, v.seq, v.realtime_ns, v.checkpoint_flags, v.prev);
    jf::signature sig{};
    crypto::ed25519_sign(msg.data(), msg.size(), priv, sig.data());
    std::copy(sig.begin(), sig.end(), b.begin() + static_cast<long>(ck->offset + 8 + 72));
    reseal(b, ck->offset);
    jt::write_bytes(seg_path(dir, 1), b);
    const auto p = must_fail(dir);
    CHECK(p.offset == ck->offset);
    ++cases;
  }
  {
    // 5. A whole segment removed; 6. two segments swapped; 7. an extra
    // segment file; 8. the manifest's last segment line dropped.
    const std::string d5 = f.copy("seg-removed");
    ::unlink(seg_path(d5, 1).c_str());
    CHECK(must_fail(d5).category == "missing_segment");
    const std::string d6 = f.copy("seg-swapped");
    ::rename(seg_path(d6, 1).c_str(), (d6 + "/x").c_str());
    ::rename(seg_path(d6, 2).c_str(), seg_path(d6, 1).c_str());
    ::rename((d6 + "/x").c_str(), seg_path(d6, 2).c_str());
    CHECK(must_fail(d6).category == "header");
    const std::string d7 = f.copy("seg-extra");
    jt::write_bytes(seg_path(d7, nseg + 1), first_seg);
    CHECK(must_fail(d7).category == "directory");
    const std::string d8 = f.copy("manifest-edit");
    auto m = jt::read_bytes(d8 + "/MANIFEST");
    std::string text(m.begin(), m.end());
    const auto last_seg = text.rfind("segment ");
    const auto sig = text.find("signature ");
    text.erase(last_seg, sig - last_seg);
    jt::write_bytes(d8 + "/MANIFEST", std::vector<std::uint8_t>(text.begin(), text.end()));
    CHECK(must_fail(d8).category == "manifest");
    // 9. The pinned key is not the journal's.
    journal_verify_options vo;
    jf::public_key k{};
    k[0] = 1;
    vo.read.public_key = k;
    auto rep = verify_journal(f.clean, vo);
    REQUIRE(rep.ok());
    CHECK(!rep->ok());
    cases += 5;
  }
  std::printf("tamper: %zu forgeries detected\n", cases);
  CHECK(cases == 9);
}

TEST_CASE("tamper: an open journal's unsigned tail and torn tail are warnings and strict fails",
          "[tamper]") {
  jt::temp_dir d;
  auto o = jt::options(d.sub("live"));
  o.checkpoint_every_records = 100;
  auto j = journal::open(o);
  REQUIRE(j.ok());
  const auto in = jt::u64s({1});
  journal_entry e;
  e.inputs = in;
  for (int i = 0; i < 3; ++i) REQUIRE((*j)->append(e).ok());
  REQUIRE((*j)->sync().ok());
  const std::string snap = d.sub("snap");
  jt::copy_dir(o.directory, snap);
  REQUIRE((*j)->close().ok());
  auto rep = verify_journal(snap);
  REQUIRE(rep.ok());
  CHECK(rep->ok());
  REQUIRE(rep->warnings.size() == 1);
  CHECK(rep->warnings[0].category == "unsigned_tail");
  journal_verify_options strict;
  strict.read.strict = true;
  rep = verify_journal(snap, strict);
  REQUIRE(rep.ok());
  CHECK(!rep->ok());
}
