// The risk checker against a reference model written straight from the
// rules documented in risk.hpp: plain maps, no concurrency, no hashing, no
// capacity tricks. Random order streams (several accounts and instruments,
// both sides, limit and market orders near and far from the reference,
// repeated client order ids, time crossing periods and duplicate windows,
// kill switches engaged and released, reference prices cached into and
// evicted from a real price_cache by its feed) must get the same decision,
// field for field, from both.
#include <catch2/catch.hpp>

#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <limits>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "tollgate/price_cache.hpp"
#include "tollgate/risk.hpp"

using tollgate::collar_unit;
using tollgate::kill_scope;
using tollgate::no_reference_policy;
using tollgate::price_cache;
using tollgate::risk_checker;
using tollgate::risk_decision;
using tollgate::risk_options;
using tollgate::risk_order;
using tollgate::risk_reason;

namespace {

constexpr double na =
    std::numeric_limits<double>::quiet_NaN();  // not applicable; a market order's price

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr std::uint64_t orders_per_seed = 25'000;
#else
constexpr std::uint64_t orders_per_seed = 160'000;
#endif
constexpr std::uint64_t seeds = 8;

// The documented rules, one after the other, on plain containers.
class model {
 public:
  model(const risk_options& o, const price_cache* prices) : o_(o), prices_(prices) {}

  absl::StatusCode set_kill(kill_scope scope, const std::string& key, bool on) {
    if (scope == kill_scope::global) {
      global_ = on;
      return absl::StatusCode::kOk;
    }
    if (key.empty() || key.size() > 32) return absl::StatusCode::kInvalidArgument;
    std::set<std::string>& set = scope == kill_scope::account ? killed_accounts_ : killed_instr_;
    if (!on) {
      set.erase(key);
    } else if (set.count(key) == 0) {
      if (set.size() >= o_.kill_switch_capacity) return absl::StatusCode::kResourceExhausted;
      set.insert(key);
    }
    return absl::StatusCode::kOk;
  }

