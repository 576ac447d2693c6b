// A host that uses the installed header-first C++ core.
#include <cstdio>

#include "tollgate/limiter.hpp"

int main() {
  auto lim = tollgate::limiter::create({});
  if (!lim.ok()) return 1;
  const auto d = (*lim)->acquire("acct", 0, 1, 0);
  if (!d.allowed) return 1;
  std::puts("consumer (C++ core): ok");
  return 0;
}
