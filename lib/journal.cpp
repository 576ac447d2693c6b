// The audit journal's writer. See include/tollgate/journal.hpp and
// docs/journal-format.md.
#include "tollgate/journal.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

#include "journal_io.hpp"
#include "tollgate/clock.hpp"
#include "tollgate/crc32c.hpp"
#include "tollgate/detail/mpsc_ring.hpp"
#include "tollgate/detail/spin.hpp"

namespace tollgate {

namespace jf = journal_format;

namespace {

// What append puts in an entry's first ring cell.
struct entry_header {
  std::uint32_t cells;
  std::uint16_t kind;
  std::uint8_t account_len;
  std::uint8_t flags;
  std::uint32_t inputs_len;
  std::uint32_t payload_len;  // copied payload bytes (0 when only a digest is given)
  std::uint64_t realtime_ns;
  std::uint64_t monotonic_ns;
  std::uint64_t config_version;
  std::uint32_t route;
  std::uint32_t venue;
  std::uint32_t verdict;
  std::uint32_t reason;
};
static_assert(sizeof(entry_header) <= detail::mpsc_ring::cell_size);

constexpr std::uint8_t entry_store_payload = 1;
constexpr std::uint8_t entry_digest_given = 2;
// The appender claimed the cells after close() began and returned failed:
// the writer frees the cells and writes nothing.
constexpr std::uint8_t entry_cancelled = 4;

constexpr std::size_t checkpoint_frame_size = jf::frame_prefix_size + jf::checkpoint_size;
constexpr std::size_t max_batch_bytes = 1u << 20;
// Segment space is reserved this far ahead of the writes (see preallocate).
constexpr std::uint64_t prealloc_chunk = 4u << 20;

std::uint64_t realtime_now() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

// Orders an atomic read-modify-write before a later load of another atomic
// object, for the handshake between append() and close() (the claim's CAS
// then the state load; the state change then the enqueue-position load).
// Formally that takes a seq_cst fence on both sides. On x86-64 the RMW is
// a locked instruction, and "reads or writes cannot be reordered with ...
// locked instructions" (Intel SDM vol. 3, memory ordering; AMD's APM vol.
// 2 says the same), so only the compiler must be kept from moving the load
// up. A fence there would add a second locked
// instruction to every append (measured: 6 to 9 ns more per call). Linux's
// smp_mb__after_atomic() is a compiler barrier on x86 for the same reason.
inline void fence_after_rmw() noexcept {
#if defined(__x86_64__)
  std::atomic_signal_fence(std::memory_order_seq_cst);
#else
  std::atomic_thread_fence(std::memory_order_seq_cst);
#endif
}

// Little-endian stores for the writer's encoder: jf::put16/32/64 store
// byte by byte, which GCC 12 does not merge into one store.
template <class T>
inline void store_le(std::uint8_t* p, T v) noexcept {
  if constexpr (std::endian::native == std::endian::little) {
    std::memcpy(p, &v, sizeof v);
  } else {
    for (std::size_t i = 0; i < sizeof v; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
  }
}

// jf::seal_frame's bytes (the length, then the CRC32C of the length and
// the body) in one pass of the SSE4.2 instruction: the length and the
// body's first four bytes make the first 8-byte word. seal_frame makes two
// calls, each ending in a byte loop, and this runs once per record.
// journal_test compares the writer's frames with seal_frame's.
#if defined(__x86_64__)
__attribute__((target("sse4.2"))) void seal_frame_sse42(std::uint8_t* frame,
                                                        std::uint32_t n) noexcept {
  store_le(frame, n);
  const std::uint8_t* body = frame + jf::frame_prefix_size;  // n >= 64
  std::uint32_t first = 0;
  std::memcpy(&first, body, 4);
  std::uint64_t c = _mm_crc32_u64(0xFFFFFFFFu, n | (std::uint64_t{first} << 32));
  std::size_t i = 4;
  for (; i + 24 <= n; i += 24) {
    std::uint64_t w0 = 0;
    std::uint64_t w1 = 0;
    std::uint64_t w2 = 0;
    std::memcpy(&w0, body + i, 8);
    std::memcpy(&w1, body + i + 8, 8);
    std::memcpy(&w2, body + i + 16, 8);
    c = _mm_crc32_u64(c, w0);
    c = _mm_crc32_u64(c, w1);
    c = _mm_crc32_u64(c, w2);
  }
  for (; i + 8 <= n; i += 8) {
    std::uint64_t w = 0;
    std::memcpy(&w, body + i, 8);
    c = _mm_crc32_u64(c, w);
  }
  auto c32 = static_cast<std::uint32_t>(c);
  for (; i < n; ++i) c32 = _mm_crc32_u8(c32, body[i]);
  store_le(frame + 4, ~c32);
}
#endif

bool is_pow2(std::size_t v) { return v >= 2 && (v & (v - 1)) == 0; }

// now - since, or 0 when since was taken after now (both monotonic, but
// `now` is read once per batch and some marks are set during it).
std::uint64_t elapsed(std::uint64_t now, std::uint64_t since) noexcept {
  return now > since ? now - since : 0;
}

}  // namespace

class journal_writer {
 public:
  journal_writer(journal_options o, std::size_t cells)
      : opt(std::move(o)), ring(cells), max_cells(0) {}
  ~journal_writer() {
    // The signing key does not outlive the journal in this process's memory.
    ::explicit_bzero(priv.data(), priv.size());
    ::explicit_bzero(opt.signing_seed.data(), opt.signing_seed.size());
  }
  journal_writer(const journal_writer&) = delete;
  journal_writer& operator=(const journal_writer&) = delete;

  journal_options opt;
  detail::mpsc_ring ring;
  std::uint32_t max_cells;
  journal* owner = nullptr;

