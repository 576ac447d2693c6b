// Replay: a real journal written by a host that records a limiter
// hierarchy's and a breaker's decisions (tollgate/journal_replay.hpp) is
// read back and every decision is decided again. An honest journal replays
// with no difference; a journal whose recorded answers were changed before
// signing (a host bug, or a lie) is caught at the very record.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>

#include <sys/wait.h>

#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "../journal/util.hpp"
#include "tollgate/journal_replay.hpp"

using namespace tollgate;
namespace jr = tollgate::journal_replay;

namespace {

constexpr std::uint32_t global_id = 1;
constexpr std::uint32_t accounts_id = 2;
constexpr std::uint32_t venue_id = 10;
constexpr std::uint64_t ms = 1'000'000;

journal_options options(const std::string& dir) {
  journal_options o;
  o.directory = dir;
  for (std::size_t i = 0; i < o.signing_seed.size(); ++i) {
    o.signing_seed[i] = static_cast<std::uint8_t>(i * 7 + 3);
  }
  o.mode = writer_mode::poll;
  o.level = durability::none;
  o.checkpoint_every_records = 100;
  return o;
}

struct listener_ctx {
  journal* j;
  std::vector<breaker_event> events;
};

void on_transition(void* user, const breaker_event& ev) {
  auto* c = static_cast<listener_ctx*>(user);
  c->events.push_back(ev);
  REQUIRE(jr::record_breaker_transition(*c->j, venue_id, ev).ok());
}

// How the host may lie.
enum class falsify { none, flip_limiter_decision, flip_breaker_decision, extra_transition };

struct run_result {
  std::uint64_t decisions = 0;
  std::uint64_t transitions = 0;
  std::uint64_t falsified_ticket = 0;
};

// A host: three accounts under a global limit, one venue breaker that sees
// failures between 200 ms and 400 ms, 4000 requests.
run_result run_host(const std::string& dir, falsify lie, std::uint64_t lie_at) {
  auto j = journal::open(options(dir));
  REQUIRE(j.ok());
  journal& jn = **j;

  limiter_options go;
  go.tiers = {tier{"global", 4000.0, 40}};
  go.capacity = 16;
  auto global = limiter::create(go);
  REQUIRE(global.ok());
  limiter_options ao;
  ao.tiers = {tier{"retail", 500.0, 10}, tier{"pro", 2000.0, 30}};
  ao.capacity = 64;
  ao.parent = global->get();
  auto accounts = limiter::create(ao);
  REQUIRE(accounts.ok());
  breaker_options bo;
  bo.window_size = 20;
  bo.minimum_calls = 10;
  bo.open_ns = 50 * ms;
  bo.half_open_probes = 3;
  auto venue = breaker::create(bo);
  REQUIRE(venue.ok());
  listener_ctx lc{&jn, {}};
  (*venue)->set_listener(&on_transition, &lc);

  REQUIRE(jr::record_limiter_define(jn, global_id, **global, jr::no_parent).ok());
  REQUIRE(jr::record_limiter_define(jn, accounts_id, **accounts, global_id).ok());
  REQUIRE(jr::record_breaker_define(jn, venue_id, **venue).ok());

  run_result res;
  std::mt19937_64 rng(42);
  const char* keys[] = {"ACC-1", "ACC-2", "ACC-3"};
  std::uint64_t now = 1'000 * ms;
  for (std::uint64_t i = 0; i < 4000; ++i) {
    now += 100'000 + rng() % 200'000;
    const char* key = keys[rng() % 3];
    const std::uint32_t tier = key[4] == '3' ? 1 : 0;
    if (i == 1500) {
      REQUIRE(jr::record_limiter_multiplier(jn, accounts_id, 0.5, now).ok());
      REQUIRE((*accounts)->set_multiplier(0.5, now).ok());
    }
    limit_decision d;
    reservation rsv;
    const bool reserve = i % 7 == 0;
    d = reserve ? (*accounts)->reserve(key, tier, 1, now, &rsv)
                : (*accounts)->acquire(key, tier, 1, now);
    limit_decision recorded = d;
    if (lie == falsify::flip_limiter_decision && i == lie_at) recorded.allowed = !d.allowed;
    jr::record_context ctx;
    ctx.account = key;
    ctx.route = 1;
    const append_result ar =
        reserve ? jr::record_limiter_reserve(jn, accounts_id, key, tier, 1, now, recorded, rsv, ctx)
                : jr::record_limiter_acquire(jn, accounts_id, key, tier, 1, now, recorded, ctx);
    REQUIRE(ar.ok());
    if (lie == falsify::flip_limiter_decision && i == lie_at) res.falsified_ticket = ar.ticket;
    ++res.decisions;
    if (!d.allowed) continue;
    permit p = (*venue)->acquire(now);
    permit precorded = p;
    if (lie == falsify::flip_breaker_decision && i >= lie_at && res.falsified_ticket == 0) {
      precorded.allowed = !p.allowed;
    }
    const append_result br = jr::record_breaker_acquire(jn, venue_id, now, precorded, ctx);
    REQUIRE(br.ok());
    if (precorded.allowed != p.allowed) res.falsified_ticket = br.ticket;
    ++res.decisions;
    if (!p.allowed) {
      if (reserve) {
        (*accounts)->cancel(rsv, now);
        REQUIRE(jr::record_limiter_cancel(jn, accounts_id, key, rsv, now, ctx).ok());
      }
      continue;
    }
    const bool failing = now >= 1'200 * ms && now < 1'400 * ms && rng() % 10 < 8;
    const outcome o = failing ? outcome::failure : outcome::success;
    const std::uint64_t latency = 1'000 + rng() % 5'000;
    (*venue)->record(p, o, latency, now + latency);
    REQUIRE(jr::record_breaker_outcome(jn, venue_id, p, o, latency, now + latency, ctx).ok());
    if (lie == falsify::extra_transition && i == lie_at) {
      const breaker_event fake{breaker_state::closed, breaker_state::forced_open, now, -1, -1, 0};
      REQUIRE(jr::record_breaker_transition(jn, venue_id, fake).ok());
    }
    while (true) {
      auto n = jn.poll();
      REQUIRE(n.ok());
      if (*n == 0) break;
    }
  }
  res.transitions = lc.events.size();
  REQUIRE(jn.close().ok());
  return res;
}

}  // namespace

