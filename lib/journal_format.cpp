// The audit journal's version-1 layout. See docs/journal-format.md.
#include "tollgate/journal_format.hpp"

#include <charconv>
#include <cstring>

#include "tollgate/crc32c.hpp"

namespace tollgate::journal_format {

bool kind_known(std::uint16_t kind) noexcept {
  return (kind >= 1 && kind <= 6) || (kind >= host_kind_first && kind <= host_kind_last) ||
         kind == static_cast<std::uint16_t>(event_kind::records_dropped) ||
         kind == static_cast<std::uint16_t>(event_kind::tail_truncated);
}

namespace {

struct kind_entry {
  std::uint16_t kind;
  std::string_view name;
};
constexpr kind_entry kind_names[] = {
    {1, "decision"},
    {2, "breaker_transition"},
    {3, "config_change"},
    {4, "key_revocation"},
    {5, "kill_switch"},
    {6, "risk_check"},
    {0xFF00, "records_dropped"},
    {0xFF01, "tail_truncated"},
};

}  // namespace

std::string kind_name(std::uint16_t kind) {
  for (const auto& e : kind_names) {
    if (e.kind == kind) return std::string(e.name);
  }
  char buf[24];
  const char* space = kind >= host_kind_first && kind <= host_kind_last ? "host:"
                      : kind > host_kind_last                           ? "reserved:"
                                                                        : "unknown:";
  std::snprintf(buf, sizeof buf, "%s0x%04x", space, static_cast<unsigned>(kind));
  return buf;
}

bool parse_kind(std::string_view name, std::uint16_t* kind) noexcept {
  for (const auto& e : kind_names) {
    if (e.name == name) {
      *kind = e.kind;
      return true;
    }
  }
  if (name.starts_with("host:")) name.remove_prefix(5);
  int base = 10;
  if (name.starts_with("0x") || name.starts_with("0X")) {
    name.remove_prefix(2);
    base = 16;
  }
  unsigned v = 0;
  auto [p, ec] = std::from_chars(name.data(), name.data() + name.size(), v, base);
  if (ec != std::errc() || p != name.data() + name.size() || v > 0xFFFF || name.empty()) {
    return false;
  }
  *kind = static_cast<std::uint16_t>(v);
  return true;
}

void encode_header(const segment_header& h, std::uint8_t out[header_size]) noexcept {
  std::memset(out, 0, header_size);
  std::memcpy(out, magic.data(), magic.size());
  put16(out + 8, format_version);
  put16(out + 10, static_cast<std::uint16_t>(header_size));
  put32(out + 12, 0);
  std::memcpy(out + 16, h.id.data(), h.id.size());
  put64(out + 32, h.segment);
  put64(out + 40, h.first_seq);
  std::memcpy(out + 48, h.prev.data(), h.prev.size());
  std::memcpy(out + 80, h.key.data(), h.key.size());
  put64(out + 112, h.created_ns);
  put32(out + 120, 0);
  put32(out + 124, crc32c(out, 124));
}

absl::Status decode_header(std::span<const std::uint8_t> b, segment_header* out) {
  if (b.size() < header_size) {
    return absl::InvalidArgumentError("segment header: " + std::to_string(b.size()) +
                                      " bytes, 128 needed");
  }
  const std::uint8_t* p = b.data();
  if (std::memcmp(p, magic.data(), magic.size()) != 0) {
    return absl::InvalidArgumentError("segment header: bad magic");
  }
  if (get32(p + 124) != crc32c(p, 124)) {
    return absl::InvalidArgumentError("segment header: CRC mismatch");
  }
  if (get16(p + 8) != format_version) {
    return absl::InvalidArgumentError("segment header: format version " +
                                      std::to_string(get16(p + 8)) + " (this reader knows 1)");
  }
  if (get16(p + 10) != header_size) {
    return absl::InvalidArgumentError("segment header: header size " +
                                      std::to_string(get16(p + 10)));
  }
  if (get32(p + 12) != 0 || get32(p + 120) != 0) {
    return absl::InvalidArgumentError("segment header: reserved field not zero");
  }
  std::memcpy(out->id.data(), p + 16, out->id.size());
  out->segment = get64(p + 32);
  out->first_seq = get64(p + 40);
  std::memcpy(out->prev.data(), p + 48, out->prev.size());
  std::memcpy(out->key.data(), p + 80, out->key.size());
  out->created_ns = get64(p + 112);
  return absl::OkStatus();
}

hash genesis(const journal_id& id) noexcept {
  std::uint8_t m[32];
  std::memcpy(m, "tollgate-genesis", 16);
  std::memcpy(m + 16, id.data(), 16);
  hash h;
  crypto::sha256(m, sizeof m, h.data());
  return h;
}

std::size_t event_body_size(std::size_t account, std::size_t inputs,
                            std::size_t stored_payload) noexcept {
  return event_fixed_size + account + inputs + stored_payload;
}

namespace {

void encode_common(std::uint8_t* out, record_type type, std::uint16_t kind, std::uint32_t flags,
                   std::uint64_t seq, std::uint64_t realtime_ns, std::uint64_t monotonic_ns,
                   const hash& prev) noexcept {
  out[0] = static_cast<std::uint8_t>(type);
  out[1] = 0;
  put16(out + 2, kind);
  put32(out + 4, flags);
  put64(out + 8, seq);
  put64(out + 16, realtime_ns);
  put64(out + 24, monotonic_ns);
  std::memcpy(out + 32, prev.data(), prev.size());
}

}  // namespace

void encode_event_body(const event_fields& f, std::uint8_t* out) noexcept {
  encode_common(out, record_type::event, f.kind, f.flags, f.seq, f.realtime_ns, f.monotonic_ns,
                f.prev);
  const std::size_t stored = (f.flags & event_payload_stored) != 0 ? f.payload.size() : 0;
  put64(out + 64, f.config_version);
  put32(out + 72, f.route);
  put32(out + 76, f.venue);
  put32(out + 80, f.verdict);
  put32(out + 84, f.reason);
  std::memcpy(out + 88, f.payload_digest.data(), f.payload_digest.size());
  put16(out + 120, static_cast<std::uint16_t>(f.account.size()));
  put16(out + 122, 0);
  put32(out + 124, static_cast<std::uint32_t>(f.inputs.size()));
  put32(out + 128, static_cast<std::uint32_t>(stored));
  std::uint8_t* q = out + event_fixed_size;
  if (!f.account.empty()) std::memcpy(q, f.account.data(), f.account.size());
  q += f.account.size();
  if (!f.inputs.empty()) std::memcpy(q, f.inputs.data(), f.inputs.size());
  q += f.inputs.size();
  if (stored > 0) std::memcpy(q, f.payload.data(), stored);
}

std::array<std::uint8_t, checkpoint_message_size> checkpoint_message(const journal_id& id,
                                                                     std::uint64_t seq,
                                                                     std::uint64_t realtime_ns,
                                                                     std::uint32_t flags,
                                                                     const hash& head) noexcept {
  std::array<std::uint8_t, checkpoint_message_size> m{};
  std::memcpy(m.data(), "tollgate-ckpt-v1", 16);
  std::memcpy(m.data() + 16, id.data(), 16);
  put64(m.data() + 32, seq);
  put64(m.data() + 40, realtime_ns);
  put32(m.data() + 48, flags);
  put32(m.data() + 52, 0);
  std::memcpy(m.data() + 56, head.data(), head.size());
  return m;
}

void encode_checkpoint_body(std::uint64_t seq, std::uint64_t realtime_ns,
                            std::uint64_t monotonic_ns, const hash& prev, std::uint32_t flags,
                            const signature& sig, std::uint8_t* out) noexcept {
  encode_common(out, record_type::checkpoint, 0, 0, seq, realtime_ns, monotonic_ns, prev);
  put32(out + 64, flags);
  put32(out + 68, 0);
  std::memcpy(out + 72, sig.data(), sig.size());
}

void seal_frame(std::uint8_t* frame, std::uint32_t n) noexcept {
  put32(frame, n);
  std::uint32_t c = crc32c(frame, 4);
  c = crc32c_extend(c, frame + frame_prefix_size, n);
  put32(frame + 4, c);
}

bool decode_body(std::span<const std::uint8_t> body, record_view* r, std::string* why) {
  auto fail = [&](const char* m) {
    if (why != nullptr) *why = m;
    return false;
  };
  const std::uint8_t* p = body.data();
  const std::size_t n = body.size();
  if (n < common_size) return fail("body shorter than the common part");
  if (p[1] != 0) return fail("reserved byte not zero");
  r->kind = get16(p + 2);
  r->flags = get32(p + 4);
  r->seq = get64(p + 8);
  r->realtime_ns = get64(p + 16);
  r->monotonic_ns = get64(p + 24);
  std::memcpy(r->prev.data(), p + 32, 32);
  r->body = body;
  r->account = {};
  r->inputs = {};
  r->payload = {};
  r->checkpoint_flags = 0;
  if (p[0] == static_cast<std::uint8_t>(record_type::event)) {
    r->type = record_type::event;
    if (n < event_fixed_size) return fail("event body shorter than its fixed part");
    if (!kind_known(r->kind)) return fail("unknown event kind");
    if ((r->flags & ~event_known_flags) != 0) return fail("unknown event flag");
    r->config_version = get64(p + 64);
    r->route = get32(p + 72);
    r->venue = get32(p + 76);
    r->verdict = get32(p + 80);
    r->reason = get32(p + 84);
    std::memcpy(r->payload_digest.data(), p + 88, 32);
    const std::size_t a = get16(p + 120);
    if (get16(p + 122) != 0) return fail("reserved field not zero");
    const std::size_t i = get32(p + 124);
    const std::size_t s = get32(p + 128);
    if (a > max_account_size) return fail("account longer than 255 bytes");
    if (event_fixed_size + a + i + s != n) return fail("event field lengths do not add up");
    if (((r->flags & event_payload_stored) != 0) != (s > 0)) {
      return fail("payload flag and payload length disagree");
    }
    if ((r->flags & event_payload_stored) != 0 && (r->flags & event_digest_set) == 0) {
      return fail("stored payload without its digest");
    }
    if ((r->flags & event_digest_set) == 0) {
      for (std::uint8_t b : r->payload_digest) {
        if (b != 0) return fail("payload digest set without its flag");
      }
    }
    const std::uint8_t* q = p + event_fixed_size;
    r->account = std::string_view(reinterpret_cast<const char*>(q), a);
    r->inputs = body.subspan(event_fixed_size + a, i);
    r->payload = body.subspan(event_fixed_size + a + i, s);
    if (s > 0) {
      hash d;
      crypto::sha256(r->payload.data(), r->payload.size(), d.data());
      if (d != r->payload_digest) return fail("stored payload does not match its digest");
    }
    return true;
  }
  if (p[0] == static_cast<std::uint8_t>(record_type::checkpoint)) {
    r->type = record_type::checkpoint;
    if (n != checkpoint_size) return fail("checkpoint body is not 136 bytes");
    if (r->kind != 0 || r->flags != 0) return fail("checkpoint kind or flags not zero");
    r->checkpoint_flags = get32(p + 64);
    if ((r->checkpoint_flags & ~checkpoint_known_flags) != 0) {
      return fail("unknown checkpoint flag");
    }
    if ((r->checkpoint_flags & checkpoint_close) != 0 &&
        (r->checkpoint_flags & checkpoint_seal) == 0) {
      return fail("close checkpoint without seal");
    }
    if (get32(p + 68) != 0) return fail("reserved field not zero");
    std::memcpy(r->sig.data(), p + 72, 64);
    return true;
  }
  return fail("unknown record type");
}

frame_status decode_frame(std::span<const std::uint8_t> b, record_view* out, std::string* why) {
  if (b.size() < frame_prefix_size) return frame_status::incomplete;
  const std::uint32_t n = get32(b.data());
  if (n < min_body_size || n > max_body_size) return frame_status::bad_length;
  if (b.size() - frame_prefix_size < n) return frame_status::incomplete;
  std::uint32_t c = crc32c(b.data(), 4);
  c = crc32c_extend(c, b.data() + frame_prefix_size, n);
  if (c != get32(b.data() + 4)) return frame_status::bad_crc;
  if (!decode_body(b.subspan(frame_prefix_size, n), out, why)) return frame_status::bad_body;
  out->frame_size = frame_prefix_size + n;
  return frame_status::ok;
}

hash chain_next(std::span<const std::uint8_t> body) noexcept {
  hash h;
  crypto::sha256(body.data(), body.size(), h.data());
  return h;
}

std::string segment_file_name(std::uint64_t segment) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "seg-%016llx.tgj", static_cast<unsigned long long>(segment));
  return buf;
}