  risk_decision check(const risk_order& ord, std::uint64_t now) {
    const std::string account(ord.account), instrument(ord.instrument), id(ord.client_order_id);
    // 1. kill switches
    if (global_) return reject(risk_reason::kill_switch_global);
    if (killed_accounts_.count(account) != 0) return reject(risk_reason::kill_switch_account);
    if (killed_instr_.count(instrument) != 0) return reject(risk_reason::kill_switch_instrument);
    // 2. malformed
    if (!(std::isfinite(ord.quantity) && ord.quantity > 0)) {
      return reject(risk_reason::invalid_quantity, na, ord.quantity);
    }
    const bool market = std::isnan(ord.limit_price);
    if (!market && !(std::isfinite(ord.limit_price) && ord.limit_price > 0)) {
      return reject(risk_reason::invalid_price, na, ord.limit_price);
    }
    if (account.empty() || account.size() > 32) {
      return reject(risk_reason::invalid_account, 32, static_cast<double>(account.size()));
    }
    if (instrument.empty() || instrument.size() > 32) {
      return reject(risk_reason::invalid_instrument, 32, static_cast<double>(instrument.size()));
    }
    if (id.empty() || id.size() > 64) {
      return reject(risk_reason::invalid_client_order_id, 64, static_cast<double>(id.size()));
    }
    // 3. duplicates; ids whose window has ended are forgotten first.
    const bool dedupe = o_.duplicate_window_ns != 0;
    if (dedupe) {
      while (!accepted_order_.empty() &&
             now - accepted_order_.front().first >= o_.duplicate_window_ns) {
        const auto& [t, key] = accepted_order_.front();
        if (accepted_at_[key] == t) accepted_at_.erase(key);
        accepted_order_.pop_front();
      }
      const auto it = accepted_at_.find({account, id});
      if (it != accepted_at_.end()) {
        return reject(risk_reason::duplicate_order, static_cast<double>(o_.duplicate_window_ns),
                      static_cast<double>(now - it->second));
      }
    }
    // 4. quantity
    if (ord.quantity > o_.max_quantity) {
      return reject(risk_reason::max_quantity, o_.max_quantity, ord.quantity);
    }
    // 5. reference
    double reference = na;
    tollgate::cached_price cp;
    if (prices_ != nullptr && prices_->get(instrument, now, &cp, nullptr, 0) &&
        (o_.max_reference_age_ns == 0 || cp.age_ns <= o_.max_reference_age_ns)) {
      reference = cp.price;
    }
    const bool have_reference = !std::isnan(reference);
    if (!have_reference && o_.on_no_reference == no_reference_policy::reject) {
      return reject(risk_reason::no_reference_price);
    }
    // 6. collar
    if (!market && have_reference) {
      double band = 0;
      if (o_.collar == collar_unit::percent) band = reference * o_.collar_width / 100;
      if (o_.collar == collar_unit::bps) band = reference * o_.collar_width / 1e4;
      if (o_.collar == collar_unit::ticks) band = o_.collar_width * o_.collar_tick_size;
      const double high = reference + band, low = reference - band;
      if (ord.limit_price - reference > band * (1 + 1e-9)) {
        return reject(risk_reason::price_collar, high, ord.limit_price, reference);
      }
      if (reference - ord.limit_price > band * (1 + 1e-9)) {
        return reject(risk_reason::price_collar, low, ord.limit_price, reference);
      }
    }
    // 7. notional: unknown for a market order without a reference
    double notional = na;
    if (!market) notional = ord.quantity * ord.limit_price;
    if (market && have_reference) notional = ord.quantity * reference;
    if (!std::isnan(notional) && notional > o_.max_notional * (1 + 1e-9)) {
      return reject(risk_reason::max_notional, o_.max_notional, notional, reference);
    }
    // 8. the account's period
    const bool account_limits = std::isfinite(o_.account_max_notional) ||
                                o_.account_max_orders != std::numeric_limits<std::uint64_t>::max();
    const std::uint64_t window = now / o_.period_ns;
    const double adds = std::isnan(notional) ? 0 : notional;
    period state;
    if (account_limits) {
      const auto it = accounts_.find(account);
      const bool has_state = it != accounts_.end() && it->second.window == window;
      if (!has_state) {
        std::uint64_t others = 0;
        for (const auto& [name, p] : accounts_) others += p.window == window;
        if (others >= o_.account_capacity) {
          return reject(risk_reason::account_capacity, static_cast<double>(o_.account_capacity),
                        static_cast<double>(others), reference);
        }
        state.window = window;
      } else {
        state = it->second;
      }
      if (state.notional + adds > o_.account_max_notional * (1 + 1e-9)) {
        return reject(risk_reason::account_notional, o_.account_max_notional, state.notional + adds,
                      reference);
      }
      if (state.orders + 1 > o_.account_max_orders) {
        return reject(risk_reason::account_order_count, static_cast<double>(o_.account_max_orders),
                      static_cast<double>(state.orders + 1), reference);
      }
    }
    if (dedupe && accepted_order_.size() >= o_.duplicate_capacity) {
      return reject(risk_reason::duplicate_capacity, static_cast<double>(o_.duplicate_capacity),
                    static_cast<double>(accepted_order_.size()), reference);
    }
    // Accepted: it counts, and it is remembered.
    if (account_limits) {
      state.notional += adds;
      state.orders += 1;
      accounts_[account] = state;
    }
    if (dedupe) {
      accepted_at_[{account, id}] = now;
      accepted_order_.push_back({now, {account, id}});
    }
    return risk_decision{true, risk_reason::none, na, notional, reference};
  }

 private:
  struct period {
    std::uint64_t window = 0;
    double notional = 0;
    std::uint64_t orders = 0;
  };

  static risk_decision reject(risk_reason r, double limit = na, double observed = na,
                              double reference = na) {
    return risk_decision{false, r, limit, observed, reference};
  }