TEST_CASE("an honest journal replays with no difference", "[replay]") {
  jt::temp_dir d;
  const run_result live = run_host(d.path(), falsify::none, 0);
  REQUIRE(live.transitions >= 2);  // the breaker opened and closed again

  auto rep = jr::replay_journal(d.path());
  REQUIRE(rep.ok());
  INFO((rep->mismatches.empty()
            ? std::string()
            : rep->mismatches[0].recorded + " | " + rep->mismatches[0].replayed));
  INFO((rep->issues.empty() ? std::string() : rep->issues[0].message));
  CHECK_FALSE(rep->error.has_value());
  CHECK(rep->mismatch_count == 0);
  CHECK(rep->issue_count == 0);
  CHECK(rep->ok());
  CHECK(rep->decisions == live.decisions);
  CHECK(rep->transitions == live.transitions);
  CHECK(rep->instances == 3);
  CHECK(rep->other == 0);
}

TEST_CASE("a falsified limiter decision is reported at its record", "[replay]") {
  jt::temp_dir d;
  const run_result live = run_host(d.path(), falsify::flip_limiter_decision, 2222);
  REQUIRE(live.falsified_ticket != 0);
  auto rep = jr::replay_journal(d.path());
  REQUIRE(rep.ok());
  CHECK_FALSE(rep->error.has_value());
  REQUIRE(rep->mismatch_count == 1);
  const jr::replay_mismatch& m = rep->mismatches.at(0);
  CHECK(m.comp == jr::component::limiter);
  CHECK(m.instance == accounts_id);
  CHECK(m.account.rfind("ACC-", 0) == 0);
  // Only the allowed/rejected word differs.
  CHECK(m.recorded.substr(0, 7) != m.replayed.substr(0, 7));
  CHECK(m.sequence > 0);
  CHECK_FALSE(rep->ok());
}

