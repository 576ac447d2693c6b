// The version-1 layout: the worked example of docs/journal-format.md,
// computed independently, reproduced byte for byte by the encoders; decoder
// round trips and rejections; the manifest.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "tollgate/journal_format.hpp"
#include "util.hpp"

namespace jf = tollgate::journal_format;

namespace {

std::vector<std::uint8_t> unhex(std::string_view s) {
  std::vector<std::uint8_t> out;
  int hi = -1;
  for (char c : s) {
    int v = -1;
    if (c >= '0' && c <= '9') v = c - '0';
    if (c >= 'a' && c <= 'f') v = c - 'a' + 10;
    if (v < 0) continue;
    if (hi < 0) {
      hi = v;
    } else {
      out.push_back(static_cast<std::uint8_t>(hi * 16 + v));
      hi = -1;
    }
  }
  return out;
}

// docs/journal-format.md, "Worked example" (432 bytes).
const char* const example_hex =
    "8954474a0d0a1a0a0100800000000000000102030405060708090a0b0c0d0e0f"
    "010000000000000001000000000000003952ba08e181b3ca499c7a93a869b6a9"
    "52ee8325d9ccb24638a9e07c4e530fd529acbae141bccaf0b22e1a94d34d0bc7"
    "361e526d0bfe12c89794bc9322966dd700002a36fe9c971700000000a9083ca4"
    "980000003638d7c3010001000200000001000000000000007b002a36fe9c9717"
    "88130000000000003952ba08e181b3ca499c7a93a869b6a952ee8325d9ccb246"
    "38a9e07c4e530fd5070000000000000003000000020000000100000004000000"
    "378d69e16ad6001050ebd0a9b9e3b5f286594dd8b826f0aa1752db4a4c373f5c"
    "0400000010000000000000004143433164000000000000008813000000000000"
    "8800000050632e8902000000000000000200000000000000c8012a36fe9c9717"
    "2823000000000000317d071ff02ae34b8c497ca21a0bb0dba6927e751a43b024"
    "90bbaa61a5903f5803000000000000000ca4d4b73a5b3b419c49deaeea6cb7d0"
    "4aa35118db82038639db5eeb75e5f0732cf535fd4b18c9bc61f5ebf74171eac1"
    "ada036d01176ab99e71a127b29dbbb0e";

}  // namespace

TEST_CASE("format: the worked example is reproduced byte for byte", "[format]") {
  REQUIRE(tollgate::crypto::available().ok());
  const std::vector<std::uint8_t> expected = unhex(example_hex);
  REQUIRE(expected.size() == 432);

  jf::journal_id id{};
  for (std::size_t i = 0; i < id.size(); ++i) id[i] = static_cast<std::uint8_t>(i);
  const auto seed = jt::test_seed(0x20);
  jf::public_key pub{};
  std::uint8_t priv[64];
  REQUIRE(tollgate::crypto::ed25519_keypair_from_seed(seed.data(), pub.data(), priv));
  CHECK(jf::to_hex(pub) == "29acbae141bccaf0b22e1a94d34d0bc7361e526d0bfe12c89794bc9322966dd7");

  std::vector<std::uint8_t> out(jf::header_size);
  jf::segment_header h;
  h.id = id;
  h.segment = 1;
  h.first_seq = 1;
  h.prev = jf::genesis(id);
  h.key = pub;
  h.created_ns = 1700000000000000000ull;
  jf::encode_header(h, out.data());

  const std::string payload = "8=FIX.4.4|35=D|55=XYZ|38=100|44=10.5|";
  const auto inputs = jt::u64s({100, 5000});
  jf::event_fields f;
  f.kind = 1;
  f.flags = jf::event_digest_set;
  f.seq = 1;
  f.realtime_ns = 1700000000000000123ull;
  f.monotonic_ns = 5000;
  f.prev = h.prev;
  f.config_version = 7;
  f.route = 3;
  f.venue = 2;
  f.verdict = 1;
  f.reason = 4;
  tollgate::crypto::sha256(payload.data(), payload.size(), f.payload_digest.data());
  f.account = "ACC1";
  f.inputs = inputs;
  const std::size_t body = jf::event_body_size(4, inputs.size(), 0);
  CHECK(body == 152);
  out.resize(out.size() + 8 + body);
  jf::encode_event_body(f, out.data() + jf::header_size + 8);
  jf::seal_frame(out.data() + jf::header_size, static_cast<std::uint32_t>(body));
  const jf::hash h1 = jf::chain_next({out.data() + jf::header_size + 8, body});
  CHECK(jf::to_hex(h1) == "317d071ff02ae34b8c497ca21a0bb0dba6927e751a43b02490bbaa61a5903f58");

  const auto msg = jf::checkpoint_message(id, 2, 1700000000000000456ull, 3, h1);
  jf::signature sig{};
  REQUIRE(tollgate::crypto::ed25519_sign(msg.data(), msg.size(), priv, sig.data()));
  const std::size_t at = out.size();
  out.resize(at + 8 + jf::checkpoint_size);
  jf::encode_checkpoint_body(2, 1700000000000000456ull, 9000, h1, 3, sig, out.data() + at + 8);
  jf::seal_frame(out.data() + at, jf::checkpoint_size);
  CHECK(jf::to_hex(jf::chain_next({out.data() + at + 8, jf::checkpoint_size})) ==
        "13bc55a3dd3a90d8f5125df8c4b49845c6945715dd6ad43128c7eba9a38f79a3");
  REQUIRE(out.size() == expected.size());
  for (std::size_t i = 0; i < out.size(); ++i) {
    INFO("byte " << i);
    REQUIRE(out[i] == expected[i]);
  }

  // And the decoders read it back.
  jf::segment_header h2;
  REQUIRE(jf::decode_header(expected, &h2).ok());
  CHECK(h2.created_ns == h.created_ns);
  jf::record_view v;
  REQUIRE(jf::decode_frame(std::span(expected).subspan(128), &v) == jf::frame_status::ok);
  CHECK(v.account == "ACC1");
  CHECK(v.route == 3);
  CHECK(jf::get64(v.inputs.data() + 8) == 5000);
  REQUIRE(jf::decode_frame(std::span(expected).subspan(128 + 160), &v) == jf::frame_status::ok);
  CHECK(v.type == jf::record_type::checkpoint);
  CHECK(v.checkpoint_flags == 3);
  const auto m2 = jf::checkpoint_message(id, v.seq, v.realtime_ns, v.checkpoint_flags, v.prev);
  CHECK(tollgate::crypto::ed25519_verify(m2.data(), m2.size(), v.sig.data(), pub.data()));
}

