package caddymodule

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/internal/store"
	"github.com/vigilsec/vigil/respond"
)

// flakyCounter is a primary counter whose failure a test switches.
type flakyCounter struct {
	mu  sync.Mutex
	err error
}

func (f *flakyCounter) set(err error) { f.mu.Lock(); f.err = err; f.mu.Unlock() }
func (f *flakyCounter) get() error    { f.mu.Lock(); defer f.mu.Unlock(); return f.err }
func (f *flakyCounter) Reserve(_ context.Context, k detect.LoginKeys, _ detect.LoginWindows, _ time.Time) (detect.Attempt, detect.LoginCounts, error) {
	return detect.Attempt{Keys: k, Member: "m"}, detect.LoginCounts{}, f.get()
}
func (f *flakyCounter) Release(context.Context, detect.Attempt) error { return f.get() }
func (f *flakyCounter) Hold(context.Context, detect.CounterKind, string, time.Time) error {
	return f.get()
}
func (f *flakyCounter) RecordSuccess(context.Context, detect.Attempt) error      { return f.get() }
func (f *flakyCounter) Forget(context.Context, detect.CounterKind, string) error { return f.get() }

// watchedApp is an app on a store whose health follows primary.
func watchedApp(t *testing.T, st *respond.Store, failMode string) (*App, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zapcore.InfoLevel)
	a := &App{Store: &StoreConfig{Type: "redis", Addrs: []string{"10.0.0.9:6379"}}, FailMode: failMode,
		state: &sharedState{store: st}, logger: zap.New(core)}
	return a, logs
}

func fallbackStore(primary detect.LoginCounter) (*respond.Store, *store.FallbackCounter) {
	fc := store.NewFallbackCounter(primary, nil, nil)
	return &respond.Store{Counter: fc, Healthy: fc.Healthy}, fc
}

func messages(logs *observer.ObservedLogs, msg string) int {
	return logs.FilterMessage(msg).Len()
}

// TestStoreWatchLogsTransitionsOnce: an outage is one WARN however many
// operations fail, its end one INFO, and a resync is remembered.
func TestStoreWatchLogsTransitionsOnce(t *testing.T) {
	primary := &flakyCounter{}
	st, fc := fallbackStore(primary)
	a, logs := watchedApp(t, st, "")
	a.watchStore()
	defer a.unwatchStore()
	ctx, k := context.Background(), detect.KeysFor("alice", "203.0.113.7")

	if logs.Len() != 0 {
		t.Fatalf("a healthy store logged: %v", logs.All())
	}
	fc.SetHealthy(true) // a resync that found Redis answering
	if _, last := a.watchOf().state(); time.Since(last) > time.Second {
		t.Fatalf("last resync not recorded: %v", last)
	}

	primary.set(errors.New("dial tcp 10.0.0.9:6379: connection refused"))
	for i := 0; i < 20; i++ {
		_, _, _ = fc.Reserve(ctx, k, detect.LoginWindows{Account: time.Minute}, time.Now())
		fc.SetHealthy(false) // the resync fails too
	}
	if n := messages(logs, msgStoreDownOpen); n != 1 {
		t.Fatalf("%d WARN lines for one outage: %v", n, logs.All())
	}
	warn := logs.FilterMessage(msgStoreDownOpen).All()[0]
	if warn.Level != zap.WarnLevel || warn.ContextMap()["address"] != "10.0.0.9:6379" || warn.ContextMap()["error"] == nil {
		t.Fatalf("WARN line: %+v", warn)
	}
	if since, _ := a.watchOf().state(); since.IsZero() {
		t.Fatal("down_since not recorded")
	}

	primary.set(nil)
	_ = fc.Forget(ctx, detect.IPCounter, k.IP)
	fc.SetHealthy(true)
	if n := messages(logs, msgStoreUp); n != 1 {
		t.Fatalf("%d INFO lines for one recovery: %v", n, logs.All())
	}
	if since, _ := a.watchOf().state(); !since.IsZero() {
		t.Fatal("down_since still set after recovery")
	}
}

// TestStoreWatchDownAtStart: a store that was down before any config
// listened is logged when the first config starts, and not again when a
// reload takes over; the reloaded config then speaks, and the last one to
// leave removes the hook.
func TestStoreWatchDownAtStart(t *testing.T) {
	st, fc := fallbackStore(&flakyCounter{})
	fc.SetHealthy(false)
	first, firstLogs := watchedApp(t, st, "closed")
	first.watchStore()
	if n := messages(firstLogs, msgStoreDownClosed); n != 1 {
		t.Fatalf("down at start: %d WARN lines: %v", n, firstLogs.All())
	}

	second, secondLogs := watchedApp(t, st, "closed")
	second.watchStore() // a reload: Start of the new config, then Cleanup of the old
	first.unwatchStore()
	if secondLogs.Len() != 0 {
		t.Fatalf("the reload repeated the outage: %v", secondLogs.All())
	}
	fc.SetHealthy(true)
	if messages(secondLogs, msgStoreUp) != 1 || messages(firstLogs, msgStoreUp) != 0 {
		t.Fatalf("recovery not logged by the running config: first %v second %v", firstLogs.All(), secondLogs.All())
	}

	second.unwatchStore()
	if second.watchOf() != nil {
		t.Fatal("watch left behind after the last config")
	}
	fc.SetHealthy(false) // no config listens: nothing to log, nothing to panic
	if secondLogs.Len() != 1 {
		t.Fatalf("logged after the last config left: %v", secondLogs.All())
	}
}

// TestStoreWatchMemory: the memory store has no health to watch.
func TestStoreWatchMemory(t *testing.T) {
	a := testApp(t)
	a.watchStore()
	if a.watchOf() != nil {
		t.Fatal("memory store watched")
	}
	a.unwatchStore()
	(&App{}).unwatchStore() // a config whose Provision failed early
}
