// Route matching: precedence, parameters, normalisation, build errors and
// atomic publication.
#include <catch2/catch.hpp>

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "tollgate/router.hpp"

using tollgate::header_op;
using tollgate::header_predicate;
using tollgate::header_view;
using tollgate::path_kind;
using tollgate::route_match;
using tollgate::route_request;
using tollgate::route_rule;
using tollgate::route_status;
using tollgate::route_table;

namespace {

route_rule rule(std::uint32_t id, std::string path, path_kind kind = path_kind::exact) {
  route_rule r;
  r.route_id = id;
  r.target = id * 10;
  r.path = std::move(path);
  r.kind = kind;
  return r;
}

std::shared_ptr<const route_table> build(const std::vector<route_rule>& rules) {
  route_table::build_error e;
  auto t = route_table::build(rules, {}, &e);
  INFO((t.ok() ? std::string("ok") : std::string(t.status().message())));
  REQUIRE(t.ok());
  return *t;
}

route_match match(const route_table& t, std::string_view path, std::string_view method = "GET",
                  std::string_view host = "", const std::vector<header_view>& headers = {}) {
  route_request r;
  r.method = method;
  r.host = host;
  r.path = path;
  r.headers = headers.data();
  r.header_count = headers.size();
  return t.match(r);
}

// Route id of a match, or -1 - status, so a failed CHECK shows why.
long long routed(const route_table& t, std::string_view path, std::string_view method = "GET",
                 std::string_view host = "", const std::vector<header_view>& headers = {}) {
  const route_match m = match(t, path, method, host, headers);
  return m.ok() ? static_cast<long long>(m.route_id) : -1 - static_cast<long long>(m.status);
}

constexpr long long no_route = -1 - static_cast<long long>(route_status::no_route);
constexpr long long not_allowed = -1 - static_cast<long long>(route_status::method_not_allowed);

std::string param(std::string_view path, const route_match& m, std::size_t i) {
  REQUIRE(i < m.param_count);
  return std::string(path.substr(m.params[i].offset, m.params[i].length));
}

std::string build_error_of(const std::vector<route_rule>& rules, std::size_t* index = nullptr) {
  route_table::build_error e;
  auto t = route_table::build(rules, {}, &e);
  REQUIRE_FALSE(t.ok());
  CHECK(e.status == t.status());
  if (index != nullptr) *index = e.rule_index;
  return std::string(t.status().message());
}

}  // namespace

TEST_CASE("path precedence: literal over param over rest over prefix", "[router]") {
  auto t = build({rule(5, "/", path_kind::prefix), rule(4, "/orders", path_kind::prefix),
                  rule(3, "/orders/{*rest}"), rule(2, "/orders/{id}"), rule(1, "/orders/new")});
  CHECK(routed(*t, "/orders/new") == 1);
  CHECK(routed(*t, "/orders/42") == 2);
  CHECK(routed(*t, "/orders/42/fills") == 3);
  CHECK(routed(*t, "/orders") == 4);
  CHECK(routed(*t, "/ordersx") == 5);  // prefixes are whole segments
  CHECK(routed(*t, "/x/y") == 5);
  CHECK(routed(*t, "/") == 5);
}

TEST_CASE("a failed literal branch backtracks to the parameter branch", "[router]") {
  auto t = build({rule(1, "/a/b/c"), rule(2, "/a/{x}/d"), rule(3, "/a/{x}/{y}/e")});
  CHECK(routed(*t, "/a/b/c") == 1);
  CHECK(routed(*t, "/a/b/d") == 2);
  CHECK(routed(*t, "/a/b/c/e") == 3);
  CHECK(routed(*t, "/a/b") == no_route);
  CHECK(routed(*t, "/a/b/c/d/e") == no_route);
}

TEST_CASE("an exact rule beats a prefix rule ending at the same place", "[router]") {
  auto t = build({rule(1, "/api", path_kind::prefix), rule(2, "/api"),
                  rule(3, "/api/admin", path_kind::prefix)});
  CHECK(routed(*t, "/api") == 2);
  CHECK(routed(*t, "/api/") == 2);  // trailing slash is insignificant
  CHECK(routed(*t, "/api/x") == 1);
  CHECK(routed(*t, "/api/admin") == 3);  // the longer prefix
  CHECK(routed(*t, "/api/admin/users/7") == 3);
}