bool parse_segment_file_name(std::string_view name, std::uint64_t* segment) noexcept {
  if (name.size() != 24 || !name.starts_with("seg-") || !name.ends_with(".tgj")) return false;
  std::uint64_t v = 0;
  for (char ch : name.substr(4, 16)) {
    int d = 0;
    if (ch >= '0' && ch <= '9') {
      d = ch - '0';
    } else if (ch >= 'a' && ch <= 'f') {
      d = ch - 'a' + 10;
    } else {
      return false;
    }
    v = (v << 4) | static_cast<std::uint64_t>(d);
  }
  *segment = v;
  return true;
}

std::string to_hex(std::span<const std::uint8_t> bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string s;
  s.reserve(bytes.size() * 2);
  for (std::uint8_t b : bytes) {
    s.push_back(digits[b >> 4]);
    s.push_back(digits[b & 15]);
  }
  return s;
}

bool from_hex(std::string_view hex, std::span<std::uint8_t> out) noexcept {
  if (hex.size() != out.size() * 2) return false;
  auto nib = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  for (std::size_t i = 0; i < out.size(); ++i) {
    const int hi = nib(hex[2 * i]);
    const int lo = nib(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<std::uint8_t>(hi * 16 + lo);
  }
  return true;
}

std::string encode_manifest(const manifest& m,
                            const std::uint8_t private_key[crypto::ed25519_private_key_size]) {
  std::string s = "tollgate-journal-manifest 1\n";
  s += "journal " + to_hex(m.id) + "\n";
  s += "public_key " + to_hex(m.key) + "\n";
  s += "generation " + std::to_string(m.generation) + "\n";
  for (const auto& g : m.segments) {
    s += "segment " + std::to_string(g.number);
    if (g.sealed) {
      s += " sealed " + std::to_string(g.first_seq) + " " + std::to_string(g.last_seq) + " " +
           std::to_string(g.bytes) + " " + to_hex(g.head) + "\n";
    } else {
      s += " open " + std::to_string(g.first_seq) + "\n";
    }
  }
  signature sig{};
  crypto::ed25519_sign(s.data(), s.size(), private_key, sig.data());
  s += "signature " + to_hex(sig) + "\n";
  return s;
}

namespace {

std::vector<std::string_view> split(std::string_view line) {
  std::vector<std::string_view> f;
  std::size_t i = 0;
  while (i <= line.size()) {
    const std::size_t j = line.find(' ', i);
    const std::size_t end = j == std::string_view::npos ? line.size() : j;
    f.push_back(line.substr(i, end - i));
    if (j == std::string_view::npos) break;
    i = j + 1;
  }
  return f;
}

bool parse_u64(std::string_view s, std::uint64_t* v) {
  if (s.empty() || (s.size() > 1 && s[0] == '0')) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *v);
  return ec == std::errc() && p == s.data() + s.size();
}

}  // namespace

