// tollgate-audit: verify, dump and summarize a tollgate audit journal.
//
//   tollgate-audit verify [--strict] [--public-key HEX] [--progress|--no-progress] DIR
//   tollgate-audit dump [--from TIME] [--to TIME] [--account A] [--kind K]... [--payload] DIR
//   tollgate-audit stats [--public-key HEX] DIR
//   tollgate-audit replay [--strict] [--public-key HEX] [--max N] DIR
//
// Exit status: 0 verified clean (replay: and every decision reproduced);
// 1 the journal fails verification (first bad record reported); 2 only
// warnings (a torn or unsigned tail of the open segment, the normal state
// after a crash); 3 usage; 4 I/O error; 5 replay: decisions differ, or
// recorded inputs could not be replayed.
#include <time.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "tollgate/journal_reader.hpp"
#include "tollgate/journal_replay.hpp"

namespace {

namespace jf = tollgate::journal_format;

constexpr int exit_ok = 0;
constexpr int exit_bad = 1;
constexpr int exit_warn = 2;
constexpr int exit_usage = 3;
constexpr int exit_io = 4;
constexpr int exit_differs = 5;

int usage() {
  std::fputs(
      "usage: tollgate-audit verify [--strict] [--public-key HEX] [--progress|--no-progress] DIR\n"
      "       tollgate-audit dump [--from TIME] [--to TIME] [--account A] [--kind K]...\n"
      "                           [--payload] [--public-key HEX] DIR\n"
      "       tollgate-audit stats [--public-key HEX] DIR\n"
      "       tollgate-audit replay [--strict] [--public-key HEX] [--max N] DIR\n"
      "TIME: nanoseconds since the epoch, or UTC as 2026-01-02T03:04:05[.fraction]Z\n"
      "K: decision, breaker_transition, config_change, key_revocation, kill_switch,\n"
      "   risk_check, records_dropped, tail_truncated, checkpoint, or a number\n"
      "dump prints each record as one JSON line; replay inputs are decoded under \"replay\"\n"
      "replay decides every recorded limiter and breaker decision again and prints each\n"
      "  difference (at most N, default 20; all are counted)\n"
      "exit: 0 clean, 1 verification failed, 2 warnings only, 3 usage, 4 I/O error,\n"
      "      5 replay differs\n",
      stderr);
  return exit_usage;
}

std::string iso_time(std::uint64_t ns) {
  const auto secs = static_cast<time_t>(ns / 1'000'000'000u);
  tm t{};
  gmtime_r(&secs, &t);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%09" PRIu64 "Z", t.tm_year + 1900,
                t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, ns % 1'000'000'000u);
  return buf;
}

bool parse_time(std::string_view s, std::uint64_t* ns) {
  if (!s.empty() && s.find_first_not_of("0123456789") == std::string_view::npos) {
    *ns = std::strtoull(std::string(s).c_str(), nullptr, 10);
    return true;
  }
  tm t{};
  int consumed = 0;
  const std::string str(s);
  if (std::sscanf(str.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &t.tm_year, &t.tm_mon, &t.tm_mday,
                  &t.tm_hour, &t.tm_min, &t.tm_sec, &consumed) != 6) {
    return false;
  }
  t.tm_year -= 1900;
  t.tm_mon -= 1;
  std::uint64_t frac = 0;
  std::string_view rest = s.substr(static_cast<std::size_t>(consumed));
  if (rest.starts_with(".")) {
    rest.remove_prefix(1);
    int digits = 0;
    while (!rest.empty() && rest[0] >= '0' && rest[0] <= '9') {
      if (digits < 9) {
        frac = frac * 10 + static_cast<std::uint64_t>(rest[0] - '0');
        ++digits;
      }
      rest.remove_prefix(1);
    }
    for (; digits < 9; ++digits) frac *= 10;
  }
  if (rest != "Z") return false;
  const time_t secs = timegm(&t);
  if (secs < 0) return false;
  *ns = static_cast<std::uint64_t>(secs) * 1'000'000'000u + frac;
  return true;
}

void json_string(std::string* out, std::string_view s) {
  out->push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        *out += "\\\"";
        break;
      case '\\':
        *out += "\\\\";
        break;
      case '\n':
        *out += "\\n";
        break;
      case '\r':
        *out += "\\r";
        break;
      case '\t':
        *out += "\\t";
        break;
      default:
        if (c < 0x20 || c >= 0x7F) {
          char b[8];
          std::snprintf(b, sizeof b, "\\u%04x", c);
          *out += b;
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
  }
  out->push_back('"');
}

struct args {
  std::string command;
  std::string dir;
  bool strict = false;
  int progress = -1;  // -1: when stderr is a terminal
  std::optional<jf::public_key> key;
  std::optional<std::uint64_t> from, to;
  std::optional<std::string> account;
  std::set<std::uint16_t> kinds;
  bool checkpoints = false;  // --kind checkpoint
  bool payload = false;
  std::size_t max_reported = 20;
};

constexpr std::uint32_t checkpoint_pseudo_kind = 0x10000;

bool parse_args(int argc, char** argv, args* a) {
  if (argc < 2) return false;
  a->command = argv[1];
  for (int i = 2; i < argc; ++i) {
    const std::string_view s = argv[i];
    auto value = [&](std::string_view* v) {
      if (i + 1 >= argc) return false;
      *v = argv[++i];
      return true;
    };
    std::string_view v;
    if (s == "--strict") {
      a->strict = true;
    } else if (s == "--progress") {
      a->progress = 1;
    } else if (s == "--no-progress") {
      a->progress = 0;
    } else if (s == "--payload") {
      a->payload = true;
    } else if (s == "--public-key") {
      jf::public_key k{};
      if (!value(&v) || !jf::from_hex(v, k)) return false;
      a->key = k;
    } else if (s == "--from" || s == "--to") {
      std::uint64_t t = 0;
      if (!value(&v) || !parse_time(v, &t)) return false;
      (s == "--from" ? a->from : a->to) = t;
    } else if (s == "--max") {
      if (!value(&v) || v.empty() || v.find_first_not_of("0123456789") != std::string_view::npos ||
          v.size() > 9) {
        return false;
      }
      a->max_reported = static_cast<std::size_t>(std::strtoul(std::string(v).c_str(), nullptr, 10));
    } else if (s == "--account") {
      if (!value(&v)) return false;
      a->account = std::string(v);
    } else if (s == "--kind") {
      if (!value(&v)) return false;
      std::uint16_t k = 0;
      if (v == "checkpoint") {
        a->checkpoints = true;
      } else if (jf::parse_kind(v, &k)) {
        a->kinds.insert(k);
      } else {
        return false;
      }
    } else if (!s.empty() && s[0] != '-' && a->dir.empty()) {
      a->dir = std::string(s);
    } else {
      return false;
    }
  }
  return !a->dir.empty();
}

void print_problem(const char* label, const tollgate::journal_problem& p) {
  std::fprintf(stderr, "%s: %s", label, p.category.c_str());
  if (!p.file.empty()) std::fprintf(stderr, " in %s", p.file.c_str());
  if (p.category != "manifest" && p.category != "directory") {
    std::fprintf(stderr, " at byte offset %" PRIu64, p.offset);
    if (p.sequence != 0) std::fprintf(stderr, " (record with sequence %" PRIu64 ")", p.sequence);
  }
  std::fprintf(stderr, ": %s\n", p.message.c_str());
}

int finish(const tollgate::journal_verify_report& r) {
  for (const auto& w : r.warnings) print_problem("warning", w);
  if (r.error) {
    print_problem("FAILED", *r.error);
    std::fprintf(stderr, "%" PRIu64 " records before it verified\n", r.records);
    return exit_bad;
  }
  return r.warnings.empty() ? exit_ok : exit_warn;
}

int cmd_verify(const args& a) {
  tollgate::journal_verify_options o;
  o.read.public_key = a.key;
  o.read.strict = a.strict;
  const bool show = a.progress == 1 || (a.progress == -1 && isatty(STDERR_FILENO) != 0);
  bool shown = false;
  if (show) {
    o.progress = [&shown](std::uint64_t done, std::uint64_t total) {
      if (total < (8u << 20)) return;  // small journals verify in a blink
      const double pct =
          total > 0 ? 100.0 * static_cast<double>(done) / static_cast<double>(total) : 100.0;
      const int bar = static_cast<int>(pct / 2.5);
      std::fprintf(stderr, "\rverifying [%-40.*s] %5.1f%%  %" PRIu64 " / %" PRIu64 " MiB", bar,
                   "########################################", pct, done >> 20, total >> 20);
      shown = true;
    };
  }
  auto r = tollgate::verify_journal(a.dir, o);
  if (shown) std::fputc('\n', stderr);
  if (!r.ok()) {
    std::fprintf(stderr, "error: %s\n", std::string(r.status().message()).c_str());
    return exit_io;
  }
  std::printf("journal %s\n", jf::to_hex(r->id).c_str());
  std::printf("public key %s\n", jf::to_hex(r->key).c_str());
  std::printf("%" PRIu64 " segments, %" PRIu64 " records (%" PRIu64 " events, %" PRIu64
              " checkpoints), %" PRIu64 " bytes verified\n",
              r->segments, r->records, r->events, r->checkpoints, r->bytes);
  if (r->records > 0) {
    std::printf("sequence 1..%" PRIu64 ", %s .. %s\n", r->last_sequence,
                iso_time(r->first_realtime_ns).c_str(), iso_time(r->last_realtime_ns).c_str());
    std::printf("chain head %s\n", jf::to_hex(r->head).c_str());
  }
  std::printf("%s\n", r->closed ? "closed cleanly" : "open (not closed, or still being written)");
  const int rc = finish(*r);
  std::printf("%s\n", rc == exit_ok ? "OK" : rc == exit_warn ? "OK with warnings" : "FAILED");
  return rc;
}

int cmd_dump(const args& a) {
  tollgate::journal_verify_options o;
  o.read.public_key = a.key;
  std::string line;
  const bool any_kind = a.kinds.empty() && !a.checkpoints;
  o.on_record = [&](const jf::record_view& v, const tollgate::journal_record_location& at) {
    if (a.from && v.realtime_ns < *a.from) return;
    if (a.to && v.realtime_ns > *a.to) return;
    const bool ckpt = v.type == jf::record_type::checkpoint;
    if (ckpt ? !(any_kind || a.checkpoints) || a.account.has_value()
             : !(any_kind || a.kinds.count(v.kind) > 0)) {
      return;
    }
    if (!ckpt && a.account && v.account != *a.account) return;
    line.clear();
    char num[256];
    std::snprintf(num, sizeof num,
                  "{\"seq\":%" PRIu64 ",\"segment\":%" PRIu64 ",\"offset\":%" PRIu64
                  ",\"type\":\"%s\",\"realtime_ns\":%" PRIu64
                  ",\"time\":\"%s\",\"monotonic_ns\":%" PRIu64,
                  v.seq, at.segment, at.offset, ckpt ? "checkpoint" : "event", v.realtime_ns,
                  iso_time(v.realtime_ns).c_str(), v.monotonic_ns);
    line += num;
    if (ckpt) {
      line += ",\"seal\":";
      line += (v.checkpoint_flags & jf::checkpoint_seal) != 0 ? "true" : "false";
      line += ",\"close\":";
      line += (v.checkpoint_flags & jf::checkpoint_close) != 0 ? "true" : "false";
      line += ",\"chain_head\":\"" + jf::to_hex(v.prev) + "\"";
      line += ",\"signature\":\"" + jf::to_hex(v.sig) + "\"";
    } else {
      line += ",\"kind\":";
      json_string(&line, jf::kind_name(v.kind));
      line += ",\"account\":";
      json_string(&line, v.account);
      std::snprintf(num, sizeof num,
                    ",\"route\":%" PRIu32 ",\"venue\":%" PRIu32 ",\"verdict\":%" PRIu32
                    ",\"reason\":%" PRIu32 ",\"config_version\":%" PRIu64,
                    v.route, v.venue, v.verdict, v.reason, v.config_version);
      line += num;
      line += ",\"inputs\":\"" + jf::to_hex(v.inputs) + "\"";
      if (auto replay = tollgate::journal_replay::describe_inputs(v.inputs)) {
        line += ",\"replay\":" + *replay;
      }
      if ((v.flags & jf::event_digest_set) != 0) {
        line += ",\"payload_sha256\":\"" + jf::to_hex(v.payload_digest) + "\"";
      }
      if (a.payload && !v.payload.empty()) line += ",\"payload\":\"" + jf::to_hex(v.payload) + "\"";
    }
    line += "}\n";
    std::fwrite(line.data(), 1, line.size(), stdout);
  };
  auto r = tollgate::verify_journal(a.dir, o);
  if (!r.ok()) {
    std::fprintf(stderr, "error: %s\n", std::string(r.status().message()).c_str());
    return exit_io;
  }
  std::fflush(stdout);
  return finish(*r);
}

int cmd_stats(const args& a) {
  tollgate::journal_verify_options o;
  o.read.public_key = a.key;
  std::map<std::uint32_t, std::uint64_t> by_verdict;
  std::set<std::string> accounts;
  std::uint64_t payload_bytes = 0;
  std::uint64_t inputs_bytes = 0;
  o.on_record = [&](const jf::record_view& v, const tollgate::journal_record_location&) {
    if (v.type != jf::record_type::event) return;
    ++by_verdict[v.verdict];
    if (accounts.size() < 1'000'000) accounts.emplace(v.account);
    payload_bytes += v.payload.size();
    inputs_bytes += v.inputs.size();
  };
  auto r = tollgate::verify_journal(a.dir, o);
  if (!r.ok()) {
    std::fprintf(stderr, "error: %s\n", std::string(r.status().message()).c_str());
    return exit_io;
  }
  std::printf("journal      %s\n", jf::to_hex(r->id).c_str());
  std::printf("segments     %" PRIu64 "\n", r->segments);
  std::printf("bytes        %" PRIu64 "\n", r->bytes);
  std::printf("records      %" PRIu64 " (%" PRIu64 " events, %" PRIu64 " checkpoints)\n",
              r->records, r->events, r->checkpoints);
  if (r->records > 0) {
    std::printf("first        %s\n", iso_time(r->first_realtime_ns).c_str());
    std::printf("last         %s\n", iso_time(r->last_realtime_ns).c_str());
    const double secs = static_cast<double>(r->last_realtime_ns - r->first_realtime_ns) / 1e9;
    if (secs > 0)
      std::printf("rate         %.1f events/s\n", static_cast<double>(r->events) / secs);
  }
  std::printf("accounts     %zu%s\n", accounts.size(), accounts.size() >= 1'000'000 ? "+" : "");
  std::printf("inputs       %" PRIu64 " bytes\n", inputs_bytes);
  std::printf("payloads     %" PRIu64 " bytes stored\n", payload_bytes);
  for (const auto& [k, n] : r->events_by_kind) {
    std::printf("kind         %-20s %" PRIu64 "\n", jf::kind_name(k).c_str(), n);
  }
  for (const auto& [v, n] : by_verdict) {
    std::printf("verdict      %-20" PRIu32 " %" PRIu64 "\n", v, n);
  }
  std::printf("state        %s\n", r->closed ? "closed" : "open");
  return finish(*r);
}

const char* component_name(tollgate::journal_replay::component c) {
  return c == tollgate::journal_replay::component::limiter ? "limiter" : "breaker";
}

int cmd_replay(const args& a) {
  namespace jr = tollgate::journal_replay;
  jr::replay_options o;
  o.read.public_key = a.key;
  o.read.strict = a.strict;
  o.max_reported = a.max_reported;
  auto r = jr::replay_journal(a.dir, o);
  if (!r.ok()) {
    std::fprintf(stderr, "error: %s\n", std::string(r.status().message()).c_str());
    return exit_io;
  }
  for (const jr::replay_mismatch& m : r->mismatches) {
    std::printf("DIFFERS seq %" PRIu64 " (segment %" PRIu64 " offset %" PRIu64 ") %s %u",
                m.sequence, m.segment, m.offset, component_name(m.comp), m.instance);
    if (!m.account.empty()) std::printf(" account %s", m.account.c_str());
    std::printf("\n  recorded: %s\n  replayed: %s\n", m.recorded.c_str(), m.replayed.c_str());
  }
  for (const jr::replay_issue& i : r->issues) {
    std::printf("CANNOT REPLAY seq %" PRIu64 " (segment %" PRIu64 " offset %" PRIu64 "): %s\n",
                i.sequence, i.segment, i.offset, i.message.c_str());
  }
  std::printf("%" PRIu64 " records read, %" PRIu64 " replayed (%" PRIu64 " limiter, %" PRIu64
              " breaker), %" PRIu64 " instances\n",
              r->records, r->replayed, r->limiter_records, r->breaker_records, r->instances);
  std::printf("%" PRIu64 " decisions and %" PRIu64 " breaker transitions compared, %" PRIu64
              " differ; %" PRIu64 " records could not be replayed; %" PRIu64
              " records carry no replay inputs\n",
              r->decisions, r->transitions, r->mismatch_count, r->issue_count, r->other);
  for (const auto& w : r->warnings) print_problem("warning", w);
  if (r->error) {
    print_problem("FAILED", *r->error);
    std::printf("FAILED: the journal does not verify; replayed up to the bad record\n");
    return exit_bad;
  }
  if (r->mismatch_count != 0 || r->issue_count != 0) {
    std::printf("DIFFERS\n");
    return exit_differs;
  }
  std::printf("%s\n", r->warnings.empty() ? "OK: every decision reproduced"
                                          : "OK with warnings: every decision reproduced");
  return r->warnings.empty() ? exit_ok : exit_warn;
}

}  // namespace

int main(int argc, char** argv) {
  args a;
  if (!parse_args(argc, argv, &a)) return usage();
  if (a.command == "verify") return cmd_verify(a);
  if (a.command == "dump") return cmd_dump(a);
  if (a.command == "stats") return cmd_stats(a);
  if (a.command == "replay") return cmd_replay(a);
  return usage();
}
