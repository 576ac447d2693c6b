// tollgate::route_table and tollgate::router - which route a request takes.
//
// What it decides: the route of a request (method, host, path, headers):
// its route id, its target (an upstream id, and optionally a venue set) and
// the path parameters it captured, or why there is none.
//
// Model: rules are compiled once into an immutable table: a segment trie of
// path patterns per host pattern. Path patterns are "/"-separated segments,
// each a literal, a {param} (exactly one segment) or, last, a {*rest} (one
// or more segments); a rule of kind prefix matches its pattern and anything
// below it (segment-aligned: "/api" matches "/api" and "/api/x", never
// "/apix"). Header predicates test a header for presence, an exact value or
// a value prefix, optionally inverted. docs/routing.md is the full
// reference; its two load-bearing rules are:
//
// Precedence, when several rules match: the most specific wins, compared
// in this order, and declared priority (higher first) breaks the ties that
// remain; rules still tied go by declaration order (earlier first).
//   1. host: exact > "*.suffix" (longer suffix first) > any host;
//   2. path, segment by segment from the left: literal > {param} > {*rest}
//      > the end of a prefix rule; a rule that ends where the path ends
//      beats a prefix rule ending there;
//   3. methods: a rule naming methods > any method (fewer named first);
//   4. more header predicates > fewer;
//   5. priority, then declaration order.
//
// Normalisation: a request path is matched in one normal form, so two
// spellings of a path cannot reach different routes. Matching stops at '?'
// or '#'; empty segments ("//", a trailing "/") are dropped; %XX escapes are
// decoded (a bad escape, a decoded NUL or control byte is bad_encoding);
// then "." segments are dropped and ".." removes the segment before it (never
// above the root), so "%2e%2e" is "..". "%2F", "%5C" and a literal "\" are
// refused as ambiguous_separator: an upstream might read them as "/".
// normalize_path() writes the normal form so the host can forward exactly
// what was matched. Hosts are matched without port, lower-cased, without a
// trailing dot.
//
// Captured parameters are (offset, length) views into the caller's path, in
// its raw spelling (not decoded; a {*rest} capture spans the raw text of
// its segments, dot segments included).
//
// Thread-safety: a route_table is immutable; match() may run on any number
// of threads, allocates nothing, takes no lock and uses bounded stack.
// router publishes a new table with read-copy-update: matches in progress
// finish on the table they started with; publish() returns once no thread
// can still be reading the old table, which is then released.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "tollgate/detail/counters.hpp"
#include "tollgate/detail/hash.hpp"
#include "tollgate/detail/rcu.hpp"
#include "tollgate/venue.hpp"

namespace tollgate {

enum class path_kind : std::uint32_t { exact = 0, prefix = 1 };
enum class header_op : std::uint32_t { present = 0, exact = 1, prefix = 2 };

enum class route_status : std::int32_t {
  matched = 0,
  no_route = 1,
  method_not_allowed = 2,   // a rule matched all but the method (HTTP 405)
  bad_encoding = 3,         // a bad %XX escape, a NUL or control byte
  ambiguous_separator = 4,  // %2F, %5C or "\" in the path
  path_too_long = 5,        // more than max_path_bytes before '?' / '#'
  path_not_absolute = 6,    // empty, or not starting with '/'
  bad_host = 7,             // a host that is too long or has characters no host has
  path_too_deep = 8,        // more than max_segments segments
};

inline const char* route_status_name(route_status s) noexcept {
  switch (s) {
    case route_status::matched:
      return "matched";
    case route_status::no_route:
      return "no_route";
    case route_status::method_not_allowed:
      return "method_not_allowed";
    case route_status::bad_encoding:
      return "bad_encoding";
    case route_status::ambiguous_separator:
      return "ambiguous_separator";
    case route_status::path_too_long:
      return "path_too_long";
    case route_status::path_not_absolute:
      return "path_not_absolute";
    case route_status::bad_host:
      return "bad_host";
    case route_status::path_too_deep:
      return "path_too_deep";
  }
  return "unknown";
}

struct header_predicate {
  std::string name;   // matched case-insensitively
  std::string value;  // exact / prefix: compared byte for byte
  header_op op = header_op::present;
  bool invert = false;  // true: the rule needs the predicate to be false
};

inline constexpr std::uint32_t no_venue_set = 0xffffffffu;

struct route_rule {
  std::uint32_t route_id = 0;
  std::vector<std::string> methods;  // empty: any method; case-sensitive tokens
  std::string host;                  // empty: any; "api.x.com"; "*.x.com"
  std::string path = "/";
  path_kind kind = path_kind::exact;
  std::vector<header_predicate> headers;
  std::int32_t priority = 0;
  std::uint32_t target = 0;                // the host's upstream id
  std::uint32_t venue_set = no_venue_set;  // index into the table's venue sets
};

struct header_view {
  std::string_view name;
  std::string_view value;
};

struct route_request {
  std::string_view method;
  std::string_view host;  // may carry ":port"; empty matches any-host rules only
  std::string_view path;  // the request target; matching stops at '?' or '#'
  const header_view* headers = nullptr;
  std::size_t header_count = 0;
};

// Only the first param_count entries of route_match::params are written.
struct route_param {
  std::uint32_t offset;  // into route_request::path
  std::uint32_t length;
};

inline constexpr std::size_t max_route_params = 16;

struct route_match {
  route_status status = route_status::no_route;
  std::uint32_t rule_index = 0;  // position of the rule in the build list
  std::uint32_t route_id = 0;
  std::uint32_t target = 0;
  std::uint32_t venue_set = no_venue_set;
  std::uint32_t param_count = 0;
  route_param params[max_route_params];
  bool ok() const noexcept { return status == route_status::matched; }
};

struct route_decision {
  route_match match;
  venue_pick venue;  // ok only when the route names a venue set with an eligible venue
};

namespace detail {

inline constexpr std::size_t max_path_bytes = 8192;
inline constexpr std::size_t max_segments = 128;
inline constexpr std::size_t max_host_bytes = 255;

struct path_segment {
  const char* text;  // decoded bytes: into the caller's path when nothing was escaped
  std::uint32_t len;
  std::uint32_t raw_off;  // the raw spelling in the caller's path
  std::uint32_t raw_len;
  std::uint64_t head;  // segment_head(text, len)
};

// The first min(8, n) bytes of p (n >= 1) as one word. For n <= 8, equal
// words and equal lengths mean equal bytes (every byte of 1..7 is read), so
// most label comparisons are one integer compare. The reads are those of
// detail::load_tail, written out: calling it (even forced inline) costs
// ~50 instructions per match here and changes hash_bytes' code elsewhere.
[[gnu::always_inline]] inline std::uint64_t segment_head(const char* p, std::size_t n) noexcept {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  std::uint64_t w;
  if (n >= 8) {
    std::memcpy(&w, u, 8);
  } else if (n >= 4) {
    std::uint32_t lo, hi;
    std::memcpy(&lo, u, 4);
    std::memcpy(&hi, u + n - 4, 4);
    w = (static_cast<std::uint64_t>(hi) << 32) | lo;
  } else {
    w = (static_cast<std::uint64_t>(u[0]) << 16) | (static_cast<std::uint64_t>(u[n >> 1]) << 8) |
        u[n - 1];
  }
  return w;
}

inline int hex_value(unsigned char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Byte classes for the path scanner: one table load per byte.
enum : unsigned char { pc_plain, pc_slash, pc_escape, pc_end, pc_bad, pc_backslash };
struct path_classes {
  unsigned char c[256];
  constexpr path_classes() : c() {
    for (int i = 0; i < 0x20; ++i) c[i] = pc_bad;
    c[0x7f] = pc_bad;
    c[static_cast<unsigned char>('/')] = pc_slash;
    c[static_cast<unsigned char>('%')] = pc_escape;
    c[static_cast<unsigned char>('?')] = pc_end;
    c[static_cast<unsigned char>('#')] = pc_end;
    c[static_cast<unsigned char>('\\')] = pc_backslash;
  }
};
inline constexpr path_classes path_class{};

// Bit i set: byte p[i] of this 16-byte chunk is not pc_plain.
inline std::uint32_t special_bytes(const char* p) noexcept {
#if defined(__SSE2__)
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  __m128i m =
      _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('/')), _mm_cmpeq_epi8(v, _mm_set1_epi8('%')));
  m = _mm_or_si128(m, _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('?')),
                                   _mm_cmpeq_epi8(v, _mm_set1_epi8('#'))));
  m = _mm_or_si128(m, _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('\\')),
                                   _mm_cmpeq_epi8(v, _mm_set1_epi8(0x7f))));
  // Unsigned v <= 0x1f: min(v, 0x1f) == v.
  const __m128i control_max = _mm_set1_epi8(0x1f);
  m = _mm_or_si128(m, _mm_cmpeq_epi8(_mm_min_epu8(v, control_max), v));
  return static_cast<std::uint32_t>(_mm_movemask_epi8(m));
