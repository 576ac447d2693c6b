package tollgate

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func testSeed(salt byte) [32]byte {
	var s [32]byte
	for i := range s {
		s[i] = byte(i*13) + salt
	}
	return s
}

func journalOptions(dir string, mode WriterMode) JournalOptions {
	return JournalOptions{Directory: dir, SigningSeed: testSeed(1), Mode: mode}
}

func openJournal(t testing.TB, o JournalOptions) *Journal {
	t.Helper()
	j, err := OpenJournal(o)
	if err != nil {
		t.Fatalf("OpenJournal(%s): %v", o.Directory, err)
	}
	t.Cleanup(func() { j.Close() })
	return j
}

// drain polls until the ring is empty.
func drain(t testing.TB, j *Journal) {
	t.Helper()
	for {
		n, err := j.Poll()
		if err != nil {
			t.Fatalf("Poll: %v", err)
		}
		if n == 0 {
			return
		}
	}
}

func mustAppend(t testing.TB, j *Journal, e *JournalEntry) uint64 {
	t.Helper()
	ticket, err := j.Append(e)
	if err != nil {
		t.Fatalf("Append(%+v): %v", e, err)
	}
	return ticket
}

func journalStats(t testing.TB, j *Journal) JournalStats {
	t.Helper()
	s, err := j.Stats()
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	return s
}

