package tollgate

/*
#include <stdint.h>
#include <tollgate/tollgate.h>

// Defined in events.c: installs (h != 0) or removes (h == 0) the trampoline
// that forwards the breaker's events to the Go sink behind handle h. This
// file has an //export, so its preamble may only declare.
int tg_go_breaker_set_events(tg_breaker* b, uintptr_t h);

// The same for a price cache's evictions.
int tg_go_price_cache_set_events(tg_price_cache* c, uintptr_t h);

// The same for a risk checker's kill switch changes.
int tg_go_risk_set_kill_callback(tg_risk_checker* c, uintptr_t h);

// The same for an authenticator's key and revocation changes.
int tg_go_auth_set_events(tg_authenticator* a, uintptr_t h);
*/
import "C"

import (
	"runtime/cgo"
	"sync/atomic"
	"unsafe"
)

// eventSink receives a breaker's events from C. It is reached through a
// cgo.Handle, so the handle never keeps the Breaker itself reachable and its
// finalizer can run.
type eventSink struct {
	fn      atomic.Pointer[func(Event)]
	handle  cgo.Handle
	pending atomic.Pointer[panicValue]
	// installed says whether the C trampoline is registered; guarded by
	// Breaker.mu.
	installed bool
}

type panicValue struct{ v any }

// OnEvent calls fn(ev) on every state change, synchronously in the goroutine
// whose call (Acquire, Record, Transition, ...) caused it, after the change
// is visible. fn must not block; it may call the breaker's methods, and
// even Close. A panic in fn is recovered before it can unwind through the
// library (which would skip its C++ frames) and raised again when the
// causing method returns (if another goroutine's call on the same breaker
// returns first, in that goroutine). fn = nil
// removes the callback. A change racing with OnEvent is reported to the old
// or the new callback. A callback that refers to the breaker keeps it
// reachable until the callback is removed or the breaker closed, so the
// finalizer cannot release it: Close such a breaker explicitly.
func (b *Breaker) OnEvent(fn func(Event)) error {
	if err := b.enter(); err != nil {
		return err
	}
	defer b.leave()
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.sink.Load()
	if s == nil {
		if fn == nil {
			return nil
		}
		s = &eventSink{}
		s.handle = cgo.NewHandle(s)
		b.sink.Store(s)
	}
	if fn != nil {
		s.fn.Store(&fn)
		if s.installed {
			return nil
		}
		// The library keeps each registration until the breaker is freed, so
		// the trampoline is installed once, not on every OnEvent.
		if rc := C.tg_go_breaker_set_events(b.h, C.uintptr_t(s.handle)); rc != C.TG_OK {
			s.fn.Store(nil)
			return statusErr(rc, nil, "tg_breaker_set_event_callback failed")
		}
		s.installed = true
		return nil
	}
	s.fn.Store(nil)
	if s.installed {
		if rc := C.tg_go_breaker_set_events(b.h, 0); rc != C.TG_OK {
			return statusErr(rc, nil, "tg_breaker_set_event_callback failed")
		}
		s.installed = false
	}
	return nil
}

//export tollgateGoBreakerEvent
func tollgateGoBreakerEvent(h C.uintptr_t, ev *C.tg_breaker_event) {
	s, ok := cgo.Handle(h).Value().(*eventSink)
	if !ok {
		return
	}
	fn := s.fn.Load()
	if fn == nil {
		return
	}
	e := Event{
		From:        State(ev.from_state),
		To:          State(ev.to_state),
		NowNs:       uint64(ev.now_ns),
		FailureRate: float64(ev.failure_rate),
		SlowRate:    float64(ev.slow_rate),
		OpenNs:      uint64(ev.open_ns),
	}
	defer func() {
		if r := recover(); r != nil {
			s.pending.CompareAndSwap(nil, &panicValue{v: r})
		}
	}()
	(*fn)(e)
}

// evictionSink receives a price cache's evictions from C, through a
// cgo.Handle, as eventSink does for a breaker.
type evictionSink struct {
	fn      atomic.Pointer[func(EvictionEvent)]
	handle  cgo.Handle
	pending atomic.Pointer[panicValue]
	// installed says whether the C trampoline is registered; guarded by
	// PriceCache.mu.
	installed bool
}