#else
  std::uint32_t bits = 0;
  for (int i = 0; i < 16; ++i) {
    if (path_class.c[static_cast<unsigned char>(p[i])] != pc_plain) bits |= 1u << i;
  }
  return bits;
#endif
}

// a[0, n) == b[0, n) for the short labels of a route table, without a call.
inline bool same_bytes(const char* a, const char* b, std::size_t n) noexcept {
  const auto* x = reinterpret_cast<const unsigned char*>(a);
  const auto* y = reinterpret_cast<const unsigned char*>(b);
  if (n < 8) return load_tail(x, n) == load_tail(y, n);
  for (std::size_t i = 0; i + 8 < n; i += 8) {
    if (load_le64(x + i) != load_le64(y + i)) return false;
  }
  return load_le64(x + n - 8) == load_le64(y + n - 8);
}

// Appends a decoded segment of normal form: dropped when ".", popping the
// previous one when "..".
[[gnu::always_inline]] inline route_status keep_segment(const char* text, std::size_t len,
                                                        std::size_t start, std::size_t end,
                                                        path_segment* segs,
                                                        std::uint32_t& count) noexcept {
  if (text[0] == '.' && (len == 1 || (len == 2 && text[1] == '.'))) {
    if (len == 2 && count > 0) --count;
    return route_status::matched;
  }
  if (count == max_segments) return route_status::path_too_deep;
  segs[count++] =
      path_segment{text, static_cast<std::uint32_t>(len), static_cast<std::uint32_t>(start),
                   static_cast<std::uint32_t>(end - start), segment_head(text, len)};
  return route_status::matched;
}

// The same for a segment with %XX escapes, decoded into buf + used.
[[gnu::noinline]] inline route_status push_escaped_segment(const char* p, std::size_t start,
                                                           std::size_t end, path_segment* segs,
                                                           std::uint32_t& count, char* buf,
                                                           std::size_t& used) noexcept {
  char* out = buf + used;
  std::size_t w = 0;
  for (std::size_t j = start; j < end; ++j) {
    auto c = static_cast<unsigned char>(p[j]);
    if (c == '%') {
      if (j + 2 >= end) return route_status::bad_encoding;  // needs two hex digits
      const int hi = hex_value(static_cast<unsigned char>(p[j + 1]));
      const int lo = hex_value(static_cast<unsigned char>(p[j + 2]));
      if (hi < 0 || lo < 0) return route_status::bad_encoding;
      c = static_cast<unsigned char>(hi * 16 + lo);
      if (c == '/' || c == '\\') return route_status::ambiguous_separator;
      if (c < 0x20 || c == 0x7f) return route_status::bad_encoding;
      j += 2;
    }
    out[w++] = static_cast<char>(c);
  }
  used += w;
  return keep_segment(out, w, start, end, segs, count);
}