func closeJournal(t testing.TB, j *Journal) {
	t.Helper()
	if err := j.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// readAll reads every verified record of the journal in dir.
func readAll(t testing.TB, dir string, o ReadOptions) ([]JournalRecord, *JournalProblem) {
	t.Helper()
	r, err := OpenJournalReader(dir, o)
	if err != nil {
		t.Fatalf("OpenJournalReader: %v", err)
	}
	defer r.Close()
	var recs []JournalRecord
	for {
		rec, ok := r.Next()
		if !ok {
			break
		}
		recs = append(recs, rec)
	}
	p, err := r.Problem()
	if err != nil {
		t.Fatalf("Problem: %v", err)
	}
	return recs, p
}

func events(recs []JournalRecord) []JournalRecord {
	var out []JournalRecord
	for _, r := range recs {
		if r.Type == JournalRecordEvent {
			out = append(out, r)
		}
	}
	return out
}

func TestJournalStatusCodes(t *testing.T) {
	for s, want := range map[Status]string{ErrFull: "TG_EFULL", ErrDropped: "TG_EDROPPED", ErrIO: "TG_EIO"} {
		if s.String() != want {
			t.Errorf("Status(%d).String() = %q, want %q", int(s), s.String(), want)
		}
		err := fmt.Errorf("wrapped: %w", &Error{Status: s, Message: "m"})
		if !errors.Is(err, s) || errors.Is(err, ErrInvalid) {
			t.Errorf("errors.Is does not see %v", s)
		}
	}
	if !errors.Is(errJournalFull, ErrFull) || !errors.Is(errJournalDropped, ErrDropped) {
		t.Error("the preallocated errors do not carry their codes")
	}
}

// Every field of every kind of entry comes back from the reader as it was
// appended, and the journal verifies.
func TestJournalRoundTrip(t *testing.T) {
	dir := t.TempDir()
	o := journalOptions(dir, JournalWriterPoll)
	o.CheckpointEveryRecords = 3
	j := openJournal(t, o)
	rec, err := j.Recovery()
	if err != nil || !rec.Created || rec.TailTruncated || rec.NextSequence != 1 {
		t.Fatalf("Recovery() = %+v, %v; want a new journal", rec, err)
	}
	payload := bytes.Repeat([]byte{0xAB, 0x01}, 50)
	digest := sha256.Sum256([]byte("the host's own digest"))
	account := strings.Repeat("a", 255)
	entries := []JournalEntry{
		{ // every field, payload stored
			Kind: JournalKindRiskCheck, RealtimeNs: 1_700_000_000_000_000_001, MonotonicNs: 77,
			Account: "ACC-1", Route: 3, Venue: 4, Verdict: 1, Reason: 9, ConfigVersion: 42,
			Inputs: []byte{1, 2, 3, 4, 5}, Payload: payload, StorePayload: true,
		},
		// A digest the host already has: recorded, the payload not copied.
		{Kind: JournalKindHostFirst + 1, Account: account, Payload: payload, PayloadDigest: &digest, RealtimeNs: 5},
		// A payload digested by the writer, not stored.
		{Kind: JournalKindHostLast, Payload: payload, RealtimeNs: 6},
		{}, // the zero entry: a decision stamped with the clocks
		{Kind: JournalKindConfigChange, Inputs: []byte{}, Payload: []byte{}, RealtimeNs: 8},
	}
	before := uint64(time.Now().UnixNano())
	var tickets []uint64
	for i := range entries {
		tickets = append(tickets, mustAppend(t, j, &entries[i]))
		if i > 0 && tickets[i] <= tickets[i-1] {
			t.Fatalf("tickets not increasing: %v", tickets)
		}
	}
	after := uint64(time.Now().UnixNano())
	drain(t, j)
	id, err := j.ID()
	if err != nil || id == [16]byte{} {
		t.Fatalf("ID() = %x, %v", id, err)
	}
	key, err := j.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	if want, err := Ed25519PublicKey(testSeed(1)); err != nil || want != key {
		t.Fatalf("PublicKey %x, Ed25519PublicKey(seed) %x, %v", key, want, err)
	}
	closeJournal(t, j)

	recs, problem := readAll(t, dir, ReadOptions{PublicKey: &key})
	if problem != nil {
		t.Fatalf("reader problem: %v", problem)
	}
	evs := events(recs)
	if len(evs) != len(entries) {
		t.Fatalf("%d events read, want %d", len(evs), len(entries))
	}
	for i := 1; i < len(recs); i++ {
		if recs[i].Sequence != recs[i-1].Sequence+1 {
			t.Fatalf("sequence %d follows %d", recs[i].Sequence, recs[i-1].Sequence)
		}
	}
	sum := sha256.Sum256(payload)
	e0 := evs[0]
	want0 := JournalRecord{
		Type: JournalRecordEvent, Kind: JournalKindRiskCheck, Flags: RecordPayloadStored | RecordDigestSet,
		Sequence: e0.Sequence, RealtimeNs: 1_700_000_000_000_000_001, MonotonicNs: 77, ConfigVersion: 42,
		Route: 3, Venue: 4, Verdict: 1, Reason: 9, Segment: 1, Offset: e0.Offset,
		Account: "ACC-1", Inputs: []byte{1, 2, 3, 4, 5}, Payload: payload, Prev: e0.Prev, PayloadDigest: sum,
	}
	if !reflect.DeepEqual(e0, want0) {
		t.Errorf("event 0:\n got %+v\nwant %+v", e0, want0)
	}
	if e0.Sequence != 1 || e0.Offset != 128 || e0.Prev == [32]byte{} {
		t.Errorf("event 0 at sequence %d, offset %d, prev %x", e0.Sequence, e0.Offset, e0.Prev)
	}
	if e := evs[1]; e.Kind != JournalKindHostFirst+1 || e.Account != account || e.Payload != nil ||
		e.PayloadDigest != digest || e.Flags != RecordDigestSet || e.Inputs != nil {
		t.Errorf("event 1 (a host digest): %+v", e)
	}
	if e := evs[2]; e.Kind != JournalKindHostLast || e.Payload != nil || e.PayloadDigest != sum || e.Flags != RecordDigestSet {
		t.Errorf("event 2 (a digested payload): %+v", e)
	}
	if e := evs[3]; e.Kind != JournalKindDecision || e.RealtimeNs < before || e.RealtimeNs > after ||
		e.MonotonicNs == 0 || e.Flags != 0 || e.Account != "" || e.PayloadDigest != [32]byte{} {
		t.Errorf("event 3 (the zero entry, clocks in [%d, %d]): %+v", before, after, e)
	}
	if e := evs[4]; e.Kind != JournalKindConfigChange || e.Inputs != nil || e.Payload != nil || e.Flags != 0 {
		t.Errorf("event 4 (empty slices): %+v", e)
	}
	last := recs[len(recs)-1]
	if last.Type != JournalRecordCheckpoint || last.CheckpointFlags != CheckpointSeal|CheckpointClose {
		t.Errorf("the last record is %+v, want the close checkpoint", last)
	}
	var ckpts int
	for _, r := range recs {
		if r.Type == JournalRecordCheckpoint {
			ckpts++
		}
	}
	if ckpts < 2 {
		t.Errorf("%d checkpoints with CheckpointEveryRecords 3", ckpts)
	}

	// The iterator yields the same records and no error.
	r, err := OpenJournalReader(dir, ReadOptions{Strict: true})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rec, err := range r.Records() {
		if err != nil {
			t.Fatalf("Records: %v", err)
		}
		if rec.Sequence != recs[n].Sequence {
			t.Fatalf("Records()[%d].Sequence = %d, want %d", n, rec.Sequence, recs[n].Sequence)
		}
		n++
		if n == 2 {
			break // stopping early is allowed
		}
	}
	for rec := range r.Records() { // and resumes where it stopped
		if rec.Sequence != recs[n].Sequence {
			t.Fatalf("resumed at %d, want %d", rec.Sequence, recs[n].Sequence)
		}
		n++
	}
	if n != len(recs) {
		t.Fatalf("Records yielded %d, want %d", n, len(recs))
	}
	if w, err := r.Warnings(); err != nil || len(w) != 0 {
		t.Fatalf("Warnings() = %v, %v", w, err)
	}
	r.Close()

	rep, err := VerifyJournal(dir, ReadOptions{Strict: true, PublicKey: &key})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK || !rep.Closed || rep.Problem != nil || rep.FirstWarning != nil || rep.Events != uint64(len(entries)) ||
		rep.Records != uint64(len(recs)) || rep.Segments != 1 || rep.Key != key || rep.ID != id ||
		rep.LastSequence != last.Sequence || rep.Checkpoints != uint64(ckpts) || rep.Head == [32]byte{} ||
		rep.Bytes == 0 || rep.FirstRealtimeNs == 0 || rep.LastRealtimeNs < rep.FirstRealtimeNs {
		t.Fatalf("VerifyJournal: %+v", rep)
	}

	// Reopened with the same seed, the journal continues.
	j2 := openJournal(t, o)
	rec, err = j2.Recovery()
	if err != nil || rec.Created || rec.NextSequence != last.Sequence+1 {
		t.Fatalf("reopened: Recovery() = %+v, %v", rec, err)
	}
	if id2, _ := j2.ID(); id2 != id {
		t.Fatalf("reopened journal has id %x, want %x", id2, id)
	}
}

// Tickets become written when the writer writes them and durable when it
// syncs them, as the durability level says.
func TestJournalTicketsPollMode(t *testing.T) {
	o := journalOptions(t.TempDir(), JournalWriterPoll)
	o.Durability = DurabilityNone
	j := openJournal(t, o)
	e := &JournalEntry{Account: "A"}
	t1 := mustAppend(t, j, e)
	t2 := mustAppend(t, j, e)
	flag := func(f func(uint64) (bool, error), ticket uint64) bool {
		t.Helper()
		v, err := f(ticket)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if flag(j.IsWritten, t1) || flag(j.IsDurable, t1) {
		t.Fatal("written before any poll")
	}
	n, err := j.Poll()
	if err != nil || n != 2 {
		t.Fatalf("Poll() = %d, %v; want 2", n, err)
	}
	if !flag(j.IsWritten, t2) || flag(j.IsDurable, t1) {
		t.Fatal("DurabilityNone: want written, not durable")
	}
	if flag(j.IsWritten, 0) {
		t.Fatal("ticket 0 is never written")
	}
	// WaitDurable polls, but DurabilityNone does not sync: it times out.
	t3 := mustAppend(t, j, e)
	start := time.Now()
	durable, err := j.WaitDurable(t3, 2*time.Millisecond)
	if err != nil || durable {
		t.Fatalf("WaitDurable (level none) = %v, %v; want a timeout", durable, err)
	}
	if time.Since(start) < 2*time.Millisecond {
		t.Fatal("WaitDurable returned before its timeout")
	}
	if !flag(j.IsWritten, t3) {
		t.Fatal("WaitDurable in poll mode did not poll")
	}
	if err := j.Sync(); err != nil {
		t.Fatal(err)
	}
	if !flag(j.IsDurable, t3) {
		t.Fatal("not durable after Sync")
	}
	s := journalStats(t, j)
	if s.Written != 3 || s.WrittenTicket != t3 || s.DurableTicket != t3 || s.Syncs == 0 || s.Batches == 0 ||
		s.Bytes == 0 || s.Segment != 1 || s.NextSequence < 4 {
		t.Fatalf("Stats() = %+v", s)
	}

	// At the default level WaitDurable's own polling makes it durable.
	o2 := journalOptions(t.TempDir(), JournalWriterPoll)
	j2 := openJournal(t, o2)
	t4 := mustAppend(t, j2, e)
	if durable, err := j2.WaitDurable(t4, 5*time.Second); err != nil || !durable {
		t.Fatalf("WaitDurable (every record) = %v, %v", durable, err)
	}
	if durable, err := j2.WaitDurable(t4, 0); err != nil || !durable {
		t.Fatalf("WaitDurable(timeout 0) of a durable ticket = %v, %v", durable, err)
	}
	if durable, err := j2.WaitDurable(t4, math.MaxInt64); err != nil || !durable {
		t.Fatalf("WaitDurable(the longest timeout) of a durable ticket = %v, %v", durable, err)
	}
	for _, c := range []struct {
		d, unit time.Duration
		want    uint64
	}{{0, time.Microsecond, 0}, {1, time.Microsecond, 1}, {time.Microsecond, time.Microsecond, 1},
		{time.Microsecond + 1, time.Microsecond, 2}, {1, time.Millisecond, 1},
		{math.MaxInt64, time.Microsecond, math.MaxInt64/1000 + 1}} {
		if got := roundUp(c.d, c.unit); got != c.want {
			t.Errorf("roundUp(%d, %v) = %d, want %d", c.d, c.unit, got, c.want)
		}
	}
}

func TestJournalThreadMode(t *testing.T) {
	levels := []struct {
		name string
		o    func(*JournalOptions)
	}{
		{"every-record", func(*JournalOptions) {}},
		{"every-10-records", func(o *JournalOptions) { o.Durability, o.SyncEveryRecords = DurabilityEveryNRecords, 10 }},
		{"every-500us", func(o *JournalOptions) { o.Durability, o.SyncEvery = DurabilityEveryT, 500*time.Microsecond }},
	}
	for _, lv := range levels {
		t.Run(lv.name, func(t *testing.T) {
			o := journalOptions(t.TempDir(), JournalWriterThread)
			lv.o(&o)
			j := openJournal(t, o)
			var last uint64
			for i := 0; i < 100; i++ {
				last = mustAppend(t, j, &JournalEntry{Account: "T", Route: uint32(i)})
			}
			durable, err := j.WaitDurable(last, 5*time.Second)
			if err != nil || !durable {
				t.Fatalf("WaitDurable = %v, %v", durable, err)
			}
			if w, _ := j.IsWritten(last); !w {
				t.Fatal("durable but not written")
			}
			if _, err := j.Poll(); err != nil { // does the thread's work early
				t.Fatal(err)
			}
			if s := journalStats(t, j); s.Written != 100 {
				t.Fatalf("Stats().Written = %d", s.Written)
			}
			closeJournal(t, j)
			if err := j.Close(); err != nil {
				t.Fatalf("second Close: %v", err)
			}
			if _, err := j.Append(&JournalEntry{}); !errors.Is(err, ErrInvalid) || err != ErrClosed {
				t.Fatalf("Append after Close: %v, want ErrClosed", err)
			}
			rep, err := VerifyJournal(o.Directory, ReadOptions{Strict: true})
			if err != nil || !rep.OK || rep.Events != 100 {
				t.Fatalf("VerifyJournal: %+v, %v", rep, err)
			}
		})
	}
}

func TestJournalRingFull(t *testing.T) {
	small := func(policy RingFullPolicy) JournalOptions {
		o := journalOptions(t.TempDir(), JournalWriterPoll)
		o.RingCells = 64
		o.MaxEntryBytes = 256
		o.OnFull = policy
		return o
	}
	t.Run("reject", func(t *testing.T) {
		j := openJournal(t, small(RingFullReject))
		var err error
		n := 0
		for ; n < 200 && err == nil; n++ {
			_, err = j.Append(&JournalEntry{})
		}
		wantStatus(t, err, ErrFull, "Append to a full ring")
		if s := journalStats(t, j); s.Rejected != 1 {
			t.Fatalf("Stats().Rejected = %d", s.Rejected)
		}
		drain(t, j)
		mustAppend(t, j, &JournalEntry{}) // room again
	})
	t.Run("drop", func(t *testing.T) {
		o := small(RingFullDrop)
		var dropEvents atomic.Uint64
		o.OnEvent = func(ev JournalEvent) {
			if ev.Type == JournalEventRecordsDropped {
				dropEvents.Add(ev.Count)
			}
		}
		j := openJournal(t, o)
		var err error
		appended := 0
		for err == nil {
			if _, err = j.Append(&JournalEntry{Account: "kept"}); err == nil {
				appended++
			}
		}
		wantStatus(t, err, ErrDropped, "Append to a full ring")
		_, err = j.Append(&JournalEntry{Account: "dropped"})
		wantStatus(t, err, ErrDropped, "second Append to a full ring")
		drain(t, j)
		if s := journalStats(t, j); s.Dropped != 2 || s.Written != uint64(appended) {
			t.Fatalf("Stats() = %+v, want 2 dropped, %d written", s, appended)
		}
		closeJournal(t, j)
		if dropEvents.Load() != 2 {
			t.Fatalf("records-dropped events counted %d", dropEvents.Load())
		}
		recs, problem := readAll(t, o.Directory, ReadOptions{})
		if problem != nil {
			t.Fatal(problem)
		}
		var drops []JournalRecord
		kept := 0
		for _, r := range events(recs) {
			switch {
			case r.Kind == JournalKindRecordsDropped:
				drops = append(drops, r)
			case r.Account == "kept":
				kept++
			default:
				t.Fatalf("unexpected event %+v", r)
			}
		}
		if len(drops) != 1 || kept != appended {
			t.Fatalf("%d records_dropped events and %d kept, want 1 and %d", len(drops), kept, appended)
		}
		in := drops[0].Inputs
		if len(in) != 16 || binary.LittleEndian.Uint64(in) != 2 || binary.LittleEndian.Uint64(in[8:]) != 2 {
			t.Fatalf("records_dropped inputs %x, want count 2, total 2", in)
		}
		if JournalKindRecordsDropped.String() != "records_dropped" {
			t.Fatalf("kind name %q", JournalKindRecordsDropped.String())
		}
	})
	t.Run("block", func(t *testing.T) {
		j := openJournal(t, small(RingFullBlock))
		done := make(chan struct{})
		var pollErr error
		go func() {
			defer close(done)
			for {
				n, err := j.Poll()
				if err != nil {
					pollErr = err
					return
				}
				if n == 0 {
					if s, _ := j.Stats(); s.Written == 1000 {
						return
					}
					runtime.Gosched()
				}
			}
		}()
		for i := 0; i < 1000; i++ {
			mustAppend(t, j, &JournalEntry{Route: uint32(i)})
		}
		<-done
		if pollErr != nil {
			t.Fatal(pollErr)
		}
		if s := journalStats(t, j); s.Rejected != 0 || s.Dropped != 0 {
			t.Fatalf("Stats() = %+v", s)
		}
	})
}

// The callback sees checkpoints and rotations; Poll, Sync, WaitDurable and
// Close called from it return ErrState, other calls work.
func TestJournalEvents(t *testing.T) {
	for _, mode := range []WriterMode{JournalWriterPoll, JournalWriterThread} {
		t.Run(mode.String(), func(t *testing.T) {
			o := journalOptions(t.TempDir(), mode)
			o.CheckpointEveryRecords = 10
			o.MaxSegmentBytes = 8192
			var (
				mu        sync.Mutex
				evs       []JournalEvent
				reentry   []error
				callbacks []error
				j         *Journal
				ready     = make(chan struct{})
			)
			o.OnEvent = func(ev JournalEvent) {
				mu.Lock()
				defer mu.Unlock()
				evs = append(evs, ev)
				if ev.Type != JournalEventCheckpoint || len(reentry) > 0 {
					return
				}
				<-ready
				_, perr := j.Poll()
				_, werr := j.WaitDurable(1, time.Millisecond)
				reentry = append(reentry, perr, j.Sync(), werr, j.Close())
				_, aerr := j.Append(&JournalEntry{Account: "from the callback"})
				_, serr := j.Stats()
				callbacks = append(callbacks, aerr, serr, j.Status())
			}
			var err error
			j, err = OpenJournal(o)
			if err != nil {
				t.Fatal(err)
			}
			close(ready)
			var last uint64
			for i := 0; i < 200; i++ {
				last = mustAppend(t, j, &JournalEntry{Account: "ACC", Inputs: make([]byte, 32)})
				if mode == JournalWriterPoll && i%25 == 0 {
					drain(t, j)
				}
			}
			if ok, err := j.WaitDurable(last, 5*time.Second); err != nil || !ok {
				t.Fatalf("WaitDurable = %v, %v", ok, err)
			}
			// The journal is still open: Close from the callback changed nothing.
			mustAppend(t, j, &JournalEntry{})
			closeJournal(t, j)
			mu.Lock()
			defer mu.Unlock()
			if len(reentry) != 4 {
				t.Fatalf("the callback never saw a checkpoint: %+v", evs)
			}
			for i, what := range []string{"Poll", "Sync", "WaitDurable", "Close"} {
				wantStatus(t, reentry[i], ErrState, what+" from the callback")
			}
			for i, err := range callbacks {
				if err != nil {
					t.Errorf("call %d from the callback: %v", i, err)
				}
			}
			var ckpts, rotations int
			var lastSeq uint64
			for _, ev := range evs {
				switch ev.Type {
				case JournalEventCheckpoint:
					if ev.Sequence <= lastSeq || ev.Head == [32]byte{} || ev.RealtimeNs == 0 {
						t.Errorf("checkpoint event %+v after sequence %d", ev, lastSeq)
					}
					lastSeq = ev.Sequence
					ckpts++
				case JournalEventRotated:
					rotations++
				case JournalEventIOError, JournalEventRecordsDropped, JournalEventTailTruncated:
					t.Errorf("unexpected event %v: %+v", ev.Type, ev)
				}
			}
			st, err := VerifyJournal(o.Directory, ReadOptions{Strict: true})
			if err != nil || !st.OK {
				t.Fatalf("VerifyJournal: %+v, %v", st, err)
			}
			if ckpts < 20 || rotations == 0 || uint64(rotations) != st.Segments-1 || st.Events != 202 {
				t.Fatalf("%d checkpoints, %d rotations; verify: %+v", ckpts, rotations, st)
			}
		})
	}
}

// A panic in the callback is not lost: the next Poll raises it.
func TestJournalEventPanic(t *testing.T) {
	o := journalOptions(t.TempDir(), JournalWriterPoll)
	o.CheckpointEveryRecords = 1
	var once sync.Once
	o.OnEvent = func(ev JournalEvent) {
		if ev.Type == JournalEventCheckpoint {
			once.Do(func() { panic("boom") })
		}
	}
	j := openJournal(t, o)
	mustAppend(t, j, &JournalEntry{})
	func() {
		defer func() {
			if r := recover(); r != "boom" {
				t.Fatalf("recovered %v, want boom", r)
			}
		}()
		j.Poll()
		t.Fatal("Poll did not raise the callback's panic")
	}()
	if _, err := j.Poll(); err != nil { // the journal carries on
		t.Fatal(err)
	}
	closeJournal(t, j)
}

// Goroutines append concurrently while one polls: every entry is written
// once, in ticket order, with consecutive sequence numbers.
func TestJournalConcurrentAppend(t *testing.T) {
	const writers, each = 4, 2000
	o := journalOptions(t.TempDir(), JournalWriterPoll)
	o.OnFull = RingFullBlock
	o.RingCells = 1024
	j := openJournal(t, o)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	polled := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				polled <- nil
				return
			default:
			}
			if n, err := j.Poll(); err != nil {
				polled <- err
				return
			} else if n == 0 {
				runtime.Gosched()
			}
		}
	}()
	tickets := make([][]uint64, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e := JournalEntry{Account: "W" + strconv.Itoa(w), Inputs: make([]byte, 8)}
			for i := 0; i < each; i++ {
				binary.LittleEndian.PutUint64(e.Inputs, uint64(i))
				ticket, err := j.Append(&e)
				if err != nil {
					t.Errorf("writer %d: Append: %v", w, err)
					return
				}
				tickets[w] = append(tickets[w], ticket)
			}
		}()
	}
	wg.Wait()
	close(stop)
	if err := <-polled; err != nil {
		t.Fatal(err)
	}
	closeJournal(t, j)
	var all []uint64
	for _, ts := range tickets {
		all = append(all, ts...)
	}
	sort.Slice(all, func(a, b int) bool { return all[a] < all[b] })
	for i := 1; i < len(all); i++ {
		if all[i] == all[i-1] {
			t.Fatalf("ticket %d issued twice", all[i])
		}
	}
	recs, problem := readAll(t, o.Directory, ReadOptions{Strict: true})
	if problem != nil {
		t.Fatal(problem)
	}
	next := make(map[string]uint64)
	n := 0
	for i, r := range recs {
		if i > 0 && r.Sequence != recs[i-1].Sequence+1 {
			t.Fatalf("sequence %d after %d", r.Sequence, recs[i-1].Sequence)
		}
		if r.Type != JournalRecordEvent {
			continue
		}
		// Each writer's entries are in its order.
		if got := binary.LittleEndian.Uint64(r.Inputs); got != next[r.Account] {
			t.Fatalf("%s: entry %d where %d was due", r.Account, got, next[r.Account])
		}
		next[r.Account]++
		n++
	}
	if n != writers*each || len(next) != writers {
		t.Fatalf("%d events from %d writers, want %d from %d", n, len(next), writers*each, writers)
	}
}