TEST_CASE("a falsified breaker decision and a transition that never happened are reported",
          "[replay]") {
  {
    jt::temp_dir d;
    const run_result live = run_host(d.path(), falsify::flip_breaker_decision, 100);
    REQUIRE(live.falsified_ticket != 0);
    auto rep = jr::replay_journal(d.path());
    REQUIRE(rep.ok());
    REQUIRE(rep->mismatch_count == 1);
    CHECK(rep->mismatches.at(0).comp == jr::component::breaker);
    CHECK(rep->mismatches.at(0).instance == venue_id);
    CHECK(rep->mismatches.at(0).op == static_cast<std::uint8_t>(jr::breaker_op::acquire));
  }
  {
    jt::temp_dir d;
    run_host(d.path(), falsify::extra_transition, 300);
    auto rep = jr::replay_journal(d.path());
    REQUIRE(rep.ok());
    REQUIRE(rep->mismatch_count >= 1);
    bool found = false;
    for (const auto& m : rep->mismatches) {
      found = found || m.recorded.find("forced_open") != std::string::npos;
    }
    CHECK(found);
  }
}

TEST_CASE("malformed inputs and undefined instances are issues and host inputs are skipped",
          "[replay]") {
  jt::temp_dir d;
  auto j = journal::open(options(d.path()));
  REQUIRE(j.ok());
  journal& jn = **j;
  // An acquire for a limiter never defined.
  REQUIRE(jr::record_limiter_acquire(jn, 77, "K", 0, 1, 5, limit_decision{}).ok());
  // Replay inputs cut short.
  const std::uint8_t cut[] = {0x72, 1, 1, 2, 7, 0, 0, 0, 1, 2};
  journal_entry e;
  e.inputs = cut;
  REQUIRE(jn.append(e).ok());
  // The host's own inputs: not replay inputs.
  const std::uint8_t mine[] = {'h', 'o', 's', 't'};
  e.inputs = mine;
  REQUIRE(jn.append(e).ok());
  // A define the policy refuses (no tiers).
  const std::uint8_t bad_define[] = {0x72, 1, 1,    1,    9,    0,    0,    0,    16, 0, 0, 0, 0, 0,
                                     0,    0, 1,    0,    0,    0,    0,    0,    0,  0, 0, 0, 0, 0,
                                     0,    0, 0xf0, 0x3f, 0xff, 0xff, 0xff, 0xff, 0,  0, 0, 0};
  e.kind = static_cast<std::uint16_t>(event_kind::config_change);
  e.inputs = bad_define;
  REQUIRE(jn.append(e).ok());
  REQUIRE(jn.close().ok());

  auto rep = jr::replay_journal(d.path());
  REQUIRE(rep.ok());
  CHECK(rep->other == 1);
  REQUIRE(rep->issue_count == 3);
  CHECK(rep->issues.at(0).message.find("never defined") != std::string::npos);
  CHECK(rep->issues.at(1).message.find("malformed") != std::string::npos);
  CHECK(rep->issues.at(2).message.find("refused") != std::string::npos);
  CHECK_FALSE(rep->ok());

  CHECK_FALSE(jr::describe_inputs(mine).has_value());
  const auto cut_json = jr::describe_inputs(cut);
  REQUIRE(cut_json.has_value());
  CHECK(cut_json->find("\"error\"") != std::string::npos);
}

TEST_CASE("describe_inputs gives the decision as JSON", "[replay]") {
  jt::temp_dir d;
  auto j = journal::open(options(d.path()));
  REQUIRE(j.ok());
  limit_decision dec;
  dec.allowed = false;
  dec.reason = limit_reason::rate;
  dec.retry_after_ns = 1234;
  REQUIRE(jr::record_limiter_acquire(**j, 3, "A\"B", 1, 2, 99, dec).ok());
  REQUIRE((*j)->close().ok());
  auto rd = journal_reader::open(d.path());
  REQUIRE(rd.ok());
  journal_format::record_view v;
  REQUIRE((*rd)->next(&v));
  CHECK(v.verdict == 1);  // rejected
  CHECK(v.reason == static_cast<std::uint32_t>(limit_reason::rate));
  const auto json = jr::describe_inputs(v.inputs);
  REQUIRE(json.has_value());
  CHECK(*json ==
        "{\"component\":\"limiter\",\"op\":\"acquire\",\"instance\":3,\"key\":\"A\\\"B\","
        "\"tier\":1,\"cost\":2,\"now_ns\":99,\"allowed\":false,\"shadow\":false,"
        "\"reason\":\"rate\",\"retry_after_ns\":1234,\"remaining\":0}");
}

