// The C ABI of the router: route tables, the RCU router and venue sets.
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "capi_common.hpp"
#include "capi_handles.hpp"
#include "tollgate/router.hpp"
#include "tollgate/tollgate.h"
#include "tollgate/venue.hpp"

using tollgate::capi::bytes_ok;
using tollgate::capi::fail;
using tollgate::capi::from_status;
using tollgate::capi::guarded;
using tollgate::capi::live;
using tollgate::capi::read_options;
using tollgate::capi::set_error;
using tollgate::capi::unref;
using tollgate::capi::view;

struct tg_route_table : tollgate::capi::handle_base {
  tg_route_table() noexcept : handle_base(tollgate::capi::tag_route_table) {}
  std::shared_ptr<const tollgate::route_table> impl;
};

struct tg_router : tollgate::capi::handle_base {
  tg_router() noexcept : handle_base(tollgate::capi::tag_router) {}
  std::unique_ptr<tollgate::router> impl;
};

struct tg_venue_set : tollgate::capi::handle_base {
  tg_venue_set() noexcept : handle_base(tollgate::capi::tag_venue_set) {}
  std::shared_ptr<tollgate::venue_set> impl;
};

static_assert(sizeof(tg_header_predicate) == 24 && offsetof(tg_header_predicate, value) == 8 &&
              offsetof(tg_header_predicate, op) == 16 &&
              offsetof(tg_header_predicate, invert) == 20);
static_assert(sizeof(tg_route_rule) == 64 && offsetof(tg_route_rule, route_id) == 4 &&
              offsetof(tg_route_rule, methods) == 8 && offsetof(tg_route_rule, host) == 16 &&
              offsetof(tg_route_rule, path) == 24 && offsetof(tg_route_rule, path_kind) == 32 &&
              offsetof(tg_route_rule, priority) == 36 && offsetof(tg_route_rule, headers) == 40 &&
              offsetof(tg_route_rule, header_count) == 48 &&
              offsetof(tg_route_rule, target) == 52 && offsetof(tg_route_rule, venue_set) == 56 &&
              offsetof(tg_route_rule, reserved) == 60);
static_assert(sizeof(tg_route_table_options) == 40 &&
              offsetof(tg_route_table_options, rules) == 8 &&
              offsetof(tg_route_table_options, rule_count) == 16 &&
              offsetof(tg_route_table_options, venue_sets) == 24 &&
              offsetof(tg_route_table_options, venue_set_count) == 32);
static_assert(sizeof(tg_header) == 32 && offsetof(tg_header, name_len) == 8 &&
              offsetof(tg_header, value) == 16 && offsetof(tg_header, value_len) == 24);
static_assert(sizeof(tg_route_request) == 64 && offsetof(tg_route_request, method_len) == 8 &&
              offsetof(tg_route_request, host) == 16 && offsetof(tg_route_request, path) == 32 &&
              offsetof(tg_route_request, headers) == 48 &&
              offsetof(tg_route_request, header_count) == 56);
static_assert(sizeof(tg_route_param) == 8 && offsetof(tg_route_param, length) == 4);
static_assert(sizeof(tg_route_match) == 24 + 8 * TG_ROUTE_MAX_PARAMS &&
              offsetof(tg_route_match, rule_index) == 4 &&
              offsetof(tg_route_match, route_id) == 8 && offsetof(tg_route_match, target) == 12 &&
              offsetof(tg_route_match, venue_set) == 16 &&
              offsetof(tg_route_match, param_count) == 20 &&
              offsetof(tg_route_match, params) == 24);
static_assert(TG_ROUTE_MAX_PARAMS == tollgate::max_route_params);
static_assert(sizeof(tg_venue) == 16 && offsetof(tg_venue, weight) == 4 &&
              offsetof(tg_venue, breaker) == 8);