// The bits of special_bytes for p[base, n), fewer than 16 bytes, without
// reading outside p[0, n).
inline std::uint32_t special_tail(const char* p, std::size_t base, std::size_t n) noexcept {
  const std::size_t rem = n - base;
  if (n >= 16) return special_bytes(p + n - 16) >> (16 - rem);  // overlapping load
  std::uint32_t bits = 0;
  for (std::size_t i = 0; i < rem; ++i) {
    if (path_class.c[static_cast<unsigned char>(p[base + i])] != pc_plain) bits |= 1u << i;
  }
  return bits;
}

// Splits a path into its normal-form segments in one pass that visits only
// the bytes that are not plain, found 16 at a time. buf (max_path_bytes)
// holds the decoded text of escaped segments.
inline route_status split_path(std::string_view raw, path_segment* segs, std::uint32_t& count,
                               char* buf) noexcept {
  count = 0;
  if (raw.empty() || raw[0] != '/') return route_status::path_not_absolute;
  const char* p = raw.data();
  // Bytes past max_path_bytes are looked at only to report the length.
  const std::size_t n = raw.size() < max_path_bytes + 1 ? raw.size() : max_path_bytes + 1;
  std::size_t used = 0;
  std::size_t seg = 1;  // start of the current segment
  bool escaped = false;
  std::size_t end = n;
  for (std::size_t base = 0; base < n && end == n; base += 16) {
    const std::uint32_t chunk = base + 16 <= n ? special_bytes(p + base) : special_tail(p, base, n);
    std::uint32_t bits = chunk;
    for (; bits != 0; bits &= bits - 1) {
      const std::size_t at = base + static_cast<std::size_t>(__builtin_ctz(bits));
      switch (path_class.c[static_cast<unsigned char>(p[at])]) {
        case pc_slash:
          if (at > seg) {
            const route_status st = escaped
                                        ? push_escaped_segment(p, seg, at, segs, count, buf, used)
                                        : keep_segment(p + seg, at - seg, seg, at, segs, count);
            if (st != route_status::matched) return st;
          }
          seg = at + 1;
          escaped = false;
          break;
        case pc_escape:
          escaped = true;
          break;
        case pc_end:
          end = at;
          bits = 1;  // leave both loops
          break;
        case pc_bad:
          return route_status::bad_encoding;
        case pc_backslash:
          return route_status::ambiguous_separator;
        default:
          break;
      }
    }
  }
  // Ran into the byte limit rather than the end or a '?' / '#'.
  if (end == n && n > max_path_bytes) return route_status::path_too_long;
  if (end <= seg) return route_status::matched;
  return escaped ? push_escaped_segment(p, seg, end, segs, count, buf, used)
                 : keep_segment(p + seg, end - seg, seg, end, segs, count);
}

// RFC 3986 pchar minus '%': written as is in the normal form.
inline bool plain_pchar(unsigned char c) noexcept {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  switch (c) {
    case '-':
    case '.':
    case '_':
    case '~':
    case '!':
    case '$':
    case '&':
    case '\'':
    case '(':
    case ')':
    case '*':
    case '+':
    case ',':
    case ';':
    case '=':
    case ':':
    case '@':
      return true;
    default:
      return false;
  }
}

// Lower-cases a request host without port or trailing dot into out
// (max_host_bytes). Empty stays empty.
inline route_status normalize_host(std::string_view host, char* out, std::size_t& len) noexcept {
  len = 0;
  std::size_t end = host.size();
  if (!host.empty() && host[0] == '[') {
    const std::size_t close = host.find(']');
    if (close == std::string_view::npos) return route_status::bad_host;
    if (close + 1 < host.size() && host[close + 1] != ':') return route_status::bad_host;
    end = close + 1;
  } else if (const std::size_t colon = host.find(':'); colon != std::string_view::npos) {
    end = colon;
  }
  if (end > 0 && host[end - 1] == '.' && host[0] != '[') --end;
  if (end > max_host_bytes) return route_status::bad_host;
  for (std::size_t i = 0; i < end; ++i) {
    auto c = static_cast<unsigned char>(host[i]);
    if (c >= 'A' && c <= 'Z') c = static_cast<unsigned char>(c + 32);
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
                    c == '_' || c == '[' || c == ']' || c == ':';
    if (!ok) return route_status::bad_host;
    out[i] = static_cast<char>(c);
  }
  len = end;
  return route_status::matched;
}

inline bool iequals(std::string_view a, std::string_view lower) noexcept {
  if (a.size() != lower.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    auto c = static_cast<unsigned char>(a[i]);
    if (c >= 'A' && c <= 'Z') c = static_cast<unsigned char>(c + 32);
    if (c != static_cast<unsigned char>(lower[i])) return false;
  }
  return true;
}

}  // namespace detail

// Writes the normal form of a path ("/" + decoded segments joined by "/",
// each byte outside RFC 3986's pchar set re-escaped as %XX, upper-case hex;
// no query) into out[0..cap). Returns the status of normalisation and sets
// `written` to the length it needs; when that exceeds cap, nothing useful is
// in out and the status is still matched: the caller compares.
inline route_status normalize_path(std::string_view raw, char* out, std::size_t cap,
                                   std::size_t& written) noexcept {
  written = 0;
  detail::path_segment segs[detail::max_segments];
  char buf[detail::max_path_bytes];
  std::uint32_t n = 0;
  const route_status st = detail::split_path(raw, segs, n, buf);
  if (st != route_status::matched) return st;
  static constexpr char hex[] = "0123456789ABCDEF";
  std::size_t w = 0;
  auto put = [&](char c) noexcept {
    if (w < cap) out[w] = c;
    ++w;
  };
  if (n == 0) put('/');
  for (std::uint32_t s = 0; s < n; ++s) {
    put('/');
    for (std::uint32_t k = 0; k < segs[s].len; ++k) {
      const auto c = static_cast<unsigned char>(segs[s].text[k]);
      if (detail::plain_pchar(c)) {
        put(static_cast<char>(c));
      } else {
        put('%');
        put(hex[c >> 4]);
        put(hex[c & 15]);
      }
    }
  }
  written = w;
  return route_status::matched;
}