TEST_CASE("a key longer than the inputs allow is refused as too large", "[replay]") {
  jt::temp_dir d;
  auto j = journal::open(options(d.path()));
  REQUIRE(j.ok());
  const std::string key(jr::max_key_size + 1, 'k');
  CHECK(jr::record_limiter_acquire(**j, 1, key, 0, 1, 1, limit_decision{}).status ==
        append_status::too_large);
  const std::string ok_key(jr::max_key_size, 'k');
  CHECK(jr::record_limiter_acquire(**j, 1, ok_key, 0, 1, 1, limit_decision{}).ok());
  REQUIRE((*j)->close().ok());
}

TEST_CASE("a full key table replays its capacity rejections exactly", "[replay]") {
  jt::temp_dir d;
  auto j = journal::open(options(d.path()));
  REQUIRE(j.ok());
  limiter_options o;
  o.tiers = {tier{"t", 10.0, 2}};
  o.capacity = 8;
  auto lim = limiter::create(o);
  REQUIRE(lim.ok());
  REQUIRE(jr::record_limiter_define(**j, 5, **lim, jr::no_parent).ok());
  std::uint64_t capacity_rejections = 0;
  std::mt19937_64 rng(7);
  for (std::uint64_t i = 0; i < 3000; ++i) {
    const std::string key = "K" + std::to_string(rng() % 400);
    const std::uint64_t now = 1'000'000 + i * 50'000;
    const limit_decision dec = (*lim)->acquire(key, 0, 1, now);
    capacity_rejections += dec.reason == limit_reason::capacity ? 1 : 0;
    REQUIRE(jr::record_limiter_acquire(**j, 5, key, 0, 1, now, dec).ok());
    if (i % 512 == 0) REQUIRE((*j)->poll().ok());
  }
  REQUIRE((*j)->close().ok());
  REQUIRE(capacity_rejections > 0);
  auto rep = jr::replay_journal(d.path());
  REQUIRE(rep.ok());
  CHECK(rep->decisions == 3000);
  CHECK(rep->mismatch_count == 0);
  CHECK(rep->ok());
}

namespace {

int run_tool(const std::string& args, std::string* out) {
  const std::string cmd = std::string(TOLLGATE_AUDIT_TOOL) + " " + args + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  char buf[4096];
  out->clear();
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out->append(buf, n);
  const int st = ::pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

}  // namespace

TEST_CASE("tollgate-audit replays a journal and shows the decoded inputs", "[replay][tool]") {
  std::string out;
  {
    jt::temp_dir d;
    run_host(d.path(), falsify::none, 0);
    CHECK(run_tool("replay " + d.path(), &out) == 0);
    CHECK(out.find("OK: every decision reproduced") != std::string::npos);
    CHECK(out.find(", 0 differ;") != std::string::npos);
    CHECK(run_tool("dump --kind config_change " + d.path(), &out) == 0);
    CHECK(out.find("\"replay\":{\"component\":\"limiter\",\"op\":\"define\",\"instance\":2") !=
          std::string::npos);
    CHECK(out.find("\"parent\":1") != std::string::npos);
    CHECK(run_tool("dump --kind breaker_transition " + d.path(), &out) == 0);
    CHECK(out.find("\"op\":\"transition\"") != std::string::npos);
  }
  {
    jt::temp_dir d;
    run_host(d.path(), falsify::flip_limiter_decision, 1234);
    CHECK(run_tool("replay " + d.path(), &out) == 5);
    CHECK(out.find("DIFFERS seq ") != std::string::npos);
    CHECK(out.find("limiter 2 account ACC-") != std::string::npos);
    CHECK(out.find("recorded: ") != std::string::npos);
    CHECK(out.find("replayed: ") != std::string::npos);
    CHECK(out.find(", 1 differ;") != std::string::npos);
    // A flipped byte stops the replay with the verification failure.
    const std::string seg = d.sub(journal_format::segment_file_name(1));
    auto bytes = jt::read_bytes(seg);
    bytes[bytes.size() / 2] ^= 0x04;
    jt::write_bytes(seg, bytes);
    CHECK(run_tool("replay " + d.path(), &out) == 1);
    CHECK(out.find("FAILED") != std::string::npos);
  }
}