  risk_options o_;
  const price_cache* prices_;
  bool global_ = false;
  std::set<std::string> killed_accounts_, killed_instr_;
  std::map<std::string, period> accounts_;
  std::map<std::pair<std::string, std::string>, std::uint64_t> accepted_at_;
  std::deque<std::pair<std::uint64_t, std::pair<std::string, std::string>>> accepted_order_;
};

bool same(double a, double b) { return (std::isnan(a) && std::isnan(b)) || a == b; }

bool same(const risk_decision& a, const risk_decision& b) {
  return a.allowed == b.allowed && a.reason == b.reason && same(a.limit, b.limit) &&
         same(a.observed, b.observed) && same(a.reference, b.reference);
}

std::string describe(const risk_decision& d) {
  char buf[256];
  std::snprintf(
      buf, sizeof buf, "{allowed %d reason %s limit %.17g observed %.17g reference %.17g}",
      d.allowed ? 1 : 0, tollgate::risk_reason_name(d.reason), d.limit, d.observed, d.reference);
  return buf;
}

struct run_result {
  std::uint64_t orders = 0;
  std::uint64_t mismatches = 0;
  std::uint64_t kill_ops = 0;
  std::uint64_t kill_refused = 0;  // bad key or capacity, on both sides
  std::array<std::uint64_t, tollgate::risk_reason_count> reasons{};
  std::string first_mismatch;
};

// One seed: its own configuration and its own stream.
run_result run(std::uint64_t seed, std::uint64_t orders) {
  std::mt19937_64 rng(seed * 0x9e3779b97f4a7c15ULL + 1);
  auto uniform = [&](double lo, double hi) {
    return std::uniform_real_distribution<double>(lo, hi)(rng);
  };
  auto below = [&](std::uint64_t n) {
    return std::uniform_int_distribution<std::uint64_t>(0, n - 1)(rng);
  };
  auto chance = [&](double p) { return uniform(0, 1) < p; };

  tollgate::price_cache_options co;
  co.capacity = 64;
  co.threshold = 10 + static_cast<double>(below(20));  // bps
  // Half the seeds keep every time on a 1 us grid, so that orders land
  // exactly on period, window and age boundaries; the others do not.
  const std::uint64_t grid = (seed / 2) % 2 ? 1000 : 1;
  co.max_age_ns = grid * ((200'000 + below(400'000)) / grid);
  auto made_cache = price_cache::create(co);
  REQUIRE(made_cache.ok());
  price_cache& cache = **made_cache;