class route_table {
 public:
  static constexpr std::size_t max_rules = 1u << 20;
  static constexpr std::size_t max_methods = 32;
  static constexpr std::size_t max_headers_per_rule = 16;
  static constexpr std::size_t max_param_name = 64;

  // A build error names the rule (index into the list) and the reason.
  struct build_error {
    absl::Status status;
    std::size_t rule_index = npos_rule;  // npos_rule: not about one rule
  };
  static constexpr std::size_t npos_rule = ~std::size_t{0};

  static absl::StatusOr<std::shared_ptr<const route_table>> build(
      const std::vector<route_rule>& rules, std::vector<std::shared_ptr<venue_set>> venue_sets = {},
      build_error* error = nullptr) {
    auto t = std::shared_ptr<route_table>(new route_table());
    build_error e = t->compile(rules, std::move(venue_sets));
    if (!e.status.ok()) {
      if (error != nullptr) *error = e;
      return e.status;
    }
    return std::shared_ptr<const route_table>(std::move(t));
  }

  std::size_t rule_count() const noexcept { return rules_.size(); }
  std::size_t venue_set_count() const noexcept { return venue_sets_.size(); }
  const std::shared_ptr<venue_set>& venue_set_at(std::size_t i) const noexcept {
    return venue_sets_[i];
  }
  // The name of parameter i of a rule ("" when out of range).
  std::string_view param_name(std::size_t rule_index, std::size_t i) const noexcept {
    if (rule_index >= rules_.size() || i >= rules_[rule_index].param_names.size()) return {};
    return rules_[rule_index].param_names[i];
  }

  route_match match(const route_request& r) const noexcept {
    route_match m;
    detail::path_segment segs[detail::max_segments];
    char buf[detail::max_path_bytes];
    std::uint32_t n = 0;
    m.status = detail::split_path(r.path, segs, n, buf);
    if (m.status != route_status::matched) return m;
    m.status = route_status::no_route;
    route_request req = r;
    if (req.headers == nullptr) req.header_count = 0;
    walk_ctx c(req, segs, n, method_bit(r.method), &m);
    bool found = false;
    // The host is checked whatever the table holds, so publishing a table
    // never changes whether a malformed host is refused.
    char host[detail::max_host_bytes];
    std::size_t hl = 0;
    if (!r.host.empty()) {
      const route_status hs = detail::normalize_host(r.host, host, hl);
      if (hs != route_status::matched) {
        m.status = hs;
        return m;
      }
    }
    if (has_host_groups_ && hl != 0) {
      const std::string_view h(host, hl);
      if (auto it = exact_hosts_.find(absl::string_view(h.data(), h.size()));
          it != exact_hosts_.end()) {
        found = walk(groups_[it->second], 0, c);
      }
      // Longest suffix first: each '.' that is not the first character.
      for (std::size_t dot = h.find('.', 1);
           !found && has_wildcards_ && dot != std::string_view::npos; dot = h.find('.', dot + 1)) {
        if (auto it = wildcard_hosts_.find(absl::string_view(h.data() + dot, h.size() - dot));
            it != wildcard_hosts_.end()) {
          found = walk(groups_[it->second], 0, c);
        }
      }
    }
    if (!found && any_host_root_ != npos) found = walk(any_host_root_, 0, c);
    if (!found && c.method_mismatch) m.status = route_status::method_not_allowed;
    return m;
  }

  // match, then a venue from the route's venue set when it names one.
  route_decision route(const route_request& r, std::string_view key, std::uint64_t nonce,
                       std::uint64_t now_ns) const noexcept {
    route_decision d;
    d.match = match(r);
    if (d.match.ok() && d.match.venue_set != no_venue_set) {
      d.venue = venue_sets_[d.match.venue_set]->pick(key, nonce, now_ns);
    } else {
      d.venue.reason = venue_reason::no_venue_set;
    }
    return d;
  }

 private:
  static constexpr std::uint32_t npos = 0xffffffffu;
  static constexpr std::uint32_t big_node = 8;  // more static children: hashed

  struct node {
    std::uint32_t first_edge = 0, edge_count = 0;
    std::uint32_t slot_first = 0, slot_mask = 0;  // hashed edges: slots_ range
    std::uint32_t param_child = npos;
    std::uint32_t exact_first = 0, exact_count = 0;  // into leaf_rules_
    std::uint32_t rest_first = 0, rest_count = 0;    // {*rest} rules
    std::uint32_t prefix_first = 0, prefix_count = 0;
  };
  struct edge {
    std::string_view label;  // into labels_
    std::uint64_t head;      // segment_head(label)
    std::uint32_t child;
  };
  // The hashed-edge slot of a label: a multiply over its head and length.
  // Labels come from the rules and a probe ends at the first empty slot of
  // a table at most half full, so no request can lengthen a probe.
  static std::uint64_t edge_slot(std::uint64_t head, std::size_t len) noexcept {
    return detail::fold_mul(head ^ (len * 0x9e3779b97f4a7c15ULL), 0xd6e8feb86659fd93ULL);
  }
  static bool edge_is(const edge& e, const detail::path_segment& s) noexcept {
    return e.head == s.head && e.label.size() == s.len &&
           (s.len <= 8 || detail::same_bytes(e.label.data() + 8, s.text + 8, s.len - 8));
  }
  struct compiled_rule {
    std::uint32_t route_id, target, venue_set;
    std::uint32_t method_mask;  // 0: any
    std::uint32_t pred_first, pred_count;
    std::int32_t priority;
    std::uint32_t index;
    bool has_rest;
    std::vector<std::string> param_names;
  };
  struct pred {
    std::string name;  // lower-case
    std::string value;
    header_op op;
    bool invert;
  };
  struct walk_ctx {
    walk_ctx(const route_request& r, const detail::path_segment* s, std::uint32_t count,
             std::uint32_t method_bit, route_match* m) noexcept
        : req(r), segs(s), n(count), method(method_bit), out(m) {}
    const route_request& req;
    const detail::path_segment* segs;
    std::uint32_t n;
    std::uint32_t method;  // bit of the request method, 0 if unknown
    std::uint32_t params = 0;
    bool method_mismatch = false;
    route_match* out;
    std::uint32_t param_at[max_route_params];  // written before read, up to params
  };

