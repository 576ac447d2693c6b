// Reading and verifying an audit journal. See
// include/tollgate/journal_reader.hpp and docs/journal-format.md.
#include "tollgate/journal_reader.hpp"

#include <dirent.h>
#include <sys/stat.h>

#include <cerrno>

#include "journal_io.hpp"

namespace tollgate {

namespace jf = journal_format;

namespace {

journal_problem make_problem(const jf::manifest& m, std::size_t index, std::uint64_t sequence,
                             std::string category, std::string message, std::uint64_t offset) {
  journal_problem p;
  p.category = std::move(category);
  p.message = std::move(message);
  p.offset = offset;
  if (p.category == "manifest" || p.category == "directory") {
    p.file = std::string(jf::manifest_name);
  } else if (index < m.segments.size()) {
    p.segment = m.segments[index].number;
    p.file = jf::segment_file_name(p.segment);
    p.sequence = sequence;
  }
  return p;
}

}  // namespace

bool journal_reader::fail(std::string category, std::string message, std::uint64_t offset) {
  problem_ = make_problem(manifest_, index_, loaded_ ? seg_next_seq_ : next_seq_,
                          std::move(category), std::move(message), offset);
  done_ = true;
  return false;
}

bool journal_reader::warn(std::string category, std::string message, std::uint64_t offset) {
  if (options_.strict) return fail(std::move(category), std::move(message), offset);
  warnings_.push_back(make_problem(manifest_, index_, loaded_ ? seg_next_seq_ : next_seq_,
                                   std::move(category), std::move(message), offset));
  return true;
}

absl::StatusOr<std::unique_ptr<journal_reader>> journal_reader::open(const std::string& directory,
                                                                     journal_read_options options) {
  if (auto s = crypto::available(); !s.ok()) return s;
  std::unique_ptr<journal_reader> r(new journal_reader());
  r->dir_ = directory;
  r->options_ = std::move(options);
  std::vector<std::string> names;
  if (auto e = jio::list_dir(directory, &names); !e.ok()) return e.status;
  std::string text;
  const std::string mpath = directory + "/" + std::string(jf::manifest_name);
  if (auto e = jio::read_file(mpath, &text); !e.ok()) {
    if (e.error_number != ENOENT) return e.status;
    r->fail("manifest", "no MANIFEST in the directory", 0);
    return r;
  }
  auto m = jf::decode_manifest(text);
  if (!m.ok()) {
    r->fail("manifest", std::string(m.status().message()), 0);
    return r;
  }
  r->manifest_ = *std::move(m);
  if (r->options_.public_key && *r->options_.public_key != r->manifest_.key) {
    r->fail("manifest",
            "the journal's key " + jf::to_hex(r->manifest_.key) + " is not the expected key " +
                jf::to_hex(*r->options_.public_key),
            0);
    return r;
  }
  for (const auto& n : names) {
    std::uint64_t num = 0;
    if (n == jf::manifest_tmp_name) {
      r->warn("directory", "MANIFEST.tmp left by an interrupted manifest update", 0);
      continue;
    }
    if (!jf::parse_segment_file_name(n, &num)) continue;
    if (num < 1 || num > r->manifest_.segments.back().number) {
      r->fail("directory", n + " is not listed in the manifest", 0);
      return r;
    }
  }
  for (const auto& g : r->manifest_.segments) {
    struct stat sb {};
    if (::stat((directory + "/" + jf::segment_file_name(g.number)).c_str(), &sb) == 0) {
      r->bytes_total_ += static_cast<std::uint64_t>(sb.st_size);
    }
  }
  r->head_ = jf::genesis(r->manifest_.id);
  r->next_seq_ = 1;
  return r;
}

bool journal_reader::load_segment() {
  const auto& g = manifest_.segments[index_];
  const bool last_open = index_ + 1 == manifest_.segments.size() && !g.sealed;
  const std::string name = jf::segment_file_name(g.number);
  bytes_.clear();
  offset_ = 0;
  if (auto e = jio::read_file_bytes(dir_ + "/" + name, &bytes_); !e.ok()) {
    if (e.error_number == ENOENT && last_open) {
      warn("missing_segment",
           "the open segment's file does not exist (a crash during rotation; recovery creates it)",
           0);
      done_ = true;
      return !problem_.has_value();
    }
    return fail("missing_segment", std::string(e.status.message()), 0);
  }
  if (bytes_.size() < jf::header_size && last_open) {
    warn("torn_tail",
         "the open segment has only " + std::to_string(bytes_.size()) +
             " bytes of its header (a crash while creating it)",
         0);
    done_ = true;
    return !problem_.has_value();
  }
  jf::segment_header h;
  if (auto s = jf::decode_header(bytes_, &h); !s.ok()) {
    return fail("header", std::string(s.message()), 0);
  }
  if (h.id != manifest_.id) return fail("header", "journal id differs from the manifest's", 16);
  if (h.segment != g.number) return fail("header", "segment number differs from its name", 32);
  if (h.first_seq != g.first_seq || h.first_seq != next_seq_) {
    return fail(
        "header",
        "first sequence " + std::to_string(h.first_seq) + ", expected " + std::to_string(next_seq_),
        40);
  }
  if (h.prev != head_) {
    return fail("header", "chain value does not continue the previous segment", 48);
  }
  if (h.key != manifest_.key) return fail("header", "public key differs from the manifest's", 80);
  seg_next_seq_ = next_seq_;
  seg_head_ = head_;
  seg_sealed_ = false;
  seg_closed_ = false;
  seg_unsigned_ = 0;
  offset_ = jf::header_size;
  loaded_ = true;
  return true;
}

bool journal_reader::finish_segment() {
  const auto& g = manifest_.segments[index_];
  const bool last = index_ + 1 == manifest_.segments.size();
  if (g.sealed) {
    if (!seg_sealed_) {
      return fail("seal", "the segment does not end with a seal checkpoint", bytes_.size());
    }
    if (bytes_.size() != g.bytes || seg_next_seq_ - 1 != g.last_seq || seg_head_ != g.head) {
      return fail("seal",
                  "the manifest records " + std::to_string(g.bytes) + " bytes up to sequence " +
                      std::to_string(g.last_seq) + "; the segment has " +
                      std::to_string(bytes_.size()) + " bytes up to " +
                      std::to_string(seg_next_seq_ - 1) +
                      (seg_head_ != g.head ? ", other chain value" : ""),
                  bytes_.size());
    }
    if (last && !seg_closed_) {
      return fail("seal", "the journal's last segment is sealed without the close flag",
                  bytes_.size());
    }
    closed_ = last;
  } else if (seg_unsigned_ > 0) {
    if (!warn("unsigned_tail",
              std::to_string(seg_unsigned_) +
                  " records after the last checkpoint are not covered by a signature",
              bytes_.size())) {
      return false;
    }
  }
  next_seq_ = seg_next_seq_;
  head_ = seg_head_;
  bytes_done_ += bytes_.size();
  offset_ = 0;
  bytes_.clear();
  loaded_ = false;
  ++index_;
  return true;
}

bool journal_reader::next(jf::record_view* r, journal_record_location* where) {
  for (;;) {
    if (done_ || problem_) return false;
    if (!loaded_) {
      if (index_ >= manifest_.segments.size()) {
        done_ = true;
        return false;
      }
      if (!load_segment()) return false;
      if (done_) return false;
    }
    if (offset_ < bytes_.size()) {
      jio::chain_state st;
      st.next_seq = seg_next_seq_;
      st.head = seg_head_;
      st.sealed = seg_sealed_;
      std::string why;
      const jio::record_check c =
          jio::check_record(bytes_, offset_, manifest_.id, manifest_.key, &st, r, &why);
      if (c == jio::record_check::ok) {
        seg_next_seq_ = st.next_seq;
        seg_head_ = st.head;
        seg_sealed_ = st.sealed;
        seg_closed_ = st.closed;
        seg_unsigned_ = r->type == jf::record_type::checkpoint ? 0 : seg_unsigned_ + 1;
        if (where != nullptr) {
          where->segment = manifest_.segments[index_].number;
          where->offset = offset_;
        }
        offset_ += r->frame_size;
        return true;
      }
      const auto& g = manifest_.segments[index_];
      const bool last_open = index_ + 1 == manifest_.segments.size() && !g.sealed;
      if (c == jio::record_check::torn && last_open) {
        const std::uint64_t valid = jio::find_valid_frame(bytes_, offset_ + 1);
        if (valid == 0) {
          if (!warn("torn_tail",
                    why + ": the last " + std::to_string(bytes_.size() - offset_) +
                        " bytes are a torn tail (recovery truncates them)",
                    offset_)) {
            return false;
          }
          bytes_.resize(offset_);
        } else {
          return fail("record",
                      why + " (a valid record follows at offset " + std::to_string(valid) + ")",
                      offset_);
        }
      } else {
        return fail("record", why, offset_);
      }
    }
    if (!finish_segment()) return false;
  }
}

absl::StatusOr<journal_verify_report> verify_journal(const std::string& directory,
                                                     const journal_verify_options& options) {
  auto rd = journal_reader::open(directory, options.read);
  if (!rd.ok()) return rd.status();
  journal_reader& reader = **rd;
  journal_verify_report rep;
  rep.id = reader.manifest().id;
  rep.key = reader.manifest().key;
  jf::record_view v;
  journal_record_location where;
  std::uint64_t last_progress = 0;
  while (reader.next(&v, &where)) {
    ++rep.records;
    if (v.type == jf::record_type::checkpoint) {
      ++rep.checkpoints;
    } else {
      ++rep.events;
      ++rep.events_by_kind[v.kind];
    }
    if (rep.first_realtime_ns == 0) rep.first_realtime_ns = v.realtime_ns;
    rep.last_realtime_ns = v.realtime_ns;
    rep.last_sequence = v.seq;
    if (options.on_record) options.on_record(v, where);
    if (options.progress && reader.bytes_read() - last_progress >= (1u << 20)) {
      last_progress = reader.bytes_read();
      options.progress(last_progress, reader.bytes_total());
    }
  }
  if (options.progress) options.progress(reader.bytes_read(), reader.bytes_total());
  rep.error = reader.problem();
  rep.warnings = reader.warnings();
  rep.bytes = reader.bytes_read();
  rep.head = reader.head();
  rep.closed = reader.closed();
  rep.segments = reader.manifest().segments.size();
  return rep;
}

}  // namespace tollgate
