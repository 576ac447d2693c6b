// Recording limiter and breaker decisions with their inputs, and replaying
// them. See include/tollgate/journal_replay.hpp and docs/journal-format.md
// ("Replay inputs").
#include "tollgate/journal_replay.hpp"

#include <array>
#include <bit>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <deque>
#include <memory>
#include <unordered_map>

namespace tollgate::journal_replay {

namespace jf = journal_format;

namespace {

inline constexpr std::uint8_t inputs_tag = 0x72;  // 'r'

// Writes little-endian fields into a fixed buffer (sized for the largest
// record, so that no write can overflow; put reports a key that does not
// fit).
class writer {
 public:
  writer(component c, std::uint8_t op, std::uint32_t instance) {
    u8(inputs_tag);
    u8(inputs_version);
    u8(static_cast<std::uint8_t>(c));
    u8(op);
    u32(instance);
  }
  void u8(std::uint8_t v) noexcept { buf_[n_++] = v; }
  void u16(std::uint16_t v) noexcept {
    jf::put16(&buf_[n_], v);
    n_ += 2;
  }
  void u32(std::uint32_t v) noexcept {
    jf::put32(&buf_[n_], v);
    n_ += 4;
  }
  void i32(std::int32_t v) noexcept { u32(static_cast<std::uint32_t>(v)); }
  void u64(std::uint64_t v) noexcept {
    jf::put64(&buf_[n_], v);
    n_ += 8;
  }
  void f64(double v) noexcept { u64(std::bit_cast<std::uint64_t>(v)); }
  // A u16 length and the bytes; false when they do not fit.
  bool bytes16(std::string_view s) noexcept {
    if (s.size() > max_key_size || n_ + 2 + s.size() > buf_.size()) return false;
    u16(static_cast<std::uint16_t>(s.size()));
    if (!s.empty()) std::memcpy(&buf_[n_], s.data(), s.size());
    n_ += s.size();
    return true;
  }
  bool bytes8(std::string_view s) noexcept {
    if (s.size() > 255 || n_ + 1 + s.size() > buf_.size()) return false;
    u8(static_cast<std::uint8_t>(s.size()));
    if (!s.empty()) std::memcpy(&buf_[n_], s.data(), s.size());
    n_ += s.size();
    return true;
  }
  std::span<const std::uint8_t> view() const noexcept { return {buf_.data(), n_}; }
  std::size_t room() const noexcept { return buf_.size() - n_; }

 private:
  // The largest record: a limiter define with 64 tiers of 63-byte names
  // (64 * 76 bytes) and its fixed fields.
  std::array<std::uint8_t, 5120> buf_;
  std::size_t n_ = 0;
};

// Reads what writer wrote; every read is bounds-checked, and a failed read
// leaves the reader failed (reads then return zeros).
class reader {
 public:
  explicit reader(std::span<const std::uint8_t> b) : b_(b) {}
  bool ok() const noexcept { return ok_; }
  bool done() const noexcept { return ok_ && n_ == b_.size(); }
  std::uint8_t u8() noexcept { return need(1) ? b_[n_++] : 0; }
  std::uint16_t u16() noexcept {
    if (!need(2)) return 0;
    const std::uint16_t v = jf::get16(&b_[n_]);
    n_ += 2;
    return v;
  }
  std::uint32_t u32() noexcept {
    if (!need(4)) return 0;
    const std::uint32_t v = jf::get32(&b_[n_]);
    n_ += 4;
    return v;
  }
  std::int32_t i32() noexcept { return static_cast<std::int32_t>(u32()); }
  std::uint64_t u64() noexcept {
    if (!need(8)) return 0;
    const std::uint64_t v = jf::get64(&b_[n_]);
    n_ += 8;
    return v;
  }
  double f64() noexcept { return std::bit_cast<double>(u64()); }
  std::string_view bytes(std::size_t len) noexcept {
    if (!need(len)) return {};
    std::string_view s(reinterpret_cast<const char*>(&b_[n_]), len);
    n_ += len;
    return s;
  }
  std::string_view bytes16() noexcept { return bytes(u16()); }
  std::string_view bytes8() noexcept { return bytes(u8()); }

