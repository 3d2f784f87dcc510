package audit

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigilsec/vigil/detect"
)

func TestRecordsCarryPCIFields(t *testing.T) {
	priv, pub := testKey(t)
	o := testOptions(t.TempDir(), priv)
	l := mustOpen(t, o)
	admin := detect.NewEvent(detect.AdminAction, time.Now())
	admin.User = "ops-alice"
	admin.Details = detect.Details{"action": "block", "target": "198.51.100.9", "remote": "127.0.0.1:51234"}
	locked := detect.NewEvent(detect.AccountLocked, time.Now())
	locked.User, locked.IP = "bob", "203.0.113.7"
	locked.Details = detect.Details{"until": "2026-11-30T13:00:00Z", "note": "<b>&</b>"}
	l.Append(admin)
	l.Append(locked)
	mustClose(t, l)

	rs := records(t, l.Status().File)
	if len(rs) != 4 || rs[0].Kind != kindSegment || rs[0].Reason != segStart || rs[3].Kind != kindCheckpoint || rs[3].End != endClose {
		t.Fatalf("records %+v", rs)
	}
	want := []record{
		{User: "ops-alice", Type: "ADMIN_ACTION", Outcome: "success", Origin: "127.0.0.1:51234", Resource: "198.51.100.9"},
		{User: "bob", Type: "ACCOUNT_LOCKED", Outcome: "imposed", Origin: "203.0.113.7", Resource: "account:bob"},
	}
	for i, w := range want {
		g := rs[i+1]
		if g.User != w.User || g.Type != w.Type || g.Outcome != w.Outcome || g.Origin != w.Origin || g.Resource != w.Resource {
			t.Errorf("record %d: %+v, want %+v", i+1, g, w)
		}
	}
	// the embedded event is byte for byte the canonical form
	c, _ := locked.Canonical()
	if string(rs[2].Event) != string(c) {
		t.Fatalf("event\n%s\nwant canonical\n%s", rs[2].Event, c)
	}
	rep := mustVerify(t, []string{l.Status().File}, pub)
	if rep.Records != 4 || rep.Checkpoints != 1 || rep.LastCheckpoint.IsZero() {
		t.Fatalf("report %+v", rep)
	}
}

func TestFileAndDirectoryModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "vigil")
	o := testOptions(dir, nil)
	path := writeLog(t, o, 1)
	for p, want := range map[string]os.FileMode{dir: 0o700, path: 0o600} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", p, st.Mode().Perm(), want)
		}
	}
	if filepath.Base(path) != "audit.web1.jsonl" {
		t.Fatalf("file %s, want audit.web1.jsonl", path)
	}
	// a file someone loosened is tightened on the next open
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	writeLog(t, o, 1)
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v after reopen", st.Mode().Perm())
	}
}

func TestRestartResumesTheChain(t *testing.T) {
	priv, pub := testKey(t)
	o := testOptions(t.TempDir(), priv)
	writeLog(t, o, 3)
	first := mustOpen(t, o)
	before := first.Status()
	first.Append(testEvent(9))
	mustClose(t, first)
	rs := records(t, before.File)
	if len(rs) != 5+3 || rs[5].Reason != segRestart || rs[5].Prev != lineHash(readLines(t, before.File)[4]) {
		t.Fatalf("no restart segment chained to the closing checkpoint: %+v", rs[5])
	}
	if before.Records != 6 || before.LastHash == "" {
		t.Fatalf("status after reopen %+v", before)
	}
	rep := mustVerify(t, []string{before.File}, pub)
	if len(rep.Warnings) != 0 {
		t.Fatalf("clean restart warned: %v", rep.Warnings)
	}
}