absl::StatusOr<manifest> decode_manifest(std::string_view text) {
  manifest m;
  const std::size_t sig_at = text.rfind("\nsignature ");
  if (sig_at == std::string_view::npos) {
    return absl::InvalidArgumentError("manifest: no signature line");
  }
  const std::string_view signed_part = text.substr(0, sig_at + 1);
  std::string_view sig_line = text.substr(sig_at + 1);
  if (!sig_line.ends_with("\n")) return absl::InvalidArgumentError("manifest: truncated");
  sig_line.remove_suffix(1);
  signature sig{};
  if (!from_hex(sig_line.substr(10), sig)) {
    return absl::InvalidArgumentError("manifest: malformed signature");
  }
  std::size_t line_no = 0;
  std::size_t pos = 0;
  bool have_id = false;
  bool have_key = false;
  bool have_generation = false;
  while (pos < signed_part.size()) {
    const std::size_t nl = signed_part.find('\n', pos);
    const std::string_view line = signed_part.substr(pos, nl - pos);
    pos = nl + 1;
    ++line_no;
    auto bad = [&](const std::string& why) {
      return absl::InvalidArgumentError("manifest line " + std::to_string(line_no) + ": " + why);
    };
    const auto f = split(line);
    if (line_no == 1) {
      if (line != "tollgate-journal-manifest 1") return bad("not a version-1 manifest");
      continue;
    }
    if (f[0] == "journal" && f.size() == 2 && !have_id) {
      if (!from_hex(f[1], m.id)) return bad("malformed journal id");
      have_id = true;
    } else if (f[0] == "public_key" && f.size() == 2 && !have_key) {
      if (!from_hex(f[1], m.key)) return bad("malformed public key");
      have_key = true;
    } else if (f[0] == "generation" && f.size() == 2 && !have_generation) {
      if (!parse_u64(f[1], &m.generation)) return bad("malformed generation");
      have_generation = true;
    } else if (f[0] == "segment" && f.size() >= 4) {
      manifest_segment g;
      if (!parse_u64(f[1], &g.number) || !parse_u64(f[3], &g.first_seq)) {
        return bad("malformed segment line");
      }
      if (f[2] == "open" && f.size() == 4) {
        g.sealed = false;
      } else if (f[2] == "sealed" && f.size() == 7) {
        g.sealed = true;
        if (!parse_u64(f[4], &g.last_seq) || !parse_u64(f[5], &g.bytes) ||
            !from_hex(f[6], g.head)) {
          return bad("malformed sealed segment line");
        }
        if (g.last_seq < g.first_seq) return bad("last sequence before first");
      } else {
        return bad("malformed segment line");
      }
      if (!m.segments.empty()) {
        const auto& p = m.segments.back();
        if (!p.sealed) return bad("a segment follows an open one");
        if (g.number != p.number + 1) return bad("segment numbers not consecutive");
        if (g.first_seq != p.last_seq + 1) return bad("sequence not continuing");
      } else if (g.number != 1 || g.first_seq != 1) {
        return bad("the first segment must be number 1 starting at sequence 1");
      }
      m.segments.push_back(g);
    } else {
      return bad("unexpected line");
    }
  }
  if (!have_id || !have_key || !have_generation || m.segments.empty()) {
    return absl::InvalidArgumentError(
        "manifest: missing journal, public_key, generation or segment");
  }
  if (!crypto::ed25519_verify(signed_part.data(), signed_part.size(), sig.data(), m.key.data())) {
    return absl::PermissionDeniedError("manifest: signature does not verify");
  }
  return m;
}

}  // namespace tollgate::journal_format
