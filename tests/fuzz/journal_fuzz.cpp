// Fuzz target: the audit journal's readers of untrusted bytes (a journal is
// evidence: whoever hands it to `tollgate-audit verify` may have crafted it).
//
// The first input byte chooses what the rest is:
//   0: a segment header (decode_header);
//   1: a stream of frames, decoded one after another as the reader does
//      (decode_frame, chain_next), each event's inputs decoded as replay
//      inputs (describe_inputs) and the events replayed (replay_session:
//      limiters and breakers built from crafted configurations);
//   2: the text of a MANIFEST (decode_manifest);
//   3: a whole segment file, written into a fresh directory and checked with
//      verify_journal and journal_reader (the on-disk path of the tool).
// These must hold, or the target aborts:
//   - a decoded frame lies inside the input (frame_size > 0 and within it),
//     its body inside the frame, and every view of the record inside the body;
//   - a frame that decodes once decodes the same way again (no hidden state);
//   - the event body re-encoded from the decoded fields is the same bytes
//     (the decoder accepts exactly one spelling of each record);
//   - describe_inputs gives nothing or one JSON object; a replay of crafted
//     records ends in a report whose counts add up, never a crash;
//   - a verify of a crafted journal ends in a report, never a crash; one that
//     reports no error reads back through journal_reader without an error.
#include <unistd.h>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tollgate/journal_format.hpp"
#include "tollgate/journal_reader.hpp"
#include "tollgate/journal_replay.hpp"

namespace jf = tollgate::journal_format;

namespace {

[[noreturn]] void violated(const char* what) {
  std::fprintf(stderr, "journal_fuzz: %s\n", what);
  std::abort();
}

template <class V>
bool within(const V& part, std::span<const std::uint8_t> whole) {
  if (part.empty()) return true;
  const auto* p = reinterpret_cast<const std::uint8_t*>(part.data());
  return p >= whole.data() && p + part.size() <= whole.data() + whole.size();
}

void frames(std::span<const std::uint8_t> in) {
  std::size_t at = 0;
  tollgate::journal_replay::replay_options ro;
  ro.max_reported = 4;
  ro.max_limiter_capacity = 4096;  // a crafted define may ask for 2^26 keys
  tollgate::journal_replay::replay_session session(ro);
  std::uint64_t events = 0;
  struct finish_replay {
    tollgate::journal_replay::replay_session& s;
    const std::uint64_t& events;
    ~finish_replay() {
      const auto rep = s.finish();
      if (rep.replayed + rep.other != events) violated("replay counts do not add up");
      if (rep.mismatches.size() > 4 || rep.issues.size() > 4) violated("replay over-reports");
    }
  } finisher{session, events};
  for (int n = 0; n < 64 && at < in.size(); ++n) {
    const std::span<const std::uint8_t> rest = in.subspan(at);
    jf::record_view r;
    std::string why;
    const jf::frame_status st = jf::decode_frame(rest, &r, &why);
    if (st != jf::frame_status::ok) return;
    if (r.frame_size == 0 || r.frame_size > rest.size()) violated("frame outside the input");
    const std::span<const std::uint8_t> frame = rest.first(r.frame_size);
    if (!within(r.body, frame)) violated("body outside the frame");
    if (!within(r.account, r.body) || !within(r.inputs, r.body) || !within(r.payload, r.body)) {
      violated("a field outside the body");
    }
    jf::record_view again;
    if (jf::decode_frame(rest, &again, nullptr) != jf::frame_status::ok || again.seq != r.seq ||
        again.frame_size != r.frame_size) {
      violated("a frame decodes differently twice");
    }
    if (r.type == jf::record_type::event) {
      jf::event_fields f;
      f.kind = r.kind;
      f.flags = r.flags;
      f.seq = r.seq;
      f.realtime_ns = r.realtime_ns;
      f.monotonic_ns = r.monotonic_ns;
      f.prev = r.prev;
      f.config_version = r.config_version;
      f.route = r.route;
      f.venue = r.venue;
      f.verdict = r.verdict;
      f.reason = r.reason;
      f.payload_digest = r.payload_digest;
      f.account = r.account;
      f.inputs = r.inputs;
      f.payload = r.payload;
      const std::size_t size =
          jf::event_body_size(r.account.size(), r.inputs.size(), r.payload.size());
      if (size != r.body.size()) violated("an event body of another size than its fields");
      std::vector<std::uint8_t> body(size);
      jf::encode_event_body(f, body.data());
      if (!std::equal(body.begin(), body.end(), r.body.begin())) {
        violated("an event body that does not re-encode to itself");
      }
      if (const auto json = tollgate::journal_replay::describe_inputs(r.inputs)) {
        if (json->size() < 2 || json->front() != '{' || json->back() != '}') {
          violated("describe_inputs gave something other than a JSON object");
        }
      }
      ++events;
    }
    session.feed(r, tollgate::journal_record_location{1, at});
    (void)jf::chain_next(r.body);
    at += r.frame_size;
  }
}

void whole_segment(std::span<const std::uint8_t> in) {
  static const std::filesystem::path root = [] {
    char tmpl[] = "/tmp/tollgate-journal-fuzz-XXXXXX";
    const char* d = ::mkdtemp(tmpl);
    if (d == nullptr) violated("mkdtemp failed");
    return std::filesystem::path(d);
  }();
  const std::filesystem::path dir = root / "j";
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  std::filesystem::create_directories(dir);
  {
    std::ofstream out(dir / jf::segment_file_name(1), std::ios::binary);
    out.write(reinterpret_cast<const char*>(in.data()), static_cast<std::streamsize>(in.size()));
  }
  auto report = tollgate::verify_journal(dir.string(), tollgate::journal_verify_options{});
  if (report.ok() && report->ok()) {
    auto reader = tollgate::journal_reader::open(dir.string(), tollgate::journal_read_options{});
    if (!reader.ok()) violated("verified, but the reader cannot open it");
    jf::record_view r;
    while ((*reader)->next(&r)) {
    }
    if ((*reader)->problem().has_value()) violated("verified, but the reader finds an error");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::span<const std::uint8_t> rest(data + 1, size - 1);
  switch (data[0] & 3) {
    case 0: {
      jf::segment_header h;
      (void)jf::decode_header(rest, &h);
      break;
    }
    case 1:
      frames(rest);
      break;
    case 2:
      (void)jf::decode_manifest(
          std::string_view(reinterpret_cast<const char*>(rest.data()), rest.size()));
      break;
    default:
      whole_segment(rest);
      break;
  }
  return 0;
}