// TestCrashRecovery: a torn last line and no closing checkpoint (a crash)
// become a damaged_tail segment; Verify passes with warnings saying what
// is not proven.
func TestCrashRecovery(t *testing.T) {
	priv, pub := testKey(t)
	o := testOptions(t.TempDir(), priv)
	path := writeLog(t, o, 4)
	lines := readLines(t, path)
	torn := append(lines[:len(lines)-1:len(lines)-1], []byte(`{"seq":7,"time":"2026-`))
	data := []byte{}
	for _, l := range torn {
		data = append(data, l...)
	}
	mustWrite(t, path, data) // no final newline: the write was cut
	writeLog(t, o, 2)
	rep := mustVerify(t, []string{path}, pub)
	if len(rep.Warnings) != 2 || !strings.Contains(rep.Warnings[0].Reason, "torn write") ||
		!strings.Contains(rep.Warnings[1].Reason, "without a closing checkpoint") {
		t.Fatalf("warnings %v", rep.Warnings)
	}
}

func TestQueueOverflowCountsDrops(t *testing.T) {
	o := testOptions(t.TempDir(), nil)
	o.Queue = 8
	gate := make(chan struct{})
	var hold sync.Once
	var opened atomic.Bool
	now := o.Now
	o.Now = func() time.Time {
		if opened.Load() {
			hold.Do(func() { <-gate }) // the writer stalls on its first event
		}
		return now()
	}
	l := mustOpen(t, o)
	opened.Store(true)
	for i := range 100 {
		l.Append(testEvent(i))
	}
	d := l.Dropped()
	if d != 100-8 && d != 100-9 {
		t.Fatalf("dropped %d, want 92 or 91", d)
	}
	close(gate)
	mustClose(t, l)
	l.Append(testEvent(0)) // after Close: dropped too
	st := l.Status()
	if st.Dropped != d+1 || st.Records != 1+100-d+1 { // start, events, stop
		t.Fatalf("status %+v, dropped %d", st, d)
	}
	mustVerify(t, []string{st.File}, nil)
}

// TestConcurrentAppend: many goroutines append; every event lands once and
// each goroutine's events keep their order.
func TestConcurrentAppend(t *testing.T) {
	priv, pub := testKey(t)
	o := testOptions(t.TempDir(), priv)
	o.Queue = 1 << 14
	o.Now = time.Now
	l := mustOpen(t, o)
	const goroutines, each = 16, 500
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				e := testEvent(i)
				e.Details["g"] = g
				l.Append(e)
			}
		})
	}
	wg.Wait()
	mustClose(t, l)
	if l.Dropped() != 0 {
		t.Fatalf("dropped %d", l.Dropped())
	}
	next := map[float64]float64{}
	n := 0
	for _, r := range records(t, l.Status().File) {
		if r.Kind != kindEvent {
			continue
		}
		var e detect.Event
		if err := json.Unmarshal(r.Event, &e); err != nil {
			t.Fatal(err)
		}
		g, i := e.Details["g"].(float64), e.Details["i"].(float64)
		if next[g] != i {
			t.Fatalf("goroutine %v: event %v, want %v", g, i, next[g])
		}
		next[g]++
		n++
	}
	if n != goroutines*each {
		t.Fatalf("%d events, want %d", n, goroutines*each)
	}
	mustVerify(t, []string{l.Status().File}, pub)
}

func TestTwoInstancesInOneDirectory(t *testing.T) {
	priv, pub := testKey(t)
	dir := t.TempDir()
	a, b := testOptions(dir, priv), testOptions(dir, priv)
	a.Instance, b.Instance = "web1", "web-1/evil\n"
	la, lb := mustOpen(t, a), mustOpen(t, b)
	for i := range 10 {
		la.Append(testEvent(i))
		lb.Append(testEvent(100 + i))
	}
	mustClose(t, la)
	mustClose(t, lb)
	fa, fb := la.Status().File, lb.Status().File
	if fa == fb || filepath.Base(fb) != "audit.web-1_evil_.jsonl" {
		t.Fatalf("files %s %s", fa, fb)
	}
	mustVerify(t, []string{fa}, pub)
	mustVerify(t, []string{fb}, pub)
	if p := firstProblem(t, []string{fa, fb}, pub); !strings.Contains(p.Reason, "instance") && !strings.Contains(p.Reason, "seq") {
		t.Fatalf("mixing two chains: %v", p)
	}
}

