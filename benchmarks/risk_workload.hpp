// The risk benchmark's workload and its two implementations, shared by
// risk_bench.cpp and callgrind_driver.cpp. See risk_bench.cpp for what they
// measure.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "tollgate/price_cache.hpp"
#include "tollgate/risk.hpp"

namespace tollgate_bench::risk {

[[noreturn]] inline void fail(const std::string& what) {
  std::fprintf(stderr, "risk workload setup failed: %s\n", what.c_str());
  std::abort();
}

inline constexpr std::size_t instruments = 1000;
inline constexpr std::size_t accounts = 64;
inline constexpr std::size_t ring = 4096;
inline constexpr std::uint64_t step_ns = 1000;  // the clock's advance per order
inline constexpr std::uint64_t dup_window_ns = 1'000'000;
inline constexpr std::uint64_t period_ns = 1'000'000'000;

struct order_t {
  std::uint32_t account, instrument;
  std::string id;
  double quantity, limit_price;
};

struct workload_t {
  std::vector<std::string> instruments, accounts;
  std::vector<order_t> orders;
  workload_t() {
    for (std::size_t i = 0; i < risk::instruments; ++i) {
      char b[16];
      std::snprintf(b, sizeof b, "SYM%04zu", i);
      instruments.emplace_back(b);
    }
    for (std::size_t i = 0; i < risk::accounts; ++i) {
      char b[16];
      std::snprintf(b, sizeof b, "ACCT%03zu", i);
      accounts.emplace_back(b);
    }
    std::mt19937_64 rng(11);
    for (std::size_t i = 0; i < ring; ++i) {
      char b[24];
      std::snprintf(b, sizeof b, "ORD-%08zu", i);
      const double q = static_cast<double>(1 + rng() % 100);
      const double px = 99.0 + static_cast<double>(rng() % 200) / 100.0;
      orders.push_back(order_t{static_cast<std::uint32_t>(rng() % risk::accounts),
                               static_cast<std::uint32_t>(rng() % risk::instruments), b, q, px});
    }
  }
};

inline const workload_t& work() {
  static const workload_t w;
  return w;
}

// Ticks alternate 2 bps around 100.0: inside the cache's 10 bps threshold.
inline double tick_price(std::uint64_t n) { return (n & 1) ? 100.01 : 99.99; }

struct limits_t {
  double max_quantity = 1000, max_notional = 1e6, collar_percent = 5;
  double account_max_notional = 1e15;
  std::uint64_t account_max_orders = ~std::uint64_t{0} >> 1;
};

class tollgate_impl {
 public:
  explicit tollgate_impl(bool full) {
    tollgate::price_cache_options po;
    po.capacity = 2 * instruments;
    po.max_age_ns = 0;
    auto pc = tollgate::price_cache::create(po);
    if (!pc.ok()) fail(std::string(pc.status().message()));
    prices_ = std::move(*pc);
    for (const auto& k : work().instruments) {
      if (!prices_->put(k, 100.0, 0, {}, 0).ok()) fail("put failed");
    }
    const limits_t l;
    tollgate::risk_options o;
    o.prices = prices_.get();
    o.max_quantity = l.max_quantity;
    o.max_notional = l.max_notional;
    o.collar = tollgate::collar_unit::percent;
    o.collar_width = l.collar_percent;
    o.duplicate_window_ns = full ? dup_window_ns : 0;
    o.duplicate_capacity = 65536;
    if (full) {
      o.period_ns = period_ns;
      o.account_max_notional = l.account_max_notional;
      o.account_max_orders = l.account_max_orders;
    }
    auto rc = tollgate::risk_checker::create(o);
    if (!rc.ok()) fail(std::string(rc.status().message()));
    risk_ = std::move(*rc);
  }
  bool check(const order_t& o, std::uint64_t now) {
    const auto& w = work();
    tollgate::risk_order r;
    r.account = w.accounts[o.account];
    r.instrument = w.instruments[o.instrument];
    r.client_order_id = o.id;
    r.quantity = o.quantity;
    r.limit_price = o.limit_price;
    return risk_->check(r, now).allowed;
  }
  bool tick(std::uint32_t instrument, double p, std::uint64_t seq, std::uint64_t now) {
    auto r = prices_->on_price(work().instruments[instrument], p, seq, now);
    return r.ok() && r->outcome == tollgate::price_outcome::kept;
  }

 private:
  std::unique_ptr<tollgate::price_cache> prices_;
  std::unique_ptr<tollgate::risk_checker> risk_;
};

class mutex_impl {
 public:
  explicit mutex_impl(bool full) : full_(full) {
    for (const auto& k : work().instruments) prices_[k] = price_t{100.0, 0};
  }
  bool check(const order_t& o, std::uint64_t now) {
    const auto& w = work();
    const std::string& acct = w.accounts[o.account];
    std::lock_guard<std::mutex> g(mu_);
    if (kill_global_) return false;
    if (!killed_.empty() &&
        (killed_.contains(acct) || killed_.contains(w.instruments[o.instrument]))) {
      return false;
    }
    if (!(o.quantity > 0) || !(o.limit_price > 0)) return false;
    if (full_) {
      key_.assign(acct);
      key_.push_back('\0');
      key_.append(o.id);
      auto it = seen_.find(key_);
      if (it != seen_.end() && now - it->second < dup_window_ns) return false;
    }
    if (o.quantity > limits_.max_quantity) return false;
    auto p = prices_.find(w.instruments[o.instrument]);
    if (p == prices_.end()) return false;
    const double ref = p->second.price;
    const double band = ref * limits_.collar_percent / 100;
    if (o.limit_price < ref - band || o.limit_price > ref + band) return false;
    const double notional = o.quantity * o.limit_price;
    if (notional > limits_.max_notional) return false;
    if (full_) {
      account_t& a = accounts_[acct];
      const std::uint64_t window = now / period_ns;
      if (a.window != window) a = account_t{window, 0, 0};
      if (a.notional + notional > limits_.account_max_notional) return false;
      if (a.orders + 1 > limits_.account_max_orders) return false;
      a.notional += notional;
      ++a.orders;
      seen_[key_] = now;
    }
    return true;
  }
  bool tick(std::uint32_t instrument, double p, std::uint64_t seq, std::uint64_t) {
    std::lock_guard<std::mutex> g(mu_);
    auto it = prices_.find(work().instruments[instrument]);
    if (it == prices_.end()) return false;
    if (std::fabs(p - it->second.price) / it->second.price * 1e4 > 10) {
      prices_.erase(it);
      return false;
    }
    it->second.seq = seq;
    return true;
  }

 private:
  struct price_t {
    double price;
    std::uint64_t seq;
  };
  struct account_t {
    std::uint64_t window;
    double notional;
    std::uint64_t orders;
  };
  bool full_;
  bool kill_global_ = false;
  absl::flat_hash_map<std::string, bool> killed_;  // accounts and instruments
  limits_t limits_;
  std::mutex mu_;
  std::string key_;
  absl::flat_hash_map<std::string, price_t> prices_;
  absl::flat_hash_map<std::string, account_t> accounts_;
  absl::flat_hash_map<std::string, std::uint64_t> seen_;
};

}  // namespace tollgate_bench::risk
