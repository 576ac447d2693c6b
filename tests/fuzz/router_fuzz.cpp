// Fuzz target: route rule building and matching.
//
// Input: rule lines, a line "--", then request lines (without "--", every
// line is a request against a fixed table). Fields are separated by '|':
//   rule:    methods|host|path|kind(e or p)|priority|header|op(-, =, ^)|value|invert(0/1)
//   request: method|host|path|header|value
// Missing fields are empty. Building may fail (that is checked to be a
// clean status, never a crash); each request is matched and these must hold:
//   - a match names a rule of the table, with its route id and target;
//   - parameters lie inside the caller's path;
//   - normalize_path is idempotent, and the normal form of a path reaches
//     the same route as the path itself (no spelling reaches another route),
//     unless the normal form is longer than the path limit, when it must be
//     refused as too long;
//   - the same request matched twice gives the same answer.
// Any violation aborts, which libFuzzer and the replay driver report.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "tollgate/router.hpp"

namespace {

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  std::size_t at = 0;
  while (true) {
    const std::size_t next = s.find(sep, at);
    out.push_back(
        s.substr(at, next == std::string_view::npos ? std::string_view::npos : next - at));
    if (next == std::string_view::npos) break;
    at = next + 1;
  }
  return out;
}

std::string_view field(const std::vector<std::string_view>& f, std::size_t i) {
  return i < f.size() ? f[i] : std::string_view();
}

[[noreturn]] void violated(const char* what, std::string_view path) {
  std::fprintf(stderr, "router_fuzz: %s (path \"%.*s\")\n", what, static_cast<int>(path.size()),
               path.data());
  std::abort();
}

std::vector<tollgate::route_rule> default_rules() {
  std::vector<tollgate::route_rule> rules;
  const char* paths[] = {
      "/",      "/orders",  "/orders/{id}",   "/orders/{id}/fills", "/files/{*rest}",
      "/a/b/c", "/a/{x}/d", "/caf%C3%A9/{id}"};
  std::uint32_t id = 1;
  for (const char* p : paths) {
    tollgate::route_rule r;
    r.route_id = id++;
    r.target = r.route_id * 10;
    r.path = p;
    r.kind = r.path == "/" ? tollgate::path_kind::prefix : tollgate::path_kind::exact;
    rules.push_back(r);
  }
  tollgate::route_rule hosted;
  hosted.route_id = id++;
  hosted.host = "*.example.com";
  hosted.path = "/orders/{id}";
  hosted.methods = {"POST"};
  hosted.headers = {{"x-desk", "eq", tollgate::header_op::prefix, false}};
  rules.push_back(hosted);
  return rules;
}

tollgate::route_rule parse_rule(std::string_view line, std::uint32_t id) {
  const auto f = split(line, '|');
  tollgate::route_rule r;
  r.route_id = id;
  r.target = id * 10;
  if (!field(f, 0).empty()) {
    for (std::string_view m : split(field(f, 0), ',')) r.methods.emplace_back(m);
  }
  r.host = std::string(field(f, 1));
  r.path = std::string(field(f, 2));
  r.kind = field(f, 3) == "p" ? tollgate::path_kind::prefix : tollgate::path_kind::exact;
  const std::string_view prio = field(f, 4);
  r.priority = prio.empty() ? 0 : static_cast<std::int32_t>(prio[0]) - '0';
  if (!field(f, 5).empty()) {
    const std::string_view op = field(f, 6);
    tollgate::header_predicate h;
    h.name = std::string(field(f, 5));
    h.op = op == "="   ? tollgate::header_op::exact
           : op == "^" ? tollgate::header_op::prefix
                       : tollgate::header_op::present;
    if (h.op != tollgate::header_op::present) h.value = std::string(field(f, 7));
    h.invert = field(f, 8) == "1";
    r.headers.push_back(h);
  }
  return r;
}