  route_table() = default;

  std::uint32_t method_bit(std::string_view m) const noexcept {
    if (m.empty() || m.size() > 32) return 0;
    const std::uint64_t h = detail::segment_head(m.data(), m.size());
    for (std::size_t i = 0; i < methods_.size(); ++i) {
      if (method_heads_[i] == h && methods_[i].size() == m.size() &&
          (m.size() <= 8 ||
           detail::same_bytes(methods_[i].data() + 8, m.data() + 8, m.size() - 8))) {
        return std::uint32_t{1} << i;
      }
    }
    return 0;
  }

  [[gnu::always_inline]] std::uint32_t find_edge(const node& nd,
                                                 const detail::path_segment& s) const noexcept {
    if (nd.edge_count > big_node) {
      const std::uint32_t* slots = slots_.data() + nd.slot_first;
      for (std::uint64_t i = edge_slot(s.head, s.len) & nd.slot_mask;; i = (i + 1) & nd.slot_mask) {
        const std::uint32_t e = slots[i];
        if (e == npos) return npos;
        if (edge_is(edges_[e], s)) return edges_[e].child;
      }
    }
    const edge* e = edges_.data() + nd.first_edge;
    for (std::uint32_t k = 0; k < nd.edge_count; ++k) {
      if (edge_is(e[k], s)) return e[k].child;
    }
    return npos;
  }

  bool walk(std::uint32_t id, std::uint32_t depth, walk_ctx& c) const noexcept {
    const node& nd = nodes_[id];
    if (depth == c.n) {
      if (nd.exact_count != 0 && try_rules(nd.exact_first, nd.exact_count, depth, c)) return true;
    } else {
      if (nd.edge_count != 0) {
        const std::uint32_t child = find_edge(nd, c.segs[depth]);
        if (child != npos && walk(child, depth + 1, c)) return true;
      }
      if (nd.param_child != npos && c.params < max_route_params) {
        c.param_at[c.params++] = depth;
        if (walk(nd.param_child, depth + 1, c)) return true;
        --c.params;
      }
      if (nd.rest_count != 0 && try_rules(nd.rest_first, nd.rest_count, depth, c)) return true;
    }
    return nd.prefix_count != 0 && try_rules(nd.prefix_first, nd.prefix_count, depth, c);
  }

  bool headers_pass(const compiled_rule& rule, const route_request& r) const noexcept {
    for (std::uint32_t k = 0; k < rule.pred_count; ++k) {
      const pred& p = preds_[rule.pred_first + k];
      bool hit = false;
      for (std::size_t h = 0; h < r.header_count && !hit; ++h) {
        const header_view& hv = r.headers[h];
        if (!detail::iequals(hv.name, p.name)) continue;
        switch (p.op) {
          case header_op::present:
            hit = true;
            break;
          case header_op::exact:
            hit = hv.value == p.value;
            break;
          case header_op::prefix:
            hit = hv.value.substr(0, p.value.size()) == p.value;
            break;
        }
      }
      if (hit == p.invert) return false;
    }
    return true;
  }

  bool try_rules(std::uint32_t first, std::uint32_t count, std::uint32_t depth,
                 walk_ctx& c) const noexcept {
    for (std::uint32_t k = 0; k < count; ++k) {
      const compiled_rule& rule = rules_[leaf_rules_[first + k]];
      const bool method_ok = rule.method_mask == 0 || (rule.method_mask & c.method) != 0;
      if (!headers_pass(rule, c.req)) continue;
      if (!method_ok) {
        c.method_mismatch = true;
        continue;
      }
      route_match& m = *c.out;
      m.status = route_status::matched;
      m.rule_index = rule.index;
      m.route_id = rule.route_id;
      m.target = rule.target;
      m.venue_set = rule.venue_set;
      m.param_count = c.params;
      for (std::uint32_t p = 0; p < c.params; ++p) {
        const detail::path_segment& s = c.segs[c.param_at[p]];
        m.params[p] = route_param{s.raw_off, s.raw_len};
      }
      if (rule.has_rest && m.param_count < max_route_params) {
        const detail::path_segment& a = c.segs[depth];
        const detail::path_segment& b = c.segs[c.n - 1];
        m.params[m.param_count++] = route_param{a.raw_off, b.raw_off + b.raw_len - a.raw_off};
      }
      return true;
    }
    return false;
  }

  // ---- compilation (cold) ------------------------------------------------

  enum class seg_kind : std::uint8_t { literal, param, rest };
  struct parsed_seg {
    seg_kind kind;
    std::string text;  // literal: decoded; param/rest: the name
  };

  struct build_node {
    std::map<std::string, std::uint32_t> statics;
    std::uint32_t param = npos;
    std::vector<std::uint32_t> exact, rest, prefix;
  };

  static absl::Status rule_error(std::size_t i, const std::string& why) {
    return absl::InvalidArgumentError("rule " + std::to_string(i) + ": " + why);
  }

  static bool is_tchar(unsigned char c) noexcept {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    return std::strchr("!#$%&'*+-.^_`|~", c) != nullptr && c != 0;
  }