static_assert(sizeof(tg_venue_set_options) == 48 && offsetof(tg_venue_set_options, strategy) == 4 &&
              offsetof(tg_venue_set_options, venues) == 8 &&
              offsetof(tg_venue_set_options, venue_count) == 16 &&
              offsetof(tg_venue_set_options, sticky) == 20 &&
              offsetof(tg_venue_set_options, seed) == 24 &&
              offsetof(tg_venue_set_options, latency_alpha) == 32 &&
              offsetof(tg_venue_set_options, latency_decay_ns) == 40);
static_assert(sizeof(tg_venue_pick) == 40 && offsetof(tg_venue_pick, reason) == 4 &&
              offsetof(tg_venue_pick, index) == 8 && offsetof(tg_venue_pick, venue_id) == 12 &&
              offsetof(tg_venue_pick, alternative) == 16 &&
              offsetof(tg_venue_pick, eligible) == 24 &&
              offsetof(tg_venue_pick, retry_after_ns) == 32);
static_assert(sizeof(tg_venue_stats) == 40 && offsetof(tg_venue_stats, enabled) == 8 &&
              offsetof(tg_venue_stats, ready_in_ns) == 16 &&
              offsetof(tg_venue_stats, latency_ewma_ns) == 24 &&
              offsetof(tg_venue_stats, latency_samples) == 32);
static_assert(sizeof(tg_route_decision) == sizeof(tg_route_match) + sizeof(tg_venue_pick) &&
              offsetof(tg_route_decision, venue) == sizeof(tg_route_match));
static_assert(TG_ROUTE_PATH_TOO_DEEP == static_cast<int>(tollgate::route_status::path_too_deep) &&
              TG_ROUTE_AMBIGUOUS_SEPARATOR ==
                  static_cast<int>(tollgate::route_status::ambiguous_separator));
static_assert(TG_VENUE_ALL_DOWN == static_cast<int>(tollgate::venue_reason::all_down) &&
              TG_VENUE_NO_SET == static_cast<int>(tollgate::venue_reason::no_venue_set));
static_assert(TG_ROUTE_MAX_HEADERS == 128);