void check_request(const tollgate::route_table& t, const std::vector<tollgate::route_rule>& rules,
                   std::string_view line) {
  const auto f = split(line, '|');
  tollgate::header_view hv{field(f, 3), field(f, 4)};
  tollgate::route_request q;
  q.method = field(f, 0);
  q.host = field(f, 1);
  q.path = field(f, 2);
  q.headers = &hv;
  q.header_count = field(f, 3).empty() ? 0 : 1;
  const tollgate::route_match m = t.match(q);
  if (m.ok()) {
    if (m.rule_index >= rules.size()) violated("rule index out of range", q.path);
    const tollgate::route_rule& r = rules[m.rule_index];
    if (m.route_id != r.route_id || m.target != r.target) violated("wrong route id", q.path);
    if (m.param_count > tollgate::max_route_params) violated("too many params", q.path);
    for (std::uint32_t i = 0; i < m.param_count; ++i) {
      const std::uint64_t end = std::uint64_t{m.params[i].offset} + m.params[i].length;
      if (end > q.path.size() || m.params[i].length == 0) violated("param outside path", q.path);
    }
  }
  const tollgate::route_match again = t.match(q);
  if (again.status != m.status || again.route_id != m.route_id) {
    violated("matching is not deterministic", q.path);
  }

  // Normalisation: idempotent, and the normal form routes the same way.
  std::string norm(q.path.size() * 3 + 2, '\0');
  std::size_t n = 0;
  const tollgate::route_status st = tollgate::normalize_path(q.path, norm.data(), norm.size(), n);
  const bool path_refused = st != tollgate::route_status::matched;
  if (path_refused != (m.status >= tollgate::route_status::bad_encoding &&
                       m.status != tollgate::route_status::bad_host)) {
    if (!(m.status == tollgate::route_status::bad_host && path_refused)) {
      violated("normalize_path and match disagree on the path", q.path);
    }
  }
  if (path_refused) return;
  if (n > norm.size()) violated("normal form longer than 3x the path", q.path);
  norm.resize(n);
  if (n > tollgate::detail::max_path_bytes) {
    // Escaping can make the normal form longer than the request (a raw byte
    // >= 0x80 becomes %XX). A normal form over the limit is itself refused:
    // fail closed, never another route.
    std::size_t ignored = 0;
    char one[1];
    if (tollgate::normalize_path(norm, one, sizeof one, ignored) !=
        tollgate::route_status::path_too_long) {
      violated("an over-long normal form is not refused as too long", q.path);
    }
    return;
  }
  std::string twice(norm.size() + 2, '\0');
  std::size_t n2 = 0;
  if (tollgate::normalize_path(norm, twice.data(), twice.size(), n2) !=
          tollgate::route_status::matched ||
      std::string_view(twice.data(), n2) != norm) {
    violated("normalize_path is not idempotent", q.path);
  }
  if (m.status == tollgate::route_status::bad_host) return;
  tollgate::route_request nq = q;
  nq.path = norm;
  const tollgate::route_match nm = t.match(nq);
  if (nm.status != m.status || nm.route_id != m.route_id || nm.rule_index != m.rule_index) {
    violated("the normal form of a path reaches another route", q.path);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  std::vector<std::string_view> lines = split(in, '\n');
  std::vector<tollgate::route_rule> rules;
  std::size_t first_request = 0;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (lines[i] == "--") {
      for (std::size_t k = 0; k < i && k < 256; ++k) {
        rules.push_back(parse_rule(lines[k], static_cast<std::uint32_t>(k + 1)));
      }
      first_request = i + 1;
      break;
    }
  }
  if (first_request == 0) rules = default_rules();
  tollgate::route_table::build_error err;
  auto table = tollgate::route_table::build(rules, {}, &err);
  if (!table.ok()) {
    if (err.status.ok() || err.status != table.status()) violated("build error not reported", "");
    if (err.rule_index != tollgate::route_table::npos_rule && err.rule_index >= rules.size()) {
      violated("build error names no rule", "");
    }
    return 0;
  }
  for (std::size_t i = first_request; i < lines.size() && i < first_request + 256; ++i) {
    check_request(**table, rules, lines[i]);
  }
  return 0;
}