func TestSecondOpenOfAChainIsRefused(t *testing.T) {
	o := testOptions(t.TempDir(), nil)
	l := mustOpen(t, o)
	if _, err := Open(o); err == nil || !strings.Contains(err.Error(), "already open") {
		t.Fatalf("second open: %v", err)
	}
	mustClose(t, l)
	mustClose(t, mustOpen(t, o)) // free again after Close
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestPeriodicCheckpointsAndWitness(t *testing.T) {
	priv, pub := testKey(t)
	o := testOptions(t.TempDir(), priv)
	o.Checkpoint = 5 * time.Millisecond
	var mu sync.Mutex
	var seen []string
	o.Witness = func(cp []byte) { mu.Lock(); seen = append(seen, string(cp)); mu.Unlock() }
	l := mustOpen(t, o)
	for i := range 3 {
		l.Append(testEvent(i))
		deadline := time.Now().Add(5 * time.Second)
		for l.Status().LastCheckpoint.IsZero() || l.Status().Records < uint64(2*i+3) {
			if time.Now().After(deadline) {
				t.Fatalf("no checkpoint after event %d: %+v", i, l.Status())
			}
			time.Sleep(time.Millisecond)
		}
	}
	mustClose(t, l)
	rep := mustVerify(t, []string{l.Status().File}, pub)
	mu.Lock()
	defer mu.Unlock()
	if rep.Checkpoints != 4 || len(seen) != 4 || !strings.Contains(seen[3], `"end":"close"`) {
		t.Fatalf("checkpoints %d, witnessed %d: %v", rep.Checkpoints, len(seen), seen)
	}
}

func TestOptionsAreChecked(t *testing.T) {
	if _, err := Open(Options{}); err == nil {
		t.Fatal("no path accepted")
	}
	if _, err := Open(Options{Path: filepath.Join(t.TempDir(), "a.jsonl"), RotateSize: -1}); err == nil {
		t.Fatal("negative rotate size accepted")
	}
	file := filepath.Join(t.TempDir(), "file")
	mustWrite(t, file, nil)
	_, err := Open(Options{Path: filepath.Join(file, "audit.jsonl"), Instance: "x"})
	if err == nil {
		t.Fatal("a path under a file opened")
	}
	t.Log(err)
}

// TestWriteErrorKeepsTheChainValid: records a failed write loses are
// counted, the file is cut back to its last good end, and a write_error
// segment says how many were lost.
func TestWriteErrorKeepsTheChainValid(t *testing.T) {
	priv, pub := testKey(t)
	o := testOptions(t.TempDir(), priv)
	o.FlushEvery, o.Checkpoint = time.Hour, time.Hour // the writer goroutine stays idle
	l := mustOpen(t, o)
	ro, err := os.Open(l.Status().File)
	if err != nil {
		t.Fatal(err)
	}
	l.w.f.Close()
	l.w.f = ro // writes now fail
	l.w.writeEvent(testEvent(1))
	l.w.writeEvent(testEvent(2))
	if err := l.w.flush(); err == nil || l.Dropped() != 2 || l.w.f != nil {
		t.Fatalf("flush: %v, dropped %d", err, l.Dropped())
	}
	l.Append(testEvent(3)) // the writer reopens the file
	mustClose(t, l)
	rs := records(t, l.Status().File)
	if len(rs) != 4 || rs[1].Reason != segWriteError || rs[1].Lost != 2 || rs[1].Seq != 2 {
		t.Fatalf("records %+v", rs)
	}
	if st := l.Status(); st.WriteErrors != 1 || st.Dropped != 2 {
		t.Fatalf("status %+v", st)
	}
	mustVerify(t, []string{l.Status().File}, pub)
}