// writeJournal writes n decisions to a new, closed journal in dir.
func writeJournal(t testing.TB, dir string, n int) {
	t.Helper()
	j := openJournal(t, journalOptions(dir, JournalWriterPoll))
	for i := 0; i < n; i++ {
		mustAppend(t, j, &JournalEntry{Account: "ACC-" + strconv.Itoa(i%7), Route: 3, Inputs: make([]byte, 40),
			Payload: make([]byte, 100), RealtimeNs: 1_700_000_000_000_000_000 + uint64(i)})
		if i%300 == 0 {
			drain(t, j)
		}
	}
	closeJournal(t, j)
}

// A flipped byte is found and located by VerifyJournal and by the reader.
func TestJournalTamperedByte(t *testing.T) {
	dir := t.TempDir()
	writeJournal(t, dir, 1000)
	seg := filepath.Join(dir, "seg-0000000000000001.tgj")
	b, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	const at = 4000
	b[at] ^= 0x20
	if err := os.WriteFile(seg, b, 0o640); err != nil {
		t.Fatal(err)
	}
	rep, err := VerifyJournal(dir, ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p := rep.Problem
	if rep.OK || p == nil || p.Category != "record" || p.File != "seg-0000000000000001.tgj" ||
		p.Offset > at || p.Offset+300 < at || p.Segment != 1 || p.Message == "" {
		t.Fatalf("VerifyJournal of a flipped byte at %d: %+v, problem %+v", at, rep, p)
	}
	if !strings.Contains(p.Error(), "seg-0000000000000001.tgj at offset "+strconv.FormatUint(p.Offset, 10)) {
		t.Errorf("Problem.Error() = %q", p.Error())
	}
	recs, rp := readAll(t, dir, ReadOptions{})
	if rp == nil || rp.Offset != p.Offset || rp.Category != p.Category {
		t.Fatalf("reader problem %+v, want the verifier's %+v", rp, p)
	}
	if n := len(events(recs)); n == 0 || n >= 1000 {
		t.Fatalf("reader returned %d events before the damage", n)
	}
	// The iterator ends with the problem as its error.
	r, err := OpenJournalReader(dir, ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var last error
	count := 0
	for _, err := range r.Records() {
		count++
		last = err
	}
	var jp *JournalProblem
	if !errors.As(last, &jp) || jp.Offset != p.Offset || count != len(recs)+1 {
		t.Fatalf("Records() ended with %v after %d pairs, want the problem after %d", last, count, len(recs)+1)
	}
	// Replay stops at the damage too.
	rr, err := ReplayJournal(dir, ReadOptions{})
	if err != nil || rr.OK || rr.Problem == nil || rr.Problem.Offset != p.Offset {
		t.Fatalf("ReplayJournal of a damaged journal: %+v, %v", rr, err)
	}
}

func TestJournalPinnedKey(t *testing.T) {
	dir := t.TempDir()
	writeJournal(t, dir, 10)
	key, err := Ed25519PublicKey(testSeed(1))
	if err != nil {
		t.Fatal(err)
	}
	if rep, err := VerifyJournal(dir, ReadOptions{PublicKey: &key}); err != nil || !rep.OK || rep.Key != key {
		t.Fatalf("the right key: %+v, %v", rep, err)
	}
	wrong := key
	wrong[0] ^= 1
	rep, err := VerifyJournal(dir, ReadOptions{PublicKey: &wrong})
	if err != nil || rep.OK || rep.Problem == nil || rep.Problem.Category != "manifest" {
		t.Fatalf("a wrong pinned key: %+v (problem %+v), %v", rep, rep.Problem, err)
	}
	recs, p := readAll(t, dir, ReadOptions{PublicKey: &wrong})
	if len(recs) != 0 || p == nil || p.Category != "manifest" {
		t.Fatalf("reader with a wrong key: %d records, problem %+v", len(recs), p)
	}
	if rr, err := ReplayJournal(dir, ReadOptions{PublicKey: &wrong}); err != nil || rr.OK || rr.Problem == nil {
		t.Fatalf("replay with a wrong key: %+v, %v", rr, err)
	}
	// Another seed cannot continue the journal.
	o := journalOptions(dir, JournalWriterPoll)
	o.SigningSeed = testSeed(2)
	j, err := OpenJournal(o)
	if j != nil {
		j.Close()
	}
	wantStatus(t, err, ErrInvalid, "OpenJournal with another key")
}

// A limiter with a parent and a hash seed, and a breaker, recorded through
// a simulated run; lieAt >= 0 falsifies that decision. It returns the
// number of decisions recorded.
func recordRun(t *testing.T, dir string, lieAt int) uint64 {
	t.Helper()
	const ms = uint64(time.Millisecond)
	j := openJournal(t, journalOptions(dir, JournalWriterPoll))
	firm := newLimiter(t, LimiterOptions{Tiers: []Tier{{Name: "t", Rate: 5000, Burst: 40}}, HashSeed: 0x5eed})
	lim := newLimiter(t, LimiterOptions{
		Tiers:    []Tier{{Name: "retail", Rate: 1000, Burst: 5}, {Name: "pro", Rate: 3000, Burst: 9}},
		Capacity: 8, Parent: firm, HashSeed: 0xfeedface,
	})
	b := newBreaker(t, BreakerOptions{WindowSize: 10, MinimumCalls: 5, OpenDuration: 20 * time.Millisecond})
	var recErr atomic.Pointer[error]
	if err := b.OnEvent(func(ev Event) {
		if _, err := j.RecordBreakerTransition(2, ev, nil); err != nil {
			recErr.CompareAndSwap(nil, &err)
		}
	}); err != nil {
		t.Fatal(err)
	}
	check := func(_ uint64, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	check(j.RecordLimiterDefine(10, firm, NoParent, &RecordContext{Account: "config", ConfigVersion: 1}))
	check(j.RecordLimiterDefine(1, lim, 10, nil))
	check(j.RecordBreakerDefine(2, b, nil))
	now := 1000 * ms
	var decisions uint64
	ctx := RecordContext{Route: 7, Venue: 2, ConfigVersion: 1, Payload: []byte("order")}
	for i := 0; i < 600; i++ {
		key := "K" + strconv.Itoa(i%11) // more keys than the capacity: placement matters
		tier := uint32(i % 2)
		now += 100_000
		ctx.Account = key
		switch {
		case i == 150:
			check(nil2(lim.SetMultiplier(0.5, now)))
			check(j.RecordLimiterMultiplier(1, 0.5, now, &ctx))
		case i == 300:
			check(nil2(lim.SetShadow(true)))
			check(j.RecordLimiterShadow(1, true, &ctx))
		case i == 350:
			check(nil2(lim.SetShadow(false)))
			check(j.RecordLimiterShadow(1, false, &ctx))
		case i == 450:
			check(nil2(b.Transition(StateForcedOpen, now)))
			check(j.RecordBreakerForce(2, StateForcedOpen, now, &ctx))
		case i == 470:
			check(nil2(b.Transition(StateClosed, now)))
			check(j.RecordBreakerForce(2, StateClosed, now, &ctx))
		}
		var d Decision
		if i%10 == 3 {
			res, err := lim.ReserveString(key, tier, 1, now)
			if err != nil {
				t.Fatal(err)
			}
			check(j.RecordLimiterReserve(1, []byte(key), tier, 1, now, &res, &ctx))
			decisions++
			if res.Decision.Allowed && i%20 == 3 {
				if err := res.Cancel(now); err != nil {
					t.Fatal(err)
				}
				check(j.RecordLimiterCancelString(1, key, &res, now, &ctx))
			}
			d = res.Decision
		} else {
			var err error
			d, err = lim.AcquireString(key, tier, 1, now)
			if err != nil {
				t.Fatal(err)
			}
			rec := d
			if i == lieAt {
				rec.Allowed = !rec.Allowed
			}
			if i%2 == 0 {
				check(j.RecordLimiterAcquireString(1, key, tier, 1, now, rec, &ctx))
			} else {
				check(j.RecordLimiterAcquire(1, []byte(key), tier, 1, now, rec, &ctx))
			}
			decisions++
		}
		if !d.Allowed {
			continue
		}
		p, err := b.Acquire(now)
		if err != nil {
			t.Fatal(err)
		}
		check(j.RecordBreakerAcquire(2, now, p, &ctx))
		decisions++
		if p.Allowed {
			outcome := OutcomeSuccess
			if i > 200 && i < 260 {
				outcome = OutcomeFailure
			}
			brecord(t, b, p, outcome, 1000, now+1000)
			check(j.RecordBreakerOutcome(2, p, outcome, 1000, now+1000, &ctx))
		}
		if i%100 == 0 {
			drain(t, j)
		}
	}
	if p := recErr.Load(); p != nil {
		t.Fatal(*p)
	}
	if s := bstats(t, b, now); s.Transitions < 4 {
		t.Fatalf("the run made %d breaker transitions; it should open the breaker", s.Transitions)
	}
	if s := limiterStats(t, lim); s.Rejected == 0 || s.CapacityRejected+s.Evictions == 0 {
		t.Fatalf("the run should reject and fill the table: %+v", s)
	}
	b.OnEvent(nil)
	closeJournal(t, j)
	return decisions
}

func nil2(err error) (uint64, error) { return 0, err }

func TestJournalRecordAndReplay(t *testing.T) {
	dir := t.TempDir()
	decisions := recordRun(t, dir, -1)
	rep, err := ReplayJournal(dir, ReadOptions{Strict: true})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK || rep.Mismatches != 0 || rep.Issues != 0 || rep.Problem != nil || rep.FirstMismatch != nil ||
		rep.FirstIssue != nil || rep.Decisions != decisions || rep.Instances != 3 || rep.Transitions < 4 ||
		rep.Replayed < decisions || rep.Records <= rep.Replayed || rep.Other != 0 {
		t.Fatalf("ReplayJournal of an honest run (%d decisions): %+v, mismatch %+v, issue %+v",
			decisions, rep, rep.FirstMismatch, rep.FirstIssue)
	}
	// The define records carry the hierarchy and the hash seeds.
	recs, problem := readAll(t, dir, ReadOptions{})
	if problem != nil {
		t.Fatal(problem)
	}
	evs := events(recs)
	firm, ok, err := DescribeInputs(evs[0].Inputs)
	if err != nil || !ok || !strings.Contains(firm, `"op":"define","instance":10`) ||
		!strings.Contains(firm, fmt.Sprintf(`"hash_seed":%d`, 0x5eed)) || evs[0].Kind != JournalKindConfigChange ||
		evs[0].Account != "config" || evs[0].ConfigVersion != 1 {
		t.Fatalf("the parent's define: %s (%v, %v), record %+v", firm, ok, err, evs[0])
	}
	child, ok, err := DescribeInputs(evs[1].Inputs)
	if err != nil || !ok || !strings.Contains(child, `"parent":10`) ||
		!strings.Contains(child, fmt.Sprintf(`"hash_seed":%d`, 0xfeedface)) || !strings.Contains(child, `"name":"pro"`) {
		t.Fatalf("the child's define: %s (%v, %v)", child, ok, err)
	}
	if desc, ok, _ := DescribeInputs(evs[2].Inputs); !ok || !strings.Contains(desc, `"component":"breaker","op":"define"`) {
		t.Fatalf("the breaker's define: %s", desc)
	}
	var sawDecision bool
	for _, e := range evs[3:] {
		if e.Kind == JournalKindDecision && e.Route == 7 && e.Venue == 2 && strings.HasPrefix(e.Account, "K") &&
			e.PayloadDigest == sha256.Sum256([]byte("order")) && e.Payload == nil {
			sawDecision = true
			break
		}
	}
	if !sawDecision {
		t.Fatal("no decision record carries the context (route, venue, account, payload digest)")
	}

	// A falsified decision is reported.
	dir2 := t.TempDir()
	recordRun(t, dir2, 124)
	rep, err = ReplayJournal(dir2, ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m := rep.FirstMismatch
	if rep.OK || rep.Mismatches != 1 || m == nil || m.Component != ReplayLimiter || m.Instance != 1 ||
		m.Sequence == 0 || m.Recorded == m.Replayed || m.Recorded == "" || m.Segment != 1 || m.Offset == 0 {
		t.Fatalf("ReplayJournal of a falsified run: %+v, mismatch %+v", rep, m)
	}
	if m.Component.String() != "limiter" {
		t.Fatalf("component %q", m.Component.String())
	}
}

func TestJournalDescribeAndKindNames(t *testing.T) {
	names := map[uint16]string{
		1: "decision", 2: "breaker_transition", 3: "config_change", 4: "key_revocation", 5: "kill_switch",
		6: "risk_check", 0x8001: "host:0x8001", 0xFF00: "records_dropped", 0xFF01: "tail_truncated",
	}
	for k, want := range names {
		if got := JournalKindName(k); got != want {
			t.Errorf("JournalKindName(%#x) = %q, want %q", k, got, want)
		}
	}
	if got := JournalKind(7).String(); !strings.HasPrefix(got, "unknown:") {
		t.Errorf("JournalKind(7) = %q", got)
	}
	for _, in := range [][]byte{nil, {}, {1, 2, 3}} {
		if s, ok, err := DescribeInputs(in); s != "" || ok || err != nil {
			t.Errorf("DescribeInputs(%v) = %q, %v, %v; want not replay inputs", in, s, ok, err)
		}
	}
	if s, ok, err := DescribeInputs([]byte{0x72, 0x01, 0x01, 0x02, 0, 0, 0, 0, 9}); err != nil || !ok || !strings.Contains(s, `"error"`) {
		t.Errorf("malformed replay inputs: %q, %v, %v", s, ok, err)
	}
	// A description longer than the first buffer.
	dir := t.TempDir()
	j := openJournal(t, journalOptions(dir, JournalWriterPoll))
	key := strings.Repeat("k", 1024)
	if _, err := j.RecordLimiterAcquireString(4, key, 0, 2, 77, Decision{Allowed: true, Remaining: 3}, nil); err != nil {
		t.Fatal(err)
	}
	closeJournal(t, j)
	recs, _ := readAll(t, dir, ReadOptions{})
	ev := events(recs)[0]
	desc, ok, err := DescribeInputs(ev.Inputs)
	if err != nil || !ok || !strings.HasPrefix(desc, `{"component":"limiter","op":"acquire","instance":4,"key":"`+key+`",`) {
		t.Fatalf("DescribeInputs = %.80q..., %v, %v", desc, ok, err)
	}
	if ev.Verdict != JournalVerdictAllowed || ev.Kind != JournalKindDecision {
		t.Fatalf("an admitted decision's record: %+v", ev)
	}
}

// The helper process of the crash and I/O fault tests: it runs only when
// TOLLGATE_JOURNAL_CHILD is set, in a process of its own.
func TestJournalHelperProcess(t *testing.T) {
	role := os.Getenv("TOLLGATE_JOURNAL_CHILD")
	if role == "" {
		t.Skip("helper process of TestJournalCrashRecovery and TestJournalIOError")
	}
	dir := os.Getenv("TOLLGATE_JOURNAL_DIR")
	switch role {
	case "crash": // write, never close: the process dies with the segment open
		j, err := OpenJournal(journalOptions(dir, JournalWriterPoll))
		if err != nil {
			fmt.Println("open:", err)
			os.Exit(2)
		}
		for i := 0; i < 50; i++ {
			j.Append(&JournalEntry{Account: "crash"})
		}
		if err := j.Sync(); err != nil {
			fmt.Println("sync:", err)
			os.Exit(2)
		}
		os.Exit(0)
	case "fsize": // a file size limit: the journal stops with EFBIG
		var errno atomic.Int64
		o := journalOptions(dir, JournalWriterPoll)
		o.OnEvent = func(ev JournalEvent) {
			if ev.Type == JournalEventIOError && ev.Status == ErrIO {
				errno.Store(int64(ev.Errno))
			}
		}
		j, err := OpenJournal(o)
		if err != nil {
			fmt.Println("open:", err)
			os.Exit(2)
		}
		lim := syscall.Rlimit{Cur: 64 << 10, Max: 64 << 10}
		if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
			fmt.Println("setrlimit:", err)
			os.Exit(3)
		}
		var pollErr error
		written := uint64(0)
		for i := 0; i < 100000 && pollErr == nil; i++ {
			if _, err := j.Append(&JournalEntry{Account: "fsize", Inputs: make([]byte, 200)}); err != nil {
				pollErr = err
				break
			}
			if i%20 == 19 {
				if _, pollErr = j.Poll(); pollErr == nil {
					s, _ := j.Stats()
					written = s.Written
				}
			}
		}
		_, appendErr := j.Append(&JournalEntry{})
		statusErr := j.Status()
		closeErr := j.Close()
		fmt.Printf("written=%d errno=%d poll=%v append=%v status=%v close=%v\n", written, errno.Load(),
			errors.Is(pollErr, ErrIO), errors.Is(appendErr, ErrIO), errors.Is(statusErr, ErrIO), closeErr != nil)
		os.Exit(0)
	}
}

func runHelper(t *testing.T, role, dir string) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestJournalHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), "TOLLGATE_JOURNAL_CHILD="+role, "TOLLGATE_JOURNAL_DIR="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper %s: %v\n%s", role, err, out)
	}
	return string(out)
}

