// Helpers for the journal tests: scratch directories, files, options.
#pragma once

#include <dirent.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "tollgate/journal.hpp"
#include "tollgate/journal_reader.hpp"

namespace jt {

namespace jf = tollgate::journal_format;

// A fresh directory under $TMPDIR (or /tmp), removed with its contents.
class temp_dir {
 public:
  temp_dir() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl =
        std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/tollgate-journal-XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (::mkdtemp(buf.data()) == nullptr) std::abort();
    path_ = buf.data();
  }
  ~temp_dir() { remove_tree(path_); }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  const std::string& path() const { return path_; }
  std::string sub(const std::string& name) const { return path_ + "/" + name; }

  static void remove_tree(const std::string& p) {
    ::nftw(
        p.c_str(), [](const char* f, const struct stat*, int, struct FTW*) { return ::remove(f); },
        16, FTW_DEPTH | FTW_PHYS);
  }

 private:
  std::string path_;
};

inline std::vector<std::uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline void write_bytes(const std::string& path, const std::vector<std::uint8_t>& b) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

// Copies every regular file of a directory (a snapshot of what is on disk).
inline void copy_dir(const std::string& from, const std::string& to) {
  ::mkdir(to.c_str(), 0750);
  std::vector<std::string> names;
  if (DIR* d = ::opendir(from.c_str())) {
    while (const dirent* e = ::readdir(d)) {
      const std::string n = e->d_name;
      if (n != "." && n != "..") names.push_back(n);
    }
    ::closedir(d);
  }
  for (const auto& n : names) write_bytes(to + "/" + n, read_bytes(from + "/" + n));
}

inline std::array<std::uint8_t, 32> test_seed(std::uint8_t first = 0x20) {
  std::array<std::uint8_t, 32> s{};
  for (std::size_t i = 0; i < s.size(); ++i) s[i] = static_cast<std::uint8_t>(first + i);
  return s;
}

inline tollgate::journal_options options(const std::string& dir) {
  tollgate::journal_options o;
  o.directory = dir;
  o.signing_seed = test_seed();
  o.mode = tollgate::writer_mode::poll;
  o.level = tollgate::durability::every_record;
  o.ring_cells = 1u << 12;
  o.max_entry_bytes = 1024;
  return o;
}

inline std::vector<std::uint8_t> u64s(std::initializer_list<std::uint64_t> v) {
  std::vector<std::uint8_t> out(v.size() * 8);
  std::size_t i = 0;
  for (std::uint64_t x : v) jf::put64(out.data() + 8 * i++, x);
  return out;
}

// All verified records' (type, kind, seq, account, first input u64).
struct rec {
  jf::record_type type;
  std::uint16_t kind;
  std::uint64_t seq;
  std::string account;
  std::uint64_t marker;
  std::uint64_t segment;
  std::uint64_t offset;
  std::size_t frame_size;
};

inline std::vector<rec> records(const std::string& dir,
                                tollgate::journal_verify_report* out = nullptr) {
  std::vector<rec> v;
  tollgate::journal_verify_options o;
  o.on_record = [&](const jf::record_view& r, const tollgate::journal_record_location& at) {
    v.push_back(rec{r.type, r.kind, r.seq, std::string(r.account),
                    r.inputs.size() >= 8 ? jf::get64(r.inputs.data()) : 0, at.segment, at.offset,
                    r.frame_size});
  };
  auto rep = tollgate::verify_journal(dir, o);
  if (out != nullptr && rep.ok()) *out = *rep;
  return v;
}

}  // namespace jt