  std::mutex mu;  // serializes the writer's work
  // ---- under mu ----
  jio::fd dir_fd;
  jf::manifest man;
  std::array<std::uint8_t, crypto::ed25519_private_key_size> priv{};
  jio::fd seg_fd;
  std::uint64_t seg_number = 0;
  std::uint64_t seg_size = 0;
  std::uint64_t seg_reserved = 0;  // preallocated up to here (beyond seg_size: not in the file)
  bool seg_prealloc = true;
  std::uint64_t seg_records = 0;
  std::uint64_t seg_created_mono = 0;
  std::uint64_t next_seq = 1;
  jf::hash head{};
  std::uint64_t since_ckpt = 0;
  std::uint64_t last_ckpt_mono = 0;
  std::uint64_t unsynced_records = 0;
  std::uint64_t first_unsynced_mono = 0;
  std::uint64_t read_pos = 0;
  std::uint64_t pending_pos = 0;  // end position of the last entry in buf or written
  std::uint64_t buf_records = 0;
  std::uint64_t buf_host_records = 0;  // host entries among them
  std::uint64_t reported_dropped = 0;
  // The batch being built is buf[0, buf_len). buf is sized at open for the
  // largest batch (drain stops adding entries at max_batch_bytes; one
  // entry and a checkpoint may follow), so a record is encoded straight
  // into it: a vector resized per record would zero the bytes first.
  std::vector<std::uint8_t> buf;
  std::size_t buf_len = 0;
  std::vector<std::uint8_t> scratch;  // an entry whose data wraps the ring
  bool crc_sse42 = false;
  std::vector<journal_event> pending_events;
  bool closed = false;
  absl::Status error;

  mutable std::mutex status_mu;
  absl::Status status_copy;

  std::atomic<std::uint64_t> st_written{0}, st_checkpoints{0}, st_syncs{0}, st_batches{0},
      st_bytes{0}, st_next_seq{0}, st_segment{0};

  std::thread thread;
  std::atomic<bool> stop{false};
  // close() has finished: whatever it wrote is synced (durable_ is final).
  std::atomic<bool> close_done{false};

  void emit(const journal_event& ev) {
    if (opt.on_event) opt.on_event(ev);
  }

  absl::Status fail(absl::Status s, int err, std::uint64_t offset) {
    error = s;
    {
      std::lock_guard<std::mutex> g(status_mu);
      status_copy = s;
    }
    owner->state_.store(2, std::memory_order_release);
    journal_event ev;
    ev.type = journal_event_type::io_error;
    ev.status = s;
    ev.error_number = err;
    ev.segment = seg_number;
    ev.offset = offset;
    emit(ev);
    return s;
  }

  absl::Status fail_io(const jio::io_error& e) { return fail(e.status, e.error_number, e.offset); }

  std::string seg_path(std::uint64_t n) const {
    return opt.directory + "/" + jf::segment_file_name(n);
  }

  // ---- file operations ----

  absl::Status write_manifest() {
    man.generation += 1;
    const std::string text = jf::encode_manifest(man, priv.data());
    if (auto e = jio::replace_file(dir_fd.get(), opt.directory, std::string(jf::manifest_name),
                                   std::string(jf::manifest_tmp_name), text);
        !e.ok()) {
      return fail_io(e);
    }
    return absl::OkStatus();
  }

  absl::Status create_segment(std::uint64_t number) {
    jf::segment_header h;
    h.id = man.id;
    h.segment = number;
    h.first_seq = next_seq;
    h.prev = head;
    h.key = man.key;
    h.created_ns = realtime_now();
    std::uint8_t bytes[jf::header_size];
    jf::encode_header(h, bytes);
    seg_fd.reset();
    seg_number = number;
    st_segment.store(number, std::memory_order_relaxed);
    jio::io_error e;
    jio::fd f = jio::create_file(seg_path(number), &e);
    if (!e.ok()) return fail_io(e);
    seg_size = 0;
    if (e = jio::write_at(f.get(), bytes, sizeof bytes, 0, seg_path(number)); !e.ok()) {
      return fail_io(e);
    }
    if (e = jio::sync_data(f.get(), seg_path(number), jf::header_size); !e.ok()) {
      return fail_io(e);
    }
    if (e = jio::sync_dir(dir_fd.get(), opt.directory); !e.ok()) return fail_io(e);
    seg_fd = std::move(f);
    seg_size = jf::header_size;
    seg_reserved = seg_size;
    seg_prealloc = true;
    seg_records = 0;
    seg_created_mono = now_ns();
    return absl::OkStatus();
  }

  absl::Status datasync() {
    if (auto e = jio::sync_data(seg_fd.get(), seg_path(seg_number), seg_size); !e.ok()) {
      return fail_io(e);
    }
    st_syncs.fetch_add(1, std::memory_order_relaxed);
    unsynced_records = 0;
    first_unsynced_mono = 0;
    owner->durable_.store(owner->written_.load(std::memory_order_relaxed),
                          std::memory_order_release);
    return absl::OkStatus();
  }

  // Reserves the segment's blocks ahead of the writes, prealloc_chunk at a
  // time, with fallocate(FALLOC_FL_KEEP_SIZE): the file's size and bytes
  // are unchanged, but an appending write no longer allocates and
  // accounts blocks page by page (on ext4, writing 4 MiB into reserved
  // space costs 40% less kernel time than growing the file; at 180-byte
  // records that was 13 of 35 ns per record). Advisory: when fallocate
  // fails (no support, no room, a size limit) the segment is written
  // without it, and a real lack of space is reported by the write itself.
  // The reservation past the last record is released when the segment is
  // sealed.
  void preallocate(std::uint64_t end) noexcept {
    if (!seg_prealloc || end <= seg_reserved) return;
    std::uint64_t to = end + prealloc_chunk;
    if (to > opt.max_segment_bytes) to = opt.max_segment_bytes;
    if (to <= seg_reserved) return;
    if (::fallocate(seg_fd.get(), FALLOC_FL_KEEP_SIZE, static_cast<off_t>(seg_reserved),
                    static_cast<off_t>(to - seg_reserved)) != 0) {
      seg_prealloc = false;
      return;
    }
    seg_reserved = to;
  }