// A process that dies with its segment open leaves a journal that reopens;
// a torn tail is cut, reported to the callback and in Recovery.
func TestJournalCrashRecovery(t *testing.T) {
	dir := t.TempDir()
	runHelper(t, "crash", dir)
	segs, _ := filepath.Glob(filepath.Join(dir, "seg-*.tgj"))
	if len(segs) == 0 {
		t.Fatal("no segment written")
	}
	sort.Strings(segs)
	garbage := []byte{0x40, 0, 0, 0, 1, 2, 3} // the start of a frame, cut short
	f, err := os.OpenFile(segs[len(segs)-1], os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(garbage)
	f.Close()
	rep, err := VerifyJournal(dir, ReadOptions{})
	if err != nil || !rep.OK || rep.Closed || rep.FirstWarning == nil || rep.WarningCount == 0 {
		t.Fatalf("VerifyJournal of a crashed journal: %+v, %v", rep, err)
	}
	if rep, _ := VerifyJournal(dir, ReadOptions{Strict: true}); rep.OK {
		t.Fatal("strict verification accepted a torn tail")
	}
	r, err := OpenJournalReader(dir, ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for range r.Records() {
	}
	if w, err := r.Warnings(); err != nil || len(w) == 0 {
		t.Fatalf("reader warnings: %v, %v", w, err)
	}
	r.Close()

	var truncated atomic.Pointer[JournalEvent]
	o := journalOptions(dir, JournalWriterPoll)
	o.OnEvent = func(ev JournalEvent) {
		if ev.Type == JournalEventTailTruncated {
			truncated.Store(&ev)
		}
	}
	j := openJournal(t, o)
	rec, err := j.Recovery()
	if err != nil || rec.Created || !rec.TailTruncated || rec.BytesRemoved != uint64(len(garbage)) || rec.Records == 0 {
		t.Fatalf("Recovery() = %+v, %v", rec, err)
	}
	ev := truncated.Load()
	if ev == nil || ev.Count != uint64(len(garbage)) || ev.Offset != rec.Offset {
		t.Fatalf("tail-truncated event %+v, recovery %+v", ev, rec)
	}
	closeJournal(t, j)
	recs, problem := readAll(t, dir, ReadOptions{Strict: true})
	if problem != nil {
		t.Fatal(problem)
	}
	crash, tails := 0, 0
	for _, r := range events(recs) {
		switch {
		case r.Account == "crash":
			crash++
		case r.Kind == JournalKindTailTruncated:
			tails++
		}
	}
	if crash != 50 || tails != 1 {
		t.Fatalf("%d of 50 synced entries and %d tail_truncated events survived", crash, tails)
	}
}

// A write error (a file size limit) stops the journal: the event, Status,
// Poll, Append and Close report ErrIO; what was written stays readable.
func TestJournalIOError(t *testing.T) {
	dir := t.TempDir()
	out := runHelper(t, "fsize", dir)
	var written, errno uint64
	var poll, app, status, closed bool
	line := out[strings.Index(out, "written="):]
	if _, err := fmt.Sscanf(line, "written=%d errno=%d poll=%t append=%t status=%t close=%t",
		&written, &errno, &poll, &app, &status, &closed); err != nil {
		t.Fatalf("helper output %q: %v", out, err)
	}
	if syscall.Errno(errno) != syscall.EFBIG || !poll || !app || !status || !closed || written == 0 {
		t.Fatalf("helper: %s", line)
	}
	recs, _ := readAll(t, dir, ReadOptions{})
	if n := uint64(len(events(recs))); n < written {
		t.Fatalf("%d events readable, %d were reported written", n, written)
	}
}

// Every method of a nil or closed journal or reader, and every function
// given bad input, returns an error; none crashes.
func TestJournalBadInput(t *testing.T) {
	dir := t.TempDir()
	closed, err := OpenJournal(journalOptions(filepath.Join(dir, "closed"), JournalWriterPoll))
	if err != nil {
		t.Fatal(err)
	}
	closed.Close()
	lim := newLimiter(t, LimiterOptions{})
	br := newBreaker(t, BreakerOptions{})
	res, _ := lim.Reserve([]byte("k"), 0, 1, t0)
	calls := map[string]func(j *Journal) error{
		"Append":         func(j *Journal) error { _, err := j.Append(&JournalEntry{}); return err },
		"IsWritten":      func(j *Journal) error { _, err := j.IsWritten(1); return err },
		"IsDurable":      func(j *Journal) error { _, err := j.IsDurable(1); return err },
		"WaitDurable":    func(j *Journal) error { _, err := j.WaitDurable(1, time.Millisecond); return err },
		"Poll":           func(j *Journal) error { _, err := j.Poll(); return err },
		"Sync":           func(j *Journal) error { return j.Sync() },
		"Status":         func(j *Journal) error { return j.Status() },
		"Stats":          func(j *Journal) error { _, err := j.Stats(); return err },
		"Recovery":       func(j *Journal) error { _, err := j.Recovery(); return err },
		"ID":             func(j *Journal) error { _, err := j.ID(); return err },
		"PublicKey":      func(j *Journal) error { _, err := j.PublicKey(); return err },
		"LimiterDefine":  func(j *Journal) error { _, err := j.RecordLimiterDefine(1, lim, NoParent, nil); return err },
		"LimiterAcquire": func(j *Journal) error { _, err := j.RecordLimiterAcquire(1, nil, 0, 1, 1, Decision{}, nil); return err },
		"LimiterAcquireS": func(j *Journal) error {
			_, err := j.RecordLimiterAcquireString(1, "", 0, 1, 1, Decision{}, nil)
			return err
		},
		"LimiterReserve":  func(j *Journal) error { _, err := j.RecordLimiterReserve(1, nil, 0, 1, 1, &res, nil); return err },
		"LimiterReserveS": func(j *Journal) error { _, err := j.RecordLimiterReserveString(1, "k", 0, 1, 1, &res, nil); return err },
		"LimiterCancel":   func(j *Journal) error { _, err := j.RecordLimiterCancel(1, nil, &res, 1, nil); return err },
		"LimiterCancelS":  func(j *Journal) error { _, err := j.RecordLimiterCancelString(1, "k", &res, 1, nil); return err },
		"LimiterMultiply": func(j *Journal) error { _, err := j.RecordLimiterMultiplier(1, 2, 1, nil); return err },
		"LimiterShadow":   func(j *Journal) error { _, err := j.RecordLimiterShadow(1, true, nil); return err },
		"BreakerDefine":   func(j *Journal) error { _, err := j.RecordBreakerDefine(2, br, nil); return err },
		"BreakerAcquire":  func(j *Journal) error { _, err := j.RecordBreakerAcquire(2, 1, Permit{}, nil); return err },
		"BreakerOutcome": func(j *Journal) error {
			_, err := j.RecordBreakerOutcome(2, Permit{}, OutcomeSuccess, 0, 1, nil)
			return err
		},
		"BreakerForce": func(j *Journal) error { _, err := j.RecordBreakerForce(2, StateOpen, 1, nil); return err },
		"BreakerTransition": func(j *Journal) error {
			_, err := j.RecordBreakerTransition(2, Event{From: StateClosed, To: StateOpen}, nil)
			return err
		},
	}
	for name, call := range calls {
		wantStatus(t, call(nil), ErrInvalid, name+" on a nil journal")
		if err := call(closed); err != ErrClosed {
			t.Errorf("%s on a closed journal: %v, want ErrClosed", name, err)
		}
	}
	var nilJ *Journal
	if err := nilJ.Close(); err != nil {
		t.Errorf("Close of a nil journal: %v", err)
	}

	// Options.
	okDir := filepath.Join(dir, "ok")
	opt := func(f func(*JournalOptions)) JournalOptions {
		o := journalOptions(okDir, JournalWriterPoll)
		f(&o)
		return o
	}
	unknown := filepath.Join(dir, "unknown")
	os.MkdirAll(unknown, 0o750)
	os.WriteFile(filepath.Join(unknown, "seg-0000000000000001.tgj"), []byte("x"), 0o640)
	noDir := filepath.Join(dir, "nothing")
	bad := []struct {
		name string
		o    JournalOptions
		want Status
	}{
		{"empty directory", opt(func(o *JournalOptions) { o.Directory = "" }), ErrInvalid},
		{"NUL in directory", opt(func(o *JournalOptions) { o.Directory += "\x00x" }), ErrInvalid},
		{"zero seed", opt(func(o *JournalOptions) { o.SigningSeed = [32]byte{} }), ErrInvalid},
		{"mode", opt(func(o *JournalOptions) { o.Mode = 2 }), ErrInvalid},
		{"durability", opt(func(o *JournalOptions) { o.Durability = 4 }), ErrInvalid},
		{"on full", opt(func(o *JournalOptions) { o.OnFull = 3 }), ErrInvalid},
		{"ring not a power of two", opt(func(o *JournalOptions) { o.RingCells = 100 }), ErrInvalid},
		{"entry larger than the ring", opt(func(o *JournalOptions) { o.RingCells, o.MaxEntryBytes = 64, 4096 }), ErrInvalid},
		{"tiny segments", opt(func(o *JournalOptions) { o.MaxSegmentBytes = 100 }), ErrInvalid},
		{"negative SyncEvery", opt(func(o *JournalOptions) { o.SyncEvery = -1 }), ErrRange},
		{"negative CheckpointEvery", opt(func(o *JournalOptions) { o.CheckpointEvery = -time.Second }), ErrRange},
		{"negative MaxSegmentAge", opt(func(o *JournalOptions) { o.MaxSegmentAge = -1 }), ErrRange},
		{"negative IdleSleep", opt(func(o *JournalOptions) { o.IdleSleep = -1 }), ErrRange},
		{"parent directory missing", opt(func(o *JournalOptions) { o.Directory = filepath.Join(dir, "a", "b", "c") }), ErrIO},
		{"MustExist without a journal", opt(func(o *JournalOptions) { o.Directory, o.MustExist = noDir, true }), ErrNotFound},
		{"unknown segment files", opt(func(o *JournalOptions) { o.Directory = unknown }), ErrState},
	}
	for _, c := range bad {
		called := false
		c.o.OnEvent = func(JournalEvent) { called = true }
		j, err := OpenJournal(c.o)
		if j != nil {
			j.Close()
			t.Errorf("%s: accepted", c.name)
			continue
		}
		wantStatus(t, err, c.want, c.name)
		if called {
			t.Errorf("%s: the callback ran for a journal that did not open", c.name)
		}
	}
	// Sub-unit durations round up rather than becoming 0 (the default).
	j := openJournal(t, opt(func(o *JournalOptions) {
		o.SyncEvery, o.CheckpointEvery, o.MaxSegmentAge, o.IdleSleep = 1, 1, 1, 1
		o.Durability = DurabilityEveryT
	}))

	// Appends and records.
	wantStatus(t, nil2err(j.Append(nil)), ErrInvalid, "Append(nil)")
	wantStatus(t, nil2err(j.Append(&JournalEntry{Account: strings.Repeat("a", 256)})), ErrRange, "account of 256 bytes")
	wantStatus(t, nil2err(j.Append(&JournalEntry{Inputs: make([]byte, 5000)})), ErrRange, "entry over MaxEntryBytes")
	for _, k := range []JournalKind{7, 0x7FFF, JournalKindHostLast + 1, JournalKindRecordsDropped, JournalKindTailTruncated, 0xFFFF} {
		wantStatus(t, nil2err(j.Append(&JournalEntry{Kind: k})), ErrInvalid, fmt.Sprintf("kind %#x", uint16(k)))
	}
	closedLim := newLimiter(t, LimiterOptions{})
	closedLim.Close()
	closedBr := newBreaker(t, BreakerOptions{})
	closedBr.Close()
	long := strings.Repeat("k", 1025)
	recs := []struct {
		name string
		err  error
		want Status
	}{
		{"define nil limiter", nil2err(j.RecordLimiterDefine(1, nil, NoParent, nil)), ErrInvalid},
		{"define closed limiter", nil2err(j.RecordLimiterDefine(1, closedLim, NoParent, nil)), ErrInvalid},
		{"acquire key of 1025 bytes", nil2err(j.RecordLimiterAcquireString(1, long, 0, 1, 1, Decision{}, nil)), ErrRange},
		{"reserve nil", nil2err(j.RecordLimiterReserve(1, nil, 0, 1, 1, nil, nil)), ErrInvalid},
		{"cancel nil", nil2err(j.RecordLimiterCancel(1, nil, nil, 1, nil)), ErrInvalid},
		{"context account of 256 bytes", nil2err(j.RecordLimiterMultiplier(1, 2, 1, &RecordContext{Account: strings.Repeat("a", 256)})), ErrRange},
		{"define nil breaker", nil2err(j.RecordBreakerDefine(2, nil, nil)), ErrInvalid},
		{"define closed breaker", nil2err(j.RecordBreakerDefine(2, closedBr, nil)), ErrInvalid},
		{"permit state", nil2err(j.RecordBreakerAcquire(2, 1, Permit{State: 9}, nil)), ErrInvalid},
		{"permit reason", nil2err(j.RecordBreakerAcquire(2, 1, Permit{Reason: -1}, nil)), ErrInvalid},
		{"outcome", nil2err(j.RecordBreakerOutcome(2, Permit{}, 3, 0, 1, nil)), ErrInvalid},
		{"outcome permit", nil2err(j.RecordBreakerOutcome(2, Permit{State: 7}, OutcomeSuccess, 0, 1, nil)), ErrInvalid},
		{"force state", nil2err(j.RecordBreakerForce(2, 7, 1, nil)), ErrInvalid},
		{"transition to", nil2err(j.RecordBreakerTransition(2, Event{To: -1}, nil)), ErrInvalid},
		{"transition from", nil2err(j.RecordBreakerTransition(2, Event{From: 8}, nil)), ErrInvalid},
	}
	for _, c := range recs {
		wantStatus(t, c.err, c.want, c.name)
	}
	if _, err := j.RecordLimiterMultiplier(1, 2, 1, &RecordContext{Account: strings.Repeat("a", 255)}); err != nil {
		t.Errorf("a context account of 255 bytes: %v", err)
	}
	wantStatus(t, nil2err(boolErr(j.WaitDurable(0, time.Millisecond))), ErrInvalid, "WaitDurable(ticket 0)")
	wantStatus(t, nil2err(boolErr(j.WaitDurable(1, -time.Millisecond))), ErrInvalid, "WaitDurable(negative)")

	// Readers, verification, replay.
	var nilR *JournalReader
	if _, ok := nilR.Next(); ok {
		t.Error("Next on a nil reader")
	}
	_, err = nilR.Problem()
	wantStatus(t, err, ErrInvalid, "Problem on a nil reader")
	_, err = nilR.Warnings()
	wantStatus(t, err, ErrInvalid, "Warnings on a nil reader")
	if err := nilR.Close(); err != nil {
		t.Error(err)
	}
	for _, err := range nilR.Records() {
		wantStatus(t, err, ErrInvalid, "Records on a nil reader")
	}
	r, err := OpenJournalReader(filepath.Join(dir, "closed"), ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	r.Close()
	if _, ok := r.Next(); ok {
		t.Error("Next on a closed reader")
	}
	if _, err := r.Problem(); err != ErrClosed {
		t.Errorf("Problem on a closed reader: %v", err)
	}
	if _, err := r.Warnings(); err != ErrClosed {
		t.Errorf("Warnings on a closed reader: %v", err)
	}
	for _, d := range []struct {
		dir  string
		want Status
	}{{"", ErrInvalid}, {"a\x00b", ErrInvalid}, {noDir, ErrNotFound}} {
		r, err := OpenJournalReader(d.dir, ReadOptions{})
		if r != nil {
			r.Close()
		}
		wantStatus(t, err, d.want, fmt.Sprintf("OpenJournalReader(%q)", d.dir))
		vr, err := VerifyJournal(d.dir, ReadOptions{})
		wantStatus(t, err, d.want, fmt.Sprintf("VerifyJournal(%q) = %+v", d.dir, vr))
		rr, err := ReplayJournal(d.dir, ReadOptions{})
		wantStatus(t, err, d.want, fmt.Sprintf("ReplayJournal(%q) = %+v", d.dir, rr))
	}
	// A directory that is not a journal verifies as not OK, or errors.
	empty := t.TempDir()
	if rep, err := VerifyJournal(empty, ReadOptions{}); err == nil && rep.OK {
		t.Errorf("an empty directory verifies: %+v", rep)
	}
	if _, err := Ed25519PublicKey([32]byte{}); err != nil {
		t.Errorf("Ed25519PublicKey of the zero seed: %v", err)
	}
	if a, b := mustKey(t, testSeed(1)), mustKey(t, testSeed(2)); a == b {
		t.Error("two seeds, one key")
	}
}

func nil2err(_ uint64, err error) error { return err }
func boolErr(_ bool, err error) (uint64, error) {
	return 0, err
}

func mustKey(t *testing.T, seed [32]byte) [32]byte {
	t.Helper()
	k, err := Ed25519PublicKey(seed)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Append, the record functions and Poll allocate nothing: the entry's
// bytes are passed to C without copying, its scalars in a C struct on the
// Go stack.
func TestJournalAppendDoesNotAllocate(t *testing.T) {
	o := journalOptions(t.TempDir(), JournalWriterPoll)
	o.Durability = DurabilityNone
	j := openJournal(t, o)
	lim := newLimiter(t, oneTier(1e9, 1000))
	b := newBreaker(t, BreakerOptions{})
	account := string([]byte("ACC-000001")) // on the heap, as a host's would be
	inputs := make([]byte, 48)
	payload := make([]byte, 200)
	digest := sha256.Sum256(payload)
	ctx := &RecordContext{Account: account, Route: 1, Payload: payload}
	now := t0
	n := 0
	poll := func() {
		if n++; n%64 == 0 {
			if _, err := j.Poll(); err != nil {
				t.Fatal(err)
			}
		}
	}
	checks := map[string]func(){
		"Append": func() {
			e := JournalEntry{Account: account, Route: 1, Venue: 2, Verdict: 1, Inputs: inputs, Payload: payload, StorePayload: true}
			if _, err := j.Append(&e); err != nil {
				t.Fatal(err)
			}
			poll()
		},
		"Append(digest)": func() {
			if _, err := j.Append(&JournalEntry{Account: account, Payload: payload, PayloadDigest: &digest}); err != nil {
				t.Fatal(err)
			}
			poll()
		},
		"Append(literal)": func() {
			if _, err := j.Append(&JournalEntry{Account: "literal", Inputs: []byte{1, 2, 3}}); err != nil {
				t.Fatal(err)
			}
			poll()
		},
		"RecordLimiterAcquire": func() {
			now += 1000
			d, _ := lim.AcquireString(account, 0, 1, now)
			if _, err := j.RecordLimiterAcquireString(1, account, 0, 1, now, d, ctx); err != nil {
				t.Fatal(err)
			}
			poll()
		},
		"RecordBreakerAcquire+Outcome": func() {
			p, _ := b.Acquire(now)
			if _, err := j.RecordBreakerAcquire(2, now, p, ctx); err != nil {
				t.Fatal(err)
			}
			b.Record(p, OutcomeSuccess, 10, now)
			if _, err := j.RecordBreakerOutcome(2, p, OutcomeSuccess, 10, now, nil); err != nil {
				t.Fatal(err)
			}
			poll()
		},
		"IsWritten+IsDurable+Stats": func() {
			j.IsWritten(1)
			j.IsDurable(1)
			j.Stats()
		},
		"Poll": func() {
			if _, err := j.Poll(); err != nil {
				t.Fatal(err)
			}
		},
	}
	for name, f := range checks {
		f()
		if allocs := testing.AllocsPerRun(500, f); allocs != 0 {
			t.Errorf("%s allocates %.2f times per call", name, allocs)
		}
	}
	drain(t, j)
	full := openJournal(t, func() JournalOptions {
		o := journalOptions(t.TempDir(), JournalWriterPoll)
		o.RingCells, o.MaxEntryBytes = 64, 256
		return o
	}())
	for {
		if _, err := full.Append(&JournalEntry{}); err != nil {
			break
		}
	}
	if allocs := testing.AllocsPerRun(100, func() { full.Append(&JournalEntry{}) }); allocs != 0 {
		t.Errorf("a refused Append (ErrFull) allocates %.2f times", allocs)
	}
	if s := journalStats(t, j); s.Written == 0 || s.Rejected != 0 {
		t.Fatalf("Stats() = %+v", s)
	}
}

// An unclosed journal and reader are released by their finalizers.
func TestJournalFinalizer(t *testing.T) {
	dir := t.TempDir()
	func() {
		j, err := OpenJournal(journalOptions(dir, JournalWriterThread))
		if err != nil {
			t.Fatal(err)
		}
		j.Append(&JournalEntry{Account: "finalized"})
	}()
	// The finalizer closes the journal cleanly: sealed, with the entry.
	// (Until it has run, verification sees an open journal.)
	var rep VerifyReport
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		runtime.GC()
		time.Sleep(2 * time.Millisecond)
		var err error
		if rep, err = VerifyJournal(dir, ReadOptions{Strict: true}); err == nil && rep.OK && rep.Closed {
			break
		}
	}
	if !rep.OK || !rep.Closed || rep.Events != 1 {
		t.Fatalf("VerifyJournal after the finalizer: %+v", rep)
	}
	r, err := OpenJournalReader(dir, ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_ = r // dropped unclosed: its finalizer releases it
}

// Close races appends and pollers: every call returns, nothing crashes,
// and every ticket handed out is in the journal.
func TestJournalCloseRace(t *testing.T) {
	for round := 0; round < 5; round++ {
		o := journalOptions(t.TempDir(), JournalWriterPoll)
		j, err := OpenJournal(o)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var issued atomic.Int64
		start := make(chan struct{})
		for w := 0; w < 3; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				for {
					if _, err := j.Append(&JournalEntry{Account: "race"}); err != nil {
						if errors.Is(err, ErrFull) {
							runtime.Gosched()
							continue
						}
						if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrState) {
							t.Errorf("Append racing Close: %v", err)
						}
						return
					}
					issued.Add(1)
				}
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for {
				if _, err := j.Poll(); err != nil {
					return
				}
			}
		}()
		close(start)
		time.Sleep(time.Millisecond)
		if err := j.Close(); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		recs, problem := readAll(t, o.Directory, ReadOptions{Strict: true})
		if problem != nil {
			t.Fatal(problem)
		}
		if n := int64(len(events(recs))); n != issued.Load() {
			t.Fatalf("round %d: %d tickets issued, %d events in the journal", round, issued.Load(), n)
		}
	}
}

// Limiters with one HashSeed place keys alike, so a full table refuses
// the same keys: their decisions are identical.
func TestLimiterHashSeed(t *testing.T) {
	run := func(seed uint64) []Decision {
		l := newLimiter(t, LimiterOptions{Tiers: []Tier{{Name: "t", Rate: 100, Burst: 3}}, Capacity: 8, HashSeed: seed})
		var out []Decision
		now := t0
		for i := 0; i < 400; i++ {
			now += 500_000
			out = append(out, acquire(t, l, "key-"+strconv.Itoa(i*7%23), 0, 1, now))
		}
		if s := limiterStats(t, l); s.CapacityRejected == 0 {
			t.Fatalf("the table never filled: %+v", s)
		}
		return out
	}
	a, b := run(0x1234), run(0x1234)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("one hash seed, different decisions")
	}
}