TEST_CASE("a rest parameter needs at least one segment", "[router]") {
  auto t = build({rule(1, "/files/{*path}")});
  CHECK(routed(*t, "/files") == no_route);
  const std::string_view p = "/files/a/b%20c/d.txt";
  const route_match m = match(*t, p);
  REQUIRE(m.ok());
  REQUIRE(m.param_count == 1);
  CHECK(param(p, m, 0) == "a/b%20c/d.txt");  // raw spelling
  CHECK(t->param_name(m.rule_index, 0) == "path");
}

TEST_CASE("parameters are raw offsets into the caller's path", "[router]") {
  auto t = build({rule(1, "/accounts/{account}/orders/{order}")});
  const std::string_view p = "//accounts/AC%2d1/./orders/o-9?verbose=1";
  const route_match m = match(*t, p);
  REQUIRE(m.ok());
  REQUIRE(m.param_count == 2);
  CHECK(param(p, m, 0) == "AC%2d1");
  CHECK(param(p, m, 1) == "o-9");
  CHECK(t->param_name(0, 0) == "account");
  CHECK(t->param_name(0, 1) == "order");
  CHECK(t->param_name(0, 2).empty());
  CHECK(t->param_name(7, 0).empty());
  // The captured pointer really points into the caller's buffer.
  CHECK(p.data() + m.params[1].offset == p.data() + p.find("o-9"));
}

TEST_CASE("host precedence: exact, longer wildcard, shorter wildcard, any", "[router]") {
  auto r = [](std::uint32_t id, std::string host, std::string path) {
    route_rule x = rule(id, std::move(path));
    x.host = std::move(host);
    return x;
  };
  auto t = build({r(1, "", "/q"), r(2, "*.example.com", "/q"), r(3, "*.eu.example.com", "/q"),
                  r(4, "fix.eu.example.com", "/q"), r(5, "fix.eu.example.com", "/only"),
                  r(6, "", "/{x}")});
  CHECK(routed(*t, "/q", "GET", "fix.eu.example.com") == 4);
  CHECK(routed(*t, "/q", "GET", "FIX.EU.Example.COM.") == 4);  // case, trailing dot
  CHECK(routed(*t, "/q", "GET", "fix.eu.example.com:8443") == 4);
  CHECK(routed(*t, "/q", "GET", "a.eu.example.com") == 3);
  CHECK(routed(*t, "/q", "GET", "a.b.eu.example.com") == 3);
  CHECK(routed(*t, "/q", "GET", "us.example.com") == 2);
  CHECK(routed(*t, "/q", "GET", "example.com") == 1);  // *.x does not match x itself
  CHECK(routed(*t, "/q", "GET", "") == 1);
  CHECK(routed(*t, "/q", "GET", "other.org") == 1);
  // A host-specific rule that does not match the path falls back to less
  // specific hosts: precedence is among matching rules.
  CHECK(routed(*t, "/zz", "GET", "fix.eu.example.com") == 6);
  CHECK(routed(*t, "/only", "GET", "fix.eu.example.com") == 5);
  CHECK(routed(*t, "/only", "GET", "x.eu.example.com") == 6);
  CHECK(routed(*t, "/q", "GET", "[::1]:8080") == 1);
  CHECK(routed(*t, "/q", "GET", "bad host") == -1 - static_cast<int>(route_status::bad_host));
  CHECK(routed(*t, "/q", "GET", "a/b") == -1 - static_cast<int>(route_status::bad_host));
  CHECK(routed(*t, "/q", "GET", std::string(300, 'a')) ==
        -1 - static_cast<int>(route_status::bad_host));
}