// SetEvictionCallback calls fn(ev) on every eviction (price move, sequence
// gap, age, capacity, removal), synchronously in the goroutine whose call
// (Put, OnPrice, OnPriceMany, Remove, Expire) caused it, after the entry is
// gone. ev.Key is a copy fn may keep. fn must not block; it may call the
// cache's methods, and even Close. A panic in fn is recovered before it can
// unwind through the library and raised again when the causing method
// returns (if another goroutine's call on the same cache returns first, in
// that goroutine). fn = nil removes the callback. An eviction racing with
// SetEvictionCallback is reported to the old or the new callback. A
// callback that refers to the cache keeps it reachable until the callback
// is removed or the cache closed, so the finalizer cannot release it:
// Close such a cache explicitly.
func (p *PriceCache) SetEvictionCallback(fn func(EvictionEvent)) error {
	if err := p.enter(); err != nil {
		return err
	}
	defer p.leave()
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.sink.Load()
	if s == nil {
		if fn == nil {
			return nil
		}
		s = &evictionSink{}
		s.handle = cgo.NewHandle(s)
		p.sink.Store(s)
	}
	if fn != nil {
		s.fn.Store(&fn)
		if s.installed {
			return nil
		}
		// The library keeps each registration until the cache is freed, so
		// the trampoline is installed once, not on every call.
		if rc := C.tg_go_price_cache_set_events(p.h, C.uintptr_t(s.handle)); rc != C.TG_OK {
			s.fn.Store(nil)
			return statusErr(rc, nil, "tg_price_cache_set_event_callback failed")
		}
		s.installed = true
		return nil
	}
	s.fn.Store(nil)
	if s.installed {
		if rc := C.tg_go_price_cache_set_events(p.h, 0); rc != C.TG_OK {
			return statusErr(rc, nil, "tg_price_cache_set_event_callback failed")
		}
		s.installed = false
	}
	return nil
}

//export tollgateGoEvictionEvent
func tollgateGoEvictionEvent(h C.uintptr_t, ev *C.tg_eviction_event) {
	s, ok := cgo.Handle(h).Value().(*evictionSink)
	if !ok {
		return
	}
	fn := s.fn.Load()
	if fn == nil {
		return
	}
	e := EvictionEvent{
		Reason:      EvictReason(ev.reason),
		CachedPrice: float64(ev.cached_price),
		NewPrice:    float64(ev.new_price),
		FeedSeq:     uint64(ev.feed_seq),
		NowNs:       uint64(ev.now_ns),
	}
	if ev.key_len > 0 && ev.key != nil {
		e.Key = C.GoBytes(unsafe.Pointer(ev.key), C.int(ev.key_len))
	} else {
		e.Key = []byte{}
	}
	defer func() {
		if r := recover(); r != nil {
			s.pending.CompareAndSwap(nil, &panicValue{v: r})
		}
	}()
	(*fn)(e)
}

// killSink receives a risk checker's kill switch changes from C, through a
// cgo.Handle, as eventSink does for a breaker.
type killSink struct {
	fn      atomic.Pointer[func(KillSwitchEvent)]
	handle  cgo.Handle
	pending atomic.Pointer[panicValue]
	// installed says whether the C trampoline is registered; guarded by
	// RiskChecker.mu.
	installed bool
}

// SetKillCallback calls fn(ev) on every kill switch change (an Engage of a
// switch not engaged, a Release of an engaged one), synchronously in the
// goroutine whose Engage or Release caused it, before that call returns,
// one change at a time in the order they took effect: a host journals
// them here. fn must not block. It may check orders, read Stats and
// Engaged, and even Close the checker, but it may not engage or release
// any kill switch, of this checker or another: such a call returns an
// error wrapping ErrState (a cycle of callbacks would otherwise deadlock).
// (The library holds its switch lock while fn runs, so fn must not wait for
// another goroutine that engages or releases one either: that would
// deadlock.) A panic in fn is recovered before it can unwind through
// the library and raised again when the causing call returns (if another
// goroutine's call on the same checker returns first, in that goroutine).
// fn = nil removes the callback. A callback that refers to the checker
// keeps it reachable until the callback is removed or the checker closed,
// so the finalizer cannot release it: Close such a checker explicitly.
func (r *RiskChecker) SetKillCallback(fn func(KillSwitchEvent)) error {
	if err := r.enter(); err != nil {
		return err
	}
	defer r.leave()
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.sink.Load()
	if s == nil {
		if fn == nil {
			return nil
		}
		s = &killSink{}
		s.handle = cgo.NewHandle(s)
		r.sink.Store(s)
	}
	if fn != nil {
		s.fn.Store(&fn)
		if s.installed {
			return nil
		}
		// The library keeps each registration until the checker is freed, so
		// the trampoline is installed once, not on every call.
		if rc := C.tg_go_risk_set_kill_callback(r.h, C.uintptr_t(s.handle)); rc != C.TG_OK {
			s.fn.Store(nil)
			return statusErr(rc, nil, "tg_risk_set_kill_callback failed")
		}
		s.installed = true
		return nil
	}
	s.fn.Store(nil)
	if s.installed {
		if rc := C.tg_go_risk_set_kill_callback(r.h, 0); rc != C.TG_OK {
			return statusErr(rc, nil, "tg_risk_set_kill_callback failed")
		}
		s.installed = false
	}
	return nil
}

