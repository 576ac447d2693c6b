// The C side of Breaker.OnEvent, PriceCache.SetEvictionCallback,
// RiskChecker.SetKillCallback, Authenticator.SetEventCallback and
// JournalOptions.OnEvent: the library calls a C function pointer with a
// void* user argument; these trampolines hand both to the exported Go
// functions, with the user argument carrying a runtime/cgo.Handle.

#include <stdint.h>
#include <tollgate/tollgate.h>

#include "_cgo_export.h"

static void tg_go_event_trampoline(void* user, const tg_breaker_event* ev) {
  tollgateGoBreakerEvent((uintptr_t)user, (tg_breaker_event*)ev);
}

int tg_go_breaker_set_events(tg_breaker* b, uintptr_t h) {
  return tg_breaker_set_event_callback(b, h != 0 ? tg_go_event_trampoline : NULL, (void*)h);
}

// The same for PriceCache.SetEvictionCallback.
static void tg_go_eviction_trampoline(void* user, const tg_eviction_event* ev) {
  tollgateGoEvictionEvent((uintptr_t)user, (tg_eviction_event*)ev);
}

int tg_go_price_cache_set_events(tg_price_cache* c, uintptr_t h) {
  return tg_price_cache_set_event_callback(c, h != 0 ? tg_go_eviction_trampoline : NULL, (void*)h);
}

// The same for RiskChecker.SetKillCallback.
static void tg_go_kill_trampoline(void* user, const tg_kill_switch_event* ev) {
  tollgateGoKillEvent((uintptr_t)user, (tg_kill_switch_event*)ev);
}

int tg_go_risk_set_kill_callback(tg_risk_checker* c, uintptr_t h) {
  return tg_risk_set_kill_callback(c, h != 0 ? tg_go_kill_trampoline : NULL, (void*)h);
}

// The same for Authenticator.SetEventCallback.
static void tg_go_auth_trampoline(void* user, const tg_auth_event* ev) {
  tollgateGoAuthEvent((uintptr_t)user, (tg_auth_event*)ev);
}

int tg_go_auth_set_events(tg_authenticator* a, uintptr_t h) {
  return tg_auth_set_event_callback(a, h != 0 ? tg_go_auth_trampoline : NULL, (void*)h);
}

// The same for JournalOptions.OnEvent, set when the journal is opened. The
// trampoline also notes, per thread, whose callback is running: Go code in
// a callback runs on the thread that made it, so Journal.Close can see that
// it was called from the journal's own callback (where it must not mark
// the journal closed: the library refuses to close or free it from there).
static _Thread_local uintptr_t tg_go_journal_notifying;

static void tg_go_journal_trampoline(void* user, const tg_journal_event* ev) {
  const uintptr_t outer = tg_go_journal_notifying;
  tg_go_journal_notifying = (uintptr_t)user;
  tollgateGoJournalEvent((uintptr_t)user, (tg_journal_event*)ev);
  tg_go_journal_notifying = outer;
}

int tg_go_journal_open(tg_journal_options* o, uintptr_t h, tg_journal** out, tg_error* err) {
  if (h != 0) {
    o->on_event = tg_go_journal_trampoline;
    o->on_event_user = (void*)h;
  }
  return tg_journal_open(o, out, err);
}

int tg_go_journal_in_callback(uintptr_t h) { return h != 0 && tg_go_journal_notifying == h; }