TEST_CASE("methods: named beat any, fewer named first, 405 when only the method fails",
          "[router]") {
  auto m = [](std::uint32_t id, std::vector<std::string> methods, std::string path) {
    route_rule x = rule(id, std::move(path));
    x.methods = std::move(methods);
    return x;
  };
  auto t = build({m(1, {}, "/o"), m(2, {"GET", "POST"}, "/o"), m(3, {"POST"}, "/o"),
                  m(4, {"DELETE"}, "/o/{id}")});
  CHECK(routed(*t, "/o", "POST") == 3);
  CHECK(routed(*t, "/o", "GET") == 2);
  CHECK(routed(*t, "/o", "PUT") == 1);
  CHECK(routed(*t, "/o", "get") == 1);  // methods are case-sensitive
  CHECK(routed(*t, "/o/7", "DELETE") == 4);
  CHECK(routed(*t, "/o/7", "GET") == not_allowed);
  CHECK(routed(*t, "/p", "GET") == no_route);
}

TEST_CASE("header predicates: present, exact, prefix, inverted, count", "[router]") {
  auto h = [](std::uint32_t id, std::vector<header_predicate> preds, std::int32_t prio = 0) {
    route_rule x = rule(id, "/o");
    x.headers = std::move(preds);
    x.priority = prio;
    return x;
  };
  auto t = build({
      h(1, {}),
      h(2, {{"X-Venue", "", header_op::present, false}}),
      h(3, {{"x-venue", "XLON", header_op::exact, false},
            {"x-desk", "eq-", header_op::prefix, false}}),
      h(4, {{"x-test", "1", header_op::exact, true},
            {"x-venue", "", header_op::present, false},
            {"x-canary", "", header_op::present, false}}),
  });
  using hv = header_view;
  CHECK(routed(*t, "/o") == 1);
  CHECK(routed(*t, "/o", "GET", "", {hv{"X-VENUE", "XPAR"}}) == 2);
  CHECK(routed(*t, "/o", "GET", "", {hv{"x-venue", "XLON"}, hv{"X-Desk", "eq-cash"}}) == 3);
  CHECK(routed(*t, "/o", "GET", "", {hv{"x-venue", "XLON"}, hv{"X-Desk", "fx"}}) == 2);
  CHECK(routed(*t, "/o", "GET", "", {hv{"x-venue", "XLON"}, hv{"x-canary", ""}}) == 4);
  CHECK(routed(*t, "/o", "GET", "",
               {hv{"x-venue", "XLON"}, hv{"x-canary", ""}, hv{"x-test", "1"}}) == 2);
  // Duplicated headers: a predicate holds if any occurrence satisfies it,
  // and an inverted one only if none does, so a decoy cannot flip it.
  CHECK(routed(*t, "/o", "GET", "",
               {hv{"x-venue", "XLON"}, hv{"x-canary", ""}, hv{"x-test", "0"}, hv{"x-test", "1"}}) ==
        2);
  CHECK(routed(*t, "/o", "GET", "",
               {hv{"x-venue", "XPAR"}, hv{"x-venue", "XLON"}, hv{"x-desk", "eq-1"}}) == 3);
  // A null header array with a count is read as no headers.
  route_request r;
  r.method = "GET";
  r.path = "/o";
  r.header_count = 5;
  CHECK(t->match(r).route_id == 1);
}

TEST_CASE("priority breaks ties, then declaration order", "[router]") {
  auto p = [](std::uint32_t id, std::int32_t prio, std::string hdr) {
    route_rule x = rule(id, "/o/{id}");
    x.priority = prio;
    if (!hdr.empty()) x.headers.push_back({hdr, "", header_op::present, false});
    return x;
  };
  auto t = build({p(1, 0, ""), p(2, 5, ""), p(3, 0, "a"), p(4, 0, "b"), p(5, 9, "c")});
  using hv = header_view;
  CHECK(routed(*t, "/o/1") == 2);
  CHECK(routed(*t, "/o/1", "GET", "", {hv{"a", ""}, hv{"b", ""}}) == 3);  // earlier declared
  CHECK(routed(*t, "/o/1", "GET", "", {hv{"b", ""}, hv{"c", ""}}) == 5);  // higher priority
}