 private:
  bool need(std::size_t k) noexcept {
    if (!ok_ || b_.size() - n_ < k) {
      ok_ = false;
      return false;
    }
    return true;
  }
  std::span<const std::uint8_t> b_;
  std::size_t n_ = 0;
  bool ok_ = true;
};

append_result append(journal& j, event_kind kind, const writer& w, std::uint32_t verdict,
                     std::uint32_t reason, const record_context& ctx) noexcept {
  journal_entry e;
  e.kind = static_cast<std::uint16_t>(kind);
  e.realtime_ns = ctx.realtime_ns;
  e.monotonic_ns = ctx.monotonic_ns;
  e.account = ctx.account;
  e.route = ctx.route;
  e.venue = ctx.venue;
  e.verdict = verdict;
  e.reason = reason;
  e.config_version = ctx.config_version;
  e.inputs = w.view();
  e.payload = ctx.payload;
  e.payload_digest = ctx.payload_digest;
  e.store_payload = ctx.store_payload;
  return j.append(e);
}

// docs/journal-format.md: tollgate's verdicts.
constexpr std::uint32_t verdict_allowed = 0;
constexpr std::uint32_t verdict_rejected = 1;

constexpr append_result too_large() noexcept { return {append_status::too_large, 0}; }

void put_decision(writer& w, std::uint32_t tier, std::uint32_t cost, std::uint64_t now_ns,
                  const limit_decision& d) noexcept {
  w.u32(tier);
  w.u32(cost);
  w.u64(now_ns);
  w.u8(d.allowed ? 1 : 0);
  w.u8(d.shadow ? 1 : 0);
  w.u16(0);
  w.i32(static_cast<std::int32_t>(d.reason));
  w.u64(d.retry_after_ns);
  w.u64(d.remaining);
}

}  // namespace

append_result record_limiter_define(journal& j, std::uint32_t instance, const limiter& lim,
                                    std::uint32_t parent_instance,
                                    const record_context& ctx) noexcept {
  writer w(component::limiter, static_cast<std::uint8_t>(limiter_op::define), instance);
  w.u64(lim.capacity());
  w.u64(lim.hash_seed());
  w.f64(lim.multiplier());
  w.u32(parent_instance);
  w.u8(static_cast<std::uint8_t>(lim.on_full()));
  w.u8(lim.shadow() ? 1 : 0);
  w.u16(static_cast<std::uint16_t>(lim.tier_count()));
  for (std::uint32_t i = 0; i < lim.tier_count(); ++i) {
    const tier& t = lim.tier_at(i);
    w.f64(t.rate);
    w.u32(t.burst);
    if (!w.bytes8(t.name)) return too_large();
  }
  return append(j, event_kind::config_change, w, 0, 0, ctx);
}

append_result record_limiter_acquire(journal& j, std::uint32_t instance, std::string_view key,
                                     std::uint32_t tier, std::uint32_t cost, std::uint64_t now_ns,
                                     const limit_decision& d, const record_context& ctx) noexcept {
  writer w(component::limiter, static_cast<std::uint8_t>(limiter_op::acquire), instance);
  put_decision(w, tier, cost, now_ns, d);
  if (!w.bytes16(key)) return too_large();
  return append(j, event_kind::decision, w, d.allowed ? verdict_allowed : verdict_rejected,
                static_cast<std::uint32_t>(d.reason), ctx);
}

append_result record_limiter_reserve(journal& j, std::uint32_t instance, std::string_view key,
                                     std::uint32_t tier, std::uint32_t cost, std::uint64_t now_ns,
                                     const limit_decision& d, const reservation& res,
                                     const record_context& ctx) noexcept {
  writer w(component::limiter, static_cast<std::uint8_t>(limiter_op::reserve), instance);
  put_decision(w, tier, cost, now_ns, d);
  w.u64(res.own_ns);
  w.u64(res.cost);
  w.u32(res.flags);
  if (!w.bytes16(key)) return too_large();
  return append(j, event_kind::decision, w, d.allowed ? verdict_allowed : verdict_rejected,
                static_cast<std::uint32_t>(d.reason), ctx);
}

append_result record_limiter_cancel(journal& j, std::uint32_t instance, std::string_view key,
                                    const reservation& res, std::uint64_t now_ns,
                                    const record_context& ctx) noexcept {
  writer w(component::limiter, static_cast<std::uint8_t>(limiter_op::cancel), instance);
  w.u32(res.tier);
  w.u32(res.flags);
  w.u64(res.own_ns);
  w.u64(res.cost);
  w.u64(now_ns);
  if (!w.bytes16(key)) return too_large();
  return append(j, event_kind::decision, w, 0, 0, ctx);
}

append_result record_limiter_multiplier(journal& j, std::uint32_t instance, double multiplier,
                                        std::uint64_t now_ns, const record_context& ctx) noexcept {
  writer w(component::limiter, static_cast<std::uint8_t>(limiter_op::multiplier), instance);
  w.f64(multiplier);
  w.u64(now_ns);
  return append(j, event_kind::config_change, w, 0, 0, ctx);
}

append_result record_limiter_shadow(journal& j, std::uint32_t instance, bool on,
                                    const record_context& ctx) noexcept {
  writer w(component::limiter, static_cast<std::uint8_t>(limiter_op::shadow), instance);
  w.u8(on ? 1 : 0);
  return append(j, event_kind::config_change, w, 0, 0, ctx);
}

append_result record_breaker_define(journal& j, std::uint32_t instance, const breaker& b,
                                    const record_context& ctx) noexcept {
  const breaker_options& o = b.options();
  writer w(component::breaker, static_cast<std::uint8_t>(breaker_op::define), instance);
  w.u32(static_cast<std::uint32_t>(o.window));
  w.u32(o.window_size);
  w.u32(o.minimum_calls);
  w.u32(o.half_open_probes);
  w.u32(o.max_in_flight);
  w.u32(0);
  w.u64(o.bucket_ns);
  w.f64(o.failure_rate_threshold);
  w.f64(o.slow_rate_threshold);
  w.u64(o.slow_call_ns);
  w.u64(o.open_ns);
  w.f64(o.backoff_multiplier);
  w.u64(o.max_open_ns);
  w.u64(o.max_half_open_ns);
  return append(j, event_kind::config_change, w, 0, 0, ctx);
}

append_result record_breaker_acquire(journal& j, std::uint32_t instance, std::uint64_t now_ns,
                                     const permit& p, const record_context& ctx) noexcept {
  writer w(component::breaker, static_cast<std::uint8_t>(breaker_op::acquire), instance);
  w.u64(now_ns);
  w.u8(p.allowed ? 1 : 0);
  w.u8(0);
  w.u16(0);
  w.i32(static_cast<std::int32_t>(p.reason));
  w.i32(static_cast<std::int32_t>(p.state));
  w.u64(p.retry_after_ns);
  w.u64(p.token);
  return append(j, event_kind::decision, w, p.allowed ? verdict_allowed : verdict_rejected,
                static_cast<std::uint32_t>(p.reason), ctx);
}

append_result record_breaker_outcome(journal& j, std::uint32_t instance, const permit& p, outcome o,
                                     std::uint64_t latency_ns, std::uint64_t now_ns,
                                     const record_context& ctx) noexcept {
  writer w(component::breaker, static_cast<std::uint8_t>(breaker_op::outcome), instance);
  w.u64(p.token);
  w.u8(p.allowed ? 1 : 0);
  w.u8(0);
  w.u16(0);
  w.i32(static_cast<std::int32_t>(o));
  w.u64(latency_ns);
  w.u64(now_ns);
  return append(j, event_kind::decision, w, 0, static_cast<std::uint32_t>(o), ctx);
}

append_result record_breaker_force(journal& j, std::uint32_t instance, breaker_state to,
                                   std::uint64_t now_ns, const record_context& ctx) noexcept {
  writer w(component::breaker, static_cast<std::uint8_t>(breaker_op::force), instance);
  w.i32(static_cast<std::int32_t>(to));
  w.u32(0);
  w.u64(now_ns);
  return append(j, event_kind::config_change, w, 0, 0, ctx);
}

append_result record_breaker_transition(journal& j, std::uint32_t instance, const breaker_event& ev,
                                        const record_context& ctx) noexcept {
  writer w(component::breaker, static_cast<std::uint8_t>(breaker_op::transition), instance);
  w.i32(static_cast<std::int32_t>(ev.from));
  w.i32(static_cast<std::int32_t>(ev.to));
  w.u64(ev.now_ns);
  w.f64(ev.failure_rate);
  w.f64(ev.slow_rate);
  w.u64(ev.open_ns);
  return append(j, event_kind::breaker_transition, w, 0, 0, ctx);
}

// ---- decoding ------------------------------------------------------------

namespace {

struct header {
  component comp;
  std::uint8_t op;
  std::uint32_t instance;
};

// 1: replay inputs (header set), 0: not replay inputs, -1: claims to be
// (tag and version) but the header is malformed.
int parse_header(reader& r, std::span<const std::uint8_t> in, header* h) {
  if (in.size() < 2 || in[0] != inputs_tag || in[1] != inputs_version) return 0;
  r.u8();
  r.u8();
  const std::uint8_t c = r.u8();
  h->op = r.u8();
  h->instance = r.u32();
  if (!r.ok() || (c != 1 && c != 2)) return -1;
  h->comp = static_cast<component>(c);
  return 1;
}

struct limiter_define {
  limiter_options opts;
  std::uint32_t parent = no_parent;
};

bool read_limiter_define(reader& r, limiter_define* d) {
  d->opts.capacity = r.u64();
  d->opts.hash_seed = r.u64();
  d->opts.multiplier = r.f64();
  d->parent = r.u32();
  const std::uint8_t on_full = r.u8();
  d->opts.shadow = r.u8() != 0;
  const std::uint16_t tiers = r.u16();
  if (on_full > 1) return false;
  d->opts.on_full = static_cast<on_full_policy>(on_full);
  d->opts.tiers.clear();
  for (std::uint16_t i = 0; i < tiers && r.ok(); ++i) {
    tier t;
    t.rate = r.f64();
    t.burst = r.u32();
    t.name = std::string(r.bytes8());
    d->opts.tiers.push_back(std::move(t));
  }
  return r.done();
}

struct limiter_call {
  std::uint32_t tier = 0;
  std::uint32_t cost = 0;
  std::uint64_t now = 0;
  limit_decision d;
  reservation res;
  std::string_view key;
};

bool read_limiter_call(reader& r, bool reserve, limiter_call* c) {
  c->tier = r.u32();
  c->cost = r.u32();
  c->now = r.u64();
  c->d.allowed = r.u8() != 0;
  c->d.shadow = r.u8() != 0;
  r.u16();
  c->d.reason = static_cast<limit_reason>(r.i32());
  c->d.retry_after_ns = r.u64();
  c->d.remaining = r.u64();
  if (reserve) {
    c->res.own_ns = r.u64();
    c->res.cost = r.u64();
    c->res.flags = r.u32();
  }
  c->key = r.bytes16();
  return r.done();
}

bool read_limiter_cancel(reader& r, limiter_call* c) {
  c->res.tier = r.u32();
  c->res.flags = r.u32();
  c->res.own_ns = r.u64();
  c->res.cost = r.u64();
  c->now = r.u64();
  c->key = r.bytes16();
  return r.done();
}

bool read_breaker_define(reader& r, breaker_options* o) {
  o->window = static_cast<window_type>(r.u32());
  o->window_size = r.u32();
  o->minimum_calls = r.u32();
  o->half_open_probes = r.u32();
  o->max_in_flight = r.u32();
  r.u32();
  o->bucket_ns = r.u64();
  o->failure_rate_threshold = r.f64();
  o->slow_rate_threshold = r.f64();
  o->slow_call_ns = r.u64();
  o->open_ns = r.u64();
  o->backoff_multiplier = r.f64();
  o->max_open_ns = r.u64();
  o->max_half_open_ns = r.u64();
  return r.done();
}

struct breaker_call {
  std::uint64_t now = 0;
  permit p;
  std::int32_t outcome = 0;
  std::uint64_t latency = 0;
};

bool read_breaker_acquire(reader& r, breaker_call* c) {
  c->now = r.u64();
  c->p.allowed = r.u8() != 0;
  r.u8();
  r.u16();
  c->p.reason = static_cast<breaker_reason>(r.i32());
  c->p.state = static_cast<breaker_state>(r.i32());
  c->p.retry_after_ns = r.u64();
  c->p.token = r.u64();
  return r.done();
}

bool read_breaker_outcome(reader& r, breaker_call* c) {
  c->p.token = r.u64();
  c->p.allowed = r.u8() != 0;
  r.u8();
  r.u16();
  c->outcome = r.i32();
  c->latency = r.u64();
  c->now = r.u64();
  return r.done() && c->outcome >= 0 && c->outcome <= 2;
}

bool read_breaker_event(reader& r, breaker_event* ev) {
  ev->from = static_cast<breaker_state>(r.i32());
  ev->to = static_cast<breaker_state>(r.i32());
  ev->now_ns = r.u64();
  ev->failure_rate = r.f64();
  ev->slow_rate = r.f64();
  ev->open_ns = r.u64();
  return r.done();
}

const char* limiter_op_name(std::uint8_t op) {
  static const char* names[] = {"?",      "define",     "acquire", "reserve",
                                "cancel", "multiplier", "shadow"};
  return op < std::size(names) ? names[op] : "?";
}

const char* breaker_op_name(std::uint8_t op) {
  static const char* names[] = {"?", "define", "acquire", "outcome", "force", "transition"};
  return op < std::size(names) ? names[op] : "?";
}

const char* reason_name(limit_reason r) {
  switch (r) {
    case limit_reason::none:
      return "none";
    case limit_reason::rate:
      return "rate";
    case limit_reason::cost_exceeds_burst:
      return "cost_exceeds_burst";
    case limit_reason::capacity:
      return "capacity";
    case limit_reason::parent:
      return "parent";
    case limit_reason::invalid_argument:
      return "invalid_argument";
  }
  return "?";
}

const char* state_name(breaker_state s) {
  static const char* names[] = {"closed",        "open",     "half_open",   "forced_open",
                                "forced_closed", "disabled", "metrics_only"};
  const auto i = static_cast<std::uint32_t>(s);
  return i < std::size(names) ? names[i] : "?";
}

const char* breaker_reason_name(breaker_reason r) {
  static const char* names[] = {"none", "open", "forced_open", "bulkhead_full"};
  const auto i = static_cast<std::uint32_t>(r);
  return i < std::size(names) ? names[i] : "?";
}

// Whether s is well-formed UTF-8 (no overlong forms, surrogates or values
// above U+10FFFF).
bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = 0;
    std::uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if (c >= 0xC2 && c <= 0xDF) {
      n = 1;
      cp = c & 0x1Fu;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 2;
      cp = c & 0x0Fu;
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 3;
      cp = c & 0x07u;
    } else {
      return false;
    }
    if (s.size() - i <= n) return false;
    for (std::size_t k = 1; k <= n; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0u) != 0x80u) return false;
      cp = (cp << 6) | (cc & 0x3Fu);
    }
    if ((n == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
        (n == 3 && (cp < 0x10000 || cp > 0x10FFFF))) {
      return false;
    }
    i += n + 1;
  }
  return true;
}

