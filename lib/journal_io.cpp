// See journal_io.hpp.
#include "journal_io.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace tollgate::jio {

namespace jf = journal_format;

void fd::reset() noexcept {
  if (v_ >= 0) ::close(v_);
  v_ = -1;
}

io_error make_error(int err, const std::string& what, const std::string& path,
                    std::uint64_t offset) {
  io_error e;
  e.error_number = err;
  e.offset = offset;
  std::string m = "journal: " + what + " " + path + " at offset " + std::to_string(offset) +
                  " failed: " + std::strerror(err) + " (errno " + std::to_string(err) + ")";
  switch (err) {
    case ENOSPC:
    case EFBIG:
    case EDQUOT:
      e.status = absl::ResourceExhaustedError(m);
      break;
    case EIO:
      e.status = absl::DataLossError(m);
      break;
    case ENOENT:
      e.status = absl::NotFoundError(m);
      break;
    default:
      e.status = absl::InternalError(m);
  }
  return e;
}

namespace {

fd open_with(const std::string& path, int flags, const char* what, io_error* e) {
  const int v = ::open(path.c_str(), flags | O_CLOEXEC, 0640);
  if (v < 0) {
    *e = make_error(errno, what, path, 0);
    return fd();
  }
  *e = io_error{};
  return fd(v);
}

}  // namespace

fd open_dir(const std::string& path, io_error* e) {
  return open_with(path, O_RDONLY | O_DIRECTORY, "open directory", e);
}

fd create_file(const std::string& path, io_error* e) {
  return open_with(path, O_WRONLY | O_CREAT | O_TRUNC, "create", e);
}

fd open_for_write(const std::string& path, io_error* e) {
  return open_with(path, O_WRONLY, "open", e);
}

io_error write_at(int f, const void* data, std::size_t n, std::uint64_t offset,
                  const std::string& path) {
  const auto* p = static_cast<const std::uint8_t*>(data);
  std::size_t done = 0;
  while (done < n) {
    const ssize_t w = ::pwrite(f, p + done, n - done, static_cast<off_t>(offset + done));
    if (w < 0) {
      if (errno == EINTR) continue;
      return make_error(errno, done > 0 ? "write (after a short write)" : "write", path,
                        offset + done);
    }
    if (w == 0) return make_error(EIO, "write (no progress)", path, offset + done);
    done += static_cast<std::size_t>(w);
  }
  return {};
}

io_error sync_data(int f, const std::string& path, std::uint64_t offset) {
  for (;;) {
    if (::fdatasync(f) == 0) return {};
    if (errno != EINTR) return make_error(errno, "fdatasync", path, offset);
  }
}

io_error sync_dir(int dir, const std::string& path) {
  for (;;) {
    if (::fsync(dir) == 0) return {};
    if (errno != EINTR) return make_error(errno, "fsync directory", path, 0);
  }
}

io_error read_file_bytes(const std::string& path, std::vector<std::uint8_t>* out) {
  io_error e;
  fd f = open_with(path, O_RDONLY, "open", &e);
  if (!e.ok()) return e;
  struct stat sb {};
  if (::fstat(f.get(), &sb) != 0) return make_error(errno, "stat", path, 0);
  out->resize(static_cast<std::size_t>(sb.st_size));
  std::size_t done = 0;
  while (done < out->size()) {
    const ssize_t r =
        ::pread(f.get(), out->data() + done, out->size() - done, static_cast<off_t>(done));
    if (r < 0) {
      if (errno == EINTR) continue;
      return make_error(errno, "read", path, done);
    }
    if (r == 0) break;  // shrank meanwhile
    done += static_cast<std::size_t>(r);
  }
  out->resize(done);
  return {};
}

io_error read_file(const std::string& path, std::string* out) {
  std::vector<std::uint8_t> b;
  io_error e = read_file_bytes(path, &b);
  if (e.ok()) out->assign(b.begin(), b.end());
  return e;
}

io_error list_dir(const std::string& path, std::vector<std::string>* names) {
  DIR* d = ::opendir(path.c_str());
  if (d == nullptr) return make_error(errno, "list", path, 0);
  while (const dirent* ent = ::readdir(d)) {
    const std::string n = ent->d_name;
    if (n != "." && n != "..") names->push_back(n);
  }
  ::closedir(d);
  return {};
}