  // Gives back the blocks reserved past the end of the segment (truncating
  // to its own size frees them on ext4, XFS and tmpfs). Only space is at
  // stake, so a failure is not an error.
  void release_reservation() noexcept {
    if (seg_reserved > seg_size) (void)::ftruncate(seg_fd.get(), static_cast<off_t>(seg_size));
    seg_reserved = seg_size;
  }

  // Writes buf at the end of the segment. On failure the partial bytes are
  // cut off again when possible; when not, the status says so (recovery
  // truncates them as a torn tail).
  absl::Status write_buf() {
    if (buf_len == 0) return absl::OkStatus();
    preallocate(seg_size + buf_len);
    if (auto e = jio::write_at(seg_fd.get(), buf.data(), buf_len, seg_size, seg_path(seg_number));
        !e.ok()) {
      if (::ftruncate(seg_fd.get(), static_cast<off_t>(seg_size)) != 0) {
        const int err = errno;
        e.status = absl::Status(e.status.code(), std::string(e.status.message()) +
                                                     "; a partial batch may remain after offset " +
                                                     std::to_string(seg_size) +
                                                     " (ftruncate failed: " + std::strerror(err) +
                                                     "); reopening truncates it");
      }
      return fail_io(e);
    }
    seg_size += buf_len;
    st_bytes.fetch_add(buf_len, std::memory_order_relaxed);
    st_batches.fetch_add(1, std::memory_order_relaxed);
    st_written.fetch_add(buf_host_records, std::memory_order_relaxed);
    if (unsynced_records == 0) first_unsynced_mono = now_ns();
    unsynced_records += buf_records;
    buf_len = 0;
    buf_records = 0;
    buf_host_records = 0;
    owner->written_.store(pending_pos, std::memory_order_release);
    for (const auto& ev : pending_events) emit(ev);
    pending_events.clear();
    return absl::OkStatus();
  }

  absl::Status sync_if_due(std::uint64_t now) {
    if (unsynced_records == 0) return absl::OkStatus();
    switch (opt.level) {
      case durability::none:
        return absl::OkStatus();
      case durability::every_n_records:
        if (unsynced_records >= opt.sync_every_records) return datasync();
        return absl::OkStatus();
      case durability::every_t_us:
        if (elapsed(now, first_unsynced_mono) >= opt.sync_every_us * 1000) return datasync();
        return absl::OkStatus();
      case durability::every_record:
        return datasync();
    }
    return absl::OkStatus();
  }

  absl::Status flush() {
    if (auto s = write_buf(); !s.ok()) return s;
    return sync_if_due(now_ns());
  }

  // ---- encoding into buf ----

  std::uint8_t* grow(std::size_t n) {
    if (buf_len + n > buf.size()) buf.resize(buf_len + n);  // not reached; see buf
    std::uint8_t* p = buf.data() + buf_len;
    buf_len += n;
    return p;
  }

  void seal(std::uint8_t* frame, std::uint32_t body) noexcept {
#if defined(__x86_64__)
    if (crc_sse42) {
      seal_frame_sse42(frame, body);
      return;
    }
#endif
    jf::seal_frame(frame, body);
  }

  void add_checkpoint(std::uint32_t flags) {
    const std::uint64_t rt = realtime_now();
    const std::uint64_t mono = now_ns();
    const auto msg = jf::checkpoint_message(man.id, next_seq, rt, flags, head);
    jf::signature sig{};
    crypto::ed25519_sign(msg.data(), msg.size(), priv.data(), sig.data());
    std::uint8_t* f = grow(checkpoint_frame_size);
    jf::encode_checkpoint_body(next_seq, rt, mono, head, flags, sig, f + jf::frame_prefix_size);
    seal(f, jf::checkpoint_size);
    journal_event ev;
    ev.type = journal_event_type::checkpoint;
    ev.segment = seg_number;
    ev.sequence = next_seq;
    ev.head = head;
    ev.realtime_ns = rt;
    pending_events.push_back(ev);
    head = jf::chain_next({f + jf::frame_prefix_size, jf::checkpoint_size});
    ++next_seq;
    st_next_seq.store(next_seq, std::memory_order_relaxed);
    ++seg_records;
    ++buf_records;
    since_ckpt = 0;
    last_ckpt_mono = mono;
    st_checkpoints.fetch_add(1, std::memory_order_relaxed);
  }

  // Seals the current segment; unless closing, starts the next one.
  absl::Status rotate(bool closing) {
    add_checkpoint(jf::checkpoint_seal | (closing ? jf::checkpoint_close : 0u));
    if (auto s = write_buf(); !s.ok()) return s;
    release_reservation();
    if (auto s = datasync(); !s.ok()) return s;
    auto& cur = man.segments.back();
    cur.sealed = true;
    cur.last_seq = next_seq - 1;
    cur.bytes = seg_size;
    cur.head = head;
    if (closing) return write_manifest();
    jf::manifest_segment next;
    next.number = seg_number + 1;
    next.first_seq = next_seq;
    man.segments.push_back(next);
    if (auto s = write_manifest(); !s.ok()) return s;
    if (auto s = create_segment(next.number); !s.ok()) return s;
    journal_event ev;
    ev.type = journal_event_type::rotated;
    ev.segment = seg_number;
    ev.sequence = next_seq;
    emit(ev);
    return absl::OkStatus();
  }

