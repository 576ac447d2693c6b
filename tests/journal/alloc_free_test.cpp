// append never allocates: counted with a replaced global operator new (or
// the sanitizer's malloc hook) around loops of appends, in poll mode so
// that no writer thread runs meanwhile. Covers the accepted path (with and
// without a payload, digested by the writer or given) and both ring-full
// paths (reject, drop and count).
#include <catch2/catch.hpp>

#include <atomic>
#include <cstdlib>
#include <new>
#include <string>
#include <vector>

#include "tollgate/journal.hpp"
#include "util.hpp"

namespace {
std::atomic<std::uint64_t> allocations{0};
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
// A sanitizer owns operator new; count through its malloc hook instead.
extern "C" int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void*,
                                                                             std::size_t),
                                                         void (*free_hook)(const volatile void*));
namespace {
void on_malloc(const volatile void*, std::size_t) {
  allocations.fetch_add(1, std::memory_order_relaxed);
}
void on_free(const volatile void*) {}
const int hooks_installed = __sanitizer_install_malloc_and_free_hooks(&on_malloc, &on_free);
}  // namespace
#else
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void* operator new(std::size_t n) {
  allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return operator new(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
#endif

TEST_CASE("alloc: append allocates nothing whether accepted or rejected or dropped", "[alloc]") {
  {  // the counter counts
    const std::uint64_t before = allocations.load();
    std::string s(100, 'x');
    REQUIRE(allocations.load() > before);
  }
  jt::temp_dir d;
  for (auto policy :
       {tollgate::ring_full_policy::reject, tollgate::ring_full_policy::drop_and_count}) {
    auto o = jt::options(d.sub(policy == tollgate::ring_full_policy::reject ? "r" : "d"));
    o.ring_cells = 1u << 12;
    o.on_full = policy;
    auto j = tollgate::journal::open(o);
    REQUIRE(j.ok());
    const std::string account = "ACCOUNT-0042";
    const auto inputs = jt::u64s({1, 2, 3, 4});
    const std::string payload(300, 'p');
    std::uint8_t digest[32] = {};
    tollgate::journal_entry e;
    e.account = account;
    e.inputs = inputs;
    REQUIRE((*j)->append(e).ok());
    REQUIRE((*j)->poll().ok());  // warm

    std::uint64_t ok = 0;
    std::uint64_t full = 0;
    const std::uint64_t before = allocations.load();
    for (int i = 0; i < 3000; ++i) {
      tollgate::journal_entry x = e;
      if (i % 3 == 1)
        x.payload = {reinterpret_cast<const std::uint8_t*>(payload.data()), payload.size()};
      if (i % 3 == 2) x.payload_digest = digest;
      if (i % 5 == 0) x.store_payload = !x.payload.empty();
      const auto r = (*j)->append(x);
      if (r.ok()) ++ok;
      if (r.status == tollgate::append_status::rejected ||
          r.status == tollgate::append_status::dropped) {
        ++full;
      }
    }
    const std::uint64_t after = allocations.load();
    CHECK(after == before);
    CHECK(ok > 100);
    CHECK(full > 100);  // both paths were taken
    REQUIRE((*j)->close().ok());
  }
}
