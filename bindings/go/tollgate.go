package tollgate

/*
#cgo pkg-config: tollgate
#cgo noescape tg_now_ns
#cgo nocallback tg_now_ns
#include <tollgate/tollgate.h>
*/
import "C"

import (
	"fmt"
	"sync"
	"sync/atomic"
)

// BindingVersionNumber is the TG_VERSION_NUMBER (MAJOR*10000 + MINOR*100 +
// PATCH) of the tollgate.h this package was written and built against.
const BindingVersionNumber = 200

// The binding's constant must be the header's (a compile error otherwise).
var _ = [1]struct{}{}[BindingVersionNumber-C.TG_VERSION_NUMBER]

// VersionNumber returns the version of the tollgate library actually loaded,
// as MAJOR*10000 + MINOR*100 + PATCH.
func VersionNumber() uint { return uint(C.tg_version_number()) }

// Version returns the version string of the tollgate library actually loaded,
// for example "0.1.0".
func Version() string { return C.GoString(C.tg_version_string()) }

// versionCompatible says whether a library of version loaded can serve a
// binding built against version built. The ABI only grows, so a newer
// library of the same major version is fine; before 1.0 the minor version
// is the compatibility boundary.
func versionCompatible(built, loaded uint) bool {
	if built/10000 != loaded/10000 {
		return false
	}
	if built/10000 == 0 && (built/100)%100 != (loaded/100)%100 {
		return false
	}
	return loaded >= built
}

var (
	versionOnce sync.Once
	versionErr  error
)

// CheckVersion reports whether the loaded library is compatible with the
// header this package was built against. Constructors call it, so a
// mismatch surfaces as an error wrapping [ErrVersion] at first use.
func CheckVersion() error {
	versionOnce.Do(func() {
		loaded := VersionNumber()
		if !versionCompatible(BindingVersionNumber, loaded) {
			versionErr = &Error{
				Status: ErrVersion,
				Message: fmt.Sprintf("library version %s (%d) is not compatible with the binding's header %d",
					Version(), loaded, BindingVersionNumber),
			}
		}
	})
	return versionErr
}

// NowNs returns CLOCK_MONOTONIC in nanoseconds, the clock the library
// expects nowNs arguments to come from. It is a cgo call; a host that
// already has a monotonic timestamp should pass that instead.
func NowNs() uint64 { return uint64(C.tg_now_ns()) }

// RetryNever is the RetryAfterNs of a rejection that waiting can never turn
// into an admission (a cost larger than the tier's burst).
const RetryNever uint64 = 1<<64 - 1

// Status is a tollgate status code, the int returned by every fallible C
// function. Non-zero values implement error; [Error] wraps one with a
// message, so errors.Is(err, ErrInvalid) matches any error carrying it.
type Status int

// The codes of the C ABI (append-only; never renumbered).
const (
	// OK is success; no function of this package returns it as an error.
	OK Status = 0
	// ErrInvalid: an argument is nil, malformed or out of range, or the
	// object is nil or closed.
	ErrInvalid Status = -1
	// ErrNoMem: an allocation failed; nothing was changed.
	ErrNoMem Status = -2
	// ErrRange: a number is outside the supported range.
	ErrRange Status = -3
	// ErrVersion: the loaded library does not match this binding.
	ErrVersion Status = -4
	// ErrTooSmall: a buffer is too small.
	ErrTooSmall Status = -5
	// ErrNotFound: a named entity (tier, key) does not exist.
	ErrNotFound Status = -6
	// ErrState: the operation is not allowed in the object's state.
	ErrState Status = -7
	// ErrInternal: a bug in tollgate; please report it.
	ErrInternal Status = -8
	// ErrFull: a bounded queue is full and its policy refuses (the
	// journal's ring with RingFullReject): fail the request closed.
	ErrFull Status = -9
	// ErrDropped: a bounded queue is full and dropped the entry, counting
	// it (the journal's ring with RingFullDrop).
	ErrDropped Status = -10
	// ErrIO: an I/O error stopped the object (the journal); the message
	// says which (errno).
	ErrIO Status = -11
)

