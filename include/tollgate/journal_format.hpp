// tollgate::journal_format - the audit journal's on-disk layout, version 1.
//
// docs/journal-format.md is the normative description; this header gives
// its constants and the encoders and decoders that the writer
// (journal.hpp), the reader and verifier (journal_reader.hpp) and the tests
// share, so that there is one implementation of every byte offset.
//
// All integers are little-endian. Decoders never trust a length: every
// read is bounds-checked against the bytes given.
//
// Thread-safety: pure functions.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "tollgate/crypto.hpp"

namespace tollgate::journal_format {

using hash = std::array<std::uint8_t, crypto::sha256_size>;
using journal_id = std::array<std::uint8_t, 16>;
using public_key = std::array<std::uint8_t, crypto::ed25519_public_key_size>;
using signature = std::array<std::uint8_t, crypto::ed25519_signature_size>;

inline constexpr std::array<std::uint8_t, 8> magic = {0x89, 'T', 'G', 'J', '\r', '\n', 0x1A, '\n'};
inline constexpr std::uint16_t format_version = 1;
inline constexpr std::size_t header_size = 128;
inline constexpr std::size_t frame_prefix_size = 8;  // length + CRC
inline constexpr std::size_t common_size = 64;
inline constexpr std::size_t event_fixed_size = 132;
inline constexpr std::size_t checkpoint_size = 136;
inline constexpr std::uint32_t min_body_size = common_size;
inline constexpr std::uint32_t max_body_size = 1u << 20;
inline constexpr std::size_t max_account_size = 255;
inline constexpr std::size_t checkpoint_message_size = 88;

enum class record_type : std::uint8_t { event = 1, checkpoint = 2 };

// Event flags.
inline constexpr std::uint32_t event_payload_stored = 1u << 0;
inline constexpr std::uint32_t event_digest_set = 1u << 1;
inline constexpr std::uint32_t event_known_flags = event_payload_stored | event_digest_set;
// Checkpoint flags.
inline constexpr std::uint32_t checkpoint_seal = 1u << 0;
inline constexpr std::uint32_t checkpoint_close = 1u << 1;
inline constexpr std::uint32_t checkpoint_known_flags = checkpoint_seal | checkpoint_close;

// Event kinds (docs/journal-format.md, "Event kinds").
enum class event_kind : std::uint16_t {
  decision = 1,
  breaker_transition = 2,
  config_change = 3,
  key_revocation = 4,
  kill_switch = 5,
  risk_check = 6,
  records_dropped = 0xFF00,  // written by the journal
  tail_truncated = 0xFF01,   // written by the journal on recovery
};
inline constexpr std::uint16_t host_kind_first = 0x8000;
inline constexpr std::uint16_t host_kind_last = 0xFEFF;

// Whether a kind may appear in a version-1 journal.
bool kind_known(std::uint16_t kind) noexcept;
// A kind's name ("decision", ..., "host:0x8001"), for dumps and filters.
std::string kind_name(std::uint16_t kind);
// The inverse of kind_name (also accepts a decimal or 0x number).
bool parse_kind(std::string_view name, std::uint16_t* kind) noexcept;

struct segment_header {
  journal_id id{};
  std::uint64_t segment = 0;
  std::uint64_t first_seq = 0;
  hash prev{};
  public_key key{};
  std::uint64_t created_ns = 0;
};

void encode_header(const segment_header& h, std::uint8_t out[header_size]) noexcept;
// InvalidArgument naming the field when the bytes are not a valid
// version-1 header (short, magic, version, size, reserved, CRC).
absl::Status decode_header(std::span<const std::uint8_t> bytes, segment_header* out);

// The chain value a journal starts from.
hash genesis(const journal_id& id) noexcept;

// The fields of an event record, as the writer encodes them.
struct event_fields {
  std::uint16_t kind = 0;
  std::uint32_t flags = 0;  // event_payload_stored | event_digest_set
  std::uint64_t seq = 0;
  std::uint64_t realtime_ns = 0;
  std::uint64_t monotonic_ns = 0;
  hash prev{};
  std::uint64_t config_version = 0;
  std::uint32_t route = 0;
  std::uint32_t venue = 0;
  std::uint32_t verdict = 0;
  std::uint32_t reason = 0;
  hash payload_digest{};
  std::string_view account;
  std::span<const std::uint8_t> inputs;
  std::span<const std::uint8_t> payload;  // stored only with event_payload_stored
};

std::size_t event_body_size(std::size_t account, std::size_t inputs,
                            std::size_t stored_payload) noexcept;
// Writes the body (event_body_size bytes) at out.
void encode_event_body(const event_fields& f, std::uint8_t* out) noexcept;

// The 88-byte message a checkpoint signs.
std::array<std::uint8_t, checkpoint_message_size> checkpoint_message(const journal_id& id,
                                                                     std::uint64_t seq,
                                                                     std::uint64_t realtime_ns,
                                                                     std::uint32_t flags,
                                                                     const hash& head) noexcept;
// Writes a checkpoint body (checkpoint_size bytes) at out.
void encode_checkpoint_body(std::uint64_t seq, std::uint64_t realtime_ns,
                            std::uint64_t monotonic_ns, const hash& prev, std::uint32_t flags,
                            const signature& sig, std::uint8_t* out) noexcept;

// Fills the 8-byte frame prefix in front of a body of n bytes at
// frame + frame_prefix_size.
void seal_frame(std::uint8_t* frame, std::uint32_t n) noexcept;

// A decoded record: views into the bytes it was decoded from.
struct record_view {
  record_type type = record_type::event;
  std::uint16_t kind = 0;
  std::uint32_t flags = 0;
  std::uint64_t seq = 0;
  std::uint64_t realtime_ns = 0;
  std::uint64_t monotonic_ns = 0;
  hash prev{};
  // Events.
  std::uint64_t config_version = 0;
  std::uint32_t route = 0;
  std::uint32_t venue = 0;
  std::uint32_t verdict = 0;
  std::uint32_t reason = 0;
  hash payload_digest{};
  std::string_view account;
  std::span<const std::uint8_t> inputs;
  std::span<const std::uint8_t> payload;
  // Checkpoints.
  std::uint32_t checkpoint_flags = 0;
  signature sig{};
  // The whole body (what the chain hashes) and the frame's size.
  std::span<const std::uint8_t> body;
  std::size_t frame_size = 0;
};

enum class frame_status {
  ok,
  incomplete,  // fewer bytes than the frame needs
  bad_length,  // length outside [min_body_size, max_body_size]
  bad_crc,
  bad_body,  // CRC fine, contents not a valid version-1 record
};

// Decodes the frame at the start of bytes. On bad_body, *why says what.
frame_status decode_frame(std::span<const std::uint8_t> bytes, record_view* out,
                          std::string* why = nullptr);
// Decodes a body whose frame was already checked.
bool decode_body(std::span<const std::uint8_t> body, record_view* out, std::string* why);

// The chain value after a record.
hash chain_next(std::span<const std::uint8_t> body) noexcept;

std::string segment_file_name(std::uint64_t segment);
// Parses "seg-<16 hex>.tgj"; false for anything else.
bool parse_segment_file_name(std::string_view name, std::uint64_t* segment) noexcept;

inline constexpr std::string_view manifest_name = "MANIFEST";
inline constexpr std::string_view manifest_tmp_name = "MANIFEST.tmp";

struct manifest_segment {
  std::uint64_t number = 0;
  bool sealed = false;
  std::uint64_t first_seq = 0;
  // Sealed segments only:
  std::uint64_t last_seq = 0;
  std::uint64_t bytes = 0;
  hash head{};
};

struct manifest {
  journal_id id{};
  public_key key{};
  std::uint64_t generation = 0;
  std::vector<manifest_segment> segments;
};

// The text of a manifest, signed with the 64-byte private key.
std::string encode_manifest(const manifest& m,
                            const std::uint8_t private_key[crypto::ed25519_private_key_size]);
// Parses a manifest and checks its signature against the key it names.
// InvalidArgument (syntax, order) or PermissionDenied (signature).
absl::StatusOr<manifest> decode_manifest(std::string_view text);

std::string to_hex(std::span<const std::uint8_t> bytes);
bool from_hex(std::string_view hex, std::span<std::uint8_t> out) noexcept;

// Little-endian loads and stores.
inline void put16(std::uint8_t* p, std::uint16_t v) noexcept {
  p[0] = static_cast<std::uint8_t>(v);
  p[1] = static_cast<std::uint8_t>(v >> 8);
}
inline void put32(std::uint8_t* p, std::uint32_t v) noexcept {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}
inline void put64(std::uint8_t* p, std::uint64_t v) noexcept {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}
inline std::uint16_t get16(const std::uint8_t* p) noexcept {
  return static_cast<std::uint16_t>(p[0] | (p[1] << 8));
}
inline std::uint32_t get32(const std::uint8_t* p) noexcept {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
inline std::uint64_t get64(const std::uint8_t* p) noexcept {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

}  // namespace tollgate::journal_format