// A JSON string of valid UTF-8 text (control characters escaped).
std::string json_text(std::string_view s) {
  std::string out = "\"";
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

// `"name":"text"` for bytes that are UTF-8 text, else `"name_hex":"..."`:
// keys and names are bytes, and JSON strings are Unicode.
std::string json_bytes_field(std::string_view name, std::string_view bytes) {
  if (valid_utf8(bytes)) return "\"" + std::string(name) + "\":" + json_text(bytes);
  return "\"" + std::string(name) + "_hex\":\"" +
         jf::to_hex({reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()}) + "\"";
}

// A JSON number, or null for NaN and infinities (which JSON cannot spell).
std::string json_number(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

std::string fmt(const char* f, auto... args) {
  char buf[256];
  const int n = std::snprintf(buf, sizeof buf, f, args...);
  return std::string(
      buf, n < 0 ? 0 : std::min<std::size_t>(static_cast<std::size_t>(n), sizeof buf - 1));
}

std::string describe(const limit_decision& d) {
  return fmt("%s%s reason=%s retry_after_ns=%" PRIu64 " remaining=%" PRIu64,
             d.allowed ? "allowed" : "rejected", d.shadow ? " (shadow)" : "", reason_name(d.reason),
             d.retry_after_ns, d.remaining);
}

std::string describe(const permit& p) {
  return fmt("%s reason=%s state=%s retry_after_ns=%" PRIu64 " token=%" PRIu64,
             p.allowed ? "allowed" : "rejected", breaker_reason_name(p.reason), state_name(p.state),
             p.retry_after_ns, p.token);
}

std::string describe(const breaker_event& ev) {
  return fmt("%s -> %s at %" PRIu64 " ns (open for %" PRIu64 " ns)", state_name(ev.from),
             state_name(ev.to), ev.now_ns, ev.open_ns);
}

std::string decision_json(const limit_decision& d) {
  return fmt("\"allowed\":%s,\"shadow\":%s,\"reason\":\"%s\",\"retry_after_ns\":%" PRIu64
             ",\"remaining\":%" PRIu64,
             d.allowed ? "true" : "false", d.shadow ? "true" : "false", reason_name(d.reason),
             d.retry_after_ns, d.remaining);
}

std::string describe_limiter(reader& r, std::uint8_t op) {
  switch (static_cast<limiter_op>(op)) {
    case limiter_op::define: {
      limiter_define d;
      if (!read_limiter_define(r, &d)) break;
      std::string s = fmt(",\"capacity\":%" PRIu64 ",\"hash_seed\":%" PRIu64
                          ",\"multiplier\":%s,\"on_full\":\"%s\",\"shadow\":%s",
                          d.opts.capacity, d.opts.hash_seed, json_number(d.opts.multiplier).c_str(),
                          d.opts.on_full == on_full_policy::reject ? "reject" : "overflow",
                          d.opts.shadow ? "true" : "false");
      if (d.parent != no_parent) s += fmt(",\"parent\":%u", d.parent);
      s += ",\"tiers\":[";
      for (std::size_t i = 0; i < d.opts.tiers.size(); ++i) {
        const tier& t = d.opts.tiers[i];
        if (i != 0) s += ",";
        s += "{";
        s += json_bytes_field("name", t.name);
        s += ",\"rate\":";
        s += json_number(t.rate);
        s += fmt(",\"burst\":%u}", t.burst);
      }
      return s + "]";
    }
    case limiter_op::acquire:
    case limiter_op::reserve: {
      limiter_call c;
      const bool reserve = op == static_cast<std::uint8_t>(limiter_op::reserve);
      if (!read_limiter_call(r, reserve, &c)) break;
      std::string s =
          "," + json_bytes_field("key", c.key) +
          fmt(",\"tier\":%u,\"cost\":%u,\"now_ns\":%" PRIu64 ",", c.tier, c.cost, c.now) +
          decision_json(c.d);
      if (reserve) {
        s += fmt(",\"own_ns\":%" PRIu64 ",\"reserved\":%" PRIu64 ",\"flags\":%u", c.res.own_ns,
                 c.res.cost, c.res.flags);
      }
      return s;
    }
    case limiter_op::cancel: {
      limiter_call c;
      if (!read_limiter_cancel(r, &c)) break;
      return "," + json_bytes_field("key", c.key) +
             fmt(",\"tier\":%u,\"own_ns\":%" PRIu64 ",\"reserved\":%" PRIu64
                 ",\"flags\":%u,\"now_ns\":%" PRIu64,
                 c.res.tier, c.res.own_ns, c.res.cost, c.res.flags, c.now);
    }
    case limiter_op::multiplier: {
      const double m = r.f64();
      const std::uint64_t now = r.u64();
      if (!r.done()) break;
      return ",\"multiplier\":" + json_number(m) + fmt(",\"now_ns\":%" PRIu64, now);
    }
    case limiter_op::shadow: {
      const std::uint8_t on = r.u8();
      if (!r.done()) break;
      return fmt(",\"shadow\":%s", on ? "true" : "false");
    }
  }
  return {};
}

std::string describe_breaker(reader& r, std::uint8_t op) {
  switch (static_cast<breaker_op>(op)) {
    case breaker_op::define: {
      breaker_options o;
      if (!read_breaker_define(r, &o)) break;
      return fmt(",\"window\":\"%s\",\"window_size\":%u,\"minimum_calls\":%u",
                 o.window == window_type::count ? "count" : "time", o.window_size,
                 o.minimum_calls) +
             fmt(",\"bucket_ns\":%" PRIu64 ",\"failure_rate_threshold\":%s", o.bucket_ns,
                 json_number(o.failure_rate_threshold).c_str()) +
             fmt(",\"slow_rate_threshold\":%s,\"slow_call_ns\":%" PRIu64,
                 json_number(o.slow_rate_threshold).c_str(), o.slow_call_ns) +
             fmt(",\"open_ns\":%" PRIu64 ",\"backoff_multiplier\":%s,\"max_open_ns\":%" PRIu64,
                 o.open_ns, json_number(o.backoff_multiplier).c_str(), o.max_open_ns) +
             fmt(",\"half_open_probes\":%u,\"max_in_flight\":%u,\"max_half_open_ns\":%" PRIu64,
                 o.half_open_probes, o.max_in_flight, o.max_half_open_ns);
    }
    case breaker_op::acquire: {
      breaker_call c;
      if (!read_breaker_acquire(r, &c)) break;
      return fmt(",\"now_ns\":%" PRIu64 ",\"allowed\":%s,\"reason\":\"%s\",\"state\":\"%s\"", c.now,
                 c.p.allowed ? "true" : "false", breaker_reason_name(c.p.reason),
                 state_name(c.p.state)) +
             fmt(",\"retry_after_ns\":%" PRIu64 ",\"token\":%" PRIu64, c.p.retry_after_ns,
                 c.p.token);
    }
    case breaker_op::outcome: {
      breaker_call c;
      if (!read_breaker_outcome(r, &c)) break;
      static const char* outcomes[] = {"success", "failure", "ignored"};
      return fmt(",\"token\":%" PRIu64 ",\"allowed\":%s,\"outcome\":\"%s\",\"latency_ns\":%" PRIu64
                 ",\"now_ns\":%" PRIu64,
                 c.p.token, c.p.allowed ? "true" : "false", outcomes[c.outcome], c.latency, c.now);
    }
    case breaker_op::force: {
      const auto to = static_cast<breaker_state>(r.i32());
      r.u32();
      const std::uint64_t now = r.u64();
      if (!r.done()) break;
      return fmt(",\"to\":\"%s\",\"now_ns\":%" PRIu64, state_name(to), now);
    }
    case breaker_op::transition: {
      breaker_event ev{};
      if (!read_breaker_event(r, &ev)) break;
      return fmt(",\"from\":\"%s\",\"to\":\"%s\",\"now_ns\":%" PRIu64, state_name(ev.from),
                 state_name(ev.to), ev.now_ns) +
             fmt(",\"failure_rate\":%s,\"slow_rate\":%s,\"open_ns\":%" PRIu64,
                 json_number(ev.failure_rate).c_str(), json_number(ev.slow_rate).c_str(),
                 ev.open_ns);
    }
  }
  return {};
}

}  // namespace

std::optional<std::string> describe_inputs(std::span<const std::uint8_t> inputs) {
  reader r(inputs);
  header h{};
  const int kind = parse_header(r, inputs, &h);
  if (kind == 0) return std::nullopt;
  if (kind < 0) return std::string("{\"error\":\"malformed replay inputs header\"}");
  const bool lim = h.comp == component::limiter;
  std::string body = lim ? describe_limiter(r, h.op) : describe_breaker(r, h.op);
  std::string head =
      fmt("{\"component\":\"%s\",\"op\":\"%s\",\"instance\":%u", lim ? "limiter" : "breaker",
          lim ? limiter_op_name(h.op) : breaker_op_name(h.op), h.instance);
  if (body.empty()) return head + ",\"error\":\"malformed replay inputs\"}";
  return head + body + "}";
}

// ---- replay --------------------------------------------------------------

namespace {

// Where a record is; copied, so that a report never points into records
// the caller has let go of.
struct place {
  std::uint64_t seq = 0;
  std::uint64_t segment = 0;
  std::uint64_t offset = 0;
  std::string account;
};

struct pending_transition {
  breaker_event ev;
  place at;  // the transition record, or the record whose call announced it
};

struct breaker_slot {
  std::unique_ptr<breaker> b;
  const place* here = nullptr;              // the record being replayed
  std::deque<pending_transition> replayed;  // announced by the replayed breaker
  std::deque<pending_transition> recorded;  // transition records not yet matched
  bool records_transitions = false;
};

class replayer {
 public:
  replayer(replay_report* rep, const replay_options& o) : rep_(rep), opts_(o) {}

  void feed(const jf::record_view& v, const journal_record_location& where) {
    here_.seq = v.seq;
    here_.segment = where.segment;
    here_.offset = where.offset;
    here_.account.assign(v.account.data(), v.account.size());
    reader r(v.inputs);
    header h{};
    const int kind = parse_header(r, v.inputs, &h);
    if (kind == 0) {
      ++rep_->other;
      return;
    }
    if (kind < 0) return issue("malformed replay inputs header");
    h_ = h;
    ++rep_->replayed;
    if (h.comp == component::limiter) {
      ++rep_->limiter_records;
      limiter_record(r);
    } else {
      ++rep_->breaker_records;
      breaker_record(r);
    }
  }

  // Transitions left unmatched at the end.
  void finish() {
    for (auto& [instance, slot] : breakers_) settle(instance, slot, true);
  }

 private:
  void issue(std::string message) {
    ++rep_->issue_count;
    if (rep_->issues.size() < opts_.max_reported) {
      rep_->issues.push_back(
          {here_.seq, here_.segment, here_.offset,
           fmt("%s %s instance %u: ", h_.comp == component::limiter ? "limiter" : "breaker",
               h_.comp == component::limiter ? limiter_op_name(h_.op) : breaker_op_name(h_.op),
               h_.instance) +
               message});
    }
  }

  void mismatch(std::string recorded, std::string replayed) {
    mismatch_at(here_, std::move(recorded), std::move(replayed));
  }

  void mismatch_at(const place& at, std::string recorded, std::string replayed) {
    replay_mismatch m;
    m.sequence = at.seq;
    m.segment = at.segment;
    m.offset = at.offset;
    m.comp = h_.comp;
    m.op = h_.op;
    m.instance = h_.instance;
    m.account = at.account;
    m.recorded = std::move(recorded);
    m.replayed = std::move(replayed);
    ++rep_->mismatch_count;
    if (opts_.on_mismatch) opts_.on_mismatch(m);
    if (rep_->mismatches.size() < opts_.max_reported) rep_->mismatches.push_back(std::move(m));
  }

  limiter* find_limiter(std::uint32_t instance) {
    auto it = limiters_.find(instance);
    if (it == limiters_.end()) {
      issue("the instance was never defined in this journal");
      return nullptr;
    }
    return it->second;
  }

  void limiter_record(reader& r) {
    switch (static_cast<limiter_op>(h_.op)) {
      case limiter_op::define: {
        limiter_define d;
        if (!read_limiter_define(r, &d)) return issue("malformed inputs");
        if (d.opts.capacity > opts_.max_limiter_capacity) {
          return issue(fmt("capacity %" PRIu64 " is above this replay's limit of %" PRIu64 " keys",
                           d.opts.capacity, opts_.max_limiter_capacity));
        }
        if (d.parent != no_parent) {
          auto p = limiters_.find(d.parent);
          if (p == limiters_.end())
            return issue(fmt("parent instance %u is not defined", d.parent));
          d.opts.parent = p->second;
        }
        auto lim = limiter::create(d.opts);
        if (!lim.ok())
          return issue("configuration refused: " + std::string(lim.status().message()));
        ++rep_->instances;
        // Kept alive for the whole replay: a child may still point at a
        // parent that was redefined.
        owned_limiters_.push_back(std::move(*lim));
        limiters_[h_.instance] = owned_limiters_.back().get();
        return;
      }
      case limiter_op::acquire:
      case limiter_op::reserve: {
        const bool reserve = h_.op == static_cast<std::uint8_t>(limiter_op::reserve);
        limiter_call c;
        if (!read_limiter_call(r, reserve, &c)) return issue("malformed inputs");
        limiter* lim = find_limiter(h_.instance);
        if (lim == nullptr) return;
        ++rep_->decisions;
        reservation res;
        const limit_decision got = reserve ? lim->reserve(c.key, c.tier, c.cost, c.now, &res)
                                           : lim->acquire(c.key, c.tier, c.cost, c.now);
        const bool same =
            got.allowed == c.d.allowed && got.shadow == c.d.shadow && got.reason == c.d.reason &&
            got.retry_after_ns == c.d.retry_after_ns && got.remaining == c.d.remaining &&
            (!reserve ||
             (res.own_ns == c.res.own_ns && res.cost == c.res.cost && res.flags == c.res.flags));
        if (!same) {
          std::string rec = describe(c.d);
          std::string rep = describe(got);
          if (reserve) {
            rec +=
                fmt(" reserved=%" PRIu64 "/%" PRIu64 "/%u", c.res.own_ns, c.res.cost, c.res.flags);
            rep += fmt(" reserved=%" PRIu64 "/%" PRIu64 "/%u", res.own_ns, res.cost, res.flags);
          }
          mismatch(std::move(rec), std::move(rep));
        }
        return;
      }
      case limiter_op::cancel: {
        limiter_call c;
        if (!read_limiter_cancel(r, &c)) return issue("malformed inputs");
        limiter* lim = find_limiter(h_.instance);
        if (lim == nullptr) return;
        c.res.key_hash = lim->hash(c.key);
        lim->cancel(c.res, c.now);
        return;
      }
      case limiter_op::multiplier: {
        const double m = r.f64();
        const std::uint64_t now = r.u64();
        if (!r.done()) return issue("malformed inputs");
        limiter* lim = find_limiter(h_.instance);
        if (lim == nullptr) return;
        if (auto s = lim->set_multiplier(m, now); !s.ok()) {
          issue("multiplier refused: " + std::string(s.message()));
        }
        return;
      }
      case limiter_op::shadow: {
        const std::uint8_t on = r.u8();
        if (!r.done()) return issue("malformed inputs");
        if (limiter* lim = find_limiter(h_.instance)) lim->set_shadow(on != 0);
        return;
      }
    }
    issue("unknown operation");
  }

  static void on_breaker_event(void* user, const breaker_event& ev) {
    auto* s = static_cast<breaker_slot*>(user);
    s->replayed.push_back({ev, *s->here});
  }

  // Pairs announced transitions with recorded ones, in order; at the end
  // (or when the instance is redefined) what is left is a difference.
  void settle(std::uint32_t instance, breaker_slot& s, bool final) {
    const header keep = h_;
    h_ = {component::breaker, static_cast<std::uint8_t>(breaker_op::transition), instance};
    while (!s.replayed.empty() && !s.recorded.empty()) {
      const breaker_event& a = s.recorded.front().ev;
      const breaker_event& b = s.replayed.front().ev;
      ++rep_->transitions;
      if (a.from != b.from || a.to != b.to || a.now_ns != b.now_ns || a.open_ns != b.open_ns) {
        mismatch_at(s.recorded.front().at, "transition " + describe(a),
                    "transition " + describe(b));
      }
      s.recorded.pop_front();
      s.replayed.pop_front();
    }
    if (!s.records_transitions) {
      // The host has journaled no transition of this instance (yet): keep
      // only the last few, which a transition record just behind its cause
      // still needs.
      while (s.replayed.size() > 64) s.replayed.pop_front();
      if (final) s.replayed.clear();
      h_ = keep;
      return;
    }
    // A transition is announced during the acquire or outcome that causes
    // it, so the host may journal it just before or just after that record:
    // only at the end is an unmatched one a difference.
    if (final) {
      for (const pending_transition& p : s.recorded) {
        mismatch_at(p.at, "transition " + describe(p.ev), "no such transition");
      }
      for (const pending_transition& p : s.replayed) {
        mismatch_at(p.at, "no such transition", "transition " + describe(p.ev));
      }
    }
    h_ = keep;
    if (!final) return;
    s.recorded.clear();
    s.replayed.clear();
  }

  breaker_slot* find_breaker(std::uint32_t instance) {
    auto it = breakers_.find(instance);
    if (it == breakers_.end()) {
      issue("the instance was never defined in this journal");
      return nullptr;
    }
    return &it->second;
  }

  void breaker_record(reader& r) {
    switch (static_cast<breaker_op>(h_.op)) {
      case breaker_op::define: {
        breaker_options o;
        if (!read_breaker_define(r, &o)) return issue("malformed inputs");
        auto b = breaker::create(o);
        if (!b.ok()) return issue("configuration refused: " + std::string(b.status().message()));
        ++rep_->instances;
        auto it = breakers_.find(h_.instance);
        if (it != breakers_.end()) {
          settle(h_.instance, it->second, true);
          it->second.b.reset();
        }
        breaker_slot& s = breakers_[h_.instance];
        s.b = std::move(*b);
        s.here = &here_;
        s.b->set_listener(&on_breaker_event, &s);
        return;
      }
      case breaker_op::acquire: {
        breaker_call c;
        if (!read_breaker_acquire(r, &c)) return issue("malformed inputs");
        breaker_slot* s = find_breaker(h_.instance);
        if (s == nullptr) return;
        ++rep_->decisions;
        const permit got = s->b->acquire(c.now);
        if (got.allowed != c.p.allowed || got.reason != c.p.reason || got.state != c.p.state ||
            got.retry_after_ns != c.p.retry_after_ns || got.token != c.p.token) {
          mismatch(describe(c.p), describe(got));
        }
        settle(h_.instance, *s, false);
        return;
      }
      case breaker_op::outcome: {
        breaker_call c;
        if (!read_breaker_outcome(r, &c)) return issue("malformed inputs");
        breaker_slot* s = find_breaker(h_.instance);
        if (s == nullptr) return;
        s->b->record(c.p, static_cast<outcome>(c.outcome), c.latency, c.now);
        settle(h_.instance, *s, false);
        return;
      }
      case breaker_op::force: {
        const std::int32_t to = r.i32();
        r.u32();
        const std::uint64_t now = r.u64();
        if (!r.done() || to < 0 || to > 6) return issue("malformed inputs");
        breaker_slot* s = find_breaker(h_.instance);
        if (s == nullptr) return;
        s->b->transition(static_cast<breaker_state>(to), now);
        settle(h_.instance, *s, false);
        return;
      }
      case breaker_op::transition: {
        breaker_event ev{};
        if (!read_breaker_event(r, &ev)) return issue("malformed inputs");
        breaker_slot* s = find_breaker(h_.instance);
        if (s == nullptr) return;
        s->records_transitions = true;
        s->recorded.push_back({ev, here_});
        settle(h_.instance, *s, false);
        return;
      }
    }
    issue("unknown operation");
  }

  replay_report* rep_;
  const replay_options& opts_;
  place here_;
  header h_{};
  std::vector<std::unique_ptr<limiter>> owned_limiters_;
  std::unordered_map<std::uint32_t, limiter*> limiters_;
  std::unordered_map<std::uint32_t, breaker_slot> breakers_;
};

}  // namespace

struct replay_session::impl {
  explicit impl(replay_options o) : options(std::move(o)), rp(&report, options) {}
  replay_options options;
  replay_report report;
  replayer rp;
  bool finished = false;
};

replay_session::replay_session(replay_options options)
    : impl_(std::make_unique<impl>(std::move(options))) {}
replay_session::~replay_session() = default;

void replay_session::feed(const jf::record_view& record, const journal_record_location& where) {
  if (impl_->finished) return;
  ++impl_->report.records;
  if (record.type == jf::record_type::event) impl_->rp.feed(record, where);
}

replay_report replay_session::finish() {
  if (!impl_->finished) {
    impl_->rp.finish();
    impl_->finished = true;
  }
  return std::move(impl_->report);
}

absl::StatusOr<replay_report> replay_journal(const std::string& directory,
                                             const replay_options& options) {
  auto rd = journal_reader::open(directory, options.read);
  if (!rd.ok()) return rd.status();
  journal_reader& reader = **rd;
  replay_session session(options);
  jf::record_view v;
  journal_record_location where;
  std::uint64_t last_progress = 0;
  while (reader.next(&v, &where)) {
    session.feed(v, where);
    if (options.progress && reader.bytes_read() - last_progress >= (1u << 20)) {
      last_progress = reader.bytes_read();
      options.progress(last_progress, reader.bytes_total());
    }
  }
  if (options.progress) options.progress(reader.bytes_read(), reader.bytes_total());
  replay_report rep = session.finish();
  rep.error = reader.problem();
  rep.warnings = reader.warnings();
  return rep;
}

}  // namespace tollgate::journal_replay