  risk_options o;
  o.prices = seed % 8 == 7 ? nullptr : &cache;
  o.on_no_reference = seed % 2 ? no_reference_policy::allow : no_reference_policy::reject;
  o.max_reference_age_ns = seed % 3 == 0 ? 150'000 : 0;
  o.max_quantity = 400 + static_cast<double>(below(400));
  o.max_notional = 20'000 + static_cast<double>(below(40'000));
  o.collar = static_cast<collar_unit>(seed % 3);
  o.collar_width = o.collar == collar_unit::percent ? 0.5 + static_cast<double>(below(4))
                   : o.collar == collar_unit::bps   ? 20 + static_cast<double>(below(80))
                                                    : 5 + static_cast<double>(below(40));
  o.collar_tick_size = 0.01;
  o.period_ns = grid * ((100'000 + below(300'000)) / grid);
  o.account_max_notional = 50'000 + static_cast<double>(below(100'000));
  o.account_max_orders = 3 + below(8);
  if (seed % 4 == 3) o.account_max_orders = std::numeric_limits<std::uint64_t>::max();
  o.account_capacity = 4 + below(8);
  o.duplicate_window_ns = seed % 8 == 5 ? 0 : grid * ((200'000 + below(2'000'000)) / grid);
  o.duplicate_capacity = 16 + below(80);
  o.kill_switch_capacity = 2 + below(3);
  auto made = risk_checker::create(o);
  REQUIRE(made.ok());
  risk_checker& real = **made;
  model ref(o, o.prices);

  constexpr int n_accounts = 10, n_instruments = 8;
  std::vector<std::string> accounts, instruments;
  for (int i = 0; i < n_accounts; ++i) accounts.push_back("acct" + std::to_string(i));
  for (int i = 0; i < n_instruments; ++i) instruments.push_back("SYM" + std::to_string(i));
  std::vector<double> market(n_instruments);
  std::vector<std::uint64_t> feed_seq(n_instruments, 0);
  for (auto& m : market) m = 10 + uniform(0, 190);

  run_result r;
  std::uint64_t now = grid * ((1'000'000 + below(1'000'000)) / grid);
  std::string account, instrument, id;
  std::uint64_t global_release_at = ~std::uint64_t{0};
  for (std::uint64_t n = 0; n < orders; ++n) {
    // Time: small steps, now and then across a period or a window at once.
    now += grid * (chance(0.002) ? below(3'000'000 / grid) : below(o.period_ns / 60 / grid));

    // The market moves; the feed ticks, and caches instruments again.
    for (int k = 0; k < 2; ++k) {
      const std::size_t i = below(n_instruments);
      market[i] *= std::exp(std::normal_distribution<double>(0, 0.0003)(rng));
      if (chance(0.5)) {
        feed_seq[i] += chance(0.01) ? 2 : 1;  // now and then a gap
        (void)cache.on_price(instruments[i], market[i], feed_seq[i], now);
      }
      if (chance(0.05)) {
        REQUIRE(cache.put(instruments[i], std::round(market[i] * 100) / 100, feed_seq[i], "", now)
                    .ok());
      }
      if (chance(0.002)) cache.remove(instruments[i], now);
    }

    // Now and then a kill switch changes, the same on both sides: accounts
    // and instruments engaged and released at random (sometimes beyond the
    // capacity, sometimes with a bad key), the global switch engaged for a
    // few hundred orders at a time.
    int op = -1;  // scope of a change this step, if any
    bool on = false;
    std::string key;
    if (n == global_release_at) {
      op = 0;
    } else if (chance(0.00005)) {
      op = 0;
      on = true;
      global_release_at = n + 100 + below(400);
    } else if (chance(0.002)) {
      op = 1 + static_cast<int>(below(2));
      on = chance(0.12);
      key = op == 1 ? accounts[below(n_accounts)] : instruments[below(n_instruments)];
      if (chance(0.05)) key = chance(0.5) ? "" : std::string(33, 'k');
    }
    if (op >= 0) {
      const auto scope = static_cast<kill_scope>(op);
      const absl::StatusCode want = ref.set_kill(scope, key, on);
      const absl::StatusCode got =
          on ? real.engage(scope, key, now).code() : real.release(scope, key, now).code();
      ++r.kill_ops;
      r.kill_refused += got != absl::StatusCode::kOk;
      if (want != got) {
        ++r.mismatches;
        if (r.first_mismatch.empty()) {
          r.first_mismatch = "seed " + std::to_string(seed) + " kill switch change before order " +
                             std::to_string(n) + " scope " + std::to_string(op) + " key '" + key +
                             "' engage " + std::to_string(on) + ": model status " +
                             std::to_string(static_cast<int>(want)) + " real status " +
                             std::to_string(static_cast<int>(got));
        }
      }
    }

    // The order.
    const std::size_t ii = below(n_instruments);
    account = accounts[below(n_accounts)];
    instrument = instruments[ii];
    id = "c" + std::to_string(below(150));
    if (chance(0.002)) account = chance(0.5) ? "" : std::string(33, 'a');
    if (chance(0.002)) instrument = chance(0.5) ? "" : std::string(33, 'i');
    if (chance(0.002)) id = chance(0.5) ? "" : std::string(65, 'c');
    risk_order ord;
    ord.account = account;
    ord.instrument = instrument;
    ord.client_order_id = id;
    ord.s = chance(0.5) ? tollgate::side::buy : tollgate::side::sell;
    const double qroll = uniform(0, 1);
    ord.quantity = qroll < 0.02   ? o.max_quantity
                   : qroll < 0.03 ? std::nextafter(o.max_quantity, 1e300)
                   : qroll < 0.2  ? std::round(uniform(0.5, 1.1 * o.max_quantity) * 100) / 100
                                  : static_cast<double>(1 + below(200));
    if (chance(0.003)) {
      const double bad[] = {0.0, -1.0, -0.0, na, std::numeric_limits<double>::infinity()};
      ord.quantity = bad[below(5)];
    }
    // The reference the cache holds now, if any, to aim at the collar edges.
    tollgate::cached_price cp;
    const bool cached = cache.get(instrument, now, &cp, nullptr, 0);
    const double base = cached ? cp.price : std::round(market[ii] * 100) / 100;
    double band = 0;
    if (o.collar == collar_unit::percent) band = base * o.collar_width / 100;
    if (o.collar == collar_unit::bps) band = base * o.collar_width / 1e4;
    if (o.collar == collar_unit::ticks) band = o.collar_width * o.collar_tick_size;
    const double proll = uniform(0, 1);
    if (proll < 0.25) {
      ord.limit_price = na;  // market order
    } else if (proll < 0.35) {
      const double edges[] = {base + band,        base - band,        base + band + 0.01,
                              base - band - 0.01, base + band - 0.01, base - band + 0.01};
      ord.limit_price = edges[below(6)];
    } else if (proll < 0.45) {
      ord.limit_price = std::round(base * uniform(0.5, 2.0) * 100) / 100;
    } else {
      ord.limit_price = std::round((base + band * uniform(-1.5, 1.5)) * 100) / 100;
    }
    if (!std::isnan(ord.limit_price) && !(ord.limit_price > 0)) ord.limit_price = 0.01;
    if (chance(0.003)) {
      const double bad[] = {0.0, -5.0, std::numeric_limits<double>::infinity(),
                            -std::numeric_limits<double>::infinity()};
      ord.limit_price = bad[below(4)];
    }

    const risk_decision want = ref.check(ord, now);
    const risk_decision got = real.check(ord, now);
    ++r.orders;
    ++r.reasons[static_cast<std::size_t>(got.reason)];
    if (!same(want, got)) {
      ++r.mismatches;
      if (r.first_mismatch.empty()) {
        char buf[512];
        std::snprintf(buf, sizeof buf,
                      "seed %llu order %llu at now %llu: account '%s' instrument '%s' id '%s' "
                      "side %d quantity %.17g limit_price %.17g (cache %s %.17g)",
                      static_cast<unsigned long long>(seed), static_cast<unsigned long long>(n),
                      static_cast<unsigned long long>(now), account.c_str(), instrument.c_str(),
                      id.c_str(), static_cast<int>(ord.s), ord.quantity, ord.limit_price,
                      cached ? "holds" : "misses", cached ? cp.price : na);
        r.first_mismatch =
            std::string(buf) + "\n  model " + describe(want) + "\n  real  " + describe(got);
      }
    }
  }
  return r;
}

}  // namespace