io_error replace_file(int dir_fd, const std::string& dir, const std::string& name,
                      const std::string& tmp, const std::string& text) {
  const std::string tmp_path = dir + "/" + tmp;
  io_error e;
  fd f = create_file(tmp_path, &e);
  if (!e.ok()) return e;
  if (e = write_at(f.get(), text.data(), text.size(), 0, tmp_path); !e.ok()) return e;
  for (;;) {
    if (::fsync(f.get()) == 0) break;
    if (errno != EINTR) return make_error(errno, "fsync", tmp_path, 0);
  }
  f.reset();
  if (::renameat(dir_fd, tmp.c_str(), dir_fd, name.c_str()) != 0) {
    return make_error(errno, "rename", tmp_path, 0);
  }
  return sync_dir(dir_fd, dir);
}

record_check check_record(std::span<const std::uint8_t> seg, std::uint64_t off,
                          const jf::journal_id& id, const jf::public_key& key, chain_state* st,
                          jf::record_view* v, std::string* why) {
  std::string body_why;
  const jf::frame_status fs = jf::decode_frame(seg.subspan(off), v, &body_why);
  switch (fs) {
    case jf::frame_status::ok:
      break;
    case jf::frame_status::incomplete:
      *why = "incomplete record";
      return record_check::torn;
    case jf::frame_status::bad_length:
      *why = "record length out of range";
      return record_check::torn;
    case jf::frame_status::bad_crc:
      *why = "CRC mismatch";
      return record_check::torn;
    case jf::frame_status::bad_body:
      *why = "invalid record: " + body_why;
      return record_check::invalid;
  }
  if (st->sealed) {
    *why = "record after the segment's seal";
    return record_check::invalid;
  }
  if (v->seq != st->next_seq) {
    *why = "sequence " + std::to_string(v->seq) + " where " + std::to_string(st->next_seq) +
           " was expected";
    return record_check::invalid;
  }
  if (v->prev != st->head) {
    *why = "chain link does not match the previous record";
    return record_check::invalid;
  }
  if (v->type == jf::record_type::checkpoint) {
    const auto msg =
        jf::checkpoint_message(id, v->seq, v->realtime_ns, v->checkpoint_flags, v->prev);
    if (!crypto::ed25519_verify(msg.data(), msg.size(), v->sig.data(), key.data())) {
      *why = "checkpoint signature does not verify";
      return record_check::invalid;
    }
    ++st->checkpoints;
    st->unsigned_records = 0;
    st->sealed = (v->checkpoint_flags & jf::checkpoint_seal) != 0;
    st->closed = (v->checkpoint_flags & jf::checkpoint_close) != 0;
  } else {
    ++st->events;
    ++st->unsigned_records;
  }
  st->head = jf::chain_next(v->body);
  ++st->next_seq;
  ++st->records;
  return record_check::ok;
}

std::uint64_t find_valid_frame(std::span<const std::uint8_t> seg, std::uint64_t from) {
  for (std::uint64_t p = from; p + jf::frame_prefix_size + 2 <= seg.size(); ++p) {
    const std::uint8_t type = seg[p + jf::frame_prefix_size];
    if ((type != 1 && type != 2) || seg[p + jf::frame_prefix_size + 1] != 0) continue;
    jf::record_view v;
    if (jf::decode_frame(seg.subspan(p), &v) == jf::frame_status::ok) return p;
  }
  return 0;
}

scan_result scan_segment(std::span<const std::uint8_t> seg, const jf::journal_id& id,
                         const jf::public_key& key, std::uint64_t first_seq, const jf::hash& prev,
                         const record_callback& on_record) {
  scan_result r;
  r.end = jf::header_size;
  r.st.next_seq = first_seq;
  r.st.head = prev;
  while (r.end < seg.size()) {
    jf::record_view v;
    const record_check c = check_record(seg, r.end, id, key, &r.st, &v, &r.why);
    if (c != record_check::ok) {
      r.bad_seq = r.st.next_seq;
      if (c == record_check::invalid) {
        r.damage = true;
        r.valid_after = r.end;
      } else if (const std::uint64_t p = find_valid_frame(seg, r.end + 1); p != 0) {
        r.damage = true;
        r.valid_after = p;
      }
      break;
    }
    if (on_record) on_record(v, r.end);
    r.end += v.frame_size;
  }
  return r;
}

}  // namespace tollgate::jio