var (
	_ = [1]struct{}{}[int(OK)-C.TG_OK]
	_ = [1]struct{}{}[int(ErrInvalid)-C.TG_EINVAL]
	_ = [1]struct{}{}[int(ErrNoMem)-C.TG_ENOMEM]
	_ = [1]struct{}{}[int(ErrRange)-C.TG_ERANGE]
	_ = [1]struct{}{}[int(ErrVersion)-C.TG_EVERSION]
	_ = [1]struct{}{}[int(ErrTooSmall)-C.TG_ETOOSMALL]
	_ = [1]struct{}{}[int(ErrNotFound)-C.TG_ENOTFOUND]
	_ = [1]struct{}{}[int(ErrState)-C.TG_ESTATE]
	_ = [1]struct{}{}[int(ErrInternal)-C.TG_EINTERNAL]
	_ = [1]struct{}{}[int(ErrFull)-C.TG_EFULL]
	_ = [1]struct{}{}[int(ErrDropped)-C.TG_EDROPPED]
	_ = [1]struct{}{}[int(ErrIO)-C.TG_EIO]
)

// String returns the library's name for the code, such as "TG_EINVAL", or
// "TG_UNKNOWN" for a code it does not know.
func (s Status) String() string { return C.GoString(C.tg_status_str(C.int(s))) }

// Error implements error.
func (s Status) Error() string { return "tollgate: " + s.String() }

// Error is a failed call: a [Status] code and the library's explanation.
// errors.Is(err, ErrInvalid) (or any other Status) matches through Unwrap.
type Error struct {
	// Status is the code; never OK.
	Status Status
	// Message says what was wrong, in words; it may be empty.
	Message string
}

// Error implements error.
func (e *Error) Error() string {
	if e.Message == "" {
		return "tollgate: " + e.Status.String()
	}
	return "tollgate: " + e.Status.String() + ": " + e.Message
}

// Unwrap returns the Status, so errors.Is and errors.As see it.
func (e *Error) Unwrap() error { return e.Status }

// ErrClosed is returned by every method of a Limiter or Breaker after Close.
// It wraps ErrInvalid, as a freed handle is an invalid argument to the C ABI.
var ErrClosed error = &Error{Status: ErrInvalid, Message: "use of a closed object"}

// errNil is returned by methods called on a nil receiver.
var errNil error = &Error{Status: ErrInvalid, Message: "nil receiver"}

// invalid builds an ErrInvalid error detected on the Go side.
func invalid(format string, args ...any) error {
	return &Error{Status: ErrInvalid, Message: fmt.Sprintf(format, args...)}
}

// statusErr turns a return code into an error, using the detail in cerr
// when the call filled it.
func statusErr(rc C.int, cerr *C.tg_error, what string) error {
	if rc == C.TG_OK {
		return nil
	}
	msg := ""
	if cerr != nil && cerr.code == rc {
		msg = C.GoString(&cerr.message[0])
	}
	if msg == "" {
		msg = what
	}
	return &Error{Status: Status(rc), Message: msg}
}

// handlesFreed counts handles released (by Close, the last call after a
// Close, or a finalizer); the tests use it to see finalizers at work.
var handlesFreed atomic.Int64

// guard makes Close safe against calls in progress. state counts the calls
// inside the C library in its low bits; closedBit is set by Close and
// freedBit by whoever releases the handle: Close when no call is in
// progress, else the last call to leave. Once freedBit is set the state
// never equals closedBit again, so the handle is released exactly once.
//
// Every method calls leave after its cgo call returns, which uses the
// receiver and so keeps it reachable for the whole call, as runtime.KeepAlive
// would: the finalizer cannot free a handle while C is using it.
type guard struct {
	state atomic.Uint64
}

const (
	closedBit = uint64(1) << 63
	freedBit  = uint64(1) << 62
)

// enter registers a call; false means the object is closed (the caller
// must still call leave).
func (g *guard) enter() bool { return g.state.Add(1)&closedBit == 0 }

// leave ends a call; true means the caller must release the handle now.
func (g *guard) leave() bool {
	return g.state.Add(^uint64(0)) == closedBit && g.state.CompareAndSwap(closedBit, closedBit|freedBit)
}

// close marks the object closed; true means the caller must release the
// handle now. Only the first call can return true.
func (g *guard) close() bool {
	for {
		v := g.state.Load()
		if v&closedBit != 0 {
			return false
		}
		if g.state.CompareAndSwap(v, v|closedBit) {
			return v == 0 && g.state.CompareAndSwap(closedBit, closedBit|freedBit)
		}
	}
}

// isClosed says whether close has been called.
func (g *guard) isClosed() bool { return g.state.Load()&closedBit != 0 }