  static absl::Status parse_pattern(std::size_t i, const route_rule& r,
                                    std::vector<parsed_seg>& out) {
    const std::string& p = r.path;
    if (p.empty() || p[0] != '/') return rule_error(i, "path must start with '/'");
    if (p.size() > detail::max_path_bytes) return rule_error(i, "path longer than 8192 bytes");
    if (p == "/") return absl::OkStatus();
    std::size_t pos = 1;
    std::size_t params = 0;
    while (true) {
      const std::size_t slash = p.find('/', pos);
      const std::string_view seg = std::string_view(p).substr(
          pos, slash == std::string::npos ? std::string::npos : slash - pos);
      const std::string where =
          " (segment " + std::to_string(out.size() + 1) + " of \"" + p + "\")";
      if (seg.empty()) {
        return rule_error(i, "empty segment: \"//\" or a trailing \"/\"" + where);
      }
      if (seg.front() == '{' || seg.back() == '}' ||
          seg.find_first_of("{}") != std::string_view::npos) {
        if (seg.front() != '{' || seg.back() != '}' || seg.size() < 3 ||
            seg.substr(1, seg.size() - 2).find_first_of("{}") != std::string_view::npos) {
          return rule_error(
              i, "a parameter must be a whole segment written {name} or {*name}" + where);
        }
        const bool rest = seg[1] == '*';
        const std::string_view name = seg.substr(rest ? 2 : 1, seg.size() - (rest ? 3 : 2));
        if (name.empty() || name.size() > max_param_name) {
          return rule_error(i, "parameter name must be 1..64 characters" + where);
        }
        for (std::size_t k = 0; k < name.size(); ++k) {
          const char c = name[k];
          const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                          (k > 0 && c >= '0' && c <= '9');
          if (!ok) {
            return rule_error(i, "parameter name must match [A-Za-z_][A-Za-z0-9_]*" + where);
          }
        }
        for (const parsed_seg& prev : out) {
          if (prev.kind != seg_kind::literal && prev.text == name) {
            return rule_error(i, "parameter {" + std::string(name) + "} appears twice" + where);
          }
        }
        if (rest && slash != std::string::npos) {
          return rule_error(i, "{*" + std::string(name) + "} must be the last segment" + where);
        }
        if (rest && r.kind == path_kind::prefix) {
          return rule_error(i,
                            "a prefix rule cannot end in {*rest}: it already matches "
                            "everything below" +
                                where);
        }
        if (++params > max_route_params) {
          return rule_error(i, "more than 16 parameters" + where);
        }
        out.push_back({rest ? seg_kind::rest : seg_kind::param, std::string(name)});
      } else {
        // A literal, in the same normal form as request segments.
        detail::path_segment s[2];
        std::uint32_t n = 0;
        char buf[detail::max_path_bytes];
        const std::string probe = "/" + std::string(seg);
        const route_status st = detail::split_path(probe, s, n, buf);
        if (st != route_status::matched) {
          return rule_error(i, std::string("literal segment is not a valid path segment (") +
                                   route_status_name(st) + ")" + where);
        }
        if (n != 1 || (s[0].len == 1 && s[0].text[0] == '.') ||
            probe.find('?') != std::string::npos || probe.find('#') != std::string::npos) {
          return rule_error(i,
                            "\".\", \"..\", '?' and '#' cannot be literal segments: "
                            "normalisation removes them from request paths" +
                                where);
        }
        out.push_back({seg_kind::literal, std::string(s[0].text, s[0].len)});
      }
      if (out.size() > detail::max_segments) return rule_error(i, "more than 128 segments");
      if (slash == std::string::npos) break;
      pos = slash + 1;
    }
    return absl::OkStatus();
  }

  static absl::StatusOr<std::string> parse_host(std::size_t i, const std::string& host) {
    if (host.empty()) return std::string();
    std::string h;
    std::string_view body = host;
    if (body.substr(0, 2) == "*.") {
      h = ".";
      body.remove_prefix(2);
    } else if (body.find('*') != std::string_view::npos) {
      return rule_error(i, "host wildcard must be a leading \"*.\" (\"*.example.com\")");
    }
    if (body.empty() || body.size() > detail::max_host_bytes) {
      return rule_error(i, "host must be 1..255 characters");
    }
    if (body.back() == '.') return rule_error(i, "host must not end in '.'");
    for (char ch : body) {
      auto c = static_cast<unsigned char>(ch);
      if (c >= 'A' && c <= 'Z') c = static_cast<unsigned char>(c + 32);
      const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
                      c == '_' || c == '[' || c == ']' || c == ':';
      if (!ok) return rule_error(i, "host \"" + host + "\" has a character no host name has");
      h.push_back(static_cast<char>(c));
    }
    if (h[0] != '[' && h.find(':') != std::string::npos) {
      return rule_error(i, "host must not name a port: requests are matched without it");
    }
    return h;
  }

  // The identity of a rule for the duplicate check: everything matching
  // depends on, with parameter names erased.
  static std::string rule_signature(const std::string& host, path_kind kind,
                                    const std::vector<parsed_seg>& segs,
                                    std::vector<std::string> methods,
                                    const std::vector<pred>& preds, std::int32_t priority) {
    std::string s = host + '\x01' + std::to_string(static_cast<int>(kind)) + '\x01';
    for (const parsed_seg& g : segs) {
      s += g.kind == seg_kind::literal ? "L" + std::to_string(g.text.size()) + ":" + g.text
                                       : (g.kind == seg_kind::param ? "P" : "R");
      s += '\x02';
    }
    std::sort(methods.begin(), methods.end());
    for (const std::string& m : methods) s += m + '\x03';
    std::vector<std::string> ps;
    for (const pred& p : preds) {
      ps.push_back(p.name + '\x04' + std::to_string(static_cast<int>(p.op)) +
                   (p.invert ? "!" : "=") + std::to_string(p.value.size()) + ":" + p.value);
    }
    std::sort(ps.begin(), ps.end());
    for (const std::string& p : ps) s += p + '\x05';
    return s + std::to_string(priority);
  }

