// The C ABI of request authentication.
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "capi_common.hpp"
#include "tollgate/auth.hpp"
#include "tollgate/crypto.hpp"
#include "tollgate/tollgate.h"

using tollgate::capi::bytes_ok;
using tollgate::capi::fail;
using tollgate::capi::from_status;
using tollgate::capi::guarded;
using tollgate::capi::live;
using tollgate::capi::read_options;
using tollgate::capi::set_error;
using tollgate::capi::view;

struct tg_authenticator : tollgate::capi::handle_base {
  tg_authenticator() noexcept : handle_base(tollgate::capi::tag_authenticator) {}
  std::unique_ptr<tollgate::authenticator> impl;
  tollgate::capi::callback_slot<tg_auth_event_fn> callback;
};

static_assert(sizeof(tg_str) == 16 && offsetof(tg_str, len) == 8);
static_assert(sizeof(tg_auth_options) == 32 && offsetof(tg_auth_options, reserved) == 4 &&
              offsetof(tg_auth_options, max_skew_ns) == 8 &&
              offsetof(tg_auth_options, nonce_capacity) == 16 &&
              offsetof(tg_auth_options, seed) == 24);
static_assert(sizeof(tg_auth_message) == 72 && offsetof(tg_auth_message, method_len) == 8 &&
              offsetof(tg_auth_message, target) == 16 &&
              offsetof(tg_auth_message, target_len) == 24 &&
              offsetof(tg_auth_message, headers) == 32 &&
              offsetof(tg_auth_message, header_count) == 40 &&
              offsetof(tg_auth_message, body) == 48 && offsetof(tg_auth_message, body_len) == 56 &&
              offsetof(tg_auth_message, body_sha256) == 64);
static_assert(sizeof(tg_auth_result) == 40 && offsetof(tg_auth_result, detail) == 4 &&
              offsetof(tg_auth_result, timestamp_ns) == 8 &&
              offsetof(tg_auth_result, key_id_offset) == 16 &&
              offsetof(tg_auth_result, key_id_len) == 20 &&
              offsetof(tg_auth_result, token_offset) == 24 &&
              offsetof(tg_auth_result, token_len) == 28 &&
              offsetof(tg_auth_result, nonce_offset) == 32 &&
              offsetof(tg_auth_result, nonce_len) == 36);
static_assert(sizeof(tg_auth_event) == 32 && offsetof(tg_auth_event, id_len) == 4 &&
              offsetof(tg_auth_event, id) == 8 &&
              offsetof(tg_auth_event, revocation_version) == 16 &&
              offsetof(tg_auth_event, now_ns) == 24);
static_assert(sizeof(tg_auth_stats) == 20 * 8 && offsetof(tg_auth_stats, keys) == 128);
static_assert(sizeof(tg_auth_params) == 72 && offsetof(tg_auth_params, key_id_len) == 8 &&
              offsetof(tg_auth_params, token) == 16 && offsetof(tg_auth_params, nonce) == 32 &&
              offsetof(tg_auth_params, signed_headers) == 48 &&
              offsetof(tg_auth_params, timestamp_ns) == 64);
static_assert(TG_AUTH_REASON_COUNT == tollgate::auth_reason_count && TG_AUTH_REASON_COUNT <= 16 &&
              TG_AUTH_NONCE_CAPACITY == static_cast<int>(tollgate::auth_reason::nonce_capacity) &&
              TG_AUTH_REVOKED_TOKEN == static_cast<int>(tollgate::auth_reason::revoked_token) &&
              TG_AUTH_SKEW == static_cast<int>(tollgate::auth_reason::skew));