TEST_CASE("format: decode_frame rejects short or out-of-range or damaged frames", "[format]") {
  std::vector<std::uint8_t> b(8 + jf::event_fixed_size, 0);
  jf::event_fields f;
  f.kind = 1;
  jf::encode_event_body(f, b.data() + 8);
  jf::seal_frame(b.data(), jf::event_fixed_size);
  jf::record_view v;
  REQUIRE(jf::decode_frame(b, &v) == jf::frame_status::ok);
  CHECK(jf::decode_frame(std::span(b).first(7), &v) == jf::frame_status::incomplete);
  CHECK(jf::decode_frame(std::span(b).first(b.size() - 1), &v) == jf::frame_status::incomplete);
  auto c = b;
  jf::put32(c.data(), 10);
  CHECK(jf::decode_frame(c, &v) == jf::frame_status::bad_length);
  c = b;
  c[50] ^= 1;
  CHECK(jf::decode_frame(c, &v) == jf::frame_status::bad_crc);
  // A body the CRC vouches for but version 1 does not allow.
  c = b;
  c[8 + 2] = 0x07;  // reserved kind
  jf::seal_frame(c.data(), jf::event_fixed_size);
  std::string why;
  CHECK(jf::decode_frame(c, &v, &why) == jf::frame_status::bad_body);
  CHECK(why == "unknown event kind");
}

TEST_CASE("format: manifest round trip and any edit breaks the signature or the syntax",
          "[format]") {
  jf::manifest m;
  for (std::size_t i = 0; i < 16; ++i) m.id[i] = static_cast<std::uint8_t>(i * 3);
  const auto seed = jt::test_seed();
  std::uint8_t priv[64];
  REQUIRE(tollgate::crypto::ed25519_keypair_from_seed(seed.data(), m.key.data(), priv));
  m.generation = 4;
  jf::manifest_segment a;
  a.number = 1;
  a.sealed = true;
  a.first_seq = 1;
  a.last_seq = 10;
  a.bytes = 2000;
  a.head[0] = 9;
  jf::manifest_segment b;
  b.number = 2;
  b.first_seq = 11;
  m.segments = {a, b};
  const std::string text = jf::encode_manifest(m, priv);
  auto d = jf::decode_manifest(text);
  REQUIRE(d.ok());
  CHECK(d->segments.size() == 2);
  CHECK(d->segments[0].head == a.head);
  CHECK(!d->segments[1].sealed);
  for (std::size_t i = 0; i < text.size(); ++i) {
    std::string t = text;
    t[i] = static_cast<char>(t[i] ^ 0x01);
    INFO("byte " << i);
    CHECK(!jf::decode_manifest(t).ok());
  }
}

TEST_CASE("format: kind names and segment file names", "[format]") {
  std::uint16_t k = 0;
  CHECK(jf::parse_kind("kill_switch", &k));
  CHECK(k == 5);
  CHECK(jf::parse_kind("0x8001", &k));
  CHECK(jf::kind_name(k) == "host:0x8001");
  CHECK(!jf::parse_kind("nonsense", &k));
  std::uint64_t n = 0;
  CHECK(jf::segment_file_name(26) == "seg-000000000000001a.tgj");
  CHECK(jf::parse_segment_file_name("seg-000000000000001a.tgj", &n));
  CHECK(n == 26);
  CHECK(!jf::parse_segment_file_name("seg-000000000000001A.tgj", &n));
}