  absl::Status rotate_if_needed(std::size_t frame, std::uint64_t now) {
    if (seg_records == 0) return absl::OkStatus();
    const bool by_size = seg_size + buf_len + frame + checkpoint_frame_size > opt.max_segment_bytes;
    const bool by_age = elapsed(now, seg_created_mono) >= opt.max_segment_age_ms * 1'000'000;
    if (by_size || by_age) return rotate(false);
    return absl::OkStatus();
  }

  // Room for an event record of `body` bytes at the end of buf, rotating
  // first when it would not fit in the segment.
  absl::StatusOr<std::uint8_t*> begin_event(std::size_t body, std::uint64_t now) {
    if (auto s = rotate_if_needed(jf::frame_prefix_size + body, now); !s.ok()) return s;
    return grow(jf::frame_prefix_size + body);
  }

  // Completes the event record whose body was encoded in the frame:
  // frame prefix, chain, counters, and a checkpoint when one is due.
  // end_pos: the ring position after the host entry it came from (0 for
  // the journal's own events).
  void finish_event(std::uint8_t* frame, std::size_t body, std::uint64_t end_pos) {
    seal(frame, static_cast<std::uint32_t>(body));
    crypto::sha256(frame + jf::frame_prefix_size, body, head.data());  // jf::chain_next
    ++next_seq;
    st_next_seq.store(next_seq, std::memory_order_relaxed);
    ++seg_records;
    ++buf_records;
    ++since_ckpt;
    if (end_pos != 0) {
      pending_pos = end_pos;
      ++buf_host_records;
    }
    if (since_ckpt >= opt.checkpoint_every_records) add_checkpoint(0);
  }

  absl::Status add_system_event(event_kind kind, std::span<const std::uint64_t> values,
                                std::uint64_t now) {
    std::uint8_t in[64];
    for (std::size_t i = 0; i < values.size(); ++i) jf::put64(in + 8 * i, values[i]);
    jf::event_fields f;
    f.kind = static_cast<std::uint16_t>(kind);
    f.realtime_ns = realtime_now();
    f.monotonic_ns = now;
    f.inputs = {in, values.size() * 8};
    const std::size_t body = jf::event_body_size(0, f.inputs.size(), 0);
    auto frame = begin_event(body, now);
    if (!frame.ok()) return frame.status();
    f.seq = next_seq;
    f.prev = head;
    jf::encode_event_body(f, *frame + jf::frame_prefix_size);
    finish_event(*frame, body, 0);
    return absl::OkStatus();
  }

  // Takes the entry at read_pos out of the ring and appends its record
  // (*taken = false for a cancelled entry, which has none).
  //
  // This is the writer's per-record work besides SHA-256 (whose chain
  // runs through every record and so cannot overlap with the next one):
  // the record is encoded straight from the ring into the batch, in the
  // layout of jf::encode_event_body (journal_test compares the two byte
  // for byte), and the chain value goes straight from the hash into the
  // next record's prev.
  absl::Status take_entry(std::uint64_t now, bool* taken) {
    entry_header h;
    std::memcpy(&h, ring.cell(read_pos), sizeof h);
    *taken = (h.flags & entry_cancelled) == 0;
    if (!*taken) {
      ring.release(read_pos, h.cells);
      read_pos += h.cells;
      return absl::OkStatus();
    }
    const std::size_t digest_bytes = (h.flags & entry_digest_given) != 0 ? 32 : 0;
    const std::size_t data = digest_bytes + h.account_len + h.inputs_len + h.payload_len;
    // The entry's data starts in the cell after its header and runs on
    // through the ring's storage, wrapping at its end (mpsc_ring::write):
    // encoded from there unless it wraps. The cells are freed afterwards.
    const std::uint64_t pos = read_pos;
    const std::uint8_t* q = ring.cell(pos + 1);
    const std::size_t start = static_cast<std::size_t>((pos + 1) & (ring.cells() - 1));
    if (start * detail::mpsc_ring::cell_size + data > ring.cells() * detail::mpsc_ring::cell_size) {
      ring.read(pos, 0, scratch.data(), data);
      q = scratch.data();
    }
    const std::uint64_t end = pos + h.cells;
    read_pos = end;

    std::uint32_t flags = 0;
    const std::uint8_t* digest = nullptr;
    if (digest_bytes > 0) {
      digest = q;
      flags |= jf::event_digest_set;
      q += 32;
    }
    const std::uint8_t* account = q;
    const std::uint8_t* inputs = account + h.account_len;
    const std::uint8_t* payload = inputs + h.inputs_len;
    std::uint32_t stored = 0;
    jf::hash payload_digest;
    if (h.payload_len > 0) {
      crypto::sha256(payload, h.payload_len, payload_digest.data());
      digest = payload_digest.data();
      flags |= jf::event_digest_set;
      if ((h.flags & entry_store_payload) != 0) {
        flags |= jf::event_payload_stored;
        stored = h.payload_len;
      }
    }
    const std::size_t body = jf::event_body_size(h.account_len, h.inputs_len, stored);
    auto frame = begin_event(body, now);
    if (!frame.ok()) {
      ring.release(pos, h.cells);
      return frame.status();
    }
    std::uint8_t* b = *frame + jf::frame_prefix_size;
    b[0] = static_cast<std::uint8_t>(jf::record_type::event);
    b[1] = 0;
    store_le(b + 2, h.kind);
    store_le(b + 4, flags);
    store_le(b + 8, next_seq);
    store_le(b + 16, h.realtime_ns);
    store_le(b + 24, h.monotonic_ns);
    std::memcpy(b + 32, head.data(), head.size());
    store_le(b + 64, h.config_version);
    store_le(b + 72, h.route);
    store_le(b + 76, h.venue);
    store_le(b + 80, h.verdict);
    store_le(b + 84, h.reason);
    if (digest != nullptr) {
      std::memcpy(b + 88, digest, 32);
    } else {
      std::memset(b + 88, 0, 32);
    }
    store_le(b + 120, std::uint16_t{h.account_len});
    store_le(b + 122, std::uint16_t{0});
    store_le(b + 124, h.inputs_len);
    store_le(b + 128, stored);
    // Account, inputs and the stored payload follow each other in the entry
    // as in the record.
    std::memcpy(b + jf::event_fixed_size, account, h.account_len + h.inputs_len + stored);
    ring.release(pos, h.cells);
    finish_event(*frame, body, end);
    return absl::OkStatus();
  }