TEST_CASE("every spelling of a path reaches the same route", "[router][normalize]") {
  auto t = build({rule(1, "/admin/keys"), rule(2, "/{x}/{y}"), rule(3, "/", path_kind::prefix)});
  const char* same[] = {"/admin/keys",       "//admin///keys/",      "/admin/./keys",
                        "/admin/x/../keys",  "/%61dmin/keys",        "/%61%64%6D%69%6e/keys",
                        "/admin/keys?x=/..", "/admin/keys#frag",     "/../admin/keys",
                        "/admin/%2e/keys",   "/admin/x/%2e%2e/keys", "/a/../../admin/keys"};
  for (const char* p : same) {
    INFO(p);
    CHECK(routed(*t, p) == 1);
  }
  const std::pair<const char*, route_status> refused[] = {
      {"/admin%2Fkeys", route_status::ambiguous_separator},
      {"/admin%2fkeys", route_status::ambiguous_separator},
      {"/admin%5Ckeys", route_status::ambiguous_separator},
      {"/admin\\keys", route_status::ambiguous_separator},
      {"/admin/%zzkeys", route_status::bad_encoding},
      {"/admin/keys%4", route_status::bad_encoding},
      {"/admin/keys%", route_status::bad_encoding},
      {"/admin/k%00eys", route_status::bad_encoding},
      {"/admin/k\x01eys", route_status::bad_encoding},
      {"/admin/k%7Feys", route_status::bad_encoding},
      {"admin/keys", route_status::path_not_absolute},
      {"", route_status::path_not_absolute},
      {"?/admin", route_status::path_not_absolute},
  };
  for (const auto& [p, st] : refused) {
    INFO(p);
    CHECK(match(*t, p).status == st);
  }
  // The limits.
  std::string long_path = "/" + std::string(8191, 'a');
  CHECK(routed(*t, long_path) == 3);
  long_path += "a";
  CHECK(match(*t, long_path).status == route_status::path_too_long);
  std::string deep;
  for (int i = 0; i < 128; ++i) deep += "/s";
  CHECK(routed(*t, deep) == 3);
  CHECK(match(*t, deep + "/s").status == route_status::path_too_deep);
  CHECK(routed(*t, deep + "/..") == 3);  // normalised depth is what counts
}

TEST_CASE("normalize_path writes the normal form", "[router][normalize]") {
  auto norm = [](std::string_view in) {
    char out[64];
    std::size_t n = 0;
    const route_status st = tollgate::normalize_path(in, out, sizeof out, n);
    REQUIRE(st == route_status::matched);
    REQUIRE(n <= sizeof out);
    return std::string(out, n);
  };
  CHECK(norm("/") == "/");
  CHECK(norm("//") == "/");
  CHECK(norm("/a/./b/../c//") == "/a/c");
  CHECK(norm("/%7Euser/%41%2d") == "/~user/A-");
  CHECK(norm("/caf%c3%a9") == "/caf%C3%A9");
  CHECK(norm("/a b/%3F/%25") == "/a%20b/%3F/%25");
  CHECK(norm("/x?q=1") == "/x");
  CHECK(norm("/..") == "/");
  // Idempotent: the normal form of a normal form is itself.
  CHECK(norm(norm("/a/%2e%2e/b/%7e/c%20d")) == norm("/a/%2e%2e/b/%7e/c%20d"));
  // Too small a buffer: the needed size is reported.
  char tiny[3];
  std::size_t n = 0;
  CHECK(tollgate::normalize_path("/abcdef", tiny, sizeof tiny, n) == route_status::matched);
  CHECK(n == 7);
  CHECK(tollgate::normalize_path("/a%2fb", tiny, sizeof tiny, n) ==
        route_status::ambiguous_separator);
  CHECK(n == 0);
}

TEST_CASE("rule literals are normalised like request paths", "[router][normalize]") {
  auto t = build({rule(1, "/caf%C3%A9/%7euser")});
  CHECK(routed(*t, "/caf%c3%a9/~user") == 1);
  CHECK(routed(*t, "/caf\xc3\xa9/%7Euser") == 1);
}