namespace {

// The first published sizes of versioned structs.
constexpr std::size_t route_rule_v1 = sizeof(tg_route_rule);
constexpr std::size_t route_table_options_v1 = sizeof(tg_route_table_options);
constexpr std::size_t venue_set_options_v1 = sizeof(tg_venue_set_options);

// Requests with more headers than this are refused by the C ABI (the core
// has no limit): the glue converts them on the stack to stay allocation-free.
constexpr std::size_t max_request_headers = TG_ROUTE_MAX_HEADERS;

bool live_table(const tg_route_table* t) noexcept {
  return live(t, tollgate::capi::tag_route_table);
}
bool live_router(const tg_router* r) noexcept { return live(r, tollgate::capi::tag_router); }
bool live_set(const tg_venue_set* s) noexcept { return live(s, tollgate::capi::tag_venue_set); }
bool live_breaker_handle(const tg_breaker* b) noexcept {
  return live(b, tollgate::capi::tag_breaker);
}

bool request_ok(const tg_route_request& r) noexcept {
  if (!bytes_ok(r.method, r.method_len) || !bytes_ok(r.host, r.host_len) ||
      !bytes_ok(r.path, r.path_len) || !bytes_ok(r.headers, r.header_count)) {
    return false;
  }
  if (r.header_count > max_request_headers) return false;
  for (std::size_t i = 0; i < r.header_count; ++i) {
    if (!bytes_ok(r.headers[i].name, r.headers[i].name_len) ||
        !bytes_ok(r.headers[i].value, r.headers[i].value_len)) {
      return false;
    }
  }
  return true;
}

template <std::size_t N, class F>
auto with_headers(const tg_route_request& r, tollgate::route_request& q, F& f) noexcept {
  tollgate::header_view hv[N];
  for (std::size_t i = 0; i < r.header_count; ++i) {
    hv[i].name = view(r.headers[i].name, r.headers[i].name_len);
    hv[i].value = view(r.headers[i].value, r.headers[i].value_len);
  }
  q.headers = hv;
  q.header_count = r.header_count;
  return f(q);
}

// Runs f(route_request) with the caller's headers as header_views on the
// stack (a small array for the common case, so the hot path does not clear
// kilobytes). The request was validated.
template <class F>
auto with_request(const tg_route_request& r, F&& f) noexcept {
  tollgate::route_request q;
  q.method = view(r.method, r.method_len);
  q.host = view(r.host, r.host_len);
  q.path = view(r.path, r.path_len);
  if (r.header_count == 0) return f(q);
  if (r.header_count <= 16) return with_headers<16>(r, q, f);
  return with_headers<max_request_headers>(r, q, f);
}

void to_c(const tollgate::route_match& m, tg_route_match* out) noexcept {
  out->status = static_cast<int32_t>(m.status);
  out->rule_index = m.rule_index;
  out->route_id = m.route_id;
  out->target = m.target;
  out->venue_set = m.venue_set;
  out->param_count = m.param_count;
  for (std::uint32_t i = 0; i < tollgate::max_route_params; ++i) {
    out->params[i] = i < m.param_count ? tg_route_param{m.params[i].offset, m.params[i].length}
                                       : tg_route_param{0, 0};
  }
}

void to_c(const tollgate::venue_pick& p, tg_venue_pick* out) noexcept {
  out->ok = p.ok ? 1 : 0;
  out->reason = static_cast<int32_t>(p.reason);
  out->index = p.ok ? p.index : 0;
  out->venue_id = p.ok ? p.venue_id : 0;
  out->alternative = p.ok ? p.alternative : 0;
  out->reserved = 0;
  out->eligible = p.eligible;
  out->retry_after_ns = p.ok ? 0 : p.retry_after_ns;
}

std::string cstr(const char* s) { return s == nullptr ? std::string() : std::string(s); }

// "GET, POST" -> {"GET", "POST"}; empty pieces are kept so the core rejects them.
std::vector<std::string> split_methods(const char* s) {
  std::vector<std::string> out;
  if (s == nullptr || *s == '\0') return out;
  std::string_view v(s);
  while (true) {
    const std::size_t comma = v.find(',');
    std::string_view piece = v.substr(0, comma);
    while (!piece.empty() && piece.front() == ' ') piece.remove_prefix(1);
    while (!piece.empty() && piece.back() == ' ') piece.remove_suffix(1);
    out.emplace_back(piece);
    if (comma == std::string_view::npos) break;
    v.remove_prefix(comma + 1);
  }
  return out;
}

int rule_fail(tg_error* err, size_t* bad_rule, std::size_t i, int code, const std::string& why) {
  if (bad_rule != nullptr) *bad_rule = i;
  return fail(err, code, "rule " + std::to_string(i) + ": " + why);
}

}  // namespace

