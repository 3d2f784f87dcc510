// Package audit keeps Vigil's tamper-evident audit trail: every security
// event and admin action as a JSON line, each line chained to the one
// before it by SHA-256, with Ed25519-signed checkpoints so that a cut tail
// or a rewritten history is detectable (after Crosby & Wallach, "Efficient
// Data Structures for Tamper-Evident Logging", USENIX Security 2009; here
// the simple hash chain with signed commitments, not their history tree).
// It is meant to meet PCI DSS 10.2–10.5: the fields of 10.2.2 on every
// record, files readable by their owner only, integrity checkable by
// Verify, retention by rotation and shipping (docs/audit.md).
package audit

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigilsec/vigil/detect"
)

// Options configure a Log. Only Path is required.
type Options struct {
	// Path of the live file, e.g. /var/log/vigil/audit.jsonl. The instance
	// name is inserted before the extension (audit.<instance>.jsonl), so
	// several gateways may share a directory with one chain each.
	Path string
	// Instance names the chain; default: the host name. Characters other
	// than letters, digits, '.', '_' and '-' become '_'.
	Instance string
	// SignKey signs checkpoints. Without it there are no checkpoints, and a
	// cut tail cannot be told from a shorter log.
	SignKey ed25519.PrivateKey
	// Checkpoint is how often a checkpoint is written when records were
	// added since the last one; default 1m. Close always writes one.
	Checkpoint time.Duration
	// RotateSize rotates the live file once it passes this many bytes (0:
	// never). The chain continues in the next file.
	RotateSize int64
	// Keep is how many rotated (gzip-compressed) files are kept; older ones
	// are deleted. 0 keeps all: deleting audit records is a decision for
	// the operator's retention policy, not a default.
	Keep int
	// FlushEvery is how often written records are fsynced; default 1s.
	// Records reach the operating system as soon as the queue is empty.
	FlushEvery time.Duration
	// Queue is how many events may wait for the writer; default 4096.
	// Append never blocks: an event that does not fit is dropped and
	// counted (Dropped).
	Queue int
	// Witness, when set, is handed each checkpoint line once it is on
	// disk (on the writer goroutine; it must not block). Sending it
	// somewhere the audit file's owner cannot rewrite (the Caddy log, a
	// SIEM, Redis) makes a tail cut back to an earlier checkpoint
	// detectable, which the file alone cannot prove (docs/audit.md).
	Witness func(checkpoint []byte)
	// Logger reports write errors, damaged files and rotations.
	Logger *slog.Logger
	// Now stamps records; default time.Now.
	Now func() time.Time
}

// Status is a snapshot of a Log, for the admin API and metrics.
type Status struct {
	File           string    `json:"file"`
	Records        uint64    `json:"records"` // seq of the last record on disk
	LastHash       string    `json:"last_hash"`
	LastCheckpoint time.Time `json:"last_checkpoint,omitzero"`
	Dropped        uint64    `json:"dropped"`
	WriteErrors    uint64    `json:"write_errors"`
}

// Log is one instance's audit chain. Append is safe for concurrent use;
// one goroutine writes, so records keep the order their Appends were
// queued in.
type Log struct {
	o       Options
	queue   chan detect.Event
	mu      sync.RWMutex // Append holds it shared, so Close never stops the writer under a send
	closed  bool
	quit    chan struct{}
	done    chan struct{}
	dropped atomic.Uint64
	w       *writer

	smu    sync.Mutex // guards status
	status Status
	hk     sync.Mutex     // one housekeeping pass at a time
	bg     sync.WaitGroup // housekeeping in flight
	err    error          // Close's result
}

// openChains refuses a second writer on one chain in this process: two
// writers would interleave two chains in one file. Across a Caddy reload
// the glue shares one Log (a caddy.UsagePool) instead of opening another.
var openChains sync.Map

// Open opens (or creates) the instance's live file and resumes its chain.
func Open(o Options) (*Log, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	n := newNames(o.Path, o.Instance)
	key, _ := filepath.Abs(n.live())
	if _, busy := openChains.LoadOrStore(key, true); busy {
		return nil, fmt.Errorf("audit log %s is already open in this process", n.live())
	}
	l := &Log{o: o, queue: make(chan detect.Event, o.Queue), quit: make(chan struct{}), done: make(chan struct{})}
	w, err := openWriter(l, n)
	if err != nil {
		openChains.Delete(key)
		return nil, err
	}
	l.w = w
	l.housekeep()
	go l.run()
	return l, nil
}