  build_error compile(const std::vector<route_rule>& rules,
                      std::vector<std::shared_ptr<venue_set>> sets) {
    if (rules.size() > max_rules) {
      return {absl::OutOfRangeError("a route table holds at most 1048576 rules"), npos_rule};
    }
    for (std::size_t s = 0; s < sets.size(); ++s) {
      if (!sets[s]) {
        return {absl::InvalidArgumentError("venue set " + std::to_string(s) + " is null"),
                npos_rule};
      }
    }
    venue_sets_ = std::move(sets);

    std::vector<build_node> bn;
    // Host pattern -> build root. "" is any host; ".x.com" is "*.x.com".
    std::map<std::string, std::uint32_t> roots;
    absl::flat_hash_map<std::string, std::size_t> seen;
    std::vector<std::vector<parsed_seg>> parsed(rules.size());
    std::vector<std::uint32_t> method_count(rules.size(), 0);
    rules_.reserve(rules.size());

    for (std::size_t i = 0; i < rules.size(); ++i) {
      const route_rule& r = rules[i];
      if (r.kind != path_kind::exact && r.kind != path_kind::prefix) {
        return {rule_error(i, "kind must be EXACT or PREFIX"), i};
      }
      if (absl::Status st = parse_pattern(i, r, parsed[i]); !st.ok()) return {st, i};
      absl::StatusOr<std::string> host = parse_host(i, r.host);
      if (!host.ok()) return {host.status(), i};
      if (r.venue_set != no_venue_set && r.venue_set >= venue_sets_.size()) {
        return {rule_error(i, "venue_set " + std::to_string(r.venue_set) + " does not exist (" +
                                  std::to_string(venue_sets_.size()) + " venue sets)"),
                i};
      }
      compiled_rule cr{r.route_id, r.target, r.venue_set, 0,
                       0,          0,        r.priority,  static_cast<std::uint32_t>(i),
                       false,      {}};
      for (std::size_t a = 0; a < r.methods.size(); ++a) {
        const std::string& m = r.methods[a];
        if (m.empty() || m.size() > 32 || !std::all_of(m.begin(), m.end(), [](char ch) {
              return is_tchar(static_cast<unsigned char>(ch));
            })) {
          return {rule_error(i, "method \"" + m + "\" is not a 1..32 character token"), i};
        }
        for (std::size_t b = 0; b < a; ++b) {
          if (r.methods[b] == m) return {rule_error(i, "method \"" + m + "\" listed twice"), i};
        }
        auto it = std::find(methods_.begin(), methods_.end(), m);
        if (it == methods_.end()) {
          if (methods_.size() == max_methods) {
            return {rule_error(i, "more than 32 distinct methods in one table"), i};
          }
          it = methods_.insert(methods_.end(), m);
          method_heads_.push_back(detail::segment_head(m.data(), m.size()));
        }
        cr.method_mask |= std::uint32_t{1} << (it - methods_.begin());
      }
      method_count[i] = static_cast<std::uint32_t>(r.methods.size());
      if (r.headers.size() > max_headers_per_rule) {
        return {rule_error(i, "more than 16 header predicates"), i};
      }
      std::vector<pred> ps;
      for (const header_predicate& hp : r.headers) {
        if (hp.name.empty() || hp.name.size() > 256 ||
            !std::all_of(hp.name.begin(), hp.name.end(),
                         [](char ch) { return is_tchar(static_cast<unsigned char>(ch)); })) {
          return {rule_error(i, "header name \"" + hp.name + "\" is not a 1..256 character token"),
                  i};
        }
        if (hp.op != header_op::present && hp.op != header_op::exact &&
            hp.op != header_op::prefix) {
          return {rule_error(i, "header op must be PRESENT, EXACT or PREFIX"), i};
        }
        if (hp.op == header_op::present && !hp.value.empty()) {
          return {rule_error(i, "header \"" + hp.name + "\": a PRESENT predicate takes no value"),
                  i};
        }
        std::string lower = hp.name;
        for (char& ch : lower) {
          if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch + 32);
        }
        ps.push_back({lower, hp.value, hp.op, hp.invert});
      }
      const std::string sig = rule_signature(*host, r.kind, parsed[i], r.methods, ps, r.priority);
      if (auto [it, fresh] = seen.emplace(sig, i); !fresh) {
        return {rule_error(i, "duplicates rule " + std::to_string(it->second) +
                                  ": both match the same requests with the same priority"),
                i};
      }
      cr.pred_first = static_cast<std::uint32_t>(preds_.size());
      cr.pred_count = static_cast<std::uint32_t>(ps.size());
      for (pred& p : ps) preds_.push_back(std::move(p));
      for (const parsed_seg& g : parsed[i]) {
        if (g.kind != seg_kind::literal) cr.param_names.push_back(g.text);
      }
      cr.has_rest = !parsed[i].empty() && parsed[i].back().kind == seg_kind::rest;
      const bool has_rest = cr.has_rest;
      rules_.push_back(std::move(cr));

      // Insert into the host's trie.
      auto [root_it, new_root] = roots.emplace(*host, 0);
      if (new_root) {
        root_it->second = static_cast<std::uint32_t>(bn.size());
        bn.emplace_back();
      }
      std::uint32_t at = root_it->second;
      for (const parsed_seg& g : parsed[i]) {
        if (g.kind == seg_kind::rest) break;
        std::uint32_t next;
        if (g.kind == seg_kind::literal) {
          auto f = bn[at].statics.find(g.text);
          if (f == bn[at].statics.end()) {
            next = static_cast<std::uint32_t>(bn.size());
            bn[at].statics.emplace(g.text, next);
            bn.emplace_back();
          } else {
            next = f->second;
          }
        } else {
          if (bn[at].param == npos) {
            bn[at].param = static_cast<std::uint32_t>(bn.size());
            bn.emplace_back();
          }
          next = bn[at].param;
        }
        at = next;
      }
      const auto idx = static_cast<std::uint32_t>(i);
      if (has_rest) {
        bn[at].rest.push_back(idx);
      } else if (r.kind == path_kind::prefix) {
        bn[at].prefix.push_back(idx);
      } else {
        bn[at].exact.push_back(idx);
      }
    }