namespace {

constexpr std::size_t auth_options_v1 = sizeof(tg_auth_options);

// The authenticator whose event callback this thread is running. While it
// runs, no authenticator may be changed from this thread: changing its own
// would deadlock on its writer lock, and changing another whose callback
// changes the first would deadlock the same way through a cycle.
thread_local const tg_authenticator* notifying = nullptr;

bool live_auth(const tg_authenticator* a) noexcept {
  return live(a, tollgate::capi::tag_authenticator);
}

void trampoline(void* user, const tollgate::auth_event& ev) {
  const auto* h = static_cast<const tg_authenticator*>(user);
  const auto* cb = h->callback.get();
  if (cb == nullptr) return;
  const tg_auth_event c{static_cast<int32_t>(ev.kind), static_cast<uint32_t>(ev.id.size()),
                        ev.id.empty() ? "" : ev.id.data(), ev.revocation_version, ev.now_ns};
  const tg_authenticator* outer = notifying;
  notifying = h;
  cb->fn(cb->user, &c);
  notifying = outer;
}

// Checks the handle and the re-entry rule for a change.
int changeable(const tg_authenticator* a, tg_error* err) noexcept {
  if (!live_auth(a)) return fail(err, TG_EINVAL, "auth is not a live tg_authenticator");
  if (notifying != nullptr) {
    return fail(err, TG_ESTATE, "an event callback cannot change an authenticator");
  }
  return TG_OK;
}

// The message as the core sees it; headers are converted into `hv`.
bool message_of(const tg_auth_message* m, std::vector<tollgate::header_view>* heap,
                tollgate::header_view* stack, std::size_t stack_cap, tollgate::auth_message* out) {
  if (!bytes_ok(m->method, m->method_len) || !bytes_ok(m->target, m->target_len) ||
      !bytes_ok(m->body, m->body_len) || (m->headers == nullptr && m->header_count != 0)) {
    return false;
  }
  tollgate::header_view* hv = stack;
  if (m->header_count > stack_cap) {
    heap->resize(m->header_count);
    hv = heap->data();
  }
  for (std::size_t i = 0; i < m->header_count; ++i) {
    const tg_header& h = m->headers[i];
    if (!bytes_ok(h.name, h.name_len) || !bytes_ok(h.value, h.value_len)) return false;
    hv[i] = tollgate::header_view{view(h.name, h.name_len), view(h.value, h.value_len)};
  }
  out->method = view(m->method, m->method_len);
  out->target = view(m->target, m->target_len);
  out->headers = hv;
  out->header_count = m->header_count;
  out->body = view(m->body, m->body_len);
  out->body_sha256 = m->body_sha256;
  return true;
}

bool params_of(const tg_auth_params* p, tollgate::auth_params* out) noexcept {
  if (!bytes_ok(p->key_id, p->key_id_len) || !bytes_ok(p->token, p->token_len) ||
      !bytes_ok(p->nonce, p->nonce_len) || !bytes_ok(p->signed_headers, p->signed_headers_len)) {
    return false;
  }
  out->key_id = view(p->key_id, p->key_id_len);
  out->token = view(p->token, p->token_len);
  out->nonce = view(p->nonce, p->nonce_len);
  out->signed_headers = view(p->signed_headers, p->signed_headers_len);
  out->timestamp_ns = p->timestamp_ns;
  return true;
}

int write_string(const std::string& s, char* out, size_t cap, size_t* written, tg_error* err) {
  *written = s.size();
  if (out == nullptr || cap < s.size() + 1) {
    char msg[96];
    std::snprintf(msg, sizeof msg, "the buffer needs %zu bytes (with the NUL)", s.size() + 1);
    return fail(err, TG_ETOOSMALL, msg);
  }
  std::memcpy(out, s.data(), s.size());
  out[s.size()] = '\0';
  set_error(err, TG_OK, "");
  return TG_OK;
}

// Validates the arguments, runs produce(message, params) and writes its
// string to out.
template <class F>
int client_side(const tg_auth_message* msg, const tg_auth_params* params, char* out, size_t cap,
                size_t* written, tg_error* err, F&& produce) {
  return guarded(err, [&]() -> int {
    if (msg == nullptr || params == nullptr || written == nullptr) {
      return fail(err, TG_EINVAL, "msg, params and written must not be NULL");
    }
    if (absl::Status st = tollgate::crypto::available(); !st.ok()) {
      return fail(err, TG_ESTATE, std::string_view(st.message().data(), st.message().size()));
    }
    std::vector<tollgate::header_view> heap;
    tollgate::header_view stack[32];
    tollgate::auth_message m;
    tollgate::auth_params p;
    if (!message_of(msg, &heap, stack, 32, &m) || !params_of(params, &p)) {
      return fail(err, TG_EINVAL, "a NULL string with a non-zero length");
    }
    absl::StatusOr<std::string> s = produce(m, p);
    if (!s.ok()) return from_status(s.status(), err);
    return write_string(*s, out, cap, written, err);
  });
}

}  // namespace