TEST_CASE("risk checker matches the reference model on random order streams", "[risk]") {
  const auto start = std::chrono::steady_clock::now();
  run_result total;
  for (std::uint64_t seed = 1; seed <= seeds; ++seed) {
    const run_result r = run(seed, orders_per_seed);
    total.orders += r.orders;
    total.mismatches += r.mismatches;
    total.kill_ops += r.kill_ops;
    total.kill_refused += r.kill_refused;
    for (std::size_t i = 0; i < r.reasons.size(); ++i) total.reasons[i] += r.reasons[i];
    if (total.first_mismatch.empty()) total.first_mismatch = r.first_mismatch;
  }
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf(
      "risk differential: %llu orders over %llu seeds (%llu per seed), %llu kill switch "
      "changes (%llu refused), %llu mismatches, %.2f s\n",
      static_cast<unsigned long long>(total.orders), static_cast<unsigned long long>(seeds),
      static_cast<unsigned long long>(orders_per_seed),
      static_cast<unsigned long long>(total.kill_ops),
      static_cast<unsigned long long>(total.kill_refused),
      static_cast<unsigned long long>(total.mismatches), secs);
  for (std::size_t i = 0; i < total.reasons.size(); ++i) {
    std::printf("  %-24s %llu\n", tollgate::risk_reason_name(static_cast<risk_reason>(i)),
                static_cast<unsigned long long>(total.reasons[i]));
  }
  if (!total.first_mismatch.empty())
    std::printf("first mismatch: %s\n", total.first_mismatch.c_str());
  INFO(total.first_mismatch);
  CHECK(total.mismatches == 0);
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
  CHECK(total.orders >= 1'000'000);
#endif
  // Every reason came up, so every rule was compared.
  for (std::size_t i = 0; i < total.reasons.size(); ++i) {
    INFO(tollgate::risk_reason_name(static_cast<risk_reason>(i)));
    CHECK(total.reasons[i] > 0);
  }
}