TEST_CASE("malformed and conflicting rules are rejected with index and reason", "[router][build]") {
  struct bad {
    std::string path;
    std::string host;
    std::vector<std::string> methods;
    const char* why;
  };
  const bad cases[] = {
      {"/a/{b", "", {}, "whole segment"},
      {"/a/b}", "", {}, "whole segment"},
      {"/a/x{y}", "", {}, "whole segment"},
      {"/a/{}", "", {}, "whole segment"},
      {"/a/{*}", "", {}, "1..64"},
      {"/a/{1x}", "", {}, "[A-Za-z_]"},
      {"/a/{x-y}", "", {}, "[A-Za-z_]"},
      {"/a/{{x}}", "", {}, "whole segment"},
      {"/a/{x}/{x}", "", {}, "appears twice"},
      {"/a/{*r}/b", "", {}, "last segment"},
      {"/a//b", "", {}, "empty segment"},
      {"/a/", "", {}, "empty segment"},
      {"a/b", "", {}, "start with '/'"},
      {"", "", {}, "start with '/'"},
      {"/a/./b", "", {}, "cannot be literal"},
      {"/a/../b", "", {}, "cannot be literal"},
      {"/a%2Fb", "", {}, "ambiguous_separator"},
      {"/a%zz", "", {}, "bad_encoding"},
      {"/a?b", "", {}, "cannot be literal"},
      {"/a", "foo*.com", {}, "leading \"*.\""},
      {"/a", "*", {}, "leading \"*.\""},
      {"/a", "*.", {}, "1..255"},
      {"/a", "x.com.", {}, "end in '.'"},
      {"/a", "x.com:443", {}, "port"},
      {"/a", "x y.com", {}, "no host name has"},
      {"/a", "", {""}, "token"},
      {"/a", "", {"GE T"}, "token"},
      {"/a", "", {"GET", "GET"}, "twice"},
  };
  for (const bad& c : cases) {
    INFO(c.path << " host=" << c.host);
    route_rule r = rule(1, c.path);
    r.host = c.host;
    r.methods = c.methods;
    std::size_t idx = 99;
    const std::string msg = build_error_of({rule(0, "/ok"), r}, &idx);
    CHECK(idx == 1);
    CHECK(msg.rfind("rule 1: ", 0) == 0);
    CHECK(msg.find(c.why) != std::string::npos);
  }
  std::string deep;
  for (int i = 0; i < 129; ++i) deep += "/s";
  CHECK(build_error_of({rule(0, deep)}).find("128") != std::string::npos);
  std::string params;
  for (int i = 0; i < 17; ++i) params += "/{p" + std::to_string(i) + "}";
  CHECK(build_error_of({rule(0, params)}).find("16 parameters") != std::string::npos);

  route_rule prefix_rest = rule(0, "/a/{*r}", path_kind::prefix);
  CHECK(build_error_of({prefix_rest}).find("prefix rule") != std::string::npos);
  route_rule bad_kind = rule(0, "/a");
  bad_kind.kind = static_cast<path_kind>(7);
  CHECK(build_error_of({bad_kind}).find("EXACT or PREFIX") != std::string::npos);
  route_rule present_value = rule(0, "/a");
  present_value.headers.push_back({"x", "v", header_op::present, false});
  CHECK(build_error_of({present_value}).find("takes no value") != std::string::npos);
  route_rule bad_header = rule(0, "/a");
  bad_header.headers.push_back({"x:y", "", header_op::present, false});
  CHECK(build_error_of({bad_header}).find("header name") != std::string::npos);
  route_rule bad_op = rule(0, "/a");
  bad_op.headers.push_back({"x", "", static_cast<header_op>(9), false});
  CHECK(build_error_of({bad_op}).find("PRESENT, EXACT or PREFIX") != std::string::npos);
  route_rule no_set = rule(0, "/a");
  no_set.venue_set = 0;
  CHECK(build_error_of({no_set}).find("does not exist") != std::string::npos);
  std::vector<route_rule> many_methods;
  for (int i = 0; i < 33; ++i) {
    route_rule x = rule(static_cast<std::uint32_t>(i), "/m" + std::to_string(i));
    x.methods = {"M" + std::to_string(i)};
    many_methods.push_back(x);
  }
  std::size_t idx = 0;
  CHECK(build_error_of(many_methods, &idx).find("32 distinct methods") != std::string::npos);
  CHECK(idx == 32);
}

