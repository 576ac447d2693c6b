// tollgate::crypto against published vectors (FIPS 180-2, RFC 4231, RFC 8032)
// and against BoringSSL's own one-shot HMAC.
#include <catch2/catch.hpp>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "tollgate/crypto.hpp"

namespace {

namespace tc = tollgate::crypto;

std::string hex(const std::uint8_t* p, std::size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string s;
  for (std::size_t i = 0; i < n; ++i) {
    s.push_back(digits[p[i] >> 4]);
    s.push_back(digits[p[i] & 15]);
  }
  return s;
}

std::vector<std::uint8_t> unhex(std::string_view h) {
  std::vector<std::uint8_t> out;
  for (std::size_t i = 0; i + 1 < h.size(); i += 2) {
    out.push_back(static_cast<std::uint8_t>(std::stoi(std::string(h.substr(i, 2)), nullptr, 16)));
  }
  return out;
}

std::string mac_hex(std::string_view key, std::string_view msg) {
  std::uint8_t out[tc::sha256_size];
  tc::hmac_sha256_key(key).mac(msg.data(), msg.size(), out);
  return hex(out, sizeof out);
}

}  // namespace

TEST_CASE("crypto: BoringSSL is loaded privately and SHA-256 matches FIPS 180-2", "[crypto]") {
  REQUIRE(tc::available().ok());
  std::uint8_t d[tc::sha256_size];
  tc::sha256("abc", 3, d);
  CHECK(hex(d, sizeof d) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  tc::sha256("", 0, d);
  CHECK(hex(d, sizeof d) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  // Streaming over two pieces equals one shot.
  const std::string m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  tc::sha256_ctx c;
  tc::sha256_init(&c);
  tc::sha256_update(&c, m.data(), 10);
  tc::sha256_update(&c, m.data() + 10, m.size() - 10);
  tc::sha256_final(&c, d);
  CHECK(hex(d, sizeof d) == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST_CASE("crypto: HMAC-SHA256 with precomputed pads matches RFC 4231", "[crypto]") {
  const std::string k20(20, '\x0b');
  CHECK(mac_hex(k20, "Hi There") ==
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  CHECK(mac_hex("Jefe", "what do ya want for nothing?") ==
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  CHECK(mac_hex(std::string(20, '\xaa'), std::string(50, '\xdd')) ==
        "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe");
  std::string k25;
  for (int i = 1; i <= 25; ++i) k25.push_back(static_cast<char>(i));
  CHECK(mac_hex(k25, std::string(50, '\xcd')) ==
        "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b");
  CHECK(mac_hex(std::string(20, '\x0c'), "Test With Truncation").substr(0, 32) ==
        "a3b6167473100ee06e0c796c2955552b");
  const std::string k131(131, '\xaa');
  CHECK(mac_hex(k131, "Test Using Larger Than Block-Size Key - Hash Key First") ==
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
  CHECK(mac_hex(k131,
                "This is a test using a larger than block-size key and a larger than block-size "
                "data. The key needs to be hashed before being used by the HMAC algorithm.") ==
        "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2");
}

TEST_CASE("crypto: precomputed HMAC equals BoringSSL's HMAC for every key and message length",
          "[crypto]") {
  std::mt19937_64 rng(4231);
  for (std::size_t klen : {0, 1, 31, 32, 63, 64, 65, 100, 200}) {
    std::string key(klen, '\0');
    for (char& ch : key) ch = static_cast<char>(rng());
    const tc::hmac_sha256_key pre(key);
    for (std::size_t mlen = 0; mlen <= 300; mlen += 7) {
      std::string msg(mlen, '\0');
      for (char& ch : msg) ch = static_cast<char>(rng());
      std::uint8_t a[tc::sha256_size], b[tc::sha256_size];
      pre.mac(msg.data(), msg.size(), a);
      tc::hmac_sha256_reference(key, msg.data(), msg.size(), b);
      INFO("key " << klen << " bytes, message " << mlen << " bytes");
      CHECK(hex(a, sizeof a) == hex(b, sizeof b));
      // Streaming in two pieces, and a copy of the key state, agree.
      const tc::hmac_sha256_key copy = pre;
      tc::sha256_ctx c;
      copy.begin(&c);
      tc::sha256_update(&c, msg.data(), mlen / 3);
      tc::sha256_update(&c, msg.data() + mlen / 3, mlen - mlen / 3);
      copy.finish(&c, a);
      CHECK(hex(a, sizeof a) == hex(b, sizeof b));
    }
  }
}

TEST_CASE("crypto: Ed25519 matches RFC 8032 test 1 and rejects any altered byte", "[crypto]") {
  const auto seed = unhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
  std::uint8_t pub[tc::ed25519_public_key_size], priv[tc::ed25519_private_key_size];
  REQUIRE(tc::ed25519_keypair_from_seed(seed.data(), pub, priv));
  CHECK(hex(pub, sizeof pub) == "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
  std::uint8_t sig[tc::ed25519_signature_size];
  REQUIRE(tc::ed25519_sign("", 0, priv, sig));
  CHECK(
      hex(sig, sizeof sig) ==
      "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9"
      "b46bd25bf5f0595bbe24655141438e7a100b");
  CHECK(tc::ed25519_verify("", 0, sig, pub));

  const std::string msg = "checkpoint 42";
  REQUIRE(tc::ed25519_sign(msg.data(), msg.size(), priv, sig));
  CHECK(tc::ed25519_verify(msg.data(), msg.size(), sig, pub));
  for (std::size_t i = 0; i < sizeof sig; ++i) {
    sig[i] ^= 1;
    CHECK_FALSE(tc::ed25519_verify(msg.data(), msg.size(), sig, pub));
    sig[i] ^= 1;
  }
  std::string other = msg;
  other[0] = 'C';
  CHECK_FALSE(tc::ed25519_verify(other.data(), other.size(), sig, pub));
}

TEST_CASE("crypto: constant-time equality and random bytes", "[crypto]") {
  const std::uint8_t a[4] = {1, 2, 3, 4}, b[4] = {1, 2, 3, 5};
  CHECK(tc::equal_constant_time(a, a, 4));
  CHECK_FALSE(tc::equal_constant_time(a, b, 4));
  CHECK(tc::equal_constant_time(a, b, 3));
  CHECK(tc::equal_constant_time(a, b, 0));
  std::uint8_t r1[32] = {}, r2[32] = {};
  REQUIRE(tc::random_bytes(r1, sizeof r1));
  REQUIRE(tc::random_bytes(r2, sizeof r2));
  CHECK(hex(r1, 32) != hex(r2, 32));
}