  absl::Status record_drops(std::uint64_t now) {
    const std::uint64_t total = owner->dropped_.load(std::memory_order_relaxed);
    if (total == reported_dropped) return absl::OkStatus();
    const std::uint64_t delta = total - reported_dropped;
    reported_dropped = total;
    const std::uint64_t v[2] = {delta, total};
    if (auto s = add_system_event(event_kind::records_dropped, v, now); !s.ok()) return s;
    journal_event ev;
    ev.type = journal_event_type::records_dropped;
    ev.segment = seg_number;
    ev.count = delta;
    pending_events.push_back(ev);
    return absl::OkStatus();
  }

  // One batch: up to max entries, then the duties that are due.
  absl::StatusOr<std::size_t> drain(std::size_t max) {
    if (!error.ok()) return error;
    if (closed) return absl::FailedPreconditionError("journal: closed");
    const std::uint64_t now = now_ns();
    if (auto s = record_drops(now); !s.ok()) return s;
    std::size_t limit = max;
    if (opt.level == durability::every_n_records) {
      const std::uint64_t room =
          opt.sync_every_records > unsynced_records ? opt.sync_every_records - unsynced_records : 1;
      if (room < limit) limit = static_cast<std::size_t>(room);
    }
    std::size_t n = 0;
    while (n < limit && buf_len < max_batch_bytes && ring.ready(read_pos)) {
      bool taken = false;
      if (auto s = take_entry(now, &taken); !s.ok()) return s;
      if (taken) ++n;
    }
    if (since_ckpt > 0 && elapsed(now, last_ckpt_mono) >= opt.checkpoint_every_ms * 1'000'000) {
      add_checkpoint(0);
    }
    if (buf_len > 0) {
      if (auto s = flush(); !s.ok()) return s;
    } else if (auto s = sync_if_due(now); !s.ok()) {
      return s;
    }
    if (seg_records > 0 && elapsed(now, seg_created_mono) >= opt.max_segment_age_ms * 1'000'000) {
      if (auto s = rotate(false); !s.ok()) return s;
    }
    return n;
  }

  // Every entry claimed before position `end`, waiting for those claimed
  // but not yet published.
  absl::Status drain_until(std::uint64_t end) {
    std::uint32_t spins = 0;
    for (;;) {
      const std::uint64_t before = read_pos;
      auto r = drain(opt.max_batch_records);
      if (!r.ok()) return r.status();
      if (read_pos >= end) return absl::OkStatus();
      if (read_pos != before) {
        spins = 0;
      } else if (++spins < detail::spins_before_yield) {
        detail::cpu_pause();
      } else {
        std::this_thread::yield();  // the appender may have been preempted
      }
    }
  }

  void run() {
    std::uint64_t idle = 0;
    while (!stop.load(std::memory_order_acquire)) {
      std::size_t n = 0;
      {
        std::lock_guard<std::mutex> g(mu);
        if (closed) return;
        auto r = drain(opt.max_batch_records);
        if (!r.ok()) return;
        n = *r;
      }
      if (n > 0) {
        idle = 0;
        continue;
      }
      ++idle;
      if (idle < 16) {
        detail::cpu_pause();
        continue;
      }
      std::uint64_t us = std::uint64_t{1} << (idle - 16 < 10 ? idle - 16 : 10);
      if (us > opt.idle_sleep_us) us = opt.idle_sleep_us;
      if (opt.level == durability::every_t_us && us > opt.sync_every_us / 2 + 1) {
        us = opt.sync_every_us / 2 + 1;
      }
      std::this_thread::sleep_for(std::chrono::microseconds(us));
    }
  }

  // ---- open ----

  absl::Status create_journal() {
    if (!crypto::random_bytes(man.id.data(), man.id.size())) {
      return absl::InternalError("journal: no random bytes for the journal id");
    }
    man.generation = 0;
    man.segments.clear();
    jf::manifest_segment s;
    s.number = 1;
    s.first_seq = 1;
    man.segments.push_back(s);
    next_seq = 1;
    head = jf::genesis(man.id);
    if (auto st = write_manifest(); !st.ok()) return st;
    return create_segment(1);
  }