TEST_CASE("duplicate rules are rejected but a different priority is not a duplicate",
          "[router][build]") {
  std::size_t idx = 0;
  CHECK(build_error_of({rule(0, "/a/{x}"), rule(1, "/b"), rule(2, "/a/{y}")}, &idx)
            .find("duplicates rule 0") != std::string::npos);
  CHECK(idx == 2);
  route_rule a = rule(0, "/o");
  a.methods = {"GET", "POST"};
  a.host = "X.com";
  a.headers = {{"A", "1", header_op::exact, false}, {"b", "", header_op::present, true}};
  route_rule b = a;
  b.methods = {"POST", "GET"};
  b.host = "x.com";
  b.headers = {{"b", "", header_op::present, true}, {"a", "1", header_op::exact, false}};
  CHECK(build_error_of({a, b}, &idx).find("duplicates rule 0") != std::string::npos);
  CHECK(idx == 1);
  b.priority = 1;
  CHECK(route_table::build({a, b}).ok());
  route_rule c = a;
  c.kind = path_kind::prefix;
  CHECK(route_table::build({a, c}).ok());
  route_rule d = a;
  d.headers[0].value = "2";
  CHECK(route_table::build({a, d}).ok());
}

TEST_CASE("an empty table matches nothing", "[router]") {
  auto t = build({});
  CHECK(routed(*t, "/") == no_route);
  // A malformed host is refused by every table, host rules or not.
  CHECK(routed(*t, "/", "GET", "bad host") == -1 - static_cast<int>(route_status::bad_host));
  auto any = build({rule(1, "/q")});
  CHECK(routed(*any, "/q", "GET", "bad host") == -1 - static_cast<int>(route_status::bad_host));
  CHECK(routed(*any, "/q", "GET", "Good.Host:80") == 1);
  CHECK(t->rule_count() == 0);
}

TEST_CASE("a table with many static children hashes them", "[router]") {
  std::vector<route_rule> rules;
  for (std::uint32_t i = 0; i < 500; ++i) {
    rules.push_back(rule(i, "/svc" + std::to_string(i) + "/{id}"));
  }
  auto t = build(rules);
  for (std::uint32_t i = 0; i < 500; i += 37) {
    CHECK(routed(*t, "/svc" + std::to_string(i) + "/x") == i);
  }
  CHECK(routed(*t, "/svc500/x") == no_route);
}

TEST_CASE("router publishes a new table while readers keep matching", "[router][rcu]") {
  // Table A routes /o to id 1 (target 10); table B to id 2 (target 20). A
  // reader must see a consistent pair from one or the other, never a torn
  // or freed table.
  auto a = build({rule(1, "/o")});
  auto b = build({rule(2, "/o")});
  tollgate::router r(a);
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> seen[3] = {0, 0, 0};
  std::atomic<std::uint64_t> bad{0};
  std::vector<std::thread> readers;
  for (int i = 0; i < 3; ++i) {
    readers.emplace_back([&] {
      route_request q;
      q.method = "GET";
      q.path = "/o";
      while (!stop.load(std::memory_order_relaxed)) {
        const route_match m = r.match(q);
        if (!m.ok() || m.target != m.route_id * 10 || m.route_id > 2) {
          bad.fetch_add(1);
        } else {
          seen[m.route_id].fetch_add(1, std::memory_order_relaxed);
        }
      }
    });
  }
  const int publishes = 300;
  for (int i = 0; i < publishes; ++i) {
    // Fresh tables each round so a freed one would be caught by ASan.
    REQUIRE(r.publish(i % 2 == 0 ? build({rule(2, "/o")}) : build({rule(1, "/o")})).ok());
  }
  stop = true;
  for (auto& th : readers) th.join();
  CHECK(bad.load() == 0);
  CHECK(r.version() == publishes);
  CHECK(r.current()->rule_count() == 1);
  CHECK(r.publish(nullptr).code() == absl::StatusCode::kInvalidArgument);
  (void)b;
}

TEST_CASE("a default router has an empty table", "[router][rcu]") {
  tollgate::router r;
  route_request q;
  q.path = "/";
  CHECK(r.match(q).status == route_status::no_route);
  CHECK(r.version() == 0);
}