extern "C" {

const char* tg_auth_reason_name(int reason) {
  if (reason < 0 || reason >= TG_AUTH_REASON_COUNT) return "unknown";
  return tollgate::auth_reason_name(static_cast<tollgate::auth_reason>(reason));
}

const char* tg_auth_detail_name(int detail) {
  if (detail < 0) return "unknown";
  return tollgate::auth_detail_name(static_cast<tollgate::auth_detail>(detail));
}

void tg_auth_options_init(tg_auth_options* opts) {
  if (opts == nullptr) return;
  const tollgate::auth_options d;
  std::memset(static_cast<void*>(opts), 0, sizeof *opts);
  opts->struct_size = sizeof *opts;
  opts->max_skew_ns = d.max_skew_ns;
  opts->nonce_capacity = d.nonce_capacity;
}

int tg_authenticator_new(const tg_auth_options* opts, tg_authenticator** out, tg_error* err) {
  return guarded(err, [&]() -> int {
    if (out == nullptr) return fail(err, TG_EINVAL, "out is NULL");
    tg_auth_options o;
    tg_auth_options_init(&o);
    if (int rc = read_options(opts, auth_options_v1, &o, err); rc != TG_OK) return rc;
    if (o.reserved != 0) return fail(err, TG_EINVAL, "reserved must be 0");
    tollgate::auth_options ao;
    ao.max_skew_ns = o.max_skew_ns;
    ao.nonce_capacity = static_cast<std::size_t>(o.nonce_capacity);
    if (o.seed != 0) ao.seed = o.seed;
    auto made = tollgate::authenticator::create(ao);
    if (!made.ok()) return from_status(made.status(), err);
    auto h = std::make_unique<tg_authenticator>();
    h->impl = std::move(*made);
    h->impl->set_listener(&trampoline, h.get());
    *out = h.release();
    set_error(err, TG_OK, "");
    return TG_OK;
  });
}

void tg_authenticator_free(tg_authenticator* auth) {
  tollgate::capi::release(auth, tollgate::capi::tag_authenticator);
}

int tg_auth_add_key(tg_authenticator* auth, const char* key_id, size_t key_id_len,
                    const void* secret, size_t secret_len, uint64_t not_before_ns,
                    uint64_t not_after_ns, uint64_t now_ns, tg_error* err) {
  return guarded(err, [&]() -> int {
    if (int rc = changeable(auth, err); rc != TG_OK) return rc;
    if (!bytes_ok(key_id, key_id_len) || !bytes_ok(secret, secret_len)) {
      return fail(err, TG_EINVAL, "a NULL string with a non-zero length");
    }
    return from_status(auth->impl->add_key(view(key_id, key_id_len), view(secret, secret_len),
                                           not_before_ns, not_after_ns, now_ns),
                       err);
  });
}

int tg_auth_remove_key(tg_authenticator* auth, const char* key_id, size_t key_id_len,
                       uint64_t now_ns, tg_error* err) {
  return guarded(err, [&]() -> int {
    if (int rc = changeable(auth, err); rc != TG_OK) return rc;
    if (!bytes_ok(key_id, key_id_len)) return fail(err, TG_EINVAL, "key_id is NULL");
    return from_status(auth->impl->remove_key(view(key_id, key_id_len), now_ns), err);
  });
}

int tg_auth_revoke(tg_authenticator* auth, int kind, const char* id, size_t id_len, int revoked,
                   uint64_t now_ns, tg_error* err) {
  return guarded(err, [&]() -> int {
    if (int rc = changeable(auth, err); rc != TG_OK) return rc;
    if (kind != TG_AUTH_KEY && kind != TG_AUTH_TOKEN) {
      return fail(err, TG_EINVAL, "kind must be TG_AUTH_KEY or TG_AUTH_TOKEN");
    }
    if (revoked != 0 && revoked != 1) return fail(err, TG_EINVAL, "revoked must be 0 or 1");
    if (!bytes_ok(id, id_len)) return fail(err, TG_EINVAL, "id is NULL");
    const std::string_view v = view(id, id_len);
    tollgate::authenticator& a = *auth->impl;
    const absl::Status st =
        kind == TG_AUTH_KEY ? (revoked ? a.revoke_key(v, now_ns) : a.unrevoke_key(v, now_ns))
                            : (revoked ? a.revoke_token(v, now_ns) : a.unrevoke_token(v, now_ns));
    return from_status(st, err);
  });
}

int tg_auth_replace_revocations(tg_authenticator* auth, uint64_t version, const tg_str* key_ids,
                                size_t n_key_ids, const tg_str* token_ids, size_t n_token_ids,
                                uint64_t now_ns, tg_error* err) {
  return guarded(err, [&]() -> int {
    if (int rc = changeable(auth, err); rc != TG_OK) return rc;
    if ((key_ids == nullptr && n_key_ids != 0) || (token_ids == nullptr && n_token_ids != 0)) {
      return fail(err, TG_EINVAL, "a NULL list with a non-zero count");
    }
    std::vector<std::string_view> keys, tokens;
    for (size_t i = 0; i < n_key_ids; ++i) {
      if (!bytes_ok(key_ids[i].data, key_ids[i].len)) return fail(err, TG_EINVAL, "NULL key id");
      keys.push_back(view(key_ids[i].data, key_ids[i].len));
    }
    for (size_t i = 0; i < n_token_ids; ++i) {
      if (!bytes_ok(token_ids[i].data, token_ids[i].len)) {
        return fail(err, TG_EINVAL, "NULL token id");
      }
      tokens.push_back(view(token_ids[i].data, token_ids[i].len));
    }
    return from_status(auth->impl->replace_revocations(version, keys, tokens, now_ns), err);
  });
}

int tg_auth_revocation_version(const tg_authenticator* auth, uint64_t* out) {
  return guarded(nullptr, [&]() -> int {
    if (!live_auth(auth) || out == nullptr) return TG_EINVAL;
    *out = auth->impl->revocation_version();
    return TG_OK;
  });
}

int tg_auth_verify(tg_authenticator* auth, const tg_auth_message* msg, const char* authorization,
                   size_t authorization_len, uint64_t now_ns, tg_auth_result* out) {
  return guarded(nullptr, [&]() -> int {
    if (!live_auth(auth) || msg == nullptr || out == nullptr ||
        !bytes_ok(authorization, authorization_len)) {
      return TG_EINVAL;
    }
    // Up to 64 headers without touching the heap; more are converted into
    // a vector (a request with that many headers is not the hot path).
    std::vector<tollgate::header_view> heap;
    tollgate::header_view stack[64];
    tollgate::auth_message m;
    if (!message_of(msg, &heap, stack, 64, &m)) return TG_EINVAL;
    const std::string_view header = view(authorization, authorization_len);
    const tollgate::auth_result r = auth->impl->verify(m, header, now_ns);
    auto offset = [&](std::string_view part) noexcept {
      return part.empty() ? 0u : static_cast<uint32_t>(part.data() - header.data());
    };
    out->reason = static_cast<int32_t>(r.reason);
    out->detail = static_cast<int32_t>(r.detail);
    out->timestamp_ns = r.params.timestamp_ns;
    out->key_id_offset = offset(r.params.key_id);
    out->key_id_len = static_cast<uint32_t>(r.params.key_id.size());
    out->token_offset = offset(r.params.token);
    out->token_len = static_cast<uint32_t>(r.params.token.size());
    out->nonce_offset = offset(r.params.nonce);
    out->nonce_len = static_cast<uint32_t>(r.params.nonce.size());
    return TG_OK;
  });
}

int tg_auth_set_event_callback(tg_authenticator* auth, tg_auth_event_fn fn, void* user) {
  return guarded(nullptr, [&]() -> int {
    if (!live_auth(auth)) return TG_EINVAL;
    auth->callback.set(fn, user);
    return TG_OK;
  });
}

int tg_auth_stats_get(const tg_authenticator* auth, tg_auth_stats* out) {
  return guarded(nullptr, [&]() -> int {
    if (!live_auth(auth) || out == nullptr) return TG_EINVAL;
    const tollgate::auth_stats s = auth->impl->stats();
    std::memset(static_cast<void*>(out), 0, sizeof *out);
    for (std::size_t i = 0; i < tollgate::auth_reason_count; ++i) out->results[i] = s.results[i];
    out->keys = s.keys;
    out->revoked_keys = s.revoked_keys;
    out->revoked_tokens = s.revoked_tokens;
    out->revocation_version = s.revocation_version;
    return TG_OK;
  });
}

int tg_auth_sign(const tg_auth_message* msg, const tg_auth_params* params, const void* secret,
                 size_t secret_len, char* out, size_t cap, size_t* written, tg_error* err) {
  return client_side(msg, params, out, cap, written, err,
                     [&](const tollgate::auth_message& m,
                         const tollgate::auth_params& p) -> absl::StatusOr<std::string> {
                       if (secret == nullptr || secret_len == 0 ||
                           secret_len > tollgate::auth_limits::max_secret) {
                         return absl::InvalidArgumentError("a secret is 1..1024 bytes");
                       }
                       return tollgate::sign_request(
                           m, p, tollgate::crypto::hmac_sha256_key(view(secret, secret_len)));
                     });
}

int tg_auth_canonical_request(const tg_auth_message* msg, const tg_auth_params* params, char* out,
                              size_t cap, size_t* written, tg_error* err) {
  return client_side(msg, params, out, cap, written, err,
                     [&](const tollgate::auth_message& m, const tollgate::auth_params& p) {
                       return tollgate::canonical_request(m, p);
                     });
}

int tg_hmac_sha256(const void* key, size_t key_len, const void* msg, size_t msg_len,
                   uint8_t out[32]) {
  return guarded(nullptr, [&]() -> int {
    if (out == nullptr || !bytes_ok(key, key_len) || !bytes_ok(msg, msg_len)) return TG_EINVAL;
    if (!tollgate::crypto::available().ok()) return TG_ESTATE;
    tollgate::crypto::hmac_sha256_key(view(key, key_len)).mac(msg, msg_len, out);
    return TG_OK;
  });
}

}  // extern "C"