  absl::Status recover(journal_recovery* rec) {
    std::string text;
    if (auto e = jio::read_file(opt.directory + "/" + std::string(jf::manifest_name), &text);
        !e.ok()) {
      return e.status;
    }
    auto m = jf::decode_manifest(text);
    if (!m.ok()) return m.status();
    if (m->key != man.key) {
      return absl::PermissionDeniedError(
          "journal: the signing key does not match the journal's public key " + jf::to_hex(m->key));
    }
    man = *std::move(m);
    // Only the manifest's segments may exist.
    std::vector<std::string> names;
    if (auto e = jio::list_dir(opt.directory, &names); !e.ok()) return e.status;
    for (const auto& n : names) {
      std::uint64_t num = 0;
      if (n == jf::manifest_tmp_name) {
        ::unlinkat(dir_fd.get(), n.c_str(), 0);
        continue;
      }
      if (!jf::parse_segment_file_name(n, &num)) continue;
      if (num < 1 || num > man.segments.back().number) {
        return absl::FailedPreconditionError("journal: " + n +
                                             " is not listed in the manifest; refusing to open");
      }
    }
    const jf::manifest_segment last = man.segments.back();
    if (last.sealed) {
      // Closed cleanly: continue after it in a new segment.
      struct stat sb {};
      if (::stat(seg_path(last.number).c_str(), &sb) != 0 ||
          static_cast<std::uint64_t>(sb.st_size) != last.bytes) {
        return absl::DataLossError("journal: " + jf::segment_file_name(last.number) +
                                   " does not have the size the manifest records (" +
                                   std::to_string(last.bytes) + " bytes)");
      }
      next_seq = last.last_seq + 1;
      head = last.head;
      rec->next_sequence = next_seq;
      jf::manifest_segment next;
      next.number = last.number + 1;
      next.first_seq = next_seq;
      man.segments.push_back(next);
      if (auto s = write_manifest(); !s.ok()) return s;
      return create_segment(next.number);
    }
    const jf::hash start_head =
        man.segments.size() > 1 ? man.segments[man.segments.size() - 2].head : jf::genesis(man.id);
    next_seq = last.first_seq;
    head = start_head;
    rec->segment = last.number;
    std::vector<std::uint8_t> bytes;
    const std::string path = seg_path(last.number);
    auto e = jio::read_file_bytes(path, &bytes);
    if (!e.ok() && e.error_number != ENOENT) return e.status;
    if (!e.ok() || bytes.size() < jf::header_size) {
      // A crash between the manifest and the segment's header: create it.
      if (auto s = create_segment(last.number); !s.ok()) return s;
      rec->next_sequence = next_seq;
      return absl::OkStatus();
    }
    jf::segment_header h;
    if (auto s = jf::decode_header(bytes, &h); !s.ok()) {
      return absl::DataLossError("journal: " + jf::segment_file_name(last.number) + ": " +
                                 std::string(s.message()));
    }
    if (h.id != man.id || h.segment != last.number || h.first_seq != last.first_seq ||
        h.key != man.key || h.prev != start_head) {
      return absl::DataLossError("journal: " + jf::segment_file_name(last.number) +
                                 ": header does not continue the manifest's chain");
    }
    const jio::scan_result sc = jio::scan_segment(bytes, man.id, man.key, h.first_seq, h.prev);
    if (sc.damage) {
      return absl::DataLossError(
          "journal: " + jf::segment_file_name(last.number) + ": damaged record at offset " +
          std::to_string(sc.end) + " followed by a valid record at offset " +
          std::to_string(sc.valid_after) + "; not truncating (run tollgate-audit verify)");
    }
    rec->records = sc.st.records;
    next_seq = sc.st.next_seq;
    head = sc.st.head;
    jio::fd f = jio::open_for_write(path, &e);
    if (!e.ok()) return e.status;
    seg_fd = std::move(f);
    seg_number = last.number;
    st_segment.store(seg_number, std::memory_order_relaxed);
    seg_size = sc.end;
    seg_reserved = seg_size;
    seg_prealloc = true;
    seg_records = sc.st.records;
    seg_created_mono = now_ns();
    if (sc.end < bytes.size()) {
      const std::uint64_t removed = bytes.size() - sc.end;
      if (::ftruncate(seg_fd.get(), static_cast<off_t>(sc.end)) != 0) {
        return absl::InternalError("journal: cannot truncate the torn tail of " + path + ": " +
                                   std::strerror(errno));
      }
      if (auto e2 = jio::sync_data(seg_fd.get(), path, sc.end); !e2.ok()) return e2.status;
      rec->tail_truncated = true;
      rec->offset = sc.end;
      rec->bytes_removed = removed;
      journal_event ev;
      ev.type = journal_event_type::tail_truncated;
      ev.segment = seg_number;
      ev.offset = sc.end;
      ev.count = removed;
      emit(ev);
    }
    if (sc.st.sealed) {
      auto& cur = man.segments.back();
      cur.sealed = true;
      cur.last_seq = next_seq - 1;
      cur.bytes = seg_size;
      cur.head = head;
      jf::manifest_segment next;
      next.number = seg_number + 1;
      next.first_seq = next_seq;
      man.segments.push_back(next);
      if (auto s = write_manifest(); !s.ok()) return s;
      if (auto s = create_segment(next.number); !s.ok()) return s;
    } else {
      const std::uint64_t now = now_ns();
      if (rec->tail_truncated) {
        const std::uint64_t v[3] = {seg_number, rec->offset, rec->bytes_removed};
        if (auto s = add_system_event(event_kind::tail_truncated, v, now); !s.ok()) return s;
      }
      if (seg_records > 0) {
        if (auto s = rotate(false); !s.ok()) return s;
      }
    }
    rec->next_sequence = next_seq;
    return absl::OkStatus();
  }
};

journal::journal(std::unique_ptr<journal_writer> w) : w_(std::move(w)) {}

journal::~journal() {
  if (w_ == nullptr) return;
  (void)close();
}

absl::StatusOr<std::unique_ptr<journal>> journal::open(journal_options o) {
  if (auto s = crypto::available(); !s.ok()) return s;
  if (o.directory.empty()) return absl::InvalidArgumentError("journal: directory is empty");
  if (!is_pow2(o.ring_cells) || o.ring_cells > (std::size_t{1} << 30)) {
    return absl::InvalidArgumentError("journal: ring_cells must be a power of two >= 2");
  }
  const std::size_t entry_cells = 1 + (o.max_entry_bytes + 32 + 63) / 64;
  if (o.max_entry_bytes == 0 || entry_cells > o.ring_cells / 2 ||
      o.max_entry_bytes > jf::max_body_size - jf::event_fixed_size) {
    return absl::InvalidArgumentError(
        "journal: max_entry_bytes must be > 0 and fit twice in the ring");
  }
  if (o.max_batch_records == 0 || o.checkpoint_every_records == 0 || o.checkpoint_every_ms == 0 ||
      o.max_segment_age_ms == 0 ||
      (o.level == durability::every_n_records && o.sync_every_records == 0) ||
      (o.level == durability::every_t_us && o.sync_every_us == 0)) {
    return absl::InvalidArgumentError("journal: counts and intervals must be > 0");
  }
  if (o.max_segment_bytes < jf::header_size + 4 * checkpoint_frame_size) {
    return absl::InvalidArgumentError("journal: max_segment_bytes is too small");
  }
  const std::size_t cells = o.ring_cells;
  auto w = std::make_unique<journal_writer>(std::move(o), cells);
  w->max_cells = static_cast<std::uint32_t>(entry_cells);
  w->scratch.resize(w->opt.max_entry_bytes + 32);
  w->buf.resize(max_batch_bytes + 2 * (w->opt.max_entry_bytes + 512));
  w->crc_sse42 = crc32c_hardware();
  jf::public_key pub{};
  if (!crypto::ed25519_keypair_from_seed(w->opt.signing_seed.data(), pub.data(), w->priv.data())) {
    return absl::InternalError("journal: cannot derive the signing key");
  }
  w->man.key = pub;

  const std::string& dir = w->opt.directory;
  bool exists = ::access(dir.c_str(), F_OK) == 0;
  if (!exists) {
    if (!w->opt.create_if_missing) return absl::NotFoundError("journal: no directory " + dir);
    if (::mkdir(dir.c_str(), 0750) != 0 && errno != EEXIST) {
      return absl::InternalError("journal: cannot create " + dir + ": " + std::strerror(errno));
    }
  }
  jio::io_error e;
  w->dir_fd = jio::open_dir(dir, &e);
  if (!e.ok()) return e.status;
  const bool has_manifest =
      ::access((dir + "/" + std::string(jf::manifest_name)).c_str(), F_OK) == 0;

  std::unique_ptr<journal> j(new journal(nullptr));
  w->owner = j.get();
  journal_recovery rec;
  std::lock_guard<std::mutex> g(w->mu);
  if (!has_manifest) {
    std::vector<std::string> names;
    if (auto le = jio::list_dir(dir, &names); !le.ok()) return le.status;
    for (const auto& n : names) {
      std::uint64_t num = 0;
      if (jf::parse_segment_file_name(n, &num)) {
        return absl::FailedPreconditionError("journal: " + dir + " holds segments but no " +
                                             std::string(jf::manifest_name));
      }
    }
    if (!w->opt.create_if_missing) return absl::NotFoundError("journal: no journal in " + dir);
    if (auto s = w->create_journal(); !s.ok()) return s;
    rec.created = true;
    rec.next_sequence = 1;
  } else {
    if (auto s = w->recover(&rec); !s.ok()) return s;
    // A recovery that wrote records (tail event, seal) leaves them in buf
    // only if it did not rotate; write them now.
    if (auto s = w->flush(); !s.ok()) return s;
  }
  w->last_ckpt_mono = now_ns();
  w->st_next_seq.store(w->next_seq, std::memory_order_relaxed);
  j->recovery_ = rec;
  j->w_ = std::move(w);
  if (j->w_->opt.mode == writer_mode::thread) {
    journal_writer* wp = j->w_.get();
    wp->thread = std::thread([wp] { wp->run(); });
  }
  return j;
}

append_result journal::append(const journal_entry& e) noexcept {
  append_result r;
  if (state_.load(std::memory_order_relaxed) != 0) return r;
  if (e.kind == 0 || e.kind >= static_cast<std::uint16_t>(event_kind::records_dropped) ||
      !jf::kind_known(e.kind)) {
    r.status = append_status::invalid;
    return r;
  }
  journal_writer& w = *w_;
  const bool copy_payload = !e.payload.empty() && (e.store_payload || e.payload_digest == nullptr);
  const bool digest_given = e.payload_digest != nullptr && !e.store_payload;
  const std::size_t payload_bytes = copy_payload ? e.payload.size() : 0;
  const std::size_t user_bytes = e.account.size() + e.inputs.size() + payload_bytes;
  if (e.account.size() > jf::max_account_size || user_bytes > w.opt.max_entry_bytes) {
    r.status = append_status::too_large;
    return r;
  }
  const std::size_t data = (digest_given ? 32 : 0) + user_bytes;
  const auto cells = static_cast<std::uint32_t>(1 + (data + 63) / 64);
  std::uint64_t pos = 0;
  if (!w.ring.try_claim(cells, &pos)) {
    if (state_.load(std::memory_order_relaxed) != 0) return r;
    switch (w.opt.on_full) {
      case ring_full_policy::reject:
        rejected_.fetch_add(1, std::memory_order_relaxed);
        r.status = append_status::rejected;
        return r;
      case ring_full_policy::drop_and_count:
        dropped_.fetch_add(1, std::memory_order_relaxed);
        r.status = append_status::dropped;
        return r;
      case ring_full_policy::block: {
        std::uint32_t spins = 0;
        while (!w.ring.try_claim(cells, &pos)) {
          if (state_.load(std::memory_order_relaxed) != 0) return r;
          if (++spins < detail::spins_before_yield) {
            detail::cpu_pause();
          } else {
            std::this_thread::yield();
          }
        }
        break;
      }
    }
  }
  // Pairs with close(): either close's read of the enqueue position sees
  // this claim (and close writes the entry), or this load sees close's
  // state change (and the entry is cancelled). Without it an append that
  // passed the check above before close began could claim after close's
  // drain and get a ticket nobody writes.
  fence_after_rmw();
  if (state_.load(std::memory_order_relaxed) != 0) {
    entry_header h{};
    h.cells = cells;
    h.flags = entry_cancelled;
    std::memcpy(w.ring.cell(pos), &h, sizeof h);
    w.ring.publish(pos);
    return r;
  }
  entry_header h;
  h.cells = cells;
  h.kind = e.kind;
  h.account_len = static_cast<std::uint8_t>(e.account.size());
  h.flags = static_cast<std::uint8_t>((digest_given ? entry_digest_given : 0) |
                                      (e.store_payload ? entry_store_payload : 0));
  h.inputs_len = static_cast<std::uint32_t>(e.inputs.size());
  h.payload_len = static_cast<std::uint32_t>(payload_bytes);
  h.realtime_ns = e.realtime_ns != 0 ? e.realtime_ns : realtime_now();
  h.monotonic_ns = e.monotonic_ns != 0 ? e.monotonic_ns : now_ns();
  h.config_version = e.config_version;
  h.route = e.route;
  h.venue = e.venue;
  h.verdict = e.verdict;
  h.reason = e.reason;
  std::memcpy(w.ring.cell(pos), &h, sizeof h);
  std::size_t off = 0;
  if (digest_given) {
    w.ring.write(pos, off, e.payload_digest, 32);
    off += 32;
  }
  if (!e.account.empty()) {
    w.ring.write(pos, off, e.account.data(), e.account.size());
    off += e.account.size();
  }
  if (!e.inputs.empty()) {
    w.ring.write(pos, off, e.inputs.data(), e.inputs.size());
    off += e.inputs.size();
  }
  if (payload_bytes > 0) w.ring.write(pos, off, e.payload.data(), payload_bytes);
  w.ring.publish(pos);
  r.status = append_status::ok;
  r.ticket = pos + cells;
  return r;
}

absl::Status journal::wait_durable(std::uint64_t ticket, std::uint64_t timeout_us) {
  const std::uint64_t start = now_ns();
  // Saturating: a timeout too large to add to the clock waits without limit.
  const std::uint64_t deadline = timeout_us > (~std::uint64_t{0} - start) / 1000
                                     ? ~std::uint64_t{0}
                                     : start + timeout_us * 1000;
  for (;;) {
    if (is_durable(ticket)) return absl::OkStatus();
    const std::uint32_t state = state_.load(std::memory_order_acquire);
    if (state == 2) return status();
    if (state == 1) {
      // Closing: close() writes and syncs every entry appended before it
      // began (state 1 is set first), so wait for it to finish, without
      // polling meanwhile; then a ticket it did not make durable never
      // will be.
      if (w_->close_done.load(std::memory_order_acquire)) {
        if (is_durable(ticket)) return absl::OkStatus();
        return absl::FailedPreconditionError("journal: closed; the ticket is not durable");
      }
      std::this_thread::sleep_for(std::chrono::microseconds(10));
    } else if (w_->opt.mode == writer_mode::poll) {
      auto r = poll();
      if (!r.ok()) {
        if (state_.load(std::memory_order_acquire) == 1) continue;  // closed meanwhile: above
        return r.status();
      }
      if (*r == 0) std::this_thread::sleep_for(std::chrono::microseconds(10));
    } else {
      std::this_thread::sleep_for(std::chrono::microseconds(10));
    }
    if (now_ns() >= deadline) return absl::DeadlineExceededError("journal: ticket not durable yet");
  }
}

absl::StatusOr<std::size_t> journal::poll() {
  std::lock_guard<std::mutex> g(w_->mu);
  return w_->drain(w_->opt.max_batch_records);
}

absl::Status journal::sync() {
  std::lock_guard<std::mutex> g(w_->mu);
  if (!w_->error.ok()) return w_->error;
  if (w_->closed) return absl::OkStatus();
  for (;;) {
    auto r = w_->drain(w_->opt.max_batch_records);
    if (!r.ok()) return r.status();
    if (*r == 0) break;
  }
  return w_->datasync();
}

absl::Status journal::close() {
  // From here on appends fail. With the same ordering in append(), every
  // append that does not see the new state claimed its cells before the
  // enqueue position is read below, so its entry is written before the
  // seal.
  std::uint32_t open_state = 0;
  state_.compare_exchange_strong(open_state, 1, std::memory_order_seq_cst);
  fence_after_rmw();
  if (w_->thread.joinable()) {
    w_->stop.store(true, std::memory_order_release);
    w_->thread.join();
  }
  std::lock_guard<std::mutex> g(w_->mu);
  if (w_->closed) return w_->error;
  absl::Status s = w_->error;
  if (s.ok()) s = w_->drain_until(w_->ring.enqueue_position());
  if (s.ok()) s = w_->rotate(true);
  w_->closed = true;
  w_->close_done.store(true, std::memory_order_release);
  w_->seg_fd.reset();
  w_->dir_fd.reset();
  return s;
}

absl::Status journal::status() const {
  std::lock_guard<std::mutex> g(w_->status_mu);
  return w_->status_copy;
}

journal_stats journal::stats() const {
  journal_stats s;
  const journal_writer& w = *w_;
  s.written = w.st_written.load(std::memory_order_relaxed);
  s.rejected = rejected_.load(std::memory_order_relaxed);
  s.dropped = dropped_.load(std::memory_order_relaxed);
  s.checkpoints = w.st_checkpoints.load(std::memory_order_relaxed);
  s.syncs = w.st_syncs.load(std::memory_order_relaxed);
  s.batches = w.st_batches.load(std::memory_order_relaxed);
  s.bytes = w.st_bytes.load(std::memory_order_relaxed);
  s.next_sequence = w.st_next_seq.load(std::memory_order_relaxed);
  s.segment = w.st_segment.load(std::memory_order_relaxed);
  s.written_ticket = written_.load(std::memory_order_acquire);
  s.durable_ticket = durable_.load(std::memory_order_acquire);
  return s;
}

const journal_format::journal_id& journal::id() const noexcept { return w_->man.id; }
const journal_format::public_key& journal::key() const noexcept { return w_->man.key; }

}  // namespace tollgate
