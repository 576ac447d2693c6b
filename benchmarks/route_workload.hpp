// The generated route tables of router_bench and callgrind_driver: n API
// routes (20 resources x 10 shapes per 200) and one concrete path per rule,
// plus another spelling of each path ("//", ".", a %XX escape).
#pragma once

#include <cstddef>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

namespace tollgate_bench {

inline const char* const resources20[] = {
    "orders", "fills",       "accounts", "positions", "instruments", "venues",   "quotes",
    "trades", "risk",        "limits",   "users",     "keys",        "sessions", "books",
    "algos",  "allocations", "reports",  "audits",    "alerts",      "configs"};

struct generated {
  std::vector<std::string> patterns;  // tollgate syntax
  std::vector<std::string> r3_patterns;
  std::vector<std::string> paths;  // one concrete path per rule
  std::vector<std::string> escaped;
  std::vector<bool> parametric;
};

inline generated generate(std::size_t n) {
  generated g;
  const std::size_t resources = (n + 9) / 10;
  for (std::size_t r = 0; r < resources && g.patterns.size() < n; ++r) {
    const std::string res =
        r < 20 ? std::string(resources20[r]) : std::string(resources20[r % 20]) + std::to_string(r);
    const std::string base = "/v1/" + res;
    const std::pair<std::string, std::string> shapes[] = {
        {base, base},
        {base + "/search", base + "/search"},
        {base + "/summary", base + "/summary"},
        {base + "/{id}", base + "/8812734"},
        {base + "/{id}/history", base + "/8812734/history"},
        {base + "/{id}/status", base + "/8812734/status"},
        {base + "/{id}/events/{event}", base + "/8812734/events/ev-19"},
        {"/v1/by-account/{account}/" + res, "/v1/by-account/ACC-771/" + res},
        {"/v1/by-account/{account}/" + res + "/{id}", "/v1/by-account/ACC-771/" + res + "/90210"},
        {base + "-export/{year}/{month}/{file}", base + "-export/2026/11/report.csv"},
    };
    for (const auto& [pattern, path] : shapes) {
      if (g.patterns.size() == n) break;
      g.patterns.push_back(pattern);
      g.r3_patterns.push_back(pattern);
      g.paths.push_back(path);
      g.parametric.push_back(pattern.find('{') != std::string::npos);
      // Another spelling of the same path: "//" after the first segment, a
      // "." segment, and the first letter of the resource escaped.
      std::string e = path;
      e.insert(3, "/./");
      const std::size_t res_at = e.find(res);
      if (res_at != std::string::npos) {
        char hex[4];
        std::snprintf(hex, sizeof hex, "%%%02X", static_cast<unsigned char>(res[0]));
        e.replace(res_at, 1, hex);
      }
      g.escaped.push_back(e);
    }
  }
  return g;
}

}  // namespace tollgate_bench