//export tollgateGoKillEvent
func tollgateGoKillEvent(h C.uintptr_t, ev *C.tg_kill_switch_event) {
	s, ok := cgo.Handle(h).Value().(*killSink)
	if !ok {
		return
	}
	fn := s.fn.Load()
	if fn == nil {
		return
	}
	e := KillSwitchEvent{
		Scope:   KillScope(ev.scope),
		Engaged: ev.engaged != 0,
		NowNs:   uint64(ev.now_ns),
	}
	if ev.key_len > 0 && ev.key != nil {
		e.Key = C.GoStringN(ev.key, C.int(ev.key_len))
	}
	defer func() {
		if r := recover(); r != nil {
			s.pending.CompareAndSwap(nil, &panicValue{v: r})
		}
	}()
	(*fn)(e)
}

// authEventSink receives an authenticator's changes from C, through a
// cgo.Handle, as eventSink does for a breaker.
type authEventSink struct {
	fn      atomic.Pointer[func(AuthEvent)]
	handle  cgo.Handle
	pending atomic.Pointer[panicValue]
	// installed says whether the C trampoline is registered; guarded by
	// Authenticator.mu.
	installed bool
}

// SetEventCallback calls fn(ev) on every key or revocation change (AddKey,
// RemoveKey, a Revoke or Unrevoke that changes something,
// ReplaceRevocations), synchronously in the goroutine whose call caused
// it, after the change is effective and before that call returns, one
// change at a time in the order they took effect: a host journals them
// here. fn must not block. It may verify requests, read Stats and even
// Close the authenticator, but it may not change any authenticator, this
// one or another: such a call returns an error wrapping ErrState (a cycle
// of callbacks would otherwise deadlock). (The library holds its writer
// lock while fn runs, so fn must not wait for another goroutine that
// changes it either: that would deadlock.) A panic in fn is recovered
// before it can unwind through the library and raised again when the
// causing call returns (if another goroutine's call on the same
// authenticator returns first, in that goroutine). fn = nil removes the
// callback. A callback that refers to the authenticator keeps it reachable
// until the callback is removed or the authenticator closed, so the
// finalizer cannot release it: Close such an authenticator explicitly.
func (a *Authenticator) SetEventCallback(fn func(AuthEvent)) error {
	if err := a.enter(); err != nil {
		return err
	}
	defer a.leave()
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.sink.Load()
	if s == nil {
		if fn == nil {
			return nil
		}
		s = &authEventSink{}
		s.handle = cgo.NewHandle(s)
		a.sink.Store(s)
	}
	if fn != nil {
		s.fn.Store(&fn)
		if s.installed {
			return nil
		}
		// The library keeps each registration until the authenticator is
		// freed, so the trampoline is installed once, not on every call.
		if rc := C.tg_go_auth_set_events(a.h, C.uintptr_t(s.handle)); rc != C.TG_OK {
			s.fn.Store(nil)
			return statusErr(rc, nil, "tg_auth_set_event_callback failed")
		}
		s.installed = true
		return nil
	}
	s.fn.Store(nil)
	if s.installed {
		if rc := C.tg_go_auth_set_events(a.h, 0); rc != C.TG_OK {
			return statusErr(rc, nil, "tg_auth_set_event_callback failed")
		}
		s.installed = false
	}
	return nil
}

//export tollgateGoAuthEvent
func tollgateGoAuthEvent(h C.uintptr_t, ev *C.tg_auth_event) {
	s, ok := cgo.Handle(h).Value().(*authEventSink)
	if !ok {
		return
	}
	fn := s.fn.Load()
	if fn == nil {
		return
	}
	e := AuthEvent{
		Kind:              AuthEventKind(ev.kind),
		RevocationVersion: uint64(ev.revocation_version),
		NowNs:             uint64(ev.now_ns),
	}
	if ev.id_len > 0 && ev.id != nil {
		e.ID = C.GoStringN(ev.id, C.int(ev.id_len))
	}
	defer func() {
		if r := recover(); r != nil {
			s.pending.CompareAndSwap(nil, &panicValue{v: r})
		}
	}()
	(*fn)(e)
}

//export tollgateGoJournalEvent
func tollgateGoJournalEvent(h C.uintptr_t, ev *C.tg_journal_event) {
	journalEvent(h, ev)
}
