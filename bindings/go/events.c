// The C side of Breaker.OnEvent, PriceCache.SetEvictionCallback,
// RiskChecker.SetKillCallback and Authenticator.SetEventCallback: the
// library calls a C function pointer with a void* user argument; these
// trampolines hand both to the exported Go functions, with the user argument
// carrying a runtime/cgo.Handle.

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