extern "C" {

void tg_route_rule_init(tg_route_rule* rule) {
  if (rule == nullptr) return;
  std::memset(static_cast<void*>(rule), 0, sizeof *rule);
  rule->struct_size = sizeof *rule;
  rule->path_kind = TG_PATH_EXACT;
  rule->venue_set = TG_NO_VENUE_SET;
}

void tg_route_table_options_init(tg_route_table_options* opts) {
  if (opts == nullptr) return;
  std::memset(static_cast<void*>(opts), 0, sizeof *opts);
  opts->struct_size = sizeof *opts;
}

int tg_route_table_new(const tg_route_table_options* opts, tg_route_table** out, size_t* bad_rule,
                       tg_error* err) {
  if (bad_rule != nullptr) *bad_rule = SIZE_MAX;
  return guarded(err, [&]() -> int {
    if (out == nullptr) return fail(err, TG_EINVAL, "out is NULL");
    tg_route_table_options o;
    tg_route_table_options_init(&o);
    if (int rc = read_options(opts, route_table_options_v1, &o, err); rc != TG_OK) return rc;
    if (o.reserved != 0) return fail(err, TG_EINVAL, "reserved must be 0");
    if (o.rule_count != 0 && o.rules == nullptr) {
      return fail(err, TG_EINVAL, "rules is NULL but rule_count > 0");
    }
    if (o.rule_count > tollgate::route_table::max_rules) {
      return fail(err, TG_ERANGE, "rule_count must be <= 1048576");
    }
    if (o.venue_set_count != 0 && o.venue_sets == nullptr) {
      return fail(err, TG_EINVAL, "venue_sets is NULL but venue_set_count > 0");
    }
    std::vector<std::shared_ptr<tollgate::venue_set>> sets;
    for (std::size_t i = 0; i < o.venue_set_count; ++i) {
      if (!live_set(o.venue_sets[i])) {
        return fail(err, TG_EINVAL,
                    "venue_sets[" + std::to_string(i) + "] is not a live tg_venue_set");
      }
      sets.push_back(o.venue_sets[i]->impl);
    }
    std::vector<tollgate::route_rule> rules;
    rules.reserve(o.rule_count);
    const std::size_t stride = o.rule_count != 0 ? o.rules[0].struct_size : 0;
    const auto* base = reinterpret_cast<const unsigned char*>(o.rules);
    for (std::size_t i = 0; i < o.rule_count; ++i) {
      const auto* in = reinterpret_cast<const tg_route_rule*>(base + i * stride);
      if (in->struct_size != stride) {
        return rule_fail(err, bad_rule, i, TG_EVERSION,
                         "struct_size differs from rules[0] (every rule must have the same)");
      }
      tg_route_rule r;
      tg_route_rule_init(&r);
      if (int rc = read_options(in, route_rule_v1, &r, err); rc != TG_OK) {
        if (bad_rule != nullptr) *bad_rule = i;
        return rc;
      }
      if (r.reserved != 0) return rule_fail(err, bad_rule, i, TG_EINVAL, "reserved must be 0");
      if (r.path == nullptr) return rule_fail(err, bad_rule, i, TG_EINVAL, "path is NULL");
      if (r.header_count != 0 && r.headers == nullptr) {
        return rule_fail(err, bad_rule, i, TG_EINVAL, "headers is NULL but header_count > 0");
      }
      if (r.header_count > tollgate::route_table::max_headers_per_rule) {
        return rule_fail(err, bad_rule, i, TG_ERANGE, "more than 16 header predicates");
      }
      tollgate::route_rule cr;
      cr.route_id = r.route_id;
      cr.methods = split_methods(r.methods);
      cr.host = cstr(r.host);
      cr.path = r.path;
      cr.kind = static_cast<tollgate::path_kind>(r.path_kind);
      cr.priority = r.priority;
      cr.target = r.target;
      cr.venue_set = r.venue_set;
      for (std::uint32_t k = 0; k < r.header_count; ++k) {
        const tg_header_predicate& hp = r.headers[k];
        if (hp.name == nullptr) {
          return rule_fail(err, bad_rule, i, TG_EINVAL,
                           "headers[" + std::to_string(k) + "].name is NULL");
        }
        if (hp.invert != 0 && hp.invert != 1) {
          return rule_fail(err, bad_rule, i, TG_EINVAL,
                           "headers[" + std::to_string(k) + "].invert must be 0 or 1");
        }
        cr.headers.push_back(
            {hp.name, cstr(hp.value), static_cast<tollgate::header_op>(hp.op), hp.invert != 0});
      }
      rules.push_back(std::move(cr));
    }
    tollgate::route_table::build_error be;
    auto built = tollgate::route_table::build(rules, std::move(sets), &be);
    if (!built.ok()) {
      if (bad_rule != nullptr) *bad_rule = be.rule_index;
      return from_status(built.status(), err);
    }
    auto h = std::make_unique<tg_route_table>();
    h->impl = std::move(*built);
    *out = h.release();
    set_error(err, TG_OK, "");
    return TG_OK;
  });
}

void tg_route_table_free(tg_route_table* table) {
  tollgate::capi::release(table, tollgate::capi::tag_route_table);
}

const char* tg_route_status_str(int status) {
  if (status < 0 || status > TG_ROUTE_PATH_TOO_DEEP) return "unknown";
  return tollgate::route_status_name(static_cast<tollgate::route_status>(status));
}

int tg_route_table_match(const tg_route_table* table, const tg_route_request* req,
                         tg_route_match* out) {
  return guarded(nullptr, [&]() -> int {
    if (!live_table(table) || req == nullptr || out == nullptr || !request_ok(*req)) {
      return TG_EINVAL;
    }
    to_c(
        with_request(
            *req, [&](const tollgate::route_request& q) noexcept { return table->impl->match(q); }),
        out);
    return TG_OK;
  });
}

int tg_route_table_match_many(const tg_route_table* table, const tg_route_request* reqs, size_t n,
                              tg_route_match* out) {
  return guarded(nullptr, [&]() -> int {
    if (!live_table(table)) return TG_EINVAL;
    if (n == 0) return TG_OK;
    if (reqs == nullptr || out == nullptr) return TG_EINVAL;
    for (std::size_t i = 0; i < n; ++i) {
      if (!request_ok(reqs[i])) return TG_EINVAL;
    }
    const tollgate::route_table& t = *table->impl;
    for (std::size_t i = 0; i < n; ++i) {
      to_c(with_request(reqs[i],
                        [&](const tollgate::route_request& q) noexcept { return t.match(q); }),
           &out[i]);
    }
    return TG_OK;
  });
}

int tg_route_table_param_name(const tg_route_table* table, uint32_t rule_index, uint32_t i,
                              const char** name, size_t* name_len) {
  return guarded(nullptr, [&]() -> int {
    if (!live_table(table) || name == nullptr || name_len == nullptr) return TG_EINVAL;
    const std::string_view n = table->impl->param_name(rule_index, i);
    if (n.empty()) return TG_ERANGE;
    *name = n.data();
    *name_len = n.size();
    return TG_OK;
  });
}

int tg_route_table_rule_count(const tg_route_table* table, size_t* out) {
  return guarded(nullptr, [&]() -> int {
    if (!live_table(table) || out == nullptr) return TG_EINVAL;
    *out = table->impl->rule_count();
    return TG_OK;
  });
}

int tg_router_new(const tg_route_table* initial, tg_router** out, tg_error* err) {
  return guarded(err, [&]() -> int {
    if (out == nullptr) return fail(err, TG_EINVAL, "out is NULL");
    if (initial != nullptr && !live_table(initial)) {
      return fail(err, TG_EINVAL, "initial is not a live tg_route_table");
    }
    auto h = std::make_unique<tg_router>();
    h->impl = initial != nullptr ? std::make_unique<tollgate::router>(initial->impl)
                                 : std::make_unique<tollgate::router>();
    *out = h.release();
    set_error(err, TG_OK, "");
    return TG_OK;
  });
}

void tg_router_free(tg_router* router) {
  tollgate::capi::release(router, tollgate::capi::tag_router);
}

int tg_router_publish(tg_router* router, const tg_route_table* table, tg_error* err) {
  return guarded(err, [&]() -> int {
    if (!live_router(router)) return fail(err, TG_EINVAL, "router is not a live tg_router");
    if (!live_table(table)) return fail(err, TG_EINVAL, "table is not a live tg_route_table");
    if (absl::Status st = router->impl->publish(table->impl); !st.ok()) {
      return from_status(st, err);
    }
    set_error(err, TG_OK, "");
    return TG_OK;
  });
}

int tg_router_match(const tg_router* router, const tg_route_request* req, tg_route_match* out) {
  return guarded(nullptr, [&]() -> int {
    if (!live_router(router) || req == nullptr || out == nullptr || !request_ok(*req)) {
      return TG_EINVAL;
    }
    to_c(with_request(
             *req,
             [&](const tollgate::route_request& q) noexcept { return router->impl->match(q); }),
         out);
    return TG_OK;
  });
}

int tg_router_match_many(const tg_router* router, const tg_route_request* reqs, size_t n,
                         tg_route_match* out) {
  return guarded(nullptr, [&]() -> int {
    if (!live_router(router)) return TG_EINVAL;
    if (n == 0) return TG_OK;
    if (reqs == nullptr || out == nullptr) return TG_EINVAL;
    for (std::size_t i = 0; i < n; ++i) {
      if (!request_ok(reqs[i])) return TG_EINVAL;
    }
    router->impl->read([&](const tollgate::route_table& t) noexcept {
      for (std::size_t i = 0; i < n; ++i) {
        to_c(with_request(reqs[i],
                          [&](const tollgate::route_request& q) noexcept { return t.match(q); }),
             &out[i]);
      }
      return 0;
    });
    return TG_OK;
  });
}

int tg_router_route(const tg_router* router, const tg_route_request* req, const void* key,
                    size_t key_len, uint64_t nonce, uint64_t now_ns, tg_route_decision* out) {
  return guarded(nullptr, [&]() -> int {
    if (!live_router(router) || req == nullptr || out == nullptr || !request_ok(*req) ||
        !bytes_ok(key, key_len)) {
      return TG_EINVAL;
    }
    const std::string_view k = view(static_cast<const char*>(key), key_len);
    const tollgate::route_decision d =
        with_request(*req, [&](const tollgate::route_request& q) noexcept {
          return router->impl->route(q, k, nonce, now_ns);
        });
    to_c(d.match, &out->match);
    to_c(d.venue, &out->venue);
    return TG_OK;
  });
}

int tg_router_version(const tg_router* router, uint64_t* out) {
  return guarded(nullptr, [&]() -> int {
    if (!live_router(router) || out == nullptr) return TG_EINVAL;
    *out = router->impl->version();
    return TG_OK;
  });
}

int tg_router_current(const tg_router* router, tg_route_table** out) {
  return guarded(nullptr, [&]() -> int {
    if (!live_router(router) || out == nullptr) return TG_EINVAL;
    auto h = std::make_unique<tg_route_table>();
    h->impl = router->impl->current();
    *out = h.release();
    return TG_OK;
  });
}

int tg_path_normalize(const char* path, size_t path_len, char* dst, size_t cap, size_t* written,
                      int* status) {
  return guarded(nullptr, [&]() -> int {
    if (status != nullptr) *status = TG_ROUTE_MATCHED;
    if (!bytes_ok(path, path_len) || written == nullptr || !bytes_ok(dst, cap)) return TG_EINVAL;
    std::size_t n = 0;
    const tollgate::route_status st = tollgate::normalize_path(view(path, path_len), dst, cap, n);
    if (st != tollgate::route_status::matched) {
      if (status != nullptr) *status = static_cast<int>(st);
      *written = 0;
      return TG_EINVAL;
    }
    *written = n;
    return n > cap ? TG_ETOOSMALL : TG_OK;
  });
}

void tg_venue_set_options_init(tg_venue_set_options* opts) {
  if (opts == nullptr) return;
  std::memset(static_cast<void*>(opts), 0, sizeof *opts);
  opts->struct_size = sizeof *opts;
  opts->strategy = TG_VENUE_WEIGHTED;
  opts->latency_alpha = 0.2;
  opts->latency_decay_ns = UINT64_C(10000000000);
}

int tg_venue_set_new(const tg_venue_set_options* opts, tg_venue_set** out, tg_error* err) {
  return guarded(err, [&]() -> int {
    if (out == nullptr) return fail(err, TG_EINVAL, "out is NULL");
    tg_venue_set_options o;
    tg_venue_set_options_init(&o);
    if (int rc = read_options(opts, venue_set_options_v1, &o, err); rc != TG_OK) return rc;
    if (o.venue_count != 0 && o.venues == nullptr) {
      return fail(err, TG_EINVAL, "venues is NULL but venue_count > 0");
    }
    if (o.venue_count > tollgate::venue_set::max_venues) {
      return fail(err, TG_ERANGE, "a venue set holds at most 64 venues");
    }
    if (o.sticky != 0 && o.sticky != 1) return fail(err, TG_EINVAL, "sticky must be 0 or 1");
    std::vector<tollgate::venue_config> venues;
    for (std::uint32_t i = 0; i < o.venue_count; ++i) {
      const tg_venue& v = o.venues[i];
      tollgate::venue_config c{v.venue_id, v.weight, nullptr};
      if (v.breaker != nullptr) {
        if (!live_breaker_handle(v.breaker)) {
          return fail(err, TG_EINVAL,
                      "venues[" + std::to_string(i) + "].breaker is not a live tg_breaker");
        }
        // The set shares the breaker: a reference on the handle, dropped
        // when the set goes.
        tg_breaker* b = v.breaker;
        b->refs.fetch_add(1, std::memory_order_relaxed);
        c.health = std::shared_ptr<tollgate::breaker>(b->impl.get(),
                                                      [b](tollgate::breaker*) { unref(b); });
      }
      venues.push_back(std::move(c));
    }
    tollgate::venue_set_options vo;
    vo.strategy = static_cast<tollgate::venue_strategy>(o.strategy);
    vo.sticky = o.sticky != 0;
    vo.seed = o.seed;
    vo.latency_alpha = o.latency_alpha;
    vo.latency_decay_ns = o.latency_decay_ns;
    auto made = tollgate::venue_set::create(std::move(venues), vo);
    if (!made.ok()) return from_status(made.status(), err);
    auto h = std::make_unique<tg_venue_set>();
    h->impl = std::move(*made);
    *out = h.release();
    set_error(err, TG_OK, "");
    return TG_OK;
  });
}

void tg_venue_set_free(tg_venue_set* set) {
  tollgate::capi::release(set, tollgate::capi::tag_venue_set);
}

int tg_venue_set_pick(const tg_venue_set* set, const void* key, size_t key_len, uint64_t nonce,
                      uint64_t now_ns, tg_venue_pick* out) {
  return guarded(nullptr, [&]() -> int {
    if (!live_set(set) || out == nullptr || !bytes_ok(key, key_len)) return TG_EINVAL;
    to_c(set->impl->pick(view(static_cast<const char*>(key), key_len), nonce, now_ns), out);
    return TG_OK;
  });
}

int tg_venue_set_choose(const tg_venue_set* set, const void* key, size_t key_len, uint64_t nonce,
                        uint64_t eligible, tg_venue_pick* out) {
  return guarded(nullptr, [&]() -> int {
    if (!live_set(set) || out == nullptr || !bytes_ok(key, key_len)) return TG_EINVAL;
    to_c(set->impl->choose(view(static_cast<const char*>(key), key_len), nonce, eligible), out);
    return TG_OK;
  });
}

int tg_venue_set_record_latency(tg_venue_set* set, uint32_t index, uint64_t latency_ns,
                                uint64_t now_ns) {
  return guarded(nullptr, [&]() -> int {
    if (!live_set(set)) return TG_EINVAL;
    return set->impl->record_latency(index, latency_ns, now_ns) ? TG_OK : TG_ERANGE;
  });
}

int tg_venue_set_set_enabled(tg_venue_set* set, uint32_t index, int enabled) {
  return guarded(nullptr, [&]() -> int {
    if (!live_set(set) || (enabled != 0 && enabled != 1)) return TG_EINVAL;
    return set->impl->set_enabled(index, enabled != 0) ? TG_OK : TG_ERANGE;
  });
}

int tg_venue_set_size(const tg_venue_set* set, uint32_t* out) {
  return guarded(nullptr, [&]() -> int {
    if (!live_set(set) || out == nullptr) return TG_EINVAL;
    *out = static_cast<uint32_t>(set->impl->size());
    return TG_OK;
  });
}

int tg_venue_set_stats(const tg_venue_set* set, uint32_t index, uint64_t now_ns,
                       tg_venue_stats* out) {
  return guarded(nullptr, [&]() -> int {
    if (!live_set(set) || out == nullptr) return TG_EINVAL;
    if (index >= set->impl->size()) return TG_ERANGE;
    const tollgate::venue_stats s = set->impl->stats(index, now_ns);
    out->venue_id = s.venue_id;
    out->weight = s.weight;
    out->enabled = s.enabled ? 1 : 0;
    out->reserved = 0;
    out->ready_in_ns = s.ready_in_ns;
    out->latency_ewma_ns = s.latency_ewma_ns;
    out->latency_samples = s.latency_samples;
    return TG_OK;
  });
}

}  // extern "C"