func (o *Options) defaults() error {
	if o.Path == "" {
		return errors.New("audit log: no path")
	}
	if o.RotateSize < 0 || o.Keep < 0 || o.Queue < 0 || o.Checkpoint < 0 || o.FlushEvery < 0 {
		return errors.New("audit log: negative rotate size, keep, queue or interval")
	}
	if o.Instance == "" {
		o.Instance, _ = os.Hostname()
	}
	o.Instance = cleanInstance(o.Instance)
	if o.Checkpoint == 0 {
		o.Checkpoint = time.Minute
	}
	if o.FlushEvery == 0 {
		o.FlushEvery = time.Second
	}
	if o.Queue == 0 {
		o.Queue = 4096
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return nil
}

// cleanInstance keeps an instance name safe in a file name and in the
// signed checkpoint message (no separators, no newlines).
func cleanInstance(s string) string {
	s = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-' {
			return r
		}
		return '_'
	}, s)
	if s == "" {
		return "vigil"
	}
	return s
}

// Append queues an event for the trail. It never blocks: when the queue is
// full, or the log closed, the event is dropped and counted.
func (l *Log) Append(e detect.Event) {
	l.mu.RLock()
	sent := false
	if !l.closed {
		select {
		case l.queue <- e:
			sent = true
		default:
		}
	}
	l.mu.RUnlock()
	if !sent {
		l.dropped.Add(1)
	}
}

// Publish implements respond.Sink.
func (l *Log) Publish(e detect.Event) { l.Append(e) }

// Dropped counts events that never reached the file: queue overflow,
// Appends after Close, and records lost to write errors.
func (l *Log) Dropped() uint64 { return l.dropped.Load() }

// Status returns what is on disk now.
func (l *Log) Status() Status {
	l.smu.Lock()
	s := l.status
	l.smu.Unlock()
	s.Dropped = l.Dropped()
	return s
}

// Close writes what is queued and a final checkpoint, fsyncs and closes
// the file. Later Appends are dropped.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		<-l.done
		return l.err
	}
	l.closed = true
	l.mu.Unlock()
	close(l.quit)
	<-l.done
	l.bg.Wait()
	key, _ := filepath.Abs(l.w.names.live())
	openChains.Delete(key)
	return l.err
}

// run is the writer: records reach the OS as soon as the queue is empty
// (or 64 KiB wait), and the disk at each FlushEvery tick.
func (l *Log) run() {
	defer close(l.done)
	flush := time.NewTicker(l.o.FlushEvery)
	defer flush.Stop()
	cp := time.NewTicker(l.o.Checkpoint)
	defer cp.Stop()
	for {
		select {
		case e := <-l.queue:
			l.w.writeEvent(e)
			if len(l.queue) == 0 || l.w.buf.Len() > 64<<10 {
				_ = l.w.flush() // logged; the records are counted as dropped
			}
		case <-flush.C:
			l.w.sync()
		case <-cp.C:
			l.w.checkpoint("")
			_ = l.w.flush()
		case <-l.quit:
			for {
				select {
				case e := <-l.queue:
					l.w.writeEvent(e)
					continue
				default:
				}
				break
			}
			l.w.checkpoint(endClose)
			l.err = l.w.close()
			return
		}
	}
}

// housekeep compresses and prunes rotated files in the background, so a
// rotation never holds the writer for the time gzip takes.
func (l *Log) housekeep() {
	l.bg.Add(1)
	go func() {
		defer l.bg.Done()
		l.hk.Lock()
		defer l.hk.Unlock()
		if err := housekeep(l.w.names, l.o.Keep); err != nil {
			l.o.Logger.Error("audit log housekeeping", "error", err)
		}
	}()
}

// setStatus publishes the writer's state after a successful write.
func (l *Log) setStatus(s Status) {
	l.smu.Lock()
	l.status = s
	l.smu.Unlock()
}