    // Order each leaf list by the tie-breaks after the path.
    auto better = [&](std::uint32_t a, std::uint32_t b) {
      const compiled_rule& x = rules_[a];
      const compiled_rule& y = rules_[b];
      const bool xm = x.method_mask != 0, ym = y.method_mask != 0;
      if (xm != ym) return xm;
      if (xm && method_count[a] != method_count[b]) return method_count[a] < method_count[b];
      if (x.pred_count != y.pred_count) return x.pred_count > y.pred_count;
      if (x.priority != y.priority) return x.priority > y.priority;
      return x.index < y.index;
    };

    // Flatten breadth-first so a node's edges are contiguous.
    nodes_.resize(bn.size());
    std::uint32_t edge_total = 0;
    for (const build_node& b : bn) edge_total += static_cast<std::uint32_t>(b.statics.size());
    edges_.reserve(edge_total);
    std::size_t label_bytes = 0;
    for (const build_node& b : bn) {
      for (const auto& [label, child] : b.statics) label_bytes += label.size();
    }
    labels_.reserve(label_bytes);
    for (std::size_t id = 0; id < bn.size(); ++id) {
      build_node& b = bn[id];
      node& nd = nodes_[id];
      nd.first_edge = static_cast<std::uint32_t>(edges_.size());
      nd.edge_count = static_cast<std::uint32_t>(b.statics.size());
      for (const auto& [label, child] : b.statics) {
        const std::size_t off = labels_.size();
        labels_.append(label);
        edges_.push_back(edge{std::string_view(labels_.data() + off, label.size()),
                              detail::segment_head(label.data(), label.size()), child});
      }
      nd.param_child = b.param;
      auto place = [&](std::vector<std::uint32_t>& v, std::uint32_t& first, std::uint32_t& count) {
        std::stable_sort(v.begin(), v.end(), better);
        first = static_cast<std::uint32_t>(leaf_rules_.size());
        count = static_cast<std::uint32_t>(v.size());
        leaf_rules_.insert(leaf_rules_.end(), v.begin(), v.end());
      };
      place(b.exact, nd.exact_first, nd.exact_count);
      place(b.rest, nd.rest_first, nd.rest_count);
      place(b.prefix, nd.prefix_first, nd.prefix_count);
      if (nd.edge_count > big_node) {
        const auto cap = static_cast<std::uint32_t>(detail::next_pow2(2 * nd.edge_count));
        nd.slot_first = static_cast<std::uint32_t>(slots_.size());
        nd.slot_mask = cap - 1;
        slots_.resize(slots_.size() + cap, npos);
        for (std::uint32_t k = 0; k < nd.edge_count; ++k) {
          const std::uint32_t e = nd.first_edge + k;
          std::uint64_t i = edge_slot(edges_[e].head, edges_[e].label.size()) & nd.slot_mask;
          while (slots_[nd.slot_first + i] != npos) i = (i + 1) & nd.slot_mask;
          slots_[nd.slot_first + i] = e;
        }
      }
    }
    for (const auto& [host, root] : roots) {
      if (host.empty()) {
        any_host_root_ = root;
      } else if (host[0] == '.') {
        wildcard_hosts_.emplace(host, static_cast<std::uint32_t>(groups_.size()));
        groups_.push_back(root);
        has_wildcards_ = true;
      } else {
        exact_hosts_.emplace(host, static_cast<std::uint32_t>(groups_.size()));
        groups_.push_back(root);
      }
    }
    has_host_groups_ = !groups_.empty();
    return {absl::OkStatus(), npos_rule};
  }

  std::vector<node> nodes_;
  std::vector<edge> edges_;
  std::string labels_;
  std::vector<std::uint32_t> slots_;  // open addressing over edges_, per big node
  std::vector<std::uint32_t> leaf_rules_;
  std::vector<compiled_rule> rules_;
  std::vector<pred> preds_;
  std::vector<std::string> methods_;
  std::vector<std::uint64_t> method_heads_;  // segment_head of each method
  std::vector<std::uint32_t> groups_;        // host group -> root node
  absl::flat_hash_map<std::string, std::uint32_t> exact_hosts_;
  absl::flat_hash_map<std::string, std::uint32_t> wildcard_hosts_;  // ".x.com" -> group
  std::uint32_t any_host_root_ = npos;
  bool has_host_groups_ = false;
  bool has_wildcards_ = false;
  std::vector<std::shared_ptr<venue_set>> venue_sets_;
};

// The published route table, replaced atomically (read-copy-update, see
// detail/rcu.hpp): matching takes no lock and never waits for a publication.
class router {
 public:
  router() : router(empty_table()) {}
  explicit router(std::shared_ptr<const route_table> initial)
      : cell_(initial ? std::move(initial) : empty_table()) {}
  router(const router&) = delete;
  router& operator=(const router&) = delete;

  // Replaces the table. Returns after no thread can still be reading the
  // one it replaced. Publications are serialised. A null table is refused.
  absl::Status publish(std::shared_ptr<const route_table> next) {
    if (!next) return absl::InvalidArgumentError("cannot publish a null route table");
    cell_.publish(std::move(next));
    version_.fetch_add(1, std::memory_order_relaxed);
    return absl::OkStatus();
  }

  std::shared_ptr<const route_table> current() const { return cell_.current(); }

  // How many tables have been published after the first.
  std::uint64_t version() const noexcept { return version_.load(std::memory_order_relaxed); }

  // f(const route_table&) runs on the table current when it started.
  template <class F>
  auto read(F&& f) const noexcept(noexcept(f(std::declval<const route_table&>()))) {
    return cell_.read(std::forward<F>(f));
  }

  route_match match(const route_request& r) const noexcept {
    return read([&](const route_table& t) noexcept { return t.match(r); });
  }

  route_decision route(const route_request& r, std::string_view key, std::uint64_t nonce,
                       std::uint64_t now_ns) const noexcept {
    return read([&](const route_table& t) noexcept { return t.route(r, key, nonce, now_ns); });
  }

 private:
  static std::shared_ptr<const route_table> empty_table() { return *route_table::build({}); }

  detail::rcu_cell<route_table> cell_;
  std::atomic<std::uint64_t> version_{0};
};

}  // namespace tollgate
